//! Postscript's Data Warehouse Push (apis.md 4.4 B): Postscript has no pull API for sends,
//! clicks or attributed orders, so the brand unloads its warehouse-push tables to object storage,
//! one folder per table under `[sources.postscript.warehouse].url` (`fct_messages/`,
//! `dim_messages/`, `fct_attribution/`, `fct_clicks/`, `subscribers/`), as Parquet or CSV files,
//! and each run lands the files it has not landed yet as the raw stream `warehouse_<table>`.
//!
//! A file is landed and committed on its own, with the state that remembers it (path, size,
//! ETag, modification time, SHA-256 of its bytes), so a run killed mid-file lands that file again
//! next time and state never names a file whose rows are not visible. A listed file whose size,
//! ETag and time match the state is not downloaded; one downloaded with the same content only
//! refreshes the state; other content under a known path (a rewrite in place) lands again, as
//! a new `file_sha256`. Rows are corrected by later copies with a later `_updated_at`: staging
//! keeps the latest per business key (see the raw contracts). A file that disappears is logged
//! once at info and stays remembered.
//!
//! A file lacking a required column, or that cannot be read at all, lands nothing: it is
//! quarantined (an entry naming source, stream, file and field) and its stream fails; it is
//! tried again each run until its content changes. A row whose value does not parse is
//! quarantined alone, naming its row and field, and the rest of its file lands.

pub mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::SOURCE;
use crate::config::{PostscriptWarehouseConfig, Secrets};
use crate::error::{Error, Result};
use crate::extract::SyncContext;
use crate::landing::{BatchBuilder, write_file};
use crate::manifest::{LandedFile, StreamSummary};
use crate::storage::{Storage, layout};
use read::{FileFormat, Row, RowReader};

/// The tables, by folder name, in the order a run lands them.
pub const TABLE_NAMES: &[&str] = &["fct_messages", "dim_messages", "fct_attribution", "fct_clicks", "subscribers"];

/// The raw stream a table lands as.
pub fn stream_of(table: &str) -> String {
    format!("warehouse_{table}")
}

/// Whether `stream` is one of the warehouse streams.
pub fn is_stream(stream: &str) -> bool {
    stream.strip_prefix("warehouse_").is_some_and(|t| TABLE_NAMES.contains(&t))
}

/// A stream's state: every file landed so far, by path relative to the prefix.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WarehouseState {
    pub files: BTreeMap<String, LandedObject>,
}

/// The latest landed content of one file path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LandedObject {
    pub size: u64,
    /// The store's ETag of the landed content (S3: the object's; local files: derived from
    /// inode, size and time).
    pub e_tag: Option<String>,
    pub last_modified: DateTime<Utc>,
    pub sha256: String,
    pub rows: u64,
    pub quarantined_rows: u64,
    pub run_id: String,
    pub landed_at: DateTime<Utc>,
    /// How many different contents of this path were landed.
    pub versions: u32,
    /// Not listed any more (reported once, at info); the file is still remembered.
    #[serde(default)]
    pub gone: bool,
}

impl LandedObject {
    /// Whether a listing shows the landed content without reading it again.
    fn unchanged(&self, meta: &ObjectMeta) -> bool {
        self.size == meta.size && self.last_modified == meta.last_modified && self.e_tag == meta.e_tag
    }
}

