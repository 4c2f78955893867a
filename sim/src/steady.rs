//! Quiet-period elision: while a cluster is steady, its heartbeats, follower timers and lease
//! checks are not simulated event by event but computed when they matter.
//!
//! Steady means: one running leader; every server in its configuration either running, a
//! follower of it in its term, caught up, with nothing in flight on its link, or *down* (its
//! process stopped, crashed, booting or paused: nothing reaches it, the leader's link to it is
//! refused or hangs, and it has no live timers; or it runs cut off from every other server by
//! a partition: nothing reaches it, the leader's link to it hangs, and its own timers and
//! campaigns run as ordinary events whose messages the partition drops, touching nothing
//! else; the running voters and the leader must still be a quorum); no other partition, no
//! loss, no slow disk but on at most one follower the others are a quorum without (it runs in
//! a lane, see `lane`), and latencies short enough that a heartbeat round trip
//! ends before the next heartbeat (2·latency_max < HT/10). A rolling upgrade spends much of its
//! time with one server down, so that counts as steady too. In that state the model's own rules
//! make the elided events predictable:
//! - the leader's heartbeat timer fires every HT/10 from a known first tick; each tick sends
//!   every follower an empty AppendEntries that only refreshes its last contact, carries the
//!   commit index, and is answered (refreshing the leader's contact with the follower);
//! - a follower's timer fires at U[HT,2HT) intervals and, contact being fresher than HT,
//!   only re-arms (the state at entry guarantees fresh contact until the first elided tick
//!   lands, and every tick lands within HT/10 + latency_max of the previous one);
//! - the leader's lease check passes every LeaderLeaseTimeout for the same reason.
//!
//! The latency of an elided heartbeat is drawn from a stateless function of (leader, term, tick
//! time, follower, direction), so it is the same whenever it is asked for. "Settling" brings
//! the fields an observer can read (followers' last contact, commit and applied indexes, the
//! leader's per-follower contact, the message counter) to their exact values at a time: at the
//! end of `run_until`, before an autopilot refresh or a snapshot check. It lands the latest
//! tick's AppendEntries delivered by then on each follower, and the latest answer back by then
//! on the leader, through the nodes' own rules (`settle_follower`). "Leaving" settles, then
//! hands back what is in flight: the last tick's undelivered AppendEntries or answers become
//! ordinary message events, and the heartbeat, lease and follower timers are re-armed at the
//! next time their schedules (the follower timers' renewals drawn now) say they fire. Anything
//! that could make the state matter — a fault verb, an operator action, a message from outside
//! the steady set, a live timer of another server, a configuration change, an election —
//! leaves first and then runs as before.
//!
//! Writes are the one thing steady mode does besides elision: a write whose AppendEntries
//! round trip to every follower ends before anything else can happen (the next heartbeat
//! tick, the next queued event, the end of the current `run_until`) and that does not meet a
//! heartbeat round still in flight is carried out at once: the leader appends, commits and
//! acknowledges when the answer that completes a quorum arrives; the followers' side waits
//! until something reads it (`Rounds`), and is then delivered through the nodes' own rules:
//! each round's AppendEntries lands on each follower through `RaftNode::append_entries` (the
//! rule `on_append` runs), which stores the entries and takes the leader's commit index, and
//! the answer lands on the leader through `on_append_resp` (`land_append`, `land_answer`);
//! the closed form only decides when they land. A write that meets a
//! heartbeat round in flight, or whose round would reach the next tick, is an *episode*
//! (those interleavings have their own behaviour in the model, e.g. a heartbeat sent at the
//! matched index while a batch is in flight). An episode that ends before the next queued
//! event and the caller's horizon is carried out in closed form too (`write_episode`: per
//! follower, the tick's batch, the heartbeat beside it, the write's batch, the ticks that
//! fall in it, and what each message carries, landing through the same rules in the order
//! they land: `episode_follower`), and the period goes on. Otherwise it runs
//! message by message through the ordinary handlers, on a small local queue, with the
//! heartbeat ticks that fall in it sent for real: when the local queue empties and the
//! cluster is still steady, the period goes on; if the episode would reach the next queued
//! event or the caller's horizon, or schedules anything, its messages move to the event
//! queue and the period ends.
//!
//! Not elided on purpose: write arrivals, autopilot refreshes and reconciles, gossip events,
//! snapshot checks (each still an event).

mod exact;
mod lane;

pub(crate) use exact::ForcedLats;
pub use exact::SpanCheck;

use crate::ProcessState;
use crate::node::RaftNode;
use crate::raft::{Entries, Msg, quorum};
use crate::rng::StatelessPrefix;
use crate::state::{Entry, EntryKind, Role, ServerId};
use crate::world::{MAX_SERVERS, TimerKind, World};
use rehearse_model::time::SimTime;
use std::collections::VecDeque;

/// Whether settling applies what followers committed now, or may leave it for later (see
/// `World::apply_follower`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Apply {
    Now,
    Later,
}

/// Which stateless draw a latency is (part of its key).
const DRAW_TICK: u64 = 1;
const DRAW_WRITE: u64 = 2;
/// The heartbeat a write's broadcast sends beside a tick's batch still in flight.
const DRAW_BESIDE: u64 = 3;
/// A slow follower's lane (`lane`): each message, keyed by its send time.
const DRAW_LANE: u64 = 4;

/// The state of a steady period.
#[derive(Debug, Clone)]
pub(crate) struct Steady {
    leader: ServerId,
    term: u64,
    /// The leader's peers (followers and non-voters) in configuration order.
    followers: [ServerId; MAX_SERVERS],
    n: usize,
    /// Voters among `followers`.
    voter: [bool; MAX_SERVERS],
    /// Deaf followers among `followers` (see `follower_deaf`): the leader's heartbeats reach
    /// them, their answers do not reach the leader, and no write is sent to them.
    deaf: [bool; MAX_SERVERS],
    /// Peers that are down (stopped, crashed, booting, paused, or cut off by a partition):
    /// nothing reaches them, so a tick or a write only finds the leader's link to them refused
    /// or hanging, and their voter entries only raise the quorum.
    down: [ServerId; MAX_SERVERS],
    nd: usize,
    down_voters: usize,
    /// Answers from running followers a write needs for a quorum (the leader's own vote
    /// aside): fixed while the period holds, as its voters and down peers are.
    need: usize,
    /// First elided heartbeat tick; ticks at `tick0 + k·hb`.
    tick0: SimTime,
    hb_ns: u64,
    /// First elided lease check; checks at `lease0 + k·lease`.
    lease0: SimTime,
    lease_ns: u64,
    /// Per follower: when its follower timer fires next (renewals are drawn on leaving).
    follower_timer: [SimTime; MAX_SERVERS],
    /// Send time of the last write round (or the entry time): ticks before it are dominated.
    last_round: SimTime,
    /// Entry time or the end of the last episode: ticks before it were sent for real. (A
    /// deaf follower gets no write round, so only these ticks are not its business.)
    last_real: SimTime,
    /// Ticks whose messages have been counted in `Metrics::messages`.
    counted: u64,
    /// Latency range of the network while steady (changing it leaves steady mode).
    lat_lo: u64,
    lat_hi: u64,
    /// Role generations of the leader and followers while steady (a change means a role
    /// changed in an episode: its timers are then that role's business, not ours).
    leader_gen: u64,
    gens: [u64; MAX_SERVERS],
    /// Per follower: when a closed-form round or episode last raised its commit index (see
    /// `apply_follower`). It applies what that lets it apply when settled, with the clock at
    /// that time.
    learned_at: [SimTime; MAX_SERVERS],
    /// Room for a closed-form episode's messages to one follower and their answers (kept
    /// between episodes, so that they are neither allocated nor filled in advance).
    episode_msgs: Vec<EpisodeMsg>,
    episode_answers: Vec<(SimTime, Answer)>,
    /// The first index the period wrote (the leader's last index + 1 at entry): everything
    /// from it on is a workload write the leader has applied, which a follower applies alike
    /// whenever it does (see `apply_follower`).
    plain_from: u64,
    /// Messages one closed-form write round sends and answers (two per running follower, one
    /// per deaf follower: its answer is dropped where it is sent; a slow follower's are its
    /// lane's). A heartbeat tick's round counts the same.
    round_messages: u64,
    /// Closed-form write rounds whose effects on the followers are not carried out yet (see
    /// `Rounds`).
    rounds: Option<Rounds>,
    /// The slow follower among `followers` (its disk delays every write), if any: its messages
    /// run in its lane (see `lane`), not in the closed form.
    slow: [bool; MAX_SERVERS],
    lane: Option<lane::SlowLane>,
    /// Voters among `followers` whose answers count for a write's quorum: neither deaf nor
    /// slow.
    answering: [bool; MAX_SERVERS],
}

/// The write rounds since the followers were last brought up to date. Rounds never overlap
/// (each ends before the next queued event, and the next write arrival is one), so what a
/// follower holds after them is what the last one leaves: the entries, the last round's
/// contact, the commit index it carried (each round carries one more than the one before)
/// and the leader's progress from its answer. `flush_rounds` carries that out; anything that
/// reads a follower's state while steady settles first, which flushes. The rounds' entries
/// are writes of the period's term with consecutive ids (a gap flushes first), so the
/// followers' copies are made from the ids, without reading the leader's log.
#[derive(Debug, Clone, Copy)]
struct Rounds {
    /// The first round's index (the followers' logs end just before it) and write id.
    from: u64,
    first_id: u64,
    /// The last round: its index, when it was sent, and the commit index it carried.
    idx: u64,
    sent: SimTime,
    commit: u64,
}

/// An AppendEntries a closed form delivers (`World::land_append`): `Msg::Append`'s fields but
/// the term, which is the period's.
struct Batch {
    /// Index and term of the entry before `entries`.
    prev: (u64, u64),
    entries: Entries,
    /// The leader's commit index when it was sent.
    commit: u64,
    /// Sent by the heartbeat path beside a batch in flight.
    heartbeat: bool,
}

