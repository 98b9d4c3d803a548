//! The `sqlite` connector's bulk work through SQLite's own API (rusqlite, on the same bundled
//! SQLite as sqlx): scans that write chunk lines from typed column values, reads of chosen ids,
//! and upserts and deletes bound straight from snapshot lines.
//!
//! sqlx hands every row and every statement across threads, which costs more than SQLite's own
//! work for bulk reads and writes (docs/benchmarks.md measures it); here SQLite runs on blocking
//! threads and values are bound without copies. Scans read a page of rows per statement, so no
//! read lock is held between pages. All of the tool's writes go through one writer connection,
//! whose `PRAGMA data_version` then tells whether anyone else committed in between.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::mpsc::Sender;

use super::sqlite::KeyCheck;
use super::sqlite::{TableMap, quote};
use super::sqlite_encode::RowEncoder;
use super::sqlite_freeze::BYPASS;
use super::sqlite_write::{BindValue, Columns, LineRows, RecordRows, RowError, SqlRow, id_value, upsert_sql};
use super::{ConnectorError, EncodedPage, PAGE_SIZE};

/// What an upsert writes: snapshot chunk lines, lines that arrive in parts, or records.
pub enum Rows {
    Lines(Vec<u8>),
    /// Written as they arrive.
    Parts(super::LineParts),
    Records(Vec<crate::record::Record>),
}

/// Where pages go.
pub type PageSender = Sender<Result<EncodedPage, ConnectorError>>;

/// Tables with at least this many rows are scanned in parallel rowid ranges.
const PARALLEL_SCAN_ROWS: i64 = 100_000;

/// The writer's page cache, in KiB (as `PRAGMA cache_size` takes a negative number). With
/// SQLite's default of 2 MB, the foreign-key lookup of every inserted row into the parent table
/// went back to the file: 900,000 reads for a million contacts.
const WRITER_CACHE_KIB: i64 = -32_768;

/// Ids per `IN (...)` list when reading or deleting chosen records.
const IDS_PER_QUERY: usize = 500;

/// Opens connections to one database file and keeps the tool's writer connection.
pub struct Native {
    name: String,
    path: PathBuf,
    read_only: bool,
    writer: Arc<Mutex<Option<Writer>>>,
}

/// The tool's writer connection and what it knows of the parent tables.
struct Writer {
    conn: Connection,
    parents: ParentRowids,
    /// The database was in `journal_mode=DELETE`, which the writer switched to `TRUNCATE` and
    /// switches back when it closes (see [`Writer::open`]).
    was_delete: bool,
}

impl Writer {
    /// Opens the writer connection. A database in the default `journal_mode=DELETE` gets
    /// `TRUNCATE` on this connection: each commit is as durable (the same syncs of the journal
    /// and the database), but the journal file is emptied instead of created and deleted every
    /// transaction, which spares a directory sync per batch. The mode is the connection's, not
    /// the file's: other connections keep theirs, and a leftover empty journal is not hot.
    fn open(path: &Path, read_only: bool) -> rusqlite::Result<Writer> {
        let conn = open(path, read_only)?;
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        let was_delete = !read_only && mode.eq_ignore_ascii_case("delete");
        if was_delete {
            let _: String = conn.query_row("PRAGMA journal_mode = TRUNCATE", [], |r| r.get(0))?;
        }
        Ok(Writer {
            conn,
            parents: ParentRowids::default(),
            was_delete,
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.was_delete {
            // Back to DELETE, which also removes the emptied journal file.
            let _ = self.conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0));
        }
    }
}

/// Parents with a rowid span up to this are held in memory to check foreign keys.
const MAX_HELD_PARENTS: i64 = 2_000_000;

/// The rowids of parent tables, so integer foreign keys are checked without a query per key.
/// A table's set holds while nobody else has committed (`PRAGMA data_version`) and the writer
/// has not written the table since (`generations`).
#[derive(Default)]
struct ParentRowids {
    tables: std::collections::HashMap<String, (i64, u64, Option<std::collections::HashSet<i64>>)>,
    generations: std::collections::HashMap<String, u64>,
}

