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
//! Each attempt in the journal (a new attempt after a halt, or the same attempt resumed after
//! an interruption) is a part of its own: its steps are cut where it ends, it is reduced on
//! its own, and its steps are named after it (`attempt 2: 1. upgrade s3`) when the journal has
//! more than one. The outcome banner, each attempt's ending and each step's check come from
//! the typed records (the `banner` module); the steps' expected durations from the plan's rehearsal when
//! one is given ([`super::rehearsed_runbook`]).
//!
//! There is no explorer and there are no recommendations for a live run: they need the
//! simulator. The report says so instead of showing empty or made-up numbers.

mod banner;
mod fold;
mod read;

use super::assess::{reduce, step_name};
use super::measure::{Measured, Segment, StepKind};
use super::model::{
    Banner, Expected, Explorer, LiveRun, LiveStep, Observed, RiskReport, RunbookStep,
    SCHEMA_VERSION, Settings, StepRisk, Timeline, TimelineStep,
};
use super::risk::{FailureRate, round_sig};
use super::{ReportError, assess, findings};
use crate::live::journal::{Installed, Record};
use crate::plan::Plan;
use crate::procedure::Action;
use crate::rehearsal::{Outcome, Verdict};
use banner::PartEnd;
use fold::Folded;
use read::{JournalRead, Part};
use rehearse_sim::{Metrics, WorkloadStats};

pub use banner::{COMPLETED, HALTED, INTERRUPTED, ROLLED_BACK};

/// What is not in a live run's report, and why.
pub const NOT_AVAILABLE: [&str; 2] = [
    "explorer heatmap: the explorer injects faults into simulated runs; a live run has one timeline and no injected faults (run `rehearse report PLAN` for the plan's explorer)",
    "recommendations: each recommendation is re-simulated on many seeds; a live run cannot be re-run with a change (run `rehearse report PLAN` for the plan's recommendations)",
];

/// The rehearsal's steps a live run's steps are compared with, each with its kind
/// ([`super::rehearsed_runbook`]).
pub type Rehearsed = [(StepKind, RunbookStep)];

/// Why a runbook has no expected durations without a plan.
pub const NO_EXPECTED: &str = "no expected durations: they come from the plan's rehearsal; give the plan (rehearse report --journal FILE PLAN) to compare each step with it";

/// Builds the report of the live run recorded in `records` (the journal `journal_file`).
/// `plan`, when given with its file name, fills the plan summary and the findings;
/// `rehearsed`, the plan's rehearsed steps, the runbook's expected durations.
pub fn build(
    records: &[Record],
    journal_file: &str,
    plan: Option<(&Plan, &str)>,
    rehearsed: Option<&Rehearsed>,
    rate: &FailureRate,
) -> Result<RiskReport, ReportError> {
    let (mut j, t0) = fold_journal(records, journal_file, plan.map(|p| p.0))?;
    let last_end = j.parts.last().map(|p| p.end.clone());
    let (outcome, reason, verdict, mut notes) =
        ending(last_end, std::mem::take(&mut j.finish_notes));
    notes.extend(gap_note(&j.parts));
    let (banner, observed) = banner_and_observed(&j, records, journal_file, plan.map(|p| p.0));
    let servers = j.st.servers.clone();
    let run = timeline_of(&mut j, verdict, rate);
    let runbook = runbook_of(&j, &run, rehearsed);
    let mut summary = match plan {
        Some((p, file)) => super::summary(p, file),
        None => j.plan_summary(journal_file, servers),
    };
    summary.sha256 = Some(j.plan_sha256.clone()).filter(|s| !s.is_empty());
    Ok(RiskReport {
        schema_version: SCHEMA_VERSION,
        rehearse_version: env!("CARGO_PKG_VERSION").to_string(),
        verdict: None,
        plan: summary,
        assumptions: None,
        runbook: Vec::new(),
        settings: one_run(rate),
        risk: run.risk,
        steps: run.steps,
        // A live run has no explorer (see `NOT_AVAILABLE`).
        explorer: Explorer::default(),
        findings: plan.map_or_else(Vec::new, |(p, _)| findings::findings(p)),
        recommendations: Vec::new(),
        not_recommended: Vec::new(),
        timeline: run.timeline,
        worst_timeline: None,
        live: Some(LiveRun {
            journal: journal_file.to_string(),
            plan_sha256: j.plan_sha256.clone(),
            attempts: j.parts.iter().filter(|p| p.resumption == 0).count() as u32,
            started_at_unix_ms: t0,
            observations: j.observations,
            write_probe: j.write_probe,
            outcome,
            reason,
            notes,
            actions: std::mem::take(&mut j.actions),
            not_available: NOT_AVAILABLE.iter().map(|s| s.to_string()).collect(),
            banner,
            observed,
            runbook,
            expected_note: rehearsed.is_none().then(|| NO_EXPECTED.to_string()),
            parts: (j.parts.iter().enumerate())
                .map(|(i, p)| p.view(j.parts.get(i + 1).is_some_and(|n| n.resumption > 0)))
                .collect(),
        }),
    })
}

