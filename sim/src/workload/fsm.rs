//! The workload plane's replicated state and how committed entries change it (Nomad's
//! `nomad/fsm.go` appliers, reduced to what an upgrade verifies). Pure: no world.

use super::broker::{EvalId, JobIdx};
use super::{GroupSpec, JobSpec};
use rehearse_model::time::SimTime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A client node: `0..clients` are the client-only nodes (`World::nodes` order), `clients + s`
/// the client of server `s`.
pub type NodeIdx = u32;

/// An allocation's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocState {
    /// Running.
    Running,
    /// Told to stop (migrated): runs until this time (its `kill_timeout`).
    Stopping(SimTime),
    /// Stopped (by a plan, after its kill timeout).
    Stopped,
    /// Its node went down: lost.
    Lost,
}

/// One allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alloc {
    /// ID (assigned in apply order).
    pub id: u64,
    /// Job.
    pub job: JobIdx,
    /// Group within the job.
    pub group: u32,
    /// Node.
    pub node: NodeIdx,
    /// State.
    pub state: AllocState,
}

impl Alloc {
    /// Running at `now` (a stopping allocation runs until its kill timeout ends).
    pub fn runs_at(&self, now: SimTime) -> bool {
        match self.state {
            AllocState::Running => true,
            AllocState::Stopping(until) => now < until,
            AllocState::Stopped | AllocState::Lost => false,
        }
    }
}

/// An evaluation's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EvalStatus {
    /// Waiting for a scheduler.
    Pending,
    /// Could not place everything: waits for capacity.
    Blocked,
    /// Done.
    Complete,
    /// Delivery limit reached.
    Failed,
}

/// One evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eval {
    /// ID.
    pub id: EvalId,
    /// Job.
    pub job: JobIdx,
    /// Status.
    pub status: EvalStatus,
}

/// A placement in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Group within the evaluation's job.
    pub group: u32,
    /// Node.
    pub node: NodeIdx,
}

/// A plan's result as the leader appends it (`ApplyPlanResultsRequest` with the evaluation's
/// update, see the module docs of `workload`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanResult {
    /// The evaluation planned.
    pub eval: EvalId,
    /// Its job.
    pub job: JobIdx,
    /// New allocations.
    pub place: Vec<Placement>,
    /// Allocations migrated off a draining node: they stop after their kill timeout.
    pub migrate: Vec<u64>,
    /// Allocations on a down node: lost.
    pub lost: Vec<u64>,
    /// Placements the scheduler could not make (the evaluation blocks for capacity).
    pub unplaced: u32,
}

/// What an applied entry asks of the leader's broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Evaluations created pending: enqueue them.
    pub enqueue: Vec<(EvalId, JobIdx)>,
    /// An evaluation finished: ack it.
    pub ack: Option<EvalId>,
    /// An evaluation blocked for capacity.
    pub block: Option<(EvalId, JobIdx)>,
    /// Capacity may have freed: unblock the tracker.
    pub unblock: bool,
    /// Allocations stop at this time (the drainer looks again then).
    pub stops_at: Option<SimTime>,
    /// A drain with a deadline began: the leader's drainer looks at the node then.
    pub drain_deadline: Option<(NodeIdx, SimTime)>,
}

/// Allocations of one job that a drain's deadline stopped before the drainer had migrated
/// them (see `Fsm::force_drain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForcedStop {
    /// Node drained.
    pub node: NodeIdx,
    /// Job.
    pub job: JobIdx,
    /// Allocations still running (not yet migrating) when the deadline was reached.
    pub allocs: u32,
}

/// The replicated workload state.
#[derive(Debug, Clone, Default)]
pub struct Fsm {
    /// Jobs registered (by index in `SimConfig::jobs`).
    pub registered: BTreeSet<JobIdx>,
    /// Every allocation, by ID order.
    pub allocs: Vec<Alloc>,
    /// Every evaluation, by ID order.
    pub evals: Vec<Eval>,
    /// Nodes marked down.
    pub down: BTreeSet<NodeIdx>,
    /// Nodes draining (ineligible).
    pub draining: BTreeSet<NodeIdx>,
    /// Draining nodes whose drain has a deadline: its `ForceDeadline`.
    pub force_at: BTreeMap<NodeIdx, SimTime>,
    /// Draining nodes whose deadline was reached: the scheduler migrates every allocation on
    /// them at once, whatever the group's `migrate.max_parallel`.
    pub forced: BTreeSet<NodeIdx>,
    /// The scheduler configuration's `pause_eval_broker`, once written.
    pub sched_config: Option<bool>,
}

