//! Generated feed files: seeded, deterministic General Events and Conversions CSVs with the
//! quirks a puller must survive (apis.md 6.3): legacy and current event names (and legacy
//! headers), blank enum cells, unknown types, days without files, re-deliveries of a name with
//! other content, late drops and the 30-day purge (the last two are what a test does with the
//! files: write one later, delete old ones). Each file knows the rows it holds, so tests
//! compare what landed with this truth.
//!
//! Its own small generator for now; serving the simulated brand (src/simulate) comes later.

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{NaiveDate, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct FeedGenConfig {
    pub seed: u64,
    pub domain: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub events_per_day: usize,
    pub conversions_per_day: usize,
    /// Days with no file at all (neither feed).
    pub missing_days: Vec<NaiveDate>,
    /// Files of days before this one use the legacy event names (`JOIN`, `OPT_OUT`), title-case
    /// headers and naive timestamps.
    pub legacy_before: NaiveDate,
    /// Days whose General Events file has one row with an unparseable timestamp (row 3).
    pub bad_row_days: Vec<NaiveDate>,
}

impl FeedGenConfig {
    /// A month of files ending `last_day`: about 3,000 event rows and 450 conversions.
    pub fn month(seed: u64, domain: &str, last_day: NaiveDate) -> Self {
        Self {
            seed,
            domain: domain.to_string(),
            first_day: last_day - chrono::Days::new(29),
            last_day,
            events_per_day: 100,
            conversions_per_day: 15,
            missing_days: Vec::new(),
            legacy_before: last_day - chrono::Days::new(20),
            bad_row_days: Vec::new(),
        }
    }
}

/// Which feed a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    GeneralEvents,
    Conversions,
}

impl FeedKind {
    pub fn stream(self) -> &'static str {
        match self {
            Self::GeneralEvents => "general_events",
            Self::Conversions => "conversions",
        }
    }
}

/// One generated file with its truth.
#[derive(Debug, Clone)]
pub struct FeedFile {
    pub kind: FeedKind,
    pub day: NaiveDate,
    pub name: String,
    pub content: String,
    /// Key of each row that must land: `timestamp|type|subscriber_id` for events (timestamp
    /// as UTC `YYYY-MM-DDTHH:MM:SS`), the order id for conversions.
    pub keys: Vec<String>,
    /// Row numbers that must be quarantined.
    pub bad_rows: Vec<u64>,
    /// Sum of conversion revenue in cents.
    pub revenue_cents: i64,
    /// When it was delivered (the file's modification time): 10:00 UTC the next day.
    pub delivered: SystemTime,
}

impl FeedFile {
    /// Writes the file into `dir` with its delivery time as modification time.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join(&self.name);
        std::fs::write(&path, &self.content)?;
        std::fs::File::options().write(true).open(&path)?.set_modified(self.delivered)
    }
}

pub fn general_events_name(domain: &str, day: NaiveDate) -> String {
    format!("{domain}_attentive_email_SMS_{}.csv", day.format("%Y%m%d"))
}

pub fn conversions_name(domain: &str, day: NaiveDate) -> String {
    format!("{domain}_attentive_conversions_{}.csv", day.format("%Y%m%d"))
}

/// Every file of the configuration, day by day (events then conversions).
pub fn generate(cfg: &FeedGenConfig) -> Vec<FeedFile> {
    let mut out = Vec::new();
    for day in cfg.first_day.iter_days().take_while(|d| *d <= cfg.last_day) {
        if cfg.missing_days.contains(&day) {
            continue;
        }
        out.push(events_file(cfg, day, 0));
        out.push(conversions_file(cfg, day, 0));
    }
    out
}

/// A re-delivery of `day`'s file of `kind`: the same name, other rows (`variant` > 0), delivered
/// `variant` days after the first delivery.
pub fn redeliver(cfg: &FeedGenConfig, kind: FeedKind, day: NaiveDate, variant: u64) -> FeedFile {
    match kind {
        FeedKind::GeneralEvents => events_file(cfg, day, variant),
        FeedKind::Conversions => conversions_file(cfg, day, variant),
    }
}

