//! Chunk lines straight from SQLite's rows: the `sqlite` connector reads each row's typed column
//! values through SQLite's own API, and this writes the row's canonical bytes and chunk line
//! from them without building a [`Record`](crate::record::Record).
//!
//! The normalisation is the record path's ([`super::sqlite`]'s `decode_row` and
//! [`super::values`]), which reads rows as `json_array` text through sqlx: a different way in,
//! so the tests that hold both paths byte-equal on every kind of value check one against the
//! other.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::EncodedPage;
use super::sqlite::TableMap;
use super::values::{self, ColumnClass};
use crate::digest::sha256;
use crate::record::{format_time, parse_time, plain_ascii, write_json_str};

/// Writes the chunk lines of one table's rows, from column values each written by the caller.
pub struct RowEncoder {
    /// Column names in table order.
    names: Vec<String>,
    /// Column indexes in field-name order, each with its encoded `"name":` key.
    sorted: Vec<(usize, Vec<u8>)>,
    id: usize,
    modified: Option<usize>,
    /// `,"object":"<object>"}`: what follows the id in the canonical bytes.
    tail: Vec<u8>,
    canonical: Vec<u8>,
    /// The current row's id, reused from row to row.
    id_text: String,
    /// Write each row's chunk line; without, pages carry only ids and hashes.
    lines: bool,
    /// The columns of the `sqlite` connector's table, for [`Self::encode_typed`].
    columns: Vec<super::sqlite::Column>,
}

impl RowEncoder {
    /// `None` when the id column is not among the table's columns.
    pub fn new(map: Arc<TableMap>) -> Option<RowEncoder> {
        let names: Vec<String> = map.columns.iter().map(|c| c.name.clone()).collect();
        let mut encoder = RowEncoder::for_columns(&map.object, names, &map.id, map.modified.as_deref())?;
        encoder.columns = map.columns.clone();
        Some(encoder)
    }

    /// An encoder for rows of `object` with columns `names` (in the order values come), keyed by
    /// the column `id`; `None` when `id` is not among them.
    pub fn for_columns(object: &str, names: Vec<String>, id: &str, modified: Option<&str>) -> Option<RowEncoder> {
        let position = |name: &str| names.iter().position(|c| c == name);
        let id = position(id)?;
        let modified = modified.and_then(position);
        let mut sorted: Vec<(usize, Vec<u8>)> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let mut key = Vec::new();
                write_json_str(&mut key, name);
                key.push(b':');
                (i, key)
            })
            .collect();
        sorted.sort_by(|a, b| names[a.0].cmp(&names[b.0]));
        let mut tail = b",\"object\":".to_vec();
        write_json_str(&mut tail, object);
        tail.push(b'}');
        Some(RowEncoder {
            names,
            sorted,
            id,
            modified,
            tail,
            canonical: Vec::with_capacity(512),
            id_text: String::new(),
            lines: true,
            columns: Vec::new(),
        })
    }

    /// Pages without chunk lines or modified times, for comparisons that need only hashes.
    pub fn hashes_only(mut self) -> RowEncoder {
        self.lines = false;
        self
    }

    /// Appends the chunk line of one row read typed by SQLite's own API (`row` holds the
    /// table's columns in order, from `first`) to `page`. No REAL or BLOB needs a detour here.
    pub fn encode_typed(&mut self, row: &rusqlite::Row<'_>, first: usize, page: &mut EncodedPage) -> Result<(), String> {
        let columns = std::mem::take(&mut self.columns);
        let done = self.encode_with(page, false, |index, out| {
            let value = row.get_ref(first + index).map_err(|e| e.to_string())?;
            write_typed(&columns[index], value, out)
        });
        self.columns = columns;
        done
    }

    /// Writes the canonical bytes, hash and chunk line of one row whose column values `write`
    /// appends (it gets each column's index, in field-name order). `deleted` marks a record the
    /// CRM holds as deleted (a soft delete).
    pub fn encode_with(
        &mut self,
        page: &mut EncodedPage,
        deleted: bool,
        mut write: impl FnMut(usize, &mut Vec<u8>) -> Result<(), String>,
    ) -> Result<(), String> {
        let out = &mut self.canonical;
        out.clear();
        out.extend_from_slice(b"{\"fields\":{");
        let (mut id_range, mut modified) = ((0, 0), None);
        for (n, (index, key)) in self.sorted.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            let value_start = out.len();
            write(*index, out)?;
            if *index == self.id {
                id_range = (value_start, out.len());
            }
            if Some(*index) == self.modified {
                modified = Some((value_start, out.len()));
            }
        }
        out.extend_from_slice(b"},\"id\":");
        let id = &mut self.id_text;
        if !id_text(&out[id_range.0..id_range.1], id) {
            return Err(format!("id column `{}` is empty", self.names[self.id]));
        }
        write_json_str(out, id);
        out.extend_from_slice(&self.tail);
        let hash = sha256(out);
        if !self.lines {
            page.push_row(id, hash, None, deleted);
            return Ok(());
        }
        let time = modified.and_then(|(s, e)| time_of(&out[s..e]).map(|(t, canonical)| (t, canonical.then_some((s, e)))));
        let lines = &mut page.lines;
        lines.extend_from_slice(if deleted {
            b"{\"deleted\":true,\"modified_at\":"
        } else {
            b"{\"deleted\":false,\"modified_at\":"
        });
        match &time {
            // The field already holds the time as `format_time` writes it (and JSON-quoted).
            Some((_, Some((s, e)))) => lines.extend_from_slice(&out[*s..*e]),
            Some((t, None)) => write_json_str(lines, &format_time(t)),
            None => lines.extend_from_slice(b"null"),
        }
        let modified_at = time.map(|(t, _)| t);
        lines.extend_from_slice(b",\"record\":");
        lines.extend_from_slice(out);
        lines.extend_from_slice(b"}\n");
        page.push_row(id, hash, modified_at, deleted);
        Ok(())
    }
}

