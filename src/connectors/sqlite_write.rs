//! Rows for the `sqlite` connector's upserts, from records or straight from the store's chunk
//! lines, and the single-row statement that writes them (see [`super::sqlite_native`]).
//!
//! A line is read without building a record: field values that SQL takes as they are (null,
//! booleans, integers, strings without escapes) are borrowed from the line; anything else goes
//! through [`values::to_sql`], as a record's fields do. A test holds both ways equal.

use std::borrow::Cow;

use rusqlite::types::{ToSqlOutput, ValueRef};
use serde_json::Value;

use super::sqlite::{TableMap, quote};
use super::sqlite_encode::skip_value;
use super::values::{self, ColumnClass, SqlValue};
use crate::record::Record;

/// A value to bind, borrowed from the line or record it comes from where it can be.
#[derive(Clone, Debug, PartialEq)]
pub enum BindValue<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(Cow<'a, str>),
    Blob(Cow<'a, [u8]>),
}

impl From<SqlValue> for BindValue<'static> {
    fn from(value: SqlValue) -> Self {
        match value {
            SqlValue::Null => BindValue::Null,
            SqlValue::Integer(i) => BindValue::Integer(i),
            SqlValue::Real(f) => BindValue::Real(f),
            SqlValue::Text(s) => BindValue::Text(Cow::Owned(s)),
            SqlValue::Blob(b) => BindValue::Blob(Cow::Owned(b)),
        }
    }
}

impl rusqlite::ToSql for BindValue<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            BindValue::Null => ValueRef::Null,
            BindValue::Integer(i) => ValueRef::Integer(*i),
            BindValue::Real(f) => ValueRef::Real(*f),
            BindValue::Text(s) => ValueRef::Text(s.as_bytes()),
            BindValue::Blob(b) => ValueRef::Blob(&b[..]),
        }))
    }
}

/// A record's id as SQL compares it with the id column (of `class`).
pub fn id_value(class: ColumnClass, id: &str) -> BindValue<'_> {
    match class {
        ColumnClass::Integer | ColumnClass::Any => id.parse().map(BindValue::Integer).unwrap_or(BindValue::Text(Cow::Borrowed(id))),
        _ => BindValue::Text(Cow::Borrowed(id)),
    }
}

/// One record in the table's terms: the columns it sets (in field-name order) and their values.
#[derive(Debug, PartialEq)]
pub struct SqlRow<'a> {
    pub id: Cow<'a, str>,
    pub columns: Vec<usize>,
    pub values: Vec<BindValue<'a>>,
}

/// Why a record cannot be written: the message, the record's id when known, and a hint.
#[derive(Debug)]
pub struct RowError {
    pub id: Option<String>,
    pub message: String,
    pub hint: Option<&'static str>,
}

const MISFIT: &str = "the record does not fit this table; check the object mapping or restore into the connector it came from";

/// Column lookup by name for one table.
pub struct Columns<'a> {
    map: &'a TableMap,
    /// `(name, index)` sorted by name.
    sorted: Vec<(&'a str, usize)>,
}

impl<'a> Columns<'a> {
    pub fn new(map: &'a TableMap) -> Columns<'a> {
        let mut sorted: Vec<(&str, usize)> = map.columns.iter().enumerate().map(|(i, c)| (c.name.as_str(), i)).collect();
        sorted.sort();
        Columns { map, sorted }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.sorted
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|at| self.sorted[at].1)
    }

    fn class(&self, index: usize) -> ColumnClass {
        self.map.columns[index].class
    }

    fn unknown(&self, key: &str, id: Option<String>) -> RowError {
        RowError {
            id,
            message: format!("table `{}` has no column `{key}`", self.map.table),
            hint: Some(MISFIT),
        }
    }

    fn check_id(&self, row: &SqlRow<'_>) -> Result<(), RowError> {
        let id = self.index(&self.map.id);
        if id.is_none_or(|id| !row.columns.contains(&id)) {
            return Err(RowError {
                id: Some(row.id.to_string()),
                message: format!("record has no `{}` field", self.map.id),
                hint: None,
            });
        }
        Ok(())
    }

