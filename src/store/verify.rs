//! `verify`: re-read every chunk, re-hash it, re-derive every digest, and collect every finding
//! before judging. Work is spread over all cores; nothing is written.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::manifest::{ChunkRef, Manifest};
use super::{Store, chunk, claimed_root};
use crate::digest::{Hash32, ObjectDigester, sha256};

/// One problem found in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    ChunkMissing {
        object: String,
        chunk: String,
    },
    ChunkUnreadable {
        object: String,
        chunk: String,
        message: String,
    },
    ChunkHashMismatch {
        object: String,
        chunk: String,
        actual: String,
    },
    ChunkDecompress {
        object: String,
        chunk: String,
        message: String,
    },
    ChunkRecordCount {
        object: String,
        chunk: String,
        manifest: u64,
        actual: u64,
    },
    BadLine {
        object: String,
        chunk: String,
        line: usize,
        message: String,
    },
    CountMismatch {
        object: String,
        manifest: u64,
        actual: u64,
    },
    DeletedMismatch {
        object: String,
        manifest: u64,
        actual: u64,
    },
    DuplicateIds {
        object: String,
        ids: Vec<String>,
    },
    DigestMismatch {
        object: String,
        manifest: Hash32,
        actual: Hash32,
    },
    RootDigestMismatch {
        manifest: Hash32,
        actual: Hash32,
    },
    IndexUnreadable {
        object: String,
        chunk: String,
        message: String,
    },
    ChunksDisagreeWithIndex {
        object: String,
        ids: Vec<String>,
    },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::ChunkMissing { object, chunk } => write!(f, "object `{object}`: chunk `{chunk}` is missing"),
            Finding::ChunkUnreadable { object, chunk, message } => {
                write!(f, "object `{object}`: chunk `{chunk}` cannot be read: {message}")
            }
            Finding::ChunkHashMismatch { object, chunk, actual } => {
                write!(f, "object `{object}`: chunk `{chunk}` is damaged: its bytes hash to `{actual}`")
            }
            Finding::ChunkDecompress { object, chunk, message } => {
                write!(f, "object `{object}`: chunk `{chunk}` does not decompress: {message}")
            }
            Finding::ChunkRecordCount {
                object,
                chunk,
                manifest,
                actual,
            } => write!(
                f,
                "object `{object}`: chunk `{chunk}` holds {actual} records, the manifest says {manifest}"
            ),
            Finding::BadLine {
                object,
                chunk,
                line,
                message,
            } => {
                write!(f, "object `{object}`: chunk `{chunk}` line {line}: {message}")
            }
            Finding::CountMismatch { object, manifest, actual } => {
                write!(
                    f,
                    "object `{object}`: the manifest counts {manifest} records, the chunks hold {actual}"
                )
            }
            Finding::DeletedMismatch { object, manifest, actual } => write!(
                f,
                "object `{object}`: the manifest counts {manifest} deleted records, the chunks hold {actual}"
            ),
            Finding::DuplicateIds { object, ids } => {
                write!(f, "object `{object}`: ids stored more than once: {}", preview(ids))
            }
            Finding::DigestMismatch { object, manifest, actual } => {
                write!(f, "object `{object}`: digest is {actual}, the manifest says {manifest}")
            }
            Finding::IndexUnreadable { object, chunk, message } => {
                write!(f, "object `{object}`: index `{chunk}` cannot be used: {message}")
            }
            Finding::ChunksDisagreeWithIndex { object, ids } => {
                write!(f, "object `{object}`: the chunks and the index disagree on ids {}", preview(ids))
            }
            Finding::RootDigestMismatch { manifest, actual } => {
                write!(f, "root digest of the objects is {actual}, the manifest says {manifest}")
            }
        }
    }
}

/// Up to ten items, then a count of the rest.
pub fn preview(ids: &[String]) -> String {
    let shown: Vec<String> = ids.iter().take(10).map(|i| format!("`{i}`")).collect();
    match ids.len() {
        n if n > 10 => format!("{} and {} more", shown.join(", "), n - 10),
        _ => shown.join(", "),
    }
}

/// The outcome of verifying one snapshot.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub records: u64,
    pub stored_bytes: u64,
    pub raw_bytes: u64,
}

struct ChunkResult {
    pairs: ObjectDigester,
    deleted: u64,
    findings: Vec<Finding>,
    stored: u64,
    raw: u64,
}

