//! Writing Salesforce: sObject Collections updates by id that set every updateable field
//! (clearing those the record lacks), Collections deletes, and the refusal, with its reasons, of
//! records Salesforce no longer holds live (see the connector's documentation for why nothing is
//! created or undeleted).

use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::read::{id_list, is_id};
use super::{Describe, Field, ObjectMap, Shared, some_ids};
use crate::connectors::{ApplyOutcome, ConnectorError};
use crate::record::Record;

/// Per-record error codes that mean "no such live row".
const NOT_LIVE: [&str; 2] = ["ENTITY_IS_DELETED", "NOT_FOUND"];

/// What one Collections call did, record by record.
#[derive(Default)]
struct Outcome {
    done: u64,
    /// Ids Salesforce does not hold live.
    missing: Vec<String>,
    /// `` `id`: CODE message `` for every other refusal.
    refused: Vec<String>,
}

impl Outcome {
    fn add(&mut self, other: Outcome) {
        self.done += other.done;
        self.missing.extend(other.missing);
        self.refused.extend(other.refused);
    }
}

/// Salesforce's number field types.
const NUMBERS: [&str; 5] = ["int", "double", "currency", "percent", "long"];

/// A record's value as Salesforce takes it for a field of this type: numbers and booleans typed
/// (records keep numbers as text), the rest as is. A number longer than an f64 holds stays text
/// here, and goes out as a JSON number with its digits as they are (see [`Shared::apply`]).
fn value_out(field: &Field, value: &Value) -> Value {
    match (field.kind.as_str(), value) {
        (kind, Value::String(s)) if NUMBERS.contains(&kind) => crate::exact_json::number(s).unwrap_or_else(|| value.clone()),
        ("boolean", Value::String(s)) if s == "true" || s == "false" => Value::Bool(s == "true"),
        _ => value.clone(),
    }
}

impl Shared {
    /// Sets every updateable field of each live record in `batch` to the record's value (clearing
    /// the others), by id; deletes the records flagged deleted.
    pub(super) async fn apply(&self, object: &str, batch: &[Record]) -> Result<ApplyOutcome, ConnectorError> {
        self.writable("write records")?;
        let map = self.map(object)?;
        let d = self.describe_for(map).await?;
        let (live, gone): (Vec<&Record>, Vec<&Record>) = batch.iter().partition(|r| !r.deleted);
        let rows = live
            .iter()
            .map(|r| self.update_row(map, &d, r))
            .collect::<Result<Vec<Value>, ConnectorError>>()?;
        let path = self.api.data("/composite/sobjects");
        let number_field = |key: &str| d.field(key).is_some_and(|f| NUMBERS.contains(&f.kind.as_str()));
        // The bodies first: a stream of futures cannot hold a closure over borrowed chunks.
        let bodies: Vec<(Vec<String>, String)> = rows
            .chunks(self.batch)
            .map(|part| {
                let ids = part.iter().map(|r| r["id"].as_str().unwrap_or_default().to_string()).collect();
                let body = json!({"allOrNone": false, "records": part});
                (ids, crate::exact_json::write(&body, &number_field))
            })
            .collect();
        let calls = bodies.into_iter().map(|(ids, body)| {
            let path = &path;
            async move {
                let answer = self.api.patch_text(path, body, Some(&map.name)).await?;
                self.outcome(&map.name, &ids, answer)
            }
        });
        let mut outcome = Outcome::default();
        let mut results = futures::stream::iter(calls).buffer_unordered(self.concurrency);
        while let Some(part) = results.next().await {
            outcome.add(part?);
        }
        if !gone.is_empty() {
            let ids: Vec<String> = gone.iter().map(|r| r.id.clone()).collect();
            outcome.done += self.remove(map, &ids).await?;
        }
        if !outcome.refused.is_empty() {
            return Err(self.refused(map, "update", &outcome.refused));
        }
        if !outcome.missing.is_empty() {
            outcome.missing.sort();
            return Err(self.not_live(map, outcome.missing).await);
        }
        Ok(ApplyOutcome {
            written: outcome.done,
            id_map: Vec::new(),
        })
    }

