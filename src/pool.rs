//! The one way rehearse spreads independent work over threads (`check`'s seeds, the report's
//! seeds and recommendations, the explorer's and the pair sweep's work units). Workers take the
//! next unit from a shared counter, so a slow unit never holds up a fixed share of the others;
//! each worker keeps its own state (a walker, an output buffer). What the callers compute never
//! depends on which thread ran which unit. A panic in a worker is re-raised in the caller, never
//! turned into a missing result.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Runs `work(state, unit)` for every unit in `0..units` on at most `jobs` threads, each
/// thread with its own `init()` state, until the units run out or `stop` is set (checked
/// before each unit). Returns every thread's final state.
pub fn for_each_unit<S: Send>(
    units: usize,
    jobs: usize,
    stop: &AtomicBool,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize) + Sync,
) -> Vec<S> {
    let next = AtomicUsize::new(0);
    let jobs = jobs.clamp(1, units.max(1));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| {
                    let mut state = init();
                    loop {
                        let u = next.fetch_add(1, Ordering::Relaxed);
                        if u >= units || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        work(&mut state, u);
                    }
                    state
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// `f` over `items` on at most `jobs` threads; results in item order (deterministic).
pub fn par_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let never = AtomicBool::new(false);
    let parts = for_each_unit(items.len(), jobs, &never, Vec::new, |out, i| {
        out.push((i, f(&items[i])));
    });
    let mut all: Vec<(usize, R)> = parts.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_item_order_whatever_the_threads() {
        let items: Vec<u64> = (0..1000).collect();
        for jobs in [1, 2, 7, 5000] {
            let out = par_map(&items, jobs, |x| x * x);
            assert_eq!(out, items.iter().map(|x| x * x).collect::<Vec<_>>());
        }
        assert!(par_map(&[] as &[u64], 4, |x| *x).is_empty());
    }

    #[test]
    fn every_unit_runs_once_and_stop_ends_the_work() {
        let never = AtomicBool::new(false);
        let states = for_each_unit(100, 3, &never, Vec::new, |seen, u| seen.push(u));
        let mut all: Vec<usize> = states.into_iter().flatten().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());

        let stop = AtomicBool::new(false);
        let ran = AtomicUsize::new(0);
        for_each_unit(
            100,
            1,
            &stop,
            || (),
            |_, u| {
                ran.fetch_add(1, Ordering::Relaxed);
                if u == 9 {
                    stop.store(true, Ordering::Relaxed);
                }
            },
        );
        assert_eq!(ran.into_inner(), 10);
    }

    #[test]
    #[should_panic(expected = "seed 3 failed")]
    fn a_panic_in_a_worker_reaches_the_caller() {
        par_map(&[1, 2, 3, 4], 2, |&x| {
            if x == 3 {
                panic!("seed 3 failed");
            }
            x
        });
    }
}
