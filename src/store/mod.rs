//! The content-addressed snapshot store (see the crate docs for the layout on disk).
//!
//! `Store` owns the paths and the small amount of configuration in `store.json`; chunk bodies
//! are produced by [`chunk`], manifests by [`manifest`], integrity checks live in [`verify`].

pub mod chunk;
pub mod fsio;
pub mod index;
pub mod manifest;
pub mod verify;

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::diff::DenseHashes;
use crate::digest::{Hash32, ObjectDigester, sha256};
use crate::record::Record;
use manifest::{ChunkRef, Manifest, SnapshotKind};

/// `store.json`: never holds a secret.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoreConfig {
    pub format: u32,
    pub compression: String,
    pub level: i32,
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("no snapshot store at `{0}`\nhint: run a phase with a `backup` step first (`rollback execute --phase backup`)")]
    Missing(PathBuf),
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not a valid {what}: {message}")]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("no snapshot matches `{reference}`{scope}\nhint: `rollback snapshots list` shows the snapshots in this store")]
    NotFound { reference: String, scope: String },
    #[error("snapshot reference `{reference}` is ambiguous: it matches {candidates}\nhint: type more characters of the id")]
    Ambiguous { reference: String, candidates: String },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { action, path, source }
}

/// Builds a chunk body record by record, keeping each record's `(id, hash)`.
#[derive(Default)]
pub struct ChunkEncoder {
    pub raw: Vec<u8>,
    pub records: u64,
    pub pairs: ObjectDigester,
    pub deleted: u64,
    pub newest_modified: Option<DateTime<Utc>>,
}

impl ChunkEncoder {
    /// Appends one record's line and returns its record hash.
    pub fn push(&mut self, record: &Record) -> Hash32 {
        let hash = chunk::encode_line(record, &mut self.raw);
        self.pairs.push(&record.id, hash);
        self.records += 1;
        self.deleted += u64::from(record.deleted);
        self.newest_modified = self.newest_modified.max(record.modified_at);
        hash
    }

    /// Appends a page of encoded records.
    pub fn push_page(&mut self, page: &crate::connectors::EncodedPage) {
        self.raw.extend_from_slice(&page.lines);
        for (id, row) in page.iter() {
            self.pairs.push(id, row.hash);
            self.deleted += u64::from(row.deleted);
            self.newest_modified = self.newest_modified.max(row.modified_at);
        }
        self.records += page.len() as u64;
    }
}

/// Index chunks are mostly record hashes, which do not compress: zstd's fast mode stores them
/// quickly.
const INDEX_LEVEL: i32 = -5;

/// What one chunk write produced.
pub struct WrittenChunk {
    pub chunk: ChunkRef,
    pub pairs: ObjectDigester,
    pub deleted: u64,
    pub newest_modified: Option<DateTime<Utc>>,
}

/// One object's record hashes as [`Store::object_hashes`] reads them.
pub enum ObjectHashes {
    Dense(DenseHashes),
    Pairs(ObjectDigester),
}

#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    pub config: StoreConfig,
}

