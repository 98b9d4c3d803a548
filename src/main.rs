use std::process::ExitCode;

use clap::Parser;

/// Backups allocate many small values on several threads; mimalloc handles that without the
/// arena-lock contention of the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = rollback::cli::Cli::parse();
    ExitCode::from(rollback::commands::run(cli))
}
