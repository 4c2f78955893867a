//! `RaftLog`: a server's log entries in shared chunks, so that copying a world is cheap.
//!
//! The explorer forks a world at every step boundary and runs each fork on: thousands of
//! forks per plan, each holding five logs of a few thousand entries. As one `Vec`, every fork
//! copied every entry, and the fork's writes then outgrew the copy and moved it all again
//! (`realloc`): about a tenth of the explorer's instructions. Here the entries live in chunks
//! of `CHUNK`: full chunks are frozen and shared (`Arc`) between a world and its forks; only
//! the last, growing chunk (the *tail*, at most `CHUNK - 1` entries, with room for a whole
//! chunk reserved up front, so it never reallocates) is the log's own. A clone copies the
//! tail and counts references to the rest; a fork that truncates into a frozen chunk copies
//! that one chunk into its tail.
//!
//! Compaction (a snapshot drops the entries before TrailingLogs from the front) moves nothing:
//! the dropped entries are skipped (`head`), and a chunk is released once all its entries
//! are. Reads are by index (`get`, `last`, `Index`) or by range (`range`, `iter`), never as one
//! slice: the entries are not contiguous.

use crate::state::Entry;
use std::ops::Index;
use std::sync::Arc;

/// Entries per chunk (8 KiB of 32-byte entries).
const CHUNK: usize = 256;

/// A server's log entries from `Disk::start` on (see the module docs).
pub struct RaftLog {
    /// Full chunks, oldest first. (Boxed inside the `Arc`: freezing the tail moves its
    /// buffer in, where `Arc<[Entry; CHUNK]>` would copy it.)
    #[allow(clippy::redundant_allocation)]
    frozen: Vec<Arc<Box<[Entry; CHUNK]>>>,
    /// The entries after the frozen chunks (fewer than `CHUNK`).
    tail: Vec<Entry>,
    /// Entries at the front of the first chunk (or of the tail, with no chunk) that were
    /// compacted away.
    head: usize,
}

impl Default for RaftLog {
    fn default() -> Self {
        RaftLog {
            frozen: Vec::new(),
            tail: Vec::with_capacity(CHUNK),
            head: 0,
        }
    }
}

