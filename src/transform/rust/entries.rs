//! `int_flow_entries` (models.md 4.5): every flow's eligible population rebuilt from its trigger
//! rule, not from its sends, with the arm each entry was in, its stratum and its outcomes.
//!
//! Trigger rules (Klaviyo metric names; the person is the profile's `person_key`):
//!
//! | flow type | trigger |
//! |---|---|
//! | welcome | the profile's first email subscribe event that no order of the person within 10 minutes explains (consent collected at checkout goes to the customer list, not the newsletter the welcome flow listens to) |
//! | abandoned_checkout | Started Checkout (value = checkout value) |
//! | abandoned_cart | Added to Cart with no Started Checkout of the profile within 1 h (checkout abandoners belong to the checkout flow) |
//! | browse_abandonment | Viewed Product with no Added to Cart within 1 h |
//! | back_in_stock | Subscribed to Back in Stock (the restock date is not in the data) |
//! | post_purchase_first / cross_sell | Placed Order of the person's first qualifying order (left-censored persons have none) |
//! | post_purchase_repeat | Placed Order of a later qualifying order |
//! | replenishment | Placed Order of an order with a product tagged `replenishable_product_tag` (default `consumable`) |
//! | winback | Placed Order of any qualifying order |
//!
//! Off-side entries: when a flow launched inside the data (31 days or more after it starts) or
//! stopped, the trigger rule also runs in the 31 days before the launch or after the stop; those
//! entries have `flow_live` false and no arm, and feed the difference-in-differences fallback.
//!
//! Entry is the trigger, plus the flow's `entry_delay_hours` for cross-sell, replenishment and
//! win-back (their entry is a time elapsed since the order); a flow that `exits_on_order` admits
//! nobody who ordered in between; entries must fall in the flow's live period; an entry within the
//! outcome window of the person's previous entry in the same flow is not a new entry.
//!
//! Arms (flow level: the flow's channels together): reachable = a subscribed interval of the
//! triggering profile on one of the flow's channels covers the entry, and no hard bounce or spam
//! complaint of the profile precedes it (email; `fct_message_events.bounce_type`, soft bounces
//! do not suppress). For an entry an order triggers, consent given within 10 minutes of the order
//! counts: the checkout that placed the order collects it, and its event lands seconds after the
//! order's (only order-triggered flows: a checkout or a cart started before the order has no
//! such consent to wait for). With an active random holdout, `T` = reachable and
//! not held out, `C` = reachable and held out (`random_holdout`); unreachable entrants have no arm
//! (they would not have been messaged either way). Otherwise `T` = reachable, `C` = unreachable
//! (`natural_unreachable`). Per-channel arms are derived downstream from `reachable_email`,
//! `reachable_sms` and `held_out`.
//!
//! Attentive journeys and Postscript automations (module [`sms`]) use their flow type's trigger
//! rule, except `welcome`, which the platform's first opt-in of the person triggers. Their SMS
//! reachability is the platform's consent of the person at entry, with no checkout grace: the
//! platforms' journeys see the subscribers of the moment the order arrives, and an entrant whose
//! checkout opt-in lands just after the order has no arm (welcomed instead, not a control). The
//! entry names the person's subscriber id on that platform, `person:<person_key>` when the
//! platform never knew them, and `<platform>:opt_in` as the welcome trigger source.
//!
//! Outcomes: the person's qualifying orders (net revenue, gross margin, contribution margin before
//! messaging cost, from `fct_orders`) in `[entry_at, entry_at + H)`, the triggering order excluded;
//! the durability window `2H`; the placebo window `[entry_at − 30 d, entry_at)`.
//! `window_closed` = `entry_at + H + 1 day ≤ cut-off`; the cut-off is `cfg_settings.as_of` (end of
//! that day) when set, else the earlier of the latest order and the latest Klaviyo event.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::future::BoxFuture;
use md5::{Digest, Md5};

use super::columns::{self, boolean, for_each_batch, int, micros, money, opt_str, query, text};

mod sms;

/// Version of this implementation (models.md 1.6).
pub const MODEL_VERSION: &str = "1.0.0";

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
/// Days on the off side of a launch or a stop that keep their entries: the F1 window (28 days)
/// and its 3-day buffer.
const OFF_SPAN: i64 = 31 * DAY;
const MINUTE: i64 = 60_000_000;
/// How long after an order the consent its checkout collected may land and still count.
const CHECKOUT_CONSENT_GRACE: i64 = 10 * MINUTE;

/// Klaviyo's standard metric names the trigger rules read.
const STARTED_CHECKOUT: &str = "Started Checkout";
const ADDED_TO_CART: &str = "Added to Cart";
const VIEWED_PRODUCT: &str = "Viewed Product";
const BACK_IN_STOCK: &str = "Subscribed to Back in Stock";
const PLACED_ORDER: &str = "Placed Order";

