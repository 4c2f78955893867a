//! Risk reports: how exposed each step of an upgrade plan is, computed from fault-free
//! rehearsals on many seeds and from the explorer, rendered as JSON, Markdown and HTML.
//!
//! ```text
//! plan ─▶ assess (N seeds, sampled ground truth) ─▶ per-step numbers, P(quorum loss)
//!      ─▶ explore (every single fault, small seed budget) ─▶ step × fault heatmap, findings
//!      ─▶ lints, known defects, incidents ─▶ findings
//!      ─▶ candidate changes, each re-assessed ─▶ recommendations
//!      ═▶ RiskReport (model.rs) ─▶ render.rs: JSON · Markdown · HTML with SVG charts
//! ```
//!
//! # Failure tolerance and exposure
//!
//! After every action of the procedure the simulator's ground truth is sampled
//! ([`measure`]): *healthy voters* `k` are the voters of the newest Raft configuration that
//! run, are alive in gossip and are caught up (within `max_trailing_logs`); the *failure
//! tolerance* is `f = k − quorum(voters)`. A 3-server cluster with one server down for its
//! upgrade has `k = 2`, quorum 2, so `f = 0`: one more failure loses quorum. The *exposure
//! window* of a step is the time it spends at `f ≤ 0`.
//!
//! # Probability of quorum loss
//!
//! Model: each healthy voter fails independently at a constant rate `λ` (the operator's
//! `--server-failure-rate`, e.g. 2/year), a Poisson process; a server that fails during the
//! upgrade is not back before the window ends. Cut the run into windows `w` in which `k_w` and
//! `f_w` are constant, lasting `T_w`. Quorum is lost in `w` if at least `f_w + 1` of its `k_w`
//! healthy voters fail within it. One server survives `T_w` with probability `e^(−λT_w)`, so
//! with `q_w = 1 − e^(−λT_w)`:
//!
//! ```text
//! p_w = Σ_{j=f_w+1}^{k_w} C(k_w, j) · q_w^j · (1 − q_w)^(k_w − j)
//! ```
//!
//! For `f_w = 0` this is `p_w = 1 − (1 − q_w)^k_w = 1 − e^(−λ·k_w·T_w)`. Windows are
//! disjoint in time, so failures in them are independent, and
//!
//! ```text
//! P = 1 − Π_w (1 − p_w)
//!   = 1 − exp(−λ · Σ_{w: f_w = 0} k_w·T_w) · Π_{w: f_w ≥ 1} (1 − p_w)
//! ```
//!
//! The first factor is the first-order term `P₁ = 1 − e^(−λ·E)` with `E = Σ k_w·T_w` over
//! the zero-tolerance windows, the *exposure* in server·ms; the report shows it as
//! `p_quorum_loss_first_order`. Windows with `f ≥ 1` need two or more failures inside one
//! window: their terms are of order `(λT)²` (about 10⁻¹¹ for a minute at 2/year), included
//! for completeness. `P` is computed per seed and averaged over the seeds. A seed that lost
//! quorum (or an acknowledged write) with no fault injected is a *plan defect*, not a
//! failure-rate risk: it is left out of `P` and counted on its own (`plan_defect_runs`), and
//! it makes the verdict no-go ([`verdict`]). The model leaves out correlated
//! failures (a shared rack, a bad binary on every server): the explorer covers those
//! empirically, and its findings are shown beside `P`.
//!
//! # Write unavailability
//!
//! Per step: the time without a leader (elections, the leader's own step), the writes that
//! failed (refused, or in flight on a deposed leader) and the leader changes: medians over the
//! seeds, as are the durations and the times at tolerance 0 (no mean is set against a median). Transferring leadership before the leader's step replaces an election timeout with
//! a hand-over.
//!
//! # Determinism
//!
//! Same plan, seeds and rate give byte-identical output: runs are collected in seed order,
//! maps are `BTreeMap`s, means and probabilities are rounded to 4 significant digits (so
//! platform `exp`/`ln` differences in the last bit do not show) and there is no timestamp,
//! only the rehearse version.

pub mod advice;
pub mod assess;
pub mod charts;
pub mod findings;
pub mod heatmap;
pub mod live;
pub mod measure;
pub mod model;
pub mod render;
pub mod risk;
pub mod verdict;

use assess::{assess, plan_defect, step_name};
use measure::{Measured, Segment, StepKind, lowest_tolerance};
use model::{
    Assumptions, PlanSummary, RiskReport, RunbookStep, SCHEMA_VERSION, Settings, StepRisk,
    Timeline, TimelineStep, Workload,
};
use risk::FailureRate;

