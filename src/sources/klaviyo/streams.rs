//! Klaviyo's streams, one `StreamSpec` each (limits and page sizes: apis.md 1.4).

use chrono::{DateTime, Utc};

use super::filter_time;
use crate::http::{Pagination, RateBucket};
use crate::stream::{Incremental, StreamSpec, SyncMode};

const NEXT: Pagination = Pagination::NextUrlInBody { pointer: "/links/next" };

const EVENTS_BUCKET: RateBucket = RateBucket { name: "events", burst_per_second: 350, steady_per_minute: 3500 };
const PROFILES_BUCKET: RateBucket = RateBucket { name: "profiles", burst_per_second: 75, steady_per_minute: 700 };
const METRICS_BUCKET: RateBucket = RateBucket { name: "metrics", burst_per_second: 10, steady_per_minute: 150 };

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

pub const STREAMS: &[StreamSpec] = &[
    StreamSpec {
        name: "metrics",
        path: "/api/metrics",
        query: &[],
        record_pointer: "/data",
        page_size: None,
        pagination: NEXT,
        sync: SyncMode::Full,
        bucket: METRICS_BUCKET,
    },
    StreamSpec {
        name: "profiles",
        path: "/api/profiles",
        query: &[("additional-fields[profile]", "subscriptions"), ("sort", "updated")],
        record_pointer: "/data",
        page_size: Some(("page[size]", 100)),
        pagination: NEXT,
        sync: SyncMode::Incremental(Incremental {
            cursor_pointer: "/attributes/updated",
            filter: profiles_since,
            window_days: None,
            lookback_secs: 3600,
            from_start_date: false,
            sorted: true,
        }),
        bucket: PROFILES_BUCKET,
    },
    StreamSpec {
        name: "events",
        path: "/api/events",
        query: &[("sort", "datetime")],
        record_pointer: "/data",
        page_size: Some(("page[size]", 1000)),
        pagination: NEXT,
        sync: SyncMode::Incremental(Incremental {
            cursor_pointer: "/attributes/datetime",
            filter: events_window,
            window_days: Some(1),
            lookback_secs: 7 * 86_400,
            from_start_date: true,
            sorted: true,
        }),
        bucket: EVENTS_BUCKET,
    },
];
