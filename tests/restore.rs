//! The `restore` step against real SQLite files: only differences are written, parents before
//! children, and the destination ends equal to the snapshot.

mod common;

use common::Sandbox;

const PHASES: &str = "
  restore:
    - restore: { to: legacy, snapshot: latest, mode: replace, batch_size: 7 }
    - verify: { connector: legacy, against: latest }
  restore_upsert:
    - restore: { to: legacy, mode: upsert }
";

fn sandbox() -> Sandbox {
    sandbox_of(300)
}

fn sandbox_of(records: u64) -> Sandbox {
    let s = Sandbox::init(records);
    let text = s.read("rollback.yaml").replace("\nphases:\n", &format!("\nphases:{PHASES}"));
    s.write("rollback.yaml", &text);
    s.run(&["execute", "--phase", "backup"]).ok();
    s
}

/// Damages every object the way a bad migration would; returns nothing, asserts it applied.
async fn damage(s: &Sandbox) {
    s.write_as_tool(
        "legacy",
        &[
        "UPDATE contacts SET email = 'wrong@example.com', notes = NULL WHERE id IN (3, 4, 5)",
        "UPDATE deals SET amount = 0.5 WHERE id = 9",
        // A parent and its children vanish: restoring needs the company before its contacts.
        "DELETE FROM deals WHERE company_id = 2 OR contact_id IN (SELECT id FROM contacts WHERE company_id = 2)",
        "DELETE FROM contacts WHERE company_id = 2",
        "DELETE FROM companies WHERE id = 2",
        // New rows the snapshot does not hold: a company with a contact that references it.
        "INSERT INTO companies (id, name, created_at, updated_at) VALUES (9001, 'Fresh Co', '2026-11-21T09:00:00Z', '2026-11-21T09:00:00Z')",
        "INSERT INTO contacts (id, email, company_id, created_at, updated_at) VALUES (9001, 'new@fresh.example', 9001, '2026-11-21T09:00:00Z', '2026-11-21T09:00:00Z')",
        ],
    )
    .await;
    s.run(&["verify", "--connector", "legacy"]).exits(1);
}

/// `mode: replace` writes only what differs and ends with the live CRM equal to the snapshot.
#[tokio::test]
async fn replace_restores_exactly_the_snapshot() {
    let s = sandbox();
    damage(&s).await;
    let out = s.run(&["execute", "--phase", "restore", "--format", "json"]).ok();
    let summary: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(summary["status"], "succeeded");
    s.run(&["verify", "--connector", "legacy"]).ok();
    let run = s.run(&["runs", "show", "latest", "--format", "json"]).ok();
    let run: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let detail = &run["steps"][0]["detail"];
    assert_eq!(
        detail["order"],
        serde_json::json!(["companies", "contacts", "deals"]),
        "parents first"
    );
    assert_eq!(detail["objects"]["companies"]["inserted"], 1);
    assert_eq!(detail["objects"]["companies"]["deleted"], 1);
    assert_eq!(detail["objects"]["contacts"]["updated"], 3);
    assert_eq!(detail["objects"]["contacts"]["deleted"], 1);
    assert_eq!(detail["objects"]["deals"]["updated"], 1);
    let contacts_restored = detail["objects"]["contacts"]["inserted"].as_u64().unwrap();
    assert!(contacts_restored > 0, "the deleted company's contacts come back");
    // Only differences were written.
    assert_eq!(detail["objects"]["contacts"]["written"].as_u64().unwrap(), contacts_restored + 3);

    // Few records were written and nothing else wrote: the proof re-read them.
    assert!(detail["proof"].as_str().unwrap().starts_with("re-read"), "{}", detail["proof"]);

    // Batches were checkpointed in the journal.
    let journal = s.journal().await;
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM checkpoints WHERE key LIKE 'contacts.%'")
        .fetch_one(&journal)
        .await
        .unwrap();
    assert!(n >= 1);

    // Restoring an equal CRM writes nothing.
    let out = s.run(&["execute", "--phase", "restore"]).ok();
    out.says("companies +0 ~0 -0").says("contacts +0 ~0 -0");
}

/// A delta is never restored as if it were a full snapshot (it would delete everything else).
#[tokio::test]
async fn restoring_a_delta_is_refused() {
    let s = sandbox();
    let text = s.read("rollback.yaml").replace("\nphases:\n", "\nphases:\n  delta:\n    - export_delta: { from: legacy, since: cutover }\n  bad:\n    - restore: { to: legacy, snapshot: latest-delta }\n");
    s.write("rollback.yaml", &text);
    s.run(&["execute", "--phase", "delta"]).ok();
    s.run(&["execute", "--phase", "bad"]).exits(1).says("is a delta");
    s.run(&["verify", "--connector", "legacy"]).ok();
}

