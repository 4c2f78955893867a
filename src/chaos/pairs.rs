//! Running fault pairs, with the pairs that are the same run on a seed found and run once.
//!
//! Work is shared out as `explore::for_each_run` does it, in (seed, step) units: every pair of
//! a seed whose first fault is at that step. Each thread walks the fault-free run forward and
//! forks it at the unit's step. Then, for each first fault `a`, it walks *a's* run (the fork
//! with `a` fired) forward and forks it again at each second fault's step, so a pair costs the
//! simulation from its second fault on, not from its first. On the way it finds pairs that are
//! the same run as another one already had (`How`):
//! - the second fault's step comes after a's run ended: the pair is a's run (the fault never
//!   fires);
//! - no server has the second fault's role there: the pair is a's run;
//! - the second fault is a permanent crash of a server that `a` crashed for good and that is
//!   still down: a kill -9 of a dead process does nothing, and both heal into one start;
//! - it lands like another pair's second fault on a's run (same kind up to stop ≡ crash, same
//!   server, same duration where it heals), where `a` itself landed like the other's first:
//!   the same state, the same injection, the same run.
//!
//! `tests/chaos.rs` runs a sample of every kind of these from scratch and compares.

use super::explore::{Landing, RunResult, Walker, by_first_step, landing_key, units_of};
use super::fault::{Fault, FaultHooks, FaultKind};
use crate::plan::Plan;
use crate::procedure::ProcedureConfig;
use crate::rehearsal::Checkpoint;
use rehearse_sim::ProcessState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a pair's result was had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// Simulated from the second fault's step.
    Simulated,
    /// The run ended before the second fault's step: the first fault's run.
    Ended,
    /// No server had the second fault's role: the first fault's run.
    Missed,
    /// The second fault crashes a server the first one crashed for good: the first fault's run.
    Down,
    /// The same run as another pair of the unit.
    Same,
}

impl How {
    /// Every way, in order.
    pub const ALL: [How; 5] = [
        How::Simulated,
        How::Ended,
        How::Missed,
        How::Down,
        How::Same,
    ];
}

/// One pair run as `for_each_pair` hands it over.
pub struct PairAt<'a> {
    /// Index of the schedule in the list given.
    pub schedule: usize,
    /// Position of the seed in the list given.
    pub seed_pos: usize,
    /// What the run showed.
    pub result: &'a RunResult,
    /// How it was had.
    pub how: How,
}

