//! The simulated brand's SMS program, vendor-neutral: what it texted its subscribers, who clicked,
//! who opted in or out, and which orders the SMS platform credited to a message.
//!
//! The brand migrated SMS platforms: it texts through Attentive from the start of the simulation
//! until 2025-10-31 and through Postscript from 2025-11-01 to the end ([`SmsPlatform::window`]).
//! One generator builds either platform's program; renderers turn it into each vendor's files
//! (`crate::fake::attentive::brand` for Attentive's SFTP feeds, `crate::fake::postscript::warehouse`
//! for Postscript's warehouse push), and [`SmsProgram::truth`] gives the counts and sums tests
//! compare landed and modeled figures with.
//!
//! Program: a "Welcome Series" journey (an opt-in inside the window, steps at +0 h and +24 h), a
//! "Post-Purchase Thank You" journey (each non-test, non-cancelled order of a subscriber's
//! customer, one step at +2 h) and a campaign on the first Thursday of each month at 17:00 UTC to
//! everyone subscribed at that instant. A subscriber receives only while subscribed. About 12 % of
//! sends are clicked (5–180 min later) and 1.5 % answered with STOP (1–60 min later, no click, no
//! further sends). On Postscript about 1 % of sends fail (no click, no reply, no credit).
//! Conversions are the platform's own attribution: an order is credited to the latest click in
//! the 5 days before it, else to the latest delivered send in the day before it.
//!
//! **The program causes nothing.** Every order already exists in the simulated brand, drawn
//! without regard to any text message; the program only lays sends and clicks next to them. Its
//! true incremental revenue is therefore zero, while the platform-reported revenue
//! ([`SmsProgramTruth::conversion_revenue_minor`]) is not: the demo's known answer for
//! "platform-reported revenue versus modeled lift".
//!
//! Randomness is keyed by `(seed, platform, customer id, ...)` so one subscriber's records never
//! depend on another's; there is no wall clock.

#[cfg(test)]
mod tests;
mod text;

use std::collections::{BTreeMap, HashMap};
use std::io;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use rand::Rng;

pub use text::{SmsEncoding, segments, slug};

use super::keyed;
use super::model::{ConsentState, SimCustomer, SimOrder, SimProduct, SimShop};
use super::store::{Entity, SimStore};

/// The day the brand's texting moved from Attentive to Postscript (00:00 UTC).
pub fn migration_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 11, 1).expect("valid date")
}

/// The SMS platform a program runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsPlatform {
    Attentive,
    Postscript,
}

impl SmsPlatform {
    /// Lower-case name, as in `utm_source`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Attentive => "attentive",
            Self::Postscript => "postscript",
        }
    }

    /// `[start, end)` of the platform's texting, clamped to the shop's simulated days (UTC
    /// midnights); empty (`start == end`) when the shop's days fall outside it.
    pub fn window(self, shop: &SimShop) -> (DateTime<Utc>, DateTime<Utc>) {
        let midnight = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"));
        let shop_start = midnight(shop.start_date);
        let shop_end = midnight(shop.end_date + chrono::Days::new(1));
        let cut = midnight(migration_day());
        let (start, end) = match self {
            Self::Attentive => (shop_start, cut.min(shop_end)),
            Self::Postscript => (cut.max(shop_start), shop_end),
        };
        (start, end.max(start))
    }

    fn code(self) -> u64 {
        match self {
            Self::Attentive => 1,
            Self::Postscript => 2,
        }
    }
}

/// One subscriber the program may text.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsSubscriberInput {
    pub subscriber_id: String,
    pub customer_id: u64,
    pub phone: String,
    pub email: Option<String>,
    /// The Shopify customer id the platform knows (Postscript lacks it for some subscribers).
    pub shopify_customer_id: Option<u64>,
    pub opted_in_at: DateTime<Utc>,
}

