//! The Shopify streams. Orders, customers and products read their windows through
//! [`super::reader`] (paged or bulk); the shop and the inventory-item cost snapshot are plain
//! GraphQL requests driven by the shared engine.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{GRAPHQL, queries};
use crate::http::Pagination;
use crate::stream::{Incremental, Request, StreamSpec, SyncMode};

const PATH: &str = "/graphql.json";

/// The window reader builds its own requests; the generic filter has nothing to add.
fn no_filter(_: DateTime<Utc>, _: Option<DateTime<Utc>>) -> Vec<(String, String)> {
    Vec::new()
}

/// Re-read behind the watermark: Shopify's search index can lag writes (apis.md 2.2).
const OVERLAP_SECS: i64 = 2 * 3600;

/// An entity read from its `updatedAt`: everything on a first run, then from the watermark.
const fn by_updated_at(window_days: Option<u32>, from_start_date: bool) -> SyncMode {
    SyncMode::Incremental(Incremental {
        cursor_pointer: "/updatedAt",
        filter: no_filter,
        window_days,
        concurrency: 4,
        lookback_secs: OVERLAP_SECS,
        from_start_date,
    })
}

fn shop_body(_: Option<DateTime<Utc>>, _: Option<DateTime<Utc>>, _: Option<&str>) -> Value {
    json!({ "query": queries::SHOP })
}

/// The `shop` object is one record, not a list.
fn shop_record(page: &Value, _: Option<&Value>) -> Result<Vec<Value>, String> {
    page.pointer("/data/shop").cloned().map(|s| vec![s]).ok_or_else(|| "no data.shop in the response".to_string())
}

fn inventory_items_body(_: Option<DateTime<Utc>>, _: Option<DateTime<Utc>>, _: Option<&str>) -> Value {
    json!({ "query": queries::inventory_items_page(), "variables": { "first": 200 } })
}

pub const STREAMS: &[StreamSpec] = &[
    StreamSpec {
        name: "shop",
        path: PATH,
        request: Request::PostJson(shop_body),
        records: Some(shop_record),
        bucket: GRAPHQL,
        ..StreamSpec::DEFAULTS
    },
    // Orders are windowed on `updatedAt` from the start date, so refunds and edits to old
    // orders come back with the window they happened in.
    StreamSpec {
        name: "orders",
        path: PATH,
        sync: by_updated_at(Some(30), true),
        bucket: GRAPHQL,
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "customers",
        path: PATH,
        sync: by_updated_at(None, false),
        bucket: GRAPHQL,
        ..StreamSpec::DEFAULTS
    },
    StreamSpec {
        name: "products",
        path: PATH,
        sync: by_updated_at(None, false),
        bucket: GRAPHQL,
        ..StreamSpec::DEFAULTS
    },
    // Shopify keeps only the current unit cost: a full snapshot every run is the cost history.
    StreamSpec {
        name: "inventory_items",
        path: PATH,
        request: Request::PostJson(inventory_items_body),
        record_pointer: "/data/inventoryItems/nodes",
        pagination: Pagination::GraphQlCursor { page_info: "/data/inventoryItems/pageInfo" },
        bucket: GRAPHQL,
        ..StreamSpec::DEFAULTS
    },
];
