//! The fake Klaviyo: the JSON:API read endpoints a nightly puller uses, served over real HTTP
//! from a [`SimStore`](crate::simulate::store::SimStore).
//!
//! Behaviour follows `apis.md` 1 and 6.1: `Klaviyo-API-Key` auth and a known `revision`
//! header on every call, JSON:API envelopes with absolute `links` and de-duplicated
//! `included`, expiring keyset cursors, the filter grammar with its quoted-datetime trap,
//! per-endpoint burst/steady rate limits, and the fault injection every fake shares.
//!
//! Served now: `/api/accounts`, `/api/metrics`, `/api/profiles`, `/api/events`, `/api/flows`,
//! `/api/flows/{id}`, `/api/flows/{id}/flow-actions`, `/api/flow-actions/{id}`,
//! `/api/flow-actions/{id}/flow-messages`, `/api/flow-messages/{id}`, `/api/campaigns`,
//! `/api/campaigns/{id}`, `/api/campaigns/{id}/campaign-messages`, `/api/campaign-messages/{id}`,
//! `/api/lists`, `/api/segments`, and `POST` `/api/flow-series-reports`,
//! `/api/flow-values-reports`, `/api/campaign-values-reports` (with or without a trailing
//! slash). Modules:
//!
//! - `routes`: auth/revision/rate-limit gate and one handler per endpoint;
//! - `resources`: handlers of the flow-graph, campaign, list and segment endpoints;
//! - `graph`: the action graph synthesized for each flow, and its renderings per revision;
//! - `groups`: the lists and segments synthesized from the profiles;
//! - `reports`: the Reporting API (validation, aggregation by send date, daily quota);
//! - `filter`: the `filter` parameter grammar;
//! - `paging`: keyset cursors over day files;
//! - `render`: records into Klaviyo's wire shapes, and the error documents.

mod filter;
mod graph;
mod groups;
mod paging;
mod render;
mod reports;
mod resources;
mod routes;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::clock::FakeClock;
use super::faults::Faults;
use super::rate_limit::{Limit, RateLimiter};
use super::server::{self, FakeServer};
use crate::simulate::store::SimStore;

/// Revisions the fake accepts in the `revision` header, newest first (apis.md, version table).
/// 2025-07-15 and 2025-04-15 serve the old flow-action and flow-message shapes.
pub const REVISIONS: &[&str] =
    &["2026-10-15", "2026-07-15", "2026-04-15", "2026-01-15", "2025-10-15", "2025-07-15", "2025-04-15"];

/// Burst/steady limits per endpoint family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KlaviyoLimits {
    /// `GET /api/accounts` (XS tier).
    pub accounts: Limit,
    /// `GET /api/metrics` (M tier).
    pub metrics: Limit,
    /// `GET /api/profiles` (L tier).
    pub profiles: Limit,
    /// `GET /api/events` (XL tier).
    pub events: Limit,
    /// `GET /api/flows`, `/api/flows/{id}`, flow actions and flow messages (S tier, one bucket).
    pub flows: Limit,
    /// `GET /api/campaigns`, campaign messages (M tier, one bucket).
    pub campaigns: Limit,
    /// `GET /api/lists` and `GET /api/segments` (L tier, one bucket each).
    pub lists: Limit,
    /// Each `POST` report endpoint (1/s, 2/m, one bucket per endpoint); the daily quota is
    /// [`KlaviyoFakeConfig::report_daily_quota`].
    pub reports: Limit,
}

impl KlaviyoLimits {
    /// The published limits (apis.md 1.4, revision 2026-10-15).
    pub const REAL: KlaviyoLimits = KlaviyoLimits {
        accounts: Limit::new(1, 15),
        metrics: Limit::new(10, 150),
        profiles: Limit::new(75, 750),
        events: Limit::new(350, 3500),
        flows: Limit::new(3, 60),
        campaigns: Limit::new(10, 150),
        lists: Limit::new(75, 750),
        reports: Limit::new(1, 2),
    };

    /// The same limit on every endpoint: tests use small ones to hit 429s quickly.
    pub const fn uniform(limit: Limit) -> Self {
        KlaviyoLimits {
            accounts: limit,
            metrics: limit,
            profiles: limit,
            events: limit,
            flows: limit,
            campaigns: limit,
            lists: limit,
            reports: limit,
        }
    }
}

impl Default for KlaviyoLimits {
    fn default() -> Self {
        Self::REAL
    }
}

/// How the fake behaves; [`Default`] is the real API's behaviour.
#[derive(Debug, Clone)]
pub struct KlaviyoFakeConfig {
    /// The private key clients must send as `Authorization: Klaviyo-API-Key <key>`.
    /// Default `pk_demo_fake_key`.
    pub api_key: String,
    /// Whether burst/steady rate limits apply. Default `true`.
    pub rate_limits: bool,
    /// Overrides the published limits, e.g. `Some(KlaviyoLimits::uniform(Limit::new(2, 5)))`.
    /// Default `None` (published limits).
    pub limits: Option<KlaviyoLimits>,
    /// How long a `page[cursor]` stays valid after it was issued; older cursors get a 400.
    /// Default 15 minutes.
    pub cursor_ttl: Duration,
    /// The fake's present: events dated later are not served. Default: the end of the shop's
    /// `end_date` in the shop timezone.
    pub now: Option<DateTime<Utc>>,
    /// Serve events dated after `now` too (scheduled sends and timezone bugs make real
    /// accounts do this). Default `false`; switchable later through [`FakeServer::clock`].
    pub future_events: bool,
    /// Report requests allowed per account-local day (fake clock), shared by every report
    /// endpoint; applies only with `rate_limits`. Default 225.
    pub report_daily_quota: u32,
}

/// The default key, so demos need no configuration.
pub const DEFAULT_API_KEY: &str = "pk_demo_fake_key";

impl Default for KlaviyoFakeConfig {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.to_string(),
            rate_limits: true,
            limits: None,
            cursor_ttl: Duration::from_secs(15 * 60),
            now: None,
            future_events: false,
            report_daily_quota: 225,
        }
    }
}

/// Starts the fake on 127.0.0.1 (ephemeral port) on the current tokio runtime.
pub async fn serve(store: SimStore, cfg: KlaviyoFakeConfig) -> std::io::Result<FakeServer> {
    let shop = store.shop()?;
    let now = match cfg.now {
        Some(now) => now,
        None => super::clock::end_of_day(&shop.iana_timezone, shop.end_date),
    };
    let clock = FakeClock::new(now);
    clock.set_future_records(cfg.future_events);
    let (listener, base_url) = server::bind().await?;
    let app = Arc::new(routes::App::new(store, shop, cfg, base_url.clone(), clock.clone(), RateLimiter::new()));
    let router = routes::router(app);
    Ok(server::start(listener, base_url, router, Faults::new(), render::vendor_error, clock))
}
