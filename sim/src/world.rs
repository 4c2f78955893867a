//! The simulated world: an event queue ordered by (time, sequence) (`queue`), the servers, the
//! network (`network`), gossip, autopilot, the workload and the invariant checks, with the operator surface
//! on top.
//!
//! Simplifications (each a deliberate departure, kept small):
//! - Gossip has one global view (not one per member) with the detection delays of
//!   memberlist; partitions do not mark members failed (gossip routes around partial
//!   partitions; a fully isolated server is still marked failed when its process is down).
//! - Operator calls are instantaneous and the operator reaches every running server.
//! - Messages to a paused process are dropped (real TCP would buffer, then time out).
//! - A wiped data dir keeps the server's identity (real Nomad would mint a new node ID).
//! - Serf tags (`build`, `raft_vsn`) are those of the server's last successful start; a binary
//!   that never started is not advertised, as gossip keeps a failed member's last tags.
//! - The FSM is a count of workload writes; the invariant `fsm_state_lost` compares it with
//!   the committed log. Nomad Enterprise's license-reporting entry lives in the log only (a
//!   snapshot does not carry it), so only servers that apply it from the log panic on it.
//! - Autopilot's contact threshold is at least two heartbeat intervals: with raft_multiplier 5
//!   the leader heartbeats every 0.5–1 s, yet real Consul reports such servers healthy with the
//!   200 ms default (consul-baseline.md), because any replication traffic refreshes contact.
//! - Quiet periods are not simulated event by event (module `steady`): while the cluster is
//!   steady, heartbeats, follower timers and lease checks are computed when something reads or
//!   changes the state, and a write whose round trips cannot meet anything else is carried out
//!   in closed form. Departures from the event-by-event run, all of measure zero or invisible:
//!   (1) the latencies of those messages come from a stateless function of the run seed
//!   instead of the sequential network stream (same distribution); (2) the order of a
//!   heartbeat tick and a message due at the same nanosecond is fixed (tick first) inside an
//!   episode; (3) a follower applies entries a closed-form write taught it to commit when it is
//!   next settled, with the clock at the time it learned them — only a violation's timestamp
//!   could tell (and such a follower holds the leader's log, so none can arise).

use crate::config::SimConfig;
use crate::network::Network;
use crate::oracle::{Acked, Canon, Oracle};
use crate::raft::{Msg, quorum};
use crate::rng::SimRng;
use crate::state::{
    BadBinary, Disk, Entry, EntryKind, Peer, ProcessState, Role, Server, ServerId, StopMode,
    Volatile,
};
use crate::steady::Steady;
use crate::trace::{Trace, TraceKind};
use rehearse_model::api::SerfStatus;
use rehearse_model::time::{MS, SEC, SimTime};
use rehearse_model::versions::{
    KnownIssueKind, Product, Version, has_issue_for, line_info, reads_license_reporting,
};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::VecDeque;

/// Most servers a world may have.
pub const MAX_SERVERS: usize = 15;
/// Most events pending at once; more means a runaway feedback loop (asserted).
const QUEUE_MAX: usize = 1_000_000;
/// Highest workload rate, writes per simulated second (`SimConfig::validate` refuses more,
/// `set_write_rate` clamps to it): with `WRITE_TIMEOUT_NS` it bounds the pending writes.
pub const MAX_WRITES_PER_SEC: f64 = 10_000.0;
/// How long the workload's client waits for a write's answer before it gives up and counts
/// the write as failed, as a real client does (an HTTP client's timeout; Nomad and Consul
/// servers themselves give up on a Raft apply that could not even be enqueued within 30 s).
/// A write the cluster commits later is in the log, but it was never acknowledged to anyone,
/// so it is not an acknowledged write that must survive. This bounds the pending writes by
/// construction: about `MAX_WRITES_PER_SEC` × 30 s of them, whatever the faults.
pub const WRITE_TIMEOUT_NS: u64 = 30 * SEC;
/// Most writes in flight at once: twice what the highest rate submits in `WRITE_TIMEOUT_NS`
/// (arrivals are random, so a window can hold a few more than the mean). Past it the oldest
/// is failed, as a client with a bounded request pool would: a hard bound whatever the rate.
const PENDING_MAX: usize = 2 * (MAX_WRITES_PER_SEC as usize) * ((WRITE_TIMEOUT_NS / SEC) as usize);
const _: () = assert!(PENDING_MAX < QUEUE_MAX);

/// Per-server timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimerKind {
    /// Follower heartbeat-timeout check.
    Follower,
    /// Candidate election timeout.
    Candidate,
    /// Leader heartbeat tick.
    Heartbeat,
    /// Leader lease check.
    Lease,
    /// Snapshot check.
    Snapshot,
    /// Abort a leadership transfer.
    TransferDeadline,
}

#[derive(Debug, Clone)]
enum Ev {
    Msg {
        from: ServerId,
        to: ServerId,
        msg: Msg,
    },
    Timer {
        server: ServerId,
        inc: u64,
        generation: u64,
        kind: TimerKind,
    },
    Boot {
        server: ServerId,
        inc: u64,
    },
    CrashLoop {
        server: ServerId,
        inc: u64,
    },
    Serf {
        server: ServerId,
        generation: u64,
        status: SerfStatus,
    },
    Workload,
    /// A health refresh of the autopilot run by `leader` in `term`.
    AutopilotHealth {
        leader: ServerId,
        term: u64,
    },
    AutopilotReconcile,
    /// The stats fetch from a server that did not answer has failed.
    AutopilotStatsTimeout {
        server: ServerId,
        leader: (ServerId, u64),
    },
    /// A client node's heartbeat timer on the leader (see `clients`).
    ClientTtl {
        node: u32,
        generation: u64,
    },
    /// A workload-plane event (see `workload`).
    Plane(crate::workload::PlaneEv),
}

/// Autopilot's record of one server (kept by the leader, refreshed every health interval).
#[derive(Debug, Clone, Default)]
pub(crate) struct HealthRec {
    pub healthy: bool,
    pub stable_since: Option<SimTime>,
    pub last_contact_ns: Option<u64>,
    pub last_term: u64,
    pub last_index: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Autopilot {
    pub leader: Option<(ServerId, u64)>,
    pub health: ServerMap<HealthRec>,
    pub refreshed: bool,
}

/// A map from server to `T`, indexed by the server's id (at most `MAX_SERVERS`): the
/// autopilot refresh reads and writes every server's record every interval.
#[derive(Debug, Clone)]
pub(crate) struct ServerMap<T>([Option<T>; MAX_SERVERS]);

impl<T> Default for ServerMap<T> {
    fn default() -> Self {
        ServerMap(std::array::from_fn(|_| None))
    }
}

impl<T> ServerMap<T> {
    pub fn get(&self, id: &ServerId) -> Option<&T> {
        self.0.get(*id)?.as_ref()
    }

    pub fn get_mut(&mut self, id: &ServerId) -> Option<&mut T> {
        self.0.get_mut(*id)?.as_mut()
    }

    /// Panics past `MAX_SERVERS` (a world has no such server).
    pub fn insert(&mut self, id: ServerId, v: T) {
        self.0[id] = Some(v);
    }
}

/// A safety invariant that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Which invariant: election_safety, leader_completeness, state_machine_safety,
    /// acknowledged_write_lost.
    pub invariant: String,
    /// When.
    pub at: SimTime,
    /// Seed of the run.
    pub seed: u64,
    /// Details.
    pub detail: String,
}

/// Counters of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Candidacies started (including pre-vote rounds).
    pub elections: u64,
    /// Times the cluster got a different leader.
    pub leader_changes: u64,
    /// Total time with no leader (after the first leader was elected).
    pub no_leader_ns: u64,
    /// Total time without a quorum of running, connected voters.
    pub quorum_lost_ns: u64,
    /// Servers that panicked on an entry of an unknown schema.
    pub skew_crashes: u64,
    /// Servers that could not load a snapshot written by a newer version (on start, or sent by
    /// InstallSnapshot): "Unrecognized snapshot type" (hashicorp/nomad#20072).
    #[serde(default)]
    pub snapshot_refusals: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Events processed (the heartbeats, timers and messages a steady period elides are not
    /// processed events; the messages are still counted in `messages`).
    pub events: u64,
}

/// Workload counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadStats {
    /// Writes submitted.
    pub submitted: u64,
    /// Writes acknowledged (committed and applied on the leader).
    pub acked: u64,
    /// Writes refused or abandoned (no leader, leader stepped down, transfer in progress).
    pub failed: u64,
    /// Acknowledged writes missing from the current leader's log.
    pub lost_acked: u64,
}

/// Why a server could not boot.
struct BootFailure {
    /// The reason, as the server would log it.
    why: String,
    /// Its data was written by a newer version (counted in `Metrics::snapshot_refusals`).
    newer_data: bool,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u64,
    leader: ServerId,
    /// When it was submitted (for `ack_latency_histogram`).
    at: SimTime,
}

/// Buckets of `World::ack_latency_histogram`: 0.25 ms wide, the last one open-ended.
pub const ACK_BUCKETS: usize = 256;
/// Width of one bucket of `World::ack_latency_histogram`.
pub const ACK_BUCKET_NS: u64 = 250_000;

/// The workload's writes from submission to acknowledgement.
#[derive(Clone)]
struct Acks {
    /// Submitted, not yet acknowledged, failed or timed out, in submission (and so id)
    /// order: at most `MAX_WRITES_PER_SEC` × `WRITE_TIMEOUT_NS` of them.
    pending: VecDeque<Pending>,
    /// Acknowledged writes by latency from submission (see `ack_latency_histogram`).
    hist: Box<[u32; ACK_BUCKETS]>,
    stats: WorkloadStats,
}

impl Acks {
    /// Acknowledges write `id`, committed at `(index, term)`, if it is still pending and its
    /// client has not given up on it.
    fn record(&mut self, now: SimTime, id: u64, at: (u64, u64), acked: &mut Acked) {
        self.expire(now);
        // Pending writes are in id order; the one answered is usually the oldest, taken
        // without a search.
        let p = if self.pending.front().is_some_and(|p| p.id == id) {
            self.pending.pop_front()
        } else {
            let pos = self.pending.binary_search_by_key(&id, |p| p.id);
            pos.ok().and_then(|pos| self.pending.remove(pos))
        };
        if let Some(p) = p {
            let bucket = (now.since(p.at) / ACK_BUCKET_NS) as usize;
            self.hist[bucket.min(ACK_BUCKETS - 1)] += 1;
            acked.push(at.0, at.1);
            self.stats.acked += 1;
        }
    }

    /// A new write, submitted now to leader `l`.
    fn submit(&mut self, now: SimTime, id: u64, leader: ServerId) {
        self.expire(now);
        if self.pending.len() >= PENDING_MAX {
            self.pending.pop_front();
            self.stats.failed += 1;
        }
        self.pending.push_back(Pending {
            id,
            leader,
            at: now,
        });
    }

    /// Fails the writes whose client has waited `WRITE_TIMEOUT_NS` (the oldest come first).
    fn expire(&mut self, now: SimTime) {
        while let Some(p) = self.pending.front() {
            if now.since(p.at) < WRITE_TIMEOUT_NS {
                break;
            }
            self.pending.pop_front();
            self.stats.failed += 1;
        }
    }
}

