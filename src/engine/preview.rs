//! Read-only previews of steps: what each would change, computed from real reads and nothing
//! written anywhere (connectors, store, journal, channels). `execute --dry-run` prints them.

use std::time::Instant;

use serde_json::json;

use super::{Context, EngineError, RunStatus, RunSummary, StepOutcome, StepReport};
use crate::playbook::{Action, Step};

fn outcome(summary: String, detail: serde_json::Value) -> Result<StepOutcome, EngineError> {
    Ok(StepOutcome { summary, detail })
}

/// What `step` would do.
pub async fn step(ctx: &Context, step: &Step) -> Result<StepOutcome, EngineError> {
    match &step.action {
        Action::Backup(args) => {
            let connector = ctx.connector(&args.from).await?;
            let objects = args.objects.clone().unwrap_or_else(|| connector.objects());
            let mut counts = Vec::new();
            for o in &objects {
                counts.push(format!("{o} ~{}", connector.estimated_count(o).await.unwrap_or(0)));
            }
            outcome(
                format!("would snapshot `{}`: {}", args.from, counts.join(", ")),
                json!({"objects": objects}),
            )
        }
        Action::Verify(args) if args.connector.is_some() => {
            // Earlier steps did not really run, so the comparison is reported, not judged.
            let name = args.connector.as_deref().unwrap_or_default();
            let reference = args.against.as_deref().or(args.snapshot.as_deref()).unwrap_or("latest");
            let manifest = ctx.store.resolve(reference, Some(name))?;
            let connector = ctx.connector(name).await?;
            let objects = args.objects.clone().unwrap_or_else(|| manifest.objects.keys().cloned().collect());
            let lines = super::verify::describe_diffs(&super::verify::compare_live(ctx, connector.as_ref(), &manifest, &objects).await?);
            let now = if lines.is_empty() {
                "equal now".to_string()
            } else {
                format!("now: {}", lines.join("; "))
            };
            outcome(format!("would compare `{name}` with snapshot {} ({now})", manifest.id), json!({}))
        }
        Action::Verify(args) => super::verify::run(ctx, args).await,
        Action::Freeze(args) => match ctx.journal.open_freezes(Some(&args.connector)).await?.pop() {
            Some(f) => outcome(
                format!(
                    "`{}` is already frozen by run {} since {}: nothing to do",
                    args.connector, f.run_id, f.frozen_at
                ),
                json!({}),
            ),
            None => {
                let method = ctx
                    .playbook
                    .connector(&args.connector)
                    .and_then(|c| c.spec.freeze.clone())
                    .and_then(|f| f.method);
                ctx.connector(&args.connector).await?.health().await?;
                outcome(
                    format!(
                        "would freeze `{}` ({})",
                        args.connector,
                        method.unwrap_or_else(|| "default method".into())
                    ),
                    json!({}),
                )
            }
        },
        Action::Unfreeze(args) => match ctx.journal.open_freezes(Some(&args.connector)).await?.pop() {
            Some(f) => outcome(
                format!(
                    "would unfreeze `{}` (frozen by run {} since {})",
                    args.connector, f.run_id, f.frozen_at
                ),
                json!({}),
            ),
            None => outcome(
                format!("`{}` is not frozen by this tool: nothing to undo", args.connector),
                json!({}),
            ),
        },
        Action::ExportDelta(args) => {
            let plan = super::delta::plan(ctx, args).await?;
            let counts: Vec<String> = plan
                .objects
                .iter()
                .map(|o| format!("{} +{} ~{} -{}", o.object, o.counts.created, o.counts.changed, o.counts.deleted))
                .collect();
            outcome(
                format!(
                    "would export from `{}` since {}: {}",
                    args.from,
                    crate::record::format_time(&plan.since),
                    counts.join(", ")
                ),
                json!({"objects": plan.objects.iter().map(|o| (o.object.clone(), json!(o.counts))).collect::<serde_json::Map<_, _>>()}),
            )
        }
        Action::Restore(args) => {
            let plan = super::restore::plan(ctx, args).await?;
            let counts: Vec<String> = plan
                .order
                .iter()
                .map(|o| {
                    let d = &plan.diffs[o];
                    let deletes = if plan.replace { d.added.len() } else { 0 };
                    format!("{o}: insert {}, update {}, delete {}", d.deleted.len(), d.changed.len(), deletes)
                })
                .collect();
            outcome(
                format!(
                    "would restore `{}` to snapshot {}: {}",
                    args.to,
                    plan.manifest.id,
                    counts.join("; ")
                ),
                json!({"snapshot": plan.manifest.id}),
            )
        }
        Action::Notify(args) => {
            let context =
                json!({"playbook": ctx.playbook.name, "phase": "(dry run)", "status": "dry run", "run_id": ctx.run_id, "steps": []});
            let text = crate::notify::render(&args.template, &ctx.playbook.templates, &context).map_err(|e| EngineError::Proof {
                message: e.to_string(),
                hint: "fix the template".into(),
            })?;
            outcome(
                format!(
                    "would send `{}` ({} bytes) to {}",
                    args.template,
                    text.len(),
                    args.channels.join(", ")
                ),
                json!({}),
            )
        }
        Action::Pause(args) => outcome(
            format!(
                "would wait for the operator{}",
                args.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
            ),
            json!({}),
        ),
        Action::Check(_) => Err(EngineError::Unsupported { step: "check".into() }),
    }
}

/// Previews every step of `phase` in order; nothing is journaled.
pub async fn dry_run(ctx: &Context, phase: &str) -> RunSummary {
    let started = Instant::now();
    let mut reports = Vec::new();
    let mut status = RunStatus::Succeeded;
    let mut error = None;
    for s in ctx.playbook.phases.get(phase).into_iter().flatten() {
        let t = Instant::now();
        let result = step(ctx, s).await;
        let failed = result.is_err();
        if let Err(e) = &result {
            status = RunStatus::Failed;
            error = Some(format!("step `{}` would fail: {e}", s.name));
        }
        reports.push(StepReport {
            name: s.name.clone(),
            action: s.action.keyword().into(),
            status: if failed { "failed".into() } else { "dry run".into() },
            duration_ms: t.elapsed().as_millis(),
            summary: result.as_ref().ok().map(|o| o.summary.clone()),
            error: result.err().map(|e| e.to_string()),
            on_failure: false,
        });
    }
    RunSummary {
        run_id: "dry-run".into(),
        phase: phase.into(),
        status,
        duration_ms: started.elapsed().as_millis(),
        steps: reports,
        error,
    }
}
