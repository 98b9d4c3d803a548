//! SOQL `query` and `queryAll` against the sandbox's tables, with `nextRecordsUrl` paging.
//!
//! A query's conditions are resolved against the object's fields once (unknown names are
//! `INVALID_FIELD`, a literal of the wrong type for its field too), then evaluated per record.
//! Results in id order (no `ORDER BY`, or `ORDER BY Id`) are paged by resuming after the last id
//! served, so a cursor over a million records holds no list; other orders keep the sorted ids.
//! At most [`OPEN_CURSORS`] cursors stay open; the oldest is dropped first, as in Salesforce.
#![allow(clippy::result_large_err)]

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, RawQuery, State as Shared};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{App, error, exact, ids, show, table_index};
use crate::sandbox::soql::{self, Expr, Literal, Op, Select};
use crate::sandbox::store::{Kind, Rec, Table};

/// Query cursors kept open at once.
pub const OPEN_CURSORS: usize = 64;
/// Records per page: Salesforce's default and bounds for `Sforce-Query-Options: batchSize=N`.
const BATCH_DEFAULT: usize = 2000;
const BATCH_MIN: usize = 200;

/// A value a condition compares with, typed by its field.
#[derive(Clone, Debug)]
enum Want {
    Null,
    Text(String),
    Id(String),
    Num(f64),
    Ms(i64),
    Bool(bool),
}

/// A condition whose field names are resolved to columns.
enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Test { column: usize, op: Op, wants: Vec<Want> },
}

/// A record's value of one column, typed like the [`Want`]s it is compared with.
fn have(table: &Table, id: u64, rec: &Rec, column: usize) -> Want {
    let p = &table.kind.properties[column];
    if p.kind == Kind::DateTime {
        return table.get_ms(id, rec, column).map_or(Want::Null, Want::Ms);
    }
    let Some(text) = table.get(id, rec, column) else {
        return Want::Null;
    };
    match p.kind {
        Kind::Number => text.parse().map_or(Want::Null, Want::Num),
        Kind::Boolean => Want::Bool(text == "true"),
        _ if is_id(table, column) => Want::Id(text),
        _ => Want::Text(text),
    }
}

fn is_id(table: &Table, column: usize) -> bool {
    matches!(super::objects::field_type(&table.kind.properties[column]), "id" | "reference")
}

