//! Transform at scale: a full rebuild of every model over a simulated brand of about a million
//! customers, timed with its peak memory, beside the same SQL run by DuckDB over the same Parquet.
//!
//! 1. The brand (seed 42, 2024-11-01..2026-10-31, like the other benchmarks; scale 500 is about
//!    1.0 M customers) is generated once and cached under CARGO_TARGET_TMPDIR.
//! 2. Its raw data is landed by the real pipeline (`sync`) against the fake Klaviyo and Shopify
//!    with their rate and cost limits off and the client's pacing raised to match: the same
//!    contracts, layout and `_runs/` commits a nightly first run writes (Shopify orders through
//!    bulk operations). Landed once and cached; delete the folder to land again.
//! 3. The release `lifecycle-etl transform --log-format json` runs in a child process over it
//!    after every model folder is removed (a full rebuild: no `prev_` versions). Wall time and
//!    the child's peak RSS (getrusage RUSAGE_CHILDREN, cross-checked with /proc VmHWM) are
//!    printed, and per-model times from its "Model built." log lines.
//! 4. `bench/duckdb/run_sql.py` runs in a child process over the same raw Parquet: the same seeds,
//!    the same SQL model files in the same order, each written to Parquet like DataFusion does;
//!    the Rust models' outputs are read from the DataFusion run. The ratio compares the SQL
//!    models both engines ran (see the printout for what is in and out).
//!
//! `cargo bench --bench transform_scale`. Knobs: LCE_BENCH_TRANSFORM_SCALE (default 500; 5 is a
//! quick check), LCE_BENCH_EVENTS_DAYS (land only the brand's last N days of Klaviyo events;
//! default all), LCE_BENCH_TRANSFORM_MEMORY_MIB (the transform's memory pool,
//! `run.transform_memory_mib`; default unset, unbounded), LCE_BENCH_REPLICATE=K (copy the landed brand's person-level records K times in
//! all with fresh ids, see `replicate.rs`: scale 10 x 50 is about 1.0 M customers and 88 M
//! events, where landing scale 500 through the fakes does not fit in memory), LCE_BENCH_PYTHON (a Python with `duckdb`; default `python3` when it imports
//! duckdb, else a venv under CARGO_TARGET_TMPDIR into which `pip install duckdb==2.0.0` goes),
//! LCE_BENCH_SKIP_DUCKDB=1, LCE_BENCH_REUSE_TRANSFORM=1 (skip the DataFusion run: reuse the last
//! one's log and figures, to rerun only the DuckDB side).

#[path = "common/mod.rs"]
mod common;
#[path = "transform_scale/replicate.rs"]
mod replicate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use common::env;
use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::fake::klaviyo::KlaviyoFakeConfig;
use lifecycle_etl::fake::shopify::ShopifyFakeConfig;
use lifecycle_etl::pipeline::{Steps, SyncSelection, execute};
use lifecycle_etl::simulate::store::SimStore;
use lifecycle_etl::simulate::{SimConfig, generate};
use serde_json::Value;

