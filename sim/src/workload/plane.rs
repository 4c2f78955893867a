//! The workload plane in the world: the leader's broker, the workers, the hooks the world
//! calls (leadership, committed entries, nodes going and coming), and what it reports.

use super::broker::{Broker, EvalId, JobIdx, NackOutcome};
use super::fsm::{Applied, EvalStatus, ForcedStop, Fsm, NodeIdx, PlanCtx, PlanResult};
use super::sched::{SchedCtx, plan};
use crate::state::{EntryKind, ProcessState, Role, ServerId, WorkloadEntry};
use crate::trace::TraceKind;
use crate::world::World;
use rehearse_model::api::{ApiError, JobState, JobType, Workload};
use rehearse_model::time::SimTime;
use rehearse_model::versions::Version;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A drain in progress: `drain_done_at` holds this until the node runs nothing.
pub(crate) const DRAINING: SimTime = SimTime(u64::MAX);

/// The plane's events (one world event kind carries them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneEv {
    /// The leader of `term` runs `establishLeadership`'s writes (after its no-op).
    Established {
        /// Leader.
        leader: ServerId,
        /// Its term.
        term: u64,
    },
    /// A worker finished scheduling the delivery `token`.
    WorkerDone {
        /// Delivery token.
        token: u64,
    },
    /// The nack timer of a delivery.
    NackTimeout {
        /// Evaluation.
        eval: EvalId,
        /// Delivery token.
        token: u64,
    },
    /// Workers that could not dequeue ask again.
    Poll,
    /// Migrated allocations have stopped: the drainer and the blocked tracker look again.
    StopsDone,
    /// A drain's deadline (`ForceDeadline`) falls: the leader's drainer looks at the node.
    DrainDeadline {
        /// Node.
        node: NodeIdx,
    },
    /// A stopped server-client's heartbeat timer fires on the leader.
    ServerNodeTtl {
        /// Server.
        server: ServerId,
        /// Its incarnation when it went down.
        inc: u64,
    },
}

/// Outcome figures of a run's workload plane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadOutcome {
    /// Highest eval broker backlog (`BrokerStats::backlog`) seen.
    pub backlog_peak: u64,
    /// From `World::mark_procedure_end` until the backlog was 0 and every job ran its desired
    /// count (None: not yet, or not marked).
    pub time_to_recover_ns: Option<u64>,
    /// Allocations that were running on a node when its host or agent stopped.
    pub lost_allocs: u64,
}

impl WorkloadOutcome {
    /// Whether nothing was recorded (no jobs, or nothing happened).
    pub fn is_zero(&self) -> bool {
        *self == WorkloadOutcome::default()
    }
}

/// Most points a [`BacklogSeries`] keeps.
pub const BACKLOG_POINTS_MAX: usize = 512;

/// The eval broker's backlog over time: (simulated ns since the world's start, the backlog:
/// ready, unacked and blocked) at each change, as the plane observes it. Bounded: once it holds
/// [`BACKLOG_POINTS_MAX`] points, pairs of neighbours are merged into one (the earlier time,
/// the higher backlog, so the peak stays), and from then on each point stands for twice as
/// many changes. The latest change is always kept as it was, so the series ends on the final
/// backlog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BacklogSeries {
    points: Vec<(u64, u64)>,
    /// Changes each stored point stands for (a power of two).
    per_point: u32,
    /// The point being gathered: (time of its first change, highest backlog, changes so far).
    pending: Option<(u64, u64, u32)>,
    /// The latest change.
    last: Option<(u64, u64)>,
}

impl BacklogSeries {
    /// Records the backlog at `t_ns` if it changed.
    fn record(&mut self, t_ns: u64, backlog: u64) {
        if self.last.map(|l| l.1) == Some(backlog) {
            return;
        }
        self.last = Some((t_ns, backlog));
        let per = self.per_point.max(1);
        let (t, v, n) = self
            .pending
            .map_or((t_ns, backlog, 1), |(t, v, n)| (t, v.max(backlog), n + 1));
        if n < per {
            self.pending = Some((t, v, n));
            return;
        }
        self.pending = None;
        self.points.push((t, v));
        if self.points.len() >= BACKLOG_POINTS_MAX {
            self.points = self
                .points
                .chunks(2)
                .map(|c| (c[0].0, c.iter().map(|p| p.1).max().unwrap_or(0)))
                .collect();
            self.per_point = per * 2;
        }
    }

    /// The points, in time order, ending with the latest change.
    pub fn points(&self) -> Vec<(u64, u64)> {
        let mut out = self.points.clone();
        if let Some((t, v, _)) = self.pending {
            out.push((t, v));
        }
        if let Some(l) = self.last
            && out.last() != Some(&l)
        {
            out.push(l);
        }
        out
    }
}

/// Allocations a drain's deadline stopped before the drainer had migrated them: killed
/// together, not moved one batch at a time (see `Fsm::force_drain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineStop {
    /// The server whose client was drained.
    pub server: String,
    /// When the drainer's deadline entry was applied.
    pub at: SimTime,
    /// Job ID.
    pub job: String,
    /// Allocations of the job still running on the node, not yet migrating.
    pub allocs: u32,
}

