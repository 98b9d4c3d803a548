//! The Salesforce flavor: the REST API under `/services/data/vXX.X/` for any version — SOQL
//! `query` / `queryAll` with `nextRecordsUrl` paging (`salesforce/query.rs`), describe, sObject
//! rows, upsert by external id and sObject Collections (`salesforce/rows.rs`,
//! `collections.rs`), Bulk API 2.0 query jobs (`bulk.rs`), and `/services/oauth2/userinfo` naming
//! the integration user the token stands for (the first user) — with
//! Salesforce's error arrays, `Sforce-Limit-Info` and `REQUEST_LIMIT_EXCEEDED`; plus the shared
//! admin endpoints. Trailing slashes are tolerated, as simple-salesforce sends both forms.
// Helpers return the early answer of a handler as their error: a whole response, by design.
#![allow(clippy::result_large_err)]

mod bulk;
mod collections;
pub mod ids;
pub mod objects;
mod query;
mod replication;
mod rows;

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State as Shared};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Map, Value, json};

use super::store::{Records, Table};
use super::{Options, Refused, admin};

/// Records in one sObject Collections call at most.
pub const COLLECTION_MAX: usize = 200;
/// The maximum `Sforce-Limit-Info` reports when the daily allowance is off (`--daily-limit 0`).
pub const UNLIMITED_DAILY: u64 = 1_000_000_000;

/// The flavor's records, open query cursors and Bulk API query jobs.
pub struct State {
    pub records: Records,
    cursors: Mutex<query::Cursors>,
    jobs: Mutex<bulk::Jobs>,
}

type App = Arc<State>;

impl State {
    /// Seeds the records, or loads them from `--data` when the file already holds some.
    pub async fn open(options: &Options) -> anyhow::Result<State> {
        let seed = |tables: &mut [Table]| objects::seed(tables, options.seed, super::store::SEED_EPOCH_MS);
        let (records, _) = Records::open(options.data.as_deref(), objects::object_types(), seed).await?;
        Ok(State {
            records,
            cursors: Mutex::new(query::Cursors::default()),
            jobs: Mutex::new(bulk::Jobs::default()),
        })
    }
}

/// Adds `path` and `path/`.
fn both(router: axum::Router<App>, path: &str, handler: MethodRouter<App>) -> axum::Router<App> {
    router.route(path, handler.clone()).route(&format!("{path}/"), handler)
}

pub fn routes() -> axum::Router<App> {
    let at = |path: &str| format!("/services/data/{{version}}{path}");
    let mut router = both(axum::Router::new(), "/services/data", get(versions));
    router = both(router, "/services/oauth2/userinfo", get(userinfo));
    for (path, handler) in [
        (at(""), get(resources)),
        (at("/sobjects"), get(describe_global)),
        (at("/sobjects/{object}"), get(describe_basic).post(rows::create)),
        (at("/sobjects/{object}/describe"), get(describe)),
        (at("/sobjects/{object}/updated"), get(replication::updated)),
        (at("/sobjects/{object}/deleted"), get(replication::deleted)),
        (
            at("/sobjects/{object}/{id}"),
            get(rows::read).patch(rows::update).delete(rows::delete),
        ),
        (at("/sobjects/{object}/{field}/{value}"), get(rows::read_by).patch(rows::upsert)),
        (at("/query"), get(query::query)),
        (at("/queryAll"), get(query::query_all)),
        (at("/query/{locator}"), get(query::more)),
        (at("/queryAll/{locator}"), get(query::more)),
        (
            at("/composite/sobjects"),
            post(rows::collection_create)
                .patch(rows::collection_update)
                .delete(rows::collection_delete),
        ),
        (
            at("/composite/sobjects/{object}"),
            get(rows::collection_read).post(rows::collection_read),
        ),
        (
            at("/composite/sobjects/{object}/{field}"),
            axum::routing::patch(rows::collection_upsert),
        ),
        (at("/jobs/query"), get(bulk::list).post(bulk::create)),
        (at("/jobs/query/{job}"), get(bulk::get).patch(bulk::abort).delete(bulk::delete)),
        (at("/jobs/query/{job}/results"), get(bulk::results)),
    ] {
        router = both(router, &path, handler);
    }
    router
        .merge(admin::routes("salesforce", |state: &State| &state.records))
        .fallback(|| async { not_found() })
        .layer(axum::middleware::from_fn(check_version))
}

/// Salesforce's error body: an array of `{message, errorCode}`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!([{"message": message, "errorCode": code}]))).into_response()
}

/// The answer for a path that names nothing.
fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", "The requested resource does not exist")
}

