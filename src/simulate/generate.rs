//! Generates the simulated brand: a seeded direct-to-consumer shop with Klaviyo messaging.
//!
//! People arrive day by day (buyers, email sign-ups, guests, a few left-censored customers from
//! before the window) with seasonality (Q4 and Black Friday–Cyber Monday peaks) and monthly
//! growth. Each person is simulated alone from a generator keyed by `(seed, arrival day, kind,
//! ordinal)`, so memory stays bounded at any scale and a later `end_date` only adds records:
//! everything dated up to the earlier end is unchanged (summary records — customers, profiles,
//! orders with later refunds — are as of `end_date` and move to the day of their new
//! `updated_at`).
//!
//! Money conventions: `subtotal_minor` is after discounts, before shipping and tax;
//! `total_minor = subtotal + shipping + tax`; shop money is always USD while
//! `presentment_currency` may differ. Flow truth counts only the orders a flow caused directly
//! (see [`super::life`]); incremental revenue is net merchandise revenue (subtotal minus refunded
//! line subtotals, zero when cancelled) as of `end_date`, bucketed by `processed_at` month in the
//! shop timezone. Baseline purchase probabilities are multiplied by
//! [`CONSENT_BASELINE_MULTIPLIER`] for email-subscribed profiles: consent is confounded with
//! purchase intent, so comparing reachable with unreachable entrants overstates lift.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use rand_distr::{Distribution, Poisson};

use super::catalog::{self, Calendar};
use super::keyed;
use super::life::{self, FlowAcc, Kind, Output, PersonKey, World};
use super::model::{
    FlowTruth, Incident, SimConsentChange, SimCustomer, SimEvent, SimOrder, SimProfile, SimTotals, SimTruth,
};
use super::store::{Entity, StoreWriter};

pub use super::life::CONSENT_BASELINE_MULTIPLIER;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub seed: u64,
    /// Multiplies the population: scale 1 is a small brand, 1000 about two million customers.
    pub scale: u32,
    /// First simulated day (shop timezone).
    pub start_date: NaiveDate,
    /// Last simulated day, inclusive. Extending it never changes records dated before it.
    pub end_date: NaiveDate,
    /// The causal parameters tests control: flow effects, holdouts, consent confounding.
    pub causal: Causal,
}

/// Causal knobs of the simulated brand, for known-answer tests of the lift model.
#[derive(Debug, Clone, PartialEq)]
pub struct Causal {
    /// Baseline purchase probability inside a flow's window is multiplied by this for profiles
    /// subscribed to email at entry (consent confounded with purchase intent).
    pub consent_confounding: f64,
    /// Multiplies the chance that an email-subscribed person's order leads to a later background
    /// order: confounding that also shows *before* a flow entry (what the placebo detects).
    pub background_confounding: f64,
    /// Checkout consent probability is multiplied by `propensity ^ consent_selection` (0: consent
    /// independent of how much a person buys): selection into consent, which shows in revenue
    /// before any flow entry.
    pub consent_selection: f64,
    /// `(flow_type, lift)`: replaces the catalogue's purchase lift of every flow of that type.
    pub flow_lift: Vec<(String, f64)>,
    /// `(flow_type, holdout_pct)`: replaces the catalogue's holdout share of that type's flows.
    pub flow_holdout_pct: Vec<(String, u8)>,
    /// `(flow_type, day)`: flows of that type go live on this day after the start (launched inside
    /// the data, for before/after comparisons), instead of before the data window.
    pub flow_launch_day: Vec<(String, i64)>,
    /// Scales every flow's baseline window-purchase probability (more signal for small brands).
    pub base_multiplier: f64,
    /// Operational incidents planted in the brand ([`Incident::planted`] by default; empty for
    /// tests that calibrate against the undisturbed brand).
    pub incidents: Vec<Incident>,
}

impl Default for Causal {
    fn default() -> Self {
        Self {
            consent_confounding: CONSENT_BASELINE_MULTIPLIER,
            background_confounding: 1.0,
            consent_selection: 0.0,
            flow_lift: Vec::new(),
            flow_holdout_pct: Vec::new(),
            flow_launch_day: Vec::new(),
            base_multiplier: 1.0,
            incidents: Incident::planted(),
        }
    }
}

/// Records buffered before they are appended: enough to open each day file about once per
/// batch, few enough to keep memory small at any scale.
const BATCH_RECORDS: usize = 200_000;

