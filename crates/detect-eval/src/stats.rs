//! The statistics the measurements report: percentile, mean and standard deviation (the rows'
//! summaries and `detect bench`), and the interval of a difference of two means (the report's
//! verdicts).

/// Linear-interpolated percentile of sorted values (q in 0..=100); NaN when there are none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// Arithmetic mean; NaN when there are no values.
pub fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v {
        s += x;
        n += 1;
    }
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Sample standard deviation (n − 1); NaN with fewer than two values.
pub fn std_dev(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean(v.iter().copied());
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// z of a two-sided 95 % interval: the normal approximation, fair for the hundreds of images a
/// run has.
const Z95: f64 = 1.96;

/// Half-width of the 95 % interval of the mean of `v`; NaN with fewer than two values.
pub fn mean_95(v: &[f64]) -> f64 {
    Z95 * std_dev(v) / (v.len() as f64).sqrt()
}

/// Half-width of the 95 % interval of the difference of two means, each given as (standard
/// deviation, count): Welch's standard error times z.
pub fn mean_difference_95(a: (f64, usize), b: (f64, usize)) -> f64 {
    let var = |(sd, n): (f64, usize)| sd * sd / n as f64;
    Z95 * (var(a) + var(b)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_the_interval_of_a_difference() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squares 32, sample variance 32 / 7.
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!((std_dev(&v) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert!(std_dev(&[1.0]).is_nan());
        // sd 3 over 9 and sd 4 over 16: standard error sqrt(1 + 1).
        assert!((mean_difference_95((3.0, 9), (4.0, 16)) - 1.96 * 2f64.sqrt()).abs() < 1e-12);
        // The eight values above: 1.96 * sqrt(32 / 7) / sqrt(8).
        assert!((mean_95(&v) - 1.96 * (32.0f64 / 7.0 / 8.0).sqrt()).abs() < 1e-12);
        assert!(mean_95(&[1.0]).is_nan());
    }

    #[test]
    fn percentile_interpolates_between_ranks() {
        let v = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(percentile(&v, 0.0), 10.0);
        assert_eq!(percentile(&v, 100.0), 40.0);
        assert!((percentile(&v, 50.0) - 25.0).abs() < 1e-12);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn mean_of_nothing_is_nan() {
        assert_eq!(mean([1.0, 2.0, 6.0].into_iter()), 3.0);
        assert!(mean(std::iter::empty()).is_nan());
    }
}
