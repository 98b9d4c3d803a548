//! `rollback drill`: rehearse the rollback end to end in an environment and prove it worked.

use std::time::Duration;

use crate::cli::{DrillArgs, Global, OutputFormat};
use crate::engine::Context;
use crate::engine::drill::{DrillOptions, DrillReport};
use crate::playbook::duration::format_duration;

pub async fn run(global: &Global, args: &DrillArgs) -> anyhow::Result<u8> {
    let probe = super::load_playbook(&global.playbook, None)?;
    let env = args
        .env
        .clone()
        .or_else(|| probe.environments.iter().find(|e| *e == "sandbox").cloned());
    let playbook = super::load_playbook(&global.playbook, env.as_deref())?;
    for phase in ["backup", "immediate"] {
        if !playbook.phases.contains_key(phase) {
            return Err(super::BadInput(format!("a drill runs the `backup` and `immediate` phases, and `{}` has no `{phase}` phase\nhint: `rollback init` writes a playbook with both", playbook.path.display())).into());
        }
    }
    let mut used = playbook.phase_connectors("backup");
    used.extend(playbook.phase_connectors("immediate"));
    let missing = playbook.missing_secrets(&used);
    if !missing.is_empty() {
        return Err(super::BadInput(missing.join("\n")).into());
    }
    let (store, journal) = super::execute::lock_store(&playbook, "drill", args.force_unlock).await?;
    if let Some(run) = journal.dirty_runs().await?.last() {
        journal.release_lock().await?;
        return Err(super::NotReady(super::execute::unfinished(run)).into());
    }
    let progress = super::ui::progress(global.no_progress);
    let make = || {
        Context::new(
            playbook.clone(),
            store.clone(),
            journal.clone(),
            crate::ids::new_id(chrono::Utc::now()),
            progress.clone(),
        )
    };
    let options = DrillOptions {
        traffic: args.traffic,
        damage: args.damage,
        seed: args.seed,
    };
    let result = crate::engine::drill::run(&playbook, &options, &make).await;
    journal.release_lock().await?;
    let report = result?;
    match args.format {
        OutputFormat::Json => super::print_json(&report),
        OutputFormat::Text => print(&report, &playbook.name, env.as_deref()),
    }
    Ok(if report.passed() { super::OK } else { super::FAILED })
}

fn ms(ms: u128) -> String {
    format_duration(Duration::from_millis(ms as u64))
}

fn print(report: &DrillReport, name: &str, env: Option<&str>) {
    println!(
        "drill of `{name}`{}",
        env.map(|e| format!(" in environment `{e}`")).unwrap_or_default()
    );
    for phase in &report.phases {
        super::execute::print_summary(phase, None);
    }
    println!("simulated migration and traffic   {}", ms(report.setup_ms));
    for (object, c) in &report.traffic {
        println!(
            "  {object:<14} +{} created, ~{} changed, -{} deleted in the new CRM",
            c.created, c.changed, c.deleted
        );
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
    let rto = report.rto_ms.map(|r| format!(" against an RTO of {}", ms(r))).unwrap_or_default();
    println!("rollback (immediate phase)        {}{rto}", ms(report.rollback_ms));
    println!("whole drill                       {}", ms(report.total_ms));
    println!("proofs:");
    for p in &report.proofs {
        println!("  {} {}: {}", if p.ok { "ok  " } else { "FAIL" }, p.name, p.detail);
    }
    println!("{}", if report.passed() { "drill passed" } else { "drill FAILED" });
}
