//! The short fuzzing run of the test suite: a few dozen mutated inputs per parser (see
//! `harness`). `REHEARSE_FUZZ_CASES=N` runs N per target instead; the long run is
//! `cargo run --release --example fuzz -- N`.

pub mod harness;

use harness::{Corpus, Target, input, mutate, run_case};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn cases() -> u32 {
    std::env::var("REHEARSE_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24)
}

/// Runs `cases()` mutated inputs of one target; failures are shrunk and saved to
/// `proptest-regressions/fuzz.txt`, which later runs replay first.
fn fuzz(t: Target) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = std::env::temp_dir().join(format!("rehearse-fuzz-{}-{t:?}", std::process::id()));
    let corpus = Corpus::load(root, &scratch);
    assert!(corpus.seeds(t) > 0, "no seed inputs for {t:?}");
    let config = Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz.txt",
        ))),
        ..Config::default()
    };
    let n = AtomicU64::new(0);
    let result = TestRunner::new(config).run(&input(t), |(t, seed, ms)| {
        let case = n.fetch_add(1, Ordering::Relaxed);
        let bytes = mutate(&corpus, t, &seed, &ms);
        // Debug builds simulate several times slower than release: a generous bound that
        // still catches a hang or an unbounded duration.
        run_case(&corpus, case, t, bytes, Duration::from_secs(60))
            .map(|_| ())
            .map_err(TestCaseError::fail)
    });
    let _ = std::fs::remove_dir_all(&scratch);
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn plans_never_panic_or_hang() {
    fuzz(Target::Plan);
}

#[test]
fn scenarios_never_panic_or_hang() {
    fuzz(Target::Scenario);
}

#[test]
fn journals_never_panic_and_name_the_line() {
    fuzz(Target::Journal);
}

#[test]
fn replay_records_never_panic_and_name_the_file() {
    fuzz(Target::Records);
}

#[test]
fn http_answers_never_panic() {
    fuzz(Target::Answer);
}
