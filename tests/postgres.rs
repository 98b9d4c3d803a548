//! The `postgres` connector against a real PostgreSQL server started by the test: every column
//! type survives backup → damage → restore → backup with equal digests, soft deletes, both
//! freeze methods with write probes, resume after kill -9 during a restore, and the drill.

mod common;

use common::Sandbox;
use common::postgres::PgServer;

/// A CRM schema with every column type the connector normalises.
const SCHEMA: &str = r#"
CREATE TYPE stage AS ENUM ('lead', 'customer', 'evangelist');
CREATE TABLE companies (id bigint PRIMARY KEY, name text NOT NULL, revenue numeric(14,2), updated_at timestamptz NOT NULL);
CREATE TABLE contacts (
  id uuid PRIMARY KEY, email varchar(200) COLLATE "C" NOT NULL, first_name text COLLATE "und-x-icu", company_id bigint REFERENCES companies(id),
  stage stage, active boolean, score double precision, small real, amount numeric, born date, seen timestamp, tags text[], nums int[],
  profile jsonb, raw json, avatar bytea, sid char(36), deleted boolean NOT NULL DEFAULT false, notes text,
  updated_at timestamptz NOT NULL, full_name text GENERATED ALWAYS AS (first_name || '!') STORED);
INSERT INTO companies SELECT g, 'Company ' || g, g * 1000.5, '2026-01-01T00:00:00Z'::timestamptz + g * interval '1 hour' FROM generate_series(1, 20) g;
INSERT INTO contacts (id, email, first_name, company_id, stage, active, score, small, amount, born, seen, tags, nums, profile, raw, avatar, sid, deleted, notes, updated_at)
SELECT md5(g::text)::uuid, 'c' || g || '@example.com', CASE WHEN g % 3 = 0 THEN E'Élodie "q" \\ tab\tx' ELSE 'n' || g END, 1 + g % 20,
  (ARRAY['lead','customer','evangelist'])[1 + g % 3]::stage, CASE WHEN g % 4 = 0 THEN NULL ELSE g % 2 = 0 END, g * 0.1, (g * 0.3)::real,
  CASE WHEN g % 5 = 0 THEN NULL ELSE g * 1.10 END, '1990-01-01'::date + g, '2025-05-05 10:00:00.25'::timestamp + g * interval '1 minute',
  ARRAY['a b', 'c"d', NULL], ARRAY[g, g + 1], jsonb_build_object('z', g, 'a', jsonb_build_array(true, null, 1.5)),
  '{"b": 1,  "a": "x\ny"}'::json, decode('00ff' || lpad(to_hex(g), 4, '0'), 'hex'), lpad(g::text, 36, '0'), g % 10 = 0,
  E'line1\nline2\r\n', '2026-11-01T10:00:00Z'::timestamptz + g * interval '1 second'
FROM generate_series(1, 200) g;
CREATE ROLE crm_app LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON companies, contacts TO crm_app;
"#;

fn playbook(url: &str, freeze: &str) -> String {
    format!(
        "version: 1
name: pg
cutover: 2026-01-01T00:00:00Z
store: {{ path: .rollback }}
connectors:
  legacy:
    type: postgres
    url: {url}
    freeze: {freeze}
    objects:
      companies: {{ table: companies, id: id, modified: updated_at }}
      contacts: {{ table: contacts, schema: public, id: id, modified: updated_at, soft_delete: deleted }}
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
  delta:
    - export_delta: {{ from: legacy, since: last }}
"
    )
}

fn crm(server: &PgServer) -> String {
    server.psql("postgres", "CREATE DATABASE crm");
    server.psql("crm", SCHEMA);
    server.url("crm")
}

