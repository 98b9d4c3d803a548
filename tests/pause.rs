//! `pause` waits for the operator to type the playbook's name (`--yes` confirms for CI) and the
//! journal records who confirmed; `freeze: { method: manual }` pauses the same way.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{Run, Sandbox};

fn sandbox() -> Sandbox {
    let s = Sandbox::empty();
    s.write("data/contacts.jsonl", "{\"id\": 1}\n");
    s.write(
        "rollback.yaml",
        "version: 1\nname: pausing\nconnectors:\n  crm: { type: files, path: data, objects: [contacts], freeze: { method: manual } }\nphases:\n  check:\n    - pause: { message: Look at the dashboard first. }\n  freeze:\n    - freeze: { connector: crm }\n  unfreeze:\n    - unfreeze: { connector: crm }\n",
    );
    s
}

fn with_stdin(s: &Sandbox, args: &[&str], input: &str) -> Run {
    let mut child = s
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    Run(child.wait_with_output().unwrap())
}

/// Typing the playbook name continues (after a wrong try); the journal says who confirmed.
#[test]
fn typed_name_confirms() {
    let s = sandbox();
    with_stdin(&s, &["execute", "--phase", "check"], "pausng\npausing\n")
        .ok()
        .says("Look at the dashboard first.")
        .says("that is not `pausing`")
        .says("confirmed by");
    let run: serde_json::Value = serde_json::from_str(&s.run(&["runs", "show", "latest", "--format", "json"]).stdout()).unwrap();
    let confirmation = &run["steps"][0]["detail"]["confirmation"];
    assert_eq!(confirmation["how"], "typed on standard input");
    assert!(confirmation["at"].is_string());
}

/// Without an operator (stdin closed) the step fails with a hint; `--yes` confirms at once.
#[test]
fn no_operator_fails_and_yes_confirms() {
    let s = sandbox();
    with_stdin(&s, &["execute", "--phase", "check"], "")
        .exits(1)
        .says("no operator to confirm")
        .says("--yes");
    s.run(&["execute", "--phase", "check", "--yes"]).ok().says("(--yes)");
}

/// A manual freeze is confirmed by the operator, recorded as a receipt, and undone the same way.
#[test]
fn manual_freeze_pauses() {
    let s = sandbox();
    with_stdin(&s, &["execute", "--phase", "freeze"], "pausing\n")
        .ok()
        .says("Freeze `crm` by hand")
        .says("frozen by hand");
    s.run(&["status"]).ok().says("FROZEN  connector `crm`").says("(manual)");
    s.run(&["execute", "--phase", "unfreeze", "--yes"]).ok().says("unfrozen");
    s.run(&["status"]).ok().says("nothing is frozen");
}
