//! sObject rows: `GET/PATCH/DELETE /sobjects/{Obj}/{id}`, `POST /sobjects/{Obj}`, get and upsert
//! by external id (`/sobjects/{Obj}/{Field}/{value}`). Every write is first checked into a
//! [`Change`] (or a [`Failure`] in Salesforce's words), then applied, so the sObject Collections
//! in `collections.rs` share the same checks and can refuse a whole `allOrNone` call.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{App, exact, show, table_index};
use crate::sandbox::store::{Kind, Rec, Table, now_ms, parse_ms};

pub use super::collections::{collection_create, collection_delete, collection_read, collection_update, collection_upsert};

/// Why one record could not be written, in Salesforce's words.
pub struct Failure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl Failure {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The answer of a single-record call: a top-level error array.
    pub fn response(&self) -> Response {
        (
            self.status,
            Json(json!([{"message": self.message, "errorCode": self.code, "fields": self.fields}])),
        )
            .into_response()
    }

    /// The error of one record in a collection's results.
    pub fn item(&self) -> Value {
        json!({"statusCode": self.code, "message": self.message, "fields": self.fields})
    }
}

/// One write, checked and ready to apply.
pub enum Change {
    Create { table: usize, rec: Rec },
    Update { table: usize, id: u64, rec: Rec },
    Delete { table: usize, id: u64 },
}

/// Applies a checked change; returns the table and id it wrote.
pub fn apply(tables: &mut [Table], change: Change) -> (usize, u64) {
    match change {
        Change::Create { table, rec } => (table, tables[table].add(rec)),
        Change::Update { table, id, rec } => {
            tables[table].records.insert(id, rec);
            (table, id)
        }
        Change::Delete { table, id } => {
            if let Some(rec) = tables[table].records.get_mut(&id) {
                let now = now_ms().max(rec.updated + 1);
                (rec.archived, rec.updated) = (Some(now), now);
            }
            (table, id)
        }
    }
}

/// A request body as JSON; `JSON_PARSER_ERROR` otherwise.
pub fn json_body(body: &Bytes) -> Result<Value, Failure> {
    crate::exact_json::parse(body).map_err(|e| Failure::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", format!("Unexpected JSON: {e}")))
}

/// Whether a JSON value suits a field of this kind.
fn fits(kind: Kind, value: &Value) -> bool {
    match (kind, value) {
        (_, Value::Null) => true,
        (Kind::Number, Value::Number(_)) | (Kind::Boolean, Value::Bool(_)) => true,
        (Kind::Number, Value::String(s)) => s.is_empty() || s.parse::<f64>().is_ok(),
        (Kind::Boolean, Value::String(s)) => s == "true" || s == "false",
        (Kind::DateTime, Value::String(s)) => s.is_empty() || parse_ms(s).is_some(),
        (Kind::Text | Kind::Enumeration, Value::String(_)) => true,
        _ => false,
    }
}

/// Sets a record's fields from a JSON object (`attributes` and `Id` are not fields to set).
fn set_fields(table: &Table, rec: &mut Rec, fields: &Value) -> Result<(), Failure> {
    let Value::Object(fields) = fields else {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "the record must be a JSON object",
        ));
    };
    let mut values = Map::new();
    for (name, value) in fields {
        if name == "attributes" || name.eq_ignore_ascii_case("id") {
            continue;
        }
        let Some(c) = table.column(name) else {
            let message = format!("No such column '{name}' on sobject of type {}", table.kind.name);
            return Err(Failure {
                fields: vec![name.clone()],
                ..Failure::new(StatusCode::BAD_REQUEST, "INVALID_FIELD", message)
            });
        };
        let p = &table.kind.properties[c];
        if p.system {
            let message = format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                p.name
            );
            return Err(Failure {
                fields: vec![p.name.to_string()],
                ..Failure::new(StatusCode::BAD_REQUEST, "INVALID_FIELD_FOR_INSERT_UPDATE", message)
            });
        }
        if !fits(p.kind, value) {
            let kind = super::objects::field_type(p);
            let message = format!("Cannot deserialize value for field {} of type {kind}: {value}", p.name);
            return Err(Failure {
                fields: vec![p.name.to_string()],
                ..Failure::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", message)
            });
        }
        values.insert(p.name.to_string(), value.clone());
    }
    table
        .set(rec, &values)
        .map_err(|bad| Failure::new(StatusCode::BAD_REQUEST, "INVALID_FIELD", bad.join(", ")))
}

