//! Subcommands. Each module has an `Args` (clap) struct and a `run` function; this module holds
//! the argument handling and printing several commands share (no command imports another).

pub mod calibrate;
pub mod chaos;
pub mod check;
pub mod execute;
pub mod explore;
pub mod import;
pub mod lint;
pub mod merge;
pub mod replay;
pub mod report;
pub mod schema;
pub mod shell;
pub mod simulate;

use crate::cli::CliError;
use crate::plan::Plan;
use crate::plan::lint::{Finding, Severity};
use crate::procedure::Variant;
use crate::report::model::RiskReport;
use crate::report::render::{Format, write_all};
use crate::report::{Options, build};
use std::io::Write;
use std::path::Path;

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

/// `--variant` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum VariantArg {
    /// The plan's procedure.
    Safe,
    /// Gate on `Healthy` only.
    GateHealthyOnly,
    /// No wait for voter promotion.
    NoVoterWait,
    /// Leader first.
    LeaderFirst,
    /// No snapshot.
    NoSnapshot,
    /// Two servers at once.
    TwoAtATime,
    /// No quorum check before a stop.
    IgnoreFailureTolerance,
    /// Reinstall the old binary in place on rollback, even across a data-format change.
    RollbackInPlace,
    /// The safe procedure without autopilot, as under raft protocol 2 (no quorum check).
    NoAutopilot,
    /// Stop a server-client as soon as its drain reports complete (allocations may still run).
    DrainStatusOnly,
    /// Verify only the servers' versions, peers and leader at the end (not the jobs or the
    /// eval broker).
    ServersOnlyVerify,
}

impl From<VariantArg> for Variant {
    fn from(v: VariantArg) -> Self {
        match v {
            VariantArg::Safe => Variant::Safe,
            VariantArg::GateHealthyOnly => Variant::GateHealthyOnly,
            VariantArg::NoVoterWait => Variant::NoVoterWait,
            VariantArg::LeaderFirst => Variant::LeaderFirst,
            VariantArg::NoSnapshot => Variant::NoSnapshot,
            VariantArg::TwoAtATime => Variant::TwoAtATime,
            VariantArg::IgnoreFailureTolerance => Variant::IgnoreFailureTolerance,
            VariantArg::RollbackInPlace => Variant::RollbackInPlace,
            VariantArg::NoAutopilot => Variant::NoAutopilot,
            VariantArg::DrainStatusOnly => Variant::DrainStatusOnly,
            VariantArg::ServersOnlyVerify => Variant::ServersOnlyVerify,
        }
    }
}

/// Creates the output directory (and checks it is one), before any work is done.
pub fn prepare_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::new(format!(
            "output directory {}: cannot create it: {e} (choose another with -o DIR)",
            dir.display()
        ))
    })?;
    let probe = dir.join(".rehearse-write-test");
    std::fs::write(&probe, b"").map_err(|e| {
        CliError::new(format!(
            "output directory {}: not writable: {e} (choose another with -o DIR)",
            dir.display()
        ))
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Builds and writes a report; prints what was written and the headline numbers (to stdout,
/// or to stderr when stdout carries machine-readable output: `check --json`).
pub fn report_to(
    plan_path: &Path,
    opts: &Options,
    dir: &Path,
    formats: &[Format],
    to_stderr: bool,
) -> Result<RiskReport, CliError> {
    let plan = load(plan_path)?;
    let file = plan_path.display().to_string();
    let report = build(&plan, &file, opts).map_err(CliError::new)?;
    let written = write_all(&report, dir, formats).map_err(CliError::new)?;
    let r = &report.risk;
    // A closed stdout (`| head`) is not an error: the files are written already.
    let mut out: Box<dyn Write> = if to_stderr {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(std::io::stdout().lock())
    };
    let _ = writeln!(
        out,
        "risk report of {file}: {}, P(quorum loss) {} at {} per server, {} plan-defect seed(s), {:.1} s at failure tolerance 0 (median), {} recommendation(s), explorer {} unsafe / {} runs",
        report
            .verdict
            .as_ref()
            .map_or("live run", |v| v.decision.as_str()),
        crate::report::render::prob(r.p_quorum_loss),
        opts.failure_rate,
        r.plan_defect_runs,
        r.exposure_ms as f64 / 1e3,
        report
            .recommendations
            .iter()
            .filter(|c| c.id != "all-of-the-above")
            .count(),
        report.explorer.unsafe_runs,
        report.explorer.runs,
    );
    for p in written {
        let _ = writeln!(out, "  wrote {}", p.display());
    }
    Ok(report)
}
