//! The brand's small, static parts: calendar, shop, products, metrics, flows and campaigns.
//!
//! Everything here is a pure function of the seed and of dates relative to `start_date`, and
//! anything dated after the horizon is left out, so a longer simulation only ever adds to it.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use rand::Rng;

use super::keyed;
use super::model::{SimCampaign, SimFlow, SimFlowMessage, SimMetric, SimProduct, SimShop, SimVariant};

/// The shop timezone: every local date, month bucket and send time uses it.
pub const SHOP_TZ: Tz = chrono_tz::America::New_York;
pub const SHOP_CURRENCY: &str = "USD";
pub const STORE_DOMAIN: &str = "fernhill-botanics.example.com";

/// Local calendar of the simulation.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Start of `start` in the shop timezone.
    pub start_utc: DateTime<Utc>,
    /// Last instant of `end` in the shop timezone: nothing later is written.
    pub horizon: DateTime<Utc>,
}

impl Calendar {
    pub fn new(start: NaiveDate, end: NaiveDate) -> Self {
        let start_utc = local(start, 0, 0, 0);
        let horizon = local(end + Duration::days(1), 0, 0, 0) - Duration::seconds(1);
        Self { start, end, start_utc, horizon }
    }

    /// Days since `start` (negative before it).
    pub fn day_index(&self, d: NaiveDate) -> i64 {
        (d - self.start).num_days()
    }

    pub fn day(&self, index: i64) -> NaiveDate {
        self.start + Duration::days(index)
    }

    pub fn days(&self) -> i64 {
        self.day_index(self.end) + 1
    }
}

/// A local wall-clock time in the shop timezone, as UTC (DST gaps resolve to the later side).
pub fn local(d: NaiveDate, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    let naive = d.and_time(NaiveTime::from_hms_opt(h, m, s).expect("valid time"));
    match SHOP_TZ.from_local_datetime(&naive) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        chrono::LocalResult::None => SHOP_TZ.from_utc_datetime(&(naive + Duration::hours(5))).with_timezone(&Utc),
    }
}

pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&SHOP_TZ).date_naive()
}

pub fn local_hour(t: DateTime<Utc>) -> u32 {
    t.with_timezone(&SHOP_TZ).hour()
}

/// `YYYY-MM` of `t` in the shop timezone.
pub fn month_key(t: DateTime<Utc>) -> String {
    let d = local_date(t);
    format!("{:04}-{:02}", d.year(), d.month())
}

fn black_friday(year: i32) -> NaiveDate {
    let nov1 = NaiveDate::from_ymd_opt(year, 11, 1).expect("date");
    let offset = (7 + Weekday::Thu.num_days_from_monday() as i64 - nov1.weekday().num_days_from_monday() as i64) % 7;
    nov1 + Duration::days(offset + 21 + 1)
}

/// Demand multiplier for a local date: Q4 ramp, a Black Friday–Cyber Monday spike, a January dip.
pub fn season(d: NaiveDate) -> f64 {
    let month = [0.8, 0.85, 0.95, 1.0, 1.08, 0.95, 0.9, 0.92, 0.97, 1.05, 1.3, 1.4][d.month0() as usize];
    let bf = black_friday(d.year());
    let from_bf = (d - bf).num_days();
    let spike = if (-1..=3).contains(&from_bf) {
        2.2 - 0.3 * from_bf.max(0) as f64
    } else if (-7..=10).contains(&from_bf) {
        0.4
    } else {
        0.0
    };
    let holidays = if d.month() == 12 && d.day() > 22 { -0.5 } else { 0.0 };
    let weekday = match d.weekday() {
        Weekday::Sat => 0.9,
        Weekday::Sun => 1.05,
        Weekday::Mon => 1.05,
        _ => 1.0,
    };
    ((month + spike + holidays) * weekday).max(0.2)
}

