//! Klaviyo's streams, one `StreamSpec` each (limits and page sizes: apis.md 1.4; plan: 1.7).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::filter_time;
use crate::http::{Pagination, RateBucket};
use crate::stream::{Incremental, Parent, QueryParams, Request, StreamSpec, SyncMode};

const NEXT: Pagination = Pagination::NextUrlInBody { pointer: "/links/next" };

const EVENTS: RateBucket = RateBucket { name: "events", burst_per_second: 350, steady_per_minute: 3500 };
const PROFILES: RateBucket = RateBucket { name: "profiles", burst_per_second: 75, steady_per_minute: 700 };
const METRICS: RateBucket = RateBucket { name: "metrics", burst_per_second: 10, steady_per_minute: 150 };
/// Flows, flow actions and flow messages share the 3/s, 60/m tier: the real bottleneck.
const FLOWS: RateBucket = RateBucket { name: "flows", burst_per_second: 3, steady_per_minute: 60 };
const CAMPAIGNS: RateBucket = RateBucket { name: "campaigns", burst_per_second: 10, steady_per_minute: 150 };
const GROUPS: RateBucket = RateBucket { name: "lists-segments", burst_per_second: 75, steady_per_minute: 700 };
/// Reporting endpoints: 1/s, 2/m and 225 a day per account (apis.md 1.6).
const REPORTS: RateBucket = RateBucket { name: "reports", burst_per_second: 1, steady_per_minute: 2 };

/// The campaign list's channel filter is mandatory, and archived campaigns need their own pass.
const CAMPAIGN_PARTITIONS: &[QueryParams] = &[
    &[("filter", "equals(messages.channel,'email')")],
    &[("filter", "and(equals(messages.channel,'email'),equals(archived,true))")],
    &[("filter", "equals(messages.channel,'sms')")],
    &[("filter", "and(equals(messages.channel,'sms'),equals(archived,true))")],
];

/// Campaign messages ride along with their campaigns (`include=campaign-messages`): one list
/// page instead of one request per campaign, the fan-out connector users complain about.
fn included_campaign_messages(page: &Value, _body: Option<&Value>) -> Result<Vec<Value>, String> {
    if page.get("data").and_then(Value::as_array).is_none() {
        return Err("no data array in the campaigns page".into());
    }
    let included = page.get("included").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    Ok(included.iter().filter(|r| r.get("type").and_then(Value::as_str) == Some("campaign-message")).cloned().collect())
}