fn compare(have: &Want, want: &Want) -> Option<Ordering> {
    match (have, want) {
        (Want::Text(a), Want::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Want::Id(a), Want::Id(b)) => Some(a.cmp(b)),
        (Want::Id(a), Want::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (Want::Num(a), Want::Num(b)) => a.partial_cmp(b),
        (Want::Ms(a), Want::Ms(b)) => Some(a.cmp(b)),
        (Want::Bool(a), Want::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl Cond {
    fn eval(&self, table: &Table, id: u64, rec: &Rec) -> bool {
        match self {
            Cond::And(parts) => parts.iter().all(|c| c.eval(table, id, rec)),
            Cond::Or(parts) => parts.iter().any(|c| c.eval(table, id, rec)),
            Cond::Not(inner) => !inner.eval(table, id, rec),
            Cond::Test { column, op, wants } => {
                let value = have(table, id, rec, *column);
                let equal = |w: &Want| match (&value, w) {
                    (Want::Null, Want::Null) => true,
                    (Want::Null, _) | (_, Want::Null) => false,
                    (v, w) => compare(v, w) == Some(Ordering::Equal),
                };
                let ordered = |ok: fn(Ordering) -> bool| compare(&value, &wants[0]).is_some_and(ok);
                match op {
                    Op::Eq => equal(&wants[0]),
                    Op::Ne => !equal(&wants[0]),
                    Op::In => wants.iter().any(equal),
                    Op::NotIn => !wants.iter().any(equal),
                    Op::Lt => ordered(|o| o == Ordering::Less),
                    Op::Le => ordered(|o| o != Ordering::Greater),
                    Op::Gt => ordered(|o| o == Ordering::Greater),
                    Op::Ge => ordered(|o| o != Ordering::Less),
                    Op::Like => match (&value, &wants[0]) {
                        (Want::Text(v) | Want::Id(v), Want::Text(p)) => soql::like(v, p),
                        _ => false,
                    },
                }
            }
        }
    }
}

fn invalid_field(table: &Table, name: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_FIELD",
        &format!(
            "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            table.kind.name
        ),
    )
}

fn column(table: &Table, name: &str) -> Result<usize, Response> {
    table.column(name).ok_or_else(|| invalid_field(table, name))
}

/// Resolves a parsed condition; a literal must suit its field's type, as Salesforce demands.
fn resolve(table: &Table, expr: &Expr) -> Result<Cond, Response> {
    let all = |parts: &[Expr]| parts.iter().map(|p| resolve(table, p)).collect::<Result<Vec<_>, _>>();
    Ok(match expr {
        Expr::And(parts) => Cond::And(all(parts)?),
        Expr::Or(parts) => Cond::Or(all(parts)?),
        Expr::Not(inner) => Cond::Not(Box::new(resolve(table, inner)?)),
        Expr::Compare { field, op, values } => {
            let c = column(table, field)?;
            let p = &table.kind.properties[c];
            let wants = values
                .iter()
                .map(|v| match (p.kind, v) {
                    (_, Literal::Null) if !matches!(op, Op::Eq | Op::Ne | Op::In | Op::NotIn) => None,
                    (_, Literal::Null) => Some(Want::Null),
                    (Kind::DateTime, Literal::Time(ms, _)) => Some(Want::Ms(*ms)),
                    (Kind::Number, Literal::Num(n)) => Some(Want::Num(*n)),
                    (Kind::Boolean, Literal::Bool(b)) => Some(Want::Bool(*b)),
                    (Kind::Text | Kind::Enumeration, Literal::Str(s)) if is_id(table, c) && *op != Op::Like => {
                        Some(ids::canonical(s).map_or(Want::Text(s.clone()), Want::Id))
                    }
                    (Kind::Text | Kind::Enumeration, Literal::Str(s)) => Some(Want::Text(s.clone())),
                    _ => None,
                })
                .collect::<Option<Vec<Want>>>();
            let Some(wants) = wants else {
                let kind = super::objects::field_type(p);
                let quoted = if matches!(kind, "datetime" | "date" | "boolean" | "int" | "currency") {
                    " and should not be enclosed in quotes"
                } else {
                    ""
                };
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_FIELD",
                    &format!("value of filter criterion for field '{}' must be of type {kind}{quoted}", p.name),
                ));
            };
            Cond::Test { column: c, op: *op, wants }
        }
    })
}

/// What a cursor pages through.
enum Plan {
    /// Matching records in id order, resumed after the last id served.
    ById {
        filter: Option<Cond>,
        all: bool,
        skip: usize,
        resume: Mutex<BTreeMap<usize, u64>>,
    },
    /// The matching ids in the query's order.
    Sorted(Vec<u64>),
}

/// An open query: what it selects, how many records it has and how to get the next ones.
pub struct Cursor {
    pub table: usize,
    pub columns: Vec<usize>,
    pub total: usize,
    batch: usize,
    plan: Plan,
}

/// The open cursors, oldest first.
#[derive(Default)]
pub struct Cursors {
    open: HashMap<u64, Arc<Cursor>>,
    order: VecDeque<u64>,
    next: u64,
}

impl Cursors {
    fn add(&mut self, cursor: Arc<Cursor>) -> u64 {
        self.next += 1;
        self.open.insert(self.next, cursor);
        self.order.push_back(self.next);
        while self.order.len() > OPEN_CURSORS {
            if let Some(old) = self.order.pop_front() {
                self.open.remove(&old);
            }
        }
        self.next
    }
}

/// Records `[from, from + n)` of the cursor's results.
pub fn page(table: &Table, cursor: &Cursor, from: usize, n: usize) -> Vec<u64> {
    match &cursor.plan {
        Plan::Sorted(ids) => ids.iter().skip(from).take(n).copied().collect(),
        Plan::ById { filter, all, skip, resume } => {
            let start = resume.lock().expect("resume lock").get(&from).copied();
            let (lower, skip) = match start {
                Some(last) => (Bound::Excluded(last), 0),
                None => (Bound::Unbounded, skip + from),
            };
            let out: Vec<u64> = table
                .records
                .range((lower, Bound::Unbounded))
                .filter(|(id, rec)| (*all || rec.archived.is_none()) && filter.as_ref().is_none_or(|f| f.eval(table, **id, rec)))
                .skip(skip)
                .take(n)
                .map(|(id, _)| *id)
                .collect();
            if let Some(last) = out.last() {
                let mut resume = resume.lock().expect("resume lock");
                resume.insert(from + out.len(), *last);
                // Keeps the map small for a cursor paged far: only recent resume points matter.
                while resume.len() > 64 {
                    resume.pop_first();
                }
            }
            out
        }
    }
}

/// The page answer; registers the cursor when records remain.
fn answer(app: &App, table: &Table, cursor: Arc<Cursor>, from: usize, locator: Option<u64>, version: &str) -> Response {
    let n = cursor.batch.min(cursor.total.saturating_sub(from));
    let ids = page(table, &cursor, from, n);
    let records: Vec<Value> = ids
        .iter()
        .filter_map(|id| Some(show(table, *id, table.records.get(id)?, &cursor.columns, version)))
        .collect();
    let next = from + n;
    let mut body = json!({"totalSize": cursor.total, "done": next >= cursor.total, "records": records});
    if next < cursor.total {
        let locator = locator.unwrap_or_else(|| app.cursors.lock().expect("cursors lock").add(cursor.clone()));
        body["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{}-{next}", ids::show("01g", locator)));
    }
    exact(table, &body)
}

fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').find_map(|kv| kv.trim().strip_prefix("batchSize=")))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .map_or(BATCH_DEFAULT, |n| n.clamp(BATCH_MIN, BATCH_DEFAULT))
}

fn malformed(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "MALFORMED_QUERY", message)
}

/// What a query selects: how many records match (`COUNT()`), or a cursor over them.
pub enum Opened {
    Count(usize),
    Rows(Cursor),
}

/// Parses and resolves a query and finds its records (`all`: deleted ones too); `batch` is the
/// page size of the cursor.
pub fn open(tables: &[Table], text: &str, all: bool, batch: usize) -> Result<Opened, Response> {
    let query = soql::parse(text).map_err(|message| malformed(&message))?;
    let t = table_index(tables, &query.object, StatusCode::BAD_REQUEST)?;
    let table = &tables[t];
    let filter = query.filter.as_ref().map(|f| resolve(table, f)).transpose()?;
    let visible = |id: &u64, rec: &Rec| (all || rec.archived.is_none()) && filter.as_ref().is_none_or(|f| f.eval(table, *id, rec));
    let skip = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(usize::MAX);
    let columns = match &query.select {
        Select::Count => {
            let n = table.records.iter().filter(|(id, rec)| visible(id, rec)).count();
            return Ok(Opened::Count(n.saturating_sub(skip).min(limit)));
        }
        Select::Fields(names) => names.iter().map(|n| column(table, n)).collect::<Result<Vec<_>, _>>()?,
    };
    let order = query
        .order
        .iter()
        .map(|o| Ok((column(table, &o.field)?, o)))
        .collect::<Result<Vec<_>, Response>>()?;
    let by_id = match order.as_slice() {
        [] => true,
        [(c, o)] => table.kind.properties[*c].name == "Id" && !o.descending,
        _ => false,
    };
    let (total, plan) = if by_id {
        let n = table.records.iter().filter(|(id, rec)| visible(id, rec)).count();
        let resume = Mutex::new(BTreeMap::new());
        (n.saturating_sub(skip).min(limit), Plan::ById { filter, all, skip, resume })
    } else {
        let mut keyed: Vec<(Vec<Want>, u64)> = table
            .records
            .iter()
            .filter(|(id, rec)| visible(id, rec))
            .map(|(id, rec)| (order.iter().map(|(c, _)| have(table, *id, rec, *c)).collect(), *id))
            .collect();
        keyed.sort_by(|(a, ia), (b, ib)| {
            let by_key = a.iter().zip(b).zip(&order).fold(Ordering::Equal, |acc, ((x, y), (_, o))| {
                acc.then_with(|| {
                    let ord = match (x, y) {
                        (Want::Null, Want::Null) => Ordering::Equal,
                        (Want::Null, _) => {
                            if o.nulls_last {
                                Ordering::Greater
                            } else {
                                Ordering::Less
                            }
                        }
                        (_, Want::Null) => {
                            if o.nulls_last {
                                Ordering::Less
                            } else {
                                Ordering::Greater
                            }
                        }
                        _ => compare(x, y).unwrap_or(Ordering::Equal),
                    };
                    if o.descending && !matches!((x, y), (Want::Null, _) | (_, Want::Null)) {
                        ord.reverse()
                    } else {
                        ord
                    }
                })
            });
            by_key.then(ia.cmp(ib))
        });
        let ids: Vec<u64> = keyed.into_iter().map(|(_, id)| id).skip(skip).take(limit).collect();
        (ids.len(), Plan::Sorted(ids))
    };
    Ok(Opened::Rows(Cursor {
        table: t,
        columns,
        total,
        batch,
        plan,
    }))
}

