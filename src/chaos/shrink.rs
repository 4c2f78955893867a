//! Shrinking: an unsafe fault schedule reduced to a minimal one that is still unsafe.
//!
//! Greedy and deterministic, like a property-test shrinker: try simpler candidates in a fixed
//! order and keep the first that is still unsafe, until none is. Candidates, simplest first:
//! drop one fault; give a fault a shorter duration (a permanent fault becomes timed); move a
//! fault to an earlier step boundary. The result is 1-minimal: no single fault can be dropped,
//! shortened or moved earlier without the run becoming safe. The seed stays fixed, so every
//! candidate is one exact rehearsal and the result replays with the same line.

use super::fault::Fault;
use serde::Serialize;

/// Most rehearsals one shrink may run (each is a full run; a bound on the loop).
pub const SHRINK_RUNS_MAX: u64 = 2_000;
/// Durations tried when shortening, shortest first (seconds).
pub const DURATIONS_S: [u64; 8] = [1, 2, 5, 10, 20, 30, 60, 120];

/// A shrunk schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Shrunk {
    /// The schedule it started from.
    pub from: Vec<Fault>,
    /// The minimal schedule (possibly empty: the procedure is unsafe without any fault).
    pub faults: Vec<Fault>,
    /// What went wrong in the minimal run.
    pub problems: Vec<String>,
    /// Rehearsals run while shrinking.
    pub runs: u64,
    /// Whether the run bound stopped the shrink before it reached a minimum.
    pub bounded: bool,
}

/// Shrinks `faults`, which `unsafe_run` must report unsafe (`Some(problems)`), using the step
/// boundaries `steps` as the earlier positions to try. `unsafe_run` is one rehearsal on a fixed
/// seed.
pub fn shrink(
    faults: &[Fault],
    steps: &[usize],
    problems: Vec<String>,
    unsafe_run: &mut dyn FnMut(&[Fault]) -> Option<Vec<String>>,
) -> Shrunk {
    let mut current = faults.to_vec();
    current.sort();
    let mut problems = problems;
    let mut runs = 0;
    let mut bounded = false;
    'pass: loop {
        for candidate in candidates(&current, steps) {
            if runs >= SHRINK_RUNS_MAX {
                bounded = true;
                break 'pass;
            }
            runs += 1;
            if let Some(p) = unsafe_run(&candidate) {
                current = candidate;
                problems = p;
                continue 'pass;
            }
        }
        break;
    }
    Shrunk {
        from: faults.to_vec(),
        faults: current,
        problems,
        runs,
        bounded,
    }
}

/// Simpler schedules than `s`, simplest first.
fn candidates(s: &[Fault], steps: &[usize]) -> Vec<Vec<Fault>> {
    let mut out = Vec::new();
    let with = |i: usize, f: Fault| {
        let mut c = s.to_vec();
        c[i] = f;
        c.sort();
        c
    };
    for i in 0..s.len() {
        let mut c = s.to_vec();
        c.remove(i);
        out.push(c);
    }
    for (i, f) in s.iter().enumerate() {
        let shorter = DURATIONS_S
            .iter()
            .filter(|&&d| f.duration_s.is_none_or(|cur| d < cur));
        for &d in shorter {
            out.push(with(
                i,
                Fault {
                    duration_s: Some(d),
                    ..*f
                },
            ));
        }
    }
    for (i, f) in s.iter().enumerate() {
        let mut earlier: Vec<usize> = steps.iter().copied().filter(|&b| b < f.step).collect();
        earlier.push(0);
        earlier.sort_unstable();
        earlier.dedup();
        for step in earlier.into_iter().filter(|&b| b < f.step) {
            out.push(with(i, Fault { step, ..*f }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::fault::{FaultKind, Target};

    fn f(kind: FaultKind, step: usize, duration_s: Option<u64>) -> Fault {
        Fault {
            kind,
            target: Target::Leader,
            step,
            duration_s,
        }
    }

    /// A toy predicate: unsafe while a crash at step <= 7 lasting >= 10 s is present.
    #[test]
    fn shrinks_to_the_smallest_schedule_the_predicate_allows() {
        let padded = [
            f(FaultKind::Latency, 2, Some(30)),
            f(FaultKind::Crash, 9, None),
            f(FaultKind::Pause, 12, Some(30)),
        ];
        let mut pred = |s: &[Fault]| {
            let bad = s.iter().any(|x| {
                x.kind == FaultKind::Crash && x.step <= 9 && x.duration_s.is_none_or(|d| d >= 10)
            });
            bad.then(|| vec!["toy".to_string()])
        };
        let r = shrink(&padded, &[0, 3, 5, 9, 12], vec![], &mut pred);
        assert_eq!(r.faults, vec![f(FaultKind::Crash, 0, Some(10))]);
        assert!(!r.bounded);
        assert_eq!(r.problems, vec!["toy".to_string()]);
    }
}