/// Whether `d` is in the Black Friday–Cyber Monday window (sale codes apply).
pub fn is_bfcm(d: NaiveDate) -> bool {
    (-1..=3).contains(&(d - black_friday(d.year())).num_days())
}

/// Local hour of day for shopping activity: evenings peak, nights are quiet.
pub fn draw_hour<R: Rng>(rng: &mut R) -> u32 {
    const W: [u32; 24] = [2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 9, 9, 8, 8, 8, 9, 11, 13, 14, 12, 8, 4];
    let total: u32 = W.iter().sum();
    let mut x = rng.random_range(0..total);
    for (h, w) in W.iter().enumerate() {
        if x < *w {
            return h as u32;
        }
        x -= w;
    }
    23
}

pub fn shop(seed: u64, cal: &Calendar) -> SimShop {
    SimShop {
        shop_id: 60_000_000_000 + seed % 1_000_000_000,
        name: "Fernhill Botanics".into(),
        myshopify_domain: "fernhill-botanics.myshopify.com".into(),
        iana_timezone: SHOP_TZ.name().into(),
        currency: SHOP_CURRENCY.into(),
        country: "US".into(),
        start_date: cal.start,
        end_date: cal.end,
    }
}

/// Catalogue: (title, product_type, consumable, popularity, [(variant, price, sku suffix)]).
type ProductSpec = (&'static str, &'static str, bool, u32, &'static [(&'static str, i64, &'static str)]);
const PRODUCTS: &[ProductSpec] = &[
    ("Daily Glow Serum", "Skincare", true, 16, &[("30 ml", 3800, "SER-30"), ("50 ml", 5600, "SER-50")]),
    ("Calm Night Cream", "Skincare", true, 11, &[("50 ml", 4200, "NCR-50")]),
    ("Gentle Foam Cleanser", "Skincare", true, 14, &[("150 ml", 2400, "CLN-150"), ("Refill 300 ml", 3900, "CLN-300R")]),
    ("Rosehip Face Oil", "Skincare", true, 8, &[("30 ml", 3200, "OIL-30")]),
    ("SPF 30 Day Fluid", "Skincare", true, 9, &[("50 ml", 2900, "SPF-50")]),
    ("Botanical Tea Sampler", "Tea", true, 10, &[("12 bags", 1800, "TEA-S12"), ("24 bags", 3200, "TEA-S24")]),
    ("Sleep Blend Loose Tea", "Tea", true, 7, &[("100 g", 2200, "TEA-SLP")]),
    ("Jade Facial Roller", "Tools", false, 6, &[("Green jade", 3400, "ROL-JAD"), ("Rose quartz", 3600, "ROL-RQZ")]),
    ("Bamboo Tea Infuser", "Accessories", false, 4, &[("Default Title", 1600, "INF-BAM")]),
    ("Travel Pouch", "Accessories", false, 4, &[("Sage", 1500, "PCH-SAG"), ("Sand", 1500, "PCH-SND")]),
    ("Ritual Gift Set", "Gift sets", false, 5, &[("Default Title", 8900, "GFT-RIT")]),
    ("Mystery Gift", "Gift", false, 0, &[("Default Title", 1200, "GFT-MYS")]),
];

/// Index of the free-gift product used by the `gift` offer.
pub const GIFT_PRODUCT: usize = 11;

pub fn products(seed: u64, cal: &Calendar) -> Vec<SimProduct> {
    PRODUCTS
        .iter()
        .enumerate()
        .map(|(i, (title, ptype, consumable, _, variants))| {
            let created_at = cal.start_utc - Duration::days(500 - 20 * i as i64);
            let variants = variants
                .iter()
                .enumerate()
                .map(|(j, (vtitle, price, sku))| {
                    let k = keyed::unit(seed, "variant-cost", &[i as u64, j as u64]);
                    // Roughly one variant in six never had a cost entered in Shopify.
                    let unit_cost_minor =
                        if k < 0.17 { None } else { Some((*price as f64 * (0.22 + 0.2 * k)).round() as i64) };
                    SimVariant {
                        variant_id: 44_100_000_000_000 + (i as u64) * 10 + j as u64,
                        inventory_item_id: 46_100_000_000_000 + (i as u64) * 10 + j as u64,
                        sku: format!("FH-{sku}"),
                        title: (*vtitle).into(),
                        price_minor: *price,
                        unit_cost_minor,
                    }
                })
                .collect();
            SimProduct {
                product_id: 8_100_000_000_000 + i as u64,
                title: (*title).into(),
                product_type: (*ptype).into(),
                is_consumable: *consumable,
                created_at,
                updated_at: created_at + Duration::days(30),
                variants,
            }
        })
        .collect()
}

/// Product popularity weights (same order as [`products`]).
pub fn product_weights() -> Vec<u32> {
    PRODUCTS.iter().map(|p| p.3).collect()
}

/// Every metric the account has. Indexes are [`M`] discriminants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum M {
    ReceivedEmail,
    OpenedEmail,
    ClickedEmail,
    BouncedEmail,
    DroppedEmail,
    MarkedSpam,
    Unsubscribed,
    UnsubscribedEmailMarketing,
    SubscribedEmailMarketing,
    SentSms,
    ReceivedSms,
    ClickedSms,
    FailedSms,
    UnsubscribedSms,
    SubscribedSms,
    ActiveOnSite,
    ViewedProduct,
    AddedToCart,
    StartedCheckout,
    PlacedOrder,
    OrderedProduct,
    RefundedOrder,
    FulfilledOrder,
    BackInStock,
    LoyaltyPoints,
}

