//! Playbook parsing and `rollback validate`: located errors with hints, reference checks,
//! secrets, and no panic on any input.

mod common;

use common::Sandbox;
use rollback::playbook::Playbook;

const BASE: &str = "version: 1
name: test
cutover: 2026-11-20T22:00:00Z
objectives: { rto: 1h }
connectors:
  legacy:
    type: sqlite
    path: sandbox/legacy.db
    objects:
      contacts: { table: contacts, id: id, modified: updated_at }
notify:
  channels:
    log: { type: file, path: n.log }
phases:
  backup:
    - backup: { from: legacy }
";

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

fn validate(text: &str) -> common::Run {
    let s = Sandbox::empty();
    s.write("rollback.yaml", text);
    s.run(&["validate"])
}

/// A typo in an action key names file:line:col and the nearest valid key.
#[test]
fn unknown_key_names_line_column_and_nearest_key() {
    validate(&with("    - bakup: { from: legacy }\n"))
        .exits(2)
        .says("rollback.yaml:17:7: unknown key `bakup`")
        .says("hint: did you mean `backup`?");
    validate(&with("    - verify: { conector: legacy }\n"))
        .exits(2)
        .says("unknown key `conector`")
        .says("did you mean `connector`?");
}

/// Steps naming undefined connectors, objects, channels, templates or phases are errors.
#[test]
fn undefined_references_are_errors() {
    validate(&with("    - backup: { from: legcy }\n"))
        .exits(2)
        .says("rollback.yaml:17:7")
        .says("unknown connector `legcy`")
        .says("did you mean `legacy`?");
    validate(&with("    - backup: { from: legacy, objects: [contact] }\n"))
        .exits(2)
        .says("has no object `contact`")
        .says("did you mean `contacts`?");
    validate(&with("    - notify: { channels: [team], template: internal }\n"))
        .exits(2)
        .says("unknown channel `team`");
    validate(&with("    - notify: { channels: [log], template: intrnal }\n"))
        .exits(2)
        .says("unknown template `intrnal`")
        .says("did you mean `internal`?");
    validate(&with("    - check: { criteria: [nope] }\n"))
        .exits(2)
        .says("unknown criterion `nope`");
}

/// Empty phases, duplicate names, bad timestamps and durations are errors; all are reported at once.
#[test]
fn value_errors_are_all_reported() {
    validate(&with("  immediate: []\n")).exits(2).says("phase `immediate` has no steps");
    validate(&with("    - name: same\n      verify: {}\n    - name: same\n      verify: {}\n"))
        .exits(2)
        .says("step name `same` is used twice");
    validate(&with("  backup: []\n")).exits(2).says("duplicate key `backup`");
    let text = BASE.replace("2026-11-20T22:00:00Z", "last tuesday").replace("rto: 1h", "rto: soon");
    validate(&text)
        .exits(2)
        .says("`cutover` is not a timestamp")
        .says("`rto` is not a duration")
        .says("2 problems");
    validate(&BASE.replace("type: sqlite", "type: sqlit"))
        .exits(2)
        .says("unknown type `sqlit`")
        .says("did you mean `sqlite`?");
    validate(&BASE.replace("version: 1", "version: 2"))
        .exits(2)
        .says("version 2 is not supported");
    validate(&with("    - {}\n")).exits(2).says("has no action");
    validate(&with("    - backup: { from: legacy }\n      verify: {}\n"))
        .exits(2)
        .says("several actions");
}

/// A valid playbook exits 0; a missing file exits 2 with a hint.
#[test]
fn valid_playbook_and_missing_file() {
    validate(BASE).ok().says("is valid");
    Sandbox::empty()
        .run(&["validate"])
        .exits(2)
        .says("cannot read playbook")
        .says("rollback init");
}

/// Every playbook shipped in playbooks/ and examples/ validates.
#[test]
fn shipped_playbooks_validate() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for dir in ["playbooks", "examples"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                Playbook::load(&path, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
    }
    assert!(seen >= 2, "expected shipped playbooks, found {seen}");
}

/// Secrets resolve only when used; a missing one is an error naming it (exit 2), and a resolved
/// value never appears in output, the journal or the store.
#[test]
fn secrets_resolve_when_used_and_are_never_printed() {
    let s = Sandbox::init(30);
    let text = s
        .read("rollback.yaml")
        .replace("path: sandbox/legacy.db", "path: ${env:ROLLBACK_TEST_LEGACY_DB}");
    s.write("rollback.yaml", &text);
    s.run(&["validate"]).ok();
    s.cmd()
        .args(["execute", "--phase", "backup"])
        .env_remove("ROLLBACK_TEST_LEGACY_DB")
        .output()
        .map(common::Run)
        .unwrap()
        .exits(2)
        .says("`ROLLBACK_TEST_LEGACY_DB` is not set");
    let secret_path = s.path("sandbox/legacy.db").display().to_string();
    let run = s
        .cmd()
        .args(["execute", "--phase", "backup"])
        .env("ROLLBACK_TEST_LEGACY_DB", &secret_path)
        .output()
        .map(common::Run)
        .unwrap();
    run.ok().never_says(&secret_path);
    for file in walk(&s.path(".rollback")) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret_path),
            "{} holds the secret",
            file.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// Truncated, garbage and hostile inputs give errors, never panics or hangs.
#[test]
fn truncated_and_garbage_input_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollback.yaml");
    let full = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/acme-legacy-to-hubspot.yaml")).unwrap();
    for cut in (0..full.len()).filter(|i| full.is_char_boundary(*i)) {
        std::fs::write(&path, &full[..cut]).unwrap();
        let _ = Playbook::load(&path, None);
    }
    let mut state = 7u64;
    for round in 0..300 {
        let bytes: Vec<u8> = (0..(round % 97) * 5)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let charset = b"{}[]:-,&*!|>'\"\n #abc01\t%@`";
                charset[(state >> 33) as usize % charset.len()]
            })
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        // Any outcome but a panic is acceptable for random bytes.
        let _ = Playbook::load(&path, None);
    }
    std::fs::write(&path, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    assert!(Playbook::load(&path, None).is_err());
    let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
    std::fs::write(&path, bomb).unwrap();
    let started = std::time::Instant::now();
    assert!(Playbook::load(&path, None).is_err());
    assert!(started.elapsed().as_secs() < 20, "alias bomb was expanded");
    // The binary says bad input (2), not a crash (101).
    let s = Sandbox::empty();
    s.write("rollback.yaml", &full[..full.len() / 3]);
    s.run(&["validate"]).exits(2);
}

/// An environment's overrides apply with --env; an unknown environment is bad input.
#[test]
fn environments_override_connectors() {
    let text = with("environments:\n  sandbox:\n    connectors:\n      legacy: { path: sandbox/other.db }\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollback.yaml");
    std::fs::write(&path, &text).unwrap();
    let p = Playbook::load(&path, Some("sandbox")).unwrap();
    assert_eq!(p.connector("legacy").unwrap().spec.path.as_deref(), Some("sandbox/other.db"));
    assert_eq!(p.connector("legacy").unwrap().objects.len(), 1);
    let err = Playbook::load(&path, Some("sandbx")).unwrap_err().to_string();
    assert!(err.contains("did you mean `sandbox`?"), "{err}");
    validate(&with("environments:\n  sandbox:\n    connectors:\n      legcy: { path: x.db }\n"))
        .exits(2)
        .says("overrides unknown connector `legcy`");
}