/// The simulated cluster.
#[derive(Clone)]
pub struct World {
    pub(crate) cfg: SimConfig,
    pub(crate) now: SimTime,
    queue: crate::queue::EventQueue,
    /// Events waiting in the queue, by slot; `free` lists the empty slots.
    slab: Vec<Option<Ev>>,
    free: Vec<u32>,
    /// The pending workload arrival (time, sequence number), kept beside the heap: one comes
    /// per write, so it skips the heap's push and pop. It takes its place in the (time,
    /// sequence) order like any queued event. A second one pending at once (the rate was set
    /// to 0 and back while one waited) goes on the heap.
    workload_at: Option<(SimTime, u64)>,
    seq: u64,
    pub(crate) servers: Vec<Server>,
    pub(crate) rng_timers: SimRng,
    rng_proc: SimRng,
    /// The links between the servers, their latency and loss (see `network`).
    pub(crate) net: Network,
    /// Formatted IDs and addresses (see `ops::Labels`).
    pub(crate) labels: std::sync::Arc<[crate::ops::Labels]>,
    pub(crate) metrics: Metrics,
    trace: Trace,
    violations: Vec<Violation>,
    /// The safety oracle: leaders by term, the canonical log, the acknowledged writes.
    oracle: Oracle,
    acks: Acks,
    next_write: u64,
    write_rate: f64,
    /// The mean gap between writes at `write_rate`, in nanoseconds (0 when stopped).
    write_gap: u64,
    cur_leader: Option<ServerId>,
    ever_led: bool,
    since: SimTime,
    quorum_now: bool,
    quorum_since: SimTime,
    pub(crate) ap: Autopilot,
    scheduler_modify_index: u64,
    /// Leaders that won but could not establish leadership (see `leadership`).
    pub(crate) wedge: crate::leadership::Wedge,
    profile: [u64; EV_KINDS.len()],
    /// The current steady period, if the cluster is in one (see `steady`).
    pub(crate) steady: Option<Box<Steady>>,
    /// How far the caller lets the world run before it reads it (the `run_until` target):
    /// closed-form rounds must end by then.
    pub(crate) limit: SimTime,
    /// Message events in the queue.
    pub(crate) msgs_in_flight: u64,
    /// Per server: messages queued from it or to it (a slow follower's lane takes them over
    /// when they are all on its link with the leader, see `steady::lane`).
    pub(crate) msgs_by: [u32; MAX_SERVERS],
    /// Whether any server's disk delays its writes (`set_disk_delay`).
    slow_disks: bool,
    /// Whether quiet periods may be elided (on unless switched off for validation).
    pub(crate) elision: bool,
    /// Steady periods entered so far (the exact check of a lane tells periods apart by it).
    pub(crate) steady_entered: u64,
    /// While a steady period runs an episode: its local message queue, in delivery order.
    pub(crate) episode: Option<VecDeque<LocalMsg>>,
    /// The last episode's emptied queue, kept for the next one (its allocation is reused).
    pub(crate) episode_spare: VecDeque<LocalMsg>,
    pub(crate) episode_seq: u64,
    /// Write episodes carried out in closed form (`write_episode`), for the exact check.
    pub(crate) closed_episodes: u64,
    /// Client nodes and the leader's heartbeat timers (see `clients`).
    pub(crate) clients: crate::clients::Clients,
    /// The workload plane, when jobs are declared (see `workload`).
    pub(crate) plane: Option<Box<crate::workload::Plane>>,
    /// Which configuration entries are the servers they name now, as the Raft nodes see it
    /// (kept beside `servers`: set where an address or an advertised protocol changes).
    pub(crate) dir: crate::node::Directory,
    /// Spare effects buffers for `with_node` (one per nesting level, reused).
    pub(crate) effects: Vec<Vec<crate::node::Effect>>,
    /// Check each closed-form write round against the same round message by message (see
    /// `set_exact_check`).
    pub(crate) exact_check: bool,
    /// Closed-form write rounds the exact check has checked.
    pub(crate) exact_checked: u64,
    /// The highest schema any entry written in this world needs (1 until a leader writes a
    /// schema entry in `maybe_write_schema`, the only place one is made): no log holds a
    /// higher one, so a snapshot at or above it answers for its log (`max_schema_of`).
    schema_ceiling: u32,
}

/// A message on an episode's local queue (see `steady`).
#[derive(Debug, Clone)]
pub(crate) struct LocalMsg {
    pub at: SimTime,
    pub seq: u64,
    pub from: ServerId,
    pub to: ServerId,
    pub msg: Msg,
}

/// Names of the event kinds counted by `World::event_profile`.
const EV_KINDS: [&str; 19] = [
    "msg:vote",
    "msg:vote_resp",
    "msg:append(hb)",
    "msg:append(entries)",
    "msg:append_resp",
    "msg:install",
    "msg:timeout_now",
    "timer:follower",
    "timer:candidate",
    "timer:heartbeat",
    "timer:lease",
    "timer:snapshot",
    "timer:transfer",
    "boot/crashloop",
    "serf",
    "workload",
    "autopilot",
    "client-ttl",
    "plane",
];

fn msg_kind(msg: &Msg) -> usize {
    match msg {
        Msg::Vote { .. } => 0,
        Msg::VoteResp { .. } => 1,
        Msg::Append { entries, .. } if entries.is_empty() => 2,
        Msg::Append { .. } => 3,
        Msg::AppendResp { .. } => 4,
        Msg::Install { .. } => 5,
        Msg::TimeoutNow { .. } => 6,
    }
}

fn ev_kind(ev: &Ev) -> usize {
    match ev {
        Ev::Msg { msg, .. } => msg_kind(msg),
        Ev::Timer { kind, .. } => 7 + *kind as usize,
        Ev::Boot { .. } | Ev::CrashLoop { .. } => 13,
        Ev::Serf { .. } => 14,
        Ev::Workload => 15,
        Ev::ClientTtl { .. } => 17,
        Ev::Plane(_) => 18,
        _ => 16,
    }
}

/// `World::apply_plain` on a follower for the entries the canonical log already holds (the
/// usual case: the leader applied them first), as one pass over the log beside the canonical
/// log, the write count checked once. Same checks, same stops; returns how many it applied.
fn apply_known(s: &mut Server, upto: u64, canon: &Canon, budget: usize) -> usize {
    let first = s.vol.applied + 1;
    let start = s.disk.log_start();
    let last = upto.min(canon.len());
    if first < start || first > last {
        return 0;
    }
    // Below the canonical window: the general loop reads the archive.
    let Some((canon_run, writes_run)) = canon.window_from(first) else {
        return 0;
    };
    // Indexes first..=last are in the log (last <= last_index) and in the canonical log.
    let n = ((last - first + 1) as usize).min(budget);
    let from = (first - start) as usize;
    let Some(log) = s.disk.log[..].get(from..from + n) else {
        return 0;
    };
    // The run of writes and no-ops that are the canonical entries (state-machine safety).
    let matched = log
        .iter()
        .zip(&canon_run[..n])
        .take_while(|&(e, &c)| e.plain_digest().is_some_and(|d| (e.term, d) == c))
        .count();
    // The FSM check after each write: the count must be the canonical one. The run is the
    // canonical entries, so it is after every write if it is before the run; if it is not
    // (and not reported yet), the first write stops the run.
    let before = canon.writes_at(first - 1).unwrap_or(0);
    let done = if s.fsm_reported || s.vol.fsm_writes == before {
        matched
    } else {
        log[..matched]
            .iter()
            .take_while(|e| e.kind == EntryKind::Noop)
            .count()
    };
    if done > 0 {
        s.vol.applied += done as u64;
        s.vol.fsm_writes += writes_run[done - 1] - before;
    }
    done
}

/// Most entries one `apply_committed` call applies; the rest are applied on the next call.
pub(crate) const APPLY_LIMIT: usize = 1 << 16;

/// The mean gap between writes at `rate` writes per second, in nanoseconds (0 when stopped).
fn write_gap(rate: f64) -> u64 {
    if rate > 0.0 { (1e9 / rate) as u64 } else { 0 }
}

/// The servers of `cfg`, stopped, each with the bootstrap configuration (every server a
/// voter) at index 1 of its log, which has room for `log_capacity` entries.
fn bootstrapped_servers(cfg: &SimConfig, log_capacity: usize) -> Vec<Server> {
    let n = cfg.servers.len();
    let peers: Vec<Peer> = (0..n)
        .map(|id| Peer {
            id,
            voter: true,
            addr_gen: 0,
            by_address: cfg.servers[id].raft_protocol < 3,
        })
        .collect();
    let writes_version_file = cfg.product == Product::Nomad;
    let server = |spec: &crate::ServerSpec| {
        let mut log = Vec::with_capacity(log_capacity);
        // hashicorp/raft BootstrapCluster: the configuration at index 1, term 1.
        log.push(Entry {
            term: 1,
            kind: EntryKind::Config(peers.as_slice().into()),
        });
        let disk = Disk {
            term: 1,
            log: log.into(),
            // Every Nomad line in the catalog (1.3+) has written the version file already.
            raft_version_file: writes_version_file.then_some(spec.raft_protocol),
            ..Disk::default()
        };
        let vol = Volatile::boot(n, &disk, SimTime::ZERO);
        Server {
            spec: spec.clone(),
            proc: ProcessState::Stopped,
            incarnation: 0,
            disk,
            vol,
            addr_gen: 0,
            bad_binary: None,
            disk_delay_ns: 0,
            serf: SerfStatus::Alive,
            serf_gen: 0,
            drain_done_at: None,
            paused_from: None,
            advertised: spec.version,
            advertised_protocol: spec.raft_protocol,
            fsm_reported: false,
            boots: 0,
            installs: 0,
        }
    };
    cfg.servers.iter().map(server).collect()
}

/// Errors from building or driving a world.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The configuration is invalid; the message names the field.
    #[error("invalid simulation config: {0}")]
    Config(String),
    /// An operation is not possible in the server's current state.
    #[error("{0}")]
    Invalid(String),
}

impl World {
    /// Builds a world and boots every server as a bootstrapped voter (bootstrap_expect).
    pub fn new(cfg: SimConfig) -> Result<World, SimError> {
        cfg.validate()?;
        // Room for the log a server keeps between snapshots (SnapshotThreshold + TrailingLogs),
        // reserved once: growing it by doubling copied every entry again and again. Memory the
        // log never reaches is never touched. (Twice that room, for compacted entries to stay
        // in place longer, made no difference: see `raft_log`.)
        let between = (cfg.raft.snapshot_threshold + cfg.raft.trailing_logs + 1024) as usize;
        let between = between.min(1 << 20);
        let servers = bootstrapped_servers(&cfg, between);
        let mut w = World::stopped(cfg, servers, between);
        let n = w.servers.len();
        for id in 0..n {
            let s = &w.servers[id];
            w.dir.set(id, s.addr_gen, s.advertised_protocol);
        }
        for id in 0..n {
            w.start(id);
        }
        w.refresh_labels();
        w.schedule_workload();
        let ri = w.cfg.autopilot.reconcile_interval_ns;
        w.push(ri, Ev::AutopilotReconcile);
        Ok(w)
    }

