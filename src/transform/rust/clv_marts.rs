//! The CLV marts of models.md 4.15 and 4.16, over [`crate::clv`]:
//!
//! * `fct_clv_customer` — fit date × person: the lifetimes-style summary (frequency, recency, T,
//!   monetary value, in weeks of 7 days), BG/NBD P(alive) and expected purchases, Gamma-Gamma expected
//!   spend and the discounted 12-month CLV, with the person's historical figures next to them.
//! * `fct_clv` — as-of month × segment: the historical (descriptive) CLV of 4.15 over the 12 months
//!   ending at the as-of month, and the means of the person-level predictions.
//! * `fct_repeat_purchase` — cohort month × cut: Kaplan–Meier time to second purchase and the related
//!   KPIs of 4.16 ([`clv::repeat_purchase_metrics`]).
//!
//! Inputs: qualifying orders of `fct_orders` with their person from `int_order_person` (orders without
//! a person stay out), `cfg_settings` for the settings below. The data cut-off (models.md 1.5) is
//! `cfg_settings.as_of` when set, else the day before the latest `order_date` of `fct_orders` (the
//! latest landed day is taken as incomplete); the model fit date and the as-of month derive from it, so
//! a rerun on the same data gives the same rows (no wall clock, rows sorted by the primary key).
//!
//! Settings (none of them is in the default `cfg_settings` seed; the defaults are the spec's):
//! `clv_monthly_discount_rate` (0.01), `lifespan_cap_years` (5), `churn_days` (365).
//!
//! When a fit fails (too few customers, nobody bought twice, a likelihood without a finite maximum),
//! the columns that need it are NULL and `prediction_note` says why; the other model's columns are
//! still filled. BG/NBD expectations are computed for every `a > 0` as the clv module (and lifetimes)
//! do, although models.md 4.15 says to report NULL for `a ≤ 1`; `prediction_note` flags such a fit.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Field, Int64Type, Schema, TimeUnit};
use chrono::{Datelike, Months, NaiveDate};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::future::BoxFuture;

use crate::clv::{self, BgNbd, BgNbdFit, ClvSettings, ClvTimeUnit, GammaGamma, GammaGammaFit, Period};

/// Version of this implementation of models.md 4.15 / 4.16 (1.6).
pub const MODEL_VERSION: &str = "1.0.0";

/// Weeks of the `fct_clv.pred_purchases_12m_mean` horizon (models.md: "the next 52 weeks").
const WEEKS_12M: f64 = 52.0;
/// Holdout length of the calibration check (models.md 4.15: 26 weeks).
const HOLDOUT_DAYS: i64 = 26 * 7;
/// Top calibration-frequency bucket of the holdout check ("7+").
const HOLDOUT_TOP_BUCKET: u32 = 7;
/// Scale of `Decimal(18,4)`.
const DECIMAL_SCALE: f64 = 1e4;

/// The settings of the CLV marts, from `cfg_settings`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvMartSettings {
    /// Pinned data cut-off (`as_of`); `None`: derived from the orders.
    pub as_of: Option<NaiveDate>,
    /// Monthly discount rate of the 12-month CLV (`clv_monthly_discount_rate`, default 0.01).
    pub monthly_discount_rate: f64,
    /// Cap of `avg_lifespan_years` (`lifespan_cap_years`, default 5).
    pub lifespan_cap_years: f64,
    /// Days without a qualifying order after which a person counts as churned (`churn_days`, 365).
    pub churn_days: i64,
}

impl Default for ClvMartSettings {
    fn default() -> Self {
        Self { as_of: None, monthly_discount_rate: 0.01, lifespan_cap_years: 5.0, churn_days: 365 }
    }
}

/// One order of a person, as read from `fct_orders` ⋈ `int_order_person`.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonOrder {
    pub person_key: String,
    pub order_id: i64,
    /// `order_at`, µs UTC (orders a person's orders; ties by `order_id`).
    pub order_at: i64,
    pub order_date: NaiveDate,
    pub is_qualifying: bool,
    pub non_qualifying_reason: Option<String>,
    /// Net revenue in units of 1e-4 of the reporting currency (`Decimal(18,4)`).
    pub net_revenue: i128,
    /// Gross margin, same unit.
    pub gross_margin: i128,
    pub offer_type: String,
}

/// A person's qualifying history up to the cut-off.
#[derive(Debug, Clone)]
struct Person {
    first_date: NaiveDate,
    first_offer: String,
    last_date: NaiveDate,
    orders: i64,
    net: i128,
    margin: i128,
    /// Qualifying orders: (date, net, margin).
    qualifying: Vec<(NaiveDate, i128, i128)>,
    /// Every order up to the cut-off: (date, non-qualifying reason).
    all: Vec<(NaiveDate, Option<String>)>,
}

impl Person {
    fn cohort_month(&self) -> NaiveDate {
        month_start(self.first_date)
    }
}

