//! The safety oracle: what the world knows that no server does, to judge a run.
//!
//! - **Election safety**: at most one leader per term (`Oracle::elected`).
//! - **The canonical log** (`Canon`): the (term, digest) of every committed index, as the first
//!   server to apply it saw it, and the workload writes up to each index. Every later apply is
//!   checked against it (state-machine safety, the FSM count, leader completeness).
//! - **Acknowledged writes** (`Acked`): the (index, term) of every write a client was told is
//!   committed; a leader that lacks one has lost it.
//! - **Log matching** (`log_mismatch`): two logs that agree on the term at an index hold the
//!   same entries up to it.
//!
//! Memory stays flat in simulated time. A steady cluster commits and acknowledges its writes at
//! consecutive indexes in one term, so both records are kept as runs: an acknowledged run is
//! (first index, length, term), an archived canonical run is a line (index, term, digest and
//! write count each growing by a fixed step). Runs break only where the cluster changes term,
//! a write fails, or another kind of entry is committed. The canonical log keeps its newest
//! entries (`Canon`'s window) as plain vectors, which the apply paths read as slices; entries
//! below the lowest index any server may still apply or restore are moved into the runs
//! (`Canon::archive_below`). The runs are exact, not a digest: every record is still there, so
//! a check that reaches below the window (a server that comes back after a long stop, a wiped
//! server, a leader that lost acknowledged writes at any depth) gets the same answer as if
//! nothing had been folded. The window only decides which lookups are fast.

use crate::roomy::Roomy;
use crate::state::{Disk, Entry, EntryKind, ServerId};
use std::collections::BTreeMap;

/// The canonical log's window grows by this many entries between two looks at whether its
/// oldest entries can be archived (`Canon::due`).
pub(crate) const ARCHIVE_EVERY: u64 = 1 << 14;

/// A stretch of the canonical window: (term, digest) of each index, and the workload writes up
/// to each.
pub type Window<'a> = (&'a [(u64, u64)], &'a [u64]);

/// A run of archived canonical entries: `len` entries from index `first`, all in `term`; the
/// k-th has digest `digest + k·dstep` and `writes + k·wstep` workload writes up to it
/// (wrapping arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line {
    first: u64,
    len: u64,
    term: u64,
    digest: u64,
    dstep: u64,
    writes: u64,
    wstep: u64,
}

impl Line {
    fn at(&self, index: u64) -> ((u64, u64), u64) {
        let k = index - self.first;
        let digest = self.digest.wrapping_add(k.wrapping_mul(self.dstep));
        let writes = self.writes.wrapping_add(k.wrapping_mul(self.wstep));
        ((self.term, digest), writes)
    }

    /// Extends the run with the entry at its next index, if that entry lies on its line.
    fn extend(&mut self, (term, digest): (u64, u64), writes: u64) -> bool {
        if term != self.term {
            return false;
        }
        if self.len == 1 {
            self.dstep = digest.wrapping_sub(self.digest);
            self.wstep = writes.wrapping_sub(self.writes);
        } else if self.at(self.first + self.len) != ((term, digest), writes) {
            return false;
        }
        self.len += 1;
        true
    }
}

/// The canonical log: (term, digest) of committed indexes 1..=`len`, and the workload writes
/// in the log up to each. Indexes above `base` are in the window, the rest in `archive`.
#[derive(Debug, Clone, Default)]
pub struct Canon {
    /// Indexes 1..=base are archived.
    base: u64,
    /// Workload writes up to `base`.
    base_writes: u64,
    /// (term, digest) of indexes base+1.. (`recent[k]` is index base+1+k).
    recent: Roomy<(u64, u64)>,
    /// Workload writes up to each index of `recent`.
    recent_writes: Roomy<u64>,
    /// Indexes 1..=base as runs, in index order.
    archive: Vec<Line>,
    /// Window length at which `due` next says to look at archiving.
    next_look: u64,
}

