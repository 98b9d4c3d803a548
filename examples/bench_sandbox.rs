//! Sandbox benchmark: list pages of 100 contacts out of 1,000,000, served by
//! `rollback sandbox serve --flavor hubspot`, loaded with `wrk` (apt-get install wrk).
//!
//! ```text
//! cargo build --release && cargo run --release --example bench_sandbox -- [--records 1000000] [--seconds 10]
//! ```
//! Prints records per second (target ≥ 20,000) and the server's peak memory (target < 1.5 GB).

#[path = "common/mod.rs"]
mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};

use common::{arg, rollback_bin};

fn main() {
    let records = arg("--records", 1_000_000);
    let seconds = arg("--seconds", 10);
    assert!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "the benchmark loads the server with wrk: apt-get install wrk"
    );
    let mut server = Command::new(rollback_bin())
        .args([
            "sandbox",
            "serve",
            "--flavor",
            "hubspot",
            "--token",
            "bench",
            "--rate-limit",
            "0",
            "--daily-limit",
            "0",
        ])
        .args(["--seed", &records.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("rollback runs");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let started: serde_json::Value = serde_json::from_str(&line).expect("the start line");
    let base = started["base_url"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pages.lua");
    std::fs::write(
        &script,
        format!(
            "counter = 0\nrequest = function()\n  counter = counter + 1\n  local after = (counter * 7919) % {}\n  return wrk.format(\"GET\", \"/crm/v3/objects/contacts?limit=100&after=\" .. after .. \"&properties=email,firstname,lastname,phone,lifecyclestage\", {{[\"Authorization\"] = \"Bearer bench\"}})\nend\n",
            records.saturating_sub(100).max(1)
        ),
    )
    .unwrap();
    let out = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{seconds}s"), "-s"])
        .arg(&script)
        .arg(&base)
        .output()
        .expect("wrk runs");
    let report = String::from_utf8_lossy(&out.stdout);
    let pages: f64 = report
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("wrk's Requests/sec");
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap_or_default();
    let peak_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    let _ = server.kill();
    let _ = server.wait();
    let per_second = pages * 100.0;
    println!(
        "records in the sandbox     {records} contacts (plus {} companies, {} deals, {} tickets)",
        records / 10,
        records / 5,
        records / 10
    );
    println!(
        "list pages of 100 served   {pages:.0}/s = {per_second:.0} records/s = {:.1}x the target of 20,000",
        per_second / 20_000.0
    );
    println!("server peak memory         {:.0} MB (target < 1,500 MB)", peak_kb / 1024.0);
}
