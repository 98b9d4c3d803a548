//! `sqlite`: one table per object, through sqlx. Every column becomes a field, normalised by its
//! declared type (see [`super::values`]); `id` names the key column and `modified` the column
//! that tells when a row last changed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row};

use super::sqlite_native::{Native, PageSender, Rows, split_ranges};
use super::values::{self, ColumnClass, SqlValue};
use super::{ApplyMode, ApplyOutcome, Capabilities, Connector, ConnectorError, EncodedPages, PAGE_SIZE, RecordPages};
use crate::playbook::{ConnectorConfig, ConnectorKind};
use crate::record::{Fields, Record, format_time};

/// Turns one page of rows (their `json_array` texts, one per line) into a page.
type Decoder<P> = Box<dyn FnMut(&str, &Reals) -> Result<P, String> + Send>;

/// One column of a mapped table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub declared: String,
    pub class: ColumnClass,
    pub not_null: bool,
    pub primary_key: bool,
}

/// How one object maps onto its table, as found in the database.
#[derive(Clone, Debug)]
pub struct TableMap {
    pub object: Arc<str>,
    pub table: String,
    pub id: String,
    pub modified: Option<String>,
    pub columns: Vec<Column>,
    /// The column that is the table's rowid (`INTEGER PRIMARY KEY`), if any.
    pub rowid_alias: Option<String>,
    /// A foreign key of the table points at the table itself, so rows of one batch may refer to
    /// each other and deletes defer foreign-key checks to the commit.
    pub self_referencing: bool,
    /// The table's foreign keys, as upserts check them: once per batch, over the distinct keys
    /// the batch refers to, instead of SQLite checking every row as it goes in (which cost more
    /// than the insert itself).
    pub key_checks: Vec<KeyCheck>,
}

/// One foreign key of a table: its columns (indexes into the table's columns) and the query that
/// returns, from the JSON array `?1` of key values (each the column's value, or an array of the
/// columns' values for a key of several columns), those that no parent row holds.
#[derive(Clone, Debug)]
pub struct KeyCheck {
    pub columns: Vec<usize>,
    /// One column referring to the parent's rowid: integer values can be checked against the
    /// parent's rowids held in memory.
    pub to_rowid: bool,
    pub parent: String,
    pub missing_sql: String,
}

impl TableMap {
    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The class of the id column, which decides how an id binds.
    pub fn id_class(&self) -> ColumnClass {
        self.column(&self.id).map(|c| c.class).unwrap_or(ColumnClass::Any)
    }
}

pub struct SqliteConnector {
    name: String,
    path: PathBuf,
    pool: SqlitePool,
    /// Bulk reads and all writes (see [`super::sqlite_native`]).
    native: Native,
    tables: BTreeMap<String, Arc<TableMap>>,
}

/// `"name"` with embedded quotes doubled.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn sql_error(connector: &str, e: sqlx::Error) -> ConnectorError {
    let retryable = matches!(&e, sqlx::Error::Database(d) if d.message().contains("locked") || d.message().contains("busy"));
    ConnectorError::new(connector, e.to_string()).retryable(retryable)
}