/// Lands every selected table (all of them, or the one `only_stream` names). A configuration
/// problem (a missing secret) stops the run; a store that cannot be reached fails the streams and
/// the other sources still land.
pub async fn sync(
    cfg: &PostscriptWarehouseConfig,
    secrets: &Secrets,
    ctx: &SyncContext,
    only_stream: Option<&str>,
) -> Result<(BTreeMap<String, StreamSummary>, Vec<Error>)> {
    let configured: Vec<&str> = match &cfg.tables {
        Some(t) => TABLE_NAMES.iter().copied().filter(|n| t.iter().any(|c| c == n)).collect(),
        None => TABLE_NAMES.to_vec(),
    };
    let tables: Vec<&str> =
        configured.iter().copied().filter(|t| only_stream.is_none_or(|s| s == stream_of(t))).collect();
    if let Some(s) = only_stream
        && tables.is_empty()
    {
        let names: Vec<String> = configured.iter().map(|t| stream_of(t)).collect();
        return Err(Error::config(format!(
            "--stream {s}: the configured warehouse tables of source {SOURCE} land as {}",
            names.join(", ")
        )));
    }
    let mut summaries = BTreeMap::new();
    let mut failures = Vec::new();
    let store = match Storage::open_source(&cfg.store_config(), secrets, "sources.postscript.warehouse") {
        Ok(s) => s,
        Err(e @ Error::Config { .. }) => return Err(e),
        Err(e) => {
            for t in &tables {
                let summary =
                    StreamSummary { status: "failed".into(), error: Some(e.to_string()), ..Default::default() };
                summaries.insert(format!("{SOURCE}.{}", stream_of(t)), summary);
            }
            failures.push(e);
            return Ok((summaries, failures));
        }
    };
    for table in tables {
        let stream = stream_of(table);
        let outcome = match sync_table(ctx, &store, cfg, table).await {
            Ok(o) => o,
            Err(e) => Outcome {
                summary: StreamSummary { status: "failed".into(), error: Some(e.to_string()), ..Default::default() },
                errors: vec![e.to_string()],
            },
        };
        let s = &outcome.summary;
        tracing::info!(source = SOURCE, stream, records = s.records, files = s.pages, status = %s.status, "Stream finished.");
        if !outcome.errors.is_empty() {
            failures.push(Error::Source {
                source_name: SOURCE.into(),
                stream: stream.clone(),
                message: outcome.errors.join("; "),
                cause: None,
            });
        }
        summaries.insert(format!("{SOURCE}.{stream}"), outcome.summary);
    }
    Ok((summaries, failures))
}

/// What one stream's sync did.
struct Outcome {
    summary: StreamSummary,
    errors: Vec<String>,
}