/// Model outputs of one person.
#[derive(Debug, Clone, Default)]
struct Prediction {
    p_alive: Option<f64>,
    exp_90d: Option<f64>,
    exp_365d: Option<f64>,
    exp_52w: Option<f64>,
    spend: Option<f64>,
    clv: Option<f64>,
    clv_margin: Option<f64>,
    status: &'static str,
    note: Option<String>,
}

/// Everything the CLV marts derive from the orders.
struct Prepared {
    settings: ClvMartSettings,
    persons: BTreeMap<String, Person>,
    summary: clv::PurchaseSummary<String>,
    bg: std::result::Result<BgNbdFit, String>,
    gg: std::result::Result<GammaGammaFit, String>,
    correlation: Option<f64>,
    holdout_mape: std::result::Result<Option<f64>, String>,
    predictions: Vec<Prediction>,
}

/// Builds `fct_clv_customer`.
pub fn build_clv_customer(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(async move {
        let (orders, cutoff, settings) = load(ctx).await?;
        ctx.read_batch(clv_customer_batch(&orders, cutoff, settings)?)
    })
}

/// Builds `fct_clv`.
pub fn build_clv(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(async move {
        let (orders, cutoff, settings) = load(ctx).await?;
        ctx.read_batch(clv_segment_batch(&orders, cutoff, settings)?)
    })
}

/// Builds `fct_repeat_purchase`.
pub fn build_repeat_purchase(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(async move {
        let (orders, cutoff, _) = load(ctx).await?;
        ctx.read_batch(repeat_purchase_batch(&orders, cutoff)?)
    })
}

const ORDERS_SQL: &str = "\
select p.person_key, cast(o.order_id as bigint) as order_id, o.order_at, o.order_date, o.is_qualifying,
       o.non_qualifying_reason, o.net_revenue, o.gross_margin, o.offer_type
from fct_orders o
join int_order_person p on p.order_id = cast(o.order_id as bigint)
where p.person_key is not null and o.order_date is not null";

/// Reads the orders with their person, the settings and the data cut-off (`None`: no dated order).
async fn load(ctx: &SessionContext) -> Result<(Vec<PersonOrder>, Option<NaiveDate>, ClvMartSettings)> {
    let settings = read_settings(ctx).await?;
    let mut orders = Vec::new();
    for b in ctx.sql(ORDERS_SQL).await?.collect().await? {
        let person = strings(&b, 0)?;
        let id = arrow::compute::cast(b.column(1), &DataType::Int64)?;
        let id = id.as_primitive::<Int64Type>();
        let at = arrow::compute::cast(b.column(2), &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))?;
        let at = arrow::compute::cast(&at, &DataType::Int64)?;
        let at = at.as_primitive::<Int64Type>();
        let date = arrow::compute::cast(b.column(3), &DataType::Date32)?;
        let date = date.as_primitive::<Date32Type>();
        let qualifying = b.column(4).as_boolean();
        let reason = strings(&b, 5)?;
        let net = decimals(&b, 6)?;
        let margin = decimals(&b, 7)?;
        let offer = strings(&b, 8)?;
        for r in 0..b.num_rows() {
            orders.push(PersonOrder {
                person_key: person.value(r).to_string(),
                order_id: id.value(r),
                order_at: at.value(r),
                order_date: from_days(date.value(r)),
                is_qualifying: qualifying.is_valid(r) && qualifying.value(r),
                non_qualifying_reason: reason.is_valid(r).then(|| reason.value(r).to_string()),
                net_revenue: net.value(r),
                gross_margin: margin.value(r),
                offer_type: if offer.is_valid(r) { offer.value(r).to_string() } else { "unknown".to_string() },
            });
        }
    }
    let cutoff = match settings.as_of {
        Some(d) => Some(d),
        None => {
            let b = ctx.sql("select max(order_date) from fct_orders").await?.collect().await?;
            let latest = b
                .iter()
                .find(|b| b.num_rows() > 0)
                .map(|b| arrow::compute::cast(b.column(0), &DataType::Date32))
                .transpose()?
                .and_then(|a| a.is_valid(0).then(|| from_days(a.as_primitive::<Date32Type>().value(0))));
            latest.and_then(|d| d.pred_opt())
        }
    };
    Ok((orders, cutoff, settings))
}

