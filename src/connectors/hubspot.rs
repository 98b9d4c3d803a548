//! `hubspot`: HubSpot's CRM v3 objects API (contacts, companies, deals, tickets, or any object type
//! named by `table:`) over HTTPS, with a private app's token (see [`http`] for limits and retries).
//!
//! A record is a HubSpot object: its id is HubSpot's record id; its fields are the properties a
//! restore can write back (the properties API says which: not read-only, not calculated) plus
//! `createdate`, every one with a value, as HubSpot's strings; `modified_at` is the modified-date
//! property (`lastmodifieddate` for contacts, `hs_lastmodifieddate` for the others), which is not
//! a field because every write changes it. A full export lists the live records (`limit=100`,
//! `after` paging); HubSpot's archive is the tool's delete, so the recycle bin is not part of a
//! backup. An export `since` a time searches on the modified date (GTE, sorted ascending, pages of
//! 200, moving the lower bound on before HubSpot's 10,000-result cap) and adds a list pass with
//! `archived=true` for the records archived since then, flagged deleted.
//!
//! Writes are batch updates by id (at most 100 inputs a call, `concurrency` calls at once) that set
//! every writable property to the record's value, clearing the others; deletes are batch archives.
//! HubSpot gives every new record a new id, so a record it no longer holds live cannot be written
//! back as it was: `apply` refuses those (naming them, and which of them are in the recycle bin,
//! from where HubSpot restores them under their ids) rather than create copies under new ids that
//! no restore proof could match and that a second run would duplicate.
//!
//! Reads are in [`read`], writes in [`write`], the freeze (`user_role`) in [`freeze`]; `sandbox:`
//! starts the tool's own HubSpot sandbox ([`crate::sandbox::launch`]).

mod freeze;
mod http;
mod read;
mod write;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{ApplyMode, ApplyOutcome, Capabilities, Connector, ConnectorError, RecordPages};
use crate::playbook::model::FreezeSpec;
use crate::playbook::{ConnectorConfig, ConnectorKind};
use crate::record::Record;
use crate::sandbox::launch::Launched;
use http::Api;

/// HubSpot's API unless `base_url` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.hubapi.com";
/// Inputs per batch call at most (HubSpot's limit), and the default.
pub const BATCH_MAX: usize = 100;
/// Requests in flight unless `concurrency` says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// One object of the playbook and the HubSpot object type it is.
#[derive(Clone, Debug)]
struct ObjectMap {
    name: Arc<str>,
    /// `contacts`, `0-1`, `2-1234567`, …
    object_type: String,
    /// The property holding the last-modified time.
    modified: String,
}

/// An object type's properties, as the properties API describes them.
#[derive(Debug)]
struct Properties {
    /// The properties records keep as fields (writable ones and `createdate`), in name order.
    kept: Vec<String>,
    /// The properties a write sets.
    writable: BTreeSet<String>,
    /// Every property name.
    all: BTreeSet<String>,
    /// Their definitions, for the snapshot's schema.
    described: Vec<Value>,
}

impl Properties {
    fn from_api(body: &Value) -> Properties {
        let mut out = Properties {
            kept: Vec::new(),
            writable: BTreeSet::new(),
            all: BTreeSet::new(),
            described: Vec::new(),
        };
        let mut defined: Vec<&Value> = body["results"].as_array().into_iter().flatten().collect();
        defined.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        for p in defined {
            let Some(name) = p["name"].as_str() else { continue };
            let writable = p["modificationMetadata"]["readOnlyValue"] != true && p["calculated"] != true;
            out.all.insert(name.to_string());
            if writable {
                out.writable.insert(name.to_string());
            }
            if writable || name == "createdate" {
                out.kept.push(name.to_string());
            }
            let options: Vec<Value> = p["options"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| json!({"value": o["value"], "label": o["label"]}))
                .collect();
            let mut d = json!({"name": name, "label": p["label"], "type": p["type"], "fieldType": p["fieldType"],
                               "groupName": p["groupName"], "writable": writable});
            if !options.is_empty() {
                d["options"] = Value::Array(options);
            }
            out.described.push(d);
        }
        out
    }