const TMP: &str = env!("CARGO_TARGET_TMPDIR");
const START: (i32, u32, u32) = (2024, 11, 1);
const END: (i32, u32, u32) = (2026, 10, 31);
const TIMEZONE: &str = "America/New_York";
const CURRENCY: &str = "USD";
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn date((y, m, d): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The simulated brand, generated once per scale (the same folder as the other benchmarks use).
fn brand(scale: u32) -> SimStore {
    let dir = PathBuf::from(TMP).join(format!("bench-brand-{scale}"));
    if let Ok(store) = SimStore::open(&dir)
        && store.truth().is_ok_and(|t| t.scale == scale)
    {
        return store;
    }
    let cfg = SimConfig { seed: 42, scale, start_date: date(START), end_date: date(END), causal: Default::default() };
    let started = Instant::now();
    generate(&cfg, &dir).unwrap();
    println!("transform_scale: generated brand scale {scale} in {:.1} s", started.elapsed().as_secs_f64());
    SimStore::open(&dir).unwrap()
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A job over the fakes with every limit out of the way: landing runs as fast as the code does.
fn sync_job(data: &Path, klaviyo_url: &str, shopify_url: &str, events_backfill_days: Option<i64>) -> String {
    let mut text = format!(
        "[job]\nname = \"bench_transform\"\nreporting_timezone = \"{TIMEZONE}\"\nreporting_currency = \"{CURRENCY}\"\n\
         [storage]\nurl = \"file://{}\"\n[run]\nlock_ttl_seconds = 3600\n\
         [sources.klaviyo]\nbase_url = \"{klaviyo_url}\"\napi_key_env = \"BENCH_KLAVIYO_KEY\"\nstart_date = \"2024-11-01\"\n\
         [sources.shopify]\nbase_url = \"{shopify_url}\"\naccess_token_env = \"BENCH_SHOPIFY_TOKEN\"\nstart_date = \"2024-11-01\"\n\
         [sources.shopify.bulk]\npoll_interval_ms = 50\n",
        data.display()
    );
    for bucket in ["events", "profiles", "metrics", "flows", "campaigns", "lists-segments", "reports"] {
        text.push_str(&format!(
            "[sources.klaviyo.rate_limits.{bucket}]\nburst_per_second = 100000\nsteady_per_minute = 6000000\n"
        ));
    }
    // As jobs/demo.toml: the Reporting API's first run reads one request's worth of history (the
    // fake computes each report from every event of its window, slowly and in memory).
    text.push_str(
        "[sources.klaviyo.streams.flow_series_report]\nbackfill_days = 60\n\
         [sources.klaviyo.streams.campaign_values_report]\nbackfill_days = 90\n",
    );
    if let Some(days) = events_backfill_days {
        text.push_str(&format!("[sources.klaviyo.streams.events]\nbackfill_days = {days}\n"));
    }
    text
}

/// Lands the brand's raw data through the real sync (once; reused while `landed.json` is there).
fn land(store: &SimStore, root: &Path, events_days: Option<i64>) -> BTreeMap<String, u64> {
    let marker = root.join("landed.json");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        println!("transform_scale: reusing landed raw data in {}", root.display());
        return serde_json::from_str(&text).unwrap();
    }
    let _ = std::fs::remove_dir_all(root);
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // The first run's window starts at `start_date` or `backfill_days` before the run's start
    // (wall clock); the brand ends on END, so the cap counts from there.
    let backfill = events_days.map(|d| d + (Utc::now().date_naive() - date(END)).num_days().max(0) + 1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let streams = rt.block_on(async {
        let kcfg = KlaviyoFakeConfig { rate_limits: false, ..KlaviyoFakeConfig::default() };
        let key = kcfg.api_key.clone();
        let klaviyo = lifecycle_etl::fake::klaviyo::serve(store.clone(), kcfg).await.unwrap();
        let scfg = ShopifyFakeConfig {
            cost_limits: false,
            restore_rate: 1e9,
            bucket_max: 1e9,
            bulk_poll_steps: 1,
            ..ShopifyFakeConfig::default()
        };
        let token = scfg.access_token.clone();
        let (shopify, _control) = lifecycle_etl::fake::shopify::serve(store.clone(), scfg).await.unwrap();
        let text = sync_job(&data, &klaviyo.base_url(), &shopify.base_url(), backfill);
        let job = Job::parse(&text, Path::new("bench_transform.toml")).unwrap();
        let secrets = Secrets::default().with("BENCH_KLAVIYO_KEY", key).with("BENCH_SHOPIFY_TOKEN", token);
        let started = Instant::now();
        let outcome = execute(&job, &secrets, Steps::Sync, &SyncSelection::default(), None).await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        klaviyo.shutdown().await;
        shopify.shutdown().await;
        let total: u64 = outcome.streams.values().map(|s| s.records).sum();
        let bytes: u64 = outcome.streams.values().map(|s| s.bytes).sum();
        println!(
            "transform_scale: landed {} records ({:.0} MB Parquet) in {secs:.0} s ({:.0} records/s) by the real sync",
            thousands(total),
            bytes as f64 / 1e6,
            total as f64 / secs
        );
        for (name, s) in &outcome.streams {
            assert!(s.status == "ok", "stream {name} {}: {:?}", s.status, s.error);
        }
        outcome.streams.iter().map(|(k, s)| (k.clone(), s.records)).collect::<BTreeMap<_, _>>()
    });
    std::fs::write(&marker, serde_json::to_string_pretty(&streams).unwrap()).unwrap();
    streams
}

/// The landing under `base` copied `copies` times into `dest` (once; reused while its marker is
/// there). Rows per stream, copies included.
fn replicated(base: &Path, dest: &Path, copies: u32) -> BTreeMap<String, u64> {
    let marker = dest.join("landed.json");
    if let Ok(text) = std::fs::read_to_string(&marker) {
        println!("transform_scale: reusing the replicated landing in {}", dest.display());
        return serde_json::from_str(&text).unwrap();
    }
    let started = Instant::now();
    let counts = replicate::replicate(&base.join("data"), &dest.join("data"), copies, 2);
    println!("transform_scale: replicated the landing {copies} times in {:.0} s", started.elapsed().as_secs_f64());
    std::fs::write(&marker, serde_json::to_string_pretty(&counts).unwrap()).unwrap();
    counts
}

/// Rows per model against the base landing's own full rebuild (its `transform.log`, when the
/// benchmark ran there): models that count people, orders or events should scale by `copies`.
fn compare_with_base(base: &Path, df: &BTreeMap<String, Built>, copies: u32) {
    let Some(base_built) = model_rows(&base.join("transform.log")) else {
        println!("transform_scale: no full rebuild of the base landing to compare row counts with");
        return;
    };
    println!(
        "rows per model against the base landing's rebuild (x{copies} expected where rows count people, orders, events):"
    );
    for (name, b) in df {
        if let Some(rows) = base_built.get(name) {
            let ratio = if *rows == 0 { f64::NAN } else { b.rows as f64 / *rows as f64 };
            println!("  {name:<42} {:>12} / {:>10} = {ratio:>7.2}", b.rows, rows);
        }
    }
}

/// getrusage(RUSAGE_CHILDREN) maximum resident set in bytes: the largest child reaped so far.
fn children_max_rss() -> Option<u64> {
    // struct rusage on 64-bit Linux: two timevals (4 x i64), then ru_maxrss (KiB) and 13 more longs.
    unsafe extern "C" {
        fn getrusage(who: i32, usage: *mut i64) -> i32;
    }
    let mut usage = [0i64; 18];
    // SAFETY: `usage` is as large as struct rusage on 64-bit Linux; RUSAGE_CHILDREN is -1.
    let rc = unsafe { getrusage(-1, usage.as_mut_ptr()) };
    (rc == 0).then(|| usage[4] as u64 * 1024)
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

/// Runs a command to completion, its output to files; wall seconds and the last VmHWM seen.
fn run_child(cmd: &mut Command, out: &Path, err: &Path) -> (f64, u64, std::process::ExitStatus) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::from(std::fs::File::create(out).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(err).unwrap()))
        .spawn()
        .unwrap();
    let mut hwm = 0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        hwm = hwm.max(vm_hwm(child.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    };
    (started.elapsed().as_secs_f64(), hwm, status)
}

struct Built {
    layer: String,
    rows: u64,
    ms: u64,
}

/// The "Model built." lines of a transform's JSON log, and the order models were built in.
fn parse_log(log: &str) -> (BTreeMap<String, Built>, Vec<String>) {
    let mut built = BTreeMap::new();
    let mut order = Vec::new();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        if v.get("message").and_then(Value::as_str) != Some("Model built.") {
            continue;
        }
        let field = |k: &str| v.get(k).or_else(|| v.pointer(&format!("/fields/{k}")));
        let name = field("model").and_then(Value::as_str).unwrap_or_default().to_string();
        let layer = field("layer").and_then(Value::as_str).unwrap_or_default().to_string();
        let rows = field("rows").and_then(Value::as_u64).unwrap_or(0);
        let ms = field("elapsed_ms").and_then(Value::as_u64).unwrap_or(0);
        order.push(name.clone());
        built.insert(name, Built { layer, rows, ms });
    }
    (built, order)
}

fn model_rows(log: &Path) -> Option<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string(log).ok()?;
    Some(parse_log(&text).0.into_iter().map(|(k, b)| (k, b.rows)).collect())
}

