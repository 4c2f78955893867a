//! The exact check of the quiet-period elision (`World::set_exact_check`): every closed-form
//! write round is run again message by message through the Raft handlers with the same
//! latencies, and every server's Raft state must come out identical (the check panics,
//! naming the field, if not); so are spans of quiet periods (`World::check_quiet`) and of a
//! slow follower's lane (`World::check_lane`). The KS tests in `elision.rs` stay as a second
//! line: they cover what the exact check does not (the latencies' distribution).

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

/// Five Nomad servers with `writes_per_sec` writes/s after 5 s to elect and settle, with
/// the case set up.
fn world_with(seed: u64, case: Case, writes_per_sec: f64) -> World {
    let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
    cfg.workload.writes_per_sec = writes_per_sec;
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
    w
}

/// Five Nomad servers with 10 writes/s: 5 s to elect and settle, the case set up, then 15 s
/// of writes with the exact check on. Returns the closed-form rounds checked and the writes
/// acknowledged meanwhile.
fn run(seed: u64, case: Case) -> (u64, u64) {
    let mut w = world_with(seed, case, 10.0);
    w.set_exact_check(true);
    let before = w.workload().acked;
    w.run_for(15 * SEC);
    (w.exact_checked(), w.workload().acked - before)
}

/// Spans compared: the same, ended before their end (nothing compared), and closed-form
/// write episodes in the spans that were the same (the spans overlap: an episode is counted
/// in each span it falls in).
#[derive(Default)]
struct Tally {
    same: u64,
    ended: u64,
    episodes: u64,
}

/// Every 50 ms of 15 s, `check` (`World::check_lane` or `World::check_quiet`) on the next
/// 300 ms; counts into `tally` and panics on a difference.
fn compare_spans(w: &mut World, check: fn(&World, u64) -> SpanCheck, tally: &mut Tally) {
    for _ in 0..300 {
        w.run_for(50 * rehearse_model::time::MS);
        match check(w, 300 * rehearse_model::time::MS) {
            SpanCheck::Same { episodes } => {
                tally.same += 1;
                tally.episodes += episodes;
            }
            SpanCheck::Ended => tally.ended += 1,
            SpanCheck::NotSteady => {}
            SpanCheck::Differs(diff) => panic!("{diff}"),
        }
    }
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

/// The exact check of a slow follower's lane (`World::check_lane`): five servers at 10
/// writes/s, one follower's fsyncs taking 200 ms; every 50 ms of 15 s, while a steady period
/// runs it in a lane, the next 300 ms (to just before a heartbeat tick) are run both ways —
/// the period with its lane, and message by message with the period's draws forced on every
/// message — and every server's Raft state must agree field for field.
#[test]
fn a_slow_followers_lane_is_the_same_as_its_messages_one_by_one() {
    let mut tally = Tally::default();
    for seed in 0..SEEDS {
        let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
        cfg.workload.writes_per_sec = 10.0;
        let mut w = World::new(cfg).unwrap();
        w.run_for(5 * SEC);
        let l = w.leader().expect("a leader after 5 s");
        let slow = (0..5).rev().find(|&f| f != l).unwrap();
        w.set_disk_delay(slow, 200 * rehearse_model::time::MS);
        compare_spans(&mut w, World::check_lane, &mut tally);
    }
    let Tally { same, ended, .. } = tally;
    println!("lane spans compared: {same} the same, {ended} ended before their end");
    assert!(
        same > 100 * SEEDS,
        "most of the time runs in a lane: {same}"
    );
}

/// The exact check of quiet periods without a lane (`World::check_quiet`): five servers, all
/// up, one follower stopped, or one deaf (its answers to the leader dropped), with no writes
/// (heartbeat ticks only) and with 10 writes/s (ticks, closed-form rounds and episodes);
/// every 50 ms of 15 s, while a steady period runs, the next 300 ms are run both ways — the
/// period in closed form, and message by message with its draws forced on every message —
/// and every server's Raft state must agree field for field.
#[test]
fn quiet_periods_are_the_same_as_their_messages_one_by_one() {
    let cases = [
        (Case::AllUp, 0.0),
        (Case::AllUp, 10.0),
        (Case::Stopped, 0.0),
        (Case::Stopped, 10.0),
        (Case::Deaf, 0.0),
        (Case::Deaf, 10.0),
    ];
    for (case, writes_per_sec) in cases {
        let mut tally = Tally::default();
        for seed in 0..SEEDS {
            let mut w = world_with(seed, case, writes_per_sec);
            compare_spans(&mut w, World::check_quiet, &mut tally);
        }
        let Tally {
            same,
            ended,
            episodes,
        } = tally;
        println!(
            "{case:?}, {writes_per_sec} writes/s: quiet spans compared: {same} the same \
             ({episodes} closed-form write episodes in them), {ended} ended or ran a write \
             message by message"
        );
        assert!(
            same > 100 * SEEDS,
            "{case:?}: most of the time is quiet: {same}"
        );
        // With writes, the spans compared hold closed-form episodes (about one write in
        // sixteen meets a heartbeat round in flight).
        assert!(
            writes_per_sec == 0.0 || episodes > 10 * SEEDS,
            "{case:?}: {episodes} closed-form episodes compared"
        );
    }
}
