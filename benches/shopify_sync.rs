//! Shopify throughput, two figures:
//!
//! 1. Bulk JSONL -> Parquet records/s a core: the fake Shopify exports every order of the brand
//!    as a bulk operation; its JSONL is downloaded once, then timed on one thread: lines parsed,
//!    `__parentId` children folded under their orders, records typed into Arrow against the raw
//!    orders contract and written as zstd Parquet parts, as a bulk read lands them.
//! 2. Paged sync as a fraction of the cost-point restore rate: the real pipeline syncs orders
//!    through paged queries only (bulk threshold raised) against the fake's leaky bucket with
//!    injected latency; points actually spent per second over the restore rate, the bucket's
//!    starting credit left out.
//!
//! `cargo bench --bench shopify_sync`. Knobs: LCE_BENCH_BULK_SCALE (brand for the bulk figure,
//! default 10), LCE_BENCH_PAGED_SCALE (default 1), LCE_BENCH_LATENCY_MS (50),
//! LCE_BENCH_RESTORE (points/s, default 1000: Shopify Plus), LCE_BENCH_BUCKET (default 2000).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use common::{cpu_time, env};
use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::fake::shopify::{DEFAULT_ACCESS_TOKEN, ShopifyFakeConfig, serve};
use lifecycle_etl::landing::{BatchBuilder, write_file};
use lifecycle_etl::pipeline::{Steps, SyncSelection, execute};
use lifecycle_etl::simulate::store::SimStore;
use lifecycle_etl::simulate::{SimConfig, generate};
use lifecycle_etl::sources::shopify::bulk::Folder;
use lifecycle_etl::sources::shopify::queries;
use lifecycle_etl::sources::shopify::reader::Kind;
use lifecycle_etl::storage::Storage;
use serde_json::{Value, json};

const BATCH_ROWS: usize = 50_000;

