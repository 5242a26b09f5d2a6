//! One person's simulated life: arrival, browsing, orders, consent, messages and flow entries.
//!
//! Each person is simulated alone with a generator keyed by their identity and processes an
//! agenda of actions in time order. Nothing depends on the horizon except where processing
//! stops, so the records dated before any horizon are the same for every later horizon.
//!
//! Causal flow effects: when a trigger puts a profile into a flow, the entry is classified as
//! held out (`holdout_bucket < holdout_pct`), unreachable (no consent on any of the flow's
//! channels) or treated *before* the outcome is drawn. One uniform `u` is compared with the
//! baseline probability `p` and with `p × (1 + lift)`: `u < p` gives an order that happens in
//! any case, `p ≤ u < p × (1 + lift)` an order that exists only for treated entrants (the
//! incremental orders in [`super::model::FlowTruth`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, LogNormal};
use serde_json::{Map, Value, json};

use super::catalog::{self, Calendar, CampaignSpec, FlowKind, FlowSpec, M};
use super::keyed;
use super::model::{
    ConsentState, Incident, SimConsentChange, SimCustomer, SimEvent, SimOrder, SimOrderLine, SimProduct, SimProfile,
    SimRefund, SimRefundLine,
};

/// Baseline purchase probabilities are multiplied by this for profiles subscribed to email at
/// the time (mild confounding of consent with purchase intent).
pub const CONSENT_BASELINE_MULTIPLIER: f64 = 1.3;

/// Platform-style attribution window for a click before a Placed Order.
const ATTRIBUTION_DAYS: i64 = 5;
/// Orders processed before this many days after start were imported at that moment
/// (their `created_at` is the import time, as for migrated shops).
const IMPORT_DAY: i64 = 10;

/// Shared, read-only brand parts every person refers to.
pub struct World {
    pub seed: u64,
    pub cal: Calendar,
    pub products: Vec<SimProduct>,
    pub weights: Vec<u32>,
    pub metric_ids: Vec<String>,
    pub flows: Vec<FlowSpec>,
    pub campaigns: Vec<CampaignSpec>,
    /// See [`super::generate::Causal`].
    pub consent_confounding: f64,
    pub background_confounding: f64,
    pub consent_selection: f64,
    pub incidents: Vec<Incident>,
    event_salt: u64,
}

impl World {
    pub fn new(
        seed: u64,
        cal: Calendar,
        products: Vec<SimProduct>,
        metric_ids: Vec<String>,
        flows: Vec<FlowSpec>,
        campaigns: Vec<CampaignSpec>,
    ) -> Self {
        Self {
            seed,
            cal,
            products,
            weights: catalog::product_weights(),
            metric_ids,
            flows,
            campaigns,
            consent_confounding: CONSENT_BASELINE_MULTIPLIER,
            background_confounding: 1.0,
            consent_selection: 0.0,
            incidents: Vec::new(),
            event_salt: keyed::key(seed, "event-id", &[]),
        }
    }

    fn flow(&self, kind: FlowKind) -> usize {
        self.flows.iter().position(|f| f.kind == kind).expect("every kind has a flow")
    }

    /// The extra unsubscribe chance of a marketing email delivered on local date `d`.
    fn unsubscribe_spike(&self, d: NaiveDate) -> Option<f64> {
        self.incidents.iter().find_map(|i| match i {
            Incident::UnsubscribeSpike { date, share } if *date == d => Some(*share),
            _ => None,
        })
    }

    /// Whether flow `f` is suppressed (sends nothing) on local date `d`.
    fn flow_suppressed(&self, f: usize, d: NaiveDate) -> bool {
        self.incidents.iter().any(|i| {
            matches!(i, Incident::FlowSuppression { flow_type, from, to }
                if *flow_type == self.flows[f].flow.flow_type && *from <= d && d <= *to)
        })
    }

    /// The share of orders lost on local date `d`.
    fn order_loss(&self, d: NaiveDate) -> Option<f64> {
        self.incidents.iter().find_map(|i| match i {
            Incident::ConversionDrop { from, to, share } if *from <= d && d <= *to => Some(*share),
            _ => None,
        })
    }
}

/// Per-flow truth being accumulated.
#[derive(Debug, Clone, Default)]
pub struct FlowAcc {
    pub entries: u64,
    pub treated: u64,
    pub incremental_orders: u64,
    pub incremental_revenue: i64,
    pub by_month: BTreeMap<String, i64>,
    pub by_entry_month: BTreeMap<String, i64>,
}

/// How a person came to the brand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Buys on arrival.
    Buyer = 0,
    /// Signs up for email first; may buy later.
    Lead = 1,
    /// A customer from before the data window (left-censored).
    Legacy = 2,
    /// A guest checkout without a customer account.
    Guest = 3,
    /// Staff account placing test orders.
    Staff = 4,
}

/// A person's identity: arrival day (index from start), kind and ordinal within the day.
#[derive(Debug, Clone, Copy)]
pub struct PersonKey {
    pub day: i64,
    pub kind: Kind,
    pub ordinal: u64,
}

/// Second numbers (people who change phones) come from their own range of indices.
const SECOND_PHONE_OFFSET: u64 = 2_000_000_000;

/// A person's index into the phone space: unique while fewer than 20,000 people of one kind
/// arrive on one day (scale ~6,000).
fn phone_number_index(key: &PersonKey) -> u64 {
    ((key.day.max(0) as u64) * 8 + key.kind as u64) * 20_000 + key.ordinal % 20_000
}

/// Area codes N(0-8)X without N11.
static AREA_CODES: std::sync::LazyLock<Vec<u64>> =
    std::sync::LazyLock::new(|| (200..1000).filter(|a| (a / 10) % 10 != 9 && a % 100 != 11).collect());

/// A well-formed US number in E.164 (area code NXX with a middle digit 0-8, not N11; exchange
/// 200-999), distinct for every index below ~5.7 billion. Synthetic: nothing is ever sent.
pub fn synthetic_phone(index: u64) -> String {
    let line = index % 10_000;
    let exchange = 200 + (index / 10_000) % 800;
    let area_index = index / 8_000_000;
    let area = AREA_CODES[(area_index % AREA_CODES.len() as u64) as usize];
    format!("+1{area}{exchange:03}{line:04}")
}

impl PersonKey {
    /// Unique per person; ids of everything the person owns derive from it.
    pub fn seq(&self) -> u64 {
        (self.day.max(0) as u64) * 10_000_000 + (self.kind as u64) * 1_000_000 + self.ordinal
    }
}

/// Records of one person as of the horizon.
#[derive(Debug, Default)]
pub struct Output {
    pub customer: Option<SimCustomer>,
    pub profile: Option<SimProfile>,
    pub orders: Vec<SimOrder>,
    pub consent: Vec<SimConsentChange>,
    pub events: Vec<SimEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Session,
    BackgroundOrder,
    WindowOrder(u32),
    FlowEntry { flow: u16, trigger_ms: i64 },
    FlowSend { entry: u32, step: u8 },
    Campaign(u32),
    SunsetCheck,
    SunsetSuppress(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Arrival,
    Background,
    Window(u32),
}

#[derive(Debug, Clone, Copy)]
enum Msg {
    Flow { flow: usize, step: usize },
    Campaign(usize),
}

#[derive(Debug, Clone, Copy)]
struct Click {
    at: DateTime<Utc>,
    msg: Msg,
    channel_sms: bool,
}

struct Entry {
    flow: usize,
    at: DateTime<Utc>,
    treated: bool,
    incremental: bool,
    order: Option<usize>,
    delivered: Vec<(DateTime<Utc>, usize)>,
}

struct OrderRec {
    order: SimOrder,
    fulfilled_at: Option<DateTime<Utc>>,
}

const FIRST: &[&str] = &[
    "olivia",
    "liam",
    "emma",
    "noah",
    "ava",
    "elijah",
    "sophia",
    "james",
    "isabella",
    "lucas",
    "mia",
    "mason",
    "amelia",
    "ethan",
    "harper",
    "logan",
    "evelyn",
    "aiden",
    "abigail",
    "jackson",
    "emily",
    "sebastian",
    "ella",
    "mateo",
    "chloe",
    "henry",
    "grace",
    "leo",
    "zoe",
    "owen",
    "nora",
    "caleb",
    "lily",
    "jade",
    "maya",
    "priya",
    "sofia",
    "daniel",
    "hannah",
    "aria",
];
const LAST: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "nguyen",
    "hill",
    "flores",
    "green",
];
const US_STATES: &[(&str, &str)] = &[
    ("NY", "America/New_York"),
    ("CA", "America/Los_Angeles"),
    ("TX", "America/Chicago"),
    ("FL", "America/New_York"),
    ("IL", "America/Chicago"),
    ("WA", "America/Los_Angeles"),
    ("CO", "America/Denver"),
    ("MA", "America/New_York"),
    ("GA", "America/New_York"),
    ("AZ", "America/Phoenix"),
];
const CHANNELS: &[(&str, u32)] = &[
    ("paid_social", 30),
    ("organic_search", 18),
    ("paid_search", 15),
    ("direct", 17),
    ("referral", 6),
    ("influencer", 6),
    ("email", 8),
];

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).expect("in range")
}

