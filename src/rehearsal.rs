//! Rehearsal: runs the upgrade procedure against the simulator and judges the outcome from the
//! simulator's ground truth (quorum, leaders, acknowledged writes, version-skew panics).
//!
//! The driver reads the cluster the way an operator would (each server's HTTP answers), feeds
//! the procedure, carries out its actions on the world, and advances simulated time: `Observe`
//! waits for its interval, every other action takes `ACTION_LATENCY_NS` (an API call or a
//! systemctl command).

use crate::driver::{self, Driver, LoopError, Recorder, Turn};
use crate::plan::Plan;
use crate::procedure::{
    Action, ActionResult, ClusterView, Observation, Phase, Procedure, ProcedureConfig, Readout,
    Reads,
};
use rehearse_model::api::{ApiError, SharedStr};
use rehearse_model::time::{MS, SEC};
use rehearse_model::versions::Product;
use rehearse_sim::state::StopMode;
use rehearse_sim::{Metrics, ServerId, ServerSpec, SimConfig, Violation, WorkloadStats, World};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

/// Simulated time an action takes.
pub const ACTION_LATENCY_NS: u64 = 200 * MS;
/// Settling time before the procedure starts (cluster boot and first election).
pub const WARMUP_NS: u64 = 30 * SEC;
/// Observation after the procedure ends, to catch late damage (a crash on apply, a lost write).
pub const COOLDOWN_NS: u64 = 30 * SEC;
/// After the cooldown, the world runs on until the heartbeat timers of client nodes whose
/// hosts are gone have fired (at most this long), so that a node lost near the end of a run
/// is judged too (hashicorp/nomad#24231). Only runs with a gone node go on.
pub const NODE_TIMERS_MAX_NS: u64 = 7 * 60 * SEC;

/// How a rehearsal ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// The procedure completed and nothing unsafe happened.
    Completed,
    /// The procedure halted safely (nothing unsafe happened), with its reason.
    Halted {
        /// Why.
        reason: String,
    },
    /// Something unsafe happened.
    Unsafe {
        /// What, one line each.
        problems: Vec<String>,
    },
    /// The cluster stayed safe, but the procedure stopped a node whose allocations were still
    /// running and whose drain had not completed, or a drain's deadline stopped allocations
    /// the drain had not migrated yet: they were killed instead of being migrated. A class of
    /// its own, apart from quorum and data loss.
    LostAllocations {
        /// Which node, when, and how many allocations, one line each.
        problems: Vec<String>,
    },
    /// The plan declares jobs, nothing unsafe happened, no allocations were lost and the
    /// procedure completed, but the workload never recovered after it ended: at the end of the
    /// run the jobs are below their desired counts or the leader's eval broker still holds
    /// evaluations (hashicorp/nomad#15858, #16877). A halted run stays `Halted`: the procedure
    /// told the operator.
    StalledWorkload {
        /// What is short: the eval backlog and the jobs below their counts.
        problems: Vec<String>,
    },
}

/// One step of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Simulated ms since the procedure started.
    pub at_ms: u64,
    /// Phase.
    pub phase: Phase,
    /// Servers concerned.
    pub servers: Vec<String>,
    /// The action (typed; `Display` renders it).
    pub action: Action,
}

/// Everything a rehearsal produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Verdict.
    pub verdict: Verdict,
    /// Actions, in order.
    pub steps: Vec<StepRecord>,
    /// (ms since start, autopilot failure tolerance) at each observation; `None` if unreadable.
    pub tolerance: Vec<(u64, Option<i64>)>,
    /// Duration of the procedure (simulated ms).
    pub duration_ms: u64,
    /// Simulator counters over the procedure and cooldown.
    pub metrics: Metrics,
    /// Workload counters.
    pub workload: WorkloadStats,
    /// Safety violations.
    pub violations: Vec<Violation>,
    /// Servers in upgrade order.
    pub order: Vec<String>,
    /// Stops issued while the other servers did not form a healthy quorum (ground truth).
    pub unsafe_stops: Vec<String>,
    /// Whether the last server upgraded was the leader (or had just handed leadership over).
    pub leader_last: bool,
    /// Final version of every server.
    pub final_versions: Vec<(String, String)>,
    /// Trace hash (replay check); written as 16 hex digits.
    #[serde(with = "crate::output::hex_u64")]
    pub trace_hash: u64,
    /// The procedure's notes (e.g. a refused in-place rollback, a skipped transfer).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Notable simulator events, one line each, at most `EVENTS_MAX`: why servers crashed on
    /// their own (`s2 crashed: <reason>`; a fault's kill -9 is left out), leaders that failed
    /// to establish leadership, peer-set shrinks (`dead-server cleanup removed s1`), servers
    /// added again at a new address under raft protocol 2, servers re-added under a UUID Raft
    /// ID in a raft protocol 2 → 3 roll, and followers that needed
    /// InstallSnapshot (`s2 was sent InstallSnapshot 3 times`).
    #[serde(default)]
    pub events: Vec<String>,
    /// Harm to client nodes, one line each: a server stopped while its client's allocations
    /// still ran after its drain had reported complete (hashicorp/nomad#14293), and nodes whose
    /// hosts are gone but that a leader could not mark down (hashicorp/nomad#24231).
    #[serde(default)]
    pub client_problems: Vec<String>,
    /// Stops of nodes with running allocations and no completed drain, and drains whose
    /// deadline stopped allocations before they were migrated, one line each: those
    /// allocations were lost (the verdict `LostAllocations` when nothing worse happened).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_allocations: Vec<String>,
    /// The workload plane's figures when the plan declares jobs: eval backlog peak, time from
    /// the procedure's end until the backlog is 0 and every job runs its desired count, and
    /// allocations lost with their node (faults included; `lost_allocations` above names the
    /// procedure's own stops).
    #[serde(
        default,
        skip_serializing_if = "rehearse_sim::WorkloadOutcome::is_zero"
    )]
    pub workload_plane: rehearse_sim::WorkloadOutcome,
}

