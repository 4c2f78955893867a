//! rehearse: rehearse a HashiCorp Nomad (or Consul) server-cluster upgrade in a deterministic
//! simulator, under faults, then run the same procedure against a real cluster.

pub mod calibrate;
pub mod chaos;
pub mod cli;
pub mod cmd;
pub mod live;
pub mod logging;
pub mod plan;
pub mod procedure;
pub mod rehearsal;
pub mod report;
