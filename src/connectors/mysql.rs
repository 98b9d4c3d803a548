//! `mysql`: one table per object (`table`, optional `schema` = database, `id`, `modified`,
//! `soft_delete`) on a MySQL or MariaDB server, through sqlx.
//!
//! Reads stream `SELECT` results in the text protocol (each value as the server prints it, as
//! `mysqldump` reads them), in batches of rows encoded on a blocking thread straight into chunk
//! lines (see [`super::sql_text`]). Writes are multi-row `INSERT … ON DUPLICATE KEY UPDATE`
//! statements (a plain multi-row `INSERT` when the table holds none of the records), each batch
//! one transaction; deletes are one `DELETE … WHERE id IN (…)` per batch. Every session of the
//! tool uses UTC, utf8mb4 and one fixed `sql_mode`, whatever the server's: strict,
//! `NO_BACKSLASH_ESCAPES` (a quote is the only character a literal escapes),
//! `NO_AUTO_VALUE_ON_ZERO` (an id 0 is restored as 0), and zero or invalid dates allowed (legacy
//! CRM data holds them, and they are restored as they were).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow, MySqlSslMode};
use sqlx::{AssertSqlSafe, Executor, Row};

use super::postgres::flag_set;
use super::sql_text::{self, TextClass};
use super::sqlite::scan_parts;
use super::sqlite_encode::RowEncoder;
use super::{ApplyMode, ApplyOutcome, Capabilities, Connector, ConnectorError, EncodedPage, EncodedPages, PAGE_SIZE, RecordPages};
use crate::playbook::model::FreezeSpec;
use crate::playbook::{ConnectorConfig, ConnectorKind};
use crate::record::{Record, parse_time, plain_ascii, write_json_str};

/// What the tool's sessions set on connect (see the module docs).
const SESSION: &str = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES', \
     net_write_timeout = 3600, net_read_timeout = 3600";

/// A statement of a write stays below this many bytes (and below half the server's
/// `max_allowed_packet`).
const STATEMENT_BYTES: usize = 1 << 20;

/// One column of a mapped table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MyColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub declared: String,
    pub class: TextClass,
    pub not_null: bool,
    pub primary_key: bool,
    /// A generated column: read, never written.
    pub generated: bool,
}

/// How one object maps onto its table, as found in the database.
#[derive(Clone, Debug)]
pub struct MyTable {
    pub object: Arc<str>,
    pub schema: String,
    pub table: String,
    /// `` `schema`.`table` ``.
    pub qualified: String,
    pub id: String,
    pub modified: Option<String>,
    pub soft_delete: Option<String>,
    pub columns: Vec<MyColumn>,
    pub foreign_keys: Vec<Value>,
    /// Unique keys besides the id's: writes then match rows by id alone (see
    /// [`MysqlConnector::upsert_by_id`]).
    pub other_unique: bool,
}

impl MyTable {
    fn select_list(&self) -> String {
        let list: Vec<String> = self.columns.iter().map(|c| quote(&c.name)).collect();
        list.join(", ")
    }

    /// The columns a write sets (generated ones are computed by the server).
    pub fn written(&self) -> impl Iterator<Item = &MyColumn> {
        self.columns.iter().filter(|c| !c.generated)
    }

    fn encoder(&self) -> Option<RowEncoder> {
        let names = self.columns.iter().map(|c| c.name.clone()).collect();
        RowEncoder::for_columns(&self.object, names, &self.id, self.modified.as_deref())
    }
}

/// A MySQL identifier: backquoted, inner backquotes doubled.
pub fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A string literal under `NO_BACKSLASH_ESCAPES`: quotes doubled, nothing else escaped.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_literal(&mut out, text);
    out
}

fn push_literal(out: &mut String, text: &str) {
    out.push('\'');
    for (i, part) in text.split('\'').enumerate() {
        if i > 0 {
            out.push_str("''");
        }
        out.push_str(part);
    }
    out.push('\'');
}

/// A time as MySQL reads it: `YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC (the sessions' time zone).
fn sql_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.f").to_string()
}

/// The server's error number of a database error.
pub(crate) fn error_number(e: &sqlx::Error) -> Option<u16> {
    match e {
        sqlx::Error::Database(d) => d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>().map(|d| d.number()),
        _ => None,
    }
}

pub(crate) fn my_error(connector: &str, e: sqlx::Error) -> ConnectorError {
    // 1205 lock wait timeout, 1213 deadlock.
    let retryable = matches!(&e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut) || matches!(error_number(&e), Some(1205 | 1213));
    let message = e.to_string();
    let hint = if error_number(&e) == Some(1045) {
        Some("the server refused the user or password: check the `url` (a secret belongs in ${env:NAME})")
    } else if message.contains("command denied") || message.contains("Access denied") {
        Some("the connector's account lacks a privilege this step needs; grant it, or connect as the tables' owner")
    } else if message.contains("foreign key constraint fails") {
        Some("a foreign key is missing its parent (or still has children): restore the parent object too, or set `order:` on the step")
    } else if matches!(&e, sqlx::Error::Io(_) | sqlx::Error::Tls(_)) {
        Some("is the server up and the `url` (host, port, TLS options) right?")
    } else if message.contains("max_allowed_packet") {
        Some("lower the step's `batch_size`, or raise the server's max_allowed_packet")
    } else {
        None
    };
    let error = ConnectorError::new(connector, message).retryable(retryable);
    match hint {
        Some(h) => error.hint(h),
        None => error,
    }
}

pub struct MysqlConnector {
    name: String,
    pool: MySqlPool,
    database: String,
    tables: BTreeMap<String, Arc<MyTable>>,
    freeze: Option<FreezeSpec>,
    config: ConnectorConfig,
    /// The largest statement a write sends.
    statement_bytes: usize,
    /// The server's `max_allowed_packet`: no statement, even of one row, may exceed it.
    packet: usize,
    /// A MariaDB server writing a binary log: its GTID sequence counts committed writes.
    binlog_gtids: bool,
    /// Binary log GTIDs the tool's own commits took (see [`Connector::outside_writes_mark`]).
    own_gtids: std::sync::atomic::AtomicI64,
    /// A commit whose GTID could not be told: no mark can be trusted any more.
    gtids_unknown: std::sync::atomic::AtomicBool,
}

