//! Runtime fault injection shared by every fake.
//!
//! Tests need to script failures precisely ("the next three calls to /api/events are
//! throttled", "the second page is garbage") while the server runs, so faults are queued
//! rules on a shared handle rather than configuration: each rule fires a set number of times
//! on requests whose path starts with its prefix, then disappears.
//!
//! A storm ([`Faults::storm`]) is the other mode: every request under its prefix draws its
//! fault from seeded probabilities (throttles, server errors, resets, truncated bodies, latency
//! spikes), for tests of a whole run against an unreliable vendor. Queued rules still fire first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;

#[derive(Debug, Clone)]
enum Kind {
    /// 429 with `Retry-After` and the vendor's throttled body, before the handler runs.
    Throttle { retry_after_secs: u64 },
    /// A server error before the handler runs; `html` mimics a CDN error page.
    Fail { status: u16, html: bool },
    /// The handler's 2xx body cut in half mid-transfer (the connection dies).
    Truncate,
    /// The `nth` 2xx response from now is served with a well-framed but invalid JSON body.
    Malform { skip: u32 },
    /// The connection is closed before any byte of a response is written.
    Reset,
    /// A 2xx JSON:API page is served with no records but a `links.next` that leads to the
    /// same page again (so no record is lost, only an empty page inserted).
    EmptyPage,
    /// The last record of a JSON:API page that has a next link is repeated as the first
    /// record of the following page; `carried` holds it in between.
    Duplicate { carried: Option<Value> },
    /// One record of the next successful response that has it is rewritten as `corruption` says.
    Corrupt { target: RecordTarget, corruption: Corruption },
}

/// Which record of a response a [`Corruption`] hits.
#[derive(Debug, Clone)]
pub struct RecordTarget {
    /// JSON pointer to the record array (`/data` for JSON:API, `/data/orders/nodes` for a
    /// GraphQL connection); `None` for a JSONL body, one record a line.
    records_at: Option<String>,
    /// 0-based, counting only the records that have `having`.
    nth: usize,
    having: Option<String>,
}

impl RecordTarget {
    /// The `nth` record of the array at `records_at` in a JSON body.
    pub fn json(records_at: &str, nth: usize) -> Self {
        Self { records_at: Some(records_at.to_string()), nth, having: None }
    }

    /// The `nth` record line of a JSONL body (bulk results); lines with `__parentId` belong to
    /// the record line before them and are never counted.
    pub fn jsonl(nth: usize) -> Self {
        Self { records_at: None, nth, having: Some("/id".into()) }
    }

    /// Counts only records with a value at `pointer`.
    pub fn having(mut self, pointer: &str) -> Self {
        self.having = Some(pointer.to_string());
        self
    }
}

/// How a record is damaged: the bad input a vendor can send.
#[derive(Debug, Clone)]
pub enum Corruption {
    /// The value at a JSON pointer is replaced or added (a wrong type, an unknown field, a
    /// huge string, an out-of-range timestamp); missing parent objects are created.
    Set { pointer: String, value: Value },
    /// The value at a JSON pointer is removed (a required field missing).
    Remove { pointer: String },
    /// The string at a JSON pointer gets raw bytes that are not UTF-8, so the body is no
    /// longer valid JSON text while staying well framed.
    InvalidUtf8 { pointer: String },
    /// The record is served twice in a row (with its child lines, in JSONL).
    Repeat,
}

impl Corruption {
    pub fn set(pointer: &str, value: Value) -> Self {
        Corruption::Set { pointer: pointer.to_string(), value }
    }

    pub fn remove(pointer: &str) -> Self {
        Corruption::Remove { pointer: pointer.to_string() }
    }

    pub fn invalid_utf8(pointer: &str) -> Self {
        Corruption::InvalidUtf8 { pointer: pointer.to_string() }
    }
}

/// Placed where invalid bytes go, then swapped for them in the serialized body.
const UTF8_MARKER: &str = "__lce_fault_invalid_utf8__";
/// What replaces the marker: a lone continuation byte and a byte no UTF-8 text contains.
const INVALID_UTF8: &[u8] = b"bad \x80\xff bytes";

impl Kind {
    fn pre(&self) -> bool {
        matches!(self, Kind::Throttle { .. } | Kind::Fail { .. } | Kind::Reset)
    }
}

