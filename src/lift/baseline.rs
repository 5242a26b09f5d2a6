//! Fallback F2 of models.md 3.4: a model baseline for non-intent flows without any control. Each
//! entrant's expected revenue over the outcome window is BG/NBD expected purchases × Gamma-Gamma
//! expected spend, with both models fitted on what was known before the period (every person's
//! qualifying orders before its first day); the entrant's own history up to the entry feeds the
//! conditional expectations. Because the fit already contains the flows' effect, the baseline is
//! biased toward zero lift (conservative). Histories and horizons are in days; the models work in
//! weeks, as the CLV marts do (the fit converges more reliably on that scale).

use crate::clv::{BgNbd, GammaGamma};

const WEEK: f64 = 7.0;

/// Fitted baseline models (weekly time unit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Baseline {
    pub bg: BgNbd,
    pub gg: GammaGamma,
}

/// `(frequency, recency, T, monetary)` of a history of `(day, value)` purchases (sorted) as of
/// `at` (purchases before it), lifetimes-style: one purchase per day, monetary the mean value of
/// the repeat days; `None` without a purchase before `at`.
pub fn summary(history: &[(f64, f64)], at: f64) -> Option<(f64, f64, f64, f64)> {
    let mut days: Vec<(f64, f64)> = Vec::new();
    for (d, v) in history.iter().filter(|(d, _)| *d < at) {
        let day = d.floor();
        match days.last_mut() {
            Some((last, total)) if *last == day => *total += v,
            _ => days.push((day, *v)),
        }
    }
    let (first, _) = *days.first()?;
    let x = (days.len() - 1) as f64;
    let last = days.last().expect("non-empty").0;
    let monetary = if x > 0.0 { days[1..].iter().map(|(_, v)| v).sum::<f64>() / x } else { 0.0 };
    Some((x, last - first, at.floor() - first, monetary))
}

/// Fits both models on every history's summary as of `cutoff`; `Err` says why a fit failed.
pub fn fit(histories: &[&[(f64, f64)]], cutoff: f64) -> Result<Baseline, String> {
    let (mut x, mut tx, mut t, mut m) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for h in histories {
        if let Some((f, r, big_t, mv)) = summary(h, cutoff)
            && big_t > 0.0
        {
            x.push(f);
            tx.push(r / WEEK);
            t.push(big_t / WEEK);
            m.push(if f > 0.0 { mv.max(0.01) } else { 0.0 });
        }
    }
    let bg = BgNbd::fit(&x, &tx, &t).map_err(|e| format!("BG/NBD: {e}"))?.model;
    let gg = GammaGamma::fit(&x, &m).map_err(|e| format!("Gamma-Gamma: {e}"))?.model;
    Ok(Baseline { bg, gg })
}

impl Baseline {
    /// Expected revenue of a person with `history` entering at day `at` over `horizon` days.
    pub fn expected(&self, history: &[(f64, f64)], at: f64, horizon: f64) -> Result<f64, String> {
        let (x, tx, t, m) = summary(history, at).unwrap_or((0.0, 0.0, 0.0, 0.0));
        let purchases = if t > 0.0 {
            self.bg.conditional_expected_purchases(horizon / WEEK, x, tx / WEEK, t / WEEK)
        } else {
            self.bg.expected_purchases_new_customer(horizon / WEEK)
        }
        .map_err(|e| e.to_string())?;
        let spend =
            self.gg.conditional_expected_average_profit(x, if x > 0.0 { m } else { 0.0 }).map_err(|e| e.to_string())?;
        Ok(purchases * spend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_purchase_days_before_the_cut() {
        let h = [(10.2, 30.0), (10.7, 10.0), (40.0, 50.0), (70.0, 20.0), (90.0, 99.0)];
        // Days 10 (two orders, 40 together), 40 and 70 before day 80: x = 2, t_x = 60, T = 70,
        // monetary = mean of the repeat days (50 + 20) / 2.
        assert_eq!(summary(&h, 80.0), Some((2.0, 60.0, 70.0, 35.0)));
        assert_eq!(summary(&h, 5.0), None);
        assert_eq!(summary(&h, 11.0), Some((0.0, 0.0, 1.0, 0.0)));
    }

    #[test]
    fn a_fitted_baseline_expects_more_from_frequent_buyers() {
        // 400 persons: every fourth buys every 30 days, the others once; each spends around their own
        // mean (15-134), ±30 %.
        let histories: Vec<Vec<(f64, f64)>> = (0..400)
            .map(|i| {
                let start = f64::from(i % 50);
                let mean = 15.0 + f64::from((i * 7919) % 120);
                let value = |k: u32| mean * (0.7 + 0.06 * f64::from((i * 31 + k * 17) % 10));
                if i % 4 == 0 {
                    (0..8).map(|k| (start + 30.0 * f64::from(k), value(k))).collect()
                } else {
                    vec![(start, value(0))]
                }
            })
            .collect();
        let refs: Vec<&[(f64, f64)]> = histories.iter().map(Vec::as_slice).collect();
        let b = fit(&refs, 300.0).unwrap();
        let frequent = b.expected(&histories[0], 300.0, 30.0).unwrap();
        let once = b.expected(&[(0.0, histories[0][0].1)], 300.0, 30.0).unwrap();
        assert!(frequent > 5.0 * once, "frequent {frequent} vs one-time {once}");
        // Buying every 30 days and seen 90 days ago: about one purchase in the next 30 days.
        let purchases = b.bg.conditional_expected_purchases(30.0 / 7.0, 7.0, 30.0, 300.0 / 7.0).unwrap();
        assert!((0.6..1.4).contains(&purchases), "{purchases}");
    }
}
