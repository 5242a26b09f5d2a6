//! HTTP surface: the GraphQL endpoint per API version, the client-credentials token
//! endpoint, bulk result downloads, and Shopify-shaped error bodies for the fault layer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::VERSIONS;
use super::bulk::Urls;
use super::cost::DOCS;
use super::engine::{GqlRequest, Shared};

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/admin/api/{version}/graphql.json", post(graphql))
        .route("/admin/oauth/access_token", post(access_token))
        .route("/bulk-results/{op}/{file}", get(download))
        .fallback(not_found)
        .with_state(shared)
}

/// The version a request is served with: a supported one as asked, anything else falls
/// forward to the oldest supported version (as Shopify does for retired versions).
pub fn resolve_version(asked: &str) -> &'static str {
    VERSIONS.iter().find(|v| **v == asked).copied().unwrap_or(VERSIONS[0])
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], bytes).into_response()
}

fn with_version(mut resp: Response, version: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(version) {
        resp.headers_mut().insert("x-shopify-api-version", v);
    }
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

fn unauthorized() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
    )
}

async fn graphql(
    State(sh): State<Arc<Shared>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let version = resolve_version(&version);
    let token = headers.get("x-shopify-access-token").and_then(|v| v.to_str().ok());
    let Some(scopes) = sh.authorize(token) else {
        return with_version(unauthorized(), version);
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let req = if content_type.starts_with("application/graphql") {
        GqlRequest { query: String::from_utf8_lossy(&body).into_owned(), variables: Map::new(), operation_name: None }
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut m)) => match m.remove("query") {
                Some(Value::String(query)) => GqlRequest {
                    query,
                    variables: match m.remove("variables") {
                        Some(Value::Object(v)) => v,
                        _ => Map::new(),
                    },
                    operation_name: m.get("operationName").and_then(Value::as_str).map(str::to_string),
                },
                _ => return with_version(bad_request(), version),
            },
            _ => return with_version(bad_request(), version),
        }
    };
    let sh2 = sh.clone();
    let handled = tokio::task::spawn_blocking(move || sh2.handle(version, &scopes, req)).await;
    let Ok(r) = handled else {
        return with_version(vendor_error(StatusCode::INTERNAL_SERVER_ERROR, None), version);
    };
    let mut resp = json_response(StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK), &r.body);
    if let Some(secs) = r.retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    with_version(resp, version)
}

fn bad_request() -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({"errors": {"query": "Required parameter missing or invalid"}}))
}

/// `POST /admin/oauth/access_token` with the client-credentials grant, as a form or JSON.
async fn access_token(State(sh): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let params: HashMap<String, String> = if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Map<String, Value>>(&body) {
            Ok(m) => m.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string()))).collect(),
            Err(_) => HashMap::new(),
        }
    } else {
        url::form_urlencoded::parse(&body).into_owned().collect()
    };
    let get = |k: &str| params.get(k).map(String::as_str);
    if get("grant_type") != Some("client_credentials") {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unsupported_grant_type", "error_description": "The authorization grant type is not supported by the authorization server."}),
        );
    }
    if get("client_id") != Some(sh.cfg.client_id.as_str())
        || get("client_secret") != Some(sh.cfg.client_secret.as_str())
    {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_client", "error_description": "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method."}),
        );
    }
    let token = format!("shpat_{}", uuid::Uuid::new_v4().simple());
    sh.lock().tokens.insert(token.clone(), Instant::now() + sh.cfg.token_ttl);
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "scope": sh.cfg.scopes.join(","),
            "expires_in": sh.cfg.token_ttl.as_secs().saturating_sub(1),
        }),
    )
}

fn storage_error(code: &str, message: &str) -> Response {
    let body =
        format!("<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message></Error>");
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/xml; charset=UTF-8")], body).into_response()
}

/// A result file behind its signed URL: 403 for a bad signature or once expired.
async fn download(
    State(sh): State<Arc<Shared>>,
    Path((op, file)): Path<(u64, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(kind) = file.strip_suffix(".jsonl").filter(|k| *k == "result" || *k == "partial") else {
        return not_found().await;
    };
    let expires = q.get("Expires").and_then(|e| e.parse::<u64>().ok()).unwrap_or(0);
    let sig = q.get("Signature").map(String::as_str).unwrap_or_default();
    if sh.urls.signature(&Urls::path(op, kind), expires) != sig {
        return storage_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let found = {
        let mut st = sh.lock();
        st.bulk.get_mut(op).map(|o| {
            let f = if kind == "result" { o.file.clone() } else { o.partial.clone() };
            (o.url_expired(), f)
        })
    };
    match found {
        Some((true, _)) => storage_error("ExpiredToken", "The provided token has expired."),
        Some((false, Some(f))) => match tokio::fs::read(&f.path).await {
            Ok(bytes) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/jsonl")], bytes).into_response(),
            Err(_) => storage_error("NoSuchKey", "The specified key does not exist."),
        },
        _ => storage_error("NoSuchKey", "The specified key does not exist."),
    }
}

async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"errors": "Not Found"}))
}

/// Shopify-shaped bodies for the statuses the fault layer injects: a GraphQL THROTTLED
/// document on 429, Shopify's internal-error document on 500, the edge's HTML pages on
/// 503/504, and `{"errors": "<reason>"}` otherwise.
pub fn vendor_error(status: StatusCode, retry_after: Option<u64>) -> Response {
    match status.as_u16() {
        429 => {
            let body = json!({
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": DOCS}}],
            });
            let mut resp = json_response(status, &body);
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.unwrap_or(1)));
            resp
        }
        500 => {
            let id = uuid::Uuid::new_v4();
            json_response(
                status,
                &json!({"errors": [{
                    "message": format!("Internal error. Looks like something went wrong on our end.\nRequest ID: {id} (include this in support requests)."),
                    "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": id.to_string()},
                }]}),
            )
        }
        503 | 504 => {
            let reason = status.canonical_reason().unwrap_or("Unavailable");
            let page = format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Shopify &ndash; {reason}</title></head>\
                 <body><h1>{} {reason}</h1><p>There was a problem loading this website. Please try again.</p></body></html>\n",
                status.as_u16()
            );
            (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
        }
        _ => json_response(status, &json!({"errors": status.canonical_reason().unwrap_or("Error")})),
    }
}
