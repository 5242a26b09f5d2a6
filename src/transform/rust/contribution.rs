//! `fct_flow_contribution` (models.md 3, 4.6): per flow × channel × period, the flow's message
//! metrics and cost, last-click and platform revenue, and its modeled incremental lift beside them.
//!
//! * **Scopes**: one row per channel the flow sends on, and one `all` row for the flow as a whole
//!   (the headline a CFO reads; for a single-channel flow it equals the channel row). Channel
//!   arms: with an active random holdout, reachable-on-the-channel entrants split into held out (C)
//!   and not (T); otherwise reachable on the channel (T) against unreachable on it (C), the other
//!   channel's reachability being a stratum part. The `all` scope uses `int_flow_entries.arm`.
//! * **Control source**: a scope-period with any holdout-active entry uses only those
//!   (`random_holdout`); else `natural_unreachable`.
//! * **Estimate**: [`crate::lift::period`] over entries with closed windows. The flow's `all`
//!   months get the seeded bootstrap headline interval (B from
//!   `cfg_settings.lift_bootstrap_replicates`, default 2,000; seed
//!   `md5(flow_key|channel|grain|period_start|model_version)`); channel and week rows the
//!   analytic one.
//! * **Roll-up**: a period without minimum evidence is estimated over the trailing quarter
//!   (3 months, or 13 weeks) and the quarter's lift per treated entry is applied to the period's
//!   treated entries (values and intervals scaled by the period's share of treated entries);
//!   `rolled_up_to = trailing_quarter`. Still short: NULL, `insufficient_control`.
//! * **Grades** (3.3): A random holdout ≥ 5 % of entries with evidence; B natural control with the
//!   placebo passed; C natural control with the placebo failed (or a holdout under 5 %); D none.
//!   Without a control, non-intent flows (win-back, replenishment, birthday, cross-sell) fall back
//!   on F2, a model baseline ([`crate::lift::baseline`]): grade C, `lift_method = model_baseline`,
//!   `lift_reason = no_control_signal`; other flows on F1, a difference-in-differences around
//!   their launch or stop inside the data ([`crate::lift::did`]; the off side's entrants come
//!   from the trigger rule run while the flow was off, the comparison population is every other
//!   live flow of another type; analytic interval; not when another flow of the same type ran
//!   in the off window, a replacement), `lift_method = did_change`, grade C. Without
//!   either, grade D.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array};
use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use chrono::{Datelike, Months, NaiveDate};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::future::BoxFuture;

use super::columns::{self, boolean, days, float, int, micros, money, opt_str, query, text};
use crate::lift::baseline::{self, Baseline};
use crate::lift::bootstrap::{REPLICATES, seed_for};
use crate::lift::period::{self, Interval, OUTCOMES, PeriodEntry, PeriodLift};

/// Version of this implementation (models.md 1.6).
pub const MODEL_VERSION: &str = "1.0.0";

/// Random-holdout share of entries below which a holdout does not earn grade A.
const MIN_HOLDOUT_SHARE: f64 = 0.05;
/// Days after period end + H_f before a period's figures are final (4.6 `is_mature`).
const MATURITY_DAYS: i64 = 7;
/// Non-intent flow types whose lift may fall back on a model baseline (F2, models.md 3.4).
const MODEL_BASELINE_TYPES: &[&str] = &["winback", "replenishment", "birthday", "cross_sell"];
const DAY_MICROS: f64 = 86_400_000_000.0;

const HISTORY_SQL: &str = "\
select p.person_key, o.order_at, o.net_revenue
from fct_orders o join int_order_person p on p.order_id = cast(o.order_id as bigint)
where o.is_qualifying and p.person_key is not null and o.order_at is not null
order by p.person_key, o.order_at";

const FLOWS_SQL: &str = "\
select flow_key, platform, flow_id, flow_name, flow_type, channels, window_days, is_revenue_flow,
       cast(live_from as date), cast(live_until as date)
from int_flows where flow_type <> 'transactional' order by flow_key";

// Every read is ordered: entry order sets the bootstrap's person indices (so each person's Poisson
// weights) and the order of floating-point sums; files are read in parallel.
const ENTRIES_SQL: &str = "\
select flow_key, person_key, entry_date, arm, reachable_email, reachable_sms, reachable_other_channel, held_out,
       holdout_active, rfm_tier_at_entry, prior_orders_bucket, coalesce(value_band, ''), window_closed,
       y_revenue, y_orders, y_gross_margin, y_contribution, y_revenue_2h, y_revenue_pre30,
       first_message_delivered_at is not null, entry_at, flow_live
from int_flow_entries
order by flow_key, entry_at, person_key, entry_key";

const METRICS_SQL: &str = "\
select subject_key, channel, period_grain, period_start, sends, delivered, recipients, unique_clickers, clicks,
       unsubscribes, spam_complaints, bounces, sms_segments, channel_cost, platform_reported_revenue
from int_message_period_metrics where message_kind = 'flow'";

const CLICKS_SQL: &str = "\
select lc_subject_key, lc_channel, order_date, net_revenue, gross_margin, 'lc', order_key from int_order_last_click
where lc_message_kind = 'flow'
union all
select ps_subject_key, ps_channel, order_date, net_revenue, gross_margin, 'ps', order_key from int_order_last_click
where ps_message_kind = 'flow'
order by 6, 7";

