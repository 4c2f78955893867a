//! Client nodes and the leader's heartbeat timers (hashicorp/nomad `nomad/heartbeat.go`,
//! `client/client.go`).
//!
//! How Nomad does it: a client heartbeats (`Node.UpdateStatus`) to any server, which forwards to
//! the leader. The leader answers with a TTL — `min_heartbeat_ttl` (10 s), or more when
//! `nodes / max_heartbeats_per_second` (50/s) is longer, plus a random stagger of up to as much
//! again — and (re)arms the node's timer at TTL + `heartbeat_grace` (10 s). The client
//! heartbeats again after the TTL. Timers live only on the leader: they start in
//! `establishLeadership` (`initializeHeartbeatTimers`), where every node not already down gets
//! `failover_heartbeat_ttl` (5 min) so that clients have time to find the new leader, and they
//! are cleared when leadership is lost. When a node's timer fires, the leader marks it down
//! with a Raft write (`Node.UpdateStatus` to itself); a heartbeat that comes back later marks it
//! ready again (another write). Heartbeats themselves are not Raft writes.
//!
//! Nomad 1.9.0 (hashicorp/nomad#24231, fixed in 1.9.1 by PR #24241): the `Node.UpdateStatus`
//! handler was made stricter (#23838) and the leader's own mark-down request carried no token,
//! so with ACLs enabled it fails with "Permission denied" and a node whose host is gone stays
//! `ready` for good (its allocations are never replaced).
//!
//! The model is cheap: nothing happens per heartbeat. A node that runs always heartbeats in
//! time (its timer is always in the future), so only a node that stops gets a timer, computed
//! in closed form when it stops: its last heartbeat was a uniform time within one TTL before;
//! if that was before the current leader took office, the leader's timer is still the
//! failover one. One event per stopped node per leader; none at all without clients.
//!
//! Departures: clients are outside the network model — a running client reaches a running
//! server, so its heartbeats succeed whenever there is an established leader (a partition
//! between servers does not cut clients off). A client's restart onto a new binary
//! (`upgrade_clients`) is not downtime: it takes seconds and its timer is at least 20 s. The
//! leader's mark-down is written the moment its timer fires (Nomad first checks leadership with
//! a barrier, milliseconds). A server that is also a client is listed (named after the server,
//! running the server's version) but its heartbeats are not modelled: its drain and allocations
//! are (see `drain`; with jobs declared, the workload plane's, see `workload`), and its
//! restarts last seconds. Jobs, allocations and evaluations are the `workload` plane's.

use crate::rng::SimRng;
use crate::state::{EntryKind, ProcessState, Role, ServerId};
use crate::trace::TraceKind;
use crate::world::World;
use rehearse_model::api::{ApiError, NodeInfo, NodeStatus};
use rehearse_model::time::{SEC, SimTime};
use rehearse_model::versions::{KnownIssueKind, Version, has_issue_for};

/// Most client nodes a world may have.
pub const MAX_NODES: usize = 10_000;
/// Most status writes kept per node (each death or return adds one).
const MARKS_MAX: usize = 1_000;
/// Allocations a server-client runs before it is drained when no jobs are declared (any
/// positive number would do: the question is whether they have stopped). With jobs the
/// workload plane counts them (see `workload`).
const ALLOCS_PER_NODE: usize = 3;