/// Most notable events an outcome keeps.
pub const EVENTS_MAX: usize = 16;

/// The simulator configuration that mirrors a plan's cluster.
pub fn sim_config(plan: &Plan, seed: u64) -> SimConfig {
    let c = &plan.cluster;
    let mut cfg = match c.product {
        Product::Nomad => SimConfig::nomad(c.servers.len(), c.version, seed),
        Product::Consul => SimConfig::consul(c.servers.len(), seed),
    };
    cfg.servers = c
        .servers
        .iter()
        .map(|s| ServerSpec {
            name: s.name.clone(),
            version: c.version,
            raft_protocol: c.raft_protocol,
            also_client: s.client,
        })
        .collect();
    cfg.raft_multiplier = plan.raft_multiplier();
    cfg.edition = c.edition;
    let a = &c.autopilot;
    cfg.autopilot.cleanup_dead_servers = a.cleanup_dead_servers;
    cfg.autopilot.last_contact_threshold_ns = a.last_contact_threshold;
    cfg.autopilot.max_trailing_logs = a.max_trailing_logs;
    cfg.autopilot.server_stabilization_time_ns = a.server_stabilization_time;
    cfg.autopilot.min_quorum = a.min_quorum;
    cfg.clients.count = plan.clients.count;
    cfg.clients.version = Some(plan.client_version());
    cfg.jobs = plan.jobs.iter().map(job_spec).collect();
    // A target raft protocol is part of the target's configuration; a rollback brings back the
    // current one.
    if let Some(p) = plan.upgrade.target_raft_protocol {
        cfg.raft_protocol_by_version = vec![(plan.upgrade.target, p)];
        if plan.upgrade.target != c.version {
            cfg.raft_protocol_by_version
                .push((c.version, c.raft_protocol));
        }
    }
    cfg
}

/// A plan's job as the simulator runs it. A count past `u32` is kept out of range, so that the
/// simulator's own limit names the field.
fn job_spec(j: &crate::plan::Job) -> rehearse_sim::workload::JobSpec {
    use crate::plan::JobKind;
    use rehearse_model::api::JobType;
    rehearse_sim::workload::JobSpec {
        name: j.name.clone(),
        kind: match j.kind {
            JobKind::Service => JobType::Service,
            JobKind::Batch => JobType::Batch,
            JobKind::System => JobType::System,
        },
        groups: j
            .groups
            .iter()
            .map(|g| rehearse_sim::workload::GroupSpec {
                name: g.name.clone(),
                count: u32::try_from(g.count).unwrap_or(u32::MAX),
                kill_timeout_ns: g.kill_timeout,
                migrate_max_parallel: g
                    .migrate
                    .as_ref()
                    .map(|m| u32::try_from(m.max_parallel).unwrap_or(u32::MAX)),
            })
            .collect(),
    }
}

/// The first server's answer that is not an error, or the last error.
fn first_ok<T>(n: usize, f: impl Fn(ServerId) -> Result<T, ApiError>) -> Result<T, ApiError> {
    for id in 0..n.saturating_sub(1) {
        if let Ok(t) = f(id) {
            return Ok(t);
        }
    }
    match n.checked_sub(1) {
        Some(last) => f(last),
        None => Err(ApiError::Unreachable {
            addr: "cluster".into(),
            why: "no server answered".into(),
        }),
    }
}

