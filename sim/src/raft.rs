//! Raft with hashicorp/raft semantics (v1.7): the messages, and the world's side of the rules,
//! whose node side is `node::RaftNode`: the world dispatches events to a server's node and
//! carries out the effects it returns, in order.
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

use crate::node::{AfterAck, Ctx, Delay, Effect, RaftNode, append_resp};
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
/// `Vec`, or, for the batch a steady period's closed form delivers (`steady::Rounds`), the run
/// of workload writes it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "Vec<Entry>", into = "Vec<Entry>")]
pub enum Entries {
    /// One entry.
    One(Entry),
    /// Any number (none for a heartbeat).
    Many(Vec<Entry>),
    /// `count` workload writes of `term` with ids from `first_id` on, in order.
    Writes {
        /// Their term.
        term: u64,
        /// The first one's write id.
        first_id: u64,
        /// How many.
        count: u64,
    },
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
            Entries::Writes { count, .. } => *count as usize,
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
            w @ Entries::Writes { .. } => w.into_iter().collect(),
        }
    }
}

impl IntoIterator for Entries {
    type Item = Entry;
    type IntoIter = EntriesIter;

    fn into_iter(self) -> EntriesIter {
        match self {
            Entries::One(e) => EntriesIter::One(Some(e)),
            Entries::Many(v) => EntriesIter::Many(v.into_iter()),
            Entries::Writes {
                term,
                first_id,
                count,
            } => EntriesIter::Writes {
                term,
                ids: first_id..first_id + count,
            },
        }
    }
}

/// The entries of an `Entries`, in order.
pub enum EntriesIter {
    /// One entry, until taken.
    One(Option<Entry>),
    /// A batch.
    Many(std::vec::IntoIter<Entry>),
    /// A run of workload writes: the ids left.
    Writes {
        /// Their term.
        term: u64,
        /// The ids not taken yet.
        ids: std::ops::Range<u64>,
    },
}

impl Iterator for EntriesIter {
    type Item = Entry;

    #[inline]
    fn next(&mut self) -> Option<Entry> {
        match self {
            EntriesIter::One(e) => e.take(),
            EntriesIter::Many(v) => v.next(),
            EntriesIter::Writes { term, ids } => ids.next().map(|id| Entry {
                term: *term,
                kind: EntryKind::Write(id),
            }),
        }
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            EntriesIter::One(e) => (usize::from(e.is_some()), Some(usize::from(e.is_some()))),
            EntriesIter::Many(v) => v.size_hint(),
            EntriesIter::Writes { ids, .. } => ids.size_hint(),
        }
    }
}

/// Majority of `n` voters.
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

