//! The report of a live run (`rehearse execute --apply`), built from its journal and rendered
//! by the same renderer, templates and charts as a rehearsal.
//!
//! The journal's observations become the timeline's samples: the failure tolerance is what
//! autopilot reported (held from one observation to the next, and through observations whose
//! health read failed), healthy voters are the healthy voters of that answer, the leader is the
//! leader the driver read, running servers are those whose `/v1/agent/self` answered, and the
//! write probe (`write_accepted`) counts as one acknowledged or failed write per observation.
//! The actions cut the timeline into the same steps as a rehearsal: preflight (and snapshot),
//! one step per server from its drain, leadership transfer or stop until the next server's,
//! and the finish (clients, verification, rollback). The one run is reduced by the same code
//! as a rehearsal's seeds ([`super::assess::reduce`]), so every per-step figure means the same.
//!
//! There is no explorer and there are no recommendations for a live run: they need the
//! simulator. The report says so instead of showing empty or made-up numbers.

use super::assess::reduce;
use super::measure::{Measured, Sample, Segment, StepKind};
use super::model::{
    Explorer, LiveAction, LiveRun, PlanSummary, RiskReport, SCHEMA_VERSION, Settings, Timeline,
};
use super::risk::{FailureRate, round_sig};
use super::{ReportError, assess, findings};
use crate::live::journal::Record;
use crate::plan::Plan;
use crate::procedure::{Action, ActionResult, Observation};
use crate::rehearsal::{Outcome, Verdict};
use rehearse_sim::{Metrics, WorkloadStats};

/// What is not in a live run's report, and why.
pub const NOT_AVAILABLE: [&str; 2] = [
    "explorer heatmap: the explorer injects faults into simulated runs; a live run has one timeline and no injected faults (run `rehearse report PLAN` for the plan's explorer)",
    "recommendations: each recommendation is re-simulated on many seeds; a live run cannot be re-run with a change (run `rehearse report PLAN` for the plan's recommendations)",
];

/// Builds the report of the live run recorded in `records` (the journal `journal_file`).
/// `plan`, when given with its file name, fills the plan summary and the findings.
pub fn build(
    records: &[Record],
    journal_file: &str,
    plan: Option<(&Plan, &str)>,
    rate: &FailureRate,
) -> Result<RiskReport, ReportError> {
    let t0 = records
        .first()
        .map(Record::at_ms)
        .ok_or_else(|| ReportError::Sim(format!("journal {journal_file}: no records")))?;
    let mut j = JournalRead::new(t0);
    for r in records {
        j.read(r);
    }
    if let Some(p) = plan {
        j.st.servers = p.0.cluster.servers.iter().map(|s| s.name.clone()).collect();
    }
    let (outcome, reason, verdict, mut notes) = ending(j.finish.take(), j.interrupted);
    if j.attempts > 1 {
        notes.push(format!(
            "{} attempts in this journal, shown as one timeline",
            j.attempts
        ));
    }
    let servers = j.st.servers.clone();
    let (timeline, base) = timeline_of(&mut j, verdict, rate);
    let summary = match plan {
        Some((p, file)) => super::summary(p, file),
        None => j.plan_summary(journal_file, servers),
    };
    Ok(RiskReport {
        schema_version: SCHEMA_VERSION,
        rehearse_version: env!("CARGO_PKG_VERSION").to_string(),
        verdict: None,
        plan: summary,
        assumptions: None,
        runbook: Vec::new(),
        settings: one_run(rate),
        risk: base.risk,
        steps: base.steps,
        explorer: no_explorer(),
        findings: plan.map_or_else(Vec::new, |(p, _)| findings::findings(p)),
        recommendations: Vec::new(),
        not_recommended: Vec::new(),
        timeline,
        worst_timeline: None,
        live: Some(LiveRun {
            journal: journal_file.to_string(),
            plan_sha256: j.plan_sha256,
            attempts: j.attempts,
            started_at_unix_ms: t0,
            observations: j.observations,
            write_probe: j.write_probe,
            outcome,
            reason,
            notes,
            actions: j.actions,
            not_available: NOT_AVAILABLE.iter().map(|s| s.to_string()).collect(),
        }),
    })
}

