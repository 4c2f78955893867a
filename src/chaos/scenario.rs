//! Scenario files: a plan, a procedure variant, faults, seeds, and the verdict expected.
//!
//! ```toml
//! name = "consul#8118: a rebooted server returns as a non-voter"
//! reference = "hashicorp/consul#8118"
//! plan = "../../plans/nomad-reboot-3-servers.toml"   # relative to this file
//! variant = "no-voter-wait"                          # optional; default "safe"
//! faults = ["pause:upgrading:9:60s"]                 # optional, kind:target:step:duration
//! seeds = 8                                          # optional; default 8
//! expect = "unsafe"   # safe | completed | halted | unsafe | lost_allocations | stalled_workload
//! expect_detail = "non-voter"                        # optional: must appear in a run's details
//!
//! [sim]                         # optional: cluster facts the plan does not describe
//! writes_per_sec = 10.0         # write workload (default 10, at most 1,000)
//! state_entries = 5000          # FSM size at the start (drives InstallSnapshot time)
//! snapshot_threshold = 8192     # hashicorp/raft SnapshotThreshold (Nomad raft_snapshot_threshold)
//! snapshot_interval_s = 120     # SnapshotInterval (raft_snapshot_interval)
//! trailing_logs = 10240         # TrailingLogs (raft_trailing_logs)
//! acl_enabled = false           # ACLs on (hashicorp/nomad#24231 needs them)
//! kill_timeout_s = 0            # allocations outlive a drain's completion this long (nomad#14293)
//! upgraded_num_schedulers = 0   # scheduler workers on servers running the target (nomad#15858)
//! ```

use super::explore::{Class, classify, run_with};
use super::{Fault, FaultError};
use crate::plan::Plan;
use crate::procedure::{ProcedureConfig, Variant};
use crate::rehearsal::{Outcome, Verdict, sim_config};
use rehearse_model::time::SEC;
use rehearse_model::versions::Version;
use rehearse_sim::SimConfig;
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
    /// At least one seed lost allocations (a node stopped while they ran, without a
    /// completed drain) and none is unsafe otherwise.
    LostAllocations,
    /// At least one seed completed safely but its jobs never recovered (an eval backlog left,
    /// or jobs below their counts, at the end of the run), and none is unsafe or lost
    /// allocations.
    StalledWorkload,
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
    /// A phrase that must appear in the details (problems, halt reason, notes, crash reasons)
    /// of at least one run of the expected kind: an unsafe run for `unsafe`, a halted run for
    /// `halted`, any run otherwise. Pins the scenario to its mechanism, not just any failure.
    #[serde(default)]
    pub expect_detail: Option<String>,
    /// Simulator settings the plan does not describe (workload, state size, snapshots).
    #[serde(default)]
    pub sim: SimOverrides,
}

/// Cluster facts a plan does not describe, needed by some mechanisms (a snapshot on disk, a
/// state too large to install quickly, a high write rate). Unset fields keep the defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimOverrides {
    /// Writes per simulated second (default 10).
    #[serde(default)]
    pub writes_per_sec: Option<f64>,
    /// FSM entries at the start (default 5,000); InstallSnapshot takes time proportional to it.
    #[serde(default)]
    pub state_entries: Option<u64>,
    /// hashicorp/raft SnapshotThreshold: entries applied since the last snapshot before a new
    /// one (default 8,192; Nomad's `raft_snapshot_threshold`).
    #[serde(default)]
    pub snapshot_threshold: Option<u64>,
    /// hashicorp/raft SnapshotInterval in seconds (default 120; Nomad's
    /// `raft_snapshot_interval`). The check runs at a random time in [I, 2I).
    #[serde(default)]
    pub snapshot_interval_s: Option<u64>,
    /// hashicorp/raft TrailingLogs kept after a snapshot (default 10,240; Nomad's
    /// `raft_trailing_logs`).
    #[serde(default)]
    pub trailing_logs: Option<u64>,
    /// ACLs enabled on the servers (default false): the leader's own RPCs need its token
    /// (hashicorp/nomad#24231).
    #[serde(default)]
    pub acl_enabled: Option<bool>,
    /// Seconds the allocations of a drained server-client keep running after its drain
    /// reports complete: tasks' `kill_timeout`/`shutdown_delay` (default 0;
    /// hashicorp/nomad#14293).
    #[serde(default)]
    pub kill_timeout_s: Option<u64>,
    /// Scheduler workers (`server.num_schedulers`) on a server running the plan's target
    /// version: the configuration that ships with the new binary sets it (default: unchanged,
    /// 2 per server). 0 disables scheduling on that server (docs
    /// `configuration/server#num_schedulers`); once every server runs the target nobody
    /// dequeues, and evaluations pile up (hashicorp/nomad#15858, #16877). Needs `[[jobs]]`.
    #[serde(default)]
    pub upgraded_num_schedulers: Option<u32>,
}