/// The connection options of a URL (secrets resolved) and the `tls` keys of `config`.
pub(crate) fn connect_options(config: &ConnectorConfig, url: &str) -> Result<MySqlConnectOptions, ConnectorError> {
    let name = config.name.as_str();
    let raw = crate::playbook::secret::Secret(url.to_string());
    let url = raw
        .resolve(&config.base_dir)
        .map_err(|e| ConnectorError::new(name, e.to_string()).bad_input())?;
    let mut options: MySqlConnectOptions = url.parse().map_err(|_| {
        ConnectorError::new(name, format!("a `url` of connector `{name}` is not a MySQL URL"))
            .hint("write it as mysql://USER:PASSWORD@HOST:PORT/DATABASE (a secret belongs in ${env:NAME})")
            .bad_input()
    })?;
    for (key, value) in config.spec.tls.iter().flatten() {
        options = match key.as_str() {
            "mode" => options.ssl_mode(value.parse::<MySqlSslMode>().map_err(|_| {
                ConnectorError::new(name, format!("`tls.mode` `{value}` is not a MySQL SSL mode"))
                    .hint("use disabled, preferred, required, verify_ca or verify_identity")
                    .bad_input()
            })?),
            "root_cert" | "ca" => options.ssl_ca(config.base_dir.join(value)),
            "client_cert" | "cert" => options.ssl_client_cert(config.base_dir.join(value)),
            "client_key" | "key" => options.ssl_client_key(config.base_dir.join(value)),
            other => {
                return Err(ConnectorError::new(name, format!("unknown `tls` key `{other}`"))
                    .hint("mysql takes tls keys mode, root_cert, client_cert, client_key")
                    .bad_input());
            }
        };
    }
    Ok(options.charset("utf8mb4").timezone(Some("+00:00".to_string())))
}

/// The type class of a column from `DATA_TYPE` and `COLUMN_TYPE`; `json` marks a MariaDB
/// `longtext` that a `json_valid` check makes a JSON column.
fn class_of(data_type: &str, column_type: &str, json: bool) -> TextClass {
    match data_type {
        "tinyint" if column_type.starts_with("tinyint(1)") => TextClass::Boolean,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => TextClass::Integer,
        "decimal" | "numeric" => TextClass::Decimal,
        "float" | "double" | "real" => TextClass::Real,
        "datetime" | "timestamp" => TextClass::Timestamp,
        "json" => TextClass::Json,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "bit" | "geometry" | "point" | "linestring"
        | "polygon" => TextClass::Binary,
        _ if json => TextClass::Json,
        _ => TextClass::Text,
    }
}

impl MysqlConnector {
    /// Connects and reads the mapped tables' columns and keys.
    pub async fn open(config: &ConnectorConfig) -> Result<Self, ConnectorError> {
        let name = config.name.as_str();
        let options = connect_options(config, config.spec.url.as_deref().unwrap_or_default())?;
        // Dry runs and plans read in read-only transactions.
        let read_only = config.read_only;
        let mut first = super::first_connection(
            name,
            <sqlx::mysql::MySqlConnection as sqlx::Connection>::connect_with(&options),
            my_error,
        )
        .await?;
        // The pool's sessions set these on connect; a server that refuses them says why here.
        first.execute(sqlx::raw_sql(SESSION)).await.map_err(|e| {
            my_error(name, e)
                .hint("the server refused the tool's session settings (sql_mode, timeouts): is it MySQL 5.7+ or MariaDB 10.3+?")
        })?;
        let _ = sqlx::Connection::close(first).await;
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    conn.execute(sqlx::raw_sql(SESSION)).await?;
                    if read_only {
                        conn.execute(sqlx::raw_sql("SET SESSION TRANSACTION READ ONLY")).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| my_error(name, e))?;
        let row = sqlx::query("SELECT DATABASE() AS db, @@max_allowed_packet AS packet")
            .fetch_one(&pool)
            .await
            .map_err(|e| my_error(name, e))?;
        let database: Option<String> = row.try_get("db").map_err(|e| my_error(name, e))?;
        let packet: u64 = row
            .try_get::<u64, _>("packet")
            .or_else(|_| row.try_get::<i64, _>("packet").map(|p| p as u64))
            .unwrap_or(16 << 20);
        let binlog_gtids: bool =
            sqlx::query_scalar("SELECT VERSION() LIKE '%MariaDB%' AND @@GLOBAL.log_bin = 1 AND @@GLOBAL.gtid_binlog_pos IS NOT NULL")
                .fetch_one(&pool)
                .await
                .unwrap_or(false);
        let Some(database) = database else {
            return Err(ConnectorError::new(name, "the `url` names no database")
                .hint("end the url with the CRM's database: mysql://USER@HOST:3306/DATABASE")
                .bad_input());
        };
        let mut tables = BTreeMap::new();
        for (object, mapping) in &config.objects {
            let table = mapping.table.clone().unwrap_or_else(|| object.clone());
            let schema = mapping.schema.clone().unwrap_or_else(|| database.clone());
            let map = read_table(name, &pool, object, &schema, &table, mapping).await?;
            tables.insert(object.clone(), Arc::new(map));
        }
        Ok(MysqlConnector {
            name: name.into(),
            pool,
            database,
            tables,
            freeze: config.spec.freeze.clone(),
            config: config.clone(),
            statement_bytes: STATEMENT_BYTES.min(packet as usize / 2).max(64 * 1024),
            packet: packet as usize,
            binlog_gtids,
            own_gtids: Default::default(),
            gtids_unknown: Default::default(),
        })
    }

