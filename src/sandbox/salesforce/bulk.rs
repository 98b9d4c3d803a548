//! Bulk API 2.0 query jobs under `/jobs/query`: a job runs its SOQL when it is created (the same
//! parser and cursor as `query`, so its records are fixed then) and is `JobComplete` at once;
//! `GET /jobs/query/{id}/results?maxRecords=N&locator=L` answers CSV pages with
//! `Sforce-NumberOfRecords` and `Sforce-Locator` (the literal `null` on the last page). Jobs can be
//! listed, aborted and deleted; the newest 32 are kept. Ingest jobs are not served.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::query::{Cursor, Opened, open, page};
use super::rows::json_body;
use super::{App, error, ids, not_found};
use crate::sandbox::store::now_ms;

/// Query jobs kept at once.
const JOBS_KEPT: usize = 32;
/// Records per results page when `maxRecords` is not given.
const RESULTS_DEFAULT: usize = 50_000;

/// A query job: its JobInfo, its records and how they are written.
pub struct Job {
    info: Value,
    cursor: Arc<Cursor>,
    delimiter: char,
    line_ending: &'static str,
}

/// The jobs, by number.
#[derive(Default)]
pub struct Jobs {
    jobs: BTreeMap<u64, Job>,
    next: u64,
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALIDJOB", message)
}

/// The job an id names, or 404.
fn job_number(id: &str) -> Result<u64, Response> {
    ids::parse("750", id).ok_or_else(not_found)
}

/// `POST /jobs/query` `{"operation": "query"|"queryAll", "query": SOQL, "columnDelimiter"?, "lineEnding"?}`.
pub async fn create(Shared(app): Shared<App>, Path(version): Path<String>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(f) => return f.response(),
    };
    let all = match body["operation"].as_str() {
        Some("query") => false,
        Some("queryAll") => true,
        other => return invalid(&format!("operation must be query or queryAll, not {other:?}")),
    };
    let delimiter = match body["columnDelimiter"].as_str().unwrap_or("COMMA") {
        "COMMA" => ',',
        "TAB" => '\t',
        "PIPE" => '|',
        "SEMICOLON" => ';',
        "CARET" => '^',
        "BACKQUOTE" => '`',
        other => {
            return invalid(&format!(
                "columnDelimiter {other} is not one of COMMA, TAB, PIPE, SEMICOLON, CARET, BACKQUOTE"
            ));
        }
    };
    let line_ending = match body["lineEnding"].as_str().unwrap_or("LF") {
        "LF" => "\n",
        "CRLF" => "\r\n",
        other => return invalid(&format!("lineEnding {other} is not LF or CRLF")),
    };
    let Some(soql) = body["query"].as_str() else {
        return invalid("a query job needs `query`");
    };
    let (cursor, object) = {
        let tables = app.records.tables.read().expect("tables lock");
        match open(&tables, soql, all, usize::MAX) {
            Ok(Opened::Rows(cursor)) => {
                let object = tables[cursor.table].kind.name;
                (cursor, object)
            }
            Ok(Opened::Count(_)) => return invalid("Aggregate queries are not supported by Bulk API 2.0"),
            Err(r) => return r,
        }
    };
    let mut jobs = app.jobs.lock().expect("jobs lock");
    jobs.next += 1;
    let number = jobs.next;
    let now = crate::sandbox::store::iso_ms(now_ms()).replace('Z', "+0000");
    let api_version: f64 = version.trim_start_matches('v').parse().unwrap_or(59.0);
    let info = json!({
        "id": ids::show("750", number), "operation": body["operation"], "object": object,
        "createdById": ids::show("005", 1), "createdDate": now, "systemModstamp": now,
        "state": "JobComplete", "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": api_version,
        "lineEnding": body["lineEnding"].as_str().unwrap_or("LF"), "columnDelimiter": body["columnDelimiter"].as_str().unwrap_or("COMMA"),
        "numberRecordsProcessed": cursor.total, "retries": 0, "totalProcessingTime": 0,
    });
    let mut shown = info.clone();
    shown["state"] = json!("UploadComplete");
    let job = Job {
        info,
        cursor: Arc::new(cursor),
        delimiter,
        line_ending,
    };
    jobs.jobs.insert(number, job);
    while jobs.jobs.len() > JOBS_KEPT {
        jobs.jobs.pop_first();
    }
    Json(shown).into_response()
}

