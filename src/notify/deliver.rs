//! Delivering a rendered notification on one channel, with a receipt. Webhooks are retried with
//! exponential backoff (honouring `Retry-After`) on 429, 5xx, timeouts and connection errors,
//! with an `Idempotency-Key` so a receiver can drop duplicates. URLs are secrets (Slack and Teams
//! put the credential in them): they never appear in receipts or errors.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::playbook::model::ChannelSpec;
use crate::playbook::secret::Secret;

/// What happened to one delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    pub channel: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub delivered: bool,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The webhook body for `format`.
pub fn payload(format: &str, subject: &str, text: &str, facts: &Value) -> Value {
    match format {
        "slack" => json!({"text": text}),
        "teams" => json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": subject,
            "title": subject,
            "text": text.replace('\n', "  \n"),
        }),
        "text" => json!({"text": text}),
        _ => json!({"subject": subject, "text": text, "run": facts}),
    }
}

/// Delivers `text` on `channel`; never fails, the receipt says what happened.
pub async fn deliver(name: &str, channel: &ChannelSpec, base_dir: &Path, subject: &str, text: &str, facts: &Value, key: &str) -> Receipt {
    let kind = channel.kind.clone().unwrap_or_default();
    let mut receipt = Receipt {
        channel: name.into(),
        kind: kind.clone(),
        delivered: false,
        attempts: 0,
        http_status: None,
        path: None,
        bytes: None,
        error: None,
    };
    match kind.as_str() {
        "file" => {
            let path = base_dir.join(channel.path.as_deref().unwrap_or("notifications.log"));
            let entry = format!("==== {} {}\n{}\n", crate::journal::now(), key, text.trim_end());
            receipt.attempts = 1;
            receipt.path = Some(path.display().to_string());
            let result = (|| {
                use std::io::Write;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
                file.write_all(entry.as_bytes())?;
                file.sync_all()
            })();
            match result {
                Ok(()) => {
                    receipt.delivered = true;
                    receipt.bytes = Some(entry.len() as u64);
                }
                Err(e) => receipt.error = Some(e.to_string()),
            }
        }
        "webhook" => webhook(channel, base_dir, subject, text, facts, key, &mut receipt).await,
        other => receipt.error = Some(format!("unknown channel type `{other}`")),
    }
    receipt
}

async fn webhook(channel: &ChannelSpec, base_dir: &Path, subject: &str, text: &str, facts: &Value, key: &str, receipt: &mut Receipt) {
    let url = match Secret(channel.url.clone().unwrap_or_default()).resolve(base_dir) {
        Ok(url) => url,
        Err(e) => {
            receipt.error = Some(e.to_string());
            return;
        }
    };
    let timeout = channel
        .timeout
        .as_deref()
        .and_then(crate::playbook::duration::parse_duration)
        .unwrap_or(Duration::from_secs(10));
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(c) => c,
        Err(e) => {
            receipt.error = Some(e.without_url().to_string());
            return;
        }
    };
    let body = payload(channel.format.as_deref().unwrap_or("json"), subject, text, facts);
    let tries = 1 + channel.retries.unwrap_or(3);
    for attempt in 1..=tries {
        receipt.attempts = attempt;
        let mut request = client.post(&url).header("Idempotency-Key", key).json(&body);
        for (k, v) in channel.headers.iter().flatten() {
            match Secret(v.clone()).resolve(base_dir) {
                Ok(v) => request = request.header(k.as_str(), v),
                Err(e) => {
                    receipt.error = Some(format!("header `{k}`: {e}"));
                    return;
                }
            }
        }
        let (retry, wait) = match request.send().await {
            Ok(response) => {
                let status = response.status();
                receipt.http_status = Some(status.as_u16());
                if status.is_success() {
                    receipt.delivered = true;
                    receipt.error = None;
                    return;
                }
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                receipt.error = Some(format!("HTTP {status}"));
                (
                    status.as_u16() == 429 || status.is_server_error(),
                    retry_after.map(|s| Duration::from_secs(s.min(30))),
                )
            }
            Err(e) => {
                let transient = e.is_timeout() || e.is_connect() || e.is_request();
                receipt.error = Some(e.without_url().to_string());
                (transient, None)
            }
        };
        if !retry || attempt == tries {
            return;
        }
        tokio::time::sleep(wait.unwrap_or(Duration::from_millis(200 * 2u64.pow(attempt.min(6))))).await;
    }
}
