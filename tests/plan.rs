//! `rollback plan`: preflight names every problem (exit 3), a ready plan carries a fingerprint,
//! and `execute --plan` refuses a stale plan, saying what changed.

mod common;

use common::Sandbox;

/// Not ready before any backup; ready after; stale after a change; a fresh plan runs.
#[tokio::test]
async fn plan_preflight_and_stale_plans() {
    let s = Sandbox::init(100);
    s.run(&["plan", "--phase", "immediate"])
        .exits(3)
        .says("NOT READY")
        .says("no snapshot matches `latest` of connector `legacy`");
    s.run(&["execute", "--phase", "backup"]).ok();
    let out = s.run(&["plan", "--out", "plan.json", "--format", "json"]).ok();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(plan["ready"], true);
    assert_eq!(plan["steps"].as_array().unwrap().len(), 6);
    assert_eq!(plan["steps"][2]["objects"]["contacts"], 100);
    assert!(plan["fingerprint"]["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(s.path("plan.json").exists());
    s.run(&["plan"])
        .ok()
        .says("READY")
        .says("snapshot: ")
        .says("present and verified")
        .says("freeze state: frozen by run");

    s.write_as_tool("legacy", &["UPDATE contacts SET updated_at = '2026-11-24T12:00:00Z' WHERE id = 3"])
        .await;
    s.run(&["execute", "--phase", "immediate", "--plan", "plan.json"])
        .exits(3)
        .says("is stale")
        .says("`legacy.contacts` newest change: ")
        .says("2026-11-24T12:00:00Z");
    let runs: serde_json::Value = serde_json::from_str(&s.run(&["runs", "list", "--format", "json"]).stdout()).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "a stale plan runs nothing");
    s.run(&["execute", "--phase", "backup", "--plan", "plan.json"])
        .exits(2)
        .says("the plan is for phase `immediate`");

    s.run(&["plan", "--out", "plan.json"]).ok();
    s.run(&["execute", "--phase", "immediate", "--plan", "plan.json"])
        .ok()
        .says("succeeded");
}
