use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = rollback::cli::Cli::parse();
    let code = rollback::commands::run(cli);
    ExitCode::from(code)
}
