//! The procedure rehearsed in the simulator: safe plans complete on every seed, broken
//! procedures are caught.

use rehearse::plan::Plan;
use rehearse::procedure::{Action, ProcedureConfig, Variant};
use rehearse::rehearsal::{Outcome, Verdict, rehearse, sim_config};

fn plan(servers: usize, extra: &str) -> Plan {
    let names: Vec<String> = (1..=servers)
        .map(|i| format!("{{ name = \"s{i}\" }}"))
        .collect();
    let text = format!(
        "[cluster]\nproduct = \"nomad\"\nversion = \"1.9.7\"\nservers = [{}]\n[upgrade]\ntarget = \"1.10.3\"\nallow_zero_tolerance = true\n{extra}\n",
        names.join(", ")
    );
    Plan::from_str_named(&text, "test").unwrap()
}

fn run(p: &Plan, variant: Variant, seeds: std::ops::Range<u64>) -> Vec<Outcome> {
    let cfg = variant.apply(ProcedureConfig::from_plan(p));
    seeds
        .map(|s| rehearse(&cfg, sim_config(p, s)).unwrap())
        .collect()
}

#[test]
fn the_safe_plan_completes_on_every_seed_for_3_5_and_7_servers() {
    for n in [3, 5, 7] {
        for transfer in [false, true] {
            let p = plan(n, &format!("transfer_leadership = {transfer}"));
            for o in run(&p, Variant::Safe, 0..16) {
                assert_eq!(
                    o.verdict,
                    Verdict::Completed,
                    "{n} servers, seed {}: {:?}",
                    o.seed,
                    o.verdict
                );
                assert!(o.final_versions.iter().all(|(_, v)| v == "1.10.3"));
                assert_eq!(o.order.len(), n, "each server once");
                assert!(
                    o.leader_last,
                    "{n} servers seed {}: leader not last",
                    o.seed
                );
                assert_eq!(o.workload.lost_acked, 0);
                assert!(o.violations.is_empty());
                let stops = o
                    .steps
                    .iter()
                    .filter(|s| matches!(s.action, Action::Stop { .. }))
                    .count();
                assert_eq!(stops, n, "one stop per server");
            }
        }
    }
}

#[test]
fn transferring_leadership_avoids_time_without_a_leader() {
    let with = run(&plan(5, "transfer_leadership = true"), Variant::Safe, 0..16);
    let without = run(
        &plan(5, "transfer_leadership = false"),
        Variant::Safe,
        0..16,
    );
    let total = |v: &[Outcome]| v.iter().map(|o| o.metrics.no_leader_ns).sum::<u64>();
    assert!(
        total(&with) < total(&without),
        "{} vs {}",
        total(&with),
        total(&without)
    );
}

fn caught(p: &Plan, v: Variant) -> usize {
    run(p, v, 0..16)
        .iter()
        .filter(|o| matches!(o.verdict, Verdict::Unsafe { .. }))
        .count()
}

#[test]
fn broken_procedures_are_caught() {
    let reboot = plan(
        3,
        "install_time = \"90s\"\n[upgrade.gate]\ntimeout = \"3m\"",
    );
    assert_eq!(caught(&reboot, Variant::Safe), 0);
    assert!(
        caught(&reboot, Variant::GateHealthyOnly) > 0,
        "gate on Healthy only"
    );
    assert!(
        caught(&reboot, Variant::NoVoterWait) > 0,
        "no wait for voter promotion"
    );
    assert!(
        caught(&plan(3, ""), Variant::TwoAtATime) > 0,
        "two at a time"
    );
    // A fast restart (binary swapped in a second) is where the stale-health trap bites.
    let quick = plan(3, "install_time = \"1s\"");
    assert_eq!(caught(&quick, Variant::Safe), 0);
    assert!(
        caught(&quick, Variant::GateHealthyOnly) > 0,
        "stale health after a quick restart"
    );
}

