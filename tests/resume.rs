//! Crash safety of rollback phases: kill -9 during a restore of 100,000 records, then
//! `--resume` ends with the right digest and one completed restore in the journal.

mod common;

use common::Sandbox;

/// A run killed mid-restore blocks new runs until resumed; the resumed run finishes the restore
/// (without redoing committed batches) and the CRM equals the snapshot.
#[tokio::test(flavor = "multi_thread")]
async fn kill_during_restore_then_resume() {
    let s = Sandbox::init(100_000);
    let text = s.read("rollback.yaml").replace(
        "\nphases:\n",
        "\nphases:\n  restore:\n    - unfreeze: { connector: newcrm }\n    - restore: { to: legacy, mode: replace, batch_size: 500 }\n    - verify: { connector: legacy, against: latest }\n",
    );
    s.write("rollback.yaml", &text);
    s.run(&["execute", "--phase", "backup"]).ok();
    s.write_as_tool(
        "legacy",
        &[
            "UPDATE contacts SET notes = 'overwritten by a bad migration'",
            "DELETE FROM deals WHERE id % 3 = 0",
        ],
    )
    .await;

    let mut child = s.spawn(&["execute", "--phase", "restore"]);
    let killed_mid_restore = s.kill_at_checkpoint(&mut child, "deals.upserted").await;
    let journal = s.journal().await;
    assert!(killed_mid_restore, "the restore finished before it could be killed");
    let (checkpoint,): (String,) = sqlx::query_as("SELECT value FROM checkpoints WHERE key = 'deals.upserted'")
        .fetch_one(&journal)
        .await
        .unwrap();
    journal.close().await;

    s.run(&["execute", "--phase", "restore"])
        .exits(3)
        .says("stale lock")
        .says("--resume");
    s.run(&["execute", "--phase", "restore", "--force-unlock"])
        .exits(3)
        .says("did not finish")
        .says("--resume");
    let out = s.run(&["execute", "--phase", "restore", "--resume", "--format", "json"]).ok();
    let summary: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(summary["status"], "succeeded", "{summary}");
    assert_eq!(summary["steps"][0]["status"], "done before");
    let restore = &summary["steps"][1];
    assert_eq!(restore["status"], "succeeded");
    // Batches committed before the kill are not rewritten: fewer contacts remain to update.
    let remaining = restore["summary"].as_str().unwrap().to_string();
    assert!(
        !remaining.contains("contacts +0 ~100000"),
        "{remaining} (checkpoint was {checkpoint})"
    );
    s.run(&["verify", "--connector", "legacy"]).ok();

    let runs: serde_json::Value = serde_json::from_str(&s.run(&["runs", "list", "--format", "json"]).stdout()).unwrap();
    let restores: Vec<&serde_json::Value> = runs.as_array().unwrap().iter().filter(|r| r["phase"] == "restore").collect();
    assert_eq!(restores.len(), 1);
    assert_eq!(restores[0]["status"], "succeeded");
    let run: serde_json::Value = serde_json::from_str(
        &s.run(&["runs", "show", restores[0]["id"].as_str().unwrap(), "--format", "json"])
            .stdout(),
    )
    .unwrap();
    let restore_steps: Vec<&serde_json::Value> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"] == "restore")
        .collect();
    assert_eq!(restore_steps.len(), 1);
    assert_eq!(restore_steps[0]["status"], "succeeded");
}

/// Ctrl-C (SIGINT) mid-backup exits 130, records the run and the step as interrupted, leaves no
/// partial snapshot, and the run resumes to completion.
#[test]
fn ctrl_c_records_interrupted_and_resumes() {
    let s = Sandbox::init(60_000);
    let child = s.spawn(&["execute", "--phase", "backup"]);
    s.wait_for_first_chunk();
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = common::Run(child.wait_with_output().unwrap());
    assert_eq!(out.code(), 130, "{}", out.stderr());
    assert!(s.snapshot_ids().is_empty(), "no partial snapshot");
    let runs: serde_json::Value = serde_json::from_str(&s.run(&["runs", "list", "--format", "json"]).stdout()).unwrap();
    assert_eq!(runs[0]["status"], "interrupted");
    let run: serde_json::Value = serde_json::from_str(&s.run(&["runs", "show", "latest", "--format", "json"]).stdout()).unwrap();
    assert!(
        run["steps"].as_array().unwrap().iter().any(|s| s["status"] == "interrupted"),
        "{run}"
    );
    s.run(&["execute", "--phase", "backup"]).exits(3).says("did not finish");
    // Resuming with an edited playbook could skip the wrong steps: refused.
    let original = s.read("rollback.yaml");
    s.write("rollback.yaml", &format!("{original}# edited\n"));
    s.run(&["execute", "--phase", "backup", "--resume"])
        .exits(2)
        .says("different playbook");
    s.write("rollback.yaml", &original);
    s.run(&["execute", "--phase", "backup", "--resume"]).ok();
    s.run(&["verify"]).ok();
}