/// Lands the new and rewritten files of one table.
async fn sync_table(
    ctx: &SyncContext,
    store: &Storage,
    cfg: &PostscriptWarehouseConfig,
    table: &str,
) -> Result<Outcome> {
    let stream = stream_of(table);
    let mut state: WarehouseState = if ctx.full_refresh {
        WarehouseState::default()
    } else {
        crate::state::load(&ctx.storage, SOURCE, &stream).await?.unwrap_or_default()
    };
    let listing = store.list(table).await?;
    let mut candidates = Vec::new();
    let mut ignored = 0usize;
    for meta in listing {
        let rel = store.relative(&meta.location);
        match FileFormat::of(meta.location.filename().unwrap_or_default(), cfg.format) {
            Some(format) => candidates.push((rel, meta, format)),
            None => ignored += 1,
        }
    }
    if ignored > 0 {
        tracing::info!(source = SOURCE, stream, ignored, "Objects that are not .parquet or .csv table files ignored.");
    }
    // Older files first: corrections come in newer files (staging orders by `_updated_at` anyway).
    candidates.sort_by(|a, b| (a.1.last_modified, &a.0).cmp(&(b.1.last_modified, &b.0)));

    let mut lander =
        Lander { ctx, stream: &stream, summary: StreamSummary::default(), errors: Vec::new(), part: 0, quarantined: 0 };
    let scratch = std::env::temp_dir().join(format!("lce-{SOURCE}-{}-{stream}", ctx.run_id));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| Error::io(format!("source {SOURCE}: temporary folder {}", scratch.display()), e))?;
    let listed: BTreeSet<String> = candidates.iter().map(|c| c.0.clone()).collect();
    let mut state_changed = false;
    for (rel, meta, format) in &candidates {
        if let Some(known) = state.files.get_mut(rel)
            && known.unchanged(meta)
        {
            if known.gone {
                known.gone = false;
                state_changed = true;
            }
            continue;
        }
        let download = match download(store, meta, &scratch.join(lander.summary.pages.to_string())).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(source = SOURCE, stream, file = %rel, "Warehouse file download failed.");
                lander.errors.push(format!("file {rel}: {e}"));
                continue;
            }
        };
        lander.summary.pages += 1;
        if let Some(k) = state.files.get_mut(rel)
            && k.sha256 == download.sha256
        {
            // Same content (touched, or copied again): remember how it is listed now.
            (k.size, k.e_tag, k.last_modified, k.gone) =
                (download.meta.size, download.meta.e_tag.clone(), download.meta.last_modified, false);
            state_changed = true;
            let _ = std::fs::remove_file(&download.path);
            continue;
        }
        let file = FileVersion { rel, sha256: &download.sha256 };
        let landed = lander.land_file(&file, &download.path, *format).await;
        let _ = std::fs::remove_file(&download.path);
        let (files, rows, quarantined) = match landed {
            Ok(Landed::Rows { files, rows, quarantined }) => (files, rows, quarantined),
            Ok(Landed::Rejected) => continue,
            Err(e) => {
                tracing::error!(source = SOURCE, stream, file = %rel, "Warehouse file not landed.");
                lander.errors.push(e.to_string());
                continue;
            }
        };
        let versions = state.files.get(rel).map_or(0, |k| k.versions) + 1;
        if versions > 1 {
            tracing::warn!(source = SOURCE, stream, file = %rel, versions, "Warehouse file rewritten with new content: landed again.");
        }
        state.files.insert(
            rel.clone(),
            LandedObject {
                size: download.meta.size,
                e_tag: download.meta.e_tag.clone(),
                last_modified: download.meta.last_modified,
                sha256: download.sha256.clone(),
                rows,
                quarantined_rows: quarantined,
                run_id: ctx.run_id.clone(),
                landed_at: ctx.landed_at,
                versions,
                gone: false,
            },
        );
        commit(ctx, &stream, files, &state).await?;
        state_changed = false;
    }
    let _ = std::fs::remove_dir_all(&scratch);

    for (rel, known) in state.files.iter_mut().filter(|(rel, k)| !k.gone && !listed.contains(*rel)) {
        tracing::info!(source = SOURCE, stream, file = %rel, "Warehouse file no longer listed; its landed rows stay.");
        known.gone = true;
        state_changed = true;
    }
    if state_changed {
        commit(ctx, &stream, Vec::new(), &state).await?;
    }
    if lander.quarantined > 0 {
        let at = layout::quarantine(&ctx.run_id, SOURCE, &stream, 0);
        lander.errors.push(format!(
            "{} quarantine entr(y/ies) under {}",
            lander.quarantined,
            at.rsplit_once('/').map_or("", |p| p.0)
        ));
    }
    let mut summary = lander.summary;
    summary.quarantined_pages = lander.quarantined;
    summary.status = if lander.errors.is_empty() { "ok" } else { "failed" }.into();
    if !lander.errors.is_empty() {
        summary.error = Some(lander.errors.join("; "));
    }
    Ok(Outcome { summary, errors: lander.errors })
}

async fn commit(ctx: &SyncContext, stream: &str, files: Vec<LandedFile>, state: &WarehouseState) -> Result<()> {
    let value = serde_json::to_value(state).map_err(|e| Error::Internal(e.to_string()))?;
    ctx.run.commit(SOURCE, stream, files, Some(value)).await
}

/// A file downloaded to a local path, with the metadata of the version read and its hash.
struct Download {
    path: PathBuf,
    meta: ObjectMeta,
    sha256: String,
}