/// Reads the cluster as an operator would: cluster endpoints from the first server that
/// answers, and every server's own `/v1/agent/self`; the client node list only when `reads` asks.
/// Names are the world's shared ones (`World::server_label`): nothing here copies a name.
pub fn observe(world: &World, acked_before: u64, reads: Reads) -> ClusterView {
    let n = world.server_count();
    // The leader named by `GET /v1/status/leader` of the first server that knows one.
    let leader = (0..n)
        .find_map(|id| world.status_leader_id(id))
        .map(|id| world.server_label(id));
    let scheduler = (world.config().product == Product::Nomad)
        .then(|| first_ok(n, |id| world.scheduler_config(id)));
    let clients = || (0..n).filter(|&id| world.config().servers[id].also_client);
    let nomad = world.config().product == Product::Nomad;
    ClusterView {
        leader,
        members: first_ok(n, |id| world.members(id)),
        raft: first_ok(n, |id| world.raft_configuration(id)),
        health: first_ok(n, |id| world.autopilot_health(id)),
        agents: (0..n)
            .map(|id| (world.server_label(id), world.agent_self(id)))
            .collect(),
        scheduler,
        drained: drained(world, reads),
        // The workload is the write probe: did any write get acknowledged since last time?
        write_accepted: (world.config().workload.writes_per_sec > 0.0)
            .then(|| world.acked_writes() > acked_before),
        nodes: match (nomad, reads.nodes) {
            (false, _) => Readout::NotApplicable,
            (true, true) => Readout::Read(first_ok(n, |id| world.nodes(id))),
            (true, false) => Readout::NotRead,
        },
        // Read whether asked or not: it costs nothing here, and an answer the procedure did
        // not ask for changes nothing it decides.
        allocs_running: if nomad {
            let mut running: Vec<SharedStr> = clients()
                // Unreadable counts as running: never stop on a view that cannot be read.
                .filter(|&id| !matches!(world.allocations_running(id), Ok(0)))
                .map(|id| world.server_label(id))
                .collect();
            running.extend(draining_clients(world, reads).filter_map(|(i, name)| {
                (!matches!(world.client_allocations_running(i), Ok(0))).then_some(name)
            }));
            Readout::Read(Ok(running))
        } else {
            Readout::NotApplicable
        },
        // Jobs and the leader's broker (empty without declared jobs), when the procedure asks.
        workload: match (nomad, reads.workload) {
            (false, _) => Readout::NotApplicable,
            (true, true) => Readout::Read(first_ok(n, |id| world.workload_view(id))),
            (true, false) => Readout::NotRead,
        },
    }
}

/// The client-only nodes under a drain, with their names, when the procedure reads the node
/// list (the client phase); none otherwise, which keeps every other observation as cheap as
/// before.
fn draining_clients(world: &World, reads: Reads) -> impl Iterator<Item = (usize, SharedStr)> {
    let count = if reads.nodes { world.client_count() } else { 0 };
    (0..count)
        .filter(|&i| world.client_drain_requested(i))
        .filter_map(|i| Some((i, SharedStr::from(world.client_name(i)?))))
}

/// Servers whose client drain has completed, then the client-only nodes under a drain whose
/// drain has completed.
fn drained(world: &World, reads: Reads) -> Vec<SharedStr> {
    let mut out: Vec<SharedStr> = (0..world.server_count())
        .filter(|&id| world.drain_complete(id))
        .map(|id| world.server_label(id))
        .collect();
    out.extend(
        draining_clients(world, reads)
            .filter(|&(i, _)| world.client_drain_complete(i))
            .map(|(_, name)| name),
    );
    out
}

pub use crate::driver::StepCtx;

/// Hooks called around each action; the chaos engine injects faults through them.
pub trait Hooks {
    /// Before the procedure observes the cluster and chooses step `ctx.step` (`ctx.action`
    /// is not known yet and reads `Observe`).
    fn before(&mut self, _world: &mut World, _ctx: &StepCtx<'_>) {}
    /// After an action was carried out.
    fn after(&mut self, _world: &mut World, _ctx: &StepCtx<'_>) {}
    /// When the procedure has ended, before the cooldown: undo whatever is temporary.
    fn finish(&mut self, _world: &mut World) {}
    /// After the cooldown, with the final world (e.g. to keep its trace).
    fn done(&mut self, _world: &World) {}
}

/// No faults.
pub struct NoFaults;
impl Hooks for NoFaults {}

/// Rehearses one procedure on one seed with no injected faults.
pub fn rehearse(cfg: &ProcedureConfig, sim: SimConfig) -> Result<Outcome, rehearse_sim::SimError> {
    rehearse_with(cfg, sim, &mut NoFaults)
}

/// The simulated cluster a rehearsal drives, with the ground truth it keeps about the
/// procedure's stops.
#[derive(Clone)]
struct SimWorld {
    world: World,
    start_ns: u64,
    unsafe_stops: Vec<String>,
    /// Stops of servers whose client still ran allocations although its drain had reported
    /// complete (hashicorp/nomad#14293).
    early_stops: Vec<String>,
    /// Stops of servers whose client still ran allocations and had not completed a drain.
    lost_allocs: Vec<String>,
    /// Acknowledged writes at the previous observation (the write probe).
    acked: u64,
    /// The drain deadline the procedure's drains carry (`[upgrade.drain] deadline`), as the
    /// live executor sends it.
    drain_deadline_ns: Option<u64>,
    /// The drain deadline of client-only nodes' drains (`[upgrade.clients]`).
    client_drain_deadline_ns: Option<u64>,
}

impl SimWorld {
    fn ms(&self) -> u64 {
        (self.world.now().as_nanos() - self.start_ns) / MS
    }
}

/// The rehearsal's recorder: the timeline of actions and the failure tolerance the procedure
/// saw at each observation, in ms since the procedure started.
#[derive(Clone)]
struct Timeline {
    start_ms: u64,
    steps: Vec<StepRecord>,
    tolerance: Vec<(u64, Option<i64>)>,
}

impl Recorder for Timeline {
    type Error = Infallible;

    fn observed(&mut self, obs: &Observation) -> Result<(), Infallible> {
        let ft = obs.view.health.as_ref().ok().map(|h| h.failure_tolerance);
        self.tolerance.push((obs.now_ms - self.start_ms, ft));
        Ok(())
    }

    fn chose(&mut self, at_ms: u64, proc: &Procedure, action: &Action) -> Result<(), Infallible> {
        let info = proc.step_info();
        self.steps.push(StepRecord {
            at_ms: at_ms - self.start_ms,
            phase: info.phase,
            servers: info.servers,
            action: action.clone(),
        });
        Ok(())
    }

    fn acted(&mut self, _at_ms: u64, _result: &ActionResult) -> Result<(), Infallible> {
        Ok(())
    }
}

/// The simulator as a [`Driver`] for one step, with the hooks that fire around it: `before`
/// ahead of the observation (faults land before the procedure looks), `after` once an action
/// or a wait is over.
struct SimDriver<'a> {
    sim: &'a mut SimWorld,
    hooks: &'a mut dyn Hooks,
    install_ms: u64,
    /// Client down time (`[upgrade.clients] install_time`).
    client_install_ms: u64,
}

impl Driver for SimDriver<'_> {
    type Error = Infallible;

