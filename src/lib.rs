//! `rollback` makes a CRM migration reversible.
//!
//! # Architecture
//! - [`playbook`] reads the YAML playbook into plain settings ([`playbook::Playbook`]); every
//!   error is located (`path:line:col`) and hinted.
//! - [`connectors`] adapt CRMs to one [`record::Record`] type behind one trait.
//! - [`engine`] runs a phase's steps in order, journaling each one in [`journal`].
//! - [`store`] holds snapshots: content-addressed chunks and manifests, checked by
//!   [`store::verify`].
//! - [`cli`] and [`commands`] are the only places that know about clap and the terminal.
//! - [`exact_json`] reads and writes JSON numbers longer than an `f64` holds (Salesforce's
//!   18-digit fields) as their exact text, for the Salesforce connector and sandbox.
//!
//! # On disk
//! ```text
//! .rollback/
//!   store.json            {"format":1,"compression":"zstd","level":3}
//!   chunks/ab/abcdef…     zstd-compressed JSON lines, named by the sha256 of the stored bytes;
//!                         each line {"deleted":B,"modified_at":T|null,"record":CANONICAL}
//!   snapshots/<id>.json   manifest: connector, kind, time, objects → count, digest, chunks; root
//!                         digest; playbook hash; the connector's schema. Written last.
//!   journal.db            SQLite: runs, steps, events, checkpoints, freeze receipts, lock
//!   sandbox/<name>.db     records of the sandbox server a connector's `sandbox:` key starts
//!   tmp/                  staging for atomic writes (temp → fsync → rename)
//! ```
//! Canonical record bytes are compact JSON with sorted keys of `{fields, id, object}`;
//! `record_hash = sha256(canonical)`. An object digest is sha256 over `(len(id), id, hash)` in id
//! byte order; the root digest is sha256 over `(len(name), name, digest)` in name order.
//! Snapshot and run ids are 16 hex characters that sort by creation time.

pub mod cli;
pub mod commands;
pub mod connectors;
pub mod diff;
pub mod digest;
pub mod engine;
pub mod exact_json;
pub mod generate;
pub mod ids;
pub mod journal;
pub mod notify;
pub mod playbook;
pub mod progress;
pub mod record;
pub mod sandbox;
pub mod store;
