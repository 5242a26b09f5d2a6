//! Drives one stream: windows → pages → records → landed parts → commits.
//!
//! Incremental streams with fixed windows fetch several windows at once (a sequential page loop
//! is latency-bound, far below the vendor's rate limit) and commit them in order, so the saved
//! watermark only ever covers a contiguous, committed prefix. A window that fails keeps the
//! watermark where it was; windows after it are committed (their data is good) without moving
//! it, and the next run reads from the failure again (staging deduplicates on id).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::StreamOptions;
use crate::contract::{self, Contract};
use crate::error::{Error, Result};
use crate::http::{HttpEngine, HttpError, Page, Pagination};
use crate::landing::{BatchBuilder, JsonApiPage, write_file};
use crate::manifest::{LandedFile, RunWriter, StreamSummary};
use crate::storage::{Storage, layout};
use crate::stream::{Parent, QueryParams, Request, StreamSpec, SyncMode};

/// A stream's saved state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamState {
    /// Everything with a cursor below this is committed (incremental streams).
    pub watermark: Option<DateTime<Utc>>,
    /// When a full-refresh stream last completed.
    pub last_full_sync_at: Option<DateTime<Utc>>,
    pub run_id: String,
}

/// What a run shares with every stream it syncs.
pub struct SyncContext {
    pub storage: Storage,
    pub run: Arc<RunWriter>,
    pub run_id: String,
    /// Sources are read up to this instant (the run's start unless a replay pins it).
    pub run_started: DateTime<Utc>,
    /// When this run lands data: `_landed_at` and the `landed_date=` partition.
    pub landed_at: DateTime<Utc>,
    pub batch_rows: usize,
    pub full_refresh: bool,
}

/// One stream of one source, ready to sync.
pub struct StreamJob<'a> {
    pub source: &'static str,
    pub base_url: &'a str,
    pub spec: &'a StreamSpec,
    pub options: StreamOptions,
    pub start_date: NaiveDate,
    /// For a child stream: the parent ids collected earlier in the run.
    pub parent_ids: Vec<String>,
    /// For a parent stream: its children's names and which ids to collect for each.
    pub children: Vec<(&'static str, Parent)>,
    /// Reads the windows it wants instead of the page loop (Shopify bulk operations).
    pub window_reader: Option<Arc<dyn WindowReader>>,
}

/// What syncing one stream produced.
pub struct StreamResult {
    pub summary: StreamSummary,
    pub error: Option<Error>,
    /// Ids collected for each child stream, by the child's name.
    pub ids: BTreeMap<&'static str, Vec<String>>,
}

/// Syncs one stream. The summary is returned even on failure, with the error beside it.
pub async fn sync_stream(ctx: &SyncContext, engine: &HttpEngine, job: StreamJob<'_>) -> StreamResult {
    let counters = Arc::new(Counters::new(&format!("{}.{}", job.source, job.spec.name)));
    let result = sync_inner(ctx, engine, &job, &counters).await;
    counters.bar.finish_and_clear();
    let ids = std::mem::take(&mut *counters.ids.lock().expect("ids lock"));
    let (summary, error) = outcome(ctx, &job, &counters, result);
    StreamResult { summary, error, ids }
}

fn outcome(
    ctx: &SyncContext,
    job: &StreamJob<'_>,
    counters: &Counters,
    result: Result<()>,
) -> (StreamSummary, Option<Error>) {
    let mut summary = counters.summary();
    match result {
        Ok(()) if summary.quarantined_pages == 0 => {
            summary.status = if counters.budget_spent.load(Ordering::Relaxed) { "partial" } else { "ok" }.into();
            (summary, None)
        }
        Ok(()) => {
            let err = Error::Source {
                source_name: job.source.into(),
                stream: job.spec.name.into(),
                message: format!(
                    "{} page(s) or record(s) quarantined under _quarantine/{}/{}/{}/ (the first: {})",
                    summary.quarantined_pages,
                    ctx.run_id,
                    job.source,
                    job.spec.name,
                    counters.first_quarantined.lock().expect("first quarantined lock").as_deref().unwrap_or("?")
                ),
                cause: None,
            };
            summary.status = "failed".into();
            summary.error = Some(err.to_string());
            (summary, Some(err))
        }
        Err(err) => {
            summary.status = "failed".into();
            summary.error = Some(err.to_string());
            (summary, Some(err))
        }
    }
}

