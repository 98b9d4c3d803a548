//! `rollback verify [SNAPSHOT] [--connector C]`: re-hash snapshots, or compare a live connector
//! with a snapshot. Exit 1 naming every finding, 0 when clean.

use std::time::Instant;

use serde_json::json;

use crate::cli::{Global, OutputFormat, VerifyArgs};
use crate::engine::verify::{compare_live, describe_diffs};
use crate::store::verify::verify_snapshot;

pub async fn run(global: &Global, args: &VerifyArgs) -> anyhow::Result<u8> {
    let playbook = super::load_playbook(&global.playbook, args.env.as_deref())?;
    let (store, journal) = super::open_store(&playbook).await?;
    if let Some(name) = &args.connector {
        if playbook.connector(name).is_none() {
            let hint = crate::playbook::diagnostic::suggest(name, "connector", playbook.connectors.keys().map(String::as_str));
            return Err(super::BadInput(format!(
                "connector `{name}` is not defined in `{}`\nhint: {hint}",
                playbook.path.display()
            ))
            .into());
        }
        let manifest = store.resolve(args.snapshot.as_deref().unwrap_or("latest"), Some(name))?;
        let ctx = crate::engine::Context::new(playbook, store, journal, "verify".into(), super::ui::progress(global.no_progress));
        let connector = ctx.connector(name).await?;
        let objects: Vec<String> = manifest.objects.keys().cloned().collect();
        let diffs = compare_live(&ctx, connector.as_ref(), &manifest, &objects).await?;
        let lines = describe_diffs(&diffs);
        if args.format == OutputFormat::Json {
            super::print_json(
                &json!({"snapshot": manifest.id, "connector": name, "equal": lines.is_empty(), "objects": diffs.iter().map(|(o, d)| (o.clone(), d)).collect::<std::collections::BTreeMap<_, _>>()}),
            );
        } else if lines.is_empty() {
            println!(
                "connector `{name}` equals snapshot {} ({} records)",
                manifest.id,
                manifest.total_records()
            );
        } else {
            println!("connector `{name}` differs from snapshot {}:", manifest.id);
            for line in &lines {
                println!("  {line}");
            }
        }
        return Ok(if lines.is_empty() { super::OK } else { super::FAILED });
    }
    let manifests = match &args.snapshot {
        Some(reference) => vec![store.resolve(reference, None)?],
        None => store.list()?,
    };
    if manifests.is_empty() {
        anyhow::bail!(
            "the store `{}` holds no snapshots yet\nhint: run a phase with a `backup` step first",
            store.root().display()
        );
    }
    let read_data = args.read_data;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let mut bad = 0;
    let mut results = Vec::new();
    for manifest in &manifests {
        let started = Instant::now();
        let (s, m) = (store.clone(), manifest.clone());
        let report = tokio::task::spawn_blocking(move || verify_snapshot(&s, &m, threads, read_data)).await?;
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        if !report.findings.is_empty() {
            bad += 1;
        }
        if args.format == OutputFormat::Text {
            if report.findings.is_empty() {
                let speed = match report.raw_bytes {
                    0 => format!("{:.0} MB/s", report.stored_bytes as f64 / secs / 1e6),
                    raw => format!(
                        "{:.0} MB/s stored, {:.0} MB/s of records",
                        report.stored_bytes as f64 / secs / 1e6,
                        raw as f64 / secs / 1e6
                    ),
                };
                println!(
                    "ok   {} {:<12} {} records, {} stored, {} ({speed})",
                    manifest.id,
                    manifest.connector,
                    report.records,
                    super::human_bytes(report.stored_bytes),
                    manifest.root_digest,
                );
            } else {
                println!(
                    "BAD  {} {:<12} {} findings:",
                    manifest.id,
                    manifest.connector,
                    report.findings.len()
                );
                for f in &report.findings {
                    println!("       {f}");
                }
            }
        }
        results.push(json!({
            "snapshot": manifest.id, "connector": manifest.connector, "ok": report.findings.is_empty(),
            "records": report.records, "stored_bytes": report.stored_bytes, "raw_bytes": report.raw_bytes, "seconds": secs,
            "findings": report.findings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    }
    if args.format == OutputFormat::Json {
        super::print_json(&results);
    }
    if bad > 0 {
        eprintln!(
            "{bad} of {} snapshots failed verification\nhint: do not restore from a damaged snapshot; take a new backup",
            manifests.len()
        );
        return Ok(super::FAILED);
    }
    Ok(super::OK)
}