impl ParentRowids {
    /// The rowids of `parent` now, or `None` when the table is too large to hold.
    fn get(&mut self, tx: &Transaction<'_>, parent: &str) -> rusqlite::Result<Option<&std::collections::HashSet<i64>>> {
        let key = parent.to_lowercase();
        let version: i64 = tx.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        let generation = self.generations.get(&key).copied().unwrap_or(0);
        let fresh = matches!(self.tables.get(&key), Some((v, g, _)) if *v == version && *g == generation);
        if !fresh {
            let sql = super::sqlite::rowid_span_sql(parent);
            let (lo, hi): (Option<i64>, Option<i64>) = tx.query_row(&sql, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let rowids = match (lo, hi) {
                (Some(lo), Some(hi)) if hi.saturating_sub(lo) > MAX_HELD_PARENTS => None,
                _ => {
                    let mut statement = tx.prepare(&format!("SELECT rowid FROM {}", quote(parent)))?;
                    let rows = statement.query_map([], |r| r.get::<_, i64>(0))?;
                    Some(rows.collect::<rusqlite::Result<_>>()?)
                }
            };
            self.tables.insert(key.clone(), (version, generation, rowids));
        }
        Ok(self.tables[&key].2.as_ref())
    }

    /// The writer wrote to `table`: a held set of its rowids is out of date.
    fn wrote(&mut self, table: &str) {
        *self.generations.entry(table.to_lowercase()).or_default() += 1;
    }
}

pub fn sqlite_error(connector: &str, e: rusqlite::Error) -> ConnectorError {
    let retryable = matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked));
    ConnectorError::new(connector, e.to_string()).retryable(retryable)
}