impl SimOverrides {
    /// Applies the overrides to a simulator configuration whose upgrade targets `target`.
    pub fn apply(&self, mut c: SimConfig, target: Version) -> SimConfig {
        if let Some(w) = self.writes_per_sec {
            c.workload.writes_per_sec = w;
        }
        if let Some(n) = self.state_entries {
            c.workload.initial_state_entries = n;
        }
        if let Some(n) = self.snapshot_threshold {
            c.raft.snapshot_threshold = n;
        }
        if let Some(s) = self.snapshot_interval_s {
            c.raft.snapshot_interval_ns = s.saturating_mul(SEC);
        }
        if let Some(n) = self.trailing_logs {
            c.raft.trailing_logs = n;
        }
        if let Some(a) = self.acl_enabled {
            c.acl_enabled = a;
        }
        if let Some(s) = self.kill_timeout_s {
            c.clients.kill_timeout_ns = s.saturating_mul(SEC);
        }
        if let Some(n) = self.upgraded_num_schedulers {
            c.plane.num_schedulers_by_version = vec![(target, n)];
        }
        c
    }

    /// Checks the values, naming the field at fault: the lower bounds here, the upper ones in
    /// `crate::bounds`.
    fn validate(&self) -> Result<(), (String, String)> {
        if self.snapshot_threshold == Some(0) {
            return Err(("sim.snapshot_threshold".into(), "must be at least 1".into()));
        }
        if self.snapshot_interval_s == Some(0) {
            return Err((
                "sim.snapshot_interval_s".into(),
                "must be at least 1".into(),
            ));
        }
        crate::bounds::sim_overrides(self)
    }
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

impl Loaded {
    /// The simulator configuration of one seed: the plan's cluster with the scenario's
    /// overrides.
    pub fn sim_config(&self, seed: u64) -> SimConfig {
        let target = self.plan.upgrade.target;
        self.scenario
            .sim
            .apply(sim_config(&self.plan, seed), target)
    }

