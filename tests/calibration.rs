//! Pins the simulator to measured reality: the real Consul 1.8.7 trials recorded by
//! `rehearse calibrate --against consul --json-out FILE` (tests/fixtures/calibration/consul-1.8.7.json)
//! against fresh simulator runs. A change that moves the simulator away from what real servers
//! did (outcome agreement < 95 %, or a median off by more than 25 %) fails here, in seconds,
//! without any real server.

use rehearse::calibrate::{self, Runs, compare, meets_goal};

const SEEDS: u64 = 20;

fn recorded() -> Vec<Runs> {
    let path = format!(
        "{}/tests/fixtures/calibration/consul-1.8.7.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::from_value(v["runs"].clone()).unwrap()
}

#[test]
fn the_simulator_still_matches_real_consul_on_every_scenario() {
    let consul = std::path::Path::new("/usr/bin/consul"); // only its path goes into the plan
    let plan = calibrate::real::plan(consul).unwrap();
    let mut rows = Vec::new();
    let mut failing = Vec::new();
    let recorded = recorded();
    assert_eq!(
        recorded.len(),
        calibrate::SCENARIOS.len(),
        "every scenario was measured"
    );
    for r in recorded {
        let sim = (1..=SEEDS)
            .map(|seed| calibrate::sim::run(r.scenario, seed, &plan).unwrap())
            .collect();
        let c = compare(&Runs { sim, ..r });
        if !meets_goal(&c) {
            failing.push(c.scenario.name());
        }
        rows.push(c);
    }
    assert!(
        failing.is_empty(),
        "the simulator drifted from real Consul on {failing:?}:\n{}",
        calibrate::table(&rows)
    );
}
