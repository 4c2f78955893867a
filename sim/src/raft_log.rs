//! `RaftLog`: a server's log entries, compacted from the front without moving the rest each
//! time.
//!
//! A snapshot drops the entries before TrailingLogs from the front of the log (`drop_front`).
//! With a plain `Vec` every snapshot moved the TrailingLogs entries kept (10,240 by default)
//! to the front again: a tenth of the instructions of a day-long run. Here the dropped
//! entries stay in place, dead, until a push finds the vector full; only then are they
//! removed, and the live entries moved once. The room is reserved up front (`World::new`:
//! SnapshotThreshold + TrailingLogs + 1,024 entries), so the memory a log takes stays bounded
//! by its capacity. With the default settings and 10 writes/s that halved the instructions
//! spent moving entries in a simulated day (167 → 80 million of 1.5 billion, `valgrind
//! --tool=cachegrind`); twice the room gave the same count.
//!
//! Everything else reads the live entries as a slice (`Deref`), so indexes and slices mean
//! what they meant with a `Vec` that held only them.

use crate::state::Entry;
use std::ops::{Deref, DerefMut};

/// A server's log entries from `Disk::start` on (see the module docs).
#[derive(Default)]
pub struct RaftLog {
    entries: Vec<Entry>,
    /// Entries at the front of `entries` that were compacted away.
    dead: usize,
}

impl RaftLog {
    /// An empty log with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        RaftLog {
            entries: Vec::with_capacity(n),
            dead: 0,
        }
    }

    /// Live entries. (This and `get` and `last` are the reads on the hot paths: written
    /// out so that they cost what `Vec`'s do, without slicing first.)
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len() - self.dead
    }

    /// Whether no entry is live.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th live entry.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&Entry> {
        self.entries.get(self.dead + i)
    }

    /// The last live entry.
    #[inline]
    pub fn last(&self) -> Option<&Entry> {
        if self.entries.len() > self.dead {
            self.entries.last()
        } else {
            None
        }
    }

    /// Appends an entry.
    #[inline]
    pub fn push(&mut self, e: Entry) {
        if self.entries.len() == self.entries.capacity() {
            self.make_room();
        }
        self.entries.push(e);
    }

    /// Appends entries (room made for as many as the iterator says it holds at least).
    pub fn extend(&mut self, es: impl Iterator<Item = Entry>) {
        let n = es.size_hint().0;
        if self.entries.len() + n > self.entries.capacity() {
            self.make_room();
        }
        self.entries.extend(es);
    }

    /// Keeps the first `keep` live entries.
    pub fn truncate(&mut self, keep: usize) {
        self.entries.truncate(self.dead + keep);
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.dead = 0;
    }

    /// Drops the first `n` live entries (compaction).
    pub fn drop_front(&mut self, n: usize) {
        debug_assert!(n <= self.len(), "compacting past the end of the log");
        self.dead += n.min(self.len());
        if self.dead == self.entries.len() {
            self.clear();
        }
    }

    /// Before appending to a vector without room: removes the dead entries, if any (the only
    /// time the live entries move); else the push grows the vector.
    #[cold]
    fn make_room(&mut self) {
        if self.dead > 0 {
            self.entries.drain(..self.dead);
            self.dead = 0;
        }
    }
}

impl From<Vec<Entry>> for RaftLog {
    fn from(entries: Vec<Entry>) -> Self {
        RaftLog { entries, dead: 0 }
    }
}

/// A clone holds the live entries only, with room for as many again and `LOG_ROOM` more:
/// the explorer's forks write on, and a fork whose writes outgrow its copy moves the whole log
/// again. With half the length again (as `Roomy`'s clone), moving forks' logs that way took
/// about 5 % of the explorer's instructions; the length again takes 2.1 % fewer in all
/// (`valgrind --tool=cachegrind --cache-sim=no rehearse explore plans/nomad-5-servers.toml
/// --faults 1 --seeds 1 --jobs 1`: 4,423 → 4,331 million) for a few thousand more page faults
/// per run; four times the length took 4.2 % fewer but faulted in 26 times as many pages.
/// A short log (a young cluster, a fork taken early) outgrew 256 entries more within the
/// run: 1,024 take 1.9 % fewer instructions on the same command (4,503 → 4,418 million; the
/// 3-server plan 1,842 → 1,816 million) with as many page faults and the same peak memory
/// (32 seeds: 6,400–21,000 minor faults and 21–24 MB both ways); 4,096 took 2.5 % fewer for
/// about three times the faults and 5 MB more.
impl Clone for RaftLog {
    fn clone(&self) -> Self {
        RaftLog {
            entries: crate::roomy::copy_with(self, self.len() + LOG_ROOM),
            dead: 0,
        }
    }
}

/// Room a clone of a log reserves beyond twice its length (entries).
const LOG_ROOM: usize = 1024;

impl Deref for RaftLog {
    type Target = [Entry];
    #[inline]
    fn deref(&self) -> &[Entry] {
        &self.entries[self.dead..]
    }
}

impl DerefMut for RaftLog {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Entry] {
        &mut self.entries[self.dead..]
    }
}

impl std::fmt::Debug for RaftLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EntryKind;

    fn write(id: u64) -> Entry {
        Entry {
            term: 1,
            kind: EntryKind::Write(id),
        }
    }

    fn ids(log: &RaftLog) -> Vec<u64> {
        log.iter()
            .map(|e| match e.kind {
                EntryKind::Write(id) => id,
                _ => unreachable!("only writes in these tests"),
            })
            .collect()
    }

    #[test]
    fn compacted_entries_are_gone_from_every_read() {
        let mut log = RaftLog::with_capacity(8);
        log.extend((0..6).map(write));
        log.drop_front(4);
        assert_eq!(ids(&log), [4, 5]);
        assert_eq!(log.len(), 2);
        assert_eq!(log.first(), Some(&write(4)));
        log.truncate(1);
        assert_eq!(ids(&log), [4]);
    }

    #[test]
    fn a_full_vector_drops_its_dead_entries_instead_of_growing() {
        let mut log = RaftLog::with_capacity(4);
        log.extend((0..4).map(write));
        let cap = log.entries.capacity();
        log.drop_front(3);
        log.push(write(4));
        log.push(write(5));
        assert_eq!(ids(&log), [3, 4, 5]);
        assert_eq!(log.dead, 0);
        assert_eq!(log.entries.capacity(), cap, "no reallocation");
    }

    #[test]
    fn compacting_everything_empties_the_vector() {
        let mut log = RaftLog::from((0..3).map(write).collect::<Vec<_>>());
        log.drop_front(3);
        assert!(log.is_empty());
        assert!(log.entries.is_empty());
        log.push(write(7));
        assert_eq!(ids(&log), [7]);
    }

    #[test]
    fn a_clone_holds_only_the_live_entries() {
        let mut log = RaftLog::with_capacity(16);
        log.extend((0..10).map(write));
        log.drop_front(6);
        let c = log.clone();
        assert_eq!(ids(&c), [6, 7, 8, 9]);
        assert_eq!(c.dead, 0);
        assert!(c.entries.capacity() >= 4 + 256);
    }
}
