//! Servers that come back at a new address (hashicorp/nomad#12926).
//!
//! A Raft configuration entry names a server by its Raft ID and says where to reach it. Under
//! raft protocol 3 the ID is a UUID that survives an address change: the entry still *is* the
//! server, only its address is stale until the leader fixes it (the leader removes the entry
//! with the same ID and adds it back at the new address). Under raft protocol 2 the ID *is* the
//! address (hashicorp/raft `AddPeer`): a server that returns at a new address is a new peer to
//! Raft. Nomad's leader adds it as another voter (`addRaftPeer`: no entry matches its address
//! or ID, so nothing is removed) and the old address stays in the configuration as a voter no
//! process answers to, until an operator removes it (`nomad operator raft remove-peer`).
//! Each such stale voter raises the quorum without adding a server that can vote: a second
//! server stopped before it is removed can cost the cluster its quorum.
//!
//! Here an entry is a `Peer { id, addr_gen }`; under protocol 2 one server can have several
//! entries, one per address generation, of which only the current one is the server.
//!
//! Departures: autopilot's dead-server cleanup does not remove the stale entry (autopilot needs
//! raft protocol 3 in Nomad, and the server the entry names is alive in gossip under its new
//! address); the simulator has no `remove-peer` operation, so the stale voter stays for the
//! rest of the run.

use crate::state::Peer;
use crate::world::World;

impl World {
    /// Whether configuration entry `p` is the server it names as that server runs now: its
    /// Raft ID matches. Always under raft protocol 3 (a UUID); under protocol 2 (the ID is the
    /// address) only while the server keeps the address the entry records. Votes,
    /// acknowledgements and contact count only for such entries.
    /// (The Raft nodes' `Directory`, which the world keeps current.)
    pub(crate) fn is_server(&self, p: &Peer) -> bool {
        self.dir.is_server(p)
    }

    /// Number of voter entries in the newest configuration any server holds, stale
    /// protocol-2 addresses included: the quorum is a majority of this.
    pub fn latest_voter_count(&self) -> usize {
        self.newest_config().iter().filter(|p| p.voter).count()
    }

    pub(crate) fn newest_config(&self) -> Vec<Peer> {
        self.servers
            .iter()
            .map(|s| s.disk.latest_config())
            .max_by_key(|(index, _)| *index)
            .map(|(_, peers)| peers)
            .unwrap_or_default()
    }

    /// RPC address a configuration entry records (`10.0.<addr_gen>.<n>:<port>`).
    pub(crate) fn entry_address(&self, p: &Peer) -> rehearse_model::api::SharedStr {
        self.address_at(p.id, p.addr_gen)
    }

    /// Protocol 2: a running, alive server whose configuration entries all record old
    /// addresses is added again at its new address, as a voter (hashicorp/raft `AddPeer`);
    /// the old entries stay. `None` when there is none.
    pub(crate) fn add_readdressed_v2(&self, config: &[Peer]) -> Option<(Vec<Peer>, String)> {
        let id = (0..self.servers.len()).find(|&id| {
            let s = &self.servers[id];
            s.advertised_protocol < 3
                && s.serf == rehearse_model::api::SerfStatus::Alive
                && s.proc == crate::state::ProcessState::Running
                && config.iter().any(|p| p.id == id)
                && !config.iter().any(|p| p.id == id && self.is_server(p))
        })?;
        let mut peers = config.to_vec();
        let p = Peer {
            id,
            voter: true,
            addr_gen: self.servers[id].addr_gen,
            by_address: true,
        };
        peers.push(p);
        let why = format!(
            "added {} at its new address {} as a new voter (raft protocol 2: its old address stays a voter)",
            self.servers[id].spec.name,
            self.entry_address(&p)
        );
        Some((peers, why))
    }

