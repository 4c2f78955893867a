//! Raft with hashicorp/raft semantics (v1.7), as handlers on the world.
//!
//! Modelled: follower timer U[HT,2HT) that only fires an election when no leader contact was seen
//! for HT; candidate timer U[ET,2ET); leader heartbeats every HT/10; leader-lease step-down;
//! vote rejection while a leader is known (except leadership transfer); pre-vote where the
//! version has it (a peer without pre-vote counts as granting); AppendEntries with batching
//! (MaxAppendEntries) and a conflict hint; commit by a quorum of voters in the current term;
//! snapshots with TrailingLogs; InstallSnapshot when the follower needs compacted entries, with a
//! duration proportional to state size; non-voters; configuration changes as log entries (the
//! latest configuration is used as soon as it is appended, as hashicorp/raft does);
//! leadership transfer with TimeoutNow.
//!
//! Simplifications: one AppendEntries in flight per follower (no pipelining), so replication
//! throughput is bounded by round trips; heartbeats are AppendEntries with no entries.

use crate::state::{Entry, EntryKind, Peer, Role, ServerId, Snapshot};
use crate::trace::TraceKind;
use crate::world::{APPLY_LIMIT, TimerKind, World};
use rehearse_model::versions::line_info;
use serde::{Deserialize, Serialize};

/// A Raft RPC or its answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Msg {
    /// RequestVote (or a pre-vote).
    Vote {
        /// Candidate's term (term+1 for a pre-vote).
        term: u64,
        /// Candidate's last log index.
        last_index: u64,
        /// Candidate's last log term.
        last_term: u64,
        /// Pre-vote round.
        pre: bool,
        /// Leadership transfer (overrides the "leader known" rejection).
        transfer: bool,
    },
    /// Answer to `Vote`.
    VoteResp {
        /// Voter's term.
        term: u64,
        /// Granted.
        granted: bool,
        /// Pre-vote round.
        pre: bool,
    },
    /// AppendEntries (a heartbeat when `entries` is empty).
    Append {
        /// Leader's term.
        term: u64,
        /// Index before `entries`.
        prev_index: u64,
        /// Term at `prev_index`.
        prev_term: u64,
        /// New entries.
        entries: Entries,
        /// Leader's commit index.
        commit: u64,
        /// Sent by the heartbeat path while a batch is in flight (see `AppendResp::heartbeat`).
        heartbeat: bool,
    },
    /// Answer to `Append` or `Install`.
    AppendResp {
        /// Follower's term.
        term: u64,
        /// Accepted.
        success: bool,
        /// Follower's last index after the call (a hint on failure).
        last_index: u64,
        /// Answers a heartbeat sent while a batch was in flight. In hashicorp/raft heartbeats
        /// run on their own goroutine and connection: their answers refresh contact and never
        /// move nextIndex or start another replication round, so the leader keeps one
        /// replication chain per follower whatever the latency.
        heartbeat: bool,
    },
    /// InstallSnapshot.
    Install {
        /// Leader's term.
        term: u64,
        /// The snapshot (boxed: rare, and it would make every queued event larger).
        snap: Box<Snapshot>,
    },
    /// Leadership transfer: start an election now.
    TimeoutNow {
        /// Leader's term.
        term: u64,
    },
}

/// The entries an AppendEntries carries. Nearly every one carries none (a heartbeat) or one
/// (a write): those are held inline, so sending them allocates nothing; longer batches are a
/// `Vec`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "Vec<Entry>", into = "Vec<Entry>")]
pub enum Entries {
    /// One entry.
    One(Entry),
    /// Any number (none for a heartbeat).
    Many(Vec<Entry>),
}

impl Entries {
    /// No entries (a heartbeat).
    pub fn none() -> Self {
        Entries::Many(Vec::new())
    }

    /// Copies of `entries`.
    pub fn from_slice(entries: &[Entry]) -> Self {
        match entries {
            [e] => Entries::One(e.clone()),
            _ => Entries::Many(entries.to_vec()),
        }
    }

