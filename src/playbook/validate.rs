//! Reference and value checks over a parsed playbook. Every problem is collected, located and
//! hinted, so one `rollback validate` shows them all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_saphyr::{Location, Spanned};

use super::diagnostic::{Diagnostic, suggest};
use super::duration::parse_duration;
use super::model::*;
use super::{Action, ConnectorKind, merge_connector, step_action};

/// Built-in notification templates.
pub const BUILTIN_TEMPLATES: [&str; 4] = [
    crate::notify::BUILTIN[0].0,
    crate::notify::BUILTIN[1].0,
    crate::notify::BUILTIN[2].0,
    crate::notify::BUILTIN[3].0,
];

/// Keys each connector type accepts beyond `type`, and the ones it requires.
fn keys_for(kind: ConnectorKind) -> (&'static [&'static str], &'static [&'static str]) {
    use ConnectorKind::*;
    match kind {
        Sqlite => (&["path", "objects", "freeze", "batch_size", "concurrency"], &["path", "objects"]),
        Files => (&["path", "format", "objects", "freeze", "batch_size"], &["path", "objects"]),
        Postgres | Mysql => (
            &["url", "tls", "objects", "freeze", "batch_size", "concurrency", "sandbox"],
            &["url", "objects"],
        ),
        Hubspot => (
            &["base_url", "token", "objects", "freeze", "sandbox", "batch_size", "concurrency"],
            &["token", "objects"],
        ),
        Salesforce => (
            &[
                "instance_url",
                "base_url",
                "token",
                "username",
                "password",
                "client_id",
                "client_secret",
                "api_version",
                "tls",
                "objects",
                "freeze",
                "sandbox",
                "batch_size",
                "concurrency",
            ],
            &["objects"],
        ),
    }
}

/// Freeze methods each connector type supports; the first is the default.
pub fn freeze_methods(kind: ConnectorKind) -> &'static [&'static str] {
    use ConnectorKind::*;
    match kind {
        Sqlite => &["triggers", "manual"],
        Files => &["lock_file", "manual"],
        Postgres => &["read_only", "revoke", "manual"],
        Mysql => &["revoke", "read_only", "manual"],
        Hubspot => &["user_role", "manual"],
        Salesforce => &["freeze_users", "manual"],
    }
}

pub fn secret_fields(c: &ConnectorSpec) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    macro_rules! check { ($($f:ident),*) => { $( if let Some(v) = &c.$f { out.push((stringify!($f), v.as_str())); } )* }; }
    check!(
        path,
        url,
        base_url,
        token,
        instance_url,
        username,
        password,
        client_id,
        client_secret
    );
    if let Some(probe) = c.freeze.as_ref().and_then(|f| f.probe_url.as_deref()) {
        out.push(("freeze.probe_url", probe));
    }
    out
}

struct Checker<'a> {
    spec: &'a PlaybookSpec,
    dir: &'a Path,
    out: Vec<Diagnostic>,
}

/// Checks `spec` (read from `path`) and returns every problem found.
pub fn validate(spec: &PlaybookSpec, path: &Path) -> Vec<Diagnostic> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut c = Checker {
        spec,
        dir,
        out: Vec::new(),
    };
    c.top_level();
    for (name, connector) in &spec.connectors {
        c.connector(name, &connector.value, connector.referenced, None);
    }
    for (env_name, env) in &spec.environments {
        c.environment(env_name, env);
    }
    c.notify();
    c.criteria();
    if spec.phases.is_empty() {
        c.out
            .push(Diagnostic::new(1, 1, "the playbook has no phases").hint("add `phases:` with at least a `backup` phase"));
    }
    for (name, steps) in &spec.phases {
        if steps.value.is_empty() {
            c.out
                .push(Diagnostic::at(steps.referenced, format!("phase `{name}` has no steps")).hint("add steps or remove the phase"));
        }
        c.steps(&format!("phase `{name}`"), &steps.value);
    }
    c.steps("`on_failure`", &spec.on_failure);
    c.out.sort_by_key(|d| (d.line, d.column));
    c.out
}