    /// A world at time zero with `servers` stopped, nothing queued, and its streams, network,
    /// oracle (room for `window` canonical entries), clients and workload plane from `cfg`.
    fn stopped(cfg: SimConfig, servers: Vec<Server>, window: usize) -> World {
        let seed = cfg.seed;
        let write_rate = cfg.workload.writes_per_sec;
        let client_version = cfg.clients.version.unwrap_or(cfg.servers[0].version);
        let clients = crate::clients::Clients::new(cfg.clients.count, client_version, seed);
        let plane = (!cfg.jobs.is_empty()).then(|| {
            let also: Vec<bool> = cfg.servers.iter().map(|s| s.also_client).collect();
            let versions: Vec<_> = cfg.servers.iter().map(|s| s.version).collect();
            Box::new(crate::workload::Plane::new(
                cfg.clients.count,
                &also,
                &versions,
            ))
        });
        World {
            servers,
            now: SimTime::ZERO,
            queue: crate::queue::EventQueue::default(),
            slab: Vec::new(),
            free: Vec::new(),
            workload_at: None,
            seq: 0,
            rng_timers: SimRng::child(seed, "timers"),
            rng_proc: SimRng::child(seed, "process"),
            net: Network::new(seed, cfg.net.clone()),
            labels: Vec::new().into(),
            metrics: Metrics::default(),
            trace: Trace::default(),
            violations: Vec::new(),
            // The canonical window grows with every committed entry: reserved like the logs.
            oracle: Oracle::with_capacity(window),
            acks: Acks {
                pending: VecDeque::new(),
                hist: Box::new([0; ACK_BUCKETS]),
                stats: WorkloadStats::default(),
            },
            next_write: 0,
            write_rate,
            write_gap: write_gap(write_rate),
            cur_leader: None,
            ever_led: false,
            since: SimTime::ZERO,
            quorum_now: false,
            quorum_since: SimTime::ZERO,
            ap: Autopilot::default(),
            scheduler_modify_index: 1,
            wedge: Default::default(),
            profile: [0; EV_KINDS.len()],
            steady: None,
            limit: SimTime::ZERO,
            msgs_in_flight: 0,
            msgs_by: [0; MAX_SERVERS],
            slow_disks: false,
            episode: None,
            episode_spare: VecDeque::new(),
            episode_seq: 0,
            closed_episodes: 0,
            elision: true,
            steady_entered: 0,
            clients,
            plane,
            dir: crate::node::Directory::default(),
            effects: Vec::new(),
            exact_check: false,
            exact_checked: 0,
            schema_ceiling: 1,
            cfg,
        }
    }

