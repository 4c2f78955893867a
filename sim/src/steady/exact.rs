//! The exact check of the closed form (switched on by `World::set_exact_check`, for tests):
//! each closed-form write round is carried out a second time, on a copy of the world taken
//! before it, message by message through the Raft nodes' handlers (`run_episode`, the path the
//! round would otherwise take), with the latencies the closed form drew for it. At the end of
//! the round both copies are settled and every server's Raft state must be the same, field
//! for field; a difference panics with the field, the server and both values.
//!
//! What is compared: term, vote, log (start, entries, snapshot index), role and its generation,
//! known leader, last contact, commit and applied indexes, the state machine's write count, the
//! configuration, and the leader's per-follower progress (next, match, batch in flight, contact,
//! snapshot in flight, and the time a batch in flight is awaited until while that is still
//! ahead: once it is past, the model never reads it — a stopped peer's refused link sets it to
//! the send time, which the closed form leaves as it was); and the workload's counters.

use super::{DRAW_WRITE, Steady};
use crate::state::{EntryKind, Server, ServerId};
use crate::world::{MAX_SERVERS, World};
use rehearse_model::time::SimTime;

/// Latencies forced on the messages of one write round run message by message: the leader's
/// AppendEntries to each follower, and each follower's answer.
#[derive(Debug, Clone)]
pub(crate) struct ForcedLats {
    leader: ServerId,
    there: [u64; MAX_SERVERS],
    back: [u64; MAX_SERVERS],
}

impl ForcedLats {
    /// The latency of a message from `from` to `to`. Peers outside the period (down) get
    /// theirs at once: nothing reaches them, so only the order of no-ops depends on it.
    pub(crate) fn latency(&self, from: ServerId, to: ServerId) -> u64 {
        if from == self.leader {
            self.there[to]
        } else {
            self.back[from]
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
    let mut lats = ForcedLats {
        leader: l,
        there: [0; MAX_SERVERS],
        back: [0; MAX_SERVERS],
    };
    let mut end = pre.now;
    for i in 0..st.n {
        let f = st.followers[i];
        let (a, b) = World::steady_lats(st, &round, DRAW_WRITE, f);
        (lats.there[f], lats.back[f]) = (a, b);
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
