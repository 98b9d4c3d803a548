//! Connectors: one trait, one config (tagged by `type`, see [`crate::playbook::ConnectorKind`]),
//! one `build` match that names the concrete types. Adding a CRM means one new file and one arm.

pub mod files;
pub mod hubspot;
pub mod mysql;
mod mysql_freeze;
pub mod postgres;
mod postgres_freeze;
pub mod retry;
pub mod salesforce;
pub mod sandbox_traffic;
pub mod sql_text;
pub mod sqlite;
pub mod sqlite_encode;
mod sqlite_freeze;
pub mod sqlite_native;
pub mod sqlite_write;
pub mod values;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

use crate::playbook::{ConnectorConfig, ConnectorKind};
use crate::record::Record;

/// A connector failure: what failed, where (object, record), whether a retry may help, and a hint.
/// The details are boxed so results stay small.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConnectorError(Box<ErrorDetails>);

#[derive(Debug, Clone)]
pub struct ErrorDetails {
    pub connector: String,
    pub object: Option<String>,
    pub record: Option<String>,
    pub message: String,
    pub hint: Option<String>,
    pub retryable: bool,
    /// The playbook or environment is at fault (a missing secret, say): exit 2, not 1.
    pub bad_input: bool,
}

impl std::ops::Deref for ConnectorError {
    type Target = ErrorDetails;
    fn deref(&self) -> &ErrorDetails {
        &self.0
    }
}

impl ConnectorError {
    pub fn new(connector: &str, message: impl Into<String>) -> Self {
        ConnectorError(Box::new(ErrorDetails {
            connector: connector.into(),
            object: None,
            record: None,
            message: message.into(),
            hint: None,
            retryable: false,
            bad_input: false,
        }))
    }
    pub fn object(mut self, object: &str) -> Self {
        self.0.object = Some(object.into());
        self
    }
    pub fn record(mut self, id: &str) -> Self {
        self.0.record = Some(id.into());
        self
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }
    pub fn bad_input(mut self) -> Self {
        self.0.bad_input = true;
        self
    }
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.0.retryable = retryable;
        self
    }
}

impl fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connector `{}`", self.connector)?;
        if let Some(o) = &self.object {
            write!(f, ", object `{o}`")?;
        }
        if let Some(r) = &self.record {
            write!(f, ", record `{r}`")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\nhint: {h}")?;
        }
        Ok(())
    }
}

/// How a drill can play the migration and the users in a connector that is its new CRM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrillWrites {
    /// `apply` writes records under the ids they come with: the drill copies the old CRM in
    /// and plays users with its own writes.
    ById,
    /// The CRM gives new records ids of its own, and the tool's own sandbox serves the
    /// connector: its records stand in for the migrated ones and its admin endpoint plays the
    /// users ([`Connector::sandbox_traffic`]).
    Sandbox,
    /// Neither: a drill cannot use the connector as its new CRM.
    No,
}

impl DrillWrites {
    /// For a connector whose CRM gives records ids of its own: [`DrillWrites::Sandbox`] when
    /// the tool's sandbox serves it, else [`DrillWrites::No`].
    pub fn own_ids(sandboxed: bool) -> DrillWrites {
        if sandboxed { DrillWrites::Sandbox } else { DrillWrites::No }
    }
}

/// The field names a snapshot's `schema` (of connector type `kind`) lists for `object`, if it
/// lists them (see [`Connector::align_to_snapshot`]).
pub fn snapshot_fields<'a>(schema: &'a serde_json::Value, kind: &str, object: &str) -> Option<Vec<&'a str>> {
    let fields = schema["objects"][object]["fields"].as_array().filter(|_| schema["type"] == kind)?;
    Some(fields.iter().filter_map(serde_json::Value::as_str).collect())
}

/// What a connector can do; `plan` refuses steps that need more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    pub read: bool,
    pub write: bool,
    pub freeze: bool,
}

/// How `apply` writes: `Upsert` inserts or updates by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMode {
    Upsert,
}

/// Per-batch outcome of `apply`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyOutcome {
    pub written: u64,
    /// Old id → new id, where the CRM assigns ids.
    pub id_map: Vec<(String, String)>,
}

