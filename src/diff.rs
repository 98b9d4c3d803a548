//! Record-by-record differences between two sorted `(id, hash)` lists: a snapshot and a live
//! connector, or two snapshots.

use serde::Serialize;

use crate::digest::ObjectDigester;

/// Ids that differ, from the point of view of `before` → `after`.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct RecordDiff {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub deleted: Vec<String>,
}

impl RecordDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.deleted.is_empty()
    }

    pub fn total(&self) -> usize {
        self.added.len() + self.changed.len() + self.deleted.len()
    }
}

/// Compares two finished digesters (pairs sorted by id).
pub fn diff(before: &ObjectDigester, after: &ObjectDigester) -> RecordDiff {
    let mut out = RecordDiff::default();
    let mut a = before.pairs().peekable();
    let mut b = after.pairs().peekable();
    loop {
        match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some((id, _)), None) => {
                out.deleted.push(id.to_string());
                a.next();
            }
            (None, Some((id, _))) => {
                out.added.push(id.to_string());
                b.next();
            }
            (Some((ia, ha)), Some((ib, hb))) => match ia.as_bytes().cmp(ib.as_bytes()) {
                std::cmp::Ordering::Less => {
                    out.deleted.push(ia.to_string());
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    out.added.push(ib.to_string());
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    if ha != hb {
                        out.changed.push(ia.to_string());
                    }
                    a.next();
                    b.next();
                }
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256;

    fn pairs(items: &[(&str, &str)]) -> ObjectDigester {
        let mut d = ObjectDigester::new();
        for (id, v) in items {
            d.push(id, sha256(v.as_bytes()));
        }
        d.finish();
        d
    }

    /// Added, changed and deleted ids are each found, and equal records are not reported.
    #[test]
    fn finds_each_kind_of_difference() {
        let before = pairs(&[("1", "a"), ("2", "b"), ("3", "c")]);
        let after = pairs(&[("4", "d"), ("2", "B"), ("1", "a")]);
        let d = diff(&before, &after);
        assert_eq!(d.added, vec!["4"]);
        assert_eq!(d.changed, vec!["2"]);
        assert_eq!(d.deleted, vec!["3"]);
        assert!(diff(&before, &before).is_empty());
    }
}
