//! Record-by-record differences between two sorted `(id, hash)` lists: a snapshot and a live
//! connector, or two snapshots.

use serde::Serialize;

use crate::digest::{Hash32, ObjectDigester};

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

/// Finds ids among a finished digester's pairs, for comparing records one by one without
/// collecting and sorting the other side. Built for one digester and used only with it.
pub struct PairIndex(Lookup);

enum Lookup {
    /// Every id is a canonical decimal integer (as SQL CRMs number records), within a span of
    /// a few times their number: position + 1 by `id - min`, 0 for none. Live records arrive in
    /// id order, so the lookups walk this table instead of jumping around a hash table.
    Dense { min: u64, positions: Vec<u32> },
    /// Open addressing, at most half full: `tag << 32 | position + 1` per slot (0 for an empty
    /// one), the tag being the hash's high half, so a probe of another id rarely reads its pair.
    Hashed {
        slots: Vec<u64>,
        mask: usize,
        hasher: std::hash::RandomState,
    },
}

/// The value of an id written as a canonical decimal integer: digits only, no leading zero,
/// at most 18 of them.
pub fn canonical_integer(id: &str) -> Option<u64> {
    let bytes = id.as_bytes();
    if bytes.is_empty() || bytes.len() > 18 || (bytes[0] == b'0' && bytes.len() > 1) {
        return None;
    }
    bytes
        .iter()
        .try_fold(0u64, |v, &b| b.is_ascii_digit().then(|| v * 10 + u64::from(b - b'0')))
}

impl PairIndex {
    pub fn new(pairs: &ObjectDigester) -> PairIndex {
        use std::hash::BuildHasher;
        let n = pairs.len();
        let span = (0..n)
            .map(|i| canonical_integer(pairs.pair_at(i).0))
            .try_fold((u64::MAX, 0u64), |(lo, hi), v| v.map(|v| (lo.min(v), hi.max(v))));
        if let Some((min, max)) = span
            && n > 0
            && max - min < (n as u64).saturating_mul(4).max(1024)
        {
            let mut positions = vec![0u32; (max - min + 1) as usize];
            for i in 0..n {
                let at = &mut positions[(canonical_integer(pairs.pair_at(i).0).expect("checked above") - min) as usize];
                // A repeated id (a damaged snapshot) is found at its first position.
                if *at == 0 {
                    *at = i as u32 + 1;
                }
            }
            return PairIndex(Lookup::Dense { min, positions });
        }
        let size = (n * 2).next_power_of_two().max(16);
        let (mut slots, mask, hasher) = (vec![0u64; size], size - 1, std::hash::RandomState::new());
        for i in 0..n {
            let h = hasher.hash_one(pairs.pair_at(i).0);
            let mut at = h as usize & mask;
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = (h & !0xffff_ffff) | (i as u64 + 1);
        }
        PairIndex(Lookup::Hashed { slots, mask, hasher })
    }

    /// The position of `id` in `pairs` (the digester the index was built for).
    pub fn find(&self, pairs: &ObjectDigester, id: &str) -> Option<usize> {
        use std::hash::BuildHasher;
        match &self.0 {
            Lookup::Dense { min, positions } => {
                let at = canonical_integer(id)?.checked_sub(*min)?;
                match positions.get(usize::try_from(at).ok()?) {
                    Some(&p) if p != 0 => Some(p as usize - 1),
                    _ => None,
                }
            }
            Lookup::Hashed { slots, mask, hasher } => {
                let h = hasher.hash_one(id);
                let mut at = h as usize & mask;
                loop {
                    let slot = slots[at];
                    if slot == 0 {
                        return None;
                    }
                    let position = (slot & 0xffff_ffff) as usize - 1;
                    if slot & !0xffff_ffff == h & !0xffff_ffff && pairs.pair_at(position).0 == id {
                        return Some(position);
                    }
                    at = (at + 1) & mask;
                }
            }
        }
    }
}