/// A new record of table `t` from `fields`.
pub fn check_create(tables: &[Table], t: usize, fields: &Value) -> Result<Change, Failure> {
    let table = &tables[t];
    if !table.kind.createable {
        let message = format!("entity type cannot be inserted: {}", table.kind.name);
        return Err(Failure::new(StatusCode::BAD_REQUEST, "INVALID_TYPE_FOR_OPERATION", message));
    }
    if fields.get("Id").or(fields.get("id")).is_some_and(|v| !v.is_null()) {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "cannot specify Id in an insert call",
        ));
    }
    let mut rec = table.blank(now_ms());
    set_fields(table, &mut rec, fields)?;
    let missing: Vec<String> = table
        .kind
        .required
        .iter()
        .filter(|f| table.value(0, &rec, f).is_none())
        .map(|f| f.to_string())
        .collect();
    if !missing.is_empty() {
        let message = format!("Required fields are missing: [{}]", missing.join(", "));
        return Err(Failure {
            fields: missing,
            ..Failure::new(StatusCode::BAD_REQUEST, "REQUIRED_FIELD_MISSING", message)
        });
    }
    Ok(Change::Create { table: t, rec })
}

/// The live record `id` names in table `t`.
pub fn find(table: &Table, id: &str) -> Result<u64, Failure> {
    let Some(n) = table.kind.parse_id(id) else {
        let message = format!("{} ID: id value of incorrect type: {id}", table.kind.name);
        return Err(Failure::new(StatusCode::BAD_REQUEST, "MALFORMED_ID", message));
    };
    match table.records.get(&n) {
        Some(rec) if rec.archived.is_some() => Err(Failure::new(StatusCode::NOT_FOUND, "ENTITY_IS_DELETED", "entity is deleted")),
        Some(_) => Ok(n),
        None => Err(Failure::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )),
    }
}

/// New values for record `id` of table `t`.
pub fn check_update(tables: &[Table], t: usize, id: &str, fields: &Value) -> Result<Change, Failure> {
    let table = &tables[t];
    let n = find(table, id)?;
    let mut rec = table.records[&n].clone();
    set_fields(table, &mut rec, fields)?;
    rec.updated = now_ms().max(rec.updated + 1);
    Ok(Change::Update { table: t, id: n, rec })
}

pub fn check_delete(tables: &[Table], t: usize, id: &str) -> Result<Change, Failure> {
    let table = &tables[t];
    if !table.kind.createable {
        let message = format!("entity type cannot be deleted: {}", table.kind.name);
        return Err(Failure::new(StatusCode::BAD_REQUEST, "INVALID_TYPE_FOR_OPERATION", message));
    }
    Ok(Change::Delete {
        table: t,
        id: find(table, id)?,
    })
}

/// The live records whose external id field `field` is `value` (or whose `Id` it is).
fn by_external_id(table: &Table, field: &str, value: &str) -> Result<Vec<u64>, Failure> {
    let not_found = || {
        let message = format!("Provided external ID field does not exist or is not accessible: {field}");
        Failure::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    };
    let c = table.column(field).ok_or_else(not_found)?;
    match table.kind.properties[c].name {
        "Id" => Ok(find(table, value).into_iter().collect()),
        "External_Id__c" => Ok(table
            .records
            .iter()
            .filter(|(_, rec)| rec.archived.is_none() && rec.values[c].as_deref() == Some(value))
            .map(|(id, _)| *id)
            .collect()),
        _ => Err(not_found()),
    }
}

/// An upsert of table `t` by external id: a create or an update, and whether it creates.
pub fn check_upsert(tables: &[Table], t: usize, field: &str, value: &str, fields: &Value) -> Result<(Change, bool), Failure> {
    let table = &tables[t];
    match by_external_id(table, field, value)?.as_slice() {
        [] => {
            let mut fields = fields.clone();
            if let (Value::Object(map), Some(c)) = (&mut fields, table.column(field)) {
                map.insert(table.kind.properties[c].name.to_string(), Value::String(value.to_string()));
            }
            Ok((check_create(tables, t, &fields)?, true))
        }
        [one] => Ok((check_update(tables, t, &table.kind.show_id(*one), fields)?, false)),
        many => {
            let message = format!("{} records match {field} = {value}", many.len());
            Err(Failure::new(StatusCode::MULTIPLE_CHOICES, "DUPLICATE_EXTERNAL_ID", message))
        }
    }
}

/// Runs `check` on the tables, applies its change and saves it; answers with `reply`.
async fn write(
    app: &App,
    object: &str,
    check: impl FnOnce(&[Table], usize) -> Result<(Change, bool), Failure>,
    reply: impl FnOnce(&Table, u64, bool) -> Response,
) -> Response {
    let (t, id, response) = {
        let mut tables = app.records.tables.write().expect("tables lock");
        let t = match table_index(&tables, object, StatusCode::NOT_FOUND) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let (change, created) = match check(&tables, t) {
            Ok(c) => c,
            Err(f) => return f.response(),
        };
        let (t, id) = apply(&mut tables, change);
        (t, id, reply(&tables[t], id, created))
    };
    app.records.save(t, &[id]).await;
    response
}