pub const METRICS: &[(M, &str, Option<&str>)] = &[
    (M::ReceivedEmail, "Received Email", Some("Klaviyo")),
    (M::OpenedEmail, "Opened Email", Some("Klaviyo")),
    (M::ClickedEmail, "Clicked Email", Some("Klaviyo")),
    (M::BouncedEmail, "Bounced Email", Some("Klaviyo")),
    (M::DroppedEmail, "Dropped Email", Some("Klaviyo")),
    (M::MarkedSpam, "Marked Email as Spam", Some("Klaviyo")),
    (M::Unsubscribed, "Unsubscribed", Some("Klaviyo")),
    (M::UnsubscribedEmailMarketing, "Unsubscribed from Email Marketing", Some("Klaviyo")),
    (M::SubscribedEmailMarketing, "Subscribed to Email Marketing", Some("Klaviyo")),
    (M::SentSms, "Sent SMS", Some("Klaviyo")),
    (M::ReceivedSms, "Received SMS", Some("Klaviyo")),
    (M::ClickedSms, "Clicked SMS", Some("Klaviyo")),
    (M::FailedSms, "Failed to Deliver SMS", Some("Klaviyo")),
    (M::UnsubscribedSms, "Unsubscribed from SMS", Some("Klaviyo")),
    (M::SubscribedSms, "Subscribed to SMS Marketing", Some("Klaviyo")),
    (M::ActiveOnSite, "Active on Site", Some("API")),
    (M::ViewedProduct, "Viewed Product", Some("API")),
    (M::AddedToCart, "Added to Cart", Some("API")),
    (M::StartedCheckout, "Started Checkout", Some("Shopify")),
    (M::PlacedOrder, "Placed Order", Some("Shopify")),
    (M::OrderedProduct, "Ordered Product", Some("Shopify")),
    (M::RefundedOrder, "Refunded Order", Some("Shopify")),
    (M::FulfilledOrder, "Fulfilled Order", Some("Shopify")),
    (M::BackInStock, "Subscribed to Back in Stock", Some("Klaviyo")),
    (M::LoyaltyPoints, "Loyalty Points Earned", None),
];

pub fn metric_name(m: M) -> &'static str {
    METRICS[m as usize].1
}

