//! sha256 hashes and the order-independent object digest.
//!
//! An object's digest is sha256 over its `(id, record_hash)` pairs sorted by id bytes, each pair
//! written as `u64-le(len(id)) || id || record_hash`. A snapshot's root digest is sha256 over its
//! object digests in name order, each written as `u64-le(len(name)) || name || digest`. Digests
//! print as `sha256:<hex>`.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A 32-byte sha256 value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

/// sha256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash32 {
    Hash32(Sha256::digest(bytes).into())
}

impl Hash32 {
    /// Lowercase hex without prefix (chunk file names).
    pub fn to_hex(&self) -> String {
        const_hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        const_hex::decode_to_slice(hex, &mut out).ok()?;
        Some(Hash32(out))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Hash32 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        Hash32::from_hex(hex).ok_or_else(|| format!("`{s}` is not a sha256 digest"))
    }
}

impl serde::Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Pairs from which [`ObjectDigester::sort`] uses two threads.
const PARALLEL_SORT: usize = 1 << 16;

/// Collects `(id, record_hash)` pairs in any order and derives the object digest.
///
/// Ids live in one arena so a million pairs cost about 50 MB, not a million allocations.
#[derive(Default)]
pub struct ObjectDigester {
    arena: String,
    entries: Vec<(u32, u32, Hash32)>,
    sorted: bool,
    /// Positions of `entries` in id order, once sorted (entries themselves never move).
    order: Option<Vec<u32>>,
}

/// An object's digest with what it was derived from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectDigest {
    pub digest: Hash32,
    pub count: u64,
    /// Ids that occurred more than once (a connector or a store defect).
    pub duplicates: Vec<String>,
}

impl ObjectDigester {
    pub fn new() -> Self {
        ObjectDigester {
            sorted: true,
            ..Default::default()
        }
    }

    /// A digester with room for `records` pairs with ids of about `id_len` bytes.
    pub fn with_capacity(records: usize, id_len: usize) -> Self {
        ObjectDigester {
            arena: String::with_capacity(records * id_len),
            entries: Vec::with_capacity(records),
            sorted: true,
            order: None,
        }
    }

    /// Adds one record's id and hash.
    pub fn push(&mut self, id: &str, hash: Hash32) {
        let start = self.arena.len() as u32;
        self.arena.push_str(id);
        if let Some(&(s, l, _)) = self.entries.last() {
            let prev = &self.arena[s as usize..(s + l) as usize];
            if prev.as_bytes() >= id.as_bytes() {
                self.sorted = false;
            }
        }
        self.entries.push((start, id.len() as u32, hash));
        self.order = None;
    }

