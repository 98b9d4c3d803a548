//! The HubSpot flavor: CRM v3 objects (list, get, create, update, archive, batch read / create /
//! update / upsert / archive, search), the properties API, HubSpot's error bodies and rate-limit
//! answers; plus the admin endpoints `/_sandbox/state` and `/_sandbox/traffic`.
// Helpers return the early answer of a handler as their error: a whole response, by design.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::admin;
use super::associations::{self, Associations};
use super::store::{self, Kind, Rec, Records, Table, iso_ms, now_ms, parse_ms};
use super::{Options, Refused, correlation_id};

/// Inputs allowed in one batch request.
pub const BATCH_MAX: usize = 100;
/// Records per list page at most.
pub const LIST_MAX: usize = 100;
/// Records per search page at most, and the most a search pages through.
pub const SEARCH_MAX: usize = 200;
pub const SEARCH_TOTAL_MAX: usize = 10_000;

/// The flavor's records.
pub struct State {
    pub records: Records,
    assoc: RwLock<Associations>,
    /// Account users for role swaps (`/settings/v3/users`), kept in the `--data` file too.
    users: RwLock<BTreeMap<u64, User>>,
}

type App = Arc<State>;

impl State {
    /// Seeds the records, or loads them from `--data` when the file already holds some.
    pub async fn open(options: &Options) -> anyhow::Result<State> {
        let seed = |tables: &mut [Table]| store::seed(tables, options.seed, store::SEED_EPOCH_MS);
        let (records, loaded) = Records::open(options.data.as_deref(), store::object_types(), seed).await?;
        let assoc = match &records.persist {
            Some(p) if loaded => p.load_associations().await?,
            persist => {
                let assoc = {
                    let tables = records.tables.read().expect("tables lock");
                    let count = |name: &str| tables.iter().find(|t| t.kind.name == name).map_or(0, |t| t.records.len() as u64);
                    Associations::seed(count("contacts"), count("deals"), count("companies"))
                };
                if let Some(p) = persist {
                    p.save_associations(assoc.all().collect(), Vec::new()).await?;
                }
                assoc
            }
        };
        let saved = match &records.persist {
            Some(p) => p.load_users().await?,
            None => Vec::new(),
        };
        let users: BTreeMap<u64, User> = if saved.is_empty() {
            let seeded: BTreeMap<u64, User> = crate::generate::OWNERS
                .iter()
                .enumerate()
                .map(|(i, owner)| {
                    (
                        1001 + i as u64,
                        (format!("{owner}@example.com"), Some(ROLES[1].0.to_string()), i == 0),
                    )
                })
                .collect();
            if let Some(p) = &records.persist {
                p.save_users(seeded.iter().map(|(id, u)| (*id, Some(u.clone()))).collect()).await?;
            }
            seeded
        } else {
            saved.into_iter().collect()
        };
        Ok(State {
            records,
            assoc: RwLock::new(assoc),
            users: RwLock::new(users),
        })
    }
}

pub fn routes() -> axum::Router<App> {
    axum::Router::new()
        .route("/crm/v3/objects/{object}", get(list).post(create))
        .route("/crm/v3/objects/{object}/search", post(search))
        .route("/crm/v3/objects/{object}/batch/{op}", post(batch))
        .route("/crm/v3/objects/{object}/{id}", get(read).patch(update).delete(archive))
        .route("/crm/v3/properties/{object}", get(properties))
        .route("/crm/v3/properties/{object}/{name}", get(property))
        .route("/crm/v4/objects/{object}/{id}/associations/{to}", get(associations_of))
        .route(
            "/crm/v4/objects/{object}/{id}/associations/default/{to}/{to_id}",
            axum::routing::put(associate_one),
        )
        .route(
            "/crm/v4/objects/{object}/{id}/associations/{to}/{to_id}",
            axum::routing::put(associate_one).delete(dissociate_one),
        )
        .route("/crm/v4/associations/{from}/{to}/batch/{op}", post(associations_batch))
        .route("/crm/v4/associations/{from}/{to}/batch/associate/default", post(associate_default))
        .route("/settings/v3/users", get(users_list))
        .route("/settings/v3/users/", get(users_list))
        .route("/settings/v3/users/roles", get(roles))
        .route("/settings/v3/users/{id}", get(user_get).put(user_put).delete(user_delete))
        .merge(admin::routes("hubspot", |state: &State| &state.records))
}

/// HubSpot's error body.
pub fn error(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"status": "error", "message": message, "correlationId": correlation_id(), "category": category})),
    )
        .into_response()
}

fn error_with(status: StatusCode, category: &str, message: &str, errors: Vec<Value>) -> Response {
    (
        status,
        Json(json!({"status": "error", "message": message, "correlationId": correlation_id(), "category": category, "errors": errors})),
    )
        .into_response()
}

