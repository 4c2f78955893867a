//! `rehearse execute`: the rehearsed procedure driving a real cluster.
//!
//! The loop is the simulator's loop with I/O at the edge: observe the cluster through the HTTP
//! API, hand the observation to the pure `Procedure`, carry out the action it returns, repeat.
//! Every observation and every action (before and after) goes to the journal first.
//!
//! Nothing is changed before the cluster has been read and matched against the plan: an
//! unreachable cluster, a refused token or a plan that does not describe the cluster is an
//! input error (exit 2) with nothing done. A dry run (the default) stops there and prints what
//! it would do.

use super::client::{ClientError, Connection};
use super::cluster::LiveCluster;
use super::control::{
    CONTAINER_IN_PROCESS, ClientOp, ControlError, NodeControl, ServerControl, Side,
};
use super::journal::{Installed, Journal, Record};
use super::probe::{self, Probe, ProbeReport};
use crate::driver::{self, Driver, LoopError, Recorder, StepCtx};
use crate::plan::{ControlKind, Plan};
use crate::procedure::{
    Action, ActionResult, ClusterView, HaltReason, Observation, Procedure, ProcedureConfig, Reads,
    Summary,
};
use rehearse_model::api::{ApiError, SharedStr, SnapshotInfo};
use rehearse_model::versions::Product;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What `execute` was asked to do.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Act (otherwise a dry run).
    pub apply: bool,
    /// Journal file.
    pub journal: PathBuf,
    /// Where snapshots are saved.
    pub snapshot_dir: PathBuf,
    /// Address to discover servers without `address` in the plan (NOMAD_ADDR / CONSUL_HTTP_ADDR).
    pub addr: String,
    /// Connection settings (token, TLS).
    pub conn: Connection,
}

/// How an execution ended.
#[derive(Debug, Clone)]
pub enum ExecOutcome {
    /// Dry run: whether the preflight passes now.
    DryRun {
        /// Unmet preflight conditions.
        unmet: Vec<String>,
    },
    /// The upgrade completed.
    Done(Summary),
    /// The procedure halted safely.
    Halted(HaltReason),
    /// Ctrl-C: halted after the action in flight; a rerun resumes.
    Interrupted,
    /// The journal says this plan already completed.
    AlreadyDone,
}

/// The measured run, for the report and the operator.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExecStats {
    /// Wall time of this attempt (ms).
    pub total_ms: u64,
    /// Probe summary, when the probe ran and its keys could be read back.
    pub probe: Option<ProbeReport>,
    /// Why the probe's acknowledged writes could not be verified (no server answered the
    /// read of its keys within `PROBE_VERIFY_WAIT`), when the probe ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_unverified: Option<String>,
}

/// How long the end of a run keeps asking for the probe's keys while no server answers (a
/// halted run may leave the cluster electing or catching up).
const PROBE_VERIFY_WAIT: Duration = Duration::from_secs(30);

/// Why `execute` stopped without an outcome.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Bad input (unreadable plan or journal, unreachable cluster, a plan that does not match
    /// it): nothing was changed.
    #[error("{0}")]
    Input(String),
    /// The run could not go on after it had begun (its journal could not be written): the
    /// cluster may have changed. The journal holds everything up to the failed record.
    #[error("{0}")]
    Stopped(String),
}

impl ExecError {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            ExecError::Input(m) | ExecError::Stopped(m) => m,
        }
    }
}

/// Why one action failed. Not a run error: the procedure judges it (`ActionResult::Failed`
/// carries the message) and decides whether to halt.
#[derive(Debug, thiserror::Error)]
enum ActionError {
    /// An API call on the cluster (`live::cluster` reports these as text).
    #[error("{0}")]
    Cluster(String),
    /// Stopping, installing or starting a server.
    #[error(transparent)]
    Control(#[from] ControlError),
}

impl From<ClientError> for ExecError {
    fn from(e: ClientError) -> Self {
        ExecError::Input(e.0)
    }
}

/// Unix ms: read once per attempt to put its clock on the journal's scale, and for names.
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The cluster's servers as clients: the plan's addresses, or addresses derived from the raft
/// configuration read through `opts.addr` (raft host + the HTTP port of `opts.addr`).
pub async fn connect(plan: &Plan, opts: &ExecOptions) -> Result<LiveCluster, ExecError> {
    let product = plan.cluster.product;
    let mut servers = Vec::new();
    let missing = plan.cluster.servers.iter().any(|s| s.address.is_none());
    let discovered = if missing {
        discover(product, &opts.addr, &opts.conn).await?
    } else {
        Vec::new()
    };
    for (i, s) in plan.cluster.servers.iter().enumerate() {
        let addr = match &s.address {
            Some(a) => a.clone(),
            None => discovered
                .iter()
                .find(|(n, _)| n == &s.name)
                .map(|(_, a)| a.clone())
                .ok_or_else(|| {
                    ExecError::Input(format!(
                        "cluster.servers[{i}] ({}): no address in the plan and not in the raft configuration read from {}",
                        s.name, opts.addr
                    ))
                })?,
        };
        let c = super::client::Client::new(&addr, &opts.conn)
            .map_err(|e| ExecError::Input(format!("cluster.servers[{i}].address: {}", e.0)))?;
        servers.push((s.name.clone(), c));
    }
    Ok(LiveCluster { product, servers })
}

/// (name, http address) of every server in the raft configuration read through `addr`.
pub async fn discover(
    product: Product,
    addr: &str,
    conn: &Connection,
) -> Result<Vec<(String, String)>, ExecError> {
    let c = super::client::Client::new(addr, conn)?;
    let cluster = LiveCluster {
        product,
        servers: vec![("seed".into(), c.clone())],
    };
    let raft = cluster
        .raft_configuration(&c)
        .await
        .map_err(|e| ExecError::Input(input_error_text(&e)))?;
    let port = c.base.rsplit(':').next().unwrap_or("4646").to_string();
    let scheme = c.base.split("://").next().unwrap_or("http").to_string();
    Ok(raft
        .servers
        .iter()
        .map(|s| {
            let host = s.address.rsplit_once(':').map_or(&*s.address, |(h, _)| h);
            (
                crate::procedure::base(&s.node).to_string(),
                format!("{scheme}://{host}:{port}"),
            )
        })
        .collect())
}

fn input_error_text(e: &ApiError) -> String {
    match e {
        ApiError::Forbidden { addr } => format!(
            "{addr}: permission denied: set NOMAD_TOKEN / CONSUL_HTTP_TOKEN to a token with operator write access (tokens are never printed)"
        ),
        other => format!("{other}: check the address and that the servers run"),
    }
}

/// How the plan's servers compare with the live raft configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// The same servers (or the raft configuration could not be read: the procedure's own
    /// checks judge that).
    Matches,
    /// Servers in the cluster but not in the plan: the plan describes another cluster.
    Extra {
        /// In the raft configuration, not in the plan.
        extra: Vec<String>,
        /// In the plan, not in the raft configuration.
        absent: Vec<String>,
    },
    /// Servers of the plan are absent from the raft configuration, and each of them answers
    /// its own API or is alive in serf members: they are re-joining (autopilot's dead-server
    /// cleanup removed them while they were down; the leader adds them back).
    Rejoining(Vec<String>),
    /// Servers of the plan are absent from the raft configuration and some neither answer
    /// nor are alive in serf members: nothing brings them back by waiting.
    Gone {
        /// Absent, not answering, not alive in serf.
        gone: Vec<String>,
    },
}

