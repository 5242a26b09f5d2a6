//! Job files: `jobs/<job>.toml` parsed into a validated [`Job`].
//!
//! Unknown keys are errors (a misspelt key must fail at start-up, not be ignored), and every
//! error names the file, the key and what was expected. Secrets are never in the file: it
//! names the environment variable that holds each one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A parsed job file. Field names are the TOML keys; other tools generate these files, so the
/// spelling is fixed.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobFile {
    pub job: JobSection,
    pub storage: StorageConfig,
    #[serde(default)]
    pub run: RunConfig,
    #[serde(default)]
    pub sources: SourcesConfig,
    /// `[webhooks]`: the receiver (`serve-webhooks`) and the nightly compaction of what it stored.
    #[serde(default)]
    pub webhooks: Option<WebhooksConfig>,
}

/// `[job]`: identity and reporting conventions.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobSection {
    /// Job name: names the lock, the run manifests and the seeds folder.
    pub name: String,
    /// IANA timezone every local date is computed in (models.md 1.1).
    pub reporting_timezone: String,
    /// ISO 4217 currency of every money column.
    pub reporting_currency: String,
    /// Pins the data cut-off (models.md 1.5) so re-runs are reproducible; default: derived.
    #[serde(default)]
    pub as_of: Option<NaiveDate>,
    /// The operating record (interventions and queued hypotheses, [`crate::operating_record`]),
    /// a TOML file whose path is relative to the job file; default: none.
    #[serde(default)]
    pub operating_record: Option<String>,
}

/// `[storage]`: where raw data, state and marts live.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `file:///abs/path`, `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`.
    pub url: String,
    /// S3-compatible endpoint (MinIO, moto, R2...); default: AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// S3 region; default: from the environment, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Allow plain `http://` endpoints (test servers only).
    #[serde(default)]
    pub allow_http: bool,
    /// Path-style requests (`endpoint/bucket/key`), which most S3-compatible servers need.
    #[serde(default)]
    pub path_style: bool,
    /// Name of the variable holding a static access key id; default: workload identity or the
    /// standard AWS environment.
    #[serde(default)]
    pub access_key_id_env: Option<String>,
    /// Name of the variable holding the static secret key that goes with `access_key_id_env`.
    #[serde(default)]
    pub secret_access_key_env: Option<String>,
    /// Object-store request timeout in seconds (cloud stores); default 30. A request that times
    /// out is retried like a 5xx, with backoff, up to 10 times within 3 minutes.
    #[serde(default)]
    pub request_timeout_seconds: Option<u64>,
    /// Files larger than this go up as multipart uploads of parts this size; default 10 MiB.
    /// S3 needs at least 5 MiB; test servers take smaller parts.
    #[serde(default)]
    pub multipart_part_bytes: Option<usize>,
}

/// `[run]`: how a run behaves.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Lease of the run lock; a lock older than this (not renewed) is taken over.
    pub lock_ttl_seconds: u64,
    /// Records per landed Parquet file part; bounds memory whatever the history length.
    pub batch_rows: usize,
    /// The transform's DataFusion memory pool in MiB, when set: sorts and most aggregates spill
    /// to temporary files under `TMPDIR` beyond it, and an operator that cannot spill fails the
    /// model. Unset (the default): unbounded.
    pub transform_memory_mib: Option<u64>,
    /// A Prometheus Pushgateway (`http://host:9091`) the run's metrics are pushed to when it
    /// ends; they are always in the run manifest. Unset: no push.
    pub pushgateway_url: Option<String>,
    /// `[run.retry]`: how requests to the sources' HTTP APIs are retried.
    pub retry: RetryConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            lock_ttl_seconds: 600,
            batch_rows: 50_000,
            transform_memory_mib: None,
            pushgateway_url: None,
            retry: RetryConfig::default(),
        }
    }
}

/// `[run.retry]`: retries of one HTTP request to a source. Server errors and broken connections
/// back off exponentially with full jitter; throttles wait as long as the server's
/// `Retry-After` says (backing off like errors without one) and count against their own
/// budget, so a vendor throttling hard does not use up the retries meant for outages.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries after server errors (5xx, 408) and transport failures (resets, timeouts, bodies
    /// cut off) before the stream fails.
    pub max_retries: usize,
    /// Retries after throttles (429, Shopify's `THROTTLED`) before the stream fails.
    pub max_throttle_retries: usize,
    /// First backoff; each further one doubles, up to `max_delay_ms`.
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { max_retries: 8, max_throttle_retries: 30, min_delay_ms: 250, max_delay_ms: 30_000 }
    }
}