/// The 429 answer for a refused request, with the body fields clients key their retries on.
pub fn rate_limited(refused: Refused) -> Response {
    let (message, policy) = match refused {
        Refused::TenSecondly => ("You have reached your ten_secondly_rolling limit.", "TEN_SECONDLY_ROLLING"),
        Refused::Daily => ("You have reached your daily limit.", "DAILY"),
        Refused::Secondly => ("You have reached your secondly limit.", "SECONDLY"),
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(
            json!({"status": "error", "message": message, "errorType": "RATE_LIMIT", "correlationId": correlation_id(),
                    "policyName": policy, "requestId": correlation_id()}),
        ),
    )
        .into_response()
}

fn table_index(tables: &[Table], object: &str) -> Result<usize, Response> {
    tables
        .iter()
        .position(|t| t.kind.name == object || t.kind.type_id == object || t.kind.name.strip_suffix('s') == Some(object))
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &format!("Unable to infer object type from: {object}"),
            )
        })
}

/// Query parameters; `properties` in both the repeated and the comma-separated form.
struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    fn parse(raw: Option<String>) -> Query {
        let raw = raw.unwrap_or_default();
        Query {
            pairs: form_urlencoded::parse(raw.as_bytes()).into_owned().collect(),
        }
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    fn list(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string))
            .collect()
    }
    fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// The properties to return: those asked for (that exist), or the object's defaults; the id,
/// create and modified dates always.
fn wanted(table: &Table, asked: &[String], defaults: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = if asked.is_empty() {
        defaults.iter().map(|s| s.to_string()).collect()
    } else {
        asked.iter().filter(|p| table.property(p).is_some()).cloned().collect()
    };
    for always in ["createdate", table.kind.modified, "hs_object_id"] {
        if !out.iter().any(|p| p == always) {
            out.push(always.to_string());
        }
    }
    out
}

/// A record as HubSpot shows it (`SimplePublicObject`).
fn show(table: &Table, id: u64, rec: &Rec, props: &[String]) -> Value {
    let properties: Map<String, Value> = props
        .iter()
        .map(|p| (p.clone(), table.value(id, rec, p).map_or(Value::Null, Value::String)))
        .collect();
    let mut out = json!({
        "id": id.to_string(),
        "properties": properties,
        "createdAt": iso_ms(rec.created),
        "updatedAt": iso_ms(rec.updated),
        "archived": rec.archived.is_some(),
    });
    if let Some(at) = rec.archived {
        out["archivedAt"] = Value::String(iso_ms(at));
    }
    out
}

fn host(headers: &HeaderMap) -> String {
    headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string()
}

async fn list(Shared(app): Shared<App>, Path(object): Path<String>, RawQuery(raw): RawQuery, request_headers: HeaderMap) -> Response {
    let q = Query::parse(raw);
    let tables = app.records.tables.read().expect("tables lock");
    let t = match table_index(&tables, &object) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let table = &tables[t];
    let limit = match q.get("limit").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if n >= 1 => n.min(LIST_MAX),
        Some(_) => return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "limit must be a positive whole number"),
    };
    let after: u64 = match q.get("after").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "Invalid input JSON: `after` is not a valid paging cursor",
            );
        }
    };
    let archived = q.flag("archived");
    let props = wanted(table, &q.list("properties"), table.kind.defaults);
    let mut results = Vec::with_capacity(limit);
    let mut next = None;
    for (id, rec) in table.records.range(after.saturating_add(u64::from(after > 0))..) {
        if rec.archived.is_some() != archived {
            continue;
        }
        if results.len() == limit {
            next = Some(*id);
            break;
        }
        results.push(show(table, *id, rec, &props));
    }
    let mut body = json!({"results": results});
    if let Some(next) = next {
        // The cursor is the last id returned; the next page starts after it.
        let last = next - 1;
        let cursor = table.records.range(..next).next_back().map_or(last, |(id, _)| *id);
        body["paging"] = json!({"next": {"after": cursor.to_string(),
            "link": format!("http://{}/crm/v3/objects/{}?after={cursor}&limit={limit}", host(&request_headers), table.kind.name)}});
    }
    Json(body).into_response()
}

/// Finds a record by id, or by a unique property (`idProperty`).
fn find(table: &Table, key: &str, id_property: Option<&str>) -> Option<u64> {
    match id_property {
        None | Some("hs_object_id") => key.parse().ok().filter(|id| table.records.contains_key(id)),
        Some(p) => table
            .records
            .iter()
            .find(|(id, rec)| table.value(**id, rec, p).as_deref() == Some(key))
            .map(|(id, _)| *id),
    }
}

fn not_found(table: &Table, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "OBJECT_NOT_FOUND",
        &format!("resource not found: no {} with id {id}", table.kind.name.trim_end_matches('s')),
    )
}

async fn read(Shared(app): Shared<App>, Path((object, id)): Path<(String, String)>, RawQuery(raw): RawQuery) -> Response {
    let q = Query::parse(raw);
    let tables = app.records.tables.read().expect("tables lock");
    let t = match table_index(&tables, &object) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let table = &tables[t];
    let archived = q.flag("archived");
    match find(table, &id, q.get("idProperty")) {
        Some(n) if table.records[&n].archived.is_some() == archived => {
            let props = wanted(table, &q.list("properties"), table.kind.defaults);
            Json(show(table, n, &table.records[&n], &props)).into_response()
        }
        _ => not_found(table, &id),
    }
}

