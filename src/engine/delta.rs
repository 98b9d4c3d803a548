//! The `export_delta` step: what users created, changed and deleted in a connector since
//! `cutover` (or since the last delta's bookmark), as a snapshot of kind `delta`.
//!
//! The baseline is the latest full snapshot of the connector with every later delta applied. With
//! one, a full scan keeps every live record whose hash differs from the baseline (created or
//! changed, whatever its modified time says) and finds deletions (baseline ids that are gone), so
//! no change is lost and no record at the boundary of two deltas is counted twice. Without one,
//! the delta holds the records modified since the bookmark, and says deletions were not detected.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::json;

use super::backup::{finish_snapshot, write_pages};
use super::{Context, EngineError, StepOutcome};
use crate::connectors::Connector;
use crate::digest::Hash32;
use crate::playbook::model::ExportDeltaArgs;
use crate::record::{Fields, Record};
use crate::store::StoreError;
use crate::store::manifest::{DeltaCounts, Manifest, SnapshotKind};

/// id → record hash as of the last snapshot and deltas, per object; `None` when no full
/// snapshot of the connector exists.
fn baseline(ctx: &Context, connector: &str, object: &str) -> Result<Option<HashMap<String, Hash32>>, EngineError> {
    let full = match ctx.store.resolve("latest", Some(connector)) {
        Ok(m) => m,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut ids: HashMap<String, Hash32> = ctx
        .store
        .object_pairs(&full, object)?
        .pairs()
        .map(|(id, h)| (id.to_string(), h))
        .collect();
    for id in ctx.store.snapshot_ids()? {
        if id <= full.id {
            continue;
        }
        let delta = ctx.store.load_manifest(&id)?;
        if delta.kind != SnapshotKind::Delta || delta.connector != connector {
            continue;
        }
        for chunk in ctx.store.read_records(&delta, object) {
            for record in chunk? {
                // A record gone from the connector is a tombstone without fields; one the CRM
                // holds as deleted (a soft delete) is still there, flag and all.
                if record.deleted && record.fields.is_empty() {
                    ids.remove(&record.id);
                } else {
                    let hash = record.hash();
                    ids.insert(record.id, hash);
                }
            }
        }
    }
    Ok(Some(ids))
}

/// The records changed since `since`, all at once (deltas are small next to full snapshots).
async fn changed_since(connector: &dyn Connector, object: &str, since: DateTime<Utc>) -> Result<Vec<Record>, EngineError> {
    let mut pages = connector.export(object, Some(since));
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        out.extend(page?);
    }
    Ok(out)
}

fn bookmark_of(ctx: &Context, args: &ExportDeltaArgs) -> Result<DateTime<Utc>, EngineError> {
    let cutover = || {
        ctx.playbook.cutover.ok_or_else(|| EngineError::Proof {
            message: "export_delta starts at `cutover`, but the playbook sets none".into(),
            hint: "add `cutover:` to the playbook or give `since:`".into(),
        })
    };
    match args.since.as_deref() {
        None | Some("cutover") => cutover(),
        Some("last") => match ctx.store.resolve("latest-delta", Some(&args.from)) {
            Ok(previous) => Ok(previous.bookmark.or(previous.since).map_or_else(cutover, Ok)?),
            Err(StoreError::NotFound { .. }) => cutover(),
            Err(e) => Err(e.into()),
        },
        Some(text) => crate::record::parse_time(text).ok_or_else(|| EngineError::Internal(format!("bad `since`: {text}"))),
    }
}

/// One object's share of a delta, computed but not yet written.
pub struct ObjectDelta {
    pub object: String,
    pub records: Vec<Record>,
    pub counts: DeltaCounts,
}

/// What a delta would hold: per object, the records and counts; plus the bookmarks and notes.
pub struct DeltaPlan {
    pub since: DateTime<Utc>,
    pub bookmark: DateTime<Utc>,
    pub objects: Vec<ObjectDelta>,
    pub notes: Vec<String>,
}

