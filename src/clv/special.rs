//! Special functions the CLV models need: `ln Γ`, digamma and the Gauss hypergeometric series.
//!
//! Written here instead of pulling a special-function crate. `ln Γ` and digamma shift the argument up to
//! at least 10 with the recurrence and then use the Stirling / de Moivre asymptotic series, which is
//! accurate to a few ulps there; both are only defined (and only called) for positive arguments.

use std::f64::consts::PI;

/// Below this the recurrence shifts the argument up before the asymptotic series is used.
const ASYMPTOTIC_FROM: f64 = 10.0;

/// Natural log of the gamma function for `x > 0` (NaN otherwise).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    // ln Γ(x) = ln Γ(x + k) − ln(x (x+1) … (x+k−1)); the product of at most ten factors below 10
    // cannot overflow.
    let mut shifted = x;
    let mut product = 1.0;
    while shifted < ASYMPTOTIC_FROM {
        product *= shifted;
        shifted += 1.0;
    }
    let z = shifted;
    let z2 = z * z;
    // Σ B_2k / (2k (2k−1) z^(2k−1)), k = 1..8.
    let series = (1.0 / 12.0
        + (-1.0 / 360.0
            + (1.0 / 1260.0
                + (-1.0 / 1680.0
                    + (1.0 / 1188.0 + (-691.0 / 360_360.0 + (1.0 / 156.0 - 3617.0 / 122_400.0 / z2) / z2) / z2)
                        / z2)
                    / z2)
                / z2)
            / z2)
        / z;
    let stirling = (z - 0.5) * z.ln() - z + 0.5 * (2.0 * PI).ln() + series;
    stirling - product.ln()
}

/// Digamma ψ(x) = d ln Γ(x) / dx for `x > 0` (NaN otherwise).
pub(crate) fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    let mut shifted = x;
    let mut correction = 0.0;
    while shifted < ASYMPTOTIC_FROM {
        correction += 1.0 / shifted;
        shifted += 1.0;
    }
    let z = shifted;
    let w = 1.0 / (z * z);
    // Σ B_2k / (2k z^2k), k = 1..7.
    let series = w
        * (1.0 / 12.0
            + w * (-1.0 / 120.0
                + w * (1.0 / 252.0 + w * (-1.0 / 240.0 + w * (1.0 / 132.0 + w * (-691.0 / 32_760.0 + w / 12.0))))));
    z.ln() - 0.5 / z - series - correction
}

/// Largest number of series terms before [`hyp2f1`] gives up (reached only for `z` within about 1e-5
/// of 1 with large parameters).
const HYP2F1_MAX_TERMS: usize = 2_000_000;

