//! The `mysql` connector against a real MariaDB server started by the test: every column type
//! survives backup → damage → restore → backup with equal digests, soft deletes, both freeze
//! methods with write probes (as the application's account and from the catalog), resume after
//! kill -9 during a restore, and the drill.

mod common;

use common::Sandbox;
use common::mysql::MariaServer;

/// A SuiteCRM-like schema with every column type the connector normalises: char(36) ids,
/// `deleted` flags, text in two character sets, and a generated column.
const SCHEMA: &str = r#"
CREATE TABLE companies (id bigint PRIMARY KEY, name varchar(200) NOT NULL, revenue decimal(14,2), updated_at datetime NOT NULL);
CREATE TABLE contacts (
  id char(36) PRIMARY KEY, email varchar(200) COLLATE utf8mb4_bin NOT NULL,
  first_name varchar(100) CHARACTER SET latin1 COLLATE latin1_german1_ci,
  company_id bigint, stage enum('lead', 'customer', 'evangelist'), active tinyint(1), score double, small float,
  amount decimal(20,6), big bigint unsigned, born date, seen datetime(6), stamp timestamp(3) NULL, at_time time, yr year,
  profile json, avatar blob, token varbinary(16), tags set('a', 'b', 'c'), deleted tinyint(1) NOT NULL DEFAULT 0,
  notes text, date_modified datetime NOT NULL,
  full_name varchar(120) GENERATED ALWAYS AS (concat(first_name, '!')) STORED,
  FOREIGN KEY (company_id) REFERENCES companies(id));
INSERT INTO companies SELECT seq, concat('Company ', seq), seq * 1000.5, '2026-01-01 00:00:00' + INTERVAL seq HOUR FROM seq_1_to_20;
INSERT INTO contacts (id, email, first_name, company_id, stage, active, score, small, amount, big, born, seen, stamp, at_time, yr,
  profile, avatar, token, tags, deleted, notes, date_modified)
SELECT concat(lpad(hex(seq), 8, '0'), '-0000-4000-8000-000000000000'), concat('c', seq, '@example.com'),
  CASE WHEN seq % 3 = 0 THEN 'Élodie "q" \\ tab\tx' ELSE concat('n', seq) END, 1 + seq % 20,
  elt(1 + seq % 3, 'lead', 'customer', 'evangelist'), CASE WHEN seq % 4 = 0 THEN NULL ELSE seq % 2 = 0 END, seq * 0.1, seq * 0.3,
  CASE WHEN seq % 5 = 0 THEN NULL ELSE seq * 1.10 END, 18446744073709551615 - seq, '1990-01-01' + INTERVAL seq DAY,
  '2025-05-05 10:00:00.25' + INTERVAL seq MINUTE, '2025-06-01 00:00:00.125' + INTERVAL seq SECOND, sec_to_time(seq * 37), 1990 + seq % 30,
  json_object('z', seq, 'a', json_array(true, null, 1.5)), unhex(concat('00ff', lpad(hex(seq), 4, '0'))),
  CASE WHEN seq % 2 = 0 THEN unhex('DEADBEEF') END, elt(1 + seq % 3, 'a,c', '', NULL), seq % 10 = 0,
  'line1\nline2\r\n', '2026-11-01 10:00:00' + INTERVAL seq SECOND
FROM seq_1_to_200;
CREATE USER 'crm_app'@'%' IDENTIFIED BY 'app-pass';
GRANT SELECT, INSERT ON crm.* TO 'crm_app'@'%';
GRANT UPDATE, DELETE ON crm.contacts TO 'crm_app'@'%';
GRANT UPDATE, DELETE ON crm.companies TO 'crm_app'@'%';
"#;

fn playbook(url: &str, freeze: &str) -> String {
    format!(
        "version: 1
name: maria
store: {{ path: .rollback }}
connectors:
  legacy:
    type: mysql
    url: {url}
    freeze: {freeze}
    objects:
      companies: {{ table: companies, id: id, modified: updated_at }}
      contacts: {{ table: contacts, id: id, modified: date_modified, soft_delete: deleted }}
phases:
  backup:
    - backup: {{ from: legacy }}
  restore:
    - restore: {{ to: legacy, snapshot: latest, mode: replace, batch_size: 50 }}
    - verify: {{ connector: legacy, against: latest }}
  freeze:
    - freeze: {{ connector: legacy }}
  unfreeze:
    - unfreeze: {{ connector: legacy }}
"
    )
}

