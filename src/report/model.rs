//! The serializable risk model every renderer reads. JSON is this model as is; its
//! `schema_version` changes whenever a field changes meaning or is removed (adding a field
//! keeps the version: the live-run fields `live` and `timeline.live` were added in version 1,
//! absent from rehearsals' reports).
//!
//! Version 2: `risk.p_quorum_loss` and `risk.p_quorum_loss_first_order` leave out the seeds
//! that lost quorum with no fault (plan defects, counted in `risk.plan_defect_runs`); whole-run
//! and per-step times, writes and leader changes are medians over the seeds, not means; the
//! time without a leader is measured over the procedure (not its cooldown); and the report has
//! a `verdict`, `plan.sha256`, `assumptions`, a `runbook` and the worst seed's timeline.
//! Added since, absent from rehearsals' reports (so the version stays): a live run's
//! `live.banner`, `live.observed`, `live.runbook`, `live.parts`, `live.actions[].part` and
//! `timeline.marks`.

use super::measure::Sample;
use serde::Serialize;

/// Version of the JSON schema.
pub const SCHEMA_VERSION: u32 = 2;

/// A risk report of one plan.
#[derive(Debug, Clone, Serialize)]
pub struct RiskReport {
    /// JSON schema version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The rehearse version that produced it (no date: reports are reproducible).
    pub rehearse_version: String,
    /// Go or no-go, and why (absent for a live run's report: the run already happened; its
    /// outcome is `live.banner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<GoNoGo>,
    /// The plan.
    pub plan: PlanSummary,
    /// What the rehearsal models, what it is calibrated against, and the workload (absent for
    /// a live run: what its figures are is `live.observed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumptions: Option<Assumptions>,
    /// The procedure step by step, with its duration range over the seeds and what aborts it
    /// (empty for a live run: its steps as executed are `live.runbook`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runbook: Vec<RunbookStep>,
    /// How the report was computed.
    pub settings: Settings,
    /// The fault-free rehearsals and the risk computed from them.
    pub risk: Risk,
    /// Per step of the procedure.
    pub steps: Vec<StepRisk>,
    /// The explorer's empirical results (single faults at every step).
    pub explorer: Explorer,
    /// Lint findings, known defects of the versions and incidents that match the plan.
    pub findings: Vec<Finding>,
    /// Changes to the plan that measurably lower the risk, each re-simulated.
    pub recommendations: Vec<Recommendation>,
    /// Changes that apply but were not recommended, with their numbers.
    pub not_recommended: Vec<Recommendation>,
    /// The typical seed's timeline, for the charts (of a live run: its one timeline).
    pub timeline: Timeline,
    /// The worst seed's timeline, when it is not the typical one (absent for a live run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_timeline: Option<Timeline>,
    /// Set when the report is of a live run (`rehearse report --journal`), not a rehearsal:
    /// then `settings` and `risk` describe one run, and `explorer` and `recommendations` are
    /// empty (see `live.not_available`). Absent for rehearsals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveRun>,
}

/// A live run, read from its journal.
#[derive(Debug, Clone, Serialize)]
pub struct LiveRun {
    /// The journal file as given.
    pub journal: String,
    /// sha-256 of the plan the run executed (from the last attempt's begin record).
    pub plan_sha256: String,
    /// Attempts in the journal (an attempt resumed after an interruption counts once; `parts`
    /// lists each resumption too).
    pub attempts: u32,
    /// When the run began (Unix ms); times in the report are ms since then.
    pub started_at_unix_ms: u64,
    /// Observations recorded.
    pub observations: u64,
    /// Whether the run had a write probe (`write_accepted` in its observations).
    pub write_probe: bool,
    /// `done`, `halt`, `interrupted` or `incomplete`.
    pub outcome: String,
    /// Why it halted, was interrupted or is incomplete.
    pub reason: Option<String>,
    /// The procedure's notes.
    pub notes: Vec<String>,
    /// The actions carried out, in order (observations left out).
    pub actions: Vec<LiveAction>,
    /// What a live run's report does not have, and why.
    pub not_available: Vec<String>,
    /// How the run ended (the last attempt), and why: the live run's banner.
    pub banner: Banner,
    /// What the figures are (what the cluster's API answered) and what is known of the cluster.
    pub observed: Observed,
    /// The steps as executed, attempt by attempt; `steps` has the same steps in the same order.
    pub runbook: Vec<LiveStep>,
    /// Why `runbook` has no expected durations, when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_note: Option<String>,
    /// The attempts in the journal, in order; an attempt resumed after an interruption is a
    /// part of its own.
    pub parts: Vec<LiveAttempt>,
}

