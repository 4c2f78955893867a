//! Recommendations: changes to the plan, each re-simulated through the same model on the same
//! seeds. A change is recommended only if it applies to the plan and measurably improves it
//! without making anything worse; the others are listed with their numbers and the reason.

use super::ReportError;
use super::assess::{Assessment, assess};
use super::model::{Numbers, Recommendation};
use super::risk::FailureRate;
use crate::plan::{Order, Plan, ServerEntry};
use rehearse_model::versions::{Edition, Product, Version, known_issues_for, line_info};

/// A candidate change.
pub struct Candidate {
    /// Stable id.
    pub id: &'static str,
    /// What to do.
    pub title: String,
    /// The change, as plan-file lines.
    pub change: String,
    /// The changed plan.
    pub plan: Plan,
}

/// Relative improvement below which a change is noise.
pub const MIN_GAIN: f64 = 0.05;
/// Leader-step unavailability differences below this are noise (ms).
pub const MIN_GAIN_MS: u64 = 100;

/// The changes that apply to `plan`, in a fixed order.
pub fn candidates(plan: &Plan) -> Vec<Candidate> {
    let mut add = Adder {
        plan,
        out: Vec::new(),
    };
    order_candidates(plan, &mut add);
    temporary_servers(plan, &mut add);
    gate_candidates(plan, &mut add);
    autopilot_candidates(plan, &mut add);
    target_candidate(plan, &mut add);
    add.out
}

/// Collects candidates, each the plan with one edit.
struct Adder<'p> {
    plan: &'p Plan,
    out: Vec<Candidate>,
}

impl Adder<'_> {
    fn add(&mut self, id: &'static str, title: String, change: String, edit: &dyn Fn(&mut Plan)) {
        let mut p = self.plan.clone();
        edit(&mut p);
        self.out.push(Candidate {
            id,
            title,
            change,
            plan: p,
        });
    }
}

/// Transfer leadership first; the leader last.
fn order_candidates(plan: &Plan, add: &mut Adder<'_>) {
    let c = &plan.cluster;
    let u = &plan.upgrade;
    let api = line_info(c.product, c.version).is_ok_and(|l| l.transfer_leadership_api);
    if c.product == Product::Nomad && api && !u.transfer_leadership {
        add.add(
            "transfer-leadership",
            "Transfer leadership before the leader's step".into(),
            "upgrade.transfer_leadership = true".into(),
            &|p| p.upgrade.transfer_leadership = true,
        );
    }
    if u.order != Order::FollowersThenLeader {
        add.add(
            "leader-last",
            "Upgrade the followers first and the leader last".into(),
            "upgrade.order = \"followers-then-leader\"".into(),
            &|p| p.upgrade.order = Order::FollowersThenLeader,
        );
    }
}

/// Temporary servers for a cluster with no tolerance while one is down.
fn temporary_servers(plan: &Plan, add: &mut Adder<'_>) {
    let n = plan.cluster.servers.len();
    let tolerance_one_down = |n: usize| n as i64 - 1 - (n / 2 + 1) as i64;
    if tolerance_one_down(n) == 0 {
        let extra = (n + 1..=n + 3)
            .find(|&m| tolerance_one_down(m) >= 1)
            .map_or(2, |m| m - n);
        for k in [1, extra] {
            let names: Vec<String> = (1..=k).map(|i| format!("temp{i}")).collect();
            add.add(
                if k == 1 {
                    "temporary-server"
                } else {
                    "temporary-servers"
                },
                format!(
                    "Add {k} temporary server{} ({} voters) for the upgrade",
                    if k == 1 { "" } else { "s" },
                    n + k
                ),
                format!(
                    "cluster.servers += {} (simulated as upgraded with the others: conservative)",
                    names.join(", ")
                ),
                &|p| {
                    for name in &names {
                        p.cluster.servers.push(ServerEntry {
                            name: name.clone(),
                            address: None,
                            client: false,
                        });
                    }
                },
            );
        }
    }
}

/// A gate that waits long enough, on fresh health and voter status.
fn gate_candidates(plan: &Plan, add: &mut Adder<'_>) {
    let c = &plan.cluster;
    let u = &plan.upgrade;
    let stab = c.autopilot.server_stabilization_time;
    let want = stab.max(10_000_000_000);
    if u.gate.stable_for < want {
        add.add(
            "raise-stable-for",
            "Raise the gate's stable_for to at least server_stabilization_time".into(),
            format!(
                "upgrade.gate.stable_for = \"{}\"",
                crate::bounds::fmt_ns(want)
            ),
            &|p| p.upgrade.gate.stable_for = want,
        );
    }
    if !u.gate.require_fresh_health || !u.gate.require_voter {
        add.add(
            "fresh-gate",
            "Gate on health observed after the restart, and on voter status".into(),
            "upgrade.gate.require_fresh_health = true, require_voter = true".into(),
            &|p| {
                p.upgrade.gate.require_fresh_health = true;
                p.upgrade.gate.require_voter = true;
            },
        );
    }
}

