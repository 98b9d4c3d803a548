//! The `verify` step: re-hash a snapshot completely, or compare a live connector with a snapshot
//! record by record.

use futures::StreamExt;
use serde_json::json;

use super::{Context, EngineError, StepOutcome};
use crate::connectors::Connector;
use crate::diff::{PairComparison, PairIndex, RecordDiff};
use crate::digest::{Hash32, ObjectDigester};
use crate::playbook::model::VerifyArgs;
use crate::store::manifest::Manifest;
use crate::store::verify::{preview, verify_snapshot};

/// A comparison of one object of a snapshot with a live connector.
pub struct Compared {
    /// The snapshot's pairs, sorted.
    pub snapshot: ObjectDigester,
    pub diff: RecordDiff,
    index: PairIndex,
}

impl Compared {
    /// The snapshot's hash of `id`.
    pub fn snapshot_hash(&self, id: &str) -> Option<Hash32> {
        self.index.find(&self.snapshot, id).map(|at| self.snapshot.pair_at(at).1)
    }
}

/// Compares `object` of `manifest` with the live connector record by record. The snapshot's
/// pairs are read (and indexed by id) on a blocking thread while the connector's scan starts;
/// live pages wait for them and are then compared as they arrive, so the live pairs are never
/// collected and sorted.
pub async fn compare_object(ctx: &Context, connector: &dyn Connector, manifest: &Manifest, object: &str) -> Result<Compared, EngineError> {
    connector.align_to_snapshot(object, &manifest.schema).await?;
    let started = std::time::Instant::now();
    let (store, m, o) = (ctx.store.clone(), manifest.clone(), object.to_string());
    let mut snapshot = tokio::task::spawn_blocking(move || -> Result<(ObjectDigester, PairIndex), EngineError> {
        let pairs = store.object_pairs(&m, &o)?;
        let index = PairIndex::new(&pairs);
        Ok((pairs, index))
    });
    let joined = |r: Result<Result<(ObjectDigester, PairIndex), EngineError>, tokio::task::JoinError>| {
        r.map_err(|e| EngineError::Internal(e.to_string()))?
    };
    let mut pages = connector.export_hashes(object);
    let (mut waiting, mut ended) = (Vec::new(), false);
    let (pairs, index) = loop {
        tokio::select! {
            read = &mut snapshot => break joined(read)?,
            page = pages.next(), if !ended => match page {
                Some(page) => waiting.push(page?),
                None => ended = true,
            },
        }
    };
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "{object}: snapshot pairs read");
    let mut comparison = PairComparison::new(&pairs, &index);
    for page in waiting {
        for (id, row) in page.iter() {
            comparison.push(id, row.hash);
        }
    }
    if !ended {
        while let Some(page) = pages.next().await {
            for (id, row) in page?.iter() {
                comparison.push(id, row.hash);
            }
        }
    }
    let diff = comparison.finish();
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "{object}: live records compared");
    Ok(Compared {
        snapshot: pairs,
        diff,
        index,
    })
}

/// Compares the live connector's `object` with pairs read before (a snapshot's, sorted).
pub async fn compare_with_pairs(connector: &dyn Connector, object: &str, pairs: &ObjectDigester) -> Result<RecordDiff, EngineError> {
    let index = PairIndex::new(pairs);
    let mut comparison = PairComparison::new(pairs, &index);
    let mut pages = connector.export_hashes(object);
    while let Some(page) = pages.next().await {
        for (id, row) in page?.iter() {
            comparison.push(id, row.hash);
        }
    }
    Ok(comparison.finish())
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
        let compared = compare_object(ctx, connector, manifest, object).await?;
        out.push((object.clone(), compared.diff));
    }
    Ok(out)
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
