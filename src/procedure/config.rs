//! What the procedure needs to know, built from a plan, and the deliberately broken variants
//! used to prove that rehearse catches unsafe procedures.

use crate::plan::{Order, Plan, Rollback};
use rehearse_model::versions::{self, Product, Version, line_info};
use serde::{Deserialize, Serialize};

/// A server the procedure upgrades.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRef {
    /// Node name without region.
    pub name: String,
    /// Also runs a client (drained first).
    pub also_client: bool,
}

/// The gate between servers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateConfig {
    /// Continuous health required.
    pub stable_for_ms: u64,
    /// Halt after this long.
    pub timeout_ms: u64,
    /// Poll interval.
    pub poll_ms: u64,
    /// Count only health observed after the server itself answered, caught up, on the target.
    pub require_fresh_health: bool,
    /// The server must be a voter again.
    pub require_voter: bool,
    /// Its log must reach the leader's index recorded before the stop.
    pub require_caught_up: bool,
    /// Read autopilot health (preflight, gate, verification, the check before a stop). Off
    /// only in the `no-autopilot` variant: autopilot's health endpoint needs raft protocol 3 on
    /// every server, so a protocol-2 runbook cannot read it.
    #[serde(default = "yes")]
    pub use_autopilot: bool,
}

fn yes() -> bool {
    true
}

/// What the verification requires of the workload (Nomad), from `[upgrade.verify]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyConfig {
    /// Most evaluations the eval broker may hold once settled (`BrokerStats::backlog`).
    pub max_eval_backlog: u64,
    /// How long from the verification's start the jobs and the backlog get to recover.
    pub settle_ms: u64,
}

impl Default for VerifyConfig {
    /// `[upgrade.verify]`'s defaults (see `plan::Verify`).
    fn default() -> Self {
        VerifyConfig {
            max_eval_backlog: 0,
            settle_ms: 300_000,
        }
    }
}

/// The client phase in batches (`[upgrade.clients]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientBatchConfig {
    /// Clients upgraded at once.
    pub max_parallel: usize,
    /// Drain each client before its stop, with this deadline; `None`: restart in place.
    pub drain_deadline_ms: Option<u64>,
    /// How long one client's install takes (the driver waits this long per install).
    pub install_time_ms: u64,
}

/// The procedure's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcedureConfig {
    /// Product.
    pub product: Product,
    /// Servers in plan order.
    pub servers: Vec<ServerRef>,
    /// Version now (rollback target).
    pub from_version: Version,
    /// Version to install.
    pub target_version: Version,
    /// Save and verify a snapshot first.
    pub snapshot_first: bool,
    /// Move leadership before upgrading the leader.
    pub transfer_leadership: bool,
    /// Whether the running version has the transfer API (Nomad 1.7+).
    pub transfer_available: bool,
    /// The gate.
    pub gate: GateConfig,
    /// Drain deadline for servers that are clients; `None` = no drain.
    pub drain_deadline_ms: Option<u64>,
    /// Upgrade clients after the servers.
    pub upgrade_clients: bool,
    /// Upgrade the client-only nodes in drained batches rather than all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_batches: Option<ClientBatchConfig>,
    /// Rollback policy.
    pub rollback: Rollback,
    /// Proceed with failure tolerance 0.
    pub allow_zero_tolerance: bool,
    /// Server order.
    pub order: Order,
    /// Servers at once.
    pub parallel: usize,
    /// Check before every stop that the others form a healthy quorum.
    pub check_failure_tolerance: bool,
    /// Time to install a binary while the server is stopped (the driver waits this long).
    pub install_time_ms: u64,
    /// Whether the old binary can safely come back in place: false when the target writes a
    /// newer log-entry schema or snapshot format the old version cannot read
    /// (hashicorp/nomad#3033, #20072). Then rollback means re-provisioning, not reinstalling.
    pub in_place_rollback_safe: bool,
    /// Servers a previous (halted) run already upgraded and restarted: not restarted again.
    /// The preflight still requires them alive, voters and healthy.
    #[serde(default)]
    pub already_upgraded: Vec<String>,
    /// Before stopping a server that is also a client, wait until its allocations have stopped,
    /// not only until its drain reports complete (hashicorp/nomad#14293).
    #[serde(default = "yes")]
    pub drain_waits_for_allocs: bool,
    /// After upgrading clients, check that every `ready` node runs the target.
    #[serde(default = "yes")]
    pub verify_clients: bool,
    /// Autopilot's MaxTrailingLogs: before a stop, another voter counts as healthy only if its
    /// own last log index is within this many entries of the most advanced voter's, read in
    /// the same observation (autopilot's verdict can be seconds old: a server whose data dir
    /// was wiped answers and is reported healthy while it still replays the log).
    #[serde(default = "default_max_trailing_logs")]
    pub max_trailing_logs: u64,
    /// The verification's workload bounds.
    #[serde(default)]
    pub verify: VerifyConfig,
    /// The verification reads the jobs, the eval broker and the scheduler configuration, not
    /// only the servers. Off only in the `servers-only-verify` variant.
    #[serde(default = "yes")]
    pub verify_workload: bool,
}

