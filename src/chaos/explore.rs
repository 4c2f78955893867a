//! The explorer: every fault kind × target × step boundary (× every pair with two faults),
//! on several seeds, in parallel. Results are folded into counts as they arrive, so memory
//! stays flat however many runs there are; only findings are kept (bounded). It records the
//! time to first detection (runs and wall seconds until the first unsafe run), can stop there,
//! and hands unsafe findings to the shrinker (`super::shrink`).

use super::fault::{Fault, FaultHooks, FaultKind, Target, landing};
use super::shrink::{Shrunk, shrink};
use crate::plan::Plan;
use crate::procedure::ProcedureConfig;
use crate::rehearsal::{
    Checkpoint, NoFaults, Outcome, Verdict, rehearse, rehearse_with, sim_config,
};
use rehearse_model::time::SEC;
use rehearse_sim::SimConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Most findings kept (the counts still cover every run).
pub const FINDINGS_MAX: usize = 1_000;
/// Fault durations tried: healed after 30 s, or permanent.
pub const DURATIONS_S: [Option<u64>; 2] = [Some(30), None];

/// What one run showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Completed.
    Completed,
    /// Halted safely.
    Halted,
    /// Quorum was lost with no unsafe action by the procedure: the faults exceeded what the
    /// cluster can tolerate (e.g. any second failure in a 3-server cluster mid-upgrade).
    BeyondTolerance,
    /// The procedure did something unsafe, or data was lost.
    Unsafe,
    /// The procedure stopped a node whose allocations still ran, without a completed drain
    /// (the cluster itself stayed safe).
    LostAllocations,
    /// The procedure completed safely, but the plan's jobs never recovered after it ended (an
    /// eval backlog left, or jobs below their counts).
    StalledWorkload,
}

/// Classifies an outcome.
pub fn classify(o: &Outcome) -> Class {
    let procedure_fault = !o.unsafe_stops.is_empty()
        || o.workload.lost_acked > 0
        || !o.violations.is_empty()
        || o.metrics.skew_crashes > 0
        || o.metrics.snapshot_refusals > 0
        || !o.client_problems.is_empty();
    match &o.verdict {
        Verdict::Unsafe { .. } if procedure_fault => Class::Unsafe,
        Verdict::Unsafe { .. } => Class::BeyondTolerance,
        Verdict::LostAllocations { .. } => Class::LostAllocations,
        Verdict::StalledWorkload { .. } => Class::StalledWorkload,
        Verdict::Halted { .. } => Class::Halted,
        Verdict::Completed => Class::Completed,
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A run that went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The faults.
    pub faults: Vec<Fault>,
    /// The seed.
    pub seed: u64,
    /// Class.
    pub class: Class,
    /// What went wrong.
    pub problems: Vec<String>,
}

/// Totals of an exploration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Runs (schedules × seeds).
    pub runs: u64,
    /// Runs actually simulated from a fork: the others were the same run as one already
    /// simulated (see `explore_with`: same seed, same fault on the same server at the same
    /// step, a fault that missed, a bad binary that boots at the same step).
    pub simulated: u64,
    /// Runs in which at least one fault found its target.
    pub fired: u64,
    /// Completed.
    pub completed: u64,
    /// Halted safely.
    pub halted: u64,
    /// Quorum lost by the faults alone.
    pub beyond_tolerance: u64,
    /// Unsafe.
    pub unsafe_runs: u64,
    /// Runs that lost allocations (a node stopped with running allocations and no completed
    /// drain) and were otherwise safe.
    #[serde(skip_serializing_if = "is_zero")]
    pub lost_allocations: u64,
    /// The workload plane's figures over the runs when the plan declares jobs (eval backlog
    /// peak, time to recover, allocations lost with faults included), as counts that add up
    /// across shards. Absent without jobs.
    #[serde(skip_serializing_if = "crate::check::WorkloadTally::is_empty")]
    pub workload: crate::check::WorkloadTally,
    /// Runs that completed safely but whose jobs never recovered.
    #[serde(skip_serializing_if = "is_zero")]
    pub stalled_workload: u64,
    /// Kept findings (unsafe first), at most `FINDINGS_MAX`.
    pub findings: Vec<Finding>,
    /// When the first unsafe run was found (time to first detection), if any was.
    pub first_unsafe: Option<FirstUnsafe>,
    /// Whether the exploration stopped at the first unsafe run (`fail_fast`).
    pub stopped_early: bool,
    /// Unsafe findings shrunk to minimal schedules (filled by the caller that shrinks).
    pub shrunk: Vec<Shrunk>,
}

