//! One server's Raft node: its Raft state (`Disk` and `Volatile`) and the hashicorp/raft rules
//! as handlers that change that state and return effects, in the style of raft-rs's `step` /
//! `Ready` and stateright's `Out`. A handler never reads the world: what it needs to know of
//! it (the clock, the timings, which configuration entries are the servers now) comes in a
//! `Ctx`, and what it wants done (messages, timers, role changes the world tracks, entries to
//! apply, trace events) goes out as `Effect`s, in the order the rules produce them. The world
//! (`raft`) dispatches events to the handlers and carries out the effects in that order, so a
//! run is the same event for event; the rules can be tested by stepping a node alone (see the
//! tests below).
//!
//! What stays in the world: applying committed entries to the state machine (it checks the
//! invariants against the canonical log and may crash the process on an unreadable entry),
//! establishing leadership once elected (Nomad's leader loop, autopilot), InstallSnapshot's
//! restore check, snapshots and leadership transfer deadlines.

use crate::config::{NetConfig, SimConfig};
use crate::raft::{Entries, Msg, quorum};
use crate::state::{Disk, Entry, EntryKind, Peer, Progress, Role, ServerId, Snapshot, Volatile};
use crate::trace::TraceKind;
use crate::world::{MAX_SERVERS, TimerKind};
use rehearse_model::time::SimTime;

/// Which configuration entries are the servers they name now: a server's current address
/// generation, and whether it runs Raft protocol 3 (its Raft ID is a UUID, so any address
/// entry for it is it). A protocol-2 entry with a stale address is a voter that never answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Directory {
    addr_gen: [u32; MAX_SERVERS],
    /// Bit `i`: server `i` is known by ID, whatever the address.
    by_id: u32,
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            addr_gen: [0; MAX_SERVERS],
            by_id: 0,
        }
    }
}

impl Directory {
    /// Records server `id`'s address generation and advertised Raft protocol.
    pub fn set(&mut self, id: ServerId, addr_gen: u32, protocol: u8) {
        self.addr_gen[id] = addr_gen;
        if protocol >= 3 {
            self.by_id |= 1 << id;
        } else {
            self.by_id &= !(1 << id);
        }
    }

    /// Whether configuration entry `p` is the server it names now.
    #[inline]
    pub fn is_server(&self, p: &Peer) -> bool {
        p.addr_gen == self.addr_gen[p.id] || (!p.by_address && self.by_id & (1 << p.id) != 0)
    }
}

/// What a node knows of the world while it handles one input.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The clock.
    pub now: SimTime,
    /// Timings and limits (HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout,
    /// MaxAppendEntries, the InstallSnapshot rate).
    pub cfg: &'a SimConfig,
    /// The network's latency and loss now (faults change them): the latency bound.
    pub net: &'a NetConfig,
    /// Which configuration entries are servers now.
    pub dir: &'a Directory,
}

impl Ctx<'_> {
    /// How long an RPC in flight is waited for before it counts as lost: a round trip at the
    /// slowest latency plus an election timeout (hashicorp/raft sees a broken connection).
    pub fn rpc_slack_ns(&self) -> u64 {
        2 * self.net.latency_ns_max + self.cfg.election_timeout_ns()
    }
}

/// How long until a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    /// Exactly this many nanoseconds.
    Fixed(u64),
    /// Uniform in [lo, hi): the world draws it from its timer stream when it arms the timer.
    Between(u64, u64),
}

/// What a handler wants done, in order.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send `msg` to configuration entry `to`, `extra_ns` after the network's latency.
    Send {
        /// Addressee as the configuration knows it.
        to: Peer,
        /// The message.
        msg: Msg,
        /// Added delay (a slow disk, a snapshot's transfer time).
        extra_ns: u64,
    },
    /// Answer `to` on the connection its message came on (its current address).
    Reply {
        /// Addressee.
        to: ServerId,
        /// The answer.
        msg: Msg,
        /// Added delay (a slow disk's fsync before the answer).
        extra_ns: u64,
    },
    /// Arm a timer of this node (a newer one of the same role supersedes it).
    Timer {
        /// Which.
        kind: TimerKind,
        /// When.
        delay: Delay,
    },
    /// The node took `role` in `term` (traced; the world's view of the leader may change).
    Role {
        /// New role.
        role: Role,
        /// Its term.
        term: u64,
    },
    /// A trace event other than a role change.
    Trace(TraceKind),
    /// A candidacy (or pre-vote round) started (counted).
    Campaign,
    /// Apply the committed entries now (the world's state machine; it may crash the process).
    Apply,
    /// The node won an election: the world establishes leadership (no-op entry, timers,
    /// autopilot, first broadcast).
    Elected,
}

/// One server's Raft state with the rules as handlers. It borrows the state (the world keeps
/// it in its `Server`), the context, and the buffer its effects go to.
pub struct RaftNode<'a> {
    /// Its server.
    pub id: ServerId,
    /// Term, vote, log, snapshot.
    pub disk: &'a mut Disk,
    /// Role, commit and apply indexes, configuration, votes, per-follower progress.
    pub vol: &'a mut Volatile,
    /// Added delay on every log append (slow disk).
    pub disk_delay_ns: u64,
    /// The world as the node sees it.
    pub ctx: Ctx<'a>,
    /// Effects, in order.
    pub out: &'a mut Vec<Effect>,
}

/// Whether server `id` is a voter of `config` (as the server it is now).
pub fn is_voter(config: &[Peer], id: ServerId, dir: &Directory) -> bool {
    config
        .iter()
        .any(|p| p.id == id && p.voter && dir.is_server(p))
}

/// AppendEntries' answer.
pub fn append_resp(term: u64, success: bool, last_index: u64, heartbeat: bool) -> Msg {
    Msg::AppendResp {
        term,
        success,
        last_index,
        heartbeat,
    }
}

/// What an AppendEntries did on a follower (`RaftNode::append_entries`). Sixteen bytes, so
/// it comes back in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The follower's last index after it (on a refusal, the hint: where to try next).
    pub last: u64,
    /// Accepted.
    pub ok: bool,
    /// Whether entries were written (the answer then waits for the disk).
    pub wrote: bool,
}

impl Appended {
    fn refused(hint: u64) -> Appended {
        Appended {
            last: hint,
            ok: false,
            wrote: false,
        }
    }
}

/// What an AppendEntries answer leaves for after the commit it may allow (see
/// `RaftNode::on_append_resp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterAck {
    /// The answer was a success (the commit index may advance).
    pub ok: bool,
    /// The follower's match index now.
    pub matched: u64,
    /// The follower still lacks entries: replicate again.
    pub more: bool,
}