/// A snapshot's record hashes by id, for objects whose ids are all canonical decimal integers
/// within a span of a few times their number (as SQL CRMs number records): a table indexed by
/// `id - min`, built straight from the index, so a comparison needs neither the pairs sorted by
/// id text nor a lookup table over them.
pub struct DenseHashes {
    min: u64,
    hashes: Vec<Hash32>,
    /// One bit per slot of `hashes`: a record holds that id.
    present: Vec<u64>,
    count: usize,
}

impl DenseHashes {
    /// From an object's index bodies (see [`crate::store::index`]); `None` when its ids do not
    /// qualify, or when an id repeats (a damaged snapshot, which the pairs path compares as the
    /// merge does).
    pub fn from_index(raws: &[Vec<u8>]) -> Result<Option<DenseHashes>, String> {
        let (mut min, mut max, mut count, mut dense) = (u64::MAX, 0u64, 0usize, true);
        for raw in raws {
            crate::store::index::for_each_pair(raw, |id, _| match canonical_integer(id) {
                Some(v) if dense => {
                    (min, max, count) = (min.min(v), max.max(v), count + 1);
                }
                _ => dense = false,
            })?;
        }
        if !dense || count == 0 || max - min >= (count as u64).saturating_mul(4).max(1024) {
            return Ok(None);
        }
        let span = (max - min + 1) as usize;
        let mut table = DenseHashes {
            min,
            hashes: vec![Hash32::default(); span],
            present: vec![0; span.div_ceil(64)],
            count: 0,
        };
        let mut repeated = false;
        for raw in raws {
            crate::store::index::for_each_pair(raw, |id, hash| {
                let at = (canonical_integer(id).expect("checked above") - min) as usize;
                let bit = 1u64 << (at % 64);
                repeated |= table.present[at / 64] & bit != 0;
                table.present[at / 64] |= bit;
                table.hashes[at] = hash;
                table.count += 1;
            })?;
        }
        Ok((!repeated).then_some(table))
    }

    /// How many records.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn slot(&self, id: &str) -> Option<usize> {
        let at = usize::try_from(canonical_integer(id)?.checked_sub(self.min)?).ok()?;
        (at < self.hashes.len() && self.present[at / 64] & (1 << (at % 64)) != 0).then_some(at)
    }

    /// The hash of the record with `id`.
    pub fn hash(&self, id: &str) -> Option<Hash32> {
        self.slot(id).map(|at| self.hashes[at])
    }
}

/// What a one-by-one comparison has met so far: the snapshot positions seen (a bit each), and
/// the ids added and changed.
struct Tally {
    seen: Vec<u64>,
    added: Vec<String>,
    changed: Vec<String>,
}

impl Tally {
    fn new(positions: usize) -> Self {
        Tally {
            seen: vec![0; positions.div_ceil(64)],
            added: Vec::new(),
            changed: Vec::new(),
        }
    }

    fn is_seen(&self, at: usize) -> bool {
        self.seen[at / 64] & (1 << (at % 64)) != 0
    }

    /// One id of the other side, found at snapshot position `at` or not at all; `differs` tells
    /// whether its hash differs from the one there. An id met twice is added the second time,
    /// as [`diff`] has it.
    fn push(&mut self, id: &str, at: Option<usize>, differs: impl FnOnce(usize) -> bool) {
        let Some(at) = at else {
            self.added.push(id.to_string());
            return;
        };
        let (word, bit) = (at / 64, 1u64 << (at % 64));
        if self.seen[word] & bit != 0 {
            self.added.push(id.to_string());
            return;
        }
        self.seen[word] |= bit;
        if differs(at) {
            self.changed.push(id.to_string());
        }
    }

