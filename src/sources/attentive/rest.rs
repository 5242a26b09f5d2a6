//! `GET /v1/me`: the identity call `check --connect` makes. The REST API has nothing to pull
//! (apis.md 3.1), so this is its only use here.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};

use super::SOURCE;
use crate::config::{AttentiveConfig, Secrets};
use crate::error::{Error, Result};

/// Calls `GET {base_url}/v1/me` with the bearer key; the company name when the answer has one.
pub async fn me(cfg: &AttentiveConfig, secrets: &Secrets) -> Result<Option<String>> {
    let key = secrets.get("sources.attentive.api_key_env", &cfg.api_key_env)?;
    let mut auth = HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| Error::config(format!("the API key in {} is not a valid header value", cfg.api_key_env)))?;
    auth.set_sensitive(true);
    let url = format!("{}/v1/me", cfg.base_url.trim_end_matches('/'));
    let fail =
        |message: String| Error::Source { source_name: SOURCE.into(), stream: "me".into(), message, cause: None };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
    let resp =
        client.get(&url).header(AUTHORIZATION, auth).send().await.map_err(|e| fail(format!("GET /v1/me: {e}")))?;
    let status = resp.status();
    // Attentive answers errors with a plain JSON message body (apis.md 3.2).
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    let message =
        body.get("message").and_then(|m| m.as_str()).unwrap_or_default().chars().take(200).collect::<String>();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(Error::config(format!(
            "source {SOURCE}: check the API key in {} (GET /v1/me answered HTTP {}: {message})",
            cfg.api_key_env,
            status.as_u16()
        )));
    }
    if !status.is_success() {
        return Err(fail(format!("GET /v1/me answered HTTP {}: {message}", status.as_u16())));
    }
    Ok(["companyName", "company_name", "name"].iter().find_map(|k| body.get(*k)?.as_str().map(str::to_string)))
}
