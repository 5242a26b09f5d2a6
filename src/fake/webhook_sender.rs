//! The fake webhook sender: Attentive and Postscript deliveries in the documented shapes
//! (apis.md 3.3 A, 4.4 A, 6.3, 6.4), signed like the platforms sign them, with the faults the
//! receiver must survive: forged and unsigned deliveries, duplicates (byte-identical retries
//! and re-serialised copies), out-of-order delivery, optional fields missing, unknown event
//! types, both spellings of renamed events, encoded and plain message ids on clicks, bodies
//! that are not JSON and bodies over the size limit.
//!
//! Seeded and self-contained (its own few hundred subscribers); [`Plan::truth`] is the set of
//! distinct genuine events, the answer the compaction must reproduce.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::webhooks::Platform;
use crate::webhooks::event::encode_message_id;
use crate::webhooks::verify::attentive_signature;

/// What a delivery is meant to exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A signed event, first copy.
    Genuine,
    /// Another copy of a genuine event (same bytes, or the same event re-serialised).
    Duplicate,
    /// A well-formed event with a wrong signature or token.
    BadSignature,
    /// A well-formed event without the signature header.
    MissingSignature,
    /// Correctly signed, but not JSON.
    Malformed,
    /// Correctly signed, over the receiver's size limit.
    Oversized,
}

impl Kind {
    /// The status a correct receiver answers.
    pub fn expected_status(self) -> u16 {
        match self {
            Kind::Genuine | Kind::Duplicate => 200,
            Kind::BadSignature | Kind::MissingSignature => 401,
            Kind::Malformed => 400,
            Kind::Oversized => 413,
        }
    }
}

/// What identifies an event (no event ids exist): the compaction's dedup key, in clear.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    pub platform: Platform,
    pub event_type: String,
    pub subscriber_id: Option<String>,
    pub event_time_micros: i64,
    /// As the payload gives it (encoded on some Attentive clicks).
    pub message_id: Option<String>,
}

/// One HTTP delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub platform: Platform,
    pub kind: Kind,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The event the body carries (none for malformed and oversized bodies).
    pub event: Option<EventKey>,
}

/// The secrets the sender signs with.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub attentive_signing_key: String,
    pub postscript_token: String,
}

/// How many deliveries of each kind to make, per platform.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    pub seed: u64,
    pub subscribers: usize,
    /// Distinct genuine events per platform (unknown types included).
    pub events: usize,
    /// Share of genuine events delivered a second time.
    pub duplicate_rate: f64,
    /// Of the genuine events, how many have an undocumented type.
    pub unknown_types: usize,
    pub bad_signatures: usize,
    pub missing_signatures: usize,
    pub malformed: usize,
    /// Oversized bodies of this many bytes, when set (one per platform).
    pub oversized_bytes: Option<usize>,
    /// Time of the first event.
    pub start: DateTime<Utc>,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            subscribers: 300,
            events: 400,
            duplicate_rate: 0.15,
            unknown_types: 5,
            bad_signatures: 4,
            missing_signatures: 3,
            malformed: 2,
            oversized_bytes: None,
            start: Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).single().expect("valid time"),
        }
    }
}

/// Every delivery, in the (shuffled) order they are sent.
#[derive(Debug, Clone)]
pub struct Plan {
    pub deliveries: Vec<Delivery>,
}

impl Plan {
    /// The distinct events the receiver must keep: those of genuine deliveries.
    pub fn truth(&self) -> BTreeSet<EventKey> {
        self.deliveries.iter().filter(|d| d.kind == Kind::Genuine).filter_map(|d| d.event.clone()).collect()
    }

    /// Events the receiver must not keep (forged deliveries carry events of their own).
    pub fn forged_events(&self) -> BTreeSet<EventKey> {
        self.deliveries
            .iter()
            .filter(|d| matches!(d.kind, Kind::BadSignature | Kind::MissingSignature))
            .filter_map(|d| d.event.clone())
            .collect()
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.deliveries.iter().filter(|d| d.kind == kind).count()
    }
}

