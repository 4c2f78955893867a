//! rehearse-sim: a deterministic discrete-event simulator of a Nomad (or Consul) server cluster.
//!
//! One `u64` seed drives everything. No async runtime, no I/O, no wall clock, no `HashMap`
//! iteration: the same seed gives the same trace, byte for byte.
//!
//! Layout: `rng` (seeded ChaCha8 with named child streams),
//! `config`, `state` (per-server persistent and volatile state), `raft_log` (a log compacted from the
//! front without moving the rest), `node` (one server's Raft
//! node: the hashicorp/raft rules as handlers that return effects, testable without a world),
//! `raft` (the messages, and the world's dispatch to the nodes), `oracle` (the safety
//! invariants' records and checks, testable without a world), `network` (partitions, latency
//! and loss, the draws of each message's fate, testable without a world), `world` (event
//! queue, processes, gossip, autopilot, workload), `workload` (jobs, allocations, evaluations,
//! the eval broker and the scheduler workers, fed by committed entries), `steady`
//! (quiet-period elision, with its exact check), `ops` (the operator surface), `trace`. The
//! API-shaped answers, the version catalog and time units live in `rehearse-model`.

pub mod clients;
pub mod config;
pub mod leadership;
mod network;
pub mod node;
mod ops;
pub mod oracle;
mod queue;
pub mod raft;
pub mod raft_log;
mod readdress;
pub mod rng;
pub mod roomy;
pub mod state;
mod steady;
pub mod trace;
pub mod workload;
pub mod world;

pub use config::{
    AutopilotConfig, ClientConfig, NetConfig, RaftTimings, SerfTimings, ServerSpec, SimConfig,
    WorkloadConfig,
};
pub use rehearse_model::time::SimTime;
pub use state::{BadBinary, ProcessState, ServerId, StopMode};
pub use steady::SpanCheck;
pub use workload::{BacklogSeries, DeadlineStop, WorkloadOutcome, WorkloadPlaneConfig};
pub use world::{ACK_BUCKET_NS, ACK_BUCKETS, Metrics, SimError, Violation, WorkloadStats, World};