/// `[webhooks]`: the always-on receiver for Attentive and Postscript webhooks
/// ([`crate::webhooks`]); either platform may be left out.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Address the receiver listens on (`host:port`; port 0 picks a free one).
    #[serde(default = "default_webhooks_listen")]
    pub listen: String,
    /// Larger bodies are refused with 413 while they are read.
    #[serde(default = "default_webhooks_max_body")]
    pub max_body_bytes: usize,
    /// The nightly compaction leaves deliveries received this recently for the next run: a
    /// write still in flight can become visible after later ones. Keep it above the receiver's
    /// 30 s write timeout plus any clock skew between the receiver and the job.
    #[serde(default = "default_webhooks_settle")]
    pub settle_seconds: u64,
    #[serde(default)]
    pub attentive: Option<AttentiveWebhookConfig>,
    #[serde(default)]
    pub postscript: Option<PostscriptWebhookConfig>,
}

fn default_webhooks_listen() -> String {
    "0.0.0.0:8088".to_string()
}

fn default_webhooks_max_body() -> usize {
    1024 * 1024
}

fn default_webhooks_settle() -> u64 {
    300
}

/// `[webhooks.attentive]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttentiveWebhookConfig {
    /// Name of the variable holding the webhook's signing key (HMAC-SHA256 of the body).
    pub signing_key_env: String,
}

/// `[webhooks.postscript]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostscriptWebhookConfig {
    /// Name of the variable holding the shared token Postscript sends as `Postscript-Signature`.
    pub token_env: String,
}

/// `[sources.*]`: one table per configured source.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    #[serde(default)]
    pub klaviyo: Option<KlaviyoConfig>,
    #[serde(default)]
    pub shopify: Option<ShopifyConfig>,
    #[serde(default)]
    pub postscript: Option<PostscriptConfig>,
    #[serde(default)]
    pub attentive: Option<AttentiveConfig>,
}

/// `[sources.klaviyo]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KlaviyoConfig {
    /// API root; overridable so tests and the demo point at the fake server.
    pub base_url: String,
    /// Name of the variable holding the private API key (`pk_...`).
    pub api_key_env: String,
    /// Earliest date to sync on a first run.
    pub start_date: NaiveDate,
    /// The pinned `revision` header.
    #[serde(default = "default_klaviyo_revision")]
    pub revision: String,
    /// Per-stream options, keyed by stream name.
    #[serde(default)]
    pub streams: BTreeMap<String, StreamOptions>,
    /// Overrides of the published limits by bucket (`events`, `profiles`, `flows`...): for OAuth
    /// apps with their own quota, or to leave headroom for other integrations on the account.
    #[serde(default)]
    pub rate_limits: BTreeMap<String, RateLimitOverride>,
}

/// `[sources.<source>.rate_limits.<bucket>]`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitOverride {
    pub burst_per_second: u32,
    pub steady_per_minute: u32,
}

fn default_klaviyo_revision() -> String {
    "2026-10-15".to_string()
}

/// `[sources.shopify]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShopifyConfig {
    /// The store's root, `https://{shop}.myshopify.com`; overridable for the fake.
    pub base_url: String,
    /// Name of the variable holding a permanent Admin API access token (`shpat_...`, legacy
    /// custom apps). Either this or the client-credentials pair.
    #[serde(default)]
    pub access_token_env: Option<String>,
    /// Names of the variables holding a Dev Dashboard app's client id and secret: the run mints
    /// a fresh token with the client-credentials grant (apps created after 2026-01-01).
    #[serde(default)]
    pub client_id_env: Option<String>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default = "default_shopify_version")]
    pub api_version: String,
    pub start_date: NaiveDate,
    #[serde(default)]
    pub streams: BTreeMap<String, StreamOptions>,
    /// Bulk operations: when to use them and how to wait for them.
    #[serde(default)]
    pub bulk: ShopifyBulkConfig,
}

/// `[sources.shopify.bulk]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ShopifyBulkConfig {
    /// Windows wider than this many days (and first reads) go through a bulk operation; nightly
    /// increments are paged queries.
    pub threshold_days: u32,
    /// Between polls of a running operation.
    pub poll_interval_ms: u64,
    /// A running operation older than this is cancelled and its window split in two.
    pub timeout_seconds: u64,
    /// Windows are not split below this many minutes; the partial data is landed instead.
    pub min_window_minutes: u32,
}

impl Default for ShopifyBulkConfig {
    fn default() -> Self {
        Self { threshold_days: 2, poll_interval_ms: 2_000, timeout_seconds: 3_600, min_window_minutes: 60 }
    }
}

fn default_shopify_version() -> String {
    "2026-10".to_string()
}

