//! The calibration/holdout check of models.md 4.15 (figures in 6.2): actual versus predicted purchases in
//! the holdout, in total and as means by calibration frequency (0, 1, …, 7+), and `holdout_mape` over
//! those buckets.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{ClvError, Period, Result, check_len};

/// One calibration-frequency bucket of the holdout comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutBucket {
    /// Calibration frequency of the bucket; the last bucket holds this frequency *and above*.
    pub frequency: u32,
    /// Whether this is the open-ended top bucket ("7+").
    pub is_open_ended: bool,
    /// Customers in the bucket.
    pub customers: usize,
    /// Mean actual repeat purchases in the holdout.
    pub actual_mean: f64,
    /// Mean predicted purchases in the holdout.
    pub predicted_mean: f64,
}

/// Result of [`holdout_by_frequency`].
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutReport {
    /// Non-empty buckets by ascending frequency.
    pub buckets: Vec<HoldoutBucket>,
    /// Σ actual holdout purchases.
    pub actual_total: f64,
    /// Σ predicted holdout purchases.
    pub predicted_total: f64,
    /// Mean over the buckets with a positive actual mean of `|predicted − actual| / actual` (the
    /// `holdout_mape` column); `None` when no bucket has a positive actual mean.
    pub mape: Option<f64>,
}

/// Compare per-customer actual and predicted holdout purchases, grouped by calibration frequency with
/// buckets `0, 1, …, top_bucket − 1` and `top_bucket`+ (models.md uses `top_bucket = 7`).
///
/// Errors: columns of different lengths, no customers, a frequency that is not a whole number ≥ 0, or a
/// non-finite actual or predicted value.
pub fn holdout_by_frequency(
    calibration_frequency: &[f64],
    actual: &[f64],
    predicted: &[f64],
    top_bucket: u32,
) -> Result<HoldoutReport> {
    check_len("actual", calibration_frequency.len(), actual.len())?;
    check_len("predicted", calibration_frequency.len(), predicted.len())?;
    if calibration_frequency.is_empty() {
        return Err(ClvError::Empty("holdout check needs at least one customer".into()));
    }
    // bucket → (customers, Σ actual, Σ predicted)
    let mut sums: BTreeMap<u32, (usize, f64, f64)> = BTreeMap::new();
    for row in 0..calibration_frequency.len() {
        let (f, a, p) = (calibration_frequency[row], actual[row], predicted[row]);
        if !(f.is_finite() && f >= 0.0 && f.fract() == 0.0) {
            return Err(ClvError::InvalidInput { row, reason: format!("frequency {f} is not a whole number ≥ 0") });
        }
        if !(a.is_finite() && p.is_finite()) {
            return Err(ClvError::InvalidInput { row, reason: format!("actual {a} or predicted {p} is not finite") });
        }
        let bucket = if f >= f64::from(top_bucket) { top_bucket } else { f as u32 };
        let entry = sums.entry(bucket).or_insert((0, 0.0, 0.0));
        entry.0 += 1;
        entry.1 += a;
        entry.2 += p;
    }
    let buckets: Vec<HoldoutBucket> = sums
        .into_iter()
        .map(|(frequency, (customers, a, p))| HoldoutBucket {
            frequency,
            is_open_ended: frequency == top_bucket,
            customers,
            actual_mean: a / customers as f64,
            predicted_mean: p / customers as f64,
        })
        .collect();
    let errors: Vec<f64> = buckets
        .iter()
        .filter(|b| b.actual_mean > 0.0)
        .map(|b| (b.predicted_mean - b.actual_mean).abs() / b.actual_mean)
        .collect();
    let mape = (!errors.is_empty()).then(|| errors.iter().sum::<f64>() / errors.len() as f64);
    Ok(HoldoutReport { buckets, actual_total: actual.iter().sum(), predicted_total: predicted.iter().sum(), mape })
}

/// Number of distinct purchase periods per customer with a transaction date in `(after, through]` — the
/// actual holdout purchases (lifetimes' `frequency_holdout`; for `Period::Days` the distinct purchase
/// days). Customers without such a transaction are absent from the map.
pub fn purchase_periods_between<K: Ord + Clone>(
    customers: &[K],
    dates: &[NaiveDate],
    after: NaiveDate,
    through: NaiveDate,
    period: Period,
) -> Result<BTreeMap<K, u32>> {
    check_len("dates", customers.len(), dates.len())?;
    let mut seen: BTreeMap<&K, Vec<NaiveDate>> = BTreeMap::new();
    for (customer, &date) in customers.iter().zip(dates) {
        if date > after && date <= through {
            seen.entry(customer).or_default().push(period.start(date));
        }
    }
    Ok(seen
        .into_iter()
        .map(|(k, mut starts)| {
            starts.sort_unstable();
            starts.dedup();
            (k.clone(), starts.len() as u32)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_mape() {
        let f = [0.0, 0.0, 1.0, 9.0, 7.0];
        let actual = [0.0, 1.0, 2.0, 6.0, 8.0];
        let predicted = [0.25, 0.25, 1.0, 7.0, 7.0];
        let r = holdout_by_frequency(&f, &actual, &predicted, 7).unwrap();
        assert_eq!(r.buckets.len(), 3);
        assert_eq!((r.buckets[0].frequency, r.buckets[0].customers, r.buckets[0].actual_mean), (0, 2, 0.5));
        assert!(r.buckets[2].is_open_ended && r.buckets[2].customers == 2);
        assert_eq!((r.actual_total, r.predicted_total), (17.0, 15.5));
        // |0.25−0.5|/0.5 = 0.5, |1−2|/2 = 0.5, |7−7|/7 = 0
        assert!((r.mape.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!(matches!(holdout_by_frequency(&[], &[], &[], 7), Err(ClvError::Empty(_))));
        assert!(holdout_by_frequency(&[0.5], &[1.0], &[1.0], 7).is_err());
        assert_eq!(holdout_by_frequency(&[0.0], &[0.0], &[1.0], 7).unwrap().mape, None);
    }

    #[test]
    fn counts_distinct_days_in_the_window() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let c = ["a", "a", "a", "b", "a"];
        let dates = [d("2024-01-01"), d("2024-01-05"), d("2024-01-05"), d("2024-01-09"), d("2024-02-01")];
        let counts = purchase_periods_between(&c, &dates, d("2024-01-01"), d("2024-01-31"), Period::Days).unwrap();
        assert_eq!(counts.get("a"), Some(&1));
        assert_eq!(counts.get("b"), Some(&1));
    }
}
