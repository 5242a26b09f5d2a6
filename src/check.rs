//! `check`: everything that can be validated without calling an API (and, with `--connect`,
//! each source's identity endpoint).

use crate::config::{Job, Secrets};
use crate::error::{Error, Result};

/// Validates a job and prints what was checked; the first problem is the error.
pub async fn run(job: &Job, secrets: &Secrets, connect: bool) -> Result<Vec<String>> {
    let mut lines = vec![format!("job file {}: valid (job {})", job.path.display(), job.name())];
    let contracts = crate::contract::all()?;
    lines.push(format!("contracts: {} valid", contracts.len()));
    for m in crate::transform::all_models()? {
        crate::contract::model(&m.layer, &m.name)?;
    }
    let seeds = crate::seeds::load(job)?;
    lines.push(format!(
        "seeds: {} valid ({} from the job, the rest shipped defaults)",
        seeds.len(),
        seeds.iter().filter(|s| !s.origin.starts_with("default")).count()
    ));
    if let Some(record) = &job.operating_record {
        lines.push(format!(
            "operating record {}: valid ({} interventions, {} hypotheses)",
            record.origin,
            record.interventions.len(),
            record.hypotheses.len()
        ));
    }
    let mut missing = Vec::new();
    for (key, var) in job.credential_vars() {
        match secrets.get(&key, &var) {
            Ok(_) => lines.push(format!("credential {var} (named by `{key}`): set")),
            Err(_) => missing.push(format!("{var} (named by `{key}`)")),
        }
    }
    if !missing.is_empty() {
        return Err(Error::config(format!("credential variable(s) not set: {}", missing.join(", "))));
    }
    if connect && let Some(cfg) = &job.file.sources.klaviyo {
        let engine = crate::sources::klaviyo::engine(cfg, secrets)?;
        let url = format!("{}/api/accounts", cfg.base_url.trim_end_matches('/'));
        let bucket = crate::http::RateBucket { name: "accounts", burst_per_second: 1, steady_per_minute: 15 };
        engine.get_json(&url, bucket).await.map_err(|e| {
            if e.is_auth() {
                Error::config(format!("source klaviyo: check the API key: {e}"))
            } else {
                Error::Source {
                    source_name: "klaviyo".into(),
                    stream: "accounts".into(),
                    message: e.to_string(),
                    cause: None,
                }
            }
        })?;
        lines.push("source klaviyo: connected (GET /api/accounts)".into());
    }
    if connect && let Some(cfg) = &job.file.sources.shopify {
        let store = crate::sources::shopify::connect(cfg, secrets, &job.file.run.retry).await?;
        let all_orders = store.scopes.iter().any(|s| s == crate::sources::shopify::READ_ALL_ORDERS);
        lines.push(format!(
            "source shopify: connected (API {}, shop timezone {}, currency {}, scopes {}){}",
            cfg.api_version,
            store.timezone,
            store.currency,
            store.scopes.join(" "),
            if all_orders { "" } else { "; WARNING: no read_all_orders, only the last 60 days of orders are visible" }
        ));
    }
    if connect && let Some(cfg) = &job.file.sources.attentive {
        let company = crate::sources::attentive::rest::me(cfg, secrets).await?;
        let company = company.map(|c| format!(", company {c}")).unwrap_or_default();
        lines.push(format!("source attentive: connected (GET /v1/me{company})"));
    }
    if connect
        && let Some(cfg) = &job.file.sources.postscript
        && cfg.api_key_env.is_some()
    {
        lines.extend(postscript(job, cfg, secrets).await?);
    }
    Ok(lines)
}

/// Postscript: the shop behind the key (`GET /api/v2/me`), and, when the job receives
/// Postscript's webhooks, that the configured token is the one Postscript sends
/// (`GET /api/v2/webhooks/token`): a wrong token would refuse every delivery with 401. Neither
/// token is ever printed.
async fn postscript(job: &Job, cfg: &crate::config::PostscriptConfig, secrets: &Secrets) -> Result<Vec<String>> {
    let engine = crate::sources::postscript::engine(cfg, secrets)?;
    let base = cfg.base_url.trim_end_matches('/');
    let bucket = crate::http::RateBucket { name: "api", burst_per_second: 15, steady_per_minute: 900 };
    let failed = |what: &'static str| {
        move |e: crate::http::HttpError| {
            if e.is_auth() {
                Error::config(format!("source postscript: check the API key: {e}"))
            } else {
                Error::Source {
                    source_name: "postscript".into(),
                    stream: what.into(),
                    message: e.to_string(),
                    cause: None,
                }
            }
        }
    };
    let me = engine.get_json(&format!("{base}/api/v2/me"), bucket).await.map_err(failed("me"))?;
    let shop = me["resource_name"].as_str().map(|n| format!(", shop {n}")).unwrap_or_default();
    let mut lines = vec![format!("source postscript: connected (GET /api/v2/me{shop})")];
    if let Some(w) = job.file.webhooks.as_ref().and_then(|w| w.postscript.as_ref()) {
        let ours = secrets.get("webhooks.postscript.token_env", &w.token_env)?;
        let theirs =
            engine.get_json(&format!("{base}/api/v2/webhooks/token"), bucket).await.map_err(failed("webhooks"))?;
        if theirs["token"].as_str() != Some(ours.as_str()) {
            return Err(Error::config(format!(
                "webhooks.postscript.token_env: {} differs from the token Postscript signs deliveries with \
                 (GET /api/v2/webhooks/token); the receiver would refuse every delivery with 401",
                w.token_env
            )));
        }
        lines.push("webhooks postscript: the token matches Postscript's (GET /api/v2/webhooks/token)".into());
    }
    Ok(lines)
}