impl RaftLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Entries stored, dead ones included.
    #[inline]
    fn stored(&self) -> usize {
        self.frozen.len() * CHUNK + self.tail.len()
    }

    /// Live entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.stored() - self.head
    }

    /// Whether no entry is live.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th live entry.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&Entry> {
        let at = self.head + i;
        let tail_from = self.frozen.len() * CHUNK;
        if at >= tail_from {
            // The usual read: a recent entry.
            self.tail.get(at - tail_from)
        } else {
            Some(&self.frozen[at / CHUNK][at % CHUNK])
        }
    }

    /// The first live entry.
    pub fn first(&self) -> Option<&Entry> {
        self.get(0)
    }

    /// The last live entry.
    #[inline]
    pub fn last(&self) -> Option<&Entry> {
        if self.is_empty() {
            None
        } else if let Some(e) = self.tail.last() {
            Some(e)
        } else {
            self.frozen.last().map(|c| &c[CHUNK - 1])
        }
    }

    /// The `i`th live entry, to change (a frozen chunk another world shares is copied first).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Entry> {
        if i >= self.len() {
            return None;
        }
        let at = self.head + i;
        let c = at / CHUNK;
        if c < self.frozen.len() {
            Some(&mut Arc::make_mut(&mut self.frozen[c])[at % CHUNK])
        } else {
            self.tail.get_mut(at - self.frozen.len() * CHUNK)
        }
    }

    /// Appends an entry.
    #[inline]
    pub fn push(&mut self, e: Entry) {
        self.tail.push(e);
        if self.tail.len() == CHUNK {
            self.freeze_tail();
        }
    }

    /// Appends entries.
    pub fn extend(&mut self, mut es: impl Iterator<Item = Entry>) {
        if self.tail.len() + es.size_hint().1.unwrap_or(CHUNK) < CHUNK {
            // All of them fit in the tail without filling it (the usual case).
            self.tail.extend(es);
            return;
        }
        loop {
            let room = CHUNK - self.tail.len();
            self.tail.extend(es.by_ref().take(room));
            if self.tail.len() < CHUNK {
                return;
            }
            self.freeze_tail();
        }
    }

    /// The full tail becomes a frozen chunk; a new, empty tail with room for a chunk.
    #[cold]
    fn freeze_tail(&mut self) {
        let full = std::mem::replace(&mut self.tail, Vec::with_capacity(CHUNK));
        let Ok(chunk) = <Box<[Entry; CHUNK]>>::try_from(full.into_boxed_slice()) else {
            unreachable!("the tail is frozen when it holds a whole chunk");
        };
        self.frozen.push(Arc::new(chunk));
    }

    /// Keeps the first `keep` live entries.
    pub fn truncate(&mut self, keep: usize) {
        if keep >= self.len() {
            return;
        }
        let at = self.head + keep;
        let c = at / CHUNK;
        if c < self.frozen.len() {
            // The cut falls in a frozen chunk: what is kept of it becomes the tail.
            let mut tail = Vec::with_capacity(CHUNK);
            tail.extend_from_slice(&self.frozen[c][..at % CHUNK]);
            self.frozen.truncate(c);
            self.tail = tail;
        } else {
            self.tail.truncate(at - self.frozen.len() * CHUNK);
        }
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.frozen.clear();
        self.tail.clear();
        self.head = 0;
    }

    /// Drops the first `n` live entries (compaction).
    pub fn drop_front(&mut self, n: usize) {
        debug_assert!(n <= self.len(), "compacting past the end of the log");
        self.head += n.min(self.len());
        if self.head == self.stored() {
            self.clear();
            return;
        }
        // Chunks wholly compacted away are released.
        let gone = (self.head / CHUNK).min(self.frozen.len());
        if gone > 0 {
            self.frozen.drain(..gone);
            self.head -= gone * CHUNK;
        }
    }

    /// The live entries `a..b` (indexes as `get`'s, `a <= b <= len()`) as the slices of the
    /// chunks they lie in, none empty: the loops over many entries go a slice at a time.
    pub fn slices(&self, a: usize, b: usize) -> Slices<'_> {
        debug_assert!(a <= b && b <= self.len(), "range out of the log");
        Slices {
            log: self,
            at: self.head + a,
            end: self.head + b,
        }
    }

    /// The stored chunk `c` (a frozen one, or the tail after them).
    #[inline]
    fn chunk(&self, c: usize) -> &[Entry] {
        match self.frozen.get(c) {
            Some(f) => &f[..],
            None => &self.tail,
        }
    }

    /// The index (as `get`'s) of the last of the live entries `a..b` that satisfies `p`.
    pub fn rposition(&self, a: usize, b: usize, p: impl Fn(&Entry) -> bool) -> Option<usize> {
        let b = b.min(self.len());
        let (lo, mut end) = (self.head + a.min(b), self.head + b);
        while end > lo {
            let c = (end - 1) / CHUNK;
            let chunk = self.chunk(c);
            let (base, from) = (c * CHUNK, (c * CHUNK).max(lo));
            if let Some(k) = chunk[from - base..end - base].iter().rposition(&p) {
                return Some(from + k - self.head);
            }
            end = from;
        }
        None
    }

    /// Whether any live entry satisfies `p`.
    pub fn any(&self, p: impl Fn(&Entry) -> bool) -> bool {
        self.slices(0, self.len()).any(|c| c.iter().any(&p))
    }

    /// The live entries `a..b` (indexes as `get`'s), or None if the log does not hold them.
    pub fn range(&self, a: usize, b: usize) -> Option<impl Iterator<Item = &Entry> + Clone> {
        (a <= b && b <= self.len()).then(|| self.slices(a, b).flatten())
    }

    /// Every live entry, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> + Clone {
        self.slices(0, self.len()).flatten()
    }

    /// Copies of the live entries `a..b` (indexes as `get`'s; clamped to the log).
    pub fn to_vec(&self, a: usize, b: usize) -> Vec<Entry> {
        let b = b.min(self.len());
        let a = a.min(b);
        let mut v = Vec::with_capacity(b - a);
        for s in self.slices(a, b) {
            v.extend_from_slice(s);
        }
        v
    }
}

/// The slices of a range of a log's entries (`RaftLog::slices`).
#[derive(Clone)]
pub struct Slices<'a> {
    log: &'a RaftLog,
    /// Stored positions (dead entries included) of the next entry and one past the last.
    at: usize,
    end: usize,
}

impl<'a> Iterator for Slices<'a> {
    type Item = &'a [Entry];

    #[inline]
    fn next(&mut self) -> Option<&'a [Entry]> {
        if self.at >= self.end {
            return None;
        }
        let c = self.at / CHUNK;
        let base = c * CHUNK;
        let chunk = self.log.chunk(c);
        let hi = self.end.min(base + chunk.len());
        let s = &chunk[self.at - base..hi - base];
        self.at = hi;
        Some(s)
    }
}

/// Where two runs of entries, each given as slices (`RaftLog::slices`), first hold a pair for
/// which `hit` is true: the count of pairs before it. None if no pair within the shorter run.
pub fn first_pair<'a>(
    mut xs: impl Iterator<Item = &'a [Entry]>,
    mut ys: impl Iterator<Item = &'a [Entry]>,
    mut hit: impl FnMut(&Entry, &Entry) -> bool,
) -> Option<usize> {
    let (mut x, mut y): (&[Entry], &[Entry]) = (&[], &[]);
    let mut done = 0;
    loop {
        if x.is_empty() {
            x = xs.next()?;
        }
        if y.is_empty() {
            y = ys.next()?;
        }
        let n = x.len().min(y.len());
        if let Some(k) = x[..n].iter().zip(&y[..n]).position(|(a, b)| hit(a, b)) {
            return Some(done + k);
        }
        done += n;
        (x, y) = (&x[n..], &y[n..]);
    }
}

