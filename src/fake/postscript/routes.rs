//! The gate (auth, per-token rate limit) and one handler per endpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::data::{PsSubscriber, keywords};
use super::{PostscriptFakeConfig, vendor_error};
use crate::fake::clock::FakeClock;
use crate::fake::rate_limit::{Limit, RateLimiter};
use crate::simulate::model::SimShop;
// The events a webhook can subscribe to: the ones the receiver knows (both spellings of email
// collection, apis.md 4.4 A).
use crate::webhooks::event::POSTSCRIPT_TYPES as WEBHOOK_EVENTS;

/// What the handlers share.
pub struct App {
    shop: SimShop,
    subscribers: Mutex<Vec<PsSubscriber>>,
    /// The brand's Postscript sends by id (`GET /api/v2/sent_messages/{id}`).
    sent: HashMap<String, Value>,
    /// Registered webhooks (`/api/v2/webhooks`), in creation order.
    webhooks: Mutex<Vec<Value>>,
    cfg: PostscriptFakeConfig,
    clock: FakeClock,
    limiter: RateLimiter,
    list_pages: Mutex<usize>,
}

impl App {
    pub fn new(
        shop: SimShop,
        subscribers: Vec<PsSubscriber>,
        sent: HashMap<String, Value>,
        cfg: PostscriptFakeConfig,
        clock: FakeClock,
        limiter: RateLimiter,
    ) -> Self {
        Self {
            shop,
            subscribers: Mutex::new(subscribers),
            sent,
            webhooks: Mutex::new(Vec::new()),
            cfg,
            clock,
            limiter,
            list_pages: Mutex::new(0),
        }
    }
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/v2/me", get(me))
        .route("/api/v2/subscribers", get(list_subscribers))
        .route("/api/v2/subscribers/{id}", get(one_subscriber))
        .route("/api/v2/keywords", get(list_keywords))
        .route("/api/v2/sent_messages/{id}", get(one_sent_message))
        .route("/api/v2/webhooks", get(list_webhooks).post(create_webhook))
        .route("/api/v2/webhooks/token", get(webhook_token))
        .route("/api/v2/webhooks/example", get(webhook_example))
        .route("/api/v2/webhooks/{id}", get(one_webhook))
        .layer(middleware::from_fn_with_state(app.clone(), gate))
        .with_state(app)
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, axum::Json(json!({"error": "You do not have permission to do that."}))).into_response()
}

/// Bearer shop key, or partner key plus the shop key in `X-Postscript-Shop-Token`; then 15
/// requests a second per token, 429 with the documented body and no headers past it.
async fn gate(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let headers: &HeaderMap = req.headers();
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
    else {
        return vendor_error(StatusCode::UNAUTHORIZED, None);
    };
    let shop_token = headers.get("x-postscript-shop-token").and_then(|v| v.to_str().ok());
    let allowed = match shop_token {
        Some(shop) => token == app.cfg.partner_key && shop == app.cfg.api_key,
        None => token == app.cfg.api_key,
    };
    if !allowed {
        return if token.starts_with("sk_") { forbidden() } else { vendor_error(StatusCode::UNAUTHORIZED, None) };
    }
    let limit = Limit::new(app.cfg.per_second, app.cfg.per_second.saturating_mul(60));
    if app.limiter.check(&format!("{token}/{}", shop_token.unwrap_or_default()), limit).is_err() {
        return vendor_error(StatusCode::TOO_MANY_REQUESTS, None);
    }
    next.run(req).await
}

async fn me(State(app): State<Arc<App>>) -> Response {
    axum::Json(json!({
        "resource_id": format!("shop_{:020x}", app.shop.shop_id),
        "resource_name": app.shop.name,
        "resource_type": "shop"
    }))
    .into_response()
}

/// A send by id, as `GET /api/v2/sent_messages/{id}` returns it (there is no listing).
async fn one_sent_message(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match app.sent.get(&id) {
        Some(m) => axum::Json(m.clone()).into_response(),
        None => vendor_error(StatusCode::NOT_FOUND, None),
    }
}

async fn list_webhooks(State(app): State<Arc<App>>) -> Response {
    axum::Json(json!({ "webhooks": *app.webhooks.lock().expect("webhooks lock") })).into_response()
}

