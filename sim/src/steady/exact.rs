//! The exact check of the closed form (switched on by `World::set_exact_check`, for tests):
//! each closed-form write round is carried out a second time, on a copy of the world taken
//! before it, message by message through the Raft nodes' handlers (`run_episode`, the path the
//! round would otherwise take), with the latencies the closed form drew for it. At the end of
//! the round both copies are settled and every server's Raft state must be the same, field
//! for field; a difference panics with the field, the server and both values. Spans of a
//! steady period (`World::check_lane`, `World::check_quiet`) are run both ways too: the
//! period as it runs, and the same span message by message with the period's draws forced on
//! every message (`Mirror`).
//!
//! What is compared: term, vote, log (start, entries, snapshot index), role and its generation,
//! known leader, last contact, commit and applied indexes, the state machine's write count, the
//! configuration, and the leader's per-follower progress (next, match, batch in flight, contact,
//! snapshot in flight, and the time a batch in flight is awaited until while that is still
//! ahead: once it is past, the model never reads it — a stopped peer's refused link sets it to
//! the send time, which the closed form leaves as it was); and the workload's counters.

use super::{DRAW_WRITE, Steady};
use crate::raft::Msg;
use crate::rng::{StatelessPrefix, StatelessRng};
use crate::state::{EntryKind, Server, ServerId};
use crate::world::{MAX_SERVERS, World};
use rehearse_model::time::SimTime;

/// Latencies forced on messages instead of the network's sequential draws: those of one write
/// round run message by message (the exact check: the leader's AppendEntries to each follower,
/// and each follower's answer); a slow follower's messages inside a steady period (see
/// `lane`), drawn from the stateless stream of their send time; or, for the exact check of a
/// lane, every message of the period run message by message with the draws the period made.
// Always behind the network's `Box`, so the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum ForcedLats {
    Round {
        leader: ServerId,
        there: [u64; MAX_SERVERS],
        back: [u64; MAX_SERVERS],
    },
    Lane {
        stream: StatelessPrefix,
        lo: u64,
        hi: u64,
    },
    Mirror(Mirror),
}

/// The draws of a steady period with a lane, for its messages run one by one: a steady
/// follower's heartbeat at a tick or write round's batch, and its answer; the slow follower's
/// messages both ways.
#[derive(Debug, Clone)]
pub(crate) struct Mirror {
    leader: ServerId,
    /// The slow follower, if the period has a lane.
    slow: Option<ServerId>,
    /// Deaf followers (by server).
    deaf: [bool; MAX_SERVERS],
    term: u64,
    tick0: SimTime,
    hb_ns: u64,
    lo: u64,
    hi: u64,
    /// Per steady follower: the latency of its answer to the leader's last batch, and to its
    /// last heartbeat (a batch and a heartbeat beside it can be in flight together).
    back: [u64; MAX_SERVERS],
    back_hb: [u64; MAX_SERVERS],
}

impl ForcedLats {
    /// The latency of a message `msg` from `from` to `to` sent at `now`, the sender's log
    /// ending at `last`. In a round, peers outside the period (down) get theirs at once:
    /// nothing reaches them, so only the order of no-ops depends on it.
    pub(crate) fn latency(
        &mut self,
        from: ServerId,
        to: ServerId,
        (now, last): (SimTime, u64),
        msg: &Msg,
        streams: &StatelessRng,
    ) -> u64 {
        match self {
            ForcedLats::Round {
                leader,
                there,
                back,
            } => {
                if from == *leader {
                    there[to]
                } else {
                    back[from]
                }
            }
            ForcedLats::Lane { stream, lo, hi } => lane_latency(stream, *lo, *hi, from, to),
            ForcedLats::Mirror(m) => m.latency(from, to, (now, last), msg, streams),
        }
    }
}

/// A lane message's latency (see `lane`): keyed by sender and receiver in its send time's
/// stream.
fn lane_latency(stream: &StatelessPrefix, lo: u64, hi: u64, from: ServerId, to: ServerId) -> u64 {
    let who = super::DRAW_LANE << 56 | (from as u64) << 48 | (to as u64) << 40;
    stream.pair_at(lo, hi, who).0
}