/// The run's timeline and its figures, from the observations read (the journal's state is
/// taken).
fn timeline_of(
    j: &mut JournalRead,
    verdict: Verdict,
    rate: &FailureRate,
) -> (Timeline, assess::Assessment) {
    let duration_ms = j.end_ms;
    let servers = j.st.servers.clone();
    let (samples, segments, metrics, reported) = std::mem::take(&mut j.st).finish(duration_ms);
    let completed = verdict == Verdict::Completed;
    let measured = Measured {
        outcome: live_outcome(verdict, reported.clone(), duration_ms, metrics),
        samples: samples.clone(),
        segments: segments.clone(),
        backlog: Vec::new(),
    };
    let base = reduce(vec![measured], rate);
    let timeline = Timeline {
        seed: 0,
        why: String::new(),
        duration_ms,
        servers,
        steps: super::timeline_steps(&segments, completed),
        samples,
        reported_tolerance: reported,
        live: true,
        backlog: Vec::new(),
    };
    (timeline, base)
}

/// Everything read from a journal, record by record.
struct JournalRead {
    t0: u64,
    st: Fold,
    attempts: u32,
    plan_sha256: String,
    end_ms: u64,
    observations: u64,
    write_probe: bool,
    actions: Vec<LiveAction>,
    /// The action begun and not yet ended, by index into `actions`.
    in_flight: Option<usize>,
    finish: Option<(Action, Vec<String>)>,
    interrupted: bool,
    /// (current, target) versions as the run saw them.
    versions: (Option<String>, Option<String>),
    /// Whether the observations held a scheduler configuration (Nomad), once known.
    scheduler: Option<bool>,
}

impl JournalRead {
    fn new(t0: u64) -> JournalRead {
        JournalRead {
            t0,
            st: Fold::default(),
            attempts: 0,
            plan_sha256: String::new(),
            end_ms: 0,
            observations: 0,
            write_probe: false,
            actions: Vec::new(),
            in_flight: None,
            finish: None,
            interrupted: false,
            versions: (None, None),
            scheduler: None,
        }
    }

    /// Ms since the journal began; the end of the run so far moves up to it.
    fn at(&mut self, ms: u64) -> u64 {
        let t = ms.saturating_sub(self.t0);
        self.end_ms = self.end_ms.max(t);
        t
    }

    fn read(&mut self, r: &Record) {
        match r {
            Record::Begin {
                at_ms, plan_sha256, ..
            } => {
                self.attempts += 1;
                self.plan_sha256.clone_from(plan_sha256);
                self.at(*at_ms);
            }
            Record::Observation { obs } => self.observation(obs),
            Record::ActionBegin { at_ms, action } => {
                let t = self.at(*at_ms);
                self.action_begin(t, action);
            }
            Record::ActionEnd { at_ms, result, .. } => {
                let t = self.at(*at_ms);
                self.action_end(t, result);
            }
            Record::Interrupted { at_ms } => {
                self.interrupted = true;
                self.at(*at_ms);
            }
            Record::Finish {
                at_ms,
                action,
                notes,
            } => {
                let t = self.at(*at_ms);
                self.st.action(t, action);
                self.finish = Some((action.clone(), notes.clone()));
            }
        }
    }

    fn observation(&mut self, obs: &Observation) {
        self.observations += 1;
        let t = self.at(obs.now_ms);
        let v = &obs.view;
        self.write_probe |= v.write_accepted.is_some();
        if !v.is_read() {
            // A step between a stop and a start reads nothing: no sample.
            return;
        }
        self.scheduler = self.scheduler.or(Some(v.scheduler.is_some()));
        for (name, a) in &v.agents {
            if !self.st.servers.iter().any(|s| s == name) {
                self.st.servers.push(name.to_string());
            }
            if let (Ok(a), None) = (a, &self.versions.0) {
                self.versions.0 = Some(a.version.to_string());
            }
        }
        self.st.observe(t, v);
    }

    fn action_begin(&mut self, t: u64, action: &Action) {
        if let Action::ReplaceBinary { version, .. } = action {
            self.versions.1 = Some(version.to_string());
        }
        if matches!(action, Action::Observe { .. }) {
            return;
        }
        self.st.action(t, action);
        self.actions.push(LiveAction {
            at_ms: t,
            duration_ms: 0,
            action: action.to_string(),
            what: action.clone(),
            result: "in flight (no end recorded)".into(),
        });
        self.in_flight = Some(self.actions.len() - 1);
    }

    fn action_end(&mut self, t: u64, result: &ActionResult) {
        let Some(a) = self.in_flight.take().and_then(|i| self.actions.get_mut(i)) else {
            return;
        };
        a.duration_ms = t.saturating_sub(a.at_ms);
        a.result = match result {
            ActionResult::Failed(e) => format!("failed: {e}"),
            ActionResult::Snapshot(_) => "snapshot saved".into(),
            ActionResult::Ok | ActionResult::None => "ok".into(),
        };
    }

