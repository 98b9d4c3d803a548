//! `rollback plan`: the ordered steps of a phase with connectors, objects, record counts,
//! estimated durations and read-only preflight checks; a fingerprint for `execute --plan`.

use std::path::Path;
use std::time::Duration;

use crate::cli::{Global, OutputFormat, PlanArgs};
use crate::engine::Context;
use crate::engine::plan::{Plan, changes, plan};
use crate::journal::Journal;
use crate::playbook::Playbook;
use crate::playbook::duration::format_duration;
use crate::store::Store;

pub async fn run(global: &Global, args: &PlanArgs) -> anyhow::Result<u8> {
    let playbook = super::load_playbook(&global.playbook, args.env.as_deref())?;
    if !playbook.phases.contains_key(&args.phase) {
        let hint = crate::playbook::diagnostic::suggest(&args.phase, "phase", playbook.phases.keys().map(String::as_str));
        return Err(super::BadInput(format!("phase `{}` is not defined\nhint: {hint}", args.phase)).into());
    }
    let ctx = super::read_only_context(playbook, "plan", global.no_progress).await?;
    let plan = plan(&ctx, &args.phase).await?;
    if let Some(out) = &args.out {
        let bytes = serde_json::to_vec_pretty(&plan)?;
        let dir = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        crate::store::fsio::write_atomic(dir, out, &bytes).map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", out.display()))?;
    }
    match args.format {
        OutputFormat::Json => super::print_json(&plan),
        OutputFormat::Text => print(&plan),
    }
    Ok(if plan.ready { super::OK } else { super::NOT_READY })
}

fn print(plan: &Plan) {
    println!(
        "plan for phase `{}` of `{}`{}",
        plan.phase,
        plan.playbook,
        plan.environment
            .as_deref()
            .map(|e| format!(" (environment `{e}`)"))
            .unwrap_or_default()
    );
    for (i, step) in plan.steps.iter().enumerate() {
        let objects: Vec<String> = step.objects.iter().map(|(o, n)| format!("{o} {n}")).collect();
        println!(
            "{:>3}. {:<40} {:<10} ~{:<8} {}",
            i + 1,
            step.name,
            step.connector.as_deref().unwrap_or("-"),
            format_duration(Duration::from_secs_f64(step.estimated_seconds)),
            objects.join(", ")
        );
        for c in &step.checks {
            println!("       {} {}: {}", if c.ok { "ok  " } else { "FAIL" }, c.name, c.detail);
        }
    }
    println!(
        "estimated duration ~{}",
        format_duration(Duration::from_secs_f64(plan.estimated_seconds))
    );
    println!("fingerprint {}", plan.fingerprint.digest);
    if plan.ready {
        println!("READY");
    } else {
        println!("NOT READY:");
        for p in &plan.problems {
            println!("  - {p}");
        }
    }
}

/// Refuses (exit 3) when the saved plan at `path` no longer matches what the store and the
/// connectors hold now, saying what changed.
pub async fn check_saved(
    path: &Path,
    playbook: &Playbook,
    store: &Store,
    journal: &Journal,
    phase: &str,
    no_progress: bool,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| super::BadInput(format!("cannot read plan `{}`: {e}", path.display())))?;
    let saved: Plan = serde_json::from_str(&text).map_err(|e| {
        super::BadInput(format!(
            "`{}` is not a plan: {e}\nhint: write one with `rollback plan --out FILE`",
            path.display()
        ))
    })?;
    if saved.phase != phase || saved.environment != playbook.environment {
        return Err(super::BadInput(format!(
            "the plan is for phase `{}`{}, not `{phase}`{}",
            saved.phase,
            saved.environment.as_deref().map(|e| format!(" in `{e}`")).unwrap_or_default(),
            playbook.environment.as_deref().map(|e| format!(" in `{e}`")).unwrap_or_default()
        ))
        .into());
    }
    let ctx = Context::new(
        playbook.clone().read_only(),
        store.clone(),
        journal.clone(),
        "plan".into(),
        super::ui::progress(no_progress),
    );
    let now = plan(&ctx, phase).await?;
    let changed = changes(&saved.fingerprint, &now.fingerprint);
    if !changed.is_empty() {
        return Err(super::NotReady(format!(
            "the plan `{}` is stale; since it was made:\n  - {}\nhint: review a new plan (`rollback plan --phase {phase} --out {}`)",
            path.display(),
            changed.join("\n  - "),
            path.display()
        ))
        .into());
    }
    eprintln!("plan `{}` still matches (fingerprint {})", path.display(), now.fingerprint.digest);
    Ok(())
}
