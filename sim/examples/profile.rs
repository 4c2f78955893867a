//! Event profile and timing of the benchmark workload (5 servers, 10 writes/s, 10 simulated
//! minutes): `cargo run --release -p rehearse-sim --example profile [iterations]`.

use rehearse_model::time::SEC;
use rehearse_model::versions::Version;
use rehearse_sim::{SimConfig, World};

fn main() {
    let iters: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let run = |seed| {
        let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
        cfg.workload.writes_per_sec = 10.0;
        let mut w = World::new(cfg).expect("valid config");
        w.run_for(600 * SEC);
        w
    };
    let w = run(1);
    let total: u64 = w.event_profile().iter().map(|(_, n)| n).sum();
    for (kind, n) in w.event_profile() {
        if n > 0 {
            println!("{kind:>22} {n:>8}");
        }
    }
    println!("{:>22} {total:>8}", "total");
    println!("workload {:?}", w.workload());
    // Per-run times; the minimum is the figure least disturbed by other load on the machine.
    let mut times: Vec<f64> = (0..iters)
        .map(|seed| {
            let t = std::time::Instant::now();
            std::hint::black_box(run(seed).trace_hash());
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let (min, median) = (times[0], times[times.len() / 2]);
    println!(
        "per run: min {:.3} ms, median {:.3} ms = {:.0} simulated s per wall s (median)",
        min * 1e3,
        median * 1e3,
        600.0 / median
    );
}