    /// Raft protocol 2 → 3: a server restarted on protocol 3 has a UUID Raft ID, so its
    /// address-ID entry no longer names it. The leader (Consul's `joinConsulServer`, Nomad's
    /// `addRaftPeer`) removes the entry with the duplicate address and adds the server under
    /// its UUID: as a voter while a server still advertises protocol 2 (`AddVoter`), as a
    /// non-voter for autopilot to promote once every server runs protocol 3 (`AddNonvoter`: the
    /// last server restarted returns as a non-voter, failure tolerance 0 until the promotion).
    /// Simplification: the removal and the addition are one configuration entry here, two
    /// consecutive ones in hashicorp/raft (the second follows as soon as the first commits).
    /// Until the leader sees the change the old entry still reaches the process at that
    /// address (hashicorp/raft's RPCs carry no server ID), so it still counts. The leader's
    /// own entry waits until another server leads (a leader removing itself steps down).
    pub(crate) fn drop_address_id(
        &self,
        leader: crate::state::ServerId,
        config: &[Peer],
    ) -> Option<(Vec<Peer>, String)> {
        let p = *config.iter().find(|p| {
            let s = &self.servers[p.id];
            p.by_address
                && p.id != leader
                && s.advertised_protocol >= 3
                && s.serf == rehearse_model::api::SerfStatus::Alive
                && s.proc == crate::state::ProcessState::Running
        })?;
        let mut peers: Vec<Peer> = config.iter().filter(|q| **q != p).copied().collect();
        let voter = self.min_raft_protocol() < 3;
        peers.push(Peer {
            id: p.id,
            voter,
            addr_gen: self.servers[p.id].addr_gen,
            by_address: false,
        });
        let why = format!(
            "removed server with duplicate address {} and added {} under Raft ID {} as a {} ({})",
            self.entry_address(&p),
            self.servers[p.id].spec.name,
            self.raft_id(p.id),
            if voter { "voter" } else { "non-voter" },
            if voter {
                "servers on raft protocol 2 remain"
            } else {
                "every server on raft protocol 3: autopilot promotes it once stable"
            }
        );
        Some((peers, why))
    }

