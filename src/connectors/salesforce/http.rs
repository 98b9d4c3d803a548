//! The `salesforce` connector's HTTP client: `Authorization: Bearer` on every call (the token goes
//! nowhere else: not in URLs, errors or logs), HTTPS that verifies the server (trusting, besides
//! the system's roots, only the CAs the playbook or the tool's own sandbox names), at most
//! `concurrency` requests in flight, and the org's API usage read from every answer's
//! `Sforce-Limit-Info: api-usage=N/M` (a warning at 90 %, and the figure in every error).
//!
//! Idempotent calls (every GET, PATCH and DELETE the connector makes: reads, updates by id,
//! deletes by id) are retried with backoff on 5xx, timeouts and broken connections, honouring
//! `Retry-After`; anything else is sent once. A 403 `REQUEST_LIMIT_EXCEEDED` is never retried:
//! the org's allowance (or its limit of long-running requests) is used up, and more calls only
//! spend what other integrations need.

use std::time::Duration;

use serde_json::Value;

use crate::connectors::ConnectorError;
use crate::connectors::retry::{backoff, retry_after};

/// Tries per idempotent call before giving up (the step's `retries:` may then run it again).
const ATTEMPTS: u32 = 6;
/// Usage of the org's daily allowance from which a warning is logged, in percent.
const WARN_AT_PERCENT: u64 = 90;

/// The org's API usage as the last answer reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub used: u64,
    pub max: u64,
}

impl Usage {
    /// Reads `api-usage=N/M` from a `Sforce-Limit-Info` value (other parts, such as
    /// `api-bursts=…`, may follow after `;` or `,`).
    pub fn parse(text: &str) -> Option<Usage> {
        text.split([';', ',']).find_map(|part| {
            let (used, max) = part.trim().strip_prefix("api-usage=")?.split_once('/')?;
            Some(Usage {
                used: used.trim().parse().ok()?,
                max: max.trim().parse().ok()?,
            })
        })
    }

    fn percent(self) -> u64 {
        self.used.saturating_mul(100).checked_div(self.max).unwrap_or(0)
    }
}

/// Where the client stands with the org's allowance.
#[derive(Default)]
struct Limits {
    usage: Option<Usage>,
    /// The highest warning level logged so far (90, then 100 %).
    warned: u64,
}

pub struct Api {
    connector: String,
    base: String,
    /// `/services/data/vNN.N`
    data: String,
    token: String,
    http: reqwest::Client,
    in_flight: tokio::sync::Semaphore,
    limits: std::sync::Mutex<Limits>,
}

/// How to build the client's TLS trust.
pub enum Trust {
    /// The system's roots (Salesforce itself).
    System,
    /// The system's roots and these CA certificates (PEM), e.g. a TLS-inspecting proxy's.
    Also(Vec<u8>),
    /// Only this CA (PEM): the tool's own sandbox.
    Only(Vec<u8>),
}

