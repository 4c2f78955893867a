//! The quiet-period elision (module `steady`) changes cost, not behaviour: runs with it and
//! without it must agree in distribution on what observers and the model's own rules see —
//! followers' last contact and commit lag while quiet, write acknowledgements, and the
//! failover time after a leader crash (which depends on the follower timers' phases that the
//! elision hands back).

use rehearse_model::time::{MS, SEC};
use rehearse_model::versions::Version;
use rehearse_sim::*;

const SEEDS: u64 = 120;

struct Sample {
    contact_ms: Vec<f64>,
    commit_lag: Vec<f64>,
    acked: Vec<f64>,
    failover_ms: Vec<f64>,
    events: u64,
}

/// Five Nomad servers with 10 writes/s, 20 s in, the elision on or off.
fn warm_world(seed: u64, elision: bool) -> World {
    let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
    cfg.workload.writes_per_sec = 10.0;
    let mut w = World::new(cfg).unwrap();
    w.set_quiet_elision(elision);
    w.run_for(20 * SEC);
    w
}

fn sample(elision: bool) -> Sample {
    let mut s = Sample {
        contact_ms: Vec::new(),
        commit_lag: Vec::new(),
        acked: Vec::new(),
        failover_ms: Vec::new(),
        events: 0,
    };
    for seed in 0..SEEDS {
        let mut w = warm_world(seed, elision);
        // Reads at irregular times while the cluster is quiet.
        for k in 0..40 {
            w.run_for(137 * MS + k * 7 * MS);
            let Some(l) = w.leader() else { continue };
            let lead = w.agent_self(l).unwrap().raft;
            for f in (0..5).filter(|&f| f != l) {
                let r = w.agent_self(f).unwrap().raft;
                s.contact_ms.push(r.last_contact_ms.unwrap_or(9_999) as f64);
                s.commit_lag
                    .push((lead.commit_index - r.commit_index) as f64);
            }
        }
        s.acked.push(w.workload().acked as f64);
        s.events += w.metrics().events;
        let l = w.leader().unwrap();
        w.crash(l);
        let t0 = w.now();
        for _ in 0..3000 {
            w.run_for(5 * MS);
            if w.leader().is_some_and(|n| n != l) {
                break;
            }
        }
        s.failover_ms.push(w.now().since(t0) as f64 / 1e6);
        assert!(w.violations().is_empty(), "{:?}", w.violations());
    }
    s
}