/// An AppendEntries answer as `RaftNode::on_append_resp` takes it: term, success, the
/// follower's last index, and whether it answers a heartbeat.
type Answer = (u64, bool, u64, bool);

/// What an autopilot refresh reads of a server's Raft state: its last contact with a leader,
/// its last log term and index (`World::log_views_for_health`).
pub(crate) type LogView = (Option<SimTime>, u64, u64);

/// Most steps an episode takes before it hands its messages to the event queue.
const EPISODE_STEPS_MAX: u32 = 100_000;
/// Most ticks a closed-form episode covers (each round trip is shorter than a tick period, so
/// one or two in practice); one that would cover more runs message by message.
const EPISODE_TICKS_MAX: usize = 8;

impl Steady {
    /// A period of leader `leader` in `term` entered at `now` with its log ending at `last`,
    /// its first heartbeat tick and lease check at `tick0` and `lease0` (every `hb_ns` and
    /// `lease_ns`), latencies in `lat_lo..lat_hi`; its peers are sorted in after
    /// (`World::sort_steady_peers`).
    fn new(
        (leader, term, last, now): (ServerId, u64, u64, SimTime),
        (tick0, hb_ns, lease0, lease_ns): (SimTime, u64, SimTime, u64),
        (lat_lo, lat_hi): (u64, u64),
    ) -> Steady {
        Steady {
            leader,
            term,
            followers: [0; MAX_SERVERS],
            n: 0,
            voter: [false; MAX_SERVERS],
            deaf: [false; MAX_SERVERS],
            tick0,
            hb_ns,
            lease0,
            lease_ns,
            follower_timer: [SimTime::ZERO; MAX_SERVERS],
            last_round: now,
            last_real: now,
            counted: 0,
            lat_lo,
            lat_hi,
            leader_gen: 0,
            gens: [0; MAX_SERVERS],
            learned_at: [SimTime::ZERO; MAX_SERVERS],
            episode_msgs: Vec::new(),
            episode_answers: Vec::new(),
            round_messages: 0,
            rounds: None,
            plain_from: last + 1,
            down: [0; MAX_SERVERS],
            nd: 0,
            down_voters: 0,
            need: 0,
            slow: [false; MAX_SERVERS],
            lane: None,
            answering: [false; MAX_SERVERS],
        }
    }

    fn tick(&self, k: u64) -> SimTime {
        self.tick0.plus(k * self.hb_ns)
    }

    /// The last tick at or before `t`.
    fn last_tick(&self, t: SimTime) -> Option<u64> {
        (t >= self.tick0).then(|| t.since(self.tick0) / self.hb_ns)
    }

    /// The first tick after `t`.
    fn next_tick(&self, t: SimTime) -> u64 {
        self.last_tick(t).map_or(0, |k| k + 1)
    }
}

impl World {
    /// The stateless stream of the elided or closed-form AppendEntries round trips `x` (a
    /// tick's time or a write's index): `steady_lats` draws each follower's from it.
    fn round_hash(&self, st: &Steady, x: u64) -> StatelessPrefix {
        self.net.steady_round(st.term, x)
    }

    /// The two one-way latencies (there, back) of the round trip of kind `draw` to follower
    /// `f` whose stream is `round` (from `round_hash`).
    fn steady_lats(st: &Steady, round: &StatelessPrefix, draw: u64, f: ServerId) -> (u64, u64) {
        let who = draw << 56 | (st.leader as u64) << 48 | (f as u64) << 40;
        round.pair_at(st.lat_lo, st.lat_hi, who)
    }

    fn tick_hash(&self, st: &Steady, k: u64) -> StatelessPrefix {
        self.round_hash(st, st.tick(k).0)
    }

    fn tick_lats(st: &Steady, tick: &StatelessPrefix, f: ServerId) -> (u64, u64) {
        Self::steady_lats(st, tick, DRAW_TICK, f)
    }

    /// The leader of the steady period, if one runs.
    pub(crate) fn steady_leader(&self) -> Option<ServerId> {
        self.steady.as_ref().map(|st| st.leader)
    }

    /// Whether the world is in a steady period.
    pub(crate) fn is_steady(&self) -> bool {
        self.steady.is_some()
    }

    /// Enters steady mode if the cluster is steady now (see the module docs). Called when no
    /// message is in flight.
    pub(crate) fn try_enter_steady(&mut self) {
        if let Some(mut st) = self.steady_candidate() {
            // A slow follower's messages in flight become its lane's.
            if let Some(lane) = st.lane.as_mut() {
                let msgs = self.take_msgs_of(lane.f);
                lane.adopt(msgs);
            }
            // Their pending heartbeat, lease and follower timers become stale: steady mode
            // keeps those schedules until it hands them back.
            for i in 0..st.n {
                let s = &mut self.servers[st.followers[i]];
                s.vol.role_gen += 1;
                st.gens[i] = s.vol.role_gen;
            }
            let now = self.now;
            let ls = &mut self.servers[st.leader];
            ls.vol.role_gen += 1;
            st.leader_gen = ls.vol.role_gen;
            // The leader's links to down peers, as its next tick leaves them (set now, at most
            // one tick early, and invisible while they are down): a stopped, crashed or booting
            // peer refuses the AppendEntries at once (see `send_delayed`); a paused one takes
            // it and never answers, so a batch is in flight until the RPC counts as lost.
            let slack = self.rpc_slack_ns();
            for &d in &st.down[..st.nd] {
                // A cut-off server's link drops the AppendEntries: it hangs like a paused one.
                let paused = matches!(
                    self.servers[d].proc,
                    ProcessState::Paused | ProcessState::Running
                );
                let pr = &mut self.servers[st.leader].vol.progress[d];
                if paused && !pr.inflight {
                    pr.inflight_until = now.plus(slack);
                } else if !paused {
                    pr.inflight_until = pr.inflight_until.min(now);
                }
                pr.inflight = true;
            }
            self.steady_entered += 1;
            self.steady = Some(st);
        }
    }

    fn steady_candidate(&self) -> Option<Box<Steady>> {
        let (lat_lo, lat_hi) = self.net.latency_range();
        let ht = self.cfg.heartbeat_timeout_ns();
        let hb = ht / 10;
        let lease = self.cfg.leader_lease_ns();
        // Round trips shorter than the heartbeat period; contact refreshed well within HT and
        // the lease by every tick.
        let rtt = 2 * lat_hi;
        if self.net.config().loss > 0.0 || rtt >= hb || hb + rtt >= lease {
            return None;
        }
        let (l, tick0, lease0) = self.steady_leader_now()?;
        let ls = &self.servers[l];
        let (term, last) = (ls.disk.term, ls.disk.last_index());
        let mut st = Box::new(Steady::new(
            (l, term, last, self.now),
            (tick0, hb, lease0, lease),
            (lat_lo, lat_hi),
        ));
        self.sort_steady_peers(&mut st, rtt)?;
        self.steady_quorum_holds(&mut st).then_some(())?;
        self.steady_in_flight_is_lanes(&st).then_some(())?;
        let deaf = st.deaf[..st.n].iter().filter(|&&d| d).count();
        let slow = usize::from(st.lane.is_some());
        st.round_messages = (2 * (st.n - slow) - deaf) as u64;
        Some(st)
    }

