//! A fake Postscript API v2 (apis.md 4, 6.4) serving the simulated brand's SMS subscribers.
//!
//! Subscribers are the simulated customers with a phone who ever gave or withdrew SMS consent;
//! which ones are legacy (unprefixed ids), pending (not listed, not fetchable) or carry a
//! Shopify customer id is decided from the customer id, so tests can recompute the truth.

mod data;
mod routes;
pub mod warehouse;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

pub use data::{PsSubscriber, keywords, subscribers};

use super::clock::FakeClock;
use super::faults::Faults;
use super::rate_limit::RateLimiter;
use super::{FakeServer, server};
use crate::simulate::store::SimStore;

/// The private key the demo and tests use.
pub const DEFAULT_API_KEY: &str = "sk_fake_postscript_shop";
/// The partner key accepted in partner mode.
pub const DEFAULT_PARTNER_KEY: &str = "sk_partner_fake";

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct PostscriptFakeConfig {
    pub api_key: String,
    pub partner_key: String,
    /// Subscribers per page (Postscript documents no page-size parameter).
    pub page_size: usize,
    /// Requests a second per token before a 429.
    pub per_second: u32,
    /// The fake's "now"; default: the end of the brand's last day.
    pub now: Option<DateTime<Utc>>,
    /// After this many subscriber list pages have been served, the `n` earliest subscribers of
    /// the current listing are updated (their `updated_at` moves to now): pages shift under a
    /// reader mid-scan, as apis.md 4.2 warns.
    pub touch_after_pages: Option<(usize, usize)>,
    /// The shared webhook token `GET /api/v2/webhooks/token` returns.
    pub webhook_token: String,
}

/// The webhook token the demo and tests use.
pub const DEFAULT_WEBHOOK_TOKEN: &str = "ps_webhook_token_fake";

impl Default for PostscriptFakeConfig {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.into(),
            partner_key: DEFAULT_PARTNER_KEY.into(),
            page_size: 100,
            per_second: 15,
            now: None,
            touch_after_pages: None,
            webhook_token: DEFAULT_WEBHOOK_TOKEN.into(),
        }
    }
}

/// Starts the fake on 127.0.0.1.
pub async fn serve(store: SimStore, cfg: PostscriptFakeConfig) -> std::io::Result<FakeServer> {
    let shop = store.shop()?;
    let now = cfg.now.unwrap_or_else(|| super::clock::end_of_day(&shop.iana_timezone, shop.end_date));
    let clock = FakeClock::new(now);
    let subscribers = data::subscribers(&store)?;
    let sent = sent_messages(&store, &shop)?;
    let (listener, base_url) = server::bind().await?;
    let app = Arc::new(routes::App::new(shop, subscribers, sent, cfg, clock.clone(), RateLimiter::new()));
    Ok(server::start(listener, base_url, routes::router(app), Faults::new(), vendor_error, clock))
}

/// The brand's Postscript sends (its SMS program, [`crate::simulate::sms_program`]) as
/// `GET /api/v2/sent_messages/{id}` renders them, by the warehouse push's message id.
fn sent_messages(
    store: &SimStore,
    shop: &crate::simulate::model::SimShop,
) -> std::io::Result<std::collections::HashMap<String, serde_json::Value>> {
    use crate::simulate::sms_program::{self, SmsPlatform};
    let subscribers = warehouse::postscript_subscribers(store)?;
    let phones: std::collections::HashMap<&str, &str> =
        subscribers.iter().map(|s| (s.subscriber_id.as_str(), s.phone.as_str())).collect();
    let program = sms_program::generate(store, SmsPlatform::Postscript, &subscribers)?;
    Ok(program
        .messages
        .iter()
        .map(|m| {
            let body = json!({
                "id": m.send_id,
                "body": m.body,
                "created_at": m.sent_at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                "credits_used": m.segments,
                "media_url": null,
                "phone": phones.get(m.subscriber_id.as_str()).copied(),
                "shop_id": format!("shop_{:020x}", shop.shop_id),
                "subscriber_id": m.subscriber_id,
            });
            (m.send_id.clone(), body)
        })
        .collect())
}

/// Postscript's error bodies: `{error_code, error_message, success: false}`, no headers.
pub(crate) fn vendor_error(status: StatusCode, _retry_after: Option<u64>) -> Response {
    let (code, message) = match status {
        StatusCode::TOO_MANY_REQUESTS => (3002, "Rate limit exceeded"),
        StatusCode::UNAUTHORIZED => (1001, "Unauthorized"),
        StatusCode::NOT_FOUND => (4004, "Not found"),
        _ => (5000, "Internal server error"),
    };
    (status, axum::Json(json!({"error_code": code, "error_message": message, "success": false}))).into_response()
}