/// Appends the canonical form of one typed column value, as the record path normalises it
/// ([`super::values`]).
fn write_typed(column: &super::sqlite::Column, value: rusqlite::types::ValueRef<'_>, out: &mut Vec<u8>) -> Result<(), String> {
    use rusqlite::types::ValueRef;
    let write = |v: &Value, out: &mut Vec<u8>| serde_json::to_writer(&mut *out, v).expect("in-memory JSON write");
    match value {
        ValueRef::Null => out.extend_from_slice(b"null"),
        ValueRef::Integer(v) => match column.class {
            ColumnClass::Boolean => out.extend_from_slice(if v != 0 { b"true" } else { b"false" }),
            ColumnClass::Decimal => {
                out.push(b'"');
                push_integer(out, v);
                out.push(b'"');
            }
            _ => push_integer(out, v),
        },
        ValueRef::Real(f) => write(&values::from_real(column.class, f), out),
        // Most CRM text is plain ASCII: one pass shows it needs neither escapes nor a UTF-8 check.
        ValueRef::Text(bytes) if column.class != ColumnClass::Timestamp && plain_ascii(bytes) => {
            out.reserve(bytes.len() + 2);
            out.push(b'"');
            out.extend_from_slice(bytes);
            out.push(b'"');
        }
        // A timestamp already in canonical form (the usual case) is copied as it is.
        ValueRef::Text(bytes) if column.class == ColumnClass::Timestamp && canonical_time_bytes(bytes) => {
            out.reserve(bytes.len() + 2);
            out.push(b'"');
            out.extend_from_slice(bytes);
            out.push(b'"');
        }
        ValueRef::Text(bytes) => {
            // simdutf8 checks mostly-ASCII text several times faster than `std::str::from_utf8`.
            let text = simdutf8::basic::from_utf8(bytes).map_err(|_| format!("column `{}` holds text that is not UTF-8", column.name))?;
            if column.class == ColumnClass::Timestamp && fast_time(text).is_none() {
                match parse_time(text) {
                    Some(t) => write_json_str(out, &format_time(&t)),
                    None => write_json_str(out, text),
                }
            } else {
                write_json_str(out, text);
            }
        }
        ValueRef::Blob(bytes) => write(&values::from_bytes(bytes), out),
    }
    Ok(())
}