/// Largest distance between the two empirical distribution functions (two-sample KS).
fn ks(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

/// Each (what, with elision, without, limit): the KS distance stays below the limit.
fn assert_same_distributions(pairs: &[(&str, &Vec<f64>, &Vec<f64>, f64)]) {
    for &(what, a, b, limit) in pairs {
        let d = ks(a, b);
        println!(
            "{what}: mean {:.2} with elision, {:.2} without; KS distance {d:.3}",
            mean(a),
            mean(b)
        );
        assert!(d < limit, "{what}: KS distance {d:.3} ≥ {limit}");
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn elision_changes_no_observable_distribution() {
    let (on, off) = (sample(true), sample(false));
    let pairs = [
        ("last contact (ms)", &on.contact_ms, &off.contact_ms, 0.06),
        (
            "commit lag (entries)",
            &on.commit_lag,
            &off.commit_lag,
            0.06,
        ),
        ("failover (ms)", &on.failover_ms, &off.failover_ms, 0.2),
    ];
    // Critical KS distances at α = 0.01: 1.63·sqrt(2/n) — 0.03 for the 19,200 reads, 0.21 for
    // the 120 failovers; the limits sit at about that level.
    assert_same_distributions(&pairs);
    println!("events: {} with elision, {} without", on.events, off.events);
    assert!(on.events * 3 < off.events, "the elision saves events");
    let (a, b) = (mean(&on.acked), mean(&off.acked));
    assert!((a - b).abs() < 2.0, "acknowledged writes: {a} vs {b}");
}

/// How the server is down.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Down {
    Stopped,
    Paused,
    /// Running, cut off from every other server by a partition (it campaigns alone).
    Isolated,
    /// Running, its messages to the leader dropped (a one-way partition): it hears the
    /// leader's heartbeats, the leader never hears it.
    Deaf,
}

/// The same with one server down (a rolling upgrade's usual state, which the elision also
/// covers), stopped, paused, isolated or deaf: the other followers' contact and commit lag,
/// the server's own contact while it runs, write acknowledgements, and how long the server
/// takes to catch up after it comes back.
#[test]
fn elision_with_a_server_down_changes_no_observable_distribution() {
    for how in [Down::Stopped, Down::Paused, Down::Isolated, Down::Deaf] {
        println!("one server {how:?}:");
        server_down_case(how);
    }
}

fn server_down_case(how: Down) {
    let run = |elision: bool| {
        let (mut contact, mut lag, mut acked, mut catch_up, mut events) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
        let mut own_contact = Vec::new();
        for seed in 0..SEEDS {
            let mut w = warm_world(seed, elision);
            let l = w.leader().unwrap();
            let down = (0..5).find(|&f| f != l).unwrap();
            match how {
                Down::Stopped => w.stop(down, state::StopMode::Graceful),
                Down::Paused => w.pause(down),
                Down::Isolated => {
                    let rest: Vec<_> = (0..5).filter(|&o| o != down).collect();
                    w.partition(&[down], &rest);
                }
                Down::Deaf => w.partition_oneway(down, l),
            }
            let before = w.metrics().events;
            for k in 0..40 {
                w.run_for(137 * MS + k * 7 * MS);
                let Some(l) = w.leader() else { continue };
                let lead = w.agent_self(l).unwrap().raft;
                for f in (0..5).filter(|&f| f != l && f != down) {
                    let r = w.agent_self(f).unwrap().raft;
                    contact.push(r.last_contact_ms.unwrap_or(9_999) as f64);
                    lag.push((lead.commit_index - r.commit_index) as f64);
                }
                if let Ok(a) = w.agent_self(down) {
                    own_contact.push(a.raft.last_contact_ms.unwrap_or(9_999) as f64);
                }
            }
            events += w.metrics().events - before;
            match how {
                Down::Stopped => w.start(down),
                Down::Paused => w.resume(down),
                Down::Isolated | Down::Deaf => w.heal(),
            }
            let t0 = w.now();
            for _ in 0..4000 {
                w.run_for(5 * MS);
                let Some(l) = w.leader() else { continue };
                let lead = w.agent_self(l).unwrap().raft.last_log_index;
                let mine = w.agent_self(down).map(|a| a.raft.last_log_index);
                if mine.is_ok_and(|m| m >= lead) {
                    break;
                }
            }
            catch_up.push(w.now().since(t0) as f64 / 1e6);
            acked.push(w.workload().acked as f64);
            assert!(w.violations().is_empty(), "{:?}", w.violations());
        }
        (contact, lag, acked, catch_up, events, own_contact)
    };
    let (on, off) = (run(true), run(false));
    let pairs = [
        ("last contact (ms)", &on.0, &off.0, 0.06),
        ("commit lag (entries)", &on.1, &off.1, 0.06),
        ("catch-up after start (ms)", &on.3, &off.3, 0.2),
    ];
    assert_same_distributions(&pairs);
    if matches!(how, Down::Isolated | Down::Deaf) {
        assert_same_distributions(&[("its own last contact (ms)", &on.5, &off.5, 0.06)]);
    }
    println!(
        "events while down: {} with elision, {} without",
        on.4, off.4
    );
    assert!(
        on.4 * 3 < off.4,
        "the elision saves events with a server down"
    );
    let (a, b) = (mean(&on.2), mean(&off.2));
    assert!((a - b).abs() < 2.0, "acknowledged writes: {a} vs {b}");
}

/// Writes whose round meets a heartbeat round, or reaches the next tick, are carried out in
/// closed form too (`write_episode`). On a slow network (5–20 ms one way, round trips up to
/// 40 ms against a 100 ms tick) that is about half of them, so their acknowledgement times,
/// the followers' contact and commit lag must still agree with the full simulation; with all
/// five servers up, and with one stopped (the leader's broadcasts then also go to a down
/// peer).
#[test]
fn writes_beside_heartbeats_change_no_observable_distribution() {
    for stopped in [false, true] {
        let run = |elision: bool| {
            let mut acks = [0u64; ACK_BUCKETS];
            let (mut contact, mut lag) = (Vec::new(), Vec::new());
            let mut events = 0;
            for seed in 0..4 * SEEDS {
                let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
                cfg.workload.writes_per_sec = 10.0;
                cfg.net.latency_ns_min = 5 * MS;
                cfg.net.latency_ns_max = 20 * MS;
                let mut w = World::new(cfg).unwrap();
                w.set_quiet_elision(elision);
                w.run_for(20 * SEC);
                if stopped {
                    let l = w.leader().unwrap();
                    w.stop((l + 1) % 5, state::StopMode::Graceful);
                    w.run_for(2 * SEC);
                }
                let before = *w.ack_latency_histogram();
                let ev0 = w.metrics().events;
                for k in 0..40 {
                    w.run_for(137 * MS + k * 7 * MS);
                    let Some(l) = w.leader() else { continue };
                    let lead = w.agent_self(l).unwrap().raft;
                    for f in (0..5).filter(|&f| f != l) {
                        let Ok(a) = w.agent_self(f) else { continue };
                        contact.push(a.raft.last_contact_ms.unwrap_or(9_999) as f64);
                        lag.push((lead.commit_index - a.raft.commit_index) as f64);
                    }
                }
                events += w.metrics().events - ev0;
                for (i, (a, b)) in w.ack_latency_histogram().iter().zip(before).enumerate() {
                    acks[i] += u64::from(a - b);
                }
                assert!(w.violations().is_empty(), "{:?}", w.violations());
            }
            // One sample per acknowledged write, at its bucket's middle (ms).
            let acked: Vec<f64> = acks
                .iter()
                .enumerate()
                .flat_map(|(i, &n)| {
                    let ms = (i as f64 + 0.5) * ACK_BUCKET_NS as f64 / 1e6;
                    std::iter::repeat_n(ms, n as usize)
                })
                .collect();
            (acked, contact, lag, events)
        };
        let (on, off) = (run(true), run(false));
        println!(
            "slow network{}: {} writes acknowledged with elision, {} without; events {} / {}",
            if stopped { ", one server stopped" } else { "" },
            on.0.len(),
            off.0.len(),
            on.3,
            off.3
        );
        // Critical KS distances at α = 0.01: 0.010 for the ~52,000 writes, 0.006 for the
        // ~77,000 reads. (Before the closed form chose its fallback on the longest round
        // instead of the draws, the stopped case read KS 0.016 here: acknowledgements 0.1 ms
        // early.)
        assert_same_distributions(&[
            ("acknowledgement latency (ms)", &on.0, &off.0, 0.015),
            ("last contact (ms)", &on.1, &off.1, 0.015),
            ("commit lag (entries)", &on.2, &off.2, 0.015),
        ]);
        // Less than on a fast network: a round this slow often meets the next write, and
        // then runs message by message and ends the quiet period.
        assert!(on.3 * 3 < off.3 * 2, "the elision saves events");
    }
}

/// A follower whose fsyncs take 200 ms (a slow disk) runs in its own lane while the rest of
/// the cluster stays steady (`steady::lane`): what an observer reads of it — its last contact,
/// how far its log, commit and applied indexes trail the leader's — and the writes
/// acknowledged, the same in distribution with the elision and without; and once the disk is
/// fast again, the time until its log matches the leader's.
#[test]
fn elision_with_a_slow_follower_changes_no_observable_distribution() {
    let run = |elision: bool| {
        let (mut contact, mut log_lag, mut commit_lag, mut applied_lag) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut acked, mut caught_up, mut events) = (Vec::new(), Vec::new(), 0);
        for seed in 0..SEEDS {
            let mut w = warm_world(seed, elision);
            let l = w.leader().unwrap();
            let slow = (0..5).rev().find(|&f| f != l).unwrap();
            w.set_disk_delay(slow, 200 * MS);
            let e0 = w.metrics().events;
            w.run_for(5 * SEC);
            for k in 0..40 {
                w.run_for(137 * MS + k * 7 * MS);
                let lead = w.agent_self(l).unwrap().raft;
                let r = w.agent_self(slow).unwrap().raft;
                contact.push(r.last_contact_ms.unwrap_or(9_999) as f64);
                log_lag.push((lead.last_log_index - r.last_log_index) as f64);
                commit_lag.push((lead.commit_index - r.commit_index) as f64);
                applied_lag.push((lead.commit_index - r.applied_index) as f64);
            }
            events += w.metrics().events - e0;
            acked.push(w.workload().acked as f64);
            w.set_disk_delay(slow, 0);
            let t0 = w.now();
            for _ in 0..2000 {
                w.run_for(MS);
                let last = |id| w.agent_self(id).unwrap().raft.last_log_index;
                if last(slow) == last(l) {
                    break;
                }
            }
            caught_up.push(w.now().since(t0) as f64 / 1e6);
            assert!(w.violations().is_empty(), "{:?}", w.violations());
        }
        (
            [contact, log_lag, commit_lag, applied_lag, acked, caught_up],
            events,
        )
    };
    let ((on, on_events), (off, off_events)) = (run(true), run(false));
    let names = [
        ("slow follower's last contact (ms)", 0.06),
        ("its log behind the leader's (entries)", 0.06),
        ("its commit index behind (entries)", 0.06),
        (
            "its applied index behind the leader's commit (entries)",
            0.06,
        ),
        ("writes acknowledged", 0.25),
        ("disk fast again: time until its log matches (ms)", 0.21),
    ];
    let pairs: Vec<_> = names
        .iter()
        .zip(on.iter().zip(&off))
        .map(|(&(what, limit), (a, b))| (what, a, b, limit))
        .collect();
    // Critical KS distances at α = 0.01: 1.63·sqrt(2/n), 0.026 for the 4,800 reads and 0.21 for
    // the 120 runs.
    assert_same_distributions(&pairs);
    println!("events while the disk is slow: {on_events} with elision, {off_events} without");
    assert!(on_events * 2 < off_events, "the lane saves events");
}
