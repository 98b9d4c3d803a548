//! The `verify` step: re-hash a snapshot completely, or compare a live connector with a snapshot
//! record by record.

use futures::StreamExt;
use serde_json::json;

use super::{Context, EngineError, StepOutcome};
use crate::connectors::Connector;
use crate::diff::{DenseComparison, DenseHashes, PairComparison, PairIndex, RecordDiff};
use crate::digest::{Hash32, ObjectDigester};
use crate::playbook::model::VerifyArgs;
use crate::store::ObjectHashes;
use crate::store::manifest::Manifest;
use crate::store::verify::{preview, verify_snapshot};

/// A comparison of one object of a snapshot with a live connector.
pub struct Compared {
    pub diff: RecordDiff,
    snapshot: Side,
}

/// How the snapshot's side of a comparison was read.
enum Side {
    /// Record hashes by integer id, straight from the index (see [`DenseHashes`]).
    Dense(DenseHashes),
    /// The pairs, sorted, with a lookup by id.
    Pairs(ObjectDigester, PairIndex),
}

/// A comparison of live pairs with either kind of snapshot side.
enum Comparison<'a> {
    Dense(DenseComparison<'a>),
    Pairs(PairComparison<'a>),
}

impl<'a> Comparison<'a> {
    fn new(side: &'a Side) -> Self {
        match side {
            Side::Dense(hashes) => Comparison::Dense(DenseComparison::new(hashes)),
            Side::Pairs(pairs, index) => Comparison::Pairs(PairComparison::new(pairs, index)),
        }
    }

    fn page(&mut self, page: &crate::connectors::EncodedPage) {
        match self {
            Comparison::Dense(c) => page.iter().for_each(|(id, row)| c.push(id, row.hash)),
            Comparison::Pairs(c) => page.iter().for_each(|(id, row)| c.push(id, row.hash)),
        }
    }

    fn finish(self) -> RecordDiff {
        match self {
            Comparison::Dense(c) => c.finish(),
            Comparison::Pairs(c) => c.finish(),
        }
    }
}

impl Compared {
    /// How many records the snapshot holds of the object.
    pub fn snapshot_len(&self) -> usize {
        match &self.snapshot {
            Side::Dense(hashes) => hashes.len(),
            Side::Pairs(pairs, _) => pairs.len(),
        }
    }

    /// The snapshot's hash of `id`.
    pub fn snapshot_hash(&self, id: &str) -> Option<Hash32> {
        match &self.snapshot {
            Side::Dense(hashes) => hashes.hash(id),
            Side::Pairs(pairs, index) => index.find(pairs, id).map(|at| pairs.pair_at(at).1),
        }
    }

    /// Compares the live connector's `object` with the snapshot side read before, again (a
    /// restore's proof): only the connector is read.
    pub async fn compare_again(&self, connector: &dyn Connector, object: &str) -> Result<RecordDiff, EngineError> {
        let mut comparison = Comparison::new(&self.snapshot);
        let mut pages = connector.export_hashes(object);
        while let Some(page) = pages.next().await {
            comparison.page(&page?);
        }
        Ok(comparison.finish())
    }
}

/// Compares `object` of `manifest` with the live connector record by record. The snapshot's
/// side is read on a blocking thread while the connector's scan starts (as hashes by integer id
/// when the ids allow, else as pairs indexed by id); live pages wait for it and are then
/// compared as they arrive, so the live pairs are never collected and sorted.
pub async fn compare_object(ctx: &Context, connector: &dyn Connector, manifest: &Manifest, object: &str) -> Result<Compared, EngineError> {
    connector.align_to_snapshot(object, &manifest.schema).await?;
    let started = std::time::Instant::now();
    let (store, m, o) = (ctx.store.clone(), manifest.clone(), object.to_string());
    let mut snapshot = tokio::task::spawn_blocking(move || -> Result<Side, EngineError> {
        Ok(match store.object_hashes(&m, &o)? {
            ObjectHashes::Dense(hashes) => Side::Dense(hashes),
            ObjectHashes::Pairs(pairs) => {
                let index = PairIndex::new(&pairs);
                Side::Pairs(pairs, index)
            }
        })
    });
    let joined = |r: Result<Result<Side, EngineError>, tokio::task::JoinError>| r.map_err(|e| EngineError::Internal(e.to_string()))?;
    let mut pages = connector.export_hashes(object);
    let (mut waiting, mut ended) = (Vec::new(), false);
    let side = loop {
        tokio::select! {
            read = &mut snapshot => break joined(read)?,
            page = pages.next(), if !ended => match page {
                Some(page) => waiting.push(page?),
                None => ended = true,
            },
        }
    };
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "{object}: snapshot side read");
    let mut comparison = Comparison::new(&side);
    for page in &waiting {
        comparison.page(page);
    }
    drop(waiting);
    if !ended {
        while let Some(page) = pages.next().await {
            comparison.page(&page?);
        }
    }
    let diff = comparison.finish();
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "{object}: live records compared");
    Ok(Compared { diff, snapshot: side })
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
