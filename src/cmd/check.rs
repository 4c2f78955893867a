//! `rehearse check plan.toml [--seeds N]`: lint, then rehearse the plan on N seeds in the
//! simulator. Exit 0 safe, 1 unsafe (or an error finding, or a seed that did not complete),
//! 2 bad input.

use super::{VariantArg, has_errors, load, prepare_dir, print_findings, report_to};
use crate::check::{SeedRun, WorkloadFigures, rehearse_seeds};
use crate::cli::{CliError, Verdict};
use crate::plan::lint::lint;
use crate::procedure::{ProcedureConfig, Variant};
use crate::rehearsal::{Outcome, Verdict as RunVerdict};
use std::path::PathBuf;

/// Arguments of `rehearse check`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Number of seeds to rehearse.
    #[arg(long, default_value_t = 32)]
    pub seeds: u64,
    /// First seed (seeds are first..first+N).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds between progress lines on stderr when it is not a terminal (0: a line per
    /// seed); on a terminal one line is redrawn in place.
    #[arg(long, default_value_t = 10)]
    pub progress_every: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Rehearse a deliberately broken variant of the procedure instead (to see what rehearse
    /// catches): gate-healthy-only, no-voter-wait, leader-first, no-snapshot, two-at-a-time,
    /// ignore-failure-tolerance, rollback-in-place.
    #[arg(long, value_enum)]
    pub variant: Option<VariantArg>,
    /// Machine output: one document with the summary, every seed that did not complete (with
    /// its replay line) and every seed's outcome.
    #[command(flatten)]
    pub out: crate::output::JsonArgs,
    /// Write JUnit XML (one test case per seed) to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// After the check, write the plan's risk report (HTML, Markdown, JSON) into this
    /// directory, as `rehearse report` does on the same seeds (the plan's own procedure).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    args.out.route_human_text();
    let seeds =
        crate::bounds::seed_range(args.seed, args.seeds, "--seeds").map_err(CliError::new)?;
    let plan = load(&args.plan)?;
    if let Some(dir) = &args.report {
        prepare_dir(dir)?;
    }
    let findings = lint(&plan);
    let variant: Variant = args.variant.map_or(Variant::Safe, Into::into);
    let cfg = variant.apply(ProcedureConfig::from_plan(&plan));
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let progress = crate::progress::install(crate::progress::Progress::of(
        seeds.end - seeds.start,
        "seeds",
        std::time::Duration::from_secs(args.progress_every),
    ));
    let runs = rehearse_seeds(&plan, &cfg, seeds, jobs).map_err(CliError::new)?;
    drop(progress);
    // Under --json this goes to stderr (see `JsonArgs::route_human_text`).
    print_findings(&findings);
    print_summary(&args, variant, &runs);
    let outcomes: Vec<Outcome> = runs.into_iter().map(|r| r.outcome).collect();
    args.out
        .emit(document(&args, variant, &findings, &outcomes))?;
    if let Some(path) = &args.junit {
        crate::output::write_junit(path, &junit(&args, &outcomes))?;
    }
    if let Some(dir) = &args.report {
        let opts = crate::report::Options {
            seeds: args.seeds,
            first_seed: args.seed,
            ..crate::report::Options::new(jobs)
        };
        let formats = crate::report::render::Format::ALL;
        let progress = crate::progress::install(crate::progress::Progress::of(
            0,
            "report runs",
            std::time::Duration::from_secs(args.progress_every),
        ));
        let written = report_to(&args.plan, &opts, dir, &formats, args.out.json);
        drop(progress);
        written?;
    }
    let all_completed = outcomes.iter().all(|o| o.verdict == RunVerdict::Completed);
    Ok(if all_completed && !has_errors(&findings) {
        Verdict::Ok
    } else {
        Verdict::Violated
    })
}

/// What a seed that did not complete shows: its verdict word and detail.
fn verdict_text(v: &RunVerdict) -> (&'static str, String) {
    match v {
        RunVerdict::Unsafe { problems } => ("unsafe", problems.join("; ")),
        RunVerdict::LostAllocations { problems } => ("lost-allocations", problems.join("; ")),
        RunVerdict::StalledWorkload { problems } => ("stalled-workload", problems.join("; ")),
        RunVerdict::Halted { reason } => ("halted", reason.clone()),
        RunVerdict::Completed => ("completed", String::new()),
    }
}