impl From<Vec<Entry>> for RaftLog {
    fn from(entries: Vec<Entry>) -> Self {
        let mut log = RaftLog::new();
        log.extend(entries.into_iter());
        log
    }
}

/// A clone shares the frozen chunks and copies the tail, with room for a whole chunk. Chunks
/// holding only compacted entries are not kept (`drop_front` released them already).
impl Clone for RaftLog {
    fn clone(&self) -> Self {
        let mut tail = Vec::with_capacity(CHUNK);
        tail.extend_from_slice(&self.tail);
        RaftLog {
            frozen: self.frozen.clone(),
            tail,
            head: self.head,
        }
    }
}

impl Index<usize> for RaftLog {
    type Output = Entry;
    #[inline]
    fn index(&self, i: usize) -> &Entry {
        match self.get(i) {
            Some(e) => e,
            None => panic!("log index {i} out of {} live entries", self.len()),
        }
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

    fn ids<'a>(es: impl Iterator<Item = &'a Entry>) -> Vec<u64> {
        es.map(|e| match e.kind {
            EntryKind::Write(id) => id,
            _ => unreachable!("only writes in these tests"),
        })
        .collect()
    }

    fn log_of(n: u64) -> RaftLog {
        let mut log = RaftLog::new();
        log.extend((0..n).map(write));
        log
    }

    #[test]
    fn compacted_entries_are_gone_from_every_read() {
        let mut log = log_of(6);
        log.drop_front(4);
        assert_eq!(ids(log.iter()), [4, 5]);
        assert_eq!(log.len(), 2);
        assert_eq!(log.first(), Some(&write(4)));
        assert_eq!(log[1], write(5));
        log.truncate(1);
        assert_eq!(ids(log.iter()), [4]);
        assert_eq!(log.last(), Some(&write(4)));
    }

    #[test]
    fn every_read_sees_the_entries_in_order_across_chunks() {
        let n = 3 * CHUNK as u64 + 17;
        let mut log = log_of(n);
        log.drop_front(CHUNK + 5);
        let live: Vec<u64> = (CHUNK as u64 + 5..n).collect();
        assert_eq!(ids(log.iter()), live);
        assert_eq!(log.len(), live.len());
        for (i, &id) in live.iter().enumerate() {
            assert_eq!(log.get(i), Some(&write(id)), "entry {i}");
        }
        assert_eq!(log.get(live.len()), None);
        assert_eq!(log.last(), Some(&write(n - 1)));
        let (a, b) = (CHUNK - 10, 2 * CHUNK + 3);
        assert_eq!(ids(log.range(a, b).unwrap()), live[a..b]);
        assert_eq!(ids(log.to_vec(a, b).iter()), live[a..b]);
        assert!(log.range(0, live.len() + 1).is_none());
    }

    #[test]
    fn compaction_releases_whole_chunks_only() {
        let mut log = log_of(3 * CHUNK as u64);
        log.drop_front(CHUNK - 1);
        assert_eq!(log.frozen.len(), 3);
        log.drop_front(1);
        assert_eq!((log.frozen.len(), log.head), (2, 0));
        log.drop_front(2 * CHUNK);
        assert!(log.is_empty());
        assert_eq!(log.last(), None);
        log.push(write(7));
        assert_eq!(ids(log.iter()), [7]);
    }

    #[test]
    fn a_log_ending_on_a_chunk_boundary_reads_its_last_entry_from_the_chunk() {
        let log = log_of(2 * CHUNK as u64);
        assert!(log.tail.is_empty());
        assert_eq!(log.last(), Some(&write(2 * CHUNK as u64 - 1)));
    }

    #[test]
    fn truncating_into_a_frozen_chunk_leaves_its_kept_entries_in_the_tail() {
        let mut log = log_of(2 * CHUNK as u64 + 5);
        let fork = log.clone();
        log.truncate(CHUNK + 10);
        assert_eq!((log.frozen.len(), log.tail.len()), (1, 10));
        assert_eq!(ids(log.iter()), (0..CHUNK as u64 + 10).collect::<Vec<_>>());
        log.push(write(99));
        assert_eq!(log.last(), Some(&write(99)));
        // The fork that shared the chunk still holds all of it.
        assert_eq!(fork.len(), 2 * CHUNK + 5);
        assert_eq!(fork[CHUNK + 10], write(CHUNK as u64 + 10));
    }

    #[test]
    fn a_clone_shares_the_frozen_chunks_and_changes_apart() {
        let mut log = log_of(CHUNK as u64 + 3);
        let mut fork = log.clone();
        assert!(Arc::ptr_eq(&log.frozen[0], &fork.frozen[0]));
        assert!(fork.tail.capacity() >= CHUNK);
        fork.get_mut(2).unwrap().kind = EntryKind::Write(777);
        fork.push(write(1000));
        log.push(write(2000));
        assert_eq!(log[2], write(2));
        assert_eq!(fork[2], write(777));
        assert_eq!(log.last(), Some(&write(2000)));
        assert_eq!(fork.last(), Some(&write(1000)));
    }
}
