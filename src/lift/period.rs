//! One flow-period's lift (models.md 3.2, 3.3): sparse strata collapsed, the post-stratified
//! estimate of every outcome with its analytic interval, the bootstrap headline interval, the
//! winsorized and durability columns, the placebo, and the minimum-evidence test.

use super::bootstrap::{self, bootstrap_interval};
use super::estimator::{Estimate, Stratum, post_stratified};

/// Controls a stratum needs before it stops being collapsed (models.md 3.2).
pub const MIN_STRATUM_CONTROLS: usize = 10;
/// Minimum evidence per flow × period: control entries, and control entries with a purchase.
pub const MIN_CONTROLS: usize = 200;
pub const MIN_BUYING_CONTROLS: usize = 20;
/// A placebo passes when its interval holds 0 and it is at most this share of the estimate.
pub const PLACEBO_SHARE: f64 = 0.25;
/// Bootstrap and analytic intervals disagreeing by more than this share of the width: unstable.
pub const CI_UNSTABLE_SHARE: f64 = 0.25;

/// The outcomes of an entry, in this order.
pub const OUTCOMES: usize = 6;
pub const REVENUE: usize = 0;
pub const ORDERS: usize = 1;
pub const GROSS_MARGIN: usize = 2;
pub const CONTRIBUTION: usize = 3;
pub const REVENUE_2H: usize = 4;
pub const PLACEBO: usize = 5;

/// One entry of the flow-period, already in an arm.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodEntry {
    /// Dense person index within the period.
    pub person: u32,
    /// Stratum parts, finest last: RFM tier, prior-orders bucket, other-channel flag, band.
    pub parts: [String; 4],
    pub treated: bool,
    pub y: [f64; OUTCOMES],
}

/// A point estimate with its 95 % interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// A bootstrap interval is unstable when either bound is further than
    /// [`CI_UNSTABLE_SHARE`] of the analytic width from the analytic bound.
    pub fn unstable_against(&self, analytic: &Interval) -> bool {
        let width = analytic.high - analytic.low;
        (self.low - analytic.low).abs().max((self.high - analytic.high).abs()) > CI_UNSTABLE_SHARE * width
    }
}

/// Everything one flow-period reports.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodLift {
    pub entries_t: usize,
    pub entries_c: usize,
    pub buying_controls: usize,
    pub evidence_met: bool,
    pub strata_used: usize,
    pub coverage_share: f64,
    pub observed_treated: f64,
    pub counterfactual: f64,
    pub lift_pct: Option<f64>,
    /// Headline revenue with the headline interval (bootstrap when it worked).
    pub revenue: Option<Interval>,
    pub revenue_analytic: Option<Interval>,
    pub bootstrapped: bool,
    pub ci_unstable: bool,
    pub orders: Option<f64>,
    pub gross_margin: Option<Interval>,
    pub contribution: Option<Interval>,
    pub revenue_2h: Option<f64>,
    pub revenue_winsorized: Option<f64>,
    pub placebo: Option<Interval>,
    pub placebo_passed: Option<bool>,
}

/// Assigns each entry a dense stratum: cells of the finest parts with at least
/// [`MIN_STRATUM_CONTROLS`] controls stand; the others drop the band, then the other-channel
/// flag, then merge prior-order buckets; what is left keeps the coarsest cell (uncovered when it
/// has no control at all).
pub fn collapse_strata(entries: &[PeriodEntry]) -> (Vec<u32>, usize) {
    let mut stratum = vec![u32::MAX; entries.len()];
    let mut next = 0u32;
    for level in (1..=4).rev() {
        let last = level == 1;
        let mut cells: std::collections::BTreeMap<&[String], (usize, Vec<usize>)> = Default::default();
        for (i, e) in entries.iter().enumerate() {
            if stratum[i] == u32::MAX {
                let cell = cells.entry(&e.parts[..level]).or_default();
                cell.0 += usize::from(!e.treated);
                cell.1.push(i);
            }
        }
        for (controls, members) in cells.values() {
            if *controls >= MIN_STRATUM_CONTROLS || last {
                for i in members {
                    stratum[*i] = next;
                }
                next += 1;
            }
        }
    }
    (stratum, next as usize)
}

fn estimate(entries: &[PeriodEntry], strata: &[u32], n: usize, y: impl Fn(&PeriodEntry) -> f64) -> Estimate {
    let mut s = vec![Stratum::default(); n];
    for (e, k) in entries.iter().zip(strata) {
        let cell = &mut s[*k as usize];
        if e.treated { cell.treated.add(y(e), 1.0) } else { cell.control.add(y(e), 1.0) }
    }
    post_stratified(&s)
}

fn interval(e: &Estimate) -> Option<Interval> {
    let (low, high) = e.ci_analytic?;
    Some(Interval { value: e.headline?, low, high })
}

