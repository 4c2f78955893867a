//! The scheduler: one evaluation in, one plan out (hashicorp/nomad `scheduler/generic_sched.go`,
//! `scheduler/system_sched.go`, `scheduler/reconcile.go`), reduced to counts and slots. Pure.
//!
//! For each group of the evaluation's job: allocations on a node marked down are lost;
//! allocations on a draining node are migrated, at most `migrate.max_parallel` of the group at
//! once (those still running out their kill timeout count against it), or all of them at once
//! on a node whose drain deadline was reached; then the group gets new allocations up to its
//! count (a system job: one per eligible node) on eligible nodes
//! with a free slot. Node choice: fewest allocations of the same job first (Nomad's job
//! anti-affinity), then the fullest node (Nomad's default `binpack` algorithm), then the lowest
//! index — deterministic, where Nomad scores a random sample of nodes (`scheduler/rank.go`,
//! `scheduler/select.go`). Placements that find no slot are counted `unplaced`: the
//! evaluation blocks for capacity. A system job's allocation on a draining node is stopped
//! like any other (Nomad stops system allocations last, after the other jobs' migrations).

use super::JobSpec;
use super::broker::{EvalId, JobIdx};
use super::fsm::{Alloc, AllocState, Fsm, NodeIdx, Placement, PlanResult};
use rehearse_model::api::JobType;
use rehearse_model::time::SimTime;

/// What a worker plans against.
#[derive(Debug, Clone, Copy)]
pub struct SchedCtx<'a> {
    /// The declared jobs.
    pub jobs: &'a [JobSpec],
    /// Nodes in all.
    pub nodes: u32,
    /// Slots per node.
    pub slots: u32,
    /// Now.
    pub now: SimTime,
}

/// The plan for evaluation `eval` of `job`.
pub fn plan(fsm: &Fsm, eval: EvalId, job: JobIdx, ctx: &SchedCtx) -> PlanResult {
    let mut p = PlanResult {
        eval,
        job,
        place: Vec::new(),
        migrate: Vec::new(),
        lost: Vec::new(),
        unplaced: 0,
    };
    let Some(spec) = ctx.jobs.get(job as usize) else {
        return p;
    };
    if !fsm.registered.contains(&job) {
        return p;
    }
    // Slots taken, per node, as the plan goes.
    let mut used = fsm.used_all(ctx.nodes, ctx.now);
    for g in 0..spec.groups.len() {
        plan_group(fsm, (spec, job, g as u32), ctx, &mut used, &mut p);
    }
    p
}

/// Group `g` of `job` (declared as `spec`) into plan `p`: its lost and migrated allocations,
/// then its placements on the slots `used` leaves free.
fn plan_group(
    fsm: &Fsm,
    (spec, job, g): (&JobSpec, JobIdx, u32),
    ctx: &SchedCtx,
    used: &mut [u32],
    p: &mut PlanResult,
) {
    let group = &spec.groups[g as usize];
    let mine: Vec<&Alloc> = fsm
        .allocs
        .iter()
        .filter(|a| a.job == job && a.group == g)
        .collect();
    let live = lose_and_migrate(fsm, &mine, group.max_parallel(), ctx, p);
    let targets: Vec<NodeIdx> = if spec.kind == JobType::System {
        system_targets(fsm, &mine, ctx)
    } else {
        let want = group.count.saturating_sub(live);
        (0..want).map(|_| NodeIdx::MAX).collect()
    };
    let mut same = same_job_per_node(fsm, job, ctx, p);
    for target in targets {
        let node = if target == NodeIdx::MAX {
            pick(fsm, &same, used, ctx)
        } else {
            (used[target as usize] < ctx.slots).then_some(target)
        };
        match node {
            Some(n) => {
                used[n as usize] += 1;
                same[n as usize] += 1;
                p.place.push(Placement { group: g, node: n });
            }
            None => p.unplaced += 1,
        }
    }
}

