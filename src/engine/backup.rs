//! The `backup` step: export objects of a connector into a new snapshot.
//!
//! Records stream from the connector in pages; pages are cut into chunks of about
//! [`CHUNK_TARGET`] bytes and each chunk is encoded, hashed, compressed and written on a blocking
//! thread, with at most `threads + 1` chunks in flight, so memory stays flat for any table size.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::json;

use super::{Context, EngineError, StepOutcome};
use crate::connectors::{Connector, EncodedPages};
use crate::digest::{ObjectDigester, root_digest};
use crate::playbook::model::BackupArgs;
use crate::store::ChunkEncoder;
use crate::store::manifest::ChunkRef;
use crate::store::manifest::{MANIFEST_FORMAT, Manifest, ObjectEntry, SnapshotKind};

/// Uncompressed bytes per chunk, roughly.
pub const CHUNK_TARGET: usize = 8 << 20;

type ChunkJob = tokio::task::JoinHandle<Result<(ChunkRef, Vec<u8>), crate::store::StoreError>>;

/// Streams one object of a connector into chunks; returns its manifest entry.
///
/// Records are encoded and hashed as they arrive (so only bytes, not records, wait for the
/// workers); full chunk bodies are compressed and written on blocking threads, at most `threads`
/// at a time, and their buffers come back for reuse.
pub async fn write_object(
    ctx: &Context,
    connector: &dyn Connector,
    object: &str,
    since: Option<DateTime<Utc>>,
) -> Result<ObjectEntry, EngineError> {
    // A comparison earlier in the run may have narrowed the fields read (see
    // `Connector::align_to_snapshot`); a backup holds every field.
    connector.align_to_snapshot(object, &serde_json::Value::Null).await?;
    let total = connector.estimated_count(object).await;
    let pages = connector.export_encoded(object, since);
    write_pages(ctx, &format!("{} {object}", connector.name()), object, pages, total).await
}

/// Writes a stream of record pages as one object of a snapshot; `label` names the progress bar.
pub async fn write_pages(
    ctx: &Context,
    label: &str,
    object: &str,
    mut pages: EncodedPages,
    total: Option<u64>,
) -> Result<ObjectEntry, EngineError> {
    let bar = ctx.progress.bar(label, total);
    let started = std::time::Instant::now();
    let expected = total.unwrap_or(0) as usize;
    let mut encoder = ChunkEncoder {
        pairs: ObjectDigester::with_capacity(expected + expected / 64, 8),
        ..Default::default()
    };
    encoder.raw.reserve(CHUNK_TARGET + (CHUNK_TARGET >> 4));
    let mut entry = ObjectEntry {
        count: 0,
        deleted: 0,
        digest: Default::default(),
        raw_bytes: 0,
        stored_bytes: 0,
        newest_modified: None,
        chunks: vec![],
        index: Vec::new(),
        delta: None,
    };
    let mut in_flight: VecDeque<ChunkJob> = VecDeque::new();
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut chunk_start = 0u64;
    // Folds the oldest finished chunk into the entry (chunks stay in export order).
    async fn collect(in_flight: &mut VecDeque<ChunkJob>, entry: &mut ObjectEntry, spare: &mut Vec<Vec<u8>>) -> Result<(), EngineError> {
        if let Some(handle) = in_flight.pop_front() {
            let (chunk, mut buffer) = handle.await.map_err(|e| EngineError::Internal(e.to_string()))??;
            entry.raw_bytes += chunk.raw;
            entry.stored_bytes += chunk.size;
            entry.chunks.push(chunk);
            buffer.clear();
            spare.push(buffer);
        }
        Ok(())
    }
    loop {
        let page = pages.next().await.transpose()?;
        let last = page.is_none();
        if let Some(page) = page {
            bar.inc(page.len() as u64);
            encoder.push_page(&page);
            page.recycle();
        }
        let pending = encoder.records - chunk_start;
        if pending > 0 && (encoder.raw.len() >= CHUNK_TARGET || last) {
            if in_flight.len() >= ctx.threads {
                collect(&mut in_flight, &mut entry, &mut spare).await?;
            }
            let next = spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(CHUNK_TARGET + (CHUNK_TARGET >> 4)));
            let raw = std::mem::replace(&mut encoder.raw, next);
            let store = ctx.store.clone();
            in_flight.push_back(tokio::task::spawn_blocking(move || store.write_encoded(raw, pending)));
            chunk_start = encoder.records;
        }
        if last {
            break;
        }
    }
    tracing::debug!(
        object,
        records = encoder.records,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "export finished"
    );
    while !in_flight.is_empty() {
        collect(&mut in_flight, &mut entry, &mut spare).await?;
    }
    bar.finish();
    // The chunk buffers are done with: give their memory back before the index is built.
    drop(spare);
    encoder.raw = Vec::new();
    entry.deleted = encoder.deleted;
    entry.newest_modified = encoder.newest_modified;
    tracing::debug!(object, elapsed_ms = started.elapsed().as_millis() as u64, "chunks written");
    // The object's index: its (id, record hash) pairs in id order, for fast verify and diff.
    let (mut pairs, store) = (encoder.pairs, ctx.store.clone());
    let (digest, index) = tokio::task::spawn_blocking(move || {
        pairs.sort();
        // The digest is hashed while the index is written: both read the sorted pairs.
        let pairs = &pairs;
        std::thread::scope(|s| {
            let digest = s.spawn(|| pairs.digest());
            let index = store.write_index(pairs, CHUNK_TARGET);
            let digest = digest.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            index.map(|index| (digest, index))
        })
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))??;
    entry.index = index;
    tracing::debug!(
        object,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "digest and index written"
    );
    if !digest.duplicates.is_empty() {
        return Err(EngineError::Proof {
            message: format!(
                "{label}, object `{object}`: ids occur more than once: {}",
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
    let created_at = Utc::now();
    let mut entries = BTreeMap::new();
    for object in objects {
        entries.insert(object.clone(), write_object(ctx, connector.as_ref(), object, since).await?);
    }
    finish_snapshot(ctx, connector, entries, kind, since, created_at).await
}

/// Writes the manifest of a snapshot whose objects are written: last, so it exists whole or not.
pub async fn finish_snapshot(
    ctx: &Context,
    connector: &Arc<dyn Connector>,
    entries: BTreeMap<String, ObjectEntry>,
    kind: SnapshotKind,
    since: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
) -> Result<Manifest, EngineError> {
    let schema = connector.describe().await?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        id: crate::ids::new_id(created_at),
        kind,
        connector: connector.name().into(),
        connector_type: connector.kind().name().into(),
        created_at,
        since,
        bookmark: None,
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