/// What a post-handler fault does to a successful response.
enum Post {
    Truncate,
    Malform,
    /// A replacement body, and the fault's name for the request log.
    Rewrite(Bytes, &'static str),
}

#[derive(Debug, Clone)]
struct Rule {
    prefix: String,
    kind: Kind,
    remaining: u32,
}

#[derive(Debug, Default)]
struct State_ {
    rules: Vec<Rule>,
    latency: Vec<(String, Duration)>,
    storm: Option<Storm>,
}

/// The probabilities of a storm, each drawn per request (a request gets at most one of
/// throttle, server error, reset and truncation; a latency spike may come on top).
#[derive(Debug, Clone, PartialEq)]
pub struct StormConfig {
    pub seed: u64,
    /// 429 with `Retry-After: retry_after_secs`.
    pub throttle: f64,
    pub retry_after_secs: u64,
    /// 500, 502, 503, 504 or 524 in turn (502 and 524 as CDN HTML pages).
    pub server_error: f64,
    /// The connection closed before a response.
    pub reset: f64,
    /// A successful response cut off mid-body.
    pub truncate: f64,
    /// Probability and factor of a latency spike: the request waits `base_latency × factor`.
    pub latency_spike: (f64, u32),
    /// Latency of every request of the storm, unless [`Faults::set_latency`] set one for it.
    pub base_latency: Duration,
}

impl Default for StormConfig {
    /// No fault at all: set the probabilities wanted.
    fn default() -> Self {
        Self {
            seed: 0,
            throttle: 0.0,
            retry_after_secs: 1,
            server_error: 0.0,
            reset: 0.0,
            truncate: 0.0,
            latency_spike: (0.0, 1),
            base_latency: Duration::ZERO,
        }
    }
}

/// What a storm served so far, per kind (a drawn truncation applies only to a successful
/// response, and queued rules take precedence over a draw).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StormCounts {
    /// Requests the storm drew for.
    pub requests: u64,
    pub throttles: u64,
    pub server_errors: u64,
    pub resets: u64,
    pub truncations: u64,
    pub latency_spikes: u64,
}

#[derive(Debug)]
struct Storm {
    prefix: String,
    cfg: StormConfig,
    rng: rand_chacha::ChaCha8Rng,
    counts: StormCounts,
}

/// A storm's decision for one request: an optional fault (as a rule kind, so storms and queued
/// rules are served by the same code) and its latency.
struct Draw {
    kind: Option<Kind>,
    latency: Option<Duration>,
}

impl Storm {
    fn draw(&mut self, base: Option<Duration>) -> Draw {
        use rand::Rng;
        const STATUSES: [u16; 5] = [500, 502, 503, 504, 524];
        let c = &self.cfg;
        let base = base.unwrap_or(c.base_latency);
        self.counts.requests += 1;
        let latency = if self.rng.random::<f64>() < c.latency_spike.0 {
            self.counts.latency_spikes += 1;
            Some(base * c.latency_spike.1)
        } else {
            Some(base).filter(|d| !d.is_zero())
        };
        let u = self.rng.random::<f64>();
        let kind = if u < c.throttle {
            Some(Kind::Throttle { retry_after_secs: c.retry_after_secs })
        } else if u < c.throttle + c.server_error {
            let status = STATUSES[self.rng.random_range(0..STATUSES.len())];
            Some(Kind::Fail { status, html: matches!(status, 502 | 524) })
        } else if u < c.throttle + c.server_error + c.reset {
            Some(Kind::Reset)
        } else if u < c.throttle + c.server_error + c.reset + c.truncate {
            Some(Kind::Truncate)
        } else {
            None
        };
        Draw { kind, latency }
    }

    /// Counts a drawn fault when it is served.
    fn served(&mut self, kind: &Kind) {
        let c = &mut self.counts;
        match kind {
            Kind::Throttle { .. } => c.throttles += 1,
            Kind::Fail { .. } => c.server_errors += 1,
            Kind::Reset => c.resets += 1,
            Kind::Truncate => c.truncations += 1,
            _ => {}
        }
    }
}

/// The fault controls of one fake server; clones share state.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<State_>>,
}

