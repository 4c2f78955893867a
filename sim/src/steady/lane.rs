//! A slow follower inside a steady period: its lane.
//!
//! A follower whose disk delays every write it stores (`World::set_disk_delay`) answers an
//! AppendEntries carrying entries only after the fsync, so its batches pipeline behind the
//! disk: one in flight at a time, each carrying what the leader appended while the one before
//! was on disk, with heartbeats at the matched index beside them. The rest of the cluster stays
//! steady, and while the others are a quorum without it, nothing the slow follower does
//! changes what they do. So a steady period keeps it as a *lane*: its messages run through
//! the ordinary handlers (`deliver_msg`, `replicate`, the node's `on_append` and
//! `on_append_resp`), on a queue of its own, with latencies drawn from the stateless stream of
//! each message's send time; the closed form decides only when the leader sends to it (every
//! heartbeat tick, every write) and when the lane catches up with the clock (before a write,
//! when the period is settled, when it ends). The lane's messages become ordinary events when
//! the period ends.
//!
//! Why the lane's handlers see the state they would see message by message:
//! - the leader's log at a lane message's time is its log then: the lane catches up before
//!   every write the period carries out, so nothing after the message is appended yet;
//! - the leader's commit index is the one thing the period writes ahead of time (a closed-form
//!   round or episode commits at once what its quorum acknowledges a round trip later): until
//!   that time, the lane's handlers see the commit index before the write (`commit_until`);
//! - the leader's progress for the others may be ahead of a lane message's time (an episode
//!   lands their answers at once), so the slow follower's answers skip the leader's commit
//!   step: they never move the commit index. An answer reports at most what the leader held when it sent
//!   the batch, at least a disk delay earlier, and the others acknowledged all of that within
//!   a round trip (the period requires the delay to be longer than the longest round trip, and
//!   a quorum without the slow follower); a debug assertion checks it.
//!
//! The exact check (`exact`, `World::check_lane`) runs spans of a lane again message by
//! message with the same draws and compares every server's Raft state.
//!
//! Not in a lane: a write that would run message by message (an episode the closed form does
//! not cover) ends the period instead, and so does a snapshot on the leader (compaction could
//! take the entries the slow follower still needs).

use super::Steady;
use crate::raft::Msg;
use crate::state::ServerId;
use crate::world::{LocalMsg, World};
use rehearse_model::time::SimTime;
use std::collections::VecDeque;

/// The lane of a steady period's slow follower.
#[derive(Debug, Clone)]
pub(super) struct SlowLane {
    /// The slow follower.
    pub(super) f: ServerId,
    /// Its messages in flight (to it and from it), in delivery order.
    q: VecDeque<LocalMsg>,
    /// The next heartbeat tick whose message to it is not sent yet.
    next_tick: u64,
    /// Until this time the leader's commit index was `commit_before` (a closed-form round
    /// commits at once what its quorum acknowledges later).
    commit_until: SimTime,
    commit_before: u64,
}

impl SlowLane {
    pub(super) fn new(f: ServerId) -> SlowLane {
        SlowLane {
            f,
            q: VecDeque::new(),
            next_tick: 0,
            commit_until: SimTime::ZERO,
            commit_before: 0,
        }
    }

    /// Takes over the slow follower's messages in flight (in delivery order).
    pub(super) fn adopt(&mut self, msgs: Vec<LocalMsg>) {
        self.q = msgs.into();
    }

    /// A closed-form round committed at once what its quorum acknowledges at `until`: the lane
    /// sees `before` until then.
    pub(super) fn committed_later(&mut self, until: SimTime, before: u64) {
        self.commit_until = until;
        self.commit_before = before;
    }
}

impl World {
    /// Runs the lane of `st` (if any) up to `t`: every heartbeat tick's message to the slow
    /// follower and every message in flight that lands by then, through the ordinary
    /// handlers. Leaves the clock where it was.
    #[inline]
    pub(super) fn lane_catch_up(&mut self, st: &mut Steady, t: SimTime) {
        if st.lane.is_some() {
            self.run_lane(st, t);
        }
    }