/// Flow types whose entry is a time elapsed since the trigger (models.md 4.5): the definition's
/// delay before the first send is when they admit people. Other flows admit at the trigger and
/// their first delay is part of the treatment.
const DELAYED_ENTRY: &[&str] = &["cross_sell", "replenishment", "winback"];

const FLOWS_SQL: &str = "\
select flow_key, flow_id, flow_type, channels, window_days, entry_delay_hours, exits_on_order, holdout_pct,
       holdout_assignment, holdout_start_date, holdout_end_date, live_from, live_until, platform
from int_flows where is_revenue_flow and window_days is not null
  and platform in ('klaviyo', 'attentive', 'postscript') order by flow_key";

const EVENTS_SQL: &str = "\
select e.profile_id, m.metric_name, t.event_type, t.channel, e.occurred_at, e.value_amount, e.source_event_id, e.flow_id
from stg_klaviyo__events e
join stg_klaviyo__metrics m on m.metric_id = e.metric_id
left join map_event_type t on t.platform = 'klaviyo' and t.raw_event_name = m.metric_name
where e.profile_id is not null and (
    m.metric_name in ('Started Checkout', 'Added to Cart', 'Viewed Product', 'Subscribed to Back in Stock',
                      'Placed Order')
    or t.event_type = 'subscribed'
    or (t.event_type = 'delivered' and e.flow_id is not null))
order by e.profile_id, e.occurred_at, e.event_id";

/// What suppresses an email address: a spam complaint, or a bounce that is not soft.
const SUPPRESSIONS_SQL: &str = "\
select platform_profile_id, min(occurred_at) from fct_message_events
where platform = 'klaviyo' and channel = 'email' and platform_profile_id is not null
  and (event_type = 'spam_complaint' or (event_type = 'bounced' and bounce_type <> 'soft'))
group by platform_profile_id";

const ORDERS_SQL: &str = "\
select p.person_key, cast(o.order_id as bigint), o.order_at, o.is_qualifying, coalesce(o.net_revenue, 0),
       coalesce(o.gross_margin, 0), coalesce(o.contribution_margin, 0), o.customer_order_seq
from fct_orders o
join int_order_person p on p.order_id = cast(o.order_id as bigint)
where p.person_key is not null and o.order_at is not null";

/// One person's order.
#[derive(Debug, Clone, Copy)]
struct Order {
    id: i64,
    at: i64,
    qualifying: bool,
    net: i128,
    margin: i128,
    contribution: i128,
    seq: Option<i64>,
}

/// A Klaviyo event the rules read.
#[derive(Debug, Clone)]
struct Event {
    // Interned: a handful of distinct values shared by millions of events.
    metric: Arc<str>,
    kind: Option<Arc<str>>,
    channel: Option<Arc<str>>,
    at: i64,
    value: Option<i128>,
    order_id: Option<i64>,
    flow_id: Option<Arc<str>>,
}

/// One shared copy of each distinct string.
#[derive(Default)]
struct Interner(std::collections::HashSet<Arc<str>>);

impl Interner {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(a.clone());
        a
    }

    fn opt(&mut self, a: &StringArray, r: usize) -> Option<Arc<str>> {
        a.is_valid(r).then(|| self.get(a.value(r)))
    }
}

/// A flow of `int_flows`.
#[derive(Debug, Clone)]
struct Flow {
    key: String,
    platform: String,
    id: String,
    flow_type: String,
    channels: Vec<String>,
    window: i64,
    delay: i64,
    exits_on_order: bool,
    holdout: Option<(i64, String, Option<i32>, Option<i32>)>,
    live_from: Option<i64>,
    live_until: Option<i64>,
}

/// Candidate entry before suppression.
#[derive(Debug, Clone)]
struct Candidate {
    profile: Arc<str>,
    person: Arc<str>,
    trigger_at: i64,
    source: String,
    value: Option<i128>,
    trigger_order: Option<i64>,
}

/// A consent interval: from, to (open when `None`), subscribed.
type Interval = (i64, Option<i64>, bool);

/// Everything loaded once.
struct Data {
    tz: Tz,
    cutoff: i64,
    flows: Vec<Flow>,
    person_of: HashMap<Arc<str>, Arc<str>>,
    events: HashMap<Arc<str>, Vec<Event>>,
    orders: HashMap<String, Vec<Order>>,
    order_person: HashMap<i64, String>,
    left_censored: std::collections::HashSet<String>,
    replenishable: std::collections::HashSet<i64>,
    /// (profile, channel) → intervals (from, to, subscribed).
    consent: HashMap<(String, String), Vec<Interval>>,
    /// person → (snapshot date days, tier), sorted.
    rfm: HashMap<String, Vec<(i32, Arc<str>)>>,
    buckets: HashMap<String, i64>,
    /// profile → first email suppression.
    suppressed_from: HashMap<String, i64>,
    /// The earliest landed event or order: a launch before this plus 31 days is not a change.
    data_start: i64,
    /// The SMS platforms' subscribers, consent and sends, by platform.
    sms: HashMap<String, sms::Platform>,
}