    /// The one running leader, if it can lead a steady period now (no transfer under way, a
    /// voter, nothing blocked but around it, everything it wrote committed and applied), with
    /// the times its live heartbeat and lease timers fire.
    fn steady_leader_now(&self) -> Option<(ServerId, SimTime, SimTime)> {
        let mut leaders = self
            .servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.proc == ProcessState::Running && s.vol.role == Role::Leader);
        let (l, ls) = leaders.next()?;
        if leaders.next().is_some() || ls.vol.transfer_to.is_some() || !self.is_voter(l) {
            return None;
        }
        if !self.blocked_only_around(l) {
            return None;
        }
        let last = ls.disk.last_index();
        if ls.vol.commit != last || ls.vol.applied != last {
            return None;
        }
        Some((l, self.live_timer(l, 1)?, self.live_timer(l, 2)?))
    }

    /// When server `id`'s timer `k` fires next, if it is live (armed in its current role and
    /// still ahead).
    fn live_timer(&self, id: ServerId, k: usize) -> Option<SimTime> {
        let s = &self.servers[id];
        let (at, generation) = s.vol.timer_at[k];
        (generation == s.vol.role_gen && at > self.now).then_some(at)
    }

    /// Sorts the leader's peers into the period's followers (steady, deaf or the one slow
    /// one) and down peers; None if a peer is none of those.
    fn sort_steady_peers(&self, st: &mut Steady, rtt: u64) -> Option<()> {
        let l = st.leader;
        for p in self.servers[l].vol.config.iter().filter(|p| p.id != l) {
            let deaf = self.follower_deaf(l, p, rtt);
            let slow = !deaf && st.lane.is_none() && self.follower_slow(l, p, rtt);
            if slow {
                st.lane = Some(lane::SlowLane::new(p.id));
                st.slow[st.n] = true;
            } else if !deaf && !self.follower_steady(l, p, rtt) {
                if !self.peer_down(p) {
                    return None;
                }
                st.down[st.nd] = p.id;
                st.nd += 1;
                st.down_voters += usize::from(p.voter);
                continue;
            }
            st.follower_timer[st.n] = self.live_timer(p.id, 0)?;
            st.followers[st.n] = p.id;
            st.voter[st.n] = p.voter;
            st.deaf[st.n] = deaf;
            st.n += 1;
        }
        Some(())
    }

    /// Whether the leader and the running voters are a quorum on their own (otherwise writes
    /// do not commit and the lease lapses, which steady mode does not model); sets which
    /// followers answer and how many answers a write needs. Deaf voters never answer: they
    /// count like down ones. So do slow ones: their answers come after the others' (see
    /// `lane`).
    fn steady_quorum_holds(&self, st: &mut Steady) -> bool {
        let voters = st.voter[..st.n].iter().filter(|&&v| v).count();
        for i in 0..st.n {
            st.answering[i] = st.voter[i] && !st.deaf[i] && !st.slow[i];
        }
        let up_voters = st.answering[..st.n].iter().filter(|&&a| a).count();
        let quorum = quorum(voters + st.down_voters + 1);
        st.need = quorum.saturating_sub(1);
        up_voters + 1 >= quorum
    }

    /// Whether every message in flight is the slow follower's lane's: on its link with the
    /// leader, AppendEntries and their answers only.
    fn steady_in_flight_is_lanes(&self, st: &Steady) -> bool {
        if self.msgs_in_flight == 0 {
            return true;
        }
        let m = self.msgs_in_flight;
        let Some(f) = st.lane.as_ref().map(|lane| lane.f) else {
            return false;
        };
        u64::from(self.msgs_by[f]) == m
            && u64::from(self.msgs_by[st.leader]) == m
            && self.only_appends_of(f)
    }

    /// Whether configuration entry `p` is a server whose process is down (stopped, crashed,
    /// booting: its boot event ends a steady period; or paused: it receives nothing and its
    /// timers wait for the resume, which ends a steady period), or that runs cut off from
    /// every other server (an isolating partition: its timers run as events, its campaigns
    /// reach nobody, and healing the partition ends a steady period).
    fn peer_down(&self, p: &crate::state::Peer) -> bool {
        self.is_server(p)
            && (matches!(
                self.servers[p.id].proc,
                ProcessState::Stopped
                    | ProcessState::Crashed
                    | ProcessState::Starting
                    | ProcessState::Paused
            ) || self.cut_off(p.id))
    }

    /// Whether server `id` is a cut-off peer of the current steady period (see `peer_down`):
    /// its own timers and role changes can run inside the period.
    pub(crate) fn steady_cut_off(&self, id: ServerId) -> bool {
        self.steady
            .as_ref()
            .is_some_and(|st| st.down[..st.nd].contains(&id))
            && self.cut_off(id)
    }

    /// Whether peer `p` of leader `l` is steady: running, following `l` in its term, caught up
    /// with nothing in flight, able to apply what it has not applied yet, and in fresh contact
    /// both ways (fresh enough to stay so until the first elided tick lands), its answers not
    /// cut by a one-way partition: a follower cut off one way from the leader just now still
    /// looks caught up and fresh, but its answers are dropped (it becomes a deaf follower once
    /// the leader's next batch to it is in flight; the exact check, `exact`, found the closed
    /// form counting its answers before that). The same holds for a follower cut off both ways
    /// (then it is down) and for the followers of a leader cut off both ways (no period).
    fn follower_steady(&self, l: ServerId, p: &crate::state::Peer, rtt: u64) -> bool {
        self.servers[p.id].disk_delay_ns == 0 && self.follower_caught_up(l, p, rtt)
    }

    /// Whether peer `p` of leader `l` is a slow follower that can run in a lane (see `lane`):
    /// a running follower of `l` in its term whose disk delays every stored write by more
    /// than the longest round trip (so its answers come after the others'), in fresh contact
    /// (fresh enough to stay so until the first elided tick lands), whose next batch and
    /// heartbeat come from the leader's log (no snapshot to install), and able to apply
    /// everything the leader holds. Unlike a steady follower it may be behind, with a batch,
    /// its answer or a heartbeat in flight: the lane takes those messages over.
    fn follower_slow(&self, l: ServerId, p: &crate::state::Peer, rtt: u64) -> bool {
        let ls = &self.servers[l];
        let s = &self.servers[p.id];
        let pr = &ls.vol.progress[p.id];
        let ht = self.cfg.heartbeat_timeout_ns();
        let (hb, now) = (ht / 10, self.now);
        s.disk_delay_ns > rtt
            && s.proc == ProcessState::Running
            && self.net.link_open(p.id, l)
            && self.net.link_open(l, p.id)
            && s.vol.role == Role::Follower
            && s.disk.term == ls.disk.term
            && s.vol.leader == Some(l)
            && p.addr_gen == s.addr_gen
            && pr.snapshot_inflight.is_none()
            && pr.next >= ls.disk.log_start()
            && ls.disk.term_at(pr.next - 1).is_some()
            && ls.disk.term_at(pr.matched).is_some()
            && s.vol
                .last_contact
                .is_some_and(|c| now.since(c) + hb + rtt < ht)
            && (s.vol.applied + 1..=ls.disk.last_index()).all(|i| {
                ls.disk
                    .entry(i)
                    .is_some_and(|e| self.unreadable(p.id, e).is_none())
            })
    }

    /// `follower_steady` without the disk.
    fn follower_caught_up(&self, l: ServerId, p: &crate::state::Peer, rtt: u64) -> bool {
        let ls = &self.servers[l];
        let (term, last, last_term) = (ls.disk.term, ls.disk.last_index(), ls.disk.last_term());
        let ht = self.cfg.heartbeat_timeout_ns();
        let (hb, lease, now) = (ht / 10, self.cfg.leader_lease_ns(), self.now);
        let s = &self.servers[p.id];
        let pr = &ls.vol.progress[p.id];
        s.proc == ProcessState::Running
            && self.net.link_open(p.id, l)
            && s.vol.role == Role::Follower
            && s.disk.term == term
            && s.vol.leader == Some(l)
            && p.addr_gen == s.addr_gen
            && s.disk.last_index() == last
            && s.disk.last_term() == last_term
            && !pr.inflight
            && pr.snapshot_inflight.is_none()
            && pr.matched == last
            && pr.next == last + 1
            && s.vol
                .last_contact
                .is_some_and(|c| now.since(c) + hb + rtt < ht)
            && now.since(pr.contact) + hb + rtt < lease
            && (s.vol.applied + 1..=last).all(|i| {
                s.disk
                    .entry(i)
                    .is_some_and(|e| self.unreadable(p.id, e).is_none())
            })
    }

    /// Whether peer `p` of leader `l` is a deaf follower: a running follower of `l` in its
    /// term whose messages to `l` are dropped (a one-way partition) while `l`'s reach it. The
    /// leader's batch to it is in flight for good (its answer never comes), so at each tick the
    /// leader sends it only a heartbeat at the matched index, which refreshes its contact and
    /// teaches it the commit index up to that point; no write goes to it. It must have learned
    /// and applied that much already, hold the matched entry, and be in fresh contact (fresh
    /// enough to stay so until the first elided tick lands).
    fn follower_deaf(&self, l: ServerId, p: &crate::state::Peer, rtt: u64) -> bool {
        let ls = &self.servers[l];
        let s = &self.servers[p.id];
        let pr = &ls.vol.progress[p.id];
        let ht = self.cfg.heartbeat_timeout_ns();
        let (hb, now) = (ht / 10, self.now);
        let heard = pr.matched.min(ls.vol.commit);
        !self.net.link_open(p.id, l)
            && self.net.link_open(l, p.id)
            && s.proc == ProcessState::Running
            && s.vol.role == Role::Follower
            && s.disk.term == ls.disk.term
            && s.vol.leader == Some(l)
            && p.addr_gen == s.addr_gen
            && s.disk_delay_ns == 0
            && pr.inflight
            && pr.snapshot_inflight.is_none()
            && pr.matched >= s.disk.log_start()
            && s.disk.term_at(pr.matched).is_some()
            && s.disk.term_at(pr.matched) == ls.disk.term_at(pr.matched)
            && s.vol.commit >= heard
            && s.vol.applied == s.vol.commit
            && s.vol
                .last_contact
                .is_some_and(|c| now.since(c) + hb + rtt < ht)
    }

    /// Whether the period `st` still holds after an episode: same leader, term, roles and
    /// configuration, everything caught up and quiet.
    fn steady_holds(&self, st: &Steady) -> bool {
        let l = st.leader;
        let ls = &self.servers[l];
        let last = ls.disk.last_index();
        let leader_ok = ls.proc == ProcessState::Running
            && ls.vol.role == Role::Leader
            && ls.vol.role_gen == st.leader_gen
            && ls.disk.term == st.term
            && ls.vol.transfer_to.is_none()
            && ls.vol.commit == last
            && ls.vol.applied == last;
        let peers = ls.vol.config.iter().filter(|p| p.id != l);
        if !leader_ok || peers.clone().count() != st.n + st.nd {
            return false;
        }
        let rtt = 2 * st.lat_hi;
        let mut i = 0;
        for p in peers {
            if st.down[..st.nd].contains(&p.id) {
                if !self.peer_down(p) {
                    return false;
                }
                continue;
            }
            let ok = i < st.n
                && p.id == st.followers[i]
                && p.voter == st.voter[i]
                && self.servers[p.id].vol.role_gen == st.gens[i]
                && if st.deaf[i] {
                    self.follower_deaf(l, p, rtt)
                } else {
                    self.follower_steady(l, p, rtt)
                };
            if !ok {
                return false;
            }
            i += 1;
        }
        i == st.n
    }

    /// Brings what observers can read to its exact value at the current time.
    pub(crate) fn settle_steady(&mut self) {
        self.settle_steady_as(Apply::Now);
    }

    /// `settle_steady` before an autopilot refresh, which reads the followers' contact and
    /// logs, not what they applied (see `apply_follower`).
    pub(crate) fn settle_steady_for_health(&mut self) {
        self.settle_steady_as(Apply::Later);
    }

    /// Whether an autopilot refresh must settle the quiet period before it reads the
    /// followers. Not when every running follower is plain (neither deaf nor slow) and none
    /// applies what it learns as it learns it: `log_views_for_health` then gives what settling
    /// would leave, and a later settle leaves what this one would have (the closed form is
    /// the same whenever it is carried out, as an episode's is; see `carry_out_episode`).
    /// Settling at every refresh cost about 6 % of a simulated day's instructions.
    pub(crate) fn health_needs_settling(&self) -> bool {
        self.steady.as_ref().is_some_and(|st| {
            st.lane.is_some() || st.deaf[..st.n].contains(&true) || self.applies_now(st)
        })
    }

    /// What an autopilot refresh reads of each server of `ids` (into `out`, in the same
    /// order): its last contact with a leader, its last log term and index. For a plain
    /// follower of an unsettled quiet period, what settling now would leave (`flush_rounds`,
    /// then `settle_follower`): the last write round's entries and contact, then the latest
    /// tick delivered by now if it came later. Otherwise the server's own.
    pub(crate) fn log_views_for_health(&self, ids: &[ServerId], out: &mut [LogView]) {
        for (v, &id) in out.iter_mut().zip(ids) {
            *v = self.own_log_view(id);
        }
        let Some(st) = self.steady.as_ref() else {
            return;
        };
        // The streams once for every follower.
        let round = st.rounds.map(|r| (r, self.round_hash(st, r.idx)));
        let ticks = self.settle_ticks(st);
        for (v, &id) in out.iter_mut().zip(ids) {
            let Some(i) = (0..st.n).find(|&i| st.followers[i] == id) else {
                continue;
            };
            if st.deaf[i] || st.slow[i] {
                // Settled first (`health_needs_settling`).
                continue;
            }
            if let Some((r, round)) = &round {
                let d = r.sent.plus(Self::steady_lats(st, round, DRAW_WRITE, id).0);
                debug_assert!(d <= self.now, "a round is over before the next event");
                *v = (Some(d), st.term, r.idx);
            }
            let delivered = ticks
                .iter()
                .flatten()
                .map(|(t, tick)| t.plus(Self::tick_lats(st, tick, id).0))
                .find(|&d| d <= self.now);
            if let Some(d) = delivered.filter(|&d| v.0.is_none_or(|c| c < d)) {
                v.0 = Some(d);
            }
        }
    }

    /// Server `id`'s own last contact with a leader, last log term and index, as its node
    /// holds them now.
    pub(crate) fn own_log_view(&self, id: ServerId) -> LogView {
        let s = &self.servers[id];
        (s.vol.last_contact, s.disk.last_term(), s.disk.last_index())
    }

    fn settle_steady_as(&mut self, apply: Apply) {
        if let Some(mut st) = self.steady.take() {
            self.settle_as(&mut st, apply);
            self.steady = Some(st);
        }
    }

    /// Settles one server only (before its snapshot check).
    pub(crate) fn settle_steady_server(&mut self, id: ServerId) {
        if let Some(mut st) = self.steady.take() {
            // The rounds first: the follower's snapshot takes its log and applied index.
            let now = self.now;
            self.lane_catch_up(&mut st, now);
            self.flush_rounds(&mut st);
            if let Some(i) = (0..st.n).find(|&i| st.followers[i] == id && !st.slow[i]) {
                let ticks = self.settle_ticks(&st);
                self.settle_follower(&mut st, i, &ticks, Apply::Now);
            }
            self.steady = Some(st);
        }
    }

    /// Before server `id` takes a snapshot inside a steady period: if it is the leader and
    /// has a deaf follower, the period ends first (compaction could take the matched index
    /// its heartbeats carry, which `follower_deaf` relies on; snapshots are minutes apart).
    pub(crate) fn leave_steady_if_compaction_matters(&mut self, id: ServerId) {
        let deaf = self.steady.as_ref().is_some_and(|st| {
            st.leader == id && (st.deaf[..st.n].contains(&true) || st.lane.is_some())
        });
        if deaf {
            self.leave_steady();
        }
    }

    fn settle(&mut self, st: &mut Steady) {
        self.settle_as(st, Apply::Now);
    }

    /// `settle`, the followers' applies deferred where `apply_follower` allows if `apply` says
    /// so (an autopilot refresh and an episode read contact, commit and log, not what was
    /// applied).
    fn settle_as(&mut self, st: &mut Steady, apply: Apply) {
        let now = self.now;
        // The lane before the rounds: it must not see the others' progress ahead of its time.
        self.lane_catch_up(st, now);
        self.flush_rounds(st);
        // Ticks whose round trips are surely over: count their messages.
        let done = now.0.checked_sub(st.tick0.0 + 2 * st.lat_hi);
        let done = done.map_or(0, |d| d / st.hb_ns + 1);
        if done > st.counted {
            self.metrics.messages += st.round_messages * (done - st.counted);
            st.counted = done;
        }
        let ticks = self.settle_ticks(st);
        for i in 0..st.n {
            self.settle_follower(st, i, &ticks, apply);
        }
    }

    /// The ticks settling looks at, latest first, with their latency streams: the last tick by
    /// now and the one before (its round trip ends before the last, so it has surely landed
    /// and been answered), those after the last write round.
    fn settle_ticks(&self, st: &Steady) -> [Option<(SimTime, StatelessPrefix)>; 2] {
        let Some(km) = st.last_tick(self.now) else {
            return [None, None];
        };
        let tick = |k: u64| {
            let t = st.tick(k);
            (t > st.last_round).then(|| (t, self.tick_hash(st, k)))
        };
        [Some(km), km.checked_sub(1)].map(|k| k.and_then(tick))
    }

    /// Lands on follower `i` the latest tick delivered by now, and on the leader the latest
    /// answer to a tick that has come back by now, through the nodes' rules (`land_append`,
    /// `land_answer`): the follower's last contact and commit index (and what that lets it
    /// apply), the leader's contact with it. `ticks` are the ticks to look at
    /// (`settle_ticks`).
    fn settle_follower(
        &mut self,
        st: &mut Steady,
        i: usize,
        ticks: &[Option<(SimTime, StatelessPrefix)>; 2],
        apply: Apply,
    ) {
        if st.deaf[i] {
            return self.settle_deaf(st, i);
        }
        if st.slow[i] {
            return;
        }
        let now = self.now;
        let (l, f) = (st.leader, st.followers[i]);
        let s = &self.servers[f];
        if s.vol.commit.min(s.disk.last_index()) > s.vol.applied {
            self.apply_follower(st, f, st.learned_at[i], apply);
        }
        let mut delivered = None;
        let mut answered = None;
        for (t, tick) in ticks.iter().flatten() {
            let (a, b) = Self::tick_lats(st, tick, f);
            let d = t.plus(a);
            if delivered.is_none() && d <= now {
                delivered = Some(d);
            }
            if answered.is_none() && d.plus(b) <= now {
                answered = Some(d.plus(b));
            }
        }
        if let Some(r) = answered.filter(|&r| self.servers[l].vol.progress[f].contact < r) {
            // A tick's AppendEntries at the follower's last index, answered as the rule
            // answers it (it may have landed in an earlier settle).
            let s = &self.servers[f];
            let answer = (s.disk.term, true, s.disk.last_index(), false);
            self.land_answer(l, f, r, answer);
        }
        let Some(d) = delivered else { return };
        if self.servers[f].vol.last_contact.is_some_and(|c| c >= d) {
            return;
        }
        let ls = &self.servers[l];
        let prev = ls.vol.progress[f].next - 1;
        let tick = Batch {
            prev: (prev, ls.disk.term_at(prev).unwrap_or(0)),
            entries: Entries::none(),
            commit: ls.vol.commit,
            heartbeat: false,
        };
        self.land_append(st, i, d, tick, apply);
    }

    /// Whether a running follower applies what it learns is committed as it learns it
    /// (`apply_follower` with `Apply::Later`): it has entries other than the period's writes
    /// to apply.
    fn applies_now(&self, st: &Steady) -> bool {
        (0..st.n).any(|i| !st.slow[i] && self.applies_now_one(st, st.followers[i]))
    }

    /// Whether follower `f` applies what it learns is committed as it learns it (see
    /// `applies_now`).
    #[inline]
    fn applies_now_one(&self, st: &Steady, f: ServerId) -> bool {
        self.servers[f].vol.applied < st.plain_from - 1
    }

    /// Follower `f` applies what it has committed, with the clock at `t` — or later, if
    /// `apply` allows and everything it has to apply is the period's writes: the leader
    /// applied those already, so applying them checks them against the canonical log and
    /// counts them, the same whenever it runs (`apply_known`), and nothing reads what a
    /// follower applied before the period is settled for an observer or ends.
    fn apply_follower(&mut self, st: &Steady, f: ServerId, t: SimTime, apply: Apply) {
        let later = apply == Apply::Later && !self.applies_now_one(st, f);
        if !later {
            self.at(t, |w| w.apply_committed(f));
        }
    }

    /// Settles deaf follower `i`: its last contact is the latest elided tick's heartbeat
    /// delivered by now, or a write round's (set by the round). What those heartbeats teach it
    /// about the commit index it knew already (see `follower_deaf`), and its answers never
    /// reach the leader.
    fn settle_deaf(&mut self, st: &mut Steady, i: usize) {
        let now = self.now;
        let f = st.followers[i];
        let Some(km) = st.last_tick(now) else { return };
        let delivered = [Some(km), km.checked_sub(1)]
            .into_iter()
            .flatten()
            .filter(|&k| st.tick(k) > st.last_real)
            .map(|k| {
                st.tick(k)
                    .plus(Self::tick_lats(st, &self.tick_hash(st, k), f).0)
            })
            .find(|&d| d <= now);
        let contact = self.servers[f].vol.last_contact;
        if let Some(d) = delivered.filter(|&d| contact.is_none_or(|c| c < d)) {
            let hb = self.heartbeat_at_match(st.leader, f, self.servers[st.leader].vol.commit);
            self.land_append(st, i, d, hb, Apply::Later);
        }
    }

    /// Runs `f` with the clock set to `t` (when an elided or closed-form message lands: just
    /// before now when settling, just after it in a write round), then puts the clock back.
    /// What runs this way (applying entries, committing) schedules no event.
    fn at(&mut self, t: SimTime, f: impl FnOnce(&mut World)) {
        let now = self.now;
        let before = self.events_queued();
        self.now = t;
        f(self);
        self.now = now;
        debug_assert_eq!(
            before,
            self.events_queued(),
            "an event scheduled off the clock"
        );
    }

    /// Ends the steady period: settles, then hands back what is in flight and the timers.
    pub(crate) fn leave_steady(&mut self) {
        let Some(mut st) = self.steady.take() else {
            return;
        };
        self.settle(&mut st);
        self.materialize_tick(&mut st);
        self.lane_hand_back(&mut st);
        let k = st.next_tick(self.now);
        self.hand_back_timers(&st, k);
    }

    /// The messages of the last elided tick that are still in flight become real messages (on
    /// the event queue, or an episode's local queue); every earlier tick is over and counted.
    fn materialize_tick(&mut self, st: &mut Steady) {
        let now = self.now;
        let Some(km) = st.last_tick(now) else {
            return;
        };
        let l = st.leader;
        let (last, commit) = {
            let ls = &self.servers[l];
            (ls.disk.last_index(), ls.vol.commit)
        };
        let prev_term = self.servers[l].disk.term_at(last).unwrap_or(0);
        for k in st.counted..=km {
            let live = k == km && st.tick(k) > st.last_round;
            let tick = self.tick_hash(st, k);
            for i in 0..st.n {
                if st.slow[i] {
                    continue;
                }
                let f = st.followers[i];
                let (a, b) = Self::tick_lats(st, &tick, f);
                let d = st.tick(k).plus(a);
                let r = d.plus(b);
                if st.deaf[i] {
                    debug_assert!(live || d <= now, "an older tick still in flight");
                    self.hand_back_deaf_heartbeat(st, f, d);
                    continue;
                }
                debug_assert!(live || r <= now, "an older tick still in flight");
                let prev = (last, prev_term, commit);
                self.hand_back_tick_round(st, k, f, (d, r), prev);
            }
        }
        st.counted = st.counted.max(km + 1);
    }

    /// A deaf follower's heartbeat of a tick, arriving at `d`: an event if still in flight,
    /// else only counted. It goes at the matched index; its answer is dropped where it is
    /// sent.
    fn hand_back_deaf_heartbeat(&mut self, st: &Steady, f: ServerId, d: SimTime) {
        if d <= self.now {
            self.metrics.messages += 1;
            return;
        }
        let l = st.leader;
        // As `replicate` picks it: the matched index, or the snapshot's if the leader has
        // compacted it away.
        let ls = &self.servers[l];
        let snap = ls.disk.snapshot.as_ref().map_or(0, |x| x.index);
        let prev = [ls.vol.progress[f].matched, snap]
            .into_iter()
            .find_map(|i| ls.disk.term_at(i).map(|t| (i, t)));
        let Some((prev, prev_term)) = prev else {
            return;
        };
        let msg = Msg::Append {
            term: st.term,
            prev_index: prev,
            prev_term,
            entries: crate::raft::Entries::none(),
            commit: ls.vol.commit.min(prev),
            heartbeat: true,
        };
        self.push_msg_at(d, l, f, msg);
    }

    /// Follower `f`'s part of tick `k`'s round, its AppendEntries arriving at `d` and its
    /// answer at `r`: whichever is still in flight becomes an event (and the leader's link to
    /// it is busy until the RPC's slack), what has arrived is only counted. `prev` is the
    /// leader's last index, its term and the commit index the heartbeat carries.
    fn hand_back_tick_round(
        &mut self,
        st: &Steady,
        k: u64,
        f: ServerId,
        (d, r): (SimTime, SimTime),
        (last, prev_term, commit): (u64, u64, u64),
    ) {
        let (l, term, now) = (st.leader, st.term, self.now);
        if d > now {
            let msg = Msg::Append {
                term,
                prev_index: last,
                prev_term,
                entries: crate::raft::Entries::none(),
                commit,
                heartbeat: false,
            };
            self.push_msg_at(d, l, f, msg);
        } else if r > now {
            self.metrics.messages += 1;
            let msg = Msg::AppendResp {
                term,
                success: true,
                last_index: last,
                heartbeat: false,
            };
            self.push_msg_at(r, f, l, msg);
        } else {
            self.metrics.messages += 2;
            return;
        }
        let until = st.tick(k).plus(self.rpc_slack_ns());
        let pr = &mut self.servers[l].vol.progress[f];
        pr.inflight = true;
        pr.inflight_until = until;
    }

    /// Re-arms the elided timers where their schedules stand: the heartbeat at tick `k`, the
    /// lease check, and each follower timer after the renewals that fell in the period (each
    /// found contact fresh). A server whose role changed meanwhile has its own timers.
    fn hand_back_timers(&mut self, st: &Steady, k: u64) {
        let now = self.now;
        let (l, ls) = (st.leader, &self.servers[st.leader]);
        let lead = ls.proc == ProcessState::Running
            && ls.vol.role == Role::Leader
            && ls.vol.role_gen == st.leader_gen;
        if lead {
            self.timer(l, st.tick(k).since(now), TimerKind::Heartbeat);
            let j = if now >= st.lease0 {
                now.since(st.lease0) / st.lease_ns + 1
            } else {
                0
            };
            let next_lease = st.lease0.plus(j * st.lease_ns);
            self.timer(l, next_lease.since(now), TimerKind::Lease);
        }
        let ht = self.cfg.heartbeat_timeout_ns();
        for i in 0..st.n {
            let f = st.followers[i];
            let s = &self.servers[f];
            if s.proc != ProcessState::Running || s.vol.role_gen != st.gens[i] {
                continue;
            }
            let mut at = st.follower_timer[i];
            // Bounded: renewals are at least HT apart.
            while at <= now {
                at = at.plus(self.rng_timers.range(ht, 2 * ht));
            }
            self.timer(f, at.since(now), TimerKind::Follower);
        }
    }

    /// Runs an episode: what `start` sends, and everything it leads to, message by message
    /// with the ordinary handlers, on a local queue, with the elided heartbeat ticks that fall
    /// in it sent for real. It ends when the local queue is empty: the period goes on if the
    /// cluster is still steady. If the next message would reach the next queued event or the
    /// caller's horizon, or anything is scheduled on the event queue, the messages go to the
    /// event queue and the period ends.
    // Not inlined, like `write_round`: inlined into the event loop, the two bodies made it spill
    // its registers (the sim bench 2-3% slower).
    #[inline(never)]
    fn run_episode(&mut self, mut st: Box<Steady>, start: impl FnOnce(&mut World)) {
        self.settle(&mut st);
        self.episode = Some(std::mem::take(&mut self.episode_spare));
        self.materialize_tick(&mut st);
        let mut k = st.next_tick(self.now);
        let queued = self.events_queued();
        start(self);
        let mut steps = 0;
        let quiet = loop {
            let Some(local) = self.episode.as_ref() else {
                break false;
            };
            let Some(next) = local.front() else {
                break true;
            };
            let tick_at = st.tick(k);
            let at = tick_at.min(next.at);
            let head = self.next_event_at().unwrap_or(SimTime(u64::MAX));
            let disturbed = self.events_queued() != queued;
            if disturbed || at >= head || at > self.limit || steps >= EPISODE_STEPS_MAX {
                break false;
            }
            steps += 1;
            self.now = at;
            if tick_at <= at {
                // The leader's heartbeat timer (it comes first on a tie: it was queued first).
                self.broadcast(st.leader);
                k += 1;
            } else if let Some(m) = self.episode.as_mut().and_then(VecDeque::pop_front) {
                self.count_local_event(&m.msg);
                self.deliver_msg(m.from, m.to, m.msg);
            }
        };
        let mut local = self.episode.take().unwrap_or_default();
        if quiet && self.steady_holds(&st) {
            // Quiet: the local queue is empty; its allocation serves the next episode.
            self.episode_spare = local;
            st.last_round = self.now;
            st.last_real = self.now;
            st.counted = st.counted.max(k);
            self.steady = Some(st);
            return;
        }
        let mut rest: Vec<_> = local.drain(..).collect();
        self.episode_spare = local;
        rest.sort_by_key(|m| m.seq);
        for m in rest {
            self.push_msg_at(m.at, m.from, m.to, m.msg);
        }
        self.hand_back_timers(&st, k);
    }

    /// A workload write on the steady leader `l`, carried out in closed form if its round is
    /// isolated (see the module docs). False: nothing was done; leave and take the normal path.
    pub(crate) fn steady_write(&mut self, l: ServerId, id: u64) -> bool {
        let Some(mut st) = self.steady.take() else {
            return false;
        };
        // The exact check (tests): the world before the round, to run it again both ways. (Not
        // with a lane: the round would run the slow follower's messages with fresh draws.)
        let pre = (self.exact_check && st.lane.is_none()).then(|| exact::before_round(self, &st));
        if self.write_round(&mut st, l, id) {
            if let Some(pre) = pre {
                exact::check_round(&pre, l, id);
                self.exact_checked += 1;
            }
            self.steady = Some(st);
            return true;
        }
        if self.write_episode(&mut st, l, id) {
            self.steady = Some(st);
            return true;
        }
        if st.lane.is_some() {
            // An episode message by message has no lane: the period ends, and the write takes
            // the normal path.
            self.steady = Some(st);
            self.leave_steady();
            return false;
        }
        self.run_episode(st, |w| {
            w.append_local(l, EntryKind::Write(id));
            w.broadcast(l);
        });
        true
    }

    /// The closed-form write round of `steady_write`: true if it was carried out.
    // Not inlined: see `run_episode`.
    #[inline(never)]
    fn write_round(&mut self, st: &mut Steady, l: ServerId, id: u64) -> bool {
        debug_assert_eq!(st.leader, l);
        let now = self.now;
        self.lane_catch_up(st, now);
        // One division for both the last tick and the next (`next_tick`).
        let last_tick = st.last_tick(now);
        if !self.round_isolated(st, last_tick) {
            return false;
        }
        let idx = self.servers[l].disk.last_index() + 1;
        let mut answers = [u64::MAX; MAX_SERVERS];
        let longest = self.round_trips(st, idx, &mut answers);
        // And over before the next tick (by the draws: a round that reaches it is an episode,
        // carried out with the same draws by `write_episode`).
        let next_tick = st.tick(last_tick.map_or(0, |k| k + 1));
        if now.plus(longest) >= next_tick {
            return false;
        }
        // The leader is a voter (`steady_candidate`); the quorum needs `need` running
        // followers (down and deaf voters count in the quorum, never in the answers).
        let need = st.need;
        debug_assert!(
            need <= (0..st.n).filter(|&i| st.voter[i] && !st.deaf[i]).count(),
            "a steady period has a quorum of running voters"
        );
        let commit = self.servers[l].vol.commit;
        self.append_round(st, id, idx, commit);
        self.metrics.messages += st.round_messages;
        // The write's broadcast reaches the slow follower through its lane, with the commit
        // index before the round.
        self.lane_send_now(st);
        // The leader commits on the answer that completes a quorum (itself included): what
        // `advance_commit` does on that answer, as every answering voter matches `idx` then.
        if need > 0 {
            debug_assert!(self.servers[l].vol.commit < idx);
            self.servers[l].vol.commit = idx;
            let quorum_at = now.plus(nth_smallest(&answers[..st.n], need - 1));
            self.at(quorum_at, |w| w.apply_committed(l));
            if let Some(lane) = st.lane.as_mut() {
                lane.committed_later(quorum_at, commit);
            }
        }
        st.last_round = now;
        true
    }

    /// Whether a write round sent now is isolated: the last tick's round is over (answers at
    /// exactly now would come after us), and the round is over before the next queued event
    /// and the caller's horizon, whatever its latencies. That is decided on the longest round
    /// trip, not on the draws: a write that may meet them runs message by message, with fresh
    /// draws, and choosing that by the draws would keep the slow rounds out of the closed form
    /// (acknowledgements came 0.1 ms early on a 5–20 ms network; see `sim/tests/elision.rs`).
    #[inline(always)]
    fn round_isolated(&self, st: &Steady, last_tick: Option<u64>) -> bool {
        let now = self.now;
        let recent =
            |k: &u64| st.tick(*k) > st.last_round && now.since(st.tick(*k)) < 2 * st.lat_hi;
        if let Some(km) = last_tick.filter(recent) {
            let tick = self.tick_hash(st, km);
            // (A slow follower's tick messages are its lane's; its draws here only make the
            // test stricter.)
            for i in 0..st.n {
                let (a, b) = Self::tick_lats(st, &tick, st.followers[i]);
                if st.tick(km).plus(a + b) >= now {
                    return false;
                }
            }
        }
        let next_event = self.next_event_at().unwrap_or(SimTime(u64::MAX));
        let worst = now.plus(2 * st.lat_hi);
        worst < next_event && worst <= self.limit
    }

    /// The round trips of the write round at index `idx`: the longest, returned, and in
    /// `answers` the answering voters' (the others' never come: left as they are).
    #[inline(always)]
    fn round_trips(&self, st: &Steady, idx: u64, answers: &mut [u64; MAX_SERVERS]) -> u64 {
        let round = self.round_hash(st, idx);
        let mut longest = 0;
        // (A slow follower's round trip is its lane's; its draw here only makes the test
        // stricter.)
        for (i, answer) in answers[..st.n].iter_mut().enumerate() {
            let (a, b) = Self::steady_lats(st, &round, DRAW_WRITE, st.followers[i]);
            longest = longest.max(a + b);
            if st.answering[i] {
                *answer = a + b;
            }
        }
        longest
    }

    /// The leader's side of write `id` at `idx`: appended to its log, and the round added to
    /// `st.rounds` (the followers' side waits there), the commit index it carries `commit`.
    #[inline(always)]
    fn append_round(&mut self, st: &mut Steady, id: u64, idx: u64, commit: u64) {
        let l = st.leader;
        // A round that carries the same commit index as the one before (never seen: each
        // round commits one more) would not leave what the last round leaves, so the earlier
        // ones are carried out first.
        if st
            .rounds
            .is_some_and(|r| r.commit >= commit.min(idx) || r.first_id + (idx - r.from) != id)
        {
            self.flush_rounds(st);
        }
        if st.need > 0 {
            // `append_entry` without its `advance_commit`, which cannot commit on the
            // leader's own match when it needs followers for a quorum.
            let ls = &mut self.servers[l];
            ls.disk.log.push(Entry {
                term: st.term,
                kind: EntryKind::Write(id),
            });
            ls.vol.progress[l].matched = idx;
        } else {
            self.append_entry(l, EntryKind::Write(id));
        }
        debug_assert_eq!(self.servers[l].disk.last_index(), idx);
        st.rounds = Some(Rounds {
            from: st.rounds.map_or(idx, |r| r.from),
            first_id: st.rounds.map_or(id, |r| r.first_id),
            idx,
            sent: self.now,
            commit: commit.min(idx),
        });
    }

    /// Carries out the followers' side of the write rounds in `st.rounds` (see `Rounds`): the
    /// last round's AppendEntries, carrying every round's entry and the commit index the last
    /// round carries, lands on each follower through its node's rule (`land_append`), and the
    /// answer on the leader (`land_answer`), at the times the round's draws say. A deaf
    /// follower gets only the heartbeat at the matched index the broadcast sends it (its
    /// answer is lost on the way).
    fn flush_rounds(&mut self, st: &mut Steady) {
        let Some(r) = st.rounds.take() else {
            return;
        };
        let l = st.leader;
        let round = self.round_hash(st, r.idx);
        let prev = (
            r.from - 1,
            self.servers[l].disk.term_at(r.from - 1).unwrap_or(0),
        );
        for i in 0..st.n {
            if st.slow[i] {
                continue;
            }
            let f = st.followers[i];
            let (a, b) = Self::steady_lats(st, &round, DRAW_WRITE, f);
            let d = r.sent.plus(a);
            if st.deaf[i] {
                let hb = self.heartbeat_at_match(l, f, r.commit);
                self.land_append(st, i, d, hb, Apply::Later);
                continue;
            }
            debug_assert_eq!(self.servers[f].disk.last_index() + 1, r.from);
            let batch = Batch {
                prev,
                entries: Entries::Writes {
                    term: st.term,
                    first_id: r.first_id,
                    count: r.idx - r.from + 1,
                },
                commit: r.commit,
                heartbeat: false,
            };
            let answer = self.land_append(st, i, d, batch, Apply::Later);
            debug_assert_eq!(
                self.servers[f].disk.log.last(),
                self.servers[l].disk.entry(r.idx),
                "a round's entry as the leader holds it"
            );
            self.land_answer(l, f, d.plus(b), answer);
        }
    }

    /// The heartbeat leader `l` sends follower `f` while a batch to it is in flight: an empty
    /// AppendEntries at the matched index (`Disk::heartbeat_point`, as `RaftNode::replicate`),
    /// carrying the commit index `commit` (as of its sending) no higher than that.
    fn heartbeat_at_match(&self, l: ServerId, f: ServerId, commit: u64) -> Batch {
        let ls = &self.servers[l];
        let matched = ls.vol.progress[f].matched;
        // A deaf follower's matched entry is never compacted while the period holds
        // (`leave_steady_if_compaction_matters`).
        let prev = ls.disk.heartbeat_point(matched).unwrap_or((matched, 0));
        Batch {
            prev,
            entries: Entries::none(),
            commit: commit.min(prev.0),
            heartbeat: true,
        }
    }

    /// AppendEntries `batch` from the leader landing on follower `i` at `t`: the closed form
    /// decides when it lands, the node's rule (`RaftNode::append_entries`, the heart of
    /// `on_append`) what it does there. What the follower learns is committed it applies as
    /// `apply_follower` allows (its clock at `t`, or when settled). Returns its answer, which
    /// is not sent: the closed form decides when that lands too. Leaves the clock where it
    /// was.
    #[inline]
    fn land_append(
        &mut self,
        st: &mut Steady,
        i: usize,
        t: SimTime,
        batch: Batch,
        apply: Apply,
    ) -> Answer {
        let (l, f, term) = (st.leader, st.followers[i], st.term);
        let commit = self.servers[f].vol.commit;
        let answer = self.with_node(f, |n| land_on(n, (l, term), t, batch));
        let s = &self.servers[f];
        if s.vol.commit > commit {
            st.learned_at[i] = t;
        }
        if answer.1 && s.vol.commit.min(s.disk.last_index()) > s.vol.applied {
            self.apply_follower(st, f, st.learned_at[i], apply);
        }
        answer
    }

    /// Follower `f`'s answer to an AppendEntries landing on leader `l` at `t`: the leader's
    /// side of `World::on_append_resp` without its commit step, which the closed form took
    /// when the quorum's answers came (and which a slow follower's answer never takes, see
    /// `lane`). Leaves the clock where it was.
    fn land_answer(&mut self, l: ServerId, f: ServerId, t: SimTime, answer: Answer) {
        self.at(t, |w| {
            w.with_node(l, |n| {
                if let Some(ack) = n.on_append_resp(f, answer) {
                    n.after_ack(f, ack);
                }
            });
        });
    }

    /// The common episode in closed form: a write whose round meets the last tick's round
    /// still in flight, or reaches the next tick, with nothing else happening until it is
    /// over. It has the effects `run_episode` would have with the ordinary handlers, message
    /// for message (the latencies drawn from the stateless stream instead), and leaves the
    /// clock where the episode would end. Per running follower:
    /// - if the last tick's batch to it is in flight, the write's broadcast sends it only a
    ///   heartbeat at the matched index (contact, nothing new; its answer is ignored beside a
    ///   batch in flight), and the write goes out when the tick's answer arrives;
    /// - otherwise the write goes out at once;
    /// - a tick while the write is in flight sends a heartbeat at the matched index; a tick
    ///   after its answer sends an empty batch at the new index, which carries the commit
    ///   index; neither answer moves replication on.
    ///
    /// The leader commits when the answer that completes a quorum arrives; a follower learns
    /// the commit index from what each message carries when it lands, and applies then. A
    /// deaf follower gets heartbeats only; down peers get nothing that arrives, so the
    /// episode does not wait for those messages as the message-by-message one does (ticks it
    /// would send while they travel are elided ticks instead, with the same effects), and a
    /// stopped peer's refused link leaves the leader's `inflight_until` for it in the past
    /// either way (nothing reads it then). False, with nothing changed: the episode would reach
    /// the next queued event or the horizon (or needs no follower), and runs message by
    /// message instead.
    // Not inlined: see `run_episode`.
    #[inline(never)]
    fn write_episode(&mut self, st: &mut Steady, l: ServerId, id: u64) -> bool {
        // The lane first: it must not see the others' progress ahead of its time.
        let now = self.now;
        self.lane_catch_up(st, now);
        self.flush_rounds(st);
        // Filled in place: an array of lanes returned by value is copied out (memcpy).
        let mut lanes = [Lane::default(); MAX_SERVERS];
        let Some(ep) = self.plan_episode(st, l, &mut lanes) else {
            return false;
        };
        self.carry_out_episode(st, l, id, &ep, &lanes);
        self.closed_episodes += 1;
        true
    }

    /// `write_episode`'s messages and when they land; None if the episode would reach the
    /// next queued event or the horizon, or has no quorum to wait for (nothing changed).
    #[inline]
    fn plan_episode(
        &self,
        st: &Steady,
        l: ServerId,
        lanes: &mut [Lane; MAX_SERVERS],
    ) -> Option<Episode> {
        let idx = self.servers[l].disk.last_index() + 1;
        let commit0 = self.servers[l].vol.commit;
        if st.need == 0 || commit0 + 1 != idx {
            return None;
        }
        let (end, worst) = self.episode_lanes(st, idx, lanes);
        let (k0, k_end, end) = self.episode_ticks(st, end, worst)?;
        let committed = episode_quorum(st, lanes)?;
        Some(Episode {
            idx,
            commit0,
            committed,
            end,
            k0,
            k_end,
        })
    }

    /// Per follower (into `plan`): the tick's batch in flight (lands, answered), when the
    /// write goes out, lands and is answered, and the heartbeat beside the batch (lands,
    /// answered). Returns when the last of them is over (`end`), and the latest it could end whatever the
    /// write's draws (`worst`; see `write_round`): whether it runs message by message is
    /// decided on that.
    #[inline]
    fn episode_lanes(
        &self,
        st: &Steady,
        idx: u64,
        plan: &mut [Lane; MAX_SERVERS],
    ) -> (SimTime, SimTime) {
        let now = self.now;
        // The last tick, if its round may still be in flight (see `materialize_tick`).
        let km = st
            .last_tick(now)
            .filter(|&k| st.tick(k) > st.last_round)
            .map(|k| (st.tick(k), self.tick_hash(st, k)));
        let round = self.round_hash(st, idx);
        let mut end = now;
        let span = 2 * st.lat_hi;
        let mut worst = now.plus(span);
        for (i, lane) in plan.iter_mut().enumerate().take(st.n) {
            if st.slow[i] {
                continue;
            }
            let f = st.followers[i];
            let (a, b) = Self::steady_lats(st, &round, DRAW_WRITE, f);
            if st.deaf[i] {
                // The write's broadcast sends it a heartbeat; the tick's may still land.
                lane.lands = now.plus(a);
                lane.busy = km
                    .map(|(t, h)| (t.plus(Self::tick_lats(st, &h, f).0), SimTime::ZERO))
                    .filter(|&(d, _)| d > now);
                end = end.max(lane.lands).max(lane.busy.map_or(now, |x| x.0));
                worst = worst.max(lane.busy.map_or(now, |x| x.0));
                continue;
            }
            lane.busy = km
                .map(|(t, h)| {
                    let (a0, b0) = Self::tick_lats(st, &h, f);
                    (t.plus(a0), t.plus(a0 + b0))
                })
                .filter(|&(_, r)| r > now);
            lane.sent = lane.busy.map_or(now, |(_, r)| r);
            worst = worst.max(lane.sent.plus(span));
            lane.lands = lane.sent.plus(a);
            lane.answered = lane.lands.plus(b);
            end = end.max(lane.answered);
            if lane.busy.is_some() {
                let (h1, h2) = Self::steady_lats(st, &round, DRAW_BESIDE, f);
                lane.beside = Some((now.plus(h1), now.plus(h1 + h2)));
                end = end.max(now.plus(h1 + h2));
            }
        }
        (end, worst)
    }

    /// The ticks sent while the episode's messages are still on their way (a tick comes
    /// first on a tie; each round trip is shorter than the tick period, so there are a few):
    /// the first and one past the last, and when the episode ends with their messages.
    /// None if the episode could reach the next queued event or the horizon.
    #[inline]
    fn episode_ticks(
        &self,
        st: &Steady,
        end: SimTime,
        worst: SimTime,
    ) -> Option<(u64, u64, SimTime)> {
        let span = 2 * st.lat_hi;
        let k0 = st.next_tick(self.now);
        let (mut k, mut worst) = (k0, worst);
        while st.tick(k) <= worst && k < k0 + EPISODE_TICKS_MAX as u64 {
            worst = worst.max(st.tick(k).plus(span));
            k += 1;
        }
        let head = self.next_event_at().unwrap_or(SimTime(u64::MAX));
        if st.tick(k) <= worst || worst >= head || worst > self.limit {
            return None;
        }
        let (mut k_end, mut end) = (k0, end);
        while st.tick(k_end) <= end && k_end < k0 + EPISODE_TICKS_MAX as u64 {
            let (t, h) = (st.tick(k_end), self.tick_hash(st, k_end));
            for i in (0..st.n).filter(|&i| !st.slow[i]) {
                let (a, b) = Self::tick_lats(st, &h, st.followers[i]);
                end = end.max(t.plus(if st.deaf[i] { a } else { a + b }));
            }
            k_end += 1;
        }
        debug_assert!(
            end <= worst && st.tick(k_end) > end,
            "an episode past its bound"
        );
        Some((k0, k_end, end))
    }

    /// Carries out a planned episode: what `run_episode` does first, then the messages'
    /// effects on the leader and on each follower, and leaves the clock at its end.
    #[inline]
    fn carry_out_episode(
        &mut self,
        st: &mut Steady,
        l: ServerId,
        id: u64,
        ep: &Episode,
        lanes: &[Lane; MAX_SERVERS],
    ) {
        let now = self.now;
        // Settling lands what arrived by now. Every follower gets a later message in the
        // episode, which teaches it the commit index that one did or a higher one, and the
        // leader a later answer from it, which leave what settling leaves; so it is needed
        // only for what a follower applies when it learns it is committed, unless that waits
        // for the period's end anyway (`apply_follower`).
        if self.applies_now(st) {
            self.settle_as(st, Apply::Later);
        }
        if let Some(last) = st.last_tick(now) {
            // The earlier ticks' messages, counted as settling counts them.
            let from = st.counted.min(last + 1);
            self.metrics.messages += st.round_messages * (last + 1 - from);
            st.counted = st.counted.max(last + 1);
        }
        let ls = &mut self.servers[l];
        ls.disk.log.push(Entry {
            term: st.term,
            kind: EntryKind::Write(id),
        });
        ls.vol.progress[l].matched = ep.idx;
        // The write's broadcast reaches a slow follower through its lane, with the commit
        // index before the write; the leader commits when the quorum's answer arrives.
        self.lane_send_now(st);
        if let Some(lane) = st.lane.as_mut() {
            lane.committed_later(ep.committed, ep.commit0);
        }
        let ls = &mut self.servers[l];
        ls.vol.commit = ep.idx;
        self.at(ep.committed, |w| w.apply_committed(l));
        for (i, &lane) in lanes.iter().enumerate().take(st.n) {
            if !st.slow[i] {
                self.episode_follower(st, l, (i, lane), id, ep);
            }
        }
        st.counted = st.counted.max(ep.k_end);
        self.now = ep.end;
        st.last_round = ep.end;
        st.last_real = ep.end;
    }

    /// The episode's messages on follower `st.followers[i]`, through the nodes' rules: each
    /// lands on the follower through `append_entries`, in the order they land (`land_episode`:
    /// the write's batch stores the entry, each teaches the commit index it carries, which
    /// the follower applies as `apply_follower` allows), and their answers land on the leader
    /// through `RaftNode::on_append_resp`, in the order they arrive. What an answer makes the
    /// leader send next (`after_ack`: the write's batch when the tick's answer is back) is the
    /// closed form's to decide, as it decided when the write goes out; within the episode the
    /// leader's progress for the follower may pass through states the message-by-message
    /// episode does not (a heartbeat's answer before the write's is not ignored, as no batch
    /// is marked in flight), and ends where that one ends: matched at the write, contact at
    /// the last answer. A deaf follower's answers are lost on the way.
    #[inline]
    fn episode_follower(
        &mut self,
        st: &mut Steady,
        l: ServerId,
        (i, lane): (usize, Lane),
        id: u64,
        ep: &Episode,
    ) {
        let f = st.followers[i];
        let ticks = ep.k_end - ep.k0;
        let mut msgs = std::mem::take(&mut st.episode_msgs);
        let mut answers = std::mem::take(&mut st.episode_answers);
        msgs.clear();
        answers.clear();
        self.episode_messages(st, (i, &lane), ep, &mut msgs);
        // (Messages landing at the same time leave the same state in either order.)
        msgs.sort_unstable_by_key(|m| m.lands);
        self.land_episode(st, i, id, &msgs, &mut answers);
        answers.sort_unstable_by_key(|a| a.0);
        debug_assert!(
            self.servers[l].vol.transfer_to.is_none(),
            "a leadership transfer inside a steady period"
        );
        self.with_node(l, |n| {
            for &(t, answer) in answers.iter() {
                n.ctx.now = t;
                n.on_append_resp(f, answer);
            }
        });
        st.episode_msgs = msgs;
        st.episode_answers = answers;
        let beside = if lane.beside.is_some() { 2 } else { 0 };
        self.metrics.messages += if st.deaf[i] {
            1 + ticks
        } else {
            2 + beside + 2 * ticks
        };
    }

    /// Lands an episode's messages `msgs` (in the order they land) on follower `i`, through
    /// `RaftNode::append_entries`, and puts the answers that reach the leader into `answers`
    /// (when, what). One after the other through `land_append`; or, when what the follower
    /// learns is committed waits for the period's end anyway (`apply_follower`), all in one
    /// visit to the node, with its clock at each landing.
    fn land_episode(
        &mut self,
        st: &mut Steady,
        i: usize,
        id: u64,
        msgs: &[EpisodeMsg],
        answers: &mut Vec<(SimTime, Answer)>,
    ) {
        let (l, f, term) = (st.leader, st.followers[i], st.term);
        // The tick's batch that landed before the episode was answered at the follower's
        // last index then, the one before the write.
        let before = (term, true, self.servers[l].disk.last_index() - 1, false);
        let mut answer = |m: &EpisodeMsg, reply: Answer| {
            if let Some(r) = m.answered {
                answers.push((r, reply));
            }
        };
        if !self.applies_now_one(st, f) {
            let mut learned = None;
            self.with_node(f, |n| {
                for m in msgs {
                    let Some(t) = m.lands else {
                        answer(m, before);
                        continue;
                    };
                    let commit = n.vol.commit;
                    answer(m, land_on(n, (l, term), t, m.append.batch(term, id)));
                    if n.vol.commit > commit {
                        learned = Some(t);
                    }
                }
            });
            if let Some(t) = learned {
                st.learned_at[i] = t;
            }
        } else {
            for m in msgs {
                let reply = match m.lands {
                    Some(t) => self.land_append(st, i, t, m.append.batch(term, id), Apply::Later),
                    None => before,
                };
                answer(m, reply);
            }
        }
    }

    /// The AppendEntries leader `l` sends follower `f` in an episode (see `EpisodeSend`), its
    /// commit index `commit` when it sends it.
    fn episode_append(&self, l: ServerId, f: ServerId, send: EpisodeSend, commit: u64) -> Append {
        match send {
            EpisodeSend::AtMatch => {
                let hb = self.heartbeat_at_match(l, f, commit);
                Append {
                    prev: hb.prev,
                    write: false,
                    commit: hb.commit,
                    heartbeat: true,
                }
            }
            EpisodeSend::After { prev, write } => Append {
                prev: (prev, self.servers[l].disk.term_at(prev).unwrap_or(0)),
                write,
                commit,
                heartbeat: false,
            },
        }
    }

    /// The messages the leader sends follower `i` in an episode, into `msgs`: the tick's
    /// batch in flight, the heartbeat beside it, the write, and the ticks' (each with the
    /// commit index the leader has when it sends it).
    fn episode_messages(
        &self,
        st: &Steady,
        (i, lane): (usize, &Lane),
        ep: &Episode,
        msgs: &mut Vec<EpisodeMsg>,
    ) {
        let now = self.now;
        let (f, idx, deaf) = (st.followers[i], ep.idx, st.deaf[i]);
        // What a message sent at `t` carries as the leader's commit index.
        let commit_at = |t: SimTime| if t > ep.committed { idx } else { ep.commit0 };
        let answer = |r: SimTime| (!deaf).then_some(r);
        let mut push = |lands: Option<SimTime>, answered: Option<SimTime>, send, commit| {
            msgs.push(EpisodeMsg {
                lands,
                answered,
                append: self.episode_append(st.leader, f, send, commit),
            });
        };
        let after = |prev: u64, write: bool| EpisodeSend::After { prev, write };
        if deaf {
            // The write's broadcast sends it a heartbeat, as the tick did.
            push(Some(lane.lands), None, EpisodeSend::AtMatch, ep.commit0);
            if let Some((d, _)) = lane.busy {
                push(Some(d), None, EpisodeSend::AtMatch, ep.commit0);
            }
        } else {
            if let Some((d, r)) = lane.busy {
                // It may have landed already; its answer is still on the way.
                let lands = Some(d).filter(|&d| d > now);
                push(lands, Some(r), after(idx - 1, false), ep.commit0);
            }
            if let Some((d, r)) = lane.beside {
                push(Some(d), Some(r), EpisodeSend::AtMatch, ep.commit0);
            }
            let c = commit_at(lane.sent);
            push(
                Some(lane.lands),
                Some(lane.answered),
                after(idx - 1, true),
                c,
            );
        }
        for k in ep.k0..ep.k_end {
            let t = st.tick(k);
            let (a, b) = Self::tick_lats(st, &self.tick_hash(st, k), f);
            // While the write is in flight (or to a deaf follower): a heartbeat at the
            // matched index; after its answer, an empty batch at the new index.
            let send = if deaf || t <= lane.answered {
                EpisodeSend::AtMatch
            } else {
                after(idx, false)
            };
            push(Some(t.plus(a)), answer(t.plus(a + b)), send, commit_at(t));
        }
    }
}

