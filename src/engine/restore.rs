//! The `restore` step: make a connector equal to a snapshot, writing only what differs.
//!
//! The snapshot's `(id, hash)` pairs (from its index) are compared with the live connector's;
//! records that are missing or changed are upserted from the snapshot, parents before children,
//! and with `mode: replace` records the snapshot does not hold are deleted, children before
//! parents. Each batch is one transaction and is checkpointed in the journal. The proof: the
//! destination must equal the snapshot record by record, shown by re-reading the written records
//! when few were written and nobody else wrote (see [`reread_proof`]), else by re-exporting it.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::verify::{Compared, compare_object, describe_diffs};
use super::{Context, EngineError, StepOutcome};
use crate::connectors::{Connector, LinePart, LineParts};
use crate::diff::RecordDiff;
use crate::digest::Hash32;
use crate::playbook::model::RestoreArgs;
use crate::store::chunk::WantedLines;
use crate::store::manifest::Manifest;

/// Records per write batch unless the step says otherwise.
pub const DEFAULT_BATCH: usize = 1000;

/// A restore that writes at most this many records of an object, or at most one in
/// `REREAD_FRACTION` of them, may prove its result by re-reading what it wrote (see
/// [`reread_proof`]); beyond that, re-exporting the whole object is as cheap.
const REREAD_AT_MOST: usize = 10_000;
const REREAD_FRACTION: usize = 4;

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

/// Checkpoints recorded while the next batch is written: a batch's checkpoint only says what
/// is already committed, so the journal's commit (its fsyncs) need not hold up the next batch.
/// One is in flight at a time, so they land in order. Values are cumulative, so while one is in
/// flight, or within [`CHECKPOINT_EVERY`] of the last, a newer one replaces the one waiting
/// (a resume compares again and never rewrites what is committed, so a checkpoint is a progress
/// record, not a promise); [`Self::settle`] writes the one waiting and waits for it.
struct Pipelined {
    in_flight: Option<tokio::task::JoinHandle<()>>,
    waiting: Option<(String, String)>,
    last: Option<std::time::Instant>,
}

/// The least time between two checkpoints of one step's writes (each costs the journal's fsyncs,
/// on the disk the batches are committed to).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

impl Pipelined {
    fn new() -> Self {
        Pipelined {
            in_flight: None,
            waiting: None,
            last: None,
        }
    }

    async fn record(&mut self, ctx: &Context, key: String, value: String) {
        let busy = self.in_flight.as_ref().is_some_and(|h| !h.is_finished());
        let recent = self.last.is_some_and(|t| t.elapsed() < CHECKPOINT_EVERY);
        if busy || recent {
            self.waiting = Some((key, value));
            return;
        }
        self.write(ctx, key, value).await;
    }

    async fn write(&mut self, ctx: &Context, key: String, value: String) {
        if let Some(handle) = self.in_flight.take() {
            let _ = handle.await;
        }
        self.waiting = None;
        self.last = Some(std::time::Instant::now());
        let (journal, run, step) = (
            ctx.journal.clone(),
            ctx.run_id.clone(),
            ctx.step.load(std::sync::atomic::Ordering::Relaxed),
        );
        self.in_flight = Some(tokio::spawn(async move {
            if let Err(e) = journal.checkpoint(&run, step, &key, &value).await {
                tracing::warn!("cannot record checkpoint `{key}`: {e}");
            }
        }));
    }

    async fn settle(&mut self, ctx: &Context) {
        if let Some((key, value)) = self.waiting.take() {
            self.write(ctx, key, value).await;
        }
        if let Some(handle) = self.in_flight.take() {
            let _ = handle.await;
        }
    }
}

/// Chunks decoded at once ahead of the writes when they are filtered (a restore with few
/// differences is a pass over every chunk, and decoding is most of it). Decodes finish out of
/// order and a finished one waits for the one before it, so more of them are in flight than
/// there are cores, which keeps both cores decoding.
const DECODE_AHEAD: usize = 4;

/// Decoded chunks that may wait for the writes when at most a tenth of their records are
/// written (so they hold at most a tenth of a chunk's lines each).
const FILTERED_AHEAD: usize = 8;