impl Fsm {
    fn new_eval(&mut self, job: JobIdx, out: &mut Applied) -> EvalId {
        let id = self.evals.len() as EvalId + 1;
        self.evals.push(Eval {
            id,
            job,
            status: EvalStatus::Pending,
        });
        out.enqueue.push((id, job));
        id
    }

    /// `Job.Register`: the job and its evaluation.
    pub fn register(&mut self, job: JobIdx) -> Applied {
        let mut out = Applied::default();
        self.registered.insert(job);
        self.new_eval(job, &mut out);
        out
    }

    /// An evaluation created on its own (`EvalUpdateRequest` with a new evaluation).
    pub fn create_eval(&mut self, job: JobIdx) -> Applied {
        let mut out = Applied::default();
        if self.registered.contains(&job) {
            self.new_eval(job, &mut out);
        }
        out
    }

    /// An evaluation's status update (failed after its delivery limit).
    pub fn update_eval(&mut self, eval: EvalId, status: EvalStatus) -> Applied {
        if let Some(e) = self.eval_mut(eval) {
            e.status = status;
        }
        Applied::default()
    }

    fn eval_mut(&mut self, eval: EvalId) -> Option<&mut Eval> {
        let i = usize::try_from(eval.checked_sub(1)?).ok()?;
        self.evals.get_mut(i)
    }

    /// The evaluation `eval`, if it exists.
    pub fn eval(&self, eval: EvalId) -> Option<&Eval> {
        let i = usize::try_from(eval.checked_sub(1)?).ok()?;
        self.evals.get(i)
    }

    /// `Node.UpdateStatus`: down or ready, and an evaluation for every job with allocations on
    /// the node (and every system job on a node that comes back).
    pub fn node_status(&mut self, node: NodeIdx, down: bool, jobs: &[JobSpec]) -> Applied {
        let changed = if down {
            self.down.insert(node)
        } else {
            self.down.remove(&node)
        };
        let mut out = Applied::default();
        if !changed {
            return out;
        }
        let mut affected: BTreeSet<JobIdx> = self.jobs_on(node);
        if !down {
            affected.extend(self.system_jobs(jobs));
            out.unblock = true;
        }
        for job in affected {
            self.new_eval(job, &mut out);
        }
        out
    }

    /// `Node.UpdateDrain`: the node turns ineligible and every job on it is evaluated. With a
    /// deadline (`force_at`), the drainer is asked to look at the node then.
    pub fn drain(&mut self, node: NodeIdx, force_at: Option<SimTime>) -> Applied {
        let mut out = Applied::default();
        if !self.draining.insert(node) {
            return out;
        }
        if let Some(t) = force_at {
            self.force_at.insert(node, t);
            out.drain_deadline = Some((node, t));
        }
        for job in self.jobs_on(node) {
            self.new_eval(job, &mut out);
        }
        out
    }

    /// `Node.UpdateEligibility` to eligible after a drain: the node takes placements again;
    /// evaluations blocked for capacity are unblocked, and every system job is evaluated (it
    /// wants one allocation on the node again; Nomad's `createNodeEvals` on the transition).
    pub fn mark_eligible(&mut self, node: NodeIdx, jobs: &[JobSpec]) -> Applied {
        let mut out = Applied::default();
        if !self.draining.remove(&node) {
            return out;
        }
        self.forced.remove(&node);
        self.force_at.remove(&node);
        out.unblock = true;
        for job in self.system_jobs(jobs) {
            self.new_eval(job, &mut out);
        }
        out
    }