/// Writes the brand to `out` (emptied first) and returns its truth.
pub fn generate(cfg: &SimConfig, out: &Path) -> io::Result<SimTruth> {
    if cfg.end_date < cfg.start_date {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "end_date is before start_date"));
    }
    let seed = cfg.seed;
    let cal = Calendar::new(cfg.start_date, cfg.end_date);
    let mut writer = StoreWriter::create(out)?;
    let mut totals = SimTotals::default();

    writer.write_shop(&catalog::shop(seed, &cal))?;
    let products = catalog::products(seed, &cal);
    writer.write_all(Entity::Products, &products)?;
    totals.products = products.len() as u64;
    totals.variants = products.iter().map(|p| p.variants.len() as u64).sum();
    let (metrics, metric_ids) = catalog::metrics(seed, &cal);
    writer.write_all(Entity::Metrics, &metrics)?;
    totals.metrics = metrics.len() as u64;
    let mut flows = catalog::flows(seed, &cal);
    for f in &mut flows {
        if let Some((_, lift)) = cfg.causal.flow_lift.iter().find(|(t, _)| *t == f.flow.flow_type) {
            f.lift = *lift;
        }
        if let Some((_, pct)) = cfg.causal.flow_holdout_pct.iter().find(|(t, _)| *t == f.flow.flow_type) {
            f.holdout_pct = *pct;
        }
        if let Some((_, day)) = cfg.causal.flow_launch_day.iter().find(|(t, _)| *t == f.flow.flow_type) {
            f.live_from_day = *day;
        }
        f.base *= cfg.causal.base_multiplier;
    }
    let flow_records: Vec<_> = flows.iter().map(|f| f.flow.clone()).collect();
    writer.write_all(Entity::Flows, &flow_records)?;
    totals.flows = flow_records.len() as u64;
    let campaigns = catalog::campaigns(seed, &cal);
    let campaign_records: Vec<_> = campaigns.iter().map(|c| c.campaign.clone()).collect();
    writer.write_all(Entity::Campaigns, &campaign_records)?;
    totals.campaigns = campaign_records.len() as u64;

    let metric_names: BTreeMap<String, &'static str> =
        metric_ids.iter().enumerate().map(|(i, id)| (id.clone(), catalog::METRICS[i].1)).collect();
    let mut world = World::new(seed, cal.clone(), products, metric_ids, flows, campaigns);
    world.consent_confounding = cfg.causal.consent_confounding;
    world.background_confounding = cfg.causal.background_confounding;
    world.consent_selection = cfg.causal.consent_selection;
    world.incidents = cfg.causal.incidents.clone();
    let mut acc = vec![FlowAcc::default(); world.flows.len()];
    let mut batch = Batch { items: Vec::new(), metric_names };

    batch.add(life::simulate_staff(&world), &mut totals);
    for day in 0..cal.days() {
        for kind in [Kind::Buyer, Kind::Lead, Kind::Legacy, Kind::Guest] {
            let n = arrivals(seed, cfg.scale, &cal, day, kind);
            for ordinal in 0..n {
                let person = life::simulate(&world, PersonKey { day, kind, ordinal }, &mut acc);
                batch.add(person, &mut totals);
                if batch.items.len() >= BATCH_RECORDS {
                    batch.flush(&mut writer)?;
                }
            }
        }
    }
    batch.flush(&mut writer)?;

    writer.finish_daily(Entity::Customers, |c: &SimCustomer| (c.updated_at, c.customer_id))?;
    writer.finish_daily(Entity::Orders, |o: &SimOrder| (o.updated_at, o.order_id))?;
    writer.finish_daily(Entity::Profiles, |p: &SimProfile| (p.updated_at, p.profile_id.clone()))?;
    writer
        .finish_daily(Entity::ConsentChanges, |c: &SimConsentChange| (c.at, c.profile_id.clone(), c.channel.clone()))?;
    writer.finish_daily(Entity::Events, |e: &SimEvent| (e.datetime, e.event_id.clone()))?;

    let flows = world
        .flows
        .iter()
        .zip(acc)
        .map(|(f, a)| FlowTruth {
            flow_id: f.flow.flow_id.clone(),
            flow_type: f.flow.flow_type.clone(),
            purchase_lift: f.lift,
            outcome_window_days: f.window_days,
            holdout_pct: f.holdout_pct,
            entries: a.entries,
            treated_entries: a.treated,
            incremental_orders: a.incremental_orders,
            incremental_revenue_minor: a.incremental_revenue,
            incremental_revenue_by_month: a.by_month,
            incremental_revenue_by_entry_month: a.by_entry_month,
            entry_delay_hours: u32::try_from(f.entry_delay_hours).unwrap_or(0),
            exit_on_order: f.exit_on_order,
        })
        .collect();
    let truth = SimTruth { seed, scale: cfg.scale, totals, flows, incidents: cfg.causal.incidents.clone() };
    writer.write_truth(&truth)?;
    Ok(truth)
}

