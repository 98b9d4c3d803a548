//! Writing HubSpot: batch updates by id that set every writable property (clearing those the
//! record lacks), batch archives for deletes, and the refusal, with its reasons, of records
//! HubSpot no longer holds live (see the connector's documentation for why nothing is created).

use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::{BATCH_MAX, ObjectMap, Properties, Shared, http, some_ids};
use crate::connectors::{ApplyOutcome, ConnectorError};
use crate::record::Record;

/// The ids in a JSON list of ids, or of objects with an `id`.
fn ids_in(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().or(v["id"].as_str()).map(str::to_string))
        .collect()
}

/// `{inputs: [{id}, …]}` for `ids`.
fn id_inputs(ids: &[String]) -> Value {
    let inputs: Vec<Value> = ids.iter().map(|id| json!({"id": id})).collect();
    json!({"inputs": inputs})
}

impl Shared {
    /// Sets every writable property of each live record in `batch` to the record's value (clearing
    /// the others), by id; archives the records flagged deleted.
    pub(super) async fn apply(&self, object: &str, batch: &[Record]) -> Result<ApplyOutcome, ConnectorError> {
        self.writable("write records")?;
        let map = self.map(object)?;
        let props = self.properties_for(map).await?;
        let (live, gone): (Vec<&Record>, Vec<&Record>) = batch.iter().partition(|r| !r.deleted);
        let inputs = live
            .iter()
            .map(|r| self.update_input(map, &props, r))
            .collect::<Result<Vec<Value>, ConnectorError>>()?;
        let path = Self::path(map, "/batch/update");
        let bodies: Vec<Value> = inputs.chunks(self.batch).map(|part| json!({"inputs": part})).collect();
        let calls = bodies.into_iter().map(|body| {
            let path = &path;
            async move { self.batch_outcome(object, self.api.post(path, &body, Some(object)).await?) }
        });
        let (mut written, mut missing) = (0, Vec::new());
        let mut results = futures::stream::iter(calls).buffer_unordered(self.concurrency);
        while let Some(outcome) = results.next().await {
            let (n, absent) = outcome?;
            written += n;
            missing.extend(absent);
        }
        if !gone.is_empty() {
            let ids: Vec<String> = gone.iter().map(|r| r.id.clone()).collect();
            written += self.archive(map, &ids).await?;
        }
        if !missing.is_empty() {
            missing.sort();
            return Err(self.not_live(map, missing).await);
        }
        Ok(ApplyOutcome {
            written,
            id_map: Vec::new(),
        })
    }

