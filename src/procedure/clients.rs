//! The client phase in batches (`[upgrade.clients]`, Nomad).
//!
//! Nomad's upgrade guide upgrades clients only once every server runs the new version (a
//! server must be at least as new as its clients), a few at a time, each drained first so its
//! allocations migrate instead of being killed. After the servers are verified, the procedure
//! takes the client-only nodes of `GET /v1/nodes` (servers that are also clients were upgraded
//! with their server) in name order, `max_parallel` at a time: drain each node of the batch
//! with the deadline, wait until every drain reports complete and the nodes run no
//! allocations, stop, install and start each, wait until each is `ready` on the target, mark
//! each eligible again (a drain leaves the node ineligible), and wait until each is eligible
//! and, with jobs declared, every job is back at its count with the eval broker drained; then
//! the next batch. The client check of the all-at-once phase (`check_clients`) ends it.
//!
//! Nothing in the client phase rolls the servers back: clients already on the target must not
//! run against older servers, so a halt here stops where it is and names the reason.

use super::workload;
use super::{Action, ClusterView, HaltReason, Observation, Procedure, Readout, Stage, base};
use rehearse_model::api::{NodeInfo, NodeStatus};
use rehearse_model::versions::Version;

/// What a halt names when the node list cannot be read.
const NODES: &str = "the client nodes";
/// The check a client-phase halt names.
const NEEDED_BY: &str = "the client batches";

/// Where the client phase is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientStep {
    /// Waiting for the node list that makes the batches.
    List,
    /// Emitting one action per node of the batch; `next` is the node's index.
    Act { act: ClientAct, next: usize },
    /// Waiting for the batch's drains to complete and its allocations to stop.
    DrainWait { since_ms: u64 },
    /// Waiting for the batch's nodes to be `ready` on the target.
    Ready { since_ms: u64 },
    /// Waiting for the batch's nodes to be eligible and the jobs to be back at their counts.
    Settle { since_ms: u64 },
}

/// The per-node actions, in the order a batch takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientAct {
    Drain,
    Stop,
    Install,
    Start,
    Eligible,
}

impl ClientAct {
    fn action(self, client: String, version: Version) -> Action {
        match self {
            ClientAct::Drain => Action::DrainClient { client },
            ClientAct::Stop => Action::StopClient { client },
            ClientAct::Install => Action::InstallClient { client, version },
            ClientAct::Start => Action::StartClient { client },
            ClientAct::Eligible => Action::MarkEligible { client },
        }
    }
}

/// The client-only nodes to upgrade, in name order: every node of `nodes` that is not a
/// server of the plan, is `ready`, and does not run `target` yet. Down nodes are returned
/// apart (noted, not upgraded: the all-at-once phase does the same).
pub(super) fn to_upgrade(
    nodes: &[NodeInfo],
    servers: &[String],
    target: Version,
) -> (Vec<String>, Vec<String>) {
    let mut todo: Vec<String> = Vec::new();
    let mut down: Vec<String> = Vec::new();
    for n in nodes {
        let name = base(&n.name);
        if servers.iter().any(|s| s == name) {
            continue;
        }
        match n.status {
            NodeStatus::Down => down.push(name.to_string()),
            NodeStatus::Ready if n.version != target => todo.push(name.to_string()),
            NodeStatus::Ready => {}
        }
    }
    todo.sort();
    todo.dedup();
    down.sort();
    down.dedup();
    (todo, down)
}

impl Procedure {
    /// Enters the client phase after a passed verification: the next observation reads the
    /// node list.
    pub(super) fn begin_client_batches(&mut self) -> Action {
        self.stage = Stage::ClientBatch(ClientStep::List);
        Action::Observe { wait_ms: 0 }
    }

    pub(super) fn client_step(&mut self, obs: &Observation, step: ClientStep) -> Action {
        match step {
            ClientStep::List => self.client_list(obs),
            ClientStep::Act { act, next } => self.client_act(obs, act, next),
            ClientStep::DrainWait { since_ms } => self.client_drain_wait(obs, since_ms),
            ClientStep::Ready { since_ms } => self.client_ready(obs, since_ms),
            ClientStep::Settle { since_ms } => self.client_settle(obs, since_ms),
        }
    }

    /// Halts in the client phase: no rollback (see the module docs).
    fn client_halt(&mut self, reason: HaltReason) -> Action {
        self.stage = Stage::Finished;
        Action::Halt(reason)
    }

    fn client_unreadable(&mut self, what: &str, why: &str) -> Action {
        self.client_halt(HaltReason::Unreadable {
            what: what.into(),
            needed_by: NEEDED_BY.into(),
            why: why.into(),
        })
    }

