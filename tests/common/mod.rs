//! Shared test harness: a small simulated brand, the fake Klaviyo, job files, raw counts.
#![allow(dead_code)]

pub mod pg;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use chrono::NaiveDate;
use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::fake::FakeServer;
use lifecycle_etl::fake::Limit;
use lifecycle_etl::fake::klaviyo::{KlaviyoFakeConfig, KlaviyoLimits, serve};
use lifecycle_etl::fake::shopify::{DEFAULT_ACCESS_TOKEN, ShopifyFakeConfig};
use lifecycle_etl::pipeline::Steps;
use lifecycle_etl::simulate::model::SimTruth;
use lifecycle_etl::simulate::store::SimStore;
use lifecycle_etl::simulate::{SimConfig, generate};
use lifecycle_etl::storage::Storage;

pub const API_KEY_ENV: &str = "TEST_KLAVIYO_API_KEY";
pub const API_KEY: &str = "pk_test_fake_key_123";

/// A three-month brand, generated once per test binary.
pub fn brand() -> &'static (SimStore, SimTruth) {
    static BRAND: OnceLock<(SimStore, SimTruth)> = OnceLock::new();
    BRAND.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lce-test-brand-{}", std::process::id()));
        let cfg = SimConfig {
            seed: 7,
            scale: 1,
            start_date: NaiveDate::from_ymd_opt(2026, 8, 1).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            causal: Default::default(),
        };
        let truth = generate(&cfg, &dir).expect("brand generates");
        (SimStore::open(&dir).unwrap(), truth)
    })
}

/// The fake's limits in tests: the published ones, except the slow tiers (flows 60/min,
/// campaigns 150/min, reports 2/min), raised so a test run takes seconds; job files raise the
/// client's pacing to match (`TEST_RATE_LIMITS`). The demo keeps every published limit.
pub fn test_limits() -> KlaviyoLimits {
    KlaviyoLimits {
        flows: Limit::new(50, 3000),
        campaigns: Limit::new(50, 3000),
        reports: Limit::new(20, 600),
        ..KlaviyoLimits::REAL
    }
}

pub const TEST_RATE_LIMITS: &str = "[sources.klaviyo.rate_limits.flows]\nburst_per_second = 50\nsteady_per_minute = 3000\n\
[sources.klaviyo.rate_limits.campaigns]\nburst_per_second = 50\nsteady_per_minute = 3000\n\
[sources.klaviyo.rate_limits.reports]\nburst_per_second = 20\nsteady_per_minute = 600\n";

/// The fake Klaviyo's configuration in tests.
pub fn fake_config() -> KlaviyoFakeConfig {
    KlaviyoFakeConfig { api_key: API_KEY.to_string(), limits: Some(test_limits()), ..KlaviyoFakeConfig::default() }
}

/// Starts the fake Klaviyo over the shared brand with the test key.
pub async fn fake_klaviyo() -> FakeServer {
    serve(brand().0.clone(), fake_config()).await.expect("fake Klaviyo starts")
}

/// A job file's text for the fake and a storage URL; `storage_extra` adds `[storage]` keys.
pub fn job_toml(storage_url: &str, klaviyo_url: &str, storage_extra: &str, lock_ttl: u64) -> String {
    format!(
        r#"[job]
name = "testbrand"
reporting_timezone = "America/New_York"
reporting_currency = "USD"
[storage]
url = "{storage_url}"
{storage_extra}
[run]
lock_ttl_seconds = {lock_ttl}
batch_rows = 5000
[sources.klaviyo]
base_url = "{klaviyo_url}"
api_key_env = "{API_KEY_ENV}"
start_date = "2026-08-01"
{TEST_RATE_LIMITS}"#
    )
}

pub fn local_job(dir: &Path, klaviyo_url: &str) -> (Job, PathBuf) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let url = format!("file://{}", data.display());
    let path = dir.join("testbrand.toml");
    std::fs::write(&path, job_toml(&url, klaviyo_url, "", 3)).unwrap();
    (Job::load(&path).unwrap(), path)
}

