//! Reading one stored delivery: the fields the raw contract types, and the dedup key.
//!
//! Neither platform sends an event id, so an event is identified by (type, subscriber, event
//! time, message id) (apis.md 3.4). Shapes follow apis.md 3.3 A and 4.4 A; the names that
//! differ between doc versions (`phone.unsubscribed` / `sms.unsubscribed`,
//! `shop.shop.email_collected` / `shop.email_collected`) are kept as given and mapped to one
//! name in `event_type_normalized`. Unknown types are kept: the type is data.

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Platform;

/// Attentive event types the docs list (either spelling).
pub const ATTENTIVE_TYPES: &[&str] = &[
    "sms.subscribed",
    "sms.sent",
    "sms.message_link_click",
    "sms.unsubscribed",
    "phone.unsubscribed",
    "sms.inbound_message",
    "email.subscribed",
    "email.unsubscribed",
    "email.message_link_click",
    "email.opened",
    "email.sent",
    "custom_attribute.set",
];

/// Postscript event types the docs list (either spelling).
pub const POSTSCRIPT_TYPES: &[&str] = &[
    "shop.subscriber.opt_in",
    "shop.subscriber.opt_out",
    "shop.incoming_message",
    "shop.email_collected",
    "shop.shop.email_collected",
    "shop.test",
];

/// One delivery read into the contract's derived fields.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub event_type: String,
    pub event_type_normalized: String,
    pub known_type: bool,
    pub event_time: DateTime<Utc>,
    pub subscriber_id: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// As the payload gives it (encoded on Attentive click events).
    pub message_id: Option<String>,
    /// Decoded when the given id is an encoded numeric id, else the given id.
    pub message_id_decoded: Option<String>,
}

/// Why a delivery cannot be read: the field, and what was wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field {field}: {message}")]
pub struct EventError {
    pub field: String,
    pub message: String,
}

fn err(field: &str, message: impl Into<String>) -> EventError {
    EventError { field: field.to_string(), message: message.into() }
}

/// The one name both spellings of an event map to.
pub fn normalize(platform: Platform, event_type: &str) -> &str {
    match (platform, event_type) {
        (Platform::Attentive, "phone.unsubscribed") => "sms.unsubscribed",
        (Platform::Postscript, "shop.shop.email_collected") => "shop.email_collected",
        (_, t) => t,
    }
}

/// Reads a delivery's body.
pub fn parse(platform: Platform, body: &[u8]) -> Result<WebhookEvent, EventError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| err("_raw", format!("not JSON: {e}")))?;
    if !v.is_object() {
        return Err(err("_raw", "not a JSON object"));
    }
    match platform {
        Platform::Attentive => parse_attentive(&v),
        Platform::Postscript => parse_postscript(&v),
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn required_type(v: &Value, field: &str) -> Result<String, EventError> {
    text(v.get(field)).ok_or_else(|| err(field, "required event type is missing or not a string"))
}

fn parse_attentive(v: &Value) -> Result<WebhookEvent, EventError> {
    let event_type = required_type(v, "type")?;
    let ms = v
        .get("timestamp")
        .and_then(|t| t.as_i64().or_else(|| t.as_str().and_then(|s| s.trim().parse().ok())))
        .ok_or_else(|| err("timestamp", "expected Unix milliseconds"))?;
    let event_time = Utc.timestamp_millis_opt(ms).single().ok_or_else(|| err("timestamp", "out of range"))?;
    let subscriber = v.get("subscriber");
    let message_id = text(v.pointer("/message/id"));
    Ok(WebhookEvent {
        known_type: ATTENTIVE_TYPES.contains(&event_type.as_str()),
        event_type_normalized: normalize(Platform::Attentive, &event_type).to_string(),
        event_type,
        event_time,
        subscriber_id: text(subscriber.and_then(|s| s.get("external_id"))),
        phone: text(subscriber.and_then(|s| s.get("phone"))),
        email: text(subscriber.and_then(|s| s.get("email"))),
        message_id_decoded: message_id.as_deref().map(decode_message_id),
        message_id,
    })
}

fn parse_postscript(v: &Value) -> Result<WebhookEvent, EventError> {
    let event_type = required_type(v, "event")?;
    let raw_time = v.get("event_time").ok_or_else(|| err("event_time", "required event time is missing"))?;
    let micros = match raw_time {
        Value::String(_) => crate::landing::arrow::parse_timestamp(raw_time),
        _ => None,
    }
    .ok_or_else(|| err("event_time", "expected an ISO-8601 time (naive times are UTC)"))?;
    let event_time = Utc.timestamp_micros(micros).single().ok_or_else(|| err("event_time", "out of range"))?;
    let data = v.get("event_data");
    let field = |names: &[&str]| names.iter().find_map(|n| text(data.and_then(|d| d.get(*n))));
    let message_id = (event_type == "shop.incoming_message").then(|| field(&["id"])).flatten();
    Ok(WebhookEvent {
        known_type: POSTSCRIPT_TYPES.contains(&event_type.as_str()),
        event_type_normalized: normalize(Platform::Postscript, &event_type).to_string(),
        event_type,
        event_time,
        subscriber_id: field(&["subscriber_id"]),
        phone: field(&["phone_number", "from_number", "phone"]),
        email: field(&["email"]),
        message_id_decoded: message_id.clone(),
        message_id,
    })
}

/// Attentive's click events carry the message id encoded (Fivetran's observation, apis.md
/// 3.3 A); assumed here to be URL-safe base64 of the numeric id [uncertain: confirm on a live
/// sample]. An id that does not decode to digits is returned unchanged.
pub fn decode_message_id(given: &str) -> String {
    if given.bytes().all(|b| b.is_ascii_digit()) {
        return given.to_string();
    }
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    match engine.decode(given.trim_end_matches('=')) {
        Ok(bytes) if !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) => {
            String::from_utf8(bytes).unwrap_or_else(|_| given.to_string())
        }
        _ => given.to_string(),
    }
}