impl SqliteConnector {
    /// Opens the database file (it must exist) and reads the mapped tables' columns.
    pub async fn open(config: &ConnectorConfig) -> Result<Self, ConnectorError> {
        let name = config.name.as_str();
        let (path, shown) = super::resolve_path(config)?;
        if !path.is_file() {
            return Err(ConnectorError::new(name, format!("database file `{shown}` does not exist"))
                .hint("check `path` (relative to the playbook's folder); `rollback init` creates sandbox databases"));
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(false)
            .read_only(config.read_only)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| sql_error(name, e).hint("is the file a SQLite database you may open?"))?;
        let mut tables = BTreeMap::new();
        for (object, mapping) in &config.objects {
            let table = mapping.table.clone().unwrap_or_else(|| object.clone());
            let rows = sqlx::query(AssertSqlSafe(format!("PRAGMA table_info({})", quote(&table))))
                .fetch_all(&pool)
                .await
                .map_err(|e| sql_error(name, e))?;
            if rows.is_empty() {
                return Err(ConnectorError::new(name, format!("table `{table}` does not exist in `{shown}`"))
                    .object(object)
                    .hint("set `table:` on the object to the real table name"));
            }
            let columns: Vec<Column> = rows
                .iter()
                .map(|r| {
                    let declared: String = r.get("type");
                    Column {
                        name: r.get("name"),
                        class: values::classify(&declared),
                        declared,
                        not_null: r.get::<i64, _>("notnull") != 0,
                        primary_key: r.get::<i64, _>("pk") != 0,
                    }
                })
                .collect();
            let id = mapping
                .id
                .clone()
                .or_else(|| columns.iter().find(|c| c.primary_key).map(|c| c.name.clone()))
                .unwrap_or_else(|| "id".into());
            let pk: Vec<&Column> = columns.iter().filter(|c| c.primary_key).collect();
            let rowid_alias = match pk.as_slice() {
                [one] if one.declared.eq_ignore_ascii_case("INTEGER") => Some(one.name.clone()),
                _ => None,
            };
            let fks = sqlx::query(AssertSqlSafe(format!("PRAGMA foreign_key_list({})", quote(&table))))
                .fetch_all(&pool)
                .await
                .map_err(|e| sql_error(name, e))?;
            let self_referencing = fks.iter().any(|r| r.get::<String, _>("table").eq_ignore_ascii_case(&table));
            // Foreign key id → (parent table, (column, parent column) pairs).
            type Keys = BTreeMap<i64, (String, Vec<(String, Option<String>)>)>;
            let mut keys = Keys::new();
            for r in &fks {
                let key = keys.entry(r.get("id")).or_insert_with(|| (r.get("table"), Vec::new()));
                key.1.push((r.get("from"), r.get("to")));
            }
            let mut foreign_keys = Vec::new();
            for (parent, columns) in keys.into_values() {
                let (parent_key, rowid) = primary_key(&pool, &parent).await.map_err(|e| sql_error(name, e))?;
                foreign_keys.push(ForeignKey::new(parent, columns, &parent_key, rowid));
            }
            let key_checks = foreign_keys.iter().filter_map(|key| key.check(&columns)).collect();
            let map = TableMap {
                key_checks,
                self_referencing,
                object: object.as_str().into(),
                table: table.clone(),
                id,
                modified: mapping.modified.clone(),
                columns,
                rowid_alias,
            };
            for column in std::iter::once(&map.id).chain(map.modified.as_ref()) {
                if map.column(column).is_none() {
                    let names: Vec<&str> = map.columns.iter().map(|c| c.name.as_str()).collect();
                    return Err(ConnectorError::new(name, format!("table `{table}` has no column `{column}`"))
                        .object(object)
                        .hint(crate::playbook::diagnostic::suggest(column, "column", names.iter().copied())));
                }
            }
            tables.insert(object.clone(), Arc::new(map));
        }
        Ok(SqliteConnector {
            name: name.into(),
            native: Native::new(name, &path, config.read_only),
            path,
            pool,
            tables,
        })
    }

    fn table(&self, object: &str) -> Result<&Arc<TableMap>, ConnectorError> {
        self.tables
            .get(object)
            .ok_or_else(|| ConnectorError::new(&self.name, "object is not mapped").object(object))
    }

    /// Scans `object` in parallel rowid ranges; each scan turns its pages of rows (`json_array`
    /// texts, one per line) into `P` with a decoder from `decoder`.
    fn scan_pages<P: Send + 'static>(
        &self,
        object: &str,
        since: Option<DateTime<Utc>>,
        decoder: impl Fn(Arc<TableMap>) -> Decoder<P> + Send + 'static,
    ) -> tokio::sync::mpsc::Receiver<Result<P, ConnectorError>> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let name = self.name.clone();
        let pool = self.pool.clone();
        let map = self.table(object).cloned();
        let parts = scan_parts();
        tokio::spawn(async move {
            let map = match map {
                Ok(map) => map,
                Err(e) => return drop(tx.send(Err(e)).await),
            };
            let mut filter = Vec::new();
            let mut binds = Vec::new();
            if let (Some(t), Some(m)) = (since, &map.modified) {
                filter.push(format!("julianday({}) >= julianday(?)", quote(m)));
                binds.push(SqlValue::Text(format_time(&t)));
            }
            let ranges = match rowid_ranges(&name, &pool, &map, parts).await {
                Ok(ranges) => ranges,
                Err(e) => return drop(tx.send(Err(e)).await),
            };
            let scans: Vec<_> = ranges
                .into_iter()
                .map(|range| {
                    let (name, pool, map, tx, filter, binds) =
                        (name.clone(), pool.clone(), map.clone(), tx.clone(), filter.clone(), binds.clone());
                    {
                        let mut decode = decoder(map.clone());
                        tokio::spawn(async move { scan(&name, &pool, &map, &filter, &binds, range, &mut *decode, &tx).await })
                    }
                })
                .collect();
            for handle in scans {
                let _ = handle.await;
            }
        });
        rx
    }

    /// The pages that `start` sends for `object`'s table (or the error that it is not mapped).
    fn native_pages(&self, object: &str, start: impl FnOnce(&Native, Arc<TableMap>, PageSender)) -> EncodedPages {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        match self.table(object) {
            Ok(map) => start(&self.native, map.clone(), tx),
            Err(e) => drop(tx.try_send(Err(e))),
        }
        super::pages_from_channel(rx)
    }

    /// The pool, for freeze triggers and probes.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub fn name_str(&self) -> &str {
        &self.name
    }

    /// The mapped tables.
    pub fn tables(&self) -> Vec<String> {
        self.tables.values().map(|t| t.table.clone()).collect()
    }
}

