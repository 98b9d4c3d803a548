//! `sqlite`: one table per object, through sqlx. Every column becomes a field, normalised by its
//! declared type (see [`super::values`]); `id` names the key column and `modified` the column
//! that tells when a row last changed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{AssertSqlSafe, Row, ValueRef};

use super::values::{self, ColumnClass, SqlValue};
use super::{ApplyMode, ApplyOutcome, Capabilities, Connector, ConnectorError, PAGE_SIZE, RecordPages};
use crate::playbook::{ConnectorConfig, ConnectorKind};
use crate::record::{Fields, Record, format_time, parse_time};

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
}

impl TableMap {
    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

pub struct SqliteConnector {
    name: String,
    path: PathBuf,
    pool: SqlitePool,
    tables: BTreeMap<String, TableMap>,
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
        let raw = config.spec.path.clone().unwrap_or_default();
        let resolved = crate::playbook::secret::Secret(raw).resolve(&config.base_dir).map_err(|e| ConnectorError::new(name, e.to_string()))?;
        let path = config.base_dir.join(resolved);
        if !path.is_file() {
            return Err(ConnectorError::new(name, format!("database file `{}` does not exist", path.display()))
                .hint("check `path` (relative to the playbook's folder); `rollback init` creates sandbox databases"));
        }
        let options = SqliteConnectOptions::new().filename(&path).create_if_missing(false).busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| sql_error(name, e).hint("is the file a SQLite database you may open?"))?;
        let mut tables = BTreeMap::new();
        for (object, mapping) in &config.objects {
            let table = mapping.table.clone().unwrap_or_else(|| object.clone());
            let rows = sqlx::query(AssertSqlSafe(format!("PRAGMA table_info({})", quote(&table)))).fetch_all(&pool).await.map_err(|e| sql_error(name, e))?;
            if rows.is_empty() {
                return Err(ConnectorError::new(name, format!("table `{table}` does not exist in `{}`", path.display())).object(object)
                    .hint("set `table:` on the object to the real table name"));
            }
            let columns: Vec<Column> = rows
                .iter()
                .map(|r| {
                    let declared: String = r.get("type");
                    Column { name: r.get("name"), class: values::classify(&declared), declared, not_null: r.get::<i64, _>("notnull") != 0, primary_key: r.get::<i64, _>("pk") != 0 }
                })
                .collect();
            let id = mapping.id.clone().or_else(|| columns.iter().find(|c| c.primary_key).map(|c| c.name.clone())).unwrap_or_else(|| "id".into());
            let map = TableMap { object: object.as_str().into(), table: table.clone(), id, modified: mapping.modified.clone(), columns };
            for column in std::iter::once(&map.id).chain(map.modified.as_ref()) {
                if map.column(column).is_none() {
                    let names: Vec<&str> = map.columns.iter().map(|c| c.name.as_str()).collect();
                    return Err(ConnectorError::new(name, format!("table `{table}` has no column `{column}`")).object(object)
                        .hint(crate::playbook::diagnostic::suggest(column, "column", names.iter().copied())));
                }
            }
            tables.insert(object.clone(), map);
        }
        Ok(SqliteConnector { name: name.into(), path, pool, tables })
    }

    fn table(&self, object: &str) -> Result<&TableMap, ConnectorError> {
        self.tables.get(object).ok_or_else(|| ConnectorError::new(&self.name, "object is not mapped").object(object))
    }

    /// The pool, for freeze triggers and probes.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Reads one row into a record.
fn decode_row(map: &TableMap, row: &SqliteRow) -> Result<Record, String> {
    let mut fields = Fields::new();
    for (i, column) in map.columns.iter().enumerate() {
        let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            use sqlx::TypeInfo;
            let storage = raw.type_info().name().to_string();
            match storage.as_str() {
                "INTEGER" => values::from_integer(column.class, row.try_get_unchecked::<i64, _>(i).map_err(|e| e.to_string())?),
                "REAL" => values::from_real(column.class, row.try_get_unchecked::<f64, _>(i).map_err(|e| e.to_string())?),
                "BLOB" => values::from_bytes(&row.try_get_unchecked::<Vec<u8>, _>(i).map_err(|e| e.to_string())?),
                _ => values::from_text(column.class, row.try_get_unchecked::<String, _>(i).map_err(|e| e.to_string())?),
            }
        };
        fields.insert(column.name.clone(), value);
    }
    let id = fields.get(&map.id).and_then(values::id_text).ok_or_else(|| format!("id column `{}` is empty", map.id))?;
    let modified_at = map.modified.as_ref().and_then(|m| fields.get(m)).and_then(|v| v.as_str()).and_then(parse_time);
    Ok(Record { object: map.object.clone(), id, fields, modified_at, deleted: false })
}

fn bind_value<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    value: SqlValue,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    match value {
        SqlValue::Null => query.bind(None::<i64>),
        SqlValue::Integer(i) => query.bind(i),
        SqlValue::Real(f) => query.bind(f),
        SqlValue::Text(s) => query.bind(s),
        SqlValue::Blob(b) => query.bind(b),
    }
}

/// SQLite's limit on bound parameters per statement.
const MAX_PARAMS: usize = 32_000;

