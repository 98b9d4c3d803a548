//! Salesforce record ids in the sandbox: the object's 3-character key prefix, `5S0`, and the
//! record number in 9 base-62 digits (15 case-sensitive characters), plus Salesforce's
//! 3-character case checksum (18 characters, case-insensitive). Both lengths are accepted.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECKSUM: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
/// The characters after the key prefix (pod and reserved digit in real ids).
const MIDDLE: &str = "5S0";

/// The 18-character id of record `number` of the object with key prefix `prefix`.
pub fn show(prefix: &str, number: u64) -> String {
    let mut digits = [b'0'; 9];
    let mut n = number;
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    let mut id = format!("{prefix}{MIDDLE}");
    id.extend(digits.iter().map(|&b| b as char));
    let suffix = checksum(id.as_bytes());
    id.extend(suffix.iter().map(|&b| b as char));
    id
}

/// The 3-character case checksum of a 15-character id.
fn checksum(id: &[u8]) -> [u8; 3] {
    let mut out = [b'A'; 3];
    for (chunk, o) in id.chunks(5).zip(out.iter_mut()) {
        let bits = chunk
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_ascii_uppercase())
            .fold(0, |acc, (i, _)| acc | (1 << i));
        *o = CHECKSUM[bits];
    }
    out
}

/// The 18-character form of a 15- or 18-character id (the case of an 18-character one is
/// restored from its checksum); `None` for anything else.
pub fn canonical(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut base: Vec<u8> = match bytes.len() {
        15 => bytes.to_vec(),
        18 => {
            let mut base = bytes[..15].to_vec();
            for (chunk, suffix) in base.chunks_mut(5).zip(&bytes[15..]) {
                let bits = CHECKSUM.iter().position(|c| *c == suffix.to_ascii_uppercase())?;
                for (i, c) in chunk.iter_mut().enumerate() {
                    *c = if bits & (1 << i) != 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    };
                }
            }
            base
        }
        _ => return None,
    };
    let suffix = checksum(&base);
    base.extend_from_slice(&suffix);
    String::from_utf8(base).ok()
}

/// The record number an id names, if it is an id of the object with key prefix `prefix`.
pub fn parse(prefix: &str, text: &str) -> Option<u64> {
    let id = canonical(text)?;
    let rest = id.strip_prefix(prefix)?.strip_prefix(MIDDLE)?;
    rest[..9].bytes().try_fold(0u64, |n, b| {
        let digit = BASE62.iter().position(|c| *c == b)? as u64;
        n.checked_mul(62)?.checked_add(digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_in_both_lengths_and_any_case() {
        for n in [1u64, 61, 62, 1_000_000, 13_537_086_546_263_551] {
            let id = show("003", n);
            assert_eq!(id.len(), 18);
            assert!(id.starts_with("0035S0"));
            assert_eq!(parse("003", &id), Some(n));
            assert_eq!(parse("003", &id[..15]), Some(n), "15-character form");
            assert_eq!(parse("003", &id.to_lowercase()), Some(n), "18 characters ignore case");
            assert_eq!(parse("001", &id), None, "another object's prefix");
        }
        // The checksum follows Salesforce's rule: a bit per upper-case letter in each 5 characters.
        assert_eq!(canonical("001A0000006Vm9r"), Some("001A0000006Vm9rIAC".to_string()));
        assert_eq!(parse("003", "not-an-id"), None);
        assert_eq!(parse("003", "0035S0zzzzzzzzz"), Some(13_537_086_546_263_551));
    }
}