/// Parallel ranges per scan: one per core.
pub(crate) fn scan_parts() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

/// One foreign key: the parent table and `(child column, parent column)` pairs.
struct ForeignKey {
    parent: String,
    columns: Vec<(String, String)>,
    /// The key is one column that refers to the parent's rowid.
    to_rowid: bool,
}

impl ForeignKey {
    /// A key whose parent columns are not named refers to the parent's primary key (its rowid
    /// when it has none).
    fn new(parent: String, columns: Vec<(String, Option<String>)>, parent_key: &[String], rowid_key: bool) -> ForeignKey {
        let columns: Vec<(String, String)> = columns
            .into_iter()
            .enumerate()
            .map(|(i, (from, to))| {
                let to = to.unwrap_or_else(|| parent_key.get(i).cloned().unwrap_or_else(|| "rowid".into()));
                (from, to)
            })
            .collect();
        let to_rowid = matches!(columns.as_slice(), [(_, to)] if to == "rowid" || (rowid_key && parent_key.first() == Some(to)));
        ForeignKey { parent, columns, to_rowid }
    }

    /// The check of this key (see [`KeyCheck`]); `None` when a column is not in the table.
    fn check(&self, table: &[Column]) -> Option<KeyCheck> {
        let columns = self
            .columns
            .iter()
            .map(|(from, _)| table.iter().position(|c| &c.name == from))
            .collect::<Option<Vec<usize>>>()?;
        // A one-column key travels as a plain value, a longer one as an array of values.
        let matches: Vec<String> = match self.columns.as_slice() {
            [(_, to)] => vec![format!("p.{} = k.value", quote(to))],
            many => many
                .iter()
                .enumerate()
                .map(|(i, (_, to))| format!("p.{} = json_extract(k.value, '$[{i}]')", quote(to)))
                .collect(),
        };
        Some(KeyCheck {
            columns,
            to_rowid: self.to_rowid,
            parent: self.parent.clone(),
            missing_sql: format!(
                "SELECT k.value FROM json_each(?1) AS k WHERE NOT EXISTS (SELECT 1 FROM {} AS p WHERE {})",
                quote(&self.parent),
                matches.join(" AND ")
            ),
        })
    }
}

/// The primary-key columns of `table`, in key order, and whether the key is the table's rowid
/// (one `INTEGER PRIMARY KEY` column).
async fn primary_key(pool: &SqlitePool, table: &str) -> Result<(Vec<String>, bool), sqlx::Error> {
    let rows = sqlx::query(AssertSqlSafe(format!("PRAGMA table_info({})", quote(table))))
        .fetch_all(pool)
        .await?;
    let mut key: Vec<(i64, String, String)> = rows
        .iter()
        .map(|r| (r.get::<i64, _>("pk"), r.get::<String, _>("name"), r.get::<String, _>("type")))
        .filter(|(pk, _, _)| *pk > 0)
        .collect();
    key.sort();
    let rowid = matches!(key.as_slice(), [(_, _, declared)] if declared.eq_ignore_ascii_case("INTEGER"));
    Ok((key.into_iter().map(|(_, name, _)| name).collect(), rowid))
}