/// The 403 Salesforce answers when an org's allowance is spent (it has no 429).
pub fn limited(refused: Refused) -> Response {
    let message = match refused {
        Refused::Daily => "TotalRequests Limit exceeded.",
        Refused::TenSecondly | Refused::Secondly => "ConcurrentPerOrgLongTxn Limit exceeded.",
    };
    error(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", message)
}

/// The `errorCode` of an injected error status.
pub fn fault_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        503 => "SERVER_UNAVAILABLE",
        404 => "NOT_FOUND",
        403 => "INSUFFICIENT_ACCESS",
        401 => "INVALID_SESSION_ID",
        500..=599 => "UNKNOWN_EXCEPTION",
        _ => "BAD_REQUEST",
    }
}

/// The `Sforce-Limit-Info` value after `used` requests today.
pub fn usage(used: u64, daily: u64) -> String {
    let max = if daily == 0 { UNLIMITED_DAILY } else { daily };
    format!("api-usage={used}/{max}")
}

/// Refuses a path whose version segment is not `vNN.N`.
async fn check_version(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let version = req
        .uri()
        .path()
        .strip_prefix("/services/data/")
        .and_then(|rest| rest.split('/').next());
    match version {
        Some(v) if !v.is_empty() && parse_version(v).is_none() => not_found(),
        _ => next.run(req).await,
    }
}

fn parse_version(v: &str) -> Option<f64> {
    let n: f64 = v.strip_prefix('v')?.parse().ok()?;
    (20.0..=99.0).contains(&n).then_some(n)
}