/// Days after `start` when the account switched from the legacy `Unsubscribed` metric to
/// `Unsubscribed from Email Marketing` (both exist afterwards, as in real accounts).
pub const CONSENT_METRIC_SWITCH_DAY: i64 = 270;
/// Days after `start` when the custom loyalty program started sending its API metric.
pub const LOYALTY_LAUNCH_DAY: i64 = 180;

/// Metric records and ids (indexed by [`M`]); metrics created after the horizon are left out.
pub fn metrics(seed: u64, cal: &Calendar) -> (Vec<SimMetric>, Vec<String>) {
    let mut ids: Vec<String> = Vec::new();
    let mut records = Vec::new();
    for (i, (m, name, integration)) in METRICS.iter().enumerate() {
        let mut n = i as u64;
        let mut id = keyed::short_id(seed, "metric", n);
        while ids.contains(&id) {
            n += 1000;
            id = keyed::short_id(seed, "metric", n);
        }
        ids.push(id.clone());
        let created_at = match m {
            M::UnsubscribedEmailMarketing => cal.start_utc + Duration::days(CONSENT_METRIC_SWITCH_DAY),
            M::LoyaltyPoints => cal.start_utc + Duration::days(LOYALTY_LAUNCH_DAY),
            _ => cal.start_utc - Duration::days(600 - i as i64),
        };
        if created_at <= cal.horizon {
            records.push(SimMetric {
                metric_id: id,
                name: (*name).into(),
                integration: integration.map(String::from),
                created_at,
                updated_at: created_at,
            });
        }
    }
    (records, ids)
}

/// The simulated behaviour of a flow kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    WelcomeOld,
    Welcome,
    AbandonedCheckout,
    AbandonedCart,
    Browse,
    PostFirst,
    PostRepeat,
    CrossSell,
    Replenishment,
    Winback,
    Sunset,
    BackInStock,
    Review,
    Transactional,
    PriceDropDraft,
}

/// One flow: its record plus the causal parameters the simulation uses.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    pub kind: FlowKind,
    pub flow: SimFlow,
    pub lift: f64,
    pub window_days: u32,
    pub holdout_pct: u8,
    /// Baseline probability of an order inside the window for an average entrant.
    pub base: f64,
    /// Minimum days between two entries of one profile (`None`: enter once).
    pub cooldown_days: Option<i64>,
    /// Hours from trigger to the entry decision (the split sits right before the first message).
    pub entry_delay_hours: i64,
    /// Exits entrants who order after the trigger (the usual "placed order since starting" filter).
    pub exit_on_order: bool,
    /// Days after start the flow goes live / stops (archived) sending.
    pub live_from_day: i64,
    pub live_until_day: Option<i64>,
}

/// Days after start when the old welcome flow was replaced and archived.
pub const WELCOME_SWITCH_DAY: i64 = 75;

