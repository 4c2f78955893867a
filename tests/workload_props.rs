//! The workload plane under one tolerated fault: over valid plans with jobs and server-clients
//! drained before their restart, the procedure never stops a node whose allocations were not
//! drained, the jobs run their counts again once it completes, and nothing unsafe happens
//! beyond what the fault alone explains.

use proptest::prelude::*;
use rehearse::chaos::explore::{Class, baseline, boundaries, classify};
use rehearse::chaos::fault::FaultHooks;
use rehearse::chaos::{Fault, FaultKind, Target};
use rehearse::driver::StepCtx;
use rehearse::plan::Plan;
use rehearse::procedure::ProcedureConfig;
use rehearse::rehearsal::{Hooks, Outcome, Verdict, rehearse_with, sim_config};
use rehearse_sim::World;

/// Upgrade paths from the catalog (current → target), none onto a known-bad release.
const PATHS: &[(&str, &str)] = &[
    ("1.7.7", "1.8.4"),
    ("1.8.4", "1.9.7"),
    ("1.9.7", "1.10.3"),
    ("1.10.3", "1.11.0"),
];

/// One service job of the plan: one group.
#[derive(Debug, Clone)]
struct ServiceJob {
    count: u32,
    kill_timeout_s: u64,
    max_parallel: u32,
}

/// A valid plan with jobs, as the property draws it.
#[derive(Debug, Clone)]
struct Shape {
    servers: usize,
    /// Servers that also run a client (indices, distinct).
    server_clients: Vec<usize>,
    clients: u32,
    jobs: Vec<ServiceJob>,
    system_job: bool,
    path: (&'static str, &'static str),
    transfer: bool,
    drain: bool,
    /// `[upgrade.clients] max_parallel`, when the client-only nodes go in drained batches.
    client_batch: Option<u32>,
}

impl Shape {
    fn text(&self) -> String {
        let servers: Vec<String> = (0..self.servers)
            .map(|i| {
                let client = if self.server_clients.contains(&i) {
                    ", client = true"
                } else {
                    ""
                };
                format!("{{ name = \"s{}\"{client} }}", i + 1)
            })
            .collect();
        let mut t = format!(
            "[cluster]\nproduct = \"nomad\"\nversion = \"{}\"\nservers = [{}]\n\
             [clients]\ncount = {}\n\
             [upgrade]\ntarget = \"{}\"\ntransfer_leadership = {}\nallow_zero_tolerance = true\n\
             [upgrade.drain]\nenabled = {}\ndeadline = \"5m\"\n",
            self.path.0,
            servers.join(", "),
            self.clients,
            self.path.1,
            self.transfer,
            self.drain,
        );
        if let Some(k) = self.client_batch {
            t.push_str(&format!(
                "[upgrade.clients]\nmax_parallel = {k}\ninstall_time = \"30s\"\n"
            ));
        }
        for (i, j) in self.jobs.iter().enumerate() {
            t.push_str(&format!(
                "[[jobs]]\nname = \"svc{i}\"\ntype = \"service\"\n[[jobs.groups]]\nname = \"g\"\n\
                 count = {}\nkill_timeout = \"{}s\"\nmigrate = {{ max_parallel = {} }}\n",
                j.count, j.kill_timeout_s, j.max_parallel
            ));
        }
        if self.system_job {
            t.push_str(
                "[[jobs]]\nname = \"sys\"\ntype = \"system\"\n[[jobs.groups]]\nname = \"g\"\ncount = 1\n",
            );
        }
        t
    }