/// `POST /sobjects/{Obj}`: 201 `{id, success, errors}`.
pub async fn create(Shared(app): Shared<App>, Path((_, object)): Path<(String, String)>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(f) => return f.response(),
    };
    let check = |tables: &[Table], t| Ok((check_create(tables, t, &body)?, true));
    let reply = |table: &Table, id, _| {
        (
            StatusCode::CREATED,
            Json(json!({"id": table.kind.show_id(id), "success": true, "errors": []})),
        )
            .into_response()
    };
    write(&app, &object, check, reply).await
}

/// `PATCH /sobjects/{Obj}/{id}`: 204.
pub async fn update(Shared(app): Shared<App>, Path((_, object, id)): Path<(String, String, String)>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(f) => return f.response(),
    };
    let check = |tables: &[Table], t| Ok((check_update(tables, t, &id, &body)?, false));
    write(&app, &object, check, |_, _, _| StatusCode::NO_CONTENT.into_response()).await
}

/// `DELETE /sobjects/{Obj}/{id}`: 204; the record stays visible to `queryAll` as deleted.
pub async fn delete(Shared(app): Shared<App>, Path((_, object, id)): Path<(String, String, String)>) -> Response {
    let check = |tables: &[Table], t| Ok((check_delete(tables, t, &id)?, false));
    write(&app, &object, check, |_, _, _| StatusCode::NO_CONTENT.into_response()).await
}

/// `PATCH /sobjects/{Obj}/{Field}/{value}`: 201 created, 200 updated (with `created`).
pub async fn upsert(
    Shared(app): Shared<App>,
    Path((_, object, field, value)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(f) => return f.response(),
    };
    let check = |tables: &[Table], t| check_upsert(tables, t, &field, &value, &body);
    let reply = |table: &Table, id, created| {
        let status = if created { StatusCode::CREATED } else { StatusCode::OK };
        (
            status,
            Json(json!({"id": table.kind.show_id(id), "success": true, "errors": [], "created": created})),
        )
            .into_response()
    };
    write(&app, &object, check, reply).await
}

/// The columns `?fields=A,B` asks for (all when absent).
pub fn fields_param(table: &Table, raw: Option<&str>) -> Result<Vec<usize>, Failure> {
    let asked = raw
        .and_then(|raw| {
            form_urlencoded::parse(raw.as_bytes())
                .find(|(k, _)| k == "fields")
                .map(|(_, v)| v.into_owned())
        })
        .filter(|f| !f.trim().is_empty());
    match asked {
        None => Ok((0..table.kind.properties.len()).collect()),
        Some(list) => list
            .split(',')
            .map(|name| {
                let name = name.trim();
                table.column(name).ok_or_else(|| {
                    let message = format!("No such column '{name}' on entity '{}'", table.kind.name);
                    Failure::new(StatusCode::BAD_REQUEST, "INVALID_FIELD", message)
                })
            })
            .collect(),
    }
}

/// Reads one record of `object` that `locate` finds.
fn read_one(app: &App, version: &str, object: &str, raw: Option<String>, locate: impl FnOnce(&Table) -> Result<u64, Failure>) -> Response {
    let tables = app.records.tables.read().expect("tables lock");
    let t = match table_index(&tables, object, StatusCode::NOT_FOUND) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let table = &tables[t];
    let found = locate(table).and_then(|n| Ok((n, fields_param(table, raw.as_deref())?)));
    match found {
        Ok((n, columns)) => exact(table, &show(table, n, &table.records[&n], &columns, version)),
        Err(f) => f.response(),
    }
}

/// `GET /sobjects/{Obj}/{id}?fields=A,B`.
pub async fn read(
    Shared(app): Shared<App>,
    Path((version, object, id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    read_one(&app, &version, &object, raw, |table| find(table, &id))
}

/// `GET /sobjects/{Obj}/{Field}/{value}`: by external id.
pub async fn read_by(
    Shared(app): Shared<App>,
    Path((version, object, field, value)): Path<(String, String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    read_one(&app, &version, &object, raw, |table| {
        match by_external_id(table, &field, &value)?.as_slice() {
            [one] => Ok(*one),
            [] => Err(Failure::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The requested resource does not exist",
            )),
            _ => Err(Failure::new(
                StatusCode::MULTIPLE_CHOICES,
                "DUPLICATE_EXTERNAL_ID",
                format!("several records match {field} = {value}"),
            )),
        }
    })
}
