//! Postscript's streams (endpoints: apis.md 4.2; limits: 4.3).

use chrono::{DateTime, Utc};

use crate::http::{Pagination, RateBucket};
use crate::stream::{Incremental, StreamSpec, SyncMode};

/// 15 requests a second per token; no headers, a 429 with a JSON body past it.
const API: RateBucket = RateBucket { name: "api", burst_per_second: 15, steady_per_minute: 900 };

/// Postscript's timestamps are naive UTC (`2021-11-04T21:52:41.025455`); the filters take the
/// same form.
fn updated_since(from: DateTime<Utc>, _to: Option<DateTime<Utc>>) -> Vec<(String, String)> {
    vec![("updated_at__gte".into(), from.format("%Y-%m-%dT%H:%M:%S").to_string())]
}

pub static STREAMS: &[StreamSpec] = &[
    StreamSpec {
        name: "subscribers",
        path: "/api/v2/subscribers",
        query: &[("sort", "updated_at__asc")],
        record_pointer: "/subscribers",
        pagination: Pagination::PageNumberKeyset {
            page_info: "/page_info",
            records: "/subscribers",
            cursor: "/updated_at",
            filter: "updated_at__gte",
            page_param: "page",
        },
        sync: SyncMode::Incremental(Incremental {
            cursor_pointer: "/updated_at",
            filter: updated_since,
            window_days: None,
            concurrency: 1,
            // Pages shift while they are read; an hour of overlap costs a page or two.
            lookback_secs: 3600,
            from_start_date: false,
        }),
        bucket: API,
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "keywords",
        path: "/api/v2/keywords",
        record_pointer: "/keywords",
        bucket: API,
        ..StreamSpec::DEFAULTS
    },
];