impl Canon {
    /// An empty canonical log whose window has room for `n` entries.
    pub fn with_capacity(n: usize) -> Canon {
        Canon {
            recent: Roomy::with_capacity(n),
            recent_writes: Roomy::with_capacity(n),
            next_look: ARCHIVE_EVERY,
            ..Canon::default()
        }
    }

    /// Highest committed index recorded (0 for none).
    #[inline]
    pub fn len(&self) -> u64 {
        self.base + self.recent.len() as u64
    }

    /// Whether no index is recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (term, digest) at `index` (1-based), if recorded.
    #[inline]
    pub fn get(&self, index: u64) -> Option<(u64, u64)> {
        if index > self.base {
            return self.recent.get((index - self.base - 1) as usize).copied();
        }
        self.archived(index).map(|(e, _)| e)
    }

    /// Workload writes in the committed log up to `index` (0 for index 0), if recorded.
    #[inline]
    pub fn writes_at(&self, index: u64) -> Option<u64> {
        if index > self.base {
            return self
                .recent_writes
                .get((index - self.base - 1) as usize)
                .copied();
        }
        if index == self.base {
            return Some(self.base_writes);
        }
        if index == 0 {
            return Some(0);
        }
        self.archived(index).map(|(_, w)| w)
    }

    /// Workload writes up to the last recorded index.
    #[inline]
    pub fn last_writes(&self) -> u64 {
        self.recent_writes
            .last()
            .copied()
            .unwrap_or(self.base_writes)
    }

    fn archived(&self, index: u64) -> Option<((u64, u64), u64)> {
        if index == 0 || index > self.base {
            return None;
        }
        let k = self.archive.partition_point(|l| l.first + l.len <= index);
        self.archive.get(k).map(|l| l.at(index))
    }

    /// Records the next committed index: its (term, digest), and whether it is a workload write.
    #[inline]
    pub fn push(&mut self, entry: (u64, u64), write: bool) {
        let writes = self.last_writes() + u64::from(write);
        self.recent.push(entry);
        self.recent_writes.push(writes);
    }

    /// The window from `index` on: (term, digest) and write counts, None below the window.
    #[inline]
    pub fn window_from(&self, index: u64) -> Option<Window<'_>> {
        let k = index.checked_sub(self.base + 1)? as usize;
        Some((self.recent.get(k..)?, self.recent_writes.get(k..)?))
    }

    /// Whether the window has grown enough since the last look to look at archiving again.
    #[inline]
    pub fn due(&self) -> bool {
        self.recent.len() as u64 >= self.next_look
    }

    /// Moves the indexes below `floor` into the archive, if that is at least
    /// `ARCHIVE_EVERY` of them (fewer are left for a later look).
    pub fn archive_below(&mut self, floor: u64) {
        let n = floor
            .saturating_sub(self.base + 1)
            .min(self.recent.len() as u64);
        if n >= ARCHIVE_EVERY {
            for k in 0..n as usize {
                let index = self.base + 1 + k as u64;
                let (e, w) = (self.recent[k], self.recent_writes[k]);
                let extended = self
                    .archive
                    .last_mut()
                    .is_some_and(|l| l.first + l.len == index && l.extend(e, w));
                if !extended {
                    self.archive.push(Line {
                        first: index,
                        len: 1,
                        term: e.0,
                        digest: e.1,
                        dstep: 0,
                        writes: w,
                        wstep: 0,
                    });
                }
            }
            self.base_writes = self.recent_writes[n as usize - 1];
            self.base += n;
            self.recent.drain(..n as usize);
            self.recent_writes.drain(..n as usize);
        }
        self.next_look = self.recent.len() as u64 + ARCHIVE_EVERY;
    }

    /// Indexes held in the window, and runs in the archive (for tests and sizing).
    pub fn sizes(&self) -> (usize, usize) {
        (self.recent.len(), self.archive.len())
    }
}

/// A run of acknowledged writes: indexes first..first+len, all in `term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AckRun {
    first: u64,
    len: u64,
    term: u64,
}

/// The (index, term) of every acknowledged write, in acknowledgement order, as runs.
#[derive(Debug, Clone, Default)]
pub struct Acked {
    runs: Vec<AckRun>,
}

