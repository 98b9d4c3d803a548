//! Freezing a SQLite CRM: triggers on every mapped table abort user writes with a message naming
//! the rollback run.
//!
//! The tool keeps writing through a bypass: every trigger fires only while the table
//! `_rollback_bypass` is empty, and the tool's own write transactions insert a row there first and
//! delete it before committing. SQLite has one writer at a time and no one sees uncommitted rows,
//! so user transactions always find the table empty.

use serde_json::{Value, json};
use sqlx::AssertSqlSafe;

use super::ConnectorError;
use super::sqlite::{SqliteConnector, quote};

/// The bypass table's name.
pub const BYPASS: &str = "_rollback_bypass";
const TRIGGER_PREFIX: &str = "_rollback_freeze_";

fn sql_err(name: &str) -> impl Fn(sqlx::Error) -> ConnectorError + '_ {
    move |e| ConnectorError::new(name, e.to_string())
}

/// Creates the triggers (and the bypass table); returns the receipt.
pub async fn freeze(c: &SqliteConnector, run_id: &str, message: &str) -> Result<Value, ConnectorError> {
    let err = sql_err(c.name_str());
    let mut tx = c.pool().begin().await.map_err(&err)?;
    let existing: Option<i64> = sqlx::query_scalar("SELECT 1 FROM sqlite_master WHERE name = ?")
        .bind(BYPASS)
        .fetch_optional(&mut *tx)
        .await
        .map_err(&err)?;
    let created_bypass = existing.is_none();
    if created_bypass {
        sqlx::query(AssertSqlSafe(format!("CREATE TABLE {} (open INTEGER)", quote(BYPASS))))
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
    } else {
        // A leftover row would open the bypass for everyone.
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", quote(BYPASS))))
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
    }
    let text = format!("frozen by rollback: {message}").replace('\'', "''");
    let mut triggers = Vec::new();
    for table in c.tables() {
        for op in ["INSERT", "UPDATE", "DELETE"] {
            let name = format!("{TRIGGER_PREFIX}{table}_{}", op.to_lowercase());
            let sql = format!(
                "CREATE TRIGGER IF NOT EXISTS {} BEFORE {op} ON {} WHEN NOT EXISTS (SELECT 1 FROM {}) BEGIN SELECT RAISE(ABORT, '{text}'); END",
                quote(&name),
                quote(&table),
                quote(BYPASS)
            );
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await.map_err(&err)?;
            triggers.push(name);
        }
    }
    tx.commit().await.map_err(&err)?;
    Ok(json!({"method": "triggers", "run": run_id, "triggers": triggers, "bypass_table": if created_bypass { Some(BYPASS) } else { None }}))
}

/// Drops exactly the triggers (and bypass table) the receipt names.
pub async fn unfreeze(c: &SqliteConnector, receipt: &Value) -> Result<(), ConnectorError> {
    let err = sql_err(c.name_str());
    let mut tx = c.pool().begin().await.map_err(&err)?;
    for name in receipt["triggers"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !name.starts_with(TRIGGER_PREFIX) {
            return Err(ConnectorError::new(
                c.name_str(),
                format!("the receipt names trigger `{name}`, which this tool did not create"),
            ));
        }
        sqlx::query(AssertSqlSafe(format!("DROP TRIGGER IF EXISTS {}", quote(name))))
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
    }
    if receipt["bypass_table"].as_str() == Some(BYPASS) {
        sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {}", quote(BYPASS))))
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
    }
    tx.commit().await.map_err(&err)
}

/// Tries a user's write on the first mapped table, rolling it back: `true` when it goes through.
pub async fn write_probe(c: &SqliteConnector) -> Result<bool, ConnectorError> {
    let err = sql_err(c.name_str());
    let Some(table) = c.tables().into_iter().next() else {
        return Ok(true);
    };
    let mut tx = c.pool().begin().await.map_err(&err)?;
    let has_row: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!("SELECT rowid FROM {} LIMIT 1", quote(&table))))
        .fetch_optional(&mut *tx)
        .await
        .map_err(&err)?;
    let sql = match has_row {
        Some(rowid) => format!("UPDATE {} SET rowid = rowid WHERE rowid = {rowid}", quote(&table)),
        None => format!("INSERT INTO {} DEFAULT VALUES", quote(&table)),
    };
    let outcome = sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await;
    let _ = tx.rollback().await;
    match outcome {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e)) if e.message().contains("frozen") || e.message().contains("read-only") => Ok(false),
        // A constraint on an empty table's default row still means the write was allowed.
        Err(sqlx::Error::Database(e)) if e.message().contains("constraint") => Ok(true),
        Err(e) => Err(err(e)),
    }
}
