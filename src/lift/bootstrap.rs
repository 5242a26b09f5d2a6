//! The headline interval (models.md 3.2): a stratified Poisson bootstrap with the person as the
//! resampling unit. Every replicate gives each person a weight `w ~ Poisson(1)`, re-weights all of
//! that person's entries, and recomputes the whole post-stratified estimator; the interval is the
//! 2.5 % and 97.5 % percentiles of the replicates' headlines. Replicate `b` draws from its own
//! ChaCha8 stream of the seed, so the result does not depend on how replicates are spread over
//! threads, and a rerun gives the same interval.

use md5::{Digest, Md5};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::estimator::{Stratum, post_stratified};

/// Replicates of the headline interval.
pub const REPLICATES: usize = 2000;

/// One eligible entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// Dense person index (0..persons): a person's entries move together.
    pub person: u32,
    /// Dense stratum index (0..strata).
    pub stratum: u32,
    /// In the reachable arm (else control).
    pub treated: bool,
    /// Outcome (net revenue in the window).
    pub y: f64,
}

/// The seed of a flow-period's bootstrap: the first eight bytes of
/// `md5(flow_key|period_start|model_version)`, little-endian.
pub fn seed_for(flow_key: &str, period_start: &str, model_version: &str) -> u64 {
    let digest = Md5::digest(format!("{flow_key}|{period_start}|{model_version}").as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("md5 has 16 bytes"))
}

/// Cumulative Poisson(1) probabilities P(W ≤ k), k = 0…15 (beyond: below 10⁻¹³).
const POISSON_1_CDF: [f64; 16] = {
    let mut cdf = [0.0; 16];
    let mut p = 0.367_879_441_171_442_33; // e^-1
    let mut acc = 0.0;
    let mut k = 0;
    while k < 16 {
        acc += p;
        cdf[k] = acc;
        k += 1;
        p /= k as f64;
    }
    cdf
};

/// A Poisson(1) draw by inversion of one uniform: a table walk, several times cheaper than a
/// general Poisson sampler, which matters at 2,000 replicates × every person × every flow-period.
fn poisson_1(u: f64) -> f64 {
    POISSON_1_CDF.iter().position(|c| u < *c).unwrap_or(16) as f64
}

/// One replicate's Poisson(1) weight for each of `units` resampling units.
pub(super) fn poisson_weights(rng: &mut ChaCha8Rng, units: usize) -> Vec<f64> {
    (0..units).map(|_| poisson_1(rng.random::<f64>())).collect()
}

/// Sufficient statistics of one replicate under per-person `weights`.
fn strata_with(entries: &[Entry], strata: usize, weights: &[f64]) -> Vec<Stratum> {
    let mut out = vec![Stratum::default(); strata];
    for e in entries {
        let w = weights[e.person as usize];
        if w == 0.0 {
            continue;
        }
        let s = &mut out[e.stratum as usize];
        if e.treated { s.treated.add(e.y, w) } else { s.control.add(e.y, w) }
    }
    out
}

/// Type-7 (linear interpolation) quantile of sorted values.
pub(super) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = q * (sorted.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (h - lo as f64)
}

/// The 95 % percentile interval of the headline over `replicates` replicates on `threads`
/// threads; `None` when fewer than half the replicates have a headline (too little coverage).
pub fn bootstrap_interval(
    entries: &[Entry],
    strata: usize,
    persons: usize,
    replicates: usize,
    seed: u64,
    threads: usize,
) -> Option<(f64, f64)> {
    percentile_interval(replicates, seed, threads, |rng| {
        post_stratified(&strata_with(entries, strata, &poisson_weights(rng, persons))).headline
    })
}