/// Autopilot's default MaxTrailingLogs.
fn default_max_trailing_logs() -> u64 {
    250
}

impl ProcedureConfig {
    /// The procedure a plan describes.
    pub fn from_plan(plan: &Plan) -> Self {
        let u = &plan.upgrade;
        let ns_to_ms = |ns: u64| ns / 1_000_000;
        let transfer_available = line_info(plan.cluster.product, plan.cluster.version)
            .is_ok_and(|l| l.transfer_leadership_api);
        ProcedureConfig {
            product: plan.cluster.product,
            servers: plan
                .cluster
                .servers
                .iter()
                .map(|s| ServerRef {
                    name: s.name.clone(),
                    also_client: s.client,
                })
                .collect(),
            from_version: plan.cluster.version,
            target_version: u.target,
            snapshot_first: u.snapshot_first,
            transfer_leadership: u.transfer_leadership,
            transfer_available,
            gate: GateConfig {
                stable_for_ms: ns_to_ms(u.gate.stable_for),
                timeout_ms: ns_to_ms(u.gate.timeout),
                poll_ms: ns_to_ms(u.gate.poll).max(1),
                require_fresh_health: u.gate.require_fresh_health,
                require_voter: u.gate.require_voter,
                require_caught_up: u.gate.require_fresh_health,
                use_autopilot: true,
            },
            drain_deadline_ms: u.drain.enabled.then(|| ns_to_ms(u.drain.deadline)),
            upgrade_clients: u.upgrade_clients,
            client_batches: u.clients.as_ref().map(|c| ClientBatchConfig {
                max_parallel: c.max_parallel.max(1),
                drain_deadline_ms: c.drain.then(|| ns_to_ms(c.deadline(u))),
                install_time_ms: ns_to_ms(c.install(u)),
            }),
            rollback: u.rollback,
            allow_zero_tolerance: u.allow_zero_tolerance,
            order: u.order,
            parallel: u.parallel,
            check_failure_tolerance: true,
            install_time_ms: ns_to_ms(u.install_time),
            in_place_rollback_safe: in_place_rollback_safe(plan),
            already_upgraded: Vec::new(),
            drain_waits_for_allocs: true,
            verify_clients: true,
            max_trailing_logs: plan.cluster.autopilot.max_trailing_logs,
            verify: VerifyConfig {
                max_eval_backlog: u.verify.max_eval_backlog,
                settle_ms: ns_to_ms(u.verify.settle),
            },
            verify_workload: true,
        }
    }
}

/// Whether reinstalling the plan's current version over the target's data is safe.
fn in_place_rollback_safe(plan: &Plan) -> bool {
    versions::in_place_rollback_safe(
        plan.cluster.product,
        plan.cluster.version,
        plan.upgrade.target,
    )
}