/// Compares the plan's servers (`planned`, plan names) with the raft configuration in `view`.
pub fn membership(planned: &[&str], view: &ClusterView) -> Membership {
    let Ok(r) = &view.raft else {
        return Membership::Matches;
    };
    let live: Vec<&str> = r
        .servers
        .iter()
        .map(|s| crate::procedure::base(&s.node))
        .collect();
    let extra: Vec<String> = live
        .iter()
        .filter(|n| !planned.contains(n))
        .map(|n| n.to_string())
        .collect();
    let absent: Vec<String> = planned
        .iter()
        .filter(|n| !live.contains(n))
        .map(|n| n.to_string())
        .collect();
    if !extra.is_empty() {
        return Membership::Extra { extra, absent };
    }
    if absent.is_empty() {
        return Membership::Matches;
    }
    // Any HTTP answer counts: a server that has not re-joined yet may answer "no leader".
    let answers = |n: &str| {
        view.agents.iter().any(|(a, r)| {
            &**a == n && !matches!(r, Err(ApiError::Unreachable { .. } | ApiError::NotRead))
        })
    };
    let alive = |n: &str| {
        view.members.as_ref().is_ok_and(|m| {
            m.iter().any(|x| {
                crate::procedure::base(&x.name) == n
                    && x.status == rehearse_model::api::SerfStatus::Alive
            })
        })
    };
    let gone: Vec<String> = absent
        .iter()
        .filter(|n| !answers(n) && !alive(n))
        .cloned()
        .collect();
    if gone.is_empty() {
        Membership::Rejoining(absent)
    } else {
        Membership::Gone { gone }
    }
}

/// Reads the cluster and refuses to go on (input error) when it cannot be read or does not
/// match the plan. Servers of the plan that are absent from the raft configuration while they
/// re-join (they answer, or are alive in serf members) are waited for, at most the plan's
/// `upgrade.gate.timeout`, with a progress line on stderr; so are servers that refuse a token
/// the other servers accept. Returns the view.
pub async fn check_cluster(plan: &Plan, cluster: &LiveCluster) -> Result<ClusterView, ExecError> {
    let gate = ProcedureConfig::from_plan(plan).gate;
    let bound = Duration::from_millis(gate.timeout_ms);
    let poll = Duration::from_millis(gate.poll_ms.clamp(100, 5_000));
    let planned: Vec<&str> = plan
        .cluster
        .servers
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let mut waiting = Waiting::new(bound, poll);
    let view = loop {
        let (view, refusing) = read_answering(cluster).await?;
        if !refusing.is_empty() {
            if waiting.over() {
                return Err(ExecError::Input(format!(
                    "{} still refuse the token after {}s (upgrade.gate.timeout) while the other servers accept it: check that they replicate the cluster's ACL state (their logs), then rerun",
                    refusing.join(", "),
                    bound.as_secs()
                )));
            }
            let what = format!(
                "{} to accept the token the other servers accept (restarted moments ago, still replaying its log?)",
                refusing.join(", ")
            );
            waiting.step(&what).await;
            continue;
        }
        match membership(&planned, &view) {
            Membership::Matches => break view,
            Membership::Extra { extra, absent } => {
                return Err(ExecError::Input(format!(
                    "cluster.servers does not match the live raft configuration: in the cluster but not the plan {extra:?}, in the plan but not the cluster {absent:?} (rehearse import writes a matching plan)"
                )));
            }
            Membership::Gone { gone } => {
                return Err(ExecError::Input(format!(
                    "cluster.servers: {gone:?} in the plan but not in the live raft configuration, and neither answering nor alive in serf members (autopilot removes a server that stays down): start them again (a server that re-joins is added back) and rerun"
                )));
            }
            Membership::Rejoining(absent) if waiting.over() => {
                return Err(ExecError::Input(format!(
                    "cluster.servers: {absent:?} still not in the live raft configuration after {}s (upgrade.gate.timeout), though they answer or are alive in serf members: check their logs for why the leader does not add them back, then rerun",
                    bound.as_secs()
                )));
            }
            Membership::Rejoining(absent) => {
                let what = format!(
                    "{} to re-join the raft configuration (they answer or are alive in serf members; removed while down)",
                    absent.join(", ")
                );
                waiting.step(&what).await;
            }
        }
    };
    let allowed = [plan.cluster.version, plan.upgrade.target];
    for (n, a) in &view.agents {
        if let Ok(a) = a
            && !allowed.contains(&a.version)
        {
            return Err(ExecError::Input(format!(
                "{n} runs {}, but the plan says cluster.version = {} and upgrade.target = {}",
                a.version, plan.cluster.version, plan.upgrade.target
            )));
        }
    }
    Ok(view)
}

/// A bounded wait before the run (`check_cluster`): a progress line on stderr at most every
/// 5 s, a sleep of one poll per step.
struct Waiting {
    t0: Instant,
    bound: Duration,
    poll: Duration,
    said: Option<Instant>,
}