    /// The lowest raft protocol an alive server advertises in gossip (autopilot's
    /// `MinRaftProtocol`); 3 when none is alive.
    pub(crate) fn min_raft_protocol(&self) -> u8 {
        self.servers
            .iter()
            .filter(|s| s.serf == rehearse_model::api::SerfStatus::Alive)
            .map(|s| s.advertised_protocol)
            .min()
            .unwrap_or(3)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::SimConfig;
    use crate::state::StopMode;
    use crate::world::World;
    use rehearse_model::time::SEC;
    use rehearse_model::versions::Version;

    /// A follower restarted at a new address, then another follower stopped.
    fn readdress_then_stop(protocol: u8) -> World {
        let mut cfg = SimConfig::nomad(3, Version::new(1, 3, 5), 7);
        for s in &mut cfg.servers {
            s.raft_protocol = protocol;
        }
        let mut w = World::new(cfg).unwrap();
        w.run_for(20 * SEC);
        let l = w.leader().unwrap();
        let (a, b) = match l {
            0 => (1, 2),
            1 => (0, 2),
            _ => (0, 1),
        };
        w.stop(a, StopMode::Graceful);
        w.change_address(a);
        w.start(a);
        w.run_for(20 * SEC);
        w.stop(b, StopMode::Graceful);
        w.run_for(5 * SEC);
        w
    }

    #[test]
    fn under_protocol_2_the_old_address_stays_a_voter_and_raises_the_quorum() {
        let w = readdress_then_stop(2);
        assert_eq!(w.latest_voter_count(), 4);
        assert_eq!(w.latest_voters().len(), 3);
        assert!(!w.has_quorum(), "2 of 4 voters alive");
        assert!(w.leader().is_none());
    }

    /// A configuration as (ID, node, voter) entries, and autopilot's failure tolerance
    /// (`None`: HTTP 500).
    type Seen = (Vec<(String, String, bool)>, Option<i64>);

    /// A raft protocol 2 → 3 roll of 3 servers in order, followers first, each given 40 s;
    /// returns the world and, after each restart, (configuration, autopilot failure
    /// tolerance or None for HTTP 500) as soon as the leader has re-added the server under
    /// its UUID.
    fn roll_2_to_3() -> (World, Vec<Seen>) {
        let v = Version::new(1, 3, 5);
        let mut cfg = SimConfig::nomad(3, v, 11);
        for s in &mut cfg.servers {
            s.raft_protocol = 2;
        }
        cfg.raft_protocol_by_version = vec![(Version::new(1, 3, 10), 3)];
        let mut w = World::new(cfg).unwrap();
        w.run_for(20 * SEC);
        let l = w.leader().unwrap();
        let mut order: Vec<usize> = (0..3).filter(|&i| i != l).collect();
        order.push(l);
        let mut seen = Vec::new();
        for id in order {
            w.stop(id, StopMode::Graceful);
            w.run_for(SEC);
            w.replace_binary(id, Version::new(1, 3, 10)).unwrap();
            w.start(id);
            // Until the leader has re-added it under its UUID (bounded: 30 s).
            let name = format!("s{}.global", id + 1);
            let mut c = None;
            for _ in 0..60 {
                w.run_for(SEC / 2);
                let Some(via) = w.leader() else { continue };
                let now = w.raft_configuration(via).unwrap();
                if now
                    .servers
                    .iter()
                    .any(|s| *s.node == *name && !s.id.contains(':'))
                {
                    c = Some((
                        now,
                        w.autopilot_health(via).ok().map(|h| h.failure_tolerance),
                    ));
                    break;
                }
            }
            let (c, ft) = c.expect("re-added under its UUID within 30 s");
            seen.push((
                c.servers
                    .iter()
                    .map(|s| (s.id.to_string(), s.node.to_string(), s.voter))
                    .collect(),
                ft,
            ));
            w.run_for(40 * SEC);
        }
        (w, seen)
    }

    #[test]
    fn a_server_restarted_on_protocol_3_changes_its_raft_id_from_address_to_uuid() {
        let (w, seen) = roll_2_to_3();
        // After the first restart: two address IDs and one UUID, all voters (servers on
        // protocol 2 remain, so it is added back as a voter); autopilot health is HTTP 500.
        let (first, ft) = &seen[0];
        assert_eq!(first.len(), 3, "{first:?}");
        let uuids = first.iter().filter(|(id, _, _)| !id.contains(':')).count();
        assert_eq!(uuids, 1, "{first:?}");
        assert!(first.iter().all(|(_, _, voter)| *voter), "{first:?}");
        assert_eq!(*ft, None, "autopilot health answers 500 under protocol 2");
        // At the end every ID is a UUID, no address entry is left, every server is a voter.
        let l = w.leader().unwrap();
        let end = w.raft_configuration(l).unwrap();
        assert_eq!(end.servers.len(), 3, "{end:?}");
        for s in &end.servers {
            assert!(!s.id.contains(':'), "{end:?}");
            assert!(s.voter, "{end:?}");
            assert_eq!(s.raft_protocol, 3);
        }
        let h = w.autopilot_health(l).unwrap();
        assert!(h.healthy && h.failure_tolerance == 1, "{h:?}");
    }

    #[test]
    fn the_last_server_restarted_on_protocol_3_returns_as_a_non_voter_until_promoted() {
        let (_, seen) = roll_2_to_3();
        let (last, ft) = &seen[2];
        let nonvoters: Vec<_> = last.iter().filter(|(_, _, voter)| !*voter).collect();
        assert_eq!(nonvoters.len(), 1, "{last:?}");
        assert!(!nonvoters[0].0.contains(':'), "under its UUID: {last:?}");
        assert_eq!(*ft, Some(0), "failure tolerance 0 until the promotion");
    }

    #[test]
    fn under_protocol_3_the_leader_fixes_the_address() {
        let w = readdress_then_stop(3);
        assert_eq!(w.latest_voter_count(), 3);
        assert!(w.has_quorum());
        assert!(w.leader().is_some());
    }
}