fn open(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let access = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// Rowid ranges `(first, last)` that split `lo..=hi` into `parts` of similar size (one range when
/// small).
pub fn split_ranges(lo: i64, hi: i64, parts: usize) -> Vec<(i64, i64)> {
    if hi.saturating_sub(lo) < PARALLEL_SCAN_ROWS || parts < 2 {
        return vec![(lo, hi)];
    }
    let step = ((hi - lo) / parts as i64).max(1);
    (0..parts as i64)
        .map(|i| (lo + i * step, if i == parts as i64 - 1 { hi } else { lo + (i + 1) * step - 1 }))
        .collect()
}

/// The columns of `map` as a select list, after the rowid.
fn select_list(map: &TableMap) -> String {
    let columns: Vec<String> = map.columns.iter().map(|c| quote(&c.name)).collect();
    format!("rowid, {}", columns.join(", "))
}

/// Encodes every row `rows` yields into `page`; returns the last rowid and the row count.
fn encode_rows(
    name: &str,
    map: &TableMap,
    encoder: &mut RowEncoder,
    mut rows: rusqlite::Rows<'_>,
    page: &mut EncodedPage,
) -> Result<(Option<i64>, usize), ConnectorError> {
    let (mut last, mut count) = (None, 0);
    while let Some(row) = rows.next().map_err(|e| sqlite_error(name, e).object(&map.object))? {
        let rowid: i64 = row.get(0).map_err(|e| sqlite_error(name, e).object(&map.object))?;
        encoder.encode_typed(row, 1, page).map_err(|m| {
            ConnectorError::new(name, format!("row with rowid {rowid}: {m}"))
                .object(&map.object)
                .hint("fix the row in the database, or map the object to another table")
        })?;
        last = Some(rowid);
        count += 1;
    }
    Ok((last, count))
}

/// An encoder for `map`'s rows; with `lines` false, of ids and hashes only.
fn new_encoder(name: &str, map: &Arc<TableMap>, lines: bool) -> Result<RowEncoder, ConnectorError> {
    let encoder = RowEncoder::new(map.clone())
        .ok_or_else(|| ConnectorError::new(name, format!("table `{}` has no id column `{}`", map.table, map.id)).object(&map.object))?;
    Ok(if lines { encoder } else { encoder.hashes_only() })
}

fn empty_page() -> EncodedPage {
    EncodedPage::with_capacity(PAGE_SIZE, PAGE_SIZE * 600)
}

/// Scans the rows with rowid in `range` (and `since` on the modified column, if given) a page at
/// a time by keyset on rowid; false when the receiver went away.
#[allow(clippy::too_many_arguments)]
fn scan_range(
    lines: bool,
    name: &str,
    conn: &Connection,
    map: &Arc<TableMap>,
    since: Option<&str>,
    range: (i64, i64),
    tx: &PageSender,
) -> Result<bool, ConnectorError> {
    let err = |e: rusqlite::Error| sqlite_error(name, e).object(&map.object);
    let mut encoder = new_encoder(name, map, lines)?;
    let filter = match (&map.modified, since) {
        (Some(m), Some(_)) => format!(" AND julianday({}) >= julianday(?3)", quote(m)),
        _ => String::new(),
    };
    let sql = format!(
        "SELECT {} FROM {} WHERE rowid > ?1 AND rowid <= ?2{filter} ORDER BY rowid LIMIT {PAGE_SIZE}",
        select_list(map),
        quote(&map.table)
    );
    let mut statement = conn.prepare(&sql).map_err(err)?;
    let mut after = range.0 - 1;
    loop {
        let mut page = if lines { empty_page() } else { EncodedPage::default() };
        let rows = if filter.is_empty() {
            statement.query(rusqlite::params![after, range.1])
        } else {
            statement.query(rusqlite::params![after, range.1, since])
        }
        .map_err(err)?;
        let (last, count) = encode_rows(name, map, &mut encoder, rows, &mut page)?;
        let Some(last) = last else { return Ok(true) };
        if tx.blocking_send(Ok(page)).is_err() {
            return Ok(false);
        }
        if count < PAGE_SIZE {
            return Ok(true);
        }
        after = last;
    }
}

/// Runs `work` on the writer connection held in `slot`, opening it on first use (on a blocking
/// thread: it waits for the connection's lock).
fn on_writer<T>(
    slot: &Mutex<Option<Writer>>,
    name: &str,
    path: &Path,
    read_only: bool,
    work: impl FnOnce(&str, &mut Writer) -> Result<T, ConnectorError>,
) -> Result<T, ConnectorError> {
    let mut guard = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if guard.is_none() {
        *guard = Some(Writer::open(path, read_only).map_err(|e| sqlite_error(name, e))?);
    }
    work(name, guard.as_mut().expect("opened above"))
}

/// Reads the rows whose id is one of `ids` on `conn` into pages on `tx` (with `lines` false,
/// pages of ids and hashes only); false when the receiver went away.
fn read_ids_on(
    conn: &Connection,
    name: &str,
    map: &Arc<TableMap>,
    ids: &[String],
    lines: bool,
    tx: &PageSender,
) -> Result<bool, ConnectorError> {
    let err = |e: rusqlite::Error| sqlite_error(name, e).object(&map.object);
    let mut encoder = new_encoder(name, map, lines)?;
    let class = map.id_class();
    for part in ids.chunks(IDS_PER_QUERY) {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} IN ({})",
            select_list(map),
            quote(&map.table),
            quote(&map.id),
            vec!["?"; part.len()].join(", ")
        );
        let mut statement = conn.prepare_cached(&sql).map_err(err)?;
        let rows = statement
            .query(rusqlite::params_from_iter(part.iter().map(|id| id_value(class, id))))
            .map_err(err)?;
        let mut page = if lines { empty_page() } else { EncodedPage::default() };
        encode_rows(name, map, &mut encoder, rows, &mut page)?;
        if !page.is_empty() && tx.blocking_send(Ok(page)).is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

impl Native {
    pub fn new(name: &str, path: &Path, read_only: bool) -> Native {
        Native {
            name: name.into(),
            path: path.into(),
            read_only,
            writer: Arc::new(Mutex::new(None)),
        }
    }

    /// Streams every row of `map`'s table (modified at or after `since`, as SQLite text) into
    /// pages on `tx`, in `parts` parallel rowid ranges with a connection each.
    /// With `lines` false, pages carry only ids and hashes.
    pub fn scan(&self, map: Arc<TableMap>, since: Option<String>, lines: bool, parts: usize, tx: PageSender) {
        let (name, path) = (self.name.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let ranges = open(&path, true)
                .and_then(|conn| {
                    let sql = super::sqlite::rowid_span_sql(&map.table);
                    conn.query_row(&sql, [], |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)))
                })
                .map_err(|e| {
                    sqlite_error(&name, e)
                        .object(&map.object)
                        .hint("tables created WITHOUT ROWID are not supported by the sqlite connector")
                });
            let ranges = match ranges {
                Ok((Some(lo), Some(hi))) => split_ranges(lo, hi, parts),
                Ok(_) => return,
                Err(e) => return drop(tx.blocking_send(Err(e))),
            };
            std::thread::scope(|scope| {
                for range in ranges {
                    let (name, path, map, tx, since) = (&name, &path, &map, tx.clone(), since.as_deref());
                    scope.spawn(move || {
                        let done = open(path, true)
                            .map_err(|e| sqlite_error(name, e).object(&map.object))
                            .and_then(|conn| scan_range(lines, name, &conn, map, since, range, &tx));
                        if let Err(e) = done {
                            let _ = tx.blocking_send(Err(e));
                        }
                    });
                }
            });
        });
    }

    /// Streams the rows whose id is one of `ids` into pages on `tx` (ids not in the table are
    /// left out), in no particular order: many ids are read in `parts` groups at once, with a
    /// connection each.
    pub fn read_ids(&self, map: Arc<TableMap>, ids: Vec<String>, parts: usize, tx: PageSender) {
        let (name, path) = (self.name.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let groups = parts.clamp(1, ids.len().div_ceil(IDS_PER_QUERY).max(1));
            std::thread::scope(|scope| {
                for group in ids.chunks(ids.len().div_ceil(groups).max(1)) {
                    let (name, path, map, tx) = (&name, &path, &map, tx.clone());
                    scope.spawn(move || {
                        let read = open(path, true)
                            .map_err(|e| sqlite_error(name, e).object(&map.object))
                            .and_then(|conn| read_ids_on(&conn, name, map, group, true, &tx));
                        if let Err(e) = read {
                            let _ = tx.blocking_send(Err(e));
                        }
                    });
                }
            });
        });
    }

    /// [`Self::read_ids`] for comparisons (pages of ids and hashes only), through the writer
    /// connection: a restore's proof re-reads the rows it just wrote, whose pages that
    /// connection's cache still holds (SQLite drops them if anyone else has written since).
    pub fn read_id_hashes(&self, map: Arc<TableMap>, ids: Vec<String>, tx: PageSender) {
        let (name, path, read_only, writer) = (self.name.clone(), self.path.clone(), self.read_only, self.writer.clone());
        tokio::task::spawn_blocking(move || {
            let read = on_writer(&writer, &name, &path, read_only, |name, writer| {
                read_ids_on(&writer.conn, name, &map, &ids, false, &tx)
            });
            if let Err(e) = read {
                let _ = tx.blocking_send(Err(e));
            }
        });
    }

    /// Runs `work` on the writer connection (opened on first use), on a blocking thread.
    async fn with_writer<T: Send + 'static>(
        &self,
        work: impl FnOnce(&str, &mut Writer) -> Result<T, ConnectorError> + Send + 'static,
    ) -> Result<T, ConnectorError> {
        let (name, path, read_only, writer) = (self.name.clone(), self.path.clone(), self.read_only, self.writer.clone());
        tokio::task::spawn_blocking(move || on_writer(&writer, &name, &path, read_only, work))
            .await
            .map_err(|e| ConnectorError::new(&self.name, format!("the writer thread failed: {e}")))?
    }

    /// SQLite's `PRAGMA data_version` on the writer connection: it changes when another
    /// connection commits, and not for the writer's own commits.
    pub async fn data_version(&self) -> Result<i64, ConnectorError> {
        self.with_writer(|name, writer| {
            writer
                .conn
                .query_row("PRAGMA data_version", [], |r| r.get(0))
                .map_err(|e| sqlite_error(name, e))
        })
        .await
    }

    /// Upserts `rows` in one transaction; returns how many.
    pub async fn upsert(&self, map: Arc<TableMap>, rows: Rows) -> Result<u64, ConnectorError> {
        self.with_writer(move |name, writer| {
            let Writer { conn, parents, .. } = writer;
            let t0 = std::time::Instant::now();
            let object = map.object.clone();
            let err = |e: rusqlite::Error| sqlite_error(name, e).object(&object);
            let columns = Columns::new(&map);
            let (tx, bypass) = begin(conn, false, false).map_err(err)?;
            let mut written = 0u64;
            let mut references = References::new(&map);
            if matches!(rows, Rows::Parts(_)) {
                // Read while the first parts are still being decoded, rather than for the check
                // after the last.
                references.prefetch(name, &tx, parents)?;
            }
            {
                let mut statements: Vec<(Vec<usize>, rusqlite::Statement<'_>)> = Vec::new();
                let mut write = |row: Result<SqlRow<'_>, RowError>| -> Result<(), ConnectorError> {
                    let row = row.map_err(|e| row_error(name, &object, e))?;
                    let at = match statements.iter().position(|(columns, _)| *columns == row.columns) {
                        Some(at) => at,
                        None => {
                            let statement = tx.prepare(&upsert_sql(&map, &row.columns)).map_err(err)?;
                            statements.push((row.columns.clone(), statement));
                            statements.len() - 1
                        }
                    };
                    let statement = &mut statements[at].1;
                    for (i, value) in row.values.iter().enumerate() {
                        statement.raw_bind_parameter(i + 1, value).map_err(err)?;
                    }
                    statement.raw_execute().map_err(|e| err(e).record(&row.id))?;
                    references.add(&row);
                    written += 1;
                    Ok(())
                };
                match rows {
                    Rows::Lines(lines) => parsed_ahead(
                        LineRows {
                            columns: &columns,
                            lines: &lines,
                        },
                        &mut write,
                    )?,
                    Rows::Parts(mut parts) => {
                        while let Some(lines) = parts.blocking_next(name)? {
                            let mut rows = LineRows {
                                columns: &columns,
                                lines: &lines,
                            };
                            if lines.len() >= PARSED_AHEAD_BYTES {
                                parsed_ahead(rows, &mut write)?;
                            } else {
                                rows.try_for_each(&mut write)?;
                            }
                        }
                    }
                    Rows::Records(records) => RecordRows {
                        columns: &columns,
                        records: records.iter(),
                    }
                    .try_for_each(&mut write)?,
                }
            }
            let tc = std::time::Instant::now();
            references.check(name, &tx, parents)?;
            let check_us = tc.elapsed().as_micros() as u64;
            let t1 = std::time::Instant::now();
            commit(tx, bypass).map_err(err)?;
            parents.wrote(&map.table);
            tracing::trace!(
                check_us,
                rows_us = (t1 - t0).as_micros() as u64,
                commit_us = t1.elapsed().as_micros() as u64,
                "upsert batch"
            );
            Ok(written)
        })
        .await
    }

    /// Deletes the rows with `ids` in one transaction; returns how many were there.
    pub async fn delete(&self, map: Arc<TableMap>, ids: Vec<String>) -> Result<u64, ConnectorError> {
        self.with_writer(move |name, writer| {
            let Writer { conn, parents, .. } = writer;
            let err = |e: rusqlite::Error| sqlite_error(name, e).object(&map.object);
            parents.wrote(&map.table);
            let (tx, bypass) = begin(conn, true, map.self_referencing).map_err(err)?;
            let class = map.id_class();
            let mut deleted = 0;
            {
                let sql = format!("DELETE FROM {} WHERE {} = ?1", quote(&map.table), quote(&map.id));
                let mut statement = tx.prepare(&sql).map_err(err)?;
                for id in &ids {
                    deleted += statement.execute([id_value(class, id)]).map_err(|e| err(e).record(id))? as u64;
                }
            }
            commit(tx, bypass).map_err(err)?;
            Ok(deleted)
        })
        .await
    }
}

