//! MariaDB benchmark against the server's own tools, in the same run.
//!
//! ```text
//! cargo build --release --bins --examples && target/release/examples/bench_mysql [--records 1000000] [--binlog]
//! ```
//! `--binlog` runs the server with a binary log, as production servers usually are: the baselines
//! write it too, and a restore of few records can then prove itself by re-reading them.
//! Starts a throwaway MariaDB (as in the tests), fills a `contacts` table of about 280-byte rows
//! (id, email, names, phone, company_id, lifecycle_stage, owner, notes, created_at, updated_at)
//! and measures:
//! - backup versus `mariadb-dump --no-create-info crm contacts` to a file;
//! - restore into an empty table versus loading that dump with the `mariadb` client;
//! - restore when 1 % of rows differ, against the full restore;
//! - peak memory of each `rollback` run.

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/common/mysql.rs"]
mod mysql;

use std::process::{Command, Stdio};

use common::{arg, peak, rollback_bin, run};

fn main() {
    let records = arg("--records", 1_000_000);
    let bin = rollback_bin();
    let binlog = std::env::args().any(|a| a == "--binlog");
    let mut options = vec!["--innodb-buffer-pool-size=1G", "--innodb-log-file-size=512M"];
    if binlog {
        options.extend(["--log-bin=binlog", "--server-id=1"]);
    }
    let server = mysql::MariaServer::start_with(&options);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    eprintln!("generating {records} contacts …");
    server.sql("mysql", "CREATE DATABASE crm");
    server.sql(
        "crm",
        &format!(
            "CREATE TABLE companies (id bigint PRIMARY KEY, name text NOT NULL, updated_at datetime NOT NULL);
             INSERT INTO companies SELECT seq, concat('Company ', seq), now() FROM seq_1_to_1000;
             CREATE TABLE contacts (id bigint PRIMARY KEY, email varchar(255) NOT NULL, first_name varchar(100), last_name varchar(100),
               phone varchar(40), company_id bigint REFERENCES companies(id), lifecycle_stage varchar(40), owner varchar(255), notes text,
               created_at datetime NOT NULL, updated_at datetime NOT NULL);
             INSERT INTO contacts SELECT seq, concat('first', seq, '.last', seq, '@example.com'), concat('First', seq % 997),
               concat('Lastname', seq % 991), concat('+1 555 ', lpad(seq % 10000000, 7, '0')), 1 + seq % 1000,
               elt(1 + seq % 6, 'subscriber', 'lead', 'marketingqualifiedlead', 'salesqualifiedlead', 'opportunity', 'customer'),
               concat('owner', seq % 50, '@example.com'),
               substr(repeat('prefers email, renewal in Q1, asked about pricing and the legal review; ', 3), 1 + seq % 40, 120),
               '2024-01-01 00:00:00' + INTERVAL seq * 37 SECOND, '2025-06-01 00:00:00' + INTERVAL seq * 11 SECOND
             FROM seq_1_to_{records};
             ANALYZE TABLE contacts;"
        ),
    );
    let playbook = format!(
        "version: 1\nname: bench\nstore: {{ path: .rollback }}\nconnectors:\n  legacy:\n    type: mysql\n    url: {}\n    objects:\n      contacts: {{ table: contacts, id: id, modified: updated_at }}\nphases:\n  backup:\n    - backup: {{ from: legacy }}\n  restore:\n    - restore: {{ to: legacy, snapshot: latest, mode: replace, batch_size: 10000 }}\n",
        server.url("crm")
    );
    std::fs::write(root.join("rollback.yaml"), playbook).unwrap();
    let port = server.port.to_string();
    let client = |program: &str| {
        let mut c = Command::new(program);
        c.args(["--no-defaults", "-h", "127.0.0.1", "-u", "root", "-P", &port]);
        c
    };

    let dump = root.join("contacts.sql");
    let (mariadb_dump, _) = run(client("mariadb-dump")
        .args(["--no-create-info", "--result-file"])
        .arg(&dump)
        .args(["crm", "contacts"]));
    let (backup, _) = run(Command::new(&bin)
        .current_dir(root)
        .args(["-q", "--no-progress", "execute", "--phase", "backup"]));
    let backup_peak = peak(&bin, root);

    server.sql("crm", "TRUNCATE contacts");
    let (load, _) = run(client("mariadb").arg("crm").stdin(Stdio::from(std::fs::File::open(&dump).unwrap())));
    server.sql("crm", "TRUNCATE contacts");

    let restore = || {
        let (secs, _) = run(Command::new(&bin)
            .current_dir(root)
            .args(["-q", "--no-progress", "execute", "--phase", "restore"]));
        (secs, peak(&bin, root))
    };
    let (full, full_peak) = restore();
    server.sql("crm", "UPDATE contacts SET notes = 'changed in the new CRM' WHERE id % 100 = 0");
    let (partial, partial_peak) = restore();
    let (nothing, nothing_peak) = restore();

    println!(
        "records                          {records}{}",
        if binlog { " (binary log on)" } else { "" }
    );
    println!("baseline mariadb-dump            {mariadb_dump:.2}s");
    println!(
        "backup                           {backup:.2}s = {:.2}x mariadb-dump, peak {backup_peak:.0} MB",
        backup / mariadb_dump
    );
    println!("baseline mariadb < dump          {load:.2}s");
    println!(
        "restore into empty table         {full:.2}s = {:.2}x mariadb < dump, peak {full_peak:.0} MB",
        full / load
    );
    println!(
        "restore, 1% of rows differ       {partial:.2}s = {:.2}x the full restore, peak {partial_peak:.0} MB",
        partial / full
    );
    println!(
        "restore, nothing differs         {nothing:.2}s = {:.2}x the backup, peak {nothing_peak:.0} MB",
        nothing / backup
    );
}