/// One client-only node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Shared: `GET /v1/nodes` lists it on every client check.
    name: rehearse_model::api::SharedStr,
    /// The version it last registered with.
    version: Version,
    /// When its host or agent stopped (it heartbeats while `None`).
    gone_since: Option<SimTime>,
    /// The leader's timer for it: when it fires, and the leader (id, term) that armed it.
    timer: Option<(SimTime, (ServerId, u64))>,
    /// Bumped whenever the node stops or returns or its timer is re-armed: older timer events
    /// are stale.
    generation: u64,
    /// Status writes for it: (index, term, down), oldest first.
    marks: Vec<(u64, u64, bool)>,
    /// When a leader's timer fired and the mark-down write was refused (nomad#24231).
    refused_at: Option<SimTime>,
    /// When its drain completes (`DRAINING` while the workload plane's drain runs); `None`:
    /// no drain since it was last marked eligible.
    pub(crate) drain_done_at: Option<SimTime>,
    /// Marked ineligible by a drain, until it is marked eligible again.
    ineligible: bool,
    /// Its agent was stopped by the procedure (not its host lost), since when.
    agent_stopped: Option<SimTime>,
    /// The version installed while its agent was stopped, run from its next start.
    installed: Option<Version>,
}

/// Allocations lost because a client-only node the procedure stopped was marked down before
/// it came back (its drain had not completed, or there was none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientLoss {
    /// Node name.
    pub client: String,
    /// When the procedure stopped its agent.
    pub stopped_at: SimTime,
    /// When the leader marked it down.
    pub marked_down_at: SimTime,
    /// Allocations running on it then.
    pub allocs: usize,
}

/// The nodes and the leader whose timers run.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    nodes: Vec<Node>,
    rng: SimRng,
    /// The leader that established leadership last: (id, term, since).
    leader: Option<(ServerId, u64, SimTime)>,
    /// Losses of allocations on nodes the procedure stopped, in order.
    losses: Vec<ClientLoss>,
}

impl Clients {
    /// `count` client-only nodes `c1..cN` on `version`.
    pub(crate) fn new(count: usize, version: Version, seed: u64) -> Clients {
        let nodes = (1..=count)
            .map(|i| Node {
                name: format!("c{i}").into(),
                version,
                gone_since: None,
                timer: None,
                generation: 0,
                marks: Vec::new(),
                refused_at: None,
                drain_done_at: None,
                ineligible: false,
                agent_stopped: None,
                installed: None,
            })
            .collect();
        Clients {
            nodes,
            rng: SimRng::child(seed, "clients"),
            leader: None,
            losses: Vec::new(),
        }
    }

    /// The name of node `i`, if there is one.
    pub(crate) fn name(&self, i: usize) -> Option<&str> {
        self.nodes.get(i).map(|n| &*n.name)
    }
}

impl World {
    /// The established leader whose heartbeat timers run now: (id, term, since).
    fn timer_leader(&self) -> Option<(ServerId, u64, SimTime)> {
        let (l, term, since) = self.clients.leader?;
        let s = &self.servers[l];
        let same = s.proc == ProcessState::Running
            && s.vol.role == Role::Leader
            && s.disk.term == term
            && !self.is_wedged(l);
        same.then_some((l, term, since))
    }

    /// The TTL the leader grants one heartbeat: `RateScaledInterval` plus `RandomStagger`.
    fn draw_ttl(&mut self) -> u64 {
        let c = &self.cfg.clients;
        let n = self.clients.nodes.len() as f64;
        let scaled = (n / c.max_heartbeats_per_sec * 1e9) as u64;
        let base = c.min_heartbeat_ttl_ns.max(scaled);
        base + self.clients.rng.range(0, base)
    }

    /// `establishLeadership` on `l`: every node not down gets the failover TTL; a node that
    /// runs heartbeats within it (nothing to do), a stopped one will expire.
    pub(crate) fn clients_on_established(&mut self, l: ServerId) {
        if self.clients.nodes.is_empty() {
            return;
        }
        let term = self.servers[l].disk.term;
        self.clients.leader = Some((l, term, self.now));
        let at = self.now.plus(self.cfg.clients.failover_heartbeat_ttl_ns);
        for i in 0..self.clients.nodes.len() {
            let down = self.node_down_at(i, l);
            let n = &self.clients.nodes[i];
            if n.gone_since.is_some() && !down {
                self.arm(i, at, (l, term));
            } else if n.gone_since.is_none() && down {
                // A node that came back while there was no leader registers with this one.
                self.write_status(i, l, false);
            }
        }
    }

