//! Where the simulator's effort goes in the `sim` bench's world: 5 Nomad servers, 10 writes/s,
//! 10 simulated minutes, over 20 seeds (or SEEDS); prints the events processed by kind and the
//! fastest wall time per run over REPS repetitions (a rough figure: the bench is the measure).
//!
//! `cargo run --release --example sim_profile [SEEDS] [REPS]`

use rehearse_sim::time::SEC;
use rehearse_sim::versions::Version;
use rehearse_sim::{SimConfig, World};
use std::time::Instant;

fn run(seed: u64) -> World {
    let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
    cfg.workload.writes_per_sec = 10.0;
    let mut w = World::new(cfg).expect("valid config");
    w.run_for(600 * SEC);
    w
}

fn main() {
    let arg = |i: usize, d: u64| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (seeds, reps) = (arg(1, 20), arg(2, 1));
    let mut total: Vec<(&'static str, u64)> = Vec::new();
    let mut messages = 0;
    for seed in 1..=seeds {
        let w = run(seed);
        messages += w.metrics().messages;
        let p = w.event_profile();
        if total.is_empty() {
            total = p;
        } else {
            for (t, (_, n)) in total.iter_mut().zip(p) {
                t.1 += n;
            }
        }
    }
    println!("per run (mean over {seeds} seeds):");
    let mut all = 0;
    for (k, n) in &total {
        all += n;
        if *n > 0 {
            println!("  {k:<22} {:>10.1}", *n as f64 / seeds as f64);
        }
    }
    println!("  {:<22} {:>10.1}", "events", all as f64 / seeds as f64);
    println!(
        "  {:<22} {:>10.1}",
        "messages delivered",
        messages as f64 / seeds as f64
    );
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        for seed in 1..=seeds {
            std::hint::black_box(run(seed).trace_hash());
        }
        best = best.min(t.elapsed().as_secs_f64() / seeds as f64);
    }
    println!("wall per run: {:.3} ms (fastest of {reps})", best * 1e3);
}
