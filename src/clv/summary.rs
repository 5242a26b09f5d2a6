//! Per-customer frequency, recency, age and mean repeat spend from a transaction log, as lifetimes'
//! `summary_data_from_transaction_data` computes them (models.md 4.15 "Input summary", 6.3).

use chrono::{Datelike, NaiveDate};

use super::{ClvError, Result, check_len};

/// The period purchases are collapsed into (lifetimes' `freq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Calendar days (`freq='D'`): all purchases of a customer on one day count as one purchase.
    Days,
    /// Weeks Monday to Sunday (`freq='W'`, pandas' `W-SUN`); a week is represented by its Monday.
    Weeks,
}

impl Period {
    pub(crate) fn start(self, date: NaiveDate) -> NaiveDate {
        match self {
            Period::Days => date,
            Period::Weeks => date - chrono::Days::new(u64::from(date.weekday().num_days_from_monday())),
        }
    }

    fn length_days(self) -> f64 {
        match self {
            Period::Days => 1.0,
            Period::Weeks => 7.0,
        }
    }
}

/// The model input per customer, in columns parallel to `customers` (sorted ascending by key).
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseSummary<K> {
    /// Customer keys, ascending, each once.
    pub customers: Vec<K>,
    /// `x`: number of purchase periods after the first (repeat purchases); whole numbers.
    pub frequency: Vec<f64>,
    /// `t_x`: time from the first to the last purchase period.
    pub recency: Vec<f64>,
    /// `T`: time from the first purchase period to the observation end's period.
    pub t: Vec<f64>,
    /// `m̄`: mean value of the repeat purchase periods (same-period values summed first; the first
    /// purchase excluded); 0 when `x = 0`. `None` when no values were given.
    pub monetary_value: Option<Vec<f64>>,
}

impl<K: Ord> PurchaseSummary<K> {
    /// Number of customers.
    pub fn len(&self) -> usize {
        self.customers.len()
    }

    /// Whether no customer had a purchase up to the observation end.
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// Row of a customer, if present.
    pub fn position(&self, customer: &K) -> Option<usize> {
        self.customers.binary_search(customer).ok()
    }
}

