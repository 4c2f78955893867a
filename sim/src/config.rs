//! Configuration of a simulated cluster: servers, timers, gossip, autopilot, network, workload.
//!
//! Defaults are the reference values in `shared/reference/nomad.md` (hashicorp/raft v1.7.3,
//! memberlist WAN for Nomad servers, LAN for Consul, autopilot defaults).

use rehearse_model::time::{MS, SEC};
use rehearse_model::versions::{Edition, Product, Version, default_raft_multiplier, line_info};
use serde::{Deserialize, Serialize};

/// hashicorp/raft timers before `raft_multiplier` is applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RaftTimings {
    /// HeartbeatTimeout (1 s).
    pub heartbeat_timeout_ns: u64,
    /// ElectionTimeout (1 s).
    pub election_timeout_ns: u64,
    /// LeaderLeaseTimeout (500 ms).
    pub leader_lease_timeout_ns: u64,
    /// CommitTimeout (50 ms); not scaled by the multiplier.
    pub commit_timeout_ns: u64,
    /// MaxAppendEntries (64).
    pub max_append_entries: usize,
    /// TrailingLogs kept after a snapshot (10240).
    pub trailing_logs: u64,
    /// SnapshotThreshold (8192).
    pub snapshot_threshold: u64,
    /// SnapshotInterval (120 s); checked at a random time in [I, 2I).
    pub snapshot_interval_ns: u64,
    /// InstallSnapshot transfer rate in state entries per second (simplification: the snapshot
    /// size is proportional to the number of FSM entries).
    pub install_snapshot_entries_per_sec: u64,
}

impl Default for RaftTimings {
    fn default() -> Self {
        RaftTimings {
            heartbeat_timeout_ns: SEC,
            election_timeout_ns: SEC,
            leader_lease_timeout_ns: 500 * MS,
            commit_timeout_ns: 50 * MS,
            max_append_entries: 64,
            trailing_logs: 10_240,
            snapshot_threshold: 8_192,
            snapshot_interval_ns: 120 * SEC,
            install_snapshot_entries_per_sec: 20_000,
        }
    }
}

/// Serf / memberlist failure-detection timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SerfTimings {
    /// Probe interval.
    pub probe_interval_ns: u64,
    /// Suspicion timeout before a suspect is declared failed.
    pub suspicion_timeout_ns: u64,
    /// How long a rejoin (alive again) takes to spread.
    pub rejoin_ns: u64,
}

impl SerfTimings {
    /// memberlist WAN settings, used by Nomad servers: probe 5 s, suspicion 6·max(1,log10 n)·5 s
    /// = 30 s for n ≤ 10, so a stopped server is `failed` about 30–40 s after it stops.
    pub fn wan() -> Self {
        SerfTimings {
            probe_interval_ns: 5 * SEC,
            suspicion_timeout_ns: 30 * SEC,
            rejoin_ns: 500 * MS,
        }
    }

    /// memberlist LAN settings, used by Consul servers: probe 1 s, suspicion 4·max(1,log10 n)·1 s.
    pub fn lan() -> Self {
        SerfTimings {
            probe_interval_ns: SEC,
            suspicion_timeout_ns: 4 * SEC,
            rejoin_ns: 200 * MS,
        }
    }
}

/// Autopilot settings (read from config at bootstrap; stored in Raft afterwards).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutopilotConfig {
    /// Remove failed servers from the Raft configuration.
    pub cleanup_dead_servers: bool,
    /// Max time since last contact for a healthy server (200 ms).
    pub last_contact_threshold_ns: u64,
    /// Max entries a healthy server may trail the leader by (250).
    pub max_trailing_logs: u64,
    /// Healthy time before a non-voter is promoted (10 s).
    pub server_stabilization_time_ns: u64,
    /// Never prune below this many voters (0 = no floor).
    pub min_quorum: usize,
    /// Health refresh interval (2 s): health is stale for up to this long.
    pub health_interval_ns: u64,
    /// Reconcile / prune loop interval (10 s).
    pub reconcile_interval_ns: u64,
    /// How long the stats fetch from a server that does not answer takes to fail (half the
    /// health interval). Until then autopilot keeps reporting that server's previous health.
    /// Calibrated on real Consul 1.8.7 (`rehearse calibrate`, follower-restart): a server killed
    /// just after a refresh was marked unhealthy 2.97–3.08 s later (5 of 5 trials), i.e. on the
    /// next refresh plus this timeout, not on the next refresh.
    #[serde(default = "default_stats_timeout_ns")]
    pub stats_timeout_ns: u64,
}

fn default_stats_timeout_ns() -> u64 {
    SEC
}