/// The outcome banner of a live run (rendered as a rehearsal's verdict is).
#[derive(Debug, Clone, Serialize)]
pub struct Banner {
    /// `completed`, `halted`, `interrupted` or `rolled back`.
    pub decision: String,
    /// Why, one sentence each, from the journal's records.
    pub reasons: Vec<String>,
    /// How the outcome is decided, in words.
    pub rule: String,
}

/// What a live run's figures are.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    /// Where each figure comes from, one item each.
    pub observed: Vec<String>,
    /// What the figures are not.
    pub not_observed: Vec<String>,
    /// `nomad`, `consul` or `unknown`.
    pub product: String,
    /// The versions the servers reported at the first and at the last observation that read
    /// them, e.g. `first observation: 1.8.7 (s1, s2, s3)`.
    pub versions: Vec<String>,
    /// `process`, `command` or `container` (from the plan); absent without a plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// Whether a write probe ran (its answers are in the observations).
    pub probe: bool,
}

/// One attempt (or the resumption of one) in a live run's journal.
#[derive(Debug, Clone, Serialize)]
pub struct LiveAttempt {
    /// The attempt number its begin record carries (from 1).
    pub attempt: u32,
    /// Whether this part resumes the attempt after an interruption.
    pub resumed: bool,
    /// `attempt 1`, `attempt 1, resumed`.
    pub label: String,
    /// Start (ms since the run began).
    pub start_ms: u64,
    /// End: its last record (ms since the run began).
    pub end_ms: u64,
    /// Servers an earlier attempt had upgraded (skipped by this one).
    pub already_upgraded: Vec<String>,
    /// How it ended, in words.
    pub ended: String,
}

/// One step of a live run as executed.
#[derive(Debug, Clone, Serialize)]
pub struct LiveStep {
    /// Index into `parts`.
    pub part: usize,
    /// Step name (as in `steps`).
    pub name: String,
    /// Start (ms since the run began).
    pub start_ms: u64,
    /// Duration (ms).
    pub duration_ms: u64,
    /// The actions carried out in it, in order.
    pub actions: Vec<String>,
    /// The outcome of the step's check: the preflight, the gate after a server's start, or
    /// the final verification.
    pub gate: String,
    /// The rehearsal's duration of the step of the same kind (with a plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<Expected>,
}

/// A step's duration over a rehearsal's fault-free seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Expected {
    /// The rehearsed step compared with (its name on the rehearsal).
    pub step: String,
    /// Seeds that reached it.
    pub seeds: u64,
    /// Shortest (ms).
    pub min_ms: u64,
    /// Median (ms).
    pub median_ms: u64,
    /// Longest (ms).
    pub max_ms: u64,
}

/// One action of a live run.
#[derive(Debug, Clone, Serialize)]
pub struct LiveAction {
    /// Start (ms since the run began).
    pub at_ms: u64,
    /// How long it took (ms).
    pub duration_ms: u64,
    /// The action in words, e.g. `stop s2` (its `Display`).
    pub action: String,
    /// The action itself, as the journal recorded it: what code reads (never the words).
    pub what: crate::procedure::Action,
    /// `ok`, `failed: …`, `snapshot saved`.
    pub result: String,
    /// Index into `live.parts`: the attempt it belongs to.
    pub part: usize,
}

/// The plan in a few fields.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    /// The plan file as given.
    pub file: String,
    /// sha-256 of the plan file's bytes, in hex (absent when the report was not built from a
    /// file, or the file could not be read again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `nomad` or `consul`.
    pub product: String,
    /// Current version.
    pub from_version: String,
    /// Target version.
    pub to_version: String,
    /// Server names.
    pub servers: Vec<String>,
    /// Transfer leadership before the leader's step.
    pub transfer_leadership: bool,
    /// Server order.
    pub order: String,
    /// Gate stable_for (ms).
    pub stable_for_ms: u64,
    /// Install time per server (ms).
    pub install_time_ms: u64,
    /// Autopilot dead-server cleanup.
    pub cleanup_dead_servers: bool,
    /// Autopilot min_quorum.
    pub min_quorum: usize,
}

