//! The client: one per source per run, holding auth, default headers, timeouts and pacers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::gate::Gate;
use super::rate_limit::{Pacer, RateBucket};
use super::retry::{self, HttpError};
use crate::config::RetryConfig;
use crate::error::Disposition;

/// How a source authenticates. Values are marked sensitive so they never print.
#[derive(Clone)]
pub enum Auth {
    /// A fixed header, e.g. `Authorization: Klaviyo-API-Key pk_...` or `X-Shopify-Access-Token`.
    Header {
        name: HeaderName,
        value: String,
    },
    None,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Header { name, .. } => write!(f, "Auth::Header({name}: <redacted>)"),
            Auth::None => write!(f, "Auth::None"),
        }
    }
}

/// One fetched page.
#[derive(Debug)]
pub struct Page {
    pub url: String,
    /// The body as received; callers parse what they need of it (landing splits records
    /// without parsing them).
    pub bytes: bytes::Bytes,
    pub headers: HeaderMap,
}

impl Page {
    /// The whole body as a JSON document; a malformed body is an [`HttpError::Malformed`].
    pub fn json(&self) -> Result<Value, HttpError> {
        serde_json::from_slice(&self.bytes).map_err(|e| self.malformed(e.to_string()))
    }

    /// A malformed-page error carrying this page's URL and body.
    pub fn malformed(&self, message: String) -> HttpError {
        HttpError::Malformed { url: self.url.clone(), message, body: String::from_utf8_lossy(&self.bytes).into_owned() }
    }
}

/// Counters a run reports in its manifest and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub requests: u64,
    pub retries: u64,
    pub throttles: u64,
}

tokio::task_local! {
    /// The stream a request is made for: streams of a source share one engine and run
    /// concurrently within one task, so the name travels with the future ([`for_stream`]).
    static STREAM: &'static str;
}

/// Runs `fut` with its engine requests counted for `stream` ([`HttpEngine::stream_counters`]).
pub async fn for_stream<F: std::future::Future>(stream: &'static str, fut: F) -> F::Output {
    STREAM.scope(stream, fut).await
}

/// The shared engine for one source.
#[derive(Clone)]
pub struct HttpEngine {
    source: &'static str,
    client: reqwest::Client,
    pacers: Arc<Mutex<HashMap<&'static str, Pacer>>>,
    counters: Arc<Mutex<Counters>>,
    by_stream: Arc<Mutex<HashMap<&'static str, Counters>>>,
    /// Set by the first 401/403: every later request of this source fails at once instead of
    /// knocking on the door with a bad key hundreds of times.
    refused: Arc<Mutex<Option<(reqwest::StatusCode, String)>>>,
    /// Configured limits replacing a bucket's published ones, by bucket name.
    overrides: HashMap<String, (u32, u32)>,
    /// The source's own admission control (Shopify's cost points), if any.
    gate: Option<Arc<dyn Gate>>,
    /// Budgets and delays of retries (`[run.retry]`).
    retry: RetryConfig,
    /// `Content-Type` of JSON bodies: JSON:API for Klaviyo, plain JSON for GraphQL.
    content_type: &'static str,
}

