//! Explore sweeps as self-describing JSON lines, split into shards that merge back into the
//! summary one process would have printed.
//!
//! A sweep's runs are split into units: (seed, step of the first fault), in the order seeds ×
//! steps. Shard `i` of `n` takes the units whose position is `i - 1` modulo `n`, so shards are
//! disjoint, cover the sweep, and each is deterministic whatever machine runs it. Runs that
//! share work (the same fork, the same landing) are always in the same unit, so a shard loses
//! nothing to the split but the fault-free walks each process does for itself.
//!
//! A shard's file is one JSON object per line, each with a `type`:
//! - `sweep` (line 1): what the sweep is (plan path and sha-256, seeds, options, binary
//!   version, sample) and which shard this is;
//! - `unit`: one finished unit's counts and findings, written when its last run finished;
//! - `done`: the shard finished (work counts, wall time).
//!
//! A shard killed midway is resumed from its file: the units written are skipped (a torn last
//! line is cut off), the rest are run and appended.

use super::explore::{Class, FINDINGS_MAX, Finding, FirstUnsafe, Totals, keep_first_findings};
use super::pairs::How;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What a sweep is: every shard of one sweep carries the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// rehearse's version.
    pub version: String,
    /// The plan file, as given.
    pub plan: String,
    /// sha-256 of the plan file's text.
    pub plan_sha256: String,
    /// The procedure explored (`Safe`, or a broken variant).
    pub procedure: String,
    /// `--variant` as given on the command line, if any (for replay lines).
    pub variant: Option<String>,
    /// Faults per run.
    pub faults: u8,
    /// First seed.
    pub seed: u64,
    /// Seeds.
    pub seeds: u64,
    /// `--max-runs`.
    pub max_runs: usize,
    /// `--sample`, if given.
    pub sample: Option<u64>,
    /// `--sample-seed`.
    pub sample_seed: u64,
    /// `--fault` schedules, if the sweep is one given schedule.
    pub only: Vec<String>,
    /// Fault schedules in the whole sweep (every shard).
    pub schedules: u64,
    /// Units in the whole sweep.
    pub units: u64,
    /// The pair space and the sample, for pair sweeps.
    pub pairs: Option<PairSpaceInfo>,
}

/// The pair space a pair sweep drew from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairSpaceInfo {
    /// Ordered pairs at different steps before pruning.
    pub raw: u64,
    /// Distinct pairs after pruning.
    pub distinct: u64,
    /// Pairs in the sweep (all of them, or the sample).
    pub taken: u64,
    /// The coverage line of what was taken.
    pub coverage: String,
}

fn schema_version() -> u32 {
    crate::output::SCHEMA_VERSION
}

/// One line of a shard file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// Line 1: the sweep and this shard.
    Sweep {
        /// The version of the stream's format ([`crate::output::SCHEMA_VERSION`]).
        #[serde(default = "schema_version")]
        schema_version: u32,
        /// The sweep.
        sweep: Sweep,
        /// This shard: `[i, n]`, i from 1.
        shard: [u64; 2],
        /// Units in this shard.
        units: u64,
    },
    /// A finished unit.
    Unit(UnitRecord),
    /// The shard finished.
    Done {
        /// Runs simulated by this process (the rest were the same run as one of them).
        simulated: u64,
        /// Wall seconds of this process.
        wall_s: f64,
    },
}

/// The counts and findings of one finished unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    /// The seed.
    pub seed: u64,
    /// The step of the first fault.
    pub step: usize,
    /// Runs.
    pub runs: u64,
    /// Runs in which a fault fired.
    pub fired: u64,
    /// Completed.
    pub completed: u64,
    /// Halted safely.
    pub halted: u64,
    /// Quorum lost by the faults alone.
    pub beyond_tolerance: u64,
    /// Unsafe.
    pub unsafe_runs: u64,
    /// Lost allocations (otherwise safe).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost_allocations: u64,
    /// The workload plane's figures of the unit's runs (plans with jobs only).
    #[serde(default, skip_serializing_if = "crate::check::WorkloadTally::is_empty")]
    pub workload: crate::check::WorkloadTally,
    /// Completed, but the jobs never recovered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stalled_workload: u64,
    /// Position (1-based) of the earliest unsafe run in the sweep's run order.
    pub earliest_unsafe: Option<u64>,
    /// For pair sweeps: how the runs were had (simulated, or the same run as another).
    pub how: BTreeMap<How, u64>,
    /// Unsafe and quorum-lost runs, the first `FINDINGS_MAX` in finding order.
    pub findings: Vec<Finding>,
}

