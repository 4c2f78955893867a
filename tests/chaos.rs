//! Chaos: one fault at any step never makes rehearse's procedure do something unsafe, and the
//! explorer catches every deliberately broken procedure.

use proptest::prelude::*;
use rehearse::chaos::explore::{
    Class, baseline, boundaries, classify, explore, run_one, schedules,
};
use rehearse::chaos::{Fault, FaultKind, Target};
use rehearse::plan::Plan;
use rehearse::procedure::{ProcedureConfig, Variant};

/// Upgrade paths from the catalog (current → target), none onto a known-bad release.
const PATHS: &[(&str, &str)] = &[
    ("1.3.10", "1.4.1"),
    ("1.4.14", "1.5.17"),
    ("1.5.17", "1.6.10"),
    ("1.7.7", "1.8.4"),
    ("1.8.4", "1.9.7"),
    ("1.9.7", "1.10.3"),
    ("1.10.3", "1.11.0"),
    ("1.11.0", "2.0.0"),
];

fn plan(servers: usize, from: &str, to: &str, transfer: bool) -> Plan {
    let names: Vec<String> = (1..=servers)
        .map(|i| format!("{{ name = \"s{i}\" }}"))
        .collect();
    let text = format!(
        "[cluster]\nproduct = \"nomad\"\nversion = \"{from}\"\nservers = [{}]\n[upgrade]\ntarget = \"{to}\"\ntransfer_leadership = {transfer}\nallow_zero_tolerance = true\n",
        names.join(", ")
    );
    Plan::from_str_named(&text, "prop").unwrap()
}

fn fault() -> impl Strategy<Value = Fault> {
    (
        prop::sample::select(FaultKind::ALL.to_vec()),
        prop::sample::select(Target::ALL.to_vec()),
        0usize..60,
        prop_oneof![Just(None), (5u64..120).prop_map(Some)],
    )
        .prop_map(|(kind, target, step, duration_s)| Fault {
            kind,
            target,
            step,
            duration_s,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Over valid plans (3/5/7 servers, catalog versions) and one fault at any step: the
    /// procedure never stops a server without a healthy quorum of others, no acknowledged write
    /// is lost, Raft safety holds, and the run ends (completed or halted) within a bound. With
    /// 5 or 7 servers one fault is within tolerance, so quorum is never lost at all.
    #[test]
    fn one_fault_at_any_step_never_makes_the_procedure_unsafe(
        servers in prop_oneof![Just(3usize), Just(5), Just(7)],
        path in prop::sample::select(PATHS.to_vec()),
        transfer in any::<bool>(),
        f in fault(),
        seed in 0u64..1_000,
    ) {
        let p = plan(servers, path.0, path.1, transfer);
        let cfg = ProcedureConfig::from_plan(&p);
        // Aim at a real step boundary of this plan (most steps are gate polls).
        let steps = boundaries(&baseline(&p, &cfg, seed));
        let f = Fault { step: steps[f.step % steps.len()], ..f };
        let (o, _) = run_one(&p, &cfg, &[f], seed);
        let class = classify(&o);
        prop_assert_ne!(class, Class::Unsafe, "fault {} seed {}: {:?}", f, seed, o.verdict);
        if servers >= 5 {
            prop_assert_ne!(class, Class::BeyondTolerance, "fault {} seed {}: {:?}", f, seed, o.verdict);
        }
        // Bound: every server's gate may run to its timeout, plus preflight and verify.
        let bound_ms = (servers as u64 + 2) * (cfg.gate.timeout_ms + cfg.install_time_ms + 60_000);
        prop_assert!(o.duration_ms <= bound_ms, "took {} ms", o.duration_ms);
    }
}

/// Explores one plan with a reduced fault set (process faults only) to keep the test fast.
fn unsafe_runs(p: &Plan, v: Variant) -> u64 {
    let cfg = v.apply(ProcedureConfig::from_plan(p));
    let base = baseline(p, &cfg, 1);
    let kinds = [FaultKind::Crash, FaultKind::Pause, FaultKind::Stop];
    let scheds: Vec<Vec<Fault>> = schedules(&boundaries(&base), 1, usize::MAX)
        .into_iter()
        .filter(|s| kinds.contains(&s[0].kind))
        .collect();
    explore(p, &cfg, &scheds, 1..2, 2, &|_| {}).unsafe_runs
}

#[test]
fn the_explorer_catches_every_broken_procedure_and_clears_the_safe_one() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plans/nomad-3-servers.toml"
    ))
    .unwrap();
    let p = Plan::from_str_named(&text, "nomad-3-servers").unwrap();
    assert_eq!(unsafe_runs(&p, Variant::Safe), 0);
    for v in Variant::BROKEN {
        assert!(unsafe_runs(&p, v) > 0, "{v:?} was not caught");
    }
}