    fn table(&self, object: &str) -> Result<&Arc<MyTable>, ConnectorError> {
        self.tables
            .get(object)
            .ok_or_else(|| ConnectorError::new(&self.name, "object is not mapped").object(object))
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    pub fn name_str(&self) -> &str {
        &self.name
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn freeze_spec(&self) -> Option<&FreezeSpec> {
        self.freeze.as_ref()
    }

    pub fn config(&self) -> &ConnectorConfig {
        &self.config
    }

    pub fn mapped(&self) -> impl Iterator<Item = &Arc<MyTable>> {
        self.tables.values()
    }

    /// Streams the rows of `object` (modified at or after `since`, or with the ids `only`) as
    /// pages; with `lines` false the pages carry only ids and hashes.
    fn scan(&self, object: &str, since: Option<DateTime<Utc>>, lines: bool, only: Option<Vec<String>>) -> EncodedPages {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<EncodedPage, ConnectorError>>(4);
        let map = match self.table(object) {
            Ok(map) => map.clone(),
            Err(e) => {
                let _ = tx.try_send(Err(e));
                return super::pages_from_channel(rx);
            }
        };
        let (name, pool) = (self.name.clone(), self.pool.clone());
        tokio::spawn(async move {
            let mut conditions = Vec::new();
            if let (Some(t), Some(m)) = (since, &map.modified) {
                conditions.push(format!("{} >= {}", quote(m), literal(&sql_time(&t))));
            }
            let mut selects = Vec::new();
            match &only {
                Some(ids) => {
                    // Id lists become several statements, each of bounded size.
                    for part in ids.chunks(5000) {
                        let list: Vec<String> = part.iter().map(|id| literal(id)).collect();
                        let mut all = conditions.clone();
                        all.push(format!("{} IN ({})", quote(&map.id), list.join(",")));
                        selects.push(all);
                    }
                }
                None => selects.push(conditions),
            }
            let selects: Vec<String> = selects
                .into_iter()
                .map(|conditions| {
                    let filter = if conditions.is_empty() {
                        String::new()
                    } else {
                        format!(" WHERE {}", conditions.join(" AND "))
                    };
                    format!("SELECT {} FROM {}{filter}", map.select_list(), map.qualified)
                })
                .collect();
            if only.is_none() {
                // A whole table with an integer key: key ranges read at once, a connection each.
                let ranges = match key_ranges(&pool, &map, scan_parts()).await {
                    Ok(ranges) => ranges,
                    Err(e) => return drop(tx.send(Err(my_error(&name, e).object(&map.object))).await),
                };
                if ranges.len() > 1 {
                    let base = &selects[0];
                    let glue = if base.contains(" WHERE ") { " AND " } else { " WHERE " };
                    let scans: Vec<_> = ranges
                        .into_iter()
                        .map(|range| {
                            let sql = format!("{base}{glue}{range}");
                            tokio::spawn(stream_selects(
                                name.clone(),
                                pool.clone(),
                                map.clone(),
                                vec![sql],
                                lines,
                                tx.clone(),
                            ))
                        })
                        .collect();
                    for scan in scans {
                        let _ = scan.await;
                    }
                    return;
                }
            }
            stream_selects(name, pool, map, selects, lines, tx).await;
        });
        super::pages_from_channel(rx)
    }
}

/// `id` conditions that split a table with an integer key into `parts` ranges of the key; the
/// first and last are open, so rows added meanwhile are read too. One range (no condition) for
/// small tables and other keys.
async fn key_ranges(pool: &MySqlPool, map: &MyTable, parts: usize) -> Result<Vec<String>, sqlx::Error> {
    let integer = map.columns.iter().any(|c| c.name == map.id && c.class == TextClass::Integer);
    if !integer || parts < 2 {
        return Ok(vec![String::new()]);
    }
    let rows: Option<u64> =
        sqlx::query_scalar("SELECT CAST(TABLE_ROWS AS UNSIGNED) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?")
            .bind(&map.schema)
            .bind(&map.table)
            .fetch_optional(pool)
            .await?
            .flatten();
    if rows.unwrap_or(0) < 50_000 {
        return Ok(vec![String::new()]);
    }
    let id = quote(&map.id);
    let (low, high): (Option<String>, Option<String>) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT CAST(MIN({id}) AS CHAR), CAST(MAX({id}) AS CHAR) FROM {}",
        map.qualified
    )))
    .fetch_one(pool)
    .await?;
    let (Some(low), Some(high)) = (low.and_then(|v| v.parse::<i128>().ok()), high.and_then(|v| v.parse::<i128>().ok())) else {
        return Ok(vec![String::new()]);
    };
    let step = (high - low + 1) / parts as i128;
    if step < 1 {
        return Ok(vec![String::new()]);
    }
    let bound = |i: usize| low + step * i as i128;
    Ok((0..parts)
        .map(|i| match i {
            0 => format!("{id} < {}", bound(1)),
            i if i + 1 == parts => format!("{id} >= {}", bound(i)),
            i => format!("{id} >= {} AND {id} < {}", bound(i), bound(i + 1)),
        })
        .collect())
}

/// Streams the rows of `selects`, one after the other, through one encoder thread.
async fn stream_selects(
    name: String,
    pool: MySqlPool,
    map: Arc<MyTable>,
    selects: Vec<String>,
    lines: bool,
    tx: tokio::sync::mpsc::Sender<Result<EncodedPage, ConnectorError>>,
) {
    let (rows_tx, rows_rx) = tokio::sync::mpsc::channel::<Vec<MySqlRow>>(4);
    let encoder = {
        let (name, map, tx) = (name.clone(), map.clone(), tx.clone());
        tokio::task::spawn_blocking(move || encode_rows(&name, &map, lines, rows_rx, &tx))
    };
    'selects: for sql in selects {
        // The text protocol: every value arrives as the server prints it.
        let mut rows = sqlx::raw_sql(AssertSqlSafe(sql)).fetch(&pool);
        let mut batch = Vec::with_capacity(256);
        loop {
            match rows.next().await {
                Some(Ok(row)) => {
                    batch.push(row);
                    if batch.len() >= 256 && rows_tx.send(std::mem::take(&mut batch)).await.is_err() {
                        break 'selects;
                    }
                }
                Some(Err(e)) => {
                    let _ = tx.send(Err(my_error(&name, e).object(&map.object))).await;
                    break 'selects;
                }
                None => break,
            }
        }
        if !batch.is_empty() && rows_tx.send(batch).await.is_err() {
            break;
        }
    }
    drop(rows_tx);
    let _ = encoder.await;
}

