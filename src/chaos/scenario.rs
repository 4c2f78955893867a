//! Scenario files: a plan, a procedure variant, faults, seeds, and the verdict expected.
//!
//! ```toml
//! name = "consul#8118: a rebooted server returns as a non-voter"
//! reference = "hashicorp/consul#8118"
//! plan = "../../plans/nomad-reboot-3-servers.toml"   # relative to this file
//! variant = "no-voter-wait"                          # optional; default "safe"
//! faults = ["pause:upgrading:9:60s"]                 # optional, kind:target:step:duration
//! seeds = 8                                          # optional; default 8
//! expect = "unsafe"                                  # safe | completed | halted | unsafe
//! ```

use super::Fault;
use super::explore::{Class, classify, run_one};
use crate::plan::Plan;
use crate::procedure::{ProcedureConfig, Variant};
use rehearse_sim::rng::fnv1a;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The verdict a scenario expects over all its seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// No seed is unsafe (completing or halting safely are both fine).
    Safe,
    /// Every seed completes.
    Completed,
    /// No seed is unsafe and at least one halts.
    Halted,
    /// At least one seed is unsafe: the scenario demonstrates a failure.
    Unsafe,
}

/// A scenario file.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in reports and JUnit.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Public issue behind it.
    #[serde(default)]
    pub reference: Option<String>,
    /// The plan file, relative to the scenario file.
    pub plan: PathBuf,
    /// Procedure variant (default safe).
    #[serde(default = "safe")]
    pub variant: Variant,
    /// Faults, in their one-line form `kind:target:step:duration`.
    #[serde(default)]
    pub faults: Vec<String>,
    /// Seeds to run (1..=seeds).
    #[serde(default = "eight")]
    pub seeds: u64,
    /// Expected verdict.
    pub expect: Expect,
}

fn safe() -> Variant {
    Variant::Safe
}
fn eight() -> u64 {
    8
}

/// A scenario ready to run.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// File it came from.
    pub path: PathBuf,
    /// The scenario.
    pub scenario: Scenario,
    /// Its plan.
    pub plan: Plan,
    /// Parsed faults.
    pub faults: Vec<Fault>,
    /// Hash of the scenario and plan texts (with the seed, identifies a run).
    pub hash: u64,
}

