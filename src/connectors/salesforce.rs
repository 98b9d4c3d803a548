//! `salesforce`: Salesforce's REST API (sObjects such as Contact, Account, Opportunity, Case, or
//! any custom `…__c` object) over HTTPS with an access token or session id (`token:`) for
//! `instance_url:` (see [`http`] for limits and retries).
//!
//! A record is an sObject row: its id is Salesforce's 18-character id; its fields are the fields
//! a restore can write back or that never change (the describe's updateable or createable fields,
//! not calculated, not Classic Encryption text, which reads as a mask) plus `CreatedDate`, every one with a value: text as text, numbers as their
//! decimal text, booleans as booleans, date-times in RFC 3339 UTC. `modified_at` is
//! `SystemModstamp` (or the object's `modified:` field), which is not a field because every write
//! changes it. A full export is a SOQL `queryAll … WHERE IsDeleted = false` ordered by `Id`,
//! paged through `nextRecordsUrl`: the live rows, archived activities included (which `query`
//! leaves out), but not deleted rows (in the Recycle Bin, which is not part of a backup). Every
//! query runs as the token's user, so a backup holds only the rows that user can see: it needs
//! "View All Data" (or "View All" on each object). An export `since` a time is a `queryAll` on `SystemModstamp >= since`, so rows deleted
//! since then come back too, flagged deleted.
//!
//! Writes are sObject Collections updates by id (at most 200 rows a call, `allOrNone` false,
//! `concurrency` calls at once) that set every updateable field to the record's value, clearing the
//! others; deletes are Collections deletes. Salesforce gives every new row a new id, and its REST
//! API cannot undelete, so a record it no longer holds live cannot be written back as it was:
//! `apply` refuses those (naming them, and which of them are in the Recycle Bin, from where
//! Salesforce undeletes them under their ids) rather than create copies under new ids that no
//! restore proof could match and that a second run would duplicate.
//!
//! The describe is read in [`describe`], records in [`read`], writes in [`write`], the freeze
//! (`freeze_users`) in [`freeze`]; `sandbox:` starts the tool's own Salesforce sandbox
//! ([`crate::sandbox::launch`]), whose CA is trusted alone for that connection.

mod describe;
mod freeze;
mod http;
mod read;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{ApplyMode, ApplyOutcome, Capabilities, Connector, ConnectorError, EncodedPages, RecordPages};
use crate::playbook::model::FreezeSpec;
use crate::playbook::{ConnectorConfig, ConnectorKind};
use crate::record::Record;
use crate::sandbox::launch::Launched;
use describe::{Describe, Field};
use http::{Api, Trust};

/// The REST API version unless `api_version` says otherwise.
pub const DEFAULT_API_VERSION: &str = "v60.0";
/// Rows per sObject Collections call at most (Salesforce's limit), and the default.
pub const BATCH_MAX: usize = 200;
/// Requests in flight unless `concurrency` says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// One object of the playbook and the sObject it is.
#[derive(Clone, Debug)]
struct ObjectMap {
    name: Arc<str>,
    /// `Contact`, `Invoice__c`, …
    sobject: String,
    /// The `modified:` field the playbook names, if any.
    modified: Option<String>,
}

/// What a plan says about reading, which it cannot check: the REST API shows a user's profile
/// and permission sets only to users who may read them, so whether the token's user sees every
/// row is not known from here.
const VISIBILITY_NOTE: &str = "; note: a backup holds only the records the token's user can see (sharing rules apply), so that user needs \"View All Data\" (or \"View All\" on each object), which is not checked here";

/// What the connector and its export tasks share.
struct Shared {
    name: String,
    api: Api,
    objects: Vec<ObjectMap>,
    batch: usize,
    concurrency: usize,
    /// Opened for reading only (plans, dry runs): every write is refused.
    read_only: bool,
    describes: tokio::sync::Mutex<HashMap<String, Arc<Describe>>>,
    /// Per object, the fields a snapshot being compared or restored knew, by lower-case name
    /// (see [`Connector::align_to_snapshot`]): reads and writes cover only those, and records
    /// read name them as the snapshot did, so a field renamed only in case still compares.
    aligned: std::sync::Mutex<HashMap<String, HashMap<String, String>>>,
}