/// Turns batches of rows into pages of chunk lines (see [`MysqlConnector::scan`]).
fn encode_rows(
    name: &str,
    map: &MyTable,
    lines: bool,
    mut rows: tokio::sync::mpsc::Receiver<Vec<MySqlRow>>,
    tx: &tokio::sync::mpsc::Sender<Result<EncodedPage, ConnectorError>>,
) {
    let Some(mut encoder) = map.encoder() else {
        let _ = tx.blocking_send(Err(ConnectorError::new(
            name,
            format!("table `{}` has no column `{}`", map.table, map.id),
        )
        .object(&map.object)));
        return;
    };
    if !lines {
        encoder = encoder.hashes_only();
    }
    let classes: Vec<TextClass> = map.columns.iter().map(|c| c.class).collect();
    let deleted_at = map.soft_delete.as_ref().and_then(|c| map.columns.iter().position(|x| &x.name == c));
    let mut page = EncodedPage::default();
    while let Some(batch) = rows.blocking_recv() {
        let mut values: Vec<Option<&[u8]>> = Vec::with_capacity(classes.len());
        for row in &batch {
            let err = |m: String| {
                ConnectorError::new(name, format!("row of table `{}`: {m}", map.table))
                    .object(&map.object)
                    .hint("fix the row in the database, or map the object to another table")
            };
            values.clear();
            for i in 0..classes.len() {
                match row.try_get_unchecked::<Option<&[u8]>, _>(i) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        let _ = tx.blocking_send(Err(err(format!("column `{}`: {e}", map.columns[i].name))));
                        return;
                    }
                }
            }
            let deleted = deleted_at.is_some_and(|i| flag_set(values[i].and_then(|v| std::str::from_utf8(v).ok())));
            let done = encoder.encode_with(&mut page, deleted, |i, out| {
                write_value(classes[i], values[i], out).map_err(|m| format!("column `{}`: {m}", map.columns[i].name))
            });
            if let Err(m) = done {
                let _ = tx.blocking_send(Err(err(m)));
                return;
            }
            if page.len() >= PAGE_SIZE
                && tx
                    .blocking_send(Ok(std::mem::replace(&mut page, EncodedPage::with_capacity(PAGE_SIZE, 0))))
                    .is_err()
            {
                return;
            }
        }
    }
    if !page.is_empty() {
        let _ = tx.blocking_send(Ok(page));
    }
}

/// Appends the canonical JSON of one value as the text protocol sends it.
fn write_value(class: TextClass, value: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), String> {
    let Some(bytes) = value else {
        out.extend_from_slice(b"null");
        return Ok(());
    };
    match class {
        TextClass::Binary => {
            serde_json::to_writer(&mut *out, &super::values::from_bytes(bytes)).expect("in-memory JSON write");
            Ok(())
        }
        // Most CRM text is plain ASCII: written as it is.
        TextClass::Text if plain_ascii(bytes) => {
            out.reserve(bytes.len() + 2);
            out.push(b'"');
            out.extend_from_slice(bytes);
            out.push(b'"');
            Ok(())
        }
        // A tinyint(1) holding something else than 0 or 1 keeps its number.
        TextClass::Boolean if bytes != b"0" && bytes != b"1" => {
            let text = std::str::from_utf8(bytes).map_err(|_| "a boolean that is not text".to_string())?;
            sql_text::write_value(TextClass::Integer, Some(text), out)
        }
        TextClass::Timestamp if !valid_date(bytes) => {
            // A zero or invalid date (`0000-00-00`, `2024-00-15`, `2024-02-31`) stays as MySQL
            // spells it.
            write_json_str(out, std::str::from_utf8(bytes).map_err(|_| "a time that is not text".to_string())?);
            Ok(())
        }
        _ => {
            let text = std::str::from_utf8(bytes).map_err(|_| "text that is not UTF-8".to_string())?;
            sql_text::write_value(class, Some(text), out)
        }
    }
}

/// Whether `YYYY-MM-DD…` text starts with a date that exists (other text counts as valid: the
/// generic parsing decides what it is).
fn valid_date(bytes: &[u8]) -> bool {
    let digits = |r: std::ops::Range<usize>| {
        bytes
            .get(r)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<u32>().ok())
    };
    match (digits(0..4), bytes.get(4), digits(5..7), bytes.get(7), digits(8..10)) {
        (Some(y), Some(b'-'), Some(m), Some(b'-'), Some(d)) => chrono::NaiveDate::from_ymd_opt(y as i32, m, d).is_some(),
        _ => true,
    }
}

/// Appends the SQL literal of a field value for a column of `class`.
fn push_value(out: &mut String, class: TextClass, value: &Value) -> Result<(), String> {
    match value {
        Value::Null => out.push_str("NULL"),
        Value::Bool(b) if class != TextClass::Json => out.push_str(if *b { "1" } else { "0" }),
        Value::Number(n) if class != TextClass::Json => {
            let _ = write!(out, "{n}");
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("$bytes") && class != TextClass::Json => {
            let bytes = super::values::to_sql(super::values::ColumnClass::Binary, value)?;
            let super::values::SqlValue::Blob(bytes) = bytes else {
                return Err("`$bytes` must be a base64 string".into());
            };
            if bytes.is_empty() {
                out.push_str("''");
            } else {
                out.push_str("0x");
                out.push_str(&const_hex::encode(bytes));
            }
        }
        Value::String(s) if class == TextClass::Timestamp => match parse_time(s) {
            Some(t) => push_literal(out, &sql_time(&t)),
            None => push_literal(out, s),
        },
        Value::String(s) if class != TextClass::Json => push_literal(out, s),
        other => push_literal(out, &other.to_string()),
    }
    Ok(())
}

/// Multi-row `INSERT` statements for `records` (with `ON DUPLICATE KEY UPDATE` unless `insert`),
/// each below `limit` bytes.
fn insert_statements(name: &str, map: &MyTable, records: &[Record], insert: bool, limits: Limits) -> Result<Vec<String>, ConnectorError> {
    let mut statements = Vec::new();
    each_insert_statement(name, map, records, insert, limits, |sql| {
        statements.push(sql);
        true
    })?;
    Ok(statements)
}

/// How large the statements of a write may be.
#[derive(Clone, Copy)]
struct Limits {
    /// A statement of several rows stays below this.
    statement: usize,
    /// The server's `max_allowed_packet`: a row whose statement alone exceeds it cannot be sent.
    packet: usize,
}

/// The SQL text of one record's row is longer than the server takes.
fn too_large(name: &str, map: &MyTable, record: &Record, bytes: usize, packet: usize) -> ConnectorError {
    ConnectorError::new(
        name,
        format!("the record is {bytes} bytes as SQL, more than the server's max_allowed_packet ({packet} bytes)"),
    )
    .object(&map.object)
    .record(&record.id)
    .hint("raise max_allowed_packet on the server (SET GLOBAL max_allowed_packet = 1073741824) and run the phase again with --resume")
}

/// Hands each statement of [`insert_statements`] to `emit` as soon as it is built (so the server
/// runs one while the next is built); stops when `emit` returns false.
fn each_insert_statement(
    name: &str,
    map: &MyTable,
    records: &[Record],
    insert: bool,
    limits: Limits,
    mut emit: impl FnMut(String) -> bool,
) -> Result<(), ConnectorError> {
    let limit = limits.statement;
    let columns: Vec<&MyColumn> = map.written().collect();
    let list: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
    let head = format!("INSERT INTO {} ({}) VALUES ", map.qualified, list.join(", "));
    let tail = if insert {
        String::new()
    } else {
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| c.name != map.id)
            .map(|c| format!("{0} = VALUES({0})", quote(&c.name)))
            .collect();
        match updates.is_empty() {
            true => format!(" ON DUPLICATE KEY UPDATE {0} = {0}", quote(&map.id)),
            false => format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", ")),
        }
    };
    let mut sql = String::new();
    let mut row = String::new();
    for record in records {
        row.clear();
        row.push('(');
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                row.push(',');
            }
            let value = record.fields.get(&column.name).unwrap_or(&Value::Null);
            push_value(&mut row, column.class, value).map_err(|m| {
                ConnectorError::new(name, format!("column `{}`: {m}", column.name))
                    .object(&map.object)
                    .record(&record.id)
            })?;
        }
        row.push(')');
        if head.len() + row.len() + tail.len() > limits.packet {
            return Err(too_large(name, map, record, head.len() + row.len() + tail.len(), limits.packet));
        }
        if !sql.is_empty() && sql.len() + row.len() + tail.len() > limit {
            sql.push_str(&tail);
            if !emit(std::mem::replace(&mut sql, String::with_capacity(limit + 4096))) {
                return Ok(());
            }
        }
        if sql.is_empty() {
            sql.push_str(&head);
        } else {
            sql.push(',');
        }
        sql.push_str(&row);
    }
    if !sql.is_empty() {
        sql.push_str(&tail);
        emit(sql);
    }
    Ok(())
}

