//! The one percentile definition of the gateway, its health ladder, hedging
//! and drill reports, so a p95 means the same wherever it is shown or acted
//! on.

/// The nearest-rank percentile: the smallest value with at least `p` % of
/// the values at or below it, so it is always a value that was actually
/// observed (no interpolation between two requests). `p` is in 0–100;
/// `sorted` must be sorted ascending; empty gives `None`.
pub fn nearest_rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    // p × n first: exact for whole percentages, where p / 100 is not.
    let rank = (p * sorted.len() as f64 / 100.0).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_smallest_value_with_p_percent_at_or_below_it() {
        let v: Vec<u32> = (1..=10).map(|n| n * 10).collect();
        assert_eq!(nearest_rank(&v, 50.0), Some(50));
        assert_eq!(nearest_rank(&v, 95.0), Some(100));
        assert_eq!(nearest_rank(&v, 10.0), Some(10));
        assert_eq!(nearest_rank(&v, 0.0), Some(10));
        assert_eq!(nearest_rank(&v, 100.0), Some(100));
        assert_eq!(nearest_rank(&[7], 99.0), Some(7));
        assert_eq!(nearest_rank::<u32>(&[], 50.0), None);
        let odd = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(nearest_rank(&odd, 50.0), Some(3.0));
        assert_eq!(nearest_rank(&odd, 95.0), Some(5.0));
    }

    /// Hedging once rounded `p × (n - 1)` to an index, which lands one
    /// value high whenever that product ends in .5: the median of 1..=20
    /// came out as 11, a value with 55 % at or below it.
    #[test]
    fn an_even_count_median_is_the_lower_middle_value() {
        let v: Vec<u32> = (1..=20).collect();
        assert_eq!(nearest_rank(&v, 50.0), Some(10));
        let rounded_index = (0.5 * (v.len() - 1) as f64).round() as usize;
        assert_eq!(v[rounded_index], 11);
    }

    #[test]
    fn whole_percentages_are_exact() {
        // 7 / 100 × 100 is 7.000000000000001 in floating point; a rank
        // computed that way would be 8.
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(nearest_rank(&v, 7.0), Some(7));
        assert_eq!(nearest_rank(&v, 95.0), Some(95));
    }
}
