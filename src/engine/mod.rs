//! The engine: runs a phase's steps in order, journals every step, and runs `on_failure` steps
//! when a phase fails. Inside a step, work is concurrent with bounded parallelism; CPU work
//! (hashing, compression) runs on blocking threads.

pub mod backup;
pub mod delta;
pub mod drill;
pub mod freeze;
pub mod notify;
pub mod pause;
pub mod plan;
pub mod preview;
pub mod restore;
pub mod verify;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Mutex;

use crate::connectors::{self, Connector, ConnectorError};
use crate::journal::{Journal, JournalError, NewRun};
use crate::playbook::{Action, Playbook, Step};
use crate::progress::Progress;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A proof failed: the data is not what it should be.
    #[error("{message}\nhint: {hint}")]
    Proof { message: String, hint: String },
    #[error(
        "step `{step}` is not available in this build yet\nhint: remove it from the phase, or run a phase made of `backup` and `verify` steps"
    )]
    Unsupported { step: String },
    #[error("step `{step}` timed out after {after}\nhint: raise the step's `timeout:` or check the connector")]
    Timeout { step: String, after: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a step did, for the journal and the report.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutcome {
    pub summary: String,
    pub detail: serde_json::Value,
}

/// Shared state of one run.
pub struct Context {
    pub playbook: Playbook,
    pub store: Store,
    pub journal: Journal,
    pub run_id: String,
    pub progress: Arc<dyn Progress>,
    pub threads: usize,
    /// Continue this run (its id is `run_id`) instead of starting a new one.
    pub resume: bool,
    /// Answer yes to confirmations (`pause` steps).
    pub yes: bool,
    /// Why the phase failed, once it has (for `on_failure` notifications).
    pub failure: Mutex<Option<String>>,
    /// Index of the step running now, for checkpoints.
    pub step: std::sync::atomic::AtomicUsize,
    connectors: Mutex<HashMap<String, Arc<dyn Connector>>>,
}

impl Context {
    pub fn new(playbook: Playbook, store: Store, journal: Journal, run_id: String, progress: Arc<dyn Progress>) -> Self {
        let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Context {
            playbook,
            store,
            journal,
            run_id,
            progress,
            threads,
            resume: false,
            yes: false,
            failure: Mutex::new(None),
            step: std::sync::atomic::AtomicUsize::new(0),
            connectors: Mutex::new(HashMap::new()),
        }
    }

    /// The named connector, built once per run.
    pub async fn connector(&self, name: &str) -> Result<Arc<dyn Connector>, EngineError> {
        let mut cache = self.connectors.lock().await;
        if let Some(c) = cache.get(name) {
            return Ok(c.clone());
        }
        let config = self
            .playbook
            .connector(name)
            .ok_or_else(|| EngineError::Internal(format!("connector `{name}` vanished")))?;
        let built = connectors::build(config).await?;
        cache.insert(name.into(), built.clone());
        Ok(built)
    }
}

/// One step's record in a run summary.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub name: String,
    pub action: String,
    pub status: String,
    pub duration_ms: u128,
    pub summary: Option<String>,
    pub error: Option<String>,
    pub on_failure: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub phase: String,
    pub status: RunStatus,
    pub duration_ms: u128,
    pub steps: Vec<StepReport>,
    pub error: Option<String>,
}

/// Runs one step's action.
async fn run_action(ctx: &Context, step: &Step) -> Result<StepOutcome, EngineError> {
    match &step.action {
        Action::Backup(args) => backup::run(ctx, args).await,
        Action::Verify(args) => verify::run(ctx, args).await,
        Action::Restore(args) => restore::run(ctx, args).await,
        Action::Freeze(args) => freeze::freeze(ctx, args).await,
        Action::ExportDelta(args) => delta::run(ctx, args).await,
        Action::Notify(args) => notify::run(ctx, args).await,
        Action::Pause(args) => pause::run(ctx, args).await,
        Action::Unfreeze(args) => freeze::unfreeze(ctx, args).await,
        _ => Err(EngineError::Unsupported {
            step: step.action.keyword().into(),
        }),
    }
}