    async fn observe(
        &mut self,
        ctx: &StepCtx<'_>,
        reads: Reads,
        result: ActionResult,
    ) -> Result<Observation, Infallible> {
        let sim = &mut *self.sim;
        self.hooks.before(&mut sim.world, ctx);
        let view = observe(&sim.world, sim.acked, reads);
        sim.acked = sim.world.acked_writes();
        Ok(Observation {
            now_ms: sim.world.now().as_millis(),
            result,
            view,
        })
    }

    async fn act(
        &mut self,
        ctx: &StepCtx<'_>,
        action: &Action,
    ) -> Result<ActionResult, Infallible> {
        let r = apply(self.sim, action);
        let wait_ns = match action {
            Action::ReplaceBinary { .. } => self.install_ms * MS,
            Action::InstallClient { .. } => self.client_install_ms * MS,
            _ => ACTION_LATENCY_NS,
        };
        self.sim.world.run_for(wait_ns.max(1));
        self.hooks.after(&mut self.sim.world, ctx);
        Ok(r.unwrap_or_else(ActionResult::Failed))
    }

    async fn wait(&mut self, ctx: &StepCtx<'_>, wait_ms: u64) -> Result<(), Infallible> {
        self.sim.world.run_for((wait_ms * MS).max(1));
        self.hooks.after(&mut self.sim.world, ctx);
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        self.sim.world.now().as_millis()
    }
}

/// A rehearsal paused at the top of a step, before the hooks' `before`: everything needed to
/// go on. A run is a pure function of its seed and its hooks, and hooks that have not fired
/// yet change nothing, so a run with faults from step k on is the fault-free run up to step k
/// followed by the faulty rest: the explorer clones one checkpoint per step boundary instead
/// of simulating the same prefix once per fault (`resume` from a clone is the same run,
/// event for event, as `rehearse_with` from the start; `tests/chaos.rs` checks trace hashes).
#[derive(Clone)]
pub struct Checkpoint {
    sim: SimWorld,
    timeline: Timeline,
    proc: Procedure,
    result: ActionResult,
    base_metrics: Metrics,
    seed: u64,
    /// The procedure's final action, once it has one.
    last: Option<Action>,
}

impl Checkpoint {
    /// A new rehearsal on `sim`, after the warm-up, before step 0.
    pub fn start(cfg: &ProcedureConfig, sim: SimConfig) -> Result<Self, rehearse_sim::SimError> {
        let seed = sim.seed;
        let mut world = World::new(sim)?;
        world.run_for(WARMUP_NS);
        let start_ns = world.now().as_nanos();
        // The timeline counts ms from here on the observations' ms clock; a whole ms keeps the
        // two counts equal (`(t - start) / MS == t / MS - start / MS`).
        debug_assert_eq!(start_ns % MS, 0, "the warm-up is a whole number of ms");
        let base_metrics = world.metrics();
        let acked = world.acked_writes();
        Ok(Checkpoint {
            sim: SimWorld {
                world,
                start_ns,
                unsafe_stops: Vec::new(),
                early_stops: Vec::new(),
                lost_allocs: Vec::new(),
                acked,
                drain_deadline_ns: cfg.drain_deadline_ms.map(|ms| ms * MS),
                client_drain_deadline_ns: cfg
                    .client_batches
                    .as_ref()
                    .and_then(|c| c.drain_deadline_ms)
                    .map(|ms| ms * MS),
            },
            timeline: Timeline {
                start_ms: start_ns / MS,
                steps: Vec::new(),
                tolerance: Vec::new(),
            },
            proc: Procedure::new(cfg.clone()),
            result: ActionResult::None,
            base_metrics,
            seed,
            last: None,
        })
    }

