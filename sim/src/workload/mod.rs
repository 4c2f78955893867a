//! The workload plane: jobs, allocations, evaluations, the leader's eval broker and the
//! scheduler workers (hashicorp/nomad `nomad/eval_broker.go`, `nomad/blocked_evals.go`,
//! `nomad/worker.go`, `nomad/plan_apply.go`, `nomad/drainer/`, `scheduler/`).
//!
//! What is modelled:
//! - **Replicated state** (`fsm`): jobs, allocations (node, running/stopping/stopped/lost),
//!   evaluations (pending/blocked/complete/failed), which nodes are down or draining and the
//!   scheduler configuration change only when a Raft entry that carries them is committed
//!   (`EntryKind::Workload`: `JobRegister`, `PlanResult`, `EvalCreate`, `EvalUpdate`, `NodeDrain`,
//!   `DrainDeadline`, `SchedulerConfig`, and the existing `NodeStatus`). The world applies them where it applies
//!   every committed entry, the first time any server applies that index. Every server applies
//!   the same committed log (the safety oracle checks it), so one copy of the applied state
//!   stands for all of them; a server that lags behind is not modelled as reading an older one.
//! - **The eval broker** (`broker`) runs on the leader that established leadership: enabled in
//!   `establishLeadership`, flushed when leadership is lost, refilled from the state by the new
//!   leader (`restoreEvals`: pending evaluations enqueued, blocked ones to the blocked tracker).
//! - **Scheduler workers** (`num_schedulers` per server, `nomad/worker.go`): a worker on a
//!   running server that reaches the leader dequeues an evaluation, takes the scheduling time,
//!   and submits its plan (`sched`) to the leader, which appends it as one Raft entry; when it
//!   is committed the allocations are placed and stopped and the evaluation is acknowledged
//!   (or blocked for capacity). A plan that reaches a server no longer the broker's leader is
//!   refused; its evaluation comes back through the next leader's restore.
//! - **Evaluations** come from job registration (the first established leader registers the
//!   declared jobs through Raft, so the world boots with them placed), node status changes
//!   (`NodeStatus` down or ready: evaluations for every job with allocations on the node, as
//!   `Node.UpdateStatus` creates them in the same Raft transaction), drains (`NodeDrain`),
//!   capacity freed for blocked evaluations, and a server-client whose agent restarted on
//!   another version registering again (its `nomad.version` attribute changed:
//!   `shouldCreateNodeEval` in `nomad/node_endpoint.go`).
//! - **Workers per version** (`num_schedulers_by_version`): a server running a listed version
//!   runs that many workers, as the configuration shipped with its binary sets; 0 disables
//!   scheduling there (hashicorp/nomad#15858, #16877 show backlogs after upgrades).
//! - **Drains** of server-clients when jobs are declared: the node turns ineligible, the
//!   scheduler migrates at most `migrate.max_parallel` allocations of a group at once (each
//!   replacement placed elsewhere, the old allocation running on for its `kill_timeout`); when
//!   a batch has stopped the leader's drainer creates evaluations for the next, and the drain
//!   is complete when the node runs nothing.
//! - **Drain deadlines** (`nomad node drain -deadline`, docs `commands/node/drain`; the
//!   procedure's drains carry `[upgrade.drain] deadline`): `NodeDrain` carries the strategy's
//!   `ForceDeadline` (the request's time plus the deadline, as `Node.UpdateDrain` sets it).
//!   When it passes, the leader's drainer (`nomad/drainer/drainer.go`
//!   `handleDeadlinedNodes`; a new leader does it on establishing leadership if the time has
//!   passed) appends `DrainDeadline`: every allocation left on the node is marked for
//!   migration together, and the scheduler stops them all at once, ignoring
//!   `migrate.max_parallel`. The service and batch allocations that were still running, not
//!   yet migrating, are recorded (`World::drain_deadline_stops`): they were stopped together,
//!   not moved one batch at a time, and the rehearsal judges them as lost allocations.
//! - **Lost allocations**: a server-client stopped or crashed, or a client-only node gone,
//!   kills what runs on it (counted in `WorkloadOutcome::lost_allocs`); the leader marks the
//!   node down (client-only nodes by their heartbeat timers, see `clients`; a server-client
//!   after `min_heartbeat_ttl + heartbeat_grace`) and the node-update evaluation replaces them.
//!
//! Departures, and why: plan results and the evaluation's completion are one entry (Nomad
//! writes `ApplyPlanResultsRequest` and then `EvalUpdateRequest`; between them nothing here
//! reads the state); a plan is checked against the state when applied, and placements that no
//! longer fit are dropped and the evaluation blocked (Nomad's plan applier rejects them and
//! the worker plans again); the drainer's next batch waits for the previous batch's old
//! allocations to stop instead of the replacements' `min_healthy_time`; replacements run as
//! soon as their plan is applied (no task start-up), so the gap a drain deadline opens shows
//! as the allocations it stopped, not as time with fewer running; deployments are not
//! modelled; batch jobs run until the end of the run; a server-client's
//! missed heartbeats are not drawn (no stagger). Scheduling is deterministic (no random
//! draws), so the plane needs no random stream.
//!
//! Timing: the plane's timers (a worker's scheduling time, nack timers, a worker's dequeue
//! retry, the end of a migrated allocation's kill timeout, a drain's deadline, a stopped
//! server-client's heartbeat TTL) are ordinary events on the world's queue. The quiet-period elision (`steady`) ends
//! every closed-form round before the next queued event, so it never runs past one of them;
//! with no evaluation pending and nothing stopping the plane queues nothing (the nack timer of
//! an evaluation acknowledged since still fires once, and does nothing).
//!
//! Reads: `World::workload_view` (jobs with desired, running and queued counts; the broker's
//! counters from the current leader, zeros from a server that is not the broker's leader) and
//! `World::workload_outcome` (backlog peak, time to recover after `mark_procedure_end`,
//! allocations lost with their node, faults included).
//!
//! With no jobs declared the plane does nothing at all: no entries, no events, no trace lines,
//! and the constant-allocations drain model of `clients` applies. A drained node stays
//! ineligible (Nomad leaves it so until `node eligibility -enable`): a client-only node the
//! procedure upgrades in batches is marked eligible again (`NodeEligible`) once it is back.

