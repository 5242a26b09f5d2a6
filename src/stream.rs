//! The stream vocabulary: a stream is a typed description the engine drives.
//!
//! Adding a stream: write its [`StreamSpec`] in `sources/<source>/streams.rs`, its raw contract
//! in `schemas/raw/<source>/<stream>.yml`, and name it in a job file if it needs options.

use chrono::{DateTime, Utc};

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
    /// Re-read behind the watermark for late and edited records (seconds).
    pub lookback_secs: i64,
    /// Whether a first run starts at the job's `start_date` (event-like streams) or reads every
    /// record (entities such as profiles, which exist whenever they were last updated).
    pub from_start_date: bool,
    /// The API returns records sorted by the cursor, so a checkpoint after any page is safe.
    pub sorted: bool,
}

/// One stream of one source.
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    pub name: &'static str,
    /// Path under the source's base URL.
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
}

impl StreamSpec {
    pub fn incremental(&self) -> Option<&Incremental> {
        match &self.sync {
            SyncMode::Incremental(i) => Some(i),
            SyncMode::Full => None,
        }
    }
}