/// Fault controls limited to requests whose path starts with a prefix.
#[derive(Debug, Clone)]
pub struct FaultScope<'a> {
    faults: &'a Faults,
    prefix: String,
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    /// Targets the following faults at paths starting with `path_prefix` (e.g. `/api/events`).
    pub fn on(&self, path_prefix: &str) -> FaultScope<'_> {
        FaultScope { faults: self, prefix: path_prefix.to_string() }
    }

    /// The next `n` requests answer 429 with `Retry-After: retry_after_secs`.
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        self.on("").throttle_next(n, retry_after_secs);
    }

    /// The next `n` requests answer `status` (500/502/503/504/524). 502 and 524 come with an
    /// HTML page as a CDN would send; the others with a JSON:API error body.
    pub fn fail_next(&self, n: u32, status: u16) {
        self.on("").fail_next(n, status);
    }

    /// The next `n` requests answer `status` with an HTML body whatever the status.
    pub fn fail_next_html(&self, n: u32, status: u16) {
        self.on("").fail_next_html(n, status);
    }

    /// The next `n` successful responses die halfway through the body.
    pub fn truncate_next(&self, n: u32) {
        self.on("").truncate_next(n);
    }

    /// The `nth` successful response from now (1 = the next one) carries invalid JSON.
    pub fn malform_nth(&self, nth: u32) {
        self.on("").malform_nth(nth);
    }

    /// Adds `latency` to every request (`None` removes it).
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.on("").set_latency(latency);
    }

    /// The next `n` requests get no response at all: the connection is closed before a byte
    /// is written (the handler does not run, so nothing is charged to a rate limit).
    pub fn reset_next(&self, n: u32) {
        self.on("").reset_next(n);
    }

    /// The next `n` successful JSON:API pages are served empty (`data: []`) with a
    /// `links.next` that re-requests the same page (its URL plus `_fault_retry=1`).
    pub fn empty_page_next(&self, n: u32) {
        self.on("").empty_page_next(n);
    }

    /// `n` times: the last record of the next successful JSON:API page that has a next link
    /// is repeated as the first record of the next successful page after it.
    pub fn duplicate_across_pages(&self, n: u32) {
        self.on("").duplicate_across_pages(n);
    }

    /// Every request from now on draws its fault from `cfg` (replacing any storm before);
    /// [`Faults::clear`] ends it.
    pub fn storm(&self, cfg: StormConfig) {
        self.on("").storm(cfg);
    }

    /// What the current storm served so far (zeros without one).
    pub fn storm_counts(&self) -> StormCounts {
        self.lock().storm.as_ref().map(|s| s.counts).unwrap_or_default()
    }

    /// One record of the next successful response that has `target` is damaged as `corruption`
    /// says (several corruptions due on the same response all apply).
    pub fn corrupt_record(&self, target: RecordTarget, corruption: Corruption) {
        self.on("").corrupt_record(target, corruption);
    }

    /// Drops every queued rule, latency and the storm.
    pub fn clear(&self) {
        let mut s = self.lock();
        s.rules.clear();
        s.latency.clear();
        s.storm = None;
    }

    /// Queued rules that have not fired yet (a test can assert all its faults were hit).
    pub fn pending(&self) -> usize {
        self.lock().rules.iter().filter(|r| r.remaining > 0).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.inner.lock().expect("faults lock poisoned")
    }

    fn push(&self, prefix: &str, kind: Kind, n: u32) {
        if n > 0 {
            self.lock().rules.push(Rule { prefix: prefix.to_string(), kind, remaining: n });
        }
    }

    /// The request's latency, and what a storm drew for it.
    fn draw(&self, path: &str) -> Draw {
        let mut s = self.lock();
        let latency = s.latency.iter().find(|(p, _)| path.starts_with(p.as_str())).map(|(_, d)| *d);
        match s.storm.as_mut().filter(|st| path.starts_with(st.prefix.as_str())) {
            Some(storm) => storm.draw(latency),
            None => Draw { kind: None, latency },
        }
    }

    /// Consumes the first matching rule that acts before the handler; else the storm's draw
    /// when it acts before the handler.
    fn take_pre(&self, path: &str, drawn: &mut Option<Kind>) -> Option<Kind> {
        let mut s = self.lock();
        let Some(rule) =
            s.rules.iter_mut().find(|r| r.remaining > 0 && path.starts_with(r.prefix.as_str()) && r.kind.pre())
        else {
            let kind = drawn.take_if(|k| k.pre())?;
            if let Some(storm) = s.storm.as_mut() {
                storm.served(&kind);
            }
            return Some(kind);
        };
        rule.remaining -= 1;
        let kind = rule.kind.clone();
        s.rules.retain(|r| r.remaining > 0);
        Some(kind)
    }

    /// Whether any rule may act on a successful response to `path` (its body is only read then).
    fn wants_post(&self, path: &str, drawn: &Option<Kind>) -> bool {
        drawn.is_some()
            || self.lock().rules.iter().any(|r| r.remaining > 0 && path.starts_with(r.prefix.as_str()) && !r.kind.pre())
    }

    /// Decides what happens to a successful response: every matching malform rule counts it,
    /// a duplicate rule may capture its last record, and the first rule due fires; the storm's
    /// draw (a truncation) applies when no rule fired.
    fn take_post(&self, path: &str, body: &Bytes, url: &str, drawn: Option<Kind>) -> Option<Post> {
        let mut s = self.lock();
        let mut fired = None;
        let mut storm = drawn.map(|kind| Rule { prefix: String::new(), kind, remaining: 1 });
        let queued = s.rules.iter_mut().filter(|r| r.remaining > 0 && path.starts_with(r.prefix.as_str()));
        for r in queued.chain(storm.iter_mut()) {
            match &mut r.kind {
                Kind::Malform { skip } if *skip > 0 => *skip -= 1,
                Kind::Malform { .. } if fired.is_none() => {
                    r.remaining = 0;
                    fired = Some(Post::Malform);
                }
                Kind::Truncate if fired.is_none() => {
                    r.remaining -= 1;
                    fired = Some(Post::Truncate);
                }
                Kind::EmptyPage if fired.is_none() => {
                    if let Some(b) = empty_page(body, url) {
                        r.remaining -= 1;
                        fired = Some(Post::Rewrite(b, "empty_page"));
                    }
                }
                Kind::Corrupt { target, corruption } => {
                    let current = match &fired {
                        Some(Post::Rewrite(b, _)) => b.clone(),
                        None => body.clone(),
                        Some(_) => continue,
                    };
                    if let Some(b) = corrupt(&current, target, corruption) {
                        r.remaining -= 1;
                        fired = Some(Post::Rewrite(b, "corrupt"));
                    }
                }
                Kind::Duplicate { carried } if fired.is_none() => match carried.take() {
                    None => *carried = last_record_of_page(body),
                    Some(record) => match prepend_record(body, &record) {
                        Some(b) => {
                            r.remaining -= 1;
                            fired = Some(Post::Rewrite(b, "duplicate"));
                        }
                        None => *carried = Some(record),
                    },
                },
                _ => {}
            }
        }
        s.rules.retain(|r| r.remaining > 0);
        if let (Some(rule), Some(st)) = (storm.filter(|r| r.remaining == 0), s.storm.as_mut()) {
            st.served(&rule.kind);
        }
        match fired {
            Some(Post::Rewrite(b, "corrupt")) => Some(Post::Rewrite(with_invalid_utf8(b), "corrupt")),
            other => other,
        }
    }
}

