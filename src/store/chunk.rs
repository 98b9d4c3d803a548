//! Chunk contents: zstd-compressed JSON lines, one record per line, each line
//! `{"deleted":BOOL,"modified_at":TIME|null,"record":CANONICAL}`.
//!
//! The canonical record bytes come last and verbatim, so a reader can hash them without parsing:
//! they are the slice after `,"record":` up to the closing brace of the line.

use std::sync::Arc;

use memchr::memmem;
use serde::Deserialize;

use crate::digest::{Hash32, ObjectDigester, sha256};
use crate::record::{Fields, Record, format_time, parse_time};

const RECORD_KEY: &[u8] = b",\"record\":";

/// Appends one record's line (with trailing newline) and returns its record hash.
pub fn encode_line(record: &Record, out: &mut Vec<u8>) -> Hash32 {
    out.extend_from_slice(if record.deleted {
        b"{\"deleted\":true"
    } else {
        b"{\"deleted\":false"
    });
    out.extend_from_slice(b",\"modified_at\":");
    match &record.modified_at {
        Some(t) => crate::record::write_json_str(out, &format_time(t)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(RECORD_KEY);
    let start = out.len();
    record.write_canonical(out);
    let hash = sha256(&out[start..]);
    out.extend_from_slice(b"}\n");
    hash
}

/// Compresses a chunk body.
pub fn compress(raw: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    compress_into(raw, level, &mut out)?;
    Ok(out)
}

/// Compresses a chunk body into `out` (cleared first), reusing this thread's zstd context.
pub fn compress_into(raw: &[u8], level: i32, out: &mut Vec<u8>) -> std::io::Result<()> {
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { std::cell::RefCell::new(None) };
    }
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(raw.len()));
    CONTEXT.with(|context| {
        let mut context = context.borrow_mut();
        if context.as_ref().is_none_or(|(l, _)| *l != level) {
            *context = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, compressor) = context.as_mut().expect("set above");
        compressor.compress_to_buffer(raw, out).map(|_| ())
    })
}

/// Decompresses a chunk body into one allocation of `limit` bytes, refusing a body that fills it
/// (callers pass the size the manifest records plus one, or more).
pub fn decompress(stored: &[u8], limit: usize) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(limit);
    zstd::bulk::Decompressor::new()?
        .decompress_to_buffer(stored, &mut raw)
        .map_err(|e| std::io::Error::other(format!("chunk does not inflate to at most the {limit} bytes expected: {e}")))?;
    if raw.len() >= limit {
        return Err(std::io::Error::other(format!(
            "chunk inflates to {} bytes or more, more than the {} expected",
            raw.len(),
            limit.saturating_sub(1)
        )));
    }
    Ok(raw)
}

/// A line that could not be read back.
#[derive(Debug, Clone, PartialEq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

/// Hashes every line of a decompressed chunk of `object` without building records.
/// Returns the partial digester, the number of records flagged deleted, and per-line problems.
pub fn hash_lines(raw: &[u8], object: &str) -> (ObjectDigester, u64, Vec<LineError>) {
    let mut suffix = b",\"object\":".to_vec();
    crate::record::write_json_str(&mut suffix, object);
    suffix.push(b'}');
    let record_finder = memmem::Finder::new(RECORD_KEY);
    let id_finder = memmem::FinderRev::new(b",\"id\":");
    let mut digester = ObjectDigester::new();
    let mut deleted = 0;
    let mut errors = Vec::new();
    for (index, line) in raw.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let parsed = (|| {
            let at = record_finder.find(line).ok_or("no `record` key")?;
            let canonical = line.get(at + RECORD_KEY.len()..line.len() - 1).ok_or("truncated line")?;
            if line.last() != Some(&b'}') || !canonical.ends_with(&suffix) {
                return Err("record does not belong to this object or is truncated");
            }
            let head = &canonical[..canonical.len() - suffix.len()];
            let id_at = id_finder.rfind(head).ok_or("no `id` key")?;
            let id: std::borrow::Cow<str> = serde_json::from_slice(&head[id_at + 6..]).map_err(|_| "the id is not a JSON string")?;
            Ok((id.into_owned(), sha256(canonical), line.starts_with(b"{\"deleted\":true")))
        })();
        match parsed {
            Ok((id, hash, is_deleted)) => {
                digester.push(&id, hash);
                deleted += u64::from(is_deleted);
            }
            Err(message) => errors.push(LineError {
                line: index + 1,
                message: message.to_string(),
            }),
        }
    }
    (digester, deleted, errors)
}