/// The expression that selects one column into the row's `json_array`, so that every value
/// arrives exactly. SQLite formats some doubles with wrong last digits (even at 17 significant
/// digits; its JSON keeps only 15), so reals travel as exact integers instead: a real `x` with
/// `1 <= |x| < 2^63` as `{"$s": [trunc(x), frac(x) * 2^52, 0]}`, one with `2^-60 <= |x| < 1`
/// scaled by `2^60` first and tagged `60` (scaling by powers of two, truncation and taking the
/// fraction are all exact), zeros as `{"$z": "0" | "-0"}`, and any other real as a placeholder
/// `{"$r": ROWID}` whose value the scan reads typed. Blobs travel as `{"$b": "<hex>"}`.
/// With `lean`, TEXT-affinity columns (which can never hold a REAL) go in unwrapped; a BLOB in
/// one makes SQLite refuse the page, and the scan retries it wrapped.
fn json_column(column: &Column, rowid_alias: bool, lean: bool) -> String {
    let c = quote(&column.name);
    if rowid_alias || (lean && text_affinity(&column.declared)) {
        return c;
    }
    format!(
        "CASE typeof({c}) WHEN 'real' THEN {} WHEN 'blob' THEN json_object('$b', hex({c})) ELSE {c} END",
        exact_real(&c)
    )
}

/// The exact form of the REAL `c` (see [`json_column`]).
fn exact_real(c: &str) -> String {
    let split = |y: &str, scale: u32| {
        format!(
            "json_object('$s', json_array(CAST({y} AS INTEGER), CAST(({y} - CAST({y} AS INTEGER)) * 4503599627370496 AS INTEGER), {scale}))"
        )
    };
    let scaled = format!("({c} * 1152921504606846976)");
    format!(
        "CASE WHEN {c} = 0 THEN json_object('$z', printf('%g', {c})) WHEN abs({c}) >= 1 AND abs({c}) < 9.2e18 THEN {} WHEN abs({c}) < 1 AND abs({c}) >= 8.7e-19 THEN {} ELSE json_object('$r', rowid) END",
        split(c, 0),
        split(&scaled, 60)
    )
}

/// `ip + fp / 2^52`, scaled down by `2^scale`: exact, as every step is.
fn real_from_parts(parts: &Value) -> Option<f64> {
    let [ip, fp, scale] = parts.as_array()?.as_slice() else {
        return None;
    };
    let (ip, fp, scale) = (ip.as_i64()?, fp.as_i64()?, scale.as_i64()?);
    let y = ip as f64 + fp as f64 * 2f64.powi(-52);
    Some(y * 2f64.powi(-(scale as i32)))
}