/// One part of a batch whose lines arrive while they are still being read from a snapshot (see
/// [`Connector::apply_line_parts`]).
pub enum LinePart {
    /// Whole chunk lines, each ending in a newline.
    Lines(Vec<u8>),
    /// The batch is complete: write it.
    End,
}

/// The receiving end of one batch's parts.
pub struct LineParts(tokio::sync::mpsc::Receiver<LinePart>);

impl LineParts {
    /// A batch's sender and its parts; the sender may run `capacity` parts ahead.
    pub fn channel(capacity: usize) -> (tokio::sync::mpsc::Sender<LinePart>, LineParts) {
        let (sender, receiver) = tokio::sync::mpsc::channel(capacity.max(1));
        (sender, LineParts(receiver))
    }

    /// The next lines, `None` once the batch is complete. An error when the sender went away
    /// before [`LinePart::End`]: the batch was abandoned and must not be written.
    pub async fn next(&mut self, connector: &str) -> Result<Option<Vec<u8>>, ConnectorError> {
        Self::read(self.0.recv().await, connector)
    }

    /// [`Self::next`], on a blocking thread.
    pub fn blocking_next(&mut self, connector: &str) -> Result<Option<Vec<u8>>, ConnectorError> {
        Self::read(self.0.blocking_recv(), connector)
    }

    fn read(part: Option<LinePart>, connector: &str) -> Result<Option<Vec<u8>>, ConnectorError> {
        match part {
            Some(LinePart::Lines(lines)) => Ok(Some(lines)),
            Some(LinePart::End) => Ok(None),
            None => Err(ConnectorError::new(
                connector,
                "the batch was abandoned before its last line arrived; none of it was written",
            )
            .hint("the restore stopped for another reason, which it reports")),
        }
    }
}

/// A page of exported records.
pub type RecordPages = BoxStream<'static, Result<Vec<Record>, ConnectorError>>;

/// A page of exported records already in store form: each record's chunk line (see
/// [`crate::store::chunk`]) and record hash, so consumers that only store or compare records
/// never build them.
#[derive(Clone, Debug, Default)]
pub struct EncodedPage {
    /// The records' chunk lines, each ending in a newline, in `rows` order.
    pub lines: Vec<u8>,
    /// The records' ids back to back; row `i`'s id ends at `rows[i].id_end`.
    pub ids: String,
    pub rows: Vec<EncodedRow>,
}

/// Pages kept for reuse, at most [`RECYCLED_PAGES`].
static RECYCLED: std::sync::Mutex<Vec<EncodedPage>> = std::sync::Mutex::new(Vec::new());
const RECYCLED_PAGES: usize = 8;

/// One record of an [`EncodedPage`].
#[derive(Clone, Copy, Debug)]
pub struct EncodedRow {
    pub id_end: u32,
    pub hash: crate::digest::Hash32,
    pub modified_at: Option<DateTime<Utc>>,
    pub deleted: bool,
}

impl EncodedPage {
    /// An empty page with room for `rows` records of `line_bytes` bytes of lines in all (a
    /// page that never grows is never copied).
    /// Takes a recycled page's buffers when one is waiting (see [`EncodedPage::recycle`]).
    pub fn with_capacity(rows: usize, line_bytes: usize) -> EncodedPage {
        let recycled = RECYCLED.lock().ok().and_then(|mut pool| pool.pop());
        let Some(mut page) = recycled else {
            return EncodedPage {
                lines: Vec::with_capacity(line_bytes),
                ids: String::with_capacity(rows * 8),
                rows: Vec::with_capacity(rows),
            };
        };
        page.lines.reserve(line_bytes);
        page.ids.reserve(rows * 8);
        page.rows.reserve(rows);
        page
    }

