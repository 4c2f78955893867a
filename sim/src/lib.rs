//! rehearse-sim: a deterministic discrete-event simulator of a Nomad (or Consul) server cluster.
//!
//! One `u64` seed drives everything. No async runtime, no I/O, no wall clock, no `HashMap`
//! iteration: the same seed gives the same trace, byte for byte.

pub mod api;
pub mod versions;