    /// The index of the next step.
    pub fn step(&self) -> usize {
        self.timeline.steps.len()
    }

    /// Whether the procedure has ended (its final action is chosen).
    pub fn ended(&self) -> bool {
        self.last.is_some()
    }

    /// The world as it is now.
    pub fn world(&self) -> &World {
        &self.sim.world
    }

    /// Where the procedure is, as the hooks see it before the next step.
    pub fn ctx(&self) -> (Vec<String>, Vec<String>) {
        (self.proc.step_info().servers, self.proc.upgraded().to_vec())
    }

    /// Runs one step of the shared loop (`driver::step`): hooks, observation, the procedure's
    /// choice and its action. Does nothing once the procedure has ended.
    pub fn advance(&mut self, cfg: &ProcedureConfig, hooks: &mut dyn Hooks) {
        if self.last.is_some() {
            return;
        }
        let mut driver = SimDriver {
            sim: &mut self.sim,
            hooks,
            install_ms: cfg.install_time_ms,
            client_install_ms: cfg.client_batches.as_ref().map_or(0, |c| c.install_time_ms),
        };
        let result = std::mem::replace(&mut self.result, ActionResult::None);
        let index = self.timeline.steps.len();
        let turn = driver::ready(driver::step(
            &mut driver,
            &mut self.proc,
            &mut self.timeline,
            index,
            result,
        ));
        match turn {
            Ok(Turn::Next(r)) => self.result = r,
            Ok(Turn::Ended(a)) => self.last = Some(a),
            Err(LoopError::Driver(never) | LoopError::Record(never)) => match never {},
        }
    }

    /// Runs to the end of the procedure, then the cooldown, and judges the run.
    pub fn resume(mut self, cfg: &ProcedureConfig, hooks: &mut dyn Hooks) -> Outcome {
        let final_action = loop {
            if let Some(a) = self.last.take() {
                break a;
            }
            self.advance(cfg, hooks);
        };
        let Checkpoint {
            mut sim,
            timeline,
            proc,
            base_metrics,
            seed,
            ..
        } = self;
        let duration_ms = sim.ms();
        sim.world.mark_procedure_end();
        hooks.finish(&mut sim.world);
        sim.world.run_for(COOLDOWN_NS);
        let horizon = sim.world.now().plus(NODE_TIMERS_MAX_NS);
        // Each pass fires at least one timer (and disarms it), so the nodes bound the loop.
        for _ in 0..=sim.world.client_count() {
            let now = sim.world.now();
            let next = sim.world.next_node_deadline();
            let Some(t) = next.filter(|&t| t > now && t <= horizon) else {
                break;
            };
            sim.world.run_until(t);
        }
        sim.world.check_log_matching();
        hooks.done(&sim.world);
        let mut outcome = judge(
            sim,
            timeline,
            &final_action,
            proc.upgraded().to_vec(),
            seed,
            duration_ms,
            &base_metrics,
        );
        outcome.notes = proc.notes().to_vec();
        outcome
    }
}

/// Rehearses with hooks around every action.
pub fn rehearse_with(
    cfg: &ProcedureConfig,
    sim: SimConfig,
    hooks: &mut dyn Hooks,
) -> Result<Outcome, rehearse_sim::SimError> {
    Ok(Checkpoint::start(cfg, sim)?.resume(cfg, hooks))
}

fn id_of(world: &World, name: &str) -> Result<ServerId, String> {
    world
        .server_id(name)
        .ok_or_else(|| format!("unknown server {name}"))
}

fn client_of(world: &World, name: &str) -> Result<usize, String> {
    world
        .client_index(name)
        .ok_or_else(|| format!("unknown client {name}"))
}

/// A client-phase action (`[upgrade.clients]`) on a client-only node. Its losses are the
/// world's to find: allocations of a stopped node are lost when the leader marks it down
/// before it is back (`World::client_losses`).
fn apply_client(run: &mut SimWorld, action: &Action) -> Result<ActionResult, String> {
    let w = &mut run.world;
    match action {
        Action::DrainClient { client } => {
            let i = client_of(w, client)?;
            w.drain_client(i, run.client_drain_deadline_ns)
                .map_err(|e| e.to_string())?;
        }
        Action::StopClient { client } => w.stop_client(client_of(w, client)?),
        Action::InstallClient { client, version } => {
            w.install_client(client_of(w, client)?, *version)?;
        }
        Action::StartClient { client } => w.start_client(client_of(w, client)?),
        Action::MarkEligible { client } => {
            let i = client_of(w, client)?;
            w.mark_client_eligible(i).map_err(|e| e.to_string())?;
        }
        _ => return Ok(ActionResult::None),
    }
    Ok(ActionResult::Ok)
}