use crate::plan::Plan;
use crate::procedure::{Action, ProcedureConfig};
use crate::rehearsal::Verdict;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The simulator refused the plan's world.
    #[error("simulator: {0}")]
    Sim(String),
    /// A journal's records cannot make a report (bad input).
    #[error("{0}")]
    Journal(String),
    /// A template failed to render (a bug: the templates are compiled in).
    #[error("template {name}: {message}")]
    Template {
        /// Template name.
        name: String,
        /// minijinja's message.
        message: String,
    },
    /// A chart failed to draw.
    #[error("chart {name}: {message}")]
    Chart {
        /// Chart name.
        name: String,
        /// plotters' message.
        message: String,
    },
    /// JSON serialisation failed.
    #[error("json: {0}")]
    Json(String),
    /// A report file could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// How to compute a report.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fault-free seeds (first..first+seeds).
    pub seeds: u64,
    /// First seed.
    pub first_seed: u64,
    /// Seeds per fault schedule in the explorer (0 = no explorer).
    pub explore_seeds: u64,
    /// Worker threads.
    pub jobs: usize,
    /// Per-server failure rate.
    pub failure_rate: FailureRate,
    /// The highest acceptable probability of quorum loss (`--fail-above`): above it the
    /// verdict is no-go.
    pub max_p_quorum_loss: Option<f64>,
}

impl Options {
    /// The defaults of `rehearse report`: 16 seeds, explorer on 1 seed, 2/year.
    pub fn new(jobs: usize) -> Options {
        Options {
            seeds: 16,
            first_seed: 1,
            explore_seeds: 1,
            jobs,
            failure_rate: FailureRate {
                text: "2/year".into(),
                per_year: 2.0,
            },
            max_p_quorum_loss: None,
        }
    }
}

/// Computes the report of `plan`; `plan_file` is the path shown in it and in replay lines.
pub fn build(plan: &Plan, plan_file: &str, opts: &Options) -> Result<RiskReport, ReportError> {
    let seeds = opts.first_seed..opts.first_seed + opts.seeds.max(1);
    let rate = &opts.failure_rate;
    let base = assess(plan, seeds.clone(), opts.jobs, rate)?;
    let first = base
        .runs
        .first()
        .ok_or_else(|| ReportError::Sim("no seed was rehearsed".into()))?;
    let completed = first.outcome.verdict == crate::rehearsal::Verdict::Completed;
    let step_names: Vec<String> = first
        .segments
        .iter()
        .map(|s| step_name(s, completed))
        .collect();
    let explorer = heatmap::explore(
        plan,
        plan_file,
        first,
        &step_names,
        opts.first_seed..opts.first_seed + opts.explore_seeds,
        opts.jobs,
    );
    let (recommendations, not_recommended) = advice::advise(plan, &base, seeds, opts.jobs, rate)?;
    let (typical, timeline, worst_timeline) = timelines(plan, &base.runs);
    let settings = settings_of(opts);
    let mut plan_summary = summary(plan, plan_file);
    plan_summary.sha256 = std::fs::read(plan_file).ok().map(|b| sha256_hex(&b));
    Ok(RiskReport {
        schema_version: SCHEMA_VERSION,
        rehearse_version: env!("CARGO_PKG_VERSION").to_string(),
        verdict: Some(verdict::decide(
            &base.risk,
            &settings,
            opts.max_p_quorum_loss,
        )),
        plan: plan_summary,
        assumptions: Some(assumptions(plan)),
        runbook: runbook(plan, &base.steps, &base.runs, typical),
        settings,
        risk: base.risk.clone(),
        steps: base.steps.clone(),
        explorer,
        findings: findings::findings(plan),
        recommendations,
        not_recommended,
        timeline,
        worst_timeline,
        live: None,
    })
}

/// The typical seed and its timeline, and the worst seed's timeline when it is another seed.
fn timelines<'r>(plan: &Plan, runs: &'r [Measured]) -> (&'r Measured, Timeline, Option<Timeline>) {
    let (typical, worst) = typical_and_worst(runs);
    let timeline = seed_timeline(
        plan,
        typical,
        format!(
            "typical: seed {}, the median of the {} seeds ranked from best to worst",
            typical.outcome.seed,
            runs.len()
        ),
    );
    let worst_timeline = (worst.outcome.seed != typical.outcome.seed).then(|| {
        seed_timeline(
            plan,
            worst,
            format!(
                "worst: seed {}, {}",
                worst.outcome.seed,
                badness_words(worst)
            ),
        )
    });
    (typical, timeline, worst_timeline)
}