struct Counters {
    bar: indicatif::ProgressBar,
    read: AtomicU64,
    /// Set when the stream's per-run request budget stopped it (a planned, partial read).
    budget_spent: std::sync::atomic::AtomicBool,
    ids: std::sync::Mutex<BTreeMap<&'static str, Vec<String>>>,
    records: AtomicU64,
    files: AtomicU64,
    bytes: AtomicU64,
    pages: AtomicU64,
    quarantined: AtomicU64,
    /// What the first quarantine entry names (record id and field, or the page), for the
    /// stream's error: the entries themselves hold the rest.
    first_quarantined: std::sync::Mutex<Option<String>>,
    parts: AtomicU32,
}

impl Counters {
    fn new(label: &str) -> Self {
        Self {
            bar: crate::progress::stream_bar(label),
            read: AtomicU64::new(0),
            budget_spent: std::sync::atomic::AtomicBool::new(false),
            ids: std::sync::Mutex::new(BTreeMap::new()),
            records: AtomicU64::new(0),
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            quarantined: AtomicU64::new(0),
            first_quarantined: std::sync::Mutex::new(None),
            parts: AtomicU32::new(0),
        }
    }

    fn show(&self) {
        self.bar.set_message(format!(
            "{} records read, {} pages, {} landed in {} files",
            self.read.load(Ordering::Relaxed),
            self.pages.load(Ordering::Relaxed),
            indicatif::HumanBytes(self.bytes.load(Ordering::Relaxed)),
            self.files.load(Ordering::Relaxed)
        ));
    }

    fn summary(&self) -> StreamSummary {
        StreamSummary {
            records: self.records.load(Ordering::Relaxed),
            files: self.files.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            pages: self.pages.load(Ordering::Relaxed),
            quarantined_pages: self.quarantined.load(Ordering::Relaxed),
            status: String::new(),
            error: None,
            ..StreamSummary::default()
        }
    }
}

async fn sync_inner(
    ctx: &SyncContext,
    engine: &HttpEngine,
    job: &StreamJob<'_>,
    counters: &Arc<Counters>,
) -> Result<()> {
    let contract = contract::raw(job.source, job.spec.name)?;
    let (source, stream) = (job.source, job.spec.name);
    if ctx.full_refresh {
        crate::state::clear(&ctx.storage, source, stream).await?;
    }
    let previous: Option<StreamState> = crate::state::load(&ctx.storage, source, stream).await?;
    let page_size = job.spec.page_size.map(|(param, max)| (param, job.options.page_size.unwrap_or(max).min(max)));
    let reader = PageReader { ctx, engine, job, contract: &contract, counters: counters.clone(), page_size };

    match job.spec.sync {
        SyncMode::Full => match reader.read_window(None, None, None).await {
            Ok(files) => {
                let state = StreamState {
                    last_full_sync_at: Some(ctx.run_started),
                    run_id: ctx.run_id.clone(),
                    ..Default::default()
                };
                ctx.run.commit(source, stream, files, Some(to_value(&state))).await
            }
            Err(WindowError { files, error }) => {
                ctx.run.commit(source, stream, files, None).await?;
                Err(error)
            }
        },
        SyncMode::Incremental(inc) => {
            let start = job.start_date.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            let lookback =
                Duration::seconds(job.options.lookback_days.map_or(inc.lookback_secs, |d| i64::from(d) * 86_400));
            let first_from = match job.options.backfill_days {
                Some(days) => start.max(ctx.run_started - Duration::days(i64::from(days))),
                None => start,
            };
            let from = previous.as_ref().and_then(|s| s.watermark).map_or(first_from, |w| (w - lookback).max(start));
            // Events can carry future datetimes: never read (or move the watermark) past the run's start.
            let until = ctx.run_started;
            match job.options.window_days.or(inc.window_days) {
                Some(days) => {
                    sync_windows(
                        &reader,
                        from,
                        until,
                        i64::from(days.max(1)),
                        job.options.concurrency.unwrap_or(inc.concurrency),
                    )
                    .await
                }
                None => {
                    let watermark = previous.and_then(|s| s.watermark);
                    let from = (watermark.is_some() || inc.from_start_date).then_some(from);
                    sync_open_window(&reader, from, until, watermark, inc.cursor_pointer).await
                }
            }
        }
    }
}