/// Time to first detection: how far the explorer got before its first unsafe run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FirstUnsafe {
    /// Runs finished when the first unsafe result came in (that one included). It depends on
    /// how the work was shared between threads.
    pub after_runs: u64,
    /// Wall seconds from the start of the exploration to that result.
    pub after_s: f64,
    /// Position (1-based) of the earliest unsafe run in the run order (seeds × schedules,
    /// schedules innermost): the same whatever the number of jobs.
    pub first_in_order: u64,
}

/// How to explore.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExploreOptions {
    /// Stop at the first unsafe run (the totals then cover only the runs done).
    pub fail_fast: bool,
}

/// The step boundaries worth a fault: before every action that changes something, and before
/// the first observation after it (the gate's first look), taken from a fault-free run.
pub fn boundaries(baseline: &Outcome) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, s) in baseline.steps.iter().enumerate() {
        if !matches!(s.action, crate::procedure::Action::Observe { .. }) {
            out.push(i);
            out.push(i + 1);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Every single fault at every boundary.
pub fn single_faults(steps: &[usize]) -> Vec<Fault> {
    let mut out = Vec::new();
    for &step in steps {
        for kind in FaultKind::ALL {
            let targets: &[Target] = if kind.targeted() {
                &Target::ALL
            } else {
                &[Target::Leader]
            };
            for &target in targets {
                for duration_s in DURATIONS_S {
                    out.push(Fault {
                        kind,
                        target,
                        step,
                        duration_s,
                    });
                }
            }
        }
    }
    out
}

/// The schedules to try: single faults, or ordered pairs at different steps, capped.
pub fn schedules(steps: &[usize], faults: usize, max: usize) -> Vec<Vec<Fault>> {
    let singles = single_faults(steps);
    if faults <= 1 {
        return singles.into_iter().take(max).map(|f| vec![f]).collect();
    }
    let mut out = Vec::new();
    'outer: for (i, a) in singles.iter().enumerate() {
        for b in &singles[i + 1..] {
            if b.step > a.step {
                out.push(vec![*a, *b]);
                if out.len() >= max {
                    break 'outer;
                }
            }
        }
    }
    out
}

/// Runs every schedule on every seed with `jobs` threads; `progress` is called with the number
/// of runs done.
pub fn explore(
    plan: &Plan,
    cfg: &ProcedureConfig,
    schedules: &[Vec<Fault>],
    seeds: std::ops::Range<u64>,
    jobs: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Totals {
    let opts = ExploreOptions::default();
    explore_with(plan, cfg, schedules, seeds, jobs, &opts, progress)
}

/// `explore` with options (stop at the first unsafe run).
///
/// How the work is shared. The run order is seeds outermost, then the schedules in their
/// order. Work is handed out as (seed, step) units: every schedule of a seed whose first
/// fault is at that step. A run with its first fault at step k is the fault-free run up to
/// step k, then the faulty rest (see `rehearsal::Checkpoint`), so each thread walks one
/// fault-free run per seed forward and forks it at each unit's step instead of simulating the
/// prefix again for every fault. Single faults that are the same run are simulated once:
/// - within a unit, faults that land on the same server (roles are resolved at the step:
///   "pending" and "other" are often the same server), counting a stop and a crash as one
///   (`FaultKind::same_run_as`) and, for a fault that never heals, every duration as one;
/// - a fault whose role no server has misses: its run is the seed's fault-free run, walked
///   once per seed and shared by the threads;
/// - a one-way partition aimed at the leader (messages from the leader to the leader) cuts
///   nothing: its injection does nothing, and healing it clears no partition (it only leaves
///   the simulator's steady period, which changes no outcome), so its run is the fault-free
///   one too, with the fault counted as fired;
/// - a bad binary (`FaultKind::latent`) changes nothing until the server boots, so every such
///   fault on a server whose next boot on the fault-free run is in step j is one run, shared
///   across units; one whose server gets another binary first, or never boots again, is the
///   fault-free run.
///
/// Every schedule × seed is still counted as a run; `simulated` says how many runs were
/// actually simulated.
pub fn explore_with(
    plan: &Plan,
    cfg: &ProcedureConfig,
    schedules: &[Vec<Fault>],
    seeds: std::ops::Range<u64>,
    jobs: usize,
    opts: &ExploreOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Totals {
    let seeds: Vec<u64> = seeds.collect();
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let totals = Mutex::new(Totals::default());
    let stopped = AtomicBool::new(false);
    let simulated = for_each_run(plan, cfg, schedules, &seeds, jobs, &|r: &RunAt<'_>| {
        let run = Run {
            index: r.seed_pos * schedules.len() + r.schedule,
            sched: &schedules[r.schedule],
            seed: r.seed,
            ran: r.result,
        };
        let stop = fold(&totals, &run, started) == Class::Unsafe && opts.fail_fast;
        stopped.fetch_or(stop, Ordering::Relaxed);
        progress(done.fetch_add(1, Ordering::Relaxed) + 1);
        stop
    });
    let mut t = totals.into_inner().unwrap_or_else(|e| e.into_inner());
    t.simulated = simulated;
    t.stopped_early = stopped.load(Ordering::Relaxed);
    keep_first_findings(&mut t.findings);
    t
}

/// Sorts findings (unsafe first, then by faults and seed) and keeps the first `FINDINGS_MAX`:
/// the same list whatever order the runs finished in and however the sweep was sharded.
pub fn keep_first_findings(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| {
        let key = |f: &Finding| (f.class != Class::Unsafe, f.faults.clone(), f.seed);
        key(a).cmp(&key(b))
    });
    findings.truncate(FINDINGS_MAX);
}

/// One run as `for_each_run` hands it over.
pub struct RunAt<'a> {
    /// Index of the schedule in the list given.
    pub schedule: usize,
    /// Position of the seed in the list given.
    pub seed_pos: usize,
    /// The seed.
    pub seed: u64,
    /// What the run showed.
    pub result: &'a RunResult,
}