    /// How many.
    pub fn len(&self) -> usize {
        match self {
            Entries::One(_) => 1,
            Entries::Many(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<Entry>> for Entries {
    fn from(v: Vec<Entry>) -> Self {
        Entries::Many(v)
    }
}

impl From<Entries> for Vec<Entry> {
    fn from(e: Entries) -> Self {
        match e {
            Entries::One(e) => vec![e],
            Entries::Many(v) => v,
        }
    }
}

impl IntoIterator for Entries {
    type Item = Entry;
    type IntoIter = std::iter::Chain<std::option::IntoIter<Entry>, std::vec::IntoIter<Entry>>;

    fn into_iter(self) -> Self::IntoIter {
        // `Vec::new()` does not allocate.
        match self {
            Entries::One(e) => Some(e).into_iter().chain(Vec::new()),
            Entries::Many(v) => None.into_iter().chain(v),
        }
    }
}

/// Majority of `n` voters.
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

impl World {
    pub(crate) fn is_voter(&self, id: ServerId) -> bool {
        self.servers[id]
            .vol
            .config
            .iter()
            .any(|p| p.id == id && p.voter && self.is_server(p))
    }

    fn peers_of(&self, id: ServerId) -> Vec<Peer> {
        let c = &self.servers[id].vol.config;
        c.iter().filter(|p| p.id != id).copied().collect()
    }

    pub(crate) fn set_role(&mut self, id: ServerId, role: Role) {
        // A cut-off server campaigning alone changes nothing a steady period depends on.
        if !self.steady_cut_off(id) {
            self.leave_steady();
        }
        let s = &mut self.servers[id];
        if s.vol.role == role && role != Role::Candidate {
            return;
        }
        s.vol.role = role;
        s.vol.role_gen += 1;
        let term = s.disk.term;
        self.trace(TraceKind::Role {
            server: id,
            role,
            term,
        });
        self.leadership_changed();
    }

    pub(crate) fn become_follower(&mut self, id: ServerId, term: u64) {
        self.leave_steady();
        let s = &mut self.servers[id];
        if term > s.disk.term {
            s.disk.term = term;
            s.disk.voted_for = None;
        }
        s.vol.transfer_to = None;
        s.vol.prevote = false;
        let was_follower = s.vol.role == Role::Follower;
        self.set_role(id, Role::Follower);
        if !was_follower {
            self.arm_follower_timer(id);
        }
    }

    pub(crate) fn arm_follower_timer(&mut self, id: ServerId) {
        let ht = self.cfg.heartbeat_timeout_ns();
        let d = self.rng_timers.range(ht, 2 * ht);
        self.timer(id, d, TimerKind::Follower);
    }

    pub(crate) fn on_follower_timer(&mut self, id: ServerId, generation: u64) {
        let ht = self.cfg.heartbeat_timeout_ns();
        let s = &self.servers[id];
        if s.vol.role != Role::Follower || s.vol.role_gen != generation {
            return;
        }
        let fresh = s.vol.last_contact.is_some_and(|t| self.now.since(t) < ht);
        if fresh {
            self.arm_follower_timer(id);
            return;
        }
        // hashicorp/raft clears the known leader when the heartbeat timer fails, for everyone.
        self.servers[id].vol.leader = None;
        if !self.is_voter(id) {
            // Non-voters (and servers not in any configuration) never campaign.
            self.arm_follower_timer(id);
            return;
        }
        self.start_candidacy(id, false);
    }

    fn start_candidacy(&mut self, id: ServerId, transfer: bool) {
        let pre_vote = !transfer && self.pre_vote(id);
        self.metrics.elections += 1;
        let s = &mut self.servers[id];
        s.vol.leader = None;
        s.vol.votes.clear();
        s.vol.prevote = pre_vote;
        s.vol.role = Role::Follower; // force set_role to record the candidacy
        self.set_role(id, Role::Candidate);
        if pre_vote {
            self.send_votes(id, true, false);
        } else {
            self.real_election(id, transfer);
        }
        let et = self.cfg.election_timeout_ns();
        let d = self.rng_timers.range(et, 2 * et);
        self.timer(id, d, TimerKind::Candidate);
    }

    fn pre_vote(&self, id: ServerId) -> bool {
        let s = &self.servers[id];
        line_info(self.cfg.product, s.spec.version).is_ok_and(|l| l.pre_vote)
    }

    fn real_election(&mut self, id: ServerId, transfer: bool) {
        let s = &mut self.servers[id];
        s.vol.prevote = false;
        s.disk.term += 1;
        s.disk.voted_for = Some(id);
        s.vol.votes.clear();
        s.vol.votes.push(id);
        self.send_votes(id, false, transfer);
        self.check_votes(id);
    }

    fn send_votes(&mut self, id: ServerId, pre: bool, transfer: bool) {
        let s = &self.servers[id];
        let term = if pre { s.disk.term + 1 } else { s.disk.term };
        let (last_index, last_term) = (s.disk.last_index(), s.disk.last_term());
        if pre {
            self.servers[id].vol.votes.push(id);
        }
        for p in self.peers_of(id) {
            if !p.voter {
                continue;
            }
            if pre && !self.pre_vote(p.id) {
                // A peer that does not understand pre-vote is counted as granting.
                self.servers[id].vol.votes.push(p.id);
                continue;
            }
            let msg = Msg::Vote {
                term,
                last_index,
                last_term,
                pre,
                transfer,
            };
            self.send(id, p, msg);
        }
        if pre {
            self.check_votes(id);
        }
    }

    pub(crate) fn on_candidate_timer(&mut self, id: ServerId, generation: u64) {
        let s = &self.servers[id];
        if s.vol.role != Role::Candidate || s.vol.role_gen != generation {
            return;
        }
        self.start_candidacy(id, false);
    }

    fn check_votes(&mut self, id: ServerId) {
        let (voters, entries) = self.voter_entries(id);
        let s = &self.servers[id];
        let got = voters.iter().filter(|v| s.vol.votes.contains(v)).count();
        if got < quorum(entries) {
            return;
        }
        if s.vol.prevote {
            self.real_election(id, false);
        } else {
            self.become_leader(id);
        }
    }

    fn on_vote(&mut self, to: ServerId, from: ServerId, m: (u64, u64, u64, bool, bool)) {
        let (term, last_index, last_term, pre, transfer) = m;
        let s = &self.servers[to];
        let reply = |granted, term| Msg::VoteResp { term, granted, pre };
        let known_leader = s.vol.leader.is_some_and(|l| l != from);
        let member = s
            .vol
            .config
            .iter()
            .any(|p| p.id == from && p.voter && self.is_server(p));
        if (known_leader && !transfer) || term < s.disk.term || !member {
            let t = s.disk.term;
            return self.reply(to, from, reply(false, t));
        }
        if !pre && term > s.disk.term {
            self.become_follower(to, term);
        }
        let s = &self.servers[to];
        let log_ok = last_term > s.disk.last_term()
            || (last_term == s.disk.last_term() && last_index >= s.disk.last_index());
        let vote_free = pre || s.disk.voted_for.is_none_or(|v| v == from);
        let granted = log_ok && vote_free;
        if granted && !pre {
            let s = &mut self.servers[to];
            s.disk.voted_for = Some(from);
            s.vol.last_contact = Some(self.now);
        }
        let t = self.servers[to].disk.term;
        self.reply(to, from, reply(granted, t));
    }

    fn on_vote_resp(&mut self, to: ServerId, from: ServerId, term: u64, granted: bool, pre: bool) {
        let s = &self.servers[to];
        if term > s.disk.term && !(pre && granted) {
            return self.become_follower(to, term);
        }
        if s.vol.role != Role::Candidate || s.vol.prevote != pre || !granted {
            return;
        }
        if !pre && term != s.disk.term {
            return;
        }
        if !self.servers[to].vol.votes.contains(&from) {
            self.servers[to].vol.votes.push(from);
        }
        self.check_votes(to);
    }

    fn become_leader(&mut self, id: ServerId) {
        let last = self.servers[id].disk.last_index();
        let now = self.now;
        let s = &mut self.servers[id];
        for p in s.vol.progress.iter_mut() {
            *p = crate::state::Progress {
                next: last + 1,
                matched: 0,
                inflight: false,
                inflight_until: now,
                contact: now,
                snapshot_inflight: None,
            };
        }
        s.vol.progress[id].matched = last;
        s.vol.leader = Some(id);
        s.vol.transfer_to = None;
        self.set_role(id, Role::Leader);
        // Nomad's leader loop (see `leadership`): autopilot and the newer entry types only once
        // leadership is established.
        let established = self.establish_leadership(id);
        if established {
            self.start_autopilot(id);
        }
        let term = self.servers[id].disk.term;
        self.check_election_safety(id, term);
        self.check_leader_completeness(id);
        self.append_local(id, EntryKind::Noop);
        if established {
            self.maybe_write_schema(id);
            self.maybe_write_license_report(id);
        }
        let hb = self.cfg.heartbeat_timeout_ns() / 10;
        self.timer(id, hb, TimerKind::Heartbeat);
        self.timer(id, self.cfg.leader_lease_ns(), TimerKind::Lease);
        self.broadcast(id);
    }

    /// Appends an entry on the leader and returns its index.
    pub(crate) fn append_local(&mut self, id: ServerId, kind: EntryKind) -> u64 {
        self.leave_steady();
        self.append_entry(id, kind)
    }

    /// `append_local` without leaving a steady period (the closed-form write round).
    pub(crate) fn append_entry(&mut self, id: ServerId, kind: EntryKind) -> u64 {
        let s = &mut self.servers[id];
        let term = s.disk.term;
        if let EntryKind::Config(p) = &kind {
            s.vol.config = p.clone();
        }
        s.disk.log.push(Entry { term, kind });
        let idx = s.disk.last_index();
        if matches!(
            s.disk.log.last().map(|e| &e.kind),
            Some(EntryKind::Config(_))
        ) {
            s.vol.config_index = idx;
        }
        s.vol.progress[id].matched = idx;
        self.advance_commit(id);
        idx
    }

    pub(crate) fn on_heartbeat_timer(&mut self, id: ServerId, generation: u64) {
        let s = &self.servers[id];
        if s.vol.role != Role::Leader || s.vol.role_gen != generation {
            return;
        }
        self.broadcast(id);
        let hb = self.cfg.heartbeat_timeout_ns() / 10;
        self.timer(id, hb, TimerKind::Heartbeat);
    }

    pub(crate) fn on_lease_timer(&mut self, id: ServerId, generation: u64) {
        let s = &self.servers[id];
        if s.vol.role != Role::Leader || s.vol.role_gen != generation {
            return;
        }
        let lease = self.cfg.leader_lease_ns();
        let (voters, entries) = self.voter_entries(id);
        let now = self.now;
        let s = &self.servers[id];
        let in_touch = voters
            .iter()
            .filter(|&&v| v == id || now.since(s.vol.progress[v].contact) <= lease)
            .count();
        if in_touch < quorum(entries) {
            let term = s.disk.term;
            self.trace(TraceKind::LeaseLost { server: id, term });
            self.servers[id].vol.leader = None;
            self.become_follower(id, term);
            return;
        }
        self.timer(id, lease, TimerKind::Lease);
    }

    /// Sends AppendEntries (or InstallSnapshot) to every peer that has nothing in flight.
    pub(crate) fn broadcast(&mut self, id: ServerId) {
        self.leave_steady();
        // Index loop: `replicate` needs `&mut self`, and Peer is Copy, so no clone of the config.
        for i in 0..self.servers[id].vol.config.len() {
            let p = self.servers[id].vol.config[i];
            if p.id != id && self.is_server(&p) {
                self.replicate(id, p, true);
            }
        }
    }

    fn replicate(&mut self, id: ServerId, p: Peer, heartbeat: bool) {
        let s = &self.servers[id];
        let pr = s.vol.progress[p.id];
        if pr.inflight && !heartbeat {
            return;
        }
        let term = s.disk.term;
        if pr.inflight {
            // A heartbeat while a batch is in flight: empty AppendEntries at the matched point
            // keeps the follower's timer fresh without disturbing the batch.
            let snap_index = s.disk.snapshot.as_ref().map_or(0, |x| x.index);
            let Some((prev, prev_term)) = [pr.matched, snap_index]
                .into_iter()
                .find_map(|i| s.disk.term_at(i).map(|t| (i, t)))
            else {
                return;
            };
            let commit = s.vol.commit.min(prev);
            let msg = Msg::Append {
                term,
                prev_index: prev,
                prev_term,
                entries: Entries::none(),
                commit,
                heartbeat: true,
            };
            return self.send(id, p, msg);
        }
        if pr.next < s.disk.log_start() {
            return self.send_snapshot(id, p);
        }
        let prev = pr.next - 1;
        let Some(prev_term) = s.disk.term_at(prev) else {
            return self.send_snapshot(id, p);
        };
        let max = self.cfg.raft.max_append_entries;
        let start = (pr.next - s.disk.log_start()) as usize;
        let end = (start + max).min(s.disk.log.len());
        let entries = Entries::from_slice(&s.disk.log[start.min(end)..end]);
        let msg = Msg::Append {
            term,
            prev_index: prev,
            prev_term,
            entries,
            commit: s.vol.commit,
            heartbeat: false,
        };
        let until = self.now.plus(self.rpc_slack_ns());
        let pr = &mut self.servers[id].vol.progress[p.id];
        pr.inflight = true;
        pr.inflight_until = until;
        self.send(id, p, msg);
    }

    fn send_snapshot(&mut self, id: ServerId, p: Peer) {
        let Some(snap) = self.servers[id].disk.snapshot.clone() else {
            return;
        };
        let term = self.servers[id].disk.term;
        self.servers[id].vol.progress[p.id].inflight = true;
        self.trace(TraceKind::InstallSnapshot {
            from: id,
            to: p.id,
            index: snap.index,
        });
        let entries = self.cfg.workload.initial_state_entries + snap.fsm_writes;
        let rate = self.cfg.raft.install_snapshot_entries_per_sec.max(1);
        let transfer_ns = entries.saturating_mul(1_000_000_000) / rate;
        // Slack for the round trip; past it a lost transfer (the follower restarted) is retried
        // on the next answer, like a failed RPC in hashicorp/raft.
        let until = self.now.plus(transfer_ns + self.rpc_slack_ns());
        self.servers[id].vol.progress[p.id].snapshot_inflight = Some((snap.index, until));
        let snap = Box::new(snap);
        self.send_delayed(id, p, Msg::Install { term, snap }, transfer_ns);
    }

    /// How long an RPC in flight is waited for before it counts as lost: a round trip at the
    /// slowest latency plus an election timeout (hashicorp/raft sees a broken connection).
    pub(crate) fn rpc_slack_ns(&self) -> u64 {
        2 * self.cfg.net.latency_ns_max + self.cfg.election_timeout_ns()
    }

    fn on_append(&mut self, to: ServerId, from: ServerId, m: Msg) {
        let Msg::Append {
            term,
            prev_index,
            prev_term,
            entries,
            commit,
            heartbeat,
        } = m
        else {
            return;
        };
        if !self.accept_leader(to, from, term) {
            let (t, li) = (
                self.servers[to].disk.term,
                self.servers[to].disk.last_index(),
            );
            return self.reply(to, from, append_resp(t, false, li, heartbeat));
        }
        let s = &mut self.servers[to];
        let ok_prev = match s.disk.term_at(prev_index) {
            Some(t) => t == prev_term,
            // Compacted into our snapshot: it was committed, so it matches.
            None => prev_index < s.disk.log_start(),
        };
        if prev_index > s.disk.last_index() || !ok_prev {
            let hint = s.disk.last_index().min(prev_index.saturating_sub(1));
            let t = s.disk.term;
            return self.reply(to, from, append_resp(t, false, hint, heartbeat));
        }
        let n = entries.len() as u64;
        let wrote = self.store_entries(to, prev_index, entries);
        let s = &mut self.servers[to];
        let last_new = prev_index + n;
        let new_commit = commit.min(last_new).max(s.vol.commit);
        s.vol.commit = new_commit;
        let t = s.disk.term;
        let delay = if wrote { s.disk_delay_ns } else { 0 };
        self.apply_committed(to);
        if self.servers[to].vol.role == Role::Follower {
            self.reply_delayed(to, from, append_resp(t, true, last_new, heartbeat), delay);
        }
    }

    /// Common leader check for AppendEntries/InstallSnapshot/TimeoutNow receivers.
    fn accept_leader(&mut self, to: ServerId, from: ServerId, term: u64) -> bool {
        if term < self.servers[to].disk.term {
            return false;
        }
        if term > self.servers[to].disk.term || self.servers[to].vol.role != Role::Follower {
            self.become_follower(to, term);
        }
        let s = &mut self.servers[to];
        s.vol.leader = Some(from);
        s.vol.last_contact = Some(self.now);
        true
    }

    /// Stores entries after `prev`; returns whether anything was written.
    fn store_entries(&mut self, id: ServerId, prev: u64, entries: Entries) -> bool {
        let s = &mut self.servers[id];
        let mut wrote = false;
        let mut config_changed = false;
        for (i, e) in entries.into_iter().enumerate() {
            let idx = prev + 1 + i as u64;
            match s.disk.term_at(idx) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    // Conflict: drop our suffix (only uncommitted entries can conflict).
                    debug_assert!(idx > s.vol.commit, "conflict below commit");
                    s.disk.truncate_from(idx);
                    config_changed = true;
                }
                None if idx < s.disk.log_start() => continue,
                None => {}
            }
            config_changed |= matches!(e.kind, EntryKind::Config(_));
            s.disk.log.push(e);
            wrote = true;
        }
        if config_changed {
            let (ci, c) = s.disk.latest_config();
            s.vol.config_index = ci;
            s.vol.config = c;
        }
        wrote
    }

    fn on_append_resp(&mut self, to: ServerId, from: ServerId, resp: (u64, bool, u64, bool)) {
        let (term, ok, last, heartbeat) = resp;
        let s = &self.servers[to];
        if term > s.disk.term {
            return self.become_follower(to, term);
        }
        if s.vol.role != Role::Leader || term < s.disk.term {
            return;
        }
        let now = self.now;
        let leader_last = s.disk.last_index();
        let pr = &mut self.servers[to].vol.progress[from];
        pr.contact = now;
        if heartbeat && pr.inflight && now < pr.inflight_until {
            return; // the batch in flight moves replication on, not the heartbeat beside it
        }
        if let Some((index, until)) = pr.snapshot_inflight {
            let install_answer = ok && last == index;
            if !install_answer && now < until {
                return; // a heartbeat's answer while the snapshot is still being sent
            }
            pr.snapshot_inflight = None;
        }
        pr.inflight = false;
        if ok {
            pr.matched = pr.matched.max(last);
            pr.next = pr.matched + 1;
        } else {
            pr.next = pr.next.saturating_sub(1).min(last + 1).max(1);
        }
        let (next, matched) = (pr.next, pr.matched);
        if ok {
            self.advance_commit(to);
        }
        self.maybe_send_timeout_now(to, from, matched);
        if next <= leader_last
            && let Some(p) = self.entry_of(to, from)
        {
            self.replicate(to, p, false);
        }
    }

    fn maybe_send_timeout_now(&mut self, leader: ServerId, peer: ServerId, matched: u64) {
        let s = &self.servers[leader];
        if s.vol.transfer_to != Some(peer) || matched < s.disk.last_index() {
            return;
        }
        let term = s.disk.term;
        if let Some(p) = self.entry_of(leader, peer) {
            self.send(leader, p, Msg::TimeoutNow { term });
        }
    }

    fn on_install(&mut self, to: ServerId, from: ServerId, term: u64, snap: Snapshot) {
        if !self.accept_leader(to, from, term) {
            let (t, li) = (
                self.servers[to].disk.term,
                self.servers[to].disk.last_index(),
            );
            return self.reply(to, from, append_resp(t, false, li, false));
        }
        if !self.can_restore(to, &snap) {
            return;
        }
        let s = &mut self.servers[to];
        let idx = snap.index;
        if idx > s.disk.last_index() || s.disk.term_at(idx) != Some(snap.term) {
            s.disk.log.clear();
        } else {
            let upto = (idx + 1).saturating_sub(s.disk.start) as usize;
            let n = upto.min(s.disk.log.len());
            s.disk.log.drain(..n);
        }
        s.disk.start = idx + 1;
        s.vol.applied = idx;
        s.vol.commit = s.vol.commit.max(idx);
        s.vol.fsm_writes = snap.fsm_writes;
        s.disk.snapshot = Some(snap);
        let (ci, c) = s.disk.latest_config();
        s.vol.config_index = ci;
        s.vol.config = c;
        let t = s.disk.term;
        self.check_fsm(to, "after InstallSnapshot");
        self.reply(to, from, append_resp(t, true, idx, false));
    }

    fn on_timeout_now(&mut self, to: ServerId, from: ServerId, term: u64) {
        if !self.accept_leader(to, from, term) || !self.is_voter(to) {
            return;
        }
        self.start_candidacy(to, true);
    }

    /// Leader: raises the commit index to the highest index stored on a quorum of voters in
    /// the current term, then applies.
    pub(crate) fn advance_commit(&mut self, id: ServerId) {
        let s = &self.servers[id];
        if s.vol.role != Role::Leader {
            return;
        }
        // A stack buffer: this runs on every AppendEntries answer.
        let mut matched = [0u64; crate::world::MAX_SERVERS];
        let mut count = 0;
        for p in s.vol.config.iter().filter(|p| p.voter) {
            // A stale protocol-2 address is a voter that never acknowledges.
            matched[count] = if self.is_server(p) {
                s.vol.progress[p.id].matched
            } else {
                0
            };
            count += 1;
        }
        if count == 0 {
            return;
        }
        let matched = &mut matched[..count];
        // The quorum-th highest match is above the commit index only if a quorum's matches
        // are: most answers (heartbeats', and those after the commit) end here, unsorted.
        let above = matched.iter().filter(|&&m| m > s.vol.commit).count();
        if above < quorum(count) {
            return;
        }
        // The quorum-th highest match: the lowest of the `above` matches over the commit index
        // when exactly a quorum is above it (the usual case), else by sorting.
        let n = if above == quorum(count) {
            matched
                .iter()
                .copied()
                .filter(|&m| m > s.vol.commit)
                .min()
                .unwrap_or(0)
        } else {
            matched.sort_unstable_by(|a, b| b.cmp(a));
            matched[quorum(count) - 1]
        };
        if n > s.vol.commit && s.disk.term_at(n) == Some(s.disk.term) {
            self.servers[id].vol.commit = n;
            self.apply_committed(id);
        }
    }

    /// Applies committed entries; an entry of a schema this binary does not know panics it.
    /// The common cases first, inline: a leader's one new write, a follower's run of writes
    /// and no-ops the canonical log already holds (`apply_fresh_write`, `apply_known`).
    #[inline]
    pub(crate) fn apply_committed(&mut self, id: ServerId) {
        if self.apply_fresh_write(id) {
            return;
        }
        if let Some(done) = self.apply_known_all(id) {
            self.apply_committed_loop(id, done);
        }
    }

    /// `apply_committed`'s general loop, `done` entries applied already.
    #[inline(never)]
    fn apply_committed_loop(&mut self, id: ServerId, mut done: usize) {
        let limit = APPLY_LIMIT;
        while done < limit {
            // Most entries are writes and no-ops: a fast path applies runs of them.
            done += self.apply_plain(id, limit - done);
            if done >= limit {
                return;
            }
            done += 1;
            let s = &self.servers[id];
            if s.vol.applied >= s.vol.commit.min(s.disk.last_index()) {
                return;
            }
            let idx = s.vol.applied + 1;
            let Some(e) = s.disk.entry(idx) else {
                return;
            };
            // What the checks need, without cloning the entry (a configuration holds a Vec).
            let (term, digest, schema) = (e.term, e.digest(), e.schema());
            let write = match e.kind {
                EntryKind::Write(w) => Some(w),
                _ => None,
            };
            if let Some(why) = self.unreadable(id, e) {
                self.trace(TraceKind::SkewPanic {
                    server: id,
                    index: idx,
                    schema,
                });
                self.metrics.skew_crashes += 1;
                return self.crash_process(id, why);
            }
            self.check_apply(id, idx, (term, digest), write.is_some());
            let s = &mut self.servers[id];
            s.vol.applied = idx;
            if let Some(w) = write {
                s.vol.fsm_writes += 1;
                if s.vol.role == Role::Leader {
                    self.ack_write(w, idx, term);
                }
                self.check_fsm(id, "after applying a write");
            }
        }
    }

    /// Snapshot timer: snapshot and compact if enough entries were applied since the last one.
    pub(crate) fn on_snapshot_timer(&mut self, id: ServerId) {
        let threshold = self.cfg.raft.snapshot_threshold;
        let trailing = self.cfg.raft.trailing_logs;
        let format = self.snapshot_format(id);
        let s = &mut self.servers[id];
        let base = s.disk.snapshot.as_ref().map_or(0, |x| x.index);
        if s.vol.applied >= base + threshold {
            let index = s.vol.applied;
            let term = s.disk.term_at(index).unwrap_or(0);
            let snap = Snapshot {
                index,
                term,
                config: s.vol.config.clone(),
                format,
                max_schema: s.disk.max_schema(),
                fsm_writes: s.vol.fsm_writes,
            };
            // Keep TrailingLogs entries before the snapshot so lagging followers can catch up
            // without InstallSnapshot.
            let keep_from = index.saturating_sub(trailing).max(s.disk.start);
            s.disk.log.drain(..(keep_from - s.disk.start) as usize);
            s.disk.start = keep_from;
            s.disk.snapshot = Some(snap);
            self.trace(TraceKind::SnapshotTaken { server: id, index });
        }
        let iv = self.cfg.raft.snapshot_interval_ns;
        let d = self.rng_timers.range(iv, 2 * iv);
        self.timer(id, d, TimerKind::Snapshot);
    }

    /// Leader: starts a leadership transfer to `target` (or the most caught-up voter).
    pub(crate) fn start_transfer(&mut self, id: ServerId, target: Option<ServerId>) -> bool {
        self.leave_steady();
        let s = &self.servers[id];
        let pick = target.or_else(|| {
            s.vol
                .config
                .iter()
                .filter(|p| p.voter && p.id != id && self.is_server(p))
                .max_by_key(|p| (s.vol.progress[p.id].matched, std::cmp::Reverse(p.id)))
                .map(|p| p.id)
        });
        let Some(t) = pick else { return false };
        if !s
            .vol
            .config
            .iter()
            .any(|p| p.id == t && p.voter && self.is_server(p))
        {
            return false;
        }
        self.servers[id].vol.transfer_to = Some(t);
        let matched = self.servers[id].vol.progress[t].matched;
        self.maybe_send_timeout_now(id, t, matched);
        let et = self.cfg.election_timeout_ns();
        self.timer(id, et, TimerKind::TransferDeadline);
        true
    }

    pub(crate) fn on_transfer_deadline(&mut self, id: ServerId) {
        // hashicorp/raft aborts a transfer that did not finish within ElectionTimeout.
        if self.servers[id].vol.role == Role::Leader {
            self.servers[id].vol.transfer_to = None;
            self.retry_wedged_transfer(id);
        }
    }

    pub(crate) fn deliver(&mut self, to: ServerId, from: ServerId, msg: Msg) {
        match msg {
            Msg::Vote {
                term,
                last_index,
                last_term,
                pre,
                transfer,
            } => self.on_vote(to, from, (term, last_index, last_term, pre, transfer)),
            Msg::VoteResp { term, granted, pre } => self.on_vote_resp(to, from, term, granted, pre),
            m @ Msg::Append { .. } => self.on_append(to, from, m),
            Msg::AppendResp {
                term,
                success,
                last_index,
                heartbeat,
            } => self.on_append_resp(to, from, (term, success, last_index, heartbeat)),
            Msg::Install { term, snap } => self.on_install(to, from, term, *snap),
            Msg::TimeoutNow { term } => self.on_timeout_now(to, from, term),
        }
    }

    fn reply(&mut self, from: ServerId, to: ServerId, msg: Msg) {
        self.reply_delayed(from, to, msg, 0);
    }

    fn reply_delayed(&mut self, from: ServerId, to: ServerId, msg: Msg, extra_ns: u64) {
        // Replies travel on the caller's connection, so they use the sender's known address.
        let p = Peer {
            id: to,
            voter: false,
            addr_gen: self.servers[to].addr_gen,
        };
        self.send_delayed(from, p, msg, extra_ns);
    }

    pub(crate) fn send(&mut self, from: ServerId, to: Peer, msg: Msg) {
        self.send_delayed(from, to, msg, 0);
    }
}

fn append_resp(term: u64, success: bool, last_index: u64, heartbeat: bool) -> Msg {
    Msg::AppendResp {
        term,
        success,
        last_index,
        heartbeat,
    }
}
