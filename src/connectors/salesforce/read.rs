//! Reading Salesforce: an sObject row as a record (values normalised by field type), SOQL
//! `query`/`queryAll` paged through `nextRecordsUrl`, the full export and rows by id (a `queryAll`
//! of the rows not deleted, so archived activities are in), and the export since a time (with
//! deleted rows).

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Describe, ObjectMap, Shared};
use crate::connectors::{ConnectorError, RecordPages};
use crate::record::{Fields, Record};

/// Rows per query page: Salesforce's largest (and default) batch size.
const QUERY_OPTIONS: (&str, &str) = ("Sforce-Query-Options", "batchSize=2000");
/// Ids per `WHERE Id IN (…)` query, so its URL stays short.
const IDS_PER_QUERY: usize = 200;

/// Where pages of records go.
pub(super) type Pages = tokio::sync::mpsc::Sender<Result<Vec<Record>, ConnectorError>>;

/// Runs `produce` in a task of its own, its pages (and its error, if it fails) as a stream.
pub(super) fn spawn_pages<F, Fut>(produce: F) -> RecordPages
where
    F: FnOnce(Pages) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), ConnectorError>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        if let Err(e) = produce(tx.clone()).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    crate::connectors::pages_from_channel(rx)
}

/// A Salesforce date-time (`2024-03-01T10:00:00.000+0000`, or RFC 3339) in UTC.
pub(super) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    crate::record::parse_time(text).or_else(|| {
        DateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f%z")
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// A SOQL date-time literal for `t`, rounded down to the second (callers filter the rest).
fn soql_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Whether `id` looks like a Salesforce id (15 or 18 letters and digits), so it is safe to quote
/// in a query; anything else names no row.
pub(super) fn is_id(id: &str) -> bool {
    matches!(id.len(), 15 | 18) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `('a','b',…)` for ids already checked with [`is_id`].
pub(super) fn id_list(ids: &[&str]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
    format!("({})", quoted.join(","))
}

/// A field's value as a record keeps it; `None` for no value. Numbers become their decimal
/// text, date-times RFC 3339 UTC, booleans stay booleans, text stays text.
fn normalise(kind: &str, value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) if kind == "datetime" => Some(Value::String(
            parse_time(s).map_or_else(|| s.clone(), |t| crate::record::format_time(&t)),
        )),
        Value::Number(n) => Some(Value::String(n.to_string())),
        other => Some(other.clone()),
    }
}

impl Shared {
    /// `SELECT Id, <kept fields>, <modified>[, IsDeleted] FROM <sObject>`.
    fn select(map: &ObjectMap, d: &Describe, with_deleted: bool) -> String {
        let mut fields: Vec<&str> = vec!["Id"];
        fields.extend(d.kept.iter().map(|f| f.name.as_str()));
        if let Some(m) = &d.modified {
            fields.push(m);
        }
        if with_deleted && d.has_deleted {
            fields.push("IsDeleted");
        }
        let mut seen = std::collections::HashSet::new();
        fields.retain(|f| seen.insert(f.to_ascii_lowercase()));
        format!("SELECT {} FROM {}", fields.join(", "), map.sobject)
    }

    /// Narrows `soql` to the live rows for a `queryAll` (`joined` by `" WHERE "` or `" AND "`),
    /// and whether to send it as one: `query` leaves out archived rows (old activities), which
    /// `queryAll … WHERE IsDeleted = false` keeps. An sObject without `IsDeleted` is queried
    /// with `query`.
    pub(super) fn live_only(d: &Describe, soql: &mut String, joined: &str) -> bool {
        if d.has_deleted {
            soql.push_str(joined);
            soql.push_str("IsDeleted = false");
        }
        d.has_deleted
    }

    /// An sObject row as a record.
    pub(super) fn record(&self, map: &ObjectMap, d: &Describe, row: &Value) -> Result<Record, ConnectorError> {
        let Some(id) = row["Id"].as_str() else {
            return Err(ConnectorError::new(&self.name, "Salesforce sent a row without an `Id`")
                .object(&map.name)
                .retryable(true));
        };
        let mut fields = Fields::new();
        for f in &d.kept {
            if let Some(v) = normalise(&f.kind, &row[&f.name]) {
                fields.insert(f.key.clone(), v);
            }
        }
        let modified_at = d.modified.as_ref().and_then(|m| row[m].as_str()).and_then(parse_time);
        Ok(Record {
            object: map.name.clone(),
            id: id.to_string(),
            fields,
            modified_at,
            deleted: row["IsDeleted"] == true,
        })
    }

    /// The first page of a SOQL query (`all`: `queryAll`, deleted rows too).
    pub(super) async fn query(&self, soql: &str, all: bool, object: &str) -> Result<Value, ConnectorError> {
        let path = self.api.data(if all { "/queryAll" } else { "/query" });
        self.api.get_with(&path, &[("q", soql)], &[QUERY_OPTIONS], Some(object)).await
    }

    /// The page after `page`, or `None` when it was the last.
    async fn next_page(&self, page: &Value, object: &str) -> Result<Option<Value>, ConnectorError> {
        match (page["done"].as_bool(), page["nextRecordsUrl"].as_str()) {
            (Some(true), _) => Ok(None),
            (_, Some(next)) => self.api.get_with(next, &[], &[QUERY_OPTIONS], Some(object)).await.map(Some),
            // A page cut short must not pass for the last: rows left out of a backup would
            // later be deleted by a restore.
            _ => Err(ConnectorError::new(
                &self.name,
                "Salesforce's query page says neither that it is the last nor where the next one is",
            )
            .object(object)
            .retryable(true)
            .hint("run the step again; if it persists, check that `instance_url` is Salesforce's")),
        }
    }

    /// A query page's rows. A page without `records` is an error, never an empty page: read as
    /// no rows, it would hide users from a freeze or rows from a backup.
    fn page_rows<'p>(&self, page: &'p Value, object: &str) -> Result<&'p Vec<Value>, ConnectorError> {
        page["records"].as_array().ok_or_else(|| {
            ConnectorError::new(&self.name, "Salesforce's query page has no `records`")
                .object(object)
                .retryable(true)
                .hint("run the step again; if it persists, check that `instance_url` is Salesforce's")
        })
    }

    /// Every row a query answers (for small results: users, logins, ids).
    pub(super) async fn rows(&self, soql: &str, all: bool, object: &str) -> Result<Vec<Value>, ConnectorError> {
        let mut out = Vec::new();
        let mut page = Some(self.query(soql, all, object).await?);
        while let Some(p) = page {
            out.extend(self.page_rows(&p, object)?.iter().cloned());
            page = self.next_page(&p, object).await?;
        }
        Ok(out)
    }

    /// Sends the records of a query's pages to `tx` (those modified at or after `since`, if
    /// given); `false` when the receiver is gone.
    async fn send_pages(
        &self,
        map: &ObjectMap,
        d: &Describe,
        soql: &str,
        all: bool,
        since: Option<DateTime<Utc>>,
        tx: &Pages,
    ) -> Result<bool, ConnectorError> {
        let mut page = Some(self.query(soql, all, &map.name).await?);
        while let Some(p) = page {
            let rows = self.page_rows(&p, &map.name)?;
            let mut records = rows
                .iter()
                .map(|row| self.record(map, d, row))
                .collect::<Result<Vec<Record>, ConnectorError>>()?;
            if let Some(since) = since {
                records.retain(|r| r.modified_at.is_none_or(|t| t >= since));
            }
            if !records.is_empty() && tx.send(Ok(records)).await.is_err() {
                return Ok(false);
            }
            page = self.next_page(&p, &map.name).await?;
        }
        Ok(true)
    }

    /// Every live record (`since` none), or every record modified at or after `since`, deleted
    /// ones included and flagged, in query pages sent to `tx`.
    pub(super) async fn export_to(&self, map: &ObjectMap, since: Option<DateTime<Utc>>, tx: &Pages) -> Result<(), ConnectorError> {
        let d = self.describe_for(map).await?;
        let mut soql = Self::select(map, &d, since.is_some());
        if let Some(since) = since {
            let Some(modified) = &d.modified else {
                return Err(ConnectorError::new(
                    &self.name,
                    format!(
                        "sObject `{}` has no modified-date field to export changes since a time",
                        map.sobject
                    ),
                )
                .object(&map.name)
                .hint(
                    "name a datetime field as the object's `modified:`, or export after a full backup (a delta then compares every record)",
                ));
            };
            soql.push_str(&format!(" WHERE {modified} >= {}", soql_time(since)));
        }
        let all = match since {
            Some(_) => true,
            None => Self::live_only(&d, &mut soql, " WHERE "),
        };
        soql.push_str(" ORDER BY Id");
        self.send_pages(map, &d, &soql, all, since, tx).await.map(|_| ())
    }

    /// The live records whose ids are in `ids`, in pages sent to `tx`; ids Salesforce does not
    /// hold live are left out.
    pub(super) async fn export_by_ids(&self, map: &ObjectMap, ids: &[String], tx: &Pages) -> Result<(), ConnectorError> {
        let d = self.describe_for(map).await?;
        let valid: Vec<&str> = ids.iter().map(String::as_str).filter(|id| is_id(id)).collect();
        for part in valid.chunks(IDS_PER_QUERY) {
            let mut soql = format!("{} WHERE Id IN {}", Self::select(map, &d, false), id_list(part));
            let all = Self::live_only(&d, &mut soql, " AND ");
            soql.push_str(" ORDER BY Id");
            if !self.send_pages(map, &d, &soql, all, None, tx).await? {
                return Ok(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Salesforce's time format and RFC 3339 both parse; SOQL literals drop the fraction.
    #[test]
    fn times() {
        let t = parse_time("2024-03-01T10:00:00.250+0000").unwrap();
        assert_eq!(crate::record::format_time(&t), "2024-03-01T10:00:00.250Z");
        assert_eq!(
            parse_time("2024-03-01T11:00:00+01:00"),
            crate::record::parse_time("2024-03-01T10:00:00Z")
        );
        assert_eq!(soql_time(t), "2024-03-01T10:00:00Z");
        assert_eq!(parse_time("yesterday"), None);
    }

    /// Values are normalised by type; empty ones are no value.
    #[test]
    fn values_are_normalised() {
        assert_eq!(normalise("double", &json!(1234.5)), Some(json!("1234.5")));
        assert_eq!(normalise("int", &json!(7)), Some(json!("7")));
        assert_eq!(normalise("boolean", &json!(false)), Some(json!(false)));
        assert_eq!(
            normalise("datetime", &json!("2024-03-01T10:00:00.000+0000")),
            Some(json!("2024-03-01T10:00:00Z"))
        );
        assert_eq!(normalise("date", &json!("2024-03-01")), Some(json!("2024-03-01")));
        assert_eq!(normalise("string", &json!("")), None);
        assert_eq!(normalise("string", &Value::Null), None);
    }

    /// A query page without `records` is an error, in every reader; an empty list is no rows.
    #[tokio::test]
    async fn a_page_without_records_is_an_error() {
        let c = crate::connectors::salesforce::SalesforceConnector::open(&crate::connectors::salesforce::tests::config(false))
            .await
            .unwrap();
        let s = &c.shared;
        let e = s.page_rows(&json!({"totalSize": 3, "done": true}), "User").unwrap_err();
        assert!(e.message.contains("has no `records`") && e.retryable, "{e}");
        assert_eq!(e.object.as_deref(), Some("User"));
        assert!(s.page_rows(&json!({"done": true, "records": []}), "User").unwrap().is_empty());
    }

    /// Only id-shaped text is ever quoted into a query.
    #[test]
    fn ids_are_checked_before_quoting() {
        assert!(is_id("0035S0000000001AAA") && is_id("0035S0000000001"));
        assert!(!is_id("003' OR Name != '") && !is_id("003"));
        assert_eq!(id_list(&["a", "b"]), "('a','b')");
    }
}