fn datafusion_transform(root: &Path) -> (BTreeMap<String, Built>, Vec<String>) {
    let (out, err, measured) =
        (root.join("transform.stdout"), root.join("transform.log"), root.join("datafusion.json"));
    let reuse = std::env::var("LCE_BENCH_REUSE_TRANSFORM").is_ok_and(|v| v == "1");
    let (wall, rss, hwm) = match std::fs::read_to_string(&measured).ok().filter(|_| reuse) {
        Some(text) => {
            println!(
                "transform_scale: reusing the last DataFusion run's log and figures (LCE_BENCH_REUSE_TRANSFORM=1)"
            );
            let v: Value = serde_json::from_str(&text).unwrap();
            (v["wall"].as_f64().unwrap(), v["rss"].as_u64().unwrap(), v["hwm"].as_u64().unwrap())
        }
        None => {
            let data = root.join("data");
            // A full rebuild: no model versions (so no `prev_` tables), and no lock a killed run left.
            for dir in ["staging", "intermediate", "marts", "restricted", "reports", "_locks"] {
                let _ = std::fs::remove_dir_all(data.join(dir));
            }
            let _ = std::fs::remove_file(&measured);
            let job = root.join("transform.toml");
            std::fs::write(
                &job,
                format!(
                    "[job]\nname = \"bench_transform\"\nreporting_timezone = \"{TIMEZONE}\"\n\
                     reporting_currency = \"{CURRENCY}\"\n[storage]\nurl = \"file://{}\"\n[run]\nlock_ttl_seconds = 3600\n{}",
                    data.display(),
                    std::env::var("LCE_BENCH_TRANSFORM_MEMORY_MIB")
                        .map(|m| format!("transform_memory_mib = {m}\n"))
                        .unwrap_or_default(),
                ),
            )
            .unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifecycle-etl"));
            cmd.args(["--log-format", "json", "--no-progress", "transform", "--job"]).arg(&job);
            let (wall, hwm, status) = run_child(&mut cmd, &out, &err);
            let rss = children_max_rss().unwrap_or(hwm);
            if !status.success() {
                let log = std::fs::read_to_string(&err).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                panic!("transform failed ({status}); {}:\n{}", err.display(), tail.join("\n"));
            }
            let figures = serde_json::json!({ "wall": wall, "rss": rss, "hwm": hwm });
            std::fs::write(&measured, figures.to_string()).unwrap();
            (wall, rss, hwm)
        }
    };
    let (built, order) = parse_log(&std::fs::read_to_string(&err).unwrap_or_default());
    let models_s = built.values().map(|b| b.ms).sum::<u64>() as f64 / 1e3;
    println!(
        "datafusion: full rebuild of {} models wall {wall:.1} s (process: start, register, build, write, contract checks), \
         peak RSS {:.2} GiB (VmHWM seen {:.2} GiB); models {models_s:.1} s",
        built.len(),
        rss as f64 / GIB,
        hwm as f64 / GIB
    );
    (built, order)
}