/// `mode: upsert` restores changed and missing records but never deletes.
#[tokio::test]
async fn upsert_never_deletes() {
    let s = sandbox();
    damage(&s).await;
    s.run(&["execute", "--phase", "restore_upsert"]).ok();
    let out = s.run(&["verify", "--connector", "legacy", "--format", "json"]).exits(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(v["objects"]["companies"]["added"], serde_json::json!(["9001"]));
    assert_eq!(v["objects"]["contacts"]["added"], serde_json::json!(["9001"]));
    assert_eq!(v["objects"]["contacts"]["changed"], serde_json::json!([]));
    assert_eq!(v["objects"]["companies"]["deleted"], serde_json::json!([]));
}

/// A restore that rewrites more than 10,000 records and a quarter of an object proves itself by
/// re-exporting the destination.
#[tokio::test]
async fn large_restores_re_export_the_destination() {
    let s = sandbox_of(12_000);
    s.write_as_tool("legacy", &["DELETE FROM deals", "DELETE FROM contacts WHERE id > 20"])
        .await;
    s.run(&["execute", "--phase", "restore"]).ok();
    let run = s.run(&["runs", "show", "latest", "--format", "json"]).ok();
    let run: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(run["steps"][0]["detail"]["proof"], "re-exported the destination");
    s.run(&["verify", "--connector", "legacy"]).ok();
}

/// The contacts' emails by id, for the ids given.
async fn emails(s: &Sandbox, ids: &[i64]) -> Vec<String> {
    let db = s.db("legacy").await;
    let mut out = Vec::new();
    for id in ids {
        let (email,): (String,) = sqlx::query_as("SELECT email FROM contacts WHERE id = ?")
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap();
        out.push(email);
    }
    out
}

/// A batch whose rows are written while its later lines are still being read from the snapshot
/// is still one transaction: when its last row's parent is missing, none of its rows stay.
#[tokio::test]
async fn a_failed_batch_leaves_none_of_its_rows() {
    let s = sandbox();
    let text = s.read("rollback.yaml").replace(
        "\nphases:\n",
        "\nphases:\n  contacts_only:\n    - restore: { to: legacy, objects: [contacts], batch_size: 1000 }\n",
    );
    s.write("rollback.yaml", &text);
    damage(&s).await;
    let out = s.run(&["execute", "--phase", "contacts_only"]).exits(1);
    out.says("FOREIGN KEY").says("the batch was not written");
    // Contacts 3–5 were rewritten early in the batch, before the missing company was found.
    assert_eq!(emails(&s, &[3, 4, 5]).await, vec!["wrong@example.com"; 3]);
}

/// A snapshot line whose record no longer hashes to the snapshot's index is refused before
/// anything of its batch is written, naming the chunk, the line and the record.
#[tokio::test]
async fn a_tampered_snapshot_line_is_refused() {
    let s = sandbox();
    s.write_as_tool("legacy", &["UPDATE contacts SET email = 'wrong@example.com' WHERE id IN (3, 4)"])
        .await;
    let id = s.snapshot_ids().pop().unwrap();
    let manifest = s.manifest(&id);
    let mut tampered = false;
    for chunk in manifest["objects"]["contacts"]["chunks"].as_array().unwrap() {
        let path = s.chunk_path(chunk["id"].as_str().unwrap());
        let raw = String::from_utf8(zstd::decode_all(std::fs::read(&path).unwrap().as_slice()).unwrap()).unwrap();
        let lines: Vec<String> = raw
            .lines()
            .map(|line| {
                if line.ends_with(",\"id\":\"4\",\"object\":\"contacts\"}}") {
                    tampered = true;
                    // Same length: the chunk still inflates to the size its manifest records.
                    line.replacen("@example.", "#example.", 1)
                } else {
                    line.to_string()
                }
            })
            .collect();
        let body = format!("{}\n", lines.join("\n"));
        std::fs::write(&path, zstd::encode_all(body.as_bytes(), 1).unwrap()).unwrap();
    }
    assert!(tampered, "contact 4's line was found");
    let out = s.run(&["execute", "--phase", "restore"]).exits(1);
    out.says("record `4` does not hash to").says("line ");
    assert_eq!(emails(&s, &[3, 4]).await, vec!["wrong@example.com"; 2]);
}

/// A small object the destination lacks whole is restored whole and proven by re-reading it.
#[tokio::test]
async fn a_small_object_restored_whole_is_proven() {
    let s = sandbox();
    s.write_as_tool("legacy", &["DELETE FROM deals"]).await;
    s.run(&["execute", "--phase", "restore"]).ok();
    let run = s.run(&["runs", "show", "latest", "--format", "json"]).ok();
    let run: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let detail = &run["steps"][0]["detail"];
    assert!(detail["proof"].as_str().unwrap().starts_with("re-read"), "{}", detail["proof"]);
    assert!(detail["objects"]["deals"]["inserted"].as_u64().unwrap() > 0);
    s.run(&["verify", "--connector", "legacy"]).ok();
}