    /// The procedure configuration: the plan's procedure with the scenario's variant.
    pub fn procedure(&self) -> ProcedureConfig {
        self.scenario
            .variant
            .apply(ProcedureConfig::from_plan(&self.plan))
    }
}

/// Why a scenario file could not be loaded, naming the file, line and field.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read as text.
    #[error(transparent)]
    Read(#[from] crate::bounds::ReadError),
    /// The file is not a valid scenario (TOML or schema).
    #[error("{file}: {message}")]
    Parse {
        /// The scenario file.
        file: String,
        /// The parser's words.
        message: String,
    },
    /// A field's value is out of range.
    #[error("{at}: {field}: {message}")]
    Field {
        /// `file:line`.
        at: String,
        /// The field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The plan it names could not be read.
    #[error("{at}: plan: {source}")]
    PlanRead {
        /// `file:line` of the `plan` field.
        at: String,
        /// Why.
        source: crate::bounds::ReadError,
    },
    /// The plan it names is not valid.
    #[error("{file}: plan: {source}")]
    Plan {
        /// The scenario file.
        file: String,
        /// Why.
        source: crate::plan::PlanError,
    },
    /// A fault does not parse.
    #[error("{file}: faults[{index}]: {source}")]
    Fault {
        /// The scenario file.
        file: String,
        /// Its position in `faults`.
        index: usize,
        /// Why.
        source: FaultError,
    },
    /// Scenario directories nested more than 16 deep.
    #[error("{}: directories nested too deeply", path.display())]
    TooDeep {
        /// The directory.
        path: PathBuf,
    },
    /// A directory could not be listed.
    #[error("{}: {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Loads a scenario file, with errors naming the file, line and field.
pub fn load(path: &Path) -> Result<Loaded, ScenarioError> {
    let name = path.display().to_string();
    let text = crate::bounds::read_text(path)?;
    let scenario: Scenario = toml::from_str(&text).map_err(|e| ScenarioError::Parse {
        file: name.clone(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let at = |field: &str| crate::bounds::at_line(&name, &text, field);
    if !(1..=crate::bounds::MAX_SEEDS).contains(&scenario.seeds) {
        return Err(ScenarioError::Field {
            at: at("seeds"),
            field: "seeds".into(),
            message: format!(
                "{} is not between 1 and {}",
                scenario.seeds,
                crate::bounds::MAX_SEEDS
            ),
        });
    }
    scenario
        .sim
        .validate()
        .map_err(|(field, message)| ScenarioError::Field {
            at: at(&field),
            field,
            message,
        })?;
    let plan_path = path.parent().unwrap_or(Path::new(".")).join(&scenario.plan);
    let plan_text =
        crate::bounds::read_text(&plan_path).map_err(|source| ScenarioError::PlanRead {
            at: at("plan"),
            source,
        })?;
    let plan =
        Plan::from_str_named(&plan_text, &plan_path.display().to_string()).map_err(|source| {
            ScenarioError::Plan {
                file: name.clone(),
                source,
            }
        })?;
    if scenario.sim.upgraded_num_schedulers.is_some() && plan.jobs.is_empty() {
        return Err(ScenarioError::Field {
            at: at("upgraded_num_schedulers"),
            field: "sim.upgraded_num_schedulers".into(),
            message: "scheduler workers need jobs: the plan declares no [[jobs]]".into(),
        });
    }
    let faults = scenario
        .faults
        .iter()
        .enumerate()
        .map(|(index, f)| {
            f.parse::<Fault>().map_err(|source| ScenarioError::Fault {
                file: name.clone(),
                index,
                source,
            })
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
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut out = Vec::new();
    for p in paths {
        collect(p, &mut out, 0)?;
    }
    out.sort();
    Ok(out)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), ScenarioError> {
    if depth > 16 {
        return Err(ScenarioError::TooDeep {
            path: p.to_path_buf(),
        });
    }
    if p.is_file() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    let read_dir = |source| ScenarioError::ReadDir {
        path: p.to_path_buf(),
        source,
    };
    for e in std::fs::read_dir(p).map_err(read_dir)? {
        let path = e.map_err(read_dir)?.path();
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
    let cfg = l.procedure();
    let file = l.path.display().to_string();
    let runs: Vec<RunRecord> = seeds
        .map(|seed| {
            let (o, _) = run_with(&cfg, l.sim_config(seed), &l.faults);
            let class = classify(&o);
            let detail = details(&o);
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
    let passed = matches_expectation(l.scenario.expect, &runs)
        && l.scenario
            .expect_detail
            .as_deref()
            .is_none_or(|d| detail_found(l.scenario.expect, d, &runs));
    ScenarioResult {
        name: l.scenario.name.clone(),
        file,
        expect: l.scenario.expect,
        passed,
        runs,
        seconds: 0.0,
    }
}

/// What a run's record says about it: problems or the halt reason, then the procedure's notes
/// (`note: …`) and notable simulator events (`sim: s2 crashed: …`).
fn details(o: &Outcome) -> Vec<String> {
    let mut out = match &o.verdict {
        Verdict::Unsafe { problems }
        | Verdict::LostAllocations { problems }
        | Verdict::StalledWorkload { problems } => problems.clone(),
        Verdict::Halted { reason } => vec![reason.clone()],
        Verdict::Completed => Vec::new(),
    };
    out.extend(o.notes.iter().map(|n| format!("note: {n}")));
    out.extend(o.events.iter().map(|e| format!("sim: {e}")));
    out
}

/// Whether `phrase` appears in the details of a run of the expected kind.
fn detail_found(e: Expect, phrase: &str, runs: &[RunRecord]) -> bool {
    let kind = |r: &&RunRecord| match e {
        Expect::Unsafe => r.class == Class::Unsafe,
        Expect::Halted => r.class == Class::Halted,
        Expect::LostAllocations => r.class == Class::LostAllocations,
        Expect::StalledWorkload => r.class == Class::StalledWorkload,
        Expect::Safe | Expect::Completed => true,
    };
    runs.iter()
        .filter(kind)
        .any(|r| r.detail.iter().any(|d| d.contains(phrase)))
}

fn matches_expectation(e: Expect, runs: &[RunRecord]) -> bool {
    let any = |c: Class| runs.iter().any(|r| r.class == c);
    let no_unsafe = !any(Class::Unsafe);
    let no_loss = !any(Class::LostAllocations);
    let no_stall = !any(Class::StalledWorkload);
    match e {
        Expect::Safe => no_unsafe && no_loss && no_stall,
        Expect::Completed => runs.iter().all(|r| r.class == Class::Completed),
        Expect::Halted => no_unsafe && no_loss && no_stall && any(Class::Halted),
        Expect::Unsafe => any(Class::Unsafe),
        Expect::LostAllocations => no_unsafe && any(Class::LostAllocations),
        Expect::StalledWorkload => no_unsafe && no_loss && any(Class::StalledWorkload),
    }
}

/// The JSON schema of scenario files (kept in `scenarios/schema.json`).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Scenario);
    // A schema of plain derived types always serializes.
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// JUnit with one test case per scenario (classname `rehearse.scenarios.<file stem>`); a
/// failing case's body lists the runs that broke the expectation, each with its replay line.
pub fn junit(results: &[ScenarioResult]) -> quick_junit::Report {
    let cases = results
        .iter()
        .map(|r| {
            let class = crate::output::classname("scenarios", Path::new(&r.file));
            let failure = (!r.passed).then(|| failure_body(r));
            crate::output::case(&class, &r.name, failure, r.seconds)
        })
        .collect();
    crate::output::report("rehearse chaos", "scenarios", cases)
}

/// A failed scenario's message and body: what was expected, what the seeds showed, and the
/// runs that show it (those not completed first), each with its detail and replay line.
fn failure_body(r: &ScenarioResult) -> (String, String) {
    let mut counts: Vec<(Class, usize)> = Vec::new();
    for run in &r.runs {
        match counts.iter_mut().find(|(c, _)| *c == run.class) {
            Some((_, n)) => *n += 1,
            None => counts.push((run.class, 1)),
        }
    }
    let got: Vec<String> = counts
        .iter()
        .map(|(c, n)| format!("{c:?} on {n}"))
        .collect();
    let message = format!(
        "expected {:?} over {} seeds, got {}",
        r.expect,
        r.runs.len(),
        got.join(", ")
    );
    let mut shown: Vec<&RunRecord> = r
        .runs
        .iter()
        .filter(|x| x.class != Class::Completed)
        .collect();
    if shown.is_empty() {
        shown = r.runs.iter().collect();
    }
    let mut body = format!("{message}\n");
    for run in shown.iter().take(10) {
        body += &format!(
            "seed {}: {:?}: {}\n  trace hash {}\n  replay: {}\n",
            run.seed,
            run.class,
            if run.detail.is_empty() {
                "(no detail)".to_string()
            } else {
                run.detail.join("; ")
            },
            run.trace_hash,
            run.replay
        );
    }
    if shown.len() > 10 {
        body += &format!("... and {} more runs\n", shown.len() - 10);
    }
    (message, body)
}
