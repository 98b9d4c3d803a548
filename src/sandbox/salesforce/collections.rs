//! sObject Collections under `/composite/sobjects`: create (POST), update (PATCH), upsert by
//! external id (PATCH `/{Obj}/{Field}`), delete (DELETE `?ids=`) and retrieve (GET/POST
//! `/{Obj}`), at most 200 records a call. Results come back in request order, one per record;
//! with `allOrNone` a single failure writes nothing and every other record reports
//! `ALL_OR_NONE_OPERATION_ROLLED_BACK`.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::rows::{Change, Failure, apply, check_create, check_delete, check_update, check_upsert, fields_param, json_body};
use super::{App, COLLECTION_MAX, error, exact, show, table_index};
use crate::sandbox::store::Table;

/// One record's checked write: the change and, for upserts, whether it creates.
type Checked = Result<(Change, Option<bool>), Failure>;
/// One record's outcome: the table and id written, and for upserts whether it was created.
type Written = Result<(usize, u64, Option<bool>), Failure>;

/// `records` of a collection body and its `allOrNone`; the top-level error otherwise.
fn records_of(body: &Bytes) -> Result<(Vec<Value>, bool), Response> {
    let body = json_body(body).map_err(|f| f.response())?;
    let Some(records) = body["records"].as_array() else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "the body needs a `records` array",
        ));
    };
    limit(records.len())?;
    Ok((records.clone(), body["allOrNone"].as_bool().unwrap_or(false)))
}

fn limit(n: usize) -> Result<(), Response> {
    if n > COLLECTION_MAX {
        let message = format!("record limit reached. cannot submit more than {COLLECTION_MAX} records into this call");
        return Err(error(StatusCode::BAD_REQUEST, "EXCEEDED_ID_LIMIT", &message));
    }
    Ok(())
}

/// The table a collection record's `attributes.type` names.
fn typed(tables: &[Table], record: &Value) -> Result<usize, Failure> {
    let name = record["attributes"]["type"].as_str().unwrap_or_default();
    tables.iter().position(|t| t.kind.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
        Failure::new(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            format!("sObject type '{name}' is not supported."),
        )
    })
}