/// `[sources.postscript]`: the API v2 (subscribers, keywords; apis.md 4) and, in
/// `[sources.postscript.warehouse]`, the Data Warehouse Push tables unloaded to object storage
/// (apis.md 4.4 B). Either part may be configured alone: without `api_key_env` the API streams
/// are not read, and a section with neither is an error.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostscriptConfig {
    /// API root; overridable for the fake.
    #[serde(default = "default_postscript_base_url")]
    pub base_url: String,
    /// Name of the variable holding the shop's private key (`sk_...`). Required for the API
    /// streams; a warehouse-only job leaves it out.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Partner apps: the variable holding the partner key (`sk_partner_...`), sent as the
    /// bearer token with the shop's key in `X-Postscript-Shop-Token`.
    #[serde(default)]
    pub partner_key_env: Option<String>,
    /// Earliest date the API streams read on a first run; required with `api_key_env`.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    #[serde(default)]
    pub streams: BTreeMap<String, StreamOptions>,
    #[serde(default)]
    pub warehouse: Option<PostscriptWarehouseConfig>,
}

fn default_postscript_base_url() -> String {
    "https://api.postscript.io".to_string()
}

/// `[sources.postscript.warehouse]`: where the brand unloads Postscript's warehouse-push tables,
/// one folder per table under `url`. The S3 options mean what they mean under `[storage]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostscriptWarehouseConfig {
    /// `file:///abs/path` or `s3://bucket/prefix` (also `gs://`, `az://`) of the prefix.
    pub url: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub allow_http: bool,
    #[serde(default)]
    pub path_style: bool,
    #[serde(default)]
    pub access_key_id_env: Option<String>,
    #[serde(default)]
    pub secret_access_key_env: Option<String>,
    /// Tables to land (`fct_messages`, `dim_messages`, `fct_attribution`, `fct_clicks`,
    /// `subscribers`); default: all five.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// How files are read: `auto` (by extension, `.parquet` or `.csv`; other objects ignored),
    /// or `parquet` / `csv` (every object in a table's folder, whatever its name).
    #[serde(default)]
    pub format: WarehouseFormat,
}

impl PostscriptWarehouseConfig {
    /// The object-store settings, in the form [`crate::storage::Storage`] opens.
    pub fn store_config(&self) -> StorageConfig {
        StorageConfig {
            url: self.url.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            allow_http: self.allow_http,
            path_style: self.path_style,
            access_key_id_env: self.access_key_id_env.clone(),
            secret_access_key_env: self.secret_access_key_env.clone(),
            request_timeout_seconds: None,
            multipart_part_bytes: None,
        }
    }
}

/// `sources.postscript.warehouse.format`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WarehouseFormat {
    #[default]
    Auto,
    Parquet,
    Csv,
}

/// `[sources.attentive]`: the nightly SFTP feeds, and the REST API for `check --connect`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttentiveConfig {
    /// REST API root (`GET /v1/me`); overridable for the fake.
    pub base_url: String,
    /// Name of the variable holding the private app's API key (bearer token).
    pub api_key_env: String,
    /// Feed files dated before this day are ignored, and gap detection starts no earlier.
    pub start_date: NaiveDate,
    pub sftp: AttentiveSftpConfig,
}

/// `[sources.attentive.sftp]`: the account team's SFTP server and the feed file names.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttentiveSftpConfig {
    pub host: String,
    #[serde(default = "default_sftp_port")]
    pub port: u16,
    pub username: String,
    /// Name of the variable holding an OpenSSH or PEM private key. Either this or `password_env`.
    #[serde(default)]
    pub private_key_env: Option<String>,
    #[serde(default)]
    pub password_env: Option<String>,
    /// The pinned host key: an OpenSSH public key line (`ssh-ed25519 AAAA...`) or its
    /// `SHA256:...` fingerprint. Any other key is refused before anything is read.
    pub host_key: String,
    /// The remote folder holding the feeds.
    #[serde(default = "default_sftp_directory")]
    pub directory: String,
    /// The brand's domain as Attentive writes it in file names (`{domain}`).
    pub domain: String,
    #[serde(default = "default_general_events_pattern")]
    pub general_events_pattern: String,
    #[serde(default = "default_conversions_pattern")]
    pub conversions_pattern: String,
}

fn default_sftp_port() -> u16 {
    22
}

fn default_sftp_directory() -> String {
    ".".to_string()
}

fn default_general_events_pattern() -> String {
    "{domain}_attentive_email_SMS_{YYYYMMDD}.csv".to_string()
}

fn default_conversions_pattern() -> String {
    "{domain}_attentive_conversions_{YYYYMMDD}.csv".to_string()
}

