//! `postgres`: one table per object (`table`, optional `schema`, `id`, `modified`, `soft_delete`)
//! on a PostgreSQL server, through sqlx.
//!
//! Reads stream `COPY (SELECT …) TO STDOUT` in the text format, in block ranges of the table
//! (`ctid` ranges, one connection each) parsed on blocking threads, and write each row's chunk
//! line straight from the server's text (see [`super::sql_text`]). Records the table does not
//! hold at all (a restore into an empty table) are one `COPY` into it per batch. Other writes load a batch with
//! `COPY` into a temporary table and move it with one `INSERT … ON CONFLICT (id) DO UPDATE`, all
//! in one transaction; deletes are one `DELETE … WHERE id = ANY(…)` per batch. Every session of
//! the tool sets UTC, ISO dates, hex bytea and `default_transaction_read_only = off`, so a
//! database frozen read-only (see [`super::postgres_freeze`]) still takes the tool's writes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::{AssertSqlSafe, Row};

use super::sql_text::{self, TextClass};
pub use super::sqlite::quote;
use super::sqlite::scan_parts;
use super::sqlite_encode::RowEncoder;
use super::{ApplyMode, ApplyOutcome, Capabilities, Connector, ConnectorError, EncodedPage, EncodedPages, PAGE_SIZE, RecordPages};
use crate::playbook::model::FreezeSpec;
use crate::playbook::{ConnectorConfig, ConnectorKind};
use crate::record::{Record, format_time};

/// The `application_name` of the tool's sessions (a read-only freeze ends every other session).
pub const APPLICATION: &str = "rollback";

/// One column of a mapped table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PgColumn {
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
pub struct PgTable {
    pub object: Arc<str>,
    pub schema: String,
    pub table: String,
    /// `"schema"."table"`.
    pub qualified: String,
    pub id: String,
    /// The id column's type, for casting ids.
    pub id_type: String,
    pub modified: Option<String>,
    pub soft_delete: Option<String>,
    pub columns: Vec<PgColumn>,
    pub foreign_keys: Vec<Value>,
}

impl PgTable {
    /// The select list of a read: arrays as JSON, everything else as the server prints it.
    fn select_list(&self) -> String {
        let list: Vec<String> = self
            .columns
            .iter()
            .map(|c| match c.class {
                TextClass::Array => format!("to_json({})", quote(&c.name)),
                _ => quote(&c.name),
            })
            .collect();
        list.join(", ")
    }

    /// The columns a write sets (generated ones are computed by the server).
    pub fn written(&self) -> impl Iterator<Item = &PgColumn> {
        self.columns.iter().filter(|c| !c.generated)
    }

    fn encoder(&self) -> Option<RowEncoder> {
        let names = self.columns.iter().map(|c| c.name.clone()).collect();
        RowEncoder::for_columns(&self.object, names, &self.id, self.modified.as_deref())
    }
}

/// `'text'` with embedded quotes doubled.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub(crate) fn pg_error(connector: &str, e: sqlx::Error) -> ConnectorError {
    let retryable = matches!(&e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut)
        || matches!(&e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01" | "55P03" | "57P01")));
    let hint = match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("42501") => {
            Some("the connector's role lacks a privilege this step needs; grant it, or connect as the table owner")
        }
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23503") => {
            Some("a foreign key is missing its parent: restore the parent object too, or set `order:` on the step")
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => Some("is the server up and the `url` (host, port, TLS options) right?"),
        _ => None,
    };
    let error = ConnectorError::new(connector, e.to_string()).retryable(retryable);
    match hint {
        Some(h) => error.hint(h),
        None => error,
    }
}

pub struct PostgresConnector {
    name: String,
    pool: PgPool,
    /// Options of a plain session (no overrides), for write probes that must see what users see.
    plain: PgConnectOptions,
    database: String,
    tables: BTreeMap<String, Arc<PgTable>>,
    freeze: Option<FreezeSpec>,
    /// Transaction ids the tool's own writes took (see [`Connector::outside_writes_mark`]).
    own_xids: std::sync::atomic::AtomicI64,
    /// A write whose transaction id could not be told: no mark can be trusted any more.
    xids_unknown: std::sync::atomic::AtomicBool,
}