    /// The plan in a few fields, as far as the journal tells (no plan file given).
    fn plan_summary(&self, journal_file: &str, servers: Vec<String>) -> PlanSummary {
        let product = match self.scheduler {
            Some(true) => "nomad",
            Some(false) => "consul",
            None => "unknown",
        };
        PlanSummary {
            file: journal_file.to_string(),
            sha256: None,
            product: product.into(),
            from_version: self.versions.0.clone().unwrap_or_else(|| "?".into()),
            to_version: self.versions.1.clone().unwrap_or_else(|| "?".into()),
            servers,
            transfer_leadership: self
                .actions
                .iter()
                .any(|a| matches!(a.what, Action::TransferLeadership { .. })),
            order: "as run".into(),
            stable_for_ms: 0,
            install_time_ms: 0,
            cleanup_dead_servers: false,
            min_quorum: 0,
        }
    }
}

/// How the run ended: (outcome word, reason, verdict, notes).
fn ending(
    finish: Option<(Action, Vec<String>)>,
    interrupted: bool,
) -> (String, Option<String>, Verdict, Vec<String>) {
    let halted = |word: &str, why: String, notes| {
        let verdict = Verdict::Halted {
            reason: why.clone(),
        };
        (word.to_string(), Some(why), verdict, notes)
    };
    match finish {
        Some((Action::Done(summary), notes)) => {
            let mut n = summary.notes;
            for x in notes {
                if !n.contains(&x) {
                    n.push(x);
                }
            }
            ("done".to_string(), None, Verdict::Completed, n)
        }
        Some((Action::Halt(why), notes)) => halted("halt", why.to_string(), notes),
        Some((other, notes)) => (
            "unknown".to_string(),
            Some(format!("journal ends with {other:?}")),
            Verdict::Halted {
                reason: "unknown ending".into(),
            },
            notes,
        ),
        None if interrupted => halted(
            "interrupted",
            "interrupted by the operator (Ctrl-C) after the action in flight".into(),
            Vec::new(),
        ),
        None => halted(
            "incomplete",
            "the journal has no finish record: the run is still going, or rehearse was stopped; rerun `rehearse execute --apply` to resume".into(),
            Vec::new(),
        ),
    }
}

/// The one run of a live report as an outcome, for the same reduction as a rehearsal's.
fn live_outcome(
    verdict: Verdict,
    tolerance: Vec<(u64, Option<i64>)>,
    duration_ms: u64,
    metrics: Metrics,
) -> Outcome {
    Outcome {
        seed: 0,
        verdict,
        steps: Vec::new(),
        tolerance,
        duration_ms,
        metrics,
        workload: WorkloadStats::default(),
        violations: Vec::new(),
        order: Vec::new(),
        unsafe_stops: Vec::new(),
        leader_last: false,
        final_versions: Vec::new(),
        trace_hash: 0,
        notes: Vec::new(),
        events: Vec::new(),
        client_problems: Vec::new(),
        lost_allocations: Vec::new(),
        workload_plane: Default::default(),
    }
}

/// The settings of a report of one run (no seeds, no explorer).
fn one_run(rate: &FailureRate) -> Settings {
    Settings {
        seeds: 1,
        first_seed: 0,
        explore_seeds: 0,
        server_failure_rate: rate.text.clone(),
        failures_per_server_year: round_sig(rate.per_year, assess::DIGITS),
    }
}

/// A live run has no explorer (see `NOT_AVAILABLE`).
fn no_explorer() -> Explorer {
    Explorer {
        schedules: 0,
        runs: 0,
        completed: 0,
        halted: 0,
        beyond_tolerance: 0,
        unsafe_runs: 0,
        lost_allocations: 0,
        stalled_workload: 0,
        fault_kinds: Vec::new(),
        steps: Vec::new(),
        cells: Vec::new(),
        findings: Vec::new(),
    }
}

/// The journal folded into samples and segments.
#[derive(Default)]
struct Fold {
    servers: Vec<String>,
    samples: Vec<Sample>,
    reported: Vec<(u64, Option<i64>)>,
    segments: Vec<Segment>,
    tolerance: i64,
    healthy: u32,
    acked: u64,
    failed: u64,
    no_leader_ms: u64,
    quorum_lost_ms: u64,
    leader_changes: u64,
    last_leader: Option<rehearse_model::api::SharedStr>,
}