    /// Moves all pairs of `other` into `self`.
    pub fn merge(&mut self, other: ObjectDigester) {
        self.entries.reserve(other.entries.len());
        self.arena.reserve(other.arena.len());
        for (s, l, h) in &other.entries {
            self.push(&other.arena[*s as usize..(*s + *l) as usize], *h);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sorts by id and returns the digest; pairs are then available through [`Self::pairs`].
    pub fn finish(&mut self) -> ObjectDigest {
        self.sort();
        self.digest()
    }

    /// Puts the pairs in id order (a no-op when they came in order or are sorted already).
    pub fn sort(&mut self) {
        if !self.sorted && self.order.is_none() {
            self.order = Some(self.sorted_order());
        }
    }

    /// The digest of the pairs in id order; call [`Self::sort`] first.
    pub fn digest(&self) -> ObjectDigest {
        debug_assert!(self.sorted || self.order.is_some(), "digest of unsorted pairs");
        let mut hasher = Sha256::new();
        let mut duplicates = Vec::new();
        let mut previous: Option<&str> = None;
        // Small pieces go through one buffer: the hasher's per-call overhead is most of the cost
        // of three tiny updates per pair.
        let mut buffer: Vec<u8> = Vec::with_capacity(64 << 10);
        for (id, hash) in self.pairs() {
            if previous == Some(id) {
                duplicates.push(id.to_string());
            }
            previous = Some(id);
            buffer.extend_from_slice(&(id.len() as u64).to_le_bytes());
            buffer.extend_from_slice(id.as_bytes());
            buffer.extend_from_slice(&hash.0);
            if buffer.len() >= (64 << 10) - 4096 {
                hasher.update(&buffer);
                buffer.clear();
            }
        }
        hasher.update(&buffer);
        ObjectDigest {
            digest: Hash32(hasher.finalize().into()),
            count: self.entries.len() as u64,
            duplicates,
        }
    }

    /// Entry positions in id byte order. Sorts 16-byte keys (the id's first eight bytes and a
    /// position) and compares whole ids only to break ties, which is several times faster than
    /// moving 40-byte entries around. A large set is sorted in two halves on two threads and
    /// merged.
    fn sorted_order(&self) -> Vec<u32> {
        let id = |i: u32| {
            let (s, l, _) = self.entries[i as usize];
            &self.arena.as_bytes()[s as usize..(s + l) as usize]
        };
        let prefix = |bytes: &[u8]| {
            let mut buf = [0u8; 8];
            let n = bytes.len().min(8);
            buf[..n].copy_from_slice(&bytes[..n]);
            u64::from_be_bytes(buf)
        };
        let less = |a: &(u64, u32), b: &(u64, u32)| a.0.cmp(&b.0).then_with(|| id(a.1).cmp(id(b.1)));
        let mut keys: Vec<(u64, u32)> = (0..self.entries.len() as u32).map(|i| (prefix(id(i)), i)).collect();
        if keys.len() < PARALLEL_SORT || std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            keys.sort_unstable_by(less);
            return keys.into_iter().map(|(_, i)| i).collect();
        }
        let (left, right) = keys.split_at_mut(self.entries.len() / 2);
        std::thread::scope(|s| {
            s.spawn(|| left.sort_unstable_by(less));
            right.sort_unstable_by(less);
        });
        // Merge the two sorted halves.
        let mut order = Vec::with_capacity(self.entries.len());
        let (mut a, mut b) = (left.iter().peekable(), right.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => {
                    if less(x, y) != std::cmp::Ordering::Greater {
                        a.next()
                    } else {
                        b.next()
                    }
                }
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            if let Some(&(_, i)) = next {
                order.push(i);
            }
        }
        order
    }

    /// The `i`-th pair in id order (call after [`Self::finish`]); `i < len()`.
    pub fn pair_at(&self, i: usize) -> (&str, Hash32) {
        let at = self.order.as_ref().map_or(i, |o| o[i] as usize);
        let (s, l, h) = self.entries[at];
        (&self.arena[s as usize..(s + l) as usize], h)
    }

    /// The pairs in id order (call after [`Self::finish`]).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, Hash32)> {
        let entry = move |e: &(u32, u32, Hash32)| (&self.arena[e.0 as usize..(e.0 + e.1) as usize], e.2);
        let ordered = self
            .order
            .as_ref()
            .map(|o| o.iter().map(move |i| entry(&self.entries[*i as usize])));
        let plain = if self.order.is_none() {
            Some(self.entries.iter().map(entry))
        } else {
            None
        };
        ordered.into_iter().flatten().chain(plain.into_iter().flatten())
    }
}