/// Reads one mapped table's columns, key and foreign keys from `information_schema`.
async fn read_table(
    name: &str,
    pool: &MySqlPool,
    object: &str,
    schema: &str,
    table: &str,
    mapping: &crate::playbook::model::ObjectMapping,
) -> Result<MyTable, ConnectorError> {
    let err = |e: sqlx::Error| my_error(name, e).object(object);
    let rows = sqlx::query(
        "SELECT CAST(COLUMN_NAME AS CHAR) AS name, CAST(DATA_TYPE AS CHAR) AS data_type, CAST(COLUMN_TYPE AS CHAR) AS column_type, \
         IS_NULLABLE = 'NO' AS not_null, COLUMN_KEY = 'PRI' AS pk, (EXTRA LIKE '%VIRTUAL GENERATED%' OR EXTRA LIKE '%STORED GENERATED%' OR EXTRA LIKE '%PERSISTENT GENERATED%') AS generated \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(pool)
    .await
    .map_err(err)?;
    if rows.is_empty() {
        return Err(ConnectorError::new(name, format!("table `{schema}.{table}` does not exist"))
            .object(object)
            .hint("set `table:` (and `schema:`, the database) on the object to the real table name"));
    }
    // MariaDB's JSON is a longtext with a json_valid check (MySQL has no such table: no rows).
    let json_columns: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(CHECK_CLAUSE AS CHAR) FROM information_schema.CHECK_CONSTRAINTS \
         WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? AND CHECK_CLAUSE LIKE 'json_valid(%'",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(pool)
    .await
    .unwrap_or_default();
    let columns: Vec<MyColumn> = rows
        .iter()
        .map(|r| {
            let name: String = r.get("name");
            let data_type: String = r.get("data_type");
            let column_type: String = r.get("column_type");
            let json = json_columns.iter().any(|c| c == &format!("json_valid({})", quote(&name)));
            MyColumn {
                class: class_of(&data_type.to_ascii_lowercase(), &column_type.to_ascii_lowercase(), json),
                name,
                declared: column_type,
                not_null: r.get::<i64, _>("not_null") != 0,
                primary_key: r.get::<i64, _>("pk") != 0,
                generated: r.get::<i64, _>("generated") != 0,
            }
        })
        .collect();
    let id = mapping
        .id
        .clone()
        .or_else(|| match columns.iter().filter(|c| c.primary_key).collect::<Vec<_>>().as_slice() {
            [one] => Some(one.name.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "id".into());
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    for (key, column) in [
        ("id", Some(&id)),
        ("modified", mapping.modified.as_ref()),
        ("soft_delete", mapping.soft_delete.as_ref()),
    ] {
        let Some(column) = column else { continue };
        if !names.contains(&column.as_str()) {
            return Err(
                ConnectorError::new(name, format!("table `{schema}.{table}` has no column `{column}` (its `{key}`)"))
                    .object(object)
                    .hint(crate::playbook::diagnostic::suggest(column, "column", names.iter().copied())),
            );
        }
    }
    // ON DUPLICATE KEY needs a unique index on exactly the id column; other unique keys make
    // writes match rows by id alone.
    let (on_id, others): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(on_id), 0) AS SIGNED), CAST(COALESCE(SUM(NOT on_id), 0) AS SIGNED) FROM \
         (SELECT INDEX_NAME, COUNT(*) = 1 AND MAX(COLUMN_NAME) = ? AS on_id FROM information_schema.STATISTICS \
          WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 GROUP BY INDEX_NAME) AS unique_keys",
    )
    .bind(&id)
    .bind(schema)
    .bind(table)
    .fetch_one(pool)
    .await
    .map_err(err)?;
    if on_id == 0 {
        return Err(ConnectorError::new(
            name,
            format!("column `{id}` of table `{schema}.{table}` is not the primary key or unique"),
        )
        .object(object)
        .hint("set `id:` on the object to the table's primary-key column (restores match records on it)"));
    }
    let keys = sqlx::query(
        "SELECT CAST(GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION) AS CHAR) AS columns, \
         CAST(REFERENCED_TABLE_NAME AS CHAR) AS parent, CAST(REFERENCED_TABLE_SCHEMA AS CHAR) AS parent_schema, \
         CAST(GROUP_CONCAT(REFERENCED_COLUMN_NAME ORDER BY ORDINAL_POSITION) AS CHAR) AS parent_columns \
         FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND REFERENCED_TABLE_NAME IS NOT NULL \
         GROUP BY CONSTRAINT_NAME, REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(pool)
    .await
    .map_err(err)?;
    let foreign_keys = keys
        .iter()
        .map(|r| {
            json!({
                "column": r.get::<Option<String>, _>("columns"),
                "table": r.get::<String, _>("parent"),
                "schema": r.get::<String, _>("parent_schema"),
                "references": r.get::<Option<String>, _>("parent_columns"),
            })
        })
        .collect();
    Ok(MyTable {
        object: object.into(),
        schema: schema.into(),
        table: table.into(),
        qualified: format!("{}.{}", quote(schema), quote(table)),
        id,
        modified: mapping.modified.clone(),
        soft_delete: mapping.soft_delete.clone(),
        columns,
        foreign_keys,
        other_unique: others > 0,
    })
}

impl MysqlConnector {
    /// A session for one write transaction, with its last binary log GTID before it.
    async fn session(&self) -> Result<(sqlx::pool::PoolConnection<sqlx::MySql>, Option<String>), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let before = self.last_gtid(&mut conn).await;
        Ok((conn, before))
    }

    async fn last_gtid(&self, conn: &mut sqlx::MySqlConnection) -> Option<String> {
        if !self.binlog_gtids {
            return None;
        }
        sqlx::query_scalar::<_, Option<String>>("SELECT CAST(@@SESSION.last_gtid AS CHAR)")
            .fetch_one(conn)
            .await
            .ok()
            .flatten()
    }

    /// Counts the GTID the commit just made on `conn` took, if it took one.
    async fn count_commit(&self, conn: &mut sqlx::MySqlConnection, before: Option<String>) {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.binlog_gtids {
            return;
        }
        match (before, self.last_gtid(conn).await) {
            (_, None) => self.gtids_unknown.store(true, SeqCst),
            (before, Some(after)) if before.as_deref() != Some(after.as_str()) => {
                self.own_gtids.fetch_add(1, SeqCst);
            }
            _ => {}
        }
    }

    /// Writes a batch of records in one transaction: inserted when the table holds none of them
    /// (a duplicate fails the batch), else upserted.
    async fn write(&self, map: &MyTable, statements: Vec<String>, records: usize) -> Result<ApplyOutcome, ConnectorError> {
        let err = |e: sqlx::Error| my_error(&self.name, e).object(&map.object);
        if statements.is_empty() {
            return Ok(ApplyOutcome {
                written: 0,
                id_map: Vec::new(),
            });
        }
        let (mut conn, before) = self.session().await.map_err(err)?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(err)?;
        for sql in statements {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        self.count_commit(&mut conn, before).await;
        Ok(ApplyOutcome {
            written: records as u64,
            id_map: Vec::new(),
        })
    }

    /// Writes a batch of chunk lines in one transaction: the statements are built on a blocking
    /// thread while the server runs the ones before.
    async fn write_lines(&self, object: &str, lines: &[u8], insert: bool) -> Result<ApplyOutcome, ConnectorError> {
        let map = self.table(object)?.clone();
        let err = |e: sqlx::Error| my_error(&self.name, e).object(&map.object);
        let (statements, mut ready) = tokio::sync::mpsc::channel::<String>(2);
        let (name, built, lines, limits) = (self.name.clone(), map.clone(), lines.to_vec(), self.limits());
        let builder = tokio::task::spawn_blocking(move || {
            let records = crate::store::chunk::decode_lines(&lines, &built.object).map_err(|e| {
                ConnectorError::new(&name, format!("unreadable snapshot line {}: {}", e.line, e.message))
                    .object(&built.object)
                    .hint("run `rollback verify --read-data` on the snapshot")
            })?;
            if !insert && built.other_unique {
                return Ok(Err(records));
            }
            each_insert_statement(&name, &built, &records, insert, limits, |sql| statements.blocking_send(sql).is_ok())?;
            Ok::<_, ConnectorError>(Ok(records.len()))
        });
        let (mut conn, before) = self.session().await.map_err(err)?;
        // The transaction lives in this block, so the session is free again for counting.
        let (records, committed) = {
            let mut failed = None;
            // Begun with the first statement: a batch with none writes nothing.
            let mut next = ready.recv().await;
            let mut tx = match next {
                Some(_) => match sqlx::Connection::begin(&mut *conn).await {
                    Ok(t) => Some(t),
                    Err(e) => {
                        failed = Some(err(e));
                        next = None;
                        None
                    }
                },
                None => None,
            };
            while let (Some(sql), Some(open)) = (next.take(), tx.as_mut()) {
                if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **open).await {
                    failed = Some(err(e));
                    break;
                }
                next = ready.recv().await;
            }
            // A failed write drops the receiver, which stops the builder; the transaction rolls back.
            drop(ready);
            let records = builder.await.map_err(|e| ConnectorError::new(&self.name, e.to_string()))?;
            if let Some(e) = failed {
                return Err(e);
            }
            match records? {
                Ok(n) => match tx {
                    Some(tx) => (n, tx.commit().await.map(|_| true).map_err(err)?),
                    None => (n, false),
                },
                // A table with other unique keys: matched by id alone, row by row.
                Err(records) => {
                    drop(tx);
                    return self.upsert_by_id(&map, &records).await;
                }
            }
        };
        if committed {
            self.count_commit(&mut conn, before).await;
        }
        Ok(ApplyOutcome {
            written: records as u64,
            id_map: Vec::new(),
        })
    }

    /// Upserts into a table that has unique keys besides the id, where `ON DUPLICATE KEY` could
    /// update the row another key matches: in one transaction, the ids the table holds (locked)
    /// get an `UPDATE … WHERE id = …` each, the others one multi-row `INSERT`; a clash on another
    /// key fails the batch instead of overwriting another record.
    async fn upsert_by_id(&self, map: &MyTable, records: &[Record]) -> Result<ApplyOutcome, ConnectorError> {
        let err = |e: sqlx::Error| my_error(&self.name, e).object(&map.object);
        let (mut conn, before) = self.session().await.map_err(err)?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(err)?;
        let mut held = std::collections::HashSet::new();
        for part in records.chunks(5000) {
            let list: Vec<String> = part.iter().map(|r| literal(&r.id)).collect();
            let sql = format!(
                "SELECT CAST({0} AS CHAR) FROM {1} WHERE {0} IN ({2}) FOR UPDATE",
                quote(&map.id),
                map.qualified,
                list.join(",")
            );
            let ids: Vec<Option<String>> = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_all(&mut *tx).await.map_err(err)?;
            held.extend(ids.into_iter().flatten());
        }
        let (existing, fresh): (Vec<&Record>, Vec<&Record>) = records.iter().partition(|r| held.contains(&r.id));
        let columns: Vec<&MyColumn> = map.written().filter(|c| c.name != map.id).collect();
        for record in &existing {
            let mut sql = format!("UPDATE {} SET ", map.qualified);
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&quote(&column.name));
                sql.push_str(" = ");
                let value = record.fields.get(&column.name).unwrap_or(&Value::Null);
                push_value(&mut sql, column.class, value).map_err(|m| {
                    ConnectorError::new(&self.name, format!("column `{}`: {m}", column.name))
                        .object(&map.object)
                        .record(&record.id)
                })?;
            }
            if columns.is_empty() {
                continue;
            }
            sql.push_str(&format!(" WHERE {} = {}", quote(&map.id), literal(&record.id)));
            if sql.len() > self.packet {
                return Err(too_large(&self.name, map, record, sql.len(), self.packet));
            }
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await.map_err(err)?;
        }
        let fresh: Vec<Record> = fresh.into_iter().cloned().collect();
        for sql in insert_statements(&self.name, map, &fresh, true, self.limits())? {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        self.count_commit(&mut conn, before).await;
        Ok(ApplyOutcome {
            written: records.len() as u64,
            id_map: Vec::new(),
        })
    }

    fn limits(&self) -> Limits {
        Limits {
            statement: self.statement_bytes,
            packet: self.packet,
        }
    }
}

