//! Simulator throughput: 5 servers, 10 writes/s, 10 simulated minutes per iteration.
//! Report: simulated seconds per wall second = 600 / median iteration time.
//! `sim_24h`: the same cluster for a simulated day per iteration (86,400 / median iteration
//! time), the length at which a run's records used to dominate its memory.
//! `sim_slow_disk`: the same cluster for 10 simulated minutes with one follower's disk taking
//! 200 ms per fsync (the explorer's `slow-disk` fault) for the whole run. The cluster keeps
//! quorum; the slow follower falls behind and catches up in batches. While a disk is slow no
//! closed form applies, so this is the event-by-event path's figure (600 / median).

use criterion::{Criterion, criterion_group, criterion_main};
use rehearse_model::time::SEC;
use rehearse_model::versions::Version;
use rehearse_sim::{SimConfig, World};
use std::hint::black_box;

fn run(seed: u64, secs: u64) -> u64 {
    let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
    cfg.workload.writes_per_sec = 10.0;
    let mut w = World::new(cfg).expect("valid config");
    w.run_for(secs * SEC);
    w.trace_hash()
}

fn ten_minutes(seed: u64) -> u64 {
    run(seed, 600)
}

/// Ten minutes with follower `s5`'s fsyncs taking 200 ms (it is not the first leader: the
/// first election is decided by then, and a leader's slow disk is not what this measures).
fn slow_disk_follower(seed: u64) -> u64 {
    let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
    cfg.workload.writes_per_sec = 10.0;
    let mut w = World::new(cfg).expect("valid config");
    w.run_for(5 * SEC);
    let follower = (0..5)
        .rev()
        .find(|&id| w.leader() != Some(id))
        .expect("five servers, one leader");
    w.set_disk_delay(follower, 200 * rehearse_model::time::MS);
    w.run_for(595 * SEC);
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
    let mut g = c.benchmark_group("sim_24h");
    g.sample_size(10);
    g.bench_function("5_servers_10wps_24h", |b| {
        let mut seed = 0;
        b.iter(|| {
            seed += 1;
            black_box(run(black_box(seed), 24 * 3_600))
        })
    });
    g.finish();
    let mut g = c.benchmark_group("sim_slow_disk");
    g.sample_size(10);
    g.bench_function("5_servers_10wps_10min_one_slow_follower", |b| {
        let mut seed = 0;
        b.iter(|| {
            seed += 1;
            black_box(slow_disk_follower(black_box(seed)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
