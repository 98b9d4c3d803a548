//! HubSpot associations v4 in the sandbox: contact ↔ company and deal ↔ company, with HubSpot's
//! unlabeled type ids (279/280, 341/342).

use std::collections::{BTreeMap, BTreeSet};

use crate::generate::Rng;

/// The association kinds served, each stored once as `(from, to)`.
pub const KINDS: [(&str, &str); 2] = [("contacts", "companies"), ("deals", "companies")];

/// HubSpot's unlabeled association type id from `from` to `to`.
pub fn type_id(from: &str, to: &str) -> Option<u32> {
    match (from, to) {
        ("contacts", "companies") => Some(279),
        ("companies", "contacts") => Some(280),
        ("deals", "companies") => Some(341),
        ("companies", "deals") => Some(342),
        _ => None,
    }
}

/// Every association, both ways.
#[derive(Default)]
pub struct Associations {
    forward: BTreeMap<(&'static str, &'static str), BTreeSet<(u64, u64)>>,
    /// The same pairs as `(to, from)`, for lookups against the stored direction.
    reverse: BTreeMap<(&'static str, &'static str), BTreeSet<(u64, u64)>>,
}

impl Associations {
    /// The stored kind and whether `from → to` runs against it.
    fn kind(from: &str, to: &str) -> Option<((&'static str, &'static str), bool)> {
        KINDS.iter().find_map(|&(a, b)| {
            if (a, b) == (from, to) {
                Some(((a, b), false))
            } else if (b, a) == (from, to) {
                Some(((a, b), true))
            } else {
                None
            }
        })
    }

    /// The ids `id` (of type `from`) is associated with in type `to`, ascending.
    pub fn of(&self, from: &str, id: u64, to: &str) -> Vec<u64> {
        let Some((kind, reversed)) = Self::kind(from, to) else {
            return Vec::new();
        };
        let side = if reversed { &self.reverse } else { &self.forward };
        let Some(pairs) = side.get(&kind) else { return Vec::new() };
        pairs.range((id, 0)..=(id, u64::MAX)).map(|(_, b)| *b).collect()
    }

    /// Adds `from_id → to_id`; false when the kind is not served.
    pub fn add(&mut self, from: &str, from_id: u64, to: &str, to_id: u64) -> bool {
        let Some((kind, reversed)) = Self::kind(from, to) else {
            return false;
        };
        let pair = if reversed { (to_id, from_id) } else { (from_id, to_id) };
        self.forward.entry(kind).or_default().insert(pair);
        self.reverse.entry(kind).or_default().insert((pair.1, pair.0));
        true
    }

    pub fn remove(&mut self, from: &str, from_id: u64, to: &str, to_id: u64) {
        if let Some((kind, reversed)) = Self::kind(from, to) {
            let pair = if reversed { (to_id, from_id) } else { (from_id, to_id) };
            if let Some(pairs) = self.forward.get_mut(&kind) {
                pairs.remove(&pair);
            }
            if let Some(pairs) = self.reverse.get_mut(&kind) {
                pairs.remove(&(pair.1, pair.0));
            }
        }
    }

    /// Every stored pair of each kind, for saving.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &'static str, u64, u64)> + '_ {
        self.forward
            .iter()
            .flat_map(|((a, b), pairs)| pairs.iter().map(move |(x, y)| (*a, *b, *x, *y)))
    }

    /// Deterministic associations: most contacts and deals belong to one company.
    pub fn seed(contacts: u64, deals: u64, companies: u64) -> Associations {
        let mut out = Associations::default();
        if companies == 0 {
            return out;
        }
        let mut rng = Rng::new(companies);
        for (from, count) in [("contacts", contacts), ("deals", deals)] {
            for id in 1..=count {
                if rng.chance(85) {
                    out.add(from, id, "companies", 1 + rng.below(companies));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions() {
        let mut a = Associations::default();
        assert!(a.add("contacts", 5, "companies", 9));
        assert!(a.add("companies", 9, "contacts", 7));
        assert!(!a.add("contacts", 5, "tickets", 1));
        assert_eq!(a.of("companies", 9, "contacts"), vec![5, 7]);
        assert_eq!(a.of("contacts", 7, "companies"), vec![9]);
        a.remove("companies", 9, "contacts", 5);
        assert_eq!(a.of("contacts", 5, "companies"), Vec::<u64>::new());
        assert_eq!(type_id("deals", "companies"), Some(341));
    }
}
