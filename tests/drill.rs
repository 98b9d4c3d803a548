//! `rollback drill` on the quickstart: the full rehearsal passes and proves itself; a damaging
//! migration is repaired; a missed RTO or a missing phase is reported.

mod common;

use common::Sandbox;

/// The quickstart drill passes with every proof, twice in a row on the same sandboxes.
#[test]
fn quickstart_drill_passes() {
    let s = Sandbox::init(300);
    for _ in 0..2 {
        let out = s.run(&["drill", "--yes", "--format", "json"]).ok();
        let report: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
        let proofs = report["proofs"].as_array().unwrap();
        let names: Vec<&str> = proofs.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "immediate phase",
                "`legacy` equals its snapshot",
                "delta holds the simulated traffic",
                "notifications delivered",
                "rollback within the RTO"
            ]
        );
        assert!(proofs.iter().all(|p| p["ok"] == true), "{proofs:?}");
        assert_eq!(report["traffic"]["deals"]["deleted"], 5);
        assert_eq!(report["phases"].as_array().unwrap().len(), 2);
    }
    assert!(s.read("notifications.log").contains("phase `immediate`"));
    s.run(&["drill"])
        .ok()
        .says("drill passed")
        .says("rollback (immediate phase)")
        .says("against an RTO of 15m");
}

/// A migration that also damaged the old CRM still ends with it equal to its snapshot.
#[test]
fn damaged_old_crm_is_restored() {
    let s = Sandbox::init(200);
    let out = s.run(&["drill", "--damage", "--format", "json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    let restore = report["phases"][1]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"] == "restore")
        .unwrap()
        .clone();
    let summary = restore["summary"].as_str().unwrap();
    assert!(
        summary.contains("deals +2 ~1"),
        "the deleted and changed deals come back: {summary}"
    );
    assert!(report["proofs"].as_array().unwrap().iter().all(|p| p["ok"] == true));
}

/// A rollback slower than the RTO fails the drill (exit 1); a playbook without an `immediate`
/// phase cannot be drilled (exit 2).
#[test]
fn missed_rto_and_missing_phase_are_reported() {
    let s = Sandbox::init(100);
    s.write("rollback.yaml", &s.read("rollback.yaml").replace("rto: 15m", "rto: 1ms"));
    s.run(&["drill"]).exits(1).says("FAIL rollback within the RTO").says("drill FAILED");
    let text = s.read("rollback.yaml");
    let cut = text.find("  immediate:").unwrap();
    let end = text.find("  delayed:").unwrap();
    s.write("rollback.yaml", &format!("{}{}", &text[..cut], &text[end..]));
    s.run(&["drill"]).exits(2).says("no `immediate` phase");
}
