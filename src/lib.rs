//! lifecycle-etl: the numbers behind the Lifecycle Performance Dashboard.

pub mod check;
pub mod cli;
pub mod clv;
pub mod config;
pub mod contract;
pub mod demo;
pub mod error;
pub mod extract;
pub mod failpoint;
pub mod fake;
pub mod http;
pub mod landing;
pub mod lift;
pub mod lock;
pub mod logging;
pub mod manifest;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod seeds;
pub mod simulate;
pub mod sources;
pub mod state;
pub mod storage;
pub mod stream;
pub mod transform;