/// A worker's evaluation in progress.
#[derive(Debug, Clone)]
struct InFlight {
    server: ServerId,
    inc: u64,
    plan: PlanResult,
}

/// The plane's state beside the replicated one.
#[derive(Debug, Clone)]
pub struct Plane {
    /// The applied workload state (one copy: see the module docs).
    pub(crate) fsm: Fsm,
    broker: Broker,
    /// The established leader whose broker runs: (id, term).
    leader: Option<(ServerId, u64)>,
    /// Busy workers per server: (incarnation, count).
    busy: Vec<(u64, u32)>,
    inflight: BTreeMap<u64, InFlight>,
    poll_armed: bool,
    /// Servers with a client, in id order: server `server_nodes[k]` is node `clients + k`.
    server_nodes: Vec<ServerId>,
    clients: u32,
    /// Ground truth: allocations killed with their host (the state still says running until
    /// the node is marked down).
    killed: BTreeSet<u64>,
    outcome: WorkloadOutcome,
    end_at: Option<SimTime>,
    backlog: BacklogSeries,
    /// Per server: the version its client last registered with (`nomad.version`), for
    /// servers that are also clients.
    registered_as: Vec<Option<Version>>,
    /// Allocations stopped by drain deadlines, in apply order.
    deadline_stops: Vec<DeadlineStop>,
}

impl Plane {
    /// The plane of a world with `clients` client-only nodes and these servers' clients.
    pub(crate) fn new(clients: usize, also_client: &[bool], versions: &[Version]) -> Plane {
        Plane {
            fsm: Fsm::default(),
            broker: Broker::default(),
            leader: None,
            busy: vec![(0, 0); also_client.len()],
            inflight: BTreeMap::new(),
            poll_armed: false,
            server_nodes: (0..also_client.len()).filter(|&s| also_client[s]).collect(),
            clients: clients as u32,
            killed: BTreeSet::new(),
            outcome: WorkloadOutcome::default(),
            end_at: None,
            backlog: BacklogSeries::default(),
            registered_as: also_client
                .iter()
                .zip(versions)
                .map(|(&c, &v)| c.then_some(v))
                .collect(),
            deadline_stops: Vec::new(),
        }
    }

    fn nodes(&self) -> u32 {
        self.clients + self.server_nodes.len() as u32
    }

    /// The node of server `s`'s client, if it has one.
    pub(crate) fn node_of(&self, s: ServerId) -> Option<NodeIdx> {
        let k = self.server_nodes.iter().position(|&x| x == s)?;
        Some(self.clients + k as u32)
    }

    fn server_of(&self, node: NodeIdx) -> Option<ServerId> {
        let k = node.checked_sub(self.clients)?;
        self.server_nodes.get(k as usize).copied()
    }

    /// Allocations running on `node` now (ground truth).
    pub(crate) fn running_on(&self, node: NodeIdx, now: SimTime) -> usize {
        self.fsm
            .allocs
            .iter()
            .filter(|a| a.node == node && a.runs_at(now) && !self.killed.contains(&a.id))
            .count()
    }
}

/// The name of client-only node `node` (`node N` if there is none).
fn client_name(clients: &crate::clients::Clients, node: NodeIdx) -> String {
    clients
        .name(node as usize)
        .map_or_else(|| format!("node {node}"), |n| n.to_string())
}

impl World {
    /// The broker's leader, if it still leads and has established leadership.
    fn plane_leader(&self) -> Option<(ServerId, u64)> {
        let (l, term) = self.plane.as_ref()?.leader?;
        let s = &self.servers[l];
        let same = s.proc == ProcessState::Running
            && s.vol.role == Role::Leader
            && s.disk.term == term
            && !self.is_wedged(l);
        same.then_some((l, term))
    }

    fn push_plane_in(&mut self, delay_ns: u64, ev: PlaneEv) {
        self.push_plane(self.now.plus(delay_ns), ev);
    }

    /// `establishLeadership` on `l`: the broker is enabled and restored from the state; the
    /// leader's own writes follow its no-op (`PlaneEv::Established`).
    #[inline(never)]
    pub(crate) fn plane_on_established(&mut self, l: ServerId) {
        let term = self.servers[l].disk.term;
        let Some(p) = self.plane.as_mut() else {
            return;
        };
        p.broker.set_enabled(false);
        p.broker.set_enabled(true);
        p.leader = Some((l, term));
        // restoreEvals: pending ones to the broker, blocked ones to the tracker.
        let Plane { fsm, broker, .. } = &mut **p;
        for e in fsm.outstanding() {
            match e.status {
                EvalStatus::Blocked => broker.restore_blocked(e.id, e.job),
                _ => broker.enqueue(e.id, e.job),
            }
        }
        self.push_plane_in(0, PlaneEv::Established { leader: l, term });
    }

