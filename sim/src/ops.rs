//! The operator surface: what `nomad operator …`, `/v1/status/*`, `/v1/agent/*` would answer,
//! computed from the simulated servers, and the operator's actions (snapshot, transfer, drain).

use crate::raft::quorum;
use crate::rng::fnv1a;
use crate::state::{EntryKind, ProcessState, Role, ServerId, Snapshot};
use crate::trace::TraceKind;
use crate::world::World;
use rehearse_model::api::{
    AgentSelf, ApiError, AutopilotHealth, Member, RaftConfiguration, RaftServer, RaftState,
    RaftStats, SchedulerConfig, ServerHealth, SharedStr, SnapshotInfo,
};
use rehearse_model::versions::line_info;

/// A server's formatted names, Raft ID and addresses (by address generation), each held once
/// as a `SharedStr`: an observation lists them many times and clones only reference counts.
#[derive(Debug, Clone)]
pub(crate) struct Labels {
    /// Plan name (`s1`).
    name: SharedStr,
    uuid: SharedStr,
    addrs: Vec<SharedStr>,
    /// Node name (`<name>.global` on Nomad).
    node: SharedStr,
    /// Gossip addresses (the RPC address with the serf port), by address generation.
    serf_addrs: Vec<SharedStr>,
}

/// Why a request is not forwarded to a leader (`World::forwarded` turns it into the
/// `ApiError` the caller sees).
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The server called does not answer, and why.
    Unreachable(&'static str),
    /// It knows no leader, or cannot reach the one it knows.
    NoLeader,
    /// The leader has not established leadership.
    NotReady,
}

/// The port gossip addresses show (the RPC address with this port).
const SERF_PORT: u16 = 4648;

/// Server `id`'s address at address generation `g` on `port`: `10.0.<g>.<id + 1>:<port>`.
fn address_text(id: ServerId, g: u32, port: u16) -> SharedStr {
    format!("10.0.{g}.{}:{port}", id + 1).into()
}

impl World {
    /// RPC address of a server as peers know it (`10.0.<addr_gen>.<n>:<port>`).
    pub fn address(&self, id: ServerId) -> SharedStr {
        self.address_at(id, self.servers[id].addr_gen)
    }

    /// RPC address of server `id` at address generation `g` (kept in `labels`: every
    /// observation reads each server's address and ID, so they are formatted once).
    pub(crate) fn address_at(&self, id: ServerId, g: u32) -> SharedStr {
        match self.labels.get(id).and_then(|l| l.addrs.get(g as usize)) {
            Some(a) => a.clone(),
            None => address_text(id, g, self.rpc_port()),
        }
    }

    /// Raft server ID: a UUID under protocol 3, the address under protocol 2 (the protocol the
    /// server last ran with).
    pub fn raft_id(&self, id: ServerId) -> SharedStr {
        if self.servers[id].advertised_protocol < 3 {
            return self.address(id);
        }
        match self.labels.get(id) {
            Some(l) => l.uuid.clone(),
            None => self.uuid(id),
        }
    }

