//! Keyset cursor pagination over day-partitioned or in-memory records.
//!
//! Cursors hold the sort key of the boundary record rather than an offset, so records
//! inserted while a client paginates shift nothing (as with Klaviyo's cursors), and a page
//! of events needs only the day files from the cursor onwards, never the whole history.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::simulate::store::{Entity, SimStore};

/// The primary sort value of a record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyVal {
    Int(i64),
    Str(String),
}

/// Sort value plus id: ties on the sort value break by id, so the order is total and a
/// cursor never skips or repeats same-second records.
pub type Key = (KeyVal, String);

/// What a cursor encodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Endpoint and sort the cursor belongs to; a cursor replayed elsewhere is invalid.
    pub ep: String,
    pub sort: String,
    /// `true` for a `prev` cursor: the page ends just before `key`.
    pub before: bool,
    pub key: Key,
}

/// One page and the boundary keys of its neighbours.
#[derive(Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<Key>,
    pub prev: Option<Key>,
}

/// Scans chunks in scan order, each sorted ascending by `key`, taking up to `limit` records
/// strictly beyond `start` that pass `keep`; also says whether more would follow.
pub fn scan<T: Clone>(
    chunks: impl IntoIterator<Item = io::Result<Arc<Vec<T>>>>,
    ascending: bool,
    start: Option<&Key>,
    limit: usize,
    key: impl Fn(&T) -> Key,
    keep: impl Fn(&T) -> bool,
) -> io::Result<(Vec<T>, bool)> {
    let mut out = Vec::with_capacity(limit.min(1024) + 1);
    for chunk in chunks {
        let chunk = chunk?;
        // Binary search past the cursor instead of filtering: pages deep into a large day
        // stay cheap.
        let (lo, hi) = match (start, ascending) {
            (Some(s), true) => (chunk.partition_point(|r| key(r) <= *s), chunk.len()),
            (Some(s), false) => (0, chunk.partition_point(|r| key(r) < *s)),
            (None, _) => (0, chunk.len()),
        };
        let slice = &chunk[lo..hi];
        let iter: Box<dyn Iterator<Item = &T>> =
            if ascending { Box::new(slice.iter()) } else { Box::new(slice.iter().rev()) };
        for r in iter.filter(|r| keep(r)) {
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push(r.clone());
        }
    }
    Ok((out, false))
}

/// Turns a cursor into a page: `fetch(ascending, start, limit)` runs the scan.
pub fn paginate<T>(
    descending: bool,
    cursor: Option<&Position>,
    size: usize,
    key: impl Fn(&T) -> Key,
    fetch: impl FnOnce(bool, Option<&Key>, usize) -> io::Result<(Vec<T>, bool)>,
) -> io::Result<Paged<T>> {
    let before = cursor.is_some_and(|c| c.before);
    let ascending = descending == before;
    let (mut items, more) = fetch(ascending, cursor.map(|c| &c.key), size)?;
    if before {
        items.reverse();
        Ok(Paged { prev: if more { items.first().map(&key) } else { None }, next: items.last().map(&key), items })
    } else {
        Ok(Paged {
            next: if more { items.last().map(&key) } else { None },
            prev: if cursor.is_some() { items.first().map(&key) } else { None },
            items,
        })
    }
}

/// A few recently read day files, parsed and sorted, so consecutive pages of one day do not
/// re-parse it; entries are checked against the file's size and mtime, so a test appending
/// late records to the store sees them on the next request.
pub struct DayCache<T> {
    entity: Entity,
    capacity: usize,
    sort_key: fn(&T) -> Key,
    entries: Mutex<VecDeque<CachedDay<T>>>,
}

/// File size and mtime: enough to notice a day file was rewritten.
type Stamp = (u64, Option<SystemTime>);

type CachedDay<T> = (NaiveDate, Stamp, Arc<Vec<T>>);

impl<T: DeserializeOwned> DayCache<T> {
    pub fn new(entity: Entity, capacity: usize, sort_key: fn(&T) -> Key) -> Self {
        Self { entity, capacity, sort_key, entries: Mutex::new(VecDeque::new()) }
    }

