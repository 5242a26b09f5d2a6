//! Postscript: the API v2 under `/api/v2/` with a shop's private key (apis.md 4). Only
//! subscribers and keywords can be listed; sends, clicks and attributed orders come from the
//! warehouse push ([`warehouse`]) and the webhooks.

mod streams;
pub mod warehouse;

pub use streams::STREAMS;

use reqwest::header::AUTHORIZATION;

use crate::config::{PostscriptConfig, Secrets};
use crate::error::{Error, Result};
use crate::http::{Auth, HttpEngine};

pub const SOURCE: &str = "postscript";

/// The header a partner app sends the shop's key in.
pub const SHOP_TOKEN_HEADER: &str = "x-postscript-shop-token";

/// Builds the engine: the shop's key as the bearer token, or for partner apps the partner key
/// as the bearer token and the shop's key in [`SHOP_TOKEN_HEADER`].
pub fn engine(cfg: &PostscriptConfig, secrets: &Secrets) -> Result<HttpEngine> {
    let Some(key_env) = &cfg.api_key_env else {
        return Err(Error::config("sources.postscript.api_key_env: the API streams need the shop's key"));
    };
    let shop_key = secrets.get("sources.postscript.api_key_env", key_env)?;
    let (bearer, extra) = match &cfg.partner_key_env {
        Some(var) => (secrets.get("sources.postscript.partner_key_env", var)?, vec![(SHOP_TOKEN_HEADER, shop_key)]),
        None => (shop_key, Vec::new()),
    };
    let auth = Auth::Header { name: AUTHORIZATION, value: format!("Bearer {bearer}") };
    HttpEngine::new(SOURCE, auth, &extra).map_err(Error::config)
}
