//! Static lints of an upgrade plan: stable ids, a severity and a fix hint each.

use super::{Order, Plan, Rollback};
use crate::bounds::{MIN_STABLE_FOR_NS, fmt_ns};
use rehearse_model::versions::{in_place_rollback_safe, known_issues_for, line_info, minor_steps};
use serde::Serialize;

/// How bad a finding is. `Error` makes `lint` and `check` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Risky; rehearse it.
    Warning,
    /// Unsafe or unsupported.
    Error,
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id, e.g. `R001`.
    pub id: &'static str,
    /// Short rule name.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Field path the finding is about.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub fix: String,
}

/// Every rule: (id, name, one-line meaning). Ids never change meaning.
pub const RULES: &[(&str, &str, &str)] = &[
    (
        "R001",
        "jump-too-large",
        "more than two minor releases in one upgrade",
    ),
    (
        "R002",
        "downgrade",
        "target older than current: servers cannot be downgraded in place",
    ),
    (
        "R003",
        "known-bad-target",
        "the target release has a known upgrade defect",
    ),
    (
        "R004",
        "no-snapshot-first",
        "no Raft snapshot is saved before the upgrade",
    ),
    ("R005", "leader-not-last", "the leader is not upgraded last"),
    (
        "R006",
        "clients-newer-than-servers",
        "clients would run a newer version than servers",
    ),
    (
        "R007",
        "clients-below-minimum",
        "the target servers drop clients this old",
    ),
    (
        "R008",
        "raft-protocol",
        "raft protocol not supported by a version in the plan",
    ),
    (
        "R009",
        "gate-shorter-than-stabilization",
        "gate stable_for < server_stabilization_time",
    ),
    (
        "R010",
        "gate-not-fresh",
        "the gate can pass on stale health or a non-voter",
    ),
    ("R011", "parallel", "more than one server at a time"),
    (
        "R012",
        "zero-tolerance",
        "the cluster has failure tolerance 0 while a server is down",
    ),
    (
        "R013",
        "transfer-unsupported",
        "leadership transfer requested but not available",
    ),
    (
        "R014",
        "rollback-without-snapshot",
        "rollback by restore without a pre-upgrade snapshot",
    ),
    (
        "R015",
        "nothing-to-do",
        "target equals current and nothing else changes",
    ),
];

fn finding(id: &'static str, sev: Severity, field: &str, message: String, fix: &str) -> Finding {
    let rule = RULES.iter().find(|r| r.0 == id).map_or("unknown", |r| r.1);
    Finding {
        id,
        rule,
        severity: sev,
        field: field.to_string(),
        message,
        fix: fix.to_string(),
    }
}

/// Runs every rule over a plan; findings are ordered by id.
pub fn lint(plan: &Plan) -> Vec<Finding> {
    let mut out = Vec::new();
    versions(plan, &mut out);
    procedure(plan, &mut out);
    topology(plan, &mut out);
    out.sort_by(|a, b| a.id.cmp(b.id));
    out
}