pub mod broker;
pub mod fsm;
mod plane;
pub mod sched;

pub(crate) use plane::DRAINING;
pub use plane::{BACKLOG_POINTS_MAX, BacklogSeries, DeadlineStop, Plane, PlaneEv, WorkloadOutcome};

use rehearse_model::api::JobType;
use rehearse_model::time::{MS, SEC};
use rehearse_model::versions::Version;
use serde::{Deserialize, Serialize};

/// Most jobs a world may declare.
pub const MAX_JOBS: usize = 1_000;
/// Most task groups one job may declare.
pub const MAX_GROUPS: usize = 100;
/// Most allocations one group may want.
pub const MAX_COUNT: u32 = 10_000;

/// A job the simulated cluster runs (the simulator's side of a plan's `[[jobs]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Job ID.
    pub name: String,
    /// Scheduler type.
    pub kind: JobType,
    /// Task groups.
    pub groups: Vec<GroupSpec>,
}

/// One task group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// Group name.
    pub name: String,
    /// Allocations wanted (ignored for system jobs: one per eligible node).
    pub count: u32,
    /// How long an allocation keeps running once told to stop (`kill_timeout` plus
    /// `shutdown_delay`; Nomad's default `kill_timeout` is 5 s, `jobspec` docs).
    pub kill_timeout_ns: u64,
    /// `migrate.max_parallel` when the group sets a `migrate` block (Nomad's default is 1,
    /// docs `job-specification/migrate`).
    pub migrate_max_parallel: Option<u32>,
}

impl GroupSpec {
    /// Allocations of the group a drain moves at once.
    pub fn max_parallel(&self) -> u32 {
        self.migrate_max_parallel.unwrap_or(1).max(1)
    }
}

