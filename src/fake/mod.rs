//! Faithful fake vendor APIs: real HTTP on 127.0.0.1 serving the simulated brand.
//!
//! Every fake is an axum router behind the same outer layers, so tests drive all of them the
//! same way through a [`FakeServer`]: [`Faults`] injects throttles, 5xx, latency and broken
//! bodies at runtime, the request log records what the client really sent, and [`FakeClock`]
//! decides which records already "exist".

pub mod attentive;
pub mod clock;
pub mod cursor;
pub mod faults;
pub mod klaviyo;
pub mod postscript;
pub mod rate_limit;
pub mod s3_faults;
pub mod server;
pub mod shopify;
pub mod webhook_sender;

pub use clock::FakeClock;
pub use faults::{Corruption, FaultScope, Faults, RecordTarget, StormConfig, StormCounts};
pub use rate_limit::{Limit, RateLimiter};
pub use server::{FakeServer, LoggedRequest};
