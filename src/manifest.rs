//! Run manifests: the only way landed files become visible.
//!
//! A run writes Parquet files first and then *commits* them: `_runs/<run_id>/commits/<seq>.json`
//! lists the files and the stream state they justify, and is created with a single atomic PUT.
//! Readers ([`visible_files`]) read only files named by a commit, so a run killed between
//! writing data and committing leaves files nobody picks up, and the stream's state (advanced
//! only after its commit) makes the next run fetch that data again. The run's own
//! `manifest.json` is written last with its outcome and counts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::{Storage, layout};

/// One landed Parquet file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LandedFile {
    /// Job-relative object path.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
}

/// A checkpoint of one stream: files made visible together with the state they justify.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Commit {
    pub run_id: String,
    pub source: String,
    pub stream: String,
    pub committed_at: DateTime<Utc>,
    pub files: Vec<LandedFile>,
    /// The stream state saved right after this commit.
    pub state: Option<serde_json::Value>,
}

/// Per-stream outcome in the run manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StreamSummary {
    pub records: u64,
    pub files: u64,
    pub bytes: u64,
    pub pages: u64,
    pub quarantined_pages: u64,
    /// `ok`, `failed` or `skipped`.
    pub status: String,
    pub error: Option<String>,
    /// HTTP requests the stream made, retries among them and throttled answers (429 and the
    /// platforms' own throttling), counted by the shared engine; 0 for file sources.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub retries: u64,
    #[serde(default)]
    pub throttles: u64,
    /// Wall time of the stream's sync in milliseconds (streams of a source run concurrently).
    #[serde(default)]
    pub duration_ms: u64,
}

/// Per-model outcome in the run manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ModelMetrics {
    pub rows: u64,
    /// Bytes of the new version's Parquet objects.
    #[serde(default)]
    pub bytes: u64,
    /// Partitions (files) the new version has, and how many of them this run wrote.
    pub partitions: u64,
    pub partitions_written: u64,
    /// Only the dirty partitions were recomputed.
    pub incremental: bool,
    pub duration_ms: u64,
}

/// The run's closing record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunManifest {
    pub run_id: String,
    pub job: String,
    pub command: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `succeeded` or `failed`.
    pub status: String,
    pub exit_code: i32,
    /// `source.stream` → outcome.
    pub streams: BTreeMap<String, StreamSummary>,
    /// Model or table → rows written.
    pub models: BTreeMap<String, u64>,
    /// Model → what its build did and how long it took.
    #[serde(default)]
    pub model_metrics: BTreeMap<String, ModelMetrics>,
    pub error: Option<String>,
}

/// Writes one run's commits, in order.
pub struct RunWriter {
    storage: Storage,
    run_id: String,
    seq: std::sync::atomic::AtomicU32,
}

impl RunWriter {
    pub fn new(storage: &Storage, run_id: &str) -> Self {
        Self { storage: storage.clone(), run_id: run_id.to_string(), seq: std::sync::atomic::AtomicU32::new(0) }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Makes `files` visible, then saves the stream's new state. Nothing is visible until
    /// the commit object exists; the state never runs ahead of it.
    pub async fn commit(
        &self,
        source: &str,
        stream: &str,
        files: Vec<LandedFile>,
        state: Option<serde_json::Value>,
    ) -> Result<()> {
        // Only commits that make files visible count: a kill before a commit of an empty window
        // leaves nothing behind, so it would not test recovery from orphaned files.
        if !files.is_empty() {
            crate::failpoint::hit(crate::failpoint::BEFORE_COMMIT);
        }
        let seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let commit = Commit {
            run_id: self.run_id.clone(),
            source: source.to_string(),
            stream: stream.to_string(),
            committed_at: Utc::now(),
            files,
            state: state.clone(),
        };
        let key = layout::run_commit(&self.run_id, seq);
        let body = serde_json::to_vec_pretty(&commit).map_err(|e| Error::Internal(e.to_string()))?;
        if !self.storage.put_new(&key, body).await? {
            return Err(Error::Internal(format!("commit {key} already exists: two writers share run {}", self.run_id)));
        }
        if let Some(state) = state {
            crate::state::save(&self.storage, source, stream, &state).await?;
        }
        Ok(())
    }

    /// Writes the run manifest (last).
    pub async fn finish(&self, manifest: &RunManifest) -> Result<()> {
        let body = serde_json::to_vec_pretty(manifest).map_err(|e| Error::Internal(e.to_string()))?;
        self.storage.put(&layout::run_manifest(&self.run_id), body).await
    }
}

/// Every committed file of a stream, in commit order, across all runs.
pub async fn visible_files(storage: &Storage, source: &str, stream: &str) -> Result<Vec<LandedFile>> {
    Ok(all_commits(storage)
        .await?
        .into_iter()
        .filter(|c| c.source == source && c.stream == stream)
        .flat_map(|c| c.files)
        .collect())
}

/// Every commit of every run, ordered by (run id, sequence). Run ids start with a UTC timestamp,
/// so this is the order they were made in.
pub async fn all_commits(storage: &Storage) -> Result<Vec<Commit>> {
    let mut commits = Vec::new();
    for meta in storage.list(layout::RUNS).await? {
        let rel = storage.relative(&meta.location);
        if !rel.contains("/commits/") || !rel.ends_with(".json") {
            continue;
        }
        let Some(bytes) = storage.get(&rel).await? else { continue };
        let commit: Commit =
            serde_json::from_slice(&bytes).map_err(|e| Error::Internal(format!("unreadable commit {rel}: {e}")))?;
        commits.push(commit);
    }
    Ok(commits)
}

/// Every run manifest, oldest first.
pub async fn run_manifests(storage: &Storage) -> Result<Vec<RunManifest>> {
    let mut out = Vec::new();
    for meta in storage.list(layout::RUNS).await? {
        let rel = storage.relative(&meta.location);
        if !rel.ends_with("/manifest.json") {
            continue;
        }
        if let Some(bytes) = storage.get(&rel).await?
            && let Ok(m) = serde_json::from_slice::<RunManifest>(&bytes)
        {
            out.push(m);
        }
    }
    Ok(out)
}

/// A new run id: sortable UTC time plus a random suffix.
pub fn new_run_id() -> String {
    let now = Utc::now();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{}-{suffix}", now.format("%Y%m%dT%H%M%S%.3fZ"))
}