    /// `revokeLeadership`: a broker whose leader no longer leads is flushed.
    #[inline(never)]
    pub(crate) fn plane_on_leadership_changed(&mut self) {
        if self.plane.is_none() || self.plane_leader().is_some() {
            return;
        }
        let Some(p) = self.plane.as_mut() else { return };
        if p.leader.take().is_some() {
            p.broker.set_enabled(false);
            // Plans in flight are refused; their workers are free again.
            p.inflight.clear();
            p.busy.iter_mut().for_each(|b| b.1 = 0);
        }
    }

    /// The new leader's writes: the declared jobs not registered yet, the scheduler
    /// configuration if none was written (`getOrCreateSchedulerConfig`), server-clients whose
    /// status is stale; then its workers start.
    fn plane_established_writes(&mut self, l: ServerId, term: u64) {
        if self.plane_leader() != Some((l, term)) {
            return;
        }
        let Some(p) = self.plane.as_ref() else { return };
        let unregistered: Vec<u32> = (0..self.cfg.jobs.len() as u32)
            .filter(|j| !p.fsm.registered.contains(j))
            .collect();
        let config = p.fsm.sched_config.is_none();
        for job in unregistered {
            self.append_local(
                l,
                EntryKind::Workload(Box::new(WorkloadEntry::JobRegister { job })),
            );
        }
        if config {
            let kind = EntryKind::Workload(Box::new(WorkloadEntry::SchedulerConfig {
                pause_eval_broker: false,
            }));
            self.append_local(l, kind);
        }
        self.plane_server_nodes_on_established(l);
        self.plane_deadlined_nodes(l);
        self.broadcast(l);
        self.plane_dispatch();
        self.plane_observe();
    }

    /// Server-clients: one gone and not marked down gets the failover TTL; one running but
    /// marked down is marked ready.
    fn plane_server_nodes_on_established(&mut self, l: ServerId) {
        let Some(p) = self.plane.as_ref() else { return };
        let ttl = self.cfg.clients.failover_heartbeat_ttl_ns;
        let mut ready = Vec::new();
        let mut arm = Vec::new();
        for (k, &s) in p.server_nodes.iter().enumerate() {
            let node = p.clients + k as u32;
            let up = matches!(
                self.servers[s].proc,
                ProcessState::Running | ProcessState::Paused
            );
            let down = p.fsm.down.contains(&node);
            if up && down {
                ready.push(node);
            } else if !up && !down {
                arm.push((s, self.servers[s].incarnation));
            }
        }
        let running: Vec<ServerId> = p
            .server_nodes
            .iter()
            .copied()
            .filter(|&s| self.servers[s].proc == ProcessState::Running)
            .collect();
        for node in ready {
            let kind = EntryKind::NodeStatus { node, down: false };
            self.append_local(l, kind);
        }
        for s in running {
            self.plane_reregister(s);
        }
        for (server, inc) in arm {
            self.push_plane_in(ttl, PlaneEv::ServerNodeTtl { server, inc });
        }
    }

    /// A plane event.
    #[inline(never)]
    pub(crate) fn on_plane(&mut self, ev: PlaneEv) {
        match ev {
            PlaneEv::Established { leader, term } => self.plane_established_writes(leader, term),
            PlaneEv::WorkerDone { token } => self.plane_worker_done(token),
            PlaneEv::NackTimeout { eval, token } => self.plane_nack_timeout(eval, token),
            PlaneEv::Poll => {
                if let Some(p) = self.plane.as_mut() {
                    p.poll_armed = false;
                }
                self.plane_dispatch();
            }
            PlaneEv::StopsDone => self.plane_stops_done(),
            PlaneEv::DrainDeadline { .. } => {
                if let Some((l, _)) = self.plane_leader()
                    && self.plane_deadlined_nodes(l)
                {
                    self.broadcast(l);
                }
            }
            PlaneEv::ServerNodeTtl { server, inc } => self.plane_server_node_ttl(server, inc),
        }
        self.plane_observe();
    }

    /// Idle workers dequeue while the broker has ready evaluations: servers in id order, each
    /// running and reaching the leader. If some wait and no worker could take them, workers
    /// ask again after `dequeue_retry`.
    fn plane_dispatch(&mut self) {
        let Some((l, _)) = self.plane_leader() else {
            return;
        };
        while self.plane.as_ref().is_some_and(|p| p.broker.has_ready()) {
            let worker = (0..self.servers.len()).find(|&s| {
                let srv = &self.servers[s];
                // The workers of the binary it runs (its configuration ships with it).
                let per = self.cfg.plane.workers_on(srv.spec.version);
                let busy = self.plane.as_ref().map_or((0, 0), |p| p.busy[s]);
                let idle = if busy.0 == srv.incarnation {
                    busy.1 < per
                } else {
                    per > 0
                };
                srv.proc == ProcessState::Running && idle && self.plane_reaches(s, l)
            });
            let Some(s) = worker else {
                self.plane_arm_poll();
                return;
            };
            self.plane_start_worker(s);
        }
    }