/// Loads a scenario file, with errors naming the file, line and field.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let scenario: Scenario =
        toml::from_str(&text).map_err(|e| format!("{name}: {}", e.to_string().trim_end()))?;
    if scenario.seeds == 0 {
        return Err(format!("{name}: seeds: must be at least 1"));
    }
    let plan_path = path.parent().unwrap_or(Path::new(".")).join(&scenario.plan);
    let plan_text = std::fs::read_to_string(&plan_path)
        .map_err(|e| format!("{name}: plan: {}: {e}", plan_path.display()))?;
    let plan = Plan::from_str_named(&plan_text, &plan_path.display().to_string())
        .map_err(|e| format!("{name}: plan: {e}"))?;
    let faults = scenario
        .faults
        .iter()
        .enumerate()
        .map(|(i, f)| {
            f.parse::<Fault>()
                .map_err(|e| format!("{name}: faults[{i}]: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let hash = fnv1a(fnv1a(0, text.as_bytes()), plan_text.as_bytes());
    Ok(Loaded {
        path: path.to_path_buf(),
        scenario,
        plan,
        faults,
        hash,
    })
}

/// Scenario files under the given paths (directories are searched recursively), sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        collect(p, &mut out, 0)?;
    }
    out.sort();
    Ok(out)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), String> {
    if depth > 16 {
        return Err(format!("{}: directories nested too deeply", p.display()));
    }
    if p.is_file() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(p).map_err(|e| format!("{}: {e}", p.display()))?;
    for e in entries {
        let path = e.map_err(|e| format!("{}: {e}", p.display()))?.path();
        if path.is_dir() {
            collect(&path, out, depth + 1)?;
        } else if path.extension().is_some_and(|x| x == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// One seed's result.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub file: String,
    /// Scenario hash.
    pub scenario_hash: String,
    /// rehearse version.
    pub rehearse_version: String,
    /// Seed.
    pub seed: u64,
    /// Class of the outcome.
    pub class: Class,
    /// Problems (for unsafe runs) or the halt reason.
    pub detail: Vec<String>,
    /// Trace hash.
    pub trace_hash: String,
    /// Command that reproduces this run.
    pub replay: String,
}

/// A scenario's result over its seeds.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// File.
    pub file: String,
    /// Expected.
    pub expect: Expect,
    /// Whether the runs matched the expectation.
    pub passed: bool,
    /// Per-seed records.
    pub runs: Vec<RunRecord>,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Runs a scenario on the given seeds (its own `1..=seeds` by default).
pub fn run(l: &Loaded, seeds: Option<std::ops::RangeInclusive<u64>>) -> ScenarioResult {
    let seeds = seeds.unwrap_or(1..=l.scenario.seeds);
    let cfg = l
        .scenario
        .variant
        .apply(ProcedureConfig::from_plan(&l.plan));
    let file = l.path.display().to_string();
    let runs: Vec<RunRecord> = seeds
        .map(|seed| {
            let (o, _) = run_one(&l.plan, &cfg, &l.faults, seed);
            let class = classify(&o);
            let detail = match &o.verdict {
                crate::rehearsal::Verdict::Unsafe { problems } => problems.clone(),
                crate::rehearsal::Verdict::Halted { reason } => vec![reason.clone()],
                crate::rehearsal::Verdict::Completed => Vec::new(),
            };
            RunRecord {
                scenario: l.scenario.name.clone(),
                file: file.clone(),
                scenario_hash: format!("{:016x}", l.hash),
                rehearse_version: env!("CARGO_PKG_VERSION").into(),
                seed,
                class,
                detail,
                trace_hash: format!("{:016x}", o.trace_hash),
                replay: format!("rehearse chaos {file} --seed {seed}"),
            }
        })
        .collect();
    let passed = matches_expectation(l.scenario.expect, &runs);
    ScenarioResult {
        name: l.scenario.name.clone(),
        file,
        expect: l.scenario.expect,
        passed,
        runs,
        seconds: 0.0,
    }
}

fn matches_expectation(e: Expect, runs: &[RunRecord]) -> bool {
    let any = |c: Class| runs.iter().any(|r| r.class == c);
    let no_unsafe = !any(Class::Unsafe);
    match e {
        Expect::Safe => no_unsafe,
        Expect::Completed => runs.iter().all(|r| r.class == Class::Completed),
        Expect::Halted => no_unsafe && any(Class::Halted),
        Expect::Unsafe => any(Class::Unsafe),
    }
}

/// The JSON schema of scenario files (kept in `scenarios/schema.json`).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Scenario);
    // A schema of plain derived types always serializes.
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// JUnit XML with one test case per scenario.
pub fn junit(results: &[ScenarioResult]) -> String {
    let failures = results.iter().filter(|r| !r.passed).count();
    let mut x = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rehearse chaos\" tests=\"{}\" failures=\"{failures}\">\n<testsuite name=\"scenarios\" tests=\"{}\" failures=\"{failures}\">\n",
        results.len(),
        results.len()
    );
    for r in results {
        x.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">\n",
            esc(&r.file),
            esc(&r.name),
            r.seconds
        ));
        if !r.passed {
            let body: Vec<String> = r
                .runs
                .iter()
                .filter(|run| run.class != Class::Completed)
                .map(|run| {
                    format!(
                        "seed {}: {:?}: {} (replay: {})",
                        run.seed,
                        run.class,
                        run.detail.join("; "),
                        run.replay
                    )
                })
                .collect();
            x.push_str(&format!(
                "    <failure message=\"expected {:?}\">{}</failure>\n",
                r.expect,
                esc(&body.join("\n"))
            ));
        }
        x.push_str("  </testcase>\n");
    }
    x.push_str("</testsuite>\n</testsuites>\n");
    x
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
