//! Rows as text, for the server SQL connectors (`postgres`, `mysql`): a column's value as the
//! server prints it becomes its canonical field value, and a field value becomes the text the
//! server reads back for that column type.
//!
//! Each column has a [`TextClass`] found from its type when the connector opens. Reading:
//! integers stay numbers, decimals become exact strings, booleans `true`/`false`, timestamps RFC
//! 3339 UTC (a time without zone is taken as UTC), JSON values and arrays their JSON, binary data
//! `{"$bytes": base64}` as everywhere else, and every other type the server's text. Writing
//! reverses each of these, so backup → restore → backup yields the same canonical bytes.

use base64::Engine as _;
use serde_json::Value;

use crate::record::{format_time, parse_time, write_json_str};

/// How a column's text maps to a field value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TextClass {
    Integer,
    Decimal,
    Real,
    Boolean,
    Timestamp,
    Json,
    /// A PostgreSQL array, read as JSON (`to_json`) and written as an array literal.
    Array,
    Binary,
    Text,
}

/// Appends the canonical JSON of one column value given as the server's text; `None` is SQL NULL.
pub fn write_value(class: TextClass, text: Option<&str>, out: &mut Vec<u8>) -> Result<(), String> {
    let Some(text) = text else {
        out.extend_from_slice(b"null");
        return Ok(());
    };
    match class {
        TextClass::Integer if canonical_integer(text) => out.extend_from_slice(text.as_bytes()),
        TextClass::Integer | TextClass::Decimal | TextClass::Text => write_json_str(out, text),
        TextClass::Real => match text.parse::<f64>() {
            Ok(f) => write_json(out, &super::values::from_real(super::values::ColumnClass::Real, f)),
            Err(_) => write_json_str(out, text),
        },
        TextClass::Boolean => out.extend_from_slice(match text {
            "t" | "true" | "1" => b"true",
            "f" | "false" | "0" => b"false",
            _ => return Err(format!("`{text}` is not a boolean")),
        }),
        TextClass::Timestamp => write_time(out, text),
        TextClass::Json | TextClass::Array => {
            let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
            write_json(out, &value);
        }
        TextClass::Binary => {
            let bytes = match text.strip_prefix("\\x") {
                Some(hex) => const_hex::decode(hex).map_err(|_| "bad bytea hex".to_string())?,
                None => text.as_bytes().to_vec(),
            };
            write_json(out, &super::values::from_bytes(&bytes));
        }
    }
    Ok(())
}

/// An integer written as JSON writes it: no sign but `-`, no leading zeros, within i64.
fn canonical_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    text.parse::<i64>().is_ok() && !digits.starts_with('+') && (digits == "0" || !digits.starts_with('0')) && text != "-0"
}

fn write_json(out: &mut Vec<u8>, value: &Value) {
    serde_json::to_writer(&mut *out, value).expect("in-memory JSON write");
}

/// A timestamp as RFC 3339 UTC: `YYYY-MM-DD HH:MM:SS[+00]` without a fraction is rewritten
/// directly; anything else goes through [`parse_time`] (values it cannot read, like `infinity`,
/// stay as they are).
fn write_time(out: &mut Vec<u8>, text: &str) {
    let b = text.as_bytes();
    let plain = (b.len() == 19 || (b.len() == 22 && text.ends_with("+00")))
        && b[10] == b' '
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => true,
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        });
    if plain {
        out.push(b'"');
        out.extend_from_slice(&b[..10]);
        out.push(b'T');
        out.extend_from_slice(&b[11..19]);
        out.extend_from_slice(b"Z\"");
        return;
    }
    match parse_time(text) {
        Some(t) => write_json_str(out, &format_time(&t)),
        None => write_json_str(out, text),
    }
}

/// The text the server reads back for a field value in a column of `class`; `None` for NULL.
pub fn value_text(class: TextClass, value: &Value) -> Result<Option<String>, String> {
    Ok(Some(match (class, value) {
        (_, Value::Null) => return Ok(None),
        (TextClass::Json, v) => v.to_string(),
        (TextClass::Array, Value::Array(items)) => array_literal(items),
        (_, Value::Bool(b)) => if *b { "t" } else { "f" }.to_string(),
        (_, Value::Number(n)) => n.to_string(),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Object(map)) if map.len() == 1 && map.contains_key("$bytes") => {
            let text = map["$bytes"].as_str().ok_or("`$bytes` must be a base64 string")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("bad base64: {e}"))?;
            format!("\\x{}", const_hex::encode(bytes))
        }
        (_, other) => other.to_string(),
    }))
}

/// A PostgreSQL array literal (`{1,"a b",NULL,{2,3}}`) of JSON items: every string quoted.
fn array_literal(items: &[Value]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => out.push_str("NULL"),
            Value::Array(inner) => out.push_str(&array_literal(inner)),
            Value::String(s) => quote_element(&mut out, s),
            Value::Bool(b) => out.push_str(if *b { "t" } else { "f" }),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::Object(_) => quote_element(&mut out, &item.to_string()),
        }
    }
    out.push('}');
    out
}

