//! The simulated brand: one seeded model of a DTC brand from which every fake server serves.
//!
//! [`generate`] writes a brand to a [`store::SimStore`] folder; the fake servers in
//! [`crate::fake`] read it back; [`model::SimTruth`] keeps what no API serves (each flow's
//! true causal effect, totals) so tests can check landed and modeled figures against it.

pub mod catalog;
pub mod generate;
mod keyed;
pub mod life;
pub mod model;
pub mod sms_program;
pub mod store;
#[cfg(test)]
mod tests;
pub mod truth;

pub use generate::{CONSENT_BASELINE_MULTIPLIER, Causal, SimConfig, generate};
pub use model::Incident;