async fn one_webhook(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let hooks = app.webhooks.lock().expect("webhooks lock");
    match hooks.iter().find(|h| h["id"] == id.as_str()) {
        Some(h) => axum::Json(h.clone()).into_response(),
        None => vendor_error(StatusCode::NOT_FOUND, None),
    }
}

/// `POST /api/v2/webhooks {callback_url, event, headers}`: HTTPS callbacks and known events only.
async fn create_webhook(State(app): State<Arc<App>>, axum::Json(body): axum::Json<Value>) -> Response {
    let Some(url) = body["callback_url"].as_str().filter(|u| u.starts_with("https://")) else {
        return invalid("callback_url", "callback_url must be an https URL");
    };
    let Some(event) = body["event"].as_str().filter(|e| WEBHOOK_EVENTS.contains(e)) else {
        return invalid("event", "value is not a valid enumeration member");
    };
    let mut hooks = app.webhooks.lock().expect("webhooks lock");
    let hook = json!({
        "id": format!("wh_{:020x}", 0xB0B + hooks.len()),
        "callback_url": url,
        "event": event,
        "headers": body.get("headers").cloned().unwrap_or(json!({})),
        "created_at": app.clock.now().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    });
    hooks.push(hook.clone());
    (StatusCode::CREATED, axum::Json(hook)).into_response()
}

/// The shared token every delivery carries in `Postscript-Signature`.
async fn webhook_token(State(app): State<Arc<App>>) -> Response {
    axum::Json(json!({ "token": app.cfg.webhook_token })).into_response()
}

/// A sample delivery of `event` in the documented envelope.
async fn webhook_example(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(event) = q.get("event").filter(|e| WEBHOOK_EVENTS.contains(&e.as_str())) else {
        return invalid("event", "value is not a valid enumeration member");
    };
    axum::Json(json!({
        "webhook_id": "wh_example",
        "resource_type": "shop",
        "resource_id": format!("shop_{:020x}", app.shop.shop_id),
        "event_time": "2021-11-04T21:52:41.025455",
        "event": event,
        "event_data": {"subscriber_id": "s_example", "shop_id": format!("shop_{:020x}", app.shop.shop_id)}
    }))
    .into_response()
}

async fn list_keywords() -> Response {
    axum::Json(json!({ "keywords": keywords() })).into_response()
}

async fn one_subscriber(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let horizon = app.clock.horizon();
    let subs = app.subscribers.lock().expect("subscribers lock");
    match subs.iter().find(|s| s.id == id && !s.pending && horizon.is_none_or(|h| s.updated_at <= h)) {
        Some(s) => axum::Json(s.render()).into_response(),
        None => vendor_error(StatusCode::NOT_FOUND, None),
    }
}