fn minutes(m: i64) -> Duration {
    Duration::minutes(m)
}

struct Life<'w> {
    w: &'w World,
    key: PersonKey,
    seq: u64,
    rng: ChaCha8Rng,
    // identity
    first: String,
    last: String,
    email: Option<String>,
    shop_email: Option<String>,
    phone: Option<String>,
    country: &'static str,
    province: Option<&'static str>,
    tz: Option<&'static str>,
    channel: &'static str,
    bucket: u8,
    propensity: f64,
    engagement: f64,
    loyalty: f64,
    apple_mail: bool,
    bad_email: bool,
    // accounts
    profile_at: Option<DateTime<Utc>>,
    profile_id: String,
    customer_at: Option<DateTime<Utc>>,
    prior_orders: u32,
    prior_spent: i64,
    // consent (live state and history)
    email_state: ConsentState,
    sms_state: ConsentState,
    suppressed: bool,
    consent: Vec<SimConsentChange>,
    /// Customer-side consent when no profile exists: (channel is sms, at, state).
    customer_consent: Vec<(bool, DateTime<Utc>, ConsentState)>,
    suppressions: Vec<(DateTime<Utc>, &'static str)>,
    // activity
    orders: Vec<OrderRec>,
    order_sources: Vec<Source>,
    last_order_ms: i64,
    last_click: Option<Click>,
    last_engaged: DateTime<Utc>,
    last_email_received: Option<(DateTime<Utc>, Msg)>,
    sessions_active: bool,
    sunset_done: bool,
    entries: Vec<Entry>,
    last_entry: Vec<Option<DateTime<Utc>>>,
    agenda: BinaryHeap<Reverse<(i64, u64, Action)>>,
    pushed: u64,
    events: Vec<SimEvent>,
    event_counter: u64,
}

/// Simulates one person and returns their records as of the horizon.
pub fn simulate(w: &World, key: PersonKey, acc: &mut [FlowAcc]) -> Output {
    let mut life = Life::new(w, key);
    life.start();
    life.run(acc);
    life.finish(acc)
}

impl<'w> Life<'w> {
    fn new(w: &'w World, key: PersonKey) -> Self {
        let seq = key.seq();
        let mut rng = keyed::rng(w.seed, "person", &[seq]);
        let first = FIRST[rng.random_range(0..FIRST.len())].to_string();
        let last = LAST[rng.random_range(0..LAST.len())].to_string();
        let domain = ["example.com", "example.org", "example.net"][rng.random_range(0..3)];
        let email = format!("{first}.{last}.{seq}@{domain}");
        let phone = synthetic_phone(phone_number_index(&key));
        let r: f64 = rng.random();
        let (country, province, tz) = if r < 0.84 {
            let (st, tz) = US_STATES[rng.random_range(0..US_STATES.len())];
            ("US", Some(st), tz)
        } else if r < 0.92 {
            ("CA", Some(["ON", "BC", "QC"][rng.random_range(0..3)]), "America/Toronto")
        } else if r < 0.97 {
            ("GB", None, "Europe/London")
        } else {
            ("DE", None, "Europe/Berlin")
        };
        let tz = rng.random_bool(0.65).then_some(tz);
        let total: u32 = CHANNELS.iter().map(|c| c.1).sum();
        let mut x = rng.random_range(0..total);
        let mut channel = "direct";
        for (c, wt) in CHANNELS {
            if x < *wt {
                channel = c;
                break;
            }
            x -= wt;
        }
        let engagement = Gamma::new(2.0, 0.5).expect("valid").sample(&mut rng);
        let propensity = LogNormal::new(-0.125, 0.5).expect("valid").sample(&mut rng);
        let loyalty: f64 = rng.random::<f64>().powf(1.6);
        let apple_mail = rng.random_bool(0.35);
        let bad_email = rng.random_bool(0.012);
        let profile_entropy = keyed::mix(seq ^ keyed::key(w.seed, "profile-id", &[]));
        let n_flows = w.flows.len();
        Life {
            w,
            key,
            seq,
            rng,
            shop_email: None,
            email: Some(email),
            phone: Some(phone),
            first,
            last,
            country,
            province,
            tz,
            channel,
            bucket: (keyed::key(w.seed, "holdout-bucket", &[seq]) % 100) as u8,
            propensity,
            engagement,
            loyalty,
            apple_mail,
            bad_email,
            profile_at: None,
            profile_id: keyed::ulid(0, profile_entropy, (seq & 0xFFFF) as u16),
            customer_at: None,
            prior_orders: 0,
            prior_spent: 0,
            email_state: ConsentState::NeverSubscribed,
            sms_state: ConsentState::NeverSubscribed,
            suppressed: false,
            consent: Vec::new(),
            customer_consent: Vec::new(),
            suppressions: Vec::new(),
            orders: Vec::new(),
            order_sources: Vec::new(),
            last_order_ms: i64::MIN,
            last_click: None,
            last_engaged: w.cal.start_utc,
            last_email_received: None,
            sessions_active: false,
            sunset_done: false,
            entries: Vec::new(),
            last_entry: vec![None; n_flows],
            agenda: BinaryHeap::new(),
            pushed: 0,
            events: Vec::new(),
            event_counter: 0,
        }
    }

    fn push(&mut self, at: DateTime<Utc>, a: Action) {
        self.pushed += 1;
        self.agenda.push(Reverse((ms(at), self.pushed, a)));
    }

    fn arrival_time(&mut self) -> DateTime<Utc> {
        let d = self.w.cal.day(self.key.day);
        let h = catalog::draw_hour(&mut self.rng);
        catalog::local(d, h, self.rng.random_range(0..60), self.rng.random_range(0..60))
    }

    fn create_profile(&mut self, at: DateTime<Utc>) {
        if self.profile_at.is_none() {
            self.profile_at = Some(at);
            // Klaviyo profile ids start with the creation time, like ULIDs.
            let entropy = keyed::mix(self.seq ^ keyed::key(self.w.seed, "profile-id", &[]));
            self.profile_id = keyed::ulid(ms(at), entropy, (self.seq & 0xFFFF) as u16);
        }
    }