/// Bytes of wanted lines that filtered chunks may hold while they wait for the writes, on
/// average (they can hold no more than the wanted records' lines in all).
const FILTERED_BUDGET: u64 = 16 << 20;

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The snapshot records an upsert writes.
enum Wanted {
    /// Every record of the object: no chunk is filtered. `fresh` when the destination holds
    /// none of them (a restore into an empty table), so they can be inserted, not upserted.
    Every { n: u64, fresh: bool },
    /// Some of the object's `of` records, with the snapshot's hash of each (every line read
    /// from the snapshot is checked against it).
    Ids { ids: std::sync::Arc<WantedLines>, of: u64 },
}

impl Wanted {
    /// Whether `diff` says to write every record of the snapshot's `object`: as many as it holds,
    /// as they are distinct snapshot ids.
    fn is_every(d: &RecordDiff, manifest: &Manifest, object: &str) -> bool {
        (d.deleted.len() + d.changed.len()) as u64 == Self::of(manifest, object)
    }

    fn of(manifest: &Manifest, object: &str) -> u64 {
        manifest.objects.get(object).map_or(0, |o| o.chunks.iter().map(|c| c.records).sum())
    }

    /// The records `diff` says to write: those the destination lacks or holds differently, with
    /// their snapshot hashes in `hashes` unless they are every record.
    fn from_diff(d: &mut RecordDiff, manifest: &Manifest, object: &str, hashes: Option<&std::sync::Arc<WantedLines>>) -> Wanted {
        let (n, every, fresh) = (
            (d.deleted.len() + d.changed.len()) as u64,
            Self::is_every(d, manifest, object),
            d.changed.is_empty(),
        );
        // Freed, not cleared: a million ids' list is tens of MB.
        d.deleted = Vec::new();
        d.changed = Vec::new();
        match hashes {
            Some(ids) if !every => Wanted::Ids {
                ids: ids.clone(),
                of: Self::of(manifest, object),
            },
            _ => Wanted::Every { n, fresh },
        }
    }

    fn len(&self) -> u64 {
        match self {
            Wanted::Every { n, .. } => *n,
            Wanted::Ids { ids, .. } => ids.len() as u64,
        }
    }
}

/// Upserts the snapshot's version of the `wanted` records into `object`, in batches of `batch`
/// records (a batch may span chunks), chunk by chunk: memory holds the chunks being decoded and
/// one batch.
async fn upsert(
    ctx: &Context,
    connector: &dyn Connector,
    manifest: &Manifest,
    object: &str,
    wanted: Wanted,
    batch: usize,
) -> Result<u64, EngineError> {
    use futures::StreamExt;
    let total = wanted.len();
    if total == 0 {
        return Ok(0);
    }
    let fresh = matches!(wanted, Wanted::Every { fresh: true, .. });
    let filtered = matches!(wanted, Wanted::Ids { .. });
    let wanted = std::sync::Arc::new(wanted);
    let chunks = manifest.objects.get(object).map(|o| o.chunks.clone()).unwrap_or_default();
    let name: std::sync::Arc<str> = object.into();
    // Chunks are decoded by a task of their own, ahead of the writes: while a batch commits, the
    // next chunks are already being read. Whole chunks (every record wanted) are large, so only
    // a few wait; filtered ones hold only the wanted lines, so more may.
    let (decoding, ahead) = match &*wanted {
        Wanted::Ids { ids, of } if ids.len() as u64 * 10 <= *of => {
            // As many as hold about FILTERED_BUDGET bytes of wanted lines at the average
            // density: few wanted records let the decoding run far ahead of a batch's commit
            // (eight chunks of a 1 % restore hold a few hundred lines, not a batch).
            let raw: u64 = chunks.iter().map(|c| c.raw).sum();
            let per_chunk = (raw / chunks.len().max(1) as u64).saturating_mul(ids.len() as u64) / (*of).max(1);
            let ahead = (FILTERED_BUDGET / per_chunk.max(1)).clamp(FILTERED_AHEAD as u64, 4096);
            (DECODE_AHEAD, ahead as usize)
        }
        // Two chunks in memory besides the one being written, as many as ever.
        _ => (1, 1),
    };
    let (sender, mut decoded) = tokio::sync::mpsc::channel::<Result<Vec<u8>, EngineError>>(ahead);
    let (store, snapshot_id) = (ctx.store.clone(), manifest.id.clone());
    let producer = tokio::spawn(async move {
        let mut chunks = futures::stream::iter(chunks)
            .map(|chunk| {
                let (store, wanted, name) = (store.clone(), wanted.clone(), name.clone());
                tokio::task::spawn_blocking(move || match &*wanted {
                    Wanted::Every { .. } => store.load_chunk(&chunk).map(|raw| (raw, 0)).map_err(EngineError::from),
                    Wanted::Ids { ids, .. } => store.chunk_matching_lines(&chunk, &name, ids).map_err(EngineError::from),
                })
            })
            .buffered(decoding);
        let mut found = 0;
        while let Some(next) = chunks.next().await {
            let next = next.map_err(|e| EngineError::Internal(e.to_string())).and_then(|r| r);
            let failed = next.is_err();
            let next = next.map(|(lines, count)| {
                found += count;
                lines
            });
            // A closed channel: the writes stopped (an error), so decoding stops too.
            if sender.send(next).await.is_err() || failed {
                return;
            }
        }
        if let Wanted::Ids { ids, .. } = &*wanted
            && found != ids.len()
        {
            let _ = sender
                .send(Err(EngineError::Proof {
                    message: format!(
                        "snapshot {snapshot_id} holds {found} of the {} `{name}` records its index lists for this restore: its chunks and its index disagree",
                        ids.len()
                    ),
                    hint: format!("run `rollback verify` on snapshot {snapshot_id}; restore another snapshot if it is damaged"),
                }))
                .await;
        }
    });
    // Stops the decoding when the writes end early.
    let _producer = AbortOnDrop(producer);
    let bar = ctx.progress.bar(&format!("restore {object}"), Some(total));
    let (mut written, mut batches) = (0, 0);
    let mut checkpoints = Pipelined::new();
    let mut committed = async |done: u64| {
        written += done;
        batches += 1;
        bar.inc(done);
        checkpoints
            .record(ctx, format!("{object}.upserted"), format!("{written} records in {batches} batches"))
            .await;
    };
    // The newest checkpoint is written also when a batch fails.
    let written_all = if filtered {
        streamed_batches(connector, object, &mut decoded, batch, &mut committed).await
    } else {
        gathered_batches(connector, object, fresh, &mut decoded, batch, &mut committed).await
    };
    checkpoints.settle(ctx).await;
    written_all?;
    bar.finish();
    Ok(written)
}

