//! `int_flows`: one row per messaging flow with what the lift model needs to rebuild its eligible
//! population (models.md 3.2, 4.5): the canonical flow type, the channels it sends on, its outcome
//! window, and what its definition says about entry — a time delay before the first message, a
//! "placed order since starting this flow" exit, and a random holdout split.
//!
//! * **Flow type**: `map_flow_type_override` first; else the name signals of `dim_flow_type`
//!   (`default_name_signals`, `|`-separated): the type whose matched signals are longest in total
//!   wins (so "Post Purchase - Repeat Buyers" is the repeat type, not the first-purchase one);
//!   else the trigger type where it is unambiguous (`Price Drop`, `Date Based` → birthday); else
//!   `unclassified` (the flow audit asks for an override).
//! * **Definition**: the flow's actions (`raw_klaviyo__flow_actions`, latest copy, revision
//!   ≥ 2025-10-15 shape) are walked from the entry action (the one no link points to) along the
//!   path that continues — a split whose one branch ends is an exit and the walk takes the other.
//!   Before the first send: time delays add up to `entry_delay_hours`; a profile-metric split with a
//!   `flow-start` timeframe marks `exits_on_order`; a split on `properties['<holdout_property_name>']
//!   less-than N` whose true branch ends is a random holdout of N % (`profile_property:<name>`).
//!   A split with two live branches stops the walk (what follows depends on the profile).
//! * **Holdout**: a `cfg_flow_holdouts` row for the flow wins over the definition.
//! * **Live period**: from the flow's first message event; until `updated_at` when the flow is
//!   archived or not live, else open (the definition carries no status history).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::NaiveDate;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::future::BoxFuture;
use md5::{Digest, Md5};
use serde_json::Value;

use super::columns::{self, micros, opt_str, query, text};

/// Version of this implementation (models.md 1.6).
pub const MODEL_VERSION: &str = "1.0.0";

/// Win-back entry delay when the definition has none (models.md 4.5: config, default 90 days).
const DEFAULT_WINBACK_DAYS: i64 = 90;

const FLOWS_SQL: &str = "\
select flow_id, flow_name, flow_status, is_archived, trigger_type, created_at, updated_at
from stg_klaviyo__flows order by flow_id";

const ACTIONS_SQL: &str = "\
select flow_id, id, _raw from (
    select flow_id, id, _raw,
           row_number() over (partition by id order by updated desc, _landed_at desc, _run_id desc) as copy_rank
    from raw_klaviyo__flow_actions
) where copy_rank = 1 order by flow_id, id";

const SENDS_SQL: &str = "\
select flow_id, min(occurred_at) from stg_klaviyo__events where flow_id is not null group by flow_id";

/// Attentive journeys and Postscript automations: the data names them, and that is all it gives
/// (no status, trigger or definition; DECISIONS D39). One row per platform, flow and channel with
/// its first and last send.
const SMS_FLOWS_SQL: &str = "\
select platform, flow_id, channel, min(sent_at), max(sent_at) from (
    select 'attentive' as platform, e.flow_id, coalesce(e.channel, t.channel) as channel, e.occurred_at as sent_at
    from map_event_type as t
    join stg_attentive__events as e on t.platform = 'attentive' and t.raw_event_name = e.raw_event_name
    where t.event_type = 'sent' and e.message_kind = 'flow' and e.flow_id is not null
    union all
    select 'postscript', flow_id, case when channel = 'mms' then 'sms' else channel end, created_at
    from stg_postscript__messages
    where message_kind = 'flow' and flow_id is not null and direction = 'outbound'
) group by platform, flow_id, channel order by platform, flow_id, channel";

/// The latest message activity of any platform: journeys silent for [`SMS_LIVE_DAYS`] before it
/// are not called live.
const DATA_END_SQL: &str = "\
select max(t) from (
    select max(occurred_at) as t from stg_klaviyo__events
    union all select max(occurred_at) from stg_attentive__events
    union all select max(created_at) from stg_postscript__messages
)";