async fn sync_windows(
    reader: &PageReader<'_>,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    days: i64,
    concurrency: usize,
) -> Result<()> {
    let (ctx, source, stream) = (reader.ctx, reader.job.source, reader.job.spec.name);
    let mut windows = Vec::new();
    let mut a = from;
    while a < until {
        let b = (a + Duration::days(days)).min(until);
        windows.push((a, b));
        a = b;
    }
    let ends: Vec<DateTime<Utc>> = windows.iter().map(|w| w.1).collect();
    // Windows finish out of order (a busy day has more pages than a quiet one); waiting for
    // them in order would leave slots idle behind a slow head. Each window's files are
    // committed when it finishes; the watermark advances only over the contiguous prefix of
    // finished windows, and never past a failed one.
    let mut results = futures::stream::iter(windows.into_iter().enumerate())
        .map(|(i, (a, b))| async move { (i, reader.read_window(Some(a), Some(b), None).await) })
        .buffer_unordered(concurrency.max(1));
    let mut finished = vec![false; ends.len()];
    let mut prefix = 0usize;
    let mut failed_at: Option<usize> = None;
    let mut first_error: Option<Error> = None;
    while let Some((i, result)) = results.next().await {
        match result {
            Ok(files) => {
                finished[i] = true;
                let before = prefix;
                let limit = failed_at.unwrap_or(finished.len());
                while prefix < limit && finished[prefix] {
                    prefix += 1;
                }
                let state = (prefix > before).then(|| {
                    let watermark = Some(ends[prefix - 1]);
                    to_value(&StreamState { watermark, run_id: ctx.run_id.clone(), ..Default::default() })
                });
                ctx.run.commit(source, stream, files, state).await?;
            }
            Err(WindowError { files, error }) => {
                // The prefix stops here for good: no later window may move the watermark.
                failed_at = Some(failed_at.map_or(i, |f| f.min(i)));
                ctx.run.commit(source, stream, files, None).await?;
                if reader.counters.budget_spent.load(Ordering::Relaxed) {
                    // A planned stop: later windows wait for the next run, the watermark stays.
                    first_error.get_or_insert(error);
                    continue;
                }
                tracing::error!(source, stream, error = %error, "Window failed; the watermark stays before it.");
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(_) if reader.counters.budget_spent.load(Ordering::Relaxed) => {
            tracing::warn!(
                source,
                stream,
                "Request budget for this run spent; the remaining windows are read next run."
            );
            Ok(())
        }
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn sync_open_window(
    reader: &PageReader<'_>,
    from: Option<DateTime<Utc>>,
    until: DateTime<Utc>,
    previous: Option<DateTime<Utc>>,
    cursor_pointer: &str,
) -> Result<()> {
    let (ctx, source, stream) = (reader.ctx, reader.job.source, reader.job.spec.name);
    let mut max_cursor = previous;
    let mut observe = |record: &Value| {
        if let Some(t) = record.pointer(cursor_pointer).and_then(crate::landing::arrow::parse_timestamp)
            && let Some(t) = DateTime::<Utc>::from_timestamp_micros(t)
        {
            max_cursor = max_cursor.max(Some(t.min(until)));
        }
    };
    match reader.read_window(from, None, Some(&mut observe)).await {
        Ok(files) => {
            let state =
                StreamState { watermark: max_cursor.or(from), run_id: ctx.run_id.clone(), ..Default::default() };
            ctx.run.commit(source, stream, files, Some(to_value(&state))).await
        }
        Err(WindowError { files, error }) => {
            ctx.run.commit(source, stream, files, None).await?;
            Err(error)
        }
    }
}

/// The next request of a chain: its URL and, for POST APIs, its body.
type NextPage = (String, Option<Value>);

/// A record as the page gave it: its exact text, or parsed when a hook had to reshape it.
enum Record<'p> {
    Raw(&'p serde_json::value::RawValue),
    Parsed(Value),
}

struct WindowError {
    /// Parts landed before the failure: good data, committed without moving the watermark.
    files: Vec<LandedFile>,
    error: Error,
}

impl From<Error> for WindowError {
    fn from(error: Error) -> Self {
        WindowError { files: Vec::new(), error }
    }
}

struct PageReader<'a> {
    ctx: &'a SyncContext,
    engine: &'a HttpEngine,
    job: &'a StreamJob<'a>,
    contract: &'a Contract,
    counters: Arc<Counters>,
    page_size: Option<(&'static str, u32)>,
}

impl PageReader<'_> {
    /// The passes one window needs: each partition, under each parent id.
    fn passes(&self) -> Vec<(QueryParams, Option<&str>)> {
        let partitions: &[QueryParams] =
            if self.job.spec.partitions.is_empty() { &[&[]] } else { self.job.spec.partitions };
        let parents: Vec<Option<&str>> = if self.job.spec.parent.is_some() {
            self.job.parent_ids.iter().map(|p| Some(p.as_str())).collect()
        } else {
            vec![None]
        };
        partitions.iter().flat_map(|part| parents.iter().map(move |p| (*part, *p))).collect()
    }

    fn first_url(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        partition: &[(&str, &str)],
        parent_id: Option<&str>,
    ) -> Result<String> {
        let base = self.job.base_url.trim_end_matches('/');
        let path = match parent_id {
            Some(id) => self.job.spec.path.replace("{parent_id}", &url_segment(id)),
            None => self.job.spec.path.to_string(),
        };
        let mut url = url::Url::parse(&format!("{base}{path}"))
            .map_err(|e| Error::config(format!("sources.{}.base_url: {e}", self.job.source)))?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in self.job.spec.query.iter().chain(partition) {
                q.append_pair(k, v);
            }
            if let Some((param, size)) = self.page_size {
                q.append_pair(param, &size.to_string());
            }
            if let (Some(inc), Some(from)) = (self.job.spec.incremental(), from) {
                for (k, v) in (inc.filter)(from, to) {
                    q.append_pair(&k, &v);
                }
            }
        }
        Ok(url.to_string())
    }

    /// Reads one window, landing a part each `batch_rows` records: page by page, or through
    /// the source's [`WindowReader`] when it wants this window.
    async fn read_window(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        observe: Option<&mut (dyn FnMut(&Value) + Send + Sync)>,
    ) -> std::result::Result<Vec<LandedFile>, WindowError> {
        let mut sink = RecordSink {
            reader: self,
            builder: BatchBuilder::new(self.contract.clone(), &self.ctx.run_id, self.ctx.landed_at),
            files: Vec::new(),
            observe,
        };
        if let Some(other) = self.job.window_reader.as_ref().filter(|r| r.wants(from, to)) {
            if let Err(e) = other.read(from, to, &mut sink).await {
                return Err(sink.fail(e).await);
            }
        } else {
            for (partition, parent_id) in self.passes() {
                if let Err(e) = self.read_pass(from, to, partition, parent_id, &mut sink).await {
                    return Err(sink.fail(e).await);
                }
            }
        }
        sink.finish().await
    }

    /// Follows one chain of pages; parts are landed as the sink fills.
    async fn read_pass(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        partition: &[(&str, &str)],
        parent_id: Option<&str>,
        sink: &mut RecordSink<'_, '_>,
    ) -> Result<()> {
        let (source, stream) = (self.job.source, self.job.spec.name);
        let body = match self.job.spec.request {
            Request::Get => None,
            Request::PostJson(build) => Some(build(from, to, parent_id)),
        };
        let mut next = Some((self.first_url(from, to, partition, parent_id)?, body));
        let budget = self.job.options.max_requests.or(self.job.spec.request_budget);
        while let Some((url, body)) = next.take() {
            if let Some(budget) = budget
                && self.counters.pages.load(Ordering::Relaxed) >= u64::from(budget)
            {
                self.counters.budget_spent.store(true, Ordering::Relaxed);
                return Err(Error::Source {
                    source_name: source.into(),
                    stream: stream.into(),
                    message: format!("request budget of {budget} per run spent"),
                    cause: None,
                });
            }
            let page = match self.engine.fetch_json(&url, body.as_ref(), self.job.spec.bucket).await {
                Ok(page) => page,
                Err(e) => return Err(http_error(source, stream, e)),
            };
            self.counters.pages.fetch_add(1, Ordering::Relaxed);
            let decoded = decode_lossy(&page.bytes).map(|bytes| Page {
                url: page.url.clone(),
                bytes,
                headers: page.headers.clone(),
            });
            let lossy = decoded.is_some();
            let page = decoded.unwrap_or(page);
            let (records, following) = match self.split_page(&page, body.as_ref()) {
                Ok(split) => split,
                Err(message) => {
                    let text = Value::String(String::from_utf8_lossy(&page.bytes).into_owned());
                    self.quarantine(&page.url, &message, None, None, text).await?;
                    return Err(Error::Source {
                        source_name: source.into(),
                        stream: stream.into(),
                        message: format!("malformed page {} quarantined: {message}", page.url),
                        cause: None,
                    });
                }
            };
            let n = records.len() as u64;
            for record in records {
                sink.land(record, parent_id, &page.url, lossy).await?;
            }
            self.counters.read.fetch_add(n, Ordering::Relaxed);
            self.counters.show();
            next = following;
        }
        Ok(())
    }

    /// Splits a page into records and the next page's URL. JSON:API pages keep each record as
    /// the text the API sent (landing parses only the contract's columns); pages a hook or a
    /// different layout must interpret are parsed whole.
    fn split_page<'p>(
        &self,
        page: &'p Page,
        body: Option<&Value>,
    ) -> std::result::Result<(Vec<Record<'p>>, Option<NextPage>), String> {
        let spec = self.job.spec;
        let next_in_links = matches!(spec.pagination, Pagination::NextUrlInBody { pointer: "/links/next" });
        if spec.records.is_none() && spec.record_pointer == "/data" && next_in_links {
            let split = JsonApiPage::parse(&page.bytes).map_err(|e| e.to_string())?;
            let next = split.next().map(|url| (url.to_string(), body.cloned()));
            return Ok((split.data.into_iter().map(Record::Raw).collect(), next));
        }
        let doc = page.json().map_err(|e| e.to_string())?;
        let records = match spec.records {
            Some(hook) => hook(&doc, body)?,
            None => doc
                .pointer(spec.record_pointer)
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| format!("no record array at {}", spec.record_pointer))?,
        };
        let next = match spec.pagination.next_body(&doc, body) {
            Some(next_body) => Some((page.url.clone(), Some(next_body))),
            None => spec.pagination.next_url(&page.url, &doc, &page.headers).map(|url| (url, body.cloned())),
        };
        Ok((records.into_iter().map(Record::Parsed).collect(), next))
    }

    /// Remembers the ids child streams will be read under.
    fn collect(&self, record: &Value) {
        for (child, parent) in &self.job.children {
            if (parent.select)(record)
                && let Some(id) = record.pointer(parent.id_pointer).and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
            {
                self.counters.ids.lock().expect("ids lock").entry(child).or_default().push(id);
            }
        }
    }

    async fn flush(&self, builder: &mut BatchBuilder) -> Result<Option<LandedFile>> {
        if builder.is_empty() {
            return Ok(None);
        }
        let batch = builder.finish();
        let part = self.counters.parts.fetch_add(1, Ordering::Relaxed);
        let rel = layout::raw_file(
            self.job.source,
            self.job.spec.name,
            self.ctx.landed_at.date_naive(),
            &self.ctx.run_id,
            part,
        );
        let file = write_file(&self.ctx.storage, &rel, &batch).await?;
        self.counters.records.fetch_add(file.rows, Ordering::Relaxed);
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(file.bytes, Ordering::Relaxed);
        Ok(Some(file))
    }

    async fn quarantine(
        &self,
        url: &str,
        error: &str,
        record_id: Option<String>,
        field: Option<String>,
        body: Value,
    ) -> Result<()> {
        let n = self.counters.quarantined.fetch_add(1, Ordering::Relaxed) as u32;
        let (source, stream) = (self.job.source, self.job.spec.name);
        self.counters.first_quarantined.lock().expect("first quarantined lock").get_or_insert_with(|| match &field {
            // No value here: the error is logged, and values can be personal.
            Some(field) => format!("record {}, field {field}", record_id.as_deref().unwrap_or("<no id>")),
            None => format!("page {url}"),
        });
        let entry = serde_json::json!({
            "source": source, "stream": stream, "run_id": self.ctx.run_id, "page_url": url,
            "error": error, "record_id": record_id, "field": field, "body": body,
            "quarantined_at": Utc::now().to_rfc3339(),
        });
        let bytes = serde_json::to_vec_pretty(&entry).map_err(|e| Error::Internal(e.to_string()))?;
        self.ctx.storage.put(&layout::quarantine(&self.ctx.run_id, source, stream, n), bytes).await
    }
}

