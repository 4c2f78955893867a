//! The space of fault pairs, pruned of pairs that are provably the same run as another, and a
//! stratified, seeded sample of it.
//!
//! A pair is two single faults at different step boundaries, the earlier one first (the
//! explorer's `--faults 2`). Two rules hold on every seed, so they prune before anything runs:
//! - a graceful stop and a kill -9 are the same run, fault for fault (`FaultKind::same_run_as`),
//!   so only crashes are kept;
//! - a fault that never heals (`FaultKind::heals`: bad binary, crash loop, wiped data, new
//!   address) lasts as long whatever its duration, so only the permanent one is kept.
//!
//! What is left is indexed, not materialized: pair `p` is computed from its index, so a sample
//! of 20,000 out of millions costs 20,000 pairs of memory. Pairs that turn out to be the same run
//! only on a given seed (the second fault lands after the run ended, misses, or hits a server the
//! first one took down for good) are found while running: see `super::pairs`.

use super::explore::single_faults;
use super::fault::{Fault, FaultKind, Target};
use rehearse_sim::rng::SimRng;
use serde::Serialize;
use std::collections::BTreeSet;
use std::ops::Range;

/// Whether a single fault is the one kept among those that are provably the same run.
pub fn canonical(f: &Fault) -> bool {
    f.kind.same_run_as() == f.kind && (f.kind.heals() || f.duration_s.is_none())
}

/// Ordered pairs of distinct single faults, indexed.
#[derive(Debug, Clone)]
pub struct PairSpace {
    /// The kept single faults, ordered by step (then kind, target, duration).
    singles: Vec<Fault>,
    /// For each single: the index of the first single at a later step.
    later: Vec<usize>,
    /// `cum[i]`: pairs whose first fault comes before single `i`; one more entry than singles.
    cum: Vec<u64>,
    /// Ordered pairs at different steps before pruning.
    raw: u64,
}

/// The first index in `faults` (ordered by step) whose step is after `step`.
fn first_after(faults: &[Fault], step: usize) -> usize {
    faults.partition_point(|f| f.step <= step)
}

impl PairSpace {
    /// The pair space over the step boundaries `steps`.
    pub fn new(steps: &[usize]) -> PairSpace {
        let all = single_faults(steps);
        let raw = all
            .iter()
            .map(|f| (all.len() - first_after(&all, f.step)) as u64)
            .sum();
        let singles: Vec<Fault> = all.into_iter().filter(canonical).collect();
        let later: Vec<usize> = singles
            .iter()
            .map(|f| first_after(&singles, f.step))
            .collect();
        let mut cum = Vec::with_capacity(singles.len() + 1);
        let mut sum = 0u64;
        cum.push(0);
        for &l in &later {
            sum += (singles.len() - l) as u64;
            cum.push(sum);
        }
        PairSpace {
            singles,
            later,
            cum,
            raw,
        }
    }