pub fn secrets() -> Secrets {
    Secrets::default().with(API_KEY_ENV, API_KEY)
}

/// A session with the committed raw tables and every published model registered.
pub async fn published_session(storage: &Storage) -> datafusion::prelude::SessionContext {
    lifecycle_etl::transform::published_session(storage).await.unwrap()
}

/// Runs one scalar query over the committed raw tables and published models.
pub async fn scalar(storage: &Storage, sql: &str) -> i64 {
    let batches: Vec<RecordBatch> = published_session(storage).await.sql(sql).await.unwrap().collect().await.unwrap();
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

/// Every cell of a query's result as text (`NULL` for nulls), row by row.
pub async fn rows(storage: &Storage, sql: &str) -> Vec<Vec<String>> {
    query(&published_session(storage).await, sql).await
}

/// Every cell of a query's result in `ctx` as text (`NULL` for nulls), row by row.
pub async fn query(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Vec<Vec<String>> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let batches: Vec<RecordBatch> = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in &batches {
        let formatters: Vec<_> =
            b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
        for row in 0..b.num_rows() {
            out.push(formatters.iter().map(|f| f.value(row).to_string()).collect());
        }
    }
    out
}

/// What a table holds, independent of when its rows were landed: per table, the row count and a
/// hash of its sorted rows (raw tables: of their distinct primary keys).
pub async fn table_digests(storage: &Storage) -> std::collections::BTreeMap<String, (usize, String)> {
    use sha2::Digest;
    let ctx = published_session(storage).await;
    let mut out = std::collections::BTreeMap::new();
    for (_, c) in lifecycle_etl::contract::all().unwrap() {
        let (table, select) = if c.layer == "raw" {
            if c.primary_key.is_empty() {
                continue;
            }
            let table = format!("raw_{}__{}", c.source.clone().unwrap(), c.name);
            let key = c.primary_key.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ");
            (table.clone(), format!("select distinct {key} from {table}"))
        } else if c.layer == "restricted" {
            continue;
        } else {
            // These say when the winning copy was landed: they differ between any two histories,
            // the copy's content does not.
            let cols = c
                .columns
                .iter()
                .filter(|col| !["_landed_at", "profile_count_as_of", "snapshot_at"].contains(&col.name.as_str()))
                .map(|col| format!("\"{}\"", col.name))
                .collect::<Vec<_>>()
                .join(", ");
            (c.name.clone(), format!("select {cols} from {}", c.name))
        };
        let mut rows: Vec<String> = query(&ctx, &select).await.into_iter().map(|r| r.join("|")).collect();
        rows.sort();
        let mut h = sha2::Sha256::new();
        for r in &rows {
            h.update(r.as_bytes());
            h.update(b"\n");
        }
        out.insert(table, (rows.len(), hex::encode(h.finalize())));
    }
    out
}

/// Lands one run's Shopify records through the landing code and commits them.
pub async fn land(
    storage: &Storage,
    run_id: &str,
    landed_at: &str,
    streams: Vec<(&'static str, Vec<serde_json::Value>)>,
) {
    land_source(storage, "shopify", run_id, landed_at, streams).await
}

/// Lands one run's records of one source through the landing code and commits them.
pub async fn land_source(
    storage: &Storage,
    source: &str,
    run_id: &str,
    landed_at: &str,
    streams: Vec<(&str, Vec<serde_json::Value>)>,
) {
    use lifecycle_etl::landing::{BatchBuilder, write_file};
    let landed_at: chrono::DateTime<chrono::Utc> = landed_at.parse().unwrap();
    let run = lifecycle_etl::manifest::RunWriter::new(storage, run_id);
    for (stream, records) in streams {
        let contract = lifecycle_etl::contract::raw(source, stream).unwrap();
        let mut builder = BatchBuilder::new(contract, run_id, landed_at);
        for r in &records {
            builder.push_raw(&r.to_string(), None).unwrap_or_else(|e| panic!("{stream}: {e}"));
        }
        let mut files = Vec::new();
        if !builder.is_empty() {
            let batch = builder.finish();
            let rel = lifecycle_etl::storage::layout::raw_file(source, stream, landed_at.date_naive(), run_id, 0);
            files.push(write_file(storage, &rel, &batch).await.unwrap());
        }
        run.commit(source, stream, files, None).await.unwrap();
    }
}

/// Runs the whole job (sync, transform, report) over the shared brand from the fake Klaviyo,
/// checks every stream landed, and returns the folder, the job and its storage.
pub async fn run_klaviyo_brand() -> (tempfile::TempDir, Job, Storage) {
    let fake = fake_klaviyo().await;
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = local_job(dir.path(), &fake.base_url());
    let selection = lifecycle_etl::pipeline::SyncSelection::default();
    let out = lifecycle_etl::pipeline::execute(&job, &secrets(), lifecycle_etl::pipeline::Steps::All, &selection, None)
        .await
        .unwrap();
    for (stream, s) in &out.streams {
        assert_eq!(s.status, "ok", "{stream}: {:?}", s.error);
    }
    fake.shutdown().await;
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    (dir, job, storage)
}

/// The checks every successful sync must pass: each record once, nothing missing.
pub async fn assert_complete(storage: &Storage, truth: &SimTruth) {
    let t = &truth.totals;
    assert_eq!(
        scalar(storage, "select count(distinct id) from raw_klaviyo__events").await as u64,
        t.events,
        "raw distinct events"
    );
    assert_eq!(scalar(storage, "select count(*) from stg_klaviyo__events").await as u64, t.events, "staged events");
    assert_eq!(
        scalar(storage, "select count(distinct id) from raw_klaviyo__profiles").await as u64,
        t.profiles,
        "raw profiles"
    );
    assert_eq!(
        scalar(storage, "select count(*) from stg_klaviyo__profiles").await as u64,
        t.profiles,
        "staged profiles"
    );
    assert_eq!(scalar(storage, "select count(*) from stg_klaviyo__metrics").await as u64, t.metrics, "staged metrics");
}

/// Runs the built binary with arguments and extra environment, off the async runtime.
pub async fn run_binary(args: Vec<String>, env: Vec<(String, String)>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_lifecycle-etl"))
            .args(&args)
            .envs(env)
            .env("LOG_FORMAT", "json")
            .output()
            .expect("binary runs")
    })
    .await
    .unwrap()
}

