//! The simulated brand's records, in vendor-neutral form.
//!
//! These are the *truth* the fake servers render into each vendor's wire format
//! (JSON:API for Klaviyo, GraphQL for Shopify, ...). Money is in minor units
//! (`*_minor`, cents of `currency`) so sums in tests are exact; timestamps are UTC.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The shop: one per simulated brand.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimShop {
    pub shop_id: u64,
    pub name: String,
    pub myshopify_domain: String,
    pub iana_timezone: String,
    pub currency: String,
    pub country: String,
    /// First and last simulated day (inclusive), in the shop timezone.
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
}

/// A Shopify buyer account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimCustomer {
    pub customer_id: u64,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub country: String,
    pub province: Option<String>,
    pub tags: Vec<String>,
    pub email_marketing_consent: ConsentState,
    pub email_consent_updated_at: Option<DateTime<Utc>>,
    pub sms_marketing_consent: ConsentState,
    pub sms_consent_updated_at: Option<DateTime<Utc>>,
    /// Shopify's lifetime counter; exceeds the orders we serve for left-censored customers.
    pub orders_count: u32,
    pub amount_spent_minor: i64,
    /// Acquisition channel the simulator drew (truth for `map_acquisition_channel` checks).
    pub acquisition_channel: String,
}

/// Marketing consent state, shared by email and SMS.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsentState {
    Subscribed,
    Unsubscribed,
    NeverSubscribed,
}

/// A product with its variants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimProduct {
    pub product_id: u64,
    pub title: String,
    pub product_type: String,
    pub is_consumable: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub variants: Vec<SimVariant>,
}

/// A sellable variant; `unit_cost_minor` is `None` where the brand never entered a cost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimVariant {
    pub variant_id: u64,
    pub inventory_item_id: u64,
    pub sku: String,
    pub title: String,
    pub price_minor: i64,
    pub unit_cost_minor: Option<i64>,
}

/// A Shopify order. Amounts are shop money in `currency`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimOrder {
    pub order_id: u64,
    pub name: String,
    /// `None` for guest checkouts of imported/old orders.
    pub customer_id: Option<u64>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub processed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// `paid`, `partially_refunded`, `refunded`, `voided`, `pending`.
    pub financial_status: String,
    pub test: bool,
    /// `web`, `pos`, `shopify_draft_order`, ...
    pub source_name: String,
    pub currency: String,
    pub presentment_currency: String,
    pub discount_codes: Vec<String>,
    /// First-order offer type the simulator drew: `none`, `percent_off`, `free_shipping`, `gift`.
    pub offer_type: String,
    pub subtotal_minor: i64,
    pub total_discount_minor: i64,
    pub shipping_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub landing_site: Option<String>,
    pub referring_site: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub lines: Vec<SimOrderLine>,
    pub refunds: Vec<SimRefund>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimOrderLine {
    pub line_id: u64,
    pub product_id: u64,
    pub variant_id: u64,
    pub sku: String,
    pub quantity: u32,
    pub price_minor: i64,
    pub discount_minor: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimRefund {
    pub refund_id: u64,
    pub created_at: DateTime<Utc>,
    pub lines: Vec<SimRefundLine>,
    pub amount_minor: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimRefundLine {
    pub line_id: u64,
    pub quantity: u32,
    pub subtotal_minor: i64,
}

/// A messaging profile (Klaviyo profile). `external_id` links to a Shopify customer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimProfile {
    /// 26-character ULID-style id.
    pub profile_id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub timezone: Option<String>,
    pub country: Option<String>,
    /// The random 0-99 profile property a flow's conditional split reads for holdouts.
    pub holdout_bucket: u8,
    pub email_consent: ConsentState,
    pub email_consent_at: Option<DateTime<Utc>>,
    pub sms_consent: ConsentState,
    pub sms_consent_at: Option<DateTime<Utc>>,
    /// Suppression reason (`HARD_BOUNCE`, `SPAM_COMPLAINT`, `UNSUBSCRIBE`, ...) when suppressed.
    pub email_suppression: Option<String>,
}

/// One consent change, the history behind a profile's current consent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimConsentChange {
    pub profile_id: String,
    /// `email` or `sms`.
    pub channel: String,
    pub at: DateTime<Utc>,
    pub state: ConsentState,
    pub method: String,
}