/// Streams one object to `dest`, hashing on the way.
async fn download(store: &Storage, meta: &ObjectMeta, dest: &Path) -> Result<Download> {
    let object = store.object_store();
    let got =
        object.get(&meta.location).await.map_err(|e| Error::storage(format!("cannot read {}", meta.location), e))?;
    let read_meta = got.meta.clone();
    let mut body = got.into_stream();
    let mut out =
        tokio::fs::File::create(dest).await.map_err(|e| Error::io(format!("cannot create {}", dest.display()), e))?;
    let mut hash = Sha256::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::storage(format!("cannot read {}", meta.location), e))?;
        hash.update(&chunk);
        out.write_all(&chunk).await.map_err(|e| Error::io(format!("cannot write {}", dest.display()), e))?;
    }
    out.flush().await.map_err(|e| Error::io(format!("cannot write {}", dest.display()), e))?;
    Ok(Download { path: dest.to_path_buf(), meta: read_meta, sha256: hex::encode(hash.finalize()) })
}

/// Which file version rows come from.
struct FileVersion<'a> {
    rel: &'a str,
    sha256: &'a str,
}

/// What landing one file did.
enum Landed {
    Rows {
        files: Vec<LandedFile>,
        rows: u64,
        quarantined: u64,
    },
    /// Nothing landed: the file is quarantined as a whole.
    Rejected,
}

/// Lands files of one stream, numbering parts across the run.
struct Lander<'a> {
    ctx: &'a SyncContext,
    stream: &'a str,
    summary: StreamSummary,
    errors: Vec<String>,
    part: u32,
    quarantined: u64,
}

