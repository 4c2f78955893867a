//! From measured fault-free rehearsals to numbers: per-step tolerance, exposure, write
//! unavailability and the probability of quorum loss (formula in [`crate::report`]).

use super::ReportError;
use super::measure::{
    Measured, Sample, Segment, StepKind, lowest_tolerance, measure, par_map, procedure_no_leader_ns,
};
use super::model::{Numbers, Risk, StepRisk};
use super::risk::{FailureRate, p_any, p_window, round_sig};
use crate::plan::Plan;
use crate::procedure::ProcedureConfig;
use crate::rehearsal::Verdict;
use std::collections::BTreeMap;

/// Significant digits kept in probabilities and means.
pub const DIGITS: usize = 4;

/// A plan rehearsed on many seeds and reduced to numbers.
#[derive(Debug, Clone)]
pub struct Assessment {
    /// Every seed's measurement, in seed order.
    pub runs: Vec<Measured>,
    /// Whole-upgrade numbers.
    pub risk: Risk,
    /// Per step.
    pub steps: Vec<StepRisk>,
    /// The numbers recommendations are judged on.
    pub numbers: Numbers,
}

/// A stretch of time with one state, clipped to a step or the whole run.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    tolerance: i64,
    healthy: u32,
    ms: u64,
}

/// Splits `[from, to)` of a run into windows of constant (tolerance, healthy voters).
fn windows(samples: &[Sample], from: u64, to: u64) -> Vec<Window> {
    let mut out: Vec<Window> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        let next = samples.get(i + 1).map_or(to, |n| n.t_ms);
        let (a, b) = (s.t_ms.max(from), next.min(to));
        if b <= a {
            continue;
        }
        match out.last_mut() {
            Some(w) if w.tolerance == s.tolerance && w.healthy == s.healthy_voters => {
                w.ms += b - a;
            }
            _ => out.push(Window {
                tolerance: s.tolerance,
                healthy: s.healthy_voters,
                ms: b - a,
            }),
        }
    }
    out
}

/// Probability of quorum loss over windows (certain if quorum was lost).
fn p_loss(ws: &[Window], lambda_per_ms: f64) -> f64 {
    if ws.iter().any(|w| w.tolerance < 0) {
        return 1.0;
    }
    p_any(ws.iter().map(|w| {
        let f = u32::try_from(w.tolerance).unwrap_or(u32::MAX);
        p_window(lambda_per_ms, w.healthy, f, w.ms as f64)
    }))
}

fn exposure_ms(ws: &[Window]) -> u64 {
    ws.iter().filter(|w| w.tolerance <= 0).map(|w| w.ms).sum()
}

fn exposure_server_ms(ws: &[Window]) -> u64 {
    ws.iter()
        .filter(|w| w.tolerance == 0)
        .map(|w| w.ms * u64::from(w.healthy))
        .sum()
}

/// The last sample at or before `t_ms` (the first if none).
fn at(samples: &[Sample], t_ms: u64) -> Option<&Sample> {
    samples
        .iter()
        .take_while(|s| s.t_ms <= t_ms)
        .last()
        .or(samples.first())
}

/// Counter growth over a step: (no-leader ms, failed writes, leader changes, elections).
fn deltas(samples: &[Sample], seg: &Segment) -> (u64, u64, u64, u64) {
    let (Some(a), Some(b)) = (at(samples, seg.start_ms), at(samples, seg.end_ms)) else {
        return (0, 0, 0, 0);
    };
    (
        b.no_leader_ns.saturating_sub(a.no_leader_ns) / 1_000_000,
        b.failed.saturating_sub(a.failed),
        b.leader_changes.saturating_sub(a.leader_changes),
        b.elections.saturating_sub(a.elections),
    )
}

/// Growth of a counter over the procedure (the world's counters include the warm-up).
fn growth(samples: &[Sample], f: impl Fn(&Sample) -> u64) -> f64 {
    super::measure::growth(samples, f) as f64
}

fn mean(v: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = v.into_iter().fold((0.0, 0u32), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { sum / f64::from(n) }
}

fn median_u64(v: Vec<u64>) -> u64 {
    crate::stats::median_u64(&v).unwrap_or(0)
}

/// The median, rounded like the means (a median of counts may be a half).
fn median_f64(v: impl IntoIterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.into_iter().collect();
    round_sig(crate::stats::median_f64(&v).unwrap_or(0.0), DIGITS)
}

fn round_mean(v: impl IntoIterator<Item = f64>) -> f64 {
    round_sig(mean(v), DIGITS)
}

/// One seed's numbers for one step.
struct StepSeed<'a> {
    seg: &'a Segment,
    ws: Vec<Window>,
    /// None on a plan-defect seed (not counted in the probability).
    p: Option<f64>,
    deltas: (u64, u64, u64, u64),
}