/// The connection options of `config`: its `url` (secrets resolved) and `tls` keys.
fn connect_options(config: &ConnectorConfig) -> Result<PgConnectOptions, ConnectorError> {
    let name = config.name.as_str();
    let raw = crate::playbook::secret::Secret(config.spec.url.clone().unwrap_or_default());
    let url = raw
        .resolve(&config.base_dir)
        .map_err(|e| ConnectorError::new(name, e.to_string()).bad_input())?;
    let mut options: PgConnectOptions = url.parse().map_err(|_| {
        ConnectorError::new(name, format!("`url` of connector `{name}` is not a PostgreSQL URL"))
            .hint("write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE (a secret belongs in ${env:NAME})")
            .bad_input()
    })?;
    for (key, value) in config.spec.tls.iter().flatten() {
        options = match key.as_str() {
            "mode" => options.ssl_mode(value.parse::<PgSslMode>().map_err(|_| {
                ConnectorError::new(name, format!("`tls.mode` `{value}` is not a PostgreSQL SSL mode"))
                    .hint("use disable, allow, prefer, require, verify-ca or verify-full")
                    .bad_input()
            })?),
            "root_cert" | "ca" => options.ssl_root_cert(config.base_dir.join(value)),
            "client_cert" | "cert" => options.ssl_client_cert(config.base_dir.join(value)),
            "client_key" | "key" => options.ssl_client_key(config.base_dir.join(value)),
            other => {
                return Err(ConnectorError::new(name, format!("unknown `tls` key `{other}`"))
                    .hint("postgres takes tls keys mode, root_cert, client_cert, client_key")
                    .bad_input());
            }
        };
    }
    Ok(options)
}

/// The type class of a column from its catalog type name and category.
fn class_of(typname: &str, category: &str) -> TextClass {
    match (typname, category) {
        (_, "A") => TextClass::Array,
        ("int2" | "int4" | "int8" | "oid", _) => TextClass::Integer,
        ("numeric", _) => TextClass::Decimal,
        ("float4" | "float8", _) => TextClass::Real,
        ("bool", _) => TextClass::Boolean,
        ("timestamp" | "timestamptz", _) => TextClass::Timestamp,
        ("json" | "jsonb", _) => TextClass::Json,
        ("bytea", _) => TextClass::Binary,
        _ => TextClass::Text,
    }
}