fn brand(scale: u32) -> SimStore {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-brand-{scale}"));
    if let Ok(store) = SimStore::open(&dir)
        && store.truth().is_ok_and(|t| t.scale == scale)
    {
        return store;
    }
    let cfg = SimConfig {
        seed: 42,
        scale,
        start_date: NaiveDate::from_ymd_opt(2024, 11, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
        causal: Default::default(),
    };
    let started = Instant::now();
    generate(&cfg, &dir).unwrap();
    println!("shopify_sync: generated brand scale {scale} in {:.1} s", started.elapsed().as_secs_f64());
    SimStore::open(&dir).unwrap()
}

async fn graphql(client: &reqwest::Client, url: &str, query: &str, variables: Value) -> Value {
    let body = json!({ "query": query, "variables": variables });
    let resp = client.post(url).header("X-Shopify-Access-Token", DEFAULT_ACCESS_TOKEN).json(&body).send().await;
    resp.unwrap().json().await.unwrap()
}

/// Exports every order through a bulk operation and returns the JSONL file.
async fn export_orders(store: SimStore) -> Vec<u8> {
    let cfg = ShopifyFakeConfig { bulk_strict: true, ..ShopifyFakeConfig::default() };
    let (server, control) = serve(store, cfg).await.unwrap();
    let url = control.graphql_url("2026-10");
    let client = reqwest::Client::new();
    let run = graphql(&client, &url, queries::BULK_RUN, json!({ "query": queries::orders_bulk("") })).await;
    let id = run.pointer("/data/bulkOperationRunQuery/bulkOperation/id").and_then(Value::as_str).unwrap().to_string();
    let file_url = loop {
        let poll = graphql(&client, &url, queries::BULK_POLL, json!({ "id": id })).await;
        if poll.pointer("/data/node/status").and_then(Value::as_str) == Some("COMPLETED") {
            break poll.pointer("/data/node/url").and_then(Value::as_str).unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let bytes = client.get(&file_url).send().await.unwrap().bytes().await.unwrap().to_vec();
    server.shutdown().await;
    bytes
}

fn bulk_to_parquet(jsonl: &[u8]) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let storage = Storage::from_store(Arc::new(object_store::memory::InMemory::new()), "", "memory://");
    let contract = lifecycle_etl::contract::raw("shopify", "orders").unwrap();
    let cpu_start = cpu_time();
    let start = Instant::now();
    let mut builder = BatchBuilder::new(contract, "bench-run", Utc::now());
    let mut folder = Folder::new(Kind::Orders);
    let (mut lines, mut landed, mut parquet_bytes, mut part) = (0u64, 0u64, 0u64, 0u32);
    let mut land = |record: Value, builder: &mut BatchBuilder| {
        builder.push(&record, None).unwrap();
        if builder.len() >= BATCH_ROWS {
            let f = rt.block_on(write_file(&storage, &format!("p/{part}.parquet"), &builder.finish())).unwrap();
            (landed, parquet_bytes, part) = (landed + f.rows, parquet_bytes + f.bytes, part + 1);
        }
    };
    for line in jsonl.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        lines += 1;
        if let Some(done) = folder.line(serde_json::from_slice(line).unwrap()).unwrap() {
            land(done, &mut builder);
        }
    }
    if let Some(done) = folder.finish() {
        land(done, &mut builder);
    }
    if !builder.is_empty() {
        let f = rt.block_on(write_file(&storage, &format!("p/{part}.parquet"), &builder.finish())).unwrap();
        (landed, parquet_bytes) = (landed + f.rows, parquet_bytes + f.bytes);
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_time().zip(cpu_start).map(|(end, start)| end - start).unwrap_or(wall);
    println!(
        "shopify_sync bulk: {lines} JSONL lines ({:.1} MB) -> {landed} orders, {:.1} MB Parquet",
        jsonl.len() as f64 / 1e6,
        parquet_bytes as f64 / 1e6
    );
    println!(
        "shopify_sync bulk: cpu {cpu:.2} s: {:.0} JSONL lines/s and {:.0} orders/s a core (wall {wall:.2} s)",
        lines as f64 / cpu,
        landed as f64 / cpu
    );
}

async fn paged_sync(store: SimStore, latency_ms: u64, restore: f64, bucket: f64) {
    let cfg = ShopifyFakeConfig { restore_rate: restore, bucket_max: bucket, ..ShopifyFakeConfig::default() };
    let (server, control) = serve(store, cfg).await.unwrap();
    server.faults().set_latency(Some(Duration::from_millis(latency_ms)));
    let out = tempfile::tempdir().unwrap();
    let text = format!(
        "[job]\nname = \"bench\"\nreporting_timezone = \"America/New_York\"\nreporting_currency = \"USD\"\n\
         [storage]\nurl = \"file://{}\"\n[sources.shopify]\nbase_url = \"{}\"\naccess_token_env = \"BENCH_TOKEN\"\n\
         start_date = \"2024-11-01\"\n[sources.shopify.bulk]\nthreshold_days = 100000\n",
        out.path().display(),
        server.base_url()
    );
    let job = Job::parse(&text, std::path::Path::new("bench.toml")).unwrap();
    let secrets = Secrets::default().with("BENCH_TOKEN", DEFAULT_ACCESS_TOKEN);
    let selection =
        SyncSelection { stream: Some("orders".into()), until: Some(control.clock().now()), ..Default::default() };
    let started = Instant::now();
    let result = execute(&job, &secrets, Steps::Sync, &selection, None).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let s = &result.streams["shopify.orders"];
    let costs = control.requests_cost();
    let actual: u64 = costs.iter().filter_map(|c| c.actual).sum();
    let requested: u64 = costs.iter().filter(|c| c.actual.is_some()).map(|c| c.requested).sum();
    let throttled = costs.iter().filter(|c| c.throttled).count();
    let fraction = (actual as f64 - bucket).max(0.0) / secs / restore;
    println!(
        "shopify_sync paged: {} orders in {} requests, {secs:.1} s, {latency_ms} ms latency, bucket {bucket} restoring {restore}/s",
        s.records,
        costs.len()
    );
    println!(
        "shopify_sync paged: {actual} points spent ({requested} requested), {:.0} points/s; {throttled} throttled; \
         fraction of the restore rate {fraction:.2} (the bucket's {bucket} starting points left out)",
        actual as f64 / secs
    );
    server.shutdown().await;
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("shopify_sync: run with `cargo bench --bench shopify_sync`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let jsonl = rt.block_on(export_orders(brand(env("LCE_BENCH_BULK_SCALE", 10))));
    bulk_to_parquet(&jsonl);
    rt.block_on(paged_sync(
        brand(env("LCE_BENCH_PAGED_SCALE", 1)),
        env("LCE_BENCH_LATENCY_MS", 50),
        env("LCE_BENCH_RESTORE", 1000.0),
        env("LCE_BENCH_BUCKET", 2000.0),
    ));
}