/// Estimates one flow-period. `replicates` 0 skips the bootstrap (analytic headline interval).
pub fn estimate_period(entries: &[PeriodEntry], replicates: usize, seed: u64, threads: usize) -> PeriodLift {
    let entries_t = entries.iter().filter(|e| e.treated).count();
    let entries_c = entries.len() - entries_t;
    let buying_controls = entries.iter().filter(|e| !e.treated && e.y[ORDERS] > 0.0).count();
    let evidence_met = entries_c >= MIN_CONTROLS && buying_controls >= MIN_BUYING_CONTROLS;
    let (strata, n) = collapse_strata(entries);
    let revenue_est = estimate(entries, &strata, n, |e| e.y[REVENUE]);
    let strata_used = {
        let mut covered = vec![false; n];
        for (e, k) in entries.iter().zip(&strata) {
            covered[*k as usize] |= !e.treated;
        }
        covered.iter().filter(|c| **c).count()
    };
    let revenue_analytic = interval(&revenue_est);
    let mut bootstrapped = false;
    let mut ci_unstable = false;
    let mut revenue = revenue_analytic;
    if let Some(a) = revenue_analytic
        && replicates > 0
    {
        let boot: Vec<bootstrap::Entry> = entries
            .iter()
            .zip(&strata)
            .map(|(e, k)| bootstrap::Entry { person: e.person, stratum: *k, treated: e.treated, y: e.y[REVENUE] })
            .collect();
        let persons = entries.iter().map(|e| e.person as usize + 1).max().unwrap_or(0);
        if let Some((low, high)) = bootstrap_interval(&boot, n, persons, replicates, seed, threads) {
            bootstrapped = true;
            let b = Interval { value: a.value, low, high };
            ci_unstable = b.unstable_against(&a);
            revenue = Some(b);
        }
    }
    let of = |k: usize| estimate(entries, &strata, n, |e| e.y[k]);
    let placebo = interval(&of(PLACEBO));
    let placebo_passed = match (placebo, revenue) {
        (Some(p), Some(r)) => Some(p.low <= 0.0 && 0.0 <= p.high && p.value.abs() <= PLACEBO_SHARE * r.value.abs()),
        _ => None,
    };
    let revenue_winsorized = if entries.is_empty() {
        None
    } else {
        let mut pooled: Vec<f64> = entries.iter().map(|e| e.y[REVENUE]).collect();
        pooled.sort_by(f64::total_cmp);
        let cap = bootstrap::quantile(&pooled, 0.999);
        estimate(entries, &strata, n, |e| e.y[REVENUE].min(cap)).headline
    };
    PeriodLift {
        entries_t,
        entries_c,
        buying_controls,
        evidence_met,
        strata_used,
        coverage_share: revenue_est.coverage_share,
        observed_treated: revenue_est.observed_treated,
        counterfactual: revenue_est.counterfactual,
        lift_pct: revenue_est.lift_pct,
        revenue,
        revenue_analytic,
        bootstrapped,
        ci_unstable,
        orders: of(ORDERS).headline,
        gross_margin: interval(&of(GROSS_MARGIN)),
        contribution: interval(&of(CONTRIBUTION)),
        revenue_2h: of(REVENUE_2H).headline,
        revenue_winsorized,
        placebo,
        placebo_passed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(person: u32, parts: [&str; 4], treated: bool, y: f64) -> PeriodEntry {
        PeriodEntry {
            person,
            parts: parts.map(String::from),
            treated,
            y: [y, f64::from(u8::from(y > 0.0)), y * 0.6, y * 0.4, y, 0.0],
        }
    }

    #[test]
    fn sparse_cells_lose_their_band_then_the_channel_flag() {
        let mut v = Vec::new();
        // 12 controls in the finest cell: it stands.
        for i in 0..12 {
            v.push(entry(i, ["loyal", "1", "0", "<50"], false, 0.0));
        }
        v.push(entry(12, ["loyal", "1", "0", "<50"], true, 10.0));
        // 5 + 6 controls in two bands of one (tier, prior, other) cell: both collapse into it.
        for i in 0..5 {
            v.push(entry(20 + i, ["loyal", "0", "1", "<50"], false, 0.0));
        }
        for i in 0..6 {
            v.push(entry(30 + i, ["loyal", "0", "1", "200+"], false, 0.0));
        }
        v.push(entry(40, ["loyal", "0", "1", "200+"], true, 5.0));
        // No control anywhere in this tier: uncovered.
        v.push(entry(50, ["champion", "4+", "1", "<50"], true, 99.0));
        let (s, n) = collapse_strata(&v);
        assert_eq!(n, 3);
        assert!(s[..13].iter().all(|k| *k == s[0]));
        assert!(s[13..25].iter().all(|k| *k == s[13]) && s[13] != s[0]);
        let uncovered = s[25];
        assert!(uncovered != s[0] && uncovered != s[13]);
        let lift = estimate_period(&v, 0, 1, 1);
        assert_eq!(lift.strata_used, 2);
        assert!((lift.coverage_share - 2.0 / 3.0).abs() < 1e-12);
        assert!(lift.revenue.is_none(), "coverage below 0.8 withholds the headline");
        assert!(!lift.evidence_met);
    }

    #[test]
    fn a_known_lift_is_recovered_with_its_placebo_passing() {
        let mut v = Vec::new();
        for i in 0..4000u32 {
            let treated = i % 4 != 0;
            let buys = if treated { i % 10 < 2 } else { (i / 4) % 10 == 0 };
            let mut e = entry(i, ["p", "0", "0", ""], treated, if buys { 50.0 } else { 0.0 });
            e.y[PLACEBO] = if i % 7 == 0 { 30.0 } else { 0.0 };
            v.push(e);
        }
        let lift = estimate_period(&v, 400, 9, 2);
        let r = lift.revenue.unwrap();
        // 600 of 3,000 treated buy (mean 10), 100 of 1,000 controls (mean 5): 3,000 × 5 = 15,000;
        // the placebo (every 7th entry spent 30 before) has equal means, 4.29, in both arms.
        assert!((r.value - 15_000.0).abs() < 1e-6, "{r:?}");
        assert!(r.low < 15_000.0 && 15_000.0 < r.high && lift.bootstrapped);
        assert!(lift.evidence_met);
        assert_eq!(lift.placebo_passed, Some(true), "{:?}", lift.placebo);
        assert!((lift.orders.unwrap() - 300.0).abs() < 1e-6);
        assert!(lift.placebo.unwrap().value.abs() < 1e-6);
    }
}
