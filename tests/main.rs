//! Integration tests, compiled into one test binary.

mod calibration;
mod chaos;
mod cli;
mod containers;
mod fuzz;
mod live;
mod progress;
mod rehearse_plans;
mod report;
mod scenarios;
mod security;
mod surface;
mod sweeps;
mod workload_props;

/// Runs the rehearse binary from the repository root, waiting for it.
pub(crate) fn rehearse(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run rehearse")
}