    /// `lane_catch_up` with a lane (out of line: most periods have none).
    #[inline(never)]
    fn run_lane(&mut self, st: &mut Steady, t: SimTime) {
        let Some(mut lane) = st.lane.take() else {
            return;
        };
        let now = self.now;
        let before = self.events_queued();
        self.open_lane(&mut lane);
        loop {
            let tick_at = st.tick(lane.next_tick);
            let msg_at = self.episode.as_ref().and_then(|q| q.front()).map(|m| m.at);
            let at = msg_at.map_or(tick_at, |m| m.min(tick_at));
            if at > t {
                break;
            }
            // The leader's heartbeat timer comes first on a tie: it was queued first.
            if tick_at <= at {
                lane.next_tick += 1;
                self.lane_step(st, &mut lane, at, None);
            } else if let Some(m) = self.episode.as_mut().and_then(VecDeque::pop_front) {
                self.lane_step(st, &mut lane, at, Some(m));
            }
        }
        self.close_lane(&mut lane);
        self.now = now;
        debug_assert_eq!(before, self.events_queued(), "a lane scheduled an event");
        st.lane = Some(lane);
    }

    /// The leader's send to the slow follower now (a write's broadcast), after `lane_catch_up`
    /// to now.
    #[inline]
    pub(super) fn lane_send_now(&mut self, st: &mut Steady) {
        if st.lane.is_some() {
            self.lane_send(st);
        }
    }

    /// `lane_send_now` with a lane.
    #[inline(never)]
    fn lane_send(&mut self, st: &mut Steady) {
        if let Some(mut lane) = st.lane.take() {
            let now = self.now;
            self.open_lane(&mut lane);
            self.lane_step(st, &mut lane, now, None);
            self.close_lane(&mut lane);
            self.now = now;
            st.lane = Some(lane);
        }
    }

    /// Before lane steps: the lane's queue becomes the local queue sends go to.
    fn open_lane(&mut self, lane: &mut SlowLane) {
        debug_assert!(self.episode.is_none(), "a lane inside an episode");
        self.episode = Some(std::mem::take(&mut lane.q));
    }

    /// After lane steps: the network's own draws again, and the queue back in the lane.
    fn close_lane(&mut self, lane: &mut SlowLane) {
        self.net.force_latencies(None);
        lane.q = self.episode.take().unwrap_or_default();
    }

    /// One lane step at `at` (between `open_lane` and `close_lane`): the leader's send to the
    /// slow follower (`m` None: a tick, or a write's broadcast), or the delivery of `m`. What
    /// it sends joins the lane's queue, with latencies from the stream of `at`.
    fn lane_step(&mut self, st: &Steady, lane: &mut SlowLane, at: SimTime, m: Option<LocalMsg>) {
        let l = st.leader;
        self.now = at;
        let commit = self.servers[l].vol.commit;
        if at < lane.commit_until {
            self.servers[l].vol.commit = lane.commit_before;
        }
        let seen = self.servers[l].vol.commit;
        let stream = self.net.steady_round(st.term, at.0);
        self.net.force_lane(stream);
        match m {
            None => {
                let peer = self.servers[l]
                    .vol
                    .config
                    .iter()
                    .copied()
                    .find(|p| p.id == lane.f);
                if let Some(p) = peer {
                    self.with_node(l, |n| n.replicate(p, true));
                }
            }
            Some(m) => {
                self.count_local_event(&m.msg);
                match m.msg {
                    Msg::AppendResp {
                        term,
                        success,
                        last_index,
                        heartbeat,
                    } if m.to == l => {
                        // The leader's side of `World::on_append_resp` without its commit
                        // step: the slow follower's answer never completes a quorum (see the
                        // module docs), and the others' progress as the leader holds it may be
                        // ahead of this time (an episode lands their answers at once).
                        debug_assert!(
                            !success || last_index <= seen,
                            "a slow follower's answer ({last_index}) would move the commit ({seen})"
                        );
                        self.metrics.messages += 1;
                        let resp = (term, success, last_index, heartbeat);
                        self.land_answer(l, m.from, at, resp);
                    }
                    msg => self.deliver_msg(m.from, m.to, msg),
                }
            }
        }
        debug_assert_eq!(
            self.servers[l].vol.commit, seen,
            "the lane moved the commit"
        );
        self.servers[l].vol.commit = commit;
    }

    /// Ends a lane (the period ends, at the current time, after `lane_catch_up` to it): its
    /// messages in flight become ordinary message events.
    pub(super) fn lane_hand_back(&mut self, st: &mut Steady) {
        if let Some(lane) = st.lane.take() {
            debug_assert_eq!(
                lane.next_tick,
                st.next_tick(self.now),
                "ticks the lane missed"
            );
            let mut rest: Vec<LocalMsg> = lane.q.into_iter().collect();
            rest.sort_by_key(|m| m.seq);
            for m in rest {
                self.push_msg_at(m.at, m.from, m.to, m.msg);
            }
        }
    }
}
