//! JSON → Parquet throughput of landing, on one core: page bytes are parsed, each record typed
//! into Arrow against the raw events contract (with `_raw` kept), and every `batch_rows` records
//! written as a zstd Parquet part, exactly as a sync does. Prints records/s; target ≥ 250k.
//!
//! `cargo bench --bench json_to_parquet` (release). Under `cargo test` it only says how to run.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use lifecycle_etl::landing::{BatchBuilder, JsonApiPage, write_file};
use lifecycle_etl::storage::Storage;
use serde_json::{Value, json};

const PAGE: usize = 1000;
const BATCH_ROWS: usize = 50_000;

/// A page of Klaviyo events shaped like the API's (and the fake's) JSON:API documents.
fn page(n: usize, offset: usize) -> Vec<u8> {
    let data: Vec<Value> = (0..n)
        .map(|i| {
            let k = offset + i;
            let metric = ["RcvEml", "OpnEml", "ClkEml"][k % 3];
            json!({
                "type": "event", "id": format!("4{k:025}"),
                "attributes": {
                    "timestamp": 1_760_000_000 + k, "datetime": format!("2026-10-{:02}T{:02}:{:02}:{:02}+00:00", 1 + k % 28, k % 24, k % 60, (k * 7) % 60),
                    "uuid": format!("{k:08x}-0000-4000-8000-000000000000"),
                    "event_properties": {
                        "$value": if k.is_multiple_of(10) { json!(49.95) } else { Value::Null },
                        "$flow": if k.is_multiple_of(3) { json!("XyZ123") } else { Value::Null },
                        "$message": format!("M{:05}", k % 5000),
                        "Campaign Name": "Autumn drop", "Subject": "New in: the fall edit",
                        "$_cohort$message_send_cohort": format!("{}:M{:05}", 1_760_000_000 + k, k % 5000),
                        "Client Name": "Gmail", "Inbox Provider": "Gmail", "Email Domain": "example.com",
                    }
                },
                "relationships": {
                    "metric": {"data": {"type": "metric", "id": metric}},
                    "profile": {"data": {"type": "profile", "id": format!("01J{:023}", k % 200_000)}}
                },
                "links": {"self": format!("https://a.klaviyo.com/api/events/4{k:025}/")}
            })
        })
        .collect();
    serde_json::to_vec(&json!({"data": data, "links": {"next": null}})).unwrap()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("json_to_parquet: run with `cargo bench --bench json_to_parquet`");
        return;
    }
    let records: usize = std::env::var("LCE_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(500_000);
    let pages: Vec<Vec<u8>> = (0..records.div_ceil(PAGE)).map(|p| page(PAGE, p * PAGE)).collect();
    let bytes: usize = pages.iter().map(Vec::len).sum();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let storage = Storage::from_store(Arc::new(object_store::memory::InMemory::new()), "", "memory://");
    let contract = lifecycle_etl::contract::raw("klaviyo", "events").unwrap();

    // Where the time goes: splitting pages into records, then typing them into Arrow.
    let t = Instant::now();
    for body in &pages {
        std::hint::black_box(JsonApiPage::parse(body).unwrap());
    }
    let split = t.elapsed().as_secs_f64();
    let t = Instant::now();
    {
        let mut builder =
            BatchBuilder::new(lifecycle_etl::contract::raw("klaviyo", "events").unwrap(), "b", Utc::now());
        for body in &pages {
            for record in &JsonApiPage::parse(body).unwrap().data {
                builder.push_raw(record.get(), None).unwrap();
                if builder.len() >= BATCH_ROWS {
                    std::hint::black_box(builder.finish());
                }
            }
        }
    }
    let typed = t.elapsed().as_secs_f64();
    println!(
        "json_to_parquet: page split {:.0} records/s; split + typed into Arrow {:.0} records/s",
        records as f64 / split,
        records as f64 / typed
    );

    let cpu_start = common::cpu_time();
    let start = Instant::now();
    let mut builder = BatchBuilder::new(contract, "bench-run", Utc::now());
    let (mut landed, mut parquet_bytes, mut part) = (0u64, 0u64, 0u32);
    for body in &pages {
        let page = JsonApiPage::parse(body).unwrap();
        for record in &page.data {
            builder.push_raw(record.get(), None).unwrap();
            if builder.len() >= BATCH_ROWS {
                let f = rt.block_on(write_file(&storage, &format!("p/{part}.parquet"), &builder.finish())).unwrap();
                (landed, parquet_bytes, part) = (landed + f.rows, parquet_bytes + f.bytes, part + 1);
            }
        }
    }
    if !builder.is_empty() {
        let f = rt.block_on(write_file(&storage, &format!("p/{part}.parquet"), &builder.finish())).unwrap();
        (landed, parquet_bytes) = (landed + f.rows, parquet_bytes + f.bytes);
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = common::cpu_time().map(|c| c - cpu_start.unwrap_or(0.0));
    println!(
        "json_to_parquet: {landed} records, {:.1} MB JSON -> {:.1} MB Parquet (zstd)",
        bytes as f64 / 1e6,
        parquet_bytes as f64 / 1e6
    );
    println!("json_to_parquet: wall {wall:.2} s, {:.0} records/s", landed as f64 / wall);
    if let Some(cpu) = cpu {
        println!("json_to_parquet: cpu {cpu:.2} s, {:.0} records/s per core (target >= 250000)", landed as f64 / cpu);
    }
}