    /// One input of a batch update: every writable property, empty where the record has no value;
    /// a field that is no property of the object is an error naming it.
    pub(super) fn update_input(&self, map: &ObjectMap, props: &Properties, record: &Record) -> Result<Value, ConnectorError> {
        let unknown: Vec<&String> = record.fields.keys().filter(|k| !props.all.contains(*k)).collect();
        if let Some(first) = unknown.first() {
            let others = match unknown.len() {
                1 => String::new(),
                n => format!(" (nor {} others)", n - 1),
            };
            return Err(ConnectorError::new(
                &self.name,
                format!("HubSpot's `{}` has no property `{first}`{others}", map.object_type),
            )
            .object(&map.name)
            .record(&record.id)
            .hint(
                "create the property in HubSpot (Settings → Properties) before restoring, or restore a snapshot taken from this account",
            ));
        }
        let properties: Map<String, Value> = props
            .writable
            .iter()
            .map(|p| {
                let value = match record.fields.get(p) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                };
                (p.clone(), Value::String(value))
            })
            .collect();
        Ok(json!({"id": record.id, "properties": properties}))
    }

    /// Records written by one batch update, and the ids HubSpot did not find; any other refusal
    /// is an error in HubSpot's words.
    fn batch_outcome(&self, object: &str, answer: http::Answer) -> Result<(u64, Vec<String>), ConnectorError> {
        let written = answer.body["results"].as_array().map_or(0, Vec::len) as u64;
        let (mut missing, mut refused) = (Vec::new(), Vec::new());
        for e in answer.body["errors"].as_array().into_iter().flatten() {
            let ids = ids_in(&e["context"]["ids"]);
            if e["category"] == "OBJECT_NOT_FOUND" {
                missing.extend(ids);
                continue;
            }
            let mut text = format!(
                "{} {}",
                e["category"].as_str().unwrap_or("error"),
                e["message"].as_str().unwrap_or("")
            );
            if !ids.is_empty() {
                text.push_str(&format!(" (ids {})", some_ids(&ids)));
            }
            refused.push(text);
        }
        if !refused.is_empty() {
            return Err(ConnectorError::new(
                &self.name,
                format!("HubSpot refused part of a batch update: {}", refused.join("; ")),
            )
            .object(object)
            .hint("fix what HubSpot names, then run the phase again (`--resume` continues where it stopped)"));
        }
        Ok((written, missing))
    }

    /// Why records HubSpot does not hold live cannot be written, telling archived ones (in the
    /// recycle bin, restorable there under their ids) from those it does not hold at all.
    async fn not_live(&self, map: &ObjectMap, ids: Vec<String>) -> ConnectorError {
        let mut archived = Vec::new();
        // Ids whose archived state could not be read: neither "archived" nor "gone" is known.
        let mut unknown: Vec<String> = Vec::new();
        for part in ids.chunks(BATCH_MAX) {
            let mut body = id_inputs(part);
            body["properties"] = json!(["hs_object_id"]);
            let read = self
                .api
                .post_query(&Self::path(map, "/batch/read"), &[("archived", "true")], &body, Some(&map.name))
                .await;
            match read {
                Ok(answer) => archived.extend(ids_in(&answer.body["results"])),
                Err(_) => unknown.extend(part.iter().cloned()),
            }
        }
        let absent: Vec<String> = ids
            .iter()
            .filter(|id| !archived.contains(id) && !unknown.contains(id))
            .cloned()
            .collect();
        let mut parts = Vec::new();
        if !unknown.is_empty() {
            parts.push(format!(
                "{} whose archived state could not be read (look them up in HubSpot's recycle bin): {}",
                unknown.len(),
                some_ids(&unknown)
            ));
        }
        if !archived.is_empty() {
            let n = archived.len();
            parts.push(format!("{n} in HubSpot's recycle bin (archived): {}", some_ids(&archived)));
        }
        if !absent.is_empty() {
            parts.push(format!("{} not in HubSpot at all: {}", absent.len(), some_ids(&absent)));
        }
        let hint = if !unknown.is_empty() {
            "look the records up in HubSpot's recycle bin and restore those there (they keep their ids), then run the phase again with `--resume`; do not import any anew before you know they are gone"
        } else if absent.is_empty() {
            "restore them in HubSpot (the object's list → Restore records; they keep their ids, for 90 days), then run the phase again with `--resume`"
        } else {
            "restore the archived ones in HubSpot (the object's list → Restore records; they keep their ids), then run the phase again with `--resume`; records HubSpot no longer holds can only come back under new ids, which this tool does not do: import them into HubSpot yourself"
        };
        ConnectorError::new(
            &self.name,
            format!(
                "{} records are not live in HubSpot, which gives every new record a new id, so they cannot be written back under their ids ({}); nothing was created for them",
                ids.len(),
                parts.join("; ")
            ),
        )
        .object(&map.name)
        .hint(hint)
    }

    /// Archives `ids` (HubSpot's delete) in batch calls; archiving an archived or unknown id is
    /// not an error there.
    pub(super) async fn archive(&self, map: &ObjectMap, ids: &[String]) -> Result<u64, ConnectorError> {
        self.writable("archive records")?;
        let path = Self::path(map, "/batch/archive");
        // The bodies first: a stream of futures cannot hold a closure over borrowed chunks.
        let bodies: Vec<(Value, u64)> = ids.chunks(self.batch).map(|part| (id_inputs(part), part.len() as u64)).collect();
        let calls = bodies.into_iter().map(|(body, n)| {
            let path = &path;
            async move { self.api.post(path, &body, Some(&map.name)).await.map(|_| n) }
        });
        let mut done = 0;
        let mut results = futures::stream::iter(calls).buffer_unordered(self.concurrency);
        while let Some(n) = results.next().await {
            done += n?;
        }
        Ok(done)
    }
}