/// The settings the report was computed with.
fn settings_of(opts: &Options) -> Settings {
    let rate = &opts.failure_rate;
    Settings {
        seeds: opts.seeds.max(1),
        first_seed: opts.first_seed,
        explore_seeds: opts.explore_seeds,
        server_failure_rate: rate.text.clone(),
        failures_per_server_year: risk::round_sig(rate.per_year, assess::DIGITS),
    }
}

/// sha-256 of `bytes`, lower-case hex (a plan's digest, in reports and journals alike).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How bad a seed went, worst last: a plan defect, then unsafe, then the lowest failure
/// tolerance, the time at tolerance 0, the time without a leader; the seed breaks ties (the
/// lower seed counts as worse, so the choice is stable).
fn badness(m: &Measured) -> (bool, bool, i64, u64, u64, std::cmp::Reverse<u64>) {
    let exposure = m
        .samples
        .windows(2)
        .filter(|w| w[0].tolerance <= 0)
        .map(|w| w[1].t_ms - w[0].t_ms)
        .sum();
    let no_leader = m.samples.last().map_or(0, |s| s.no_leader_ns);
    (
        plan_defect(m),
        matches!(m.outcome.verdict, Verdict::Unsafe { .. }),
        -lowest_tolerance(&m.samples).unwrap_or(0),
        exposure,
        no_leader,
        std::cmp::Reverse(m.outcome.seed),
    )
}

fn badness_words(m: &Measured) -> String {
    let (defect, unsafe_, neg_tol, exposure, no_leader, _) = badness(m);
    let mut w = Vec::new();
    if defect {
        w.push("lost quorum or an acknowledged write with no fault (a plan defect)".to_string());
    }
    if unsafe_ {
        w.push("unsafe".to_string());
    }
    w.push(format!("lowest failure tolerance {}", -neg_tol));
    w.push(format!(
        "{} at tolerance 0 or below",
        render::secs(exposure as f64)
    ));
    w.push(format!(
        "{} without a leader",
        render::secs((no_leader / 1_000_000) as f64)
    ));
    w.join(", ")
}

/// The typical seed (the median when the seeds are ranked by [`badness`]) and the worst.
fn typical_and_worst(runs: &[Measured]) -> (&Measured, &Measured) {
    let mut ranked: Vec<&Measured> = runs.iter().collect();
    ranked.sort_by_key(|m| badness(m));
    let typical = ranked[(ranked.len() - 1) / 2];
    let worst = ranked[ranked.len() - 1];
    (typical, worst)
}

/// One seed's timeline for the charts.
fn seed_timeline(plan: &Plan, m: &Measured, why: String) -> Timeline {
    let completed = m.outcome.verdict == Verdict::Completed;
    Timeline {
        seed: m.outcome.seed,
        why,
        duration_ms: m.outcome.duration_ms,
        servers: plan
            .cluster
            .servers
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        steps: timeline_steps(&m.segments, completed),
        samples: m.samples.clone(),
        reported_tolerance: m.outcome.tolerance.clone(),
        live: false,
        backlog: m.backlog.clone(),
        marks: Vec::new(),
    }
}

/// The timeline's steps: the segments, named as a rehearsal names them.
fn timeline_steps(segments: &[Segment], completed: bool) -> Vec<TimelineStep> {
    segments
        .iter()
        .map(|s| TimelineStep {
            name: step_name(s, completed),
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            leader_step: s.leader_step,
        })
        .collect()
}

