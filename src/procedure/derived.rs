//! Health derived from the raft configuration and each server's own stats, for when
//! autopilot's health endpoint is unavailable: it answers HTTP 500 while any server runs raft
//! protocol 2 ("all servers must have raft_protocol set to 3"), which is the whole of a
//! protocol 2 → 3 roll but its last restart.
//!
//! The rule is autopilot's (Consul 1.8's `isServerHealthy`, hashicorp/raft-autopilot), applied
//! to what the observation read itself: a server is healthy when it is an alive gossip member,
//! its own `/v1/agent/self` answered in this observation, it has heard from a leader within
//! `DERIVED_LAST_CONTACT_MS` (or leads), its last log term is the leader's and its last log
//! index is within MaxTrailingLogs of the leader's. A configuration entry no server answers
//! for (a stale protocol-2 address, listed as `(unknown)`) is an unhealthy voter, so it counts
//! against the quorum as it does in Raft. Failure tolerance is healthy voters minus the quorum
//! of all voters (0 at least, as autopilot reports it). `StableSince` is unknown: the gate
//! measures stability itself from fresh observations.

use super::base;
use rehearse_model::api::{ApiError, AutopilotHealth, RaftState, SerfStatus, ServerHealth};
use rehearse_model::contract::ClusterView;

/// Longest time since a follower last heard from the leader, by its own stats, for it to
/// count as healthy. Autopilot's LastContactThreshold (200 ms) is the leader's measure; a
/// follower's own counter restarts at each heartbeat, which hashicorp/raft sends every
/// HeartbeatTimeout / 10 (500 ms on Consul's default raft_multiplier of 5), so the derived rule
/// allows two heartbeat intervals.
pub const DERIVED_LAST_CONTACT_MS: u64 = 1_000;

/// Whether `health` is an answer the procedure replaces with derived health: the endpoint is
/// unsupported in this configuration (HTTP 500 under raft protocol 2).
pub fn unavailable(health: &Result<AutopilotHealth, ApiError>) -> bool {
    matches!(health, Err(ApiError::Unsupported { .. }))
}

/// Health derived from `v`'s raft configuration, members and agents; `None` when the raft
/// configuration or the leader's own stats were not read (then nothing can be derived, and the
/// error stands).
pub fn health(v: &ClusterView, max_trailing_logs: u64) -> Option<AutopilotHealth> {
    let raft = v.raft.as_ref().ok()?;
    let agent = |name: &str| {
        v.agents
            .iter()
            .find(|(n, _)| &**n == name)
            .and_then(|(_, a)| a.as_ref().ok())
    };
    let leader_entry = raft.servers.iter().find(|s| s.leader)?;
    let leader = agent(base(&leader_entry.node)).filter(|a| a.raft.state == RaftState::Leader)?;
    let (lead_term, lead_index) = (leader.raft.last_log_term, leader.raft.last_log_index);
    let serf = |name: &str| {
        v.members
            .as_ref()
            .ok()
            .and_then(|m| m.iter().find(|x| base(&x.name) == name))
            .map(|x| x.status)
    };
    let servers: Vec<ServerHealth> = raft
        .servers
        .iter()
        .map(|e| {
            let name = base(&e.node);
            let a = agent(name);
            let status = serf(name).unwrap_or(SerfStatus::Failed);
            let contact = a.and_then(|a| a.raft.last_contact_ms);
            let healthy = a.is_some_and(|a| {
                status == SerfStatus::Alive
                    && (e.leader || contact.is_some_and(|c| c <= DERIVED_LAST_CONTACT_MS))
                    && a.raft.last_log_term == lead_term
                    && a.raft.last_log_index.saturating_add(max_trailing_logs) >= lead_index
            });
            ServerHealth {
                id: e.id.clone(),
                name: e.node.clone(),
                address: e.address.clone(),
                serf_status: status,
                version: a.map_or(leader.version, |a| a.version),
                leader: e.leader,
                last_contact_ms: contact,
                last_term: a.map_or(0, |a| a.raft.last_log_term),
                last_index: a.map_or(0, |a| a.raft.last_log_index),
                healthy,
                voter: e.voter,
                stable_since_ms: None,
            }
        })
        .collect();
    let voters = servers.iter().filter(|s| s.voter).count();
    let healthy_voters = servers.iter().filter(|s| s.voter && s.healthy).count();
    let quorum = voters / 2 + 1;
    Some(AutopilotHealth {
        healthy: servers.iter().all(|s| s.healthy),
        failure_tolerance: (healthy_voters as i64 - quorum as i64).max(0),
        leader: Some(leader_entry.id.clone()),
        voters: servers
            .iter()
            .filter(|s| s.voter)
            .map(|s| s.id.clone())
            .collect(),
        servers,
    })
}
