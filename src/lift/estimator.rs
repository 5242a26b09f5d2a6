//! The post-stratified estimator of models.md 3.2 over per-stratum sufficient statistics
//! (`n`, `Σy`, `Σy²`), which SQL aggregates produce and bootstrap replicates recompute with
//! weights.

/// z for a two-sided 95 % interval.
pub const Z_95: f64 = 1.959964;

/// Headline coverage below which the estimate is withheld (`low_coverage`).
pub const MIN_COVERAGE: f64 = 0.8;

/// Sufficient statistics of one arm in one stratum; `n` may be a weighted count.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Arm {
    pub n: f64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Arm {
    pub fn add(&mut self, y: f64, weight: f64) {
        self.n += weight;
        self.sum += weight * y;
        self.sum_sq += weight * y * y;
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.n
    }

    /// Sample variance `(Σy² − (Σy)²/n) / (n − 1)`; 0 for fewer than two entries.
    pub fn sample_variance(&self) -> f64 {
        if self.n <= 1.0 { 0.0 } else { ((self.sum_sq - self.sum * self.sum / self.n) / (self.n - 1.0)).max(0.0) }
    }
}

/// One stratum's treated (reachable) and control arms.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stratum {
    pub treated: Arm,
    pub control: Arm,
}

impl Stratum {
    /// A stratum with control entries can be compared; treated entries elsewhere are uncovered.
    pub fn is_covered(&self) -> bool {
        self.control.n > 0.0
    }
}

/// The estimate over all strata (models.md 3.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Σ over covered strata of n_T · (Ybar_T − Ybar_C).
    pub incremental: f64,
    /// Σ n_T · Ybar_C (covered strata).
    pub counterfactual: f64,
    /// Σ n_T · Ybar_T (covered strata).
    pub observed_treated: f64,
    /// incremental / counterfactual; `None` when the counterfactual is 0.
    pub lift_pct: Option<f64>,
    /// Σ n_T² (S²_T / n_T + S²_C / n_C) over covered strata.
    pub variance: f64,
    /// Treated entries in covered strata / all treated entries.
    pub coverage_share: f64,
    /// The headline: `incremental` scaled up to every treated entry at the covered average lift
    /// per treated entry, when coverage reaches [`MIN_COVERAGE`]; else `None` (`low_coverage`).
    pub headline: Option<f64>,
    /// Analytic 95 % interval of the headline (the variance scaled by the same factor squared).
    pub ci_analytic: Option<(f64, f64)>,
}

impl Estimate {
    pub fn std_error(&self) -> f64 {
        self.variance.sqrt()
    }
}

/// Runs the estimator over `strata`.
pub fn post_stratified(strata: &[Stratum]) -> Estimate {
    let (mut incremental, mut counterfactual, mut observed, mut variance) = (0.0, 0.0, 0.0, 0.0);
    let (mut covered_treated, mut all_treated) = (0.0, 0.0);
    for s in strata {
        all_treated += s.treated.n;
        if !s.is_covered() || s.treated.n <= 0.0 {
            continue;
        }
        let n_t = s.treated.n;
        covered_treated += n_t;
        incremental += n_t * (s.treated.mean() - s.control.mean());
        counterfactual += n_t * s.control.mean();
        observed += n_t * s.treated.mean();
        variance += n_t * n_t * (s.treated.sample_variance() / n_t + s.control.sample_variance() / s.control.n);
    }
    let coverage_share = if all_treated > 0.0 { covered_treated / all_treated } else { 0.0 };
    let (headline, ci_analytic) = if all_treated > 0.0 && coverage_share >= MIN_COVERAGE {
        let factor = all_treated / covered_treated;
        let h = incremental * factor;
        let half = Z_95 * (variance * factor * factor).sqrt();
        (Some(h), Some((h - half, h + half)))
    } else {
        (None, None)
    };
    Estimate {
        incremental,
        counterfactual,
        observed_treated: observed,
        lift_pct: (counterfactual != 0.0).then(|| incremental / counterfactual),
        variance,
        coverage_share,
        headline,
        ci_analytic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stratum whose buyers each spend exactly `order_value`, so Σy² = Σy · order value.
    fn stratum(n_t: f64, sum_t: f64, n_c: f64, sum_c: f64, order_value: f64) -> Stratum {
        Stratum {
            treated: Arm { n: n_t, sum: sum_t, sum_sq: sum_t * order_value },
            control: Arm { n: n_c, sum: sum_c, sum_sq: sum_c * order_value },
        }
    }

    #[test]
    fn worked_example_of_models_3_8() {
        let hi = stratum(4000.0, 48_000.0, 400.0, 3_600.0, 120.0);
        let lo = stratum(6000.0, 18_000.0, 600.0, 1_500.0, 75.0);
        let close = |a: f64, b: f64, tol: f64| assert!((a - b).abs() <= tol, "{a} vs {b}");
        close(hi.treated.mean(), 12.0, 1e-12);
        close(hi.control.mean(), 9.0, 1e-12);
        close(post_stratified(&[hi]).std_error(), 6_726.47, 0.005);
        close(post_stratified(&[lo]).incremental, 3_000.0, 1e-9);
        close(post_stratified(&[lo]).std_error(), 3_491.33, 0.005);
        let e = post_stratified(&[hi, lo]);
        close(e.incremental, 15_000.0, 1e-9);
        close(e.std_error(), 7_578.58, 0.005);
        let (low, high) = e.ci_analytic.unwrap();
        close(low, 146.26, 0.005);
        close(high, 29_853.74, 0.005);
        close(e.counterfactual, 51_000.0, 1e-9);
        close(e.lift_pct.unwrap(), 0.2941, 0.00005);
        assert_eq!(e.headline, Some(e.incremental));
        assert_eq!(e.coverage_share, 1.0);
    }

    #[test]
    fn uncovered_strata_scale_the_headline_or_withhold_it() {
        let covered = stratum(900.0, 9_000.0, 100.0, 800.0, 50.0);
        let uncovered = Stratum { treated: Arm { n: 100.0, sum: 5_000.0, sum_sq: 250_000.0 }, control: Arm::default() };
        let e = post_stratified(&[covered, uncovered]);
        assert!((e.coverage_share - 0.9).abs() < 1e-12);
        let per_entry = e.incremental / 900.0;
        assert!((e.headline.unwrap() - per_entry * 1000.0).abs() < 1e-9);
        let (lo, hi) = e.ci_analytic.unwrap();
        let half = Z_95 * e.std_error() * (1000.0 / 900.0);
        assert!((hi - lo - 2.0 * half).abs() < 1e-6);

        let sparse = Stratum { treated: Arm { n: 300.0, sum: 100.0, sum_sq: 1000.0 }, control: Arm::default() };
        let e = post_stratified(&[covered, sparse]);
        assert!(e.coverage_share < MIN_COVERAGE);
        assert_eq!(e.headline, None);
        assert_eq!(e.ci_analytic, None);
    }
}