/// Runs every schedule on every seed with `jobs` threads (see `explore_with` for how the work
/// is shared) and calls `each` with every run as it finishes, in no fixed order; `each`
/// returns true to stop. Returns the number of runs actually simulated.
pub fn for_each_run(
    plan: &Plan,
    cfg: &ProcedureConfig,
    schedules: &[Vec<Fault>],
    seeds: &[u64],
    jobs: usize,
    each: &(dyn Fn(&RunAt<'_>) -> bool + Sync),
) -> u64 {
    for_each_run_in(plan, cfg, schedules, seeds, jobs, &|_, _| true, each)
}

/// `for_each_run` on the units `keep(seed position, first step)` accepts only (a shard of the
/// sweep, or what a resumed sweep has left to do).
pub fn for_each_run_in(
    plan: &Plan,
    cfg: &ProcedureConfig,
    schedules: &[Vec<Fault>],
    seeds: &[u64],
    jobs: usize,
    keep: &(dyn Fn(usize, usize) -> bool + Sync),
    each: &(dyn Fn(&RunAt<'_>) -> bool + Sync),
) -> u64 {
    let groups = by_first_step(schedules);
    let units = units_of(&groups, seeds.len(), keep);
    let stop = AtomicBool::new(false);
    let sh = Shared {
        plan,
        cfg,
        seeds,
        lines: seeds.iter().map(|_| Mutex::default()).collect(),
        left: (0..seeds.len())
            .map(|s| AtomicUsize::new(units.iter().filter(|u| u.0 == s).count()))
            .collect(),
        latent: Mutex::default(),
        simulated: AtomicUsize::new(0),
    };
    let walkers =
        crate::pool::for_each_unit(units.len(), jobs, &stop, Walker::default, |walker, u| {
            let (seed_pos, g) = units[u];
            let (step, members) = &groups[g];
            let seed = seeds[seed_pos];
            let fork = walker.at(plan, cfg, seed, *step).clone();
            let keys: Vec<Option<Landing>> = members
                .iter()
                .map(|&i| landing_key(&fork, &schedules[i]))
                .collect();
            let mut same: Vec<(Landing, RunResult)> = Vec::new();
            for (&i, &key) in members.iter().zip(&keys) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let unit = Unit {
                    seed_pos,
                    step: *step,
                    fork: &fork,
                    keys: &keys,
                };
                let result = sh.result_of(walker, &unit, &schedules[i], key, &mut same);
                let at = RunAt {
                    schedule: i,
                    seed_pos,
                    seed,
                    result: &result,
                };
                if each(&at) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            sh.unit_done(seed_pos);
        });
    walkers.iter().map(|w| w.simulated).sum::<u64>() + sh.simulated.into_inner() as u64
}

/// What the workers of one sweep share. Per seed: its fault-free line (walked by the first
/// thread that needs it, the others waiting on the lock) and the units not finished yet. When
/// a seed's last unit is done, its line and its latent runs are dropped, so memory stays flat
/// however many seeds run.
struct Shared<'a> {
    plan: &'a Plan,
    cfg: &'a ProcedureConfig,
    seeds: &'a [u64],
    lines: Vec<Mutex<Option<Arc<SeedLine>>>>,
    left: Vec<AtomicUsize>,
    /// Latent runs, simulated once by the first unit that needs one.
    latent: Mutex<BTreeMap<LatentKey, Arc<OnceLock<RunResult>>>>,
    /// Latent runs simulated.
    simulated: AtomicUsize,
}

/// One unit's fork: the seed's fault-free run paused at the unit's step, and the landing of
/// each of its schedules.
struct Unit<'u> {
    seed_pos: usize,
    step: usize,
    fork: &'u Checkpoint,
    keys: &'u [Option<Landing>],
}

impl Shared<'_> {
    fn line(&self, seed_pos: usize) -> Arc<SeedLine> {
        let mut l = self.lines[seed_pos]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        l.get_or_insert_with(|| Arc::new(SeedLine::walk(self.plan, self.cfg, self.seeds[seed_pos])))
            .clone()
    }

    /// Marks one of a seed's units done; after its last, drops its line and latent runs.
    fn unit_done(&self, seed_pos: usize) {
        if self.left[seed_pos].fetch_sub(1, Ordering::AcqRel) == 1 {
            *self.lines[seed_pos]
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
            let mut m = self.latent.lock().unwrap_or_else(|e| e.into_inner());
            m.retain(|k, _| k.0 != seed_pos);
        }
    }

    /// The result of `sched` in `unit`: a run already had (the same landing, the fault-free
    /// line, a latent fault's shared run) or a new simulation.
    fn result_of(
        &self,
        walker: &mut Walker,
        unit: &Unit<'_>,
        sched: &[Fault],
        key: Option<Landing>,
        same: &mut Vec<(Landing, RunResult)>,
    ) -> RunResult {
        let (seed_pos, fork, cfg) = (unit.seed_pos, unit.fork, self.cfg);
        let known = key.and_then(|k| same.iter().find(|(l, _)| *l == k));
        match (key, known) {
            (_, Some((_, r))) => r.clone(),
            (Some(Landing::Missed), None) => self.line(seed_pos).result.clone(),
            // A one-way partition from the leader to itself: nothing to cut.
            (Some(Landing::On(FaultKind::OneWay, Some(x), _)), None)
                if fork.world().leader() == Some(x) =>
            {
                RunResult {
                    fired: true,
                    ..self.line(seed_pos).result.clone()
                }
            }
            (Some(Landing::On(kind, Some(x), _)), None) if kind.latent() => {
                self.latent_run(unit, kind, x, sched)
            }
            (Some(Landing::On(kind, target, _)), None) if kind != FaultKind::ClientDown => {
                // Every duration of this fault on this server, in one go.
                let mut durations: Vec<Option<u64>> = unit
                    .keys
                    .iter()
                    .filter_map(|k| match k {
                        Some(Landing::On(k2, t2, d)) if (*k2, *t2) == (kind, target) => Some(*d),
                        _ => None,
                    })
                    .collect();
                durations.sort_unstable();
                durations.dedup();
                walker.simulated += durations.len() as u64;
                let runs = run_durations(fork, cfg, sched[0], &durations);
                for (d, r) in runs {
                    same.push((Landing::On(kind, target, d), r));
                }
                let mine = same.iter().find(|(l, _)| Some(*l) == key);
                mine.map(|(_, r)| r.clone())
                    .unwrap_or_else(|| unreachable!("run_durations answers every duration"))
            }
            (_, None) => {
                walker.simulated += 1;
                let r = RunResult::of(fork.clone(), cfg, sched);
                if let Some(k) = key {
                    same.push((k, r.clone()));
                }
                r
            }
        }
    }

    /// A latent fault on server `x`: every such fault whose first boot is in the same step is
    /// this run, simulated once, whichever unit comes first.
    fn latent_run(
        &self,
        unit: &Unit<'_>,
        kind: FaultKind,
        x: rehearse_sim::ServerId,
        sched: &[Fault],
    ) -> RunResult {
        let seed_pos = unit.seed_pos;
        match self.line(seed_pos).first_boot(unit.step, x) {
            Some(j) => {
                let cell = {
                    let mut m = self.latent.lock().unwrap_or_else(|e| e.into_inner());
                    m.entry((seed_pos, kind, x, j)).or_default().clone()
                };
                cell.get_or_init(|| {
                    self.simulated.fetch_add(1, Ordering::Relaxed);
                    RunResult::of(unit.fork.clone(), self.cfg, sched)
                })
                .clone()
            }
            // Replaced before it ran, or never run: the fault-free run.
            None => RunResult {
                fired: true,
                ..self.line(seed_pos).result.clone()
            },
        }
    }
}

/// The work units (seed position, group index), seeds outermost, that `keep(seed position,
/// first step)` accepts.
pub(crate) fn units_of(
    groups: &[(usize, Vec<usize>)],
    seeds: usize,
    keep: &(dyn Fn(usize, usize) -> bool + Sync),
) -> Vec<(usize, usize)> {
    (0..seeds)
        .flat_map(|s| (0..groups.len()).map(move |g| (s, g)))
        .filter(|&(s, g)| keep(s, groups[g].0))
        .collect()
}

/// Schedule indices grouped by the step of their first fault (ascending); a schedule with no
/// fault goes with step 0.
pub(crate) fn by_first_step(schedules: &[Vec<Fault>]) -> Vec<(usize, Vec<usize>)> {
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, s) in schedules.iter().enumerate() {
        let first = s.iter().map(|f| f.step).min().unwrap_or(0);
        groups.entry(first).or_default().push(i);
    }
    groups.into_iter().collect()
}