/// Attentive's subscribers: customers with a phone who ever gave SMS consent, with an id in
/// Attentive's numeric style.
pub fn attentive_subscribers(store: &SimStore) -> io::Result<Vec<SmsSubscriberInput>> {
    let customers: Vec<SimCustomer> = store.read_all(Entity::Customers)?;
    let mut out: Vec<SmsSubscriberInput> = customers
        .iter()
        .filter(|c| c.sms_marketing_consent != ConsentState::NeverSubscribed)
        .filter_map(|c| {
            Some(SmsSubscriberInput {
                subscriber_id: format!("{}", 900_000_000 + c.customer_id),
                customer_id: c.customer_id,
                phone: c.phone.clone()?,
                email: c.email.clone(),
                shopify_customer_id: Some(c.customer_id),
                opted_in_at: c.sms_consent_updated_at.unwrap_or(c.created_at),
            })
        })
        .collect();
    out.sort_by_key(|s| s.customer_id);
    Ok(out)
}

/// A journey and its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsJourney {
    pub journey_id: String,
    pub name: String,
    pub slug: String,
    pub steps: Vec<SmsJourneyStep>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmsJourneyStep {
    /// 1-based.
    pub step: u32,
    pub delay_hours: u32,
    /// Numeric message-template id (Attentive's feed `message_id`).
    pub template_id: String,
    pub body: String,
}

/// One monthly campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsCampaign {
    pub campaign_id: String,
    pub template_id: String,
    pub name: String,
    pub slug: String,
    pub send_at: DateTime<Utc>,
    pub body: String,
}

/// What a send belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsSource {
    Journey,
    Campaign,
}

/// One send (one text to one subscriber).
#[derive(Debug, Clone, PartialEq)]
pub struct SmsMessage {
    /// Unique per send (`msg_` + hex).
    pub send_id: String,
    /// The journey step's or campaign's template id: the same for every send of it.
    pub template_id: String,
    pub subscriber_id: String,
    pub customer_id: u64,
    pub sent_at: DateTime<Utc>,
    pub source: SmsSource,
    /// Journey or campaign id, name and slug.
    pub source_id: String,
    pub source_name: String,
    pub source_slug: String,
    /// Journey step (1-based); 1 for campaigns.
    pub step: u32,
    pub body: String,
    pub encoding: SmsEncoding,
    pub segments: u32,
    /// Not delivered (Postscript only): no click, reply or credit follows.
    pub failed: bool,
}

impl SmsMessage {
    /// `"{journey} - Message {step}"` for journeys, the campaign name for campaigns.
    pub fn message_name(&self) -> String {
        match self.source {
            SmsSource::Journey => format!("{} - Message {}", self.source_name, self.step),
            SmsSource::Campaign => self.source_name.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmsClick {
    pub click_id: String,
    pub send_id: String,
    pub subscriber_id: String,
    pub customer_id: u64,
    pub clicked_at: DateTime<Utc>,
    pub url: String,
}

/// An opt-in or opt-out.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsConsentEvent {
    pub subscriber_id: String,
    pub customer_id: u64,
    pub at: DateTime<Utc>,
    /// Opt-ins: how they joined (`CODE`, `CHECKOUT`, `DIRECT`, `DOUBLE_OPT_IN`); opt-outs: `STOP`.
    pub method: String,
    /// Opt-outs: the send the STOP answered.
    pub send_id: Option<String>,
}

/// Click or view-through credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsAttribution {
    Click,
    View,
}

impl SmsAttribution {
    /// `CLICK` / `VIEW`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Click => "CLICK",
            Self::View => "VIEW",
        }
    }

    pub fn window_days(self) -> u32 {
        match self {
            Self::Click => 5,
            Self::View => 1,
        }
    }
}

/// An order the platform credits to a message.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsConversion {
    pub order_id: u64,
    pub subscriber_id: String,
    pub customer_id: u64,
    pub send_id: String,
    pub template_id: String,
    pub attribution: SmsAttribution,
    /// The credited click or send.
    pub action_at: DateTime<Utc>,
    pub order_created_at: DateTime<Utc>,
    pub revenue_minor: i64,
    pub coupon_used: bool,
}

/// A subscriber as of the window's end.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsSubscriberState {
    pub subscriber_id: String,
    pub customer_id: u64,
    pub phone: String,
    pub email: Option<String>,
    pub shopify_customer_id: Option<u64>,
    pub opted_in_at: DateTime<Utc>,
    pub opted_out_at: Option<DateTime<Utc>>,
}