impl Mirror {
    fn latency(
        &mut self,
        from: ServerId,
        to: ServerId,
        (now, last): (SimTime, u64),
        msg: &Msg,
        streams: &StatelessRng,
    ) -> u64 {
        let (l, lo, hi) = (self.leader, self.lo, self.hi);
        if self.slow.is_some_and(|s| from == s || to == s) {
            return lane_latency(&streams.prefix(self.term, now.0), lo, hi, from, to);
        }
        let heartbeat = matches!(
            msg,
            Msg::Append {
                heartbeat: true,
                ..
            }
        ) || matches!(
            msg,
            Msg::AppendResp {
                heartbeat: true,
                ..
            }
        );
        if from != l {
            return if heartbeat {
                self.back_hb[from]
            } else {
                self.back[from]
            };
        }
        // The leader's message to a steady follower: a tick's (at a tick's time), a write
        // round's batch (keyed by its last index), the heartbeat a write's broadcast sends
        // beside a batch in flight (keyed by the write's index), or the one it sends a deaf
        // follower (drawn as the write's batch: keyed by the write's index, the leader's last),
        // drawn as `steady_lats` draws them.
        let tick = now >= self.tick0 && now.since(self.tick0).is_multiple_of(self.hb_ns);
        let (draw, x) = match msg {
            _ if tick => (super::DRAW_TICK, now.0),
            Msg::Append { .. } if heartbeat && self.deaf[to] => (super::DRAW_WRITE, last),
            Msg::Append { prev_index, .. } if heartbeat => (super::DRAW_BESIDE, prev_index + 1),
            Msg::Append {
                prev_index,
                entries,
                ..
            } => (super::DRAW_WRITE, prev_index + entries.len() as u64),
            _ => (super::DRAW_WRITE, 0),
        };
        let who = draw << 56 | (l as u64) << 48 | (to as u64) << 40;
        let (a, b) = streams.prefix(self.term, x).pair_at(lo, hi, who);
        if heartbeat {
            self.back_hb[to] = b;
        } else {
            self.back[to] = b;
        }
        a
    }
}

/// What the exact check of a span of a steady period found (`World::check_lane`,
/// `World::check_quiet`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanCheck {
    /// No steady period of the kind asked for runs now.
    NotSteady,
    /// The period ended before the span was over, or ran a write message by message (with the
    /// network's own draws): nothing compared.
    Ended,
    /// The period and the same span message by message agree, field for field; `episodes`
    /// write episodes ran in closed form in the span.
    Same {
        /// Closed-form write episodes in the span.
        episodes: u64,
    },
    /// They differ: the field, the server and both values.
    Differs(String),
}

impl World {
    /// The exact check of a slow follower's lane (for tests): runs the steady period with a
    /// lane that holds now for `span_ns` (or until just before the tick that follows), and the
    /// same span message by message (the period ended now, its draws forced on every message),
    /// and compares every server's Raft state at the end. The end falls just before a
    /// heartbeat tick, when no steady follower's message is in flight.
    pub fn check_lane(&self, span_ns: u64) -> SpanCheck {
        self.check_span(span_ns, true)
    }

    /// The exact check of a quiet period without a lane (for tests): `check_lane` for a
    /// steady period whose followers are all in closed form — its heartbeat ticks, write
    /// rounds and closed-form episodes against the same span message by message.
    pub fn check_quiet(&self, span_ns: u64) -> SpanCheck {
        self.check_span(span_ns, false)
    }

    /// `check_lane` (`lane`) or `check_quiet`.
    fn check_span(&self, span_ns: u64, lane: bool) -> SpanCheck {
        let Some(st) = self.steady.as_ref().filter(|st| st.lane.is_some() == lane) else {
            return SpanCheck::NotSteady;
        };
        let k = st.next_tick(self.now.plus(span_ns));
        let end = SimTime(st.tick(k).0 - 1);
        let (entered, local_sent) = (self.steady_entered, self.episode_seq);
        let mirror = Mirror {
            leader: st.leader,
            slow: st.lane.as_ref().map(|l| l.f),
            deaf: std::array::from_fn(|id| (0..st.n).any(|i| st.followers[i] == id && st.deaf[i])),
            term: st.term,
            tick0: st.tick0,
            hb_ns: st.hb_ns,
            lo: st.lat_lo,
            hi: st.lat_hi,
            back: [0; MAX_SERVERS],
            back_hb: [0; MAX_SERVERS],
        };
        let mut closed = self.clone();
        closed.exact_check = false;
        closed.run_until(end);
        // Without a lane, the local queue carries only an episode run message by message.
        let stepped_episode = !lane && closed.episode_seq != local_sent;
        let same_period = closed.steady_entered == entered
            && closed
                .steady
                .as_ref()
                .is_some_and(|st| st.lane.is_some() == lane);
        if !same_period || stepped_episode {
            return SpanCheck::Ended;
        }
        let mut stepped = self.clone();
        stepped.exact_check = false;
        stepped.leave_steady();
        stepped.elision = false;
        stepped
            .net
            .force_latencies(Some(Box::new(ForcedLats::Mirror(mirror))));
        stepped.run_until(end);
        let what = if lane { "a lane" } else { "a quiet period" };
        match same_raft_state(&closed, &stepped) {
            Ok(()) => SpanCheck::Same {
                episodes: closed.closed_episodes - self.closed_episodes,
            },
            Err(diff) => SpanCheck::Differs(format!(
                "seed {}: {what} from {} ns to {} ns: {diff}",
                self.cfg.seed, self.now.0, end.0
            )),
        }
    }
}