/// Checks every item, applies them (all, or none when `all_or_none` and one failed), saves, and
/// answers the per-record results.
async fn run(app: &App, all_or_none: bool, items: usize, check: impl Fn(&[Table], usize) -> Checked) -> Response {
    let mut outcomes: Vec<Written> = Vec::with_capacity(items);
    let mut touched: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let results: Vec<Value> = {
        let mut tables = app.records.tables.write().expect("tables lock");
        let mut pending = Vec::new();
        for i in 0..items {
            match check(&tables, i) {
                // Without allOrNone each record is written before the next is checked.
                Ok((change, created)) if !all_or_none => {
                    let (t, id) = apply(&mut tables, change);
                    outcomes.push(Ok((t, id, created)));
                }
                Ok((change, created)) => {
                    pending.push((outcomes.len(), change, created));
                    outcomes.push(Ok((usize::MAX, 0, created)));
                }
                Err(f) => outcomes.push(Err(f)),
            }
        }
        let failed = outcomes.iter().any(Result::is_err);
        if all_or_none && !failed {
            for (at, change, created) in pending {
                let (t, id) = apply(&mut tables, change);
                outcomes[at] = Ok((t, id, created));
            }
        }
        outcomes
            .iter()
            .map(|outcome| match outcome {
                Ok(_) if all_or_none && failed => {
                    let message = "Record rolled back because not all records were valid and the request was using AllOrNone header";
                    json!({"success": false, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": message, "fields": []}]})
                }
                Ok((t, id, created)) => {
                    touched.entry(*t).or_default().push(*id);
                    let mut out = json!({"id": tables[*t].kind.show_id(*id), "success": true, "errors": []});
                    if let Some(created) = created {
                        out["created"] = Value::Bool(*created);
                    }
                    out
                }
                Err(f) => json!({"success": false, "errors": [f.item()]}),
            })
            .collect()
    };
    for (t, ids) in touched {
        app.records.save(t, &ids).await;
    }
    Json(results).into_response()
}

/// Checks and writes each record of a collection body (`{allOrNone, records}`).
async fn each_record(app: &App, body: &Bytes, check: impl Fn(&[Table], &Value) -> Checked) -> Response {
    match records_of(body) {
        Ok((records, all_or_none)) => run(app, all_or_none, records.len(), |tables, i| check(tables, &records[i])).await,
        Err(r) => r,
    }
}

/// `POST /composite/sobjects`: creates records of any types.
pub async fn collection_create(Shared(app): Shared<App>, body: Bytes) -> Response {
    each_record(&app, &body, |tables, record| {
        Ok((check_create(tables, typed(tables, record)?, record)?, None))
    })
    .await
}

/// `PATCH /composite/sobjects`: updates records (each with `id`) of any types.
pub async fn collection_update(Shared(app): Shared<App>, body: Bytes) -> Response {
    each_record(&app, &body, |tables, record| {
        let id = record["id"].as_str().or(record["Id"].as_str()).unwrap_or_default();
        Ok((check_update(tables, typed(tables, record)?, id, record)?, None))
    })
    .await
}

/// `PATCH /composite/sobjects/{Obj}/{Field}`: upserts records of one type by external id.
pub async fn collection_upsert(
    Shared(app): Shared<App>,
    Path((_, object, field)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let t = match table_index(&app.records.tables.read().expect("tables lock"), &object, StatusCode::NOT_FOUND) {
        Ok(t) => t,
        Err(r) => return r,
    };
    each_record(&app, &body, |tables, record| {
        let value = match &record[field.as_str()] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                let message = format!("Required fields are missing: [{field}]");
                return Err(Failure {
                    fields: vec![field.clone()],
                    ..Failure::new(StatusCode::BAD_REQUEST, "REQUIRED_FIELD_MISSING", message)
                });
            }
        };
        let (change, created) = check_upsert(tables, t, &field, &value, record)?;
        Ok((change, Some(created)))
    })
    .await
}

/// The `ids` and `allOrNone` query parameters.
fn ids_param(raw: Option<&str>) -> (Vec<String>, bool) {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let ids = get("ids")
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    (ids, get("allOrNone").is_some_and(|v| v.eq_ignore_ascii_case("true")))
}

/// `DELETE /composite/sobjects?ids=a,b&allOrNone=false`: ids of any types.
pub async fn collection_delete(Shared(app): Shared<App>, RawQuery(raw): RawQuery) -> Response {
    let (ids, all_or_none) = ids_param(raw.as_deref());
    if let Err(r) = limit(ids.len()) {
        return r;
    }
    run(&app, all_or_none, ids.len(), |tables, i| {
        let t = tables
            .iter()
            .position(|t| t.kind.parse_id(&ids[i]).is_some())
            .ok_or_else(|| Failure::new(StatusCode::BAD_REQUEST, "MALFORMED_ID", format!("malformed id {}", ids[i])))?;
        Ok((check_delete(tables, t, &ids[i])?, None))
    })
    .await
}

/// `GET /composite/sobjects/{Obj}?ids=..&fields=..` (or POST `{ids, fields}`): records or nulls.
pub async fn collection_read(
    Shared(app): Shared<App>,
    Path((version, object)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let (mut ids, _) = ids_param(raw.as_deref());
    let mut fields = raw.clone();
    if let Ok(body) = serde_json::from_slice::<Value>(&body) {
        let list = |v: &Value| {
            v.as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect::<Vec<_>>())
        };
        ids.extend(list(&body["ids"]).unwrap_or_default());
        fields = list(&body["fields"]).map(|f| format!("fields={}", f.join(",")));
    }
    if ids.len() > 2000 {
        return error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "cannot retrieve more than 2000 records",
        );
    }
    let tables = app.records.tables.read().expect("tables lock");
    let t = match table_index(&tables, &object, StatusCode::NOT_FOUND) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let table = &tables[t];
    let columns = match fields_param(table, fields.as_deref()) {
        Ok(c) => c,
        Err(f) => return f.response(),
    };
    let records: Vec<Value> = ids
        .iter()
        .map(|id| {
            let found = table
                .kind
                .parse_id(id)
                .and_then(|n| table.records.get(&n).filter(|r| r.archived.is_none()).map(|r| (n, r)));
            found.map_or(Value::Null, |(n, rec)| show(table, n, rec, &columns, &version))
        })
        .collect();
    exact(table, &Value::Array(records))
}