/// A metric (Klaviyo's event type).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimMetric {
    /// 6-character id.
    pub metric_id: String,
    pub name: String,
    /// `None` for custom API metrics.
    pub integration: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An automated, triggered sequence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimFlow {
    pub flow_id: String,
    pub name: String,
    /// Canonical lifecycle type (models.md 4.1), the truth for classification checks.
    pub flow_type: String,
    /// `live`, `draft`, `manual`.
    pub status: String,
    pub archived: bool,
    /// `Added to List`, `Metric`, `Date Based`, `Price Drop`, `Low Inventory`, `Unconfigured`.
    pub trigger_type: String,
    /// Metric name for metric-triggered flows.
    pub trigger_metric: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub messages: Vec<SimFlowMessage>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimFlowMessage {
    pub message_id: String,
    pub action_id: String,
    pub flow_id: String,
    /// `email` or `sms`.
    pub channel: String,
    pub name: String,
    pub subject: Option<String>,
    pub delay_hours: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A one-off scheduled send.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimCampaign {
    pub campaign_id: String,
    pub message_id: String,
    pub name: String,
    pub channel: String,
    pub send_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Deleted campaigns' events lack `$message`.
    pub deleted: bool,
}

/// One Klaviyo event: message events, site events and Shopify-integration events.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimEvent {
    pub event_id: String,
    pub metric_id: String,
    pub profile_id: String,
    pub datetime: DateTime<Utc>,
    /// `$value` in minor units, for revenue events.
    pub value_minor: Option<i64>,
    pub flow_id: Option<String>,
    /// Flow-message id or campaign message id (`$message`); `None` for deleted campaigns.
    pub message_id: Option<String>,
    pub campaign_id: Option<String>,
    pub order_id: Option<u64>,
    /// `$attributed_flow`/`$attributed_message` for Placed Order (platform last-touch).
    pub attributed_flow_id: Option<String>,
    pub attributed_message_id: Option<String>,
    /// Any further event properties, passed through verbatim.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The known causal effect of one flow, kept so modeled lift can be checked against it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlowTruth {
    pub flow_id: String,
    pub flow_type: String,
    /// Multiplicative lift on the purchase hazard inside the outcome window for treated entrants.
    pub purchase_lift: f64,
    pub outcome_window_days: u32,
    /// Share of entrants randomly held out (0 = no holdout), via `holdout_bucket < holdout_pct`.
    pub holdout_pct: u8,
    pub entries: u64,
    pub treated_entries: u64,
    /// Orders and revenue (minor units) caused by the flow: what would vanish without it.
    pub incremental_orders: u64,
    pub incremental_revenue_minor: i64,
    /// Incremental revenue per calendar month (`YYYY-MM`), shop timezone.
    pub incremental_revenue_by_month: std::collections::BTreeMap<String, i64>,
    /// The same by the month (`YYYY-MM`, shop timezone) of the entry that caused the order,
    /// the period a lift estimate reports it in.
    #[serde(default)]
    pub incremental_revenue_by_entry_month: std::collections::BTreeMap<String, i64>,
    /// Hours from the trigger to the entry decision (a time delay before the first split).
    #[serde(default)]
    pub entry_delay_hours: u32,
    /// Entrants who ordered between trigger and entry decision do not enter.
    #[serde(default)]
    pub exit_on_order: bool,
}

/// Totals the tests compare landed data with.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SimTotals {
    pub customers: u64,
    pub profiles: u64,
    pub orders: u64,
    pub test_orders: u64,
    pub cancelled_orders: u64,
    pub guest_orders: u64,
    pub order_lines: u64,
    pub refunds: u64,
    pub products: u64,
    pub variants: u64,
    pub flows: u64,
    pub campaigns: u64,
    pub metrics: u64,
    pub events: u64,
    /// Events by metric name.
    pub events_by_metric: std::collections::BTreeMap<String, u64>,
    /// Sum of `total_minor` over non-test orders.
    pub order_total_minor: i64,
    pub consent_changes: u64,
}

/// Everything the simulator knows that the APIs do not serve.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SimTruth {
    pub seed: u64,
    pub scale: u32,
    pub totals: SimTotals,
    pub flows: Vec<FlowTruth>,
    /// The operational incidents planted in the brand (what anomaly detection should find).
    #[serde(default)]
    pub incidents: Vec<Incident>,
}

/// An operational incident planted in the simulated brand, for the anomaly detection of the
/// monthly readout (models.md 4.14). Dates are local to the shop.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Incident {
    /// Every marketing email delivered on `date` carries an extra `share` chance that its
    /// recipient unsubscribes (a send to a stale, purchased or mis-targeted list).
    UnsubscribeSpike { date: NaiveDate, share: f64 },
    /// Flows of `flow_type` send nothing from `from` to `to` (inclusive) while their triggers keep
    /// firing (a flow filter broken by an edit, a rate limit hit on the platform).
    FlowSuppression { flow_type: String, from: NaiveDate, to: NaiveDate },
    /// Orders fail with probability `share` from `from` to `to` (a checkout or payment outage);
    /// a lost repeat purchase is tried again a few days later.
    ConversionDrop { from: NaiveDate, to: NaiveDate, share: f64 },
}

impl Incident {
    /// The incidents every simulated brand carries unless a test turns them off: three in
    /// October 2026, the demo's last month, a week apart.
    pub fn planted() -> Vec<Incident> {
        let d = |day| NaiveDate::from_ymd_opt(2026, 10, day).expect("valid date");
        vec![
            Incident::UnsubscribeSpike { date: d(6), share: 0.05 },
            Incident::FlowSuppression { flow_type: "abandoned_cart".into(), from: d(13), to: d(15) },
            Incident::ConversionDrop { from: d(20), to: d(21), share: 0.9 },
        ]
    }
}