type Decoded = tokio::sync::mpsc::Receiver<Result<Vec<u8>, EngineError>>;

/// The end of the first `want` lines of `lines` (or all of them) and how many that is.
fn take_lines(lines: &[u8], want: usize) -> (usize, usize) {
    let mut count = 0;
    for newline in memchr::memchr_iter(b'\n', lines) {
        count += 1;
        if count == want {
            return (newline + 1, count);
        }
    }
    (lines.len(), count)
}

/// Writes the decoded lines in batches of `batch` lines, each gathered whole before it is
/// handed over (whole chunks: the connector parses a batch on a second thread while it writes).
async fn gathered_batches(
    connector: &dyn Connector,
    object: &str,
    fresh: bool,
    decoded: &mut Decoded,
    batch: usize,
    committed: &mut impl AsyncFnMut(u64),
) -> Result<(), EngineError> {
    let (mut pending, mut pending_count): (Vec<u8>, usize) = (Vec::new(), 0);
    let flush = async |lines: &[u8]| -> Result<u64, EngineError> {
        Ok(if fresh {
            connector.insert_lines(object, lines).await?
        } else {
            connector.apply_lines(object, lines).await?
        }
        .written)
    };
    while let Some(next) = decoded.recv().await {
        let lines = next?;
        let mut rest: &[u8] = &lines;
        while !rest.is_empty() {
            // Up to the lines that complete the batch.
            let (end, count) = take_lines(rest, batch - pending_count);
            let (part, tail) = rest.split_at(end);
            rest = tail;
            if pending_count + count < batch {
                pending.extend_from_slice(part);
                pending_count += count;
            } else if pending.is_empty() {
                committed(flush(part).await?).await;
            } else {
                pending.extend_from_slice(part);
                committed(flush(&pending).await?).await;
                pending.clear();
                pending_count = 0;
            }
        }
    }
    if !pending.is_empty() {
        committed(flush(&pending).await?).await;
    }
    Ok(())
}

/// Parts a streamed batch's lines may run ahead of the connector's writes.
const PARTS_AHEAD: usize = 64;

