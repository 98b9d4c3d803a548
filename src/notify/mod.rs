//! Notifications: templates filled with a run's figures, delivered on `file` and `webhook`
//! channels with receipts.
//!
//! Built-in templates (`internal`, `customer`, `escalation`, `next_steps`) live in
//! `src/notify/templates/`; a playbook overrides any of them, or adds its own, under
//! `notify.templates`. The first line of a rendered template is its subject.

pub mod deliver;

use std::path::Path;

use serde_json::Value;

pub const BUILTIN: [(&str, &str); 4] = [
    ("internal", include_str!("templates/internal.txt")),
    ("customer", include_str!("templates/customer.txt")),
    ("escalation", include_str!("templates/escalation.txt")),
    ("next_steps", include_str!("templates/next_steps.txt")),
];

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("template `{name}`: cannot read `{path}`: {message}\nhint: fix `notify.templates.{name}` in the playbook")]
    Read { name: String, path: String, message: String },
    #[error("template `{name}` does not render: {message}\nhint: check the template's syntax (minijinja, like Jinja2)")]
    Render { name: String, message: String },
    #[error("no template `{0}`\nhint: built-ins are internal, customer, escalation, next_steps")]
    Unknown(String),
}

/// Renders template `name` (an override file from `templates`, else a built-in) with `context`.
pub fn render(
    name: &str,
    templates: &std::collections::BTreeMap<String, std::path::PathBuf>,
    context: &Value,
) -> Result<String, NotifyError> {
    let source = match templates.get(name) {
        Some(path) => read(name, path)?,
        None => BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.to_string())
            .ok_or_else(|| NotifyError::Unknown(name.into()))?,
    };
    let mut env = minijinja::Environment::new();
    env.add_template_owned(name.to_string(), source).map_err(|e| NotifyError::Render {
        name: name.into(),
        message: e.to_string(),
    })?;
    let template = env.get_template(name).map_err(|e| NotifyError::Render {
        name: name.into(),
        message: e.to_string(),
    })?;
    template
        .render(minijinja::value::Value::from(minijinja::value::Serde(context)))
        .map_err(|e| NotifyError::Render {
            name: name.into(),
            message: e.to_string(),
        })
}

fn read(name: &str, path: &Path) -> Result<String, NotifyError> {
    std::fs::read_to_string(path).map_err(|e| NotifyError::Read {
        name: name.into(),
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every built-in renders with a full context and with an empty one.
    #[test]
    fn builtins_render() {
        let context = json!({
            "playbook": "p", "phase": "immediate", "status": "succeeded", "duration": "3.2s", "rto": "4h", "within_rto": true,
            "run_id": "r1", "started_at": "2026-11-25T00:00:00Z",
            "steps": [{"name": "restore legacy", "status": "succeeded", "duration": "1.0s", "summary": "ok"}],
            "restored": {"contacts": {"inserted": 1, "updated": 2, "deleted": 3}},
            "deltas": [{"snapshot": "d1", "connector": "newcrm", "objects": {"contacts": {"created": 1, "changed": 0, "deleted": 0}}}],
            "snapshots": [{"id": "s1", "digest": "sha256:00"}],
            "frozen": [{"connector": "newcrm", "run": "r0", "since": "t"}],
        });
        let empty = BTreeMapEmpty::new();
        for (name, _) in BUILTIN {
            let text = render(name, &empty, &context).unwrap();
            assert!(text.contains("p"), "{name}");
            render(name, &empty, &json!({})).unwrap();
        }
        let internal = render("internal", &empty, &context).unwrap();
        assert!(internal.contains("contacts: 1 inserted, 2 updated, 3 deleted"), "{internal}");
        assert!(internal.contains("newcrm contacts: 1 created"), "{internal}");
        assert!(matches!(render("nope", &empty, &context), Err(NotifyError::Unknown(_))));
    }

    type BTreeMapEmpty = std::collections::BTreeMap<String, std::path::PathBuf>;
}