    /// One row of a Collections update: every updateable field, null where the record has no
    /// value (and the field may be empty), the record's fields matched in any case; a field the
    /// sObject does not have is an error naming it.
    pub(super) fn update_row(&self, map: &ObjectMap, d: &Describe, record: &Record) -> Result<Value, ConnectorError> {
        let unknown: Vec<&String> = record.fields.keys().filter(|k| d.field(k).is_none()).collect();
        if let Some(first) = unknown.first() {
            let others = match unknown.len() {
                1 => String::new(),
                n => format!(" (nor {} others)", n - 1),
            };
            return Err(ConnectorError::new(&self.name, format!("sObject `{}` has no field `{first}`{others}", map.sobject))
                .object(&map.name)
                .record(&record.id)
                .hint("create the field in Salesforce (Setup → Object Manager) before restoring, or restore a snapshot taken from this org"));
        }
        if !is_id(&record.id) {
            return Err(ConnectorError::new(&self.name, format!("`{}` is not a Salesforce id", record.id))
                .object(&map.name)
                .record(&record.id)
                .hint("restore a snapshot taken from Salesforce; records from another CRM need importing under new ids"));
        }
        let mut row = Map::new();
        row.insert("attributes".into(), json!({"type": map.sobject}));
        row.insert("id".into(), Value::String(record.id.clone()));
        // Salesforce's field names are case-insensitive: a field whose name changed case since
        // the backup is still the snapshot's field, written with its value (never cleared).
        let values: std::collections::HashMap<String, &Value> = record.fields.iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        for field in d.kept.iter().filter(|f| f.updateable) {
            match values.get(&field.name.to_ascii_lowercase()) {
                Some(v) if !v.is_null() => {
                    row.insert(field.name.clone(), value_out(field, v));
                }
                // A field that cannot be empty (a checkbox, a required field) is left as it is.
                _ if field.nillable => {
                    row.insert(field.name.clone(), Value::Null);
                }
                _ => {}
            }
        }
        Ok(Value::Object(row))
    }

    /// Reads a Collections answer (one result per row, in request order) for rows `ids`.
    fn outcome(&self, object: &str, ids: &[String], answer: Value) -> Result<Outcome, ConnectorError> {
        let results = answer.as_array().filter(|r| r.len() == ids.len()).ok_or_else(|| {
            ConnectorError::new(
                &self.name,
                format!(
                    "Salesforce answered a Collections call for {} records with something else: {answer}",
                    ids.len()
                ),
            )
            .object(object)
            .retryable(true)
        })?;
        let mut out = Outcome::default();
        for (id, result) in ids.iter().zip(results) {
            if result["success"] == true {
                out.done += 1;
                continue;
            }
            let errors = super::http::error_list(&result["errors"]);
            if errors.iter().any(|(code, _)| NOT_LIVE.contains(&code.as_str())) {
                out.missing.push(id.clone());
                continue;
            }
            let said: Vec<String> = errors.iter().map(|(code, message)| format!("{code} {message}")).collect();
            out.refused.push(format!("`{id}`: {}", said.join("; ")));
        }
        Ok(out)
    }

    /// The error for rows Salesforce refused, naming them and what it said.
    fn refused(&self, map: &ObjectMap, what: &str, refused: &[String]) -> ConnectorError {
        let shown: Vec<&str> = refused.iter().take(10).map(String::as_str).collect();
        let more = refused.len().saturating_sub(shown.len());
        let mut message = format!("Salesforce refused to {what} {} record(s): {}", refused.len(), shown.join("; "));
        if more > 0 {
            message.push_str(&format!("; and {more} more"));
        }
        ConnectorError::new(&self.name, message).object(&map.name).hint(
            "fix what Salesforce names (a validation rule, a required or locked field, a lookup to a missing record, the user's field permissions), then run the phase again (`--resume` continues where it stopped)",
        )
    }