fn row_error(name: &str, object: &str, e: RowError) -> ConnectorError {
    let mut error = ConnectorError::new(name, e.message).object(object);
    if let Some(id) = &e.id {
        error = error.record(id);
    }
    if let Some(hint) = e.hint {
        error = error.hint(hint);
    }
    error
}

/// Starts one of the tool's write transactions, opening the freeze bypass if the CRM is frozen
/// (see [`super::sqlite_freeze`]). SQLite checks foreign keys as rows go in when `check_keys`
/// (deletes; deferred to the commit with `defer_keys`, for a table that references itself, so
/// rows of one batch may refer to each other); upserts pass false and check their batch against
/// [`TableMap::key_checks`] instead (see [`References`]).
fn begin(conn: &mut Connection, check_keys: bool, defer_keys: bool) -> rusqlite::Result<(Transaction<'_>, bool)> {
    // Outside a transaction: SQLite ignores the pragma inside one.
    conn.pragma_update(None, "foreign_keys", check_keys)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if defer_keys {
        tx.pragma_update(None, "defer_foreign_keys", true)?;
    }
    let frozen: i64 = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [BYPASS],
        |r| r.get(0),
    )?;
    if frozen > 0 {
        tx.execute(&format!("INSERT INTO {} (open) VALUES (1)", quote(BYPASS)), [])?;
    }
    Ok((tx, frozen > 0))
}