/// Deletes the files of `dir` delivered more than `days` days before `now` (the upstream purge).
pub fn purge(dir: &Path, now: SystemTime, days: u64) -> std::io::Result<usize> {
    let limit = now - Duration::from_secs(days * 86_400);
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.metadata()?.modified()? < limit {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn rng(cfg: &FeedGenConfig, day: NaiveDate, kind: FeedKind, variant: u64) -> ChaCha8Rng {
    let salt = day.to_string().bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    ChaCha8Rng::seed_from_u64(cfg.seed ^ salt ^ ((kind as u64) << 40) ^ (variant << 48))
}

pub(crate) fn delivered(day: NaiveDate, variant: u64) -> SystemTime {
    let at = Utc.from_utc_datetime(&(day + chrono::Days::new(1 + variant)).and_hms_opt(10, 0, 0).expect("valid time"));
    SystemTime::UNIX_EPOCH + Duration::from_secs(at.timestamp() as u64)
}

/// Evenly spread, distinct seconds of the day (so event keys are unique within a file).
fn instants(rng: &mut ChaCha8Rng, day: NaiveDate, n: usize) -> Vec<chrono::NaiveDateTime> {
    let spacing = 86_400 / n.max(1) as i64;
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight");
    (0..n as i64)
        .map(|i| midnight + chrono::Duration::seconds(i * spacing + rng.random_range(0..spacing.max(1))))
        .collect()
}

struct Subscriber {
    id: String,
    phone: String,
    email: String,
    client_user_id: String,
}

fn subscriber(rng: &mut ChaCha8Rng) -> Subscriber {
    let n: u32 = rng.random_range(1..500);
    Subscriber {
        id: format!("{}", 900_000_000 + n),
        phone: format!("+1555{:07}", n * 7919 % 10_000_000),
        email: format!("subscriber{n}@example.com"),
        client_user_id: if n.is_multiple_of(3) { String::new() } else { format!("C{n:05}") },
    }
}

/// Event types with their weights; `JOIN`/`OPT_OUT` are written in legacy files.
const EVENT_TYPES: &[(&str, u32)] = &[
    ("MESSAGE_RECEIPT", 50),
    ("MESSAGE_LINK_CLICK", 15),
    ("IMPRESSION", 10),
    ("CLICK", 5),
    ("SUBSCRIPTION_OPT_IN_COMPLETED", 8),
    ("SUBSCRIPTION_OPTED_OUT", 4),
    ("EMAIL_SAVE", 4),
    ("CUSTOM_ATTRIBUTES", 3),
    ("PUSH_RECEIPT", 1),
];

const JOIN_SOURCES: &[&str] = &["CODE", "CHECKOUT", "DIRECT", "DOUBLE_OPT_IN", "MANUAL"];
const MESSAGE_TYPES: &[&str] = &["AUTOMATED", "CAMPAIGN", "AUTOMATED_TRANSACTIONAL", ""];

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn event_type(rng: &mut ChaCha8Rng) -> &'static str {
    let total: u32 = EVENT_TYPES.iter().map(|t| t.1).sum();
    let mut r = rng.random_range(0..total);
    for (t, w) in EVENT_TYPES {
        if r < *w {
            return t;
        }
        r -= w;
    }
    EVENT_TYPES[0].0
}

/// Quotes a cell when CSV needs it.
fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// One CSV line (with its newline) of `cells`, quoted where needed: shared with the brand's feeds.
pub(crate) fn csv_line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells.iter().map(|c| cell(c.as_ref())).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

/// The General Events header: legacy files use title case.
pub(crate) fn events_header(legacy: bool) -> &'static str {
    if legacy {
        "Timestamp,Type,Subscriber ID,Phone,Email,Client User ID,Channel,Join Source,Subscription Type,Creative ID,Message ID,Message Name,Message Type,Link URL"
    } else {
        "timestamp,type,subscriber_id,phone,email,client_user_id,channel,join_source,subscription_type,creative_id,message_id,message_name,message_type,link_url"
    }
}

/// The Conversions header (the same in every file).
pub(crate) const CONVERSIONS_HEADER: &str = "timestamp,order_id,subscriber_id,phone,email,client_user_id,revenue,currency,channel,message_id,message_name,message_type,attribution_type,attribution_window_days";

