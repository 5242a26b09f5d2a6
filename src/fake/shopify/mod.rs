//! The fake Shopify Admin API: GraphQL over real HTTP, served from a
//! [`SimStore`](crate::simulate::store::SimStore).
//!
//! Behaviour follows `apis.md` 2 and 6.2: `X-Shopify-Access-Token` auth (a permanent token
//! and client-credentials tokens that expire), per-version endpoints falling forward to the
//! oldest supported version, a real GraphQL executor over a fixed schema subset (variables,
//! aliases, fragments, version-gated fields, graphql-ruby validation errors), keyset
//! connections with the search syntax, the calculated-cost leaky bucket, bulk operations with
//! JSONL results behind expiring signed URLs, and an as-of view of the shop at the fake
//! clock's now. HTTP-level faults come from the shared [`Faults`](crate::fake::Faults) layer.
//!
//! Modules:
//! - `schema`: the type table (fields, kinds, arguments, version gates);
//! - `plan`: parsing and validation into a selection plan;
//! - `exec`: projection of rendered records through a plan, requested cost;
//! - `cost`: cost rules and the bucket;
//! - `data`: the loaded shop and its as-of views;
//! - `render`: records into Shopify's object shapes;
//! - `search`: the `query:` syntax and keyset cursors;
//! - `engine`: one request end to end, root fields, bulk runs;
//! - `bulk`: bulk validation, status machine and JSONL files;
//! - `routes`: the HTTP endpoints and vendor error bodies.

mod bulk;
mod cost;
mod data;
mod engine;
mod exec;
mod plan;
mod render;
mod routes;
mod schema;
mod search;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::clock::FakeClock;
use super::faults::Faults;
use super::server::{self, FakeServer};
use crate::simulate::model::{SimRefund, SimRefundLine};
use crate::simulate::store::SimStore;

pub use bulk::BulkOperationInfo;
pub use cost::CostEntry;

/// Supported API versions, oldest first; anything else falls forward to the first.
pub const VERSIONS: &[&str] = &["2025-04", "2025-07", "2025-10", "2026-01", "2026-04", "2026-07", "2026-10"];

/// The permanent Admin API token the fake accepts by default.
pub const DEFAULT_ACCESS_TOKEN: &str = "shpat_demo_fake_token";
/// Client credentials of the default Dev Dashboard app.
pub const DEFAULT_CLIENT_ID: &str = "demo_fake_client_id";
pub const DEFAULT_CLIENT_SECRET: &str = "shpss_demo_fake_client_secret";
/// Scopes of the default tokens; `read_all_orders` lifts the 60-day order window.
pub const DEFAULT_SCOPES: &[&str] =
    &["read_orders", "read_all_orders", "read_customers", "read_products", "read_inventory"];

/// How the fake behaves; [`Default`] is a realistic Standard-plan shop.
#[derive(Debug, Clone)]
pub struct ShopifyFakeConfig {
    /// Permanent token accepted in `X-Shopify-Access-Token`. Default [`DEFAULT_ACCESS_TOKEN`].
    pub access_token: String,
    /// Client credentials for `POST /admin/oauth/access_token`. Defaults [`DEFAULT_CLIENT_ID`]
    /// and [`DEFAULT_CLIENT_SECRET`].
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of minted tokens, on the wall clock (tests use milliseconds; the fake clock
    /// dates records, not credentials). Default 24 h (`expires_in` 86399).
    pub token_ttl: Duration,
    /// Scopes of every token. Default [`DEFAULT_SCOPES`]; without `read_all_orders` only
    /// orders created in the 60 days before the fake clock's now are visible.
    pub scopes: Vec<String>,
    /// Bucket size in points. Default 2000.
    pub bucket_max: f64,
    /// Points restored per second. Default 100.
    pub restore_rate: f64,
    /// Answer throttles with HTTP 429 (and `Retry-After`) instead of 200 + `THROTTLED`.
    /// Default `false`.
    pub throttle_status_429: bool,
    /// Whether the bucket and the 1000-point single-query cap apply. Default `true`.
    pub cost_limits: bool,
    /// The fake's present. Default: the end of the shop's last day in its timezone.
    pub now: Option<DateTime<Utc>>,
    /// Polls a bulk job answers RUNNING before it completes (or fails). Default 2.
    pub bulk_poll_steps: u32,
    /// How long result URLs stay downloadable after completion (wall clock). Default 7 days.
    pub bulk_url_ttl: Duration,
    /// Enforce the bulk validator rules the project's queries are known to break (no
    /// connection inside a list field, `edges { node }` only, parent `id` selected).
    /// Default `false`.
    pub bulk_strict: bool,
    /// How long pagination cursors stay valid. Default 1 h.
    pub cursor_ttl: Duration,
}

impl Default for ShopifyFakeConfig {
    fn default() -> Self {
        Self {
            access_token: DEFAULT_ACCESS_TOKEN.into(),
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            token_ttl: Duration::from_secs(24 * 3600),
            scopes: DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
            bucket_max: 2000.0,
            restore_rate: 100.0,
            throttle_status_429: false,
            cost_limits: true,
            now: None,
            bulk_poll_steps: 2,
            bulk_url_ttl: Duration::from_secs(7 * 24 * 3600),
            bulk_strict: false,
            cursor_ttl: Duration::from_secs(3600),
        }
    }
}

/// Drives the running fake between a client's calls; clones share the server's state.
#[derive(Clone)]
pub struct ShopifyControl {
    shared: Arc<engine::Shared>,
    base_url: String,
}

impl ShopifyControl {
    /// `http://127.0.0.1:PORT/admin/api/{version}/graphql.json`.
    pub fn graphql_url(&self, version: &str) -> String {
        format!("{}/admin/api/{version}/graphql.json", self.base_url)
    }

