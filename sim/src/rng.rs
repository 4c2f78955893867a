//! Seeded randomness with named child streams.
//!
//! Every consumer of randomness gets its own ChaCha8 stream derived from (run seed, stream name),
//! so adding a new consumer does not shift the numbers any other consumer sees. `StdRng` is never
//! used: it is documented as non-portable across rand versions, which would break replay.

use rand::rngs::ChaCha8Rng;
use rand::{Rng, SeedableRng};

/// FNV-1a 64-bit over bytes: stable across platforms and releases (unlike `DefaultHasher`).
pub fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A deterministic random stream.
#[derive(Debug)]
pub struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    /// The root stream of a run.
    pub fn new(seed: u64) -> Self {
        SimRng {
            inner: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A child stream named `name`, independent of every other name.
    pub fn child(seed: u64, name: &str) -> Self {
        SimRng::new(fnv1a(seed, name.as_bytes()))
    }

    /// Uniform integer in `[lo, hi)`; `lo` when the range is empty.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.inner.next_u64() % (hi - lo)
    }

    /// True with probability `p` (clamped to [0, 1]).
    pub fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let x = (self.inner.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    /// A raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
}