/// Where a single-fault schedule lands at its step: two schedules with the same landing are
/// the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Landing {
    /// No server has the role: the fault-free run.
    Missed,
    /// This fault kind on this server (or the network), healed after this long.
    On(FaultKind, Option<rehearse_sim::ServerId>, Option<u64>),
}

/// The landing of a one-fault schedule forked at its step; `None` for other schedules (they
/// are simulated each time).
pub(crate) fn landing_key(fork: &Checkpoint, sched: &[Fault]) -> Option<Landing> {
    let [f] = sched else {
        return None;
    };
    if fork.ended() || fork.step() != f.step {
        // The procedure ended before the fault's step: the fault never fires.
        return Some(Landing::Missed);
    }
    let (batch, upgraded) = fork.ctx();
    Some(match landing(fork.world(), f, &batch, &upgraded) {
        None => Landing::Missed,
        // A fault that does not heal lasts as long however long it was given.
        Some(target) => {
            let lasts = f.duration_s.filter(|_| f.kind.heals());
            Landing::On(f.kind.same_run_as(), target, lasts)
        }
    })
}

/// Runs fault `f` from `fork` with each of `durations` at once. Runs that differ only in how
/// long the fault lasts are the same run until the shorter one heals, which happens at the
/// first step boundary at or after its time (hooks run only there, and no time passes
/// between one step's `after` and the next step's `before`). So the longest variant runs, and
/// at each step boundary a shorter one whose time has come is forked off with its fault due
/// to heal; one that would heal only after the procedure ended is the longest run (every
/// fault heals when the procedure ends).
fn run_durations(
    fork: &Checkpoint,
    cfg: &ProcedureConfig,
    f: Fault,
    durations: &[Option<u64>],
) -> Vec<(Option<u64>, RunResult)> {
    // `None` (permanent) sorts first; otherwise the longest is last.
    let longest = if durations.contains(&None) {
        None
    } else {
        durations.iter().copied().max().flatten()
    };
    let mut shorter: Vec<u64> = durations.iter().flatten().copied().collect();
    shorter.sort_unstable();
    shorter.retain(|&d| Some(d) != longest);
    let injected_ns = fork.world().now().as_nanos();
    let mut hooks = FaultHooks::new(vec![Fault {
        duration_s: longest,
        ..f
    }]);
    let mut cp = fork.clone();
    let mut out = Vec::new();
    let mut next = 0;
    while !cp.ended() {
        if cp.step() > fork.step() {
            let now = cp.world().now().as_nanos();
            while let Some(&d) = shorter.get(next) {
                if now < injected_ns + d * SEC {
                    break;
                }
                let mut h = hooks.lasting(d, injected_ns);
                let o = cp.clone().resume(cfg, &mut h);
                out.push((Some(d), RunResult::from_outcome(&o, h.fired())));
                next += 1;
            }
        }
        cp.advance(cfg, &mut hooks);
    }
    let o = cp.resume(cfg, &mut hooks);
    let r = RunResult::from_outcome(&o, hooks.fired());
    for &d in &shorter[next..] {
        out.push((Some(d), r.clone()));
    }
    out.push((longest, r));
    out
}

