//! The command line: clap types only. Each command in [`crate::commands`] turns these into plain
//! settings and calls the library.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Makes CRM migrations reversible: checksummed backups, journaled rollback phases, drills.
#[derive(Debug, Parser)]
#[command(name = "rollback", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The playbook to use.
    #[arg(
        short = 'f',
        long = "playbook",
        global = true,
        default_value = "rollback.yaml",
        env = "ROLLBACK_PLAYBOOK"
    )]
    pub playbook: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Hide progress bars (they are hidden anyway when stderr is not a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter playbook and sandbox SQLite CRMs that work at once.
    Init(InitArgs),
    /// Parse and check the playbook; errors name file:line:col with a hint.
    Validate,
    /// Show what a phase would do, with read-only preflight checks; exit 3 when not ready.
    Plan(PlanArgs),
    /// Run a phase of the playbook.
    Execute(ExecuteArgs),
    /// Verify snapshots (all, or one), or compare a live connector with a snapshot.
    Verify(VerifyArgs),
    /// List, show and compare snapshots.
    Snapshots(SnapshotsArgs),
    /// List and show runs from the journal.
    Runs(RunsArgs),
    /// What is frozen now (by which run, since when) and who holds the store lock.
    Status(StatusArgs),
    /// Render a notification template with a run's figures, without sending it.
    Notify(NotifyArgs),
    /// Rehearse: backup phase, simulated migration and user traffic, immediate phase, proofs.
    Drill(DrillArgs),
    /// Sandbox CRMs with the vendors' APIs, for connectors, clients and drills.
    Sandbox(SandboxArgs),
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: SandboxCommand,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve a sandbox CRM on 127.0.0.1; prints one JSON line with its address, stops on
    /// SIGINT/SIGTERM.
    Serve(SandboxServeArgs),
}

#[derive(Debug, Args)]
pub struct SandboxServeArgs {
    /// Which CRM's API to serve: `hubspot` (plain HTTP) or `salesforce` (HTTPS).
    #[arg(long, default_value = "hubspot", value_parser = ["hubspot", "salesforce"])]
    pub flavor: String,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Requests must send `Authorization: Bearer TOKEN` (default: no check).
    #[arg(long, env = "ROLLBACK_SANDBOX_TOKEN")]
    pub token: Option<String>,
    /// Generate this many contacts (and a tenth as many companies and tickets, a fifth as many
    /// deals), the same for the same number.
    #[arg(long, default_value_t = 1000)]
    pub seed: u64,
    /// Keep the records in this SQLite file, so a restarted server keeps its state.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Salesforce: write the CA certificate (`rollback-sandbox-PORT-ca.pem`) into this folder
    /// (default: the `--data` file's folder, else a temporary folder removed at shutdown).
    #[arg(long, value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Injected faults, e.g. `error_rate=0.05,statuses=500|502|503|429,latency=20ms..200ms,reset_rate=0.01,seed=7`.
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Requests allowed per ten seconds (0: unlimited; HubSpot only).
    #[arg(long, default_value_t = 100)]
    pub rate_limit: u64,
    /// Requests allowed per day (0: unlimited).
    #[arg(long, default_value_t = 250_000)]
    pub daily_limit: u64,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to write into (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Contacts in the sandbox CRM (companies are a tenth, deals a fifth of this).
    #[arg(long, default_value_t = 1000)]
    pub records: u64,
    /// Seed for the generated data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Overwrite an existing playbook and sandbox databases.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ExecuteArgs {
    /// The phase to run (e.g. backup, immediate, delayed).
    #[arg(long)]
    pub phase: String,
    /// Apply this environment's connector overrides.
    #[arg(long)]
    pub env: Option<String>,
    /// Answer yes to every confirmation (for CI).
    #[arg(long)]
    pub yes: bool,
    /// Refuse to run unless this saved plan (`rollback plan --out FILE`) still matches reality.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Read for real, write nothing anywhere (connectors, store, journal, channels), and print
    /// what each step would change.
    #[arg(long, conflicts_with_all = ["resume", "force_unlock"])]
    pub dry_run: bool,
    /// Clear a stale store lock left by a process that died, then run.
    #[arg(long)]
    pub force_unlock: bool,
    /// Continue a run that crashed or was interrupted (default: the newest such run) at its first
    /// unfinished step; completed steps are not redone. Takes over the lock it left.
    #[arg(long, num_args = 0..=1, default_missing_value = "latest", value_name = "RUN")]
    pub resume: Option<String>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Snapshot id, unique prefix, `latest` or `latest-delta`; all snapshots when omitted.
    pub snapshot: Option<String>,
    /// Compare this live connector with the snapshot (default: its latest) instead.
    #[arg(long)]
    pub connector: Option<String>,
    /// Environment whose connector overrides apply (with --connector).
    #[arg(long)]
    pub env: Option<String>,
    /// Also decompress every chunk and re-hash every record (by default every stored byte is
    /// checked against its content hash and digests are re-derived from the indexes).
    #[arg(long)]
    pub read_data: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(subcommand)]
    pub command: Option<SnapshotsCommand>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, global = true)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotsCommand {
    /// List snapshots, oldest first.
    List,
    /// Show one snapshot's manifest summary.
    Show { id: String },
    /// Added, changed and deleted ids per object from A to B.
    Diff { a: String, b: String },
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text, global = true)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, oldest first.
    List,
    /// Show one run's steps, outcomes and timings (`latest` for the newest).
    Show { run: String },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// The template to render: internal, customer, escalation, next_steps, or one the playbook adds.
    #[arg(long)]
    pub preview: String,
    /// The run whose figures fill it (default: the newest).
    #[arg(long, default_value = "latest")]
    pub run: String,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Environment to rehearse in (default: `sandbox` when the playbook defines it).
    #[arg(long)]
    pub env: Option<String>,
    /// Records created, changed and deleted per object in the new CRM after cutover.
    #[arg(long, default_value_t = 5)]
    pub traffic: u64,
    /// Let the simulated migration also change and delete records in the old CRM.
    #[arg(long)]
    pub damage: bool,
    /// Seed for the simulated traffic.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Answer yes to every confirmation (for CI).
    #[arg(long)]
    pub yes: bool,
    /// Clear a stale store lock left by a process that died, then run.
    #[arg(long)]
    pub force_unlock: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The phase to plan.
    #[arg(long, default_value = "immediate")]
    pub phase: String,
    /// Apply this environment's connector overrides.
    #[arg(long)]
    pub env: Option<String>,
    /// Also write the plan as JSON to this file (for `execute --plan`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}