/// `[sources.<source>.streams.<stream>]`: options any stream accepts.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    /// Set false to skip the stream.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Records per page; default: the endpoint's maximum.
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Width of one incremental window in days.
    #[serde(default)]
    pub window_days: Option<u32>,
    /// Days re-read behind the watermark for late records.
    #[serde(default)]
    pub lookback_days: Option<u32>,
    /// Windows fetched at once.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// A first run reads at most this many days back (quota-bound streams such as reports).
    #[serde(default)]
    pub backfill_days: Option<u32>,
    /// Requests one run may spend on the stream; the rest of a backfill continues next run.
    #[serde(default)]
    pub max_requests: Option<u32>,
}

impl StreamOptions {
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
}

/// A job file with where it came from, validated.
#[derive(Debug, Clone)]
pub struct Job {
    pub file: JobFile,
    /// The file it was read from (`<embedded>` for built-in jobs).
    pub path: PathBuf,
    /// `jobs/<stem>/seeds/`: seeds people maintain, beside the job file.
    pub seeds_dir: Option<PathBuf>,
    pub timezone: chrono_tz::Tz,
    /// The operating record `job.operating_record` names, read by [`Job::load`] (a job parsed
    /// from text has none until its caller sets it, as the demo does with its embedded record).
    pub operating_record: Option<crate::operating_record::OperatingRecord>,
}

