//! Percentiles of the measured samples, one definition for every report.

/// The `fraction` percentile of `sorted` by the nearest-rank method (the smallest sample at or
/// above that share of all), or `None` when there are no samples.
pub fn nearest_rank<T: Copy>(sorted: &[T], fraction: f64) -> Option<T> {
    debug_assert!((0.0..=1.0).contains(&fraction), "a fraction, not a percentage");
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_the_smallest_sample_covering_the_fraction() {
        let samples: Vec<u32> = (1..=100).collect();
        assert_eq!(nearest_rank(&samples, 0.5), Some(50));
        assert_eq!(nearest_rank(&samples, 0.99), Some(99));
        assert_eq!(nearest_rank(&samples, 0.999), Some(100));
        assert_eq!(nearest_rank(&samples, 0.0), Some(1));
        assert_eq!(nearest_rank::<u32>(&[], 0.5), None);
    }
}
