//! Measuring one rehearsal: a [`Hooks`] sampler reads the simulator's ground truth after every
//! action (failure tolerance, leader, which servers run, write counters), and the timeline is
//! cut into steps: preflight, one step per server batch, and the finish.
//!
//! Resolution: samples are taken at action boundaries, so a state is known to within one
//! action (200 ms), one gate poll (`gate.poll`, 2 s by default) or one install
//! (`install_time`). A value holds from its sample until the next one.

use crate::plan::Plan;
use crate::procedure::{Action, Phase, ProcedureConfig};
use crate::rehearsal::{Hooks, Outcome, StepCtx, StepRecord, rehearse_with, sim_config};
use rehearse_model::time::MS;
use rehearse_sim::{ProcessState, World};
use serde::Serialize;

/// Ground truth at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Simulated ms since the procedure started.
    pub t_ms: u64,
    /// Healthy voters minus the quorum of the voter set: how many more servers may fail
    /// before quorum is lost. Negative when quorum is already lost.
    pub tolerance: i64,
    /// Healthy voters (running, alive in gossip, caught up): the servers whose failure counts.
    pub healthy_voters: u32,
    /// The leader, if any (server name).
    pub leader: Option<String>,
    /// Servers whose process is running, by name, in plan order.
    pub running: Vec<String>,
    /// Writes acknowledged so far.
    pub acked: u64,
    /// Writes failed so far.
    pub failed: u64,
    /// Time without a leader so far (ns, since the run's start).
    pub no_leader_ns: u64,
    /// Leader changes so far.
    pub leader_changes: u64,
    /// Candidacies so far.
    pub elections: u64,
}

/// Samples the world after every action.
#[derive(Default)]
pub struct Sampler {
    start_ns: Option<u64>,
    base: Option<(u64, u64, u64)>,
    /// The samples, in time order.
    pub samples: Vec<Sample>,
    /// The eval broker's backlog over the run (plans with jobs; empty otherwise): (ms since
    /// the procedure started, ready + unacked + blocked) at each change, the value at the
    /// start first, to the end of the cooldown. Bounded: see `rehearse_sim::BacklogSeries`.
    pub backlog: Vec<(u64, u64)>,
}

impl Sampler {
    fn sample(&mut self, w: &World) {
        let now = w.now().as_nanos();
        let start = *self.start_ns.get_or_insert(now);
        let m = w.metrics();
        let base = *self
            .base
            .get_or_insert((m.no_leader_ns, m.leader_changes, m.elections));
        let (healthy, tolerance) = tolerance(w);
        let t_ms = (now - start) / MS;
        let s = Sample {
            t_ms,
            tolerance,
            healthy_voters: healthy,
            leader: w.leader().map(|id| w.server_name(id).to_string()),
            running: (0..w.server_count())
                .filter(|&id| w.process_state(id) == ProcessState::Running)
                .map(|id| w.server_name(id).to_string())
                .collect(),
            acked: w.acked_writes(),
            failed: w.failed_writes(),
            no_leader_ns: m.no_leader_ns.saturating_sub(base.0),
            leader_changes: m.leader_changes.saturating_sub(base.1),
            elections: m.elections.saturating_sub(base.2),
        };
        // Two samples at one instant: keep the later (it has seen the action).
        if self.samples.last().is_some_and(|l| l.t_ms == t_ms) {
            self.samples.pop();
        }
        self.samples.push(s);
    }
}

impl Hooks for Sampler {
    fn before(&mut self, w: &mut World, ctx: &StepCtx<'_>) {
        if ctx.step == 0 && self.samples.is_empty() {
            self.sample(w);
        }
    }
    fn after(&mut self, w: &mut World, _ctx: &StepCtx<'_>) {
        self.sample(w);
    }
    fn finish(&mut self, w: &mut World) {
        self.sample(w);
    }
    fn done(&mut self, w: &World) {
        let start = self.start_ns.unwrap_or(0);
        let series = w.workload_backlog_series();
        // The value when the procedure started, then every change since.
        let before = series.iter().rev().find(|p| p.0 <= start).map(|p| (0, p.1));
        self.backlog = before
            .into_iter()
            .chain(
                series
                    .iter()
                    .filter(|p| p.0 > start)
                    .map(|&(t, v)| ((t - start) / MS, v)),
            )
            .collect();
    }
}