impl UnitRecord {
    /// The record of a unit's folded totals.
    pub fn of(seed: u64, step: usize, t: Totals, how: BTreeMap<How, u64>) -> UnitRecord {
        let mut findings = t.findings;
        keep_first_findings(&mut findings);
        UnitRecord {
            seed,
            step,
            runs: t.runs,
            fired: t.fired,
            completed: t.completed,
            halted: t.halted,
            beyond_tolerance: t.beyond_tolerance,
            unsafe_runs: t.unsafe_runs,
            lost_allocations: t.lost_allocations,
            workload: t.workload,
            stalled_workload: t.stalled_workload,
            earliest_unsafe: t.first_unsafe.map(|f| f.first_in_order),
            how,
            findings,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The sum of units: what the whole sweep showed. Only `first_in_order` of `first_unsafe`
/// means something here (the timing is the caller's).
pub fn sum<'a>(units: impl Iterator<Item = &'a UnitRecord>) -> (Totals, BTreeMap<How, u64>) {
    let mut t = Totals::default();
    let mut how: BTreeMap<How, u64> = BTreeMap::new();
    for u in units {
        t.runs += u.runs;
        t.fired += u.fired;
        t.completed += u.completed;
        t.halted += u.halted;
        t.beyond_tolerance += u.beyond_tolerance;
        t.unsafe_runs += u.unsafe_runs;
        t.lost_allocations += u.lost_allocations;
        t.workload.merge(&u.workload);
        t.stalled_workload += u.stalled_workload;
        if let Some(p) = u.earliest_unsafe {
            let first = t.first_unsafe.get_or_insert(FirstUnsafe {
                after_runs: 0,
                after_s: 0.0,
                first_in_order: p,
            });
            first.first_in_order = first.first_in_order.min(p);
        }
        for (h, n) in &u.how {
            *how.entry(*h).or_default() += n;
        }
        t.findings.extend(u.findings.iter().cloned());
        if t.findings.len() >= 2 * FINDINGS_MAX {
            keep_first_findings(&mut t.findings);
        }
    }
    keep_first_findings(&mut t.findings);
    (t, how)
}

/// Why a shard argument, a shard file or a set of shard files is refused (each names the
/// argument or file at fault).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardError {
    /// `--shard` is not `i/n` with 1 ≤ i ≤ n.
    #[error("--shard {0:?}: expected i/n with 1 <= i <= n, e.g. 2/4")]
    BadArg(String),
    /// The file could not be read.
    #[error("{file}: {message}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// A whole line that is not a shard line.
    #[error("{file}:{line}: {message}")]
    BadLine {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// The JSON parser's words.
        message: String,
    },
    /// The first line is not a `sweep` line.
    #[error("{0}: not an explore shard (line 1 is not a `sweep` line)")]
    NotAShard(String),
    /// A `sweep` line after the first line.
    #[error("{file}:{line}: a second `sweep` line")]
    SecondSweep {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
    },
    /// No whole line at all.
    #[error("{0}: empty: not an explore shard")]
    Empty(String),
    /// `merge` with no files.
    #[error("no shard files given")]
    NoFiles,
    /// A shard of a sweep other than the first file's.
    #[error("{file}: a shard of another sweep: {field} is {got}, in {first} it is {want}")]
    OtherSweep {
        /// The file.
        file: String,
        /// The first sweep field that differs.
        field: String,
        /// Its value in `file`.
        got: String,
        /// The first file.
        first: String,
        /// Its value there.
        want: String,
    },
    /// A shard of the same sweep split a different number of ways.
    #[error(
        "{file}: shard {index}/{ways} of a sweep split {ways}-ways, {first} is of one split {n}-ways"
    )]
    OtherSplit {
        /// The file.
        file: String,
        /// Its shard number.
        index: u64,
        /// Its split.
        ways: u64,
        /// The first file.
        first: String,
        /// The first file's split.
        n: u64,
    },
    /// The same shard twice.
    #[error("{file}: shard {index}/{n} given twice (also {other})")]
    Twice {
        /// The file.
        file: String,
        /// Shard number.
        index: u64,
        /// Split.
        n: u64,
        /// The other file with that shard.
        other: String,
    },
    /// A shard without its `done` line or with units missing.
    #[error(
        "{file}: shard {index}/{n} is unfinished ({have} of {expected} units): run it again with --resume"
    )]
    Unfinished {
        /// The file.
        file: String,
        /// Shard number.
        index: u64,
        /// Split.
        n: u64,
        /// Units written.
        have: u64,
        /// Units it should have.
        expected: u64,
    },
    /// Shards missing from the set.
    #[error("shard {missing} missing: the files given ({given}) are not the whole sweep")]
    Missing {
        /// `i/n, …`.
        missing: String,
        /// The files given, comma-separated.
        given: String,
    },
}