    /// The differences, with the `deleted` ids the caller found unseen; every list in id byte
    /// order.
    fn finish(self, mut deleted: Vec<String>) -> RecordDiff {
        let by_bytes = |a: &String, b: &String| a.as_bytes().cmp(b.as_bytes());
        let (mut added, mut changed) = (self.added, self.changed);
        deleted.sort_unstable_by(by_bytes);
        added.sort_unstable_by(by_bytes);
        changed.sort_unstable_by(by_bytes);
        RecordDiff { added, changed, deleted }
    }
}

/// [`PairComparison`] against [`DenseHashes`].
pub struct DenseComparison<'a> {
    before: &'a DenseHashes,
    tally: Tally,
}

impl<'a> DenseComparison<'a> {
    pub fn new(before: &'a DenseHashes) -> Self {
        DenseComparison {
            before,
            tally: Tally::new(before.hashes.len()),
        }
    }

    /// One pair of the other side.
    pub fn push(&mut self, id: &str, hash: Hash32) {
        let hashes = &self.before.hashes;
        self.tally.push(id, self.before.slot(id), |at| hashes[at] != hash);
    }

    pub fn finish(self) -> RecordDiff {
        let mut deleted = Vec::new();
        for (word, (present, seen)) in self.before.present.iter().zip(&self.tally.seen).enumerate() {
            let mut missing = present & !seen;
            while missing != 0 {
                let bit = missing.trailing_zeros() as usize;
                missing &= missing - 1;
                deleted.push((self.before.min + (word * 64 + bit) as u64).to_string());
            }
        }
        self.tally.finish(deleted)
    }
}

/// Compares pairs that arrive in any order (a live connector's) with a finished digester's (a
/// snapshot's), one by one, so they are never collected and sorted. Gives what [`diff`] gives
/// for the same pairs, ids in the same order.
pub struct PairComparison<'a> {
    before: &'a ObjectDigester,
    index: &'a PairIndex,
    tally: Tally,
}

impl<'a> PairComparison<'a> {
    pub fn new(before: &'a ObjectDigester, index: &'a PairIndex) -> Self {
        PairComparison {
            before,
            index,
            tally: Tally::new(before.len()),
        }
    }

    /// One pair of the other side. An id the snapshot holds more than once (a damaged one) is
    /// matched with its copies in turn, as the merge matches them.
    pub fn push(&mut self, id: &str, hash: Hash32) {
        let before = self.before;
        let at = self.index.find(before, id).map(|mut at| {
            while self.tally.is_seen(at) && at + 1 < before.len() && before.pair_at(at + 1).0 == id {
                at += 1;
            }
            at
        });
        self.tally.push(id, at, |at| before.pair_at(at).1 != hash);
    }

    pub fn finish(self) -> RecordDiff {
        let mut deleted = Vec::new();
        for (word, seen) in self.tally.seen.iter().enumerate() {
            let mut missing = !seen;
            while missing != 0 {
                let at = word * 64 + missing.trailing_zeros() as usize;
                missing &= missing - 1;
                if at < self.before.len() {
                    deleted.push(self.before.pair_at(at).0.to_string());
                }
            }
        }
        self.tally.finish(deleted)
    }
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

    fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
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