/// A platform's whole program over its window. Every list is sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsProgram {
    pub platform: SmsPlatform,
    pub window: (DateTime<Utc>, DateTime<Utc>),
    pub shop_id: u64,
    pub domain: String,
    pub currency: String,
    pub journeys: Vec<SmsJourney>,
    pub campaigns: Vec<SmsCampaign>,
    pub messages: Vec<SmsMessage>,
    pub clicks: Vec<SmsClick>,
    pub opt_ins: Vec<SmsConsentEvent>,
    pub opt_outs: Vec<SmsConsentEvent>,
    pub conversions: Vec<SmsConversion>,
    /// Subscribers who opted in before the window's end, by subscriber id.
    pub subscribers: Vec<SmsSubscriberState>,
}

/// The program's known answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SmsProgramTruth {
    pub subscribers: u64,
    /// Every send, failed ones included.
    pub sends: u64,
    pub failed_sends: u64,
    pub clicks: u64,
    pub opt_ins: u64,
    pub opt_outs: u64,
    pub conversions: u64,
    pub click_conversions: u64,
    pub view_conversions: u64,
    /// Platform-reported revenue: the credited orders' `total_minor`.
    pub conversion_revenue_minor: i64,
    /// What the program truly caused: always zero (see the module doc).
    pub incremental_revenue_minor: i64,
    pub segments_total: u64,
    /// Sends by journey name, campaigns under `"campaigns"`.
    pub sends_by_journey: BTreeMap<String, u64>,
    pub sends_by_campaign: BTreeMap<String, u64>,
    /// Credited revenue by journey name (campaigns under `"campaigns"`).
    pub revenue_by_journey: BTreeMap<String, i64>,
}

impl SmsProgram {
    pub fn truth(&self) -> SmsProgramTruth {
        let mut t = SmsProgramTruth {
            subscribers: self.subscribers.len() as u64,
            sends: self.messages.len() as u64,
            failed_sends: self.messages.iter().filter(|m| m.failed).count() as u64,
            clicks: self.clicks.len() as u64,
            opt_ins: self.opt_ins.len() as u64,
            opt_outs: self.opt_outs.len() as u64,
            conversions: self.conversions.len() as u64,
            segments_total: self.messages.iter().map(|m| u64::from(m.segments)).sum(),
            ..Default::default()
        };
        let group = |m: &SmsMessage| match m.source {
            SmsSource::Journey => m.source_name.clone(),
            SmsSource::Campaign => "campaigns".to_string(),
        };
        for m in &self.messages {
            *t.sends_by_journey.entry(group(m)).or_default() += 1;
            if m.source == SmsSource::Campaign {
                *t.sends_by_campaign.entry(m.source_name.clone()).or_default() += 1;
            }
        }
        let by_send: HashMap<&str, &SmsMessage> = self.messages.iter().map(|m| (m.send_id.as_str(), m)).collect();
        for c in &self.conversions {
            t.conversion_revenue_minor += c.revenue_minor;
            match c.attribution {
                SmsAttribution::Click => t.click_conversions += 1,
                SmsAttribution::View => t.view_conversions += 1,
            }
            *t.revenue_by_journey.entry(group(by_send[c.send_id.as_str()])).or_default() += c.revenue_minor;
        }
        t
    }

    /// The send with this id.
    pub fn message(&self, send_id: &str) -> Option<&SmsMessage> {
        self.messages.iter().find(|m| m.send_id == send_id)
    }
}

/// Everything the generator reads, so tests can build a program without a store.
#[derive(Debug, Clone, Copy)]
pub struct ProgramInput<'a> {
    pub seed: u64,
    pub platform: SmsPlatform,
    pub shop: &'a SimShop,
    pub orders: &'a [SimOrder],
    /// Product URL slugs clicks land on (at least one).
    pub product_slugs: &'a [String],
    pub subscribers: &'a [SmsSubscriberInput],
}

/// The program of `platform` over the brand in `store`, texting `subscribers`
/// ([`attentive_subscribers`] or the Postscript warehouse module's `postscript_subscribers`).
pub fn generate(store: &SimStore, platform: SmsPlatform, subscribers: &[SmsSubscriberInput]) -> io::Result<SmsProgram> {
    let seed = store.truth()?.seed;
    let shop = store.shop()?;
    let orders: Vec<SimOrder> = store.read_all(Entity::Orders)?;
    let products: Vec<SimProduct> = store.read_all(Entity::Products)?;
    let product_slugs: Vec<String> = products.iter().map(|p| slug(&p.title)).collect();
    Ok(build(&ProgramInput {
        seed,
        platform,
        shop: &shop,
        orders: &orders,
        product_slugs: &product_slugs,
        subscribers,
    }))
}

