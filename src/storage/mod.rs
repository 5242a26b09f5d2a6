//! Object storage: one [`Storage`] per job, over `file://`, `s3://`, `gs://` or `az://`.
//!
//! Every other module addresses objects by paths relative to the job's root (see [`layout`]);
//! only this module knows about buckets and prefixes.

pub mod layout;

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::buffered::BufWriter;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{ClientConfigKey, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::config::{Secrets, StorageConfig};
use crate::error::{Error, Result};

/// A storage URL split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    File(PathBuf),
    S3 { bucket: String, prefix: String },
    Gcs { bucket: String, prefix: String },
    Azure { container: String, prefix: String },
}

impl StorageUrl {
    /// Parses `file:///abs`, `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`.
    pub fn parse(url: &str) -> std::result::Result<Self, String> {
        const EXPECTED: &str = "file:///absolute/path, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix";
        let parsed = url::Url::parse(url).map_err(|_| EXPECTED.to_string())?;
        let bucket =
            || parsed.host_str().filter(|h| !h.is_empty()).map(str::to_string).ok_or_else(|| EXPECTED.to_string());
        let prefix = parsed.path().trim_matches('/').to_string();
        match parsed.scheme() {
            "file" => {
                let path = parsed.to_file_path().map_err(|_| EXPECTED.to_string())?;
                Ok(StorageUrl::File(path))
            }
            "s3" | "s3a" => Ok(StorageUrl::S3 { bucket: bucket()?, prefix }),
            "gs" => Ok(StorageUrl::Gcs { bucket: bucket()?, prefix }),
            "az" | "abfs" | "abfss" => Ok(StorageUrl::Azure { container: bucket()?, prefix }),
            _ => Err(EXPECTED.to_string()),
        }
    }
}

/// Size of the parts of a multipart upload, and the size above which a file is uploaded in parts
/// ([`BufWriter`]'s default).
pub const DEFAULT_PART_BYTES: usize = 10 * 1024 * 1024;

/// Attempts of a create-only write whose outcome was lost (see [`Storage::put_new`]).
const PUT_NEW_ATTEMPTS: usize = 4;

/// The job's object store and its root prefix.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    root: ObjPath,
    url: String,
    part_bytes: usize,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("url", &self.url).finish()
    }
}

impl Storage {
    /// Connects to the configured store. Credentials come from the environment (workload
    /// identity, standard AWS/GCP/Azure variables) unless the job names static-key variables.
    pub fn open(cfg: &StorageConfig, secrets: &Secrets) -> Result<Self> {
        Self::open_at(cfg, secrets, "storage", true)
    }

    /// Opens a store read by a source, configured like `[storage]` under the table `key`
    /// (errors name `<key>.url`, `<key>.access_key_id_env`...); a local folder must exist.
    pub fn open_source(cfg: &StorageConfig, secrets: &Secrets, key: &str) -> Result<Self> {
        Self::open_at(cfg, secrets, key, false)
    }

