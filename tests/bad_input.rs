//! Bad input from the sources (DECISIONS D42): wrong types, missing required fields, unknown
//! fields, huge strings, bytes that are not UTF-8, duplicate ids and timestamps before
//! 1970 or years ahead, injected into pages the fakes serve (`Faults::corrupt_record`). The binary
//! syncs and transforms without panicking; every good record lands; each bad one is
//! quarantined naming source, stream, record id and field, or coerced by the stated rule; and
//! duplicates are one row after staging.
//!
//! Run time: 73 to 88 s in a debug build on two cores under a load of 7 to 8 (a one-month brand:
//! each source synced once by the binary in about 3 s, then one transform of every model, the
//! bulk of the time).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use common::*;
use lifecycle_etl::fake::{Corruption, RecordTarget};
use lifecycle_etl::simulate::model::{SimOrder, SimTruth};
use lifecycle_etl::simulate::store::{Entity, SimStore};
use lifecycle_etl::simulate::{SimConfig, generate};
use lifecycle_etl::storage::Storage;
use serde_json::{Value, json};

/// A one-month brand, generated once per test binary.
fn small_brand() -> &'static (SimStore, SimTruth) {
    static BRAND: OnceLock<(SimStore, SimTruth)> = OnceLock::new();
    BRAND.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lce-bad-input-brand-{}", std::process::id()));
        let cfg = SimConfig {
            seed: 42,
            scale: 1,
            start_date: date(2026, 8, 1),
            end_date: date(2026, 8, 31),
            causal: Default::default(),
        };
        let truth = generate(&cfg, &dir).expect("brand generates");
        (SimStore::open(&dir).unwrap(), truth)
    })
}

/// An instant `days` after now, as ISO-8601 text.
fn ahead(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days)).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

const HUGE: usize = 5 * 1024 * 1024;

/// One quarantine entry as landing writes it.
#[derive(Debug)]
struct Quarantined {
    source: String,
    stream: String,
    record_id: Option<String>,
    field: String,
    error: String,
    body: Value,
}

fn quarantined(data: &Path) -> Vec<Quarantined> {
    walk(&data.join("_quarantine"))
        .iter()
        .map(|p| {
            let e: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            Quarantined {
                source: text("source"),
                stream: text("stream"),
                record_id: e["record_id"].as_str().map(str::to_string),
                field: text("field"),
                error: text("error"),
                body: e["body"].clone(),
            }
        })
        .collect()
}

/// The entry for `field` (a contract column, or the JSON pointer of bytes that were not UTF-8)
/// whose error says `why`: exactly one, with source and stream, and with the record id when the
/// record had one.
fn entry<'q>(all: &'q [Quarantined], source: &str, stream: &str, field: &str, why: &str) -> &'q Quarantined {
    let hits: Vec<&Quarantined> = all
        .iter()
        .filter(|q| (q.source.as_str(), q.stream.as_str()) == (source, stream))
        .filter(|q| q.field == field && q.error.contains(why))
        .collect();
    assert_eq!(hits.len(), 1, "one entry of {source}.{stream} for {field} ({why}) in {all:#?}");
    let q = hits[0];
    if let Some(id) = q.body.get("id").and_then(Value::as_str) {
        assert_eq!(q.record_id.as_deref(), Some(id), "the entry names its record: {q:?}");
    }
    q
}

/// Runs the binary; asserts it did not panic and exited with `code`; returns its stderr.
async fn run(args: &[&str], job: &Path, env: &[(&str, &str)], code: i32) -> String {
    let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    argv.extend(["--job".to_string(), job.display().to_string()]);
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let out = run_binary(argv, env).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{}", tail(&stderr));
    assert_eq!(out.status.code(), Some(code), "{args:?}:\n{}", tail(&stderr));
    stderr
}

/// The log's warnings and errors, or its end.
fn tail(text: &str) -> String {
    let loud: Vec<&str> = text.lines().filter(|l| l.contains("\"ERROR\"") || l.contains("\"WARN\"")).collect();
    if loud.is_empty() { text[text.len().saturating_sub(4000)..].to_string() } else { loud.join("\n") }
}