impl Acked {
    /// Records a write acknowledged at (index, term).
    #[inline]
    pub fn push(&mut self, index: u64, term: u64) {
        if let Some(r) = self.runs.last_mut()
            && r.term == term
            && r.first + r.len == index
        {
            r.len += 1;
            return;
        }
        self.runs.push(AckRun {
            first: index,
            len: 1,
            term,
        });
    }

    /// Acknowledged writes recorded.
    pub fn count(&self) -> u64 {
        self.runs.iter().map(|r| r.len).sum()
    }

    /// Runs held (for tests and sizing).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Acknowledged writes that `d` lacks: at an index above its snapshot and not compacted
    /// away, where its log holds no entry or one of another term. (Below its snapshot or its
    /// log start the server cannot tell, and they count as held.)
    pub fn missing(&self, d: &Disk) -> u64 {
        let start = d.log_start();
        let snap = d.snapshot.as_ref().map_or(0, |s| s.index);
        // Indexes up to `skip` count as held; from `end` on the log holds nothing.
        let skip = snap.max(start.saturating_sub(1));
        let end = start + d.log.len() as u64;
        let mut lost = 0;
        for r in &self.runs {
            let lo = r.first.max(skip + 1);
            let hi = r.first + r.len; // exclusive
            if lo >= hi {
                continue;
            }
            let held_to = hi.min(end);
            if lo < held_to {
                let log = &d.log[(lo - start) as usize..(held_to - start) as usize];
                lost += log.iter().filter(|e: &&Entry| e.term != r.term).count() as u64;
            }
            lost += hi - lo.max(end).min(hi);
        }
        lost
    }
}

/// The safety oracle (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Oracle {
    /// The leader of each term that had one.
    leaders_by_term: BTreeMap<u64, ServerId>,
    /// The committed log, as the servers applied it.
    pub canon: Canon,
    /// The acknowledged writes.
    pub acked: Acked,
}

impl Oracle {
    /// An empty oracle whose canonical window has room for `n` entries.
    pub fn with_capacity(n: usize) -> Oracle {
        Oracle {
            canon: Canon::with_capacity(n),
            ..Oracle::default()
        }
    }

    /// Election safety: `id` won `term`. Another server that led the same term, if any.
    pub fn elected(&mut self, id: ServerId, term: u64) -> Option<ServerId> {
        match self.leaders_by_term.get(&term) {
            Some(&other) if other != id => Some(other),
            _ => {
                self.leaders_by_term.insert(term, id);
                None
            }
        }
    }

    /// Leader completeness: the highest committed index, if `d` does not hold it (a log that
    /// starts after it cannot tell and counts as holding it).
    pub fn lacks_committed(&self, d: &Disk) -> Option<u64> {
        let committed = self.canon.len();
        let ok = committed == 0
            || committed < d.log_start()
            || d.term_at(committed) == self.canon.get(committed).map(|c| c.0);
        (!ok).then_some(committed)
    }

    /// Acknowledged writes that `d` lacks (see `Acked::missing`).
    pub fn missing_acked(&self, d: &Disk) -> u64 {
        self.acked.missing(d)
    }

    /// State-machine safety for the entry (term, digest) applied at `index`: false if the
    /// committed log holds another entry there. An index just past the committed log extends
    /// it; one further on is not judged.
    pub fn applied(&mut self, index: u64, mine: (u64, u64), write: bool) -> bool {
        let len = self.canon.len();
        if index <= len {
            return self.canon.get(index) == Some(mine);
        }
        if index == len + 1 {
            self.canon.push(mine, write);
        }
        true
    }

    /// The workload writes a state machine that applied up to `applied` must hold, if the
    /// committed log reaches that far (None for 0 or past it).
    pub fn expected_writes(&self, applied: u64) -> Option<u64> {
        if applied == 0 || applied > self.canon.len() {
            return None;
        }
        self.canon.writes_at(applied)
    }
}

