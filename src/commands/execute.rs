//! `rollback execute --phase P`: lock the store, run the phase, print the run report.

use anyhow::bail;

use crate::cli::{ExecuteArgs, Global, OutputFormat};
use crate::engine::{Context, RunStatus, RunSummary, execute_phase};
use crate::journal::{Journal, JournalError, is_stale};
use crate::playbook::diagnostic::suggest;
use crate::playbook::duration::format_duration;
use crate::store::Store;

pub async fn run(global: &Global, args: &ExecuteArgs) -> anyhow::Result<u8> {
    let playbook = super::load_playbook(&global.playbook, args.env.as_deref())?;
    if !playbook.phases.contains_key(&args.phase) {
        let hint = suggest(&args.phase, "phase", playbook.phases.keys().map(String::as_str));
        return Err(super::BadInput(format!(
            "phase `{}` is not defined in `{}`\nhint: {hint}",
            args.phase,
            playbook.path.display()
        ))
        .into());
    }
    let missing = playbook.missing_secrets(&playbook.phase_connectors(&args.phase));
    if !missing.is_empty() {
        return Err(super::BadInput(missing.join("\n")).into());
    }
    if args.dry_run {
        return dry_run(global, args, playbook).await;
    }
    let command = format!("execute --phase {}", args.phase);
    let (store, journal) = lock_store(&playbook, &command, args.force_unlock || args.resume.is_some()).await?;
    let resumed = match choose_run(&journal, args, &playbook.hash.to_string()).await {
        Ok(resumed) => resumed,
        Err(e) => {
            journal.release_lock().await?;
            return Err(e);
        }
    };
    if let Some(run) = &resumed
        && let Err(e) = journal.set_lock_run(run).await
    {
        journal.release_lock().await?;
        return Err(e.into());
    }
    if let Some(path) = &args.plan
        && let Err(e) = super::plan::check_saved(path, &playbook, &store, &journal, &args.phase, global.no_progress).await
    {
        journal.release_lock().await?;
        return Err(e);
    }
    let run_id = resumed.clone().unwrap_or_else(|| crate::ids::new_id(chrono::Utc::now()));
    let mut ctx = Context::new(playbook, store, journal.clone(), run_id, super::ui::progress(global.no_progress));
    ctx.resume = resumed.is_some();
    ctx.yes = args.yes;
    let result = execute_phase(&ctx, &args.phase).await;
    journal.release_lock().await?;
    let summary = result?;
    match args.format {
        OutputFormat::Json => super::print_json(&summary),
        OutputFormat::Text => print_summary(&summary, ctx.playbook.rto),
    }
    Ok(match summary.status {
        RunStatus::Succeeded => super::OK,
        RunStatus::Failed => super::FAILED,
        RunStatus::Interrupted => super::INTERRUPTED,
    })
}

/// `--dry-run`: previews every step with read-only connectors, store and journal; no lock.
async fn dry_run(global: &Global, args: &ExecuteArgs, playbook: crate::playbook::Playbook) -> anyhow::Result<u8> {
    let ctx = super::read_only_context(playbook, "dry-run", global.no_progress).await?;
    let summary = crate::engine::preview::dry_run(&ctx, &args.phase).await;
    match args.format {
        OutputFormat::Json => super::print_json(&summary),
        OutputFormat::Text => {
            println!("dry run: nothing was written");
            print_summary(&summary, None);
        }
    }
    Ok(if summary.status == RunStatus::Succeeded {
        super::OK
    } else {
        super::FAILED
    })
}

/// The run to resume (`--resume`), or `None` for a new run; refuses a new run while an earlier one
/// is unfinished.
async fn choose_run(journal: &Journal, args: &ExecuteArgs, playbook_hash: &str) -> anyhow::Result<Option<String>> {
    let dirty = journal.dirty_runs().await?;
    let Some(reference) = &args.resume else {
        if let Some(run) = dirty.last() {
            return Err(super::NotReady(unfinished(run)).into());
        }
        return Ok(None);
    };
    let run = if reference == "latest" {
        dirty
            .last()
            .cloned()
            .ok_or_else(|| super::BadInput("there is no unfinished run to resume\nhint: `rollback runs list` shows every run".into()))?
    } else {
        journal.run(reference).await?
    };
    if !dirty.iter().any(|d| d.id == run.id) {
        return Err(super::BadInput(format!(
            "run {} finished with status `{}`; only unfinished runs can be resumed",
            run.id, run.status
        ))
        .into());
    }
    if run.playbook_hash != playbook_hash {
        return Err(super::BadInput(format!(
            "run {} started with a different playbook ({}); resuming it with this one could skip or repeat the wrong steps\nhint: put back the playbook the run started with",
            run.id, run.playbook_hash
        ))
        .into());
    }
    if run.phase != args.phase {
        return Err(super::BadInput(format!(
            "run {} is of phase `{}`, not `{}`\nhint: pass `--phase {}`",
            run.id, run.phase, args.phase, run.phase
        ))
        .into());
    }
    Ok(Some(run.id))
}

/// Why nothing new may start while `run` is unfinished.
pub fn unfinished(run: &crate::journal::RunRow) -> String {
    format!(
        "run {} of phase `{}` did not finish (status `{}`, started {}); nothing else may run until it does\nhint: `rollback execute --phase {} --resume` continues it where it stopped",
        run.id, run.phase, run.status, run.started_at, run.phase
    )
}

/// Opens (creating) the store and journal and takes the lock, clearing a stale one on request.
pub async fn lock_store(playbook: &crate::playbook::Playbook, command: &str, force_unlock: bool) -> anyhow::Result<(Store, Journal)> {
    let store = Store::open_or_create(&playbook.store_path, playbook.compression_level)?;
    let journal = Journal::open(&store.journal_path()).await?;
    if force_unlock && let Some(holder) = journal.lock_holder().await? {
        if !is_stale(&holder) {
            bail!(JournalError::Held(Box::new(holder)));
        }
        journal.force_unlock().await?;
        eprintln!("cleared the stale lock of {holder}");
    }
    journal.acquire_lock(command, None).await?;
    Ok((store, journal))
}

/// The human run report.
pub fn print_summary(summary: &RunSummary, rto: Option<std::time::Duration>) {
    let total = std::time::Duration::from_millis(summary.duration_ms as u64);
    let against = rto.map(|r| format!(" (RTO {})", format_duration(r))).unwrap_or_default();
    println!(
        "run {} · phase `{}` · {} in {}{against}",
        summary.run_id,
        summary.phase,
        summary.status.as_str(),
        format_duration(total)
    );
    for step in &summary.steps {
        let mark = match step.status.as_str() {
            "succeeded" => "ok  ",
            "failed" => "FAIL",
            _ => "--  ",
        };
        let extra = if step.on_failure { " (on_failure)" } else { "" };
        let took = format_duration(std::time::Duration::from_millis(step.duration_ms as u64));
        println!(
            "  {mark} {:<28} {:>9}  {}{extra}",
            step.name,
            took,
            step.summary.as_deref().unwrap_or("")
        );
        if let Some(e) = &step.error {
            for line in e.lines() {
                println!("         {line}");
            }
        }
    }
}
