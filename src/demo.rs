//! `demo`: the embedded default. Generates the simulated brand, serves it through the fake APIs
//! on 127.0.0.1, and runs the same code path as `run` into a local folder. No keys, no network
//! beyond loopback.

pub mod verify;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::config::{Job, Secrets};
use crate::error::{Error, Result};
use crate::pipeline::{self, Outcome, Steps, SyncSelection};
use crate::simulate::{self, SimConfig, store::SimStore};

/// The demo's job file, embedded so the binary runs it from anywhere.
pub const DEMO_JOB: &str = include_str!("../jobs/demo.toml");
/// The demo job's operating record (its `job.operating_record`), embedded with it.
pub const DEMO_OPERATING_RECORD: &str = include_str!("../jobs/demo-operating-record.toml");

/// The simulated period: fixed, so a demo is reproducible whatever day it runs.
pub const SIM_START: (i32, u32, u32) = (2024, 11, 1);
pub const SIM_END: (i32, u32, u32) = (2026, 10, 31);

/// What the demo produced.
#[derive(Debug)]
pub struct DemoResult {
    pub storage_dir: PathBuf,
    pub outcome: Outcome,
    /// The marts' figures beside the simulator's ([`verify`]), all equal.
    pub checked: Vec<verify::Figure>,
}

/// The simulator settings of a demo.
pub fn sim_config(seed: u64, scale: u32) -> SimConfig {
    let d = |(y, m, d): (i32, u32, u32)| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
    SimConfig { seed, scale, start_date: d(SIM_START), end_date: d(SIM_END), causal: Default::default() }
}

/// Generates the brand into `dir/sim` unless the same one is already there.
pub fn ensure_brand(dir: &Path, cfg: &SimConfig) -> Result<SimStore> {
    let sim_dir = dir.join("sim");
    if let Ok(store) = SimStore::open(&sim_dir)
        && let Ok(truth) = store.truth()
        && truth.seed == cfg.seed
        && truth.scale == cfg.scale
    {
        return Ok(store);
    }
    tracing::info!(seed = cfg.seed, scale = cfg.scale, "Generating the simulated brand.");
    simulate::generate(cfg, &sim_dir).map_err(|e| Error::io("cannot generate the simulated brand", e))?;
    SimStore::open(&sim_dir).map_err(|e| Error::io("cannot open the simulated brand", e))
}

/// The demo job pointed at the fake Klaviyo and Shopify and a local storage folder.
pub fn demo_job(storage_dir: &Path, klaviyo_url: &str, shopify_url: &str) -> Result<Job> {
    let mut job = Job::parse(DEMO_JOB, Path::new("jobs/demo.toml"))?;
    job.operating_record = Some(crate::operating_record::OperatingRecord::parse(
        DEMO_OPERATING_RECORD,
        "jobs/demo-operating-record.toml",
    )?);
    let url = url::Url::from_directory_path(storage_dir)
        .map_err(|_| Error::config(format!("demo folder {} must be absolute", storage_dir.display())))?;
    job.file.storage.url = url.to_string().trim_end_matches('/').to_string();
    if let Some(k) = job.file.sources.klaviyo.as_mut() {
        k.base_url = klaviyo_url.to_string();
    }
    if let Some(s) = job.file.sources.shopify.as_mut() {
        s.base_url = shopify_url.to_string();
    }
    Ok(job)
}

/// Runs the whole demo.
pub async fn run(dir: &Path, seed: u64, scale: u32) -> Result<DemoResult> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let dir = dir.canonicalize().map_err(|e| Error::io(format!("cannot resolve {}", dir.display()), e))?;
    let cfg = sim_config(seed, scale);
    let brand = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || ensure_brand(&dir, &cfg))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
    };
    let fake_cfg = crate::fake::klaviyo::KlaviyoFakeConfig::default();
    let api_key = fake_cfg.api_key.clone();
    let klaviyo = crate::fake::klaviyo::serve(brand.clone(), fake_cfg)
        .await
        .map_err(|e| Error::io("cannot start the fake Klaviyo", e))?;
    let shopify_cfg = crate::fake::shopify::ShopifyFakeConfig::default();
    let token = shopify_cfg.access_token.clone();
    let (shopify, _control) = crate::fake::shopify::serve(brand.clone(), shopify_cfg)
        .await
        .map_err(|e| Error::io("cannot start the fake Shopify", e))?;
    let storage_dir = dir.join("data");
    let job = demo_job(&storage_dir, &klaviyo.base_url(), &shopify.base_url())?;
    let api_key_env = job.file.sources.klaviyo.as_ref().map(|k| k.api_key_env.clone()).unwrap_or_default();
    let token_env = job.file.sources.shopify.as_ref().and_then(|s| s.access_token_env.clone()).unwrap_or_default();
    let secrets = Secrets::default().with(api_key_env, api_key).with(token_env, token);
    let result = pipeline::execute(&job, &secrets, Steps::All, &SyncSelection::default(), None).await;
    klaviyo.shutdown().await;
    shopify.shutdown().await;
    let outcome = result?;
    let tz: chrono_tz::Tz = job
        .file
        .job
        .reporting_timezone
        .parse()
        .map_err(|_| Error::config(format!("demo job: unknown timezone {}", job.file.job.reporting_timezone)))?;
    let storage = crate::storage::Storage::open(&job.file.storage, &secrets)?;
    let checked = verify::verify(&storage, &brand, tz).await?;
    Ok(DemoResult { storage_dir, outcome, checked })
}