/// Per-request timeout: a hung connection must not hold a nightly run.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl HttpEngine {
    /// Builds the engine with the source's auth and fixed headers (e.g. Klaviyo's `revision`).
    pub fn new(source: &'static str, auth: Auth, headers: &[(&'static str, String)]) -> Result<Self, String> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let mut value = HeaderValue::from_str(v).map_err(|_| format!("header {k} has an invalid value"))?;
            // Credentials travel in extra headers too (Postscript's shop token).
            value.set_sensitive(k.contains("token"));
            map.insert(HeaderName::from_static(k), value);
        }
        if let Auth::Header { name, value } = &auth {
            let mut v =
                HeaderValue::from_str(value).map_err(|_| format!("the {source} credential has invalid characters"))?;
            v.set_sensitive(true);
            map.insert(name.clone(), v);
        }
        let client = reqwest::Client::builder()
            .default_headers(map)
            .user_agent(concat!("lifecycle-etl/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .gzip(true)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            source,
            client,
            pacers: Arc::default(),
            counters: Arc::default(),
            by_stream: Arc::default(),
            refused: Arc::default(),
            overrides: HashMap::new(),
            gate: None,
            content_type: "application/vnd.api+json",
            retry: RetryConfig::default(),
        })
    }

    /// Replaces the default retry budgets and delays (`[run.retry]`).
    pub fn with_retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    pub fn retry_config(&self) -> &RetryConfig {
        &self.retry
    }

    /// Adds a source's admission control (see [`Gate`]).
    pub fn with_gate(mut self, gate: Arc<dyn Gate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Sets the `Content-Type` of JSON request bodies (default JSON:API's).
    pub fn with_content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = content_type;
        self
    }

    /// Replaces published limits by bucket name: `(burst per second, steady per minute)`.
    pub fn with_rate_overrides(mut self, overrides: HashMap<String, (u32, u32)>) -> Self {
        self.overrides = overrides;
        self
    }

    pub fn source(&self) -> &'static str {
        self.source
    }

    pub fn counters(&self) -> Counters {
        *self.counters.lock().expect("counter lock")
    }

    /// The counters of the requests made within [`for_stream`]`(stream, ..)`.
    pub fn stream_counters(&self, stream: &str) -> Counters {
        self.by_stream.lock().expect("counter lock").get(stream).copied().unwrap_or_default()
    }

    /// Adds to the source's counters and to the current stream's.
    fn count(&self, f: impl Fn(&mut Counters)) {
        f(&mut self.counters.lock().expect("counter lock"));
        if let Ok(stream) = STREAM.try_with(|s| *s) {
            f(self.by_stream.lock().expect("counter lock").entry(stream).or_default());
        }
    }

    fn pacer(&self, bucket: RateBucket) -> Pacer {
        let bucket = match self.overrides.get(bucket.name) {
            Some(&(burst_per_second, steady_per_minute)) => {
                RateBucket { burst_per_second, steady_per_minute, ..bucket }
            }
            None => bucket,
        };
        self.pacers.lock().expect("pacer lock").entry(bucket.name).or_insert_with(|| Pacer::new(bucket)).clone()
    }

    /// GETs a JSON document, paced within `bucket`, retrying what the classification allows.
    pub async fn get_json(&self, url: &str, bucket: RateBucket) -> Result<Value, HttpError> {
        self.fetch_json(url, None, bucket).await?.json()
    }

    /// GETs (`body` = None) or POSTs a JSON body, paced within `bucket`, with retries.
    pub async fn fetch_json(&self, url: &str, body: Option<&Value>, bucket: RateBucket) -> Result<Page, HttpError> {
        if let Some((status, excerpt)) = self.refused.lock().expect("refused lock").clone() {
            return Err(HttpError::Status { status, url: url.to_string(), excerpt, retry_after: None });
        }
        let pacer = self.pacer(bucket);
        let attempt = || async {
            pacer.wait().await;
            if let Some(gate) = &self.gate {
                gate.admit(body).await;
            }
            self.count(|c| c.requests += 1);
            let page = self.send_once(url, body).await?;
            if let Some(gate) = &self.gate {
                gate.inspect(body, &page)?;
            }
            Ok::<_, HttpError>(page)
        };
        // Errors and throttles draw on separate budgets: a vendor throttling hard is not down.
        let mut errors = retry::backoff(&self.retry).build();
        let mut throttles =
            retry::backoff(&RetryConfig { max_retries: self.retry.max_throttle_retries, ..self.retry }).build();
        loop {
            let e = match attempt().await {
                Ok(page) => return Ok(page),
                Err(e) => e,
            };
            if e.disposition() != Disposition::Retry {
                return Err(e);
            }
            let throttled = e.is_throttle();
            let backoff = if throttled { throttles.next() } else { errors.next() };
            // The server knows when capacity returns; the budget still counts the wait.
            let Some(wait) = backoff.map(|d| e.retry_after().unwrap_or(d)) else { return Err(e) };
            self.count(|c| {
                c.retries += 1;
                c.throttles += u64::from(throttled);
            });
            tracing::warn!(source = self.source, error = %e, wait_ms = wait.as_millis() as u64, "Retrying request.");
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_once(&self, url: &str, body: Option<&Value>) -> Result<Page, HttpError> {
        let transport = |cause| HttpError::Transport { url: url.to_string(), cause };
        let request = match body {
            None => self.client.get(url),
            Some(b) => {
                self.client.post(url).header(reqwest::header::CONTENT_TYPE, self.content_type).body(b.to_string())
            }
        };
        let resp = request.send().await.map_err(transport)?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let text = String::from_utf8_lossy(&resp.bytes().await.unwrap_or_default()).into_owned();
            *self.refused.lock().expect("refused lock") = Some((status, excerpt(&text)));
            return Err(HttpError::Status { status, url: url.to_string(), excerpt: excerpt(&text), retry_after: None });
        }
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(HttpError::Status {
                status,
                url: url.to_string(),
                excerpt: excerpt(&text),
                retry_after: retry::parse_retry_after(headers.get(reqwest::header::RETRY_AFTER)),
            });
        }
        Ok(Page { url: url.to_string(), bytes, headers })
    }
}

/// The start of an error body for messages: vendors' error bodies name the problem, and are
/// short; HTML error pages are cut.
fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 300 {
        format!("{}…", one_line.chars().take(300).collect::<String>())
    } else {
        one_line
    }
}