/// One message of a closed-form episode to a follower (`World::episode_messages`).
#[derive(Debug, Clone, Copy)]
struct EpisodeMsg {
    /// When it lands; None if it landed before the episode (its answer is still on the way).
    lands: Option<SimTime>,
    /// When its answer reaches the leader; None if none does (a deaf follower's).
    answered: Option<SimTime>,
    /// What it carries.
    append: Append,
}

/// What an episode's message carries.
#[derive(Debug, Clone, Copy)]
enum EpisodeSend {
    /// A heartbeat at the matched index (`World::heartbeat_at_match`).
    AtMatch,
    /// An AppendEntries after index `prev`: the write, or no entry.
    After { prev: u64, write: bool },
}

/// An episode's AppendEntries, as `World::episode_append` describes it: a `Batch` whose
/// entries are the write or none.
#[derive(Debug, Clone, Copy)]
struct Append {
    prev: (u64, u64),
    write: bool,
    commit: u64,
    heartbeat: bool,
}

impl Append {
    /// Its entries: the write `id` of `term`, or none.
    fn entries(&self, term: u64, id: u64) -> Entries {
        if self.write {
            Entries::One(Entry {
                term,
                kind: EntryKind::Write(id),
            })
        } else {
            Entries::none()
        }
    }

    /// As a `Batch`.
    fn batch(&self, term: u64, id: u64) -> Batch {
        Batch {
            prev: self.prev,
            entries: self.entries(term, id),
            commit: self.commit,
            heartbeat: self.heartbeat,
        }
    }
}