/// Build the per-customer summary from transactions.
///
/// `customers`, `dates` and (optionally) `values` are parallel columns, one row per transaction, in any
/// order. Dates are truncated to their `period`; transactions whose period starts after the period of
/// `observation_end` are ignored (lifetimes' truncation); transactions of one customer in one period are
/// merged into one purchase, their values summed. Times are in periods divided by `multiplier` (this
/// project: `Period::Days` with `multiplier = 7.0`, i.e. weeks of 7 days, as lifetimes' `freq='D',
/// freq_multiplier=7`).
///
/// Customers whose first purchase is after `observation_end` do not appear. An empty log gives an empty
/// summary (fitting it then fails with [`ClvError::Empty`]). Errors: columns of different lengths, a
/// non-finite value, or a `multiplier` that is not a positive finite number.
pub fn summary_from_transactions<K: Ord + Clone>(
    customers: &[K],
    dates: &[NaiveDate],
    values: Option<&[f64]>,
    observation_end: NaiveDate,
    period: Period,
    multiplier: f64,
) -> Result<PurchaseSummary<K>> {
    check_len("dates", customers.len(), dates.len())?;
    if let Some(values) = values {
        check_len("values", customers.len(), values.len())?;
        if let Some(row) = values.iter().position(|v| !v.is_finite()) {
            return Err(ClvError::InvalidInput { row, reason: format!("value {} is not finite", values[row]) });
        }
    }
    if !(multiplier.is_finite() && multiplier > 0.0) {
        return Err(ClvError::InvalidParameter(format!("multiplier must be positive and finite, got {multiplier}")));
    }
    let end = period.start(observation_end);
    let unit = period.length_days() * multiplier;

    let mut rows: Vec<(usize, NaiveDate)> =
        (0..customers.len()).map(|i| (i, period.start(dates[i]))).filter(|&(_, start)| start <= end).collect();
    rows.sort_by(|a, b| customers[a.0].cmp(&customers[b.0]).then(a.1.cmp(&b.1)));

    let mut out = PurchaseSummary {
        customers: Vec::new(),
        frequency: Vec::new(),
        recency: Vec::new(),
        t: Vec::new(),
        monetary_value: values.map(|_| Vec::new()),
    };
    let value_of = |row: usize| values.map_or(0.0, |v| v[row]);
    let mut i = 0;
    while i < rows.len() {
        let key = &customers[rows[i].0];
        let first = rows[i].1;
        let mut last = first;
        let mut periods = 0_u64;
        let mut repeat_sum = 0.0;
        let mut j = i;
        while j < rows.len() && customers[rows[j].0] == *key {
            let start = rows[j].1;
            if j == i || start != last {
                periods += 1;
                last = start;
            }
            if periods > 1 {
                repeat_sum += value_of(rows[j].0);
            }
            j += 1;
        }
        let frequency = (periods - 1) as f64;
        out.customers.push(key.clone());
        out.frequency.push(frequency);
        out.recency.push((last - first).num_days() as f64 / unit);
        out.t.push((end - first).num_days() as f64 / unit);
        if let Some(monetary) = out.monetary_value.as_mut() {
            monetary.push(if periods > 1 { repeat_sum / frequency } else { 0.0 });
        }
        i = j;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn collapses_same_day_purchases_and_excludes_the_first_from_monetary_value() {
        let customers = ["b", "a", "a", "a", "a", "b"];
        let dates =
            [d("2024-01-10"), d("2024-01-01"), d("2024-01-01"), d("2024-01-08"), d("2024-01-15"), d("2024-02-01")];
        let values = [5.0, 10.0, 20.0, 7.0, 9.0, 1.0];
        let s =
            summary_from_transactions(&customers, &dates, Some(&values), d("2024-01-31"), Period::Days, 7.0).unwrap();
        assert_eq!(s.customers, vec!["a", "b"]);
        assert_eq!(s.frequency, vec![2.0, 0.0]);
        assert_eq!(s.recency, vec![14.0 / 7.0, 0.0]);
        assert_eq!(s.t, vec![30.0 / 7.0, 21.0 / 7.0]);
        assert_eq!(s.monetary_value, Some(vec![8.0, 0.0]));
        assert_eq!(s.position(&"b"), Some(1));
    }

    #[test]
    fn weeks_are_monday_to_sunday() {
        // 2024-01-01 is a Monday; 2024-01-07 (Sunday) falls in the same week, 2024-01-08 in the next.
        let customers = [1, 1, 1];
        let dates = [d("2024-01-03"), d("2024-01-07"), d("2024-01-08")];
        let s = summary_from_transactions(&customers, &dates, None, d("2024-01-24"), Period::Weeks, 1.0).unwrap();
        assert_eq!((s.frequency[0], s.recency[0], s.t[0]), (1.0, 1.0, 3.0));
        assert_eq!(s.monetary_value, None);
    }

    #[test]
    fn purchases_after_the_observation_end_are_ignored() {
        let s = summary_from_transactions(
            &[1, 1, 2],
            &[d("2024-01-01"), d("2024-03-01"), d("2024-03-01")],
            None,
            d("2024-02-01"),
            Period::Days,
            1.0,
        )
        .unwrap();
        assert_eq!(s.customers, vec![1]);
        assert_eq!((s.frequency[0], s.recency[0], s.t[0]), (0.0, 0.0, 31.0));
    }

    #[test]
    fn empty_and_invalid_inputs() {
        let empty: [u32; 0] = [];
        let s = summary_from_transactions(&empty, &[], None, d("2024-01-01"), Period::Days, 1.0).unwrap();
        assert!(s.is_empty());
        assert!(matches!(
            summary_from_transactions(&[1], &[], None, d("2024-01-01"), Period::Days, 1.0),
            Err(ClvError::LengthMismatch { .. })
        ));
        assert!(matches!(
            summary_from_transactions(&[1], &[d("2024-01-01")], Some(&[f64::NAN]), d("2024-01-01"), Period::Days, 1.0),
            Err(ClvError::InvalidInput { row: 0, .. })
        ));
        assert!(matches!(
            summary_from_transactions(&[1], &[d("2024-01-01")], None, d("2024-01-01"), Period::Days, 0.0),
            Err(ClvError::InvalidParameter(_))
        ));
    }
}
