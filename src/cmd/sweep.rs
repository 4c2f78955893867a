//! The running side of an explore sweep: runs are folded into their units as they finish, a
//! finished unit is written as one JSON line (see `chaos::shard`), and progress goes to stderr.

use crate::chaos::Fault;
use crate::chaos::explore::{Class, Run, RunResult, Totals, fold};
use crate::chaos::pairs::How;
use crate::chaos::sample::thousands;
use crate::chaos::shard::{Line, UnitRecord};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

/// Progress of a long sweep on stderr: done / total, runs per second, ETA, unsafe so far. On
/// a terminal one line redrawn in place; otherwise a plain line every `every` (for logs).
pub struct Progress {
    /// Runs in this process's part of the sweep.
    pub total: u64,
    done: AtomicU64,
    unsafe_runs: AtomicU64,
    last: Mutex<Instant>,
    tty: bool,
    every: Duration,
    first_unsafe: std::sync::OnceLock<(u64, f64)>,
    /// When the sweep started.
    pub started: Instant,
}

impl Progress {
    /// Progress over `total` runs, a plain line every `every` when stderr is no terminal.
    pub fn new(total: u64, every: Duration) -> Progress {
        let now = Instant::now();
        let tty = std::io::stderr().is_terminal();
        Progress {
            total,
            done: AtomicU64::new(0),
            unsafe_runs: AtomicU64::new(0),
            last: Mutex::new(now),
            tty,
            every: if tty {
                Duration::from_millis(250)
            } else {
                every
            },
            first_unsafe: std::sync::OnceLock::new(),
            started: now,
        }
    }

    fn tick(&self, unsafe_run: bool) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if unsafe_run {
            self.unsafe_runs.fetch_add(1, Ordering::Relaxed);
            let at = (done, self.started.elapsed().as_secs_f64());
            let _ = self.first_unsafe.get_or_init(|| at);
        }
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        if last.elapsed() >= self.every {
            *last = Instant::now();
            self.show(done, false);
        }
    }

    /// The current line.
    pub fn line(&self, done: u64) -> String {
        let s = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / s.max(1e-9);
        let eta = (self.total.saturating_sub(done)) as f64 / rate.max(1e-9);
        format!(
            "progress: {}/{} runs ({:.1}%), {:.0} runs/s, ETA {}, unsafe so far {}",
            thousands(done),
            thousands(self.total),
            done as f64 * 100.0 / self.total.max(1) as f64,
            rate,
            clock(eta),
            self.unsafe_runs.load(Ordering::Relaxed)
        )
    }

    fn show(&self, done: u64, last: bool) {
        let line = self.line(done);
        match (self.tty, last) {
            (true, false) => eprint!("\r{line}   "),
            (true, true) => eprintln!("\r{line}   "),
            (false, _) => eprintln!("{line}"),
        }
    }

    /// The last line, when there was anything to show.
    pub fn finish(&self) {
        let done = self.done.load(Ordering::Relaxed);
        if done > 0 && (self.tty || self.started.elapsed() >= self.every) {
            self.show(done, true);
        }
    }

    /// Runs done and wall seconds when the first unsafe run came in (time to first
    /// detection; depends on how the work was shared).
    pub fn first_unsafe(&self) -> Option<(u64, f64)> {
        self.first_unsafe.get().copied()
    }

    /// Runs done.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

/// Seconds as `1:02:03` or `2:03`.
fn clock(s: f64) -> String {
    let s = s.clamp(0.0, 1e9) as u64;
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{sec:02}")
    } else {
        format!("{m}:{sec:02}")
    }
}