/// Backup → damage (updates of every type, deletes, inserts, a soft delete) → restore leaves the
/// database equal to the snapshot, and a second backup has the same digests.
#[test]
fn every_column_type_round_trips() {
    let server = PgServer::start();
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
    server.psql(
        "crm",
        "UPDATE contacts SET notes = 'damaged', tags = ARRAY['x'], nums = NULL, profile = '{}', raw = '[]', avatar = '\\x00', \
         amount = 1.5, born = '2000-01-01', seen = now(), active = NOT active, score = 2.5, small = 1, stage = 'lead', \
         email = 'X', sid = NULL WHERE first_name LIKE 'n1%'; \
         DELETE FROM contacts WHERE first_name LIKE 'n2%'; \
         INSERT INTO contacts (id, email, updated_at) VALUES (gen_random_uuid(), 'created@after', now()); \
         UPDATE contacts SET deleted = true WHERE first_name = 'n7'; UPDATE contacts SET deleted = false WHERE first_name = 'n10'; \
         UPDATE companies SET revenue = NULL, name = 'renamed' WHERE id = 3",
    );
    s.run(&["verify", "--connector", "legacy"]).exits(1).says("differs");
    s.run(&["execute", "--phase", "restore"])
        .ok()
        .says("companies +0 ~1 -0")
        .says("`legacy` equals snapshot");
    assert_eq!(
        server
            .psql("crm", "SELECT count(*), count(*) FILTER (WHERE deleted) FROM contacts")
            .trim(),
        "200|20"
    );
    assert_eq!(
        server
            .psql(
                "crm",
                "SELECT first_name, tags::text, profile::text FROM contacts WHERE first_name = 'n1'"
            )
            .trim(),
        r#"n1|{"a b","c\"d",NULL}|{"a": [true, null, 1.5], "z": 1}"#
    );
    s.run(&["execute", "--phase", "backup"]).ok();
    assert_eq!(s.latest_root_digest(), first, "backup → restore → backup gives the same digests");
}

/// A read-only freeze refuses the application's writes (sessions already open are ended) while
/// the tool still restores; unfreeze restores the prior setting and writes go through again.
#[test]
fn read_only_freeze_and_probe() {
    let server = PgServer::start();
    let url = crm(&server);
    let s = Sandbox::empty();
    s.write("rollback.yaml", &playbook(&url, "{ method: read_only }"));
    s.run(&["execute", "--phase", "backup"]).ok();
    let write = "UPDATE contacts SET notes = 'user' WHERE first_name = 'n1'";
    assert!(server.try_psql_as("crm_app", "crm", write).0, "writable before");
    s.run(&["execute", "--phase", "freeze"])
        .ok()
        .says("frozen (read_only); a user write is refused");
    let (ok, text) = server.try_psql_as("crm_app", "crm", write);
    assert!(!ok && text.contains("read-only transaction"), "{text}");
    s.run(&["execute", "--phase", "freeze"]).ok().says("already frozen");
    // The tool still writes to the frozen database.
    s.run(&["execute", "--phase", "restore"]).ok().says("contacts +0 ~1 -0");
    s.run(&["status"]).ok().says("FROZEN  connector `legacy`");
    s.run(&["execute", "--phase", "unfreeze"]).ok().says("a user write goes through");
    assert!(server.try_psql_as("crm_app", "crm", write).0, "writable after");
    assert_eq!(
        server
            .psql(
                "crm",
                "SELECT count(*) FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = 'crm')"
            )
            .trim(),
        "0",
        "the database setting is reset as it was"
    );
    s.run(&["execute", "--phase", "unfreeze"]).ok().says("not frozen");
}

/// A revoke freeze takes INSERT/UPDATE/DELETE from the named role (recording its grants) and
/// unfreeze grants back exactly those; an unknown role is refused with a hint.
#[test]
fn revoke_freeze_and_probe() {
    let server = PgServer::start();
    let url = crm(&server);
    let s = Sandbox::empty();
    s.write("rollback.yaml", &playbook(&url, "{ method: revoke, roles: [crm_app] }"));
    let grants = "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.role_table_grants WHERE grantee = 'crm_app' AND table_name = 'contacts'";
    let before = server.psql("crm", grants);
    assert_eq!(before.trim(), "DELETE,INSERT,SELECT,UPDATE");
    s.run(&["execute", "--phase", "freeze"]).ok().says("frozen (revoke)");
    let (ok, text) = server.try_psql_as("crm_app", "crm", "DELETE FROM contacts WHERE false");
    assert!(!ok && text.contains("permission denied"), "{text}");
    assert_eq!(server.psql("crm", grants).trim(), "SELECT");
    s.run(&["execute", "--phase", "unfreeze"]).ok().says("a user write goes through");
    assert_eq!(server.psql("crm", grants), before);

    s.write("rollback.yaml", &playbook(&url, "{ method: revoke, roles: [nobody] }"));
    s.run(&["execute", "--phase", "freeze"])
        .exits(1)
        .says("role `nobody` does not exist")
        .says("hint: fix `freeze.roles`");
    assert_eq!(server.psql("crm", grants), before, "a refused freeze revokes nothing");
}