/// The group's running allocations (`mine`) on down nodes into `p.lost`, those on draining
/// nodes into `p.migrate` (at most `max_parallel` migrating at once, counting those still
/// stopping; all at once where the drain's deadline was reached); returns how many stay.
fn lose_and_migrate(
    fsm: &Fsm,
    mine: &[&Alloc],
    max_parallel: u32,
    ctx: &SchedCtx,
    p: &mut PlanResult,
) -> u32 {
    let mut live = 0u32;
    let mut migrating = mine
        .iter()
        .filter(|a| matches!(a.state, AllocState::Stopping(_)) && a.runs_at(ctx.now))
        .count() as u32;
    for a in mine.iter().filter(|a| a.state == AllocState::Running) {
        if fsm.down.contains(&a.node) {
            p.lost.push(a.id);
        } else if fsm.forced.contains(&a.node) {
            // The drain's deadline was reached: the drainer marked every allocation left
            // on the node for migration at once (`handleDeadlinedNodes`).
            migrating += 1;
            p.migrate.push(a.id);
        } else if fsm.draining.contains(&a.node) && migrating < max_parallel {
            migrating += 1;
            p.migrate.push(a.id);
        } else {
            live += 1;
        }
    }
    live
}

/// Allocations of `job` per node, running now or placed by the plan so far (for
/// anti-affinity as the plan goes on).
fn same_job_per_node(fsm: &Fsm, job: JobIdx, ctx: &SchedCtx, p: &PlanResult) -> Vec<u32> {
    let mut same = vec![0u32; ctx.nodes as usize];
    for a in fsm
        .allocs
        .iter()
        .filter(|a| a.job == job && a.runs_at(ctx.now))
    {
        if let Some(c) = same.get_mut(a.node as usize) {
            *c += 1;
        }
    }
    for pl in &p.place {
        same[pl.node as usize] += 1;
    }
    same
}

/// Eligible nodes without a running allocation of this system job's group.
fn system_targets(fsm: &Fsm, mine: &[&Alloc], ctx: &SchedCtx) -> Vec<NodeIdx> {
    (0..ctx.nodes)
        .filter(|&n| fsm.eligible(n))
        .filter(|&n| {
            !mine
                .iter()
                .any(|a| a.node == n && a.state == AllocState::Running)
        })
        .collect()
}