#[derive(Debug, Clone)]
struct Flow {
    key: String,
    platform: String,
    id: String,
    name: Option<String>,
    flow_type: String,
    channels: Vec<String>,
    window: i64,
    revenue_flow: bool,
    live_from: Option<NaiveDate>,
    live_until: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
struct Entry {
    person: String,
    date: NaiveDate,
    arm: Option<bool>,
    email: bool,
    sms: bool,
    other: bool,
    held_out: bool,
    holdout: bool,
    parts: [String; 3],
    closed: bool,
    y: [f64; OUTCOMES],
    delivered: bool,
    /// entry_at in days since the epoch (the F2 baseline's clock).
    at: f64,
    /// The flow was live (false: an off-side entry for F1).
    live: bool,
}

/// Message metrics of one scope-period (`int_message_period_metrics`).
#[derive(Debug, Clone, Default)]
struct Metrics {
    counts: [i64; 9],
    cost: Option<f64>,
    reported: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Clicks {
    orders: i64,
    revenue: f64,
    margin: f64,
    ps_revenue: f64,
}

type Key = (String, String, &'static str, NaiveDate);

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")
}

fn date_of(days: i32) -> NaiveDate {
    epoch() + chrono::Duration::days(i64::from(days))
}

fn period_start(grain: &str, d: NaiveDate) -> NaiveDate {
    if grain == "month" {
        d.with_day(1).expect("day 1")
    } else {
        d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday()))
    }
}

fn period_end(grain: &str, start: NaiveDate) -> NaiveDate {
    if grain == "month" {
        start + Months::new(1) - chrono::Duration::days(1)
    } else {
        start + chrono::Duration::days(6)
    }
}

/// First day of the trailing quarter ending with the period starting `start`.
fn quarter_start(grain: &str, start: NaiveDate) -> NaiveDate {
    if grain == "month" { start - Months::new(2) } else { start - chrono::Duration::weeks(12) }
}

fn f(v: i128) -> f64 {
    v as f64 / 1e4
}

/// One entry's place in a scope: `Some(treated)` or out of it.
fn arm_in(e: &Entry, scope: &str) -> Option<bool> {
    if !e.live {
        return None;
    }
    if scope == "all" {
        return e.arm;
    }
    let on = if scope == "email" { e.email } else { e.sms };
    if e.holdout { on.then_some(!e.held_out) } else { Some(on) }
}

fn other_in(e: &Entry, scope: &str) -> bool {
    match scope {
        "email" => e.sms,
        "sms" => e.email,
        _ => e.other,
    }
}

struct Loaded {
    flows: Vec<Flow>,
    entries: BTreeMap<String, Vec<Entry>>,
    metrics: BTreeMap<Key, Metrics>,
    clicks: BTreeMap<Key, Clicks>,
    run_date: Option<NaiveDate>,
    replicates: usize,
    /// Qualifying orders per person as (day, net revenue), for F2; empty when no flow needs it.
    histories: BTreeMap<String, Vec<(f64, f64)>>,
    /// F2 fits by training cut-off (period start), made on first use.
    fits: std::cell::RefCell<BTreeMap<NaiveDate, std::result::Result<Baseline, String>>>,
}

