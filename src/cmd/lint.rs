//! `rehearse lint plan.toml [--json]`: static checks of an upgrade plan.

use crate::cli::{CliError, Verdict};
use crate::plan::Plan;
use crate::plan::lint::{Finding, Severity, lint};
use std::path::PathBuf;

/// Arguments of `rehearse lint`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Print findings as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Reads a plan, turning any error into an exit-2 message that names file, line and field.
pub fn load(path: &std::path::Path) -> Result<Plan, CliError> {
    Plan::from_path(path).map_err(|e| CliError::new(e.to_string()))
}

/// Prints findings for people.
pub fn print_findings(findings: &[Finding]) {
    if findings.is_empty() {
        out!("lint: no findings");
    }
    for f in findings {
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        out!("{sev}[{}] {}: {} ({})", f.id, f.field, f.message, f.rule);
        out!("    fix: {}", f.fix);
    }
}

/// Whether any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    let plan = load(&args.plan)?;
    let findings = lint(&plan);
    if args.json {
        let text = serde_json::to_string_pretty(&findings)
            .map_err(|e| CliError::new(format!("cannot render JSON: {e}")))?;
        out!("{text}");
    } else {
        print_findings(&findings);
    }
    Ok(if has_errors(&findings) {
        Verdict::Violated
    } else {
        Verdict::Ok
    })
}
