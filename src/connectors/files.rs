//! `files`: a directory with one JSON-lines (`.jsonl`) or CSV (`.csv`) file per object.
//!
//! JSON lines keep every JSON type; CSV values are strings and an empty cell is `null`. Writes
//! rewrite the object's file atomically (temp → fsync → rename), keeping existing order and
//! appending new records.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{ApplyMode, ApplyOutcome, Capabilities, Connector, ConnectorError, PAGE_SIZE, RecordPages};
use crate::playbook::{ConnectorConfig, ConnectorKind};
use crate::record::{Fields, Record};

/// The lock file a freeze writes; applications writing these files must honour it.
pub const LOCK_FILE: &str = ".rollback-freeze.lock";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    JsonLines,
    Csv,
}

#[derive(Clone, Debug)]
struct FileMap {
    object: Arc<str>,
    path: PathBuf,
    format: Format,
    id: String,
    modified: Option<String>,
}

pub struct FilesConnector {
    name: String,
    dir: PathBuf,
    files: BTreeMap<String, FileMap>,
    /// Serialises read-modify-write of files.
    write_lock: tokio::sync::Mutex<()>,
}

impl FilesConnector {
    pub fn open(config: &ConnectorConfig) -> Result<Self, ConnectorError> {
        let name = config.name.as_str();
        let (dir, shown) = super::resolve_path(config)?;
        if !dir.is_dir() {
            return Err(ConnectorError::new(name, format!("directory `{shown}` does not exist"))
                .hint("create it, or fix `path` (relative to the playbook's folder)"));
        }
        let default_format = match config.spec.format.as_deref() {
            Some("csv") => Format::Csv,
            _ => Format::JsonLines,
        };
        let files = config
            .objects
            .iter()
            .map(|(object, m)| {
                let file = m
                    .file
                    .clone()
                    .unwrap_or_else(|| format!("{object}.{}", if default_format == Format::Csv { "csv" } else { "jsonl" }));
                let format = if file.ends_with(".csv") { Format::Csv } else { Format::JsonLines };
                let map = FileMap {
                    object: object.as_str().into(),
                    path: dir.join(file),
                    format,
                    id: m.id.clone().unwrap_or_else(|| "id".into()),
                    modified: m.modified.clone(),
                };
                (object.clone(), map)
            })
            .collect();
        Ok(FilesConnector {
            name: name.into(),
            dir,
            files,
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn file(&self, object: &str) -> Result<&FileMap, ConnectorError> {
        self.files
            .get(object)
            .ok_or_else(|| ConnectorError::new(&self.name, "object is not mapped").object(object))
    }

    /// The directory, for freeze lock files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Reads every record of one file; a missing file is an empty object.
fn read_all(connector: &str, map: &FileMap) -> Result<Vec<Record>, ConnectorError> {
    let text = match std::fs::read_to_string(&map.path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ConnectorError::new(connector, format!("cannot read `{}`: {e}", map.path.display())).object(&map.object)),
    };
    let at = |line: usize, message: String| {
        ConnectorError::new(connector, format!("`{}` line {line}: {message}", map.path.display())).object(&map.object)
    };
    let mut rows: Vec<(usize, Fields)> = Vec::new();
    match map.format {
        Format::JsonLines => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let fields: Fields = serde_json::from_str(line).map_err(|e| at(i + 1, format!("not a JSON object: {e}")))?;
                rows.push((i + 1, fields));
            }
        }
        Format::Csv => {
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let headers = reader.headers().map_err(|e| at(1, e.to_string()))?.clone();
            for (i, row) in reader.records().enumerate() {
                let row = row.map_err(|e| at(i + 2, e.to_string()))?;
                let fields = headers
                    .iter()
                    .zip(row.iter())
                    .map(|(h, v)| (h.to_string(), if v.is_empty() { Value::Null } else { Value::String(v.to_string()) }))
                    .collect();
                rows.push((i + 2, fields));
            }
        }
    }
    rows.into_iter()
        .map(|(line, fields)| {
            Record::from_fields(&map.object, fields, &map.id, map.modified.as_deref())
                .ok_or_else(|| at(line, format!("no `{}` value", map.id)))
        })
        .collect()
}

/// Writes records back in the file's format, atomically.
fn write_all(connector: &str, map: &FileMap, records: &[Record]) -> Result<(), ConnectorError> {
    let mut out = Vec::new();
    match map.format {
        Format::JsonLines => {
            for r in records {
                serde_json::to_writer(&mut out, &r.fields).expect("in-memory JSON write");
                out.push(b'\n');
            }
        }
        Format::Csv => {
            let mut headers: Vec<&String> = Vec::new();
            for r in records {
                for k in r.fields.keys() {
                    if !headers.contains(&k) {
                        headers.push(k);
                    }
                }
            }
            let mut writer = csv::Writer::from_writer(&mut out);
            let fail = |e: csv::Error| ConnectorError::new(connector, e.to_string()).object(&map.object);
            writer.write_record(&headers).map_err(fail)?;
            for r in records {
                let row: Vec<String> = headers
                    .iter()
                    .map(|h| match r.fields.get(*h) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                    })
                    .collect();
                writer.write_record(&row).map_err(fail)?;
            }
            writer.flush().map_err(|e| ConnectorError::new(connector, e.to_string()))?;
        }
    }
    let tmp = map.path.parent().unwrap_or(Path::new(".")).join(".rollback-tmp");
    crate::store::fsio::write_atomic(&tmp, &map.path, &out)
        .map_err(|e| ConnectorError::new(connector, format!("cannot write `{}`: {e}", map.path.display())).object(&map.object))?;
    let _ = std::fs::remove_dir(&tmp);
    Ok(())
}

