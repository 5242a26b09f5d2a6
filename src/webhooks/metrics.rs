//! The receiver's counters, served as Prometheus text on `GET /metrics`.
//!
//! Hand-written: a handful of monotonic counters with two labels do not justify a metrics
//! registry crate, and the exposition format for counters is three lines each.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Platform;

/// Why a delivery was not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Signature or token missing or wrong: 401.
    Unauthorized,
    /// Body over `max_body_bytes`: 413.
    TooLarge,
    /// Not a JSON object, or the body could not be read: 400.
    Malformed,
    /// Storage failed or timed out: 503, so the platform retries.
    StorageError,
}

impl Reason {
    pub const ALL: [Reason; 4] = [Reason::Unauthorized, Reason::TooLarge, Reason::Malformed, Reason::StorageError];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Unauthorized => "unauthorized",
            Reason::TooLarge => "too_large",
            Reason::Malformed => "malformed",
            Reason::StorageError => "storage_error",
        }
    }
}

const P: usize = Platform::ALL.len();
const R: usize = Reason::ALL.len();

/// Counters per platform (and reason).
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: [AtomicU64; P],
    /// Accepted deliveries whose object already existed (same body, same millisecond).
    already_stored: [AtomicU64; P],
    rejected: [[AtomicU64; R]; P],
    bytes_written: [AtomicU64; P],
}

impl Metrics {
    pub fn accepted(&self, p: Platform, bytes: usize, new_object: bool) {
        self.accepted[p.index()].fetch_add(1, Ordering::Relaxed);
        if new_object {
            self.bytes_written[p.index()].fetch_add(bytes as u64, Ordering::Relaxed);
        } else {
            self.already_stored[p.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn rejected(&self, p: Platform, reason: Reason) {
        self.rejected[p.index()][reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, help: &str, rows: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        };
        let per_platform = |c: &[AtomicU64; P]| {
            Platform::ALL.iter().map(|p| (format!("platform=\"{p}\""), c[p.index()].load(Ordering::Relaxed))).collect()
        };
        family(
            "webhook_deliveries_accepted_total",
            "Deliveries stored and answered 200.",
            per_platform(&self.accepted),
        );
        family(
            "webhook_deliveries_already_stored_total",
            "Accepted deliveries whose identical object already existed.",
            per_platform(&self.already_stored),
        );
        let rejected = Platform::ALL
            .iter()
            .flat_map(|p| {
                Reason::ALL.iter().map(move |r| {
                    (
                        format!("platform=\"{p}\",reason=\"{}\"", r.label()),
                        self.rejected[p.index()][*r as usize].load(Ordering::Relaxed),
                    )
                })
            })
            .collect();
        family("webhook_deliveries_rejected_total", "Deliveries refused, by reason; nothing was stored.", rejected);
        family("webhook_bytes_written_total", "Body bytes written to storage.", per_platform(&self.bytes_written));
        out
    }
}

/// Reads one counter's value out of Prometheus text (tests and health probes).
pub fn read_counter(text: &str, name: &str, labels: &str) -> Option<u64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter_with_labels() {
        let m = Metrics::default();
        m.accepted(Platform::Attentive, 100, true);
        m.accepted(Platform::Attentive, 100, false);
        m.rejected(Platform::Postscript, Reason::TooLarge);
        let text = m.render();
        assert_eq!(read_counter(&text, "webhook_deliveries_accepted_total", "platform=\"attentive\""), Some(2));
        assert_eq!(read_counter(&text, "webhook_bytes_written_total", "platform=\"attentive\""), Some(100));
        assert_eq!(read_counter(&text, "webhook_deliveries_already_stored_total", "platform=\"attentive\""), Some(1));
        assert_eq!(
            read_counter(&text, "webhook_deliveries_rejected_total", "platform=\"postscript\",reason=\"too_large\""),
            Some(1)
        );
        assert_eq!(
            read_counter(&text, "webhook_deliveries_rejected_total", "platform=\"attentive\",reason=\"unauthorized\""),
            Some(0)
        );
        assert!(text.contains("# TYPE webhook_deliveries_rejected_total counter"));
    }
}