/// URL-safe base64 of an id: how the fake sender encodes click message ids.
pub fn encode_message_id(id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

impl WebhookEvent {
    /// The dedup key: hex SHA-256 over platform, type as given, subscriber, event time in
    /// microseconds and decoded message id (absent parts as empty fields).
    pub fn dedup_key(&self, platform: Platform) -> String {
        let parts = [
            platform.name().to_string(),
            self.event_type.clone(),
            self.subscriber_id.clone().unwrap_or_default(),
            self.event_time.timestamp_micros().to_string(),
            self.message_id_decoded.clone().unwrap_or_default(),
        ];
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn attentive_click_keeps_the_given_id_and_decodes_it() {
        let body = json!({"type": "sms.message_link_click", "timestamp": 1_763_600_000_123i64,
            "company": {"display_name": "Acme", "company_id": "c1"},
            "subscriber": {"external_id": 42, "phone": "+15555550100"},
            "message": {"id": encode_message_id("991"), "name": "Welcome"}});
        let e = parse(Platform::Attentive, body.to_string().as_bytes()).unwrap();
        assert_eq!(e.event_time.timestamp_millis(), 1_763_600_000_123);
        assert_eq!(e.subscriber_id.as_deref(), Some("42"));
        assert_eq!(e.email, None);
        assert_eq!(e.message_id.as_deref(), Some(encode_message_id("991").as_str()));
        assert_eq!(e.message_id_decoded.as_deref(), Some("991"));
        assert!(e.known_type);
        let sent = json!({"type": "sms.sent", "timestamp": 1_763_600_000_123i64,
            "subscriber": {"external_id": 42}, "message": {"id": "991"}});
        let s = parse(Platform::Attentive, sent.to_string().as_bytes()).unwrap();
        assert_eq!(s.message_id_decoded.as_deref(), Some("991"));
        assert_eq!(decode_message_id("not-an-encoded-id"), "not-an-encoded-id");
    }

    #[test]
    fn spellings_are_kept_and_normalized() {
        let old = json!({"type": "phone.unsubscribed", "timestamp": 1, "subscriber": {"external_id": 1}});
        let e = parse(Platform::Attentive, old.to_string().as_bytes()).unwrap();
        assert_eq!(
            (e.event_type.as_str(), e.event_type_normalized.as_str()),
            ("phone.unsubscribed", "sms.unsubscribed")
        );
        let ps = json!({"webhook_id": "w", "resource_type": "shop", "resource_id": "shop_1",
            "event_time": "2021-11-04T21:52:41.025455", "event": "shop.shop.email_collected",
            "event_data": {"subscriber_id": "s_1", "email": "a@example.com"}});
        let e = parse(Platform::Postscript, ps.to_string().as_bytes()).unwrap();
        assert_eq!(e.event_type_normalized, "shop.email_collected");
        assert_eq!(e.event_time.timestamp_micros(), 1_636_062_761_025_455);
        assert_eq!(e.email.as_deref(), Some("a@example.com"));
        let unknown = json!({"type": "sms.brand_new", "timestamp": 5});
        let e = parse(Platform::Attentive, unknown.to_string().as_bytes()).unwrap();
        assert!(!e.known_type);
        assert_eq!(e.event_type_normalized, "sms.brand_new");
    }

    #[test]
    fn errors_name_the_field() {
        let no_time = json!({"type": "sms.sent"});
        assert_eq!(parse(Platform::Attentive, no_time.to_string().as_bytes()).unwrap_err().field, "timestamp");
        let bad_time = json!({"event": "shop.test", "event_time": "yesterday"});
        assert_eq!(parse(Platform::Postscript, bad_time.to_string().as_bytes()).unwrap_err().field, "event_time");
        assert_eq!(parse(Platform::Postscript, b"[1]").unwrap_err().field, "_raw");
        assert_eq!(parse(Platform::Attentive, br#"{"timestamp": 1}"#).unwrap_err().field, "type");
    }

    #[test]
    fn dedup_key_ignores_delivery_details_but_not_identity() {
        let a = json!({"type": "sms.sent", "timestamp": 10, "subscriber": {"external_id": 1, "phone": "+1"}, "message": {"id": "7"}});
        let b = json!({"message": {"id": "7"}, "subscriber": {"external_id": 1}, "timestamp": 10, "type": "sms.sent"});
        let c = json!({"type": "sms.sent", "timestamp": 11, "subscriber": {"external_id": 1}, "message": {"id": "7"}});
        let key =
            |v: &Value| parse(Platform::Attentive, v.to_string().as_bytes()).unwrap().dedup_key(Platform::Attentive);
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
    }
}