impl Store {
    /// Opens an existing store.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let path = root.join("store.json");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::Missing(root.into())),
            Err(e) => return Err(io("read", &path)(e)),
        };
        let config: StoreConfig = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            what: "store configuration",
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Store { root: root.into(), config })
    }

    /// Opens the store, creating it with `level` compression if it does not exist yet.
    pub fn open_or_create(root: &Path, level: i32) -> Result<Store, StoreError> {
        match Store::open(root) {
            Err(StoreError::Missing(_)) => {
                for dir in ["chunks", "snapshots", "tmp"] {
                    fs::create_dir_all(root.join(dir)).map_err(io("create", &root.join(dir)))?;
                }
                let config = StoreConfig {
                    format: 1,
                    compression: "zstd".into(),
                    level,
                };
                let bytes = serde_json::to_vec_pretty(&config).expect("serialisable config");
                let path = root.join("store.json");
                fsio::write_atomic(&root.join("tmp"), &path, &bytes).map_err(io("write", &path))?;
                Ok(Store { root: root.into(), config })
            }
            other => other,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn journal_path(&self) -> PathBuf {
        self.root.join("journal.db")
    }

    pub fn chunk_path(&self, hex: &str) -> PathBuf {
        let prefix = hex.get(..2).unwrap_or("__");
        self.root.join("chunks").join(prefix).join(hex)
    }

    fn manifest_path(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(format!("{id}.json"))
    }

    /// Encodes, hashes, compresses and durably writes one chunk of records.
    /// CPU-bound: call from a blocking thread.
    pub fn write_chunk(&self, records: &[Record]) -> Result<WrittenChunk, StoreError> {
        let mut encoder = ChunkEncoder::default();
        for record in records {
            encoder.push(record);
        }
        let (chunk, _) = self.write_encoded(encoder.raw, encoder.records)?;
        Ok(WrittenChunk {
            chunk,
            pairs: encoder.pairs,
            deleted: encoder.deleted,
            newest_modified: encoder.newest_modified,
        })
    }

    /// Compresses and durably writes an encoded chunk body holding `records` records; hands the
    /// body back so its buffer can be reused. CPU-bound: call from a blocking thread.
    pub fn write_encoded(&self, raw: Vec<u8>, records: u64) -> Result<(ChunkRef, Vec<u8>), StoreError> {
        self.write_encoded_at(raw, records, self.config.level)
    }

    /// [`Self::write_encoded`] at a given zstd level.
    fn write_encoded_at(&self, raw: Vec<u8>, records: u64, level: i32) -> Result<(ChunkRef, Vec<u8>), StoreError> {
        thread_local! {
            // Reused per thread: fresh multi-megabyte buffers cost page faults and zeroing.
            static STORED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let tmp = self.root.join("tmp");
        STORED.with(|stored| {
            let stored = &mut *stored.borrow_mut();
            chunk::compress_into(&raw, level, stored).map_err(io("compress a chunk in", &tmp))?;
            let id = sha256(stored).to_hex();
            let path = self.chunk_path(&id);
            if !path.exists() {
                fsio::write_atomic(&tmp, &path, stored).map_err(io("write", &path))?;
            }
            let chunk = ChunkRef {
                id,
                records,
                size: stored.len() as u64,
                raw: raw.len() as u64,
            };
            Ok((chunk, raw))
        })
    }

    /// Writes finished (sorted) pairs as index chunks of at most `chunk_bytes` each.
    pub fn write_index(&self, pairs: &ObjectDigester, chunk_bytes: usize) -> Result<Vec<ChunkRef>, StoreError> {
        // Bodies are encoded here while a second thread compresses and durably writes the one
        // before: an index is mostly incompressible hashes, so its writes wait on the disk.
        let (bodies, received) = std::sync::mpsc::sync_channel::<(Vec<u8>, u64)>(1);
        let (spare_tx, spare) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::scope(|s| {
            let writer = s.spawn(move || {
                let mut refs = Vec::new();
                for (body, records) in received {
                    let (chunk, reused) = self.write_encoded_at(body, records, INDEX_LEVEL)?;
                    refs.push(chunk);
                    let _ = spare_tx.send(reused);
                }
                Ok::<_, StoreError>(refs)
            });
            let mut body = Vec::with_capacity(chunk_bytes + 4096);
            let mut records = 0;
            let mut pairs_iter = pairs.pairs().peekable();
            while let Some((id, hash)) = pairs_iter.next() {
                index::encode_pair(&mut body, id, &hash);
                records += 1;
                if body.len() >= chunk_bytes || pairs_iter.peek().is_none() {
                    let mut next = spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(chunk_bytes + 4096));
                    next.clear();
                    if bodies.send((std::mem::replace(&mut body, next), records)).is_err() {
                        break; // the writer failed; its error is below
                    }
                    records = 0;
                }
            }
            drop(bodies);
            writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Reads a chunk's stored bytes.
    pub fn read_chunk(&self, hex: &str) -> std::io::Result<Vec<u8>> {
        fs::read(self.chunk_path(hex))
    }

    /// A chunk's stored bytes, checked against its name.
    fn checked_chunk(&self, chunk: &ChunkRef) -> Result<Vec<u8>, StoreError> {
        let path = self.chunk_path(&chunk.id);
        let stored = fs::read(&path).map_err(io("read chunk", &path))?;
        if sha256(&stored).to_hex() != chunk.id {
            return Err(self.corrupt(chunk, "its bytes no longer hash to its name".into()));
        }
        Ok(stored)
    }

    fn corrupt(&self, chunk: &ChunkRef, message: String) -> StoreError {
        StoreError::Corrupt {
            what: "chunk",
            path: self.chunk_path(&chunk.id),
            message,
        }
    }

    /// Reads, checks and decompresses a chunk.
    pub fn load_chunk(&self, chunk: &ChunkRef) -> Result<Vec<u8>, StoreError> {
        let stored = self.checked_chunk(chunk)?;
        chunk::decompress(&stored, chunk.raw as usize + 1).map_err(|e| self.corrupt(chunk, e.to_string()))
    }

    /// Reads all records of one object of a snapshot, chunk by chunk.
    pub fn read_records<'a>(&'a self, manifest: &'a Manifest, object: &str) -> impl Iterator<Item = Result<Vec<Record>, StoreError>> + 'a {
        let name: std::sync::Arc<str> = object.into();
        let chunks = manifest.objects.get(object).map(|o| o.chunks.as_slice()).unwrap_or_default();
        chunks.iter().map(move |chunk| {
            let raw = self.load_chunk(chunk)?;
            chunk::decode_lines(&raw, &name).map_err(|e| StoreError::Corrupt {
                what: "chunk",
                path: self.chunk_path(&chunk.id),
                message: format!("line {}: {}", e.line, e.message),
            })
        })
    }

    /// The chunk lines of the records of `wanted` in `chunk`, and how many there are. Each line
    /// is checked against the hash `wanted` gives its record (from the snapshot's index), not
    /// the chunk whole: what is written is what the index vouches for, and the other lines of a
    /// chunk are not hashed.
    pub fn chunk_matching_lines(
        &self,
        chunk: &ChunkRef,
        object: &std::sync::Arc<str>,
        wanted: &chunk::WantedLines,
    ) -> Result<(Vec<u8>, usize), StoreError> {
        thread_local! {
            static STORED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let path = self.chunk_path(&chunk.id);
        STORED.with(|stored| {
            let mut stored = stored.borrow_mut();
            stored.clear();
            fs::File::open(&path)
                .and_then(|mut file| std::io::Read::read_to_end(&mut file, &mut stored))
                .map_err(io("read chunk", &path))?;
            chunk::matching_lines_compressed(&stored, chunk.raw as usize + 1, object, wanted).map_err(|e| match e {
                chunk::MatchError::Inflate(message) => self.corrupt(chunk, message),
                chunk::MatchError::Line(e) => self.corrupt(chunk, format!("line {}: {}", e.line, e.message)),
            })
        })
    }

    /// Writes a manifest last, atomically: after this the snapshot exists.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let path = self.manifest_path(&manifest.id);
        let bytes = serde_json::to_vec_pretty(manifest).expect("serialisable manifest");
        fsio::write_atomic(&self.root.join("tmp"), &path, &bytes).map_err(io("write", &path))
    }

    /// Loads one manifest by exact id.
    pub fn load_manifest(&self, id: &str) -> Result<Manifest, StoreError> {
        let path = self.manifest_path(id);
        let bytes = fs::read(&path).map_err(io("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            what: "snapshot manifest",
            path,
            message: e.to_string(),
        })
    }

    /// A store at `root` that may not exist yet, for reading only (dry runs, plans).
    pub fn open_or_empty(root: &Path) -> Store {
        Store::open(root).unwrap_or_else(|_| Store {
            root: root.into(),
            config: StoreConfig {
                format: 1,
                compression: "zstd".into(),
                level: 1,
            },
        })
    }

    /// Ids of all manifests, oldest first.
    pub fn snapshot_ids(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join("snapshots");
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<String> = fs::read_dir(&dir)
            .map_err(io("list", &dir))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// All readable manifests, oldest first.
    pub fn list(&self) -> Result<Vec<Manifest>, StoreError> {
        self.snapshot_ids()?.iter().map(|id| self.load_manifest(id)).collect()
    }

    /// Resolves `latest`, `latest-delta`, an id or a unique id prefix, optionally only among the
    /// snapshots of `connector`.
    pub fn resolve(&self, reference: &str, connector: Option<&str>) -> Result<Manifest, StoreError> {
        let scope = connector.map(|c| format!(" of connector `{c}`")).unwrap_or_default();
        let not_found = || StoreError::NotFound {
            reference: reference.into(),
            scope: scope.clone(),
        };
        let ids = self.snapshot_ids()?;
        let kind = match reference {
            "latest" => Some(SnapshotKind::Full),
            "latest-delta" => Some(SnapshotKind::Delta),
            _ => None,
        };
        if let Some(kind) = kind {
            for id in ids.iter().rev() {
                let manifest = self.load_manifest(id)?;
                if manifest.kind == kind && connector.is_none_or(|c| manifest.connector == c) {
                    return Ok(manifest);
                }
            }
            return Err(not_found());
        }
        let matches: Vec<&String> = ids.iter().filter(|id| id.starts_with(reference) && !reference.is_empty()).collect();
        match matches.as_slice() {
            [] => Err(not_found()),
            [one] => {
                let manifest = self.load_manifest(one)?;
                match connector {
                    Some(c) if manifest.connector != c => Err(not_found()),
                    _ => Ok(manifest),
                }
            }
            many => Err(StoreError::Ambiguous {
                reference: reference.into(),
                candidates: many.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// One object's record hashes for a comparison: by id (see [`DenseHashes::from_index`]) when
    /// its index holds only canonical decimal integer ids spanning a few times their number, else
    /// its sorted pairs ([`Self::object_pairs`]). The index is read once either way.
    pub fn object_hashes(&self, manifest: &Manifest, object: &str) -> Result<ObjectHashes, StoreError> {
        let Some(entry) = manifest.objects.get(object).filter(|entry| !entry.index.is_empty()) else {
            return self.object_pairs(manifest, object).map(ObjectHashes::Pairs);
        };
        let raws = entry
            .index
            .iter()
            .map(|index| self.load_chunk(index))
            .collect::<Result<Vec<_>, _>>()?;
        let corrupt = |at: usize| {
            let path = self.chunk_path(&entry.index[at].id);
            move |message| StoreError::Corrupt {
                what: "index",
                path,
                message,
            }
        };
        if let Some(hashes) = DenseHashes::from_index(&raws).map_err(corrupt(0))? {
            return Ok(ObjectHashes::Dense(hashes));
        }
        let mut all = ObjectDigester::with_capacity(entry.count.min(1 << 24) as usize, 8);
        for (at, raw) in raws.iter().enumerate() {
            index::decode_into(raw, &mut all).map_err(corrupt(at))?;
        }
        all.sort();
        Ok(ObjectHashes::Pairs(all))
    }

    /// The `(id, record_hash)` pairs of one object of a snapshot, sorted: from its index when it
    /// has one, else by hashing its chunks.
    pub fn object_pairs(&self, manifest: &Manifest, object: &str) -> Result<ObjectDigester, StoreError> {
        let Some(entry) = manifest.objects.get(object) else {
            return Ok(ObjectDigester::new());
        };
        // Room for the pairs up front (growing by doubling re-copies them), within reason: the
        // count is the manifest's word.
        let mut all = ObjectDigester::with_capacity(entry.count.min(1 << 24) as usize, 8);
        if !entry.index.is_empty() {
            for index in &entry.index {
                let raw = self.load_chunk(index)?;
                index::decode_into(&raw, &mut all).map_err(|message| StoreError::Corrupt {
                    what: "index",
                    path: self.chunk_path(&index.id),
                    message,
                })?;
            }
            // Sorted, not finished: the object digest is the manifest's, and hashing a million
            // pairs again for it would be wasted here.
            all.sort();
            return Ok(all);
        }
        for chunk in &entry.chunks {
            let raw = self.load_chunk(chunk)?;
            let (pairs, _, errors) = chunk::hash_lines(&raw, object);
            if let Some(e) = errors.first() {
                return Err(StoreError::Corrupt {
                    what: "chunk",
                    path: self.chunk_path(&chunk.id),
                    message: format!("line {}: {}", e.line, e.message),
                });
            }
            all.merge(pairs);
        }
        all.sort();
        Ok(all)
    }
}

/// The digest every snapshot claims for itself, recomputed from its object entries.
pub fn claimed_root(manifest: &Manifest) -> Hash32 {
    crate::digest::root_digest(manifest.objects.iter().map(|(k, v)| (k.as_str(), v.digest)))
}
