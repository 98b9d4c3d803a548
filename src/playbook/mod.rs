//! Playbooks: parse ([`load`]), check references ([`validate`]) and resolve an environment into
//! the plain [`Playbook`] settings that the rest of the crate uses.

pub mod diagnostic;
pub mod duration;
pub mod load;
pub mod model;
pub mod secret;
pub mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::digest::{Hash32, sha256};
pub use diagnostic::{Diagnostic, PlaybookErrors};
use model::*;

/// Why a playbook could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("cannot read playbook `{path}`: {source}\nhint: run `rollback init` to write one, or pass `-f PATH`")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(#[from] PlaybookErrors),
    #[error("environment `{name}` is not defined in `{path}`\nhint: {hint}")]
    UnknownEnvironment { name: String, path: PathBuf, hint: String },
}

/// The kinds of connector this build knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorKind {
    Sqlite,
    Files,
    Postgres,
    Mysql,
    Hubspot,
    Salesforce,
}

impl ConnectorKind {
    pub const ALL: [(&'static str, ConnectorKind); 6] = [
        ("sqlite", ConnectorKind::Sqlite),
        ("files", ConnectorKind::Files),
        ("postgres", ConnectorKind::Postgres),
        ("mysql", ConnectorKind::Mysql),
        ("hubspot", ConnectorKind::Hubspot),
        ("salesforce", ConnectorKind::Salesforce),
    ];

    pub fn parse(text: &str) -> Option<ConnectorKind> {
        Self::ALL.iter().find(|(n, _)| *n == text).map(|(_, k)| *k)
    }

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).map(|(n, _)| *n).unwrap_or("?")
    }
}

/// A connector after the environment was applied.
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    pub name: String,
    pub kind: ConnectorKind,
    /// Object name → mapping, in playbook order.
    pub objects: Vec<(String, ObjectMapping)>,
    /// The merged spec with the type-specific keys (paths, urls, secrets as references).
    pub spec: ConnectorSpec,
    /// The playbook's folder: relative paths start here.
    pub base_dir: PathBuf,
    /// The store's folder: a connector's `sandbox:` server keeps its records here.
    pub store_dir: PathBuf,
    /// Open for reading only (dry runs and plans).
    pub read_only: bool,
}

impl ConnectorConfig {
    pub fn object_names(&self) -> impl Iterator<Item = &str> {
        self.objects.iter().map(|(n, _)| n.as_str())
    }
}

/// What a step does.
#[derive(Clone, Debug)]
pub enum Action {
    Backup(BackupArgs),
    Verify(VerifyArgs),
    Freeze(ConnectorArgs),
    Unfreeze(ConnectorArgs),
    ExportDelta(ExportDeltaArgs),
    Restore(RestoreArgs),
    Notify(NotifyArgs),
    Check(CheckArgs),
    Pause(PauseArgs),
}

impl Action {
    pub fn keyword(&self) -> &'static str {
        match self {
            Action::Backup(_) => "backup",
            Action::Verify(_) => "verify",
            Action::Freeze(_) => "freeze",
            Action::Unfreeze(_) => "unfreeze",
            Action::ExportDelta(_) => "export_delta",
            Action::Restore(_) => "restore",
            Action::Notify(_) => "notify",
            Action::Check(_) => "check",
            Action::Pause(_) => "pause",
        }
    }

    /// A default step name: the action and its main target.
    fn default_name(&self) -> String {
        let target = match self {
            Action::Backup(a) => a.from.clone(),
            Action::Verify(a) => a.connector.clone().or(a.snapshot.clone()).unwrap_or_else(|| "latest".into()),
            Action::Freeze(a) | Action::Unfreeze(a) => a.connector.clone(),
            Action::ExportDelta(a) => a.from.clone(),
            Action::Restore(a) => a.to.clone(),
            Action::Notify(a) => a.template.clone(),
            Action::Check(_) => "criteria".into(),
            Action::Pause(_) => "operator".into(),
        };
        format!("{} {}", self.keyword(), target)
    }
}

/// One step of a phase, resolved.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub action: Action,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub line: u64,
    pub column: u64,
}