/// Where a window's records go: the landing batch, its landed parts, the watermark observer
/// and the child-id collector. Page chains and [`WindowReader`]s both land through it.
pub struct RecordSink<'r, 'o> {
    reader: &'r PageReader<'r>,
    builder: BatchBuilder,
    files: Vec<LandedFile>,
    observe: Option<&'o mut (dyn FnMut(&Value) + Send + Sync)>,
}

impl RecordSink<'_, '_> {
    /// Lands one parsed record read from `origin` (a page or export URL); a record that breaks
    /// the raw contract is quarantined instead.
    pub async fn push(&mut self, record: Value, origin: &str) -> Result<()> {
        self.reader.counters.read.fetch_add(1, Ordering::Relaxed);
        self.land(Record::Parsed(record), None, origin, false).await
    }

    /// [`RecordSink::push`] for a record read from a body that was not valid UTF-8 and was
    /// decoded by [`decode_lossy`]: a record holding U+FFFD is quarantined instead.
    pub async fn push_lossy(&mut self, record: Value, origin: &str) -> Result<()> {
        self.reader.counters.read.fetch_add(1, Ordering::Relaxed);
        self.land(Record::Parsed(record), None, origin, true).await
    }

    /// Counts one request made outside the page loop (polls, downloads).
    pub fn count_request(&self) {
        self.reader.counters.pages.fetch_add(1, Ordering::Relaxed);
        self.reader.counters.show();
    }

