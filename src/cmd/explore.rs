//! `rehearse explore plan.toml [--faults 1|2] [--seeds N]`: every fault at every step.

use crate::chaos::Fault;
use crate::chaos::explore::{
    Class, ExploreOptions, Totals, baseline, boundaries, explore_with, schedules, shrink_finding,
};
use crate::cli::{CliError, Verdict};
use crate::cmd::check::VariantArg;
use crate::cmd::lint::load;
use crate::plan::Plan;
use crate::procedure::{ProcedureConfig, Variant};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Arguments of `rehearse explore`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Faults per run: 1 (every single fault) or 2 (ordered pairs, capped by --max-runs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub faults: u8,
    /// Seeds per fault schedule.
    #[arg(long, default_value_t = 4)]
    pub seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Most fault schedules to try.
    #[arg(long, default_value_t = 200_000)]
    pub max_runs: usize,
    /// Explore a deliberately broken procedure instead.
    #[arg(long, value_enum)]
    pub variant: Option<VariantArg>,
    /// Run only this fault schedule (repeat for two), e.g. `crash:other:7:30s`: the replay form.
    #[arg(long = "fault")]
    pub only: Vec<String>,
    /// Write the totals and findings as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Stop at the first unsafe run (time to first detection; the totals cover the runs done).
    #[arg(long)]
    pub fail_fast: bool,
    /// Shrink this many unsafe findings (the first ones) to minimal schedules: drop faults,
    /// shorten durations, move them to earlier steps, keeping the run unsafe. 0 turns it off.
    #[arg(long, default_value_t = 1)]
    pub shrink: usize,
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    let seeds =
        crate::bounds::seed_range(args.seed, args.seeds, "--seeds").map_err(CliError::new)?;
    let plan = load(&args.plan)?;
    let variant: Variant = args.variant.map_or(Variant::Safe, Into::into);
    let cfg = variant.apply(ProcedureConfig::from_plan(&plan));
    let steps = boundaries(&baseline(&plan, &cfg, args.seed));
    let scheds = if args.only.is_empty() {
        schedules(&steps, usize::from(args.faults), args.max_runs)
    } else {
        let faults = args
            .only
            .iter()
            .map(|s| {
                s.parse::<Fault>()
                    .map_err(|e| CliError::new(format!("--fault: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        vec![faults]
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let total = scheds.len() * args.seeds as usize;
    let shown = AtomicUsize::new(0);
    let tty = std::io::stderr().is_terminal();
    let progress = |done: usize| {
        let pct = done * 100 / total.max(1);
        if tty && pct > shown.fetch_max(pct, Ordering::Relaxed) {
            eprint!("\r  {done}/{total} runs ({pct}%)");
        }
    };
    let opts = ExploreOptions {
        fail_fast: args.fail_fast,
    };
    let mut t = explore_with(&plan, &cfg, &scheds, seeds, jobs, &opts, &progress);
    if tty {
        eprintln!();
    }
    report(&args, &t, variant, scheds.len());
    shrink_findings(&args, &plan, &cfg, &steps, &mut t);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&t).map_err(|e| CliError::new(e.to_string()))?;
        std::fs::write(path, text)
            .map_err(|e| CliError::new(format!("--json {}: {e}", path.display())))?;
    }
    Ok(if t.unsafe_runs == 0 {
        Verdict::Ok
    } else {
        Verdict::Violated
    })
}

fn report(args: &Args, t: &Totals, variant: Variant, schedules: usize) {
    out!(
        "explored {} with {} fault schedules x {} seeds ({variant:?} procedure): {} runs ({} simulated, the rest the same run as one of them){}",
        args.plan.display(),
        schedules,
        args.seeds,
        t.runs,
        t.simulated,
        if t.stopped_early {
            " (stopped at the first unsafe run)"
        } else {
            ""
        }
    );
    out!(
        "  faults fired {}, completed {}, halted safely {}, quorum lost by the faults alone {}, UNSAFE {}",
        t.fired,
        t.completed,
        t.halted,
        t.beyond_tolerance,
        t.unsafe_runs
    );
    if let Some(first) = &t.first_unsafe {
        out!(
            "  first unsafe after {} runs, {:.2} s (earliest unsafe run in the run order: #{})",
            first.after_runs,
            first.after_s,
            first.first_in_order
        );
    }
    let unsafe_findings = t.findings.iter().filter(|f| f.class == Class::Unsafe);
    for f in unsafe_findings.take(10) {
        let faults: Vec<String> = f.faults.iter().map(ToString::to_string).collect();
        out!(
            "  UNSAFE seed {} faults {}: {}",
            f.seed,
            faults.join(" "),
            f.problems.join("; ")
        );
        out!("    replay: {}", replay_line(args, f.seed, &faults));
    }
}

/// Shrinks the first `--shrink` unsafe findings and prints each minimal schedule with its
/// replay line.
fn shrink_findings(
    args: &Args,
    plan: &Plan,
    cfg: &ProcedureConfig,
    steps: &[usize],
    t: &mut Totals,
) {
    let firsts: Vec<_> = t
        .findings
        .iter()
        .filter(|f| f.class == Class::Unsafe)
        .take(args.shrink)
        .cloned()
        .collect();
    for f in firsts {
        let s = shrink_finding(plan, cfg, &f, steps);
        let show =
            |faults: &[Fault]| -> Vec<String> { faults.iter().map(ToString::to_string).collect() };
        let minimal = show(&s.faults);
        out!(
            "  shrunk seed {} faults {} in {} runs{} to: {}",
            f.seed,
            show(&s.from).join(" "),
            s.runs,
            if s.bounded {
                " (run bound reached)"
            } else {
                ""
            },
            if minimal.is_empty() {
                "no fault at all".to_string()
            } else {
                minimal.join(" ")
            }
        );
        out!("    {}", s.problems.join("; "));
        out!("    replay: {}", replay_line(args, f.seed, &minimal));
        t.shrunk.push(s);
    }
}

fn replay_line(args: &Args, seed: u64, faults: &[String]) -> String {
    let mut s = format!(
        "rehearse explore {} --seeds 1 --seed {seed}",
        args.plan.display()
    );
    for f in faults {
        s.push_str(&format!(" --fault {f}"));
    }
    if let Some(v) = args.variant {
        let name = clap::ValueEnum::to_possible_value(&v).map(|p| p.get_name().to_string());
        s.push_str(&format!(" --variant {}", name.unwrap_or_default()));
    }
    s
}