async fn load(ctx: &SessionContext) -> Result<Loaded> {
    let settings = columns::settings(ctx).await?;
    let replicates = match settings.get("lift_bootstrap_replicates") {
        Some(v) => v.parse().map_err(|_| {
            DataFusionError::Execution(format!("cfg_settings lift_bootstrap_replicates: {v:?} is not a count"))
        })?,
        None => REPLICATES,
    };
    let mut flows = Vec::new();
    for b in query(ctx, FLOWS_SQL).await? {
        let t: Vec<StringArray> = (0..6).map(|i| text(&b, i)).collect::<Result<_>>()?;
        let (w, rev) = (int(&b, 6)?, boolean(&b, 7)?);
        let (from, until) = (days(&b, 8)?, days(&b, 9)?);
        for r in 0..b.num_rows() {
            flows.push(Flow {
                key: t[0].value(r).into(),
                platform: t[1].value(r).into(),
                id: t[2].value(r).into(),
                name: opt_str(&t[3], r),
                flow_type: t[4].value(r).into(),
                channels: t[5].value(r).split('|').filter(|c| !c.is_empty()).map(String::from).collect(),
                window: if w.is_valid(r) { w.value(r) } else { 0 },
                revenue_flow: rev.value(r),
                live_from: from.is_valid(r).then(|| date_of(from.value(r))),
                live_until: until.is_valid(r).then(|| date_of(until.value(r))),
            });
        }
    }
    let mut entries: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for b in query(ctx, ENTRIES_SQL).await? {
        let (key, person, date, arm) = (text(&b, 0)?, text(&b, 1)?, days(&b, 2)?, text(&b, 3)?);
        let flags: Vec<_> = (4..9).map(|i| boolean(&b, i)).collect::<Result<_>>()?;
        let parts: Vec<StringArray> = (9..12).map(|i| text(&b, i)).collect::<Result<_>>()?;
        let closed = boolean(&b, 12)?;
        let ys: Vec<_> = (13..19).map(|i| float(&b, i)).collect::<Result<_>>()?;
        let delivered = boolean(&b, 19)?;
        let at = micros(&b, 20)?;
        let live = boolean(&b, 21)?;
        for r in 0..b.num_rows() {
            entries.entry(key.value(r).to_string()).or_default().push(Entry {
                person: person.value(r).into(),
                date: date_of(date.value(r)),
                arm: opt_str(&arm, r).map(|a| a == "T"),
                email: flags[0].value(r),
                sms: flags[1].value(r),
                other: flags[2].value(r),
                held_out: flags[3].value(r),
                holdout: flags[4].value(r),
                parts: [parts[0].value(r).into(), parts[1].value(r).into(), parts[2].value(r).into()],
                closed: closed.value(r),
                y: std::array::from_fn(|k| ys[k].value(r)),
                delivered: delivered.value(r),
                at: at.value(r) as f64 / DAY_MICROS,
                live: live.value(r),
            });
        }
    }
    let mut metrics = BTreeMap::new();
    for b in query(ctx, METRICS_SQL).await? {
        let (key, ch, grain, start) = (text(&b, 0)?, text(&b, 1)?, text(&b, 2)?, days(&b, 3)?);
        let counts: Vec<_> = (4..13).map(|i| int(&b, i)).collect::<Result<_>>()?;
        let (cost, reported) = (money(&b, 13)?, money(&b, 14)?);
        for r in 0..b.num_rows() {
            let grain: &'static str = if grain.value(r) == "month" { "month" } else { "week" };
            metrics.insert(
                (key.value(r).to_string(), ch.value(r).to_string(), grain, date_of(start.value(r))),
                Metrics {
                    counts: std::array::from_fn(|k| if counts[k].is_valid(r) { counts[k].value(r) } else { 0 }),
                    cost: cost.is_valid(r).then(|| f(cost.value(r))),
                    reported: reported.is_valid(r).then(|| f(reported.value(r))),
                },
            );
        }
    }
    let mut clicks: BTreeMap<Key, Clicks> = BTreeMap::new();
    for b in query(ctx, CLICKS_SQL).await? {
        let (key, ch, date, rev, margin, kind) =
            (text(&b, 0)?, text(&b, 1)?, days(&b, 2)?, money(&b, 3)?, money(&b, 4)?, text(&b, 5)?);
        for r in 0..b.num_rows() {
            if !key.is_valid(r) || !date.is_valid(r) {
                continue;
            }
            let d = date_of(date.value(r));
            let (rv, mg) = (f(rev.value(r)), if margin.is_valid(r) { f(margin.value(r)) } else { 0.0 });
            for scope in [ch.value(r), "all"] {
                for grain in ["month", "week"] {
                    let c =
                        clicks.entry((key.value(r).into(), scope.into(), grain, period_start(grain, d))).or_default();
                    if kind.value(r) == "lc" {
                        c.orders += 1;
                        c.revenue += rv;
                        c.margin += mg;
                    } else {
                        c.ps_revenue += rv;
                    }
                }
            }
        }
    }
    let run_date = match settings.get("as_of") {
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d").ok(),
        None => {
            let b = query(ctx, "select max(order_date) from fct_orders").await?;
            b.first().filter(|b| b.num_rows() > 0).and_then(|b| {
                let d = days(b, 0).ok()?;
                d.is_valid(0).then(|| date_of(d.value(0)))
            })
        }
    };
    let mut histories: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    if flows.iter().any(|f| f.revenue_flow && MODEL_BASELINE_TYPES.contains(&f.flow_type.as_str())) {
        for b in query(ctx, HISTORY_SQL).await? {
            let (p, at, net) = (text(&b, 0)?, micros(&b, 1)?, money(&b, 2)?);
            for r in 0..b.num_rows() {
                let v = if net.is_valid(r) { f(net.value(r)) } else { 0.0 };
                histories.entry(p.value(r).to_string()).or_default().push((at.value(r) as f64 / DAY_MICROS, v));
            }
        }
    }
    Ok(Loaded { flows, entries, metrics, clicks, run_date, replicates, histories, fits: Default::default() })
}

/// The entries of one scope and date range, with closed windows, as the estimator takes them.
fn period_entries(entries: &[Entry], scope: &str, from: NaiveDate, to: NaiveDate) -> (Vec<PeriodEntry>, bool) {
    let inside: Vec<&Entry> = entries.iter().filter(|e| e.closed && e.date >= from && e.date <= to).collect();
    let holdout = inside.iter().any(|e| e.holdout && arm_in(e, scope).is_some());
    let mut persons: BTreeMap<&str, u32> = BTreeMap::new();
    let mut out = Vec::new();
    for e in inside {
        if e.holdout != holdout {
            continue;
        }
        let Some(treated) = arm_in(e, scope) else { continue };
        let n = persons.len() as u32;
        let person = *persons.entry(e.person.as_str()).or_insert(n);
        out.push(PeriodEntry {
            person,
            parts: [
                e.parts[0].clone(),
                e.parts[1].clone(),
                if other_in(e, scope) { "1".into() } else { "0".into() },
                e.parts[2].clone(),
            ],
            treated,
            y: e.y,
        });
    }
    (out, holdout)
}

/// One output row.
#[derive(Debug, Default)]
struct Row {
    flow: usize,
    channel: String,
    grain: &'static str,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    metrics: Metrics,
    clicks: Clicks,
    entries_t: i64,
    entries_c: i64,
    pending: i64,
    coverage_ratio: Option<f64>,
    control_source: Option<&'static str>,
    grade: &'static str,
    method: &'static str,
    reason: Option<&'static str>,
    rolled_up: bool,
    lift: Option<PeriodLift>,
    scale: f64,
    mature: bool,
}

fn scaled(i: Option<Interval>, k: f64) -> Option<Interval> {
    i.map(|i| Interval { value: i.value * k, low: i.low * k, high: i.high * k })
}

