//! `rehearse chaos [PATHS…]`: run scenario files and compare each verdict with its expectation.

use crate::chaos::scenario::{ScenarioResult, discover, junit, load, run};
use crate::cli::{CliError, Verdict};
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `rehearse chaos`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Scenario files or directories (default: scenarios/).
    pub paths: Vec<PathBuf>,
    /// Seeds per scenario (default: each scenario's own).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Run only this seed (the replay form).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write JUnit XML (one test case per scenario) to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Machine output: `{"schema_version": 1, "scenarios": […], "runs": […]}`, one record per
    /// run (everything needed to replay it; `rehearse replay` reads the document).
    #[command(flatten)]
    pub out: crate::output::JsonArgs,
    /// Run only shard i of n (`1/4`), by scenario index.
    #[arg(long)]
    pub shard: Option<String>,
}

fn parse_shard(s: &str) -> Result<(usize, usize), CliError> {
    let (k, n) = crate::chaos::shard::parse_shard(s).map_err(CliError::new)?;
    Ok((k as usize, n as usize))
}

/// Runs the command.
pub fn run_cmd(args: Args) -> Result<Verdict, CliError> {
    args.out.route_human_text();
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("scenarios")]
    } else {
        args.paths.clone()
    };
    let shard = args.shard.as_deref().map(parse_shard).transpose()?;
    if let Some(n) = args.seeds {
        crate::bounds::seed_range(1, n, "--seeds").map_err(CliError::new)?;
    }
    let files = discover(&paths).map_err(CliError::new)?;
    let loaded = files
        .iter()
        .map(|f| load(f).map_err(CliError::new))
        .collect::<Result<Vec<_>, _>>()?;
    let mut results: Vec<ScenarioResult> = Vec::new();
    for (i, l) in loaded.iter().enumerate() {
        if shard.is_some_and(|(k, n)| i % n != k) {
            continue;
        }
        let started = Instant::now();
        let seeds = match (args.seed, args.seeds) {
            // `n` was checked above: `1..=n` holds at most `MAX_SEEDS` seeds.
            (Some(s), _) => Some(s..=s),
            (None, Some(n)) => Some(1..=n),
            (None, None) => None,
        };
        let mut r = run(l, seeds);
        r.seconds = started.elapsed().as_secs_f64();
        let mark = if r.passed { "ok  " } else { "FAIL" };
        out!(
            "{mark} {} ({}, expect {:?}, {} seeds)",
            r.name,
            r.file,
            r.expect,
            r.runs.len()
        );
        if !r.passed {
            for run in r.runs.iter().filter(|x| !x.detail.is_empty()).take(3) {
                out!(
                    "     seed {}: {:?}: {}",
                    run.seed,
                    run.class,
                    run.detail.join("; ")
                );
                out!("     replay: {}", run.replay);
            }
        }
        results.push(r);
    }
    write_outputs(&args, &results)?;
    let failed = results.iter().filter(|r| !r.passed).count();
    out!("{} passed, {failed} failed", results.len() - failed);
    Ok(if failed == 0 {
        Verdict::Ok
    } else {
        Verdict::Violated
    })
}

fn write_outputs(args: &Args, results: &[ScenarioResult]) -> Result<(), CliError> {
    if let Some(path) = &args.junit {
        crate::output::write_junit(path, &junit(results))?;
    }
    args.out.emit(document(results))
}

/// The `--json` document: each scenario's verdict, then every run's record.
pub fn document(results: &[ScenarioResult]) -> serde_json::Value {
    let scenarios: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "file": r.file,
                "expect": r.expect,
                "passed": r.passed,
                "seeds": r.runs.len(),
                "seconds": r.seconds,
            })
        })
        .collect();
    let runs: Vec<&crate::chaos::scenario::RunRecord> =
        results.iter().flat_map(|r| &r.runs).collect();
    let failed = results.iter().filter(|r| !r.passed).count();
    serde_json::json!({
        "passed": results.len() - failed,
        "failed": failed,
        "scenarios": scenarios,
        "runs": runs,
    })
}
