//! The exact check of the quiet-period elision (`World::set_exact_check`): every closed-form
//! write round is run again message by message through the Raft handlers with the same
//! latencies, and every server's Raft state must come out identical (the check panics,
//! naming the field, if not). The KS tests in `elision.rs` stay as a second line: they cover
//! what the exact check does not (the latencies' distribution, elided heartbeats).

use rehearse_model::time::SEC;
use rehearse_model::versions::Version;
use rehearse_sim::*;

const SEEDS: u64 = 200;

#[derive(Debug, Clone, Copy)]
enum Case {
    AllUp,
    /// One follower stopped.
    Stopped,
    /// One follower's messages to the leader dropped (a one-way partition).
    Deaf,
    /// One follower cut off from every other server.
    Isolated,
    /// The leader cut off from every other server.
    IsolatedLeader,
}

/// Five Nomad servers with 10 writes/s: 5 s to elect and settle, the case set up, then 15 s
/// of writes with the exact check on. Returns the closed-form rounds checked and the writes
/// acknowledged meanwhile.
fn run(seed: u64, case: Case) -> (u64, u64) {
    let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
    cfg.workload.writes_per_sec = 10.0;
    let mut w = World::new(cfg).unwrap();
    w.run_for(5 * SEC);
    let l = w.leader().expect("a leader after 5 s");
    let f = (0..5).find(|&f| f != l).unwrap();
    match case {
        Case::AllUp => {}
        Case::Stopped => w.stop(f, StopMode::Graceful),
        Case::Deaf => w.partition_oneway(f, l),
        Case::Isolated => {
            let rest: Vec<_> = (0..5).filter(|&o| o != f).collect();
            w.partition(&[f], &rest)
        }
        Case::IsolatedLeader => {
            let rest: Vec<_> = (0..5).filter(|&o| o != l).collect();
            w.partition(&[l], &rest)
        }
    }
    w.set_exact_check(true);
    let before = w.workload().acked;
    w.run_for(15 * SEC);
    (w.exact_checked(), w.workload().acked - before)
}

#[test]
fn closed_form_write_rounds_equal_message_by_message_rounds() {
    for case in [
        Case::AllUp,
        Case::Stopped,
        Case::Deaf,
        Case::Isolated,
        Case::IsolatedLeader,
    ] {
        let (mut checked, mut acked) = (0, 0);
        for seed in 0..SEEDS {
            let (c, a) = run(seed, case);
            checked += c;
            acked += a;
        }
        println!(
            "{case:?}: {SEEDS} seeds, {checked} closed-form rounds checked, {acked} writes acknowledged"
        );
        // Writes flowed (about 150 per seed) and most took the closed form.
        assert!(acked > SEEDS * 100, "{case:?}: {acked} acknowledged");
        assert!(checked > acked / 4, "{case:?}: {checked} rounds checked");
    }
}