    fn start(&mut self) {
        let t0 = self.arrival_time();
        match self.key.kind {
            Kind::Buyer => {
                if self.rng.random_bool(0.03) {
                    self.email = None; // an SMS-only account
                }
                if self.rng.random_bool(0.55) {
                    self.phone = None;
                }
                if self.email.is_none() && self.phone.is_none() {
                    self.phone = Some(synthetic_phone(SECOND_PHONE_OFFSET + phone_number_index(&self.key)));
                }
                if self.rng.random_bool(0.92) {
                    self.create_profile(t0 - minutes(4));
                }
                self.checkout_consent(t0);
                self.place_order(t0, Source::Arrival);
            }
            Kind::Lead => {
                if self.rng.random_bool(0.75) {
                    self.phone = None;
                }
                self.channel = ["paid_social", "organic_search", "referral", "direct"][self.rng.random_range(0..4)];
                self.create_profile(t0);
                self.set_consent(false, t0, ConsentState::Subscribed, "Klaviyo Form");
                if self.phone.is_some() && self.rng.random_bool(0.7) {
                    self.set_consent(true, t0 + minutes(1), ConsentState::Subscribed, "Klaviyo Form");
                }
                let welcome = if self.key.day < catalog::WELCOME_SWITCH_DAY {
                    self.w.flow(FlowKind::WelcomeOld)
                } else {
                    self.w.flow(FlowKind::Welcome)
                };
                self.push(t0, Action::FlowEntry { flow: welcome as u16, trigger_ms: ms(t0) });
                if self.rng.random_bool(0.06) {
                    let gap = self.rng.random_range(5.0..240.0_f64);
                    self.push(t0 + Duration::minutes((gap * 1440.0) as i64), Action::BackgroundOrder);
                }
                self.start_sessions(t0);
            }
            Kind::Legacy => {
                if self.rng.random_bool(0.5) {
                    self.phone = None;
                }
                let created = self.w.cal.start_utc - Duration::days(self.rng.random_range(60..900));
                self.customer_at = Some(created);
                self.prior_orders = self.rng.random_range(1..7);
                self.prior_spent = i64::from(self.prior_orders) * self.rng.random_range(3000..7000);
                if self.rng.random_bool(0.95) {
                    self.create_profile(created + minutes(3));
                }
                if self.rng.random_bool(0.6) {
                    self.set_consent(false, created, ConsentState::Subscribed, "Shopify Checkout");
                }
                self.loyalty = self.loyalty.max(0.4);
                self.place_order(t0, Source::Arrival);
            }
            Kind::Guest => {
                let r: f64 = self.rng.random();
                self.phone = None;
                if r < 0.05 {
                    self.email = None;
                    self.phone = Some(synthetic_phone(SECOND_PHONE_OFFSET + phone_number_index(&self.key)));
                } else if r < 0.15 {
                    self.email = None;
                } else if self.rng.random_bool(0.6) {
                    self.create_profile(t0 - minutes(3));
                }
                self.place_order(t0, Source::Arrival);
            }
            Kind::Staff => {}
        }
        if let Some(p) = self.profile_at {
            let start = p.max(self.w.cal.start_utc);
            if let Some(i) = self.w.campaigns.iter().position(|c| c.campaign.send_at >= start) {
                let at = self.w.campaigns[i].campaign.send_at;
                self.push(at, Action::Campaign(i as u32));
            }
        }
    }

    /// Marketing consent given (or not) at checkout.
    fn checkout_consent(&mut self, at: DateTime<Utc>) {
        // Selection into consent: heavier buyers opt in more often when the brand is set so.
        let lean = self.propensity.powf(self.w.consent_selection);
        if self.email.is_some()
            && self.email_state != ConsentState::Subscribed
            && self.rng.random_bool((0.55 * lean).min(0.95))
        {
            self.set_consent(false, at, ConsentState::Subscribed, "Shopify Checkout");
        }
        if self.phone.is_some()
            && self.sms_state != ConsentState::Subscribed
            && self.rng.random_bool((0.4 * lean).min(0.95))
        {
            self.set_consent(true, at + Duration::seconds(2), ConsentState::Subscribed, "Shopify Checkout");
        }
    }

    fn set_consent(&mut self, sms: bool, at: DateTime<Utc>, state: ConsentState, method: &str) {
        if sms {
            self.sms_state = state;
        } else {
            self.email_state = state;
        }
        if self.profile_at.is_none() {
            self.customer_consent.push((sms, at, state));
            return;
        }
        self.consent.push(SimConsentChange {
            profile_id: self.profile_id.clone(),
            channel: if sms { "sms" } else { "email" }.into(),
            at,
            state,
            method: method.into(),
        });
        let metric = match (sms, state) {
            (false, ConsentState::Subscribed) => Some(M::SubscribedEmailMarketing),
            (true, ConsentState::Subscribed) => Some(M::SubscribedSms),
            (true, ConsentState::Unsubscribed) => Some(M::UnsubscribedSms),
            (false, ConsentState::Unsubscribed) => {
                let switch = self.w.cal.start_utc + Duration::days(catalog::CONSENT_METRIC_SWITCH_DAY);
                Some(if at < switch { M::Unsubscribed } else { M::UnsubscribedEmailMarketing })
            }
            _ => None,
        };
        if let Some(m) = metric
            && at >= self.w.cal.start_utc
        {
            let e = self.event(m, at);
            e.extra.insert("Method".into(), Value::from(method));
        }
        if !sms && state == ConsentState::Subscribed {
            let from = at.max(self.w.cal.start_utc);
            self.last_engaged = self.last_engaged.max(from);
            self.push(from + Duration::days(150), Action::SunsetCheck);
        }
    }

    fn email_reachable(&self) -> bool {
        self.email.is_some() && self.email_state == ConsentState::Subscribed && !self.suppressed
    }

    fn sms_reachable(&self) -> bool {
        self.phone.is_some() && self.sms_state == ConsentState::Subscribed
    }

    fn event(&mut self, m: M, at: DateTime<Utc>) -> &mut SimEvent {
        let n = (self.seq << 20) | (self.event_counter & 0xF_FFFF);
        self.event_counter += 1;
        let id = keyed::base62(keyed::mix(n) ^ self.w.event_salt, 11);
        self.events.push(SimEvent {
            event_id: id,
            metric_id: self.w.metric_ids[m as usize].clone(),
            profile_id: self.profile_id.clone(),
            datetime: at,
            value_minor: None,
            flow_id: None,
            message_id: None,
            campaign_id: None,
            order_id: None,
            attributed_flow_id: None,
            attributed_message_id: None,
            extra: Map::new(),
        });
        self.events.last_mut().expect("just pushed")
    }

    /// A message event tagged with its flow or campaign.
    fn msg_event(&mut self, m: M, at: DateTime<Utc>, msg: Msg) -> &mut SimEvent {
        let w = self.w;
        let e = self.event(m, at);
        match msg {
            Msg::Flow { flow, step } => {
                let f = &w.flows[flow].flow;
                e.flow_id = Some(f.flow_id.clone());
                e.message_id = Some(f.messages[step].message_id.clone());
                if let Some(s) = &f.messages[step].subject {
                    e.extra.insert("Subject".into(), Value::from(s.as_str()));
                }
            }
            Msg::Campaign(i) => {
                let c = &w.campaigns[i];
                e.campaign_id = Some(c.campaign.campaign_id.clone());
                if !c.campaign.deleted {
                    e.message_id = Some(c.campaign.message_id.clone());
                }
                e.extra.insert("Campaign Name".into(), Value::from(c.campaign.name.as_str()));
                if let Some(s) = &c.subject {
                    e.extra.insert("Subject".into(), Value::from(s.as_str()));
                }
            }
        }
        e
    }

    fn start_sessions(&mut self, from: DateTime<Utc>) {
        if !self.sessions_active {
            self.sessions_active = true;
            let gap = self.session_gap();
            self.push(from + gap, Action::Session);
        }
    }

    fn session_gap(&mut self) -> Duration {
        let mean_days = 50.0 / self.engagement.max(0.15);
        let u: f64 = self.rng.random::<f64>().max(1e-9);
        Duration::minutes((-u.ln() * mean_days * 1440.0) as i64 + 30)
    }