/// The world just before a closed-form write round, and its steady period (`st`, taken out
/// of it), with the exact check off in the copy.
// Cold and boxed: the write path's stack frame stays small when the check is off.
#[cold]
#[inline(never)]
pub(super) fn before_round(w: &World, st: &Steady) -> Box<(World, Steady)> {
    let mut w = w.clone();
    w.exact_check = false;
    Box::new((w, st.clone()))
}

/// Checks the closed-form write round of write `id` on leader `l` that `pre` (from
/// `before_round`) carries out, against the same round message by message.
#[cold]
#[inline(never)]
pub(super) fn check_round(pre: &(World, Steady), l: ServerId, id: u64) {
    let (pre, st) = (&pre.0, &pre.1);
    let idx = pre.servers[l].disk.last_index() + 1;
    let round = pre.round_hash(st, idx);
    let (mut there, mut back) = ([0; MAX_SERVERS], [0; MAX_SERVERS]);
    let mut end = pre.now;
    for i in 0..st.n {
        let f = st.followers[i];
        let (a, b) = World::steady_lats(st, &round, DRAW_WRITE, f);
        (there[f], back[f]) = (a, b);
        end = end.max(pre.now.plus(if st.deaf[i] { a } else { a + b }));
    }
    let mut closed = pre.clone();
    let mut cst = Box::new(st.clone());
    assert!(
        closed.write_round(&mut cst, l, id),
        "the closed form chose the round, so it chooses it again"
    );
    closed.steady = Some(cst);
    let mut stepped = pre.clone();
    let lats = ForcedLats::Round {
        leader: l,
        there,
        back,
    };
    stepped.net.force_latencies(Some(Box::new(lats)));
    stepped.run_episode(Box::new(st.clone()), |w| {
        w.append_local(l, EntryKind::Write(id));
        w.broadcast(l);
    });
    stepped.net.force_latencies(None);
    for w in [&mut closed, &mut stepped] {
        w.run_until(end);
    }
    if let Err(diff) = same_raft_state(&closed, &stepped) {
        panic!(
            "seed {}: the closed-form write round of write {id} (index {idx}, leader s{}) at \
             {} ns differs from the same round message by message at {} ns: {diff}",
            pre.cfg.seed,
            l + 1,
            pre.now.0,
            end.0
        );
    }
}

/// Ok if every server's Raft state and the workload's counters agree; else what differs.
fn same_raft_state(a: &World, b: &World) -> Result<(), String> {
    if a.workload() != b.workload() {
        return Err(format!(
            "workload: closed form {:?}, message by message {:?}",
            a.workload(),
            b.workload()
        ));
    }
    for (i, (x, y)) in a.servers.iter().zip(&b.servers).enumerate() {
        let (fx, fy) = (fields(x, a.now), fields(y, b.now));
        for ((name, vx), (_, vy)) in fx.iter().zip(&fy) {
            if vx != vy {
                return Err(format!(
                    "s{} {name}: closed form {vx}, message by message {vy}",
                    i + 1
                ));
            }
        }
    }
    Ok(())
}

/// The compared fields of a server's Raft state, named, as text.
fn fields(s: &Server, now: SimTime) -> Vec<(&'static str, String)> {
    let (d, v) = (&s.disk, &s.vol);
    let progress: Vec<_> = v
        .progress
        .iter()
        .map(|p| {
            let awaited = (p.inflight && p.inflight_until > now).then_some(p.inflight_until);
            (
                p.next,
                p.matched,
                p.inflight,
                awaited,
                p.contact,
                p.snapshot_inflight,
            )
        })
        .collect();
    let snapshot = d.snapshot.as_ref().map(|x| (x.index, x.term));
    vec![
        ("term", format!("{}", d.term)),
        ("voted_for", format!("{:?}", d.voted_for)),
        ("log start", format!("{}", d.start)),
        ("log", format!("{:?}", &d.log[..])),
        ("snapshot", format!("{snapshot:?}")),
        ("role", format!("{:?} (generation {})", v.role, v.role_gen)),
        ("leader", format!("{:?}", v.leader)),
        ("last_contact", format!("{:?}", v.last_contact)),
        ("commit", format!("{}", v.commit)),
        ("applied", format!("{}", v.applied)),
        ("fsm_writes", format!("{}", v.fsm_writes)),
        (
            "configuration",
            format!("{} {:?}", v.config_index, v.config),
        ),
        ("transfer_to", format!("{:?}", v.transfer_to)),
        ("progress", format!("{progress:?}")),
    ]
}
