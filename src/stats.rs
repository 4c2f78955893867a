//! The one median every command reports (`check`, `report`, `calibrate`): the lower middle of
//! the sorted values, so it is always a value that was observed, never the average of two.

/// The median of `v` (the lower middle value for an even count); `None` when `v` is empty.
pub fn median_f64(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    lower_middle(&s)
}

/// The median of `v`, as `median_f64`.
pub fn median_u64(v: &[u64]) -> Option<u64> {
    let mut s = v.to_vec();
    s.sort_unstable();
    lower_middle(&s)
}

fn lower_middle<T: Copy>(sorted: &[T]) -> Option<T> {
    sorted.get(sorted.len().checked_sub(1)? / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_an_observed_value() {
        assert_eq!(median_f64(&[]), None);
        assert_eq!(median_f64(&[3.0]), Some(3.0));
        assert_eq!(median_f64(&[4.0, 1.0, 3.0, 2.0]), Some(2.0));
        assert_eq!(median_f64(&[5.0, 1.0, 4.0, 2.0, 3.0]), Some(3.0));
        assert_eq!(median_u64(&[10, 40, 20, 30]), Some(20));
        assert_eq!(median_u64(&[]), None);
    }
}