fn apply(run: &mut SimWorld, action: &Action) -> Result<ActionResult, String> {
    let w = &mut run.world;
    match action {
        Action::SaveSnapshot => {
            let via = w.leader().unwrap_or(0);
            w.snapshot_save(via)
                .map(ActionResult::Snapshot)
                .map_err(|e| e.to_string())
        }
        Action::Drain { server } => {
            let id = id_of(w, server)?;
            w.drain_with_deadline(id, run.drain_deadline_ns)
                .map(|()| ActionResult::Ok)
                .map_err(|e| e.to_string())
        }
        Action::Stop { server } => {
            let id = id_of(w, server)?;
            stop(run, server, id);
            Ok(ActionResult::Ok)
        }
        Action::ReplaceBinary { server, version } => {
            let id = id_of(w, server)?;
            w.replace_binary(id, *version)
                .map(|()| ActionResult::Ok)
                .map_err(|e| e.to_string())
        }
        Action::Start { server } => {
            let id = id_of(w, server)?;
            w.start(id);
            Ok(ActionResult::Ok)
        }
        Action::TransferLeadership { from } => {
            let id = id_of(w, from)?;
            w.transfer_leadership(id, None)
                .map(|()| ActionResult::Ok)
                .map_err(|e| e.to_string())
        }
        Action::RestoreSnapshot { snapshot } => {
            let via = w.leader().unwrap_or(0);
            w.snapshot_restore(via, snapshot)
                .map(|()| ActionResult::Ok)
                .map_err(|e| e.to_string())
        }
        Action::UpgradeClients { version } => {
            w.upgrade_clients(*version);
            Ok(ActionResult::Ok)
        }
        Action::DrainClient { .. }
        | Action::StopClient { .. }
        | Action::InstallClient { .. }
        | Action::StartClient { .. }
        | Action::MarkEligible { .. } => apply_client(run, action),
        Action::Observe { .. } => Ok(ActionResult::Ok),
        Action::Done(_) | Action::Halt(_) => Ok(ActionResult::None),
    }
}

/// The procedure stops server `id` (named `server`): records a stop while the others did not
/// form a quorum, and the allocations the stop kills (or a drain that reported complete too
/// early), then stops it.
fn stop(run: &mut SimWorld, server: &str, id: ServerId) {
    let w = &run.world;
    if !others_form_quorum(w, id) {
        let wedged = w.leader().filter(|&l| l != id && w.is_wedged(l));
        let why = wedged.map_or(String::new(), |l| {
            format!(
                " (leader {} had not established leadership)",
                w.server_name(l)
            )
        });
        run.unsafe_stops
            .push(format!("{server} at {} ms{why}", run.ms()));
    }
    // Only the stop of a running agent kills its allocations. A frozen or dead agent's node
    // misses its heartbeats and is marked down, its allocations lost, whether or not it is
    // stopped now: the stop loses nothing more (the fault did). The procedure stops one
    // without a drain only when autopilot has removed it from the Raft configuration (see
    // `Procedure::fence_candidate`).
    use rehearse_sim::state::ProcessState;
    let running = matches!(
        run.world.process_state(id),
        ProcessState::Running | ProcessState::Starting
    );
    let allocs = if running {
        run.world.allocations_running_now(id)
    } else {
        0
    };
    if allocs > 0 && run.world.drain_complete(id) {
        run.early_stops.push(format!(
            "stopped {server} at {} ms while {allocs} allocations were still running on it: its drain had reported complete (hashicorp/nomad#14293)",
            run.ms()
        ));
    } else if allocs > 0 {
        run.lost_allocs.push(format!(
            "lost allocations: stopped {server} at {} ms with {allocs} allocations running on it and no completed drain; they were killed, not migrated",
            run.ms()
        ));
    }
    run.world.stop(id, StopMode::Graceful);
}

/// Ground truth: are the voters other than `id` (newest configuration) that are healthy a
/// quorum of the voter set? The property: never stop a server unless this holds. It needs no
/// leader, so a crashed leader does not make every stop look unsafe.
fn others_form_quorum(w: &World, id: ServerId) -> bool {
    let (healthy, voters) = healthy_voters(w, Some(id));
    healthy >= rehearse_sim::raft::quorum(voters)
}

/// The voters of the newest configuration that are healthy — running, alive in their own
/// gossip view, within autopilot's trailing-log bound of the most advanced running voter, and
/// not a leader that won but never established leadership (hashicorp/nomad#8470: it serves
/// nothing, and its heartbeats keep the others from electing anyone while it runs) — leaving
/// `except` out of the count. Returns (healthy voters, all voter entries: under raft protocol 2
/// a stale address still counts toward the quorum, hashicorp/nomad#12926).
pub fn healthy_voters(w: &World, except: Option<ServerId>) -> (usize, usize) {
    let voters = w.latest_voters();
    let running = |v: ServerId| w.process_state(v) == rehearse_sim::ProcessState::Running;
    let last = |v: ServerId| w.agent_self(v).map_or(0, |a| a.raft.last_log_index);
    let top = voters
        .iter()
        .copied()
        .filter(|&v| running(v))
        .map(last)
        .max()
        .unwrap_or(0);
    let max_trailing = w.config().autopilot.max_trailing_logs;
    // Alive in its own `members` answer (which it gives only while running), without building
    // the list.
    let alive =
        |v: ServerId| running(v) && w.serf_status(v) == rehearse_model::api::SerfStatus::Alive;
    let healthy = voters
        .iter()
        .copied()
        .filter(|&v| {
            Some(v) != except
                && running(v)
                && alive(v)
                && last(v) + max_trailing >= top
                && !w.is_wedged(v)
        })
        .count();
    (healthy, w.latest_voter_count())
}

