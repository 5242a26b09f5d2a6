//! The Gamma-Gamma spend model (Fader & Hardie, "The Gamma-Gamma Model of Monetary Value") and the
//! discounted CLV, as lifetimes' `GammaGammaFitter` computes them (models.md 4.15, 6.4).
//!
//! Fitting maximises the total log-likelihood of 4.15 (no penalty) over the logs of `(p, q, v)` by BFGS
//! with analytic gradients, from three fixed starts (0.1 everywhere as lifetimes; 1 everywhere; and
//! `p = 1, q = 2, v = mean spend`, whose population mean equals the observed mean). The likelihood has a
//! ridge towards `p → ∞, v → 0` that a local search can slide into (it does on CDNOW from some starts);
//! results running off to infinity are discarded and the best finite maximum wins.

use super::bgnbd::customer_problem;
use super::optimize::{Settings, best_of_starts, hessian, invert};
use super::special::{digamma, ln_gamma};
use super::{BgNbd, ClvError, Result, check_len};

const MODEL: &str = "Gamma-Gamma";

/// Gamma-Gamma parameters: a customer's spend per transaction is Gamma(p, ν) with ν ~ Gamma(q, v).
///
/// The fields are public so the parameters can be stored and read back; every method re-checks them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GammaGamma {
    /// Shape of the per-transaction spend.
    pub p: f64,
    /// Shape of the distribution of customers' rate ν.
    pub q: f64,
    /// Scale of the distribution of customers' rate ν (in money).
    pub v: f64,
}

/// A fitted [`GammaGamma`] model with its fit statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct GammaGammaFit {
    /// The maximum-likelihood parameters.
    pub model: GammaGamma,
    /// Total log-likelihood over the repeat customers (formula of 4.15) at the estimate.
    pub log_likelihood: f64,
    /// Standard errors of `[p, q, v]` as lifetimes reports them; `None` when the Hessian is singular.
    pub standard_errors: Option<[f64; 3]>,
    /// Repeat customers (x > 0) the fit used.
    pub customers: usize,
    /// BFGS iterations of the winning start.
    pub iterations: usize,
}

/// The time unit of `T` for [`GammaGamma::customer_lifetime_value`] (lifetimes' `freq`), which fixes the
/// length of a month: weeks 4.345, days 30, hours 720, months 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClvTimeUnit {
    /// `freq='H'`: a month is 720 units.
    Hours,
    /// `freq='D'`: a month is 30 units.
    Days,
    /// `freq='W'`: a month is 4.345 units (this project).
    Weeks,
    /// `freq='M'`: a month is 1 unit.
    Months,
}

impl ClvTimeUnit {
    /// Units per month, as lifetimes defines them.
    pub fn units_per_month(self) -> f64 {
        match self {
            ClvTimeUnit::Hours => 720.0,
            ClvTimeUnit::Days => 30.0,
            ClvTimeUnit::Weeks => 4.345,
            ClvTimeUnit::Months => 1.0,
        }
    }
}

/// Horizon, discounting and time unit of a CLV ([`GammaGamma::customer_lifetime_value`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvSettings {
    /// Months to sum over (lifetimes' `time`); 12 for `pred_clv_12m`.
    pub months: u32,
    /// Monthly discount rate `d` (config; default 0.01).
    pub monthly_discount_rate: f64,
    /// Time unit of recency and T.
    pub unit: ClvTimeUnit,
}

impl Default for ClvSettings {
    /// The 12-month CLV of models.md 4.15: 12 months, 1 % a month, weeks.
    fn default() -> Self {
        Self { months: 12, monthly_discount_rate: 0.01, unit: ClvTimeUnit::Weeks }
    }
}

impl GammaGamma {
    /// Parameters, checked to be positive and finite.
    pub fn new(p: f64, q: f64, v: f64) -> Result<Self> {
        let model = Self { p, q, v };
        model.validate()?;
        Ok(model)
    }

