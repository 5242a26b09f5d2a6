//! A fault-injecting proxy in front of an S3-compatible server (moto in tests).
//!
//! Object writes (PutObject, UploadPart, CompleteMultipartUpload) meet faults on a seeded
//! schedule, every other request is forwarded untouched:
//! - `SlowDown` (503) or `InternalError` (500) with S3's XML error body, nothing forwarded;
//! - a stall: the request is held for [`S3FaultPlan::stall`], never forwarded, then the
//!   connection is closed without an answer (a client with a shorter timeout has given up);
//! - a lost answer: the request is forwarded and applied, but the client gets an
//!   `InternalError` (500) instead of the server's success, so its retry meets the result.
//!   CompleteMultipartUpload is left out: a retried completion of an upload that completed
//!   answers `NoSuchUpload` on moto (AWS answers success for a while), so the write fails and
//!   the run with it (cleanly: nothing names the object until a later commit or pointer).
//!
//! One request meets at most [`S3FaultPlan::max_in_a_row`] faults in a row (keyed by method,
//! path and part), so a client retrying enough times always gets through. Requests draw from
//! one seeded generator in arrival order: with concurrent writers the schedule is reproducible
//! up to their interleaving.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What the proxy does to object writes.
#[derive(Debug, Clone)]
pub struct S3FaultPlan {
    pub seed: u64,
    /// Share of object writes answered 503/500 without being forwarded.
    pub error_rate: f64,
    /// Share of object writes held for `stall`, then dropped without an answer.
    pub stall_rate: f64,
    pub stall: Duration,
    /// Share of PutObject and UploadPart requests applied whose answer is replaced by a 500.
    pub lost_answer_rate: f64,
    pub max_in_a_row: u32,
}

impl std::default::Default for S3FaultPlan {
    /// No faults; a fault at most twice in a row once rates are set.
    fn default() -> Self {
        Self {
            seed: 0,
            error_rate: 0.0,
            stall_rate: 0.0,
            stall: Duration::from_secs(3),
            lost_answer_rate: 0.0,
            max_in_a_row: 2,
        }
    }
}

/// The kinds of request the proxy tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum S3Request {
    PutObject,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    Other,
}

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum S3Outcome {
    Forwarded,
    SlowDown,
    InternalError,
    Stalled,
    LostAnswer,
}

/// Counts of (request kind, outcome).
pub type S3FaultStats = BTreeMap<(S3Request, S3Outcome), u64>;

struct Shared {
    upstream: String,
    client: reqwest::Client,
    plan: S3FaultPlan,
    rng: Mutex<ChaCha8Rng>,
    /// Consecutive faults per request key.
    streak: Mutex<BTreeMap<String, u32>>,
    stats: Mutex<S3FaultStats>,
}

/// The running proxy; stops when dropped.
pub struct S3FaultProxy {
    base_url: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl S3FaultProxy {
    /// Listens on 127.0.0.1 and forwards to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str, plan: S3FaultPlan) -> std::io::Result<Self> {
        let (listener, base_url) = super::server::bind().await?;
        // Bodies pass through byte for byte: their lengths (HEAD's too) stay the server's.
        let client = reqwest::Client::builder().no_proxy().no_gzip().build().map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(plan.seed)),
            plan,
            streak: Mutex::default(),
            stats: Mutex::default(),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let (tx, task) = super::server::serve(listener, app);
        Ok(Self { base_url, shared, shutdown: Some(tx), task })
    }

    /// `http://127.0.0.1:PORT`: the endpoint a job's `[storage]` points at.
    pub fn endpoint(&self) -> String {
        self.base_url.clone()
    }

    pub fn stats(&self) -> S3FaultStats {
        self.shared.stats.lock().expect("stats lock").clone()
    }
}

impl Drop for S3FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

fn classify(method: &Method, query: &str, headers: &HeaderMap) -> S3Request {
    let has = |key: &str| query.split('&').any(|kv| kv.split('=').next() == Some(key));
    match *method {
        Method::PUT if has("partNumber") && has("uploadId") => S3Request::UploadPart,
        Method::PUT if !headers.contains_key("x-amz-copy-source") && query.is_empty() => S3Request::PutObject,
        Method::POST if has("uploads") => S3Request::CreateMultipartUpload,
        Method::POST if has("uploadId") => S3Request::CompleteMultipartUpload,
        _ => S3Request::Other,
    }
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>fault-proxy</RequestId></Error>"
    );
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    resp
}

