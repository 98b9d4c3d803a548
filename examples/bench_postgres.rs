//! PostgreSQL benchmark against the server's own tools, in the same run.
//!
//! ```text
//! cargo build --release --bins --examples && target/release/examples/bench_postgres [--records 1000000]
//! ```
//! Starts a throwaway PostgreSQL (as in the tests), fills a `contacts` table of about 280-byte
//! rows (id, email, names, phone, company_id, lifecycle_stage, owner, notes, created_at,
//! updated_at) and measures:
//! - backup versus `pg_dump --data-only -t contacts` to a file (target ≤ 1.5×), alternated
//!   `--runs` times (default 5), medians;
//! - restore into an empty table versus `psql -c "\copy contacts from FILE csv"` (target ≤ 1.5×);
//! - restore when 1 % of rows differ (target ≤ 0.25× the full restore);
//! - peak memory of each `rollback` run (target ≤ 256 MB).

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/common/postgres.rs"]
mod postgres;

use std::process::Command;

use common::{arg, max, median, peak, rollback_bin, run};

fn main() {
    let records = arg("--records", 1_000_000);
    let bin = rollback_bin();
    let server = postgres::PgServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    eprintln!("generating {records} contacts …");
    server.psql("postgres", "CREATE DATABASE crm");
    server.psql(
        "crm",
        &format!(
            "CREATE TABLE companies (id bigint PRIMARY KEY, name text NOT NULL, updated_at timestamptz NOT NULL);
             INSERT INTO companies SELECT g, 'Company ' || g, now() FROM generate_series(1, 1000) g;
             CREATE TABLE contacts (id bigint PRIMARY KEY, email text NOT NULL, first_name text, last_name text, phone text,
               company_id bigint REFERENCES companies(id), lifecycle_stage text, owner text, notes text,
               created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
             INSERT INTO contacts SELECT g, 'first' || g || '.last' || g || '@example.com', 'First' || (g % 997), 'Lastname' || (g % 991),
               '+1 555 ' || lpad((g % 10000000)::text, 7, '0'), 1 + g % 1000,
               (ARRAY['subscriber','lead','marketingqualifiedlead','salesqualifiedlead','opportunity','customer'])[1 + g % 6],
               'owner' || (g % 50) || '@example.com',
               substr(repeat('prefers email, renewal in Q1, asked about pricing and the legal review; ', 3), 1 + g % 40, 120),
               '2024-01-01T00:00:00Z'::timestamptz + g * interval '37 seconds', '2025-06-01T00:00:00Z'::timestamptz + g * interval '11 seconds'
             FROM generate_series(1, {records}) g;"
        ),
    );
    server.psql("crm", "VACUUM ANALYZE contacts");
    let playbook = |snapshot: &str| {
        format!(
            "version: 1\nname: bench\nstore: {{ path: .rollback }}\nconnectors:\n  legacy:\n    type: postgres\n    url: {}\n    objects:\n      contacts: {{ table: contacts, id: id, modified: updated_at }}\nphases:\n  backup:\n    - backup: {{ from: legacy }}\n  restore:\n    - restore: {{ to: legacy, snapshot: \"{snapshot}\", mode: replace, batch_size: 10000 }}\n",
            server.url("crm")
        )
    };
    std::fs::write(root.join("rollback.yaml"), playbook("latest")).unwrap();

    // The backup and `pg_dump` alternate `--runs` times (each backup into a new store, so no
    // chunk is already there); the figures are the medians, as this VM's timings swing.
    let runs = arg("--runs", 5).max(1);
    let dump = root.join("contacts.sql");
    let (mut dumps, mut backups, mut backup_peaks) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let _ = std::fs::remove_file(&dump);
        let (secs, _) = run(Command::new("pg_dump")
            .args(["--data-only", "-t", "contacts", "-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(server.port.to_string())
            .arg("-f")
            .arg(&dump)
            .arg("crm"));
        dumps.push(secs);
        let _ = std::fs::remove_dir_all(root.join(".rollback"));
        let (secs, _) = run(Command::new(&bin)
            .current_dir(root)
            .args(["-q", "--no-progress", "execute", "--phase", "backup"]));
        backups.push(secs);
        backup_peaks.push(peak(&bin, root));
    }
    let ratios: Vec<f64> = backups.iter().zip(&dumps).map(|(b, d)| b / d).collect();
    let (pg_dump, backup, backup_peak) = (median(&dumps), median(&backups), max(&backup_peaks));

    let csv = root.join("contacts.csv");
    server.psql("crm", &format!("\\copy contacts TO '{}' csv", csv.display()));
    server.psql("crm", "TRUNCATE contacts");
    let port = server.port.to_string();
    let (copy, _) = run(Command::new("psql")
        .args(["-X", "-q", "-h", "127.0.0.1", "-U", "postgres", "-p", &port, "-d", "crm", "-c"])
        .arg(format!("\\copy contacts FROM '{}' csv", csv.display())));
    server.psql("crm", "TRUNCATE contacts");
    server.psql("crm", "VACUUM contacts");

    let restore = || {
        let (secs, _) = run(Command::new(&bin)
            .current_dir(root)
            .args(["-q", "--no-progress", "execute", "--phase", "restore"]));
        (secs, peak(&bin, root))
    };
    let (full, full_peak) = restore();
    server.psql("crm", "UPDATE contacts SET notes = 'changed in the new CRM' WHERE id % 100 = 0");
    let (partial, partial_peak) = restore();
    let (nothing, nothing_peak) = restore();

    println!("records                          {records}");
    println!("baseline pg_dump --data-only     {pg_dump:.2}s (median of {runs})");
    println!(
        "backup                           {backup:.2}s = {:.2}x pg_dump (target <= 1.5x; median of {runs}, runs {}), peak {backup_peak:.0} MB",
        backup / pg_dump,
        ratios.iter().map(|r| format!("{r:.2}x")).collect::<Vec<_>>().join(" ")
    );
    println!("baseline psql \\copy from csv     {copy:.2}s");
    println!(
        "restore into empty table         {full:.2}s = {:.2}x \\copy (target <= 1.5x), peak {full_peak:.0} MB",
        full / copy
    );
    println!(
        "restore, 1% of rows differ       {partial:.2}s = {:.2}x the full restore (target <= 0.25x), peak {partial_peak:.0} MB",
        partial / full
    );
    println!(
        "restore, nothing differs         {nothing:.2}s = {:.2}x the backup, peak {nothing_peak:.0} MB",
        nothing / backup
    );
}
