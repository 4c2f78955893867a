//! The workload plane in a world: placement at boot, leader changes, nodes lost, drains.

use crate::config::SimConfig;
use crate::state::StopMode;
use crate::workload::fsm::AllocState;
use crate::workload::{GroupSpec, JobSpec};
use crate::world::World;
use rehearse_model::api::{JobType, Workload};
use rehearse_model::time::SEC;
use rehearse_model::versions::Version;

fn group(name: &str, count: u32, max_parallel: Option<u32>) -> GroupSpec {
    GroupSpec {
        name: name.into(),
        count,
        kill_timeout_ns: 5 * SEC,
        migrate_max_parallel: max_parallel,
    }
}

/// 5 servers (s4 and s5 also clients), 3 client-only nodes, 3 jobs.
fn cfg(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 1), seed);
    cfg.servers[3].also_client = true;
    cfg.servers[4].also_client = true;
    cfg.clients.count = 3;
    cfg.jobs = vec![
        JobSpec {
            name: "web".into(),
            kind: JobType::Service,
            groups: vec![group("web", 4, Some(2))],
        },
        JobSpec {
            name: "api".into(),
            kind: JobType::Service,
            groups: vec![group("api", 2, None), group("worker", 1, None)],
        },
        JobSpec {
            name: "agent".into(),
            kind: JobType::System,
            groups: vec![group("agent", 1, None)],
        },
    ];
    cfg
}

fn view(w: &World) -> Workload {
    w.workload_view(w.leader().expect("a leader")).unwrap()
}

fn settled(w: &World) -> bool {
    let v = view(w);
    v.broker.backlog() == 0 && v.short_jobs().is_empty()
}

#[test]
fn three_jobs_are_placed_on_three_clients_and_two_server_clients() {
    for seed in 1..=4 {
        let mut w = World::new(cfg(seed)).unwrap();
        w.run_for(20 * SEC);
        let v = view(&w);
        assert!(settled(&w), "seed {seed}: {v:?}");
        let counts: Vec<(u32, u32)> = v.jobs.iter().map(|j| (j.desired, j.running)).collect();
        assert_eq!(counts, vec![(4, 4), (3, 3), (5, 5)], "seed {seed}");
        assert!(w.workload_outcome().backlog_peak > 0);
        assert!(w.violations().is_empty(), "{:?}", w.violations());
        // Every node within capacity; the server-clients run allocations.
        let p = w.plane.as_ref().unwrap();
        for node in 0..5 {
            assert!(p.running_on(node, w.now()) <= w.cfg.plane.slots_per_node as usize);
        }
        assert!(w.allocations_running_now(3) > 0 && w.allocations_running_now(4) > 0);
        assert_eq!(w.allocations_running_now(0), 0, "s1 has no client");
    }
}

#[test]
fn a_new_leader_restores_the_broker_and_the_backlog_returns_to_zero() {
    for seed in 1..=4 {
        let mut w = World::new(cfg(seed)).unwrap();
        // Step until evaluations wait in the first leader's broker, then kill that leader.
        let mut steps = 0;
        while w
            .leader()
            .is_none_or(|l| view_at(&w, l).broker.backlog() == 0)
        {
            assert!(
                w.step() && steps < 1_000_000,
                "seed {seed}: no backlog ever"
            );
            steps += 1;
        }
        let l = w.leader().unwrap();
        w.crash(l);
        assert_eq!(w.workload_outcome().lost_allocs, 0, "nothing ran yet");
        w.run_for(60 * SEC);
        let nl = w.leader().expect("a new leader");
        assert_ne!(nl, l);
        assert!(settled(&w), "seed {seed}: {:?}", view(&w));
        w.start(l);
        w.run_for(60 * SEC);
        // The roll stops server-clients without a drain, so jobs may still be short here;
        // what matters is that the workers emptied the broker.
        assert_eq!(view(&w).broker.backlog(), 0, "seed {seed}: {:?}", view(&w));
        assert!(w.violations().is_empty(), "{:?}", w.violations());
    }
}

fn view_at(w: &World, via: usize) -> Workload {
    w.workload_view(via).unwrap_or_default()
}