#[async_trait]
impl Connector for MysqlConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Mysql
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read: true,
            write: true,
            freeze: true,
        }
    }

    fn objects(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| my_error(&self.name, e))
    }

    async fn describe(&self) -> Result<Value, ConnectorError> {
        let objects: serde_json::Map<String, Value> = self
            .tables
            .iter()
            .map(|(object, map)| {
                (
                    object.clone(),
                    json!({"table": map.table, "schema": map.schema, "id": map.id, "modified": map.modified,
                           "soft_delete": map.soft_delete, "columns": map.columns, "foreign_keys": map.foreign_keys}),
                )
            })
            .collect();
        Ok(json!({"type": "mysql", "database": self.database, "objects": objects}))
    }

    async fn count(&self, object: &str) -> Result<u64, ConnectorError> {
        let map = self.table(object)?;
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {}", map.qualified)))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| my_error(&self.name, e).object(object))?;
        Ok(n as u64)
    }

    async fn estimated_count(&self, object: &str) -> Option<u64> {
        let map = self.table(object).ok()?;
        // InnoDB's estimate; an exact count for small or unanalysed tables.
        let estimate: Option<u64> = sqlx::query_scalar(
            "SELECT CAST(TABLE_ROWS AS UNSIGNED) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
        )
        .bind(&map.schema)
        .bind(&map.table)
        .fetch_optional(&self.pool)
        .await
        .ok()
        .flatten()
        .flatten();
        match estimate {
            Some(n) if n >= 10_000 => Some(n),
            _ => self.count(object).await.ok(),
        }
    }

    async fn newest_modified(&self, object: &str) -> Option<DateTime<Utc>> {
        let map = self.table(object).ok()?;
        let column = map.modified.as_ref()?;
        let sql = format!("SELECT CAST(MAX({}) AS CHAR) FROM {}", quote(column), map.qualified);
        let text: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&self.pool).await.ok()?;
        text.as_deref().and_then(parse_time)
    }

    /// On a MariaDB server with a binary log: the sum of the GTID sequence numbers of its
    /// binary log position less the GTIDs the tool's own commits took. Every committed write
    /// takes a GTID when it commits, so an equal mark proves nobody else committed a write in
    /// between (writes of sessions that turned `sql_log_bin` off are the exception; writes to
    /// other tables only cost a full comparison). `None` elsewhere: MySQL, no binary log.
    async fn outside_writes_mark(&self) -> Option<i64> {
        use std::sync::atomic::Ordering::SeqCst;
        if !self.binlog_gtids || self.gtids_unknown.load(SeqCst) {
            return None;
        }
        let position: String = sqlx::query_scalar("SELECT CAST(@@GLOBAL.gtid_binlog_pos AS CHAR)")
            .fetch_one(&self.pool)
            .await
            .ok()?;
        let mut sum: i64 = 0;
        for gtid in position.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            sum += gtid.rsplit('-').next()?.parse::<i64>().ok()?;
        }
        Some(sum - self.own_gtids.load(SeqCst))
    }

    fn export(&self, object: &str, since: Option<DateTime<Utc>>) -> RecordPages {
        super::decode_pages(self.export_encoded(object, since), object, &self.name)
    }

    fn export_encoded(&self, object: &str, since: Option<DateTime<Utc>>) -> EncodedPages {
        self.scan(object, since, true, None)
    }

    fn export_hashes(&self, object: &str) -> EncodedPages {
        self.scan(object, None, false, None)
    }

    fn export_ids(&self, object: &str, ids: Vec<String>) -> EncodedPages {
        self.scan(object, None, true, Some(ids))
    }

    async fn apply(&self, object: &str, batch: &[Record], _mode: ApplyMode) -> Result<ApplyOutcome, ConnectorError> {
        let map = self.table(object)?.clone();
        if map.other_unique {
            return self.upsert_by_id(&map, batch).await;
        }
        let statements = insert_statements(&self.name, &map, batch, false, self.limits())?;
        self.write(&map, statements, batch.len()).await
    }

    async fn apply_lines(&self, object: &str, lines: &[u8]) -> Result<ApplyOutcome, ConnectorError> {
        self.write_lines(object, lines, false).await
    }

    async fn insert_lines(&self, object: &str, lines: &[u8]) -> Result<ApplyOutcome, ConnectorError> {
        self.write_lines(object, lines, true).await
    }

    async fn delete(&self, object: &str, ids: &[String]) -> Result<u64, ConnectorError> {
        let map = self.table(object)?;
        let err = |e: sqlx::Error| my_error(&self.name, e).object(object);
        let (mut conn, before) = self.session().await.map_err(err)?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(err)?;
        let mut deleted = 0;
        for part in ids.chunks(5000) {
            let list: Vec<String> = part.iter().map(|id| literal(id)).collect();
            let sql = format!("DELETE FROM {} WHERE {} IN ({})", map.qualified, quote(&map.id), list.join(","));
            deleted += sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .map_err(err)?
                .rows_affected();
        }
        tx.commit().await.map_err(err)?;
        self.count_commit(&mut conn, before).await;
        Ok(deleted)
    }

    async fn freeze(&self, run_id: &str, message: &str) -> Result<Value, ConnectorError> {
        super::mysql_freeze::freeze(self, run_id, message).await
    }

    async fn unfreeze(&self, receipt: &Value) -> Result<(), ConnectorError> {
        super::mysql_freeze::unfreeze(self, receipt).await
    }

    async fn write_probe(&self) -> Result<bool, ConnectorError> {
        super::mysql_freeze::write_probe(self).await
    }

    async fn privileges(&self, need: &str) -> Option<Result<String, String>> {
        Some(super::mysql_freeze::privileges(self, need).await)
    }
}