/// The `--json` document.
fn document(
    args: &Args,
    variant: Variant,
    findings: &[crate::plan::lint::Finding],
    outcomes: &[Outcome],
) -> serde_json::Value {
    let count = |w: &str| {
        outcomes
            .iter()
            .filter(|o| verdict_text(&o.verdict).0 == w)
            .count()
    };
    let not_completed: Vec<serde_json::Value> = outcomes
        .iter()
        .filter(|o| o.verdict != RunVerdict::Completed)
        .map(|o| {
            let (verdict, detail) = verdict_text(&o.verdict);
            serde_json::json!({
                "seed": o.seed,
                "verdict": verdict,
                "detail": detail,
                "trace_hash": crate::output::hex(o.trace_hash),
                "replay": replay_line(args, o.seed),
            })
        })
        .collect();
    let mut doc = serde_json::json!({
        "plan": args.plan.display().to_string(),
        "procedure": format!("{variant:?}"),
        "first_seed": args.seed,
        "seeds": outcomes.len(),
        "findings": findings,
        "completed": count("completed"),
        "halted": count("halted"),
        "lost_allocations": count("lost-allocations"),
        "unsafe": count("unsafe"),
        "not_completed": not_completed,
        "outcomes": outcomes,
    });
    // Only plans with jobs can stall; left out when none did, as the explorer's totals do.
    let stalled = count("stalled-workload");
    if stalled > 0
        && let Some(o) = doc.as_object_mut()
    {
        o.insert("stalled_workload".into(), stalled.into());
    }
    doc
}

/// `--junit`: one test case per seed, failed when the seed did not complete.
fn junit(args: &Args, outcomes: &[Outcome]) -> quick_junit::Report {
    let class = crate::output::classname("check", &args.plan);
    let cases = outcomes
        .iter()
        .map(|o| {
            let failure = (o.verdict != RunVerdict::Completed).then(|| {
                let (verdict, detail) = verdict_text(&o.verdict);
                (
                    format!("seed {}: {verdict}", o.seed),
                    format!(
                        "seed {}: {verdict}: {detail}\ntrace hash {}\nreplay: {}\n",
                        o.seed,
                        crate::output::hex(o.trace_hash),
                        replay_line(args, o.seed)
                    ),
                )
            });
            crate::output::case(&class, &format!("seed {}", o.seed), failure, 0.0)
        })
        .collect();
    crate::output::report("rehearse check", &class, cases)
}

fn median(v: Vec<f64>) -> f64 {
    crate::stats::median_f64(&v).unwrap_or(0.0)
}

/// The lowest failure tolerance is the ground truth's over the seeds, the same reading the
/// report's "lowest failure tolerance" is (not autopilot's `Outcome::tolerance`, which lags
/// and can dip for one observation; see `report::measure::lowest_tolerance`); the time
/// without a leader is the procedure's, as in the report (the cooldown left out).
fn print_summary(args: &Args, variant: Variant, runs: &[SeedRun]) {
    let outcomes: Vec<&Outcome> = runs.iter().map(|r| &r.outcome).collect();
    print_counts(args, variant, &outcomes);
    print_medians(runs, &outcomes);
    print_workload(&outcomes);
    if let Some(o) = outcomes.first() {
        print_first_seed(o);
    }
    print_incomplete(args, &outcomes);
}

/// How many seeds ended each way.
fn print_counts(args: &Args, variant: Variant, outcomes: &[&Outcome]) {
    let n = outcomes.len();
    let count = |f: &dyn Fn(&RunVerdict) -> bool| outcomes.iter().filter(|o| f(&o.verdict)).count();
    let completed = count(&|v| *v == RunVerdict::Completed);
    let halted = count(&|v| matches!(v, RunVerdict::Halted { .. }));
    let lost = count(&|v| matches!(v, RunVerdict::LostAllocations { .. }));
    let stalled = count(&|v| matches!(v, RunVerdict::StalledWorkload { .. }));
    let unsafe_ = n - completed - halted - lost - stalled;
    out!();
    out!(
        "rehearsed {} on {n} seeds ({variant:?} procedure):",
        args.plan.display()
    );
    // Only plans with jobs can stall: the count is shown when a seed did.
    let stalled = if stalled > 0 {
        format!(", STALLED WORKLOAD {stalled}")
    } else {
        String::new()
    };
    out!(
        "  completed {completed}, halted safely {halted}, LOST ALLOCATIONS {lost}{stalled}, UNSAFE {unsafe_}"
    );
}

