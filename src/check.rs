//! `check`'s rehearsal of many seeds, shared with the risk report: each seed rehearsed in the
//! simulator in parallel, with the figures read from the ground truth sampled after every
//! action.

use crate::procedure::ProcedureConfig;
use crate::rehearsal::{Outcome, rehearse_with, sim_config};
use crate::report::measure::{Sampler, lowest_tolerance, procedure_no_leader_ns};
use rehearse_sim::SimError;

/// One seed's rehearsal with the figures `check` and the report both read from the ground
/// truth sampled after every action.
pub struct SeedRun {
    /// The rehearsal.
    pub outcome: Outcome,
    /// Lowest ground-truth failure tolerance ([`lowest_tolerance`]).
    pub lowest_tolerance: Option<i64>,
    /// Time without a leader over the procedure ([`procedure_no_leader_ns`]).
    pub no_leader_ns: u64,
}

/// Rehearses `seeds` seeds in parallel; they come back in seed order (deterministic).
pub fn rehearse_seeds(
    plan: &crate::plan::Plan,
    cfg: &ProcedureConfig,
    seeds: std::ops::Range<u64>,
    jobs: usize,
) -> Result<Vec<SeedRun>, SimError> {
    let seeds: Vec<u64> = seeds.collect();
    let results = crate::pool::par_map(&seeds, jobs, |&seed| {
        // The sampler reads the ground truth after every action (it does not touch the
        // world): the lowest failure tolerance below is the report's figure.
        let mut sampler = Sampler::default();
        let r = rehearse_with(cfg, sim_config(plan, seed), &mut sampler).map(|outcome| SeedRun {
            outcome,
            lowest_tolerance: lowest_tolerance(&sampler.samples),
            no_leader_ns: procedure_no_leader_ns(&sampler.samples),
        });
        let bad = r.as_ref().is_ok_and(|run| {
            matches!(
                run.outcome.verdict,
                crate::rehearsal::Verdict::Unsafe { .. }
            )
        });
        crate::progress::tick(bad);
        r
    });
    results.into_iter().collect()
}

/// The workload plane's figures over several runs of a plan that declares jobs, as `check`,
/// `explore` and the report show them: the eval backlog's peak (ready + unacked + blocked),
/// the time from the procedure's end until the backlog was empty and every job ran its desired
/// count again, and the allocations lost with a stopped or failed node (faults included).
/// Medians are the lower middle value (`crate::stats`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkloadFigures {
    /// Runs the figures are over.
    pub runs: u64,
    /// Median over the runs of the backlog peak.
    pub backlog_peak_median: u64,
    /// Highest backlog peak of any run.
    pub backlog_peak_worst: u64,
    /// Median time to recover (ms) over the runs that recovered (absent if none did).
    pub recover_ms_median: Option<u64>,
    /// Longest time to recover (ms) of a run that recovered.
    pub recover_ms_worst: Option<u64>,
    /// Runs whose jobs had not recovered by the end of the run.
    pub not_recovered_runs: u64,
    /// Median over the runs of the allocations lost.
    pub lost_allocs_median: u64,
    /// Most allocations one run lost.
    pub lost_allocs_worst: u64,
    /// Allocations lost over all runs.
    pub lost_allocs_total: u64,
}

impl WorkloadFigures {
    /// The figures of these runs; `None` when the workload plane recorded nothing in any of
    /// them (a plan without jobs).
    pub fn of<'a>(
        planes: impl IntoIterator<Item = &'a rehearse_sim::WorkloadOutcome>,
    ) -> Option<WorkloadFigures> {
        let mut t = WorkloadTally::default();
        for w in planes {
            t.add(w);
        }
        t.figures()
    }

    /// The figures as `check` and `explore` print them, one line each, `what` naming the runs
    /// ("seeds", "runs").
    pub fn lines(&self, what: &str) -> Vec<String> {
        let secs = |ms: Option<u64>| ms.unwrap_or(0) as f64 / 1e3;
        vec![
            format!(
                "  eval backlog peak          median {}, worst {}",
                self.backlog_peak_median, self.backlog_peak_worst
            ),
            format!(
                "  jobs recovered after       median {:.1}s, worst {:.1}s{}",
                secs(self.recover_ms_median),
                secs(self.recover_ms_worst),
                if self.not_recovered_runs > 0 {
                    format!(", NOT RECOVERED on {} {what}", self.not_recovered_runs)
                } else {
                    String::new()
                }
            ),
            format!(
                "  allocations lost           {} over all {what}",
                self.lost_allocs_total
            ),
        ]
    }
}

