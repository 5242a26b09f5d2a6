use std::collections::HashSet;

use chrono::NaiveDate;

use super::*;
use crate::simulate::sms_program::{self, SmsPlatform};
use crate::simulate::store::SimStore;
use crate::simulate::{SimConfig, generate};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn every_program_record_is_one_feed_row() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        seed: 11,
        scale: 1,
        start_date: date(2025, 3, 1),
        end_date: date(2025, 11, 30),
        causal: Default::default(),
    };
    generate(&cfg, dir.path()).unwrap();
    let store = SimStore::open(dir.path()).unwrap();
    let subs = sms_program::attentive_subscribers(&store).unwrap();
    let program = sms_program::generate(&store, SmsPlatform::Attentive, &subs).unwrap();
    let truth = program.truth();
    assert!(truth.sends > 100 && truth.clicks > 0 && truth.conversions > 0, "{truth:?}");

    let files = feed_files(&program, "fernhill.com", date(2025, 10, 1));
    // March to October (the Attentive window), two files a day.
    assert_eq!(files.len(), 245 * 2);
    assert_eq!(files.iter().filter(|f| f.kind == FeedKind::GeneralEvents).count(), 245);
    let events: Vec<&String> =
        files.iter().filter(|f| f.kind == FeedKind::GeneralEvents).flat_map(|f| &f.keys).collect();
    assert_eq!(events.len() as u64, truth.sends - truth.failed_sends + truth.clicks + truth.opt_ins + truth.opt_outs);
    assert_eq!(events.iter().collect::<HashSet<_>>().len(), events.len(), "event keys are unique");
    let conversions: u64 = files.iter().filter(|f| f.kind == FeedKind::Conversions).map(|f| f.keys.len() as u64).sum();
    assert_eq!(conversions, truth.conversions);
    let revenue: i64 = files.iter().map(|f| f.revenue_cents).sum();
    assert_eq!(revenue, truth.conversion_revenue_minor);

    // Legacy files before October 1, current ones after; rows parse with 14 columns.
    let sept = files.iter().find(|f| f.day == date(2025, 9, 15) && f.kind == FeedKind::GeneralEvents).unwrap();
    assert!(sept.content.starts_with("Timestamp,Type,Subscriber ID"));
    let all: String = files.iter().map(|f| f.content.as_str()).collect();
    for needle in [
        "JOIN",
        "SUBSCRIPTION_OPT_IN_COMPLETED",
        "MESSAGE_RECEIPT",
        "MESSAGE_LINK_CLICK",
        "Welcome Series - Message 2",
        "CAMPAIGN",
        "utm_source=attentive",
    ] {
        assert!(all.contains(needle), "{needle}");
    }
    for f in &files {
        let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(f.content.as_bytes());
        let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(rows.len(), f.keys.len(), "{}", f.name);
        assert!(rows.iter().all(|row| row.len() == 14));
    }
    assert_eq!(feed_files(&program, "fernhill.com", date(2025, 10, 1)).len(), files.len(), "deterministic");
}