fn not_an_object() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        "Invalid input JSON: the body must be a JSON object",
    )
}

fn bad_properties(names: &[String]) -> Response {
    let errors: Vec<Value> = names
        .iter()
        .map(|n| json!({"message": format!("Property \"{n}\" does not exist or is read-only"), "code": "PROPERTY_DOESNT_EXIST", "in": n}))
        .collect();
    error_with(
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        &format!("Property values were not valid: {}", names.join(", ")),
        errors,
    )
}

fn properties_of(body: &Value) -> Result<&Map<String, Value>, Response> {
    match &body["properties"] {
        Value::Object(map) => Ok(map),
        Value::Null => Err(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Invalid input JSON: `properties` is required",
        )),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Invalid input JSON: `properties` must be an object",
        )),
    }
}

async fn create(Shared(app): Shared<App>, Path(object): Path<String>, body: Option<Json<Value>>) -> Response {
    let Some(Json(body)) = body else {
        return not_an_object();
    };
    let (t, id, shown) = {
        let mut tables = app.records.tables.write().expect("tables lock");
        let t = match table_index(&tables, &object) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let table = &mut tables[t];
        let props = match properties_of(&body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let mut rec = table.blank(now_ms());
        if let Err(bad) = table.set(&mut rec, props) {
            return bad_properties(&bad);
        }
        let id = table.add(rec);
        let asked: Vec<String> = props.keys().cloned().collect();
        let shown = show(table, id, &table.records[&id], &wanted(table, &asked, &[]));
        (t, id, shown)
    };
    app.records.save(t, &[id]).await;
    (StatusCode::CREATED, Json(shown)).into_response()
}

async fn update(
    Shared(app): Shared<App>,
    Path((object, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    body: Option<Json<Value>>,
) -> Response {
    let Some(Json(body)) = body else {
        return not_an_object();
    };
    let q = Query::parse(raw);
    let (t, n, shown) = {
        let mut tables = app.records.tables.write().expect("tables lock");
        let t = match table_index(&tables, &object) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let table = &mut tables[t];
        let Some(n) = find(table, &id, q.get("idProperty")).filter(|n| table.records[n].archived.is_none()) else {
            return not_found(table, &id);
        };
        let props = match properties_of(&body) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let mut rec = table.records[&n].clone();
        if let Err(bad) = table.set(&mut rec, props) {
            return bad_properties(&bad);
        }
        rec.updated = now_ms().max(rec.updated + 1);
        let asked: Vec<String> = props.keys().cloned().collect();
        let shown = show(table, n, &rec, &wanted(table, &asked, &[]));
        table.records.insert(n, rec);
        (t, n, shown)
    };
    app.records.save(t, &[n]).await;
    Json(shown).into_response()
}

async fn archive(Shared(app): Shared<App>, Path((object, id)): Path<(String, String)>) -> Response {
    let (t, n) = {
        let mut tables = app.records.tables.write().expect("tables lock");
        let t = match table_index(&tables, &object) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let table = &mut tables[t];
        // Archiving an archived or unknown record is not an error in HubSpot.
        let Some(n) = find(table, &id, None) else {
            return StatusCode::NO_CONTENT.into_response();
        };
        let rec = table.records.get_mut(&n).expect("found");
        if rec.archived.is_none() {
            let now = now_ms().max(rec.updated + 1);
            rec.archived = Some(now);
            rec.updated = now;
        }
        (t, n)
    };
    app.records.save(t, &[n]).await;
    StatusCode::NO_CONTENT.into_response()
}

fn batch_body(results: Vec<Value>, errors: Vec<Value>, started: i64, ok: StatusCode) -> Response {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "requestedAt": iso_ms(started),
        "startedAt": iso_ms(started),
        "completedAt": iso_ms(now_ms()),
    });
    if errors.is_empty() {
        (ok, Json(body)).into_response()
    } else {
        body["numErrors"] = json!(errors.len());
        body["errors"] = Value::Array(errors);
        (StatusCode::MULTI_STATUS, Json(body)).into_response()
    }
}

fn missing(table: &Table, ids: Vec<String>) -> Value {
    json!({"status": "error", "category": "OBJECT_NOT_FOUND",
           "message": format!("Could not get some {} objects, they may be deleted or not exist. Check that ids are valid.", table.kind.name.trim_end_matches('s').to_uppercase()),
           "context": {"ids": ids}, "errors": [], "links": {}})
}

async fn batch(
    Shared(app): Shared<App>,
    Path((object, op)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    body: Option<Json<Value>>,
) -> Response {
    let Some(Json(body)) = body else {
        return not_an_object();
    };
    let Some(inputs) = body["inputs"].as_array() else {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Invalid input JSON: `inputs` is required",
        );
    };
    if inputs.len() > BATCH_MAX {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            &format!(
                "Batch input limit exceeded: {} inputs given, at most {BATCH_MAX} are allowed",
                inputs.len()
            ),
        );
    }
    let q = Query::parse(raw);
    let started = now_ms();
    let mut touched = Vec::new();
    let (t, response) = {
        let mut tables = app.records.tables.write().expect("tables lock");
        let t = match table_index(&tables, &object) {
            Ok(t) => t,
            Err(r) => return r,
        };
        let table = &mut tables[t];
        let key = |input: &Value| match &input["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let response = match op.as_str() {
            "read" => {
                let asked: Vec<String> = body["properties"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                    .unwrap_or_default();
                let props = wanted(table, &asked, table.kind.defaults);
                let archived = q.flag("archived");
                let id_property = body["idProperty"].as_str();
                let (mut results, mut absent) = (Vec::new(), Vec::new());
                for input in inputs {
                    let k = key(input);
                    match find(table, &k, id_property).filter(|n| table.records[n].archived.is_some() == archived) {
                        Some(n) => results.push(show(table, n, &table.records[&n], &props)),
                        None => absent.push(k),
                    }
                }
                let errors = if absent.is_empty() { vec![] } else { vec![missing(table, absent)] };
                batch_body(results, errors, started, StatusCode::OK)
            }
            "create" => {
                let mut recs = Vec::new();
                for input in inputs {
                    let props = match properties_of(input) {
                        Ok(p) => p,
                        Err(r) => return r,
                    };
                    let mut rec = table.blank(started);
                    if let Err(bad) = table.set(&mut rec, props) {
                        return bad_properties(&bad);
                    }
                    recs.push((rec, props.keys().cloned().collect::<Vec<_>>()));
                }
                let mut results = Vec::new();
                for (rec, asked) in recs {
                    let id = table.add(rec);
                    results.push(show(table, id, &table.records[&id], &wanted(table, &asked, &[])));
                    touched.push(id);
                }
                batch_body(results, vec![], started, StatusCode::CREATED)
            }
            "update" | "upsert" => {
                let (mut results, mut absent) = (Vec::new(), Vec::new());
                for input in inputs {
                    let props = match properties_of(input) {
                        Ok(p) => p,
                        Err(r) => return r,
                    };
                    let k = key(input);
                    let id_property = input["idProperty"].as_str();
                    let found = find(table, &k, id_property).filter(|n| table.records[n].archived.is_none());
                    let asked: Vec<String> = props.keys().cloned().collect();
                    match found {
                        Some(n) => {
                            let mut rec = table.records[&n].clone();
                            if let Err(bad) = table.set(&mut rec, props) {
                                return bad_properties(&bad);
                            }
                            rec.updated = started.max(rec.updated + 1);
                            let mut shown = show(table, n, &rec, &wanted(table, &asked, &[]));
                            if op == "upsert" {
                                shown["new"] = Value::Bool(false);
                            }
                            results.push(shown);
                            table.records.insert(n, rec);
                            touched.push(n);
                        }
                        None if op == "upsert" => {
                            let mut rec = table.blank(started);
                            if let Err(bad) = table.set(&mut rec, props) {
                                return bad_properties(&bad);
                            }
                            if let Some(p) = id_property.filter(|p| *p != "hs_object_id") {
                                let mut by = Map::new();
                                by.insert(p.to_string(), Value::String(k.clone()));
                                if let Err(bad) = table.set(&mut rec, &by) {
                                    return bad_properties(&bad);
                                }
                            }
                            let id = table.add(rec);
                            let mut shown = show(table, id, &table.records[&id], &wanted(table, &asked, &[]));
                            shown["new"] = Value::Bool(true);
                            results.push(shown);
                            touched.push(id);
                        }
                        None => absent.push(k),
                    }
                }
                let errors = if absent.is_empty() { vec![] } else { vec![missing(table, absent)] };
                batch_body(results, errors, started, StatusCode::OK)
            }
            "archive" => {
                for input in inputs {
                    if let Some(n) = find(table, &key(input), None) {
                        let rec = table.records.get_mut(&n).expect("found");
                        if rec.archived.is_none() {
                            let now = started.max(rec.updated + 1);
                            rec.archived = Some(now);
                            rec.updated = now;
                            touched.push(n);
                        }
                    }
                }
                StatusCode::NO_CONTENT.into_response()
            }
            other => {
                return error(
                    StatusCode::NOT_FOUND,
                    "OBJECT_NOT_FOUND",
                    &format!("no batch operation `{other}` (read, create, update, upsert, archive)"),
                );
            }
        };
        (t, response)
    };
    app.records.save(t, &touched).await;
    response
}

/// One search filter, checked against one record.
fn matches(table: &Table, id: u64, rec: &Rec, filter: &Value) -> Result<bool, String> {
    let name = filter["propertyName"].as_str().ok_or("a filter has no `propertyName`")?;
    let operator = filter["operator"].as_str().unwrap_or("EQ");
    let property = table.property(name).ok_or_else(|| format!("Property \"{name}\" does not exist"))?;
    let value = table.value(id, rec, name);
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    // Compares a record value with a filter value by the property's kind (kept times without
    // a round trip through their text).
    let have_ms = (property.kind == Kind::DateTime).then(|| table.millis(id, rec, name)).flatten();
    let cmp = |have: &str, want: &str| -> Option<std::cmp::Ordering> {
        match property.kind {
            Kind::DateTime => Some(have_ms.or_else(|| parse_ms(have))?.cmp(&parse_ms(want)?)),
            Kind::Number => have.parse::<f64>().ok()?.partial_cmp(&want.parse::<f64>().ok()?),
            _ => Some(have.to_lowercase().cmp(&want.to_lowercase())),
        }
    };
    use std::cmp::Ordering::*;
    let want = text(&filter["value"]);
    Ok(match operator {
        "HAS_PROPERTY" => value.is_some(),
        "NOT_HAS_PROPERTY" => value.is_none(),
        "IN" | "NOT_IN" => {
            let values: Vec<String> = filter["values"]
                .as_array()
                .map(|a| a.iter().filter_map(text).collect())
                .unwrap_or_default();
            let inside = value.as_deref().is_some_and(|v| values.iter().any(|w| cmp(v, w) == Some(Equal)));
            inside == (operator == "IN")
        }
        "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN" => {
            let token = want.unwrap_or_default().trim_matches('*').to_lowercase();
            let has = value.as_deref().is_some_and(|v| v.to_lowercase().contains(&token));
            has == (operator == "CONTAINS_TOKEN")
        }
        "BETWEEN" => {
            let (Some(v), Some(lo), Some(hi)) = (value.as_deref(), want, text(&filter["highValue"])) else {
                return Ok(false);
            };
            matches!(cmp(v, &lo), Some(Greater | Equal)) && matches!(cmp(v, &hi), Some(Less | Equal))
        }
        op => {
            let want = want.ok_or_else(|| format!("the {op} filter on \"{name}\" has no `value`"))?;
            let Some(v) = value.as_deref() else { return Ok(op == "NEQ") };
            let ord = cmp(v, &want);
            match op {
                "EQ" => ord == Some(Equal),
                "NEQ" => ord != Some(Equal),
                "GT" => ord == Some(Greater),
                "GTE" => matches!(ord, Some(Greater | Equal)),
                "LT" => ord == Some(Less),
                "LTE" => matches!(ord, Some(Less | Equal)),
                other => return Err(format!("unknown operator {other}")),
            }
        }
    })
}

async fn search(Shared(app): Shared<App>, Path(object): Path<String>, body: Option<Json<Value>>) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or(json!({}));
    let tables = app.records.tables.read().expect("tables lock");
    let t = match table_index(&tables, &object) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let table = &tables[t];
    let limit = body["limit"].as_u64().unwrap_or(10) as usize;
    if limit > SEARCH_MAX {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            &format!("limit must be at most {SEARCH_MAX}"),
        );
    }
    let offset: usize = match &body["after"] {
        Value::Null => 0,
        Value::String(s) => match s.parse() {
            Ok(n) => n,
            Err(_) => return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "`after` must be an integer"),
        },
        Value::Number(n) => n.as_u64().unwrap_or(0) as usize,
        _ => return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "`after` must be an integer"),
    };
    if offset + limit.max(1) > SEARCH_TOTAL_MAX {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            &format!("There was a problem with the request: search results are limited to {SEARCH_TOTAL_MAX} records; narrow the filters"),
        );
    }
    let groups: Vec<Vec<Value>> = body["filterGroups"]
        .as_array()
        .map(|gs| gs.iter().map(|g| g["filters"].as_array().cloned().unwrap_or_default()).collect())
        .unwrap_or_default();
    let mut hits: Vec<u64> = Vec::new();
    for (id, rec) in &table.records {
        if rec.archived.is_some() {
            continue;
        }
        let mut any = groups.is_empty();
        for group in &groups {
            let mut all = true;
            for filter in group {
                match matches(table, *id, rec, filter) {
                    Ok(true) => {}
                    Ok(false) => {
                        all = false;
                        break;
                    }
                    Err(message) => return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &message),
                }
            }
            if all {
                any = true;
                break;
            }
        }
        if any {
            hits.push(*id);
        }
    }
    // One sort is honoured, given as "name", "-name" or {propertyName, direction}.
    if let Some(sort) = body["sorts"].as_array().and_then(|s| s.first()) {
        let (name, descending) = match sort {
            Value::String(s) => (s.trim_start_matches('-').to_string(), s.starts_with('-')),
            other => (
                other["propertyName"].as_str().unwrap_or("hs_object_id").to_string(),
                other["direction"].as_str() == Some("DESCENDING"),
            ),
        };
        let kind = table.property(&name).map(|p| p.kind).unwrap_or(Kind::Text);
        let key = |id: &u64| {
            let rec = &table.records[id];
            match kind {
                Kind::DateTime => (table.millis(*id, rec, &name).map(|m| m as f64), None),
                Kind::Number => (table.value(*id, rec, &name).and_then(|v| v.parse::<f64>().ok()), None),
                _ => (None, table.value(*id, rec, &name)),
            }
        };
        // Each record's key once, not once per comparison.
        let mut keyed: Vec<_> = hits.iter().map(|id| (key(id), *id)).collect();
        keyed.sort_by(|(ka, a), (kb, b)| {
            let ord = ka.0.partial_cmp(&kb.0).unwrap_or(std::cmp::Ordering::Equal).then(ka.1.cmp(&kb.1));
            let ord = if descending { ord.reverse() } else { ord };
            ord.then(a.cmp(b))
        });
        hits = keyed.into_iter().map(|(_, id)| id).collect();
    }
    let asked: Vec<String> = body["properties"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let defaults: &[&str] = if table.kind.name == "contacts" {
        &["email", "firstname", "lastname"]
    } else {
        &[]
    };
    let props = wanted(table, &asked, defaults);
    let total = hits.len();
    let results: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(limit)
        .map(|id| show(table, *id, &table.records[id], &props))
        .collect();
    let mut out = json!({"total": total, "results": results});
    if offset + limit < total {
        out["paging"] = json!({"next": {"after": (offset + limit).to_string()}});
    }
    Json(out).into_response()
}

