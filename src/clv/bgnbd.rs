//! The BG/NBD purchase model (Fader, Hardie & Lee 2005) as lifetimes' `BetaGeoFitter` implements it
//! (models.md 4.15, 6.1).
//!
//! Fitting maximises the total log-likelihood of 4.15 with `penalizer_coef = 0`, over the logs of
//! `(r, α, a, b)`, by BFGS with analytic gradients ([`super::optimize`]). As in lifetimes, time is first
//! rescaled so that the largest `T` is 1 (only `α` depends on the time unit; it is scaled back after the
//! fit) and the search starts at 0.1 for every parameter; two further fixed starts (1.0 everywhere, and a
//! mixed one) are tried as well and the best finite maximum wins, so the result does not depend on one
//! start landing in the right basin. Deterministic: no randomness, fixed start order.

use super::optimize::{Settings, best_of_starts, hessian, invert};
use super::special::{digamma, hyp2f1, ln_gamma};
use super::{ClvError, Result, check_len};

const MODEL: &str = "BG/NBD";

/// Fixed starting points (log scale is taken of these; time rescaled so that max T = 1).
const STARTS: [[f64; 4]; 3] = [[0.1, 0.1, 0.1, 0.1], [1.0, 1.0, 1.0, 1.0], [0.5, 0.1, 1.0, 3.0]];

/// Within this distance of `a = 1` the expectation formula is 0/0; it is evaluated at `1 ± A_NEAR_ONE`
/// and averaged (the function is smooth in `a`, so the error is O(1e-10) relative).
const A_NEAR_ONE: f64 = 1e-5;

/// BG/NBD parameters: purchase rates `λ ~ Gamma(r, α)`, drop-out probabilities `p ~ Beta(a, b)`.
/// `α` is in the time unit of the data (weeks in this project).
///
/// The fields are public so the parameters can be stored (`model_params`) and read back; every method
/// re-checks them, so a hand-built invalid value gives [`ClvError::InvalidParameter`], not NaN.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BgNbd {
    /// Shape of the purchase-rate distribution.
    pub r: f64,
    /// Scale of the purchase-rate distribution, in time units.
    pub alpha: f64,
    /// First shape of the drop-out probability distribution.
    pub a: f64,
    /// Second shape of the drop-out probability distribution.
    pub b: f64,
}

/// A fitted [`BgNbd`] model with its fit statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct BgNbdFit {
    /// The maximum-likelihood parameters.
    pub model: BgNbd,
    /// Total log-likelihood (sum over customers, formula of 4.15) at the estimate.
    pub log_likelihood: f64,
    /// Standard errors of `[r, α, a, b]` as lifetimes reports them (inverse Hessian of the negative
    /// log-likelihood in log-parameters, delta method); `None` when the Hessian is not invertible.
    pub standard_errors: Option<[f64; 4]>,
    /// Customers the fit used.
    pub customers: usize,
    /// BFGS iterations of the winning start.
    pub iterations: usize,
}

