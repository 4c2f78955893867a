//! The operator surface as data: the shapes of Nomad's (and Consul's) HTTP API answers that an
//! upgrade procedure reads, in Rust form.
//!
//! Both worlds produce these: the simulator (`World`'s operator methods) and the live HTTP
//! clients (`rehearse::live`), so the procedure reads one shape. Field meanings follow
//! Nomad's API documentation. Timestamps are milliseconds on the *observer's* clock: simulated
//! milliseconds in the simulator, Unix-epoch milliseconds on a live cluster.

use crate::versions::Version;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// An immutable string shared by reference count: node names, addresses and Raft IDs in API
/// answers.
///
/// The explorer reads the cluster every poll (every 2 simulated seconds, in tens of thousands
/// of runs per sweep), and each read lists every server's name, address and ID several times.
/// As `String`s every listing copied the bytes into fresh allocations and freed them again;
/// the simulator formats each label once and hands out clones of it, which only bump a
/// count. It reads, compares, orders, hashes, prints (`Display` and `Debug`) and serializes
/// exactly as the `String` it replaces (a plain JSON string), so every JSON shape, report and
/// message stays byte for byte the same.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedStr(Arc<str>);

impl SharedStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        SharedStr::from("")
    }
}

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

/// As a `String` prints: quoted and escaped.
impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        SharedStr(Arc::from(s))
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        SharedStr(Arc::from(s))
    }
}

impl From<&String> for SharedStr {
    fn from(s: &String) -> Self {
        SharedStr(Arc::from(s.as_str()))
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.0.to_string()
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == *other.0
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        **self == *other.0
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        **self == *other.0
    }
}

/// A plain JSON string, as the `String` it replaces.
impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SharedStr::from)
    }
}

/// Serf status of a member, as `GET /v1/agent/members` reports it.
///
/// memberlist's internal "suspect" state is reported as `Alive` by serf's member list, exactly as
/// real servers do; the simulator tracks suspicion internally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SerfStatus {
    /// Reachable member.
    Alive,
    /// Announced a graceful leave that is in progress.
    Leaving,
    /// Left gracefully (with `leave_on_terminate` or `nomad server force-leave`).
    Left,
    /// Detected as failed by gossip (probe + suspicion timeout expired).
    Failed,
}

/// One entry of `GET /v1/agent/members` (the receiving server's own gossip view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Node name, e.g. `s1.global`.
    pub name: SharedStr,
    /// Gossip address `ip:port`.
    pub addr: SharedStr,
    /// Serf status.
    pub status: SerfStatus,
    /// `Tags.build`: the binary version.
    pub build: Version,
    /// `Tags.raft_vsn`.
    pub raft_vsn: u8,
    /// `Tags.id`: the Raft server ID (UUID under protocol 3, the address under 2).
    pub id: SharedStr,
    /// `Tags.nonvoter`: started as a non-voter.
    pub nonvoter: bool,
}

/// One entry of `GET /v1/operator/raft/configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftServer {
    /// Raft server ID.
    pub id: SharedStr,
    /// Node name.
    pub node: SharedStr,
    /// RPC address `ip:port`.
    pub address: SharedStr,
    /// Whether this server is the leader.
    pub leader: bool,
    /// Whether this server is a voter (false: a non-voter, e.g. awaiting autopilot promotion).
    pub voter: bool,
    /// Raft protocol the server speaks.
    pub raft_protocol: u8,
}

/// `GET /v1/operator/raft/configuration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftConfiguration {
    /// Raft index of the configuration entry.
    pub index: u64,
    /// Servers in the configuration.
    pub servers: Vec<RaftServer>,
}

/// One entry of `GET /v1/operator/autopilot/health`'s `Servers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHealth {
    /// Raft server ID.
    pub id: SharedStr,
    /// Node name.
    pub name: SharedStr,
    /// RPC address.
    pub address: SharedStr,
    /// Serf status as seen by the leader.
    pub serf_status: SerfStatus,
    /// Binary version.
    pub version: Version,
    /// Whether this is the leader.
    pub leader: bool,
    /// Time since the leader last heard from it; `None` when unknown (the API's `-1ns`).
    pub last_contact_ms: Option<u64>,
    /// Last log term the leader knows this server has.
    pub last_term: u64,
    /// Last log index the leader knows this server has.
    pub last_index: u64,
    /// Autopilot's health verdict for this server.
    pub healthy: bool,
    /// Whether this server is a voter.
    pub voter: bool,
    /// When `healthy` last flipped, in observer milliseconds; `None` for the zero time.
    pub stable_since_ms: Option<u64>,
}

