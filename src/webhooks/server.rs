//! `serve-webhooks`: the receiver. Verify, bound, store, then answer.
//!
//! Order of checks per delivery: the signature header must be present (401 before reading
//! anything), the body is read up to `max_body_bytes` (413 as soon as it goes over, whatever
//! `Content-Length` claims), then the signature or token is checked (401) and the body must be
//! a JSON object (400). Only then is it written, and 200 is answered only once the write
//! returned: a 503 (storage failed or was too slow) makes the platform retry. No rejected
//! delivery writes anything. Log lines name the platform, the status and the object key;
//! never the body, a header value or a secret.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Platform;
use super::metrics::{Metrics, Reason};
use super::objects;
use super::verify::{self, Secret};
use crate::config::{Job, Secrets, WebhooksConfig};
use crate::error::{Error, Result};
use crate::storage::Storage;

/// A write slower than this is answered 503 (the platform retries); well under any platform's
/// delivery timeout, and under the compaction's settle time, so an object whose write outlived
/// its request is always compacted by a later run or superseded by the retry.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// What every request handler shares.
#[derive(Debug)]
struct App {
    storage: Storage,
    local_root: Option<PathBuf>,
    secrets: [Option<Secret>; 2],
    max_body_bytes: usize,
    metrics: Metrics,
}

/// A receiver running on a bound address.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// `http://<addr>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight deliveries finish, and waits.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.shutdown.send(());
        self.task
            .await
            .map_err(|e| Error::Internal(format!("receiver task: {e}")))?
            .map_err(|e| Error::io("receiver stopped with an error", e))
    }
}

/// Reads the secrets the job names for each configured platform.
fn platform_secrets(cfg: &WebhooksConfig, secrets: &Secrets) -> Result<[Option<Secret>; 2]> {
    let mut out = [None, None];
    if let Some(a) = &cfg.attentive {
        out[Platform::Attentive.index()] =
            Some(Secret::new(secrets.get("webhooks.attentive.signing_key_env", &a.signing_key_env)?));
    }
    if let Some(p) = &cfg.postscript {
        out[Platform::Postscript.index()] =
            Some(Secret::new(secrets.get("webhooks.postscript.token_env", &p.token_env)?));
    }
    if out.iter().all(Option::is_none) {
        return Err(Error::config("[webhooks]: configure [webhooks.attentive] or [webhooks.postscript] (or both)"));
    }
    Ok(out)
}

/// Binds the job's `webhooks.listen` address (or `listen` when given) and serves until
/// [`Running::shutdown`].
pub async fn start(job: &Job, secrets: &Secrets, listen: Option<SocketAddr>) -> Result<Running> {
    let cfg = job
        .file
        .webhooks
        .as_ref()
        .ok_or_else(|| Error::config(format!("job file {}: no [webhooks] section", job.path.display())))?;
    let storage = Storage::open(&job.file.storage, secrets)?;
    let app = Arc::new(App {
        local_root: objects::local_root(&storage),
        storage,
        secrets: platform_secrets(cfg, secrets)?,
        max_body_bytes: cfg.max_body_bytes,
        metrics: Metrics::default(),
    });
    let addr = match listen {
        Some(a) => a,
        None => cfg
            .listen
            .parse()
            .map_err(|_| Error::config(format!("webhooks.listen: {:?} is not host:port", cfg.listen)))?,
    };
    let listener = TcpListener::bind(addr).await.map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
    let addr = listener.local_addr().map_err(|e| Error::io("cannot read the bound address", e))?;
    let (tx, rx) = oneshot::channel::<()>();
    let router = router(app);
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
    });
    Ok(Running { addr, shutdown: tx, task })
}

/// `lifecycle-etl serve-webhooks`: runs until SIGTERM or Ctrl-C, then drains in-flight requests.
pub async fn serve(job: &Job, secrets: &Secrets) -> Result<()> {
    let running = start(job, secrets, None).await?;
    // On stdout as well, so a parent process (tests, a supervisor) learns a port chosen by the OS.
    println!("listening on {}", running.base_url());
    tracing::info!(addr = %running.addr, "Webhook receiver listening.");
    terminated().await;
    tracing::info!("Shutting down: finishing in-flight deliveries.");
    running.shutdown().await
}

