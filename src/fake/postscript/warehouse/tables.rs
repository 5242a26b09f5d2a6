//! The warehouse tables' columns and rows, built from the program. Decorations the program does
//! not model (inbound replies, MMS, Postscript's own message ids, the late attribution
//! corrections) are drawn from hashes of the send or order, so they are deterministic too.

use chrono::{DateTime, Duration, Utc};

use super::files::{Column, Kind, Val};
use crate::simulate::sms_program::{SmsAttribution, SmsMessage, SmsProgram, SmsSource};

/// A row with the instant that files it under a month (its `_updated_at`).
pub struct Row {
    pub at: DateTime<Utc>,
    pub cells: Vec<Val>,
}

pub const FCT_MESSAGES: &[Column] = &[
    ("message_id", Kind::Str, false),
    ("direction", Kind::Str, false),
    ("subscriber_id", Kind::Str, false),
    ("created_at", Kind::Ts, false),
    ("_updated_at", Kind::Ts, false),
];

pub const DIM_MESSAGES: &[Column] = &[
    ("message_id", Kind::Str, false),
    ("postscript_message_id", Kind::Str, false),
    ("direction", Kind::Str, false),
    ("message_service", Kind::Str, false),
    ("failed", Kind::Bool, false),
    ("failed_at", Kind::Ts, true),
    ("text", Kind::Str, false),
    ("media_url", Kind::Str, true),
    ("type", Kind::Str, false),
    ("type_name", Kind::Str, true),
    ("_updated_at", Kind::Ts, false),
];

pub const FCT_ATTRIBUTION: &[Column] = &[
    ("attribution_id", Kind::Str, false),
    ("message_id", Kind::Str, false),
    ("order_id", Kind::Str, false),
    ("amount_in_cents", Kind::I64, false),
    ("action_type", Kind::Str, false),
    ("coupon_used", Kind::Bool, false),
    ("shop_id", Kind::Str, false),
    ("subscriber_id", Kind::Str, false),
    ("customer_id", Kind::I64, true),
    ("minutes_from_action", Kind::I64, false),
    ("order_created_at", Kind::Ts, false),
    ("_updated_at", Kind::Ts, false),
];

pub const FCT_CLICKS: &[Column] = &[
    ("click_id", Kind::Str, false),
    ("message_id", Kind::Str, false),
    ("subscriber_id", Kind::Str, false),
    ("clicked_at", Kind::Ts, false),
    ("url", Kind::Str, false),
    ("_updated_at", Kind::Ts, false),
];

pub const SUBSCRIBERS: &[Column] = &[
    ("subscriber_id", Kind::Str, false),
    ("phone_number", Kind::Str, false),
    ("email", Kind::Str, true),
    ("shopify_customer_id", Kind::I64, true),
    ("created_at", Kind::Ts, false),
    ("opted_out_at", Kind::Ts, true),
    ("_updated_at", Kind::Ts, false),
];

/// A stable hash of a text id (FNV-1a then SplitMix64's finaliser).
fn hash(s: &str, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// `true` for about `percent` % of ids.
fn share(id: &str, salt: u64, percent: u64) -> bool {
    hash(id, salt) % 1_000 < percent * 10
}

const REPLIES: [&str; 5] = ["Thanks!", "Love this 😍", "When does the sale end?", "Is the serum fragrance free?", "ok"];

/// One message of either direction, the source of a `fct_messages` and a `dim_messages` row.
pub struct Message<'a> {
    pub id: String,
    pub inbound: bool,
    pub subscriber_id: &'a str,
    pub at: DateTime<Utc>,
    pub text: String,
    pub send: Option<&'a SmsMessage>,
}

/// Outbound sends plus inbound replies: every STOP, and a short answer to about 1.5 % of the
/// other delivered sends (about 3 % of rows are inbound).
pub fn messages(p: &SmsProgram) -> Vec<Message<'_>> {
    let mut out: Vec<Message> = p
        .messages
        .iter()
        .map(|m| Message {
            id: m.send_id.clone(),
            inbound: false,
            subscriber_id: &m.subscriber_id,
            at: m.sent_at,
            text: m.body.clone(),
            send: Some(m),
        })
        .collect();
    for o in &p.opt_outs {
        let id = format!("msg_{:016x}", hash(o.send_id.as_deref().unwrap_or(&o.subscriber_id), 0x570));
        out.push(Message {
            id,
            inbound: true,
            subscriber_id: &o.subscriber_id,
            at: o.at,
            text: "STOP".into(),
            send: None,
        });
    }
    let stopped: std::collections::HashSet<&str> = p.opt_outs.iter().filter_map(|o| o.send_id.as_deref()).collect();
    for m in &p.messages {
        if m.failed || stopped.contains(m.send_id.as_str()) || !share(&m.send_id, 0x4E9, 2) {
            continue;
        }
        let h = hash(&m.send_id, 0x4E9);
        let at = m.sent_at + Duration::seconds(120 + (h >> 20) as i64 % 1_680);
        if at >= p.window.1 {
            continue;
        }
        let text = REPLIES[(h >> 40) as usize % REPLIES.len()].to_string();
        out.push(Message {
            id: format!("msg_{:016x}", hash(&m.send_id, 0x12E)),
            inbound: true,
            subscriber_id: &m.subscriber_id,
            at,
            text,
            send: None,
        });
    }
    out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    out
}

