//! The procedure's contract with a driver: the `Observation` it reads and the `Action` it
//! emits, with what they carry (halt reasons, the summary, phases).
//!
//! The procedure (`rehearse::procedure`) is a pure state machine over these types; the
//! simulator and the live drivers produce observations and carry out actions. Keeping the types
//! here, apart from the machine, lets every driver, recorder and report name them without
//! depending on the procedure's configuration or the plan.

use crate::api::{
    AgentSelf, ApiError, AutopilotHealth, Member, NodeInfo, RaftConfiguration, SchedulerConfig,
    SharedStr, SnapshotInfo, Workload,
};
use crate::versions::Version;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the driver read from the cluster right now. Server names are `SharedStr`s (the
/// simulator hands out its own, so an observation copies no names); they compare with the
/// plan's `String`s directly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterView {
    /// Name of the leader, if any server knows one.
    pub leader: Option<SharedStr>,
    /// Gossip members.
    pub members: Result<Vec<Member>, ApiError>,
    /// Raft configuration.
    pub raft: Result<RaftConfiguration, ApiError>,
    /// Autopilot health (HTTP 429 is data: `healthy: false`).
    pub health: Result<AutopilotHealth, ApiError>,
    /// Each server's own `/v1/agent/self`, by plan name.
    pub agents: Vec<(SharedStr, Result<AgentSelf, ApiError>)>,
    /// Scheduler configuration (Nomad); `None` for Consul.
    pub scheduler: Option<Result<SchedulerConfig, ApiError>>,
    /// Servers whose client drain has completed, and, in the client phase, the client-only
    /// nodes of the batch whose drain has completed.
    pub drained: Vec<SharedStr>,
    /// Whether a probe write was acknowledged since the previous observation (`None`: the
    /// driver has no write probe).
    pub write_accepted: Option<bool>,
    /// Client nodes (`GET /v1/nodes`), read when `Reads::nodes` asks.
    #[serde(default, deserialize_with = "compat::nodes")]
    pub nodes: Readout<Vec<NodeInfo>>,
    /// Servers that are also clients with allocations still running
    /// (`GET /v1/node/:id/allocations`, ClientStatus `running`), read when `Reads::allocs`
    /// asks; in the client phase, the client-only nodes of the batch with allocations still
    /// running.
    #[serde(default, deserialize_with = "compat::allocs")]
    pub allocs_running: Readout<Vec<SharedStr>>,
    /// Jobs and the eval broker (`GET /v1/jobs`, each job's summary, `GET /v1/metrics`), read
    /// when `Reads::workload` asks. Consul has none (`NotApplicable`).
    #[serde(default)]
    pub workload: Readout<Workload>,
}

impl ClusterView {
    /// A view of a step that did not read the cluster (`Reads::cluster` false): every part is
    /// `ApiError::NotRead`, the servers named in `servers`.
    pub fn not_read(servers: &[SharedStr], scheduler: bool) -> ClusterView {
        ClusterView {
            leader: None,
            members: Err(ApiError::NotRead),
            raft: Err(ApiError::NotRead),
            health: Err(ApiError::NotRead),
            agents: servers
                .iter()
                .map(|s| (s.clone(), Err(ApiError::NotRead)))
                .collect(),
            scheduler: scheduler.then_some(Err(ApiError::NotRead)),
            drained: Vec::new(),
            write_accepted: None,
            nodes: Readout::NotRead,
            allocs_running: Readout::NotRead,
            workload: Readout::NotRead,
        }
    }

    /// Whether the cluster was read (not a `not_read` view).
    pub fn is_read(&self) -> bool {
        !matches!(self.raft, Err(ApiError::NotRead))
    }
}

/// What the procedure looks at in its next observation, beyond the parts every stage reads. A
/// driver may read more; reading less than this changes what the procedure decides. The
/// client node list is read only for the client check: in the simulator it is one record per
/// client node for every observation, on a live cluster one more request per poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// The cluster itself: leader, members, raft configuration, autopilot health, every
    /// server's own state. Not needed between a server's stop and its start: the stop was
    /// judged safe before it was made, and install and start must not wait on the other
    /// servers' answers (a paused one makes every read wait out a timeout). The gate and the
    /// next stop read it again.
    pub cluster: bool,
    /// `GET /v1/nodes`.
    pub nodes: bool,
    /// The running allocations of every server that is also a client.
    pub allocs: bool,
    /// Jobs and the eval broker (the verify stage).
    pub workload: bool,
}