async fn read_settings(ctx: &SessionContext) -> Result<ClvMartSettings> {
    let mut s = ClvMartSettings::default();
    for b in ctx.sql("select key, value from cfg_settings").await?.collect().await? {
        let (key, value) = (strings(&b, 0)?, strings(&b, 1)?);
        for r in 0..b.num_rows() {
            if !(key.is_valid(r) && value.is_valid(r)) {
                continue;
            }
            let v = value.value(r).trim();
            let bad =
                |what: &str| DataFusionError::Execution(format!("cfg_settings {}: {v:?} is not {what}", key.value(r)));
            match key.value(r) {
                "as_of" => {
                    s.as_of = Some(NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad("a YYYY-MM-DD date"))?)
                }
                "clv_monthly_discount_rate" => {
                    s.monthly_discount_rate =
                        v.parse().ok().filter(|d: &f64| d.is_finite() && *d > -1.0).ok_or_else(|| bad("a rate > -1"))?
                }
                "lifespan_cap_years" => {
                    s.lifespan_cap_years = v
                        .parse()
                        .ok()
                        .filter(|d: &f64| d.is_finite() && *d > 0.0)
                        .ok_or_else(|| bad("a positive number"))?
                }
                "churn_days" => {
                    s.churn_days =
                        v.parse().ok().filter(|d: &i64| *d > 0).ok_or_else(|| bad("a positive whole number"))?
                }
                _ => {}
            }
        }
    }
    Ok(s)
}

/// Qualifying history per person up to the cut-off (persons with at least one qualifying order).
fn persons(orders: &[PersonOrder], cutoff: NaiveDate) -> BTreeMap<String, Person> {
    let mut sorted: Vec<&PersonOrder> = orders.iter().filter(|o| o.order_date <= cutoff).collect();
    sorted.sort_by(|a, b| (&a.person_key, a.order_at, a.order_id).cmp(&(&b.person_key, b.order_at, b.order_id)));
    let mut out: BTreeMap<String, Person> = BTreeMap::new();
    let mut all: BTreeMap<&str, Vec<(NaiveDate, Option<String>)>> = BTreeMap::new();
    for o in sorted {
        all.entry(&o.person_key).or_default().push((o.order_date, o.non_qualifying_reason.clone()));
        if !o.is_qualifying {
            continue;
        }
        let p = out.entry(o.person_key.clone()).or_insert_with(|| Person {
            first_date: o.order_date,
            first_offer: o.offer_type.clone(),
            last_date: o.order_date,
            orders: 0,
            net: 0,
            margin: 0,
            qualifying: Vec::new(),
            all: Vec::new(),
        });
        p.first_date = p.first_date.min(o.order_date);
        p.last_date = p.last_date.max(o.order_date);
        p.orders += 1;
        p.net += o.net_revenue;
        p.margin += o.gross_margin;
        p.qualifying.push((o.order_date, o.net_revenue, o.gross_margin));
    }
    for (key, p) in &mut out {
        p.all = all.remove(key.as_str()).unwrap_or_default();
    }
    out
}

fn prepare(orders: &[PersonOrder], cutoff: NaiveDate, settings: ClvMartSettings) -> Result<Prepared> {
    let persons = persons(orders, cutoff);
    let mut keys = Vec::new();
    let mut dates = Vec::new();
    let mut values = Vec::new();
    for (key, p) in &persons {
        for (d, net, _) in &p.qualifying {
            keys.push(key.clone());
            dates.push(*d);
            values.push(*net as f64 / DECIMAL_SCALE);
        }
    }
    let summary = clv::summary_from_transactions(&keys, &dates, Some(&values), cutoff, Period::Days, 7.0)
        .map_err(|e| DataFusionError::Execution(format!("CLV summary: {e}")))?;
    if summary.customers.len() != persons.len() || summary.customers.iter().zip(persons.keys()).any(|(a, b)| a != b) {
        return Err(DataFusionError::Internal("CLV summary customers differ from the persons".into()));
    }
    let zeros = vec![0.0; summary.len()];
    let monetary = summary.monetary_value.as_deref().unwrap_or(&zeros);
    let bg = BgNbd::fit(&summary.frequency, &summary.recency, &summary.t).map_err(|e| e.to_string());
    let gg = GammaGamma::fit(&summary.frequency, monetary).map_err(|e| e.to_string());
    let correlation = clv::frequency_monetary_correlation(&summary.frequency, monetary).ok().flatten();
    let holdout_mape = holdout_mape(&keys, &dates, cutoff);
    let clv_settings =
        ClvSettings { months: 12, monthly_discount_rate: settings.monthly_discount_rate, unit: ClvTimeUnit::Weeks };
    let predictions = persons
        .values()
        .enumerate()
        .map(|(i, p)| {
            let (x, tx, t, m) = (summary.frequency[i], summary.recency[i], summary.t[i], monetary[i]);
            predict(&bg, &gg, x, tx, t, m, p.margin as f64 / p.net as f64, clv_settings)
        })
        .collect();
    Ok(Prepared { settings, persons, summary, bg, gg, correlation, holdout_mape, predictions })
}