fn judge(
    run: SimWorld,
    timeline: Timeline,
    action: &Action,
    order: Vec<String>,
    seed: u64,
    duration_ms: u64,
    base: &Metrics,
) -> Outcome {
    let w = &run.world;
    let mut metrics = w.metrics();
    metrics.no_leader_ns -= base.no_leader_ns.min(metrics.no_leader_ns);
    metrics.quorum_lost_ns -= base.quorum_lost_ns.min(metrics.quorum_lost_ns);
    metrics.skew_crashes -= base.skew_crashes.min(metrics.skew_crashes);
    metrics.snapshot_refusals -= base.snapshot_refusals.min(metrics.snapshot_refusals);
    let workload = w.workload();
    let mut problems = cluster_problems(w, &metrics, &workload);
    for s in &run.unsafe_stops {
        problems.push(format!(
            "stopped {s} while the others did not form a quorum"
        ));
    }
    let mut client_problems = run.early_stops.clone();
    client_problems.extend(w.nodes_not_marked_down());
    problems.extend(client_problems.iter().cloned());
    for v in w.violations() {
        problems.push(format!("{}: {}", v.invariant, v.detail));
    }
    let lost = lost_allocations(&run, w);
    let verdict = verdict_of(w, action, problems, &lost);
    let final_versions = (0..w.server_count())
        .map(|id| (w.server_name(id).to_string(), w.version(id).to_string()))
        .collect();
    Outcome {
        seed,
        verdict,
        steps: timeline.steps,
        tolerance: timeline.tolerance,
        duration_ms,
        metrics,
        workload,
        violations: w.violations().to_vec(),
        order,
        unsafe_stops: run.unsafe_stops.clone(),
        leader_last: matches!(action, Action::Done(s) if s.leader_last),
        final_versions,
        trace_hash: w.trace_hash(),
        notes: Vec::new(),
        events: notable_events(w),
        client_problems,
        lost_allocations: lost,
        workload_plane: w.workload_outcome(),
    }
}

/// The lost allocations of a run, one message each: those a stop without a completed drain
/// lost (recorded by the run), those a drain deadline stopped, and those of a stopped client
/// the leader marked down before it came back. Allocations a drain deadline stopped before
/// they were migrated were killed, not moved: the same harm as a stop without a completed
/// drain, so they go the same way (the `LostAllocations` verdict) rather than into a class of
/// their own.
fn lost_allocations(run: &SimWorld, w: &World) -> Vec<String> {
    let ms = |t: rehearse_sim::SimTime| t.as_nanos().saturating_sub(run.start_ns) / MS;
    let mut lost = run.lost_allocs.clone();
    lost.extend(w.drain_deadline_stops().iter().map(|d| {
        let (n, it) = if d.allocs == 1 {
            ("allocation", "it was")
        } else {
            ("allocations", "they were")
        };
        format!(
            "drain deadline reached on {} at {} ms: {} {n} of {} stopped before {it} migrated",
            d.server,
            ms(d.at),
            d.allocs,
            d.job
        )
    }));
    lost.extend(w.client_losses().iter().map(|c| {
        format!(
            "lost allocations: stopped client {} at {} ms with {} allocations running on it and no completed drain; the leader marked it down at {} ms, before it came back, so they were lost, not migrated",
            c.client,
            ms(c.stopped_at),
            c.allocs,
            ms(c.marked_down_at)
        )
    }));
    lost
}

/// The verdict of a run that ended with `action`: unsafe if anything in `problems`, else lost
/// allocations, a stalled workload, completed or halted.
fn verdict_of(w: &World, action: &Action, problems: Vec<String>, lost: &[String]) -> Verdict {
    match (problems.is_empty(), action) {
        (false, _) => Verdict::Unsafe {
            problems: problems.into_iter().chain(lost.iter().cloned()).collect(),
        },
        (true, _) if !lost.is_empty() => Verdict::LostAllocations {
            problems: lost.to_vec(),
        },
        (true, Action::Done(_)) => match stall_problem(
            !w.config().jobs.is_empty(),
            &w.workload_outcome(),
            w.workload_unrecovered(),
        ) {
            Some(p) => Verdict::StalledWorkload { problems: vec![p] },
            None => Verdict::Completed,
        },
        (true, Action::Halt(r)) => Verdict::Halted {
            reason: r.to_string(),
        },
        (true, _) => Verdict::Halted {
            reason: "ended without a verdict".into(),
        },
    }
}

/// The problem of a completed run whose workload never recovered after the procedure ended
/// (`time_to_recover_ns` still None at the end of the run), naming what is short now
/// (`World::workload_unrecovered`); None without jobs or once it recovered.
fn stall_problem(
    declares_jobs: bool,
    plane: &rehearse_sim::WorkloadOutcome,
    now: Option<String>,
) -> Option<String> {
    if !declares_jobs || plane.time_to_recover_ns.is_some() {
        return None;
    }
    let what = now.unwrap_or_else(|| "eval backlog 0 (every job runs its desired count)".into());
    Some(format!("jobs not recovered by the end of the run: {what}"))
}