/// A journey or automation that sent within this many days of the data's end is live.
const SMS_LIVE_DAYS: i64 = 30;

/// A flow type of `dim_flow_type`.
#[derive(Debug, Clone)]
pub struct FlowType {
    pub window_days: i32,
    pub intent_triggered: bool,
    pub signals: Vec<String>,
}

/// What the walk of a flow's definition found before its first message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub delay_hours: f64,
    pub exits_on_order: bool,
    /// `(holdout_pct, property name, split created)`.
    pub holdout: Option<(i32, String)>,
    pub channels: BTreeSet<String>,
}

/// Lowercase words of a name, separated by single spaces, padded (`" win back "`).
fn normal(name: &str) -> String {
    let words: Vec<String> = name
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    format!(" {} ", words.join(" "))
}

/// The flow type by name signals: the largest total length of matched signals wins.
pub fn classify_by_name(name: &str, types: &BTreeMap<String, FlowType>) -> Option<String> {
    let n = normal(name);
    let mut best: Option<(usize, &String)> = None;
    for (t, ft) in types {
        let score: usize = ft
            .signals
            .iter()
            .map(|s| normal(s))
            .filter(|s| s.trim().len() > 1 && n.contains(s.trim_end()))
            .map(|s| s.trim().len())
            .sum();
        if score > 0 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, t));
        }
    }
    best.map(|(_, t)| t.clone())
}

fn hours_of(data: &Value) -> f64 {
    let v = data.get("value").and_then(Value::as_f64).unwrap_or(0.0);
    match data.get("unit").and_then(Value::as_str).unwrap_or("hours") {
        "days" => v * 24.0,
        "minutes" => v / 60.0,
        "weeks" => v * 168.0,
        _ => v,
    }
}

fn conditions(data: &Value) -> Vec<&Value> {
    data.pointer("/profile_filter/condition_groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|g| g.get("conditions").and_then(Value::as_array).into_iter().flatten())
        .collect()
}

/// Walks a flow's actions (`id → definition`) from the entry; see the module docs.
pub fn walk(actions: &BTreeMap<String, Value>, holdout_property: &str) -> Entry {
    let mut out = Entry::default();
    for def in actions.values() {
        match def.get("type").and_then(Value::as_str) {
            Some("send-email") => {
                out.channels.insert("email".into());
            }
            Some("send-sms") => {
                out.channels.insert("sms".into());
            }
            _ => {}
        }
    }
    let link = |def: &Value, key: &str| def.pointer(&format!("/links/{key}")).and_then(Value::as_str).map(String::from);
    let targets: BTreeSet<String> = actions
        .values()
        .flat_map(|d| ["next", "next_if_true", "next_if_false"].into_iter().filter_map(move |k| link(d, k)))
        .collect();
    let mut at = actions.keys().find(|id| !targets.contains(*id)).cloned();
    let prop = format!("properties['{holdout_property}']");
    let mut seen = BTreeSet::new();
    while let Some(id) = at.take() {
        if !seen.insert(id.clone()) {
            break;
        }
        let Some(def) = actions.get(&id) else { break };
        let data = def.get("data").cloned().unwrap_or(Value::Null);
        match def.get("type").and_then(Value::as_str).unwrap_or("") {
            t if t.starts_with("send-") => break,
            "time-delay" => {
                out.delay_hours += hours_of(&data);
                at = link(def, "next");
            }
            "conditional-split" => {
                let (yes, no) = (link(def, "next_if_true"), link(def, "next_if_false"));
                if yes.is_some() && no.is_some() {
                    break;
                }
                if yes.is_none() {
                    for c in conditions(&data) {
                        let kind = c.get("type").and_then(Value::as_str);
                        if kind == Some("profile-metric")
                            && c.pointer("/timeframe_filter/operator").and_then(Value::as_str) == Some("flow-start")
                        {
                            out.exits_on_order = true;
                        }
                        if kind == Some("profile-property")
                            && c.get("property").and_then(Value::as_str) == Some(prop.as_str())
                            && c.pointer("/filter/operator").and_then(Value::as_str) == Some("less-than")
                            && let Some(pct) = c.pointer("/filter/value").and_then(Value::as_f64)
                        {
                            out.holdout = Some((pct.clamp(0.0, 100.0) as i32, holdout_property.to_string()));
                        }
                    }
                }
                at = yes.or(no);
            }
            _ => at = link(def, "next"),
        }
    }
    out
}

/// `md5(platform|flow_id)` (models.md 4.4).
pub fn flow_key(platform: &str, flow_id: &str) -> String {
    format!("{:x}", Md5::digest(format!("{platform}|{flow_id}").as_bytes()))
}

fn parse_date(v: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").ok()
}

fn to_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days() as i32
}

