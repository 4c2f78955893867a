//! The simulated network between the servers: which links are cut (partitions), the latency
//! and loss of every link, and the random draws that decide each message's fate.
//!
//! Two sources of randomness, each its own stream of the run seed so neither shifts the other
//! or any other consumer: the sequential stream `net` draws the fate of every message sent
//! event by event (lost, or delivered after a latency), in send order; the stateless function
//! `net-steady` gives the latencies of the round trips a steady period does not simulate one
//! by one (see `steady`), the same value whenever it is asked for, in any order.
//!
//! Simplifications: one latency range and one loss probability for every link; a cut link
//! drops every message at once (real TCP would retry, then time out: the Raft nodes' RPC
//! timeouts stand for that).

use crate::config::NetConfig;
use crate::raft::Msg;
use crate::rng::{SimRng, StatelessPrefix, StatelessRng};
use crate::state::ServerId;
use crate::steady::ForcedLats;
use rehearse_model::time::SimTime;
use std::collections::BTreeSet;

/// The links between servers, their latency and loss, and the draws of messages' fates.
#[derive(Clone)]
pub(crate) struct Network {
    /// The latency range and loss probability now (faults change them).
    cfg: NetConfig,
    /// The fates of messages sent event by event, in send order.
    rng: SimRng,
    /// Cut links, each one way: `(a, b)` drops every message from `a` to `b`.
    blocked: BTreeSet<(ServerId, ServerId)>,
    /// Latencies of elided heartbeats and closed-form write rounds (see `steady`).
    steady: StatelessRng,
    /// Latencies that replace the sequential draws (the exact check's message-by-message run
    /// of a closed-form round, see `steady::exact`).
    forced: Option<Box<ForcedLats>>,
}

impl Network {
    /// The network of a run with seed `seed`, every link open, configured by `cfg`.
    pub fn new(seed: u64, cfg: NetConfig) -> Network {
        Network {
            cfg,
            rng: SimRng::child(seed, "net"),
            blocked: BTreeSet::new(),
            steady: StatelessRng::new(seed, "net-steady"),
            forced: None,
        }
    }

    /// The latency range and loss probability now.
    #[inline]
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The one-way latency range `[lo, hi)` every message's latency is drawn from (`hi` is
    /// above `lo` even when the configured range is a single value).
    #[inline]
    pub fn latency_range(&self) -> (u64, u64) {
        let (lo, hi) = (self.cfg.latency_ns_min, self.cfg.latency_ns_max);
        (lo, hi.max(lo + 1))
    }

    /// Whether a message from `a` can reach `b` now (no partition in that direction).
    #[inline]
    pub fn link_open(&self, a: ServerId, b: ServerId) -> bool {
        !self.blocked.contains(&(a, b))
    }

    /// Whether `a` and `b` reach each other both ways now.
    #[inline]
    pub fn reachable(&self, a: ServerId, b: ServerId) -> bool {
        self.blocked.is_empty() || self.link_open(a, b) && self.link_open(b, a)
    }

    /// Whether server `id` of `servers` is cut off from every other one, both ways (an
    /// isolating partition).
    pub fn isolated(&self, id: ServerId, servers: usize) -> bool {
        (0..servers)
            .filter(|&o| o != id)
            .all(|o| !self.link_open(id, o) && !self.link_open(o, id))
    }

    /// Whether every cut link either has a server `cut_off` says is cut off at one end or
    /// runs one way from a server to `leader` (a follower the leader cannot hear but still
    /// reaches): the cases a steady period handles (see `steady`).
    pub fn cut_only_around(&self, leader: ServerId, cut_off: impl Fn(ServerId) -> bool) -> bool {
        self.blocked
            .iter()
            .all(|&(a, b)| cut_off(a) || cut_off(b) || (b == leader && self.link_open(leader, a)))
    }

    /// The fate of a message from `from` to `to` sent now on an open link: `None` if it is
    /// lost, else its one-way latency. Draws from the sequential stream: the loss (only when
    /// the loss probability is above 0), then the latency (unless forced).
    /// `now`, `msg` and `sender_last` (the send time, the message and the sender's last log
    /// index, asked for only then) matter only to forced latencies that mirror a steady
    /// period's draws (`steady::exact`).
    #[inline]
    pub(crate) fn fate(
        &mut self,
        from: ServerId,
        to: ServerId,
        now: SimTime,
        msg: &Msg,
        sender_last: impl FnOnce() -> u64,
    ) -> Option<u64> {
        let loss = self.cfg.loss;
        if loss > 0.0 && self.rng.chance(loss) {
            return None;
        }
        Some(match self.forced.as_deref_mut() {
            None => {
                let (lo, hi) = self.latency_range();
                self.rng.range(lo, hi)
            }
            Some(f) => f.latency(from, to, (now, sender_last()), msg, &self.steady),
        })
    }