fn build_rows(l: &Loaded) -> Vec<Row> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let empty = Vec::new();
    let mut rows = Vec::new();
    for (fi, flow) in l.flows.iter().enumerate() {
        let entries = l.entries.get(&flow.key).unwrap_or(&empty);
        let mut scopes: Vec<String> = flow.channels.clone();
        scopes.push("all".into());
        for scope in &scopes {
            for grain in ["month", "week"] {
                let mut periods: BTreeSet<NaiveDate> = entries.iter().map(|e| period_start(grain, e.date)).collect();
                let range = (flow.key.clone(), scope.clone(), grain, NaiveDate::MIN)
                    ..=(flow.key.clone(), scope.clone(), grain, NaiveDate::MAX);
                periods.extend(l.metrics.range(range.clone()).map(|(k, _)| k.3));
                periods.extend(l.clicks.range(range).map(|(k, _)| k.3));
                for start in periods {
                    let end = period_end(grain, start);
                    let key = (flow.key.clone(), scope.clone(), grain, start);
                    let mut row = Row {
                        flow: fi,
                        channel: scope.clone(),
                        grain,
                        start: Some(start),
                        end: Some(end),
                        metrics: l.metrics.get(&key).cloned().unwrap_or_default(),
                        clicks: l.clicks.get(&key).copied().unwrap_or_default(),
                        grade: "D",
                        method: "none",
                        scale: 1.0,
                        mature: l
                            .run_date
                            .is_some_and(|r| r >= end + chrono::Duration::days(flow.window + MATURITY_DAYS)),
                        ..Row::default()
                    };
                    let in_period: Vec<&Entry> = entries.iter().filter(|e| e.date >= start && e.date <= end).collect();
                    row.pending = in_period.iter().filter(|e| !e.closed && arm_in(e, scope).is_some()).count() as i64;
                    let treated: BTreeSet<&str> = in_period
                        .iter()
                        .filter(|e| arm_in(e, scope) == Some(true))
                        .map(|e| e.person.as_str())
                        .collect();
                    let reached: BTreeSet<&str> = in_period
                        .iter()
                        .filter(|e| arm_in(e, scope) == Some(true) && e.delivered)
                        .map(|e| e.person.as_str())
                        .collect();
                    row.coverage_ratio = (!treated.is_empty()).then(|| reached.len() as f64 / treated.len() as f64);
                    let (set, holdout) = period_entries(entries, scope, start, end);
                    row.entries_t = set.iter().filter(|e| e.treated).count() as i64;
                    row.entries_c = set.len() as i64 - row.entries_t;
                    estimate(l, flow, &mut row, set, holdout, threads);
                    rows.push(row);
                }
            }
        }
    }
    rows
}

fn estimate(l: &Loaded, flow: &Flow, row: &mut Row, set: Vec<PeriodEntry>, holdout: bool, threads: usize) {
    let (start, end) = (row.start.expect("set"), row.end.expect("set"));
    if !flow.revenue_flow {
        row.reason = Some(if flow.flow_type == "unclassified" { "unclassified_flow" } else { "not_a_revenue_flow" });
        return;
    }
    if set.is_empty() {
        row.reason = Some("no_closed_entries");
        return;
    }
    if row.entries_c == 0 {
        row.reason = Some("no_control_signal");
        if MODEL_BASELINE_TYPES.contains(&flow.flow_type.as_str()) {
            model_baseline(l, flow, row, start, end);
        } else {
            did_change(l, flow, row, start, end, threads);
        }
        return;
    }
    row.control_source = Some(if holdout { "random_holdout" } else { "natural_unreachable" });
    let seed_key = format!("{}|{}|{}", flow.key, row.channel, row.grain);
    // The bootstrap is the headline's interval: the flow as a whole, by month. Channel and week
    // rows take the analytic one (the bootstrap costs B passes over the entries).
    let replicates = if row.grain == "month" && row.channel == "all" { l.replicates } else { 0 };
    let seed = seed_for(&seed_key, &start.to_string(), MODEL_VERSION);
    // Evidence first, on the cheap analytic pass; the bootstrap only for a period that reports.
    let mut lift = period::estimate_period(&set, 0, seed, threads);
    if lift.evidence_met {
        lift = period::estimate_period(&set, replicates, seed, threads);
    } else {
        let entries = l.entries.get(&flow.key).map(Vec::as_slice).unwrap_or_default();
        let (quarter, q_holdout) = period_entries(entries, &row.channel, quarter_start(row.grain, start), end);
        let q = period::estimate_period(&quarter, 0, seed, threads);
        if !q.evidence_met || q_holdout != holdout {
            row.reason = Some("insufficient_control");
            // The placebo is stored whatever the grade (models.md 3.3).
            row.lift = Some(lift);
            return;
        }
        row.rolled_up = true;
        row.scale = if q.entries_t > 0 { lift.entries_t as f64 / q.entries_t as f64 } else { 0.0 };
        lift = period::estimate_period(&quarter, replicates, seed, threads);
    }
    if lift.revenue.is_none() {
        row.reason = Some("low_coverage");
        row.lift = Some(lift);
        return;
    }
    row.method = "itt_poststrat";
    let share = lift.entries_c as f64 / (lift.entries_c + lift.entries_t) as f64;
    (row.grade, row.reason) = if holdout {
        if share >= MIN_HOLDOUT_SHARE { ("A", None) } else { ("C", Some("holdout_below_5pct")) }
    } else if lift.placebo_passed == Some(true) {
        ("B", None)
    } else {
        ("C", Some("placebo_failed"))
    };
    row.lift = Some(lift);
}