async fn flow_types(ctx: &SessionContext) -> Result<BTreeMap<String, FlowType>> {
    let has_signals =
        ctx.table("dim_flow_type").await?.schema().has_column_with_unqualified_name("default_name_signals");
    let sql = format!(
        "select flow_type, outcome_window_days, intent_triggered, {} from dim_flow_type",
        if has_signals { "default_name_signals" } else { "cast(null as varchar)" }
    );
    let mut out = BTreeMap::new();
    for b in query(ctx, &sql).await? {
        let (t, w, i, s) = (text(&b, 0)?, text(&b, 1)?, text(&b, 2)?, text(&b, 3)?);
        for r in 0..b.num_rows() {
            let Some(name) = opt_str(&t, r) else { continue };
            let window = opt_str(&w, r).and_then(|v| v.trim().parse::<i32>().ok()).ok_or_else(|| {
                DataFusionError::Execution(format!("dim_flow_type {name}: outcome_window_days is not an integer"))
            })?;
            out.insert(
                name.trim().to_string(),
                FlowType {
                    window_days: window,
                    intent_triggered: opt_str(&i, r).is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
                    signals: opt_str(&s, r)
                        .map(|v| v.split('|').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
                        .unwrap_or_default(),
                },
            );
        }
    }
    Ok(out)
}

/// One output row.
struct Row {
    platform: &'static str,
    flow_key: String,
    flow_id: String,
    flow_name: Option<String>,
    status: Option<String>,
    archived: bool,
    trigger_type: Option<String>,
    flow_type: String,
    type_source: &'static str,
    intent: Option<bool>,
    revenue_flow: bool,
    window_days: Option<i32>,
    channels: String,
    entry: Entry,
    holdout_pct: Option<i32>,
    holdout_assignment: Option<String>,
    holdout_source: Option<&'static str>,
    holdout_start: Option<i32>,
    holdout_end: Option<i32>,
    live_from: Option<i64>,
    live_until: Option<i64>,
}

/// Flow types that are not revenue flows (models.md 3.2): no lift, only deliverability.
const NON_REVENUE: &[&str] = &["review_request", "sunset", "transactional", "unclassified"];

/// Builds `int_flows`.
pub fn build_flows(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(async move {
        let settings = columns::settings(ctx).await?;
        let holdout_property =
            settings.get("holdout_property_name").cloned().unwrap_or_else(|| "holdout_bucket".into());
        let winback_days = match settings.get("winback_days") {
            Some(v) => v.parse::<i64>().ok().filter(|d| *d > 0).ok_or_else(|| {
                DataFusionError::Execution(format!("cfg_settings winback_days: {v:?} is not a positive integer"))
            })?,
            None => DEFAULT_WINBACK_DAYS,
        };
        let types = flow_types(ctx).await?;
        let mut overrides = BTreeMap::new();
        for b in query(ctx, "select platform, flow_id, flow_type from map_flow_type_override").await? {
            let (p, f, t) = (text(&b, 0)?, text(&b, 1)?, text(&b, 2)?);
            for r in 0..b.num_rows() {
                if let (Some(p), Some(f), Some(t)) = (opt_str(&p, r), opt_str(&f, r), opt_str(&t, r)) {
                    overrides.insert((p.trim().to_string(), f.trim().to_string()), t.trim().to_string());
                }
            }
        }
        let mut configured = BTreeMap::new();
        for b in
            query(ctx, "select flow_key, start_date, end_date, holdout_pct, assignment from cfg_flow_holdouts").await?
        {
            let cols: Vec<StringArray> = (0..5).map(|i| text(&b, i)).collect::<Result<_>>()?;
            for r in 0..b.num_rows() {
                let Some(key) = opt_str(&cols[0], r) else { continue };
                let bad = |what: &str| DataFusionError::Execution(format!("cfg_flow_holdouts {key}: {what}"));
                let pct = opt_str(&cols[3], r)
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .filter(|p| (0.0..=100.0).contains(p))
                    .ok_or_else(|| bad("holdout_pct is not a number in 0-100"))?;
                let start = opt_str(&cols[1], r).and_then(|v| parse_date(&v));
                let end = opt_str(&cols[2], r)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| parse_date(&v).ok_or_else(|| bad("end_date is not YYYY-MM-DD")))
                    .transpose()?;
                let assignment =
                    opt_str(&cols[4], r).map(|v| v.trim().to_string()).unwrap_or_else(|| "hash_bucket".into());
                if assignment != "hash_bucket" && !assignment.starts_with("profile_property:") {
                    return Err(bad("assignment is neither hash_bucket nor profile_property:<name>"));
                }
                configured.insert(key.trim().to_string(), (pct as i32, assignment, start, end));
            }
        }
        let mut actions: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for b in query(ctx, ACTIONS_SQL).await? {
            let (f, id, raw) = (text(&b, 0)?, text(&b, 1)?, text(&b, 2)?);
            for r in 0..b.num_rows() {
                let (Some(f), Some(id)) = (opt_str(&f, r), opt_str(&id, r)) else { continue };
                let doc: Value = opt_str(&raw, r).and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
                let def = doc.pointer("/attributes/definition").cloned().unwrap_or(Value::Null);
                actions.entry(f).or_default().insert(id, def);
            }
        }
        let mut first_send = BTreeMap::new();
        for b in query(ctx, SENDS_SQL).await? {
            let (f, t) = (text(&b, 0)?, micros(&b, 1)?);
            for r in 0..b.num_rows() {
                if let Some(f) = opt_str(&f, r) {
                    first_send.insert(f, t.value(r));
                }
            }
        }
        let mut rows = Vec::new();
        for b in query(ctx, FLOWS_SQL).await? {
            let (id, name, status, archived, trigger) =
                (text(&b, 0)?, text(&b, 1)?, text(&b, 2)?, text(&b, 3)?, text(&b, 4)?);
            let updated = micros(&b, 6)?;
            for r in 0..b.num_rows() {
                let Some(flow_id) = opt_str(&id, r) else { continue };
                let key = flow_key("klaviyo", &flow_id);
                let flow_name = opt_str(&name, r);
                let trigger_type = opt_str(&trigger, r);
                let (flow_type, type_source) = if let Some(t) = overrides.get(&("klaviyo".to_string(), flow_id.clone()))
                {
                    (t.clone(), "override")
                } else if let Some(t) = flow_name.as_deref().and_then(|n| classify_by_name(n, &types)) {
                    (t, "name")
                } else {
                    match trigger_type.as_deref() {
                        Some("Price Drop") => ("price_drop".to_string(), "trigger"),
                        Some("Date Based") => ("birthday".to_string(), "trigger"),
                        _ => ("unclassified".to_string(), "unclassified"),
                    }
                };
                let ft = types.get(&flow_type);
                let mut entry = actions.get(&flow_id).map(|a| walk(a, &holdout_property)).unwrap_or_default();
                if flow_type == "winback" && entry.delay_hours == 0.0 {
                    entry.delay_hours = (winback_days * 24) as f64;
                }
                let is_archived = opt_str(&archived, r).is_some_and(|v| v == "true");
                let status_v = opt_str(&status, r);
                let (holdout_pct, holdout_assignment, holdout_source, holdout_start, holdout_end) =
                    if let Some((pct, a, s, e)) = configured.get(&key) {
                        (Some(*pct), Some(a.clone()), Some("cfg_flow_holdouts"), s.map(to_days), e.map(to_days))
                    } else if let Some((pct, prop)) = &entry.holdout {
                        (Some(*pct), Some(format!("profile_property:{prop}")), Some("flow_definition"), None, None)
                    } else {
                        (None, None, None, None, None)
                    };
                let live_until = (is_archived || status_v.as_deref() != Some("live"))
                    .then(|| updated.is_valid(r).then(|| updated.value(r)))
                    .flatten();
                rows.push(Row {
                    platform: "klaviyo",
                    flow_key: key,
                    flow_id: flow_id.clone(),
                    flow_name,
                    status: status_v,
                    archived: is_archived,
                    trigger_type,
                    revenue_flow: !NON_REVENUE.contains(&flow_type.as_str()) && ft.is_some(),
                    intent: ft.map(|t| t.intent_triggered),
                    window_days: ft.map(|t| t.window_days),
                    channels: entry.channels.iter().cloned().collect::<Vec<_>>().join("|"),
                    flow_type,
                    type_source,
                    entry,
                    holdout_pct,
                    holdout_assignment,
                    holdout_source,
                    holdout_start,
                    holdout_end,
                    live_from: first_send.get(&flow_id).copied(),
                    live_until,
                });
            }
        }
        rows.extend(sms_flows(ctx, &types, &overrides).await?);
        ctx.read_batch(batch(&rows)?)
    })
}

