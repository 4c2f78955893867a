//! Per-server state: the persistent part (survives stop and crash) and the volatile part.

use crate::config::ServerSpec;
use rehearse_model::api::SerfStatus;
use rehearse_model::time::SimTime;
use serde::{Deserialize, Serialize};

/// Index of a server in `SimConfig::servers`.
pub type ServerId = usize;

/// Lifecycle of a server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessState {
    /// Serving.
    Running,
    /// Stopped by the operator.
    Stopped,
    /// Killed, or panicked (e.g. on a log entry it cannot apply).
    Crashed,
    /// Frozen (SIGSTOP): receives nothing, sends nothing, timers deferred.
    Paused,
    /// Booting: restoring the snapshot and opening the log.
    Starting,
}

/// How a server is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopMode {
    /// SIGINT/SIGTERM without `leave_on_terminate`: stays in the Raft configuration; gossip marks
    /// it failed after the detection delay.
    Graceful,
    /// With `leave_on_terminate`: leaves serf, the leader removes it from Raft.
    Leave,
}

/// A broken binary installed on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BadBinary {
    /// Exits at once on start (bad flag, missing library).
    FailsToStart,
    /// Starts, then crashes a few seconds later, every time.
    CrashLoop,
}

/// A member of a Raft configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Server.
    pub id: ServerId,
    /// Voter or non-voter.
    pub voter: bool,
    /// Address generation the configuration knows for it (see `World::change_address`).
    pub addr_gen: u32,
    /// Whether the entry's Raft ID is the address (added under raft protocol 2) rather than
    /// the server's UUID (protocol 3). A server restarted on protocol 3 has a UUID, so an
    /// address-ID entry no longer names it once the leader sees the change (see `readdress`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_address: bool,
}

/// What a log entry carries. Clone and comparison are written out so that the entries every
/// run writes stay inlined on the hot paths (the oracle compares logs entry by entry); the
/// workload plane's entries go through one out-of-line call.
#[derive(Debug, Serialize, Deserialize)]
pub enum EntryKind {
    /// The new leader's no-op.
    Noop,
    /// A job registration from the workload, by write id.
    Write(u64),
    /// A Raft configuration. A boxed slice rather than a `Vec`: without a `Vec`'s capacity
    /// to hide the variant in, the enum keeps a plain tag, which every clone, comparison and
    /// drop of an entry reads (dropping a log went from about 14 to 8 instructions an entry;
    /// the entry stays 32 bytes, see `ENTRY_SIZE`).
    Config(Box<[Peer]>),
    /// An entry type introduced by a newer version (keyring, license…): needs this schema.
    Schema(u32),
    /// Nomad Enterprise's offline-license-reporting entry, introduced in patch releases
    /// (1.8.14+ent, 1.9.10+ent, 1.10.2+ent): servers before those cannot decode it
    /// (hashicorp/nomad#26425). Outside the per-line schema order, so a kind of its own.
    LicenseReport,
    /// Nomad's `Node.UpdateStatus` for a client node (index in `World::nodes`): down (the
    /// leader's heartbeat timer expired) or ready (the node heartbeats again).
    NodeStatus {
        /// Node index.
        node: u32,
        /// Down (true) or ready (false).
        down: bool,
    },
    /// An entry of the workload plane (see `workload`), boxed so that the entries every run
    /// writes (writes, no-ops, configurations) stay small and their clone and comparison
    /// cheap.
    Workload(Box<WorkloadEntry>),
}

impl Clone for EntryKind {
    #[inline]
    fn clone(&self) -> Self {
        match self {
            EntryKind::Noop => EntryKind::Noop,
            EntryKind::Write(id) => EntryKind::Write(*id),
            EntryKind::Config(p) => EntryKind::Config(p.clone()),
            EntryKind::Schema(s) => EntryKind::Schema(*s),
            EntryKind::LicenseReport => EntryKind::LicenseReport,
            EntryKind::NodeStatus { node, down } => EntryKind::NodeStatus {
                node: *node,
                down: *down,
            },
            EntryKind::Workload(w) => EntryKind::Workload(clone_workload(w)),
        }
    }
}

#[inline(never)]
fn clone_workload(w: &WorkloadEntry) -> Box<WorkloadEntry> {
    Box::new(w.clone())
}

