//! `rollback sandbox serve`: a CRM sandbox on 127.0.0.1 that behaves like the vendor's API
//! (shapes, paging, limits, error bodies and status codes), so connectors and the vendors' own
//! clients can be tested and drills rehearsed without a real CRM. Flavor `hubspot` serves the
//! CRM v3 objects, search and properties APIs over plain HTTP; flavor `salesforce` serves the REST
//! API under `/services/data/` (SOQL queries, sObjects, collections) over HTTPS with a certificate
//! it makes itself (`tls.rs`).
//!
//! Around every API request: the bearer token is checked, then injected faults (latency, error
//! statuses, connection resets; deterministic for a seed), then the rate limits; each answer in
//! the flavor's own words ([`Api`]). The admin endpoints under `/_sandbox/` (same token) change
//! faults at run time, simulate user traffic after a cutover and report per-object counts and
//! canonical digests (`admin.rs`, shared by the flavors). [`start`] serves one inside the calling
//! process; `launch.rs` does so for a connector's `sandbox:` key.

pub mod admin;
pub mod associations;
pub mod hubspot;
pub mod launch;
pub mod salesforce;
pub mod soql;
pub mod store;
pub mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::generate::Rng;

/// What `sandbox serve` was asked for.
#[derive(Clone, Debug)]
pub struct Options {
    pub flavor: String,
    pub port: u16,
    pub token: Option<String>,
    pub seed: u64,
    pub data: Option<std::path::PathBuf>,
    /// Where the Salesforce flavor writes its CA certificate (default: the data file's folder,
    /// else a temporary folder removed at shutdown).
    pub tls_dir: Option<std::path::PathBuf>,
    pub faults: Option<String>,
    /// Requests per ten seconds (0: no limit).
    pub rate_limit: u64,
    /// Requests per day (0: no limit).
    pub daily_limit: u64,
}

/// Injected faults, parsed from `error_rate=0.05,statuses=500|502|503|429,latency=20ms..200ms,
/// reset_rate=0.01,seed=7`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    pub error_rate: f64,
    pub statuses: Vec<u16>,
    pub latency: Option<(Duration, Duration)>,
    pub reset_rate: f64,
    pub seed: u64,
}