impl Waiting {
    fn new(bound: Duration, poll: Duration) -> Waiting {
        Waiting {
            t0: Instant::now(),
            bound,
            poll,
            said: None,
        }
    }

    /// Whether the bound has passed.
    fn over(&self) -> bool {
        self.t0.elapsed() >= self.bound
    }

    /// Says what is waited for (`waiting for {what}: …s of at most …s`) unless it was said in
    /// the last 5 s, then sleeps one poll.
    async fn step(&mut self, what: &str) {
        if self
            .said
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
        {
            eprintln!(
                "waiting for {what}: {:.0}s of at most {}s",
                self.t0.elapsed().as_secs_f64(),
                self.bound.as_secs()
            );
            self.said = Some(Instant::now());
        }
        tokio::time::sleep(self.poll).await;
    }
}

/// Reads the cluster once; refuses a token the servers refuse, or a cluster none of whose
/// servers answers. Returns the view and the servers that refuse the token while another
/// server of the cluster accepts it (see `refusing_while_others_accept`).
async fn read_answering(cluster: &LiveCluster) -> Result<(ClusterView, Vec<String>), ExecError> {
    let view = cluster.observe().await;
    let (refusing, refused) = refusing_while_others_accept(cluster, &view);
    if let Some(e) = refused {
        return Err(ExecError::Input(input_error_text(&e)));
    }
    if view.agents.iter().all(|(_, a)| a.is_err()) {
        let why: Vec<String> = view
            .agents
            .iter()
            .map(|(n, a)| {
                format!(
                    "{n}: {}",
                    a.as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )
            })
            .collect();
        return Err(ExecError::Input(format!(
            "cannot reach any server of the plan ({}); check the addresses and that the cluster runs",
            why.join("; ")
        )));
    }
    Ok((view, refusing))
}

/// Splits the token refusals in `view` into servers that refuse the token while another server
/// accepts it (its own `agent/self` read succeeded with the same token), and a refusal that
/// blames the token. Tokens are cluster-wide: a server that refuses one its peers accept has
/// not yet replayed the log that holds it (a server restarted moments ago, as when a run is
/// resumed right after it stopped). A refusal of the raft configuration by a server whose own
/// read was accepted blames the token: it lacks the operator rule.
fn refusing_while_others_accept(
    cluster: &LiveCluster,
    view: &ClusterView,
) -> (Vec<String>, Option<ApiError>) {
    let forbidden = |r: Option<&ApiError>| matches!(r, Some(ApiError::Forbidden { .. }));
    let accepted = view.agents.iter().any(|(_, a)| a.is_ok());
    let refusing: Vec<String> = view
        .agents
        .iter()
        .filter(|(_, a)| accepted && forbidden(a.as_ref().err()))
        .map(|(n, _)| n.to_string())
        .collect();
    let by_refusing = |e: &ApiError| {
        let ApiError::Forbidden { addr } = e else {
            return false;
        };
        cluster
            .servers
            .iter()
            .any(|(n, c)| c.base == **addr && refusing.contains(n))
    };
    let blamed = view
        .agents
        .iter()
        .filter_map(|(_, a)| a.as_ref().err())
        .chain(view.raft.as_ref().err())
        .find(|e| forbidden(Some(e)) && !by_refusing(e))
        .cloned();
    (refusing, blamed)
}

/// What the dry run finds wrong before the procedure's own preflight: every server whose own
/// API does not answer. Gossip and autopilot call a paused server alive and healthy for a
/// while after it stopped answering; its API is the first to tell.
pub fn unanswered(view: &ClusterView) -> Vec<String> {
    view.agents
        .iter()
        .filter_map(|(n, a)| {
            let e = a.as_ref().err()?;
            Some(match e {
                ApiError::Unreachable { .. } => format!("{n}: its HTTP API does not answer ({e})"),
                _ => format!("{n}: its HTTP API answers with an error ({e})"),
            })
        })
        .collect()
}

/// sha-256 of the plan text, hex: a journal belongs to one plan.
pub fn plan_digest(text: &str) -> String {
    crate::report::sha256_hex(text.as_bytes())
}

/// Runs `execute` to the end, stopping and starting servers with the plan's `process` or
/// `command` backend.
pub async fn execute(
    plan: &Plan,
    plan_text: &str,
    opts: &ExecOptions,
) -> Result<(ExecOutcome, ExecStats), ExecError> {
    let local = NodeControl::from_plan(plan);
    if opts.apply && local.as_ref().map(NodeControl::kind) == Some(ControlKind::Container) {
        // Refused before the cluster is touched: nothing here can drive those containers.
        return Err(ExecError::Input(CONTAINER_IN_PROCESS.into()));
    }
    execute_with(plan, plan_text, opts, local.as_ref()).await
}

/// Runs `execute` to the end with a node control the caller brings (`None`: the plan has no
/// usable `[execute]` section; a dry run needs none). This is how a program that embeds rehearse
/// drives servers rehearse's CLI cannot, e.g. containers whose handles live in that program.
pub async fn execute_with<C: ServerControl>(
    plan: &Plan,
    plan_text: &str,
    opts: &ExecOptions,
    control: Option<&C>,
) -> Result<(ExecOutcome, ExecStats), ExecError> {
    let cluster = connect(plan, opts).await?;
    let mut first_view = check_cluster(plan, &cluster).await?;
    let cfg = ProcedureConfig::from_plan(plan);
    if !opts.apply {
        // The preflight's workload half (Nomad): the backlog bound and the jobs already short.
        let ask = Reads {
            cluster: true,
            nodes: false,
            allocs: false,
            workload: true,
        };
        let deadline = cluster.observe_deadline();
        cluster.read_workload(&mut first_view, ask, deadline).await;
        return Ok((dry_run(plan, &cfg, &first_view), ExecStats::default()));
    }
    let control = control.ok_or_else(|| match plan.execute.as_ref().map(|x| x.control) {
        Some(ControlKind::Container) => ExecError::Input(CONTAINER_IN_PROCESS.into()),
        _ => ExecError::Input("the plan has no [execute] section: rehearse does not know how to stop and start the servers (see plans/README or `rehearse execute --help`)".into()),
    })?;
    let records = Journal::read(&opts.journal).map_err(|e| ExecError::Input(e.to_string()))?;
    let digest = plan_digest(plan_text);
    let mut run = Run::new(plan, cluster, control, opts, records, &digest)?;
    if run.already_done {
        return Ok((ExecOutcome::AlreadyDone, ExecStats::default()));
    }
    run.go().await
}