#[test]
fn a_finding_replays_exactly() {
    let p = plan(3, "1.9.7", "1.10.3", false);
    let cfg = Variant::IgnoreFailureTolerance.apply(ProcedureConfig::from_plan(&p));
    let base = baseline(&p, &cfg, 3);
    let scheds: Vec<Vec<Fault>> = schedules(&boundaries(&base), 1, usize::MAX)
        .into_iter()
        .filter(|s| s[0].kind == FaultKind::Crash)
        .collect();
    let t = explore(&p, &cfg, &scheds, 3..4, 2, &|_| {});
    let finding = t
        .findings
        .iter()
        .find(|f| f.class == Class::Unsafe)
        .expect("an unsafe finding");
    // The one-line form is all a replay needs.
    let line = finding.faults[0].to_string();
    let f: Fault = line.parse().unwrap();
    let (a, _) = run_one(&p, &cfg, &[f], finding.seed);
    let (b, _) = run_one(&p, &cfg, &[f], finding.seed);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(classify(&a), Class::Unsafe, "{line}: {:?}", a.verdict);
}

/// Shrinking: a deliberately padded unsafe schedule (an irrelevant latency spike and slow disk,
/// an extra crash, a late permanent crash) shrinks to a single short crash that is still unsafe,
/// and nothing simpler is: dropping it, shortening it or moving it earlier makes the run safe.
#[test]
fn shrinking_reduces_a_padded_schedule_to_a_minimal_one() {
    use rehearse::chaos::explore::{Finding, shrink_finding};
    use rehearse::chaos::shrink::DURATIONS_S;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plans/nomad-3-servers.toml"
    ))
    .unwrap();
    let p = Plan::from_str_named(&text, "nomad-3-servers").unwrap();
    let cfg = Variant::IgnoreFailureTolerance.apply(ProcedureConfig::from_plan(&p));
    let padded: Vec<Fault> = [
        "latency:leader:0:30s",
        "crash:leader:0:30s",
        "crash:leader:21:permanent",
        "slow-disk:upgraded:40:permanent",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let seed = 1;
    let is_unsafe = |s: &[Fault]| classify(&run_one(&p, &cfg, s, seed).0) == Class::Unsafe;
    assert!(
        is_unsafe(&padded),
        "the padded schedule must be unsafe to start with"
    );
    let steps = boundaries(&baseline(&p, &cfg, seed));
    let finding = Finding {
        faults: padded.clone(),
        seed,
        class: Class::Unsafe,
        problems: Vec::new(),
    };
    let s = shrink_finding(&p, &cfg, &finding, &steps);
    assert!(!s.bounded);
    assert_eq!(s.faults.len(), 1, "shrunk to {:?}", s.faults);
    let f = s.faults[0];
    assert_eq!(f.kind, FaultKind::Crash);
    assert!(is_unsafe(&s.faults), "the minimal schedule replays unsafe");
    assert!(!s.problems.is_empty());
    // 1-minimal: no fault at all, a shorter duration or an earlier step is safe.
    assert!(!is_unsafe(&[]));
    for d in DURATIONS_S
        .iter()
        .filter(|&&d| f.duration_s.is_none_or(|c| d < c))
    {
        let shorter = Fault {
            duration_s: Some(*d),
            ..f
        };
        assert!(!is_unsafe(&[shorter]), "{shorter} is still unsafe");
    }
    for step in steps.iter().copied().chain([0]).filter(|&b| b < f.step) {
        let earlier = Fault { step, ..f };
        assert!(!is_unsafe(&[earlier]), "{earlier} is still unsafe");
    }
    // Deterministic: the same input shrinks to the same schedule.
    assert_eq!(shrink_finding(&p, &cfg, &finding, &steps).faults, s.faults);
}

