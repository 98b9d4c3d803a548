//! Freeze and unfreeze against real SQLite files and a files connector: receipts in the journal,
//! user writes refused while frozen and accepted after, the tool still writing while frozen.

mod common;

use common::Sandbox;

const PHASES: &str = "
  freeze:
    - freeze: { connector: legacy }
  unfreeze:
    - unfreeze: { connector: legacy }
  restore:
    - restore: { to: legacy }
";

async fn user_write(s: &Sandbox) -> Result<u64, String> {
    let db = s.db("legacy").await;
    let r = sqlx::query("UPDATE contacts SET phone = '+1 555 0199' WHERE id = 1")
        .execute(&db)
        .await;
    db.close().await;
    r.map(|r| r.rows_affected()).map_err(|e| e.to_string())
}

/// The backup phase freezes the legacy CRM: user writes fail (naming the run) while the tool
/// still restores; freezing twice says so; an unfreeze in a later run undoes exactly that freeze,
/// user writes succeed again, and unfreezing twice says so.
#[tokio::test]
async fn sqlite_freeze_blocks_users_not_the_tool() {
    let s = Sandbox::init(100);
    let text = s.read("rollback.yaml").replace("\nphases:\n", &format!("\nphases:{PHASES}"));
    s.write("rollback.yaml", &text);
    assert_eq!(user_write(&s).await.unwrap(), 1, "writable before the freeze");
    s.run(&["execute", "--phase", "backup"])
        .ok()
        .says("frozen (triggers); a user write is refused");
    let run: serde_json::Value = serde_json::from_str(&s.run(&["runs", "show", "latest", "--format", "json"]).stdout()).unwrap();
    let freeze_run = run["run"]["id"].as_str().unwrap().to_string();
    let err = user_write(&s).await.unwrap_err();
    assert!(err.contains("frozen by rollback") && err.contains(&freeze_run), "{err}");
    s.run(&["status"]).ok().says("FROZEN  connector `legacy`").says(&freeze_run);
    s.run(&["execute", "--phase", "freeze"])
        .ok()
        .says("already frozen")
        .says(&freeze_run);

    // The tool itself still writes: a restore of damaged data while frozen.
    s.write_as_tool("legacy", &["DELETE FROM deals WHERE id = 4"]).await;
    s.run(&["execute", "--phase", "restore"]).ok().says("deals +1");
    assert!(user_write(&s).await.is_err(), "still frozen after the tool's writes");

    s.run(&["execute", "--phase", "unfreeze"]).ok().says("unfrozen").says(&freeze_run);
    assert_eq!(user_write(&s).await.unwrap(), 1);
    s.run(&["execute", "--phase", "unfreeze"]).ok().says("not frozen");
    s.run(&["status", "--format", "json"]).ok().says("\"frozen\": []");
    // No trigger or bypass table of ours is left behind.
    let db = s.db("legacy").await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM sqlite_master WHERE name LIKE '_rollback%'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

/// A run killed while freezing leaves the pending receipt written before the freeze changed
/// anything: `status` reports it, a new freeze refuses to take it for a finished one, and an
/// `unfreeze` step asks for the hand-made re-opening (`--yes` in CI) and probes the result.
#[tokio::test]
async fn interrupted_freeze_is_reported_not_forgotten() {
    let s = Sandbox::init(100);
    let text = s.read("rollback.yaml").replace("\nphases:\n", &format!("\nphases:{PHASES}"));
    s.write("rollback.yaml", &text);
    s.run(&["execute", "--phase", "unfreeze"]).ok().says("not frozen");
    let run: serde_json::Value = serde_json::from_str(&s.run(&["runs", "show", "latest", "--format", "json"]).stdout()).unwrap();
    let killed = run["run"]["id"].as_str().unwrap().to_string();
    // What a run killed between its pending receipt and the freeze's end leaves.
    let journal = s.journal().await;
    sqlx::query("INSERT INTO freeze_receipts (connector, run_id, frozen_at, receipt) VALUES ('legacy', ?, '2026-12-03T00:00:00Z', ?)")
        .bind(&killed)
        .bind(serde_json::json!({"method": "triggers", "pending": true, "run": killed}).to_string())
        .execute(&journal)
        .await
        .unwrap();
    s.run(&["status"])
        .ok()
        .says("FROZEN? connector `legacy`")
        .says(&format!("run {killed} stopped while freezing it"));
    s.run(&["plan", "--phase", "freeze"]).exits(3).says("stopped while freezing it");
    s.run(&["plan", "--phase", "unfreeze"]).ok().says("partly frozen, maybe");
    s.run(&["execute", "--phase", "freeze"])
        .exits(1)
        .says("stopped while freezing `legacy`")
        .says("unfreeze");
    assert_eq!(user_write(&s).await.unwrap(), 1, "the refused freeze changed nothing");
    s.run(&["execute", "--phase", "unfreeze", "--yes"])
        .ok()
        .says("unfrozen")
        .says("a user write goes through");
    s.run(&["status"]).ok().says("nothing is frozen");
    // A freeze now completes its receipt: no pending one is left behind.
    s.run(&["execute", "--phase", "freeze"]).ok().says("a user write is refused");
    let (receipt,): (String,) = sqlx::query_as("SELECT receipt FROM freeze_receipts WHERE unfrozen_at IS NULL")
        .fetch_one(&journal)
        .await
        .unwrap();
    assert!(!receipt.contains("pending") && receipt.contains("triggers"), "{receipt}");
    s.run(&["execute", "--phase", "unfreeze"]).ok().says("unfrozen");
}

/// The files connector freezes with a lock file and removes exactly that.
#[test]
fn files_freeze_uses_a_lock_file() {
    let s = Sandbox::empty();
    s.write("data/contacts.jsonl", "{\"id\": 1}\n");
    s.write(
        "rollback.yaml",
        "version: 1\nname: f\nconnectors:\n  crm: { type: files, path: data, objects: [contacts] }\nphases:\n  freeze:\n    - freeze: { connector: crm }\n  unfreeze:\n    - unfreeze: { connector: crm }\n",
    );
    s.run(&["execute", "--phase", "freeze"]).ok().says("lock_file");
    assert!(s.path("data/.rollback-freeze.lock").exists());
    assert!(s.read("data/.rollback-freeze.lock").contains("frozen by rollback"));
    s.run(&["execute", "--phase", "unfreeze"]).ok();
    assert!(!s.path("data/.rollback-freeze.lock").exists());
}