#[test]
fn a_client_node_down_has_its_allocations_replaced_elsewhere() {
    let mut w = World::new(cfg(3)).unwrap();
    // Past the first leader's failover TTL (5 min): the ordinary TTL applies.
    w.run_for(320 * SEC);
    let before = w.plane.as_ref().unwrap().running_on(0, w.now());
    assert!(before > 0);
    w.client_down(0);
    assert_eq!(w.workload_outcome().lost_allocs, before as u64);
    w.run_for(60 * SEC);
    let v = view(&w);
    // The system job now wants one per remaining node.
    assert_eq!(v.jobs[2].desired, 4, "{v:?}");
    assert!(settled(&w), "{v:?}");
    let p = w.plane.as_ref().unwrap();
    let lost = p.fsm.allocs.iter().filter(|a| a.state == AllocState::Lost);
    assert_eq!(lost.count(), before);
}

#[test]
fn a_server_client_drain_migrates_its_allocations_and_completes() {
    let mut w = World::new(cfg(2)).unwrap();
    w.run_for(20 * SEC);
    let on = w.allocations_running_now(3);
    assert!(on > 0);
    w.drain(3).unwrap();
    assert!(!w.drain_complete(3));
    let mut most_stopping = 0;
    let end = w.now().plus(120 * SEC);
    while w.now() < end && !w.drain_complete(3) {
        w.step();
        let p = w.plane.as_ref().unwrap();
        let stopping = p
            .fsm
            .allocs
            .iter()
            .filter(|a| a.job == 0 && matches!(a.state, AllocState::Stopping(_)))
            .filter(|a| a.runs_at(w.now()))
            .count();
        most_stopping = most_stopping.max(stopping);
    }
    assert!(w.drain_complete(3), "{:?}", view(&w));
    assert!(most_stopping <= 2, "web migrates 2 at a time");
    assert_eq!(w.allocations_running(3), Ok(0));
    assert_eq!(w.workload_outcome().lost_allocs, 0);
    // The system job wants one fewer (the node is ineligible); the rest run elsewhere.
    w.run_for(5 * SEC);
    assert!(settled(&w), "{:?}", view(&w));
    assert_eq!(view(&w).jobs[2].desired, 4);
    // Stopping the drained server loses nothing.
    w.stop(3, StopMode::Graceful);
    assert_eq!(w.workload_outcome().lost_allocs, 0);
}

#[test]
fn a_server_client_stopped_without_a_drain_loses_its_allocations_then_they_return() {
    let mut w = World::new(cfg(4)).unwrap();
    w.run_for(20 * SEC);
    let on = w.allocations_running_now(4);
    assert!(on > 0);
    w.stop(4, StopMode::Graceful);
    w.mark_procedure_end();
    assert_eq!(w.workload_outcome().lost_allocs, on as u64);
    assert_eq!(w.allocations_running_now(4), 0);
    assert!(!settled(&w) || w.leader() == Some(4));
    // Marked down after min_heartbeat_ttl + heartbeat_grace (20 s), then replaced.
    w.run_for(60 * SEC);
    assert!(settled(&w), "{:?}", view(&w));
    let t = w.workload_outcome().time_to_recover_ns.expect("recovered");
    assert!((20 * SEC..60 * SEC).contains(&t), "{t}");
}

#[test]
fn without_jobs_the_plane_does_not_exist() {
    let mut c = cfg(1);
    c.jobs.clear();
    let mut w = World::new(c).unwrap();
    w.run_for(30 * SEC);
    assert!(w.plane.is_none());
    assert_eq!(view(&w), Workload::default());
    assert_eq!(w.workload_outcome(), Default::default());
    assert!(w.workload_backlog_series().is_empty());
}

/// The backlog series holds the peak and ends on the final backlog, in time order.
#[test]
fn the_backlog_series_records_the_peak_and_ends_settled() {
    let mut w = World::new(cfg(1)).unwrap();
    w.run_for(20 * SEC);
    w.drain(3).unwrap();
    w.run_for(120 * SEC);
    assert!(settled(&w), "{:?}", view(&w));
    let s = w.workload_backlog_series();
    assert!(s.len() >= 3, "{s:?}");
    assert!(s.windows(2).all(|p| p[0].0 <= p[1].0), "{s:?}");
    let peak = s.iter().map(|p| p.1).max().unwrap();
    assert_eq!(peak, w.workload_outcome().backlog_peak);
    assert_eq!(s.last().unwrap().1, 0);
}

