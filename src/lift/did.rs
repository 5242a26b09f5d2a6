//! Fallback F1 of models.md 3.4: difference-in-differences on a flow's change date. Revenue per
//! entry of the flow's eligible population on and off (the trigger rule rebuilds both), against a
//! comparison population over the same two windows to remove seasonality:
//! `delta = (RPE_f,on − RPE_f,off) − (RPE_g,on − RPE_g,off)`. Its analytic standard error treats
//! the four groups as independent samples; the headline interval is a bootstrap over persons
//! within weekly blocks (a person's entries of one week move together), which keeps what the
//! analytic one ignores: a person entering both flows, or entering again the same week.

use super::bootstrap::{percentile_interval, poisson_weights};
use super::estimator::Arm;

/// One entry of the four groups of [`difference_in_differences`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockEntry {
    /// 0 the flow on, 1 the flow off, 2 the comparison on, 3 the comparison off.
    pub group: usize,
    /// Dense index of the entry's (person, week) block.
    pub block: u32,
    /// Revenue in the outcome window.
    pub y: f64,
}

fn groups(entries: &[BlockEntry], weights: Option<&[f64]>) -> [Arm; 4] {
    let mut arms = [Arm::default(); 4];
    for e in entries {
        let w = weights.map_or(1.0, |w| w[e.block as usize]);
        if w > 0.0 {
            arms[e.group].add(e.y, w);
        }
    }
    arms
}

/// The 95 % interval of `delta` by a Poisson bootstrap of the (person, week) blocks, `blocks`
/// of them, with the seed's replicate streams as in [`super::bootstrap`].
pub fn block_bootstrap_interval(
    entries: &[BlockEntry],
    blocks: usize,
    replicates: usize,
    seed: u64,
    threads: usize,
) -> Option<(f64, f64)> {
    percentile_interval(replicates, seed, threads, |rng| {
        let [f_on, f_off, g_on, g_off] = groups(entries, Some(&poisson_weights(rng, blocks)));
        difference_in_differences(&f_on, &f_off, &g_on, &g_off).map(|(d, _)| d)
    })
}

/// The four groups' arms of unweighted entries.
pub fn group_arms(entries: &[BlockEntry]) -> [Arm; 4] {
    groups(entries, None)
}

/// Entries each of the four groups needs before a difference is reported.
pub const MIN_GROUP_ENTRIES: f64 = 20.0;

/// `(delta, standard error)`; `None` when a group is too small.
pub fn difference_in_differences(f_on: &Arm, f_off: &Arm, g_on: &Arm, g_off: &Arm) -> Option<(f64, f64)> {
    let groups = [f_on, f_off, g_on, g_off];
    if groups.iter().any(|g| g.n < MIN_GROUP_ENTRIES) {
        return None;
    }
    let delta = (f_on.mean() - f_off.mean()) - (g_on.mean() - g_off.mean());
    let var: f64 = groups.iter().map(|g| g.sample_variance() / g.n).sum();
    Some((delta, var.sqrt()))
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;

    fn arm(values: &[(f64, usize)]) -> Arm {
        let mut a = Arm::default();
        for (y, n) in values {
            for _ in 0..*n {
                a.add(*y, 1.0);
            }
        }
        a
    }

    #[test]
    fn seasonality_in_the_comparison_is_taken_out() {
        // The flow's entrants spend 6.00 per entry when it is on, 3.00 off; the comparison rose
        // from 2.00 to 3.00 over the same weeks (season): the flow adds 3 − 1 = 2.00 per entry.
        let f_on = arm(&[(60.0, 10), (0.0, 90)]);
        let f_off = arm(&[(30.0, 10), (0.0, 90)]);
        let g_on = arm(&[(30.0, 20), (0.0, 180)]);
        let g_off = arm(&[(20.0, 20), (0.0, 180)]);
        let (delta, se) = difference_in_differences(&f_on, &f_off, &g_on, &g_off).unwrap();
        assert!((delta - 2.0).abs() < 1e-12);
        // Sample variances 32,400/99, 8,100/99, 16,200/199, 7,200/199, over n = 100, 100, 200, 200:
        // 3.27273 + 0.81818 + 0.40704 + 0.18090 = 4.67885.
        assert!((se - 4.67885f64.sqrt()).abs() < 1e-5, "{se}");
        assert!(difference_in_differences(&arm(&[(1.0, 5)]), &f_off, &g_on, &g_off).is_none());
    }

    /// Four groups of 400 persons, one entry each, buyers spending 50.
    fn blocks(rates: [f64; 4]) -> Vec<BlockEntry> {
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(5);
        let mut out = Vec::new();
        for (group, p) in rates.iter().enumerate() {
            for i in 0..400u32 {
                let y = if rng.random_bool(*p) { 50.0 } else { 0.0 };
                out.push(BlockEntry { group, block: group as u32 * 400 + i, y });
            }
        }
        out
    }

    #[test]
    fn the_block_bootstrap_matches_the_analytic_interval_for_independent_entries() {
        let entries = blocks([0.20, 0.10, 0.12, 0.10]);
        let [a, b, c, d] = group_arms(&entries);
        let (delta, se) = difference_in_differences(&a, &b, &c, &d).unwrap();
        let (lo, hi) = block_bootstrap_interval(&entries, 1600, 2000, 9, 2).unwrap();
        let width = 2.0 * 1.959964 * se;
        assert!(lo < delta && delta < hi, "[{lo}, {hi}] around {delta}");
        assert!(((hi - lo) - width).abs() < 0.15 * width, "bootstrap {} vs analytic {width}", hi - lo);
        assert_eq!(
            block_bootstrap_interval(&entries, 1600, 500, 9, 1),
            block_bootstrap_interval(&entries, 1600, 500, 9, 3)
        );
    }

    #[test]
    fn entries_of_one_block_move_together_and_widen_the_interval() {
        // The same outcomes, but every flow-on person entered five times in one week: the
        // analytic error counts 2,000 independent entries there, the blocks 400 persons. Group
        // variances of y (50 × Bernoulli) per person: 400, 225, 264, 225 (p = .20, .10, .12, .10);
        // over n they give 1.0 + .5625 + .66 + .5625 = 2.785 by block against .2 + 1.785 = 1.985
        // analytically: the interval widens by sqrt(2.785 / 1.985) = 1.18.
        let mut entries = blocks([0.20, 0.10, 0.12, 0.10]);
        let copies: Vec<BlockEntry> = entries.iter().filter(|e| e.group == 0).flat_map(|e| [*e; 4]).collect();
        entries.extend(copies);
        let [a, b, c, d] = group_arms(&entries);
        let (_, se) = difference_in_differences(&a, &b, &c, &d).unwrap();
        let (lo, hi) = block_bootstrap_interval(&entries, 1600, 2000, 9, 2).unwrap();
        let ratio = (hi - lo) / (2.0 * 1.959964 * se);
        assert!((1.08..1.30).contains(&ratio), "bootstrap / analytic width {ratio}");
    }
}