/// Log matching over a set of logs: if two hold an entry with the same index and term, they
/// hold the same entries up to it. The first pair (a, b) that breaks it, with the index where
/// they differ.
pub fn log_mismatch(disks: &[&Disk]) -> Option<(usize, usize, u64)> {
    if logs_match_one(disks) {
        return None;
    }
    let n = disks.len();
    for a in 0..n {
        for b in a + 1..n {
            if let Some(index) = pair_mismatch(disks[a], disks[b]) {
                return Some((a, b, index));
            }
        }
    }
    None
}

/// The usual case, cheaply: one log covers every other's range (it starts no later and ends
/// no earlier) and each other log equals it entry for entry where they overlap. Then any two
/// logs are equal where they overlap, so no pair can break log matching. False means "not
/// shown": the pairwise check decides.
fn logs_match_one(disks: &[&Disk]) -> bool {
    let lo = disks.iter().map(|d| d.log_start()).min();
    let hi = disks.iter().map(|d| d.last_index()).max();
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return true;
    };
    let Some(r) = disks
        .iter()
        .find(|d| d.log_start() == lo && d.last_index() == hi)
    else {
        return false;
    };
    disks.iter().all(|d| {
        let from = (d.log_start() - lo) as usize;
        let to = (d.last_index() + 1).saturating_sub(lo) as usize;
        let covered = d.log.len() == to.saturating_sub(from)
            && r.log.len() == (hi + 1).saturating_sub(lo) as usize;
        // `r` equals itself: only its coverage needs checking.
        covered
            && (std::ptr::eq(*d, *r)
                || r.log[..].get(from..to).is_some_and(|s| {
                    s.len() == d.log.len()
                        && s.iter().zip(&d.log[..]).all(|(x, y)| same_entry(x, y))
                }))
    })
}

/// Entry equality with the kinds every run writes compared inline: the slice comparison
/// otherwise calls `EntryKind::eq` out of line for each of the thousands of entries a run's
/// logs hold (about 4 % of the explorer's CPU). Same answer as `==`.
#[inline]
fn same_entry(a: &Entry, b: &Entry) -> bool {
    a.term == b.term
        && match (&a.kind, &b.kind) {
            (EntryKind::Write(x), EntryKind::Write(y)) => x == y,
            (EntryKind::Noop, EntryKind::Noop) => true,
            (x, y) => x == y,
        }
}