/// However many changes, the series stays bounded, keeps the highest value and the last one.
#[test]
fn the_backlog_series_is_bounded_and_keeps_the_peak_and_the_last_value() {
    use super::{BACKLOG_POINTS_MAX, BacklogSeries};
    let mut s = BacklogSeries::default();
    for i in 0..10_000u64 {
        // A saw-tooth with one spike.
        let v = if i == 7_777 { 1_000 } else { i % 7 };
        s.record(i * 10, v);
    }
    s.record(100_001, 100);
    let p = s.points();
    assert!(p.len() <= BACKLOG_POINTS_MAX + 2, "{}", p.len());
    assert!(p.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(p.iter().map(|x| x.1).max(), Some(1_000));
    assert_eq!(p.last(), Some(&(100_001, 100)));
    // Unchanged values are not points.
    let mut q = BacklogSeries::default();
    for t in 0..100 {
        q.record(t, 2);
    }
    assert_eq!(q.points(), vec![(0, 2)]);
}

#[test]
fn the_plane_keeps_the_elision_exact_and_the_run_safe() {
    for seed in 1..=2 {
        let mut c = cfg(seed);
        c.workload.writes_per_sec = 20.0;
        let mut w = World::new(c).unwrap();
        w.set_exact_check(true);
        w.run_for(20 * SEC);
        let l = w.leader().unwrap();
        w.drain(3).unwrap();
        w.run_for(30 * SEC);
        w.stop(l, StopMode::Graceful);
        w.run_for(40 * SEC);
        w.start(l);
        w.run_for(40 * SEC);
        assert!(w.exact_checked() > 0);
        w.check_log_matching();
        assert!(w.violations().is_empty(), "{:?}", w.violations());
        assert!(settled(&w), "seed {seed}: {:?}", view(&w));
    }
}

#[test]
fn a_client_back_before_it_was_marked_down_has_its_dead_allocations_replaced() {
    let mut w = World::new(cfg(5)).unwrap();
    w.run_for(320 * SEC);
    let before = w.plane.as_ref().unwrap().running_on(1, w.now());
    assert!(before > 0);
    w.client_down(1);
    w.run_for(2 * SEC); // its heartbeat timer has not fired yet
    w.client_up(1);
    w.run_for(30 * SEC);
    assert!(settled(&w), "{:?}", view(&w));
    let p = w.plane.as_ref().unwrap();
    let lost = p.fsm.allocs.iter().filter(|a| a.state == AllocState::Lost);
    assert_eq!(lost.count(), before);
    assert_eq!(w.workload_outcome().lost_allocs, before as u64);
}

/// Restarts every server on `to` one at a time, each back for 20 s before the next.
fn roll(w: &mut World, to: Version) {
    for s in 0..5 {
        w.stop(s, StopMode::Graceful);
        w.run_for(SEC);
        w.replace_binary(s, to).unwrap();
        w.start(s);
        w.run_for(20 * SEC);
    }
}

/// The configuration shipped with the new binary sets `num_schedulers = 0`: once every server
/// runs it nobody dequeues, and the evaluations of the server-clients' re-registration (new
/// `nomad.version`) stay in the broker (hashicorp/nomad#15858, #16877). Without the setting
/// the same roll's evaluations are dequeued and the broker empties.
#[test]
fn no_scheduler_workers_on_the_new_version_leave_the_backlog_in_the_broker() {
    let to = Version::new(1, 10, 3);
    for seed in 1..=3 {
        let mut w = World::new(cfg(seed)).unwrap();
        w.run_for(20 * SEC);
        roll(&mut w, to);
        w.run_for(60 * SEC);
        // The roll stops server-clients without a drain, so jobs may still be short here;
        // what matters is that the workers emptied the broker.
        assert_eq!(view(&w).broker.backlog(), 0, "seed {seed}: {:?}", view(&w));

        let mut c = cfg(seed);
        c.plane.num_schedulers_by_version = vec![(to, 0)];
        let mut w = World::new(c).unwrap();
        w.run_for(20 * SEC);
        roll(&mut w, to);
        w.mark_procedure_end();
        w.run_for(60 * SEC);
        let v = view(&w);
        // One evaluation per system job for each server-client restarted after the last
        // 1.9.1 server went: s5's at least.
        assert!(v.broker.backlog() >= 1, "seed {seed}: {v:?}");
        assert_eq!(w.workload_outcome().time_to_recover_ns, None);
        let why = w.workload_unrecovered().expect("not recovered");
        assert!(why.starts_with("eval backlog "), "{why}");
    }
}

/// One server-client (s4) and one client-only node; web: 6 allocations with a 30 s kill
/// timeout, migrated one at a time, so s4 runs 3 of them.
fn deadline_cfg(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 1), seed);
    cfg.servers[3].also_client = true;
    cfg.clients.count = 1;
    cfg.jobs = vec![JobSpec {
        name: "web".into(),
        kind: JobType::Service,
        groups: vec![GroupSpec {
            name: "web".into(),
            count: 6,
            kill_timeout_ns: 30 * SEC,
            migrate_max_parallel: Some(1),
        }],
    }];
    cfg
}