const WELCOME: &str = "Welcome Series";
const POST_PURCHASE: &str = "Post-Purchase Thank You";
const CLICK_RATE: f64 = 0.12;
const OPT_OUT_RATE: f64 = 0.015;
const FAIL_RATE: f64 = 0.01;
const JOIN_METHODS: [&str; 4] = ["CODE", "CHECKOUT", "DIRECT", "DOUBLE_OPT_IN"];

/// Builds the program (pure: the same input gives the same program).
pub fn build(input: &ProgramInput) -> SmsProgram {
    let (start, end) = input.platform.window(input.shop);
    let journeys = journeys(input.shop);
    let campaigns = campaigns(input.shop, start, end);
    let mut orders_by_customer: HashMap<u64, Vec<&SimOrder>> = HashMap::new();
    for o in input.orders {
        if let Some(c) = o.customer_id
            && counts(o)
            && o.created_at >= start
            && o.created_at < end
        {
            orders_by_customer.entry(c).or_default().push(o);
        }
    }
    for v in orders_by_customer.values_mut() {
        v.sort_by_key(|o| (o.created_at, o.order_id));
    }
    let mut p = SmsProgram {
        platform: input.platform,
        window: (start, end),
        shop_id: input.shop.shop_id,
        domain: input.shop.myshopify_domain.clone(),
        currency: input.shop.currency.clone(),
        journeys,
        campaigns,
        messages: Vec::new(),
        clicks: Vec::new(),
        opt_ins: Vec::new(),
        opt_outs: Vec::new(),
        conversions: Vec::new(),
        subscribers: Vec::new(),
    };
    let empty = Vec::new();
    for s in input.subscribers {
        if s.opted_in_at >= end {
            continue;
        }
        let orders = orders_by_customer.get(&s.customer_id).unwrap_or(&empty);
        subscriber_program(input, &mut p, s, orders);
    }
    p.messages.sort_by(|a, b| (a.sent_at, &a.send_id).cmp(&(b.sent_at, &b.send_id)));
    p.clicks.sort_by(|a, b| (a.clicked_at, &a.click_id).cmp(&(b.clicked_at, &b.click_id)));
    p.opt_ins.sort_by(|a, b| (a.at, &a.subscriber_id).cmp(&(b.at, &b.subscriber_id)));
    p.opt_outs.sort_by(|a, b| (a.at, &a.subscriber_id).cmp(&(b.at, &b.subscriber_id)));
    p.conversions.sort_by_key(|c| (c.order_created_at, c.order_id));
    p.subscribers.sort_by(|a, b| a.subscriber_id.cmp(&b.subscriber_id));
    p
}

/// Orders a platform would see as purchases: not test, not cancelled.
fn counts(o: &SimOrder) -> bool {
    !o.test && o.cancelled_at.is_none()
}

fn journeys(shop: &SimShop) -> Vec<SmsJourney> {
    let link = |s: &str| format!("https://{}/s/{s}", shop.myshopify_domain);
    let make = |i: usize, id: u64, name: &str, delays: &[u32]| SmsJourney {
        journey_id: format!("{id}"),
        name: name.to_string(),
        slug: slug(name),
        steps: delays
            .iter()
            .enumerate()
            .map(|(k, d)| {
                let step = k as u32 + 1;
                SmsJourneyStep {
                    step,
                    delay_hours: *d,
                    template_id: format!("{}", id * 100 + u64::from(step)),
                    body: text::journey_body(i, step, &shop.name, &link(&format!("{}{step}", slug(name)))),
                }
            })
            .collect(),
    };
    vec![make(0, 71_001, WELCOME, &[0, 24]), make(1, 71_002, POST_PURCHASE, &[2])]
}