/// kill -9 during a restore of 100,000 rows, then `--resume`: the restore finishes from its
/// checkpoints and the database equals the snapshot.
#[tokio::test(flavor = "multi_thread")]
async fn kill_during_restore_then_resume() {
    let server = PgServer::start();
    server.psql("postgres", "CREATE DATABASE crm");
    server.psql(
        "crm",
        "CREATE TABLE companies (id bigint PRIMARY KEY, name text, updated_at timestamptz NOT NULL); \
         CREATE TABLE contacts (id bigint PRIMARY KEY, email text, notes text, deleted boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL); \
         INSERT INTO companies SELECT g, 'c' || g, now() FROM generate_series(1, 10) g; \
         INSERT INTO contacts SELECT g, 'p' || g || '@example.com', repeat('n', 100), false, now() FROM generate_series(1, 100000) g;",
    );
    let s = Sandbox::empty();
    s.write(
        "rollback.yaml",
        &playbook(&server.url("crm"), "{ method: read_only }").replace("batch_size: 50", "batch_size: 1000"),
    );
    s.run(&["execute", "--phase", "backup"]).ok();
    server.psql("crm", "TRUNCATE contacts");
    let mut child = s.spawn(&["execute", "--phase", "restore"]);
    let killed = s.kill_at_checkpoint(&mut child, "contacts.upserted").await;
    assert!(killed, "the restore finished before it could be killed");
    let partial: i64 = server.psql("crm", "SELECT count(*) FROM contacts").trim().parse().unwrap();
    assert!(partial > 0 && partial < 100_000, "killed mid-restore with {partial} rows");
    let out = s.run(&["execute", "--phase", "restore", "--resume", "--format", "json"]).ok();
    let summary: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert!(!summary["steps"][0]["summary"].as_str().unwrap().contains("+100000"), "{summary}");
    assert_eq!(server.psql("crm", "SELECT count(*) FROM contacts").trim(), "100000");
    s.run(&["verify", "--connector", "legacy"]).ok();
}