#[allow(clippy::too_many_arguments)]
fn predict(
    bg: &std::result::Result<BgNbdFit, String>,
    gg: &std::result::Result<GammaGammaFit, String>,
    x: f64,
    tx: f64,
    t: f64,
    m: f64,
    margin_rate: f64,
    settings: ClvSettings,
) -> Prediction {
    let mut out = Prediction { status: "predicted", ..Prediction::default() };
    let mut notes = Vec::new();
    let mut failed = false;
    let mut keep = |r: clv::Result<f64>, what: &str, notes: &mut Vec<String>| match r {
        Ok(v) if v.is_finite() => Some(v),
        Ok(v) => {
            failed = true;
            notes.push(format!("{what}: not finite ({v})"));
            None
        }
        Err(e) => {
            failed = true;
            notes.push(format!("{what}: {e}"));
            None
        }
    };
    match bg {
        Ok(fit) => {
            let b = &fit.model;
            out.p_alive = keep(b.probability_alive(x, tx, t), "p_alive", &mut notes);
            out.exp_90d = keep(b.conditional_expected_purchases(90.0 / 7.0, x, tx, t), "exp_purchases_90d", &mut notes);
            out.exp_365d =
                keep(b.conditional_expected_purchases(365.0 / 7.0, x, tx, t), "exp_purchases_365d", &mut notes);
            out.exp_52w = keep(b.conditional_expected_purchases(WEEKS_12M, x, tx, t), "exp_purchases_52w", &mut notes);
        }
        Err(e) => {
            out.status = "no_purchase_model";
            notes.push(format!("BG/NBD not fitted: {e}"));
        }
    }
    match gg {
        Ok(fit) => {
            out.spend = keep(fit.model.conditional_expected_average_profit(x, m), "exp_avg_spend", &mut notes);
            if let Ok(b) = bg {
                out.clv = keep(
                    fit.model.customer_lifetime_value(&b.model, x, tx, t, m, settings),
                    "pred_clv_12m",
                    &mut notes,
                );
                out.clv_margin = out.clv.map(|c| c * margin_rate).filter(|c| c.is_finite());
            }
        }
        Err(e) => {
            if out.status == "predicted" {
                out.status = "no_spend_model";
            }
            notes.push(format!("Gamma-Gamma not fitted: {e}"));
        }
    }
    if failed && out.status == "predicted" {
        out.status = "not_computable";
    }
    out.note = (!notes.is_empty()).then(|| notes.join("; "));
    out
}

/// models.md 4.15 holdout check: fit with τ = cut-off − 26 weeks, predict the 26-week holdout per
/// person, `holdout_mape` over calibration-frequency buckets 0…7+.
fn holdout_mape(keys: &[String], dates: &[NaiveDate], cutoff: NaiveDate) -> std::result::Result<Option<f64>, String> {
    let calibration_end = cutoff - chrono::Duration::days(HOLDOUT_DAYS);
    let s = clv::summary_from_transactions(keys, dates, None, calibration_end, Period::Days, 7.0)
        .map_err(|e| e.to_string())?;
    let fit = BgNbd::fit(&s.frequency, &s.recency, &s.t).map_err(|e| format!("calibration fit: {e}"))?;
    let actual =
        clv::purchase_periods_between(keys, dates, calibration_end, cutoff, Period::Days).map_err(|e| e.to_string())?;
    let horizon = HOLDOUT_DAYS as f64 / 7.0;
    let mut actual_col = Vec::with_capacity(s.len());
    let mut predicted = Vec::with_capacity(s.len());
    for i in 0..s.len() {
        actual_col.push(f64::from(actual.get(&s.customers[i]).copied().unwrap_or(0)));
        predicted.push(
            fit.model
                .conditional_expected_purchases(horizon, s.frequency[i], s.recency[i], s.t[i])
                .map_err(|e| e.to_string())?,
        );
    }
    clv::holdout_by_frequency(&s.frequency, &actual_col, &predicted, HOLDOUT_TOP_BUCKET)
        .map(|r| r.mape)
        .map_err(|e| e.to_string())
}

/// The fitted parameters as JSON (`model_params`), `None` without any fit.
fn model_params(p: &Prepared) -> Option<String> {
    let mut map = serde_json::Map::new();
    if let Ok(fit) = &p.bg {
        let b = &fit.model;
        for (k, v) in
            [("r", b.r), ("alpha", b.alpha), ("a", b.a), ("b", b.b), ("bgnbd_log_likelihood", fit.log_likelihood)]
        {
            map.insert(k.into(), serde_json::json!(v));
        }
        map.insert("bgnbd_customers".into(), serde_json::json!(fit.customers));
    }
    if let Ok(fit) = &p.gg {
        let g = &fit.model;
        for (k, v) in [("p", g.p), ("q", g.q), ("v", g.v), ("gamma_gamma_log_likelihood", fit.log_likelihood)] {
            map.insert(k.into(), serde_json::json!(v));
        }
        map.insert("gamma_gamma_customers".into(), serde_json::json!(fit.customers));
        if let Some(c) = p.correlation {
            map.insert("frequency_monetary_correlation".into(), serde_json::json!(c));
        }
    }
    if map.is_empty() {
        return None;
    }
    map.insert("monthly_discount_rate".into(), serde_json::json!(p.settings.monthly_discount_rate));
    Some(serde_json::Value::Object(map).to_string())
}

