//! rehearse: rehearse a HashiCorp Nomad (or Consul) server-cluster upgrade in a deterministic
//! simulator, under faults, then run the same procedure against a real cluster.

/// `println!` that never panics. Rust ignores SIGPIPE, so `println!` panics when stdout is a
/// closed pipe (`rehearse explore … | head`); a command's result and exit code must not depend
/// on that, and the executor must never abort in the middle of an action on a real cluster
/// because its reader went away. Output that cannot be written is dropped.
#[macro_export]
macro_rules! out {
    () => {
        $crate::cli::write_out(::std::format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_out(::std::format_args!($($arg)*))
    };
}

pub mod bounds;
pub mod calibrate;
pub mod chaos;
pub mod check;
pub mod cli;
pub mod cmd;
pub mod driver;
pub mod live;
pub mod logging;
pub mod output;
pub mod plan;
pub mod pool;
pub mod procedure;
pub mod progress;
pub mod rehearsal;
pub mod report;
pub mod stats;