impl Job {
    /// Reads and validates a job file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config_with(format!("cannot read job file {}", path.display()), e))?;
        let mut job = Self::parse(&text, path)?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let seeds = path.parent().unwrap_or(Path::new(".")).join(stem).join("seeds");
        job.seeds_dir = seeds.is_dir().then_some(seeds);
        if let Some(record) = &job.file.job.operating_record {
            let record = path.parent().unwrap_or(Path::new(".")).join(record);
            if !record.is_file() {
                return Err(Error::config(format!(
                    "job file {}: key `job.operating_record`: no file {}",
                    path.display(),
                    record.display()
                )));
            }
            job.operating_record = Some(crate::operating_record::OperatingRecord::load(&record)?);
        }
        Ok(job)
    }

    /// Parses job-file text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let file: JobFile = toml::from_str(text)
            .map_err(|e| Error::config(format!("job file {}: {}", path.display(), e.to_string().trim_end())))?;
        let job = Self::validate(file, path)?;
        Ok(job)
    }

    fn validate(file: JobFile, path: &Path) -> Result<Self> {
        let bad = |key: &str, expected: &str, got: &str| {
            Error::config(format!("job file {}: key `{key}`: expected {expected}, got {got:?}", path.display()))
        };
        let name = &file.job.name;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad("job.name", "letters, digits, '-' or '_'", name));
        }
        if let Some(url) = &file.run.pushgateway_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(bad("run.pushgateway_url", "an http:// or https:// URL", "<not shown>"));
        }
        let timezone: chrono_tz::Tz = file.job.reporting_timezone.parse().map_err(|_| {
            bad("job.reporting_timezone", "an IANA timezone such as America/New_York", &file.job.reporting_timezone)
        })?;
        let cur = &file.job.reporting_currency;
        if cur.len() != 3 || !cur.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(bad("job.reporting_currency", "an ISO 4217 code such as USD", cur));
        }
        crate::storage::StorageUrl::parse(&file.storage.url)
            .map_err(|why| bad("storage.url", &why, &file.storage.url))?;
        if file.storage.access_key_id_env.is_some() != file.storage.secret_access_key_env.is_some() {
            return Err(Error::config(format!(
                "job file {}: keys `storage.access_key_id_env` and `storage.secret_access_key_env` go together",
                path.display()
            )));
        }
        if file.run.batch_rows == 0 {
            return Err(bad("run.batch_rows", "a positive number", "0"));
        }
        if let Some(k) = &file.sources.klaviyo {
            check_url(&k.base_url).map_err(|why| bad("sources.klaviyo.base_url", &why, &k.base_url))?;
            check_env_name(&k.api_key_env, "sources.klaviyo.api_key_env", path)?;
            for (bucket, limit) in &k.rate_limits {
                if !crate::sources::klaviyo::STREAMS.iter().any(|s| s.bucket.name == bucket) {
                    let mut known: Vec<_> = crate::sources::klaviyo::STREAMS.iter().map(|s| s.bucket.name).collect();
                    known.dedup();
                    return Err(bad(
                        &format!("sources.klaviyo.rate_limits.{bucket}"),
                        &format!("one of {}", known.join(", ")),
                        bucket,
                    ));
                }
                if limit.burst_per_second == 0 || limit.steady_per_minute == 0 {
                    return Err(bad(&format!("sources.klaviyo.rate_limits.{bucket}"), "positive limits", "0"));
                }
            }
            check_streams(path, "klaviyo", crate::sources::klaviyo::STREAMS, &k.streams)?;
        }
        for (key, var) in [
            ("storage.access_key_id_env", &file.storage.access_key_id_env),
            ("storage.secret_access_key_env", &file.storage.secret_access_key_env),
        ] {
            if let Some(var) = var {
                check_env_name(var, key, path)?;
            }
        }
        if let Some(w) = &file.webhooks {
            w.listen
                .parse::<std::net::SocketAddr>()
                .map_err(|_| bad("webhooks.listen", "host:port such as 0.0.0.0:8088", &w.listen))?;
            if w.max_body_bytes == 0 {
                return Err(bad("webhooks.max_body_bytes", "a positive number", "0"));
            }
            if let Some(a) = &w.attentive {
                check_env_name(&a.signing_key_env, "webhooks.attentive.signing_key_env", path)?;
            }
            if let Some(p) = &w.postscript {
                check_env_name(&p.token_env, "webhooks.postscript.token_env", path)?;
            }
        }
        if let Some(s) = &file.sources.shopify {
            check_streams(path, "shopify", crate::sources::shopify::STREAMS, &s.streams)?;
            check_url(&s.base_url).map_err(|why| bad("sources.shopify.base_url", &why, &s.base_url))?;
            for (key, var) in [
                ("sources.shopify.access_token_env", &s.access_token_env),
                ("sources.shopify.client_id_env", &s.client_id_env),
                ("sources.shopify.client_secret_env", &s.client_secret_env),
            ] {
                if let Some(var) = var {
                    check_env_name(var, key, path)?;
                }
            }
            let credentials = (s.access_token_env.is_some(), s.client_id_env.is_some(), s.client_secret_env.is_some());
            if !matches!(credentials, (true, false, false) | (false, true, true)) {
                return Err(bad(
                    "sources.shopify",
                    "either access_token_env, or client_id_env with client_secret_env",
                    "another combination",
                ));
            }
        }
        if let Some(p) = &file.sources.postscript {
            check_streams(path, "postscript", crate::sources::postscript::STREAMS, &p.streams)?;
            check_url(&p.base_url).map_err(|why| bad("sources.postscript.base_url", &why, &p.base_url))?;
            match &p.api_key_env {
                Some(var) => {
                    check_env_name(var, "sources.postscript.api_key_env", path)?;
                    if p.start_date.is_none() {
                        return Err(bad(
                            "sources.postscript.start_date",
                            "the first day the API streams read (YYYY-MM-DD), required with api_key_env",
                            "nothing",
                        ));
                    }
                }
                None if p.warehouse.is_none() => {
                    return Err(bad(
                        "sources.postscript",
                        "api_key_env (the API streams) or a [sources.postscript.warehouse] section, or both",
                        "neither",
                    ));
                }
                None => {
                    for (key, set) in [
                        ("sources.postscript.partner_key_env", p.partner_key_env.is_some()),
                        ("sources.postscript.start_date", p.start_date.is_some()),
                        ("sources.postscript.streams", !p.streams.is_empty()),
                    ] {
                        if set {
                            return Err(Error::config(format!(
                                "job file {}: key `{key}` configures the API streams, which need \
                                 `sources.postscript.api_key_env`; a warehouse-only job leaves it out",
                                path.display()
                            )));
                        }
                    }
                }
            }
            if let Some(var) = &p.partner_key_env {
                check_env_name(var, "sources.postscript.partner_key_env", path)?;
            }
            if let Some(w) = &p.warehouse {
                validate_warehouse(w, path)?;
            }
        }
        if let Some(a) = &file.sources.attentive {
            check_url(&a.base_url).map_err(|why| bad("sources.attentive.base_url", &why, &a.base_url))?;
            for (key, var) in attentive_credentials(a) {
                check_env_name(&var, &key, path)?;
            }
            if a.sftp.private_key_env.is_some() == a.sftp.password_env.is_some() {
                return Err(bad(
                    "sources.attentive.sftp",
                    "exactly one of private_key_env and password_env",
                    "both or neither",
                ));
            }
            crate::sources::attentive::validate(a).map_err(|(key, expected, got)| bad(&key, &expected, &got))?;
        }
        Ok(Job { file, path: path.to_path_buf(), seeds_dir: None, timezone, operating_record: None })
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.file.job.name
    }

    /// Every `(key, variable name)` of a secret the job needs.
    pub fn credential_vars(&self) -> Vec<(String, String)> {
        let mut vars = Vec::new();
        if let Some(k) = &self.file.sources.klaviyo {
            vars.push(("sources.klaviyo.api_key_env".into(), k.api_key_env.clone()));
        }
        if let Some(s) = &self.file.sources.shopify {
            for (key, var) in [
                ("sources.shopify.access_token_env", &s.access_token_env),
                ("sources.shopify.client_id_env", &s.client_id_env),
                ("sources.shopify.client_secret_env", &s.client_secret_env),
            ] {
                if let Some(var) = var {
                    vars.push((key.into(), var.clone()));
                }
            }
        }
        if let Some(p) = &self.file.sources.postscript {
            if let Some(var) = &p.api_key_env {
                vars.push(("sources.postscript.api_key_env".into(), var.clone()));
            }
            if let Some(var) = &p.partner_key_env {
                vars.push(("sources.postscript.partner_key_env".into(), var.clone()));
            }
            if let Some(w) = &p.warehouse
                && let (Some(a), Some(b)) = (&w.access_key_id_env, &w.secret_access_key_env)
            {
                vars.push(("sources.postscript.warehouse.access_key_id_env".into(), a.clone()));
                vars.push(("sources.postscript.warehouse.secret_access_key_env".into(), b.clone()));
            }
        }
        if let Some(a) = &self.file.sources.attentive {
            vars.extend(attentive_credentials(a));
        }
        if let (Some(a), Some(b)) = (&self.file.storage.access_key_id_env, &self.file.storage.secret_access_key_env) {
            vars.push(("storage.access_key_id_env".into(), a.clone()));
            vars.push(("storage.secret_access_key_env".into(), b.clone()));
        }
        vars
    }
}