impl BgNbd {
    /// Parameters, checked to be positive and finite.
    pub fn new(r: f64, alpha: f64, a: f64, b: f64) -> Result<Self> {
        let model = Self { r, alpha, a, b };
        model.validate()?;
        Ok(model)
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [("r", self.r), ("alpha", self.alpha), ("a", self.a), ("b", self.b)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ClvError::InvalidParameter(format!("BG/NBD {name} must be positive and finite, got {v}")));
            }
        }
        Ok(())
    }

    /// Fit by maximum likelihood (no penalty) to per-customer `frequency` (x), `recency` (t_x) and age `t`
    /// (T), parallel slices as [`super::summary_from_transactions`] returns them.
    ///
    /// Errors: [`ClvError::Empty`] without customers; [`ClvError::InvalidInput`] for a row lifetimes
    /// would reject (x not a whole number ≥ 0, t_x < 0, t_x > T, t_x ≠ 0 when x = 0, non-finite);
    /// [`ClvError::Degenerate`] when nobody made a repeat purchase or the maximum is at infinity (a single
    /// customer, for example); [`ClvError::NoConvergence`] if BFGS runs out of iterations.
    pub fn fit(frequency: &[f64], recency: &[f64], t: &[f64]) -> Result<BgNbdFit> {
        check_inputs(frequency, recency, t)?;
        let n = frequency.len();
        if n == 0 {
            return Err(ClvError::Empty("BG/NBD needs at least one customer".into()));
        }
        if frequency.iter().all(|&x| x == 0.0) {
            return Err(ClvError::Degenerate {
                model: MODEL,
                reason: "no customer made a repeat purchase (all frequencies are 0)".into(),
            });
        }
        let max_t = t.iter().fold(0.0_f64, |m, &v| m.max(v));
        let scale = if max_t > 0.0 { 1.0 / max_t } else { 1.0 };
        let data =
            Data::new(frequency, recency.iter().map(|v| v * scale).collect(), t.iter().map(|v| v * scale).collect());
        let objective = |theta: &[f64], grad: &mut [f64]| data.mean_negative_log_likelihood(theta, grad);

        let settings = Settings { gradient_tolerance: 1e-9, max_iterations: 1000 };
        let starts: Vec<Vec<f64>> = STARTS.iter().map(|s| s.iter().map(|v| v.ln()).collect()).collect();
        let best = best_of_starts(objective, &starts, settings).into_best(MODEL, |m| describe(&m.x, scale))?;
        let p: Vec<f64> = best.x.iter().map(|v| v.exp()).collect();
        let model = BgNbd::new(p[0], p[1] / scale, p[2], p[3])?;
        let log_likelihood = model.log_likelihood(frequency, recency, t)?;
        // The Hessian in log-parameters does not depend on the time scale (it only shifts ln α).
        let h = hessian(objective, &best.x);
        let standard_errors = invert(&h).and_then(|inv| {
            let se: Vec<f64> =
                (0..4).map(|i| [model.r, model.alpha, model.a, model.b][i] * (inv[i][i] / n as f64).sqrt()).collect();
            se.iter().all(|v| v.is_finite()).then(|| [se[0], se[1], se[2], se[3]])
        });
        Ok(BgNbdFit { model, log_likelihood, standard_errors, customers: n, iterations: best.iterations })
    }

    /// Total log-likelihood of the data under these parameters (formula of 4.15, summed over customers).
    pub fn log_likelihood(&self, frequency: &[f64], recency: &[f64], t: &[f64]) -> Result<f64> {
        self.validate()?;
        check_inputs(frequency, recency, t)?;
        Ok((0..frequency.len()).map(|i| self.log_likelihood_one(frequency[i], recency[i], t[i])).sum())
    }

    fn log_likelihood_one(&self, x: f64, tx: f64, t: f64) -> f64 {
        let Self { r, alpha, a, b } = *self;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        let a3 = -(r + x) * (alpha + t).ln();
        if x > 0.0 {
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + tx).ln();
            a1 + a2 + log_add_exp(a3, a4)
        } else {
            a1 + a2 + a3
        }
    }

    /// P(alive): the probability that a customer with history `(x, t_x, T)` has not dropped out
    /// (1 for `x = 0`, as the model assumes nobody drops out before a repeat purchase).
    pub fn probability_alive(&self, x: f64, tx: f64, t: f64) -> Result<f64> {
        self.validate()?;
        check_customer(x, tx, t)?;
        if x == 0.0 {
            return Ok(1.0);
        }
        let log_odds_dead =
            (self.r + x) * ((self.alpha + t) / (self.alpha + tx)).ln() + (self.a / (self.b + x - 1.0)).ln();
        Ok(logistic(-log_odds_dead))
    }

    /// Expected number of repeat purchases in the next `horizon` time units of a customer with history
    /// `(x, t_x, T)` (lifetimes' `conditional_expected_number_of_purchases_up_to_time`, equation 10 of the
    /// BG/NBD paper).
    ///
    /// Computed with Euler's transformation of the hypergeometric term,
    /// `((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z) = (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z)`
    /// with `z = t/(α+T+t)`, which is the same number but cannot overflow for large `x` and converges for
    /// every `z < 1`. Valid for every `a > 0` (models.md says "a > 1", but the CDNOW fit itself has
    /// a = 0.79 and lifetimes evaluates it there; the formula is only 0/0 at `a = 1`, handled by averaging
    /// either side). Fails with [`ClvError::Numerical`] only when `a + b + x − 1` is a non-positive
    /// integer (possible for `x = 0` with `a + b = 1`).
    pub fn conditional_expected_purchases(&self, horizon: f64, x: f64, tx: f64, t: f64) -> Result<f64> {
        self.validate()?;
        check_customer(x, tx, t)?;
        check_horizon(horizon)?;
        if horizon == 0.0 {
            return Ok(0.0);
        }
        if (self.a - 1.0).abs() < A_NEAR_ONE {
            let below = Self { a: 1.0 - A_NEAR_ONE, ..*self }.expected_purchases(horizon, x, tx, t)?;
            let above = Self { a: 1.0 + A_NEAR_ONE, ..*self }.expected_purchases(horizon, x, tx, t)?;
            return Ok(0.5 * (below + above));
        }
        self.expected_purchases(horizon, x, tx, t)
    }

    fn expected_purchases(&self, horizon: f64, x: f64, tx: f64, t: f64) -> Result<f64> {
        let Self { r, alpha, a, b } = *self;
        let c = a + b + x - 1.0;
        let z = horizon / (alpha + t + horizon);
        let hyp = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z).ok_or_else(|| {
            ClvError::Numerical(format!(
                "2F1({}, {}; {c}; {z}) for BG/NBD expected purchases (x = {x}, T = {t}, horizon = {horizon})",
                a + b - 1.0 - r,
                a - 1.0
            ))
        })?;
        let log_one_minus_z = (alpha + t).ln() - (alpha + t + horizon).ln();
        let bracket = 1.0 - ((a - 1.0) * log_one_minus_z).exp() * hyp;
        let denominator =
            if x > 0.0 { 1.0 + (a / (b + x - 1.0)) * ((r + x) * ((alpha + t) / (alpha + tx)).ln()).exp() } else { 1.0 };
        let value = c / (a - 1.0) * bracket / denominator;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(ClvError::Numerical(format!(
                "BG/NBD expected purchases is not finite (x = {x}, T = {t}, horizon = {horizon})"
            )))
        }
    }

    /// Expected number of repeat purchases in the first `horizon` time units after a first purchase, for
    /// a customer drawn from the population (lifetimes' `expected_number_of_purchases_up_to_time`,
    /// equation 9; the conditional expectation at `x = t_x = T = 0`).
    pub fn expected_purchases_new_customer(&self, horizon: f64) -> Result<f64> {
        self.conditional_expected_purchases(horizon, 0.0, 0.0, 0.0)
    }
}

