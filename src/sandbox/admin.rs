//! The admin endpoints every flavor serves over its own records: `GET /_sandbox/state` (per
//! object, counts and the canonical digest) and `POST /_sandbox/traffic` (users' changes after a
//! cutover, for drills). `/_sandbox/faults` lives beside the request gate in `mod.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::store::{self, Kind, Records};

/// `/_sandbox/state` and `/_sandbox/traffic` over the `records` of a flavor's state `S`.
pub fn routes<S: Send + Sync + 'static>(flavor: &'static str, records: fn(&S) -> &Records) -> axum::Router<Arc<S>> {
    let state_of = move |State(app): State<Arc<S>>| async move { state(records(&app), flavor) };
    let traffic_of = move |State(app): State<Arc<S>>, body: Option<Json<Value>>| async move { traffic(records(&app), body).await };
    axum::Router::new()
        .route("/_sandbox/state", axum::routing::get(state_of))
        .route("/_sandbox/traffic", axum::routing::post(traffic_of))
}

/// `GET /_sandbox/state`: per object, live and archived counts and the canonical digest of the
/// live records (the store's digest of the records a connector would export).
pub fn state(records: &Records, flavor: &str) -> Response {
    let tables = records.tables.read().expect("tables lock");
    let objects: Map<String, Value> = tables.iter().map(|t| (t.kind.name.to_string(), t.summary())).collect();
    Json(json!({"flavor": flavor, "objects": objects})).into_response()
}

/// `POST /_sandbox/traffic`: `{"cutover": TIME?, "objects": [..]?, "create": N, "update": N,
/// "archive": N, "seed": N?}` makes users' changes, timed after the cutover, in each object;
/// answers the ids touched. Objects whose records users cannot create (Salesforce's `User`,
/// `UserLogin`) are left alone.
pub async fn traffic(records: &Records, body: Option<Json<Value>>) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or(json!({}));
    let cutover = match &body["cutover"] {
        Value::Null => None,
        Value::String(s) => match crate::record::parse_time(s) {
            Some(t) => Some(t),
            None => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": format!("`cutover` is not a time: {s}")})),
                )
                    .into_response();
            }
        },
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "`cutover` must be an RFC 3339 time"})),
            )
                .into_response();
        }
    };
    let count = |k: &str| body[k].as_u64().unwrap_or(0) as usize;
    let (creates, updates, archives) = (count("create"), count("update"), count("archive"));
    let mut rng = crate::generate::Rng::new(body["seed"].as_u64().unwrap_or(1));
    let mut report = Map::new();
    let mut saves = Vec::new();
    {
        let mut tables = records.tables.write().expect("tables lock");
        let only: Option<BTreeSet<String>> = body["objects"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect());
        for (t, table) in tables.iter_mut().enumerate() {
            // The text field users change: the first one they can write.
            let text_property = table.kind.properties.iter().position(|p| !p.system && p.kind == Kind::Text);
            let Some(text_property) = text_property.filter(|_| table.kind.createable) else {
                continue;
            };
            if only.as_ref().is_some_and(|o| !o.contains(table.kind.name)) {
                continue;
            }
            let at = store::after(cutover);
            let live: Vec<u64> = table
                .records
                .iter()
                .filter(|(_, r)| r.archived.is_none())
                .map(|(id, _)| *id)
                .collect();
            // `n` distinct live records, none of those in `taken`.
            let pick = |n: usize, taken: &[u64], rng: &mut crate::generate::Rng| -> Vec<u64> {
                let mut chosen = BTreeSet::new();
                while chosen.len() < n.min(live.len() - taken.len()) {
                    let id = live[rng.below(live.len() as u64) as usize];
                    if !taken.contains(&id) {
                        chosen.insert(id);
                    }
                }
                chosen.into_iter().collect()
            };
            let updated = pick(updates, &[], &mut rng);
            // Records other than the updated ones, so each count is what was asked for.
            let archived: Vec<u64> = pick(archives, &updated, &mut rng);
            for id in &updated {
                let rec = table.records.get_mut(id).expect("live id");
                let old = rec.values[text_property].as_deref().unwrap_or("").to_string();
                rec.values[text_property] = Some(format!("{old} (changed after cutover)").trim().into());
                rec.updated = at.max(rec.updated + 1);
            }
            for id in &archived {
                let rec = table.records.get_mut(id).expect("live id");
                rec.archived = Some(at);
                rec.updated = at.max(rec.updated + 1);
            }
            let mut created = Vec::new();
            for n in 0..creates {
                let mut rec = table.blank(at);
                rec.values[text_property] = Some(format!("created after cutover {n}").into());
                created.push(table.add(rec));
            }
            let ids = |v: &[u64]| v.iter().map(|id| table.kind.show_id(*id)).collect::<Vec<_>>();
            report.insert(
                table.kind.name.to_string(),
                json!({"created": ids(&created), "updated": ids(&updated), "archived": ids(&archived)}),
            );
            saves.push((t, created.into_iter().chain(updated).chain(archived).collect::<Vec<u64>>()));
        }
    }
    for (t, ids) in saves {
        records.save(t, &ids).await;
    }
    Json(json!({"objects": report, "at": cutover.map(|c| crate::record::format_time(&c))})).into_response()
}