/// The id of one line, read without parsing the whole line (borrowed when it has no escapes).
fn line_id<'l>(line: &'l [u8], suffix: &[u8], id_finder: &memmem::FinderRev) -> Option<std::borrow::Cow<'l, str>> {
    let body = line.strip_suffix(b"}")?.strip_suffix(suffix)?;
    let at = id_finder.rfind(body)?;
    let raw = &body[at + 6..];
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if !inner.contains(&b'\\') && !inner.contains(&b'"') {
        return std::str::from_utf8(inner).ok().map(std::borrow::Cow::Borrowed);
    }
    serde_json::from_slice::<String>(raw).ok().map(std::borrow::Cow::Owned)
}

/// The records a filtered read of chunks wants, with the snapshot index's hash of each.
#[derive(Clone, Debug)]
pub struct WantedLines {
    hashes: std::collections::HashMap<String, Hash32>,
    /// When every wanted id is a canonical decimal integer within a bounded span: one bit per
    /// id from the first, so most lines are passed over without hashing their id's text.
    integers: Option<(u64, Vec<u64>)>,
}

impl WantedLines {
    pub fn new(hashes: std::collections::HashMap<String, Hash32>) -> Self {
        let values: Option<Vec<u64>> = hashes.keys().map(|id| crate::diff::canonical_integer(id)).collect();
        let integers = values.and_then(|values| {
            let (min, max) = (*values.iter().min()?, *values.iter().max()?);
            let span = max - min + 1;
            (span <= (values.len() as u64).saturating_mul(256).max(1 << 16)).then(|| {
                let mut bits = vec![0u64; span.div_ceil(64) as usize];
                for v in &values {
                    let at = (v - min) as usize;
                    bits[at / 64] |= 1 << (at % 64);
                }
                (min, bits)
            })
        });
        WantedLines { hashes, integers }
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The index hash of a wanted record, `None` for a record not wanted.
    pub fn get(&self, id: &str) -> Option<&Hash32> {
        if let Some((min, bits)) = &self.integers {
            let at = usize::try_from(crate::diff::canonical_integer(id)?.checked_sub(*min)?).ok()?;
            if bits.get(at / 64).is_none_or(|word| word & (1 << (at % 64)) == 0) {
                return None;
            }
        }
        self.hashes.get(id)
    }
}

/// Picks the lines of wanted records out of a chunk's lines and checks each against the hash
/// the snapshot's index gives its record.
struct LineMatcher<'a> {
    object: &'a Arc<str>,
    wanted: &'a WantedLines,
    suffix: Vec<u8>,
    id_finder: memmem::FinderRev<'static>,
    record_finder: memmem::Finder<'static>,
    out: Vec<u8>,
    count: usize,
    /// Lines fed before, for error messages.
    lines: usize,
}

impl<'a> LineMatcher<'a> {
    fn new(object: &'a Arc<str>, wanted: &'a WantedLines) -> Self {
        let mut suffix = b",\"object\":".to_vec();
        crate::record::write_json_str(&mut suffix, object);
        suffix.push(b'}');
        LineMatcher {
            object,
            wanted,
            suffix,
            id_finder: memmem::FinderRev::new(b",\"id\":"),
            record_finder: memmem::Finder::new(RECORD_KEY),
            out: Vec::new(),
            count: 0,
            lines: 0,
        }
    }

