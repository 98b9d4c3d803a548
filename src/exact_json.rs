//! JSON numbers kept exact without serde_json's `arbitrary_precision` (which would change every
//! `Value` in the tool): [`parse`] reads a body whose numbers an `f64` (or `i64`/`u64`) cannot
//! hold exactly — Salesforce's 18-digit Number and Currency fields — as strings of the text sent,
//! and [`write`] sends such strings back as JSON numbers for the keys a caller names.
//!
//! Numbers of 15 significant digits or fewer always survive an `f64`, so [`parse`] first scans the
//! bytes for a longer number token and, finding none (the usual case), parses as serde_json does.
//! Otherwise each value is read as a [`RawValue`] first, so its text is at hand; a number an
//! `f64` holds exactly (`100.50` is `100.5`) stays a number, so what the tool reads for every
//! other value is what it always read.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// `bytes` as JSON, numbers an `f64` cannot hold exactly as strings of their text.
pub fn parse(bytes: &[u8]) -> serde_json::Result<Value> {
    if !has_long_number(bytes) {
        return serde_json::from_slice(bytes);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Exact.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// `value` as JSON text, where a string under a key `number(key)` names that is a JSON number
/// (`"1234567890123456.78"`) is written as that number.
pub fn write(value: &Value, number: &dyn Fn(&str) -> bool) -> String {
    let mut out = String::new();
    put(&mut out, value, number);
    out
}

/// A number's value as a record keeps it: a JSON number when `text` (a JSON number token) is
/// held exactly by one, else the text itself.
pub fn number(text: &str) -> Option<Value> {
    let n: Number = text.parse().ok()?;
    Some(if same_decimal(text, &n.to_string()) {
        Value::Number(n)
    } else {
        Value::String(text.to_string())
    })
}

fn put(out: &mut String, value: &Value, number: &dyn Fn(&str) -> bool) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                put(out, item, number);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                match item {
                    Value::String(s) if number(key) && decimal(s).is_some() => out.push_str(s),
                    _ => put(out, item, number),
                }
            }
            out.push('}');
        }
        // A leaf's Display is its JSON text.
        leaf => out.push_str(&leaf.to_string()),
    }
}

/// Whether any number token outside strings has more than 15 digits.
fn has_long_number(bytes: &[u8]) -> bool {
    let (mut in_string, mut escaped, mut digits, mut in_number) = (false, false, 0, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => (in_string, in_number, digits) = (true, false, 0),
            b'0'..=b'9' => {
                in_number = true;
                digits += 1;
                if digits > 15 {
                    return true;
                }
            }
            b'.' | b'-' | b'+' if in_number || b == b'-' => in_number = true,
            // An exponent's digits count too: conservative, never wrong.
            b'e' | b'E' if in_number => {}
            _ => (in_number, digits) = (false, 0),
        }
    }
    false
}

/// A JSON number token as (negative, significant digits without leading or trailing zeros,
/// exponent of the last digit); `None` if `text` is not one.
fn decimal(text: &str) -> Option<(bool, String, i64)> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].trim_start_matches('+').parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digit = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let leading_zero = whole.len() > 1 && whole.starts_with('0');
    if whole.is_empty() || leading_zero || !digit(whole) || !digit(fraction) || (mantissa.contains('.') && fraction.is_empty()) {
        return None;
    }
    let all = format!("{whole}{fraction}");
    let significant = all.trim_start_matches('0');
    let trimmed = significant.trim_end_matches('0');
    let exponent = exponent - fraction.len() as i64 + (significant.len() - trimmed.len()) as i64;
    Some((
        negative && !trimmed.is_empty(),
        trimmed.to_string(),
        if trimmed.is_empty() { 0 } else { exponent },
    ))
}

/// Whether two number tokens are the same decimal number.
fn same_decimal(a: &str, b: &str) -> bool {
    matches!((decimal(a), decimal(b)), (Some(x), Some(y)) if x == y)
}

/// Reads any JSON value, each member and element through its [`RawValue`] first.
struct Exact;

impl Exact {
    fn raw(raw: &RawValue) -> Result<Value, serde_json::Error> {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'{' | b'[') => {
                let mut de = serde_json::Deserializer::from_str(text);
                Exact.deserialize(&mut de)
            }
            Some(b'-' | b'0'..=b'9') => number(text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not a number"))),
            _ => serde_json::from_str(text),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Exact {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ExactVisitor)
    }
}

struct ExactVisitor;

impl<'de> Visitor<'de> for ExactVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let raw: &RawValue = access.next_value()?;
            map.insert(key, Exact::raw(raw).map_err(serde::de::Error::custom)?);
        }
        Ok(Value::Object(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(raw) = access.next_element::<&RawValue>()? {
            items.push(Exact::raw(raw).map_err(serde::de::Error::custom)?);
        }
        Ok(Value::Array(items))
    }

    // A body that is a single value (not an object or array) has no member to read raw.
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Numbers an f64 holds read as before; longer ones keep their text; nothing else changes.
    #[test]
    fn long_numbers_keep_their_text() {
        let body = br#"{"done": true, "records": [{"attributes": {"type": "Account"}, "Id": "001",
            "AnnualRevenue": 1234567890123456.78, "N": 100.50, "Big": 123456789012345678, "E": 1.5E7,
            "Neg": -98765432109876543.21, "Name": "say \"12345678901234567\"", "Ok": true, "No": null}]}"#;
        let v = parse(body).unwrap();
        let r = &v["records"][0];
        assert_eq!(r["AnnualRevenue"], json!("1234567890123456.78"));
        assert_eq!(r["Neg"], json!("-98765432109876543.21"));
        assert_eq!(r["N"], json!(100.5));
        assert_eq!(r["Big"], json!(123456789012345678u64));
        assert_eq!(r["E"], json!(15000000.0));
        assert_eq!(r["Name"], json!("say \"12345678901234567\""));
        assert_eq!(
            (&r["Ok"], &r["No"], &r["attributes"]["type"]),
            (&json!(true), &Value::Null, &json!("Account"))
        );
        assert!(parse(br#"{"a": 1"#).is_err() && parse(b"[1] x").is_err());
        let short = br#"{"a": [1.25, -3, "123456789012345678"]}"#;
        assert!(!has_long_number(short));
        assert_eq!(parse(short).unwrap(), json!({"a": [1.25, -3, "123456789012345678"]}));
    }

    /// Strings under number keys go out as numbers; other strings stay strings.
    #[test]
    fn numbers_go_out_exact() {
        let v = json!({"records": [{"Amount": "1234567890123456.78", "Name": "1234567890123456.78", "Bad": "n/a"}]});
        let text = write(&v, &|k| k == "Amount" || k == "Bad");
        assert_eq!(
            text,
            r#"{"records":[{"Amount":1234567890123456.78,"Bad":"n/a","Name":"1234567890123456.78"}]}"#
        );
        assert_eq!(
            parse(text.as_bytes()).unwrap()["records"][0]["Amount"],
            json!("1234567890123456.78")
        );
        assert_eq!(number("7"), Some(json!(7)));
        assert_eq!(number("0.10"), Some(json!(0.1)));
        assert_eq!(number("x"), None);
        assert_eq!(write(&json!({"A": "007"}), &|_| true), r#"{"A":"007"}"#, "not a JSON number");
        assert!(same_decimal("1.5E7", "15000000.0") && !same_decimal("1.5", "1.25"));
    }
}
