//! The event queue: a binary heap of `u128` keys, each (time, sequence, slot) packed so that
//! ordering two events is one comparison: the time in the high 64 bits, then the sequence
//! number, then the event's slot in the slab (the heap moves 16-byte keys, not events). Keys
//! are unique (the sequence number grows with every push), so the order is total, and it is
//! (time, sequence) order: the slot only breaks no ties.

use rehearse_model::time::SimTime;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Bits of a key holding the slot: slots stay below the queue's bound (`QUEUE_MAX`, 10^6).
const SLOT_BITS: u32 = 20;
/// Bits of a key holding the sequence number: 2^44 pushes, years of simulating.
const SEQ_BITS: u32 = 64 - SLOT_BITS;

#[derive(Debug, Clone, Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Reverse<u128>>,
}

fn key(at: SimTime, seq: u64, slot: u32) -> u128 {
    assert!(
        seq < 1 << SEQ_BITS && slot < 1 << SLOT_BITS,
        "event sequence or slot out of range"
    );
    u128::from(at.0) << 64 | u128::from(seq << SLOT_BITS | u64::from(slot))
}

fn split(k: u128) -> (SimTime, u64, u32) {
    let low = k as u64;
    (
        SimTime((k >> 64) as u64),
        low >> SLOT_BITS,
        (low & ((1 << SLOT_BITS) - 1)) as u32,
    )
}

impl EventQueue {
    /// Queues the event in `slot` at (`at`, `seq`).
    pub(crate) fn push(&mut self, at: SimTime, seq: u64, slot: u32) {
        self.heap.push(Reverse(key(at, seq, slot)));
    }

    /// The earliest (time, sequence) queued.
    pub(crate) fn peek(&self) -> Option<(SimTime, u64)> {
        self.heap.peek().map(|Reverse(k)| {
            let (at, seq, _) = split(*k);
            (at, seq)
        })
    }

    /// Removes the earliest event: its time, sequence and slot.
    pub(crate) fn pop(&mut self) -> Option<(SimTime, u64, u32)> {
        self.heap.pop().map(|Reverse(k)| split(k))
    }

    /// Keeps only the events for which `keep(time, sequence, slot)` holds.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(SimTime, u64, u32) -> bool) {
        self.heap.retain(|Reverse(k)| {
            let (at, seq, slot) = split(*k);
            keep(at, seq, slot)
        });
    }

    /// Events queued.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_sequence_order() {
        let mut q = EventQueue::default();
        let items = [(5, 1), (3, 2), (5, 3), (3, 4), (u64::MAX, 5), (0, 6)];
        for (slot, &(t, s)) in items.iter().enumerate() {
            q.push(SimTime(t), s, slot as u32);
        }
        let mut want: Vec<(u64, u64)> = items.to_vec();
        want.sort_unstable();
        for (t, s) in want {
            assert_eq!(q.peek(), Some((SimTime(t), s)));
            let (at, seq, _) = q.pop().unwrap();
            assert_eq!((at.0, seq), (t, s));
        }
        assert_eq!((q.pop(), q.len()), (None, 0));
    }
}
