//! The long fuzzing run: `cargo run --release --example fuzz -- [CASES_PER_TARGET] [TARGET…]`
//! (default 10,000 per target; targets plan, scenario, journal, records, answer).
//!
//! The same structure-aware mutations as the test suite's short run (`tests/fuzz/`): every
//! input must be answered without a panic within 10 s; plans and scenarios that load also go
//! through lint and a one-seed rehearsal. Prints, per target, the inputs run, how many loaded
//! and were simulated, the failures (panics, hangs, unnamed errors) and the slowest input.
//! The summary goes to stderr: stdout carries what the commands under test print (`rehearse
//! replay` prints each replayed run), so discard it. Peak memory: run it under
//! `/usr/bin/time -v`, e.g.
//! `/usr/bin/time -v target/release/examples/fuzz 200000 > /dev/null`.

#[path = "../tests/fuzz/harness.rs"]
mod harness;

use harness::{Corpus, Target, input, mutate, run_case};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let cases: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let names: Vec<String> = args.collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = std::env::temp_dir().join(format!("rehearse-fuzz-long-{}", std::process::id()));
    let corpus = Corpus::load(root, &scratch);
    let mut failures = 0u64;
    for t in Target::ALL {
        let name = format!("{t:?}").to_lowercase();
        if !names.is_empty() && !names.contains(&name) {
            continue;
        }
        failures += run_target(&corpus, t, cases);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if failures > 0 {
        std::process::exit(1);
    }
}

/// Runs `cases` inputs of one target (a fixed RNG seed: the run is repeatable); returns the
/// number of failures.
fn run_target(corpus: &Corpus, t: Target, cases: u64) -> u64 {
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = input(t);
    let started = Instant::now();
    let (mut loaded, mut simulated, mut failures) = (0u64, 0u64, 0u64);
    let mut slowest = Duration::ZERO;
    for case in 0..cases {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let (t, seed, ms) = tree.current();
        let bytes = mutate(corpus, t, &seed, &ms);
        let began = Instant::now();
        match run_case(corpus, case, t, bytes, Duration::from_secs(10)) {
            Ok(s) => {
                loaded += s.loaded;
                simulated += s.simulated;
            }
            Err(e) => {
                failures += 1;
                eprintln!(
                    "FAIL {t:?} case {case}: {}",
                    e.chars().take(2000).collect::<String>()
                );
            }
        }
        slowest = slowest.max(began.elapsed());
    }
    eprintln!(
        "{t:?}: {cases} inputs, {loaded} loaded, {simulated} simulated, {failures} failures, slowest {:.2}s, {:.0}s in all",
        slowest.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    failures
}
