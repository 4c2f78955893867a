//! Where the explorer's time goes: runs every single-fault schedule of a plan on one seed, one
//! thread, and prints wall time, simulated time and simulator events per fault kind, per
//! duration and per step, plus how many runs resolve to the same concrete fault.
//!
//! `cargo run --release --example explore_cost -- plans/nomad-5-servers.toml [SEED]`

use rehearse::chaos::explore::{baseline, boundaries, run_one, schedules};
use rehearse::plan::Plan;
use rehearse::procedure::ProcedureConfig;
use std::collections::BTreeMap;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .map_or("plans/nomad-5-servers.toml", String::as_str);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let text = std::fs::read_to_string(path).expect("plan readable");
    let plan = Plan::from_str_named(&text, path).expect("plan parses");
    let cfg = ProcedureConfig::from_plan(&plan);
    if let Some(f) = args.get(3) {
        one(&plan, &cfg, seed, f);
        return;
    }
    let base = baseline(&plan, &cfg, seed);
    let steps = boundaries(&base);
    println!(
        "baseline: {} steps, {} ms simulated, {} events; {} boundaries",
        base.steps.len(),
        base.duration_ms,
        base.metrics.events,
        steps.len()
    );
    let scheds = schedules(&steps, 1, usize::MAX);
    let mut by: BTreeMap<String, (u32, f64, u64, u64)> = BTreeMap::new();
    let t0 = Instant::now();
    for s in &scheds {
        let t = Instant::now();
        let (o, fired) = run_one(&plan, &cfg, s, seed);
        let wall = t.elapsed().as_secs_f64();
        let f = s[0];
        let keys = [
            format!("kind {:?}", f.kind),
            format!("dur {:?}", f.duration_s),
            format!("step {:03}", f.step),
            format!("fired {fired}"),
        ];
        for k in keys {
            let e = by.entry(k).or_default();
            e.0 += 1;
            e.1 += wall;
            e.2 += o.duration_ms;
            e.3 += o.metrics.events;
        }
    }
    let total = t0.elapsed().as_secs_f64();
    println!(
        "{} runs in {total:.2} s = {:.0} runs/s",
        scheds.len(),
        scheds.len() as f64 / total
    );
    println!(
        "{:<22} {:>5} {:>9} {:>8} {:>12} {:>10}",
        "group", "runs", "wall s", "share", "sim ms/run", "ev/run"
    );
    for (k, (n, w, d, e)) in by {
        println!(
            "{k:<22} {n:>5} {w:>9.3} {:>7.1}% {:>12} {:>10}",
            100.0 * w / total,
            d / u64::from(n),
            e / u64::from(n)
        );
    }
}

/// `explore_cost PLAN SEED FAULT`: one run's metrics.
#[allow(dead_code)]
fn one(plan: &Plan, cfg: &ProcedureConfig, seed: u64, fault: &str) {
    let f: rehearse::chaos::fault::Fault = fault.parse().expect("fault parses");
    let mut hooks = Watch {
        inner: rehearse::chaos::fault::FaultHooks::new(vec![f]),
        from: f.step,
    };
    let sim = rehearse::rehearsal::sim_config(plan, seed);
    let o = rehearse::rehearsal::rehearse_with(cfg, sim, &mut hooks).expect("valid world");
    for st in &o.steps {
        println!(
            "  {:>7} ms {:?} {:?} {}",
            st.at_ms, st.phase, st.servers, st.action
        );
    }
    println!("  tolerance: {:?}", o.tolerance);
    println!("  events: {:?}", o.events);
    println!("  verdict: {:?}", o.verdict);
    println!(
        "{fault}: {:?} {} ms {:?} {:?}",
        rehearse::chaos::explore::classify(&o),
        o.duration_ms,
        o.metrics,
        o.workload
    );
}

/// Prints, before each step from `from` on, what the ground-truth quorum check sees.
#[allow(dead_code)]
struct Watch {
    inner: rehearse::chaos::fault::FaultHooks,
    from: usize,
}

impl rehearse::rehearsal::Hooks for Watch {
    fn before(&mut self, w: &mut rehearse_sim::World, ctx: &rehearse::rehearsal::StepCtx<'_>) {
        self.inner.before(w, ctx);
        if ctx.step < self.from {
            return;
        }
        let leader = w.leader();
        let lead_last = leader
            .and_then(|l| w.agent_self(l).ok())
            .map(|a| a.raft.last_log_index);
        println!(
            "  step {} t={} ms leader {leader:?} last {lead_last:?}",
            ctx.step,
            w.now().as_millis()
        );
        for v in 0..w.server_count() {
            let a = w
                .agent_self(v)
                .ok()
                .map(|a| (a.raft.last_log_index, a.raft.state));
            let m = w.members(v).ok().and_then(|m| m.get(v).map(|x| x.status));
            println!(
                "    s{} {:?} agent {a:?} self-member {m:?}",
                v + 1,
                w.process_state(v)
            );
        }
        println!(
            "    healthy_voters {:?}",
            rehearse::rehearsal::healthy_voters(w, None)
        );
    }
    fn after(&mut self, w: &mut rehearse_sim::World, ctx: &rehearse::rehearsal::StepCtx<'_>) {
        self.inner.after(w, ctx);
    }
    fn finish(&mut self, w: &mut rehearse_sim::World) {
        self.inner.finish(w);
    }
    fn done(&mut self, w: &rehearse_sim::World) {
        for (k, n) in w.event_profile() {
            if n > 0 {
                println!("  events {k:>22} {n:>8}");
            }
        }
    }
}