/// The lowest failure tolerance of a run: the ground truth sampled after every action (the
/// [`Sampler`]'s samples), not autopilot's reading. `rehearse check` and the report both print
/// this figure. Autopilot's own reading (`Outcome::tolerance`, what the procedure's gate sees)
/// lags the cluster and can dip for one observation where the ground truth does not: on
/// `plans/nomad-5-servers-no-jobs.toml` it reads 0 once, one action (200 ms) after the leadership
/// transfer, while all five servers run and the ground truth is 2; the ground truth's lowest
/// over the run is 1, while one server is down for its upgrade. The ground truth is what one
/// more failure would meet, so both commands print it.
pub fn lowest_tolerance(samples: &[Sample]) -> Option<i64> {
    samples.iter().map(|s| s.tolerance).min()
}

/// Time without a leader over the procedure, from its first action to its last (ns): the
/// cooldown after the last action is left out, so it can be read beside the procedure's
/// duration. `rehearse check` and the report both print this figure.
pub fn procedure_no_leader_ns(samples: &[Sample]) -> u64 {
    growth(samples, |s| s.no_leader_ns)
}

/// How much a counter of the samples grew from the first sample to the last.
pub(crate) fn growth(samples: &[Sample], f: impl Fn(&Sample) -> u64) -> u64 {
    match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => f(b).saturating_sub(f(a)),
        _ => 0,
    }
}

/// Ground-truth failure tolerance: voters of the newest configuration that are running, alive
/// in their own gossip view and within autopilot's trailing-log bound of the most advanced
/// running voter, minus the quorum of all voters. Returns (healthy voters, tolerance); the
/// tolerance is −1 when the world has no quorum.
pub fn tolerance(w: &World) -> (u32, i64) {
    let (healthy, voters) = crate::rehearsal::healthy_voters(w, None);
    let quorum = rehearse_sim::raft::quorum(voters);
    let tol = if w.has_quorum() {
        healthy as i64 - quorum as i64
    } else {
        -1
    };
    (healthy as u32, tol)
}

/// What kind of step a segment of the timeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "ordinal", rename_all = "snake_case")]
pub enum StepKind {
    /// Checks and the snapshot, before any server is touched.
    Preflight,
    /// The n-th server batch (0-based), in upgrade order.
    Server(usize),
    /// Verification, clients, rollback or halt: after the last server step.
    Finish,
}

/// One step of one run's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// Which step.
    pub kind: StepKind,
    /// Servers of the batch (empty outside server steps).
    pub servers: Vec<String>,
    /// Start (ms since the procedure started).
    pub start_ms: u64,
    /// End (exclusive).
    pub end_ms: u64,
    /// Whether the batch held the leadership when the step began, or the step moved it away.
    pub leader_step: bool,
}

fn kind_of(phase: Phase) -> Option<StepKind> {
    match phase {
        Phase::Preflight | Phase::Snapshot => Some(StepKind::Preflight),
        Phase::Verify | Phase::Clients | Phase::Rollback | Phase::Done | Phase::Halted => {
            Some(StepKind::Finish)
        }
        _ => None,
    }
}