    /// The drain deadline of `node` was reached (`handleDeadlinedNodes`): every allocation
    /// still on it is marked for migration together, and its jobs are evaluated; the
    /// scheduler then stops them all at once, ignoring `migrate.max_parallel`. Returns, per
    /// service or batch job, the allocations that were still running and not yet migrating:
    /// those the drain never moved one batch at a time. System jobs' allocations are left out
    /// of that count: a drained node's system allocations stop for good in any drain (Nomad
    /// stops them last), so the deadline takes nothing from them that the drain would not; so
    /// are allocations in `killed` (dead with their host already, counted as lost then).
    pub fn force_drain(
        &mut self,
        node: NodeIdx,
        jobs: &[JobSpec],
        killed: &BTreeSet<u64>,
    ) -> (Applied, Vec<ForcedStop>) {
        let mut out = Applied::default();
        if !self.draining.contains(&node) || !self.forced.insert(node) {
            return (out, Vec::new());
        }
        let mut per_job: BTreeMap<JobIdx, u32> = BTreeMap::new();
        for a in self
            .allocs
            .iter()
            .filter(|a| a.node == node && a.state == AllocState::Running)
            .filter(|a| !killed.contains(&a.id))
        {
            let system = jobs
                .get(a.job as usize)
                .is_some_and(|j| j.kind == rehearse_model::api::JobType::System);
            if !system {
                *per_job.entry(a.job).or_default() += 1;
            }
        }
        for job in self.jobs_on(node) {
            self.new_eval(job, &mut out);
        }
        let stops = per_job
            .into_iter()
            .map(|(job, allocs)| ForcedStop { node, job, allocs })
            .collect();
        (out, stops)
    }

    fn jobs_on(&self, node: NodeIdx) -> BTreeSet<JobIdx> {
        self.allocs
            .iter()
            .filter(|a| a.node == node && matches!(a.state, AllocState::Running))
            .map(|a| a.job)
            .collect()
    }

    fn system_jobs(&self, jobs: &[JobSpec]) -> Vec<JobIdx> {
        self.registered
            .iter()
            .copied()
            .filter(|&j| {
                jobs.get(j as usize)
                    .is_some_and(|s| s.kind == rehearse_model::api::JobType::System)
            })
            .collect()
    }

    /// Allocations occupying a slot of `node` at `now`.
    pub fn used(&self, node: NodeIdx, now: SimTime) -> u32 {
        self.allocs
            .iter()
            .filter(|a| a.node == node && a.runs_at(now))
            .count() as u32
    }

    /// Allocations occupying a slot at `now`, per node `0..nodes` (one pass).
    pub fn used_all(&self, nodes: u32, now: SimTime) -> Vec<u32> {
        let mut used = vec![0u32; nodes as usize];
        for a in self.allocs.iter().filter(|a| a.runs_at(now)) {
            if let Some(u) = used.get_mut(a.node as usize) {
                *u += 1;
            }
        }
        used
    }

    /// Whether `node` takes new allocations (ready and not draining).
    pub fn eligible(&self, node: NodeIdx) -> bool {
        !self.down.contains(&node) && !self.draining.contains(&node)
    }

    /// The plan applier and the FSM's `ApplyPlanResults`: stops and losses first, then the
    /// placements that still fit; the evaluation completes, or blocks if anything is left.
    /// A plan for an evaluation already complete or failed (planned twice across a leader
    /// change) changes nothing.
    pub fn apply_plan(&mut self, p: &PlanResult, ctx: &PlanCtx) -> Applied {
        let open = self
            .eval(p.eval)
            .is_some_and(|e| matches!(e.status, EvalStatus::Pending | EvalStatus::Blocked));
        if !open {
            return Applied::default();
        }
        let mut out = Applied {
            unblock: !p.migrate.is_empty() || !p.lost.is_empty(),
            ..Applied::default()
        };
        let now = ctx.now;
        for a in self.allocs.iter_mut() {
            if a.state != AllocState::Running {
                continue;
            }
            if p.lost.contains(&a.id) {
                a.state = AllocState::Lost;
            } else if p.migrate.contains(&a.id) {
                let kill = group(ctx.jobs, a.job, a.group).map_or(0, |g| g.kill_timeout_ns);
                let until = now.plus(kill);
                a.state = AllocState::Stopping(until);
                out.stops_at = Some(out.stops_at.map_or(until, |t: SimTime| t.max(until)));
            }
        }
        let mut unplaced = p.unplaced;
        let mut used = self.used_all(ctx.nodes as u32, now);
        for pl in &p.place {
            let fits = (pl.node as usize) < ctx.nodes
                && self.eligible(pl.node)
                && used[pl.node as usize] < ctx.slots;
            if !fits {
                unplaced += 1;
                continue;
            }
            used[pl.node as usize] += 1;
            let id = self.allocs.len() as u64 + 1;
            self.allocs.push(Alloc {
                id,
                job: p.job,
                group: pl.group,
                node: pl.node,
                state: AllocState::Running,
            });
        }
        let status = if unplaced > 0 {
            out.block = Some((p.eval, p.job));
            EvalStatus::Blocked
        } else {
            out.ack = Some(p.eval);
            EvalStatus::Complete
        };
        if let Some(e) = self.eval_mut(p.eval) {
            e.status = status;
        }
        out
    }

