//! Customer-lifetime-value mathematics (models.md 4.15, 4.16 and section 6), in plain Rust over slices.
//!
//! The transform calls these functions with columns it has read from Arrow; nothing here knows about
//! Arrow, DataFusion or storage. Everything mirrors the Python package `lifetimes` 0.11.3 so that results
//! can be compared with it (`tests/clv_cdnow.rs` checks the figures of models.md 6.1–6.4 and 6.9 on the
//! CDNOW data shipped with that package):
//!
//! * [`summary_from_transactions`] — frequency / recency / T / monetary value per customer, as
//!   `lifetimes.utils.summary_data_from_transaction_data` (same-period purchases collapsed into one).
//! * [`BgNbd`] — the BG/NBD purchase model: log-likelihood, maximum-likelihood fit, conditional expected
//!   purchases, P(alive), expected purchases of a new customer.
//! * [`GammaGamma`] — the Gamma-Gamma spend model: fit on repeat customers, conditional expected average
//!   spend, and the discounted CLV of `GammaGammaFitter.customer_lifetime_value`.
//! * [`holdout_by_frequency`] — the calibration/holdout comparison of 4.15 (`holdout_mape`).
//! * [`KaplanMeier`] and [`repeat_purchase_metrics`] — time to second purchase with right-censoring (4.16).
//!
//! Time is whatever unit the summary was built in (weeks in this project: days / 7). Inputs are checked
//! up front; degenerate data (no customers, nobody with a repeat purchase, a likelihood whose maximum runs
//! off to infinity) gives a [`ClvError`], never a panic or a NaN.
//!
//! Fits are unpenalised maximum likelihood by BFGS with analytic gradients over log-parameters, from a
//! fixed list of starts (the first is lifetimes' 0.1 everywhere), keeping the best finite optimum; no
//! randomness, so a refit on the same data gives the same bits. On CDNOW the fits land within 5e-7
//! (relative) of lifetimes' estimates, in about 0.1 s for 2,357 customers in a debug build. `ln Γ`,
//! digamma and ₂F₁ are implemented here (no special-function dependency).

mod bgnbd;
mod gamma_gamma;
mod holdout;
mod optimize;
pub(crate) mod special;
mod summary;
mod survival;

pub use bgnbd::{BgNbd, BgNbdFit};
pub use gamma_gamma::{ClvSettings, ClvTimeUnit, GammaGamma, GammaGammaFit, frequency_monetary_correlation};
pub use holdout::{HoldoutBucket, HoldoutReport, holdout_by_frequency, purchase_periods_between};
pub use summary::{Period, PurchaseSummary, summary_from_transactions};
pub use survival::{
    KaplanMeier, RepeatPurchaseMetrics, SecondPurchase, repeat_purchase_metrics, second_purchase_durations,
};

/// Result alias of this module.
pub type Result<T, E = ClvError> = std::result::Result<T, E>;

/// What went wrong in a CLV computation. Messages say what to look at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClvError {
    /// There is nothing to compute on (no rows, or no rows that qualify, e.g. no repeat customers for
    /// Gamma-Gamma).
    #[error("no data: {0}")]
    Empty(String),
    /// Two input columns that must be parallel have different lengths.
    #[error("input columns differ in length: {column} has {got} values, expected {expected}")]
    LengthMismatch {
        /// The column that does not match the first one.
        column: &'static str,
        /// Length of the first column.
        expected: usize,
        /// Length of `column`.
        got: usize,
    },
    /// One input row violates the model's assumptions.
    #[error("invalid input in row {row}: {reason}")]
    InvalidInput {
        /// 0-based row in the input columns.
        row: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A model parameter or an argument (time, discount rate …) is out of its domain.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// The data do not identify the model: the likelihood has no finite maximum (for example nobody
    /// bought twice, or a parameter runs off to 0 or infinity).
    #[error("{model} cannot be fitted: {reason}")]
    Degenerate {
        /// `BG/NBD` or `Gamma-Gamma`.
        model: &'static str,
        /// Why, with the parameter values the search ran off to where there are some.
        reason: String,
    },
    /// The optimiser stopped without meeting its convergence criterion.
    #[error("{model} fit did not converge after {iterations} iterations (largest gradient {gradient:e})")]
    NoConvergence {
        /// `BG/NBD` or `Gamma-Gamma`.
        model: &'static str,
        /// Iterations used.
        iterations: usize,
        /// Largest absolute gradient component (mean negative log-likelihood, log-parameters) at the end.
        gradient: f64,
    },
    /// A special function could not be evaluated to full precision for these arguments.
    #[error("numerical failure: {0}")]
    Numerical(String),
}

pub(crate) fn check_len(column: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got { Ok(()) } else { Err(ClvError::LengthMismatch { column, expected, got }) }
}
