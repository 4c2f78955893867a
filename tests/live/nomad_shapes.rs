//! Nomad's answers, as its HTTP API documents them, through the live parsers. Nomad cannot be
//! downloaded here, so these fixtures (in `tests/fixtures/nomad/`) stand in for a live server:
//! they pin the shapes the Nomad driver reads.

use rehearse::live::parse;
use rehearse_model::api::{RaftState, SerfStatus};
use rehearse_model::versions::{Product, Version};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/nomad/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

#[test]
fn agent_self_gives_version_and_string_stats() {
    let a = parse::agent_self(Product::Nomad, &fixture("agent_self.json")).unwrap();
    assert_eq!(a.name, "s2.global");
    assert_eq!(a.version, Version::new(1, 10, 3));
    assert_eq!(a.raft.state, RaftState::Follower);
    assert_eq!(
        (a.raft.term, a.raft.last_log_index, a.raft.commit_index),
        (7, 1203, 1203)
    );
    assert_eq!(a.raft.last_contact_ms, Some(41));
    assert_eq!(a.raft.protocol_version, 3);
    assert_eq!(a.raft.num_peers, 2);
    // Consul's shape is refused as Nomad's (and the reverse), with a message.
    assert!(parse::agent_self(Product::Consul, &fixture("agent_self.json")).is_err());
}

#[test]
fn members_are_wrapped_and_carry_build_and_nonvoter_tags() {
    let m = parse::members(&fixture("members.json")).unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].name, "s1.global");
    assert_eq!(m[1].build, Version::new(1, 10, 3));
    assert_eq!(m[2].status, SerfStatus::Failed);
    assert!(m[2].nonvoter && !m[0].nonvoter);
    assert_eq!(m[0].addr, "10.0.0.1:4648");
}

#[test]
fn raft_configuration_names_protocol_as_raftprotocol() {
    let r = parse::raft_configuration(&fixture("raft_configuration.json")).unwrap();
    assert_eq!(r.servers.len(), 3);
    assert!(r.servers[0].leader && r.servers[0].voter);
    assert!(!r.servers[2].voter);
    assert_eq!(r.servers[1].raft_protocol, 3);
    assert_eq!(r.servers[1].address, "10.0.0.2:4647");
}

#[test]
fn autopilot_health_429_body_is_data() {
    let h = parse::autopilot_health(&fixture("autopilot_health_429.json")).unwrap();
    assert!(!h.healthy);
    assert_eq!(h.failure_tolerance, 0);
    assert_eq!(
        h.leader.as_deref(),
        Some("0b5d2c1a-aaaa-bbbb-cccc-ddddeeeeffff")
    );
    assert_eq!(h.voters.len(), 2);
    let s3 = &h.servers[2];
    assert_eq!(s3.last_contact_ms, None, "-1ns is unknown");
    assert_eq!(s3.stable_since_ms, None, "Go's zero time");
    assert_eq!(s3.serf_status, SerfStatus::Failed);
    assert_eq!(h.servers[1].stable_since_ms, Some(1_795_601_112_500));
    assert_eq!(h.servers[1].last_contact_ms, Some(41));
}

#[test]
fn scheduler_configuration_and_drain_status() {
    let s = parse::scheduler_config(&fixture("scheduler_configuration.json")).unwrap();
    assert_eq!(s.scheduler_algorithm, "spread");
    assert!(s.preemption_service);
    assert!(!s.pause_eval_broker && !s.reject_job_registration);
    assert_eq!(s.modify_index, 5);
    let nodes = fixture("nodes.json");
    assert!(parse::node_drained(&nodes, "s2"));
    assert!(!parse::node_drained(&nodes, "c1"));
    assert_eq!(
        parse::node_id(&nodes, "s2").as_deref(),
        Some("f7476465-4d6e-c0de-26d0-e383c49be941")
    );
    assert_eq!(parse::node_id(&nodes, "s9"), None);
}

/// `GET /v1/nodes` as the client check reads it, and `GET /v1/node/:id/allocations` as the
/// drain check reads it: a stopping allocation (`DesiredStatus` `stop`) still runs until its
/// `ClientStatus` leaves `running`.
#[test]
fn nodes_and_node_allocations() {
    use rehearse_model::api::NodeStatus;
    let nodes = parse::nodes(&fixture("nodes.json")).unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].name, "s2");
    assert_eq!(nodes[0].status, NodeStatus::Ready);
    assert_eq!(nodes[0].version.to_string(), "1.9.7");
    assert!(!nodes[0].drain && nodes[1].drain);
    // `SchedulingEligibility`: a drained node stays ineligible until it is marked eligible.
    assert!(!nodes[0].eligible && nodes[1].eligible);
    // Under a drain: draining now, or left ineligible by one.
    assert_eq!(
        parse::nodes_under_drain(&fixture("nodes.json")),
        ["s2", "c1"]
    );
    let allocs = fixture("node_allocations.json");
    assert_eq!(parse::allocations_running(&allocs).unwrap(), 2);
    assert_eq!(
        parse::allocations_running(&serde_json::json!([])).unwrap(),
        0
    );
    assert!(parse::allocations_running(&serde_json::json!({})).is_err());
    let unversioned = serde_json::json!([{"Name": "c1", "Status": "ready"}]);
    assert!(
        parse::nodes(&unversioned).is_err(),
        "a guessed version would pass the check"
    );
    let down = serde_json::json!([{"Name": "c1", "Status": "disconnected", "Version": "1.9.7"}]);
    assert_eq!(parse::nodes(&down).unwrap()[0].status, NodeStatus::Down);
}