fn quote_element(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Appends a value to a row of PostgreSQL's `COPY` text format (`\N` for NULL; backslash,
/// newline, carriage return and tab escaped).
pub fn copy_field(out: &mut Vec<u8>, text: Option<&str>) {
    let Some(text) = text else {
        out.extend_from_slice(b"\\N");
        return;
    };
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
}

/// Splits one line of `COPY` text output (without its newline) into fields, undoing the escapes;
/// `None` is NULL. The line is checked as UTF-8 once; one scan finds the tabs and backslashes
/// (a tab in the data is always escaped, so every raw tab ends a field).
pub fn copy_fields<'a>(line: &'a [u8], fields: &mut Vec<Option<std::borrow::Cow<'a, str>>>) -> Result<(), String> {
    use std::borrow::Cow;
    fields.clear();
    let text = std::str::from_utf8(line).map_err(|_| "text that is not UTF-8".to_string())?;
    let mut field = |start: usize, end: usize, escaped: bool| -> Result<(), String> {
        let raw = &text[start..end];
        fields.push(match (raw, escaped) {
            ("\\N", _) => None,
            (_, true) => Some(Cow::Owned(unescape(raw.as_bytes())?)),
            (_, false) => Some(Cow::Borrowed(raw)),
        });
        Ok(())
    };
    let (mut start, mut escaped) = (0, false);
    for at in memchr::memchr2_iter(b'\t', b'\\', line) {
        if line[at] == b'\\' {
            escaped = true;
            continue;
        }
        field(start, at, escaped)?;
        (start, escaped) = (at + 1, false);
    }
    field(start, line.len(), escaped)
}

fn unescape(raw: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&next) = raw.get(i) else {
            return Err("a field ends in a backslash".into());
        };
        i += 1;
        match next {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(next - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|_| "text that is not UTF-8".to_string())
}

/// The table privileges a step that needs `need` (`read`, `write`) takes on every mapped table,
/// for the server connectors' preflight; none for other needs.
pub fn table_privileges(need: &str) -> &'static [&'static str] {
    match need {
        "read" => &["SELECT"],
        "write" => &["SELECT", "INSERT", "UPDATE", "DELETE"],
        _ => &[],
    }
}

/// The write probes of the server connectors: an insert, an update and a delete of `table`
/// (columns and id already quoted) that match no row, so they change nothing but are still
/// refused by a read-only server or a missing privilege.
pub fn write_probes(table: &str, columns: &[String], id: &str) -> [String; 3] {
    [
        format!("INSERT INTO {table} ({0}) SELECT {0} FROM {table} WHERE 1 = 0", columns.join(", ")),
        format!("UPDATE {table} SET {id} = {id} WHERE 1 = 0"),
        format!("DELETE FROM {table} WHERE 1 = 0"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(class: TextClass, text: Option<&str>) -> Value {
        let mut out = Vec::new();
        write_value(class, text, &mut out).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    /// Server text becomes canonical values, and those values print back to text the server
    /// reads as the same value.
    #[test]
    fn values_round_trip_through_text() {
        let cases = [
            (TextClass::Integer, "-42", json!(-42)),
            (TextClass::Integer, "99999999999999999999", json!("99999999999999999999")),
            (TextClass::Integer, "9223372036854775807", json!(9223372036854775807i64)),
            (TextClass::Decimal, "10.50", json!("10.50")),
            (TextClass::Real, "0.1", json!(0.1)),
            (TextClass::Real, "NaN", json!("NaN")),
            (TextClass::Boolean, "t", json!(true)),
            (TextClass::Timestamp, "2024-02-14 19:04:04+00", json!("2024-02-14T19:04:04Z")),
            (TextClass::Timestamp, "2024-02-14 19:04:04", json!("2024-02-14T19:04:04Z")),
            (TextClass::Timestamp, "2024-02-14 19:04:04.5+00", json!("2024-02-14T19:04:04.500Z")),
            (TextClass::Timestamp, "infinity", json!("infinity")),
            (TextClass::Json, "{\"b\": 1, \"a\": [null]}", json!({"a": [null], "b": 1})),
            (TextClass::Array, "[1,2]", json!([1, 2])),
            (TextClass::Binary, "\\x00ff", json!({"$bytes": "AP8="})),
            (TextClass::Text, "tab\there", json!("tab\there")),
        ];
        for (class, text, expected) in cases {
            let value = read(class, Some(text));
            assert_eq!(value, expected, "{text}");
            if class == TextClass::Array {
                // Read as JSON, written as a literal (see `arrays_become_literals`).
                continue;
            }
            let back = value_text(class, &value).unwrap().unwrap();
            assert_eq!(read(class, Some(&back)), expected, "{text} → {back}");
        }
        assert_eq!(read(TextClass::Text, None), Value::Null);
        assert_eq!(value_text(TextClass::Text, &Value::Null).unwrap(), None);
        assert!(write_value(TextClass::Boolean, Some("maybe"), &mut Vec::new()).is_err());
    }

    /// Arrays become literals with every string quoted, nested arrays and NULLs included.
    #[test]
    fn arrays_become_literals() {
        let items = json!(["a b", "q\"\\", null, ["x"], 3]);
        assert_eq!(
            value_text(TextClass::Array, &items).unwrap().unwrap(),
            r#"{"a b","q\"\\",NULL,{"x"},3}"#
        );
    }

    /// COPY text escapes survive a write and a read, NULL included.
    #[test]
    fn copy_text_round_trips() {
        let values = [Some("a\tb\\c\nd\re"), None, Some(""), Some("\\N")];
        let mut line = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                line.push(b'\t');
            }
            copy_field(&mut line, *v);
        }
        let mut fields = Vec::new();
        copy_fields(&line, &mut fields).unwrap();
        let got: Vec<Option<&str>> = fields.iter().map(|f| f.as_deref()).collect();
        assert_eq!(got, values);
        copy_fields(b"\\101\\x", &mut fields).unwrap();
        assert_eq!(fields[0].as_deref(), Some("Ax"));
        assert!(copy_fields(b"ab\\", &mut fields).is_err());
    }
}