    fn run(&mut self, acc: &mut [FlowAcc]) {
        let horizon = ms(self.w.cal.horizon);
        while let Some(Reverse((t, _, action))) = self.agenda.pop() {
            if t > horizon {
                break;
            }
            let now = at_ms(t);
            match action {
                Action::Session => self.session(now),
                Action::BackgroundOrder => {
                    let d = catalog::local_date(now);
                    // Seasonal thinning: a repeat purchase drawn into a slow month may slip.
                    if self.rng.random::<f64>() < catalog::season(d) / 1.6 || self.rng.random_bool(0.3) {
                        self.place_order(now, Source::Background);
                    } else {
                        let gap = Duration::days(self.rng.random_range(7..40));
                        self.push(now + gap, Action::BackgroundOrder);
                    }
                }
                Action::WindowOrder(i) => self.window_order(now, i as usize),
                Action::FlowEntry { flow, trigger_ms } => self.flow_entry(now, flow as usize, trigger_ms, acc),
                Action::FlowSend { entry, step } => self.flow_send(now, entry as usize, step as usize),
                Action::Campaign(i) => self.campaign(now, i as usize),
                Action::SunsetCheck => self.sunset_check(now),
                Action::SunsetSuppress(i) => {
                    let e = &self.entries[i as usize];
                    if self.last_engaged < e.at && self.email_reachable() {
                        self.suppressed = true;
                        self.suppressions.push((now, "USER_SUPPRESSED"));
                    }
                }
            }
        }
    }

    fn pick_product(&mut self) -> usize {
        let total: u32 = self.w.weights.iter().sum();
        let mut x = self.rng.random_range(0..total);
        for (i, wt) in self.w.weights.iter().enumerate() {
            if x < *wt {
                return i;
            }
            x -= wt;
        }
        0
    }

    fn session(&mut self, now: DateTime<Utc>) {
        let w = self.w;
        let p = self.pick_product();
        let product = &w.products[p];
        let url =
            format!("https://{}/products/{}", catalog::STORE_DOMAIN, product.title.to_lowercase().replace(' ', "-"));
        let pid = product.product_id;
        let title = product.title.clone();
        let price = product.variants[0].price_minor;
        self.event(M::ActiveOnSite, now).extra.insert("page".into(), Value::from(url.as_str()));
        let views = self.rng.random_range(1..4);
        for v in 0..views {
            let e = self.event(M::ViewedProduct, now + minutes(1 + 2 * v));
            e.extra.insert("ProductID".into(), Value::from(pid));
            e.extra.insert("ProductName".into(), Value::from(title.as_str()));
            e.extra.insert("URL".into(), Value::from(url.as_str()));
        }
        let r: f64 = self.rng.random();
        let (flow, at) = if r < 0.2 {
            let at = now + minutes(12);
            self.event(M::AddedToCart, now + minutes(8)).value_minor = Some(price);
            let e = self.event(M::StartedCheckout, at);
            e.value_minor = Some(price);
            (FlowKind::AbandonedCheckout, at)
        } else if r < 0.45 {
            let at = now + minutes(8);
            let e = self.event(M::AddedToCart, at);
            e.value_minor = Some(price);
            e.extra.insert("AddedItemProductID".into(), Value::from(pid));
            (FlowKind::AbandonedCart, at)
        } else {
            (FlowKind::Browse, now + minutes(2 * views))
        };
        let f = w.flow(flow);
        self.push(at, Action::FlowEntry { flow: f as u16, trigger_ms: ms(at) });
        if flow == FlowKind::Browse && self.rng.random_bool(0.04) {
            let e = self.event(M::BackInStock, at + minutes(1));
            e.extra.insert("ProductID".into(), Value::from(pid));
            let restock = at + Duration::hours(self.rng.random_range(48..480));
            let f = w.flow(FlowKind::BackInStock);
            self.push(restock, Action::FlowEntry { flow: f as u16, trigger_ms: ms(restock) });
        }
        if self.rng.random_bool(0.65) {
            let gap = self.session_gap();
            self.push(now + gap, Action::Session);
        } else {
            self.sessions_active = false;
        }
    }

    fn flow_entry(&mut self, now: DateTime<Utc>, f: usize, trigger_ms: i64, acc: &mut [FlowAcc]) {
        let w = self.w;
        let spec = &w.flows[f];
        let day = w.cal.day_index(catalog::local_date(now));
        if spec.flow.status == "draft" && spec.kind == FlowKind::PriceDropDraft {
            // Draft flows never send.
            return;
        }
        // A flow that is off still sees its trigger: the purchases that would happen anyway are
        // drawn all the same (what a before/after comparison relies on), nothing is sent.
        let live = !(day < spec.live_from_day || spec.live_until_day.is_some_and(|u| day >= u));
        if self.profile_at.is_none_or(|p| p > now) {
            return;
        }
        if spec.exit_on_order && self.last_order_ms > trigger_ms {
            return;
        }
        if let Some(last) = self.last_entry[f] {
            match spec.cooldown_days {
                None => return,
                Some(c) if now - last < Duration::days(c) => return,
                _ => {}
            }
        }
        if spec.kind == FlowKind::Sunset && live {
            self.sunset_done = true;
        }
        self.last_entry[f] = Some(now);
        if live {
            acc[f].entries += 1;
        }
        let held_out = self.bucket < spec.holdout_pct;
        let transactional = spec.kind == FlowKind::Transactional;
        let reachable = spec.flow.messages.iter().any(|m| {
            if m.channel == "sms" {
                self.sms_reachable()
            } else if transactional {
                self.email.is_some() && !self.suppressed
            } else {
                self.email_reachable()
            }
        });
        let suppressed = w.flow_suppressed(f, catalog::local_date(now));
        let treated = live && !held_out && reachable && !suppressed;
        if treated {
            acc[f].treated += 1;
        }
        // The outcome is drawn after treatment is fixed, with the same draws whatever it is.
        let consent_mult = if self.email_state == ConsentState::Subscribed { w.consent_confounding } else { 1.0 };
        let p =
            (spec.base * self.propensity * consent_mult * catalog::season(catalog::local_date(now)).sqrt()).min(0.9);
        let p_treated = (p * (1.0 + spec.lift)).min(0.95);
        let u: f64 = self.rng.random();
        let u2: f64 = self.rng.random();
        let window_h = f64::from(spec.window_days) * 24.0;
        let first_delay = f64::from(spec.flow.messages[0].delay_hours);
        let (order_offset_h, incremental) = if u < p {
            (Some(window_h * u2.powf(1.6)), false)
        } else if treated && u < p_treated {
            (Some(first_delay + 0.2 + (window_h - first_delay - 0.2) * u2.powf(1.3)), true)
        } else {
            (None, false)
        };
        let idx = self.entries.len();
        self.entries.push(Entry { flow: f, at: now, treated, incremental, order: None, delivered: Vec::new() });
        if let Some(h) = order_offset_h {
            self.push(now + Duration::seconds((h * 3600.0) as i64 + 60), Action::WindowOrder(idx as u32));
        }
        if treated {
            for (j, m) in spec.flow.messages.iter().enumerate() {
                let jitter = Duration::seconds(self.rng.random_range(5..300));
                self.push(
                    now + Duration::hours(i64::from(m.delay_hours)) + jitter,
                    Action::FlowSend { entry: idx as u32, step: j as u8 },
                );
            }
            if spec.kind == FlowKind::Sunset {
                let last = spec.flow.messages.last().map_or(0, |m| m.delay_hours);
                self.push(
                    now + Duration::hours(i64::from(last)) + Duration::days(7),
                    Action::SunsetSuppress(idx as u32),
                );
            }
        }
    }

    fn flow_send(&mut self, now: DateTime<Utc>, entry: usize, step: usize) {
        let w = self.w;
        let f = self.entries[entry].flow;
        let spec = &w.flows[f];
        if spec.exit_on_order && self.last_order_ms > ms(self.entries[entry].at) {
            return;
        }
        if w.flow_suppressed(f, catalog::local_date(now)) {
            return;
        }
        let transactional = spec.kind == FlowKind::Transactional;
        let msg = Msg::Flow { flow: f, step };
        let delivered = if spec.flow.messages[step].channel == "sms" {
            self.sms_reachable() && self.send_sms(now, msg)
        } else if transactional {
            self.email.is_some() && !self.suppressed && self.send_email(now, msg, true)
        } else {
            self.email_reachable() && self.send_email(now, msg, false)
        };
        if delivered {
            self.entries[entry].delivered.push((now, step));
        }
    }

