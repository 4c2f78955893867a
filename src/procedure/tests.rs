//! Pure tests of the state machine with hand-built observations (no simulator).

use super::*;
use crate::plan::Plan;
use rehearse_model::api::{
    AgentSelf, ApiError, AutopilotHealth, Member, RaftConfiguration, RaftServer, RaftState,
    RaftStats, ServerHealth, SharedStr,
};

const PLAN: &str = r#"
[cluster]
product = "nomad"
version = "1.9.7"
servers = [{ name = "s1" }, { name = "s2" }, { name = "s3" }]
[upgrade]
target = "1.10.3"
rollback = "reinstall-and-restore"
"#;

fn cfg() -> ProcedureConfig {
    ProcedureConfig::from_plan(&Plan::from_str_named(PLAN, "t").unwrap())
}

/// A tiny cluster description to build views from.
#[derive(Clone)]
struct Fake {
    leader: &'static str,
    /// (name, version, up, voter, healthy, stable_since_ms, last_index)
    servers: Vec<(&'static str, Version, bool, bool, bool, u64, u64)>,
    /// Servers no longer in the Raft configuration (autopilot's dead-server cleanup).
    removed: Vec<&'static str>,
}

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

impl Fake {
    fn healthy() -> Fake {
        let old = v("1.9.7");
        Fake {
            leader: "s1",
            servers: vec![
                ("s1", old, true, true, true, 0, 100),
                ("s2", old, true, true, true, 0, 100),
                ("s3", old, true, true, true, 0, 100),
            ],
            removed: Vec::new(),
        }
    }

