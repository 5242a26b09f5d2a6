//! Per-stream state (cursor, watermark), kept in `_state/<source>/<stream>.json`.
//!
//! Written only by [`crate::manifest::RunWriter::commit`], after the files it covers are
//! committed, so state never claims data that is not visible.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::storage::{Storage, layout};

/// Loads a stream's state; `None` on a first run or after `--full-refresh`.
pub async fn load<T: DeserializeOwned>(storage: &Storage, source: &str, stream: &str) -> Result<Option<T>> {
    let key = layout::state(source, stream);
    match storage.get(&key).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::config(format!("state {key} is unreadable ({e}); re-run with --full-refresh to rebuild it"))
        }),
    }
}

/// Saves a stream's state (one atomic PUT).
pub async fn save<T: Serialize>(storage: &Storage, source: &str, stream: &str, state: &T) -> Result<()> {
    let body = serde_json::to_vec_pretty(state).map_err(|e| Error::Internal(e.to_string()))?;
    storage.put(&layout::state(source, stream), body).await
}

/// Forgets a stream's state (`--full-refresh`).
pub async fn clear(storage: &Storage, source: &str, stream: &str) -> Result<()> {
    storage.delete(&layout::state(source, stream)).await
}