fn exec(msg: String) -> DataFusionError {
    DataFusionError::Execution(msg)
}

async fn load(ctx: &SessionContext) -> Result<Data> {
    let settings = columns::settings(ctx).await?;
    let tz_name = match settings.get("reporting_tz") {
        Some(t) => Some(t.clone()),
        None => {
            let b = query(ctx, "select iana_timezone from stg_shopify__shop order by _landed_at desc limit 1").await?;
            b.first().filter(|b| b.num_rows() > 0).map(|b| text(b, 0)).transpose()?.and_then(|a| opt_str(&a, 0))
        }
    };
    let tz: Tz = match tz_name {
        Some(n) => {
            n.parse().map_err(|_| exec(format!("int_flow_entries: reporting_tz {n:?} is not an IANA timezone")))?
        }
        None => Tz::UTC,
    };
    let mut flows = Vec::new();
    for b in query(ctx, FLOWS_SQL).await? {
        let t: Vec<StringArray> = [0, 1, 2, 3, 8, 13].iter().map(|i| text(&b, *i)).collect::<Result<_>>()?;
        let (window, delay, pct) = (int(&b, 4)?, int(&b, 5)?, int(&b, 7)?);
        let exits = boolean(&b, 6)?;
        let (start, end) = (columns::days(&b, 9)?, columns::days(&b, 10)?);
        let (from, until) = (micros(&b, 11)?, micros(&b, 12)?);
        for r in 0..b.num_rows() {
            let holdout = (pct.is_valid(r) && pct.value(r) > 0).then(|| {
                (
                    pct.value(r),
                    opt_str(&t[4], r).unwrap_or_else(|| "hash_bucket".into()),
                    start.is_valid(r).then(|| start.value(r)),
                    end.is_valid(r).then(|| end.value(r)),
                )
            });
            flows.push(Flow {
                key: t[0].value(r).to_string(),
                platform: t[5].value(r).to_string(),
                id: t[1].value(r).to_string(),
                flow_type: t[2].value(r).to_string(),
                channels: t[3].value(r).split('|').filter(|c| !c.is_empty()).map(String::from).collect(),
                window: window.value(r) * DAY,
                delay: if DELAYED_ENTRY.contains(&t[2].value(r)) { delay.value(r) * HOUR } else { 0 },
                exits_on_order: exits.value(r),
                holdout,
                live_from: from.is_valid(r).then(|| from.value(r)),
                live_until: until.is_valid(r).then(|| until.value(r)),
            });
        }
    }
    let mut strings = Interner::default();
    let mut person_of = HashMap::new();
    let ids = "select identifier_value, person_key from int_person_identifier \
               where identifier_type = 'klaviyo_profile_id' and not coalesce(is_blocked, false)";
    for_each_batch(ctx, ids, |b| {
        let (v, p) = (text(b, 0)?, text(b, 1)?);
        for r in 0..b.num_rows() {
            if v.is_valid(r) && p.is_valid(r) {
                person_of.insert(Arc::from(v.value(r)), Arc::from(p.value(r)));
            }
        }
        Ok(())
    })
    .await?;
    let mut events: HashMap<Arc<str>, Vec<Event>> = HashMap::new();
    let mut latest_event = i64::MIN;
    let mut data_start = i64::MAX;
    for_each_batch(ctx, EVENTS_SQL, |b| {
        let t: Vec<StringArray> = [0, 1, 2, 3, 6, 7].iter().map(|i| text(b, *i)).collect::<Result<_>>()?;
        let (at, value) = (micros(b, 4)?, money(b, 5)?);
        for r in 0..b.num_rows() {
            latest_event = latest_event.max(at.value(r));
            data_start = data_start.min(at.value(r));
            let profile = t[0].value(r);
            let event = Event {
                metric: strings.get(t[1].value(r)),
                kind: strings.opt(&t[2], r),
                channel: strings.opt(&t[3], r),
                at: at.value(r),
                value: value.is_valid(r).then(|| value.value(r)),
                order_id: t[4].is_valid(r).then(|| t[4].value(r).trim().parse().ok()).flatten(),
                flow_id: strings.opt(&t[5], r),
            };
            match events.get_mut(profile) {
                Some(v) => v.push(event),
                None => {
                    events.insert(Arc::from(profile), vec![event]);
                }
            }
        }
        Ok(())
    })
    .await?;
    for v in events.values_mut() {
        v.sort_by_key(|e| e.at);
    }
    let mut orders: HashMap<String, Vec<Order>> = HashMap::new();
    let mut order_person = HashMap::new();
    let mut latest_order = i64::MIN;
    for_each_batch(ctx, ORDERS_SQL, |b| {
        let person = text(b, 0)?;
        let (id, at, q) = (int(b, 1)?, micros(b, 2)?, boolean(b, 3)?);
        let (net, margin, contribution) = (money(b, 4)?, money(b, 5)?, money(b, 6)?);
        let seq = int(b, 7)?;
        for r in 0..b.num_rows() {
            latest_order = latest_order.max(at.value(r));
            data_start = data_start.min(at.value(r));
            let p = person.value(r).to_string();
            order_person.insert(id.value(r), p.clone());
            orders.entry(p).or_default().push(Order {
                id: id.value(r),
                at: at.value(r),
                qualifying: q.is_valid(r) && q.value(r),
                net: net.value(r),
                margin: margin.value(r),
                contribution: contribution.value(r),
                seq: seq.is_valid(r).then(|| seq.value(r)),
            });
        }
        Ok(())
    })
    .await?;
    for v in orders.values_mut() {
        v.sort_by_key(|o| (o.at, o.id));
    }
    let mut left_censored = std::collections::HashSet::new();
    for b in query(ctx, "select person_key from dim_customer where is_left_censored").await? {
        let p = text(&b, 0)?;
        left_censored.extend((0..b.num_rows()).filter_map(|r| opt_str(&p, r)));
    }
    let tag = settings.get("replenishable_product_tag").cloned().unwrap_or_else(|| "consumable".into());
    let sql = format!(
        "select distinct l.order_id from stg_shopify__order_lines l join stg_shopify__products p \
         on p.product_id = l.product_id where array_has(p.tags, '{}')",
        tag.replace('\'', "''")
    );
    let mut replenishable = std::collections::HashSet::new();
    for b in query(ctx, &sql).await? {
        let id = int(&b, 0)?;
        replenishable.extend((0..b.num_rows()).filter(|r| id.is_valid(*r)).map(|r| id.value(r)));
    }
    let mut consent: HashMap<(String, String), Vec<Interval>> = HashMap::new();
    let sql = "select identifier_value, channel, status, valid_from, valid_to from int_consent_history \
               where platform = 'klaviyo' and identifier_type = 'klaviyo_profile_id'";
    for_each_batch(ctx, sql, |b| {
        let (v, ch, st) = (text(b, 0)?, text(b, 1)?, text(b, 2)?);
        let (from, to) = (micros(b, 3)?, micros(b, 4)?);
        for r in 0..b.num_rows() {
            consent.entry((v.value(r).to_string(), ch.value(r).to_string())).or_default().push((
                from.value(r),
                to.is_valid(r).then(|| to.value(r)),
                st.value(r) == "subscribed",
            ));
        }
        Ok(())
    })
    .await?;
    let mut rfm: HashMap<String, Vec<(i32, Arc<str>)>> = HashMap::new();
    for_each_batch(ctx, "select person_key, snapshot_date, rfm_tier from fct_rfm_snapshot", |b| {
        let (p, d, t) = (text(b, 0)?, columns::days(b, 1)?, text(b, 2)?);
        for r in 0..b.num_rows() {
            rfm.entry(p.value(r).to_string()).or_default().push((d.value(r), strings.get(t.value(r))));
        }
        Ok(())
    })
    .await?;
    for v in rfm.values_mut() {
        v.sort();
    }
    let mut buckets = HashMap::new();
    let properties: std::collections::BTreeSet<String> = flows
        .iter()
        .filter_map(|f| f.holdout.as_ref().and_then(|h| h.1.strip_prefix("profile_property:").map(String::from)))
        .collect();
    for name in properties {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(exec(format!("holdout property {name:?}: only letters, digits, '_' and '-' are supported")));
        }
        let sql = format!(
            "select id, json_get(_raw, '/attributes/properties/{name}') from (select id, _raw, row_number() over \
             (partition by id order by updated desc, _landed_at desc, _run_id desc) as copy_rank \
             from raw_klaviyo__profiles) where copy_rank = 1"
        );
        for b in query(ctx, &sql).await? {
            let (id, v) = (text(&b, 0)?, text(&b, 1)?);
            for r in 0..b.num_rows() {
                if let Some(x) = opt_str(&v, r).and_then(|x| x.trim().parse::<f64>().ok()) {
                    buckets.insert(id.value(r).to_string(), x.floor() as i64);
                }
            }
        }
    }
    let mut suppressed_from = HashMap::new();
    for b in query(ctx, SUPPRESSIONS_SQL).await? {
        let (p, at) = (text(&b, 0)?, micros(&b, 1)?);
        for r in 0..b.num_rows() {
            suppressed_from.insert(p.value(r).to_string(), at.value(r));
        }
    }
    let cutoff = match settings.get("as_of") {
        Some(d) => {
            let d = NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| exec(format!("cfg_settings as_of: {d:?} is not YYYY-MM-DD")))?;
            let next = d.succ_opt().unwrap_or(d).and_hms_opt(0, 0, 0).expect("midnight");
            next.and_local_timezone(tz).earliest().map_or(i64::MIN, |t| t.timestamp_micros())
        }
        None => latest_order.min(latest_event),
    };
    let sms = sms::load(ctx, flows.iter().any(|f| sms::PLATFORMS.contains(&f.platform.as_str()))).await?;
    Ok(Data {
        tz,
        cutoff,
        flows,
        person_of,
        events,
        orders,
        order_person,
        left_censored,
        replenishable,
        consent,
        rfm,
        buckets,
        suppressed_from,
        data_start,
        sms,
    })
}