    /// `http://127.0.0.1:PORT/admin/oauth/access_token`.
    pub fn token_url(&self) -> String {
        format!("{}/admin/oauth/access_token", self.base_url)
    }

    pub fn clock(&self) -> &FakeClock {
        &self.shared.clock
    }

    /// Adds a refund to an existing order (however old): the order's `updatedAt` moves to
    /// `created_at` once the clock reaches it. Returns the refund id, `None` for an unknown
    /// order.
    pub fn add_refund(
        &self,
        order_id: u64,
        created_at: DateTime<Utc>,
        amount_minor: i64,
        lines: Vec<SimRefundLine>,
    ) -> Option<u64> {
        if !self.shared.data.order_idx.contains_key(&order_id) {
            return None;
        }
        let mut st = self.shared.lock();
        let refund_id = st.next_refund_id;
        st.next_refund_id += 1;
        st.overlay.refunds.entry(order_id).or_default().push(SimRefund { refund_id, created_at, lines, amount_minor });
        Some(refund_id)
    }

    /// Deletes an order: it disappears from every listing, lookup and later bulk export.
    pub fn delete_order(&self, order_id: u64) -> bool {
        self.shared.data.order_idx.contains_key(&order_id) && self.shared.lock().overlay.deleted.insert(order_id)
    }

    /// The next `n` GraphQL requests answer THROTTLED whatever the bucket holds.
    pub fn throttle_next(&self, n: u32) {
        self.shared.lock().throttle_next += n;
    }

    /// The next bulk job created ends FAILED with `error_code` (`ACCESS_DENIED`,
    /// `INTERNAL_SERVER_ERROR`, `TIMEOUT`), with a `partialDataUrl` holding the first half of
    /// its output when `with_partial_data`.
    pub fn fail_next_bulk(&self, error_code: &str, with_partial_data: bool) {
        self.shared.lock().bulk.fail_next =
            Some(bulk::Failure { error_code: error_code.into(), partial: with_partial_data });
    }

    /// The next bulk job created stays RUNNING forever (until cancelled).
    pub fn stall_next_bulk(&self) {
        self.shared.lock().bulk.stall_next = true;
    }

    /// Resizes the cost bucket (it starts full).
    pub fn set_bucket(&self, max: f64, restore_rate: f64) {
        self.shared.lock().bucket.set(max, restore_rate);
    }

    /// Empties the cost bucket; it refills at the restore rate.
    pub fn drain_bucket(&self) {
        self.shared.lock().bucket.drain();
    }

    /// Every GraphQL request's cost accounting so far, oldest first.
    pub fn requests_cost(&self) -> Vec<CostEntry> {
        self.shared.lock().cost_log.clone()
    }

    /// Every bulk job so far, oldest first.
    pub fn bulk_operations(&self) -> Vec<BulkOperationInfo> {
        self.shared.lock().bulk.ops.iter().map(bulk::BulkOp::info).collect()
    }

    /// Expires every minted client-credentials token now (the permanent token stays valid).
    pub fn expire_tokens(&self) {
        let now = std::time::Instant::now();
        for exp in self.shared.lock().tokens.values_mut() {
            *exp = now;
        }
    }
}

/// Starts the fake on 127.0.0.1 (ephemeral port) on the current tokio runtime.
pub async fn serve(store: SimStore, cfg: ShopifyFakeConfig) -> std::io::Result<(FakeServer, ShopifyControl)> {
    let data =
        tokio::task::spawn_blocking(move || data::Dataset::load(&store)).await.map_err(std::io::Error::other)??;
    let now = match cfg.now {
        Some(now) => now,
        None => super::clock::end_of_day(&data.shop.iana_timezone, data.shop.end_date),
    };
    let clock = FakeClock::new(now);
    let (listener, base_url) = server::bind().await?;
    let urls = bulk::Urls { base: base_url.clone(), key: uuid::Uuid::new_v4().to_string() };
    let shared = Arc::new(engine::Shared::new(cfg, clock.clone(), data, urls));
    let router = routes::router(shared.clone());
    let server = server::start(listener, base_url.clone(), router, Faults::new(), routes::vendor_error, clock);
    Ok((server, ShopifyControl { shared, base_url }))
}