/// The rows of a catalog query with its values as text (numbers printed), for the freeze module.
pub(crate) async fn strings(pool: &MySqlPool, sql: &str, binds: &[&str]) -> Result<Vec<Vec<Option<String>>>, sqlx::Error> {
    let mut query = sqlx::query(AssertSqlSafe(sql.to_string()));
    for b in binds {
        query = query.bind(b.to_string());
    }
    let rows: Vec<MySqlRow> = query.fetch(pool).try_collect().await?;
    let text = |r: &MySqlRow, i: usize| -> Option<String> {
        if let Ok(v) = r.try_get::<Option<String>, _>(i) {
            return v;
        }
        if let Ok(v) = r.try_get::<Option<i64>, _>(i) {
            return v.map(|n| n.to_string());
        }
        r.try_get::<Option<u64>, _>(i).ok().flatten().map(|n| n.to_string())
    };
    Ok(rows.iter().map(|r| (0..r.len()).map(|i| text(r, i)).collect()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes_only() {
        assert_eq!(literal("it's a \\ test"), "'it''s a \\ test'");
        assert_eq!(quote("we`ird"), "`we``ird`");
    }

    #[test]
    fn values_become_literals() {
        let cases = [
            (TextClass::Integer, json!(5), "5"),
            (TextClass::Boolean, json!(true), "1"),
            (TextClass::Decimal, json!("10.50"), "'10.50'"),
            (TextClass::Timestamp, json!("2024-02-14T19:04:04.250Z"), "'2024-02-14 19:04:04.250'"),
            (TextClass::Timestamp, json!("0000-00-00 00:00:00"), "'0000-00-00 00:00:00'"),
            (TextClass::Json, json!({"a": [1, "x'y"]}), r#"'{"a":[1,"x''y"]}'"#),
            (TextClass::Json, json!(3), "'3'"),
            (TextClass::Json, json!(true), "'true'"),
            (TextClass::Timestamp, json!("2024-02-31 00:00:00"), "'2024-02-31 00:00:00'"),
            (TextClass::Binary, json!({"$bytes": "AP8="}), "0x00ff"),
            (TextClass::Binary, json!({"$bytes": ""}), "''"),
            (TextClass::Text, Value::Null, "NULL"),
        ];
        for (class, value, expected) in cases {
            let mut out = String::new();
            push_value(&mut out, class, &value).unwrap();
            assert_eq!(out, expected, "{value}");
        }
    }

    #[test]
    fn text_protocol_values_become_canonical() {
        let read = |class, bytes: Option<&[u8]>| {
            let mut out = Vec::new();
            write_value(class, bytes, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(read(TextClass::Boolean, Some(b"1")), "true");
        assert_eq!(read(TextClass::Boolean, Some(b"7")), "7");
        assert_eq!(read(TextClass::Binary, Some(&[0, 255])), r#"{"$bytes":"AP8="}"#);
        assert_eq!(
            read(TextClass::Timestamp, Some(b"2024-02-14 19:04:04")),
            r#""2024-02-14T19:04:04Z""#
        );
        assert_eq!(read(TextClass::Timestamp, Some(b"0000-00-00 00:00:00")), r#""0000-00-00 00:00:00""#);
        assert_eq!(read(TextClass::Timestamp, Some(b"2024-00-15 00:00:00")), r#""2024-00-15 00:00:00""#);
        assert_eq!(read(TextClass::Timestamp, Some(b"2024-02-31 10:00:00")), r#""2024-02-31 10:00:00""#);
        assert_eq!(read(TextClass::Text, Some("é\"".as_bytes())), r#""é\"""#);
        assert_eq!(read(TextClass::Text, None), "null");
        assert!(write_value(TextClass::Text, Some(&[0xff]), &mut Vec::new()).is_err());
    }

    #[test]
    fn statements_stay_below_the_limit() {
        let map = MyTable {
            object: "contacts".into(),
            schema: "crm".into(),
            table: "contacts".into(),
            qualified: "`crm`.`contacts`".into(),
            id: "id".into(),
            modified: None,
            soft_delete: None,
            columns: ["id", "notes"]
                .iter()
                .map(|n| MyColumn {
                    name: n.to_string(),
                    declared: "text".into(),
                    class: TextClass::Text,
                    not_null: false,
                    primary_key: *n == "id",
                    generated: false,
                })
                .collect(),
            foreign_keys: Vec::new(),
            other_unique: false,
        };
        let records: Vec<Record> = (0..100)
            .map(|i| {
                let mut fields = crate::record::Fields::new();
                fields.insert("id".into(), json!(i.to_string()));
                fields.insert("notes".into(), json!("x".repeat(100)));
                Record::from_fields(&Arc::from("contacts"), fields, "id", None).unwrap()
            })
            .collect();
        let limits = |statement| Limits {
            statement,
            packet: 1 << 20,
        };
        let statements = insert_statements("c", &map, &records, false, limits(2000)).unwrap();
        assert!(statements.len() > 5);
        assert!(
            statements
                .iter()
                .all(|s| s.len() <= 2000 && s.ends_with("`notes` = VALUES(`notes`)"))
        );
        let rows: usize = statements.iter().map(|s| s.matches("),(").count() + 1).sum();
        assert_eq!(rows, 100);
        let inserts = insert_statements("c", &map, &records, true, limits(1 << 20)).unwrap();
        assert_eq!(inserts.len(), 1);
        assert!(!inserts[0].contains("DUPLICATE"));
        // A row longer than the server's packet is refused, naming the record.
        let tiny = Limits {
            statement: 100,
            packet: 150,
        };
        let e = insert_statements("c", &map, &records, false, tiny).unwrap_err();
        assert_eq!(e.record.as_deref(), Some("0"));
        assert!(e.message.contains("max_allowed_packet"), "{}", e.message);
    }
}