const ATTENTIVE_MIX: &[(&str, u32)] = &[
    ("sms.sent", 40),
    ("sms.message_link_click", 18),
    ("sms.subscribed", 10),
    ("email.subscribed", 5),
    ("sms.unsubscribed", 4),
    ("phone.unsubscribed", 3),
    ("email.unsubscribed", 3),
    ("email.opened", 6),
    ("email.message_link_click", 5),
    ("sms.inbound_message", 3),
    ("custom_attribute.set", 3),
];

const POSTSCRIPT_MIX: &[(&str, u32)] = &[
    ("shop.subscriber.opt_in", 30),
    ("shop.subscriber.opt_out", 15),
    ("shop.incoming_message", 35),
    ("shop.email_collected", 8),
    ("shop.shop.email_collected", 8),
    ("shop.test", 4),
];

fn pick<'a>(rng: &mut ChaCha8Rng, mix: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = mix.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (t, w) in mix {
        if x < *w {
            return t;
        }
        x -= w;
    }
    mix[0].0
}

/// One generated event: its body and its identity.
struct Event {
    body: Value,
    key: EventKey,
}

fn attentive_event(rng: &mut ChaCha8Rng, cfg: &SenderConfig, i: usize, event_type: &str) -> Event {
    let sub = rng.random_range(0..cfg.subscribers);
    let ms = cfg.start.timestamp_millis() + i as i64 * 60_000 + rng.random_range(0..59_000);
    let mut subscriber = json!({"external_id": 1_000_000 + sub as i64,
        "external_identifiers": {"client_user_id": [format!("cu_{sub}")], "custom_identifiers": {}}});
    // Optional fields go missing: about one in eight events has no phone, one in three no email.
    if rng.random_bool(0.875) {
        subscriber["phone"] = json!(format!("+1555{:07}", sub));
    }
    if rng.random_bool(0.66) {
        subscriber["email"] = json!(format!("subscriber{sub}@example.com"));
    }
    let mut body = json!({"type": event_type, "timestamp": ms,
        "company": {"display_name": "Acme Goods", "company_id": "co_acme"}, "subscriber": subscriber});
    let message_no = rng.random_range(1..60u32);
    let plain_id = format!("{}", 880_000 + message_no);
    let message_id = match event_type {
        "sms.sent" | "email.sent" | "email.opened" => Some(plain_id.clone()),
        // Click ids come encoded about half the time (Fivetran's observation).
        t if t.ends_with("message_link_click") => {
            Some(if rng.random_bool(0.5) { encode_message_id(&plain_id) } else { plain_id.clone() })
        }
        _ => None,
    };
    if let Some(id) = &message_id {
        let mut message = json!({"id": id, "name": format!("Journey message {message_no}"), "type": "AUTOMATED"});
        if event_type.ends_with("message_link_click") {
            message["url"] = json!(format!("https://acme.example/p/{message_no}"));
        } else {
            message["text"] = json!("Hi! Your cart misses you.");
        }
        body["message"] = message;
    }
    if event_type.ends_with(".subscribed") {
        body["creative"] = json!({"name": "Spring pop-up", "type": "TEXT_TO_JOIN", "subtype": "CODE"});
        body["subscription"] = json!({"type": "MARKETING"});
    }
    let key = EventKey {
        platform: Platform::Attentive,
        event_type: event_type.to_string(),
        subscriber_id: Some((1_000_000 + sub as i64).to_string()),
        event_time_micros: ms * 1000,
        message_id,
    };
    Event { body, key }
}

