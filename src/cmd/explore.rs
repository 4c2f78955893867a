//! `rehearse explore plan.toml [--faults 1|2] [--seeds N]`: every fault at every step.

use crate::chaos::Fault;
use crate::chaos::explore::{Class, baseline, boundaries, explore, schedules};
use crate::cli::{CliError, Verdict};
use crate::cmd::check::VariantArg;
use crate::cmd::lint::load;
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
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    if args.seeds == 0 {
        return Err(CliError::new("--seeds: must be at least 1"));
    }
    let plan = load(&args.plan)?;
    let variant: Variant = args.variant.map_or(Variant::Safe, Into::into);
    let cfg = variant.apply(ProcedureConfig::from_plan(&plan));
    let scheds = if args.only.is_empty() {
        let base = baseline(&plan, &cfg, args.seed);
        schedules(&boundaries(&base), usize::from(args.faults), args.max_runs)
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
    let t = explore(
        &plan,
        &cfg,
        &scheds,
        args.seed..args.seed + args.seeds,
        jobs,
        &progress,
    );
    if tty {
        eprintln!();
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&t).map_err(|e| CliError::new(e.to_string()))?;
        std::fs::write(path, text)
            .map_err(|e| CliError::new(format!("--json {}: {e}", path.display())))?;
    }
    println!(
        "explored {} with {} fault schedules x {} seeds ({variant:?} procedure): {} runs",
        args.plan.display(),
        scheds.len(),
        args.seeds,
        t.runs
    );
    println!(
        "  faults fired {}, completed {}, halted safely {}, quorum lost by the faults alone {}, UNSAFE {}",
        t.fired, t.completed, t.halted, t.beyond_tolerance, t.unsafe_runs
    );
    let unsafe_findings = t.findings.iter().filter(|f| f.class == Class::Unsafe);
    for f in unsafe_findings.take(10) {
        let faults: Vec<String> = f.faults.iter().map(ToString::to_string).collect();
        println!(
            "  UNSAFE seed {} faults {}: {}",
            f.seed,
            faults.join(" "),
            f.problems.join("; ")
        );
        println!("    replay: {}", replay_line(&args, f.seed, &faults));
    }
    Ok(if t.unsafe_runs == 0 {
        Verdict::Ok
    } else {
        Verdict::Violated
    })
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
