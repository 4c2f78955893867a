//! The calibration scenarios in the simulator, with Consul 1.8.7's parameters. Each function
//! mirrors its twin in `real.rs` step for step; polls use the same intervals.

use super::{CalibrateError, Scenario, Trial};
use crate::plan::Plan;
use crate::procedure::ProcedureConfig;
use crate::rehearsal::{Verdict, rehearse, sim_config};
use rehearse_model::time::{MS, SEC};
use rehearse_sim::{ServerId, SimConfig, StopMode, World};

/// How long a gracefully stopped (SIGINT) Consul 1.8.7 server takes to exit: the real harness
/// waits for the process to exit before starting it again, and the executor's journal shows
/// 0.5–0.8 s between a stop and the next action. The simulator stops a process at once, so the
/// twin waits this long.
pub const GRACEFUL_EXIT_MS: u64 = 500;

/// Runs one scenario on one seed. `plan` is the Consul plan `rolling-rehearse` executes.
pub fn run(s: Scenario, seed: u64, plan: &Plan) -> Result<Trial, CalibrateError> {
    if s == Scenario::RollingRehearse {
        return rolling_rehearse(plan, seed);
    }
    let mut w = World::new(SimConfig::consul(3, seed))?;
    // Like the real harness, the scenario starts as soon as autopilot first reports the
    // cluster healthy, i.e. just after a health refresh (the phase matters: see follower-restart).
    settle(&mut w)?;
    Ok(match s {
        Scenario::LeaderKill => leader_lost(&mut w, false),
        Scenario::LeaderPaused => leader_lost(&mut w, true),
        Scenario::LeaderPartitioned => leader_partitioned(&mut w),
        Scenario::FollowerRestart => follower_restart(&mut w),
        Scenario::TwoDownThenBack => two_down(&mut w),
        Scenario::RestartWithinRefresh => restart_within_refresh(&mut w),
        Scenario::RollingNaive => rolling_naive(&mut w),
        Scenario::RollingRehearse => unreachable_trial(),
    })
}

fn unreachable_trial() -> Trial {
    Trial::new("not run")
}

/// Polls `f` every `step_ms` for at most `limit_s`; returns the seconds it took.
fn poll(
    w: &mut World,
    step_ms: u64,
    limit_s: u64,
    mut f: impl FnMut(&mut World) -> bool,
) -> Option<f64> {
    let t0 = w.now();
    let steps = limit_s * 1000 / step_ms;
    for _ in 0..steps {
        if f(w) {
            return Some(w.now().since(t0) as f64 / 1e9);
        }
        w.run_for(step_ms * MS);
    }
    None
}

fn healthy(w: &World, ft: i64) -> bool {
    health(w).is_some_and(|h| h.healthy && h.failure_tolerance >= ft)
}

fn health(w: &World) -> Option<rehearse_model::api::AutopilotHealth> {
    (0..w.server_count()).find_map(|i| w.autopilot_health(i).ok())
}

/// The leader a server reports (as a server id).
fn leader_seen_by(w: &World, via: ServerId) -> Option<ServerId> {
    let addr = w.status_leader(via).ok().flatten()?;
    (0..w.server_count()).find(|&i| w.address(i) == addr)
}

fn any_leader(w: &World) -> Option<ServerId> {
    (0..w.server_count()).find_map(|i| leader_seen_by(w, i))
}

fn settle(w: &mut World) -> Result<(), CalibrateError> {
    poll(w, 100, 120, |w| any_leader(w).is_some() && healthy(w, 1))
        .map(|_| ())
        .ok_or_else(|| CalibrateError::NeverSettled(w.seed()))
}

fn followers(w: &World, leader: ServerId) -> Vec<ServerId> {
    (0..w.server_count()).filter(|&i| i != leader).collect()
}

fn leader_lost(w: &mut World, pause: bool) -> Trial {
    let Some(l) = any_leader(w) else {
        return Trial::new("no leader before");
    };
    if pause {
        w.pause(l);
    } else {
        w.crash(l);
    }
    let survivors = followers(w, l);
    let t = poll(w, 50, 60, |w| {
        survivors
            .iter()
            .any(|&s| leader_seen_by(w, s).is_some_and(|n| n != l))
    });
    Trial::failover(t)
}

fn leader_partitioned(w: &mut World) -> Trial {
    let Some(l) = any_leader(w) else {
        return Trial::new("no leader before");
    };
    let survivors = followers(w, l);
    w.partition(&[l], &survivors);
    let t = poll(w, 50, 60, |w| {
        survivors
            .iter()
            .any(|&s| leader_seen_by(w, s).is_some_and(|n| n != l))
    });
    w.heal();
    Trial::failover(t)
}