    fn plane_reaches(&self, s: ServerId, l: ServerId) -> bool {
        s == l || (self.net.link_open(s, l) && self.net.link_open(l, s))
    }

    fn plane_arm_poll(&mut self) {
        let Some(p) = self.plane.as_mut() else { return };
        if !p.poll_armed {
            p.poll_armed = true;
            let d = self.cfg.plane.dequeue_retry_ns;
            self.push_plane_in(d, PlaneEv::Poll);
        }
    }

    /// Worker on `s` dequeues one evaluation and plans it against the state it sees now (the
    /// worker's `snapshotMinIndex`).
    fn plane_start_worker(&mut self, s: ServerId) {
        let now = self.now;
        let inc = self.servers[s].incarnation;
        let cfg = &self.cfg.plane;
        let (nack, base, per) = (
            cfg.eval_nack_timeout_ns,
            cfg.sched_base_ns,
            cfg.sched_per_placement_ns,
        );
        let slots = cfg.slots_per_node;
        let Some(p) = self.plane.as_mut() else { return };
        let Some(d) = p.broker.dequeue(now, nack) else {
            return;
        };
        if p.busy[s].0 != inc {
            p.busy[s] = (inc, 0);
        }
        p.busy[s].1 += 1;
        let ctx = SchedCtx {
            jobs: &self.cfg.jobs,
            nodes: p.nodes(),
            slots,
            now,
        };
        let result = plan(&p.fsm, d.eval, d.job, &ctx);
        let took = base + per * result.place.len() as u64;
        p.inflight.insert(
            d.token,
            InFlight {
                server: s,
                inc,
                plan: result,
            },
        );
        self.push_plane_in(took, PlaneEv::WorkerDone { token: d.token });
        self.push_plane(
            d.nack_at,
            PlaneEv::NackTimeout {
                eval: d.eval,
                token: d.token,
            },
        );
    }

    /// A worker submits its plan: the leader appends it as a Raft entry (`Plan.Submit`), or
    /// refuses it if it no longer leads (the evaluation comes back through the next leader's
    /// restore) or the worker cannot reach it (the nack timer requeues it).
    fn plane_worker_done(&mut self, token: u64) {
        let Some(p) = self.plane.as_mut() else { return };
        let Some(f) = p.inflight.remove(&token) else {
            return;
        };
        if p.busy[f.server].0 == f.inc {
            p.busy[f.server].1 = p.busy[f.server].1.saturating_sub(1);
        }
        let srv = &self.servers[f.server];
        let Some((l, _)) = self.plane_leader() else {
            return;
        };
        if srv.incarnation != f.inc
            || srv.proc != ProcessState::Running
            || !self.plane_reaches(f.server, l)
        {
            return self.plane_dispatch();
        }
        let Some(p) = self.plane.as_mut() else { return };
        if !p.broker.outstanding(f.plan.eval, token) {
            return self.plane_dispatch();
        }
        let open = p
            .fsm
            .eval(f.plan.eval)
            .is_some_and(|e| matches!(e.status, EvalStatus::Pending | EvalStatus::Blocked));
        if open {
            self.append_local(
                l,
                EntryKind::Workload(Box::new(WorkloadEntry::PlanResult(f.plan))),
            );
            self.broadcast(l);
        } else {
            // Planned already (a plan committed after a leader change): nothing to do.
            p.broker.ack(f.plan.eval);
        }
        self.plane_dispatch();
    }

    fn plane_nack_timeout(&mut self, eval: EvalId, token: u64) {
        let Some((l, _)) = self.plane_leader() else {
            return;
        };
        let limit = self.cfg.plane.eval_delivery_limit;
        let Some(p) = self.plane.as_mut() else { return };
        match p.broker.nack(eval, token, limit) {
            NackOutcome::Failed => {
                let kind = EntryKind::Workload(Box::new(WorkloadEntry::EvalUpdate {
                    eval,
                    status: EvalStatus::Failed,
                }));
                self.append_local(l, kind);
                self.broadcast(l);
                self.plane_dispatch();
            }
            NackOutcome::Requeued => self.plane_dispatch(),
            NackOutcome::Unknown => {}
        }
    }