    /// Keeps a body that could not be read at all, with the reason.
    pub async fn quarantine_body(&self, origin: &str, error: &str, body: String) -> Result<()> {
        self.reader.quarantine(origin, error, None, None, Value::String(body)).await
    }

    pub fn source(&self) -> &'static str {
        self.reader.job.source
    }

    pub fn stream(&self) -> &'static str {
        self.reader.job.spec.name
    }

    async fn land(&mut self, record: Record<'_>, parent_id: Option<&str>, origin: &str, lossy: bool) -> Result<()> {
        let reader = self.reader;
        let (source, stream) = (reader.job.source, reader.job.spec.name);
        if lossy && let Some((value, field)) = replaced_bytes(&record) {
            let record_id = self.builder.record_id(&value);
            tracing::warn!(source, stream, record_id = record_id.as_deref().unwrap_or(""), field = %field, "Record quarantined.");
            let why = "bytes that are not UTF-8 (kept here as U+FFFD)";
            return reader.quarantine(origin, why, record_id, Some(field), value).await;
        }
        let pushed = match &record {
            Record::Raw(raw) => self.builder.push_raw(raw.get(), parent_id),
            Record::Parsed(v) => self.builder.push(v, parent_id),
        };
        let wants_value = self.observe.is_some() || !reader.job.children.is_empty();
        match pushed {
            Ok(()) if wants_value => {
                let parsed;
                let value = match &record {
                    Record::Parsed(v) => v,
                    Record::Raw(raw) => {
                        parsed = serde_json::from_str::<Value>(raw.get()).unwrap_or(Value::Null);
                        &parsed
                    }
                };
                if let Some(observe) = self.observe.as_mut() {
                    observe(value);
                }
                reader.collect(value);
            }
            Ok(()) => {}
            Err(bad) => {
                tracing::warn!(source, stream, record_id = bad.record_id.as_deref().unwrap_or(""), field = %bad.field, "Record quarantined.");
                let kept = match record {
                    Record::Parsed(v) => v,
                    Record::Raw(raw) => {
                        serde_json::from_str(raw.get()).unwrap_or_else(|_| Value::String(raw.get().to_string()))
                    }
                };
                reader.quarantine(origin, &bad.message, bad.record_id.clone(), Some(bad.field.clone()), kept).await?;
            }
        }
        if self.builder.len() >= reader.ctx.batch_rows
            && let Some(f) = reader.flush(&mut self.builder).await?
        {
            self.files.push(f);
        }
        Ok(())
    }

    async fn finish(mut self) -> std::result::Result<Vec<LandedFile>, WindowError> {
        match self.reader.flush(&mut self.builder).await {
            Ok(Some(f)) => self.files.push(f),
            Ok(None) => {}
            Err(e) => return Err(WindowError { files: self.files, error: e }),
        }
        Ok(self.files)
    }

    /// Lands what was read before `error`, so the good part is committed.
    async fn fail(mut self, error: Error) -> WindowError {
        match self.reader.flush(&mut self.builder).await {
            Ok(Some(f)) => self.files.push(f),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "Could not land the records read before a failure; they are re-read next run.")
            }
        }
        WindowError { files: self.files, error }
    }
}

