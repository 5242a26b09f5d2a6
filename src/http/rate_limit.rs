//! Proactive pacing: stay under a vendor's burst (per second) and steady (per minute) limits
//! instead of running into 429s. Uses `governor`'s GCRA limiters, one per window.
//!
//! Vendors count in fixed windows (Klaviyo: requests per calendar second and minute). A GCRA
//! limiter allowed to burst its whole minute would spend it in the first seconds and then meet
//! the vendor's still-closed window, so the steady limiter paces evenly at 98 % of the steady
//! rate, with a tolerance of a few requests: never more than the steady limit in any 60-second
//! span, whatever the alignment of the vendor's windows.
//!
//! The tolerance matters for throughput: timers wake a little late, and a GCRA limiter with no
//! burst loses every late slot for good (about a millisecond in each 17 ms slot at Klaviyo's
//! events limit). A few requests of credit lets the next callers make up for it, and costs at
//! most [`STEADY_TOLERANCE`] requests over the 98 % pace, still under 100 %.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// A vendor limit bucket: requests in it share the same burst and steady limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateBucket {
    pub name: &'static str,
    pub burst_per_second: u32,
    pub steady_per_minute: u32,
}

/// Requests of credit the steady pacer may bank; see the module docs.
pub const STEADY_TOLERANCE: u32 = 4;

/// The tolerance for a bucket: never more than the 2 % headroom of one minute, so tiny limits
/// (the Reporting API's 2 a minute) stay strictly paced.
fn steady_tolerance(steady_per_minute: u32) -> u32 {
    (steady_per_minute / 50).clamp(1, STEADY_TOLERANCE)
}

/// The limiters of one bucket.
#[derive(Clone)]
pub struct Pacer {
    burst: Arc<DefaultDirectRateLimiter>,
    steady: Arc<DefaultDirectRateLimiter>,
}

impl Pacer {
    pub fn new(bucket: RateBucket) -> Self {
        let nz = |n: u32| NonZeroU32::new(n.max(1)).expect("max(1) is non-zero");
        let steady_period =
            std::time::Duration::from_secs_f64(60.0 / (f64::from(bucket.steady_per_minute.max(1)) * 0.98));
        let steady = Quota::with_period(steady_period)
            .expect("a positive period")
            .allow_burst(nz(steady_tolerance(bucket.steady_per_minute)));
        Self {
            burst: Arc::new(RateLimiter::direct(Quota::per_second(nz(bucket.burst_per_second)))),
            steady: Arc::new(RateLimiter::direct(steady)),
        }
    }

    /// Waits until one more request fits both windows.
    pub async fn wait(&self) {
        self.steady.until_ready().await;
        self.burst.until_ready().await;
    }
}