/// Autopilot settings that keep a pruned server out of the way.
fn autopilot_candidates(plan: &Plan, add: &mut Adder<'_>) {
    let c = &plan.cluster;
    let n = plan.cluster.servers.len();
    if c.autopilot.cleanup_dead_servers && c.autopilot.min_quorum < n {
        add.add(
            "min-quorum",
            format!("Set autopilot min_quorum = {n} during the upgrade"),
            format!("cluster.autopilot.min_quorum = {n}"),
            &|p| p.cluster.autopilot.min_quorum = n,
        );
        add.add(
            "pause-cleanup",
            "Pause dead-server cleanup during the upgrade".into(),
            "cluster.autopilot.cleanup_dead_servers = false".into(),
            &|p| p.cluster.autopilot.cleanup_dead_servers = false,
        );
    }
}

/// The next patch release without a known defect.
fn target_candidate(plan: &Plan, add: &mut Adder<'_>) {
    let c = &plan.cluster;
    let u = &plan.upgrade;
    if let Some(v) = fixed_target(c.product, c.edition, u.target) {
        add.add(
            "other-target",
            format!("Target {v} instead of {} (known defect)", u.target),
            format!("upgrade.target = \"{v}\""),
            &|p| p.upgrade.target = v,
        );
    }
}

/// The next patch release of the target's line without a known defect.
fn fixed_target(product: Product, edition: Edition, target: Version) -> Option<Version> {
    known_issues_for(product, target, edition).next()?;
    (1..=20)
        .map(|d| Version::new(target.major, target.minor, target.patch + d))
        .find(|&v| known_issues_for(product, v, edition).next().is_none())
}

/// Whether a candidate change improves the plan, and the reason in words.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// Better, by what.
    Better(String),
    /// Not better, why not.
    NotBetter(String),
}

impl Judgement {
    /// Whether the change is an improvement.
    pub fn is_better(&self) -> bool {
        matches!(self, Judgement::Better(_))
    }

    /// The reason in words.
    pub fn into_text(self) -> String {
        match self {
            Judgement::Better(t) | Judgement::NotBetter(t) => t,
        }
    }
}

/// Why `after` is better than `before`, or why not.
pub fn judge(before: &Numbers, after: &Numbers) -> Judgement {
    let rel = |b: f64, a: f64| if b > 0.0 { (b - a) / b } else { 0.0 };
    if after.unsafe_runs > before.unsafe_runs {
        return Judgement::NotBetter(format!(
            "worse: {} of {} seeds unsafe instead of {}",
            after.unsafe_runs, after.seeds, before.unsafe_runs
        ));
    }
    if after.plan_defect_runs > before.plan_defect_runs {
        return Judgement::NotBetter(format!(
            "worse: {} of {} seeds lose quorum or an acknowledged write with no fault instead of {}",
            after.plan_defect_runs, after.seeds, before.plan_defect_runs
        ));
    }
    // Removing a plan defect comes first: the probability is over the seeds without one, so
    // it may rise when more seeds count.
    if after.plan_defect_runs < before.plan_defect_runs {
        return Judgement::Better(format!(
            "seeds that lose quorum or an acknowledged write with no fault {} -> {} of {}",
            before.plan_defect_runs, after.plan_defect_runs, after.seeds
        ));
    }
    if after.p_quorum_loss > before.p_quorum_loss * (1.0 + 1e-3) {
        return Judgement::NotBetter("worse: raises the probability of quorum loss".into());
    }
    if after.unsafe_runs < before.unsafe_runs {
        return Judgement::Better(format!(
            "unsafe seeds {} -> {} of {}",
            before.unsafe_runs, after.unsafe_runs, after.seeds
        ));
    }
    let mut gains = Vec::new();
    if rel(before.p_quorum_loss, after.p_quorum_loss) >= MIN_GAIN {
        gains.push("lower probability of quorum loss".to_string());
    }
    if rel(before.exposure_ms as f64, after.exposure_ms as f64) >= MIN_GAIN {
        gains.push(format!(
            "time at tolerance 0 {:.1} s -> {:.1} s",
            before.exposure_ms as f64 / 1e3,
            after.exposure_ms as f64 / 1e3
        ));
    }
    let leader_gain = before
        .leader_step_no_leader_ms
        .saturating_sub(after.leader_step_no_leader_ms);
    if leader_gain >= MIN_GAIN_MS
        && rel(
            before.leader_step_no_leader_ms as f64,
            after.leader_step_no_leader_ms as f64,
        ) >= MIN_GAIN
    {
        gains.push(format!(
            "leader-step time without a leader {} ms -> {} ms",
            before.leader_step_no_leader_ms, after.leader_step_no_leader_ms
        ));
    }
    if gains.is_empty() {
        Judgement::NotBetter("no measurable improvement".into())
    } else {
        Judgement::Better(gains.join("; "))
    }
}

