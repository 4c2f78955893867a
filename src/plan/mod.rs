//! Upgrade plans: the TOML file an operator writes, parsed strictly and validated.
//!
//! ```toml
//! [cluster]
//! product = "nomad"            # or "consul"
//! version = "1.9.7"            # current server version
//! edition = "community"        # optional; or "enterprise" (Enterprise-only defects apply)
//! raft_protocol = 3
//! raft_multiplier = 1          # optional; default nomad 1, consul 5
//! servers = [ { name = "s1" }, { name = "s2", client = true }, { name = "s3" } ]
//!
//! [cluster.autopilot]          # optional; Nomad's defaults
//! cleanup_dead_servers = true
//! server_stabilization_time = "10s"
//! min_quorum = 0
//!
//! [clients]                    # optional
//! count = 10
//! version = "1.9.7"
//!
//! [upgrade]
//! target = "1.10.3"
//! snapshot_first = true
//! transfer_leadership = true
//! order = "followers-then-leader"   # or "leader-first", "as-listed"
//! parallel = 1
//! install_time = "5s"               # server down time to install the binary (or reboot)
//! rollback = "halt"                 # or "reinstall-and-restore"
//! upgrade_clients = true
//! [upgrade.gate]
//! stable_for = "10s"
//! timeout = "2m"
//! poll = "2s"
//! require_fresh_health = true
//! [upgrade.drain]
//! deadline = "5m"
//! [upgrade.clients]                 # optional (Nomad): clients in batches, each drained
//! max_parallel = 2
//! drain_deadline = "5m"             # default: upgrade.drain.deadline
//! install_time = "30s"              # one client's install; default: upgrade.install_time
//! [upgrade.verify]                  # Nomad: the jobs and the eval broker after the servers
//! max_eval_backlog = 0              # evaluations ready + unacked + blocked, once settled
//! settle = "5m"                     # how long jobs and the backlog get to recover
//!
//! [[jobs]]                     # optional: the jobs the clients run
//! name = "web"
//! type = "service"             # or "batch", "system"
//! [[jobs.groups]]
//! name = "web"
//! count = 3
//! kill_timeout = "30s"         # the longest kill_timeout (+ shutdown_delay) of its tasks
//! migrate = { max_parallel = 1, min_healthy_time = "10s", healthy_deadline = "5m" }
//! ```
//!
//! Unknown fields are errors; every error names the file, line and field. Counts and durations
//! have upper bounds (`crate::bounds`): a server down for an hour, 10,000 client nodes, 15 servers.

pub mod lint;
pub mod schema;
pub mod signal;

use rehearse_model::versions::{Edition, Product, Version, default_raft_multiplier, line_info};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A parsed, validated upgrade plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The cluster as it is now.
    pub cluster: Cluster,
    /// Client nodes.
    #[serde(default)]
    pub clients: Clients,
    /// What to do.
    pub upgrade: Upgrade,
    /// How `rehearse execute` controls the real servers (the simulator ignores it).
    #[serde(default)]
    pub execute: Option<Execute>,
    /// The jobs the clients run (optional). Lint compares the drain deadline with their
    /// `kill_timeout` and `migrate` settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<Job>,
}

/// One job, as in its job specification: its type and task groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Job ID.
    pub name: String,
    /// `service` (default), `batch` or `system`.
    #[serde(rename = "type", default)]
    pub kind: JobKind,
    /// Task groups.
    #[schemars(length(min = 1))]
    pub groups: Vec<TaskGroup>,
}

/// A job's scheduler type.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// Long-running; allocations are replaced and migrated.
    #[default]
    Service,
    /// Runs to completion.
    Batch,
    /// One allocation on every eligible client.
    System,
}

/// One task group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskGroup {
    /// Group name.
    pub name: String,
    /// Allocations wanted (ignored for `system` jobs, which run one per client).
    #[serde(default = "one")]
    pub count: usize,
    /// The longest `kill_timeout` plus `shutdown_delay` of its tasks: how long an allocation
    /// keeps running once told to stop (Nomad's default `kill_timeout` is 5 s).
    #[serde(default = "d5s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub kill_timeout: u64,
    /// The group's `migrate` block, when the job sets one.
    #[serde(default)]
    pub migrate: Option<Migrate>,
}

/// A task group's `migrate` block: how a drain moves its allocations. Defaults are Nomad's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migrate {
    /// Allocations of the group migrated at once (default 1).
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub max_parallel: usize,
    /// How long a replacement must be healthy before the next one moves (default 10 s).
    #[serde(default = "d10s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub min_healthy_time: u64,
    /// How long a replacement may take to become healthy (default 5 min).
    #[serde(default = "d300s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub healthy_deadline: u64,
}