/// What went wrong in the cluster over the run, one line each: quorum lost, acknowledged writes
/// lost, version-skew panics, refused snapshots, a leader that could not establish leadership.
fn cluster_problems(w: &World, metrics: &Metrics, workload: &WorkloadStats) -> Vec<String> {
    let mut problems = Vec::new();
    if metrics.quorum_lost_ns > 0 {
        problems.push(format!(
            "quorum lost for {:.1}s",
            metrics.quorum_lost_ns as f64 / 1e9
        ));
    }
    if workload.lost_acked > 0 {
        problems.push(format!("{} acknowledged writes lost", workload.lost_acked));
    }
    if metrics.skew_crashes > 0 {
        problems.push(format!(
            "{} servers panicked on a log entry they could not apply",
            metrics.skew_crashes
        ));
    }
    if metrics.snapshot_refusals > 0 {
        problems.push(format!(
            "{} servers could not load a snapshot written by a newer version",
            metrics.snapshot_refusals
        ));
    }
    // A leader that won but never established leadership serves nothing while its heartbeats
    // keep anyone else from being elected (hashicorp/nomad#8470). One shorter than an ordinary
    // election (2 × ElectionTimeout) is the fix at work: since Nomad 1.3.0 it hands leadership
    // over within a round trip or two (PR #12293).
    let election_ns = 2 * w.config().election_timeout_ns();
    if let Some((id, ns)) = w.longest_wedge().filter(|&(_, ns)| ns > election_ns) {
        problems.push(format!(
            "{} won the election but could not establish leadership: writes refused for {:.1}s while it led",
            w.server_name(id),
            ns as f64 / 1e9
        ));
    }
    problems
}

/// Notable events from the trace: crashes the servers did on their own (a panic, a refused
/// start, a crash loop; faults' `kill -9` are left out), leaders that failed to establish
/// leadership, peer-set shrinks by autopilot's dead-server cleanup, protocol-2 servers added
/// again at a new address, servers re-added under a UUID Raft ID in a raft protocol 2 → 3 roll,
/// then InstallSnapshot counts per follower.
fn notable_events(w: &World) -> Vec<String> {
    use rehearse_sim::trace::TraceKind;
    let mut out: Vec<String> = Vec::new();
    let mut installs = vec![0u64; w.server_count()];
    for ev in w.trace_log().events() {
        match &ev.kind {
            TraceKind::Process { server, what } if what.starts_with("failed to establish") => {
                let line = format!("{} {what}", w.server_name(*server));
                if !out.contains(&line) && out.len() < EVENTS_MAX {
                    out.push(line);
                }
            }
            TraceKind::Process { server, what } => {
                let Some(why) = what.strip_prefix("crash: ") else {
                    continue;
                };
                let line = format!("{} crashed: {why}", w.server_name(*server));
                if why != "kill -9" && !out.contains(&line) && out.len() < EVENTS_MAX {
                    out.push(line);
                }
            }
            TraceKind::InstallSnapshot { to, .. } => installs[*to] += 1,
            TraceKind::Config { why, .. }
                if (why.starts_with("dead-server cleanup")
                    || why.contains("old address stays")
                    || why.starts_with("removed server with duplicate address"))
                    && !out.contains(why)
                    && out.len() < EVENTS_MAX =>
            {
                out.push(why.clone());
            }
            _ => {}
        }
    }
    for (id, n) in installs.into_iter().enumerate() {
        if n > 0 && out.len() < EVENTS_MAX {
            let times = if n == 1 {
                "once".into()
            } else {
                format!("{n} times")
            };
            out.push(format!(
                "{} was sent InstallSnapshot {times}",
                w.server_name(id)
            ));
        }
    }
    out
}

#[cfg(test)]
mod stall_tests {
    use super::stall_problem;
    use rehearse_sim::WorkloadOutcome;

    fn plane(recovered: Option<u64>) -> WorkloadOutcome {
        WorkloadOutcome {
            backlog_peak: 7,
            time_to_recover_ns: recovered,
            lost_allocs: 0,
        }
    }

    #[test]
    fn a_completed_run_whose_jobs_never_recovered_is_stalled() {
        let now = Some("eval backlog 7 (web 1/3 running)".to_string());
        assert_eq!(
            stall_problem(true, &plane(None), now).as_deref(),
            Some("jobs not recovered by the end of the run: eval backlog 7 (web 1/3 running)")
        );
    }

    #[test]
    fn recovered_or_no_jobs_is_not_stalled() {
        let now = Some("eval backlog 7 (web 1/3 running)".to_string());
        assert_eq!(stall_problem(true, &plane(Some(1)), now.clone()), None);
        assert_eq!(stall_problem(false, &plane(None), now), None);
        assert_eq!(
            stall_problem(false, &WorkloadOutcome::default(), None),
            None
        );
    }
}
