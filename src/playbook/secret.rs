//! `${env:NAME}` and `${file:PATH}` references, resolved only when used.
//!
//! A resolved value is never printed: errors name the reference, not what it resolved to, and
//! [`Secret`]'s `Debug` shows only the reference text.

use std::fmt;
use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum SecretError {
    #[error("environment variable `{0}` is not set\nhint: export {0}=... before running, or change the reference in the playbook")]
    MissingEnv(String),
    #[error(
        "secret file `{path}` cannot be read: {message}\nhint: check the path (relative paths start at the playbook's folder) and its permissions"
    )]
    MissingFile { path: String, message: String },
    #[error("`{0}` is not a valid reference\nhint: write `${{env:NAME}}` or `${{file:PATH}}`")]
    Malformed(String),
}

/// A playbook string that may contain secret references.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({:?})", self.0)
    }
}

/// One `${...}` reference inside a string.
#[derive(Debug, PartialEq)]
pub enum Reference<'a> {
    Env(&'a str),
    File(&'a str),
}

/// Finds every reference in `text`; an unterminated or unknown `${...}` is an error.
pub fn references(text: &str) -> Result<Vec<(std::ops::Range<usize>, Reference<'_>)>, SecretError> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("${").map(|i| i + from) {
        let end = text[start..]
            .find('}')
            .map(|i| i + start)
            .ok_or_else(|| SecretError::Malformed(text[start..].into()))?;
        let inner = &text[start + 2..end];
        let reference = match inner.split_once(':') {
            Some(("env", name)) if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => Reference::Env(name),
            Some(("file", path)) if !path.is_empty() => Reference::File(path),
            _ => return Err(SecretError::Malformed(text[start..=end].into())),
        };
        out.push((start..end + 1, reference));
        from = end + 1;
    }
    Ok(out)
}

impl Secret {
    /// Substitutes every reference; relative file paths start at `base_dir`.
    pub fn resolve(&self, base_dir: &Path) -> Result<String, SecretError> {
        let refs = references(&self.0)?;
        let mut out = String::with_capacity(self.0.len());
        let mut last = 0;
        for (range, reference) in refs {
            out.push_str(&self.0[last..range.start]);
            match reference {
                Reference::Env(name) => {
                    out.push_str(&std::env::var(name).map_err(|_| SecretError::MissingEnv(name.into()))?);
                }
                Reference::File(path) => {
                    let text = std::fs::read_to_string(base_dir.join(path)).map_err(|e| SecretError::MissingFile {
                        path: path.into(),
                        message: e.kind().to_string(),
                    })?;
                    out.push_str(text.trim_end_matches(['\n', '\r']));
                }
            }
            last = range.end;
        }
        out.push_str(&self.0[last..]);
        Ok(out)
    }

    /// True when the text holds at least one reference.
    pub fn has_references(&self) -> bool {
        self.0.contains("${")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Env and file references resolve; missing ones name the reference only.
    #[test]
    fn resolves_and_reports_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        // Cargo sets CARGO_PKG_NAME for test processes.
        let s = Secret("postgres://u:${file:pw}@h/${env:CARGO_PKG_NAME}".into());
        assert_eq!(s.resolve(dir.path()).unwrap(), "postgres://u:s3cret@h/rollback");
        let missing = Secret("${env:ROLLBACK_TEST_SURELY_UNSET}".into()).resolve(dir.path()).unwrap_err();
        assert_eq!(missing, SecretError::MissingEnv("ROLLBACK_TEST_SURELY_UNSET".into()));
        assert!(matches!(
            Secret("${file:nope}".into()).resolve(dir.path()),
            Err(SecretError::MissingFile { .. })
        ));
        assert!(matches!(
            Secret("${vault:x}".into()).resolve(dir.path()),
            Err(SecretError::Malformed(_))
        ));
        assert!(matches!(
            Secret("${env:X".into()).resolve(dir.path()),
            Err(SecretError::Malformed(_))
        ));
    }
}