    fn plan(&self) -> Plan {
        Plan::from_str_named(&self.text(), "prop-jobs.toml")
            .unwrap_or_else(|e| panic!("{e}\n{}", self.text()))
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    let job = (1u32..=6, 0u64..=30, 1u32..=2).prop_map(|(count, kill_timeout_s, max_parallel)| {
        ServiceJob {
            count,
            kill_timeout_s,
            max_parallel,
        }
    });
    (
        prop_oneof![Just(3usize), Just(5)],
        0usize..5,
        prop::option::of(1usize..5),
        2u32..=6,
        prop::collection::vec(job, 1..=3),
        any::<bool>(),
        prop::sample::select(PATHS.to_vec()),
        any::<bool>(),
    )
        .prop_map(
            |(servers, a, b, clients, jobs, system_job, path, transfer)| {
                let a = a % servers;
                let mut server_clients = vec![a];
                // A second server-client, distinct from the first.
                if let Some(b) = b.map(|b| (a + b) % servers).filter(|&b| b != a) {
                    server_clients.push(b);
                }
                Shape {
                    servers,
                    server_clients,
                    clients,
                    jobs,
                    system_job,
                    path,
                    transfer,
                    drain: true,
                    client_batch: None,
                }
            },
        )
}

/// One server crash, stop, pause or partition, for a bounded duration; the step is an index
/// into the plan's step boundaries (as the chaos property aims it).
fn fault() -> impl Strategy<Value = Fault> {
    (
        prop::sample::select(vec![
            FaultKind::Crash,
            FaultKind::Stop,
            FaultKind::Pause,
            FaultKind::Isolate,
        ]),
        prop::sample::select(Target::ALL.to_vec()),
        0usize..60,
        5u64..120,
    )
        .prop_map(|(kind, target, step, d)| Fault {
            kind,
            target,
            step,
            duration_s: Some(d),
        })
}

/// The fault schedule, and the jobs as the leader reports them once the run has cooled down.
struct Watch {
    faults: FaultHooks,
    /// (backlog, jobs short of their desired count) at the end; None: no leader to ask.
    end: Option<(u64, Vec<String>)>,
}

impl Hooks for Watch {
    fn before(&mut self, w: &mut World, ctx: &StepCtx<'_>) {
        self.faults.before(w, ctx);
    }
    fn after(&mut self, w: &mut World, ctx: &StepCtx<'_>) {
        self.faults.after(w, ctx);
    }
    fn finish(&mut self, w: &mut World) {
        self.faults.finish(w);
    }
    fn done(&mut self, w: &World) {
        self.faults.done(w);
        self.end = w.leader().and_then(|l| w.workload_view(l).ok()).map(|v| {
            let short = v
                .jobs
                .iter()
                .filter(|j| j.queued > 0)
                .map(|j| format!("{} {} of {} live", j.name, j.desired - j.queued, j.desired))
                .collect();
            (v.broker.backlog(), short)
        });
    }
}

/// Runs a plan with one fault; returns the outcome and the end state `Watch` saw.
fn run(
    p: &Plan,
    cfg: &ProcedureConfig,
    f: Fault,
    seed: u64,
) -> (Outcome, Option<(u64, Vec<String>)>) {
    let mut hooks = Watch {
        faults: FaultHooks::new(vec![f]),
        end: None,
    };
    let o = rehearse_with(cfg, sim_config(p, seed), &mut hooks)
        .unwrap_or_else(|e| panic!("invalid world: {e}"));
    (o, hooks.end)
}

/// Aims a drawn fault at a real step boundary of the plan's fault-free run.
fn aim(p: &Plan, cfg: &ProcedureConfig, f: Fault, seed: u64) -> Fault {
    let steps = boundaries(&baseline(p, cfg, seed));
    Fault {
        step: steps[f.step % steps.len()],
        ..f
    }
}

/// The three properties; `Err` names the first that fails.
fn check(shape: &Shape, f: Fault, seed: u64) -> Result<(), String> {
    let p = shape.plan();
    let cfg = ProcedureConfig::from_plan(&p);
    let f = aim(&p, &cfg, f, seed);
    let (o, end) = run(&p, &cfg, f, seed);
    let what = format!("fault {f} seed {seed}\n{}", shape.text());
    // 1. Never a stop of a node with running allocations that were not drained.
    if !o.lost_allocations.is_empty() || matches!(o.verdict, Verdict::LostAllocations { .. }) {
        return Err(format!(
            "lost allocations: {:?} ({:?})\n{what}",
            o.lost_allocations, o.verdict
        ));
    }
    // 3. Nothing unsafe beyond the fault: never the procedure's fault, and with 5 servers one
    // fault is within tolerance, so not even quorum is lost.
    let class = classify(&o);
    if class == Class::Unsafe || (shape.servers >= 5 && class == Class::BeyondTolerance) {
        return Err(format!("{class:?}: {:?}\n{what}", o.verdict));
    }
    // 2. A completed upgrade leaves the jobs at their counts and the broker drained.
    if class == Class::Completed {
        let bound = p.upgrade.verify.max_eval_backlog;
        if o.workload_plane.time_to_recover_ns.is_none() {
            return Err(format!(
                "completed, but the jobs never recovered: {:?}\n{what}",
                o.workload_plane
            ));
        }
        match end {
            Some((backlog, short)) if backlog <= bound && short.is_empty() => {}
            other => return Err(format!("completed; at the end {other:?}\n{what}")),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Over valid plans with jobs (3 or 5 servers, 1–2 server-clients drained before their
    /// restart, 1–3 service jobs and maybe a system job, 2–6 client nodes) and one server
    /// crash, stop, pause or partition at any step: the procedure never stops a node with
    /// allocations it did not drain, a completed upgrade leaves every job at its count with
    /// the eval backlog within the plan's bound, and nothing unsafe happens that the fault
    /// alone does not explain.
    #[test]
    fn one_fault_never_loses_allocations_and_the_jobs_recover(
        shape in shape(),
        f in fault(),
        seed in 0u64..1_000,
    ) {
        if let Err(e) = check(&shape, f, seed) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// `shape` with the client-only nodes upgraded in drained batches of 1 or 2 (fewer than the
/// clients: a batch of every client leaves its allocations nowhere to go, lint R019), each
/// down 30 s.
fn batched_shape() -> impl Strategy<Value = Shape> {
    (shape(), 1u32..=2).prop_map(|(s, k)| Shape {
        client_batch: Some(k.min(s.clients - 1)),
        ..s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The same properties with the client phase in batches (`[upgrade.clients]`): every
    /// client-only node is drained before its stop, so none of its allocations is lost, and a
    /// completed upgrade leaves every job at its count.
    #[test]
    fn client_batches_under_one_fault_never_lose_allocations(
        shape in batched_shape(),
        f in fault(),
        seed in 0u64..1_000,
    ) {
        if let Err(e) = check(&shape, f, seed) {
            return Err(TestCaseError::fail(e));
        }
    }
}

/// The property can fail: the same kind of plan with its drain turned off loses the
/// allocations of the server-client the procedure stops (its system job's allocation at
/// least: service allocations are packed onto the client-only nodes first).
#[test]
fn without_a_drain_the_property_fails() {
    let shape = Shape {
        servers: 3,
        server_clients: vec![1],
        clients: 2,
        jobs: vec![ServiceJob {
            count: 6,
            kill_timeout_s: 5,
            max_parallel: 1,
        }],
        system_job: true,
        path: ("1.9.7", "1.10.3"),
        transfer: true,
        drain: false,
        client_batch: None,
    };
    // A fault at a step the procedure never reaches: the stop alone loses them.
    let f: Fault = "crash:leader:500:30s".parse().unwrap();
    let e = check(&shape, f, 1).expect_err("no drain must lose allocations");
    assert!(e.starts_with("lost allocations"), "{e}");
    // With the drain, the same run passes.
    let drained = Shape {
        drain: true,
        ..shape
    };
    check(&drained, f, 1).unwrap();
}

/// The batched property runs the client phase: every client-only node is drained, stopped and
/// started on the target, in batches of the plan's size, and nothing is lost.
#[test]
fn batched_runs_drain_and_upgrade_every_client_node() {
    use rehearse::procedure::Action;
    let shape = Shape {
        servers: 3,
        server_clients: vec![1],
        clients: 3,
        jobs: vec![ServiceJob {
            count: 4,
            kill_timeout_s: 5,
            max_parallel: 1,
        }],
        system_job: true,
        path: ("1.9.7", "1.10.3"),
        transfer: true,
        drain: true,
        client_batch: Some(2),
    };
    let f: Fault = "crash:leader:500:30s".parse().unwrap();
    check(&shape, f, 1).unwrap();
    let p = shape.plan();
    let cfg = ProcedureConfig::from_plan(&p);
    let (o, _) = run(&p, &cfg, f, 1);
    let drains: Vec<String> = o
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::DrainClient { client } => Some(client.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(drains, ["c1", "c2", "c3"]);
    let starts = o
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::StartClient { .. }))
        .count();
    assert_eq!(starts, 3);
    assert!(matches!(o.verdict, Verdict::Completed), "{:?}", o.verdict);
}