/// A JSON:API document with a `data` array, if the body is one.
fn jsonapi_page(body: &Bytes) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(doc) if doc.get("data").is_some_and(Value::is_array) => Some(doc),
        _ => None,
    }
}

fn empty_page(body: &Bytes, url: &str) -> Option<Bytes> {
    let mut doc = jsonapi_page(body)?;
    doc.insert("data".into(), Value::Array(Vec::new()));
    if doc.contains_key("included") {
        doc.insert("included".into(), Value::Array(Vec::new()));
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    let next = Value::String(format!("{url}{sep}_fault_retry=1"));
    match doc.get_mut("links").and_then(Value::as_object_mut) {
        Some(links) => {
            links.insert("next".into(), next);
        }
        None => {
            doc.insert("links".into(), serde_json::json!({"next": next}));
        }
    }
    serde_json::to_vec(&doc).ok().map(Bytes::from)
}

fn last_record_of_page(body: &Bytes) -> Option<Value> {
    let doc = jsonapi_page(body)?;
    if !doc.get("links").and_then(|l| l.get("next")).is_some_and(Value::is_string) {
        return None;
    }
    doc.get("data")?.as_array()?.last().cloned()
}

fn prepend_record(body: &Bytes, record: &Value) -> Option<Bytes> {
    let mut doc = jsonapi_page(body)?;
    doc.get_mut("data")?.as_array_mut()?.insert(0, record.clone());
    serde_json::to_vec(&doc).ok().map(Bytes::from)
}

fn corrupt(body: &Bytes, target: &RecordTarget, corruption: &Corruption) -> Option<Bytes> {
    let has = |v: &Value| target.having.as_deref().is_none_or(|p| v.pointer(p).is_some());
    let out = match &target.records_at {
        Some(at) => {
            let mut doc: Value = serde_json::from_slice(body).ok()?;
            let records = doc.pointer_mut(at)?.as_array_mut()?;
            let i = records.iter().enumerate().filter(|(_, r)| has(r)).nth(target.nth)?.0;
            match corruption {
                Corruption::Repeat => {
                    let copy = records[i].clone();
                    records.insert(i + 1, copy);
                }
                _ => damage(&mut records[i], corruption)?,
            }
            serde_json::to_vec(&doc).ok()?
        }
        None => {
            let text = std::str::from_utf8(body).ok()?;
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            let parsed: Vec<Option<Value>> = lines.iter().map(|l| serde_json::from_str(l).ok()).collect();
            let is_child = |v: &Option<Value>| v.as_ref().is_some_and(|v| v.get("__parentId").is_some());
            let i = (0..lines.len())
                .filter(|&i| !is_child(&parsed[i]) && parsed[i].as_ref().is_some_and(has))
                .nth(target.nth)?;
            match corruption {
                Corruption::Repeat => {
                    let end = (i + 1..lines.len()).find(|&j| !is_child(&parsed[j])).unwrap_or(lines.len());
                    let group: Vec<String> = lines[i..end].to_vec();
                    lines.splice(end..end, group);
                }
                _ => {
                    let mut record = parsed[i].clone()?;
                    damage(&mut record, corruption)?;
                    lines[i] = serde_json::to_string(&record).ok()?;
                }
            }
            let mut joined = lines.join("\n");
            joined.push('\n');
            joined.into_bytes()
        }
    };
    Some(Bytes::from(out))
}

/// Swaps each [`UTF8_MARKER`] for the invalid bytes: done once every corruption of a body
/// applied, since the others read the body as JSON text.
fn with_invalid_utf8(body: Bytes) -> Bytes {
    let marker = UTF8_MARKER.as_bytes();
    let mut out = Vec::with_capacity(body.len());
    let mut rest = &body[..];
    while let Some(at) = rest.windows(marker.len()).position(|w| w == marker) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(INVALID_UTF8);
        rest = &rest[at + marker.len()..];
    }
    out.extend_from_slice(rest);
    Bytes::from(out)
}

