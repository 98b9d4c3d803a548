//! The vendors' own clients against the sandbox: HubSpot's Python client (`hubspot-api-client`,
//! from PyPI, in a virtual environment kept outside the clone) runs `tests/clients/hubspot_client.py`
//! against `rollback sandbox serve --flavor hubspot`. No silent skips: if the client cannot be
//! installed, the test fails and says why.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

const HUBSPOT_CLIENT: &str = "hubspot-api-client==12.0.0";

/// The virtual environment's python, created and filled on first use.
fn python_with(package: &str, module: &str) -> PathBuf {
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

#[test]
fn hubspot_python_client_works_unmodified() {
    let python = python_with(HUBSPOT_CLIENT, "hubspot");
    let server = common::Served::start(&["--flavor", "hubspot", "--seed", "250", "--rate-limit", "0"]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/hubspot_client.py");
    let out = Command::new(&python)
        .arg(script)
        .args([server.base.as_str(), common::SANDBOX_TOKEN, "250"])
        .output()
        .unwrap();
    drop(server);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "the HubSpot client script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