impl PartialEq for EntryKind {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (EntryKind::Noop, EntryKind::Noop)
            | (EntryKind::LicenseReport, EntryKind::LicenseReport) => true,
            (EntryKind::Write(a), EntryKind::Write(b)) => a == b,
            (EntryKind::Config(a), EntryKind::Config(b)) => a == b,
            (EntryKind::Schema(a), EntryKind::Schema(b)) => a == b,
            (
                EntryKind::NodeStatus { node, down },
                EntryKind::NodeStatus {
                    node: other_node,
                    down: other_down,
                },
            ) => node == other_node && down == other_down,
            (EntryKind::Workload(a), EntryKind::Workload(b)) => workload_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for EntryKind {}

#[inline(never)]
fn workload_eq(a: &WorkloadEntry, b: &WorkloadEntry) -> bool {
    a == b
}

/// What an entry of the workload plane carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadEntry {
    /// `Job.Register` of declared job `job` (index in `SimConfig::jobs`), with its evaluation
    /// (see `workload`).
    JobRegister {
        /// Job index.
        job: u32,
    },
    /// A scheduler's plan as the leader applies it, with its evaluation's update.
    PlanResult(crate::workload::fsm::PlanResult),
    /// A new evaluation of job `job` (the drainer's next batch).
    EvalCreate {
        /// Job index.
        job: u32,
    },
    /// An evaluation's status (failed after its delivery limit).
    EvalUpdate {
        /// Evaluation.
        eval: u64,
        /// New status.
        status: crate::workload::fsm::EvalStatus,
    },
    /// `Node.UpdateDrain` for a node of the workload plane (`workload::fsm::NodeIdx`).
    NodeDrain {
        /// Node.
        node: u32,
        /// The drain strategy's `ForceDeadline`: the request's time plus its deadline
        /// (hashicorp/nomad `nomad/node_endpoint.go` `UpdateDrain`); None without a deadline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        force_at: Option<rehearse_model::time::SimTime>,
    },
    /// The leader's drainer found a drain's deadline reached: every allocation still on the
    /// node is marked for migration at once (hashicorp/nomad `nomad/drainer/drainer.go`
    /// `handleDeadlinedNodes`, written as `AllocUpdateDesiredTransition` with its evaluations).
    DrainDeadline {
        /// Node.
        node: u32,
    },
    /// `Node.UpdateEligibility` to eligible: the node takes placements again after its drain
    /// (`nomad node eligibility -enable`).
    NodeEligible {
        /// Node.
        node: u32,
    },
    /// The scheduler configuration (`getOrCreateSchedulerConfig`).
    SchedulerConfig {
        /// `pause_eval_broker`.
        pause_eval_broker: bool,
    },
}

/// The size of a log entry: logs hold tens of thousands, cloned by every explorer fork.
const ENTRY_SIZE: usize = std::mem::size_of::<Entry>();
const _: () = assert!(ENTRY_SIZE == 32, "a log entry grew");

/// A Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Term it was written in.
    pub term: u64,
    /// Payload.
    pub kind: EntryKind,
}

impl Entry {
    /// Schema a server needs to apply this entry.
    pub fn schema(&self) -> u32 {
        match self.kind {
            EntryKind::Schema(s) => s,
            _ => 1,
        }
    }

    /// `digest` of a workload write or a no-op (the entries every binary applies alike), None
    /// for any other entry.
    #[inline]
    pub fn plain_digest(&self) -> Option<u64> {
        matches!(self.kind, EntryKind::Write(_) | EntryKind::Noop).then(|| self.digest())
    }

    /// `digest` of a workload write.
    #[inline]
    pub fn write_digest(id: u64) -> u64 {
        2 ^ (id << 4)
    }

    /// A small digest for the state-machine safety check.
    pub fn digest(&self) -> u64 {
        match &self.kind {
            EntryKind::Noop => 1,
            EntryKind::Write(id) => Self::write_digest(*id),
            EntryKind::Config(p) => 3 ^ ((p.len() as u64) << 4),
            EntryKind::Schema(s) => 4 ^ (u64::from(*s) << 4),
            EntryKind::LicenseReport => 5,
            EntryKind::NodeStatus { node, down } => {
                6 ^ (u64::from(*node) << 5) ^ (u64::from(*down) << 4)
            }
            EntryKind::Workload(w) => w.digest(),
        }
    }
}