    fn validate(&self) -> Result<()> {
        for (name, value) in [("p", self.p), ("q", self.q), ("v", self.v)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ClvError::InvalidParameter(format!(
                    "Gamma-Gamma {name} must be positive and finite, got {value}"
                )));
            }
        }
        Ok(())
    }

    /// Fit by maximum likelihood to the customers with a repeat purchase: rows with `frequency > 0` are
    /// used, the others ignored (so the whole summary can be passed). `monetary_value` is the mean value
    /// of the repeat purchases.
    ///
    /// Errors: [`ClvError::Empty`] when no row has `frequency > 0`; [`ClvError::InvalidInput`] when a
    /// frequency is not a whole number ≥ 0 or a used row's monetary value is not positive and finite
    /// (lifetimes rejects those too); [`ClvError::Degenerate`] when the likelihood has no finite maximum
    /// (e.g. a single repeat customer, or identical spend everywhere); [`ClvError::NoConvergence`].
    pub fn fit(frequency: &[f64], monetary_value: &[f64]) -> Result<GammaGammaFit> {
        let (x, m) = repeat_rows(frequency, monetary_value)?;
        let n = x.len();
        if n == 0 {
            return Err(ClvError::Empty("Gamma-Gamma needs at least one customer with a repeat purchase".into()));
        }
        let data = Data::new(x, m);
        let objective = |theta: &[f64], grad: &mut [f64]| data.mean_negative_log_likelihood(theta, grad);
        let mean_spend = data.m.iter().sum::<f64>() / n as f64;
        let starts = [[0.1, 0.1, 0.1], [1.0, 1.0, 1.0], [1.0, 2.0, mean_spend]];
        let settings = Settings { gradient_tolerance: 1e-9, max_iterations: 1000 };
        let starts: Vec<Vec<f64>> = starts.iter().map(|s| s.iter().map(|v| v.ln()).collect()).collect();
        let best = best_of_starts(objective, &starts, settings).into_best(MODEL, |d| {
            format!("p → {:.3e}, q → {:.3e}, v → {:.3e}", d.x[0].exp(), d.x[1].exp(), d.x[2].exp())
        })?;
        let model = GammaGamma::new(best.x[0].exp(), best.x[1].exp(), best.x[2].exp())?;
        let log_likelihood = -best.value * n as f64;
        let h = hessian(objective, &best.x);
        let standard_errors = invert(&h).and_then(|inv| {
            let params = [model.p, model.q, model.v];
            let se: Vec<f64> = (0..3).map(|i| params[i] * (inv[i][i] / n as f64).sqrt()).collect();
            se.iter().all(|v| v.is_finite()).then(|| [se[0], se[1], se[2]])
        });
        Ok(GammaGammaFit { model, log_likelihood, standard_errors, customers: n, iterations: best.iterations })
    }

    /// Total log-likelihood over the rows with `frequency > 0` (formula of 4.15).
    pub fn log_likelihood(&self, frequency: &[f64], monetary_value: &[f64]) -> Result<f64> {
        self.validate()?;
        let (x, m) = repeat_rows(frequency, monetary_value)?;
        let n = x.len();
        let data = Data::new(x, m);
        let theta = [self.p.ln(), self.q.ln(), self.v.ln()];
        Ok(-data.mean_negative_log_likelihood(&theta, &mut [0.0; 3]) * n as f64)
    }

    /// The population mean spend per transaction, `p·v / (q − 1)`; needs `q > 1`.
    pub fn population_mean(&self) -> Result<f64> {
        self.validate()?;
        if self.q > 1.0 {
            Ok(self.p * self.v / (self.q - 1.0))
        } else {
            Err(ClvError::InvalidParameter(format!(
                "Gamma-Gamma q = {} ≤ 1: the mean spend is infinite, so expected spend is undefined",
                self.q
            )))
        }
    }

    /// Expected spend per transaction of a customer with `frequency` repeat purchases of mean value
    /// `monetary_value` (lifetimes' `conditional_expected_average_profit`): the weighted mean
    /// `(1 − w)·population mean + w·m̄` with `w = p·x / (p·x + q − 1)`, i.e. `p (v + x m̄) / (p x + q − 1)`.
    /// For `x = 0` this is the population mean whatever `monetary_value` is. Needs `q > 1`.
    pub fn conditional_expected_average_profit(&self, frequency: f64, monetary_value: f64) -> Result<f64> {
        if !(frequency.is_finite() && frequency >= 0.0 && monetary_value.is_finite()) {
            return Err(ClvError::InvalidParameter(format!(
                "frequency {frequency} must be ≥ 0 and monetary value {monetary_value} finite"
            )));
        }
        let population_mean = self.population_mean()?;
        let weight = self.p * frequency / (self.p * frequency + self.q - 1.0);
        Ok((1.0 - weight) * population_mean + weight * monetary_value)
    }

    /// Discounted CLV as lifetimes' `customer_lifetime_value` computes it (models.md 4.15 "12-month
    /// CLV"): `Σ_{i=1..months} E[M] · (E(i·u) − E((i−1)·u)) / (1 + d)^i`, where `E[M]` is
    /// [`Self::conditional_expected_average_profit`], `E(t)` is `purchases`' conditional expected number of
    /// purchases up to `t`, `u` the units per month of the time unit and `d` the monthly discount rate.
    pub fn customer_lifetime_value(
        &self,
        purchases: &BgNbd,
        frequency: f64,
        recency: f64,
        t: f64,
        monetary_value: f64,
        settings: ClvSettings,
    ) -> Result<f64> {
        let ClvSettings { months, monthly_discount_rate, unit } = settings;
        if !(monthly_discount_rate.is_finite() && monthly_discount_rate > -1.0) {
            return Err(ClvError::InvalidParameter(format!(
                "monthly discount rate must be finite and > −1, got {monthly_discount_rate}"
            )));
        }
        let spend = self.conditional_expected_average_profit(frequency, monetary_value)?;
        let factor = unit.units_per_month();
        let mut clv = 0.0;
        let mut previous = 0.0;
        for step in 1..=months {
            // lifetimes: i = step · factor, discount exponent i / factor.
            let i = f64::from(step) * factor;
            let cumulative = purchases.conditional_expected_purchases(i, frequency, recency, t)?;
            clv += spend * (cumulative - previous) / (1.0 + monthly_discount_rate).powf(i / factor);
            previous = cumulative;
        }
        Ok(clv)
    }

    /// [`Self::customer_lifetime_value`] over parallel columns (a whole summary); errors name the row.
    pub fn customer_lifetime_values(
        &self,
        purchases: &BgNbd,
        frequency: &[f64],
        recency: &[f64],
        t: &[f64],
        monetary_value: &[f64],
        settings: ClvSettings,
    ) -> Result<Vec<f64>> {
        check_len("recency", frequency.len(), recency.len())?;
        check_len("T", frequency.len(), t.len())?;
        check_len("monetary_value", frequency.len(), monetary_value.len())?;
        (0..frequency.len())
            .map(|row| {
                if let Some(reason) = customer_problem(frequency[row], recency[row], t[row]) {
                    return Err(ClvError::InvalidInput { row, reason });
                }
                self.customer_lifetime_value(
                    purchases,
                    frequency[row],
                    recency[row],
                    t[row],
                    monetary_value[row],
                    settings,
                )
                .map_err(|e| match e {
                    ClvError::InvalidParameter(reason) | ClvError::Numerical(reason) => {
                        ClvError::InvalidInput { row, reason }
                    }
                    other => other,
                })
            })
            .collect()
    }
}

