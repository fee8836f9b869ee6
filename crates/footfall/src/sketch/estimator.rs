//! Ertl's improved cardinality estimator over a register histogram.
//!
//! From O. Ertl, "New cardinality estimation algorithms for HyperLogLog sketches"
//! (2017), section 4 ("improved raw estimator"), with the σ and τ series of its
//! algorithm 6. Redis ≥ 5 evaluates exactly these series in double precision and
//! rounds half away from zero; every floating-point operation below is in the same
//! order so the result matches `PFCOUNT` to the unit.

use super::params::{MAX_RANK, REGISTERS};

/// α∞ = 1 / (2 ln 2), the limit of the HyperLogLog bias constant for large m.
///
/// Written as a decimal (the shortest one for the f64 nearest Redis's
/// `0.721347520444481703680`) so the bit pattern is Redis's, rather than relying on
/// `0.5 / LN_2` rounding the same way.
pub(super) const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The number of histogram buckets: a 6-bit register holds 0..=63.
pub(super) const HISTOGRAM_LEN: usize = 64;

/// Estimates the cardinality from `histogram[v]` = the number of registers holding `v`.
///
/// Registers above [`MAX_RANK`] (possible only in hand-made dense bytes, since no
/// hash produces them) are ignored, as Redis ignores them.
pub(super) fn estimate(histogram: &[u32; HISTOGRAM_LEN]) -> u64 {
    let m = REGISTERS as f64;
    let q = usize::from(MAX_RANK) - 1;

    // The τ term corrects for registers that saturated at q + 1.
    let mut z = m * tau((m - f64::from(histogram[q + 1])) / m);
    for &count in histogram[1..=q].iter().rev() {
        z += f64::from(count);
        z *= 0.5;
    }
    // The σ term corrects for registers still at zero (the small-range regime).
    z += m * sigma(f64::from(histogram[0]) / m);

    // An empty sketch has σ(1) = ∞, so the quotient is 0. `round` is half away from
    // zero like C's `llroundl`; the cast saturates instead of overflowing, which only
    // matters for hand-made sketches whose registers are all above `MAX_RANK`.
    (ALPHA_INF * m * m / z).round() as u64
}

/// σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1), summed until the f64 stops changing.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

/// τ(x) = (1 − x − Σ_{k≥1} (1 − x^(2^−k))² 2^−k) / 3, summed until the f64 stops
/// changing.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        let gap = 1.0 - x;
        z -= gap * gap * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_inf_is_one_over_two_ln_two() {
        let redis: f64 = "0.721347520444481703680".parse().expect("a decimal");
        assert_eq!(ALPHA_INF.to_bits(), redis.to_bits());
        let computed = 0.5 / std::f64::consts::LN_2;
        assert!((ALPHA_INF - computed).abs() <= f64::EPSILON);
    }

    #[test]
    fn sigma_and_tau_match_their_series() {
        // Independent evaluation of the series by a fixed number of terms.
        for &x in &[0.0f64, 0.1, 0.5, 0.9, 0.999] {
            let mut expected: f64 = x;
            for k in 1..60 {
                expected += x.powf(2f64.powi(k)) * 2f64.powi(k - 1);
            }
            assert!(
                (sigma(x) - expected).abs() <= 1e-12 * expected.max(1.0),
                "sigma({x})"
            );
        }
        assert!(sigma(1.0).is_infinite());
        for &x in &[0.1f64, 0.5, 0.9, 0.999] {
            let mut sum = 0.0;
            for k in 1..60 {
                let root = x.powf(2f64.powi(-k));
                sum += (1.0 - root) * (1.0 - root) * 2f64.powi(-k);
            }
            let expected = (1.0 - x - sum) / 3.0;
            assert!((tau(x) - expected).abs() <= 1e-12, "tau({x})");
        }
        assert_eq!(tau(0.0), 0.0);
        assert_eq!(tau(1.0), 0.0);
    }

    #[test]
    fn empty_histogram_estimates_zero() {
        let mut histogram = [0; HISTOGRAM_LEN];
        histogram[0] = REGISTERS as u32;
        assert_eq!(estimate(&histogram), 0);
    }

    #[test]
    fn small_counts_agree_with_linear_counting() {
        // With few non-zero registers the estimator is close to linear counting,
        // m ln(m / V), which is independent of the series above.
        let m = REGISTERS as f64;
        for nonzero in [1u32, 10, 100, 1000] {
            let mut histogram = [0; HISTOGRAM_LEN];
            histogram[0] = REGISTERS as u32 - nonzero;
            histogram[1] = nonzero;
            let linear = m * (m / f64::from(histogram[0])).ln();
            let estimated = estimate(&histogram) as f64;
            assert!(
                (estimated - linear).abs() <= 1.0 + linear * 0.01,
                "{nonzero}: {estimated} vs {linear}"
            );
        }
    }
}
