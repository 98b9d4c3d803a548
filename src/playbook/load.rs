//! Reading a playbook file: YAML → [`PlaybookSpec`] with every parse error located and hinted.

use std::path::Path;

use super::diagnostic::{Diagnostic, PlaybookErrors, suggest};
use super::model::PlaybookSpec;

/// Limits that stop hostile input (alias bombs, huge documents) early.
fn options() -> serde_saphyr::Options {
    serde_saphyr::Options::default()
}

/// Parses `text` (the contents of `path`), or returns located errors.
pub fn parse(path: &Path, text: &str) -> Result<PlaybookSpec, PlaybookErrors> {
    let fail = |d: Diagnostic| PlaybookErrors {
        path: path.into(),
        source_text: text.into(),
        diagnostics: vec![d],
    };
    if text.trim().is_empty() {
        return Err(fail(
            Diagnostic::new(1, 1, "the playbook is empty").hint("`rollback init` writes a starter playbook to copy from"),
        ));
    }
    serde_saphyr::from_str_with_options::<PlaybookSpec>(text, options()).map_err(|e| fail(diagnose(&e)))
}

/// Turns a serde-saphyr error into a diagnostic with a useful hint.
fn diagnose(error: &serde_saphyr::Error) -> Diagnostic {
    let (line, column) = error.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
    let full = error.without_snippet().to_string();
    let message = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    };
    let d = Diagnostic::new(line.max(1), column.max(1), message.clone());
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let valid: Vec<&str> = expected
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .split(", ")
            .map(|s| s.trim_matches('`'))
            .filter(|s| !s.is_empty())
            .collect();
        let msg = format!("unknown key `{key}`");
        return Diagnostic { message: msg, ..d }.hint(suggest(key, "key", valid.iter().copied()));
    }
    if let Some(key) = message.strip_prefix("duplicate mapping key: ") {
        let key = key.split(", set DuplicateKeyPolicy").next().unwrap_or(key);
        return Diagnostic {
            message: format!("duplicate key `{key}`"),
            ..d
        }
        .hint("each name may appear only once in a mapping; rename or remove one of them");
    }
    if let Some(field) = message.strip_prefix("missing field `") {
        let field = field.trim_end_matches('`');
        return Diagnostic {
            message: format!("missing required key `{field}`"),
            ..d
        }
        .hint(format!("add `{field}:` here (see the playbook reference in the README)"));
    }
    if message.contains("budget") || message.contains("alias") {
        return d.hint("the document expands beyond the parser's limits (alias bomb?); write the values out");
    }
    d.hint("check the YAML syntax and the value's type against the playbook reference in the README")
}
