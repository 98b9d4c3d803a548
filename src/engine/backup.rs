//! The `backup` step: export objects of a connector into a new snapshot.
//!
//! Records stream from the connector in pages; pages are cut into chunks of about
//! [`CHUNK_TARGET`] bytes and each chunk is encoded, hashed, compressed and written on a blocking
//! thread, with at most `threads + 1` chunks in flight, so memory stays flat for any table size.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};

use super::{Context, EngineError, StepOutcome};
use crate::connectors::Connector;
use crate::digest::{ObjectDigester, root_digest};
use crate::playbook::model::BackupArgs;
use crate::record::Record;
use crate::store::manifest::{MANIFEST_FORMAT, Manifest, ObjectEntry, SnapshotKind};
use crate::store::{Store, WrittenChunk};

/// Uncompressed bytes per chunk, roughly.
pub const CHUNK_TARGET: usize = 2 << 20;

/// A cheap estimate of a record's encoded size.
fn estimate(record: &Record) -> usize {
    64 + record.id.len()
        + record
            .fields
            .iter()
            .map(|(k, v)| {
                k.len()
                    + 4
                    + match v {
                        Value::String(s) => s.len() + 2,
                        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
                        other => other.to_string().len(),
                    }
            })
            .sum::<usize>()
}

/// Streams one object of a connector into chunks; returns its manifest entry.
pub async fn write_object(
    ctx: &Context,
    connector: &dyn Connector,
    object: &str,
    since: Option<DateTime<Utc>>,
) -> Result<ObjectEntry, EngineError> {
    let total = connector.count(object).await.ok();
    let bar = ctx.progress.bar(&format!("{} {object}", connector.name()), total);
    let mut pages = connector.export(object, since);
    let mut in_flight: VecDeque<tokio::task::JoinHandle<Result<WrittenChunk, crate::store::StoreError>>> = VecDeque::new();
    let mut pending: Vec<Record> = Vec::new();
    let mut pending_bytes = 0;
    let limit = ctx.threads;
    let spawn = |store: Store, batch: Vec<Record>| tokio::task::spawn_blocking(move || store.write_chunk(&batch));
    let expected = total.unwrap_or(0) as usize;
    let mut pairs = ObjectDigester::with_capacity(expected + expected / 64, 8);
    let mut entry = ObjectEntry {
        count: 0,
        deleted: 0,
        digest: Default::default(),
        raw_bytes: 0,
        stored_bytes: 0,
        newest_modified: None,
        chunks: vec![],
    };
    // Folds finished chunks into the entry in order, so their partial digests are freed early.
    async fn collect(
        in_flight: &mut VecDeque<tokio::task::JoinHandle<Result<WrittenChunk, crate::store::StoreError>>>,
        entry: &mut ObjectEntry,
        pairs: &mut ObjectDigester,
    ) -> Result<(), EngineError> {
        if let Some(handle) = in_flight.pop_front() {
            let written = handle.await.map_err(|e| EngineError::Internal(e.to_string()))??;
            if written.chunk.records > 0 {
                entry.deleted += written.deleted;
                entry.raw_bytes += written.chunk.raw;
                entry.stored_bytes += written.chunk.size;
                entry.newest_modified = entry.newest_modified.max(written.newest_modified);
                entry.chunks.push(written.chunk);
                pairs.merge(written.pairs);
            }
        }
        Ok(())
    }
    while let Some(page) = pages.next().await {
        let page = page?;
        bar.inc(page.len() as u64);
        for record in page {
            pending_bytes += estimate(&record);
            pending.push(record);
            if pending_bytes >= CHUNK_TARGET {
                if in_flight.len() >= limit {
                    collect(&mut in_flight, &mut entry, &mut pairs).await?;
                }
                in_flight.push_back(spawn(ctx.store.clone(), std::mem::take(&mut pending)));
                pending_bytes = 0;
            }
        }
    }
    if !pending.is_empty() {
        in_flight.push_back(spawn(ctx.store.clone(), pending));
    }
    while !in_flight.is_empty() {
        collect(&mut in_flight, &mut entry, &mut pairs).await?;
    }
    bar.finish();
    let digest = tokio::task::spawn_blocking(move || pairs.finish())
        .await
        .map_err(|e| EngineError::Internal(e.to_string()))?;
    if !digest.duplicates.is_empty() {
        return Err(EngineError::Proof {
            message: format!(
                "connector `{}`, object `{object}`: ids occur more than once: {}",
                connector.name(),
                crate::store::verify::preview(&digest.duplicates)
            ),
            hint: "the `id` column must be unique; set `id:` on the object to its primary key".into(),
        });
    }
    entry.count = digest.count;
    entry.digest = digest.digest;
    Ok(entry)
}

/// Exports `objects` of `connector` into a new snapshot of `kind` and writes its manifest last.
pub async fn snapshot(
    ctx: &Context,
    connector: &Arc<dyn Connector>,
    objects: &[String],
    kind: SnapshotKind,
    since: Option<DateTime<Utc>>,
) -> Result<Manifest, EngineError> {
    let schema = connector.describe().await?;
    let created_at = Utc::now();
    let mut entries = BTreeMap::new();
    for object in objects {
        entries.insert(object.clone(), write_object(ctx, connector.as_ref(), object, since).await?);
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        id: crate::ids::new_id(created_at),
        kind,
        connector: connector.name().into(),
        connector_type: connector.kind().name().into(),
        created_at,
        since,
        run_id: Some(ctx.run_id.clone()),
        playbook_hash: Some(ctx.playbook.hash),
        root_digest: root_digest(entries.iter().map(|(k, v)| (k.as_str(), v.digest))),
        objects: entries,
        schema,
    };
    ctx.store.write_manifest(&manifest)?;
    Ok(manifest)
}

pub async fn run(ctx: &Context, args: &BackupArgs) -> Result<StepOutcome, EngineError> {
    let connector = ctx.connector(&args.from).await?;
    let objects = args.objects.clone().unwrap_or_else(|| {
        ctx.playbook
            .connector(&args.from)
            .map(|c| c.object_names().map(str::to_string).collect())
            .unwrap_or_default()
    });
    let manifest = snapshot(ctx, &connector, &objects, SnapshotKind::Full, None).await?;
    let counts: Vec<String> = manifest.objects.iter().map(|(k, v)| format!("{k} {}", v.count)).collect();
    Ok(StepOutcome {
        summary: format!(
            "snapshot {} of `{}`: {} ({})",
            manifest.id,
            args.from,
            counts.join(", "),
            manifest.root_digest
        ),
        detail: json!({
            "snapshot": manifest.id,
            "connector": args.from,
            "root_digest": manifest.root_digest,
            "objects": manifest.objects.iter().map(|(k, v)| (k.clone(), json!({"count": v.count, "digest": v.digest, "stored_bytes": v.stored_bytes}))).collect::<serde_json::Map<_, _>>(),
        }),
    })
}
