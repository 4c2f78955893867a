//! Same seed, same trace; different seeds, different traces (FoundationDB's "unseed" check).

use rehearse_model::time::SEC;
use rehearse_model::versions::Version;
use rehearse_sim::*;
use std::collections::BTreeSet;

fn run(seed: u64) -> u64 {
    let n = 3 + 2 * (seed % 2) as usize;
    let mut w = World::new(SimConfig::nomad(n, Version::new(1, 9, 7), seed)).unwrap();
    w.run_for(60 * SEC);
    if let Some(l) = w.leader() {
        w.crash(l);
        w.run_for(30 * SEC);
        w.start(l);
    }
    w.run_for(60 * SEC);
    assert!(
        w.violations().is_empty(),
        "seed {seed}: {:?}",
        w.violations()
    );
    w.trace_hash()
}

#[test]
fn two_hundred_seeds_replay_exactly() {
    let mut hashes = BTreeSet::new();
    for seed in 0..200 {
        let a = run(seed);
        let b = run(seed);
        assert_eq!(a, b, "seed {seed} is not deterministic");
        hashes.insert(a);
    }
    assert_eq!(
        hashes.len(),
        200,
        "different seeds must give different traces"
    );
}