    /// The stateless stream of the steady period's round trip `x` (a tick's time or a write's
    /// index) in `term`: each follower's latencies are drawn from it.
    #[inline]
    pub fn steady_round(&self, term: u64, x: u64) -> StatelessPrefix {
        self.steady.prefix(term, x)
    }

    /// Draws latencies from `stream` (a slow follower's lane in a steady period, see
    /// `steady::lane`) until `force_latencies(None)`, keeping the forced slot's allocation.
    pub(crate) fn force_lane(&mut self, stream: crate::rng::StatelessPrefix) {
        let (lo, hi) = self.latency_range();
        match self.forced.as_deref_mut() {
            Some(ForcedLats::Lane { stream: s, .. }) => *s = stream,
            _ => self.forced = Some(Box::new(ForcedLats::Lane { stream, lo, hi })),
        }
    }

    /// Replaces the sequential latency draws by `lats` (or goes back to them with `None`).
    pub fn force_latencies(&mut self, lats: Option<Box<ForcedLats>>) {
        self.forced = lats;
    }

    /// Cuts every link between group `a` and group `b`, both ways.
    pub fn partition(&mut self, a: &[ServerId], b: &[ServerId]) {
        for &x in a {
            for &y in b {
                self.blocked.insert((x, y));
                self.blocked.insert((y, x));
            }
        }
    }

    /// Cuts the link from `from` to `to` only (a one-way partition).
    pub fn partition_oneway(&mut self, from: ServerId, to: ServerId) {
        self.blocked.insert((from, to));
    }

    /// Repairs every cut link.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Sets the loss probability of every link (clamped to [0, 1]).
    pub fn set_loss(&mut self, probability: f64) {
        self.cfg.loss = probability.clamp(0.0, 1.0);
    }