/// Inputs of the computation.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Fault-free seeds rehearsed (first..first+seeds).
    pub seeds: u64,
    /// First seed.
    pub first_seed: u64,
    /// Seeds per fault schedule in the explorer.
    pub explore_seeds: u64,
    /// Per-server failure rate, as given.
    pub server_failure_rate: String,
    /// The same, in failures per server per year.
    pub failures_per_server_year: f64,
}

/// Whole-upgrade numbers over the fault-free seeds. Times, writes and leader changes are
/// medians over the seeds; probabilities are means (an expectation over the seeds).
#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    /// Seeds rehearsed.
    pub seeds: u64,
    /// Seeds that completed.
    pub completed: u64,
    /// Seeds that halted safely.
    pub halted: u64,
    /// Seeds that were unsafe without any injected fault.
    pub unsafe_runs: u64,
    /// Seeds that lost allocations without any injected fault (a node stopped while its
    /// allocations ran, without a completed drain).
    pub lost_allocation_runs: u64,
    /// Seeds that completed without any injected fault but whose jobs never recovered (an
    /// eval backlog left, or jobs below their counts).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stalled_workload_runs: u64,
    /// Seeds that lost quorum without any injected fault.
    pub quorum_lost_runs: u64,
    /// Seeds that lost an acknowledged write without any injected fault.
    pub lost_acked_write_runs: u64,
    /// Plan defects: seeds that lost quorum or an acknowledged write with no fault injected.
    /// They are left out of `p_quorum_loss`, which is the risk from server failures.
    pub plan_defect_runs: u64,
    /// The plan-defect seeds.
    pub plan_defect_seeds: Vec<u64>,
    /// Median upgrade duration (ms).
    pub duration_ms_median: u64,
    /// Median time with failure tolerance 0 or below (ms).
    pub exposure_ms: u64,
    /// Median Σ (healthy voters × time) over windows with tolerance 0 (server·ms).
    pub exposure_server_ms: u64,
    /// Seeds `p_quorum_loss` is averaged over: the seeds without a plan defect.
    pub risk_seeds: u64,
    /// Probability of quorum loss during the upgrade from server failures at the given rate
    /// (see the module doc), the mean over the seeds without a plan defect; 0 when every seed
    /// has one.
    pub p_quorum_loss: f64,
    /// The same from windows with tolerance 0 alone: 1 − e^(−λ·exposure_server_ms), the
    /// first-order term.
    pub p_quorum_loss_first_order: f64,
    /// Median time without a leader during the procedure (ms).
    pub no_leader_ms: u64,
    /// Median failed writes.
    pub failed_writes: f64,
    /// Median acknowledged writes.
    pub acked_writes: f64,
    /// Median leader changes.
    pub leader_changes: f64,
    /// Lowest failure tolerance seen: ground truth sampled after every action
    /// ([`super::measure::lowest_tolerance`], the figure `rehearse check` prints too).
    pub tolerance_min: i64,
    /// When the plan declares jobs: the eval backlog peak, the time from the procedure's end
    /// until every job ran its count again with the backlog empty, and the allocations lost,
    /// median and worst over the seeds (the figures `rehearse check` prints). Absent without
    /// jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<crate::check::WorkloadFigures>,
}

/// The go/no-go verdict ([`super::verdict`] decides it).
#[derive(Debug, Clone, Serialize)]
pub struct GoNoGo {
    /// `go` or `no-go`.
    pub decision: String,
    /// Why, one sentence each; the deciding reasons first.
    pub reasons: Vec<String>,
    /// The rule applied, in words.
    pub rule: String,
    /// The highest acceptable `p_quorum_loss`, if one was set.
    pub max_p_quorum_loss: Option<f64>,
}

/// What the rehearsal assumes.
#[derive(Debug, Clone, Serialize)]
pub struct Assumptions {
    /// What the simulator models, one item each.
    pub modelled: Vec<String>,
    /// What it is calibrated against, and where the figures are.
    pub calibrated: Vec<String>,
    /// What it leaves out.
    pub not_modelled: Vec<String>,
    /// The workload and timers of the simulated cluster.
    pub workload: Workload,
}