    /// A record's row.
    pub fn from_record<'r>(&self, record: &'r Record) -> Result<SqlRow<'r>, RowError> {
        let mut row = SqlRow {
            id: Cow::Borrowed(&record.id),
            columns: Vec::with_capacity(record.fields.len()),
            values: Vec::with_capacity(record.fields.len()),
        };
        for (key, value) in &record.fields {
            let index = self.index(key).ok_or_else(|| self.unknown(key, Some(record.id.clone())))?;
            let v = match (self.class(index), value) {
                (class, Value::String(s)) if class != ColumnClass::Integer => BindValue::Text(Cow::Borrowed(s)),
                (class, value) => values::to_sql(class, value)
                    .map_err(|m| RowError {
                        id: Some(record.id.clone()),
                        message: format!("field `{key}`: {m}"),
                        hint: None,
                    })?
                    .into(),
            };
            row.columns.push(index);
            row.values.push(v);
        }
        self.check_id(&row)?;
        Ok(row)
    }

    /// The row of one chunk line (`{"deleted":..,"modified_at":..,"record":{"fields":{..},..}}`).
    pub fn from_line<'l>(&self, line: &'l [u8]) -> Result<SqlRow<'l>, RowError> {
        self.read_line(line).map_err(|mut e| {
            // Name the record when the line is readable at all.
            if e.id.is_none() {
                e.id = serde_json::from_slice::<Value>(line)
                    .ok()
                    .and_then(|v| v["record"]["id"].as_str().map(str::to_string));
            }
            e
        })
    }

    fn read_line<'l>(&self, line: &'l [u8]) -> Result<SqlRow<'l>, RowError> {
        const FIELDS: &[u8] = b",\"record\":{\"fields\":{";
        let bad = |message: &str| RowError {
            id: None,
            message: format!("unreadable snapshot line: {message}"),
            hint: Some("run `rollback verify --read-data` on the snapshot"),
        };
        let text = std::str::from_utf8(line).map_err(|_| bad("not UTF-8"))?;
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(FIELDS));
        let start = FINDER.find(line).ok_or_else(|| bad("no record fields"))? + FIELDS.len();
        let mut row = SqlRow {
            id: Cow::Borrowed(""),
            columns: Vec::with_capacity(self.sorted.len()),
            values: Vec::with_capacity(self.sorted.len()),
        };
        let mut at = start;
        if line.get(at) != Some(&b'}') {
            loop {
                let key_end = skip_string(line, at).ok_or_else(|| bad("truncated field name"))?;
                let key = json_string(&text[at..key_end]).ok_or_else(|| bad("bad field name"))?;
                let key = &*key;
                if line.get(key_end) != Some(&b':') {
                    return Err(bad("no `:` after a field name"));
                }
                let value_start = key_end + 1;
                let value_end = skip_value(line, value_start).ok_or_else(|| bad("truncated value"))?;
                let index = self.index(key).ok_or_else(|| self.unknown(key, None))?;
                let value = sql_value(self.class(index), &text[value_start..value_end]).map_err(|m| RowError {
                    id: None,
                    message: format!("field `{key}`: {m}"),
                    hint: None,
                })?;
                row.columns.push(index);
                row.values.push(value);
                match line.get(value_end) {
                    Some(b',') => at = value_end + 1,
                    Some(b'}') => {
                        at = value_end;
                        break;
                    }
                    _ => return Err(bad("malformed fields")),
                }
            }
        }
        const ID: &[u8] = b"},\"id\":";
        if !line[at..].starts_with(ID) {
            return Err(bad("no record id"));
        }
        let id_start = at + ID.len();
        let id_end = skip_value(line, id_start).ok_or_else(|| bad("truncated id"))?;
        row.id = json_string(&text[id_start..id_end]).ok_or_else(|| bad("the id is not a string"))?;
        self.check_id(&row)?;
        Ok(row)
    }
}

/// The end (after the closing quote) of the JSON string starting at `at`.
fn skip_string(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        match *bytes.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The text of a JSON string literal.
fn json_string(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A field's canonical JSON as SQL writes it into a column of `class` (as [`values::to_sql`]).
fn sql_value(class: ColumnClass, raw: &str) -> Result<BindValue<'_>, String> {
    match raw.as_bytes().first() {
        _ if raw == "null" => return Ok(BindValue::Null),
        _ if raw == "true" => return Ok(BindValue::Integer(1)),
        _ if raw == "false" => return Ok(BindValue::Integer(0)),
        Some(b'-' | b'0'..=b'9') => {
            if let Ok(i) = raw.parse::<i64>() {
                return Ok(BindValue::Integer(i));
            }
        }
        Some(b'"') if !raw.contains('\\') => {
            let s = &raw[1..raw.len() - 1];
            return Ok(match class {
                ColumnClass::Integer => s.parse().map(BindValue::Integer).unwrap_or(BindValue::Text(Cow::Borrowed(s))),
                _ => BindValue::Text(Cow::Borrowed(s)),
            });
        }
        _ => {}
    }
    let value: Value = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    values::to_sql(class, &value).map(BindValue::from)
}

/// The single-row `INSERT ... ON CONFLICT DO UPDATE` for rows that set `columns`.
pub fn upsert_sql(map: &TableMap, columns: &[usize]) -> String {
    let cols: Vec<String> = columns.iter().map(|&i| quote(&map.columns[i].name)).collect();
    let id = quote(&map.id);
    let updates: Vec<String> = cols.iter().filter(|c| **c != id).map(|c| format!("{c} = excluded.{c}")).collect();
    let conflict = if updates.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT({id}) {conflict}",
        quote(&map.table),
        cols.join(", "),
        placeholders.join(", "),
    )
}

/// The rows of records (a named iterator: the connector's futures must be `Send`, which
/// closures over borrowed records trip up).
pub struct RecordRows<'a> {
    pub columns: &'a Columns<'a>,
    pub records: std::slice::Iter<'a, Record>,
}

impl<'a> Iterator for RecordRows<'a> {
    type Item = Result<SqlRow<'a>, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.records.next().map(|r| self.columns.from_record(r))
    }
}

/// The rows of chunk lines (newline-separated).
pub struct LineRows<'a> {
    pub columns: &'a Columns<'a>,
    pub lines: &'a [u8],
}

impl<'a> Iterator for LineRows<'a> {
    type Item = Result<SqlRow<'a>, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.lines.is_empty() {
                return None;
            }
            let end = memchr::memchr(b'\n', self.lines).unwrap_or(self.lines.len());
            let line = &self.lines[..end];
            self.lines = self.lines.get(end + 1..).unwrap_or_default();
            if !line.is_empty() {
                return Some(self.columns.from_line(line));
            }
        }
    }
}