    fn window_order(&mut self, now: DateTime<Utc>, entry: usize) {
        let (treated, incremental, flow) = {
            let e = &self.entries[entry];
            (e.treated, e.incremental, e.flow)
        };
        // Buyers who would buy anyway often come back through the message they got: the
        // reason platform last-click credit overstates what a flow causes.
        let last = self.entries[entry].delivered.iter().rev().find(|(t, _)| *t < now - minutes(2)).copied();
        if treated
            && let Some((sent, step)) = last
            && self.rng.random_bool(if incremental { 0.85 } else { 0.6 })
        {
            let back = minutes(self.rng.random_range(3..45));
            let at = (now - back).max(sent + minutes(1));
            let msg = Msg::Flow { flow, step };
            let sms = self.w.flows[flow].flow.messages[step].channel == "sms";
            let e = self.msg_event(if sms { M::ClickedSms } else { M::ClickedEmail }, at, msg);
            e.extra.insert("URL".into(), Value::from(format!("https://{}/", catalog::STORE_DOMAIN)));
            self.last_click = Some(Click { at, msg, channel_sms: sms });
            self.last_engaged = self.last_engaged.max(at);
        }
        let idx = self.place_order(now, Source::Window(entry as u32));
        self.entries[entry].order = idx;
    }

    fn campaign(&mut self, now: DateTime<Utc>, i: usize) {
        let w = self.w;
        if let Some(next) = w.campaigns.get(i + 1) {
            self.push(next.campaign.send_at, Action::Campaign(i as u32 + 1));
        }
        let c = &w.campaigns[i];
        let aud = keyed::unit(w.seed, "audience", &[i as u64, self.seq]);
        let engaged = now - self.last_engaged < Duration::days(90);
        let share = (c.audience * if engaged { 1.2 } else { 0.45 }).min(1.0);
        let at = now + Duration::seconds(self.rng.random_range(0..1200));
        if c.campaign.channel == "sms" {
            if self.sms_reachable() && aud < share + 0.2 {
                self.send_sms(at, Msg::Campaign(i));
            }
        } else if self.email_reachable() {
            if aud < share {
                self.send_email(at, Msg::Campaign(i), false);
            }
        } else if self.email.is_some() && self.suppressed && aud < share * 0.1 {
            self.msg_event(M::DroppedEmail, at, Msg::Campaign(i));
        }
    }

    fn sunset_check(&mut self, now: DateTime<Utc>) {
        if self.sunset_done || !self.email_reachable() {
            return;
        }
        if now - self.last_engaged >= Duration::days(150) {
            let f = self.w.flow(FlowKind::Sunset);
            self.push(now, Action::FlowEntry { flow: f as u16, trigger_ms: ms(now) });
        } else {
            self.push(self.last_engaged + Duration::days(150), Action::SunsetCheck);
        }
    }

    fn send_email(&mut self, at: DateTime<Utc>, msg: Msg, transactional: bool) -> bool {
        if self.bad_email {
            self.msg_event(M::BouncedEmail, at, msg).extra.insert("Bounce Type".into(), Value::from("hard"));
            self.suppressed = true;
            self.suppressions.push((at, "HARD_BOUNCE"));
            return false;
        }
        if self.rng.random_bool(0.004) {
            self.msg_event(M::BouncedEmail, at, msg).extra.insert("Bounce Type".into(), Value::from("soft"));
            return false;
        }
        self.msg_event(M::ReceivedEmail, at, msg);
        self.last_email_received = Some((at, msg));
        if self.apple_mail && self.rng.random_bool(0.9) {
            let t = at + Duration::seconds(self.rng.random_range(30..600));
            let e = self.msg_event(M::OpenedEmail, t, msg);
            e.extra.insert("$machine_open".into(), Value::from(true));
            e.extra.insert("Client Name".into(), Value::from("Apple Mail"));
        }
        let p_open = if transactional { 0.6 } else { (0.08 + 0.15 * self.engagement).min(0.6) };
        let mut opened_at = None;
        if self.rng.random_bool(p_open) {
            let delay = LogNormal::new(4.5, 1.3).expect("valid").sample(&mut self.rng);
            let t = at + Duration::seconds((delay * 60.0) as i64 + 20);
            self.msg_event(M::OpenedEmail, t, msg);
            self.last_engaged = self.last_engaged.max(t);
            opened_at = Some(t);
        }
        if let Some(t) = opened_at {
            let p_click = (0.07 * self.engagement).min(0.3);
            if self.rng.random_bool(p_click) {
                let c = t + Duration::seconds(self.rng.random_range(20..1200));
                let e = self.msg_event(M::ClickedEmail, c, msg);
                e.extra.insert("URL".into(), Value::from(format!("https://{}/collections/all", catalog::STORE_DOMAIN)));
                self.last_click = Some(Click { at: c, msg, channel_sms: false });
                self.last_engaged = self.last_engaged.max(c);
            }
            if !transactional && self.rng.random_bool(0.01) {
                let u = t + minutes(2);
                self.set_consent(false, u, ConsentState::Unsubscribed, "Unsubscribe Link");
                self.suppressed = true;
                self.suppressions.push((u, "UNSUBSCRIBE"));
                return true;
            }
        }
        if self.rng.random_bool(0.007) {
            let c = at + Duration::seconds(self.rng.random_range(5..90));
            let e = self.msg_event(M::ClickedEmail, c, msg);
            e.extra.insert("URL".into(), Value::from(format!("https://{}/", catalog::STORE_DOMAIN)));
            e.extra.insert("Bot Click".into(), Value::from(true));
        }
        if !transactional && self.rng.random_bool(0.0005) {
            let s = at + minutes(self.rng.random_range(30..600));
            self.msg_event(M::MarkedSpam, s, msg);
            self.set_consent(false, s, ConsentState::Unsubscribed, "Spam Complaint");
            self.suppressed = true;
            self.suppressions.push((s, "SPAM_COMPLAINT"));
        }
        // A keyed draw, so the planted incident leaves this person's random stream as it was.
        if !transactional
            && !self.suppressed
            && let Some(share) = self.w.unsubscribe_spike(catalog::local_date(at))
            && keyed::unit(self.w.seed, "incident-unsubscribe", &[self.seq, ms(at) as u64]) < share
        {
            let u = at + minutes(7);
            self.set_consent(false, u, ConsentState::Unsubscribed, "Unsubscribe Link");
            self.suppressed = true;
            self.suppressions.push((u, "UNSUBSCRIBE"));
        }
        true
    }

    fn send_sms(&mut self, at: DateTime<Utc>, msg: Msg) -> bool {
        let segments = if self.rng.random_bool(0.3) { 2 } else { 1 };
        self.msg_event(M::SentSms, at, msg).extra.insert("Segment Count".into(), Value::from(segments));
        if self.rng.random_bool(0.03) {
            let e = self.msg_event(M::FailedSms, at + Duration::seconds(10), msg);
            e.extra.insert("Failure Type".into(), Value::from("carrier_rejected"));
            return false;
        }
        self.msg_event(M::ReceivedSms, at + Duration::seconds(5), msg);
        if self.rng.random_bool((0.06 * self.engagement).min(0.3)) {
            let c = at + Duration::seconds(self.rng.random_range(60..2400));
            let e = self.msg_event(M::ClickedSms, c, msg);
            e.extra.insert("URL".into(), Value::from(format!("https://{}/", catalog::STORE_DOMAIN)));
            self.last_click = Some(Click { at: c, msg, channel_sms: true });
            self.last_engaged = self.last_engaged.max(c);
        } else if self.rng.random_bool(0.003) {
            let e = self.msg_event(M::ClickedSms, at + Duration::seconds(30), msg);
            e.extra.insert("Bot Click".into(), Value::from(true));
        }
        if self.rng.random_bool(0.012) {
            let t = at + minutes(self.rng.random_range(1..30));
            self.set_consent(true, t, ConsentState::Unsubscribed, "STOP keyword");
        }
        true
    }