/// The simulated cluster's workload and timers (from the plan and the simulator's defaults).
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    /// Writes per simulated second.
    pub writes_per_sec: f64,
    /// Raft log entries present at the start (state size).
    pub initial_state_entries: u64,
    /// Client nodes.
    pub clients: usize,
    /// raft_multiplier.
    pub raft_multiplier: u32,
    /// Raft heartbeat timeout (ms, multiplier applied).
    pub heartbeat_timeout_ms: u64,
    /// Raft election timeout (ms, multiplier applied).
    pub election_timeout_ms: u64,
    /// Gossip probe interval (ms).
    pub gossip_probe_interval_ms: u64,
    /// Server boot time, min–max (ms).
    pub boot_ms: (u64, u64),
    /// Install time per server (ms).
    pub install_time_ms: u64,
}

/// One step of the runbook.
#[derive(Debug, Clone, Serialize)]
pub struct RunbookStep {
    /// Step name, on the seed the actions are from (the `steps` entry at the same position
    /// is named after the first seed: with `leader-first` the servers differ by seed).
    pub name: String,
    /// The seed the actions are from: the typical seed, or the first seed that took this step
    /// when the typical one did not.
    pub seed: u64,
    /// The actions it takes, in order.
    pub actions: Vec<String>,
    /// Seeds that reached it.
    pub seeds: u64,
    /// Shortest duration over the seeds (ms).
    pub duration_ms_min: u64,
    /// Median duration (ms).
    pub duration_ms_median: u64,
    /// Longest duration (ms).
    pub duration_ms_max: u64,
    /// When to abort, one condition each.
    pub abort: Vec<String>,
}

/// One step, aggregated over seeds (server steps are matched by position in the order).
#[derive(Debug, Clone, Serialize)]
pub struct StepRisk {
    /// Position (0-based) in the report's step list.
    pub index: usize,
    /// Name, e.g. `upgrade s2`, from the first seed.
    pub name: String,
    /// Servers of the batch on the first seed.
    pub servers: Vec<String>,
    /// Whether this is the step that moves the leader (on most seeds).
    pub leader_step: bool,
    /// Seeds that reached this step.
    pub seeds: u64,
    /// Median start (ms since the procedure started).
    pub start_ms: u64,
    /// Median duration (ms).
    pub duration_ms: u64,
    /// Lowest failure tolerance seen in the step on any seed.
    pub tolerance_min: i64,
    /// Time-weighted median tolerance over all seeds.
    pub tolerance_typical: i64,
    /// Median time at tolerance 0 or below (ms).
    pub exposure_ms: u64,
    /// Longest time at tolerance 0 or below on any seed (ms).
    pub exposure_ms_max: u64,
    /// Probability of quorum loss within this step (mean over the seeds without a plan
    /// defect).
    pub p_quorum_loss: f64,
    /// Median time without a leader (ms): write unavailability.
    pub no_leader_ms: u64,
    /// Shortest duration over the seeds (ms).
    pub duration_ms_min: u64,
    /// Longest duration over the seeds (ms).
    pub duration_ms_max: u64,
    /// Median failed writes.
    pub failed_writes: f64,
    /// Median leader changes.
    pub leader_changes: f64,
    /// Median candidacies (elections, pre-votes included).
    pub elections: f64,
}

/// The explorer's results (`Default`: none, as for a live run, which has no explorer).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Explorer {
    /// Fault schedules (single faults).
    pub schedules: u64,
    /// Runs (schedules × seeds).
    pub runs: u64,
    /// Runs that completed.
    pub completed: u64,
    /// Runs that halted safely.
    pub halted: u64,
    /// Runs that lost quorum through the faults alone.
    pub beyond_tolerance: u64,
    /// Runs in which the procedure did something unsafe or data was lost.
    pub unsafe_runs: u64,
    /// Runs that lost allocations and were otherwise safe.
    pub lost_allocations: u64,
    /// Runs that completed safely but whose jobs never recovered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stalled_workload: u64,
    /// Heatmap rows: fault kinds.
    pub fault_kinds: Vec<String>,
    /// Heatmap columns: step names.
    pub steps: Vec<String>,
    /// Heatmap cells, row-major (fault kind, then step).
    pub cells: Vec<HeatCell>,
    /// What broke it: faults that lost quorum or were unsafe, grouped by step.
    pub findings: Vec<ExplorerFinding>,
}

