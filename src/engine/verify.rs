//! The `verify` step: re-hash a snapshot completely, or compare a live connector with a snapshot
//! record by record.

use futures::StreamExt;
use serde_json::json;

use super::{Context, EngineError, StepOutcome};
use crate::connectors::Connector;
use crate::diff::{RecordDiff, diff};
use crate::digest::ObjectDigester;
use crate::playbook::model::VerifyArgs;
use crate::store::manifest::Manifest;
use crate::store::verify::{preview, verify_snapshot};

/// Hashes every live record of `object` into sorted pairs.
pub async fn live_pairs(connector: &dyn Connector, object: &str) -> Result<ObjectDigester, EngineError> {
    let mut pages = connector.export_hashes(object);
    // A guess (a rowid span, say), so only up to a bound.
    let expected = connector.estimated_count(object).await.unwrap_or(0).min(1 << 24) as usize;
    let mut all = ObjectDigester::with_capacity(expected, 8);
    while let Some(page) = pages.next().await {
        for (id, row) in page?.iter() {
            all.push(id, row.hash);
        }
    }
    all.finish();
    Ok(all)
}

/// Compares each object of `manifest` with the live connector.
pub async fn compare_live(
    ctx: &Context,
    connector: &dyn Connector,
    manifest: &Manifest,
    objects: &[String],
) -> Result<Vec<(String, RecordDiff)>, EngineError> {
    let mut out = Vec::new();
    for object in objects {
        let (snapshot, live) = snapshot_and_live(ctx, connector, manifest, object).await?;
        out.push((object.clone(), diff(&snapshot, &live)));
    }
    Ok(out)
}

/// The `(id, hash)` pairs of `object` in `manifest` and in the live connector, both sorted, read
/// at the same time (the snapshot's index on a blocking thread, the connector's scan beside it).
pub async fn snapshot_and_live(
    ctx: &Context,
    connector: &dyn Connector,
    manifest: &Manifest,
    object: &str,
) -> Result<(ObjectDigester, ObjectDigester), EngineError> {
    connector.align_to_snapshot(object, &manifest.schema).await?;
    let started = std::time::Instant::now();
    let (store, m, o) = (ctx.store.clone(), manifest.clone(), object.to_string());
    let snapshot = async {
        let pairs = tokio::task::spawn_blocking(move || store.object_pairs(&m, &o))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(EngineError::from);
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "{object}: snapshot pairs read");
        pairs
    };
    let live = async {
        let pairs = live_pairs(connector, object).await;
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "{object}: live pairs read");
        pairs
    };
    futures::try_join!(snapshot, live)
}

/// Renders per-object differences, one line per kind.
pub fn describe_diffs(diffs: &[(String, RecordDiff)]) -> Vec<String> {
    let mut lines = Vec::new();
    for (object, d) in diffs {
        for (kind, ids) in [("added", &d.added), ("changed", &d.changed), ("deleted", &d.deleted)] {
            if !ids.is_empty() {
                lines.push(format!("object `{object}`: {} {kind}: {}", ids.len(), preview(ids)));
            }
        }
    }
    lines
}

pub async fn run(ctx: &Context, args: &VerifyArgs) -> Result<StepOutcome, EngineError> {
    if let Some(name) = &args.connector {
        let reference = args.against.as_deref().or(args.snapshot.as_deref()).unwrap_or("latest");
        let manifest = ctx.store.resolve(reference, Some(name))?;
        let connector = ctx.connector(name).await?;
        let objects = args.objects.clone().unwrap_or_else(|| manifest.objects.keys().cloned().collect());
        let diffs = compare_live(ctx, connector.as_ref(), &manifest, &objects).await?;
        let lines = describe_diffs(&diffs);
        if !lines.is_empty() {
            return Err(EngineError::Proof {
                message: format!(
                    "connector `{name}` differs from snapshot {}:\n  {}",
                    manifest.id,
                    lines.join("\n  ")
                ),
                hint: format!(
                    "restore the snapshot (`restore: {{ to: {name}, snapshot: {} }}`) or take a new backup",
                    manifest.id
                ),
            });
        }
        return Ok(StepOutcome {
            summary: format!(
                "connector `{name}` equals snapshot {} ({} records)",
                manifest.id,
                manifest.total_records()
            ),
            detail: json!({"connector": name, "snapshot": manifest.id, "root_digest": manifest.root_digest, "equal": true}),
        });
    }
    let reference = args.snapshot.as_deref().unwrap_or("latest");
    let manifest = ctx.store.resolve(reference, None)?;
    let (store, m, threads) = (ctx.store.clone(), manifest.clone(), ctx.threads);
    let read_data = args.read_data.unwrap_or(true);
    let report = tokio::task::spawn_blocking(move || verify_snapshot(&store, &m, threads, read_data))
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    if !report.findings.is_empty() {
        let lines: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        return Err(EngineError::Proof {
            message: format!("snapshot {} is damaged:\n  {}", manifest.id, lines.join("\n  ")),
            hint: "take a new backup; do not restore from this snapshot".into(),
        });
    }
    Ok(StepOutcome {
        summary: format!(
            "snapshot {} verified: {} records, {}",
            manifest.id, report.records, manifest.root_digest
        ),
        detail: json!({"snapshot": manifest.id, "records": report.records, "root_digest": manifest.root_digest, "findings": 0}),
    })
}