    /// Takes whole lines of a chunk, a piece at a time (the last one's newline may be missing). A line whose id cannot be
    /// read is checked by decoding it, so damage is reported, not skipped; a wanted line whose
    /// record does not hash to its index entry is damage too.
    fn feed(&mut self, raw: &[u8]) -> Result<(), LineError> {
        let (mut start, before) = (0, self.lines);
        for (index, end) in memchr::memchr_iter(b'\n', raw).chain(std::iter::once(raw.len())).enumerate() {
            let line = &raw[start..end];
            start = end + 1;
            self.lines = before + index + 1;
            if line.is_empty() {
                continue;
            }
            let err = |message: String| LineError {
                line: before + index + 1,
                message,
            };
            let id = match line_id(line, &self.suffix, &self.id_finder) {
                Some(id) => id,
                None => {
                    let records = decode_lines(line, self.object).map_err(|e| err(e.message))?;
                    match records.into_iter().next() {
                        Some(record) => std::borrow::Cow::Owned(record.id),
                        None => continue,
                    }
                }
            };
            let Some(expected) = self.wanted.get(id.as_ref()) else {
                continue;
            };
            let canonical = self
                .record_finder
                .find(line)
                .map(|at| &line[at + RECORD_KEY.len()..line.len() - 1])
                .ok_or_else(|| err(format!("record `{id}` has no `record` key")))?;
            if sha256(canonical) != *expected {
                return Err(err(format!(
                    "record `{id}` does not hash to the {expected} the snapshot's index holds for it"
                )));
            }
            self.out.extend_from_slice(line);
            self.out.push(b'\n');
            self.count += 1;
        }
        Ok(())
    }
}

/// What [`matching_lines_compressed`] could not do.
#[derive(Debug)]
pub enum MatchError {
    Inflate(String),
    Line(LineError),
}