fn describe(table: &Table, p: &store::Property) -> Value {
    let (kind, field) = match p.kind {
        Kind::Text => (
            "string",
            if p.name == "notes" || p.name == "content" {
                "textarea"
            } else {
                "text"
            },
        ),
        Kind::Number => ("number", "number"),
        Kind::DateTime => ("datetime", "date"),
        Kind::Enumeration => ("enumeration", "select"),
        Kind::Boolean => ("bool", "booleancheckbox"),
    };
    json!({
        "name": p.name, "label": p.label, "type": kind, "fieldType": field,
        "groupName": format!("{}information", table.kind.name.trim_end_matches('s')),
        "description": "", "options": [], "calculated": false, "hasUniqueValue": p.name == "hs_object_id",
        "hidden": false, "hubspotDefined": true, "archived": false,
        "modificationMetadata": {"archivable": false, "readOnlyDefinition": true, "readOnlyValue": p.system},
    })
}

async fn properties(Shared(app): Shared<App>, Path(object): Path<String>) -> Response {
    let tables = app.records.tables.read().expect("tables lock");
    let t = match table_index(&tables, &object) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let table = &tables[t];
    let results: Vec<Value> = table.kind.properties.iter().map(|p| describe(table, p)).collect();
    Json(json!({"results": results})).into_response()
}