/// Cuts a run's timeline into steps. A server step begins with the first action about its
/// batch (a transfer, drain or safety wait that precedes it included) and ends where the next
/// step begins.
pub fn segments(steps: &[StepRecord], samples: &[Sample], duration_ms: u64) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut next_server = 0;
    for rec in steps {
        let cur = out.last_mut();
        match kind_of(rec.phase) {
            Some(kind) => {
                if cur.as_ref().is_none_or(|c| c.kind != kind) {
                    out.push(open(kind, Vec::new(), rec.at_ms));
                }
            }
            None => match cur {
                // A server step opened by an action naming no server yet (a transfer).
                Some(c) if matches!(c.kind, StepKind::Server(_)) && c.servers.is_empty() => {
                    c.servers.clone_from(&rec.servers);
                }
                Some(c) if matches!(c.kind, StepKind::Server(_)) && c.servers == rec.servers => {}
                _ => {
                    out.push(open(
                        StepKind::Server(next_server),
                        rec.servers.clone(),
                        rec.at_ms,
                    ));
                    next_server += 1;
                }
            },
        }
        if matches!(rec.action, Action::TransferLeadership { .. })
            && let Some(c) = out.last_mut()
        {
            c.leader_step = true;
        }
    }
    let ends: Vec<u64> = out
        .iter()
        .skip(1)
        .map(|s| s.start_ms)
        .chain([duration_ms])
        .collect();
    for (s, end) in out.iter_mut().zip(ends) {
        s.end_ms = end.max(s.start_ms);
        let leader = leader_at(samples, s.start_ms);
        if matches!(s.kind, StepKind::Server(_))
            && leader.is_some_and(|l| s.servers.iter().any(|x| x == l))
        {
            s.leader_step = true;
        }
        if !matches!(s.kind, StepKind::Server(_)) {
            s.leader_step = false;
        }
    }
    out
}

fn open(kind: StepKind, servers: Vec<String>, at_ms: u64) -> Segment {
    Segment {
        kind,
        servers,
        start_ms: at_ms,
        end_ms: at_ms,
        leader_step: false,
    }
}

/// The leader at `t_ms`, from the last sample at or before it.
pub fn leader_at(samples: &[Sample], t_ms: u64) -> Option<&str> {
    samples
        .iter()
        .take_while(|s| s.t_ms <= t_ms)
        .last()
        .and_then(|s| s.leader.as_deref())
}

/// A measured rehearsal: the outcome, its samples and its steps.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The rehearsal's outcome.
    pub outcome: Outcome,
    /// Ground-truth samples.
    pub samples: Vec<Sample>,
    /// The timeline cut into steps.
    pub segments: Vec<Segment>,
    /// The eval broker's backlog over the run ([`Sampler::backlog`]).
    pub backlog: Vec<(u64, u64)>,
}

/// Rehearses one seed with the sampler attached.
pub fn measure(
    plan: &Plan,
    cfg: &ProcedureConfig,
    seed: u64,
) -> Result<Measured, rehearse_sim::SimError> {
    let mut sampler = Sampler::default();
    let outcome = rehearse_with(cfg, sim_config(plan, seed), &mut sampler)?;
    let samples = sampler.samples;
    let segments = segments(&outcome.steps, &samples, outcome.duration_ms);
    Ok(Measured {
        outcome,
        samples,
        segments,
        backlog: sampler.backlog,
    })
}

pub use crate::pool::par_map;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_3_server_run_has_preflight_three_server_steps_and_a_finish() {
        let plan = Plan::from_path(std::path::Path::new("plans/nomad-3-servers.toml")).unwrap();
        let cfg = ProcedureConfig::from_plan(&plan);
        let m = measure(&plan, &cfg, 1).unwrap();
        let kinds: Vec<StepKind> = m.segments.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            vec![
                StepKind::Preflight,
                StepKind::Server(0),
                StepKind::Server(1),
                StepKind::Server(2),
                StepKind::Finish
            ]
        );
        assert!(m.segments[3].leader_step && !m.segments[1].leader_step);
        assert!(m.segments.windows(2).all(|w| w[0].end_ms == w[1].start_ms));
        // While a server of three is down, nothing more may fail.
        assert!(m.samples.iter().any(|s| s.tolerance == 0));
        assert!(m.samples.iter().all(|s| s.tolerance >= 0));
        assert_eq!(m.samples[0].t_ms, 0);
    }
}