/// Runs a step with its timeout and records it in the journal.
async fn run_step(ctx: &Context, idx: usize, step: &Step, on_failure: bool) -> StepReport {
    let started = Instant::now();
    ctx.step.store(idx, std::sync::atomic::Ordering::Relaxed);
    let _ = ctx
        .journal
        .start_step(&ctx.run_id, on_failure, idx, &step.name, step.action.keyword())
        .await;
    tracing::info!(step = %step.name, action = step.action.keyword(), "step started");
    let mut attempt = 0;
    let result = loop {
        let fut = run_action(ctx, step);
        let result = match step.timeout {
            Some(limit) => tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
                Err(EngineError::Timeout {
                    step: step.name.clone(),
                    after: crate::playbook::duration::format_duration(limit),
                })
            }),
            None => fut.await,
        };
        match result {
            Err(EngineError::Connector(e)) if e.retryable && attempt < step.retries => {
                attempt += 1;
                tracing::warn!(step = %step.name, attempt, error = %e, "retrying step after a transient error");
                tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt.min(6)))).await;
            }
            other => break other,
        }
    };
    let elapsed = started.elapsed();
    let (status, summary, detail, error) = match &result {
        Ok(o) => ("succeeded", Some(o.summary.clone()), Some(o.detail.clone()), None),
        Err(e) => ("failed", None, None, Some(e.to_string())),
    };
    let _ = ctx
        .journal
        .finish_step(
            &ctx.run_id,
            on_failure,
            idx,
            status,
            elapsed,
            summary.as_deref(),
            detail.as_ref(),
            error.as_deref(),
        )
        .await;
    match &result {
        Ok(o) => tracing::info!(step = %step.name, duration_ms = elapsed.as_millis() as u64, "{}", o.summary),
        Err(e) => tracing::error!(step = %step.name, "{e}"),
    }
    StepReport {
        name: step.name.clone(),
        action: step.action.keyword().into(),
        status: status.into(),
        duration_ms: elapsed.as_millis(),
        summary,
        error,
        on_failure,
    }
}

/// Runs `phase` to the end (or to its first failure, then `on_failure`), journaling everything.
/// The caller holds the store lock.
pub async fn execute_phase(ctx: &Context, phase: &str) -> Result<RunSummary, EngineError> {
    let steps = ctx.playbook.phases.get(phase).cloned().unwrap_or_default();
    let started = Instant::now();
    let mut done = std::collections::HashSet::new();
    if ctx.resume {
        for s in ctx.journal.steps(&ctx.run_id).await? {
            if !s.on_failure && s.status == "succeeded" {
                done.insert(s.idx as usize);
            }
        }
        ctx.journal.resume_run(&ctx.run_id).await?;
        tracing::info!(run = %ctx.run_id, "resuming; {} completed steps are not redone", done.len());
    } else {
        ctx.journal
            .start_run(&NewRun {
                id: &ctx.run_id,
                phase,
                environment: ctx.playbook.environment.as_deref(),
                playbook: &ctx.playbook.path.display().to_string(),
                playbook_hash: &ctx.playbook.hash.to_string(),
                dry_run: false,
            })
            .await?;
    }
    ctx.journal.set_lock_run(&ctx.run_id).await?;
    let heartbeat = {
        let journal = ctx.journal.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let _ = journal.heartbeat().await;
            }
        })
    };
    let mut reports = Vec::new();
    let mut failure = None;
    let mut status = RunStatus::Succeeded;
    for (idx, step) in steps.iter().enumerate() {
        if done.contains(&idx) {
            reports.push(StepReport {
                name: step.name.clone(),
                action: step.action.keyword().into(),
                status: "done before".into(),
                duration_ms: 0,
                summary: Some("completed before the interruption; not redone".into()),
                error: None,
                on_failure: false,
            });
            continue;
        }
        let step_future = run_step(ctx, idx, step, false);
        let report = tokio::select! {
            report = step_future => report,
            _ = tokio::signal::ctrl_c() => {
                let _ = ctx.journal.finish_step(&ctx.run_id, false, idx, "interrupted", Duration::ZERO, None, None, Some("interrupted by Ctrl-C")).await;
                status = RunStatus::Interrupted;
                failure = Some(format!("interrupted during step `{}`", step.name));
                break;
            }
        };
        let failed = report.status == "failed";
        if failed {
            failure = Some(format!("step `{}` failed: {}", step.name, report.error.clone().unwrap_or_default()));
        }
        reports.push(report);
        if failed {
            status = RunStatus::Failed;
            break;
        }
    }
    if status == RunStatus::Failed {
        *ctx.failure.lock().await = failure.clone();
        for (idx, step) in ctx.playbook.on_failure.iter().enumerate() {
            reports.push(run_step(ctx, idx, step, true).await);
        }
    }
    heartbeat.abort();
    ctx.journal
        .finish_run(&ctx.run_id, status.as_str(), failure.as_deref(), crate::journal::peak_rss())
        .await?;
    Ok(RunSummary {
        run_id: ctx.run_id.clone(),
        phase: phase.into(),
        status,
        duration_ms: started.elapsed().as_millis(),
        steps: reports,
        error: failure,
    })
}