    fn arm(&mut self, i: usize, at: SimTime, by: (ServerId, u64)) {
        let n = &mut self.clients.nodes[i];
        // A new timer replaces the old one (Nomad resets it): older events are stale.
        n.generation += 1;
        n.timer = Some((at, by));
        let generation = n.generation;
        self.push_client_ttl(at, i as u32, generation);
    }

    /// A client-only node's host goes away (no heartbeats from now on).
    pub fn client_down(&mut self, i: usize) {
        self.node_gone(i, true);
    }

    /// Node `i` stops heartbeating: its host is gone (`host`: what ran on it dies with it) or
    /// its agent was stopped (what runs on it keeps running: see `stop_client`).
    fn node_gone(&mut self, i: usize, host: bool) {
        let now = self.now;
        let n = &mut self.clients.nodes[i];
        if n.gone_since.is_some() {
            return;
        }
        n.gone_since = Some(now);
        n.generation += 1;
        n.timer = None;
        let name = n.name.clone();
        let what = match host {
            true => format!("client {name} down"),
            false => format!("stop client {name}"),
        };
        self.trace(TraceKind::Fault { what });
        if host && self.plane.is_some() {
            self.plane_node_gone(i as u32);
        }
        let Some((l, term, since)) = self.timer_leader() else {
            return; // no timers run; the next leader arms the failover TTL
        };
        // Its last heartbeat came a uniform time within one TTL ago.
        let ttl = self.draw_ttl();
        let ago = self.clients.rng.range(0, ttl);
        let last = SimTime(now.0.saturating_sub(ago));
        let at = if last < since {
            since.plus(self.cfg.clients.failover_heartbeat_ttl_ns)
        } else {
            last.plus(ttl + self.cfg.clients.heartbeat_grace_ns)
        };
        self.arm(i, at.max(now), (l, term));
    }

    /// A client-only node's host is back: it heartbeats (and is marked ready if it was down).
    pub fn client_up(&mut self, i: usize) {
        self.node_back(i, None);
    }

    /// Node `i` heartbeats again: its host is back (`version` None) or its agent was started
    /// on `version`.
    fn node_back(&mut self, i: usize, version: Option<Version>) {
        let n = &mut self.clients.nodes[i];
        if n.gone_since.take().is_none() {
            return;
        }
        n.generation += 1;
        n.timer = None;
        n.agent_stopped = None;
        let name = n.name.clone();
        let what = match version {
            None => format!("client {name} up"),
            Some(v) => {
                n.version = v;
                format!("start client {name} on {v}")
            }
        };
        self.trace(TraceKind::Fault { what });
        if self.plane.is_some() {
            self.plane_node_back(i as u32, false);
        }
        if let Some((l, ..)) = self.timer_leader()
            && self.node_down_at(i, l)
        {
            self.write_status(i, l, false);
        }
    }

    /// A node's heartbeat timer fired on the leader.
    pub(crate) fn on_client_ttl(&mut self, i: usize, generation: u64) {
        let n = &self.clients.nodes[i];
        let Some((_, by)) = n.timer else { return };
        if n.generation != generation || n.gone_since.is_none() {
            return;
        }
        let Some((l, term, _)) = self.timer_leader() else {
            return;
        };
        if (l, term) != by {
            // Armed by a leader that has lost office since: its timers went with it.
            self.clients.nodes[i].timer = None;
            return;
        }
        self.clients.nodes[i].timer = None;
        let name = self.clients.nodes[i].name.clone();
        let version = self.servers[l].spec.version;
        let (product, edition) = (self.cfg.product, self.cfg.edition);
        let refused = self.cfg.acl_enabled
            && has_issue_for(
                product,
                version,
                edition,
                KnownIssueKind::HeartbeatMarkDownRefused,
            );
        if refused {
            // hashicorp/nomad#24231: the timer has fired and is gone; the node stays ready
            // until the next leader's failover TTL fires (and is refused again).
            let now = self.now;
            self.clients.nodes[i].refused_at.get_or_insert(now);
            self.trace(TraceKind::Process {
                server: l,
                what: format!(
                    "node {name} TTL expired; update node status failed: Permission denied"
                ),
            });
            return;
        }
        self.trace(TraceKind::Process {
            server: l,
            what: format!("node {name} TTL expired; marked down"),
        });
        self.record_client_loss(i);
        self.write_status(i, l, true);
    }