/// A streamed part this large is parsed on a second thread (see [`parsed_ahead`]); smaller
/// ones, a chunk's few wanted lines, are parsed where they are written.
const PARSED_AHEAD_BYTES: usize = 256 << 10;

/// Rows parsed per hand-over between the parsing and the writing thread.
const PARSED_GROUP: usize = 256;

/// Feeds `rows` to `write`, parsing them on a second thread while SQLite writes the rows
/// parsed before (reading snapshot lines costs about as much as SQLite's insert).
fn parsed_ahead<'a>(
    rows: LineRows<'a>,
    write: &mut dyn FnMut(Result<SqlRow<'a>, RowError>) -> Result<(), ConnectorError>,
) -> Result<(), ConnectorError> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<SqlRow<'a>, RowError>>>(4);
        scope.spawn(move || {
            let mut rows = rows.peekable();
            while rows.peek().is_some() {
                let group: Vec<_> = rows.by_ref().take(PARSED_GROUP).collect();
                if tx.send(group).is_err() {
                    return;
                }
            }
        });
        // Returning early drops the receiver, which stops the parser.
        for group in rx {
            for row in group {
                write(row)?;
            }
        }
        Ok(())
    })
}

/// The distinct foreign-key values one batch refers to, per key, with a record that refers to
/// each (to name it when the parent is missing).
struct References<'m> {
    map: &'m TableMap,
    keys: Vec<std::collections::HashMap<String, String>>,
}