impl Api {
    pub fn new(connector: &str, base: &str, version: &str, token: String, concurrency: usize, trust: Trust) -> Result<Api, ConnectorError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("rollback/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .https_only(!is_loopback_http(base));
        let certificates = |pem: &[u8]| {
            let not_pem = |why: String| {
                ConnectorError::new(connector, format!("the CA certificate is not PEM: {why}"))
                    .hint("name a PEM file (`-----BEGIN CERTIFICATE-----`) in `tls: { root_cert: PATH }`")
                    .bad_input()
            };
            match reqwest::Certificate::from_pem_bundle(pem) {
                Ok(certs) if certs.is_empty() => Err(not_pem("it holds no certificate".into())),
                Ok(certs) => Ok(certs),
                Err(e) => Err(not_pem(e.to_string())),
            }
        };
        builder = match trust {
            Trust::System => builder,
            Trust::Also(pem) => builder.tls_certs_merge(certificates(&pem)?),
            Trust::Only(pem) => builder.tls_certs_only(certificates(&pem)?),
        };
        let http = builder
            .build()
            .map_err(|e| ConnectorError::new(connector, format!("cannot set up HTTPS: {e}")))?;
        Ok(Api {
            connector: connector.into(),
            base: base.trim_end_matches('/').into(),
            data: format!("/services/data/{version}"),
            // A token from `${env:…}` keeps what the variable holds, a trailing newline included.
            token: token.trim().to_string(),
            http,
            in_flight: tokio::sync::Semaphore::new(concurrency),
            limits: std::sync::Mutex::new(Limits::default()),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The REST API path of `rest` (`/sobjects/…`, `/query`, …) in the configured version.
    pub fn data(&self, rest: &str) -> String {
        format!("{}{rest}", self.data)
    }

    /// The org's API usage as last reported.
    pub fn usage(&self) -> Option<Usage> {
        self.limits.lock().map_or(None, |l| l.usage)
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)], object: Option<&str>) -> Result<Value, ConnectorError> {
        self.call(reqwest::Method::GET, path, query, &[], None::<&Value>, object).await
    }

    /// A GET with extra request headers (`Sforce-Query-Options`).
    pub async fn get_with(
        &self,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        object: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        self.call(reqwest::Method::GET, path, query, headers, None::<&Value>, object).await
    }

    /// A POST, sent once (it is not idempotent).
    pub async fn post(&self, path: &str, body: &Value, object: Option<&str>) -> Result<Value, ConnectorError> {
        self.call(reqwest::Method::POST, path, &[], &[], Some(body), object).await
    }

    pub async fn patch(&self, path: &str, body: &Value, object: Option<&str>) -> Result<Value, ConnectorError> {
        self.call(reqwest::Method::PATCH, path, &[], &[], Some(body), object).await
    }

    /// A PATCH whose body is JSON text already (numbers written exactly, see
    /// [`crate::exact_json::write`]).
    pub async fn patch_text(&self, path: &str, body: String, object: Option<&str>) -> Result<Value, ConnectorError> {
        let raw = serde_json::value::RawValue::from_string(body)
            .map_err(|e| self.error(format!("PATCH {path}: the body is not JSON: {e}"), object))?;
        self.call(reqwest::Method::PATCH, path, &[], &[], Some(&raw), object).await
    }

    pub async fn delete(&self, path: &str, query: &[(&str, &str)], object: Option<&str>) -> Result<Value, ConnectorError> {
        self.call(reqwest::Method::DELETE, path, query, &[], None::<&Value>, object).await
    }

    /// Sends one call (retrying an idempotent one on transient failures); the 2xx answer's JSON
    /// body (null when empty), or the error that ended it. `path` starts with `/`: a path on the
    /// instance, never another host (the token goes nowhere else).
    async fn call<B: serde::Serialize + ?Sized + Sync>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Option<&B>,
        object: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(self.error(format!("Salesforce named `{path}`, which is no path on the instance"), object));
        }
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query)
            .map_err(|e| self.error(format!("`{}{path}` is not a URL: {e}", self.base), object))?;
        let shown = url.path().to_string();
        let idempotent = method != reqwest::Method::POST;
        let attempts = if idempotent { ATTEMPTS } else { 1 };
        let mut last = None;
        for attempt in 1..=attempts {
            let permit = self.in_flight.acquire().await.map_err(|e| self.error(e.to_string(), object))?;
            let mut request = self.http.request(method.clone(), url.clone()).bearer_auth(&self.token);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
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
                    // Timeouts, refused or reset connections, bodies cut short: worth a retry.
                    let e = e.without_url();
                    tracing::debug!(connector = %self.connector, path = %shown, attempt, "Salesforce call failed: {e}");
                    last = Some(
                        self.error(format!("{method} {shown} failed: {}", error_chain(&e)), object)
                            .retryable(true)
                            .hint("is Salesforce (`instance_url`) reachable from here? the step's `retries:` runs it again"),
                    );
                    backoff(attempt)
                }
                Ok((status, headers, bytes)) => {
                    self.note_usage(&headers);
                    let body: Value = if bytes.is_empty() {
                        Value::Null
                    } else {
                        // Numbers longer than an f64 holds (18-digit Number and Currency
                        // fields) are read as their exact text.
                        match crate::exact_json::parse(&bytes) {
                            Ok(v) => v,
                            Err(e) if (200..300).contains(&status) => {
                                last = Some(
                                    self.error(format!("{method} {shown}: Salesforce's answer is not JSON: {e}"), object)
                                        .retryable(true),
                                );
                                if attempt < attempts {
                                    tokio::time::sleep(backoff(attempt)).await;
                                }
                                continue;
                            }
                            Err(_) => Value::String(String::from_utf8_lossy(&bytes).chars().take(300).collect()),
                        }
                    };
                    if (200..300).contains(&status) {
                        return Ok(body);
                    }
                    let error = self.failure(&method, &shown, status, &body, object);
                    if !error.retryable {
                        return Err(error);
                    }
                    last = Some(error);
                    let wait = retry_after(&headers).unwrap_or_else(|| backoff(attempt));
                    tracing::debug!(connector = %self.connector, path = %shown, status, attempt, wait_ms = wait.as_millis() as u64, "Salesforce call to retry");
                    wait
                }
            };
            if attempt < attempts {
                tokio::time::sleep(wait).await;
            }
        }
        Err(last.unwrap_or_else(|| self.error(format!("{method} {shown} failed"), object)))
    }

    fn error(&self, message: String, object: Option<&str>) -> ConnectorError {
        let e = ConnectorError::new(&self.connector, message);
        match object {
            Some(o) => e.object(o),
            None => e,
        }
    }

    /// The error for a non-2xx answer, in Salesforce's words (`errorCode: message`), retryable
    /// where waiting may help.
    fn failure(&self, method: &reqwest::Method, path: &str, status: u16, body: &Value, object: Option<&str>) -> ConnectorError {
        let errors = error_list(body);
        let said = if errors.is_empty() {
            "no error details".to_string()
        } else {
            errors
                .iter()
                .map(|(code, message)| format!("{code}: {message}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut message = format!("{method} {path}: Salesforce answered {status} {said}");
        let usage = self.usage();
        let limited = errors.iter().any(|(code, _)| code == "REQUEST_LIMIT_EXCEEDED");
        if let (true, Some(u)) = (limited, usage) {
            message.push_str(&format!(" (API usage {}/{} in the last 24 hours)", u.used, u.max));
        }
        let error = self.error(message, object);
        let daily = errors.iter().any(|(_, m)| m.starts_with("TotalRequests"));
        match status {
            401 => error.hint(
                "Salesforce refused the token: `token` must be a valid access token or session id for `instance_url` (e.g. `accessToken` from `sf org display --target-org ALIAS --json`); sessions expire, so fetch a fresh one",
            ),
            403 if limited && daily => error.hint(
                "the org's 24-hour API allowance is used up, so nothing was retried; calls free up as the rolling 24 hours pass (Setup → Company Information shows the usage), or ask Salesforce for a higher limit; then run the phase again with `--resume`",
            ),
            403 if limited => error.hint(
                "the org has too many long-running requests at once, so nothing was retried; wait for other jobs to finish or lower `concurrency`, then run the phase again with `--resume`",
            ),
            403 => error.hint(
                "the token's user lacks a permission this needs: read (and, to restore, edit and delete) on the objects, and Manage Users for a `freeze_users` freeze",
            ),
            404 => error.hint("check the object names (sObject API names such as `Contact`), `api_version` and `instance_url`"),
            408 | 429 | 500..=599 => error
                .retryable(true)
                .hint("Salesforce kept failing after several tries; the step's `retries:` runs it again later"),
            _ => error,
        }
    }

    /// Reads `Sforce-Limit-Info`, warning once the org's allowance is 90 % and 100 % used.
    fn note_usage(&self, headers: &reqwest::header::HeaderMap) {
        let Some(usage) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(Usage::parse)
        else {
            return;
        };
        let Ok(mut limits) = self.limits.lock() else { return };
        limits.usage = Some(usage);
        let level = match usage.percent() {
            p if p >= 100 => 100,
            p if p >= WARN_AT_PERCENT => WARN_AT_PERCENT,
            _ => return,
        };
        if level > limits.warned {
            limits.warned = level;
            tracing::warn!(
                connector = %self.connector,
                "Salesforce reports API usage of {}/{} requests in the last 24 hours ({} %); at the limit it refuses calls (REQUEST_LIMIT_EXCEEDED)",
                usage.used,
                usage.max,
                usage.percent()
            );
        }
    }
}

/// `(errorCode, message)` pairs from an error body: Salesforce's array of
/// `{errorCode, message}` (or `statusCode` in collection results), an OAuth error object, or text.
pub fn error_list(body: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    match body {
        Value::Array(items) => items
            .iter()
            .map(|e| {
                let code = e["errorCode"].as_str().or(e["statusCode"].as_str()).unwrap_or("ERROR");
                let mut message = text(&e["message"]);
                if let Some(fields) = e["fields"].as_array().filter(|f| !f.is_empty()) {
                    let names: Vec<String> = fields.iter().map(text).collect();
                    message.push_str(&format!(" (fields {})", names.join(", ")));
                }
                (code.to_string(), message)
            })
            .collect(),
        Value::Object(_) if body["error"].is_string() => vec![(text(&body["error"]), text(&body["error_description"]))],
        Value::String(s) if !s.trim().is_empty() => vec![("ERROR".into(), s.trim().to_string())],
        _ => Vec::new(),
    }
}

/// A reqwest error with its causes (a TLS failure says why only in its source).
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        out.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    out
}

/// Plain HTTP is allowed only to this machine (a local stand-in); a token never crosses a
/// network unencrypted.
fn is_loopback_http(base: &str) -> bool {
    reqwest::Url::parse(base).is_ok_and(|u| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `api-usage=N/M` is read whatever follows it; anything else is no usage.
    #[test]
    fn limit_info_is_parsed_leniently() {
        assert_eq!(Usage::parse("api-usage=18/15000"), Some(Usage { used: 18, max: 15000 }));
        assert_eq!(Usage::parse("api-usage=7/100; api-bursts=1/750"), Some(Usage { used: 7, max: 100 }));
        assert_eq!(Usage::parse("api-bursts=1/750"), None);
        assert_eq!(Usage::parse("api-usage=x/100"), None);
        assert_eq!(Usage { used: 5, max: 0 }.percent(), 0, "no division by zero");
    }

    /// Error bodies in every shape Salesforce sends become `(code, message)` pairs.
    #[test]
    fn error_bodies_are_read() {
        let rest = json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
        assert_eq!(
            error_list(&rest),
            [("INVALID_SESSION_ID".into(), "Session expired or invalid".into())]
        );
        let item = json!([{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing", "fields": ["LastName"]}]);
        assert_eq!(error_list(&item)[0].1, "Required fields are missing (fields LastName)");
        let oauth = json!({"error": "invalid_grant", "error_description": "authentication failure"});
        assert_eq!(error_list(&oauth), [("invalid_grant".into(), "authentication failure".into())]);
        assert!(error_list(&Value::Null).is_empty());
    }

    /// The 90 % warning is logged once per level, and the usage is kept for error messages.
    #[test]
    fn usage_is_noted() {
        let api = Api::new("crm", "https://127.0.0.1:1", "v60.0", "t".into(), 1, Trust::System).unwrap();
        let headers = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("sforce-limit-info", v.parse().unwrap());
            h
        };
        api.note_usage(&headers("api-usage=10/100"));
        assert_eq!(api.limits.lock().unwrap().warned, 0);
        api.note_usage(&headers("api-usage=95/100"));
        assert_eq!(api.limits.lock().unwrap().warned, 90);
        api.note_usage(&headers("api-usage=101/100"));
        assert_eq!(api.limits.lock().unwrap().warned, 100);
        assert_eq!(api.usage(), Some(Usage { used: 101, max: 100 }));
    }

    /// A REQUEST_LIMIT_EXCEEDED refusal is final and says which allowance ran out; a 503 may
    /// be retried; a 401 points at the token.
    #[test]
    fn failures_are_classified() {
        let api = Api::new("crm", "https://127.0.0.1:1", "v60.0", "t".into(), 1, Trust::System).unwrap();
        let get = reqwest::Method::GET;
        let daily = json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]);
        let e = api.failure(&get, "/services/data/v60.0/query", 403, &daily, Some("Contact"));
        assert!(!e.retryable);
        assert!(
            e.to_string().contains("REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."),
            "{e}"
        );
        assert!(e.hint.as_deref().unwrap().contains("24-hour API allowance"));
        let busy = json!([{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]);
        assert!(
            api.failure(&get, "/x", 403, &busy, None)
                .hint
                .as_deref()
                .unwrap()
                .contains("long-running")
        );
        assert!(api.failure(&get, "/x", 503, &json!([]), None).retryable);
        let bad = json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
        assert!(api.failure(&get, "/x", 401, &bad, None).hint.as_deref().unwrap().contains("token"));
    }

    /// Plain HTTP only to this machine.
    #[test]
    fn plain_http_only_locally() {
        assert!(is_loopback_http("http://127.0.0.1:8080"));
        assert!(!is_loopback_http("http://acme.my.salesforce.com"));
        assert!(!is_loopback_http("https://127.0.0.1:8080"));
    }
}