impl WorkloadEntry {
    /// See `Entry::digest`.
    #[inline(never)]
    pub fn digest(&self) -> u64 {
        match self {
            WorkloadEntry::JobRegister { job } => 7 ^ (u64::from(*job) << 4),
            WorkloadEntry::PlanResult(p) => {
                8 ^ (p.eval << 8) ^ ((p.place.len() as u64) << 4) ^ (p.migrate.len() as u64)
            }
            WorkloadEntry::EvalCreate { job } => 9 ^ (u64::from(*job) << 4),
            WorkloadEntry::EvalUpdate { eval, .. } => 10 ^ (eval << 4),
            WorkloadEntry::NodeDrain { node, force_at } => {
                11 ^ (u64::from(*node) << 4) ^ force_at.map_or(0, |t| t.0.rotate_left(20))
            }
            WorkloadEntry::DrainDeadline { node } => 13 ^ (u64::from(*node) << 4),
            WorkloadEntry::NodeEligible { node } => 14 ^ (u64::from(*node) << 4),
            WorkloadEntry::SchedulerConfig { pause_eval_broker } => {
                12 ^ (u64::from(*pause_eval_broker) << 4)
            }
        }
    }
}

/// A Raft snapshot on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Last index covered.
    pub index: u64,
    /// Term of that index.
    pub term: u64,
    /// Configuration as of that index.
    pub config: Vec<Peer>,
    /// Format written (the writer's `snapshot_format`).
    pub format: u32,
    /// Highest entry schema the state contains.
    pub max_schema: u32,
    /// Workload writes in the state.
    pub fsm_writes: u64,
}

/// State that survives stop and crash: term, vote, log, snapshot.
#[derive(Debug, Clone)]
pub struct Disk {
    /// Current term.
    pub term: u64,
    /// Vote in `term`.
    pub voted_for: Option<ServerId>,
    /// Index of `log[0]` (entries before it were compacted; hashicorp/raft keeps TrailingLogs
    /// entries *before* the snapshot index so lagging followers avoid InstallSnapshot).
    pub start: u64,
    /// Entries from `start` on.
    pub log: crate::raft_log::RaftLog,
    /// Latest snapshot.
    pub snapshot: Option<Snapshot>,
    /// `data_dir/raft/version`: the raft protocol the server last ran with. Nomad 1.3.0+
    /// writes it at start and refuses to start with a lower protocol (hashicorp/nomad#12362).
    pub raft_version_file: Option<u8>,
    /// What `latest_config` last found: (index of the newest configuration entry in the log,
    /// or 0 for none; the last index it scanned; that entry's term). Entries up to a scanned
    /// index whose term is unchanged are the same entries (Raft's log matching, which the
    /// world checks), so the next call scans only the entries after it; anything else
    /// (truncated, compacted past it, restored) scans again. Ground-truth quorum checks ask
    /// this of every server many times per step, and configuration entries are rare.
    pub config_hint: std::cell::Cell<(u64, u64, u64)>,
}

impl Default for Disk {
    fn default() -> Self {
        Disk {
            term: 0,
            voted_for: None,
            start: 1,
            log: crate::raft_log::RaftLog::with_capacity(0),
            snapshot: None,
            raft_version_file: None,
            config_hint: std::cell::Cell::new((0, 0, 0)),
        }
    }
}

impl Disk {
    /// Index of the first entry in `log`.
    pub fn log_start(&self) -> u64 {
        self.start
    }

    /// Last index in the log (or the snapshot's, if later).
    pub fn last_index(&self) -> u64 {
        let log_last = self.start + self.log.len() as u64 - 1;
        log_last.max(self.snapshot.as_ref().map_or(0, |s| s.index))
    }

    /// Term of the last entry.
    pub fn last_term(&self) -> u64 {
        self.term_at(self.last_index()).unwrap_or(0)
    }

    /// Where a heartbeat beside a batch in flight points: the follower's matched index and its
    /// term, or the snapshot's if that entry was compacted away (None if neither is known).
    pub fn heartbeat_point(&self, matched: u64) -> Option<(u64, u64)> {
        let snap_index = self.snapshot.as_ref().map_or(0, |x| x.index);
        [matched, snap_index]
            .into_iter()
            .find_map(|i| self.term_at(i).map(|t| (i, t)))
    }