/// Drains s4 with `deadline`; returns the world once the drain completed (or after 10 min),
/// and the most web allocations seen stopping at once.
fn drain_with(seed: u64, deadline: u64) -> (World, usize) {
    let mut w = World::new(deadline_cfg(seed)).unwrap();
    w.run_for(20 * SEC);
    assert_eq!(
        w.allocations_running_now(3),
        3,
        "seed {seed}: {:?}",
        view(&w)
    );
    w.drain_with_deadline(3, Some(deadline)).unwrap();
    let mut most_stopping = 0;
    let end = w.now().plus(600 * SEC);
    while w.now() < end && !w.drain_complete(3) {
        w.step();
        let p = w.plane.as_ref().unwrap();
        let stopping = p
            .fsm
            .allocs
            .iter()
            .filter(|a| matches!(a.state, AllocState::Stopping(_)) && a.runs_at(w.now()))
            .count();
        most_stopping = most_stopping.max(stopping);
    }
    (w, most_stopping)
}

#[test]
fn a_drain_deadline_shorter_than_the_migrations_stops_what_is_left_at_once() {
    for seed in 1..=3 {
        let start = 20 * SEC;
        let (mut w, most_stopping) = drain_with(seed, 15 * SEC);
        assert!(w.drain_complete(3), "seed {seed}: {:?}", view(&w));
        // One migrating when the deadline passed, the other two forced together.
        assert_eq!(most_stopping, 3, "seed {seed}");
        let stops = w.drain_deadline_stops().to_vec();
        assert_eq!(stops.len(), 1, "seed {seed}: {stops:?}");
        assert_eq!(
            (stops[0].server.as_str(), stops[0].job.as_str()),
            ("s4", "web")
        );
        assert_eq!(stops[0].allocs, 2);
        let at = stops[0].at.as_nanos() - start;
        assert!((15 * SEC..16 * SEC).contains(&at), "seed {seed}: {at}");
        // The drain completes once the forced allocations' kill timeouts have run, well
        // before three migrations one after the other would have.
        assert!(w.now().as_nanos() - start < 50 * SEC, "seed {seed}");
        assert_eq!(
            w.workload_outcome().lost_allocs,
            0,
            "nothing died with a host"
        );
        w.run_for(5 * SEC);
        assert!(settled(&w), "seed {seed}: {:?}", view(&w));
        assert!(w.violations().is_empty(), "{:?}", w.violations());
    }
}

#[test]
fn a_drain_deadline_long_enough_stops_nothing_early() {
    for seed in 1..=3 {
        let (w, most_stopping) = drain_with(seed, 300 * SEC);
        assert!(w.drain_complete(3), "seed {seed}: {:?}", view(&w));
        assert_eq!(most_stopping, 1, "seed {seed}: max_parallel = 1");
        assert!(w.drain_deadline_stops().is_empty(), "seed {seed}");
        // Three migrations, one after the other.
        assert!(w.now().as_nanos() - 20 * SEC >= 90 * SEC, "seed {seed}");
    }
}

/// A drain whose previous batch stops a few milliseconds after another job's allocation (so
/// the next batch's evaluation races the one still pending) still moves every allocation: a
/// service job with two allocations on the node, migrated one at a time, and a system job.
#[test]
fn a_drain_whose_stops_race_a_pending_evaluation_still_completes() {
    for seed in 1..=4u64 {
        let mut cfg = SimConfig::nomad(3, Version::new(1, 9, 7), seed);
        cfg.servers[1].also_client = true;
        cfg.clients.count = 2;
        cfg.jobs = vec![
            JobSpec {
                name: "svc0".into(),
                kind: JobType::Service,
                groups: vec![group("g", 6, Some(1))],
            },
            JobSpec {
                name: "sys".into(),
                kind: JobType::System,
                groups: vec![group("g", 1, None)],
            },
        ];
        let mut w = World::new(cfg).unwrap();
        w.run_for(20 * SEC);
        let node = w.plane.as_ref().unwrap().node_of(1).unwrap();
        let on_node = |w: &World| w.plane.as_ref().unwrap().running_on(node, w.now());
        assert!(on_node(&w) >= 2, "seed {seed}: {:?}", view(&w));
        w.drain_with_deadline(1, Some(300 * SEC)).unwrap();
        let end = w.now().plus(60 * SEC);
        while w.now() < end && !w.drain_complete(1) {
            w.step();
        }
        assert!(
            w.drain_complete(1),
            "seed {seed}: drain stalled: {:?}",
            view(&w)
        );
        assert_eq!(on_node(&w), 0, "seed {seed}");
        w.run_for(300 * SEC);
        assert!(w.drain_deadline_stops().is_empty(), "seed {seed}");
    }
}