    /// Evaluations waiting for a scheduler or for capacity (`restoreEvals`' input), oldest first.
    pub fn outstanding(&self) -> impl Iterator<Item = &Eval> {
        self.evals
            .iter()
            .filter(|e| matches!(e.status, EvalStatus::Pending | EvalStatus::Blocked))
    }

    /// Finishes the kill timeouts that ended by `now` (stopping → stopped).
    pub fn settle(&mut self, now: SimTime) {
        for a in self.allocs.iter_mut() {
            if let AllocState::Stopping(until) = a.state
                && until <= now
            {
                a.state = AllocState::Stopped;
            }
        }
    }
}

/// What the plan applier needs besides the state.
#[derive(Debug, Clone, Copy)]
pub struct PlanCtx<'a> {
    /// The declared jobs.
    pub jobs: &'a [JobSpec],
    /// Nodes in all (client-only plus servers).
    pub nodes: usize,
    /// Slots per node.
    pub slots: u32,
    /// Commit time.
    pub now: SimTime,
}

/// Group `g` of job `j`.
pub fn group(jobs: &[JobSpec], j: JobIdx, g: u32) -> Option<&GroupSpec> {
    jobs.get(j as usize)?.groups.get(g as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehearse_model::api::JobType;
    use rehearse_model::time::SEC;

    fn jobs() -> Vec<JobSpec> {
        vec![JobSpec {
            name: "web".into(),
            kind: JobType::Service,
            groups: vec![GroupSpec {
                name: "g".into(),
                count: 2,
                kill_timeout_ns: 5 * SEC,
                migrate_max_parallel: None,
            }],
        }]
    }

    #[test]
    fn a_plan_places_what_fits_and_blocks_on_the_rest() {
        let jobs = jobs();
        let mut f = Fsm::default();
        let a = f.register(0);
        assert_eq!(a.enqueue, vec![(1, 0)]);
        let ctx = PlanCtx {
            jobs: &jobs,
            nodes: 2,
            slots: 1,
            now: SimTime::ZERO,
        };
        let p = PlanResult {
            eval: 1,
            job: 0,
            place: vec![
                Placement { group: 0, node: 0 },
                Placement { group: 0, node: 0 },
            ],
            migrate: vec![],
            lost: vec![],
            unplaced: 0,
        };
        let out = f.apply_plan(&p, &ctx);
        assert_eq!(out.block, Some((1, 0)), "the second did not fit");
        assert_eq!(f.allocs.len(), 1);
        assert_eq!(f.eval(1).unwrap().status, EvalStatus::Blocked);
    }

    #[test]
    fn a_node_going_down_evaluates_its_jobs_and_a_migrated_alloc_runs_its_kill_timeout() {
        let jobs = jobs();
        let mut f = Fsm::default();
        f.register(0);
        let ctx = PlanCtx {
            jobs: &jobs,
            nodes: 2,
            slots: 4,
            now: SimTime::ZERO,
        };
        let place = vec![Placement { group: 0, node: 1 }];
        let p = PlanResult {
            eval: 1,
            job: 0,
            place,
            migrate: vec![],
            lost: vec![],
            unplaced: 0,
        };
        assert_eq!(f.apply_plan(&p, &ctx).ack, Some(1));
        let out = f.node_status(1, true, &jobs);
        assert_eq!(out.enqueue, vec![(2, 0)]);
        assert!(
            f.node_status(1, true, &jobs).enqueue.is_empty(),
            "no change"
        );
        let m = PlanResult {
            eval: 2,
            job: 0,
            place: vec![],
            migrate: vec![1],
            lost: vec![],
            unplaced: 0,
        };
        let out = f.apply_plan(&m, &ctx);
        assert_eq!(out.stops_at, Some(SimTime(5 * SEC)));
        assert!(f.allocs[0].runs_at(SimTime(4 * SEC)));
        f.settle(SimTime(5 * SEC));
        assert_eq!(f.allocs[0].state, AllocState::Stopped);
    }
}