async fn terminated() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn router(app: Arc<App>) -> Router {
    let mut r = Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics));
    for p in Platform::ALL {
        r = r.route(
            p.path(),
            post(move |State(app): State<Arc<App>>, headers: HeaderMap, body: Body| receive(app, p, headers, body)),
        );
    }
    r.with_state(app)
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    let probe = format!("{{\"checked_at\":\"{}\"}}", Utc::now().to_rfc3339());
    match tokio::time::timeout(WRITE_TIMEOUT, app.storage.put(objects::HEALTH_OBJECT, probe)).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::error::Chain(&e), "Health check: storage is not writable.");
            (StatusCode::SERVICE_UNAVAILABLE, "storage is not writable\n").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage write timed out\n").into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render()).into_response()
}

/// Refuses a delivery: counts it and answers `status` with a short reason (never the body).
fn refuse(app: &App, platform: Platform, reason: Reason, status: StatusCode, why: &str) -> Response {
    app.metrics.rejected(platform, reason);
    tracing::warn!(
        platform = platform.name(),
        status = status.as_u16(),
        reason = reason.label(),
        "Delivery refused: {why}."
    );
    (status, format!("{why}\n")).into_response()
}

async fn receive(app: Arc<App>, platform: Platform, headers: HeaderMap, body: Body) -> Response {
    let Some(secret) = app.secrets[platform.index()].clone() else {
        return (StatusCode::NOT_FOUND, "this receiver does not accept this platform\n").into_response();
    };
    let Some(signature) = headers.get(platform.signature_header()) else {
        return refuse(&app, platform, Reason::Unauthorized, StatusCode::UNAUTHORIZED, "signature header missing");
    };
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body_bytes as u64) {
        return refuse(&app, platform, Reason::TooLarge, StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    }
    let body = match read_bounded(body, app.max_body_bytes).await {
        Ok(b) => b,
        Err(ReadError::TooLarge) => {
            return refuse(&app, platform, Reason::TooLarge, StatusCode::PAYLOAD_TOO_LARGE, "body too large");
        }
        Err(ReadError::Broken) => {
            return refuse(&app, platform, Reason::Malformed, StatusCode::BAD_REQUEST, "body could not be read");
        }
    };
    if !verify::verify(platform, &secret, signature.as_bytes(), &body) {
        return refuse(&app, platform, Reason::Unauthorized, StatusCode::UNAUTHORIZED, "signature does not match");
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() || !body.trim_ascii_start().starts_with(b"{") {
        return refuse(&app, platform, Reason::Malformed, StatusCode::BAD_REQUEST, "body is not a JSON object");
    }
    // The key's time is taken after the body arrived, right before the write, so the gap
    // between the time in the name and the object becoming visible is the write alone.
    let key = objects::object_key(platform, Utc::now(), &body);
    let len = body.len();
    let write = objects::write_durably(&app.storage, app.local_root.as_deref(), &key, body);
    match tokio::time::timeout(WRITE_TIMEOUT, write).await {
        Ok(Ok(new_object)) => {
            app.metrics.accepted(platform, len, new_object);
            tracing::debug!(platform = platform.name(), key = %key, new_object, "Delivery stored.");
            (StatusCode::OK, "ok\n").into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(platform = platform.name(), key = %key, error = %crate::error::Chain(&e), "Cannot store a delivery.");
            refuse(&app, platform, Reason::StorageError, StatusCode::SERVICE_UNAVAILABLE, "storage unavailable")
        }
        Err(_) => {
            refuse(&app, platform, Reason::StorageError, StatusCode::SERVICE_UNAVAILABLE, "storage write timed out")
        }
    }
}

enum ReadError {
    TooLarge,
    Broken,
}

/// Reads the body chunk by chunk and stops as soon as it passes `max` bytes: a chunked or
/// lying sender cannot make the receiver buffer more than `max` plus one chunk.
async fn read_bounded(body: Body, max: usize) -> std::result::Result<Bytes, ReadError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ReadError::Broken)?;
        if buf.len() + chunk.len() > max {
            return Err(ReadError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}
