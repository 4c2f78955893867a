//! What a live run's report says about how it went, from the journal's typed records (the
//! final action, the halt reason, the interruption record, the actions' results), never from
//! rendered text: the outcome banner, how each attempt ended and each step's check.

use super::Part;
use crate::procedure::{Action, HaltReason};
use crate::report::measure::{Segment, StepKind};
use crate::report::model::{Banner, LiveAction};
use crate::report::render::secs;

/// `completed`.
pub const COMPLETED: &str = "completed";
/// `halted`.
pub const HALTED: &str = "halted";
/// `interrupted`.
pub const INTERRUPTED: &str = "interrupted";
/// `rolled back`.
pub const ROLLED_BACK: &str = "rolled back";

const RULE: &str = "taken from the journal's records of the last attempt: completed if the \
    procedure finished with every server on the target version and verified; rolled back if \
    it halted and put the current version back; halted if it stopped safely with a reason; \
    interrupted if the journal ends mid-run (a rerun of the same rehearse execute --apply \
    resumes it). It says how the run went, not how the cluster is now";

/// How one part of the journal ended.
#[derive(Debug, Clone)]
pub(super) enum PartEnd {
    /// No record ends it: rehearse stopped (or still runs), or the next part begins.
    Open,
    /// The operator interrupted it (Ctrl-C, SIGTERM) after the action in flight.
    Interrupted,
    /// The procedure's final action (`Done` or `Halt`) and its notes.
    Finished(Action),
}

/// What the banner needs besides the parts.
pub(super) struct Context<'a> {
    /// The journal file as given.
    pub journal: &'a str,
    /// The action begun and not ended when the journal stops.
    pub in_flight: Option<&'a LiveAction>,
    /// The last action carried out.
    pub last_action: Option<&'a LiveAction>,
    /// The servers on the target version by the journal's records.
    pub upgraded: &'a [String],
}

/// The banner of the run: the last part's ending, with the reasons.
pub(super) fn banner(parts: &[Part], cx: &Context<'_>) -> Banner {
    let Some(last) = parts.last() else {
        return Banner {
            decision: INTERRUPTED.into(),
            reasons: vec!["the journal has no attempt".into()],
            rule: RULE.into(),
        };
    };
    let (decision, mut reasons) = match &last.end {
        PartEnd::Finished(Action::Done(s)) => (COMPLETED, completed(last, &s.order)),
        PartEnd::Finished(Action::Halt(HaltReason::RolledBack { cause })) => {
            (ROLLED_BACK, rolled_back(last, cause))
        }
        PartEnd::Finished(Action::Halt(h)) => (HALTED, halted(h, last, cx.upgraded)),
        PartEnd::Finished(other) => (
            HALTED,
            vec![format!(
                "the journal's final record holds \"{other}\", which is not a final action"
            )],
        ),
        PartEnd::Interrupted | PartEnd::Open => (INTERRUPTED, interrupted(last, cx)),
    };
    if parts.len() > 1 {
        let earlier: Vec<String> = parts[..parts.len() - 1]
            .iter()
            .map(|p| format!("{}: {}", p.label(), p.ended(false)))
            .collect();
        reasons.push(format!(
            "{} parts in this journal (each drawn on its own below); before this one: {}",
            parts.len(),
            earlier.join("; ")
        ));
    }
    Banner {
        decision: decision.into(),
        reasons,
        rule: RULE.into(),
    }
}

fn completed(last: &Part, order: &[String]) -> Vec<String> {
    let mut r = vec![format!(
        "the procedure finished: every server runs the target version and the final \
         verification passed ({})",
        last.label()
    )];
    if !order.is_empty() {
        r.push(format!("servers upgraded, in order: {}", order.join(", ")));
    }
    if !last.already_upgraded.is_empty() {
        r.push(format!(
            "upgraded by an earlier attempt and skipped: {}",
            last.already_upgraded.join(", ")
        ));
    }
    r
}

fn halted(h: &HaltReason, last: &Part, upgraded: &[String]) -> Vec<String> {
    let mut r = halt_reasons(h);
    r.push(format!("the procedure stopped safely ({})", last.label()));
    let skip = if upgraded.is_empty() {
        "no server is on the target version".to_string()
    } else {
        format!("it skips {}, already upgraded", upgraded.join(", "))
    };
    r.push(format!(
        "fix the cause and rerun rehearse execute --apply: attempt {} starts; {skip}",
        last.attempt + 1
    ));
    r
}

fn rolled_back(last: &Part, cause: &HaltReason) -> Vec<String> {
    let mut r = vec!["halted, then rolled back to the current version".to_string()];
    r.extend(halt_reasons(cause));
    if !last.reinstalled.is_empty() {
        r.push(format!(
            "current version reinstalled on: {}",
            last.reinstalled.join(", ")
        ));
    }
    if let Some(index) = last.restored {
        r.push(format!(
            "the snapshot saved before the upgrade (index {index}) was restored"
        ));
    }
    r
}

