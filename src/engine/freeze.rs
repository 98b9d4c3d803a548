//! The `freeze` and `unfreeze` steps. A freeze's receipt goes to the journal, so an unfreeze in
//! any later run undoes exactly what it did; a write probe proves the state after each.

use serde_json::{Value, json};

use super::{Context, EngineError, StepOutcome};
use crate::playbook::model::ConnectorArgs;

/// A freeze recorded before it changed anything whose run never completed its receipt.
pub(crate) fn is_pending(receipt: &str) -> bool {
    serde_json::from_str::<Value>(receipt).is_ok_and(|r| r["pending"] == true)
}

fn probe_failed(connector: &str, expected: &str) -> EngineError {
    EngineError::Proof {
        message: format!("connector `{connector}`: the write probe shows it is not {expected}"),
        hint: "check the connector's freeze method and the rights of the tool's account; `rollback status` shows what is frozen".into(),
    }
}

pub async fn freeze(ctx: &Context, args: &ConnectorArgs) -> Result<StepOutcome, EngineError> {
    let name = &args.connector;
    if let Some(open) = ctx.journal.open_freezes(Some(name)).await?.pop() {
        if is_pending(&open.receipt) {
            return Err(EngineError::Proof {
                message: format!(
                    "run {} stopped while freezing `{name}` (since {}), before it recorded what it changed: `{name}` may be partly frozen, and the tool cannot tell what to undo",
                    open.run_id, open.frozen_at
                ),
                hint: format!(
                    "check `{name}` by hand (its users' roles, grants or triggers, as its freeze method changes them) and re-open what the interrupted freeze changed, then run an `unfreeze: {{ connector: {name} }}` step, which asks you to confirm that"
                ),
            });
        }
        return Ok(StepOutcome {
            summary: format!(
                "`{name}` is already frozen (by run {} since {}); nothing to do",
                open.run_id, open.frozen_at
            ),
            detail: json!({"connector": name, "already_frozen_by": open.run_id, "since": open.frozen_at}),
        });
    }
    let method = ctx
        .playbook
        .connector(name)
        .and_then(|c| c.spec.freeze.as_ref())
        .and_then(|f| f.method.clone());
    if method.as_deref() == Some("manual") {
        let confirmation = super::pause::confirm(
            ctx,
            &format!("Freeze `{name}` by hand now (for example, make its users read-only in its admin console)."),
        )
        .await?;
        let receipt = json!({"method": "manual", "run": ctx.run_id, "confirmation": confirmation});
        ctx.journal.record_freeze(name, &ctx.run_id, &receipt).await?;
        return Ok(StepOutcome {
            summary: format!("`{name}` frozen by hand (manual; no write probe)"),
            detail: json!({"connector": name, "receipt": receipt}),
        });
    }
    let connector = ctx.connector(name).await?;
    let message = format!(
        "the CRM is read-only during rollback run {} (playbook `{}`)",
        ctx.run_id, ctx.playbook.name
    );
    // Recorded before anything changes: a run that stops half-way (killed, or a lost
    // connection) leaves a pending freeze that `status`, `freeze` and `unfreeze` report, instead
    // of changes nobody knows about.
    let pending = ctx
        .journal
        .record_freeze(
            name,
            &ctx.run_id,
            &json!({"method": method.as_deref().unwrap_or("default"), "pending": true, "run": ctx.run_id}),
        )
        .await?;
    let receipt = match connector.freeze(&ctx.run_id, &message).await {
        Ok(receipt) => receipt,
        Err(e) => {
            // A failed freeze undoes its own changes (each connector does), so nothing is frozen.
            ctx.journal.forget_freeze(pending).await?;
            return Err(e.into());
        }
    };
    if let Err(e) = ctx.journal.complete_freeze(pending, &receipt).await {
        // Without its receipt nobody could undo this freeze later: undo it now.
        let _ = connector.unfreeze(&receipt).await;
        let _ = ctx.journal.forget_freeze(pending).await;
        return Err(e.into());
    }
    if connector.write_probe().await? {
        return Err(probe_failed(name, "frozen"));
    }
    Ok(StepOutcome {
        summary: format!(
            "`{name}` frozen ({}); a user write is refused",
            receipt["method"].as_str().unwrap_or("?")
        ),
        detail: json!({"connector": name, "receipt": receipt, "probe": "write refused"}),
    })
}

pub async fn unfreeze(ctx: &Context, args: &ConnectorArgs) -> Result<StepOutcome, EngineError> {
    let name = &args.connector;
    let open = ctx.journal.open_freezes(Some(name)).await?;
    let connector = ctx.connector(name).await?;
    if open.is_empty() {
        return Ok(StepOutcome {
            summary: format!("`{name}` is not frozen by this tool; nothing to undo"),
            detail: json!({"connector": name, "was_frozen": false, "writable": connector.write_probe().await.ok()}),
        });
    }
    let mut undone = Vec::new();
    let mut manual = false;
    for freeze in open.iter().rev() {
        let receipt: Value =
            serde_json::from_str(&freeze.receipt).map_err(|e| EngineError::Internal(format!("freeze receipt {}: {e}", freeze.id)))?;
        if receipt["method"] == "manual" {
            super::pause::confirm(
                ctx,
                &format!("Re-open `{name}` by hand now: undo the manual freeze of run {}.", freeze.run_id),
            )
            .await?;
            manual = true;
        } else if receipt["pending"] == true {
            super::pause::confirm(
                ctx,
                &format!(
                    "Run {} stopped while freezing `{name}`, before it recorded what it changed. Re-open by hand what it may have changed (users' roles, grants or triggers, as the `{}` freeze changes them); the write probe checks the result.",
                    freeze.run_id,
                    receipt["method"].as_str().unwrap_or("default")
                ),
            )
            .await?;
        } else {
            connector.unfreeze(&receipt).await?;
        }
        ctx.journal.record_unfreeze(freeze.id, &ctx.run_id).await?;
        undone.push(json!({"frozen_by": freeze.run_id, "since": freeze.frozen_at, "receipt": receipt}));
    }
    if !manual && !connector.write_probe().await? {
        return Err(probe_failed(name, "writable again"));
    }
    Ok(StepOutcome {
        summary: format!(
            "`{name}` unfrozen (undid the freeze of run {}); a user write goes through",
            open[0].run_id
        ),
        detail: json!({"connector": name, "undone": undone, "probe": "write accepted"}),
    })
}
