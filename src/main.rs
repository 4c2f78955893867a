//! Thin entry point: parse arguments, run a subcommand, map the result to an exit code.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Rehearse a Nomad server-cluster upgrade before doing it for real.
#[derive(Parser)]
#[command(name = "rehearse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                rehearse::cli::CliError::EXIT_CODE
            } else {
                0
            });
        }
    };
    let result: Result<rehearse::cli::Verdict, rehearse::cli::CliError> = match cli.command {};
    match result {
        Ok(v) => ExitCode::from(v.exit_code()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(rehearse::cli::CliError::EXIT_CODE)
        }
    }
}
