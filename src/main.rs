//! Thin entry point: parse arguments, run a subcommand, map the result to an exit code.

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

/// Rehearse a Nomad server-cluster upgrade before doing it for real.
#[derive(Parser)]
#[command(name = "rehearse", version, about)]
struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lint a plan, then rehearse it on many seeds in the simulator (the main job).
    Check(rehearse::cmd::check::Args),
    /// Run chaos scenario files and check each verdict against its expectation.
    Chaos(rehearse::cmd::chaos::Args),
    /// Re-run a recorded chaos run exactly and compare its trace.
    Replay(rehearse::cmd::replay::Args),
    /// Merge JSON or JUnit outputs of sharded chaos runs.
    Merge(rehearse::cmd::merge::Args),
    /// Try every fault at every step of the procedure and report what breaks.
    Explore(rehearse::cmd::explore::Args),
    /// Run the plan on the live cluster (dry run unless --apply), journaled and resumable.
    Execute(rehearse::cmd::execute::Args),
    /// Write a plan describing a live cluster (read-only).
    Import(rehearse::cmd::import::Args),
    /// Risk report of a plan: HTML, Markdown and JSON, with re-simulated recommendations.
    Report(rehearse::cmd::report::Args),
    /// Measure the simulator against real Consul servers, scenario by scenario.
    Calibrate(rehearse::cmd::calibrate::Args),
    /// Static checks of an upgrade plan.
    Lint(rehearse::cmd::lint::Args),
    /// Run the simulated cluster and summarise elections, availability and safety.
    Simulate(rehearse::cmd::simulate::Args),
    /// Print the JSON schema of plan or scenario files (for editors and CI checks).
    Schema(rehearse::cmd::schema::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(rehearse::cmd::shell::CompletionsArgs),
    /// Print the man page, or write every page into a directory.
    Man(rehearse::cmd::shell::ManArgs),
}

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
    rehearse::logging::init(cli.verbose);
    let result = match cli.command {
        Command::Simulate(a) => rehearse::cmd::simulate::run(a),
        Command::Check(a) => rehearse::cmd::check::run(a),
        Command::Lint(a) => rehearse::cmd::lint::run(a),
        Command::Report(a) => rehearse::cmd::report::run(a),
        Command::Explore(a) => rehearse::cmd::explore::run(a),
        Command::Chaos(a) => rehearse::cmd::chaos::run_cmd(a),
        Command::Replay(a) => rehearse::cmd::replay::run(a),
        Command::Merge(a) => rehearse::cmd::merge::run(a),
        Command::Execute(a) => rehearse::cmd::execute::run(a),
        Command::Import(a) => rehearse::cmd::import::run(a),
        Command::Calibrate(a) => rehearse::cmd::calibrate::run(a),
        Command::Schema(a) => rehearse::cmd::schema::run(a),
        Command::Completions(a) => rehearse::cmd::shell::completions(a, Cli::command()),
        Command::Man(a) => rehearse::cmd::shell::man(a, Cli::command()),
    };
    match result {
        Ok(v) => ExitCode::from(v.exit_code()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(rehearse::cli::CliError::EXIT_CODE)
        }
    }
}
