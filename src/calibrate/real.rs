//! The calibration scenarios on real Consul 1.8.7 servers (local processes on 127.0.0.x),
//! mirroring `sim.rs` step for step. Each trial starts a fresh cluster (new data dirs) so trials
//! do not influence each other.

use super::{CalibrateError, Scenario, Trial};
use crate::live::executor::{ExecOptions, ExecOutcome, execute};
use crate::live::local::{LocalConsul, LocalOptions};
use crate::plan::Plan;
use std::time::{Duration, Instant};

/// Gate settings of the `rolling-rehearse` plan (the plan defaults, with an instant install).
pub const ROLLING_REHEARSE_UPGRADE: &str = "install_time = \"500ms\"";

/// Options of a local calibration cluster at `base`.
pub fn options(consul: &std::path::Path, base: u8, dir: &std::path::Path) -> LocalOptions {
    LocalOptions {
        binary: consul.to_path_buf(),
        target_binary: None,
        base,
        servers: 3,
        token: None,
        dir: dir.to_path_buf(),
        upgrade_extra: ROLLING_REHEARSE_UPGRADE.into(),
        raft_protocol: (3, 3),
        probe: false,
        netns: false,
        tls: false,
    }
}

/// The plan `rolling-rehearse` runs, for the simulator's twin.
pub fn plan(consul: &std::path::Path) -> Result<Plan, CalibrateError> {
    let o = options(consul, 2, &std::env::temp_dir());
    Ok(Plan::from_str_named(
        &crate::live::local::plan_text(&o),
        "calibration plan",
    )?)
}

/// Runs one scenario on a fresh local cluster.
pub async fn run(s: Scenario, mut opts: LocalOptions) -> Result<Trial, CalibrateError> {
    opts.netns = s == Scenario::LeaderPartitioned;
    let c = LocalConsul::start(opts).await?;
    match s {
        Scenario::LeaderPartitioned => leader_partitioned(&c).await,
        Scenario::LeaderKill => Ok(leader_lost(&c, false).await),
        Scenario::LeaderPaused => Ok(leader_lost(&c, true).await),
        Scenario::FollowerRestart => follower_restart(&c).await,
        Scenario::TwoDownThenBack => two_down(&c).await,
        Scenario::RestartWithinRefresh => restart_within_refresh(&c).await,
        Scenario::RollingNaive => rolling_naive(&c).await,
        Scenario::RollingRehearse => rolling_rehearse(&c).await,
    }
}

async fn poll<F, Fut>(step_ms: u64, limit_s: u64, mut f: F) -> Option<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(limit_s) {
        if f().await {
            return Some(t0.elapsed().as_secs_f64());
        }
        tokio::time::sleep(Duration::from_millis(step_ms)).await;
    }
    None
}

async fn healthy(c: &LocalConsul, ft: i64) -> bool {
    c.health()
        .await
        .is_some_and(|h| h.healthy && h.failure_tolerance >= ft)
}

async fn leader(c: &LocalConsul) -> Result<(String, Vec<String>), CalibrateError> {
    let l = c.leader().await.ok_or(CalibrateError::NoLeader)?;
    let others = c.names().into_iter().filter(|n| *n != l).collect();
    Ok((l, others))
}

/// Seconds until a survivor sees a leader other than `old` (polled every 50 ms, ≤ 60 s).
async fn failover(c: &LocalConsul, old: &str, survivors: &[String]) -> Option<f64> {
    poll(50, 60, || async {
        for s in survivors {
            if c.leader_seen_by(s).await.is_some_and(|n| n != old) {
                return true;
            }
        }
        false
    })
    .await
}

/// The leader killed (or paused, then resumed once a survivor sees a new leader).
async fn leader_lost(c: &LocalConsul, pause: bool) -> Trial {
    let Ok((l, survivors)) = leader(c).await else {
        return Trial::new("no leader before");
    };
    if pause {
        c.pause(&l);
    } else {
        c.kill(&l);
    }
    let t = failover(c, &l, &survivors).await;
    if pause {
        c.resume(&l);
    }
    Trial::failover(t)
}

async fn leader_partitioned(c: &LocalConsul) -> Result<Trial, CalibrateError> {
    let (l, survivors) = leader(c).await?;
    c.partition(&l)?;
    let t = failover(c, &l, &survivors).await;
    c.heal(&l)?;
    Ok(Trial::failover(t))
}