    /// Only the kept and writable properties among `known` (every property stays known, so a
    /// record's field that HubSpot no longer has is still named as such).
    fn narrowed(&self, known: &BTreeSet<String>) -> Properties {
        Properties {
            kept: self.kept.iter().filter(|p| known.contains(*p)).cloned().collect(),
            writable: self.writable.intersection(known).cloned().collect(),
            all: self.all.clone(),
            described: self.described.clone(),
        }
    }

    /// The properties a read asks for: the kept ones and the modified date.
    fn requested(&self, map: &ObjectMap) -> Vec<String> {
        let mut out = self.kept.clone();
        if !out.contains(&map.modified) {
            out.push(map.modified.clone());
        }
        out
    }
}

/// What the connector and its export tasks share.
struct Shared {
    name: String,
    api: Api,
    objects: Vec<ObjectMap>,
    batch: usize,
    concurrency: usize,
    /// Opened for reading only (plans, dry runs): every write is refused.
    read_only: bool,
    properties: tokio::sync::Mutex<HashMap<String, Arc<Properties>>>,
    /// Per object type, the properties a snapshot being compared or restored knew (see
    /// [`Connector::align_to_snapshot`]): reads and writes cover only those.
    aligned: std::sync::Mutex<HashMap<String, BTreeSet<String>>>,
}

pub struct HubspotConnector {
    shared: Arc<Shared>,
    freeze: Option<FreezeSpec>,
    /// The sandbox server this connector talks to, kept running while the connector lives.
    sandbox: Option<Arc<Launched>>,
}

fn bad(name: &str, message: String, hint: &str) -> ConnectorError {
    ConnectorError::new(name, message).hint(hint).bad_input()
}

impl HubspotConnector {
    pub async fn open(config: &ConnectorConfig) -> Result<HubspotConnector, ConnectorError> {
        let name = config.name.as_str();
        let spec = &config.spec;
        let secret = |text: &str| {
            crate::playbook::secret::Secret(text.to_string())
                .resolve(&config.base_dir)
                .map_err(|e| ConnectorError::new(name, e.to_string()).bad_input())
        };
        let sandbox = match &spec.sandbox {
            Some(s) => Some(crate::sandbox::launch::for_connector(config, s).await?),
            None => None,
        };
        let (base, token) = match &sandbox {
            Some(s) => (s.base_url.clone(), s.token.clone()),
            None => {
                let token = spec.token.as_deref().ok_or_else(|| {
                    bad(
                        name,
                        "has no `token`".into(),
                        "add `token: ${env:HUBSPOT_TOKEN}` (a private app's access token)",
                    )
                })?;
                let base = spec.base_url.as_deref().map(secret).transpose()?;
                (base.unwrap_or_else(|| DEFAULT_BASE_URL.into()), secret(token)?)
            }
        };
        match reqwest::Url::parse(&base) {
            Ok(url) if ["http", "https"].contains(&url.scheme()) => {}
            _ => {
                return Err(bad(
                    name,
                    "`base_url` is not an http(s) URL".into(),
                    "leave it out for HubSpot itself, or write e.g. `http://127.0.0.1:8089` for a sandbox",
                ));
            }
        }
        if token.trim().is_empty() {
            return Err(bad(name, "`token` is empty".into(), "set it to a private app's access token"));
        }
        let batch = spec.batch_size.unwrap_or(BATCH_MAX);
        if !(1..=BATCH_MAX).contains(&batch) {
            return Err(bad(
                name,
                format!("`batch_size` {batch} is out of range"),
                "HubSpot takes 1 to 100 inputs per batch call (default 100)",
            ));
        }
        let concurrency = spec.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(bad(
                name,
                "`concurrency` must be at least 1".into(),
                "the default is 4 requests in flight",
            ));
        }
        let mut objects = Vec::new();
        for (object, mapping) in &config.objects {
            let unused = [
                ("schema", mapping.schema.is_some()),
                ("file", mapping.file.is_some()),
                ("id", mapping.id.is_some()),
                ("soft_delete", mapping.soft_delete.is_some()),
            ];
            if let Some((key, _)) = unused.iter().find(|(_, set)| *set) {
                return Err(ConnectorError::new(name, format!("key `{key}` does not apply to a HubSpot object"))
                    .object(object)
                    .hint("a HubSpot object takes `table` (its object type, e.g. `contacts` or `2-1234567`) and `modified` (its modified-date property); ids are HubSpot's record ids")
                    .bad_input());
            }
            let object_type = mapping.table.clone().unwrap_or_else(|| object.clone());
            let modified = mapping.modified.clone().unwrap_or_else(|| {
                if matches!(object_type.as_str(), "contacts" | "contact" | "0-1") {
                    "lastmodifieddate".into()
                } else {
                    "hs_lastmodifieddate".into()
                }
            });
            objects.push(ObjectMap {
                name: object.as_str().into(),
                object_type,
                modified,
            });
        }
        if let Some(f) = &spec.freeze {
            freeze::check_spec(name, f)?;
        }
        Ok(HubspotConnector {
            shared: Arc::new(Shared {
                name: name.into(),
                api: Api::new(name, &base, token, concurrency)?,
                objects,
                batch,
                concurrency,
                read_only: config.read_only,
                properties: tokio::sync::Mutex::new(HashMap::new()),
                aligned: std::sync::Mutex::new(HashMap::new()),
            }),
            freeze: spec.freeze.clone(),
            sandbox,
        })
    }
}