/// Client-only node `c1` (node 0) of `cfg`, with the allocations it runs once placed.
fn client_world(seed: u64) -> (World, usize) {
    let mut w = World::new(cfg(seed)).unwrap();
    // Past the first leader's failover TTL (5 min): the ordinary heartbeat TTL applies.
    w.run_for(320 * SEC);
    assert!(settled(&w), "seed {seed}: {:?}", view(&w));
    let i = w.client_index("c1").unwrap();
    let running = w.client_allocations_running(i).unwrap();
    assert!(running > 0, "seed {seed}: c1 runs something");
    (w, i)
}

fn c1(w: &World) -> rehearse_model::api::NodeInfo {
    let l = w.leader().unwrap();
    w.nodes(l)
        .unwrap()
        .into_iter()
        .find(|n| n.name == "c1")
        .unwrap()
}

#[test]
fn a_drained_client_is_stopped_upgraded_and_made_eligible_with_nothing_lost() {
    for seed in 1..=3 {
        let (mut w, i) = client_world(seed);
        w.drain_client(i, Some(300 * SEC)).unwrap();
        assert!(!c1(&w).eligible && c1(&w).drain);
        let end = w.now().plus(120 * SEC);
        while w.now() < end && !w.client_drain_complete(i) {
            w.step();
        }
        assert!(w.client_drain_complete(i), "seed {seed}: {:?}", view(&w));
        assert_eq!(w.client_allocations_running(i).unwrap(), 0);
        // Down longer than the heartbeat TTL and grace: marked down, but nothing ran on it.
        w.stop_client(i);
        w.install_client(i, Version::new(1, 10, 3)).unwrap();
        w.run_for(120 * SEC);
        assert_eq!(c1(&w).status, rehearse_model::api::NodeStatus::Down);
        w.start_client(i);
        w.run_for(2 * SEC);
        let n = c1(&w);
        assert_eq!(n.status, rehearse_model::api::NodeStatus::Ready);
        assert_eq!(n.version, Version::new(1, 10, 3));
        w.mark_client_eligible(i).unwrap();
        w.run_for(30 * SEC);
        assert!(c1(&w).eligible && !c1(&w).drain);
        assert!(w.client_losses().is_empty(), "seed {seed}");
        assert!(settled(&w), "seed {seed}: {:?}", view(&w));
        assert!(w.violations().is_empty(), "{:?}", w.violations());
    }
}

#[test]
fn a_client_restarted_without_a_drain_loses_its_allocations_only_if_marked_down() {
    for seed in 1..=3 {
        // Back within seconds: the leader never marks it down, its allocations ran on.
        let (mut w, i) = client_world(seed);
        let before = w.client_allocations_running(i).unwrap();
        w.stop_client(i);
        w.install_client(i, Version::new(1, 10, 3)).unwrap();
        w.run_for(5 * SEC);
        assert_eq!(w.client_allocations_running(i).unwrap(), before);
        w.start_client(i);
        w.run_for(60 * SEC);
        assert!(w.client_losses().is_empty(), "seed {seed}");
        assert_eq!(w.workload_outcome().lost_allocs, 0);
        // Down two minutes: marked down, what ran on it is lost and replaced elsewhere.
        let (mut w, i) = client_world(seed);
        w.stop_client(i);
        w.run_for(120 * SEC);
        let losses = w.client_losses().to_vec();
        assert_eq!(losses.len(), 1, "seed {seed}");
        assert_eq!(
            (losses[0].client.as_str(), losses[0].allocs),
            ("c1", before)
        );
        w.start_client(i);
        w.run_for(60 * SEC);
        assert!(settled(&w), "seed {seed}: {:?}", view(&w));
        assert!(w.violations().is_empty(), "{:?}", w.violations());
    }
}

#[test]
fn installing_on_a_running_client_is_refused() {
    let (mut w, i) = client_world(1);
    assert!(w.install_client(i, Version::new(1, 10, 3)).is_err());
}
