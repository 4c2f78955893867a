//! `rehearse calibrate --against consul [--trials N] [--seeds M] [--scenarios a,b] [--json]
//! [--json-out FILE] [--real FILE]`: run each fidelity scenario N times on real Consul 1.8.7 servers (local
//! processes on 127.0.0.x) and on M simulator seeds, and print outcomes and timings side by
//! side. `--real FILE` reuses the real trials of an earlier `--json-out` file, so the simulator
//! can be re-compared without re-running the real servers. Exit 0 when every scenario meets
//! the goal (outcome agreement ≥ 95 %, medians within ±25 %), 1 otherwise, 2 on bad input.

use crate::calibrate::{self, Runs, SCENARIOS, Scenario, Trial, compare, meets_goal};
use crate::cli::{CliError, Verdict};
use std::path::PathBuf;

/// Arguments of `rehearse calibrate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The real system to compare with (only Consul can run here).
    #[arg(long, value_enum)]
    pub against: Against,
    /// Real trials per scenario.
    #[arg(long, default_value_t = 5)]
    pub trials: usize,
    /// Simulator seeds per scenario.
    #[arg(long, default_value_t = 20)]
    pub seeds: u64,
    /// Comma-separated scenarios (default: all): leader-kill, follower-restart,
    /// two-down-then-back, leader-paused, leader-partitioned (needs root: network namespaces),
    /// restart-within-refresh, rolling-naive, rolling-rehearse.
    #[arg(long)]
    pub scenarios: Option<String>,
    /// Machine output: every trial and the comparison (`{"schema_version": 1, "runs": …,
    /// "comparisons": …}`).
    #[command(flatten)]
    pub out: crate::output::JsonArgs,
    /// Seconds between progress lines on stderr when it is not a terminal (0: a line per
    /// trial or seed); on a terminal one line is redrawn in place.
    #[arg(long, default_value_t = 10)]
    pub progress_every: u64,
    /// Reuse the real trials of an earlier `--json-out` file instead of running servers.
    #[arg(long)]
    pub real: Option<PathBuf>,
    /// Consul binary (default: .cache/consul/usr/bin/consul, as `.ci/fetch-consul` unpacks it).
    /// Not needed with `--real`.
    #[arg(long)]
    pub consul: Option<PathBuf>,
    /// Last octet of the first 127.0.0.x address used (each trial takes 3, in turn).
    #[arg(long, default_value_t = 100)]
    pub base_octet: u8,
}

/// `--against` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Against {
    /// Consul 1.8.7 servers started as local processes.
    Consul,
}

