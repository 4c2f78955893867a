//! Progress of a long command on stderr: done / total, rate, ETA, unsafe so far. On a terminal
//! one line redrawn in place; otherwise a plain line every `every` (for logs and CI). Nothing
//! goes to stdout, so `--json` output stays one document.
//!
//! `explore` counts its runs through its own [`Progress`]; `check`, `report` and `calibrate`
//! [`install`] one for the command's lifetime and the library counts finished seeds and runs
//! with [`tick`] (a no-op when nothing is installed, as in tests and embedding programs). The
//! progress only observes: it changes no result.

use crate::chaos::sample::thousands;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Progress over a number of units (runs, seeds, trials).
pub struct Progress {
    total: AtomicU64,
    unit: &'static str,
    done: AtomicU64,
    unsafe_runs: AtomicU64,
    last: Mutex<Instant>,
    tty: bool,
    every: Duration,
    first_unsafe: std::sync::OnceLock<(u64, f64)>,
    /// When the work started.
    pub started: Instant,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.line(self.done()))
    }
}

impl Progress {
    /// Progress over `total` runs, a plain line every `every` when stderr is no terminal.
    pub fn new(total: u64, every: Duration) -> Progress {
        Progress::of(total, "runs", every)
    }

    /// Progress over `total` units named `unit` ("seeds", "runs"…).
    pub fn of(total: u64, unit: &'static str, every: Duration) -> Progress {
        let now = Instant::now();
        let tty = std::io::stderr().is_terminal();
        Progress {
            total: AtomicU64::new(total),
            unit,
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

    /// Units this process has to do.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// More units than first counted (work found along the way, such as a report's explorer).
    pub fn add_total(&self, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    /// One unit done (`unsafe_run`: it was unsafe); prints a line when one is due.
    pub fn tick(&self, unsafe_run: bool) {
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
            // Read under the lock, so lines never go backwards whichever thread prints.
            self.show(self.done(), false);
        }
    }

    /// The current line.
    pub fn line(&self, done: u64) -> String {
        let s = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / s.max(1e-9);
        let total = self.total();
        let eta = (total.saturating_sub(done)) as f64 / rate.max(1e-9);
        format!(
            "progress: {}/{} {} ({:.1}%), {:.0} {}/s, ETA {}, unsafe so far {}",
            thousands(done),
            thousands(total),
            self.unit,
            done as f64 * 100.0 / total.max(1) as f64,
            rate,
            self.unit,
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
        let _held = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let done = self.done();
        if done > 0 && (self.tty || self.started.elapsed() >= self.every) {
            self.show(done, true);
        }
    }

    /// Runs done and wall seconds when the first unsafe run came in (time to first
    /// detection; depends on how the work was shared).
    pub fn first_unsafe(&self) -> Option<(u64, f64)> {
        self.first_unsafe.get().copied()
    }

    /// Units done.
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

/// The progress of the running command, if it installed one.
static CURRENT: RwLock<Option<Arc<Progress>>> = RwLock::new(None);

/// Keeps a progress installed; dropping it prints the last line and uninstalls it.
pub struct Installed(Arc<Progress>);

impl Drop for Installed {
    fn drop(&mut self) {
        *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.0.finish();
    }
}

/// Makes `p` the command's progress until the returned guard is dropped.
pub fn install(p: Progress) -> Installed {
    let p = Arc::new(p);
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(p.clone());
    Installed(p)
}

fn with(f: impl FnOnce(&Progress)) {
    if let Some(p) = CURRENT.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        f(p);
    }
}

/// One unit done on the installed progress (none installed: nothing).
pub fn tick(unsafe_run: bool) {
    with(|p| p.tick(unsafe_run));
}

/// More units on the installed progress (none installed: nothing).
pub fn add_total(n: u64) {
    with(|p| p.add_total(n));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_units_and_never_go_backwards() {
        let p = Progress::of(4, "seeds", Duration::ZERO);
        assert!(p.line(0).starts_with("progress: 0/4 seeds (0.0%)"));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| p.tick(false));
            }
        });
        assert_eq!(p.done(), 4);
        p.add_total(2);
        assert!(
            p.line(4).starts_with("progress: 4/6 seeds"),
            "{}",
            p.line(4)
        );
    }

    #[test]
    fn ticks_without_an_installed_progress_do_nothing() {
        tick(true);
        add_total(3);
    }
}
