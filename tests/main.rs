//! Integration tests, compiled into one test binary.

mod chaos;
mod cli;
mod containers;
mod live;
mod rehearse_plans;
mod report;
mod scenarios;