async fn property(Shared(app): Shared<App>, Path((object, name)): Path<(String, String)>) -> Response {
    let tables = app.records.tables.read().expect("tables lock");
    let t = match table_index(&tables, &object) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let table = &tables[t];
    match table.property(&name) {
        Some(p) => Json(describe(table, p)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            &format!("Unable to find property {name} on object type {}", table.kind.name),
        ),
    }
}

/// The object type names of a v4 association request, normalised; the error answers otherwise.
fn association_kind(app: &App, from: &str, to: &str) -> Result<(&'static str, &'static str, u32), Response> {
    let tables = app.records.tables.read().expect("tables lock");
    let (f, t) = (table_index(&tables, from)?, table_index(&tables, to)?);
    let (from, to) = (tables[f].kind.name, tables[t].kind.name);
    match associations::type_id(from, to) {
        Some(type_id) => Ok((from, to, type_id)),
        None => Err(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            &format!("the sandbox serves contact/deal to company associations, not {from} to {to}"),
        )),
    }
}

/// Whether a live record `id` of type `object` exists.
fn live(app: &App, object: &str, id: u64) -> bool {
    let tables = app.records.tables.read().expect("tables lock");
    tables
        .iter()
        .find(|t| t.kind.name == object)
        .and_then(|t| t.records.get(&id))
        .is_some_and(|r| r.archived.is_none())
}