/// The trigger candidates of `flow` over every profile's events.
fn candidates(d: &Data, flow: &Flow) -> Vec<Candidate> {
    let mut out = Vec::new();
    if let Some(p) = d.sms.get(&flow.platform)
        && flow.flow_type == "welcome"
    {
        // An SMS platform's welcome journey listens to its own opt-ins, checkout ones included.
        for (person, profile, at) in p.opt_ins() {
            out.push(Candidate {
                profile,
                person: person.clone(),
                trigger_at: at,
                source: format!("{}:opt_in", flow.platform),
                value: None,
                trigger_order: None,
            });
        }
        out.sort_by(|a, b| (&a.person, a.trigger_at).cmp(&(&b.person, b.trigger_at)));
        return out;
    }
    for (profile, evs) in &d.events {
        let Some(person) = d.person_of.get(profile) else { continue };
        let push = |out: &mut Vec<Candidate>, e: &Event, source: String, value: Option<i128>| {
            out.push(Candidate {
                profile: profile.clone(),
                person: person.clone(),
                trigger_at: e.at,
                source,
                value,
                trigger_order: e.order_id.filter(|_| &*e.metric == PLACED_ORDER),
            })
        };
        let within =
            |metric: &str, from: i64, to: i64| evs.iter().any(|x| &*x.metric == metric && x.at >= from && x.at <= to);
        let orders = d.orders.get(&**person).map(Vec::as_slice).unwrap_or_default();
        match flow.flow_type.as_str() {
            "welcome" => {
                if let Some(e) = evs.iter().find(|e| {
                    e.kind.as_deref() == Some("subscribed")
                        && e.channel.as_deref() == Some("email")
                        && !orders.iter().any(|o| (o.at - e.at).abs() <= 10 * MINUTE)
                }) {
                    push(&mut out, e, format!("klaviyo:{}", e.metric), None);
                }
            }
            "abandoned_checkout" | "abandoned_cart" | "browse_abandonment" | "back_in_stock" => {
                let (metric, unless) = match flow.flow_type.as_str() {
                    "abandoned_checkout" => (STARTED_CHECKOUT, None),
                    "abandoned_cart" => (ADDED_TO_CART, Some(STARTED_CHECKOUT)),
                    "browse_abandonment" => (VIEWED_PRODUCT, Some(ADDED_TO_CART)),
                    _ => (BACK_IN_STOCK, None),
                };
                for e in evs.iter().filter(|e| &*e.metric == metric) {
                    if unless.is_some_and(|u| within(u, e.at, e.at + HOUR)) {
                        continue;
                    }
                    push(&mut out, e, format!("klaviyo:{metric}"), e.value);
                }
            }
            "post_purchase_first" | "cross_sell" | "post_purchase_repeat" | "replenishment" | "winback" => {
                for e in evs.iter().filter(|e| &*e.metric == PLACED_ORDER) {
                    let Some(id) = e.order_id else { continue };
                    if d.order_person.get(&id).map(String::as_str) != Some(&**person) {
                        continue;
                    }
                    let Some(o) = orders.iter().find(|o| o.id == id) else { continue };
                    if !o.qualifying {
                        continue;
                    }
                    let first = o.seq == Some(1) && !d.left_censored.contains(&**person);
                    let keep = match flow.flow_type.as_str() {
                        "post_purchase_first" | "cross_sell" => first,
                        "post_purchase_repeat" => !first,
                        "replenishment" => d.replenishable.contains(&id),
                        _ => true,
                    };
                    if keep {
                        push(&mut out, e, format!("klaviyo:{PLACED_ORDER}"), Some(o.net));
                    }
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| (&a.person, a.trigger_at, &a.profile).cmp(&(&b.person, b.trigger_at, &b.profile)));
    out
}

fn reachable(d: &Data, profile: &str, channel: &str, at: i64) -> bool {
    let subscribed = d
        .consent
        .get(&(profile.to_string(), channel.to_string()))
        .is_some_and(|v| v.iter().any(|(from, to, sub)| *sub && *from <= at && to.is_none_or(|t| at < t)));
    if !subscribed {
        return false;
    }
    !(channel == "email" && d.suppressed_from.get(profile).is_some_and(|t| *t < at))
}

fn hash_bucket(flow_key: &str, person: &str) -> i64 {
    let hex = format!("{:x}", Md5::digest(format!("{flow_key}|{person}").as_bytes()));
    i64::from_str_radix(&hex[..8], 16).unwrap_or(0) % 100
}

fn prior_bucket(n: usize) -> &'static str {
    match n {
        0 => "0",
        1 => "1",
        2 | 3 => "2-3",
        _ => "4+",
    }
}

/// One output row.
struct Row {
    flow: usize,
    c: Candidate,
    entry_at: i64,
    entry_date: i32,
    arm: Option<&'static str>,
    control_source: Option<&'static str>,
    reachable_this: bool,
    reachable_other: bool,
    reachable_email: bool,
    reachable_sms: bool,
    held_out: bool,
    holdout_active: bool,
    live: bool,
    bucket: Option<i64>,
    rfm_tier: String,
    prior: &'static str,
    band: Option<String>,
    closed: bool,
    y: [i128; 4],
    y_orders: i64,
    y_2h: i128,
    y_pre: i128,
    first_delivered: Option<i64>,
}

fn local_days(tz: Tz, at: i64) -> i32 {
    let t = DateTime::<Utc>::from_timestamp_micros(at).unwrap_or_default().with_timezone(&tz);
    (t.date_naive() - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days() as i32
}

fn rows(d: &Data) -> Vec<Row> {
    let mut out = Vec::new();
    for (fi, flow) in d.flows.iter().enumerate() {
        let Some(live_from) = flow.live_from else { continue };
        // A launch inside the data (not the data's own start) or a stop: the trigger rule also
        // runs on the off side, for the difference-in-differences fallback (models.md 3.4 F1).
        let launched = live_from - d.data_start >= OFF_SPAN;
        let mut last: Option<(Arc<str>, i64)> = None;
        let mut kept: Vec<(Candidate, bool)> = Vec::new();
        for c in candidates(d, flow) {
            let entry_at = c.trigger_at + flow.delay;
            let live = entry_at >= live_from && flow.live_until.is_none_or(|u| entry_at < u);
            let off = (launched && entry_at < live_from && entry_at >= live_from - OFF_SPAN)
                || flow.live_until.is_some_and(|u| entry_at >= u && entry_at < u + OFF_SPAN);
            if !(live || off) || entry_at > d.cutoff {
                continue;
            }
            let orders = d.orders.get(&*c.person).map(Vec::as_slice).unwrap_or_default();
            if flow.exits_on_order && flow.delay > 0 && orders.iter().any(|o| o.at > c.trigger_at && o.at <= entry_at) {
                continue;
            }
            if last.as_ref().is_some_and(|(p, t)| *p == c.person && entry_at < t + flow.window) {
                continue;
            }
            last = Some((c.person.clone(), entry_at));
            kept.push((c, live));
        }
        for (c, live) in kept {
            out.push(entry_row(d, fi, flow, c, live));
        }
    }
    out
}

fn entry_row(d: &Data, fi: usize, flow: &Flow, c: Candidate, live: bool) -> Row {
    let entry_at = c.trigger_at + flow.delay;
    let entry_date = local_days(d.tz, entry_at);
    let reach_at =
        if c.trigger_order.is_some() { entry_at.max(c.trigger_at + CHECKOUT_CONSENT_GRACE) } else { entry_at };
    let reach = |ch: &str| reachable(d, &c.profile, ch, reach_at);
    let sms_platform = d.sms.get(&flow.platform);
    // An SMS platform's flow can text whom that platform may text; email stays Klaviyo's reach
    // (the stratum's other channel).
    let (reachable_email, reachable_sms) = match sms_platform {
        Some(p) => (reach("email"), p.reachable(&c.person, entry_at)),
        None => (reach("email"), reach("sms")),
    };
    // The SMS platforms' journeys trigger for whoever subscribes when the order arrives: a
    // checkout opt-in lands seconds later and is welcomed instead. Such an entrant is neither
    // texted by this flow nor an unreachable control.
    let checkout_opt_in = sms_platform.is_some_and(|p| {
        c.trigger_order.is_some() && !reachable_sms && p.reachable(&c.person, c.trigger_at + CHECKOUT_CONSENT_GRACE)
    });
    let on = |ch: &str| {
        if ch == "email" {
            reachable_email
        } else if ch == "sms" {
            reachable_sms
        } else {
            false
        }
    };
    let reachable_this = flow.channels.iter().any(|ch| on(ch));
    let reachable_other = ["email", "sms"].iter().any(|ch| !flow.channels.iter().any(|f| f == ch) && on(ch));
    let mut bucket = None;
    let mut holdout_active = false;
    let mut held_out = false;
    if let Some((pct, assignment, start, end)) = &flow.holdout
        && live
        && start.is_none_or(|s| entry_date >= s)
        && end.is_none_or(|e| entry_date <= e)
    {
        holdout_active = true;
        bucket = if assignment == "hash_bucket" {
            Some(hash_bucket(&flow.key, &c.person))
        } else {
            d.buckets.get(&*c.profile).copied()
        };
        held_out = bucket.is_some_and(|b| b < *pct);
    }
    let (arm, control_source) = match (holdout_active, reachable_this, held_out) {
        _ if !live || checkout_opt_in => (None, None),
        (true, false, _) => (None, None),
        (true, true, true) => (Some("C"), Some("random_holdout")),
        (true, true, false) => (Some("T"), None),
        (false, true, _) => (Some("T"), None),
        (false, false, _) => (Some("C"), Some("natural_unreachable")),
    };
    let orders = d.orders.get(&*c.person).map(Vec::as_slice).unwrap_or_default();
    let q = |o: &&Order| o.qualifying && Some(o.id) != c.trigger_order;
    let sum =
        |from: i64, to: i64| orders.iter().filter(q).filter(|o| o.at >= from && o.at < to).map(|o| o.net).sum::<i128>();
    let mut y = [0i128; 4];
    let mut y_orders = 0;
    for o in orders.iter().filter(q).filter(|o| o.at >= entry_at && o.at < entry_at + flow.window) {
        y[0] += o.net;
        y[1] += o.margin;
        y[2] += o.contribution;
        y_orders += 1;
    }
    let prior = orders.iter().filter(|o| o.qualifying && o.at < entry_at).count();
    let last_order = orders.iter().filter(|o| o.qualifying && o.at < entry_at).map(|o| o.at).max();
    let rfm_tier = d
        .rfm
        .get(&*c.person)
        .and_then(|v| v.iter().rev().find(|(s, _)| *s < entry_date))
        .map_or_else(|| "prospect".to_string(), |(_, t)| t.to_string());
    let band = match flow.flow_type.as_str() {
        "abandoned_checkout" | "abandoned_cart" | "browse_abandonment" | "price_drop" => Some(match c.value {
            None => "unknown".to_string(),
            Some(v) if v < 50 * 10_000 => "<50".into(),
            Some(v) if v < 100 * 10_000 => "50-100".into(),
            Some(v) if v < 200 * 10_000 => "100-200".into(),
            Some(_) => "200+".into(),
        }),
        "winback" => Some(match last_order.map(|t| (entry_at - t) / DAY) {
            None => "unknown".to_string(),
            Some(n) if n < 120 => "<120".into(),
            Some(n) if n < 240 => "120-240".into(),
            Some(_) => "240+".into(),
        }),
        _ => None,
    };
    let evs = d.events.get(&c.profile).map(Vec::as_slice).unwrap_or_default();
    let first_delivered = match sms_platform {
        // Neither SMS platform lands a delivery record apart from the send (D39).
        Some(p) => p.first_send(&flow.id, &c.person, entry_at, entry_at + flow.window),
        None => evs
            .iter()
            .find(|e| {
                e.kind.as_deref() == Some("delivered")
                    && e.flow_id.as_deref() == Some(flow.id.as_str())
                    && e.at >= entry_at
                    && e.at < entry_at + flow.window
            })
            .map(|e| e.at),
    };

    Row {
        flow: fi,
        entry_at,
        entry_date,
        arm,
        control_source,
        reachable_this,
        reachable_other,
        reachable_email,
        reachable_sms,
        held_out,
        holdout_active,
        live,
        bucket,
        rfm_tier,
        prior: prior_bucket(prior),
        band,
        closed: entry_at + flow.window + DAY <= d.cutoff,
        y,
        y_orders,
        y_2h: sum(entry_at, entry_at + 2 * flow.window),
        y_pre: sum(entry_at - 30 * DAY, entry_at),
        first_delivered,
        c: match sms_platform {
            Some(p) => Candidate { profile: p.profile_of(&c.person), ..c },
            None => c,
        },
    }
}

fn iso(at: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(at).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Builds `int_flow_entries`.
pub fn build_flow_entries(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(async move {
        let d = load(ctx).await?;
        let mut rows = rows(&d);
        rows.sort_by(|a, b| {
            (a.entry_date, &d.flows[a.flow].key, &a.c.person, a.entry_at).cmp(&(
                b.entry_date,
                &d.flows[b.flow].key,
                &b.c.person,
                b.entry_at,
            ))
        });
        ctx.read_batch(batch(&d, &rows)?)
    })
}

fn batch(d: &Data, rows: &[Row]) -> Result<RecordBatch> {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let dec = || DataType::Decimal128(18, 4);
    let schema = Arc::new(Schema::new(vec![
        Field::new("entry_key", DataType::Utf8, false),
        Field::new("flow_key", DataType::Utf8, false),
        Field::new("flow_type", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("person_key", DataType::Utf8, false),
        Field::new("platform_profile_id", DataType::Utf8, false),
        Field::new("trigger_at", ts(), false),
        Field::new("entry_at", ts(), false),
        Field::new("entry_date", DataType::Date32, false),
        Field::new("trigger_source", DataType::Utf8, false),
        Field::new("trigger_value", dec(), true),
        Field::new("trigger_order_id", DataType::Int64, true),
        Field::new("arm", DataType::Utf8, true),
        Field::new("control_source", DataType::Utf8, true),
        Field::new("reachable_this_channel", DataType::Boolean, false),
        Field::new("reachable_other_channel", DataType::Boolean, false),
        Field::new("reachable_email", DataType::Boolean, false),
        Field::new("reachable_sms", DataType::Boolean, false),
        Field::new("held_out", DataType::Boolean, false),
        Field::new("holdout_active", DataType::Boolean, false),
        Field::new("flow_live", DataType::Boolean, false),
        Field::new("holdout_bucket", DataType::Int32, true),
        Field::new("stratum", DataType::Utf8, false),
        Field::new("rfm_tier_at_entry", DataType::Utf8, false),
        Field::new("prior_orders_bucket", DataType::Utf8, false),
        Field::new("value_band", DataType::Utf8, true),
        Field::new("window_days", DataType::Int32, false),
        Field::new("window_closed", DataType::Boolean, false),
        Field::new("y_revenue", dec(), false),
        Field::new("y_orders", DataType::Int64, false),
        Field::new("y_gross_margin", dec(), false),
        Field::new("y_contribution", dec(), false),
        Field::new("y_revenue_2h", dec(), false),
        Field::new("y_revenue_pre30", dec(), false),
        Field::new("first_message_delivered_at", ts(), true),
        Field::new("model_version", DataType::Utf8, false),
    ]));
    let flow = |r: &Row| &d.flows[r.flow];
    let s = |f: &dyn Fn(&Row) -> Option<String>| {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef
    };
    let b = |f: &dyn Fn(&Row) -> bool| Arc::new(BooleanArray::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef;
    let t = |f: &dyn Fn(&Row) -> Option<i64>| {
        Arc::new(TimestampMicrosecondArray::from(rows.iter().map(f).collect::<Vec<_>>()).with_timezone("UTC"))
            as ArrayRef
    };
    let m = |f: &dyn Fn(&Row) -> Option<i128>| -> Result<ArrayRef> {
        Ok(Arc::new(Decimal128Array::from(rows.iter().map(f).collect::<Vec<_>>()).with_precision_and_scale(18, 4)?))
    };
    let stratum = |r: &Row| {
        let other = if r.reachable_other { "1" } else { "0" };
        match &r.band {
            Some(band) => format!("{}|{}|{}|{}", r.rfm_tier, r.prior, other, band),
            None => format!("{}|{}|{}", r.rfm_tier, r.prior, other),
        }
    };
    let columns: Vec<ArrayRef> = vec![
        s(&|r| {
            Some(format!("{:x}", Md5::digest(format!("{}|{}|{}", flow(r).key, r.c.person, iso(r.entry_at)).as_bytes())))
        }),
        s(&|r| Some(flow(r).key.clone())),
        s(&|r| Some(flow(r).flow_type.clone())),
        s(&|r| Some(flow(r).channels.join("|"))),
        s(&|r| Some(r.c.person.to_string())),
        s(&|r| Some(r.c.profile.to_string())),
        t(&|r| Some(r.c.trigger_at)),
        t(&|r| Some(r.entry_at)),
        Arc::new(Date32Array::from(rows.iter().map(|r| r.entry_date).collect::<Vec<_>>())),
        s(&|r| Some(r.c.source.clone())),
        m(&|r| r.c.value)?,
        Arc::new(Int64Array::from(rows.iter().map(|r| r.c.trigger_order).collect::<Vec<_>>())),
        s(&|r| r.arm.map(String::from)),
        s(&|r| r.control_source.map(String::from)),
        b(&|r| r.reachable_this),
        b(&|r| r.reachable_other),
        b(&|r| r.reachable_email),
        b(&|r| r.reachable_sms),
        b(&|r| r.held_out),
        b(&|r| r.holdout_active),
        b(&|r| r.live),
        Arc::new(Int32Array::from(rows.iter().map(|r| r.bucket.map(|b| b as i32)).collect::<Vec<_>>())),
        s(&|r| Some(stratum(r))),
        s(&|r| Some(r.rfm_tier.clone())),
        s(&|r| Some(r.prior.to_string())),
        s(&|r| r.band.clone()),
        Arc::new(Int32Array::from(rows.iter().map(|r| (flow(r).window / DAY) as i32).collect::<Vec<_>>())),
        b(&|r| r.closed),
        m(&|r| Some(r.y[0]))?,
        Arc::new(Int64Array::from(rows.iter().map(|r| r.y_orders).collect::<Vec<_>>())),
        m(&|r| Some(r.y[1]))?,
        m(&|r| Some(r.y[2]))?,
        m(&|r| Some(r.y_2h))?,
        m(&|r| Some(r.y_pre))?,
        t(&|r| r.first_delivered),
        s(&|_| Some(MODEL_VERSION.into())),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_buckets_follow_models_md() {
        let hex = format!("{:x}", Md5::digest(b"f|p"));
        let expect = i64::from_str_radix(&hex[..8], 16).unwrap() % 100;
        assert_eq!(hash_bucket("f", "p"), expect);
        assert!((0..100).contains(&hash_bucket("flow", "person")));
        assert_eq!(prior_bucket(3), "2-3");
        assert_eq!(prior_bucket(9), "4+");
    }
}