fn crm(server: &MariaServer) -> String {
    server.sql("mysql", "CREATE DATABASE crm");
    server.sql("crm", SCHEMA);
    server.url("crm")
}

/// The application's account: the probe URL (a secret, so from a file) and a write as it.
fn app_write(server: &MariaServer, sql: &str) -> (bool, String) {
    server.try_sql_as("crm_app", "app-pass", "crm", sql)
}

/// Backup → damage (updates of every type, deletes, inserts, a soft delete) → restore leaves the
/// database equal to the snapshot, and a second backup has the same digests.
#[test]
fn every_column_type_round_trips() {
    let server = MariaServer::start();
    let url = crm(&server);
    let s = Sandbox::empty();
    s.write("rollback.yaml", &playbook(&url, "{ method: read_only }"));
    s.run(&["execute", "--phase", "backup"]).ok().says("contacts 200");
    let first = s.latest_root_digest();
    let manifest = s.manifest(s.snapshot_ids().last().unwrap());
    assert_eq!(
        manifest["objects"]["contacts"]["deleted"], 20,
        "soft-deleted rows are deleted records"
    );
    let row = "SELECT first_name, hex(first_name), json_equals(profile, '{\"a\": [true, null, 1.5], \"z\": 3}'), hex(avatar), tags, stamp, seen, big, active FROM contacts WHERE id LIKE '00000003-%'";
    let before = server.sql("crm", row);
    server.sql(
        "crm",
        "UPDATE contacts SET notes = 'damaged', profile = '{}', avatar = unhex('00'), token = NULL, amount = 1.5, born = '2000-01-01', \
         seen = now(6), stamp = now(), active = NOT active, score = 2.5, small = 1, stage = 'lead', email = 'X', tags = 'b', \
         at_time = '01:02:03', yr = 2000, big = 1, first_name = 'x' WHERE first_name LIKE 'n1%' OR id LIKE '00000003-%'; \
         DELETE FROM contacts WHERE first_name LIKE 'n2%'; \
         INSERT INTO contacts (id, email, date_modified) VALUES (uuid(), 'created@after', now()); \
         UPDATE contacts SET deleted = 1 WHERE first_name = 'n7'; UPDATE contacts SET deleted = 0 WHERE first_name = 'n10'; \
         UPDATE companies SET revenue = NULL, name = 'renamed' WHERE id = 3",
    );
    s.run(&["verify", "--connector", "legacy"]).exits(1).says("differs");
    s.run(&["execute", "--phase", "restore"])
        .ok()
        .says("companies +0 ~1 -0")
        .says("`legacy` equals snapshot");
    assert_eq!(server.sql("crm", "SELECT count(*), sum(deleted) FROM contacts").trim(), "200\t20");
    assert_eq!(server.sql("crm", row), before, "a row with every type is back byte for byte");
    s.run(&["execute", "--phase", "backup"]).ok();
    assert_eq!(s.latest_root_digest(), first, "backup → restore → backup gives the same digests");
}

/// A read-only freeze refuses the application's writes while the tool still restores; unfreeze
/// restores the prior setting and writes go through again. The probe writes as the application.
#[test]
fn read_only_freeze_and_probe() {
    let server = MariaServer::start();
    let url = crm(&server);
    let s = Sandbox::empty();
    s.write("app.url", &server.url_as("crm_app", "app-pass", "crm"));
    s.write(
        "rollback.yaml",
        &playbook(&url, "{ method: read_only, probe_url: \"${file:app.url}\" }"),
    );
    s.run(&["execute", "--phase", "backup"]).ok();
    let write = "UPDATE contacts SET notes = 'user' WHERE first_name = 'n1'";
    assert!(app_write(&server, write).0, "writable before");
    s.run(&["execute", "--phase", "freeze"])
        .ok()
        .says("frozen (read_only); a user write is refused")
        .never_says("app-pass");
    let (ok, text) = app_write(&server, write);
    assert!(!ok && text.contains("read-only"), "{text}");
    s.run(&["execute", "--phase", "freeze"]).ok().says("already frozen");
    // The tool still writes to the frozen database.
    s.run(&["execute", "--phase", "restore"]).ok().says("contacts +0 ~1 -0");
    s.run(&["status"]).ok().says("FROZEN  connector `legacy`");
    s.run(&["execute", "--phase", "unfreeze"]).ok().says("a user write goes through");
    assert!(app_write(&server, write).0, "writable after");
    assert_eq!(server.sql("mysql", "SELECT @@GLOBAL.read_only").trim(), "0");
    s.run(&["execute", "--phase", "unfreeze"]).ok().says("not frozen");
    let journal = std::fs::read(s.path(".rollback/journal.db")).unwrap();
    assert!(
        !String::from_utf8_lossy(&journal).contains("app-pass"),
        "the probe's password never reaches the journal"
    );
}

