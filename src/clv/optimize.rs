//! A small deterministic BFGS minimiser with analytic gradients, and the numerical Hessian used for
//! standard errors.
//!
//! Why BFGS and not Nelder–Mead: both likelihoods have cheap exact gradients, and on the Gamma-Gamma
//! likelihood a Nelder–Mead simplex started at 0.1 (lifetimes' start) slides down the ridge
//! `p → ∞, v → 0` (LL −4076.8 on CDNOW instead of the maximum −4055.9). lifetimes itself uses scipy's
//! BFGS with autograd gradients; this is the same method, so it follows the same path from the same start.
//!
//! The line search is a backtracking Armijo search, with the step capped so that no coordinate (a log
//! parameter) moves by more than [`MAX_STEP`] at once, which keeps `exp` from overflowing. The inverse
//! Hessian approximation is updated only when the curvature condition `sᵀy > 0` holds and reset to the
//! identity when it stops producing descent directions.

/// Largest change of any coordinate in one line-search trial.
const MAX_STEP: f64 = 2.0;

/// Consecutive iterations without a decrease beyond rounding after which the search stops.
const STALL_LIMIT: usize = 5;

/// When the search stalls, it counts as converged if the gradient is below this multiple of the
/// tolerance (the objective is then flat to rounding error; parameters are off by about
/// gradient / curvature).
const STALL_TOLERANCE_FACTOR: f64 = 1e3;

/// Settings of [`minimize`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Converged when the largest absolute gradient component is below this.
    pub gradient_tolerance: f64,
    /// Iteration budget.
    pub max_iterations: usize,
}

/// Where [`minimize`] stopped.
#[derive(Debug, Clone)]
pub(crate) struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub gradient_max: f64,
    pub iterations: usize,
    pub converged: bool,
}

/// Minimise `f` from `x0`. `f(x, grad)` returns the objective and writes its gradient; a non-finite
/// value is treated as "outside the domain" and the line search backs off.
pub(crate) fn minimize<F>(mut f: F, x0: &[f64], settings: Settings) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut value = f(&x, &mut g);
    let mut h = identity(n);
    let mut first_update = true;
    let mut g_new = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let mut stalled = 0;

    for iteration in 0..settings.max_iterations {
        let gradient_max = max_abs(&g);
        if !value.is_finite() || gradient_max.is_nan() {
            return Minimum { x, value, gradient_max, iterations: iteration, converged: false };
        }
        if gradient_max < settings.gradient_tolerance {
            return Minimum { x, value, gradient_max, iterations: iteration, converged: true };
        }
        let mut direction = mat_vec_neg(&h, &g);
        let mut slope = dot(&g, &direction);
        if slope >= 0.0 {
            h = identity(n);
            first_update = true;
            direction = g.iter().map(|v| -v).collect();
            slope = -dot(&g, &g);
        }
        let longest = max_abs(&direction);
        let mut step = if longest > MAX_STEP { MAX_STEP / longest } else { 1.0 };
        let mut accepted = None;
        for _ in 0..60 {
            for i in 0..n {
                x_new[i] = x[i] + step * direction[i];
            }
            let trial = f(&x_new, &mut g_new);
            if trial.is_finite() && g_new.iter().all(|v| v.is_finite()) && trial <= value + 1e-4 * step * slope {
                accepted = Some(trial);
                break;
            }
            step *= 0.5;
        }
        let Some(new_value) = accepted else {
            // No decrease possible along a descent direction: we are at the floating-point floor of
            // the objective. Accept that as convergence only when the gradient is already tiny.
            let converged = gradient_max < settings.gradient_tolerance * STALL_TOLERANCE_FACTOR;
            return Minimum { x, value, gradient_max, iterations: iteration, converged };
        };
        let s: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
        let sy = dot(&s, &y);
        if sy > 1e-300 {
            if first_update {
                // Scale the initial inverse Hessian (Nocedal & Wright, eq. 6.20).
                let scale = sy / dot(&y, &y);
                h = identity(n);
                for (i, row) in h.iter_mut().enumerate() {
                    row[i] = scale;
                }
                first_update = false;
            }
            bfgs_update(&mut h, &s, &y, sy);
        }
        // Steps that no longer change the objective beyond rounding: the gradient tolerance is below
        // what floating point can resolve here. Stop after a few and judge by a looser tolerance.
        if value - new_value <= 1e-15 * (1.0 + value.abs()) {
            stalled += 1;
        } else {
            stalled = 0;
        }
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        value = new_value;
        if stalled >= STALL_LIMIT {
            let gradient_max = max_abs(&g);
            let converged = gradient_max < settings.gradient_tolerance * STALL_TOLERANCE_FACTOR;
            return Minimum { x, value, gradient_max, iterations: iteration + 1, converged };
        }
    }
    let gradient_max = max_abs(&g);
    Minimum {
        x,
        value,
        gradient_max,
        iterations: settings.max_iterations,
        converged: gradient_max < settings.gradient_tolerance,
    }
}

