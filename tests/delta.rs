//! `export_delta` against real SQLite files: exactly the user traffic after the bookmark,
//! deletions found by an id scan, and no record counted twice across consecutive deltas.

mod common;

use common::Sandbox;

const PHASES: &str = "
  baseline:
    - backup: { from: newcrm }
  delta:
    - export_delta: { from: newcrm, since: cutover }
  next_delta:
    - export_delta: { from: newcrm, since: last }
";

async fn sql(s: &Sandbox, statements: &[&'static str]) {
    let db = s.db("newcrm").await;
    for statement in statements {
        sqlx::query(*statement).execute(&db).await.unwrap();
    }
    db.close().await;
}

/// The new CRM as a copy of the legacy one (the migration), with its baseline snapshot.
fn migrated_with_baseline(s: &Sandbox) {
    std::fs::copy(s.path("sandbox/legacy.db"), s.path("sandbox/newcrm.db")).unwrap();
    let text = s.read("rollback.yaml").replace("\nphases:\n", &format!("\nphases:{PHASES}"));
    s.write("rollback.yaml", &text);
    s.run(&["execute", "--phase", "baseline"]).ok();
}

fn latest_delta(s: &Sandbox) -> serde_json::Value {
    let out = s.run(&["snapshots", "show", "latest-delta", "--format", "json"]).ok();
    serde_json::from_str(&out.stdout()).unwrap()
}

fn counts(delta: &serde_json::Value, object: &str) -> (u64, u64, u64) {
    let d = &delta["objects"][object]["delta"];
    (
        d["created"].as_u64().unwrap(),
        d["changed"].as_u64().unwrap(),
        d["deleted"].as_u64().unwrap(),
    )
}

/// Created, changed and deleted records after cutover are counted exactly; a second delta from
/// the bookmark holds only what changed after the first.
#[tokio::test]
async fn delta_holds_exactly_the_traffic_since_the_bookmark() {
    let s = Sandbox::init(200);
    migrated_with_baseline(&s);
    sql(&s, &[
        "INSERT INTO contacts (id, email, created_at, updated_at) VALUES (5001, 'a@new.example', '2026-11-21T08:00:00Z', '2026-11-21T08:00:00Z')",
        "INSERT INTO contacts (id, email, created_at, updated_at) VALUES (5002, 'b@new.example', '2026-11-21T08:00:00Z', '2026-11-21T08:00:00Z')",
        "UPDATE contacts SET phone = '+49 30 1234567', updated_at = '2026-11-21T09:30:00Z' WHERE id IN (10, 11, 12)",
        "DELETE FROM deals WHERE id IN (1, 2)",
    ]).await;
    s.run(&["execute", "--phase", "delta"])
        .ok()
        .says("contacts +2 ~3 -0")
        .says("deals +0 ~0 -2");
    let first = latest_delta(&s);
    assert_eq!(first["kind"], "delta");
    assert_eq!(counts(&first, "contacts"), (2, 3, 0));
    assert_eq!(counts(&first, "deals"), (0, 0, 2));
    assert_eq!(counts(&first, "companies"), (0, 0, 0));
    assert_eq!(first["bookmark"], "2026-11-21T09:30:00Z");
    s.run(&["snapshots", "show", "latest-delta"])
        .ok()
        .says("created 2, changed 3, deleted 0");
    s.run(&["verify", "latest-delta", "--read-data"]).ok();

    // Nothing new: the records at the bookmark are not counted again.
    s.run(&["execute", "--phase", "next_delta"])
        .ok()
        .says("contacts +0 ~0 -0")
        .says("deals +0 ~0 -0");
    // One more change after the bookmark, and a deletion of a record created in the first delta.
    sql(
        &s,
        &[
            "UPDATE contacts SET first_name = 'Zoë', updated_at = '2026-11-21T10:00:00Z' WHERE id = 5001",
            "DELETE FROM contacts WHERE id = 5002",
        ],
    )
    .await;
    s.run(&["execute", "--phase", "next_delta"])
        .ok()
        .says("contacts +0 ~1 -1")
        .says("deals +0 ~0 -0");
}

/// A new record whose modified time predates the bookmark, and a change that did not touch the
/// modified column, are still caught by the full scan against the baseline.
#[tokio::test]
async fn full_scan_catches_changes_the_modified_column_misses() {
    let s = Sandbox::init(50);
    migrated_with_baseline(&s);
    sql(
        &s,
        &[
            "INSERT INTO companies (id, name, created_at, updated_at) VALUES (777, 'Backdated AG', '2025-01-01T00:00:00Z', '2025-01-01T00:00:00Z')",
            "UPDATE contacts SET phone = 'changed quietly' WHERE id = 4",
        ],
    )
    .await;
    s.run(&["execute", "--phase", "delta"])
        .ok()
        .says("companies +1 ~0 -0")
        .says("contacts +0 ~1 -0");
}
