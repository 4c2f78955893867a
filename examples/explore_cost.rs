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
    let (o, _) = run_one(plan, cfg, &[f], seed);
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
