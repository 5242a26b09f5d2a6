//! The Reporting API: `POST /api/flow-series-reports`, `/api/flow-values-reports` and
//! `/api/campaign-values-reports`.
//!
//! Bodies are validated as Klaviyo does (statistics enum, timeframe ≤ 1 year, interval limits,
//! required `group_by` members, a known `conversion_metric_id`), then results are computed from
//! the store's events **by send date** in the account timezone: every engagement event and every
//! attributed conversion is credited to the most recent send of its message to that profile at
//! or before it, and lands in the bucket of that send. Only the day files from the timeframe's
//! start to [`ATTRIBUTION_WINDOW`] after its end (and never past the fake's now) are read, so a
//! report costs at most about a year of events.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::filter::{self, Condition};
use super::render::{self, ApiError, MEDIA_TYPE, Source};
use super::routes::{App, Params, blocking, io_err};
use crate::fake::cursor::{self, CursorError};
use crate::simulate::model::{SimCampaign, SimEvent};
use crate::simulate::store::Entity;

/// How long after a timeframe's end engagement and conversions still count for its sends
/// (Klaviyo's default conversion window).
pub const ATTRIBUTION_WINDOW: Duration = Duration::days(5);
/// Groupings per page; more are paginated with `page_cursor`.
pub const PAGE_SIZE: usize = 500;

/// Every statistic Klaviyo's report endpoints accept (apis.md 1.6).
pub const STATISTICS: &[&str] = &[
    "recipients",
    "delivered",
    "delivery_rate",
    "opens",
    "opens_unique",
    "open_rate",
    "clicks",
    "clicks_unique",
    "click_rate",
    "click_to_open_rate",
    "conversions",
    "conversion_uniques",
    "conversion_rate",
    "conversion_value",
    "revenue_per_recipient",
    "average_order_value",
    "unsubscribes",
    "unsubscribe_uniques",
    "unsubscribe_rate",
    "spam_complaints",
    "spam_complaint_rate",
    "bounced",
    "bounce_rate",
    "bounced_or_failed",
    "bounced_or_failed_rate",
    "failed",
    "failed_rate",
    "message_segment_count_sum",
    "text_message_credit_usage_amount",
    "text_message_spend",
    "text_message_roi",
];

/// What the fake charges per SMS credit (one credit a segment), in the account currency.
pub const SMS_CREDIT_PRICE: f64 = 0.01;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    FlowSeries,
    FlowValues,
    CampaignValues,
}

impl ReportKind {
    fn type_name(self) -> &'static str {
        match self {
            ReportKind::FlowSeries => "flow-series-report",
            ReportKind::FlowValues => "flow-values-report",
            ReportKind::CampaignValues => "campaign-values-report",
        }
    }

    fn series(self) -> bool {
        self == ReportKind::FlowSeries
    }

    fn flows(self) -> bool {
        self != ReportKind::CampaignValues
    }

    fn group_by_allowed(self) -> &'static [&'static str] {
        if self.flows() {
            &[
                "flow_id",
                "flow_message_id",
                "flow_name",
                "flow_message_name",
                "send_channel",
                "tag_id",
                "tag_name",
                "text_message_format",
                "variation",
                "variation_name",
            ]
        } else {
            &[
                "campaign_id",
                "campaign_message_id",
                "campaign_message_name",
                "group",
                "group_name",
                "send_channel",
                "tag_id",
                "tag_name",
                "text_message_format",
                "variation",
                "variation_name",
            ]
        }
    }

    fn group_by_required(self) -> [&'static str; 2] {
        if self.flows() { ["flow_id", "flow_message_id"] } else { ["campaign_id", "campaign_message_id"] }
    }
}