impl PostgresConnector {
    /// Connects and reads the mapped tables' columns and keys.
    pub async fn open(config: &ConnectorConfig) -> Result<Self, ConnectorError> {
        let name = config.name.as_str();
        let plain = connect_options(config)?.application_name(APPLICATION);
        let options = plain.clone().options([
            ("TimeZone", "UTC"),
            ("DateStyle", "ISO"),
            ("IntervalStyle", "postgres"),
            ("bytea_output", "hex"),
            ("extra_float_digits", "1"),
            ("default_transaction_read_only", if config.read_only { "on" } else { "off" }),
        ]);
        let first = super::first_connection(
            name,
            <sqlx::postgres::PgConnection as sqlx::Connection>::connect_with(&options),
            pg_error,
        )
        .await?;
        let _ = sqlx::Connection::close(first).await;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| pg_error(name, e))?;
        let database: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&pool)
            .await
            .map_err(|e| pg_error(name, e))?;
        let mut tables = BTreeMap::new();
        for (object, mapping) in &config.objects {
            let table = mapping.table.clone().unwrap_or_else(|| object.clone());
            let schema = mapping.schema.clone().unwrap_or_else(|| "public".into());
            let map = read_table(name, &pool, object, &schema, &table, mapping).await?;
            tables.insert(object.clone(), Arc::new(map));
        }
        Ok(PostgresConnector {
            name: name.into(),
            pool,
            plain,
            database,
            tables,
            freeze: config.spec.freeze.clone(),
            own_xids: Default::default(),
            xids_unknown: Default::default(),
        })
    }

    fn table(&self, object: &str) -> Result<&Arc<PgTable>, ConnectorError> {
        self.tables
            .get(object)
            .ok_or_else(|| ConnectorError::new(&self.name, "object is not mapped").object(object))
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn name_str(&self) -> &str {
        &self.name
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    pub fn plain_options(&self) -> &PgConnectOptions {
        &self.plain
    }

    pub fn freeze_spec(&self) -> Option<&FreezeSpec> {
        self.freeze.as_ref()
    }

    pub fn mapped(&self) -> impl Iterator<Item = &Arc<PgTable>> {
        self.tables.values()
    }

    /// Streams the rows of `object` (modified at or after `since`) as pages, in block ranges
    /// read at once; with `lines` false the pages carry only ids and hashes.
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
                conditions.push(format!("{} >= {}", quote(m), literal(&format_time(&t))));
            }
            if let Some(ids) = &only {
                let list: Vec<String> = ids.iter().map(|id| literal(id)).collect();
                conditions.push(format!(
                    "{} = ANY(CAST(ARRAY[{}]::text[] AS {}[]))",
                    quote(&map.id),
                    list.join(","),
                    map.id_type
                ));
            }
            let ranges = if only.is_some() {
                vec![String::new()]
            } else {
                match block_ranges(&pool, &map, scan_parts()).await {
                    Ok(ranges) => ranges,
                    Err(e) => return drop(tx.send(Err(pg_error(&name, e).object(&map.object))).await),
                }
            };
            let scans: Vec<_> = ranges
                .into_iter()
                .map(|range| {
                    let mut all = conditions.clone();
                    if !range.is_empty() {
                        all.push(range);
                    }
                    let filter = if all.is_empty() {
                        String::new()
                    } else {
                        format!(" WHERE {}", all.join(" AND "))
                    };
                    let sql = format!("COPY (SELECT {} FROM {}{filter}) TO STDOUT", map.select_list(), map.qualified);
                    tokio::spawn(copy_out(name.clone(), pool.clone(), map.clone(), sql, lines, tx.clone()))
                })
                .collect();
            for scan in scans {
                let _ = scan.await;
            }
        });
        super::pages_from_channel(rx)
    }
}

/// `ctid` conditions that split the table's blocks into `parts` ranges; the last one is open, so
/// rows in blocks added meanwhile are read too. One range (no condition) for small tables.
async fn block_ranges(pool: &PgPool, map: &PgTable, parts: usize) -> Result<Vec<String>, sqlx::Error> {
    let blocks: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT (pg_relation_size({}) / current_setting('block_size')::bigint)::bigint",
        literal(&map.qualified)
    )))
    .fetch_one(pool)
    .await?;
    if blocks < 64 || parts < 2 {
        return Ok(vec![String::new()]);
    }
    let step = blocks / parts as i64;
    Ok((0..parts as i64)
        .map(|i| {
            let from = format!("ctid >= '({},0)'::tid", i * step);
            if i + 1 == parts as i64 {
                from
            } else {
                format!("{from} AND ctid < '({},0)'::tid", (i + 1) * step)
            }
        })
        .collect())
}