/// Writes the decoded lines in batches of `batch` lines, each handed to the connector part by
/// part as its lines are decoded ([`Connector::apply_line_parts`]): filtered chunks hold a few
/// wanted lines each and a batch spans many chunks, so its first rows are written while later
/// chunks are still being decoded, instead of after them. A batch whose lines fail to decode is
/// abandoned, which writes none of it.
async fn streamed_batches(
    connector: &dyn Connector,
    object: &str,
    decoded: &mut Decoded,
    batch: usize,
    committed: &mut impl AsyncFnMut(u64),
) -> Result<(), EngineError> {
    let mut carry: Vec<u8> = Vec::new();
    loop {
        // A batch starts with the lines the last one left, or with the next chunk's.
        let first = if carry.is_empty() {
            match decoded.recv().await {
                Some(next) => next?,
                None => return Ok(()),
            }
        } else {
            std::mem::take(&mut carry)
        };
        if first.is_empty() {
            continue;
        }
        let (sender, parts) = LineParts::channel(PARTS_AHEAD);
        let feed = async {
            let sender = sender;
            let mut lines = first;
            let mut count = 0;
            loop {
                // The connector stopped (and reports why): decode no further for it.
                if sender.is_closed() {
                    return Ok(());
                }
                // Chunks decoded already go in one part, which the connector may parse on a
                // second thread while it writes.
                let mut held = memchr::memchr_iter(b'\n', &lines).count();
                while count + held < batch {
                    match decoded.try_recv() {
                        Ok(next) => {
                            let next = next?;
                            held += memchr::memchr_iter(b'\n', &next).count();
                            lines.extend_from_slice(&next);
                        }
                        Err(_) => break,
                    }
                }
                let (end, n) = take_lines(&lines, batch - count);
                count += n;
                let full = count == batch;
                if full {
                    carry = lines.split_off(end);
                }
                // A closed channel: the connector stopped, and reports why.
                if !lines.is_empty() && sender.send(LinePart::Lines(lines)).await.is_err() {
                    return Ok(());
                }
                if full {
                    break;
                }
                lines = match decoded.recv().await {
                    Some(next) => next?,
                    None => break,
                };
            }
            let _ = sender.send(LinePart::End).await;
            Ok::<(), EngineError>(())
        };
        let (wrote, fed) = futures::join!(connector.apply_line_parts(object, parts), feed);
        // A decoding error abandoned the batch; it is the cause to report.
        fed?;
        committed(wrote?.written).await;
    }
}

/// Deletes `ids` from `object`, in batches.
async fn delete(ctx: &Context, connector: &dyn Connector, object: &str, ids: &[String], batch: usize) -> Result<u64, EngineError> {
    let (mut deleted, mut checkpoints) = (0, Pipelined::new());
    for part in ids.chunks(batch) {
        deleted += connector.delete(object, part).await?;
        checkpoints.record(ctx, format!("{object}.deleted"), deleted.to_string()).await;
    }
    checkpoints.settle(ctx).await;
    Ok(deleted)
}

/// The proof of a restore that wrote few records, when nothing but the restore wrote to the
/// destination since its comparison (equal [`Connector::outside_writes_mark`]s): every record
/// the comparison found equal is still equal, so re-reading the written ones — each must now
/// have the snapshot's hash, and with `mode: replace` the removed ones must be gone — proves
/// the destination equals the snapshot. Returns what still differs, as [`compare_live`] does.
async fn reread_proof(
    connector: &dyn Connector,
    order: &[String],
    touched: &BTreeMap<String, Vec<String>>,
    expected: &BTreeMap<String, std::sync::Arc<WantedLines>>,
) -> Result<Vec<(String, RecordDiff)>, EngineError> {
    use futures::StreamExt;
    let mut out = Vec::new();
    for object in order {
        let (ids, wanted) = (&touched[object], &expected[object]);
        let mut found: HashMap<String, Hash32> = HashMap::with_capacity(ids.len());
        let mut pages = connector.export_id_hashes(object, ids.clone());
        while let Some(page) = pages.next().await {
            for (id, row) in page?.iter() {
                found.insert(id.to_string(), row.hash);
            }
        }
        let mut d = RecordDiff::default();
        for id in ids {
            match (wanted.get(id), found.get(id)) {
                (Some(want), Some(got)) if want == got => {}
                (Some(_), Some(_)) => d.changed.push(id.clone()),
                (Some(_), None) => d.deleted.push(id.clone()),
                (None, Some(_)) => d.added.push(id.clone()),
                (None, None) => {}
            }
        }
        out.push((object.clone(), d));
    }
    Ok(out)
}