/// The first index where two logs differ below an index at which they agree on the term.
fn pair_mismatch(da: &Disk, db: &Disk) -> Option<u64> {
    let lo = da.log_start().max(db.log_start());
    let hi = da.last_index().min(db.last_index());
    // Highest common index with equal terms; everything from `lo` to it must be equal.
    let top = (lo..=hi)
        .rev()
        .find(|&i| da.term_at(i).is_some() && da.term_at(i) == db.term_at(i))?;
    // Both logs hold `lo..=top` when they agree on a term at `top` from the log (a snapshot
    // index can agree too; then compare what the logs hold).
    fn slice(d: &Disk, lo: u64, top: u64) -> &[Entry] {
        let from = (lo - d.log_start()) as usize;
        let to = ((top + 1).saturating_sub(d.log_start()) as usize).min(d.log.len());
        &d.log[from.min(to)..to]
    }
    let (sa, sb) = (slice(da, lo, top), slice(db, lo, top));
    let differ = |(x, y): (&Entry, &Entry)| x.term != y.term || x.digest() != y.digest();
    match sa.iter().zip(sb).position(differ) {
        Some(k) => Some(lo + k as u64),
        // One log ends early below `top`: the first index only the other holds.
        None if sa.len() != sb.len() => Some(lo + sa.len().min(sb.len()) as u64),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{EntryKind, Snapshot};

    fn disk(start: u64, terms: &[u64], snapshot: Option<u64>) -> Disk {
        Disk {
            start,
            log: terms
                .iter()
                .enumerate()
                .map(|(k, &term)| Entry {
                    term,
                    kind: EntryKind::Write(start + k as u64),
                })
                .collect::<Vec<_>>()
                .into(),
            snapshot: snapshot.map(|index| Snapshot {
                index,
                term: 1,
                config: Vec::new(),
                format: 1,
                max_schema: 1,
                fsm_writes: 0,
            }),
            ..Disk::default()
        }
    }

    /// The acknowledged writes `d` lacks, counted one by one as `Disk::term_at` sees them.
    fn missing_naive(acked: &[(u64, u64)], d: &Disk) -> u64 {
        let snap = d.snapshot.as_ref().map_or(0, |s| s.index);
        let missing =
            |&&(i, t): &&(u64, u64)| i > snap && i >= d.log_start() && d.term_at(i) != Some(t);
        acked.iter().filter(missing).count() as u64
    }

    #[test]
    fn election_safety_refuses_a_second_leader_in_a_term() {
        let mut o = Oracle::default();
        assert_eq!(o.elected(0, 5), None);
        assert_eq!(
            o.elected(0, 5),
            None,
            "the same leader again is no second leader"
        );
        assert_eq!(o.elected(1, 6), None);
        assert_eq!(o.elected(2, 5), Some(0));
    }

    /// A committed log with term changes, no-ops, other entries and writes, archived at
    /// several floors: every index answers as before it was folded.
    #[test]
    fn the_archive_answers_every_index_as_the_window_did() {
        let mut canon = Canon::with_capacity(16);
        let mut reference: Vec<((u64, u64), u64)> = Vec::new();
        let (mut term, mut writes, mut id) = (1, 0, 0);
        for i in 1..=200_000u64 {
            let (entry, write) = if i % 40_000 == 7 {
                term += 1;
                ((term, 1), false)
            } else if i % 9_999 == 0 {
                ((term, 3 ^ (5 << 4)), false)
            } else if i % 25_000 == 3 {
                id += 2; // a write that never reached the log
                ((term, Entry::write_digest(id)), true)
            } else {
                id += 1;
                ((term, Entry::write_digest(id)), true)
            };
            writes += u64::from(write);
            canon.push(entry, write);
            reference.push((entry, writes));
            if i % 30_000 == 0 {
                canon.archive_below(i - 5_000);
            }
        }
        let (window, runs) = canon.sizes();
        assert!(window < 30_000, "window {window}");
        assert!(runs < 100, "runs {runs}");
        assert_eq!(canon.len(), 200_000);
        assert_eq!(canon.writes_at(0), Some(0));
        for (k, &(entry, w)) in reference.iter().enumerate() {
            let i = k as u64 + 1;
            assert_eq!(canon.get(i), Some(entry), "index {i}");
            assert_eq!(canon.writes_at(i), Some(w), "index {i}");
        }
        assert_eq!(canon.get(200_001), None);
        assert_eq!(canon.last_writes(), writes);
    }

    #[test]
    fn a_floor_that_moves_little_archives_nothing() {
        let mut canon = Canon::with_capacity(0);
        for id in 0..ARCHIVE_EVERY * 2 {
            canon.push((1, Entry::write_digest(id)), true);
        }
        canon.archive_below(ARCHIVE_EVERY / 2);
        assert_eq!(canon.sizes(), (2 * ARCHIVE_EVERY as usize, 0));
        assert!(!canon.due());
        canon.archive_below(ARCHIVE_EVERY + 1);
        assert_eq!(canon.sizes(), (ARCHIVE_EVERY as usize, 1));
        assert_eq!(
            canon.window_from(ARCHIVE_EVERY + 1).map(|w| w.0.len()),
            Some(ARCHIVE_EVERY as usize)
        );
        assert_eq!(canon.window_from(ARCHIVE_EVERY), None);
    }

    /// State-machine safety below the window: an archived index still refuses another entry.
    #[test]
    fn state_machine_safety_holds_below_the_window() {
        let mut o = Oracle::default();
        for id in 1..=3 * ARCHIVE_EVERY {
            assert!(o.applied(id, (2, Entry::write_digest(id)), true));
        }
        o.canon.archive_below(2 * ARCHIVE_EVERY);
        assert!(o.canon.sizes().1 > 0);
        assert!(o.applied(10, (2, Entry::write_digest(10)), true));
        assert!(!o.applied(10, (3, Entry::write_digest(10)), true));
        assert!(!o.applied(11, (2, Entry::write_digest(12)), true));
        assert_eq!(o.expected_writes(10), Some(10));
        assert_eq!(o.expected_writes(0), None);
        assert_eq!(o.expected_writes(3 * ARCHIVE_EVERY + 1), None);
        // Past the end: not judged, not recorded.
        assert!(o.applied(3 * ARCHIVE_EVERY + 5, (9, 9), false));
        assert_eq!(o.canon.len(), 3 * ARCHIVE_EVERY);
    }

    #[test]
    fn leader_completeness_needs_the_last_committed_entry() {
        let mut o = Oracle::default();
        assert_eq!(o.lacks_committed(&disk(1, &[], None)), None);
        for i in 1..=5 {
            o.applied(i, (1, Entry::write_digest(i)), true);
        }
        assert_eq!(o.lacks_committed(&disk(1, &[1, 1, 1, 1, 1], None)), None);
        assert_eq!(o.lacks_committed(&disk(1, &[1, 1, 1, 1], None)), Some(5));
        assert_eq!(o.lacks_committed(&disk(1, &[1, 1, 1, 1, 2], None)), Some(5));
        // A log that starts after the committed index cannot tell.
        assert_eq!(o.lacks_committed(&disk(6, &[1], Some(5))), None);
    }

    /// The runs count exactly what the list of (index, term) pairs counted, for logs that
    /// hold everything, lack a suffix, hold another term, start late, or are empty.
    #[test]
    fn lost_acknowledged_writes_are_counted_as_one_by_one() {
        let mut acked = Acked::default();
        let mut list = Vec::new();
        let mut ack = |i: u64, t: u64| {
            acked.push(i, t);
            list.push((i, t));
        };
        (2..1_000).for_each(|i| ack(i, 1));
        (1_001..2_000).for_each(|i| ack(i, 2));
        ack(1_500, 3); // a second write at an index already acknowledged
        (2_000..2_500)
            .filter(|i| i % 7 != 0)
            .for_each(|i| ack(i, 3));
        assert_eq!(acked.count(), list.len() as u64);
        assert!(acked.runs() < 100, "{}", acked.runs());
        let term_of = |i: u64| match i {
            ..1_000 => 1,
            1_000..2_000 => 2,
            _ => 3,
        };
        let full: Vec<u64> = (1..2_500).map(term_of).collect();
        let mut other = full.clone();
        other[1_200..1_300].iter_mut().for_each(|t| *t = 9);
        let disks = [
            disk(1, &full, None),
            disk(1, &full[..1_700], None),
            disk(1, &other, None),
            disk(1_500, &full[1_499..], Some(1_600)),
            disk(900, &full[899..1_100], Some(950)),
            disk(1, &[], None),
            disk(3_000, &[], Some(2_999)),
        ];
        let mut seen = Vec::new();
        for d in &disks {
            let n = acked.missing(d);
            assert_eq!(n, missing_naive(&list, d));
            seen.push(n);
        }
        assert_eq!(seen[0], 1, "only the second write at 1500 is lacked");
        assert_eq!(seen[5], list.len() as u64, "an empty log lacks them all");
        assert_eq!(seen[6], 0);
    }

    #[test]
    fn log_matching_finds_the_first_differing_index() {
        let a = disk(1, &[1, 1, 2, 2, 3], None);
        let b = disk(1, &[1, 1, 2, 2], None);
        let c = disk(3, &[2, 2, 3], Some(2));
        assert_eq!(log_mismatch(&[&a, &b, &c]), None);
        let mut d = disk(1, &[1, 1, 2, 2, 3], None);
        d.log[1].kind = EntryKind::Write(999);
        assert_eq!(log_mismatch(&[&a, &b, &d]), Some((0, 2, 2)));
        // Different terms at the same index are no mismatch (a conflicting suffix).
        let e = disk(1, &[1, 1, 4, 4], None);
        assert_eq!(log_mismatch(&[&b, &e]), None);
    }
}
