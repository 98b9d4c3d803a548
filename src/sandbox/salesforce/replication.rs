//! The replication resources: `GET /sobjects/{Obj}/updated/?start=&end=` (ids whose
//! `SystemModstamp` falls in the window) and `GET /sobjects/{Obj}/deleted/?start=&end=` (ids and
//! deletion times). The sandbox keeps every delete, so it does not enforce Salesforce's 30- and
//! 15-day windows.

use axum::Json;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{App, error, table_index};
use crate::sandbox::store::{Rec, Table, parse_ms};

/// The `start` and `end` parameters in epoch milliseconds (a `+` sent unencoded reads as a
/// space; simple-salesforce sends it so).
fn window(raw: Option<&str>) -> Result<(i64, i64), Response> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let time = |key: &str| {
        let text = pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.replace(' ', "+"));
        text.as_deref().and_then(parse_ms).ok_or_else(|| {
            let message = format!("`{key}` must be an ISO 8601 date-time, e.g. 2026-11-20T22:00:00+00:00");
            error(StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE", &message)
        })
    };
    let (start, end) = (time("start")?, time("end")?);
    if end < start {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_REPLICATION_DATE",
            "`end` is before `start`",
        ));
    }
    Ok((start, end))
}

/// Runs `pick` over the records of `object` in the window and answers `{key: [...], ...}`.
fn changes(app: &App, object: &str, raw: Option<&str>, key: &str, pick: impl Fn(&Table, u64, &Rec, i64, i64) -> Option<Value>) -> Response {
    let (start, end) = match window(raw) {
        Ok(w) => w,
        Err(r) => return r,
    };
    let tables = app.records.tables.read().expect("tables lock");
    let t = match table_index(&tables, object, StatusCode::NOT_FOUND) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let table = &tables[t];
    let found: Vec<Value> = table
        .records
        .iter()
        .filter_map(|(id, rec)| pick(table, *id, rec, start, end))
        .collect();
    let earliest = table.records.values().map(|r| r.created).min().unwrap_or(start);
    Json(json!({key: found, "latestDateCovered": table.kind.time(end), "earliestDateAvailable": table.kind.time(earliest)})).into_response()
}

/// `GET /sobjects/{Obj}/updated/?start=&end=`.
pub async fn updated(Shared(app): Shared<App>, Path((_, object)): Path<(String, String)>, RawQuery(raw): RawQuery) -> Response {
    changes(&app, &object, raw.as_deref(), "ids", |table, id, rec, start, end| {
        (rec.archived.is_none() && (start..=end).contains(&rec.updated)).then(|| Value::String(table.kind.show_id(id)))
    })
}

/// `GET /sobjects/{Obj}/deleted/?start=&end=`.
pub async fn deleted(Shared(app): Shared<App>, Path((_, object)): Path<(String, String)>, RawQuery(raw): RawQuery) -> Response {
    changes(&app, &object, raw.as_deref(), "deletedRecords", |table, id, rec, start, end| {
        let at = rec.archived.filter(|at| (start..=end).contains(at))?;
        Some(json!({"id": table.kind.show_id(id), "deletedDate": table.kind.time(at)}))
    })
}
