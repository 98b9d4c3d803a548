//! The playbook as written (format version 1): serde types that mirror the YAML, with spans.
//!
//! These types only describe the file. [`super::resolve`] turns them into plain settings; nothing
//! else in the crate reads them.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookSpec {
    pub version: Spanned<u32>,
    pub name: Spanned<String>,
    #[serde(default)]
    pub cutover: Option<Spanned<String>>,
    #[serde(default)]
    pub objectives: Option<ObjectivesSpec>,
    #[serde(default)]
    pub store: Option<StoreSpec>,
    pub connectors: BTreeMap<String, Spanned<ConnectorSpec>>,
    #[serde(default)]
    pub environments: BTreeMap<String, Spanned<EnvironmentSpec>>,
    #[serde(default)]
    pub criteria: Vec<Spanned<CriterionSpec>>,
    #[serde(default)]
    pub notify: Option<NotifySpec>,
    pub phases: BTreeMap<String, Spanned<Vec<Spanned<StepSpec>>>>,
    #[serde(default)]
    pub on_failure: Vec<Spanned<StepSpec>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ObjectivesSpec {
    pub rto: Option<Spanned<String>>,
    pub rpo: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    pub path: Option<String>,
    pub compression: Option<Spanned<String>>,
    pub level: Option<Spanned<i32>>,
}

/// A connector, or (in an environment) a patch over one: every field is optional here and
/// [`super::validate`] says which ones each `type` needs.
#[derive(Debug, Deserialize, Default, Clone, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSpec {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub base_url: Option<String>,
    pub token: Option<String>,
    pub instance_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub api_version: Option<String>,
    pub format: Option<String>,
    pub tls: Option<BTreeMap<String, String>>,
    pub objects: Option<ObjectsSpec>,
    pub freeze: Option<FreezeSpec>,
    pub sandbox: Option<SandboxSpec>,
    pub batch_size: Option<usize>,
    pub concurrency: Option<usize>,
}

/// How a connector's objects map to tables or files: a list of names, or a map of name → mapping.
#[derive(Debug, Clone, Default)]
pub struct ObjectsSpec(pub Vec<(String, ObjectMapping)>);

#[derive(Debug, Deserialize, Default, Clone, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectMapping {
    pub table: Option<String>,
    pub schema: Option<String>,
    pub file: Option<String>,
    pub id: Option<String>,
    pub modified: Option<String>,
    pub soft_delete: Option<String>,
}

impl Serialize for ObjectsSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl ConnectorSpec {
    /// The keys this spec sets, as written in the playbook.
    pub fn set_keys(&self) -> Vec<String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map
                .into_iter()
                .filter(|(k, v)| !v.is_null() && k != "type")
                .map(|(k, _)| k)
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl<'de> Deserialize<'de> for ObjectsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectsVisitor;
        impl<'de> Visitor<'de> for ObjectsVisitor {
            type Value = ObjectsSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of object names or a map of object name to { table, id, modified }")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ObjectsSpec, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    out.push((name, ObjectMapping::default()));
                }
                Ok(ObjectsSpec(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ObjectsSpec, A::Error> {
                let mut out: Vec<(String, ObjectMapping)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let mapping = map.next_value::<Option<ObjectMapping>>()?.unwrap_or_default();
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!("object `{name}` is listed twice")));
                    }
                    out.push((name, mapping));
                }
                Ok(ObjectsSpec(out))
            }
        }
        d.deserialize_any(ObjectsVisitor)
    }
}

#[derive(Debug, Deserialize, Default, Clone, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeSpec {
    pub method: Option<String>,
    pub roles: Option<Vec<String>>,
    pub accounts: Option<Vec<String>>,
    pub users: Option<Vec<String>>,
    pub exclude_users: Option<Vec<String>>,
    pub read_only_role: Option<String>,
    pub message: Option<String>,
    /// `mysql`: the URL of an application account (a `${env:...}` reference), so the write probe
    /// writes as the application does.
    pub probe_url: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSpec {
    pub flavor: String,
    pub seed: Option<u64>,
    pub port: Option<u16>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    #[serde(default)]
    pub connectors: BTreeMap<String, Spanned<ConnectorSpec>>,
    #[serde(default)]
    pub channels: BTreeMap<String, Spanned<ChannelSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionSpec {
    pub name: String,
    pub metric: MetricSpec,
    pub above: Option<String>,
    pub below: Option<String>,
    pub not: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    pub count_drop: Option<CountDropSpec>,
    pub http_status: Option<HttpStatusSpec>,
    pub count: Option<CountSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountDropSpec {
    pub connector: String,
    pub object: String,
    pub against: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountSpec {
    pub connector: String,
    pub object: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpStatusSpec {
    pub url: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    #[serde(default)]
    pub channels: BTreeMap<String, Spanned<ChannelSpec>>,
    #[serde(default)]
    pub templates: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub url: Option<String>,
    pub path: Option<String>,
    pub format: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub headers: Option<BTreeMap<String, String>>,
}

/// One step: one action key plus optional `name`, `timeout`, `retries`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub name: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub backup: Option<BackupArgs>,
    pub verify: Option<VerifyArgs>,
    pub freeze: Option<ConnectorArgs>,
    pub unfreeze: Option<ConnectorArgs>,
    pub export_delta: Option<ExportDeltaArgs>,
    pub restore: Option<RestoreArgs>,
    pub notify: Option<NotifyArgs>,
    pub check: Option<CheckArgs>,
    pub pause: Option<PauseArgs>,
}

/// The action keys a step may have, in the order they are documented.
pub const ACTIONS: [&str; 9] = [
    "backup",
    "verify",
    "freeze",
    "unfreeze",
    "export_delta",
    "restore",
    "notify",
    "check",
    "pause",
];

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BackupArgs {
    pub from: String,
    pub objects: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct VerifyArgs {
    pub snapshot: Option<String>,
    pub connector: Option<String>,
    pub against: Option<String>,
    pub objects: Option<Vec<String>>,
    /// Re-hash every record too (default for the step: yes).
    pub read_data: Option<bool>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ConnectorArgs {
    pub connector: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ExportDeltaArgs {
    pub from: String,
    pub since: Option<String>,
    pub objects: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RestoreArgs {
    pub to: String,
    pub snapshot: Option<String>,
    pub mode: Option<String>,
    pub objects: Option<Vec<String>>,
    pub order: Option<Vec<String>>,
    pub batch_size: Option<usize>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct NotifyArgs {
    pub channels: Vec<String>,
    pub template: String,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct CheckArgs {
    pub criteria: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct PauseArgs {
    pub message: Option<String>,
}