fn events_file(cfg: &FeedGenConfig, day: NaiveDate, variant: u64) -> FeedFile {
    let mut rng = rng(cfg, day, FeedKind::GeneralEvents, variant);
    let legacy = day < cfg.legacy_before;
    let header = events_header(legacy);
    let mut content = format!("{header}\n");
    let (mut keys, mut bad_rows) = (Vec::new(), Vec::new());
    let n = cfg.events_per_day + rng.random_range(0..cfg.events_per_day / 5 + 1);
    for (i, at) in instants(&mut rng, day, n).into_iter().enumerate() {
        let row_number = i as u64 + 1;
        let t = event_type(&mut rng);
        let written = match (legacy, t) {
            (true, "SUBSCRIPTION_OPT_IN_COMPLETED") => "JOIN",
            (true, "SUBSCRIPTION_OPTED_OUT") => "OPT_OUT",
            _ => t,
        };
        let s = subscriber(&mut rng);
        let channel = if t == "EMAIL_SAVE" || rng.random_bool(0.2) { "EMAIL" } else { "TEXT" };
        let joins = matches!(t, "SUBSCRIPTION_OPT_IN_COMPLETED" | "EMAIL_SAVE");
        let join_source = if joins { pick(&mut rng, JOIN_SOURCES) } else { "" };
        let subscription_type = if matches!(t, "SUBSCRIPTION_OPT_IN_COMPLETED" | "SUBSCRIPTION_OPTED_OUT") {
            if rng.random_bool(0.9) { "MARKETING" } else { "TRANSACTIONAL" }
        } else {
            ""
        };
        let creative = if matches!(t, "IMPRESSION" | "CLICK") || joins {
            format!("{}", 4000 + rng.random_range(0..5))
        } else {
            String::new()
        };
        let message = matches!(t, "MESSAGE_RECEIPT" | "MESSAGE_LINK_CLICK");
        let (message_id, message_name, message_type) = if message {
            let m = rng.random_range(0..12);
            (format!("M{m:03}"), format!("Journey {m}, step {}", m % 3 + 1), pick(&mut rng, MESSAGE_TYPES))
        } else {
            (String::new(), String::new(), "")
        };
        let link = if t == "MESSAGE_LINK_CLICK" {
            format!("https://{}/p/{}?utm_source=attentive", cfg.domain, rng.random_range(0..50))
        } else {
            String::new()
        };
        let bad = cfg.bad_row_days.contains(&day) && row_number == 3;
        let timestamp = if bad {
            "2026-13-45 99:00:00".to_string()
        } else if legacy {
            at.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        };
        if bad {
            bad_rows.push(row_number);
        } else {
            keys.push(format!("{}|{written}|{}", at.format("%Y-%m-%dT%H:%M:%S"), s.id));
        }
        let cells = [
            timestamp.as_str(),
            written,
            &s.id,
            &s.phone,
            &s.email,
            &s.client_user_id,
            channel,
            join_source,
            subscription_type,
            &creative,
            &message_id,
            &message_name,
            message_type,
            &link,
        ];
        content.push_str(&csv_line(&cells));
    }
    FeedFile {
        kind: FeedKind::GeneralEvents,
        day,
        name: general_events_name(&cfg.domain, day),
        content,
        keys,
        bad_rows,
        revenue_cents: 0,
        delivered: delivered(day, variant),
    }
}

fn conversions_file(cfg: &FeedGenConfig, day: NaiveDate, variant: u64) -> FeedFile {
    let mut rng = rng(cfg, day, FeedKind::Conversions, variant);
    let mut content = format!("{CONVERSIONS_HEADER}\n");
    let (mut keys, mut revenue_cents) = (Vec::new(), 0i64);
    let n = cfg.conversions_per_day + rng.random_range(0..cfg.conversions_per_day / 3 + 1);
    for (i, at) in instants(&mut rng, day, n).into_iter().enumerate() {
        let s = subscriber(&mut rng);
        let order_id = format!(
            "{}{:04}{}",
            day.format("%Y%m%d"),
            i,
            if variant > 0 { format!("-v{variant}") } else { String::new() }
        );
        let cents: i64 = rng.random_range(1_500..25_000);
        revenue_cents += cents;
        let m = rng.random_range(0..12);
        let attribution = pick(&mut rng, &["CLICK", "CLICK", "VIEW", ""]);
        let window = if attribution == "VIEW" { "1" } else { "5" };
        let cells = [
            at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            order_id.clone(),
            s.id,
            s.phone,
            s.email,
            s.client_user_id,
            format!("{}.{:02}", cents / 100, cents % 100),
            "USD".into(),
            if rng.random_bool(0.8) { "TEXT".into() } else { "EMAIL".into() },
            format!("M{m:03}"),
            format!("Journey {m}, step {}", m % 3 + 1),
            pick(&mut rng, MESSAGE_TYPES).into(),
            attribution.into(),
            window.into(),
        ];
        content.push_str(&csv_line(&cells));
        keys.push(order_id);
    }
    FeedFile {
        kind: FeedKind::Conversions,
        day,
        name: conversions_name(&cfg.domain, day),
        content,
        keys,
        bad_rows: Vec::new(),
        revenue_cents,
        delivered: delivered(day, variant),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_has_the_quirks() {
        let last = NaiveDate::from_ymd_opt(2026, 10, 30).unwrap();
        let mut cfg = FeedGenConfig::month(3, "acme.com", last);
        cfg.missing_days = vec![last - chrono::Days::new(5)];
        let a = generate(&cfg);
        let b = generate(&cfg);
        assert_eq!(a.len(), 58);
        assert!(a.iter().zip(&b).all(|(x, y)| x.content == y.content));
        let all: String = a.iter().map(|f| f.content.as_str()).collect();
        for quirk in ["JOIN", "OPT_OUT", "SUBSCRIPTION_OPT_IN_COMPLETED", "PUSH_RECEIPT", "Join Source", ",,"] {
            assert!(all.contains(quirk), "{quirk}");
        }
        let again = redeliver(&cfg, FeedKind::Conversions, last, 1);
        assert_eq!(again.name, conversions_name("acme.com", last));
        assert_ne!(again.content, a.last().unwrap().content);
        let rows: usize = a.iter().map(|f| f.keys.len()).sum();
        assert!((2_500..6_000).contains(&rows), "{rows}");
    }
}