#[test]
fn leader_first_across_a_new_entry_type_crashes_old_servers() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plans/nomad-1.3-to-1.4.0.toml"
    ))
    .unwrap();
    let p = Plan::from_str_named(&text, "1.4.0").unwrap();
    let safe = run(&p, Variant::Safe, 0..16);
    assert!(safe.iter().all(|o| o.verdict == Verdict::Completed));
    let bad = run(&p, Variant::LeaderFirst, 0..16);
    let crashed = bad.iter().filter(|o| o.metrics.skew_crashes > 0).count();
    assert!(crashed > 0, "no old server crashed on any seed");
}

#[test]
fn rehearsals_replay_exactly() {
    let p = plan(5, "transfer_leadership = true");
    let a = run(&p, Variant::Safe, 0..8);
    let b = run(&p, Variant::Safe, 0..8);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.trace_hash, y.trace_hash);
        assert_eq!(x.steps, y.steps);
    }
}

/// hashicorp/nomad#24231: after upgrading the servers to 1.9.0 (ACLs on), a client whose host
/// is gone stays `ready` on the old version. rehearse's client check notices it and halts;
/// on 1.9.1 the node is marked down and the upgrade completes with a note.
#[test]
fn the_client_check_notices_a_gone_client_that_1_9_0_never_marks_down() {
    use rehearse::chaos::{Fault, FaultHooks};
    use rehearse::rehearsal::rehearse_with;
    for (target, halts) in [("1.9.0", true), ("1.9.1", false)] {
        let text = format!(
            "[cluster]\nproduct = \"nomad\"\nversion = \"1.8.4\"\nservers = [{{ name = \"s1\" }}, {{ name = \"s2\" }}, {{ name = \"s3\" }}]\n[clients]\ncount = 5\n[upgrade]\ntarget = \"{target}\"\ntransfer_leadership = true\n"
        );
        let p = Plan::from_str_named(&text, "test").unwrap();
        let cfg = ProcedureConfig::from_plan(&p);
        for seed in 1..=3 {
            let mut sim = sim_config(&p, seed);
            sim.acl_enabled = true;
            let fault: Fault = "client-down:client:30:permanent".parse().unwrap();
            let mut hooks = FaultHooks::new(vec![fault]);
            let o = rehearse_with(&cfg, sim, &mut hooks).unwrap();
            let last = o.steps.last().unwrap().action.to_string();
            if halts {
                assert!(
                    last.contains("client c1 is ready but runs 1.8.4"),
                    "{target} seed {seed}: {last}"
                );
                assert!(
                    o.client_problems
                        .iter()
                        .any(|p| p.contains("could not mark it down")),
                    "{target} seed {seed}: {:?}",
                    o.client_problems
                );
            } else {
                assert_eq!(o.verdict, Verdict::Completed, "{target} seed {seed}");
                assert!(
                    o.notes
                        .iter()
                        .any(|n| n == "client c1 is down: not upgraded")
                );
                assert!(o.client_problems.is_empty());
            }
        }
    }
}

/// A plan with jobs: the simulator places them, the procedure's drains migrate the
/// server-clients' allocations (nothing lost), and the jobs run their counts at the end.
#[test]
fn declared_jobs_are_migrated_by_drains_and_lost_without_one() {
    let text = std::fs::read_to_string("plans/nomad-5-servers-jobs.toml").unwrap();
    let p = Plan::from_str_named(&text, "plans/nomad-5-servers-jobs.toml").unwrap();
    for o in run(&p, Variant::Safe, 1..5) {
        assert_eq!(o.verdict, Verdict::Completed, "seed {}", o.seed);
        let w = o.workload_plane;
        assert_eq!(w.lost_allocs, 0, "seed {}", o.seed);
        assert!(w.backlog_peak > 0, "the jobs were evaluated");
        assert!(w.time_to_recover_ns.is_some(), "seed {}: {w:?}", o.seed);
    }
    let text = text.replace(
        "[upgrade.drain]\nenabled = true",
        "[upgrade.drain]\nenabled = false",
    );
    let p = Plan::from_str_named(&text, "no-drain").unwrap();
    for o in run(&p, Variant::Safe, 1..3) {
        assert!(
            matches!(o.verdict, Verdict::LostAllocations { .. }),
            "seed {}: {:?}",
            o.seed,
            o.verdict
        );
        assert!(o.workload_plane.lost_allocs > 0);
    }
}
