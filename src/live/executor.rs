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
use super::control::{CONTAINER_IN_PROCESS, NodeControl, ServerControl, Side};
use super::journal::{Installed, Journal, Record};
use super::probe::{self, Probe, ProbeReport};
use crate::plan::{ControlKind, Plan};
use crate::procedure::{
    Action, ActionResult, ClusterView, HaltReason, Observation, Procedure, ProcedureConfig, Summary,
};
use rehearse_sim::api::{ApiError, SnapshotInfo};
use rehearse_sim::versions::Product;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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
    /// Probe summary, when the probe ran.
    pub probe: Option<ProbeReport>,
}

/// Bad input: nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ExecError(pub String);

impl From<ClientError> for ExecError {
    fn from(e: ClientError) -> Self {
        ExecError(e.0)
    }
}

fn now_ms() -> u64 {
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
                    ExecError(format!(
                        "cluster.servers[{i}] ({}): no address in the plan and not in the raft configuration read from {}",
                        s.name, opts.addr
                    ))
                })?,
        };
        let c = super::client::Client::new(&addr, &opts.conn)
            .map_err(|e| ExecError(format!("cluster.servers[{i}].address: {}", e.0)))?;
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
        .map_err(|e| ExecError(input_error_text(&e)))?;
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

/// Reads the cluster once and refuses to go on (input error) when it cannot be read or does
/// not match the plan. Returns the view.
pub async fn check_cluster(plan: &Plan, cluster: &LiveCluster) -> Result<ClusterView, ExecError> {
    let view = cluster.observe().await;
    let forbidden = view
        .agents
        .iter()
        .filter_map(|(_, a)| a.as_ref().err())
        .chain(view.raft.as_ref().err())
        .find(|e| matches!(e, ApiError::Forbidden { .. }));
    if let Some(e) = forbidden {
        return Err(ExecError(input_error_text(e)));
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
        return Err(ExecError(format!(
            "cannot reach any server of the plan ({}); check the addresses and that the cluster runs",
            why.join("; ")
        )));
    }
    if let Ok(r) = &view.raft {
        let live: Vec<&str> = r
            .servers
            .iter()
            .map(|s| crate::procedure::base(&s.node))
            .collect();
        let planned: Vec<&str> = plan
            .cluster
            .servers
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let extra: Vec<&&str> = live.iter().filter(|n| !planned.contains(n)).collect();
        let absent: Vec<&&str> = planned.iter().filter(|n| !live.contains(n)).collect();
        if !extra.is_empty() || !absent.is_empty() {
            return Err(ExecError(format!(
                "cluster.servers does not match the live raft configuration: in the cluster but not the plan {extra:?}, in the plan but not the cluster {absent:?} (rehearse import writes a matching plan)"
            )));
        }
    }
    let allowed = [plan.cluster.version, plan.upgrade.target];
    for (n, a) in &view.agents {
        if let Ok(a) = a
            && !allowed.contains(&a.version)
        {
            return Err(ExecError(format!(
                "{n} runs {}, but the plan says cluster.version = {} and upgrade.target = {}",
                a.version, plan.cluster.version, plan.upgrade.target
            )));
        }
    }
    Ok(view)
}

/// sha-256 of the plan text, hex: a journal belongs to one plan.
pub fn plan_digest(text: &str) -> String {
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
        return Err(ExecError(CONTAINER_IN_PROCESS.into()));
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
    let first_view = check_cluster(plan, &cluster).await?;
    let cfg = ProcedureConfig::from_plan(plan);
    if !opts.apply {
        return Ok((dry_run(plan, &cfg, &first_view), ExecStats::default()));
    }
    let control = control.ok_or_else(|| match plan.execute.as_ref().map(|x| x.control) {
        Some(ControlKind::Container) => ExecError(CONTAINER_IN_PROCESS.into()),
        _ => ExecError("the plan has no [execute] section: rehearse does not know how to stop and start the servers (see plans/README or `rehearse execute --help`)".into()),
    })?;
    let records = Journal::read(&opts.journal).map_err(|e| ExecError(e.to_string()))?;
    let digest = plan_digest(plan_text);
    let mut run = Run::new(plan, cluster, control, opts, records, &digest)?;
    if run.already_done {
        return Ok((ExecOutcome::AlreadyDone, ExecStats::default()));
    }
    run.go().await
}

fn dry_run(plan: &Plan, cfg: &ProcedureConfig, view: &ClusterView) -> ExecOutcome {
    let unmet = Procedure::new(cfg.clone()).preflight_unmet(view);
    out!("dry run (nothing will be changed; add --apply to act)");
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
    if unmet.is_empty() {
        out!("preflight: ok");
    } else {
        out!("preflight: NOT ready: {}", unmet.join("; "));
    }
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
    ExecOutcome::DryRun { unmet }
}