    /// A committed entry, applied the first time any server applies its index (see the
    /// module docs): the state changes, and the leader's broker follows.
    #[inline(never)]
    pub(crate) fn plane_apply(&mut self, kind: &EntryKind) {
        let now = self.now;
        let slots = self.cfg.plane.slots_per_node;
        let Some(p) = self.plane.as_mut() else { return };
        let nodes = p.nodes() as usize;
        let jobs = &self.cfg.jobs;
        let out = match kind {
            EntryKind::NodeStatus { node, down } => p.fsm.node_status(*node, *down, jobs),
            EntryKind::Workload(w) => match &**w {
                WorkloadEntry::JobRegister { job } => p.fsm.register(*job),
                WorkloadEntry::EvalCreate { job } => p.fsm.create_eval(*job),
                WorkloadEntry::EvalUpdate { eval, status } => p.fsm.update_eval(*eval, *status),
                WorkloadEntry::NodeDrain { node, force_at } => p.fsm.drain(*node, *force_at),
                WorkloadEntry::NodeEligible { node } => p.fsm.mark_eligible(*node, jobs),
                WorkloadEntry::DrainDeadline { node } => {
                    let (out, stops) = p.fsm.force_drain(*node, jobs, &p.killed);
                    let server = p.server_of(*node);
                    for ForcedStop { job, allocs, .. } in stops {
                        let server = server.map_or_else(
                            || client_name(&self.clients, *node),
                            |s| self.servers[s].spec.name.clone(),
                        );
                        p.deadline_stops.push(DeadlineStop {
                            server,
                            at: now,
                            job: jobs[job as usize].name.clone(),
                            allocs,
                        });
                    }
                    out
                }
                WorkloadEntry::SchedulerConfig { pause_eval_broker } => {
                    p.fsm.sched_config = Some(*pause_eval_broker);
                    Applied::default()
                }
                WorkloadEntry::PlanResult(plan) => {
                    let ctx = PlanCtx {
                        jobs,
                        nodes,
                        slots,
                        now,
                    };
                    let out = p.fsm.apply_plan(plan, &ctx);
                    for id in &plan.lost {
                        p.killed.remove(id);
                    }
                    out
                }
            },
            _ => return,
        };
        self.plane_follow(out);
        self.plane_check_drains();
        self.plane_dispatch();
        self.plane_observe();
    }

    /// The leader's broker follows an applied entry (a disabled broker ignores it all).
    fn plane_follow(&mut self, out: Applied) {
        if let Some(at) = out.stops_at {
            self.push_plane(at, PlaneEv::StopsDone);
        }
        if let Some((node, at)) = out.drain_deadline {
            let at = at.max(self.now);
            self.push_plane(at, PlaneEv::DrainDeadline { node });
        }
        let Some(p) = self.plane.as_mut() else { return };
        let b = &mut p.broker;
        for (eval, job) in out.enqueue {
            b.enqueue(eval, job);
        }
        if let Some(eval) = out.ack {
            b.ack(eval);
        }
        if let Some((eval, job)) = out.block {
            b.block_for_capacity(eval, job);
        }
        if out.unblock {
            b.unblock_all();
        }
    }

    /// Migrated allocations have stopped: capacity is free again, and the drainer creates
    /// evaluations for the jobs still running on draining nodes (the next batch).
    fn plane_stops_done(&mut self) {
        self.plane_check_drains();
        let Some((l, _)) = self.plane_leader() else {
            return;
        };
        let now = self.now;
        let Some(p) = self.plane.as_mut() else { return };
        p.broker.unblock_all();
        // Every job still running on a draining node gets an evaluation, even one with an
        // evaluation pending: that one may be scheduled on a snapshot taken before this stop
        // (it then sees the previous batch still stopping and moves nothing), and the drain
        // would wait forever. Nomad's drainer likewise writes the next batch's transition with
        // its own evaluation when the previous batch is done (`nomad/drainer/`); the broker
        // keeps one evaluation per job in flight.
        let jobs: BTreeSet<JobIdx> = p
            .fsm
            .allocs
            .iter()
            .filter(|a| p.fsm.draining.contains(&a.node) && a.runs_at(now))
            .filter(|a| a.state == super::fsm::AllocState::Running)
            .map(|a| a.job)
            .collect();
        for job in jobs {
            self.append_local(
                l,
                EntryKind::Workload(Box::new(WorkloadEntry::EvalCreate { job })),
            );
        }
        self.broadcast(l);
        self.plane_dispatch();
    }

    /// Drains that are done: the node is draining in the state and runs nothing.
    fn plane_check_drains(&mut self) {
        let now = self.now;
        let Some(p) = self.plane.as_ref() else { return };
        let done: Vec<ServerId> = p
            .fsm
            .draining
            .iter()
            .filter(|&&n| p.running_on(n, now) == 0)
            .filter_map(|&n| p.server_of(n))
            .filter(|&s| self.servers[s].drain_done_at == Some(DRAINING))
            .collect();
        for s in done {
            self.servers[s].drain_done_at = Some(now);
            let name = self.servers[s].spec.name.clone();
            self.trace(TraceKind::Fault {
                what: format!("drain of {name} complete"),
            });
        }
        self.plane_check_client_drains();
    }

    /// Drains of client-only nodes that are done (see `plane_check_drains`).
    fn plane_check_client_drains(&mut self) {
        let now = self.now;
        let Some(p) = self.plane.as_ref() else { return };
        let empty: Vec<usize> = p
            .fsm
            .draining
            .iter()
            .filter(|&&n| n < p.clients && p.running_on(n, now) == 0)
            .map(|&n| n as usize)
            .collect();
        for i in empty {
            self.client_drain_done(i);
        }
    }