/// First Thursday of each month at 17:00 UTC inside `[start, end)`.
fn campaigns(shop: &SimShop, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<SmsCampaign> {
    let mut out = Vec::new();
    let mut month = NaiveDate::from_ymd_opt(start.year(), start.month(), 1).expect("valid date");
    while Utc.from_utc_datetime(&month.and_hms_opt(0, 0, 0).expect("midnight")) < end {
        let thursday = (0..7)
            .map(|d| month + chrono::Days::new(d))
            .find(|d| d.weekday() == Weekday::Thu)
            .expect("a week has a Thursday");
        let at = Utc.from_utc_datetime(&thursday.and_hms_opt(17, 0, 0).expect("valid time"));
        if at >= start && at < end {
            let theme = text::CAMPAIGN_THEMES[month.month0() as usize];
            let name = format!("{theme} - {}", month.format("%b %Y"));
            let slug = slug(&name);
            let ym = u64::from(month.year() as u32) * 100 + u64::from(month.month());
            out.push(SmsCampaign {
                campaign_id: format!("{}", 7_300_000 + ym % 1_000_000),
                template_id: format!("{}", 72_000_000 + ym % 1_000_000),
                body: text::campaign_body(
                    month.month0(),
                    theme,
                    &shop.name,
                    &format!("https://{}/s/{slug}", shop.myshopify_domain),
                ),
                name,
                slug,
                send_at: at,
            });
        }
        month = month + chrono::Months::new(1);
    }
    out
}

/// A send the subscriber is due, before the consent check.
struct Due<'a> {
    at: DateTime<Utc>,
    source: SmsSource,
    id: &'a str,
    name: &'a str,
    slug: &'a str,
    step: u32,
    template_id: &'a str,
    body: &'a str,
}

fn subscriber_program(input: &ProgramInput, p: &mut SmsProgram, s: &SmsSubscriberInput, orders: &[&SimOrder]) {
    let (start, end) = p.window;
    let platform = input.platform;
    let mut rng = keyed::rng(input.seed, "sms_program", &[platform.code(), s.customer_id]);
    let id_base = keyed::key(input.seed, "sms_send", &[platform.code()]);
    let mut due: Vec<Due> = Vec::new();
    let journeys = &p.journeys;
    let mut opt_ins = Vec::new();
    if s.opted_in_at >= start {
        opt_ins.push(SmsConsentEvent {
            subscriber_id: s.subscriber_id.clone(),
            customer_id: s.customer_id,
            at: s.opted_in_at,
            method: JOIN_METHODS[rng.random_range(0..JOIN_METHODS.len())].to_string(),
            send_id: None,
        });
        let j = &journeys[0];
        for st in &j.steps {
            due.push(journey_due(j, st, s.opted_in_at + Duration::hours(i64::from(st.delay_hours))));
        }
    }
    let active_from = s.opted_in_at.max(start);
    let j = &journeys[1];
    for o in orders.iter().filter(|o| o.created_at >= active_from) {
        for st in &j.steps {
            due.push(journey_due(j, st, o.created_at + Duration::hours(i64::from(st.delay_hours))));
        }
    }
    for c in p.campaigns.iter().filter(|c| c.send_at >= s.opted_in_at) {
        due.push(Due {
            at: c.send_at,
            source: SmsSource::Campaign,
            id: &c.campaign_id,
            name: &c.name,
            slug: &c.slug,
            step: 1,
            template_id: &c.template_id,
            body: &c.body,
        });
    }
    due.sort_by_key(|d| (d.at, d.template_id.to_string()));

    let mut messages = Vec::new();
    let mut clicks = Vec::new();
    let mut opted_out: Option<SmsConsentEvent> = None;
    let mut last_sent: Option<DateTime<Utc>> = None;
    for d in due {
        // One send per subscriber per second at most, so (time, type, subscriber) stays a key.
        let at = match last_sent {
            Some(prev) if d.at <= prev => prev + Duration::seconds(1),
            _ => d.at,
        };
        if at >= end || opted_out.as_ref().is_some_and(|o| at >= o.at) {
            continue;
        }
        last_sent = Some(at);
        let n = messages.len() as u64;
        let send_id = format!("msg_{:016x}", keyed::mix((s.customer_id << 16 | n) ^ id_base));
        let failed = platform == SmsPlatform::Postscript && rng.random_bool(FAIL_RATE);
        let (encoding, segments) = segments(d.body);
        if !failed && rng.random_bool(OPT_OUT_RATE) {
            let out_at = at + Duration::seconds(rng.random_range(60..=3_600));
            if out_at < end {
                opted_out = Some(SmsConsentEvent {
                    subscriber_id: s.subscriber_id.clone(),
                    customer_id: s.customer_id,
                    at: out_at,
                    method: "STOP".into(),
                    send_id: Some(send_id.clone()),
                });
            }
        } else if !failed && rng.random_bool(CLICK_RATE) {
            let click_at = at + Duration::seconds(rng.random_range(300..=10_800));
            let product = &input.product_slugs[rng.random_range(0..input.product_slugs.len())];
            if click_at < end {
                clicks.push(SmsClick {
                    click_id: format!("clk_{:016x}", keyed::mix((s.customer_id << 16 | n) ^ id_base ^ 0xC1C4)),
                    send_id: send_id.clone(),
                    subscriber_id: s.subscriber_id.clone(),
                    customer_id: s.customer_id,
                    clicked_at: click_at,
                    url: format!(
                        "https://{}/products/{product}?utm_source={}&utm_medium=sms&utm_campaign={}",
                        p.domain,
                        platform.name(),
                        d.slug
                    ),
                });
            }
        }
        messages.push(SmsMessage {
            send_id,
            template_id: d.template_id.to_string(),
            subscriber_id: s.subscriber_id.clone(),
            customer_id: s.customer_id,
            sent_at: at,
            source: d.source,
            source_id: d.id.to_string(),
            source_name: d.name.to_string(),
            source_slug: d.slug.to_string(),
            step: d.step,
            body: d.body.to_string(),
            encoding,
            segments,
            failed,
        });
    }
    let conversions = credit(orders, &messages, &clicks, s);
    p.subscribers.push(SmsSubscriberState {
        subscriber_id: s.subscriber_id.clone(),
        customer_id: s.customer_id,
        phone: s.phone.clone(),
        email: s.email.clone(),
        shopify_customer_id: s.shopify_customer_id,
        opted_in_at: s.opted_in_at,
        opted_out_at: opted_out.as_ref().map(|o| o.at),
    });
    p.opt_ins.extend(opt_ins);
    p.opt_outs.extend(opted_out);
    p.messages.extend(messages);
    p.clicks.extend(clicks);
    p.conversions.extend(conversions);
}