/// Gauss hypergeometric function ₂F₁(a, b; c; z) by its power series, for `0 ≤ z < 1`.
///
/// Terms are summed until a geometric bound on the remaining tail is below 1e-17 of the running sum,
/// which for the arguments the BG/NBD model produces (`z = t / (α + T + t)`) takes tens to a few
/// thousand terms. Returns `None` when `z` is outside `[0, 1)`, `c` is (numerically) a non-positive
/// integer, a parameter is not finite, or the series did not converge within [`HYP2F1_MAX_TERMS`] terms
/// or overflowed.
pub(crate) fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(a.is_finite() && b.is_finite() && c.is_finite() && (0.0..1.0).contains(&z)) {
        return None;
    }
    if c <= 0.0 && (c - c.round()).abs() < 1e-12 {
        return None;
    }
    if z == 0.0 {
        return Some(1.0);
    }
    // Past this index no factor (a + k), (b + k), (c + k) can be close to zero, so a small term means
    // the terms have really decayed (they cannot be small while still growing).
    let guard = a.abs().max(b.abs()).max(c.abs());
    let ratio = |k: f64| (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    for n in 0..HYP2F1_MAX_TERMS {
        let k = n as f64;
        term *= ratio(k);
        sum += term;
        if !sum.is_finite() {
            return None;
        }
        // A term vanishes exactly when a or b is a non-positive integer: the series terminates.
        if term == 0.0 {
            return Some(sum);
        }
        if k > guard {
            // The ratio of consecutive terms tends to z; bound the tail by a geometric series with the
            // larger of the next ratio and z.
            let q = ratio(k + 1.0).abs().max(z);
            if q < 1.0 && term.abs() * q / (1.0 - q) <= 1e-17 * sum.abs() {
                return Some(sum);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol, "got {got:.17}, want {want:.17}, diff {:e}", got - want);
    }

    #[test]
    fn ln_gamma_matches_known_values() {
        // Absolute error ~1e-15: the recurrence subtracts ln(9!) ≈ 12.8 from ln Γ(10).
        close(ln_gamma(1.0), 0.0, 4e-15);
        close(ln_gamma(2.0), 0.0, 4e-15);
        close(ln_gamma(0.5), 0.5 * PI.ln(), 4e-15);
        close(ln_gamma(10.0), (362_880.0_f64).ln(), 1e-13);
        // scipy.special.gammaln
        close(ln_gamma(0.242593), 1.319815984069629, 1e-14);
        close(ln_gamma(3.7445884609237634), 1.4804207046536306, 1e-14);
        close(ln_gamma(181.2), 759.2873702548453, 1e-11);
        close(ln_gamma(1e-8), 18.42068073818021, 1e-12);
        assert!(ln_gamma(0.0).is_nan());
        assert!(ln_gamma(-1.5).is_nan());
        assert!(ln_gamma(f64::NAN).is_nan());
    }

    #[test]
    fn digamma_matches_known_values() {
        const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
        close(digamma(1.0), -EULER_GAMMA, 1e-15);
        close(digamma(0.5), -EULER_GAMMA - 2.0 * 2.0_f64.ln(), 1e-14);
        // scipy.special.digamma
        close(digamma(0.242593), -4.3584892441597365, 1e-13);
        close(digamma(25.5), 3.2189424728839198, 1e-14);
        close(digamma(100.0), 4.600161852738087, 1e-14);
        // ψ is the derivative of ln Γ.
        let h = 1e-4;
        for x in [1.7, 6.2, 13.0, 48.5] {
            close(digamma(x), (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h), 1e-8);
        }
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // ₂F₁(1, 1; 2; z) = −ln(1 − z) / z
        for z in [0.1, 0.5, 0.9, 0.999] {
            close(hyp2f1(1.0, 1.0, 2.0, z).unwrap(), -(1.0 - z).ln() / z, 1e-12);
        }
        // ₂F₁(a, b; b; z) = (1 − z)^(−a)
        close(hyp2f1(0.7, 2.3, 2.3, 0.8).unwrap(), 0.2_f64.powf(-0.7), 1e-12);
        // terminating series: ₂F₁(−2, b; c; z) = 1 − 2bz/c + b(b+1)z²/(c(c+1))
        let (b, c, z) = (1.5, 2.5, 0.4);
        close(hyp2f1(-2.0, b, c, z).unwrap(), 1.0 - 2.0 * b * z / c + b * (b + 1.0) * z * z / (c * (c + 1.0)), 1e-15);
        // scipy.special.hyp2f1(2.242593, 4.425752, 5.218638, 39/82.27)
        close(hyp2f1(2.242593, 4.425752, 5.218638, 39.0 / 82.27).unwrap(), 3.2978447839557603, 1e-12);
        assert_eq!(hyp2f1(1.0, 1.0, 2.0, 0.0), Some(1.0));
        assert_eq!(hyp2f1(1.0, 1.0, 2.0, 1.0), None);
        assert_eq!(hyp2f1(1.0, 1.0, -1.0, 0.5), None);
        assert_eq!(hyp2f1(f64::NAN, 1.0, 2.0, 0.5), None);
    }
}
