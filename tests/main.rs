//! Integration tests, compiled into one test binary.

mod chaos;
mod live;
mod cli;
mod rehearse_plans;
mod scenarios;
