//! rehearse-model: the vocabulary both worlds share.
//!
//! The simulator (`rehearse-sim`) and the live drivers (`rehearse::live`) produce the same
//! answers, and the upgrade procedure reads only these: the operator API shapes (`api`), the
//! version catalog (`versions`), time units (`time`), and the procedure's contract with a
//! driver (`contract`: the observation it reads, the actions it emits). No I/O and no clock, so
//! the simulator can depend on it without giving up determinism.

pub mod api;
pub mod contract;
pub mod time;
pub mod versions;
