//! Records into Klaviyo's wire shapes: JSON:API resources, documents and error documents.

use std::collections::{HashMap, HashSet};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::simulate::model::{ConsentState, SimEvent, SimFlow, SimMetric, SimProfile, SimShop};

pub const MEDIA_TYPE: &str = "application/vnd.api+json";

/// Klaviyo's datetime form: second precision with an explicit `+00:00`.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

fn opt_ts(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| Value::String(ts(t))).unwrap_or(Value::Null)
}

/// A stable pseudo-random number from an id, for deterministic variety (ids, rare shapes).
pub(super) fn hash64(text: &str) -> u64 {
    let d = Sha256::digest(text.as_bytes());
    u64::from_be_bytes(d[..8].try_into().expect("digest has 32 bytes"))
}

/// Where a 400 points: a body pointer or the offending query parameter.
#[derive(Debug, Clone)]
pub enum Source {
    Pointer(&'static str),
    Parameter(&'static str),
    Header(&'static str),
}

/// A JSON:API error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub source: Source,
}

impl ApiError {
    /// A 400 `invalid` about a query parameter.
    pub fn invalid(parameter: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid",
            title: "Invalid input.",
            detail: detail.into(),
            source: Source::Parameter(parameter),
        }
    }

    /// The error Klaviyo answers for a filter it cannot parse or does not allow.
    pub fn filter(detail: impl Into<String>) -> Self {
        Self::invalid("filter", format!("Invalid filter provided. {}", detail.into()))
    }

    pub fn not_authenticated(detail: &str) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "not_authenticated",
            title: "Authentication credentials were not provided.",
            detail: detail.to_string(),
            source: Source::Pointer("/data/"),
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            title: "Not found.",
            detail: detail.into(),
            source: Source::Pointer("/data/"),
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "error",
            title: "A server error occurred.",
            detail: detail.into(),
            source: Source::Pointer("/data/"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let source = match self.source {
            Source::Pointer(p) => json!({"pointer": p}),
            Source::Parameter(p) => json!({"parameter": p}),
            Source::Header(h) => json!({"header": h}),
        };
        let body = json!({"errors": [{
            "id": uuid::Uuid::new_v4().to_string(),
            "status": self.status.as_u16(),
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
            "source": source,
            "links": {},
            "meta": {},
        }]});
        (self.status, [(header::CONTENT_TYPE, MEDIA_TYPE)], body.to_string()).into_response()
    }
}

/// Klaviyo-shaped bodies for errors the shared fault layer or rate limiter injects. A 429
/// carries only `Retry-After`, never `RateLimit-*` (apis.md 1.4).
pub fn vendor_error(status: StatusCode, retry_after: Option<u64>) -> Response {
    if status == StatusCode::TOO_MANY_REQUESTS {
        let secs = retry_after.unwrap_or(1);
        let plural = if secs == 1 { "" } else { "s" };
        let err = ApiError {
            status,
            code: "throttled",
            title: "Request was throttled.",
            detail: format!("Request was throttled. Expected available in {secs} second{plural}."),
            source: Source::Pointer("/data/"),
        };
        let mut resp = err.into_response();
        resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
        return resp;
    }
    let mut err = ApiError::internal("A server error occurred.");
    err.status = status;
    err.into_response()
}

/// A collection document being assembled: `data` in order, `included` de-duplicated by
/// (type, id) in first-seen order, and sparse fieldsets applied to both.
#[derive(Default)]
pub struct Doc {
    data: Vec<Value>,
    included: Vec<Value>,
    seen: HashSet<(String, String)>,
    /// `fields[<type>]`: the attributes to keep per resource type.
    fields: HashMap<String, Vec<String>>,
}

impl Doc {
    /// An empty document applying the `fields[<type>]` sparse fieldsets.
    pub fn new(fields: HashMap<String, Vec<String>>) -> Self {
        Self { fields, ..Self::default() }
    }

    pub fn push(&mut self, resource: Value) {
        let r = self.sparse(resource);
        self.data.push(r);
    }

    pub fn include(&mut self, resource: Value) {
        let key = (
            resource["type"].as_str().unwrap_or_default().to_string(),
            resource["id"].as_str().unwrap_or_default().to_string(),
        );
        if self.seen.insert(key) {
            let r = self.sparse(resource);
            self.included.push(r);
        }
    }

