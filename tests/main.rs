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