/// A part of the cluster the procedure needs only in some stages, as a driver read it. Every
/// check that needs it says what it does with each case: nothing here means "skip".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Readout<T> {
    /// The answer, or the API's error for it.
    Read(Result<T, ApiError>),
    /// The product has no such thing (Consul has no client nodes and no allocations): the
    /// checks that need it have nothing to check.
    NotApplicable,
    /// Not read in this observation (the procedure did not ask for it in `Reads`).
    #[default]
    NotRead,
    /// The driver cannot read it: a check that needs it halts, naming it, rather than pass.
    Unavailable {
        /// Why.
        why: String,
    },
}

/// Journals written before `Readout` held `Option`s (`None`: not read).
mod compat {
    use super::{ApiError, NodeInfo, Readout, SharedStr};
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T, Old> {
        New(Readout<T>),
        Old(Option<Old>),
    }

    pub(super) fn nodes<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Readout<Vec<NodeInfo>>, D::Error> {
        Ok(
            match Either::<Vec<NodeInfo>, Result<Vec<NodeInfo>, ApiError>>::deserialize(d)? {
                Either::New(r) => r,
                Either::Old(Some(r)) => Readout::Read(r),
                Either::Old(None) => Readout::NotRead,
            },
        )
    }

    pub(super) fn allocs<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Readout<Vec<SharedStr>>, D::Error> {
        Ok(
            match Either::<Vec<SharedStr>, Vec<SharedStr>>::deserialize(d)? {
                Either::New(r) => r,
                Either::Old(Some(r)) => Readout::Read(Ok(r)),
                Either::Old(None) => Readout::NotRead,
            },
        )
    }
}

/// The result of the previous action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ActionResult {
    /// No action yet, or an `Observe`.
    None,
    /// The action was carried out.
    Ok,
    /// A snapshot was saved.
    Snapshot(SnapshotInfo),
    /// The action failed.
    Failed(String),
}

/// One observation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observation {
    /// Observer clock in milliseconds.
    pub now_ms: u64,
    /// Result of the previous action.
    pub result: ActionResult,
    /// The cluster as read.
    pub view: ClusterView,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Save a Raft snapshot and return it in the next observation.
    SaveSnapshot,
    /// Drain the client on a server.
    Drain {
        /// Server name.
        server: String,
    },
    /// Stop a server (SIGINT without leave).
    Stop {
        /// Server name.
        server: String,
    },
    /// Install another binary version on a stopped server.
    ReplaceBinary {
        /// Server name.
        server: String,
        /// Version to install.
        version: Version,
    },
    /// Start a server.
    Start {
        /// Server name.
        server: String,
    },
    /// Move leadership away from the current leader.
    TransferLeadership {
        /// Current leader.
        from: String,
    },
    /// Restore a saved snapshot.
    RestoreSnapshot {
        /// The snapshot.
        snapshot: SnapshotInfo,
    },
    /// Upgrade the client nodes.
    UpgradeClients {
        /// Version.
        version: Version,
    },
    /// Drain a client-only node (`[upgrade.clients]`).
    DrainClient {
        /// Node name.
        client: String,
    },
    /// Stop a client-only node's agent.
    StopClient {
        /// Node name.
        client: String,
    },
    /// Install another version on a stopped client-only node.
    InstallClient {
        /// Node name.
        client: String,
        /// Version to install.
        version: Version,
    },
    /// Start a client-only node's agent.
    StartClient {
        /// Node name.
        client: String,
    },
    /// Mark a client-only node eligible for placements again (its drain left it ineligible).
    MarkEligible {
        /// Node name.
        client: String,
    },
    /// Wait, then observe again.
    Observe {
        /// How long.
        wait_ms: u64,
    },
    /// Finished successfully.
    Done(Summary),
    /// Stopped safely, with the reason.
    Halt(HaltReason),
}

impl Action {
    /// Whether the procedure has ended.
    pub fn is_final(&self) -> bool {
        matches!(self, Action::Done(_) | Action::Halt(_))
    }
}

/// One line for an action, the only rendering of it: consoles, replays and reports print
/// this, and nothing parses it back (logic matches on the enum).
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::SaveSnapshot => write!(f, "save snapshot"),
            Action::Drain { server } => write!(f, "drain the client on {server}"),
            Action::Stop { server } => write!(f, "stop {server}"),
            Action::ReplaceBinary { server, version } => write!(f, "install {version} on {server}"),
            Action::Start { server } => write!(f, "start {server}"),
            Action::TransferLeadership { from } => write!(f, "transfer leadership from {from}"),
            Action::RestoreSnapshot { snapshot } => {
                write!(f, "restore the snapshot at index {}", snapshot.index)
            }
            Action::UpgradeClients { version } => write!(f, "upgrade clients to {version}"),
            Action::DrainClient { client } => write!(f, "drain client {client}"),
            Action::StopClient { client } => write!(f, "stop client {client}"),
            Action::InstallClient { client, version } => {
                write!(f, "install {version} on client {client}")
            }
            Action::StartClient { client } => write!(f, "start client {client}"),
            Action::MarkEligible { client } => write!(f, "mark client {client} eligible"),
            Action::Observe { wait_ms } => write!(f, "observe in {wait_ms} ms"),
            Action::Done(_) => write!(f, "done"),
            Action::Halt(r) => write!(f, "halt: {r}"),
        }
    }
}

