//! Backup and verify benchmark against the plain `sqlite3` CSV export, in the same run.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_backup -- [--records 1000000] [--runs 3]
//! ```
//! Generates a sandbox CRM with `--records` contacts (about 280 bytes each) using the real
//! `rollback init`, then times, `--runs` times each (median reported):
//! - baseline: `sqlite3 DB ".mode csv" "select * from contacts" > out.csv`
//! - `rollback execute --phase backup` of the contacts table (export, canonicalise, hash,
//!   compress, write), with its peak memory from the journal
//! - `rollback verify` of that snapshot, in MB/s of stored (compressed) and raw bytes
//!
//! It prints the ratios against the targets (backup ≤ 2.0× baseline, ≤ 200 MB; verify ≥ 500 MB/s).

#[path = "common/mod.rs"]
mod common;

use std::process::Command;

use common::{arg, rollback_bin, run};

fn median(mut v: Vec<f64>) -> f64 {
    eprintln!("  runs: {}", v.iter().map(|s| format!("{s:.2}s")).collect::<Vec<_>>().join(" "));
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

const PLAYBOOK: &str = "version: 1
name: bench
store: { path: .rollback }
connectors:
  legacy:
    type: sqlite
    path: sandbox/legacy.db
    objects:
      contacts: { table: contacts, id: id, modified: updated_at }
phases:
  backup:
    - backup: { from: legacy }
";

fn main() {
    let records = arg("--records", 1_000_000);
    let runs = arg("--runs", 3).max(1) as usize;
    let bin = rollback_bin();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    eprintln!("generating {records} contacts with `rollback init` …");
    let (gen_secs, _) = run(Command::new(&bin).arg("init").arg(root).args(["--records", &records.to_string()]));
    std::fs::write(root.join("rollback.yaml"), PLAYBOOK).unwrap();
    let db = root.join("sandbox/legacy.db");
    let db_bytes = std::fs::metadata(&db).unwrap().len();
    eprintln!("generated in {gen_secs:.1}s; database {:.0} MB", db_bytes as f64 / 1e6);

    let mut backup = Vec::new();
    let mut peak = 0u64;
    for _ in 0..runs {
        // Each run writes a whole new store, as a first backup does.
        let _ = std::fs::remove_dir_all(root.join(".rollback"));
        let (secs, _) = run(Command::new(&bin)
            .current_dir(root)
            .args(["--no-progress", "-q", "execute", "--phase", "backup"]));
        backup.push(secs);
        let (_, show) = run(Command::new(&bin)
            .current_dir(root)
            .args(["-q", "runs", "show", "latest", "--format", "json"]));
        let v: serde_json::Value = serde_json::from_str(&show).unwrap();
        peak = peak.max(v["run"]["peak_rss_bytes"].as_u64().unwrap_or(0));
    }
    if Command::new("sqlite3").arg("--version").output().is_err() {
        eprintln!("the baseline needs the sqlite3 command: apt-get install sqlite3");
        std::process::exit(2);
    }
    let csv = root.join("out.csv");
    let mut base = Vec::new();
    for _ in 0..runs {
        let file = std::fs::File::create(&csv).unwrap();
        let (secs, _) = run(Command::new("sqlite3")
            .arg(&db)
            .args([".mode csv", "select * from contacts"])
            .stdout(file));
        base.push(secs);
    }
    let csv_bytes = std::fs::metadata(&csv).unwrap().len();
    std::fs::remove_file(&csv).unwrap();

    let (_, list) = run(Command::new(&bin)
        .current_dir(root)
        .args(["-q", "snapshots", "list", "--format", "json"]));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id = list.as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_string();

    let verify = |extra: &[&str]| {
        let mut secs = Vec::new();
        let (mut stored, mut raw) = (0u64, 0u64);
        for _ in 0..runs {
            let mut args = vec!["-q", "verify", id.as_str(), "--format", "json"];
            args.extend_from_slice(extra);
            let (t, out) = run(Command::new(&bin).current_dir(root).args(&args));
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v[0]["ok"], true, "verify found problems: {out}");
            stored = v[0]["stored_bytes"].as_u64().unwrap();
            raw = raw.max(v[0]["raw_bytes"].as_u64().unwrap());
            secs.push(t);
        }
        (median(secs), stored, raw)
    };
    let (v, stored, _) = verify(&[]);
    let (vr, _, raw) = verify(&["--read-data"]);
    let (b, k) = (median(base), median(backup));
    println!("records                 {records}");
    println!(
        "sqlite file / csv       {:.0} MB / {:.0} MB ({:.0} bytes per row as CSV)",
        db_bytes as f64 / 1e6,
        csv_bytes as f64 / 1e6,
        csv_bytes as f64 / records.max(1) as f64
    );
    println!("baseline sqlite3 csv    {b:.2}s");
    println!("rollback backup         {k:.2}s  = {:.2}x baseline (target <= 2.0x)", k / b);
    println!("backup peak memory      {:.0} MB (target <= 200 MB)", peak as f64 / 1e6);
    println!(
        "snapshot                {:.0} MB stored, {:.0} MB raw",
        stored as f64 / 1e6,
        raw as f64 / 1e6
    );
    println!(
        "rollback verify         {v:.2}s  = {:.0} MB/s of stored bytes (target >= 500 MB/s)",
        stored as f64 / v / 1e6
    );
    println!(
        "verify --read-data      {vr:.2}s  = {:.0} MB/s stored, {:.0} MB/s of canonical records",
        stored as f64 / vr / 1e6,
        raw as f64 / vr / 1e6
    );
}