/// AppendEntries `batch` from leader `l` of `term` landing on node `n` at `t`, through the
/// node's rule (`RaftNode::append_entries`, the heart of `on_append`). Returns the answer
/// (not sent: the closed form decides when it lands too).
#[inline(always)]
fn land_on(n: &mut RaftNode<'_>, (l, term): (ServerId, u64), t: SimTime, batch: Batch) -> Answer {
    debug_assert!(
        n.vol.last_contact <= Some(t),
        "a closed-form message lands before the last contact"
    );
    n.ctx.now = t;
    let Batch {
        prev,
        entries,
        commit: leader_commit,
        heartbeat,
    } = batch;
    let a = n.append_entries(l, term, prev, entries, leader_commit);
    debug_assert!(
        !a.wrote || n.disk_delay_ns == 0,
        "a steady follower's disk delays"
    );
    (n.disk.term, a.ok, a.last, heartbeat)
}

/// The time the answer that completes a quorum arrives (`need` running voters besides the
/// leader), if enough of them answer.
#[inline]
fn episode_quorum(st: &Steady, lanes: &[Lane; MAX_SERVERS]) -> Option<SimTime> {
    let mut first = [SimTime(u64::MAX); MAX_SERVERS];
    let mut voters = 0;
    for i in (0..st.n).filter(|&i| st.voter[i] && !st.deaf[i] && !st.slow[i]) {
        first[voters] = lanes[i].answered;
        voters += 1;
    }
    if voters < st.need {
        return None;
    }
    first[..voters].sort_unstable();
    Some(first[st.need - 1])
}

