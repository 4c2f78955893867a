//! Simulator throughput: 5 servers, 10 writes/s, 10 simulated minutes per iteration.
//! Report: simulated seconds per wall second = 600 / median iteration time.

use criterion::{Criterion, criterion_group, criterion_main};
use rehearse_model::time::SEC;
use rehearse_model::versions::Version;
use rehearse_sim::{SimConfig, World};
use std::hint::black_box;

fn ten_minutes(seed: u64) -> u64 {
    let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
    cfg.workload.writes_per_sec = 10.0;
    let mut w = World::new(cfg).expect("valid config");
    w.run_for(600 * SEC);
    w.trace_hash()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim");
    g.sample_size(20);
    g.bench_function("5_servers_10wps_10min", |b| {
        let mut seed = 0;
        b.iter(|| {
            seed += 1;
            black_box(ten_minutes(black_box(seed)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
