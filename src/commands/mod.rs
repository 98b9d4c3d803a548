//! Commands: each turns clap arguments into plain settings, calls the library, prints data to
//! stdout and everything else to stderr, and returns an exit code:
//! 0 success · 1 a step, check or verification failed · 2 bad input · 3 not ready · 130 interrupted.

mod drill;
mod execute;
mod init;
mod notify;
mod plan;
mod runs;
mod snapshots;
mod status;
mod ui;
mod validate;
mod verify;

use std::path::Path;

use crate::cli::{Cli, Command, LogFormat};
use crate::journal::{Journal, JournalError};
use crate::playbook::secret::SecretError;
use crate::playbook::{Playbook, PlaybookError};
use crate::store::Store;

/// Exit codes.
pub const OK: u8 = 0;
pub const FAILED: u8 = 1;
pub const BAD_INPUT: u8 = 2;
pub const NOT_READY: u8 = 3;
pub const INTERRUPTED: u8 = 130;

/// Bad input found by a command itself (an unknown phase or connector name): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Not ready to proceed (an unfinished run, say): exit 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotReady(pub String);

/// Parses nothing, runs the command, and maps errors to exit codes.
pub fn run(cli: Cli) -> u8 {
    init_logging(cli.global.log_format, cli.global.verbose, cli.global.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return FAILED;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", render(&e));
            exit_code(&e)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let g = &cli.global;
    match &cli.command {
        Command::Init(args) => init::run(args).await,
        Command::Validate => validate::run(&g.playbook).await,
        Command::Execute(args) => execute::run(g, args).await,
        Command::Plan(args) => plan::run(g, args).await,
        Command::Verify(args) => verify::run(g, args).await,
        Command::Snapshots(args) => snapshots::run(g, args).await,
        Command::Runs(args) => runs::run(g, args).await,
        Command::Status(args) => status::run(g, args).await,
        Command::Notify(args) => notify::run(g, args).await,
        Command::Drill(args) => drill::run(g, args).await,
        Command::Sandbox(args) => match &args.command {
            crate::cli::SandboxCommand::Serve(a) => {
                if let Some(spec) = &a.faults {
                    crate::sandbox::FaultSpec::parse(spec).map_err(|e| BadInput(format!("--faults: {e}")))?;
                }
                crate::sandbox::serve(crate::sandbox::Options {
                    flavor: a.flavor.clone(),
                    port: a.port,
                    token: a.token.clone(),
                    seed: a.seed,
                    data: a.data.clone(),
                    tls_dir: a.tls_dir.clone(),
                    faults: a.faults.clone(),
                    rate_limit: a.rate_limit,
                    daily_limit: a.daily_limit,
                })
                .await?;
                Ok(0)
            }
        },
    }
}

/// The error and its causes, one per line, hints last.
fn render(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
    }
    text
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<PlaybookError>() || cause.is::<SecretError>() || cause.is::<BadInput>() {
            return BAD_INPUT;
        }
        if cause.is::<NotReady>() {
            return NOT_READY;
        }
        if let Some(JournalError::Held(_) | JournalError::Stale(_)) = cause.downcast_ref::<JournalError>() {
            return NOT_READY;
        }
        if let Some(crate::engine::EngineError::Connector(c)) = cause.downcast_ref::<crate::engine::EngineError>()
            && c.bad_input
        {
            return BAD_INPUT;
        }
    }
    FAILED
}

fn init_logging(format: LogFormat, verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (_, 0) => "info",
        (_, 1) => "debug",
        _ => "trace",
    };
    // sqlx warns of every statement longer than a second; a bulk read is one such statement.
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROLLBACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,sqlx::query=error,rollback={level}")));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.without_time().try_init(),
    };
}

/// Loads the playbook for `env`.
pub fn load_playbook(path: &Path, env: Option<&str>) -> anyhow::Result<Playbook> {
    Ok(Playbook::load(path, env)?)
}

/// Opens the playbook's existing store and journal.
pub async fn open_store(playbook: &Playbook) -> anyhow::Result<(Store, Journal)> {
    let store = Store::open(&playbook.store_path)?;
    let journal = Journal::open(&store.journal_path()).await?;
    Ok((store, journal))
}

/// A context that reads for real and writes nowhere: connectors opened read-only, the store and
/// journal opened without writing (dry runs, plans).
pub async fn read_only_context(playbook: Playbook, label: &str, no_progress: bool) -> anyhow::Result<crate::engine::Context> {
    let store = Store::open_or_empty(&playbook.store_path);
    let journal = Journal::open_read_only(&store.journal_path()).await?;
    Ok(crate::engine::Context::new(
        playbook.read_only(),
        store,
        journal,
        label.into(),
        ui::progress(no_progress),
    ))
}

/// `1.2 MB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(value).expect("serialisable output"));
}