/// A closed-form episode planned by `plan_episode` (with its followers' `Lane`s), carried out
/// by `carry_out_episode`.
struct Episode {
    /// The write's index, and the leader's commit index before it.
    idx: u64,
    commit0: u64,
    /// When the answer that completes a quorum arrives, and when the episode is over.
    committed: SimTime,
    end: SimTime,
    /// The ticks sent while it runs: `k0..k_end`.
    k0: u64,
    k_end: u64,
}

/// The `k`-th smallest of `xs` (from 0), `k < xs.len()`, without data-dependent branches
/// (answer times are random: callgrind's branch simulation counted about two mispredicted
/// comparisons per write in an insertion sort). Keeps the `k + 1` smallest sorted, passing
/// each value down the line with a min and a max; the quorums of 3 and 5 servers (k = 0
/// and 1) take a shorter way.
#[inline]
fn nth_smallest(xs: &[u64], k: usize) -> u64 {
    if k == 0 {
        return xs.iter().copied().min().unwrap_or(u64::MAX);
    }
    if k == 1 {
        let (mut first, mut second) = (u64::MAX, u64::MAX);
        for &x in xs {
            second = second.min(first.max(x));
            first = first.min(x);
        }
        return second;
    }
    let mut low = [u64::MAX; MAX_SERVERS];
    for &x in xs {
        let mut x = x;
        for slot in &mut low[..=k] {
            let lo = (*slot).min(x);
            x = (*slot).max(x);
            *slot = lo;
        }
    }
    low[k]
}

/// One follower's messages in a closed-form episode (`write_episode`).
#[derive(Debug, Clone, Copy, Default)]
struct Lane {
    /// The last tick's batch still in flight: when it lands and when its answer arrives (to a
    /// deaf follower, a heartbeat: when it lands, and `SimTime::ZERO`, as no answer arrives).
    busy: Option<(SimTime, SimTime)>,
    /// When the write's batch goes out, lands (to a deaf follower: the heartbeat) and is
    /// answered.
    sent: SimTime,
    lands: SimTime,
    answered: SimTime,
    /// The heartbeat beside the tick's batch: lands, answered.
    beside: Option<(SimTime, SimTime)>,
}