/// Name of a step from a segment.
pub fn step_name(seg: &Segment, completed: bool) -> String {
    match seg.kind {
        StepKind::Preflight => "preflight".into(),
        StepKind::Server(i) if seg.leader_step => {
            format!("{}. upgrade {} (leader)", i + 1, seg.servers.join("+"))
        }
        StepKind::Server(i) => format!("{}. upgrade {}", i + 1, seg.servers.join("+")),
        StepKind::Finish if completed => "verify & clients".into(),
        StepKind::Finish => "finish".into(),
    }
}

/// Rehearses `plan` on `seeds` and computes its numbers.
pub fn assess(
    plan: &Plan,
    seeds: std::ops::Range<u64>,
    jobs: usize,
    rate: &FailureRate,
) -> Result<Assessment, ReportError> {
    let cfg = ProcedureConfig::from_plan(plan);
    let seeds: Vec<u64> = seeds.collect();
    crate::progress::add_total(seeds.len() as u64);
    let runs = par_map(&seeds, jobs, |&s| {
        let m = measure(plan, &cfg, s);
        crate::progress::tick(false);
        m
    })
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| ReportError::Sim(e.to_string()))?;
    Ok(reduce(runs, rate))
}

/// Whether a fault-free run shows a plan defect: it lost quorum, or an acknowledged write,
/// with no fault injected. Such a seed is not a failure-rate risk (nothing failed), so it is
/// left out of the probability of quorum loss and reported on its own.
pub fn plan_defect(m: &Measured) -> bool {
    m.outcome.metrics.quorum_lost_ns > 0 || m.outcome.workload.lost_acked > 0
}

/// Reduces measured runs to numbers.
pub fn reduce(runs: Vec<Measured>, rate: &FailureRate) -> Assessment {
    let lambda = rate.per_ms();
    let steps = steps_of(&runs, lambda);
    let leader_no_leader = runs
        .iter()
        .map(|m| {
            m.segments
                .iter()
                .filter(|s| s.leader_step)
                .map(|s| deltas(&m.samples, s).0)
                .sum::<u64>()
        })
        .collect();
    let risk = risk_of(&runs, seed_figures(&runs, lambda));
    let numbers = Numbers {
        unsafe_runs: risk.unsafe_runs,
        plan_defect_runs: risk.plan_defect_runs,
        seeds: runs.len() as u64,
        p_quorum_loss: risk.p_quorum_loss,
        exposure_ms: risk.exposure_ms,
        leader_step_no_leader_ms: median_u64(leader_no_leader),
        failed_writes: risk.failed_writes,
        duration_ms: risk.duration_ms_median,
    };
    Assessment {
        runs,
        risk,
        steps,
        numbers,
    }
}

/// Per-seed figures over the whole run, in seed order.
struct SeedFigures {
    /// P(quorum loss) of each seed without a plan defect.
    p: Vec<f64>,
    /// Its first-order approximation.
    p1: Vec<f64>,
    /// Time at failure tolerance <= 0 (ms).
    exposure: Vec<u64>,
    /// Time at failure tolerance 0 (ms).
    exposure_srv: Vec<u64>,
}

fn seed_figures(runs: &[Measured], lambda: f64) -> SeedFigures {
    let mut f = SeedFigures {
        p: Vec::new(),
        p1: Vec::new(),
        exposure: Vec::new(),
        exposure_srv: Vec::new(),
    };
    for m in runs {
        let ws = windows(&m.samples, 0, m.outcome.duration_ms);
        let e_srv = exposure_server_ms(&ws);
        if !plan_defect(m) {
            f.p.push(p_loss(&ws, lambda));
            f.p1.push(-(-lambda * e_srv as f64).exp_m1());
        }
        f.exposure.push(exposure_ms(&ws));
        f.exposure_srv.push(e_srv);
    }
    f
}

/// Every seed's steps grouped by kind, each group's risk.
fn steps_of(runs: &[Measured], lambda: f64) -> Vec<StepRisk> {
    let mut by_step: BTreeMap<StepKind, Vec<StepSeed<'_>>> = BTreeMap::new();
    for m in runs {
        let defect = plan_defect(m);
        for seg in &m.segments {
            let ws = windows(&m.samples, seg.start_ms, seg.end_ms);
            let p = (!defect).then(|| p_loss(&ws, lambda));
            let d = deltas(&m.samples, seg);
            by_step.entry(seg.kind).or_default().push(StepSeed {
                seg,
                ws,
                p,
                deltas: d,
            });
        }
    }
    let first_completed = runs
        .first()
        .is_some_and(|m| m.outcome.verdict == Verdict::Completed);
    by_step
        .values()
        .enumerate()
        .map(|(index, v)| step_risk(index, v, first_completed))
        .collect()
}

