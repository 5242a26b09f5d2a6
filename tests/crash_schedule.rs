//! Runs killed with SIGKILL at seeded random moments, each followed by a normal run of the same
//! step: in the end the raw tables hold the same distinct records, and staging, intermediate and
//! marts the same rows (less the landing times), as a reference that ran the same steps unkilled.
//!
//! A two-month brand is served by both fakes; their clock moves forward before every sync so
//! each run has new data to land and transform. Each kill is drawn within the duration of the
//! step's latest normal run (a run that finishes first counts as normal and the kill is drawn
//! again); every kill must land. `LCE_CRASH_SEED` replays a schedule (the seed is printed),
//! `LCE_CRASH_RUNS` sets the number of kills (default 20) and `LCE_CRASH_TRANSFORM_EVERY` which
//! of them hit a transform (default every 10th). The 50 kills half in transforms is
//! `LCE_CRASH_RUNS=50 LCE_CRASH_TRANSFORM_EVERY=2`: a debug transform of this brand takes about
//! 50 s (sync about 2 s), so that schedule takes about an hour; the default about 6 minutes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use lifecycle_etl::simulate::SimConfig;
use lifecycle_etl::storage::Storage;
use rand::{Rng, SeedableRng};

const DEFAULT_SEED: u64 = 20_261_208;
const DEFAULT_RUNS: usize = 20;
const DEFAULT_TRANSFORM_EVERY: usize = 10;
/// The job's lock lease: a killed run's lock is taken over this long after the kill.
const LEASE_SECS: u64 = 1;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `lifecycle-etl <step>` on the job, its log in `log`; killed after `kill_after` when given.
/// Returns whether it was killed (it may finish first) and its exit status.
fn run(step: &Step, job: &Path, log: &Path, kill_after: Option<Duration>) -> (bool, std::process::ExitStatus) {
    let out = std::fs::File::create(log).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lifecycle-etl"))
        .args([step.name, "--job", &job.display().to_string()])
        .args(step.until.iter().flat_map(|t| ["--until".to_string(), t.to_rfc3339()]))
        .env(API_KEY_ENV, API_KEY)
        .env(SHOPIFY_TOKEN_ENV, lifecycle_etl::fake::shopify::DEFAULT_ACCESS_TOKEN)
        .env("LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(out)
        .spawn()
        .expect("binary runs");
    let Some(delay) = kill_after else { return (false, child.wait().unwrap()) };
    let started = Instant::now();
    while started.elapsed() < delay {
        if let Some(status) = child.try_wait().unwrap() {
            return (false, status);
        }
        std::thread::sleep(Duration::from_millis(5).min(delay.saturating_sub(started.elapsed())));
    }
    // `Child::kill` is SIGKILL on unix: no unwinding, no cleanup, the lock left behind.
    child.kill().unwrap();
    (true, child.wait().unwrap())
}

/// A subcommand; syncs read up to the fakes' clock (the brand's "now").
#[derive(Clone, Copy)]
struct Step {
    name: &'static str,
    until: Option<chrono::DateTime<chrono::Utc>>,
}

async fn run_async(
    step: Step,
    job: &Path,
    log: &Path,
    kill_after: Option<Duration>,
) -> (bool, std::process::ExitStatus) {
    let (job, log) = (job.to_path_buf(), log.to_path_buf());
    tokio::task::spawn_blocking(move || run(&step, &job, &log, kill_after)).await.unwrap()
}

/// Runs `step` normally; panics with its log when it fails.
async fn run_normally(step: Step, job: &Path, log: &Path) -> Duration {
    let t = Instant::now();
    let (_, status) = run_async(step, job, log, None).await;
    assert!(status.success(), "{} failed: {}", step.name, std::fs::read_to_string(log).unwrap_or_default());
    t.elapsed()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Sync,
    Transform,
}

/// The seeded schedule: which step each kill hits and after what fraction of that step's
/// measured duration.
fn schedule(seed: u64, runs: usize, transform_every: usize) -> Vec<(Phase, f64)> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..runs)
        .map(|i| {
            let phase = if (i + 1) % transform_every == 0 { Phase::Transform } else { Phase::Sync };
            (phase, rng.random_range(0.0..1.0))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "open: fct_order_lines differs from the unkilled reference (same rows, other values); \
            see the issue 10 report before enabling"]
async fn killed_runs_end_where_a_clean_run_ends() {
    let seed: u64 = env_or("LCE_CRASH_SEED", DEFAULT_SEED);
    let runs: usize = env_or("LCE_CRASH_RUNS", DEFAULT_RUNS);
    let transform_every: usize = env_or("LCE_CRASH_TRANSFORM_EVERY", DEFAULT_TRANSFORM_EVERY);
    println!("crash schedule: LCE_CRASH_SEED={seed} LCE_CRASH_RUNS={runs}");
    let started = Instant::now();

    let root = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        seed: 3,
        scale: 1,
        start_date: date(2026, 9, 1),
        end_date: date(2026, 10, 31),
        causal: Default::default(),
    };
    let truth = lifecycle_etl::simulate::generate(&cfg, &root.path().join("sim")).unwrap();
    println!("brand: {} customers, {} events", truth.totals.profiles, truth.totals.events);
    let store = lifecycle_etl::simulate::store::SimStore::open(root.path().join("sim")).unwrap();
    let klaviyo = lifecycle_etl::fake::klaviyo::serve(store.clone(), fake_config()).await.unwrap();
    let (shopify, control) =
        lifecycle_etl::fake::shopify::serve(store, lifecycle_etl::fake::shopify::ShopifyFakeConfig::default())
            .await
            .unwrap();
    let end = control.clock().now();
    let set_clock = |t| {
        klaviyo.clock().set(t);
        control.clock().set(t);
    };
    let job = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let job = brand_job(&dir, &klaviyo.base_url(), &shopify.base_url(), cfg.start_date, None, LEASE_SECS);
        let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
        (dir.join("simbrand.toml"), storage, dir)
    };

    // The reference: the same syncs and transforms at the same clock, none killed (models that
    // keep state from run to run depend on the history of runs, not only on the data). Their
    // durations bound the first kills' delays.
    let kills = schedule(seed, runs, transform_every);
    let first = end - chrono::Duration::days(30);
    let syncs = kills.iter().filter(|(p, _)| *p == Phase::Sync).count().max(1) as i32;
    let step = (end - first) / syncs + chrono::Duration::seconds(1);
    println!("clock: {first} to {end}, {step} before each sync");
    let sync_until = |t| Step { name: "sync", until: Some(t) };
    let transform = Step { name: "transform", until: None };
    let (clean_job, clean, clean_dir) = job("clean");
    let (mut t_sync, mut t_transform) = (Duration::ZERO, Duration::ZERO);
    let mut clock = first;
    for (i, (phase, _)) in kills.iter().enumerate() {
        let log = clean_dir.join(format!("run-{i:02}.log"));
        if *phase == Phase::Sync {
            clock = (clock + step).min(end);
            set_clock(clock);
            t_sync = t_sync.max(run_normally(sync_until(clock), &clean_job, &log).await);
        } else {
            t_transform = t_transform.max(run_normally(transform, &clean_job, &log).await);
        }
    }
    if kills.last().is_none_or(|(p, _)| *p == Phase::Sync) {
        t_transform = run_normally(transform, &clean_job, &clean_dir.join("last-transform.log")).await;
    }
    println!("reference: longest sync {t_sync:?}, transform {t_transform:?}; {:?}", started.elapsed());
    let want = table_digests(&clean).await;

    let (crash_job, crashed, crash_dir) = job("crash");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9);
    let mut clock = first;
    let mut landed = BTreeMap::<&str, usize>::new();
    for (i, (phase, at)) in kills.iter().enumerate() {
        let (run_step, measured) = match phase {
            Phase::Sync => {
                clock = (clock + step).min(end);
                set_clock(clock);
                (sync_until(clock), t_sync)
            }
            Phase::Transform => (transform, t_transform),
        };
        let name = run_step.name;
        // A run faster than the one measured may finish before its kill: it counts as a normal
        // run, and the kill is drawn again within the time it took.
        let (mut measured, mut at) = (measured, *at);
        for attempt in 0.. {
            let delay = measured.mul_f64(at);
            let log = crash_dir.join(format!("kill-{i:02}-{attempt}.log"));
            let t = Instant::now();
            let (killed, status) = run_async(run_step, &crash_job, &log, Some(delay)).await;
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let (streams, models) = (text.matches("Stream finished.").count(), text.matches("Model built.").count());
            println!("kill {i:02}: {name} after {delay:?}: {status}; {streams} streams, {models} models done");
            if killed {
                *landed.entry(name).or_default() += 1;
                break;
            }
            assert!(status.success() && attempt < 3, "{name} run {i} failed or kept finishing: {text}");
            (measured, at) = (t.elapsed(), rng.random_range(0.0..1.0));
        }
        // The lease runs out at most LEASE_SECS after the killed run's last renewal.
        tokio::time::sleep(Duration::from_millis(LEASE_SECS * 1000 + 100)).await;
        // The next kill of this step is drawn within the duration of its latest normal run.
        let took = run_normally(run_step, &crash_job, &crash_dir.join(format!("after-{i:02}.log"))).await;
        *(if *phase == Phase::Sync { &mut t_sync } else { &mut t_transform }) = took;
    }
    assert_eq!(clock, end, "the syncs reached the brand's end");
    if kills.last().is_none_or(|(p, _)| *p == Phase::Sync) {
        run_normally(transform, &crash_job, &crash_dir.join("last-transform.log")).await;
    }
    let got = table_digests(&crashed).await;
    println!("kills that landed: {landed:?}; total {:?}", started.elapsed());
    for (table, w) in &want {
        assert_eq!(got.get(table), Some(w), "{table}: (rows, hash of sorted rows) after the kills vs a clean run");
    }
    assert_eq!(got.len(), want.len());
    assert_eq!(landed.values().sum::<usize>(), kills.len(), "every scheduled kill landed inside its run: {landed:?}");
}
