//! `rehearse schema plan|scenario`: prints the JSON schema of plan or scenario files, generated
//! from the types that parse them (the same text as `plans/schema.json` and
//! `scenarios/schema.json`, which a test keeps current).

use crate::cli::{CliError, Verdict};

/// Arguments of `rehearse schema`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which file format.
    #[arg(value_enum)]
    pub kind: Kind,
}

/// The file formats that have a schema.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Upgrade plans (`plan.toml`).
    Plan,
    /// Chaos scenario files (`scenarios/**/*.toml`).
    Scenario,
}

/// The schema text of a kind.
pub fn text(kind: Kind) -> String {
    match kind {
        Kind::Plan => crate::plan::schema::schema_json(),
        Kind::Scenario => crate::chaos::scenario::schema_json(),
    }
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    out!("{}", text(args.kind).trim_end());
    Ok(Verdict::Ok)
}
