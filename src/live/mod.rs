//! The real world: HTTP clients for Nomad and Consul that turn the operator endpoints into the
//! procedure's observations, node control (local processes or command templates), the run
//! journal, a write probe, and the executor that drives the same `Procedure` the simulator
//! rehearsed.
//!
//! Observer time on a live cluster is Unix-epoch milliseconds (autopilot's `StableSince` is a
//! wall-clock time), unlike the simulator's simulated milliseconds. `install_time` in a plan is
//! simulated only: live, the install takes as long as it takes.

pub mod archive;
pub mod client;
pub mod cluster;
pub mod control;
pub mod executor;
pub mod import;
pub mod journal;
pub mod local;
pub mod parse;
pub mod probe;
pub mod signal;