fn events_window(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> Vec<(String, String)> {
    let mut filter = format!("greater-or-equal(datetime,{})", filter_time(from));
    if let Some(to) = to {
        filter = format!("and({filter},less-than(datetime,{}))", filter_time(to));
    }
    vec![("filter".into(), filter)]
}

/// Profiles accept only `greater-than`/`less-than` on `updated`; the one-hour lookback covers
/// the boundary second `greater-than` would drop.
fn profiles_since(from: DateTime<Utc>, _to: Option<DateTime<Utc>>) -> Vec<(String, String)> {
    vec![("filter".into(), format!("greater-than(updated,{})", filter_time(from)))]
}

/// Reports take no filter in the query: the window travels in the POST body.
fn no_filter(_: DateTime<Utc>, _: Option<DateTime<Utc>>) -> Vec<(String, String)> {
    Vec::new()
}

fn any(_: &Value) -> bool {
    true
}

/// Only send actions carry messages; asking the others costs a request of the 60/m budget each.
fn is_send_action(action: &Value) -> bool {
    let kind = action
        .pointer("/attributes/definition/type")
        .or_else(|| action.pointer("/attributes/action_type"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    kind.starts_with("send-") || kind.starts_with("SEND_")
}

fn is_placed_order(metric: &Value) -> bool {
    metric.pointer("/attributes/name").and_then(Value::as_str) == Some("Placed Order")
}

/// Report timeframes: Klaviyo ignores the offset and reads them in the account timezone.
fn timeframe(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Value {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT00:00:00").to_string();
    let from = from.unwrap_or_else(Utc::now);
    let to = to.unwrap_or_else(Utc::now);
    json!({ "start": fmt(from), "end": fmt(to) })
}

/// Requests per run for each report stream: the two together stay under half of the shared
/// 225/day quota, leaving the rest to people using Klaviyo's own tools.
const REPORT_BUDGET: u32 = 50;

const REPORT_STATISTICS: [&str; 11] = [
    "recipients",
    "delivered",
    "opens_unique",
    "clicks_unique",
    "unsubscribes",
    "bounced",
    "spam_complaints",
    "conversions",
    "conversion_uniques",
    "conversion_value",
    "revenue_per_recipient",
];

fn flow_series_body(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, metric: Option<&str>) -> Value {
    json!({"data": {"type": "flow-series-report", "attributes": {
        "statistics": REPORT_STATISTICS,
        "timeframe": timeframe(from, to),
        "interval": "daily",
        "conversion_metric_id": metric,
        "group_by": ["flow_id", "flow_message_id", "send_channel"],
    }}})
}

fn campaign_values_body(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, metric: Option<&str>) -> Value {
    json!({"data": {"type": "campaign-values-report", "attributes": {
        "statistics": REPORT_STATISTICS,
        "timeframe": timeframe(from, to),
        "conversion_metric_id": metric,
        "group_by": ["campaign_id", "campaign_message_id", "send_channel"],
    }}})
}

/// Series reports answer one result per grouping with every statistic as an array aligned with
/// `date_times`; a record here is one grouping on one day, so staging needs no unnesting.
fn flatten_series(page: &Value, _body: Option<&Value>) -> Result<Vec<Value>, String> {
    let attrs = page.pointer("/data/attributes").ok_or("no data.attributes in the report")?;
    let dates = attrs.get("date_times").and_then(Value::as_array).ok_or("no date_times in the series report")?;
    let results = attrs.get("results").and_then(Value::as_array).ok_or("no results in the report")?;
    let mut out = Vec::new();
    for r in results {
        let stats = r.get("statistics").and_then(Value::as_object).ok_or("a result has no statistics")?;
        for (i, date) in dates.iter().enumerate() {
            let day: serde_json::Map<String, Value> =
                stats.iter().map(|(k, v)| (k.clone(), v.get(i).cloned().unwrap_or(Value::Null))).collect();
            out.push(json!({"groupings": r.get("groupings"), "date": date, "statistics": day}));
        }
    }
    Ok(out)
}

/// Values reports do not echo the timeframe; each record carries the one that was asked.
fn values_with_timeframe(page: &Value, body: Option<&Value>) -> Result<Vec<Value>, String> {
    let results =
        page.pointer("/data/attributes/results").and_then(Value::as_array).ok_or("no results in the report")?;
    let timeframe = body.and_then(|b| b.pointer("/data/attributes/timeframe")).cloned().unwrap_or(Value::Null);
    Ok(results
        .iter()
        .map(|r| json!({"groupings": r.get("groupings"), "statistics": r.get("statistics"), "timeframe": timeframe}))
        .collect())
}

pub const STREAMS: &[StreamSpec] = &[
    StreamSpec { name: "metrics", path: "/api/metrics", pagination: NEXT, bucket: METRICS, ..StreamSpec::DEFAULTS },
    StreamSpec {
        name: "profiles",
        path: "/api/profiles",
        query: &[("additional-fields[profile]", "subscriptions"), ("sort", "updated")],
        page_size: Some(("page[size]", 100)),
        pagination: NEXT,
        sync: SyncMode::Incremental(Incremental {
            cursor_pointer: "/attributes/updated",
            filter: profiles_since,
            window_days: None,
            concurrency: 1,
            lookback_secs: 3600,
            from_start_date: false,
        }),
        bucket: PROFILES,
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "events",
        path: "/api/events",
        query: &[("sort", "datetime")],
        page_size: Some(("page[size]", 1000)),
        pagination: NEXT,
        sync: SyncMode::Incremental(Incremental {
            cursor_pointer: "/attributes/datetime",
            filter: events_window,
            // Three-day windows fill nearly every 1000-event page (one-day windows left a partial
            // last page per day, 10 % of requests), and 24 in flight keep the pacer, not the
            // ~170 ms round trip, the limit: 0.91 of the rate-limit ceiling in the benchmark.
            window_days: Some(3),
            concurrency: 24,
            lookback_secs: 7 * 86_400,
            from_start_date: true,
        }),
        bucket: EVENTS,
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "flows",
        path: "/api/flows",
        page_size: Some(("page[size]", 50)),
        pagination: NEXT,
        bucket: FLOWS,
        // Archived flows are left out unless asked for.
        partitions: &[&[], &[("filter", "equals(archived,true)")]],
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "flow_actions",
        path: "/api/flows/{parent_id}/flow-actions",
        page_size: Some(("page[size]", 50)),
        pagination: NEXT,
        bucket: FLOWS,
        parent: Some(Parent { stream: "flows", id_pointer: "/id", select: any }),
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "flow_messages",
        path: "/api/flow-actions/{parent_id}/flow-messages",
        pagination: NEXT,
        bucket: FLOWS,
        parent: Some(Parent { stream: "flow_actions", id_pointer: "/id", select: is_send_action }),
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "campaigns",
        path: "/api/campaigns",
        pagination: NEXT,
        bucket: CAMPAIGNS,
        partitions: CAMPAIGN_PARTITIONS,
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "campaign_messages",
        path: "/api/campaigns",
        query: &[("include", "campaign-messages")],
        pagination: NEXT,
        bucket: CAMPAIGNS,
        partitions: CAMPAIGN_PARTITIONS,
        records: Some(included_campaign_messages),
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "lists",
        path: "/api/lists",
        query: &[("additional-fields[list]", "profile_count")],
        page_size: Some(("page[size]", 10)),
        pagination: NEXT,
        bucket: GROUPS,
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "segments",
        path: "/api/segments",
        query: &[("additional-fields[segment]", "profile_count")],
        page_size: Some(("page[size]", 10)),
        pagination: NEXT,
        bucket: GROUPS,
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "flow_series_report",
        path: "/api/flow-series-reports",
        pagination: NEXT,
        bucket: REPORTS,
        sync: SyncMode::Incremental(Incremental {
            cursor_pointer: "/date",
            filter: no_filter,
            // Daily series allow at most 60 days per request.
            window_days: Some(60),
            concurrency: 8,
            // Conversions keep accruing after the send date: restate the last 14 days nightly.
            lookback_secs: 14 * 86_400,
            from_start_date: true,
        }),
        parent: Some(Parent { stream: "metrics", id_pointer: "/id", select: is_placed_order }),
        request: Request::PostJson(flow_series_body),
        records: Some(flatten_series),
        request_budget: Some(REPORT_BUDGET),
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "campaign_values_report",
        path: "/api/campaign-values-reports",
        pagination: NEXT,
        bucket: REPORTS,
        sync: SyncMode::Incremental(Incremental {
            cursor_pointer: "/timeframe/end",
            filter: no_filter,
            window_days: Some(90),
            concurrency: 8,
            lookback_secs: 14 * 86_400,
            from_start_date: true,
        }),
        parent: Some(Parent { stream: "metrics", id_pointer: "/id", select: is_placed_order }),
        request: Request::PostJson(campaign_values_body),
        records: Some(values_with_timeframe),
        request_budget: Some(REPORT_BUDGET),
        ..StreamSpec::DEFAULTS
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_reports_flatten_to_one_record_per_grouping_and_day() {
        let page = json!({"data": {"attributes": {
            "date_times": ["2026-01-01T00:00:00-05:00", "2026-01-02T00:00:00-05:00"],
            "results": [{"groupings": {"flow_id": "F1", "flow_message_id": "M1", "send_channel": "email"},
                         "statistics": {"conversions": [1, 2], "conversion_value": [10.5, 0]}}]}}});
        let records = flatten_series(&page, None).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1]["statistics"]["conversions"], 2);
        assert_eq!(records[1]["groupings"]["flow_message_id"], "M1");
        assert!(flatten_series(&json!({"data": {}}), None).is_err());
    }

    #[test]
    fn every_stream_has_a_contract_and_parents_exist() {
        for s in STREAMS {
            crate::contract::raw("klaviyo", s.name).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            if let Some(p) = s.parent {
                assert!(STREAMS.iter().any(|o| o.name == p.stream), "{} has unknown parent {}", s.name, p.stream);
                assert!(s.path.contains("{parent_id}") || matches!(s.request, Request::PostJson(_)), "{}", s.name);
            }
        }
    }
}