    /// Pairs compared one by one as they arrive give what the merge gives: every kind, a
    /// repeated id, an empty side, unsorted input and a snapshot sorted through its order.
    #[test]
    fn pair_comparison_equals_the_merge() {
        let compare = |before: &ObjectDigester, after: &[(&str, &str)]| {
            let index = PairIndex::new(before);
            let mut c = PairComparison::new(before, &index);
            for (id, v) in after {
                c.push(id, sha256(v.as_bytes()));
            }
            c.finish()
        };
        type Pairs<'a> = Vec<(&'a str, &'a str)>;
        let cases: Vec<(Pairs, Pairs)> = vec![
            (vec![("1", "a"), ("2", "b"), ("3", "c")], vec![("4", "d"), ("2", "B"), ("1", "a")]),
            (vec![], vec![("x", "1"), ("a", "2")]),
            (vec![("x", "1"), ("a", "2")], vec![]),
            (
                vec![("b", "1"), ("a", "2"), ("é", "3")],
                vec![("a", "2"), ("a", "2"), ("é", "4"), ("c", "5")],
            ),
            // A damaged snapshot that repeats ids, against sides that repeat them or not.
            (vec![("7", "a"), ("7", "a"), ("8", "c")], vec![("7", "a"), ("7", "a"), ("8", "c")]),
            (vec![("7", "a"), ("7", "a"), ("8", "c")], vec![("8", "c"), ("7", "a")]),
        ];
        for (before, after) in cases {
            let b = pairs(&before);
            assert_eq!(compare(&b, &after), diff(&b, &pairs(&after)), "{before:?} → {after:?}");
        }
        // Many ids, in a different order on each side: the table's probing and the bit set.
        let before: Vec<(String, String)> = (0..5000).map(|i| (i.to_string(), format!("v{i}"))).collect();
        let after: Vec<(String, String)> = (0..5000)
            .rev()
            .filter(|i| i % 7 != 0)
            .map(|i| (i.to_string(), if i % 11 == 0 { "new".to_string() } else { format!("v{i}") }))
            .chain((5000..5100).map(|i| (i.to_string(), "added".to_string())))
            .collect();
        let b = pairs(&as_refs(&before));
        let got = compare(&b, &as_refs(&after));
        assert_eq!(got, diff(&b, &pairs(&as_refs(&after))));
        assert_eq!((got.added.len(), got.deleted.len()), (100, 715));
        let index = PairIndex::new(&b);
        assert!(matches!(index.0, Lookup::Dense { .. }), "integer ids are looked up by value");
        assert_eq!(index.find(&b, "4999").map(|at| b.pair_at(at).0), Some("4999"));
        for absent in ["5000", "04999", "-1", "", "49990000000000000000", "x"] {
            assert_eq!(index.find(&b, absent), None, "{absent}");
        }
        // The table built from the index gives the same differences.
        let (mut first, mut second) = (Vec::new(), Vec::new());
        for (i, (id, hash)) in b.pairs().enumerate() {
            crate::store::index::encode_pair(if i < 2500 { &mut first } else { &mut second }, id, &hash);
        }
        let dense = DenseHashes::from_index(&[first, second]).unwrap().expect("integer ids");
        assert_eq!(dense.len(), 5000);
        let mut c = DenseComparison::new(&dense);
        for (id, v) in as_refs(&after) {
            c.push(id, sha256(v.as_bytes()));
        }
        c.push("4999", sha256(b"v4999"));
        let mut expected = diff(&b, &pairs(&as_refs(&after)));
        expected.added.push("4999".into());
        expected.added.sort();
        assert_eq!(c.finish(), expected);
        assert_eq!(dense.hash("17"), Some(sha256(b"v17")));
        assert_eq!(dense.hash("017"), None);
        // Ids that are not all canonical integers, or too sparse, are hashed; same results.
        for odd in ["007", "1000000000"] {
            let mut with_odd = before.clone();
            with_odd.push((odd.to_string(), "odd".to_string()));
            let b = pairs(&as_refs(&with_odd));
            assert!(matches!(PairIndex::new(&b).0, Lookup::Hashed { .. }), "{odd}");
            assert!(
                DenseHashes::from_index(&[crate::store::index::encode(&b)]).unwrap().is_none(),
                "{odd}"
            );
            let got = compare(&b, &as_refs(&after));
            assert_eq!(got, diff(&b, &pairs(&as_refs(&after))));
            assert_eq!(got.deleted.len(), 716);
        }
        // A snapshot that repeats an integer id is compared through its pairs.
        let repeated = pairs(&[("1", "a"), ("1", "b"), ("2", "c")]);
        assert!(
            DenseHashes::from_index(&[crate::store::index::encode(&repeated)])
                .unwrap()
                .is_none()
        );
    }
}
