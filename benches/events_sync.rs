//! Events sync against the fake Klaviyo with ~150 ms injected latency and the real rate limits
//! (events: 350/s burst, 3500/min steady, 1000 per page). Prints events/s as a fraction of the
//! ceiling (requests/min × page size = 58,333 events/s); target ≥ 0.9.
//!
//! `cargo bench --bench events_sync`. Knobs: LCE_BENCH_SCALE (brand size, default 20),
//! LCE_BENCH_LATENCY_MS (150), LCE_BENCH_WINDOW_DAYS and LCE_BENCH_CONCURRENCY (default: the
//! stream's own, 3 days and 24).
//! The first minute of Klaviyo's steady window allows a burst, so runs shorter than a few
//! minutes can read above the long-run ceiling; the printed duration says how long it ran.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::env;
use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::fake::klaviyo::{KlaviyoFakeConfig, serve};
use lifecycle_etl::pipeline::{Steps, SyncSelection, execute};
use lifecycle_etl::simulate::store::SimStore;
use lifecycle_etl::simulate::{SimConfig, generate};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("events_sync: run with `cargo bench --bench events_sync`");
        return;
    }
    let scale: u32 = env("LCE_BENCH_SCALE", 20);
    let latency_ms: u64 = env("LCE_BENCH_LATENCY_MS", 150);
    // Unset: the stream's own defaults (3-day windows, 24 in flight).
    let window_days: Option<u32> = std::env::var("LCE_BENCH_WINDOW_DAYS").ok().and_then(|v| v.parse().ok());
    let concurrency: Option<usize> = std::env::var("LCE_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();

    let brand_dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-brand-{scale}"));
    let store = match SimStore::open(&brand_dir).and_then(|s| s.truth().map(|t| (s, t))) {
        Ok((s, t)) if t.scale == scale => s,
        _ => {
            let started = Instant::now();
            let cfg = SimConfig {
                seed: 42,
                scale,
                start_date: NaiveDate::from_ymd_opt(2024, 11, 1).unwrap(),
                end_date: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
                causal: Default::default(),
            };
            generate(&cfg, &brand_dir).unwrap();
            println!("events_sync: generated brand scale {scale} in {:.1} s", started.elapsed().as_secs_f64());
            SimStore::open(&brand_dir).unwrap()
        }
    };
    let events = store.truth().unwrap().totals.events;

    rt.block_on(async {
        let fake = serve(store, KlaviyoFakeConfig::default()).await.unwrap();
        fake.faults().set_latency(Some(Duration::from_millis(latency_ms)));
        let out = tempfile::tempdir().unwrap();
        let text = format!(
            "[job]\nname = \"bench\"\nreporting_timezone = \"America/New_York\"\nreporting_currency = \"USD\"\n\
             [storage]\nurl = \"file://{}\"\n[sources.klaviyo]\nbase_url = \"{}\"\napi_key_env = \"BENCH_KEY\"\n\
             start_date = \"2024-11-01\"\n[sources.klaviyo.streams.events]\n{}{}",
            out.path().display(),
            fake.base_url(),
            window_days.map(|d| format!("window_days = {d}\n")).unwrap_or_default(),
            concurrency.map(|c| format!("concurrency = {c}\n")).unwrap_or_default(),
        );
        let job = Job::parse(&text, std::path::Path::new("bench.toml")).unwrap();
        let secrets = Secrets::default().with("BENCH_KEY", KlaviyoFakeConfig::default().api_key);
        let selection = SyncSelection { stream: Some("events".into()), ..Default::default() };
        let started = Instant::now();
        let result = execute(&job, &secrets, Steps::Sync, &selection, None).await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        let s = &result.streams["klaviyo.events"];
        let ceiling = 3500.0 / 60.0 * 1000.0;
        let rate = s.records as f64 / secs;
        println!(
            "events_sync: scale {scale}, {} events ({events} simulated), {} pages, {latency_ms} ms latency, \
             {}-day windows x {} in flight",
            s.records,
            s.pages,
            window_days.map_or("default (3)".to_string(), |d| d.to_string()),
            concurrency.map_or("default (24)".to_string(), |c| c.to_string()),
        );
        println!(
            "events_sync: {secs:.1} s, {rate:.0} events/s, {:.1} requests/s; ceiling {ceiling:.0} events/s -> fraction {:.2} (target >= 0.9)",
            s.pages as f64 / secs,
            rate / ceiling
        );
        println!("events_sync: mean page fill {:.0} events of 1000", s.records as f64 / s.pages.max(1) as f64);
        let log = fake.requests();
        let throttled = log.iter().filter(|r| r.status == 429).count();
        let served: Vec<f64> = log.iter().filter(|r| r.status == 200).map(|r| r.elapsed.as_secs_f64() * 1000.0).collect();
        let mean_ms = served.iter().sum::<f64>() / served.len().max(1) as f64;
        println!("events_sync: {} requests, {throttled} answered 429, mean server time {mean_ms:.0} ms (latency included)", log.len());
        fake.shutdown().await;
    });
}
