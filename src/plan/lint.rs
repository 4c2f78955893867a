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
    (
        "R016",
        "rollback-in-place-impossible",
        "rollback by reinstall cannot work: the old version cannot read what the target writes",
    ),
    (
        "R017",
        "server-client-not-drained",
        "a server that is also a client would be stopped without a drain: its allocations are lost",
    ),
    (
        "R018",
        "drain-deadline-short",
        "the drain deadline is shorter than a group may need to drain (kill_timeout, plus migrate min_healthy_time, per migrate batch)",
    ),
    (
        "R019",
        "client-batch-too-wide",
        "every client would be drained at once: their allocations have nowhere to migrate",
    ),
];

fn finding(id: &'static str, sev: Severity, field: &str, message: String, fix: &str) -> Finding {
    finding_owned(id, sev, field, message, fix.to_string())
}

fn finding_owned(
    id: &'static str,
    sev: Severity,
    field: &str,
    message: String,
    fix: String,
) -> Finding {
    let rule = RULES.iter().find(|r| r.0 == id).map_or("unknown", |r| r.1);
    Finding {
        id,
        rule,
        severity: sev,
        field: field.to_string(),
        message,
        fix,
    }
}

/// Runs every rule over a plan; findings are ordered by id.
pub fn lint(plan: &Plan) -> Vec<Finding> {
    let mut out = Vec::new();
    versions(plan, &mut out);
    procedure(plan, &mut out);
    topology(plan, &mut out);
    workload(plan, &mut out);
    client_batches(plan, &mut out);
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
            "set upgrade.target to a release at most two minors after the current one, upgrade, then plan the next hop (e.g. 1.8 -> 1.10 -> 1.11)",
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
    client_versions(plan, out);
    raft_protocols(plan, out);
}

/// R006 (clients newer than the servers) and R007 (clients older than the target's minimum).
fn client_versions(plan: &Plan, out: &mut Vec<Finding>) {
    use Severity::*;
    let (p, from, to) = (
        plan.cluster.product,
        plan.cluster.version,
        plan.upgrade.target,
    );
    let clients = plan.client_version();
    // Client-only nodes exist when the plan counts them, or when it lists jobs (they run on
    // clients). A client newer than the servers it registers with is unsupported: servers
    // must be >= clients (hashicorp/nomad#4364, #1976).
    let has_clients = plan.clients.count > 0 || !plan.jobs.is_empty();
    if has_clients && (clients > from || clients > to) {
        out.push(finding(
            "R006",
            Error,
            "clients.version",
            format!("clients run {clients}, newer than servers ({from} now, {to} after)"),
            "servers must be >= clients: set clients.version to what the clients run, and upgrade clients only after the servers",
        ));
    }
    let min = line_info(p, to).ok().and_then(|l| l.min_client);
    if let Some(min) = min.filter(|m| plan.clients.count > 0 && clients < *m) {
        out.push(finding(
            "R007",
            Error,
            "clients.version",
            format!("{to} servers drop clients older than {min}; clients run {clients}"),
            "upgrade the clients to the minimum first (then set clients.version), or pick an earlier target",
        ));
    }
}