/// A playbook resolved for one environment: what commands and the engine work with.
#[derive(Clone, Debug)]
pub struct Playbook {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub name: String,
    pub hash: Hash32,
    pub environment: Option<String>,
    pub cutover: Option<DateTime<Utc>>,
    pub rto: Option<Duration>,
    pub store_path: PathBuf,
    pub compression_level: i32,
    pub connectors: BTreeMap<String, ConnectorConfig>,
    pub phases: BTreeMap<String, Vec<Step>>,
    pub on_failure: Vec<Step>,
    pub channels: BTreeMap<String, ChannelSpec>,
    pub templates: BTreeMap<String, PathBuf>,
    pub environments: Vec<String>,
}

impl Playbook {
    /// Reads, parses, validates and resolves `path` for `environment`.
    pub fn load(path: &Path, environment: Option<&str>) -> Result<Playbook, PlaybookError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlaybookError::Read { path: path.into(), source })?;
        let spec = load::parse(path, &text)?;
        let diagnostics = validate::validate(&spec, path);
        if !diagnostics.is_empty() {
            return Err(PlaybookErrors {
                path: path.into(),
                source_text: text,
                diagnostics,
            }
            .into());
        }
        if let Some(env) = environment.filter(|e| !spec.environments.contains_key(*e)) {
            let hint = diagnostic::suggest(env, "environment", spec.environments.keys().map(String::as_str));
            return Err(PlaybookError::UnknownEnvironment {
                name: env.into(),
                path: path.into(),
                hint,
            });
        }
        Ok(resolve(path, &text, spec, environment))
    }

    /// The same playbook with every connector opened for reading only.
    pub fn read_only(mut self) -> Playbook {
        for c in self.connectors.values_mut() {
            c.read_only = true;
        }
        self
    }

    pub fn connector(&self, name: &str) -> Option<&ConnectorConfig> {
        self.connectors.get(name)
    }

    /// Connectors that `phase` (and `on_failure`) use, in first-use order.
    pub fn phase_connectors(&self, phase: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let steps = self.phases.get(phase).into_iter().flatten().chain(&self.on_failure);
        for step in steps {
            let used: Vec<&str> = match &step.action {
                Action::Backup(a) => vec![&a.from],
                Action::Verify(a) => a.connector.as_deref().into_iter().collect(),
                Action::Freeze(a) | Action::Unfreeze(a) => vec![&a.connector],
                Action::ExportDelta(a) => vec![&a.from],
                Action::Restore(a) => vec![&a.to],
                Action::Notify(_) | Action::Check(_) | Action::Pause(_) => vec![],
            };
            for name in used {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Resolves every secret reference of the named connectors, without keeping the values;
    /// returns one message per reference that does not resolve.
    pub fn missing_secrets(&self, connectors: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        for name in connectors {
            let Some(c) = self.connectors.get(*name) else { continue };
            for (key, value) in validate::secret_fields(&c.spec) {
                // A `sandbox:` server is reached with its own address and token.
                if c.spec.sandbox.is_some() && matches!(key, "base_url" | "token") {
                    continue;
                }
                if let Err(e) = secret::Secret(value.to_string()).resolve(&self.dir) {
                    problems.push(format!("connector `{name}`, key `{key}`: {e}"));
                }
            }
        }
        problems
    }
}

/// Merges an environment's patch over a connector: keys the patch sets win; a patch that changes
/// the `type` also drops the old type's connection keys and freeze method.
pub fn merge_connector(base: &ConnectorSpec, patch: &ConnectorSpec) -> ConnectorSpec {
    let start = if patch.kind.is_some() && patch.kind != base.kind {
        ConnectorSpec {
            objects: base.objects.clone(),
            ..ConnectorSpec::default()
        }
    } else {
        base.clone()
    };
    let (Ok(serde_json::Value::Object(mut merged)), Ok(serde_json::Value::Object(patch))) =
        (serde_json::to_value(&start), serde_json::to_value(patch))
    else {
        return start;
    };
    for (key, value) in patch {
        if !value.is_null() {
            merged.insert(key, value);
        }
    }
    serde_json::from_value(serde_json::Value::Object(merged)).unwrap_or(start)
}

fn resolve(path: &Path, text: &str, spec: PlaybookSpec, environment: Option<&str>) -> Playbook {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    let env = environment.and_then(|e| spec.environments.get(e));
    let store = spec.store.unwrap_or_default();
    let store_path = dir.join(store.path.as_deref().unwrap_or(".rollback"));
    let connectors = spec
        .connectors
        .iter()
        .map(|(name, c)| {
            let merged = match env.and_then(|e| e.value.connectors.get(name)) {
                Some(patch) => merge_connector(&c.value, &patch.value),
                None => c.value.clone(),
            };
            let kind = merged
                .kind
                .as_deref()
                .and_then(ConnectorKind::parse)
                .unwrap_or(ConnectorKind::Files);
            let objects = merged.objects.clone().unwrap_or_default().0;
            (
                name.clone(),
                ConnectorConfig {
                    name: name.clone(),
                    kind,
                    objects,
                    spec: merged,
                    base_dir: dir.clone(),
                    store_dir: store_path.clone(),
                    read_only: false,
                },
            )
        })
        .collect();
    let mut channels: BTreeMap<String, ChannelSpec> = spec
        .notify
        .iter()
        .flat_map(|n| n.channels.iter().map(|(k, v)| (k.clone(), v.value.clone())))
        .collect();
    if let Some(env) = env {
        for (name, patch) in &env.value.channels {
            let entry = channels.entry(name.clone()).or_default();
            let p = &patch.value;
            macro_rules! take {
                ($($field:ident),*) => { $( if p.$field.is_some() { entry.$field = p.$field.clone(); } )* };
            }
            take!(kind, url, path, format, timeout, retries, headers);
        }
    }
    let steps = |list: &[serde_saphyr::Spanned<StepSpec>]| list.iter().filter_map(resolve_step).collect();
    Playbook {
        path: path.into(),
        dir: dir.clone(),
        name: spec.name.value,
        hash: sha256(text.as_bytes()),
        environment: environment.map(str::to_string),
        cutover: spec.cutover.as_ref().and_then(|c| crate::record::parse_time(&c.value)),
        rto: spec
            .objectives
            .as_ref()
            .and_then(|o| o.rto.as_ref())
            .and_then(|r| duration::parse_duration(&r.value)),
        store_path,
        compression_level: store.level.map(|l| l.value).unwrap_or(1),
        connectors,
        phases: spec.phases.iter().map(|(name, list)| (name.clone(), steps(&list.value))).collect(),
        on_failure: steps(&spec.on_failure),
        channels,
        templates: spec
            .notify
            .iter()
            .flat_map(|n| n.templates.iter().map(|(k, v)| (k.clone(), dir.join(&v.value))))
            .collect(),
        environments: spec.environments.keys().cloned().collect(),
    }
}

/// The step's one action (validation guarantees there is exactly one).
pub fn step_action(spec: &StepSpec) -> Vec<Action> {
    let mut out = Vec::new();
    if let Some(a) = &spec.backup {
        out.push(Action::Backup(a.clone()))
    }
    if let Some(a) = &spec.verify {
        out.push(Action::Verify(a.clone()))
    }
    if let Some(a) = &spec.freeze {
        out.push(Action::Freeze(a.clone()))
    }
    if let Some(a) = &spec.unfreeze {
        out.push(Action::Unfreeze(a.clone()))
    }
    if let Some(a) = &spec.export_delta {
        out.push(Action::ExportDelta(a.clone()))
    }
    if let Some(a) = &spec.restore {
        out.push(Action::Restore(a.clone()))
    }
    if let Some(a) = &spec.notify {
        out.push(Action::Notify(a.clone()))
    }
    if let Some(a) = &spec.check {
        out.push(Action::Check(a.clone()))
    }
    if let Some(a) = &spec.pause {
        out.push(Action::Pause(a.clone()))
    }
    out
}

fn resolve_step(spec: &serde_saphyr::Spanned<StepSpec>) -> Option<Step> {
    let action = step_action(&spec.value).into_iter().next()?;
    Some(Step {
        name: spec.value.name.clone().unwrap_or_else(|| action.default_name()),
        timeout: spec.value.timeout.as_deref().and_then(duration::parse_duration),
        retries: spec.value.retries.unwrap_or(0),
        line: spec.referenced.line(),
        column: spec.referenced.column(),
        action,
    })
}