/// F2 (models.md 3.4): treated entrants' revenue against their expected revenue from BG/NBD ×
/// Gamma-Gamma fitted on orders before the period; the interval is analytic over the entrants'
/// differences. Grade C.
fn model_baseline(l: &Loaded, flow: &Flow, row: &mut Row, start: NaiveDate, end: NaiveDate) {
    let entries = l.entries.get(&flow.key).map(Vec::as_slice).unwrap_or_default();
    let treated = treated_in(entries, &row.channel, start, end);
    let buyers = treated.iter().filter(|e| e.y[period::ORDERS] > 0.0).count();
    if treated.len() < period::MIN_CONTROLS || buyers < period::MIN_BUYING_CONTROLS {
        // The same minimum evidence as a control arm's, on the entrants themselves.
        row.reason = Some("insufficient_entries");
        return;
    }
    let cutoff = (start - epoch()).num_days() as f64;
    let mut fits = l.fits.borrow_mut();
    let fit = fits.entry(start).or_insert_with(|| {
        let all: Vec<&[(f64, f64)]> = l.histories.values().map(Vec::as_slice).collect();
        baseline::fit(&all, cutoff)
    });
    let Ok(model) = fit else { return };
    let empty = Vec::new();
    let mut diffs = Vec::with_capacity(treated.len());
    let (mut observed, mut expected) = (0.0, 0.0);
    for e in &treated {
        let history = l.histories.get(&e.person).unwrap_or(&empty);
        let Ok(yhat) = model.expected(history, e.at, flow.window as f64) else { return };
        observed += e.y[period::REVENUE];
        expected += yhat;
        diffs.push(e.y[period::REVENUE] - yhat);
    }
    let n = diffs.len() as f64;
    let mean = diffs.iter().sum::<f64>() / n;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let value = observed - expected;
    let half = crate::lift::estimator::Z_95 * (n * var).sqrt();
    row.method = "model_baseline";
    row.grade = "C";
    row.lift = Some(fallback_lift(
        treated.len(),
        observed,
        expected,
        Interval { value, low: value - half, high: value + half },
    ));
}

/// Treated entries of a scope with closed windows and entry dates in `[start, end]`.
fn treated_in<'a>(entries: &'a [Entry], scope: &str, start: NaiveDate, end: NaiveDate) -> Vec<&'a Entry> {
    entries.iter().filter(|e| e.closed && e.date >= start && e.date <= end && arm_in(e, scope) == Some(true)).collect()
}

/// A fallback's estimate (F1, F2): no controls, no strata, the analytic interval as headline.
fn fallback_lift(entries_t: usize, observed: f64, counterfactual: f64, revenue: Interval) -> PeriodLift {
    PeriodLift {
        entries_t,
        entries_c: 0,
        buying_controls: 0,
        evidence_met: true,
        strata_used: 0,
        coverage_share: 1.0,
        observed_treated: observed,
        counterfactual,
        lift_pct: (counterfactual != 0.0).then(|| revenue.value / counterfactual),
        revenue: Some(revenue),
        revenue_analytic: Some(revenue),
        bootstrapped: false,
        ci_unstable: false,
        orders: None,
        gross_margin: None,
        contribution: None,
        revenue_2h: None,
        revenue_winsorized: None,
        placebo: None,
        placebo_passed: None,
    }
}

/// F1 window on each side of a change, and the buffer dropped around it (models.md 3.4).
const DID_WINDOW_DAYS: i64 = 28;
const DID_BUFFER_DAYS: i64 = 3;