fn journey_due<'a>(j: &'a SmsJourney, st: &'a SmsJourneyStep, at: DateTime<Utc>) -> Due<'a> {
    Due {
        at,
        source: SmsSource::Journey,
        id: &j.journey_id,
        name: &j.name,
        slug: &j.slug,
        step: st.step,
        template_id: &st.template_id,
        body: &st.body,
    }
}

/// The platform's credit for each order: latest click within 5 days, else latest delivered
/// send within 1 day; orders with neither are not credited.
fn credit(
    orders: &[&SimOrder],
    messages: &[SmsMessage],
    clicks: &[SmsClick],
    s: &SmsSubscriberInput,
) -> Vec<SmsConversion> {
    let mut out = Vec::new();
    for o in orders {
        let t = o.created_at;
        let click = clicks
            .iter()
            .filter(|c| c.clicked_at < t && c.clicked_at >= t - Duration::days(5))
            .max_by_key(|c| c.clicked_at)
            .map(|c| (SmsAttribution::Click, c.send_id.as_str(), c.clicked_at));
        let view = || {
            messages
                .iter()
                .filter(|m| !m.failed && m.sent_at < t && m.sent_at >= t - Duration::days(1))
                .max_by_key(|m| m.sent_at)
                .map(|m| (SmsAttribution::View, m.send_id.as_str(), m.sent_at))
        };
        let Some((attribution, send_id, action_at)) = click.or_else(view) else { continue };
        let m = messages.iter().find(|m| m.send_id == send_id).expect("credited send exists");
        out.push(SmsConversion {
            order_id: o.order_id,
            subscriber_id: s.subscriber_id.clone(),
            customer_id: s.customer_id,
            send_id: send_id.to_string(),
            template_id: m.template_id.clone(),
            attribution,
            action_at,
            order_created_at: t,
            revenue_minor: o.total_minor,
            coupon_used: !o.discount_codes.is_empty(),
        });
    }
    out
}