    /// Term at `index`, if known (not compacted away).
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        if let Some(s) = self.snapshot.as_ref().filter(|s| s.index == index) {
            return Some(s.term);
        }
        let start = self.log_start();
        if index < start {
            return None;
        }
        self.log.get((index - start) as usize).map(|e| e.term)
    }

    /// The entry at `index`, if in the log.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        let start = self.log_start();
        if index < start {
            return None;
        }
        self.log.get((index - start) as usize)
    }

    /// Drops entries from `index` on.
    pub fn truncate_from(&mut self, index: u64) {
        let start = self.log_start();
        let keep = index.saturating_sub(start) as usize;
        self.log.truncate(keep);
    }

    /// The latest configuration in the log or snapshot, with its index.
    pub fn latest_config(&self) -> (u64, Vec<Peer>) {
        let start = self.log_start();
        let end = start + self.log.len() as u64; // one past the last entry in the log
        let (found, upto, upto_term) = self.config_hint.get();
        let same_prefix =
            upto >= start && upto < end && self.entry(upto).is_some_and(|e| e.term == upto_term);
        let from = if same_prefix { upto + 1 } else { start };
        let newer = (from..end)
            .rev()
            .find(|&i| matches!(self.entry(i).map(|e| &e.kind), Some(EntryKind::Config(_))));
        let at = newer.or_else(|| (same_prefix && found >= start).then_some(found));
        if let Some(last) = end.checked_sub(1).filter(|&l| l >= start)
            && let Some(t) = self.entry(last).map(|e| e.term)
        {
            self.config_hint.set((at.unwrap_or(0), last, t));
        }
        let in_log = at.and_then(|i| match self.entry(i).map(|e| &e.kind) {
            Some(EntryKind::Config(p)) => Some((i, p.to_vec())),
            _ => None,
        });
        #[cfg(debug_assertions)]
        {
            let scanned = (start..end)
                .rev()
                .find(|&i| matches!(self.entry(i).map(|e| &e.kind), Some(EntryKind::Config(_))));
            debug_assert_eq!(at, scanned, "latest_config's hint is stale");
        }
        let in_snap = self.snapshot.as_ref().map(|s| (s.index, s.config.clone()));
        match (in_log, in_snap) {
            (Some(l), Some(s)) => {
                if l.0 >= s.0 {
                    l
                } else {
                    s
                }
            }
            (Some(l), None) => l,
            (None, Some(s)) => s,
            (None, None) => (0, Vec::new()),
        }
    }

    /// Whether the snapshot or the log holds an entry of `schema` or newer (`max_schema() >=
    /// schema`, stopping at the first such entry: a leader writes its schema entry early).
    pub fn has_schema(&self, schema: u32) -> bool {
        self.snapshot.as_ref().map_or(1, |s| s.max_schema) >= schema
            || self.log.iter().any(|e| e.schema() >= schema)
    }

    /// Highest schema in the snapshot and log.
    pub fn max_schema(&self) -> u32 {
        let snap = self.snapshot.as_ref().map_or(1, |s| s.max_schema);
        self.log.iter().map(Entry::schema).fold(snap, u32::max)
    }
}

/// Raft role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Follower.
    Follower,
    /// Candidate (in pre-vote or a real election).
    Candidate,
    /// Leader.
    Leader,
}

/// Per-follower replication state kept by a leader.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Next index to send.
    pub next: u64,
    /// Highest index known replicated.
    pub matched: u64,
    /// An AppendEntries/InstallSnapshot is in flight.
    pub inflight: bool,
    /// Until when the batch in flight is waited for; past it a heartbeat's answer restarts
    /// replication (the batch or its answer was lost).
    pub inflight_until: SimTime,
    /// When the follower last answered.
    pub contact: SimTime,
    /// An InstallSnapshot of this index is in flight until about this time (its transfer
    /// time plus slack). Meanwhile only its own answer moves replication on: answers to the
    /// heartbeats sent during the transfer just refresh contact, as in hashicorp/raft, where
    /// heartbeats run on their own goroutine and the replication loop waits on the snapshot.
    pub snapshot_inflight: Option<(u64, SimTime)>,
}