/// Runs a query's first page.
fn run(app: &App, version: &str, raw: Option<String>, headers: &HeaderMap, all: bool) -> Response {
    let raw = raw.unwrap_or_default();
    let Some(text) = form_urlencoded::parse(raw.as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.into_owned())
    else {
        return malformed("A query string has to be specified: add `?q=SELECT ...`");
    };
    let tables = app.records.tables.read().expect("tables lock");
    match open(&tables, &text, all, batch_size(headers)) {
        Ok(Opened::Count(n)) => Json(json!({"totalSize": n, "done": true, "records": []})).into_response(),
        Ok(Opened::Rows(cursor)) => answer(app, &tables[cursor.table], Arc::new(cursor), 0, None, version),
        Err(r) => r,
    }
}

/// `GET /query?q=SOQL`.
pub async fn query(Shared(app): Shared<App>, Path(version): Path<String>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    run(&app, &version, raw, &headers, false)
}

/// `GET /queryAll?q=SOQL`: deleted records too.
pub async fn query_all(Shared(app): Shared<App>, Path(version): Path<String>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    run(&app, &version, raw, &headers, true)
}

/// `GET /query/{locator}-{offset}`: the next page of an open cursor.
pub async fn more(Shared(app): Shared<App>, Path((version, locator)): Path<(String, String)>) -> Response {
    let found = locator.rsplit_once('-').and_then(|(cursor, from)| {
        let number = ids::parse("01g", cursor)?;
        let from: usize = from.parse().ok()?;
        let cursor = app.cursors.lock().expect("cursors lock").open.get(&number).cloned()?;
        Some((number, from, cursor))
    });
    let Some((number, from, cursor)) = found.filter(|(_, from, c)| *from < c.total) else {
        return error(StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR", "invalid query locator");
    };
    let tables = app.records.tables.read().expect("tables lock");
    match tables.get(cursor.table) {
        Some(table) => answer(&app, table, cursor, from, Some(number), &version),
        None => error(StatusCode::BAD_REQUEST, "INVALID_QUERY_LOCATOR", "invalid query locator"),
    }
}