    /// The leader's drainer (`handleDeadlinedNodes`): every draining node whose deadline has
    /// passed, that is not forced yet and still runs allocations not yet migrating, gets the
    /// entry that marks them all for migration. Appended only; the caller broadcasts (true:
    /// something was appended).
    fn plane_deadlined_nodes(&mut self, l: ServerId) -> bool {
        let now = self.now;
        let Some(p) = self.plane.as_ref() else {
            return false;
        };
        let due: Vec<NodeIdx> = p
            .fsm
            .force_at
            .iter()
            .filter(|&(n, &t)| t <= now && !p.fsm.forced.contains(n))
            .map(|(&n, _)| n)
            .filter(|&n| {
                p.fsm.allocs.iter().any(|a| {
                    a.node == n
                        && a.state == super::fsm::AllocState::Running
                        && !p.killed.contains(&a.id)
                })
            })
            .collect();
        let appended = !due.is_empty();
        for node in due {
            let name = self
                .plane
                .as_ref()
                .and_then(|p| p.server_of(node))
                .map_or_else(
                    || client_name(&self.clients, node),
                    |s| self.servers[s].spec.name.clone(),
                );
            self.trace(TraceKind::Fault {
                what: format!("drain deadline of {name} reached"),
            });
            self.append_local(
                l,
                EntryKind::Workload(Box::new(WorkloadEntry::DrainDeadline { node })),
            );
        }
        appended
    }

    /// `POST /v1/node/:id/drain` with jobs declared: the leader writes the drain strategy,
    /// with its `ForceDeadline` (now plus `deadline_ns`, as `Node.UpdateDrain` computes it
    /// when the request arrives). False if there is no plane (the constant model applies).
    pub(crate) fn plane_drain(
        &mut self,
        s: ServerId,
        l: ServerId,
        deadline_ns: Option<u64>,
    ) -> bool {
        let Some(node) = self.plane.as_ref().and_then(|p| p.node_of(s)) else {
            return false;
        };
        self.servers[s].drain_done_at = Some(DRAINING);
        self.plane_write_drain(node, l, deadline_ns);
        true
    }

    /// The leader writes `Node.UpdateDrain` for `node` (see `plane_drain`).
    pub(crate) fn plane_write_drain(
        &mut self,
        node: NodeIdx,
        l: ServerId,
        deadline_ns: Option<u64>,
    ) {
        let force_at = deadline_ns.map(|d| self.now.plus(d));
        self.append_local(
            l,
            EntryKind::Workload(Box::new(WorkloadEntry::NodeDrain { node, force_at })),
        );
        self.broadcast(l);
    }

    /// The leader writes `Node.UpdateEligibility` (eligible) for `node`; false without a
    /// plane.
    pub(crate) fn plane_mark_eligible(&mut self, node: NodeIdx, l: ServerId) -> bool {
        if self.plane.is_none() {
            return false;
        }
        self.append_local(
            l,
            EntryKind::Workload(Box::new(WorkloadEntry::NodeEligible { node })),
        );
        self.broadcast(l);
        true
    }

    /// Counts `n` allocations lost with a node marked down while its agent was stopped (see
    /// `World::stop_client`).
    pub(crate) fn plane_count_lost(&mut self, n: usize) {
        if let Some(p) = self.plane.as_mut() {
            p.outcome.lost_allocs += n as u64;
        }
    }

    /// Allocations running on client-only node `i` (ground truth), if the plane runs.
    pub(crate) fn plane_allocs_on_client(&self, i: usize) -> Option<usize> {
        let p = self.plane.as_ref()?;
        Some(p.running_on(i as NodeIdx, self.now))
    }

    /// A node's host or agent stopped: what ran on it is killed (ground truth).
    #[inline(never)]
    pub(crate) fn plane_node_gone(&mut self, node: NodeIdx) {
        let now = self.now;
        let Some(p) = self.plane.as_mut() else { return };
        let dead: Vec<u64> = p
            .fsm
            .allocs
            .iter()
            .filter(|a| a.node == node && a.runs_at(now) && !p.killed.contains(&a.id))
            .map(|a| a.id)
            .collect();
        p.outcome.lost_allocs += dead.len() as u64;
        p.killed.extend(dead);
        self.plane_observe();
    }

    /// Server `s` went down: its client's allocations die; the leader marks the node down
    /// after `min_heartbeat_ttl + heartbeat_grace` (the stagger is not drawn).
    #[inline(never)]
    pub(crate) fn plane_server_down(&mut self, s: ServerId) {
        let Some(node) = self.plane.as_ref().and_then(|p| p.node_of(s)) else {
            return;
        };
        self.plane_node_gone(node);
        let c = &self.cfg.clients;
        let d = c.min_heartbeat_ttl_ns + c.heartbeat_grace_ns;
        let inc = self.servers[s].incarnation;
        self.push_plane_in(d, PlaneEv::ServerNodeTtl { server: s, inc });
    }