    fn sparse(&self, mut resource: Value) -> Value {
        let ty = resource["type"].as_str().unwrap_or_default().to_string();
        if let Some(keep) = self.fields.get(&ty)
            && let Some(attrs) = resource.get_mut("attributes").and_then(Value::as_object_mut)
        {
            // Dotted names (`location.country`) keep the whole top-level object: enough for a
            // client that trims payloads, without re-implementing nested projection.
            attrs.retain(|k, _| keep.iter().any(|f| f == k || f.split('.').next() == Some(k)));
        }
        resource
    }

    /// A single-resource response: `data` is the one pushed resource (or `null`).
    pub fn into_single(mut self, self_link: String) -> Response {
        let data = if self.data.is_empty() { Value::Null } else { self.data.swap_remove(0) };
        let body = json!({"data": data, "links": {"self": self_link}});
        (StatusCode::OK, [(header::CONTENT_TYPE, MEDIA_TYPE)], body.to_string()).into_response()
    }

    /// The final response; `with_included` follows whether `include=` was asked for, since
    /// Klaviyo omits the key otherwise.
    pub fn into_response(self, links: Value, with_included: bool) -> Response {
        let mut body = Map::new();
        body.insert("data".into(), Value::Array(self.data));
        body.insert("links".into(), links);
        if with_included {
            body.insert("included".into(), Value::Array(self.included));
        }
        (StatusCode::OK, [(header::CONTENT_TYPE, MEDIA_TYPE)], Value::Object(body).to_string()).into_response()
    }
}

pub(super) fn rel_one(base: &str, self_path: &str, name: &str, ty: &str, id: Option<&str>) -> Value {
    json!({
        "data": id.map(|id| json!({"type": ty, "id": id})),
        "links": {
            "self": format!("{base}{self_path}relationships/{name}/"),
            "related": format!("{base}{self_path}{name}/"),
        }
    })
}

pub(super) fn rel_links(base: &str, self_path: &str, name: &str) -> Value {
    json!({"links": {
        "self": format!("{base}{self_path}relationships/{name}/"),
        "related": format!("{base}{self_path}{name}/"),
    }})
}

/// Short Klaviyo-style ids for things the store does not name (accounts, integrations).
pub(super) fn short_id(seed: &str) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut n = hash64(seed);
    (0..6)
        .map(|_| {
            let c = CHARS[(n % CHARS.len() as u64) as usize] as char;
            n /= CHARS.len() as u64;
            c
        })
        .collect()
}

pub fn account(base: &str, shop: &SimShop) -> Value {
    let id = short_id(&format!("account:{}", shop.shop_id));
    json!({
        "type": "account",
        "id": id,
        "attributes": {
            "test_account": false,
            "contact_information": {
                "default_sender_name": shop.name,
                "default_sender_email": format!("hello@{}", shop.myshopify_domain),
                "website_url": format!("https://{}", shop.myshopify_domain),
                "organization_name": shop.name,
                "street_address": {
                    "address1": null, "address2": null, "city": null, "region": null,
                    "country": shop.country, "zip": null,
                },
            },
            "industry": null,
            "timezone": shop.iana_timezone,
            "preferred_currency": shop.currency,
            "public_api_key": id,
            "locale": "en-US",
        },
        "links": {"self": format!("{base}/api/accounts/{id}/")},
    })
}

/// The `integration.category` Klaviyo shows for an integration name.
pub fn integration_category(name: &str) -> &'static str {
    match name.to_lowercase().as_str() {
        "klaviyo" => "Internal",
        "shopify" => "eCommerce",
        "attentive" | "postscript" => "SMS",
        _ => "Custom",
    }
}

fn integration(name: &str) -> Value {
    let key = name.to_lowercase().replace(' ', "_");
    let category = integration_category(name);
    json!({"object": "integration", "id": short_id(&format!("integration:{name}")), "key": key, "name": name, "category": category})
}

pub fn metric(base: &str, m: &SimMetric) -> Value {
    json!({
        "type": "metric",
        "id": m.metric_id,
        "attributes": {
            "name": m.name,
            "created": ts(m.created_at),
            "updated": ts(m.updated_at),
            "integration": m.integration.as_deref().map(integration),
        },
        "relationships": {
            "flow-triggers": rel_links(base, &format!("/api/metrics/{}/", m.metric_id), "flow-triggers"),
        },
        "links": {"self": format!("{base}/api/metrics/{}/", m.metric_id)},
    })
}

