//! Shopify's calculated query cost: a leaky bucket of points per (app, store).
//!
//! Hand-written rather than `governor`: the bucket's true state is the server's, reported on
//! every response (`extensions.cost.throttleStatus`), and a GCRA limiter cannot be re-synced
//! to it. Each request reserves the requested cost it had last time (the same query with the
//! same page sizes costs the same), waits for the bucket to refill that far at the restore
//! rate, and the next response corrects the estimate.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use crate::http::{Gate, HttpError, Page};

/// What the server last said about the bucket, advanced by the restore rate since.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    available: f64,
    maximum: f64,
    restore_rate: f64,
    at: Instant,
}

impl Bucket {
    fn now(&self, now: Instant) -> f64 {
        (self.available + self.restore_rate * now.duration_since(self.at).as_secs_f64()).min(self.maximum)
    }
}

/// Points spent, for the run's figures.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CostTotals {
    pub requested: f64,
    pub actual: f64,
    pub throttled: u64,
}

/// The cost gate of one Shopify store.
#[derive(Debug, Default)]
pub struct CostGate {
    bucket: Mutex<Option<Bucket>>,
    /// Last requested cost by query text.
    expected: Mutex<HashMap<u64, f64>>,
    totals: Mutex<CostTotals>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errors: Option<Vec<GraphQlError>>,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    extensions: Option<ErrorExtensions>,
}

#[derive(Deserialize)]
struct ErrorExtensions {
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
struct Extensions {
    cost: Option<Cost>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cost {
    requested_query_cost: Option<f64>,
    actual_query_cost: Option<f64>,
    throttle_status: Option<ThrottleStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThrottleStatus {
    maximum_available: f64,
    currently_available: f64,
    restore_rate: f64,
}

fn query_key(body: Option<&Value>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.and_then(|b| b.get("query")).and_then(Value::as_str).unwrap_or("").hash(&mut h);
    if let Some(first) = body.and_then(|b| b.pointer("/variables/first")) {
        first.to_string().hash(&mut h);
    }
    h.finish()
}

/// A synthesized HTTP error for a GraphQL-level failure, so the engine's one retry table
/// decides: 429 retries after `wait`, 5xx retries with backoff, 403 is a configuration error,
/// 400 fails the stream.
fn status_error(page: &Page, code: u16, message: String, wait: Option<Duration>) -> HttpError {
    HttpError::Status {
        status: StatusCode::from_u16(code).expect("a valid status code"),
        url: page.url.clone(),
        excerpt: message,
        retry_after: wait,
    }
}

impl CostGate {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn totals(&self) -> CostTotals {
        *self.totals.lock().expect("cost totals lock")
    }

    /// The restore rate the server reported last (points a second), once known.
    pub fn restore_rate(&self) -> Option<f64> {
        self.bucket.lock().expect("cost bucket lock").map(|b| b.restore_rate)
    }

    /// How long until `cost` points are available, reserving them when they are.
    fn reserve(&self, cost: f64) -> Option<Duration> {
        let mut guard = self.bucket.lock().expect("cost bucket lock");
        let bucket = guard.as_mut()?;
        let now = Instant::now();
        let available = bucket.now(now);
        // A cost above the whole bucket can never wait its way in; send it and let the server say.
        let cost = cost.min(bucket.maximum);
        if available >= cost {
            bucket.available = available - cost;
            bucket.at = now;
            None
        } else {
            Some(Duration::from_secs_f64((cost - available) / bucket.restore_rate.max(0.001)))
        }
    }
}

impl Gate for CostGate {
    fn admit<'a>(&'a self, body: Option<&'a Value>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let cost = self.expected.lock().expect("expected cost lock").get(&query_key(body)).copied();
            let Some(cost) = cost else { return };
            while let Some(wait) = self.reserve(cost) {
                tokio::time::sleep(wait).await;
            }
        })
    }

