//! `rehearse lint plan.toml [--json] [--json-out FILE]`: static checks of an upgrade plan.

use super::{has_errors, load, print_findings};
use crate::cli::{CliError, Verdict};
use crate::plan::lint::lint;
use std::path::PathBuf;

/// Arguments of `rehearse lint`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Machine output: `{"schema_version": 1, "plan": …, "findings": […]}`.
    #[command(flatten)]
    pub out: crate::output::JsonArgs,
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    args.out.route_human_text();
    let plan = load(&args.plan)?;
    let findings = lint(&plan);
    // Under --json this goes to stderr (see `JsonArgs::route_human_text`).
    print_findings(&findings);
    args.out.emit(serde_json::json!({
        "plan": args.plan.display().to_string(),
        "errors": has_errors(&findings),
        "findings": findings,
    }))?;
    Ok(if has_errors(&findings) {
        Verdict::Violated
    } else {
        Verdict::Ok
    })
}
