//! Object indexes: one chunk per object of a snapshot holding its `(id, record hash)` pairs in id
//! order, so digests can be re-derived and snapshots diffed without decompressing the data.
//!
//! Body (before zstd): for each pair, the 32-byte record hash, the id length as u32
//! little-endian, then the id's UTF-8 bytes.

use crate::digest::{Hash32, ObjectDigester};

/// Appends one pair's encoding.
pub fn encode_pair(out: &mut Vec<u8>, id: &str, hash: &Hash32) {
    out.extend_from_slice(&hash.0);
    out.extend_from_slice(&(id.len() as u32).to_le_bytes());
    out.extend_from_slice(id.as_bytes());
}

/// Encodes finished (sorted) pairs as one body.
pub fn encode(pairs: &ObjectDigester) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * 44);
    for (id, hash) in pairs.pairs() {
        encode_pair(&mut out, id, &hash);
    }
    out
}

/// Decodes an index body back into pairs (in the stored order).
pub fn decode(raw: &[u8]) -> Result<ObjectDigester, String> {
    let mut pairs = ObjectDigester::new();
    decode_into(raw, &mut pairs)?;
    Ok(pairs)
}

/// Decodes an index body, appending its pairs to `pairs` (in the stored order).
pub fn decode_into(raw: &[u8], pairs: &mut ObjectDigester) -> Result<(), String> {
    for_each_pair(raw, |id, hash| pairs.push(id, hash))
}

/// Calls `f` with each pair of an index body, in the stored order.
pub fn for_each_pair(raw: &[u8], mut f: impl FnMut(&str, Hash32)) -> Result<(), String> {
    let mut at = 0;
    while at < raw.len() {
        let hash = raw.get(at..at + 32).ok_or("truncated record hash")?;
        let len = raw.get(at + 32..at + 36).ok_or("truncated id length")?;
        let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
        let id = raw.get(at + 36..at + 36 + len).ok_or("truncated id")?;
        let id = std::str::from_utf8(id).map_err(|_| "id is not UTF-8")?;
        f(id, Hash32(hash.try_into().expect("32 bytes")));
        at += 36 + len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256;

    /// An index decodes to the same pairs and digest; truncation is an error, not a panic.
    #[test]
    fn index_round_trips() {
        let mut pairs = ObjectDigester::new();
        for id in ["b", "a", "ü", ""] {
            pairs.push(id, sha256(id.as_bytes()));
        }
        let digest = pairs.finish();
        let raw = encode(&pairs);
        let mut back = decode(&raw).unwrap();
        assert_eq!(back.finish(), digest);
        for cut in 0..raw.len() {
            let _ = decode(&raw[..cut]);
        }
        assert!(decode(&raw[..raw.len() - 1]).is_err());
    }
}
