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
//! for completeness. A seed that lost quorum with no fault injected counts as `P = 1`.
//! `P` is computed per seed and averaged over the seeds. The model leaves out correlated
//! failures (a shared rack, a bad binary on every server): the explorer covers those
//! empirically, and its findings are shown beside `P`.
//!
//! # Write unavailability
//!
//! Per step: the time without a leader (elections, the leader's own step), the writes that
//! failed (refused, or in flight on a deposed leader) and the leader changes, averaged over the
//! seeds. Transferring leadership before the leader's step replaces an election timeout with
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

use assess::{assess, step_name};
use model::{PlanSummary, RiskReport, SCHEMA_VERSION, Settings, Timeline, TimelineStep};
use risk::FailureRate;

use crate::plan::Plan;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The simulator refused the plan's world.
    #[error("simulator: {0}")]
    Sim(String),
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
    let timeline = Timeline {
        seed: first.outcome.seed,
        duration_ms: first.outcome.duration_ms,
        servers: plan
            .cluster
            .servers
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        steps: first
            .segments
            .iter()
            .zip(&step_names)
            .map(|(s, name)| TimelineStep {
                name: name.clone(),
                start_ms: s.start_ms,
                end_ms: s.end_ms,
                leader_step: s.leader_step,
            })
            .collect(),
        samples: first.samples.clone(),
        reported_tolerance: first.outcome.tolerance.clone(),
        live: false,
    };
    Ok(RiskReport {
        schema_version: SCHEMA_VERSION,
        rehearse_version: env!("CARGO_PKG_VERSION").to_string(),
        plan: summary(plan, plan_file),
        settings: Settings {
            seeds: opts.seeds.max(1),
            first_seed: opts.first_seed,
            explore_seeds: opts.explore_seeds,
            server_failure_rate: rate.text.clone(),
            failures_per_server_year: risk::round_sig(rate.per_year, assess::DIGITS),
        },
        risk: base.risk.clone(),
        steps: base.steps.clone(),
        explorer,
        findings: findings::findings(plan),
        recommendations,
        not_recommended,
        timeline,
        live: None,
    })
}

fn summary(plan: &Plan, file: &str) -> PlanSummary {
    let c = &plan.cluster;
    let u = &plan.upgrade;
    PlanSummary {
        file: file.to_string(),
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
