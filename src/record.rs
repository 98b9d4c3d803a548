//! The one record type every connector reads and writes, and its canonical bytes.
//!
//! Canonical bytes are compact JSON with sorted keys of `{fields, id, object}` (keys in that
//! order because they sort that way); `record_hash` is the sha256 of those bytes. Field maps are
//! `BTreeMap`s and `serde_json::Value` objects are sorted maps, so every nested key is sorted too.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::digest::{Hash32, sha256};

/// Field name → normalised value.
pub type Fields = BTreeMap<String, Value>;

/// `{object, id, fields, modified_at, deleted}`: the unit every connector reads and writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub object: Arc<str>,
    pub id: String,
    pub fields: Fields,
    pub modified_at: Option<DateTime<Utc>>,
    pub deleted: bool,
}

impl Record {
    /// A live record from its fields: the id is the text of field `id_field`, `modified_at` the
    /// parsed time in field `modified_field`. `None` when the id field is missing or empty.
    pub fn from_fields(object: &Arc<str>, fields: Fields, id_field: &str, modified_field: Option<&str>) -> Option<Record> {
        let id = match fields.get(id_field)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        let modified_at = modified_field
            .and_then(|m| fields.get(m))
            .and_then(Value::as_str)
            .and_then(parse_time);
        Some(Record {
            object: object.clone(),
            id,
            fields,
            modified_at,
            deleted: false,
        })
    }

    /// Appends the canonical bytes `{"fields":{..},"id":"..","object":".."}` to `out`.
    pub fn write_canonical(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"fields\":{");
        for (i, (key, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_str(out, key);
            out.push(b':');
            match value {
                Value::String(s) => write_json_str(out, s),
                // Writing a `Value` into a Vec cannot fail.
                other => serde_json::to_writer(&mut *out, other).expect("in-memory JSON write"),
            }
        }
        out.extend_from_slice(b"},\"id\":");
        write_json_str(out, &self.id);
        out.extend_from_slice(b",\"object\":");
        write_json_str(out, &self.object);
        out.push(b'}');
    }

    /// The canonical bytes as a fresh vector.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_canonical(&mut out);
        out
    }

    /// sha256 of the canonical bytes.
    pub fn hash(&self) -> Hash32 {
        sha256(&self.canonical_bytes())
    }
}

/// True when `bytes` holds a control character, `"` or `\\` (checked eight bytes at a time).
pub(crate) fn needs_escape(bytes: &[u8]) -> bool {
    special_bytes(bytes, false)
}

/// True when `bytes` is ASCII that a JSON string takes as it is: no control character, `"`,
/// `\\` or byte above 0x7F, so it is valid UTF-8 too and one pass checks both.
pub(crate) fn plain_ascii(bytes: &[u8]) -> bool {
    !special_bytes(bytes, true)
}

/// True when `bytes` holds a byte JSON must escape or, with `high`, a byte above 0x7F.
fn special_bytes(bytes: &[u8], high: bool) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS != 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let below_space = v.wrapping_sub(ONES * 0x20) & !v & HIGHS != 0;
        if (high && v & HIGHS != 0) || below_space || has_zero(v ^ (ONES * b'"' as u64)) || has_zero(v ^ (ONES * b'\\' as u64)) {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\' || (high && b >= 0x80))
}

/// Appends `s` as a JSON string literal (escaped exactly as serde_json escapes it).
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("in-memory JSON write");
    }
}

/// Formats a time the way every connector normalises timestamps: RFC 3339, UTC, `Z`, fractional
/// seconds only when present.
pub fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Parses the timestamp spellings CRMs store (RFC 3339 with any offset, `YYYY-MM-DD HH:MM:SS[.f]`
/// and `YYYY-MM-DDTHH:MM:SS[.f]` taken as UTC) into UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f %#z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: &str, name: &str) -> Record {
        let mut fields = Fields::new();
        fields.insert("name".into(), json!(name));
        fields.insert("amount".into(), json!("10.50"));
        fields.insert("nested".into(), json!({"z": 1, "a": [true, null]}));
        Record {
            object: "contacts".into(),
            id: id.into(),
            fields,
            modified_at: None,
            deleted: false,
        }
    }

    /// Canonical bytes are compact JSON with every key sorted, nested ones included.
    #[test]
    fn canonical_bytes_are_sorted_compact_json() {
        let bytes = record("7", "Zoë \"Z\"").canonical_bytes();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"fields":{"amount":"10.50","name":"Zoë \"Z\"","nested":{"a":[true,null],"z":1}},"id":"7","object":"contacts"}"#
        );
    }

    /// Canonical bytes equal serde_json's own sorted rendering of the same three keys.
    #[test]
    fn canonical_bytes_match_serde_json() {
        let r = record("x\u{1}y", "Åsa");
        let value = json!({"object": &*r.object, "id": r.id, "fields": r.fields});
        assert_eq!(r.canonical_bytes(), serde_json::to_vec(&value).unwrap());
    }

    /// Changing the id, the object or any field changes the hash; modified_at and deleted do not.
    #[test]
    fn hash_covers_object_id_and_fields() {
        let base = record("1", "Ann");
        let mut other = base.clone();
        other.id = "2".into();
        assert_ne!(base.hash(), other.hash());
        let mut other = base.clone();
        other.object = "leads".into();
        assert_ne!(base.hash(), other.hash());
        let mut other = base.clone();
        other.fields.insert("name".into(), json!("Anne"));
        assert_ne!(base.hash(), other.hash());
        let mut other = base.clone();
        other.deleted = true;
        assert_eq!(base.hash(), other.hash());
    }

    /// The fast escape and plain-ASCII checks agree with byte-by-byte checks at every position and
    /// length.
    #[test]
    fn escape_check_matches_bytewise() {
        for len in 0..20 {
            for pos in 0..len {
                for special in [0u8, 0x1f, b'"', b'\\', b' ', b'a', 0x7f, 0xc3] {
                    let mut bytes = vec![b'x'; len];
                    bytes[pos] = special;
                    let expected = bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
                    assert_eq!(needs_escape(&bytes), expected, "{bytes:?}");
                    assert_eq!(plain_ascii(&bytes), !expected && bytes.is_ascii(), "{bytes:?}");
                }
            }
        }
        let mut out = Vec::new();
        write_json_str(&mut out, "tab\there \"q\" é");
        assert_eq!(out, serde_json::to_vec("tab\there \"q\" é").unwrap());
    }

    /// The timestamp spellings CRMs use normalise to one RFC 3339 UTC form.
    #[test]
    fn timestamps_normalise_to_utc() {
        for text in ["2026-11-20T22:00:00Z", "2026-11-20 22:00:00", "2026-11-20T23:00:00+01:00"] {
            assert_eq!(format_time(&parse_time(text).unwrap()), "2026-11-20T22:00:00Z");
        }
        assert_eq!(
            format_time(&parse_time("2026-11-20 22:00:00.250").unwrap()),
            "2026-11-20T22:00:00.250Z"
        );
        assert!(parse_time("yesterday").is_none());
    }
}