    /// Hands the page's buffers to the next [`EncodedPage::with_capacity`] (a few pages are
    /// kept): pages of half a megabyte come and go by the thousand in a backup, and memory the
    /// allocator hands back to the system costs page faults and zeroing when it is taken again.
    pub fn recycle(mut self) {
        self.lines.clear();
        self.ids.clear();
        self.rows.clear();
        if let Ok(mut pool) = RECYCLED.lock()
            && pool.len() < RECYCLED_PAGES
        {
            pool.push(self);
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Appends one record's chunk line.
    pub fn push_record(&mut self, record: &Record) {
        let hash = crate::store::chunk::encode_line(record, &mut self.lines);
        self.push_row(&record.id, hash, record.modified_at, record.deleted);
    }

    /// Records the row whose line was just appended to `lines`.
    pub fn push_row(&mut self, id: &str, hash: crate::digest::Hash32, modified_at: Option<DateTime<Utc>>, deleted: bool) {
        self.ids.push_str(id);
        self.rows.push(EncodedRow {
            id_end: self.ids.len() as u32,
            hash,
            modified_at,
            deleted,
        });
    }

    /// `(id, row)` in page order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &EncodedRow)> {
        let mut start = 0;
        self.rows.iter().map(move |row| {
            let id = &self.ids[start..row.id_end as usize];
            start = row.id_end as usize;
            (id, row)
        })
    }

    /// Encodes a page of records.
    pub fn from_records(records: &[Record]) -> EncodedPage {
        let mut page = EncodedPage {
            lines: Vec::with_capacity(records.len() * 320),
            ids: String::with_capacity(records.len() * 8),
            rows: Vec::with_capacity(records.len()),
        };
        for record in records {
            page.push_record(record);
        }
        page
    }
}

/// Pages of encoded records.
pub type EncodedPages = BoxStream<'static, Result<EncodedPage, ConnectorError>>;

/// Decodes a stream of encoded pages of `object` into record pages (for connectors whose
/// `export` is their `export_encoded`, read back).
pub fn decode_pages(pages: EncodedPages, object: &str, connector: &str) -> RecordPages {
    use futures::StreamExt;
    let (name, connector): (Arc<str>, String) = (object.into(), connector.to_string());
    Box::pin(
        pages.map(move |page| {
            crate::store::chunk::decode_lines(&page?.lines, &name).map_err(|e| ConnectorError::new(&connector, e.message))
        }),
    )
}

/// Encodes a stream of record pages.
pub fn encode_pages(pages: RecordPages) -> EncodedPages {
    use futures::StreamExt;
    Box::pin(pages.map(|page| page.map(|records| EncodedPage::from_records(&records))))
}

/// A CRM endpoint that can be read, written and frozen.
#[async_trait]
pub trait Connector: Send + Sync {
    fn name(&self) -> &str;
    fn kind(&self) -> ConnectorKind;
    fn capabilities(&self) -> Capabilities;
    /// The configured objects, in playbook order.
    fn objects(&self) -> Vec<String>;
    /// Cheap reachability check.
    async fn health(&self) -> Result<(), ConnectorError>;
    /// Objects and their fields (tables, columns, types, keys), for the snapshot.
    async fn describe(&self) -> Result<serde_json::Value, ConnectorError>;
    async fn count(&self, object: &str) -> Result<u64, ConnectorError>;
    /// A cheap guess at `count` (for progress bars and buffer sizes); exact where that is cheap.
    async fn estimated_count(&self, object: &str) -> Option<u64> {
        self.count(object).await.ok()
    }
    /// The newest modified time among the records of `object`, where the connector knows it.
    async fn newest_modified(&self, object: &str) -> Option<DateTime<Utc>> {
        let _ = object;
        None
    }
    /// Every record of `object` (modified at or after `since`, if given), in pages.
    fn export(&self, object: &str, since: Option<DateTime<Utc>>) -> RecordPages;
    /// [`Connector::export`] in store form. Connectors that can write canonical bytes straight
    /// from what the CRM sends override it; the result must equal encoding `export`'s records.
    fn export_encoded(&self, object: &str, since: Option<DateTime<Utc>>) -> EncodedPages {
        encode_pages(self.export(object, since))
    }
    /// The ids and hashes of every record of `object`, for comparisons: pages whose `lines` (and
    /// modified times) may be left empty. The default is [`Connector::export_encoded`].
    fn export_hashes(&self, object: &str) -> EncodedPages {
        self.export_encoded(object, None)
    }
    /// [`Connector::export_ids`] for comparisons: pages whose `lines` (and modified times) may be
    /// left empty, as [`Connector::export_hashes`] has them.
    fn export_id_hashes(&self, object: &str, ids: Vec<String>) -> EncodedPages {
        self.export_ids(object, ids)
    }
    /// The records of `object` whose ids are in `ids`, in store form; ids the connector does not
    /// hold are left out. The default filters a full export.
    fn export_ids(&self, object: &str, ids: Vec<String>) -> EncodedPages {
        use futures::StreamExt;
        let wanted: std::collections::HashSet<String> = ids.into_iter().collect();
        Box::pin(self.export_encoded(object, None).map(move |page| {
            page.map(|page| {
                let mut out = EncodedPage::default();
                let mut start = 0;
                for (id, row) in page.iter() {
                    let end = start + memchr::memchr(b'\n', &page.lines[start..]).map_or(page.lines.len() - start, |n| n + 1);
                    if wanted.contains(id) {
                        out.lines.extend_from_slice(&page.lines[start..end]);
                        out.push_row(id, row.hash, row.modified_at, row.deleted);
                    }
                    start = end;
                }
                out
            })
        }))
    }
    /// A mark of the data's state that only writes from outside this connector change: two equal
    /// marks prove that nothing but the connector's own writes changed any of its records in
    /// between. `None` when the connector cannot tell (then nothing is assumed).
    async fn outside_writes_mark(&self) -> Option<i64> {
        None
    }
    async fn apply(&self, object: &str, batch: &[Record], mode: ApplyMode) -> Result<ApplyOutcome, ConnectorError>;
    /// Upserts records given as the store's chunk lines (see [`crate::store::chunk`]). The
    /// default decodes them and calls [`Connector::apply`]; connectors that can write straight
    /// from the lines override it.
    async fn apply_lines(&self, object: &str, lines: &[u8]) -> Result<ApplyOutcome, ConnectorError> {
        let name: Arc<str> = object.into();
        let records = crate::store::chunk::decode_lines(lines, &name).map_err(|e| {
            ConnectorError::new(self.name(), format!("unreadable snapshot line {}: {}", e.line, e.message))
                .object(object)
                .hint("run `rollback verify --read-data` on the snapshot")
        })?;
        self.apply(object, &records, ApplyMode::Upsert).await
    }
    /// [`Connector::apply_lines`] for one batch whose lines arrive in parts while the snapshot is
    /// still being read, so a connector may write the first lines before the last are read. The
    /// batch is still one transaction, and an abandoned one (see [`LineParts::next`]) writes
    /// nothing. The default gathers the parts and calls [`Connector::apply_lines`].
    async fn apply_line_parts(&self, object: &str, mut parts: LineParts) -> Result<ApplyOutcome, ConnectorError> {
        let mut lines = Vec::new();
        while let Some(part) = parts.next(self.name()).await? {
            lines.extend_from_slice(&part);
        }
        self.apply_lines(object, &lines).await
    }
    /// [`Connector::apply_lines`] for records the destination is known not to hold (a restore
    /// into a table the comparison found without any of them): connectors with a faster plain
    /// insert override it; one that finds a record after all must fail, not overwrite it.
    async fn insert_lines(&self, object: &str, lines: &[u8]) -> Result<ApplyOutcome, ConnectorError> {
        self.apply_lines(object, lines).await
    }
    async fn delete(&self, object: &str, ids: &[String]) -> Result<u64, ConnectorError>;
    /// Stops user writes; returns the receipt that [`Connector::unfreeze`] needs to undo exactly
    /// this freeze. `message` is what a blocked user sees.
    async fn freeze(&self, run_id: &str, message: &str) -> Result<serde_json::Value, ConnectorError> {
        let _ = (run_id, message);
        Err(
            ConnectorError::new(self.name(), format!("connector type `{}` cannot freeze", self.kind().name()))
                .hint("use `freeze: { method: manual }`"),
        )
    }
    /// Undoes what the freeze with `receipt` did.
    async fn unfreeze(&self, receipt: &serde_json::Value) -> Result<(), ConnectorError> {
        let _ = receipt;
        Err(ConnectorError::new(
            self.name(),
            format!("connector type `{}` cannot unfreeze", self.kind().name()),
        ))
    }
    /// For `plan`: whether the connector's own account holds the privileges a step needs
    /// (`need` is `read`, `write` or `freeze`), found by reading only: `Ok` with what it holds,
    /// `Err` naming what is missing and how to grant it. `None` when the connector cannot tell.
    async fn privileges(&self, need: &str) -> Option<Result<String, String>> {
        let _ = need;
        None
    }

