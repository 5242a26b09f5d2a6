//! Time to second purchase with right-censoring: the Kaplan–Meier estimator and the KPIs of
//! `fct_repeat_purchase` (models.md 4.16; golden figures in 6.9).
//!
//! Callers pass *qualifying* orders only (1.4) of persons who are not left-censored (1.5); purchases on
//! one day count once. A customer without a second purchase is censored at the data cut-off: duration =
//! days from the first purchase to `data_cutoff` (the last complete day, 1.5).

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{ClvError, Result, check_len};

/// Horizons (days) of the `km_p2_*` columns.
const HORIZONS: [f64; 5] = [30.0, 60.0, 90.0, 180.0, 365.0];

/// A Kaplan–Meier survival curve: `S(t) = Π_{t_i ≤ t} (1 − d_i / n_i)` over the distinct event times.
#[derive(Debug, Clone, PartialEq)]
pub struct KaplanMeier {
    /// Distinct times with at least one event, ascending.
    pub times: Vec<f64>,
    /// `n_i`: subjects still at risk just before `times[i]` (duration ≥ `times[i]`).
    pub at_risk: Vec<usize>,
    /// `d_i`: events at `times[i]`.
    pub events: Vec<usize>,
    /// `S(times[i])`.
    pub survival: Vec<f64>,
    /// All subjects, censored or not.
    pub subjects: usize,
}

impl KaplanMeier {
    /// Estimate from parallel `durations` and `observed` flags (`true` = the event happened at that
    /// duration; `false` = censored then). A subject censored at a time with events counts as at risk
    /// at that time (the usual convention). Errors: different lengths, no subjects, or a negative or
    /// non-finite duration.
    pub fn fit(durations: &[f64], observed: &[bool]) -> Result<Self> {
        check_len("observed", durations.len(), observed.len())?;
        if durations.is_empty() {
            return Err(ClvError::Empty("Kaplan–Meier needs at least one subject".into()));
        }
        if let Some(row) = durations.iter().position(|d| !(d.is_finite() && *d >= 0.0)) {
            return Err(ClvError::InvalidInput {
                row,
                reason: format!("duration {} must be finite and ≥ 0", durations[row]),
            });
        }
        let mut order: Vec<usize> = (0..durations.len()).collect();
        order.sort_by(|&i, &j| durations[i].total_cmp(&durations[j]));
        let mut curve = KaplanMeier {
            times: Vec::new(),
            at_risk: Vec::new(),
            events: Vec::new(),
            survival: Vec::new(),
            subjects: durations.len(),
        };
        let mut s = 1.0;
        let mut i = 0;
        while i < order.len() {
            let time = durations[order[i]];
            let at_risk = order.len() - i;
            let mut events = 0;
            while i < order.len() && durations[order[i]] == time {
                events += usize::from(observed[order[i]]);
                i += 1;
            }
            if events > 0 {
                s *= 1.0 - events as f64 / at_risk as f64;
                curve.times.push(time);
                curve.at_risk.push(at_risk);
                curve.events.push(events);
                curve.survival.push(s);
            }
        }
        Ok(curve)
    }

    /// `S(t)`: the estimated share without the event by time `t` (1 before the first event time).
    pub fn survival_at(&self, t: f64) -> f64 {
        let k = self.times.partition_point(|&time| time <= t);
        if k == 0 { 1.0 } else { self.survival[k - 1] }
    }

    /// `1 − S(t)`: the estimated probability of the event by time `t` (`km_p2_*`).
    pub fn event_probability_by(&self, t: f64) -> f64 {
        1.0 - self.survival_at(t)
    }

    /// The smallest event time with `S(t) ≤ 0.5`; `None` when the curve never gets there (the usual
    /// case for time to second purchase, where most customers never buy twice).
    pub fn median(&self) -> Option<f64> {
        self.survival.iter().position(|&s| s <= 0.5).map(|k| self.times[k])
    }
}

/// One customer's time to second purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondPurchase<K> {
    /// The customer.
    pub customer: K,
    /// Day of the first purchase.
    pub first_purchase: NaiveDate,
    /// Days from the first to the second purchase day, or to the data cut-off when censored.
    pub duration_days: i64,
    /// Whether a second purchase day was seen (`false` = censored).
    pub is_observed: bool,
}

/// Time to second purchase per customer, sorted by customer, from parallel `customers` / `dates`
/// columns of qualifying orders. Orders after `data_cutoff` are ignored; customers whose first order is
/// after it do not appear. Errors only on columns of different lengths.
pub fn second_purchase_durations<K: Ord + Clone>(
    customers: &[K],
    dates: &[NaiveDate],
    data_cutoff: NaiveDate,
) -> Result<Vec<SecondPurchase<K>>> {
    Ok(purchase_days(customers, dates, data_cutoff)?
        .into_iter()
        .map(|(customer, days)| {
            let first = days[0];
            let (end, is_observed) = match days.get(1) {
                Some(&second) => (second, true),
                None => (data_cutoff, false),
            };
            SecondPurchase {
                customer: customer.clone(),
                first_purchase: first,
                duration_days: (end - first).num_days(),
                is_observed,
            }
        })
        .collect())
}