/// Runs one `COPY … TO STDOUT` and sends its rows as pages: the bytes arrive here, the rows are
/// encoded on a blocking thread.
async fn copy_out(
    name: String,
    pool: PgPool,
    map: Arc<PgTable>,
    sql: String,
    lines: bool,
    tx: tokio::sync::mpsc::Sender<Result<EncodedPage, ConnectorError>>,
) {
    use sqlx::postgres::PgPoolCopyExt;
    let fail = |e: ConnectorError| {
        let tx = tx.clone();
        let object = map.object.clone();
        async move {
            let _ = tx.send(Err(e.object(&object))).await;
        }
    };
    let mut stream = match pool.copy_out_raw(&sql).await {
        Ok(stream) => stream,
        Err(e) => return fail(pg_error(&name, e)).await,
    };
    let (bytes_tx, bytes_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    // Blocks the encoder is done with come back to be filled again (fresh memory costs faults).
    let (spare_tx, mut spare_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let encoder = {
        let (name, map, tx) = (name.clone(), map.clone(), tx.clone());
        tokio::task::spawn_blocking(move || encode_copy(&name, &map, lines, bytes_rx, spare_tx, &tx))
    };
    // The server sends one message per row: they travel to the encoder in blocks, not one by one.
    const BLOCK: usize = 256 * 1024;
    let mut next_block = move || spare_rx.try_recv().unwrap_or_else(|_| Vec::with_capacity(BLOCK + 4096));
    let mut block = next_block();
    let mut failed = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                block.extend_from_slice(&chunk);
                if block.len() >= BLOCK && bytes_tx.send(std::mem::replace(&mut block, next_block())).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if failed.is_none() && !block.is_empty() {
        let _ = bytes_tx.send(block).await;
    }
    drop(bytes_tx);
    let _ = encoder.await;
    if let Some(e) = failed {
        fail(pg_error(&name, e)).await;
    }
}

/// Turns `COPY` text bytes into pages of chunk lines (see [`copy_out`]).
fn encode_copy(
    name: &str,
    map: &PgTable,
    lines: bool,
    mut bytes: tokio::sync::mpsc::Receiver<Vec<u8>>,
    spare: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
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
    let mut carry: Vec<u8> = Vec::new();
    let mut page = EncodedPage::default();
    let mut row = |line: &[u8], page: &mut EncodedPage| -> Result<(), ConnectorError> {
        let err = |m: String| {
            ConnectorError::new(name, format!("row of table `{}`: {m}", map.table))
                .object(&map.object)
                .hint("fix the row in the database, or map the object to another table")
        };
        let mut fields: Vec<Option<Cow<str>>> = Vec::with_capacity(classes.len());
        sql_text::copy_fields(line, &mut fields).map_err(err)?;
        if fields.len() != classes.len() {
            return Err(err(format!("{} values for {} columns", fields.len(), classes.len())));
        }
        let deleted = deleted_at.is_some_and(|i| flag_set(fields[i].as_deref()));
        encoder
            .encode_with(page, deleted, |i, out| {
                sql_text::write_value(classes[i], fields[i].as_deref(), out).map_err(|m| format!("column `{}`: {m}", map.columns[i].name))
            })
            .map_err(err)
    };
    // Pages are made as large as the last one was, so they never grow (and are never copied).
    let next_page = |last: &EncodedPage| EncodedPage::with_capacity(PAGE_SIZE + 1, last.lines.len() + last.lines.len() / 8);
    while let Some(mut chunk) = bytes.blocking_recv() {
        let mut data: &[u8] = &chunk;
        if !carry.is_empty() {
            let Some(end) = memchr::memchr(b'\n', data) else {
                carry.extend_from_slice(data);
                chunk.clear();
                let _ = spare.send(chunk);
                continue;
            };
            carry.extend_from_slice(&data[..end]);
            let line = std::mem::take(&mut carry);
            if let Err(e) = row(&line, &mut page) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            data = &data[end + 1..];
        }
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', data) {
            if let Err(e) = row(&data[start..end], &mut page) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
            start = end + 1;
            if page.len() >= PAGE_SIZE {
                let next = next_page(&page);
                if tx.blocking_send(Ok(std::mem::replace(&mut page, next))).is_err() {
                    return;
                }
            }
        }
        carry.extend_from_slice(&data[start..]);
        chunk.clear();
        let _ = spare.send(chunk);
    }
    if !page.is_empty() {
        let _ = tx.blocking_send(Ok(page));
    }
}

/// A soft-delete column's value marks the row deleted: true, a non-zero number, `yes`.
pub(crate) fn flag_set(value: Option<&str>) -> bool {
    match value {
        None => false,
        Some(v) => !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "f" | "false" | "0" | "n" | "no" | "off"
        ),
    }
}