/// The root digest of a snapshot from `(object name, object digest)` pairs in any order.
pub fn root_digest<'a>(objects: impl IntoIterator<Item = (&'a str, Hash32)>) -> Hash32 {
    let mut pairs: Vec<_> = objects.into_iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (name, digest) in pairs {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(digest.0);
    }
    Hash32(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(pairs: &[(&str, &str)]) -> ObjectDigest {
        let mut d = ObjectDigester::new();
        for (id, content) in pairs {
            d.push(id, sha256(content.as_bytes()));
        }
        d.finish()
    }

    /// The same pairs in any order give the same digest.
    #[test]
    fn digest_is_order_independent() {
        let a = digest_of(&[("1", "a"), ("10", "b"), ("2", "c"), ("ü", "d")]);
        let b = digest_of(&[("ü", "d"), ("2", "c"), ("1", "a"), ("10", "b")]);
        assert_eq!(a, b);
        assert_eq!(a.count, 4);
    }

    /// Changing a hash, an id, or adding a pair changes the digest.
    #[test]
    fn digest_covers_ids_and_hashes() {
        let base = digest_of(&[("1", "a"), ("2", "b")]).digest;
        assert_ne!(base, digest_of(&[("1", "a"), ("2", "x")]).digest);
        assert_ne!(base, digest_of(&[("1", "a"), ("3", "b")]).digest);
        assert_ne!(base, digest_of(&[("1", "a"), ("2", "b"), ("3", "c")]).digest);
        // Length prefixes keep ("1","2x") apart from ("12","x").
        assert_ne!(digest_of(&[("1", "a")]).digest, digest_of(&[("", "a")]).digest);
    }

    /// Merging partial digesters (streaming in pieces) equals pushing everything into one.
    #[test]
    fn merged_digest_equals_one_shot() {
        let mut left = ObjectDigester::new();
        let mut right = ObjectDigester::new();
        let mut all = ObjectDigester::new();
        for i in 0..1000 {
            let h = sha256(format!("r{i}").as_bytes());
            if i % 3 == 0 {
                left.push(&i.to_string(), h)
            } else {
                right.push(&i.to_string(), h)
            }
            all.push(&i.to_string(), h);
        }
        left.merge(right);
        assert_eq!(left.finish(), all.finish());
    }

    /// A set large enough for the two-thread sort orders and hashes exactly as a plain sort and a
    /// one-piece hash do: ids sharing their first eight bytes, of other lengths, and duplicates.
    #[test]
    fn parallel_sort_matches_a_plain_sort() {
        let mut d = ObjectDigester::new();
        let mut expected: Vec<(String, Hash32)> = Vec::new();
        let mut state = 7u64;
        for i in 0..(PARALLEL_SORT as u64 * 3) {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let id = match i % 4 {
                0 => format!("customer-{}", state >> 40),
                1 => (state >> 44).to_string(),
                2 => format!("c{}", state % 97),
                _ => format!("customer-{}-x", state >> 50),
            };
            let hash = sha256(id.as_bytes());
            d.push(&id, hash);
            expected.push((id, hash));
        }
        expected.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let digest = d.finish();
        let got: Vec<(&str, Hash32)> = d.pairs().collect();
        assert!(got.iter().map(|p| p.0).eq(expected.iter().map(|p| p.0.as_str())));
        let mut hasher = Sha256::new();
        for (id, hash) in &expected {
            hasher.update((id.len() as u64).to_le_bytes());
            hasher.update(id.as_bytes());
            hasher.update(hash.0);
        }
        assert_eq!(digest.digest, Hash32(hasher.finalize().into()));
        assert!(!digest.duplicates.is_empty(), "the short ids repeat");
    }

    /// Duplicate ids are reported, not silently hashed twice.
    #[test]
    fn duplicates_are_reported() {
        assert_eq!(digest_of(&[("1", "a"), ("1", "a")]).duplicates, vec!["1".to_string()]);
    }

    /// The root digest does not depend on the order objects are listed in.
    #[test]
    fn root_digest_sorts_objects() {
        let a = sha256(b"a");
        let b = sha256(b"b");
        assert_eq!(root_digest([("x", a), ("y", b)]), root_digest([("y", b), ("x", a)]));
        assert_ne!(root_digest([("x", a), ("y", b)]), root_digest([("x", b), ("y", a)]));
    }

    /// Digests print and parse as `sha256:<hex>`.
    #[test]
    fn digest_round_trips_through_text() {
        let h = sha256(b"hello");
        assert!(h.to_string().starts_with("sha256:2cf24dba"));
        assert_eq!(h.to_string().parse::<Hash32>().unwrap(), h);
    }
}
