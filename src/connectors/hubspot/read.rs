//! Reading HubSpot: a HubSpot object as a record, the list pass (live records, or the archived
//! ones since a time), batch reads when the property names would not fit in a URL, and the
//! search since a time that moves its lower bound on before HubSpot's 10,000-result cap.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{BATCH_MAX, ObjectMap, Properties, Shared};
use crate::connectors::ConnectorError;
use crate::record::{Fields, Record};

/// Records per list page (HubSpot's own clients' page size) and per search page (its maximum).
const LIST_PAGE: &str = "100";
const SEARCH_PAGE: usize = 200;
/// Search results HubSpot pages through at most for one query.
const SEARCH_CAP: usize = 10_000;
/// Beyond this many bytes of property names, a list asks only for ids and reads the properties
/// with batch reads (a POST body), as too long a URL is refused (414).
const URL_PROPERTIES_MAX: usize = 6_000;

/// Where pages of records go.
type Pages = tokio::sync::mpsc::Sender<Result<Vec<Record>, ConnectorError>>;

impl Shared {
    /// A HubSpot object (`SimplePublicObject`) as a record.
    pub(super) fn record(&self, map: &ObjectMap, props: &Properties, object: &Value) -> Result<Record, ConnectorError> {
        let id = match &object["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(ConnectorError::new(&self.name, "HubSpot sent a record without an `id`")
                    .object(&map.name)
                    .retryable(true));
            }
        };
        let values = &object["properties"];
        let mut fields = Fields::new();
        for name in &props.kept {
            match &values[name] {
                Value::String(s) if !s.is_empty() => {
                    fields.insert(name.clone(), Value::String(s.clone()));
                }
                Value::Number(n) => {
                    fields.insert(name.clone(), Value::String(n.to_string()));
                }
                Value::Bool(b) => {
                    fields.insert(name.clone(), Value::String(b.to_string()));
                }
                _ => {}
            }
        }
        let deleted = object["archived"] == true;
        let time = |v: &Value| v.as_str().and_then(crate::record::parse_time);
        let modified_at = if deleted {
            time(&object["archivedAt"]).or_else(|| time(&object["updatedAt"]))
        } else {
            time(&values[&map.modified]).or_else(|| time(&object["updatedAt"]))
        };
        Ok(Record {
            object: map.name.clone(),
            id,
            fields,
            modified_at,
            deleted,
        })
    }

    pub(super) fn records(&self, map: &ObjectMap, props: &Properties, results: &Value) -> Result<Vec<Record>, ConnectorError> {
        results
            .as_array()
            .ok_or_else(|| {
                ConnectorError::new(&self.name, "HubSpot's answer has no `results`")
                    .object(&map.name)
                    .retryable(true)
            })?
            .iter()
            .map(|o| self.record(map, props, o))
            .collect()
    }

    /// Every live record (`archived` false), or every archived one modified at or after `since`
    /// (`archived` true), in list pages sent to `tx`.
    pub(super) async fn list(
        &self,
        map: &ObjectMap,
        archived: bool,
        since: Option<DateTime<Utc>>,
        tx: &Pages,
    ) -> Result<(), ConnectorError> {
        let props = self.properties_for(map).await?;
        let requested = props.requested(map).join(",");
        let by_batch_read = requested.len() > URL_PROPERTIES_MAX;
        let asked = if by_batch_read { map.modified.as_str() } else { requested.as_str() };
        let path = Self::path(map, "");
        let archived_text = if archived { "true" } else { "false" };
        let mut after: Option<String> = None;
        loop {
            let mut query = vec![("limit", LIST_PAGE), ("archived", archived_text), ("properties", asked)];
            if let Some(a) = &after {
                query.push(("after", a.as_str()));
            }
            let body = self.api.get(&path, &query, Some(&map.name)).await?;
            let mut records = if by_batch_read {
                let ids: Vec<String> = body["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["id"].as_str().map(str::to_string))
                    .collect();
                self.batch_read(map, &props, &ids, archived).await?
            } else {
                self.records(map, &props, &body["results"])?
            };
            if let Some(since) = since {
                records.retain(|r| r.modified_at.is_some_and(|t| t >= since));
            }
            if !records.is_empty() && tx.send(Ok(records)).await.is_err() {
                return Ok(());
            }
            match body["paging"]["next"]["after"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => return Ok(()),
            }
        }
    }

    /// The records with `ids` (all properties, in a POST body).
    pub(super) async fn batch_read(
        &self,
        map: &ObjectMap,
        props: &Properties,
        ids: &[String],
        archived: bool,
    ) -> Result<Vec<Record>, ConnectorError> {
        let mut out = Vec::with_capacity(ids.len());
        for part in ids.chunks(BATCH_MAX) {
            let inputs: Vec<Value> = part.iter().map(|id| json!({"id": id})).collect();
            let body = json!({"inputs": inputs, "properties": props.requested(map)});
            let query = [("archived", if archived { "true" } else { "false" })];
            let answer = self
                .api
                .post_query(&Self::path(map, "/batch/read"), &query, &body, Some(&map.name))
                .await?;
            let records = self.records(map, props, &answer.body["results"])?;
            // A partial answer (207) must not pass for the whole: a record left out of a backup
            // would later be archived by a restore.
            if !archived && (records.len() != part.len() || answer.body["errors"].as_array().is_some_and(|e| !e.is_empty())) {
                let got: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
                let missing: Vec<&str> = part.iter().map(String::as_str).filter(|id| !got.contains(id)).collect();
                return Err(ConnectorError::new(
                    &self.name,
                    format!(
                        "HubSpot answered a batch read without {} of the {} records asked for ({}): {}",
                        missing.len(),
                        part.len(),
                        missing.join(", "),
                        answer.body["errors"]
                    ),
                )
                .object(&map.name)
                .retryable(true)
                .hint("run the step again; if it persists, the records may have been archived while being read"));
            }
            out.extend(records);
        }
        Ok(out)
    }

    /// One search request.
    pub(super) async fn search(&self, map: &ObjectMap, body: &Value) -> Result<Value, ConnectorError> {
        Ok(self.api.post(&Self::path(map, "/search"), body, Some(&map.name)).await?.body)
    }

    /// The live records modified at or after `since`, by search: sorted by the modified date and
    /// paged, with the lower bound moved to the last time seen before HubSpot's 10,000-result cap
    /// (records at that very time that were already sent are skipped).
    pub(super) async fn search_since(&self, map: &ObjectMap, since: DateTime<Utc>, tx: &Pages) -> Result<(), ConnectorError> {
        let props = self.properties_for(map).await?;
        let requested = props.requested(map);
        let mut bound = since.timestamp_millis();
        // The ids already sent whose modified time is `bound`.
        let mut sent_at_bound: HashSet<String> = HashSet::new();
        loop {
            let (mut offset, mut fresh) = (0, 0);
            let (mut last, mut at_last) = (bound, sent_at_bound.clone());
            loop {
                let body = json!({
                    "filterGroups": [{"filters": [{"propertyName": map.modified, "operator": "GTE", "value": bound.to_string()}]}],
                    "sorts": [{"propertyName": map.modified, "direction": "ASCENDING"}],
                    "properties": requested,
                    "limit": SEARCH_PAGE,
                    "after": offset.to_string(),
                });
                let answer = self.search(map, &body).await?;
                let millis = |r: &Record| r.modified_at.map_or(bound, |t| t.timestamp_millis());
                let mut records = self.records(map, &props, &answer["results"])?;
                records.retain(|r| !(millis(r) == bound && sent_at_bound.contains(&r.id)));
                for r in &records {
                    let ms = millis(r);
                    if ms > last {
                        (last, at_last) = (ms, HashSet::new());
                    }
                    if ms == last {
                        at_last.insert(r.id.clone());
                    }
                }
                fresh += records.len();
                if !records.is_empty() && tx.send(Ok(records)).await.is_err() {
                    return Ok(());
                }
                let Some(next) = answer["paging"]["next"]["after"].as_str() else {
                    return Ok(());
                };
                offset = next.parse::<usize>().map_err(|_| {
                    ConnectorError::new(&self.name, format!("HubSpot's search paging cursor `{next}` is not an offset")).object(&map.name)
                })?;
                if offset + SEARCH_PAGE > SEARCH_CAP {
                    break;
                }
            }
            if fresh == 0 {
                return Err(ConnectorError::new(
                    &self.name,
                    format!("more than {SEARCH_CAP} records share one modified time, beyond what HubSpot's search pages through"),
                )
                .object(&map.name)
                .hint("export without `since` (a delta after a full backup scans every record instead)"));
            }
            (bound, sent_at_bound) = (last, at_last);
        }
    }
}