impl RaftNode<'_> {
    // ---- membership ----

    /// Whether this node is a voter of its own configuration (non-voters never campaign).
    pub fn is_voter(&self) -> bool {
        is_voter(&self.vol.config, self.id, self.ctx.dir)
    }

    /// The entry of server `peer` in this node's configuration that is that server now.
    pub fn entry_of(&self, peer: ServerId) -> Option<Peer> {
        let dir = self.ctx.dir;
        self.vol
            .config
            .iter()
            .find(|p| p.id == peer && dir.is_server(p))
            .copied()
    }

    /// Voter entries of the configuration whose server satisfies `counts`, and all voter
    /// entries (stale protocol-2 addresses included: they raise the quorum, never vote).
    fn count_voters(&self, counts: impl Fn(ServerId) -> bool) -> (usize, usize) {
        let dir = self.ctx.dir;
        let voters = self.vol.config.iter().filter(|p| p.voter);
        let entries = voters.clone().count();
        let got = voters.filter(|p| dir.is_server(p) && counts(p.id)).count();
        (got, entries)
    }

    // ---- roles ----

    fn set_role(&mut self, role: Role) {
        if self.vol.role == role && role != Role::Candidate {
            return;
        }
        self.vol.role = role;
        self.vol.role_gen += 1;
        let term = self.disk.term;
        self.out.push(Effect::Role { role, term });
    }

    /// Becomes a follower in `term` (a higher term clears the vote); a server that was not a
    /// follower arms its follower timer.
    pub fn step_down(&mut self, term: u64) {
        if term > self.disk.term {
            self.disk.term = term;
            self.disk.voted_for = None;
        }
        self.vol.transfer_to = None;
        self.vol.prevote = false;
        let was_follower = self.vol.role == Role::Follower;
        self.set_role(Role::Follower);
        if !was_follower {
            self.arm_follower_timer();
        }
    }

    /// The follower timer: U[HT, 2HT).
    pub fn arm_follower_timer(&mut self) {
        let ht = self.ctx.cfg.heartbeat_timeout_ns();
        self.timer(TimerKind::Follower, Delay::Between(ht, 2 * ht));
    }

    fn timer(&mut self, kind: TimerKind, delay: Delay) {
        self.out.push(Effect::Timer { kind, delay });
    }

    fn send(&mut self, to: Peer, msg: Msg, extra_ns: u64) {
        self.out.push(Effect::Send { to, msg, extra_ns });
    }

    fn reply(&mut self, to: ServerId, msg: Msg, extra_ns: u64) {
        self.out.push(Effect::Reply { to, msg, extra_ns });
    }

    // ---- timers ----

    /// The follower timer of role generation `generation` fired. Contact fresher than
    /// HeartbeatTimeout re-arms it; otherwise the known leader is forgotten and a voter wants
    /// to campaign (true: the caller starts the candidacy, see `start_candidacy`).
    pub fn on_follower_timer(&mut self, generation: u64) -> bool {
        let ht = self.ctx.cfg.heartbeat_timeout_ns();
        if self.vol.role != Role::Follower || self.vol.role_gen != generation {
            return false;
        }
        let now = self.ctx.now;
        if self.vol.last_contact.is_some_and(|t| now.since(t) < ht) {
            self.arm_follower_timer();
            return false;
        }
        // hashicorp/raft clears the known leader when the heartbeat timer fails, for everyone.
        self.vol.leader = None;
        if !self.is_voter() {
            // Non-voters (and servers not in any configuration) never campaign.
            self.arm_follower_timer();
            return false;
        }
        true
    }

    /// The candidate timer of role generation `generation` fired: true if the election timed
    /// out and a new candidacy starts (the caller starts it, see `start_candidacy`).
    pub fn on_candidate_timer(&self, generation: u64) -> bool {
        self.vol.role == Role::Candidate && self.vol.role_gen == generation
    }

    /// The leader's lease check: a leader that has not heard from a quorum of voters within
    /// LeaderLeaseTimeout steps down; otherwise the check is re-armed.
    pub fn on_lease_timer(&mut self, generation: u64) {
        if self.vol.role != Role::Leader || self.vol.role_gen != generation {
            return;
        }
        let lease = self.ctx.cfg.leader_lease_ns();
        let (id, now) = (self.id, self.ctx.now);
        let progress = &self.vol.progress;
        let (in_touch, entries) =
            self.count_voters(|v| v == id || now.since(progress[v].contact) <= lease);
        if in_touch < quorum(entries) {
            let term = self.disk.term;
            self.out
                .push(Effect::Trace(TraceKind::LeaseLost { server: id, term }));
            self.vol.leader = None;
            self.step_down(term);
            return;
        }
        self.timer(TimerKind::Lease, Delay::Fixed(lease));
    }

    // ---- elections ----

    /// Starts a candidacy: a pre-vote round if `pre_vote` is given (the set of servers that
    /// understand pre-vote, bit per server; the others count as granting), else a real
    /// election (`transfer`: one a leadership transfer asked for, which followers grant even
    /// while they know a leader).
    pub fn start_candidacy(&mut self, transfer: bool, pre_vote: Option<u32>) {
        self.out.push(Effect::Campaign);
        self.vol.leader = None;
        self.vol.votes.clear();
        self.vol.prevote = pre_vote.is_some();
        self.vol.role = Role::Follower; // force set_role to record the candidacy
        self.set_role(Role::Candidate);
        match pre_vote {
            Some(understands) => self.send_votes(true, false, understands),
            None => self.real_election(transfer),
        }
        let et = self.ctx.cfg.election_timeout_ns();
        self.timer(TimerKind::Candidate, Delay::Between(et, 2 * et));
    }

    fn real_election(&mut self, transfer: bool) {
        self.vol.prevote = false;
        self.disk.term += 1;
        self.disk.voted_for = Some(self.id);
        self.vol.votes.clear();
        self.vol.votes.push(self.id);
        self.send_votes(false, transfer, u32::MAX);
        self.check_votes();
    }

    fn send_votes(&mut self, pre: bool, transfer: bool, understands_pre_vote: u32) {
        let term = if pre {
            self.disk.term + 1
        } else {
            self.disk.term
        };
        let (last_index, last_term) = (self.disk.last_index(), self.disk.last_term());
        if pre {
            self.vol.votes.push(self.id);
        }
        for i in 0..self.vol.config.len() {
            let p = self.vol.config[i];
            if p.id == self.id || !p.voter {
                continue;
            }
            if pre && understands_pre_vote & (1 << p.id) == 0 {
                // A peer that does not understand pre-vote is counted as granting.
                self.vol.votes.push(p.id);
                continue;
            }
            let msg = Msg::Vote {
                term,
                last_index,
                last_term,
                pre,
                transfer,
            };
            self.send(p, msg, 0);
        }
        if pre {
            self.check_votes();
        }
    }

    fn check_votes(&mut self) {
        let votes = &self.vol.votes;
        let (got, entries) = self.count_voters(|v| votes.contains(&v));
        if got < quorum(entries) {
            return;
        }
        if self.vol.prevote {
            self.real_election(false);
        } else {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        let last = self.disk.last_index();
        let now = self.ctx.now;
        for p in self.vol.progress.iter_mut() {
            *p = Progress {
                next: last + 1,
                matched: 0,
                inflight: false,
                inflight_until: now,
                contact: now,
                snapshot_inflight: None,
            };
        }
        self.vol.progress[self.id].matched = last;
        self.vol.leader = Some(self.id);
        self.vol.transfer_to = None;
        self.set_role(Role::Leader);
        self.out.push(Effect::Elected);
    }

    /// RequestVote (or a pre-vote) from `from`. Refused while another leader is known (unless
    /// for a leadership transfer), for a stale term, or from a non-voter; granted if the
    /// candidate's log is at least as up to date and the vote is free (a pre-vote changes no
    /// state). A real vote in a higher term steps down first.
    pub fn on_vote(&mut self, from: ServerId, term: u64, last: (u64, u64), pre: bool, xfer: bool) {
        let (last_index, last_term) = last;
        let reply = |granted, term| Msg::VoteResp { term, granted, pre };
        let known_leader = self.vol.leader.is_some_and(|l| l != from);
        let dir = self.ctx.dir;
        let member = self
            .vol
            .config
            .iter()
            .any(|p| p.id == from && p.voter && dir.is_server(p));
        if (known_leader && !xfer) || term < self.disk.term || !member {
            let t = self.disk.term;
            return self.reply(from, reply(false, t), 0);
        }
        if !pre && term > self.disk.term {
            self.step_down(term);
        }
        let d = &self.disk;
        let log_ok = last_term > d.last_term()
            || (last_term == d.last_term() && last_index >= d.last_index());
        let vote_free = pre || d.voted_for.is_none_or(|v| v == from);
        let granted = log_ok && vote_free;
        if granted && !pre {
            self.disk.voted_for = Some(from);
            self.vol.last_contact = Some(self.ctx.now);
        }
        let t = self.disk.term;
        self.reply(from, reply(granted, t), 0);
    }

    /// A vote (or pre-vote) answer from `from`. A higher term steps down (except a granted
    /// pre-vote, which carries the term the candidate asked for); a vote for the current
    /// round is counted, and a quorum moves a pre-vote to the real election or wins it.
    pub fn on_vote_resp(&mut self, from: ServerId, term: u64, granted: bool, pre: bool) {
        if term > self.disk.term && !(pre && granted) {
            return self.step_down(term);
        }
        if self.vol.role != Role::Candidate || self.vol.prevote != pre || !granted {
            return;
        }
        if !pre && term != self.disk.term {
            return;
        }
        if !self.vol.votes.contains(&from) {
            self.vol.votes.push(from);
        }
        self.check_votes();
    }

    /// TimeoutNow from the leader `from`: a voter starts a real election at once, one that
    /// followers grant even while they know a leader. True if it did.
    pub fn on_timeout_now(&mut self, from: ServerId, term: u64) -> bool {
        if !self.accept_leader(from, term) || !self.is_voter() {
            return false;
        }
        self.start_candidacy(true, None);
        true
    }

    // ---- replication: follower side ----

    /// The common leader check of AppendEntries, InstallSnapshot and TimeoutNow: a stale term
    /// is refused; otherwise the sender is the leader (a higher term, or a candidate or
    /// leader of the same term, steps down) and contact is fresh.
    pub fn accept_leader(&mut self, from: ServerId, term: u64) -> bool {
        if term < self.disk.term {
            return false;
        }
        if term > self.disk.term || self.vol.role != Role::Follower {
            self.step_down(term);
        }
        self.vol.leader = Some(from);
        self.vol.last_contact = Some(self.ctx.now);
        true
    }

    /// AppendEntries from `from` (`m` is a `Msg::Append`). Log matching: the entry before the
    /// new ones must be there with the leader's term, else the answer is a failure with a hint
    /// (the last index, or the one before `prev_index`); conflicting suffixes are dropped, new
    /// entries stored, the commit index raised to the leader's (not past the new entries), the
    /// committed entries applied, and the answer sent after the disk's write delay.
    pub fn on_append(&mut self, from: ServerId, m: Msg) {
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
        let a = self.append_entries(from, term, (prev_index, prev_term), entries, commit);
        if a.ok {
            self.out.push(Effect::Apply);
        }
        let delay = if a.wrote { self.disk_delay_ns } else { 0 };
        let t = self.disk.term;
        self.reply(from, append_resp(t, a.ok, a.last, heartbeat), delay);
    }

    /// `on_append`'s rule, given the AppendEntries' fields: what it changes on this node, and
    /// what its answer reports (the answer carries the node's term after it). After a success
    /// the caller applies what is committed.
    pub fn append_entries(
        &mut self,
        from: ServerId,
        term: u64,
        (prev_index, prev_term): (u64, u64),
        entries: Entries,
        commit: u64,
    ) -> Appended {
        if !self.accept_leader(from, term) {
            let last = self.disk.last_index();
            return Appended::refused(last);
        }
        let d = &self.disk;
        let ok_prev = match d.term_at(prev_index) {
            Some(t) => t == prev_term,
            // Compacted into our snapshot: it was committed, so it matches.
            None => prev_index < d.log_start(),
        };
        if prev_index > d.last_index() || !ok_prev {
            return Appended::refused(d.last_index().min(prev_index.saturating_sub(1)));
        }
        let n = entries.len() as u64;
        let wrote = self.store_entries(prev_index, entries);
        let last = prev_index + n;
        self.vol.commit = commit.min(last).max(self.vol.commit);
        Appended {
            last,
            ok: true,
            wrote,
        }
    }

    /// Stores entries after `prev`; returns whether anything was written.
    fn store_entries(&mut self, prev: u64, entries: Entries) -> bool {
        let (d, v) = (&mut *self.disk, &mut *self.vol);
        let mut wrote = false;
        let mut config_changed = false;
        if prev + 1 == d.start + d.log.len() as u64 {
            // Nothing of ours after `prev`: no entry to skip, nothing in conflict.
            wrote = !entries.is_empty();
            match entries {
                Entries::One(e) => {
                    config_changed = matches!(e.kind, EntryKind::Config(_));
                    d.log.push(e);
                }
                Entries::Many(v) => {
                    config_changed = v.iter().any(|e| matches!(e.kind, EntryKind::Config(_)));
                    d.log.extend(v.into_iter());
                }
                // Workload writes: no configuration among them.
                Entries::Writes {
                    term,
                    first_id,
                    count,
                } => d.log.extend((first_id..first_id + count).map(|id| Entry {
                    term,
                    kind: EntryKind::Write(id),
                })),
            }
        } else {
            for (i, e) in entries.into_iter().enumerate() {
                let idx = prev + 1 + i as u64;
                match d.term_at(idx) {
                    Some(t) if t == e.term => continue,
                    Some(_) => {
                        // Conflict: drop our suffix (only uncommitted entries can conflict).
                        debug_assert!(idx > v.commit, "conflict below commit");
                        d.truncate_from(idx);
                        config_changed = true;
                    }
                    None if idx < d.log_start() => continue,
                    None => {}
                }
                config_changed |= matches!(e.kind, EntryKind::Config(_));
                d.log.push(e);
                wrote = true;
            }
        }
        if config_changed {
            let (ci, c) = d.latest_config();
            v.config_index = ci;
            v.config = c;
        }
        wrote
    }

    // ---- replication: leader side ----

    /// Appends an entry of the current term (a configuration takes effect at once, as in
    /// hashicorp/raft) and counts the leader's own match. Returns its index and whether the
    /// commit index advanced (then the caller applies).
    pub fn append(&mut self, kind: EntryKind) -> (u64, bool) {
        let term = self.disk.term;
        if let EntryKind::Config(p) = &kind {
            self.vol.config = p.to_vec();
        }
        self.disk.log.push(Entry { term, kind });
        let idx = self.disk.last_index();
        if matches!(
            self.disk.log.last().map(|e| &e.kind),
            Some(EntryKind::Config(_))
        ) {
            self.vol.config_index = idx;
        }
        self.vol.progress[self.id].matched = idx;
        (idx, self.advance_commit())
    }

    /// Leader: raises the commit index to the highest index stored on a quorum of voters, if
    /// that entry is of the current term (Raft §5.4.2: earlier terms' entries commit only
    /// under a current-term entry). True if it moved (the caller applies).
    pub fn advance_commit(&mut self) -> bool {
        let (v, d, dir) = (&*self.vol, &*self.disk, self.ctx.dir);
        if v.role != Role::Leader {
            return false;
        }
        // A stack buffer: this runs on every AppendEntries answer.
        let mut matched = [0u64; MAX_SERVERS];
        let mut count = 0;
        for p in v.config.iter().filter(|p| p.voter) {
            // A stale protocol-2 address is a voter that never acknowledges.
            matched[count] = if dir.is_server(p) {
                v.progress[p.id].matched
            } else {
                0
            };
            count += 1;
        }
        if count == 0 {
            return false;
        }
        let matched = &mut matched[..count];
        // The quorum-th highest match is above the commit index only if a quorum's matches
        // are: most answers (heartbeats', and those after the commit) end here, unsorted.
        let above = matched.iter().filter(|&&m| m > v.commit).count();
        if above < quorum(count) {
            return false;
        }
        // The quorum-th highest match: the lowest of the `above` matches over the commit index
        // when exactly a quorum is above it (the usual case), else by sorting.
        let n = if above == quorum(count) {
            matched
                .iter()
                .copied()
                .filter(|&m| m > v.commit)
                .min()
                .unwrap_or(0)
        } else {
            matched.sort_unstable_by(|a, b| b.cmp(a));
            matched[quorum(count) - 1]
        };
        if n > v.commit && d.term_at(n) == Some(d.term) {
            self.vol.commit = n;
            return true;
        }
        false
    }

    /// Sends AppendEntries (or InstallSnapshot) to every peer that has nothing in flight, and
    /// a heartbeat at the matched index to those that do.
    pub fn broadcast(&mut self) {
        // Index loop: Peer is Copy, so no clone of the configuration.
        for i in 0..self.vol.config.len() {
            let p = self.vol.config[i];
            if p.id != self.id && self.ctx.dir.is_server(&p) {
                self.replicate(p, true);
            }
        }
    }

    /// AppendEntries to `p` from its next index (at most MaxAppendEntries), or InstallSnapshot
    /// if that entry was compacted away. One batch in flight per follower: while one is, only
    /// a heartbeat (`heartbeat`) goes, empty, at the matched index.
    pub fn replicate(&mut self, p: Peer, heartbeat: bool) {
        let pr = self.vol.progress[p.id];
        if pr.inflight && !heartbeat {
            return;
        }
        let d = &self.disk;
        let term = d.term;
        if pr.inflight {
            // A heartbeat while a batch is in flight: empty AppendEntries at the matched point
            // keeps the follower's timer fresh without disturbing the batch.
            let Some((prev, prev_term)) = d.heartbeat_point(pr.matched) else {
                return;
            };
            let commit = self.vol.commit.min(prev);
            let msg = Msg::Append {
                term,
                prev_index: prev,
                prev_term,
                entries: Entries::none(),
                commit,
                heartbeat: true,
            };
            return self.send(p, msg, 0);
        }
        if pr.next < d.log_start() {
            return self.send_snapshot(p);
        }
        let prev = pr.next - 1;
        let Some(prev_term) = d.term_at(prev) else {
            return self.send_snapshot(p);
        };
        let max = self.ctx.cfg.raft.max_append_entries;
        let start = (pr.next - d.log_start()) as usize;
        let end = (start + max).min(d.log.len());
        let entries = Entries::from_slice(&d.log[start.min(end)..end]);
        let msg = Msg::Append {
            term,
            prev_index: prev,
            prev_term,
            entries,
            commit: self.vol.commit,
            heartbeat: false,
        };
        let until = self.ctx.now.plus(self.ctx.rpc_slack_ns());
        let pr = &mut self.vol.progress[p.id];
        pr.inflight = true;
        pr.inflight_until = until;
        self.send(p, msg, 0);
    }

    /// InstallSnapshot to `p`, taking a time proportional to the state's size.
    fn send_snapshot(&mut self, p: Peer) {
        let Some(snap) = self.disk.snapshot.clone() else {
            return;
        };
        let term = self.disk.term;
        self.vol.progress[p.id].inflight = true;
        self.out.push(Effect::Trace(TraceKind::InstallSnapshot {
            from: self.id,
            to: p.id,
            index: snap.index,
        }));
        let cfg = self.ctx.cfg;
        let entries = cfg.workload.initial_state_entries + snap.fsm_writes;
        let rate = cfg.raft.install_snapshot_entries_per_sec.max(1);
        let transfer_ns = entries.saturating_mul(1_000_000_000) / rate;
        // Slack for the round trip; past it a lost transfer (the follower restarted) is retried
        // on the next answer, like a failed RPC in hashicorp/raft.
        let until = self.ctx.now.plus(transfer_ns + self.ctx.rpc_slack_ns());
        self.vol.progress[p.id].snapshot_inflight = Some((snap.index, until));
        let snap: Box<Snapshot> = Box::new(snap);
        self.send(p, Msg::Install { term, snap }, transfer_ns);
    }

    /// An AppendEntries (or InstallSnapshot) answer from `from`: a higher term steps down;
    /// the leader's contact with the follower is refreshed, and unless the answer belongs to a
    /// heartbeat beside a batch (or a snapshot) still in flight, the follower's progress moves
    /// (match and next on success, next back on failure). None: nothing more to do; else the
    /// caller advances the commit on success (`advance_commit`, then applies), then calls
    /// `after_ack`.
    pub fn on_append_resp(
        &mut self,
        from: ServerId,
        resp: (u64, bool, u64, bool),
    ) -> Option<AfterAck> {
        let (term, ok, last, heartbeat) = resp;
        if term > self.disk.term {
            self.step_down(term);
            return None;
        }
        if self.vol.role != Role::Leader || term < self.disk.term {
            return None;
        }
        let now = self.ctx.now;
        let leader_last = self.disk.last_index();
        let pr = &mut self.vol.progress[from];
        pr.contact = now;
        if heartbeat && pr.inflight && now < pr.inflight_until {
            return None; // the batch in flight moves replication on, not the heartbeat beside it
        }
        if let Some((index, until)) = pr.snapshot_inflight {
            let install_answer = ok && last == index;
            if !install_answer && now < until {
                return None; // a heartbeat's answer while the snapshot is still being sent
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
        Some(AfterAck {
            ok,
            matched: pr.matched,
            more: pr.next <= leader_last,
        })
    }

    /// The rest of an AppendEntries answer from `from`, after the commit: a leadership
    /// transfer to a follower that has caught up sends it TimeoutNow; a follower still behind
    /// gets the next batch.
    pub fn after_ack(&mut self, from: ServerId, ack: AfterAck) {
        self.maybe_send_timeout_now(from, ack.matched);
        if ack.more
            && let Some(p) = self.entry_of(from)
        {
            self.replicate(p, false);
        }
    }

    /// Leadership transfer: TimeoutNow to the target once it holds the whole log.
    pub fn maybe_send_timeout_now(&mut self, peer: ServerId, matched: u64) {
        if self.vol.transfer_to != Some(peer) || matched < self.disk.last_index() {
            return;
        }
        let term = self.disk.term;
        if let Some(p) = self.entry_of(peer) {
            self.send(p, Msg::TimeoutNow { term }, 0);
        }
    }
}

/// The Raft rules, one node at a time: each test builds a node's state, steps it through a
/// handler and reads the state and the effects. Names follow the rule (the Raft paper's
/// section, or the hashicorp/raft behaviour).
#[cfg(test)]
mod tests {
    use super::*;
    use rehearse_model::time::{MS, SEC};
    use rehearse_model::versions::Version;

    /// The world as a node sees it: Nomad timings (HT = ET = 1 s, lease 0.5 s), every server
    /// at its first address under protocol 3.
    struct World {
        cfg: SimConfig,
        dir: Directory,
        now: SimTime,
    }

    fn world(n: usize) -> World {
        let mut dir = Directory::default();
        for id in 0..n {
            dir.set(id, 0, 3);
        }
        World {
            cfg: SimConfig::nomad(n, Version::new(1, 8, 0), 1),
            dir,
            now: SimTime(10 * SEC),
        }
    }

    /// One node's state.
    struct Node {
        id: ServerId,
        disk: Disk,
        vol: Volatile,
    }

    fn peer(id: ServerId, voter: bool) -> Peer {
        Peer {
            id,
            voter,
            addr_gen: 0,
            by_address: false,
        }
    }

    /// Node `id` of `n` servers, the first `voters` of them voters, with the configuration
    /// at index 1 (term 1) and a log of `terms` after it; term = the last of them (or 1).
    fn node(id: ServerId, n: usize, voters: usize, terms: &[u64]) -> Node {
        let peers: Vec<_> = (0..n).map(|i| peer(i, i < voters)).collect();
        let mut disk = Disk::default();
        disk.log.push(Entry {
            term: 1,
            kind: EntryKind::Config(peers.into()),
        });
        for (i, &term) in terms.iter().enumerate() {
            disk.log.push(Entry {
                term,
                kind: EntryKind::Write(i as u64),
            });
        }
        disk.term = terms.last().copied().unwrap_or(1);
        let vol = Volatile::boot(n, &disk, SimTime::ZERO);
        Node { id, disk, vol }
    }

    impl Node {
        /// Runs `f` on this node; returns its result and the effects.
        fn step<R>(
            &mut self,
            w: &World,
            f: impl FnOnce(&mut RaftNode<'_>) -> R,
        ) -> (R, Vec<Effect>) {
            let mut out = Vec::new();
            let r = f(&mut RaftNode {
                id: self.id,
                disk: &mut self.disk,
                vol: &mut self.vol,
                disk_delay_ns: 0,
                ctx: Ctx {
                    now: w.now,
                    cfg: &w.cfg,
                    net: &w.cfg.net,
                    dir: &w.dir,
                },
                out: &mut out,
            });
            (r, out)
        }

        /// A leader of its term with every follower's progress at `next`, contact now.
        fn lead(&mut self, w: &World) {
            self.vol.role = Role::Leader;
            self.vol.leader = Some(self.id);
            let next = self.disk.last_index() + 1;
            for p in self.vol.progress.iter_mut() {
                *p = Progress {
                    next,
                    contact: w.now,
                    inflight_until: w.now,
                    ..Progress::default()
                };
            }
            self.vol.progress[self.id].matched = self.disk.last_index();
        }
    }

    /// The vote answers among `fx`, as (to, granted, term).
    fn votes(fx: &[Effect]) -> Vec<(ServerId, bool, u64)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Reply {
                    to,
                    msg: Msg::VoteResp { granted, term, .. },
                    ..
                } => Some((*to, *granted, *term)),
                _ => None,
            })
            .collect()
    }

    /// The vote requests among `fx`, as (to, term, pre, transfer).
    fn requests(fx: &[Effect]) -> Vec<(ServerId, u64, bool, bool)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Send {
                    to,
                    msg:
                        Msg::Vote {
                            term,
                            pre,
                            transfer,
                            ..
                        },
                    ..
                } => Some((to.id, *term, *pre, *transfer)),
                _ => None,
            })
            .collect()
    }

    /// The AppendEntries answer among `fx`, as (success, last_index).
    fn append_answer(fx: &[Effect]) -> Option<(bool, u64)> {
        fx.iter().find_map(|e| match e {
            Effect::Reply {
                msg:
                    Msg::AppendResp {
                        success,
                        last_index,
                        ..
                    },
                ..
            } => Some((*success, *last_index)),
            _ => None,
        })
    }

    fn append(term: u64, prev: (u64, u64), entries: &[u64], commit: u64) -> Msg {
        let entries: Vec<Entry> = entries
            .iter()
            .map(|&t| Entry {
                term: t,
                kind: EntryKind::Noop,
            })
            .collect();
        Msg::Append {
            term,
            prev_index: prev.0,
            prev_term: prev.1,
            entries: entries.into(),
            commit,
            heartbeat: false,
        }
    }

    // ---- elections (Raft §5.2, §5.4.1; hashicorp/raft's vote rules) ----

    #[test]
    fn vote_refused_while_a_leader_is_known() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        n.vol.leader = Some(1);
        let (_, fx) = n.step(&w, |r| r.on_vote(2, 5, (1, 1), false, false));
        assert_eq!(votes(&fx), [(2, false, 1)]);
        assert_eq!(n.disk.term, 1, "a refused candidate's term is not taken");
    }

    #[test]
    fn vote_granted_despite_a_known_leader_for_a_leadership_transfer() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        n.vol.leader = Some(1);
        let (_, fx) = n.step(&w, |r| r.on_vote(2, 2, (1, 1), false, true));
        assert_eq!(votes(&fx), [(2, true, 2)]);
        assert_eq!(n.disk.voted_for, Some(2));
    }

    #[test]
    fn vote_refused_for_a_stale_term() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[4]);
        let (_, fx) = n.step(&w, |r| r.on_vote(2, 3, (5, 4), false, false));
        assert_eq!(votes(&fx), [(2, false, 4)]);
    }

    #[test]
    fn election_restriction_refuses_a_candidate_with_an_older_last_term() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[2]);
        // The candidate's log is longer but its last term older (§5.4.1).
        let (_, fx) = n.step(&w, |r| r.on_vote(2, 3, (9, 1), false, false));
        assert_eq!(votes(&fx), [(2, false, 3)]);
        assert_eq!(n.disk.term, 3, "the higher term is still taken");
        assert_eq!(n.disk.voted_for, None);
    }

    #[test]
    fn election_restriction_refuses_a_shorter_log_of_the_same_last_term() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[2, 2]);
        let (_, fx) = n.step(&w, |r| r.on_vote(2, 3, (2, 2), false, false));
        assert_eq!(votes(&fx), [(2, false, 3)]);
    }

    #[test]
    fn one_vote_per_term() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        let (_, fx) = n.step(&w, |r| r.on_vote(1, 2, (1, 1), false, false));
        assert_eq!(votes(&fx), [(1, true, 2)]);
        let (_, fx) = n.step(&w, |r| r.on_vote(2, 2, (1, 1), false, false));
        assert_eq!(
            votes(&fx),
            [(2, false, 2)],
            "a second candidate in the same term"
        );
        let (_, fx) = n.step(&w, |r| r.on_vote(1, 2, (1, 1), false, false));
        assert_eq!(
            votes(&fx),
            [(1, true, 2)],
            "the same candidate again (a retry)"
        );
    }

    #[test]
    fn vote_from_a_non_voter_refused() {
        let w = world(3);
        let mut n = node(0, 3, 2, &[]);
        let (_, fx) = n.step(&w, |r| r.on_vote(2, 2, (1, 1), false, false));
        assert_eq!(votes(&fx), [(2, false, 1)]);
    }

    #[test]
    fn leader_refuses_votes_even_of_a_higher_term() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        n.lead(&w);
        // It knows a leader (itself): hashicorp/raft rejects without looking at the term.
        let (_, fx) = n.step(&w, |r| r.on_vote(1, 2, (1, 1), false, false));
        assert_eq!(votes(&fx), [(1, false, 1)]);
        assert_eq!((n.vol.role, n.disk.term), (Role::Leader, 1));
    }

    #[test]
    fn higher_term_append_steps_a_leader_down() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        n.lead(&w);
        let (_, fx) = n.step(&w, |r| r.on_append(1, append(2, (1, 1), &[], 0)));
        assert_eq!(
            (n.vol.role, n.disk.term, n.vol.leader),
            (Role::Follower, 2, Some(1))
        );
        assert!(matches!(
            fx[0],
            Effect::Role {
                role: Role::Follower,
                term: 2
            }
        ));
        assert!(
            fx.iter().any(|e| matches!(
                e,
                Effect::Timer {
                    kind: TimerKind::Follower,
                    ..
                }
            )),
            "a former leader arms its follower timer"
        );
    }

    #[test]
    fn higher_term_in_an_append_answer_steps_a_leader_down() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        n.lead(&w);
        let (ack, _) = n.step(&w, |r| r.on_append_resp(1, (7, false, 0, false)));
        assert_eq!(ack, None);
        assert_eq!((n.vol.role, n.disk.term), (Role::Follower, 7));
    }

    #[test]
    fn pre_vote_changes_no_state() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        let (_, fx) = n.step(&w, |r| r.on_vote(1, 2, (1, 1), true, false));
        assert_eq!(votes(&fx), [(1, true, 1)]);
        assert_eq!((n.disk.term, n.disk.voted_for), (1, None));
        assert_eq!(
            n.vol.last_contact, None,
            "a pre-vote does not reset the timer"
        );
    }

    #[test]
    fn pre_vote_round_then_real_election_on_a_quorum() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        let (_, fx) = n.step(&w, |r| r.start_candidacy(false, Some(0b111)));
        assert_eq!(requests(&fx), [(1, 2, true, false), (2, 2, true, false)]);
        assert_eq!(n.disk.term, 1, "a pre-vote round does not raise the term");
        assert!(n.vol.prevote);
        // A granted pre-vote carries the term asked for: not a reason to step down.
        let (_, fx) = n.step(&w, |r| r.on_vote_resp(1, 2, true, true));
        assert_eq!(n.disk.term, 2);
        assert_eq!(n.disk.voted_for, Some(0));
        assert_eq!(requests(&fx), [(1, 2, false, false), (2, 2, false, false)]);
        assert_eq!(n.vol.role, Role::Candidate);
    }

    #[test]
    fn peer_without_pre_vote_counts_as_granting() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        // Only the candidate understands pre-vote: the two peers count as granting at once.
        let (_, fx) = n.step(&w, |r| r.start_candidacy(false, Some(0b001)));
        assert_eq!(requests(&fx), [(1, 2, false, false), (2, 2, false, false)]);
        assert_eq!(n.disk.term, 2);
    }

    #[test]
    fn candidate_with_a_quorum_of_votes_becomes_leader() {
        let w = world(5);
        let mut n = node(0, 5, 5, &[]);
        n.step(&w, |r| r.start_candidacy(false, None));
        let (_, fx) = n.step(&w, |r| r.on_vote_resp(1, 2, true, false));
        assert_eq!(n.vol.role, Role::Candidate, "two of five");
        assert!(fx.is_empty());
        let (_, fx) = n.step(&w, |r| r.on_vote_resp(1, 2, true, false));
        assert_eq!(
            n.vol.role,
            Role::Candidate,
            "the same voter twice counts once"
        );
        assert!(fx.is_empty());
        let (_, fx) = n.step(&w, |r| r.on_vote_resp(3, 2, true, false));
        assert_eq!(n.vol.role, Role::Leader);
        assert!(matches!(fx.last(), Some(Effect::Elected)));
        assert_eq!(n.vol.progress[4].next, n.disk.last_index() + 1);
    }

    #[test]
    fn vote_answer_of_another_term_ignored() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        n.step(&w, |r| r.start_candidacy(false, None));
        n.step(&w, |r| r.on_vote_resp(1, 1, true, false));
        assert_eq!(n.vol.role, Role::Candidate);
    }

    #[test]
    fn follower_timer_with_fresh_contact_only_rearms() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        n.vol.leader = Some(1);
        n.vol.last_contact = Some(SimTime(w.now.0 - SEC / 2));
        let g = n.vol.role_gen;
        let (campaign, fx) = n.step(&w, |r| r.on_follower_timer(g));
        assert!(!campaign);
        assert_eq!(n.vol.leader, Some(1));
        let Effect::Timer {
            kind: TimerKind::Follower,
            delay: Delay::Between(lo, hi),
        } = fx[0]
        else {
            panic!("{fx:?}")
        };
        assert_eq!((lo, hi), (SEC, 2 * SEC), "U[HT, 2HT)");
    }

    #[test]
    fn follower_timer_after_heartbeat_timeout_forgets_the_leader_and_campaigns() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        n.vol.leader = Some(1);
        n.vol.last_contact = Some(SimTime(w.now.0 - SEC));
        let g = n.vol.role_gen;
        let (campaign, fx) = n.step(&w, |r| r.on_follower_timer(g));
        assert!(campaign && fx.is_empty());
        assert_eq!(n.vol.leader, None);
    }

    #[test]
    fn non_voter_never_campaigns() {
        let w = world(3);
        let mut n = node(2, 3, 2, &[]);
        n.vol.leader = Some(0);
        let g = n.vol.role_gen;
        let (campaign, _) = n.step(&w, |r| r.on_follower_timer(g));
        assert!(!campaign);
        assert_eq!(n.vol.leader, None, "it forgets the leader all the same");
    }

    #[test]
    fn stale_timer_of_an_earlier_role_ignored() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[]);
        let g = n.vol.role_gen;
        n.vol.role_gen += 1;
        let (campaign, fx) = n.step(&w, |r| r.on_follower_timer(g));
        assert!(!campaign && fx.is_empty());
    }

    #[test]
    fn lease_step_down_without_quorum_contact() {
        let mut w = world(3);
        let mut n = node(0, 3, 3, &[]);
        n.lead(&w);
        w.now = w.now.plus(600 * MS);
        n.vol.progress[2].contact = SimTime(w.now.0 - 100 * MS); // one follower is in touch
        let g = n.vol.role_gen;
        let (_, fx) = n.step(&w, |r| r.on_lease_timer(g));
        assert_eq!(
            n.vol.role,
            Role::Leader,
            "itself and one follower are a quorum of 3"
        );
        assert!(
            matches!(fx[..], [Effect::Timer { kind: TimerKind::Lease, delay: Delay::Fixed(d) }] if d == 500 * MS)
        );
        n.vol.progress[1].contact = SimTime(w.now.0 - SEC);
        n.vol.progress[2].contact = SimTime(w.now.0 - SEC);
        let (_, fx) = n.step(&w, |r| r.on_lease_timer(g));
        assert_eq!((n.vol.role, n.vol.leader), (Role::Follower, None));
        assert!(matches!(
            fx[0],
            Effect::Trace(TraceKind::LeaseLost { server: 0, term: 1 })
        ));
    }

    #[test]
    fn timeout_now_starts_an_election_at_once() {
        let w = world(3);
        let mut n = node(1, 3, 3, &[]);
        let (started, fx) = n.step(&w, |r| r.on_timeout_now(0, 1));
        assert!(started);
        assert_eq!(n.disk.term, 2, "no pre-vote round");
        assert_eq!(requests(&fx), [(0, 2, false, true), (2, 2, false, true)]);
    }

    #[test]
    fn timeout_now_ignored_by_a_non_voter() {
        let w = world(3);
        let mut n = node(2, 3, 2, &[]);
        let (started, _) = n.step(&w, |r| r.on_timeout_now(0, 1));
        assert!(!started);
        assert_eq!((n.vol.role, n.disk.term), (Role::Follower, 1));
    }

    // ---- log replication (Raft §5.3, §5.4.2) ----

    #[test]
    fn append_with_a_stale_term_refused() {
        let w = world(3);
        let mut n = node(1, 3, 3, &[3]);
        let (_, fx) = n.step(&w, |r| r.on_append(0, append(2, (2, 3), &[2], 0)));
        assert_eq!(append_answer(&fx), Some((false, 2)));
        assert_eq!(n.vol.leader, None);
    }

    #[test]
    fn log_matching_refuses_a_missing_previous_entry_with_a_hint() {
        let w = world(3);
        let mut n = node(1, 3, 3, &[1]);
        let (_, fx) = n.step(&w, |r| r.on_append(0, append(1, (5, 1), &[1], 0)));
        assert_eq!(append_answer(&fx), Some((false, 2)), "hint: its last index");
        assert_eq!(n.disk.last_index(), 2);
    }

    #[test]
    fn log_matching_refuses_a_previous_entry_of_another_term() {
        let w = world(3);
        let mut n = node(1, 3, 3, &[1, 1, 1]);
        let (_, fx) = n.step(&w, |r| r.on_append(0, append(2, (3, 2), &[2], 0)));
        assert_eq!(
            append_answer(&fx),
            Some((false, 2)),
            "hint: the index before prev"
        );
    }

    #[test]
    fn log_matching_drops_a_conflicting_suffix() {
        let w = world(3);
        let mut n = node(1, 3, 3, &[1, 1, 1]);
        let (_, fx) = n.step(&w, |r| r.on_append(0, append(2, (2, 1), &[2], 0)));
        assert_eq!(append_answer(&fx), Some((true, 3)));
        let terms: Vec<u64> = (1..=n.disk.last_index())
            .map(|i| n.disk.term_at(i).unwrap_or(0))
            .collect();
        assert_eq!(terms, [1, 1, 2], "entry 3 replaced, entry 4 dropped");
    }

    #[test]
    fn follower_commit_follows_the_leader_but_not_past_the_new_entries() {
        let w = world(3);
        let mut n = node(1, 3, 3, &[]);
        let (_, fx) = n.step(&w, |r| r.on_append(0, append(1, (1, 1), &[1], 9)));
        assert_eq!(n.vol.commit, 2);
        assert!(
            matches!(fx[..], [Effect::Apply, Effect::Reply { .. }]),
            "{fx:?}"
        );
    }

    #[test]
    fn append_of_the_same_term_makes_a_candidate_follow() {
        let w = world(3);
        let mut n = node(1, 3, 3, &[]);
        n.step(&w, |r| r.start_candidacy(false, None));
        assert_eq!((n.vol.role, n.disk.term), (Role::Candidate, 2));
        n.step(&w, |r| r.on_append(0, append(2, (1, 1), &[], 0)));
        assert_eq!((n.vol.role, n.vol.leader), (Role::Follower, Some(0)));
        assert_eq!(n.vol.last_contact, Some(w.now));
    }

    #[test]
    fn a_run_of_writes_stores_as_its_entries_one_by_one() {
        // `Entries::Writes` (a closed form's batch) against the same entries as a `Vec`: at
        // the log's end (the fast path), and over a suffix in conflict (the general path).
        let w = world(3);
        let run = |prev: (u64, u64), terms: &[u64]| {
            let mut outcomes = Vec::new();
            for as_run in [true, false] {
                let mut n = node(1, 3, 3, terms);
                let entries = if as_run {
                    Entries::Writes {
                        term: 3,
                        first_id: 7,
                        count: 3,
                    }
                } else {
                    Entries::Many(
                        (7..10)
                            .map(|id| Entry {
                                term: 3,
                                kind: EntryKind::Write(id),
                            })
                            .collect(),
                    )
                };
                let (answer, fx) = n.step(&w, |r| r.append_entries(0, 3, prev, entries, 4));
                assert!(fx.is_empty(), "the rule itself sends nothing: {fx:?}");
                outcomes.push((answer, n.disk.log.to_vec(), n.vol.commit));
            }
            assert_eq!(outcomes[0], outcomes[1]);
            outcomes.remove(0)
        };
        let (answer, log, commit) = run((3, 2), &[2, 2]);
        let ok = |last| Appended {
            last,
            ok: true,
            wrote: true,
        };
        assert_eq!(answer, ok(6));
        assert_eq!((log.len(), commit), (6, 4));
        // Index 3 holds a term-1 entry the leader does not have: dropped, the run stored.
        let (answer, log, _) = run((2, 1), &[1, 1, 1]);
        assert_eq!(answer, ok(5));
        assert_eq!(log.len(), 5);
        assert!(log[2..].iter().all(|e| e.term == 3));
    }

    #[test]
    fn configuration_entry_takes_effect_when_stored() {
        let w = world(4);
        let mut n = node(1, 4, 3, &[]);
        let peers: Vec<_> = (0..4).map(|i| peer(i, true)).collect();
        let msg = Msg::Append {
            term: 1,
            prev_index: 1,
            prev_term: 1,
            entries: Entries::One(Entry {
                term: 1,
                kind: EntryKind::Config(peers.into()),
            }),
            commit: 1,
            heartbeat: false,
        };
        n.step(&w, |r| r.on_append(0, msg));
        assert_eq!(n.vol.config_index, 2, "not waiting for the commit");
        assert!(n.vol.config.iter().all(|p| p.voter));
    }

    #[test]
    fn commit_only_current_term_entries() {
        let w = world(3);
        // Leader of term 3 holding an entry of term 2 at index 2 (§5.4.2, figure 8).
        let mut n = node(0, 3, 3, &[2]);
        n.disk.term = 3;
        n.lead(&w);
        n.vol.progress[1].matched = 2;
        let (moved, _) = n.step(&w, |r| r.advance_commit());
        assert!(
            !moved,
            "an earlier term's entry on a quorum is not committed by counting"
        );
        let ((idx, moved), _) = n.step(&w, |r| r.append(EntryKind::Noop));
        assert_eq!((idx, moved), (3, false));
        n.vol.progress[1].matched = 3;
        let (moved, _) = n.step(&w, |r| r.advance_commit());
        assert!(moved);
        assert_eq!(
            n.vol.commit, 3,
            "the current term's entry commits the earlier ones too"
        );
    }

    #[test]
    fn non_voter_never_counted_in_quorum() {
        let w = world(5);
        // Voters 0 and 1, non-voters 2, 3, 4: a quorum is both voters.
        let mut n = node(0, 5, 2, &[1]);
        n.lead(&w);
        for f in 2..5 {
            n.vol.progress[f].matched = 2;
        }
        let (moved, _) = n.step(&w, |r| r.advance_commit());
        assert!(!moved);
        n.vol.progress[1].matched = 2;
        let (moved, _) = n.step(&w, |r| r.advance_commit());
        assert!(moved);
    }

    #[test]
    fn stale_protocol_2_address_is_a_voter_that_never_acknowledges() {
        let mut w = world(3);
        let mut n = node(0, 3, 3, &[1]);
        n.lead(&w);
        n.vol.progress[1].matched = 2;
        // Server 1 came back under protocol 2 with a new address: its entry is stale.
        w.dir.set(1, 1, 2);
        let (moved, _) = n.step(&w, |r| r.advance_commit());
        assert!(
            !moved,
            "its match does not count, yet it still counts toward the quorum"
        );
        n.vol.progress[2].matched = 2;
        let (moved, _) = n.step(&w, |r| r.advance_commit());
        assert!(moved);
    }

    #[test]
    fn one_batch_in_flight_per_follower() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[1, 1]);
        n.lead(&w);
        n.vol.progress[1].next = 2;
        let (_, fx) = n.step(&w, |r| r.replicate(peer(1, true), false));
        assert!(
            matches!(&fx[..], [Effect::Send { msg: Msg::Append { prev_index: 1, entries, .. }, .. }] if entries.len() == 2)
        );
        assert!(n.vol.progress[1].inflight);
        let (_, fx) = n.step(&w, |r| r.replicate(peer(1, true), false));
        assert!(fx.is_empty(), "a second batch waits for the first");
        n.vol.progress[1].matched = 1;
        let (_, fx) = n.step(&w, |r| r.replicate(peer(1, true), true));
        assert!(
            matches!(&fx[..], [Effect::Send { msg: Msg::Append { prev_index: 1, entries, heartbeat: true, commit: 0, .. }, .. }] if entries.is_empty()),
            "a heartbeat beside the batch, at the matched index: {fx:?}"
        );
    }

    #[test]
    fn heartbeat_answer_beside_a_batch_does_not_move_replication() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[1]);
        n.lead(&w);
        n.vol.progress[1].inflight = true;
        n.vol.progress[1].inflight_until = w.now.plus(SEC);
        let (ack, _) = n.step(&w, |r| r.on_append_resp(1, (1, true, 1, true)));
        assert_eq!(ack, None);
        assert!(n.vol.progress[1].inflight);
        assert_eq!(
            n.vol.progress[1].contact, w.now,
            "contact is refreshed all the same"
        );
    }

    #[test]
    fn failed_append_moves_next_index_back_to_the_hint() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[1, 1, 1]);
        n.lead(&w);
        let (ack, _) = n.step(&w, |r| r.on_append_resp(1, (1, false, 1, false)));
        assert_eq!(n.vol.progress[1].next, 2);
        let ack = ack.expect("a failure moves replication on");
        assert!(!ack.ok && ack.more);
        let (_, fx) = n.step(&w, |r| r.after_ack(1, ack));
        assert!(matches!(
            &fx[..],
            [Effect::Send {
                msg: Msg::Append { prev_index: 1, .. },
                ..
            }]
        ));
    }

    #[test]
    fn leadership_transfer_sends_timeout_now_once_the_target_is_caught_up() {
        let w = world(3);
        let mut n = node(0, 3, 3, &[1]);
        n.lead(&w);
        n.vol.transfer_to = Some(2);
        let (ack, fx) = n.step(&w, |r| r.on_append_resp(2, (1, true, 1, false)));
        assert!(fx.is_empty());
        let (_, fx) = n.step(&w, |r| r.after_ack(2, ack.unwrap()));
        assert!(!fx.iter().any(|e| matches!(
            e,
            Effect::Send {
                msg: Msg::TimeoutNow { .. },
                ..
            }
        )));
        let (ack, _) = n.step(&w, |r| r.on_append_resp(2, (1, true, 2, false)));
        let (_, fx) = n.step(&w, |r| r.after_ack(2, ack.unwrap()));
        assert!(
            matches!(&fx[..], [Effect::Send { to, msg: Msg::TimeoutNow { term: 1 }, .. }] if to.id == 2)
        );
    }
}