/// Runs every two-fault schedule (first fault at an earlier step than the second) on every
/// seed, in the units `keep(seed position, first step)` accepts, with `jobs` threads; calls
/// `each` with every run as it finishes (in no fixed order); `each` returns true to stop.
/// Returns the number of runs simulated (fault-free walks not counted).
pub fn for_each_pair(
    plan: &Plan,
    cfg: &ProcedureConfig,
    schedules: &[Vec<Fault>],
    seeds: &[u64],
    jobs: usize,
    keep: &(dyn Fn(usize, usize) -> bool + Sync),
    each: &(dyn Fn(&PairAt<'_>) -> bool + Sync),
) -> u64 {
    let groups = by_first_step(schedules);
    let units = units_of(&groups, seeds.len(), keep);
    let stop = AtomicBool::new(false);
    // Each worker: its walker (the fault-free prefix) and the runs it simulated.
    let workers = crate::pool::for_each_unit(
        units.len(),
        jobs,
        &stop,
        || (Walker::default(), 0u64),
        |(walker, simulated), u| {
            let (seed_pos, g) = units[u];
            let (step, members) = &groups[g];
            let fork = walker.at(plan, cfg, seeds[seed_pos], *step).clone();
            let mut unit = Unit {
                cfg,
                fork: &fork,
                cache: BTreeMap::new(),
                simulated: 0,
            };
            let mut emit = |schedule: usize, result: &RunResult, how: How| {
                let at = PairAt {
                    schedule,
                    seed_pos,
                    result,
                    how,
                };
                if each(&at) {
                    stop.store(true, Ordering::Relaxed);
                }
            };
            for (a, pairs) in by_first_fault(schedules, members) {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                unit.first(a, &pairs, &mut emit);
            }
            *simulated += unit.simulated;
        },
    );
    workers.iter().map(|(_, n)| n).sum()
}

/// The unit's pairs grouped by first fault, each group ordered by the second fault's step.
fn by_first_fault(
    schedules: &[Vec<Fault>],
    members: &[usize],
) -> Vec<(Fault, Vec<(usize, Fault)>)> {
    let mut m: BTreeMap<Fault, Vec<(usize, Fault)>> = BTreeMap::new();
    for &i in members {
        let s = &schedules[i];
        assert!(
            s.len() == 2 && s[0].step < s[1].step,
            "for_each_pair takes pairs at two steps, the earlier first: {s:?}"
        );
        m.entry(s[0]).or_default().push((i, s[1]));
    }
    m.into_iter()
        .map(|(a, mut v)| {
            v.sort_by_key(|(i, b)| (b.step, *i));
            (a, v)
        })
        .collect()
}

/// What identifies a run within a unit: where the first fault landed, and (for a pair) the
/// second fault's step and where it landed on the first fault's run.
type RunKey = (Landing, Option<(usize, Landing)>);

/// One (seed, step) unit being run.
struct Unit<'a> {
    cfg: &'a ProcedureConfig,
    fork: &'a Checkpoint,
    cache: BTreeMap<RunKey, RunResult>,
    simulated: u64,
}

impl Unit<'_> {
    /// Runs every pair whose first fault is `a`, handing each to `emit`.
    fn first(
        &mut self,
        a: Fault,
        pairs: &[(usize, Fault)],
        emit: &mut dyn FnMut(usize, &RunResult, How),
    ) {
        let la = landing_key(self.fork, &[a]).unwrap_or(Landing::Missed);
        // The server `a` crashes for good, if it does.
        let downed = match la {
            Landing::On(FaultKind::Crash, Some(x), None) => Some(x),
            _ => None,
        };
        let mut hooks = FaultHooks::new(vec![a]);
        let mut cp = self.fork.clone();
        let mut first_run: Vec<(usize, How)> = Vec::new();
        for &(i, b) in pairs {
            while cp.step() < b.step && !cp.ended() {
                cp.advance(self.cfg, &mut hooks);
            }
            let lb = match landing_key(&cp, &[b]) {
                _ if cp.ended() => {
                    first_run.push((i, How::Ended));
                    continue;
                }
                None | Some(Landing::Missed) => {
                    first_run.push((i, How::Missed));
                    continue;
                }
                Some(l) => l,
            };
            if let (Landing::On(FaultKind::Crash, Some(y), None), Some(x)) = (lb, downed) {
                let state = cp.world().process_state(y);
                if y == x && matches!(state, ProcessState::Crashed | ProcessState::Stopped) {
                    first_run.push((i, How::Down));
                    continue;
                }
            }
            let key = (la, Some((b.step, lb)));
            if let Some(r) = self.cache.get(&key) {
                emit(i, r, How::Same);
                continue;
            }
            let mut h = hooks.with(b);
            let o = cp.clone().resume(self.cfg, &mut h);
            let r = RunResult::from_outcome(&o, h.fired());
            self.simulated += 1;
            emit(i, &r, How::Simulated);
            self.cache.insert(key, r);
        }
        if first_run.is_empty() {
            return;
        }
        let key = (la, None);
        let r = match self.cache.get(&key) {
            Some(r) => r.clone(),
            None => {
                let o = cp.resume(self.cfg, &mut hooks);
                self.simulated += 1;
                let r = RunResult::from_outcome(&o, hooks.fired());
                self.cache.insert(key, r.clone());
                r
            }
        };
        for (i, how) in first_run {
            // A crash of a dead server fired (it found its target); the others did not.
            let fired = r.fired || how == How::Down;
            emit(i, &RunResult { fired, ..r.clone() }, how);
        }
    }
}
