//! How long a test takes: percentiles over its latest results.

/// The `p`-th percentile (0–100) of `durations` by nearest rank; `None` when there are none.
pub fn percentile(durations: &[u64], p: u8) -> Option<u64> {
    if durations.is_empty() {
        return None;
    }
    let mut sorted = durations.to_vec();
    sorted.sort_unstable();
    let p = usize::from(p.min(100));
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let durations: Vec<u64> = (1..=10).rev().collect();
        assert_eq!(percentile(&durations, 50), Some(5));
        assert_eq!(percentile(&durations, 90), Some(9));
        assert_eq!(percentile(&durations, 100), Some(10));
        assert_eq!(percentile(&durations, 0), Some(1));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
