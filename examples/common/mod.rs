//! Helpers shared by the benchmarks: arguments, the release binary, timed runs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// `--name N` from the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `--name VALUE` from the command line, or `default`.
pub fn text_arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// The `rollback` binary built beside this example.
pub fn rollback_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let bin = exe.parent().and_then(Path::parent).expect("target dir").join("rollback");
    assert!(
        bin.exists(),
        "build the binary first: cargo build --release ({} missing)",
        bin.display()
    );
    bin
}

/// Runs a command after flushing dirty pages (so no run pays for an earlier run's writes);
/// returns its wall time and stdout.
pub fn run(cmd: &mut Command) -> (f64, String) {
    let _ = Command::new("sync").status();
    let started = Instant::now();
    let out = cmd.stderr(Stdio::piped()).output().expect("command runs");
    let secs = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    (secs, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The peak memory (MB) of the latest run in the store beside `root`'s playbook, from the journal.
pub fn peak(bin: &Path, root: &Path) -> f64 {
    let (_, show) = run(Command::new(bin)
        .current_dir(root)
        .args(["-q", "runs", "show", "latest", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&show).unwrap();
    v["run"]["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1e6
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The largest of `values`.
pub fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}
