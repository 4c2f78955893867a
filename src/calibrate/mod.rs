//! Fidelity: the same scenarios on real Consul 1.8.7 servers and in the simulator with Consul's
//! parameters (raft_multiplier 5, serf LAN timing, autopilot defaults), compared by outcome
//! category and by timing distributions (median, p90, two-sample KS distance).
//!
//! Each scenario is written twice, once per world (`real.rs`, `sim.rs`), with the same steps and
//! the same definition of each measurement, so a difference is the model's, not the harness's.

pub mod real;
pub mod sim;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a calibration trial could not be run (the harness's failure, not a trial outcome).
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// The local Consul cluster could not be set up or driven.
    #[error(transparent)]
    Local(#[from] crate::live::local::LocalError),
    /// The generated plan did not parse.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// `rolling-rehearse` could not run the executor.
    #[error(transparent)]
    Exec(#[from] crate::live::executor::ExecError),
    /// The simulator refused its configuration.
    #[error(transparent)]
    Sim(#[from] rehearse_sim::SimError),
    /// No server reported a leader when the scenario was to begin.
    #[error("no leader before the scenario")]
    NoLeader,
    /// The cluster has no API client for a server it named.
    #[error("no client for {0}")]
    NoClient(String),
    /// The simulated cluster never had a leader and healthy autopilot.
    #[error("seed {0}: the simulated cluster never settled")]
    NeverSettled(u64),
}

/// The scenarios, in table order.
pub const SCENARIOS: [Scenario; 8] = [
    Scenario::LeaderKill,
    Scenario::FollowerRestart,
    Scenario::TwoDownThenBack,
    Scenario::LeaderPaused,
    Scenario::LeaderPartitioned,
    Scenario::RestartWithinRefresh,
    Scenario::RollingNaive,
    Scenario::RollingRehearse,
];

/// One differential scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// kill -9 the leader; time until a survivor reports another leader.
    LeaderKill,
    /// kill -9 a follower; time until autopilot marks it unhealthy; restart it; time until
    /// autopilot is Healthy with failure tolerance 1 again.
    FollowerRestart,
    /// kill -9 both followers: is there a leader 10 s later? Restart both: time to a leader.
    TwoDownThenBack,
    /// SIGSTOP the leader (gray failure); time until a survivor reports another leader.
    LeaderPaused,
    /// Cut the leader off the network (each server in its own network namespace); time until
    /// a survivor reports another leader.
    LeaderPartitioned,
    /// Stop a follower gracefully and start it at once: does a gate reading only
    /// Healthy ∧ FT ≥ 1 pass before the server has heard from a leader again?
    RestartWithinRefresh,
    /// Rolling restart, followers then leader, each gated on Healthy ∧ FT ≥ 1 only.
    RollingNaive,
    /// Rolling restart driven by rehearse's procedure (its gate), as `execute --apply` runs it.
    RollingRehearse,
}

impl Scenario {
    /// Kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::LeaderKill => "leader-kill",
            Scenario::FollowerRestart => "follower-restart",
            Scenario::TwoDownThenBack => "two-down-then-back",
            Scenario::LeaderPaused => "leader-paused",
            Scenario::LeaderPartitioned => "leader-partitioned",
            Scenario::RestartWithinRefresh => "restart-within-refresh",
            Scenario::RollingNaive => "rolling-naive",
            Scenario::RollingRehearse => "rolling-rehearse",
        }
    }

    /// Parses a kebab-case name.
    pub fn parse(text: &str) -> Option<Scenario> {
        SCENARIOS.into_iter().find(|s| s.name() == text.trim())
    }
}

/// One run of a scenario in either world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Outcome category, e.g. `re-elected`.
    pub outcome: String,
    /// Measurements in seconds, by name.
    pub timings: BTreeMap<String, f64>,
}

impl Trial {
    /// A trial with an outcome and no timings yet.
    pub fn new(outcome: &str) -> Trial {
        Trial {
            outcome: outcome.to_string(),
            timings: BTreeMap::new(),
        }
    }

    /// Adds a timing.
    pub fn with(mut self, name: &str, seconds: f64) -> Trial {
        self.timings.insert(name.to_string(), seconds);
        self
    }

    /// The outcome of a failover trial: re-elected after `t` seconds, or no leader within the
    /// 60 s bound.
    pub fn failover(t: Option<f64>) -> Trial {
        match t {
            Some(t) => Trial::new("re-elected").with("failover_s", t),
            None => Trial::new("no leader in 60 s"),
        }
    }

    /// Adds a timing if it was measured (a condition that never came within the bound has none).
    pub fn with_some(self, name: &str, seconds: Option<f64>) -> Trial {
        match seconds {
            Some(s) => self.with(name, s),
            None => self,
        }
    }
}

/// Real and simulated trials of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Runs {
    /// The scenario.
    pub scenario: Scenario,
    /// Trials on real servers.
    pub real: Vec<Trial>,
    /// Trials in the simulator (one per seed).
    pub sim: Vec<Trial>,
}

/// One timing compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingRow {
    /// Measurement name.
    pub name: String,
    /// Real median (s).
    pub real_median: f64,
    /// Real p90 (s).
    pub real_p90: f64,
    /// Simulated median (s).
    pub sim_median: f64,
    /// Simulated p90 (s).
    pub sim_p90: f64,
    /// Two-sample Kolmogorov–Smirnov distance.
    pub ks: f64,
    /// Simulated median / real median − 1.
    pub median_error: f64,
}