type StepSpec = (&'static str, u32, &'static str, Option<&'static str>);

#[allow(clippy::type_complexity)]
const FLOWS: &[(FlowKind, &str, &str, &str, Option<&str>, f64, u32, u8, f64, Option<i64>, i64, bool, &[StepSpec])] = &[
    (
        FlowKind::WelcomeOld,
        "Welcome Series (2023)",
        "welcome",
        "Added to List",
        None,
        0.25,
        14,
        0,
        0.06,
        None,
        0,
        false,
        &[
            ("email", 0, "Welcome 1", Some("Welcome to Fernhill")),
            ("email", 72, "Welcome 2", Some("Our botanical story")),
        ],
    ),
    (
        FlowKind::Welcome,
        "Welcome Series",
        "welcome",
        "Added to List",
        None,
        0.35,
        14,
        15,
        0.06,
        None,
        0,
        false,
        &[
            ("email", 0, "Welcome Email 1", Some("Welcome! Here is 10% off")),
            ("sms", 24, "Welcome SMS", None),
            ("email", 72, "Welcome Email 2", Some("Meet our bestsellers")),
            ("email", 168, "Welcome Email 3", Some("Your code expires soon")),
        ],
    ),
    (
        FlowKind::AbandonedCheckout,
        "Abandoned Checkout",
        "abandoned_checkout",
        "Metric",
        Some("Started Checkout"),
        0.45,
        7,
        10,
        0.08,
        Some(7),
        0,
        true,
        &[
            ("email", 1, "AC Email 1", Some("You left something behind")),
            ("sms", 3, "AC SMS", None),
            ("email", 24, "AC Email 2", Some("Still thinking it over?")),
        ],
    ),
    (
        FlowKind::AbandonedCart,
        "Abandoned Cart Reminder",
        "abandoned_cart",
        "Metric",
        Some("Added to Cart"),
        0.30,
        7,
        0,
        0.04,
        Some(7),
        0,
        true,
        &[
            ("email", 2, "Cart Email 1", Some("Your cart is waiting")),
            ("email", 26, "Cart Email 2", Some("Your cart misses you")),
        ],
    ),
    (
        FlowKind::Browse,
        "Browse Abandonment",
        "browse_abandonment",
        "Metric",
        Some("Viewed Product"),
        0.0,
        5,
        0,
        0.05,
        Some(10),
        0,
        true,
        &[
            ("email", 3, "Browse Email 1", Some("Still looking?")),
            ("email", 48, "Browse Email 2", Some("Picked for you")),
        ],
    ),
    (
        FlowKind::PostFirst,
        "Thank You - First Purchase",
        "post_purchase_first",
        "Metric",
        Some("Placed Order"),
        0.12,
        30,
        20,
        0.03,
        None,
        0,
        false,
        &[
            ("email", 72, "PP1 How to use", Some("Getting the most from your ritual")),
            ("email", 240, "PP1 Routine", Some("Build your routine")),
            ("sms", 336, "PP1 SMS", None),
        ],
    ),
    (
        FlowKind::PostRepeat,
        "Post Purchase - Repeat Buyers",
        "post_purchase_repeat",
        "Metric",
        Some("Placed Order"),
        0.06,
        30,
        0,
        0.04,
        Some(20),
        0,
        false,
        &[("email", 120, "PPR Thank you", Some("Thanks for coming back"))],
    ),
    (
        FlowKind::CrossSell,
        "Journey 7 (Q3 build)",
        "cross_sell",
        "Metric",
        Some("Placed Order"),
        0.10,
        21,
        0,
        0.03,
        Some(60),
        504,
        true,
        &[
            ("email", 0, "J7 Email A", Some("Pairs perfectly with your order")),
            ("email", 96, "J7 Email B", Some("Complete the set")),
        ],
    ),
    (
        FlowKind::Replenishment,
        "Refill Reminder",
        "replenishment",
        "Metric",
        Some("Placed Order"),
        0.30,
        14,
        10,
        0.045,
        Some(20),
        600,
        true,
        &[("email", 0, "Refill Email", Some("Running low?")), ("sms", 72, "Refill SMS", None)],
    ),
    (
        FlowKind::Winback,
        "Win-Back",
        "winback",
        "Metric",
        Some("Placed Order"),
        0.20,
        30,
        20,
        0.03,
        Some(90),
        2160,
        true,
        &[
            ("email", 0, "Winback 1", Some("We miss you")),
            ("email", 168, "Winback 2", Some("A little something for you")),
            ("sms", 240, "Winback SMS", None),
        ],
    ),
    (
        FlowKind::Sunset,
        "Sunset Unengaged",
        "sunset",
        "Added to List",
        None,
        0.05,
        14,
        0,
        0.01,
        None,
        0,
        false,
        &[
            ("email", 0, "Sunset 1", Some("Do you still want to hear from us?")),
            ("email", 72, "Sunset 2", Some("Last chance to stay subscribed")),
        ],
    ),
    (
        FlowKind::BackInStock,
        "Back in Stock Alert",
        "back_in_stock",
        "Metric",
        Some("Subscribed to Back in Stock"),
        0.50,
        7,
        0,
        0.10,
        Some(7),
        0,
        true,
        &[("email", 0, "BIS Email", Some("It's back!")), ("sms", 1, "BIS SMS", None)],
    ),
    (
        FlowKind::Review,
        "Review Request",
        "review_request",
        "Metric",
        Some("Fulfilled Order"),
        0.0,
        14,
        0,
        0.015,
        Some(30),
        168,
        false,
        &[
            ("email", 0, "Review Ask", Some("How are you liking it?")),
            ("email", 120, "Review Reminder", Some("A quick favour?")),
        ],
    ),
    (
        FlowKind::Transactional,
        "Order Confirmation",
        "transactional",
        "Metric",
        Some("Placed Order"),
        0.0,
        7,
        0,
        0.0,
        Some(0),
        0,
        false,
        &[("email", 0, "Order Confirmation", Some("Your order is confirmed"))],
    ),
    (
        FlowKind::PriceDropDraft,
        "Price Drop (draft)",
        "price_drop",
        "Price Drop",
        None,
        0.0,
        7,
        0,
        0.0,
        Some(7),
        0,
        true,
        &[("email", 0, "Price Drop Email", Some("Good news: it's on sale"))],
    ),
];

/// Every flow, with records as of the horizon (the old welcome flow is archived once replaced).
pub fn flows(seed: u64, cal: &Calendar) -> Vec<FlowSpec> {
    let mut used: Vec<String> = Vec::new();
    let mut fresh = |tag: &str, n: u64| {
        let mut k = n;
        loop {
            let id = keyed::short_id(seed, tag, k);
            if !used.contains(&id) {
                used.push(id.clone());
                return id;
            }
            k += 10_000;
        }
    };
    FLOWS
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (
                kind,
                name,
                ftype,
                trigger_type,
                trigger_metric,
                lift,
                window,
                holdout,
                base,
                cooldown,
                delay,
                exit,
                steps,
            ) = *f;
            let flow_id = fresh("flow", i as u64);
            let (live_from_day, live_until_day) = match kind {
                FlowKind::WelcomeOld => (-400, Some(WELCOME_SWITCH_DAY)),
                FlowKind::Welcome => (WELCOME_SWITCH_DAY, None),
                _ => (-300 + 10 * i as i64, None),
            };
            let created_at = cal.start_utc + Duration::days(live_from_day) - Duration::days(2);
            let archived =
                kind == FlowKind::WelcomeOld && cal.start_utc + Duration::days(WELCOME_SWITCH_DAY) <= cal.horizon;
            let updated_at = if archived {
                cal.start_utc + Duration::days(WELCOME_SWITCH_DAY)
            } else {
                created_at + Duration::days(2)
            };
            let status = match kind {
                FlowKind::PriceDropDraft => "draft",
                FlowKind::WelcomeOld if archived => "draft",
                _ => "live",
            };
            let messages = steps
                .iter()
                .enumerate()
                .map(|(j, (channel, delay, mname, subject))| SimFlowMessage {
                    message_id: fresh("flow-message", (i * 16 + j) as u64),
                    action_id: format!(
                        "{}",
                        80_000_000 + keyed::key(seed, "flow-action", &[i as u64, j as u64]) % 9_000_000
                    ),
                    flow_id: flow_id.clone(),
                    channel: (*channel).into(),
                    name: (*mname).into(),
                    subject: subject.map(String::from),
                    delay_hours: *delay,
                    created_at,
                    updated_at: created_at + Duration::days(1),
                })
                .collect();
            FlowSpec {
                kind,
                flow: SimFlow {
                    flow_id,
                    name: name.into(),
                    flow_type: ftype.into(),
                    status: status.into(),
                    archived,
                    trigger_type: trigger_type.into(),
                    trigger_metric: trigger_metric.map(String::from),
                    created_at,
                    updated_at,
                    messages,
                },
                lift,
                window_days: window,
                holdout_pct: holdout,
                base,
                cooldown_days: cooldown,
                entry_delay_hours: delay,
                exit_on_order: exit,
                live_from_day,
                live_until_day,
            }
        })
        .collect()
}

