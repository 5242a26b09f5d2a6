//! Where deliveries are stored: one object per delivery, body unchanged.
//!
//! ```text
//! webhooks/<platform>/date=YYYY-MM-DD/<received_at_ms, 13 digits>-<sha256 of body>.json
//! ```
//!
//! The received-at prefix sorts a day's objects in arrival order, which is what lets the
//! compaction keep a single watermark (the last key it compacted) instead of a list of every
//! key. The body's SHA-256 makes the name content-addressed: two copies of the same body in the
//! same millisecond are one object (created with `PutMode::Create`, never overwritten); copies
//! at other times (platform retries) are separate objects that the compaction collapses.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sha2::{Digest, Sha256};

use super::Platform;
use crate::error::{Error, Result};
use crate::storage::{Storage, StorageUrl};

/// The prefix every platform's deliveries live under.
pub fn platform_prefix(platform: Platform) -> String {
    format!("webhooks/{}", platform.name())
}

/// One day's prefix of a platform.
pub fn day_prefix(platform: Platform, day: NaiveDate) -> String {
    format!("webhooks/{}/date={day}", platform.name())
}

/// The object written by the health check (outside every platform's prefix).
pub const HEALTH_OBJECT: &str = "webhooks/_health/probe.json";

/// The key of a delivery received at `received_at` with this body.
pub fn object_key(platform: Platform, received_at: DateTime<Utc>, body: &[u8]) -> String {
    let sha = hex::encode(Sha256::digest(body));
    format!("{}/{:013}-{sha}.json", day_prefix(platform, received_at.date_naive()), received_at.timestamp_millis())
}

/// What a delivery's key says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub received_at: DateTime<Utc>,
    pub body_sha256: String,
}

/// Reads a job-relative key written by [`object_key`]; `None` for anything else.
pub fn parse_key(platform: Platform, key: &str) -> Option<ObjectName> {
    let rest = key.strip_prefix(&platform_prefix(platform))?.strip_prefix("/date=")?;
    let (day, file) = rest.split_once('/')?;
    let (ms, sha) = file.strip_suffix(".json")?.split_once('-')?;
    let ms: i64 = ms.parse().ok()?;
    let received_at = Utc.timestamp_millis_opt(ms).single()?;
    if received_at.date_naive().to_string() != day || sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(ObjectName { received_at, body_sha256: sha.to_string() })
}

/// Writes a delivery so that it survives the process being killed once this returns: one PUT
/// (atomic and durable on object stores); on `file://` storage the file and its folder are
/// also flushed to disk, since the local store renames a temporary file without syncing it.
/// Returns whether the object was new.
pub async fn write_durably(
    storage: &Storage,
    local_root: Option<&std::path::Path>,
    key: &str,
    body: bytes::Bytes,
) -> Result<bool> {
    let created = storage.put_new(key, body).await?;
    if let Some(root) = local_root {
        let file = root.join(key);
        tokio::task::spawn_blocking(move || sync_file_and_folder(&file))
            .await
            .map_err(|e| Error::Internal(format!("fsync task: {e}")))?
            .map_err(|e| Error::io(format!("cannot flush {key} to disk"), e))?;
    }
    Ok(created)
}

fn sync_file_and_folder(file: &std::path::Path) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The local folder behind a `file://` storage URL (what [`write_durably`] syncs under).
pub fn local_root(storage: &Storage) -> Option<std::path::PathBuf> {
    match StorageUrl::parse(storage.url()) {
        Ok(StorageUrl::File(path)) => Some(path),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_sort_by_arrival() {
        let t1 = Utc.with_ymd_and_hms(2026, 11, 20, 23, 59, 59).unwrap();
        let t2 = t1 + chrono::Duration::milliseconds(1500);
        let k1 = object_key(Platform::Attentive, t1, b"{}");
        let k2 = object_key(Platform::Attentive, t2, b"{}");
        assert!(k1.starts_with("webhooks/attentive/date=2026-11-20/"), "{k1}");
        assert!(k2.starts_with("webhooks/attentive/date=2026-11-21/"), "{k2}");
        assert!(k1 < k2);
        let parsed = parse_key(Platform::Attentive, &k1).unwrap();
        assert_eq!(parsed.received_at, t1);
        assert_eq!(parsed.body_sha256, hex::encode(Sha256::digest(b"{}")));
        assert_eq!(parse_key(Platform::Postscript, &k1), None);
        assert_eq!(parse_key(Platform::Attentive, HEALTH_OBJECT), None);
        assert_eq!(parse_key(Platform::Attentive, &k1.replace("date=2026-11-20", "date=2026-11-19")), None);
    }
}
