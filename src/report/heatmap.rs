//! The explorer's empirical side of the report: every single fault (kind × role × boundary ×
//! duration, as `rehearse explore --faults 1`) on a small seed budget, folded into a
//! step × fault-kind grid and a list of the faults that broke the upgrade.

use super::measure::{Measured, Segment};
use super::model::{Explorer, ExplorerFinding, HeatCell};
use crate::chaos::explore::{Class, boundaries, for_each_run, single_faults};
use crate::chaos::{Fault, FaultKind};
use crate::plan::Plan;
use crate::procedure::ProcedureConfig;
use serde::Serialize;
use std::collections::BTreeMap;

/// A serde enum's name (`crash`, `one-way`, `beyond_tolerance`…).
pub fn serde_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Index of the step (in `segments`) an action index falls in.
fn step_of(baseline: &Measured, action: usize) -> usize {
    let last = baseline.segments.len().saturating_sub(1);
    let Some(rec) = baseline.outcome.steps.get(action) else {
        return last;
    };
    baseline
        .segments
        .iter()
        .rposition(|s: &Segment| s.start_ms <= rec.at_ms)
        .unwrap_or(0)
}

/// One run's result.
struct Run {
    fault: Fault,
    seed: u64,
    class: Class,
    problem: String,
}

/// Runs every single fault at every boundary of `baseline` on `seeds`; `step_names` names the
/// baseline's segments.
pub fn explore(
    plan: &Plan,
    plan_file: &str,
    baseline: &Measured,
    step_names: &[String],
    seeds: std::ops::Range<u64>,
    jobs: usize,
) -> Explorer {
    let cfg = ProcedureConfig::from_plan(plan);
    let faults = single_faults(&boundaries(&baseline.outcome));
    let runs = run_single_faults(plan, &cfg, &faults, seeds, jobs);
    let kinds: Vec<String> = FaultKind::ALL.iter().map(serde_name).collect();
    let mut ex = Explorer {
        schedules: faults.len() as u64,
        runs: runs.len() as u64,
        completed: 0,
        halted: 0,
        beyond_tolerance: 0,
        unsafe_runs: 0,
        lost_allocations: 0,
        stalled_workload: 0,
        cells: empty_cells(&kinds, step_names),
        fault_kinds: kinds,
        steps: step_names.to_vec(),
        findings: Vec::new(),
    };
    let (bad, of) = tally(&mut ex, baseline, &runs);
    ex.findings = findings(&bad, &of, step_names, plan_file);
    ex
}

/// Every single fault on every seed, in (fault, seed) order whatever the threads did.
fn run_single_faults(
    plan: &Plan,
    cfg: &ProcedureConfig,
    faults: &[Fault],
    seeds: std::ops::Range<u64>,
    jobs: usize,
) -> Vec<Run> {
    let seeds: Vec<u64> = seeds.collect();
    let scheds: Vec<Vec<Fault>> = faults.iter().map(|&f| vec![f]).collect();
    let found = std::sync::Mutex::new(Vec::new());
    crate::progress::add_total((scheds.len() * seeds.len()) as u64);
    for_each_run(plan, cfg, &scheds, &seeds, jobs, &|r| {
        crate::progress::tick(r.result.class == Class::Unsafe);
        // Empty unless the run was unsafe or lost quorum.
        let problem = r.result.problems.join("; ");
        let run = Run {
            fault: faults[r.schedule],
            seed: r.seed,
            class: r.result.class,
            problem,
        };
        found
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((r.schedule, r.seed_pos, run));
        false
    });
    let mut found = found.into_inner().unwrap_or_else(|e| e.into_inner());
    // Runs finish in any order; the report is the same whatever the threads did.
    found.sort_by_key(|(i, s, _)| (*i, *s));
    found.into_iter().map(|(_, _, r)| r).collect()
}

/// One empty cell per (fault kind, step), kinds in rows.
fn empty_cells(kinds: &[String], step_names: &[String]) -> Vec<HeatCell> {
    kinds
        .iter()
        .flat_map(|k| {
            step_names.iter().map(move |s| HeatCell {
                fault: k.clone(),
                step: s.clone(),
                ..HeatCell::default()
            })
        })
        .collect()
}

/// (step, kind, target) of a run's fault.
type Key = (usize, FaultKind, crate::chaos::Target);

/// Bad runs by (class rank, key) → (runs, first run): unsafe first, then lost allocations, then
/// beyond tolerance.
type Bad<'r> = BTreeMap<(u8, Key), (u64, &'r Run)>;

/// Counts every run into the explorer's totals and its cell; returns the bad runs by key and
/// the number of runs of each key.
fn tally<'r>(
    ex: &mut Explorer,
    baseline: &Measured,
    runs: &'r [Run],
) -> (Bad<'r>, BTreeMap<Key, u64>) {
    let n_steps = ex.steps.len();
    let mut bad: Bad<'r> = BTreeMap::new();
    let mut of: BTreeMap<Key, u64> = BTreeMap::new();
    for r in runs {
        let step = step_of(baseline, r.fault.step);
        let row = FaultKind::ALL
            .iter()
            .position(|k| *k == r.fault.kind)
            .unwrap_or(0);
        let key = (step, r.fault.kind, r.fault.target);
        *of.entry(key).or_default() += 1;
        let (c_done, c_halt, c_beyond, c_unsafe, c_lost) = match r.class {
            Class::Completed => (1, 0, 0, 0, 0),
            Class::Halted => (0, 1, 0, 0, 0),
            Class::BeyondTolerance => (0, 0, 1, 0, 0),
            Class::Unsafe => (0, 0, 0, 1, 0),
            Class::LostAllocations => (0, 0, 0, 0, 1),
            Class::StalledWorkload => (0, 0, 0, 0, 0),
        };
        let c_stall = u64::from(r.class == Class::StalledWorkload);
        ex.stalled_workload += c_stall;
        ex.completed += c_done;
        ex.halted += c_halt;
        ex.beyond_tolerance += c_beyond;
        ex.unsafe_runs += c_unsafe;
        ex.lost_allocations += c_lost;
        if let Some(c) = ex.cells.get_mut(row * n_steps + step) {
            c.runs += 1;
            c.completed += c_done;
            c.halted += c_halt;
            c.beyond_tolerance += c_beyond;
            c.unsafe_runs += c_unsafe;
            c.lost_allocations += c_lost;
            c.stalled_workload += c_stall;
        }
        let rank = match r.class {
            Class::Unsafe => Some(0),
            Class::LostAllocations => Some(1),
            Class::StalledWorkload => Some(2),
            Class::BeyondTolerance => Some(3),
            Class::Completed | Class::Halted => None,
        };
        if let Some(rank) = rank {
            let e = bad.entry((rank, key)).or_insert((0, r));
            e.0 += 1;
        }
    }
    (bad, of)
}

/// One finding per bad key, with its first run's replay line.
fn findings(
    bad: &Bad<'_>,
    of: &BTreeMap<Key, u64>,
    step_names: &[String],
    plan_file: &str,
) -> Vec<ExplorerFinding> {
    bad.iter()
        .map(|((_, key), (n, r))| ExplorerFinding {
            step: step_names.get(key.0).cloned().unwrap_or_default(),
            fault: format!("{}:{}", serde_name(&key.1), serde_name(&key.2)),
            class: serde_name(&r.class),
            runs: *n,
            of_runs: of.get(key).copied().unwrap_or(0),
            replay: format!(
                "rehearse explore {plan_file} --seeds 1 --seed {} --fault {}",
                r.seed, r.fault
            ),
            problem: r.problem.clone(),
        })
        .collect()
}