fn bad(pointer: &'static str, detail: impl Into<String>) -> ApiError {
    let mut e = ApiError::invalid("", detail);
    e.source = Source::Pointer(pointer);
    e
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interval {
    Hourly,
    Daily,
    Weekly,
    Monthly,
}

/// A validated request.
struct Spec {
    statistics: Vec<String>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// Bucket starts (UTC instants of local boundaries); one bucket for values reports.
    buckets: Vec<DateTime<Utc>>,
    tz: Tz,
    conversion_metric_id: String,
    group_by: Vec<String>,
    filter: Vec<Condition>,
    /// Hash of the attributes, binding page cursors to the body.
    body_hash: u64,
}

fn local(tz: &Tz, n: NaiveDateTime) -> DateTime<Utc> {
    tz.from_local_datetime(&n)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(n + Duration::hours(1))).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| n.and_utc())
}

fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_hms_opt(0, 0, 0).expect("midnight exists")
}

/// The account tz of the shop (UTC when unknown).
pub(super) fn account_tz(app: &App) -> Tz {
    app.shop.iana_timezone.parse().unwrap_or(Tz::UTC)
}

/// Seconds from `now` until the next local midnight of `tz` (at least 1).
pub(super) fn secs_to_midnight(tz: &Tz, now: DateTime<Utc>) -> u64 {
    let today = now.with_timezone(tz).date_naive();
    let next = local(tz, midnight(today.succ_opt().unwrap_or(today)));
    (next - now).num_seconds().max(1) as u64
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

/// A relative timeframe key as local [start, end) dates, from the account-local `today`.
fn key_range(key: &str, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    let days = |n: i64| today - Duration::days(n);
    let week = today - Duration::days(i64::from(today.weekday().num_days_from_sunday()));
    let month = first_of_month(today);
    let year = NaiveDate::from_ymd_opt(today.year(), 1, 1)?;
    Some(match key {
        "today" => (today, days(-1)),
        "yesterday" => (days(1), today),
        "this_week" => (week, week + Duration::days(7)),
        "last_week" => (week - Duration::days(7), week),
        "this_month" => (month, month.checked_add_months(Months::new(1))?),
        "last_month" => (month.checked_sub_months(Months::new(1))?, month),
        "this_year" => (year, NaiveDate::from_ymd_opt(today.year() + 1, 1, 1)?),
        "last_year" => (NaiveDate::from_ymd_opt(today.year() - 1, 1, 1)?, year),
        "last_7_days" => (days(7), today),
        "last_30_days" => (days(30), today),
        "last_90_days" => (days(90), today),
        "last_365_days" => (days(365), today),
        "last_3_months" => (today.checked_sub_months(Months::new(3))?, today),
        "last_12_months" => (today.checked_sub_months(Months::new(12))?, today),
        _ => return None,
    })
}

/// A custom timeframe bound: the offset is ignored and the wall time read in the account tz.
fn wall_time(v: &Value) -> Option<NaiveDateTime> {
    let s = v.as_str()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.naive_local());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(midnight)
}