    /// Server `s` runs again: its client registers (marked ready if it was marked down).
    #[inline(never)]
    pub(crate) fn plane_server_up(&mut self, s: ServerId) {
        let Some(node) = self.plane.as_ref().and_then(|p| p.node_of(s)) else {
            return;
        };
        self.plane_node_back(node, true);
        self.plane_reregister(s);
    }

    /// Server `s`'s client registers again (`Node.Register`) after its agent restarted on
    /// another version: the node's `nomad.version` attribute changed, so the leader creates an
    /// evaluation for every job with allocations on the node and every system job
    /// (`shouldCreateNodeEval` and `createNodeEvals` in hashicorp/nomad
    /// `nomad/node_endpoint.go`). Departure: Nomad's client retries its registration until a
    /// leader answers; here a server-client that comes back while no leader is established
    /// registers when the next leader establishes leadership
    /// (`plane_server_nodes_on_established`).
    fn plane_reregister(&mut self, s: ServerId) {
        let version = self.servers[s].spec.version;
        let Some(p) = self.plane.as_ref() else { return };
        let Some(node) = p.node_of(s) else { return };
        if p.registered_as.get(s).copied().flatten() == Some(version) {
            return;
        }
        let Some((l, _)) = self.plane_leader() else {
            return;
        };
        let mut jobs: BTreeSet<JobIdx> = p
            .fsm
            .allocs
            .iter()
            .filter(|a| a.node == node && a.state == super::fsm::AllocState::Running)
            .map(|a| a.job)
            .collect();
        jobs.extend(
            p.fsm
                .registered
                .iter()
                .copied()
                .filter(|&j| self.cfg.jobs[j as usize].kind == JobType::System),
        );
        if let Some(p) = self.plane.as_mut()
            && let Some(r) = p.registered_as.get_mut(s)
        {
            *r = Some(version);
        }
        for job in &jobs {
            let kind = EntryKind::Workload(Box::new(WorkloadEntry::EvalCreate { job: *job }));
            self.append_local(l, kind);
        }
        if !jobs.is_empty() {
            self.broadcast(l);
        }
    }

    /// Node `node`'s host is back. Allocations killed with it that the state still calls
    /// running are found dead when the client restores them: the leader marks the node down
    /// (they are lost and replaced) and ready again. A node marked down is marked ready (for a
    /// client-only node `clients` writes that). Without a leader, the next one does it.
    #[inline(never)]
    pub(crate) fn plane_node_back(&mut self, node: NodeIdx, mark_ready: bool) {
        let Some(p) = self.plane.as_ref() else { return };
        let stale = p.fsm.allocs.iter().any(|a| {
            a.node == node && a.state == super::fsm::AllocState::Running && p.killed.contains(&a.id)
        });
        let down = p.fsm.down.contains(&node);
        let Some((l, _)) = self.plane_leader() else {
            return;
        };
        if stale && !down {
            self.append_local(l, EntryKind::NodeStatus { node, down: true });
        }
        if (stale && !down) || (down && mark_ready) {
            self.append_local(l, EntryKind::NodeStatus { node, down: false });
            self.broadcast(l);
        }
    }

    fn plane_server_node_ttl(&mut self, s: ServerId, inc: u64) {
        let srv = &self.servers[s];
        // Started since (a later stop arms its own timer), or up.
        if srv.incarnation != inc
            || matches!(srv.proc, ProcessState::Running | ProcessState::Paused)
        {
            return;
        }
        let Some(node) = self.plane.as_ref().and_then(|p| p.node_of(s)) else {
            return;
        };
        let Some((l, _)) = self.plane_leader() else {
            return; // the next leader arms the failover TTL
        };
        if self
            .plane
            .as_ref()
            .is_some_and(|p| !p.fsm.down.contains(&node))
        {
            self.append_local(l, EntryKind::NodeStatus { node, down: true });
            self.broadcast(l);
        }
    }

    /// Desired and live (running, not stopping) allocations of `job` now.
    fn plane_job_counts(&self, p: &Plane, job: JobIdx) -> (u32, u32, u32) {
        let spec = &self.cfg.jobs[job as usize];
        let nodes = p.nodes();
        let desired = if !p.fsm.registered.contains(&job) {
            spec.groups.iter().map(|g| g.count).sum()
        } else if spec.kind == JobType::System {
            let eligible = (0..nodes).filter(|&n| p.fsm.eligible(n)).count() as u32;
            eligible * spec.groups.len() as u32
        } else {
            spec.groups.iter().map(|g| g.count).sum()
        };
        let now = self.now;
        // One pass over the allocations (the plane's observer asks after every event).
        let (mut running, mut live) = (0, 0);
        for a in p
            .fsm
            .allocs
            .iter()
            .filter(|a| a.job == job && a.runs_at(now))
        {
            if !p.killed.contains(&a.id) {
                running += 1;
                live += u32::from(a.state == super::fsm::AllocState::Running);
            }
        }
        (desired, running, live)
    }

