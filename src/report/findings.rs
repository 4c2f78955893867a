//! Findings about the plan itself: lint findings, known defects of the versions involved (the
//! catalog in `rehearse-sim`'s `versions`), and real incidents (`docs/failure-modes.md`)
//! whose mechanism the plan is exposed to, each with the scenario file that
//! shows it in the simulator.

use super::model::{Finding, Source};
use crate::plan::lint::{Severity, lint};
use crate::plan::{Order, Plan, Rollback};
use crate::rehearsal::sim_config;
use rehearse_model::versions::{Product, known_issues_for, line_info};

fn severity(s: Severity) -> String {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
    .into()
}

/// Every finding, lints first (by id), then known issues, then incidents.
pub fn findings(plan: &Plan) -> Vec<Finding> {
    let mut out: Vec<Finding> = lint(plan)
        .into_iter()
        .map(|f| Finding {
            source: Source::Lint,
            id: f.id.to_string(),
            severity: severity(f.severity),
            message: format!("{}: {}", f.field, f.message),
            fix: f.fix,
            scenario: None,
        })
        .collect();
    let c = &plan.cluster;
    // The target's known defects are lint R003; the running version's are listed here.
    if c.version != plan.upgrade.target {
        for k in known_issues_for(c.product, c.version, c.edition) {
            out.push(Finding {
                source: Source::KnownIssue,
                id: k.reference.to_string(),
                severity: "info".into(),
                message: format!(
                    "{} {} (the running version): {:?}",
                    c.product, c.version, k.kind
                ),
                fix: k.fix_hint.to_string(),
                scenario: None,
            });
        }
    }
    out.extend(incidents(plan));
    out
}

/// `scenario` is a file name in `scenarios/incidents/`, or empty for none.
fn incident(id: &str, severity: &str, message: String, fix: &str, scenario: &str) -> Finding {
    Finding {
        source: Source::Incident,
        id: id.to_string(),
        severity: severity.to_string(),
        message,
        fix: fix.to_string(),
        scenario: (!scenario.is_empty()).then(|| format!("scenarios/incidents/{scenario}")),
    }
}

/// Incidents whose mechanism applies to this plan. Severity says whether the plan as written
/// guards against it (`info`) or not (`warning`, `error`).
pub fn incidents(plan: &Plan) -> Vec<Finding> {
    let mut out = Vec::new();
    format_change(plan, &mut out);
    pruned_as_dead(plan, &mut out);
    stale_health(plan, &mut out);
    one_down_no_tolerance(plan, &mut out);
    several_at_once(plan, &mut out);
    leader_not_last(plan, &mut out);
    out
}

/// A target whose log entries or snapshots the current version cannot read (nomad#14819, #20072).
fn format_change(plan: &Plan, out: &mut Vec<Finding>) {
    let c = &plan.cluster;
    let u = &plan.upgrade;
    let (from, to) = (
        line_info(c.product, c.version),
        line_info(c.product, u.target),
    );
    if let (Ok(from), Ok(to)) = (from, to) {
        if to.entry_schema > from.entry_schema {
            let leader_last = u.order == Order::FollowersThenLeader;
            out.push(incident(
                "hashicorp/nomad#14819",
                if leader_last { "info" } else { "error" },
                format!(
                    "{} writes log entries {} servers cannot apply: a new leader among old followers crashes them{}",
                    u.target,
                    c.version,
                    if leader_last { "; followers-then-leader avoids it" } else { "" }
                ),
                "upgrade followers first and the leader last",
                if leader_last {
                    "nomad-14819-followers-first.toml"
                } else {
                    "nomad-14819-leader-first-new-entry-type.toml"
                },
            ));
        }
        let formats_change =
            to.snapshot_format > from.snapshot_format || to.entry_schema > from.entry_schema;
        if formats_change && u.rollback == Rollback::ReinstallAndRestore {
            out.push(incident(
                "hashicorp/nomad#20072, #3033",
                "warning",
                format!(
                    "{} writes snapshots or entries {} cannot read: rollback is re-provisioning, not reinstalling the old binary",
                    u.target, c.version
                ),
                "plan a rollback onto fresh data dirs from the pre-upgrade snapshot",
                "",
            ));
        }
    }
}