impl<'m> References<'m> {
    fn new(map: &'m TableMap) -> Self {
        References {
            map,
            keys: vec![Default::default(); map.key_checks.len()],
        }
    }

    /// Notes the keys `row` refers to; a key with a NULL column refers to nothing.
    fn add(&mut self, row: &SqlRow<'_>) {
        for (check, seen) in self.map.key_checks.iter().zip(&mut self.keys) {
            let mut parts = Vec::with_capacity(check.columns.len());
            for column in &check.columns {
                let value = row.columns.iter().position(|c| c == column).map(|at| &row.values[at]);
                parts.push(match value {
                    Some(BindValue::Integer(i)) => serde_json::Value::from(*i),
                    Some(BindValue::Real(f)) => serde_json::Value::from(*f),
                    Some(BindValue::Text(t)) => serde_json::Value::from(t.as_ref()),
                    // Keys are never blobs in a CRM; SQLite's own check would compare them bytewise.
                    Some(BindValue::Blob(b)) => serde_json::Value::from(String::from_utf8_lossy(b).as_ref()),
                    Some(BindValue::Null) | None => break,
                });
            }
            if parts.len() == check.columns.len() {
                let key = match parts.len() {
                    1 => parts.pop().expect("one part").to_string(),
                    _ => serde_json::Value::Array(parts).to_string(),
                };
                seen.entry(key).or_insert_with(|| row.id.to_string());
            }
        }
    }

    /// Reads the rowids of the parent tables [`Self::check`] holds in memory.
    fn prefetch(&self, name: &str, tx: &Transaction<'_>, parents: &mut ParentRowids) -> Result<(), ConnectorError> {
        for check in &self.map.key_checks {
            if held_in_memory(self.map, check) {
                parents
                    .get(tx, &check.parent)
                    .map_err(|e| sqlite_error(name, e).object(&self.map.object))?;
            }
        }
        Ok(())
    }

    /// Fails when a key refers to a parent row that does not exist, naming the records.
    fn check(self, name: &str, tx: &Transaction<'_>, parents: &mut ParentRowids) -> Result<(), ConnectorError> {
        let map = self.map;
        let err = |e: rusqlite::Error| sqlite_error(name, e).object(&map.object);
        for (check, seen) in map.key_checks.iter().zip(self.keys) {
            if seen.is_empty() {
                continue;
            }
            // Integer keys into another table's rowids are looked up in memory; the rest (and
            // all keys of a table too large to hold, or of the table itself) by query.
            let mut missing: Vec<String> = Vec::new();
            let mut queried: Vec<&str> = seen.keys().map(String::as_str).collect();
            let held = held_in_memory(map, check);
            if held && let Some(rowids) = parents.get(tx, &check.parent).map_err(err)? {
                queried.retain(|key| match key.parse::<i64>() {
                    Ok(rowid) => {
                        if !rowids.contains(&rowid) {
                            missing.push(key.to_string());
                        }
                        false
                    }
                    Err(_) => true,
                });
            }
            if !queried.is_empty() {
                missing.extend(query_missing(name, tx, map, check, &queried)?);
            }
            if missing.is_empty() {
                continue;
            }
            missing.sort();
            let records: Vec<&str> = missing.iter().take(5).filter_map(|k| seen.get(k).map(String::as_str)).collect();
            let columns: Vec<&str> = check.columns.iter().map(|&c| map.columns[c].name.as_str()).collect();
            return Err(ConnectorError::new(
                name,
                format!(
                    "FOREIGN KEY constraint failed: records {} refer through `{}` to rows of `{}` that do not exist ({} keys); the batch was not written",
                    records.join(", "),
                    columns.join(", "),
                    check.parent,
                    missing.len()
                ),
            )
            .object(&map.object)
            .record(records.first().copied().unwrap_or_default())
            .hint("restore the parent object too (parents go first; `order:` on the step sets it), or fix the references where the snapshot came from"));
        }
        Ok(())
    }
}

