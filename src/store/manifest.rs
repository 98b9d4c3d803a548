//! Snapshot manifests: `snapshots/<id>.json`, written last so a snapshot exists whole or not at all.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::Hash32;

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    Full,
    Delta,
}

/// What a snapshot holds and how to check it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub kind: SnapshotKind,
    pub connector: String,
    pub connector_type: String,
    pub created_at: DateTime<Utc>,
    /// For deltas: the bookmark the export started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    /// For deltas: where the next `since: last` delta starts (the newest change seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bookmark: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook_hash: Option<Hash32>,
    pub root_digest: Hash32,
    pub objects: BTreeMap<String, ObjectEntry>,
    /// The connector's description of its objects (tables, columns, types) at backup time.
    #[serde(default)]
    pub schema: serde_json::Value,
}

/// One object of a snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ObjectEntry {
    pub count: u64,
    /// Records exported as deleted (archived, soft-deleted) — included in `count`.
    #[serde(default)]
    pub deleted: u64,
    pub digest: Hash32,
    /// Uncompressed JSON-lines bytes.
    pub raw_bytes: u64,
    /// Compressed bytes in the store.
    pub stored_bytes: u64,
    /// Newest `modified_at` among the records, when the connector knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_modified: Option<DateTime<Utc>>,
    pub chunks: Vec<ChunkRef>,
    /// The object's `(id, record hash)` pairs in id order, split over chunks (see
    /// [`super::index`]); empty for snapshots written before indexes existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub index: Vec<ChunkRef>,
    /// For deltas: what happened to the object since the bookmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaCounts>,
}

/// Records created, changed and deleted in a delta.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DeltaCounts {
    pub created: u64,
    pub changed: u64,
    pub deleted: u64,
}

/// A chunk of one object's records.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChunkRef {
    /// sha256 of the stored (compressed) bytes, hex; also the file name.
    pub id: String,
    pub records: u64,
    /// Compressed size.
    pub size: u64,
    /// Uncompressed size.
    pub raw: u64,
}

impl Manifest {
    pub fn total_records(&self) -> u64 {
        self.objects.values().map(|o| o.count).sum()
    }

    pub fn stored_bytes(&self) -> u64 {
        self.objects.values().map(|o| o.stored_bytes).sum()
    }
}