/// Parses `i/n` (1 ≤ i ≤ n) into `(i - 1, n)`.
pub fn parse_shard(s: &str) -> Result<(u64, u64), ShardError> {
    let bad = || ShardError::BadArg(s.to_string());
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i - 1, n))
}

/// Whether unit number `unit` (seed position × steps + step group) is in shard `(k, n)`.
pub fn in_shard(unit: u64, (k, n): (u64, u64)) -> bool {
    unit % n == k
}

/// A shard file, read.
#[derive(Debug, Clone)]
pub struct ShardFile {
    /// The sweep.
    pub sweep: Sweep,
    /// `[i, n]`.
    pub shard: [u64; 2],
    /// Units the shard has.
    pub units_expected: u64,
    /// Units written.
    pub units: Vec<UnitRecord>,
    /// The `done` line's figures, if the shard finished.
    pub done: Option<(u64, f64)>,
    /// Bytes up to the end of the last whole line (a torn line after it is cut on resume).
    pub good_len: u64,
}

/// Reads a shard file. A last line without its newline (the process was killed while writing
/// it) is ignored; any other bad line is an error naming the file and line.
pub fn read_shard(path: &Path) -> Result<ShardFile, ShardError> {
    let file = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ShardError::Read {
        file: file(),
        message: e.to_string(),
    })?;
    let mut header: Option<(Sweep, [u64; 2], u64)> = None;
    let (mut units, mut done, mut good_len) = (Vec::new(), None, 0u64);
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let whole = raw.ends_with('\n');
        let line: Line = match serde_json::from_str(raw.trim_end()) {
            Ok(l) => l,
            Err(_) if !whole => break,
            Err(e) => {
                return Err(ShardError::BadLine {
                    file: file(),
                    line: n + 1,
                    message: e.to_string(),
                });
            }
        };
        if !whole {
            break;
        }
        good_len += raw.len() as u64;
        match (line, &header) {
            (
                Line::Sweep {
                    sweep,
                    shard,
                    units,
                    ..
                },
                None,
            ) if n == 0 => {
                header = Some((sweep, shard, units));
            }
            (_, None) => {
                return Err(ShardError::NotAShard(file()));
            }
            (Line::Sweep { .. }, Some(_)) => {
                return Err(ShardError::SecondSweep {
                    file: file(),
                    line: n + 1,
                });
            }
            (Line::Unit(u), Some(_)) => units.push(u),
            (Line::Done { simulated, wall_s }, Some(_)) => done = Some((simulated, wall_s)),
        }
    }
    let (sweep, shard, units_expected) = header.ok_or_else(|| ShardError::Empty(file()))?;
    Ok(ShardFile {
        sweep,
        shard,
        units_expected,
        units,
        done,
        good_len,
    })
}