    fn uuid(&self, id: ServerId) -> SharedStr {
        let h = fnv1a(self.cfg.seed, self.servers[id].spec.name.as_bytes());
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            (h >> 4) & 0xfff,
            id
        )
        .into()
    }

    /// Formats every server's names, ID and addresses up to its current address generation.
    /// The set is shared (`Arc`): a cloned world (the explorer's checkpoints) shares it too.
    pub(crate) fn refresh_labels(&mut self) {
        let labels: Vec<Labels> = (0..self.servers.len())
            .map(|id| {
                let gens = 0..=self.servers[id].addr_gen;
                Labels {
                    name: self.servers[id].spec.name.as_str().into(),
                    uuid: self.uuid(id),
                    addrs: gens
                        .clone()
                        .map(|g| address_text(id, g, self.rpc_port()))
                        .collect(),
                    node: self.format_node_name(id),
                    serf_addrs: gens.map(|g| address_text(id, g, SERF_PORT)).collect(),
                }
            })
            .collect();
        self.labels = labels.into();
    }

    /// The plan name of a server (`s1`), as `server_name` but shared: a clone is a reference
    /// count, not a copy.
    pub fn server_label(&self, id: ServerId) -> SharedStr {
        match self.labels.get(id) {
            Some(l) => l.name.clone(),
            None => self.servers[id].spec.name.as_str().into(),
        }
    }

    fn node_name(&self, id: ServerId) -> SharedStr {
        match self.labels.get(id) {
            Some(l) => l.node.clone(),
            None => self.format_node_name(id),
        }
    }

    fn format_node_name(&self, id: ServerId) -> SharedStr {
        match self.cfg.product {
            rehearse_model::versions::Product::Nomad => {
                format!("{}.global", self.servers[id].spec.name).into()
            }
            rehearse_model::versions::Product::Consul => self.servers[id].spec.name.as_str().into(),
        }
    }

    /// Gossip address of a server (its RPC address with the serf port).
    fn serf_address(&self, id: ServerId) -> SharedStr {
        let g = self.servers[id].addr_gen;
        match self
            .labels
            .get(id)
            .and_then(|l| l.serf_addrs.get(g as usize))
        {
            Some(a) => a.clone(),
            None => address_text(id, g, SERF_PORT),
        }
    }

    /// Why `via` does not answer HTTP (it answers only while running), if it does not.
    fn not_answering(&self, via: ServerId) -> Option<&'static str> {
        match self.servers[via].proc {
            ProcessState::Running => None,
            ProcessState::Stopped | ProcessState::Crashed => Some("connection refused"),
            ProcessState::Starting => Some("connection refused (starting)"),
            ProcessState::Paused => Some("timeout (process not responding)"),
        }
    }

    /// The server answers HTTP only while running.
    fn answering(&self, via: ServerId) -> Result<(), ApiError> {
        match self.not_answering(via) {
            None => Ok(()),
            Some(why) => Err(ApiError::Unreachable {
                addr: self.node_name(via),
                why: why.into(),
            }),
        }
    }

    /// The leader a request through `via` is forwarded to, or why not, without building the
    /// error (`any_forward` tries every server and keeps no error).
    fn forward_target(&self, via: ServerId) -> Result<ServerId, Refusal> {
        if let Some(why) = self.not_answering(via) {
            return Err(Refusal::Unreachable(why));
        }
        let l = self.servers[via].vol.leader.ok_or(Refusal::NoLeader)?;
        let ok = self.servers[l].proc == ProcessState::Running
            && self.servers[l].vol.role == Role::Leader
            && !self.link_down(via, l);
        if !ok {
            return Err(Refusal::NoLeader);
        }
        // A leader that has not established leadership refuses (see `leadership`).
        if self.is_wedged(l) {
            return Err(Refusal::NotReady);
        }
        Ok(l)
    }

    /// The leader a request through `via` is forwarded to.
    pub(crate) fn forwarded(&self, via: ServerId) -> Result<ServerId, ApiError> {
        self.forward_target(via).map_err(|r| {
            let addr = self.node_name(via);
            match r {
                Refusal::Unreachable(why) => ApiError::Unreachable {
                    addr,
                    why: why.into(),
                },
                Refusal::NoLeader => ApiError::NoLeader { addr },
                Refusal::NotReady => ApiError::Rejected {
                    addr,
                    message: "Not ready to serve consistent reads".into(),
                },
            }
        })
    }

    fn link_down(&self, a: ServerId, b: ServerId) -> bool {
        a != b && !self.net.link_open(a, b)
    }

    /// `GET /v1/status/leader` through `via`.
    pub fn status_leader(&self, via: ServerId) -> Result<Option<SharedStr>, ApiError> {
        self.answering(via)?;
        Ok(self.servers[via].vol.leader.map(|l| self.address(l)))
    }

    /// The server `GET /v1/status/leader` through `via` names, by id rather than address (the
    /// address is that server's: addresses differ by server in their last octet); `None` when
    /// `via` does not answer or knows no leader. Observations read it every poll, so it builds
    /// neither the address nor an error.
    pub fn status_leader_id(&self, via: ServerId) -> Option<ServerId> {
        match self.not_answering(via) {
            None => self.servers[via].vol.leader,
            Some(_) => None,
        }
    }

    /// `GET /v1/status/peers` through `via` (its own configuration).
    pub fn status_peers(&self, via: ServerId) -> Result<Vec<SharedStr>, ApiError> {
        self.answering(via)?;
        let cfg = &self.servers[via].vol.config;
        Ok(cfg.iter().map(|p| self.entry_address(p)).collect())
    }

    /// `GET /v1/agent/members` through `via` (the global gossip view).
    pub fn members(&self, via: ServerId) -> Result<Vec<Member>, ApiError> {
        self.answering(via)?;
        let m = (0..self.servers.len()).map(|id| {
            let s = &self.servers[id];
            Member {
                name: self.node_name(id),
                addr: self.serf_address(id),
                status: s.serf,
                build: s.advertised,
                raft_vsn: s.advertised_protocol,
                id: self.raft_id(id),
                nonvoter: false,
            }
        });
        Ok(m.collect())
    }

    /// Server `id`'s serf status as any answering server's `members` lists it (its entry's
    /// `status`), without building the list.
    pub fn serf_status(&self, id: ServerId) -> rehearse_model::api::SerfStatus {
        self.servers[id].serf
    }

    /// `GET /v1/operator/raft/configuration` (forwarded to the leader).
    pub fn raft_configuration(&self, via: ServerId) -> Result<RaftConfiguration, ApiError> {
        let l = self.forwarded(via)?;
        let s = &self.servers[l];
        // A stale raft-protocol-2 address (see `readdress`) is listed under its own ID, the old
        // address, and no gossip member matches it: Nomad shows its node as `(unknown)`.
        let stale = |p: &crate::state::Peer| !self.is_server(p);
        let servers = s.vol.config.iter().map(|p| RaftServer {
            id: if stale(p) || p.by_address {
                self.entry_address(p)
            } else {
                self.raft_id(p.id)
            },
            node: if stale(p) {
                "(unknown)".into()
            } else {
                self.node_name(p.id)
            },
            address: self.entry_address(p),
            leader: p.id == l,
            voter: p.voter,
            raft_protocol: self.servers[p.id].advertised_protocol,
        });
        Ok(RaftConfiguration {
            index: s.vol.config_index,
            servers: servers.collect(),
        })
    }

    /// `GET /v1/operator/autopilot/health` (forwarded to the leader): its last computed health,
    /// which can be up to one refresh interval old.
    pub fn autopilot_health(&self, via: ServerId) -> Result<AutopilotHealth, ApiError> {
        let l = self.forwarded(via)?;
        if self.servers.iter().any(|s| s.advertised_protocol < 3) {
            return Err(ApiError::Unsupported {
                addr: self.node_name(via),
                what: "autopilot health needs raft protocol 3 on every server (HTTP 500)".into(),
            });
        }
        let fresh = self.ap.leader == Some((l, self.servers[l].disk.term));
        let config = &self.servers[l].vol.config;
        let servers: Vec<ServerHealth> = config
            .iter()
            .map(|p| {
                let h = if fresh {
                    self.ap.health.get(&p.id)
                } else {
                    None
                };
                let h = h.cloned().unwrap_or_default();
                let s = &self.servers[p.id];
                ServerHealth {
                    id: self.raft_id(p.id),
                    name: self.node_name(p.id),
                    address: self.address(p.id),
                    serf_status: s.serf,
                    version: s.spec.version,
                    leader: p.id == l,
                    last_contact_ms: h.last_contact_ns.map(|n| n / rehearse_model::time::MS),
                    last_term: h.last_term,
                    last_index: h.last_index,
                    healthy: h.healthy,
                    voter: p.voter,
                    stable_since_ms: h.stable_since.map(|t| t.as_millis()),
                }
            })
            .collect();
        let voters = || servers.iter().filter(|s| s.voter);
        let healthy_voters = voters().filter(|s| s.healthy).count() as i64;
        Ok(AutopilotHealth {
            healthy: servers.iter().all(|s| s.healthy),
            // `reference/nomad.md` gives "healthy voters − quorum"; the code behind it (Consul
            // 1.8's autopilot and hashicorp/raft-autopilot, which Nomad uses) only sets it when
            // there are more healthy voters than the quorum, so it reads 0, never less.
            failure_tolerance: (healthy_voters - quorum(voters().count()) as i64).max(0),
            leader: Some(self.raft_id(l)),
            voters: voters().map(|s| s.id.clone()).collect(),
            servers,
        })
    }

    /// `GET /v1/agent/self` of a server: its own live Raft statistics.
    pub fn agent_self(&self, id: ServerId) -> Result<AgentSelf, ApiError> {
        self.answering(id)?;
        let s = &self.servers[id];
        let state = match s.vol.role {
            Role::Follower => RaftState::Follower,
            Role::Candidate => RaftState::Candidate,
            Role::Leader => RaftState::Leader,
        };
        let last_contact_ms = match s.vol.role {
            Role::Leader => Some(0),
            _ => s
                .vol
                .last_contact
                .map(|t| self.now.since(t) / rehearse_model::time::MS),
        };
        Ok(AgentSelf {
            name: self.node_name(id),
            version: s.spec.version,
            raft: RaftStats {
                state,
                term: s.disk.term,
                last_log_index: s.disk.last_index(),
                last_log_term: s.disk.last_term(),
                commit_index: s.vol.commit,
                applied_index: s.vol.applied,
                protocol_version: s.spec.raft_protocol,
                num_peers: s.vol.config.len().saturating_sub(1) as u64,
                last_contact_ms,
            },
        })
    }

    /// `GET /v1/operator/snapshot`: the leader's state as of its applied index.
    pub fn snapshot_save(&mut self, via: ServerId) -> Result<SnapshotInfo, ApiError> {
        let l = self.forwarded(via)?;
        let s = &self.servers[l];
        let index = s.vol.applied;
        let term = s.disk.term_at(index).unwrap_or(s.disk.term);
        let fsm = s.vol.fsm_writes;
        let bytes = [index, term, fsm].map(u64::to_le_bytes).concat();
        let info = SnapshotInfo {
            index,
            term,
            format: self.snapshot_format(l),
            written_by: s.spec.version,
            digest: format!("{:016x}", fnv1a(0, &bytes)),
            size_bytes: (self.cfg.workload.initial_state_entries + fsm) * 256,
        };
        self.trace(TraceKind::Fault {
            what: format!("snapshot save at index {index}"),
        });
        Ok(info)
    }

    /// `PUT /v1/operator/snapshot`: restores the leader's state to a saved snapshot. Followers
    /// catch up by InstallSnapshot. Refused when the snapshot is newer than the leader can read
    /// (hashicorp/nomad#20072).
    pub fn snapshot_restore(&mut self, via: ServerId, snap: &SnapshotInfo) -> Result<(), ApiError> {
        let l = self.forwarded(via)?;
        if snap.format > self.snapshot_format(l) {
            return Err(ApiError::Rejected {
                addr: self.node_name(via),
                message: "Unrecognized snapshot type".into(),
            });
        }
        // The restore is itself a committed operation: mark it in the log, then replace the
        // leader's state so followers need InstallSnapshot.
        let marker = self.append_local(l, EntryKind::Noop);
        let s = &mut self.servers[l];
        let restored_writes = snap.index.min(s.vol.fsm_writes);
        let fresh = Snapshot {
            index: marker,
            term: s.disk.term,
            config: s.vol.config.clone(),
            format: snap.format,
            max_schema: s.disk.max_schema(),
            fsm_writes: restored_writes,
        };
        s.disk.snapshot = Some(fresh);
        s.disk.log.clear();
        s.disk.start = marker + 1;
        s.vol.fsm_writes = restored_writes;
        self.trace(TraceKind::Fault {
            what: format!("snapshot restore of index {}", snap.index),
        });
        self.broadcast(l);
        Ok(())
    }

    /// `PUT /v1/operator/raft/transfer-leadership` (Nomad 1.7+).
    pub fn transfer_leadership(
        &mut self,
        via: ServerId,
        target: Option<ServerId>,
    ) -> Result<(), ApiError> {
        let l = self.forwarded(via)?;
        let version = self.servers[l].spec.version;
        let api = line_info(self.cfg.product, version).is_ok_and(|i| i.transfer_leadership_api);
        let addr = self.node_name(via);
        if !api {
            return Err(ApiError::Unsupported {
                addr,
                what: format!("transfer-leadership needs Nomad 1.7+ (leader runs {version})"),
            });
        }
        if !self.start_transfer(l, target) {
            return Err(ApiError::Rejected {
                addr,
                message: "no voter to transfer leadership to".into(),
            });
        }
        self.trace(TraceKind::Fault {
            what: format!("transfer leadership from {l} to {target:?}"),
        });
        Ok(())
    }

    /// `GET /v1/operator/scheduler/configuration` (Nomad only).
    pub fn scheduler_config(&self, via: ServerId) -> Result<SchedulerConfig, ApiError> {
        self.forwarded(via)?;
        if self.cfg.product != rehearse_model::versions::Product::Nomad {
            return Err(ApiError::Unsupported {
                addr: self.node_name(via),
                what: "Consul has no scheduler configuration".into(),
            });
        }
        Ok(SchedulerConfig {
            scheduler_algorithm: "binpack".into(),
            preemption_service: false,
            pause_eval_broker: false,
            reject_job_registration: false,
            modify_index: self.scheduler_index(),
        })
    }

    /// `POST /v1/node/:id/drain` for the client agent on a server, without a deadline.
    pub fn drain(&mut self, id: ServerId) -> Result<(), ApiError> {
        self.drain_with_deadline(id, None)
    }

    /// `POST /v1/node/:id/drain` with the drain strategy's deadline (`nomad node drain
    /// -deadline`). With jobs declared, when the deadline passes the leader's drainer stops
    /// every allocation left on the node at once (see `workload`); without jobs the deadline
    /// is not used (the constant drain model of `clients` applies).
    pub fn drain_with_deadline(
        &mut self,
        id: ServerId,
        deadline_ns: Option<u64>,
    ) -> Result<(), ApiError> {
        if !self.servers[id].spec.also_client {
            return Err(ApiError::Rejected {
                addr: self.node_name(id),
                message: "no client node on this server".into(),
            });
        }
        let l = self.forwarded_or_any(id)?;
        // With jobs declared the drain is the workload plane's: the leader writes it, the
        // drainer migrates the node's allocations, and it completes when the node runs none.
        if self.plane_drain(id, l, deadline_ns) {
            self.trace(TraceKind::Fault {
                what: format!("drain {}", self.servers[id].spec.name),
            });
            return Ok(());
        }
        let (lo, hi) = (self.cfg.clients.drain_ns_min, self.cfg.clients.drain_ns_max);
        let d = self.drain_delay(lo, hi);
        self.servers[id].drain_done_at = Some(self.now.plus(d));
        self.trace(TraceKind::Fault {
            what: format!("drain {}", self.servers[id].spec.name),
        });
        Ok(())
    }

    /// The leader a request through `via` is forwarded to, else through the first server that
    /// forwards it (the node endpoints answer through any server).
    pub(crate) fn forwarded_or_any(&self, via: ServerId) -> Result<ServerId, ApiError> {
        match self.forward_target(via) {
            Ok(l) => Ok(l),
            Err(_) => self.any_forward(),
        }
    }

    fn any_forward(&self) -> Result<ServerId, ApiError> {
        (0..self.servers.len())
            .find_map(|v| self.forward_target(v).ok())
            .ok_or_else(|| ApiError::NoLeader {
                addr: "cluster".into(),
            })
    }

    /// Whether the drain of a server's client has finished.
    pub fn drain_complete(&self, id: ServerId) -> bool {
        self.servers[id]
            .drain_done_at
            .is_some_and(|t| t <= self.now)
    }

    /// Milliseconds on the simulated clock (the observer clock of operator answers).
    pub fn clock_ms(&self) -> u64 {
        self.now_ms()
    }
}