fn versions(plan: &Plan, out: &mut Vec<Finding>) {
    use Severity::*;
    let (p, from, to) = (
        plan.cluster.product,
        plan.cluster.version,
        plan.upgrade.target,
    );
    let steps = minor_steps(p, from, to).unwrap_or(0);
    if steps > 2 {
        out.push(finding(
            "R001",
            Error,
            "upgrade.target",
            format!("{from} -> {to} crosses {steps} minor releases; at most 2 per upgrade"),
            "upgrade in hops of at most two minors (e.g. 1.8 -> 1.9 -> 1.10 -> 1.11 -> 2.0)",
        ));
    }
    if to < from {
        out.push(finding(
            "R002",
            Error,
            "upgrade.target",
            format!("{to} is older than the running {from}"),
            "roll back by re-provisioning the old version and restoring the pre-upgrade snapshot",
        ));
    }
    for k in known_issues_for(p, to, plan.cluster.edition) {
        out.push(finding(
            "R003",
            Error,
            "upgrade.target",
            format!(
                "{p} {to} has a known defect ({:?}, {})",
                k.kind, k.reference
            ),
            k.fix_hint,
        ));
    }
    let clients = plan.client_version();
    if plan.clients.count > 0 && (clients > from || clients > to) {
        out.push(finding(
            "R006",
            Error,
            "clients.version",
            format!("clients run {clients}, newer than servers ({from} now, {to} after)"),
            "servers must be >= clients: upgrade servers first, clients after",
        ));
    }
    let min = line_info(p, to).ok().and_then(|l| l.min_client);
    if let Some(min) = min.filter(|m| plan.clients.count > 0 && clients < *m) {
        out.push(finding(
            "R007",
            Error,
            "clients.version",
            format!("{to} servers drop clients older than {min}; clients run {clients}"),
            "upgrade clients to the minimum first, or pick an earlier target",
        ));
    }
    let proto = plan
        .upgrade
        .target_raft_protocol
        .unwrap_or(plan.cluster.raft_protocol);
    for (field, v, pr) in [
        ("cluster.raft_protocol", from, plan.cluster.raft_protocol),
        ("upgrade.target_raft_protocol", to, proto),
    ] {
        let min = line_info(p, v).map_or(3, |l| l.raft_protocol_min);
        if pr < min {
            out.push(finding(
                "R008",
                Error,
                field,
                format!("{p} {v} needs raft protocol >= {min}, plan has {pr}"),
                "roll the raft protocol to 3 on the current version first",
            ));
        }
    }
    if proto < plan.cluster.raft_protocol {
        out.push(finding(
            "R008",
            Error,
            "upgrade.target_raft_protocol",
            "lowering the raft protocol is refused (server/raft/version)".into(),
            "keep raft_protocol = 3",
        ));
    }
    if from == to && proto == plan.cluster.raft_protocol {
        out.push(finding(
            "R015",
            Info,
            "upgrade.target",
            format!("target {to} equals the current version"),
            "nothing to upgrade; the plan is a rolling restart",
        ));
    }
}

fn procedure(plan: &Plan, out: &mut Vec<Finding>) {
    use Severity::*;
    let u = &plan.upgrade;
    if !u.snapshot_first {
        out.push(finding(
            "R004",
            Error,
            "upgrade.snapshot_first",
            "no snapshot is saved before the upgrade: there is no rollback".into(),
            "set snapshot_first = true (nomad operator snapshot save)",
        ));
    }
    match u.order {
        Order::LeaderFirst => out.push(finding("R005", Error, "upgrade.order",
            "the leader is upgraded first: a new-version leader can write entries old followers cannot apply".into(),
            "use order = \"followers-then-leader\"")),
        Order::AsListed => out.push(finding("R005", Warning, "upgrade.order",
            "servers are upgraded in file order, wherever the leader is".into(),
            "use order = \"followers-then-leader\"")),
        Order::FollowersThenLeader => {}
    }
    let stab = plan.cluster.autopilot.server_stabilization_time;
    if u.gate.stable_for < stab {
        out.push(finding("R009", Warning, "upgrade.gate.stable_for",
            format!("stable_for {} < server_stabilization_time {}: the next stop can come before promotion",
                fmt_ns(u.gate.stable_for), fmt_ns(stab)),
            "set stable_for >= server_stabilization_time"));
    }
    // Below one autopilot health refresh (see `MIN_STABLE_FOR_NS`), a gate can pass on the
    // health computed before the restart: as unsafe as no wait at all.
    let short = u.gate.stable_for < MIN_STABLE_FOR_NS;
    if !u.gate.require_fresh_health || !u.gate.require_voter || short {
        let why = if short && u.gate.stable_for > 0 {
            format!(
                "stable_for {} is shorter than autopilot's {} health refresh: the gate can pass on health from before the restart",
                fmt_ns(u.gate.stable_for),
                fmt_ns(MIN_STABLE_FOR_NS)
            )
        } else {
            "the gate can pass on health from before the restart or on a non-voter".into()
        };
        out.push(finding(
            "R010",
            Error,
            "upgrade.gate",
            why,
            "require_fresh_health = true, require_voter = true, stable_for >= 10s",
        ));
    }
    if u.parallel > 1 {
        out.push(finding(
            "R011",
            Error,
            "upgrade.parallel",
            format!("{} servers at once", u.parallel),
            "set parallel = 1",
        ));
    }
    let api = line_info(plan.cluster.product, plan.cluster.version)
        .is_ok_and(|l| l.transfer_leadership_api);
    if u.transfer_leadership && !api {
        out.push(finding(
            "R013",
            Warning,
            "upgrade.transfer_leadership",
            format!(
                "{} {} has no transfer-leadership API (Nomad 1.7+)",
                plan.cluster.product, plan.cluster.version
            ),
            "leave it off; the leader is still upgraded last",
        ));
    }
    let in_place = in_place_rollback_safe(
        plan.cluster.product,
        plan.cluster.version,
        plan.upgrade.target,
    );
    if u.rollback == Rollback::ReinstallAndRestore && u.snapshot_first && !in_place {
        out.push(finding("R014", Warning, "upgrade.rollback",
            format!("{} writes log entries or snapshots {} cannot read: an in-place reinstall would panic, so rehearse will halt instead of rolling back",
                u.target, plan.cluster.version),
            "plan a re-provisioning rollback (fresh data dir + restore the pre-upgrade snapshot)"));
    }
    if u.rollback == Rollback::ReinstallAndRestore && !u.snapshot_first {
        out.push(finding("R014", Error, "upgrade.rollback",
            "rollback restores the pre-upgrade snapshot, but none is taken (a newer snapshot may not load on the old version)".into(),
            "set snapshot_first = true"));
    }
}