fn consent(c: ConsentState) -> &'static str {
    match c {
        ConsentState::Subscribed => "SUBSCRIBED",
        ConsentState::Unsubscribed => "UNSUBSCRIBED",
        ConsentState::NeverSubscribed => "NEVER_SUBSCRIBED",
    }
}

/// `subscriptions` as `additional-fields[profile]=subscriptions` returns it.
fn subscriptions(p: &SimProfile) -> Value {
    let suppression: Vec<Value> = p
        .email_suppression
        .iter()
        .map(|reason| json!({"reason": reason, "timestamp": ts(p.email_consent_at.unwrap_or(p.updated_at))}))
        .collect();
    let can_email = p.email.is_some() && p.email_consent == ConsentState::Subscribed && suppression.is_empty();
    let can_sms = p.phone.is_some() && p.sms_consent == ConsentState::Subscribed;
    let method = |c: ConsentState| {
        if c == ConsentState::NeverSubscribed { Value::Null } else { json!("API") }
    };
    json!({
        "email": {"marketing": {
            "can_receive_email_marketing": can_email,
            "consent": consent(p.email_consent),
            "consent_timestamp": opt_ts(p.email_consent_at),
            "last_updated": opt_ts(p.email_consent_at),
            "method": method(p.email_consent),
            "method_detail": null,
            "custom_method_detail": null,
            "double_optin": null,
            "suppression": suppression,
            "list_suppressions": [],
        }},
        "sms": {
            "marketing": {
                "can_receive_sms_marketing": can_sms,
                "consent": consent(p.sms_consent),
                "consent_timestamp": opt_ts(p.sms_consent_at),
                "method": method(p.sms_consent),
                "method_detail": null,
                "last_updated": opt_ts(p.sms_consent_at),
            },
            "transactional": null,
        },
        "mobile_push": null,
    })
}

pub fn profile(base: &str, p: &SimProfile, with_subscriptions: bool) -> Value {
    let self_path = format!("/api/profiles/{}/", p.profile_id);
    let mut attrs = json!({
        "email": p.email,
        "phone_number": p.phone,
        "external_id": p.external_id,
        "anonymous_id": null,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "organization": null,
        "locale": null,
        "title": null,
        "image": null,
        "created": ts(p.created_at),
        "updated": ts(p.updated_at),
        "last_event_date": null,
        "location": {
            "address1": null, "address2": null, "city": null, "country": p.country,
            "latitude": null, "longitude": null, "region": null, "zip": null,
            "timezone": p.timezone, "ip": null,
        },
        "properties": {"holdout_bucket": p.holdout_bucket},
    });
    if with_subscriptions {
        attrs["subscriptions"] = subscriptions(p);
    }
    json!({
        "type": "profile",
        "id": p.profile_id,
        "attributes": attrs,
        "relationships": {
            "lists": rel_links(base, &self_path, "lists"),
            "segments": rel_links(base, &self_path, "segments"),
        },
        "links": {"self": format!("{base}{self_path}")},
    })
}

pub fn flow(base: &str, f: &SimFlow) -> Value {
    let self_path = format!("/api/flows/{}/", f.flow_id);
    json!({
        "type": "flow",
        "id": f.flow_id,
        "attributes": {
            "name": f.name,
            "status": f.status,
            "archived": f.archived,
            "created": ts(f.created_at),
            "updated": ts(f.updated_at),
            "trigger_type": f.trigger_type,
        },
        "relationships": {
            "flow-actions": rel_links(base, &self_path, "flow-actions"),
            "tags": rel_links(base, &self_path, "tags"),
        },
        "links": {"self": format!("{base}{self_path}")},
    })
}

/// Decimal places of a currency's minor unit, for turning `*_minor` into `$value`.
pub(super) fn minor_digits(currency: &str) -> i32 {
    match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "HUF" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
        _ => 2,
    }
}

/// `$value`: usually a number, but about one event in forty (by id) carries it as a string,
/// as some integrations send it; connectors must cope with both.
fn value_json(event_id: &str, minor: i64, currency: &str) -> Value {
    let digits = minor_digits(currency);
    let major = minor as f64 / 10f64.powi(digits);
    if hash64(event_id).is_multiple_of(40) {
        Value::String(format!("{major:.prec$}", prec = digits as usize))
    } else {
        serde_json::Number::from_f64(major).map(Value::Number).unwrap_or(Value::Null)
    }
}

