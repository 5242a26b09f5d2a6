//! The on-disk form of a simulated brand, which the fake servers read from.
//!
//! Layout under the store's root folder:
//!
//! ```text
//! truth.json                      SimTruth (seed, scale, totals, per-flow causal effects)
//! shop.json                       SimShop
//! <entity>.jsonl                  small entities, one record a line (metrics, flows, campaigns, products)
//! <entity>/<YYYY-MM-DD>.jsonl     daily entities, partitioned by the UTC date of their time key and
//!                                 sorted within a day by (time key, id)
//! ```
//!
//! Daily partitions keep memory bounded at any scale: the generator appends to one file a day
//! and sorts one day at a time, and a fake server answering a time-window query reads only the
//! days the window covers.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::model::{SimShop, SimTruth};

/// The kinds of record a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    Customers,
    Products,
    Orders,
    Profiles,
    ConsentChanges,
    Metrics,
    Flows,
    Campaigns,
    Events,
}

impl Entity {
    /// File or folder name in the store.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Customers => "customers",
            Entity::Products => "products",
            Entity::Orders => "orders",
            Entity::Profiles => "profiles",
            Entity::ConsentChanges => "consent_changes",
            Entity::Metrics => "metrics",
            Entity::Flows => "flows",
            Entity::Campaigns => "campaigns",
            Entity::Events => "events",
        }
    }

    /// Daily entities are partitioned by the UTC date of their time key: `updated_at` for
    /// customers, orders and profiles, `at` for consent changes, `datetime` for events.
    pub fn is_daily(self) -> bool {
        matches!(self, Entity::Customers | Entity::Orders | Entity::Profiles | Entity::ConsentChanges | Entity::Events)
    }
}

/// Read access to a generated brand.
#[derive(Debug, Clone)]
pub struct SimStore {
    root: PathBuf,
}

impl SimStore {
    /// Opens a store written by the generator; fails when `truth.json` is missing (an
    /// unfinished or foreign folder).
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        if !root.join("truth.json").is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} holds no simulated brand (truth.json missing)", root.display()),
            ));
        }
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn truth(&self) -> io::Result<SimTruth> {
        read_json(&self.root.join("truth.json"))
    }

    pub fn shop(&self) -> io::Result<SimShop> {
        read_json(&self.root.join("shop.json"))
    }

    /// Every record of a small entity, or of a daily one across all days (tests only: this
    /// holds the whole entity in memory).
    pub fn read_all<T: DeserializeOwned>(&self, entity: Entity) -> io::Result<Vec<T>> {
        if !entity.is_daily() {
            return read_jsonl(&self.root.join(format!("{}.jsonl", entity.name())));
        }
        let mut out = Vec::new();
        for day in self.days(entity)? {
            out.extend(self.read_day(entity, day)?);
        }
        Ok(out)
    }

    /// The days a daily entity has records on, ascending.
    pub fn days(&self, entity: Entity) -> io::Result<Vec<NaiveDate>> {
        let dir = self.root.join(entity.name());
        let mut days = Vec::new();
        if !dir.is_dir() {
            return Ok(days);
        }
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".jsonl")
                && let Ok(day) = NaiveDate::parse_from_str(stem, "%Y-%m-%d")
            {
                days.push(day);
            }
        }
        days.sort();
        Ok(days)
    }

    /// One day's records of a daily entity, sorted by (time key, id); empty when none.
    pub fn read_day<T: DeserializeOwned>(&self, entity: Entity, day: NaiveDate) -> io::Result<Vec<T>> {
        let path = day_path(&self.root, entity, day);
        if !path.exists() {
            return Ok(Vec::new());
        }
        read_jsonl(&path)
    }
}

/// Writes a store. Daily records are appended unsorted; [`StoreWriter::finish_daily`] sorts
/// each day file in place once generation is done.
pub struct StoreWriter {
    root: PathBuf,
    open: HashMap<(Entity, NaiveDate), BufWriter<File>>,
}

/// How many day files stay open at once; beyond it the least useful are flushed and closed.
const MAX_OPEN_DAY_FILES: usize = 256;

impl StoreWriter {
    /// Creates (or empties) the store folder.
    pub fn create(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        if root.exists() {
            fs::remove_dir_all(&root)?;
        }
        fs::create_dir_all(&root)?;
        Ok(Self { root, open: HashMap::new() })
    }

    pub fn write_shop(&self, shop: &SimShop) -> io::Result<()> {
        write_json(&self.root.join("shop.json"), shop)
    }

    /// Written last: its presence marks the store complete.
    pub fn write_truth(&mut self, truth: &SimTruth) -> io::Result<()> {
        self.flush()?;
        write_json(&self.root.join("truth.json"), truth)
    }

    /// Writes a whole small entity.
    pub fn write_all<T: Serialize>(&self, entity: Entity, records: &[T]) -> io::Result<()> {
        let mut w = BufWriter::new(File::create(self.root.join(format!("{}.jsonl", entity.name())))?);
        for r in records {
            serde_json::to_writer(&mut w, r)?;
            w.write_all(b"\n")?;
        }
        w.flush()
    }

    /// Appends one record of a daily entity, partitioned by the UTC date of `key`.
    pub fn append<T: Serialize>(&mut self, entity: Entity, key: DateTime<Utc>, record: &T) -> io::Result<()> {
        let day = key.date_naive();
        if !self.open.contains_key(&(entity, day)) {
            if self.open.len() >= MAX_OPEN_DAY_FILES {
                self.flush()?;
            }
            let path = day_path(&self.root, entity, day);
            fs::create_dir_all(path.parent().expect("day files live in a folder"))?;
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            self.open.insert((entity, day), BufWriter::new(file));
        }
        let w = self.open.get_mut(&(entity, day)).expect("inserted above");
        serde_json::to_writer(&mut *w, record)?;
        w.write_all(b"\n")
    }

    /// Flushes and closes every open day file.
    pub fn flush(&mut self) -> io::Result<()> {
        for (_, mut w) in self.open.drain() {
            w.flush()?;
        }
        Ok(())
    }

    /// Sorts every day file of `entity` by `key` (time key, id), one day in memory at a time.
    pub fn finish_daily<T, K>(&mut self, entity: Entity, key: impl Fn(&T) -> K) -> io::Result<()>
    where
        T: DeserializeOwned + Serialize,
        K: Ord,
    {
        self.flush()?;
        let store = SimStore { root: self.root.clone() };
        for day in store.days(entity)? {
            let mut records: Vec<T> = store.read_day(entity, day)?;
            records.sort_by_key(|r| key(r));
            let path = day_path(&self.root, entity, day);
            let tmp = path.with_extension("jsonl.tmp");
            let mut w = BufWriter::new(File::create(&tmp)?);
            for r in &records {
                serde_json::to_writer(&mut w, r)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
            fs::rename(tmp, path)?;
        }
        Ok(())
    }
}

fn day_path(root: &Path, entity: Entity, day: NaiveDate) -> PathBuf {
    root.join(entity.name()).join(format!("{}.jsonl", day.format("%Y-%m-%d")))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let file = File::open(path)?;
    serde_json::from_reader(BufReader::new(file)).map_err(|e| invalid(path, e))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    serde_json::to_writer_pretty(&mut w, value)?;
    w.flush()
}

fn read_jsonl<T: DeserializeOwned>(path: &Path) -> io::Result<Vec<T>> {
    let file = File::open(path)?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| invalid(path, format!("line {}: {e}", i + 1)))?);
    }
    Ok(out)
}

fn invalid(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
}