/// R008 (a raft protocol the version does not run, or lowered) and R015 (nothing to upgrade).
fn raft_protocols(plan: &Plan, out: &mut Vec<Finding>) {
    use Severity::*;
    let (p, from, to) = (
        plan.cluster.product,
        plan.cluster.version,
        plan.upgrade.target,
    );
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
            out.push(finding_owned(
                "R008",
                Error,
                field,
                format!("{p} {v} needs raft protocol >= {min}, plan has {pr}"),
                format!(
                    "roll the servers to raft protocol {min} on a version that supports both, then set {field} = {min}"
                ),
            ));
        }
    }
    if proto < plan.cluster.raft_protocol {
        out.push(finding(
            "R008",
            Error,
            "upgrade.target_raft_protocol",
            "lowering the raft protocol is refused (server/raft/version)".into(),
            "remove upgrade.target_raft_protocol (keep the protocol the servers run)",
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
    health_gate(plan, out);
    if u.parallel > 1 {
        out.push(finding(
            "R011",
            Error,
            "upgrade.parallel",
            format!("{} servers at once", u.parallel),
            "set parallel = 1",
        ));
    }
    transfer_and_rollback(plan, out);
}

/// R009 (a gate shorter than stabilization) and R010 (a gate on stale health or a non-voter).
fn health_gate(plan: &Plan, out: &mut Vec<Finding>) {
    use Severity::*;
    let u = &plan.upgrade;
    let stab = plan.cluster.autopilot.server_stabilization_time;
    if u.gate.stable_for < stab {
        out.push(finding_owned("R009", Warning, "upgrade.gate.stable_for",
            format!("stable_for {} < server_stabilization_time {}: the next stop can come before promotion",
                fmt_ns(u.gate.stable_for), fmt_ns(stab)),
            format!("set stable_for = \"{}\" in [upgrade.gate] (at least server_stabilization_time)", fmt_ns(stab))));
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
        out.push(finding_owned(
            "R010",
            Error,
            "upgrade.gate",
            why,
            format!(
                "in [upgrade.gate]: require_fresh_health = true, require_voter = true, stable_for = \"{}\"",
                fmt_ns(stab.max(10_000_000_000))
            ),
        ));
    }
}

/// R013 (no transfer API), R016 (in-place rollback impossible) and R014 (restore, no snapshot).
fn transfer_and_rollback(plan: &Plan, out: &mut Vec<Finding>) {
    use Severity::*;
    let u = &plan.upgrade;
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
            "set transfer_leadership = false; the leader is still upgraded last",
        ));
    }
    let in_place = in_place_rollback_safe(
        plan.cluster.product,
        plan.cluster.version,
        plan.upgrade.target,
    );
    if u.rollback == Rollback::ReinstallAndRestore && u.snapshot_first && !in_place {
        out.push(finding("R016", Warning, "upgrade.rollback",
            format!("{} writes log entries or snapshots {} cannot read: an in-place reinstall would panic, so rehearse will halt instead of rolling back",
                u.target, plan.cluster.version),
            "set rollback = \"halt\" and plan a re-provisioning rollback by hand (old binary, fresh data dir, restore the pre-upgrade snapshot)"));
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
        // The procedure never stops a server unless the others form a healthy quorum, whatever
        // allow_zero_tolerance says, so the only way through is more servers.
        let add = 3 - n.min(3);
        out.push(finding_owned(
            "R012",
            Severity::Error,
            "cluster.servers",
            format!("{n} server(s): stopping any server loses quorum, so rehearse will not stop one"),
            format!(
                "join {add} more server(s) at {} (3 in all) and list them in cluster.servers, then upgrade; remove them afterwards if you must",
                plan.cluster.version
            ),
        ));
    } else if tolerance_while_one_down == 0 && !plan.upgrade.allow_zero_tolerance {
        // 3 and 4 servers: with one down the rest are exactly a quorum. The next size with
        // tolerance 1 while one is down is 5.
        out.push(finding_owned(
            "R012",
            Severity::Warning,
            "cluster.servers",
            format!("{n} servers: failure tolerance is 0 while each server is down"),
            format!(
                "accept it with allow_zero_tolerance = true in [upgrade], or join {} more server(s) at {} (5 in all) for the upgrade",
                5 - n,
                plan.cluster.version
            ),
        ));
    }
}

/// Rules about the clients' work: server-clients and their drains.
fn workload(plan: &Plan, out: &mut Vec<Finding>) {
    let clients: Vec<&str> = plan
        .cluster
        .servers
        .iter()
        .filter(|s| s.client)
        .map(|s| s.name.as_str())
        .collect();
    if clients.is_empty() || plan.cluster.product != rehearse_model::versions::Product::Nomad {
        return;
    }
    let d = &plan.upgrade.drain;
    if !d.enabled {
        out.push(finding_owned(
            "R017",
            Severity::Error,
            "upgrade.drain.enabled",
            format!(
                "{} also run(s) a client, and [upgrade.drain] is disabled: stopping it kills its allocations without migrating them (lost allocations)",
                clients.join(", ")
            ),
            format!(
                "set enabled = true in [upgrade.drain] (deadline = \"{}\"), so the allocations move to other clients before the server stops",
                fmt_ns(d.deadline)
            ),
        ));
        return;
    }
    if let Some((group, need)) = plan.longest_drain_need().filter(|&(_, n)| d.deadline < n) {
        // Nomad stops what is left on the node when the deadline passes (`nomad node drain
        // -deadline`, the drainer's deadline path): those allocations are killed together
        // instead of migrated a batch at a time (the simulator's `DrainDeadline` entry).
        out.push(finding_owned(
            "R018",
            Severity::Warning,
            "upgrade.drain.deadline",
            format!(
                "deadline {} is shorter than the {} group {group} may need to drain (its allocations, migrate.max_parallel at a time, each batch its kill_timeout plus migrate.min_healthy_time when set, if all of them run on the node): Nomad stops what is left at the deadline, and those allocations are killed, not migrated",
                fmt_ns(d.deadline),
                fmt_ns(need)
            ),
            format!(
                "set deadline = \"{}\" or more in [upgrade.drain]",
                fmt_ns(need)
            ),
        ));
    }
}