/// What the rehearsal models and what it does not, from the plan and the simulator's
/// configuration of it (seed 1: the timers and workload do not depend on the seed).
fn assumptions(plan: &Plan) -> Assumptions {
    let sim = crate::rehearsal::sim_config(plan, 1);
    let m = u64::from(sim.raft_multiplier);
    let modelled = vec![
        "Raft (hashicorp/raft timers: heartbeat, election and lease timeouts with jitter, \
         pre-vote where the version has it, leadership transfer, log compaction and \
         InstallSnapshot)"
            .to_string(),
        "gossip (serf/memberlist probe and suspicion timing: when a stopped server is marked \
         failed)"
            .to_string(),
        "autopilot (health refresh, last-contact and trailing-log checks, failure tolerance, \
         dead-server cleanup, min_quorum, non-voter promotion)"
            .to_string(),
        format!(
            "{} client nodes (heartbeats to the leader, drains of servers that are clients)",
            sim.clients.count
        ),
        "version skew (the version catalog: new log-entry types and snapshot formats an older \
         server cannot read, Raft protocol bounds, known-bad releases)"
            .to_string(),
        "the procedure itself, the same state machine rehearse execute runs against a real \
         cluster, reading the same API answers"
            .to_string(),
    ];
    let calibrated = vec![
        "real Consul 1.8.7 (3 servers, default settings): failover, restart-to-healthy and \
         rolling-restart times, writes lost in the leader's step, autopilot's stale health \
         after a restart (docs/baselines.md; rehearse calibrate, tests/calibration.rs)"
            .to_string(),
        "Nomad timers and behaviour from the hashicorp/nomad, hashicorp/raft, \
         hashicorp/raft-autopilot and hashicorp/memberlist sources and Nomad's upgrade guides \
         (docs/baselines.md): not measured on a real Nomad cluster"
            .to_string(),
    ];
    let not_modelled = vec![
        "correlated failures (a shared rack, a bad binary on every server): the explorer \
         injects them one at a time, P(quorum loss) assumes independent failures"
            .to_string(),
        "disk and CPU limits, real network latency distributions, the jobs' own workload"
            .to_string(),
    ];
    Assumptions {
        modelled,
        calibrated,
        not_modelled,
        workload: Workload {
            writes_per_sec: sim.workload.writes_per_sec,
            initial_state_entries: sim.workload.initial_state_entries,
            clients: sim.clients.count,
            raft_multiplier: sim.raft_multiplier,
            heartbeat_timeout_ms: sim.raft.heartbeat_timeout_ns * m / 1_000_000,
            election_timeout_ms: sim.raft.election_timeout_ns * m / 1_000_000,
            gossip_probe_interval_ms: sim.serf.probe_interval_ns / 1_000_000,
            boot_ms: (sim.boot_ns_min / 1_000_000, sim.boot_ns_max / 1_000_000),
            install_time_ms: plan.upgrade.install_time / 1_000_000,
        },
    }
}

/// The actions of one segment of a run, in words; a run of observations is one "wait".
fn segment_actions(m: &Measured, seg: &Segment) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut after_start = false;
    for rec in m
        .outcome
        .steps
        .iter()
        .filter(|r| r.at_ms >= seg.start_ms && r.at_ms < seg.end_ms.max(seg.start_ms + 1))
    {
        let line = match &rec.action {
            Action::Observe { .. } if after_start => "wait for the gate".to_string(),
            Action::Observe { .. } => "observe".to_string(),
            a => a.to_string(),
        };
        after_start = match &rec.action {
            Action::Start { .. } => true,
            Action::Observe { .. } => after_start,
            _ => false,
        };
        if out.last() != Some(&line) {
            out.push(line);
        }
    }
    out
}

/// The kind of each of the report's steps: every seed's step kinds in order (see
/// `assess::reduce`).
fn step_kinds(runs: &[Measured]) -> Vec<StepKind> {
    let mut k: Vec<StepKind> = runs
        .iter()
        .flat_map(|m| m.segments.iter().map(|s| s.kind))
        .collect();
    k.sort();
    k.dedup();
    k
}

/// The runbook of `plan` over its fault-free seeds alone (no explorer, no recommendations),
/// each step with its kind: what the steps of a live run of the plan are compared with.
pub fn rehearsed_runbook(
    plan: &Plan,
    opts: &Options,
) -> Result<Vec<(StepKind, RunbookStep)>, ReportError> {
    let seeds = opts.first_seed..opts.first_seed + opts.seeds.max(1);
    let base = assess(plan, seeds, opts.jobs, &opts.failure_rate)?;
    let (typical, _) = typical_and_worst(&base.runs);
    let steps = runbook(plan, &base.steps, &base.runs, typical);
    Ok(step_kinds(&base.runs).into_iter().zip(steps).collect())
}