/// At most ten of `ids`, in backticks.
fn some_ids(ids: &[String]) -> String {
    crate::store::verify::preview(ids)
}

impl Shared {
    /// Refuses a write when the connector was opened for reading only.
    fn writable(&self, what: &str) -> Result<(), ConnectorError> {
        if self.read_only {
            return Err(
                ConnectorError::new(&self.name, format!("was opened for reading only, so it does not {what}"))
                    .hint("plans and dry runs never write; run `rollback execute` without `--dry-run`"),
            );
        }
        Ok(())
    }

    fn map(&self, object: &str) -> Result<&ObjectMap, ConnectorError> {
        self.objects.iter().find(|o| &*o.name == object).ok_or_else(|| {
            ConnectorError::new(&self.name, format!("has no object `{object}`"))
                .object(object)
                .hint("list it under the connector's `objects:`")
        })
    }

    fn path(map: &ObjectMap, rest: &str) -> String {
        format!("/crm/v3/objects/{}{rest}", map.object_type)
    }

    /// The object's properties, read once per connector.
    async fn properties(&self, map: &ObjectMap) -> Result<Arc<Properties>, ConnectorError> {
        let mut cache = self.properties.lock().await;
        if let Some(p) = cache.get(&map.object_type) {
            return Ok(p.clone());
        }
        let body = self
            .api
            .get(&format!("/crm/v3/properties/{}", map.object_type), &[], Some(&map.name))
            .await?;
        let props = Properties::from_api(&body);
        if props.all.is_empty() {
            return Err(ConnectorError::new(
                &self.name,
                format!("HubSpot lists no properties for object type `{}`", map.object_type),
            )
            .object(&map.name)
            .hint("check the object type (`table:`) and the private app's `crm.schemas` scopes"));
        }
        let props = Arc::new(props);
        cache.insert(map.object_type.clone(), props.clone());
        Ok(props)
    }

    /// [`Shared::properties`], narrowed to what the aligned snapshot knew, if any.
    async fn properties_for(&self, map: &ObjectMap) -> Result<Arc<Properties>, ConnectorError> {
        let props = self.properties(map).await?;
        let aligned = self.aligned.lock().map_err(|_| ConnectorError::new(&self.name, "lock poisoned"))?;
        let Some(known) = aligned.get(&map.object_type) else {
            return Ok(props);
        };
        Ok(Arc::new(props.narrowed(known)))
    }
}