/// Rules about `[upgrade.clients]`.
fn client_batches(plan: &Plan, out: &mut Vec<Finding>) {
    let Some(c) = &plan.upgrade.clients else {
        return;
    };
    let n = plan.clients.count;
    if plan.jobs.is_empty() || c.max_parallel < n || n == 0 {
        return;
    }
    // A batch drains all its nodes at once: with every client in it, the drained
    // allocations can only go to servers that are also clients, which the server phase
    // drained and left ineligible.
    let fix = if n >= 2 {
        format!(
            "set max_parallel = {} or less in [upgrade.clients], so the allocations of a batch have clients to move to",
            n - 1
        )
    } else {
        "add client nodes ([clients] count = 2 or more), so a drained client's allocations have somewhere to move".to_string()
    };
    out.push(finding_owned(
        "R019",
        Severity::Warning,
        "upgrade.clients.max_parallel",
        format!(
            "max_parallel = {} with {n} client nodes and jobs declared: every client is drained at once, so their allocations have nowhere to migrate and the drains cannot complete before the deadline stops them",
            c.max_parallel
        ),
        fix,
    ));
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
        // No client-only nodes counted, but jobs to run: the clients exist.
        let newer = "[clients]\nversion = \"1.11.0\"";
        assert!(fires("R006", &plan(newer, R006_JOBS, 5)));
        assert!(!fires("R006", &plan(newer, "", 5)), "no clients at all");
        let p = plan("[clients]\ncount = 4\nversion = \"1.5.3\"", "", 5);
        assert!(fires("R007", &p) && !fires("R006", &p));
        assert!(!fires("R007", &plan("[clients]\ncount = 4", "", 5)));
    }

    #[test]
    fn r008_raft_protocol() {
        assert!(fires("R008", &plan("raft_protocol = 2", "", 5)));
        assert!(fires("R008", &plan("", "target_raft_protocol = 2", 5)));
        assert!(!fires("R008", &plan("raft_protocol = 3", "", 5)));
        // The roll R008 advises: protocol 2 → 3 on a line that runs both (Nomad 1.3).
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/plans/incidents/nomad-1.3-raft-protocol-2-to-3.toml"
        ))
        .unwrap();
        let roll = Plan::from_str_named(&text, "roll.toml").unwrap();
        assert!(lint(&roll).is_empty(), "{:?}", lint(&roll));
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

    fn server_client(p: &mut Plan) {
        p.cluster.servers[2].client = true;
    }

    const WEB_30S: &str = "[[jobs]]\nname = \"web\"\n[[jobs.groups]]\nname = \"api\"\ncount = 3\nkill_timeout = \"30s\"\nmigrate = { min_healthy_time = \"20s\" }\n";

    #[test]
    fn r017_server_client_not_drained() {
        let mut p = plan("", "[upgrade.drain]\nenabled = false", 5);
        assert!(!fires("R017", &p), "no server is a client");
        server_client(&mut p);
        let f = lint(&p);
        let r = f.iter().find(|f| f.id == "R017").expect("R017 fires");
        assert_eq!(r.severity, Severity::Error);
        assert!(r.message.contains("s3") && r.message.contains("lost allocations"));
        let mut p = plan("", "", 5);
        server_client(&mut p);
        assert!(!fires("R017", &p));
    }

    #[test]
    fn r018_drain_deadline_short() {
        let mut p = plan(
            "",
            &format!("[upgrade.drain]\ndeadline = \"40s\"\n{WEB_30S}"),
            5,
        );
        assert!(!fires("R018", &p), "no server is a client");
        server_client(&mut p);
        let f = lint(&p);
        let r = f.iter().find(|f| f.id == "R018").expect("R018 fires");
        assert!(
            // 3 allocations, one at a time, each 30 s + 20 s.
            r.message.contains("2m 30s") && r.message.contains("web.api"),
            "{}",
            r.message
        );
        // Without the migrate block, only the kill_timeout counts: 3 x 30 s.
        let text = WEB_30S.replace("migrate = { min_healthy_time = \"20s\" }\n", "");
        let mut p = plan(
            "",
            &format!("[upgrade.drain]\ndeadline = \"90s\"\n{text}"),
            5,
        );
        server_client(&mut p);
        assert!(!fires("R018", &p));
        // Three allocations moved one at a time may all be on the node: 3 x 30 s.
        let three = "[[jobs]]\nname = \"web\"\n[[jobs.groups]]\nname = \"api\"\ncount = 3\nkill_timeout = \"30s\"\n";
        for (deadline, fires_expected) in [("60s", true), ("90s", false)] {
            let mut p = plan(
                "",
                &format!("[upgrade.drain]\ndeadline = \"{deadline}\"\n{three}"),
                5,
            );
            server_client(&mut p);
            assert_eq!(fires("R018", &p), fires_expected, "deadline {deadline}");
        }
        // Two at a time: 2 batches; a system job has one allocation per node whatever its count.
        let pairs = three.replace("count = 3\n", "count = 3\nmigrate = { max_parallel = 2 }\n");
        // 2 batches of 30 s plus the migrate block's default min_healthy_time (10 s).
        for (deadline, fires_expected) in [("79s", true), ("80s", false)] {
            let mut p = plan(
                "",
                &format!("[upgrade.drain]\ndeadline = \"{deadline}\"\n{pairs}"),
                5,
            );
            server_client(&mut p);
            assert_eq!(fires("R018", &p), fires_expected, "deadline {deadline}");
        }
        let system = three.replace("name = \"web\"\n", "name = \"web\"\ntype = \"system\"\n");
        let mut p = plan(
            "",
            &format!("[upgrade.drain]\ndeadline = \"30s\"\n{system}"),
            5,
        );
        server_client(&mut p);
        assert!(!fires("R018", &p), "one system allocation per node");
        // No jobs: nothing to compare with.
        let mut p = plan("", "[upgrade.drain]\ndeadline = \"1s\"", 5);
        server_client(&mut p);
        assert!(!fires("R018", &p));
    }

    /// One rule's own example: a plan that trips it, the fragment its fix must tell the
    /// operator to write, and the plan with that fix applied.
    struct FixCase {
        id: &'static str,
        /// (cluster extra, upgrade extra, servers) of the plan that trips the rule.
        bad: (&'static str, &'static str, usize),
        /// Text the fix hint must contain: the edit below, in the hint's words.
        says: &'static [&'static str],
        /// The same plan with the hint applied.
        fixed: (&'static str, &'static str, usize),
    }

    const FIX_CASES: &[FixCase] = &[
        FixCase {
            id: "R001",
            bad: ("", "", 5),
            says: &["upgrade.target", "two minors"],
            fixed: ("", "", 5),
        },
        FixCase {
            id: "R002",
            bad: ("", "", 5),
            says: &["re-provisioning"],
            fixed: ("", "", 5),
        },
        FixCase {
            id: "R003",
            bad: ("", "", 5),
            says: &["1.9.3"],
            fixed: ("", "", 5),
        },
        FixCase {
            id: "R004",
            bad: ("", "snapshot_first = false", 5),
            says: &["snapshot_first = true"],
            fixed: ("", "snapshot_first = true", 5),
        },
        FixCase {
            id: "R005",
            bad: ("", "order = \"leader-first\"", 5),
            says: &["order = \"followers-then-leader\""],
            fixed: ("", "order = \"followers-then-leader\"", 5),
        },
        FixCase {
            id: "R006",
            bad: ("[clients]\ncount = 4\nversion = \"1.11.0\"", "", 5),
            says: &["clients.version"],
            fixed: ("[clients]\ncount = 4\nversion = \"1.9.7\"", "", 5),
        },
        FixCase {
            id: "R006",
            bad: ("[clients]\nversion = \"1.11.0\"", R006_JOBS, 5),
            says: &["clients.version"],
            fixed: ("[clients]\nversion = \"1.9.7\"", R006_JOBS, 5),
        },
        FixCase {
            id: "R007",
            bad: ("[clients]\ncount = 4\nversion = \"1.5.3\"", "", 5),
            says: &["clients.version"],
            fixed: ("[clients]\ncount = 4\nversion = \"1.9.7\"", "", 5),
        },
        FixCase {
            id: "R008",
            bad: ("", "target_raft_protocol = 2", 5),
            says: &["upgrade.target_raft_protocol = 3"],
            fixed: ("", "target_raft_protocol = 3", 5),
        },
        FixCase {
            id: "R009",
            bad: ("", "[upgrade.gate]\nstable_for = \"1ms\"", 5),
            says: &["stable_for 1ms", "stable_for = \"10s\""],
            fixed: ("", "[upgrade.gate]\nstable_for = \"10s\"", 5),
        },
        FixCase {
            id: "R010",
            bad: ("", "[upgrade.gate]\nrequire_voter = false", 5),
            says: &["require_voter = true", "stable_for = \"10s\""],
            fixed: (
                "",
                "[upgrade.gate]\nrequire_voter = true\nstable_for = \"10s\"",
                5,
            ),
        },
        FixCase {
            id: "R011",
            bad: ("", "parallel = 2", 5),
            says: &["parallel = 1"],
            fixed: ("", "parallel = 1", 5),
        },
        FixCase {
            id: "R012",
            bad: ("", "allow_zero_tolerance = true", 1),
            says: &["join 2 more server(s) at 1.9.7 (3 in all)"],
            fixed: ("", "allow_zero_tolerance = true", 3),
        },
        FixCase {
            id: "R012",
            bad: ("", "", 2),
            says: &["join 1 more server(s) at 1.9.7 (3 in all)"],
            fixed: ("", "allow_zero_tolerance = true", 3),
        },
        FixCase {
            id: "R012",
            bad: ("", "", 3),
            says: &[
                "allow_zero_tolerance = true",
                "join 2 more server(s) at 1.9.7 (5 in all)",
            ],
            fixed: ("", "", 5),
        },
        FixCase {
            id: "R012",
            bad: ("", "", 4),
            says: &[
                "allow_zero_tolerance = true",
                "join 1 more server(s) at 1.9.7 (5 in all)",
            ],
            fixed: ("", "allow_zero_tolerance = true", 4),
        },
        FixCase {
            id: "R013",
            bad: ("", "transfer_leadership = true", 5),
            says: &["transfer_leadership = false"],
            fixed: ("", "transfer_leadership = false", 5),
        },
        FixCase {
            id: "R014",
            bad: (
                "",
                "snapshot_first = false\nrollback = \"reinstall-and-restore\"",
                5,
            ),
            says: &["snapshot_first = true"],
            fixed: (
                "",
                "snapshot_first = true\nrollback = \"reinstall-and-restore\"",
                5,
            ),
        },
        FixCase {
            id: "R015",
            bad: ("", "", 5),
            says: &["nothing to upgrade"],
            fixed: ("", "", 5),
        },
        FixCase {
            id: "R016",
            bad: ("", "rollback = \"reinstall-and-restore\"", 5),
            says: &["rollback = \"halt\""],
            fixed: ("", "rollback = \"halt\"", 5),
        },
        FixCase {
            id: "R017",
            bad: ("", "[upgrade.drain]\nenabled = false", 5),
            says: &["enabled = true", "[upgrade.drain]"],
            fixed: ("", "[upgrade.drain]\nenabled = true", 5),
        },
        FixCase {
            id: "R018",
            bad: ("", R018_BAD, 5),
            says: &["deadline = \"50s\" or more", "[upgrade.drain]"],
            fixed: ("", R018_FIXED, 5),
        },
        FixCase {
            id: "R019",
            bad: ("[clients]\ncount = 3", R019_BAD, 5),
            says: &["max_parallel = 2 or less", "[upgrade.clients]"],
            fixed: ("[clients]\ncount = 3", R019_FIXED, 5),
        },
    ];

    const R019_BAD: &str = "[upgrade.clients]\nmax_parallel = 3\n[[jobs]]\nname = \"web\"\n[[jobs.groups]]\nname = \"api\"\n";
    const R019_FIXED: &str = "[upgrade.clients]\nmax_parallel = 2\n[[jobs]]\nname = \"web\"\n[[jobs.groups]]\nname = \"api\"\n";

    #[test]
    fn r019_client_batch_too_wide() {
        let p = plan("[clients]\ncount = 3", R019_BAD, 5);
        assert!(fires("R019", &p));
        // Without jobs nothing has to migrate.
        let p = plan(
            "[clients]\ncount = 3",
            "[upgrade.clients]\nmax_parallel = 3",
            5,
        );
        assert!(!fires("R019", &p));
        // Without the table the client phase drains nothing.
        assert!(!fires("R019", &plan("[clients]\ncount = 3", R006_JOBS, 5)));
        let one = plan("[clients]\ncount = 1", R019_FIXED, 5);
        let f = lint(&one);
        assert!(
            f.iter()
                .any(|f| f.id == "R019" && f.fix.contains("count = 2"))
        );
    }

    const R006_JOBS: &str = "[[jobs]]\nname = \"web\"\n[[jobs.groups]]\nname = \"api\"\n";
    const R018_BAD: &str = "[upgrade.drain]\ndeadline = \"40s\"\n[[jobs]]\nname = \"web\"\n[[jobs.groups]]\nname = \"api\"\nkill_timeout = \"30s\"\nmigrate = { min_healthy_time = \"20s\" }\n";
    const R018_FIXED: &str = "[upgrade.drain]\ndeadline = \"50s\"\n[[jobs]]\nname = \"web\"\n[[jobs.groups]]\nname = \"api\"\nkill_timeout = \"30s\"\nmigrate = { min_healthy_time = \"20s\" }\n";

    /// Versions a case needs besides its text (the text form cannot set them all).
    fn versions_for(id: &str, fixed: bool, p: &mut Plan) {
        let v = |s: &str| s.parse().unwrap();
        match (id, fixed) {
            ("R001", false) => (p.cluster.version, p.upgrade.target) = (v("1.7.7"), v("1.10.3")),
            ("R001", true) => (p.cluster.version, p.upgrade.target) = (v("1.7.7"), v("1.9.7")),
            ("R002", false) => p.upgrade.target = v("1.9.1"),
            // The hint's re-provisioning is outside the plan; the fixed plan goes forward.
            ("R002", true) => p.upgrade.target = v("1.10.3"),
            ("R003", _) => {
                p.cluster.version = v("1.8.4");
                p.upgrade.target = v(if fixed { "1.9.3" } else { "1.9.2" });
            }
            ("R013", _) => (p.cluster.version, p.upgrade.target) = (v("1.6.5"), v("1.7.7")),
            ("R015", false) => p.upgrade.target = p.cluster.version,
            // 1.8 -> 1.10 changes the entry schema: the old version cannot read it.
            ("R016", _) => p.cluster.version = v("1.8.4"),
            // A drain only concerns a server that also runs a client.
            ("R017" | "R018", _) => server_client(p),
            _ => {}
        }
    }

    #[test]
    fn every_fix_hint_applied_to_its_example_makes_the_finding_go_away() {
        for c in FIX_CASES {
            let mut bad = plan(c.bad.0, c.bad.1, c.bad.2);
            versions_for(c.id, false, &mut bad);
            let found: Vec<Finding> = lint(&bad).into_iter().filter(|f| f.id == c.id).collect();
            assert!(!found.is_empty(), "{}: the example does not trip it", c.id);
            let text = found
                .iter()
                .map(|f| format!("{} / fix: {}", f.message, f.fix))
                .collect::<Vec<_>>()
                .join("\n");
            for s in c.says {
                assert!(text.contains(s), "{}: hint lacks {s:?}: {text}", c.id);
            }
            let mut fixed = plan(c.fixed.0, c.fixed.1, c.fixed.2);
            versions_for(c.id, true, &mut fixed);
            assert!(
                !fires(c.id, &fixed),
                "{}: still fires after the fix: {:?}",
                c.id,
                lint(&fixed)
            );
        }
        for (id, _, _) in RULES {
            assert!(
                FIX_CASES.iter().any(|c| c.id == *id),
                "{id} has no fix case"
            );
        }
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