    /// The configuration the world was built from.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.cfg.seed
    }

    /// Current simulated time.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Switches the quiet-period elision (module `steady`) on or off; it is on by default and
    /// changes no behaviour, only cost. Off, every heartbeat, timer and message is an event (the
    /// equivalence tests run both ways).
    pub fn set_quiet_elision(&mut self, on: bool) {
        self.leave_steady();
        self.elision = on;
    }

    /// Switches the exact check of the quiet-period elision on or off (off by default): each
    /// closed-form write round (module `steady`) is run again from a copy of the world taken
    /// before it, message by message through the Raft handlers with the same latencies, and
    /// every server's Raft state must come out the same; a difference panics, naming the
    /// field. Slow (a copy of the world per write): for tests.
    pub fn set_exact_check(&mut self, on: bool) {
        self.exact_check = on;
    }

    /// Closed-form write rounds the exact check has checked so far.
    pub fn exact_checked(&self) -> u64 {
        self.exact_checked
    }

    /// Events processed so far, by kind (a profile of where simulation effort goes).
    pub fn event_profile(&self) -> Vec<(&'static str, u64)> {
        EV_KINDS.iter().copied().zip(self.profile).collect()
    }

    /// Number of servers.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Server id by name (`s1` or `s1.global`).
    pub fn server_id(&self, name: &str) -> Option<ServerId> {
        let base = name.split('.').next().unwrap_or(name);
        self.servers.iter().position(|s| s.spec.name == base)
    }

    /// Name of a server.
    pub fn server_name(&self, id: ServerId) -> &str {
        &self.servers[id].spec.name
    }

    /// Process state of a server.
    pub fn process_state(&self, id: ServerId) -> ProcessState {
        self.servers[id].proc
    }

    /// Binary version installed on a server.
    pub fn version(&self, id: ServerId) -> Version {
        self.servers[id].spec.version
    }

    // ---- the event loop ----

    fn push(&mut self, delay_ns: u64, ev: Ev) {
        assert!(self.queue.len() < QUEUE_MAX, "event queue overflow");
        if let Ev::Msg { from, to, .. } = ev {
            self.msgs_in_flight += 1;
            self.msgs_by[from] += 1;
            self.msgs_by[to] += 1;
        }
        self.seq += 1;
        let at = self.now.plus(delay_ns);
        if matches!(ev, Ev::Workload) && self.workload_at.is_none() {
            self.workload_at = Some((at, self.seq));
            return;
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(ev);
                slot
            }
            None => {
                self.slab.push(Some(ev));
                // Bounded by QUEUE_MAX (asserted above), far below u32::MAX.
                (self.slab.len() - 1) as u32
            }
        };
        self.queue.push(at, self.seq, slot);
    }

    /// Queues a message that arrives at `at`: on the event queue, or on the local queue of a
    /// steady period's episode (see `steady`).
    pub(crate) fn push_msg_at(&mut self, at: SimTime, from: ServerId, to: ServerId, msg: Msg) {
        if let Some(local) = self.episode.as_mut() {
            assert!(local.len() < QUEUE_MAX, "episode queue overflow");
            self.episode_seq += 1;
            let seq = self.episode_seq;
            // Kept in delivery order; a new message goes at or near the back (the queue holds
            // a few messages), so the place is found from the back. `seq` is the largest yet:
            // it goes after every message due at the same time or earlier.
            let mut pos = local.len();
            while pos > 0 && local[pos - 1].at > at {
                pos -= 1;
            }
            let m = LocalMsg {
                at,
                seq,
                from,
                to,
                msg,
            };
            if pos == local.len() {
                local.push_back(m);
            } else {
                local.insert(pos, m);
            }
            return;
        }
        self.push(at.since(self.now), Ev::Msg { from, to, msg });
    }

    /// Delivers a message (an event, or an episode's local message).
    pub(crate) fn deliver_msg(&mut self, from: ServerId, to: ServerId, msg: Msg) {
        if self.servers[to].proc == ProcessState::Running {
            self.metrics.messages += 1;
            self.deliver(to, from, msg);
        }
    }

    /// Counts an episode's local message as a processed event.
    pub(crate) fn count_local_event(&mut self, msg: &Msg) {
        self.metrics.events += 1;
        self.profile[msg_kind(msg)] += 1;
    }

    /// Events queued so far (a sequence number).
    pub(crate) fn events_queued(&self) -> u64 {
        self.seq
    }

    /// When the next queued event fires.
    pub(crate) fn next_event_at(&self) -> Option<SimTime> {
        let head = self.queue.peek().map(|(at, _)| at);
        match (head, self.workload_at) {
            (Some(h), Some((w, _))) => Some(h.min(w)),
            (h, w) => h.or(w.map(|(w, _)| w)),
        }
    }

    /// Whether the pending workload arrival comes before the heap's head in (time, sequence)
    /// order (false if there is none).
    fn workload_first(&self) -> bool {
        let Some((at, seq)) = self.workload_at else {
            return false;
        };
        self.queue.peek().is_none_or(|head| (at, seq) < head)
    }

    pub(crate) fn timer(&mut self, id: ServerId, delay_ns: u64, kind: TimerKind) {
        let slot = match kind {
            TimerKind::Follower => Some(0),
            TimerKind::Heartbeat => Some(1),
            TimerKind::Lease => Some(2),
            _ => None,
        };
        let at = self.now.plus(delay_ns);
        let s = &mut self.servers[id];
        if let Some(k) = slot {
            s.vol.timer_at[k] = (at, s.vol.role_gen);
        }
        let ev = Ev::Timer {
            server: id,
            inc: s.incarnation,
            generation: s.vol.role_gen,
            kind,
        };
        self.push(delay_ns, ev);
    }

    /// Processes one event; false when nothing is pending.
    pub fn step(&mut self) -> bool {
        let Some(at) = self.next_event_at() else {
            return false;
        };
        // The caller may read the world right after this event: nothing may run ahead of it.
        self.limit = at;
        self.step_one();
        self.settle_steady();
        true
    }

    fn step_one(&mut self) {
        let (at, ev) = if self.workload_first() {
            let Some((at, _)) = self.workload_at.take() else {
                unreachable!("workload_first saw it");
            };
            (at, Ev::Workload)
        } else {
            let Some((at, _, slot)) = self.queue.pop() else {
                return;
            };
            // `push` fills a slot before queueing its key, and only this pop empties it.
            let Some(ev) = self.slab[slot as usize].take() else {
                unreachable!("a queued slot holds its event");
            };
            self.free.push(slot);
            (at, ev)
        };
        debug_assert!(at >= self.now, "time went backwards");
        self.now = at;
        self.metrics.events += 1;
        self.profile[ev_kind(&ev)] += 1;
        if let Ev::Msg { from, to, .. } = ev {
            self.msgs_in_flight -= 1;
            self.msgs_by[from] -= 1;
            self.msgs_by[to] -= 1;
        }
        if self.is_steady() && !self.steady_keeps(&ev) {
            self.leave_steady();
        }
        self.dispatch(ev);
        if !self.is_steady()
            && self.elision
            && (self.msgs_in_flight == 0 || self.slow_disks && self.lane_may_adopt())
        {
            self.try_enter_steady();
        }
    }

    /// Whether every message in flight is to or from one server with a slow disk: a steady
    /// period may then run it in a lane (see `steady::lane`).
    fn lane_may_adopt(&self) -> bool {
        let m = self.msgs_in_flight;
        self.servers
            .iter()
            .zip(&self.msgs_by)
            .any(|(s, &n)| s.disk_delay_ns > 0 && u64::from(n) == m)
    }

    /// Whether every queued message to or from server `f` is an AppendEntries or its answer
    /// (what a slow follower's lane carries; anything else, a vote in flight, keeps it out).
    pub(crate) fn only_appends_of(&self, f: ServerId) -> bool {
        self.msgs_by[f] == 0
            || self.slab.iter().flatten().all(|ev| match ev {
                Ev::Msg { from, to, msg } if *from == f || *to == f => {
                    matches!(msg, Msg::Append { .. } | Msg::AppendResp { .. })
                }
                _ => true,
            })
    }

    /// Takes every queued message to or from server `f` off the event queue, in delivery
    /// order, as local messages numbered from the episode sequence (a slow follower's lane
    /// takes them over).
    pub(crate) fn take_msgs_of(&mut self, f: ServerId) -> Vec<LocalMsg> {
        if self.msgs_by[f] == 0 {
            return Vec::new();
        }
        let slab = &mut self.slab;
        let mut taken = Vec::new();
        self.queue.retain(|at, seq, slot| {
            let hit = matches!(
                &slab[slot as usize],
                Some(Ev::Msg { from, to, .. }) if *from == f || *to == f
            );
            if hit && let Some(Ev::Msg { from, to, msg }) = slab[slot as usize].take() {
                taken.push((at, seq, slot, from, to, msg));
            }
            !hit
        });
        taken.sort_by_key(|t| (t.0, t.1));
        let mut out = Vec::with_capacity(taken.len());
        for (at, _, slot, from, to, msg) in taken {
            self.free.push(slot);
            self.msgs_in_flight -= 1;
            self.msgs_by[from] -= 1;
            self.msgs_by[to] -= 1;
            self.episode_seq += 1;
            out.push(LocalMsg {
                at,
                seq: self.episode_seq,
                from,
                to,
                msg,
            });
        }
        out
    }

    /// Whether an event can run inside a steady period (everything else ends it first): the
    /// workload (which decides itself), autopilot, gossip, snapshot checks, timers that are
    /// stale anyway, and the timers of a cut-off server (its campaigns reach nobody).
    fn steady_keeps(&self, ev: &Ev) -> bool {
        match ev {
            Ev::Workload
            | Ev::AutopilotHealth { .. }
            | Ev::AutopilotReconcile
            | Ev::AutopilotStatsTimeout { .. }
            | Ev::ClientTtl { .. }
            | Ev::Plane(_)
            | Ev::Serf { .. } => true,
            Ev::Timer {
                server,
                inc,
                generation,
                kind,
            } => {
                let s = &self.servers[*server];
                let dead = s.incarnation != *inc || s.proc != ProcessState::Running;
                dead || *kind == TimerKind::Snapshot
                    || *generation != s.vol.role_gen
                    || self.steady_cut_off(*server)
            }
            Ev::Msg { .. } | Ev::Boot { .. } | Ev::CrashLoop { .. } => false,
        }
    }

    /// Runs every event up to and including time `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: SimTime) {
        self.limit = t;
        while let Some(at) = self.next_event_at() {
            if at > t {
                break;
            }
            self.step_one();
        }
        self.now = self.now.max(t);
        self.settle_steady();
    }

    /// Runs for `d_ns` nanoseconds of simulated time.
    pub fn run_for(&mut self, d_ns: u64) {
        self.run_until(self.now.plus(d_ns));
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Msg { from, to, msg } => self.deliver_msg(from, to, msg),
            Ev::Timer {
                server,
                inc,
                generation,
                kind,
            } => self.on_timer(server, inc, generation, kind),
            Ev::Boot { server, inc } => self.on_boot(server, inc),
            Ev::CrashLoop { server, inc } => {
                if self.servers[server].incarnation == inc {
                    self.crash_process(server, "bad binary: crashed after start");
                }
            }
            Ev::Serf {
                server,
                generation,
                status,
            } => self.on_serf(server, generation, status),
            Ev::Workload => self.on_workload(),
            Ev::AutopilotHealth { leader, term } => {
                let s = &self.servers[leader];
                let same = s.proc == ProcessState::Running
                    && s.vol.role == crate::state::Role::Leader
                    && s.disk.term == term;
                if same {
                    if self.health_needs_settling() {
                        self.settle_steady_for_health();
                    }
                    #[cfg(debug_assertions)]
                    self.check_log_views_for_health();
                    self.refresh_health();
                    let d = self.cfg.autopilot.health_interval_ns;
                    self.push(d, Ev::AutopilotHealth { leader, term });
                }
            }
            Ev::AutopilotStatsTimeout { server, leader } => self.stats_timed_out(server, leader),
            Ev::ClientTtl { node, generation } => self.on_client_ttl(node as usize, generation),
            Ev::Plane(e) => self.on_plane(e),
            Ev::AutopilotReconcile => {
                self.reconcile();
                let d = self.cfg.autopilot.reconcile_interval_ns;
                self.push(d, Ev::AutopilotReconcile);
            }
        }
    }

    fn on_timer(&mut self, id: ServerId, inc: u64, generation: u64, kind: TimerKind) {
        let s = &self.servers[id];
        if s.incarnation != inc || s.proc != ProcessState::Running {
            return;
        }
        match kind {
            TimerKind::Follower => self.on_follower_timer(id, generation),
            TimerKind::Candidate => self.on_candidate_timer(id, generation),
            TimerKind::Heartbeat => self.on_heartbeat_timer(id, generation),
            TimerKind::Lease => self.on_lease_timer(id, generation),
            TimerKind::Snapshot => {
                self.settle_steady_server(id);
                self.leave_steady_if_compaction_matters(id);
                self.on_snapshot_timer(id)
            }
            TimerKind::TransferDeadline => {
                if s.vol.role_gen == generation {
                    self.on_transfer_deadline(id)
                }
            }
        }
    }

    // ---- network ----

    pub(crate) fn send_delayed(&mut self, from: ServerId, to: Peer, msg: Msg, extra_ns: u64) {
        if self.servers[from].proc != ProcessState::Running
            || !self.net.link_open(from, to.id)
            || to.addr_gen != self.servers[to.id].addr_gen
        {
            return;
        }
        // Inside a steady period only a cut-off server sends (see `steady`), and the link
        // drops it above.
        debug_assert!(!self.is_steady(), "a message sent inside a steady period");
        if matches!(
            self.servers[to.id].proc,
            ProcessState::Stopped | ProcessState::Crashed | ProcessState::Starting
        ) {
            // Nothing listens there: the connection is refused at once, and an AppendEntries
            // fails right away (hashicorp/raft retries after a backoff) rather than being
            // waited for. The message itself is lost as before.
            if let Some(pr) = self.servers[from].vol.progress.get_mut(to.id) {
                pr.inflight_until = self.now;
            }
        }
        let disk = &self.servers[from].disk;
        let Some(lat) = self
            .net
            .fate(from, to.id, self.now, &msg, || disk.last_index())
        else {
            return;
        };
        self.push_msg_at(self.now.plus(lat + extra_ns), from, to.id, msg);
    }

    /// Whether server `id` runs but is cut off from every other server, both ways (an
    /// isolating partition): nothing it sends arrives and nothing reaches it.
    pub(crate) fn cut_off(&self, id: ServerId) -> bool {
        self.servers[id].proc == ProcessState::Running && self.net.isolated(id, self.servers.len())
    }

    /// Whether every cut link either has a cut-off server at one end or runs one way from a
    /// server to `leader` (a follower the leader cannot hear but still reaches): the steady
    /// period's own cases (see `steady`).
    pub(crate) fn blocked_only_around(&self, leader: ServerId) -> bool {
        self.net.cut_only_around(leader, |id| self.cut_off(id))
    }

    /// A drain duration for a server's client.
    pub(crate) fn drain_delay(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng_proc.range(lo, hi)
    }

    /// Cuts every link between group `a` and group `b`, both ways.
    pub fn partition(&mut self, a: &[ServerId], b: &[ServerId]) {
        self.leave_steady();
        self.net.partition(a, b);
        self.fault(format!("partition {a:?} | {b:?}"));
    }

    /// Drops every message from `from` to `to` (one-way partition).
    pub fn partition_oneway(&mut self, from: ServerId, to: ServerId) {
        self.leave_steady();
        self.net.partition_oneway(from, to);
        self.fault(format!("partition one-way {from} -> {to}"));
    }

    /// Repairs every partition.
    pub fn heal(&mut self) {
        self.leave_steady();
        self.net.heal();
        self.fault("heal".into());
    }

    /// Sets the message loss probability on every link.
    pub fn set_loss(&mut self, probability: f64) {
        self.leave_steady();
        self.net.set_loss(probability);
        self.fault(format!("loss {probability}"));
    }

    /// Sets the one-way latency range.
    pub fn set_latency(&mut self, min_ns: u64, max_ns: u64) {
        self.leave_steady();
        self.net.set_latency(min_ns, max_ns);
        self.fault(format!("latency {min_ns}..{max_ns} ns"));
    }

    /// Adds an fsync delay to every log append on a server (slow disk).
    pub fn set_disk_delay(&mut self, id: ServerId, fsync_ns: u64) {
        self.leave_steady();
        self.servers[id].disk_delay_ns = fsync_ns;
        self.slow_disks = self.servers.iter().any(|s| s.disk_delay_ns > 0);
        self.fault(format!(
            "disk delay {} {fsync_ns} ns",
            self.servers[id].spec.name
        ));
    }

    fn fault(&mut self, what: String) {
        self.trace(TraceKind::Fault { what });
        self.update_quorum();
    }

    // ---- processes ----

    /// Stops a server (see `StopMode`).
    pub fn stop(&mut self, id: ServerId, mode: StopMode) {
        if !self.is_up(id) {
            return;
        }
        self.take_down(id, ProcessState::Stopped, &format!("stop ({mode:?})"));
        match mode {
            StopMode::Graceful => self.serf_detect_down(id),
            StopMode::Leave => {
                self.set_serf(id, SerfStatus::Leaving);
                let generation = self.servers[id].serf_gen;
                self.push(
                    SEC,
                    Ev::Serf {
                        server: id,
                        generation,
                        status: SerfStatus::Left,
                    },
                );
            }
        }
    }

    /// Kills a server (kill -9).
    pub fn crash(&mut self, id: ServerId) {
        if self.is_up(id) {
            self.crash_process(id, "kill -9");
        }
    }

    fn is_up(&self, id: ServerId) -> bool {
        matches!(
            self.servers[id].proc,
            ProcessState::Running | ProcessState::Starting | ProcessState::Paused
        )
    }

    pub(crate) fn crash_process(&mut self, id: ServerId, why: &str) {
        self.take_down(id, ProcessState::Crashed, &format!("crash: {why}"));
        self.serf_detect_down(id);
    }

    fn take_down(&mut self, id: ServerId, to: ProcessState, what: &str) {
        self.leave_steady();
        let now = self.now;
        let n = self.servers.len();
        let s = &mut self.servers[id];
        s.proc = to;
        s.paused_from = None;
        s.incarnation += 1;
        s.vol = Volatile::boot(n, &s.disk, now);
        s.vol.role_gen = s.incarnation << 20;
        // Its connections break: a leader's AppendEntries in flight to it fails at once (in
        // hashicorp/raft the RPC returns an error and the replication loop retries), so the
        // next answer after it is back restarts replication instead of waiting out the batch.
        for o in &mut self.servers {
            if let Some(pr) = o.vol.progress.get_mut(id) {
                pr.inflight_until = now;
            }
        }
        self.trace(TraceKind::Process {
            server: id,
            what: what.to_string(),
        });
        self.leadership_changed();
        self.update_quorum();
        if self.plane.is_some() {
            self.plane_server_down(id);
        }
    }

    /// Starts a stopped or crashed server (boots after a delay).
    pub fn start(&mut self, id: ServerId) {
        if self.is_up(id) {
            return;
        }
        let s = &mut self.servers[id];
        s.proc = ProcessState::Starting;
        s.incarnation += 1;
        let inc = s.incarnation;
        let d = self
            .rng_proc
            .range(self.cfg.boot_ns_min, self.cfg.boot_ns_max);
        self.trace(TraceKind::Process {
            server: id,
            what: "start".into(),
        });
        self.push(d, Ev::Boot { server: id, inc });
    }

    fn on_boot(&mut self, id: ServerId, inc: u64) {
        if self.servers[id].incarnation != inc || self.servers[id].proc != ProcessState::Starting {
            return;
        }
        self.servers[id].boots += 1;
        if let Some(failure) = self.boot_failure(id) {
            if failure.newer_data {
                self.metrics.snapshot_refusals += 1;
            }
            return self.crash_process(id, &failure.why);
        }
        let (n, now) = (self.servers.len(), self.now);
        let empty_restore = self.known(id, KnownIssueKind::EmptyRestoreFromLocalSnapshot);
        let writes_version_file = self.cfg.product == Product::Nomad;
        let s = &mut self.servers[id];
        s.proc = ProcessState::Running;
        s.vol = Volatile::boot(n, &s.disk, now);
        s.vol.role_gen = (s.incarnation << 20) + 1;
        s.advertised = s.spec.version;
        s.advertised_protocol = s.spec.raft_protocol;
        self.dir.set(id, s.addr_gen, s.advertised_protocol);
        if writes_version_file {
            s.disk.raft_version_file = Some(s.spec.raft_protocol);
        }
        if empty_restore && s.disk.snapshot.is_some() {
            // hashicorp/nomad#24411: the FSM comes back (almost) empty while Raft looks fine.
            s.vol.fsm_writes = 0;
        }
        self.trace(TraceKind::Process {
            server: id,
            what: "running".into(),
        });
        self.check_fsm(id, "after restoring its local snapshot on start");
        self.arm_follower_timer(id);
        let iv = self.cfg.raft.snapshot_interval_ns;
        let d = self.rng_timers.range(iv, 2 * iv);
        self.timer(id, d, TimerKind::Snapshot);
        if self.servers[id].bad_binary == Some(BadBinary::CrashLoop) {
            let d = self.rng_proc.range(2 * SEC, 5 * SEC);
            self.push(d, Ev::CrashLoop { server: id, inc });
        }
        self.serf_rejoin(id);
        self.update_quorum();
        if self.plane.is_some() {
            self.plane_server_up(id);
        }
    }

    /// Why a server cannot boot with its binary, configuration and data, if it cannot.
    fn boot_failure(&self, id: ServerId) -> Option<BootFailure> {
        let s = &self.servers[id];
        let fail = |why: String, newer_data: bool| Some(BootFailure { why, newer_data });
        if s.bad_binary == Some(BadBinary::FailsToStart) {
            return fail("bad binary: exits on start".into(), false);
        }
        // hashicorp/nomad#12362 (1.3.0): the server refuses to start with a raft protocol lower
        // than the one recorded in data_dir/raft/version.
        if let Some(recorded) = s.disk.raft_version_file
            && s.spec.raft_protocol < recorded
        {
            let why = format!(
                "refusing to start: raft_protocol {} is lower than {recorded} in data_dir/raft/version (downgrade)",
                s.spec.raft_protocol
            );
            return fail(why, false);
        }
        let snap = s.disk.snapshot.as_ref()?;
        let own = self.snapshot_format(id);
        if snap.format > own || snap.max_schema > self.entry_schema(id) {
            let why = format!(
                "Unrecognized snapshot type: the on-disk snapshot (format {}) was written by a newer version than {}",
                snap.format, s.spec.version
            );
            return fail(why, true);
        }
        if snap.format < own && self.known(id, KnownIssueKind::CannotLoadOlderSnapshot) {
            return fail(
                "cannot load the older on-disk snapshot (crash loop)".into(),
                false,
            );
        }
        None
    }

    /// Freezes a server (SIGSTOP).
    pub fn pause(&mut self, id: ServerId) {
        self.leave_steady();
        let s = &mut self.servers[id];
        if !matches!(s.proc, ProcessState::Running | ProcessState::Starting) {
            return;
        }
        s.paused_from = Some(s.proc);
        s.proc = ProcessState::Paused;
        s.vol.role_gen += 1;
        self.trace(TraceKind::Process {
            server: id,
            what: "pause".into(),
        });
        self.serf_detect_down(id);
        self.leadership_changed();
        self.update_quorum();
    }

    /// Thaws a paused server (SIGCONT): its overdue timers fire at once.
    pub fn resume(&mut self, id: ServerId) {
        self.leave_steady();
        let s = &mut self.servers[id];
        let Some(prev) = s.paused_from.take() else {
            return;
        };
        s.proc = prev;
        let inc = s.incarnation;
        self.trace(TraceKind::Process {
            server: id,
            what: "resume".into(),
        });
        if prev == ProcessState::Starting {
            self.push(0, Ev::Boot { server: id, inc });
            return;
        }
        match self.servers[id].vol.role {
            Role::Follower => self.timer(id, 0, TimerKind::Follower),
            Role::Candidate => self.timer(id, 0, TimerKind::Candidate),
            Role::Leader => {
                self.timer(id, 0, TimerKind::Lease);
                self.timer(id, 0, TimerKind::Heartbeat);
            }
        }
        self.timer(id, 0, TimerKind::Snapshot);
        self.serf_rejoin(id);
        self.leadership_changed();
        self.update_quorum();
    }

    /// Installs another binary version; the server must not be running.
    pub fn replace_binary(&mut self, id: ServerId, version: Version) -> Result<(), SimError> {
        if self.is_up(id) {
            return Err(SimError::Invalid(format!(
                "{}: cannot replace the binary of a running server",
                self.servers[id].spec.name
            )));
        }
        line_info(self.cfg.product, version).map_err(|e| SimError::Invalid(e.to_string()))?;
        let s = &mut self.servers[id];
        s.spec.version = version;
        s.bad_binary = None;
        s.installs += 1;
        // The configuration that goes with this binary may set another raft protocol (a plan's
        // target_raft_protocol); it takes effect at the next start.
        let protocol = self
            .cfg
            .raft_protocol_by_version
            .iter()
            .find(|(v, _)| *v == version);
        if let Some(&(_, p)) = protocol {
            s.spec.raft_protocol = p;
        }
        self.fault(format!(
            "replace binary {} -> {version}",
            self.servers[id].spec.name
        ));
        Ok(())
    }

    /// How many times server `id` has booted (a start's boot delay ended, whether the boot
    /// succeeded or not) and had a binary installed so far. A broken binary (`set_bad_binary`)
    /// changes nothing until the next of either: a boot runs it, an install replaces it.
    pub fn boots_and_installs(&self, id: ServerId) -> (u64, u64) {
        let s = &self.servers[id];
        (s.boots, s.installs)
    }

    /// Marks the installed binary as broken (applies from the next start).
    pub fn set_bad_binary(&mut self, id: ServerId, bad: BadBinary) {
        self.servers[id].bad_binary = Some(bad);
        self.fault(format!("bad binary {} {bad:?}", self.servers[id].spec.name));
    }

    /// Erases a stopped server's data dir (term, vote, log, snapshot).
    pub fn wipe_data(&mut self, id: ServerId) {
        if self.is_up(id) {
            return;
        }
        self.servers[id].disk = Disk::default();
        self.fault(format!("wipe data {}", self.servers[id].spec.name));
    }

    /// The server comes back with a new address: peers' configurations keep the stale one until
    /// the leader reconciles it from gossip.
    pub fn change_address(&mut self, id: ServerId) {
        self.leave_steady();
        self.servers[id].addr_gen += 1;
        let s = &self.servers[id];
        self.dir.set(id, s.addr_gen, s.advertised_protocol);
        self.refresh_labels();
        self.fault(format!("new address {}", self.servers[id].spec.name));
    }

    // ---- gossip ----

    fn set_serf(&mut self, id: ServerId, status: SerfStatus) {
        let s = &mut self.servers[id];
        s.serf_gen += 1;
        if s.serf != status {
            s.serf = status;
            self.trace(TraceKind::Serf { server: id, status });
        }
    }

    /// Schedules the `failed` verdict after probe + suspicion (cancelled if it comes back).
    fn serf_detect_down(&mut self, id: ServerId) {
        let t = &self.cfg.serf;
        let (probe, susp) = (t.probe_interval_ns, t.suspicion_timeout_ns);
        let d = self.rng_proc.range(probe, 2 * probe) + susp;
        let s = &mut self.servers[id];
        if s.serf != SerfStatus::Alive {
            return;
        }
        s.serf_gen += 1;
        let generation = s.serf_gen;
        self.push(
            d,
            Ev::Serf {
                server: id,
                generation,
                status: SerfStatus::Failed,
            },
        );
    }

    fn serf_rejoin(&mut self, id: ServerId) {
        let s = &mut self.servers[id];
        s.serf_gen += 1;
        let generation = s.serf_gen;
        let d = self.cfg.serf.rejoin_ns;
        self.push(
            d,
            Ev::Serf {
                server: id,
                generation,
                status: SerfStatus::Alive,
            },
        );
    }

    fn on_serf(&mut self, id: ServerId, generation: u64, status: SerfStatus) {
        if self.servers[id].serf_gen != generation {
            return;
        }
        let gen_keep = self.servers[id].serf_gen;
        self.set_serf(id, status);
        self.servers[id].serf_gen = gen_keep;
        // The leader reacts to member events at once (join → add non-voter, leave → remove).
        self.reconcile_members();
    }

    // ---- autopilot ----

    fn autopilot_leader(&self) -> Option<ServerId> {
        let l = self.leader()?;
        // Autopilot starts in establishLeadership: a wedged leader does not run it.
        (self.servers[l].proc == ProcessState::Running && !self.is_wedged(l)).then_some(l)
    }

    fn refresh_health(&mut self) {
        let Some(l) = self.autopilot_leader() else {
            return;
        };
        let term = self.servers[l].disk.term;
        if self.ap.leader != Some((l, term)) {
            self.ap = Autopilot {
                leader: Some((l, term)),
                ..Autopilot::default()
            };
        }
        let mut ids = [0; MAX_SERVERS];
        let n = self.servers[l].vol.config.len().min(MAX_SERVERS);
        for (slot, p) in ids.iter_mut().zip(&self.servers[l].vol.config) {
            *slot = p.id;
        }
        let mut views = [(None, 0, 0); MAX_SERVERS];
        self.log_views_for_health(&ids[..n], &mut views[..n]);
        for (&id, &view) in ids[..n].iter().zip(&views) {
            let answers =
                self.servers[id].proc == ProcessState::Running && self.net.reachable(l, id);
            let known = self.ap.health.get(&id).is_some_and(|p| p.healthy);
            if !answers && known {
                // The fetch fails only after its timeout; until then the old health stands.
                let d = self.cfg.autopilot.stats_timeout_ns;
                self.push(
                    d,
                    Ev::AutopilotStatsTimeout {
                        server: id,
                        leader: (l, term),
                    },
                );
                continue;
            }
            let rec = self.health_of(l, id, view);
            let prev = self.ap.health.get(&id);
            let flipped = prev.is_none_or(|p| p.healthy != rec.healthy);
            let stable_since = if flipped {
                Some(self.now)
            } else {
                prev.and_then(|p| p.stable_since)
            };
            self.ap.health.insert(
                id,
                HealthRec {
                    stable_since,
                    ..rec
                },
            );
        }
        self.ap.refreshed = true;
    }

    /// Autopilot starts with leadership (Consul's establishLeadership, Nomad's leader loop): its
    /// first health refresh comes one interval after the leader takes office, then every
    /// interval. Calibrated on real Consul 1.8.7 (rolling-naive: Healthy ∧ FT ≥ 1 came 9–11 s
    /// after the leader's restart, a global refresh clock gave 6.5 s).
    pub(crate) fn start_autopilot(&mut self, leader: ServerId) {
        let term = self.servers[leader].disk.term;
        let d = self.cfg.autopilot.health_interval_ns;
        self.push(d, Ev::AutopilotHealth { leader, term });
        // The heartbeat timers start in establishLeadership too, and the eval broker.
        self.clients_on_established(leader);
        if self.plane.is_some() {
            self.plane_on_established(leader);
        }
    }

    /// Queues a workload-plane event at `at` (see `workload`).
    pub(crate) fn push_plane(&mut self, at: SimTime, ev: crate::workload::PlaneEv) {
        self.push(at.since(self.now), Ev::Plane(ev));
    }

    /// Queues a client node's heartbeat timer (see `clients`).
    pub(crate) fn push_client_ttl(&mut self, at: SimTime, node: u32, generation: u64) {
        self.push(at.since(self.now), Ev::ClientTtl { node, generation });
    }

    /// The (term, digest) of the committed entry at `index`, if known.
    pub(crate) fn committed_entry(&self, index: u64) -> Option<(u64, u64)> {
        if index == 0 {
            return None;
        }
        self.oracle.canon.get(index)
    }

    /// A stats fetch started at the last refresh failed: the server is unhealthy from now on
    /// (unless autopilot has a new leader since, which starts afresh).
    fn stats_timed_out(&mut self, id: ServerId, leader: (ServerId, u64)) {
        if self.ap.leader != Some(leader) {
            return;
        }
        let now = self.now;
        if let Some(rec) = self.ap.health.get_mut(&id)
            && rec.healthy
        {
            rec.healthy = false;
            rec.last_contact_ns = None;
            rec.stable_since = Some(now);
        }
    }

    /// Debug builds: what `log_views_for_health` gives every server is what settling the
    /// quiet period now leaves on its node (checked on a copy of the world, so that the run
    /// goes on unsettled as in a release build).
    #[cfg(debug_assertions)]
    fn check_log_views_for_health(&self) {
        if self.steady.is_none() {
            return;
        }
        let ids: Vec<ServerId> = (0..self.servers.len()).collect();
        let mut views = vec![(None, 0, 0); ids.len()];
        self.log_views_for_health(&ids, &mut views);
        let mut settled = self.clone();
        settled.settle_steady_for_health();
        for (id, view) in ids.into_iter().zip(views) {
            assert_eq!(
                view,
                settled.own_log_view(id),
                "server {id}'s contact and log as an autopilot refresh reads them at {:?}",
                self.now
            );
        }
    }

    /// Autopilot's health rule for one server, from its stats when reachable (`view`: its
    /// contact and log as `log_views_for_health` gives them).
    fn health_of(
        &self,
        leader: ServerId,
        id: ServerId,
        (contact, last_term, last_index): crate::steady::LogView,
    ) -> HealthRec {
        let l = &self.servers[leader];
        let s = &self.servers[id];
        let reachable = s.proc == ProcessState::Running && self.net.reachable(leader, id);
        if !reachable {
            let prev = self.ap.health.get(&id).cloned().unwrap_or_default();
            return HealthRec {
                healthy: false,
                last_contact_ns: None,
                ..prev
            };
        }
        let last_contact_ns = if id == leader {
            Some(0)
        } else {
            contact.map(|t| self.now.since(t))
        };
        let hb_ns = self.cfg.heartbeat_timeout_ns() / 10;
        let threshold = self.cfg.autopilot.last_contact_threshold_ns.max(2 * hb_ns);
        let healthy = s.serf == SerfStatus::Alive
            && last_contact_ns.is_some_and(|c| c <= threshold)
            && last_term == l.disk.term
            && last_index + self.cfg.autopilot.max_trailing_logs >= l.disk.last_index();
        HealthRec {
            healthy,
            stable_since: None,
            last_contact_ns,
            last_term,
            last_index,
        }
    }

    fn reconcile(&mut self) {
        self.reconcile_members();
        let Some(l) = self.autopilot_leader() else {
            return;
        };
        self.maybe_write_schema(l);
    }

    /// One membership change per call, as hashicorp/raft allows one pending change at a time:
    /// stale addresses, dead-server cleanup, new servers as non-voters, promotion of stable ones.
    fn reconcile_members(&mut self) {
        let Some(l) = self.autopilot_leader() else {
            return;
        };
        let s = &self.servers[l];
        if s.vol.config_index > s.vol.commit {
            return; // a configuration change is still uncommitted
        }
        let config = s.vol.config.clone();
        let change = self
            .fix_addresses(&config)
            .or_else(|| self.add_readdressed_v2(&config))
            .or_else(|| self.drop_address_id(l, &config))
            .or_else(|| self.prune_dead(l, &config))
            .or_else(|| self.add_new(&config))
            .or_else(|| self.promote_stable(&config));
        if let Some((peers, why)) = change {
            self.append_config(l, peers, why);
        }
    }

    fn fix_addresses(&self, config: &[Peer]) -> Option<(Vec<Peer>, String)> {
        let stale: Vec<ServerId> = config
            .iter()
            .filter(|p| {
                let s = &self.servers[p.id];
                // Under raft protocol 2 the address is the ID: see `readdress`.
                p.addr_gen != s.addr_gen
                    && !p.by_address
                    && s.serf == SerfStatus::Alive
                    && s.advertised_protocol >= 3
            })
            .map(|p| p.id)
            .collect();
        if stale.is_empty() {
            return None;
        }
        let peers = config
            .iter()
            .map(|p| Peer {
                addr_gen: if stale.contains(&p.id) {
                    self.servers[p.id].addr_gen
                } else {
                    p.addr_gen
                },
                ..*p
            })
            .collect();
        Some((peers, format!("update addresses of {stale:?}")))
    }

    fn prune_dead(&self, leader: ServerId, config: &[Peer]) -> Option<(Vec<Peer>, String)> {
        let dead = |p: &&Peer| {
            let st = self.servers[p.id].serf;
            p.id != leader && matches!(st, SerfStatus::Failed | SerfStatus::Left)
        };
        let left: Vec<ServerId> = config
            .iter()
            .filter(|p| self.servers[p.id].serf == SerfStatus::Left)
            .map(|p| p.id)
            .collect();
        if !self.cfg.autopilot.cleanup_dead_servers && left.is_empty() {
            return None;
        }
        let voters = config.iter().filter(|p| p.voter).count();
        let cap = (voters.saturating_sub(1) / 2).max(1);
        let min_quorum = self.cfg.autopilot.min_quorum;
        let mut remove = Vec::new();
        let mut remaining = voters;
        for p in config.iter().filter(dead) {
            let is_left = self.servers[p.id].serf == SerfStatus::Left;
            if !is_left && !self.cfg.autopilot.cleanup_dead_servers {
                continue;
            }
            if remove.len() >= cap || (p.voter && remaining <= min_quorum) {
                break;
            }
            remaining -= usize::from(p.voter);
            remove.push(p.id);
        }
        if remove.is_empty() {
            return None;
        }
        let peers = config
            .iter()
            .filter(|p| !remove.contains(&p.id))
            .copied()
            .collect();
        let names: Vec<&str> = remove
            .iter()
            .map(|&id| self.servers[id].spec.name.as_str())
            .collect();
        let why = format!("dead-server cleanup removed {}", names.join(", "));
        Some((peers, why))
    }

    fn add_new(&self, config: &[Peer]) -> Option<(Vec<Peer>, String)> {
        let id = (0..self.servers.len()).find(|&id| {
            let s = &self.servers[id];
            s.serf == SerfStatus::Alive
                && s.proc == ProcessState::Running
                && !config.iter().any(|p| p.id == id)
        })?;
        let mut peers = config.to_vec();
        let s = &self.servers[id];
        // Consul's joinConsulServer, Nomad's addRaftPeer: a protocol-3 server joins as a
        // non-voter that autopilot promotes once stable, unless a server still advertises
        // protocol 2 (autopilot does not promote then): it joins as a voter (AddVoter).
        let voter = s.advertised_protocol >= 3 && self.min_raft_protocol() < 3;
        peers.push(Peer {
            id,
            voter,
            addr_gen: s.addr_gen,
            by_address: s.advertised_protocol < 3,
        });
        if voter {
            let why = format!(
                "add voter {id} under its Raft ID {} (servers on raft protocol 2 remain: AddVoter)",
                self.raft_id(id)
            );
            return Some((peers, why));
        }
        Some((peers, format!("add non-voter {id}")))
    }

    fn promote_stable(&self, config: &[Peer]) -> Option<(Vec<Peer>, String)> {
        let stab = self.cfg.autopilot.server_stabilization_time_ns;
        let ready: Vec<ServerId> = config
            .iter()
            .filter(|p| !p.voter)
            .filter(|p| {
                self.ap.health.get(&p.id).is_some_and(|h| {
                    h.healthy && h.stable_since.is_some_and(|t| self.now.since(t) >= stab)
                })
            })
            .map(|p| p.id)
            .collect();
        if ready.is_empty() {
            return None;
        }
        let peers = config
            .iter()
            .map(|p| Peer {
                voter: p.voter || ready.contains(&p.id),
                ..*p
            })
            .collect();
        Some((peers, format!("promote {ready:?}")))
    }

    fn append_config(&mut self, leader: ServerId, peers: Vec<Peer>, why: String) {
        let voters = peers.iter().filter(|p| p.voter).map(|p| p.id).collect();
        let nonvoters = peers.iter().filter(|p| !p.voter).map(|p| p.id).collect();
        let index = self.append_local(leader, EntryKind::Config(peers.into()));
        self.trace(TraceKind::Config {
            leader,
            index,
            voters,
            nonvoters,
            why,
        });
        self.broadcast(leader);
        self.update_quorum();
    }

    /// Writes the leader's newer entry type once every server can apply it — or at once on a
    /// release known to write it early (Nomad 1.4.0, hashicorp/nomad#14819).
    pub(crate) fn maybe_write_schema(&mut self, l: ServerId) {
        let schema = self.entry_schema(l);
        if self.holds_schema(l, schema) {
            return;
        }
        let early = self.known(l, KnownIssueKind::WritesNewEntriesEarly);
        // Like Nomad's ServersMeetMinimumVersion: by the versions members advertise, so a server
        // whose new binary never started still counts with its old version.
        let all_ready = self.servers[l]
            .vol
            .config
            .iter()
            .all(|p| self.advertised_schema(p.id) >= schema);
        if early || all_ready {
            self.schema_ceiling = self.schema_ceiling.max(schema);
            self.append_local(l, EntryKind::Schema(schema));
            self.broadcast(l);
        }
    }

    /// `Disk::max_schema` of server `id`, without reading its log when its snapshot already
    /// needs `schema_ceiling` (no entry needs more): the snapshot timer asks on every server,
    /// and a log holds up to TrailingLogs + SnapshotThreshold entries.
    pub(crate) fn max_schema_of(&self, id: ServerId) -> u32 {
        let disk = &self.servers[id].disk;
        match disk.snapshot.as_ref().map(|s| s.max_schema) {
            Some(snap) if snap >= self.schema_ceiling => snap,
            _ => disk.max_schema(),
        }
    }

    /// `Disk::has_schema` of server `id`: its snapshot alone answers for a schema above
    /// `schema_ceiling` (no log entry needs one).
    fn holds_schema(&self, id: ServerId, schema: u32) -> bool {
        let disk = &self.servers[id].disk;
        if schema > self.schema_ceiling {
            disk.snapshot.as_ref().map_or(1, |s| s.max_schema) >= schema
        } else {
            disk.has_schema(schema)
        }
    }

    pub(crate) fn entry_schema(&self, id: ServerId) -> u32 {
        line_info(self.cfg.product, self.servers[id].spec.version).map_or(1, |l| l.entry_schema)
    }

    fn advertised_schema(&self, id: ServerId) -> u32 {
        line_info(self.cfg.product, self.servers[id].advertised).map_or(1, |l| l.entry_schema)
    }

    pub(crate) fn snapshot_format(&self, id: ServerId) -> u32 {
        line_info(self.cfg.product, self.servers[id].spec.version).map_or(1, |l| l.snapshot_format)
    }

    fn known(&self, id: ServerId, kind: KnownIssueKind) -> bool {
        let (product, edition) = (self.cfg.product, self.cfg.edition);
        has_issue_for(product, self.servers[id].spec.version, edition, kind)
    }

    /// hashicorp/nomad#26425: an affected Enterprise leader writes its license-reporting entry
    /// as soon as it leads, whatever the other servers run. (The snapshot does not carry it in
    /// this model: only servers that apply it from the log can panic on it.)
    pub(crate) fn maybe_write_license_report(&mut self, l: ServerId) {
        if !self.known(l, KnownIssueKind::WritesLicenseReportingEntry) {
            return;
        }
        let written = self.servers[l]
            .disk
            .log
            .iter()
            .any(|e| e.kind == EntryKind::LicenseReport);
        if !written {
            self.append_local(l, EntryKind::LicenseReport);
            self.broadcast(l);
        }
    }

    /// Why this server cannot apply an entry, if it cannot: a log-entry schema newer than its
    /// binary's, or an Enterprise entry its version does not know.
    pub(crate) fn unreadable(&self, id: ServerId, e: &Entry) -> Option<&'static str> {
        if matches!(e.kind, EntryKind::Write(_) | EntryKind::Noop) {
            return None; // schema 1, which every binary reads (`entry_schema` is at least 1)
        }
        if e.schema() > self.entry_schema(id) {
            return Some("panic applying an unknown log entry type");
        }
        let version = self.servers[id].spec.version;
        if e.kind == EntryKind::LicenseReport && !reads_license_reporting(version) {
            return Some("panic: failed to apply request: unknown license reporting entry");
        }
        None
    }

    pub(crate) fn can_restore(&mut self, id: ServerId, snap: &crate::state::Snapshot) -> bool {
        if snap.format > self.snapshot_format(id) || snap.max_schema > self.entry_schema(id) {
            self.metrics.snapshot_refusals += 1;
            self.crash_process(id, "Unrecognized snapshot type in InstallSnapshot");
            return false;
        }
        true
    }

    // ---- workload ----

    fn schedule_workload(&mut self) {
        if self.write_rate > 0.0 {
            let gap = self.write_gap;
            let jitter = self.rng_proc.range(0, gap / 5 + 1);
            let delay = gap - gap / 10 + jitter;
            if self.workload_at.is_none() {
                // What `push` does with it, without its dispatch on the event.
                self.seq += 1;
                self.workload_at = Some((self.now.plus(delay), self.seq));
            } else {
                self.push(delay, Ev::Workload);
            }
        }
    }

    /// Changes the write rate (writes per simulated second; 0 stops the workload).
    pub fn set_write_rate(&mut self, writes_per_sec: f64) {
        let was = self.write_rate;
        // NaN stops the workload (`clamp` would keep it).
        let rate = if writes_per_sec.is_nan() {
            0.0
        } else {
            writes_per_sec
        };
        self.write_rate = rate.clamp(0.0, MAX_WRITES_PER_SEC);
        self.write_gap = write_gap(self.write_rate);
        if was <= 0.0 {
            self.schedule_workload();
        }
    }

    fn on_workload(&mut self) {
        // While the cluster stays steady, the arrivals that come next (before any other event
        // and within the caller's horizon) run here one after another: what `step_one` does
        // for each, without its dispatch.
        while self.submit_write() && self.next_arrival_inline() {}
    }

    /// Takes the pending workload arrival as the next event if it is one `on_workload` may
    /// run at once (see there): true if it did, with the clock at its time.
    fn next_arrival_inline(&mut self) -> bool {
        if !self.is_steady() || !self.workload_first() {
            return false;
        }
        let Some((at, _)) = self.workload_at.filter(|&(at, _)| at <= self.limit) else {
            return false;
        };
        self.workload_at = None;
        self.now = at;
        self.metrics.events += 1;
        self.profile[ev_kind(&Ev::Workload)] += 1;
        true
    }

    /// One workload arrival: true if it was written in a steady period's closed form or
    /// episode (`steady_write`).
    fn submit_write(&mut self) -> bool {
        if self.write_rate <= 0.0 {
            return false;
        }
        self.schedule_workload();
        self.acks.stats.submitted += 1;
        let id = self.next_write;
        self.next_write += 1;
        // A steady period has exactly one running leader (and `leader()` scans every server).
        let Some(l) = self.steady_leader().or_else(|| self.leader()) else {
            self.acks.stats.failed += 1;
            return false;
        };
        let s = &self.servers[l];
        // A wedged leader answers "Not ready to serve consistent reads" (see `leadership`).
        if s.proc != ProcessState::Running || s.vol.transfer_to.is_some() || self.is_wedged(l) {
            self.acks.stats.failed += 1;
            return false;
        }
        self.acks.submit(self.now, id, l);
        if self.steady_write(l, id) {
            return true;
        }
        self.append_local(l, EntryKind::Write(id));
        self.broadcast(l);
        false
    }

    pub(crate) fn ack_write(&mut self, id: u64, index: u64, term: u64) {
        let World { acks, oracle, .. } = self;
        acks.record(self.now, id, (index, term), &mut oracle.acked);
    }

    /// Acknowledged writes by latency from submission to acknowledgement: bucket `i` holds
    /// those in [i, i+1)·`ACK_BUCKET_NS`, the last bucket everything longer.
    pub fn ack_latency_histogram(&self) -> &[u32; ACK_BUCKETS] {
        &self.acks.hist
    }

    /// Writes acknowledged so far (cheap: `workload` also checks every acknowledged write
    /// against the leader's log).
    pub fn acked_writes(&self) -> u64 {
        self.acks.stats.acked
    }

    /// Writes submitted and not yet acknowledged, failed or given up on (at most
    /// `MAX_WRITES_PER_SEC` × `WRITE_TIMEOUT_NS`).
    pub fn pending_writes(&self) -> usize {
        self.acks.pending.len()
    }

    /// Writes that failed so far (cheap, like `acked_writes`).
    pub fn failed_writes(&self) -> u64 {
        self.acks.stats.failed
    }

    /// Workload counters, with acknowledged writes missing from the current leader's log.
    pub fn workload(&self) -> WorkloadStats {
        let mut w = self.acks.stats.clone();
        w.lost_acked = self.leader().map_or(0, |l| self.missing_acked(l));
        w
    }

    fn missing_acked(&self, l: ServerId) -> u64 {
        self.oracle.missing_acked(&self.servers[l].disk)
    }

    /// The safety oracle (the canonical log, the acknowledged writes).
    pub fn oracle(&self) -> &Oracle {
        &self.oracle
    }

    /// Moves the canonical log's oldest entries out of its window (see `oracle`): those below
    /// the lowest index any server may still apply from its log, restore from its snapshot or
    /// check its state machine at. Lookups below the window stay exact, only slower.
    pub(crate) fn archive_canon(&mut self) {
        let floor = self
            .servers
            .iter()
            .map(|s| {
                let snap = s.disk.snapshot.as_ref().map_or(0, |x| x.index);
                s.vol
                    .applied
                    .min(snap)
                    .min(s.disk.log_start().saturating_sub(1))
            })
            .min()
            .unwrap_or(0);
        self.oracle.canon.archive_below(floor);
    }

    // ---- invariants ----

    fn violation(&mut self, invariant: &str, detail: String) {
        self.trace(TraceKind::Violation {
            invariant: invariant.into(),
            detail: detail.clone(),
        });
        self.violations.push(Violation {
            invariant: invariant.into(),
            at: self.now,
            seed: self.cfg.seed,
            detail,
        });
    }

    pub(crate) fn check_election_safety(&mut self, id: ServerId, term: u64) {
        if let Some(other) = self.oracle.elected(id, term) {
            self.violation(
                "election_safety",
                format!("two leaders in term {term}: {other} and {id}"),
            );
        }
    }

    pub(crate) fn check_leader_completeness(&mut self, id: ServerId) {
        let d = &self.servers[id].disk;
        if let Some(committed) = self.oracle.lacks_committed(d) {
            let detail = format!(
                "leader {id} (term {}) lacks committed index {committed}",
                d.term
            );
            self.violation("leader_completeness", detail);
        }
        let lost = self.missing_acked(id);
        if lost > 0 {
            self.violation(
                "acknowledged_write_lost",
                format!("leader {id} lacks {lost} acknowledged writes"),
            );
        }
    }

    /// `mine` is the applied entry's (term, digest); `write` whether it is a workload write.
    pub(crate) fn check_apply(&mut self, id: ServerId, index: u64, mine: (u64, u64), write: bool) {
        if !self.oracle.applied(index, mine, write) {
            self.violation(
                "state_machine_safety",
                format!("server {id} applied a different entry at index {index}"),
            );
        }
    }

    /// The apply of a write that is the only entry left to apply, is the last in the log and
    /// extends the canonical log: what `apply_plain` does for it, without its loop (a steady
    /// leader applies each write this way as it commits it). False, with nothing done, if any
    /// of that does not hold or its checks would report a violation. (Always inlined into
    /// `apply_committed`: as a call of its own it cost about 2 % of a simulated day.)
    #[inline(always)]
    pub(crate) fn apply_fresh_write(&mut self, id: ServerId) -> bool {
        let World {
            servers,
            oracle,
            acks,
            now,
            ..
        } = self;
        let s = &mut servers[id];
        let idx = s.vol.applied + 1;
        if s.vol.commit != idx || s.disk.last_index() != idx || oracle.canon.len() + 1 != idx {
            return false;
        }
        let Some(&Entry {
            term,
            kind: EntryKind::Write(w),
        }) = s.disk.log.last()
        else {
            return false;
        };
        // `check_fsm` after the write: the canonical count grows with it.
        let expected = oracle.canon.last_writes() + 1;
        let fsm_writes = s.vol.fsm_writes + 1;
        if fsm_writes != expected && !s.fsm_reported {
            return false;
        }
        let digest = Entry::write_digest(w);
        oracle.canon.push((term, digest), true);
        s.vol.applied = idx;
        s.vol.fsm_writes = fsm_writes;
        if s.vol.role == Role::Leader {
            acks.record(*now, w, (idx, term), &mut oracle.acked);
        }
        true
    }

    /// A follower's run of entries the canonical log already holds (`apply_known`), the first
    /// part of `apply_committed`: None if that was all (or the call's budget), else how many
    /// it applied, and the general loop goes on.
    #[inline]
    pub(crate) fn apply_known_all(&mut self, id: ServerId) -> Option<usize> {
        let s = &mut self.servers[id];
        if s.vol.role == Role::Leader {
            return Some(0);
        }
        let upto = s.vol.commit.min(s.disk.last_index());
        if s.vol.applied >= upto {
            return None;
        }
        let done = apply_known(s, upto, &self.oracle.canon, APPLY_LIMIT);
        (s.vol.applied < upto && done < APPLY_LIMIT).then_some(done)
    }

    /// Applies the workload writes and no-ops (schema 1, which every binary reads) that follow
    /// `applied` on server `id`, up to `budget` of them: what `apply_committed`'s general loop
    /// does for them (the state-machine safety check, the FSM count and its check, the
    /// leader's acknowledgement), in one tight loop, as these are nearly every entry applied.
    /// Stops before any other entry and before any entry whose checks would report a violation:
    /// the general loop then takes it and reports it. Returns how many entries it applied.
    pub(crate) fn apply_plain(&mut self, id: ServerId, budget: usize) -> usize {
        let World {
            servers,
            oracle,
            acks,
            now,
            ..
        } = self;
        let canon = &mut oracle.canon;
        let s = &mut servers[id];
        let upto = s.vol.commit.min(s.disk.last_index());
        let leader = s.vol.role == Role::Leader;
        let mut done = 0;
        if !leader {
            done = apply_known(s, upto, canon, budget);
        }
        while done < budget && s.vol.applied < upto {
            let idx = s.vol.applied + 1;
            let Some(e) = s.disk.entry(idx) else {
                break;
            };
            let write = match e.kind {
                EntryKind::Write(w) => Some(w),
                EntryKind::Noop => None,
                _ => break,
            };
            let mine = (e.term, e.digest());
            // `check_apply`: agree with the canonical log, or extend it.
            let extends = idx == canon.len() + 1;
            if idx <= canon.len() && canon.get(idx) != Some(mine) {
                break;
            }
            let fsm_writes = s.vol.fsm_writes + u64::from(write.is_some());
            // `check_fsm` after a write (the entries and their write counts grow together).
            if write.is_some() && !s.fsm_reported && idx <= canon.len() + 1 {
                let expected = if extends {
                    canon.last_writes() + 1
                } else {
                    canon.writes_at(idx).unwrap_or(0)
                };
                if fsm_writes != expected {
                    break;
                }
            }
            if extends {
                canon.push(mine, write.is_some());
            }
            s.vol.applied = idx;
            s.vol.fsm_writes = fsm_writes;
            if let Some(w) = write.filter(|_| leader) {
                acks.record(*now, w, (idx, mine.0), &mut oracle.acked);
            }
            done += 1;
        }
        done
    }

    /// Invariant: a server that has applied index i holds in its state machine exactly the
    /// writes of the committed log up to i. Catches a state restored incompletely while Raft
    /// looks healthy (hashicorp/nomad#24411). Skipped past the end of the canonical log, e.g.
    /// after an operator snapshot restore, which replaces the state on purpose. Reported once
    /// per server.
    pub(crate) fn check_fsm(&mut self, id: ServerId, when: &str) {
        let s = &self.servers[id];
        let applied = s.vol.applied;
        if s.fsm_reported {
            return;
        }
        let Some(expected) = self.oracle.expected_writes(applied) else {
            return;
        };
        if s.vol.fsm_writes == expected {
            return;
        }
        let detail = format!(
            "{} {when}: its state holds {} writes at index {applied}, the committed log holds {expected}",
            s.spec.name, s.vol.fsm_writes
        );
        self.servers[id].fsm_reported = true;
        self.violation("fsm_state_lost", detail);
    }

    /// Log matching: if two servers' logs hold an entry with the same index and term, they
    /// hold the same entries up to it. Compares every pair of logs (O(n²·log length), so it
    /// runs on demand, e.g. at the end of a run, not on every append).
    pub fn check_log_matching(&mut self) {
        let disks: Vec<&Disk> = self.servers.iter().map(|s| &s.disk).collect();
        if let Some((a, b, index)) = crate::oracle::log_mismatch(&disks) {
            self.violation(
                "log_matching",
                format!("servers {a} and {b} agree on the term at an index but differ at {index}"),
            );
        }
    }

    /// Invariant violations so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    // ---- ground truth ----

    /// The running leader with the highest term, if any.
    pub fn leader(&self) -> Option<ServerId> {
        self.servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.proc == ProcessState::Running && s.vol.role == Role::Leader)
            .max_by_key(|(id, s)| (s.disk.term, Reverse(*id)))
            .map(|(id, _)| id)
    }

    /// Voters of the newest configuration any server holds (ground truth, leader or not):
    /// the servers behind its voter entries. A stale raft-protocol-2 address is left out here
    /// but counts in `latest_voter_count`, the base of the quorum.
    pub fn latest_voters(&self) -> Vec<ServerId> {
        let cfg = self.newest_config();
        let current = |p: &&Peer| p.voter && self.is_server(p);
        cfg.iter().filter(current).map(|p| p.id).collect()
    }

    /// Whether a majority of voters of the newest configuration are running and connected.
    pub fn has_quorum(&self) -> bool {
        let voters = self.latest_voters();
        let up: Vec<ServerId> = voters
            .iter()
            .copied()
            .filter(|&v| self.servers[v].proc == ProcessState::Running)
            .collect();
        let best = up
            .iter()
            .map(|&a| up.iter().filter(|&&b| self.net.reachable(a, b)).count())
            .max()
            .unwrap_or(0);
        best >= quorum(self.latest_voter_count())
    }

    pub(crate) fn leadership_changed(&mut self) {
        self.track_wedge();
        if self.plane.is_some() {
            self.plane_on_leadership_changed();
        }
        let l = self.leader();
        if l == self.cur_leader {
            return;
        }
        if self.cur_leader.is_none() && self.ever_led {
            self.metrics.no_leader_ns += self.now.since(self.since);
        }
        if l.is_some() {
            self.metrics.leader_changes += u64::from(self.ever_led);
            self.ever_led = true;
        }
        self.since = self.now;
        self.cur_leader = l;
        // Writes in flight on a deposed leader fail (the client sees an error or a timeout).
        let before = self.acks.pending.len();
        self.acks.pending.retain(|p| Some(p.leader) == l);
        self.acks.stats.failed += (before - self.acks.pending.len()) as u64;
    }

    fn update_quorum(&mut self) {
        let q = self.has_quorum();
        if q == self.quorum_now {
            return;
        }
        if !q {
            self.quorum_since = self.now;
        } else if self.ever_led {
            self.metrics.quorum_lost_ns += self.now.since(self.quorum_since);
        }
        self.quorum_now = q;
    }

    /// Counters so far (open intervals counted up to now).
    pub fn metrics(&self) -> Metrics {
        let mut m = self.metrics.clone();
        if self.cur_leader.is_none() && self.ever_led {
            m.no_leader_ns += self.now.since(self.since);
        }
        if !self.quorum_now && self.ever_led {
            m.quorum_lost_ns += self.now.since(self.quorum_since);
        }
        m
    }

    pub(crate) fn trace(&mut self, kind: TraceKind) {
        self.trace.push(self.now, kind);
    }

    /// The trace so far.
    pub fn trace_log(&self) -> &Trace {
        &self.trace
    }

    /// Hash of the trace, folded with the final counters.
    pub fn trace_hash(&self) -> u64 {
        let m = &self.metrics;
        let tail = [m.messages, m.events, self.acks.stats.acked, self.now.0];
        let bytes: Vec<u8> = tail.iter().flat_map(|x| x.to_le_bytes()).collect();
        crate::rng::fnv1a(self.trace.hash(), &bytes)
    }

    pub(crate) fn rpc_port(&self) -> u16 {
        match self.cfg.product {
            rehearse_model::versions::Product::Nomad => 4647,
            rehearse_model::versions::Product::Consul => 8300,
        }
    }

    /// Milliseconds of simulated time, the clock operator answers use.
    pub(crate) fn now_ms(&self) -> u64 {
        self.now.0 / MS
    }

    pub(crate) fn scheduler_index(&self) -> u64 {
        self.scheduler_modify_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehearse_model::versions::Version;

    /// `max_schema_of` answers from the snapshot alone only when reading the log would give
    /// the same: through an upgrade whose leaders write newer schema entries, with snapshots
    /// every few dozen entries.
    #[test]
    fn a_snapshot_knows_its_logs_schema_without_reading_the_log() {
        let mut cfg = SimConfig::nomad(3, Version::new(1, 3, 10), 3);
        cfg.raft.snapshot_threshold = 64;
        cfg.raft.trailing_logs = 32;
        cfg.raft.snapshot_interval_ns = 5 * SEC;
        let mut w = World::new(cfg).unwrap();
        let check = |w: &World| {
            for id in 0..3 {
                assert_eq!(
                    w.max_schema_of(id),
                    w.servers[id].disk.max_schema(),
                    "s{id}"
                );
            }
        };
        let mut checks = 0;
        for (id, to) in [(0, (1, 4, 2)), (1, (1, 4, 2)), (2, (1, 6, 1))] {
            for _ in 0..30 {
                w.run_for(10 * SEC);
                check(&w);
                checks += 1;
            }
            w.stop(id, StopMode::Graceful);
            w.replace_binary(id, Version::new(to.0, to.1, to.2))
                .unwrap();
            w.start(id);
        }
        for _ in 0..60 {
            w.run_for(10 * SEC);
            check(&w);
            checks += 1;
        }
        assert_eq!(checks, 150);
        assert!(w.schema_ceiling >= 2, "a schema entry was written");
        assert!(
            (0..3).all(|id| w.servers[id].disk.snapshot.is_some()),
            "every server took snapshots"
        );
        assert!(w.violations().is_empty(), "{:?}", w.violations());
    }

    #[test]
    fn log_matching_detects_a_diverged_entry() {
        let cfg = SimConfig::nomad(3, Version::new(1, 9, 7), 1);
        let mut w = World::new(cfg).unwrap();
        w.run_for(20 * SEC);
        w.check_log_matching();
        assert!(w.violations().is_empty());
        let d = &mut w.servers[1].disk;
        let i = (d.last_index() - 2 - d.log_start()) as usize;
        d.log[i].kind = EntryKind::Write(999_999);
        w.check_log_matching();
        assert!(w.violations().iter().any(|v| v.invariant == "log_matching"));
    }

    /// An acknowledged write lost deep in a long run is still caught, and counted exactly:
    /// two followers' data dirs are restored from a backup taken half an hour in, six hours
    /// later, and the leader is gone. The restored servers elect one of them, which lacks
    /// every write acknowledged since the backup. By then nearly all of the canonical log has
    /// left the oracle's window (the restored servers' snapshots and logs are far below it).
    #[test]
    fn an_acknowledged_write_lost_hours_later_is_caught() {
        let cfg = SimConfig::nomad(3, Version::new(1, 9, 7), 7);
        let mut w = World::new(cfg).unwrap();
        w.run_for(1800 * SEC);
        let l = w.leader().expect("a leader");
        let followers: Vec<ServerId> = (0..3).filter(|&s| s != l).collect();
        let backups: Vec<Disk> = followers
            .iter()
            .map(|&f| w.servers[f].disk.clone())
            .collect();
        let acked_then = w.acked_writes();
        w.run_for(6 * 3600 * SEC);
        assert!(w.violations().is_empty(), "{:?}", w.violations());
        let acked_now = w.acked_writes();
        assert!(acked_now - acked_then > 200_000, "{acked_now} {acked_then}");
        let canon = &w.oracle().canon;
        let (window, runs) = canon.sizes();
        assert!(
            (window as u64) < canon.len() / 4,
            "window {window} of {}",
            canon.len()
        );
        assert!(runs < 1_000, "runs {runs}");
        assert!(w.oracle().acked.runs() < 1_000);
        // The unharmed cluster lacks nothing.
        assert_eq!(w.workload().lost_acked, 0);

        let l = w.leader().expect("a leader");
        w.stop(l, StopMode::Graceful);
        for (&f, backup) in followers.iter().zip(backups) {
            w.stop(f, StopMode::Graceful);
            w.servers[f].disk = backup;
            w.start(f);
        }
        w.run_for(300 * SEC);
        let nl = w.leader().expect("the restored servers elect a leader");
        assert!(followers.contains(&nl));
        // Still missing minutes later (the new leader's own snapshots since then cover the
        // indexes it applied again, which the oracle cannot judge any more).
        assert!(w.workload().lost_acked > 200_000);
        let v = w
            .violations()
            .iter()
            .find(|v| v.invariant == "acknowledged_write_lost")
            .expect("the loss is reported");
        assert!(v.at.0 > 6 * 3600 * SEC, "{v:?}");
        let reported: u64 = v.detail.split(' ').nth(3).unwrap().parse().unwrap();
        assert!(
            reported >= acked_now - acked_then && reported <= acked_now,
            "{}: acknowledged {acked_then} before the backup, {acked_now} in all",
            v.detail
        );
        assert!(
            w.violations()
                .iter()
                .any(|v| v.invariant == "leader_completeness")
        );
    }
}
