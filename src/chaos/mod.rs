//! Chaos: faults at any step of the procedure, and an explorer that tries them all.

pub mod explore;
pub mod fault;
pub mod pairs;
pub mod sample;
pub mod scenario;
pub mod shard;
pub mod shrink;
pub mod summary;
pub mod sweep;

pub use fault::{Fault, FaultError, FaultHooks, FaultKind, Target};