/// The medians over the seeds and the lowest failure tolerance.
fn print_medians(runs: &[SeedRun], outcomes: &[&Outcome]) {
    let lowest_tolerance = runs.iter().filter_map(|r| r.lowest_tolerance).min();
    let secs = |f: &dyn Fn(&Outcome) -> f64| median(outcomes.iter().map(|o| f(o)).collect());
    out!(
        "  median duration            {:.1}s",
        secs(&|o| o.duration_ms as f64 / 1e3)
    );
    out!(
        "  median time without leader {:.2}s",
        median(runs.iter().map(|r| r.no_leader_ns as f64 / 1e9).collect())
    );
    out!(
        "  median failed writes       {:.0}",
        secs(&|o| o.workload.failed as f64)
    );
    if let Some(ft) = lowest_tolerance {
        out!("  lowest failure tolerance   {ft}");
    }
}

/// The workload plane's figures when the plan declares jobs (`WorkloadFigures`).
fn print_workload(outcomes: &[&Outcome]) {
    let figures = WorkloadFigures::of(outcomes.iter().map(|o| &o.workload_plane));
    for line in figures.iter().flat_map(|f| f.lines("seeds")) {
        out!("{line}");
    }
}

/// The first seed's upgrade order and, for a raft protocol 2 → 3 roll, how each server came
/// back and how health was read.
fn print_first_seed(o: &Outcome) {
    out!(
        "  upgrade order (seed {})    {}",
        o.seed,
        o.order.join(" -> ")
    );
    let roll: Vec<&String> = o
        .events
        .iter()
        .filter(|e| e.starts_with("removed server with duplicate address"))
        .collect();
    if !roll.is_empty() {
        out!("  raft protocol roll (seed {}):", o.seed);
        for e in roll {
            out!("    {e}");
        }
        for n in o.notes.iter().filter(|n| n.contains("health derived")) {
            out!("    {n}");
        }
    }
}

/// The first seeds that did not complete, with their replay lines, and how many more.
fn print_incomplete(args: &Args, outcomes: &[&Outcome]) {
    let shown = 5;
    let incomplete: Vec<&Outcome> = outcomes
        .iter()
        .copied()
        .filter(|o| o.verdict != RunVerdict::Completed)
        .collect();
    for o in incomplete.iter().take(shown) {
        match &o.verdict {
            RunVerdict::Unsafe { problems } => {
                out!("  seed {}: UNSAFE: {}", o.seed, problems.join("; "))
            }
            RunVerdict::LostAllocations { problems } => {
                out!(
                    "  seed {}: LOST ALLOCATIONS: {}",
                    o.seed,
                    problems.join("; ")
                )
            }
            RunVerdict::StalledWorkload { problems } => {
                out!(
                    "  seed {}: STALLED WORKLOAD: {}",
                    o.seed,
                    problems.join("; ")
                )
            }
            RunVerdict::Halted { reason } => out!("  seed {}: halted: {reason}", o.seed),
            RunVerdict::Completed => {}
        }
        out!("    replay: {}", replay_line(args, o.seed));
    }
    let rest = &incomplete[shown.min(incomplete.len())..];
    if !rest.is_empty() {
        let n = rest.len();
        let unsafe_rest = rest
            .iter()
            .filter(|o| matches!(o.verdict, RunVerdict::Unsafe { .. }))
            .count();
        if unsafe_rest == n {
            out!("  ... and {n} more unsafe seeds (--json lists them all)");
        } else {
            out!(
                "  ... and {n} more seeds that did not complete, {unsafe_rest} of them unsafe (--json lists them all)"
            );
        }
    }
}

/// The one line that reproduces one seed.
fn replay_line(args: &Args, seed: u64) -> String {
    let mut s = format!(
        "rehearse check {} --seeds 1 --seed {seed}",
        args.plan.display()
    );
    if let Some(v) = args.variant {
        let name = format!("{v:?}");
        let kebab: String = name
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let dash = (i > 0 && c.is_uppercase()).then_some('-');
                dash.into_iter().chain(c.to_lowercase())
            })
            .collect();
        s.push_str(&format!(" --variant {kebab}"));
    }
    s
}