impl Checker<'_> {
    fn push(&mut self, at: Location, message: String, hint: impl Into<String>) {
        self.out.push(Diagnostic::at(at, message).hint(hint));
    }

    fn top_level(&mut self) {
        let s = self.spec;
        if s.version.value != 1 {
            self.push(
                s.version.referenced,
                format!("playbook format version {} is not supported", s.version.value),
                "this build reads `version: 1`",
            );
        }
        if s.name.value.trim().is_empty() {
            self.push(
                s.name.referenced,
                "the playbook `name` is empty".into(),
                "name the migration, e.g. `acme-legacy-to-hubspot`",
            );
        }
        if let Some(cutover) = &s.cutover
            && crate::record::parse_time(&cutover.value).is_none()
        {
            self.push(
                cutover.referenced,
                format!("`cutover` is not a timestamp: `{}`", cutover.value),
                "write RFC 3339, e.g. `2026-11-20T22:00:00Z`",
            );
        }
        if let Some(o) = &s.objectives {
            for (key, value) in [("rto", &o.rto), ("rpo", &o.rpo)] {
                if let Some(v) = value
                    && parse_duration(&v.value).is_none()
                {
                    self.push(
                        v.referenced,
                        format!("`{key}` is not a duration: `{}`", v.value),
                        "write e.g. `4h`, `90m`, `1h30m`",
                    );
                }
            }
        }
        if let Some(store) = &s.store {
            if let Some(c) = &store.compression
                && c.value != "zstd"
            {
                self.push(
                    c.referenced,
                    format!("unknown compression `{}`", c.value),
                    "the store supports `zstd`",
                );
            }
            if let Some(l) = &store.level
                && !(1..=19).contains(&l.value)
            {
                self.push(
                    l.referenced,
                    format!("compression level {} is out of range", l.value),
                    "use 1 (fastest, the default) to 19 (smallest)",
                );
            }
        }
    }

    fn connector(&mut self, name: &str, c: &ConnectorSpec, at: Location, env: Option<&str>) {
        let whose = match env {
            Some(e) => format!("connector `{name}` in environment `{e}`"),
            None => format!("connector `{name}`"),
        };
        let Some(kind_text) = &c.kind else {
            self.push(
                at,
                format!("{whose} has no `type`"),
                "add `type:` (sqlite, files, postgres, mysql, hubspot, salesforce)",
            );
            return;
        };
        let Some(kind) = ConnectorKind::parse(kind_text) else {
            let hint = suggest(kind_text, "type", ConnectorKind::ALL.iter().map(|(n, _)| *n));
            self.push(at, format!("{whose} has unknown type `{kind_text}`"), hint);
            return;
        };
        let (allowed, required) = keys_for(kind);
        let present = c.set_keys();
        for key in present.iter().map(String::as_str) {
            if !allowed.contains(&key) {
                let hint = suggest(key, "key", allowed.iter().copied());
                self.push(at, format!("key `{key}` does not apply to {whose} of type `{kind_text}`"), hint);
            }
        }
        for key in required {
            // A `sandbox:` server is reached with a token of its own.
            let sandboxed = c.sandbox.is_some() && *key == "token";
            if !sandboxed && !present.iter().any(|p| p == key) {
                self.push(
                    at,
                    format!("{whose} of type `{kind_text}` needs `{key}`"),
                    format!("add `{key}:` to the connector"),
                );
            }
        }
        // A `sandbox:` server is reached at its own address with its own token.
        if kind == ConnectorKind::Salesforce && c.sandbox.is_none() {
            if c.token.is_none() {
                let oauth = c.username.is_some() || c.password.is_some() || c.client_id.is_some() || c.client_secret.is_some();
                self.push(
                    at,
                    format!("{whose} of type `salesforce` needs `token`"),
                    if oauth {
                        "this build has no OAuth username-password flow: add `token: ${env:SALESFORCE_TOKEN}`, an access token or session id (e.g. `accessToken` from `sf org display --json`)"
                    } else {
                        "add `token: ${env:SALESFORCE_TOKEN}`, an access token or session id (e.g. `accessToken` from `sf org display --json`)"
                    },
                );
            }
            if c.instance_url.is_none() && c.base_url.is_none() {
                self.push(
                    at,
                    format!("{whose} of type `salesforce` needs `instance_url`"),
                    "add `instance_url: https://MYDOMAIN.my.salesforce.com` (the Instance Url `sf org display` shows)",
                );
            }
        }
        for (key, value) in secret_fields(c) {
            if let Err(e) = super::secret::references(value) {
                self.push(
                    at,
                    format!(
                        "{whose}: `{key}` has a bad reference: {}",
                        e.to_string().lines().next().unwrap_or("")
                    ),
                    "write `${env:NAME}` or `${file:PATH}`",
                );
            }
        }
        if let Some(format) = &c.format
            && !["jsonl", "csv"].contains(&format.as_str())
        {
            self.push(at, format!("{whose}: unknown file format `{format}`"), "use `jsonl` or `csv`");
        }
        if let Some(objects) = &c.objects
            && objects.0.is_empty()
        {
            self.push(
                at,
                format!("{whose} lists no objects"),
                "name at least one object (table, file or CRM object type)",
            );
        }
        if let Some(method) = c.freeze.as_ref().and_then(|f| f.method.as_deref()) {
            let methods = freeze_methods(kind);
            if !methods.contains(&method) {
                self.push(
                    at,
                    format!("{whose}: freeze method `{method}` is not available for `{kind_text}`"),
                    suggest(method, "method", methods.iter().copied()),
                );
            }
        }
        if let Some(sandbox) = &c.sandbox {
            let flavor = sandbox.flavor.as_str();
            if !["hubspot", "salesforce"].contains(&flavor) {
                self.push(
                    at,
                    format!("{whose}: unknown sandbox flavor `{flavor}`"),
                    "use `hubspot` or `salesforce`",
                );
            } else if !matches!(kind, ConnectorKind::Hubspot | ConnectorKind::Salesforce) {
                self.push(
                    at,
                    format!("{whose}: a sandbox server serves a CRM's HTTP API, which connector type `{kind_text}` does not read"),
                    "remove `sandbox:` and point the connector at a test database",
                );
            } else if flavor != kind_text {
                self.push(
                    at,
                    format!("{whose}: sandbox flavor `{flavor}` serves another CRM's API than connector type `{kind_text}` reads"),
                    format!("write `sandbox: {{ flavor: {kind_text} }}`"),
                );
            }
        }
    }

    fn environment(&mut self, env_name: &str, env: &Spanned<EnvironmentSpec>) {
        for (name, patch) in &env.value.connectors {
            match self.spec.connectors.get(name) {
                None => {
                    let hint = suggest(name, "connector", self.spec.connectors.keys().map(String::as_str));
                    self.push(
                        patch.referenced,
                        format!("environment `{env_name}` overrides unknown connector `{name}`"),
                        hint,
                    );
                }
                Some(base) => {
                    let merged = merge_connector(&base.value, &patch.value);
                    self.connector(name, &merged, patch.referenced, Some(env_name));
                }
            }
        }
        let channels = self.spec.notify.as_ref().map(|n| &n.channels);
        for (name, patch) in &env.value.channels {
            if !channels.is_some_and(|c| c.contains_key(name)) {
                let hint = suggest(name, "channel", channels.into_iter().flat_map(|c| c.keys().map(String::as_str)));
                self.push(
                    patch.referenced,
                    format!("environment `{env_name}` overrides unknown channel `{name}`"),
                    hint,
                );
            }
        }
    }

    fn notify(&mut self) {
        let Some(notify) = &self.spec.notify else { return };
        for (name, channel) in &notify.channels {
            let c = &channel.value;
            let at = channel.referenced;
            match c.kind.as_deref() {
                Some("file") if c.path.is_none() => self.push(
                    at,
                    format!("channel `{name}` of type `file` needs `path`"),
                    "add `path: notifications.log`",
                ),
                Some("webhook") if c.url.is_none() => self.push(
                    at,
                    format!("channel `{name}` of type `webhook` needs `url`"),
                    "add `url: ${env:TEAM_WEBHOOK_URL}`",
                ),
                Some("file" | "webhook") => {}
                Some(other) => self.push(
                    at,
                    format!("channel `{name}` has unknown type `{other}`"),
                    suggest(other, "type", ["file", "webhook"]),
                ),
                None => self.push(at, format!("channel `{name}` has no `type`"), "add `type: webhook` or `type: file`"),
            }
            if let Some(format) = &c.format
                && !["json", "slack", "teams", "text"].contains(&format.as_str())
            {
                self.push(
                    at,
                    format!("channel `{name}`: unknown format `{format}`"),
                    suggest(format, "format", ["json", "slack", "teams", "text"]),
                );
            }
            if let Some(t) = &c.timeout
                && parse_duration(t).is_none()
            {
                self.push(
                    at,
                    format!("channel `{name}`: `timeout` is not a duration: `{t}`"),
                    "write e.g. `10s`",
                );
            }
            if let Some(url) = &c.url
                && let Err(e) = super::secret::references(url)
            {
                self.push(
                    at,
                    format!("channel `{name}`: {}", e.to_string().lines().next().unwrap_or("")),
                    "write `${env:NAME}` or `${file:PATH}`",
                );
            }
        }
        for (name, file) in &notify.templates {
            if !self.dir.join(&file.value).is_file() {
                self.push(
                    file.referenced,
                    format!("template `{name}` file `{}` does not exist", file.value),
                    "paths are relative to the playbook's folder",
                );
            }
        }
    }

    fn connector_object(&mut self, at: Location, connector: &str, object: &str, what: &str) {
        let Some(c) = self.spec.connectors.get(connector) else { return };
        let names: Vec<&str> = c.value.objects.iter().flat_map(|o| o.0.iter().map(|(n, _)| n.as_str())).collect();
        if !names.contains(&object) {
            self.push(
                at,
                format!("{what}: connector `{connector}` has no object `{object}`"),
                suggest(object, "object", names.iter().copied()),
            );
        }
    }

    fn connector_ref(&mut self, at: Location, name: &str, what: &str) -> bool {
        if self.spec.connectors.contains_key(name) {
            return true;
        }
        let hint = suggest(name, "connector", self.spec.connectors.keys().map(String::as_str));
        self.push(at, format!("{what} names unknown connector `{name}`"), hint);
        false
    }

    fn criteria(&mut self) {
        let mut seen = BTreeSet::new();
        for criterion in &self.spec.criteria {
            let c = &criterion.value;
            let at = criterion.referenced;
            if !seen.insert(c.name.clone()) {
                self.push(
                    at,
                    format!("criterion `{}` is defined twice", c.name),
                    "give each criterion its own name",
                );
            }
            let m = &c.metric;
            let n = usize::from(m.count_drop.is_some()) + usize::from(m.http_status.is_some()) + usize::from(m.count.is_some());
            if n != 1 {
                self.push(
                    at,
                    format!("criterion `{}` needs exactly one metric", c.name),
                    "use one of `count_drop`, `count`, `http_status`",
                );
            }
            let what = format!("criterion `{}`", c.name);
            if let Some(d) = &m.count_drop
                && self.connector_ref(at, &d.connector, &what)
            {
                self.connector_object(at, &d.connector, &d.object, &what);
            }
            if let Some(d) = &m.count
                && self.connector_ref(at, &d.connector, &what)
            {
                self.connector_object(at, &d.connector, &d.object, &what);
            }
            for (key, v) in [("above", &c.above), ("below", &c.below)] {
                if let Some(v) = v
                    && v.trim_end_matches('%').trim().parse::<f64>().is_err()
                {
                    self.push(
                        at,
                        format!("{what}: `{key}` is not a number or percentage: `{v}`"),
                        "write e.g. `0.5%` or `100`",
                    );
                }
            }
        }
    }

    fn steps(&mut self, whose: &str, steps: &[Spanned<StepSpec>]) {
        let mut names: BTreeMap<String, Location> = BTreeMap::new();
        for step in steps {
            let at = step.referenced;
            let actions = step_action(&step.value);
            let action = match actions.as_slice() {
                [one] => one,
                [] => {
                    self.push(
                        at,
                        format!("a step in {whose} has no action"),
                        format!("give it one of: {}", ACTIONS.join(", ")),
                    );
                    continue;
                }
                many => {
                    let keys: Vec<&str> = many.iter().map(Action::keyword).collect();
                    self.push(
                        at,
                        format!("a step in {whose} has several actions: {}", keys.join(", ")),
                        "split it into one step per action",
                    );
                    continue;
                }
            };
            if let Some(name) = &step.value.name
                && names.insert(name.clone(), at).is_some()
            {
                self.push(
                    at,
                    format!("step name `{name}` is used twice in {whose}"),
                    "give each step its own name",
                );
            }
            if let Some(t) = &step.value.timeout
                && parse_duration(t).is_none()
            {
                self.push(at, format!("step timeout is not a duration: `{t}`"), "write e.g. `30m`");
            }
            let what = format!("`{}` step in {whose}", action.keyword());
            self.action(at, action, &what);
        }
    }

    fn objects(&mut self, at: Location, connector: &str, objects: &Option<Vec<String>>, what: &str) {
        for object in objects.iter().flatten() {
            self.connector_object(at, connector, object, what);
        }
    }

    fn action(&mut self, at: Location, action: &Action, what: &str) {
        match action {
            Action::Backup(a) => {
                if self.connector_ref(at, &a.from, what) {
                    self.objects(at, &a.from, &a.objects, what);
                }
            }
            Action::Verify(a) => {
                if let Some(c) = &a.connector
                    && self.connector_ref(at, c, what)
                {
                    self.objects(at, c, &a.objects, what);
                }
                if a.against.is_some() && a.connector.is_none() {
                    self.push(
                        at,
                        format!("{what}: `against` needs `connector`"),
                        "add `connector: NAME` to compare a live connector with a snapshot",
                    );
                }
            }
            Action::Freeze(a) | Action::Unfreeze(a) => {
                self.connector_ref(at, &a.connector, what);
            }
            Action::ExportDelta(a) => {
                if self.connector_ref(at, &a.from, what) {
                    self.objects(at, &a.from, &a.objects, what);
                }
                match a.since.as_deref() {
                    None | Some("cutover") if self.spec.cutover.is_none() => {
                        self.push(
                            at,
                            format!("{what} starts at `cutover`, but the playbook sets no `cutover`"),
                            "add `cutover: 2026-11-20T22:00:00Z` or give `since:`",
                        );
                    }
                    None | Some("cutover" | "last") => {}
                    Some(t) if crate::record::parse_time(t).is_some() => {}
                    Some(t) => self.push(
                        at,
                        format!("{what}: `since` is not `cutover`, `last` or a timestamp: `{t}`"),
                        "write `since: cutover` or an RFC 3339 time",
                    ),
                }
            }
            Action::Restore(a) => {
                if self.connector_ref(at, &a.to, what) {
                    self.objects(at, &a.to, &a.objects, what);
                    self.objects(at, &a.to, &a.order, what);
                }
                if let Some(mode) = &a.mode
                    && !["replace", "upsert"].contains(&mode.as_str())
                {
                    self.push(
                        at,
                        format!("{what}: unknown mode `{mode}`"),
                        suggest(mode, "mode", ["replace", "upsert"]),
                    );
                }
                if a.batch_size == Some(0) {
                    self.push(at, format!("{what}: `batch_size` must be at least 1"), "the default is 1000");
                }
            }
            Action::Notify(a) => {
                let channels = self.spec.notify.as_ref().map(|n| &n.channels);
                for channel in &a.channels {
                    if !channels.is_some_and(|c| c.contains_key(channel)) {
                        let hint = suggest(channel, "channel", channels.into_iter().flat_map(|c| c.keys().map(String::as_str)));
                        self.push(at, format!("{what} names unknown channel `{channel}`"), hint);
                    }
                }
                let templates = self.spec.notify.as_ref().map(|n| &n.templates);
                if !BUILTIN_TEMPLATES.contains(&a.template.as_str()) && !templates.is_some_and(|t| t.contains_key(&a.template)) {
                    let all: Vec<&str> = BUILTIN_TEMPLATES
                        .iter()
                        .copied()
                        .chain(templates.into_iter().flat_map(|t| t.keys().map(String::as_str)))
                        .collect();
                    self.push(
                        at,
                        format!("{what} names unknown template `{}`", a.template),
                        suggest(&a.template, "template", all.iter().copied()),
                    );
                }
            }
            Action::Check(a) => {
                let known: Vec<&str> = self.spec.criteria.iter().map(|c| c.value.name.as_str()).collect();
                for name in a.criteria.iter().flatten() {
                    if !known.contains(&name.as_str()) {
                        self.push(
                            at,
                            format!("{what} names unknown criterion `{name}`"),
                            suggest(name, "criterion", known.iter().copied()),
                        );
                    }
                }
            }
            Action::Pause(_) => {}
        }
    }
}