/// What a run showed.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Its class.
    pub class: Class,
    /// What went wrong (for unsafe runs and runs that lost quorum).
    pub problems: Vec<String>,
    /// Whether any fault fired.
    pub fired: bool,
    /// The workload plane's figures (all zero for a plan without jobs).
    pub plane: rehearse_sim::WorkloadOutcome,
}

impl RunResult {
    pub(crate) fn of(fork: Checkpoint, cfg: &ProcedureConfig, sched: &[Fault]) -> RunResult {
        let mut hooks = FaultHooks::new(sched.to_vec());
        let o = fork.resume(cfg, &mut hooks);
        RunResult::from_outcome(&o, hooks.fired())
    }

    pub(crate) fn from_outcome(o: &Outcome, fired: bool) -> RunResult {
        RunResult {
            class: classify(o),
            problems: problems(o),
            fired,
            plane: o.workload_plane,
        }
    }
}

/// One thread's fault-free run of the current seed, walked forward to each unit's step.
#[derive(Default)]
pub(crate) struct Walker {
    seed: Option<u64>,
    at: Option<Checkpoint>,
    pub(crate) simulated: u64,
}

impl Walker {
    /// The fault-free run of `seed` paused at `step` (or where it ended, if earlier).
    pub(crate) fn at(
        &mut self,
        plan: &Plan,
        cfg: &ProcedureConfig,
        seed: u64,
        step: usize,
    ) -> &Checkpoint {
        let behind = self.seed != Some(seed)
            || self
                .at
                .as_ref()
                .is_none_or(|c| c.step() > step && !c.ended());
        if behind {
            self.at = Some(start(plan, cfg, seed));
            self.seed = Some(seed);
        }
        let cp = self.at.get_or_insert_with(|| unreachable!("set above"));
        while cp.step() < step && !cp.ended() {
            cp.advance(cfg, &mut NoFaults);
        }
        cp
    }
}

