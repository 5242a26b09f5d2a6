//! Klaviyo: JSON:API over `https://a.klaviyo.com/api/...` with a pinned `revision` header.
//! See apis.md section 1.

mod streams;

pub use streams::STREAMS;

use reqwest::header::AUTHORIZATION;

use crate::config::{KlaviyoConfig, Secrets};
use crate::error::{Error, Result};
use crate::http::{Auth, HttpEngine};

pub const SOURCE: &str = "klaviyo";

/// Builds the engine for this source: private-key auth plus the revision and accept headers.
pub fn engine(cfg: &KlaviyoConfig, secrets: &Secrets) -> Result<HttpEngine> {
    let key = secrets.get("sources.klaviyo.api_key_env", &cfg.api_key_env)?;
    let auth = Auth::Header { name: AUTHORIZATION, value: format!("Klaviyo-API-Key {key}") };
    HttpEngine::new(
        SOURCE,
        auth,
        &[("revision", cfg.revision.clone()), ("accept", "application/vnd.api+json".to_string())],
    )
    .map(|e| {
        e.with_rate_overrides(
            cfg.rate_limits.iter().map(|(k, v)| (k.clone(), (v.burst_per_second, v.steady_per_minute))).collect(),
        )
    })
    .map_err(Error::config)
}

/// Klaviyo filter timestamps: ISO-8601, unquoted (a quoted datetime is a 400).
pub(crate) fn filter_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
