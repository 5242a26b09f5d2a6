//! Models written in Rust where SQL is awkward (see [`super::model::RUST_MODELS`]).

pub mod clv_marts;
pub mod identity;
