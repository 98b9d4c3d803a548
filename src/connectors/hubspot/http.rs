//! The `hubspot` connector's HTTP client: `Authorization: Bearer` on every call (the token goes
//! nowhere else: not in URLs, errors or logs), at most `concurrency` requests in flight, a
//! client-side limiter fed by HubSpot's `X-HubSpot-RateLimit-*` headers (and at most five
//! searches a second, which HubSpot limits separately and answers without those headers), and
//! retries with backoff on 429 (honouring `Retry-After`), 5xx, 423, timeouts and broken
//! connections. Every call the connector makes is idempotent (reads, searches, updates by id,
//! archives, role changes), so every one may be repeated.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::connectors::ConnectorError;
use crate::connectors::retry::{backoff, retry_after};

/// Tries per call before giving up (the step's `retries:` may then run the step again).
const ATTEMPTS: u32 = 8;
/// Searches are spaced by this much (HubSpot allows five a second).
const SEARCH_SPACING: Duration = Duration::from_millis(210);
/// HubSpot's rate-limit window when its headers do not say.
const WINDOW: Duration = Duration::from_secs(10);

/// A successful answer: its status (200, 201, 204, 207) and its JSON body (null when empty).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// What the limiter knows about HubSpot's allowance.
struct Limits {
    /// No request starts before this (the window's allowance is used up, or a 429 said wait).
    paused_until: Option<Instant>,
    /// When the current rate-limit window began, as far as this client saw its first request.
    window_start: Option<Instant>,
    /// The earliest time the next search may start.
    next_search: Instant,
}

pub struct Api {
    connector: String,
    base: String,
    token: String,
    http: reqwest::Client,
    in_flight: tokio::sync::Semaphore,
    concurrency: usize,
    limits: std::sync::Mutex<Limits>,
}

impl Api {
    pub fn new(connector: &str, base: &str, token: String, concurrency: usize) -> Result<Api, ConnectorError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("rollback/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| ConnectorError::new(connector, format!("cannot set up HTTP: {e}")))?;
        Ok(Api {
            connector: connector.into(),
            base: base.trim_end_matches('/').into(),
            // A token from `${env:…}` keeps what the variable holds, a trailing newline included.
            token: token.trim().to_string(),
            http,
            in_flight: tokio::sync::Semaphore::new(concurrency),
            concurrency,
            limits: std::sync::Mutex::new(Limits {
                paused_until: None,
                window_start: None,
                next_search: Instant::now(),
            }),
        })
    }