impl Default for FaultSpec {
    fn default() -> Self {
        FaultSpec {
            error_rate: 0.0,
            statuses: vec![500, 502, 503, 429],
            latency: None,
            reset_rate: 0.0,
            seed: 0,
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::playbook::duration::parse_duration(text).ok_or_else(|| format!("bad duration `{text}` (write e.g. 20ms, 1s)"))
}

impl FaultSpec {
    pub fn parse(spec: &str) -> Result<FaultSpec, String> {
        let mut out = FaultSpec::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not KEY=VALUE (keys: error_rate, statuses, latency, reset_rate, seed)"))?;
            let rate = |v: &str| -> Result<f64, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| format!("`{key}` must be a number from 0 to 1, not `{v}`"))
            };
            match key {
                "error_rate" => out.error_rate = rate(value)?,
                "reset_rate" => out.reset_rate = rate(value)?,
                "seed" => out.seed = value.parse().map_err(|_| format!("`seed` must be a whole number, not `{value}`"))?,
                "statuses" => {
                    out.statuses = value
                        .split('|')
                        .map(|s| s.parse::<u16>().ok().filter(|c| (400..600).contains(c)))
                        .collect::<Option<Vec<u16>>>()
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| format!("`statuses` must be HTTP error codes separated by `|`, not `{value}`"))?;
                }
                "latency" => {
                    let (lo, hi) = value.split_once("..").unwrap_or((value, value));
                    let bounds = parse_duration(lo).and_then(|lo| parse_duration(hi).map(|hi| (lo, hi)));
                    let (lo, hi) = bounds.map_err(|e| format!("`latency`: {e}; write e.g. latency=20ms..200ms"))?;
                    if lo > hi {
                        return Err(format!("`latency` range `{value}` runs backwards"));
                    }
                    out.latency = Some((lo, hi));
                }
                other => {
                    return Err(format!(
                        "unknown fault `{other}`; {}",
                        crate::playbook::diagnostic::suggest(other, "fault", ["error_rate", "statuses", "latency", "reset_rate", "seed"])
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// What the fault injector decided for one request.
enum Fault {
    None,
    Status(u16),
    Reset,
}

struct Faults {
    spec: FaultSpec,
    rng: Rng,
    text: String,
}

impl Faults {
    fn new(text: &str) -> Result<Faults, String> {
        let spec = FaultSpec::parse(text)?;
        Ok(Faults {
            rng: Rng::new(spec.seed),
            spec,
            text: text.to_string(),
        })
    }

    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The latency and fault for the next request (the same sequence for the same seed).
    fn draw(&mut self) -> (Duration, Fault) {
        let delay = match self.spec.latency {
            Some((lo, hi)) => lo + (hi - lo).mul_f64(self.unit()),
            None => Duration::ZERO,
        };
        let (reset, error, pick) = (self.unit(), self.unit(), self.rng.next_u64());
        let fault = if reset < self.spec.reset_rate {
            Fault::Reset
        } else if error < self.spec.error_rate {
            Fault::Status(self.spec.statuses[(pick % self.spec.statuses.len() as u64) as usize])
        } else {
            Fault::None
        };
        (delay, fault)
    }
}

/// Fixed windows of ten seconds and of a day.
struct Limits {
    per_ten: u64,
    daily: u64,
    window: Instant,
    in_window: u64,
    day: chrono::NaiveDate,
    today: u64,
    second: Instant,
    in_second: u64,
}

/// Which limit refused a request.
pub enum Refused {
    TenSecondly,
    Daily,
    Secondly,
}

/// Which vendor's API is served: how the gate words its answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    HubSpot,
    Salesforce,
}

impl Api {
    fn unauthorized(self) -> Response {
        match self {
            Api::HubSpot => hubspot::error(
                StatusCode::UNAUTHORIZED,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            ),
            Api::Salesforce => salesforce::error(StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID", "Session expired or invalid"),
        }
    }

    fn refused(self, refused: Refused) -> Response {
        match self {
            Api::HubSpot => hubspot::rate_limited(refused),
            Api::Salesforce => salesforce::limited(refused),
        }
    }

    /// The answer to an injected error status.
    fn failed(self, status: StatusCode) -> Response {
        let message = "injected fault: the sandbox failed this request on purpose";
        match self {
            Api::HubSpot => hubspot::error(status, "INTERNAL_ERROR", message),
            Api::Salesforce => salesforce::error(status, salesforce::fault_code(status), message),
        }
    }
}

/// The sandbox's shared state: what the request gate needs, whatever the flavor.
pub struct Server {
    pub options: Options,
    pub api: Api,
    faults: Mutex<Faults>,
    limits: Mutex<Limits>,
}

impl Server {
    /// Counts one request against the limits; `search` requests count against the per-second
    /// search limit instead of the ten-second one. Returns the headers to send, or the refusal.
    /// Salesforce has only the daily allowance, reported in `Sforce-Limit-Info`.
    pub fn admit(&self, search: bool) -> Result<Vec<(&'static str, String)>, Refused> {
        let mut l = self.limits.lock().expect("limits lock");
        let now = Instant::now();
        let today = chrono::Utc::now().date_naive();
        if today != l.day {
            (l.day, l.today) = (today, 0);
        }
        if l.daily > 0 && l.today >= l.daily {
            return Err(Refused::Daily);
        }
        if self.api == Api::Salesforce {
            l.today += 1;
            return Ok(vec![("Sforce-Limit-Info", salesforce::usage(l.today, l.daily))]);
        }
        if search {
            if now.duration_since(l.second) >= Duration::from_secs(1) {
                (l.second, l.in_second) = (now, 0);
            }
            if l.per_ten > 0 && l.in_second >= SEARCH_PER_SECOND {
                return Err(Refused::Secondly);
            }
            l.in_second += 1;
            l.today += 1;
            return Ok(Vec::new());
        }
        if now.duration_since(l.window) >= Duration::from_secs(10) {
            (l.window, l.in_window) = (now, 0);
        }
        if l.per_ten > 0 && l.in_window >= l.per_ten {
            return Err(Refused::TenSecondly);
        }
        l.in_window += 1;
        l.today += 1;
        let mut headers = Vec::new();
        if l.per_ten > 0 {
            headers.push(("X-HubSpot-RateLimit-Interval-Milliseconds", "10000".to_string()));
            headers.push(("X-HubSpot-RateLimit-Max", l.per_ten.to_string()));
            headers.push(("X-HubSpot-RateLimit-Remaining", (l.per_ten - l.in_window).to_string()));
        }
        if l.daily > 0 {
            headers.push(("X-HubSpot-RateLimit-Daily", l.daily.to_string()));
            headers.push(("X-HubSpot-RateLimit-Daily-Remaining", (l.daily - l.today).to_string()));
        }
        Ok(headers)
    }

    pub fn set_faults(&self, text: &str) -> Result<(), String> {
        *self.faults.lock().expect("faults lock") = Faults::new(text)?;
        Ok(())
    }

    pub fn faults_text(&self) -> String {
        self.faults.lock().expect("faults lock").text.clone()
    }

    pub fn authorized(&self, req: &Request<Body>) -> bool {
        let Some(token) = &self.options.token else { return true };
        req.headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t == token)
    }
}

/// Searches allowed per second (HubSpot's documented search limit), when limits are on.
pub const SEARCH_PER_SECOND: u64 = 5;

/// A random id for error bodies (`correlationId`).
pub fn correlation_id() -> String {
    let mut rng = Rng::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64,
    );
    let hex = format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64());
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Applies auth, faults and the admin/API split around every request.
async fn gate(
    axum::extract::State(server): axum::extract::State<Arc<Server>>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    if !server.authorized(&req) {
        return server.api.unauthorized();
    }
    if req.uri().path().starts_with("/_sandbox") {
        return next.run(req).await;
    }
    let (delay, fault) = server.faults.lock().expect("faults lock").draw();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match fault {
        Fault::None => {
            // The rate limits: search has its own per-second limit, everything else the
            // ten-second and daily ones, whose state every answer reports in headers.
            let search = req.uri().path().ends_with("/search");
            let headers = match server.admit(search) {
                Ok(headers) => headers,
                Err(refused) => return server.api.refused(refused),
            };
            let mut response = next.run(req).await;
            for (name, value) in headers {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
        Fault::Status(429) => server.api.refused(Refused::TenSecondly),
        Fault::Status(code) => server
            .api
            .failed(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)),
        Fault::Reset => {
            // A body that fails at once: the server drops the connection mid-response.
            let body = Body::from_stream(futures::stream::once(async {
                Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected reset"))
            }));
            let mut response = Response::new(body);
            response
                .headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            response
        }
    }
}

/// The admin endpoints shared by every flavor.
async fn admin_faults(axum::extract::State(server): axum::extract::State<Arc<Server>>, body: Option<axum::Json<Value>>) -> Response {
    if let Some(axum::Json(body)) = body {
        let spec = body["spec"].as_str().unwrap_or_default();
        if let Err(message) = server.set_faults(spec) {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": message}))).into_response();
        }
    }
    axum::Json(json!({"spec": server.faults_text()})).into_response()
}

/// A sandbox serving on 127.0.0.1 in this process, until [`Running::stop`] (or drop).
pub struct Running {
    pub address: SocketAddr,
    /// `http://…` (HubSpot) or `https://…` (Salesforce).
    pub base_url: String,
    /// Salesforce: the CA certificate to trust.
    pub ca_file: Option<std::path::PathBuf>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Stops taking connections, lets open requests finish and waits for the server to end.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string()))),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    /// A dropped server stops too (without waiting for it).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Seeds or loads the records, binds 127.0.0.1 (`options.port`, 0 for a free port) and serves in
/// a task of its own until the returned [`Running`] is stopped.
pub async fn start(options: Options) -> anyhow::Result<Running> {
    let api = match options.flavor.as_str() {
        "hubspot" => Api::HubSpot,
        "salesforce" => Api::Salesforce,
        other => anyhow::bail!("unknown sandbox flavor `{other}`\nhint: use `--flavor hubspot` or `--flavor salesforce`"),
    };
    let faults = Faults::new(options.faults.as_deref().unwrap_or("")).map_err(|e| anyhow::anyhow!("--faults: {e}"))?;
    let routes = match api {
        Api::HubSpot => hubspot::routes().with_state(Arc::new(hubspot::State::open(&options).await?)),
        Api::Salesforce => salesforce::routes().with_state(Arc::new(salesforce::State::open(&options).await?)),
    };
    let now = Instant::now();
    let server = Arc::new(Server {
        limits: Mutex::new(Limits {
            per_ten: options.rate_limit,
            daily: options.daily_limit,
            window: now,
            in_window: 0,
            day: chrono::Utc::now().date_naive(),
            today: 0,
            second: now,
            in_second: 0,
        }),
        faults: Mutex::new(faults),
        api,
        options: options.clone(),
    });
    let app = routes
        .route(
            "/_sandbox/faults",
            axum::routing::get(admin_faults)
                .put(admin_faults)
                .post(admin_faults)
                .with_state(server.clone()),
        )
        .layer(axum::middleware::from_fn_with_state(server.clone(), gate));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], options.port))).await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    if api == Api::HubSpot {
        let task = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stopped).await });
        return Ok(Running {
            address,
            base_url: format!("http://{address}"),
            ca_file: None,
            stop: Some(stop),
            task: Some(task),
        });
    }
    let tls = tls::Tls::make(options.tls_dir.as_deref(), options.data.as_deref(), address.port())?;
    let (config, ca_file) = (tls.config.clone(), tls.ca_file.clone());
    let task = tokio::spawn(async move {
        let served = tls::serve(listener, app, config, stopped).await;
        tls.remove();
        served
    });
    Ok(Running {
        address,
        base_url: format!("https://{address}"),
        ca_file: Some(ca_file),
        stop: Some(stop),
        task: Some(task),
    })
}

