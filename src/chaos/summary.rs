//! What an explore sweep showed, for people: the summary a whole sweep and its merged shards
//! both print, and the command line that replays one run.

use super::explore::{Class, Totals};
use super::pairs::How;
use super::sample::thousands;
use super::shard::{PairSpaceInfo, Sweep};
use std::collections::BTreeMap;

/// What a sweep showed, for people: the same for a whole sweep and for its shards merged.
pub fn summary(s: &Sweep, t: &Totals, how: &BTreeMap<How, u64>) -> String {
    let mut o = format!(
        "explored {} with {} fault schedules x {} seeds ({} procedure): {} runs{}\n",
        s.plan,
        s.schedules,
        s.seeds,
        s.procedure,
        t.runs,
        if t.stopped_early {
            " (stopped at the first unsafe run)"
        } else {
            ""
        }
    );
    o += &format!(
        "  faults fired {}, completed {}, halted safely {}, quorum lost by the faults alone {}, UNSAFE {}\n",
        t.fired, t.completed, t.halted, t.beyond_tolerance, t.unsafe_runs
    );
    if t.lost_allocations > 0 {
        o += &format!(
            "  LOST ALLOCATIONS {} (a node stopped while its allocations ran, without a completed drain)\n",
            t.lost_allocations
        );
    }
    if t.stalled_workload > 0 {
        o += &format!(
            "  STALLED WORKLOAD {} (completed, but the jobs never recovered: eval backlog or jobs below their counts)\n",
            t.stalled_workload
        );
    }
    for line in t.workload.figures().iter().flat_map(|f| f.lines("runs")) {
        o += &line;
        o.push('\n');
    }
    if let Some(p) = &s.pairs {
        o += &pair_lines(s, p, how);
    }
    if let Some(first) = &t.first_unsafe {
        o += &format!(
            "  earliest unsafe run in the run order: #{}\n",
            first.first_in_order
        );
    }
    o += &unsafe_lines(s, t);
    o
}

/// The summary's lines about a pair sweep: the pair space, the sample and how each pair ran.
fn pair_lines(s: &Sweep, p: &PairSpaceInfo, how: &BTreeMap<How, u64>) -> String {
    let mut o = format!(
        "  pairs: {} ordered pairs at different steps, {} pruned as provably the same run as a kept one (a stop is a crash; a fault that never heals is the same whatever its duration): {} distinct\n",
        thousands(p.raw),
        thousands(p.raw - p.distinct),
        thousands(p.distinct)
    );
    let taken = if p.taken < p.distinct {
        format!(
            "sampled {} of {} distinct pairs (sample seed {})",
            thousands(p.taken),
            thousands(p.distinct),
            s.sample_seed
        )
    } else {
        format!("all {} distinct pairs", thousands(p.distinct))
    };
    o += &format!("  {taken}; {}\n", p.coverage);
    let n = |h: How| thousands(how.get(&h).copied().unwrap_or(0));
    o += &format!(
        "  pair runs: {} simulated; the same run as another on their seed: {} second fault after the run ended, {} second fault's role missing, {} crash of a server already down for good, {} landing like another pair\n",
        n(How::Simulated),
        n(How::Ended),
        n(How::Missed),
        n(How::Down),
        n(How::Same)
    );
    o
}

/// The summary's lines on the first ten unsafe findings, each with its replay command.
fn unsafe_lines(s: &Sweep, t: &Totals) -> String {
    let mut o = String::new();
    let unsafe_findings = t.findings.iter().filter(|f| f.class == Class::Unsafe);
    for f in unsafe_findings.take(10) {
        let faults: Vec<String> = f.faults.iter().map(ToString::to_string).collect();
        o += &format!(
            "  UNSAFE seed {} faults {}: {}\n",
            f.seed,
            faults.join(" "),
            f.problems.join("; ")
        );
        o += &format!("    replay: {}\n", replay_line(s, f.seed, &faults));
    }
    o
}

/// The command that replays one run of the sweep.
pub fn replay_line(sweep: &Sweep, seed: u64, faults: &[String]) -> String {
    let mut s = format!("rehearse explore {} --seeds 1 --seed {seed}", sweep.plan);
    for f in faults {
        s.push_str(&format!(" --fault {f}"));
    }
    if let Some(v) = &sweep.variant {
        s.push_str(&format!(" --variant {v}"));
    }
    s
}
