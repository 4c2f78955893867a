use rehearse_sim::time::SEC;
use rehearse_sim::versions::Version;
use rehearse_sim::{SimConfig, World};
fn main() {
    let mut tot = std::collections::BTreeMap::new();
    for seed in 1..=20 {
        let mut cfg = SimConfig::nomad(5, Version::new(1, 9, 7), seed);
        cfg.workload.writes_per_sec = 10.0;
        let mut w = World::new(cfg).expect("valid config");
        w.run_for(600 * SEC);
        for (k, n) in w.event_profile() {
            *tot.entry(k).or_insert(0u64) += n;
        }
        if seed == 1 {
            println!("{:?}", w.metrics());
        }
    }
    for (k, n) in tot {
        println!("{k:>24} {:>10.1}", n as f64 / 20.0);
    }
}