/// F1 (models.md 3.4): the flow's revenue per entry on and off around its launch (or stop)
/// inside the data, against every other live flow of another type over the same windows; the
/// difference times the period's treated entries. Grade C; the headline interval (the flow as a
/// whole, by month) is the weekly-block bootstrap, elsewhere the analytic one.
fn did_change(l: &Loaded, flow: &Flow, row: &mut Row, start: NaiveDate, end: NaiveDate, threads: usize) {
    let empty = Vec::new();
    let entries = l.entries.get(&flow.key).unwrap_or(&empty);
    let days = chrono::Duration::days;
    let has_off_before = flow.live_from.is_some_and(|c| entries.iter().any(|e| !e.live && e.date < c));
    let (change, launch) = match (flow.live_from, flow.live_until) {
        (Some(c), _) if has_off_before => (c, true),
        (_, Some(c)) => (c, false),
        _ => return,
    };
    let before = (change - days(DID_BUFFER_DAYS + DID_WINDOW_DAYS), change - days(DID_BUFFER_DAYS + 1));
    let after = (change + days(DID_BUFFER_DAYS), change + days(DID_BUFFER_DAYS + DID_WINDOW_DAYS - 1));
    let (on, off) = if launch { (after, before) } else { (before, after) };
    // Off must mean off: another flow of the type running then (a replacement) would make the
    // difference one flow against the other.
    let covered = l.flows.iter().any(|g| {
        g.key != flow.key
            && g.flow_type == flow.flow_type
            && g.live_from.is_some_and(|f| f <= off.1)
            && g.live_until.is_none_or(|u| u >= off.0)
    });
    if covered {
        return;
    }
    let inside = |e: &Entry, w: (NaiveDate, NaiveDate)| e.closed && e.date >= w.0 && e.date <= w.1;
    // Every entry of the four groups, keyed to its (person, ISO week) block for the bootstrap.
    let mut block_of: std::collections::HashMap<(String, i32, u32), u32> = std::collections::HashMap::new();
    let mut group_entries = Vec::new();
    let mut add = |group: usize, e: &Entry| {
        let week = e.date.iso_week();
        let next = block_of.len() as u32;
        let block = *block_of.entry((e.person.clone(), week.year(), week.week())).or_insert(next);
        group_entries.push(crate::lift::did::BlockEntry { group, block, y: e.y[period::REVENUE] });
    };
    for e in entries {
        if inside(e, on) && e.live {
            add(0, e);
        } else if inside(e, off) && !e.live {
            add(1, e);
        }
    }
    for (key, other) in &l.entries {
        let Some(g) = l.flows.iter().find(|f| &f.key == key) else { continue };
        if g.flow_type == flow.flow_type || !g.revenue_flow {
            continue;
        }
        for e in other.iter().filter(|e| e.live) {
            if inside(e, on) {
                add(2, e);
            } else if inside(e, off) {
                add(3, e);
            }
        }
    }
    let blocks = block_of.len();
    let [f_on, f_off, g_on, g_off] = crate::lift::did::group_arms(&group_entries);
    let Some((delta, se)) = crate::lift::did::difference_in_differences(&f_on, &f_off, &g_on, &g_off) else {
        return;
    };
    let treated = treated_in(entries, &row.channel, start, end);
    if treated.is_empty() {
        return;
    }
    let n = treated.len() as f64;
    let observed: f64 = treated.iter().map(|e| e.y[period::REVENUE]).sum();
    let value = delta * n;
    let half = crate::lift::estimator::Z_95 * se * n;
    let analytic = Interval { value, low: value - half, high: value + half };
    // As for the primary method: the bootstrap is the headline's interval (the flow as a whole,
    // by month), the analytic one stands in elsewhere.
    let bootstrapped = (row.grain == "month" && row.channel == "all" && l.replicates > 0)
        .then(|| {
            let seed =
                seed_for(&format!("{}|{}|{}|did", flow.key, row.channel, row.grain), &start.to_string(), MODEL_VERSION);
            crate::lift::did::block_bootstrap_interval(&group_entries, blocks, l.replicates, seed, threads)
        })
        .flatten();
    row.method = "did_change";
    row.grade = "C";
    let mut lift = fallback_lift(treated.len(), observed, observed - value, analytic);
    if let Some((lo, hi)) = bootstrapped {
        let b = Interval { value, low: lo * n, high: hi * n };
        lift.ci_unstable = b.unstable_against(&analytic);
        lift.revenue = Some(b);
        lift.bootstrapped = true;
    }
    row.lift = Some(lift);
}

/// Builds `fct_flow_contribution`.
pub fn build_flow_contribution(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(async move {
        let loaded = load(ctx).await?;
        let rows = build_rows(&loaded);
        ctx.read_batch(batch(&loaded, &rows)?)
    })
}

/// Columns in order, each with its field.
#[derive(Default)]
struct Columns {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Columns {
    fn push(&mut self, name: &str, nullable: bool, a: ArrayRef) {
        self.fields.push(Field::new(name, a.data_type().clone(), nullable));
        self.arrays.push(a);
    }

    fn text(&mut self, name: &str, nullable: bool, v: Vec<Option<String>>) {
        self.push(name, nullable, Arc::new(StringArray::from(v)));
    }

    fn float(&mut self, name: &str, v: Vec<Option<f64>>) {
        self.push(name, true, Arc::new(Float64Array::from(v)));
    }

    fn count(&mut self, name: &str, v: Vec<i64>) {
        self.push(name, false, Arc::new(Int64Array::from(v)));
    }

    fn money(&mut self, name: &str, v: Vec<Option<f64>>) -> Result<()> {
        let a = Decimal128Array::from(v.into_iter().map(|x| x.map(|x| (x * 1e4).round() as i128)).collect::<Vec<_>>());
        self.push(name, true, Arc::new(a.with_precision_and_scale(18, 4)?));
        Ok(())
    }

