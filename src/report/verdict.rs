//! The go/no-go verdict at the top of a report. This is the one place that decides it.
//!
//! **No-go** when any of these holds, each a reason of its own:
//!
//! - a fault-free seed lost quorum or an acknowledged write: nothing failed, so the plan itself
//!   is at fault (a *plan defect*, [`super::assess::plan_defect`]);
//! - the procedure did something unsafe on a fault-free seed;
//! - the probability of quorum loss from server failures (over the seeds without a plan
//!   defect) is above the threshold, when one is set (`rehearse report --fail-above P`).
//!
//! **Go** otherwise. The reasons then say what was checked, and the seeds that halted safely or
//! lost allocations are listed as notes: they do not decide the verdict (a halt is the
//! procedure refusing to go on, which is its job), but a reviewer should see them.

use super::model::{GoNoGo, Risk, Settings};
use super::render::prob;

/// `go`.
pub const GO: &str = "go";
/// `no-go`.
pub const NO_GO: &str = "no-go";

fn seeds_list(seeds: &[u64]) -> String {
    let shown: Vec<String> = seeds.iter().take(8).map(u64::to_string).collect();
    let more = seeds.len().saturating_sub(8);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Decides the verdict from the whole-upgrade numbers.
pub fn decide(risk: &Risk, settings: &Settings, max_p_quorum_loss: Option<f64>) -> GoNoGo {
    let mut no_go = Vec::new();
    let mut ok = Vec::new();
    fault_free(risk, &mut no_go, &mut ok);
    threshold(risk, settings, max_p_quorum_loss, &mut no_go, &mut ok);
    let notes = notes(risk);
    let decision = if no_go.is_empty() { GO } else { NO_GO };
    let mut reasons = no_go;
    reasons.extend(ok);
    reasons.extend(notes);
    GoNoGo {
        decision: decision.to_string(),
        reasons,
        rule: "no-go if a fault-free seed loses quorum or an acknowledged write (a plan defect), \
               if the procedure is unsafe on a fault-free seed, or if P(quorum loss) is above \
               the threshold set with --fail-above; go otherwise"
            .to_string(),
        max_p_quorum_loss,
    }
}

/// The fault-free seeds: a plan defect or an unsafe procedure is no-go.
fn fault_free(risk: &Risk, no_go: &mut Vec<String>, ok: &mut Vec<String>) {
    let n = risk.seeds;
    if risk.plan_defect_runs > 0 {
        let mut what = Vec::new();
        if risk.quorum_lost_runs > 0 {
            what.push(format!("{} lost quorum", risk.quorum_lost_runs));
        }
        if risk.lost_acked_write_runs > 0 {
            what.push(format!(
                "{} lost an acknowledged write",
                risk.lost_acked_write_runs
            ));
        }
        no_go.push(format!(
            "plan defect: {} of {n} fault-free seeds failed with no fault injected ({}; seeds {}). \
             Nothing failed, so the plan is at fault; these seeds are not in P(quorum loss).",
            risk.plan_defect_runs,
            what.join(", "),
            seeds_list(&risk.plan_defect_seeds),
        ));
    } else {
        ok.push(format!(
            "all {n} fault-free seeds kept quorum and every acknowledged write"
        ));
    }
    if risk.unsafe_runs > 0 {
        no_go.push(format!(
            "the procedure was unsafe on {} of {n} fault-free seeds",
            risk.unsafe_runs
        ));
    } else {
        ok.push(format!("the procedure was safe on all {n} seeds"));
    }
}

/// P(quorum loss) against the threshold, if one is set.
fn threshold(
    risk: &Risk,
    settings: &Settings,
    max_p_quorum_loss: Option<f64>,
    no_go: &mut Vec<String>,
    ok: &mut Vec<String>,
) {
    let p = format!(
        "P(quorum loss) from server failures {} at {} per server (mean over {} seeds without a plan defect)",
        prob(risk.p_quorum_loss),
        settings.server_failure_rate,
        risk.risk_seeds
    );
    match max_p_quorum_loss {
        Some(max) if risk.p_quorum_loss > max => {
            no_go.push(format!("{p} is above the threshold {}", prob(max)));
        }
        Some(max) => ok.push(format!("{p} is within the threshold {}", prob(max))),
        None => ok.push(format!(
            "{p}; no threshold set (rehearse report --fail-above P sets one)"
        )),
    }
}

/// Halted seeds and lost allocations: noted, not a verdict.
fn notes(risk: &Risk) -> Vec<String> {
    let n = risk.seeds;
    let mut notes = Vec::new();
    if risk.halted > 0 {
        notes.push(format!(
            "note: {} of {n} seeds halted safely (the gate refused to go on)",
            risk.halted
        ));
    }
    if risk.lost_allocation_runs > 0 {
        notes.push(format!(
            "note: {} of {n} seeds lost allocations (a node stopped without a completed drain)",
            risk.lost_allocation_runs
        ));
    }
    if risk.stalled_workload_runs > 0 {
        notes.push(format!(
            "note: {} of {n} seeds completed but their jobs never recovered (eval backlog or jobs below their counts)",
            risk.stalled_workload_runs
        ));
    }
    notes
}

impl GoNoGo {
    /// Whether the verdict is no-go.
    pub fn is_no_go(&self) -> bool {
        self.decision == NO_GO
    }
}