    /// Called before `object` is compared with, or restored from, a snapshot whose schema (the
    /// connector's `describe()` when it was taken) is `schema`. A connector whose writes set
    /// whole records narrows its reads and writes of `object` to the fields the snapshot knew,
    /// so that fields added since are neither counted as differences nor cleared. A schema
    /// without the object's field list (`Value::Null`: a backup or a delta is about to read)
    /// lifts the narrowing: every field again.
    async fn align_to_snapshot(&self, object: &str, schema: &serde_json::Value) -> Result<(), ConnectorError> {
        let _ = (object, schema);
        Ok(())
    }

    /// How a drill can write to this connector as its new CRM.
    fn drill_writes(&self) -> DrillWrites {
        DrillWrites::ById
    }

    /// For [`DrillWrites::Sandbox`]: users' changes after `cutover`, made by the sandbox serving
    /// the connector: in each of `objects`, `n` records created, `n` changed and `n` deleted
    /// (fewer where the object holds fewer), chosen by `seed`. Counts by object.
    async fn sandbox_traffic(
        &self,
        cutover: Option<DateTime<Utc>>,
        objects: &[String],
        n: u64,
        seed: u64,
    ) -> Result<std::collections::BTreeMap<String, crate::store::manifest::DeltaCounts>, ConnectorError> {
        let _ = (cutover, objects, n, seed);
        Err(sandbox_traffic::not_sandboxed(self.name(), "hubspot|salesforce"))
    }
    /// Tries a user's write without keeping it: `true` when it would succeed.
    async fn write_probe(&self) -> Result<bool, ConnectorError> {
        Err(ConnectorError::new(self.name(), "this connector has no write probe"))
    }
}

/// Builds the connector a config describes.
pub async fn build(config: &ConnectorConfig) -> Result<Arc<dyn Connector>, ConnectorError> {
    Ok(match config.kind {
        ConnectorKind::Sqlite => Arc::new(sqlite::SqliteConnector::open(config).await?),
        ConnectorKind::Files => Arc::new(files::FilesConnector::open(config)?),
        ConnectorKind::Postgres => Arc::new(postgres::PostgresConnector::open(config).await?),
        ConnectorKind::Mysql => Arc::new(mysql::MysqlConnector::open(config).await?),
        ConnectorKind::Hubspot => Arc::new(hubspot::HubspotConnector::open(config).await?),
        ConnectorKind::Salesforce => Arc::new(salesforce::SalesforceConnector::open(config).await?),
    })
}

/// Resolves a connector's `path` (relative to the playbook's folder). Returns the path and how to
/// show it: the playbook's text when it holds a secret reference, so the value is never printed.
pub fn resolve_path(config: &ConnectorConfig) -> Result<(std::path::PathBuf, String), ConnectorError> {
    let raw = crate::playbook::secret::Secret(config.spec.path.clone().unwrap_or_default());
    let resolved = raw
        .resolve(&config.base_dir)
        .map_err(|e| ConnectorError::new(&config.name, e.to_string()).bad_input())?;
    let path = config.base_dir.join(&resolved);
    let shown = if raw.has_references() {
        raw.0.clone()
    } else {
        path.display().to_string()
    };
    Ok((path, shown))
}

/// Opens one connection to a database server before its pool: the pool would retry a refused
/// or unanswered connection until its timeout and then report only that it timed out. The real
/// reason (refused, unknown host, bad password, TLS) comes back at once; no answer in 15 s is
/// an error of its own. The caller tries its session settings on it, then closes it.
pub async fn first_connection<C: sqlx::Connection>(
    connector: &str,
    connect: impl std::future::Future<Output = Result<C, sqlx::Error>>,
    error: fn(&str, sqlx::Error) -> ConnectorError,
) -> Result<C, ConnectorError> {
    match tokio::time::timeout(std::time::Duration::from_secs(15), connect).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(error(connector, e)),
        Err(_) => Err(ConnectorError::new(connector, "the server did not answer within 15 s")
            .hint("is the server up, and are the `url`'s host and port right (and open to this machine)?")
            .retryable(true)),
    }
}

/// Records arrive in pages of about this many.
pub const PAGE_SIZE: usize = 1000;

/// Turns a channel of pages into a stream.
pub fn pages_from_channel<P: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<Result<P, ConnectorError>>,
) -> BoxStream<'static, Result<P, ConnectorError>> {
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|page| (page, rx))
    }))
}