#[async_trait]
impl Connector for SqliteConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Sqlite
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { read: true, write: true, freeze: true }
    }

    fn objects(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(|e| sql_error(&self.name, e))
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

    fn export(&self, object: &str, since: Option<DateTime<Utc>>) -> RecordPages {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let name = self.name.clone();
        let pool = self.pool.clone();
        let map = self.table(object).cloned();
        tokio::spawn(async move {
            let map = match map {
                Ok(map) => map,
                Err(e) => return drop(tx.send(Err(e)).await),
            };
            let columns: Vec<String> = map.columns.iter().map(|c| quote(&c.name)).collect();
            let mut sql = format!("SELECT {} FROM {}", columns.join(", "), quote(&map.table));
            let since_text = match (since, &map.modified) {
                (Some(t), Some(m)) => {
                    sql.push_str(&format!(" WHERE julianday({}) >= julianday(?)", quote(m)));
                    Some(format_time(&t))
                }
                _ => None,
            };
            let mut query = sqlx::query(AssertSqlSafe(sql));
            if let Some(t) = since_text {
                query = query.bind(t);
            }
            let mut rows = query.fetch(&pool);
            let mut page = Vec::with_capacity(PAGE_SIZE);
            loop {
                match rows.try_next().await {
                    Ok(Some(row)) => match decode_row(&map, &row) {
                        Ok(record) => {
                            page.push(record);
                            if page.len() == PAGE_SIZE && tx.send(Ok(std::mem::replace(&mut page, Vec::with_capacity(PAGE_SIZE)))).await.is_err() {
                                return;
                            }
                        }
                        Err(message) => {
                            let _ = tx.send(Err(ConnectorError::new(&name, message).object(&map.object))).await;
                            return;
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(sql_error(&name, e).object(&map.object))).await;
                        return;
                    }
                }
            }
            if !page.is_empty() {
                let _ = tx.send(Ok(page)).await;
            }
        });
        super::pages_from_channel(rx)
    }

    async fn apply(&self, object: &str, batch: &[Record], _mode: ApplyMode) -> Result<ApplyOutcome, ConnectorError> {
        let map = self.table(object)?;
        let err = |e: sqlx::Error| sql_error(&self.name, e).object(object);
        let mut tx = self.pool.begin().await.map_err(err)?;
        let mut start = 0;
        while start < batch.len() {
            let keys: Vec<&String> = batch[start].fields.keys().collect();
            for key in &keys {
                if map.column(key).is_none() {
                    return Err(ConnectorError::new(&self.name, format!("table `{}` has no column `{key}`", map.table))
                        .object(object)
                        .record(&batch[start].id)
                        .hint("the record does not fit this table; check the object mapping or restore into the connector it came from"));
                }
            }
            if !keys.iter().any(|k| **k == map.id) {
                return Err(ConnectorError::new(&self.name, format!("record has no `{}` field", map.id)).object(object).record(&batch[start].id));
            }
            let rows_per_statement = (MAX_PARAMS / keys.len().max(1)).max(1);
            let mut end = start + 1;
            while end < batch.len() && end - start < rows_per_statement && batch[end].fields.keys().eq(keys.iter().copied()) {
                end += 1;
            }
            let cols: Vec<String> = keys.iter().map(|k| quote(k)).collect();
            let placeholders = format!("({})", vec!["?"; keys.len()].join(", "));
            let updates: Vec<String> = cols.iter().filter(|c| **c != quote(&map.id)).map(|c| format!("{c} = excluded.{c}")).collect();
            let conflict = if updates.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", updates.join(", ")) };
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {} ON CONFLICT({}) {}",
                quote(&map.table),
                cols.join(", "),
                vec![placeholders; end - start].join(", "),
                quote(&map.id),
                conflict
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for record in &batch[start..end] {
                for (key, value) in &record.fields {
                    let class = map.column(key).map(|c| c.class).unwrap_or(ColumnClass::Any);
                    let v = values::to_sql(class, value).map_err(|m| ConnectorError::new(&self.name, format!("field `{key}`: {m}")).object(object).record(&record.id))?;
                    query = bind_value(query, v);
                }
            }
            query.execute(&mut *tx).await.map_err(err)?;
            start = end;
        }
        tx.commit().await.map_err(err)?;
        Ok(ApplyOutcome { written: batch.len() as u64, id_map: Vec::new() })
    }

    async fn delete(&self, object: &str, ids: &[String]) -> Result<u64, ConnectorError> {
        let map = self.table(object)?;
        let err = |e: sqlx::Error| sql_error(&self.name, e).object(object);
        let id_class = map.column(&map.id).map(|c| c.class).unwrap_or(ColumnClass::Any);
        let mut tx = self.pool.begin().await.map_err(err)?;
        let mut deleted = 0;
        for part in ids.chunks(MAX_PARAMS) {
            let sql = format!("DELETE FROM {} WHERE {} IN ({})", quote(&map.table), quote(&map.id), vec!["?"; part.len()].join(", "));
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in part {
                let v = values::to_sql(id_class, &Value::String(id.clone())).unwrap_or(SqlValue::Text(id.clone()));
                query = bind_value(query, v);
            }
            deleted += query.execute(&mut *tx).await.map_err(err)?.rows_affected();
        }
        tx.commit().await.map_err(err)?;
        Ok(deleted)
    }
}