impl World {
    /// Runs `f` on server `id`'s Raft node, then carries out the effects it produced, in order.
    #[inline]
    pub(crate) fn with_node<R>(
        &mut self,
        id: ServerId,
        f: impl FnOnce(&mut RaftNode<'_>) -> R,
    ) -> R {
        // Effects buffers are reused: carrying out an effect may step a node again.
        let mut out = self.effects.pop().unwrap_or_default();
        debug_assert!(self.directory_current(), "the node directory is stale");
        let s = &mut self.servers[id];
        let r = f(&mut RaftNode {
            id,
            disk: &mut s.disk,
            vol: &mut s.vol,
            disk_delay_ns: s.disk_delay_ns,
            ctx: Ctx {
                now: self.now,
                cfg: &self.cfg,
                net: self.net.config(),
                dir: &self.dir,
            },
            out: &mut out,
        });
        // (Checked first: dropping even an empty drain costs tens of instructions.)
        if !out.is_empty() {
            for e in out.drain(..) {
                self.carry_out(id, e);
            }
        }
        self.effects.push(out);
        r
    }

    /// Carries out one effect of server `id`'s node.
    fn carry_out(&mut self, id: ServerId, e: Effect) {
        match e {
            Effect::Send { to, msg, extra_ns } => self.send_delayed(id, to, msg, extra_ns),
            Effect::Reply { to, msg, extra_ns } => self.reply_delayed(id, to, msg, extra_ns),
            Effect::Timer { kind, delay } => {
                let d = match delay {
                    Delay::Fixed(d) => d,
                    Delay::Between(lo, hi) => self.rng_timers.range(lo, hi),
                };
                self.timer(id, d, kind);
            }
            Effect::Role { role, term } => {
                // A cut-off server campaigning alone changes nothing a steady period depends
                // on; every other role change happens outside one (messages and live timers
                // end it before they are handled), so the period is already over here.
                if !self.steady_cut_off(id) {
                    debug_assert!(!self.is_steady(), "a role change inside a steady period");
                    self.leave_steady();
                }
                self.trace(TraceKind::Role {
                    server: id,
                    role,
                    term,
                });
                self.leadership_changed();
            }
            Effect::Trace(kind) => self.trace(kind),
            Effect::Campaign => self.metrics.elections += 1,
            Effect::Apply => self.apply_committed(id),
            Effect::Elected => self.establish(id),
        }
    }

    /// Whether the node directory agrees with the servers' addresses and protocols.
    fn directory_current(&self) -> bool {
        let mut d = crate::node::Directory::default();
        for (i, s) in self.servers.iter().enumerate() {
            d.set(i, s.addr_gen, s.advertised_protocol);
        }
        d == self.dir
    }

    pub(crate) fn is_voter(&self, id: ServerId) -> bool {
        crate::node::is_voter(&self.servers[id].vol.config, id, &self.dir)
    }

    pub(crate) fn arm_follower_timer(&mut self, id: ServerId) {
        self.with_node(id, |n| n.arm_follower_timer());
    }

    pub(crate) fn on_follower_timer(&mut self, id: ServerId, generation: u64) {
        if self.with_node(id, |n| n.on_follower_timer(generation)) {
            self.campaign(id);
        }
    }

    pub(crate) fn on_candidate_timer(&mut self, id: ServerId, generation: u64) {
        if self.with_node(id, |n| n.on_candidate_timer(generation)) {
            self.campaign(id);
        }
    }

    /// Starts a candidacy on server `id`: with a pre-vote round where its version has one.
    fn campaign(&mut self, id: ServerId) {
        let pre_vote = self.pre_vote(id).then(|| {
            (0..self.servers.len())
                .filter(|&p| self.pre_vote(p))
                .fold(0u32, |m, p| m | 1 << p)
        });
        self.with_node(id, |n| n.start_candidacy(false, pre_vote));
    }

    fn pre_vote(&self, id: ServerId) -> bool {
        let s = &self.servers[id];
        line_info(self.cfg.product, s.spec.version).is_ok_and(|l| l.pre_vote)
    }

    /// The world's side of winning an election (Nomad's leader loop, see `leadership`):
    /// autopilot and the newer entry types only once leadership is established; the no-op
    /// entry, the heartbeat and lease timers, the first broadcast.
    fn establish(&mut self, id: ServerId) {
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
        let (idx, committed) = self.with_node(id, |n| n.append(kind));
        if committed {
            self.apply_committed(id);
        }
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
        self.with_node(id, |n| n.on_lease_timer(generation));
    }

    /// Sends AppendEntries (or InstallSnapshot) to every peer that has nothing in flight.
    pub(crate) fn broadcast(&mut self, id: ServerId) {
        self.leave_steady();
        self.with_node(id, |n| n.broadcast());
    }

    /// How long an RPC in flight is waited for before it counts as lost (`Ctx::rpc_slack_ns`).
    pub(crate) fn rpc_slack_ns(&self) -> u64 {
        let ctx = Ctx {
            now: self.now,
            cfg: &self.cfg,
            net: self.net.config(),
            dir: &self.dir,
        };
        ctx.rpc_slack_ns()
    }

    fn on_append_resp(&mut self, to: ServerId, from: ServerId, resp: (u64, bool, u64, bool)) {
        let Some(ack): Option<AfterAck> = self.with_node(to, |n| n.on_append_resp(from, resp))
        else {
            return;
        };
        if ack.ok {
            self.advance_commit(to);
        }
        self.with_node(to, |n| n.after_ack(from, ack));
    }

    fn on_install(&mut self, to: ServerId, from: ServerId, term: u64, snap: Snapshot) {
        if !self.with_node(to, |n| n.accept_leader(from, term)) {
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
            s.disk.log.drop_front(n);
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

    /// Leader: raises the commit index as far as a quorum of voters allows in the current
    /// term (`RaftNode::advance_commit`), then applies.
    pub(crate) fn advance_commit(&mut self, id: ServerId) {
        if self.with_node(id, |n| n.advance_commit()) {
            self.apply_committed(id);
        }
    }

    /// Applies committed entries; an entry of a schema this binary does not know panics it.
    /// The common cases first, inline: a leader's one new write, a follower's run of writes
    /// and no-ops the canonical log already holds (`apply_fresh_write`, `apply_known`).
    #[inline]
    pub(crate) fn apply_committed(&mut self, id: ServerId) {
        if !self.apply_fresh_write(id)
            && let Some(done) = self.apply_known_all(id)
        {
            self.apply_committed_loop(id, done);
        }
        if self.oracle().canon.due() {
            self.archive_canon();
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
            // The first server to apply a committed index applies it to the workload state.
            let fresh = self.plane.is_some() && idx > self.oracle().canon.len();
            self.check_apply(id, idx, (term, digest), write.is_some());
            if fresh {
                let kind = self.servers[id].disk.entry(idx).map(|e| e.kind.clone());
                self.servers[id].vol.applied = idx;
                if let Some(kind) = kind {
                    self.plane_apply(&kind);
                }
            }
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
        let s = &self.servers[id];
        let base = s.disk.snapshot.as_ref().map_or(0, |x| x.index);
        if s.vol.applied >= base + threshold {
            let max_schema = self.max_schema_of(id);
            let s = &mut self.servers[id];
            let index = s.vol.applied;
            let term = s.disk.term_at(index).unwrap_or(0);
            let snap = Snapshot {
                index,
                term,
                config: s.vol.config.clone(),
                format,
                max_schema,
                fsm_writes: s.vol.fsm_writes,
            };
            // Keep TrailingLogs entries before the snapshot so lagging followers can catch up
            // without InstallSnapshot.
            let keep_from = index.saturating_sub(trailing).max(s.disk.start);
            s.disk.log.drop_front((keep_from - s.disk.start) as usize);
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
        self.with_node(id, |n| n.maybe_send_timeout_now(t, matched));
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

    /// Hands a message to server `to`'s node.
    pub(crate) fn deliver(&mut self, to: ServerId, from: ServerId, msg: Msg) {
        match msg {
            Msg::Vote {
                term,
                last_index,
                last_term,
                pre,
                transfer,
            } => self.with_node(to, |n| {
                n.on_vote(from, term, (last_index, last_term), pre, transfer)
            }),
            Msg::VoteResp { term, granted, pre } => {
                self.with_node(to, |n| n.on_vote_resp(from, term, granted, pre))
            }
            m @ Msg::Append { .. } => self.with_node(to, |n| n.on_append(from, m)),
            Msg::AppendResp {
                term,
                success,
                last_index,
                heartbeat,
            } => self.on_append_resp(to, from, (term, success, last_index, heartbeat)),
            Msg::Install { term, snap } => self.on_install(to, from, term, *snap),
            Msg::TimeoutNow { term } => {
                self.with_node(to, |n| n.on_timeout_now(from, term));
            }
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
            by_address: false,
        };
        self.send_delayed(from, p, msg, extra_ns);
    }
}