impl Default for AutopilotConfig {
    fn default() -> Self {
        AutopilotConfig {
            cleanup_dead_servers: true,
            last_contact_threshold_ns: 200 * MS,
            max_trailing_logs: 250,
            server_stabilization_time_ns: 10 * SEC,
            min_quorum: 0,
            health_interval_ns: 2 * SEC,
            reconcile_interval_ns: 10 * SEC,
            stats_timeout_ns: default_stats_timeout_ns(),
        }
    }
}

/// Network model: one-way latency drawn uniformly per message, and loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// Minimum one-way latency.
    pub latency_ns_min: u64,
    /// Maximum one-way latency.
    pub latency_ns_max: u64,
    /// Probability a message is dropped.
    pub loss: f64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency_ns_min: 200_000,
            latency_ns_max: 2 * MS,
            loss: 0.0,
        }
    }
}

/// Write workload: job registrations submitted to the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadConfig {
    /// Writes per simulated second (0 = none).
    pub writes_per_sec: f64,
    /// FSM entries present at the start (state size; drives InstallSnapshot duration).
    pub initial_state_entries: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            writes_per_sec: 10.0,
            initial_state_entries: 5_000,
        }
    }
}

/// Client nodes and the leader's heartbeat timers (Nomad's `nomad/heartbeat.go`; see the
/// `clients` module).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// Number of client-only nodes.
    pub count: usize,
    /// Their version.
    pub version: Option<Version>,
    /// Time a drain of a server-that-is-a-client takes, min and max.
    pub drain_ns_min: u64,
    /// See `drain_ns_min`.
    pub drain_ns_max: u64,
    /// Server `min_heartbeat_ttl` (10 s): the shortest TTL the leader grants.
    #[serde(default = "d10s")]
    pub min_heartbeat_ttl_ns: u64,
    /// Server `max_heartbeats_per_second` (50): the TTL grows past the minimum so that all
    /// nodes together heartbeat at most this often.
    #[serde(default = "d50")]
    pub max_heartbeats_per_sec: f64,
    /// Server `heartbeat_grace` (10 s): added to the TTL before a node is marked down.
    #[serde(default = "d10s")]
    pub heartbeat_grace_ns: u64,
    /// Server `failover_heartbeat_ttl` (5 min): the TTL a new leader gives every node.
    #[serde(default = "d300s")]
    pub failover_heartbeat_ttl_ns: u64,
    /// How long the allocations of a drained server-client keep running after its drain
    /// reports complete: the tasks' `kill_timeout`/`shutdown_delay` (hashicorp/nomad#14293).
    /// 0: they have stopped when the drain completes.
    #[serde(default)]
    pub kill_timeout_ns: u64,
}

fn d10s() -> u64 {
    10 * SEC
}
fn d50() -> f64 {
    50.0
}
fn d300s() -> u64 {
    300 * SEC
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            count: 0,
            version: None,
            drain_ns_min: 5 * SEC,
            drain_ns_max: 30 * SEC,
            min_heartbeat_ttl_ns: d10s(),
            max_heartbeats_per_sec: d50(),
            heartbeat_grace_ns: d10s(),
            failover_heartbeat_ttl_ns: d300s(),
            kill_timeout_ns: 0,
        }
    }
}

/// One server process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSpec {
    /// Node name, e.g. `s1`.
    pub name: String,
    /// Binary version.
    pub version: Version,
    /// Raft protocol (2 or 3).
    pub raft_protocol: u8,
    /// Also runs a Nomad client (must be drained before a restart).
    pub also_client: bool,
}

/// Everything that defines a run, together with the seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// The one seed.
    pub seed: u64,
    /// Product.
    pub product: Product,
    /// Community or Enterprise build (Enterprise-only defects apply to the latter).
    #[serde(default)]
    pub edition: Edition,
    /// Servers, bootstrapped as voters.
    pub servers: Vec<ServerSpec>,
    /// raft_multiplier (1–10) applied to heartbeat, election and lease timeouts.
    pub raft_multiplier: u32,
    /// Raft timers.
    pub raft: RaftTimings,
    /// Gossip timing.
    pub serf: SerfTimings,
    /// Autopilot.
    pub autopilot: AutopilotConfig,
    /// Network.
    pub net: NetConfig,
    /// Workload.
    pub workload: WorkloadConfig,
    /// Clients.
    pub clients: ClientConfig,
    /// ACLs are enabled (`acl { enabled = true }`): the leader's own RPCs need its token
    /// (hashicorp/nomad#24231 is a missing one).
    #[serde(default)]
    pub acl_enabled: bool,
    /// Server boot time, min and max (process start → Raft running).
    pub boot_ns_min: u64,
    /// See `boot_ns_min`.
    pub boot_ns_max: u64,
    /// The raft protocol a server's configuration sets when a given version is installed (a
    /// plan's `target_raft_protocol` travels with the target binary). Versions not listed keep
    /// the server's protocol.
    #[serde(default)]
    pub raft_protocol_by_version: Vec<(Version, u8)>,
    /// The jobs the clients run (none: the workload plane does nothing; see `workload`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<crate::workload::JobSpec>,
    /// The workload plane's parameters.
    #[serde(
        default,
        skip_serializing_if = "crate::workload::WorkloadPlaneConfig::is_default"
    )]
    pub plane: crate::workload::WorkloadPlaneConfig,
}