/// Counts of the workload plane's figures over runs, from which [`WorkloadFigures`] are read:
/// value → runs, so that the tallies of a sweep's shards add up to the whole sweep's (medians
/// included). Empty for a plan without jobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkloadTally {
    /// Backlog peak → runs.
    pub backlog_peak: std::collections::BTreeMap<u64, u64>,
    /// Time to recover (ms) → runs that recovered.
    pub recover_ms: std::collections::BTreeMap<u64, u64>,
    /// Runs whose jobs had not recovered by the end of the run.
    pub not_recovered: u64,
    /// Allocations lost → runs.
    pub lost_allocs: std::collections::BTreeMap<u64, u64>,
}

impl WorkloadTally {
    /// Whether no run with jobs was counted.
    pub fn is_empty(&self) -> bool {
        self.backlog_peak.is_empty()
    }

    /// Counts one run (nothing for a run without jobs).
    pub fn add(&mut self, w: &rehearse_sim::WorkloadOutcome) {
        if w.is_zero() {
            return;
        }
        *self.backlog_peak.entry(w.backlog_peak).or_default() += 1;
        match w.time_to_recover_ns {
            Some(ns) => *self.recover_ms.entry(ns / 1_000_000).or_default() += 1,
            None => self.not_recovered += 1,
        }
        *self.lost_allocs.entry(w.lost_allocs).or_default() += 1;
    }

    /// Adds another tally's runs.
    pub fn merge(&mut self, other: &WorkloadTally) {
        for (mine, theirs) in [
            (&mut self.backlog_peak, &other.backlog_peak),
            (&mut self.recover_ms, &other.recover_ms),
            (&mut self.lost_allocs, &other.lost_allocs),
        ] {
            for (v, n) in theirs {
                *mine.entry(*v).or_default() += n;
            }
        }
        self.not_recovered += other.not_recovered;
    }

    /// The figures; `None` when no run was counted.
    pub fn figures(&self) -> Option<WorkloadFigures> {
        // The lower middle value of a value → count map, and the highest.
        fn median(m: &std::collections::BTreeMap<u64, u64>) -> Option<u64> {
            let n: u64 = m.values().sum();
            let mut k = n.checked_sub(1)? / 2;
            for (v, c) in m {
                if k < *c {
                    return Some(*v);
                }
                k -= c;
            }
            None
        }
        let max = |m: &std::collections::BTreeMap<u64, u64>| m.keys().next_back().copied();
        if self.is_empty() {
            return None;
        }
        Some(WorkloadFigures {
            runs: self.backlog_peak.values().sum(),
            backlog_peak_median: median(&self.backlog_peak).unwrap_or(0),
            backlog_peak_worst: max(&self.backlog_peak).unwrap_or(0),
            recover_ms_median: median(&self.recover_ms),
            recover_ms_worst: max(&self.recover_ms),
            not_recovered_runs: self.not_recovered,
            lost_allocs_median: median(&self.lost_allocs).unwrap_or(0),
            lost_allocs_worst: max(&self.lost_allocs).unwrap_or(0),
            lost_allocs_total: self.lost_allocs.iter().map(|(v, n)| v * n).sum(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rehearse_sim::WorkloadOutcome;

    fn w(peak: u64, recover_ms: Option<u64>, lost: u64) -> WorkloadOutcome {
        WorkloadOutcome {
            backlog_peak: peak,
            time_to_recover_ns: recover_ms.map(|ms| ms * 1_000_000),
            lost_allocs: lost,
        }
    }

    #[test]
    fn workload_figures_are_medians_and_worsts_and_shards_add_up() {
        let runs = [
            w(3, Some(1_000), 0),
            w(9, Some(4_000), 2),
            w(5, None, 0),
            w(4, Some(2_000), 1),
        ];
        let f = WorkloadFigures::of(&runs).unwrap();
        assert_eq!(
            (f.runs, f.backlog_peak_median, f.backlog_peak_worst),
            (4, 4, 9)
        );
        assert_eq!(
            (f.recover_ms_median, f.recover_ms_worst),
            (Some(2_000), Some(4_000))
        );
        assert_eq!(f.not_recovered_runs, 1);
        assert_eq!(
            (
                f.lost_allocs_median,
                f.lost_allocs_worst,
                f.lost_allocs_total
            ),
            (0, 2, 3)
        );
        // Two shards' tallies merged are the whole.
        let (mut a, mut b) = (WorkloadTally::default(), WorkloadTally::default());
        runs[..1].iter().for_each(|r| a.add(r));
        runs[1..].iter().for_each(|r| b.add(r));
        a.merge(&b);
        assert_eq!(a.figures(), Some(f));
        // Runs without jobs count for nothing.
        assert_eq!(WorkloadFigures::of(&[WorkloadOutcome::default()]), None);
    }
}