    fn open_at(cfg: &StorageConfig, secrets: &Secrets, key: &str, create_local: bool) -> Result<Self> {
        let url = StorageUrl::parse(&cfg.url).map_err(|why| Error::config(format!("{key}.url: expected {why}")))?;
        let (store, root): (Arc<dyn ObjectStore>, String) = match url {
            StorageUrl::File(path) => {
                if create_local {
                    std::fs::create_dir_all(&path)
                        .map_err(|e| Error::io(format!("cannot create storage folder {}", path.display()), e))?;
                } else if !path.is_dir() {
                    let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
                    return Err(Error::io(format!("{key}.url: no folder {}", path.display()), missing));
                }
                let fs = LocalFileSystem::new_with_prefix(&path)
                    .map_err(|e| Error::storage(format!("cannot open {}", path.display()), e))?;
                (Arc::new(fs), String::new())
            }
            StorageUrl::S3 { bucket, prefix } => {
                let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = &cfg.endpoint {
                    b = b.with_endpoint(endpoint);
                }
                b = b.with_region(
                    cfg.region
                        .clone()
                        .unwrap_or_else(|| std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string())),
                );
                b = b.with_allow_http(cfg.allow_http).with_virtual_hosted_style_request(!cfg.path_style);
                if let Some(secs) = cfg.request_timeout_seconds {
                    b = b.with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), format!("{secs}s"));
                }
                if let (Some(id), Some(secret)) = (&cfg.access_key_id_env, &cfg.secret_access_key_env) {
                    b = b
                        .with_access_key_id(secrets.get(&format!("{key}.access_key_id_env"), id)?)
                        .with_secret_access_key(secrets.get(&format!("{key}.secret_access_key_env"), secret)?);
                }
                let s3 = b.build().map_err(|e| Error::storage(format!("{key}: cannot configure S3 storage"), e))?;
                (Arc::new(s3), prefix)
            }
            StorageUrl::Gcs { bucket, prefix } => {
                let gcs = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(|e| Error::storage("cannot configure GCS storage", e))?;
                (Arc::new(gcs), prefix)
            }
            StorageUrl::Azure { container, prefix } => {
                let az = MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .build()
                    .map_err(|e| Error::storage("cannot configure Azure storage", e))?;
                (Arc::new(az), prefix)
            }
        };
        let part_bytes = cfg.multipart_part_bytes.unwrap_or(DEFAULT_PART_BYTES).max(1);
        Ok(Self { store, root: ObjPath::from(root), url: cfg.url.clone(), part_bytes })
    }

    /// A store over an existing object store (tests use an in-memory one).
    pub fn from_store(store: Arc<dyn ObjectStore>, root: &str, url: &str) -> Self {
        Self { store, root: ObjPath::from(root), url: url.to_string(), part_bytes: DEFAULT_PART_BYTES }
    }

    /// A streaming writer of one object: one PUT when it stays under the part size, else a
    /// multipart upload. The object appears whole when the writer is shut down, or not at all.
    pub fn writer(&self, rel: &str) -> BufWriter {
        BufWriter::with_capacity(self.store.clone(), self.path(rel), self.part_bytes)
    }

    /// The underlying store, for DataFusion and the Parquet writer.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// The configured URL (for messages; never holds secrets).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The absolute object path of a job-relative path.
    pub fn path(&self, rel: &str) -> ObjPath {
        let rel = rel.trim_matches('/');
        if self.root.as_ref().is_empty() {
            ObjPath::from(rel)
        } else if rel.is_empty() {
            self.root.clone()
        } else {
            ObjPath::from(format!("{}/{}", self.root, rel))
        }
    }

    /// The job-relative form of an absolute object path.
    pub fn relative(&self, path: &ObjPath) -> String {
        let root = self.root.as_ref();
        let p = path.as_ref();
        if root.is_empty() {
            p.to_string()
        } else {
            p.strip_prefix(root).map(|s| s.trim_start_matches('/').to_string()).unwrap_or_else(|| p.to_string())
        }
    }

    /// Writes (or replaces) an object; a single PUT is atomic on every supported store.
    pub async fn put(&self, rel: &str, bytes: impl Into<Bytes>) -> Result<()> {
        let bytes: Bytes = bytes.into();
        self.store
            .put(&self.path(rel), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| Error::storage(format!("cannot write {rel}"), e))
    }

    /// Creates an object only if it does not exist; `Ok(false)` when it already does.
    ///
    /// The store's client retries a create after a 5xx but not after a timeout, and a create
    /// whose success answer was lost comes back from its retry as "already exists". Callers
    /// (the lock, commits) write bytes no other writer writes, so an existing object holding
    /// exactly these bytes is this call's own write, and a failed attempt is retried.
    pub async fn put_new(&self, rel: &str, bytes: impl Into<Bytes>) -> Result<bool> {
        let bytes: Bytes = bytes.into();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
            match self.store.put_opts(&self.path(rel), PutPayload::from(bytes.clone()), opts).await {
                Ok(_) => return Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    return Ok(self.get(rel).await?.is_some_and(|existing| existing == bytes));
                }
                Err(e @ (object_store::Error::NotImplemented { .. } | object_store::Error::Precondition { .. })) => {
                    return Err(Error::storage(format!("cannot create {rel}"), e));
                }
                Err(e) if attempt >= PUT_NEW_ATTEMPTS => {
                    return Err(Error::storage(format!("cannot create {rel}"), e));
                }
                Err(e) => {
                    tracing::warn!(object = rel, attempt, error = %e, "create-only write failed; will retry.");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt as u64)).await;
                }
            }
        }
    }

    /// Reads an object; `Ok(None)` when it does not exist.
    pub async fn get(&self, rel: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.path(rel)).await {
            Ok(r) => r.bytes().await.map(Some).map_err(|e| Error::storage(format!("cannot read {rel}"), e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(format!("cannot read {rel}"), e)),
        }
    }

    /// Every object under a job-relative prefix, sorted by path.
    pub async fn list(&self, rel_prefix: &str) -> Result<Vec<ObjectMeta>> {
        let prefix = self.path(rel_prefix);
        let mut out: Vec<ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| Error::storage(format!("cannot list {rel_prefix}"), e))?;
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    /// Deletes an object; a missing one is not an error.
    pub async fn delete(&self, rel: &str) -> Result<()> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::storage(format!("cannot delete {rel}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_storage_urls() {
        assert_eq!(StorageUrl::parse("file:///data/x").unwrap(), StorageUrl::File("/data/x".into()));
        assert_eq!(
            StorageUrl::parse("s3://bucket/life/cycle").unwrap(),
            StorageUrl::S3 { bucket: "bucket".into(), prefix: "life/cycle".into() }
        );
        assert!(matches!(StorageUrl::parse("gs://b").unwrap(), StorageUrl::Gcs { .. }));
        assert!(matches!(StorageUrl::parse("az://c/p").unwrap(), StorageUrl::Azure { .. }));
        assert!(StorageUrl::parse("ftp://x/y").is_err());
        assert!(StorageUrl::parse("relative/path").is_err());
    }

    #[tokio::test]
    async fn create_only_once_and_paths_under_root() {
        let s = Storage::from_store(Arc::new(object_store::memory::InMemory::new()), "pre/fix", "memory://");
        assert!(s.put_new("_locks/a", "1").await.unwrap());
        assert!(!s.put_new("_locks/a", "2").await.unwrap());
        assert_eq!(s.get("_locks/a").await.unwrap().unwrap(), Bytes::from("1"));
        assert_eq!(s.path("x/y").as_ref(), "pre/fix/x/y");
        assert_eq!(s.relative(&s.path("x/y")), "x/y");
        assert_eq!(s.list("_locks").await.unwrap().len(), 1);
        s.delete("_locks/a").await.unwrap();
        assert!(s.get("_locks/a").await.unwrap().is_none());
    }
}