impl Lander<'_> {
    /// Lands one downloaded file (nothing is committed here).
    async fn land_file(&mut self, file: &FileVersion<'_>, path: &Path, format: FileFormat) -> Result<Landed> {
        let contract = crate::contract::raw(SOURCE, self.stream)?;
        let mut reader = match RowReader::open(path, format) {
            Ok(r) => r,
            Err(why) => return self.reject(file, "<file>", &why).await,
        };
        let required: Vec<&str> = contract
            .columns
            .iter()
            .filter(|c| !c.nullable)
            .filter_map(|c| c.path.as_deref().and_then(|p| p.strip_prefix("/row/")))
            .collect();
        let absent: Vec<&str> = required.iter().copied().filter(|c| !reader.columns().iter().any(|h| h == c)).collect();
        if !absent.is_empty() {
            let why = format!("the file has no column(s) {}; nothing of this file was landed", absent.join(", "));
            return self.reject(file, &absent.join(","), &why).await;
        }
        let optional_absent: Vec<&str> = contract
            .columns
            .iter()
            .filter_map(|c| c.path.as_deref().and_then(|p| p.strip_prefix("/row/")))
            .filter(|c| !reader.columns().iter().any(|h| h == c))
            .collect();
        if !optional_absent.is_empty() {
            tracing::warn!(source = SOURCE, stream = self.stream, file = file.rel, columns = %optional_absent.join(", "), "Nullable columns absent from the file: landed as NULL.");
        }
        let mut builder = BatchBuilder::new(contract, &self.ctx.run_id, self.ctx.landed_at);
        let (mut files, mut rows, mut quarantined) = (Vec::new(), 0u64, 0u64);
        while let Some(next) = reader.next_row() {
            let (row_number, row) = match next {
                Ok(r) => r,
                Err(why) => return Err(self.fail(file, &why)),
            };
            let cells = match row {
                Row::Cells(cells) => cells,
                Row::Unreadable { why, body } => {
                    self.quarantine(file, Some(row_number), "<row>", &why, body).await?;
                    quarantined += 1;
                    continue;
                }
            };
            let record = record(file, row_number, cells);
            if let Err(bad) = builder.push(&record, None) {
                self.quarantine(file, Some(row_number), &bad.field, &bad.message, record).await?;
                quarantined += 1;
                continue;
            }
            rows += 1;
            if builder.len() >= self.ctx.batch_rows {
                files.push(self.flush(&mut builder).await?);
            }
        }
        if !builder.is_empty() {
            files.push(self.flush(&mut builder).await?);
        }
        if quarantined > 0 {
            tracing::warn!(
                source = SOURCE,
                stream = self.stream,
                file = file.rel,
                rows,
                quarantined,
                "Warehouse file landed without its quarantined rows."
            );
        } else {
            tracing::info!(source = SOURCE, stream = self.stream, file = file.rel, rows, "Warehouse file landed.");
        }
        self.summary.records += rows;
        Ok(Landed::Rows { files, rows, quarantined })
    }

    fn fail(&self, file: &FileVersion<'_>, why: &str) -> Error {
        Error::Source {
            source_name: SOURCE.into(),
            stream: self.stream.into(),
            message: format!("file {}: {why}", file.rel),
            cause: None,
        }
    }

    /// Quarantines a whole file: an entry naming it and the field, and an error for the stream.
    async fn reject(&mut self, file: &FileVersion<'_>, field: &str, why: &str) -> Result<Landed> {
        tracing::error!(
            source = SOURCE,
            stream = self.stream,
            file = file.rel,
            field,
            "Warehouse file quarantined: nothing of it landed."
        );
        self.quarantine(file, None, field, why, Value::Null).await?;
        self.errors.push(format!("file {} (field {field}): {why}", file.rel));
        Ok(Landed::Rejected)
    }

    async fn flush(&mut self, builder: &mut BatchBuilder) -> Result<LandedFile> {
        let batch = builder.finish();
        let rel = layout::raw_file(SOURCE, self.stream, self.ctx.landed_at.date_naive(), &self.ctx.run_id, self.part);
        self.part += 1;
        let file = write_file(&self.ctx.storage, &rel, &batch).await?;
        self.summary.files += 1;
        self.summary.bytes += file.bytes;
        Ok(file)
    }

    /// Keeps a bad row (or a whole file's reason, without a row) with its file and field; logs
    /// only where it is, never the values.
    async fn quarantine(
        &mut self,
        file: &FileVersion<'_>,
        row_number: Option<u64>,
        field: &str,
        error: &str,
        body: Value,
    ) -> Result<()> {
        if let Some(row_number) = row_number {
            tracing::warn!(
                source = SOURCE,
                stream = self.stream,
                file = file.rel,
                row_number,
                field,
                "Row quarantined."
            );
        }
        let n = u32::try_from(self.quarantined).unwrap_or(u32::MAX);
        self.quarantined += 1;
        let entry = serde_json::json!({
            "source": SOURCE, "stream": self.stream, "run_id": self.ctx.run_id, "file": file.rel,
            "file_sha256": file.sha256, "row_number": row_number, "field": field, "error": error,
            "body": body, "quarantined_at": Utc::now().to_rfc3339(),
        });
        let bytes = serde_json::to_vec_pretty(&entry).map_err(|e| Error::Internal(e.to_string()))?;
        self.ctx.storage.put(&layout::quarantine(&self.ctx.run_id, SOURCE, self.stream, n), bytes).await
    }
}

/// The record landed for one row: the file version and row number, and every cell under `row`
/// (extra columns included, so `_raw` keeps them).
fn record(file: &FileVersion<'_>, row_number: u64, cells: Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("source_file".into(), file.rel.into());
    out.insert("file_sha256".into(), file.sha256.into());
    out.insert("row_number".into(), row_number.into());
    out.insert("row".into(), Value::Object(cells));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_a_contract_with_the_file_key() {
        for t in TABLE_NAMES {
            let c = crate::contract::raw(SOURCE, &stream_of(t)).unwrap();
            assert_eq!(c.primary_key, ["source_file", "file_sha256", "row_number"], "{t}");
            assert!(c.column("_updated_at").is_some_and(|u| !u.nullable), "{t}");
            assert!(is_stream(&stream_of(t)));
        }
        assert!(!is_stream("subscribers") && !is_stream("warehouse_keywords"));
    }
}
