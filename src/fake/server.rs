//! The running fake: binding, the request log and shutdown, shared by every vendor.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::clock::FakeClock;
use super::faults::{self, FaultLayer, Faults, Injected, VendorError};

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query as sent (still percent-encoded).
    pub path: String,
    /// Header names (lowercase) and values; credentials are replaced by `<redacted>` so logs
    /// can be printed in test failures.
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// Wall-clock arrival time.
    pub at: DateTime<Utc>,
    pub elapsed: Duration,
    /// The fault that shaped the response (`status`, `truncate`, `malform`), if any.
    pub injected: Option<&'static str>,
}

impl LoggedRequest {
    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

type Log = Arc<Mutex<Vec<LoggedRequest>>>;

/// A fake vendor API listening on 127.0.0.1; dropping it without [`FakeServer::shutdown`]
/// leaves the server running until the runtime stops.
pub struct FakeServer {
    base_url: String,
    faults: Faults,
    clock: FakeClock,
    log: Log,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn clock(&self) -> &FakeClock {
        &self.clock
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log.lock().expect("request log lock poisoned").clone()
    }

    /// Requests so far per path (query excluded).
    pub fn request_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.log.lock().expect("request log lock poisoned").iter() {
            *counts.entry(r.path_only().to_string()).or_default() += 1;
        }
        counts
    }

    /// Requests so far to exactly `path` (query excluded).
    pub fn request_count(&self, path: &str) -> usize {
        self.log.lock().expect("request log lock poisoned").iter().filter(|r| r.path_only() == path).count()
    }

    pub fn clear_requests(&self) {
        self.log.lock().expect("request log lock poisoned").clear();
    }

    /// Stops accepting, lets in-flight requests finish briefly, then stops the server.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let mut task = self.task;
        // Pooled keep-alive connections of a still-living client would hold a graceful
        // shutdown open indefinitely; tests must not hang on that.
        if tokio::time::timeout(Duration::from_secs(2), &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Binds an ephemeral port on 127.0.0.1; the base URL is known before the router is built so
/// routes can render absolute links.
pub(crate) async fn bind() -> std::io::Result<(TcpListener, String)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    Ok((listener, base_url))
}

/// Wraps `router` in the fault and logging layers and serves it on the current runtime.
pub(crate) fn start(
    listener: TcpListener,
    base_url: String,
    router: Router,
    faults: Faults,
    vendor_error: VendorError,
    clock: FakeClock,
) -> FakeServer {
    let log: Log = Arc::default();
    let app = router
        .layer(middleware::from_fn_with_state(FaultLayer { faults: faults.clone(), vendor_error }, faults::layer))
        .layer(middleware::from_fn_with_state(log.clone(), log_layer));
    let (tx, task) = serve(listener, app);
    FakeServer { base_url, faults, clock, log, shutdown: tx, task }
}

/// Serves `app` on the current runtime until the returned sender fires (or is dropped).
pub(crate) fn serve(listener: TcpListener, app: Router) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    (tx, task)
}

async fn log_layer(State(log): State<Log>, req: Request, next: Next) -> Response {
    let at = Utc::now();
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path_and_query().map(|pq| pq.as_str().to_string()).unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = if *name == header::AUTHORIZATION {
                // Keep the scheme: tests assert it while the secret stays out of logs.
                let v = value.to_str().unwrap_or_default();
                match v.split_once(' ') {
                    Some((scheme, _)) => format!("{scheme} <redacted>"),
                    None => "<redacted>".to_string(),
                }
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_string(), value)
        })
        .collect();
    let resp = next.run(req).await;
    let entry = LoggedRequest {
        method,
        path,
        headers,
        status: resp.status().as_u16(),
        at,
        elapsed: started.elapsed(),
        injected: resp.extensions().get::<Injected>().map(|i| i.0),
    };
    log.lock().expect("request log lock poisoned").push(entry);
    resp
}