/// A scenario compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The scenario.
    pub scenario: Scenario,
    /// Real outcome shares.
    pub real_outcomes: BTreeMap<String, usize>,
    /// Simulated outcome shares.
    pub sim_outcomes: BTreeMap<String, usize>,
    /// Outcome agreement: 1 − total variation distance between the two outcome distributions.
    pub agreement: f64,
    /// Timings present in both worlds.
    pub timings: Vec<TimingRow>,
}

/// The median (the lower middle for even counts, so it is an observed value), as every
/// command reports it (`crate::stats`); NaN for no values.
pub fn median(v: &[f64]) -> f64 {
    crate::stats::median_f64(v).unwrap_or(f64::NAN)
}

/// The q-quantile by nearest rank.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

/// Two-sample Kolmogorov–Smirnov distance: the largest gap between the empirical CDFs.
pub fn ks_distance(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return f64::NAN;
    }
    let mut points: Vec<f64> = a.iter().chain(b).copied().collect();
    points.sort_by(f64::total_cmp);
    let cdf = |v: &[f64], x: f64| v.iter().filter(|y| **y <= x).count() as f64 / v.len() as f64;
    points
        .iter()
        .map(|x| (cdf(a, *x) - cdf(b, *x)).abs())
        .fold(0.0, f64::max)
}

fn shares(trials: &[Trial]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for t in trials {
        *m.entry(t.outcome.clone()).or_insert(0) += 1;
    }
    m
}

/// Compares the real and simulated trials of one scenario.
pub fn compare(runs: &Runs) -> Comparison {
    let real_outcomes = shares(&runs.real);
    let sim_outcomes = shares(&runs.sim);
    let p = |m: &BTreeMap<String, usize>, k: &str, n: usize| {
        m.get(k).copied().unwrap_or(0) as f64 / n.max(1) as f64
    };
    let keys: std::collections::BTreeSet<&String> =
        real_outcomes.keys().chain(sim_outcomes.keys()).collect();
    let agreement = keys
        .iter()
        .map(|k| p(&real_outcomes, k, runs.real.len()).min(p(&sim_outcomes, k, runs.sim.len())))
        .sum();
    let names: std::collections::BTreeSet<&String> =
        runs.real.iter().flat_map(|t| t.timings.keys()).collect();
    let mut timings = Vec::new();
    for name in names {
        let get = |ts: &[Trial]| -> Vec<f64> {
            ts.iter()
                .filter_map(|t| t.timings.get(name).copied())
                .collect()
        };
        let (r, s) = (get(&runs.real), get(&runs.sim));
        if r.is_empty() || s.is_empty() {
            continue;
        }
        timings.push(TimingRow {
            name: name.clone(),
            real_median: median(&r),
            real_p90: quantile(&r, 0.9),
            sim_median: median(&s),
            sim_p90: quantile(&s, 0.9),
            ks: ks_distance(&r, &s),
            median_error: median(&s) / median(&r) - 1.0,
        });
    }
    Comparison {
        scenario: runs.scenario,
        real_outcomes,
        sim_outcomes,
        agreement,
        timings,
    }
}

/// Whether a comparison meets the goal: outcome agreement ≥ 95 % and every median within ±25 %
/// (medians under 1 s are compared within ±0.25 s instead: a ratio of tiny numbers is noise).
pub fn meets_goal(c: &Comparison) -> bool {
    c.agreement >= 0.95
        && c.timings.iter().all(|t| {
            if t.real_median < 1.0 {
                (t.sim_median - t.real_median).abs() <= 0.25
            } else {
                t.median_error.abs() <= 0.25
            }
        })
}

/// The comparison table as text (Markdown).
pub fn table(comparisons: &[Comparison]) -> String {
    let mut out = String::from(
        "| scenario | outcome real | outcome sim | agreement | measure | real median (p90) | sim median (p90) | KS | median error |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let fmt_outcomes = |m: &BTreeMap<String, usize>| {
        m.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for c in comparisons {
        let head = format!(
            "| {} | {} | {} | {:.0}% |",
            c.scenario.name(),
            fmt_outcomes(&c.real_outcomes),
            fmt_outcomes(&c.sim_outcomes),
            c.agreement * 100.0
        );
        if c.timings.is_empty() {
            out.push_str(&format!("{head} | | | | |\n"));
        }
        for (i, t) in c.timings.iter().enumerate() {
            let lead = if i == 0 {
                head.clone()
            } else {
                "| | | | |".to_string()
            };
            // Under 1 s a ratio is noise: show the difference in seconds (what the goal uses).
            let error = if t.real_median < 1.0 {
                format!("{:+.2} s", t.sim_median - t.real_median)
            } else {
                format!("{:+.0}%", t.median_error * 100.0)
            };
            out.push_str(&format!(
                "{lead} {} | {:.2} s ({:.2}) | {:.2} s ({:.2}) | {:.2} | {error} |\n",
                t.name, t.real_median, t.real_p90, t.sim_median, t.sim_p90, t.ks,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(
            quantile(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9),
            9.0
        );
        assert_eq!(ks_distance(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert_eq!(ks_distance(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        let runs = Runs {
            scenario: Scenario::LeaderKill,
            real: vec![
                Trial::new("a").with("t", 10.0),
                Trial::new("a").with("t", 12.0),
            ],
            sim: vec![
                Trial::new("a").with("t", 11.0),
                Trial::new("b").with("t", 13.0),
                Trial::new("a").with("t", 12.0),
                Trial::new("a").with("t", 12.0),
            ],
        };
        let c = compare(&runs);
        assert!((c.agreement - 0.75).abs() < 1e-9);
        assert_eq!(c.timings[0].real_median, 10.0);
        assert_eq!(c.timings[0].sim_median, 12.0);
        assert!(!meets_goal(&c));
    }
}