/// The start of seed `seed`'s run of `plan`.
fn start(plan: &Plan, cfg: &ProcedureConfig, seed: u64) -> Checkpoint {
    // A plan that parsed builds a valid world; a failure here is a bug worth seeing.
    Checkpoint::start(cfg, sim_config(plan, seed)).unwrap_or_else(|e| panic!("invalid world: {e}"))
}

/// Cache key of a latent fault's run: seed position, kind, server, step of its first boot.
type LatentKey = (usize, FaultKind, rehearse_sim::ServerId, usize);

/// A seed's fault-free run, walked once to the end and shared by every thread: its result, and
/// each server's boot and install counts before every step.
struct SeedLine {
    result: RunResult,
    /// `counts[b][server]`: (boots, installs) when step b is about to run.
    counts: Vec<Vec<(u64, u64)>>,
}

impl SeedLine {
    fn walk(plan: &Plan, cfg: &ProcedureConfig, seed: u64) -> SeedLine {
        let mut cp = start(plan, cfg, seed);
        let mut counts = Vec::new();
        loop {
            let w = cp.world();
            counts.push(
                (0..w.server_count())
                    .map(|id| w.boots_and_installs(id))
                    .collect(),
            );
            if cp.ended() {
                break;
            }
            cp.advance(cfg, &mut NoFaults);
        }
        let o = cp.resume(cfg, &mut NoFaults);
        SeedLine {
            result: RunResult::from_outcome(&o, false),
            counts,
        }
    }

    /// The step, at or after step `k`, in which server `x` next boots (possibly after an
    /// install in the same step); `None` if a binary is installed on it first or the
    /// procedure ends before either.
    fn first_boot(&self, k: usize, x: rehearse_sim::ServerId) -> Option<usize> {
        let (boots, installs) = *self.counts.get(k)?.get(x)?;
        let (b, c) = self
            .counts
            .iter()
            .enumerate()
            .skip(k + 1)
            .find(|(_, c)| c[x] != (boots, installs))?;
        (c[x].0 != boots).then_some(b - 1)
    }
}

