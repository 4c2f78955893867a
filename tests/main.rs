//! Integration tests, compiled into one test binary.

mod cli;
mod rehearse_plans;