#[async_trait]
impl Connector for FilesConnector {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Files
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            read: true,
            write: true,
            freeze: true,
        }
    }
    fn objects(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    async fn health(&self) -> Result<(), ConnectorError> {
        std::fs::read_dir(&self.dir)
            .map(|_| ())
            .map_err(|e| ConnectorError::new(&self.name, e.to_string()))
    }

    async fn describe(&self) -> Result<Value, ConnectorError> {
        let mut objects = serde_json::Map::new();
        for (object, map) in &self.files {
            let records = read_all(&self.name, map)?;
            let mut fields: BTreeMap<String, &'static str> = BTreeMap::new();
            for r in &records {
                for (k, v) in &r.fields {
                    let t = match v {
                        Value::Null => continue,
                        Value::Bool(_) => "boolean",
                        Value::Number(_) => "number",
                        Value::String(_) => "string",
                        Value::Array(_) => "array",
                        Value::Object(_) => "object",
                    };
                    fields.insert(k.clone(), t);
                }
            }
            let file = map.path.file_name().map(|f| f.to_string_lossy().into_owned());
            objects.insert(
                object.clone(),
                json!({"file": file, "id": map.id, "modified": map.modified, "fields": fields}),
            );
        }
        Ok(json!({"type": "files", "objects": objects}))
    }

    async fn count(&self, object: &str) -> Result<u64, ConnectorError> {
        Ok(read_all(&self.name, self.file(object)?)?.len() as u64)
    }

    fn export(&self, object: &str, since: Option<DateTime<Utc>>) -> RecordPages {
        let result = self.file(object).and_then(|map| read_all(&self.name, map));
        let pages: Vec<Result<Vec<Record>, ConnectorError>> = match result {
            Err(e) => vec![Err(e)],
            Ok(records) => {
                let kept: Vec<Record> = records
                    .into_iter()
                    .filter(|r| since.is_none_or(|s| r.modified_at.is_some_and(|m| m >= s)))
                    .collect();
                kept.chunks(PAGE_SIZE).map(|c| Ok(c.to_vec())).collect()
            }
        };
        Box::pin(futures::stream::iter(pages))
    }

    async fn apply(&self, object: &str, batch: &[Record], _mode: ApplyMode) -> Result<ApplyOutcome, ConnectorError> {
        let map = self.file(object)?;
        let _guard = self.write_lock.lock().await;
        let mut records = read_all(&self.name, map)?;
        let index: HashMap<String, usize> = records.iter().enumerate().map(|(i, r)| (r.id.clone(), i)).collect();
        for record in batch {
            match index.get(&record.id) {
                Some(&i) => records[i] = record.clone(),
                None => records.push(record.clone()),
            }
        }
        write_all(&self.name, map, &records)?;
        Ok(ApplyOutcome {
            written: batch.len() as u64,
            id_map: Vec::new(),
        })
    }

    async fn freeze(&self, run_id: &str, message: &str) -> Result<Value, ConnectorError> {
        let path = self.dir.join(LOCK_FILE);
        let body = json!({"run": run_id, "message": format!("frozen by rollback: {message}"), "since": crate::journal::now()});
        let text = serde_json::to_vec_pretty(&body).expect("serialisable lock");
        crate::store::fsio::write_atomic(&self.dir.join(".rollback-tmp"), &path, &text)
            .map_err(|e| ConnectorError::new(&self.name, format!("cannot write lock file `{}`: {e}", path.display())))?;
        let _ = std::fs::remove_dir(self.dir.join(".rollback-tmp"));
        Ok(json!({"method": "lock_file", "run": run_id, "lock_file": LOCK_FILE}))
    }

    async fn unfreeze(&self, receipt: &Value) -> Result<(), ConnectorError> {
        let path = self.dir.join(LOCK_FILE);
        let current: Option<Value> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
        match current {
            None => Ok(()),
            Some(lock) if lock["run"] == receipt["run"] => std::fs::remove_file(&path)
                .map_err(|e| ConnectorError::new(&self.name, format!("cannot remove lock file `{}`: {e}", path.display()))),
            Some(lock) => Err(ConnectorError::new(
                &self.name,
                format!("the lock file belongs to run `{}`, not to the receipt's run", lock["run"]),
            )
            .hint("unfreeze with the receipt of the run that froze it (`rollback status`)")),
        }
    }

    async fn write_probe(&self) -> Result<bool, ConnectorError> {
        Ok(!self.dir.join(LOCK_FILE).exists())
    }

    async fn delete(&self, object: &str, ids: &[String]) -> Result<u64, ConnectorError> {
        let map = self.file(object)?;
        let _guard = self.write_lock.lock().await;
        let records = read_all(&self.name, map)?;
        let doomed: std::collections::HashSet<&String> = ids.iter().collect();
        let before = records.len();
        let kept: Vec<Record> = records.into_iter().filter(|r| !doomed.contains(&r.id)).collect();
        let removed = (before - kept.len()) as u64;
        write_all(&self.name, map, &kept)?;
        Ok(removed)
    }
}