fn dry_run(plan: &Plan, cfg: &ProcedureConfig, view: &ClusterView) -> ExecOutcome {
    let mut unmet = unanswered(view);
    let p = Procedure::new(cfg.clone());
    unmet.extend(p.preflight_unmet(view));
    let (workload_unmet, short) = p.preflight_workload(view);
    unmet.extend(workload_unmet);
    out!("dry run (nothing will be changed; add --apply to act)");
    print_cluster(view);
    if !short.is_empty() {
        out!(
            "jobs already short (noted; the verification requires they get no worse): {}",
            short.join(", ")
        );
    }
    if unmet.is_empty() {
        out!("preflight: ok");
    } else {
        out!("preflight: NOT ready: {}", unmet.join("; "));
    }
    print_steps(plan, cfg, view);
    ExecOutcome::DryRun { unmet }
}

/// Prints what the dry run read: the leader, each server's version and Raft state, autopilot.
fn print_cluster(view: &ClusterView) {
    out!("leader: {}", view.leader.as_deref().unwrap_or("none"));
    for (n, a) in &view.agents {
        match a {
            Ok(a) => out!(
                "  {n}: {} {:?} term {} index {}",
                a.version,
                a.raft.state,
                a.raft.term,
                a.raft.last_log_index
            ),
            Err(e) => out!("  {n}: {e}"),
        }
    }
    if let Ok(h) = &view.health {
        out!(
            "autopilot: healthy={} failure_tolerance={}",
            h.healthy,
            h.failure_tolerance
        );
    }
}

/// Prints what an applied run would do: snapshot, each server (the leader last), verification.
fn print_steps(plan: &Plan, cfg: &ProcedureConfig, view: &ClusterView) {
    let leader = view.leader.clone().unwrap_or_default();
    let mut order: Vec<&str> = plan
        .cluster
        .servers
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| *n != leader)
        .collect();
    if !leader.is_empty() {
        order.push(&leader);
    }
    out!("would do:");
    if cfg.snapshot_first {
        out!("  save a Raft snapshot and verify its digest");
    }
    for s in order {
        let lead = if s == leader {
            " (the leader, last)"
        } else {
            ""
        };
        out!(
            "  {s}{lead}: check the others form a healthy quorum; stop ({}); install {}; start; gate: own API answers on {} caught up, alive, voter, autopilot healthy for {}s",
            plan.execute
                .as_ref()
                .map_or("SIGINT", |x| x.stop_signal.as_str()),
            plan.upgrade.target,
            plan.upgrade.target,
            cfg.gate.stable_for_ms / 1000
        );
    }
    out!("  verify versions, voters, health and the scheduler configuration");
    if cfg.product == Product::Nomad {
        out!(
            "  verify every job runs its allocations and the eval backlog is at most {}, within {}s",
            cfg.verify.max_eval_backlog,
            cfg.verify.settle_ms / 1000
        );
    }
}

/// One attempt of an applied run: the procedure, the live driver and the journal.
struct Run<'a, C: ServerControl> {
    driver: LiveDriver<'a, C>,
    journal: JournalRecorder,
    procedure: Procedure,
    /// Replay position: records of the unfinished attempt still to be matched.
    replay: Vec<Record>,
    already_done: bool,
}

/// The live cluster as a [`Driver`]: reads through the HTTP API, acts through the API and the
/// node control, waits on the runtime's timer.
struct LiveDriver<'a, C: ServerControl> {
    plan: &'a Plan,
    cluster: LiveCluster,
    control: &'a C,
    opts: &'a ExecOptions,
    installed: Installed,
    snapshots: Vec<(SnapshotInfo, PathBuf)>,
    probe: Option<Probe>,
    /// Set by Ctrl-C: the next observation ends the run instead.
    interrupted: Arc<AtomicBool>,
    drain_deadline_ms: u64,
    /// The drain deadline of client-only nodes (`[upgrade.clients]`).
    client_drain_deadline_ms: u64,
    /// The attempt's clock: ms at its start, on the journal's scale (Unix ms when it began,
    /// and never before the last time the journal recorded), plus monotonic time since.
    clock: Clock,
}

/// A clock that never goes backwards: a start on the journal's scale plus `Instant` time
/// since. The wall clock is read once, at the start; a step of the system clock later (NTP,
/// an operator) moves nothing.
#[derive(Debug, Clone, Copy)]
struct Clock {
    start_ms: u64,
    started: Instant,
}