    /// Node `i` is being marked down: if the procedure stopped its agent while allocations
    /// still ran on it, they are lost now (the scheduler replaces them; the agent stops them
    /// when it comes back).
    fn record_client_loss(&mut self, i: usize) {
        let Some(stopped_at) = self.clients.nodes[i].agent_stopped else {
            return;
        };
        let allocs = self.plane_allocs_on_client(i).unwrap_or(0);
        if allocs == 0 {
            return;
        }
        let loss = ClientLoss {
            client: self.clients.nodes[i].name.to_string(),
            stopped_at,
            marked_down_at: self.now,
            allocs,
        };
        self.clients.losses.push(loss);
        self.plane_count_lost(allocs);
    }

    fn write_status(&mut self, i: usize, l: ServerId, down: bool) {
        let kind = EntryKind::NodeStatus {
            node: i as u32,
            down,
        };
        let index = self.append_local(l, kind);
        self.broadcast(l);
        let term = self.servers[l].disk.term;
        let marks = &mut self.clients.nodes[i].marks;
        assert!(marks.len() < MARKS_MAX, "node status writes unbounded");
        marks.push((index, term, down));
    }

    /// Whether node `i` is down in the state of server `via`: its newest status write that
    /// was committed and that `via` has applied says so.
    fn node_down_at(&self, i: usize, via: ServerId) -> bool {
        let applied = self.servers[via].vol.applied;
        let marks = &self.clients.nodes[i].marks;
        marks
            .iter()
            .rev()
            .find(|&&(index, term, down)| {
                let digest = EntryKind::NodeStatus {
                    node: i as u32,
                    down,
                };
                let e = crate::state::Entry { term, kind: digest };
                index <= applied && self.committed_entry(index) == Some((term, e.digest()))
            })
            .is_some_and(|m| m.2)
    }

    /// Number of client-only nodes.
    pub fn client_count(&self) -> usize {
        self.clients.nodes.len()
    }

    /// The first client-only node whose host runs, if any.
    pub fn first_running_client(&self) -> Option<usize> {
        self.clients
            .nodes
            .iter()
            .position(|n| n.gone_since.is_none())
    }

    /// `GET /v1/nodes` through `via` (forwarded to the leader, as Nomad does without `?stale`):
    /// client-only nodes, then the servers that are also clients.
    pub fn nodes(&self, via: ServerId) -> Result<Vec<NodeInfo>, ApiError> {
        let l = self.forwarded(via)?;
        let mut out = Vec::with_capacity(self.clients.nodes.len() + self.servers.len());
        out.extend((0..self.clients.nodes.len()).map(|i| {
            let n = &self.clients.nodes[i];
            NodeInfo {
                name: n.name.clone(),
                status: if self.node_down_at(i, l) {
                    NodeStatus::Down
                } else {
                    NodeStatus::Ready
                },
                version: n.version,
                drain: n.drain_done_at.is_some(),
                eligible: !n.ineligible,
            }
        }));
        for (id, s) in self.servers.iter().enumerate() {
            if !s.spec.also_client {
                continue;
            }
            out.push(NodeInfo {
                name: self.server_label(id),
                status: NodeStatus::Ready,
                version: s.advertised,
                drain: s.drain_done_at.is_some(),
                eligible: s.drain_done_at.is_none(),
            });
        }
        Ok(out)
    }

