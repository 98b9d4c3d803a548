//! Notifications: a webhook receiver that fails twice then succeeds gets the message, and the
//! journal records exactly one delivery (after three attempts); file channels append; previews
//! render without sending; on_failure steps run when a phase fails.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::Sandbox;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tiny HTTP receiver on 127.0.0.1: answers 500 to the first `failures` requests, then 200.
/// Returns its URL and the bodies it received (with the Idempotency-Key of each).
async fn receiver(failures: usize) -> (String, Arc<std::sync::Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let (seen, count) = (seen2.clone(), count.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&buf).to_string();
                let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
                let key = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("idempotency-key:")
                            .map(|v| v.trim().to_string())
                    })
                    .unwrap_or_default();
                seen.lock().unwrap().push((key, body.to_string()));
                let n = count.fetch_add(1, Ordering::SeqCst);
                let status = if n < failures { "500 Internal Server Error" } else { "200 OK" };
                let _ = socket
                    .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").as_bytes())
                    .await;
            });
        }
    });
    (url, seen)
}

fn playbook(s: &Sandbox, extra_phases: &str) {
    let text = s
        .read("rollback.yaml")
        .replace(
            "    log: { type: file, path: notifications.log }\n",
            "    log: { type: file, path: notifications.log }\n    team: { type: webhook, url: \"${env:ROLLBACK_TEST_HOOK}\", format: slack, retries: 3, timeout: 5s }\n",
        )
        .replace("\nphases:\n", &format!("\nphases:{extra_phases}"));
    s.write("rollback.yaml", &text);
}

/// Two failures then success: one delivery recorded, three attempts, same idempotency key.
#[tokio::test(flavor = "multi_thread")]
async fn webhook_retries_until_delivered_once() {
    let s = Sandbox::init(50);
    playbook(
        &s,
        "\n  tell:\n    - backup: { from: legacy }\n    - notify: { channels: [team, log], template: internal }\n",
    );
    let (url, seen) = receiver(2).await;
    let out = tokio::task::spawn_blocking({
        let mut cmd = s.cmd();
        cmd.args(["execute", "--phase", "tell"]).env("ROLLBACK_TEST_HOOK", &url);
        move || common::Run(cmd.output().unwrap())
    })
    .await
    .unwrap();
    out.ok().says("team (HTTP 200, 3 attempts)").says("log (appended").never_says(&url);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|(k, _)| k == &seen[0].0 && !k.is_empty()),
        "one idempotency key: {seen:?}"
    );
    let body: serde_json::Value = serde_json::from_str(&seen[2].1).unwrap();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("phase `tell`") && text.contains("contacts 50"), "{text}");
    let run: serde_json::Value = serde_json::from_str(&s.run(&["runs", "show", "latest", "--format", "json"]).stdout()).unwrap();
    let deliveries = run["steps"][1]["detail"]["deliveries"].as_array().unwrap().clone();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0]["channel"], "team");
    assert_eq!(deliveries[0]["attempts"], 3);
    assert_eq!(deliveries[0]["delivered"], true);
    assert!(!run.to_string().contains(&url), "the webhook URL is a secret");
    assert!(s.read("notifications.log").contains("phase `tell` in progress"));
    s.run(&["notify", "--preview", "next_steps"])
        .ok()
        .says("next steps after phase `tell`");
}

/// A failing phase runs `on_failure` steps, records the failure and exits 1; an unreachable
/// webhook fails its step after its retries.
#[tokio::test(flavor = "multi_thread")]
async fn on_failure_runs_and_failures_are_journaled() {
    let s = Sandbox::init(20);
    playbook(&s, "\n  broken:\n    - verify: { snapshot: nope }\n");
    let text = s.read("rollback.yaml").replace(
        "on_failure:\n  - notify: { channels: [log], template: escalation }\n",
        "on_failure:\n  - notify: { channels: [log], template: escalation }\n  - notify: { channels: [team], template: escalation }\n",
    );
    s.write("rollback.yaml", &text);
    let mut cmd = s.cmd();
    cmd.args(["execute", "--phase", "broken"])
        .env("ROLLBACK_TEST_HOOK", "http://127.0.0.1:9/closed");
    let out = common::Run(cmd.output().unwrap());
    out.exits(1)
        .says("no snapshot matches `nope`")
        .says("(on_failure)")
        .says("not delivered");
    let log = s.read("notifications.log");
    assert!(log.contains("[ESCALATION]") && log.contains("no snapshot matches"), "{log}");
    let run: serde_json::Value = serde_json::from_str(&s.run(&["runs", "show", "latest", "--format", "json"]).stdout()).unwrap();
    assert_eq!(run["run"]["status"], "failed");
    let statuses: Vec<&str> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "succeeded", "failed"]);
}
