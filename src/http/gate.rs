//! Admission control a source adds on top of request-count pacing.
//!
//! Shopify's GraphQL Admin API charges each request in cost points from a leaky bucket whose
//! state the server reports on every response, and answers throttles and query errors with
//! HTTP 200. A [`Gate`] sees each request before it goes out and each answer before the engine
//! accepts it, so the engine's retry loop handles a throttle in a 200 exactly like a 429.

use futures::future::BoxFuture;
use serde_json::Value;

use super::client::Page;
use super::retry::HttpError;

/// A source's own pacing and response classification.
pub trait Gate: Send + Sync {
    /// Waits until this request may be sent.
    fn admit<'a>(&'a self, body: Option<&'a Value>) -> BoxFuture<'a, ()>;

    /// Learns from a 2xx answer and says whether it is really a success.
    fn inspect(&self, body: Option<&Value>, page: &Page) -> Result<(), HttpError>;
}