    fn set(
        &mut self,
        name: &str,
        f: impl Fn(&mut (&'static str, Version, bool, bool, bool, u64, u64)),
    ) {
        for s in self.servers.iter_mut().filter(|s| s.0 == name) {
            f(s);
        }
    }

    fn view(&self) -> ClusterView {
        ClusterView {
            leader: Some(self.leader.into()),
            members: Ok(self.members()),
            raft: Ok(self.raft()),
            health: Ok(self.health()),
            agents: self.agents(),
            scheduler: None,
            drained: Vec::new(),
            write_accepted: Some(true),
            nodes: Readout::NotApplicable,
            allocs_running: Readout::NotApplicable,
            workload: Readout::NotApplicable,
        }
    }

    /// The autopilot health report: every server with its health and voter flag.
    fn health(&self) -> AutopilotHealth {
        let voters: Vec<_> = self.servers.iter().filter(|s| s.3).collect();
        let healthy_voters = voters.iter().filter(|s| s.4).count() as i64;
        AutopilotHealth {
            healthy: self.servers.iter().all(|s| s.4),
            failure_tolerance: healthy_voters - (voters.len() / 2 + 1) as i64,
            leader: Some(self.leader.into()),
            voters: voters.iter().map(|s| s.0.into()).collect(),
            servers: self
                .servers
                .iter()
                .map(|s| ServerHealth {
                    id: s.0.into(),
                    name: format!("{}.global", s.0).into(),
                    address: SharedStr::default(),
                    serf_status: SerfStatus::Alive,
                    version: s.1,
                    leader: s.0 == self.leader,
                    last_contact_ms: Some(10),
                    last_term: 2,
                    last_index: s.6,
                    healthy: s.4,
                    voter: s.3,
                    stable_since_ms: Some(s.5),
                })
                .collect(),
        }
    }

    /// The Serf member list: every server alive, with the version it runs.
    fn members(&self) -> Vec<Member> {
        self.servers
            .iter()
            .map(|s| Member {
                name: format!("{}.global", s.0).into(),
                addr: SharedStr::default(),
                status: SerfStatus::Alive,
                build: s.1,
                raft_vsn: 3,
                id: s.0.into(),
                nonvoter: false,
            })
            .collect()
    }

    /// The Raft configuration: every server not removed from it.
    fn raft(&self) -> RaftConfiguration {
        RaftConfiguration {
            index: 1,
            servers: self
                .servers
                .iter()
                .filter(|s| !self.removed.contains(&s.0))
                .map(|s| RaftServer {
                    id: s.0.into(),
                    node: format!("{}.global", s.0).into(),
                    address: SharedStr::default(),
                    leader: s.0 == self.leader,
                    voter: s.3,
                    raft_protocol: 3,
                })
                .collect(),
        }
    }

    /// Each server's agent self-report, or an unreachable error for a server that is down.
    fn agents(&self) -> Vec<(SharedStr, Result<AgentSelf, ApiError>)> {
        self.servers
            .iter()
            .map(|s| {
                let a = if s.2 {
                    Ok(AgentSelf {
                        name: s.0.into(),
                        version: s.1,
                        raft: RaftStats {
                            state: if s.0 == self.leader {
                                RaftState::Leader
                            } else {
                                RaftState::Follower
                            },
                            term: 2,
                            last_log_index: s.6,
                            last_log_term: 2,
                            commit_index: s.6,
                            applied_index: s.6,
                            protocol_version: 3,
                            num_peers: 2,
                            last_contact_ms: Some(5),
                        },
                    })
                } else {
                    Err(ApiError::Unreachable {
                        addr: s.0.into(),
                        why: "connection refused".into(),
                    })
                };
                (s.0.into(), a)
            })
            .collect()
    }
}

fn obs(now_ms: u64, result: ActionResult, f: &Fake) -> Observation {
    Observation {
        now_ms,
        result,
        view: f.view(),
    }
}

fn snap() -> ActionResult {
    ActionResult::Snapshot(SnapshotInfo {
        index: 100,
        term: 2,
        format: 3,
        written_by: v("1.9.7"),
        digest: "abc".into(),
        size_bytes: 1,
    })
}

/// Drives the machine through preflight and the first follower's stop/replace/start.
fn to_first_gate(p: &mut Procedure, f: &Fake) -> String {
    assert_eq!(p.next(&obs(0, ActionResult::None, f)), Action::SaveSnapshot);
    let Action::Stop { server } = p.next(&obs(100, snap(), f)) else {
        panic!("expected a stop")
    };
    assert_ne!(server, "s1", "the leader is not first");
    assert!(matches!(
        p.next(&obs(200, ActionResult::Ok, f)),
        Action::ReplaceBinary { .. }
    ));
    assert!(matches!(
        p.next(&obs(300, ActionResult::Ok, f)),
        Action::Start { .. }
    ));
    server
}

#[test]
fn stale_health_right_after_a_restart_does_not_pass_the_gate() {
    let mut p = Procedure::new(cfg());
    let f = Fake::healthy();
    let s = to_first_gate(&mut p, &f);
    // Autopilot still says healthy with the old StableSince, but the server itself does not
    // answer yet (or still runs the old binary): the gate must hold for as long as that lasts.
    let mut stale = f.clone();
    stale.set(&s, |x| x.2 = false);
    for t in (400..60_000).step_by(2_000) {
        let a = p.next(&obs(t, ActionResult::Ok, &stale));
        assert!(
            matches!(a, Action::Observe { .. }),
            "gate passed on stale health at {t}: {a:?}"
        );
    }
}

#[test]
fn fresh_health_for_stable_for_passes_and_the_leader_goes_last() {
    let mut p = Procedure::new(cfg());
    let mut f = Fake::healthy();
    let mut order = Vec::new();
    let mut t = 0;
    let mut result = ActionResult::None;
    for _ in 0..500 {
        t += 500;
        let a = p.next(&obs(t, result.clone(), &f));
        result = ActionResult::Ok;
        match a {
            Action::SaveSnapshot => result = snap(),
            Action::ReplaceBinary { server, version } => {
                let name: &'static str = Box::leak(server.into_boxed_str());
                f.set(name, |x| x.1 = version);
                order.push(name);
            }
            Action::TransferLeadership { .. } => f.leader = "s2",
            Action::Done(summary) => {
                assert_eq!(summary.order.len(), 3);
                assert_eq!(order.last(), Some(&"s1"), "the leader last: {order:?}");
                return;
            }
            Action::Halt(r) => panic!("halted: {r}"),
            _ => {}
        }
    }
    panic!("did not finish");
}

#[test]
fn a_restarted_nonvoter_times_out_the_gate_naming_the_server() {
    let mut c = cfg();
    c.rollback = crate::plan::Rollback::Halt;
    let mut p = Procedure::new(c);
    let f = Fake::healthy();
    let s = to_first_gate(&mut p, &f);
    let mut nv = f.clone();
    nv.set(&s, |x| {
        x.1 = v("1.10.3");
        x.3 = false;
    });
    let mut last = Action::Observe { wait_ms: 0 };
    for t in (400..200_000).step_by(2_000) {
        last = p.next(&obs(t, ActionResult::Ok, &nv));
        if last.is_final() {
            break;
        }
    }
    match last {
        Action::Halt(HaltReason::GateTimeout { server, unmet }) => {
            assert_eq!(server, s);
            assert!(unmet.iter().any(|u| u.contains("voter")), "{unmet:?}");
        }
        other => panic!("expected a gate timeout, got {other:?}"),
    }
}

/// A gate whose raft configuration, serf members and autopilot health cannot be read (a token
/// that lost its operator rule mid-run) times out naming each list and why, never claiming
/// that every server left the configuration, and never stops another server.
#[test]
fn a_gate_that_cannot_read_the_cluster_halts_naming_what_it_could_not_read() {
    let mut c = cfg();
    c.rollback = crate::plan::Rollback::Halt;
    let mut p = Procedure::new(c);
    let f = Fake::healthy();
    let s = to_first_gate(&mut p, &f);
    let mut up = f.clone();
    up.set(&s, |x| x.1 = v("1.10.3"));
    let denied = || ApiError::Forbidden {
        addr: "http://127.0.0.1:4646".into(),
    };
    let mut last = Action::Observe { wait_ms: 0 };
    for t in (400..200_000).step_by(2_000) {
        let mut o = obs(t, ActionResult::Ok, &up);
        o.view.raft = Err(denied());
        o.view.members = Err(denied());
        o.view.health = Err(denied());
        last = p.next(&o);
        assert!(!matches!(last, Action::Stop { .. }), "{last:?}");
        if last.is_final() {
            break;
        }
    }
    let Action::Halt(HaltReason::GateTimeout { unmet, .. }) = last else {
        panic!("expected a gate timeout, got {last:?}")
    };
    for list in ["raft configuration", "serf members", "autopilot health"] {
        assert!(
            unmet
                .iter()
                .any(|u| u.starts_with(list) && u.contains("permission denied")),
            "{list}: {unmet:?}"
        );
    }
    assert!(
        !unmet
            .iter()
            .any(|u| u.contains("not a voter") || u.contains("not alive")),
        "{unmet:?}"
    );
}

#[test]
fn no_stop_while_another_server_is_down() {
    let mut c = cfg();
    c.snapshot_first = false;
    c.rollback = crate::plan::Rollback::Halt;
    c.allow_zero_tolerance = true;
    let mut p = Procedure::new(c);
    let mut f = Fake::healthy();
    f.set("s3", |x| x.4 = false);
    // Preflight needs a healthy cluster; it waits, then halts without stopping anything.
    let mut t = 0;
    loop {
        let a = p.next(&obs(t, ActionResult::None, &f));
        assert!(
            !matches!(a, Action::Stop { .. }),
            "stopped a server while s3 is unhealthy"
        );
        if a.is_final() {
            assert!(matches!(
                a,
                Action::Halt(HaltReason::PreflightFailed { .. })
            ));
            break;
        }
        t += 2_000;
        assert!(t < 1_000_000, "bounded");
    }
}

#[test]
fn unsafe_to_stop_halts_before_the_next_server() {
    let mut c = cfg();
    c.rollback = crate::plan::Rollback::Halt;
    let mut p = Procedure::new(c);
    let f = Fake::healthy();
    assert_eq!(
        p.next(&obs(0, ActionResult::None, &f)),
        Action::SaveSnapshot
    );
    // Between preflight and the first stop another server fails.
    let mut bad = f.clone();
    bad.set("s3", |x| x.4 = false);
    bad.set("s2", |x| x.4 = false);
    let mut t = 100;
    let mut result = snap();
    loop {
        let a = p.next(&obs(t, result, &bad));
        result = ActionResult::None;
        assert!(!matches!(a, Action::Stop { .. }));
        if let Action::Halt(r) = a {
            assert!(matches!(r, HaltReason::UnsafeToStop { .. }), "{r:?}");
            break;
        }
        t += 2_000;
        assert!(t < 1_000_000);
    }
}

#[test]
fn the_naive_gate_passes_on_stale_health() {
    let mut p = Procedure::new(Variant::GateHealthyOnly.apply(cfg()));
    let f = Fake::healthy();
    let s = to_first_gate(&mut p, &f);
    let mut stale = f.clone();
    stale.set(&s, |x| x.2 = false);
    let a = p.next(&obs(400, ActionResult::Ok, &stale));
    assert!(
        matches!(a, Action::Stop { .. }),
        "naive gate should move on at once: {a:?}"
    );
}

#[test]
fn two_at_a_time_stops_two() {
    let mut p = Procedure::new(Variant::TwoAtATime.apply(cfg()));
    let f = Fake::healthy();
    assert_eq!(
        p.next(&obs(0, ActionResult::None, &f)),
        Action::SaveSnapshot
    );
    assert!(matches!(p.next(&obs(1, snap(), &f)), Action::Stop { .. }));
    assert!(matches!(
        p.next(&obs(2, ActionResult::Ok, &f)),
        Action::Stop { .. }
    ));
}

#[test]
fn a_gate_timeout_rolls_back_and_restores_the_pre_upgrade_snapshot() {
    let mut p = Procedure::new(cfg());
    let f = Fake::healthy();
    let s = to_first_gate(&mut p, &f);
    let mut down = f.clone();
    down.set(&s, |x| x.2 = false);
    let mut t = 400;
    let mut saw_reinstall = false;
    let mut result = ActionResult::Ok;
    for _ in 0..1000 {
        let a = p.next(&obs(t, result.clone(), &down));
        result = ActionResult::Ok;
        t += 2_000;
        match a {
            Action::ReplaceBinary { server, version } => {
                assert_eq!(server, s);
                assert_eq!(version, v("1.9.7"));
                saw_reinstall = true;
                // the old binary comes back fine
                let name: &'static str = Box::leak(server.into_boxed_str());
                down.set(name, |x| x.2 = true);
            }
            Action::RestoreSnapshot { snapshot } => {
                assert!(saw_reinstall);
                assert_eq!(snapshot.index, 100, "the pre-upgrade snapshot");
            }
            Action::Halt(HaltReason::RolledBack { cause }) => {
                assert!(matches!(*cause, HaltReason::GateTimeout { .. }));
                return;
            }
            Action::Halt(r) => panic!("halted without rollback: {r}"),
            _ => {}
        }
    }
    panic!("did not finish");
}

#[test]
fn no_in_place_rollback_across_an_entry_schema_change() {
    let text = PLAN.replace("1.9.7", "1.8.4");
    let mut c = ProcedureConfig::from_plan(&Plan::from_str_named(&text, "t").unwrap());
    assert!(
        !c.in_place_rollback_safe,
        "1.8 -> 1.10 changes the entry schema"
    );
    c.from_version = v("1.9.7");
    let mut p = Procedure::new(c);
    let f = Fake::healthy();
    let s = to_first_gate(&mut p, &f);
    let mut down = f.clone();
    down.set(&s, |x| x.2 = false);
    let mut t = 400;
    loop {
        let a = p.next(&obs(t, ActionResult::Ok, &down));
        assert!(
            !matches!(a, Action::ReplaceBinary { .. }),
            "reinstalled in place"
        );
        if let Action::Halt(r) = a {
            assert!(matches!(r, HaltReason::GateTimeout { .. }), "{r:?}");
            assert!(p.notes().iter().any(|n| n.contains("rollback refused")));
            return;
        }
        t += 2_000;
        assert!(t < 1_000_000);
    }
}

#[test]
fn observation_errors_never_panic_and_are_bounded() {
    let mut p = Procedure::new(cfg());
    let err = || ApiError::NoLeader { addr: "x".into() };
    let view = ClusterView {
        leader: None,
        members: Err(err()),
        raft: Err(err()),
        health: Err(err()),
        agents: vec![],
        scheduler: Some(Err(err())),
        drained: vec![],
        nodes: Readout::NotApplicable,
        allocs_running: Readout::NotApplicable,
        workload: Readout::NotApplicable,
        write_accepted: Some(false),
    };
    let mut t = 0;
    for _ in 0..10_000 {
        let a = p.next(&Observation {
            now_ms: t,
            result: ActionResult::None,
            view: view.clone(),
        });
        if a.is_final() {
            return;
        }
        t += 2_000;
    }
    panic!("no halt on a cluster that never answers");
}

/// hashicorp/nomad#14293: a drain reports complete while allocations still run. The procedure
/// stops the server only once they have stopped; `drain-status-only` stops it at once.
#[test]
fn a_drained_server_client_is_stopped_only_once_its_allocations_have_stopped() {
    let text = PLAN
        .replace("{ name = \"s2\" }", "{ name = \"s2\", client = true }")
        .replace(
            "[upgrade]",
            "[upgrade]\ndrain = { enabled = true, deadline = \"5m\" }",
        );
    let plan = Plan::from_str_named(&text, "t").unwrap();
    for (variant, waits) in [(Variant::Safe, true), (Variant::DrainStatusOnly, false)] {
        let mut p = Procedure::new(variant.apply(ProcedureConfig::from_plan(&plan)));
        let f = Fake::healthy();
        assert_eq!(
            p.next(&obs(0, ActionResult::None, &f)),
            Action::SaveSnapshot
        );
        let a = p.next(&obs(100, snap(), &f));
        assert_eq!(
            a,
            Action::Drain {
                server: "s2".into()
            }
        );
        let mut drained = obs(200, ActionResult::Ok, &f);
        drained.view.drained = vec!["s2".into()];
        drained.view.allocs_running = Readout::Read(Ok(vec!["s2".into()]));
        let a = p.next(&drained);
        if waits {
            assert!(matches!(a, Action::Observe { .. }), "{a:?}");
            assert!(p.notes().iter().any(|n| n.contains("nomad#14293")));
            drained.now_ms = 2_200;
            drained.view.allocs_running = Readout::Read(Ok(Vec::new()));
            let a = p.next(&drained);
            assert_eq!(
                a,
                Action::Stop {
                    server: "s2".into()
                }
            );
        } else {
            assert_eq!(
                a,
                Action::Stop {
                    server: "s2".into()
                }
            );
        }
    }
}

/// Between a stop and the start that follows it the procedure asks for no cluster reads (and
/// decides the same on a view that holds none); the gate asks again.
#[test]
fn install_and_start_read_nothing_of_the_cluster_the_gate_does() {
    let mut p = Procedure::new(cfg());
    let f = Fake::healthy();
    let mut t = 0;
    let mut result = ActionResult::None;
    let mut seen = Vec::new();
    for _ in 0..200 {
        t += 500;
        let reads = p.reads();
        let mut o = obs(t, result.clone(), &f);
        if !reads.cluster {
            let names: Vec<SharedStr> = ["s1", "s2", "s3"].map(SharedStr::from).to_vec();
            o.view = ClusterView::not_read(&names, true);
        }
        result = ActionResult::Ok;
        let a = p.next(&o);
        seen.push((reads.cluster, a.clone()));
        match a {
            Action::SaveSnapshot => result = snap(),
            Action::Start { .. } => break,
            Action::Halt(r) => panic!("halted: {r}"),
            _ => {}
        }
    }
    let acts: Vec<&(bool, Action)> = seen
        .iter()
        .filter(|(_, a)| !matches!(a, Action::Observe { .. }))
        .collect();
    let n = acts.len();
    assert!(n >= 3, "{acts:?}");
    // The stop was chosen on a read view; install and start on views that read nothing.
    assert!(
        matches!(acts[n - 3], (true, Action::Stop { .. })),
        "{acts:?}"
    );
    assert!(
        matches!(acts[n - 2], (false, Action::ReplaceBinary { .. })),
        "{acts:?}"
    );
    assert!(
        matches!(acts[n - 1], (false, Action::Start { .. })),
        "{acts:?}"
    );
    // The gate (the next observation) reads again.
    assert!(p.reads().cluster);
}

/// Time that goes backwards halts the procedure instead of corrupting its waits.
#[test]
fn a_clock_that_goes_back_halts() {
    let mut p = Procedure::new(cfg());
    let f = Fake::healthy();
    assert!(!p.next(&obs(5_000, ActionResult::None, &f)).is_final());
    match p.next(&obs(4_000, ActionResult::None, &f)) {
        Action::Halt(HaltReason::ClockWentBack { from_ms, to_ms }) => {
            assert_eq!((from_ms, to_ms), (5_000, 4_000));
        }
        other => panic!("{other:?}"),
    }
}

/// A driver that cannot read what a check needs makes the procedure halt naming it; it never
/// passes the check by skipping it. A product without the thing (Consul) is not a halt.
#[test]
fn a_check_whose_input_is_unavailable_halts_naming_it() {
    let text = PLAN
        .replace("{ name = \"s2\" }", "{ name = \"s2\", client = true }")
        // Halting after a drain would otherwise roll the drained batch back first.
        .replace("reinstall-and-restore", "halt")
        .replace(
            "[upgrade]",
            "[upgrade]\ndrain = { enabled = true, deadline = \"5m\" }",
        );
    let plan = Plan::from_str_named(&text, "t").unwrap();
    for (allocs, halts) in [
        (
            Readout::Unavailable {
                why: "this driver reads no allocations".into(),
            },
            true,
        ),
        (Readout::NotRead, true),
        (Readout::NotApplicable, false),
    ] {
        let mut p = Procedure::new(ProcedureConfig::from_plan(&plan));
        let f = Fake::healthy();
        assert_eq!(
            p.next(&obs(0, ActionResult::None, &f)),
            Action::SaveSnapshot
        );
        assert!(matches!(
            p.next(&obs(100, snap(), &f)),
            Action::Drain { .. }
        ));
        let mut o = obs(200, ActionResult::Ok, &f);
        o.view.drained = vec!["s2".into()];
        o.view.allocs_running = allocs.clone();
        match p.next(&o) {
            Action::Halt(r) if halts => {
                let text = r.to_string();
                assert!(text.contains("cannot read allocations"), "{text}");
                assert!(text.contains("the drain"), "{text}");
            }
            Action::Stop { server } if !halts => assert_eq!(server, "s2"),
            other => panic!("{allocs:?}: {other:?}"),
        }
    }
}

/// hashicorp/nomad#24231: after the client upgrade, a node still `ready` on the old version
/// holds the procedure until it is marked down, or halts it at the timeout.
#[test]
fn the_client_check_waits_for_ready_nodes_on_the_target_and_notes_down_ones() {
    use rehearse_model::api::{NodeInfo, NodeStatus};
    let mut p = Procedure::new(cfg());
    let mut f = Fake::healthy();
    let mut t = 0;
    let mut result = ActionResult::None;
    let node = |status, version: &str| NodeInfo {
        name: "c1".into(),
        status,
        version: v(version),
        drain: false,
        eligible: true,
    };
    let mut clients_from = None;
    for _ in 0..2_000 {
        t += 500;
        let mut o = obs(t, result.clone(), &f);
        if let Some(from) = clients_from {
            // c1 is gone: ready on the old version until the 3rd minute, then down.
            let down = t > from + 180_000;
            let n = if down {
                node(NodeStatus::Down, "1.9.7")
            } else {
                node(NodeStatus::Ready, "1.9.7")
            };
            o.view.nodes = Readout::Read(Ok(vec![
                n,
                NodeInfo {
                    name: "c2".into(),
                    ..node(NodeStatus::Ready, "1.10.3")
                },
            ]));
        }
        result = ActionResult::Ok;
        match p.next(&o) {
            Action::SaveSnapshot => result = snap(),
            Action::ReplaceBinary { server, version } => {
                let name: &'static str = Box::leak(server.into_boxed_str());
                f.set(name, |x| x.1 = version);
            }
            Action::TransferLeadership { .. } => f.leader = "s2",
            Action::UpgradeClients { .. } => clients_from = Some(t),
            Action::Done(_) => {
                let from = clients_from.expect("clients upgraded");
                assert!(t > from + 180_000, "done before c1 was down");
                assert!(
                    p.notes()
                        .iter()
                        .any(|n| n == "client c1 is down: not upgraded")
                );
                return;
            }
            Action::Halt(r) => panic!("halted: {r}"),
            _ => {}
        }
    }
    panic!("did not finish");
}

/// `base` cuts at the first `.`, as `split('.').next()` does.
#[test]
fn base_is_the_name_before_the_first_dot() {
    for name in [
        "s1.global",
        "s1",
        "",
        ".global",
        "a.b.c",
        "é.x",
        "sé",
        "s1.",
    ] {
        assert_eq!(base(name), name.split('.').next().unwrap_or(name), "{name}");
    }
}

/// Drives a 3-server upgrade with the target's entries unreadable by the old version. Once the
/// first follower is through and the second is in its gate, the leader (s1, still old) freezes
/// and autopilot removes it; the first follower leads. Returns the actions from then on.
fn removed_old_leader(client: bool) -> Vec<Action> {
    let mut c = cfg();
    c.in_place_rollback_safe = false;
    c.rollback = crate::plan::Rollback::Halt;
    if client {
        c.servers[0].also_client = true;
        c.drain_deadline_ms = Some(60_000);
    }
    let mut p = Procedure::new(c);
    let mut f = Fake::healthy();
    let mut t = 0;
    let mut result = ActionResult::None;
    let mut replaced = Vec::new();
    let mut after = Vec::new();
    let mut removed_once = false;
    for _ in 0..400 {
        t += 500;
        let a = p.next(&obs(t, result.clone(), &f));
        result = ActionResult::Ok;
        if replaced.len() == 2 && !removed_once && matches!(a, Action::Observe { .. }) {
            // The second follower is in its gate: s1 freezes and is removed.
            let first: &'static str = replaced[0];
            f.leader = first;
            f.set("s1", |x| {
                x.2 = false;
                x.4 = false;
            });
            f.removed.push("s1");
            removed_once = true;
        }
        if removed_once {
            after.push(a.clone());
        }
        match &a {
            Action::SaveSnapshot => result = snap(),
            Action::ReplaceBinary { server, version } => {
                let name: &'static str = Box::leak(server.clone().into_boxed_str());
                f.set(name, |x| x.1 = *version);
                replaced.push(name);
            }
            Action::Start { server } if server == "s1" => {
                // Back on the target: it answers, autopilot adds it again.
                f.set("s1", |x| {
                    x.2 = true;
                    x.4 = true;
                });
                f.removed.clear();
            }
            _ => {}
        }
        if a.is_final() {
            break;
        }
    }
    after
}

#[test]
fn an_old_server_autopilot_removed_is_upgraded_before_it_can_rejoin() {
    let after = removed_old_leader(false);
    let touched: Vec<&Action> = after
        .iter()
        .filter(|a| !matches!(a, Action::Observe { .. }))
        .collect();
    // s1 is stopped, gets the target and starts while the second follower's gate still waits:
    // nothing else happens in between.
    assert!(
        matches!(touched.first(), Some(Action::Stop { server }) if server == "s1"),
        "{touched:?}"
    );
    assert!(
        matches!(touched.get(1), Some(Action::ReplaceBinary { server, version }) if server == "s1" && *version == v("1.10.3")),
        "{touched:?}"
    );
    assert!(
        matches!(touched.get(2), Some(Action::Start { server }) if server == "s1"),
        "{touched:?}"
    );
    // It counts as upgraded: the run completes with every server on the target, s1 once.
    match after.last() {
        Some(Action::Done(summary)) => {
            assert_eq!(summary.order.len(), 3, "{summary:?}");
            assert_eq!(summary.order.iter().filter(|s| *s == "s1").count(), 1);
        }
        other => panic!("expected the run to complete, got {other:?}"),
    }
}

#[test]
fn a_removed_server_that_does_not_answer_is_stopped_without_waiting_for_a_drain() {
    // s1 is also a client, but its agent is frozen: no drain, the stop comes at once.
    let after = removed_old_leader(true);
    let first = after.iter().find(|a| !matches!(a, Action::Observe { .. }));
    assert!(
        matches!(first, Some(Action::Stop { server }) if server == "s1"),
        "{after:?}"
    );
}

#[test]
fn no_fence_while_an_old_server_is_still_in_the_configuration() {
    // The same cluster with s1 frozen but not removed: the procedure does not touch it out of
    // turn (the gate waits; s1 is upgraded last, as the leader, or the run halts).
    let mut c = cfg();
    c.in_place_rollback_safe = false;
    c.rollback = crate::plan::Rollback::Halt;
    let mut p = Procedure::new(c);
    let f = Fake::healthy();
    let s = to_first_gate(&mut p, &f);
    let mut g = f.clone();
    g.set(&s, |x| x.1 = v("1.10.3"));
    g.set("s1", |x| {
        x.2 = false;
        x.4 = false;
    });
    g.leader = Box::leak(s.clone().into_boxed_str());
    for t in (400..60_000).step_by(2_000) {
        let a = p.next(&obs(t, ActionResult::Ok, &g));
        assert!(
            !matches!(&a, Action::Stop { server } if server == "s1"),
            "stopped s1 out of turn at {t}"
        );
        if a.is_final() {
            break;
        }
    }
}

/// `v` with a stale protocol-2 address entry no server answers for (a voter that never votes).
fn with_stale_address_voter(mut v: ClusterView) -> ClusterView {
    if let Ok(r) = &mut v.raft {
        r.servers.push(RaftServer {
            id: "10.0.0.9:4647".into(),
            node: "(unknown)".into(),
            address: "10.0.0.9:4647".into(),
            leader: false,
            voter: true,
            raft_protocol: 2,
        });
    }
    v
}

/// A view of `f` as a raft protocol 2 cluster shows it: autopilot health answers HTTP 500.
fn protocol_2(f: &Fake) -> ClusterView {
    let mut v = f.view();
    v.health = Err(ApiError::Unsupported {
        addr: "s1".into(),
        what: "autopilot health needs raft protocol 3 on every server (HTTP 500)".into(),
    });
    v
}

#[test]
fn derived_health_follows_autopilot_rule_from_the_raft_configuration_and_own_stats() {
    let mut f = Fake::healthy();
    let h = derived::health(&protocol_2(&f), 250).unwrap();
    assert!(h.healthy);
    assert_eq!(h.failure_tolerance, 1);
    assert_eq!(h.voters.len(), 3);
    // A server whose own API does not answer is unhealthy; one trailing too far too.
    f.set("s3", |s| s.2 = false);
    f.set("s2", |s| s.6 = 10);
    let h = derived::health(&protocol_2(&f), 50).unwrap();
    assert!(!h.healthy);
    assert_eq!(h.failure_tolerance, 0);
    let healthy: Vec<_> = h.servers.iter().filter(|s| s.healthy).collect();
    assert_eq!(healthy.len(), 1, "{h:?}");
    // A stale protocol-2 address entry no server answers for is an unhealthy voter that
    // raises the quorum.
    let f = Fake::healthy();
    let v = with_stale_address_voter(protocol_2(&f));
    let h = derived::health(&v, 250).unwrap();
    assert_eq!(h.voters.len(), 4);
    assert_eq!(h.failure_tolerance, 0, "3 healthy of 4 voters, quorum 3");
    // Without the leader's own stats nothing is derived.
    let mut v = protocol_2(&f);
    v.agents.retain(|(n, _)| &**n != "s1");
    assert!(derived::health(&v, 250).is_none());
}

#[test]
fn under_protocol_2_the_procedure_derives_health_and_waits_for_the_voter_return() {
    let mut c = cfg();
    c.snapshot_first = false;
    let mut p = Procedure::new(c);
    let f = Fake::healthy();
    let o = |now_ms, result, view: ClusterView| Observation {
        now_ms,
        result,
        view,
    };
    // Preflight passes on derived health and the first follower is stopped.
    let Action::Stop { server } = p.next(&o(0, ActionResult::None, protocol_2(&f))) else {
        panic!("expected a stop: {:?}", p.notes())
    };
    assert!(p.notes().iter().any(|n| n.contains("health derived")));
    assert!(matches!(
        p.next(&o(100, ActionResult::Ok, protocol_2(&f))),
        Action::ReplaceBinary { .. }
    ));
    assert!(matches!(
        p.next(&o(200, ActionResult::Ok, protocol_2(&f))),
        Action::Start { .. }
    ));
    // Back on the target, caught up, but a non-voter (the last server of a 2 → 3 roll):
    // the gate holds however long that lasts.
    let mut back = f.clone();
    let target = v("1.10.3");
    back.set(&server, |s| {
        s.1 = target;
        s.3 = false;
    });
    let mut now = 300;
    for _ in 0..30 {
        let a = p.next(&o(now, ActionResult::Ok, protocol_2(&back)));
        assert!(matches!(a, Action::Observe { .. }), "{a:?}");
        now += 2_000;
    }
    // Promoted: the gate passes after stable_for and the next server is stopped.
    back.set(&server, |s| s.3 = true);
    let mut next = None;
    for _ in 0..30 {
        match p.next(&o(now, ActionResult::Ok, protocol_2(&back))) {
            Action::Observe { .. } => now += 2_000,
            a => {
                next = Some(a);
                break;
            }
        }
    }
    assert!(
        matches!(&next, Some(Action::Stop { server: s }) if *s != server),
        "{next:?}"
    );
}

#[test]
fn under_protocol_2_a_stale_address_voter_makes_the_next_stop_wait_then_halt() {
    let mut c = cfg();
    c.snapshot_first = false;
    let timeout = c.gate.timeout_ms;
    let mut p = Procedure::new(c);
    let f = Fake::healthy();
    let stale = |f: &Fake| with_stale_address_voter(protocol_2(f));
    // 3 healthy of 4 voters: the preflight passes only with zero tolerance allowed; here it
    // does not, and the procedure halts at the preflight saying why.
    let mut now = 0;
    let mut last = Action::Observe { wait_ms: 0 };
    while now <= timeout + 4_000 {
        last = p.next(&Observation {
            now_ms: now,
            result: ActionResult::None,
            view: stale(&f),
        });
        if !matches!(last, Action::Observe { .. }) {
            break;
        }
        now += 2_000;
    }
    let Action::Halt(HaltReason::PreflightFailed { unmet }) = &last else {
        panic!("{last:?}")
    };
    assert!(
        unmet.iter().any(|u| u.contains("failure_tolerance=0")),
        "{unmet:?}"
    );
}

#[test]
fn a_waiting_gate_reports_its_servers_time_and_unmet_conditions() {
    let mut p = Procedure::new(cfg());
    let f = Fake::healthy();
    assert_eq!(p.gate_wait(), None, "no gate before the first restart");
    let s = to_first_gate(&mut p, &f);
    let mut nv = f.clone();
    nv.set(&s, |x| {
        x.1 = v("1.10.3");
        x.3 = false;
    });
    // The gate opens at the first observation after the start (400 ms); observed again at
    // 12.4 s.
    for t in [400, 12_400] {
        assert!(matches!(
            p.next(&obs(t, ActionResult::Ok, &nv)),
            Action::Observe { .. }
        ));
    }
    let w = p.gate_wait().expect("waiting at the gate");
    assert_eq!(w.servers, vec![s.clone()]);
    assert_eq!(w.waited_ms, 12_000);
    assert_eq!(w.timeout_ms, p.config().gate.timeout_ms);
    assert!(w.unmet.contains(&format!("{s} not a voter yet")), "{w:?}");
    let line = w.to_string();
    assert!(
        line.starts_with(&format!(
            "gate for {s}: waiting 12s of at most {}s: ",
            w.timeout_ms / 1000
        )),
        "{line}"
    );
    assert!(line.contains("healthy continuously for 0s of"), "{line}");
}

// ---- the verification's workload half (Nomad jobs and the eval broker) ----

use rehearse_model::api::{BrokerStats, JobState, JobType, Workload};

fn job(name: &str, running: u32, desired: u32) -> JobState {
    JobState {
        name: name.into(),
        kind: JobType::Service,
        desired,
        running,
        queued: desired.saturating_sub(running),
    }
}

fn jobs(list: &[(&str, u32, u32)], ready: u64) -> Readout<Workload> {
    Readout::Read(Ok(Workload {
        jobs: list.iter().map(|&(n, r, d)| job(n, r, d)).collect(),
        broker: BrokerStats {
            ready,
            ..BrokerStats::default()
        },
    }))
}

/// The end of a run through the verification.
struct Verified {
    /// `UpgradeClients` (the verification passed) or `Halt`.
    action: Action,
    /// When the first observation of the verify stage was taken.
    verify_from: Option<u64>,
    /// When `action` was chosen.
    at: u64,
    notes: Vec<String>,
}

/// Runs the upgrade (rollback `halt`) on healthy views; the workload is `w(None)` at the
/// preflight and `w(Some(ms since the verification's first observation))` in it, and, as a
/// live driver does, `NotRead` wherever the procedure does not ask for it.
fn through_verify(w: impl Fn(Option<u64>) -> Readout<Workload>) -> Verified {
    through_verify_with(cfg(), w)
}

/// `through_verify` with another procedure configuration.
fn through_verify_with(
    mut c: ProcedureConfig,
    w: impl Fn(Option<u64>) -> Readout<Workload>,
) -> Verified {
    c.rollback = crate::plan::Rollback::Halt;
    let mut p = Procedure::new(c);
    let mut f = Fake::healthy();
    let (mut t, mut result, mut verify_from) = (0, ActionResult::None, None);
    for _ in 0..5_000 {
        t += 500;
        // The verification begins with the observation that passes the last gate, which
        // already reads the workload.
        let phase = p.step_info().phase;
        let asks_after_preflight = p.reads().workload && phase != Phase::Preflight;
        if (phase == Phase::Verify || asks_after_preflight) && verify_from.is_none() {
            verify_from = Some(t);
        }
        let mut o = obs(t, result.clone(), &f);
        o.view.workload = match p.reads().workload {
            true => w(verify_from.map(|v| t - v)),
            false => Readout::NotRead,
        };
        result = ActionResult::Ok;
        match p.next(&o) {
            Action::SaveSnapshot => result = snap(),
            Action::ReplaceBinary { server, version } => {
                let name: &'static str = Box::leak(server.into_boxed_str());
                f.set(name, |x| x.1 = version);
            }
            Action::TransferLeadership { .. } => f.leader = "s2",
            a @ (Action::UpgradeClients { .. } | Action::Done(_) | Action::Halt(_)) => {
                let notes = p.notes().to_vec();
                return Verified {
                    action: a,
                    verify_from,
                    at: t,
                    notes,
                };
            }
            _ => {}
        }
    }
    panic!("did not finish");
}

fn verify_failed(v: &Verified) -> Vec<String> {
    match &v.action {
        Action::Halt(HaltReason::VerifyFailed { unmet }) => unmet.clone(),
        other => panic!("expected a failed verification: {other:?}"),
    }
}

const SETTLE_MS: u64 = 300_000;

#[test]
fn a_job_short_after_the_upgrade_halts_naming_it_once_the_settle_time_has_passed() {
    let v = through_verify(|verifying| match verifying {
        None => jobs(&[("web", 3, 3), ("api", 2, 2)], 0),
        Some(_) => jobs(&[("web", 2, 3), ("api", 2, 2)], 0),
    });
    let unmet = verify_failed(&v);
    assert_eq!(unmet, vec!["job web 2 of 3 running".to_string()]);
    // It waited the settle time (not the gate's 2 min), and not much longer: the workload is
    // short from the last gate's first observation on, which is the gate's `stable_for` (10 s)
    // before the verification begins.
    let waited = v.at - v.verify_from.expect("verified");
    assert!(
        (SETTLE_MS..SETTLE_MS + 14_000).contains(&waited),
        "{waited}"
    );
}

#[test]
fn a_backlog_above_the_bound_halts_naming_its_parts() {
    let v = through_verify(|verifying| jobs(&[("web", 3, 3)], verifying.map_or(0, |_| 7)));
    let unmet = verify_failed(&v);
    assert_eq!(unmet.len(), 1, "{unmet:?}");
    assert!(
        unmet[0].starts_with("eval backlog 7 above the bound of 0") && unmet[0].contains("7 ready"),
        "{unmet:?}"
    );
}

/// The `servers-only-verify` runbook checks versions, peers and a leader: a backlog that never
/// drains and a job short of its count go unseen (hashicorp/nomad#15858).
#[test]
fn a_servers_only_verification_does_not_see_the_backlog() {
    let c = Variant::ServersOnlyVerify.apply(cfg());
    assert!(!c.verify_workload);
    let v = through_verify_with(c, |verifying| match verifying {
        None => jobs(&[("web", 3, 3)], 0),
        Some(_) => jobs(&[("web", 1, 3)], 7),
    });
    assert!(
        matches!(v.action, Action::UpgradeClients { .. } | Action::Done(_)),
        "{:?}",
        v.action
    );
    // The safe procedure halts on the same workload.
    let v = through_verify(|verifying| match verifying {
        None => jobs(&[("web", 3, 3)], 0),
        Some(_) => jobs(&[("web", 1, 3)], 7),
    });
    assert_eq!(verify_failed(&v).len(), 2);
}

#[test]
fn a_backlog_and_a_job_that_recover_within_the_settle_time_pass() {
    let v = through_verify(|verifying| match verifying {
        Some(ms) if ms < 90_000 => jobs(&[("web", 1, 3)], 40),
        _ => jobs(&[("web", 3, 3)], 0),
    });
    assert!(
        matches!(v.action, Action::UpgradeClients { .. }),
        "{:?}",
        v.action
    );
    let waited = v.at - v.verify_from.expect("verified");
    assert!(
        waited >= 90_000,
        "passed before the workload recovered: {waited}"
    );
}

#[test]
fn consul_has_no_workload_to_verify() {
    let v = through_verify(|_| Readout::NotApplicable);
    assert!(
        matches!(v.action, Action::UpgradeClients { .. }),
        "{:?}",
        v.action
    );
}

#[test]
fn an_unavailable_workload_halts_with_the_reason_at_the_preflight_or_the_verification() {
    let why = || Readout::Unavailable {
        why: "this driver reads no jobs".into(),
    };
    for (at_preflight, needed_by) in [
        (true, "the preflight baseline"),
        (false, "the verification"),
    ] {
        let v = through_verify(|verifying| match (verifying, at_preflight) {
            (None, false) => jobs(&[], 0),
            _ => why(),
        });
        let Action::Halt(r) = &v.action else {
            panic!("{:?}", v.action)
        };
        assert_eq!(
            r.to_string(),
            format!(
                "cannot read the jobs and the eval broker, which {needed_by} needs: this driver reads no jobs"
            )
        );
        assert_eq!(v.verify_from.is_none(), at_preflight);
    }
}

#[test]
fn a_workload_the_driver_did_not_read_when_asked_halts_as_a_driver_defect() {
    let v = through_verify(|verifying| match verifying {
        None => jobs(&[], 0),
        Some(_) => Readout::NotRead,
    });
    let Action::Halt(r) = &v.action else {
        panic!("{:?}", v.action)
    };
    let text = r.to_string();
    assert!(text.contains("the verification needs: not read"), "{text}");
    assert!(text.contains("driver defect"), "{text}");
}

#[test]
fn an_error_answer_waits_then_halts_naming_it() {
    let v = through_verify(|verifying| match verifying {
        None => jobs(&[], 0),
        Some(_) => Readout::Read(Err(ApiError::Unreachable {
            addr: "s1".into(),
            why: "connection refused".into(),
        })),
    });
    let unmet = verify_failed(&v);
    assert_eq!(unmet.len(), 1, "{unmet:?}");
    assert!(
        unmet[0].starts_with("jobs and eval broker: ") && unmet[0].contains("connection refused"),
        "{unmet:?}"
    );
    assert!(v.at - v.verify_from.unwrap() >= SETTLE_MS);
}

#[test]
fn a_job_short_before_the_upgrade_is_noted_and_only_required_not_to_get_worse() {
    let v = through_verify(|_| jobs(&[("batchy", 2, 3), ("web", 3, 3)], 0));
    assert!(
        matches!(v.action, Action::UpgradeClients { .. }),
        "{:?}",
        v.action
    );
    assert!(
        v.notes
            .iter()
            .any(|n| n.starts_with("jobs already short before the upgrade")
                && n.contains("batchy 2 of 3 running")),
        "{:?}",
        v.notes
    );
    let v = through_verify(|verifying| match verifying {
        None => jobs(&[("batchy", 2, 3)], 0),
        Some(_) => jobs(&[("batchy", 1, 3)], 0),
    });
    assert_eq!(
        verify_failed(&v),
        vec!["job batchy 1 of 3 running (1 short before the upgrade)".to_string()]
    );
}

/// A backlog already above the bound could never be verified away: the preflight waits for it
/// to drain and halts before any server is touched.
#[test]
fn a_backlog_above_the_bound_before_the_upgrade_stops_it_at_the_preflight() {
    let v = through_verify(|_| jobs(&[], 3));
    let Action::Halt(HaltReason::PreflightFailed { unmet }) = &v.action else {
        panic!("{:?}", v.action)
    };
    assert!(v.verify_from.is_none());
    assert!(
        unmet.len() == 1 && unmet[0].ends_with("blocked on capacity before the upgrade"),
        "{unmet:?}"
    );
}

/// `[upgrade.verify]` reaches the procedure.
#[test]
fn the_plan_sets_the_backlog_bound_and_the_settle_time() {
    let text = format!("{PLAN}[upgrade.verify]\nmax_eval_backlog = 4\nsettle = \"90s\"\n");
    let c = ProcedureConfig::from_plan(&Plan::from_str_named(&text, "t").unwrap());
    assert_eq!(
        c.verify,
        VerifyConfig {
            max_eval_backlog: 4,
            settle_ms: 90_000
        }
    );
    assert_eq!(cfg().verify, VerifyConfig::default());
    assert_eq!(cfg().verify.settle_ms, SETTLE_MS);
}

/// What a dry run shows of the preflight's workload half.
#[test]
fn the_dry_run_shows_the_backlog_and_the_jobs_already_short() {
    let p = Procedure::new(cfg());
    let mut v = Fake::healthy().view();
    v.workload = jobs(&[("web", 1, 2), ("api", 2, 2)], 2);
    let (unmet, short) = p.preflight_workload(&v);
    assert_eq!(short, vec!["web 1 of 2 running".to_string()]);
    assert!(
        unmet.len() == 1 && unmet[0].starts_with("eval backlog 2 above the bound of 0"),
        "{unmet:?}"
    );
    v.workload = Readout::Unavailable {
        why: "no token for jobs".into(),
    };
    let (unmet, short) = p.preflight_workload(&v);
    assert_eq!(
        unmet,
        vec!["cannot read the jobs and the eval broker: no token for jobs".to_string()]
    );
    assert!(short.is_empty());
    v.workload = Readout::NotApplicable;
    assert_eq!(p.preflight_workload(&v), (Vec::new(), Vec::new()));
}

// ---- the client phase in batches ([upgrade.clients]) ----

/// A client-only node of the scripted client world.
#[derive(Clone)]
struct CNode {
    name: &'static str,
    version: Version,
    up: bool,
    down: bool,
    eligible: bool,
    /// When its drain was asked for.
    drain_since: Option<u64>,
    installed: Option<Version>,
}

fn cnode(name: &'static str) -> CNode {
    CNode {
        name,
        version: v("1.9.7"),
        up: true,
        down: false,
        eligible: true,
        drain_since: None,
        installed: None,
    }
}

/// How a client run ended: the client actions with their times, and the final action.
struct ClientRun {
    actions: Vec<(u64, Action)>,
    last: Action,
    notes: Vec<String>,
    upgraded: Vec<String>,
}

impl ClientRun {
    /// The client actions' one-line forms, in order.
    fn lines(&self) -> Vec<String> {
        self.actions.iter().map(|(_, a)| a.to_string()).collect()
    }
}

fn batch_cfg(max_parallel: usize, drain_deadline_ms: Option<u64>) -> ProcedureConfig {
    let mut c = cfg();
    c.client_batches = Some(ClientBatchConfig {
        max_parallel,
        drain_deadline_ms,
        install_time_ms: 1_000,
    });
    c
}

/// What the scripted world answers for the nodes the procedure reads.
fn client_view(o: &mut Observation, nodes: &[CNode], reads: Reads, drain_ms: u64) {
    let t = o.now_ms;
    let done = |n: &CNode| n.drain_since.is_some_and(|s| t >= s + drain_ms);
    let mut infos: Vec<rehearse_model::api::NodeInfo> = nodes
        .iter()
        .map(|n| rehearse_model::api::NodeInfo {
            name: n.name.into(),
            status: if n.up && !n.down {
                rehearse_model::api::NodeStatus::Ready
            } else {
                rehearse_model::api::NodeStatus::Down
            },
            version: n.version,
            drain: n.drain_since.is_some(),
            eligible: n.eligible,
        })
        .collect();
    // A server that is also a client is listed too: the client phase leaves it alone.
    infos.push(rehearse_model::api::NodeInfo {
        name: "s2".into(),
        status: rehearse_model::api::NodeStatus::Ready,
        version: v("1.10.3"),
        drain: false,
        eligible: true,
    });
    o.view.nodes = match reads.nodes {
        true => Readout::Read(Ok(infos)),
        false => Readout::NotRead,
    };
    o.view.drained = nodes
        .iter()
        .filter(|n| done(n))
        .map(|n| n.name.into())
        .collect();
    // Allocations run on a draining node until its drain completes.
    o.view.allocs_running = match reads.allocs {
        true => Readout::Read(Ok(nodes
            .iter()
            .filter(|n| n.drain_since.is_some() && !done(n))
            .map(|n| n.name.into())
            .collect())),
        false => Readout::NotRead,
    };
    o.view.workload = match reads.workload {
        true => Readout::Read(Ok(Workload::default())),
        false => Readout::NotRead,
    };
}

/// Applies a client action to the scripted world.
fn client_apply(nodes: &mut [CNode], a: &Action, t: u64) {
    fn node<'a>(nodes: &'a mut [CNode], name: &str) -> &'a mut CNode {
        nodes.iter_mut().find(|n| n.name == name).unwrap()
    }
    match a {
        Action::DrainClient { client } => {
            let n = node(nodes, client);
            n.drain_since = Some(t);
            n.eligible = false;
        }
        Action::StopClient { client } => node(nodes, client).up = false,
        Action::InstallClient { client, version } => node(nodes, client).installed = Some(*version),
        Action::StartClient { client } => {
            let n = node(nodes, client);
            n.up = true;
            n.version = n.installed.take().unwrap_or(n.version);
        }
        Action::MarkEligible { client } => {
            let n = node(nodes, client);
            n.eligible = true;
            n.drain_since = None;
        }
        _ => {}
    }
}

/// Runs the whole upgrade on healthy servers and the scripted client world (drains complete
/// after `drain_ms`); `tamper` may change each observation before the procedure sees it.
fn run_clients(
    c: ProcedureConfig,
    mut nodes: Vec<CNode>,
    drain_ms: u64,
    mut tamper: impl FnMut(&Procedure, &mut Observation),
) -> ClientRun {
    let mut p = Procedure::new(c);
    let mut f = Fake::healthy();
    let (mut t, mut result) = (0, ActionResult::None);
    let mut actions = Vec::new();
    for _ in 0..20_000 {
        t += 500;
        let mut o = obs(t, result.clone(), &f);
        client_view(&mut o, &nodes, p.reads(), drain_ms);
        tamper(&p, &mut o);
        result = ActionResult::Ok;
        let a = p.next(&o);
        match &a {
            Action::SaveSnapshot => result = snap(),
            Action::ReplaceBinary { server, version } => {
                let name: &'static str = Box::leak(server.clone().into_boxed_str());
                f.set(name, |x| x.1 = *version);
            }
            Action::TransferLeadership { .. } => f.leader = "s2",
            Action::Done(_) | Action::Halt(_) => {
                return ClientRun {
                    actions,
                    last: a,
                    notes: p.notes().to_vec(),
                    upgraded: p.clients_upgraded().to_vec(),
                };
            }
            Action::DrainClient { .. }
            | Action::StopClient { .. }
            | Action::InstallClient { .. }
            | Action::StartClient { .. }
            | Action::MarkEligible { .. } => {
                client_apply(&mut nodes, &a, t);
                actions.push((t, a.clone()));
            }
            Action::UpgradeClients { .. } => panic!("batches never upgrade every client at once"),
            _ => {}
        }
    }
    panic!("did not finish");
}

#[test]
fn clients_go_in_batches_of_max_parallel_in_name_order_each_drained_first() {
    let mut down = cnode("c9");
    down.down = true;
    // Already on the target (a resumed run): left alone.
    let mut done = cnode("c5");
    done.version = v("1.10.3");
    let nodes = vec![
        cnode("c3"),
        cnode("c10"),
        cnode("c1"),
        done,
        cnode("c2"),
        cnode("c4"),
        down,
    ];
    let r = run_clients(batch_cfg(2, Some(60_000)), nodes, 5_000, |_, _| {});
    assert!(matches!(r.last, Action::Done(_)), "{:?}", r.last);
    assert_eq!(r.upgraded, ["c1", "c10", "c2", "c3", "c4"], "name order");
    let batch = |a: &str, b: &str| {
        let mut v = Vec::new();
        for verb in ["drain client", "stop client"] {
            v.push(format!("{verb} {a}"));
            v.push(format!("{verb} {b}"));
        }
        v.push(format!("install 1.10.3 on client {a}"));
        v.push(format!("install 1.10.3 on client {b}"));
        for verb in ["start client", "mark client"] {
            let tail = if verb == "mark client" {
                " eligible"
            } else {
                ""
            };
            v.push(format!("{verb} {a}{tail}"));
            v.push(format!("{verb} {b}{tail}"));
        }
        v
    };
    let mut want = batch("c1", "c10");
    want.extend(batch("c2", "c3"));
    want.extend(
        [
            "drain client c4",
            "stop client c4",
            "install 1.10.3 on client c4",
            "start client c4",
            "mark client c4 eligible",
        ]
        .map(String::from),
    );
    assert_eq!(r.lines(), want);
    assert!(
        r.notes
            .iter()
            .any(|n| n == "client c9 is down: not upgraded")
    );
    // Each stop waits for the batch's drains to complete (5 s after the request).
    let drained_at = r.actions[1].0;
    let stopped_at = r.actions[2].0;
    assert!(
        stopped_at >= drained_at + 5_000,
        "{drained_at} {stopped_at}"
    );
}

#[test]
fn a_batch_of_one_takes_every_client_on_its_own() {
    let nodes = vec![cnode("c1"), cnode("c2"), cnode("c3")];
    let r = run_clients(batch_cfg(1, Some(60_000)), nodes, 1_000, |_, _| {});
    let drains: Vec<usize> = r
        .actions
        .iter()
        .enumerate()
        .filter(|(_, (_, a))| matches!(a, Action::DrainClient { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(drains, [0, 5, 10], "{:?}", r.lines());
    assert!(matches!(r.last, Action::Done(_)));
}

#[test]
fn without_a_drain_clients_are_restarted_in_place_and_not_marked_eligible() {
    let nodes = vec![cnode("c1"), cnode("c2"), cnode("c3")];
    let r = run_clients(batch_cfg(3, None), nodes, 1_000, |_, _| {});
    assert!(matches!(r.last, Action::Done(_)));
    let l = r.lines();
    assert!(
        l.iter()
            .all(|a| !a.starts_with("drain") && !a.starts_with("mark")),
        "{l:?}"
    );
    assert_eq!(l.len(), 9);
}

#[test]
fn a_drain_that_reports_complete_while_allocations_run_holds_the_stop() {
    let nodes = vec![cnode("c1")];
    let mut first = None;
    let r = run_clients(batch_cfg(1, Some(120_000)), nodes, 1_000, |p, o| {
        if !p.reads().allocs || p.client_batch().is_empty() {
            return;
        }
        // The drain reports complete after 1 s; its allocations run 20 s more (nomad#14293).
        let at = *first.get_or_insert(o.now_ms);
        if o.now_ms < at + 20_000 {
            o.view.allocs_running = Readout::Read(Ok(vec!["c1".into()]));
        }
    });
    assert!(matches!(r.last, Action::Done(_)));
    let stop = r
        .actions
        .iter()
        .find(|(_, a)| matches!(a, Action::StopClient { .. }));
    assert!(
        stop.unwrap().0 >= first.unwrap() + 20_000,
        "{:?}",
        r.lines()
    );
}

#[test]
fn a_drain_past_its_deadline_halts_naming_the_clients_without_a_rollback() {
    let nodes = vec![cnode("c1"), cnode("c2")];
    // The drains never complete.
    let r = run_clients(batch_cfg(2, Some(30_000)), nodes, u64::MAX / 2, |_, _| {});
    match &r.last {
        Action::Halt(HaltReason::ActionFailed { action, error }) => {
            assert_eq!(action, "drain client c1,c2");
            assert!(error.contains("deadline"), "{error}");
        }
        other => panic!("expected a halt on the drain: {other:?}"),
    }
    let drain_at = r.actions[0].0;
    assert!(r.lines().iter().all(|a| a.starts_with("drain")));
    assert!(
        r.notes.iter().all(|n| !n.contains("rollback")),
        "{:?}",
        r.notes
    );
    let _ = drain_at;
}

#[test]
fn a_client_that_does_not_come_back_on_the_target_times_out_naming_it() {
    let nodes = vec![cnode("c1"), cnode("c2")];
    let r = run_clients(batch_cfg(1, Some(60_000)), nodes, 1_000, |p, o| {
        // c1's install did not take: it comes back on the old version.
        if p.client_batch() == ["c1"]
            && let Readout::Read(Ok(n)) = &mut o.view.nodes
        {
            for n in n.iter_mut().filter(|n| n.name == "c1") {
                n.version = v("1.9.7");
            }
        }
    });
    match &r.last {
        Action::Halt(HaltReason::GateTimeout { server, unmet }) => {
            assert_eq!(server, "c1");
            assert_eq!(unmet, &["client c1 runs 1.9.7"]);
        }
        other => panic!("expected a timeout: {other:?}"),
    }
    assert!(!r.lines().iter().any(|a| a.contains("c2")), "c2 untouched");
}

#[test]
fn the_next_batch_waits_until_every_job_is_back_at_its_count() {
    use rehearse_model::api::{JobState, JobType};
    let nodes = vec![cnode("c1"), cnode("c2")];
    let mut eligible_at = None;
    let r = run_clients(batch_cfg(1, Some(60_000)), nodes, 1_000, |p, o| {
        let settling = p.client_batch() == ["c1"] && p.reads().workload;
        if !settling {
            return;
        }
        let at = *eligible_at.get_or_insert(o.now_ms);
        let running = if o.now_ms < at + 30_000 { 3 } else { 4 };
        o.view.workload = Readout::Read(Ok(Workload {
            jobs: vec![JobState {
                name: "web".into(),
                kind: JobType::Service,
                desired: 4,
                running,
                queued: 0,
            }],
            ..Workload::default()
        }));
    });
    assert!(matches!(r.last, Action::Done(_)), "{:?}", r.last);
    let next = r.actions.iter().find(|(_, a)| {
        *a == Action::DrainClient {
            client: "c2".into(),
        }
    });
    assert!(next.unwrap().0 >= eligible_at.unwrap() + 30_000);
}

#[test]
fn a_client_readout_the_driver_cannot_make_halts_naming_it() {
    for (part, what) in [("nodes", "the client nodes"), ("allocs", "allocations")] {
        let nodes = vec![cnode("c1")];
        let r = run_clients(batch_cfg(1, Some(60_000)), nodes, 1_000, |p, o| {
            if !matches!(p.step_info().phase, Phase::Clients) {
                return;
            }
            let why = "the driver has no such read".to_string();
            match part {
                "nodes" => o.view.nodes = Readout::Unavailable { why },
                _ if p.reads().allocs => o.view.allocs_running = Readout::NotRead,
                _ => {}
            }
        });
        match &r.last {
            Action::Halt(HaltReason::Unreadable {
                what: w, needed_by, ..
            }) => {
                assert_eq!(w, what);
                assert_eq!(needed_by, "the client batches");
            }
            other => panic!("{part}: expected an unreadable halt: {other:?}"),
        }
    }
}

#[test]
fn clients_wait_until_every_server_runs_the_target() {
    let nodes = vec![cnode("c1")];
    let r = run_clients(batch_cfg(1, Some(60_000)), nodes, 1_000, |p, o| {
        // s3 went back to the old version between the verification and the client phase.
        if matches!(p.step_info().phase, Phase::Clients) {
            for (n, a) in o.view.agents.iter_mut() {
                if &**n == "s3"
                    && let Ok(a) = a
                {
                    a.version = v("1.9.7");
                }
            }
        }
    });
    match &r.last {
        Action::Halt(HaltReason::VerifyFailed { unmet }) => {
            assert!(unmet[0].starts_with("s3 runs 1.9.7: clients are upgraded only once"));
        }
        other => panic!("expected a halt: {other:?}"),
    }
    assert!(r.actions.is_empty());
}

#[test]
fn without_the_table_the_client_phase_is_one_upgrade_of_every_client() {
    assert_eq!(cfg().client_batches, None);
    let v = through_verify(|_| Readout::Read(Ok(Workload::default())));
    assert!(matches!(v.action, Action::UpgradeClients { .. }));
}

#[test]
fn a_failed_client_action_halts_without_rolling_the_servers_back() {
    let mut c = batch_cfg(1, Some(60_000));
    c.rollback = crate::plan::Rollback::ReinstallAndRestore;
    c.in_place_rollback_safe = true;
    let nodes = vec![cnode("c1"), cnode("c2")];
    let r = run_clients(c, nodes, 1_000, |p, o| {
        // The stop template of c1 fails.
        let stopping = matches!(p.step_info().phase, Phase::Clients)
            && p.client_batch() == ["c1"]
            && !p.reads().allocs
            && !p.reads().workload;
        if stopping && o.result == ActionResult::Ok {
            o.result = ActionResult::Failed("exit status 1".into());
        }
    });
    match &r.last {
        Action::Halt(HaltReason::ActionFailed { error, .. }) => assert_eq!(error, "exit status 1"),
        other => panic!("expected a halt without a rollback: {other:?}"),
    }
}