/// Every candidate re-simulated on `seeds`: (recommended, not recommended), plus the combined
/// effect of all recommended changes when there are several.
pub fn advise(
    plan: &Plan,
    base: &Assessment,
    seeds: std::ops::Range<u64>,
    jobs: usize,
    rate: &FailureRate,
) -> Result<(Vec<Recommendation>, Vec<Recommendation>), ReportError> {
    let mut tried = try_candidates(plan, base, seeds.clone(), jobs, rate)?;
    keep_best_of_each_group(&mut tried);
    let mut yes = Vec::new();
    let mut no = Vec::new();
    let mut combined = plan.clone();
    let mut changes = Vec::new();
    for (cand, rec, ok) in tried {
        if ok {
            combine(&mut combined, plan, &cand.plan);
            changes.push(cand.change);
            yes.push(rec);
        } else {
            no.push(rec);
        }
    }
    if yes.len() >= 2 {
        let after = assess(&combined, seeds, jobs, rate)?.numbers;
        let verdict = judge(&base.numbers, &after).into_text();
        yes.push(Recommendation {
            id: "all-of-the-above".into(),
            title: "All the changes above together".into(),
            change: changes.join("; "),
            before: base.numbers.clone(),
            after,
            verdict,
        });
    }
    Ok((yes, no))
}

/// Every candidate re-simulated on `seeds` and judged against `base` (true: better).
fn try_candidates(
    plan: &Plan,
    base: &Assessment,
    seeds: std::ops::Range<u64>,
    jobs: usize,
    rate: &FailureRate,
) -> Result<Vec<(Candidate, Recommendation, bool)>, ReportError> {
    let mut tried: Vec<(Candidate, Recommendation, bool)> = Vec::new();
    for cand in candidates(plan) {
        let after = assess(&cand.plan, seeds.clone(), jobs, rate)?.numbers;
        let verdict = judge(&base.numbers, &after);
        let ok = verdict.is_better();
        let rec = Recommendation {
            id: cand.id.to_string(),
            title: cand.title.clone(),
            change: cand.change.clone(),
            before: base.numbers.clone(),
            after,
            verdict: verdict.into_text(),
        };
        tried.push((cand, rec, ok));
    }
    Ok(tried)
}

/// Withdraws a better candidate when another of its group does as well or better, saying so.
fn keep_best_of_each_group(tried: &mut [(Candidate, Recommendation, bool)]) {
    // Alternatives (one or two temporary servers; min_quorum or pausing cleanup): recommend
    // the best of each group only.
    let rank = |r: &Recommendation| {
        (
            r.after.unsafe_runs,
            r.after.p_quorum_loss.to_bits(),
            r.after.exposure_ms,
            r.after.duration_ms,
        )
    };
    for i in 0..tried.len() {
        let group = group_of(tried[i].0.id);
        let better = tried.iter().enumerate().find(|(j, (c, r, ok))| {
            *j != i
                && *ok
                && group.is_some()
                && group_of(c.id) == group
                && (rank(r), *j) < (rank(&tried[i].1), i)
        });
        if let Some((_, (c, _, _))) = better.filter(|_| tried[i].2) {
            let id = c.id;
            tried[i].1.verdict =
                format!("{}; but `{id}` does as well or better", tried[i].1.verdict);
            tried[i].2 = false;
        }
    }
}

/// Candidates that are alternatives to one another.
fn group_of(id: &str) -> Option<&'static str> {
    match id {
        "temporary-server" | "temporary-servers" => Some("servers"),
        "min-quorum" | "pause-cleanup" => Some("cleanup"),
        _ => None,
    }
}

/// Applies the difference between `orig` and `changed` to `acc`.
fn combine(acc: &mut Plan, orig: &Plan, changed: &Plan) {
    if changed.cluster.servers != orig.cluster.servers {
        acc.cluster.servers.clone_from(&changed.cluster.servers);
    }
    if changed.cluster.autopilot != orig.cluster.autopilot {
        let (a, c) = (&mut acc.cluster.autopilot, &changed.cluster.autopilot);
        a.min_quorum = a.min_quorum.max(c.min_quorum);
        a.cleanup_dead_servers &= c.cleanup_dead_servers;
    }
    let (a, o, c) = (&mut acc.upgrade, &orig.upgrade, &changed.upgrade);
    if c.target != o.target {
        a.target = c.target;
    }
    if c.order != o.order {
        a.order = c.order;
    }
    a.transfer_leadership |= c.transfer_leadership && !o.transfer_leadership;
    if c.gate != o.gate {
        a.gate.stable_for = a.gate.stable_for.max(c.gate.stable_for);
        a.gate.require_fresh_health |= c.gate.require_fresh_health;
        a.gate.require_voter |= c.gate.require_voter;
    }
}
