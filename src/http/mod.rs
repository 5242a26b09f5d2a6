//! The one HTTP engine every source uses: auth, default headers, pacing, retries, pagination.
//!
//! A source supplies data ([`crate::sources`] stream specs); the engine owns the loop. Each
//! response is classified into a [`crate::error::Disposition`] before anything propagates.

pub mod client;
pub mod gate;
pub mod paginate;
pub mod rate_limit;
pub mod retry;

pub use client::{Auth, HttpEngine, Page};
pub use gate::Gate;
pub use paginate::Pagination;
pub use rate_limit::RateBucket;
pub use retry::HttpError;