fn describe(theta: &[f64], scale: f64) -> String {
    let names = ["r", "alpha", "a", "b"];
    let mut parts = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut v = theta[i].exp();
        if i == 1 {
            v /= scale;
        }
        parts.push(format!("{name} → {v:.3e}"));
    }
    parts.join(", ")
}

/// The likelihood data, with the terms that depend only on `x` computed once per distinct `x`.
struct Data {
    x: Vec<f64>,
    tx: Vec<f64>,
    t: Vec<f64>,
    /// Distinct frequencies, ascending, and each customer's index into them.
    distinct: Vec<f64>,
    slot: Vec<usize>,
}

impl Data {
    fn new(x: &[f64], tx: Vec<f64>, t: Vec<f64>) -> Self {
        let mut distinct = x.to_vec();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let slot = x.iter().map(|v| distinct.partition_point(|d| d < v)).collect();
        Self { x: x.to_vec(), tx, t, distinct, slot }
    }

    /// Mean negative log-likelihood over customers at log-parameters `theta`, and its gradient.
    fn mean_negative_log_likelihood(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let [r, alpha, a, b] = [theta[0].exp(), theta[1].exp(), theta[2].exp(), theta[3].exp()];
        // Per distinct x: [lnΓ(r+x) − lnΓ(r), A2, ψ(r+x) − ψ(r), ∂A2/∂a, ∂A2/∂b, ln(b+x−1), 1/(b+x−1)]
        let (lg_r, dg_r, lg_ab, dg_ab, lg_b, dg_b) =
            (ln_gamma(r), digamma(r), ln_gamma(a + b), digamma(a + b), ln_gamma(b), digamma(b));
        let terms: Vec<[f64; 7]> = self
            .distinct
            .iter()
            .map(|&x| {
                let (lg_abx, dg_abx) = (ln_gamma(a + b + x), digamma(a + b + x));
                let bx1 = b + x - 1.0;
                [
                    ln_gamma(r + x) - lg_r,
                    lg_ab + ln_gamma(b + x) - lg_b - lg_abx,
                    digamma(r + x) - dg_r,
                    dg_ab - dg_abx,
                    dg_ab + digamma(b + x) - dg_b - dg_abx,
                    if x > 0.0 { bx1.ln() } else { 0.0 },
                    if x > 0.0 { 1.0 / bx1 } else { 0.0 },
                ]
            })
            .collect();
        let (ln_alpha, ln_a) = (alpha.ln(), a.ln());
        let mut ll = 0.0;
        let mut g = [0.0; 4];
        for i in 0..self.x.len() {
            let x = self.x[i];
            let k = &terms[self.slot[i]];
            let ln_at = (alpha + self.t[i]).ln();
            let a3 = -(r + x) * ln_at;
            let (lse, w3, w4, ln_atx) = if x > 0.0 {
                let ln_atx = (alpha + self.tx[i]).ln();
                let a4 = ln_a - k[5] - (r + x) * ln_atx;
                let lse = log_add_exp(a3, a4);
                (lse, (a3 - lse).exp(), (a4 - lse).exp(), ln_atx)
            } else {
                (a3, 1.0, 0.0, 0.0)
            };
            ll += k[0] + r * ln_alpha + k[1] + lse;
            g[0] += k[2] + ln_alpha - w3 * ln_at - w4 * ln_atx;
            g[1] += r / alpha - (r + x) * (w3 / (alpha + self.t[i]) + w4 / (alpha + self.tx[i]));
            g[2] += k[3] + w4 / a;
            g[3] += k[4] - w4 * k[6];
        }
        let n = self.x.len() as f64;
        for (j, p) in [r, alpha, a, b].iter().enumerate() {
            grad[j] = -g[j] * p / n;
        }
        -ll / n
    }
}