/// Applies a value-level corruption to one record; `None` when its pointer does not fit it.
fn damage(record: &mut Value, corruption: &Corruption) -> Option<()> {
    match corruption {
        Corruption::Set { pointer, value } => *pointer_or_insert(record, pointer)? = value.clone(),
        Corruption::Remove { pointer } => {
            let (parent, key) = pointer.rsplit_once('/')?;
            record.pointer_mut(parent)?.as_object_mut()?.remove(key)?;
        }
        Corruption::InvalidUtf8 { pointer } => {
            *pointer_or_insert(record, pointer)? = Value::String(UTF8_MARKER.to_string());
        }
        Corruption::Repeat => return None,
    }
    Some(())
}

/// The value at a JSON pointer into objects, creating missing keys on the way.
fn pointer_or_insert<'v>(mut v: &'v mut Value, pointer: &str) -> Option<&'v mut Value> {
    for key in pointer.strip_prefix('/')?.split('/') {
        if v.is_null() {
            *v = Value::Object(serde_json::Map::new());
        }
        v = v.as_object_mut()?.entry(key.replace("~1", "/").replace("~0", "~")).or_insert(Value::Null);
    }
    Some(v)
}

impl FaultScope<'_> {
    pub fn throttle_next(&self, n: u32, retry_after_secs: u64) {
        self.faults.push(&self.prefix, Kind::Throttle { retry_after_secs }, n);
    }

    pub fn fail_next(&self, n: u32, status: u16) {
        self.faults.push(&self.prefix, Kind::Fail { status, html: matches!(status, 502 | 524) }, n);
    }

    pub fn fail_next_html(&self, n: u32, status: u16) {
        self.faults.push(&self.prefix, Kind::Fail { status, html: true }, n);
    }

    pub fn truncate_next(&self, n: u32) {
        self.faults.push(&self.prefix, Kind::Truncate, n);
    }

    pub fn malform_nth(&self, nth: u32) {
        self.faults.push(&self.prefix, Kind::Malform { skip: nth.saturating_sub(1) }, 1);
    }

    pub fn reset_next(&self, n: u32) {
        self.faults.push(&self.prefix, Kind::Reset, n);
    }

    pub fn empty_page_next(&self, n: u32) {
        self.faults.push(&self.prefix, Kind::EmptyPage, n);
    }

    pub fn duplicate_across_pages(&self, n: u32) {
        self.faults.push(&self.prefix, Kind::Duplicate { carried: None }, n);
    }

    /// A storm on this prefix only (see [`Faults::storm`]).
    pub fn storm(&self, cfg: StormConfig) {
        use rand::SeedableRng;
        let rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
        self.faults.lock().storm =
            Some(Storm { prefix: self.prefix.clone(), cfg, rng, counts: StormCounts::default() });
    }

    pub fn corrupt_record(&self, target: RecordTarget, corruption: Corruption) {
        self.faults.push(&self.prefix, Kind::Corrupt { target, corruption }, 1);
    }

    pub fn set_latency(&self, latency: Option<Duration>) {
        let mut s = self.faults.lock();
        s.latency.retain(|(p, _)| *p != self.prefix);
        if let Some(d) = latency {
            s.latency.push((self.prefix.clone(), d));
        }
    }
}