/// Release names of API versions 50.0 (Winter '21) to 66.0 (Spring '26).
async fn versions() -> Response {
    let seasons = ["Winter", "Spring", "Summer"];
    let list: Vec<Value> = (50..=66)
        .map(|v: i64| {
            let (season, year) = (seasons[(v - 50).rem_euclid(3) as usize], 21 + (v - 50).div_euclid(3));
            json!({"label": format!("{season} '{year}"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")})
        })
        .collect();
    Json(list).into_response()
}

/// `GET /services/oauth2/userinfo`: the user the token stands for, the seed's first user (the
/// integration user), in the OpenID Connect shape Salesforce answers.
async fn userinfo(Shared(app): Shared<App>) -> Response {
    let tables = app.records.tables.read().expect("tables lock");
    let user = tables
        .iter()
        .find(|t| t.kind.name == "User")
        .and_then(|t| t.records.iter().find(|(_, r)| r.archived.is_none()).map(|(id, rec)| (t, *id, rec)));
    let Some((table, id, rec)) = user else {
        return error(StatusCode::FORBIDDEN, "Bad_OAuth_Token", "the org has no user for this token");
    };
    let user_id = table.kind.show_id(id);
    let org = ids::show("00D", 1);
    let value = |name: &str| table.value(id, rec, name).unwrap_or_default();
    Json(json!({
        "sub": format!("https://login.salesforce.com/id/{org}/{user_id}"),
        "user_id": user_id,
        "organization_id": org,
        "preferred_username": value("Username"),
        "email": value("Email"),
        "name": format!("{} {}", value("FirstName"), value("LastName")),
        "active": value("IsActive") == "true",
        "user_type": "STANDARD",
    }))
    .into_response()
}

async fn resources(Path(version): Path<String>) -> Response {
    let base = format!("/services/data/{version}");
    let map: Map<String, Value> = ["sobjects", "query", "queryAll", "composite"]
        .iter()
        .map(|r| (r.to_string(), Value::String(format!("{base}/{r}"))))
        .collect();
    Json(map).into_response()
}

/// The table an API object name (any case) names; `INVALID_TYPE`/`NOT_FOUND` otherwise.
fn table_index(tables: &[Table], object: &str, status: StatusCode) -> Result<usize, Response> {
    tables
        .iter()
        .position(|t| t.kind.name.eq_ignore_ascii_case(object))
        .ok_or_else(|| {
            let code = if status == StatusCode::NOT_FOUND { "NOT_FOUND" } else { "INVALID_TYPE" };
            error(
                status,
                code,
                &format!(
                    "sObject type '{object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
                ),
            )
        })
}

/// An object's summary, as global describe lists it.
fn summary(table: &Table, version: &str) -> Value {
    let (name, url) = (table.kind.name, format!("/services/data/{version}/sobjects/{}", table.kind.name));
    let plural = if name.ends_with('s') {
        format!("{name}es")
    } else {
        format!("{name}s")
    };
    json!({
        "name": name, "label": name, "labelPlural": plural, "keyPrefix": table.kind.type_id,
        "queryable": true, "createable": table.kind.createable, "updateable": true,
        "deletable": table.kind.createable, "replicateable": true, "retrieveable": true,
        "searchable": table.kind.createable, "custom": false, "layoutable": true,
        "urls": {"sobject": url, "describe": format!("{url}/describe"), "rowTemplate": format!("{url}/{{ID}}")},
    })
}

async fn describe_global(Shared(app): Shared<App>, Path(version): Path<String>) -> Response {
    let tables = app.records.tables.read().expect("tables lock");
    let sobjects: Vec<Value> = tables.iter().map(|t| summary(t, &version)).collect();
    Json(json!({"encoding": "UTF-8", "maxBatchSize": COLLECTION_MAX, "sobjects": sobjects})).into_response()
}

async fn describe_basic(Shared(app): Shared<App>, Path((version, object)): Path<(String, String)>) -> Response {
    let tables = app.records.tables.read().expect("tables lock");
    match table_index(&tables, &object, StatusCode::NOT_FOUND) {
        Ok(t) => Json(json!({"objectDescribe": summary(&tables[t], &version), "recentItems": []})).into_response(),
        Err(r) => r,
    }
}

async fn describe(Shared(app): Shared<App>, Path((version, object)): Path<(String, String)>) -> Response {
    let tables = app.records.tables.read().expect("tables lock");
    let t = match table_index(&tables, &object, StatusCode::NOT_FOUND) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let table = &tables[t];
    let fields: Vec<Value> = table
        .kind
        .properties
        .iter()
        .map(|p| {
            let kind = objects::field_type(p);
            let external = p.name == "External_Id__c";
            let writable = !p.system;
            json!({
                "name": p.name, "label": p.label, "type": kind, "length": if kind == "string" || kind == "textarea" { 255 } else { 0 },
                "createable": writable && table.kind.createable, "updateable": writable,
                "nillable": !p.system && !table.kind.required.contains(&p.name) && kind != "boolean",
                "externalId": external, "idLookup": external || p.name == "Id", "unique": external,
                "calculated": false, "custom": p.name.ends_with("__c"), "defaultedOnCreate": p.system || kind == "boolean",
                "referenceTo": objects::reference_to(p.name).map_or(vec![], |o| vec![o]),
                "relationshipName": objects::reference_to(p.name).map(|_| p.name.trim_end_matches("Id")),
                "picklistValues": [], "filterable": true, "sortable": true, "soapType": soap_type(kind),
            })
        })
        .collect();
    let mut out = summary(table, &version);
    out["fields"] = Value::Array(fields);
    out["childRelationships"] = json!([]);
    out["recordTypeInfos"] = json!([]);
    Json(out).into_response()
}

fn soap_type(kind: &str) -> &'static str {
    match kind {
        "id" | "reference" => "tns:ID",
        "boolean" => "xsd:boolean",
        "int" => "xsd:int",
        "currency" => "xsd:double",
        "date" => "xsd:date",
        "datetime" => "xsd:dateTime",
        _ => "xsd:string",
    }
}

/// A field's value as JSON: numbers and booleans typed, the rest strings, missing ones null.
fn json_value(table: &Table, id: u64, rec: &super::store::Rec, column: usize) -> Value {
    let Some(text) = table.get(id, rec, column) else {
        return Value::Null;
    };
    match table.kind.properties[column].kind {
        super::store::Kind::Boolean => Value::Bool(text == "true"),
        // A number longer than an f64 holds stays text here; [`exact`] sends it as a number.
        super::store::Kind::Number => crate::exact_json::number(&text).unwrap_or(Value::String(text)),
        _ => Value::String(text),
    }
}

/// A JSON answer holding records of `table`, whose Number fields are written with every digit
/// stored (18-digit Number and Currency values are longer than an f64 holds).
fn exact(table: &Table, body: &Value) -> Response {
    let number = |key: &str| table.property(key).is_some_and(|p| p.kind == super::store::Kind::Number);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        crate::exact_json::write(body, &number),
    )
        .into_response()
}

/// A record as the REST API shows it: `attributes` and the chosen fields.
fn show(table: &Table, id: u64, rec: &super::store::Rec, columns: &[usize], version: &str) -> Value {
    let mut out = Map::with_capacity(columns.len() + 1);
    let name = table.kind.name;
    out.insert(
        "attributes".into(),
        json!({"type": name, "url": format!("/services/data/{version}/sobjects/{name}/{}", table.kind.show_id(id))}),
    );
    for &c in columns {
        out.insert(table.kind.properties[c].name.to_string(), json_value(table, id, rec, c));
    }
    Value::Object(out)
}