/// The lines (each with its newline) of the records in `wanted` in a compressed chunk body, and
/// how many there are. Each of them must hash to the hash `wanted` gives its record (the
/// snapshot index's, itself checked), so what a restore writes is checked line by line and the
/// rest of the chunk need not be hashed. The body is decompressed a window at a time (a window
/// stays in the processor's cache while its lines are matched), by this thread's decompression
/// context into this thread's window, which the next chunk reuses: fresh memory costs a page
/// fault per 4 KiB. A body that inflates to `limit` bytes or more is refused.
pub fn matching_lines_compressed(
    stored: &[u8],
    limit: usize,
    object: &Arc<str>,
    wanted: &WantedLines,
) -> Result<(Vec<u8>, usize), MatchError> {
    thread_local! {
        static INFLATE: std::cell::RefCell<Option<(zstd::stream::raw::Decoder<'static>, Vec<u8>)>> = const { std::cell::RefCell::new(None) };
    }
    let inflate = |e: std::io::Error| MatchError::Inflate(format!("chunk does not inflate: {e}"));
    INFLATE.with(|state| {
        let mut state = state.borrow_mut();
        if state.is_none() {
            *state = Some((zstd::stream::raw::Decoder::new().map_err(inflate)?, vec![0; WINDOW]));
        }
        let (decoder, window) = state.as_mut().expect("set above");
        let result = inflate_matching(decoder, window, stored, limit, LineMatcher::new(object, wanted));
        // A window grown for a very long line is not kept for the next chunk.
        if window.len() > WINDOW {
            *window = vec![0; WINDOW];
        }
        result
    })
}

/// The decompression loop of [`matching_lines_compressed`], feeding `matcher` whole lines.
fn inflate_matching(
    decoder: &mut zstd::stream::raw::Decoder<'static>,
    window: &mut Vec<u8>,
    stored: &[u8],
    limit: usize,
    mut matcher: LineMatcher<'_>,
) -> Result<(Vec<u8>, usize), MatchError> {
    use zstd::stream::raw::{InBuffer, Operation, OutBuffer};
    let inflate = |e: std::io::Error| MatchError::Inflate(format!("chunk does not inflate: {e}"));
    decoder.reinit().map_err(inflate)?;
    let mut input = InBuffer::around(stored);
    let (mut filled, mut total) = (0, 0);
    loop {
        if filled == window.len() {
            // One line longer than the window.
            window.resize(window.len() * 2, 0);
        }
        let mut output = OutBuffer::around_pos(&mut window[..], filled);
        let left = decoder.run(&mut input, &mut output).map_err(inflate)?;
        let produced = output.pos() - filled;
        filled += produced;
        total += produced;
        if total >= limit {
            return Err(MatchError::Inflate(format!(
                "chunk inflates to {total} bytes or more, more than the {} expected",
                limit.saturating_sub(1)
            )));
        }
        if left == 0 && input.pos() == stored.len() {
            matcher.feed(&window[..filled]).map_err(MatchError::Line)?;
            return Ok((matcher.out, matcher.count));
        }
        if produced == 0 && input.pos() == stored.len() && filled < window.len() {
            return Err(MatchError::Inflate("chunk does not inflate: the body ends inside a frame".into()));
        }
        if left == 0 {
            // A frame ended and another follows.
            decoder.reinit().map_err(inflate)?;
        }
        if let Some(last) = memchr::memrchr(b'\n', &window[..filled]) {
            matcher.feed(&window[..last]).map_err(MatchError::Line)?;
            window.copy_within(last + 1..filled, 0);
            filled -= last + 1;
        }
    }
}

/// Decompressed bytes [`matching_lines_compressed`] holds at a time: small enough to stay in the
/// processor's cache while its lines are matched.
const WINDOW: usize = 256 * 1024;

#[derive(Deserialize)]
struct Line {
    deleted: bool,
    modified_at: Option<String>,
    record: CanonicalRecord,
}

#[derive(Deserialize)]
struct CanonicalRecord {
    fields: Fields,
    id: String,
    object: String,
}

/// Parses every line of a decompressed chunk back into records.
pub fn decode_lines(raw: &[u8], object: &Arc<str>) -> Result<Vec<Record>, LineError> {
    let mut out = Vec::new();
    for (index, line) in raw.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let err = |message: String| LineError { line: index + 1, message };
        let parsed: Line = serde_json::from_slice(line).map_err(|e| err(e.to_string()))?;
        if parsed.record.object != **object {
            return Err(err(format!("record of object `{}` in a chunk of `{object}`", parsed.record.object)));
        }
        out.push(Record {
            object: object.clone(),
            id: parsed.record.id,
            fields: parsed.record.fields,
            modified_at: parsed.modified_at.as_deref().and_then(parse_time),
            deleted: parsed.deleted,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(id: &str, deleted: bool) -> Record {
        let mut fields = Fields::new();
        fields.insert("id".into(), json!(id));
        fields.insert("note".into(), json!("has ,\"id\":\"fake\" inside"));
        Record {
            object: "contacts".into(),
            id: id.into(),
            fields,
            modified_at: parse_time("2026-11-01T10:00:00Z"),
            deleted,
        }
    }

    /// The fast line hasher agrees with hashing parsed records, even with tricky field text.
    #[test]
    fn fast_hash_equals_record_hash() {
        let records = [sample("1", false), sample("x\"y", true)];
        let mut raw = Vec::new();
        let mut expected = ObjectDigester::new();
        for r in &records {
            let h = encode_line(r, &mut raw);
            assert_eq!(h, r.hash());
            expected.push(&r.id, h);
        }
        let (mut got, deleted, errors) = hash_lines(&raw, "contacts");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(deleted, 1);
        assert_eq!(got.finish(), expected.finish());
        let decoded = decode_lines(&raw, &"contacts".into()).unwrap();
        assert_eq!(decoded, records);
    }

    /// A line of the wrong object or a truncated line is reported with its line number.
    #[test]
    fn bad_lines_are_reported() {
        let mut raw = Vec::new();
        encode_line(&sample("1", false), &mut raw);
        raw.extend_from_slice(b"{\"deleted\":false,\"rec\n");
        let (_, _, errors) = hash_lines(&raw, "contacts");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
        let (_, _, errors) = hash_lines(&raw[..raw.len() - 23], "deals");
        assert_eq!(errors[0].line, 1);
    }

    /// Wanted lines come out whole and in order (very long ones too), each checked against its
    /// index hash; damage, a wrong hash and oversized bodies are refused.
    #[test]
    fn matching_lines_are_picked_and_checked() {
        let mut raw = Vec::new();
        let mut records = Vec::new();
        let mut hashes = std::collections::HashMap::new();
        for i in 0..3000 {
            let mut r = sample(&format!("id-{i}"), i % 7 == 0);
            if i % 500 == 0 {
                r.fields.insert("note".into(), json!("x".repeat(300_000 + 17 * i)));
            }
            hashes.insert(r.id.clone(), encode_line(&r, &mut raw));
            records.push(r);
        }
        let wanted_hashes: std::collections::HashMap<String, Hash32> = (0..3000)
            .filter(|i| i % 250 == 0 || i % 7 == 3)
            .map(|i| format!("id-{i}"))
            .map(|id| (id.clone(), hashes[&id]))
            .collect();
        let wanted = WantedLines::new(wanted_hashes.clone());
        let stored = compress(&raw, 1).unwrap();
        let object: Arc<str> = "contacts".into();
        let (lines, count) = matching_lines_compressed(&stored, raw.len() + 1, &object, &wanted).unwrap();
        let mut expected = Vec::new();
        for r in records.iter().filter(|r| wanted_hashes.contains_key(&r.id)) {
            encode_line(r, &mut expected);
        }
        assert_eq!(count, wanted.len());
        assert!(lines == expected, "the wanted lines, in order");
        // The thread's buffer is reused for the next chunk, with the same result.
        assert_eq!(
            matching_lines_compressed(&stored, raw.len() + 1, &object, &wanted).unwrap(),
            (lines, count)
        );
        assert!(matches!(
            matching_lines_compressed(&stored, raw.len(), &object, &wanted),
            Err(MatchError::Inflate(_))
        ));
        let mut damaged = stored.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0xff;
        damaged.truncate(damaged.len() - 3);
        assert!(matching_lines_compressed(&damaged, raw.len() + 1, &object, &wanted).is_err());
        let mut bad = raw.clone();
        bad.extend_from_slice(b"{\"deleted\":false,\"rec\n");
        let stored_bad = compress(&bad, 1).unwrap();
        match matching_lines_compressed(&stored_bad, bad.len() + 1, &object, &wanted) {
            Err(MatchError::Line(e)) => assert_eq!(e.line, 3001),
            other => panic!("expected a line error, got {other:?}"),
        }
        // A wanted record whose line changed since the index was written is refused, by line.
        let mut wrong = wanted_hashes.clone();
        wrong.insert("id-3".into(), sha256(b"something else"));
        let wrong = WantedLines::new(wrong);
        match matching_lines_compressed(&stored, raw.len() + 1, &object, &wrong) {
            Err(MatchError::Line(e)) => {
                assert_eq!(e.line, 4);
                assert!(e.message.contains("`id-3` does not hash"), "{}", e.message);
            }
            other => panic!("expected a hash error, got {other:?}"),
        }
    }

    /// Integer ids are looked up through the bit set, and only canonical spellings match.
    #[test]
    fn wanted_integer_ids() {
        let h = sha256(b"x");
        let wanted = WantedLines::new([("5".to_string(), h), ("60000".to_string(), h)].into());
        assert!(wanted.integers.is_some());
        assert_eq!(wanted.get("5"), Some(&h));
        assert_eq!(wanted.get("60000"), Some(&h));
        for not in ["4", "6", "05", "59999", "60001", "x", "", "-5"] {
            assert_eq!(wanted.get(not), None, "{not}");
        }
        let mixed = WantedLines::new([("5".to_string(), h), ("a".to_string(), h)].into());
        assert!(mixed.integers.is_none());
        assert_eq!((mixed.get("a"), mixed.get("5"), mixed.get("6")), (Some(&h), Some(&h), None));
        let sparse = WantedLines::new([("1".to_string(), h), ("900000000000".to_string(), h)].into());
        assert!(sparse.integers.is_none());
        assert_eq!(sparse.get("900000000000"), Some(&h));
    }
}