    /// `<name>`, `<name>_ci_low`, `<name>_ci_high` (or the given suffixes) of an interval.
    fn interval(&mut self, name: &str, suffix: [&str; 2], v: &[Option<Interval>], value: bool) -> Result<()> {
        if value {
            self.money(name, v.iter().map(|i| i.map(|i| i.value)).collect())?;
        }
        self.money(&format!("{name}{}", suffix[0]), v.iter().map(|i| i.map(|i| i.low)).collect())?;
        self.money(&format!("{name}{}", suffix[1]), v.iter().map(|i| i.map(|i| i.high)).collect())
    }
}

fn batch(l: &Loaded, rows: &[Row]) -> Result<RecordBatch> {
    let mut c = Columns::default();
    let flow = |r: &Row| &l.flows[r.flow];
    let col = |f: &dyn Fn(&Row) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    c.text("flow_key", false, col(&|r| Some(flow(r).key.clone())));
    c.text("platform", false, col(&|r| Some(flow(r).platform.clone())));
    c.text("flow_id", false, col(&|r| Some(flow(r).id.clone())));
    c.text("flow_name", true, col(&|r| flow(r).name.clone()));
    c.text("flow_type", false, col(&|r| Some(flow(r).flow_type.clone())));
    c.text("channel", false, col(&|r| Some(r.channel.clone())));
    c.text("period_grain", false, col(&|r| Some(r.grain.to_string())));
    let to_days = |d: Option<NaiveDate>| d.map(|d| (d - epoch()).num_days() as i32);
    c.push(
        "period_start",
        false,
        Arc::new(Date32Array::from(rows.iter().map(|r| to_days(r.start)).collect::<Vec<_>>())),
    );
    c.push("period_end", false, Arc::new(Date32Array::from(rows.iter().map(|r| to_days(r.end)).collect::<Vec<_>>())));
    let names =
        ["sends", "delivered", "recipients", "unique_clickers", "clicks", "unsubscribes", "spam_complaints", "bounces"];
    for (k, name) in names.iter().enumerate() {
        c.count(name, rows.iter().map(|r| r.metrics.counts[k]).collect());
    }
    let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
    c.float("click_rate", rows.iter().map(|r| ratio(r.metrics.counts[3], r.metrics.counts[2])).collect());
    c.float("unsubscribe_rate", rows.iter().map(|r| ratio(r.metrics.counts[5], r.metrics.counts[1])).collect());
    c.count("sms_segments", rows.iter().map(|r| r.metrics.counts[8]).collect());
    c.money("channel_cost", rows.iter().map(|r| r.metrics.cost).collect())?;
    c.count("last_click_orders", rows.iter().map(|r| r.clicks.orders).collect());
    c.money("last_click_revenue", rows.iter().map(|r| Some(r.clicks.revenue)).collect())?;
    c.money("last_click_gross_margin", rows.iter().map(|r| Some(r.clicks.margin)).collect())?;
    c.money("platform_style_revenue", rows.iter().map(|r| Some(r.clicks.ps_revenue)).collect())?;
    c.money("platform_reported_revenue", rows.iter().map(|r| r.metrics.reported).collect())?;
    c.count("entries_t", rows.iter().map(|r| r.entries_t).collect());
    c.count("entries_c", rows.iter().map(|r| r.entries_c).collect());
    c.count("entries_pending", rows.iter().map(|r| r.pending).collect());
    c.float("coverage_ratio", rows.iter().map(|r| r.coverage_ratio).collect());
    c.text("control_source", true, col(&|r| r.control_source.map(String::from)));
    c.text("evidence_grade", false, col(&|r| Some(r.grade.to_string())));
    c.text("lift_method", false, col(&|r| Some(r.method.to_string())));
    c.text("lift_reason", true, col(&|r| r.reason.map(String::from)));
    c.text("rolled_up_to", true, col(&|r| r.rolled_up.then(|| "trailing_quarter".to_string())));
    fn est(r: &Row) -> Option<&PeriodLift> {
        r.lift.as_ref().filter(|_| r.method != "none")
    }
    c.push(
        "strata_used",
        true,
        Arc::new(Int32Array::from(
            rows.iter().map(|r| r.lift.as_ref().map(|l| l.strata_used as i32)).collect::<Vec<_>>(),
        )),
    );
    c.float("coverage_share", rows.iter().map(|r| r.lift.as_ref().map(|l| l.coverage_share)).collect());
    c.money("observed_revenue_treated", rows.iter().map(|r| est(r).map(|l| l.observed_treated * r.scale)).collect())?;
    c.money("counterfactual_revenue", rows.iter().map(|r| est(r).map(|l| l.counterfactual * r.scale)).collect())?;
    c.float("incremental_orders", rows.iter().map(|r| est(r).and_then(|l| l.orders).map(|v| v * r.scale)).collect());
    let rev: Vec<Option<Interval>> = rows.iter().map(|r| est(r).and_then(|l| scaled(l.revenue, r.scale))).collect();
    c.interval("incremental_revenue", ["_ci_low", "_ci_high"], &rev, true)?;
    let ana: Vec<_> = rows.iter().map(|r| est(r).and_then(|l| scaled(l.revenue_analytic, r.scale))).collect();
    c.interval("incremental_revenue", ["_ci_low_analytic", "_ci_high_analytic"], &ana, false)?;
    c.text(
        "ci_method",
        true,
        col(&|r| {
            est(r).map(|e| match (e.bootstrapped, r.method) {
                (true, "did_change") => format!("weekly_block_bootstrap_{}", l.replicates),
                (true, _) => format!("poisson_bootstrap_{}", l.replicates),
                _ => "analytic".into(),
            })
        }),
    );
    c.push(
        "ci_unstable",
        true,
        Arc::new(BooleanArray::from(rows.iter().map(|r| est(r).map(|l| l.ci_unstable)).collect::<Vec<_>>())),
    );
    c.float("lift_pct", rows.iter().map(|r| est(r).and_then(|l| l.lift_pct)).collect());
    c.money(
        "incremental_revenue_2h",
        rows.iter().map(|r| est(r).and_then(|l| l.revenue_2h).map(|v| v * r.scale)).collect(),
    )?;
    c.money(
        "incremental_revenue_winsorized",
        rows.iter().map(|r| est(r).and_then(|l| l.revenue_winsorized).map(|v| v * r.scale)).collect(),
    )?;
    let placebo: Vec<_> = rows.iter().map(|r| r.lift.as_ref().and_then(|l| scaled(l.placebo, r.scale))).collect();
    c.money("placebo_revenue_diff", placebo.iter().map(|i| i.map(|i| i.value)).collect())?;
    c.interval("placebo", ["_ci_low", "_ci_high"], &placebo, false)?;
    let gm: Vec<_> = rows.iter().map(|r| est(r).and_then(|l| scaled(l.gross_margin, r.scale))).collect();
    c.interval("incremental_gross_margin", ["_ci_low", "_ci_high"], &gm, true)?;
    let cm: Vec<_> = rows
        .iter()
        .map(|r| {
            let cost = r.metrics.cost.unwrap_or(0.0);
            est(r).and_then(|l| scaled(l.contribution, r.scale)).map(|i| Interval {
                value: i.value - cost,
                low: i.low - cost,
                high: i.high - cost,
            })
        })
        .collect();
    c.interval("incremental_contribution_margin", ["_ci_low", "_ci_high"], &cm, true)?;
    c.float(
        "incrementality_ratio",
        rows.iter()
            .zip(&rev)
            .map(|(r, i)| i.and_then(|i| (r.clicks.revenue > 0.0).then(|| i.value / r.clicks.revenue)))
            .collect(),
    );
    c.float(
        "attribution_inflation",
        rows.iter()
            .zip(&rev)
            .map(|(r, i)| i.and_then(|i| (i.value > 0.0).then(|| r.clicks.revenue / i.value)))
            .collect(),
    );
    c.push("is_mature", false, Arc::new(BooleanArray::from(rows.iter().map(|r| r.mature).collect::<Vec<_>>())));
    c.text("model_version", false, col(&|_| Some(MODEL_VERSION.to_string())));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(c.fields)), c.arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(person: usize, at: f64, y: f64, orders: f64) -> Entry {
        let mut ys = [0.0; OUTCOMES];
        ys[period::REVENUE] = y;
        ys[period::ORDERS] = orders;
        Entry {
            person: format!("p{person}"),
            date: date_of(at as i32),
            arm: Some(true),
            email: true,
            sms: false,
            other: false,
            held_out: false,
            holdout: false,
            parts: [String::new(), String::new(), String::new()],
            closed: true,
            y: ys,
            delivered: true,
            at,
            live: true,
        }
    }