/// Marks a response whose status or body a fault produced, for the request log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Injected(pub &'static str);

/// Renders a vendor's own error document for a status (and `Retry-After` seconds for 429),
/// so injected errors look like the ones the fake produces by itself.
pub(crate) type VendorError = fn(StatusCode, Option<u64>) -> Response;

/// State of the fault middleware: the shared controls plus the vendor's error style.
#[derive(Clone)]
pub(crate) struct FaultLayer {
    pub faults: Faults,
    pub vendor_error: VendorError,
}

/// The axum middleware applying [`Faults`]; it sits outside each fake's own routes.
pub(crate) async fn layer(State(fl): State<FaultLayer>, req: Request, next: Next) -> Response {
    let faults = &fl.faults;
    let path = req.uri().path().to_string();
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    let url = format!("http://{host}{}", req.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or(&path));
    let Draw { kind: mut drawn, latency } = faults.draw(&path);
    if let Some(d) = latency {
        tokio::time::sleep(d).await;
    }
    let early = match faults.take_pre(&path, &mut drawn) {
        Some(Kind::Throttle { retry_after_secs }) => {
            Some((fl.vendor_error)(StatusCode::TOO_MANY_REQUESTS, Some(retry_after_secs)))
        }
        Some(Kind::Fail { status, html: true }) => Some(html_error(status)),
        Some(Kind::Fail { status, html: false }) => {
            Some((fl.vendor_error)(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), None))
        }
        Some(Kind::Reset) => {
            // A body failing before its first byte makes the server drop the connection with
            // the head still unsent: the client sees the connection closed, no response.
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                vec![Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fault: connection reset"))];
            let mut resp = Response::new(Body::from_stream(futures::stream::iter(chunks)));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp.extensions_mut().insert(Injected("reset"));
            return resp;
        }
        _ => None,
    };
    if let Some(mut resp) = early {
        resp.extensions_mut().insert(Injected("status"));
        return resp;
    }
    let resp = next.run(req).await;
    if !resp.status().is_success() || !faults.wants_post(&path, &drawn) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Some(post) = faults.take_post(&path, &bytes, &url, drawn) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    match post {
        Post::Truncate => {
            // Announce the full length, send half, then fail the stream: the client sees a
            // connection closed mid-body, not a short but complete message. The pause lets
            // the head and the first half reach the socket before the failure.
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let chunks = futures::stream::iter([Ok(half)]).chain(futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err(std::io::Error::other("fault: truncated body"))
            }));
            parts.extensions.insert(Injected("truncate"));
            Response::from_parts(parts, Body::from_stream(chunks))
        }
        Post::Malform => {
            parts.extensions.insert(Injected("malform"));
            Response::from_parts(parts, Body::from(half))
        }
        Post::Rewrite(body, name) => {
            parts.extensions.insert(Injected(name));
            Response::from_parts(parts, Body::from(body))
        }
    }
}

/// A CDN-style HTML error page: real APIs behind Cloudflare answer 502/524 this way, and
/// clients that assume every error body is JSON break on it.
fn html_error(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = code.canonical_reason().unwrap_or("A timeout occurred");
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\
         <body><h1>Error {status}</h1><p>{reason}</p><hr><p>cloudflare</p></body></html>\n"
    );
    (code, [(header::CONTENT_TYPE, "text/html; charset=UTF-8"), (header::SERVER, "cloudflare")], page).into_response()
}
