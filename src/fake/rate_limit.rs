//! Fixed-window rate limiting with a burst (1 s) and a steady (60 s) window per bucket.
//!
//! Klaviyo documents exactly this model (per account, per endpoint, two fixed windows), and
//! the connectors' throttling logic is only tested honestly against the same arithmetic:
//! a sliding or token-bucket limiter would accept request patterns the real API refuses.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Requests allowed per burst (1 s) and steady (60 s) window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: u32,
    pub steady: u32,
}

impl Limit {
    pub const fn new(burst: u32, steady: u32) -> Self {
        Self { burst, steady }
    }
}

const BURST_WINDOW: Duration = Duration::from_secs(1);
const STEADY_WINDOW: Duration = Duration::from_secs(60);

/// What a successful response reports in its `RateLimit-*` headers (the steady window,
/// which is the one a client can plan against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the steady window resets.
    pub reset_secs: u64,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    count: u32,
}

impl Window {
    /// Fixed windows restart at the first request after they lapse, not on a wall-clock grid.
    fn roll(&mut self, now: Instant, len: Duration) {
        if now.duration_since(self.started) >= len {
            self.started = now;
            self.count = 0;
        }
    }

    fn wait(&self, now: Instant, len: Duration) -> Duration {
        (self.started + len).saturating_duration_since(now)
    }
}

#[derive(Debug)]
struct Bucket {
    burst: Window,
    steady: Window,
}

/// Per-bucket fixed windows; a bucket is whatever key the fake charges (an endpoint tier).
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Charges one request to `bucket`; `Err` carries the whole seconds to wait (at least 1,
    /// as `Retry-After` is an integer and a 0 would invite a hot retry loop).
    pub fn check(&self, bucket: &str, limit: Limit) -> Result<Allowance, u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter lock poisoned");
        let b = buckets.entry(bucket.to_string()).or_insert_with(|| Bucket {
            burst: Window { started: now, count: 0 },
            steady: Window { started: now, count: 0 },
        });
        b.burst.roll(now, BURST_WINDOW);
        b.steady.roll(now, STEADY_WINDOW);
        let mut wait = Duration::ZERO;
        if b.burst.count >= limit.burst {
            wait = wait.max(b.burst.wait(now, BURST_WINDOW));
        }
        if b.steady.count >= limit.steady {
            wait = wait.max(b.steady.wait(now, STEADY_WINDOW));
        }
        if !wait.is_zero() {
            return Err(ceil_secs(wait).max(1));
        }
        b.burst.count += 1;
        b.steady.count += 1;
        Ok(Allowance {
            limit: limit.steady,
            remaining: limit.steady - b.steady.count,
            reset_secs: ceil_secs(b.steady.wait(now, STEADY_WINDOW)),
        })
    }

    /// Forgets every window, so a test can start from a clean quota.
    pub fn reset(&self) {
        self.buckets.lock().expect("rate limiter lock poisoned").clear();
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_windows_refuse() {
        let rl = RateLimiter::new();
        let limit = Limit::new(2, 3);
        assert_eq!(rl.check("a", limit).unwrap().remaining, 2);
        assert_eq!(rl.check("a", limit).unwrap().remaining, 1);
        assert_eq!(rl.check("a", limit), Err(1));
        // Other buckets are independent.
        assert!(rl.check("b", limit).is_ok());
        std::thread::sleep(Duration::from_millis(1050));
        assert_eq!(rl.check("a", limit).unwrap().remaining, 0);
        let wait = rl.check("a", limit).unwrap_err();
        assert!((58..=60).contains(&wait), "steady window wait {wait}");
    }
}