/// Outcomes of every run of one fault kind at one step.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeatCell {
    /// Fault kind.
    pub fault: String,
    /// Step name.
    pub step: String,
    /// Runs.
    pub runs: u64,
    /// Completed.
    pub completed: u64,
    /// Halted safely.
    pub halted: u64,
    /// Quorum lost through the faults alone.
    pub beyond_tolerance: u64,
    /// Unsafe.
    pub unsafe_runs: u64,
    /// Lost allocations (otherwise safe).
    pub lost_allocations: u64,
    /// Completed, but the jobs never recovered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stalled_workload: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A fault that broke the upgrade at a step.
#[derive(Debug, Clone, Serialize)]
pub struct ExplorerFinding {
    /// Step name.
    pub step: String,
    /// Fault kind and target, e.g. `crash of other`.
    pub fault: String,
    /// `beyond_tolerance`, `unsafe`, `lost_allocations` or `stalled_workload`.
    pub class: String,
    /// Runs with this outcome (over boundaries in the step, durations and seeds).
    pub runs: u64,
    /// Runs of this fault at this step.
    pub of_runs: u64,
    /// A command that replays one of them.
    pub replay: String,
    /// What went wrong on that run.
    pub problem: String,
}

/// Where a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A lint rule (`rehearse lint`).
    Lint,
    /// A known defect of a release in the plan (the version catalog).
    KnownIssue,
    /// A real incident whose mechanism the plan is exposed to.
    Incident,
}

/// A finding about the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Where it comes from.
    pub source: Source,
    /// Lint id or public issue reference.
    pub id: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    /// What.
    pub message: String,
    /// What to do.
    pub fix: String,
    /// Scenario file that demonstrates it, if any.
    pub scenario: Option<String>,
}

/// Numbers a recommendation is judged on (over the fault-free seeds: medians of times and
/// writes, the mean probability).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Numbers {
    /// Seeds unsafe without faults.
    pub unsafe_runs: u64,
    /// Seeds that lost quorum or an acknowledged write without faults (plan defects).
    pub plan_defect_runs: u64,
    /// Seeds rehearsed.
    pub seeds: u64,
    /// Probability of quorum loss.
    pub p_quorum_loss: f64,
    /// Time at tolerance 0 (ms).
    pub exposure_ms: u64,
    /// Time without a leader in the leader's step (ms).
    pub leader_step_no_leader_ms: u64,
    /// Failed writes.
    pub failed_writes: f64,
    /// Median duration (ms).
    pub duration_ms: u64,
}

/// A change to the plan and its measured effect.
#[derive(Debug, Clone, Serialize)]
pub struct Recommendation {
    /// Stable id, e.g. `transfer-leadership`.
    pub id: String,
    /// What to do, in words.
    pub title: String,
    /// The change to the plan file.
    pub change: String,
    /// Before (the plan as is).
    pub before: Numbers,
    /// After (the plan with the change), re-simulated on the same seeds.
    pub after: Numbers,
    /// Why it is (or is not) recommended.
    pub verdict: String,
}

/// One seed's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// The seed.
    pub seed: u64,
    /// Why this seed is shown (`typical: …`, `worst: …`; empty for a live run).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
    /// Procedure duration (ms).
    pub duration_ms: u64,
    /// Servers in plan order.
    pub servers: Vec<String>,
    /// Steps.
    pub steps: Vec<TimelineStep>,
    /// Ground-truth samples.
    pub samples: Vec<Sample>,
    /// Failure tolerance as autopilot reported it to the procedure (ms, value).
    pub reported_tolerance: Vec<(u64, Option<i64>)>,
    /// A live run's timeline: `samples` hold what autopilot and the servers answered, not the
    /// simulator's ground truth. Absent (false) for rehearsals.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
    /// The eval broker's backlog (ready + unacked + blocked) over the run when the plan
    /// declares jobs: (ms since the procedure started, backlog) at each change, to the end of
    /// the cooldown after the procedure. At most a few hundred points: a long run's changes
    /// are merged in pairs, keeping the higher value. Absent without jobs and for a live run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backlog: Vec<(u64, u64)>,
    /// Where each attempt of a live run begins (ms, label), when the journal has more than
    /// one. Absent for rehearsals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marks: Vec<(u64, String)>,
}

/// A step on the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineStep {
    /// Name.
    pub name: String,
    /// Start (ms).
    pub start_ms: u64,
    /// End (ms).
    pub end_ms: u64,
    /// Whether it moved the leader.
    pub leader_step: bool,
}