/// A server down longer than gossip failure detection, pruned by autopilot (consul#8118).
fn pruned_as_dead(plan: &Plan, out: &mut Vec<Finding>) {
    let c = &plan.cluster;
    let u = &plan.upgrade;
    let sim = sim_config(plan, 0);
    let detect_ns = sim.serf.suspicion_timeout_ns;
    if u.install_time > detect_ns && c.autopilot.cleanup_dead_servers {
        out.push(incident(
            "hashicorp/consul#8118",
            if u.gate.require_voter { "info" } else { "error" },
            format!(
                "each server is down {} s, longer than gossip failure detection ({} s): autopilot prunes it and it returns as a non-voter{}",
                u.install_time / 1_000_000_000,
                detect_ns / 1_000_000_000,
                if u.gate.require_voter { "; the gate waits until it is a voter again" } else { "" }
            ),
            "keep gate.require_voter = true; or set min_quorum / pause dead-server cleanup during the upgrade",
            if u.gate.require_voter {
                "consul-8118-wait-for-voter.toml"
            } else {
                "consul-8118-reboot-nonvoter.toml"
            },
        ));
    }
}

/// Autopilot health from before a restart passing the gate.
fn stale_health(plan: &Plan, out: &mut Vec<Finding>) {
    let u = &plan.upgrade;
    let refresh_ns = 2_000_000_000;
    let stale_gate = !u.gate.require_fresh_health || u.gate.stable_for == 0;
    if u.install_time < refresh_ns || stale_gate {
        out.push(incident(
            "stale health (docs/baselines.md)",
            if stale_gate { "error" } else { "info" },
            format!(
                "a server restarted within autopilot's 2 s health refresh can still look Healthy{}",
                if stale_gate {
                    ": this gate can pass before the server has rejoined"
                } else {
                    "; the gate counts only health observed after the restart"
                }
            ),
            "require_fresh_health = true and stable_for >= server_stabilization_time",
            if stale_gate {
                "stale-health-naive-gate.toml"
            } else {
                "stale-health-fresh-gate.toml"
            },
        ));
    }
}

/// A cluster with no failure tolerance while one server is down (nomad#7208, #6344).
fn one_down_no_tolerance(plan: &Plan, out: &mut Vec<Finding>) {
    let c = &plan.cluster;
    let n = c.servers.len();
    if n >= 2 && n - 1 == plan.quorum() {
        out.push(incident(
            "hashicorp/nomad#7208, #6344",
            "warning",
            format!(
                "{n} servers: while one is down for its upgrade, any second failure loses quorum"
            ),
            "the procedure halts rather than stop another server; add temporary servers to keep tolerance >= 1",
            "nomad-6344-second-failure-halts.toml",
        ));
    }
}

/// Several servers restarted at once (nomad#5917).
fn several_at_once(plan: &Plan, out: &mut Vec<Finding>) {
    let u = &plan.upgrade;
    if u.parallel > 1 {
        out.push(incident(
            "hashicorp/nomad#5917, #1589, #2508",
            "error",
            format!(
                "{} servers restarted at once: split views or no leader",
                u.parallel
            ),
            "parallel = 1",
            "nomad-5917-several-at-once.toml",
        ));
    }
}

/// A Nomad leader not upgraded last (nomad#19340).
fn leader_not_last(plan: &Plan, out: &mut Vec<Finding>) {
    let c = &plan.cluster;
    let u = &plan.upgrade;
    if c.product == Product::Nomad && u.order != Order::FollowersThenLeader {
        out.push(incident(
            "hashicorp/nomad#19340",
            "warning",
            "the leader is not upgraded last: the upgrade costs an extra election, and state not yet replicated can be lost on it".into(),
            "order = \"followers-then-leader\" with transfer_leadership = true (1.7+)",
            "leader-partitioned.toml",
        ));
    }
}
