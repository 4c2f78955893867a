//! Subcommands. Each module has an `Args` (clap) struct and a `run` function.

pub mod calibrate;
pub mod chaos;
pub mod check;
pub mod execute;
pub mod explore;
pub mod import;
pub mod lint;
pub mod merge;
pub mod replay;
pub mod report;
pub mod schema;
pub mod shell;
pub mod simulate;
pub mod sweep;
