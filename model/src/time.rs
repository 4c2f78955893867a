//! Simulated time: nanoseconds since the start of a run. There is no other clock in the sim.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Nanoseconds in one millisecond.
pub const MS: u64 = 1_000_000;
/// Nanoseconds in one second.
pub const SEC: u64 = 1_000_000_000;

/// A point in simulated time, in nanoseconds since the run started.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct SimTime(pub u64);

impl SimTime {
    /// The start of a run.
    pub const ZERO: SimTime = SimTime(0);

    /// A time `s` seconds after the start.
    pub const fn from_secs(s: u64) -> SimTime {
        SimTime(s * SEC)
    }

    /// A time `ms` milliseconds after the start.
    pub const fn from_millis(ms: u64) -> SimTime {
        SimTime(ms * MS)
    }

    /// Nanoseconds since the start.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the start.
    pub const fn as_millis(self) -> u64 {
        self.0 / MS
    }

    /// Seconds since the start, as a float (for display only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / SEC as f64
    }

    /// This time plus `ns` nanoseconds, saturating.
    pub const fn plus(self, ns: u64) -> SimTime {
        SimTime(self.0.saturating_add(ns))
    }

    /// Nanoseconds from `earlier` to `self` (0 if `earlier` is later).
    pub const fn since(self, earlier: SimTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}