impl Clock {
    /// A clock starting now, or just after `not_before_ms` if the wall clock is behind it.
    fn start(not_before_ms: u64) -> Clock {
        Clock {
            start_ms: wall_ms().max(not_before_ms),
            started: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start_ms
            .saturating_add(self.started.elapsed().as_millis() as u64)
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// The latest time a journal's records carry (0 for none).
fn last_recorded_ms(records: &[Record]) -> u64 {
    records.iter().map(Record::at_ms).max().unwrap_or(0)
}

/// Why the live driver stopped the loop.
#[derive(Debug, thiserror::Error)]
enum LiveStop {
    /// The operator pressed Ctrl-C; the action in flight had finished.
    #[error("interrupted")]
    Interrupted,
}

/// The journal as the loop's [`Recorder`]: every observation, every action before it is
/// carried out and after, and the end.
struct JournalRecorder {
    journal: Journal,
    /// The installation a `ReplaceBinary` being carried out gives its server, if it succeeds.
    installing: Option<(String, Side)>,
    /// Progress lines of the gate in progress (see `GateLines`).
    gate_lines: GateLines,
}

/// How often a waiting gate says what it waits for, on the observations' clock.
pub const GATE_LINE_EVERY_MS: u64 = 5_000;

/// The gate's progress on stderr while it waits: every `GATE_LINE_EVERY_MS` of waiting, one line
/// with its pending conditions and elapsed/timeout, as the procedure reports them
/// (`Procedure::gate_wait`).
#[derive(Debug, Default)]
struct GateLines {
    /// The gate's servers and the number of lines said for it.
    said: Option<(Vec<String>, u64)>,
}

impl GateLines {
    /// The line due after the procedure's latest choice, if one is.
    fn due(&mut self, proc: &Procedure) -> Option<String> {
        let Some(w) = proc.gate_wait() else {
            self.said = None;
            return None;
        };
        let slot = w.waited_ms / GATE_LINE_EVERY_MS;
        let said = match &self.said {
            Some((servers, n)) if *servers == w.servers => *n,
            _ => 0,
        };
        self.said = Some((w.servers.clone(), said.max(slot)));
        (slot > said).then(|| w.to_string())
    }
}

/// The installation a `ReplaceBinary` installs: the current version again while rolling back.
fn install_side(rolling_back: bool) -> Side {
    if rolling_back {
        Side::Current
    } else {
        Side::Target
    }
}

impl JournalRecorder {
    /// Opens the run's journal for appending, with nothing in progress.
    fn open(opts: &ExecOptions) -> Result<JournalRecorder, ExecError> {
        Ok(JournalRecorder {
            journal: Journal::open(&opts.journal).map_err(|e| ExecError::Input(e.to_string()))?,
            installing: None,
            gate_lines: GateLines::default(),
        })
    }

    fn log(&mut self, r: Record) -> Result<(), ExecError> {
        self.journal
            .write(&r)
            .map_err(|e| ExecError::Input(e.to_string()))
    }

    /// Notes the installation an action about to be carried out gives, if it succeeds.
    fn expect(&mut self, action: &Action, rolling_back: bool) {
        self.installing = match action {
            Action::ReplaceBinary { server, .. } => {
                Some((server.clone(), install_side(rolling_back)))
            }
            _ => None,
        };
    }
}

impl Recorder for JournalRecorder {
    type Error = ExecError;

    fn observed(&mut self, obs: &Observation) -> Result<(), ExecError> {
        self.log(Record::Observation {
            obs: Box::new(obs.clone()),
        })
    }

    fn chose(&mut self, at_ms: u64, proc: &Procedure, action: &Action) -> Result<(), ExecError> {
        self.expect(action, proc.is_rolling_back());
        if let Some(line) = self.gate_lines.due(proc) {
            eprintln!("    {line}");
        }
        self.log(Record::ActionBegin {
            at_ms,
            action: action.clone(),
        })?;
        if action.is_final() {
            self.log(Record::Finish {
                at_ms,
                action: action.clone(),
                notes: proc.notes().to_vec(),
            })?;
        }
        Ok(())
    }

    fn acted(&mut self, at_ms: u64, result: &ActionResult) -> Result<(), ExecError> {
        let installed = self
            .installing
            .take()
            .filter(|_| !matches!(result, ActionResult::Failed(_)));
        self.log(Record::ActionEnd {
            at_ms,
            result: result.clone(),
            installed,
        })
    }
}

impl<'a, C: ServerControl> Run<'a, C> {
    fn new(
        plan: &'a Plan,
        cluster: LiveCluster,
        control: &'a C,
        opts: &'a ExecOptions,
        records: Vec<Record>,
        digest: &str,
    ) -> Result<Run<'a, C>, ExecError> {
        let starts = attempt_starts(&records, digest, opts)?;
        let last_start = starts.last().copied();
        let attempt_records: Vec<Record> = last_start.map_or(Vec::new(), |i| records[i..].to_vec());
        let finished = attempt_records.iter().rev().find_map(|r| match r {
            Record::Finish { action, .. } => Some(action.clone()),
            _ => None,
        });
        let already_done = matches!(finished, Some(Action::Done(_)));
        let installed = Installed::from_records(&records);
        let mut cfg = ProcedureConfig::from_plan(plan);
        let resume = last_start.is_some() && finished.is_none();
        let attempt = starts.len() as u32 + u32::from(!resume);
        let replay = if resume {
            // The unfinished attempt: same starting point as it had.
            if let Some(Record::Begin {
                already_upgraded, ..
            }) = attempt_records.first()
            {
                cfg.already_upgraded = already_upgraded.clone();
            }
            attempt_records[1..].to_vec()
        } else {
            cfg.already_upgraded = installed.upgraded.clone();
            Vec::new()
        };
        let clock = Clock::start(last_recorded_ms(&records));
        let mut journal = JournalRecorder::open(opts)?;
        if !resume && !already_done {
            journal.log(Record::Begin {
                attempt,
                plan_sha256: digest.to_string(),
                rehearse: env!("CARGO_PKG_VERSION").to_string(),
                at_ms: clock.now_ms(),
                already_upgraded: cfg.already_upgraded.clone(),
                control: plan.execute.as_ref().map(|x| x.control),
            })?;
        } else if resume {
            journal.log(Record::Resumed {
                at_ms: clock.now_ms(),
            })?;
        }
        announce(resume, attempt, opts, &cfg);
        Ok(Run {
            driver: LiveDriver::new(plan, cluster, control, opts, installed, &cfg, clock),
            journal,
            procedure: Procedure::new(cfg),
            replay,
            already_done,
        })
    }

    /// Feeds the unfinished attempt's records back into the procedure; returns the action
    /// that was in flight when rehearse stopped (to be finished, idempotently) and the result
    /// the next observation must carry.
    fn replay(&mut self) -> Result<(Option<Action>, ActionResult), ExecError> {
        let records = std::mem::take(&mut self.replay);
        let mut pending: Option<Observation> = None;
        let mut in_flight: Option<Action> = None;
        let mut result = ActionResult::None;
        for r in records {
            match r {
                Record::Observation { obs } => pending = Some(*obs),
                Record::ActionBegin { action, .. } => {
                    let obs = pending.take().ok_or_else(|| {
                        ExecError::Input(
                            "journal: an action without the observation it came from".into(),
                        )
                    })?;
                    let again = self.procedure.next(&obs);
                    if again != action {
                        return Err(ExecError::Input(format!(
                            "journal {}: replay diverged (journal {action:?}, now {again:?}); was it written by another rehearse version? Move it away to start afresh",
                            self.driver.opts.journal.display()
                        )));
                    }
                    in_flight = (!matches!(action, Action::Observe { .. })).then_some(action);
                    result = ActionResult::None;
                }
                Record::ActionEnd { result: r, .. } => {
                    in_flight = None;
                    result = r;
                }
                _ => {}
            }
        }
        Ok((in_flight, result))
    }

    /// Finishes the action a previous attempt left in flight (every action is idempotent),
    /// journaling its end as the loop would have.
    async fn finish_in_flight(&mut self, a: &Action) -> Result<ActionResult, ExecError> {
        out!("finishing the action that was in flight: {a}");
        let p = &self.procedure;
        let ctx = StepCtx {
            step: 0,
            action: a,
            batch: p.step_servers(),
            upgraded: p.upgraded(),
            rolling_back: p.is_rolling_back(),
        };
        self.journal.expect(a, p.is_rolling_back());
        let result = self.driver.carry_out(&ctx, a).await;
        self.journal.acted(self.driver.clock.now_ms(), &result)?;
        Ok(result)
    }

    async fn go(&mut self) -> Result<(ExecOutcome, ExecStats), ExecError> {
        let flag = self.driver.interrupted.clone();
        // Aborted when this run ends (or is dropped by a program that embeds rehearse).
        let _ctrl_c = AbortOnDrop(tokio::spawn(async move {
            if let Some(sig) = crate::live::signal::interrupted().await {
                eprintln!("{sig}: finishing the action in flight, then halting (a rerun resumes)");
                flag.store(true, Ordering::SeqCst);
            }
        }));
        self.driver.probe = self.driver.start_probe();
        let (in_flight, mut result) = self.replay()?;
        if let Some(a) = in_flight {
            result = self.finish_in_flight(&a).await.map_err(stopped)?;
        }
        let ended = driver::run(
            &mut self.driver,
            &mut self.procedure,
            &mut self.journal,
            0,
            result,
        )
        .await;
        let outcome = match ended {
            Ok(Action::Done(s)) => ExecOutcome::Done(s),
            Ok(Action::Halt(h)) => ExecOutcome::Halted(h),
            Ok(other) => ExecOutcome::Halted(HaltReason::ActionFailed {
                action: other.to_string(),
                error: "the procedure ended without a final action".into(),
            }),
            Err(LoopError::Driver(LiveStop::Interrupted)) => {
                let at_ms = self.driver.clock.now_ms();
                self.journal
                    .log(Record::Interrupted { at_ms })
                    .map_err(stopped)?;
                ExecOutcome::Interrupted
            }
            Err(LoopError::Record(e)) => return Err(stopped(e)),
        };
        let stats = self.driver.stats().await;
        Ok((outcome, stats))
    }
}

impl<'a, C: ServerControl> LiveDriver<'a, C> {
    /// A driver for one attempt, with the drain deadlines of `cfg` and no snapshot or probe yet.
    fn new(
        plan: &'a Plan,
        cluster: LiveCluster,
        control: &'a C,
        opts: &'a ExecOptions,
        installed: Installed,
        cfg: &ProcedureConfig,
        clock: Clock,
    ) -> LiveDriver<'a, C> {
        LiveDriver {
            plan,
            cluster,
            control,
            opts,
            installed,
            snapshots: Vec::new(),
            probe: None,
            interrupted: Arc::new(AtomicBool::new(false)),
            drain_deadline_ms: cfg.drain_deadline_ms.unwrap_or(0),
            client_drain_deadline_ms: cfg
                .client_batches
                .as_ref()
                .and_then(|c| c.drain_deadline_ms)
                .unwrap_or(0),
            clock,
        }
    }

    fn elapsed_s(&self) -> f64 {
        self.clock.elapsed_ms() as f64 / 1000.0
    }

    /// This attempt's wall time and, when the probe ran, its verified summary.
    async fn stats(&mut self) -> ExecStats {
        let mut stats = ExecStats {
            total_ms: self.clock.elapsed_ms(),
            ..ExecStats::default()
        };
        if let Some(p) = self.probe.take() {
            let (run, attempts) = p.stop();
            let via: Vec<_> = self
                .cluster
                .servers
                .iter()
                .map(|(_, c)| c.clone())
                .collect();
            let t0 = Instant::now();
            loop {
                match probe::verify(&via, &run, &attempts).await {
                    Ok(r) => {
                        stats.probe = Some(r);
                        break;
                    }
                    Err(e) if t0.elapsed() >= PROBE_VERIFY_WAIT => {
                        stats.probe_unverified = Some(format!(
                            "{} attempted, {} acknowledged, none read back: {e} (read {}/{run}/ once the cluster answers)",
                            attempts.len(),
                            attempts.iter().filter(|a| a.ok).count(),
                            probe::PREFIX
                        ));
                        break;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
        }
        stats
    }

    fn start_probe(&self) -> Option<Probe> {
        let wanted = self.plan.execute.as_ref().is_some_and(|x| x.probe);
        if !wanted || self.cluster.product != Product::Consul {
            return None;
        }
        let servers = self
            .cluster
            .servers
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        Some(Probe::start(
            servers,
            100,
            &format!("execute-{}", wall_ms()),
        ))
    }

    fn side(&self, server: &str) -> Side {
        self.installed
            .side
            .get(server)
            .copied()
            .unwrap_or(Side::Current)
    }

    async fn transfer(&self, from: &str) -> Result<ActionResult, ActionError> {
        let view = self.cluster.observe().await;
        if view.leader.as_deref() != Some(from) {
            return Ok(ActionResult::Ok);
        }
        self.cluster
            .transfer_leadership(from)
            .await
            .map(|_| ActionResult::Ok)
            .map_err(ActionError::Cluster)
    }

    async fn save_snapshot(&mut self) -> Result<ActionResult, ActionError> {
        let (info, path) = self
            .cluster
            .save_snapshot(&self.opts.snapshot_dir)
            .await
            .map_err(ActionError::Cluster)?;
        out!(
            "    snapshot at index {} saved to {}",
            info.index,
            path.display()
        );
        self.snapshots.push((info.clone(), path));
        Ok(ActionResult::Snapshot(info))
    }

    async fn upgrade_clients(&self) -> Result<ActionResult, ActionError> {
        match self.control.upgrade_clients().await? {
            Some(note) => out!("    {note}"),
            None => out!(
                "    clients: no execute.command.upgrade_clients template; upgrade the clients now that every server runs the target"
            ),
        }
        Ok(ActionResult::Ok)
    }

    /// A client-phase action (`[upgrade.clients]`): the drain and the eligibility through the
    /// API, as for servers that are clients; stop, install and start through the plan's
    /// per-client templates.
    async fn client_action(&self, a: &Action) -> Result<ActionResult, ActionError> {
        let op = match a {
            Action::DrainClient { client } => {
                return self
                    .cluster
                    .drain(client, self.client_drain_deadline_ms)
                    .await
                    .map(|_| ActionResult::Ok)
                    .map_err(ActionError::Cluster);
            }
            Action::MarkEligible { client } => {
                return self
                    .cluster
                    .mark_eligible(client)
                    .await
                    .map(|_| ActionResult::Ok)
                    .map_err(ActionError::Cluster);
            }
            Action::StopClient { client } => (ClientOp::Stop, client),
            Action::InstallClient { client, .. } => (ClientOp::Install, client),
            Action::StartClient { client } => (ClientOp::Start, client),
            _ => return Ok(ActionResult::None),
        };
        self.control
            .client(op.0, op.1)
            .await
            .map(|_| ActionResult::Ok)
            .map_err(ActionError::from)
    }

    fn snapshot_path(&self, s: &SnapshotInfo) -> PathBuf {
        self.snapshots
            .iter()
            .find(|(i, _)| i == s)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| snapshot_file(&self.opts.snapshot_dir, s.index))
    }
}

impl<C: ServerControl> Driver for LiveDriver<'_, C> {
    type Error = LiveStop;

    async fn observe(
        &mut self,
        _ctx: &StepCtx<'_>,
        reads: Reads,
        result: ActionResult,
    ) -> Result<Observation, LiveStop> {
        if self.interrupted.load(Ordering::SeqCst) {
            return Err(LiveStop::Interrupted);
        }
        if !reads.cluster {
            let names: Vec<SharedStr> = self
                .plan
                .cluster
                .servers
                .iter()
                .map(|s| SharedStr::from(&s.name))
                .collect();
            let mut view = ClusterView::not_read(&names, self.cluster.product == Product::Nomad);
            view.write_accepted = self.probe.as_ref().and_then(Probe::take_accepted);
            return Ok(Observation {
                now_ms: self.clock.now_ms(),
                result,
                view,
            });
        }
        let deadline = self.cluster.observe_deadline();
        let mut view = self.cluster.observe_until(deadline).await;
        let clients: Vec<String> = self
            .plan
            .cluster
            .servers
            .iter()
            .filter(|s| s.client)
            .map(|s| s.name.clone())
            .collect();
        self.cluster
            .read_clients(&mut view, reads, &clients, deadline)
            .await;
        self.cluster.read_workload(&mut view, reads, deadline).await;
        view.write_accepted = self.probe.as_ref().and_then(Probe::take_accepted);
        Ok(Observation {
            now_ms: self.clock.now_ms(),
            result,
            view,
        })
    }

    async fn act(&mut self, ctx: &StepCtx<'_>, a: &Action) -> Result<ActionResult, LiveStop> {
        Ok(self.carry_out(ctx, a).await)
    }

    async fn wait(&mut self, _ctx: &StepCtx<'_>, wait_ms: u64) -> Result<(), LiveStop> {
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

impl<C: ServerControl> LiveDriver<'_, C> {
    /// Carries out one action; a failure is the procedure's to judge (`ActionResult::Failed`).
    async fn carry_out(&mut self, ctx: &StepCtx<'_>, a: &Action) -> ActionResult {
        out!("[{:>6.1}s] {a}", self.elapsed_s());
        let r: Result<ActionResult, ActionError> = match a {
            Action::SaveSnapshot => self.save_snapshot().await,
            Action::Drain { server } => self
                .cluster
                .drain(server, self.drain_deadline_ms)
                .await
                .map(|_| ActionResult::Ok)
                .map_err(ActionError::Cluster),
            Action::Stop { server } => {
                let side = self.side(server);
                self.control
                    .stop(server, side)
                    .await
                    .map(|_| ActionResult::Ok)
                    .map_err(ActionError::from)
            }
            Action::ReplaceBinary { server, .. } => {
                let side = install_side(ctx.rolling_back);
                let r = self.control.install(server, side).await;
                if r.is_ok() {
                    self.installed.side.insert(server.clone(), side);
                }
                r.map(|_| ActionResult::Ok).map_err(ActionError::from)
            }
            Action::Start { server } => {
                let side = self.side(server);
                self.control
                    .start(server, side)
                    .await
                    .map(|_| ActionResult::Ok)
                    .map_err(ActionError::from)
            }
            Action::TransferLeadership { from } => self.transfer(from).await,
            Action::RestoreSnapshot { snapshot } => {
                let path = self.snapshot_path(snapshot);
                self.cluster
                    .restore_snapshot(&path)
                    .await
                    .map(|_| ActionResult::Ok)
                    .map_err(ActionError::Cluster)
            }
            Action::UpgradeClients { .. } => self.upgrade_clients().await,
            Action::DrainClient { .. }
            | Action::StopClient { .. }
            | Action::InstallClient { .. }
            | Action::StartClient { .. }
            | Action::MarkEligible { .. } => self.client_action(a).await,
            Action::Observe { .. } | Action::Done(_) | Action::Halt(_) => Ok(ActionResult::None),
        };
        r.unwrap_or_else(|e| {
            out!("    failed: {e}");
            ActionResult::Failed(e.to_string())
        })
    }
}

/// Where each attempt in the journal begins; refuses a journal of another plan.
fn attempt_starts(
    records: &[Record],
    digest: &str,
    opts: &ExecOptions,
) -> Result<Vec<usize>, ExecError> {
    let starts: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Record::Begin { .. }))
        .map(|(i, _)| i)
        .collect();
    if let Some(Record::Begin { plan_sha256, .. }) = starts.last().map(|&i| &records[i])
        && plan_sha256 != digest
    {
        return Err(ExecError::Input(format!(
            "journal {} belongs to another plan (the plan file changed since it was written); move it away to start afresh",
            opts.journal.display()
        )));
    }
    Ok(starts)
}

/// Says which attempt this is and what it starts from.
fn announce(resume: bool, attempt: u32, opts: &ExecOptions, cfg: &ProcedureConfig) {
    if resume {
        out!(
            "resuming attempt {} from journal {}",
            attempt,
            opts.journal.display()
        );
    } else if !cfg.already_upgraded.is_empty() {
        out!(
            "attempt {attempt}: already upgraded by an earlier attempt: {}",
            cfg.already_upgraded.join(", ")
        );
    }
}

/// A journal that failed once the run had begun acting: the cluster may have changed, so this
/// is not an input error (exit 2 means nothing changed).
fn stopped(e: ExecError) -> ExecError {
    ExecError::Stopped(format!(
        "{}; the cluster may have changed: make the journal writable and rerun the same command to resume from what it holds",
        e.message()
    ))
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where a snapshot at `index` is saved.
pub fn snapshot_file(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("snapshot-{index}.snap"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehearse_model::api::{
        AgentSelf, Member, RaftConfiguration, RaftServer, RaftState, RaftStats, SerfStatus,
    };
    use rehearse_model::versions::Version;

    fn v187() -> Version {
        "1.8.7".parse().unwrap()
    }

    fn agent(n: &str) -> AgentSelf {
        AgentSelf {
            name: n.into(),
            version: v187(),
            raft: RaftStats {
                state: RaftState::Follower,
                term: 2,
                last_log_index: 10,
                last_log_term: 2,
                commit_index: 10,
                applied_index: 10,
                protocol_version: 3,
                num_peers: 2,
                last_contact_ms: Some(10),
            },
        }
    }

    fn member(n: &str, status: SerfStatus) -> Member {
        Member {
            name: n.into(),
            addr: "127.0.0.1:8301".into(),
            status,
            build: v187(),
            raft_vsn: 3,
            id: n.into(),
            nonvoter: false,
        }
    }

    /// s1..s3 in the plan; `in_raft` in the raft configuration; `answering` answer their own
    /// API; `members` is the serf view.
    fn view(in_raft: &[&str], answering: &[&str], members: &[(&str, SerfStatus)]) -> ClusterView {
        let names: Vec<SharedStr> = ["s1", "s2", "s3"].map(SharedStr::from).to_vec();
        let mut v = ClusterView::not_read(&names, false);
        v.raft = Ok(RaftConfiguration {
            index: 7,
            servers: in_raft
                .iter()
                .map(|n| RaftServer {
                    id: (*n).into(),
                    node: (*n).into(),
                    address: format!("{n}:8300").into(),
                    leader: *n == "s1",
                    voter: true,
                    raft_protocol: 3,
                })
                .collect(),
        });
        v.members = Ok(members.iter().map(|(n, s)| member(n, *s)).collect());
        for (n, a) in &mut v.agents {
            *a = if answering.contains(&&**n) {
                Ok(agent(n))
            } else {
                Err(ApiError::Unreachable {
                    addr: n.clone(),
                    why: "timed out".into(),
                })
            };
        }
        v
    }

    const PLAN: [&str; 3] = ["s1", "s2", "s3"];

    #[test]
    fn a_removed_server_that_answers_or_is_alive_in_serf_is_rejoining() {
        use SerfStatus::*;
        let all_alive = [("s1", Alive), ("s2", Alive), ("s3", Alive)];
        let v = view(&["s1", "s2", "s3"], &PLAN, &all_alive);
        assert_eq!(membership(&PLAN, &v), Membership::Matches);
        // Removed by autopilot, restarted: it answers (serf may still say left).
        let left = [("s1", Alive), ("s2", Alive), ("s3", Left)];
        let v = view(&["s1", "s2"], &PLAN, &left);
        assert_eq!(
            membership(&PLAN, &v),
            Membership::Rejoining(vec!["s3".into()])
        );
        // Restarted, not re-joined: it answers "no leader".
        let mut v = view(&["s1", "s2"], &["s1", "s2"], &left);
        v.agents[2].1 = Err(ApiError::NoLeader { addr: "s3".into() });
        assert_eq!(
            membership(&PLAN, &v),
            Membership::Rejoining(vec!["s3".into()])
        );
        // Alive in serf while its API is not answering yet.
        let v = view(&["s1", "s2"], &["s1", "s2"], &all_alive);
        assert_eq!(
            membership(&PLAN, &v),
            Membership::Rejoining(vec!["s3".into()])
        );
        // Removed and still down: waiting brings nothing back.
        let v = view(&["s1", "s2"], &["s1", "s2"], &left);
        assert_eq!(
            membership(&PLAN, &v),
            Membership::Gone {
                gone: vec!["s3".into()]
            }
        );
        // A server in the cluster but not in the plan is another cluster, answering or not.
        let v = view(&["s1", "s2", "s3", "s4"], &PLAN, &all_alive);
        assert_eq!(
            membership(&PLAN, &v),
            Membership::Extra {
                extra: vec!["s4".into()],
                absent: vec![]
            }
        );
        // An unread raft configuration is the procedure's to judge.
        let mut v = view(&["s1"], &PLAN, &all_alive);
        v.raft = Err(ApiError::NotRead);
        assert_eq!(membership(&PLAN, &v), Membership::Matches);
    }

    #[test]
    fn the_dry_run_names_every_server_whose_api_does_not_answer() {
        use SerfStatus::*;
        let all_alive = [("s1", Alive), ("s2", Alive), ("s3", Alive)];
        let v = view(&["s1", "s2", "s3"], &["s1", "s3"], &all_alive);
        let u = unanswered(&v);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(
            u[0].starts_with("s2: its HTTP API does not answer"),
            "{u:?}"
        );
        assert!(unanswered(&view(&PLAN, &PLAN, &all_alive)).is_empty());
    }
}