/// The journal's records folded into what the report draws (servers named by the plan when
/// given), and the first record's time.
fn fold_journal(
    records: &[Record],
    journal_file: &str,
    plan: Option<&Plan>,
) -> Result<(JournalRead, u64), ReportError> {
    let t0 = records
        .first()
        .map(Record::at_ms)
        .ok_or_else(|| ReportError::Journal(format!("journal {journal_file}: no records")))?;
    check_span(records, t0, journal_file)?;
    let mut j = JournalRead::new(t0);
    for r in records {
        j.read(r);
    }
    if let Some(p) = plan {
        j.st.servers = p.cluster.servers.iter().map(|s| s.name.clone()).collect();
    }
    Ok((j, t0))
}

/// Refuses a journal whose records span more than [`crate::bounds::MAX_JOURNAL_SPAN_MS`]
/// from the first: its times are corrupt.
fn check_span(records: &[Record], t0: u64, journal_file: &str) -> Result<(), ReportError> {
    let max = crate::bounds::MAX_JOURNAL_SPAN_MS;
    match records
        .iter()
        .position(|r| r.at_ms().saturating_sub(t0) > max)
    {
        Some(i) => Err(ReportError::Journal(format!(
            "journal {journal_file}: record {} is at {} ms, more than a year after the first \
             record ({t0} ms): its times are corrupt (a journal's records are milliseconds on \
             one clock)",
            i + 1,
            records[i].at_ms()
        ))),
        None => Ok(()),
    }
}

/// Between two parts nothing was observed: said when there is such a gap.
fn gap_note(parts: &[Part]) -> Option<String> {
    let gap: u64 = parts
        .windows(2)
        .map(|w| w[1].start_ms.saturating_sub(w[0].end_ms))
        .sum();
    (gap > 0).then(|| {
        format!(
            "nothing was observed between the parts ({} in all): the whole-run figures hold the \
             last value observed across it, no step includes it",
            super::render::secs(gap as f64)
        )
    })
}

/// The outcome banner and the observed box.
fn banner_and_observed(
    j: &JournalRead,
    records: &[Record],
    journal_file: &str,
    plan: Option<&Plan>,
) -> (Banner, Observed) {
    let banner = banner::banner(
        &j.parts,
        &banner::Context {
            journal: journal_file,
            in_flight: j.in_flight.and_then(|i| j.actions.get(i)),
            last_action: j.actions.last(),
            upgraded: &Installed::from_records(records).upgraded,
        },
    );
    let product = plan.map_or(j.product().to_string(), |p| p.cluster.product.to_string());
    let control = plan
        .and_then(|p| p.execute.as_ref())
        .map(|x| x.control)
        .or(j.control)
        .map(|k| super::heatmap::serde_name(&k));
    (banner, j.observed(&product, control))
}

/// The run as the report draws it: the timeline, the figures, and the steps with their parts.
struct Run {
    timeline: Timeline,
    risk: super::model::Risk,
    steps: Vec<StepRisk>,
    segments: Vec<Segment>,
    part_of: Vec<usize>,
}

/// The run's timeline and its figures, from the observations read (the journal's state is
/// taken): the whole run is reduced once for its figures, each part on its own for its steps.
fn timeline_of(j: &mut JournalRead, verdict: Verdict, rate: &FailureRate) -> Run {
    let duration_ms = j.end_ms;
    let servers = j.st.servers.clone();
    let f = std::mem::take(&mut j.st).finish(duration_ms);
    let names = step_names(&j.parts, &f.segments, &f.part_of);
    let measured = |segments: Vec<Segment>| Measured {
        outcome: live_outcome(
            verdict.clone(),
            f.reported.clone(),
            duration_ms,
            f.metrics.clone(),
        ),
        samples: f.samples.clone(),
        segments,
        backlog: Vec::new(),
    };
    let risk = reduce(vec![measured(f.segments.clone())], rate).risk;
    let steps = part_steps(j.parts.len(), &f, &names, measured, rate);
    let timeline = Timeline {
        seed: 0,
        why: String::new(),
        duration_ms,
        servers,
        steps: f
            .segments
            .iter()
            .zip(&names)
            .map(|(s, name)| TimelineStep {
                name: name.clone(),
                start_ms: s.start_ms,
                end_ms: s.end_ms,
                leader_step: s.leader_step,
            })
            .collect(),
        samples: f.samples,
        reported_tolerance: f.reported,
        live: true,
        backlog: Vec::new(),
        marks: if j.parts.len() > 1 {
            j.parts.iter().map(|p| (p.start_ms, p.label())).collect()
        } else {
            Vec::new()
        },
    };
    Run {
        timeline,
        risk,
        steps,
        segments: f.segments,
        part_of: f.part_of,
    }
}