fn topology(plan: &Plan, out: &mut Vec<Finding>) {
    let n = plan.cluster.servers.len();
    let tolerance_while_one_down = (n - 1) as i64 - plan.quorum() as i64;
    if tolerance_while_one_down < 0 {
        out.push(finding(
            "R012",
            Severity::Error,
            "cluster.servers",
            format!("{n} server(s): stopping any server loses quorum"),
            "add servers first (3 or 5), or accept downtime with allow_zero_tolerance = true",
        ));
    } else if tolerance_while_one_down == 0 && !plan.upgrade.allow_zero_tolerance {
        out.push(finding(
            "R012",
            Severity::Warning,
            "cluster.servers",
            format!("{n} servers: failure tolerance is 0 during every step"),
            "add a temporary 4th/5th server for the upgrade, or set min_quorum",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(extra_cluster: &str, extra_upgrade: &str, servers: usize) -> Plan {
        let names: Vec<String> = (1..=servers)
            .map(|i| format!("{{ name = \"s{i}\" }}"))
            .collect();
        let text = format!(
            "[cluster]\nproduct = \"nomad\"\nversion = \"1.9.7\"\nservers = [{}]\n{extra_cluster}\n[upgrade]\ntarget = \"1.10.3\"\n{extra_upgrade}\n",
            names.join(", ")
        );
        Plan::from_str_named(&text, "t.toml").unwrap()
    }

    fn ids(p: &Plan) -> Vec<&'static str> {
        lint(p).iter().map(|f| f.id).collect()
    }

    fn fires(id: &str, p: &Plan) -> bool {
        ids(p).contains(&id)
    }

    #[test]
    fn the_safe_5_server_plan_is_clean() {
        assert!(
            ids(&plan("", "", 5)).is_empty(),
            "{:?}",
            lint(&plan("", "", 5))
        );
    }

    #[test]
    fn r001_jump_too_large() {
        let p = plan("", "", 5);
        let mut far = p.clone();
        far.cluster.version = "1.7.7".parse().unwrap();
        far.upgrade.target = "1.10.3".parse().unwrap();
        assert!(fires("R001", &far));
        far.upgrade.target = "1.9.7".parse().unwrap();
        assert!(!fires("R001", &far));
    }

    #[test]
    fn r002_downgrade() {
        let mut p = plan("", "", 5);
        p.upgrade.target = "1.9.1".parse().unwrap();
        assert!(fires("R002", &p));
        assert!(!fires("R002", &plan("", "", 5)));
    }

    #[test]
    fn r003_known_bad_target() {
        let mut p = plan("", "", 5);
        p.cluster.version = "1.8.4".parse().unwrap();
        p.upgrade.target = "1.9.2".parse().unwrap();
        assert!(fires("R003", &p));
        p.upgrade.target = "1.9.3".parse().unwrap();
        assert!(!fires("R003", &p));
    }

    #[test]
    fn r004_no_snapshot_and_r014_rollback_without_it() {
        let p = plan(
            "",
            "snapshot_first = false\nrollback = \"reinstall-and-restore\"",
            5,
        );
        assert!(fires("R004", &p) && fires("R014", &p));
        let p = plan("", "rollback = \"reinstall-and-restore\"", 5);
        assert!(!fires("R004", &p) && !fires("R014", &p));
    }

    #[test]
    fn r005_leader_not_last() {
        assert!(fires("R005", &plan("", "order = \"leader-first\"", 5)));
        assert!(fires("R005", &plan("", "order = \"as-listed\"", 5)));
        assert!(!fires("R005", &plan("", "", 5)));
    }

    #[test]
    fn r006_and_r007_client_versions() {
        let p = plan("[clients]\ncount = 4\nversion = \"1.11.0\"", "", 5);
        assert!(fires("R006", &p));
        let p = plan("[clients]\ncount = 4\nversion = \"1.5.3\"", "", 5);
        assert!(fires("R007", &p) && !fires("R006", &p));
        assert!(!fires("R007", &plan("[clients]\ncount = 4", "", 5)));
    }

    #[test]
    fn r008_raft_protocol() {
        assert!(fires("R008", &plan("raft_protocol = 2", "", 5)));
        assert!(fires("R008", &plan("", "target_raft_protocol = 2", 5)));
        assert!(!fires("R008", &plan("raft_protocol = 3", "", 5)));
    }

    #[test]
    fn r009_and_r010_gates() {
        let p = plan("", "[upgrade.gate]\nstable_for = \"3s\"", 5);
        assert!(fires("R009", &p) && !fires("R010", &p));
        let p = plan("", "[upgrade.gate]\nrequire_fresh_health = false", 5);
        assert!(fires("R010", &p) && !fires("R009", &p));
        assert!(fires(
            "R010",
            &plan("", "[upgrade.gate]\nstable_for = \"0s\"", 5)
        ));
        // Shorter than one autopilot health refresh: an error, printed exactly.
        let p = plan("", "[upgrade.gate]\nstable_for = \"1ms\"", 5);
        let f = lint(&p);
        let r010 = f.iter().find(|f| f.id == "R010").expect("R010 fires");
        assert!(r010.message.contains("stable_for 1ms"), "{}", r010.message);
        let r009 = f.iter().find(|f| f.id == "R009").expect("R009 fires");
        assert!(
            r009.message.contains("stable_for 1ms <"),
            "{}",
            r009.message
        );
        assert!(!fires(
            "R010",
            &plan("", "[upgrade.gate]\nstable_for = \"2s\"", 5)
        ));
    }

    #[test]
    fn r011_parallel() {
        assert!(fires("R011", &plan("", "parallel = 2", 5)));
        assert!(!fires("R011", &plan("", "parallel = 1", 5)));
    }

    #[test]
    fn r012_zero_tolerance() {
        let three = lint(&plan("", "", 3));
        assert!(
            three
                .iter()
                .any(|f| f.id == "R012" && f.severity == Severity::Warning)
        );
        let two = lint(&plan("", "", 2));
        assert!(
            two.iter()
                .any(|f| f.id == "R012" && f.severity == Severity::Error)
        );
        assert!(!fires("R012", &plan("", "allow_zero_tolerance = true", 3)));
        assert!(!fires("R012", &plan("", "", 5)));
    }

    #[test]
    fn r013_transfer_unsupported() {
        let mut p = plan("", "transfer_leadership = true", 5);
        assert!(!fires("R013", &p));
        p.cluster.version = "1.6.5".parse().unwrap();
        p.upgrade.target = "1.7.7".parse().unwrap();
        assert!(fires("R013", &p));
    }

    #[test]
    fn r015_nothing_to_do() {
        let mut p = plan("", "", 5);
        p.upgrade.target = p.cluster.version;
        assert!(fires("R015", &p));
        assert!(!fires("R015", &plan("", "", 5)));
    }

    #[test]
    fn every_rule_has_a_test_and_ids_are_unique() {
        let src = include_str!("lint.rs");
        for (id, _, _) in RULES {
            assert_eq!(RULES.iter().filter(|r| r.0 == *id).count(), 1);
            assert!(
                src.matches(&format!("\"{id}\"")).count() >= 3,
                "{id} untested"
            );
        }
    }
}
