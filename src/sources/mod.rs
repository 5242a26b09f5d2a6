//! The sources: each is mostly data (its streams) plus the few lines that build its HTTP engine.
//!
//! Listed in one place, without registration macros: an enum and a match are easier to grep.

pub mod attentive;
pub mod klaviyo;
pub mod postscript;
pub mod shopify;

/// Every source this build knows, in the order a run syncs them.
pub const ALL_SOURCES: &[&str] = &["klaviyo", "shopify", "postscript", "attentive"];
