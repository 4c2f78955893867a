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
        };
        peers.push(p);
        let why = format!(
            "added {} at its new address {} as a new voter (raft protocol 2: its old address stays a voter)",
            self.servers[id].spec.name,
            self.entry_address(&p)
        );
        Some((peers, why))
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

    #[test]
    fn under_protocol_3_the_leader_fixes_the_address() {
        let w = readdress_then_stop(3);
        assert_eq!(w.latest_voter_count(), 3);
        assert!(w.has_quorum());
        assert!(w.leader().is_some());
    }
}
