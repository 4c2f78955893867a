//! `rehearse lint plan.toml [--json] [--json-out FILE]`: static checks of an upgrade plan.

use crate::cli::{CliError, Verdict};
use crate::plan::Plan;
use crate::plan::lint::{Finding, Severity, lint};
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