/// Runs one schedule on one seed; also says whether any fault fired.
pub fn run_one(plan: &Plan, cfg: &ProcedureConfig, faults: &[Fault], seed: u64) -> (Outcome, bool) {
    run_with(cfg, sim_config(plan, seed), faults)
}

/// Runs one schedule on a given simulator configuration (its seed included); also says
/// whether any fault fired.
pub fn run_with(cfg: &ProcedureConfig, sim: SimConfig, faults: &[Fault]) -> (Outcome, bool) {
    let mut hooks = FaultHooks::new(faults.to_vec());
    // A plan that parsed builds a valid world; a failure here is a bug worth seeing.
    let o = rehearse_with(cfg, sim, &mut hooks).unwrap_or_else(|e| panic!("invalid world: {e}"));
    let fired = hooks.fired();
    (o, fired)
}

/// One finished run, as `fold` needs it.
pub(crate) struct Run<'a> {
    /// Position in the run order (seeds × schedules, schedules innermost), from 0.
    pub(crate) index: usize,
    /// The schedule.
    pub(crate) sched: &'a [Fault],
    /// The seed.
    pub(crate) seed: u64,
    /// What it showed.
    pub(crate) ran: &'a RunResult,
}

/// Folds a run into the totals; returns its class.
pub(crate) fn fold(totals: &Mutex<Totals>, run: &Run<'_>, started: Instant) -> Class {
    let (sched, seed) = (run.sched, run.seed);
    let class = run.ran.class;
    let mut t = totals.lock().unwrap_or_else(|e| e.into_inner());
    t.runs += 1;
    t.fired += u64::from(run.ran.fired);
    t.workload.add(&run.ran.plane);
    if class == Class::Unsafe {
        let (position, runs) = (run.index as u64 + 1, t.runs);
        let first = t.first_unsafe.get_or_insert(FirstUnsafe {
            after_runs: runs,
            after_s: started.elapsed().as_secs_f64(),
            first_in_order: position,
        });
        first.first_in_order = first.first_in_order.min(position);
    }
    match class {
        Class::Completed => t.completed += 1,
        Class::Halted => t.halted += 1,
        Class::BeyondTolerance => t.beyond_tolerance += 1,
        Class::Unsafe => t.unsafe_runs += 1,
        Class::LostAllocations => t.lost_allocations += 1,
        Class::StalledWorkload => t.stalled_workload += 1,
    }
    if matches!(
        class,
        Class::Unsafe | Class::BeyondTolerance | Class::LostAllocations | Class::StalledWorkload
    ) {
        t.findings.push(Finding {
            faults: sched.to_vec(),
            seed,
            class,
            problems: run.ran.problems.clone(),
        });
        // Trimmed in batches; `keep_first_findings` at the end leaves the first
        // `FINDINGS_MAX` in finding order, whatever order the runs came in.
        if t.findings.len() >= 2 * FINDINGS_MAX {
            keep_first_findings(&mut t.findings);
        }
    }
    class
}

/// What went wrong in a run (empty unless it is unsafe or lost quorum).
fn problems(o: &Outcome) -> Vec<String> {
    match &o.verdict {
        Verdict::Unsafe { problems }
        | Verdict::LostAllocations { problems }
        | Verdict::StalledWorkload { problems } => problems.clone(),
        _ => Vec::new(),
    }
}

/// Shrinks an unsafe finding on its own seed to a minimal schedule that is still unsafe (see
/// `shrink`), trying the step boundaries `steps` as earlier positions.
pub fn shrink_finding(
    plan: &Plan,
    cfg: &ProcedureConfig,
    finding: &Finding,
    steps: &[usize],
) -> Shrunk {
    let mut unsafe_run = |s: &[Fault]| {
        let (o, _) = run_one(plan, cfg, s, finding.seed);
        (classify(&o) == Class::Unsafe).then(|| problems(&o))
    };
    shrink(
        &finding.faults,
        steps,
        finding.problems.clone(),
        &mut unsafe_run,
    )
}

/// A fault-free run to find the step boundaries.
pub fn baseline(plan: &Plan, cfg: &ProcedureConfig, seed: u64) -> Outcome {
    rehearse(cfg, sim_config(plan, seed)).unwrap_or_else(|e| panic!("invalid world: {e}"))
}