fn association_types(type_id: u32) -> Value {
    json!([{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": null}])
}

async fn save_associations(
    app: &App,
    add: Vec<(&'static str, &'static str, u64, u64)>,
    remove: Vec<(&'static str, &'static str, u64, u64)>,
) {
    if let Some(persist) = &app.records.persist
        && let Err(e) = persist.save_associations(add, remove).await
    {
        tracing::error!("sandbox: cannot save associations: {e}");
    }
}

/// `GET /crm/v4/objects/{t}/{id}/associations/{toT}`: pages of `limit` (default 500).
async fn associations_of(
    Shared(app): Shared<App>,
    Path((object, id, to)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (from, to, type_id) = match association_kind(&app, &object, &to) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let Some(n) = id.parse::<u64>().ok().filter(|n| live(&app, from, *n)) else {
        return error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", &format!("no {from} record with id {id}"));
    };
    let q = Query::parse(raw);
    let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(500).clamp(1, 500);
    let offset = q.get("after").and_then(|a| a.parse::<usize>().ok()).unwrap_or(0);
    let ids = app.assoc.read().expect("assoc lock").of(from, n, to);
    let results: Vec<Value> = ids
        .iter()
        .skip(offset)
        .take(limit)
        .map(|t| json!({"toObjectId": t, "associationTypes": association_types(type_id)}))
        .collect();
    let mut body = json!({"results": results});
    if offset + limit < ids.len() {
        body["paging"] = json!({"next": {"after": (offset + limit).to_string()}});
    }
    Json(body).into_response()
}

/// `PUT .../associations/default/{toT}/{toId}` (and the labelled form): associates two records.
async fn associate_one(Shared(app): Shared<App>, Path((object, id, to, to_id)): Path<(String, String, String, String)>) -> Response {
    let (from, to, type_id) = match association_kind(&app, &object, &to) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let (Some(a), Some(b)) = (
        id.parse::<u64>().ok().filter(|n| live(&app, from, *n)),
        to_id.parse::<u64>().ok().filter(|n| live(&app, to, *n)),
    ) else {
        return error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            &format!("no {from} {id} or no {to} {to_id}"),
        );
    };
    app.assoc.write().expect("assoc lock").add(from, a, to, b);
    save_associations(&app, vec![(from, to, a, b)], vec![]).await;
    (Json(json!({"status": "COMPLETE", "results": [{"from": {"id": id}, "to": {"id": to_id},
            "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}}],
            "startedAt": iso_ms(now_ms()), "completedAt": iso_ms(now_ms())})))
    .into_response()
}

/// `DELETE .../associations/{toT}/{toId}`: 204.
async fn dissociate_one(Shared(app): Shared<App>, Path((object, id, to, to_id)): Path<(String, String, String, String)>) -> Response {
    let (from, to, _) = match association_kind(&app, &object, &to) {
        Ok(k) => k,
        Err(r) => return r,
    };
    if let (Ok(a), Ok(b)) = (id.parse::<u64>(), to_id.parse::<u64>()) {
        app.assoc.write().expect("assoc lock").remove(from, a, to, b);
        save_associations(&app, vec![], vec![(from, to, a, b)]).await;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /crm/v4/associations/{fromT}/{toT}/batch/{read,create,associate/default,archive}`.
async fn associations_batch(
    Shared(app): Shared<App>,
    Path((from, to, op)): Path<(String, String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let (from, to, type_id) = match association_kind(&app, &from, &to) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let body = body.map(|Json(b)| b).unwrap_or(json!({}));
    let Some(inputs) = body["inputs"].as_array() else {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "Invalid input JSON: `inputs` is required",
        );
    };
    let limit = if op == "read" { 1000 } else { BATCH_MAX };
    if inputs.len() > limit {
        return error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            &format!(
                "Batch input limit exceeded: {} inputs given, at most {limit} are allowed",
                inputs.len()
            ),
        );
    }
    let id_of = |v: &Value| match v {
        Value::String(s) => s.parse::<u64>().ok(),
        Value::Number(n) => n.as_u64(),
        Value::Object(o) => o.get("id").and_then(|i| i.as_str().and_then(|s| s.parse().ok()).or(i.as_u64())),
        _ => None,
    };
    let started = now_ms();
    match op.as_str() {
        "read" => {
            let (mut results, mut absent) = (Vec::new(), Vec::new());
            for input in inputs {
                match id_of(&input["id"]).or(id_of(input)).filter(|n| live(&app, from, *n)) {
                    Some(n) => {
                        let to_ids = app.assoc.read().expect("assoc lock").of(from, n, to);
                        let to: Vec<Value> = to_ids
                            .iter()
                            .map(|t| json!({"toObjectId": t, "associationTypes": association_types(type_id)}))
                            .collect();
                        results.push(json!({"from": {"id": n.to_string()}, "to": to}));
                    }
                    None => absent.push(input["id"].as_str().unwrap_or_default().to_string()),
                }
            }
            let errors = if absent.is_empty() {
                vec![]
            } else {
                vec![
                    json!({"status": "error", "category": "OBJECT_NOT_FOUND", "message": format!("No {from} with these ids"),
                            "context": {"ids": absent}, "errors": [], "links": {}}),
                ]
            };
            batch_body(results, errors, started, StatusCode::OK)
        }
        "create" | "associate" | "associate/default" => {
            let mut added = Vec::new();
            let mut results = Vec::new();
            for input in inputs {
                let (Some(a), Some(b)) = (id_of(&input["from"]), id_of(&input["to"])) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        "each input needs `from.id` and `to.id`",
                    );
                };
                if !live(&app, from, a) || !live(&app, to, b) {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "VALIDATION_ERROR",
                        &format!("no {from} {a} or no {to} {b}"),
                    );
                }
                added.push((from, to, a, b));
                results.push(json!({"from": {"id": a.to_string()}, "to": {"id": b.to_string()},
                    "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}}));
            }
            {
                let mut assoc = app.assoc.write().expect("assoc lock");
                for (f, t, a, b) in &added {
                    assoc.add(f, *a, t, *b);
                }
            }
            save_associations(&app, added, vec![]).await;
            let status = if op == "create" { StatusCode::CREATED } else { StatusCode::OK };
            batch_body(results, vec![], started, status)
        }
        "archive" => {
            let mut removed = Vec::new();
            for input in inputs {
                let Some(a) = id_of(&input["from"]) else { continue };
                let targets: Vec<u64> = match &input["to"] {
                    Value::Array(list) => list.iter().filter_map(id_of).collect(),
                    other => id_of(other).into_iter().collect(),
                };
                removed.extend(targets.into_iter().map(|b| (from, to, a, b)));
            }
            {
                let mut assoc = app.assoc.write().expect("assoc lock");
                for (f, t, a, b) in &removed {
                    assoc.remove(f, *a, t, *b);
                }
            }
            save_associations(&app, vec![], removed).await;
            StatusCode::NO_CONTENT.into_response()
        }
        other => error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            &format!("no association batch operation `{other}` (read, create, associate/default, archive)"),
        ),
    }
}

/// `POST /crm/v4/associations/{fromT}/{toT}/batch/associate/default`.
async fn associate_default(app: Shared<App>, Path((from, to)): Path<(String, String)>, body: Option<Json<Value>>) -> Response {
    associations_batch(app, Path((from, to, "associate/default".to_string())), body).await
}

/// The account's roles: `(id, name)`. A freeze swaps users to the read-only role.
pub const ROLES: [(&str, &str); 3] = [("100001", "Super admin"), ("100002", "Sales rep"), ("100003", "Read only")];

/// An account user: email, role id, super admin.
type User = store::SavedUser;

fn show_user(id: u64, user: &User) -> Value {
    let mut out = json!({"id": id.to_string(), "email": user.0, "superAdmin": user.2, "secondaryTeamIds": []});
    if let Some(role) = &user.1 {
        out["roleId"] = Value::String(role.clone());
    }
    out
}

/// `GET /settings/v3/users/`.
async fn users_list(Shared(app): Shared<App>) -> Response {
    let users = app.users.read().expect("users lock");
    let results: Vec<Value> = users.iter().map(|(id, u)| show_user(*id, u)).collect();
    Json(json!({"results": results})).into_response()
}

/// `GET /settings/v3/users/roles`.
async fn roles() -> Response {
    let results: Vec<Value> = ROLES
        .iter()
        .map(|(id, name)| json!({"id": id, "name": name, "requiresBillingWrite": false}))
        .collect();
    Json(json!({"results": results})).into_response()
}

fn user_not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, "OBJECT_NOT_FOUND", &format!("no user with id {id}"))
}

async fn user_get(Shared(app): Shared<App>, Path(id): Path<String>) -> Response {
    let users = app.users.read().expect("users lock");
    match id.parse::<u64>().ok().and_then(|n| users.get(&n).map(|u| (n, u))) {
        Some((n, u)) => Json(show_user(n, u)).into_response(),
        None => user_not_found(&id),
    }
}

/// Writes a changed (or, `None`, removed) user through to the data file, if there is one.
async fn save_user(app: &App, id: u64, user: Option<User>) {
    if let Some(persist) = &app.records.persist
        && let Err(e) = persist.save_users(vec![(id, user)]).await
    {
        tracing::error!("sandbox: cannot save users: {e}");
    }
}

/// `PUT /settings/v3/users/{id}` `{roleId?, primaryTeamId?, secondaryTeamIds?}`.
async fn user_put(Shared(app): Shared<App>, Path(id): Path<String>, body: Option<Json<Value>>) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or(json!({}));
    let (n, user) = {
        let mut users = app.users.write().expect("users lock");
        let Some((n, user)) = id.parse::<u64>().ok().and_then(|n| users.get_mut(&n).map(|u| (n, u))) else {
            return user_not_found(&id);
        };
        if let Some(role) = body.get("roleId") {
            let role = role.as_str().map(str::to_string).or(role.as_u64().map(|r| r.to_string()));
            match role {
                Some(r) if ROLES.iter().any(|(id, _)| *id == r) => user.1 = Some(r),
                Some(r) => return error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &format!("no role with id {r}")),
                None => user.1 = None,
            }
        }
        (n, user.clone())
    };
    save_user(&app, n, Some(user.clone())).await;
    Json(show_user(n, &user)).into_response()
}

async fn user_delete(Shared(app): Shared<App>, Path(id): Path<String>) -> Response {
    let removed = id
        .parse::<u64>()
        .ok()
        .and_then(|n| app.users.write().expect("users lock").remove(&n).map(|_| n));
    match removed {
        Some(n) => {
            save_user(&app, n, None).await;
            StatusCode::NO_CONTENT.into_response()
        }
        None => user_not_found(&id),
    }
}