/// A body that is not valid UTF-8, decoded with each invalid sequence as U+FFFD (`None` when
/// it is valid). The body's records still parse; the ones holding U+FFFD are quarantined
/// (DECISIONS D42), so one bad string does not cost its page's good records.
pub fn decode_lossy(bytes: &[u8]) -> Option<bytes::Bytes> {
    match String::from_utf8_lossy(bytes) {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(text) => Some(text.into()),
    }
}

/// The record parsed, and the JSON pointer of its first string (or key) holding U+FFFD.
fn replaced_bytes(record: &Record<'_>) -> Option<(Value, String)> {
    let value = match record {
        Record::Raw(raw) if !raw.get().contains('\u{FFFD}') => return None,
        Record::Raw(raw) => serde_json::from_str(raw.get()).ok()?,
        Record::Parsed(v) => v.clone(),
    };
    let field = replacement_at(&value, String::new())?;
    Some((value, field))
}

fn replacement_at(v: &Value, at: String) -> Option<String> {
    let key = |k: &str| format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
    match v {
        Value::String(s) if s.contains('\u{FFFD}') => Some(if at.is_empty() { "/".into() } else { at }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| replacement_at(x, format!("{at}/{i}"))),
        Value::Object(map) => {
            map.iter().find_map(|(k, x)| if k.contains('\u{FFFD}') { Some(key(k)) } else { replacement_at(x, key(k)) })
        }
        _ => None,
    }
}

