//! Sandbox benchmark, loaded with `wrk` (apt-get install wrk) on the same machine:
//! - `--flavor hubspot` (default): list pages of 100 contacts out of 1,000,000 at random `after`s;
//! - `--flavor salesforce`: SOQL query pages of 2,000 contacts out of 1,000,000 over HTTPS, each
//!   wrk thread following `nextRecordsUrl` to the end and starting a new query after the last page.
//!
//! ```text
//! cargo build --release --bins --examples
//! cargo run --release --example bench_sandbox -- [--flavor salesforce] [--records 1000000] [--seconds 10]
//! ```
//! Prints records per second (target ≥ 20,000) and the server's peak memory (target < 1.5 GB).

#[path = "common/mod.rs"]
mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};

use common::{arg, rollback_bin, text_arg};

/// wrk's script for HubSpot: list pages at pseudo-random cursors.
fn hubspot_script(records: u64) -> String {
    format!(
        "counter = 0\nrequest = function()\n  counter = counter + 1\n  local after = (counter * 7919) % {}\n  return wrk.format(\"GET\", \"/crm/v3/objects/contacts?limit=100&after=\" .. after .. \"&properties=email,firstname,lastname,phone,lifecyclestage\", {{[\"Authorization\"] = \"Bearer bench\"}})\nend\n",
        records.saturating_sub(100).max(1)
    )
}

/// wrk's script for Salesforce: a query, then its `nextRecordsUrl` pages, then a new query.
fn salesforce_script() -> String {
    let soql = "SELECT+Id,FirstName,LastName,Email,Phone,LastModifiedDate+FROM+Contact";
    format!(
        "local first = \"/services/data/v59.0/query?q={soql}\"\nlocal nextUrl = nil\n\
         request = function()\n  return wrk.format(\"GET\", nextUrl or first, {{[\"Authorization\"] = \"Bearer bench\", [\"Sforce-Query-Options\"] = \"batchSize=2000\"}})\nend\n\
         response = function(status, headers, body)\n  nextUrl = string.match(body, '\"nextRecordsUrl\":\"([^\"]+)\"')\nend\n"
    )
}

fn main() {
    let flavor = text_arg("--flavor", "hubspot");
    let records = arg("--records", 1_000_000);
    let seconds = arg("--seconds", 10);
    let (script, per_page, page_kind) = match flavor.as_str() {
        "hubspot" => (hubspot_script(records), 100.0, "list pages of 100"),
        "salesforce" => (salesforce_script(), 2000.0, "query pages of 2,000"),
        other => panic!("--flavor hubspot or salesforce, not {other}"),
    };
    assert!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "the benchmark loads the server with wrk: apt-get install wrk"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(rollback_bin())
        .args([
            "sandbox",
            "serve",
            "--flavor",
            &flavor,
            "--token",
            "bench",
            "--rate-limit",
            "0",
            "--daily-limit",
            "0",
        ])
        .args(["--seed", &records.to_string()])
        .arg("--tls-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("rollback runs");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let started: serde_json::Value = serde_json::from_str(&line).expect("the start line");
    let base = started["base_url"].as_str().unwrap().to_string();
    let script_file = dir.path().join("pages.lua");
    std::fs::write(&script_file, script).unwrap();
    // wrk does not check certificates, so the Salesforce flavor's HTTPS needs nothing more.
    let out = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{seconds}s"), "-s"])
        .arg(&script_file)
        .arg(&base)
        .output()
        .expect("wrk runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!report.contains("Non-2xx"), "some pages failed:\n{report}");
    let pages: f64 = report
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("wrk's Requests/sec in:\n{report}"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap_or_default();
    let peak_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    let _ = server.kill();
    let _ = server.wait();
    let per_second = pages * per_page;
    let (accounts, deals) = if flavor == "salesforce" {
        ("accounts", "opportunities")
    } else {
        ("companies", "deals")
    };
    let tickets = if flavor == "salesforce" { "cases" } else { "tickets" };
    println!(
        "records in the sandbox     {records} contacts (plus {} {accounts}, {} {deals}, {} {tickets})",
        records / 10,
        records / 5,
        records / 10
    );
    println!(
        "{page_kind} served   {pages:.0}/s = {per_second:.0} records/s = {:.1}x the target of 20,000",
        per_second / 20_000.0
    );
    println!("server peak memory         {:.0} MB (target < 1,500 MB)", peak_kb / 1024.0);
}