/// A procedure, or one deliberately broken in a way real runbooks have been.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// rehearse's procedure as configured.
    Safe,
    /// The gate reads only `Healthy` once (stale-health trap, docs/baselines.md).
    GateHealthyOnly,
    /// No wait for the restarted server to be a voter again (hashicorp/consul#8118).
    NoVoterWait,
    /// The leader first.
    LeaderFirst,
    /// No snapshot before the upgrade.
    NoSnapshot,
    /// Two servers at once.
    TwoAtATime,
    /// Stops a server without checking the others form a healthy quorum.
    IgnoreFailureTolerance,
    /// Rolls back by reinstalling the old binary in place even when the target writes log
    /// entries or snapshots the old version cannot read (the "rollback = reinstall the old
    /// package" runbook; hashicorp/nomad#3033, #20072). Differs from `Safe` only on such paths.
    RollbackInPlace,
    /// rehearse's procedure without autopilot, as a raft protocol 2 cluster allows (its health
    /// endpoint needs protocol 3 on every server): the gate still waits for the restarted
    /// server's own answer (`agent-info`: target version, caught up, has heard from a leader),
    /// every member alive in `server members` and a known leader, held for `stable_for`; but
    /// no autopilot health, so no quorum check before a stop, and no `list-peers` voter check
    /// (it must reach the leader). Not in `BROKEN`: it is
    /// the baseline of protocol-2 incidents (hashicorp/nomad#12926, #8470) rather than a
    /// mutation of the safe procedure, and the explorer's efficacy test stays on the mutations.
    NoAutopilot,
    /// Trusts a drain's completion (`LastDrain.Status = complete`) and stops the server at
    /// once, as `nomad node drain -enable` followed by a stop does; a drain reports complete
    /// before allocations with a `kill_timeout` have stopped (hashicorp/nomad#14293). Not in
    /// `BROKEN`: it differs from `Safe` only on servers that are also clients.
    DrainStatusOnly,
    /// Verifies only the servers at the end, as a runbook's "check versions and peers" does
    /// (`nomad server members`, `nomad operator raft list-peers`, a leader), without `nomad
    /// status` or the eval broker's gauges: jobs below their counts and evaluations piling up
    /// go unseen (hashicorp/nomad#15858, #16877). Not in `BROKEN`: it differs from `Safe` only
    /// when the plan declares jobs.
    ServersOnlyVerify,
}

impl Variant {
    /// Every broken variant.
    pub const BROKEN: [Variant; 7] = [
        Variant::GateHealthyOnly,
        Variant::NoVoterWait,
        Variant::LeaderFirst,
        Variant::NoSnapshot,
        Variant::TwoAtATime,
        Variant::IgnoreFailureTolerance,
        Variant::RollbackInPlace,
    ];

    /// Applies the variant to a configuration. Every broken variant also drops the pre-stop
    /// quorum check: naive runbooks do not have it, and it would mask the guard removed.
    pub fn apply(self, mut c: ProcedureConfig) -> ProcedureConfig {
        if self != Variant::Safe {
            c.check_failure_tolerance = false;
        }
        match self {
            Variant::Safe => {}
            Variant::GateHealthyOnly => {
                c.gate.require_fresh_health = false;
                c.gate.require_voter = false;
                c.gate.require_caught_up = false;
                c.gate.stable_for_ms = 0;
            }
            Variant::NoVoterWait => {
                c.gate.require_voter = false;
                c.gate.stable_for_ms = 0;
            }
            Variant::LeaderFirst => c.order = Order::LeaderFirst,
            Variant::NoSnapshot => c.snapshot_first = false,
            Variant::TwoAtATime => c.parallel = 2,
            Variant::IgnoreFailureTolerance => {}
            Variant::RollbackInPlace => c.in_place_rollback_safe = true,
            Variant::NoAutopilot => {
                c.gate.use_autopilot = false;
                c.gate.require_voter = false;
            }
            Variant::DrainStatusOnly => c.drain_waits_for_allocs = false,
            Variant::ServersOnlyVerify => c.verify_workload = false,
        }
        c
    }
}