/// Each of the `parts` reduced on its own: its steps in time order, named from `names`.
fn part_steps(
    parts: usize,
    f: &Folded,
    names: &[String],
    measured: impl Fn(Vec<Segment>) -> Measured,
    rate: &FailureRate,
) -> Vec<StepRisk> {
    let mut steps: Vec<StepRisk> = Vec::new();
    for p in 0..parts {
        let idx: Vec<usize> = (0..f.segments.len())
            .filter(|&i| f.part_of[i] == p)
            .collect();
        let segs: Vec<Segment> = idx.iter().map(|&i| f.segments[i].clone()).collect();
        if segs.is_empty() {
            continue;
        }
        // Within a part each step kind occurs once, in time order: the reduction's steps
        // (ordered by kind) are the part's segments in order.
        for (st, &i) in reduce(vec![measured(segs)], rate)
            .steps
            .into_iter()
            .zip(&idx)
        {
            steps.push(StepRisk {
                index: steps.len(),
                name: names[i].clone(),
                ..st
            });
        }
    }
    steps
}

/// The steps' names, as a rehearsal names them; with several parts, after their part.
fn step_names(parts: &[Part], segments: &[Segment], part_of: &[usize]) -> Vec<String> {
    segments
        .iter()
        .zip(part_of)
        .map(|(s, &p)| {
            let part = parts.get(p);
            let completed =
                part.is_some_and(|p| matches!(p.end, PartEnd::Finished(Action::Done(_))));
            let name = step_name(s, completed);
            match part {
                Some(part) if parts.len() > 1 => format!("{}: {name}", part.label()),
                _ => name,
            }
        })
        .collect()
}

/// The runbook as executed: each step with its actions, its check and, with the plan's
/// rehearsal, the duration the rehearsal expected of the step of its kind.
fn runbook_of(j: &JournalRead, run: &Run, rehearsed: Option<&Rehearsed>) -> Vec<LiveStep> {
    let step_of = |part: usize, at_ms: u64| {
        let mut of_part = (0..run.segments.len()).filter(|&i| run.part_of[i] == part);
        let first = of_part.clone().next();
        of_part
            .rfind(|&i| run.segments[i].start_ms <= at_ms)
            .or(first)
    };
    let mut actions: Vec<Vec<&super::model::LiveAction>> = vec![Vec::new(); run.segments.len()];
    for a in &j.actions {
        if let Some(i) = step_of(a.part, a.at_ms) {
            actions[i].push(a);
        }
    }
    run.segments
        .iter()
        .enumerate()
        .map(|(i, seg)| {
            let part = run.part_of[i];
            let last = run.part_of.get(i + 1) != Some(&part);
            let started = actions[i]
                .iter()
                .any(|a| matches!(a.what, Action::Start { .. }));
            let end = j.parts.get(part).map_or(PartEnd::Open, |p| p.end.clone());
            LiveStep {
                part,
                name: run.timeline.steps[i].name.clone(),
                start_ms: seg.start_ms,
                duration_ms: seg.end_ms - seg.start_ms,
                actions: actions[i].iter().map(|a| a.action.clone()).collect(),
                gate: banner::gate(seg, last, started, &end),
                expected: rehearsed.and_then(|r| expected(r, seg.kind)),
            }
        })
        .collect()
}

/// The rehearsal's duration of the step of `kind`.
fn expected(rehearsed: &Rehearsed, kind: StepKind) -> Option<Expected> {
    rehearsed
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, s)| Expected {
            step: s.name.clone(),
            seeds: s.seeds,
            min_ms: s.duration_ms_min,
            median_ms: s.duration_ms_median,
            max_ms: s.duration_ms_max,
        })
}

/// How the run ended: (outcome word, reason, verdict, notes), from the last part's end.
fn ending(
    end: Option<PartEnd>,
    finish_notes: Vec<String>,
) -> (String, Option<String>, Verdict, Vec<String>) {
    let halted = |word: &str, why: String, notes| {
        let verdict = Verdict::Halted {
            reason: why.clone(),
        };
        (word.to_string(), Some(why), verdict, notes)
    };
    match end {
        Some(PartEnd::Finished(Action::Done(summary))) => {
            let mut n = summary.notes;
            for x in finish_notes {
                if !n.contains(&x) {
                    n.push(x);
                }
            }
            ("done".to_string(), None, Verdict::Completed, n)
        }
        Some(PartEnd::Finished(Action::Halt(why))) => halted("halt", why.to_string(), finish_notes),
        Some(PartEnd::Finished(other)) => (
            "unknown".to_string(),
            Some(format!("journal ends with {other:?}")),
            Verdict::Halted {
                reason: "unknown ending".into(),
            },
            finish_notes,
        ),
        Some(PartEnd::Interrupted) => halted(
            "interrupted",
            "interrupted by the operator (Ctrl-C) after the action in flight".into(),
            Vec::new(),
        ),
        Some(PartEnd::Open) | None => halted(
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