/// Reads a chunk and checks its content hash; with `read_data`, also decompresses it and hashes
/// every record, or decodes it as an object index.
fn check_chunk(store: &Store, object: &str, chunk: &ChunkRef, kind: Read) -> ChunkResult {
    let mut result = ChunkResult {
        pairs: ObjectDigester::new(),
        deleted: 0,
        findings: vec![],
        stored: 0,
        raw: 0,
    };
    let (o, c) = (object.to_string(), chunk.id.clone());
    let stored = match store.read_chunk(&chunk.id) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            result.findings.push(Finding::ChunkMissing { object: o, chunk: c });
            return result;
        }
        Err(e) => {
            result.findings.push(Finding::ChunkUnreadable {
                object: o,
                chunk: c,
                message: e.to_string(),
            });
            return result;
        }
    };
    result.stored = stored.len() as u64;
    let actual = sha256(&stored).to_hex();
    if actual != chunk.id {
        result.findings.push(Finding::ChunkHashMismatch {
            object: o.clone(),
            chunk: c.clone(),
            actual,
        });
    }
    if kind == Read::HashOnly {
        return result;
    }
    let limit = (chunk.raw as usize).saturating_mul(2).max(1 << 20);
    let raw = match chunk::decompress(&stored, limit) {
        Ok(raw) => raw,
        Err(e) => {
            result.findings.push(Finding::ChunkDecompress {
                object: o,
                chunk: c,
                message: e.to_string(),
            });
            return result;
        }
    };
    result.raw = raw.len() as u64;
    if kind == Read::Index {
        match super::index::decode(&raw) {
            Ok(pairs) => result.pairs = pairs,
            Err(message) => result.findings.push(Finding::IndexUnreadable {
                object: o,
                chunk: c,
                message,
            }),
        }
        return result;
    }
    let (pairs, deleted, errors) = chunk::hash_lines(&raw, object);
    for e in errors.iter().take(20) {
        result.findings.push(Finding::BadLine {
            object: o.clone(),
            chunk: c.clone(),
            line: e.line,
            message: e.message.clone(),
        });
    }
    if pairs.len() as u64 != chunk.records {
        result.findings.push(Finding::ChunkRecordCount {
            object: o,
            chunk: c,
            manifest: chunk.records,
            actual: pairs.len() as u64,
        });
    }
    result.pairs = pairs;
    result.deleted = deleted;
    result
}

/// How much of a chunk to read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Read {
    /// Read it and check its content hash.
    HashOnly,
    /// Also decompress it and hash every record.
    Records,
    /// Also decompress it and decode it as an object index.
    Index,
}

/// Verifies one snapshot using `threads` worker threads. Every stored byte is read and checked
/// against its content hash, and every digest is re-derived from the object indexes. With
/// `read_data` (and for snapshots without indexes) every chunk is also decompressed and every
/// record re-hashed, and the result must agree with the index.
pub fn verify_snapshot(store: &Store, manifest: &Manifest, threads: usize, read_data: bool) -> Report {
    let mut jobs: Vec<(&str, &ChunkRef, Read)> = Vec::new();
    for (name, o) in &manifest.objects {
        let data = if read_data || o.index.is_empty() {
            Read::Records
        } else {
            Read::HashOnly
        };
        jobs.extend(o.chunks.iter().map(|c| (name.as_str(), c, data)));
        jobs.extend(o.index.iter().map(|c| (name.as_str(), c, Read::Index)));
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<ChunkResult>>> = Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((object, chunk, kind)) = jobs.get(i) else { break };
                    let r = check_chunk(store, object, chunk, *kind);
                    results.lock().expect("verify worker panicked")[i] = Some(r);
                }
            });
        }
    });
    let mut results = results.into_inner().expect("verify worker panicked").into_iter().flatten();
    let mut report = Report::default();
    for (name, entry) in &manifest.objects {
        let read_records = read_data || entry.index.is_empty();
        let mut data_pairs = ObjectDigester::new();
        let mut deleted = 0;
        let mut data_records = 0;
        for _ in &entry.chunks {
            let Some(r) = results.next() else { break };
            report.findings.extend(r.findings);
            report.stored_bytes += r.stored;
            report.raw_bytes += r.raw;
            deleted += r.deleted;
            data_pairs.merge(r.pairs);
        }
        for chunk in &entry.chunks {
            data_records += chunk.records;
        }
        let mut pairs = ObjectDigester::new();
        let mut index_unreadable = false;
        for _ in &entry.index {
            let Some(r) = results.next() else { break };
            index_unreadable |= !r.findings.is_empty();
            report.findings.extend(r.findings);
            report.stored_bytes += r.stored;
            pairs.merge(r.pairs);
        }
        if index_unreadable {
            continue;
        }
        let digest = if !entry.index.is_empty() {
            let digest = pairs.finish();
            if read_records {
                let from_data = data_pairs.finish();
                if from_data.digest != digest.digest {
                    let ids = crate::diff::diff(&pairs, &data_pairs);
                    let mut all: Vec<String> = ids.added.into_iter().chain(ids.changed).chain(ids.deleted).collect();
                    all.sort();
                    report.findings.push(Finding::ChunksDisagreeWithIndex {
                        object: name.clone(),
                        ids: all,
                    });
                }
            }
            if data_records != digest.count {
                report.findings.push(Finding::CountMismatch {
                    object: name.clone(),
                    manifest: data_records,
                    actual: digest.count,
                });
            }
            digest
        } else {
            data_pairs.finish()
        };
        report.records += digest.count;
        if digest.count != entry.count {
            report.findings.push(Finding::CountMismatch {
                object: name.clone(),
                manifest: entry.count,
                actual: digest.count,
            });
        }
        if read_records && deleted != entry.deleted {
            report.findings.push(Finding::DeletedMismatch {
                object: name.clone(),
                manifest: entry.deleted,
                actual: deleted,
            });
        }
        if !digest.duplicates.is_empty() {
            report.findings.push(Finding::DuplicateIds {
                object: name.clone(),
                ids: digest.duplicates.clone(),
            });
        }
        if digest.digest != entry.digest {
            report.findings.push(Finding::DigestMismatch {
                object: name.clone(),
                manifest: entry.digest,
                actual: digest.digest,
            });
        }
    }
    let claimed = claimed_root(manifest);
    if claimed != manifest.root_digest {
        report.findings.push(Finding::RootDigestMismatch {
            manifest: manifest.root_digest,
            actual: claimed,
        });
    }
    report
}