/// How `rehearse execute` stops, installs and starts the real servers.
///
/// ```toml
/// [execute]
/// control = "process"            # or "command"
/// stop_signal = "SIGINT"         # a server stopped with SIGINT does not leave (no leave_on_terminate)
/// stop_timeout = "60s"           # then SIGKILL, as systemd would
/// [execute.process]
/// argv = ["{binary}", "agent", "-config-file=/etc/nomad.d/{name}.hcl"]
/// pid_file = "/run/rehearse/{name}.pid"
/// log_file = "/var/log/rehearse/{name}.log"
/// [execute.current]              # what runs now
/// binary = "/usr/local/bin/nomad-1.9.7"
/// [execute.target]               # what the upgrade installs
/// binary = "/usr/local/bin/nomad-1.10.3"
/// vars = { extra = "-raft-protocol=3" }
/// ```
/// Placeholders: `{name}`, `{host}` (of the server's address), `{binary}`, `{version}`,
/// `{raft_protocol}` and any key of `vars`; `current` values before a server's upgrade, `target`
/// values after it.
///
/// `control = "container"` needs no sub-section: `execute.current.vars.image` and
/// `execute.target.vars.image` name the two images, and a program that embeds rehearse drives
/// the containers in-process (`live::executor::execute_with` with a `ServerControl` of its
/// own, as the testcontainers backend in `tests/containers/` does). `rehearse execute --apply`
/// refuses such a plan: on an operator's own Docker hosts, use `control = "command"` with
/// docker CLI templates (README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Execute {
    /// `process`, `command` or `container`.
    pub control: ControlKind,
    /// Signal that stops a server (SIGINT, SIGTERM, …).
    #[serde(default = "sigint")]
    pub stop_signal: String,
    /// How long a stop may take before SIGKILL.
    #[serde(default = "d60s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub stop_timeout: u64,
    /// Local-process control.
    #[serde(default)]
    pub process: Option<ProcessControl>,
    /// Command-template control (e.g. ssh + systemd).
    #[serde(default)]
    pub command: Option<CommandControl>,
    /// The installation running now.
    #[serde(default)]
    pub current: Install,
    /// The installation the upgrade puts in place.
    #[serde(default)]
    pub target: Install,
    /// Write a KV probe (Consul) throughout the run and report its unavailability.
    #[serde(default)]
    pub probe: bool,
}

/// `execute.control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ControlKind {
    /// rehearse starts server processes itself and stops them by pid file and signal.
    Process,
    /// Shell command templates.
    Command,
    /// Containers driven in-process by an embedding program (images in `vars.image`).
    Container,
}

/// `[execute.process]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessControl {
    /// Program and arguments, with placeholders.
    pub argv: Vec<String>,
    /// Where the server's pid is kept.
    pub pid_file: String,
    /// Where its output goes (appended).
    pub log_file: String,
}

/// `[execute.command]`: each run with `sh -c`; exit 0 means success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandControl {
    /// Stops the server, e.g. `ssh {host} sudo systemctl stop nomad`.
    pub stop: String,
    /// Starts it.
    pub start: String,
    /// Exit 0 while the server process runs (makes a resumed run idempotent).
    pub status: String,
    /// Installs `{binary}`/`{version}` while the server is stopped.
    #[serde(default)]
    pub install: Option<String>,
    /// Upgrades the client nodes after the servers.
    #[serde(default)]
    pub upgrade_clients: Option<String>,
    /// Stops the agent of client node `{client}` (`[upgrade.clients]`), e.g.
    /// `ssh {client} sudo systemctl stop nomad`.
    #[serde(default)]
    pub stop_client: Option<String>,
    /// Installs the target (`{binary}`, `{version}`) on stopped client node `{client}`.
    #[serde(default)]
    pub install_client: Option<String>,
    /// Starts the agent of client node `{client}`.
    #[serde(default)]
    pub start_client: Option<String>,
}

impl CommandControl {
    /// The per-client templates, with their field names.
    pub fn client_templates(&self) -> [(&'static str, Option<&String>); 3] {
        [
            ("execute.command.stop_client", self.stop_client.as_ref()),
            (
                "execute.command.install_client",
                self.install_client.as_ref(),
            ),
            ("execute.command.start_client", self.start_client.as_ref()),
        ]
    }
}

/// `[execute.current]` / `[execute.target]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Install {
    /// Path of the server binary.
    #[serde(default)]
    pub binary: Option<String>,
    /// Extra placeholders.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
}

fn sigint() -> String {
    "SIGINT".into()
}

fn d60s() -> u64 {
    60_000_000_000
}

/// Placeholders every template may use besides `vars`.
pub const TEMPLATE_KEYS: [&str; 5] = ["name", "host", "binary", "version", "raft_protocol"];
/// Placeholders of the per-client templates (`execute.command.stop_client`, …) besides
/// `vars`: the client node's name, and the target's binary and version.
pub const CLIENT_TEMPLATE_KEYS: [&str; 3] = ["client", "binary", "version"];

/// The placeholders in a template (`{key}`), or the text of an unclosed one.
pub fn template_keys(t: &str) -> Result<Vec<&str>, String> {
    let mut keys = Vec::new();
    let mut rest = t;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        let j = after
            .find('}')
            .ok_or_else(|| format!("unclosed placeholder in {t:?}"))?;
        keys.push(&after[..j]);
        rest = &after[j + 1..];
    }
    Ok(keys)
}

/// The cluster as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// `nomad` or `consul`.
    #[schemars(schema_with = "schema::product")]
    pub product: Product,
    /// Current server version.
    #[schemars(schema_with = "schema::version")]
    pub version: Version,
    /// Community (default) or Enterprise build.
    #[serde(default)]
    #[schemars(schema_with = "schema::edition")]
    pub edition: Edition,
    /// Raft protocol the servers run.
    #[serde(default = "default_protocol")]
    #[schemars(range(min = 2, max = 3))]
    pub raft_protocol: u8,
    /// raft_multiplier; default per product.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10))]
    pub raft_multiplier: Option<u32>,
    /// Region (Nomad), for node names like `s1.global`.
    #[serde(default = "default_region")]
    pub region: String,
    /// The servers.
    #[schemars(length(min = 1, max = 15))]
    pub servers: Vec<ServerEntry>,
    /// Autopilot settings.
    #[serde(default)]
    pub autopilot: Autopilot,
}

fn default_protocol() -> u8 {
    3
}

fn default_region() -> String {
    "global".into()
}

/// One server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerEntry {
    /// Node name without the region, e.g. `s1`.
    pub name: String,
    /// HTTP address (for `execute`), e.g. `http://10.0.0.1:4646`.
    #[serde(default)]
    pub address: Option<String>,
    /// Also runs a client (drained before its restart).
    #[serde(default)]
    pub client: bool,
}