pub struct SalesforceConnector {
    shared: Arc<Shared>,
    freeze: Option<FreezeSpec>,
    /// The sandbox server this connector talks to, kept running while the connector lives.
    sandbox: Option<Arc<Launched>>,
}

fn bad(name: &str, message: String, hint: &str) -> ConnectorError {
    ConnectorError::new(name, message).hint(hint).bad_input()
}

/// A Salesforce API name: a letter, then letters, digits and underscores (`Invoice__c`).
fn api_name(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `v60.0` from `v60.0`, `60.0` or `60`; `None` for anything else.
fn api_version(text: &str) -> Option<String> {
    let number = text.trim().trim_start_matches(['v', 'V']);
    let (major, minor) = number.split_once('.').unwrap_or((number, "0"));
    let ok = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.chars().all(|c| c.is_ascii_digit());
    (ok(major, 3) && ok(minor, 1)).then(|| format!("v{major}.{minor}"))
}

/// Where the connector talks to, with which token and what TLS trust.
struct Endpoint {
    base: String,
    token: String,
    trust: Trust,
}

/// The endpoint the playbook configures (no sandbox): `instance_url` (or `base_url`), `token`,
/// `tls: { root_cert }`.
fn configured_endpoint(config: &ConnectorConfig) -> Result<Endpoint, ConnectorError> {
    let name = config.name.as_str();
    let spec = &config.spec;
    let secret = |text: &str| {
        crate::playbook::secret::Secret(text.to_string())
            .resolve(&config.base_dir)
            .map_err(|e| ConnectorError::new(name, e.to_string()).bad_input())
    };
    let oauth: Vec<&str> = [
        ("username", &spec.username),
        ("password", &spec.password),
        ("client_id", &spec.client_id),
        ("client_secret", &spec.client_secret),
    ]
    .iter()
    .filter(|(_, v)| v.is_some())
    .map(|(k, _)| *k)
    .collect();
    let Some(token) = spec.token.as_deref() else {
        let message = if oauth.is_empty() {
            "has no `token`".to_string()
        } else {
            format!(
                "has no `token`, and this build has no OAuth username-password flow to get one with {}",
                oauth.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            )
        };
        return Err(bad(
            name,
            message,
            "add `token: ${env:SALESFORCE_TOKEN}`, an access token or session id for `instance_url` (e.g. `accessToken` from `sf org display --target-org ALIAS --json`)",
        ));
    };
    if !oauth.is_empty() {
        tracing::warn!(connector = name, keys = %oauth.join(", "), "these keys are not used: the connector signs in with `token`");
    }
    let instance = match (&spec.instance_url, &spec.base_url) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad(
                name,
                "has both `instance_url` and `base_url`, and they differ".into(),
                "keep `instance_url` only (`base_url` is its other name)",
            ));
        }
        (Some(url), _) | (None, Some(url)) => secret(url)?,
        (None, None) => {
            return Err(bad(
                name,
                "has no `instance_url`".into(),
                "add `instance_url: https://MYDOMAIN.my.salesforce.com` (the Instance Url `sf org display` shows)",
            ));
        }
    };
    let mut root_cert = None;
    for (key, value) in spec.tls.iter().flatten() {
        match key.as_str() {
            "root_cert" => {
                let path = config.base_dir.join(secret(value)?);
                let pem = std::fs::read(&path).map_err(|e| {
                    bad(
                        name,
                        format!("cannot read `tls.root_cert` `{}`: {e}", path.display()),
                        "paths are relative to the playbook's folder",
                    )
                })?;
                root_cert = Some(pem);
            }
            other => {
                return Err(bad(
                    name,
                    format!("unknown `tls` key `{other}`"),
                    "a salesforce connector takes `tls: { root_cert: PATH }`, a CA to trust besides the system's (certificates are always verified)",
                ));
            }
        }
    }
    Ok(Endpoint {
        base: instance,
        token: secret(token)?,
        trust: root_cert.map_or(Trust::System, Trust::Also),
    })
}