/// The `fct_repeat_purchase` KPIs of one group of customers (one cohort × cut).
#[derive(Debug, Clone, PartialEq)]
pub struct RepeatPurchaseMetrics {
    /// Customers in the group.
    pub customers: usize,
    /// Customers with a second purchase day by the cut-off.
    pub second_purchasers: usize,
    /// Kaplan–Meier probability of a second purchase within 30 days (`1 − S(30)`).
    pub km_p2_30d: f64,
    /// … within 60 days.
    pub km_p2_60d: f64,
    /// … within 90 days.
    pub km_p2_90d: f64,
    /// … within 180 days.
    pub km_p2_180d: f64,
    /// … within 365 days.
    pub km_p2_365d: f64,
    /// Smallest day with `S ≤ 0.5`; `None` (NULL) when the curve never reaches 0.5.
    pub km_median_days_to_second: Option<f64>,
    /// Median days to second purchase over second purchasers only (biased low; the middle two averaged
    /// for an even count); `None` without second purchasers.
    pub median_days_to_second_observed: Option<f64>,
    /// Mean days between consecutive purchase days, over all repeat gaps of all customers; `None`
    /// without repeat purchases.
    pub mean_days_between_orders: Option<f64>,
    /// Share with a second purchase within 90 days of the first (duration ≤ 90); only when every
    /// customer's first purchase is at least 90 days before the cut-off, else `None`.
    pub repeat_rate_90d: Option<f64>,
    /// Same for 365 days.
    pub repeat_rate_365d: Option<f64>,
}

/// Compute [`RepeatPurchaseMetrics`] for one group from parallel `customers` / `dates` columns of its
/// qualifying orders, censored at `data_cutoff`. Errors: columns of different lengths, or no customer
/// with a purchase on or before the cut-off ([`ClvError::Empty`]).
pub fn repeat_purchase_metrics<K: Ord + Clone>(
    customers: &[K],
    dates: &[NaiveDate],
    data_cutoff: NaiveDate,
) -> Result<RepeatPurchaseMetrics> {
    let days = purchase_days(customers, dates, data_cutoff)?;
    if days.is_empty() {
        return Err(ClvError::Empty("no customer with a qualifying order on or before the cut-off".into()));
    }
    let mut durations = Vec::with_capacity(days.len());
    let mut observed = Vec::with_capacity(days.len());
    let mut second_gaps = Vec::new();
    let (mut gap_sum, mut gap_count) = (0_i64, 0_usize);
    let mut min_exposure = i64::MAX;
    for list in days.values() {
        let first = list[0];
        min_exposure = min_exposure.min((data_cutoff - first).num_days());
        for pair in list.windows(2) {
            gap_sum += (pair[1] - pair[0]).num_days();
            gap_count += 1;
        }
        match list.get(1) {
            Some(&second) => {
                let d = (second - first).num_days();
                second_gaps.push(d);
                durations.push(d as f64);
                observed.push(true);
            }
            None => {
                durations.push((data_cutoff - first).num_days() as f64);
                observed.push(false);
            }
        }
    }
    let curve = KaplanMeier::fit(&durations, &observed)?;
    let [p30, p60, p90, p180, p365] = HORIZONS.map(|h| curve.event_probability_by(h));
    second_gaps.sort_unstable();
    let median_observed = match second_gaps.len() {
        0 => None,
        n if n % 2 == 1 => Some(second_gaps[n / 2] as f64),
        n => Some(0.5 * (second_gaps[n / 2 - 1] + second_gaps[n / 2]) as f64),
    };
    let n = days.len();
    let repeat_rate = |horizon: i64| {
        (min_exposure >= horizon).then(|| second_gaps.iter().filter(|&&d| d <= horizon).count() as f64 / n as f64)
    };
    Ok(RepeatPurchaseMetrics {
        customers: n,
        second_purchasers: second_gaps.len(),
        km_p2_30d: p30,
        km_p2_60d: p60,
        km_p2_90d: p90,
        km_p2_180d: p180,
        km_p2_365d: p365,
        km_median_days_to_second: curve.median(),
        median_days_to_second_observed: median_observed,
        mean_days_between_orders: (gap_count > 0).then(|| gap_sum as f64 / gap_count as f64),
        repeat_rate_90d: repeat_rate(90),
        repeat_rate_365d: repeat_rate(365),
    })
}