    #[cfg(test)]
    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)], object: Option<&str>) -> Result<Value, ConnectorError> {
        Ok(self.send(reqwest::Method::GET, path, query, None, object).await?.body)
    }

    pub async fn post(&self, path: &str, body: &Value, object: Option<&str>) -> Result<Answer, ConnectorError> {
        self.send(reqwest::Method::POST, path, &[], Some(body), object).await
    }

    pub async fn post_query(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
        object: Option<&str>,
    ) -> Result<Answer, ConnectorError> {
        self.send(reqwest::Method::POST, path, query, Some(body), object).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Answer, ConnectorError> {
        self.send(reqwest::Method::PUT, path, &[], Some(body), None).await
    }

    /// A PUT whose target may be gone: `None` for a 404.
    pub async fn put_if_found(&self, path: &str, body: &Value) -> Result<Option<Answer>, ConnectorError> {
        let answer = self.call(reqwest::Method::PUT, path, &[], Some(body), None, true).await?;
        Ok((answer.status != 404).then_some(answer))
    }

    /// Sends one call, retrying transient failures; a 2xx answer, or the error that ended it.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        object: Option<&str>,
    ) -> Result<Answer, ConnectorError> {
        self.call(method, path, query, body, object, false).await
    }

    /// [`Api::send`], taking a 404 as an answer when `missing_ok`.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        object: Option<&str>,
        missing_ok: bool,
    ) -> Result<Answer, ConnectorError> {
        let search = path.ends_with("/search");
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query)
            .map_err(|e| self.error(format!("`{}{path}` is not a URL: {e}", self.base), object))?;
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            self.wait_turn(search).await;
            let permit = self.in_flight.acquire().await.map_err(|e| self.error(e.to_string(), object))?;
            let sent_at = Instant::now();
            let mut request = self.http.request(method.clone(), url.clone()).bearer_auth(&self.token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = match request.send().await {
                Ok(response) => {
                    let (status, headers) = (response.status().as_u16(), response.headers().clone());
                    response.bytes().await.map(|bytes| (status, headers, bytes))
                }
                Err(e) => Err(e),
            };
            drop(permit);
            let wait = match outcome {
                Err(e) => {
                    // Timeouts, refused or reset connections, bodies cut short: all worth a retry.
                    let e = e.without_url();
                    tracing::debug!(connector = %self.connector, %path, attempt, "HubSpot call failed: {e}");
                    last = Some(
                        self.error(format!("{method} {path} failed: {e}"), object)
                            .retryable(true)
                            .hint("is HubSpot (or `base_url`) reachable? the step's `retries:` runs it again"),
                    );
                    backoff(attempt)
                }
                Ok((status, headers, bytes)) => {
                    self.note_limits(&headers, sent_at);
                    let body: Value = if bytes.is_empty() {
                        Value::Null
                    } else {
                        match serde_json::from_slice(&bytes) {
                            Ok(v) => v,
                            Err(e) if (200..300).contains(&status) => {
                                last = Some(
                                    self.error(format!("{method} {path}: HubSpot's answer is not JSON: {e}"), object)
                                        .retryable(true),
                                );
                                tokio::time::sleep(backoff(attempt)).await;
                                continue;
                            }
                            Err(_) => Value::String(String::from_utf8_lossy(&bytes).chars().take(300).collect()),
                        }
                    };
                    if (200..300).contains(&status) || (missing_ok && status == 404) {
                        return Ok(Answer { status, body });
                    }
                    let error = self.failure(&method, path, status, &body, object);
                    if !error.retryable {
                        return Err(error);
                    }
                    last = Some(error);
                    let retry_after = retry_after(&headers);
                    // Without `Retry-After`, a rolling-window 429 waits out the window (HubSpot's own
                    // clients do; short retries only spend the error budget), a lock (423) 2 s.
                    let window = headers
                        .get("x-hubspot-ratelimit-interval-milliseconds")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map_or(WINDOW, Duration::from_millis)
                        .min(Duration::from_secs(60));
                    let wait = match (status, body["policyName"].as_str()) {
                        _ if retry_after.is_some() => retry_after.unwrap_or_default(),
                        (429, Some("SECONDLY")) => Duration::from_secs(1),
                        (429, Some("DAILY")) => backoff(attempt),
                        (429, _) => window,
                        (423, _) => Duration::from_secs(2),
                        _ => backoff(attempt),
                    };
                    if status == 429 {
                        // Everyone waits: the allowance is the account's, not this call's.
                        self.pause_for(wait);
                    }
                    tracing::debug!(connector = %self.connector, %path, status, attempt, wait_ms = wait.as_millis() as u64, "HubSpot asked to retry");
                    wait
                }
            };
            if attempt < ATTEMPTS {
                tokio::time::sleep(wait).await;
            }
        }
        Err(last.unwrap_or_else(|| self.error(format!("{method} {path} failed"), object)))
    }

    fn error(&self, message: String, object: Option<&str>) -> ConnectorError {
        let e = ConnectorError::new(&self.connector, message);
        match object {
            Some(o) => e.object(o),
            None => e,
        }
    }

    /// The error for a non-2xx answer: HubSpot's own words, retryable where waiting may help.
    fn failure(&self, method: &reqwest::Method, path: &str, status: u16, body: &Value, object: Option<&str>) -> ConnectorError {
        let said = body["message"].as_str().or(body.as_str()).unwrap_or("no message").to_string();
        let category = body["category"].as_str().or(body["policyName"].as_str()).unwrap_or("");
        let details: Vec<&str> = body["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str())
            .take(5)
            .collect();
        let mut message = format!("{method} {path}: HubSpot answered {status} {category}: {said}");
        if !details.is_empty() {
            message.push_str(&format!(" ({})", details.join("; ")));
        }
        let error = self.error(message, object);
        match status {
            401 => error.hint("HubSpot refused the token: check `token` (a private app's access token, `pat-…`)"),
            403 => error.hint(
                "the private app lacks a scope this needs: crm.objects.<type>.read and .write for records, crm.schemas.<type>.read for properties, settings.users.read and .write for a `user_role` freeze",
            ),
            404 => error.hint("check the object type (the object's name, or `table:` in its mapping) and `base_url`"),
            429 if body["policyName"] == "DAILY" => error.hint(
                "the account's daily API allowance is used up; it resets at midnight in the account's time zone (an API limit increase raises it)",
            ),
            429 | 423 | 500..=599 => error
                .retryable(true)
                .hint("HubSpot kept refusing after several tries; the step's `retries:` runs it again later"),
            _ => error,
        }
    }

    /// Waits until the limiter lets a request start (and, for a search, for its slot).
    async fn wait_turn(&self, search: bool) {
        let start = {
            let mut limits = self.limits.lock().expect("limits lock");
            let now = Instant::now();
            let mut start = limits.paused_until.filter(|t| *t > now).unwrap_or(now);
            if search {
                start = start.max(limits.next_search);
                limits.next_search = start + SEARCH_SPACING;
            }
            start
        };
        let now = Instant::now();
        if start > now {
            tokio::time::sleep(start - now).await;
        }
    }

    fn pause_for(&self, wait: Duration) {
        let mut limits = self.limits.lock().expect("limits lock");
        let until = Instant::now() + wait;
        limits.paused_until = Some(limits.paused_until.map_or(until, |t| t.max(until)));
    }

    /// Reads HubSpot's rate-limit headers: when what is left of the window's allowance is no more
    /// than the requests in flight, no request starts until the window ends.
    fn note_limits(&self, headers: &reqwest::header::HeaderMap, sent_at: Instant) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let Some(remaining) = number("x-hubspot-ratelimit-remaining") else {
            return;
        };
        let interval = number("x-hubspot-ratelimit-interval-milliseconds").map_or(WINDOW, Duration::from_millis);
        let mut limits = self.limits.lock().expect("limits lock");
        let now = Instant::now();
        if number("x-hubspot-ratelimit-max").is_some_and(|max| remaining + 1 >= max) {
            limits.window_start = Some(sent_at);
        }
        // Requests still in flight may use what is left (this one's permit is returned already).
        let in_flight = self.concurrency.saturating_sub(self.in_flight.available_permits()) as u64;
        if remaining <= in_flight {
            let until = limits
                .window_start
                .map(|start| start + interval)
                .filter(|end| *end > now)
                .unwrap_or(now + interval);
            limits.paused_until = Some(limits.paused_until.map_or(until, |t| t.max(until)));
            tracing::debug!(connector = %self.connector, remaining, wait_ms = (until - now).as_millis() as u64, "rate limit nearly used; pausing");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers saying the window's allowance is used up pause new requests until the window ends;
    /// some left does not.
    #[test]
    fn nearly_used_allowance_pauses() {
        let api = Api::new("crm", "http://127.0.0.1:1", "t".into(), 2).unwrap();
        let headers = |remaining: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("x-hubspot-ratelimit-max", "10".parse().unwrap());
            h.insert("x-hubspot-ratelimit-remaining", remaining.parse().unwrap());
            h.insert("x-hubspot-ratelimit-interval-milliseconds", "10000".parse().unwrap());
            h
        };
        let first = Instant::now();
        api.note_limits(&headers("9"), first);
        api.note_limits(&headers("1"), Instant::now());
        assert!(api.limits.lock().unwrap().paused_until.is_none(), "one left and nothing in flight");
        api.note_limits(&headers("0"), Instant::now());
        let until = api.limits.lock().unwrap().paused_until.expect("paused");
        assert_eq!(
            until,
            first + Duration::from_secs(10),
            "until the window that began with the first request ends"
        );
    }
}