/// A revoke freeze takes INSERT/UPDATE/DELETE from the account at every level it holds them
/// (database and table grants here), ends its sessions, and unfreeze grants back exactly those.
/// The probe writes as the application, or reads the grants when no probe account is given; an
/// unknown account is refused with nothing revoked.
#[test]
fn revoke_freeze_and_probe() {
    let server = MariaServer::start();
    let url = crm(&server);
    let s = Sandbox::empty();
    s.write("app.url", &server.url_as("crm_app", "app-pass", "crm"));
    let grants = "SHOW GRANTS FOR 'crm_app'@'%'";
    let before = server.sql("mysql", grants);
    assert!(before.contains("GRANT SELECT, INSERT ON `crm`.*"), "{before}");
    for freeze in [
        "{ method: revoke, accounts: [\"crm_app@%\"], probe_url: \"${file:app.url}\" }",
        "{ method: revoke, accounts: [crm_app] }",
    ] {
        s.write("rollback.yaml", &playbook(&url, freeze));
        // A session of the application already open when the freeze comes is ended.
        let mut open = std::process::Command::new("mariadb")
            .args(["--no-defaults", "-h", "127.0.0.1", "-u", "crm_app", "-papp-pass", "-P"])
            .arg(server.port.to_string())
            .args(["crm", "-e", "SELECT sleep(60)"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while !server
            .sql(
                "mysql",
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE USER = 'crm_app'",
            )
            .starts_with('1')
        {
            assert!(started.elapsed().as_secs() < 10, "the application session did not open");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        s.run(&["execute", "--phase", "freeze"])
            .ok()
            .says("frozen (revoke); a user write is refused");
        let ended = open.wait().unwrap();
        assert!(!ended.success(), "the open session was ended by the freeze");
        assert!(started.elapsed().as_secs() < 30);
        for write in [
            "DELETE FROM contacts WHERE 1 = 0",
            "INSERT INTO companies (id, name, updated_at) VALUES (99, 'x', now())",
        ] {
            let (ok, text) = app_write(&server, write);
            assert!(!ok && text.contains("denied"), "{write}: {text}");
        }
        assert!(app_write(&server, "SELECT count(*) FROM contacts").0, "reads still work");
        let frozen = server.sql("mysql", grants);
        assert!(frozen.contains("GRANT SELECT ON `crm`.*") && !frozen.contains("DELETE"), "{frozen}");
        s.run(&["execute", "--phase", "unfreeze"]).ok().says("a user write goes through");
        assert_eq!(server.sql("mysql", grants), before, "exactly the recorded grants are back");
        assert!(app_write(&server, "DELETE FROM contacts WHERE 1 = 0").0);
    }

    s.write("rollback.yaml", &playbook(&url, "{ method: revoke, accounts: [nobody] }"));
    s.run(&["execute", "--phase", "freeze"])
        .exits(1)
        .says("account `nobody@%` does not exist")
        .says("hint: fix `freeze.accounts`");
    assert_eq!(server.sql("mysql", grants), before, "a refused freeze revokes nothing");
}

/// kill -9 during a restore of 100,000 rows, then `--resume`: the restore finishes from its
/// checkpoints and the database equals the snapshot.
#[tokio::test(flavor = "multi_thread")]
async fn kill_during_restore_then_resume() {
    let server = MariaServer::start();
    server.sql("mysql", "CREATE DATABASE crm");
    server.sql(
        "crm",
        "CREATE TABLE companies (id bigint PRIMARY KEY, name text, updated_at datetime NOT NULL); \
         CREATE TABLE contacts (id bigint PRIMARY KEY, email text, notes text, deleted tinyint(1) NOT NULL DEFAULT 0, date_modified datetime NOT NULL); \
         INSERT INTO companies SELECT seq, concat('c', seq), now() FROM seq_1_to_10; \
         INSERT INTO contacts SELECT seq, concat('p', seq, '@example.com'), repeat('n', 100), 0, now() FROM seq_1_to_100000;",
    );
    let s = Sandbox::empty();
    s.write(
        "rollback.yaml",
        &playbook(&server.url("crm"), "{ method: read_only }").replace("batch_size: 50", "batch_size: 1000"),
    );
    // Read in key ranges, a connection each: every row is in the snapshot once.
    server.sql("crm", "ANALYZE TABLE contacts");
    s.run(&["execute", "--phase", "backup"]).ok().says("contacts 100000");
    server.sql("crm", "TRUNCATE contacts");
    let mut child = s.spawn(&["execute", "--phase", "restore"]);
    let killed = s.kill_at_checkpoint(&mut child, "contacts.upserted").await;
    assert!(killed, "the restore finished before it could be killed");
    let partial: i64 = server.sql("crm", "SELECT count(*) FROM contacts").trim().parse().unwrap();
    assert!(partial > 0 && partial < 100_000, "killed mid-restore with {partial} rows");
    let out = s.run(&["execute", "--phase", "restore", "--resume", "--format", "json"]).ok();
    let summary: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert!(!summary["steps"][0]["summary"].as_str().unwrap().contains("+100000"), "{summary}");
    assert_eq!(server.sql("crm", "SELECT count(*) FROM contacts").trim(), "100000");
    s.run(&["verify", "--connector", "legacy"]).ok();
}

/// The quickstart drill with the legacy CRM on MariaDB (the new CRM a SQLite sandbox): the
/// rehearsal passes every proof, also when the migration damaged the legacy CRM.
#[test]
fn drill_with_a_mariadb_legacy_crm() {
    let s = Sandbox::init(2000);
    let server = MariaServer::start();
    server.sql("mysql", "CREATE DATABASE legacy");
    server.sql(
        "legacy",
        "CREATE TABLE companies (id bigint PRIMARY KEY, name varchar(255) NOT NULL, domain text, industry text, employees int, \
           annual_revenue decimal(14,2), country text, created_at datetime(3) NOT NULL, updated_at datetime(3) NOT NULL); \
         CREATE TABLE contacts (id bigint PRIMARY KEY, email varchar(255) NOT NULL, first_name text, last_name text, phone text, \
           company_id bigint REFERENCES companies(id), lifecycle_stage text, owner text, notes text, created_at datetime(3) NOT NULL, \
           updated_at datetime(3) NOT NULL); \
         CREATE TABLE deals (id bigint PRIMARY KEY, name text NOT NULL, company_id bigint REFERENCES companies(id), \
           contact_id bigint REFERENCES contacts(id), stage text, amount decimal(12,2), currency text, close_date date, \
           created_at datetime(3) NOT NULL, updated_at datetime(3) NOT NULL);",
    );
    for table in ["companies", "contacts", "deals"] {
        let out = std::process::Command::new("sqlite3")
            .arg(s.path("sandbox/legacy.db"))
            .args([&format!(".mode insert {table}"), &format!("SELECT * FROM {table}")])
            .output()
            .unwrap();
        assert!(out.status.success());
        let inserts = String::from_utf8(out.stdout).unwrap();
        // SQLite's literals: quotes doubled, backslashes as they are; RFC 3339 times.
        let inserts = inserts.replace("Z',", "',").replace("Z');", "');");
        server.sql("legacy", &format!("SET sql_mode = 'NO_BACKSLASH_ESCAPES'; {inserts}"));
    }
    let text = s.read("rollback.yaml").replace(
        "    type: sqlite\n    path: sandbox/legacy.db",
        &format!("    type: mysql\n    url: {}", server.url("legacy")),
    );
    let text = text.replacen("freeze: { method: triggers }", "freeze: { method: read_only }", 1);
    s.write("rollback.yaml", &text);
    let out = s.run(&["drill", "--yes", "--format", "json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    let proofs = report["proofs"].as_array().unwrap();
    assert_eq!(proofs.len(), 5, "{report}");
    assert!(proofs.iter().all(|p| p["ok"] == true), "{proofs:?}");
    s.run(&["drill", "--yes", "--damage"]).ok().says("drill passed");
}

/// `plan` checks the account's privileges for each step: root is ready; an account that may
/// only read is not, and the plan names each missing privilege and the freeze's needs.
#[test]
fn plan_checks_privileges() {
    let server = MariaServer::start();
    let url = crm(&server);
    let s = Sandbox::empty();
    s.write("rollback.yaml", &playbook(&url, "{ method: revoke, accounts: [crm_app] }"));
    s.run(&["execute", "--phase", "backup"]).ok();
    s.run(&["plan", "--phase", "restore"])
        .ok()
        .says("READY")
        .says("privileges: account root@127.0.0.1 holds SELECT, INSERT, UPDATE, DELETE")
        .says("contacts 200");
    s.run(&["plan", "--phase", "freeze"]).ok().says("holds the GRANT OPTION");
    server.sql(
        "mysql",
        "CREATE USER 'reader'@'%' IDENTIFIED BY 'r'; GRANT SELECT ON crm.* TO 'reader'@'%'",
    );
    s.write(
        "rollback.yaml",
        &playbook(&server.url_as("reader", "r", "crm"), "{ method: read_only }"),
    );
    s.run(&["plan", "--phase", "backup"]).ok().says("holds SELECT");
    s.run(&["plan", "--phase", "restore"])
        .exits(3)
        .says("NOT READY")
        .says("lacks INSERT on `crm`.`companies`")
        .says("DELETE on `crm`.`contacts`")
        .never_says("password");
    s.run(&["plan", "--phase", "freeze"])
        .exits(3)
        .says("SUPER (MariaDB: READ_ONLY ADMIN) to set read_only");
}

/// What legacy CRM data holds and MySQL allows: zero and invalid dates, a JSON `true`, a column
/// stamped `ON UPDATE CURRENT_TIMESTAMP`, and a unique key besides the id. All come back as the
/// snapshot holds them; a record whose restore would clash with another row's unique key fails
/// the batch instead of overwriting that row.
#[test]
fn awkward_values_and_keys_round_trip() {
    let server = MariaServer::start();
    server.sql("mysql", "CREATE DATABASE crm");
    server.sql(
        "crm",
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'; \
         CREATE TABLE people (id int PRIMARY KEY, email varchar(100) NOT NULL UNIQUE, seen datetime, born date, flags json, \
           stamped timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP); \
         INSERT INTO people VALUES (1, 'x@example.com', '0000-00-00 00:00:00', '2024-00-15', 'true', '2025-01-01 00:00:00'), \
           (2, 'y@example.com', '2024-02-31 10:00:00', '0000-00-00', '[true, null]', '2025-01-02 00:00:00'), \
           (4, 'z@example.com', NULL, NULL, NULL, '2025-01-03 00:00:00');",
    );
    let s = Sandbox::empty();
    s.write(
        "rollback.yaml",
        &format!(
            "version: 1\nname: awkward\nstore: {{ path: .rollback }}\nconnectors:\n  legacy:\n    type: mysql\n    url: {}\n    objects:\n      people: {{ table: people }}\nphases:\n  backup:\n    - backup: {{ from: legacy }}\n  restore:\n    - restore: {{ to: legacy, snapshot: latest, mode: replace }}\n",
            server.url("crm")
        ),
    );
    s.run(&["execute", "--phase", "backup"]).ok().says("people 3");
    let first = s.latest_root_digest();
    let rows = "SELECT id, email, seen, born, json_compact(flags), stamped FROM people ORDER BY id";
    let before = server.sql("crm", rows);
    server.sql(
        "crm",
        "UPDATE people SET seen = now(), born = '2000-01-01', flags = 'false' WHERE id IN (1, 2); DELETE FROM people WHERE id = 4",
    );
    s.run(&["execute", "--phase", "restore"]).ok().says("people +1 ~2 -0");
    assert_eq!(server.sql("crm", rows), before, "every value is back as it was, the stamp too");
    s.run(&["execute", "--phase", "backup"]).ok();
    assert_eq!(s.latest_root_digest(), first);

    // Record 1 is gone and another row took its email: restoring record 1 would clash.
    server.sql(
        "crm",
        "DELETE FROM people WHERE id = 1; INSERT INTO people (id, email) VALUES (3, 'x@example.com')",
    );
    s.run(&["execute", "--phase", "restore"])
        .exits(1)
        .says("Duplicate entry 'x@example.com'");
    assert_eq!(
        server
            .sql("crm", "SELECT id, email FROM people WHERE email = 'x@example.com'")
            .trim(),
        "3\tx@example.com",
        "the other row is not overwritten"
    );
    // With the clash gone, the restore goes through.
    server.sql("crm", "DELETE FROM people WHERE id = 3");
    s.run(&["execute", "--phase", "restore"]).ok().says("people +1 ~0 -0");
    assert_eq!(server.sql("crm", rows), before);
}

/// A server that refuses the connection, or the password, is reported at once with the reason
/// and a hint (the connection pool alone would wait out its timeout and report only that).
#[test]
fn unreachable_server_and_bad_password_fail_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = Sandbox::empty();
    s.write(
        "rollback.yaml",
        &playbook(&format!("mysql://root@127.0.0.1:{port}/crm"), "{ method: read_only }"),
    );
    let started = std::time::Instant::now();
    s.run(&["execute", "--phase", "backup"])
        .exits(1)
        .says("Connection refused")
        .says("hint: is the server up");
    assert!(started.elapsed().as_secs() < 10, "no wait for a pool timeout");
    let server = MariaServer::start();
    server.sql("mysql", "CREATE DATABASE crm");
    s.write(
        "rollback.yaml",
        &playbook(&server.url_as("root", "wrong", "crm"), "{ method: read_only }"),
    );
    s.run(&["execute", "--phase", "backup"])
        .exits(1)
        .says("Access denied")
        .says("check the `url`");
}

/// On MariaDB with a binary log, the GTID sequence less the tool's own commits is the
/// outside-writes mark: the tool's writes leave it as it was, another session's write moves it.
/// So a restore of few records proves itself by re-reading them.
#[tokio::test(flavor = "multi_thread")]
async fn binlog_gtids_mark_outside_writes() {
    use rollback::connectors::{self, ApplyMode};
    let server = MariaServer::start_with(&["--innodb-buffer-pool-size=128M", "--log-bin=binlog", "--server-id=1"]);
    let url = crm(&server);
    let s = Sandbox::empty();
    s.write("rollback.yaml", &playbook(&url, "{ method: read_only }"));
    let playbook = rollback::playbook::Playbook::load(&s.path("rollback.yaml"), None).unwrap();
    let legacy = connectors::build(playbook.connector("legacy").unwrap()).await.unwrap();
    let before = legacy.outside_writes_mark().await.expect("a mark with a binary log");
    let mut companies = Vec::new();
    let mut pages = legacy.export("companies", None);
    while let Some(page) = futures::StreamExt::next(&mut pages).await {
        companies.extend(page.unwrap());
    }
    legacy.apply("companies", &companies[..3], ApplyMode::Upsert).await.unwrap();
    legacy.delete("companies", &["999".to_string()]).await.unwrap();
    assert_eq!(legacy.outside_writes_mark().await, Some(before), "the tool's own writes");
    server.sql("crm", "UPDATE contacts SET notes = 'outside' WHERE first_name = 'n5'");
    assert_ne!(legacy.outside_writes_mark().await, Some(before), "another session's write");

    s.run(&["execute", "--phase", "backup"]).ok();
    server.sql("crm", "UPDATE companies SET name = 'renamed' WHERE id = 3");
    s.run(&["execute", "--phase", "restore"]).ok().says("companies +0 ~1 -0");
    let proof = s.latest_proof();
    assert!(proof.starts_with("re-read"), "{proof}");
}