/// `GET /v1/operator/autopilot/health` (HTTP 200 when healthy, 429 when not; same body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutopilotHealth {
    /// Whether every server is healthy.
    pub healthy: bool,
    /// Healthy voters minus quorum; may be negative when quorum is at risk.
    pub failure_tolerance: i64,
    /// Raft ID of the leader.
    pub leader: Option<SharedStr>,
    /// Raft IDs of voters.
    pub voters: Vec<SharedStr>,
    /// Per-server health.
    pub servers: Vec<ServerHealth>,
}

/// Raft role of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RaftState {
    /// Following a leader (or waiting for one).
    Follower,
    /// Asking for votes.
    Candidate,
    /// Leading.
    Leader,
    /// Shut down.
    Shutdown,
}

/// `stats.raft` of `GET /v1/agent/self`, answered by the server itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftStats {
    /// Raft role.
    pub state: RaftState,
    /// Current term.
    pub term: u64,
    /// Last log index.
    pub last_log_index: u64,
    /// Term of the last log entry.
    pub last_log_term: u64,
    /// Commit index.
    pub commit_index: u64,
    /// Applied index.
    pub applied_index: u64,
    /// Raft protocol version.
    pub protocol_version: u8,
    /// Number of peers in its configuration (excluding itself).
    pub num_peers: u64,
    /// Milliseconds since it last heard from a leader; `None` if never (or it is the leader).
    pub last_contact_ms: Option<u64>,
}

/// `GET /v1/agent/self` reduced to what an upgrade reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSelf {
    /// Node name.
    pub name: SharedStr,
    /// Binary version (`config.Version.Version`).
    pub version: Version,
    /// Raft statistics.
    pub raft: RaftStats,
}

/// `GET /v1/operator/scheduler/configuration` reduced to fields an upgrade must preserve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerConfig {
    /// Scheduler algorithm, e.g. `binpack`.
    pub scheduler_algorithm: String,
    /// Whether preemption is enabled for service jobs.
    pub preemption_service: bool,
    /// Whether the eval broker is paused.
    pub pause_eval_broker: bool,
    /// Whether job registration is rejected.
    pub reject_job_registration: bool,
    /// Raft index of the last change (used for `?cas=`).
    pub modify_index: u64,
}

/// A saved Raft snapshot (`GET /v1/operator/snapshot`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// Raft index the snapshot covers.
    pub index: u64,
    /// Term of that index.
    pub term: u64,
    /// Snapshot format (see `versions::LineInfo::snapshot_format`).
    pub format: u32,
    /// Version of the server that wrote it.
    pub written_by: Version,
    /// sha-256 of the body, base64, as in the `Digest` header.
    pub digest: String,
    /// Size in bytes (simulated: proportional to state size).
    pub size_bytes: u64,
}

/// Why an operator call failed, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// The server does not answer (stopped, crashed, paused, partitioned from the caller, or the
    /// connection was refused / timed out).
    #[error("{addr}: unreachable ({why})")]
    Unreachable {
        /// Address or name called.
        addr: SharedStr,
        /// Connection refused, timeout, …
        why: String,
    },
    /// HTTP 500 `No cluster leader`.
    #[error("{addr}: No cluster leader")]
    NoLeader {
        /// Address or name called.
        addr: SharedStr,
    },
    /// The endpoint does not exist or cannot answer in this configuration (e.g. autopilot health
    /// under raft protocol 2 answers HTTP 500; transfer-leadership before Nomad 1.7).
    #[error("{addr}: unsupported: {what}")]
    Unsupported {
        /// Address or name called.
        addr: SharedStr,
        /// What is unsupported.
        what: String,
    },
    /// HTTP 401/403.
    #[error("{addr}: permission denied (check the token; it is never printed)")]
    Forbidden {
        /// Address or name called.
        addr: SharedStr,
    },
    /// Not asked: the procedure did not need this part of the cluster in this step (between a
    /// server's stop and its start, see `contract::Reads::cluster`), so the driver did not
    /// read it.
    #[error("not read in this step")]
    NotRead,
    /// Any other refusal, with the server's message.
    #[error("{addr}: {message}")]
    Rejected {
        /// Address or name called.
        addr: SharedStr,
        /// Server's message.
        message: String,
    },
}

/// A client node's status, as `GET /v1/nodes` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Heartbeating (or not yet marked down).
    Ready,
    /// Marked down by the leader after its heartbeat TTL expired.
    Down,
}

/// One entry of `GET /v1/nodes`, reduced to what an upgrade reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Node name.
    pub name: SharedStr,
    /// Status.
    pub status: NodeStatus,
    /// The client's version (`Version`, as it registered).
    pub version: Version,
    /// Whether a drain was requested (`Drain`).
    pub drain: bool,
    /// Whether the scheduler may place allocations on it (`SchedulingEligibility` is
    /// `eligible`). Journals written before it was read have none: eligible.
    #[serde(default = "eligible_by_default")]
    pub eligible: bool,
}