    /// Places an order at `at`; returns its index (`None` when the person is capped).
    fn place_order(&mut self, at: DateTime<Utc>, source: Source) -> Option<usize> {
        let w = self.w;
        let k = self.orders.len();
        if k >= 63 {
            return None;
        }
        if let Some(share) = w.order_loss(catalog::local_date(at))
            && keyed::unit(w.seed, "incident-order", &[self.seq, ms(at) as u64]) < share
        {
            if matches!(source, Source::Background) {
                self.push(at + Duration::days(3), Action::BackgroundOrder);
            }
            return None;
        }
        let guest = self.key.kind == Kind::Guest;
        if !guest && self.customer_at.is_none() {
            self.customer_at = Some(at - minutes(2));
            if self.email.is_some() && self.rng.random_bool(0.02) {
                // Shopify kept the address as typed; Klaviyo lowercases it.
                self.shop_email = self.email.as_ref().map(|e| format!(" {}", capitalize(e)));
            }
        }
        let first_ever = k == 0 && self.prior_orders == 0;
        if first_ever && self.key.kind == Kind::Lead {
            self.checkout_consent(at);
        }
        let click = self.last_click.filter(|c| at - c.at <= Duration::days(ATTRIBUTION_DAYS) && c.at <= at);
        let order_base = self.seq * 64 + k as u64;
        let welcome_window = matches!(source, Source::Window(e) if matches!(w.flows[self.entries[e as usize].flow].kind, FlowKind::Welcome | FlowKind::WelcomeOld));
        let rec = self.build_order(at, order_base, first_ever, welcome_window, click);
        let fulfilled_at = rec.fulfilled_at;
        let has_profile = self.profile_at.is_some_and(|p| p <= at);
        if has_profile && !rec.order.test {
            self.order_events(&rec, click);
        }
        let consumable =
            rec.order.lines.iter().any(|l| w.products.iter().any(|p| p.product_id == l.product_id && p.is_consumable));
        self.orders.push(rec);
        self.order_sources.push(source);
        self.last_order_ms = ms(at);
        if has_profile {
            let tr = w.flow(FlowKind::Transactional);
            self.push(at + minutes(1), Action::FlowEntry { flow: tr as u16, trigger_ms: ms(at) });
            let pp = if first_ever { FlowKind::PostFirst } else { FlowKind::PostRepeat };
            self.push(at + minutes(2), Action::FlowEntry { flow: w.flow(pp) as u16, trigger_ms: ms(at) });
            for kind in [FlowKind::CrossSell, FlowKind::Replenishment, FlowKind::Winback] {
                if kind == FlowKind::CrossSell && !first_ever {
                    continue;
                }
                if kind == FlowKind::Replenishment && !consumable {
                    continue;
                }
                let f = w.flow(kind);
                let delay = Duration::hours(w.flows[f].entry_delay_hours);
                self.push(at + delay, Action::FlowEntry { flow: f as u16, trigger_ms: ms(at) });
            }
            if let Some(t) = fulfilled_at {
                let f = w.flow(FlowKind::Review);
                let delay = Duration::hours(w.flows[f].entry_delay_hours);
                self.push(t + delay, Action::FlowEntry { flow: f as u16, trigger_ms: ms(t) });
            }
        }
        if !guest {
            let starts_chain = !matches!(source, Source::Window(_)) || first_ever;
            if starts_chain {
                let subscribed = self.email_state == ConsentState::Subscribed;
                let n = (k as f64 + f64::from(self.prior_orders)).min(6.0);
                let mut p = (0.02 + 0.25 * self.loyalty + 0.02 * n).min(0.7);
                if subscribed {
                    p = (p * 1.15 * w.background_confounding).min(0.9);
                }
                if self.rng.random_bool(p) {
                    let gap = LogNormal::new(45f64.ln(), 0.8).expect("valid").sample(&mut self.rng);
                    self.push(at + Duration::minutes((gap * 1440.0) as i64 + 600), Action::BackgroundOrder);
                }
            }
            if has_profile {
                self.start_sessions(at);
            }
        }
        Some(k)
    }