/// Log parameters beyond this magnitude mean the likelihood ran off to a boundary.
const LOG_PARAM_LIMIT: f64 = 25.0;

/// How a fit from several starts ended: the best converged minimum, else why there is none.
pub(crate) enum MultiStart {
    Best(Minimum),
    /// No start converged; the last unconverged one.
    Unconverged(Minimum),
    /// Every start ran off to a boundary (or to a non-finite value); the last one, if any.
    Diverged(Option<Minimum>),
}

impl MultiStart {
    /// The best minimum, or the fit's error naming `model`; `describe` says where a diverging
    /// start ran off to.
    pub(crate) fn into_best(
        self,
        model: &'static str,
        describe: impl Fn(&Minimum) -> String,
    ) -> Result<Minimum, super::ClvError> {
        match self {
            MultiStart::Best(best) => Ok(best),
            MultiStart::Unconverged(m) => {
                Err(super::ClvError::NoConvergence { model, iterations: m.iterations, gradient: m.gradient_max })
            }
            MultiStart::Diverged(m) => Err(super::ClvError::Degenerate {
                model,
                reason: format!(
                    "the likelihood has no finite maximum for these data ({})",
                    m.as_ref().map(describe).unwrap_or_default()
                ),
            }),
        }
    }
}

/// Minimises from each start (log parameters) and keeps the best converged result; ties keep the
/// earlier start, so the result is deterministic.
pub(crate) fn best_of_starts<F>(mut f: F, starts: &[Vec<f64>], settings: Settings) -> MultiStart
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let mut best: Option<Minimum> = None;
    let mut diverged = None;
    let mut unconverged = None;
    for x0 in starts {
        let m = minimize(&mut f, x0, settings);
        if m.x.iter().any(|v| v.abs() > LOG_PARAM_LIMIT) || !m.value.is_finite() {
            diverged = Some(m);
        } else if !m.converged {
            unconverged = Some(m);
        } else if best.as_ref().is_none_or(|b| clearly_better(m.value, b.value)) {
            best = Some(m);
        }
    }
    match (best, unconverged) {
        (Some(b), _) => MultiStart::Best(b),
        (None, Some(u)) => MultiStart::Unconverged(u),
        (None, None) => MultiStart::Diverged(diverged),
    }
}

/// Whether a minimum `candidate` beats `incumbent` by more than rounding; ties keep the earlier start, so
/// the choice between starts that found the same optimum is deterministic.
pub(crate) fn clearly_better(candidate: f64, incumbent: f64) -> bool {
    candidate < incumbent - 1e-12 * (1.0 + incumbent.abs())
}

/// Hessian of `f` at `x` by central differences of its analytic gradient (step `1e-5`, symmetrised).
pub(crate) fn hessian<F>(mut f: F, x: &[f64]) -> Vec<Vec<f64>>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    const H: f64 = 1e-5;
    let n = x.len();
    let mut out = vec![vec![0.0; n]; n];
    let mut point = x.to_vec();
    let mut plus = vec![0.0; n];
    let mut minus = vec![0.0; n];
    for j in 0..n {
        point[j] = x[j] + H;
        f(&point, &mut plus);
        point[j] = x[j] - H;
        f(&point, &mut minus);
        point[j] = x[j];
        for i in 0..n {
            out[i][j] = (plus[i] - minus[i]) / (2.0 * H);
        }
    }
    (0..n).map(|i| (0..n).map(|j| 0.5 * (out[i][j] + out[j][i])).collect()).collect()
}