/// The first field in which two sweeps differ, with both values.
pub fn difference(a: &Sweep, b: &Sweep) -> Option<(String, String, String)> {
    let (ja, jb) = (serde_json::to_value(a).ok()?, serde_json::to_value(b).ok()?);
    let (oa, ob) = (ja.as_object()?, jb.as_object()?);
    oa.iter()
        .find(|(k, v)| ob.get(*k) != Some(*v))
        .map(|(k, v)| {
            (
                k.clone(),
                v.to_string(),
                ob.get(k).map_or("-".into(), |x| x.to_string()),
            )
        })
}

/// Checks that `files` are every shard of one sweep exactly once, each finished; returns them
/// ordered by shard. Errors name the file at fault.
pub fn check_set(files: Vec<(String, ShardFile)>) -> Result<Vec<(String, ShardFile)>, ShardError> {
    let Some((first_name, first)) = files.first() else {
        return Err(ShardError::NoFiles);
    };
    let n = first.shard[1];
    let mut by_index: BTreeMap<u64, &str> = BTreeMap::new();
    for (name, f) in &files {
        if let Some((field, got, want)) = difference(&f.sweep, &first.sweep) {
            return Err(ShardError::OtherSweep {
                file: name.clone(),
                field,
                got,
                first: first_name.clone(),
                want,
            });
        }
        if f.shard[1] != n {
            return Err(ShardError::OtherSplit {
                file: name.clone(),
                index: f.shard[0],
                ways: f.shard[1],
                first: first_name.clone(),
                n,
            });
        }
        if let Some(other) = by_index.insert(f.shard[0], name) {
            return Err(ShardError::Twice {
                file: name.clone(),
                index: f.shard[0],
                n,
                other: other.to_string(),
            });
        }
        let have = f.units.len() as u64;
        if f.done.is_none() || have != f.units_expected {
            return Err(ShardError::Unfinished {
                file: name.clone(),
                index: f.shard[0],
                n,
                have,
                expected: f.units_expected,
            });
        }
    }
    let missing: Vec<String> = (1..=n)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        let given: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        return Err(ShardError::Missing {
            missing: missing.join(", "),
            given: given.join(", "),
        });
    }
    let mut files = files;
    files.sort_by_key(|(_, f)| f.shard[0]);
    Ok(files)
}

/// JUnit for a sweep (whole or merged): one test case per (seed, first-fault step) unit,
/// failed when it had an unsafe run; the body lists the unit's unsafe runs (the first 10),
/// each with its problems and replay line.
pub fn junit(sweep: &Sweep, units: &[&UnitRecord]) -> quick_junit::Report {
    let class = crate::output::classname("explore", Path::new(&sweep.plan));
    let cases = units
        .iter()
        .map(|u| {
            let failure = (u.unsafe_runs > 0).then(|| {
                let message = format!(
                    "{} unsafe runs of {} (seed {}, first fault at step {})",
                    u.unsafe_runs, u.runs, u.seed, u.step
                );
                let unsafe_: Vec<_> = u
                    .findings
                    .iter()
                    .filter(|f| f.class == Class::Unsafe)
                    .collect();
                let mut body = format!("{message}\n");
                for f in unsafe_.iter().take(10) {
                    let faults: Vec<String> = f.faults.iter().map(ToString::to_string).collect();
                    body += &format!(
                        "seed {} faults {}: unsafe: {}\n  replay: {}\n",
                        f.seed,
                        faults.join(" "),
                        f.problems.join("; "),
                        super::summary::replay_line(sweep, f.seed, &faults)
                    );
                }
                if unsafe_.len() > 10 {
                    body += &format!("... and {} more findings\n", unsafe_.len() - 10);
                }
                (message, body)
            });
            let name = format!("seed {} first fault at step {}", u.seed, u.step);
            crate::output::case(&class, &name, failure, 0.0)
        })
        .collect();
    crate::output::report("rehearse explore", &class, cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_units() {
        for n in 1..6u64 {
            for u in 0..50u64 {
                let owners = (0..n).filter(|&k| in_shard(u, (k, n))).count();
                assert_eq!(owners, 1);
            }
        }
        assert_eq!(parse_shard("2/4"), Ok((1, 4)));
        assert!(parse_shard("0/4").is_err());
        assert!(parse_shard("5/4").is_err());
        assert!(parse_shard("x").is_err());
    }
}
