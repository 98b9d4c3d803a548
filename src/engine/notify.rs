//! The `notify` step: render a template with the run's figures and deliver it on channels. Each
//! delivery's receipt is kept in the step's journal entry; the step fails if any channel fails.

use serde_json::{Value, json};

use super::{Context, EngineError, StepOutcome};
use crate::journal::Journal;
use crate::playbook::Playbook;
use crate::playbook::duration::format_duration;
use crate::playbook::model::NotifyArgs;

/// The figures templates see, from the journal's record of `run` (so far).
pub async fn context(playbook: &Playbook, journal: &Journal, run: &str, status_override: Option<&str>) -> Result<Value, EngineError> {
    let row = journal.run(run).await?;
    let steps = journal.steps(&row.id).await?;
    let started = chrono::DateTime::parse_from_rfc3339(&row.started_at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok();
    let ended = row
        .finished_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let elapsed = started
        .map(|s| (ended.unwrap_or_else(chrono::Utc::now) - s).to_std().unwrap_or_default())
        .unwrap_or_default();
    let mut restored = serde_json::Map::new();
    let mut deltas = Vec::new();
    let mut snapshots = Vec::new();
    let mut rendered_steps = Vec::new();
    for s in &steps {
        let detail: Value = s
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or(Value::Null);
        match s.action.as_str() {
            "restore" => {
                for (o, c) in detail["objects"].as_object().into_iter().flatten() {
                    restored.insert(
                        o.clone(),
                        json!({"inserted": c["inserted"], "updated": c["updated"], "deleted": c["deleted"]}),
                    );
                }
            }
            "export_delta" => {
                let objects: serde_json::Map<String, Value> = detail["objects"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(o, v)| (o.clone(), v["counts"].clone()))
                    .collect();
                deltas.push(json!({"snapshot": detail["snapshot"], "connector": detail["connector"], "objects": objects}));
            }
            _ => {}
        }
        if let (Some(id), Some(digest)) = (detail["snapshot"].as_str(), detail["root_digest"].as_str())
            && !snapshots.iter().any(|v: &Value| v["id"] == id)
        {
            snapshots.push(json!({"id": id, "digest": digest}));
        }
        rendered_steps.push(json!({
            "name": s.name, "action": s.action, "status": s.status,
            "duration": format_duration(std::time::Duration::from_millis(s.duration_ms.unwrap_or(0).max(0) as u64)),
            "summary": s.summary, "error": s.error,
        }));
    }
    let frozen: Vec<Value> = journal
        .open_freezes(None)
        .await?
        .iter()
        .map(|f| json!({"connector": f.connector, "run": f.run_id, "since": f.frozen_at}))
        .collect();
    let status = status_override.map(str::to_string).unwrap_or_else(|| {
        if row.status == "running" {
            "in progress".into()
        } else {
            row.status.clone()
        }
    });
    Ok(json!({
        "playbook": playbook.name,
        "environment": row.environment,
        "phase": row.phase,
        "run_id": row.id,
        "status": status,
        "started_at": row.started_at,
        "duration": format_duration(elapsed),
        "duration_seconds": elapsed.as_secs_f64(),
        "rto": playbook.rto.map(format_duration),
        "rto_seconds": playbook.rto.map(|r| r.as_secs_f64()),
        "within_rto": playbook.rto.map(|r| elapsed <= r),
        "error": row.error,
        "steps": rendered_steps,
        "restored": restored,
        "deltas": deltas,
        "snapshots": snapshots,
        "frozen": frozen,
    }))
}

pub async fn run(ctx: &Context, args: &NotifyArgs) -> Result<StepOutcome, EngineError> {
    let status = ctx.failure.lock().await.clone().map(|_| "failed");
    let mut context = context(&ctx.playbook, &ctx.journal, &ctx.run_id, status).await?;
    if let Some(error) = ctx.failure.lock().await.clone() {
        context["error"] = json!(error);
    }
    let text = crate::notify::render(&args.template, &ctx.playbook.templates, &context).map_err(|e| EngineError::Proof {
        message: e.to_string(),
        hint: "fix the template".into(),
    })?;
    let subject = text.lines().next().unwrap_or("rollback").to_string();
    let step = ctx.step.load(std::sync::atomic::Ordering::Relaxed);
    let mut receipts = Vec::new();
    for name in &args.channels {
        let Some(channel) = ctx.playbook.channels.get(name) else {
            return Err(EngineError::Internal(format!("channel `{name}` vanished")));
        };
        let key = format!("{}-{step}-{name}", ctx.run_id);
        let facts = json!({"run": ctx.run_id, "phase": context["phase"], "status": context["status"], "playbook": ctx.playbook.name});
        receipts.push(crate::notify::deliver::deliver(name, channel, &ctx.playbook.dir, &subject, &text, &facts, &key).await);
    }
    let failed: Vec<String> = receipts
        .iter()
        .filter(|r| !r.delivered)
        .map(|r| {
            format!(
                "channel `{}`: {} after {} attempts",
                r.channel,
                r.error.as_deref().unwrap_or("not delivered"),
                r.attempts
            )
        })
        .collect();
    let detail = json!({"template": args.template, "subject": subject, "deliveries": receipts});
    if !failed.is_empty() {
        let _ = ctx.journal.event(Some(&ctx.run_id), "error", &detail.to_string()).await;
        return Err(EngineError::Proof {
            message: format!("notification `{}` was not delivered: {}", args.template, failed.join("; ")),
            hint: "check the channel's URL or path and the receiver; the message is in the journal (`rollback runs show`)".into(),
        });
    }
    let summary: Vec<String> = receipts
        .iter()
        .map(|r| match (&r.http_status, &r.path) {
            (Some(status), _) => format!(
                "{} (HTTP {status}, {} attempt{})",
                r.channel,
                r.attempts,
                if r.attempts == 1 { "" } else { "s" }
            ),
            (_, Some(_)) => format!("{} (appended {} bytes)", r.channel, r.bytes.unwrap_or(0)),
            _ => r.channel.clone(),
        })
        .collect();
    Ok(StepOutcome {
        summary: format!("`{}` delivered to {}", args.template, summary.join(", ")),
        detail,
    })
}