/// Starts the sandbox, prints one JSON line on stdout (`{"flavor", "address", "base_url"}`, and
/// `ca_file` for Salesforce) and serves until SIGINT/SIGTERM.
pub async fn serve(options: Options) -> anyhow::Result<()> {
    let running = start(options.clone()).await?;
    let mut line = json!({"flavor": options.flavor, "address": running.address.to_string(), "base_url": running.base_url});
    if let Some(ca) = &running.ca_file {
        line["ca_file"] = Value::String(ca.display().to_string());
    }
    announce(&line)?;
    shutdown().await;
    Ok(running.stop().await?)
}

/// The start line on stdout, flushed at once: callers wait for it.
fn announce(line: &Value) -> std::io::Result<()> {
    use std::io::Write;
    println!("{line}");
    std::io::stdout().flush()
}

async fn shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_and_name_mistakes() {
        let spec = FaultSpec::parse("error_rate=0.05,statuses=500|502|503|429,latency=20ms..200ms,reset_rate=0.01,seed=7").unwrap();
        assert_eq!(spec.statuses, vec![500, 502, 503, 429]);
        assert_eq!(spec.latency, Some((Duration::from_millis(20), Duration::from_millis(200))));
        assert_eq!(spec.seed, 7);
        assert!(FaultSpec::parse("error_rat=0.1").unwrap_err().contains("error_rate"));
        assert!(FaultSpec::parse("error_rate=2").is_err());
        assert!(FaultSpec::parse("statuses=200").is_err());
        assert!(FaultSpec::parse("latency=2s..1s").is_err());
    }

    #[test]
    fn faults_are_deterministic_for_a_seed() {
        let run = || {
            let mut f = Faults::new("error_rate=0.3,reset_rate=0.1,seed=42").unwrap();
            (0..200)
                .map(|_| match f.draw().1 {
                    Fault::None => 0,
                    Fault::Status(s) => s,
                    Fault::Reset => 1,
                })
                .collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        let errors = a.iter().filter(|s| **s >= 400).count();
        assert!((30..90).contains(&errors), "{errors} errors of 200 at 30 %");
    }
}
