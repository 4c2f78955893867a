//! The running side of an explore sweep: runs are folded into their units as they finish, a
//! finished unit is written as one JSON line (see `chaos::shard`), and progress goes to stderr.

use super::Fault;
use super::explore::{Class, Run, RunResult, Totals, fold};
use super::pairs::How;
use super::shard::{Line, UnitRecord};
use crate::progress::Progress;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Where finished units go: a JSON-lines file, flushed after every unit so a killed sweep
/// keeps every unit it finished.
pub type Out = Mutex<std::io::BufWriter<std::fs::File>>;

/// Writes one line to `out`; the first error is kept in `failed`.
pub fn write_line(out: &Out, line: &Line, failed: &Mutex<Option<String>>) {
    let text = serde_json::to_string(line).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    let mut w = out.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = writeln!(w, "{text}").and_then(|()| w.flush()) {
        failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e.to_string());
    }
}

/// Folds runs into units.
pub struct Collector<'a> {
    /// The sweep's schedules (for findings and the run order).
    pub schedules: &'a [Vec<Fault>],
    /// The seeds.
    pub seeds: &'a [u64],
    /// Step of the first fault → (group index, schedules in the group).
    pub groups: BTreeMap<usize, (usize, usize)>,
    /// Per unit (seed position × groups + group): its totals so far.
    pub totals: Vec<Mutex<Totals>>,
    /// Per unit: how its runs were had (pair sweeps).
    pub how: Vec<[AtomicU64; 5]>,
    /// Per unit: runs still to come.
    pub left: Vec<AtomicUsize>,
    /// Where finished units are written.
    pub out: Option<&'a Out>,
    /// The first write error.
    pub failed: Mutex<Option<String>>,
    /// Units finished by this process.
    pub finished: Mutex<Vec<UnitRecord>>,
    /// Stop at the first unsafe run.
    pub fail_fast: bool,
    /// Progress on stderr.
    pub progress: Progress,
}

impl Collector<'_> {
    /// The unit number of a seed position and first-fault step.
    pub fn unit(&self, seed_pos: usize, step: usize) -> usize {
        let g = self.groups.get(&step).map_or(0, |x| x.0);
        seed_pos * self.groups.len() + g
    }

    /// Folds one run; returns true to stop the sweep (fail-fast on an unsafe run).
    pub fn record(
        &self,
        schedule: usize,
        seed_pos: usize,
        r: &RunResult,
        how: Option<How>,
    ) -> bool {
        let sched = &self.schedules[schedule];
        let step = sched.iter().map(|f| f.step).min().unwrap_or(0);
        let u = self.unit(seed_pos, step);
        let run = Run {
            index: seed_pos * self.schedules.len() + schedule,
            sched,
            seed: self.seeds[seed_pos],
            ran: r,
        };
        let class = fold(&self.totals[u], &run, self.progress.started);
        if let Some(h) = how {
            let i = How::ALL.iter().position(|x| *x == h).unwrap_or(0);
            self.how[u][i].fetch_add(1, Ordering::Relaxed);
        }
        self.progress.tick(class == Class::Unsafe);
        if self.left[u].fetch_sub(1, Ordering::AcqRel) == 1 {
            let rec = self.take(u, seed_pos, step);
            if let Some(out) = self.out {
                write_line(out, &Line::Unit(rec.clone()), &self.failed);
            }
            self.finished
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(rec);
        }
        class == Class::Unsafe && self.fail_fast
    }

    /// Takes unit `u`'s totals as a record.
    pub fn take(&self, u: usize, seed_pos: usize, step: usize) -> UnitRecord {
        let t = std::mem::take(&mut *self.totals[u].lock().unwrap_or_else(|e| e.into_inner()));
        let how: BTreeMap<How, u64> = How::ALL
            .iter()
            .zip(&self.how[u])
            .map(|(h, n)| (*h, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        UnitRecord::of(self.seeds[seed_pos], step, t, how)
    }
}
