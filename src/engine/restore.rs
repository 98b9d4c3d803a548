//! The `restore` step: make a connector equal to a snapshot, writing only what differs.
//!
//! The snapshot's `(id, hash)` pairs (from its index) are compared with the live connector's;
//! records that are missing or changed are upserted from the snapshot, parents before children,
//! and with `mode: replace` records the snapshot does not hold are deleted, children before
//! parents. Each batch is one transaction and is checkpointed in the journal. The proof is a
//! re-export of the destination whose digest must equal the snapshot's.

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use super::verify::{compare_live, describe_diffs, live_pairs};
use super::{Context, EngineError, StepOutcome};
use crate::connectors::Connector;
use crate::diff::{RecordDiff, diff};
use crate::playbook::model::RestoreArgs;
use crate::store::manifest::Manifest;

/// Records per write batch unless the step says otherwise.
pub const DEFAULT_BATCH: usize = 1000;

/// Orders objects parents first: the playbook's `order:` wins; otherwise the snapshot schema's
/// foreign keys (an object whose table references another's comes after it); ties keep name order.
pub fn parent_first(objects: &[String], manifest: &Manifest, order: Option<&Vec<String>>) -> Vec<String> {
    if let Some(order) = order {
        let mut out: Vec<String> = order.iter().filter(|o| objects.contains(o)).cloned().collect();
        out.extend(objects.iter().filter(|o| !order.contains(o)).cloned());
        return out;
    }
    let schema = &manifest.schema["objects"];
    let table_of = |o: &str| schema[o]["table"].as_str().unwrap_or(o).to_string();
    let tables: BTreeMap<String, String> = objects.iter().map(|o| (table_of(o), o.clone())).collect();
    let parents = |o: &str| -> Vec<String> {
        schema[o]["foreign_keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|fk| fk["table"].as_str())
            .filter_map(|t| tables.get(t).cloned())
            .filter(|p| p != o)
            .collect()
    };
    let mut out: Vec<String> = Vec::new();
    let mut pending: Vec<String> = objects.to_vec();
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|o| parents(o).iter().all(|p| out.contains(p) || !pending.contains(p)));
        // A cycle: take the first remaining object and let the database judge.
        let next = pending.remove(ready.unwrap_or(0));
        out.push(next);
    }
    out
}

static T_APPLY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static T_CKPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
async fn checkpoint(ctx: &Context, key: &str, value: String) {
    let step = ctx.step.load(std::sync::atomic::Ordering::Relaxed);
    if let Err(e) = ctx.journal.checkpoint(&ctx.run_id, step, key, &value).await {
        tracing::warn!("cannot record checkpoint `{key}`: {e}");
    }
}