    /// Upgrades every running client-only node to `version` (its agent restarts on the new
    /// binary and registers with it). A node whose host is gone keeps the version it last
    /// registered with.
    pub fn upgrade_clients(&mut self, version: Version) {
        for n in self.clients.nodes.iter_mut() {
            if n.gone_since.is_none() {
                n.version = version;
            }
        }
        self.trace(TraceKind::Fault {
            what: format!("upgrade running clients to {version}"),
        });
    }

    /// The name of client-only node `i`.
    pub fn client_name(&self, i: usize) -> Option<&str> {
        self.clients.name(i)
    }

    /// The index of the client-only node named `name`.
    pub fn client_index(&self, name: &str) -> Option<usize> {
        self.clients.nodes.iter().position(|n| *n.name == *name)
    }

    /// `POST /v1/node/:id/drain` for client-only node `i` (see `drain_with_deadline`): with
    /// jobs declared the workload plane's drain (it completes when the node runs nothing);
    /// without, the constant model's delay. The node turns ineligible.
    pub fn drain_client(&mut self, i: usize, deadline_ns: Option<u64>) -> Result<(), ApiError> {
        let l = self.forwarded_or_any(0)?;
        let name = self.clients.nodes[i].name.clone();
        self.trace(TraceKind::Fault {
            what: format!("drain {name}"),
        });
        self.clients.nodes[i].ineligible = true;
        if self.plane.is_some() {
            self.clients.nodes[i].drain_done_at = Some(crate::workload::DRAINING);
            self.plane_write_drain(i as u32, l, deadline_ns);
            return Ok(());
        }
        let (lo, hi) = (self.cfg.clients.drain_ns_min, self.cfg.clients.drain_ns_max);
        let d = self.drain_delay(lo, hi);
        self.clients.nodes[i].drain_done_at = Some(self.now.plus(d));
        Ok(())
    }

    /// The workload plane found client-only node `i` draining and empty: a drain in progress
    /// completes now.
    pub(crate) fn client_drain_done(&mut self, i: usize) {
        let now = self.now;
        let n = &mut self.clients.nodes[i];
        if n.drain_done_at != Some(crate::workload::DRAINING) {
            return;
        }
        n.drain_done_at = Some(now);
        let name = n.name.clone();
        self.trace(TraceKind::Fault {
            what: format!("drain of {name} complete"),
        });
    }

    /// Whether the drain of client-only node `i` has completed.
    pub fn client_drain_complete(&self, i: usize) -> bool {
        self.clients.nodes[i]
            .drain_done_at
            .is_some_and(|t| t <= self.now)
    }

    /// Allocations running on client-only node `i` (`GET /v1/node/:id/allocations`, through
    /// any server that forwards it). Without jobs declared client-only nodes run none.
    pub fn client_allocations_running(&self, i: usize) -> Result<usize, ApiError> {
        self.forwarded_or_any(0)?;
        Ok(self.plane_allocs_on_client(i).unwrap_or(0))
    }

    /// `POST /v1/node/:id/eligibility` (eligible) for client-only node `i`: its drain is over
    /// and it takes placements again.
    pub fn mark_client_eligible(&mut self, i: usize) -> Result<(), ApiError> {
        let l = self.forwarded_or_any(0)?;
        let n = &mut self.clients.nodes[i];
        n.ineligible = false;
        n.drain_done_at = None;
        let name = n.name.clone();
        self.trace(TraceKind::Fault {
            what: format!("mark {name} eligible"),
        });
        self.plane_mark_eligible(i as u32, l);
        Ok(())
    }

    /// The procedure stops client-only node `i`'s agent to upgrade it. It stops heartbeating
    /// (the leader marks it down once its timer fires), but its allocations keep running:
    /// Nomad's task drivers outlive the agent, which reattaches to them when it starts again.
    /// If the leader marks the node down first, they are lost (`client_losses`).
    pub fn stop_client(&mut self, i: usize) {
        if self.clients.nodes[i].gone_since.is_some() {
            return;
        }
        self.clients.nodes[i].agent_stopped = Some(self.now);
        self.node_gone(i, false);
    }