fn follower_restart(w: &mut World) -> Trial {
    let Some(l) = any_leader(w) else {
        return Trial::new("no leader before");
    };
    let f = followers(w, l)[0];
    let name = w.server_name(f).to_string();
    w.crash(f);
    let unhealthy = |w: &mut World| {
        health(w).is_some_and(|h| h.servers.iter().any(|s| s.name == name && !s.healthy))
    };
    let detected = poll(w, 100, 30, unhealthy);
    w.start(f);
    let back = poll(w, 100, 60, |w| healthy(w, 1));
    let outcome = if any_leader(w) == Some(l) {
        "leader kept"
    } else {
        "leader changed"
    };
    let mut t = Trial::new(outcome);
    t = t.with_some("marked_unhealthy_s", detected);
    t = t.with_some("healthy_again_s", back);
    t
}

fn two_down(w: &mut World) -> Trial {
    let Some(l) = any_leader(w) else {
        return Trial::new("no leader before");
    };
    let fs = followers(w, l);
    for &f in &fs {
        w.crash(f);
    }
    w.run_for(10 * SEC);
    let during = if leader_seen_by(w, l).is_some() {
        "leader kept"
    } else {
        "no leader"
    };
    for &f in &fs {
        w.start(f);
    }
    let back = poll(w, 50, 60, |w| any_leader(w).is_some());
    let mut t = Trial::new(&format!(
        "{during}, then {}",
        if back.is_some() { "re-elected" } else { "none" }
    ));
    t = t.with_some("leader_after_restart_s", back);
    t
}

fn restart_within_refresh(w: &mut World) -> Trial {
    let Some(l) = any_leader(w) else {
        return Trial::new("no leader before");
    };
    let f = followers(w, l)[0];
    let name = w.server_name(f).to_string();
    w.stop(f, StopMode::Graceful);
    w.run_for(GRACEFUL_EXIT_MS * MS);
    w.start(f);
    let mut gate = None;
    let mut rejoined = None;
    let t0 = w.now();
    for _ in 0..600 {
        let now = w.now().since(t0) as f64 / 1e9;
        let passes = health(w).is_some_and(|h| {
            h.healthy
                && h.failure_tolerance >= 1
                && h.servers.iter().any(|s| s.name == name && s.healthy)
        });
        if passes && gate.is_none() {
            gate = Some(now);
        }
        let heard = w
            .agent_self(f)
            .is_ok_and(|a| a.raft.last_contact_ms.is_some());
        if heard && rejoined.is_none() {
            rejoined = Some(now);
        }
        if gate.is_some() && rejoined.is_some() {
            break;
        }
        w.run_for(100 * MS);
    }
    stale_or_fresh(gate, rejoined)
}

/// The outcome of `restart-within-refresh`, shared by both worlds.
pub fn stale_or_fresh(gate: Option<f64>, rejoined: Option<f64>) -> Trial {
    let outcome = match (gate, rejoined) {
        // The gate passed before the server had heard from a leader (or never did).
        (Some(g), Some(r)) if g < r => "stale pass",
        (Some(_), None) => "stale pass",
        (Some(_), Some(_)) => "fresh pass",
        (None, _) => "gate never passed",
    };
    let mut t = Trial::new(outcome);
    t = t.with_some("naive_gate_s", gate);
    t = t.with_some("rejoined_s", rejoined);
    t
}

fn rolling_naive(w: &mut World) -> Trial {
    let Some(l) = any_leader(w) else {
        return Trial::new("no leader before");
    };
    let mut order = followers(w, l);
    order.push(l);
    let mut t = Trial::new("completed");
    let t0 = w.now();
    let mut leaderless_ms = 0u64;
    for (k, &s) in order.iter().enumerate() {
        w.stop(s, StopMode::Graceful);
        w.run_for(GRACEFUL_EXIT_MS * MS);
        w.start(s);
        let gate = poll(w, 100, 60, |w| {
            if any_leader(w).is_none() {
                leaderless_ms += 100;
            }
            healthy(w, 1)
        });
        let Some(g) = gate else {
            return Trial::new("gate timeout");
        };
        let name = if k + 1 == order.len() {
            "gate_leader_s".to_string()
        } else {
            format!("gate_follower{}_s", k + 1)
        };
        t = t.with(&name, g);
    }
    let total = w.now().since(t0) as f64 / 1e9;
    t.with("total_s", total)
        .with("leaderless_s", leaderless_ms as f64 / 1000.0)
}

fn rolling_rehearse(plan: &Plan, seed: u64) -> Result<Trial, CalibrateError> {
    let cfg = ProcedureConfig::from_plan(plan);
    let o = rehearse(&cfg, sim_config(plan, seed))?;
    let outcome = match o.verdict {
        Verdict::Completed => "completed",
        Verdict::Halted { .. } => "halted",
        Verdict::Unsafe { .. } => "unsafe",
        Verdict::LostAllocations { .. } => "lost_allocations",
        Verdict::StalledWorkload { .. } => "stalled_workload",
    };
    Ok(Trial::new(outcome).with("total_s", o.duration_ms as f64 / 1000.0))
}