fn eligible_by_default() -> bool {
    true
}

/// A job's scheduler type (`Type` in `GET /v1/jobs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    /// Long-running; lost or drained allocations are replaced.
    Service,
    /// Runs to completion; a lost allocation is re-run.
    Batch,
    /// One allocation on every eligible client.
    System,
}

/// One job as `GET /v1/jobs` and `GET /v1/job/:id/summary` report it, reduced to what an
/// upgrade verifies: does the job run as many allocations as it wants?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    /// Job ID.
    pub name: SharedStr,
    /// Scheduler type.
    pub kind: JobType,
    /// Allocations the job wants running: the sum of its groups' counts (for a system job, one
    /// per eligible ready client). Batch jobs that completed want none.
    pub desired: u32,
    /// Allocations running now (the summary's `Running`, summed over groups).
    pub running: u32,
    /// Allocations waiting to be placed (the summary's `Queued`).
    pub queued: u32,
}

/// The leader's evaluation broker and blocked-evaluation tracker, as `GET /v1/metrics` reports
/// them (gauges `nomad.nomad.broker.total_ready`, `nomad.nomad.broker.total_unacked`,
/// `nomad.nomad.broker.total_blocked` and `nomad.nomad.blocked_evals.total_blocked`; the broker
/// exists only on the leader, so a follower reports zeros).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStats {
    /// Evaluations ready for a scheduler worker.
    pub ready: u64,
    /// Evaluations handed to a worker and not yet acknowledged.
    pub unacked: u64,
    /// Evaluations waiting behind another evaluation of the same job (broker `total_blocked`).
    pub blocked: u64,
    /// Evaluations the blocked-evals tracker holds until capacity frees up
    /// (`blocked_evals.total_blocked`).
    pub blocked_capacity: u64,
    /// Evaluations that failed after the delivery limit (counted since leadership began).
    pub failed: u64,
}

impl BrokerStats {
    /// The backlog an operator watches after an upgrade: ready + unacked + both blocked counts.
    pub fn backlog(&self) -> u64 {
        self.ready + self.unacked + self.blocked + self.blocked_capacity
    }
}

/// The cluster's workload plane as an upgrade verifies it: every job's allocation counts and
/// the eval broker's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Every job, by name.
    pub jobs: Vec<JobState>,
    /// The leader's broker counters.
    pub broker: BrokerStats,
}

impl Workload {
    /// Jobs running fewer allocations than they want, one line each ("web 2 of 3 running").
    pub fn short_jobs(&self) -> Vec<String> {
        self.jobs
            .iter()
            .filter(|j| j.running < j.desired)
            .map(|j| format!("{} {} of {} running", j.name, j.running, j.desired))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{AgentSelf, Member, SerfStatus, SharedStr};
    use crate::versions::Version;

    /// A `SharedStr` reads, prints and serializes exactly as the `String` it replaced.
    #[test]
    fn shared_str_is_a_string_to_every_reader() {
        let text = "s1.global \"quoted\" é";
        let shared = SharedStr::from(text);
        let owned = text.to_string();
        assert_eq!(format!("{shared}"), format!("{owned}"));
        assert_eq!(format!("{shared:?}"), format!("{owned:?}"));
        assert_eq!(
            serde_json::to_string(&shared).unwrap(),
            serde_json::to_string(&owned).unwrap()
        );
        let back: SharedStr =
            serde_json::from_str(&serde_json::to_string(&owned).unwrap()).unwrap();
        assert_eq!(back, shared);
        assert_eq!(shared, owned);
        assert_eq!(owned, shared);
        assert_eq!(shared, text);
        assert_eq!(text, shared);
        assert_eq!(&*shared, text);
        assert_eq!(String::from(shared.clone()), owned);
        let (s1, s2) = (SharedStr::from("s1"), SharedStr::from("s10"));
        assert_eq!(s1.cmp(&s2), "s1".cmp("s10"));
        assert_eq!(SharedStr::default(), "");
    }

    /// An API shape with shared fields has the JSON form it had with `String` fields.
    #[test]
    fn api_shapes_keep_their_json() {
        let m = Member {
            name: "s1.global".into(),
            addr: "10.0.0.1:4648".into(),
            status: SerfStatus::Alive,
            build: Version::new(1, 8, 7),
            raft_vsn: 3,
            id: "abc".into(),
            nonvoter: false,
        };
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["name"], "s1.global");
        assert_eq!(json["addr"], "10.0.0.1:4648");
        assert_eq!(json["id"], "abc");
        let back: Member = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
        let bad = serde_json::from_str::<AgentSelf>(r#"{"name": 3}"#);
        assert!(bad.is_err());
    }
}