fn scenarios(arg: &Option<String>) -> Result<Vec<Scenario>, CliError> {
    let Some(list) = arg else {
        return Ok(SCENARIOS.to_vec());
    };
    list.split(',')
        .map(|s| {
            Scenario::parse(s).ok_or_else(|| {
                let known: Vec<&str> = SCENARIOS.iter().map(|s| s.name()).collect();
                CliError::new(format!(
                    "--scenarios: unknown scenario {s:?} (known: {})",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

fn default_consul() -> PathBuf {
    PathBuf::from(".cache/consul/usr/bin/consul")
}

fn consul_binary(arg: &Option<PathBuf>) -> Result<PathBuf, CliError> {
    let p = arg.clone().unwrap_or_else(default_consul);
    if p.is_file() {
        return Ok(p);
    }
    Err(CliError::new(format!(
        "--consul: {} not found; run .ci/fetch-consul (Consul 1.8.7 from Debian) or pass --consul PATH",
        p.display()
    )))
}

fn load_real(path: &PathBuf) -> Result<Vec<Runs>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::new(format!("--real {}: {e}", path.display())))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::new(format!("--real {}: {e}", path.display())))?;
    serde_json::from_value(v["runs"].clone()).map_err(|e| {
        CliError::new(format!(
            "--real {}: not a calibrate --json-out file: {e}",
            path.display()
        ))
    })
}

/// The next trial's first address octet: `first`, `first + 3`, … up to 250, then around again.
fn next_base(first: u8, slot: &mut usize) -> u8 {
    let first = first.clamp(2, 247);
    let slots = (250 - first as usize) / 3;
    let base = first as usize + (*slot % slots.max(1)) * 3;
    *slot += 1;
    base as u8
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    let Against::Consul = args.against;
    args.out.route_human_text();
    if args.trials == 0 || args.seeds == 0 {
        return Err(CliError::new("--trials and --seeds must be at least 1"));
    }
    let chosen = scenarios(&args.scenarios)?;
    let recorded = match &args.real {
        Some(p) => Some(load_real(p)?),
        None => None,
    };
    // Recorded trials need no server: the binary's path only fills the plan's `[execute]`
    // section, which the simulator ignores, so it need not exist then.
    let consul = match &recorded {
        Some(_) => args.consul.clone().unwrap_or_else(default_consul),
        None => consul_binary(&args.consul)?,
    };
    let plan = calibrate::real::plan(&consul).map_err(CliError::new)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    let mut all = Vec::new();
    let mut slot = 0usize;
    let real_trials = if recorded.is_some() { 0 } else { args.trials };
    let per_scenario = real_trials as u64 + args.seeds;
    let progress = crate::progress::install(crate::progress::Progress::of(
        chosen.len() as u64 * per_scenario,
        "trials and seeds",
        std::time::Duration::from_secs(args.progress_every),
    ));
    for s in chosen {
        let real = match &recorded {
            Some(r) => r
                .iter()
                .find(|x| x.scenario == s)
                .map(|x| x.real.clone())
                .ok_or_else(|| CliError::new(format!("--real: no trials of {}", s.name())))?,
            None => real_trials_of(&args, s, &consul, &rt, &mut slot)?,
        };
        let sim: Vec<Trial> = (1..=args.seeds)
            .map(|seed| {
                let t = calibrate::sim::run(s, seed, &plan);
                crate::progress::tick(false);
                t
            })
            .collect::<Result<_, _>>()
            .map_err(CliError::new)?;
        all.push(Runs {
            scenario: s,
            real,
            sim,
        });
    }
    drop(progress);
    let failing = print_comparison(&args, &all);
    let comparisons: Vec<_> = all.iter().map(compare).collect();
    args.out.emit(serde_json::json!({
        "against": "consul 1.8.7",
        "trials": args.trials,
        "seeds": args.seeds,
        "runs": all,
        "comparisons": comparisons,
    }))?;
    Ok(if failing {
        Verdict::Violated
    } else {
        Verdict::Ok
    })
}

/// `--trials` trials of one scenario on fresh local clusters. A cluster that does not come up
/// (an address still in use, a slow machine) is the harness's failure, not a trial: it is
/// retried on fresh addresses, twice.
fn real_trials_of(
    args: &Args,
    s: Scenario,
    consul: &std::path::Path,
    rt: &tokio::runtime::Runtime,
    slot: &mut usize,
) -> Result<Vec<Trial>, CliError> {
    let mut v = Vec::new();
    for t in 0..args.trials {
        let mut attempt = 0;
        let trial = loop {
            let base = next_base(args.base_octet, slot);
            let dir = std::env::temp_dir().join(format!(
                "rehearse-calibrate-{}-{}-{t}-{attempt}",
                std::process::id(),
                s.name()
            ));
            let opts = calibrate::real::options(consul, base, &dir);
            match rt.block_on(calibrate::real::run(s, opts)) {
                Ok(trial) => break trial,
                Err(e) if attempt < 2 => {
                    eprintln!("{} trial {t}: {e}; retrying", s.name());
                    attempt += 1;
                }
                Err(e) => {
                    return Err(CliError::new(format!("{} trial {t}: {e}", s.name())));
                }
            }
        };
        eprintln!(
            "real {} #{t}: {} {:?}",
            s.name(),
            trial.outcome,
            trial.timings
        );
        v.push(trial);
        crate::progress::tick(false);
    }
    Ok(v)
}

/// Prints the comparison table and which scenarios miss the goal; whether any does.
fn print_comparison(args: &Args, all: &[Runs]) -> bool {
    let comparisons: Vec<_> = all.iter().map(compare).collect();
    let counts: Vec<usize> = all.iter().map(|r| r.real.len()).collect();
    out!(
        "Consul 1.8.7, 3 servers: {}–{} real trials vs {} simulator seeds per scenario\n",
        counts.iter().min().unwrap_or(&0),
        counts.iter().max().unwrap_or(&0),
        args.seeds
    );
    out!("{}", calibrate::table(&comparisons).trim_end_matches('\n'));
    let failing: Vec<&str> = comparisons
        .iter()
        .filter(|c| !meets_goal(c))
        .map(|c| c.scenario.name())
        .collect();
    if failing.is_empty() {
        out!("\nevery scenario meets the goal (agreement >= 95%, medians within 25%)");
    } else {
        out!("\nbelow the goal: {}", failing.join(", "));
    }
    !failing.is_empty()
}