/// `[sources.postscript.warehouse]`: the URL, the S3 options as `[storage]` checks them, tables.
fn validate_warehouse(w: &PostscriptWarehouseConfig, path: &Path) -> Result<()> {
    let bad = |key: &str, expected: &str, got: &str| {
        Error::config(format!(
            "job file {}: key `sources.postscript.warehouse.{key}`: expected {expected}, got {got:?}",
            path.display()
        ))
    };
    crate::storage::StorageUrl::parse(&w.url).map_err(|why| bad("url", &why, &w.url))?;
    if w.access_key_id_env.is_some() != w.secret_access_key_env.is_some() {
        return Err(Error::config(format!(
            "job file {}: keys `sources.postscript.warehouse.access_key_id_env` and \
             `sources.postscript.warehouse.secret_access_key_env` go together",
            path.display()
        )));
    }
    for (key, var) in [("access_key_id_env", &w.access_key_id_env), ("secret_access_key_env", &w.secret_access_key_env)]
    {
        if let Some(var) = var {
            check_env_name(var, &format!("sources.postscript.warehouse.{key}"), path)?;
        }
    }
    if let Some(endpoint) = &w.endpoint {
        check_url(endpoint).map_err(|why| bad("endpoint", &why, endpoint))?;
    }
    if let Some(tables) = &w.tables {
        let known = crate::sources::postscript::warehouse::TABLE_NAMES;
        if tables.is_empty() {
            return Err(bad("tables", &format!("one or more of {}", known.join(", ")), "[]"));
        }
        if let Some(t) = tables.iter().find(|t| !known.contains(&t.as_str())) {
            return Err(bad("tables", &format!("a list of {}", known.join(", ")), t));
        }
    }
    Ok(())
}

/// Every stream a job configures must be one the source has.
fn check_streams(
    path: &Path,
    source: &str,
    known: &[crate::stream::StreamSpec],
    streams: &BTreeMap<String, StreamOptions>,
) -> Result<()> {
    match streams.keys().find(|name| !known.iter().any(|s| s.name == name.as_str())) {
        None => Ok(()),
        Some(stream) => {
            let names: Vec<_> = known.iter().map(|s| s.name).collect();
            Err(Error::config(format!(
                "job file {}: key `sources.{source}.streams.{stream}`: expected one of {}, got {stream:?}",
                path.display(),
                names.join(", ")
            )))
        }
    }
}

/// The Attentive keys that name secrets, with their variable names.
fn attentive_credentials(a: &AttentiveConfig) -> Vec<(String, String)> {
    let mut vars = vec![("sources.attentive.api_key_env".to_string(), a.api_key_env.clone())];
    for (key, var) in [
        ("sources.attentive.sftp.private_key_env", &a.sftp.private_key_env),
        ("sources.attentive.sftp.password_env", &a.sftp.password_env),
    ] {
        if let Some(var) = var {
            vars.push((key.to_string(), var.clone()));
        }
    }
    vars
}

fn check_url(url: &str) -> std::result::Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("an http(s) URL ({e})"))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        _ => Err("an http(s) URL".into()),
    }
}

/// The value is not echoed: someone may have pasted the secret itself into the file.
fn check_env_name(name: &str, key: &str, path: &Path) -> Result<()> {
    let ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "job file {}: key `{key}`: expected the NAME of an environment variable (letters, digits, '_'), \
             never the secret itself; the value is not shown",
            path.display()
        )))
    }
}

/// Where secret values come from: the process environment, or values a caller supplies (the
/// demo passes its fake keys this way instead of touching the environment).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    overrides: BTreeMap<String, String>,
}