/// The node for one more allocation, if any has a free slot: fewest of the job's allocations
/// (`same`), then the fullest, then the lowest index.
fn pick(fsm: &Fsm, same: &[u32], used: &[u32], ctx: &SchedCtx) -> Option<NodeIdx> {
    (0..ctx.nodes)
        .filter(|&n| fsm.eligible(n) && used[n as usize] < ctx.slots)
        .min_by_key(|&n| (same[n as usize], ctx.slots - used[n as usize], n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::GroupSpec;
    use crate::workload::fsm::PlanCtx;
    use rehearse_model::time::SEC;

    fn job(kind: JobType, count: u32, max_parallel: Option<u32>) -> JobSpec {
        JobSpec {
            name: "j".into(),
            kind,
            groups: vec![GroupSpec {
                name: "g".into(),
                count,
                kill_timeout_ns: 5 * SEC,
                migrate_max_parallel: max_parallel,
            }],
        }
    }

    fn run(fsm: &mut Fsm, jobs: &[JobSpec], eval: EvalId, nodes: u32, slots: u32) -> PlanResult {
        let ctx = SchedCtx {
            jobs,
            nodes,
            slots,
            now: SimTime::ZERO,
        };
        let p = plan(fsm, eval, 0, &ctx);
        let actx = PlanCtx {
            jobs,
            nodes: nodes as usize,
            slots,
            now: SimTime::ZERO,
        };
        fsm.apply_plan(&p, &actx);
        p
    }

    #[test]
    fn places_spread_over_nodes_within_capacity_then_blocks() {
        let jobs = vec![job(JobType::Service, 5, None)];
        let mut f = Fsm::default();
        f.register(0);
        let p = run(&mut f, &jobs, 1, 2, 2);
        let nodes: Vec<u32> = p.place.iter().map(|pl| pl.node).collect();
        assert_eq!(nodes, vec![0, 1, 0, 1], "spread, then capacity runs out");
        assert_eq!(p.unplaced, 1);
        // A new evaluation finds the job short by one, still no room.
        f.create_eval(0);
        let p = run(&mut f, &jobs, 2, 2, 2);
        assert_eq!((p.place.len(), p.unplaced), (0, 1));
        // A third node: the one missing allocation goes there.
        f.create_eval(0);
        let p = run(&mut f, &jobs, 3, 3, 2);
        assert_eq!(p.place, vec![Placement { group: 0, node: 2 }]);
    }

    #[test]
    fn lost_allocations_are_replaced_and_a_drain_moves_max_parallel_at_once() {
        let jobs = vec![job(JobType::Service, 3, Some(2))];
        let mut f = Fsm::default();
        f.register(0);
        run(&mut f, &jobs, 1, 1, 8); // all three on node 0
        f.node_status(0, true, &jobs);
        let p = run(&mut f, &jobs, 2, 2, 8);
        assert_eq!(p.lost.len(), 3);
        assert_eq!(p.place.len(), 3);
        assert!(p.place.iter().all(|pl| pl.node == 1));
        // Node 1 drains with two more nodes available: two migrate now, one later.
        f.drain(1, None);
        let p = run(&mut f, &jobs, 3, 4, 8);
        assert_eq!((p.migrate.len(), p.place.len()), (2, 2));
        assert!(p.place.iter().all(|pl| pl.node >= 2));
        f.settle(SimTime(5 * SEC));
        let ctx = SchedCtx {
            jobs: &jobs,
            nodes: 4,
            slots: 8,
            now: SimTime(5 * SEC),
        };
        let p = plan(&f, 5, 0, &ctx);
        assert_eq!((p.migrate.len(), p.place.len()), (1, 1));
    }

    #[test]
    fn past_the_drain_deadline_every_allocation_left_migrates_at_once() {
        let jobs = vec![job(JobType::Service, 4, Some(1))];
        let mut f = Fsm::default();
        f.register(0);
        run(&mut f, &jobs, 1, 1, 8); // all four on node 0
        f.drain(0, Some(SimTime(15 * SEC)));
        let p = run(&mut f, &jobs, 2, 2, 8);
        assert_eq!(p.migrate.len(), 1, "max_parallel = 1 before the deadline");
        let (out, stops) = f.force_drain(0, &jobs, &Default::default());
        assert_eq!(out.enqueue.len(), 1, "the job is evaluated");
        assert_eq!(stops.len(), 1);
        assert_eq!((stops[0].job, stops[0].allocs), (0, 3));
        let ctx = SchedCtx {
            jobs: &jobs,
            nodes: 2,
            slots: 8,
            now: SimTime(SEC),
        };
        let p = plan(&f, 3, 0, &ctx);
        assert_eq!((p.migrate.len(), p.place.len()), (3, 3), "{p:?}");
        // A second deadline entry for the same node changes nothing.
        assert!(f.force_drain(0, &jobs, &Default::default()).1.is_empty());
    }

    #[test]
    fn a_system_job_runs_once_on_every_eligible_node() {
        let jobs = vec![job(JobType::System, 1, None)];
        let mut f = Fsm::default();
        f.register(0);
        f.drain(2, None);
        let p = run(&mut f, &jobs, 1, 4, 8);
        let nodes: Vec<u32> = p.place.iter().map(|pl| pl.node).collect();
        assert_eq!(nodes, vec![0, 1, 3]);
        f.create_eval(0);
        assert!(run(&mut f, &jobs, 2, 4, 8).place.is_empty());
    }
}
