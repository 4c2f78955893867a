//! The upgrade procedure as one pure state machine: `Observation` in, `Action` out.
//!
//! No I/O and no clock: time arrives only as `Observation::now_ms`. The same machine runs
//! against the simulator (`crate::rehearsal`) and, through the live drivers, a real cluster.
//!
//! The runbook it encodes (Nomad's upgrade guide): preflight (leader known, members alive, all
//! peers voters, autopilot healthy with failure tolerance ≥ 1, scheduler configuration
//! recorded), a verified snapshot, then followers one at a time and the leader last (after a
//! leadership transfer when asked and available): drain if also a client, stop, replace the
//! binary, start, gate; then verify (every server on the target, healthy voters, the scheduler
//! configuration unchanged and, on Nomad, every job's allocations back and the eval broker
//! drained: see `workload`) and upgrade clients. It never stops a server unless the others
//! form a healthy quorum of voters.
//!
//! The gate and the stale-health trap: right after a restart autopilot can still report the
//! health it computed *before* the restart (refresh every 2 s), and a restart shorter than the
//! refresh may never be seen at all, so `StableSince` alone cannot prove freshness. The gate
//! therefore anchors freshness on the restarted server's *own* answer (`/v1/agent/self`: it
//! runs the target version and its log reaches the leader's index recorded before the stop);
//! only health observed from then on counts, continuously for `stable_for` (≥ 10 s, several
//! refresh intervals), and the server must be a voter again.

mod clients;
pub mod config;
pub mod derived;
mod gate;
mod workload;

pub use config::{
    ClientBatchConfig, GateConfig, ProcedureConfig, ServerRef, Variant, VerifyConfig,
};

use crate::plan::{Order, Rollback};
use clients::ClientStep;
use gate::GateState;
use rehearse_model::api::{NodeStatus, SchedulerConfig, SerfStatus, SnapshotInfo, Workload};
pub use rehearse_model::contract::{
    Action, ActionResult, ClusterView, HaltReason, Observation, Phase, Readout, Reads, StepInfo,
    Summary,
};
use rehearse_model::versions::Version;

/// A gate the procedure is waiting at (see [`Procedure::gate_wait`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateWait {
    /// The restarted servers the gate is for.
    pub servers: Vec<String>,
    /// Time since their start, on the observations' clock.
    pub waited_ms: u64,
    /// How long the gate may wait before the procedure halts (`upgrade.gate.timeout`).
    pub timeout_ms: u64,
    /// The conditions unmet at the last observation, in the gate's order.
    pub unmet: Vec<String>,
}

impl std::fmt::Display for GateWait {
    /// `gate for s2: waiting 12s of at most 120s: s2 not a voter yet; healthy continuously for
    /// 3s of 10s`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "gate for {}: waiting {}s of at most {}s: {}",
            self.servers.join(","),
            self.waited_ms / 1000,
            self.timeout_ms / 1000,
            self.unmet.join("; ")
        )
    }
}

/// Most observations one run may take before halting (a bound on every loop).
pub const OBSERVATIONS_MAX: u64 = 200_000;
/// How long the client check after `UpgradeClients` waits for every `ready` node to run the
/// target: a node whose host is gone shows `ready` until the leader's heartbeat timer for it
/// fires, which after a leader election is `failover_heartbeat_ttl` (5 min) plus at most one
/// TTL and the grace (10–20 s + 10 s with up to 500 nodes).
pub const CLIENT_CHECK_TIMEOUT_MS: u64 = 6 * 60 * 1000;

#[derive(Debug, Clone)]
enum Stage {
    Preflight {
        since_ms: Option<u64>,
    },
    Snapshot,
    Choose {
        since_ms: Option<u64>,
    },
    Transfer {
        from: String,
        since_ms: u64,
    },
    Drain {
        since_ms: Option<u64>,
    },
    SafeToStop {
        since_ms: u64,
    },
    Stop {
        next: usize,
    },
    Replace {
        next: usize,
    },
    Start {
        next: usize,
    },
    Gate(GateState),
    Verify {
        since_ms: u64,
    },
    Clients {
        since_ms: Option<u64>,
    },
    /// The client-only nodes in batches (`[upgrade.clients]`, see `clients`).
    ClientBatch(ClientStep),
    Rollback,
    Restore,
    /// Upgrading a server autopilot removed while it still ran the old version (see
    /// `fence_candidate`), then back to `resume`.
    Fence {
        server: Vec<String>,
        step: FenceStep,
        resume: Box<Stage>,
    },
    Finished,
}

/// The fence's action in flight: the drain of its client (if it is one) and the wait for its
/// allocations to stop, then its stop, its binary and its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FenceStep {
    Drain,
    DrainWait { since_ms: u64 },
    Stop,
    Replace,
    Start,
}

/// The upgrade state machine.
#[derive(Debug, Clone)]
pub struct Procedure {
    cfg: ProcedureConfig,
    stage: Stage,
    steps: u64,
    snapshot: Option<SnapshotInfo>,
    scheduler: Option<SchedulerConfig>,
    /// Jobs already short at the preflight (the verification requires only that they got no
    /// worse).
    baseline: workload::Baseline,
    preflight_tolerance: i64,
    done: Vec<String>,
    batch: Vec<String>,
    batch_index: usize,
    batch_was_leader: bool,
    leader_index_at_stop: u64,
    pass_version: Version,
    rolling_back: bool,
    notes: Vec<String>,
    last_leader_last: bool,
    rollback_cause: Option<HaltReason>,
    /// The previous observation's time: every wait the procedure measures assumes a clock
    /// that never goes backwards.
    last_now_ms: u64,
    /// Client-only nodes still to upgrade in batches, in order.
    client_queue: Vec<String>,
    /// The client batch under way.
    client_batch: Vec<String>,
    /// Client-only nodes upgraded in batches, in order.
    clients_done: Vec<String>,
}

