//! A server that wins the election but fails to establish leadership (hashicorp/nomad#8470).
//!
//! Once Raft makes a server leader, Nomad's leader loop runs `establishLeadership`: autopilot,
//! the plan queue, the eval broker, the periodic dispatcher, then readiness for consistent
//! reads. If a step fails, Raft still has that server as its leader: its heartbeats keep the
//! followers from electing anyone else, while every RPC that must reach the leader — job
//! registrations, autopilot health, the Raft configuration — fails with "Not ready to serve
//! consistent reads". Autopilot does not run, so nothing is reconciled or promoted. Before
//! Nomad 1.3.0 the loop only retried at its next reconcile, and the cluster stayed wedged until
//! the server was restarted. Since 1.3.0 (hashicorp/nomad PR #12293, after Consul's #5247) the
//! server revokes leadership and transfers it to another voter. hashicorp/raft refuses a
//! transfer under raft protocol 2 (`ErrUnsupportedProtocol`): there the loop retries every 5 s
//! and the wedge stays as long as the cause does.
//!
//! The cause is an input here (`World::set_fails_to_lead`, the `fails-to-lead` chaos fault): a
//! server whose `establishLeadership` fails each time it wins, e.g. an error restoring its
//! evaluations or periodic jobs, or a barrier that times out on a large backlog.
//!
//! Departures: `establishLeadership` runs the moment the server wins (really after a barrier on
//! its no-op entry, milliseconds later); a transfer that does not complete is retried when its
//! deadline passes (really three attempts, then a new establishment attempt 5 s later); the
//! 5 s retries of a wedged server are not simulated one by one: it stays wedged while the cause
//! lasts and establishes leadership the moment the cause is cleared.

use crate::state::{ProcessState, Role, ServerId};
use crate::trace::TraceKind;
use crate::world::World;
use rehearse_model::time::SimTime;
use rehearse_model::versions::{Product, Version};
use std::collections::BTreeSet;

/// Wedged-leadership bookkeeping.
#[derive(Debug, Clone, Default)]
pub(crate) struct Wedge {
    /// Servers whose `establishLeadership` fails.
    fails: BTreeSet<ServerId>,
    /// The wedged leader: (server, term, incarnation), since when.
    current: Option<((ServerId, u64, u64), SimTime)>,
    /// Longest wedge so far, and on which server.
    longest: Option<(ServerId, u64)>,
}

/// Whether a version transfers leadership away when `establishLeadership` fails: Nomad 1.3.0+
/// (PR #12293; every Nomad line in the catalog), Consul 1.4.1+ (PR #5247).
pub fn transfers_on_failed_establish(product: Product, v: Version) -> bool {
    match product {
        Product::Nomad => v >= Version::new(1, 3, 0),
        Product::Consul => v >= Version::new(1, 4, 1),
    }
}

impl World {
    /// Makes `establishLeadership` fail on a server each time it wins an election (`on`), or
    /// stop failing. Clearing it on a wedged leader lets it establish leadership at once.
    pub fn set_fails_to_lead(&mut self, id: ServerId, on: bool) {
        let name = self.servers[id].spec.name.clone();
        if on {
            self.wedge.fails.insert(id);
            self.trace(TraceKind::Fault {
                what: format!("{name}: establishLeadership fails"),
            });
            return;
        }
        self.wedge.fails.remove(&id);
        self.trace(TraceKind::Fault {
            what: format!("{name}: establishLeadership works again"),
        });
        if self.is_wedged(id) {
            self.end_wedge();
            self.start_autopilot(id);
            self.maybe_write_schema(id);
            self.maybe_write_license_report(id);
        }
    }

    /// Whether `id` leads in Raft without having established leadership (and runs).
    pub fn is_wedged(&self, id: ServerId) -> bool {
        self.wedge_holds(id) && self.servers[id].proc == ProcessState::Running
    }

    /// Whether `id` still holds the leadership it failed to establish (a pause does not end it:
    /// a leader resumed before it steps down is as wedged as before).
    fn wedge_holds(&self, id: ServerId) -> bool {
        let s = &self.servers[id];
        self.wedge.current.is_some_and(|(k, _)| {
            k == (id, s.disk.term, s.incarnation) && s.vol.role == Role::Leader
        })
    }