/// The run's error line names source, stream, a record id and a field.
fn assert_error_names(stderr: &str, source: &str, stream: &str, all: &[Quarantined]) {
    let wanted = format!("source {source}, stream {stream}: ");
    let line = stderr.lines().find(|l| l.contains(&wanted) && l.contains("\"ERROR\"")).unwrap_or_else(|| {
        panic!("no error line for {source}.{stream}:\n{}", tail(stderr));
    });
    let named = all
        .iter()
        .filter(|q| q.stream == stream)
        .any(|q| line.contains(&format!("record {}, field {}", q.record_id.as_deref().unwrap_or("<no id>"), q.field)));
    assert!(named, "the error names a quarantined record and its field: {line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_quarantined_or_coerced_never_a_panic() {
    let (store, _) = small_brand();
    let klaviyo = lifecycle_etl::fake::klaviyo::serve(store.clone(), fake_config()).await.unwrap();
    let shop_config = lifecycle_etl::fake::shopify::ShopifyFakeConfig::default();
    let (shopify, control) = lifecycle_etl::fake::shopify::serve(store.clone(), shop_config).await.unwrap();
    klaviyo_faults(&klaviyo);
    shopify_faults(&shopify);
    let dir = tempfile::tempdir().unwrap();
    let job = both_sources_job(dir.path(), &klaviyo.base_url(), &shopify.base_url());
    let job_path = dir.path().join("testbrand.toml");
    // Pages of 100 events, so that some window has a next page to repeat a record across.
    let text = std::fs::read_to_string(&job_path).unwrap() + "[sources.klaviyo.streams.events]\npage_size = 100\n";
    std::fs::write(&job_path, text).unwrap();
    let env = [(API_KEY_ENV, API_KEY), (SHOPIFY_TOKEN_ENV, lifecycle_etl::fake::shopify::DEFAULT_ACCESS_TOKEN)];

    // Quarantined records fail their stream (exit 2, DECISIONS D42) and the rest lands.
    let klaviyo_log = run(&["sync", "--source", "klaviyo"], &job_path, &env, 2).await;
    let now = control.clock().now();
    let shopify_log = run(&["sync", "--source", "shopify", "--until", &now.to_rfc3339()], &job_path, &env, 2).await;
    for fake in [&klaviyo, &shopify] {
        assert_eq!(fake.faults().pending(), 0, "every corruption was served: {:?}", fake.faults());
    }
    klaviyo.shutdown().await;
    shopify.shutdown().await;
    // What landed goes through every model.
    run(&["transform"], &job_path, &env, 0).await;

    let all = quarantined(&dir.path().join("data"));
    assert_eq!(all.len(), 9 + 5, "{all:#?}");
    let secrets = secrets().with(SHOPIFY_TOKEN_ENV, lifecycle_etl::fake::shopify::DEFAULT_ACCESS_TOKEN);
    let storage = Storage::open(&job.file.storage, &secrets).unwrap();
    check_klaviyo(&storage, &all, &klaviyo_log).await;
    check_shopify(&storage, &all, &shopify_log, now).await;
}

fn klaviyo_faults(fake: &lifecycle_etl::fake::FakeServer) {
    let (events, profiles) = (fake.faults().on("/api/events"), fake.faults().on("/api/profiles"));
    let on_event = |nth| RecordTarget::json("/data", nth);
    // Coerced: epoch seconds for a timestamp, a numeric string for a decimal; a month ahead of
    // the run lands as is (a scheduled send).
    events.corrupt_record(on_event(0), Corruption::set("/attributes/datetime", json!(1_786_000_000)));
    events.corrupt_record(on_event(1), Corruption::set("/attributes/event_properties/$value", json!("4321.5")));
    events.corrupt_record(on_event(2), Corruption::set("/attributes/datetime", json!(ahead(30))));
    // Kept in `_raw` only.
    events.corrupt_record(on_event(3), Corruption::set("/attributes/lce_unknown_field", json!("kept in raw")));
    // Quarantined.
    events.corrupt_record(on_event(4), Corruption::set("/attributes/datetime", json!("yesterday")));
    events.corrupt_record(on_event(5), Corruption::set("/attributes/event_properties/$value", json!({"a": 1})));
    events.corrupt_record(on_event(6), Corruption::remove("/id"));
    events.corrupt_record(on_event(7), Corruption::remove("/attributes/datetime"));
    events.corrupt_record(on_event(8), Corruption::set("/attributes/datetime", json!("9999-12-31T00:00:00Z")));
    events.corrupt_record(on_event(9), Corruption::set("/attributes/datetime", json!("1969-07-20T20:17:40Z")));
    events.corrupt_record(on_event(10), Corruption::invalid_utf8("/attributes/event_properties/$flow"));
    // Duplicates: in a page, and across pages.
    events.corrupt_record(on_event(11), Corruption::Repeat);
    events.duplicate_across_pages(1);
    let on_profile = |nth| RecordTarget::json("/data", nth);
    profiles.corrupt_record(on_profile(0), Corruption::set("/attributes/external_id", json!("x".repeat(HUGE))));
    profiles.corrupt_record(on_profile(1), Corruption::set("/attributes/phone_number", json!(15551234567u64)));
    profiles.corrupt_record(on_profile(2), Corruption::remove("/attributes/updated"));
    profiles.corrupt_record(on_profile(3), Corruption::invalid_utf8("/attributes/first_name"));
    profiles.corrupt_record(on_profile(4), Corruption::Repeat);
}

/// Events and profiles: each bad record quarantined or coerced, the good ones all landed.
async fn check_klaviyo(storage: &Storage, all: &[Quarantined], stderr: &str) {
    // Quarantined events: each names the field, and the record when it had an id.
    let bad_events = [
        entry(all, "klaviyo", "events", "datetime", "got string \"yesterday\""),
        entry(all, "klaviyo", "events", "value", "expected a decimal amount, got object"),
        entry(all, "klaviyo", "events", "id", "required field is missing"),
        entry(all, "klaviyo", "events", "datetime", "required field is missing"),
        entry(all, "klaviyo", "events", "datetime", "9999-12-31T00:00:00Z\" is outside 1970-01-01"),
        entry(all, "klaviyo", "events", "datetime", "1969-07-20T20:17:40Z\" is outside 1970-01-01"),
        entry(all, "klaviyo", "events", "/attributes/event_properties/$flow", "not UTF-8"),
    ];
    assert_eq!(bad_events[2].record_id, None, "a record without an id is named as such");
    for q in &bad_events[..6] {
        let id = q.record_id.as_deref().unwrap_or("<no id>");
        assert!(
            stderr.contains(&format!("\"record_id\":\"{}\"", if q.record_id.is_some() { id } else { "" })),
            "{q:?}"
        );
    }
    let bad_event_ids: BTreeSet<String> = bad_events.iter().filter_map(|q| q.record_id.clone()).collect();
    assert_eq!(bad_event_ids.len(), 6);
    for id in &bad_event_ids {
        assert_eq!(scalar(storage, &format!("select count(*) from raw_klaviyo__events where id = '{id}'")).await, 0);
    }
    // Every good event landed: the brand's events but the seven quarantined ones.
    let landed = scalar(storage, "select count(distinct id) from raw_klaviyo__events").await as u64;
    assert_eq!(landed, small_brand().1.totals.events - 7, "good events all land");
    assert_eq!(
        scalar(storage, "select count(*) from stg_klaviyo__events").await as u64,
        small_brand().1.totals.events - 7
    );
    assert_error_names(stderr, "klaviyo", "events", all);

    // Coerced events hold what the rules say.
    let got = rows(
        storage,
        "select cast(datetime as varchar) from raw_klaviyo__events where _raw like '%\"datetime\":1786000000%'",
    )
    .await;
    let epoch = chrono::DateTime::from_timestamp(1_786_000_000, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ");
    assert_eq!(got, vec![vec![epoch.to_string()]], "epoch seconds read as UTC");
    let got =
        rows(storage, "select cast(value as varchar) from raw_klaviyo__events where _raw like '%\"4321.5\"%'").await;
    assert_eq!(got, vec![vec!["4321.5000".to_string()]], "a numeric string is the decimal it spells");
    let sql = format!("select event_id from stg_klaviyo__events where occurred_at >= timestamp '{}'", ahead(29));
    assert_eq!(rows(storage, &sql).await.len(), 1, "a month ahead lands as is");
    let unknown = rows(storage, "select id from raw_klaviyo__events where _raw like '%lce_unknown_field%'").await;
    assert_eq!(unknown.len(), 1, "an unknown field lands, kept in _raw");

    // Duplicates: two copies in raw, one in staging.
    let twice = rows(storage, "select id from raw_klaviyo__events group by id having count(*) = 2").await;
    assert_eq!(twice.len(), 2, "the in-page and the cross-page duplicate: {twice:?}");
    for id in twice {
        let sql = format!("select count(*) from stg_klaviyo__events where event_id = '{}'", id[0]);
        assert_eq!(scalar(storage, &sql).await, 1, "staging keeps one copy of {}", id[0]);
    }

    // Profiles: a huge string lands whole, a number for a text field is its digits, a missing
    // cursor and bytes that are not UTF-8 are quarantined.
    let huge =
        rows(storage, "select id, length(external_id) from raw_klaviyo__profiles where length(external_id) > 1000")
            .await;
    assert_eq!(huge.len(), 1, "{huge:?}");
    assert_eq!(huge[0][1], HUGE.to_string());
    let phone =
        rows(storage, "select phone_number from raw_klaviyo__profiles where phone_number = '15551234567'").await;
    assert_eq!(phone.len(), 1, "a number for a text field lands as its digits");
    let no_cursor = entry(all, "klaviyo", "profiles", "updated", "required field is missing");
    let not_utf8 = entry(all, "klaviyo", "profiles", "/attributes/first_name", "not UTF-8");
    assert!(not_utf8.body["attributes"]["first_name"].as_str().unwrap().contains('\u{FFFD}'));
    assert_eq!(all.iter().filter(|q| q.stream == "profiles").count(), 2);
    let landed = scalar(storage, "select count(distinct id) from raw_klaviyo__profiles").await as u64;
    assert_eq!(landed, small_brand().1.totals.profiles - 2, "good profiles all land");
    assert_eq!(
        scalar(storage, "select count(*) from stg_klaviyo__profiles").await as u64,
        small_brand().1.totals.profiles - 2
    );
    for q in [no_cursor, not_utf8] {
        let id = q.record_id.as_deref().expect("profile id");
        assert_eq!(scalar(storage, &format!("select count(*) from raw_klaviyo__profiles where id = '{id}'")).await, 0);
    }
    assert_error_names(stderr, "klaviyo", "profiles", all);
    // The other Klaviyo streams were untouched.
    assert_eq!(
        scalar(storage, "select count(*) from stg_klaviyo__metrics").await as u64,
        small_brand().1.totals.metrics
    );
}

fn shopify_faults(fake: &lifecycle_etl::fake::FakeServer) {
    // The first run reads orders through a bulk operation: its JSONL result is the body damaged.
    let bulk = fake.faults().on("/bulk-results");
    let order = |nth| RecordTarget::jsonl(nth).having("/totalPriceSet");
    bulk.corrupt_record(order(0), Corruption::set("/totalPriceSet/shopMoney/amount", json!(12345.6789)));
    bulk.corrupt_record(order(1), Corruption::set("/processedAt", json!(ahead(30))));
    bulk.corrupt_record(order(2), Corruption::set("/lceUnknownField", json!({"kept": "in raw"})));
    bulk.corrupt_record(order(3), Corruption::set("/name", json!("#".repeat(HUGE))));
    bulk.corrupt_record(order(4), Corruption::set("/legacyResourceId", json!("not a number")));
    bulk.corrupt_record(order(5), Corruption::remove("/updatedAt"));
    bulk.corrupt_record(order(6), Corruption::set("/processedAt", json!("9999-12-31T00:00:00Z")));
    bulk.corrupt_record(order(7), Corruption::set("/createdAt", json!("1960-01-01T00:00:00Z")));
    bulk.corrupt_record(order(8), Corruption::invalid_utf8("/email"));
    bulk.corrupt_record(order(9), Corruption::Repeat);
}

/// Orders from the bulk export: each bad order quarantined or coerced, the good ones all landed.
async fn check_shopify(storage: &Storage, all: &[Quarantined], stderr: &str, now: chrono::DateTime<chrono::Utc>) {
    let bad = [
        entry(all, "shopify", "orders", "legacy_resource_id", "expected an integer"),
        entry(all, "shopify", "orders", "updated_at", "required field is missing"),
        entry(all, "shopify", "orders", "processed_at", "outside 1970-01-01"),
        entry(all, "shopify", "orders", "created_at", "outside 1970-01-01"),
        entry(all, "shopify", "orders", "/email", "not UTF-8"),
    ];
    assert_error_names(stderr, "shopify", "orders", all);
    for q in &bad {
        let id = q.record_id.as_deref().expect("order id");
        assert!(stderr.contains(&format!("\"record_id\":\"{id}\"")), "the warning names {id}");
        assert_eq!(scalar(storage, &format!("select count(*) from raw_shopify__orders where id = '{id}'")).await, 0);
    }

    // Every good order landed (the fake serves orders created up to its clock).
    let orders: Vec<SimOrder> = small_brand().0.read_all(Entity::Orders).unwrap();
    let served: Vec<&SimOrder> = orders.iter().filter(|o| o.created_at <= now).collect();
    let landed = scalar(storage, "select count(distinct id) from raw_shopify__orders").await as usize;
    assert_eq!(landed, served.len() - 5, "good orders all land");
    let bad_ids: BTreeSet<String> = bad.iter().filter_map(|q| q.record_id.clone()).collect();
    let good = |o: &&&SimOrder| !o.test && !bad_ids.contains(&format!("gid://shopify/Order/{}", o.order_id));
    let staged = scalar(storage, "select count(*) from stg_shopify__orders").await as usize;
    assert_eq!(staged, served.iter().filter(good).count(), "each good non-test order staged once");

    // Coerced and kept values.
    let amount = rows(
        storage,
        "select cast(total_price_amount as varchar) from raw_shopify__orders where total_price_amount = 12345.6789",
    )
    .await;
    assert_eq!(amount.len(), 1, "a number for a money string is the same amount");
    let far = format!("select id from raw_shopify__orders where processed_at >= timestamp '{}'", ahead(29));
    assert_eq!(rows(storage, &far).await.len(), 1, "a month ahead lands as is");
    let unknown = rows(storage, "select id from raw_shopify__orders where _raw like '%lceUnknownField%'").await;
    assert_eq!(unknown.len(), 1);
    let huge = rows(storage, "select length(name) from raw_shopify__orders where length(name) > 1000").await;
    assert_eq!(huge, vec![vec![HUGE.to_string()]]);
    // The repeated order (with its lines) lands twice and stages once with all its lines.
    let twice = rows(storage, "select id from raw_shopify__orders group by id having count(*) = 2").await;
    assert_eq!(twice.len(), 1, "{twice:?}");
    let sql = format!("select count(*) from stg_shopify__orders where order_gid = '{}'", twice[0][0]);
    let test = served.iter().any(|o| o.test && format!("gid://shopify/Order/{}", o.order_id) == twice[0][0]);
    assert_eq!(scalar(storage, &sql).await, i64::from(!test), "staging keeps one copy");
}
