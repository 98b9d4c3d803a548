//! `execute --dry-run` reads for real, reports what each step would change, and leaves every
//! database file and the store byte-identical.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::Sandbox;

fn hashes(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(root).unwrap().display().to_string(), common::sha256_file(&path));
            }
        }
    }
    out
}

/// The immediate phase, dry-run against damaged data: the report names the differences and no
/// file changes (databases, store, journal, notification log).
#[tokio::test]
async fn dry_run_writes_nothing() {
    let s = Sandbox::init(200);
    std::fs::copy(s.path("sandbox/legacy.db"), s.path("sandbox/newcrm.db")).unwrap();
    s.run(&["execute", "--phase", "backup"]).ok();
    s.write_as_tool(
        "legacy",
        &["UPDATE contacts SET notes = 'x' WHERE id <= 4", "DELETE FROM deals WHERE id = 3"],
    )
    .await;
    s.write_as_tool(
        "newcrm",
        &["UPDATE contacts SET phone = '1', updated_at = '2026-11-21T00:00:00Z' WHERE id = 9"],
    )
    .await;
    let before = hashes(s.dir.path());
    for phase in ["immediate", "backup", "delayed"] {
        let out = s
            .run(&["execute", "--phase", phase, "--dry-run"])
            .ok()
            .says("dry run: nothing was written");
        if phase == "immediate" {
            out.says("would freeze `newcrm`")
                .says("would export from `newcrm`")
                .says("contacts: insert 0, update 4, delete 0")
                .says("deals: insert 1, update 0, delete 0")
                .says("would unfreeze `legacy`")
                .says("would send `internal`");
        }
    }
    assert_eq!(hashes(s.dir.path()), before, "a dry run changed files");
    let runs: serde_json::Value = serde_json::from_str(&s.run(&["runs", "list", "--format", "json"]).stdout()).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "dry runs are not journaled");
}