/// How many people of `kind` arrive on `day`: growth of ~3 % a month, seasonality, scale.
fn arrivals(seed: u64, scale: u32, cal: &Calendar, day: i64, kind: Kind) -> u64 {
    let date = cal.day(day);
    let growth = 1.03f64.powf(day as f64 / 30.4);
    let season = catalog::season(date);
    let base = match kind {
        Kind::Buyer => 1.35 * growth * season,
        Kind::Lead => 1.75 * growth * season.sqrt(),
        Kind::Legacy if day < 30 => 1.2,
        Kind::Legacy => 0.0,
        Kind::Guest => 0.08 * growth * season,
        Kind::Staff => 0.0,
    };
    let lambda = base * f64::from(scale);
    if lambda <= 0.0 {
        return 0;
    }
    let mut rng = keyed::rng(seed, "arrivals", &[day as u64, kind as u64]);
    let n: f64 = Poisson::new(lambda).expect("positive rate").sample(&mut rng);
    n as u64
}

enum Rec {
    Customer(SimCustomer),
    Order(Box<SimOrder>),
    Profile(SimProfile),
    Consent(SimConsentChange),
    Event(SimEvent),
}

struct Batch {
    items: Vec<(u8, NaiveDate, DateTime<Utc>, Rec)>,
    metric_names: BTreeMap<String, &'static str>,
}

impl Batch {
    fn add(&mut self, o: Output, totals: &mut SimTotals) {
        if let Some(c) = o.customer {
            totals.customers += 1;
            self.items.push((0, c.updated_at.date_naive(), c.updated_at, Rec::Customer(c)));
        }
        if let Some(p) = o.profile {
            totals.profiles += 1;
            self.items.push((2, p.updated_at.date_naive(), p.updated_at, Rec::Profile(p)));
        }
        for order in o.orders {
            totals.orders += 1;
            totals.order_lines += order.lines.len() as u64;
            totals.refunds += order.refunds.len() as u64;
            if order.test {
                totals.test_orders += 1;
            } else {
                totals.order_total_minor += order.total_minor;
            }
            if order.cancelled_at.is_some() {
                totals.cancelled_orders += 1;
            }
            if order.customer_id.is_none() {
                totals.guest_orders += 1;
            }
            self.items.push((1, order.updated_at.date_naive(), order.updated_at, Rec::Order(Box::new(order))));
        }
        for c in o.consent {
            totals.consent_changes += 1;
            self.items.push((3, c.at.date_naive(), c.at, Rec::Consent(c)));
        }
        for e in o.events {
            totals.events += 1;
            let name = self.metric_names.get(&e.metric_id).copied().unwrap_or("unknown");
            *totals.events_by_metric.entry(name.to_string()).or_insert(0) += 1;
            self.items.push((4, e.datetime.date_naive(), e.datetime, Rec::Event(e)));
        }
    }

    /// Appends grouped by (entity, day) so each day file is opened once per batch.
    fn flush(&mut self, w: &mut StoreWriter) -> io::Result<()> {
        self.items.sort_by_key(|i| (i.0, i.1));
        for (_, _, key, rec) in self.items.drain(..) {
            match rec {
                Rec::Customer(r) => w.append(Entity::Customers, key, &r)?,
                Rec::Order(r) => w.append(Entity::Orders, key, &*r)?,
                Rec::Profile(r) => w.append(Entity::Profiles, key, &r)?,
                Rec::Consent(r) => w.append(Entity::ConsentChanges, key, &r)?,
                Rec::Event(r) => w.append(Entity::Events, key, &r)?,
            }
        }
        w.flush()
    }
}
