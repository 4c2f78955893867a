//! The gate a restarted server must pass before the next server is touched.

use super::{Observation, base};
use crate::procedure::config::GateConfig;
use rehearse_model::api::SerfStatus;
use rehearse_model::versions::Version;

/// Progress of one gate.
#[derive(Debug, Clone)]
pub(crate) struct GateState {
    servers: Vec<String>,
    /// Every server of the plan: all must be alive members (and voters) before the next step.
    everyone: Vec<String>,
    /// When the servers were started (observer ms).
    pub restarted_at_ms: u64,
    /// The leader's last index recorded before the stop.
    leader_index: u64,
    /// When every server's own API first answered on the target version, caught up.
    up_since_ms: Option<u64>,
    /// Start of the current run of healthy observations that count.
    healthy_since_ms: Option<u64>,
    /// The conditions unmet at the last observation, and its time (see `Procedure::gate_wait`).
    pub pending: Vec<String>,
    /// Time of the last observation folded in (observer ms).
    pub seen_ms: u64,
}

impl GateState {
    pub(crate) fn new(
        servers: &[String],
        everyone: Vec<String>,
        now_ms: u64,
        leader_index: u64,
    ) -> Self {
        GateState {
            servers: servers.to_vec(),
            everyone,
            restarted_at_ms: now_ms,
            leader_index,
            up_since_ms: None,
            healthy_since_ms: None,
            pending: Vec::new(),
            seen_ms: now_ms,
        }
    }

    /// Folds in an observation; returns the conditions still unmet (empty = passed).
    pub(crate) fn update(
        &mut self,
        obs: &Observation,
        cfg: &GateConfig,
        version: Version,
        min_tolerance: i64,
        whole_cluster: bool,
    ) -> Vec<String> {
        let mut unmet = Vec::new();
        let whole_cluster = whole_cluster && cfg.require_fresh_health;
        if cfg.require_fresh_health {
            self.own_answers(obs, cfg, version, &mut unmet);
            if unmet.is_empty() {
                self.up_since_ms.get_or_insert(obs.now_ms);
            }
        }
        self.membership(obs, cfg, whole_cluster, &mut unmet);
        let mut healthy = if cfg.use_autopilot {
            self.health(obs, min_tolerance, &mut unmet)
        } else {
            // A protocol-2 runbook has no autopilot health: a known leader stands in for it.
            let known = obs.view.leader.is_some();
            if !known {
                unmet.push("no leader".into());
            }
            known
        };
        // Like Nomad's own upgrade test, the next server is touched only when *every* server is
        // healthy again: a server that failed on its own during the gate (not the one restarted)
        // halts the upgrade at the gate instead of letting it go on with a cluster already
        // down one server.
        if whole_cluster && cfg.use_autopilot {
            let all = obs.view.health.as_ref().is_ok_and(|h| h.healthy);
            if !all {
                healthy = false;
                unmet.push("not every server is healthy in autopilot".into());
            }
        }
        // Health counts only once the server has proven it is back (its own answer); stale
        // autopilot health from before the restart cannot start the clock.
        let anchored = !cfg.require_fresh_health || self.up_since_ms.is_some();
        if healthy && anchored && unmet.is_empty() {
            self.healthy_since_ms.get_or_insert(obs.now_ms);
        } else {
            self.healthy_since_ms = None;
        }
        let held_ms = self
            .healthy_since_ms
            .map_or(0, |t| obs.now_ms.saturating_sub(t));
        if self.healthy_since_ms.is_none() || held_ms < cfg.stable_for_ms {
            unmet.push(format!(
                "healthy continuously for {}s of {}s",
                held_ms / 1000,
                cfg.stable_for_ms / 1000
            ));
        }
        unmet
    }

    fn own_answers(
        &self,
        obs: &Observation,
        cfg: &GateConfig,
        v: Version,
        unmet: &mut Vec<String>,
    ) {
        for s in &self.servers {
            let agent = obs.view.agents.iter().find(|(n, _)| n == s).map(|(_, a)| a);
            match agent {
                Some(Ok(a)) if a.version != v => {
                    unmet.push(format!("{s} runs {}, not {v}", a.version))
                }
                Some(Ok(a))
                    if cfg.require_caught_up && a.raft.last_log_index < self.leader_index =>
                {
                    unmet.push(format!(
                        "{s} log at {} < leader's {} before the restart",
                        a.raft.last_log_index, self.leader_index
                    ))
                }
                Some(Ok(a)) if a.raft.last_contact_ms.is_none() => {
                    unmet.push(format!("{s} has not heard from a leader since its restart"))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => unmet.push(format!("{s} not answering: {e}")),
                None => unmet.push(format!("{s} not observed")),
            }
        }
    }

    fn membership(
        &self,
        obs: &Observation,
        cfg: &GateConfig,
        whole_cluster: bool,
        unmet: &mut Vec<String>,
    ) {
        if cfg.use_autopilot && !cfg.require_fresh_health && !cfg.require_voter {
            return; // the naive gate reads autopilot health only
        }
        // The careful gate checks the whole cluster, as `server members` and `list-peers` in the
        // runbook do: a server that failed on its own, or that autopilot removed as dead while
        // this one restarted, halts the upgrade here (seen on real Consul: cleanup removed a
        // killed server and autopilot reported the 2 remaining servers Healthy).
        let who = if whole_cluster {
            &self.everyone
        } else {
            &self.servers
        };
        // A list that cannot be read is named once, with the reason, rather than reported as
        // every server missing from it.
        let raft = obs.view.raft.as_ref().ok().filter(|_| cfg.require_voter);
        for s in who {
            if let Ok(m) = &obs.view.members
                && !m
                    .iter()
                    .any(|x| base(&x.name) == s && x.status == SerfStatus::Alive)
            {
                unmet.push(format!("{s} not alive in serf"));
            }
            if let Some(r) = raft
                && !r.servers.iter().any(|x| base(&x.node) == s && x.voter)
            {
                unmet.push(format!("{s} not a voter yet"));
            }
        }
        if let Err(e) = &obs.view.members {
            unmet.push(format!("serf members: {e}"));
        }
        if let (true, Err(e)) = (cfg.require_voter, &obs.view.raft) {
            unmet.push(format!("raft configuration: {e}"));
        }
    }

    fn health(&self, obs: &Observation, min_tolerance: i64, unmet: &mut Vec<String>) -> bool {
        let h = match &obs.view.health {
            Ok(h) => h,
            Err(e) => {
                unmet.push(format!("autopilot health: {e}"));
                return false;
            }
        };
        let mut ok = h.failure_tolerance >= min_tolerance;
        if !ok {
            unmet.push(format!(
                "failure tolerance {} < {min_tolerance}",
                h.failure_tolerance
            ));
        }
        for s in &self.servers {
            let healthy = h.servers.iter().any(|x| base(&x.name) == s && x.healthy);
            if !healthy {
                ok = false;
                unmet.push(format!("{s} not healthy in autopilot"));
            }
        }
        ok
    }
}