/// Appends `v` in decimal, as `Display` writes it, without the formatting machinery.
fn push_integer(out: &mut Vec<u8>, v: i64) {
    let mut digits = [0u8; 20];
    let (mut n, mut at) = (v.unsigned_abs(), digits.len());
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// The end of the JSON value starting at `at` (exclusive), or `None` when it is truncated.
pub(crate) fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = at;
    loop {
        match *bytes.get(i)? {
            b'"' => {
                i += 1;
                loop {
                    match *bytes.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                i += 1;
            }
            b',' if depth > 0 => i += 1,
            b',' | b']' | b'}' => return (i > at).then_some(i),
            _ => i += 1,
        }
        if depth == 0 && i > at && matches!(bytes.get(i), Some(b',' | b']' | b'}') | None) {
            return Some(i);
        }
    }
}

/// The record id from the canonical bytes of the id field, as `Record::from_fields` takes it.
/// Puts the id that the canonical bytes `value` of the id field spell into `into` (cleared
/// first); false when it is null, an object or an array.
fn id_text(value: &[u8], into: &mut String) -> bool {
    into.clear();
    let text = match value.first() {
        None | Some(b'n' | b'{' | b'[') => return false,
        // A string without escapes is its own text between the quotes.
        Some(b'"') if !value.contains(&b'\\') => std::str::from_utf8(&value[1..value.len() - 1]).ok(),
        Some(b'"') => match serde_json::from_slice::<String>(value) {
            Ok(s) => {
                *into = s;
                return true;
            }
            Err(_) => return false,
        },
        // A number: ASCII, so it is its own text.
        Some(_) if value.is_ascii() => {
            into.extend(value.iter().map(|&b| char::from(b)));
            return true;
        }
        Some(_) => std::str::from_utf8(value).ok(),
    };
    match text {
        Some(t) => {
            into.push_str(t);
            true
        }
        None => false,
    }
}

/// The time a JSON string value holds, and whether the value is already that time's canonical
/// form (`format_time`'s, quoted), so it can be copied as it is.
fn time_of(value: &[u8]) -> Option<(DateTime<Utc>, bool)> {
    if value.first() != Some(&b'"') {
        return None;
    }
    let content = std::str::from_utf8(&value[1..value.len() - 1]).ok()?;
    if content.contains('\\') {
        return parse_time(&serde_json::from_slice::<String>(value).ok()?).map(|t| (t, false));
    }
    match fast_time(content) {
        Some(t) => Some((t, true)),
        None => parse_time(content).map(|t| (t, false)),
    }
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SSZ`, the form `format_time` writes for whole seconds, so
/// that `format_time(fast_time(s)) == s`.
fn fast_time(s: &str) -> Option<DateTime<Utc>> {
    fast_time_bytes(s.as_bytes())
}

/// [`fast_time`] of bytes: only ASCII digits and separators pass, so bytes that pass are the
/// time's canonical text.
fn fast_time_bytes(b: &[u8]) -> Option<DateTime<Utc>> {
    let [year, month, day, hour, minute, second] = time_fields(b)?;
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    Some(date.and_hms_opt(hour, minute, second)?.and_utc())
}

/// Year, month, day, hour, minute and second of exactly `YYYY-MM-DDTHH:MM:SSZ` (ASCII digits
/// and these separators), not checked against the calendar.
fn time_fields(b: &[u8]) -> Option<[u32; 6]> {
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range]
            .iter()
            .try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    Some([num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?])
}

/// Whether [`fast_time_bytes`] takes `b`, without building the time: the scans check every
/// row's timestamps, and chrono's calendar checks cost more than the rest of the check.
fn canonical_time_bytes(b: &[u8]) -> bool {
    let Some([year, month, day, hour, minute, second]) = time_fields(b) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day) && hour < 24 && minute < 60 && second < 60
}

#[cfg(test)]
mod tests {
    /// The calendar check without chrono agrees with chrono's, day by day across leap rules
    /// and at every field's limits.
    #[test]
    fn canonical_time_check_agrees_with_chrono() {
        let mut cases = Vec::new();
        for year in [0, 1, 1900, 1999, 2000, 2023, 2024, 2100, 2400, 9999] {
            for month in 0..=13 {
                for day in 0..=32 {
                    cases.push(format!("{year:04}-{month:02}-{day:02}T12:30:45Z"));
                }
            }
        }
        for (h, m, sec) in [(23, 59, 59), (24, 0, 0), (0, 60, 0), (0, 0, 60), (0, 0, 0)] {
            cases.push(format!("2024-02-29T{h:02}:{m:02}:{sec:02}Z"));
        }
        cases.extend(
            [
                "2024-02-29 12:30:45Z",
                "2024-02-29T12:30:45",
                "2024-02-2xT12:30:45Z",
                "+024-02-29T12:30:45Z",
            ]
            .map(String::from),
        );
        for case in &cases {
            assert_eq!(
                super::canonical_time_bytes(case.as_bytes()),
                super::fast_time_bytes(case.as_bytes()).is_some(),
                "{case}"
            );
        }
    }

    /// Integers come out as `Display` writes them, at both ends of the range.
    #[test]
    fn integers_are_written_as_display_writes_them() {
        for v in [0, 7, -7, 10, 496_001, -1_000_000, i64::MAX, i64::MIN, i64::MIN + 1] {
            let mut out = Vec::new();
            super::push_integer(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
    }

    use super::*;

    #[test]
    fn fast_time_agrees_with_format_time() {
        for s in [
            "2024-02-29T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "2025-06-01T12:00:00Z",
        ] {
            let t = fast_time(s).unwrap();
            assert_eq!(format_time(&t), s);
            assert_eq!(Some(t), parse_time(s));
        }
        for s in [
            "2023-02-29T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00.5Z",
        ] {
            assert_eq!(fast_time(s), None, "{s}");
        }
    }

    #[test]
    fn skip_value_finds_ends() {
        let row = br#"[1,"a\"b,c",{"$s":[1,2,0]},null,-3,[1,[2,3]],"x"]"#;
        let mut at = 1;
        let mut values = Vec::new();
        loop {
            let end = skip_value(row, at).unwrap();
            values.push(std::str::from_utf8(&row[at..end]).unwrap());
            if row[end] == b']' {
                break;
            }
            at = end + 1;
        }
        assert_eq!(
            values,
            vec!["1", r#""a\"b,c""#, r#"{"$s":[1,2,0]}"#, "null", "-3", "[1,[2,3]]", r#""x""#]
        );
        assert_eq!(skip_value(br#"["abc"#, 1), None);
    }
}
