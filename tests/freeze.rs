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

/// User writes fail while frozen (naming the run), succeed after an unfreeze in a later run; the
/// tool restores while frozen; freezing twice and unfreezing twice say so.
#[tokio::test]
async fn sqlite_freeze_blocks_users_not_the_tool() {
    let s = Sandbox::init(100);
    let text = s.read("rollback.yaml").replace("\nphases:\n", &format!("\nphases:{PHASES}"));
    s.write("rollback.yaml", &text);
    s.run(&["execute", "--phase", "backup"]).ok();
    s.run(&["status"]).ok().says("nothing is frozen");

    let out = s.run(&["execute", "--phase", "freeze"]).ok().says("frozen (triggers)");
    let run: serde_json::Value = serde_json::from_str(&s.run(&["runs", "show", "latest", "--format", "json"]).stdout()).unwrap();
    let freeze_run = run["run"]["id"].as_str().unwrap().to_string();
    drop(out);
    let err = user_write(&s).await.unwrap_err();
    assert!(err.contains("frozen by rollback") && err.contains(&freeze_run), "{err}");
    s.run(&["status"]).ok().says("FROZEN  connector `legacy`").says(&freeze_run);
    s.run(&["execute", "--phase", "freeze"]).ok().says("already frozen");

    // The tool itself still writes: a restore of damaged data while frozen.
    let db = s.db("legacy").await;
    sqlx::query("DROP TRIGGER \"_rollback_freeze_deals_delete\"")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM deals WHERE id = 4").execute(&db).await.unwrap();
    db.close().await;
    s.run(&["execute", "--phase", "restore"]).ok().says("deals +1");

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
