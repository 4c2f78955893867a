//! The leader's evaluation broker and blocked-evaluation tracker (hashicorp/nomad
//! `nomad/eval_broker.go`, `nomad/blocked_evals.go`).
//!
//! How Nomad does it: the broker exists on every server but is enabled only on the leader
//! (`establishLeadership` → `SetEnabled(true)`, `revokeLeadership` → `SetEnabled(false)`, which
//! flushes every queue). The new leader refills it from its state store (`restoreEvals`):
//! pending evaluations are enqueued, blocked ones go to the blocked tracker. `Enqueue` puts an
//! evaluation in the ready queue, unless another evaluation of the same job is ready or
//! unacknowledged: then it waits in the job's `blocked` list (one evaluation per job in flight).
//! `Dequeue` hands the oldest ready one to a worker with a token and arms a nack timer
//! (`EvalNackTimeout`, 60 s); `Ack` ends it and promotes the job's next blocked evaluation;
//! `Nack` (or the timer) requeues it, until it has been delivered `EvalDeliveryLimit` (3) times:
//! then it goes to the failed queue, which the leader reaps by marking it failed in Raft.
//! Evaluations the scheduler could not place for lack of capacity wait in the blocked tracker
//! until a node's capacity changes (`Unblock`), and then go back to the broker.
//!
//! Departures: a nack requeues at once (Nomad waits `InitialNackDelay` 1 s, then
//! `SubsequentNackDelay` 20 s); priorities are not modelled (one queue, oldest first);
//! the failed-eval follow-up evaluation Nomad creates after a delay is not modelled; the
//! tracker unblocks every blocked evaluation on any capacity change (Nomad matches node
//! classes).

use rehearse_model::api::BrokerStats;
use rehearse_model::time::SimTime;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// An evaluation ID (assigned by the FSM, in apply order).
pub type EvalId = u64;
/// A job's index in `SimConfig::jobs`.
pub type JobIdx = u32;

/// An evaluation handed to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The evaluation.
    pub eval: EvalId,
    /// Its job.
    pub job: JobIdx,
    /// The delivery's token (Nomad's `token`): an ack or nack must carry it.
    pub token: u64,
    /// When its nack timer fires.
    pub nack_at: SimTime,
}

/// What a nack did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NackOutcome {
    /// Back in the ready queue (or behind the job's next one).
    Requeued,
    /// Delivery limit reached: failed (the leader marks it failed in Raft).
    Failed,
    /// No such delivery (acked already, or a stale token).
    Unknown,
}

#[derive(Debug, Clone)]
struct Unacked {
    job: JobIdx,
    token: u64,
}

/// The broker and the blocked tracker of one leader.
#[derive(Debug, Clone, Default)]
pub struct Broker {
    enabled: bool,
    ready: VecDeque<(EvalId, JobIdx)>,
    unacked: BTreeMap<EvalId, Unacked>,
    /// Evaluations waiting behind the job's evaluation in flight, oldest first.
    blocked: BTreeMap<JobIdx, VecDeque<EvalId>>,
    /// Jobs with an evaluation ready or unacknowledged.
    in_flight: BTreeSet<JobIdx>,
    /// Deliveries so far, per evaluation still known to the broker.
    deliveries: BTreeMap<EvalId, u32>,
    /// The blocked-evals tracker: evaluations waiting for capacity.
    capacity: BTreeMap<EvalId, JobIdx>,
    failed: u64,
    next_token: u64,
}

impl Broker {
    /// Whether the broker runs (this server is the established leader).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `SetEnabled`: disabling flushes every queue and the failed count (a new leader
    /// counts afresh).
    pub fn set_enabled(&mut self, on: bool) {
        if !on {
            // Tokens keep counting: a stale nack timer never matches a new delivery.
            let next_token = self.next_token;
            *self = Broker {
                next_token,
                ..Broker::default()
            };
        }
        self.enabled = on;
    }