/// Every parameter of the workload plane, with Nomad's default and its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadPlaneConfig {
    /// Scheduler workers per server (`server.num_schedulers`; Nomad's default is the number of
    /// CPU cores, docs `configuration/server#num_schedulers`). 2 here: a small server.
    pub num_schedulers: u32,
    /// `server.eval_nack_timeout` (60 s, docs `configuration/server`): an evaluation not
    /// acknowledged this long after its delivery is nacked.
    pub eval_nack_timeout_ns: u64,
    /// `server.eval_delivery_limit` (3, docs `configuration/server`): deliveries before an
    /// evaluation fails.
    pub eval_delivery_limit: u32,
    /// Time a worker spends on one evaluation before it submits its plan. An assumption (not a
    /// Nomad setting): a few milliseconds for a small cluster.
    pub sched_base_ns: u64,
    /// Added scheduling time per placement (an assumption, as `sched_base_ns`).
    pub sched_per_placement_ns: u64,
    /// Allocation slots per client node (an assumption standing in for CPU/memory
    /// resources: an allocation takes one slot).
    pub slots_per_node: u32,
    /// How long a worker waits before it asks the leader again when its dequeue failed (the
    /// worker's `dequeueTimeout`, 500 ms, `nomad/worker.go`).
    pub dequeue_retry_ns: u64,
    /// Scheduler workers on a server running a given version, when the configuration that
    /// ships with that binary sets another `num_schedulers` (versions not listed run
    /// `num_schedulers`). 0 disables scheduling on that server (docs
    /// `configuration/server#num_schedulers`): a new configuration file that sets it so on
    /// every server leaves nobody to dequeue once the roll is done, and evaluations pile up in
    /// the leader's broker (hashicorp/nomad#15858, #16877 are such backlogs after upgrades).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub num_schedulers_by_version: Vec<(Version, u32)>,
}

impl Default for WorkloadPlaneConfig {
    fn default() -> Self {
        WorkloadPlaneConfig {
            num_schedulers: 2,
            eval_nack_timeout_ns: 60 * SEC,
            eval_delivery_limit: 3,
            sched_base_ns: 5 * MS,
            sched_per_placement_ns: MS,
            slots_per_node: 8,
            dequeue_retry_ns: 500 * MS,
            num_schedulers_by_version: Vec::new(),
        }
    }
}

impl WorkloadPlaneConfig {
    /// Scheduler workers on a server running `version`.
    pub fn workers_on(&self, version: Version) -> u32 {
        self.num_schedulers_by_version
            .iter()
            .find(|(v, _)| *v == version)
            .map_or(self.num_schedulers, |&(_, n)| n)
    }

    /// Whether every field is the default (then it is left out of serialized configurations).
    pub fn is_default(&self) -> bool {
        *self == WorkloadPlaneConfig::default()
    }

    /// Bad values, named by field.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_schedulers > 64 {
            return Err("plane.num_schedulers must be at most 64".into());
        }
        if let Some((v, _)) = self.num_schedulers_by_version.iter().find(|(_, n)| *n > 64) {
            return Err(format!(
                "plane.num_schedulers_by_version: {v}: must be at most 64"
            ));
        }
        if self.eval_delivery_limit == 0 {
            return Err("plane.eval_delivery_limit must be at least 1".into());
        }
        if self.eval_nack_timeout_ns == 0 || self.dequeue_retry_ns == 0 {
            return Err("plane.eval_nack_timeout and plane.dequeue_retry must be positive".into());
        }
        if self.slots_per_node == 0 || self.slots_per_node > MAX_COUNT {
            return Err(format!("plane.slots_per_node must be in 1..={MAX_COUNT}"));
        }
        Ok(())
    }
}

/// Bad job declarations, named by `jobs[i]` field.
pub fn validate_jobs(jobs: &[JobSpec]) -> Result<(), String> {
    if jobs.len() > MAX_JOBS {
        return Err(format!("jobs: at most {MAX_JOBS}"));
    }
    for (i, j) in jobs.iter().enumerate() {
        if j.groups.is_empty() || j.groups.len() > MAX_GROUPS {
            return Err(format!("jobs[{i}].groups: 1 to {MAX_GROUPS} groups"));
        }
        if let Some(g) = j.groups.iter().position(|g| g.count > MAX_COUNT) {
            return Err(format!("jobs[{i}].groups[{g}].count: at most {MAX_COUNT}"));
        }
    }
    Ok(())
}