fn parse(app: &App, kind: ReportKind, body: &[u8]) -> Result<Spec, ApiError> {
    let doc: Value =
        serde_json::from_slice(body).map_err(|e| bad("/data", format!("The request body is not valid JSON: {e}")))?;
    let data = doc.get("data").filter(|d| d.is_object()).ok_or_else(|| bad("/data", "'data' is required."))?;
    if data.get("type").and_then(Value::as_str) != Some(kind.type_name()) {
        return Err(bad("/data/type", format!("'type' must be '{}'.", kind.type_name())));
    }
    let attrs = data
        .get("attributes")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("/data/attributes", "'attributes' is required."))?;
    let mut known = vec!["statistics", "timeframe", "conversion_metric_id", "group_by", "filter"];
    if kind.series() {
        known.push("interval");
    }
    if let Some(k) = attrs.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(bad("/data/attributes", format!("'{k}' is not a valid field for {}.", kind.type_name())));
    }

    let stats = attrs
        .get("statistics")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad("/data/attributes/statistics", "'statistics' must be a non-empty list."))?;
    let mut statistics = Vec::new();
    for s in stats {
        match s.as_str() {
            Some(name) if STATISTICS.contains(&name) => statistics.push(name.to_string()),
            _ => {
                return Err(bad(
                    "/data/attributes/statistics",
                    format!("{s} is not a valid statistic. Valid statistics: {}.", STATISTICS.join(", ")),
                ));
            }
        }
    }

    let tz = account_tz(app);
    let tf = attrs
        .get("timeframe")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("/data/attributes/timeframe", "'timeframe' is required."))?;
    let (start_n, end_n) = match (tf.get("key"), tf.get("start"), tf.get("end")) {
        (Some(key), None, None) => {
            let today = app.clock.now().with_timezone(&tz).date_naive();
            let (s, e) = key
                .as_str()
                .and_then(|k| key_range(k, today))
                .ok_or_else(|| bad("/data/attributes/timeframe/key", format!("{key} is not a valid timeframe key.")))?;
            (midnight(s), midnight(e))
        }
        (None, Some(s), Some(e)) => {
            let s = wall_time(s)
                .ok_or_else(|| bad("/data/attributes/timeframe/start", "'start' must be an ISO-8601 datetime."))?;
            let e = wall_time(e)
                .ok_or_else(|| bad("/data/attributes/timeframe/end", "'end' must be an ISO-8601 datetime."))?;
            (s, e)
        }
        _ => {
            return Err(bad("/data/attributes/timeframe", "'timeframe' needs either 'key' or both 'start' and 'end'."));
        }
    };
    if end_n <= start_n {
        return Err(bad("/data/attributes/timeframe", "The timeframe's end must be after its start."));
    }
    if start_n.checked_add_months(Months::new(12)).is_some_and(|max| end_n > max) {
        return Err(bad("/data/attributes/timeframe", "The timeframe must not be longer than 1 year."));
    }
    let span = end_n - start_n;

    let interval = match (kind.series(), attrs.get("interval")) {
        (false, _) => None,
        (true, None) => return Err(bad("/data/attributes/interval", "'interval' is required.")),
        (true, Some(v)) => Some(match v.as_str() {
            Some("hourly") if span <= Duration::days(7) => Interval::Hourly,
            Some("daily") if span <= Duration::days(60) => Interval::Daily,
            Some("weekly") => Interval::Weekly,
            Some("monthly") => Interval::Monthly,
            Some("hourly") => {
                return Err(bad("/data/attributes/interval", "The hourly interval allows timeframes up to 7 days."));
            }
            Some("daily") => {
                return Err(bad("/data/attributes/interval", "The daily interval allows timeframes up to 60 days."));
            }
            _ => {
                return Err(bad(
                    "/data/attributes/interval",
                    format!("{v} is not a valid interval: hourly, daily, weekly or monthly."),
                ));
            }
        }),
    };

    let conversion_metric_id = attrs
        .get("conversion_metric_id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("/data/attributes/conversion_metric_id", "'conversion_metric_id' is required."))?
        .to_string();
    let metrics = app.metrics().map_err(io_err)?;
    if !metrics.iter().any(|m| m.metric_id == conversion_metric_id) {
        return Err(bad(
            "/data/attributes/conversion_metric_id",
            format!("'{conversion_metric_id}' is not a metric of this account."),
        ));
    }

    let group_by: Vec<String> = match attrs.get("group_by") {
        None => {
            [kind.group_by_required().as_slice(), &["send_channel"]].concat().iter().map(|s| s.to_string()).collect()
        }
        Some(v) => {
            let items = v
                .as_array()
                .ok_or_else(|| bad("/data/attributes/group_by", "'group_by' must be a list."))?
                .iter()
                .map(|g| g.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| bad("/data/attributes/group_by", "'group_by' items must be strings."))?;
            if let Some(g) = items.iter().find(|g| !kind.group_by_allowed().contains(&g.as_str())) {
                return Err(bad("/data/attributes/group_by", format!("'{g}' is not a valid group_by value.")));
            }
            items
        }
    };
    for req in kind.group_by_required() {
        if !group_by.iter().any(|g| g == req) {
            return Err(bad("/data/attributes/group_by", format!("'group_by' must contain '{req}'.")));
        }
    }

    let filter = match attrs.get("filter") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(f)) => {
            let conds = filter::parse(f).map_err(|e| bad("/data/attributes/filter", format!("Invalid filter: {e}")))?;
            let fields: &[&str] = if kind.flows() {
                &["flow_id", "flow_message_id", "send_channel"]
            } else {
                &["campaign_id", "campaign_message_id", "send_channel"]
            };
            for c in &conds {
                if !fields.contains(&c.field.as_str()) || !matches!(c.op_name.as_str(), "equals" | "contains-any") {
                    return Err(bad(
                        "/data/attributes/filter",
                        format!("'{}' operator for field '{}' is not supported.", c.op_name, c.field),
                    ));
                }
                if filter_values(c).is_none() {
                    return Err(bad("/data/attributes/filter", format!("Bad value for '{}'.", c.field)));
                }
            }
            conds
        }
        Some(_) => return Err(bad("/data/attributes/filter", "'filter' must be a string.")),
    };

    let start = local(&tz, start_n);
    let end = local(&tz, end_n);
    let mut starts = vec![start_n];
    if let Some(iv) = interval {
        loop {
            let last = *starts.last().expect("starts is never empty");
            let next = match iv {
                Interval::Hourly => last + Duration::hours(1),
                Interval::Daily => midnight(last.date() + Duration::days(1)),
                Interval::Weekly => last + Duration::days(7),
                Interval::Monthly => midnight(
                    first_of_month(last.date())
                        .checked_add_months(Months::new(1))
                        .unwrap_or(last.date() + Duration::days(31)),
                ),
            };
            if next >= end_n {
                break;
            }
            starts.push(next);
        }
    }
    let buckets = if interval == Some(Interval::Hourly) {
        // Hours are instants: a DST change adds or removes one, as in the account's calendar.
        let mut out = Vec::new();
        let mut t = start;
        while t < end {
            out.push(t);
            t += Duration::hours(1);
        }
        out
    } else {
        starts.iter().map(|n| local(&tz, *n)).collect()
    };
    Ok(Spec {
        statistics,
        start,
        end,
        buckets,
        tz,
        conversion_metric_id,
        group_by,
        filter,
        body_hash: render::hash64(&Value::Object(attrs.clone()).to_string()),
    })
}