/// The quickstart drill with the legacy CRM on PostgreSQL (the new CRM a SQLite sandbox): the
/// rehearsal passes every proof, also when the migration damaged the legacy CRM.
#[test]
fn drill_with_a_postgres_legacy_crm() {
    let s = Sandbox::init(2000);
    let server = PgServer::start();
    server.psql("postgres", "CREATE DATABASE legacy");
    server.psql(
        "legacy",
        "CREATE TABLE companies (id bigint PRIMARY KEY, name text NOT NULL, domain text, industry text, employees integer, \
           annual_revenue numeric(14,2), country text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL); \
         CREATE TABLE contacts (id bigint PRIMARY KEY, email text NOT NULL, first_name text, last_name text, phone text, \
           company_id bigint REFERENCES companies(id), lifecycle_stage text, owner text, notes text, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL); \
         CREATE TABLE deals (id bigint PRIMARY KEY, name text NOT NULL, company_id bigint REFERENCES companies(id), contact_id bigint REFERENCES contacts(id), \
           stage text, amount numeric(12,2), currency text, close_date date, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);",
    );
    for table in ["companies", "contacts", "deals"] {
        let csv = s.path(&format!("{table}.csv"));
        let out = std::process::Command::new("sqlite3")
            .arg(s.path("sandbox/legacy.db"))
            .args([".mode csv", &format!("SELECT * FROM {table}")])
            .output()
            .unwrap();
        std::fs::write(&csv, &out.stdout).unwrap();
        server.psql("legacy", &format!("\\copy {table} FROM '{}' csv", csv.display()));
    }
    let text = s.read("rollback.yaml").replace(
        "    type: sqlite\n    path: sandbox/legacy.db",
        &format!("    type: postgres\n    url: {}", server.url("legacy")),
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

/// `plan` checks the role's privileges for each step: the superuser is ready; a role that may
/// only read is not, and the plan names each missing privilege and the freeze's needs.
#[test]
fn plan_checks_privileges() {
    let server = PgServer::start();
    let url = crm(&server);
    let s = Sandbox::empty();
    s.write("rollback.yaml", &playbook(&url, "{ method: revoke, roles: [crm_app] }"));
    s.run(&["execute", "--phase", "backup"]).ok();
    s.run(&["plan", "--phase", "restore"])
        .ok()
        .says("READY")
        .says("privileges: role postgres holds SELECT, INSERT, UPDATE, DELETE");
    s.run(&["plan", "--phase", "freeze"]).ok().says("holds superuser");
    server.psql(
        "crm",
        "CREATE ROLE reader LOGIN; GRANT SELECT ON companies, contacts TO reader; REVOKE TEMP ON DATABASE crm FROM PUBLIC",
    );
    s.write(
        "rollback.yaml",
        &playbook(&server.url_as("reader", "crm"), "{ method: revoke, roles: [crm_app] }"),
    );
    s.run(&["plan", "--phase", "backup"]).ok().says("holds SELECT");
    s.run(&["plan", "--phase", "restore"])
        .exits(3)
        .says("NOT READY")
        .says("lacks INSERT on \"public\".\"companies\"")
        .says("TEMP on the database");
    s.run(&["plan", "--phase", "freeze"])
        .exits(3)
        .says("ownership of \"public\".\"contacts\"")
        .says("membership in role `crm_app`");
}

/// A restore that wrote few records proves itself by re-reading them only when nothing else
/// wrote since its comparison: the cluster's next transaction id, less the tool's own, says so.
/// A write from another session during the restore (here a trigger writing through dblink) is
/// seen, and the full re-export that follows finds the record it changed.
#[test]
fn few_writes_are_reread_unless_someone_else_wrote() {
    let server = PgServer::start();
    let url = crm(&server);
    let s = Sandbox::empty();
    s.write("rollback.yaml", &playbook(&url, "{ method: read_only }"));
    s.run(&["execute", "--phase", "backup"]).ok();
    server.psql("crm", "UPDATE companies SET name = 'renamed' WHERE id = 3");
    s.run(&["execute", "--phase", "restore"]).ok().says("companies +0 ~1 -0");
    assert!(s.latest_proof().starts_with("re-read"), "{}", s.latest_proof());

    server.psql(
        "crm",
        &format!(
            "CREATE EXTENSION dblink; \
             CREATE FUNCTION sneak() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               PERFORM dblink_exec('host=127.0.0.1 port={} user=postgres dbname=crm', \
                 'UPDATE contacts SET notes = ''sneaky'' WHERE first_name = ''n5'''); RETURN NULL; END $$; \
             CREATE TRIGGER sneak AFTER UPDATE ON companies FOR EACH STATEMENT EXECUTE FUNCTION sneak(); \
             UPDATE companies SET name = 'renamed' WHERE id = 3",
            server.port
        ),
    );
    server.psql("crm", "UPDATE contacts SET notes = 'line1\nline2\r\n' WHERE first_name = 'n5'");
    s.run(&["execute", "--phase", "restore"])
        .exits(1)
        .says("still differs from snapshot")
        .says("1 changed");
    assert_eq!(s.latest_proof(), "", "a failed step has no proof");
}

/// A soft delete is a deletion in a delta, counted once: the next delta finds nothing new.
#[test]
fn soft_deletes_count_once_in_deltas() {
    let server = PgServer::start();
    let url = crm(&server);
    let s = Sandbox::empty();
    s.write("rollback.yaml", &playbook(&url, "{ method: read_only }"));
    s.run(&["execute", "--phase", "backup"]).ok();
    server.psql(
        "crm",
        "UPDATE contacts SET deleted = true WHERE first_name = 'n7'; UPDATE contacts SET notes = 'x' WHERE first_name = 'n8'",
    );
    s.run(&["execute", "--phase", "delta"]).ok().says("contacts +0 ~1 -1");
    s.run(&["execute", "--phase", "delta"]).ok().says("contacts +0 ~0 -0");
    server.psql("crm", "UPDATE contacts SET deleted = false WHERE first_name = 'n7'");
    s.run(&["execute", "--phase", "delta"]).ok().says("contacts +0 ~1 -0");
    s.run(&["execute", "--phase", "delta"]).ok().says("contacts +0 ~0 -0");
}

/// A server that refuses the connection is reported at once with the reason and a hint (the
/// connection pool alone would wait out its timeout and report only that).
#[test]
fn unreachable_server_fails_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = Sandbox::empty();
    s.write(
        "rollback.yaml",
        &playbook(&format!("postgres://postgres@127.0.0.1:{port}/crm"), "{ method: read_only }"),
    );
    let started = std::time::Instant::now();
    s.run(&["execute", "--phase", "backup"])
        .exits(1)
        .says("Connection refused")
        .says("hint: is the server up");
    assert!(started.elapsed().as_secs() < 10, "no wait for a pool timeout");
}
