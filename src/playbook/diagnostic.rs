//! Located playbook errors: `path:line:col: message`, the source line with a caret, and a hint.

use std::fmt;
use std::path::PathBuf;

/// One problem in a playbook, at a place in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(line: u64, column: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    pub fn at(location: serde_saphyr::Location, message: impl Into<String>) -> Self {
        Diagnostic::new(location.line(), location.column(), message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one playbook, rendered against its source.
#[derive(Debug, thiserror::Error)]
pub struct PlaybookErrors {
    pub path: PathBuf,
    pub source_text: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PlaybookErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<&str> = self.source_text.lines().collect();
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{}:{}:{}: {}", self.path.display(), d.line, d.column, d.message)?;
            if let Some(text) = lines.get((d.line as usize).wrapping_sub(1)) {
                let number = d.line.to_string();
                writeln!(f, "{} | {}", number, text)?;
                let pad: String = text
                    .chars()
                    .take((d.column as usize).saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                writeln!(f, "{} | {}^", " ".repeat(number.len()), pad)?;
            }
            if let Some(hint) = &d.hint {
                write!(f, "hint: {hint}")?;
                if i + 1 < self.diagnostics.len() {
                    writeln!(f)?;
                }
            }
        }
        if self.diagnostics.len() > 1 {
            write!(f, "\n{} problems in `{}`", self.diagnostics.len(), self.path.display())?;
        }
        Ok(())
    }
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// The candidate nearest to `word`, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 2).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A hint naming the nearest of `candidates`, or listing them all.
pub fn suggest<'a>(word: &str, what: &str, candidates: impl IntoIterator<Item = &'a str> + Clone) -> String {
    match nearest(word, candidates.clone()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => {
            let all: Vec<String> = candidates.into_iter().map(|c| format!("`{c}`")).collect();
            if all.is_empty() {
                format!("no {what} is defined")
            } else {
                format!("valid {what}s: {}", all.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Typos find their nearest valid key; unrelated words do not.
    #[test]
    fn nearest_finds_typos() {
        assert_eq!(edit_distance("bakup", "backup"), 1);
        assert_eq!(nearest("bakup", ["backup", "verify"]), Some("backup"));
        assert_eq!(nearest("conector", ["connector", "objects"]), Some("connector"));
        assert_eq!(nearest("zzz", ["backup", "verify"]), None);
    }
}
