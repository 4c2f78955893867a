//! `rehearse report plan.toml [-o DIR] [--format html,md,json] [--seeds N]
//! [--server-failure-rate 2/year]`: the risk report of a plan (see [`crate::report`]).
//! `rehearse report --journal FILE [PLAN]`: the report of a live run (`execute --apply`), from
//! its journal, through the same renderer (see [`crate::report::live`]).
//! Exit 0 when the report was written (1 if `--fail-above` is given and the report's verdict
//! is no-go: a plan defect, an unsafe seed or P(quorum loss) above it), 2 on bad
//! input: an unknown format, a malformed failure rate, an output directory that cannot be
//! written.

use super::{load, prepare_dir, report_to};
use crate::cli::{CliError, Verdict};
use crate::plan::Plan;
use crate::report::Options;
use crate::report::measure::StepKind;
use crate::report::model::RunbookStep;
use crate::report::render::{Format, UnknownFormat, write_all};
use crate::report::risk::FailureRate;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `rehearse report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan file (with `--journal`: optional, it names the plan, adds its findings and the
    /// expected duration of each step from its rehearsal on `--seeds` fault-free seeds).
    #[arg(required_unless_present = "journal")]
    pub plan: Option<PathBuf>,
    /// Report a live run from its journal (`rehearse execute --apply --journal FILE`) instead
    /// of rehearsing the plan: same report, charts from what the real cluster answered.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Directory to write report.html, report.md and report.json into (created if missing).
    #[arg(short = 'o', long = "out", default_value = "rehearse-report")]
    pub out: PathBuf,
    /// Formats, comma-separated: html, md, json.
    #[arg(long, default_value = "html,md,json")]
    pub format: String,
    /// Fault-free seeds to rehearse (with `--journal` and a plan: for the expected durations).
    #[arg(long, default_value_t = 16)]
    pub seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seeds per fault schedule for the explorer's heatmap (0: skip the explorer).
    #[arg(long, default_value_t = 1)]
    pub explore_seeds: u64,
    /// Per-server failure rate, COUNT/PERIOD: 2/year, 1/month, 1/1000h.
    #[arg(long, default_value = "2/year")]
    pub server_failure_rate: String,
    /// Seconds between progress lines on stderr when it is not a terminal (0: a line per
    /// run); on a terminal one line is redrawn in place.
    #[arg(long, default_value_t = 10)]
    pub progress_every: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// The highest acceptable probability of quorum loss (e.g. 0.0001): above it the verdict
    /// is no-go; with it, a no-go verdict exits 1.
    #[arg(long)]
    pub fail_above: Option<f64>,
}

/// Parses `--format`: a comma-separated list, each once, in a fixed order.
pub fn parse_formats(text: &str) -> Result<Vec<Format>, CliError> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let f: Format = part
            .parse()
            .map_err(|e: UnknownFormat| CliError::new(format!("--format: {e}")))?;
        if !out.contains(&f) {
            out.push(f);
        }
    }
    if out.is_empty() {
        return Err(CliError::new(
            "--format: no format given (use html, md, json, comma-separated)",
        ));
    }
    out.sort();
    Ok(out)
}

/// Parses `--server-failure-rate`.
pub fn parse_rate(text: &str) -> Result<FailureRate, CliError> {
    text.parse()
        .map_err(|e| CliError::new(format!("--server-failure-rate: {e}")))
}

/// Default worker threads: all cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Writes the report of the live run recorded in `journal`.
fn run_live(
    journal: &Path,
    args: &Args,
    formats: &[Format],
    failure_rate: FailureRate,
) -> Result<Verdict, CliError> {
    let records = read_journal(journal)?;
    let plan = args.plan.as_deref().map(load).transpose()?;
    if let Some(path) = &args.plan {
        check_plan_matches(journal, &records, path)?;
    }
    prepare_dir(&args.out)?;
    let plan_file = args.plan.as_ref().map(|p| p.display().to_string());
    let file = journal.display().to_string();
    // With the plan, each step is compared with the plan's rehearsal (fault-free seeds only).
    let rehearsed = plan
        .as_ref()
        .map(|p| rehearsed_steps(p, args, &failure_rate))
        .transpose()?;
    let report = crate::report::live::build(
        &records,
        &file,
        plan.as_ref().zip(plan_file.as_deref()),
        rehearsed.as_deref(),
        &failure_rate,
    )
    .map_err(|e| CliError::new(e.to_string()))?;
    let written = write_all(&report, &args.out, formats).map_err(CliError::new)?;
    let live = report.live.as_ref();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "live run report of {file}: {}{}, {:.1} s, {:.1} s at failure tolerance 0, {:.1} s without a known leader",
        live.map_or("?", |l| l.banner.decision.as_str()),
        live.and_then(|l| l.reason.as_deref())
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        report.risk.duration_ms_median as f64 / 1e3,
        report.risk.exposure_ms as f64 / 1e3,
        report.risk.no_leader_ms as f64 / 1e3,
    );
    for p in written {
        let _ = writeln!(out, "  wrote {}", p.display());
    }
    Ok(Verdict::Ok)
}

/// The records of the journal at `journal`, refusing a missing or empty one.
fn read_journal(journal: &Path) -> Result<Vec<crate::live::journal::Record>, CliError> {
    if !journal.is_file() {
        return Err(CliError::new(format!(
            "journal {}: no such file (the file `rehearse execute --apply --journal FILE` wrote)",
            journal.display()
        )));
    }
    let records =
        crate::live::journal::Journal::read(journal).map_err(|e| CliError::new(e.to_string()))?;
    if records.is_empty() {
        return Err(CliError::new(format!(
            "journal {}: no records (is it the journal of `rehearse execute --apply`?)",
            journal.display()
        )));
    }
    Ok(records)
}

/// The steps of the plan's fault-free rehearsal on `--seeds`, to compare the live run's with.
fn rehearsed_steps(
    p: &Plan,
    args: &Args,
    failure_rate: &FailureRate,
) -> Result<Vec<(StepKind, RunbookStep)>, CliError> {
    crate::bounds::seed_range(args.seed, args.seeds, "--seeds").map_err(CliError::new)?;
    let opts = Options {
        seeds: args.seeds,
        first_seed: args.seed,
        explore_seeds: 0,
        jobs: args.jobs.unwrap_or_else(default_jobs).max(1),
        failure_rate: failure_rate.clone(),
        max_p_quorum_loss: None,
    };
    crate::report::rehearsed_runbook(p, &opts).map_err(|e| CliError::new(e.to_string()))
}

/// The plan given beside a journal must be the plan the run was made with (the sha-256 every
/// attempt's `Begin` record carries), or the report would mix one plan's findings with another
/// run's timeline.
fn check_plan_matches(
    journal: &Path,
    records: &[crate::live::journal::Record],
    plan: &Path,
) -> Result<(), CliError> {
    let text = std::fs::read_to_string(plan)
        .map_err(|e| CliError::new(format!("{}: {e}", plan.display())))?;
    let digest = crate::live::executor::plan_digest(&text);
    let recorded: Vec<&String> = records
        .iter()
        .filter_map(|r| match r {
            crate::live::journal::Record::Begin { plan_sha256, .. } => Some(plan_sha256),
            _ => None,
        })
        .collect();
    match recorded.iter().find(|d| **d != &digest) {
        Some(other) => Err(CliError::new(format!(
            "{} is not the plan of journal {}: the journal's run used a plan with sha-256 {other}, this file has {digest}",
            plan.display(),
            journal.display()
        ))),
        None => Ok(()),
    }
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    let formats = parse_formats(&args.format)?;
    let failure_rate = parse_rate(&args.server_failure_rate)?;
    if let Some(journal) = &args.journal {
        return run_live(journal, &args, &formats, failure_rate);
    }
    let Some(plan) = args.plan.as_deref() else {
        return Err(CliError::new(
            "a plan file is required (or --journal FILE for a live run)",
        ));
    };
    // Both ranges start at --seed; checked here so that `report::report_to` never wraps.
    crate::bounds::seed_range(args.seed, args.seeds, "--seeds").map_err(CliError::new)?;
    if args.explore_seeds > 0 {
        crate::bounds::seed_range(args.seed, args.explore_seeds, "--explore-seeds")
            .map_err(CliError::new)?;
    }
    if let Some(p) = args.fail_above.filter(|p| !(0.0..=1.0).contains(p)) {
        return Err(CliError::new(format!(
            "--fail-above: {p} is not a probability between 0 and 1"
        )));
    }
    // Read the plan and open the directory before spending time on simulation.
    load(plan)?;
    prepare_dir(&args.out)?;
    let opts = Options {
        seeds: args.seeds,
        first_seed: args.seed,
        explore_seeds: args.explore_seeds,
        jobs: args.jobs.unwrap_or_else(default_jobs).max(1),
        failure_rate,
        max_p_quorum_loss: args.fail_above,
    };
    // The work is counted as it is found: the seeds, then the explorer's runs, then each
    // recommendation's seeds.
    let progress = crate::progress::install(crate::progress::Progress::of(
        0,
        "runs",
        std::time::Duration::from_secs(args.progress_every),
    ));
    let report = report_to(plan, &opts, &args.out, &formats, false);
    drop(progress);
    let report = report?;
    // With a threshold the exit status is the verdict's (`report::verdict` decides it: a plan
    // defect, an unsafe seed or P(quorum loss) above the threshold is no-go).
    let above = args.fail_above.is_some() && report.verdict.as_ref().is_some_and(|v| v.is_no_go());
    Ok(if above {
        Verdict::Violated
    } else {
        Verdict::Ok
    })
}
