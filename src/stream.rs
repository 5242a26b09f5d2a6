//! The stream vocabulary: a stream is a typed description the engine drives.
//!
//! Adding a stream: write its [`StreamSpec`] in `sources/<source>/streams.rs`, its raw contract
//! in `schemas/raw/<source>/<stream>.yml`, and name it in a job file if it needs options.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::http::{Pagination, RateBucket};

/// How a stream is read each run.
#[derive(Debug, Clone, Copy)]
pub enum SyncMode {
    /// Everything, every run (small streams).
    Full,
    /// From a saved watermark on `cursor_field`.
    Incremental(Incremental),
}

/// Builds the query parameters that select `[from, to)`; `to` is `None` for open windows.
pub type WindowFilter = fn(from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> Vec<(String, String)>;

/// An incremental stream's cursor and windowing.
#[derive(Debug, Clone, Copy)]
pub struct Incremental {
    /// JSON pointer of the cursor value in a record (`/attributes/updated`).
    pub cursor_pointer: &'static str,
    /// Selects one window.
    pub filter: WindowFilter,
    /// Fixed-size windows fetched in parallel (days), or one open window when `None`.
    pub window_days: Option<u32>,
    /// Windows in flight at once (a job's `concurrency` overrides it).
    pub concurrency: usize,
    /// Re-read behind the watermark for late and edited records (seconds).
    pub lookback_secs: i64,
    /// Whether a first run starts at the job's `start_date` (event-like streams) or reads every
    /// record (entities such as profiles, which exist whenever they were last updated).
    pub from_start_date: bool,
}

/// A child stream is read once per record of its parent stream (flow actions per flow).
#[derive(Debug, Clone, Copy)]
pub struct Parent {
    /// The parent stream's name; it is synced first in the same run.
    pub stream: &'static str,
    /// JSON pointer of the id in a parent record.
    pub id_pointer: &'static str,
    /// Which parent records have children (e.g. only send actions have messages).
    pub select: fn(&Value) -> bool,
}

/// Builds a POST body from the window and the parent id.
pub type BodyBuilder = fn(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, parent_id: Option<&str>) -> Value;

/// Fixed query parameters: one partition of a stream.
pub type QueryParams = &'static [(&'static str, &'static str)];

/// How a stream asks for a page.
#[derive(Debug, Clone, Copy)]
pub enum Request {
    Get,
    /// POST a JSON body built from the window and the parent id (reporting endpoints).
    PostJson(BodyBuilder),
}

/// Turns one page into records when they are not a plain array at `record_pointer` (the one
/// escape hatch; each use names the API quirk that forced it).
/// It also sees the request body, for APIs that do not echo what was asked.
pub type RecordsHook = fn(page: &Value, request_body: Option<&Value>) -> Result<Vec<Value>, String>;

/// One stream of one source.
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    pub name: &'static str,
    /// Path under the source's base URL; `{parent_id}` is replaced for child streams.
    pub path: &'static str,
    /// Query parameters sent on every first page.
    pub query: &'static [(&'static str, &'static str)],
    /// JSON pointer of the record array in a page.
    pub record_pointer: &'static str,
    /// Page-size parameter and the endpoint's maximum (used unless the job sets less).
    pub page_size: Option<(&'static str, u32)>,
    pub pagination: Pagination,
    pub sync: SyncMode,
    pub bucket: RateBucket,
    /// Query variants read in turn, each a full pass (campaigns per channel and archived flag).
    pub partitions: &'static [QueryParams],
    pub parent: Option<Parent>,
    pub request: Request,
    pub records: Option<RecordsHook>,
    /// Requests one run may spend (quota-bound endpoints); a stream that reaches it stops
    /// cleanly and continues next run.
    pub request_budget: Option<u32>,
}

impl StreamSpec {
    /// Defaults for the fields most streams leave alone; a spec spreads it with `..DEFAULTS`.
    pub const DEFAULTS: StreamSpec = StreamSpec {
        name: "",
        path: "",
        query: &[],
        record_pointer: "/data",
        page_size: None,
        pagination: Pagination::Single,
        sync: SyncMode::Full,
        bucket: RateBucket { name: "default", burst_per_second: 1, steady_per_minute: 60 },
        partitions: &[],
        parent: None,
        request: Request::Get,
        records: None,
        request_budget: None,
    };

    pub fn incremental(&self) -> Option<&Incremental> {
        match &self.sync {
            SyncMode::Incremental(i) => Some(i),
            SyncMode::Full => None,
        }
    }
}