    /// The longest time a leader stayed wedged so far (ns), and which server it was.
    pub fn longest_wedge(&self) -> Option<(ServerId, u64)> {
        let open = self
            .wedge
            .current
            .map(|((id, ..), since)| (id, self.now.since(since)));
        match (self.wedge.longest, open) {
            (Some(a), Some(b)) => Some(if b.1 > a.1 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// Called when `id` has just won an election: runs `establishLeadership`. Returns whether
    /// it succeeded; on failure the server leads in Raft only, and where the version and raft
    /// protocol allow, it starts handing leadership to another voter.
    pub(crate) fn establish_leadership(&mut self, id: ServerId) -> bool {
        if !self.wedge.fails.contains(&id) {
            return true;
        }
        self.end_wedge();
        let s = &self.servers[id];
        let key = (id, s.disk.term, s.incarnation);
        self.wedge.current = Some((key, self.now));
        let transfers = self.transfers_away(id);
        let what = if transfers {
            "failed to establish leadership; transferring leadership (nomad#12293)"
        } else if s.advertised_protocol < 3 {
            "failed to establish leadership; leadership transfer is not supported under raft protocol 2"
        } else {
            "failed to establish leadership; this version does not transfer leadership"
        };
        self.trace(TraceKind::Process {
            server: id,
            what: what.into(),
        });
        if transfers {
            self.start_transfer(id, None);
        }
        false
    }

    /// A wedged leader whose transfer did not complete in time tries again.
    pub(crate) fn retry_wedged_transfer(&mut self, id: ServerId) {
        if self.is_wedged(id) && self.transfers_away(id) {
            self.start_transfer(id, None);
        }
    }

    fn transfers_away(&self, id: ServerId) -> bool {
        let s = &self.servers[id];
        s.advertised_protocol >= 3
            && transfers_on_failed_establish(self.cfg.product, s.spec.version)
    }

    /// Closes the wedge, if any, when its leader no longer leads (or has established).
    pub(crate) fn track_wedge(&mut self) {
        if let Some(((id, ..), _)) = self.wedge.current
            && !self.wedge_holds(id)
        {
            self.end_wedge();
        }
    }

    fn end_wedge(&mut self) {
        if let Some(((id, ..), since)) = self.wedge.current.take() {
            let d = self.now.since(since);
            if self.wedge.longest.is_none_or(|(_, l)| d > l) {
                self.wedge.longest = Some((id, d));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::SimConfig;
    use crate::state::StopMode;
    use crate::world::World;
    use rehearse_model::time::SEC;
    use rehearse_model::versions::Version;

    /// Seeds in which the faulted follower won the election after the leader stopped: whether
    /// it was still the leader 10 s later, and the writes acknowledged meanwhile.
    fn wedges(protocol: u8) -> Vec<(bool, u64)> {
        let mut out = Vec::new();
        for seed in 1..=12 {
            let mut cfg = SimConfig::nomad(3, Version::new(1, 3, 5), seed);
            for s in &mut cfg.servers {
                s.raft_protocol = protocol;
            }
            let mut w = World::new(cfg).unwrap();
            w.run_for(20 * SEC);
            let l = w.leader().unwrap();
            let f = (l + 1) % 3;
            w.set_fails_to_lead(f, true);
            w.stop(l, StopMode::Graceful);
            w.run_for(3 * SEC);
            if w.wedge.longest.is_none() && w.wedge.current.is_none() {
                continue; // the other follower won
            }
            let acked = w.workload().acked;
            w.run_for(10 * SEC);
            out.push((w.leader() == Some(f), w.workload().acked - acked));
        }
        out
    }

    #[test]
    fn under_protocol_2_the_wedged_leader_keeps_leading_and_refuses_writes() {
        let runs = wedges(2);
        assert!(!runs.is_empty());
        assert!(
            runs.iter().all(|&(leads, acked)| leads && acked == 0),
            "{runs:?}"
        );
    }

    #[test]
    fn under_protocol_3_the_wedged_leader_hands_leadership_over() {
        let runs = wedges(3);
        assert!(!runs.is_empty());
        assert!(
            runs.iter().all(|&(leads, acked)| !leads && acked > 0),
            "{runs:?}"
        );
    }
}
