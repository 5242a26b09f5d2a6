//! Lists and segments, synthesized deterministically from the shop and its profiles.
//!
//! The store has no groups, but campaigns target them and flows trigger from them, so the
//! fake derives a fixed set whose membership rules read only profile fields: `profile_count`
//! is then one pass over the profiles, done once per server.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::render::{hash64, rel_links, short_id, ts};
use crate::simulate::model::{ConsentState, SimProfile, SimShop};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    List,
    Segment,
}

/// Who belongs to a group.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    EmailSubscribed,
    SmsSubscribed,
    /// `hash(profile_id) % 100` in `[lo, hi)`.
    Hash(u64, u64),
    /// Linked to a Shopify customer (`external_id` set).
    Customer,
    /// Updated within the last 90 days before the server's first count.
    Engaged90,
    /// A customer not updated for 180 days.
    Lapsed,
    NeverPurchased,
    HoldoutBelow(u8),
    Suppressed,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub kind: Kind,
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// Lists only: `single_opt_in` or `double_opt_in`.
    pub opt_in_process: &'static str,
    rule: Rule,
}

impl Group {
    pub fn contains(&self, p: &SimProfile, now: DateTime<Utc>) -> bool {
        match self.rule {
            Rule::EmailSubscribed => p.email.is_some() && p.email_consent == ConsentState::Subscribed,
            Rule::SmsSubscribed => p.phone.is_some() && p.sms_consent == ConsentState::Subscribed,
            Rule::Hash(lo, hi) => (lo..hi).contains(&(hash64(&format!("group:{}", p.profile_id)) % 100)),
            Rule::Customer => p.external_id.is_some(),
            Rule::Engaged90 => p.updated_at >= now - Duration::days(90),
            Rule::Lapsed => p.external_id.is_some() && p.updated_at < now - Duration::days(180),
            Rule::NeverPurchased => p.external_id.is_none(),
            Rule::HoldoutBelow(n) => p.holdout_bucket < n,
            Rule::Suppressed => p.email_suppression.is_some(),
        }
    }

    /// A segment's `definition`, in Klaviyo's condition-group form.
    fn definition(&self) -> Value {
        let cond = match self.rule {
            Rule::Engaged90 => json!({
                "type": "profile-metric", "metric_id": null, "measurement": "count",
                "measurement_filter": {"type": "numeric", "operator": "greater-than", "value": 0},
                "timeframe_filter": {"type": "date", "operator": "in-the-last", "quantity": 90, "unit": "day"},
            }),
            Rule::Lapsed => json!({
                "type": "profile-metric", "metric_id": null, "measurement": "count",
                "measurement_filter": {"type": "numeric", "operator": "equals", "value": 0},
                "timeframe_filter": {"type": "date", "operator": "in-the-last", "quantity": 180, "unit": "day"},
            }),
            Rule::NeverPurchased => json!({
                "type": "profile-metric", "metric_id": null, "measurement": "count",
                "measurement_filter": {"type": "numeric", "operator": "equals", "value": 0},
                "timeframe_filter": {"type": "date", "operator": "alltime"},
            }),
            Rule::HoldoutBelow(n) => json!({
                "type": "profile-property", "property": "properties['holdout_bucket']",
                "filter": {"type": "numeric", "operator": "less-than", "value": n},
            }),
            Rule::Suppressed => json!({"type": "profile-suppression", "suppression": "any"}),
            _ => json!({"type": "profile-property", "property": "id", "filter": {"type": "existence"}}),
        };
        json!({"condition_groups": [{"conditions": [cond]}]})
    }
}

const LISTS: &[(&str, Rule, &str)] = &[
    ("Newsletter", Rule::EmailSubscribed, "double_opt_in"),
    ("SMS Subscribers", Rule::SmsSubscribed, "single_opt_in"),
    ("VIP", Rule::Hash(0, 5), "single_opt_in"),
    ("Shopify Customers", Rule::Customer, "single_opt_in"),
    ("Giveaway Entrants", Rule::Hash(20, 32), "single_opt_in"),
    ("Preview List", Rule::Hash(99, 100), "single_opt_in"),
];