/// Why the procedure halted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HaltReason {
    /// Preflight checks did not pass in time.
    PreflightFailed {
        /// Unmet conditions.
        unmet: Vec<String>,
    },
    /// A restarted server did not pass its gate in time.
    GateTimeout {
        /// Server.
        server: String,
        /// Unmet conditions at the timeout.
        unmet: Vec<String>,
    },
    /// The others did not form a healthy quorum, so the server was not stopped.
    UnsafeToStop {
        /// Server that would have been stopped.
        server: String,
        /// Healthy voters other than it.
        healthy_other_voters: usize,
        /// Quorum.
        quorum: usize,
    },
    /// An action failed.
    ActionFailed {
        /// The action.
        action: String,
        /// Error.
        error: String,
    },
    /// The final verification failed.
    VerifyFailed {
        /// Unmet conditions.
        unmet: Vec<String>,
    },
    /// Rolled back after a halt.
    RolledBack {
        /// The original reason.
        cause: Box<HaltReason>,
    },
    /// The observation bound was reached.
    TooManySteps,
    /// The driver's clock went backwards between two observations.
    ClockWentBack {
        /// The earlier observation's time (ms).
        from_ms: u64,
        /// The later observation's time (ms).
        to_ms: u64,
    },
    /// A check needs a part of the cluster the driver cannot read.
    Unreadable {
        /// What could not be read (`GET /v1/nodes`, …).
        what: String,
        /// The check that needs it.
        needed_by: String,
        /// Why the driver cannot read it.
        why: String,
    },
}

impl fmt::Display for HaltReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HaltReason::PreflightFailed { unmet } => {
                write!(f, "preflight failed: {}", unmet.join("; "))
            }
            HaltReason::GateTimeout { server, unmet } => {
                write!(f, "gate timed out for {server}: {}", unmet.join("; "))
            }
            HaltReason::UnsafeToStop {
                server,
                healthy_other_voters,
                quorum,
            } => write!(
                f,
                "did not stop {server}: only {healthy_other_voters} other healthy voters, quorum is {quorum}"
            ),
            HaltReason::ActionFailed { action, error } => write!(f, "{action} failed: {error}"),
            HaltReason::VerifyFailed { unmet } => {
                write!(f, "verification failed: {}", unmet.join("; "))
            }
            HaltReason::RolledBack { cause } => write!(f, "rolled back after: {cause}"),
            HaltReason::TooManySteps => write!(f, "observation bound reached"),
            HaltReason::ClockWentBack { from_ms, to_ms } => write!(
                f,
                "the driver's clock went back from {from_ms} ms to {to_ms} ms (a driver bug)"
            ),
            HaltReason::Unreadable {
                what,
                needed_by,
                why,
            } => write!(f, "cannot read {what}, which {needed_by} needs: {why}"),
        }
    }
}

/// What a completed upgrade did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Servers in the order they were upgraded.
    pub order: Vec<String>,
    /// Whether the last server upgraded was the leader when chosen (or leadership was moved).
    pub leader_last: bool,
    /// Notes (e.g. transfer skipped).
    pub notes: Vec<String>,
}

/// Phase of the procedure, for timelines and fault placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Checks before anything is touched.
    Preflight,
    /// Saving the snapshot.
    Snapshot,
    /// Draining a server's client.
    Drain,
    /// Moving leadership.
    Transfer,
    /// Waiting until it is safe to stop.
    SafeToStop,
    /// Stopping.
    Stop,
    /// Replacing the binary.
    Replace,
    /// Starting.
    Start,
    /// Waiting for the gate.
    Gate,
    /// Final verification.
    Verify,
    /// Clients.
    Clients,
    /// Rolling back.
    Rollback,
    /// Finished.
    Done,
    /// Halted.
    Halted,
}

/// Where the procedure is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    /// Phase.
    pub phase: Phase,
    /// Servers concerned.
    pub servers: Vec<String>,
    /// Index of the server batch (0-based), if in a server step.
    pub batch: Option<usize>,
}