impl Secrets {
    /// Adds a value for a variable name, used before the environment.
    pub fn with(mut self, var: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.insert(var.into(), value.into());
        self
    }

    /// The value of `var`, or a configuration error naming the key that named it.
    pub fn get(&self, key: &str, var: &str) -> Result<String> {
        if let Some(v) = self.overrides.get(var) {
            return Ok(v.clone());
        }
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            _ => Err(Error::config(format!("environment variable {var} (named by `{key}`) is not set"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[job]
name = "acme"
reporting_timezone = "America/New_York"
reporting_currency = "USD"
[storage]
url = "file:///tmp/x"
[sources.klaviyo]
base_url = "https://a.klaviyo.com"
api_key_env = "KLAVIYO_API_KEY"
start_date = "2023-01-01"
"#;

    #[test]
    fn parses_the_minimal_job() {
        let job = Job::parse(MINIMAL, Path::new("jobs/acme.toml")).unwrap();
        assert_eq!(job.name(), "acme");
        assert_eq!(job.file.sources.klaviyo.as_ref().unwrap().revision, "2026-10-15");
        assert_eq!(job.credential_vars().len(), 1);
    }

    #[test]
    fn unknown_key_names_file_and_key() {
        let text = MINIMAL.replace("api_key_env", "api_key = \"pk_x\"\napi_key_env");
        let err = Job::parse(&text, Path::new("jobs/acme.toml")).unwrap_err().to_string();
        assert!(err.contains("jobs/acme.toml"), "{err}");
        assert!(err.contains("api_key"), "{err}");
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn bad_timezone_says_what_was_expected() {
        let text = MINIMAL.replace("America/New_York", "Mars/Olympus");
        let err = Job::parse(&text, Path::new("j.toml")).unwrap_err().to_string();
        assert!(err.contains("job.reporting_timezone") && err.contains("IANA"), "{err}");
    }

    #[test]
    fn secret_values_are_rejected_as_variable_names() {
        let text = MINIMAL.replace("\"KLAVIYO_API_KEY\"", "\"pk-live-123\"");
        let err = Job::parse(&text, Path::new("j.toml")).unwrap_err().to_string();
        assert!(err.contains("sources.klaviyo.api_key_env"), "{err}");
        assert!(!err.contains("pk-live-123"), "a pasted secret must not be echoed: {err}");
    }

    #[test]
    fn rate_limit_buckets_and_stream_names_are_checked() {
        let ok =
            format!("{MINIMAL}[sources.klaviyo.rate_limits.flows]\nburst_per_second = 5\nsteady_per_minute = 120\n");
        let job = Job::parse(&ok, Path::new("j.toml")).unwrap();
        assert_eq!(job.file.sources.klaviyo.unwrap().rate_limits["flows"].steady_per_minute, 120);
        let bad = ok.replace("rate_limits.flows", "rate_limits.flowz");
        let err = Job::parse(&bad, Path::new("j.toml")).unwrap_err().to_string();
        assert!(err.contains("sources.klaviyo.rate_limits.flowz") && err.contains("flows"), "{err}");
        let stream = format!("{MINIMAL}[sources.klaviyo.streams.event]\nenabled = false\n");
        let err = Job::parse(&stream, Path::new("j.toml")).unwrap_err().to_string();
        assert!(err.contains("sources.klaviyo.streams.event") && err.contains("events"), "{err}");
    }

    #[test]
    fn the_operating_record_is_read_beside_the_job_and_a_bad_one_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let job_path = dir.path().join("acme.toml");
        let with_record = MINIMAL.replace(
            "reporting_currency = \"USD\"",
            "reporting_currency = \"USD\"\noperating_record = \"acme-operating-record.toml\"",
        );
        std::fs::write(&job_path, &with_record).unwrap();
        let err = Job::load(&job_path).unwrap_err().to_string();
        assert!(err.contains("job.operating_record") && err.contains("acme-operating-record.toml"), "{err}");
        let record = dir.path().join("acme-operating-record.toml");
        let good = "[[intervention]]\nid = \"a1\"\nflow = \"Win-Back\"\nchanged_on = 2026-03-02\n\
                    change = \"c\"\nhypothesis = \"h\"\nexpected_effect = \"e\"\n";
        std::fs::write(&record, good).unwrap();
        let job = Job::load(&job_path).unwrap();
        assert_eq!(job.operating_record.unwrap().interventions[0].id, "a1");
        std::fs::write(&record, good.replace("2026-03-02", "\"March 2\"")).unwrap();
        let err = Job::load(&job_path).unwrap_err().to_string();
        for part in ["acme-operating-record.toml", "intervention 1 (id \"a1\")", "`changed_on`", "YYYY-MM-DD"] {
            assert!(err.contains(part), "{part}: {err}");
        }
    }

    #[test]
    fn the_attentive_section_is_validated() {
        let host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEqLHvJP6DpNzjnXWbpCcHFhsFVnW1qwYq2bcB7SrmVV";
        let section = format!(
            "[sources.attentive]\nbase_url = \"https://api.attentivemobile.com\"\napi_key_env = \"ATT_KEY\"\n\
             start_date = \"2026-01-01\"\n[sources.attentive.sftp]\nhost = \"sftp.example.com\"\n\
             username = \"brand\"\npassword_env = \"ATT_SFTP_PASSWORD\"\nhost_key = \"{host_key}\"\n\
             domain = \"acme.com\"\n"
        );
        let job = Job::parse(&format!("{MINIMAL}{section}"), Path::new("j.toml")).unwrap();
        let a = job.file.sources.attentive.as_ref().unwrap();
        assert_eq!(
            (a.sftp.port, a.sftp.conversions_pattern.as_str()),
            (22, "{domain}_attentive_conversions_{YYYYMMDD}.csv")
        );
        let vars: Vec<String> = job.credential_vars().into_iter().map(|v| v.1).collect();
        assert!(vars.contains(&"ATT_KEY".to_string()) && vars.contains(&"ATT_SFTP_PASSWORD".to_string()), "{vars:?}");
        for (change, expected) in [
            ("password_env = \"ATT_SFTP_PASSWORD\"", "exactly one of private_key_env and password_env"),
            ("host_key = \"", "sources.attentive.sftp.host_key"),
            ("domain = \"acme.com\"", "sources.attentive.sftp.general_events_pattern"),
        ] {
            let replacement = match change {
                c if c.starts_with("password") => format!("{c}\nprivate_key_env = \"ATT_SFTP_KEY\""),
                c if c.starts_with("host_key") => format!("{c}SHA256:!!"),
                c => format!("{c}\ngeneral_events_pattern = \"events.csv\""),
            };
            let text = format!("{MINIMAL}{}", section.replacen(change, &replacement, 1));
            let err = Job::parse(&text, Path::new("j.toml")).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn the_postscript_warehouse_section_is_validated_and_may_stand_alone() {
        let warehouse = "[sources.postscript.warehouse]\nurl = \"s3://brand-exports/postscript\"\n\
                         access_key_id_env = \"WH_KEY\"\nsecret_access_key_env = \"WH_SECRET\"\n";
        let alone = format!("{MINIMAL}[sources.postscript]\n{warehouse}");
        let job = Job::parse(&alone, Path::new("j.toml")).unwrap();
        let p = job.file.sources.postscript.as_ref().unwrap();
        let w = p.warehouse.as_ref().unwrap();
        assert_eq!((p.api_key_env.as_deref(), w.format, w.tables.as_ref()), (None, WarehouseFormat::Auto, None));
        let vars: Vec<String> = job.credential_vars().into_iter().map(|v| v.0).collect();
        assert!(vars.contains(&"sources.postscript.warehouse.secret_access_key_env".to_string()), "{vars:?}");
        let api = "api_key_env = \"PS_KEY\"\nstart_date = \"2026-01-01\"\n";
        Job::parse(&format!("{MINIMAL}[sources.postscript]\n{api}{warehouse}"), Path::new("j.toml")).unwrap();
        for (text, expected) in [
            (format!("{MINIMAL}[sources.postscript]\nbase_url = \"https://api.postscript.io\"\n"), "neither"),
            (format!("{MINIMAL}[sources.postscript]\napi_key_env = \"PS_KEY\"\n"), "sources.postscript.start_date"),
            (
                format!("{MINIMAL}[sources.postscript]\npartner_key_env = \"P\"\n{warehouse}"),
                "which need `sources.postscript.api_key_env`",
            ),
            (alone.replace("s3://brand-exports/postscript", "ftp://x"), "sources.postscript.warehouse.url"),
            (alone.replace("secret_access_key_env = \"WH_SECRET\"\n", ""), "go together"),
            (format!("{alone}tables = [\"fct_clicks\", \"clicks\"]\n"), "sources.postscript.warehouse.tables"),
            (format!("{alone}format = \"json\"\n"), "format"),
        ] {
            let err = Job::parse(&text, Path::new("j.toml")).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }

    #[test]
    fn missing_secret_names_variable_and_key() {
        let err = Secrets::default().get("sources.klaviyo.api_key_env", "LCE_TEST_SURELY_UNSET").unwrap_err();
        assert!(err.to_string().contains("LCE_TEST_SURELY_UNSET"));
        let ok = Secrets::default().with("X_KEY", "v").get("k", "X_KEY").unwrap();
        assert_eq!(ok, "v");
    }
}