/// The 2.5 % and 97.5 % percentiles of `statistic` over `replicates` replicates, replicate `b`
/// drawing from stream `b` of the seed's ChaCha8 (so threads change nothing); `None` when fewer
/// than half the replicates have a value.
pub(super) fn percentile_interval(
    replicates: usize,
    seed: u64,
    threads: usize,
    statistic: impl Fn(&mut ChaCha8Rng) -> Option<f64> + Sync,
) -> Option<(f64, f64)> {
    let threads = threads.clamp(1, replicates.max(1));
    let mut values: Vec<Option<f64>> = vec![None; replicates];
    let chunk = replicates.div_ceil(threads);
    let statistic = &statistic;
    std::thread::scope(|scope| {
        for (t, slots) in values.chunks_mut(chunk).enumerate() {
            scope.spawn(move || {
                for (i, slot) in slots.iter_mut().enumerate() {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed);
                    rng.set_stream((t * chunk + i) as u64);
                    *slot = statistic(&mut rng);
                }
            });
        }
    });
    let mut ok: Vec<f64> = values.into_iter().flatten().collect();
    if ok.len() * 2 < replicates || ok.len() < 2 {
        return None;
    }
    ok.sort_by(f64::total_cmp);
    Some((quantile(&ok, 0.025), quantile(&ok, 0.975)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two strata, 3,000 persons with one entry each; buyers spend a fixed amount, the treated
    /// arm buys more often.
    fn sample() -> (Vec<Entry>, usize) {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut entries = Vec::new();
        for person in 0..3000u32 {
            let stratum = person % 2;
            let treated = person % 10 >= 3;
            let p = match (stratum, treated) {
                (0, true) => 0.12,
                (0, false) => 0.08,
                (_, true) => 0.05,
                (_, false) => 0.04,
            };
            let buys = rand::Rng::random_bool(&mut rng, p);
            entries.push(Entry { person, stratum, treated, y: if buys { 80.0 } else { 0.0 } });
        }
        (entries, 3000)
    }

    #[test]
    fn the_interval_is_deterministic_whatever_the_threads() {
        let (entries, persons) = sample();
        let seed = seed_for("klaviyo|F1", "2026-09-01", "1.0.0");
        let one = bootstrap_interval(&entries, 2, persons, 400, seed, 1).unwrap();
        let four = bootstrap_interval(&entries, 2, persons, 400, seed, 4).unwrap();
        assert_eq!(one, four);
        let other = bootstrap_interval(&entries, 2, persons, 400, seed + 1, 2).unwrap();
        assert_ne!(one, other);
        assert_ne!(seed_for("klaviyo|F1", "2026-09-01", "1.0.0"), seed_for("klaviyo|F1", "2026-10-01", "1.0.0"));
    }

    #[test]
    fn the_bootstrap_interval_agrees_with_the_analytic_one_on_well_behaved_data() {
        let (entries, persons) = sample();
        let point = post_stratified(&strata_with(&entries, 2, &vec![1.0; persons]));
        let (a_lo, a_hi) = point.ci_analytic.unwrap();
        let (b_lo, b_hi) = bootstrap_interval(&entries, 2, persons, REPLICATES, 7, 2).unwrap();
        let width = a_hi - a_lo;
        assert!(b_lo < point.headline.unwrap() && point.headline.unwrap() < b_hi);
        assert!(
            ((b_hi - b_lo) - width).abs() < 0.15 * width,
            "bootstrap [{b_lo}, {b_hi}] vs analytic [{a_lo}, {a_hi}]"
        );
        assert!((b_lo - a_lo).abs() < 0.25 * width && (b_hi - a_hi).abs() < 0.25 * width);
    }

    #[test]
    fn poisson_weights_have_mean_and_variance_one() {
        assert!((POISSON_1_CDF[15] - 1.0).abs() < 1e-12);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let draws: Vec<f64> = (0..200_000).map(|_| poisson_1(rng.random::<f64>())).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        assert!((mean - 1.0).abs() < 0.01 && (var - 1.0).abs() < 0.02, "mean {mean}, variance {var}");
        let zeros = draws.iter().filter(|w| **w == 0.0).count() as f64 / draws.len() as f64;
        assert!((zeros - (-1f64).exp()).abs() < 0.005, "P(0) = {zeros}");
    }

    #[test]
    fn quantiles_interpolate_linearly() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.975) - 4.9).abs() < 1e-12);
    }
}