/// SQLite's TEXT affinity rule: the declared type contains CHAR, CLOB or TEXT (and not INT).
fn text_affinity(declared: &str) -> bool {
    let t = declared.to_ascii_uppercase();
    !t.contains("INT") && (t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT"))
}

/// The exact REAL values of a page: `(rowid, column index)` → value.
pub(crate) type Reals = std::collections::HashMap<(i64, usize), f64>;

/// Normalises one value of a row's `json_array` for column `index`.
pub(crate) fn decode_value(column: &Column, index: usize, value: Value, reals: &Reals) -> Result<Value, String> {
    Ok(match value {
        Value::Null => Value::Null,
        Value::Number(n) => match n.as_i64() {
            Some(i) => values::from_integer(column.class, i),
            None => values::from_real(column.class, n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => values::from_text(column.class, s),
        Value::Object(map) if map.contains_key("$s") => values::from_real(
            column.class,
            real_from_parts(&map["$s"]).ok_or_else(|| format!("bad real in column `{}`", column.name))?,
        ),
        Value::Object(map) if map.contains_key("$z") => values::from_real(column.class, if map["$z"] == "-0" { -0.0 } else { 0.0 }),
        Value::Object(map) => match (map.get("$r"), map.get("$b")) {
            (Some(r), _) => {
                let real = r.as_i64().and_then(|rowid| reals.get(&(rowid, index)));
                values::from_real(
                    column.class,
                    *real.ok_or_else(|| format!("the REAL in column `{}` changed while it was read", column.name))?,
                )
            }
            (_, Some(Value::String(b))) => values::from_bytes(&const_hex::decode(b).map_err(|_| "bad blob hex".to_string())?),
            _ => return Err(format!("unexpected value in column `{}`", column.name)),
        },
        other => values::from_text(column.class, other.to_string()),
    })
}

/// Reads one row (a `json_array` of its columns) into a record.
fn decode_row(map: &TableMap, text: &str, reals: &Reals) -> Result<Record, String> {
    let values: Vec<Value> = serde_json::from_str(text).map_err(|e| format!("cannot read a row: {e}"))?;
    if values.len() != map.columns.len() {
        return Err(format!("row has {} values for {} columns", values.len(), map.columns.len()));
    }
    let mut pairs = Vec::with_capacity(values.len());
    for (index, (column, value)) in map.columns.iter().zip(values).enumerate() {
        pairs.push((column.name.clone(), decode_value(column, index, value, reals)?));
    }
    // Sorted input lets the map build in one pass instead of one search per field.
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let fields: Fields = pairs.into_iter().collect();
    Record::from_fields(&map.object, fields, &map.id, map.modified.as_deref()).ok_or_else(|| format!("id column `{}` is empty", map.id))
}

/// Streams the rows matching `filter` (with `binds`) into pages on `tx`; false when it stopped
/// early. Rows with rowid in `range` are read a page at a time by keyset on rowid, each page one
/// result row (`group_concat` of the rows' `json_array`s), so rows cross no thread one by one.
#[allow(clippy::too_many_arguments)]
async fn scan<P: Send>(
    name: &str,
    pool: &SqlitePool,
    map: &TableMap,
    filter: &[String],
    binds: &[SqlValue],
    range: (i64, i64),
    decode: &mut (dyn FnMut(&str, &Reals) -> Result<P, String> + Send),
    tx: &tokio::sync::mpsc::Sender<Result<P, ConnectorError>>,
) -> bool {
    let mut conditions = vec!["rowid > ?".to_string(), "rowid <= ?".to_string()];
    conditions.extend(filter.iter().cloned());
    let sql = |lean: bool| {
        let columns: Vec<String> = map
            .columns
            .iter()
            .map(|c| json_column(c, map.rowid_alias.as_deref() == Some(c.name.as_str()), lean))
            .collect();
        format!(
            "SELECT max(r), count(*), group_concat(j, char(10)) FROM (SELECT rowid AS r, json_array({}) AS j FROM {} WHERE {} ORDER BY rowid LIMIT {PAGE_SIZE})",
            columns.join(", "),
            quote(&map.table),
            conditions.join(" AND ")
        )
    };
    let (lean_sql, wrapped_sql) = (sql(true), sql(false));
    let mut lean = true;
    // The typed read of a page's REALs: every column that can hold one.
    let real_columns: Vec<usize> = (0..map.columns.len())
        .filter(|&i| map.rowid_alias.as_deref() != Some(map.columns[i].name.as_str()) && !text_affinity(&map.columns[i].declared))
        .collect();
    let reals_sql = format!(
        "SELECT rowid, {} FROM {} WHERE rowid > ? AND rowid <= ? AND ({})",
        real_columns
            .iter()
            .map(|&i| format!("CASE typeof({0}) WHEN 'real' THEN {0} END", quote(&map.columns[i].name)))
            .collect::<Vec<_>>()
            .join(", "),
        quote(&map.table),
        real_columns
            .iter()
            .map(|&i| format!("typeof({}) = 'real'", quote(&map.columns[i].name)))
            .collect::<Vec<_>>()
            .join(" OR ")
    );
    // Once a page holds REALs, every page is read with its REALs in one transaction.
    let mut exact = false;
    let mut reals = Reals::new();
    let fail = |e: ConnectorError| async {
        let _ = tx.send(Err(e.object(&map.object))).await;
        false
    };
    let mut after = range.0 - 1;
    loop {
        let mut query = sqlx::query(AssertSqlSafe(if lean { lean_sql.clone() } else { wrapped_sql.clone() }))
            .bind(after)
            .bind(range.1);
        for b in binds {
            query = bind_value(query, b.clone());
        }
        let read = if exact {
            read_page_with_reals(pool, query, &reals_sql, after, &real_columns, &mut reals).await
        } else {
            query.fetch_one(pool).await
        };
        let row = match read {
            Ok(row) => row,
            Err(e) if lean && e.to_string().contains("BLOB") => {
                lean = false;
                continue;
            }
            Err(e) => return fail(sql_error(name, e)).await,
        };
        let (last, count, text): (Option<i64>, i64, Option<String>) = (row.get(0), row.get(1), row.get(2));
        let (Some(last), Some(text)) = (last, text) else { return true };
        if !exact && text.contains("{\"$r\":") {
            exact = true;
            continue;
        }
        match decode(&text, &reals) {
            Ok(page) => {
                if tx.send(Ok(page)).await.is_err() {
                    return false;
                }
            }
            Err(message) => return fail(ConnectorError::new(name, message)).await,
        }
        if count < PAGE_SIZE as i64 {
            return true;
        }
        after = last;
    }
}

/// Reads one page and the exact REALs of its rows in one read transaction (so both see the
/// same rows), filling `reals`.
async fn read_page_with_reals(
    pool: &SqlitePool,
    page: SqliteQuery<'_>,
    reals_sql: &str,
    after: i64,
    real_columns: &[usize],
    reals: &mut Reals,
) -> Result<sqlx::sqlite::SqliteRow, sqlx::Error> {
    use futures::TryStreamExt;
    reals.clear();
    let mut tx = pool.begin().await?;
    let row = page.fetch_one(&mut *tx).await?;
    if let Some(last) = row.get::<Option<i64>, _>(0) {
        let mut rows = sqlx::query(AssertSqlSafe(reals_sql.to_string()))
            .bind(after)
            .bind(last)
            .fetch(&mut *tx);
        while let Some(r) = rows.try_next().await? {
            let rowid: i64 = r.try_get(0)?;
            for (k, index) in real_columns.iter().enumerate() {
                if let Some(value) = r.try_get::<Option<f64>, _>(k + 1)? {
                    reals.insert((rowid, *index), value);
                }
            }
        }
    }
    tx.commit().await?;
    Ok(row)
}

/// The smallest and largest rowid of `table` (NULLs when empty), as two B-tree seeks: SQLite
/// answers a lone `min()` or `max()` from the index, but `SELECT min(rowid), max(rowid)` scans
/// the whole table.
pub fn rowid_span_sql(table: &str) -> String {
    let table = quote(table);
    format!("SELECT (SELECT min(rowid) FROM {table}), (SELECT max(rowid) FROM {table})")
}

/// Rowid ranges that split the table into `parts` scans of similar size (one range when small).
async fn rowid_ranges(name: &str, pool: &SqlitePool, map: &TableMap, parts: usize) -> Result<Vec<(i64, i64)>, ConnectorError> {
    let sql = rowid_span_sql(&map.table);
    let row = sqlx::query(AssertSqlSafe(sql)).fetch_one(pool).await.map_err(|e| {
        sql_error(name, e)
            .object(&map.object)
            .hint("tables created WITHOUT ROWID are not supported by the sqlite connector")
    })?;
    let (lo, hi): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(vec![]);
    };
    Ok(split_ranges(lo, hi, parts))
}

pub(crate) type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

pub(crate) fn bind_value(query: SqliteQuery<'_>, value: SqlValue) -> SqliteQuery<'_> {
    match value {
        SqlValue::Null => query.bind(None::<i64>),
        SqlValue::Integer(i) => query.bind(i),
        SqlValue::Real(f) => query.bind(f),
        SqlValue::Text(s) => query.bind(s),
        SqlValue::Blob(b) => query.bind(b),
    }
}

#[async_trait]
impl Connector for SqliteConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sqlite
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
            .map_err(|e| sql_error(&self.name, e))
    }

    async fn describe(&self) -> Result<Value, ConnectorError> {
        let mut objects = serde_json::Map::new();
        for (object, map) in &self.tables {
            let fks = sqlx::query(AssertSqlSafe(format!("PRAGMA foreign_key_list({})", quote(&map.table))))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| sql_error(&self.name, e))?;
            let foreign_keys: Vec<Value> = fks
                .iter()
                .map(|r| json!({"column": r.get::<String, _>("from"), "table": r.get::<String, _>("table"), "references": r.get::<Option<String>, _>("to")}))
                .collect();
            objects.insert(
                object.clone(),
                json!({"table": map.table, "id": map.id, "modified": map.modified, "columns": map.columns, "foreign_keys": foreign_keys}),
            );
        }
        Ok(json!({"type": "sqlite", "objects": objects}))
    }

    async fn count(&self, object: &str) -> Result<u64, ConnectorError> {
        let map = self.table(object)?;
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {}", quote(&map.table))))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| sql_error(&self.name, e).object(object))?;
        Ok(n as u64)
    }

    async fn newest_modified(&self, object: &str) -> Option<DateTime<Utc>> {
        let map = self.table(object).ok()?;
        let column = map.modified.as_ref()?;
        let sql = format!(
            "SELECT {c} FROM {} ORDER BY julianday({c}) DESC LIMIT 1",
            quote(&map.table),
            c = quote(column)
        );
        let text: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql)).fetch_optional(&self.pool).await.ok()??;
        text.as_deref().and_then(crate::record::parse_time)
    }

    async fn estimated_count(&self, object: &str) -> Option<u64> {
        let map = self.table(object).ok()?;
        let (lo, hi): (Option<i64>, Option<i64>) = sqlx::query_as(AssertSqlSafe(rowid_span_sql(&map.table)))
            .fetch_one(&self.pool)
            .await
            .ok()?;
        Some(match (lo, hi) {
            (Some(lo), Some(hi)) => hi.saturating_sub(lo).saturating_add(1).max(0) as u64,
            _ => 0,
        })
    }

    fn export(&self, object: &str, since: Option<DateTime<Utc>>) -> RecordPages {
        super::pages_from_channel(self.scan_pages(object, since, |map| {
            Box::new(move |text: &str, reals: &Reals| text.split('\n').map(|line| decode_row(&map, line, reals)).collect())
        }))
    }

    fn export_encoded(&self, object: &str, since: Option<DateTime<Utc>>) -> EncodedPages {
        let since = since.map(|t| format_time(&t));
        self.native_pages(object, |native, map, tx| native.scan(map, since, true, scan_parts(), tx))
    }

    fn export_hashes(&self, object: &str) -> EncodedPages {
        self.native_pages(object, |native, map, tx| native.scan(map, None, false, scan_parts(), tx))
    }

    fn export_ids(&self, object: &str, ids: Vec<String>) -> EncodedPages {
        self.native_pages(object, |native, map, tx| native.read_ids(map, ids, scan_parts(), tx))
    }

    fn export_id_hashes(&self, object: &str, ids: Vec<String>) -> EncodedPages {
        self.native_pages(object, |native, map, tx| native.read_id_hashes(map, ids, tx))
    }

    async fn outside_writes_mark(&self) -> Option<i64> {
        self.native.data_version().await.ok()
    }

    async fn apply(&self, object: &str, batch: &[Record], _mode: ApplyMode) -> Result<ApplyOutcome, ConnectorError> {
        let map = self.table(object)?.clone();
        let written = self.native.upsert(map, Rows::Records(batch.to_vec())).await?;
        Ok(ApplyOutcome {
            written,
            id_map: Vec::new(),
        })
    }

    async fn apply_lines(&self, object: &str, lines: &[u8]) -> Result<ApplyOutcome, ConnectorError> {
        let map = self.table(object)?.clone();
        let written = self.native.upsert(map, Rows::Lines(lines.to_vec())).await?;
        Ok(ApplyOutcome {
            written,
            id_map: Vec::new(),
        })
    }

    async fn apply_line_parts(&self, object: &str, parts: super::LineParts) -> Result<ApplyOutcome, ConnectorError> {
        let map = self.table(object)?.clone();
        let written = self.native.upsert(map, Rows::Parts(parts)).await?;
        Ok(ApplyOutcome {
            written,
            id_map: Vec::new(),
        })
    }

    async fn freeze(&self, run_id: &str, message: &str) -> Result<Value, ConnectorError> {
        super::sqlite_freeze::freeze(self, run_id, message).await
    }

    async fn unfreeze(&self, receipt: &Value) -> Result<(), ConnectorError> {
        super::sqlite_freeze::unfreeze(self, receipt).await
    }

    async fn write_probe(&self) -> Result<bool, ConnectorError> {
        super::sqlite_freeze::write_probe(self).await
    }

    async fn delete(&self, object: &str, ids: &[String]) -> Result<u64, ConnectorError> {
        let map = self.table(object)?.clone();
        self.native.delete(map, ids.to_vec()).await
    }
}
