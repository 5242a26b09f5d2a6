//! Modeled incremental lift of a flow (models.md section 3): the post-stratified intent-to-treat
//! estimator over eligible entries, its analytic interval, and the stratified Poisson bootstrap
//! that gives the headline interval. Pure arithmetic over per-entry outcomes; the marts of issue
//! 6 feed it from `int_flow_entries`.

pub mod baseline;
pub mod bootstrap;
pub mod did;
pub mod estimator;
pub mod period;

pub use bootstrap::{Entry, bootstrap_interval, seed_for};
pub use estimator::{Arm, Estimate, Stratum, post_stratified};