/// One attempt of an applied run.
struct Run<'a, C: ServerControl> {
    plan: &'a Plan,
    cluster: LiveCluster,
    control: &'a C,
    opts: &'a ExecOptions,
    journal: Journal,
    procedure: Procedure,
    installed: Installed,
    /// Replay position: records of the unfinished attempt still to be matched.
    replay: Vec<Record>,
    already_done: bool,
    snapshots: Vec<(SnapshotInfo, PathBuf)>,
    started_ms: u64,
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
        let starts: Vec<usize> = records
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r, Record::Begin { .. }))
            .map(|(i, _)| i)
            .collect();
        let last_start = starts.last().copied();
        if let Some(Record::Begin { plan_sha256, .. }) = last_start.map(|i| &records[i])
            && plan_sha256 != digest
        {
            return Err(ExecError(format!(
                "journal {} belongs to another plan (the plan file changed since it was written); move it away to start afresh",
                opts.journal.display()
            )));
        }
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
        let mut journal = Journal::open(&opts.journal).map_err(|e| ExecError(e.to_string()))?;
        if !resume && !already_done {
            journal
                .write(&Record::Begin {
                    attempt,
                    plan_sha256: digest.to_string(),
                    rehearse: env!("CARGO_PKG_VERSION").to_string(),
                    at_ms: now_ms(),
                    already_upgraded: cfg.already_upgraded.clone(),
                })
                .map_err(|e| ExecError(e.to_string()))?;
        }
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
        Ok(Run {
            plan,
            cluster,
            control,
            opts,
            journal,
            procedure: Procedure::new(cfg),
            installed,
            replay,
            already_done,
            snapshots: Vec::new(),
            started_ms: now_ms(),
        })
    }

    fn log(&mut self, r: Record) -> Result<(), ExecError> {
        self.journal.write(&r).map_err(|e| ExecError(e.to_string()))
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
                        ExecError("journal: an action without the observation it came from".into())
                    })?;
                    let again = self.procedure.next(&obs);
                    if again != action {
                        return Err(ExecError(format!(
                            "journal {}: replay diverged (journal {action:?}, now {again:?}); was it written by another rehearse version? Move it away to start afresh",
                            self.opts.journal.display()
                        )));
                    }
                    if let Action::SaveSnapshot = action {
                        // The file is re-read from the snapshot dir when needed.
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

    async fn go(&mut self) -> Result<(ExecOutcome, ExecStats), ExecError> {
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = interrupted.clone();
        // Aborted when this run ends (or is dropped by a program that embeds rehearse).
        let _ctrl_c = AbortOnDrop(tokio::spawn(async move {
            if let Some(sig) = crate::live::signal::interrupted().await {
                eprintln!("{sig}: finishing the action in flight, then halting (a rerun resumes)");
                flag.store(true, Ordering::SeqCst);
            }
        }));
        let probe = self.start_probe();
        let (in_flight, mut result) = self.replay()?;
        if let Some(a) = in_flight {
            out!("finishing the action that was in flight: {}", describe(&a));
            result = self.act(&a).await?;
        }
        let outcome = loop {
            if interrupted.load(Ordering::SeqCst) {
                self.log(Record::Interrupted { at_ms: now_ms() })?;
                break ExecOutcome::Interrupted;
            }
            let obs = self.observe(result, probe.as_ref()).await;
            self.log(Record::Observation {
                obs: Box::new(obs.clone()),
            })?;
            let action = self.procedure.next(&obs);
            self.log(Record::ActionBegin {
                at_ms: now_ms(),
                action: action.clone(),
            })?;
            match &action {
                Action::Observe { wait_ms } => {
                    tokio::time::sleep(Duration::from_millis(*wait_ms)).await;
                    result = ActionResult::None;
                }
                Action::Done(s) => {
                    self.finish(&action)?;
                    break ExecOutcome::Done(s.clone());
                }
                Action::Halt(h) => {
                    self.finish(&action)?;
                    break ExecOutcome::Halted(h.clone());
                }
                other => {
                    out!("[{:>6.1}s] {}", self.elapsed_s(), describe(other));
                    result = self.act(other).await?;
                }
            }
        };
        let mut stats = ExecStats {
            total_ms: now_ms().saturating_sub(self.started_ms),
            probe: None,
        };
        if let Some(p) = probe {
            let (run, attempts) = p.stop();
            let via: Vec<_> = self
                .cluster
                .servers
                .iter()
                .map(|(_, c)| c.clone())
                .collect();
            stats.probe = probe::verify(&via, &run, &attempts).await.ok();
        }
        Ok((outcome, stats))
    }

    fn elapsed_s(&self) -> f64 {
        now_ms().saturating_sub(self.started_ms) as f64 / 1000.0
    }

    fn finish(&mut self, action: &Action) -> Result<(), ExecError> {
        let notes = self.procedure.notes().to_vec();
        self.log(Record::Finish {
            at_ms: now_ms(),
            action: action.clone(),
            notes,
        })
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
        Some(Probe::start(servers, 100, &format!("execute-{}", now_ms())))
    }

    async fn observe(&self, result: ActionResult, probe: Option<&Probe>) -> Observation {
        let mut view = self.cluster.observe().await;
        if self.cluster.product == Product::Nomad {
            let clients: Vec<String> = self
                .plan
                .cluster
                .servers
                .iter()
                .filter(|s| s.client)
                .map(|s| s.name.clone())
                .collect();
            if !clients.is_empty() {
                view.drained = self.cluster.drained(&clients).await;
            }
        }
        view.write_accepted = probe.and_then(Probe::take_accepted);
        Observation {
            now_ms: now_ms(),
            result,
            view,
        }
    }

    fn side(&self, server: &str) -> Side {
        self.installed
            .side
            .get(server)
            .copied()
            .unwrap_or(Side::Current)
    }

    /// Carries out one action, journaled before and after.
    async fn act(&mut self, a: &Action) -> Result<ActionResult, ExecError> {
        let mut installed = None;
        let r: Result<ActionResult, String> = match a {
            Action::SaveSnapshot => self
                .cluster
                .save_snapshot(&self.opts.snapshot_dir)
                .await
                .map(|(info, path)| {
                    out!(
                        "    snapshot at index {} saved to {}",
                        info.index,
                        path.display()
                    );
                    self.snapshots.push((info.clone(), path));
                    ActionResult::Snapshot(info)
                }),
            Action::Drain { server } => {
                let deadline = self.procedure.config().drain_deadline_ms.unwrap_or(0);
                self.cluster
                    .drain(server, deadline)
                    .await
                    .map(|_| ActionResult::Ok)
            }
            Action::Stop { server } => {
                let side = self.side(server);
                self.control
                    .stop(server, side)
                    .await
                    .map(|_| ActionResult::Ok)
            }
            Action::ReplaceBinary { server, .. } => {
                let side = if self.procedure.is_rolling_back() {
                    Side::Current
                } else {
                    Side::Target
                };
                let r = self.control.install(server, side).await;
                if r.is_ok() {
                    self.installed.side.insert(server.clone(), side);
                    installed = Some((server.clone(), side));
                }
                r.map(|_| ActionResult::Ok)
            }
            Action::Start { server } => {
                let side = self.side(server);
                self.control
                    .start(server, side)
                    .await
                    .map(|_| ActionResult::Ok)
            }
            Action::TransferLeadership { from } => {
                let view = self.cluster.observe().await;
                if view.leader.as_deref() != Some(from.as_str()) {
                    Ok(ActionResult::Ok)
                } else {
                    self.cluster
                        .transfer_leadership(from)
                        .await
                        .map(|_| ActionResult::Ok)
                }
            }
            Action::RestoreSnapshot { snapshot } => {
                let path = self.snapshot_path(snapshot);
                self.cluster
                    .restore_snapshot(&path)
                    .await
                    .map(|_| ActionResult::Ok)
            }
            Action::UpgradeClients { .. } => match self.control.upgrade_clients().await {
                Ok(Some(note)) => {
                    out!("    {note}");
                    Ok(ActionResult::Ok)
                }
                Ok(None) => {
                    out!(
                        "    clients: no execute.command.upgrade_clients template; upgrade the clients now that every server runs the target"
                    );
                    Ok(ActionResult::Ok)
                }
                Err(e) => Err(e),
            },
            Action::Observe { .. } | Action::Done(_) | Action::Halt(_) => Ok(ActionResult::None),
        };
        let result = r.unwrap_or_else(|e| {
            out!("    failed: {e}");
            ActionResult::Failed(e)
        });
        self.log(Record::ActionEnd {
            at_ms: now_ms(),
            result: result.clone(),
            installed,
        })?;
        Ok(result)
    }

    fn snapshot_path(&self, s: &SnapshotInfo) -> PathBuf {
        self.snapshots
            .iter()
            .find(|(i, _)| i == s)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| snapshot_file(&self.opts.snapshot_dir, s.index))
    }
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

/// One line for an action.
pub fn describe(a: &Action) -> String {
    match a {
        Action::SaveSnapshot => "save snapshot".into(),
        Action::Drain { server } => format!("drain the client on {server}"),
        Action::Stop { server } => format!("stop {server}"),
        Action::ReplaceBinary { server, version } => format!("install {version} on {server}"),
        Action::Start { server } => format!("start {server}"),
        Action::TransferLeadership { from } => format!("transfer leadership away from {from}"),
        Action::RestoreSnapshot { snapshot } => {
            format!("restore the snapshot at index {}", snapshot.index)
        }
        Action::UpgradeClients { version } => format!("upgrade clients to {version}"),
        Action::Observe { wait_ms } => format!("observe in {wait_ms} ms"),
        Action::Done(_) => "done".into(),
        Action::Halt(h) => format!("halt: {h}"),
    }
}