    /// Installs `version` on client-only node `i`, whose agent the procedure stopped.
    pub fn install_client(&mut self, i: usize, version: Version) -> Result<(), String> {
        let n = &mut self.clients.nodes[i];
        if n.agent_stopped.is_none() {
            return Err(format!("client {} is running: stop it first", n.name));
        }
        n.installed = Some(version);
        Ok(())
    }

    /// The procedure starts client-only node `i`'s agent on the version installed since its
    /// stop: it registers with it and heartbeats again (marked ready if it was marked down).
    /// Departure: Nomad creates node evaluations when a node registers with a new version;
    /// here a node that was not marked down creates none (its allocations kept running,
    /// nothing to place).
    pub fn start_client(&mut self, i: usize) {
        let n = &mut self.clients.nodes[i];
        if n.agent_stopped.is_none() {
            return;
        }
        let version = n.installed.take().unwrap_or(n.version);
        self.node_back(i, Some(version));
    }

    /// Whether a drain of client-only node `i` was requested and it was not marked eligible
    /// since.
    pub fn client_drain_requested(&self, i: usize) -> bool {
        self.clients.nodes[i].drain_done_at.is_some()
    }

    /// Allocations lost on client-only nodes the procedure stopped, in order.
    pub fn client_losses(&self) -> &[ClientLoss] {
        &self.clients.losses
    }