const SEGMENTS: &[(&str, Rule)] = &[
    ("Engaged 90 days", Rule::Engaged90),
    ("Lapsed customers", Rule::Lapsed),
    ("Never purchased", Rule::NeverPurchased),
    ("Holdout test group", Rule::HoldoutBelow(10)),
    ("Suppressed profiles", Rule::Suppressed),
    ("Email subscribers", Rule::EmailSubscribed),
];

fn make(shop: &SimShop, kind: Kind, i: usize, name: &str, rule: Rule, opt_in: &'static str) -> Group {
    let start = shop.start_date.and_hms_opt(12, 0, 0).expect("noon exists").and_utc();
    let offset = if kind == Kind::List { 0 } else { 3 };
    let created = start - Duration::days(500 - 37 * (i as i64 + offset));
    let tag = if kind == Kind::List { "list" } else { "segment" };
    Group {
        kind,
        id: short_id(&format!("{tag}:{}:{name}", shop.shop_id)),
        name: name.to_string(),
        created,
        updated: created + Duration::days(30 + 61 * i as i64),
        opt_in_process: opt_in,
        rule,
    }
}

/// Every list, in a fixed order.
pub fn lists(shop: &SimShop) -> Vec<Group> {
    LISTS.iter().enumerate().map(|(i, (n, r, o))| make(shop, Kind::List, i, n, *r, o)).collect()
}

/// Every segment, in a fixed order.
pub fn segments(shop: &SimShop) -> Vec<Group> {
    SEGMENTS.iter().enumerate().map(|(i, (n, r))| make(shop, Kind::Segment, i, n, *r, "single_opt_in")).collect()
}

/// The list id campaigns and list-triggered flows use for a channel.
pub fn audience_list(shop: &SimShop, channel: &str) -> String {
    let name = if channel == "sms" { "SMS Subscribers" } else { "Newsletter" };
    lists(shop).into_iter().find(|g| g.name == name).map(|g| g.id).unwrap_or_default()
}

pub fn segment_id(shop: &SimShop, name: &str) -> String {
    segments(shop).into_iter().find(|g| g.name == name).map(|g| g.id).unwrap_or_default()
}

/// Members per group id, over every list and segment.
pub fn counts<'a>(
    shop: &SimShop,
    profiles: impl IntoIterator<Item = &'a SimProfile>,
    now: DateTime<Utc>,
) -> HashMap<String, u64> {
    let groups: Vec<Group> = lists(shop).into_iter().chain(segments(shop)).collect();
    let mut out: HashMap<String, u64> = groups.iter().map(|g| (g.id.clone(), 0)).collect();
    for p in profiles {
        for g in &groups {
            if g.contains(p, now) {
                *out.get_mut(&g.id).expect("every group is counted") += 1;
            }
        }
    }
    out
}

pub fn render(base: &str, g: &Group, profile_count: Option<u64>) -> Value {
    let (ty, path) = match g.kind {
        Kind::List => ("list", "lists"),
        Kind::Segment => ("segment", "segments"),
    };
    let self_path = format!("/api/{path}/{}/", g.id);
    let mut attrs = match g.kind {
        Kind::List => json!({
            "name": g.name,
            "created": ts(g.created),
            "updated": ts(g.updated),
            "opt_in_process": g.opt_in_process,
        }),
        Kind::Segment => json!({
            "name": g.name,
            "definition": g.definition(),
            "created": ts(g.created),
            "updated": ts(g.updated),
            "is_active": true,
            "is_processing": false,
            "is_starred": g.name == "Engaged 90 days",
        }),
    };
    if let Some(n) = profile_count {
        attrs["profile_count"] = json!(n);
    }
    json!({
        "type": ty,
        "id": g.id,
        "attributes": attrs,
        "relationships": {
            "profiles": rel_links(base, &self_path, "profiles"),
            "tags": rel_links(base, &self_path, "tags"),
            "flow-triggers": rel_links(base, &self_path, "flow-triggers"),
        },
        "links": {"self": format!("{base}{self_path}")},
    })
}
