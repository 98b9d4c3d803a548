//! The vendors' own clients against the sandbox, from PyPI, in a virtual environment kept outside
//! the clone: HubSpot's Python client (`hubspot-api-client`) runs `tests/clients/hubspot_client.py`
//! against `rollback sandbox serve --flavor hubspot`, and `simple-salesforce` runs
//! `tests/clients/salesforce_client.py` against the Salesforce flavor over HTTPS. No silent
//! skips: if a client cannot be installed, the test fails and says why.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

const HUBSPOT_CLIENT: &str = "hubspot-api-client==12.0.0";
const SALESFORCE_CLIENT: &str = "simple-salesforce==1.12.10";

/// The virtual environment's python, created and filled on first use (one test at a time: the
/// client tests run in parallel and share the environment).
fn python_with(package: &str, module: &str) -> PathBuf {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _held = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let venv = std::env::var_os("ROLLBACK_PYCLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/rollback-pyclients"));
    let python = venv.join("bin/python");
    let has = |python: &PathBuf| {
        Command::new(python)
            .args(["-c", &format!("import {module}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has(&python) {
        if !python.exists() {
            let out = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .output()
                .expect("python3 runs");
            assert!(
                out.status.success(),
                "cannot create a virtual environment at {} (install python3-venv): {}",
                venv.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", package])
            .output()
            .expect("pip runs");
        assert!(
            out.status.success(),
            "cannot install {package} from PyPI into {}: {}",
            venv.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    python
}

/// Runs `tests/clients/SCRIPT` with `python` and `args`; it must print `ok`.
fn run_client(python: &PathBuf, script: &str, args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(script);
    let out = Command::new(python).arg(&script).args(args).output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "{} failed:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// HubSpot's Python client pages, batches, searches and archives against the sandbox unmodified.
#[test]
fn hubspot_python_client_works_unmodified() {
    let python = python_with(HUBSPOT_CLIENT, "hubspot");
    let server = common::Served::start(&["--flavor", "hubspot", "--seed", "250", "--rate-limit", "0"]);
    run_client(&python, "hubspot_client.py", &[server.base.as_str(), common::SANDBOX_TOKEN, "250"]);
}

/// simple-salesforce queries, writes, upserts, deletes and freezes users against the sandbox over
/// HTTPS, configured only with a session id, the instance URL and the sandbox's CA.
#[test]
fn salesforce_python_client_works_unmodified() {
    let python = python_with(SALESFORCE_CLIENT, "simple_salesforce");
    let server = common::Served::start(&["--flavor", "salesforce", "--seed", "4500"]);
    let ca = server.ca_file.clone().expect("the Salesforce sandbox names its CA file");
    run_client(
        &python,
        "salesforce_client.py",
        &[server.base.as_str(), common::SANDBOX_TOKEN, &ca, "4500"],
    );
}
