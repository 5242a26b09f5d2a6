//! The run lock: one run per job at a time, on any object store.
//!
//! Object stores give us one atomic primitive everywhere (S3, GCS, Azure, local disk): create
//! an object only if it does not exist (`PutMode::Create`). Conditional *update* is missing on
//! local disk, so a lock cannot be "replaced if stale" in one step. Instead each acquisition
//! creates the next **generation** `_locks/<job>/<n>.json`: whoever creates generation `n+1`
//! first owns the job, and only after generation `n` was released (deleted) or its lease ran
//! out. The holder renews its lease by rewriting its own generation (nobody else writes it)
//! and gives up if it finds a newer generation, which means it was presumed dead.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::storage::{Storage, layout};

/// What a lock object says about its holder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockRecord {
    pub job: String,
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A held lock; renews itself until released.
pub struct RunLock {
    storage: Storage,
    key: String,
    record: LockRecord,
    renewer: Option<JoinHandle<()>>,
}

impl RunLock {
    /// Takes the job's lock for `run_id`, or fails with [`Error::LockHeld`] naming the holder.
    pub async fn acquire(storage: &Storage, job: &str, run_id: &str, ttl: Duration) -> Result<Self> {
        // A few attempts cover losing a race for a free generation to a run that then
        // finishes at once; a live holder ends the loop on the first pass.
        for _ in 0..3 {
            let (latest, holder) = latest_generation(storage, job).await?;
            if let Some(holder) = holder
                && holder.expires_at > Utc::now()
            {
                return Err(held(job, &holder));
            }
            let generation = latest.map_or(1, |g| g + 1);
            let now = Utc::now();
            let record = LockRecord {
                job: job.to_string(),
                run_id: run_id.to_string(),
                host: hostname(),
                pid: std::process::id(),
                acquired_at: now,
                expires_at: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(10)),
            };
            let key = layout::lock_generation(job, generation);
            if storage.put_new(&key, to_json(&record)).await? {
                if let Some(previous) = latest {
                    tracing::info!(job, generation, "took over the lock after the previous run's lease expired.");
                    storage.delete(&layout::lock_generation(job, previous)).await?;
                }
                let mut lock = RunLock { storage: storage.clone(), key, record, renewer: None };
                lock.start_renewing(ttl);
                return Ok(lock);
            }
        }
        let (_, holder) = latest_generation(storage, job).await?;
        match holder {
            Some(h) => Err(held(job, &h)),
            None => Err(Error::Internal(format!("lock for job {job} is contended but has no holder"))),
        }
    }

    /// The holder's record.
    pub fn record(&self) -> &LockRecord {
        &self.record
    }

    fn start_renewing(&mut self, ttl: Duration) {
        let storage = self.storage.clone();
        let key = self.key.clone();
        let mut record = self.record.clone();
        let every = (ttl / 3).max(Duration::from_millis(200));
        self.renewer = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let (latest, _) = match latest_generation(&storage, &record.job).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot check the run lock; will retry.");
                        continue;
                    }
                };
                if latest.map(|g| layout::lock_generation(&record.job, g)) != Some(key.clone()) {
                    tracing::error!(job = %record.job, "the run lock was taken over by another run; this run's lease had expired.");
                    return;
                }
                record.expires_at =
                    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(10));
                if let Err(e) = storage.put(&key, to_json(&record)).await {
                    tracing::warn!(error = %e, "cannot renew the run lock; will retry.");
                }
            }
        }));
    }

    /// Gives the lock back.
    pub async fn release(mut self) -> Result<()> {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        self.storage.delete(&self.key).await
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
    }
}

fn held(job: &str, h: &LockRecord) -> Error {
    Error::LockHeld {
        job: job.to_string(),
        holder_run_id: h.run_id.clone(),
        holder_host: h.host.clone(),
        acquired_at: h.acquired_at.to_rfc3339(),
        expires_at: h.expires_at.to_rfc3339(),
    }
}

/// The newest generation number and, if its object is readable, its record.
async fn latest_generation(storage: &Storage, job: &str) -> Result<(Option<u64>, Option<LockRecord>)> {
    let mut latest: Option<u64> = None;
    for meta in storage.list(&layout::lock_dir(job)).await? {
        let name = meta.location.filename().unwrap_or_default();
        if let Some(n) = name.strip_suffix(".json").and_then(|s| s.parse::<u64>().ok()) {
            latest = latest.max(Some(n));
        }
    }
    let Some(g) = latest else { return Ok((None, None)) };
    let record = storage
        .get(&layout::lock_generation(job, g))
        .await?
        .and_then(|b| serde_json::from_slice::<LockRecord>(&b).ok());
    Ok((Some(g), record))
}

fn to_json(r: &LockRecord) -> Vec<u8> {
    serde_json::to_vec_pretty(r).expect("lock records serialize")
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn memory() -> Storage {
        Storage::from_store(Arc::new(object_store::memory::InMemory::new()), "", "memory://")
    }

    #[tokio::test]
    async fn second_run_is_refused_naming_the_holder() {
        let s = memory();
        let a = RunLock::acquire(&s, "acme", "run-a", Duration::from_secs(60)).await.unwrap();
        let err = RunLock::acquire(&s, "acme", "run-b", Duration::from_secs(60)).await.err().unwrap();
        assert!(err.to_string().contains("run-a"), "{err}");
        assert_eq!(err.exit_code(), 2);
        a.release().await.unwrap();
        let b = RunLock::acquire(&s, "acme", "run-b", Duration::from_secs(60)).await.unwrap();
        assert_eq!(b.record().run_id, "run-b");
    }

    #[tokio::test]
    async fn expired_lease_is_taken_over() {
        let s = memory();
        let a = RunLock::acquire(&s, "acme", "run-a", Duration::from_millis(300)).await.unwrap();
        // Simulate a killed pod: the renewer stops, the lease runs out.
        drop(a);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let b = RunLock::acquire(&s, "acme", "run-b", Duration::from_secs(60)).await.unwrap();
        assert_eq!(b.record().run_id, "run-b");
        assert_eq!(s.list("_locks/acme").await.unwrap().len(), 1, "the stale generation is cleaned up");
    }

    #[tokio::test]
    async fn a_live_holder_keeps_renewing() {
        let s = memory();
        let _a = RunLock::acquire(&s, "acme", "run-a", Duration::from_millis(600)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(RunLock::acquire(&s, "acme", "run-b", Duration::from_secs(60)).await.is_err());
    }
}