fn interrupted(last: &Part, cx: &Context<'_>) -> Vec<String> {
    let after = cx
        .last_action
        .map(|a| format!(", after \"{}\"", a.action))
        .unwrap_or_default();
    let mut r = vec![match last.end {
        PartEnd::Interrupted => format!(
            "interrupted by the operator (Ctrl-C or SIGTERM) at {}{after}",
            secs(last.end_ms as f64)
        ),
        _ => format!(
            "the journal ends at {} without a finish record{after}: rehearse was stopped \
             (killed, crashed) or is still running",
            secs(last.end_ms as f64)
        ),
    }];
    if let Some(a) = cx.in_flight {
        r.push(format!(
            "in flight when the journal ends: \"{}\" (a rerun finishes it without repeating it)",
            a.action
        ));
    }
    r.push(format!(
        "resumable: rerun rehearse execute --apply --journal {} PLAN to resume {}",
        cx.journal,
        last.label()
    ));
    r
}

/// A halt reason as reasons: what stopped it, then each unmet condition.
pub(super) fn halt_reasons(h: &HaltReason) -> Vec<String> {
    let unmet = |head: String, unmet: &[String]| -> Vec<String> {
        std::iter::once(head)
            .chain(unmet.iter().map(|u| format!("unmet: {u}")))
            .collect()
    };
    match h {
        HaltReason::PreflightFailed { unmet: u } => unmet(
            "halted: the preflight checks were not met in time".into(),
            u,
        ),
        HaltReason::GateTimeout { server, unmet: u } => unmet(
            format!("halted: the gate for {server} timed out after its restart"),
            u,
        ),
        HaltReason::VerifyFailed { unmet: u } => {
            unmet("halted: the final verification failed".into(), u)
        }
        HaltReason::RolledBack { cause } => {
            let mut r = vec!["rolled back".to_string()];
            r.extend(halt_reasons(cause));
            r
        }
        other => vec![format!("halted: {other}")],
    }
}

/// The outcome of a step's check: the preflight, the gate after a server's restart, or the
/// final verification. `last` is whether the step is the last of its part, `started` whether
/// a server was started in it.
pub(super) fn gate(seg: &Segment, last: bool, started: bool, end: &PartEnd) -> String {
    let check = match seg.kind {
        StepKind::Preflight => "preflight",
        StepKind::Server(_) => "gate",
        StepKind::Finish => "verification",
    };
    let halt = match end {
        PartEnd::Finished(Action::Halt(h)) => Some(h),
        _ => None,
    };
    // A gate that timed out is its server's step's, also when a rollback came after it.
    if let (StepKind::Server(_), Some(HaltReason::GateTimeout { server, unmet })) =
        (seg.kind, halt.map(root_cause))
        && seg.servers.contains(server)
    {
        return format!("gate timed out: {}", unmet.join("; "));
    }
    if !last && seg.kind != StepKind::Finish {
        return format!("{check} passed");
    }
    match end {
        PartEnd::Finished(Action::Done(_)) => format!("{check} passed"),
        PartEnd::Finished(Action::Halt(h)) => step_halt(seg.kind, check, started, h),
        PartEnd::Finished(_) => format!("{check}: no final action recorded"),
        PartEnd::Interrupted => format!("{check} not decided: interrupted"),
        PartEnd::Open => format!("{check} not decided: the attempt ends here"),
    }
}

/// The halt a rollback followed (the halt itself when there was no rollback).
fn root_cause(h: &HaltReason) -> &HaltReason {
    match h {
        HaltReason::RolledBack { cause } => root_cause(cause),
        other => other,
    }
}

/// A step's check when its attempt halted in it.
fn step_halt(kind: StepKind, check: &str, started: bool, h: &HaltReason) -> String {
    match (kind, h) {
        (StepKind::Finish, HaltReason::RolledBack { cause }) => {
            format!("rolled back after: {cause}")
        }
        (_, HaltReason::RolledBack { cause }) => step_halt(kind, check, started, cause),
        (StepKind::Preflight, HaltReason::PreflightFailed { unmet }) => {
            format!("preflight failed: {}", unmet.join("; "))
        }
        (StepKind::Finish, HaltReason::VerifyFailed { unmet }) => {
            format!("verification failed: {}", unmet.join("; "))
        }
        // The verification runs after the last server's gate, before any finish action.
        (StepKind::Server(_), HaltReason::VerifyFailed { unmet }) if started => format!(
            "gate passed; the final verification then failed: {}",
            unmet.join("; ")
        ),
        (StepKind::Server(_), _) if !started => format!("gate not reached: {h}"),
        _ => format!("{check}: halted: {h}"),
    }
}
