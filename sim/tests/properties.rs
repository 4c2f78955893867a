//! Property: random crash/restart/pause/partition schedules never violate Raft safety, and once
//! every fault has healed a leader is elected within a bound derived from the timers.

use proptest::prelude::*;
use rehearse_model::time::SEC;
use rehearse_model::versions::Version;
use rehearse_sim::*;

#[derive(Debug, Clone)]
enum Fault {
    Crash(usize),
    Stop(usize),
    Pause(usize),
    Partition(usize),
    OneWay(usize, usize),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (0..7usize).prop_map(Fault::Crash),
        (0..7usize).prop_map(Fault::Stop),
        (0..7usize).prop_map(Fault::Pause),
        (0..7usize).prop_map(Fault::Partition),
        (0..7usize, 0..7usize).prop_map(|(a, b)| Fault::OneWay(a, b)),
    ]
}

fn apply(w: &mut World, f: &Fault) {
    let n = w.server_count();
    match *f {
        Fault::Crash(i) => w.crash(i % n),
        Fault::Stop(i) => w.stop(i % n, StopMode::Graceful),
        Fault::Pause(i) => w.pause(i % n),
        Fault::Partition(i) => {
            let rest: Vec<ServerId> = (0..n).filter(|&j| j != i % n).collect();
            w.partition(&[i % n], &rest);
        }
        Fault::OneWay(a, b) if a % n != b % n => w.partition_oneway(a % n, b % n),
        Fault::OneWay(..) => {}
    }
}

fn heal_all(w: &mut World) {
    w.heal();
    for i in 0..w.server_count() {
        w.resume(i);
        w.start(i);
    }
}

/// Bound after healing: boot (≤ 2 s) + gossip rejoin (0.5 s) + a follower timer (< 2·HT) +
/// up to 8 election rounds of < 2·ET each with split votes (each round U[ET,2ET)), + the
/// dead-server cleanup/re-add cycle that can follow a long outage (reconcile 10 s +
/// stabilization 10 s, twice). With HT = ET = 1 s: 2 + 0.5 + 2 + 16 + 40 ≈ 60 s.
const ELECTION_BOUND_S: u64 = 60;

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_fault_schedules_keep_raft_safe(
        seed in any::<u64>(),
        size in prop_oneof![Just(3usize), Just(5), Just(7)],
        schedule in prop::collection::vec((1u64..20, fault()), 1..8),
    ) {
        let mut w = World::new(SimConfig::nomad(size, Version::new(1, 9, 7), seed)).unwrap();
        w.run_for(20 * SEC);
        for (gap_s, f) in &schedule {
            apply(&mut w, f);
            w.run_for(gap_s * SEC);
        }
        heal_all(&mut w);
        let healed = w.now();
        let mut elected = None;
        for _ in 0..ELECTION_BOUND_S * 10 {
            w.run_for(SEC / 10);
            if w.leader().is_some() && w.has_quorum() {
                elected = Some(w.now().since(healed));
                break;
            }
        }
        w.check_log_matching();
        prop_assert!(w.violations().is_empty(), "violations: {:?}", w.violations());
        prop_assert!(elected.is_some(), "no leader {ELECTION_BOUND_S}s after healing (seed {seed})");
        w.run_for(10 * SEC);
        prop_assert_eq!(w.workload().lost_acked, 0);
    }
}