/// Upserts the snapshot's version of `ids` into `object`, in batches.
async fn upsert(
    ctx: &Context,
    connector: &dyn Connector,
    manifest: &Manifest,
    object: &str,
    wanted: HashSet<String>,
    batch: usize,
) -> Result<u64, EngineError> {
    if wanted.is_empty() {
        return Ok(0);
    }
    // Chunk by chunk, decoding the next chunk while this one is written: memory holds one chunk.
    let total = wanted.len() as u64;
    let wanted = std::sync::Arc::new(wanted);
    let chunks = manifest.objects.get(object).map(|o| o.chunks.clone()).unwrap_or_default();
    let name: std::sync::Arc<str> = object.into();
    let decode = |index: usize| {
        let (store, chunk, wanted, name) = (ctx.store.clone(), chunks[index].clone(), wanted.clone(), name.clone());
        tokio::task::spawn_blocking(move || store.chunk_matching_lines(&chunk, &name, &wanted))
    };
    let bar = ctx.progress.bar(&format!("restore {object}"), Some(total));
    let mut written = 0;
    let mut batches = 0;
    let mut next = (!chunks.is_empty()).then(|| decode(0));
    for index in 0..chunks.len() {
        let Some(pending) = next.take() else { break };
        let t0 = std::time::Instant::now();
        let (lines, _) = pending.await.map_err(|e| EngineError::Internal(e.to_string()))??;
        if index + 1 < chunks.len() {
            next = Some(decode(index + 1));
        }
        let mut rest: &[u8] = &lines;
        while !rest.is_empty() {
            // The next `batch` lines.
            let (mut end, mut count) = (rest.len(), 0);
            for newline in memchr::memchr_iter(b'\n', rest) {
                count += 1;
                if count == batch {
                    end = newline + 1;
                    break;
                }
            }
            let (part, tail) = rest.split_at(end);
            rest = tail;
            let t1 = std::time::Instant::now();
            let done = connector.apply_lines(object, part).await?.written;
            T_APPLY.fetch_add(t1.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
            let t2 = std::time::Instant::now();
            written += done;
            batches += 1;
            bar.inc(done);
            checkpoint(
                ctx,
                &format!("{object}.upserted"),
                format!("{written} records in {batches} batches"),
            )
            .await;
            T_CKPT.fetch_add(t2.elapsed().as_micros() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = t0;
    }
    tracing::debug!(apply_ms = T_APPLY.load(std::sync::atomic::Ordering::Relaxed) / 1000, ckpt_ms = T_CKPT.load(std::sync::atomic::Ordering::Relaxed) / 1000, "restore: upsert timings");
    bar.finish();
    Ok(written)
}

/// Deletes `ids` from `object`, in batches.
async fn delete(ctx: &Context, connector: &dyn Connector, object: &str, ids: &[String], batch: usize) -> Result<u64, EngineError> {
    let mut deleted = 0;
    for part in ids.chunks(batch) {
        deleted += connector.delete(object, part).await?;
        checkpoint(ctx, &format!("{object}.deleted"), deleted.to_string()).await;
    }
    Ok(deleted)
}

/// What a restore would do: the snapshot, the objects in parent-first order, and per object the
/// records the destination lacks or holds differently (`deleted`/`changed`) or holds extra (`added`).
pub struct RestorePlan {
    pub manifest: Manifest,
    pub order: Vec<String>,
    pub diffs: BTreeMap<String, RecordDiff>,
    pub replace: bool,
    pub batch: usize,
}

/// Computes the restore's differences, reading only.
pub async fn plan(ctx: &Context, args: &RestoreArgs) -> Result<RestorePlan, EngineError> {
    let reference = args.snapshot.as_deref().unwrap_or("latest");
    let scope = if reference == "latest" { Some(args.to.as_str()) } else { None };
    let manifest = ctx.store.resolve(reference, scope)?;
    if manifest.kind != crate::store::manifest::SnapshotKind::Full {
        return Err(EngineError::Proof {
            message: format!(
                "snapshot {} is a delta; a restore needs a full snapshot (a delta would delete everything it does not hold)",
                manifest.id
            ),
            hint: "restore `latest` or the id of a full snapshot (`rollback snapshots list` shows the kinds)".into(),
        });
    }
    let connector = ctx.connector(&args.to).await?;
    let replace = args.mode.as_deref().unwrap_or("replace") == "replace";
    let batch = args.batch_size.unwrap_or(DEFAULT_BATCH).max(1);
    let wanted: Vec<String> = args.objects.clone().unwrap_or_else(|| manifest.objects.keys().cloned().collect());
    let configured = connector.objects();
    for object in &wanted {
        if !manifest.objects.contains_key(object) || !configured.contains(object) {
            return Err(EngineError::Proof {
                message: format!(
                    "cannot restore object `{object}`: snapshot {} or connector `{}` does not have it",
                    manifest.id, args.to
                ),
                hint: "restore a snapshot of the same objects, or list `objects:` on the step".into(),
            });
        }
    }
    let order = parent_first(&wanted, &manifest, args.order.as_ref());
    let mut diffs: BTreeMap<String, RecordDiff> = BTreeMap::new();
    for object in &order {
        let (store, m, o) = (ctx.store.clone(), manifest.clone(), object.clone());
        let snapshot = tokio::task::spawn_blocking(move || store.object_pairs(&m, &o))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        let live = live_pairs(connector.as_ref(), object).await?;
        diffs.insert(object.clone(), diff(&snapshot, &live));
    }
    Ok(RestorePlan {
        manifest,
        order,
        diffs,
        replace,
        batch,
    })
}

pub async fn run(ctx: &Context, args: &RestoreArgs) -> Result<StepOutcome, EngineError> {
    let started = std::time::Instant::now();
    let RestorePlan {
        manifest,
        order,
        mut diffs,
        replace,
        batch,
    } = plan(ctx, args).await?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "restore: differences computed");
    let connector = ctx.connector(&args.to).await?;
    let mut upserted = BTreeMap::new();
    // (inserted, updated) per object; the id lists themselves move into the upsert.
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for object in &order {
        let d = diffs.get_mut(object).expect("planned object");
        counts.insert(object.clone(), (d.deleted.len(), d.changed.len()));
        let ids: HashSet<String> = std::mem::take(&mut d.deleted)
            .into_iter()
            .chain(std::mem::take(&mut d.changed))
            .collect();
        upserted.insert(
            object.clone(),
            upsert(ctx, connector.as_ref(), &manifest, object, ids, batch).await?,
        );
    }
    let mut removed = BTreeMap::new();
    for object in order.iter().rev() {
        let extra = &diffs[object].added;
        let n = if replace {
            delete(ctx, connector.as_ref(), object, extra, batch).await?
        } else {
            0
        };
        removed.insert(object.clone(), n);
    }

    tracing::debug!(ms = started.elapsed().as_millis() as u64, "restore: writes done");
    // Proof: the destination now equals the snapshot, object by object. When nothing had to be
    // written, the comparison that found no differences is that proof already.
    let wrote = upserted.values().sum::<u64>() + removed.values().sum::<u64>() > 0;
    let after = if wrote {
        compare_live(ctx, connector.as_ref(), &manifest, &order).await?
    } else {
        order.iter().map(|o| (o.clone(), diffs[o].clone())).collect()
    };
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "restore: proof done");
    let remaining: Vec<(String, RecordDiff)> = after
        .into_iter()
        .map(|(o, mut d)| {
            if !replace {
                d.added.clear();
            }
            (o, d)
        })
        .collect();
    let lines = describe_diffs(&remaining);
    if !lines.is_empty() {
        return Err(EngineError::Proof {
            message: format!(
                "after restoring, connector `{}` still differs from snapshot {}:\n  {}",
                args.to,
                manifest.id,
                lines.join("\n  ")
            ),
            hint: "the destination changed during the restore or refused some writes; freeze it and run the phase again".into(),
        });
    }
    let summary: Vec<String> = order
        .iter()
        .map(|o| format!("{o} +{} ~{} -{}", counts[o].0, counts[o].1, removed[o]))
        .collect();
    Ok(StepOutcome {
        summary: format!(
            "`{}` equals snapshot {} ({}; {} mode)",
            args.to,
            manifest.id,
            summary.join(", "),
            if replace { "replace" } else { "upsert" }
        ),
        detail: json!({
            "connector": args.to,
            "snapshot": manifest.id,
            "root_digest": manifest.root_digest,
            "mode": if replace { "replace" } else { "upsert" },
            "order": order,
            "objects": order.iter().map(|o| (o.clone(), json!({
                "inserted": counts[o].0,
                "updated": counts[o].1,
                "deleted": removed[o],
                "written": upserted[o],
                "kept_extra": if replace { 0 } else { diffs[o].added.len() },
            }))).collect::<serde_json::Map<_, _>>(),
        }),
    })
}
