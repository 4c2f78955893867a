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

/// rand 0.10's ChaCha8Rng is not `Clone` (so a stream is not duplicated by accident); a world
/// that is cloned on purpose (the explorer forks runs at a step boundary) rebuilds the same
/// stream at the same position from its seed, stream id and word position.
impl Clone for SimRng {
    fn clone(&self) -> Self {
        let mut inner = ChaCha8Rng::from_seed(self.inner.get_seed());
        inner.set_stream(self.inner.get_stream());
        inner.set_word_pos(self.inner.get_word_pos());
        SimRng { inner }
    }
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

/// A stateless random function: the value for a given tuple of words is fixed by the key alone,
/// whatever was drawn before. The quiet-period elision (`steady`) draws the latencies of the
/// heartbeats it does not simulate from it, in any order and only when they matter (a read, or
/// the moment the elision ends), and gets the same value whenever it asks. The mixer is
/// SplitMix64's finalizer applied per word: stable across platforms and releases.
#[derive(Debug, Clone, Copy)]
pub struct StatelessRng {
    key: u64,
}

impl StatelessRng {
    /// The function named `name` of a run with seed `seed`.
    pub fn new(seed: u64, name: &str) -> Self {
        StatelessRng {
            key: fnv1a(seed, name.as_bytes()),
        }
    }

    /// A 64-bit value for the tuple `words`.
    pub fn at(&self, words: [u64; 3]) -> u64 {
        let [a, b, c] = words;
        self.prefix(a, b).at(c)
    }

    /// Two uniform integers in `[lo, hi)` for the tuple `words` (one from each half of the
    /// value when the range fits in 32 bits, else from two values); `lo` when the range is
    /// empty. Multiply-high reduction: the same negligible bias as `SimRng::range`'s modulo.
    pub fn pair_at(&self, lo: u64, hi: u64, words: [u64; 3]) -> (u64, u64) {
        let [a, b, c] = words;
        self.prefix(a, b).pair_at(lo, hi, c)
    }

    /// The function with its first two words fixed: `prefix(a, b).at(c)` is `at([a, b, c])`,
    /// and asking it for many `c` absorbs `a` and `b` once.
    #[inline]
    pub fn prefix(&self, a: u64, b: u64) -> StatelessPrefix {
        StatelessPrefix {
            h: absorb(absorb(self.key, a), b),
        }
    }
}

/// A `StatelessRng` with its first two words absorbed (see `StatelessRng::prefix`).
#[derive(Debug, Clone, Copy)]
pub struct StatelessPrefix {
    h: u64,
}

impl StatelessPrefix {
    /// `at([a, b, c])` of the function this prefix came from.
    #[inline]
    pub fn at(&self, c: u64) -> u64 {
        mix64(absorb(self.h, c))
    }

    /// `pair_at(lo, hi, [a, b, c])` of the function this prefix came from.
    #[inline]
    pub fn pair_at(&self, lo: u64, hi: u64, c: u64) -> (u64, u64) {
        if hi <= lo {
            return (lo, lo);
        }
        let span = hi - lo;
        let h = self.at(c);
        if span <= u64::from(u32::MAX) {
            let reduce = |x: u64| lo + (((x & 0xffff_ffff) * span) >> 32);
            return (reduce(h), reduce(h >> 32));
        }
        let reduce = |x: u64| lo + ((u128::from(x) * u128::from(span)) >> 64) as u64;
        (reduce(h), reduce(self.at(!c)))
    }
}

/// Odd-multiplier absorption of one word (a value is its words absorbed in order, then one
/// full avalanche, `mix64`).
#[inline]
fn absorb(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
}

/// SplitMix64's output function: a bijective 64-bit mixer.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod clone_tests {
    use super::SimRng;

    #[test]
    fn a_clone_continues_the_same_stream() {
        let mut a = SimRng::child(7, "net");
        for _ in 0..13 {
            a.next_u64(); // mid-block
        }
        let mut b = a.clone();
        let xs: Vec<u64> = (0..100).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
    }
}