/// Inverse of a small square matrix by Gauss–Jordan elimination with partial pivoting; `None` when it is
/// singular (or not finite).
pub(crate) fn invert(matrix: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = matrix.len();
    let mut a: Vec<Vec<f64>> = matrix.to_vec();
    let mut inv = identity(n);
    let scale = matrix.iter().flatten().fold(0.0_f64, |m, v| m.max(v.abs()));
    if !(scale.is_finite() && scale > 0.0) {
        return None;
    }
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() <= 1e-14 * scale {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let p = a[col][col];
        for k in 0..n {
            a[col][k] /= p;
            inv[col][k] /= p;
        }
        for row in 0..n {
            if row != col {
                let factor = a[row][col];
                if factor != 0.0 {
                    for k in 0..n {
                        a[row][k] -= factor * a[col][k];
                        inv[row][k] -= factor * inv[col][k];
                    }
                }
            }
        }
    }
    inv.iter().flatten().all(|v| v.is_finite()).then_some(inv)
}

fn bfgs_update(h: &mut [Vec<f64>], s: &[f64], y: &[f64], sy: f64) {
    // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, written out as
    // H + ρ²(yᵀHy) s sᵀ + ρ s sᵀ − ρ (Hy sᵀ + s (Hy)ᵀ) for symmetric H.
    let n = s.len();
    let rho = 1.0 / sy;
    let hy: Vec<f64> = (0..n).map(|i| dot(&h[i], y)).collect();
    let yhy = dot(y, &hy);
    for i in 0..n {
        for j in 0..n {
            h[i][j] += (rho * rho * yhy + rho) * s[i] * s[j] - rho * (hy[i] * s[j] + s[i] * hy[j]);
        }
    }
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n).map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect()).collect()
}

fn mat_vec_neg(m: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    m.iter().map(|row| -dot(row, v)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0_f64, |m, x| if x.is_nan() { f64::NAN } else { m.max(x.abs()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn bfgs_finds_the_rosenbrock_minimum() {
        let m = minimize(rosenbrock, &[-1.2, 1.0], Settings { gradient_tolerance: 1e-10, max_iterations: 500 });
        assert!(m.converged, "{m:?}");
        assert!((m.x[0] - 1.0).abs() < 1e-8 && (m.x[1] - 1.0).abs() < 1e-8, "{m:?}");
    }

    #[test]
    fn bfgs_backs_off_from_non_finite_values() {
        // f = x − ln x on x > 0 (NaN outside), minimum at 1.
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = 1.0 - 1.0 / x[0];
            if x[0] > 0.0 { x[0] - x[0].ln() } else { f64::NAN }
        };
        let m = minimize(f, &[5.0], Settings { gradient_tolerance: 1e-12, max_iterations: 200 });
        assert!(m.converged && (m.x[0] - 1.0).abs() < 1e-10, "{m:?}");
    }

    #[test]
    fn hessian_and_inverse_of_a_quadratic() {
        // f = x² + 3xy + 5y², Hessian [[2, 3], [3, 10]].
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * x[0] + 3.0 * x[1];
            g[1] = 3.0 * x[0] + 10.0 * x[1];
            x[0] * x[0] + 3.0 * x[0] * x[1] + 5.0 * x[1] * x[1]
        };
        let h = hessian(f, &[0.3, -0.2]);
        assert!((h[0][0] - 2.0).abs() < 1e-8 && (h[0][1] - 3.0).abs() < 1e-8 && (h[1][1] - 10.0).abs() < 1e-8);
        let inv = invert(&h).unwrap();
        // inverse = [[10, −3], [−3, 2]] / 11
        assert!((inv[0][0] - 10.0 / 11.0).abs() < 1e-8 && (inv[0][1] + 3.0 / 11.0).abs() < 1e-8);
        assert!(invert(&[vec![1.0, 2.0], vec![2.0, 4.0]]).is_none());
        assert!(invert(&[vec![f64::NAN]]).is_none());
    }
}