    /// Records the backlog peak and, after the procedure's end, the recovery.
    fn plane_observe(&mut self) {
        let leader = self.plane_leader();
        let Some(p) = self.plane.as_ref() else { return };
        let backlog = p.broker.stats().backlog();
        let all_run = (0..self.cfg.jobs.len() as u32).all(|j| {
            let (desired, _, live) = self.plane_job_counts(p, j);
            live >= desired
        });
        let recovered = leader.is_some() && backlog == 0 && all_run;
        let now = self.now;
        let Some(p) = self.plane.as_mut() else { return };
        p.outcome.backlog_peak = p.outcome.backlog_peak.max(backlog);
        p.backlog.record(now.as_nanos(), backlog);
        if let Some(end) = p.end_at
            && recovered
            && p.outcome.time_to_recover_ns.is_none()
        {
            p.outcome.time_to_recover_ns = Some(now.since(end));
        }
    }

    /// Marks the end of the procedure: recovery time counts from here.
    pub fn mark_procedure_end(&mut self) {
        if let Some(p) = self.plane.as_mut() {
            p.end_at = Some(self.now);
            p.outcome.time_to_recover_ns = None;
        }
        self.plane_observe();
    }

    /// Why the workload has not recovered, on the ground truth now, or None if it has (or no
    /// jobs are declared): the leader broker's backlog and each job short of its desired
    /// count, e.g. `eval backlog 7 (web 1/3 running)`.
    pub fn workload_unrecovered(&self) -> Option<String> {
        let p = self.plane.as_ref()?;
        let leader = self.plane_leader();
        let backlog = p.broker.stats().backlog();
        let short: Vec<String> = (0..self.cfg.jobs.len() as u32)
            .filter_map(|j| {
                let (desired, _, live) = self.plane_job_counts(p, j);
                (live < desired).then(|| {
                    let name = &self.cfg.jobs[j as usize].name;
                    format!("{name} {live}/{desired} running")
                })
            })
            .collect();
        if leader.is_some() && backlog == 0 && short.is_empty() {
            return None;
        }
        let jobs = if short.is_empty() {
            "every job runs its desired count".to_string()
        } else {
            short.join(", ")
        };
        Some(match leader {
            Some(_) => format!("eval backlog {backlog} ({jobs})"),
            None => format!("no leader runs the eval broker ({jobs})"),
        })
    }

    /// The workload plane's outcome figures (all zero without jobs).
    pub fn workload_outcome(&self) -> WorkloadOutcome {
        self.plane
            .as_ref()
            .map_or_else(Default::default, |p| p.outcome)
    }

    /// The eval broker's backlog over time (empty without jobs): see [`BacklogSeries`].
    pub fn workload_backlog_series(&self) -> Vec<(u64, u64)> {
        self.plane
            .as_ref()
            .map_or_else(Vec::new, |p| p.backlog.points())
    }

    /// Jobs and the eval broker as an operator reads them through `via` (`GET /v1/jobs` with
    /// each job's summary, and the leader's `nomad.nomad.broker.*` and
    /// `nomad.nomad.blocked_evals.*` gauges): forwarded to the leader, as the other reads.
    pub fn workload_view(&self, via: ServerId) -> Result<Workload, ApiError> {
        let l = self.forwarded(via)?;
        let Some(p) = self.plane.as_ref() else {
            return Ok(Workload::default());
        };
        let jobs = (0..self.cfg.jobs.len() as u32)
            .map(|j| {
                let spec = &self.cfg.jobs[j as usize];
                let (desired, running, live) = self.plane_job_counts(p, j);
                JobState {
                    name: spec.name.as_str().into(),
                    kind: spec.kind,
                    desired,
                    running,
                    queued: desired.saturating_sub(live),
                }
            })
            .collect();
        let broker = if p.leader.map(|x| x.0) == Some(l) && self.plane_leader().is_some() {
            p.broker.stats()
        } else {
            Default::default()
        };
        Ok(Workload { jobs, broker })
    }

    /// Allocations that drain deadlines stopped before the drainer had migrated them, in the
    /// order the deadline entries were applied (empty without jobs).
    pub fn drain_deadline_stops(&self) -> &[DeadlineStop] {
        self.plane.as_ref().map_or(&[], |p| &p.deadline_stops)
    }

    /// Allocations running on server `s`'s client (ground truth), if the plane runs.
    pub(crate) fn plane_allocs_on_server(&self, s: ServerId) -> Option<usize> {
        let p = self.plane.as_ref()?;
        let node = p.node_of(s)?;
        Some(p.running_on(node, self.now))
    }

    /// When the plane's next own deadline falls, if it has work pending (evaluations in the
    /// broker or in flight, stops to wait for): a judge runs the world that far.
    pub fn next_plane_deadline(&self) -> Option<SimTime> {
        let p = self.plane.as_ref()?;
        let busy = p.broker.stats().backlog() > 0 || !p.inflight.is_empty();
        busy.then(|| self.now.plus(self.cfg.plane.dequeue_retry_ns))
    }
}

#[cfg(test)]
mod tests;