/// Distinct purchase days per customer up to the cut-off, ascending.
fn purchase_days<'a, K: Ord>(
    customers: &'a [K],
    dates: &[NaiveDate],
    data_cutoff: NaiveDate,
) -> Result<BTreeMap<&'a K, Vec<NaiveDate>>> {
    check_len("dates", customers.len(), dates.len())?;
    let mut days: BTreeMap<&K, Vec<NaiveDate>> = BTreeMap::new();
    for (customer, &date) in customers.iter().zip(dates) {
        if date <= data_cutoff {
            days.entry(customer).or_default().push(date);
        }
    }
    for list in days.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kaplan_meier_textbook_example() {
        // Durations 1, 2+, 3, 3, 4+, 5 ("+" censored).
        let km = KaplanMeier::fit(&[1.0, 2.0, 3.0, 3.0, 4.0, 5.0], &[true, false, true, true, false, true]).unwrap();
        assert_eq!(km.times, vec![1.0, 3.0, 5.0]);
        assert_eq!(km.at_risk, vec![6, 4, 1]);
        assert_eq!(km.events, vec![1, 2, 1]);
        let s1 = 5.0 / 6.0;
        let s3 = s1 * 0.5;
        assert!((km.survival_at(0.5) - 1.0).abs() < 1e-15);
        assert!((km.survival_at(2.9) - s1).abs() < 1e-15);
        assert!((km.survival_at(3.0) - s3).abs() < 1e-15);
        assert!((km.event_probability_by(4.0) - (1.0 - s3)).abs() < 1e-15);
        assert_eq!(km.survival_at(5.0), 0.0);
        assert_eq!(km.median(), Some(3.0));
    }

    #[test]
    fn kaplan_meier_edge_cases() {
        let none = KaplanMeier::fit(&[3.0, 4.0], &[false, false]).unwrap();
        assert_eq!(none.survival_at(100.0), 1.0);
        assert_eq!(none.median(), None);
        assert!(matches!(KaplanMeier::fit(&[], &[]), Err(ClvError::Empty(_))));
        assert!(matches!(KaplanMeier::fit(&[-1.0], &[true]), Err(ClvError::InvalidInput { row: 0, .. })));
        assert!(matches!(KaplanMeier::fit(&[f64::NAN], &[true]), Err(ClvError::InvalidInput { .. })));
        assert!(KaplanMeier::fit(&[1.0], &[]).is_err());
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn repeat_purchase_kpis() {
        // a: 2024-01-01, same day again, 2024-01-11, 2024-03-01 → second after 10 days, gaps 10 and 50.
        // b: 2024-01-01 only → censored at 2024-12-31 (365 days).
        // c: 2024-02-01, 2024-08-19 → second after 200 days.
        // d: only after the cut-off → absent.
        let customers = ["a", "a", "a", "a", "b", "c", "c", "d"];
        let dates = [
            d("2024-01-01"),
            d("2024-01-01"),
            d("2024-01-11"),
            d("2024-03-01"),
            d("2024-01-01"),
            d("2024-02-01"),
            d("2024-08-19"),
            d("2025-02-01"),
        ];
        let cutoff = d("2024-12-31");
        let m = repeat_purchase_metrics(&customers, &dates, cutoff).unwrap();
        assert_eq!((m.customers, m.second_purchasers), (3, 2));
        assert!((m.km_p2_30d - 1.0 / 3.0).abs() < 1e-15);
        assert!((m.km_p2_180d - 1.0 / 3.0).abs() < 1e-15);
        // at 200 days: 2 at risk (b censored at 365, c), one event → S = 2/3 · 1/2
        assert!((m.km_p2_365d - 2.0 / 3.0).abs() < 1e-15);
        assert_eq!(m.km_median_days_to_second, Some(200.0));
        assert_eq!(m.median_days_to_second_observed, Some(105.0));
        assert_eq!(m.mean_days_between_orders, Some((10.0 + 50.0 + 200.0) / 3.0));
        assert_eq!(m.repeat_rate_90d, Some(1.0 / 3.0));
        // c's first purchase is 334 days before the cut-off: not every member observed for 365 days.
        assert_eq!(m.repeat_rate_365d, None);

        let s = second_purchase_durations(&customers, &dates, cutoff).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].duration_days, s[0].is_observed), (10, true));
        assert_eq!((s[1].duration_days, s[1].is_observed), (365, false));

        let empty: [&str; 0] = [];
        assert!(matches!(repeat_purchase_metrics(&empty, &[], cutoff), Err(ClvError::Empty(_))));
        assert!(matches!(repeat_purchase_metrics(&["x"], &[d("2025-01-01")], cutoff), Err(ClvError::Empty(_))));
        assert!(repeat_purchase_metrics(&["x"], &[], cutoff).is_err());
    }
}