    fn build_order(
        &mut self,
        at: DateTime<Utc>,
        order_base: u64,
        first_ever: bool,
        welcome_window: bool,
        click: Option<Click>,
    ) -> OrderRec {
        let w = self.w;
        let n_lines = match self.rng.random::<f64>() {
            r if r < 0.6 => 1,
            r if r < 0.88 => 2,
            _ => 3,
        };
        let mut picked: Vec<usize> = Vec::new();
        while picked.len() < n_lines {
            let p = self.pick_product();
            if !picked.contains(&p) {
                picked.push(p);
            }
        }
        let mut lines: Vec<SimOrderLine> = picked
            .iter()
            .enumerate()
            .map(|(j, &p)| {
                let product = &w.products[p];
                let v = &product.variants[self.rng.random_range(0..product.variants.len())];
                let quantity = match self.rng.random::<f64>() {
                    r if r < 0.82 => 1,
                    r if r < 0.96 => 2,
                    _ => 3,
                };
                SimOrderLine {
                    line_id: 14_000_000_000_000 + order_base * 8 + j as u64,
                    product_id: product.product_id,
                    variant_id: v.variant_id,
                    sku: v.sku.clone(),
                    quantity,
                    price_minor: v.price_minor,
                    discount_minor: 0,
                }
            })
            .collect();
        let local_day = catalog::local_date(at);
        let mut codes: Vec<String> = Vec::new();
        let (offer, pct) = if first_ever {
            let r: f64 = self.rng.random();
            let r = if welcome_window { r * 0.5 + 0.5 } else { r };
            if r < 0.5 {
                ("none", 0.0)
            } else if r < 0.8 {
                let (code, pct) = if self.channel == "influencer" {
                    ("JESS15", 0.15)
                } else if r < 0.68 {
                    ("WELCOME10", 0.10)
                } else {
                    ("WELCOME15", 0.15)
                };
                codes.push(code.into());
                ("percent_off", pct)
            } else if r < 0.92 {
                codes.push("FREESHIP".into());
                ("free_shipping", 0.0)
            } else {
                codes.push("FREEGIFT".into());
                ("gift", 0.0)
            }
        } else if catalog::is_bfcm(local_day) && self.rng.random_bool(0.6) {
            codes.push("BFCM25".into());
            ("percent_off", 0.25)
        } else if self.rng.random_bool(0.08) {
            codes.push("THANKYOU10".into());
            ("percent_off", 0.10)
        } else {
            ("none", 0.0)
        };
        if pct > 0.0 {
            for l in &mut lines {
                l.discount_minor = ((l.price_minor * i64::from(l.quantity)) as f64 * pct).round() as i64;
            }
        }
        if offer == "gift" {
            let g = &w.products[catalog::GIFT_PRODUCT];
            let v = &g.variants[0];
            lines.push(SimOrderLine {
                line_id: 14_000_000_000_000 + order_base * 8 + lines.len() as u64,
                product_id: g.product_id,
                variant_id: v.variant_id,
                sku: v.sku.clone(),
                quantity: 1,
                price_minor: v.price_minor,
                discount_minor: v.price_minor,
            });
        }
        let gross: i64 = lines.iter().map(|l| l.price_minor * i64::from(l.quantity)).sum();
        let discount: i64 = lines.iter().map(|l| l.discount_minor).sum();
        let subtotal = gross - discount;
        let shipping = if offer == "free_shipping" || subtotal >= 6000 { 0 } else { 695 };
        let tax_rate = match self.country {
            "US" => 0.065,
            "CA" => 0.13,
            _ => 0.0,
        };
        let tax = (subtotal as f64 * tax_rate).round() as i64;
        let total = subtotal + shipping + tax;
        let presentment = match self.country {
            "CA" if self.rng.random_bool(0.85) => "CAD",
            "GB" if self.rng.random_bool(0.85) => "GBP",
            "DE" if self.rng.random_bool(0.85) => "EUR",
            _ => catalog::SHOP_CURRENCY,
        };
        let source_name = if self.key.kind == Kind::Guest && self.email.is_none() && self.phone.is_none() {
            "pos"
        } else {
            match self.rng.random::<f64>() {
                r if r < 0.02 => "pos",
                r if r < 0.03 => "shopify_draft_order",
                r if r < 0.06 => "iphone",
                _ => "web",
            }
        };
        let (utm_source, utm_medium, utm_campaign, referring) = if let Some(c) = click {
            let name = match c.msg {
                Msg::Flow { flow, .. } => w.flows[flow].flow.name.clone(),
                Msg::Campaign(i) => w.campaigns[i].campaign.name.clone(),
            };
            (Some("klaviyo"), Some(if c.channel_sms { "sms" } else { "email" }), Some(name), None)
        } else if first_ever {
            match self.channel {
                "paid_social" => (
                    Some("facebook"),
                    Some("paid_social"),
                    Some("prospecting".to_string()),
                    Some("https://l.facebook.com/"),
                ),
                "paid_search" => {
                    (Some("google"), Some("cpc"), Some("brand_search".to_string()), Some("https://www.google.com/"))
                }
                "organic_search" => (None, None, None, Some("https://www.google.com/")),
                "referral" => (None, None, None, Some("https://blog.example.org/best-skincare")),
                "influencer" => (
                    Some("instagram"),
                    Some("influencer"),
                    Some("jess_spring".to_string()),
                    Some("https://l.instagram.com/"),
                ),
                "email" => (Some("klaviyo"), Some("email"), Some("newsletter".to_string()), None),
                _ => (None, None, None, None),
            }
        } else {
            (None, None, None, None)
        };
        let landing_site = Some(match (&utm_source, &utm_medium) {
            (Some(s), Some(m)) => format!("/?utm_source={s}&utm_medium={m}"),
            _ => "/".to_string(),
        });
        // Lifecycle after the order: cancellation, refunds, fulfilment.
        let mut cancelled_at = None;
        let mut refunds = Vec::new();
        let mut fulfilled_at = None;
        let refund_id = |r: u64| 900_000_000_000_000 + order_base * 2 + r;
        let full_refund = |lines: &[SimOrderLine], at: DateTime<Utc>| SimRefund {
            refund_id: refund_id(0),
            created_at: at,
            lines: lines
                .iter()
                .map(|l| SimRefundLine {
                    line_id: l.line_id,
                    quantity: l.quantity,
                    subtotal_minor: l.price_minor * i64::from(l.quantity) - l.discount_minor,
                })
                .collect(),
            amount_minor: total,
        };
        let r: f64 = self.rng.random();
        if r < 0.02 {
            let c = at + Duration::minutes(self.rng.random_range(60..1200));
            cancelled_at = Some(c);
            if self.rng.random_bool(0.35) {
                refunds.push(full_refund(&lines, c));
            }
        } else {
            fulfilled_at = Some(at + Duration::minutes(self.rng.random_range(1200..5760)));
            if r < 0.045 {
                let t = at + Duration::days(self.rng.random_range(5..30));
                refunds.push(full_refund(&lines, t));
            } else if r < 0.105 {
                let t = at + Duration::days(self.rng.random_range(5..40));
                let l = &lines[self.rng.random_range(0..lines.len())];
                let unit_net = (l.price_minor * i64::from(l.quantity) - l.discount_minor) / i64::from(l.quantity);
                let tax_share = (unit_net as f64 * tax_rate).round() as i64;
                refunds.push(SimRefund {
                    refund_id: refund_id(1),
                    created_at: t,
                    lines: vec![SimRefundLine { line_id: l.line_id, quantity: 1, subtotal_minor: unit_net }],
                    amount_minor: unit_net + tax_share,
                });
            }
        }
        let import_at = catalog::local(w.cal.day(IMPORT_DAY), 3, 0, 0);
        let created_at = if at < import_at && self.key.kind != Kind::Staff { import_at } else { at };
        let order_id = 5_500_000_000_000 + order_base;
        let (email, phone) = match self.key.kind {
            Kind::Guest => (self.email.clone(), self.phone.clone()),
            _ => (self.shop_email.clone().or_else(|| self.email.clone()), self.phone.clone()),
        };
        OrderRec {
            order: SimOrder {
                order_id,
                name: format!("#{}", 1001 + order_base),
                customer_id: (self.key.kind != Kind::Guest).then(|| 7_000_000_000_000 + self.seq),
                email,
                phone,
                created_at,
                processed_at: at,
                updated_at: created_at,
                cancelled_at,
                financial_status: "paid".into(),
                test: self.key.kind == Kind::Staff,
                source_name: source_name.into(),
                currency: catalog::SHOP_CURRENCY.into(),
                presentment_currency: presentment.into(),
                discount_codes: codes,
                offer_type: offer.into(),
                subtotal_minor: subtotal,
                total_discount_minor: discount,
                shipping_minor: shipping,
                tax_minor: tax,
                total_minor: total,
                landing_site,
                referring_site: referring.map(String::from),
                utm_source: utm_source.map(String::from),
                utm_medium: utm_medium.map(String::from),
                utm_campaign,
                lines,
                refunds,
            },
            fulfilled_at,
        }
    }

    fn order_events(&mut self, rec: &OrderRec, click: Option<Click>) {
        let w = self.w;
        let o = &rec.order;
        let at = o.processed_at;
        self.event(M::StartedCheckout, at - minutes(4)).value_minor = Some(o.total_minor);
        let attribution = click.map(|c| match c.msg {
            Msg::Flow { flow, step } => {
                let f = &w.flows[flow].flow;
                (Some(f.flow_id.clone()), Some(f.messages[step].message_id.clone()), None, c)
            }
            Msg::Campaign(i) => {
                let cm = &w.campaigns[i].campaign;
                (None, (!cm.deleted).then(|| cm.message_id.clone()), Some(cm.campaign_id.clone()), c)
            }
        });
        let e = self.event(M::PlacedOrder, at);
        e.value_minor = Some(o.total_minor);
        e.order_id = Some(o.order_id);
        e.extra.insert("$event_id".into(), Value::from(o.order_id.to_string()));
        e.extra.insert("$value_currency".into(), Value::from(catalog::SHOP_CURRENCY));
        e.extra.insert("Discount Codes".into(), json!(o.discount_codes));
        e.extra.insert("Item Count".into(), Value::from(o.lines.iter().map(|l| l.quantity).sum::<u32>()));
        if let Some((flow_id, message_id, campaign_id, c)) = attribution {
            let mut a = Map::new();
            a.insert("$attributed_channel".into(), Value::from(if c.channel_sms { "sms" } else { "email" }));
            a.insert("$send_ts".into(), Value::from(c.at.timestamp()));
            if let Some(f) = &flow_id {
                a.insert("$flow".into(), Value::from(f.as_str()));
            }
            if let Some(cid) = &campaign_id {
                a.insert("$campaign".into(), Value::from(cid.as_str()));
            }
            if let Some(m) = &message_id {
                a.insert("$message".into(), Value::from(m.as_str()));
            }
            e.extra.insert("$attribution".into(), Value::Object(a));
            e.attributed_flow_id = flow_id;
            e.attributed_message_id = message_id;
        }
        for l in &o.lines {
            let title =
                w.products.iter().find(|p| p.product_id == l.product_id).map(|p| p.title.clone()).unwrap_or_default();
            let e = self.event(M::OrderedProduct, at);
            e.value_minor = Some(l.price_minor * i64::from(l.quantity) - l.discount_minor);
            e.order_id = Some(o.order_id);
            e.extra.insert("$event_id".into(), Value::from(format!("{}:{}", o.order_id, l.line_id)));
            e.extra.insert("ProductID".into(), Value::from(l.product_id));
            e.extra.insert("SKU".into(), Value::from(l.sku.as_str()));
            e.extra.insert("ProductName".into(), Value::from(title));
            e.extra.insert("Quantity".into(), Value::from(l.quantity));
        }
        if at >= w.cal.start_utc + Duration::days(catalog::LOYALTY_LAUNCH_DAY) {
            let points = o.subtotal_minor / 100;
            let e = self.event(M::LoyaltyPoints, at + minutes(1));
            e.extra.insert("points".into(), Value::from(points));
            e.extra.insert("order_id".into(), Value::from(o.order_id.to_string()));
        }
        if let Some(t) = rec.fulfilled_at {
            let e = self.event(M::FulfilledOrder, t);
            e.value_minor = Some(o.total_minor);
            e.order_id = Some(o.order_id);
        }
        // Klaviyo's Shopify integration tracks full refunds only.
        if let Some(r) = o.refunds.iter().find(|r| r.amount_minor >= o.total_minor) {
            let e = self.event(M::RefundedOrder, r.created_at);
            e.value_minor = Some(o.total_minor);
            e.order_id = Some(o.order_id);
        }
    }