#[async_trait]
impl Connector for HubspotConnector {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Hubspot
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read: true,
            write: true,
            freeze: true,
        }
    }

    fn objects(&self) -> Vec<String> {
        self.shared.objects.iter().map(|o| o.name.to_string()).collect()
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        let s = &self.shared;
        let Some(map) = s.objects.first() else { return Ok(()) };
        s.api
            .get(&Shared::path(map, ""), &[("limit", "1")], Some(&map.name))
            .await
            .map(|_| ())
    }

    async fn describe(&self) -> Result<Value, ConnectorError> {
        let s = &self.shared;
        let mut objects = Map::new();
        for map in &s.objects {
            let props = s.properties(map).await?;
            objects.insert(
                map.name.to_string(),
                json!({"object_type": map.object_type, "modified": map.modified, "fields": props.kept, "properties": props.described}),
            );
        }
        Ok(json!({"type": "hubspot", "objects": objects}))
    }

    async fn count(&self, object: &str) -> Result<u64, ConnectorError> {
        let s = &self.shared;
        let map = s.map(object)?;
        let answer = s.search(map, &json!({"limit": 1, "properties": ["hs_object_id"]})).await?;
        answer["total"].as_u64().ok_or_else(|| {
            ConnectorError::new(&s.name, "HubSpot's search answer has no `total`")
                .object(object)
                .retryable(true)
        })
    }

    async fn newest_modified(&self, object: &str) -> Option<DateTime<Utc>> {
        let s = &self.shared;
        let map = s.map(object).ok()?;
        let body = json!({"sorts": [{"propertyName": map.modified, "direction": "DESCENDING"}],
                          "properties": [map.modified], "limit": 1});
        let answer = s.search(map, &body).await.ok()?;
        answer["results"][0]["properties"][&map.modified]
            .as_str()
            .and_then(crate::record::parse_time)
    }

    fn export(&self, object: &str, since: Option<DateTime<Utc>>) -> RecordPages {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let shared = self.shared.clone();
        let object = object.to_string();
        tokio::spawn(async move {
            let result = async {
                let map = shared.map(&object)?;
                match since {
                    None => shared.list(map, false, None, &tx).await,
                    Some(since) => {
                        shared.search_since(map, since, &tx).await?;
                        shared.list(map, true, Some(since), &tx).await
                    }
                }
            }
            .await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        super::pages_from_channel(rx)
    }

    async fn apply(&self, object: &str, batch: &[Record], _mode: ApplyMode) -> Result<ApplyOutcome, ConnectorError> {
        self.shared.apply(object, batch).await
    }

    async fn delete(&self, object: &str, ids: &[String]) -> Result<u64, ConnectorError> {
        let s = &self.shared;
        s.archive(s.map(object)?, ids).await
    }

    async fn freeze(&self, run_id: &str, _message: &str) -> Result<Value, ConnectorError> {
        freeze::freeze(&self.shared, self.freeze.as_ref(), run_id).await
    }

    async fn unfreeze(&self, receipt: &Value) -> Result<(), ConnectorError> {
        freeze::unfreeze(&self.shared, receipt).await
    }

    async fn align_to_snapshot(&self, object: &str, schema: &Value) -> Result<(), ConnectorError> {
        let s = &self.shared;
        let map = s.map(object)?;
        let mut aligned = s.aligned.lock().map_err(|_| ConnectorError::new(&s.name, "lock poisoned"))?;
        match super::snapshot_fields(schema, "hubspot", object) {
            Some(fields) => {
                let known: BTreeSet<String> = fields.into_iter().map(str::to_string).collect();
                aligned.insert(map.object_type.clone(), known);
            }
            // No property list to go by (a backup, or another connector's snapshot): every property.
            None => {
                aligned.remove(&map.object_type);
            }
        }
        Ok(())
    }

    fn drill_writes(&self) -> super::DrillWrites {
        super::DrillWrites::own_ids(self.sandbox.is_some())
    }

    async fn sandbox_traffic(
        &self,
        cutover: Option<DateTime<Utc>>,
        objects: &[String],
        n: u64,
        seed: u64,
    ) -> Result<std::collections::BTreeMap<String, crate::store::manifest::DeltaCounts>, ConnectorError> {
        let shared = &self.shared;
        if self.sandbox.is_none() {
            return Err(super::sandbox_traffic::not_sandboxed(&shared.name, "hubspot"));
        }
        shared.writable("simulate users")?;
        let maps = objects.iter().map(|o| shared.map(o)).collect::<Result<Vec<_>, _>>()?;
        let pairs: Vec<(&str, &str)> = maps.iter().map(|m| (&*m.name, m.object_type.as_str())).collect();
        super::sandbox_traffic::play(&shared.name, cutover, &pairs, n, seed, |body| async move {
            Ok(shared.api.post("/_sandbox/traffic", &body, None).await?.body)
        })
        .await
    }

    async fn write_probe(&self) -> Result<bool, ConnectorError> {
        freeze::write_probe(&self.shared, self.freeze.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn props() -> Properties {
        Properties::from_api(&json!({"results": [
            {"name": "email", "type": "string", "modificationMetadata": {"readOnlyValue": false}},
            {"name": "lastmodifieddate", "type": "datetime", "modificationMetadata": {"readOnlyValue": true}},
            {"name": "createdate", "type": "datetime", "modificationMetadata": {"readOnlyValue": true}},
            {"name": "hs_object_id", "type": "number", "modificationMetadata": {"readOnlyValue": true}},
            {"name": "score", "type": "number", "calculated": true},
            {"name": "firstname", "type": "string", "options": [], "modificationMetadata": {"readOnlyValue": false}},
        ]}))
    }

    /// Records keep the writable properties and `createdate`; writes set only writable ones.
    #[test]
    fn kept_and_writable_properties() {
        let p = props();
        assert_eq!(p.kept, ["createdate", "email", "firstname"]);
        assert_eq!(p.writable.iter().collect::<Vec<_>>(), ["email", "firstname"]);
        assert_eq!(p.all.len(), 6);
        let map = ObjectMap {
            name: "contacts".into(),
            object_type: "contacts".into(),
            modified: "lastmodifieddate".into(),
        };
        assert_eq!(p.requested(&map), ["createdate", "email", "firstname", "lastmodifieddate"]);
    }

    /// After aligning with a snapshot that knew fewer properties (`firstname` was created in
    /// HubSpot after it was taken), reads leave the new property out and writes neither set nor
    /// clear it; a snapshot of another connector type changes nothing.
    #[tokio::test]
    async fn aligned_snapshot_narrows_reads_and_writes() {
        let c = HubspotConnector::open(&config(false)).await.unwrap();
        let s = &c.shared;
        s.properties.lock().await.insert("contacts".into(), Arc::new(props()));
        let map = s.map("contacts").unwrap();
        let full = s.properties_for(map).await.unwrap();
        assert_eq!(full.kept, ["createdate", "email", "firstname"]);

        c.align_to_snapshot(
            "contacts",
            &json!({"type": "sqlite", "objects": {"contacts": {"fields": ["email"]}}}),
        )
        .await
        .unwrap();
        assert_eq!(s.properties_for(map).await.unwrap().kept.len(), 3, "not a HubSpot schema");

        let schema = json!({"type": "hubspot", "objects": {"contacts": {"fields": ["createdate", "email"]}}});
        c.align_to_snapshot("contacts", &schema).await.unwrap();
        let narrowed = s.properties_for(map).await.unwrap();
        assert_eq!(narrowed.kept, ["createdate", "email"]);
        assert_eq!(narrowed.requested(map), ["createdate", "email", "lastmodifieddate"]);
        let record = Record {
            object: "contacts".into(),
            id: "7".into(),
            fields: BTreeMap::from([("email".to_string(), json!("a@example.com"))]),
            modified_at: None,
            deleted: false,
        };
        let input = s.update_input(map, &narrowed, &record).unwrap();
        assert_eq!(input, json!({"id": "7", "properties": {"email": "a@example.com"}}));

        // A backup lifts the narrowing: it reads every property again.
        c.align_to_snapshot("contacts", &Value::Null).await.unwrap();
        assert_eq!(s.properties_for(map).await.unwrap().kept.len(), 3);
    }

    /// A connector of one object, `contacts`, at an address where nothing listens.
    fn config(read_only: bool) -> ConnectorConfig {
        ConnectorConfig {
            name: "crm".into(),
            kind: ConnectorKind::Hubspot,
            objects: vec![("contacts".into(), Default::default())],
            spec: crate::playbook::model::ConnectorSpec {
                token: Some("t".into()),
                base_url: Some("http://127.0.0.1:9".into()),
                ..Default::default()
            },
            base_dir: ".".into(),
            store_dir: ".rollback".into(),
            read_only,
        }
    }

    /// Opened for reading only (a plan, a dry run), it refuses every write before sending anything.
    #[tokio::test]
    async fn read_only_refuses_writes() {
        let c = HubspotConnector::open(&config(true)).await.unwrap();
        let refused = |e: ConnectorError| assert!(e.message.contains("opened for reading only"), "{e}");
        refused(c.apply("contacts", &[], ApplyMode::Upsert).await.unwrap_err());
        refused(c.delete("contacts", &["1".into()]).await.unwrap_err());
        refused(c.freeze("run", "frozen").await.unwrap_err());
        refused(c.unfreeze(&json!({"method": "user_role", "users": []})).await.unwrap_err());
    }

    /// A HubSpot object becomes a record: empty values left out, the modified date as
    /// `modified_at` (not a field), archived objects flagged deleted at their archive time.
    #[tokio::test]
    async fn objects_become_records() {
        let c = HubspotConnector::open(&config(false)).await.unwrap();
        let s = &c.shared;
        let map = s.map("contacts").unwrap();
        let live = json!({"id": "7", "properties": {"email": "a@b.c", "firstname": "", "createdate": "2025-01-01T00:00:00.000Z",
                          "lastmodifieddate": "2025-02-01T00:00:00.000Z", "hs_object_id": "7"},
                          "updatedAt": "2025-02-01T00:00:00.000Z", "archived": false});
        let r = s.record(map, &props(), &live).unwrap();
        assert_eq!(r.id, "7");
        let fields: BTreeMap<&str, &str> = r.fields.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
        assert_eq!(
            fields,
            BTreeMap::from([("createdate", "2025-01-01T00:00:00.000Z"), ("email", "a@b.c")])
        );
        assert_eq!(r.modified_at, crate::record::parse_time("2025-02-01T00:00:00Z"));
        assert!(!r.deleted);
        let gone = json!({"id": "8", "properties": {"email": "x@y.z"}, "updatedAt": "2025-03-01T00:00:00.000Z",
                          "archived": true, "archivedAt": "2025-03-02T00:00:00.000Z"});
        let r = s.record(map, &props(), &gone).unwrap();
        assert!(r.deleted);
        assert_eq!(r.modified_at, crate::record::parse_time("2025-03-02T00:00:00Z"));
        assert!(s.record(map, &props(), &json!({"properties": {}})).is_err());
    }

    /// Mapping keys of table connectors, a batch over 100 and no concurrency are refused.
    #[tokio::test]
    async fn bad_settings_are_refused() {
        let mut config = ConnectorConfig {
            name: "crm".into(),
            kind: ConnectorKind::Hubspot,
            objects: vec![(
                "people".into(),
                crate::playbook::model::ObjectMapping {
                    table: Some("contacts".into()),
                    id: Some("email".into()),
                    ..Default::default()
                },
            )],
            spec: crate::playbook::model::ConnectorSpec {
                token: Some("t".into()),
                ..Default::default()
            },
            base_dir: ".".into(),
            store_dir: ".rollback".into(),
            read_only: false,
        };
        let e = HubspotConnector::open(&config).await.err().unwrap();
        assert!(
            e.to_string().contains("key `id` does not apply") && e.object.as_deref() == Some("people"),
            "{e}"
        );
        config.objects[0].1.id = None;
        config.spec.batch_size = Some(200);
        assert!(
            HubspotConnector::open(&config)
                .await
                .err()
                .unwrap()
                .to_string()
                .contains("1 to 100")
        );
        config.spec.batch_size = None;
        config.spec.concurrency = Some(0);
        assert!(HubspotConnector::open(&config).await.is_err());
        config.spec.concurrency = None;
        config.spec.base_url = Some("ftp://x".into());
        assert!(HubspotConnector::open(&config).await.err().unwrap().bad_input);
        config.spec.base_url = None;
        let c = HubspotConnector::open(&config).await.unwrap();
        assert_eq!(c.shared.objects[0].modified, "lastmodifieddate");
        assert_eq!(c.shared.api.base(), DEFAULT_BASE_URL);
    }
}
