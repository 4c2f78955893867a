//! Trace hashes of the `sim` bench's world and of faulted worlds of 3 to 7 servers, one line
//! per run: a quick check that a change to the simulator's cost leaves its behaviour alone
//! (compare the output before and after).
//!
//! `cargo run --release --example trace_hashes [SEEDS]`

use rehearse_model::time::{MS, SEC};
use rehearse_model::versions::Version;
use rehearse_sim::state::StopMode;
use rehearse_sim::{SimConfig, World};

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    for seed in 1..=seeds {
        let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
        cfg.workload.writes_per_sec = 10.0;
        let mut w = World::new(cfg).expect("valid config");
        w.run_for(600 * SEC);
        println!("bench seed {seed}: {:016x}", w.trace_hash());
    }
    for n in 3..=7 {
        for seed in 1..=seeds {
            let mut cfg = SimConfig::nomad(n, Version::new(1, 9, 7), seed);
            cfg.workload.writes_per_sec = 5.0 + (seed % 4) as f64 * 5.0;
            let mut w = World::new(cfg).expect("valid config");
            w.run_for(30 * SEC);
            // Reads at irregular times (settling), then faults of every kind.
            for k in 0..10 {
                w.run_for(137 * MS + k * 11 * MS);
                let _ = w.leader().map(|l| w.agent_self(l));
            }
            let l = w.leader();
            if let Some(l) = l {
                w.crash(l);
            }
            w.run_for(20 * SEC);
            if let Some(l) = l {
                w.start(l);
            }
            w.run_for(20 * SEC);
            let f = (seed as usize) % n;
            w.stop(f, StopMode::Graceful);
            w.run_for(15 * SEC);
            w.start(f);
            w.run_for(20 * SEC);
            w.pause((f + 1) % n);
            w.run_for(5 * SEC);
            w.resume((f + 1) % n);
            w.run_for(10 * SEC);
            w.partition(&[0], &(1..n).collect::<Vec<_>>());
            w.run_for(10 * SEC);
            w.heal();
            w.run_for(10 * SEC);
            w.set_latency(MS, 5 * MS);
            w.set_loss(0.01);
            w.run_for(10 * SEC);
            w.set_loss(0.0);
            w.set_latency(200_000, 2 * MS);
            w.set_disk_delay((f + 2) % n, 3 * MS);
            w.run_for(10 * SEC);
            w.set_disk_delay((f + 2) % n, 0);
            w.run_for(60 * SEC);
            w.check_log_matching();
            println!(
                "nomad({n}) seed {seed}: {:016x} events {} violations {}",
                w.trace_hash(),
                w.metrics().events,
                w.violations().len()
            );
        }
    }
}
