//! The fake's notion of "now", shared between a server and the test that drives it.
//!
//! Simulated brands end on a fixed date, so wall-clock time is meaningless to a fake: records
//! dated after the fake's now are treated as not yet existing, which lets tests move time
//! forward between runs and see late data appear.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// A settable clock; cloning shares it.
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Arc<Mutex<DateTime<Utc>>>,
    future_records: Arc<AtomicBool>,
}

impl FakeClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self { now: Arc::new(Mutex::new(now)), future_records: Arc::new(AtomicBool::new(false)) }
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock lock poisoned")
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.now.lock().expect("clock lock poisoned") = now;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().expect("clock lock poisoned");
        *now += by;
    }

    /// Real sources serve some records dated after the present (scheduled sends, timezone
    /// bugs); enabling this serves records after `now` too, so watermark clamping can be tested.
    pub fn set_future_records(&self, on: bool) {
        self.future_records.store(on, Ordering::Relaxed);
    }

    pub fn future_records(&self) -> bool {
        self.future_records.load(Ordering::Relaxed)
    }

    /// The latest instant a record may carry and still be served.
    pub fn horizon(&self) -> Option<DateTime<Utc>> {
        if self.future_records() { None } else { Some(self.now()) }
    }
}

/// The first instant after `day` in `tz` (UTC if the name is unknown): a fake's default "now",
/// the end of the brand's last day.
pub fn end_of_day(tz: &str, day: chrono::NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    let next = day.succ_opt().unwrap_or(day).and_hms_opt(0, 0, 0).expect("midnight exists");
    match tz.parse::<chrono_tz::Tz>() {
        Ok(tz) => {
            tz.from_local_datetime(&next).earliest().map(|t| t.with_timezone(&Utc)).unwrap_or_else(|| next.and_utc())
        }
        Err(_) => next.and_utc(),
    }
}
