//! The explorer: every fault kind × target × step boundary (× every pair with two faults),
//! on several seeds, in parallel. Results are folded into counts as they arrive, so memory
//! stays flat however many runs there are; only findings are kept (bounded).

use super::fault::{Fault, FaultHooks, FaultKind, Target};
use crate::plan::Plan;
use crate::procedure::ProcedureConfig;
use crate::rehearsal::{Outcome, Verdict, rehearse, rehearse_with, sim_config};
use rehearse_sim::SimConfig;
use serde::Serialize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most findings kept (the counts still cover every run).
pub const FINDINGS_MAX: usize = 1_000;
/// Fault durations tried: healed after 30 s, or permanent.
pub const DURATIONS_S: [Option<u64>; 2] = [Some(30), None];

/// What one run showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
}

/// Classifies an outcome.
pub fn classify(o: &Outcome) -> Class {
    let procedure_fault = !o.unsafe_stops.is_empty()
        || o.workload.lost_acked > 0
        || !o.violations.is_empty()
        || o.metrics.skew_crashes > 0
        || o.metrics.snapshot_refusals > 0;
    match &o.verdict {
        Verdict::Unsafe { .. } if procedure_fault => Class::Unsafe,
        Verdict::Unsafe { .. } => Class::BeyondTolerance,
        Verdict::Halted { .. } => Class::Halted,
        Verdict::Completed => Class::Completed,
    }
}

/// A run that went wrong.
#[derive(Debug, Clone, Serialize)]
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
    /// Runs.
    pub runs: u64,
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
    /// Kept findings (unsafe first), at most `FINDINGS_MAX`.
    pub findings: Vec<Finding>,
}

/// The step boundaries worth a fault: before every action that changes something, and before
/// the first observation after it (the gate's first look), taken from a fault-free run.
pub fn boundaries(baseline: &Outcome) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, s) in baseline.steps.iter().enumerate() {
        if !s.action.starts_with("observe") {
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
    let seeds: Vec<u64> = seeds.collect();
    let total = schedules.len() * seeds.len();
    let next = AtomicUsize::new(0);
    let totals = Mutex::new(Totals::default());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let (sched, seed) = (&schedules[i / seeds.len()], seeds[i % seeds.len()]);
                    let (o, fired) = run_one(plan, cfg, sched, seed);
                    fold(&totals, sched, seed, &o, fired);
                    progress(i + 1);
                }
            });
        }
    });
    let mut t = totals.into_inner().unwrap_or_else(|e| e.into_inner());
    t.findings.sort_by(|a, b| {
        let key = |f: &Finding| (f.class != Class::Unsafe, f.faults.clone(), f.seed);
        key(a).cmp(&key(b))
    });
    t
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

fn fold(totals: &Mutex<Totals>, sched: &[Fault], seed: u64, o: &Outcome, fired: bool) {
    let class = classify(o);
    let mut t = totals.lock().unwrap_or_else(|e| e.into_inner());
    t.runs += 1;
    t.fired += u64::from(fired);
    match class {
        Class::Completed => t.completed += 1,
        Class::Halted => t.halted += 1,
        Class::BeyondTolerance => t.beyond_tolerance += 1,
        Class::Unsafe => t.unsafe_runs += 1,
    }
    let keep = matches!(class, Class::Unsafe | Class::BeyondTolerance);
    let room = t.findings.len() < FINDINGS_MAX
        || (class == Class::Unsafe && t.findings.iter().any(|f| f.class != Class::Unsafe));
    if keep && room {
        let evict = t.findings.len() >= FINDINGS_MAX;
        if let Some(pos) = t
            .findings
            .iter()
            .position(|f| evict && f.class != Class::Unsafe)
        {
            t.findings.swap_remove(pos);
        }
        let problems = match &o.verdict {
            Verdict::Unsafe { problems } => problems.clone(),
            _ => Vec::new(),
        };
        t.findings.push(Finding {
            faults: sched.to_vec(),
            seed,
            class,
            problems,
        });
    }
}

/// A fault-free run to find the step boundaries.
pub fn baseline(plan: &Plan, cfg: &ProcedureConfig, seed: u64) -> Outcome {
    rehearse(cfg, sim_config(plan, seed)).unwrap_or_else(|e| panic!("invalid world: {e}"))
}