/// Whether `check`'s integer keys into another table's rowids are looked up in memory (see
/// [`ParentRowids`]) rather than by query.
fn held_in_memory(map: &TableMap, check: &KeyCheck) -> bool {
    check.to_rowid && !check.parent.eq_ignore_ascii_case(&map.table)
}

/// The keys (JSON texts) among `keys` that no parent row of `check` holds.
fn query_missing(name: &str, tx: &Transaction<'_>, map: &TableMap, check: &KeyCheck, keys: &[&str]) -> Result<Vec<String>, ConnectorError> {
    use rusqlite::types::ValueRef;
    let err = |e: rusqlite::Error| sqlite_error(name, e).object(&map.object);
    let keys = format!("[{}]", keys.join(","));
    let mut statement = tx.prepare_cached(&check.missing_sql).map_err(err)?;
    let missing = statement
        .query_map([keys], |r| {
            Ok(match r.get_ref(0)? {
                ValueRef::Integer(i) => i.to_string(),
                ValueRef::Real(f) => serde_json::Value::from(f).to_string(),
                ValueRef::Text(t) => match t.first() {
                    Some(b'[') => String::from_utf8_lossy(t).into_owned(),
                    _ => serde_json::Value::from(String::from_utf8_lossy(t).as_ref()).to_string(),
                },
                _ => String::new(),
            })
        })
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    Ok(missing)
}

/// Closes the bypass (if opened) and commits.
fn commit(tx: Transaction<'_>, bypass: bool) -> rusqlite::Result<()> {
    if bypass {
        tx.execute(&format!("DELETE FROM {}", quote(BYPASS)), [])?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranges cover every rowid once, in order, and small tables are one range.
    #[test]
    fn ranges_cover_the_table() {
        assert_eq!(split_ranges(1, 10, 2), vec![(1, 10)]);
        let ranges = split_ranges(1, 1_000_000, 2);
        assert_eq!(ranges, vec![(1, 499_999), (500_000, 1_000_000)]);
        let ranges = split_ranges(-5, 300_000, 3);
        assert_eq!(ranges.first().unwrap().0, -5);
        assert_eq!(ranges.last().unwrap().1, 300_000);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].1 + 1, pair[1].0);
        }
    }

    /// The rowid span is two B-tree seeks, never a scan of the table, and NULLs when empty.
    #[test]
    fn rowid_span_seeks_instead_of_scanning() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE \"my table\" (id INTEGER PRIMARY KEY, v TEXT)")
            .unwrap();
        let sql = super::super::sqlite::rowid_span_sql("my table");
        let span = |conn: &Connection| {
            conn.query_row(&sql, [], |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)))
                .unwrap()
        };
        assert_eq!(span(&conn), (None, None));
        conn.execute_batch("INSERT INTO \"my table\" (id, v) VALUES (-4, 'a'), (7, 'b'), (90, 'c')")
            .unwrap();
        assert_eq!(span(&conn), (Some(-4), Some(90)));
        let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let steps: Vec<String> = plan.query_map([], |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
        assert!(steps.iter().all(|s| !s.starts_with("SCAN my table")), "{steps:?}");
        // The query it replaced does scan, so the check above can fail.
        let mut old = conn
            .prepare("EXPLAIN QUERY PLAN SELECT min(rowid), max(rowid) FROM \"my table\"")
            .unwrap();
        let old: Vec<String> = old.query_map([], |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
        assert!(old.iter().any(|s| s.starts_with("SCAN my table")), "{old:?}");
    }
}