impl Procedure {
    /// A procedure at its first step.
    pub fn new(cfg: ProcedureConfig) -> Self {
        let pass_version = cfg.target_version;
        let done = cfg
            .servers
            .iter()
            .filter(|s| cfg.already_upgraded.contains(&s.name))
            .map(|s| s.name.clone())
            .collect();
        Procedure {
            cfg,
            stage: Stage::Preflight { since_ms: None },
            steps: 0,
            snapshot: None,
            scheduler: None,
            baseline: workload::Baseline::default(),
            preflight_tolerance: 1,
            done,
            batch: Vec::new(),
            batch_index: 0,
            batch_was_leader: false,
            leader_index_at_stop: 0,
            pass_version,
            rolling_back: false,
            notes: Vec::new(),
            last_leader_last: false,
            rollback_cause: None,
            last_now_ms: 0,
            client_queue: Vec::new(),
            client_batch: Vec::new(),
            clients_done: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProcedureConfig {
        &self.cfg
    }

    /// Where the procedure is now.
    pub fn step_info(&self) -> StepInfo {
        let phase = self.phase();
        StepInfo {
            phase,
            servers: self.step_servers().to_vec(),
            batch: Self::in_batch(phase).then_some(self.batch_index),
        }
    }

    /// `step_info().servers` without the copy: the servers the current step concerns (the
    /// batch, none outside one). The rehearsal hands them to its hooks at every step.
    pub fn step_servers(&self) -> &[String] {
        if let Stage::Fence { server, .. } = &self.stage {
            return server;
        }
        if Self::in_batch(self.phase()) {
            &self.batch
        } else {
            &[]
        }
    }

    fn in_batch(phase: Phase) -> bool {
        !matches!(phase, Phase::Preflight | Phase::Snapshot | Phase::Verify)
    }

    fn phase(&self) -> Phase {
        match &self.stage {
            Stage::Preflight { .. } => Phase::Preflight,
            Stage::Snapshot => Phase::Snapshot,
            Stage::Choose { .. } | Stage::SafeToStop { .. } => Phase::SafeToStop,
            Stage::Transfer { .. } => Phase::Transfer,
            Stage::Drain { .. } => Phase::Drain,
            Stage::Stop { .. } => Phase::Stop,
            Stage::Replace { .. } => Phase::Replace,
            Stage::Start { .. } => Phase::Start,
            Stage::Gate(_) => Phase::Gate,
            Stage::Verify { .. } => Phase::Verify,
            Stage::Clients { .. } | Stage::ClientBatch(_) => Phase::Clients,
            Stage::Rollback | Stage::Restore => Phase::Rollback,
            Stage::Fence { step, .. } => match step {
                FenceStep::Drain | FenceStep::DrainWait { .. } => Phase::Drain,
                FenceStep::Stop => Phase::Stop,
                FenceStep::Replace => Phase::Replace,
                FenceStep::Start => Phase::Start,
            },
            Stage::Finished => Phase::Done,
        }
    }

    /// The gate in progress, if the procedure is waiting at one: its servers, how long it has
    /// waited and may wait (on the observations' clock) and the conditions still unmet at the
    /// last observation. The live executor prints it while it waits.
    pub fn gate_wait(&self) -> Option<GateWait> {
        let Stage::Gate(g) = &self.stage else {
            return None;
        };
        if g.pending.is_empty() {
            return None;
        }
        Some(GateWait {
            servers: self.batch.clone(),
            waited_ms: g.seen_ms.saturating_sub(g.restarted_at_ms),
            timeout_ms: self.cfg.gate.timeout_ms,
            unmet: g.pending.clone(),
        })
    }

    /// Whether the procedure is rolling back (a `ReplaceBinary` now installs the old version).
    pub fn is_rolling_back(&self) -> bool {
        self.rolling_back
    }

    /// Servers upgraded so far, in order.
    pub fn upgraded(&self) -> &[String] {
        &self.done
    }

    /// What the next call of `next` reads (see `Reads`).
    pub fn reads(&self) -> Reads {
        // Between the batch's first stop and its last start nothing reads the view: the stops
        // were judged safe together (`safe_to_stop`), and a start past the last one opens the
        // gate, which reads.
        let between = match &self.stage {
            Stage::Stop { .. } | Stage::Replace { .. } => true,
            Stage::Start { next } => *next < self.batch.len(),
            // The fence's steps act on a server outside the Raft configuration; the stage it
            // resumes reads at the observation after its start. Only its drain reads.
            Stage::Fence { step, .. } => !matches!(step, FenceStep::DrainWait { .. }),
            _ => false,
        };
        Reads {
            cluster: !between,
            nodes: matches!(self.stage, Stage::Clients { .. } | Stage::ClientBatch(_)),
            allocs: matches!(
                self.stage,
                Stage::Drain { .. }
                    | Stage::Fence {
                        step: FenceStep::DrainWait { .. },
                        ..
                    }
                    | Stage::ClientBatch(ClientStep::DrainWait { .. })
            ),
            // The preflight records the jobs already short; the verification checks them. The
            // last batch's gate reads them too: the observation that passes it begins the
            // verification.
            workload: match self.stage {
                Stage::Preflight { .. }
                | Stage::Verify { .. }
                | Stage::ClientBatch(ClientStep::Settle { .. }) => true,
                Stage::Gate(_) => self.last_batch(),
                _ => false,
            },
        }
    }

    /// Whether the batch under way is the last one: every server is done or in it.
    fn last_batch(&self) -> bool {
        self.cfg
            .servers
            .iter()
            .all(|s| self.done.contains(&s.name) || self.batch.contains(&s.name))
    }

    /// Takes the next observation and returns the next action. When autopilot health is
    /// unavailable (HTTP 500 while a server runs raft protocol 2) and the procedure reads it,
    /// health derived from the raft configuration and each server's own stats stands in for
    /// it (see `derived`), so a raft protocol 2 → 3 roll is checked as closely as any other.
    pub fn next(&mut self, obs: &Observation) -> Action {
        if self.cfg.gate.use_autopilot
            && derived::unavailable(&obs.view.health)
            && let Some(h) = derived::health(&obs.view, self.cfg.max_trailing_logs)
        {
            self.note("autopilot health unavailable (raft protocol 2): health derived from the raft configuration and each server's own stats");
            let mut o = obs.clone();
            o.view.health = Ok(h);
            return self.next_observed(&o);
        }
        self.next_observed(obs)
    }

    fn next_observed(&mut self, obs: &Observation) -> Action {
        self.steps += 1;
        if self.steps > OBSERVATIONS_MAX {
            return self.halt(HaltReason::TooManySteps);
        }
        if obs.now_ms < self.last_now_ms {
            // A driver bug, not the cluster's doing: every deadline and stability window
            // would be wrong from here on, so stop before acting on one.
            return self.halt(HaltReason::ClockWentBack {
                from_ms: self.last_now_ms,
                to_ms: obs.now_ms,
            });
        }
        self.last_now_ms = obs.now_ms;
        if let ActionResult::Failed(e) = &obs.result {
            let action = format!("{:?}", self.step_info().phase);
            return self.halt(HaltReason::ActionFailed {
                action,
                error: e.clone(),
            });
        }
        if matches!(self.stage, Stage::Fence { .. }) {
            return self.fence_next(obs);
        }
        if let Some(server) = self.fence_candidate(obs) {
            return self.begin_fence(server, obs);
        }
        let stage = match &self.stage {
            // The gate updates its state in place (see `gate`): no copy of it per poll.
            Stage::Gate(_) => return self.gate(obs),
            s => s.clone(),
        };
        match stage {
            Stage::Preflight { since_ms } => self.preflight(obs, since_ms),
            Stage::Snapshot => self.after_snapshot(obs),
            Stage::Choose { since_ms } => self.choose(obs, since_ms),
            Stage::Transfer { from, since_ms } => self.transfer(obs, &from, since_ms),
            Stage::Drain { since_ms } => self.drain(obs, since_ms),
            Stage::SafeToStop { since_ms } => self.safe_to_stop(obs, since_ms),
            Stage::Stop { next } => self.stop(obs, next),
            Stage::Replace { next } => self.replace(next),
            Stage::Start { next } => self.start(obs, next),
            Stage::Gate(_) => self.gate(obs),
            Stage::Verify { since_ms } => self.verify(obs, since_ms),
            Stage::Clients { since_ms } => self.check_clients(obs, since_ms),
            Stage::ClientBatch(step) => self.client_step(obs, step),
            Stage::Rollback => self.rollback_next(obs),
            Stage::Restore => self.restored(),
            Stage::Fence { .. } => self.fence_next(obs),
            Stage::Finished => Action::Observe { wait_ms: 0 },
        }
    }

    fn poll(&self) -> Action {
        Action::Observe {
            wait_ms: self.cfg.gate.poll_ms,
        }
    }

    fn timed_out(&self, obs: &Observation, since_ms: u64) -> bool {
        obs.now_ms.saturating_sub(since_ms) > self.cfg.gate.timeout_ms
    }

    /// Notes gathered so far (e.g. a skipped transfer or a refused rollback).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn halt(&mut self, reason: HaltReason) -> Action {
        let changed = !self.done.is_empty() || !self.batch.is_empty();
        // In the client phase the servers stay: clients on the target must not run against
        // older servers (see `clients`).
        let in_client_batches = matches!(self.stage, Stage::ClientBatch(_));
        let wants_rollback = self.cfg.rollback == Rollback::ReinstallAndRestore
            && changed
            && !self.rolling_back
            && !in_client_batches
            && !matches!(reason, HaltReason::UnsafeToStop { .. });
        if wants_rollback && self.cfg.in_place_rollback_safe {
            return self.begin_rollback(reason);
        }
        if wants_rollback {
            // The old binary could panic on entries (or refuse a snapshot) the new version has
            // written: rolling back means re-provisioning, which is the operator's call.
            self.note("in-place rollback refused: the target writes entries or snapshots the old version cannot read; re-provision the old version and restore the pre-upgrade snapshot");
        }
        self.stage = Stage::Finished;
        Action::Halt(reason)
    }

    // ---- preflight and snapshot ----

    fn preflight(&mut self, obs: &Observation, since_ms: Option<u64>) -> Action {
        let since = since_ms.unwrap_or(obs.now_ms);
        let mut unmet = self.preflight_unmet(&obs.view);
        match self.workload_baseline(&obs.view.workload) {
            Ok(w) => unmet.extend(w),
            Err(why) => return self.unreadable(workload::WHAT, "the preflight baseline", &why),
        }
        if unmet.is_empty() {
            if let Some(Ok(s)) = &obs.view.scheduler {
                self.scheduler = Some(s.clone());
            }
            if let Readout::Read(Ok(w)) = &obs.view.workload {
                self.record_baseline(w);
            }
            if let Ok(h) = &obs.view.health {
                self.preflight_tolerance = h.failure_tolerance.clamp(0, 1);
            }
            if self.cfg.snapshot_first {
                self.stage = Stage::Snapshot;
                return Action::SaveSnapshot;
            }
            return self.choose(obs, None);
        }
        if self.timed_out(obs, since) {
            return self.halt(HaltReason::PreflightFailed { unmet });
        }
        self.stage = Stage::Preflight {
            since_ms: Some(since),
        };
        self.poll()
    }

    /// The preflight conditions `v` does not meet (empty: the upgrade may begin).
    pub fn preflight_unmet(&self, v: &ClusterView) -> Vec<String> {
        let mut unmet = Vec::new();
        if v.leader.is_none() {
            unmet.push("no leader".to_string());
        }
        match &v.members {
            Ok(m) => {
                for s in &self.cfg.servers {
                    let alive = m
                        .iter()
                        .any(|x| base(&x.name) == s.name && x.status == SerfStatus::Alive);
                    if !alive {
                        unmet.push(format!("{} not alive in members", s.name));
                    }
                }
            }
            Err(e) => unmet.push(format!("members: {e}")),
        }
        match &v.raft {
            Ok(r) => {
                for s in &self.cfg.servers {
                    if !r.servers.iter().any(|x| base(&x.node) == s.name && x.voter) {
                        unmet.push(format!("{} is not a voter", s.name));
                    }
                }
            }
            Err(e) => unmet.push(format!("raft configuration: {e}")),
        }
        let min_ft = if self.cfg.allow_zero_tolerance { 0 } else { 1 };
        match &v.health {
            _ if !self.cfg.gate.use_autopilot => {}
            Ok(h) if h.healthy && h.failure_tolerance >= min_ft => {}
            Ok(h) => unmet.push(format!(
                "autopilot healthy={} failure_tolerance={} (need >= {min_ft})",
                h.healthy, h.failure_tolerance
            )),
            Err(e) => unmet.push(format!("autopilot health: {e}")),
        }
        unmet
    }

    /// The preflight's workload conditions: the read must answer, and the eval backlog must
    /// already be within the bound the verification will require (else the upgrade could never
    /// be verified: better to stop before any server is touched). Short jobs are recorded, not
    /// required (`record_baseline`). `Err`: the driver cannot read the workload.
    fn workload_baseline(&self, r: &Readout<Workload>) -> Result<Vec<String>, String> {
        let max = self.cfg.verify.max_eval_backlog;
        match r {
            Readout::Read(Ok(w)) => Ok(workload::backlog_unmet(&w.broker, max)
                .map(|u| format!("{u} before the upgrade"))
                .into_iter()
                .collect()),
            other => workload::unmet(other, &workload::Baseline::default(), max),
        }
    }

    /// The preflight's workload half on `v`, as a dry run shows it: the conditions unmet (the
    /// backlog above the bound, a read that failed or cannot be made) and the jobs already
    /// short (noted, not required).
    pub fn preflight_workload(&self, v: &ClusterView) -> (Vec<String>, Vec<String>) {
        let unmet = self
            .workload_baseline(&v.workload)
            .unwrap_or_else(|why| vec![format!("cannot read {}: {why}", workload::WHAT)]);
        let short = match &v.workload {
            Readout::Read(Ok(w)) => w.short_jobs(),
            _ => Vec::new(),
        };
        (unmet, short)
    }

    /// Records the jobs short before the upgrade and names them in a note.
    fn record_baseline(&mut self, w: &Workload) {
        self.baseline = workload::Baseline::of(w);
        let short = w.short_jobs();
        if !short.is_empty() {
            self.note(&format!(
                "jobs already short before the upgrade (not the upgrade's doing; the verification requires they get no worse): {}",
                short.join(", ")
            ));
        }
    }

    fn after_snapshot(&mut self, obs: &Observation) -> Action {
        match &obs.result {
            ActionResult::Snapshot(s) if s.index > 0 && !s.digest.is_empty() => {
                self.snapshot = Some(s.clone());
                self.choose(obs, None)
            }
            other => self.halt(HaltReason::PreflightFailed {
                unmet: vec![format!("snapshot not saved or not verifiable: {other:?}")],
            }),
        }
    }

    // ---- choosing the next batch ----

    fn remaining(&self) -> Vec<String> {
        let done = &self.done;
        let names = self.cfg.servers.iter().map(|s| s.name.clone());
        names.filter(|n| !done.contains(n)).collect()
    }

    fn choose(&mut self, obs: &Observation, since_ms: Option<u64>) -> Action {
        let remaining = self.remaining();
        if remaining.is_empty() {
            return self.begin_verify(obs);
        }
        let Some(leader) = obs.view.leader.as_deref().map(str::to_string) else {
            let since = since_ms.unwrap_or(obs.now_ms);
            if self.timed_out(obs, since) {
                return self.halt(HaltReason::PreflightFailed {
                    unmet: vec!["no leader to plan the next step".into()],
                });
            }
            self.stage = Stage::Choose {
                since_ms: Some(since),
            };
            return self.poll();
        };
        let leader_pending = remaining.contains(&leader);
        let batch = self.pick(&remaining, &leader);
        let takes_leader = batch.contains(&leader);
        if takes_leader
            && self.cfg.order == Order::FollowersThenLeader
            && self.cfg.transfer_leadership
        {
            if self.cfg.transfer_available {
                self.stage = Stage::Transfer {
                    from: leader.clone(),
                    since_ms: obs.now_ms,
                };
                return Action::TransferLeadership { from: leader };
            }
            self.note("leadership transfer skipped: the running version has no transfer API");
        }
        self.start_batch(batch, takes_leader && leader_pending, obs)
    }

    fn pick(&self, remaining: &[String], leader: &str) -> Vec<String> {
        let n = self.cfg.parallel.max(1);
        let mut order: Vec<String> = match self.cfg.order {
            Order::AsListed => remaining.to_vec(),
            Order::LeaderFirst => {
                let mut v: Vec<String> =
                    remaining.iter().filter(|s| *s == leader).cloned().collect();
                v.extend(remaining.iter().filter(|s| *s != leader).cloned());
                v
            }
            Order::FollowersThenLeader => {
                let mut v: Vec<String> =
                    remaining.iter().filter(|s| *s != leader).cloned().collect();
                v.extend(remaining.iter().filter(|s| *s == leader).cloned());
                v
            }
        };
        order.truncate(n);
        order
    }

    fn note(&mut self, text: &str) {
        if !self.notes.iter().any(|n| n == text) {
            self.notes.push(text.to_string());
        }
    }

    fn transfer(&mut self, obs: &Observation, from: &str, since_ms: u64) -> Action {
        match &obs.view.leader {
            // Moved: the old leader (the last server) is upgraded now, as the leader's step.
            Some(l) if l != from => self.start_batch(vec![from.to_string()], true, obs),
            _ if self.timed_out(obs, since_ms) => {
                self.note("leadership transfer did not complete; upgrading the leader in place");
                let batch = vec![from.to_string()];
                self.start_batch(batch, true, obs)
            }
            _ => self.poll(),
        }
    }

    fn start_batch(&mut self, batch: Vec<String>, was_leader: bool, obs: &Observation) -> Action {
        self.batch = batch;
        self.batch_was_leader = was_leader;
        let needs_drain = self.cfg.drain_deadline_ms.is_some()
            && !self.rolling_back
            && self.batch.iter().any(|s| self.is_client(s));
        if needs_drain {
            self.stage = Stage::Drain { since_ms: None };
            let server = self.batch.iter().find(|s| self.is_client(s)).cloned();
            if let Some(server) = server {
                return Action::Drain { server };
            }
        }
        self.safe_to_stop(obs, obs.now_ms)
    }

    fn is_client(&self, name: &str) -> bool {
        self.cfg
            .servers
            .iter()
            .any(|s| s.name == name && s.also_client)
    }

    fn drain(&mut self, obs: &Observation, since_ms: Option<u64>) -> Action {
        let since = since_ms.unwrap_or(obs.now_ms);
        let clients: Vec<String> = self
            .batch
            .iter()
            .filter(|s| self.is_client(s))
            .cloned()
            .collect();
        // A drain reports complete before allocations with a kill_timeout have stopped
        // (hashicorp/nomad#14293): wait for them too. An unreadable list counts as running;
        // one the driver cannot read at all halts (never stop on a guess).
        let running = match &obs.view.allocs_running {
            _ if !self.cfg.drain_waits_for_allocs || clients.is_empty() => &[][..],
            Readout::Read(Ok(r)) => r.as_slice(),
            Readout::NotApplicable => &[][..],
            Readout::Read(Err(_)) => return self.drain_wait(obs, since, &clients),
            Readout::NotRead => return self.unreadable("allocations", "the drain", "not read"),
            Readout::Unavailable { why } => {
                let why = why.clone();
                return self.unreadable("allocations", "the drain", &why);
            }
        };
        let stopped = |s: &String| !running.iter().any(|r| r == s);
        let drained = clients
            .iter()
            .all(|s| obs.view.drained.iter().any(|d| d == s));
        if drained && clients.iter().all(stopped) {
            return self.safe_to_stop(obs, obs.now_ms);
        }
        if drained {
            let names = clients.join(",");
            self.note(&format!(
                "{names}: the drain reported complete while allocations still ran; waiting for them to stop (hashicorp/nomad#14293)"
            ));
        }
        self.drain_wait(obs, since, &clients)
    }

    /// Halts: a check needs something the driver cannot read.
    fn unreadable(&mut self, what: &str, needed_by: &str, why: &str) -> Action {
        self.halt(HaltReason::Unreadable {
            what: what.into(),
            needed_by: needed_by.into(),
            why: why.into(),
        })
    }

    /// Polls the drain again, or halts once its deadline has passed.
    fn drain_wait(&mut self, obs: &Observation, since: u64, clients: &[String]) -> Action {
        let deadline = self.cfg.drain_deadline_ms.unwrap_or(0);
        if obs.now_ms.saturating_sub(since) > deadline {
            return self.halt(HaltReason::ActionFailed {
                action: format!("drain {}", clients.join(",")),
                error: "drain did not complete before the deadline".into(),
            });
        }
        self.stage = Stage::Drain {
            since_ms: Some(since),
        };
        self.poll()
    }

    // ---- the safety check, then stop / replace / start ----

    fn safe_to_stop(&mut self, obs: &Observation, since_ms: u64) -> Action {
        let (healthy_others, quorum) = self.healthy_other_voters(&obs.view);
        let ok = !self.cfg.check_failure_tolerance || healthy_others >= quorum;
        if ok {
            self.leader_index_at_stop = leader_index(&obs.view);
            return self.stop(obs, 0);
        }
        if self.timed_out(obs, since_ms) {
            let server = self.batch.join(",");
            return self.halt(HaltReason::UnsafeToStop {
                server,
                healthy_other_voters: healthy_others,
                quorum,
            });
        }
        self.stage = Stage::SafeToStop { since_ms };
        self.poll()
    }

    /// Healthy voters outside the batch, and the quorum of the voter set. Autopilot health
    /// can be seconds old, so a voter counts only if its own `/v1/agent/self` answers now too,
    /// with a last log index within MaxTrailingLogs of the most advanced voter's in the same
    /// observation. Errors count as unhealthy: a server is never stopped on a view it cannot
    /// read.
    fn healthy_other_voters(&self, v: &ClusterView) -> (usize, usize) {
        let Ok(h) = &v.health else {
            return (0, self.cfg.servers.len() / 2 + 1);
        };
        let last_index = |name: &str| {
            v.agents
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, a)| a.as_ref().ok())
                .map(|a| a.raft.last_log_index)
        };
        let voters: Vec<_> = h.servers.iter().filter(|s| s.voter).collect();
        let quorum = voters.len() / 2 + 1;
        let top = voters
            .iter()
            .filter_map(|s| last_index(base(&s.name)))
            .max()
            .unwrap_or(0);
        let caught_up = |name: &str| {
            last_index(name).is_some_and(|i| i.saturating_add(self.cfg.max_trailing_logs) >= top)
        };
        let others = voters
            .iter()
            .filter(|s| s.healthy && s.serf_status == SerfStatus::Alive && caught_up(base(&s.name)))
            .filter(|s| !self.batch.iter().any(|b| *b == base(&s.name)))
            .count();
        (others, quorum)
    }

    fn stop(&mut self, _obs: &Observation, next: usize) -> Action {
        match self.batch.get(next).cloned() {
            Some(server) => {
                self.stage = Stage::Stop { next: next + 1 };
                Action::Stop { server }
            }
            None => self.replace(0),
        }
    }

    fn replace(&mut self, next: usize) -> Action {
        match self.batch.get(next).cloned() {
            Some(server) => {
                self.stage = Stage::Replace { next: next + 1 };
                Action::ReplaceBinary {
                    server,
                    version: self.pass_version,
                }
            }
            None => {
                self.stage = Stage::Start { next: 0 };
                self.start_next(0)
            }
        }
    }

    fn start(&mut self, obs: &Observation, next: usize) -> Action {
        if next >= self.batch.len() {
            let everyone = self.cfg.servers.iter().map(|s| s.name.clone()).collect();
            let g = GateState::new(&self.batch, everyone, obs.now_ms, self.leader_index_at_stop);
            self.stage = Stage::Gate(g);
            return self.gate(obs);
        }
        self.start_next(next)
    }

    fn start_next(&mut self, next: usize) -> Action {
        let server = self.batch[next].clone();
        self.stage = Stage::Start { next: next + 1 };
        Action::Start { server }
    }

    // ---- the gate ----

    /// Folds `obs` into the gate in progress and moves on once it passes or times out. The
    /// gate's state is updated in place in the `Gate` stage: it is read at every poll and holds
    /// server lists, so it is not copied each time.
    fn gate(&mut self, obs: &Observation) -> Action {
        let min_ft = if self.cfg.allow_zero_tolerance {
            0
        } else {
            self.preflight_tolerance
        };
        // Normally the next server waits until the whole cluster is back (a server failing on
        // its own halts the upgrade). Not when a leader already runs the target and the target
        // writes entries or snapshots the old version cannot read: then every old server left
        // behind will panic on the new entries, so waiting is the danger and the upgrade presses
        // on (the check before each stop still requires a healthy quorum of the others).
        let whole_cluster =
            self.cfg.in_place_rollback_safe || !self.leader_on(obs, self.pass_version);
        let Stage::Gate(g) = &mut self.stage else {
            // Only the `Gate` stage gates.
            return self.poll();
        };
        let unmet = g.update(
            obs,
            &self.cfg.gate,
            self.pass_version,
            min_ft,
            whole_cluster,
        );
        let restarted_at_ms = g.restarted_at_ms;
        if unmet.is_empty() {
            return self.batch_done(obs);
        }
        if obs.now_ms.saturating_sub(restarted_at_ms) > self.cfg.gate.timeout_ms {
            let server = self.batch.join(",");
            return self.halt(HaltReason::GateTimeout { server, unmet });
        }
        // Kept for `gate_wait` (moved, not copied: the list was made for this poll).
        g.pending = unmet;
        g.seen_ms = obs.now_ms;
        self.poll()
    }

    fn leader_on(&self, obs: &Observation, version: Version) -> bool {
        let Some(l) = &obs.view.leader else {
            return false;
        };
        obs.view
            .agents
            .iter()
            .any(|(n, a)| n == l && a.as_ref().is_ok_and(|a| a.version == version))
    }

    fn batch_done(&mut self, obs: &Observation) -> Action {
        let batch = std::mem::take(&mut self.batch);
        if self.rolling_back {
            self.done.retain(|d| !batch.contains(d));
            return self.rollback_next(obs);
        }
        self.last_leader_last = self.batch_was_leader;
        self.done.extend(batch);
        self.batch_index += 1;
        self.choose(obs, None)
    }

    // ---- a removed old server: upgrade it before it can rejoin ----

    /// A server the procedure has not upgraded yet that is no longer in the Raft configuration
    /// while every server that is runs the target, when the target writes log entries the old
    /// version cannot apply.
    ///
    /// That is what autopilot's dead-server cleanup leaves behind when an old server (typically
    /// the old leader, upgraded last) is down long enough mid-upgrade: it removes the server
    /// from the configuration and from serf (`RemoveFailedNode` marks it left), Nomad's version
    /// gate (`ServersMeetMinimumVersion`) skips left members, so the upgraded servers start
    /// writing the new entry types. When the old server comes back, autopilot adds it again,
    /// the leader replicates those entries to it and its FSM panics on the first one it does
    /// not know. The procedure cannot keep the gate closed, but it can make sure the server
    /// never comes back on the old binary: it is not a voter, so stopping it costs no quorum
    /// (a frozen process is stopped too: systemd follows its stop signal with SIGCONT).
    fn fence_candidate(&self, obs: &Observation) -> Option<String> {
        if self.rolling_back || self.cfg.in_place_rollback_safe {
            return None;
        }
        // Where the batch's servers run the target (the gate) or have not been touched yet.
        let batch_upgraded = match &self.stage {
            Stage::Gate(_) => true,
            Stage::Choose { .. }
            | Stage::SafeToStop { .. }
            | Stage::Transfer { .. }
            | Stage::Drain { .. }
            | Stage::Verify { .. }
            | Stage::Clients { .. } => false,
            _ => return None,
        };
        let raft = obs.view.raft.as_ref().ok()?;
        let upgraded = |n: &str| {
            self.done.iter().any(|d| d == n)
                || (batch_upgraded && self.batch.iter().any(|b| b == n))
        };
        let members: Vec<&str> = raft.servers.iter().map(|s| base(&s.node)).collect();
        if members.is_empty() || !members.iter().all(|m| upgraded(m)) {
            return None;
        }
        self.cfg
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .find(|n| !upgraded(n) && !members.contains(n))
            .map(str::to_string)
    }

    fn begin_fence(&mut self, server: String, obs: &Observation) -> Action {
        let resume = std::mem::replace(&mut self.stage, Stage::Finished);
        self.note(&format!(
            "{server} was removed from the Raft configuration (autopilot's dead-server cleanup) while it still ran {}; every remaining server runs {}, which writes log entries {} cannot apply, so {server} was upgraded at once, before it could rejoin on the old version (it was not a voter: stopping it cost no quorum)",
            self.cfg.from_version, self.pass_version, self.cfg.from_version
        ));
        // A client on it that still answers is drained first, as the plan drains it before its
        // own upgrade: the allocations migrate instead of being killed by the stop. One that
        // does not answer (a frozen or dead agent, the usual reason autopilot removed it) is
        // stopped at once: its node misses its heartbeats and is marked down whatever the
        // procedure does, and every second spent waiting is a second in which it can thaw and
        // rejoin on the old version.
        let answers = obs
            .view
            .agents
            .iter()
            .any(|(n, a)| **n == *server && a.is_ok());
        let drain = self.cfg.drain_deadline_ms.is_some() && self.is_client(&server) && answers;
        self.stage = Stage::Fence {
            server: vec![server.clone()],
            step: if drain {
                FenceStep::Drain
            } else {
                FenceStep::Stop
            },
            resume: Box::new(resume),
        };
        if drain {
            return Action::Drain { server };
        }
        Action::Stop { server }
    }

    fn fence_next(&mut self, obs: &Observation) -> Action {
        let deadline = self.cfg.drain_deadline_ms.unwrap_or(0);
        let waits_for_allocs = self.cfg.drain_waits_for_allocs;
        let Stage::Fence { server, step, .. } = &mut self.stage else {
            return self.poll();
        };
        let name = server[0].clone();
        match *step {
            FenceStep::Drain => {
                *step = FenceStep::DrainWait {
                    since_ms: obs.now_ms,
                };
                Action::Observe { wait_ms: 0 }
            }
            FenceStep::DrainWait { since_ms } => {
                let drained = obs.view.drained.iter().any(|d| **d == *name);
                let running = match &obs.view.allocs_running {
                    Readout::Read(Ok(r)) => waits_for_allocs && r.iter().any(|r| **r == *name),
                    Readout::NotApplicable => false,
                    _ => waits_for_allocs,
                };
                // Past the deadline Nomad itself stops what is left (the deadline forces the
                // drain), and the server must not come back on the old version: stop it.
                if (drained && !running) || obs.now_ms.saturating_sub(since_ms) > deadline {
                    *step = FenceStep::Stop;
                    return Action::Stop { server: name };
                }
                self.poll()
            }
            FenceStep::Stop => {
                *step = FenceStep::Replace;
                Action::ReplaceBinary {
                    server: name,
                    version: self.pass_version,
                }
            }
            FenceStep::Replace => {
                *step = FenceStep::Start;
                Action::Start { server: name }
            }
            FenceStep::Start => {
                let Stage::Fence { resume, .. } =
                    std::mem::replace(&mut self.stage, Stage::Finished)
                else {
                    return self.poll();
                };
                self.stage = *resume;
                self.done.push(name);
                self.poll()
            }
        }
    }

    // ---- verify, clients, done ----

    fn begin_verify(&mut self, obs: &Observation) -> Action {
        self.stage = Stage::Verify {
            since_ms: obs.now_ms,
        };
        // The observation that ends the last gate did not ask for the workload (`reads`):
        // read again at once rather than judge a workload nobody read.
        if matches!(obs.view.workload, Readout::NotRead) {
            return Action::Observe { wait_ms: 0 };
        }
        self.verify(obs, obs.now_ms)
    }

    /// Polls until the servers' conditions (`verify_unmet`) hold, for at most the gate's
    /// timeout, and the workload's (`workload`) for at most `[upgrade.verify] settle`; halts
    /// naming every condition unmet when either runs out.
    fn verify(&mut self, obs: &Observation, since_ms: u64) -> Action {
        let mut unmet = self.verify_unmet(&obs.view);
        let max = self.cfg.verify.max_eval_backlog;
        let jobs = match workload::unmet(&obs.view.workload, &self.baseline, max) {
            _ if !self.cfg.verify_workload => Vec::new(),
            Ok(j) => j,
            Err(why) => return self.unreadable(workload::WHAT, "the verification", &why),
        };
        let waited = obs.now_ms.saturating_sub(since_ms);
        let late = (!unmet.is_empty() && waited > self.cfg.gate.timeout_ms)
            || (!jobs.is_empty() && waited > self.cfg.verify.settle_ms);
        unmet.extend(jobs);
        if unmet.is_empty() {
            if self.cfg.upgrade_clients && self.cfg.client_batches.is_some() {
                return self.begin_client_batches();
            }
            if self.cfg.upgrade_clients {
                self.stage = Stage::Clients { since_ms: None };
                return Action::UpgradeClients {
                    version: self.cfg.target_version,
                };
            }
            return self.finish();
        }
        if late {
            return self.halt(HaltReason::VerifyFailed { unmet });
        }
        self.stage = Stage::Verify { since_ms };
        self.poll()
    }

    fn verify_unmet(&self, v: &ClusterView) -> Vec<String> {
        let mut unmet = Vec::new();
        for (name, a) in &v.agents {
            match a {
                Ok(a) if a.version == self.cfg.target_version => {}
                Ok(a) => unmet.push(format!("{name} runs {}", a.version)),
                Err(e) => unmet.push(format!("{name}: {e}")),
            }
        }
        match &v.health {
            _ if !self.cfg.gate.use_autopilot => {}
            Ok(h) if h.healthy && h.servers.iter().all(|s| s.voter) => {}
            Ok(_) => unmet.push("not every server is a healthy voter".into()),
            Err(e) => unmet.push(format!("autopilot health: {e}")),
        }
        let scheduler = (&self.scheduler, &v.scheduler);
        if let (true, (Some(before), Some(Ok(now)))) = (self.cfg.verify_workload, scheduler) {
            let same = before.scheduler_algorithm == now.scheduler_algorithm
                && before.preemption_service == now.preemption_service
                && before.pause_eval_broker == now.pause_eval_broker
                && before.reject_job_registration == now.reject_job_registration;
            if !same {
                unmet.push("scheduler configuration changed during the upgrade".into());
            }
        }
        if v.leader.is_none() {
            unmet.push("no leader".into());
        }
        if v.write_accepted == Some(false) {
            unmet.push("the cluster does not acknowledge writes".into());
        }
        unmet
    }

    /// After `UpgradeClients`: every node that is `ready` must run the target. A node still
    /// `ready` on an older version did not take the upgrade: its host may be gone without the
    /// leader having marked it down (hashicorp/nomad#24231), which shows once the leader's
    /// heartbeat timer for it has fired. Nodes `down` are noted, not waited for.
    fn check_clients(&mut self, obs: &Observation, since_ms: Option<u64>) -> Action {
        let since = since_ms.unwrap_or(obs.now_ms);
        if !self.cfg.verify_clients {
            return self.finish();
        }
        let nodes = match &obs.view.nodes {
            Readout::Read(Ok(n)) => n,
            // No client nodes in this product (Consul): nothing to verify.
            Readout::NotApplicable => return self.finish(),
            Readout::Read(Err(e)) => {
                let unmet = vec![format!("nodes: {e}")];
                return self.clients_wait(obs, since, unmet);
            }
            Readout::NotRead => {
                return self.unreadable("the client nodes", "the client check", "not read");
            }
            Readout::Unavailable { why } => {
                let why = why.clone();
                return self.unreadable("the client nodes", "the client check", &why);
            }
        };
        let target = self.cfg.target_version;
        let unmet: Vec<String> = nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Ready && n.version < target)
            .map(|n| {
                format!(
                    "client {} is ready but runs {} (a node whose host is gone stays ready when missed heartbeats do not mark it down, hashicorp/nomad#24231)",
                    n.name, n.version
                )
            })
            .collect();
        if !unmet.is_empty() {
            return self.clients_wait(obs, since, unmet);
        }
        for n in nodes.iter().filter(|n| n.status == NodeStatus::Down) {
            self.note(&format!("client {} is down: not upgraded", n.name));
        }
        self.finish()
    }

    fn clients_wait(&mut self, obs: &Observation, since: u64, unmet: Vec<String>) -> Action {
        if obs.now_ms.saturating_sub(since) > CLIENT_CHECK_TIMEOUT_MS {
            return self.halt(HaltReason::VerifyFailed { unmet });
        }
        self.stage = Stage::Clients {
            since_ms: Some(since),
        };
        self.poll()
    }

    fn finish(&mut self) -> Action {
        self.stage = Stage::Finished;
        Action::Done(Summary {
            order: self.done.clone(),
            leader_last: self.last_leader_last,
            notes: self.notes.clone(),
        })
    }

    // ---- rollback ----

    fn begin_rollback(&mut self, cause: HaltReason) -> Action {
        self.rolling_back = true;
        self.rollback_cause = Some(cause);
        self.pass_version = self.cfg.from_version;
        // A batch interrupted mid-way was changed too: roll it back first, then the upgraded
        // servers in reverse order.
        let mut changed = std::mem::take(&mut self.batch);
        changed.extend(self.done.iter().rev().cloned());
        changed.dedup();
        self.done = changed;
        self.stage = Stage::Rollback;
        self.poll()
    }

    fn rollback_next(&mut self, obs: &Observation) -> Action {
        self.stage = Stage::Rollback;
        match self.done.first().cloned() {
            Some(server) => {
                self.batch = vec![server];
                self.batch_was_leader = false;
                self.safe_to_stop(obs, obs.now_ms)
            }
            None => match self.snapshot.clone() {
                Some(snapshot) => {
                    self.stage = Stage::Restore;
                    Action::RestoreSnapshot { snapshot }
                }
                None => self.restored(),
            },
        }
    }

    fn restored(&mut self) -> Action {
        self.stage = Stage::Finished;
        let cause = self
            .rollback_cause
            .take()
            .unwrap_or(HaltReason::TooManySteps);
        Action::Halt(HaltReason::RolledBack {
            cause: Box::new(cause),
        })
    }
}

/// Node name without the region suffix (`s1.global` → `s1`): everything before the first `.`.
/// A plain byte scan (`.` is ASCII, so the cut is a char boundary): the gate compares every
/// server's name with every member's at each poll, and `split` costs more than the names are
/// long.
pub fn base(name: &str) -> &str {
    match name.bytes().position(|b| b == b'.') {
        Some(i) => &name[..i],
        None => name,
    }
}

/// The leader's last log index as seen in the view (its own stats, else autopilot's).
fn leader_index(v: &ClusterView) -> u64 {
    let Some(l) = &v.leader else { return 0 };
    let own = v
        .agents
        .iter()
        .find(|(n, _)| n == l)
        .and_then(|(_, a)| a.as_ref().ok());
    if let Some(a) = own {
        return a.raft.last_log_index;
    }
    match &v.health {
        Ok(h) => h
            .servers
            .iter()
            .filter(|s| s.leader)
            .map(|s| s.last_index)
            .max()
            .unwrap_or(0),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests;
