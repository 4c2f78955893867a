use rehearse_sim::time::SEC;
use rehearse_sim::versions::Version;
use rehearse_sim::*;
fn main() {
    for (name, cfg) in [
        ("nomad", SimConfig::nomad(3, Version::new(1, 9, 7), 7)),
        ("consul", SimConfig::consul(3, 7)),
    ] {
        let mut w = World::new(cfg).unwrap();
        w.run_for(30 * SEC);
        let l = w.leader().unwrap();
        println!(
            "{name}: leader {l} at {} metrics {:?} wl {:?}",
            w.now(),
            w.metrics(),
            w.workload()
        );
        println!(
            "health {:?}",
            w.autopilot_health(0)
                .map(|h| (h.healthy, h.failure_tolerance))
        );
        let t0 = w.now();
        w.crash(l);
        let mut t = None;
        for _ in 0..6000 {
            w.run_for(10_000_000);
            if w.leader().is_some() {
                t = Some(w.now().since(t0));
                break;
            }
        }
        println!("failover {:?} s", t.map(|x| x as f64 / 1e9));
        w.start(l);
        w.run_for(60 * SEC);
        println!(
            "after: {:?} {:?} viol {:?}",
            w.metrics(),
            w.workload(),
            w.violations()
        );
        println!(
            "health {:?}",
            w.autopilot_health(0)
                .map(|h| (h.healthy, h.failure_tolerance))
        );
    }
}