/// `GET /jobs/query`: every job kept.
pub async fn list(Shared(app): Shared<App>) -> Response {
    let jobs = app.jobs.lock().expect("jobs lock");
    let records: Vec<&Value> = jobs.jobs.values().map(|j| &j.info).collect();
    Json(json!({"done": true, "records": records, "nextRecordsUrl": null})).into_response()
}

/// `GET /jobs/query/{id}`.
pub async fn get(Shared(app): Shared<App>, Path((_, id)): Path<(String, String)>) -> Response {
    let number = match job_number(&id) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match app.jobs.lock().expect("jobs lock").jobs.get(&number) {
        Some(job) => Json(job.info.clone()).into_response(),
        None => not_found(),
    }
}

/// `PATCH /jobs/query/{id}` `{"state": "Aborted"}`.
pub async fn abort(Shared(app): Shared<App>, Path((_, id)): Path<(String, String)>, body: Bytes) -> Response {
    let number = match job_number(&id) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if json_body(&body)
        .ok()
        .and_then(|b| b["state"].as_str().map(str::to_string))
        .as_deref()
        != Some("Aborted")
    {
        return invalid("a query job can only be set to the state Aborted");
    }
    match app.jobs.lock().expect("jobs lock").jobs.get_mut(&number) {
        Some(job) => {
            job.info["state"] = json!("Aborted");
            Json(job.info.clone()).into_response()
        }
        None => not_found(),
    }
}

/// `DELETE /jobs/query/{id}`: 204.
pub async fn delete(Shared(app): Shared<App>, Path((_, id)): Path<(String, String)>) -> Response {
    let removed = job_number(&id).map(|n| app.jobs.lock().expect("jobs lock").jobs.remove(&n));
    match removed {
        Ok(Some(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

/// One CSV field: quoted (quotes doubled), empty for null.
fn csv_field(out: &mut String, value: Option<String>) {
    if let Some(v) = value {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    }
}

/// `GET /jobs/query/{id}/results?maxRecords=N&locator=L`: text/csv.
pub async fn results(Shared(app): Shared<App>, Path((_, id)): Path<(String, String)>, RawQuery(raw): RawQuery) -> Response {
    let number = match job_number(&id) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let found = app.jobs.lock().expect("jobs lock").jobs.get(&number).map(|j| {
        let state = j.info["state"].as_str().unwrap_or_default().to_string();
        (state, j.cursor.clone(), j.delimiter, j.line_ending)
    });
    let Some((state, cursor, delimiter, line_ending)) = found else {
        return not_found();
    };
    if state != "JobComplete" {
        return error(StatusCode::PRECONDITION_FAILED, "JOB_NOT_COMPLETE", &format!("the job is {state}"));
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let max = match get("maxRecords").map(str::parse::<usize>) {
        None => RESULTS_DEFAULT,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => return invalid("maxRecords must be a positive whole number"),
    };
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    let from = match get("locator").filter(|l| !l.is_empty() && *l != "null") {
        None => 0,
        Some(l) => match engine
            .decode(l)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return error(StatusCode::BAD_REQUEST, "INVALID_LOCATOR", &format!("invalid locator {l}")),
        },
    };
    let n = max.min(cursor.total.saturating_sub(from));
    let mut csv = String::new();
    let tables = app.records.tables.read().expect("tables lock");
    let Some(table) = tables.get(cursor.table) else {
        return invalid("the job's object is gone");
    };
    let names: Vec<&str> = cursor.columns.iter().map(|&c| table.kind.properties[c].name).collect();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            csv.push(delimiter);
        }
        csv_field(&mut csv, Some(name.to_string()));
    }
    csv.push_str(line_ending);
    let ids = page(table, &cursor, from, n);
    for id in &ids {
        let Some(rec) = table.records.get(id) else { continue };
        for (i, &c) in cursor.columns.iter().enumerate() {
            if i > 0 {
                csv.push(delimiter);
            }
            csv_field(&mut csv, table.get(*id, rec, c));
        }
        csv.push_str(line_ending);
    }
    let next = from + ids.len();
    let locator = if next < cursor.total {
        engine.encode(next.to_string())
    } else {
        "null".to_string()
    };
    let mut response = csv.into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/csv"));
    for (name, value) in [("sforce-numberofrecords", ids.len().to_string()), ("sforce-locator", locator)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}