/// Fit-wide note for `fct_clv.prediction_note`: why predictive columns are NULL, and the a ≤ 1 flag.
fn fit_note(p: &Prepared) -> Option<String> {
    let mut notes = Vec::new();
    match &p.bg {
        Ok(fit) if fit.model.a <= 1.0 => notes.push(format!(
            "BG/NBD a = {} <= 1: expectations computed as lifetimes and the clv module do (models.md 4.15 says NULL)",
            fit.model.a
        )),
        Ok(_) => {}
        Err(e) => notes.push(format!("BG/NBD not fitted: {e}")),
    }
    if let Err(e) = &p.gg {
        notes.push(format!("Gamma-Gamma not fitted: {e}"));
    }
    if let Err(e) = &p.holdout_mape {
        notes.push(format!("holdout check not possible: {e}"));
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// `fct_clv_customer` rows (empty without a cut-off).
pub fn clv_customer_batch(
    orders: &[PersonOrder],
    cutoff: Option<NaiveDate>,
    settings: ClvMartSettings,
) -> Result<RecordBatch> {
    let schema = clv_customer_schema();
    let Some(cutoff) = cutoff else { return Ok(RecordBatch::new_empty(schema)) };
    let p = prepare(orders, cutoff, settings)?;
    let n = p.persons.len();
    let monetary = p.summary.monetary_value.clone().unwrap_or_else(|| vec![0.0; n]);
    let pr = &p.predictions;
    let f =
        |get: fn(&Prediction) -> Option<f64>| -> ArrayRef { Arc::new(pr.iter().map(get).collect::<Float64Array>()) };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(vec![to_days(cutoff); n])),
        Arc::new(p.persons.keys().map(Some).collect::<StringArray>()),
        Arc::new(Date32Array::from_iter_values(p.persons.values().map(|x| to_days(x.cohort_month())))),
        Arc::new(Date32Array::from_iter_values(p.persons.values().map(|x| to_days(x.first_date)))),
        Arc::new(Date32Array::from_iter_values(p.persons.values().map(|x| to_days(x.last_date)))),
        Arc::new(p.persons.values().map(|x| Some(x.first_offer.as_str())).collect::<StringArray>()),
        Arc::new(Int64Array::from_iter_values(p.persons.values().map(|x| x.orders))),
        decimal(p.persons.values().map(|x| Some(x.net)))?,
        decimal(p.persons.values().map(|x| Some(x.margin)))?,
        Arc::new(Int64Array::from_iter_values(p.summary.frequency.iter().map(|x| *x as i64))),
        Arc::new(Float64Array::from(p.summary.recency.clone())),
        Arc::new(Float64Array::from(p.summary.t.clone())),
        Arc::new(Float64Array::from(monetary)),
        f(|x| x.p_alive),
        f(|x| x.exp_90d),
        f(|x| x.exp_365d),
        f(|x| x.spend),
        f(|x| x.clv),
        f(|x| x.clv_margin),
        Arc::new(pr.iter().map(|x| Some(x.status)).collect::<StringArray>()),
        Arc::new(pr.iter().map(|x| x.note.as_deref()).collect::<StringArray>()),
        Arc::new(StringArray::from(vec![MODEL_VERSION; n])),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn clv_customer_schema() -> Arc<Schema> {
    schema(&[
        ("fit_date", DataType::Date32),
        ("person_key", DataType::Utf8),
        ("cohort_month", DataType::Date32),
        ("first_order_date", DataType::Date32),
        ("last_order_date", DataType::Date32),
        ("first_order_offer_type", DataType::Utf8),
        ("qualifying_orders", DataType::Int64),
        ("net_revenue", DataType::Decimal128(18, 4)),
        ("gross_margin", DataType::Decimal128(18, 4)),
        ("frequency", DataType::Int64),
        ("recency_weeks", DataType::Float64),
        ("t_weeks", DataType::Float64),
        ("monetary_value", DataType::Float64),
        ("p_alive", DataType::Float64),
        ("exp_purchases_90d", DataType::Float64),
        ("exp_purchases_365d", DataType::Float64),
        ("exp_avg_spend", DataType::Float64),
        ("pred_clv_12m", DataType::Float64),
        ("pred_clv_12m_margin", DataType::Float64),
        ("prediction_status", DataType::Utf8),
        ("prediction_note", DataType::Utf8),
        ("model_version", DataType::Utf8),
    ])
}

/// Segment keys of a person for `fct_clv` (those available without `dim_customer`).
fn segments(p: &Person) -> [(&'static str, String); 3] {
    let d = p.first_date;
    [
        ("all", "all".to_string()),
        ("cohort_quarter", format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1)),
        ("first_order_offer_type", p.first_offer.clone()),
    ]
}

/// One `fct_clv` row's figures.
#[derive(Default)]
struct SegmentRow {
    customers: i64,
    active_p: i64,
    orders_p: i64,
    net_p: i128,
    margin_p: i128,
    active_prior: i64,
    retained: i64,
    all_orders_p: i64,
    failed_orders_p: i64,
    churned_now: i64,
    predicted: i64,
    sums: [f64; 4],
    counts: [i64; 4],
    clv_sum: f64,
}

/// `fct_clv` rows (empty without a cut-off).
pub fn clv_segment_batch(
    orders: &[PersonOrder],
    cutoff: Option<NaiveDate>,
    settings: ClvMartSettings,
) -> Result<RecordBatch> {
    let schema = clv_segment_schema();
    let Some(cutoff) = cutoff else { return Ok(RecordBatch::new_empty(schema)) };
    let p = prepare(orders, cutoff, settings)?;
    if p.persons.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    let as_of_month = month_start(cutoff);
    let period_start = as_of_month - Months::new(11);
    let prior_start = period_start - Months::new(12);
    let in_p = |d: NaiveDate| d >= period_start && d <= cutoff;
    let in_prior = |d: NaiveDate| d >= prior_start && d < period_start;
    let mut rows: BTreeMap<(&'static str, String), SegmentRow> = BTreeMap::new();
    for (person, pred) in p.persons.values().zip(&p.predictions) {
        for key in segments(person) {
            let r = rows.entry(key).or_default();
            r.customers += 1;
            let mut active = false;
            let mut active_prior = false;
            for (d, net, margin) in &person.qualifying {
                if in_p(*d) {
                    active = true;
                    r.orders_p += 1;
                    r.net_p += net;
                    r.margin_p += margin;
                }
                active_prior |= in_prior(*d);
            }
            r.active_p += i64::from(active);
            r.active_prior += i64::from(active_prior);
            r.retained += i64::from(active_prior && active);
            for (d, reason) in &person.all {
                if in_p(*d) {
                    r.all_orders_p += 1;
                    r.failed_orders_p +=
                        i64::from(matches!(reason.as_deref(), Some("cancelled" | "voided" | "fully_refunded")));
                }
            }
            r.churned_now += i64::from((cutoff - person.last_date).num_days() > settings.churn_days);
            for (i, v) in [pred.exp_52w, pred.p_alive, pred.spend, pred.clv].into_iter().enumerate() {
                if let Some(v) = v {
                    r.sums[i] += v;
                    r.counts[i] += 1;
                }
            }
            if let Some(c) = pred.clv {
                r.predicted += 1;
                r.clv_sum += c;
            }
        }
    }
    let params = model_params(&p);
    let note = fit_note(&p);
    let fit_date = p.bg.is_ok().then_some(to_days(cutoff));
    let mape = p.holdout_mape.clone().ok().flatten();
    let n = rows.len();
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    let mut apv = Vec::with_capacity(n);
    let mut pf = Vec::with_capacity(n);
    let mut cva = Vec::with_capacity(n);
    let mut retention = Vec::with_capacity(n);
    let mut churn = Vec::with_capacity(n);
    let mut lifespan = Vec::with_capacity(n);
    let mut hclv = Vec::with_capacity(n);
    let mut hclv_margin = Vec::with_capacity(n);
    let mut failed_share = Vec::with_capacity(n);
    let mut churned = Vec::with_capacity(n);
    let mut means: [Vec<Option<f64>>; 4] = Default::default();
    for r in rows.values() {
        let net = r.net_p as f64 / DECIMAL_SCALE;
        let a = ratio(net, r.orders_p as f64);
        let f = ratio(r.orders_p as f64, r.active_p as f64);
        let v = a.zip(f).map(|(a, f)| a * f);
        let ret = ratio(r.retained as f64, r.active_prior as f64);
        let ch = ret.map(|x| 1.0 - x);
        let life =
            ch.map(|c| if c > 0.0 { (1.0 / c).min(settings.lifespan_cap_years) } else { settings.lifespan_cap_years });
        let h = v.zip(life).map(|(v, l)| v * l);
        apv.push(a);
        pf.push(f);
        cva.push(v);
        retention.push(ret);
        churn.push(ch);
        lifespan.push(life);
        hclv.push(h);
        hclv_margin.push(h.zip(ratio(r.margin_p as f64 / DECIMAL_SCALE, net)).map(|(h, m)| h * m));
        failed_share.push(ratio(r.failed_orders_p as f64, r.all_orders_p as f64));
        churned.push(r.churned_now as f64 / r.customers as f64);
        for (i, mean) in means.iter_mut().enumerate() {
            mean.push(ratio(r.sums[i], r.counts[i] as f64));
        }
    }
    let [m_purchases, m_alive, m_aov, m_clv] = means;
    let int =
        |get: fn(&SegmentRow) -> i64| -> ArrayRef { Arc::new(Int64Array::from_iter_values(rows.values().map(get))) };
    let float = |v: Vec<Option<f64>>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(vec![to_days(as_of_month); n])),
        Arc::new(rows.keys().map(|k| Some(k.0)).collect::<StringArray>()),
        Arc::new(rows.keys().map(|k| Some(k.1.as_str())).collect::<StringArray>()),
        Arc::new(Date32Array::from(vec![to_days(period_start); n])),
        Arc::new(Date32Array::from(vec![to_days(cutoff); n])),
        int(|r| r.customers),
        int(|r| r.active_p),
        int(|r| r.orders_p),
        decimal(rows.values().map(|r| Some(r.net_p)))?,
        decimal(rows.values().map(|r| Some(r.margin_p)))?,
        float(apv),
        float(pf),
        float(cva),
        int(|r| r.active_prior),
        float(retention),
        float(churn),
        float(lifespan),
        float(hclv),
        float(hclv_margin),
        float(failed_share),
        Arc::new(Float64Array::from(churned)),
        int(|r| r.predicted),
        float(m_purchases),
        float(m_alive),
        float(m_aov),
        float(m_clv),
        float(rows.values().map(|r| (r.predicted > 0).then_some(r.clv_sum)).collect()),
        Arc::new(Date32Array::from(vec![fit_date; n])),
        Arc::new(StringArray::from(vec![params.as_deref(); n])),
        float(vec![mape; n]),
        Arc::new(StringArray::from(vec![note.as_deref(); n])),
        Arc::new(StringArray::from(vec![MODEL_VERSION; n])),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn clv_segment_schema() -> Arc<Schema> {
    schema(&[
        ("as_of_month", DataType::Date32),
        ("segment_type", DataType::Utf8),
        ("segment_value", DataType::Utf8),
        ("period_start", DataType::Date32),
        ("data_cutoff", DataType::Date32),
        ("customers", DataType::Int64),
        ("customers_active_p", DataType::Int64),
        ("orders_p", DataType::Int64),
        ("net_revenue_p", DataType::Decimal128(18, 4)),
        ("gross_margin_p", DataType::Decimal128(18, 4)),
        ("avg_purchase_value", DataType::Float64),
        ("purchase_frequency", DataType::Float64),
        ("customer_value_annual", DataType::Float64),
        ("customers_active_prior", DataType::Int64),
        ("retention_rate_annual", DataType::Float64),
        ("churn_rate_annual", DataType::Float64),
        ("avg_lifespan_years", DataType::Float64),
        ("historical_clv", DataType::Float64),
        ("historical_clv_margin", DataType::Float64),
        ("cancelled_or_returned_share", DataType::Float64),
        ("churned_share_now", DataType::Float64),
        ("predicted_customers", DataType::Int64),
        ("pred_purchases_12m_mean", DataType::Float64),
        ("p_alive_mean", DataType::Float64),
        ("pred_aov_mean", DataType::Float64),
        ("pred_clv_12m_mean", DataType::Float64),
        ("pred_clv_12m_sum", DataType::Float64),
        ("model_fit_date", DataType::Date32),
        ("model_params", DataType::Utf8),
        ("holdout_mape", DataType::Float64),
        ("prediction_note", DataType::Utf8),
        ("model_version", DataType::Utf8),
    ])
}

/// `fct_repeat_purchase` rows: cohort month × cut (`all`, `first_order_offer_type`).
pub fn repeat_purchase_batch(orders: &[PersonOrder], cutoff: Option<NaiveDate>) -> Result<RecordBatch> {
    let schema = repeat_purchase_schema();
    let Some(cutoff) = cutoff else { return Ok(RecordBatch::new_empty(schema)) };
    let persons = persons(orders, cutoff);
    // (cohort month, cut type, cut value) → parallel (person, date) columns of qualifying orders.
    type Group<'a> = (Vec<&'a str>, Vec<NaiveDate>);
    let mut groups: BTreeMap<(NaiveDate, &'static str, String), Group> = BTreeMap::new();
    for (key, p) in &persons {
        for cut in [("all", "all".to_string()), ("first_order_offer_type", p.first_offer.clone())] {
            let g = groups.entry((p.cohort_month(), cut.0, cut.1)).or_default();
            for (d, _, _) in &p.qualifying {
                g.0.push(key.as_str());
                g.1.push(*d);
            }
        }
    }
    let mut metrics = Vec::with_capacity(groups.len());
    for (k, (people, dates)) in &groups {
        metrics
            .push(clv::repeat_purchase_metrics(people, dates, cutoff).map_err(|e| {
                DataFusionError::Execution(format!("fct_repeat_purchase {} {}={}: {e}", k.0, k.1, k.2))
            })?);
    }
    let n = groups.len();
    let float = |get: fn(&clv::RepeatPurchaseMetrics) -> Option<f64>| -> ArrayRef {
        Arc::new(metrics.iter().map(get).collect::<Float64Array>())
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from_iter_values(groups.keys().map(|k| to_days(k.0)))),
        Arc::new(groups.keys().map(|k| Some(k.1)).collect::<StringArray>()),
        Arc::new(groups.keys().map(|k| Some(k.2.as_str())).collect::<StringArray>()),
        Arc::new(Date32Array::from(vec![to_days(cutoff); n])),
        Arc::new(Int64Array::from_iter_values(metrics.iter().map(|m| m.customers as i64))),
        Arc::new(Int64Array::from_iter_values(metrics.iter().map(|m| m.second_purchasers as i64))),
        float(|m| Some(m.km_p2_30d)),
        float(|m| Some(m.km_p2_60d)),
        float(|m| Some(m.km_p2_90d)),
        float(|m| Some(m.km_p2_180d)),
        float(|m| Some(m.km_p2_365d)),
        float(|m| m.km_median_days_to_second),
        float(|m| m.median_days_to_second_observed),
        float(|m| m.mean_days_between_orders),
        float(|m| m.repeat_rate_90d),
        float(|m| m.repeat_rate_365d),
        Arc::new(StringArray::from(vec![MODEL_VERSION; n])),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

fn repeat_purchase_schema() -> Arc<Schema> {
    schema(&[
        ("cohort_month", DataType::Date32),
        ("cut_type", DataType::Utf8),
        ("cut_value", DataType::Utf8),
        ("data_cutoff", DataType::Date32),
        ("customers", DataType::Int64),
        ("second_purchasers", DataType::Int64),
        ("km_p2_30d", DataType::Float64),
        ("km_p2_60d", DataType::Float64),
        ("km_p2_90d", DataType::Float64),
        ("km_p2_180d", DataType::Float64),
        ("km_p2_365d", DataType::Float64),
        ("km_median_days_to_second", DataType::Float64),
        ("median_days_to_second_observed", DataType::Float64),
        ("mean_days_between_orders", DataType::Float64),
        ("repeat_rate_90d", DataType::Float64),
        ("repeat_rate_365d", DataType::Float64),
        ("model_version", DataType::Utf8),
    ])
}

fn schema(fields: &[(&str, DataType)]) -> Arc<Schema> {
    Arc::new(Schema::new(fields.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>()))
}

fn decimal(values: impl Iterator<Item = Option<i128>>) -> Result<ArrayRef> {
    Ok(Arc::new(values.collect::<Decimal128Array>().with_precision_and_scale(18, 4)?))
}

use super::columns::text as strings;

fn decimals(b: &RecordBatch, i: usize) -> Result<arrow::array::PrimitiveArray<Decimal128Type>> {
    let a = super::columns::money(b, i)?;
    if a.null_count() > 0 {
        return Err(DataFusionError::Execution(format!("column {} has NULL money", b.schema().field(i).name())));
    }
    Ok(a)
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

fn from_days(days: i32) -> NaiveDate {
    epoch() + chrono::Duration::days(i64::from(days))
}

fn to_days(d: NaiveDate) -> i32 {
    (d - epoch()).num_days() as i32
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(person: &str, id: i64, date: &str, net: i128, reason: Option<&str>) -> PersonOrder {
        let order_date = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
        PersonOrder {
            person_key: person.into(),
            order_id: id,
            order_at: i64::from(to_days(order_date)) * 86_400_000_000,
            order_date,
            is_qualifying: reason.is_none(),
            non_qualifying_reason: reason.map(str::to_string),
            net_revenue: net * 10_000,
            gross_margin: net * 5_000,
            offer_type: if id % 2 == 0 { "full_price".into() } else { "discount_code".into() },
        }
    }

    #[test]
    fn thin_data_gives_null_predictions_with_reasons() {
        let orders = vec![order("a", 1, "2026-01-05", 10, None), order("a", 2, "2026-01-07", 5, Some("cancelled"))];
        let cutoff = NaiveDate::from_ymd_opt(2026, 3, 1);
        let b = clv_customer_batch(&orders, cutoff, ClvMartSettings::default()).unwrap();
        assert_eq!(b.num_rows(), 1);
        let status = b.column_by_name("prediction_status").unwrap().as_string::<i32>().value(0).to_string();
        assert_eq!(status, "no_purchase_model");
        assert!(b.column_by_name("p_alive").unwrap().is_null(0));
        assert!(b.column_by_name("prediction_note").unwrap().is_valid(0));
        let s = clv_segment_batch(&orders, cutoff, ClvMartSettings::default()).unwrap();
        assert_eq!(s.num_rows(), 3);
        let share =
            s.column_by_name("cancelled_or_returned_share").unwrap().as_primitive::<arrow::datatypes::Float64Type>();
        assert_eq!(share.value(0), 0.5);
        let r = repeat_purchase_batch(&orders, cutoff).unwrap();
        assert_eq!(r.num_rows(), 2);
        assert!(clv_customer_batch(&orders, None, ClvMartSettings::default()).unwrap().num_rows() == 0);
    }
}
