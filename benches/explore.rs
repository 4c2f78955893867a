//! Explorer throughput: fault runs per second on the 3-server example plan (one thread, so the
//! figure is per core; `rehearse explore --jobs N` scales it across cores).

use criterion::{Criterion, criterion_group, criterion_main};
use rehearse::chaos::explore::{baseline, boundaries, explore, schedules};
use rehearse::plan::Plan;
use rehearse::procedure::ProcedureConfig;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let text = include_str!("../plans/nomad-3-servers.toml");
    let plan = Plan::from_str_named(text, "nomad-3-servers.toml").expect("example plan parses");
    let cfg = ProcedureConfig::from_plan(&plan);
    let steps = boundaries(&baseline(&plan, &cfg, 1));
    // 100 schedules spread over the whole space (every 13th), one seed each.
    let scheds: Vec<_> = schedules(&steps, 1, usize::MAX)
        .into_iter()
        .step_by(13)
        .take(100)
        .collect();
    let mut g = c.benchmark_group("explore");
    g.sample_size(10);
    g.bench_function("100_fault_runs_3_servers_1_thread", |b| {
        b.iter(|| black_box(explore(&plan, &cfg, &scheds, 1..2, 1, &|_| {}).runs))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