/// A 400 in the validation shape (`errors[{msg, type, ctx, log}]`).
fn invalid(param: &str, msg: &str) -> Response {
    let body = json!({"errors": [{"msg": msg, "type": "value_error", "ctx": {"param": param}, "log": format!("query.{param}")}]});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d"]
        .iter()
        .find_map(|f| {
            NaiveDateTime::parse_from_str(v, f)
                .ok()
                .or_else(|| chrono::NaiveDate::parse_from_str(v, f).ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
        })
        .map(|t| t.and_utc())
        .or_else(|| DateTime::parse_from_rfc3339(v).ok().map(|t| t.with_timezone(&Utc)))
}

type Predicate = Box<dyn Fn(&PsSubscriber) -> bool + Send>;

/// One suffixed filter (`updated_at__gte=...`) as a predicate, or the 400 it earns.
fn filter(name: &str, value: &str) -> Result<Predicate, Box<Response>> {
    let bad = |msg: &str| Box::new(invalid(name, msg));
    let (field, op) = name.rsplit_once("__").ok_or_else(|| bad("unknown query parameter"))?;
    match field {
        "created_at" | "updated_at" => {
            let t = parse_time(value).ok_or_else(|| bad("invalid datetime format"))?;
            let cmp: fn(DateTime<Utc>, DateTime<Utc>) -> bool = match op {
                "eq" => |a, b| a == b,
                "gt" => |a, b| a > b,
                "gte" => |a, b| a >= b,
                "lt" => |a, b| a < b,
                "lte" => |a, b| a <= b,
                _ => return Err(bad("unknown operator")),
            };
            let created = field == "created_at";
            Ok(Box::new(move |s| cmp(if created { s.created_at } else { s.updated_at }, t)))
        }
        "email" | "phone_number" | "shopify_customer_id" | "ps_id" => {
            let field = field.to_string();
            let get = move |s: &PsSubscriber| -> Option<String> {
                match field.as_str() {
                    "email" => s.email.clone(),
                    "phone_number" => Some(s.phone.clone()),
                    "shopify_customer_id" => s.shopify_customer_id.map(|c| c.to_string()),
                    _ => Some((5_000_000 + s.customer_id).to_string()),
                }
            };
            let wanted: Vec<String> = value.split(',').map(str::to_string).collect();
            let value = value.to_string();
            match op {
                "eq" => Ok(Box::new(move |s| get(s).as_deref() == Some(value.as_str()))),
                "in" if !name.starts_with("ps_id") => {
                    Ok(Box::new(move |s| get(s).is_some_and(|v| wanted.contains(&v))))
                }
                "contains" if !name.starts_with("ps_id") => {
                    Ok(Box::new(move |s| get(s).is_some_and(|v| v.contains(&value))))
                }
                _ => Err(bad("unknown operator")),
            }
        }
        _ => Err(bad("unknown query parameter")),
    }
}

fn sort_key(s: &PsSubscriber, field: &str) -> String {
    match field {
        "created_at" => s.created_at.to_rfc3339(),
        "phone_number" => s.phone.clone(),
        "shopify_customer_id" => format!("{:020}", s.shopify_customer_id.unwrap_or(0)),
        _ => s.updated_at.to_rfc3339(),
    }
}

async fn list_subscribers(State(app): State<Arc<App>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let page: usize = match q.get("page").map(|p| p.parse::<usize>()) {
        None => 1,
        Some(Ok(p)) if p >= 1 => p,
        _ => return invalid("page", "value is not a valid integer >= 1"),
    };
    let (sort_field, descending) = match q.get("sort").map(String::as_str) {
        None => ("created_at", false),
        Some(s) => match s.rsplit_once("__") {
            Some((
                f @ ("created_at" | "updated_at" | "phone_number" | "shopify_customer_id"),
                dir @ ("asc" | "desc"),
            )) => (f, dir == "desc"),
            _ => return invalid("sort", "unknown sort"),
        },
    };
    let mut predicates = Vec::new();
    for (k, v) in &q {
        if k != "page" && k != "sort" {
            match filter(k, v) {
                Ok(p) => predicates.push(p),
                Err(resp) => return *resp,
            }
        }
    }
    let horizon = app.clock.horizon();
    let mut subs = app.subscribers.lock().expect("subscribers lock");
    let mut listed: Vec<&PsSubscriber> = subs
        .iter()
        .filter(|s| !s.pending && horizon.is_none_or(|h| s.updated_at <= h))
        .filter(|s| predicates.iter().all(|p| p(s)))
        .collect();
    listed.sort_by(|a, b| sort_key(a, sort_field).cmp(&sort_key(b, sort_field)).then_with(|| a.id.cmp(&b.id)));
    if descending {
        listed.reverse();
    }
    let size = app.cfg.page_size.max(1);
    let total_pages = listed.len().div_ceil(size).max(1);
    let body: Vec<Value> = listed.iter().skip((page - 1) * size).take(size).map(|s| s.render()).collect();
    let touched: Vec<String> = {
        let mut served = app.list_pages.lock().expect("page counter lock");
        *served += 1;
        match app.cfg.touch_after_pages {
            Some((after, n)) if *served == after => {
                let mut all: Vec<&PsSubscriber> = listed.clone();
                all.sort_by_key(|s| (s.updated_at, s.id.clone()));
                all.iter().take(n).map(|s| s.id.clone()).collect()
            }
            _ => Vec::new(),
        }
    };
    let now = app.clock.now();
    for s in subs.iter_mut().filter(|s| touched.contains(&s.id)) {
        s.updated_at = now;
    }
    axum::Json(json!({"page_info": {"page": page, "total_pages": total_pages}, "subscribers": body})).into_response()
}
