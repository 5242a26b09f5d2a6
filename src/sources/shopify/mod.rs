//! Shopify Admin API (GraphQL): orders with refunds, customers with consent, products, inventory
//! item costs and the shop. See apis.md section 2.
//!
//! - `queries`: the GraphQL documents, one field list per resource for both read paths;
//! - `cost`: the calculated-query-cost bucket ([`cost::CostGate`]) the engine admits through;
//! - `streams`: the stream declarations;
//! - `reader`: orders, customers and products windows, paged (nightly) or bulk (backfills);
//! - `bulk`: bulk operations: start, poll, cancel-and-split, download, fold `__parentId` lines.

pub mod bulk;
pub mod cost;
pub mod queries;
pub mod reader;
mod streams;

use std::collections::BTreeMap;
use std::sync::Arc;

use backon::Retryable;
use reqwest::header::HeaderName;
use serde_json::{Value, json};

use crate::config::{RetryConfig, Secrets, ShopifyConfig};
use crate::error::{Error, Result};
use crate::extract::WindowReader;
use crate::http::{Auth, HttpEngine, RateBucket};
pub use streams::STREAMS;

pub const SOURCE: &str = "shopify";

/// Request pacing is the cost gate's job; this bucket only keeps bursts of cheap requests sane.
pub(crate) const GRAPHQL: RateBucket = RateBucket { name: "graphql", burst_per_second: 40, steady_per_minute: 2400 };

/// Scope without which Shopify serves only the last 60 days of orders.
pub const READ_ALL_ORDERS: &str = "read_all_orders";

/// A connected store: the engine, the store's facts and the bulk runner.
pub struct Shopify {
    pub engine: HttpEngine,
    pub gate: Arc<cost::CostGate>,
    /// `{base_url}/admin/api/{version}`; streams append `/graphql.json`.
    pub api_root: String,
    pub timezone: String,
    pub currency: String,
    pub scopes: Vec<String>,
    bulk: Arc<bulk::BulkRunner>,
}

impl Shopify {
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql.json", self.api_root)
    }

    /// The readers of the streams that choose between paged queries and bulk operations.
    pub fn window_readers(self: &Arc<Self>, cfg: &ShopifyConfig) -> BTreeMap<&'static str, Arc<dyn WindowReader>> {
        reader::Kind::ALL
            .iter()
            .map(|kind| {
                let r: Arc<dyn WindowReader> = Arc::new(reader::ShopifyReader::new(self.clone(), *kind, &cfg.bulk));
                (kind.stream(), r)
            })
            .collect()
    }
}

/// Mints or reads the token, builds the engine, and reads the shop and the token's scopes.
pub async fn connect(cfg: &ShopifyConfig, secrets: &Secrets, retry: &RetryConfig) -> Result<Shopify> {
    let base = cfg.base_url.trim_end_matches('/');
    let token = access_token(cfg, secrets, base, retry).await?;
    let gate = Arc::new(cost::CostGate::new());
    let engine = HttpEngine::new(
        SOURCE,
        Auth::Header { name: HeaderName::from_static("x-shopify-access-token"), value: token },
        &[("accept", "application/json".to_string())],
    )
    .map_err(Error::config)?
    .with_content_type("application/json")
    .with_gate(gate.clone())
    .with_retry(*retry);
    let api_root = format!("{base}/admin/api/{}", cfg.api_version);
    let url = format!("{api_root}/graphql.json");
    let doc = engine
        .fetch_json(&url, Some(&json!({ "query": queries::SHOP })), GRAPHQL)
        .await
        .and_then(|p| p.json())
        .map_err(|e| crate::extract::http_error(SOURCE, "shop", e))?;
    let text = |ptr: &str| doc.pointer(ptr).and_then(Value::as_str).unwrap_or_default().to_string();
    let scopes: Vec<String> = doc
        .pointer("/data/currentAppInstallation/accessScopes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.get("handle").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default();
    if !scopes.iter().any(|s| s == READ_ALL_ORDERS) {
        tracing::warn!(
            source = SOURCE,
            "The token lacks the read_all_orders scope: Shopify shows only the last 60 days of orders, so \
             older orders, their refunds and the customers' histories will be missing. Grant read_all_orders \
             to the app and re-run with --full-refresh."
        );
    }
    let bulk = Arc::new(bulk::BulkRunner::new(engine.clone(), url, &cfg.api_version, cfg.bulk.clone())?);
    Ok(Shopify {
        engine,
        gate,
        api_root,
        timezone: text("/data/shop/ianaTimezone"),
        currency: text("/data/shop/currencyCode"),
        scopes,
        bulk,
    })
}

/// The configured permanent token, or a fresh one from the client-credentials grant (such
/// tokens expire after about a day, so every run mints its own).
async fn access_token(cfg: &ShopifyConfig, secrets: &Secrets, base: &str, retry: &RetryConfig) -> Result<String> {
    if let Some(var) = &cfg.access_token_env {
        return secrets.get("sources.shopify.access_token_env", var);
    }
    let (Some(id_var), Some(secret_var)) = (&cfg.client_id_env, &cfg.client_secret_env) else {
        return Err(Error::config("sources.shopify: set access_token_env, or client_id_env and client_secret_env"));
    };
    let client_id = secrets.get("sources.shopify.client_id_env", id_var)?;
    let client_secret = secrets.get("sources.shopify.client_secret_env", secret_var)?;
    let client = reqwest::Client::builder()
        .timeout(crate::http::client::REQUEST_TIMEOUT)
        .build()
        .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))?;
    let url = format!("{base}/admin/oauth/access_token");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id.as_str()),
        ("client_secret", client_secret.as_str()),
    ];
    let send = || async {
        let resp = client.post(&url).form(&form).send().await?;
        if resp.status().is_server_error() {
            return Err(resp.error_for_status().expect_err("a 5xx is an error"));
        }
        Ok(resp)
    };
    let resp = send
        .retry(crate::http::retry::backoff(retry))
        .when(|e: &reqwest::Error| e.is_connect() || e.is_timeout() || e.is_status())
        .await
        .map_err(|e| Error::config_with(format!("source {SOURCE}: cannot reach the token endpoint {url}"), e))?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    match body.get("access_token").and_then(Value::as_str) {
        Some(token) if status.is_success() => Ok(token.to_string()),
        _ => Err(Error::config(format!(
            "source {SOURCE}: the client-credentials grant was refused (HTTP {status}); check the app's client id \
             and secret and that the app is installed on the store"
        ))),
    }
}
