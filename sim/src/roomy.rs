//! `Roomy`: a `Vec` whose clone keeps room to grow.
//!
//! The explorer forks a world at every step boundary and runs each fork on. `Vec::clone`
//! allocates exactly the length, so the fork's first push reallocates and copies the whole
//! vector again: a Raft log of a few thousand entries per server, and the world's per-index
//! records. A `Roomy` clone reserves half its length again (at least `MIN_ROOM`) up front.

use std::ops::{Deref, DerefMut};

/// Room a clone reserves at least (elements).
const MIN_ROOM: usize = 256;

/// A `Vec` whose clone reserves room to grow (see the module docs).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Roomy<T>(Vec<T>);

impl<T> Roomy<T> {
    /// An empty vector with room for `n` elements.
    pub fn with_capacity(n: usize) -> Self {
        Roomy(Vec::with_capacity(n))
    }
}

impl<T> From<Vec<T>> for Roomy<T> {
    fn from(v: Vec<T>) -> Self {
        Roomy(v)
    }
}

impl<T: Clone> Clone for Roomy<T> {
    fn clone(&self) -> Self {
        Roomy(copy_with_room(&self.0))
    }
}

/// A copy of `xs` with room to grow: half its length again, at least `MIN_ROOM`.
pub fn copy_with_room<T: Clone>(xs: &[T]) -> Vec<T> {
    copy_with(xs, (xs.len() / 2).max(MIN_ROOM))
}

/// A copy of `xs` with room for `room` more elements.
pub fn copy_with<T: Clone>(xs: &[T], room: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(xs.len() + room);
    v.extend_from_slice(xs);
    v
}

impl<T> Deref for Roomy<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T> DerefMut for Roomy<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_has_the_same_elements_and_room_to_grow() {
        let mut a: Roomy<u32> = Roomy::with_capacity(0);
        a.extend(0..1000);
        let b = a.clone();
        assert_eq!(a, b);
        assert!(b.capacity() >= 1500);
    }
}