fn postscript_event(rng: &mut ChaCha8Rng, cfg: &SenderConfig, i: usize, event_type: &str) -> Event {
    let sub = rng.random_range(0..cfg.subscribers);
    let micros = cfg.start.timestamp_micros() + i as i64 * 60_000_000 + rng.random_range(0..59_000_000);
    let time = Utc.timestamp_micros(micros).single().expect("valid time");
    let subscriber_id = format!("s_{:06x}", 0x5000 + sub);
    let mut data = json!({"subscriber_id": subscriber_id, "shop_id": "shop_acme"});
    if rng.random_bool(0.7) {
        data["shopify_customer_id"] = json!(7_000_000 + sub as i64);
    }
    let mut message_id = None;
    match event_type {
        "shop.incoming_message" => {
            let id = format!("im_{i:08x}");
            data["id"] = json!(id);
            data["from_number"] = json!(format!("+1555{:07}", sub));
            let opt_out = rng.random_bool(0.1);
            data["is_opt_out"] = json!(opt_out);
            data["body"] = json!(if opt_out { "STOP" } else { "When is the sale?" });
            data["created_at"] = json!(time.format("%Y-%m-%dT%H:%M:%S%.6f").to_string());
            message_id = Some(id);
        }
        "shop.email_collected" | "shop.shop.email_collected" => {
            data["email"] = json!(format!("subscriber{sub}@example.com"));
        }
        _ => {
            if rng.random_bool(0.875) {
                data["phone_number"] = json!(format!("+1555{:07}", sub));
            }
        }
    }
    let body = json!({"webhook_id": "wh_0001", "resource_type": "shop", "resource_id": "shop_acme",
        "event_time": time.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(), "event": event_type, "event_data": data});
    let key = EventKey {
        platform: Platform::Postscript,
        event_type: event_type.to_string(),
        subscriber_id: Some(subscriber_id),
        event_time_micros: micros,
        message_id,
    };
    Event { body, key }
}

/// Signs a body: the headers a real delivery of this platform carries.
pub fn signed_headers(platform: Platform, creds: &Credentials, body: &[u8]) -> Vec<(String, String)> {
    let value = match platform {
        Platform::Attentive => attentive_signature(&creds.attentive_signing_key, body),
        Platform::Postscript => creds.postscript_token.clone(),
    };
    vec![("content-type".into(), "application/json".into()), (platform.signature_header().into(), value)]
}

fn delivery(platform: Platform, kind: Kind, creds: &Credentials, body: Vec<u8>, event: Option<EventKey>) -> Delivery {
    let mut headers = signed_headers(platform, creds, &body);
    match kind {
        Kind::MissingSignature => headers.retain(|(n, _)| n != platform.signature_header()),
        Kind::BadSignature => {
            let forged = match platform {
                Platform::Attentive => attentive_signature("not-the-signing-key", &body),
                Platform::Postscript => format!("{}x", creds.postscript_token),
            };
            headers[1].1 = forged;
        }
        _ => {}
    }
    Delivery { platform, kind, headers, body, event }
}

/// Builds every delivery for both platforms, shuffled.
pub fn generate(cfg: &SenderConfig, creds: &Credentials) -> Plan {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut out = Vec::new();
    for platform in Platform::ALL {
        let (mix, unknown) = match platform {
            Platform::Attentive => (ATTENTIVE_MIX, "sms.delivery_receipt"),
            Platform::Postscript => (POSTSCRIPT_MIX, "shop.subscriber.updated"),
        };
        let make = |rng: &mut ChaCha8Rng, i: usize, t: &str| match platform {
            Platform::Attentive => attentive_event(rng, cfg, i, t),
            Platform::Postscript => postscript_event(rng, cfg, i, t),
        };
        for i in 0..cfg.events {
            let t = if i < cfg.unknown_types { unknown } else { pick(&mut rng, mix) };
            let e = make(&mut rng, i, t);
            let bytes = serde_json::to_vec(&e.body).expect("JSON serialises");
            if rng.random_bool(cfg.duplicate_rate) {
                // A retry sends the same bytes; another copy of the same event may be serialised anew.
                let copy = if rng.random_bool(0.5) {
                    bytes.clone()
                } else {
                    serde_json::to_vec_pretty(&e.body).expect("JSON")
                };
                out.push(delivery(platform, Kind::Duplicate, creds, copy, Some(e.key.clone())));
            }
            out.push(delivery(platform, Kind::Genuine, creds, bytes, Some(e.key)));
        }
        // Forged events are events of their own (later times), so landing one would show.
        let forged = (0..cfg.bad_signatures)
            .map(|_| Kind::BadSignature)
            .chain((0..cfg.missing_signatures).map(|_| Kind::MissingSignature));
        for (n, kind) in forged.enumerate() {
            let t = pick(&mut rng, mix);
            let e = make(&mut rng, cfg.events + n, t);
            out.push(delivery(platform, kind, creds, serde_json::to_vec(&e.body).expect("JSON"), Some(e.key)));
        }
        for n in 0..cfg.malformed {
            let body = format!("{{\"type\": \"sms.sent\", \"timestamp\": {n}, truncated").into_bytes();
            out.push(delivery(platform, Kind::Malformed, creds, body, None));
        }
        if let Some(size) = cfg.oversized_bytes {
            let padding = "x".repeat(size);
            let body = json!({"type": "sms.sent", "timestamp": 1, "padding": padding});
            out.push(delivery(platform, Kind::Oversized, creds, serde_json::to_vec(&body).expect("JSON"), None));
        }
    }
    out.shuffle(&mut rng);
    Plan { deliveries: out }
}

