//! The fake Attentive REST API: `GET /v1/me` and `/v2/me` with bearer auth, errors as plain
//! JSON message bodies (apis.md 3.2), behind the fault and logging layers every fake shares.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::fake::clock::FakeClock;
use crate::fake::faults::Faults;
use crate::fake::server::{self, FakeServer};

pub const DEFAULT_API_KEY: &str = "attentive_demo_fake_key";

/// Attentive's error shape: the status and a `message`.
fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

fn vendor_error(status: StatusCode, _retry_after: Option<u64>) -> Response {
    // Attentive documents no Retry-After (apis.md 3.2).
    error(status, status.canonical_reason().unwrap_or("error"))
}

/// Starts the fake on 127.0.0.1 (ephemeral port); `api_key` is the only accepted bearer token.
pub async fn serve(api_key: &str, company: &str) -> std::io::Result<FakeServer> {
    let (listener, base_url) = server::bind().await?;
    let (key, company) = (api_key.to_string(), company.to_string());
    let me = move |headers: HeaderMap| {
        let (key, company) = (key.clone(), company.clone());
        async move {
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            match bearer {
                None => error(StatusCode::UNAUTHORIZED, "Missing bearer token"),
                Some(k) if k != key => error(StatusCode::UNAUTHORIZED, "Invalid access token"),
                Some(_) => axum::Json(json!({
                    "applicationName": "lifecycle-etl",
                    "companyName": company,
                    "attentiveDomainName": company.to_lowercase().replace(' ', ""),
                }))
                .into_response(),
            }
        }
    };
    let router = Router::new().route("/v1/me", get(me.clone())).route("/v2/me", get(me));
    Ok(server::start(listener, base_url, router, Faults::new(), vendor_error, FakeClock::new(chrono::Utc::now())))
}