pub fn is_mms(m: &Message) -> bool {
    !m.inbound && share(&m.id, 0x3355, 5)
}

pub fn fct_messages(msgs: &[Message]) -> Vec<Row> {
    msgs.iter()
        .map(|m| {
            let updated = m.at + Duration::seconds(30);
            Row {
                at: updated,
                cells: vec![
                    Val::s(&m.id),
                    Val::s(if m.inbound { "inbound" } else { "outbound" }),
                    Val::s(m.subscriber_id),
                    Val::T(Some(m.at)),
                    Val::T(Some(updated)),
                ],
            }
        })
        .collect()
}

pub fn dim_messages(msgs: &[Message]) -> Vec<Row> {
    msgs.iter()
        .map(|m| {
            let failed = m.send.is_some_and(|s| s.failed);
            let failed_at = failed.then(|| m.at + Duration::seconds(4));
            let mms = is_mms(m);
            let (kind, name) = match m.send {
                None => ("inbound", None),
                Some(s) if s.source == SmsSource::Journey => ("automation", Some(s.source_name.clone())),
                Some(s) => ("campaign", Some(s.source_name.clone())),
            };
            let updated = failed_at.unwrap_or(m.at) + Duration::seconds(30);
            Row {
                at: updated,
                cells: vec![
                    Val::s(&m.id),
                    Val::s(format!("{}", 100_000_000_000 + hash(&m.id, 0x9D) % 900_000_000_000)),
                    Val::s(if m.inbound { "inbound" } else { "outbound" }),
                    Val::s(if mms { "MMS" } else { "SMS" }),
                    Val::B(Some(failed)),
                    Val::T(failed_at),
                    Val::s(&m.text),
                    Val::S(mms.then(|| format!("https://cdn.postscript.io/media/{:016x}.jpg", hash(&m.id, 0x3D)))),
                    Val::s(kind),
                    Val::S(name),
                    Val::T(Some(updated)),
                ],
            }
        })
        .collect()
}

/// Attribution rows as first pushed, and the late corrections (partial refunds: the amount cut by
/// 10–50 %, `_updated_at` a week or more later) of about 5 % of them (at least one).
pub fn fct_attribution(p: &SmsProgram) -> (Vec<Row>, Vec<Row>) {
    let customers: std::collections::HashMap<&str, Option<u64>> =
        p.subscribers.iter().map(|s| (s.subscriber_id.as_str(), s.shopify_customer_id)).collect();
    let mut first = Vec::new();
    let mut corrections = Vec::new();
    for (i, c) in p.conversions.iter().enumerate() {
        let id = format!("attr_{:016x}", hash(&c.order_id.to_string(), 0xA77));
        let row = |amount: i64, updated: DateTime<Utc>| Row {
            at: updated,
            cells: vec![
                Val::s(&id),
                Val::s(&c.send_id),
                Val::s(c.order_id.to_string()),
                Val::I(Some(amount)),
                Val::s(match c.attribution {
                    SmsAttribution::Click => "click",
                    SmsAttribution::View => "view",
                }),
                Val::B(Some(c.coupon_used)),
                Val::s(format!("shop_{:024x}", p.shop_id)),
                Val::s(&c.subscriber_id),
                Val::I(customers.get(c.subscriber_id.as_str()).copied().flatten().map(|v| v as i64)),
                Val::I(Some((c.order_created_at - c.action_at).num_minutes())),
                Val::T(Some(c.order_created_at)),
                Val::T(Some(updated)),
            ],
        };
        first.push(row(c.revenue_minor, c.order_created_at + Duration::minutes(10)));
        let h = hash(&id, 0xC0);
        let last_chance = i + 1 == p.conversions.len() && corrections.is_empty();
        if share(&id, 0xC0, 5) || last_chance {
            let cut = c.revenue_minor * (10 + (h >> 32) as i64 % 41) / 100;
            let later = c.order_created_at + Duration::days(7 + (h >> 8) as i64 % 14);
            corrections.push(row(c.revenue_minor - cut, later));
        }
    }
    (first, corrections)
}

pub fn fct_clicks(p: &SmsProgram) -> Vec<Row> {
    p.clicks
        .iter()
        .map(|c| {
            let updated = c.clicked_at + Duration::seconds(30);
            Row {
                at: updated,
                cells: vec![
                    Val::s(&c.click_id),
                    Val::s(&c.send_id),
                    Val::s(&c.subscriber_id),
                    Val::T(Some(c.clicked_at)),
                    Val::s(&c.url),
                    Val::T(Some(updated)),
                ],
            }
        })
        .collect()
}

pub fn subscribers(p: &SmsProgram) -> Vec<Row> {
    p.subscribers
        .iter()
        .map(|s| {
            let updated = s.opted_out_at.unwrap_or(s.opted_in_at);
            Row {
                at: updated,
                cells: vec![
                    Val::s(&s.subscriber_id),
                    Val::s(&s.phone),
                    Val::S(s.email.clone()),
                    Val::I(s.shopify_customer_id.map(|v| v as i64)),
                    Val::T(Some(s.opted_in_at)),
                    Val::T(s.opted_out_at),
                    Val::T(Some(updated)),
                ],
            }
        })
        .collect()
}