impl Fold {
    fn observe(&mut self, t: u64, v: &crate::procedure::ClusterView) {
        // The time since the previous sample counts with the previous state.
        if let Some(prev) = self.samples.last() {
            let dt = t.saturating_sub(prev.t_ms);
            if prev.leader.is_none() {
                self.no_leader_ms += dt;
            }
            if prev.tolerance < 0 {
                self.quorum_lost_ms += dt;
            }
        }
        match &v.health {
            Ok(h) => {
                self.tolerance = h.failure_tolerance;
                self.healthy = h.servers.iter().filter(|s| s.healthy && s.voter).count() as u32;
                self.reported.push((t, Some(h.failure_tolerance)));
            }
            Err(_) => self.reported.push((t, None)),
        }
        match v.write_accepted {
            Some(true) => self.acked += 1,
            Some(false) => self.failed += 1,
            None => {}
        }
        if self.samples.last().is_some() && v.leader != self.last_leader {
            self.leader_changes += 1;
        }
        self.last_leader = v.leader.clone();
        let s = Sample {
            t_ms: t,
            tolerance: self.tolerance,
            healthy_voters: self.healthy,
            leader: v.leader.as_deref().map(str::to_string),
            running: v
                .agents
                .iter()
                .filter(|(_, a)| a.is_ok())
                .map(|(n, _)| n.to_string())
                .collect(),
            acked: self.acked,
            failed: self.failed,
            no_leader_ns: self.no_leader_ms * 1_000_000,
            leader_changes: self.leader_changes,
            elections: 0,
        };
        if self.samples.last().is_some_and(|l| l.t_ms == t) {
            self.samples.pop();
        }
        self.samples.push(s);
        if self.segments.is_empty() {
            self.segments.push(Segment {
                kind: StepKind::Preflight,
                servers: Vec::new(),
                start_ms: 0,
                end_ms: 0,
                leader_step: false,
            });
        }
    }

    /// Starts a new segment when an action moves to another server or to the finish.
    fn action(&mut self, t: u64, a: &Action) {
        let next = match a {
            Action::Drain { server } | Action::Stop { server } => Some((server, false)),
            Action::TransferLeadership { from } => Some((from, true)),
            Action::ReplaceBinary { .. } | Action::Start { .. } => None,
            Action::SaveSnapshot | Action::Observe { .. } => None,
            Action::RestoreSnapshot { .. }
            | Action::UpgradeClients { .. }
            | Action::Done(_)
            | Action::Halt(_) => {
                if !matches!(self.segments.last(), Some(s) if s.kind == StepKind::Finish) {
                    self.open(t, StepKind::Finish, Vec::new(), false);
                }
                return;
            }
        };
        let Some((server, transfer)) = next else {
            return;
        };
        match self.segments.last_mut() {
            Some(s) if s.kind == StepKind::Finish => {}
            Some(s) if matches!(s.kind, StepKind::Server(_)) && s.servers == [server.clone()] => {
                s.leader_step |= transfer;
            }
            last => {
                let n = match last {
                    Some(Segment {
                        kind: StepKind::Server(i),
                        ..
                    }) => *i + 1,
                    _ => 0,
                };
                let leader = transfer || self.last_leader.as_deref() == Some(server.as_str());
                self.open(t, StepKind::Server(n), vec![server.clone()], leader);
            }
        }
    }

    fn open(&mut self, t: u64, kind: StepKind, servers: Vec<String>, leader_step: bool) {
        if self.segments.is_empty() {
            self.segments.push(Segment {
                kind: StepKind::Preflight,
                servers: Vec::new(),
                start_ms: 0,
                end_ms: 0,
                leader_step: false,
            });
        }
        self.segments.push(Segment {
            kind,
            servers,
            start_ms: t,
            end_ms: t,
            leader_step,
        });
    }

    /// Closes the segments (each ends where the next begins) and returns the timeline.
    #[allow(clippy::type_complexity)]
    fn finish(
        mut self,
        duration_ms: u64,
    ) -> (Vec<Sample>, Vec<Segment>, Metrics, Vec<(u64, Option<i64>)>) {
        let starts: Vec<u64> = self.segments.iter().skip(1).map(|s| s.start_ms).collect();
        for (s, end) in self
            .segments
            .iter_mut()
            .zip(starts.into_iter().chain([duration_ms]))
        {
            s.end_ms = end.max(s.start_ms);
        }
        // A finish that took no time (the journal ends with it) is not a step.
        if self
            .segments
            .last()
            .is_some_and(|s| s.kind == StepKind::Finish && s.end_ms == s.start_ms)
        {
            self.segments.pop();
        }
        if let Some(prev) = self.samples.last() {
            let dt = duration_ms.saturating_sub(prev.t_ms);
            if prev.leader.is_none() {
                self.no_leader_ms += dt;
            }
            if prev.tolerance < 0 {
                self.quorum_lost_ms += dt;
            }
        }
        let metrics = Metrics {
            leader_changes: self.leader_changes,
            no_leader_ns: self.no_leader_ms * 1_000_000,
            quorum_lost_ns: self.quorum_lost_ms * 1_000_000,
            ..Metrics::default()
        };
        (self.samples, self.segments, metrics, self.reported)
    }
}