fn python() -> String {
    if let Ok(p) = std::env::var("LCE_BENCH_PYTHON") {
        return p;
    }
    let has_duckdb = |py: &str| {
        Command::new(py).args(["-c", "import duckdb"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    };
    if has_duckdb("python3") {
        return "python3".into();
    }
    let venv = PathBuf::from(TMP).join("duckdb-venv");
    let py = venv.join("bin/python").display().to_string();
    if !has_duckdb(&py) {
        println!("transform_scale: installing duckdb into {} (`pip install duckdb==2.0.0`)", venv.display());
        let ok = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(&py)
                .args(["-m", "pip", "install", "-q", "duckdb==2.0.0"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "cannot install duckdb: `pip install duckdb` and set LCE_BENCH_PYTHON to that python");
    }
    py
}

fn duckdb(root: &Path, df: &BTreeMap<String, Built>, order: &[String]) {
    let py = python();
    let result = root.join("duckdb.json");
    let _ = std::fs::remove_file(&result);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/duckdb/run_sql.py");
    let mut cmd = Command::new(&py);
    cmd.arg(&script)
        .arg("--data")
        .arg(root.join("data"))
        .arg("--work")
        .arg(root.join("duckdb"))
        .arg("--out")
        .arg(&result)
        .args(["--timezone", TIMEZONE, "--currency", CURRENCY]);
    let (wall, hwm, status) = run_child(&mut cmd, &root.join("duckdb.stdout"), &root.join("duckdb.log"));
    if !status.success() {
        let log = std::fs::read_to_string(root.join("duckdb.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        panic!("run_sql.py failed ({status}):\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    let version = r["version"].as_str().unwrap_or("?");
    let maxrss = r["maxrss_bytes"].as_u64().unwrap_or(hwm);
    let mut duck: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for m in r["models"].as_array().into_iter().flatten() {
        duck.insert(
            m["name"].as_str().unwrap().to_string(),
            (m["seconds"].as_f64().unwrap(), m["rows"].as_u64().unwrap()),
        );
    }
    let excluded: Vec<String> = r["excluded"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| format!("{} ({})", e["name"].as_str().unwrap_or("?"), e["reason"].as_str().unwrap_or("?")))
        .collect();
    let both: Vec<&String> = order.iter().filter(|m| duck.contains_key(*m)).collect();
    let df_s: f64 = both.iter().map(|m| df[*m].ms as f64 / 1e3).sum();
    let duck_s: f64 = both.iter().map(|m| duck[*m].0).sum();
    println!(
        "duckdb {version}: process wall {wall:.1} s (start, register raw + seeds + Rust outputs, {} SQL models), peak RSS {:.2} GiB",
        duck.len(),
        maxrss as f64 / GIB
    );
    println!(
        "datafusion: the same {} SQL models {df_s:.1} s (execute, write Parquet zstd, contract checks); \
         duckdb: {duck_s:.1} s (execute, write Parquet zstd, the same contract checks)",
        both.len()
    );
    println!("ratio datafusion/duckdb: {:.2} (target <= 1.0)", df_s / duck_s.max(1e-9));
    if !excluded.is_empty() {
        println!("excluded from both sides: {}", excluded.join("; "));
    }
    println!("per model (layer, rows datafusion/duckdb, seconds datafusion/duckdb, ratio):");
    for m in order {
        let b = &df[m];
        match duck.get(m) {
            Some((s, rows)) => println!(
                "  {:<42} {:<12} {:>12}/{:<12} {:>8.2}/{:<8.2} {:>6.2}{}",
                m,
                b.layer,
                b.rows,
                rows,
                b.ms as f64 / 1e3,
                s,
                b.ms as f64 / 1e3 / s.max(1e-9),
                if *rows == b.rows { "" } else { "  rows differ" }
            ),
            None => {
                println!("  {:<42} {:<12} {:>12}/{:<12} {:>8.2}/{:<8}", m, b.layer, b.rows, "-", b.ms as f64 / 1e3, "-")
            }
        }
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("transform_scale: run with `cargo bench --bench transform_scale`");
        return;
    }
    let scale: u32 = env("LCE_BENCH_TRANSFORM_SCALE", 500);
    let events_days: Option<i64> = std::env::var("LCE_BENCH_EVENTS_DAYS").ok().and_then(|v| v.parse().ok());
    let store = brand(scale);
    let t = store.truth().unwrap().totals;
    let root = PathBuf::from(TMP).join(match events_days {
        Some(d) => format!("transform-scale-{scale}-events{d}d"),
        None => format!("transform-scale-{scale}"),
    });
    let mut landed = land(&store, &root, events_days);
    let copies: u32 = env("LCE_BENCH_REPLICATE", 1);
    let base_root = root.clone();
    let root = if copies > 1 {
        let dest = PathBuf::from(format!("{}x{copies}", root.display()));
        landed = replicated(&root, &dest, copies);
        dest
    } else {
        root
    };
    let got = |k: &str| landed.get(k).copied().unwrap_or(0);
    println!(
        "transform_scale: scale {scale}: customers {} orders {} events {} (simulated); landed customers {} orders {} \
         events {}{} profiles {}",
        thousands(t.customers),
        thousands(t.orders),
        thousands(t.events),
        thousands(got("shopify.customers")),
        thousands(got("shopify.orders")),
        thousands(got("klaviyo.events")),
        events_days.map(|d| format!(" (last {d} days only)")).unwrap_or_default(),
        thousands(got("klaviyo.profiles")),
    );
    if copies > 1 {
        println!(
            "transform_scale: the landing above copied {copies} times with fresh ids (LCE_BENCH_REPLICATE): \
             customers {} orders {} events {} profiles {}",
            thousands(got("shopify.customers")),
            thousands(got("shopify.orders")),
            thousands(got("klaviyo.events")),
            thousands(got("klaviyo.profiles")),
        );
    }
    let (df, order) = datafusion_transform(&root);
    if copies > 1 {
        compare_with_base(&base_root, &df, copies);
    }
    if std::env::var("LCE_BENCH_SKIP_DUCKDB").is_ok_and(|v| v == "1") {
        return;
    }
    duckdb(&root, &df, &order);
}