/// Autopilot settings, as in the agent configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autopilot {
    /// Remove failed servers automatically.
    #[serde(default = "yes")]
    pub cleanup_dead_servers: bool,
    /// Max time since last contact for a healthy server.
    #[serde(default = "d200ms", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub last_contact_threshold: u64,
    /// Max entries a healthy server may trail by.
    #[serde(default = "d250")]
    pub max_trailing_logs: u64,
    /// Healthy time before a non-voter is promoted.
    #[serde(default = "d10s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub server_stabilization_time: u64,
    /// Dead-server cleanup never goes below this many voters.
    #[serde(default)]
    pub min_quorum: usize,
}

impl Default for Autopilot {
    fn default() -> Self {
        Autopilot {
            cleanup_dead_servers: true,
            last_contact_threshold: d200ms(),
            max_trailing_logs: 250,
            server_stabilization_time: d10s(),
            min_quorum: 0,
        }
    }
}

fn yes() -> bool {
    true
}
fn d200ms() -> u64 {
    200_000_000
}
fn d250() -> u64 {
    250
}
fn d10s() -> u64 {
    10_000_000_000
}

/// Client nodes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Clients {
    /// How many client-only nodes.
    #[serde(default)]
    pub count: usize,
    /// Their version (default: the servers' current version).
    #[serde(default)]
    #[schemars(schema_with = "schema::version")]
    pub version: Option<Version>,
}

/// Server order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// Followers one at a time, the leader last (the runbook).
    FollowersThenLeader,
    /// The leader first (unsafe across entry-type changes; allowed so it can be rehearsed).
    LeaderFirst,
    /// In the order listed, wherever the leader is.
    AsListed,
}

/// What to do when the upgrade halts after a server was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Rollback {
    /// Stop and report; the operator decides.
    Halt,
    /// Reinstall the old binary on changed servers and restore the pre-upgrade snapshot.
    ReinstallAndRestore,
}

/// The upgrade itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Upgrade {
    /// Target version.
    #[schemars(schema_with = "schema::version")]
    pub target: Version,
    /// Raft protocol to roll to (default: unchanged).
    #[serde(default)]
    #[schemars(range(min = 2, max = 3))]
    pub target_raft_protocol: Option<u8>,
    /// Save and verify a snapshot before touching anything.
    #[serde(default = "yes")]
    pub snapshot_first: bool,
    /// Move leadership away before upgrading the leader (Nomad 1.7+).
    #[serde(default)]
    pub transfer_leadership: bool,
    /// Server order.
    #[serde(default = "default_order")]
    pub order: Order,
    /// Servers at once (1 is the only safe value).
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub parallel: usize,
    /// Rollback policy.
    #[serde(default = "default_rollback")]
    pub rollback: Rollback,
    /// Upgrade clients after the servers.
    #[serde(default = "yes")]
    pub upgrade_clients: bool,
    /// Proceed although failure tolerance is 0 before a step (1–2 server clusters).
    #[serde(default)]
    pub allow_zero_tolerance: bool,
    /// How long a server stays down between stop and start to install the new binary
    /// (package install, image pull, reboot). The rehearsal waits this long; a long install can
    /// outlast gossip failure detection and dead-server cleanup (hashicorp/consul#8118).
    #[serde(default = "d5s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub install_time: u64,
    /// The gate between servers.
    #[serde(default)]
    pub gate: Gate,
    /// Drain of servers that are also clients.
    #[serde(default)]
    pub drain: Drain,
    /// What the verification after the last server requires of the jobs and the eval broker
    /// (Nomad; Consul has neither).
    #[serde(default)]
    pub verify: Verify,
    /// The client phase in batches (Nomad): without this table every client is upgraded at
    /// once (`execute.command.upgrade_clients`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<ClientBatches>,
}

/// `[upgrade.clients]`: after the servers, the client-only nodes a few at a time, in name
/// order, each drained first (Nomad's upgrade guide: clients only after every server, a
/// few at a time, each drained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientBatches {
    /// Clients upgraded at once.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub max_parallel: usize,
    /// Drain each client before its stop. `false` restarts clients in place: their
    /// allocations survive only if the node is back before the leader marks it down.
    #[serde(default = "yes")]
    pub drain: bool,
    /// Drain deadline of a client (default: `upgrade.drain.deadline`).
    #[serde(default, with = "opt_duration")]
    #[schemars(schema_with = "schema::duration")]
    pub drain_deadline: Option<u64>,
    /// How long one client's install takes (default: `upgrade.install_time`). The installs of
    /// a batch run one after the other, as the executor runs the templates.
    #[serde(default, with = "opt_duration")]
    #[schemars(schema_with = "schema::duration")]
    pub install_time: Option<u64>,
}

impl ClientBatches {
    /// The drain deadline in effect (ns).
    pub fn deadline(&self, u: &Upgrade) -> u64 {
        self.drain_deadline.unwrap_or(u.drain.deadline)
    }

    /// The client down time in effect (ns).
    pub fn install(&self, u: &Upgrade) -> u64 {
        self.install_time.unwrap_or(u.install_time)
    }
}

