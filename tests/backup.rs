//! The backup phase end to end, against real SQLite files and the real binary.

mod common;

use common::Sandbox;

/// init → validate → backup → snapshots → verify clean, then each kind of damage is named.
#[test]
fn backup_then_verify_names_every_kind_of_damage() {
    let s = Sandbox::init(300);
    s.run(&["validate"]).ok().says("is valid");
    s.run(&["execute", "--phase", "backup"]).ok().says("succeeded").says("contacts 300");
    let ids = s.snapshot_ids();
    assert_eq!(ids.len(), 1);
    let id = &ids[0];
    s.run(&["snapshots", "list"]).ok().says(id).says("legacy");
    s.run(&["snapshots", "show", &id[..6]]).ok().says("contacts").says("300 records");
    s.run(&["verify"]).ok().says("ok").says(id);

    let manifest = s.manifest(id);
    let chunk = manifest["objects"]["contacts"]["chunks"][0]["id"].as_str().unwrap().to_string();
    let path = s.chunk_path(&chunk);
    let original = std::fs::read(&path).unwrap();

    // One flipped byte.
    let mut damaged = original.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x01;
    std::fs::write(&path, &damaged).unwrap();
    s.run(&["verify"]).exits(1).says(&chunk).says("damaged").says("object `contacts`");

    s.run(&["verify", "--read-data"]).exits(1).says(&chunk).says("damaged");

    // A missing chunk.
    std::fs::remove_file(&path).unwrap();
    s.run(&["verify", id]).exits(1).says(&chunk).says("missing");
    std::fs::write(&path, &original).unwrap();
    s.run(&["verify", id]).ok();
    s.run(&["verify", id, "--read-data"]).ok();

    // A damaged object index.
    let index = manifest["objects"]["companies"]["index"][0]["id"].as_str().unwrap().to_string();
    let index_path = s.chunk_path(&index);
    let index_bytes = std::fs::read(&index_path).unwrap();
    std::fs::write(&index_path, &index_bytes[..index_bytes.len() / 2]).unwrap();
    s.run(&["verify", id]).exits(1).says(&index).says("object `companies`");
    std::fs::write(&index_path, &index_bytes).unwrap();

    // An edited manifest count.
    let manifest_path = s.path(&format!(".rollback/snapshots/{id}.json"));
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["objects"]["deals"]["count"] = serde_json::json!(61);
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    s.run(&["verify"])
        .exits(1)
        .says("object `deals`: the manifest counts 61 records, the chunks hold 60");
    std::fs::write(&manifest_path, text).unwrap();
    s.run(&["verify"]).ok();
}