/// Reads a whole window some other way than page by page: Shopify's bulk operations export a
/// window as one file. The source decides per window (backfills and wide windows).
pub trait WindowReader: Send + Sync {
    /// Whether this window goes through [`WindowReader::read`]; `None` ends are open.
    fn wants(&self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> bool;

    /// Lands every record of `[from, to)` into `sink`.
    fn read<'a>(
        &'a self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        sink: &'a mut RecordSink<'_, '_>,
    ) -> futures::future::BoxFuture<'a, Result<()>>;
}

pub(crate) fn http_error(source: &str, stream: &str, e: HttpError) -> Error {
    let message = if e.is_auth() {
        format!("check the credential for source {source}: {e}")
    } else if e.is_throttle() && e.retry_after().is_some_and(|d| d > crate::http::retry::MAX_RETRY_AFTER) {
        let hours = e.retry_after().unwrap_or_default().as_secs_f64() / 3600.0;
        format!(
            "the API's daily quota is spent (Retry-After {hours:.1} h); this stream resumes next run, the others go on: {e}"
        )
    } else if e.is_throttle() {
        format!("still throttled after every retry: {e}")
    } else {
        e.to_string()
    };
    if e.is_auth() {
        return Error::Config { message: format!("source {source}, stream {stream}: {message}"), cause: None };
    }
    // The message already shows `e`: the chain goes on from what is below it.
    let cause: Option<Box<dyn std::error::Error + Send + Sync>> = match e {
        HttpError::Transport { cause, .. } => Some(Box::new(cause)),
        _ => None,
    };
    Error::Source { source_name: source.into(), stream: stream.into(), message, cause }
}

fn to_value(state: &StreamState) -> Value {
    serde_json::to_value(state).expect("stream state serializes")
}

/// Ids go into URL paths: keep them to one path segment.
fn url_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