    /// Distinct pairs (after pruning).
    pub fn len(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// Whether there is no pair at all (fewer than two step boundaries).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ordered pairs at different steps before pruning.
    pub fn raw(&self) -> u64 {
        self.raw
    }

    /// Pair number `p` (`p < len()`).
    pub fn pair(&self, p: u64) -> [Fault; 2] {
        assert!(p < self.len(), "pair {p} out of {}", self.len());
        let i = self.cum.partition_point(|&c| c <= p) - 1;
        let j = self.later[i] + (p - self.cum[i]) as usize;
        [self.singles[i], self.singles[j]]
    }

    /// The strata: pair-index ranges sharing the first fault's kind, role and step (contiguous,
    /// since singles are ordered by step, kind, target, duration). Empty ones are left out.
    pub fn strata(&self) -> Vec<Range<u64>> {
        let key = |f: &Fault| (f.step, f.kind, f.target);
        let mut out: Vec<Range<u64>> = Vec::new();
        let mut start = 0;
        for i in 1..=self.singles.len() {
            if i == self.singles.len() || key(&self.singles[i]) != key(&self.singles[start]) {
                let r = self.cum[start]..self.cum[i];
                if !r.is_empty() {
                    out.push(r);
                }
                start = i;
            }
        }
        out
    }

    /// `n` distinct pair indices (all of them when `n >= len()`), ascending, stratified by the
    /// first fault's kind × role × step: every stratum gets at least one pair when `n` is at
    /// least the number of strata, the rest is shared in proportion to the strata's sizes
    /// (largest remainders first, ties to the earlier stratum), and within a stratum pairs are
    /// drawn uniformly without replacement from a ChaCha8 stream named by `seed` and the
    /// stratum. The same arguments give the same sample on every machine.
    pub fn sample(&self, n: u64, seed: u64) -> Vec<u64> {
        if n >= self.len() {
            return (0..self.len()).collect();
        }
        let strata = self.strata();
        let quotas = quotas(&strata, n);
        let mut out = Vec::with_capacity(n as usize);
        for (s, (r, &q)) in strata.iter().zip(&quotas).enumerate() {
            let mut rng = SimRng::child(seed, &format!("pair-sample/{s}"));
            out.extend(
                floyd(&mut rng, r.end - r.start, q)
                    .into_iter()
                    .map(|i| r.start + i),
            );
        }
        out
    }
}

/// How many pairs each stratum gets out of `n` (less than the total).
fn quotas(strata: &[Range<u64>], n: u64) -> Vec<u64> {
    let sizes: Vec<u64> = strata.iter().map(|r| r.end - r.start).collect();
    let floor: u64 = u64::from(n >= sizes.len() as u64);
    let mut q: Vec<u64> = sizes.iter().map(|&s| s.min(floor)).collect();
    let rest_n = n - q.iter().sum::<u64>();
    let rest: Vec<u64> = sizes.iter().zip(&q).map(|(s, q)| s - q).collect();
    let rest_total: u64 = rest.iter().sum();
    if rest_total == 0 {
        return q;
    }
    // Largest remainder (Hamilton) apportionment, exact in u128.
    let mut rems: Vec<(u128, usize)> = Vec::with_capacity(rest.len());
    for (i, &r) in rest.iter().enumerate() {
        let exact = u128::from(rest_n) * u128::from(r);
        q[i] += (exact / u128::from(rest_total)) as u64;
        rems.push((exact % u128::from(rest_total), i));
    }
    let mut left = n - q.iter().sum::<u64>();
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in &rems {
        if left == 0 {
            break;
        }
        if q[i] < sizes[i] {
            q[i] += 1;
            left -= 1;
        }
    }
    q
}

/// `k` distinct values in `0..m`, ascending (Floyd's algorithm: k draws, no rejection loop).
fn floyd(rng: &mut SimRng, m: u64, k: u64) -> Vec<u64> {
    let mut chosen = BTreeSet::new();
    for j in (m - k)..m {
        let t = rng.range(0, j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    chosen.into_iter().collect()
}

/// Which fault kind × role combinations a set of pairs covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Kind × role combinations of the space missing as a first fault (`kind:role`).
    pub missing_first: Vec<String>,
    /// Kind × role combinations of the space missing as a second fault.
    pub missing_second: Vec<String>,
}

impl Coverage {
    /// The coverage of `pairs` against every kind × role that a pair can have.
    pub fn of(pairs: impl Iterator<Item = [Fault; 2]>) -> Coverage {
        let (mut first, mut second) = (BTreeSet::new(), BTreeSet::new());
        for [a, b] in pairs {
            first.insert((a.kind, a.target));
            second.insert((b.kind, b.target));
        }
        let all = kinds_and_roles();
        let missing = |seen: &BTreeSet<(FaultKind, Target)>| {
            all.iter()
                .filter(|k| !seen.contains(k))
                .map(|(k, t)| {
                    let f = Fault {
                        kind: *k,
                        target: *t,
                        step: 0,
                        duration_s: None,
                    };
                    let s = f.to_string();
                    s.split(':').take(2).collect::<Vec<_>>().join(":")
                })
                .collect()
        };
        Coverage {
            missing_first: missing(&first),
            missing_second: missing(&second),
        }
    }

    /// One line for people: what is covered, or what is missing.
    pub fn describe(&self) -> String {
        if self.missing_first.is_empty() && self.missing_second.is_empty() {
            return "every fault kind × role appears as first and second fault".to_string();
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(" ")
            }
        };
        format!(
            "missing as first fault: {}; missing as second fault: {}",
            list(&self.missing_first),
            list(&self.missing_second)
        )
    }
}

/// Every kind × role a kept pair can have (untargeted kinds have the role `leader` only).
fn kinds_and_roles() -> Vec<(FaultKind, Target)> {
    let singles = single_faults(&[0]);
    let mut out: Vec<(FaultKind, Target)> = singles
        .iter()
        .filter(|f| canonical(f))
        .map(|f| (f.kind, f.target))
        .collect();
    out.dedup();
    out
}

/// `n` with thousands separators (`3,100,000`), for summaries.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> PairSpace {
        PairSpace::new(&[0, 1, 3, 4, 7])
    }

    #[test]
    fn pairs_by_index_are_every_kept_pair_once_in_order() {
        let s = space();
        let kept: Vec<Fault> = single_faults(&[0, 1, 3, 4, 7])
            .into_iter()
            .filter(canonical)
            .collect();
        let mut all = Vec::new();
        for a in &kept {
            for b in kept.iter().filter(|b| b.step > a.step) {
                all.push([*a, *b]);
            }
        }
        assert_eq!(s.len(), all.len() as u64);
        for (p, want) in all.iter().enumerate() {
            assert_eq!(s.pair(p as u64), *want, "pair {p}");
        }
        let singles = single_faults(&[0, 1, 3, 4, 7]);
        let raw = singles
            .iter()
            .map(|a| singles.iter().filter(|b| b.step > a.step).count() as u64)
            .sum::<u64>();
        assert_eq!(s.raw(), raw);
        assert!(s.len() < raw);
    }

    #[test]
    fn samples_are_reproducible_distinct_and_stratified() {
        let s = space();
        let a = s.sample(500, 7);
        assert_eq!(a, s.sample(500, 7));
        assert_ne!(a, s.sample(500, 8));
        assert_eq!(a.len(), 500);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        // Every stratum is represented once there is room for it.
        for r in s.strata() {
            assert!(a.iter().any(|p| r.contains(p)), "stratum {r:?} unsampled");
        }
        let c = Coverage::of(a.iter().map(|&p| s.pair(p)));
        assert_eq!(c, Coverage::default(), "{}", c.describe());
        // Asking for more than there is gives everything.
        assert_eq!(s.sample(s.len() + 5, 1).len() as u64, s.len());
    }

    #[test]
    fn quotas_add_up_and_follow_sizes() {
        let strata = vec![0..10, 10..110, 110..111, 111..1111];
        let q = quotas(&strata, 101);
        assert_eq!(q.iter().sum::<u64>(), 101);
        assert!(q.iter().all(|&x| x >= 1));
        assert!(q[3] > q[1] && q[1] > q[0]);
        let q = quotas(&strata, 2);
        assert_eq!(q.iter().sum::<u64>(), 2);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(3_100_000), "3,100,000");
    }
}
