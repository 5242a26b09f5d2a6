//! `GET /v1/me`: the identity call `check --connect` makes. The REST API has nothing to pull
//! (apis.md 3.1), so this is its only use here.

use reqwest::header::AUTHORIZATION;

use super::SOURCE;
use crate::config::{AttentiveConfig, Secrets};
use crate::error::{Error, Result};
use crate::http::{Auth, HttpEngine, RateBucket};

/// Attentive's default limit, 150 requests a second (apis.md 3.2).
const API: RateBucket = RateBucket { name: "api", burst_per_second: 150, steady_per_minute: 9000 };

/// Calls `GET {base_url}/v1/me` with the bearer key through the shared engine (retries, pacing,
/// a sensitive auth header); the company name when the answer has one.
pub async fn me(cfg: &AttentiveConfig, secrets: &Secrets) -> Result<Option<String>> {
    let key = secrets.get("sources.attentive.api_key_env", &cfg.api_key_env)?;
    let auth = Auth::Header { name: AUTHORIZATION, value: format!("Bearer {key}") };
    let engine = HttpEngine::new(SOURCE, auth, &[]).map_err(Error::config)?;
    let url = format!("{}/v1/me", cfg.base_url.trim_end_matches('/'));
    let body = engine.get_json(&url, API).await.map_err(|e| {
        if e.is_auth() {
            Error::config(format!("source {SOURCE}: check the API key in {}: {e}", cfg.api_key_env))
        } else {
            Error::Source { source_name: SOURCE.into(), stream: "me".into(), message: e.to_string(), cause: None }
        }
    })?;
    Ok(["companyName", "company_name", "name"].iter().find_map(|k| body.get(*k)?.as_str().map(str::to_string)))
}