/// The rows of Attentive's journeys and Postscript's automations: typed by name (or an override),
/// live when they sent in the last [`SMS_LIVE_DAYS`] days of data, structure unknown.
async fn sms_flows(
    ctx: &SessionContext,
    types: &BTreeMap<String, FlowType>,
    overrides: &BTreeMap<(String, String), String>,
) -> Result<Vec<Row>> {
    let mut data_end = None;
    for b in query(ctx, DATA_END_SQL).await? {
        let t = micros(&b, 0)?;
        data_end = (0..b.num_rows()).find(|r| t.is_valid(*r)).map(|r| t.value(r)).or(data_end);
    }
    // (platform, flow id) -> (channels, first send, last send)
    let mut seen: BTreeMap<(&'static str, String), (BTreeSet<String>, i64, i64)> = BTreeMap::new();
    for b in query(ctx, SMS_FLOWS_SQL).await? {
        let (platform, id, channel) = (text(&b, 0)?, text(&b, 1)?, text(&b, 2)?);
        let (first, last) = (micros(&b, 3)?, micros(&b, 4)?);
        for r in 0..b.num_rows() {
            let (Some(p), Some(id)) = (opt_str(&platform, r), opt_str(&id, r)) else { continue };
            let p: &'static str = if p == "attentive" { "attentive" } else { "postscript" };
            let e = seen.entry((p, id)).or_insert((BTreeSet::new(), i64::MAX, i64::MIN));
            e.0.extend(opt_str(&channel, r));
            e.1 = e.1.min(first.value(r));
            e.2 = e.2.max(last.value(r));
        }
    }
    let live_after = data_end.map(|t| t - SMS_LIVE_DAYS * 86_400_000_000);
    Ok(seen
        .into_iter()
        .map(|((platform, flow_id), (channels, first, last))| {
            let (flow_type, type_source) = match overrides.get(&(platform.to_string(), flow_id.clone())) {
                Some(t) => (t.clone(), "override"),
                None => match classify_by_name(&flow_id, types) {
                    Some(t) => (t, "name"),
                    None => ("unclassified".to_string(), "unclassified"),
                },
            };
            let ft = types.get(&flow_type);
            let live = live_after.is_some_and(|after| last >= after);
            Row {
                platform,
                flow_key: flow_key(platform, &flow_id),
                flow_name: Some(flow_id.clone()),
                flow_id,
                status: live.then(|| "live".to_string()),
                archived: false,
                trigger_type: None,
                revenue_flow: !NON_REVENUE.contains(&flow_type.as_str()) && ft.is_some(),
                intent: ft.map(|t| t.intent_triggered),
                window_days: ft.map(|t| t.window_days),
                channels: channels.into_iter().collect::<Vec<_>>().join("|"),
                flow_type,
                type_source,
                entry: Entry::default(),
                holdout_pct: None,
                holdout_assignment: None,
                holdout_source: None,
                holdout_start: None,
                holdout_end: None,
                live_from: Some(first),
                live_until: (!live).then_some(last),
            }
        })
        .collect())
}

fn batch(rows: &[Row]) -> Result<RecordBatch> {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("flow_key", DataType::Utf8, false),
        Field::new("platform", DataType::Utf8, false),
        Field::new("flow_id", DataType::Utf8, false),
        Field::new("flow_name", DataType::Utf8, true),
        Field::new("flow_status", DataType::Utf8, true),
        Field::new("is_archived", DataType::Boolean, false),
        Field::new("trigger_type", DataType::Utf8, true),
        Field::new("flow_type", DataType::Utf8, false),
        Field::new("flow_type_source", DataType::Utf8, false),
        Field::new("intent_triggered", DataType::Boolean, true),
        Field::new("is_revenue_flow", DataType::Boolean, false),
        Field::new("window_days", DataType::Int32, true),
        Field::new("channels", DataType::Utf8, false),
        Field::new("entry_delay_hours", DataType::Int32, false),
        Field::new("exits_on_order", DataType::Boolean, false),
        Field::new("holdout_pct", DataType::Int32, true),
        Field::new("holdout_assignment", DataType::Utf8, true),
        Field::new("holdout_source", DataType::Utf8, true),
        Field::new("holdout_start_date", DataType::Date32, true),
        Field::new("holdout_end_date", DataType::Date32, true),
        Field::new("live_from", ts(), true),
        Field::new("live_until", ts(), true),
        Field::new("model_version", DataType::Utf8, false),
    ]));
    let s = |f: &dyn Fn(&Row) -> Option<String>| {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef
    };
    let t = |f: &dyn Fn(&Row) -> Option<i64>| {
        Arc::new(TimestampMicrosecondArray::from(rows.iter().map(f).collect::<Vec<_>>()).with_timezone("UTC"))
            as ArrayRef
    };
    let columns: Vec<ArrayRef> = vec![
        s(&|r| Some(r.flow_key.clone())),
        s(&|r| Some(r.platform.into())),
        s(&|r| Some(r.flow_id.clone())),
        s(&|r| r.flow_name.clone()),
        s(&|r| r.status.clone()),
        Arc::new(BooleanArray::from(rows.iter().map(|r| r.archived).collect::<Vec<_>>())),
        s(&|r| r.trigger_type.clone()),
        s(&|r| Some(r.flow_type.clone())),
        s(&|r| Some(r.type_source.to_string())),
        Arc::new(BooleanArray::from(rows.iter().map(|r| r.intent).collect::<Vec<_>>())),
        Arc::new(BooleanArray::from(rows.iter().map(|r| r.revenue_flow).collect::<Vec<_>>())),
        Arc::new(Int32Array::from(rows.iter().map(|r| r.window_days).collect::<Vec<_>>())),
        s(&|r| Some(r.channels.clone())),
        Arc::new(Int32Array::from(rows.iter().map(|r| r.entry.delay_hours.round() as i32).collect::<Vec<_>>())),
        Arc::new(BooleanArray::from(rows.iter().map(|r| r.entry.exits_on_order).collect::<Vec<_>>())),
        Arc::new(Int32Array::from(rows.iter().map(|r| r.holdout_pct).collect::<Vec<_>>())),
        s(&|r| r.holdout_assignment.clone()),
        s(&|r| r.holdout_source.map(String::from)),
        Arc::new(Date32Array::from(rows.iter().map(|r| r.holdout_start).collect::<Vec<_>>())),
        Arc::new(Date32Array::from(rows.iter().map(|r| r.holdout_end).collect::<Vec<_>>())),
        t(&|r| r.live_from),
        t(&|r| r.live_until),
        s(&|_| Some(MODEL_VERSION.into())),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types() -> BTreeMap<String, FlowType> {
        let t = |s: &[&str]| FlowType {
            window_days: 7,
            intent_triggered: false,
            signals: s.iter().map(|x| x.to_string()).collect(),
        };
        BTreeMap::from([
            ("post_purchase_first".to_string(), t(&["post purchase", "thank you", "first purchase"])),
            ("post_purchase_repeat".to_string(), t(&["repeat", "repeat buyer"])),
            ("winback".to_string(), t(&["win back", "winback"])),
        ])
    }

    #[test]
    fn names_classify_by_the_longest_matched_signals() {
        let t = types();
        assert_eq!(classify_by_name("Post Purchase - Repeat Buyers", &t).as_deref(), Some("post_purchase_repeat"));
        assert_eq!(classify_by_name("Thank You - First Purchase", &t).as_deref(), Some("post_purchase_first"));
        assert_eq!(classify_by_name("Win-Back", &t).as_deref(), Some("winback"));
        assert_eq!(classify_by_name("Journey 7 (Q3 build)", &t), None);
    }

    #[test]
    fn the_walk_reads_delay_exit_and_holdout_before_the_first_send() {
        let actions = BTreeMap::from([
            (
                "a".to_string(),
                json!({"type": "time-delay", "links": {"next": "b"}, "data": {"unit": "days", "value": 90}}),
            ),
            (
                "b".to_string(),
                json!({"type": "conditional-split", "links": {"next_if_true": null, "next_if_false": "c"},
                  "data": {"profile_filter": {"condition_groups": [{"conditions": [{"type": "profile-metric",
                  "timeframe_filter": {"type": "date", "operator": "flow-start"}}]}]}}}),
            ),
            (
                "c".to_string(),
                json!({"type": "conditional-split", "links": {"next_if_true": null, "next_if_false": "d"},
                  "data": {"profile_filter": {"condition_groups": [{"conditions": [{"type": "profile-property",
                  "property": "properties['holdout_bucket']", "filter": {"type": "numeric", "operator": "less-than", "value": 20}}]}]}}}),
            ),
            ("d".to_string(), json!({"type": "send-email", "links": {"next": "e"}, "data": {}})),
            (
                "e".to_string(),
                json!({"type": "time-delay", "links": {"next": "f"}, "data": {"unit": "hours", "value": 5}}),
            ),
            ("f".to_string(), json!({"type": "send-sms", "links": {"next": null}, "data": {}})),
        ]);
        let e = walk(&actions, "holdout_bucket");
        assert_eq!(e.delay_hours, 2160.0);
        assert!(e.exits_on_order);
        assert_eq!(e.holdout, Some((20, "holdout_bucket".to_string())));
        assert_eq!(e.channels, BTreeSet::from(["email".to_string(), "sms".to_string()]));
        assert_eq!(walk(&actions, "other_bucket").holdout, None);
    }
}