    /// The records as of the horizon, and each flow's incremental orders.
    fn finish(self, acc: &mut [FlowAcc]) -> Output {
        let h = self.w.cal.horizon;
        let mut out = Output::default();
        let mut served = 0u32;
        let mut spent = 0i64;
        let mut customer_updated = self.customer_at;
        let mut order_net: Vec<Option<i64>> = Vec::with_capacity(self.orders.len());
        for rec in &self.orders {
            let mut o = rec.order.clone();
            if o.created_at > h {
                order_net.push(None);
                continue;
            }
            o.refunds.retain(|r| r.created_at <= h);
            o.cancelled_at = o.cancelled_at.filter(|c| *c <= h);
            let refunded: i64 = o.refunds.iter().map(|r| r.amount_minor).sum();
            o.financial_status = if o.cancelled_at.is_some() && o.refunds.is_empty() {
                "voided"
            } else if refunded >= o.total_minor {
                "refunded"
            } else if refunded > 0 {
                "partially_refunded"
            } else {
                "paid"
            }
            .into();
            let mut updated = o.created_at;
            for t in
                o.refunds.iter().map(|r| r.created_at).chain(o.cancelled_at).chain(rec.fulfilled_at.filter(|f| *f <= h))
            {
                updated = updated.max(t);
            }
            o.updated_at = updated;
            let net = if o.cancelled_at.is_some() {
                0
            } else {
                o.subtotal_minor - o.refunds.iter().flat_map(|r| &r.lines).map(|l| l.subtotal_minor).sum::<i64>()
            };
            order_net.push(Some(net));
            served += 1;
            if !o.test && o.financial_status != "voided" {
                spent += o.total_minor - refunded;
            }
            customer_updated = customer_updated.map(|c| c.max(updated));
            out.orders.push(o);
        }
        for e in &self.entries {
            if e.incremental
                && let Some(i) = e.order
                && let Some(net) = order_net[i]
            {
                let a = &mut acc[e.flow];
                a.incremental_orders += 1;
                a.incremental_revenue += net;
                *a.by_month.entry(catalog::month_key(self.orders[i].order.processed_at)).or_insert(0) += net;
                *a.by_entry_month.entry(catalog::month_key(e.at)).or_insert(0) += net;
            }
        }
        let consent: Vec<SimConsentChange> = self.consent.into_iter().filter(|c| c.at <= h).collect();
        let state_of = |sms: bool| -> (ConsentState, Option<DateTime<Utc>>) {
            let ch = if sms { "sms" } else { "email" };
            let from_profile = consent.iter().filter(|c| c.channel == ch).map(|c| (c.at, c.state));
            let from_customer = self.customer_consent.iter().filter(|c| c.0 == sms && c.1 <= h).map(|c| (c.1, c.2));
            from_profile
                .chain(from_customer)
                .max_by_key(|c| c.0)
                .map_or((ConsentState::NeverSubscribed, None), |(t, s)| (s, Some(t)))
        };
        let (email_consent, email_at) = state_of(false);
        let (sms_consent, sms_at) = state_of(true);
        let suppression = self.suppressions.iter().rfind(|s| s.0 <= h).copied();
        if let Some(created) = self.customer_at.filter(|c| *c <= h) {
            let mut updated = customer_updated.unwrap_or(created);
            for t in [email_at, sms_at].into_iter().flatten() {
                updated = updated.max(t);
            }
            let mut tags = Vec::new();
            if self.key.kind == Kind::Staff {
                tags.push("staff".to_string());
            }
            if self.key.kind == Kind::Legacy {
                tags.push("migrated".to_string());
            }
            if served + self.prior_orders >= 4 {
                tags.push("vip".to_string());
            }
            out.customer = Some(SimCustomer {
                customer_id: 7_000_000_000_000 + self.seq,
                email: self.shop_email.clone().or_else(|| self.email.clone()),
                phone: self.phone.clone(),
                first_name: capitalize(&self.first),
                last_name: capitalize(&self.last),
                created_at: created,
                updated_at: updated,
                country: self.country.into(),
                province: self.province.map(String::from),
                tags,
                email_marketing_consent: email_consent,
                email_consent_updated_at: email_at,
                sms_marketing_consent: sms_consent,
                sms_consent_updated_at: sms_at,
                orders_count: served + self.prior_orders,
                amount_spent_minor: spent + self.prior_spent,
                acquisition_channel: self.channel.into(),
            });
        }
        if let Some(created) = self.profile_at.filter(|p| *p <= h) {
            let customer = out.customer.as_ref();
            let mut updated = created;
            for t in [email_at, sms_at, suppression.map(|s| s.0), customer.map(|c| c.created_at)].into_iter().flatten()
            {
                updated = updated.max(t);
            }
            out.profile = Some(SimProfile {
                profile_id: self.profile_id.clone(),
                email: self.email.clone(),
                phone: self.phone.clone(),
                external_id: customer.map(|c| c.customer_id.to_string()),
                first_name: capitalize(&self.first),
                last_name: capitalize(&self.last),
                created_at: created,
                updated_at: updated,
                timezone: self.tz.map(String::from),
                country: Some(self.country.into()),
                holdout_bucket: self.bucket,
                email_consent,
                email_consent_at: email_at,
                sms_consent,
                sms_consent_at: sms_at,
                email_suppression: suppression.map(|s| s.1.to_string()),
            });
        }
        out.consent = consent;
        out.events = self.events.into_iter().filter(|e| e.datetime <= h).collect();
        out
    }
}

/// The staff account and its monthly test orders.
pub fn simulate_staff(w: &World) -> Output {
    let key = PersonKey { day: 0, kind: Kind::Staff, ordinal: 0 };
    let mut life = Life::new(w, key);
    life.first = "qa".into();
    life.last = "staff".into();
    life.email = Some("qa.staff.0@example.com".into());
    life.phone = None;
    life.customer_at = Some(w.cal.start_utc - Duration::days(30));
    let mut month = 0i64;
    loop {
        let d = w.cal.day(month * 30 + (keyed::key(w.seed, "test-order", &[month as u64]) % 20) as i64);
        let at = catalog::local(d, 11, 15, 0);
        if at > w.cal.horizon {
            break;
        }
        let base = life.seq * 64 + life.orders.len() as u64;
        let rec = life.build_order(at, base, false, false, None);
        life.orders.push(rec);
        month += 1;
        if life.orders.len() >= 63 {
            break;
        }
    }
    let mut acc = Vec::new();
    let mut out = life.finish(&mut acc);
    if let Some(c) = &mut out.customer {
        c.amount_spent_minor = 0;
    }
    out
}

#[cfg(test)]
mod phone_tests {
    use super::synthetic_phone;

    #[test]
    fn phones_are_distinct_e164() {
        let mut seen = std::collections::HashSet::new();
        for i in (0..200_000_000u64).step_by(9_973) {
            let p = synthetic_phone(i);
            assert_eq!(p.len(), 12, "{p}");
            assert!(seen.insert(p));
        }
    }
}