/// A campaign plus what the simulation needs to send it.
#[derive(Debug, Clone)]
pub struct CampaignSpec {
    pub campaign: SimCampaign,
    pub subject: Option<String>,
    /// Share of reachable profiles in its audience.
    pub audience: f64,
    /// Sale code a click may lead to.
    pub code: Option<&'static str>,
}

/// Campaigns sent by the horizon, ascending by send time. Each week draws its campaigns from
/// its own stream, so later weeks never change earlier ones.
pub fn campaigns(seed: u64, cal: &Calendar) -> Vec<CampaignSpec> {
    let mut out = Vec::new();
    let weeks = cal.days() / 7 + 1;
    for w in 0..weeks {
        let mut rng = keyed::rng(seed, "campaign-week", &[w as u64]);
        let monday = cal.day(w * 7);
        let s = season(monday + Duration::days(3));
        let bfcm = (0..7).any(|k| is_bfcm(monday + Duration::days(k)));
        let n_email = if bfcm {
            3
        } else if s > 1.25 {
            2
        } else {
            1
        };
        let n_sms = if bfcm {
            2
        } else if rng.random_bool(0.5) {
            1
        } else {
            0
        };
        for c in 0..(n_email + n_sms) {
            let channel = if c < n_email { "email" } else { "sms" };
            let day = monday + Duration::days([1, 3, 4, 5, 6][(c as usize) % 5]);
            let hour = if channel == "email" { [10, 18][rng.random_range(0..2)] } else { 12 };
            let send_at = local(day, hour, 0, 0);
            let created_at = send_at - Duration::hours(rng.random_range(20..150));
            let theme = if bfcm {
                ["BFCM Early Access", "Black Friday 25% Off", "Cyber Monday Last Call", "BFCM SMS"][(c as usize) % 4]
            } else {
                ["New Arrivals", "Routine Tips", "Bestsellers", "Tea Time", "Founder Note", "Seasonal Edit"]
                    [rng.random_range(0..6)]
            };
            let name = format!("{} {} {}", day.format("%Y-%m-%d"), theme, if channel == "sms" { "(SMS)" } else { "" })
                .trim_end()
                .to_string();
            let audience = if bfcm { 0.6 } else { rng.random_range(0.2..0.45) };
            let entropy = keyed::mix(keyed::key(seed, "campaign", &[w as u64, c as u64]));
            let campaign_id = keyed::ulid(created_at.timestamp_millis(), entropy, 1);
            let message_id = keyed::ulid(created_at.timestamp_millis(), entropy, 2);
            // A couple of email campaigns were deleted after sending: their events lose `$message`.
            let deleted = c == 0 && w % 29 == 7;
            let updated_at = send_at + Duration::minutes(rng.random_range(5..90));
            let spec = CampaignSpec {
                campaign: SimCampaign {
                    campaign_id,
                    message_id,
                    name: name.clone(),
                    channel: channel.into(),
                    send_at,
                    created_at,
                    updated_at,
                    deleted,
                },
                subject: (channel == "email").then(|| theme.to_string()),
                audience,
                code: bfcm.then_some("BFCM25"),
            };
            if send_at >= cal.start_utc && send_at <= cal.horizon {
                out.push(spec);
            }
        }
    }
    out.sort_by(|a, b| {
        a.campaign.send_at.cmp(&b.campaign.send_at).then(a.campaign.campaign_id.cmp(&b.campaign.campaign_id))
    });
    out
}