pub(crate) fn log_add_exp(u: f64, v: f64) -> f64 {
    let m = u.max(v);
    if m == f64::NEG_INFINITY { m } else { m + ((u - m).exp() + (v - m).exp()).ln() }
}

fn logistic(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

fn check_horizon(horizon: f64) -> Result<()> {
    if horizon.is_finite() && horizon >= 0.0 {
        Ok(())
    } else {
        Err(ClvError::InvalidParameter(format!("prediction horizon must be finite and ≥ 0, got {horizon}")))
    }
}

/// The checks of lifetimes' `_check_inputs`, for one customer.
pub(crate) fn customer_problem(x: f64, tx: f64, t: f64) -> Option<String> {
    if !(x.is_finite() && tx.is_finite() && t.is_finite()) {
        return Some(format!("frequency {x}, recency {tx} and T {t} must be finite"));
    }
    if x < 0.0 || x.fract() != 0.0 {
        return Some(format!("frequency {x} is not a whole number ≥ 0"));
    }
    if tx < 0.0 {
        return Some(format!("recency {tx} is negative"));
    }
    if tx > t {
        return Some(format!("recency {tx} exceeds T {t}"));
    }
    if x == 0.0 && tx != 0.0 {
        return Some(format!("recency {tx} is not 0 although frequency is 0"));
    }
    None
}

fn check_customer(x: f64, tx: f64, t: f64) -> Result<()> {
    match customer_problem(x, tx, t) {
        None => Ok(()),
        Some(reason) => Err(ClvError::InvalidParameter(reason)),
    }
}

fn check_inputs(frequency: &[f64], recency: &[f64], t: &[f64]) -> Result<()> {
    check_len("recency", frequency.len(), recency.len())?;
    check_len("T", frequency.len(), t.len())?;
    for row in 0..frequency.len() {
        if let Some(reason) = customer_problem(frequency[row], recency[row], t[row]) {
            return Err(ClvError::InvalidInput { row, reason });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// lifetimes' `BetaGeoFitter.params_` on the CDNOW summary, full precision.
    fn cdnow() -> BgNbd {
        BgNbd::new(0.24259292827982148, 4.413532265271809, 0.7928859664406578, 2.4257523826257374).unwrap()
    }

    fn close(got: f64, want: f64, tol: f64) {
        assert!((got - want).abs() <= tol, "got {got:.12}, want {want:.12}");
    }

    #[test]
    fn predictions_match_lifetimes_for_cdnow_customer_1() {
        let m = cdnow();
        close(m.conditional_expected_purchases(1.0, 2.0, 30.43, 38.86).unwrap(), 0.03744319332990478, 1e-12);
        close(m.conditional_expected_purchases(10.0, 2.0, 30.43, 38.86).unwrap(), 0.3569310086469064, 1e-12);
        close(m.probability_alive(2.0, 30.43, 38.86).unwrap(), 0.7266091367990596, 1e-12);
        close(m.expected_purchases_new_customer(39.0).unwrap(), 1.195016228446194, 1e-12);
        // lifetimes' predict(t, x, t_x, T) for far horizons and a heavy buyer.
        close(m.expected_purchases_new_customer(520.0).unwrap(), 4.96874852607056, 1e-10);
        close(m.expected_purchases_new_customer(1e4).unwrap(), 15.05507223337275, 1e-9);
        close(m.conditional_expected_purchases(5200.0, 50.0, 30.0, 40.0).unwrap(), 0.07392093915832891, 1e-10);
        close(m.conditional_expected_purchases(52.0, 200.0, 38.0, 39.0).unwrap(), 121.03414595511805, 1e-8);
    }

    #[test]
    fn expectation_is_continuous_through_a_equal_one() {
        let m = |a: f64| BgNbd { a, ..cdnow() }.conditional_expected_purchases(26.0, 3.0, 20.0, 30.0).unwrap();
        let at_one = m(1.0);
        assert!(at_one.is_finite() && at_one > 0.0);
        let slope = (m(1.001) - m(0.999)) / 0.002;
        close(at_one, 0.5 * (m(1.001) + m(0.999)), 1e-6);
        // Just outside the averaging band the direct formula takes over without a jump.
        close(m(1.0 + 2e-5), at_one + 2e-5 * slope, 1e-9);
        close(m(1.0 - 2e-5), at_one - 2e-5 * slope, 1e-9);
    }

    #[test]
    fn edge_cases_of_predictions() {
        let m = cdnow();
        assert_eq!(m.conditional_expected_purchases(0.0, 2.0, 1.0, 3.0).unwrap(), 0.0);
        assert_eq!(m.probability_alive(0.0, 0.0, 10.0).unwrap(), 1.0);
        assert!(m.conditional_expected_purchases(-1.0, 0.0, 0.0, 1.0).is_err());
        assert!(m.probability_alive(1.5, 1.0, 2.0).is_err());
        assert!(m.probability_alive(1.0, 3.0, 2.0).is_err());
        // A long-gone heavy buyer: P(alive) underflows gracefully to 0, the expectation to 0.
        let p = m.probability_alive(500.0, 1.0, 1000.0).unwrap();
        assert!((0.0..1e-100).contains(&p));
        let e = m.conditional_expected_purchases(52.0, 500.0, 1.0, 1000.0).unwrap();
        assert!((0.0..1e-100).contains(&e));
        // a + b + x − 1 = 0: the closed form is undefined, reported as an error, not NaN.
        let odd = BgNbd::new(0.5, 1.0, 0.4, 0.6).unwrap();
        assert!(matches!(odd.expected_purchases_new_customer(10.0), Err(ClvError::Numerical(_))));
        assert!(BgNbd::new(0.0, 1.0, 1.0, 1.0).is_err());
        assert!(BgNbd::new(1.0, f64::NAN, 1.0, 1.0).is_err());
        let hand_built = BgNbd { r: -1.0, ..m };
        assert!(matches!(hand_built.probability_alive(1.0, 1.0, 2.0), Err(ClvError::InvalidParameter(_))));
        assert!(hand_built.conditional_expected_purchases(1.0, 1.0, 1.0, 2.0).is_err());
        assert!(hand_built.log_likelihood(&[1.0], &[1.0], &[2.0]).is_err());
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data = Data::new(&[0.0, 1.0, 4.0, 4.0, 7.0], vec![0.0, 0.2, 0.5, 0.9, 0.95], vec![0.3, 0.6, 0.8, 1.0, 1.0]);
        let theta = [-0.7, 0.3, -0.2, 0.9];
        let mut grad = [0.0; 4];
        data.mean_negative_log_likelihood(&theta, &mut grad);
        let mut scratch = [0.0; 4];
        for j in 0..4 {
            let (mut up, mut down) = (theta, theta);
            up[j] += 1e-6;
            down[j] -= 1e-6;
            let numeric = (data.mean_negative_log_likelihood(&up, &mut scratch)
                - data.mean_negative_log_likelihood(&down, &mut scratch))
                / 2e-6;
            close(grad[j], numeric, 1e-7);
        }
    }

    #[test]
    fn degenerate_fits_are_errors() {
        assert!(matches!(BgNbd::fit(&[], &[], &[]), Err(ClvError::Empty(_))));
        assert!(matches!(BgNbd::fit(&[0.0, 0.0], &[0.0, 0.0], &[5.0, 3.0]), Err(ClvError::Degenerate { .. })));
        assert!(matches!(BgNbd::fit(&[1.0], &[2.0, 3.0], &[5.0]), Err(ClvError::LengthMismatch { .. })));
        assert!(matches!(BgNbd::fit(&[1.0], &[6.0], &[5.0]), Err(ClvError::InvalidInput { row: 0, .. })));
        assert!(matches!(BgNbd::fit(&[0.0], &[1.0], &[5.0]), Err(ClvError::InvalidInput { row: 0, .. })));
        // One customer: no finite maximum.
        let one = BgNbd::fit(&[3.0], &[10.0], &[20.0]);
        assert!(matches!(one, Err(ClvError::Degenerate { .. }) | Err(ClvError::NoConvergence { .. })), "{one:?}");
    }

    #[test]
    fn fit_recovers_simulated_parameters_roughly() {
        // Deterministic pseudo-data drawn from the model with r = 0.5, α = 5, a = 1.5, b = 4.
        use rand::{Rng, SeedableRng};
        use rand_distr::{Beta, Distribution, Exp, Gamma};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (mut xs, mut txs, mut ts) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..4000 {
            let t_age = 20.0 + (i % 20) as f64;
            let lambda = Gamma::new(0.5, 1.0 / 5.0).unwrap().sample(&mut rng);
            let p = Beta::new(1.5, 4.0).unwrap().sample(&mut rng);
            let (mut now, mut x, mut tx) = (0.0, 0.0, 0.0);
            loop {
                now += Exp::new(lambda).unwrap().sample(&mut rng);
                if now > t_age {
                    break;
                }
                x += 1.0;
                tx = now;
                if rng.random::<f64>() < p {
                    break;
                }
            }
            xs.push(x);
            txs.push(tx);
            ts.push(t_age);
        }
        let fit = BgNbd::fit(&xs, &txs, &ts).unwrap();
        let m = fit.model;
        assert!((0.35..0.7).contains(&m.r) && (3.0..8.0).contains(&m.alpha), "{m:?}");
        assert!((0.7..3.5).contains(&m.a) && (1.5..10.0).contains(&m.b), "{m:?}");
    }
}
