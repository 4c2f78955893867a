//! A raft protocol 2 → 3 roll on real Consul 1.8.7 (issue #19): three servers started with
//! `-raft-protocol=2`, a plan whose target sets protocol 3. Autopilot health answers HTTP 500
//! until the last restart, so the executor derives health from the raft configuration and each
//! server's own stats; each restarted server comes back under a UUID Raft ID, the last one as a
//! non-voter until autopilot promotes it. The roll must end with every server a voter again
//! under a UUID, or halt safely saying why. Seen on Consul 1.8.7: the last server restarted
//! (the former leader) can win an election under its old address ID, remove itself, and stop
//! answering `/v1/agent/self`; autopilot then never promotes it and the gate halts.

use super::assert_rolled_in_order;
use super::cluster::ConsulCluster;
use rehearse::live::journal::Journal;

#[test]
fn a_raft_protocol_2_to_3_roll_ends_with_every_server_a_voter() {
    let c = ConsulCluster::start_protocol("proto", 162, 3, (2, 3));
    let before = c.raft_configuration().expect("a raft configuration");
    assert_eq!(before.servers.len(), 3, "{before:?}");
    for s in &before.servers {
        // Under protocol 2 the Raft ID is the address.
        assert_eq!(s.id, s.address, "{before:?}");
        assert!(s.voter, "{before:?}");
    }
    let leader = c.leader();
    let out = c.execute(&["--apply"]);
    println!("{}", out.text);
    assert!(
        out.text.contains("acknowledged writes lost: 0"),
        "no acknowledged write lost:\n{}",
        out.text
    );
    let records = Journal::read(&c.journal()).unwrap();
    let after = c.raft_configuration().expect("a raft configuration");
    if out.code == Some(0) {
        assert_rolled_in_order(&records, &leader);
        assert_eq!(after.servers.len(), 3, "{after:?}");
        for s in &after.servers {
            assert!(s.voter, "every server a voter again: {after:?}");
            assert_ne!(
                s.id, s.address,
                "a UUID Raft ID under protocol 3: {after:?}"
            );
            assert_eq!(s.raft_protocol, 3, "{after:?}");
        }
        // With every server on protocol 3 autopilot answers again.
        c.wait_healthy(1);
        return;
    }
    // Otherwise a safe halt that says why: at a gate (a restarted server not back as a healthy
    // voter), with no stop after it and a quorum of voters left.
    assert_eq!(out.code, Some(1), "{}", out.text);
    assert!(
        out.text.contains("halted safely: gate timed out for"),
        "{}",
        out.text
    );
    let acts = super::actions(&records);
    let last_start = acts.iter().rposition(|a| a.0 == "start");
    let last_stop = acts.iter().rposition(|a| a.0 == "stop");
    assert!(
        last_start > last_stop,
        "the halted gate followed a start: {acts:?}"
    );
    let voters = after.servers.iter().filter(|s| s.voter).count();
    assert!(voters >= 2, "a quorum of voters kept: {after:?}");
    assert!(after.servers.iter().any(|s| s.leader), "{after:?}");
}