    /// `Enqueue`: ready, or behind the job's evaluation in flight. Ignored while disabled, and
    /// for an evaluation the broker already holds.
    pub fn enqueue(&mut self, eval: EvalId, job: JobIdx) {
        if !self.enabled || self.holds(eval) {
            return;
        }
        if self.in_flight.contains(&job) {
            self.blocked.entry(job).or_default().push_back(eval);
        } else {
            self.in_flight.insert(job);
            self.ready.push_back((eval, job));
        }
    }

    fn holds(&self, eval: EvalId) -> bool {
        self.unacked.contains_key(&eval)
            || self.capacity.contains_key(&eval)
            || self.ready.iter().any(|&(e, _)| e == eval)
            || self.blocked.values().any(|q| q.contains(&eval))
    }

    /// Whether an evaluation waits in the ready queue.
    pub fn has_ready(&self) -> bool {
        self.enabled && !self.ready.is_empty()
    }

    /// `Dequeue`: the oldest ready evaluation, now unacknowledged until `now + nack_timeout`.
    pub fn dequeue(&mut self, now: SimTime, nack_timeout_ns: u64) -> Option<Delivery> {
        if !self.enabled {
            return None;
        }
        let (eval, job) = self.ready.pop_front()?;
        self.next_token += 1;
        let token = self.next_token;
        *self.deliveries.entry(eval).or_default() += 1;
        self.unacked.insert(eval, Unacked { job, token });
        Some(Delivery {
            eval,
            job,
            token,
            nack_at: now.plus(nack_timeout_ns),
        })
    }

    /// Whether `eval` is unacknowledged under `token`.
    pub fn outstanding(&self, eval: EvalId, token: u64) -> bool {
        self.unacked.get(&eval).is_some_and(|u| u.token == token)
    }

    /// Whether `eval` is unacknowledged under any token.
    pub fn is_unacked(&self, eval: EvalId) -> bool {
        self.unacked.contains_key(&eval)
    }

    /// `Ack`: the evaluation is done; the job's next blocked evaluation becomes ready.
    /// False if it was not unacknowledged.
    pub fn ack(&mut self, eval: EvalId) -> bool {
        let Some(u) = self.unacked.remove(&eval) else {
            return false;
        };
        self.deliveries.remove(&eval);
        self.release(u.job);
        true
    }

    fn release(&mut self, job: JobIdx) {
        self.in_flight.remove(&job);
        let next = self.blocked.get_mut(&job).and_then(VecDeque::pop_front);
        if self.blocked.get(&job).is_some_and(VecDeque::is_empty) {
            self.blocked.remove(&job);
        }
        if let Some(e) = next {
            self.in_flight.insert(job);
            self.ready.push_back((e, job));
        }
    }

    /// `Nack` (or its timer) for the delivery `token` of `eval`: requeued, or failed once
    /// delivered `limit` times.
    pub fn nack(&mut self, eval: EvalId, token: u64, limit: u32) -> NackOutcome {
        if !self.outstanding(eval, token) {
            return NackOutcome::Unknown;
        }
        let Some(u) = self.unacked.remove(&eval) else {
            return NackOutcome::Unknown;
        };
        if self.deliveries.get(&eval).copied().unwrap_or(0) >= limit {
            self.deliveries.remove(&eval);
            self.failed += 1;
            self.release(u.job);
            return NackOutcome::Failed;
        }
        // Requeued at the front of its job: it is still the job's evaluation in flight.
        self.ready.push_back((eval, u.job));
        NackOutcome::Requeued
    }

    /// Ack of an evaluation whose scheduler found no capacity: it moves to the blocked tracker.
    pub fn block_for_capacity(&mut self, eval: EvalId, job: JobIdx) {
        if !self.enabled {
            return;
        }
        self.ack(eval);
        self.capacity.insert(eval, job);
    }

    /// `blockedEvals.Block` for an evaluation restored from state with status `blocked`.
    pub fn restore_blocked(&mut self, eval: EvalId, job: JobIdx) {
        if self.enabled && !self.holds(eval) {
            self.capacity.insert(eval, job);
        }
    }

    /// `Unblock`: capacity changed; every evaluation in the tracker goes back to the broker.
    /// Returns how many did.
    pub fn unblock_all(&mut self) -> usize {
        let waiting = std::mem::take(&mut self.capacity);
        let n = waiting.len();
        for (eval, job) in waiting {
            self.enqueue(eval, job);
        }
        n
    }