impl Shared {
    fn count(&self, kind: S3Request, outcome: S3Outcome) {
        *self.stats.lock().expect("stats lock").entry((kind, outcome)).or_default() += 1;
    }

    /// The fault this request meets, if any.
    fn draw(&self, kind: S3Request, key: &str) -> Option<S3Outcome> {
        if !matches!(kind, S3Request::PutObject | S3Request::UploadPart | S3Request::CompleteMultipartUpload) {
            return None;
        }
        let p = &self.plan;
        let roll: f64 = self.rng.lock().expect("rng lock").random_range(0.0..1.0);
        let lost_rate = if kind == S3Request::CompleteMultipartUpload { 0.0 } else { p.lost_answer_rate };
        let fault = if roll < p.error_rate / 2.0 {
            Some(S3Outcome::SlowDown)
        } else if roll < p.error_rate {
            Some(S3Outcome::InternalError)
        } else if roll < p.error_rate + p.stall_rate {
            Some(S3Outcome::Stalled)
        } else if roll < p.error_rate + p.stall_rate + lost_rate {
            Some(S3Outcome::LostAnswer)
        } else {
            None
        };
        let mut streak = self.streak.lock().expect("streak lock");
        let n = streak.entry(key.to_string()).or_default();
        match fault {
            Some(f) if *n < p.max_in_a_row => {
                *n += 1;
                Some(f)
            }
            _ => {
                streak.remove(key);
                None
            }
        }
    }

    async fn forward(&self, method: Method, path_query: &str, headers: HeaderMap, body: Bytes) -> Response {
        let mut req = self.client.request(method, format!("{}{path_query}", self.upstream)).body(body);
        for (name, value) in &headers {
            if ![header::HOST, header::CONTENT_LENGTH, header::CONNECTION, header::TRANSFER_ENCODING].contains(name) {
                req = req.header(name, value);
            }
        }
        let upstream = match req.send().await {
            Ok(r) => r,
            Err(e) => return s3_error(StatusCode::BAD_GATEWAY, "BadGateway", &e.to_string()),
        };
        let status = upstream.status();
        let headers = upstream.headers().clone();
        let body = upstream.bytes().await.unwrap_or_default();
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = status;
        for (name, value) in &headers {
            if ![header::CONNECTION, header::TRANSFER_ENCODING].contains(name) {
                resp.headers_mut().append(name, value.clone());
            }
        }
        resp
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path_query = parts.uri.path_and_query().map(|pq| pq.as_str().to_string()).unwrap_or_default();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let kind = classify(&parts.method, &query, &parts.headers);
    let part = query.split('&').find(|kv| kv.starts_with("partNumber=")).unwrap_or_default();
    let key = format!("{} {} {part}", parts.method, parts.uri.path());
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return s3_error(StatusCode::BAD_REQUEST, "IncompleteBody", "the request body was cut");
    };
    let fault = shared.draw(kind, &key);
    shared.count(kind, fault.unwrap_or(S3Outcome::Forwarded));
    match fault {
        None => shared.forward(parts.method, &path_query, parts.headers, body).await,
        Some(S3Outcome::SlowDown) => {
            s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "Please reduce your request rate.")
        }
        Some(S3Outcome::Stalled) => {
            tokio::time::sleep(shared.plan.stall).await;
            // A body failing before its first byte makes the server drop the connection with
            // the head unsent: the client sees no answer at all.
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                vec![Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "fault: stalled"))];
            Response::new(Body::from_stream(futures::stream::iter(chunks)))
        }
        Some(S3Outcome::LostAnswer) => {
            let applied = shared.forward(parts.method, &path_query, parts.headers, body).await;
            if applied.status().is_success() {
                s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "We encountered an internal error.")
            } else {
                applied
            }
        }
        Some(_) => s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "We encountered an internal error."),
    }
}
