//! Models written in Rust where SQL is awkward (see [`super::model::RUST_MODELS`]).

pub mod anomalies;
pub mod clv_marts;
pub mod columns;
pub mod contribution;
pub mod entries;
pub mod flow_structure;
pub mod flows;
pub mod identity;
pub mod interventions;
