//! Ids for snapshots and runs: 16 lowercase hex characters, the first 11 the creation time in
//! milliseconds since the Unix epoch, the last 5 random. They sort by time as plain strings,
//! print short, and any unique prefix names one.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, TimeZone, Utc};

/// A new time-ordered id for `now`.
pub fn new_id(now: DateTime<Utc>) -> String {
    let millis = now.timestamp_millis().max(0) as u64;
    format!("{:011x}{}", millis & 0xfff_ffff_ffff, &random_hex(3)[..5])
}

/// The creation time encoded in an id, when it is one of ours.
pub fn id_time(id: &str) -> Option<DateTime<Utc>> {
    let millis = u64::from_str_radix(id.get(..11)?, 16).ok()?;
    Utc.timestamp_millis_opt(millis as i64).single()
}

/// `bytes` random bytes as hex, from the OS; falls back to time and a counter if unavailable.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).is_ok();
    if !filled {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = format!(
            "{:?}{}{}",
            std::time::SystemTime::now(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let hash = crate::digest::sha256(seed.as_bytes());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = hash.0[i % 32];
        }
    }
    const_hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids sort by creation time and carry it.
    #[test]
    fn ids_sort_by_time() {
        let early = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let late = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap();
        let (a, b) = (new_id(early), new_id(late));
        assert_eq!(a.len(), 16);
        assert!(a < b);
        assert_eq!(id_time(&a), Some(early));
    }
}
