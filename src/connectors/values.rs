//! Normalising native values into record fields (and back), shared by the SQL connectors.
//!
//! Timestamps become RFC 3339 UTC strings, decimals strings, booleans `true`/`false`, binary data
//! `{"$bytes": "<base64>"}`, so that backup → restore → backup yields identical canonical bytes.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::record::{format_time, parse_time};

/// What a column's declared type says about its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnClass {
    Integer,
    Real,
    Decimal,
    Boolean,
    Timestamp,
    Text,
    Binary,
    Any,
}

/// Classifies a SQL declared type (SQLite affinity rules, plus the names CRMs use).
pub fn classify(declared: &str) -> ColumnClass {
    let t = declared.to_ascii_uppercase();
    if t.contains("BOOL") {
        ColumnClass::Boolean
    } else if t.contains("DATETIME") || t.contains("TIMESTAMP") {
        ColumnClass::Timestamp
    } else if t.contains("INT") {
        ColumnClass::Integer
    } else if t.contains("DEC") || t.contains("NUMERIC") || t.contains("MONEY") {
        ColumnClass::Decimal
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") || t.contains("DATE") || t.contains("TIME") {
        ColumnClass::Text
    } else if t.contains("BLOB") || t.contains("BINARY") || t.contains("BYTEA") {
        ColumnClass::Binary
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        ColumnClass::Real
    } else {
        ColumnClass::Any
    }
}

/// Shortest text that round-trips a float.
pub fn float_text(f: f64) -> String {
    format!("{f}")
}

pub fn from_integer(class: ColumnClass, v: i64) -> Value {
    match class {
        ColumnClass::Boolean => Value::Bool(v != 0),
        ColumnClass::Decimal => Value::String(v.to_string()),
        _ => Value::from(v),
    }
}

pub fn from_real(class: ColumnClass, f: f64) -> Value {
    match class {
        ColumnClass::Decimal => Value::String(float_text(f)),
        _ if !f.is_finite() => Value::String(float_text(f)),
        _ => serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null),
    }
}

pub fn from_text(class: ColumnClass, s: String) -> Value {
    match class {
        ColumnClass::Timestamp => match parse_time(&s) {
            Some(t) => Value::String(format_time(&t)),
            None => Value::String(s),
        },
        _ => Value::String(s),
    }
}

pub fn from_bytes(bytes: &[u8]) -> Value {
    json!({ "$bytes": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

/// A field value as SQL writes it.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Converts a field value back for a column of `class`.
pub fn to_sql(class: ColumnClass, value: &Value) -> Result<SqlValue, String> {
    Ok(match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().ok_or("number out of range")?),
        },
        Value::String(s) => match class {
            ColumnClass::Integer => s.parse().map(SqlValue::Integer).unwrap_or_else(|_| SqlValue::Text(s.clone())),
            _ => SqlValue::Text(s.clone()),
        },
        Value::Object(map) if map.len() == 1 && map.contains_key("$bytes") => {
            let text = map["$bytes"].as_str().ok_or("`$bytes` must be a base64 string")?;
            SqlValue::Blob(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| format!("bad base64: {e}"))?,
            )
        }
        other => SqlValue::Text(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Declared types map to the classes that decide normalisation.
    #[test]
    fn classifies_declared_types() {
        assert_eq!(classify("INTEGER"), ColumnClass::Integer);
        assert_eq!(classify("decimal(12,2)"), ColumnClass::Decimal);
        assert_eq!(classify("DATETIME"), ColumnClass::Timestamp);
        assert_eq!(classify("varchar(255)"), ColumnClass::Text);
        assert_eq!(classify("BOOLEAN"), ColumnClass::Boolean);
        assert_eq!(classify(""), ColumnClass::Any);
    }

    /// Normalised values convert back to what SQL stores, bytes included.
    #[test]
    fn values_round_trip() {
        assert_eq!(from_real(ColumnClass::Decimal, 1234.5), json!("1234.5"));
        assert_eq!(from_integer(ColumnClass::Boolean, 1), json!(true));
        assert_eq!(
            from_text(ColumnClass::Timestamp, "2026-01-02 03:04:05".into()),
            json!("2026-01-02T03:04:05Z")
        );
        let bytes = from_bytes(&[0, 159, 255]);
        assert_eq!(to_sql(ColumnClass::Binary, &bytes).unwrap(), SqlValue::Blob(vec![0, 159, 255]));
        assert_eq!(to_sql(ColumnClass::Integer, &json!("42")).unwrap(), SqlValue::Integer(42));
        assert_eq!(to_sql(ColumnClass::Boolean, &json!(false)).unwrap(), SqlValue::Integer(0));
    }
}