/// State lost on stop or crash.
#[derive(Debug, Clone)]
pub struct Volatile {
    /// Role.
    pub role: Role,
    /// Leader this server knows.
    pub leader: Option<ServerId>,
    /// Last time it heard from a leader (or granted a vote).
    pub last_contact: Option<SimTime>,
    /// Commit index.
    pub commit: u64,
    /// Applied index.
    pub applied: u64,
    /// Workload writes applied to the FSM.
    pub fsm_writes: u64,
    /// Votes (or pre-votes) received.
    pub votes: Vec<ServerId>,
    /// In the pre-vote phase of a candidacy.
    pub prevote: bool,
    /// Leader: per-server progress (indexed by ServerId).
    pub progress: Vec<Progress>,
    /// Leader: transferring leadership to this server; writes are refused meanwhile.
    pub transfer_to: Option<ServerId>,
    /// Latest configuration (index, peers).
    pub config_index: u64,
    /// See `config_index`.
    pub config: Vec<Peer>,
    /// Bumped on every role change: stale role timers are ignored.
    pub role_gen: u64,
    /// Time the process last became Running.
    pub running_since: SimTime,
    /// When the latest follower, heartbeat and lease timer (in that order) was armed to fire,
    /// with the role generation it carries: the quiet-period elision (`steady`) takes over
    /// these timers' schedules and hands them back.
    pub timer_at: [(SimTime, u64); 3],
}

impl Volatile {
    /// Fresh volatile state for a process that just booted.
    pub fn boot(n: usize, disk: &Disk, now: SimTime) -> Self {
        let (config_index, config) = disk.latest_config();
        let applied = disk.snapshot.as_ref().map_or(0, |s| s.index);
        let fsm_writes = disk.snapshot.as_ref().map_or(0, |s| s.fsm_writes);
        Volatile {
            role: Role::Follower,
            leader: None,
            last_contact: None,
            commit: applied,
            applied,
            fsm_writes,
            votes: Vec::new(),
            prevote: false,
            progress: vec![Progress::default(); n],
            transfer_to: None,
            config_index,
            config,
            role_gen: 0,
            running_since: now,
            timer_at: [(SimTime::ZERO, u64::MAX); 3],
        }
    }
}

/// Everything about one server.
#[derive(Debug, Clone)]
pub struct Server {
    /// Name, version, protocol.
    pub spec: ServerSpec,
    /// Process lifecycle.
    pub proc: ProcessState,
    /// Bumped on every start/stop/crash: events of an earlier incarnation are dropped.
    pub incarnation: u64,
    /// Persistent state.
    pub disk: Disk,
    /// Volatile state.
    pub vol: Volatile,
    /// Address generation (bumped when the server comes back with a new address).
    pub addr_gen: u32,
    /// A broken binary, if one is installed.
    pub bad_binary: Option<BadBinary>,
    /// Added delay on every log append (slow disk / fsync).
    pub disk_delay_ns: u64,
    /// Gossip status (one global view; see `serf` module docs).
    pub serf: SerfStatus,
    /// Bumped to cancel pending serf transitions.
    pub serf_gen: u64,
    /// Drain: `Some(done_at)` while draining or drained.
    pub drain_done_at: Option<SimTime>,
    /// While paused: the state to return to on resume.
    pub paused_from: Option<ProcessState>,
    /// The version this server last ran and advertised in its serf tags (`build`). A binary
    /// that was installed but never started successfully is not advertised: gossip keeps the
    /// member's last tags, and version checks such as Nomad's `ServersMeetMinimumVersion` read
    /// those tags, failed members included.
    pub advertised: rehearse_model::versions::Version,
    /// The raft protocol it last ran with (serf tag `raft_vsn`; under protocol 3 its Raft ID is
    /// a UUID, under 2 its address), likewise kept from its last successful start.
    pub advertised_protocol: u8,
    /// FSM divergence already reported for this server (one violation per server and run).
    pub fsm_reported: bool,
    /// Boots attempted so far (a start's boot delay ended; a bad binary shows there).
    pub boots: u64,
    /// Binaries installed so far.
    pub installs: u64,
}
