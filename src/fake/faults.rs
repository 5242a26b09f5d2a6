//! Runtime fault injection shared by every fake.
//!
//! Tests need to script failures precisely ("the next three calls to /api/events are
//! throttled", "the second page is garbage") while the server runs, so faults are queued
//! rules on a shared handle rather than configuration: each rule fires a set number of times
//! on requests whose path starts with its prefix, then disappears.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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

    /// Drops every queued rule and latency.
    pub fn clear(&self) {
        let mut s = self.lock();
        s.rules.clear();
        s.latency.clear();
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

    fn latency_for(&self, path: &str) -> Option<Duration> {
        self.lock().latency.iter().find(|(p, _)| path.starts_with(p.as_str())).map(|(_, d)| *d)
    }

    /// Consumes the first matching rule that acts before the handler.
    fn take_pre(&self, path: &str) -> Option<Kind> {
        let mut s = self.lock();
        let rule = s.rules.iter_mut().find(|r| {
            r.remaining > 0
                && path.starts_with(r.prefix.as_str())
                && matches!(r.kind, Kind::Throttle { .. } | Kind::Fail { .. })
        })?;
        rule.remaining -= 1;
        let kind = rule.kind.clone();
        s.rules.retain(|r| r.remaining > 0);
        Some(kind)
    }

    /// Decides what happens to a successful response: every matching malform rule counts it,
    /// and the first rule due (malform at zero, or truncate) fires.
    fn take_post(&self, path: &str) -> Option<Kind> {
        let mut s = self.lock();
        let mut fired = None;
        for r in s.rules.iter_mut().filter(|r| r.remaining > 0 && path.starts_with(r.prefix.as_str())) {
            match &mut r.kind {
                Kind::Malform { skip } if *skip > 0 => *skip -= 1,
                Kind::Malform { .. } if fired.is_none() => {
                    r.remaining = 0;
                    fired = Some(Kind::Malform { skip: 0 });
                }
                Kind::Truncate if fired.is_none() => {
                    r.remaining -= 1;
                    fired = Some(Kind::Truncate);
                }
                _ => {}
            }
        }
        s.rules.retain(|r| r.remaining > 0);
        fired
    }
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
    if let Some(d) = faults.latency_for(&path) {
        tokio::time::sleep(d).await;
    }
    let early = match faults.take_pre(&path) {
        Some(Kind::Throttle { retry_after_secs }) => {
            Some((fl.vendor_error)(StatusCode::TOO_MANY_REQUESTS, Some(retry_after_secs)))
        }
        Some(Kind::Fail { status, html: true }) => Some(html_error(status)),
        Some(Kind::Fail { status, html: false }) => {
            Some((fl.vendor_error)(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), None))
        }
        _ => None,
    };
    if let Some(mut resp) = early {
        resp.extensions_mut().insert(Injected("status"));
        return resp;
    }
    let resp = next.run(req).await;
    if !resp.status().is_success() {
        return resp;
    }
    let Some(kind) = faults.take_post(&path) else {
        return resp;
    };
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    match kind {
        Kind::Truncate => {
            // Announce the full length, then fail the stream: the client sees a connection
            // closed mid-body, not a short but complete message.
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                vec![Ok(half), Err(std::io::Error::other("fault: truncated body"))];
            parts.extensions.insert(Injected("truncate"));
            Response::from_parts(parts, Body::from_stream(futures::stream::iter(chunks)))
        }
        _ => {
            parts.extensions.insert(Injected("malform"));
            Response::from_parts(parts, Body::from(half))
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