    fn inspect(&self, body: Option<&Value>, page: &Page) -> Result<(), HttpError> {
        // Bytes that are not UTF-8 in a record's string are the landing's to quarantine (with
        // the record), not a reason to refuse the whole page here.
        let decoded = crate::extract::decode_lossy(&page.bytes);
        let envelope: Envelope = serde_json::from_slice(decoded.as_deref().unwrap_or(&page.bytes))
            .map_err(|e| page.malformed(format!("not a GraphQL response: {e}")))?;
        let cost = envelope.extensions.and_then(|e| e.cost);
        let mut wait_for_throttle = None;
        if let Some(cost) = &cost {
            if let Some(requested) = cost.requested_query_cost {
                self.expected.lock().expect("expected cost lock").insert(query_key(body), requested);
            }
            let mut totals = self.totals.lock().expect("cost totals lock");
            totals.requested += cost.requested_query_cost.unwrap_or(0.0);
            totals.actual += cost.actual_query_cost.unwrap_or(0.0);
            drop(totals);
            if let Some(t) = &cost.throttle_status {
                *self.bucket.lock().expect("cost bucket lock") = Some(Bucket {
                    available: t.currently_available,
                    maximum: t.maximum_available,
                    restore_rate: t.restore_rate,
                    at: Instant::now(),
                });
                let requested = cost.requested_query_cost.unwrap_or(t.maximum_available);
                let secs = ((requested - t.currently_available) / t.restore_rate.max(0.001)).max(0.05);
                wait_for_throttle = Some(Duration::from_secs_f64(secs));
            }
        }
        let Some(errors) = envelope.errors.filter(|e| !e.is_empty()) else { return Ok(()) };
        let code = |e: &GraphQlError| e.extensions.as_ref().and_then(|x| x.code.clone()).unwrap_or_default();
        let message = errors.iter().map(|e| format!("{} ({})", e.message, code(e))).collect::<Vec<_>>().join("; ");
        if errors.iter().any(|e| code(e) == "THROTTLED" || e.message == "Throttled") {
            self.totals.lock().expect("cost totals lock").throttled += 1;
            return Err(status_error(
                page,
                429,
                format!("GraphQL THROTTLED: {message}"),
                Some(wait_for_throttle.unwrap_or(Duration::from_secs(1))),
            ));
        }
        if errors.iter().any(|e| code(e) == "INTERNAL_SERVER_ERROR") {
            return Err(status_error(page, 500, format!("GraphQL INTERNAL_SERVER_ERROR: {message}"), None));
        }
        if errors.iter().any(|e| code(e) == "ACCESS_DENIED") {
            return Err(status_error(
                page,
                403,
                format!("access denied (missing scope or protected customer data approval): {message}"),
                None,
            ));
        }
        if errors
            .iter()
            .any(|e| code(e) == "MAX_COST_EXCEEDED" || e.message.contains("exceeds the single query max cost"))
        {
            return Err(status_error(page, 400, format!("query too expensive, lower its page sizes: {message}"), None));
        }
        Err(status_error(page, 400, format!("GraphQL errors: {message}"), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: Value) -> Page {
        Page { url: "http://shop/graphql.json".into(), bytes: body.to_string().into(), headers: Default::default() }
    }

    fn cost(requested: f64, available: f64) -> Value {
        serde_json::json!({"cost": {"requestedQueryCost": requested, "actualQueryCost": null,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": available, "restoreRate": 50.0}}})
    }

    #[test]
    fn throttled_200_is_a_429_with_the_refill_wait() {
        let gate = CostGate::new();
        let body = serde_json::json!({"query": "q"});
        let p = page(serde_json::json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": cost(150.0, 50.0)}));
        let err = gate.inspect(Some(&body), &p).unwrap_err();
        assert!(err.is_throttle());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(2)), "(150 - 50) / 50");
        assert_eq!(gate.totals().throttled, 1);
    }

    #[test]
    fn errors_map_to_the_retry_table() {
        let gate = CostGate::new();
        let denied = page(serde_json::json!({"errors": [{"message": "no", "extensions": {"code": "ACCESS_DENIED"}}]}));
        assert!(gate.inspect(None, &denied).unwrap_err().is_auth());
        let internal =
            page(serde_json::json!({"errors": [{"message": "x", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}));
        assert_eq!(gate.inspect(None, &internal).unwrap_err().disposition(), crate::error::Disposition::Retry);
        let costly = page(serde_json::json!({"errors": [{"message":
            "Query cost is 1723, which exceeds the single query max cost limit (1000)."}]}));
        assert_eq!(gate.inspect(None, &costly).unwrap_err().disposition(), crate::error::Disposition::Fail);
        let ok = page(serde_json::json!({"data": {"shop": {}}, "extensions": cost(10.0, 990.0)}));
        assert!(gate.inspect(None, &ok).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn admission_waits_for_the_bucket_to_refill() {
        let gate = CostGate::new();
        let body = serde_json::json!({"query": "q"});
        let ok = page(serde_json::json!({"data": {}, "extensions": cost(500.0, 100.0)}));
        gate.inspect(Some(&body), &ok).unwrap();
        let started = Instant::now();
        gate.admit(Some(&body)).await;
        // 400 points missing at 50 a second.
        let waited = started.elapsed().as_secs_f64();
        assert!((7.9..8.2).contains(&waited), "waited {waited}");
        // The reservation spent the bucket: the next identical request waits a full 10 s.
        let started = Instant::now();
        gate.admit(Some(&body)).await;
        assert!(started.elapsed().as_secs_f64() >= 9.9);
    }
}