fn filter_values(c: &Condition) -> Option<Vec<String>> {
    match (c.op_name.as_str(), &c.value) {
        ("equals", filter::Value::Quoted(s)) => Some(vec![s.clone()]),
        ("contains-any", filter::Value::List(items)) if items.len() <= 100 => {
            items.iter().map(|v| filter::string(v).ok()).collect()
        }
        _ => None,
    }
}

/// One reported message: its grouping values.
#[derive(Debug, Clone)]
struct Group {
    /// Flow or campaign id.
    parent: String,
    parent_name: String,
    message: String,
    message_name: String,
    channel: String,
}

impl Group {
    fn field(&self, name: &str) -> &str {
        match name {
            "flow_id" | "campaign_id" => &self.parent,
            "send_channel" => &self.channel,
            _ => &self.message,
        }
    }

    fn groupings(&self, group_by: &[String]) -> Value {
        let mut m = Map::new();
        for g in group_by {
            let v = match g.as_str() {
                "flow_id" | "campaign_id" => json!(self.parent),
                "flow_message_id" | "campaign_message_id" | "variation" => json!(self.message),
                "flow_name" => json!(self.parent_name),
                "flow_message_name" | "campaign_message_name" | "variation_name" => json!(self.message_name),
                "send_channel" => json!(self.channel),
                "text_message_format" if self.channel == "sms" => json!("SMS"),
                _ => Value::Null,
            };
            m.insert(g.clone(), v);
        }
        Value::Object(m)
    }
}