/// The explorer forks runs from a fault-free run at each step and simulates runs whose faults
/// land on the same server once: its totals and findings must be exactly those of running
/// every schedule from scratch, one by one. Checked on a broken procedure (so there are unsafe
/// and beyond-tolerance runs), single faults (all kinds, roles and durations) and pairs, with
/// one and two jobs.
#[test]
fn forked_and_shared_runs_are_the_runs_from_scratch() {
    use rehearse::chaos::explore::{FINDINGS_MAX, Totals};
    let p = plan(3, "1.9.7", "1.10.3", false);
    let cfg = Variant::IgnoreFailureTolerance.apply(ProcedureConfig::from_plan(&p));
    let steps = boundaries(&baseline(&p, &cfg, 1));
    // Every 5th single fault, every single fault at three steps (so that runs differing only
    // in duration, which share their start, are all there), every latent one.
    let some_steps = [steps[1], steps[steps.len() / 2], steps[steps.len() - 2]];
    let mut scheds: Vec<Vec<Fault>> = schedules(&steps, 1, usize::MAX)
        .into_iter()
        .enumerate()
        // Latent faults (a bad binary) at every step: runs that differ only in when the
        // binary was marked, before it boots, are shared across steps.
        .filter(|(i, s)| i % 5 == 0 || some_steps.contains(&s[0].step) || s[0].kind.latent())
        .map(|(_, s)| s)
        .collect();
    scheds.extend(schedules(&steps, 2, usize::MAX).into_iter().step_by(997));
    // A fault at a step the procedure never reaches misses.
    scheds.push(vec!["crash:leader:500:30s".parse().unwrap()]);
    let seeds = 1..3u64;
    let mut naive = Totals::default();
    let mut findings = Vec::new();
    for seed in seeds.clone() {
        for s in &scheds {
            let (o, fired) = run_one(&p, &cfg, s, seed);
            naive.runs += 1;
            naive.fired += u64::from(fired);
            match classify(&o) {
                Class::Completed => naive.completed += 1,
                Class::Halted => naive.halted += 1,
                Class::BeyondTolerance => naive.beyond_tolerance += 1,
                Class::Unsafe => naive.unsafe_runs += 1,
                Class::LostAllocations => naive.lost_allocations += 1,
                Class::StalledWorkload => naive.stalled_workload += 1,
            }
            if matches!(
                classify(&o),
                Class::Unsafe
                    | Class::BeyondTolerance
                    | Class::LostAllocations
                    | Class::StalledWorkload
            ) {
                findings.push((s.clone(), seed, classify(&o)));
            }
        }
    }
    findings.sort_by_key(|(s, seed, c)| (*c != Class::Unsafe, s.clone(), *seed));
    assert!(naive.unsafe_runs > 0 && naive.completed > 0, "{naive:?}");
    for jobs in [1, 2] {
        let t = explore(&p, &cfg, &scheds, seeds.clone(), jobs, &|_| {});
        let counts = |t: &Totals| {
            let c = (t.completed, t.halted, t.beyond_tolerance, t.unsafe_runs);
            (t.runs, t.fired, c)
        };
        let got: Vec<_> = t
            .findings
            .iter()
            .map(|f| (f.faults.clone(), f.seed, f.class))
            .collect();
        // Findings are capped (unsafe ones first); which beyond-tolerance runs are kept past the
        // cap depends on the order runs finish in.
        let only_got: Vec<_> = got.iter().filter(|g| !findings.contains(g)).collect();
        assert!(only_got.is_empty(), "jobs {jobs}: {only_got:?}");
        assert_eq!(got.len(), findings.len().min(FINDINGS_MAX), "jobs {jobs}");
        let unsafe_of = |v: &[(Vec<Fault>, u64, Class)]| -> Vec<(Vec<Fault>, u64, Class)> {
            v.iter().filter(|f| f.2 == Class::Unsafe).cloned().collect()
        };
        assert_eq!(unsafe_of(&got), unsafe_of(&findings), "jobs {jobs}");
        assert_eq!(counts(&t), counts(&naive), "jobs {jobs}");
        assert!(t.simulated < t.runs, "nothing was shared: {t:?}");
    }
}

/// A run forked from the fault-free run at a fault's step is the run from scratch, event for
/// event: same trace hash.
#[test]
fn a_forked_run_is_the_run_from_scratch_event_for_event() {
    use rehearse::chaos::fault::FaultHooks;
    use rehearse::rehearsal::{Checkpoint, NoFaults, sim_config};
    let p = plan(5, "1.8.4", "1.9.7", true);
    let cfg = ProcedureConfig::from_plan(&p);
    for (seed, line) in [
        (1, "crash:leader:12:30s"),
        (2, "isolate:pending:3:permanent"),
    ] {
        let f: Fault = line.parse().unwrap();
        let (scratch, fired) = run_one(&p, &cfg, &[f], seed);
        assert!(fired, "{line}");
        let mut cp = Checkpoint::start(&cfg, sim_config(&p, seed)).unwrap();
        while cp.step() < f.step {
            cp.advance(&cfg, &mut NoFaults);
        }
        let forked = cp.resume(&cfg, &mut FaultHooks::new(vec![f]));
        assert_eq!(forked.trace_hash, scratch.trace_hash, "{line}");
        assert_eq!(forked.steps.len(), scratch.steps.len(), "{line}");
    }
}