/// Optional durations (`"5m"`), stored as nanoseconds.
mod opt_duration {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ns: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match ns {
            Some(ns) => super::humantime_serde_compat::serialize(ns, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        super::humantime_serde_compat::deserialize(d).map(Some)
    }
}

fn default_order() -> Order {
    Order::FollowersThenLeader
}
fn one() -> usize {
    1
}
fn default_rollback() -> Rollback {
    Rollback::Halt
}

/// The gate a restarted server must pass before the next one is touched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// Continuous health required (0 = accept the first healthy answer: unsafe).
    #[serde(default = "d10s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub stable_for: u64,
    /// Give up and halt after this long.
    #[serde(default = "d120s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub timeout: u64,
    /// Poll interval.
    #[serde(default = "d2s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub poll: u64,
    /// Only health observed after the restart counts (the stale-health trap).
    #[serde(default = "yes")]
    pub require_fresh_health: bool,
    /// The server must be a voter again (not a non-voter awaiting promotion).
    #[serde(default = "yes")]
    pub require_voter: bool,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            stable_for: d10s(),
            timeout: d120s(),
            poll: d2s(),
            require_fresh_health: true,
            require_voter: true,
        }
    }
}

fn d5s() -> u64 {
    5_000_000_000
}
fn d120s() -> u64 {
    120_000_000_000
}
fn d2s() -> u64 {
    2_000_000_000
}

/// Drain settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drain {
    /// Drain servers that are also clients before stopping them.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Drain deadline.
    #[serde(default = "d300s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub deadline: u64,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            enabled: true,
            deadline: d300s(),
        }
    }
}

fn d300s() -> u64 {
    300_000_000_000
}

/// The workload half of the verification after the last server (Nomad): every job runs the
/// allocations it wants again, and the leader's eval broker has drained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// Most evaluations the broker may hold once settled: ready + unacked + blocked (the
    /// broker's and the blocked-evals tracker's), by Nomad's own gauges. Default 0: an idle
    /// broker holds none once its workers have caught up, and a backlog that persists for
    /// `settle` is the "evaluations piling up" failure of the upgrade guide
    /// (hashicorp/nomad#15858, #16877).
    #[serde(default)]
    #[schemars(range(max = crate::bounds::MAX_EVAL_BACKLOG))]
    pub max_eval_backlog: u64,
    /// How long, from the verification's start, the jobs and the backlog get to recover
    /// before the procedure halts. Default 5 min: an evaluation a worker lost is redelivered
    /// after the broker's nack timeout (60 s) up to its delivery limit (3), and a lost
    /// allocation is rescheduled after its group's reschedule delay (30 s for service jobs).
    #[serde(default = "d300s", with = "humantime_serde_compat")]
    #[schemars(schema_with = "schema::duration")]
    pub settle: u64,
}

impl Default for Verify {
    fn default() -> Self {
        Verify {
            max_eval_backlog: 0,
            settle: d300s(),
        }
    }
}

/// Durations in plan files are strings like `"10s"`, stored as nanoseconds.
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ns: &u64, s: S) -> Result<S::Ok, S::Error> {
        let d = std::time::Duration::from_nanos(*ns);
        s.collect_str(&humantime::format_duration(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        let dur = humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!("invalid duration {text:?}: {e} (e.g. \"10s\")"))
        })?;
        u64::try_from(dur.as_nanos()).map_err(|_| serde::de::Error::custom("duration too long"))
    }
}