/// Reads one mapped table's columns, key and foreign keys.
async fn read_table(
    name: &str,
    pool: &PgPool,
    object: &str,
    schema: &str,
    table: &str,
    mapping: &crate::playbook::model::ObjectMapping,
) -> Result<PgTable, ConnectorError> {
    let qualified = format!("{}.{}", quote(schema), quote(table));
    let err = |e: sqlx::Error| pg_error(name, e).object(object);
    let oid: Option<i64> = sqlx::query_scalar("SELECT to_regclass($1)::oid::bigint")
        .bind(&qualified)
        .fetch_one(pool)
        .await
        .map_err(err)?;
    let Some(oid) = oid else {
        return Err(ConnectorError::new(name, format!("table `{schema}.{table}` does not exist"))
            .object(object)
            .hint("set `table:` (and `schema:`) on the object to the real table name"));
    };
    let rows = sqlx::query(
        "SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS declared, t.typname::text AS typname, \
         t.typcategory::text AS category, a.attnotnull AS not_null, a.attgenerated::text <> '' AS generated, \
         COALESCE(a.attnum = ANY(i.indkey), false) AS pk \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
         WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    )
    .bind(oid)
    .fetch_all(pool)
    .await
    .map_err(err)?;
    let columns: Vec<PgColumn> = rows
        .iter()
        .map(|r| {
            let typname: String = r.get("typname");
            let category: String = r.get("category");
            PgColumn {
                name: r.get("name"),
                declared: r.get("declared"),
                class: class_of(&typname, &category),
                not_null: r.get("not_null"),
                primary_key: r.get("pk"),
                generated: r.get("generated"),
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
    let mut id_type = String::new();
    for (key, column) in [
        ("id", Some(&id)),
        ("modified", mapping.modified.as_ref()),
        ("soft_delete", mapping.soft_delete.as_ref()),
    ] {
        let Some(column) = column else { continue };
        match columns.iter().find(|c| &c.name == column) {
            Some(c) if key == "id" => id_type = c.declared.clone(),
            Some(_) => {}
            None => {
                return Err(
                    ConnectorError::new(name, format!("table `{schema}.{table}` has no column `{column}` (its `{key}`)"))
                        .object(object)
                        .hint(crate::playbook::diagnostic::suggest(column, "column", names.iter().copied())),
                );
            }
        }
    }
    // ON CONFLICT needs a unique index on exactly the id column.
    let unique: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
         WHERE i.indrelid = $1::oid AND i.indisunique AND i.indnatts = 1 AND i.indpred IS NULL AND a.attname = $2)",
    )
    .bind(oid)
    .bind(&id)
    .fetch_one(pool)
    .await
    .map_err(err)?;
    if !unique {
        return Err(ConnectorError::new(
            name,
            format!("column `{id}` of table `{schema}.{table}` is not the primary key or unique"),
        )
        .object(object)
        .hint("set `id:` on the object to the table's primary-key column (restores match records on it)"));
    }
    let keys = sqlx::query(
        "SELECT (SELECT string_agg(a.attname::text, ',' ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY k(num, n) \
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num) AS columns, \
         p.relname::text AS parent, pn.nspname::text AS parent_schema, \
         (SELECT string_agg(a.attname::text, ',' ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY k(num, n) \
           JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num) AS parent_columns \
         FROM pg_constraint c JOIN pg_class p ON p.oid = c.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace \
         WHERE c.conrelid = $1::oid AND c.contype = 'f'",
    )
    .bind(oid)
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
    Ok(PgTable {
        object: object.into(),
        schema: schema.into(),
        table: table.into(),
        qualified,
        id,
        id_type,
        modified: mapping.modified.clone(),
        soft_delete: mapping.soft_delete.clone(),
        columns,
        foreign_keys,
    })
}

/// One batch of rows in `COPY` text form, from chunk lines or records.
fn copy_rows(name: &str, map: &PgTable, records: &[Record]) -> Result<Vec<u8>, ConnectorError> {
    let mut out = Vec::with_capacity(records.len() * 300);
    for record in records {
        for (i, column) in map.written().enumerate() {
            if i > 0 {
                out.push(b'\t');
            }
            let value = record.fields.get(&column.name).unwrap_or(&Value::Null);
            let text = sql_text::value_text(column.class, value).map_err(|m| {
                ConnectorError::new(name, format!("column `{}`: {m}", column.name))
                    .object(&map.object)
                    .record(&record.id)
            })?;
            sql_text::copy_field(&mut out, text.as_deref());
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// `COPY` rows in blocks, made while the server reads the blocks before.
struct CopyBlocks {
    blocks: tokio::sync::mpsc::Receiver<Vec<u8>>,
    /// The records converted, or why the conversion stopped.
    built: tokio::task::JoinHandle<Result<u64, ConnectorError>>,
}

/// Lines per block of a streamed batch.
const COPY_BLOCK_LINES: usize = 1000;

impl CopyBlocks {
    /// The rows of a batch of chunk lines, converted on a blocking thread a block at a time.
    fn of_lines(name: &str, map: &Arc<PgTable>, lines: &[u8]) -> CopyBlocks {
        let (tx, blocks) = tokio::sync::mpsc::channel(2);
        let (name, map, lines) = (name.to_string(), map.clone(), lines.to_vec());
        let built = tokio::task::spawn_blocking(move || {
            let (mut start, mut first_line, mut records) = (0, 1, 0u64);
            while start < lines.len() {
                let end = memchr::memchr_iter(b'\n', &lines[start..])
                    .nth(COPY_BLOCK_LINES - 1)
                    .map_or(lines.len(), |n| start + n + 1);
                let decoded = crate::store::chunk::decode_lines(&lines[start..end], &map.object).map_err(|e| {
                    ConnectorError::new(
                        &name,
                        format!("unreadable snapshot line {}: {}", first_line + e.line - 1, e.message),
                    )
                    .object(&map.object)
                    .hint("run `rollback verify --read-data` on the snapshot")
                })?;
                records += decoded.len() as u64;
                first_line += decoded.len();
                if tx.blocking_send(copy_rows(&name, &map, &decoded)?).is_err() {
                    // The write failed and says why.
                    break;
                }
                start = end;
            }
            Ok(records)
        });
        CopyBlocks { blocks, built }
    }

    /// The rows of records already decoded, as one block.
    fn of_records(name: &str, map: &PgTable, records: &[Record]) -> Result<CopyBlocks, ConnectorError> {
        let (tx, blocks) = tokio::sync::mpsc::channel(1);
        let _ = tx.try_send(copy_rows(name, map, records)?);
        let n = records.len() as u64;
        Ok(CopyBlocks {
            blocks,
            built: tokio::spawn(async move { Ok(n) }),
        })
    }

    /// Sends every block into `copy`; a failed conversion aborts the `COPY` (and so its
    /// transaction). Returns the rows the server took.
    async fn send<C>(mut self, connector: &str, mut copy: sqlx::postgres::PgCopyIn<C>) -> Result<u64, ConnectorError>
    where
        C: std::ops::DerefMut<Target = sqlx::postgres::PgConnection>,
    {
        let mut sent = Ok(());
        while let Some(block) = self.blocks.recv().await {
            if let Err(e) = copy.send(block).await {
                sent = Err(e);
                break;
            }
        }
        drop(self.blocks);
        let built = self
            .built
            .await
            .map_err(|e| ConnectorError::new(connector, e.to_string()))
            .and_then(|r| r);
        match (sent, built) {
            (Ok(()), Ok(_)) => copy.finish().await.map_err(|e| pg_error(connector, e)),
            (Err(e), _) => {
                let _ = copy.abort("the write failed").await;
                Err(pg_error(connector, e))
            }
            (Ok(()), Err(e)) => {
                let _ = copy.abort("a snapshot line could not be converted").await;
                Err(e)
            }
        }
    }
}

impl PostgresConnector {
    /// Counts the transaction id of the tool's transaction `tx`, if it took one, before it ends
    /// (committed or not, a transaction id is used up).
    async fn count_own_xid(&self, tx: &mut sqlx::PgConnection) {
        use std::sync::atomic::Ordering::SeqCst;
        match sqlx::query_scalar::<_, bool>("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
            .fetch_one(tx)
            .await
        {
            Ok(true) => {
                self.own_xids.fetch_add(1, SeqCst);
            }
            Ok(false) => {}
            Err(_) => self.xids_unknown.store(true, SeqCst),
        }
    }

    /// Writes a batch of chunk lines: inserted when the table holds none of them, else upserted.
    async fn write_lines(&self, object: &str, lines: &[u8], insert: bool) -> Result<ApplyOutcome, ConnectorError> {
        let map = self.table(object)?.clone();
        let rows = CopyBlocks::of_lines(&self.name, &map, lines);
        let written = if insert {
            self.insert(&map, rows).await?
        } else {
            self.upsert(&map, rows).await?
        };
        Ok(ApplyOutcome {
            written,
            id_map: Vec::new(),
        })
    }

    /// Inserts one batch of records the table does not hold with one `COPY` into it, in one
    /// transaction; a record it holds after all fails the batch (a unique violation).
    async fn insert(&self, map: &PgTable, rows: CopyBlocks) -> Result<u64, ConnectorError> {
        let err = |e: sqlx::Error| pg_error(&self.name, e).object(&map.object);
        let list: Vec<String> = map.written().map(|c| quote(&c.name)).collect();
        let mut tx = self.pool.begin().await.map_err(err)?;
        let copy = tx
            .copy_in_raw(&format!("COPY {} ({}) FROM STDIN", map.qualified, list.join(", ")))
            .await
            .map_err(err)?;
        let written = rows.send(&self.name, copy).await.map_err(|e| e.object(&map.object))?;
        self.count_own_xid(&mut tx).await;
        tx.commit().await.map_err(err)?;
        Ok(written)
    }

    /// Upserts one batch in one transaction: `COPY` into a temporary table, then one
    /// `INSERT … ON CONFLICT DO UPDATE`.
    async fn upsert(&self, map: &PgTable, rows: CopyBlocks) -> Result<u64, ConnectorError> {
        let name = self.name.as_str();
        let err = |e: sqlx::Error| pg_error(name, e).object(&map.object);
        let columns: Vec<String> = map.written().map(|c| quote(&c.name)).collect();
        let list = columns.join(", ");
        let load = quote(&format!("_rollback_load_{}", map.table));
        let mut tx = self.pool.begin().await.map_err(err)?;
        let create = format!(
            "CREATE TEMP TABLE IF NOT EXISTS {load} ON COMMIT DELETE ROWS AS SELECT {list} FROM {} WITH NO DATA",
            map.qualified
        );
        sqlx::query(AssertSqlSafe(create)).execute(&mut *tx).await.map_err(err)?;
        let copy = tx.copy_in_raw(&format!("COPY {load} ({list}) FROM STDIN")).await.map_err(err)?;
        if rows.send(name, copy).await.map_err(|e| e.object(&map.object))? == 0 {
            return Ok(0);
        }
        let updates: Vec<String> = map
            .written()
            .filter(|c| c.name != map.id)
            .map(|c| format!("{0} = EXCLUDED.{0}", quote(&c.name)))
            .collect();
        let action = if updates.is_empty() {
            "NOTHING".to_string()
        } else {
            format!("UPDATE SET {}", updates.join(", "))
        };
        let upsert = format!(
            "INSERT INTO {} ({list}) OVERRIDING SYSTEM VALUE SELECT {list} FROM {load} ON CONFLICT ({}) DO {action}",
            map.qualified,
            quote(&map.id)
        );
        let done = sqlx::query(AssertSqlSafe(upsert)).execute(&mut *tx).await.map_err(err)?;
        self.count_own_xid(&mut tx).await;
        tx.commit().await.map_err(err)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl Connector for PostgresConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Postgres
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
            .map_err(|e| pg_error(&self.name, e))
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
        Ok(json!({"type": "postgres", "database": self.database, "objects": objects}))
    }

    async fn count(&self, object: &str) -> Result<u64, ConnectorError> {
        let map = self.table(object)?;
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {}", map.qualified)))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| pg_error(&self.name, e).object(object))?;
        Ok(n as u64)
    }

    async fn estimated_count(&self, object: &str) -> Option<u64> {
        let map = self.table(object).ok()?;
        // The planner's estimate when the table was analyzed, else an exact count.
        let estimate: Option<f32> = sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)")
            .bind(&map.qualified)
            .fetch_one(&self.pool)
            .await
            .ok()?;
        match estimate {
            Some(n) if n >= 0.0 => Some(n as u64),
            _ => self.count(object).await.ok(),
        }
    }

    async fn newest_modified(&self, object: &str) -> Option<DateTime<Utc>> {
        let map = self.table(object).ok()?;
        let column = map.modified.as_ref()?;
        let sql = format!("SELECT max({})::text FROM {}", quote(column), map.qualified);
        let text: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_one(&self.pool).await.ok()?;
        text.as_deref().and_then(crate::record::parse_time)
    }

    /// The cluster's transaction counter (one past the newest finished transaction id) less
    /// the ids the tool's own writes took: every write from outside takes one, so an equal mark
    /// proves there was none in between. Only when no transaction is in progress: one that took
    /// its id before the mark and commits after it would move nothing. (Writes in other
    /// databases of the cluster change it too, which only costs a full comparison.)
    async fn outside_writes_mark(&self) -> Option<i64> {
        use std::sync::atomic::Ordering::SeqCst;
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT CASE WHEN pg_snapshot_xmin(s) = pg_snapshot_xmax(s) THEN pg_snapshot_xmax(s)::text::bigint END \
             FROM pg_current_snapshot() AS s",
        )
        .fetch_one(&self.pool)
        .await
        .ok()?;
        let next = next?;
        if self.xids_unknown.load(SeqCst) {
            return None;
        }
        Some(next - self.own_xids.load(SeqCst))
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
        let written = self.upsert(&map, CopyBlocks::of_records(&self.name, &map, batch)?).await?;
        Ok(ApplyOutcome {
            written,
            id_map: Vec::new(),
        })
    }

    async fn apply_lines(&self, object: &str, lines: &[u8]) -> Result<ApplyOutcome, ConnectorError> {
        self.write_lines(object, lines, false).await
    }

    async fn insert_lines(&self, object: &str, lines: &[u8]) -> Result<ApplyOutcome, ConnectorError> {
        self.write_lines(object, lines, true).await
    }

    async fn delete(&self, object: &str, ids: &[String]) -> Result<u64, ConnectorError> {
        let map = self.table(object)?;
        let sql = format!(
            "DELETE FROM {} WHERE {} = ANY(CAST($1::text[] AS {}[]))",
            map.qualified,
            quote(&map.id),
            map.id_type
        );
        let err = |e: sqlx::Error| pg_error(&self.name, e).object(object);
        let mut tx = self.pool.begin().await.map_err(err)?;
        let done = sqlx::query(AssertSqlSafe(sql)).bind(ids).execute(&mut *tx).await.map_err(err)?;
        self.count_own_xid(&mut tx).await;
        tx.commit().await.map_err(err)?;
        Ok(done.rows_affected())
    }

    async fn freeze(&self, run_id: &str, message: &str) -> Result<Value, ConnectorError> {
        super::postgres_freeze::freeze(self, run_id, message).await
    }

    async fn unfreeze(&self, receipt: &Value) -> Result<(), ConnectorError> {
        super::postgres_freeze::unfreeze(self, receipt).await
    }

    async fn write_probe(&self) -> Result<bool, ConnectorError> {
        super::postgres_freeze::write_probe(self).await
    }

    async fn privileges(&self, need: &str) -> Option<Result<String, String>> {
        Some(super::postgres_freeze::privileges(self, need).await)
    }
}