    pub fn day(&self, store: &SimStore, day: NaiveDate) -> io::Result<Arc<Vec<T>>> {
        let path: PathBuf = store.root().join(self.entity.name()).join(format!("{}.jsonl", day.format("%Y-%m-%d")));
        let stamp = match std::fs::metadata(&path) {
            Ok(m) => (m.len(), m.modified().ok()),
            Err(_) => return Ok(Arc::new(Vec::new())),
        };
        {
            let mut entries = self.entries.lock().expect("day cache lock poisoned");
            if let Some(pos) = entries.iter().position(|(d, s, _)| *d == day && *s == stamp) {
                let entry = entries.remove(pos).expect("position is in range");
                let records = entry.2.clone();
                entries.push_back(entry);
                return Ok(records);
            }
        }
        let mut records: Vec<T> = store.read_day(self.entity, day)?;
        // The store promises sorted days, but keyset paging silently breaks on an unsorted
        // one, so make sure rather than trust.
        records.sort_by_cached_key(self.sort_key);
        let records = Arc::new(records);
        let mut entries = self.entries.lock().expect("day cache lock poisoned");
        entries.retain(|(d, _, _)| *d != day);
        if entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((day, stamp, records.clone()));
        Ok(records)
    }
}

/// A whole small entity (or a whole daily one sorted another way), cached until the store
/// changes; `signature` is whatever cheaply detects a change.
pub struct Snapshot<T> {
    inner: Mutex<Option<Cached<T>>>,
}

/// Tag, signature and the records loaded under them.
type Cached<T> = (String, Duration, Arc<Vec<T>>);

impl<T> Default for Snapshot<T> {
    fn default() -> Self {
        Self { inner: Mutex::new(None) }
    }
}

impl<T> Snapshot<T> {
    /// Returns the cached records for `tag` (e.g. a sort) if `signature` is unchanged, else
    /// reloads with `load`.
    pub fn get(
        &self,
        tag: &str,
        signature: Duration,
        load: impl FnOnce() -> io::Result<Vec<T>>,
    ) -> io::Result<Arc<Vec<T>>> {
        let mut inner = self.inner.lock().expect("snapshot lock poisoned");
        if let Some((t, s, records)) = inner.as_ref()
            && t == tag
            && *s == signature
        {
            return Ok(records.clone());
        }
        let records = Arc::new(load()?);
        *inner = Some((tag.to_string(), signature, records.clone()));
        Ok(records)
    }
}

/// Latest modification time (since the epoch) of a file or of the files in a folder: a cheap
/// change detector for [`Snapshot`].
pub fn modified_signature(path: &std::path::Path) -> Duration {
    let stamp = |p: &std::path::Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .unwrap_or_default()
    };
    let mut latest = stamp(path);
    if let Ok(dir) = std::fs::read_dir(path) {
        for entry in dir.flatten() {
            latest = latest.max(stamp(&entry.path()));
        }
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: i64) -> Key {
        (KeyVal::Int(n), format!("{n:03}"))
    }

    #[test]
    fn pages_forward_and_back() {
        let chunks = vec![Arc::new((0..5).collect::<Vec<i64>>()), Arc::new((5..12).collect())];
        let fetch_all = |cur: Option<&Position>, desc: bool| {
            paginate(
                desc,
                cur,
                4,
                |n: &i64| k(*n),
                |asc, start, limit| {
                    let ordered: Vec<_> = if asc { chunks.clone() } else { chunks.iter().rev().cloned().collect() };
                    scan(ordered.into_iter().map(Ok), asc, start, limit, |n| k(*n), |n| n % 3 != 0)
                },
            )
            .unwrap()
        };
        let p1 = fetch_all(None, false);
        assert_eq!(p1.items, vec![1, 2, 4, 5]);
        assert!(p1.prev.is_none());
        let c2 = Position { ep: "t".into(), sort: "x".into(), before: false, key: p1.next.unwrap() };
        let p2 = fetch_all(Some(&c2), false);
        assert_eq!(p2.items, vec![7, 8, 10, 11]);
        assert!(p2.next.is_none());
        let back = Position { before: true, key: p2.prev.unwrap(), ..c2.clone() };
        let p1b = fetch_all(Some(&back), false);
        assert_eq!(p1b.items, vec![1, 2, 4, 5]);
        assert!(p1b.prev.is_none());
        let d1 = fetch_all(None, true);
        assert_eq!(d1.items, vec![11, 10, 8, 7]);
    }
}