#[derive(Debug, Default, Clone)]
struct Acc {
    recipients: HashSet<String>,
    delivered: u64,
    opens: u64,
    opens_unique: HashSet<String>,
    clicks: u64,
    clicks_unique: HashSet<String>,
    unsubscribes: u64,
    unsubscribe_uniques: HashSet<String>,
    spam_complaints: u64,
    bounced: u64,
    failed: u64,
    conversions: u64,
    conversion_uniques: HashSet<String>,
    conversion_value_minor: i64,
    segments: u64,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl Acc {
    fn stat(&self, name: &str, digits: i32) -> Value {
        let n = |v: u64| json!(v);
        let f = |v: f64| serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(json!(0));
        let recipients = self.recipients.len() as f64;
        let delivered = self.delivered as f64;
        let value = self.conversion_value_minor as f64 / 10f64.powi(digits);
        let spend = self.segments as f64 * SMS_CREDIT_PRICE;
        match name {
            "recipients" => n(self.recipients.len() as u64),
            "delivered" => n(self.delivered),
            "delivery_rate" => f(ratio(delivered, recipients)),
            "opens" => n(self.opens),
            "opens_unique" => n(self.opens_unique.len() as u64),
            "open_rate" => f(ratio(self.opens_unique.len() as f64, delivered)),
            "clicks" => n(self.clicks),
            "clicks_unique" => n(self.clicks_unique.len() as u64),
            "click_rate" => f(ratio(self.clicks_unique.len() as f64, delivered)),
            "click_to_open_rate" => f(ratio(self.clicks_unique.len() as f64, self.opens_unique.len() as f64)),
            "conversions" => n(self.conversions),
            "conversion_uniques" => n(self.conversion_uniques.len() as u64),
            "conversion_rate" => f(ratio(self.conversion_uniques.len() as f64, delivered)),
            "conversion_value" => f(value),
            "revenue_per_recipient" => f(ratio(value, recipients)),
            "average_order_value" => f(ratio(value, self.conversions as f64)),
            "unsubscribes" => n(self.unsubscribes),
            "unsubscribe_uniques" => n(self.unsubscribe_uniques.len() as u64),
            "unsubscribe_rate" => f(ratio(self.unsubscribe_uniques.len() as f64, delivered)),
            "spam_complaints" => n(self.spam_complaints),
            "spam_complaint_rate" => f(ratio(self.spam_complaints as f64, delivered)),
            "bounced" => n(self.bounced),
            "bounce_rate" => f(ratio(self.bounced as f64, recipients)),
            "bounced_or_failed" => n(self.bounced + self.failed),
            "bounced_or_failed_rate" => f(ratio((self.bounced + self.failed) as f64, recipients)),
            "failed" => n(self.failed),
            "failed_rate" => f(ratio(self.failed as f64, recipients)),
            "message_segment_count_sum" | "text_message_credit_usage_amount" => n(self.segments),
            "text_message_spend" => f(spend),
            "text_message_roi" => f(ratio(value, spend)),
            _ => Value::Null,
        }
    }
}

/// What a metric means to a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A send: `Received Email` (delivered), `Bounced Email`, `Sent SMS`.
    Delivered,
    Bounced,
    SmsSent,
    /// Engagement tied to a send of the event's own message.
    SmsDelivered,
    SmsFailed,
    Open,
    Click,
    Spam,
    /// Unsubscribes carry no message: credited to the profile's latest send on the channel.
    UnsubEmail,
    UnsubSms,
    Conversion,
}

fn roles(metrics: &[crate::simulate::model::SimMetric], conversion: &str) -> HashMap<String, Role> {
    let mut out = HashMap::new();
    for m in metrics {
        let role = match m.name.as_str() {
            "Received Email" => Role::Delivered,
            "Bounced Email" => Role::Bounced,
            "Sent SMS" => Role::SmsSent,
            "Received SMS" => Role::SmsDelivered,
            "Failed to Deliver SMS" => Role::SmsFailed,
            "Opened Email" => Role::Open,
            "Clicked Email" | "Clicked SMS" => Role::Click,
            "Marked Email as Spam" => Role::Spam,
            "Unsubscribed" | "Unsubscribed from Email Marketing" => Role::UnsubEmail,
            "Unsubscribed from SMS" => Role::UnsubSms,
            _ => continue,
        };
        out.insert(m.metric_id.clone(), role);
    }
    // The conversion metric wins: a report may convert on any metric.
    out.insert(conversion.to_string(), Role::Conversion);
    out
}