impl SimConfig {
    /// A Nomad cluster `s1..sN` on one version with Nomad defaults (multiplier 1, WAN gossip).
    pub fn nomad(servers: usize, version: Version, seed: u64) -> SimConfig {
        SimConfig::base(Product::Nomad, servers, version, seed)
    }

    /// A Consul 1.8.7 cluster with Consul defaults (multiplier 5, LAN gossip).
    pub fn consul(servers: usize, seed: u64) -> SimConfig {
        let mut c = SimConfig::base(Product::Consul, servers, Version::new(1, 8, 7), seed);
        c.serf = SerfTimings::lan();
        // Calibrated (`rehearse calibrate`, restart-within-refresh): a restarted Consul 1.8.7
        // server had heard from the leader 0.10–0.31 s after its process was spawned.
        c.boot_ns_min = 50 * MS;
        c.boot_ns_max = 300 * MS;
        c
    }

    fn base(product: Product, n: usize, version: Version, seed: u64) -> SimConfig {
        let servers = (1..=n)
            .map(|i| ServerSpec {
                name: format!("s{i}"),
                version,
                raft_protocol: 3,
                also_client: false,
            })
            .collect();
        SimConfig {
            seed,
            product,
            edition: Edition::Community,
            servers,
            raft_multiplier: default_raft_multiplier(product),
            raft: RaftTimings::default(),
            serf: SerfTimings::wan(),
            autopilot: AutopilotConfig::default(),
            net: NetConfig::default(),
            workload: WorkloadConfig::default(),
            clients: ClientConfig::default(),
            acl_enabled: false,
            boot_ns_min: 300 * MS,
            boot_ns_max: 2 * SEC,
            raft_protocol_by_version: Vec::new(),
            jobs: Vec::new(),
            plane: Default::default(),
        }
    }

    /// Checks the configuration, naming the field at fault.
    pub fn validate(&self) -> Result<(), crate::SimError> {
        let bad = |m: String| Err(crate::SimError::Config(m));
        if self.servers.is_empty() {
            return bad("servers: at least one server is needed".into());
        }
        if self.servers.len() > crate::world::MAX_SERVERS {
            return bad(format!(
                "servers: at most {} servers",
                crate::world::MAX_SERVERS
            ));
        }
        if !(1..=10).contains(&self.raft_multiplier) {
            return bad(format!(
                "raft_multiplier: {} is outside 1–10",
                self.raft_multiplier
            ));
        }
        if !(0.0..=1.0).contains(&self.net.loss) {
            return bad(format!("net.loss: {} is not a probability", self.net.loss));
        }
        let rate = self.workload.writes_per_sec;
        let max_rate = crate::world::MAX_WRITES_PER_SEC;
        if !(rate.is_finite() && (0.0..=max_rate).contains(&rate)) {
            return bad(format!(
                "workload.writes_per_sec: {rate} is not between 0 and {max_rate}"
            ));
        }
        crate::workload::validate_jobs(&self.jobs).map_err(crate::SimError::Config)?;
        self.plane.validate().map_err(crate::SimError::Config)?;
        if self.clients.count > crate::clients::MAX_NODES {
            return bad(format!(
                "clients.count: at most {} client nodes",
                crate::clients::MAX_NODES
            ));
        }
        let rate = self.clients.max_heartbeats_per_sec;
        if !rate.is_finite() || rate <= 0.0 {
            return bad("clients.max_heartbeats_per_sec: must be > 0".into());
        }
        for (i, s) in self.servers.iter().enumerate() {
            line_info(self.product, s.version)
                .map_err(|e| crate::SimError::Config(format!("servers[{i}].version: {e}")))?;
            if !(2..=3).contains(&s.raft_protocol) {
                return bad(format!("servers[{i}].raft_protocol: must be 2 or 3"));
            }
        }
        Ok(())
    }

    /// HeartbeatTimeout after the multiplier.
    pub fn heartbeat_timeout_ns(&self) -> u64 {
        self.raft.heartbeat_timeout_ns * u64::from(self.raft_multiplier)
    }

    /// ElectionTimeout after the multiplier.
    pub fn election_timeout_ns(&self) -> u64 {
        self.raft.election_timeout_ns * u64::from(self.raft_multiplier)
    }

    /// LeaderLeaseTimeout after the multiplier.
    pub fn leader_lease_ns(&self) -> u64 {
        self.raft.leader_lease_timeout_ns * u64::from(self.raft_multiplier)
    }
}