/// Computes the delta, reading only.
pub async fn plan(ctx: &Context, args: &ExportDeltaArgs) -> Result<DeltaPlan, EngineError> {
    let connector = ctx.connector(&args.from).await?;
    let since = bookmark_of(ctx, args)?;
    let objects = args.objects.clone().unwrap_or_else(|| connector.objects());
    let mut notes = Vec::new();
    let mut bookmark = since;
    let mut out = Vec::new();
    let export_started = Utc::now();
    for object in &objects {
        // Every field, whatever a comparison earlier in the run narrowed them to.
        connector.align_to_snapshot(object, &serde_json::Value::Null).await?;
        let base = baseline(ctx, &args.from, object)?;
        let mut counts = DeltaCounts::default();
        let records = if let Some(base) = &base {
            // Every live record whose content differs from the baseline, whatever its modified
            // time says: nothing changed after the baseline is lost, nothing unchanged repeats.
            let mut kept = Vec::new();
            let mut seen = std::collections::HashSet::new();
            let mut pages = connector.export(object, None);
            while let Some(page) = pages.next().await {
                for record in page? {
                    seen.insert(record.id.clone());
                    if base.get(&record.id) != Some(&record.hash()) {
                        kept.push(record);
                    }
                }
            }
            let name: Arc<str> = object.as_str().into();
            let mut gone: Vec<&String> = base.keys().filter(|id| !seen.contains(*id)).collect();
            gone.sort();
            counts.created = kept.iter().filter(|r| !base.contains_key(&r.id)).count() as u64;
            // A record the CRM now holds as deleted (a soft delete) counts as deleted.
            let soft_deleted = kept.iter().filter(|r| r.deleted && base.contains_key(&r.id)).count() as u64;
            counts.changed = kept.len() as u64 - counts.created - soft_deleted;
            counts.deleted = gone.len() as u64 + soft_deleted;
            bookmark = kept.iter().filter_map(|r| r.modified_at).fold(bookmark, DateTime::max);
            kept.extend(gone.into_iter().map(|id| Record {
                object: name.clone(),
                id: id.clone(),
                fields: Fields::new(),
                modified_at: None,
                deleted: true,
            }));
            kept
        } else {
            let records = changed_since(connector.as_ref(), object, since).await?;
            bookmark = records.iter().filter_map(|r| r.modified_at).fold(bookmark, DateTime::max);
            counts.changed = records.len() as u64;
            notes.push(format!(
                "{object}: no full snapshot of `{}` to compare with, so only records modified since {} are taken, deletions are not detected and creations count as changes",
                args.from,
                crate::record::format_time(&since)
            ));
            records
        };
        out.push(ObjectDelta {
            object: object.clone(),
            records,
            counts,
        });
    }
    Ok(DeltaPlan {
        since,
        bookmark: bookmark.min(export_started),
        objects: out,
        notes,
    })
}

pub async fn run(ctx: &Context, args: &ExportDeltaArgs) -> Result<StepOutcome, EngineError> {
    let connector = ctx.connector(&args.from).await?;
    let created_at = Utc::now();
    let DeltaPlan {
        since,
        bookmark,
        objects,
        notes,
    } = plan(ctx, args).await?;
    let mut entries = BTreeMap::new();
    for ObjectDelta { object, records, counts } in objects {
        let pages: crate::connectors::EncodedPages = Box::pin(futures::stream::iter(vec![Ok(
            crate::connectors::EncodedPage::from_records(&records),
        )]));
        let mut entry = write_pages(ctx, &format!("delta {object}"), &object, pages, None).await?;
        entry.delta = Some(counts);
        entries.insert(object, entry);
    }
    let mut manifest: Manifest = finish_snapshot(ctx, &connector, entries, SnapshotKind::Delta, Some(since), created_at).await?;
    manifest.bookmark = Some(bookmark);
    ctx.store.write_manifest(&manifest)?;
    let counts: Vec<String> = manifest
        .objects
        .iter()
        .map(|(o, e)| {
            let d = e.delta.clone().unwrap_or_default();
            format!("{o} +{} ~{} -{}", d.created, d.changed, d.deleted)
        })
        .collect();
    Ok(StepOutcome {
        summary: format!(
            "delta {} of `{}` since {}: {} ({}){}",
            manifest.id,
            args.from,
            crate::record::format_time(&since),
            counts.join(", "),
            manifest.root_digest,
            if notes.is_empty() {
                String::new()
            } else {
                format!("; {}", notes.join("; "))
            }
        ),
        detail: json!({
            "snapshot": manifest.id,
            "connector": args.from,
            "since": since,
            "bookmark": bookmark,
            "root_digest": manifest.root_digest,
            "objects": manifest.objects.iter().map(|(o, e)| (o.clone(), json!({"counts": e.delta, "digest": e.digest}))).collect::<serde_json::Map<_, _>>(),
            "notes": notes,
        }),
    })
}
