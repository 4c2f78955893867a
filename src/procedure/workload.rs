//! The verification's workload half (Nomad): after the last server, every job runs the
//! allocations it wants again and the leader's eval broker has drained to a plan-set bound.
//!
//! Nomad's upgrade guide ends each upgrade with "verify that jobs are running normally"
//! (`nomad status`), and names evaluations piling up in the broker as a failure to look for
//! (hashicorp/nomad#15858, #16877). Both recover on their own after a leader change: the new
//! leader restores its broker from state, lost allocations are rescheduled. So the procedure
//! gives them `[upgrade.verify] settle` to recover, counted from the verification's start,
//! and halts naming each job still short and the backlog if they have not.
//!
//! A job already short before the upgrade (a placement failure, a job being deployed) is not
//! the upgrade's doing: the preflight records it as a baseline and names it in a note, and the
//! verification only requires that it got no worse (short by no more allocations than then).
//! A resumed run takes its baseline at its own preflight, after the first attempt's steps.
//!
//! Consul has no workload plane (`Readout::NotApplicable`): nothing to check.

use super::Readout;
use rehearse_model::api::{BrokerStats, JobState, SharedStr, Workload};

/// What a halt names when the workload cannot be read.
pub const WHAT: &str = "the jobs and the eval broker";

/// Jobs short of their desired allocations at the preflight: (job, allocations short).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baseline {
    short: Vec<(SharedStr, u32)>,
}

fn shortfall(j: &JobState) -> u32 {
    j.desired.saturating_sub(j.running)
}

impl Baseline {
    /// The jobs `w` shows short.
    pub fn of(w: &Workload) -> Baseline {
        let short = w
            .jobs
            .iter()
            .filter(|j| shortfall(j) > 0)
            .map(|j| (j.name.clone(), shortfall(j)))
            .collect();
        Baseline { short }
    }

    /// How many allocations `job` was short at the preflight (0: not short).
    fn before(&self, job: &str) -> u32 {
        self.short
            .iter()
            .find(|(n, _)| **n == *job)
            .map_or(0, |(_, s)| *s)
    }
}

/// The workload conditions `w` does not meet: each job short of its desired allocations by
/// more than at the preflight (`short_jobs`' wording, with the preflight's count when there
/// was one), and a backlog above `max_backlog`.
pub fn unmet_in(w: &Workload, baseline: &Baseline, max_backlog: u64) -> Vec<String> {
    let worse = Workload {
        jobs: w
            .jobs
            .iter()
            .filter(|j| shortfall(j) > baseline.before(&j.name))
            .cloned()
            .collect(),
        broker: w.broker,
    };
    // Every job kept is short, so `short_jobs` names each of them, in order.
    let mut unmet: Vec<String> = worse
        .short_jobs()
        .into_iter()
        .zip(&worse.jobs)
        .map(|(line, j)| match baseline.before(&j.name) {
            0 => format!("job {line}"),
            n => format!("job {line} ({n} short before the upgrade)"),
        })
        .collect();
    unmet.extend(backlog_unmet(&w.broker, max_backlog));
    unmet
}

/// The broker's backlog when it is above `max_backlog`, with its parts.
pub fn backlog_unmet(b: &BrokerStats, max_backlog: u64) -> Option<String> {
    (b.backlog() > max_backlog).then(|| {
        format!(
            "eval backlog {} above the bound of {max_backlog} (upgrade.verify.max_eval_backlog): {} ready, {} unacked, {} blocked, {} blocked on capacity",
            b.backlog(),
            b.ready,
            b.unacked,
            b.blocked,
            b.blocked_capacity
        )
    })
}

/// The workload conditions the view's readout does not meet, or why the driver cannot read
/// it (the caller halts naming it). An error answer is a condition unmet (the verification
/// waits for the API to answer); Consul has nothing to check; a workload the procedure asked
/// for and the driver did not read is a driver defect.
pub fn unmet(
    r: &Readout<Workload>,
    baseline: &Baseline,
    max_backlog: u64,
) -> Result<Vec<String>, String> {
    match r {
        Readout::Read(Ok(w)) => Ok(unmet_in(w, baseline, max_backlog)),
        Readout::Read(Err(e)) => Ok(vec![format!("jobs and eval broker: {e}")]),
        Readout::NotApplicable => Ok(Vec::new()),
        Readout::NotRead => Err("not read (a driver defect: the procedure asked for it)".into()),
        Readout::Unavailable { why } => Err(why.clone()),
    }
}