impl SalesforceConnector {
    pub async fn open(config: &ConnectorConfig) -> Result<SalesforceConnector, ConnectorError> {
        let name = config.name.as_str();
        let spec = &config.spec;
        let sandbox = match &spec.sandbox {
            Some(s) => Some(crate::sandbox::launch::for_connector(config, s).await?),
            None => None,
        };
        let endpoint = match &sandbox {
            Some(s) => Endpoint {
                base: s.base_url.clone(),
                token: s.token.clone(),
                trust: match &s.ca_pem {
                    Some(pem) => Trust::Only(pem.clone()),
                    None => Trust::System,
                },
            },
            None => configured_endpoint(config)?,
        };
        match reqwest::Url::parse(&endpoint.base) {
            Ok(url) if url.scheme() == "https" && url.host_str().is_some() => {}
            Ok(url) if url.scheme() == "http" && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")) => {}
            Ok(url) if url.scheme() == "http" => {
                return Err(bad(
                    name,
                    "`instance_url` is plain http, which would send the token unencrypted".into(),
                    "write `https://…` (Salesforce serves HTTPS only)",
                ));
            }
            _ => {
                return Err(bad(
                    name,
                    "`instance_url` is not an https URL".into(),
                    "write e.g. `https://acme.my.salesforce.com`",
                ));
            }
        }
        if endpoint.token.trim().is_empty() {
            return Err(bad(name, "`token` is empty".into(), "set it to an access token or session id"));
        }
        let version = match spec.api_version.as_deref() {
            None => DEFAULT_API_VERSION.to_string(),
            Some(text) => api_version(text).ok_or_else(|| {
                bad(
                    name,
                    format!("`api_version` `{text}` is not a Salesforce API version"),
                    "write e.g. `v60.0` (the default)",
                )
            })?,
        };
        let batch = spec.batch_size.unwrap_or(BATCH_MAX);
        if !(1..=BATCH_MAX).contains(&batch) {
            return Err(bad(
                name,
                format!("`batch_size` {batch} is out of range"),
                "sObject Collections take 1 to 200 records per call (default 200)",
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
        let objects = object_maps(config)?;
        if let Some(f) = &spec.freeze {
            freeze::check_spec(name, f)?;
        }
        Ok(SalesforceConnector {
            shared: Arc::new(Shared {
                name: name.into(),
                api: Api::new(name, &endpoint.base, &version, endpoint.token, concurrency, endpoint.trust)?,
                objects,
                batch,
                concurrency,
                read_only: config.read_only,
                describes: tokio::sync::Mutex::new(HashMap::new()),
                aligned: std::sync::Mutex::new(HashMap::new()),
            }),
            freeze: spec.freeze.clone(),
            sandbox,
        })
    }
}

/// The playbook's objects: an sObject name each (or `table:`), and an optional `modified:`.
fn object_maps(config: &ConnectorConfig) -> Result<Vec<ObjectMap>, ConnectorError> {
    let name = config.name.as_str();
    let mut objects = Vec::new();
    for (object, mapping) in &config.objects {
        let unused = [
            ("schema", mapping.schema.is_some()),
            ("file", mapping.file.is_some()),
            ("id", mapping.id.is_some()),
            ("soft_delete", mapping.soft_delete.is_some()),
        ];
        let refuse = |message: String| {
            ConnectorError::new(name, message)
                .object(object)
                .hint("a Salesforce object takes `table` (its sObject API name, e.g. `Contact` or `Invoice__c`) and `modified` (a datetime field, default `SystemModstamp`); ids are Salesforce's")
                .bad_input()
        };
        if let Some((key, _)) = unused.iter().find(|(_, set)| *set) {
            return Err(refuse(format!("key `{key}` does not apply to a Salesforce object")));
        }
        let sobject = mapping.table.clone().unwrap_or_else(|| object.clone());
        if !api_name(&sobject) {
            return Err(refuse(format!("`{sobject}` is not an sObject API name")));
        }
        if let Some(m) = mapping.modified.as_deref().filter(|m| !api_name(m)) {
            return Err(refuse(format!("`{m}` is not a field API name")));
        }
        objects.push(ObjectMap {
            name: object.as_str().into(),
            sobject,
            modified: mapping.modified.clone(),
        });
    }
    Ok(objects)
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

    /// The object's describe, read once per connector.
    async fn describe(&self, map: &ObjectMap) -> Result<Arc<Describe>, ConnectorError> {
        let mut cache = self.describes.lock().await;
        if let Some(d) = cache.get(&*map.name) {
            return Ok(d.clone());
        }
        let path = self.api.data(&format!("/sobjects/{}/describe", map.sobject));
        let body = self.api.get(&path, &[], Some(&map.name)).await?;
        let described = Describe::from_api(&body, map.modified.as_deref()).map_err(|why| {
            ConnectorError::new(&self.name, format!("sObject `{}`: {why}", map.sobject))
                .object(&map.name)
                .hint("check the object's `table:` and `modified:` against its fields (Setup → Object Manager)")
                .bad_input()
        })?;
        let described = Arc::new(described);
        cache.insert(map.name.to_string(), described.clone());
        Ok(described)
    }

    /// [`Shared::describe`], narrowed to the fields the aligned snapshot knew, if any.
    async fn describe_for(&self, map: &ObjectMap) -> Result<Arc<Describe>, ConnectorError> {
        let described = self.describe(map).await?;
        let aligned = self.aligned.lock().map_err(|_| ConnectorError::new(&self.name, "lock poisoned"))?;
        Ok(match aligned.get(&*map.name) {
            Some(known) => Arc::new(described.narrowed(known)),
            None => described,
        })
    }

    /// The org's global describe: every sObject's summary by lower-case name.
    async fn sobjects(&self) -> Result<HashMap<String, Value>, ConnectorError> {
        let body = self.api.get(&self.api.data("/sobjects"), &[], None).await?;
        Ok(body["sobjects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| Some((o["name"].as_str()?.to_ascii_lowercase(), o.clone())))
            .collect())
    }

    /// Whether the token's user may `need` (`read`, `write`) every configured object, by the
    /// global describe's flags (which reflect the user's permissions).
    async fn object_rights(&self, need: &str) -> Result<String, String> {
        let all = self.sobjects().await.map_err(|e| e.message.clone())?;
        let flags: &[&str] = if need == "write" {
            &["updateable", "deletable"]
        } else {
            &["queryable"]
        };
        let mut missing = Vec::new();
        for map in &self.objects {
            match all.get(&map.sobject.to_ascii_lowercase()) {
                None => missing.push(format!("`{}` does not exist or is not visible to the token's user", map.sobject)),
                Some(o) => {
                    let lacking: Vec<&str> = flags.iter().copied().filter(|f| o[*f] != true).collect();
                    if !lacking.is_empty() {
                        missing.push(format!("`{}` is not {}", map.sobject, lacking.join(" or ")));
                    }
                }
            }
        }
        if missing.is_empty() {
            let names: Vec<&str> = self.objects.iter().map(|o| o.sobject.as_str()).collect();
            // A restore compares and writes only what the user sees, too.
            let note = VISIBILITY_NOTE;
            Ok(format!("{} are {}{note}", names.join(", "), flags.join(" and ")))
        } else {
            Err(format!(
                "{} (grant the token's user these object permissions in its profile or a permission set)",
                missing.join("; ")
            ))
        }
    }
}

#[async_trait]
impl Connector for SalesforceConnector {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Salesforce
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
        let api = &self.shared.api;
        api.get(&api.data(""), &[], None).await.map(|_| ())
    }

    async fn describe(&self) -> Result<Value, ConnectorError> {
        let s = &self.shared;
        let mut objects = Map::new();
        for map in &s.objects {
            let d = s.describe(map).await?;
            let fields: Vec<&str> = d.kept.iter().map(|f| f.name.as_str()).collect();
            let foreign_keys: Vec<Value> = d
                .references
                .iter()
                .map(|(field, target)| json!({"column": field, "table": target}))
                .collect();
            objects.insert(
                map.name.to_string(),
                json!({"sobject": map.sobject, "table": map.sobject, "modified": d.modified, "key_prefix": d.key_prefix,
                       "fields": fields, "foreign_keys": foreign_keys, "properties": d.described}),
            );
        }
        Ok(json!({"type": "salesforce", "instance_url": s.api.base(), "objects": objects}))
    }

    async fn count(&self, object: &str) -> Result<u64, ConnectorError> {
        let s = &self.shared;
        let map = s.map(object)?;
        let d = s.describe(map).await?;
        let mut soql = format!("SELECT COUNT() FROM {}", map.sobject);
        let all = Shared::live_only(&d, &mut soql, " WHERE ");
        let answer = s.query(&soql, all, &map.name).await?;
        answer["totalSize"].as_u64().ok_or_else(|| {
            ConnectorError::new(&s.name, "Salesforce's COUNT() answer has no `totalSize`")
                .object(object)
                .retryable(true)
        })
    }

    async fn newest_modified(&self, object: &str) -> Option<DateTime<Utc>> {
        let s = &self.shared;
        let map = s.map(object).ok()?;
        let modified = s.describe(map).await.ok()?.modified.clone()?;
        let soql = format!("SELECT {modified} FROM {} ORDER BY {modified} DESC LIMIT 1", map.sobject);
        let answer = s.query(&soql, false, &map.name).await.ok()?;
        answer["records"][0][&modified].as_str().and_then(read::parse_time)
    }

    fn export(&self, object: &str, since: Option<DateTime<Utc>>) -> RecordPages {
        let shared = self.shared.clone();
        let object = object.to_string();
        read::spawn_pages(move |tx| async move {
            let map = shared.map(&object)?;
            shared.export_to(map, since, &tx).await
        })
    }

    fn export_ids(&self, object: &str, ids: Vec<String>) -> EncodedPages {
        let shared = self.shared.clone();
        let object = object.to_string();
        super::encode_pages(read::spawn_pages(move |tx| async move {
            let map = shared.map(&object)?;
            shared.export_by_ids(map, &ids, &tx).await
        }))
    }

    async fn apply(&self, object: &str, batch: &[Record], _mode: ApplyMode) -> Result<ApplyOutcome, ConnectorError> {
        self.shared.apply(object, batch).await
    }

    async fn delete(&self, object: &str, ids: &[String]) -> Result<u64, ConnectorError> {
        let s = &self.shared;
        s.remove(s.map(object)?, ids).await
    }

    async fn freeze(&self, run_id: &str, _message: &str) -> Result<Value, ConnectorError> {
        freeze::freeze(&self.shared, self.freeze.as_ref(), run_id).await
    }

    async fn unfreeze(&self, receipt: &Value) -> Result<(), ConnectorError> {
        freeze::unfreeze(&self.shared, receipt).await
    }

    async fn privileges(&self, need: &str) -> Option<Result<String, String>> {
        match need {
            "read" | "write" => Some(self.shared.object_rights(need).await),
            "freeze" => freeze::privileges(&self.shared, self.freeze.as_ref()).await,
            _ => None,
        }
    }

    async fn write_probe(&self) -> Result<bool, ConnectorError> {
        freeze::write_probe(&self.shared, self.freeze.as_ref()).await
    }

    async fn align_to_snapshot(&self, object: &str, schema: &Value) -> Result<(), ConnectorError> {
        let s = &self.shared;
        let map = s.map(object)?;
        let mut aligned = s.aligned.lock().map_err(|_| ConnectorError::new(&s.name, "lock poisoned"))?;
        match super::snapshot_fields(schema, "salesforce", object) {
            Some(fields) => {
                let known: HashMap<String, String> = fields.into_iter().map(|f| (f.to_ascii_lowercase(), f.to_string())).collect();
                aligned.insert(map.name.to_string(), known);
            }
            // No field list to go by (a backup, or another connector's snapshot): every field.
            None => {
                aligned.remove(map.name.as_ref());
            }
        }
        Ok(())
    }

    /// Salesforce gives new records ids of its own: a drill can only use the tool's sandbox.
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
        let s = &self.shared;
        if self.sandbox.is_none() {
            return Err(super::sandbox_traffic::not_sandboxed(&s.name, "salesforce"));
        }
        s.writable("simulate users")?;
        let maps = objects.iter().map(|o| s.map(o)).collect::<Result<Vec<_>, _>>()?;
        let pairs: Vec<(&str, &str)> = maps.iter().map(|m| (&*m.name, m.sobject.as_str())).collect();
        super::sandbox_traffic::play(&s.name, cutover, &pairs, n, seed, |body| async move {
            s.api.post("/_sandbox/traffic", &body, None).await
        })
        .await
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// API versions are normalised; names that could break a query are refused.
    #[test]
    fn versions_and_names() {
        assert_eq!(api_version("v60.0").as_deref(), Some("v60.0"));
        assert_eq!(api_version("61.0").as_deref(), Some("v61.0"));
        assert_eq!(api_version("59").as_deref(), Some("v59.0"));
        assert_eq!(api_version("sixty"), None);
        assert_eq!(api_version("60.0/../x"), None);
        assert!(api_name("Invoice__c") && api_name("Contact"));
        assert!(!api_name("Contact; DELETE") && !api_name("") && !api_name("1Contact"));
    }

    /// A connector of one object, `Contact`, at an address where nothing listens.
    pub(super) fn config(read_only: bool) -> ConnectorConfig {
        ConnectorConfig {
            name: "crm".into(),
            kind: ConnectorKind::Salesforce,
            objects: vec![("Contact".into(), Default::default())],
            spec: crate::playbook::model::ConnectorSpec {
                token: Some("t".into()),
                instance_url: Some("https://127.0.0.1:9".into()),
                ..Default::default()
            },
            base_dir: ".".into(),
            store_dir: ".rollback".into(),
            read_only,
        }
    }

    /// After aligning with a snapshot that knew fewer fields (`Email` was added after it was
    /// taken), reads leave the new field out and writes neither set nor clear it; a snapshot of
    /// another connector type changes nothing.
    #[tokio::test]
    async fn aligned_snapshot_narrows_reads_and_writes() {
        let c = SalesforceConnector::open(&config(false)).await.unwrap();
        let s = &c.shared;
        let described = Describe::from_api(&describe::tests::contact_describe(), None).unwrap();
        s.describes.lock().await.insert("Contact".into(), Arc::new(described));
        let map = s.map("Contact").unwrap();
        assert_eq!(s.describe_for(map).await.unwrap().kept.len(), 5);
        let other = json!({"type": "hubspot", "objects": {"Contact": {"fields": ["LastName"]}}});
        c.align_to_snapshot("Contact", &other).await.unwrap();
        assert_eq!(s.describe_for(map).await.unwrap().kept.len(), 5, "not a Salesforce schema");

        let schema = json!({"type": "salesforce", "objects": {"Contact": {"fields": ["AccountId", "CreatedDate", "LastName"]}}});
        c.align_to_snapshot("Contact", &schema).await.unwrap();
        let narrowed = s.describe_for(map).await.unwrap();
        let record = Record {
            object: "Contact".into(),
            id: "0035S0000000001AAA".into(),
            fields: [("LastName".to_string(), json!("Silva"))].into(),
            modified_at: None,
            deleted: false,
        };
        let row = s.update_row(map, &narrowed, &record).unwrap();
        assert_eq!(
            row,
            json!({"attributes": {"type": "Contact"}, "id": "0035S0000000001AAA", "AccountId": null, "LastName": "Silva"})
        );

        // A backup lifts the narrowing: it reads every field again.
        c.align_to_snapshot("Contact", &Value::Null).await.unwrap();
        assert_eq!(s.describe_for(map).await.unwrap().kept.len(), 5);
    }

    /// A field whose name changed case between the snapshot and the live describe
    /// (`lastname` → `LastName`, `EMAIL` → `Email`) is written with the snapshot's value, not
    /// cleared, and read back under the snapshot's spelling once aligned with it.
    #[tokio::test]
    async fn fields_match_in_any_case() {
        let c = SalesforceConnector::open(&config(false)).await.unwrap();
        let s = &c.shared;
        let described = Describe::from_api(&describe::tests::contact_describe(), None).unwrap();
        let map = s.map("Contact").unwrap();
        let record = Record {
            object: "Contact".into(),
            id: "0035S0000000001AAA".into(),
            fields: [
                ("lastname".to_string(), json!("Silva")),
                ("EMAIL".to_string(), json!("ana@example.com")),
            ]
            .into(),
            modified_at: None,
            deleted: false,
        };
        let row = s.update_row(map, &described, &record).unwrap();
        assert_eq!(
            row,
            json!({"attributes": {"type": "Contact"}, "id": "0035S0000000001AAA", "AccountId": null,
                   "Email": "ana@example.com", "LastName": "Silva"})
        );

        // Aligned with that snapshot, rows read back under its spelling, so they compare equal.
        s.describes.lock().await.insert("Contact".into(), Arc::new(described));
        let schema = json!({"type": "salesforce", "objects": {"Contact": {"fields": ["EMAIL", "lastname"]}}});
        c.align_to_snapshot("Contact", &schema).await.unwrap();
        let narrowed = s.describe_for(map).await.unwrap();
        let row = json!({"attributes": {"type": "Contact"}, "Id": "0035S0000000001AAA", "LastName": "Silva",
                         "Email": "ana@example.com", "SystemModstamp": "2024-03-01T10:00:00.000+0000"});
        assert_eq!(s.record(map, &narrowed, &row).unwrap().fields, record.fields);
        assert_eq!(s.update_row(map, &narrowed, &record).unwrap()["LastName"], "Silva");
    }

    /// Opened for reading only (a plan, a dry run), it refuses every write before sending anything.
    #[tokio::test]
    async fn read_only_refuses_writes() {
        let c = SalesforceConnector::open(&config(true)).await.unwrap();
        let refused = |e: ConnectorError| assert!(e.message.contains("opened for reading only"), "{e}");
        refused(c.apply("Contact", &[], ApplyMode::Upsert).await.unwrap_err());
        refused(c.delete("Contact", &["003000000000001AAA".into()]).await.unwrap_err());
        refused(c.freeze("run", "frozen").await.unwrap_err());
        refused(c.unfreeze(&json!({"method": "freeze_users", "users": []})).await.unwrap_err());
    }

    /// Missing or contradictory settings are refused with the key and a hint, before any call.
    #[tokio::test]
    async fn bad_settings_are_refused() {
        let error = |config: &ConnectorConfig| {
            let config = config.clone();
            async move { SalesforceConnector::open(&config).await.err().expect("refused") }
        };
        let mut c = config(false);
        c.spec.instance_url = None;
        let e = error(&c).await;
        assert!(e.bad_input && e.message.contains("no `instance_url`") && e.hint.is_some(), "{e}");
        c.spec.base_url = Some("https://127.0.0.1:9".into());
        assert!(SalesforceConnector::open(&c).await.is_ok(), "`base_url` is the other name");
        c.spec.instance_url = Some("https://other.example.com".into());
        assert!(error(&c).await.message.contains("both"));
        c.spec.base_url = None;
        c.spec.instance_url = Some("http://acme.my.salesforce.com".into());
        assert!(error(&c).await.message.contains("unencrypted"));
        c.spec.instance_url = Some("https://127.0.0.1:9".into());
        c.spec.token = None;
        c.spec.username = Some("me@example.com".into());
        let e = error(&c).await;
        assert!(
            e.message.contains("no OAuth username-password flow") && e.message.contains("`username`"),
            "{e}"
        );
        c.spec.token = Some("t".into());
        c.spec.api_version = Some("latest".into());
        assert!(error(&c).await.message.contains("api_version"));
        c.spec.api_version = None;
        c.spec.batch_size = Some(201);
        assert!(error(&c).await.message.contains("out of range"));
        c.spec.batch_size = None;
        c.objects[0].1.id = Some("Email".into());
        assert_eq!(error(&c).await.object.as_deref(), Some("Contact"));
        c.objects[0].1.id = None;
        c.objects[0].1.table = Some("Contact WHERE".into());
        assert!(error(&c).await.message.contains("not an sObject API name"));
        c.objects[0].1.table = None;
        c.spec.tls = Some([("mode".to_string(), "none".to_string())].into());
        assert!(error(&c).await.message.contains("unknown `tls` key `mode`"));
    }
}