/// Posts one delivery to `base_url` (the receiver's root); the HTTP status.
pub async fn deliver(client: &reqwest::Client, base_url: &str, d: &Delivery) -> Result<u16, reqwest::Error> {
    let mut req = client.post(format!("{base_url}{}", d.platform.path())).body(d.body.clone());
    for (name, value) in &d.headers {
        req = req.header(name, value);
    }
    Ok(req.send().await?.status().as_u16())
}

/// Posts deliveries `concurrency` at a time; each one's status, or the error text when no
/// answer came (the receiver died, the connection was reset), in the order given.
pub async fn deliver_all(base_url: &str, deliveries: &[Delivery], concurrency: usize) -> Vec<Result<u16, String>> {
    let client =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build().expect("an HTTP client builds");
    // Each future owns what it sends, so the whole batch can run inside a spawned task.
    let sends: Vec<_> = deliveries
        .iter()
        .map(|d| {
            let (client, base, d) = (client.clone(), base_url.to_string(), d.clone());
            async move { deliver(&client, &base, &d).await.map_err(|e| e.to_string()) }
        })
        .collect();
    futures::stream::iter(sends).buffered(concurrency.max(1)).collect().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhooks::verify::{Secret, verify};

    fn creds() -> Credentials {
        Credentials { attentive_signing_key: "key".into(), postscript_token: "tok".into() }
    }

    #[test]
    fn plans_are_deterministic_signed_and_varied() {
        let cfg = SenderConfig { events: 200, ..Default::default() };
        let a = generate(&cfg, &creds());
        let b = generate(&cfg, &creds());
        assert_eq!(
            a.deliveries.iter().map(|d| &d.body).collect::<Vec<_>>(),
            b.deliveries.iter().map(|d| &d.body).collect::<Vec<_>>()
        );
        assert_eq!(a.truth().len(), 400, "distinct genuine events, both platforms");
        assert!(a.count(Kind::Duplicate) > 20);
        assert_eq!(a.count(Kind::BadSignature), 8);
        assert!(a.truth().is_disjoint(&a.forged_events()));
        let keys = [Secret::new("key".into()), Secret::new("tok".into())];
        for d in &a.deliveries {
            let header = d.headers.iter().find(|(n, _)| n == d.platform.signature_header());
            let ok = header.is_some_and(|(_, v)| verify(d.platform, &keys[d.platform.index()], v.as_bytes(), &d.body));
            assert_eq!(ok, !matches!(d.kind, Kind::BadSignature | Kind::MissingSignature), "{:?}", d.kind);
        }
        let truth = a.truth();
        let types: BTreeSet<&str> = truth.iter().map(|k| k.event_type.as_str()).collect();
        for t in
            ["shop.email_collected", "shop.shop.email_collected", "sms.delivery_receipt", "shop.subscriber.updated"]
        {
            assert!(types.contains(t), "{t} in {types:?}");
        }
        assert!(
            truth.iter().any(|k| k
                .message_id
                .as_deref()
                .is_some_and(|m| !m.bytes().all(|b| b.is_ascii_digit()) && !m.starts_with("im_"))),
            "an encoded click id"
        );
        // Out of order: the first delivery is not the earliest event.
        let first = a.deliveries.iter().find_map(|d| d.event.as_ref()).unwrap();
        assert!(
            a.truth().iter().any(|k| k.platform == first.platform && k.event_time_micros < first.event_time_micros)
        );
    }
}