async fn follower_restart(c: &LocalConsul) -> Result<Trial, CalibrateError> {
    let (l, others) = leader(c).await?;
    let f = others[0].clone();
    c.kill(&f);
    let detected = poll(100, 30, || async {
        c.health()
            .await
            .is_some_and(|h| h.servers.iter().any(|s| s.name == f && !s.healthy))
    })
    .await;
    c.start_server(&f, false).await?;
    let back = poll(100, 60, || healthy(c, 1)).await;
    let outcome = if c.leader().await.as_deref() == Some(l.as_str()) {
        "leader kept"
    } else {
        "leader changed"
    };
    let mut t = Trial::new(outcome);
    t = t.with_some("marked_unhealthy_s", detected);
    t = t.with_some("healthy_again_s", back);
    Ok(t)
}

async fn two_down(c: &LocalConsul) -> Result<Trial, CalibrateError> {
    let (l, others) = leader(c).await?;
    for f in &others {
        c.kill(f);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = if c.leader_seen_by(&l).await.is_some() {
        "leader kept"
    } else {
        "no leader"
    };
    for f in &others {
        c.start_server(f, false).await?;
    }
    let back = poll(50, 60, || async { c.leader().await.is_some() }).await;
    let mut t = Trial::new(&format!(
        "{during}, then {}",
        if back.is_some() { "re-elected" } else { "none" }
    ));
    t = t.with_some("leader_after_restart_s", back);
    Ok(t)
}

async fn restart_within_refresh(c: &LocalConsul) -> Result<Trial, CalibrateError> {
    let (_, others) = leader(c).await?;
    let f = others[0].clone();
    c.stop_server(&f).await?;
    c.start_server(&f, false).await?;
    let client = c
        .cluster
        .client(&f)
        .ok_or_else(|| CalibrateError::NoClient(f.clone()))?
        .clone();
    let t0 = Instant::now();
    let (mut gate, mut rejoined) = (None, None);
    while t0.elapsed() < Duration::from_secs(60) {
        let now = t0.elapsed().as_secs_f64();
        let passes = c.health().await.is_some_and(|h| {
            h.healthy
                && h.failure_tolerance >= 1
                && h.servers.iter().any(|s| s.name == f && s.healthy)
        });
        if passes && gate.is_none() {
            gate = Some(now);
        }
        if rejoined.is_none() {
            let me = c.cluster.agent_self(&client).await;
            if me.is_ok_and(|a| a.raft.last_contact_ms.is_some()) {
                rejoined = Some(now);
            }
        }
        if gate.is_some() && rejoined.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(super::sim::stale_or_fresh(gate, rejoined))
}

async fn rolling_naive(c: &LocalConsul) -> Result<Trial, CalibrateError> {
    let (l, mut order) = leader(c).await?;
    order.push(l);
    let mut t = Trial::new("completed");
    let t0 = Instant::now();
    let mut leaderless_ms = 0u64;
    for (k, s) in order.iter().enumerate() {
        c.stop_server(s).await?;
        c.start_server(s, false).await?;
        let t_gate = Instant::now();
        let mut gate = None;
        while t_gate.elapsed() < Duration::from_secs(60) {
            if c.leader().await.is_none() {
                leaderless_ms += 100;
            }
            if healthy(c, 1).await {
                gate = Some(t_gate.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let Some(g) = gate else {
            return Ok(Trial::new("gate timeout"));
        };
        let name = if k + 1 == order.len() {
            "gate_leader_s".to_string()
        } else {
            format!("gate_follower{}_s", k + 1)
        };
        t = t.with(&name, g);
    }
    Ok(t.with("total_s", t0.elapsed().as_secs_f64())
        .with("leaderless_s", leaderless_ms as f64 / 1000.0))
}

async fn rolling_rehearse(c: &LocalConsul) -> Result<Trial, CalibrateError> {
    let plan_path = c.write_plan()?;
    let plan = Plan::from_path(&plan_path)?;
    let opts = ExecOptions {
        apply: true,
        journal: c.dir().join("journal.jsonl"),
        snapshot_dir: c.dir().to_path_buf(),
        addr: "http://127.0.0.1:8500".into(),
        conn: c.cluster.servers[0].1.connection().clone(),
    };
    let t0 = Instant::now();
    let (outcome, _) = execute(&plan, &c.plan_text, &opts).await?;
    let name = match outcome {
        ExecOutcome::Done(_) => "completed",
        ExecOutcome::Halted(_) => "halted",
        _ => "other",
    };
    Ok(Trial::new(name).with("total_s", t0.elapsed().as_secs_f64()))
}