/// A job on the S3 server at `endpoint` (moto, or a proxy before it) under
/// `s3://lce-test/brands/<name>`, reading the fake Klaviyo; `storage_extra` adds `[storage]` keys.
pub fn s3_job(endpoint: &str, klaviyo_url: &str, name: &str, storage_extra: &str) -> (Job, Secrets) {
    let extra = format!(
        "endpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nallow_http = true\npath_style = true\n\
         access_key_id_env = \"TEST_S3_KEY_ID\"\nsecret_access_key_env = \"TEST_S3_SECRET\"\n{storage_extra}"
    );
    let text = job_toml(&format!("s3://lce-test/brands/{name}"), klaviyo_url, &extra, 30);
    let job = Job::parse(&text, Path::new("testbrand.toml")).unwrap();
    let secrets = secrets().with("TEST_S3_KEY_ID", "test").with("TEST_S3_SECRET", "testtest");
    (job, secrets)
}

/// A moto S3 server on a free loopback port, stopped on drop.
pub struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts `moto_server` (from PATH, or `$MOTO_SERVER`) and creates `bucket`.
    pub async fn start(bucket: &str) -> Moto {
        Self::start_with(bucket, &[]).await
    }

    /// [`Moto::start`] with extra environment for the server (moto's settings).
    pub async fn start_with(bucket: &str, env: &[(&str, &str)]) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_string());
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} ({e}); scripts/test.sh installs moto[server]"));
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.put(format!("{}/{bucket}", moto.endpoint)).send().await
                && r.status().is_success()
            {
                return moto;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("moto_server did not come up on {}", moto.endpoint);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The variable the Shopify test jobs read their token from.
pub const SHOPIFY_TOKEN_ENV: &str = "TEST_SHOPIFY_TOKEN";

/// The `[sources.shopify]` tables of a test job: the fake's URL, `credentials` (the
/// `access_token_env` line or the client pair), and fast bulk polling with `timeout_secs`.
pub fn shopify_toml(base_url: &str, credentials: &str, timeout_secs: u64) -> String {
    format!(
        "[sources.shopify]\nbase_url = \"{base_url}\"\n{credentials}\nstart_date = \"2026-08-01\"\n\
         [sources.shopify.bulk]\nthreshold_days = 2\npoll_interval_ms = 20\ntimeout_seconds = {timeout_secs}\n\
         min_window_minutes = 60\n"
    )
}

/// A Shopify-only job named `name` writing under `dir/data`.
pub fn shopify_job(dir: &Path, name: &str, base_url: &str, credentials: &str, timeout_secs: u64) -> Job {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let text = format!(
        "[job]\nname = \"{name}\"\nreporting_timezone = \"America/New_York\"\nreporting_currency = \"USD\"\n\
         [storage]\nurl = \"file://{}\"\n[run]\nlock_ttl_seconds = 3\nbatch_rows = 2000\n{}",
        data.display(),
        shopify_toml(base_url, credentials, timeout_secs)
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    Job::load(&path).unwrap()
}

/// A Shopify-only job with the test token.
pub fn shopify_token_job(dir: &Path, name: &str, base_url: &str) -> Job {
    shopify_job(dir, name, base_url, &format!("access_token_env = \"{SHOPIFY_TOKEN_ENV}\""), 20)
}

/// The simulated brand served by both fakes, and a job on a fresh local folder reading them.
pub struct BothFakes {
    pub klaviyo: FakeServer,
    pub shopify: FakeServer,
    pub control: lifecycle_etl::fake::shopify::ShopifyControl,
    pub job: Job,
    pub secrets: Secrets,
    pub storage: Storage,
    /// Keeps the job's storage folder alive: bind it, or the folder goes.
    pub dir: tempfile::TempDir,
}

pub async fn both_fakes() -> BothFakes {
    use lifecycle_etl::fake::shopify::{DEFAULT_ACCESS_TOKEN, ShopifyFakeConfig};
    let klaviyo = fake_klaviyo().await;
    let (shopify, control) =
        lifecycle_etl::fake::shopify::serve(brand().0.clone(), ShopifyFakeConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = both_sources_job(dir.path(), &klaviyo.base_url(), &shopify.base_url());
    let secrets = secrets().with(SHOPIFY_TOKEN_ENV, DEFAULT_ACCESS_TOKEN);
    let storage = Storage::open(&job.file.storage, &secrets).unwrap();
    BothFakes { klaviyo, shopify, control, job, secrets, storage, dir }
}

/// A job reading both fakes.
pub fn both_sources_job(dir: &Path, klaviyo_url: &str, shopify_url: &str) -> Job {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let text = format!(
        "{}{}",
        job_toml(&format!("file://{}", data.display()), klaviyo_url, "", 3),
        shopify_toml(shopify_url, &format!("access_token_env = \"{SHOPIFY_TOKEN_ENV}\""), 20)
    );
    let path = dir.join("testbrand.toml");
    std::fs::write(&path, text).unwrap();
    Job::load(&path).unwrap()
}

/// A UTC instant's date in the test jobs' reporting timezone.
pub fn ny_date(t: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    t.with_timezone(&chrono_tz::America::New_York).date_naive()
}

/// models.md 1.4 as fct_orders applies it, on a simulated order (the library's truth).
pub fn sim_order_qualifies(o: &lifecycle_etl::simulate::model::SimOrder) -> bool {
    lifecycle_etl::simulate::truth::order_net(o, chrono_tz::America::New_York).1
}

/// Runs `steps` of a job with sources read up to `until` (a fake's clock), checking every stream
/// landed.
pub async fn run_ok(
    job: &Job,
    secrets: &Secrets,
    steps: lifecycle_etl::pipeline::Steps,
    until: chrono::DateTime<chrono::Utc>,
) -> lifecycle_etl::pipeline::Outcome {
    let selection = lifecycle_etl::pipeline::SyncSelection { until: Some(until), ..Default::default() };
    let out = lifecycle_etl::pipeline::execute(job, secrets, steps, &selection, None).await.unwrap();
    for (stream, s) in &out.streams {
        assert_eq!(s.status, "ok", "{stream}: {:?}", s.error);
    }
    out
}

// A whole simulated brand through the pipeline ---------------------------------------------

/// Generates `cfg`, serves it from both fakes, syncs and transforms; returns the truth and the
/// storage (the folder lives as long as the returned guard).
pub async fn run_brand(cfg: &SimConfig) -> (SimTruth, Storage, tempfile::TempDir) {
    run_brand_with_record(cfg, None).await
}

/// [`run_brand`] with an operating record (TOML text) beside the job file.
pub async fn run_brand_with_record(cfg: &SimConfig, record: Option<&str>) -> (SimTruth, Storage, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    if let Ok(keep) = std::env::var("LCE_BRAND_KEEP") {
        // Development: keep the brand's folder for looking at it afterwards.
        let keep = format!("{keep}/{}", cfg.seed);
        println!("brand folder: {keep}");
        let _ = std::fs::remove_dir_all(&keep);
        std::fs::create_dir_all(&keep).unwrap();
        return run_in(cfg, Path::new(&keep), dir, record).await;
    }
    let path = dir.path().to_path_buf();
    run_in(cfg, &path, dir, record).await
}

async fn run_in(
    cfg: &SimConfig,
    root: &Path,
    guard: tempfile::TempDir,
    record: Option<&str>,
) -> (SimTruth, Storage, tempfile::TempDir) {
    let dir = root;
    let truth = generate(cfg, &dir.join("sim")).unwrap();
    let store = SimStore::open(dir.join("sim")).unwrap();
    let klaviyo = lifecycle_etl::fake::klaviyo::serve(store.clone(), fake_config()).await.unwrap();
    let (shopify, control) = lifecycle_etl::fake::shopify::serve(store, ShopifyFakeConfig::default()).await.unwrap();
    let job = brand_job(dir, &klaviyo.base_url(), &shopify.base_url(), cfg.start_date, record, 30);
    let secrets = secrets().with(SHOPIFY_TOKEN_ENV, DEFAULT_ACCESS_TOKEN);
    let storage = Storage::open(&job.file.storage, &secrets).unwrap();
    run_ok(&job, &secrets, Steps::All, control.clock().now()).await;
    (truth, storage, guard)
}

/// The job of a simulated brand served by both fakes, writing under `dir/data`; the file is
/// `dir/simbrand.toml`.
pub fn brand_job(
    dir: &Path,
    klaviyo_url: &str,
    shopify_url: &str,
    start: NaiveDate,
    record: Option<&str>,
    lock_ttl: u64,
) -> Job {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let record_key = match record {
        Some(text) => {
            std::fs::write(dir.join("simbrand-operating-record.toml"), text).unwrap();
            "operating_record = \"simbrand-operating-record.toml\"\n"
        }
        None => "",
    };
    let text = format!(
        "[job]\nname = \"simbrand\"\nreporting_timezone = \"America/New_York\"\nreporting_currency = \"USD\"\n{record_key}\
         [storage]\nurl = \"file://{data}\"\n[run]\nlock_ttl_seconds = {lock_ttl}\nbatch_rows = 20000\n\
         [sources.klaviyo]\nbase_url = \"{klaviyo_url}\"\napi_key_env = \"{API_KEY_ENV}\"\nstart_date = \"{start}\"\n\
         {TEST_RATE_LIMITS}\
         [sources.shopify]\nbase_url = \"{shopify_url}\"\naccess_token_env = \"{SHOPIFY_TOKEN_ENV}\"\n\
         start_date = \"{start}\"\n[sources.shopify.bulk]\nthreshold_days = 2\npoll_interval_ms = 20\n\
         timeout_seconds = 60\nmin_window_minutes = 60\n",
        data = data.display()
    );
    let path = dir.join("simbrand.toml");
    std::fs::write(&path, text).unwrap();
    Job::load(&path).unwrap()
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Every file under `dir`, recursively (none when it does not exist).
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