    /// Servers not on the target or newer (a client must never be newer than its servers).
    fn servers_behind(&self, v: &ClusterView) -> Vec<String> {
        let target = self.cfg.target_version;
        let mut unmet = Vec::new();
        for s in &self.cfg.servers {
            let a = v.agents.iter().find(|(n, _)| **n == *s.name);
            match a.map(|(_, a)| a) {
                Some(Ok(a)) if a.version >= target => {}
                Some(Ok(a)) => unmet.push(format!(
                    "{} runs {}: clients are upgraded only once every server runs {target} or newer",
                    s.name, a.version
                )),
                Some(Err(e)) => unmet.push(format!("{}: {e}", s.name)),
                None => unmet.push(format!("{} did not answer", s.name)),
            }
        }
        unmet
    }

    /// The node list the procedure asked for, `Ok(None)` when the API answered with an error
    /// (the caller waits), or the halt when the driver cannot read it.
    fn client_nodes<'o>(&mut self, obs: &'o Observation) -> Result<Option<&'o [NodeInfo]>, Action> {
        match &obs.view.nodes {
            Readout::Read(Ok(n)) => Ok(Some(n)),
            Readout::Read(Err(_)) => Ok(None),
            Readout::NotApplicable => Err(self.client_unreadable(NODES, "the product has none")),
            Readout::NotRead => Err(self.client_unreadable(NODES, "not read")),
            Readout::Unavailable { why } => Err(self.client_unreadable(NODES, why)),
        }
    }

    fn client_list(&mut self, obs: &Observation) -> Action {
        let behind = self.servers_behind(&obs.view);
        if !behind.is_empty() {
            return self.client_halt(HaltReason::VerifyFailed { unmet: behind });
        }
        let nodes = match self.client_nodes(obs) {
            Ok(Some(n)) => n,
            Ok(None) => return self.poll(),
            Err(halt) => return halt,
        };
        let servers: Vec<String> = self.cfg.servers.iter().map(|s| s.name.clone()).collect();
        let (todo, down) = to_upgrade(nodes, &servers, self.cfg.target_version);
        for n in down {
            self.note(&format!("client {n} is down: not upgraded"));
        }
        self.client_queue = todo;
        self.next_client_batch(obs)
    }

    /// Takes the next batch off the queue and begins it, or ends the phase with the client
    /// check once the queue is empty.
    fn next_client_batch(&mut self, obs: &Observation) -> Action {
        let n = self.client_batch_size();
        if self.client_queue.is_empty() {
            self.stage = super::Stage::Clients { since_ms: None };
            return self.check_clients(obs, None);
        }
        let take = n.min(self.client_queue.len());
        self.client_batch = self.client_queue.drain(..take).collect();
        let first = match self.client_drain_deadline() {
            Some(_) => ClientAct::Drain,
            None => ClientAct::Stop,
        };
        self.client_act(obs, first, 0)
    }

    fn client_batch_size(&self) -> usize {
        self.cfg
            .client_batches
            .as_ref()
            .map_or(1, |c| c.max_parallel.max(1))
    }

    fn client_drain_deadline(&self) -> Option<u64> {
        self.cfg
            .client_batches
            .as_ref()
            .and_then(|c| c.drain_deadline_ms)
    }

    /// Emits `act` for the batch's node `next`, or moves on once every node has had it.
    fn client_act(&mut self, obs: &Observation, act: ClientAct, next: usize) -> Action {
        if let Some(c) = self.client_batch.get(next).cloned() {
            self.stage = Stage::ClientBatch(ClientStep::Act {
                act,
                next: next + 1,
            });
            return act.action(c, self.cfg.target_version);
        }
        let since_ms = obs.now_ms;
        let (step, wait_ms) = match act {
            ClientAct::Drain => (ClientStep::DrainWait { since_ms }, 0),
            ClientAct::Stop => return self.client_act(obs, ClientAct::Install, 0),
            ClientAct::Install => return self.client_act(obs, ClientAct::Start, 0),
            ClientAct::Start => (ClientStep::Ready { since_ms }, self.cfg.gate.poll_ms),
            ClientAct::Eligible => (ClientStep::Settle { since_ms }, 0),
        };
        self.stage = Stage::ClientBatch(step);
        Action::Observe { wait_ms }
    }

    /// Waits until every drain of the batch reports complete and its nodes run no
    /// allocations (a drain reports complete before allocations with a kill_timeout have
    /// stopped, hashicorp/nomad#14293); halts past the drain deadline.
    fn client_drain_wait(&mut self, obs: &Observation, since_ms: u64) -> Action {
        let waits = self.cfg.drain_waits_for_allocs;
        let running: &[_] = match &obs.view.allocs_running {
            _ if !waits => &[],
            Readout::Read(Ok(r)) => r,
            Readout::Read(Err(_)) => return self.client_drain_poll(obs, since_ms),
            Readout::NotApplicable => {
                return self.client_unreadable("allocations", "the product has none");
            }
            Readout::NotRead => return self.client_unreadable("allocations", "not read"),
            Readout::Unavailable { why } => {
                let why = why.clone();
                return self.client_unreadable("allocations", &why);
            }
        };
        let done = self.client_batch.iter().all(|c| {
            obs.view.drained.iter().any(|d| **d == **c) && !running.iter().any(|r| **r == **c)
        });
        if done {
            return self.client_act(obs, ClientAct::Stop, 0);
        }
        self.client_drain_poll(obs, since_ms)
    }

    fn client_drain_poll(&mut self, obs: &Observation, since_ms: u64) -> Action {
        let deadline = self.client_drain_deadline().unwrap_or(0);
        if obs.now_ms.saturating_sub(since_ms) > deadline {
            return self.client_halt(HaltReason::ActionFailed {
                action: format!("drain client {}", self.client_batch.join(",")),
                error: "drain did not complete before the deadline".into(),
            });
        }
        self.stage = Stage::ClientBatch(ClientStep::DrainWait { since_ms });
        self.poll()
    }

    /// The batch's conditions on the node list: each node listed, `ready`, on the target,
    /// and (when `eligible`) eligible for placements.
    fn client_nodes_unmet(&self, nodes: &[NodeInfo], eligible: bool) -> Vec<String> {
        let target = self.cfg.target_version;
        let mut unmet = Vec::new();
        for c in &self.client_batch {
            let Some(n) = nodes.iter().find(|n| base(&n.name) == c) else {
                unmet.push(format!("client {c} is not listed"));
                continue;
            };
            if n.status != NodeStatus::Ready {
                unmet.push(format!("client {c} is not ready"));
            }
            if n.version != target {
                unmet.push(format!("client {c} runs {}", n.version));
            }
            if eligible && !n.eligible {
                unmet.push(format!("client {c} is not eligible"));
            }
        }
        unmet
    }

    /// Waits until the batch's nodes are `ready` on the target, for at most the gate's
    /// timeout, then marks drained nodes eligible again.
    fn client_ready(&mut self, obs: &Observation, since_ms: u64) -> Action {
        let unmet = match self.client_nodes(obs) {
            Ok(Some(n)) => self.client_nodes_unmet(n, false),
            Ok(None) => vec!["nodes: the API answered with an error".into()],
            Err(halt) => return halt,
        };
        if unmet.is_empty() {
            if self.client_drain_deadline().is_some() {
                return self.client_act(obs, ClientAct::Eligible, 0);
            }
            return self.client_act(obs, ClientAct::Eligible, self.client_batch.len());
        }
        self.client_wait(obs, since_ms, self.cfg.gate.timeout_ms, unmet, |s| {
            ClientStep::Ready { since_ms: s }
        })
    }

    /// Waits until the batch's nodes are eligible and, with jobs declared, every job runs its
    /// count again and the eval broker is within its bound; then the next batch.
    fn client_settle(&mut self, obs: &Observation, since_ms: u64) -> Action {
        let mut unmet = match self.client_nodes(obs) {
            Ok(Some(n)) => self.client_nodes_unmet(n, true),
            Ok(None) => vec!["nodes: the API answered with an error".into()],
            Err(halt) => return halt,
        };
        if self.cfg.verify_workload {
            let max = self.cfg.verify.max_eval_backlog;
            match workload::unmet(&obs.view.workload, &self.baseline, max) {
                Ok(j) => unmet.extend(j),
                Err(why) => return self.client_unreadable(workload::WHAT, &why),
            }
        }
        if unmet.is_empty() {
            let batch = std::mem::take(&mut self.client_batch);
            self.clients_done.extend(batch);
            return self.next_client_batch(obs);
        }
        let timeout = self.cfg.gate.timeout_ms.max(self.cfg.verify.settle_ms);
        self.client_wait(obs, since_ms, timeout, unmet, |s| ClientStep::Settle {
            since_ms: s,
        })
    }

    fn client_wait(
        &mut self,
        obs: &Observation,
        since_ms: u64,
        timeout_ms: u64,
        unmet: Vec<String>,
        step: fn(u64) -> ClientStep,
    ) -> Action {
        if obs.now_ms.saturating_sub(since_ms) > timeout_ms {
            let server = self.client_batch.join(",");
            return self.client_halt(HaltReason::GateTimeout { server, unmet });
        }
        self.stage = Stage::ClientBatch(step(since_ms));
        self.poll()
    }

    /// Client-only nodes upgraded in batches so far, in order.
    pub fn clients_upgraded(&self) -> &[String] {
        &self.clients_done
    }

    /// The client-only nodes of the batch under way (empty outside the client phase): the
    /// nodes whose drain and allocations a driver reads for the procedure.
    pub fn client_batch(&self) -> &[String] {
        match self.stage {
            Stage::ClientBatch(_) => &self.client_batch,
            _ => &[],
        }
    }
}