/// The procedure as a runbook: each step, its duration over the seeds, and what aborts it.
fn runbook(
    plan: &Plan,
    steps: &[StepRisk],
    runs: &[Measured],
    typical: &Measured,
) -> Vec<RunbookStep> {
    let cfg = ProcedureConfig::from_plan(plan);
    let kinds = step_kinds(runs);
    steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let kind = kinds.get(i).copied();
            // The typical seed's step of this kind, or the first seed's that has one.
            let (m, seg) = std::iter::once(typical)
                .chain(runs)
                .find_map(|m| {
                    m.segments
                        .iter()
                        .find(|s| Some(s.kind) == kind)
                        .map(|s| (m, s))
                })
                .unzip();
            let completed = m.is_some_and(|m| m.outcome.verdict == Verdict::Completed);
            let name = seg.map_or_else(|| st.name.clone(), |s| step_name(s, completed));
            let actions = m
                .zip(seg)
                .map_or_else(Vec::new, |(m, seg)| segment_actions(m, seg));
            let servers = seg.map_or(&st.servers, |s| &s.servers);
            let abort = match kind {
                Some(StepKind::Preflight) => preflight_aborts(&cfg),
                Some(StepKind::Server(_)) | None => server_aborts(&cfg, servers, &actions),
                Some(StepKind::Finish) => finish_aborts(plan, &cfg),
            };
            RunbookStep {
                name,
                seed: m.map_or(0, |m| m.outcome.seed),
                actions,
                seeds: st.seeds,
                duration_ms_min: st.duration_ms_min,
                duration_ms_median: st.duration_ms,
                duration_ms_max: st.duration_ms_max,
                abort,
            }
        })
        .collect()
}

/// When the preflight halts.
fn preflight_aborts(cfg: &ProcedureConfig) -> Vec<String> {
    let min_ft = if cfg.allow_zero_tolerance { 0 } else { 1 };
    let mut abort = vec![format!(
        "halt before touching any server unless there is a leader, every \
         server is alive in gossip and a voter, and autopilot reports the \
         cluster healthy with failure tolerance >= {min_ft}"
    )];
    if cfg.snapshot_first {
        abort.push("halt if the snapshot cannot be saved and verified".into());
    }
    abort
}

/// When a server step halts: the quorum check, the drain deadline and the gate.
fn server_aborts(cfg: &ProcedureConfig, servers: &[String], actions: &[String]) -> Vec<String> {
    let g = &cfg.gate;
    let s = |ms: u64| render::secs(ms as f64);
    let who = servers.join("+");
    let mut abort = Vec::new();
    if cfg.check_failure_tolerance {
        abort.push(format!(
            "do not stop {who} unless the other voters form a healthy quorum \
             (alive, caught up within max_trailing_logs): halt instead"
        ));
    }
    if let Some(d) = cfg.drain_deadline_ms
        && actions.iter().any(|a| a.starts_with("drain"))
    {
        abort.push(format!("halt if the drain is not done within {}", s(d)));
    }
    let mut gate = vec![format!("{who} answers on {}", cfg.target_version)];
    if g.require_caught_up {
        gate.push("its log reaches the leader's index from before the stop".into());
    }
    if g.require_voter {
        gate.push("every server alive in gossip and a voter".into());
    }
    if g.use_autopilot {
        gate.push("autopilot reports every server healthy".into());
    }
    if g.require_fresh_health {
        gate.push("health counted only after its own restart".into());
    }
    abort.push(format!(
        "gate after the start: {}, held for {}; halt if not met within {} \
         (polled every {})",
        gate.join(", "),
        s(g.stable_for_ms),
        s(g.timeout_ms),
        s(g.poll_ms)
    ));
    abort
}

/// When the finish halts, and the rollback policy.
fn finish_aborts(plan: &Plan, cfg: &ProcedureConfig) -> Vec<String> {
    let mut out = vec![
        format!(
            "halt unless every server runs {} and the cluster is healthy",
            cfg.target_version
        ),
        format!(
            "on a halt: rollback policy \"{}\"",
            heatmap::serde_name(&plan.upgrade.rollback)
        ),
    ];
    if let Some(c) = &cfg.client_batches {
        out.push(format!(
            "clients {} at a time: halt, without a rollback, when a drain outlasts its deadline, a client is not back ready on the target within the gate's timeout, or the jobs are not back at their counts",
            c.max_parallel
        ));
    }
    out
}

fn summary(plan: &Plan, file: &str) -> PlanSummary {
    let c = &plan.cluster;
    let u = &plan.upgrade;
    PlanSummary {
        file: file.to_string(),
        sha256: None,
        product: c.product.to_string(),
        from_version: c.version.to_string(),
        to_version: u.target.to_string(),
        servers: c.servers.iter().map(|s| s.name.clone()).collect(),
        transfer_leadership: u.transfer_leadership,
        order: heatmap::serde_name(&u.order),
        stable_for_ms: u.gate.stable_for / 1_000_000,
        install_time_ms: u.install_time / 1_000_000,
        cleanup_dead_servers: c.autopilot.cleanup_dead_servers,
        min_quorum: c.autopilot.min_quorum,
    }
}