/// A stable UUID for an event (Klaviyo's `uuid` attribute is distinct from the event id).
fn event_uuid(event_id: &str) -> String {
    let d = Sha256::digest(format!("event-uuid:{event_id}").as_bytes());
    let mut b: [u8; 16] = d[..16].try_into().expect("digest has 32 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// The id of the attribution resource behind a conversion event, when it has one.
pub fn attribution_id(e: &SimEvent) -> Option<String> {
    e.attributed_message_id.as_ref().map(|m| format!("{}:{m}", e.event_id))
}

pub fn attribution(base: &str, e: &SimEvent) -> Option<Value> {
    let id = attribution_id(e)?;
    let self_path = format!("/api/attributions/{id}/");
    let (flow, flow_msg, campaign, campaign_msg) = match &e.attributed_flow_id {
        Some(f) => (Some(f.as_str()), e.attributed_message_id.as_deref(), None, None),
        None => (None, None, e.campaign_id.as_deref(), e.attributed_message_id.as_deref()),
    };
    Some(json!({
        "type": "attribution",
        "id": id,
        "attributes": {},
        "relationships": {
            "event": rel_one(base, &self_path, "event", "event", Some(&e.event_id)),
            "attributed-event": rel_one(base, &self_path, "attributed-event", "event", None),
            "campaign": rel_one(base, &self_path, "campaign", "campaign", campaign),
            "campaign-message": rel_one(base, &self_path, "campaign-message", "campaign-message", campaign_msg),
            "flow": rel_one(base, &self_path, "flow", "flow", flow),
            "flow-message": rel_one(base, &self_path, "flow-message", "flow-message", flow_msg),
            "flow-message-variation": rel_one(base, &self_path, "flow-message-variation", "flow-message", None),
        },
    }))
}

/// One event; `metric_name` decides event-specific keys (`$event_id` on Placed Order).
pub fn event(base: &str, e: &SimEvent, metric_name: Option<&str>, currency: &str, with_attributions: bool) -> Value {
    let mut props = Map::new();
    if let Some(v) = e.value_minor {
        props.insert("$value".into(), value_json(&e.event_id, v, currency));
    }
    if let Some(f) = &e.flow_id {
        props.insert("$flow".into(), json!(f));
    }
    // Campaign sends report the campaign id as `$message` (apis.md 1.6, campaigns); a deleted
    // campaign's message id is gone, and so is `$message`.
    let message = match (&e.flow_id, &e.campaign_id, &e.message_id) {
        (None, Some(c), Some(_)) => Some(c.clone()),
        (_, _, m) => m.clone(),
    };
    if let Some(m) = message {
        props.insert("$message".into(), json!(m));
    }
    if e.attributed_flow_id.is_some() || e.attributed_message_id.is_some() {
        // Both spellings: dashboards and aggregates name the dimension `$attributed_*`, while
        // raw payloads seen in the wild use `$flow`/`$message` inside the object.
        props.insert(
            "$attribution".into(),
            json!({
                "$attributed_flow": e.attributed_flow_id,
                "$attributed_message": e.attributed_message_id,
                "$flow": e.attributed_flow_id,
                "$message": e.attributed_message_id,
            }),
        );
    }
    if metric_name == Some("Placed Order")
        && let Some(order) = e.order_id
    {
        props.insert("$event_id".into(), json!(order.to_string()));
    }
    for (k, v) in &e.extra {
        props.insert(k.clone(), v.clone());
    }
    let self_path = format!("/api/events/{}/", e.event_id);
    let mut attributions = rel_links(base, &self_path, "attributions");
    if with_attributions {
        attributions["data"] =
            Value::Array(attribution_id(e).map(|id| json!({"type": "attribution", "id": id})).into_iter().collect());
    }
    json!({
        "type": "event",
        "id": e.event_id,
        "attributes": {
            "timestamp": e.datetime.timestamp(),
            "event_properties": props,
            "datetime": ts(e.datetime),
            "uuid": event_uuid(&e.event_id),
        },
        "relationships": {
            "profile": rel_one(base, &self_path, "profile", "profile", Some(&e.profile_id)),
            "metric": rel_one(base, &self_path, "metric", "metric", Some(&e.metric_id)),
            "attributions": attributions,
        },
        "links": {"self": format!("{base}{self_path}")},
    })
}