/// The reportable messages of a report kind, by message id.
fn message_groups(app: &App, kind: ReportKind) -> Result<HashMap<String, Group>, ApiError> {
    let mut out = HashMap::new();
    if kind.flows() {
        for g in app.graphs().map_err(io_err)?.iter() {
            for m in &g.flow.messages {
                out.insert(
                    m.message_id.clone(),
                    Group {
                        parent: g.flow.flow_id.clone(),
                        parent_name: g.flow.name.clone(),
                        message: m.message_id.clone(),
                        message_name: m.name.clone(),
                        channel: m.channel.clone(),
                    },
                );
            }
        }
    } else {
        let campaigns: Arc<Vec<SimCampaign>> = app.campaigns().map_err(io_err)?;
        for c in campaigns.iter().filter(|c| !c.deleted) {
            out.insert(
                c.message_id.clone(),
                Group {
                    parent: c.campaign_id.clone(),
                    parent_name: c.name.clone(),
                    message: c.message_id.clone(),
                    message_name: c.name.clone(),
                    channel: c.channel.clone(),
                },
            );
        }
    }
    Ok(out)
}

/// Per message id, per bucket.
type Table = BTreeMap<(String, String), Vec<Acc>>;

fn compute(app: &App, kind: ReportKind, spec: &Spec) -> Result<(Vec<Group>, Table), ApiError> {
    let groups = message_groups(app, kind)?;
    let keep_group = |g: &Group| {
        spec.filter.iter().all(|c| filter_values(c).is_some_and(|vals| vals.iter().any(|v| v == g.field(&c.field))))
    };
    let metrics = app.metrics().map_err(io_err)?;
    let roles = roles(&metrics, &spec.conversion_metric_id);
    let horizon = app.clock.horizon();
    let read_until = [Some(spec.end + ATTRIBUTION_WINDOW), horizon].into_iter().flatten().min().unwrap_or(spec.end);
    let (first_day, last_day) = (spec.start.date_naive(), read_until.date_naive());
    let days: Vec<NaiveDate> = app
        .store
        .days(Entity::Events)
        .map_err(io_err)?
        .into_iter()
        .filter(|d| *d >= first_day && *d <= last_day)
        .collect();
    let bucket_of = |t: DateTime<Utc>| -> Option<usize> {
        if t < spec.start || t >= spec.end {
            return None;
        }
        Some(spec.buckets.partition_point(|b| *b <= t).saturating_sub(1))
    };
    // Send times per (profile, message), and the latest send per (profile, channel).
    let mut sends: HashMap<(String, String), Vec<DateTime<Utc>>> = HashMap::new();
    let mut latest: HashMap<(String, bool), (DateTime<Utc>, String)> = HashMap::new();
    let mut table: Table = BTreeMap::new();
    let n = spec.buckets.len();
    for day in days {
        let events: Vec<SimEvent> = app.store.read_day(Entity::Events, day).map_err(io_err)?;
        for e in events {
            if e.datetime < spec.start || e.datetime > read_until {
                continue;
            }
            let Some(role) = roles.get(&e.metric_id).copied() else { continue };
            let (msg, send_at) = match role {
                Role::Delivered | Role::Bounced | Role::SmsSent => {
                    // Any send (of either report kind, or of a deleted campaign) can be the one
                    // an unsubscribe follows.
                    let Some(m) = e.message_id.clone().or_else(|| e.campaign_id.clone()) else { continue };
                    latest.insert((e.profile_id.clone(), role == Role::SmsSent), (e.datetime, m.clone()));
                    if !groups.contains_key(&m) {
                        continue;
                    }
                    sends.entry((e.profile_id.clone(), m.clone())).or_default().push(e.datetime);
                    (m, e.datetime)
                }
                Role::UnsubEmail | Role::UnsubSms => {
                    if e.extra.get("Method").and_then(Value::as_str) == Some("Spam Complaint") {
                        continue;
                    }
                    let direct = e.message_id.clone().filter(|m| groups.contains_key(m));
                    let found = match direct {
                        Some(m) => last_send(&sends, &e.profile_id, &m, e.datetime).map(|t| (m, t)),
                        None => latest
                            .get(&(e.profile_id.clone(), role == Role::UnsubSms))
                            .filter(|(t, _)| e.datetime - *t <= ATTRIBUTION_WINDOW)
                            .map(|(t, m)| (m.clone(), *t)),
                    };
                    let Some(found) = found else { continue };
                    found
                }
                Role::Conversion => {
                    let Some(m) = e.attributed_message_id.clone().filter(|m| groups.contains_key(m)) else { continue };
                    let Some(t) = last_send(&sends, &e.profile_id, &m, e.datetime) else { continue };
                    (m, t)
                }
                _ => {
                    if role == Role::Click && e.extra.get("Bot Click").and_then(Value::as_bool) == Some(true) {
                        continue;
                    }
                    let Some(m) = e.message_id.clone().filter(|m| groups.contains_key(m)) else { continue };
                    let Some(t) = last_send(&sends, &e.profile_id, &m, e.datetime) else { continue };
                    (m, t)
                }
            };
            let Some(b) = bucket_of(send_at) else { continue };
            let Some(g) = groups.get(&msg).filter(|g| keep_group(g)) else { continue };
            let acc =
                &mut table.entry((g.parent.clone(), g.message.clone())).or_insert_with(|| vec![Acc::default(); n])[b];
            let p = e.profile_id.clone();
            match role {
                Role::Delivered => {
                    acc.recipients.insert(p);
                    acc.delivered += 1;
                }
                Role::Bounced => {
                    acc.recipients.insert(p);
                    acc.bounced += 1;
                }
                Role::SmsSent => {
                    acc.recipients.insert(p);
                    acc.segments += e.extra.get("Segment Count").and_then(Value::as_u64).unwrap_or(1);
                }
                Role::SmsDelivered => acc.delivered += 1,
                Role::SmsFailed => acc.failed += 1,
                Role::Open => {
                    acc.opens += 1;
                    acc.opens_unique.insert(p);
                }
                Role::Click => {
                    acc.clicks += 1;
                    acc.clicks_unique.insert(p);
                }
                Role::Spam => acc.spam_complaints += 1,
                Role::UnsubEmail | Role::UnsubSms => {
                    acc.unsubscribes += 1;
                    acc.unsubscribe_uniques.insert(p);
                }
                Role::Conversion => {
                    acc.conversions += 1;
                    acc.conversion_uniques.insert(p);
                    acc.conversion_value_minor += e.value_minor.unwrap_or(0);
                }
            }
        }
    }
    let ordered = table.keys().map(|(_, m)| groups[m].clone()).collect();
    Ok((ordered, table))
}