/// Why a plan could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML syntax, type or unknown-field error (with line and column).
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: String,
        /// toml's message, which shows the line, column and a snippet.
        message: String,
    },
    /// A semantic error, naming the field.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// File, and the field's line when known (`plan.toml, line 12`).
        path: String,
        /// Field path, e.g. `upgrade.target`.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl Plan {
    /// Reads and validates a plan file.
    pub fn from_path(path: &Path) -> Result<Plan, PlanError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| PlanError::Io {
            path: name.clone(),
            source,
        })?;
        let text = crate::bounds::utf8(bytes).map_err(|message| PlanError::Parse {
            path: name.clone(),
            message,
        })?;
        Plan::from_str_named(&text, &name)
    }

    /// Parses and validates plan text; `name` is used in messages.
    pub fn from_str_named(text: &str, name: &str) -> Result<Plan, PlanError> {
        let plan: Plan = toml::from_str(text).map_err(|e| PlanError::Parse {
            path: name.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        // The cluster's names and addresses first (they reach shell templates), then the
        // semantic checks, then the limits (`crate::bounds`); each error names the field's
        // line when the text has it.
        check_servers(&plan)
            .and_then(|()| plan.validate())
            .and_then(|()| crate::bounds::plan(&plan))
            .map_err(|(field, message)| PlanError::Invalid {
                path: crate::bounds::at_line(name, text, &field),
                field,
                message,
            })?;
        Ok(plan)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        self.validate_servers()?;
        self.validate_versions()?;
        self.validate_upgrade()?;
        if let Some(x) = &self.execute {
            self.validate_execute(x)?;
        }
        self.validate_jobs()
    }

    /// The server list is non-empty, within the simulator's size and has unique plain names.
    fn validate_servers(&self) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_string(), m));
        let c = &self.cluster;
        if c.servers.is_empty() {
            return err("cluster.servers", "at least one server is needed".into());
        }
        if c.servers.len() > rehearse_sim::world::MAX_SERVERS {
            return err(
                "cluster.servers",
                format!(
                    "{} servers; the simulator models at most {} (Nomad and Consul recommend 3 or 5)",
                    c.servers.len(),
                    rehearse_sim::world::MAX_SERVERS
                ),
            );
        }
        for (i, s) in c.servers.iter().enumerate() {
            if s.name.trim().is_empty() || s.name.contains('.') {
                return err(
                    &format!("cluster.servers[{i}].name"),
                    format!(
                        "{:?}: use the node name without region, e.g. \"s1\"",
                        s.name
                    ),
                );
            }
            if c.servers[..i].iter().any(|o| o.name == s.name) {
                return err(
                    &format!("cluster.servers[{i}].name"),
                    format!("duplicate server name {:?}", s.name),
                );
            }
        }
        Ok(())
    }

    /// Every version is one the tables know, and the Raft settings are in range.
    fn validate_versions(&self) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_string(), m));
        let c = &self.cluster;
        let known = |f: &str, v: Version| {
            line_info(c.product, v)
                .map(|_| ())
                .map_err(|e| (f.to_string(), e.to_string()))
        };
        known("cluster.version", c.version)?;
        known("upgrade.target", self.upgrade.target)?;
        if let Some(v) = self.clients.version {
            known("clients.version", v)?;
        }
        if !(2..=3).contains(&c.raft_protocol) {
            return err("cluster.raft_protocol", "must be 2 or 3".into());
        }
        let bad_target = self
            .upgrade
            .target_raft_protocol
            .filter(|p| !(2..=3).contains(p));
        if bad_target.is_some() {
            return err("upgrade.target_raft_protocol", "must be 2 or 3".into());
        }
        if !(1..=10).contains(&self.raft_multiplier()) {
            return err("cluster.raft_multiplier", "must be between 1 and 10".into());
        }
        Ok(())
    }

    /// The upgrade's parallelism, gate, client batches and verify settle are usable.
    fn validate_upgrade(&self) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_string(), m));
        let c = &self.cluster;
        if self.upgrade.parallel == 0 {
            return err("upgrade.parallel", "must be at least 1".into());
        }
        let g = &self.upgrade.gate;
        if g.timeout == 0 || g.poll == 0 {
            return err(
                "upgrade.gate",
                "timeout and poll must be greater than 0".into(),
            );
        }
        if let Some(cb) = &self.upgrade.clients {
            if cb.max_parallel == 0 {
                return err("upgrade.clients.max_parallel", "must be at least 1".into());
            }
            if c.product != Product::Nomad || !self.upgrade.upgrade_clients {
                return err(
                    "upgrade.clients",
                    "client batches need a Nomad cluster and upgrade.upgrade_clients = true".into(),
                );
            }
        }
        if self.upgrade.verify.settle == 0 {
            return err(
                "upgrade.verify.settle",
                "must be greater than 0: rescheduled allocations and redelivered evaluations need time".into(),
            );
        }
        Ok(())
    }

    fn validate_jobs(&self) -> Result<(), (String, String)> {
        let err = |f: String, m: &str| Err((f, m.to_string()));
        for (i, j) in self.jobs.iter().enumerate() {
            if j.name.trim().is_empty() {
                return err(format!("jobs[{i}].name"), "must not be empty");
            }
            if self.jobs[..i].iter().any(|o| o.name == j.name) {
                return err(format!("jobs[{i}].name"), "duplicate job name");
            }
            if j.groups.is_empty() {
                return err(
                    format!("jobs[{i}].groups"),
                    "a job needs at least one group ([[jobs.groups]])",
                );
            }
            for (k, g) in j.groups.iter().enumerate() {
                let at = format!("jobs[{i}].groups[{k}]");
                if g.name.trim().is_empty() {
                    return err(format!("{at}.name"), "must not be empty");
                }
                if j.groups[..k].iter().any(|o| o.name == g.name) {
                    return err(format!("{at}.name"), "duplicate group name in this job");
                }
                if g.migrate.as_ref().is_some_and(|m| m.max_parallel == 0) {
                    return err(format!("{at}.migrate.max_parallel"), "must be at least 1");
                }
            }
        }
        Ok(())
    }

    fn validate_execute(&self, x: &Execute) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_string(), m));
        if signal::signal_number(&x.stop_signal).is_none() {
            return err(
                "execute.stop_signal",
                format!(
                    "unknown signal {:?} (SIGINT, SIGTERM, SIGKILL, …)",
                    x.stop_signal
                ),
            );
        }
        if self.upgrade.clients.is_some() && x.control != ControlKind::Command {
            return err(
                "execute.command.stop_client",
                "[upgrade.clients] needs control = \"command\" with execute.command.stop_client and execute.command.start_client templates ({client} is the node's name)".into(),
            );
        }
        let mut templates: Vec<(String, &str)> = Vec::new();
        match (x.control, &x.process, &x.command) {
            (ControlKind::Process, Some(p), _) => {
                if p.argv.is_empty() {
                    return err("execute.process.argv", "needs at least the program".into());
                }
                for (i, a) in p.argv.iter().enumerate() {
                    templates.push((format!("execute.process.argv[{i}]"), a));
                }
                templates.push(("execute.process.pid_file".into(), &p.pid_file));
                templates.push(("execute.process.log_file".into(), &p.log_file));
            }
            (ControlKind::Command, _, Some(c)) => {
                templates.push(("execute.command.stop".into(), &c.stop));
                templates.push(("execute.command.start".into(), &c.start));
                templates.push(("execute.command.status".into(), &c.status));
                if let Some(i) = &c.install {
                    templates.push(("execute.command.install".into(), i));
                }
                if let Some(u) = &c.upgrade_clients {
                    templates.push(("execute.command.upgrade_clients".into(), u));
                }
                self.validate_client_templates(x, c)?;
            }
            (ControlKind::Container, _, _) => {
                for (side, install) in [("current", &x.current), ("target", &x.target)] {
                    if !install.vars.contains_key("image") {
                        return err(
                            &format!("execute.{side}.vars"),
                            "control = \"container\" needs an `image` var on both sides (e.g. vars = { image = \"rehearse-consul:new\" })".into(),
                        );
                    }
                }
            }
            (ControlKind::Process, None, _) => {
                return err(
                    "execute.process",
                    "control = \"process\" needs [execute.process]".into(),
                );
            }
            (ControlKind::Command, _, None) => {
                return err(
                    "execute.command",
                    "control = \"command\" needs [execute.command]".into(),
                );
            }
        }
        self.validate_placeholders(x, templates)
    }

    /// Every placeholder of `templates` (field, text) is a known key (`{binary}` only with both
    /// binaries set) or a var on both sides, and `{host}` only when every server has an
    /// address.
    fn validate_placeholders(
        &self,
        x: &Execute,
        templates: Vec<(String, &str)>,
    ) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_string(), m));
        for (field, t) in templates {
            for key in template_keys(t).map_err(|m| (field.clone(), m))? {
                let known = TEMPLATE_KEYS.contains(&key)
                    && (key != "binary"
                        || (x.current.binary.is_some() && x.target.binary.is_some()));
                let var = x.current.vars.contains_key(key) && x.target.vars.contains_key(key);
                if !known && !var {
                    return err(
                        &field,
                        format!(
                            "placeholder {{{key}}} is not defined (known: {}; {{binary}} needs execute.current.binary and execute.target.binary; other keys must be in both execute.current.vars and execute.target.vars)",
                            TEMPLATE_KEYS.join(", ")
                        ),
                    );
                }
                if key == "host"
                    && let Some(i) = self
                        .cluster
                        .servers
                        .iter()
                        .position(|s| s.address.is_none())
                {
                    return err(
                        &format!("cluster.servers[{i}].address"),
                        "a template uses {host}: every server needs an address".into(),
                    );
                }
            }
        }
        Ok(())
    }

    /// The per-client templates: required with `[upgrade.clients]` (stop and start; install
    /// is optional, as for servers), refused without it, and limited to their placeholders.
    fn validate_client_templates(
        &self,
        x: &Execute,
        c: &CommandControl,
    ) -> Result<(), (String, String)> {
        let err = |f: &str, m: String| Err((f.to_string(), m));
        let batches = self.upgrade.clients.is_some();
        for (field, t) in c.client_templates() {
            let required = field != "execute.command.install_client";
            let Some(t) = t else {
                if batches && required {
                    return err(
                        field,
                        "[upgrade.clients] upgrades each client through this template: set it (e.g. \"ssh {client} sudo systemctl stop nomad\")".into(),
                    );
                }
                continue;
            };
            if !batches {
                return err(
                    field,
                    "a per-client template without [upgrade.clients]: add the table, or remove the template".into(),
                );
            }
            for key in template_keys(t).map_err(|m| (field.to_string(), m))? {
                let known = CLIENT_TEMPLATE_KEYS.contains(&key)
                    && (key != "binary" || x.target.binary.is_some());
                if !known && !x.target.vars.contains_key(key) {
                    return err(
                        field,
                        format!(
                            "placeholder {{{key}}} is not defined (known: {}; {{binary}} needs execute.target.binary; other keys must be in execute.target.vars)",
                            CLIENT_TEMPLATE_KEYS.join(", ")
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// raft_multiplier, defaulted per product.
    pub fn raft_multiplier(&self) -> u32 {
        self.cluster
            .raft_multiplier
            .unwrap_or_else(|| default_raft_multiplier(self.cluster.product))
    }

    /// Quorum of the server set.
    pub fn quorum(&self) -> usize {
        self.cluster.servers.len() / 2 + 1
    }

    /// The longest time a drain may need for any group, with the group that needs it: the
    /// group's allocations move `migrate.max_parallel` at a time (Nomad's default 1), and each
    /// batch takes its `kill_timeout`, plus its `migrate.min_healthy_time` when the job sets a
    /// `migrate` block (a replacement must stay healthy that long before the drain moves on).
    /// The worst case is assumed: every allocation of the group runs on the drained node (a
    /// plan does not say where they are placed); a system job has one allocation per node.
    pub fn longest_drain_need(&self) -> Option<(String, u64)> {
        self.jobs
            .iter()
            .flat_map(|j| j.groups.iter().map(move |g| (j, g)))
            .map(|(j, g)| {
                let migrate = g.migrate.as_ref().map_or(0, |m| m.min_healthy_time);
                let per_batch = g.migrate.as_ref().map_or(1, |m| m.max_parallel.max(1));
                let on_node = match j.kind {
                    JobKind::System => 1,
                    JobKind::Service | JobKind::Batch => g.count.max(1),
                };
                let batches = on_node.div_ceil(per_batch) as u64;
                (
                    format!("{}.{}", j.name, g.name),
                    batches.saturating_mul(g.kill_timeout.saturating_add(migrate)),
                )
            })
            .max_by_key(|(_, ns)| *ns)
    }

    /// The clients' version (default: the servers' current version).
    pub fn client_version(&self) -> Version {
        self.clients.version.unwrap_or(self.cluster.version)
    }
}

/// Why a server name cannot be used, or `Ok`. Names come from the cluster (`rehearse import`)
/// and end up in TOML, in file names, in logs and in shell commands, so characters that change
/// how a line reads are refused: control characters (newline, carriage return, tab, escape,
/// NUL…), the Unicode line and paragraph separators, and the bidirectional-text controls
/// (which make a terminal show different text from what is there). Quotes, brackets, `=`,
/// `#`, spaces and other Unicode are fine: they are escaped wherever they are written.
pub fn check_server_name(name: &str) -> Result<(), String> {
    let bad = name.chars().find(|c| {
        c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            )
            || ('\u{202A}'..='\u{202E}').contains(c)
            || ('\u{2066}'..='\u{2069}').contains(c)
    });
    match bad {
        Some(c) => Err(format!(
            "{name:?} contains the character U+{:04X}; control characters, line separators and bidirectional-text controls are not allowed",
            c as u32
        )),
        None => Ok(()),
    }
}

/// Why a server address cannot be used, or `Ok`: it must be `http(s)://host:port` (or
/// `host:port`) where the host is a DNS name, an IPv4 address or a bracketed IPv6 address.
/// The host is substituted into `{host}` of command templates, so nothing else is allowed.
pub fn check_server_address(addr: &str) -> Result<(), String> {
    check_server_name(addr)?;
    let full = crate::live::client::normalise_addr(addr).map_err(|e| e.0)?;
    let rest = full.split_once("://").map_or(full.as_str(), |(_, r)| r);
    let bad =
        || format!("{addr:?} is not http(s)://host:port with a DNS name or IP address as host");
    let (host, port, v6) = match rest.strip_prefix('[') {
        Some(r) => {
            let (host, after) = r.split_once(']').ok_or_else(bad)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(bad)?),
            };
            (host, port, true)
        }
        None => match rest.split_once(':') {
            Some((h, p)) => (h, Some(p), false),
            None => (rest, None, false),
        },
    };
    let host_ok = !host.is_empty()
        && host.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '.' | '-' | '_')
                || (v6 && matches!(c, ':' | '%'))
        });
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Checks every server's name and address with [`check_server_name`] and
/// [`check_server_address`]; the error names the field and the line in `text`.
fn check_servers(plan: &Plan) -> Result<(), (String, String)> {
    for (i, s) in plan.cluster.servers.iter().enumerate() {
        let checks = [
            ("name", check_server_name(&s.name)),
            (
                "address",
                s.address.as_deref().map_or(Ok(()), check_server_address),
            ),
        ];
        for (field, result) in checks {
            if let Err(why) = result {
                // The caller names the field's line (`bounds::at_line`).
                return Err((format!("cluster.servers[{i}].{field}"), why));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[cluster]
product = "nomad"
version = "1.9.7"
servers = [{ name = "s1" }, { name = "s2" }, { name = "s3" }]
[upgrade]
target = "1.10.3"
"#;

    #[test]
    fn a_minimal_plan_gets_safe_defaults() {
        let p = Plan::from_str_named(MIN, "p.toml").unwrap();
        assert!(p.upgrade.snapshot_first);
        assert_eq!(p.upgrade.order, Order::FollowersThenLeader);
        assert_eq!(p.upgrade.gate.stable_for, 10_000_000_000);
        assert_eq!(p.raft_multiplier(), 1);
        assert_eq!(p.quorum(), 2);
    }

    #[test]
    fn unknown_fields_name_the_field_and_line() {
        let text = MIN.replace(
            "target = \"1.10.3\"",
            "target = \"1.10.3\"\nsnapshot_frist = true",
        );
        let e = Plan::from_str_named(&text, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("snapshot_frist"), "{e}");
        assert!(e.contains("line 8"), "{e}");
        assert!(e.starts_with("p.toml"), "{e}");
    }

    #[test]
    fn impossible_versions_and_bad_durations_are_rejected() {
        let e = Plan::from_str_named(&MIN.replace("1.10.3", "3.1.0"), "p.toml").unwrap_err();
        assert!(e.to_string().contains("upgrade.target"), "{e}");
        let text = format!("{MIN}[upgrade.gate]\nstable_for = \"ten seconds\"\n");
        let e = Plan::from_str_named(&text, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid duration"), "{e}");
        let dup = MIN.replace("{ name = \"s3\" }", "{ name = \"s1\" }");
        let e = Plan::from_str_named(&dup, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("duplicate"), "{e}");
    }

    #[test]
    fn the_verify_section_is_checked_field_by_field() {
        let with = |x: &str| format!("{MIN}[upgrade.verify]\n{x}\n");
        let p = Plan::from_str_named(MIN, "p.toml").unwrap();
        assert_eq!(p.upgrade.verify, Verify::default());
        assert_eq!(p.upgrade.verify.settle, 300_000_000_000);
        let p = Plan::from_str_named(&with("max_eval_backlog = 2\nsettle = \"90s\""), "p.toml");
        let v = p.unwrap().upgrade.verify;
        assert_eq!((v.max_eval_backlog, v.settle), (2, 90_000_000_000));
        let err = |x: &str| {
            Plan::from_str_named(&with(x), "p.toml")
                .unwrap_err()
                .to_string()
        };
        let e = err("max_eval_backlogg = 2");
        assert!(
            e.contains("max_eval_backlogg") && e.contains("line 9"),
            "{e}"
        );
        let e = err("settle = \"2h\"");
        assert!(
            e.starts_with("p.toml, line 9: upgrade.verify.settle: 2h is longer than"),
            "{e}"
        );
        let e = err("settle = \"0s\"");
        assert!(
            e.contains("upgrade.verify.settle: must be greater than 0"),
            "{e}"
        );
        let e = err("max_eval_backlog = 2000000");
        assert!(e.contains("upgrade.verify.max_eval_backlog"), "{e}");
        let e = err("max_eval_backlog = -1");
        assert!(e.contains("max_eval_backlog"), "{e}");
    }

    #[test]
    fn the_client_batches_table_is_checked_field_by_field() {
        let with = |x: &str| format!("{MIN}[upgrade.clients]\n{x}\n");
        assert_eq!(
            Plan::from_str_named(MIN, "p.toml").unwrap().upgrade.clients,
            None
        );
        let p = Plan::from_str_named(&with(""), "p.toml").unwrap();
        let c = p.upgrade.clients.clone().unwrap();
        assert_eq!((c.max_parallel, c.drain), (1, true));
        assert_eq!(
            c.deadline(&p.upgrade),
            p.upgrade.drain.deadline,
            "the servers' deadline"
        );
        assert_eq!(c.install(&p.upgrade), p.upgrade.install_time);
        let p = with("max_parallel = 3\ndrain_deadline = \"90s\"\ninstall_time = \"2m\"");
        let p = Plan::from_str_named(&p, "p.toml").unwrap();
        let c = p.upgrade.clients.clone().unwrap();
        assert_eq!(c.max_parallel, 3);
        assert_eq!(c.deadline(&p.upgrade), 90_000_000_000);
        assert_eq!(c.install(&p.upgrade), 120_000_000_000);
        let err = |x: &str| {
            Plan::from_str_named(&with(x), "p.toml")
                .unwrap_err()
                .to_string()
        };
        let e = err("max_paralel = 2");
        assert!(e.contains("max_paralel") && e.contains("line 9"), "{e}");
        let e = err("max_parallel = 0");
        assert!(
            e.contains("p.toml, line 9: upgrade.clients.max_parallel: must be at least 1"),
            "{e}"
        );
        let e = err("max_parallel = 20000");
        assert!(e.contains("upgrade.clients.max_parallel"), "{e}");
        let e = err("install_time = \"2h\"");
        assert!(e.contains("line 9: upgrade.clients.install_time"), "{e}");
        let e = err("drain_deadline = \"2h\"");
        assert!(e.contains("line 9: upgrade.clients.drain_deadline"), "{e}");
        let e = err("drain_deadline = \"soon\"");
        assert!(e.contains("invalid duration"), "{e}");
        let off = MIN.replace(
            "target = \"1.10.3\"",
            "target = \"1.10.3\"\nupgrade_clients = false",
        );
        let e = Plan::from_str_named(&format!("{off}[upgrade.clients]\n"), "p.toml").unwrap_err();
        assert!(
            e.to_string()
                .contains("upgrade.clients: client batches need"),
            "{e}"
        );
    }

    #[test]
    fn client_batches_need_the_per_client_templates_to_execute() {
        let base = "[execute]\ncontrol = \"command\"\n[execute.command]\nstop = \"systemctl stop nomad\"\nstart = \"systemctl start nomad\"\nstatus = \"systemctl is-active nomad\"\n";
        let client = "stop_client = \"ssh {client} sudo systemctl stop nomad\"\nstart_client = \"ssh {client} sudo systemctl start nomad\"\n";
        let batches = "[upgrade.clients]\nmax_parallel = 2\n";
        let plan = |x: &str| Plan::from_str_named(&format!("{MIN}{x}"), "p.toml");
        let err = |x: &str| plan(x).unwrap_err().to_string();
        assert!(plan(&format!("{batches}{base}{client}")).is_ok());
        assert!(plan(batches).is_ok(), "a rehearsal needs no [execute]");
        let e = err(&format!("{batches}{base}"));
        assert!(
            e.contains("execute.command.stop_client") && e.contains("[upgrade.clients]"),
            "{e}"
        );
        let e = err(&format!("{batches}{base}stop_client = \"x {{client}}\"\n"));
        assert!(e.contains("execute.command.start_client"), "{e}");
        let e = err(&format!("{base}{client}"));
        assert!(
            e.contains("execute.command.stop_client") && e.contains("without [upgrade.clients]"),
            "{e}"
        );
        let e = err(&format!(
            "{batches}{base}{}",
            client.replace("{client}", "{host}")
        ));
        assert!(
            e.contains("execute.command.stop_client") && e.contains("{host}"),
            "{e}"
        );
        let e = err(&format!(
            "{batches}{base}{client}install_client = \"cp {{binary}} x\"\n"
        ));
        assert!(
            e.contains("execute.command.install_client") && e.contains("execute.target.binary"),
            "{e}"
        );
        let process = "[execute]\ncontrol = \"process\"\n[execute.process]\nargv = [\"nomad\"]\npid_file = \"p\"\nlog_file = \"l\"\n";
        let e = err(&format!("{batches}{process}"));
        assert!(
            e.contains("execute.command.stop_client") && e.contains("control = \"command\""),
            "{e}"
        );
    }

    #[test]
    fn execute_sections_are_checked_field_by_field() {
        let with = |x: &str| format!("{MIN}{x}");
        let err = |x: &str| {
            Plan::from_str_named(&with(x), "p.toml")
                .unwrap_err()
                .to_string()
        };
        let ok = "[execute]\ncontrol = \"command\"\n[execute.command]\nstop = \"systemctl stop nomad\"\nstart = \"systemctl start nomad\"\nstatus = \"systemctl is-active nomad\"\n";
        assert!(Plan::from_str_named(&with(ok), "p.toml").is_ok());
        let e = err("[execute]\ncontrol = \"process\"\n");
        assert!(e.contains("execute.process"), "{e}");
        let e = err(&ok.replace("systemctl stop nomad", "ssh {host} stop"));
        assert!(e.contains("cluster.servers[0].address"), "{e}");
        let e = err(&ok.replace("systemctl stop nomad", "stop {flavour}"));
        assert!(
            e.contains("execute.command.stop") && e.contains("{flavour}"),
            "{e}"
        );
        let e = err(&ok.replace("systemctl stop nomad", "stop {binary}"));
        assert!(e.contains("execute.current.binary"), "{e}");
        let e = err(&format!("{ok}stop_signal = \"SIGNOPE\"\n")
            .replace("[execute.command]\n", "")
            .replacen(
                "control = \"command\"\n",
                "control = \"command\"\nstop_signal = \"SIGNOPE\"\n[execute.command]\n",
                1,
            ));
        assert!(e.contains("stop_signal"), "{e}");
        let e = err(&ok.replace("status = ", "statsu = "));
        assert!(e.contains("statsu"), "{e}");
    }
}