    /// Evaluations in the blocked tracker.
    pub fn capacity_blocked(&self) -> usize {
        self.capacity.len()
    }

    /// The counters `GET /v1/metrics` reports.
    pub fn stats(&self) -> BrokerStats {
        BrokerStats {
            ready: self.ready.len() as u64,
            unacked: self.unacked.len() as u64,
            blocked: self.blocked.values().map(|q| q.len() as u64).sum(),
            blocked_capacity: self.capacity.len() as u64,
            failed: self.failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehearse_model::time::SEC;

    fn on() -> Broker {
        let mut b = Broker::default();
        b.set_enabled(true);
        b
    }

    #[test]
    fn disabled_broker_holds_nothing_and_disabling_flushes() {
        let mut b = Broker::default();
        b.enqueue(1, 0);
        assert_eq!(b.stats().backlog(), 0);
        assert!(b.dequeue(SimTime::ZERO, SEC).is_none());
        let mut b = on();
        b.enqueue(1, 0);
        b.enqueue(2, 1);
        b.dequeue(SimTime::ZERO, SEC).unwrap();
        b.dequeue(SimTime::ZERO, SEC).unwrap();
        b.block_for_capacity(2, 1);
        assert_eq!(b.stats().backlog(), 2);
        b.set_enabled(false);
        assert_eq!(b.stats(), BrokerStats::default());
        assert!(!b.enabled());
    }

    #[test]
    fn one_evaluation_per_job_in_flight_the_rest_wait() {
        let mut b = on();
        b.enqueue(1, 7);
        b.enqueue(2, 7);
        b.enqueue(3, 8);
        let s = b.stats();
        assert_eq!((s.ready, s.blocked), (2, 1));
        let d1 = b.dequeue(SimTime::ZERO, SEC).unwrap();
        let d3 = b.dequeue(SimTime::ZERO, SEC).unwrap();
        assert_eq!((d1.eval, d3.eval), (1, 3));
        assert!(b.dequeue(SimTime::ZERO, SEC).is_none(), "2 waits behind 1");
        assert!(b.ack(1));
        let d2 = b.dequeue(SimTime::ZERO, SEC).unwrap();
        assert_eq!(d2.eval, 2);
        assert_eq!(b.stats().blocked, 0);
        assert!(!b.ack(1), "acked twice");
    }

    #[test]
    fn nack_requeues_until_the_delivery_limit_then_fails() {
        let mut b = on();
        b.enqueue(5, 0);
        b.enqueue(6, 0);
        for round in 1..=3 {
            let d = b.dequeue(SimTime(round), 60 * SEC).unwrap();
            assert_eq!(d.eval, 5);
            assert_eq!(d.nack_at, SimTime(round).plus(60 * SEC));
            let want = if round < 3 {
                NackOutcome::Requeued
            } else {
                NackOutcome::Failed
            };
            assert_eq!(b.nack(5, d.token, 3), want, "round {round}");
            assert_eq!(b.nack(5, d.token, 3), NackOutcome::Unknown, "stale token");
        }
        assert_eq!(b.stats().failed, 1);
        // The failed one released its job: the next one runs.
        assert_eq!(b.dequeue(SimTime::ZERO, SEC).unwrap().eval, 6);
    }

    #[test]
    fn capacity_blocked_evaluations_return_on_unblock() {
        let mut b = on();
        b.enqueue(1, 0);
        let d = b.dequeue(SimTime::ZERO, SEC).unwrap();
        b.block_for_capacity(d.eval, d.job);
        let s = b.stats();
        assert_eq!((s.ready, s.unacked, s.blocked_capacity), (0, 0, 1));
        assert_eq!(b.unblock_all(), 1);
        assert_eq!(b.stats().ready, 1);
        // Restored from state after a leader change.
        let mut b = on();
        b.restore_blocked(9, 2);
        b.restore_blocked(9, 2);
        assert_eq!(b.stats().blocked_capacity, 1);
    }
}