    /// Sets the one-way latency range (a maximum below the minimum is the minimum).
    pub fn set_latency(&mut self, min_ns: u64, max_ns: u64) {
        self.cfg.latency_ns_min = min_ns;
        self.cfg.latency_ns_max = max_ns.max(min_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::Network;
    use crate::config::NetConfig;
    use crate::raft::Msg;
    use crate::rng::SimRng;

    fn net(seed: u64, lo: u64, hi: u64, loss: f64) -> Network {
        let cfg = NetConfig {
            latency_ns_min: lo,
            latency_ns_max: hi,
            loss,
        };
        Network::new(seed, cfg)
    }

    fn fates(n: &mut Network, count: usize) -> Vec<Option<u64>> {
        let msg = Msg::TimeoutNow { term: 1 };
        (0..count)
            .map(|i| {
                n.fate(
                    i % 3,
                    (i + 1) % 3,
                    rehearse_model::time::SimTime::ZERO,
                    &msg,
                    || 0,
                )
            })
            .collect()
    }

    #[test]
    fn a_partition_cuts_both_ways_between_the_groups_only() {
        let mut n = net(1, 10, 20, 0.0);
        n.partition(&[0], &[1, 2]);
        for b in [1, 2] {
            assert!(!n.link_open(0, b) && !n.link_open(b, 0));
            assert!(!n.reachable(0, b) && !n.reachable(b, 0));
        }
        assert!(n.link_open(1, 2) && n.link_open(2, 1) && n.reachable(1, 2));
        assert!(n.isolated(0, 3));
        assert!(!n.isolated(1, 3) && !n.isolated(2, 3));
    }

    #[test]
    fn a_one_way_partition_cuts_one_direction() {
        let mut n = net(1, 10, 20, 0.0);
        n.partition_oneway(2, 0);
        assert!(!n.link_open(2, 0));
        assert!(n.link_open(0, 2));
        // Reachability is both ways: a one-way cut breaks it for either end.
        assert!(!n.reachable(2, 0) && !n.reachable(0, 2));
        assert!(n.reachable(0, 1) && n.reachable(1, 2));
        // Cut one way from every other server is not isolation.
        n.partition_oneway(1, 0);
        assert!(!n.isolated(0, 3));
    }

    #[test]
    fn heal_opens_every_link() {
        let mut n = net(1, 10, 20, 0.0);
        n.partition(&[0, 1], &[2, 3, 4]);
        n.partition_oneway(0, 1);
        n.heal();
        for a in 0..5 {
            for b in 0..5 {
                assert!(n.link_open(a, b) && n.reachable(a, b), "{a} -> {b}");
            }
            assert!(!n.isolated(a, 5));
        }
    }

    #[test]
    fn cut_links_around_the_leader_are_told_apart() {
        let mut n = net(1, 10, 20, 0.0);
        // s2 cannot reach the leader s0, which still reaches it: a steady period's case.
        n.partition_oneway(2, 0);
        assert!(n.cut_only_around(0, |_| false));
        // The leader cannot reach s2: not one.
        n.partition_oneway(0, 2);
        assert!(!n.cut_only_around(0, |_| false));
        // Unless s2 is cut off (the caller decides what counts as cut off).
        assert!(n.cut_only_around(0, |id| id == 2));
        n.heal();
        n.partition_oneway(1, 2);
        assert!(!n.cut_only_around(0, |_| false));
    }

    #[test]
    fn losses_are_drawn_from_the_seed_alone() {
        let mut a = net(7, 100, 200, 0.3);
        let mut b = net(7, 100, 200, 0.3);
        let xs = fates(&mut a, 10_000);
        assert_eq!(xs, fates(&mut b, 10_000));
        assert_ne!(xs, fates(&mut net(8, 100, 200, 0.3), 10_000));
        let lost = xs.iter().filter(|f| f.is_none()).count();
        assert!(
            (2_700..3_300).contains(&lost),
            "{lost} of 10000 lost at 0.3"
        );
        // No loss and full loss draw no fate by chance.
        assert!(
            fates(&mut net(7, 100, 200, 0.0), 1_000)
                .iter()
                .all(Option::is_some)
        );
        assert!(
            fates(&mut net(7, 100, 200, 1.0), 1_000)
                .iter()
                .all(Option::is_none)
        );
    }

    #[test]
    fn latencies_stay_within_the_range() {
        let mut n = net(3, 200_000, 2_000_000, 0.0);
        let xs: Vec<u64> = fates(&mut n, 10_000).into_iter().flatten().collect();
        assert_eq!(xs.len(), 10_000);
        assert!(xs.iter().all(|&x| (200_000..2_000_000).contains(&x)));
        // Spread over the range, not stuck at one end.
        assert!(xs.iter().any(|&x| x < 400_000) && xs.iter().any(|&x| x > 1_800_000));
        n.set_latency(5_000, 5_000);
        assert!(fates(&mut n, 100).iter().all(|&f| f == Some(5_000)));
        n.set_latency(9_000, 1_000);
        assert_eq!(n.latency_range(), (9_000, 9_001));
        n.set_loss(4.0);
        assert_eq!(n.config().loss, 1.0);
    }

    /// The fates come from the run's `net` stream in send order, one draw for the loss (only
    /// when there is loss) and one for the latency: the draws every trace hash depends on.
    #[test]
    fn fates_are_the_net_streams_draws_in_order() {
        let (lo, hi) = (1_000, 9_000);
        let mut n = net(11, lo, hi, 0.0);
        let mut raw = SimRng::child(11, "net");
        for f in fates(&mut n, 500) {
            assert_eq!(f, Some(raw.range(lo, hi)));
        }
        let mut n = net(11, lo, hi, 0.25);
        let mut raw = SimRng::child(11, "net");
        for f in fates(&mut n, 500) {
            let want = (!raw.chance(0.25)).then(|| raw.range(lo, hi));
            assert_eq!(f, want);
        }
    }

    #[test]
    fn steady_draws_are_stateless_and_in_range() {
        let mut n = net(5, 1_000, 3_000, 0.0);
        let before = n.steady_round(4, 1_234).pair_at(1_000, 3_000, 9);
        // Sequential draws in between do not move the stateless ones.
        fates(&mut n, 100);
        assert_eq!(n.steady_round(4, 1_234).pair_at(1_000, 3_000, 9), before);
        let other = net(6, 1_000, 3_000, 0.0).steady_round(4, 1_234);
        assert_ne!(other.pair_at(1_000, 3_000, 9), before);
        for x in 0..1_000 {
            let (a, b) = n.steady_round(4, x).pair_at(1_000, 3_000, x);
            assert!((1_000..3_000).contains(&a) && (1_000..3_000).contains(&b));
        }
    }
}