/// The explorer takes a one-way partition aimed at the leader (messages from the leader to
/// itself) for the fault-free run: checked from scratch at every step boundary, healed and
/// permanent, on the 5-server example plan and a 3-server one, a few seeds each. Everything
/// the verdict is made of must match, not only the class.
#[test]
fn a_one_way_partition_of_the_leader_is_the_fault_free_run() {
    let five = Plan::from_str_named(
        include_str!("../plans/nomad-5-servers.toml"),
        "nomad-5-servers.toml",
    )
    .unwrap();
    for p in [five, plan(3, "1.9.7", "1.10.3", true)] {
        let cfg = ProcedureConfig::from_plan(&p);
        let steps = boundaries(&baseline(&p, &cfg, 1));
        for seed in 1..=3u64 {
            let (free, fired) = run_one(&p, &cfg, &[], seed);
            assert!(!fired);
            for &step in &steps {
                for dur in ["30s", "permanent"] {
                    let line = format!("one-way:leader:{step}:{dur}");
                    let f: Fault = line.parse().unwrap();
                    let (o, fired) = run_one(&p, &cfg, &[f], seed);
                    let what = format!("seed {seed}, {line}");
                    assert!(fired || step >= free.steps.len(), "{what}");
                    assert_eq!(classify(&o), classify(&free), "{what}");
                    assert_eq!(o.verdict, free.verdict, "{what}");
                    assert_eq!(o.steps, free.steps, "{what}");
                    assert_eq!(o.workload, free.workload, "{what}");
                    assert_eq!(o.violations, free.violations, "{what}");
                    assert_eq!(o.unsafe_stops, free.unsafe_stops, "{what}");
                    assert_eq!(o.client_problems, free.client_problems, "{what}");
                    assert_eq!(o.final_versions, free.final_versions, "{what}");
                    assert_eq!(o.events, free.events, "{what}");
                    assert_eq!(o.metrics.quorum_lost_ns, free.metrics.quorum_lost_ns);
                    assert_eq!(o.metrics.leader_changes, free.metrics.leader_changes);
                }
            }
        }
    }
}

/// The pair shape a 20,000-pair sample of the 5-server plan found (17 runs of 80,000): an old
/// server (the leader, upgraded last) frozen or killed long enough for autopilot's dead-server
/// cleanup to remove it while the upgraded servers form the configuration. Nomad's version gate
/// skips removed (left) members, the upgraded servers write entries the old version cannot
/// apply, and the old server panicked on them when it came back. The procedure now upgrades a
/// removed old server before it can rejoin.
#[test]
fn an_old_leader_removed_by_autopilot_never_rejoins_on_the_old_version() {
    let text = std::fs::read_to_string("plans/nomad-5-servers-no-jobs.toml").unwrap();
    let plan = Plan::from_str_named(&text, "plans/nomad-5-servers-no-jobs.toml").unwrap();
    let cfg = ProcedureConfig::from_plan(&plan);
    let cases: &[(u64, &[&str])] = &[
        (
            1,
            &[
                "isolate:upgrading:31:permanent",
                "pause:leader:40:permanent",
            ],
        ),
        (
            1,
            &[
                "isolate:upgrading:32:permanent",
                "crash:leader:40:permanent",
            ],
        ),
        (
            1,
            &["pause:leader:32:permanent", "isolate:other:40:permanent"],
        ),
        (
            3,
            &["pause:upgrading:48:permanent", "pause:leader:57:permanent"],
        ),
        (1, &["pause:leader:31:60s", "isolate:upgrading:30:60s"]),
    ];
    for (seed, faults) in cases {
        let faults: Vec<Fault> = faults.iter().map(|f| f.parse().unwrap()).collect();
        let (o, fired) = run_one(&plan, &cfg, &faults, *seed);
        assert!(fired, "{faults:?}");
        let removed = o
            .events
            .iter()
            .any(|e| e.contains("dead-server cleanup removed"));
        assert!(
            removed,
            "the shape needs the removal: {faults:?} {:?}",
            o.events
        );
        assert_eq!(
            o.metrics.skew_crashes, 0,
            "{faults:?} seed {seed}: {:?}",
            o.events
        );
        assert_ne!(
            classify(&o),
            Class::Unsafe,
            "{faults:?} seed {seed}: {:?}",
            o.verdict
        );
        assert!(
            o.notes.iter().any(|n| n.contains("upgraded at once")),
            "the report says why a server was upgraded out of turn: {:?}",
            o.notes
        );
    }
}
