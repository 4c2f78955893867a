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