    /// 1,500 persons buying as BG/NBD assumes (Poisson purchases at a gamma-distributed rate, a
    /// beta-distributed chance to stop after each), spend varying by person; every one enters a
    /// win-back flow on day 20,100 with its real next-30-day revenue (plus `extra`) as outcome.
    fn population(extra: f64) -> Loaded {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Beta, Distribution, Exp, Gamma};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (rate, stop) = (Gamma::new(2.0, 1.0 / 90.0).unwrap(), Beta::new(1.0, 5.0).unwrap());
        let mut histories = BTreeMap::new();
        let mut entries = Vec::new();
        for i in 0..1500usize {
            let (lambda, p): (f64, f64) = (rate.sample(&mut rng), stop.sample(&mut rng));
            let mean = rng.random_range(20.0..120.0);
            let mut day = rng.random_range(19_500.0..20_000.0);
            let mut h = Vec::new();
            while day < 20_400.0 {
                h.push((day, mean * rng.random_range(0.7..1.3)));
                if rng.random_bool(p) {
                    break;
                }
                day += Exp::new(lambda).unwrap().sample(&mut rng);
            }
            let window: Vec<&(f64, f64)> = h.iter().filter(|(d, _)| (20_100.0..20_130.0).contains(d)).collect();
            let y: f64 = window.iter().map(|(_, v)| v).sum();
            entries.push(entry(i, 20_100.0, y + extra, window.len() as f64 + f64::from(u8::from(extra > 0.0))));
            histories.insert(format!("p{i}"), h);
        }
        let flow = Flow {
            key: "f".into(),
            platform: "klaviyo".into(),
            id: "F".into(),
            name: None,
            flow_type: "winback".into(),
            channels: vec!["email".into()],
            window: 30,
            revenue_flow: true,
            live_from: None,
            live_until: None,
        };
        Loaded {
            flows: vec![flow],
            entries: BTreeMap::from([("f".to_string(), entries)]),
            metrics: BTreeMap::new(),
            clicks: BTreeMap::new(),
            run_date: None,
            replicates: 0,
            histories,
            fits: Default::default(),
        }
    }

    fn f2(l: &Loaded) -> Row {
        let start = date_of(20_100);
        let mut row =
            Row { channel: "all".into(), grain: "month", start: Some(start), end: Some(start), ..Row::default() };
        model_baseline(l, &l.flows[0], &mut row, start, start);
        row
    }

    #[test]
    fn the_model_baseline_finds_no_lift_in_unchanged_behaviour_and_a_planted_one() {
        let l = population(0.0);
        let none = f2(&l);
        assert_eq!(
            (none.method, none.grade),
            ("model_baseline", "C"),
            "{:?} {:?}",
            none.reason,
            l.fits.borrow().values().next().map(|f| f.as_ref().err().cloned())
        );
        let r = none.lift.as_ref().unwrap().revenue.unwrap();
        let observed = none.lift.as_ref().unwrap().observed_treated;
        assert!(r.value.abs() < 0.15 * observed, "no effect, yet {r:?} against observed {observed}");
        // Every entrant spends 30 more: 45,000 on top.
        let planted = f2(&population(30.0)).lift.unwrap().revenue.unwrap();
        assert!((planted.value - r.value - 45_000.0).abs() < 1.0, "{planted:?} vs {r:?}");
        assert!(planted.low < planted.value && planted.value < planted.high);
    }
}