/// Changing one row in the live CRM is reported as exactly that id changed.
#[tokio::test]
async fn live_compare_names_the_changed_row() {
    let s = Sandbox::init(200);
    s.run(&["execute", "--phase", "backup"]).ok();
    s.write_as_tool("legacy", &["UPDATE contacts SET phone = '+1 555 0100' WHERE id = 17"])
        .await;
    s.run(&["verify", "--connector", "legacy"])
        .exits(1)
        .says("object `contacts`: 1 changed: `17`")
        .never_says("added")
        .never_says("deleted");
    let out = s.run(&["verify", "--connector", "legacy", "--format", "json"]).exits(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(v["objects"]["contacts"]["changed"], serde_json::json!(["17"]));
    assert_eq!(v["objects"]["companies"]["changed"], serde_json::json!([]));
}

/// A backup step in a phase fails (exit 1) when the live CRM changed under it, and the journal
/// records the failed step.
#[tokio::test]
async fn failed_step_is_journaled_with_exit_1() {
    let s = Sandbox::init(100);
    s.run(&["execute", "--phase", "backup"]).ok();
    s.write_as_tool("legacy", &["DELETE FROM deals WHERE id = 3"]).await;
    let playbook = s.read("rollback.yaml").replace(
        "    - name: Back up the legacy CRM\n      backup: { from: legacy }\n    - name: Re-hash the snapshot\n      verify: { snapshot: latest }\n",
        "",
    );
    s.write("rollback.yaml", &playbook);
    s.run(&["execute", "--phase", "backup"]).exits(1).says("1 deleted: `3`");
    let out = s.run(&["runs", "show", "latest", "--format", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(v["run"]["status"], "failed");
    assert_eq!(v["steps"][0]["action"], "freeze");
    assert_eq!(v["steps"][0]["status"], "succeeded");
    assert_eq!(v["steps"][1]["action"], "verify");
    assert_eq!(v["steps"][1]["status"], "failed");
    s.run(&["runs", "list"]).ok().says("succeeded").says("failed");
}

/// Two executes at once: one runs, the other fails at once (exit 3) naming the holder.
#[test]
fn second_execute_fails_naming_the_lock_holder() {
    let s = Sandbox::init(20_000);
    let a = s.spawn(&["execute", "--phase", "backup"]);
    let b = s.spawn(&["execute", "--phase", "backup"]);
    let (a, b) = (
        common::Run(a.wait_with_output().unwrap()),
        common::Run(b.wait_with_output().unwrap()),
    );
    let mut codes = [a.code(), b.code()];
    codes.sort();
    assert_eq!(
        codes,
        [0, 3],
        "one run wins the lock, the other is refused:\n{}\n{}",
        a.stderr(),
        b.stderr()
    );
    let loser = if a.code() == 3 { a } else { b };
    loser.says("locked by").says("pid").says("on host").says("started");
    assert_eq!(s.snapshot_ids().len(), 1);
}

/// A lock left by a dead process is reported as stale, and `--force-unlock` clears it.
#[tokio::test]
async fn stale_lock_is_reported_and_cleared_on_request() {
    let s = Sandbox::init(50);
    s.run(&["execute", "--phase", "backup"]).ok();
    let dead = std::process::Command::new("true").spawn().unwrap();
    let pid = dead.id();
    let _ = dead.wait_with_output();
    let db = s.journal().await;
    sqlx::query("INSERT INTO lock (id, command, host, pid, pid_start, started_at, heartbeat_at) VALUES (1, 'execute --phase backup', ?, ?, '1', '2026-11-25T00:00:00Z', '2026-11-25T00:00:00Z')")
        .bind(rollback::journal::hostname())
        .bind(pid as i64)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    s.run(&["execute", "--phase", "backup"])
        .exits(3)
        .says("stale lock")
        .says(&format!("pid {pid}"))
        .says("--force-unlock");
    s.run(&["execute", "--phase", "backup", "--force-unlock"])
        .ok()
        .says("cleared the stale lock");
}

/// Killing the process mid-backup leaves no partial snapshot; the store still verifies and the
/// next backup (after clearing the stale lock) completes.
#[test]
fn crash_mid_backup_leaves_whole_snapshot_or_none() {
    let s = Sandbox::init(60_000);
    let mut child = s.cmd().args(["execute", "--phase", "backup"]).spawn().unwrap();
    s.wait_for_first_chunk();
    child.kill().unwrap();
    child.wait().unwrap();
    for id in s.snapshot_ids() {
        s.run(&["verify", &id]).ok();
    }
    s.run(&["execute", "--phase", "backup"]).exits(3).says("stale lock");
    s.run(&["execute", "--phase", "backup", "--force-unlock"])
        .exits(3)
        .says("did not finish")
        .says("--resume");
    s.run(&["execute", "--phase", "backup", "--resume"])
        .ok()
        .says("completed before the interruption; not redone");
    s.run(&["verify"]).ok();
    let runs = s.run(&["runs", "list", "--format", "json"]).ok();
    let runs: serde_json::Value = serde_json::from_str(&runs.stdout()).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "the crashed run was resumed, not replaced");
    assert_eq!(runs[0]["status"], "succeeded");
}

/// Snapshot diff lists added, changed and deleted ids per object.
#[tokio::test]
async fn snapshots_diff_lists_ids() {
    let s = Sandbox::init(100);
    s.run(&["execute", "--phase", "backup"]).ok();
    s.write_as_tool("legacy", &["UPDATE contacts SET first_name = 'Zoë' WHERE id = 5", "DELETE FROM deals WHERE id = 7", "INSERT INTO companies (id, name, created_at, updated_at) VALUES (999, 'Nová s.r.o.', '2026-11-21T10:00:00Z', '2026-11-21T10:00:00Z')"]).await;
    s.run(&["execute", "--phase", "backup"]).ok();
    let ids = s.snapshot_ids();
    assert_eq!(ids.len(), 2);
    s.run(&["snapshots", "diff", &ids[0], &ids[1]])
        .ok()
        .says("companies: 1 added, 0 changed, 0 deleted")
        .says("contacts: 0 added, 1 changed, 0 deleted")
        .says("deals: 0 added, 0 changed, 1 deleted");
    let out = s.run(&["snapshots", "diff", &ids[0], &ids[1], "--format", "json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(v["objects"]["contacts"]["changed"], serde_json::json!(["5"]));
    assert_eq!(v["objects"]["companies"]["added"], serde_json::json!(["999"]));
}

/// Unchanged data backs up to identical digests (and the content-addressed chunks are shared).
#[test]
fn repeated_backup_of_unchanged_data_is_identical() {
    let s = Sandbox::init(500);
    s.run(&["execute", "--phase", "backup"]).ok();
    s.run(&["execute", "--phase", "backup"]).ok();
    let ids = s.snapshot_ids();
    let (a, b) = (s.manifest(&ids[0]), s.manifest(&ids[1]));
    assert_eq!(a["root_digest"], b["root_digest"]);
    assert_eq!(a["objects"]["contacts"]["chunks"], b["objects"]["contacts"]["chunks"]);
}

/// The run journal empties its rollback journal after each commit instead of deleting it: the
/// empty `journal.db-journal` stays beside it, and the database file keeps the default mode.
#[test]
fn the_run_journal_truncates_its_rollback_journal() {
    let s = Sandbox::init(20);
    s.run(&["execute", "--phase", "backup"]).ok();
    let journal = s.path(".rollback/journal.db-journal");
    assert_eq!(std::fs::metadata(&journal).expect("the journal's journal stays").len(), 0);
    let conn = rusqlite::Connection::open(s.path(".rollback/journal.db")).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete", "the mode is the connection's, not the file's");
}