/// What a restore would do: the snapshot, the objects in parent-first order, and per object the
/// records the destination lacks or holds differently (`deleted`/`changed`) or holds extra (`added`).
pub struct RestorePlan {
    pub manifest: Manifest,
    pub order: Vec<String>,
    pub diffs: BTreeMap<String, RecordDiff>,
    /// Per object whose restore writes some but not all of its records, or is proven by
    /// re-reading them: the snapshot's hash of every record the restore will write (lines read
    /// from the snapshot are checked against it).
    pub expected: BTreeMap<String, std::sync::Arc<WantedLines>>,
    /// Per object whose proof will be a re-export: the snapshot's side of the comparison, read
    /// once and kept for the proof. The other objects' differences are few enough to prove by
    /// re-reading the written records.
    pub snapshot_pairs: BTreeMap<String, Compared>,
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
    let mut expected = BTreeMap::new();
    let mut snapshot_pairs = BTreeMap::new();
    for object in &order {
        let mut compared = compare_object(ctx, connector.as_ref(), &manifest, object).await?;
        let d = &compared.diff;
        let few = d.total() <= REREAD_AT_MOST.max(compared.snapshot_len() / REREAD_FRACTION);
        // The hashes of the records to write: to check the lines read for them, and for the
        // re-read proof (which a small object restored whole uses too).
        if few || !Wanted::is_every(d, &manifest, object) {
            let hashes: HashMap<String, Hash32> = d
                .changed
                .iter()
                .chain(&d.deleted)
                .filter_map(|id| Some((id.clone(), compared.snapshot_hash(id)?)))
                .collect();
            expected.insert(object.clone(), std::sync::Arc::new(WantedLines::new(hashes)));
        }
        let d = std::mem::take(&mut compared.diff);
        if !few {
            snapshot_pairs.insert(object.clone(), compared);
        }
        diffs.insert(object.clone(), d);
    }
    Ok(RestorePlan {
        manifest,
        order,
        diffs,
        expected,
        snapshot_pairs,
        replace,
        batch,
    })
}

pub async fn run(ctx: &Context, args: &RestoreArgs) -> Result<StepOutcome, EngineError> {
    let started = std::time::Instant::now();
    // Taken before the differences are read: an equal mark after the writes proves that nobody
    // else wrote in between.
    let mark = ctx.connector(&args.to).await?.outside_writes_mark().await;
    let RestorePlan {
        manifest,
        order,
        mut diffs,
        expected,
        mut snapshot_pairs,
        replace,
        batch,
    } = plan(ctx, args).await?;
    tracing::debug!(ms = started.elapsed().as_millis() as u64, "restore: differences computed");
    let connector = ctx.connector(&args.to).await?;
    let mut upserted = BTreeMap::new();
    // The ids the restore writes, per object it can prove by re-reading them.
    let mut touched: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // (inserted, updated) per object; the id lists themselves move into the upsert.
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for object in &order {
        let d = diffs.get_mut(object).expect("planned object");
        counts.insert(object.clone(), (d.deleted.len(), d.changed.len()));
        if !snapshot_pairs.contains_key(object) {
            let mut ids: Vec<String> = d.deleted.iter().chain(&d.changed).cloned().collect();
            if replace {
                ids.extend(d.added.iter().cloned());
            }
            touched.insert(object.clone(), ids);
        }
        let wanted = Wanted::from_diff(d, &manifest, object, expected.get(object));
        upserted.insert(
            object.clone(),
            upsert(ctx, connector.as_ref(), &manifest, object, wanted, batch).await?,
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
    let unchanged_since_diff = mark.is_some() && connector.outside_writes_mark().await == mark;
    let (after, proof) = if !wrote {
        (
            order.iter().map(|o| (o.clone(), diffs[o].clone())).collect(),
            "no writes: the comparison found no differences",
        )
    } else if unchanged_since_diff && touched.len() == order.len() {
        (
            reread_proof(connector.as_ref(), &order, &touched, &expected).await?,
            "re-read every written record; no other writes since the comparison",
        )
    } else {
        let mut after = Vec::new();
        for object in &order {
            let d = match snapshot_pairs.remove(object) {
                // Read for the comparison already: only the destination is read again.
                Some(snapshot) => {
                    connector.align_to_snapshot(object, &manifest.schema).await?;
                    snapshot.compare_again(connector.as_ref(), object).await?
                }
                None => compare_object(ctx, connector.as_ref(), &manifest, object).await?.diff,
            };
            after.push((object.clone(), d));
        }
        (after, "re-exported the destination")
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
            "proof": proof,
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