    /// Why records Salesforce does not hold live cannot be written, telling deleted ones (in the
    /// Recycle Bin, undeletable there under their ids) from those it does not hold at all.
    async fn not_live(&self, map: &ObjectMap, ids: Vec<String>) -> ConnectorError {
        let mut binned: Vec<String> = Vec::new();
        // Ids whose state could not be read: neither "in the bin" nor "gone" is known.
        let mut unknown: Vec<String> = Vec::new();
        let valid: Vec<&str> = ids.iter().map(String::as_str).filter(|id| is_id(id)).collect();
        for part in valid.chunks(200) {
            let soql = format!("SELECT Id FROM {} WHERE Id IN {} AND IsDeleted = true", map.sobject, id_list(part));
            match self.rows(&soql, true, &map.name).await {
                Ok(rows) => binned.extend(rows.iter().filter_map(|r| r["Id"].as_str().map(str::to_string))),
                Err(_) => unknown.extend(part.iter().map(|id| id.to_string())),
            }
        }
        let same = |a: &String, b: &String| a.eq_ignore_ascii_case(b);
        let absent: Vec<String> = ids
            .iter()
            .filter(|id| !binned.iter().any(|b| same(b, id)) && !unknown.iter().any(|u| same(u, id)))
            .cloned()
            .collect();
        let mut parts = Vec::new();
        if !unknown.is_empty() {
            parts.push(format!(
                "{} whose deleted state could not be read (look them up in the Recycle Bin): {}",
                unknown.len(),
                some_ids(&unknown)
            ));
        }
        if !binned.is_empty() {
            parts.push(format!(
                "{} in Salesforce's Recycle Bin (deleted): {}",
                binned.len(),
                some_ids(&binned)
            ));
        }
        if !absent.is_empty() {
            parts.push(format!("{} not in Salesforce at all: {}", absent.len(), some_ids(&absent)));
        }
        let hint = if !unknown.is_empty() {
            "look the records up in Salesforce's Recycle Bin and undelete those there (they keep their ids), then run the phase again with `--resume`; do not import any anew before you know they are gone"
        } else if absent.is_empty() {
            "undelete them in Salesforce (App Launcher → Recycle Bin → Undelete; they keep their ids while there, usually 15 days), then run the phase again with `--resume`"
        } else {
            "undelete those in the Recycle Bin (they keep their ids), then run the phase again with `--resume`; records Salesforce no longer holds (hard-deleted or purged) can only come back under new ids, which this tool does not do: import them yourself (e.g. with Data Loader)"
        };
        ConnectorError::new(
            &self.name,
            format!(
                "{} records are not live in Salesforce, which gives every new record a new id (and whose REST API cannot undelete), so they cannot be written back under their ids ({}); nothing was created for them",
                ids.len(),
                parts.join("; ")
            ),
        )
        .object(&map.name)
        .hint(hint)
    }

    /// Deletes `ids` with Collections deletes (`batch` ids a call); an id already deleted or
    /// unknown counts as deleted (a retried call finds its own deletes done). Ids of another
    /// sObject (by their key prefix) are refused before anything is deleted.
    pub(super) async fn remove(&self, map: &ObjectMap, ids: &[String]) -> Result<u64, ConnectorError> {
        self.writable("delete records")?;
        let d = self.describe(map).await?;
        let foreign: Vec<String> = ids
            .iter()
            .filter(|id| !is_id(id) || d.key_prefix.as_deref().is_some_and(|p| !id.starts_with(p)))
            .cloned()
            .collect();
        if !foreign.is_empty() {
            return Err(ConnectorError::new(
                &self.name,
                format!(
                    "{} id(s) to delete are not ids of `{}` (key prefix {}): {}; nothing was deleted",
                    foreign.len(),
                    map.sobject,
                    d.key_prefix.as_deref().unwrap_or("unknown"),
                    some_ids(&foreign)
                ),
            )
            .object(&map.name)
            .hint("the snapshot does not belong to this object or org; restore a snapshot taken from it"));
        }
        let path = self.api.data("/composite/sobjects");
        let parts: Vec<Vec<String>> = ids.chunks(self.batch).map(<[String]>::to_vec).collect();
        let calls = parts.into_iter().map(|part| {
            let path = &path;
            async move {
                let list = part.join(",");
                let query = [("ids", list.as_str()), ("allOrNone", "false")];
                let answer = self.api.delete(path, &query, Some(&map.name)).await?;
                let mut outcome = self.outcome(&map.name, &part, answer)?;
                outcome.done += outcome.missing.drain(..).count() as u64;
                Ok::<_, ConnectorError>(outcome)
            }
        });
        let mut outcome = Outcome::default();
        let mut results = futures::stream::iter(calls).buffer_unordered(self.concurrency);
        while let Some(part) = results.next().await {
            outcome.add(part?);
        }
        if !outcome.refused.is_empty() {
            return Err(self.refused(map, "delete", &outcome.refused));
        }
        Ok(outcome.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: &str) -> Field {
        Field {
            name: "F".into(),
            key: "F".into(),
            kind: kind.into(),
            nillable: true,
            updateable: true,
        }
    }

    /// Numbers and booleans kept as text go back typed; text and odd values go back as they are.
    #[test]
    fn values_go_back_typed() {
        assert_eq!(value_out(&field("double"), &json!("1234.5")), json!(1234.5));
        assert_eq!(value_out(&field("int"), &json!("7")), json!(7));
        assert_eq!(value_out(&field("currency"), &json!("n/a")), json!("n/a"));
        assert_eq!(value_out(&field("boolean"), &json!("true")), json!(true));
        assert_eq!(value_out(&field("boolean"), &json!(false)), json!(false));
        assert_eq!(value_out(&field("string"), &json!("7")), json!("7"));
        let long = json!("1234567890123456.78");
        assert_eq!(value_out(&field("currency"), &long), long, "too long for an f64: kept as text");
    }
}