fn last_send(
    sends: &HashMap<(String, String), Vec<DateTime<Utc>>>,
    profile: &str,
    message: &str,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let times = sends.get(&(profile.to_string(), message.to_string()))?;
    let i = times.partition_point(|t| *t <= at);
    i.checked_sub(1).map(|i| times[i])
}

#[derive(Debug, Serialize, Deserialize)]
struct ReportCursor {
    kind: String,
    body: u64,
    offset: usize,
}

fn endpoint_path(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::FlowSeries => "/api/flow-series-reports/",
        ReportKind::FlowValues => "/api/flow-values-reports/",
        ReportKind::CampaignValues => "/api/campaign-values-reports/",
    }
}

fn report(app: &App, kind: ReportKind, params: &Params, body: &[u8]) -> Result<Response, ApiError> {
    let spec = parse(app, kind, body)?;
    let offset = match params.get("page_cursor") {
        None => 0,
        Some(token) => match cursor::decode::<ReportCursor>(token, app.cfg.cursor_ttl) {
            Ok(c) if c.kind == kind.type_name() && c.body == spec.body_hash => c.offset,
            Ok(_) | Err(CursorError::Invalid) => {
                return Err(ApiError::invalid("page_cursor", "Invalid page cursor for this report request."));
            }
            Err(CursorError::Stale) => {
                return Err(ApiError::invalid("page_cursor", "The page cursor has expired; request the report again."));
            }
        },
    };
    let (groups, table) = compute(app, kind, &spec)?;
    let digits = render::minor_digits(&app.shop.currency);
    let page: Vec<&Group> = groups.iter().skip(offset).take(PAGE_SIZE).collect();
    let results: Vec<Value> = page
        .iter()
        .map(|g| {
            let accs = &table[&(g.parent.clone(), g.message.clone())];
            let mut stats = Map::new();
            for s in &spec.statistics {
                let v = if kind.series() {
                    Value::Array(accs.iter().map(|a| a.stat(s, digits)).collect())
                } else {
                    accs[0].stat(s, digits)
                };
                stats.insert(s.clone(), v);
            }
            json!({"groupings": g.groupings(&spec.group_by), "statistics": stats})
        })
        .collect();
    let path = endpoint_path(kind);
    let self_link = params.self_link(&app.base);
    let next = (offset + PAGE_SIZE < groups.len()).then(|| {
        let token = cursor::encode(&ReportCursor {
            kind: kind.type_name().into(),
            body: spec.body_hash,
            offset: offset + PAGE_SIZE,
        });
        let q: String =
            url::form_urlencoded::Serializer::new(String::new()).append_pair("page_cursor", &token).finish();
        format!("{}{path}?{q}", app.base)
    });
    let mut attributes = json!({"results": results});
    if kind.series() {
        attributes["date_times"] =
            Value::Array(spec.buckets.iter().map(|b| json!(b.with_timezone(&spec.tz).to_rfc3339())).collect());
    }
    let links = json!({"self": self_link, "next": next, "prev": null});
    let body = json!({
        "data": {"type": kind.type_name(), "attributes": attributes, "links": links},
        "links": links,
    });
    Ok((StatusCode::OK, [(axum::http::header::CONTENT_TYPE, MEDIA_TYPE)], body.to_string()).into_response())
}

