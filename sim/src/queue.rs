//! The event queue: a binary heap over (time, sequence) keys packed into one `u128` (time in
//! the high half), so that ordering two events is one comparison. Keys are unique (the
//! sequence number grows with every push), so the order is total.

use crate::time::SimTime;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A queued key and its event's slot in the slab (the heap moves keys, not events).
type Item = (u128, u32);

#[derive(Debug, Clone, Default)]
pub(crate) struct EventQueue {
    heap: BinaryHeap<Reverse<Item>>,
}

fn key(at: SimTime, seq: u64) -> u128 {
    u128::from(at.0) << 64 | u128::from(seq)
}

fn split(k: u128) -> (SimTime, u64) {
    (SimTime((k >> 64) as u64), k as u64)
}

impl EventQueue {
    /// Queues the event in `slot` at (`at`, `seq`).
    pub(crate) fn push(&mut self, at: SimTime, seq: u64, slot: u32) {
        self.heap.push(Reverse((key(at, seq), slot)));
    }

    /// The earliest (time, sequence) queued.
    pub(crate) fn peek(&self) -> Option<(SimTime, u64)> {
        self.heap.peek().map(|Reverse((k, _))| split(*k))
    }

    /// Removes the earliest event: its time, sequence and slot.
    pub(crate) fn pop(&mut self) -> Option<(SimTime, u64, u32)> {
        let Reverse((k, slot)) = self.heap.pop()?;
        let (at, seq) = split(k);
        Some((at, seq, slot))
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