/// Pearson correlation between frequency and mean spend over the customers with `frequency > 0` — the
/// check models.md 4.15 asks for before trusting Gamma-Gamma (which assumes the two are independent;
/// 0.11 on CDNOW). `None` with fewer than two such customers or when either column is constant.
pub fn frequency_monetary_correlation(frequency: &[f64], monetary_value: &[f64]) -> Result<Option<f64>> {
    let (x, m) = repeat_rows(frequency, monetary_value)?;
    let n = x.len() as f64;
    if x.len() < 2 {
        return Ok(None);
    }
    let (mx, mm) = (x.iter().sum::<f64>() / n, m.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(&m) {
        sxy += (a - mx) * (b - mm);
        sxx += (a - mx) * (a - mx);
        syy += (b - mm) * (b - mm);
    }
    let r = sxy / (sxx * syy).sqrt();
    Ok(r.is_finite().then_some(r))
}

/// The rows with a repeat purchase, validated.
fn repeat_rows(frequency: &[f64], monetary_value: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    check_len("monetary_value", frequency.len(), monetary_value.len())?;
    let mut x = Vec::new();
    let mut m = Vec::new();
    for (row, (&f, &value)) in frequency.iter().zip(monetary_value).enumerate() {
        if !f.is_finite() || f < 0.0 || f.fract() != 0.0 {
            return Err(ClvError::InvalidInput { row, reason: format!("frequency {f} is not a whole number ≥ 0") });
        }
        if f > 0.0 {
            if !(value.is_finite() && value > 0.0) {
                return Err(ClvError::InvalidInput {
                    row,
                    reason: format!("monetary value {value} of a repeat customer must be positive and finite"),
                });
            }
            x.push(f);
            m.push(value);
        }
    }
    Ok((x, m))
}

/// Likelihood data; `ln m`, `ln x` precomputed, and terms depending only on `x` once per distinct `x`.
struct Data {
    x: Vec<f64>,
    m: Vec<f64>,
    ln_m: Vec<f64>,
    ln_x: Vec<f64>,
    distinct: Vec<f64>,
    slot: Vec<usize>,
}

impl Data {
    fn new(x: Vec<f64>, m: Vec<f64>) -> Self {
        let mut distinct = x.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let slot = x.iter().map(|v| distinct.partition_point(|d| d < v)).collect();
        let ln_m = m.iter().map(|v| v.ln()).collect();
        let ln_x = x.iter().map(|v| v.ln()).collect();
        Self { x, m, ln_m, ln_x, distinct, slot }
    }

    fn mean_negative_log_likelihood(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let [p, q, v] = [theta[0].exp(), theta[1].exp(), theta[2].exp()];
        let (lg_q, dg_q, ln_v) = (ln_gamma(q), digamma(q), v.ln());
        // Per distinct x: lnΓ(px+q) − lnΓ(px) − lnΓ(q), ψ(px+q) − ψ(px), ψ(px+q) − ψ(q).
        let terms: Vec<[f64; 3]> = self
            .distinct
            .iter()
            .map(|&x| {
                let px = p * x;
                let dg_pxq = digamma(px + q);
                [ln_gamma(px + q) - ln_gamma(px) - lg_q, dg_pxq - digamma(px), dg_pxq - dg_q]
            })
            .collect();
        let mut ll = 0.0;
        let mut g = [0.0; 3];
        for i in 0..self.x.len() {
            let (x, m) = (self.x[i], self.m[i]);
            let k = &terms[self.slot[i]];
            let px = p * x;
            let ln_xmv = (x * m + v).ln();
            ll += k[0] + q * ln_v + (px - 1.0) * self.ln_m[i] + px * self.ln_x[i] - (px + q) * ln_xmv;
            g[0] += x * (k[1] + self.ln_m[i] + self.ln_x[i] - ln_xmv);
            g[1] += k[2] + ln_v - ln_xmv;
            g[2] += q / v - (px + q) / (x * m + v);
        }
        let n = self.x.len().max(1) as f64;
        for (j, param) in [p, q, v].iter().enumerate() {
            grad[j] = -g[j] * param / n;
        }
        -ll / n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// lifetimes' `GammaGammaFitter.params_` and `BetaGeoFitter.params_` on CDNOW, full precision.
    fn cdnow() -> (GammaGamma, BgNbd) {
        (
            GammaGamma::new(6.24880249607099, 3.7445884609237634, 15.447748064943575).unwrap(),
            BgNbd::new(0.24259292827982148, 4.413532265271809, 0.7928859664406578, 2.4257523826257374).unwrap(),
        )
    }

    #[test]
    fn expected_spend_and_clv_of_cdnow_customer_1() {
        let (gg, bg) = cdnow();
        let spend = gg.conditional_expected_average_profit(2.0, 22.35).unwrap();
        assert!((spend - 24.65861618923827).abs() < 1e-10, "{spend}");
        assert!((gg.conditional_expected_average_profit(0.0, 0.0).unwrap() - 35.17100215250688).abs() < 1e-10);
        let clv = gg.customer_lifetime_value(&bg, 2.0, 30.43, 38.86, 22.35, ClvSettings::default()).unwrap();
        assert!((clv - 36.278495763627944).abs() < 1e-9, "{clv}");
        let none = ClvSettings { months: 0, ..ClvSettings::default() };
        assert_eq!(gg.customer_lifetime_value(&bg, 2.0, 30.43, 38.86, 22.35, none).unwrap(), 0.0);
    }

    #[test]
    fn invalid_arguments_are_errors() {
        let (gg, bg) = cdnow();
        let bad = ClvSettings { monthly_discount_rate: -1.0, ..ClvSettings::default() };
        assert!(gg.customer_lifetime_value(&bg, 2.0, 30.0, 38.0, 22.0, bad).is_err());
        assert!(gg.conditional_expected_average_profit(-1.0, 22.0).is_err());
        let heavy_tailed = GammaGamma::new(2.0, 0.8, 10.0).unwrap();
        assert!(matches!(
            heavy_tailed.conditional_expected_average_profit(3.0, 20.0),
            Err(ClvError::InvalidParameter(_))
        ));
        assert!(GammaGamma::new(0.0, 1.0, 1.0).is_err());
        assert!(matches!(
            gg.customer_lifetime_values(&bg, &[1.0], &[5.0], &[4.0], &[10.0], ClvSettings::default()),
            Err(ClvError::InvalidInput { row: 0, .. })
        ));
    }

    #[test]
    fn degenerate_fits_are_errors() {
        assert!(matches!(GammaGamma::fit(&[], &[]), Err(ClvError::Empty(_))));
        assert!(matches!(GammaGamma::fit(&[0.0, 0.0], &[0.0, 0.0]), Err(ClvError::Empty(_))));
        assert!(matches!(GammaGamma::fit(&[1.0, 2.0], &[5.0, 0.0]), Err(ClvError::InvalidInput { row: 1, .. })));
        assert!(matches!(GammaGamma::fit(&[1.5], &[5.0]), Err(ClvError::InvalidInput { row: 0, .. })));
        let one = GammaGamma::fit(&[3.0], &[20.0]);
        assert!(matches!(one, Err(ClvError::Degenerate { .. }) | Err(ClvError::NoConvergence { .. })), "{one:?}");
        let same = GammaGamma::fit(&[1.0, 2.0, 3.0, 1.0], &[20.0, 20.0, 20.0, 20.0]);
        assert!(matches!(same, Err(ClvError::Degenerate { .. }) | Err(ClvError::NoConvergence { .. })), "{same:?}");
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data = Data::new(vec![1.0, 2.0, 2.0, 5.0], vec![12.0, 30.5, 18.0, 44.0]);
        let theta = [0.8, 1.1, 2.0];
        let mut grad = [0.0; 3];
        data.mean_negative_log_likelihood(&theta, &mut grad);
        let mut scratch = [0.0; 3];
        for j in 0..3 {
            let (mut up, mut down) = (theta, theta);
            up[j] += 1e-6;
            down[j] -= 1e-6;
            let numeric = (data.mean_negative_log_likelihood(&up, &mut scratch)
                - data.mean_negative_log_likelihood(&down, &mut scratch))
                / 2e-6;
            assert!((grad[j] - numeric).abs() < 1e-7, "{j}: {} vs {numeric}", grad[j]);
        }
    }

    #[test]
    fn correlation() {
        let r = frequency_monetary_correlation(&[0.0, 1.0, 2.0, 3.0], &[0.0, 10.0, 20.0, 30.0]).unwrap().unwrap();
        assert!((r - 1.0).abs() < 1e-12);
        assert_eq!(frequency_monetary_correlation(&[0.0, 1.0], &[0.0, 10.0]).unwrap(), None);
        assert_eq!(frequency_monetary_correlation(&[1.0, 1.0], &[3.0, 10.0]).unwrap(), None);
    }
}