pub(super) async fn flow_series(State(app): State<Arc<App>>, uri: Uri, body: Bytes) -> Response {
    blocking(move || report(&app, ReportKind::FlowSeries, &Params::new(&uri), &body)).await
}

pub(super) async fn flow_values(State(app): State<Arc<App>>, uri: Uri, body: Bytes) -> Response {
    blocking(move || report(&app, ReportKind::FlowValues, &Params::new(&uri), &body)).await
}

pub(super) async fn campaign_values(State(app): State<Arc<App>>, uri: Uri, body: Bytes) -> Response {
    blocking(move || report(&app, ReportKind::CampaignValues, &Params::new(&uri), &body)).await
}

/// The daily report quota, per account-local day of the fake clock.
#[derive(Debug, Default)]
pub struct Quota {
    day: Option<NaiveDate>,
    used: u32,
}

impl App {
    /// `Err(seconds until local midnight)` when today's report quota is spent; `charge` counts
    /// the request.
    pub(super) fn report_quota(&self, charge: bool) -> Result<(), u64> {
        let tz = account_tz(self);
        let now = self.clock.now();
        let today = now.with_timezone(&tz).date_naive();
        let mut q = self.report_quota.lock().expect("quota lock poisoned");
        if q.day != Some(today) {
            *q = Quota { day: Some(today), used: 0 };
        }
        if q.used >= self.cfg.report_daily_quota {
            return Err(secs_to_midnight(&tz, now));
        }
        if charge {
            q.used += 1;
        }
        Ok(())
    }
}