    /// Ground truth: client-only nodes that are gone, whose leader's timer fired, and that
    /// are still `ready` because the mark-down was refused (hashicorp/nomad#24231), one line
    /// each.
    pub fn nodes_not_marked_down(&self) -> Vec<String> {
        let leader = self.timer_leader().map(|(l, ..)| l);
        self.clients
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let gone = n.gone_since?;
                let refused = n.refused_at?;
                let down = leader.is_some_and(|l| self.node_down_at(i, l));
                (!down).then(|| {
                    format!(
                        "client {} gone since {:.1}s is still ready: its heartbeat TTL expired at {:.1}s but the leader could not mark it down (update node status failed: Permission denied)",
                        n.name,
                        gone.0 as f64 / SEC as f64,
                        refused.0 as f64 / SEC as f64
                    )
                })
            })
            .collect()
    }

    /// When the next armed heartbeat timer of a gone node fires, if any: a judge runs the
    /// world that far, so that a node gone near the end of a run is judged too.
    pub fn next_node_deadline(&self) -> Option<SimTime> {
        let leader = self.timer_leader()?;
        self.clients
            .nodes
            .iter()
            .filter(|n| n.gone_since.is_some())
            .filter_map(|n| n.timer)
            .filter(|&(_, by)| by == (leader.0, leader.1))
            .map(|(at, _)| at)
            .min()
    }

    /// Allocations still running on the client of server `id` (`GET /v1/node/:id/allocations`,
    /// those whose ClientStatus is `running`). A drain reports complete once every allocation
    /// is marked to migrate; tasks with a `kill_timeout` or `shutdown_delay` keep running that
    /// long after (hashicorp/nomad#14293, PR #14348 not merged): `ClientConfig::kill_timeout_ns`.
    pub fn allocations_running(&self, id: ServerId) -> Result<usize, ApiError> {
        let s = &self.servers[id];
        if !s.spec.also_client {
            return Ok(0);
        }
        self.forwarded_or_any(id)?;
        if let Some(n) = self.plane_allocs_on_server(id) {
            return Ok(n);
        }
        let stopped = s
            .drain_done_at
            .is_some_and(|t| self.now >= t.plus(self.cfg.clients.kill_timeout_ns));
        Ok(if stopped { 0 } else { ALLOCS_PER_NODE })
    }

    /// Ground truth for the judge: allocations running on server `id`'s client right now.
    pub fn allocations_running_now(&self, id: ServerId) -> usize {
        if let Some(n) = self.plane_allocs_on_server(id) {
            return n;
        }
        let s = &self.servers[id];
        let stopped = s
            .drain_done_at
            .is_some_and(|t| self.now >= t.plus(self.cfg.clients.kill_timeout_ns));
        if s.spec.also_client && !stopped {
            ALLOCS_PER_NODE
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::SimConfig;
    use crate::state::StopMode;
    use crate::world::World;
    use rehearse_model::api::NodeStatus;
    use rehearse_model::time::SEC;
    use rehearse_model::versions::Version;

    fn world(version: Version, acl: bool, seed: u64) -> World {
        let mut cfg = SimConfig::nomad(3, version, seed);
        cfg.clients.count = 5;
        cfg.acl_enabled = acl;
        let mut w = World::new(cfg).unwrap();
        w.run_for(20 * SEC);
        w
    }

    fn status(w: &World, name: &str) -> NodeStatus {
        let l = w.leader().unwrap();
        let nodes = w.nodes(l).unwrap();
        nodes.iter().find(|n| n.name == name).unwrap().status
    }

    #[test]
    fn a_gone_node_is_marked_down_within_ttl_and_grace_then_ready_again() {
        for seed in 1..=6 {
            let mut w = world(Version::new(1, 9, 1), true, seed);
            // The first leader's failover TTL (5 min) covers nodes gone soon after it took
            // office; wait it out so the ordinary TTL applies.
            w.run_for(300 * SEC);
            w.client_down(1);
            // Its timer: last heartbeat (within one TTL of 10-20 s) + TTL + grace (10 s).
            w.run_for(9 * SEC);
            assert_eq!(
                status(&w, "c2"),
                NodeStatus::Ready,
                "seed {seed}: too early"
            );
            w.run_for(22 * SEC);
            assert_eq!(status(&w, "c2"), NodeStatus::Down, "seed {seed}");
            assert_eq!(status(&w, "c1"), NodeStatus::Ready);
            w.client_up(1);
            w.run_for(SEC);
            assert_eq!(status(&w, "c2"), NodeStatus::Ready, "seed {seed}");
            assert!(w.nodes_not_marked_down().is_empty());
        }
    }

    #[test]
    fn a_new_leader_waits_the_failover_ttl_before_marking_anything_down() {
        let mut w = world(Version::new(1, 9, 1), true, 3);
        let l = w.leader().unwrap();
        w.client_down(0);
        w.stop(l, StopMode::Graceful);
        w.run_for(60 * SEC);
        assert_eq!(status(&w, "c1"), NodeStatus::Ready, "failover TTL is 5 min");
        w.run_for(250 * SEC);
        assert_eq!(status(&w, "c1"), NodeStatus::Down);
    }

    #[test]
    fn nomad_1_9_0_with_acls_never_marks_a_gone_node_down() {
        let mut w = world(Version::new(1, 9, 0), true, 2);
        w.run_for(300 * SEC);
        w.client_down(0);
        w.run_for(120 * SEC);
        assert_eq!(status(&w, "c1"), NodeStatus::Ready);
        let lines = w.nodes_not_marked_down();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("Permission denied"));
        // Without ACLs the leader's request needs no token.
        let mut w = world(Version::new(1, 9, 0), false, 2);
        w.run_for(300 * SEC);
        w.client_down(0);
        w.run_for(120 * SEC);
        assert_eq!(status(&w, "c1"), NodeStatus::Down);
    }

    #[test]
    fn nodes_add_no_events_while_every_client_runs() {
        let mut a = SimConfig::nomad(3, Version::new(1, 9, 1), 5);
        let mut b = a.clone();
        b.clients.count = 40;
        a.clients.count = 0;
        let (mut a, mut b) = (World::new(a).unwrap(), World::new(b).unwrap());
        a.run_for(600 * SEC);
        b.run_for(600 * SEC);
        assert_eq!(a.metrics().events, b.metrics().events);
        assert_eq!(a.trace_hash(), b.trace_hash());
    }
}