/// The plan's risk over the seeds.
fn risk_of(runs: &[Measured], f: SeedFigures) -> Risk {
    let count =
        |f: &dyn Fn(&Verdict) -> bool| runs.iter().filter(|m| f(&m.outcome.verdict)).count();
    let plan_defect_seeds: Vec<u64> = runs
        .iter()
        .filter(|m| plan_defect(m))
        .map(|m| m.outcome.seed)
        .collect();
    Risk {
        seeds: runs.len() as u64,
        completed: count(&|v| *v == Verdict::Completed) as u64,
        halted: count(&|v| matches!(v, Verdict::Halted { .. })) as u64,
        unsafe_runs: count(&|v| matches!(v, Verdict::Unsafe { .. })) as u64,
        lost_allocation_runs: count(&|v| matches!(v, Verdict::LostAllocations { .. })) as u64,
        stalled_workload_runs: count(&|v| matches!(v, Verdict::StalledWorkload { .. })) as u64,
        quorum_lost_runs: runs
            .iter()
            .filter(|m| m.outcome.metrics.quorum_lost_ns > 0)
            .count() as u64,
        lost_acked_write_runs: runs
            .iter()
            .filter(|m| m.outcome.workload.lost_acked > 0)
            .count() as u64,
        plan_defect_runs: plan_defect_seeds.len() as u64,
        plan_defect_seeds,
        duration_ms_median: median_u64(runs.iter().map(|m| m.outcome.duration_ms).collect()),
        exposure_ms: median_u64(f.exposure),
        exposure_server_ms: median_u64(f.exposure_srv),
        risk_seeds: f.p.len() as u64,
        p_quorum_loss: round_mean(f.p),
        p_quorum_loss_first_order: round_mean(f.p1),
        // Over the procedure, as the steps are (the world's counter also runs in the cooldown).
        no_leader_ms: median_u64(
            runs.iter()
                .map(|m| procedure_no_leader_ns(&m.samples) / 1_000_000)
                .collect(),
        ),
        failed_writes: median_f64(runs.iter().map(|m| growth(&m.samples, |s| s.failed))),
        acked_writes: median_f64(runs.iter().map(|m| growth(&m.samples, |s| s.acked))),
        leader_changes: median_f64(
            runs.iter()
                .map(|m| growth(&m.samples, |s| s.leader_changes)),
        ),
        tolerance_min: runs
            .iter()
            .filter_map(|m| lowest_tolerance(&m.samples))
            .min()
            .unwrap_or(0),
        jobs: crate::check::WorkloadFigures::of(runs.iter().map(|m| &m.outcome.workload_plane)),
    }
}

fn step_risk(index: usize, v: &[StepSeed<'_>], first_completed: bool) -> StepRisk {
    let first = v.first().map(|s| s.seg);
    let mut hist: BTreeMap<i64, u64> = BTreeMap::new();
    for s in v {
        for w in &s.ws {
            *hist.entry(w.tolerance).or_default() += w.ms;
        }
    }
    let total: u64 = hist.values().sum();
    let mut acc = 0;
    let typical = hist
        .iter()
        .find(|(_, ms)| {
            acc += **ms;
            acc * 2 >= total
        })
        .map_or(0, |(t, _)| *t);
    let leaders = v.iter().filter(|s| s.seg.leader_step).count();
    let med = |f: &dyn Fn(&StepSeed<'_>) -> f64| median_f64(v.iter().map(f));
    let durations: Vec<u64> = v.iter().map(|s| s.seg.end_ms - s.seg.start_ms).collect();
    StepRisk {
        index,
        name: first.map_or_else(String::new, |s| {
            let mut seg = s.clone();
            seg.leader_step = leaders * 2 > v.len();
            step_name(&seg, first_completed)
        }),
        servers: first.map_or_else(Vec::new, |s| s.servers.clone()),
        leader_step: leaders * 2 > v.len(),
        seeds: v.len() as u64,
        start_ms: median_u64(v.iter().map(|s| s.seg.start_ms).collect()),
        duration_ms_min: durations.iter().copied().min().unwrap_or(0),
        duration_ms_max: durations.iter().copied().max().unwrap_or(0),
        duration_ms: median_u64(durations),
        tolerance_min: v
            .iter()
            .flat_map(|s| s.ws.iter().map(|w| w.tolerance))
            .min()
            .unwrap_or(0),
        tolerance_typical: typical,
        exposure_ms: median_u64(v.iter().map(|s| exposure_ms(&s.ws)).collect()),
        exposure_ms_max: v.iter().map(|s| exposure_ms(&s.ws)).max().unwrap_or(0),
        p_quorum_loss: round_mean(v.iter().filter_map(|s| s.p)),
        no_leader_ms: median_u64(v.iter().map(|s| s.deltas.0).collect()),
        failed_writes: med(&|s| s.deltas.1 as f64),
        leader_changes: med(&|s| s.deltas.2 as f64),
        elections: med(&|s| s.deltas.3 as f64),
    }
}
