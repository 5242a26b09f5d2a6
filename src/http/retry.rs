//! Response classification and backoff.
//!
//! The defaults, after Singer's and Airbyte's written-down tables: 429 waits for `Retry-After`;
//! 5xx (including Cloudflare's 524) and connection errors back off with full jitter, which keeps
//! many clients from hitting a recovering server at once; 401 and 403 fail at once as
//! configuration errors naming the source; any other 4xx fails the stream; a 200 whose body is
//! not the expected JSON is a malformed page, quarantined by the caller.

use std::time::Duration;

use backon::ExponentialBuilder;
use reqwest::StatusCode;

use crate::config::RetryConfig;
use crate::error::Disposition;

/// A `Retry-After` longer than this is a quota, not a throttle: fail the stream and resume next
/// night rather than sleep for hours inside a CronJob.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// One failed request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("HTTP {status} from {url}: {excerpt}")]
    Status { status: StatusCode, url: String, excerpt: String, retry_after: Option<Duration> },
    #[error("request to {url} failed: {cause}")]
    Transport {
        url: String,
        #[source]
        cause: reqwest::Error,
    },
    #[error("malformed page from {url}: {message}")]
    Malformed { url: String, message: String, body: String },
}

impl HttpError {
    /// What the engine does with this error.
    pub fn disposition(&self) -> Disposition {
        match self {
            HttpError::Status { status, retry_after, .. } => {
                if *status == StatusCode::TOO_MANY_REQUESTS {
                    match retry_after {
                        Some(d) if *d > MAX_RETRY_AFTER => Disposition::Fail,
                        _ => Disposition::Retry,
                    }
                } else if status.is_server_error() || *status == StatusCode::REQUEST_TIMEOUT {
                    Disposition::Retry
                } else {
                    Disposition::Fail
                }
            }
            HttpError::Transport { .. } => Disposition::Retry,
            HttpError::Malformed { .. } => Disposition::Skip,
        }
    }

    /// A credential or permission problem: the fix is in configuration.
    pub fn is_auth(&self) -> bool {
        matches!(self, HttpError::Status { status, .. }
            if *status == StatusCode::UNAUTHORIZED || *status == StatusCode::FORBIDDEN)
    }

    pub fn is_throttle(&self) -> bool {
        matches!(self, HttpError::Status { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS)
    }

    /// The server-directed wait, when there is one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The backoff after errors: exponential from `min_delay_ms`, capped at `max_delay_ms`, full
/// jitter, at most `max_retries` times (defaults: 250 ms, 30 s, 8).
pub fn backoff(cfg: &RetryConfig) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(cfg.min_delay_ms))
        .with_max_delay(Duration::from_millis(cfg.max_delay_ms.max(cfg.min_delay_ms)))
        .with_max_times(cfg.max_retries)
        .with_jitter()
}

/// Parses `Retry-After` given in seconds (the form Klaviyo and Shopify send).
pub fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let s = value?.to_str().ok()?.trim();
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: Option<u64>) -> HttpError {
        HttpError::Status {
            status: StatusCode::from_u16(code).unwrap(),
            url: "u".into(),
            excerpt: String::new(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn classification_table() {
        assert_eq!(status(429, Some(1)).disposition(), Disposition::Retry);
        assert_eq!(status(429, Some(3600)).disposition(), Disposition::Fail, "daily quota");
        for code in [500, 502, 503, 504, 524] {
            assert_eq!(status(code, None).disposition(), Disposition::Retry, "{code}");
        }
        for code in [400, 401, 403, 404] {
            assert_eq!(status(code, None).disposition(), Disposition::Fail, "{code}");
        }
        assert!(status(401, None).is_auth() && status(403, None).is_auth() && !status(400, None).is_auth());
    }

    #[test]
    fn retry_after_seconds() {
        let v = reqwest::header::HeaderValue::from_static("2");
        assert_eq!(parse_retry_after(Some(&v)), Some(Duration::from_secs(2)));
        let bad = reqwest::header::HeaderValue::from_static("soon");
        assert_eq!(parse_retry_after(Some(&bad)), None);
    }
}
