//! The fake's records, derived from the simulated customers.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::simulate::model::{ConsentState, SimCustomer};
use crate::simulate::store::{Entity, SimStore};

/// One subscriber as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct PsSubscriber {
    pub id: String,
    pub customer_id: u64,
    pub phone: String,
    pub email: Option<String>,
    pub shopify_customer_id: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub promotional: bool,
    /// Pending subscribers (opt-in not confirmed) are neither listed nor fetchable.
    pub pending: bool,
}

impl PsSubscriber {
    fn from_customer(c: &SimCustomer) -> Option<Self> {
        let phone = c.phone.clone()?;
        if c.sms_marketing_consent == ConsentState::NeverSubscribed {
            return None;
        }
        let consented = c.sms_consent_updated_at.unwrap_or(c.created_at);
        // Older subscribers keep their v1 numeric id, which the API still accepts.
        let id = if c.customer_id % 10 == 3 {
            format!("{}", 700_000 + c.customer_id)
        } else {
            format!("s_{:024x}", c.customer_id.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        };
        Some(Self {
            id,
            customer_id: c.customer_id,
            phone,
            email: c.email.clone().filter(|_| !c.customer_id.is_multiple_of(4)),
            shopify_customer_id: (!c.customer_id.is_multiple_of(5)).then_some(c.customer_id),
            created_at: c.created_at.min(consented),
            updated_at: consented.max(c.created_at),
            promotional: c.sms_marketing_consent == ConsentState::Subscribed,
            pending: c.customer_id.is_multiple_of(37),
        })
    }

    /// The API's JSON: naive UTC timestamps, `properties` of mixed types.
    pub fn render(&self) -> Value {
        let t = |d: DateTime<Utc>| d.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
        json!({
            "id": self.id,
            "ps_id": 5_000_000 + self.customer_id,
            "phone_number": self.phone,
            "email": self.email,
            "shopify_customer_id": self.shopify_customer_id,
            "created_at": t(self.created_at),
            "updated_at": t(self.updated_at),
            "tags": if self.customer_id.is_multiple_of(3) { json!(["vip"]) } else { json!([]) },
            "properties": {"points": self.customer_id % 500, "birthday": "1990-04-01", "texting_ok": self.promotional},
            "subscriptions": {
                "promotional": {"can_send": self.promotional},
                "transactional": {"can_send": true}
            },
            "data": {}
        })
    }
}

/// Every subscriber of the brand (pending ones included), by customer id.
pub fn subscribers(store: &SimStore) -> std::io::Result<Vec<PsSubscriber>> {
    let customers: Vec<SimCustomer> = store.read_all(Entity::Customers)?;
    let mut out: Vec<PsSubscriber> = customers.iter().filter_map(PsSubscriber::from_customer).collect();
    out.sort_by_key(|s| s.customer_id);
    Ok(out)
}

/// The brand's active keywords.
pub fn keywords() -> Vec<Value> {
    ["JOIN", "VIP", "DEALS", "RESTOCK", "HELLO"]
        .iter()
        .enumerate()
        .map(|(i, k)| {
            json!({
                "id": format!("kw_{:020x}", 0xA11CE + i),
                "keyword": k,
                "triggered_count": 40 * (i + 1),
                "created_at": "2025-06-01T12:00:00.000000",
                "updated_at": "2026-07-15T09:30:00.000000"
            })
        })
        .collect()
}
