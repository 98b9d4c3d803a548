//! Restore benchmark against `sqlite3 .import`, in the same run.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_restore -- [--records 1000000] [--runs 3]
//! ```
//! Makes a SQLite CRM with `rollback init`, backs up its contacts, and measures:
//! - baseline: `sqlite3 DB ".import --csv out.csv contacts"` of the same rows into an empty table;
//! - `rollback` restoring the snapshot into an empty contacts table (target ≤ 1.5× the baseline);
//! - restoring when 1 % of rows differ (target ≤ 0.3× the full restore);
//! - restoring when nothing differs (target ≤ 1.2× the backup);
//! - peak memory of each run, from the journal (target ≤ 300 MB).
//!
//! The baseline and the restores run `--runs` times in turn (default 3); figures are medians.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::{arg, max, median, peak, rollback_bin, run};

fn sqlite(db: &Path, sql: &str) {
    run(Command::new("sqlite3").arg(db).arg(sql));
}

fn main() {
    let records = arg("--records", 1_000_000);
    let bin = rollback_bin();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    eprintln!("generating {records} contacts …");
    run(Command::new(&bin).arg("init").arg(root).args(["--records", &records.to_string()]));
    let legacy = root.join("sandbox/legacy.db");
    let target = root.join("sandbox/target.db");
    let fresh_target = || {
        std::fs::copy(&legacy, &target).unwrap();
        sqlite(&target, "DELETE FROM contacts; VACUUM;");
    };
    let playbook = |snapshot: &str| {
        format!(
            "version: 1\nname: bench\nstore: {{ path: .rollback }}\nconnectors:\n  legacy:\n    type: sqlite\n    path: sandbox/legacy.db\n    objects:\n      contacts: {{ table: contacts, id: id, modified: updated_at }}\n  target:\n    type: sqlite\n    path: sandbox/target.db\n    objects:\n      contacts: {{ table: contacts, id: id, modified: updated_at }}\nphases:\n  backup:\n    - backup: {{ from: legacy }}\n  restore:\n    - restore: {{ to: target, snapshot: \"{snapshot}\", mode: replace, batch_size: 5000 }}\n"
        )
    };
    std::fs::write(root.join("rollback.yaml"), playbook("latest")).unwrap();
    let (backup, _) = run(Command::new(&bin)
        .current_dir(root)
        .args(["-q", "--no-progress", "execute", "--phase", "backup"]));
    let (_, list) = run(Command::new(&bin)
        .current_dir(root)
        .args(["-q", "snapshots", "list", "--format", "json"]));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_string();
    std::fs::write(root.join("rollback.yaml"), playbook(&id)).unwrap();

    // Baseline: import the same rows as CSV into an empty table.
    let csv = root.join("contacts.csv");
    let file = std::fs::File::create(&csv).unwrap();
    run(Command::new("sqlite3")
        .arg(&legacy)
        .args([".mode csv", "select * from contacts"])
        .stdout(file));
    let restore_cmd = || {
        let mut c = Command::new(&bin);
        c.current_dir(root).args(["-q", "--no-progress", "execute", "--phase", "restore"]);
        c
    };
    // The baseline and the three restores run `--runs` times in turn; the figures are medians
    // (this VM's timings swing by ±15 % between runs minutes apart).
    let runs = arg("--runs", 3).max(1);
    let (mut imports, mut fulls, mut partials, mut nothings) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut full_peaks, mut partial_peaks, mut nothing_peaks) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        fresh_target();
        let (secs, _) = run(Command::new("sqlite3")
            .arg(&target)
            .arg(format!(".import --csv {} contacts", csv.display())));
        imports.push(secs);
        fresh_target();
        let (secs, _) = run(&mut restore_cmd());
        fulls.push(secs);
        full_peaks.push(peak(&bin, root));
        sqlite(&target, "UPDATE contacts SET notes = 'changed in the new CRM' WHERE id % 100 = 0;");
        let (secs, _) = run(&mut restore_cmd());
        partials.push(secs);
        partial_peaks.push(peak(&bin, root));
        let (secs, _) = run(&mut restore_cmd());
        nothings.push(secs);
        nothing_peaks.push(peak(&bin, root));
    }
    let ratios = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| format!("{:.3}x", x / y)).collect::<Vec<_>>().join(" ");
    let (import, full, partial, nothing) = (median(&imports), median(&fulls), median(&partials), median(&nothings));
    let (full_peak, partial_peak, nothing_peak) = (max(&full_peaks), max(&partial_peaks), max(&nothing_peaks));

    println!("records                       {records}");
    println!("backup                        {backup:.2}s");
    println!("baseline sqlite3 .import      {import:.2}s");
    println!(
        "restore into empty table      {full:.2}s = {:.2}x baseline (target <= 1.5x; medians of {runs}, runs {}), peak {full_peak:.0} MB",
        full / import,
        ratios(&fulls, &imports)
    );
    println!(
        "restore, 1% of rows differ    {partial:.2}s = {:.3}x the full restore (target <= 0.3x; runs {}), peak {partial_peak:.0} MB",
        partial / full,
        ratios(&partials, &fulls)
    );
    println!(
        "restore, nothing differs      {nothing:.2}s = {:.2}x the backup (target <= 1.2x), peak {nothing_peak:.0} MB",
        nothing / backup
    );
}
