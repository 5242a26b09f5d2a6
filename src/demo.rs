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

/// Where the demo's SMS-platform fakes read from.
struct SmsFiles {
    /// The SFTP server's root (feeds under `outbound/`).
    sftp_root: PathBuf,
    /// The Postscript warehouse-push folder.
    warehouse: PathBuf,
}

/// Writes the brand's SMS program as Attentive feed files and Postscript warehouse tables,
/// afresh each run (a few hundred small files; stale ones from another seed must not linger).
fn sms_files(dir: &Path, brand: &SimStore) -> Result<SmsFiles> {
    use crate::simulate::sms_program::{self, SmsPlatform};
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| Error::io(what.clone(), e)
    };
    let sftp_root = dir.join("attentive-sftp");
    let outbound = sftp_root.join("outbound");
    let warehouse = dir.join("postscript-warehouse");
    for d in [&sftp_root, &warehouse] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(io("cannot clear the demo's SMS files"))?;
        }
    }
    std::fs::create_dir_all(&outbound).map_err(io("cannot create the demo's SFTP folder"))?;
    let subscribers = sms_program::attentive_subscribers(brand).map_err(io("cannot read the simulated brand"))?;
    let attentive = sms_program::generate(brand, SmsPlatform::Attentive, &subscribers)
        .map_err(io("cannot generate the Attentive program"))?;
    let domain = crate::config::Job::parse(DEMO_JOB, Path::new("jobs/demo.toml"))?
        .file
        .sources
        .attentive
        .map(|a| a.sftp.domain)
        .unwrap_or_default();
    let legacy_before = NaiveDate::from_ymd_opt(2025, 6, 1).expect("valid date");
    for f in crate::fake::attentive::brand::feed_files(&attentive, &domain, legacy_before) {
        f.write(&outbound).map_err(io("cannot write an Attentive feed file"))?;
    }
    let subscribers = crate::fake::postscript::warehouse::postscript_subscribers(brand)
        .map_err(io("cannot read the simulated brand"))?;
    let postscript = sms_program::generate(brand, SmsPlatform::Postscript, &subscribers)
        .map_err(io("cannot generate the Postscript program"))?;
    crate::fake::postscript::warehouse::write(
        &postscript,
        &warehouse,
        crate::fake::postscript::warehouse::WarehouseFormat::Parquet,
    )
    .map_err(io("cannot write the Postscript warehouse tables"))?;
    Ok(SmsFiles { sftp_root, warehouse })
}

/// Points the demo job's Attentive SFTP and Postscript warehouse at the demo's fakes.
fn point_sms_sources(job: &mut Job, sftp_port: u16, host_key: &str, warehouse: &Path) -> Result<()> {
    if let Some(a) = job.file.sources.attentive.as_mut() {
        a.sftp.port = sftp_port;
        a.sftp.host_key = host_key.to_string();
    }
    if let Some(w) = job.file.sources.postscript.as_mut().and_then(|p| p.warehouse.as_mut()) {
        let url = url::Url::from_directory_path(warehouse)
            .map_err(|_| Error::config(format!("demo folder {} must be absolute", warehouse.display())))?;
        w.url = url.to_string().trim_end_matches('/').to_string();
    }
    Ok(())
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
    let mut job = demo_job(&storage_dir, &klaviyo.base_url(), &shopify.base_url())?;
    let sms = {
        let (dir, brand) = (dir.clone(), brand.clone());
        tokio::task::spawn_blocking(move || sms_files(&dir, &brand))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
    };
    let sftp = crate::fake::attentive::sftp::serve(sms.sftp_root.clone(), Default::default())
        .await
        .map_err(|e| Error::io("cannot start the fake Attentive SFTP server", e))?;
    point_sms_sources(&mut job, sftp.port, &sftp.host_key_line(), &sms.warehouse)?;
    let api_key_env = job.file.sources.klaviyo.as_ref().map(|k| k.api_key_env.clone()).unwrap_or_default();
    let token_env = job.file.sources.shopify.as_ref().and_then(|s| s.access_token_env.clone()).unwrap_or_default();
    let mut secrets = Secrets::default().with(api_key_env, api_key).with(token_env, token);
    if let Some(a) = &job.file.sources.attentive {
        secrets = secrets.with(a.api_key_env.clone(), "demo-unused");
        if let Some(var) = &a.sftp.password_env {
            secrets = secrets.with(var.clone(), crate::fake::attentive::sftp::DEFAULT_PASSWORD);
        }
    }
    let result = pipeline::execute(&job, &secrets, Steps::All, &SyncSelection::default(), None).await;
    klaviyo.shutdown().await;
    shopify.shutdown().await;
    sftp.shutdown();
    let outcome = result?;
    let tz: chrono_tz::Tz = job
        .file
        .job
        .reporting_timezone
        .parse()
        .map_err(|_| Error::config(format!("demo job: unknown timezone {}", job.file.job.reporting_timezone)))?;
    let storage = crate::storage::Storage::open(&job.file.storage, &secrets)?;
    let sms = verify::SmsSources {
        attentive: job.file.sources.attentive.is_some(),
        postscript: job.file.sources.postscript.as_ref().is_some_and(|p| p.warehouse.is_some()),
    };
    let checked = verify::verify(&storage, &brand, tz, sms).await?;
    Ok(DemoResult { storage_dir, outcome, checked })
}
