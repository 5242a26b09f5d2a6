//! One feed stream per run: which files to land, landing them, and what is missing.
//!
//! Each delivered file is landed and committed on its own, with the state that remembers it
//! (name, size, SHA-256), so a run killed mid-file lands that file again next time and nothing
//! is remembered that is not visible. A file seen again with the same content is skipped; with
//! other content it is a re-delivery and lands again (staging keeps the latest delivery of a
//! name, see the raw contracts). Upstream purges files after 30 days, so every day missing
//! between the first known day and the latest delivered one fails the stream loudly.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SOURCE;
use super::feed::{self, Delivery, Feed};
use super::pattern::FilePattern;
use super::sftp::{FeedServer, RemoteFile};
use crate::error::{Error, Result};
use crate::extract::SyncContext;
use crate::landing::{BatchBuilder, write_file};
use crate::manifest::{LandedFile, StreamSummary};
use crate::storage::layout;

/// A stream's state: every file landed so far, and the days found missing last run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FeedState {
    pub files: BTreeMap<String, LandedFeedFile>,
    #[serde(default)]
    pub missing_days: Vec<NaiveDate>,
}

/// One landed delivery of a file name (the latest one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LandedFeedFile {
    pub day: NaiveDate,
    pub size: u64,
    pub sha256: String,
    /// The server's modification time when it was landed: with the size, lets an unchanged
    /// file be skipped without downloading it again.
    pub mtime: Option<u32>,
    pub rows: u64,
    pub quarantined_rows: u64,
    pub run_id: String,
    pub landed_at: DateTime<Utc>,
    /// How many different contents of this name were landed.
    pub deliveries: u32,
}

/// What one stream's sync did.
pub struct FeedOutcome {
    pub summary: StreamSummary,
    pub errors: Vec<String>,
}

/// Lands the new and re-delivered files of one feed among `listing`.
pub async fn sync_feed(
    ctx: &SyncContext,
    server: &FeedServer,
    feed: &Feed,
    pattern: &FilePattern,
    listing: &[RemoteFile],
    start_date: NaiveDate,
) -> Result<FeedOutcome> {
    let stream = feed.stream;
    let mut state: FeedState = if ctx.full_refresh {
        FeedState::default()
    } else {
        crate::state::load(&ctx.storage, SOURCE, stream).await?.unwrap_or_default()
    };
    let last_day = ctx.run_started.date_naive();
    let mut candidates: Vec<(NaiveDate, &RemoteFile)> = listing
        .iter()
        .filter_map(|f| pattern.day(&f.name).map(|d| (d, f)))
        .filter(|(d, _)| *d >= start_date && *d <= last_day)
        .collect();
    candidates.sort_by_key(|(d, f)| (*d, f.name.clone()));

    let mut lander =
        Lander { ctx, feed, summary: StreamSummary::default(), errors: Vec::new(), part: 0, quarantined: 0 };
    let scratch = std::env::temp_dir().join(format!("lce-{SOURCE}-{}-{stream}", ctx.run_id));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| Error::Io { context: format!("source {SOURCE}: temporary folder"), cause: e })?;
    let mut state_changed = false;
    for (day, remote) in &candidates {
        let known = state.files.get(&remote.name);
        if known.is_some_and(|k| k.size == remote.size && k.mtime.is_some() && k.mtime == remote.mtime) {
            continue;
        }
        let dest = scratch.join(&remote.name);
        let download = match server.download(&remote.name, &dest).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(source = SOURCE, stream, file = %remote.name, "Feed file download failed.");
                lander.errors.push(e.to_string());
                continue;
            }
        };
        lander.summary.pages += 1;
        if let Some(k) = state.files.get_mut(&remote.name)
            && k.sha256 == download.sha256
        {
            // Same content (touched, or listed without mtime): remember the new mtime only.
            k.mtime = remote.mtime;
            state_changed = true;
            let _ = std::fs::remove_file(&download.path);
            continue;
        }
        let delivery = Delivery { file: &remote.name, sha256: &download.sha256, day: *day };
        let landed = lander.land_file(&delivery, &download.path).await;
        let _ = std::fs::remove_file(&download.path);
        let (files, rows, quarantined) = match landed {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(source = SOURCE, stream, file = %remote.name, "Feed file not landed.");
                lander.errors.push(e.to_string());
                continue;
            }
        };
        let deliveries = state.files.get(&remote.name).map_or(0, |k| k.deliveries) + 1;
        if deliveries > 1 {
            tracing::warn!(source = SOURCE, stream, file = %remote.name, deliveries, "Feed file re-delivered with new content: landed again, superseding the earlier delivery.");
        }
        state.files.insert(
            remote.name.clone(),
            LandedFeedFile {
                day: *day,
                size: download.size,
                sha256: download.sha256.clone(),
                mtime: remote.mtime,
                rows,
                quarantined_rows: quarantined,
                run_id: ctx.run_id.clone(),
                landed_at: ctx.landed_at,
                deliveries,
            },
        );
        state.missing_days.retain(|d| d != day);
        commit(ctx, stream, files, &state).await?;
        state_changed = false;
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let missing = missing_days(&state, candidates.iter().map(|(d, _)| *d));
    for day in &missing {
        tracing::error!(
            source = SOURCE,
            stream,
            day = %day,
            expected_file = %pattern.name(*day),
            "Feed file missing: no file for this day (upstream purges files after 30 days; ask Attentive to re-deliver it)."
        );
    }
    if missing != state.missing_days {
        state.missing_days = missing.clone();
        state_changed = true;
    }
    if state_changed {
        commit(ctx, stream, Vec::new(), &state).await?;
    }
    if !missing.is_empty() {
        let days: Vec<String> = missing.iter().map(ToString::to_string).collect();
        lander.errors.push(format!(
            "no feed file for day(s) {} (pattern {:?}); the other files landed",
            days.join(", "),
            pattern.text
        ));
    }
    if lander.quarantined > 0 {
        lander.errors.push(format!(
            "{} row(s) quarantined under {}",
            lander.quarantined,
            layout::quarantine(&ctx.run_id, SOURCE, stream, 0).rsplit_once('/').map_or("", |p| p.0)
        ));
    }
    let mut summary = lander.summary;
    summary.quarantined_pages = lander.quarantined;
    summary.status = if lander.errors.is_empty() { "ok" } else { "failed" }.into();
    if !lander.errors.is_empty() {
        summary.error = Some(lander.errors.join("; "));
    }
    Ok(FeedOutcome { summary, errors: lander.errors })
}

/// Days from the first known day to the latest delivered one with no file, landed or listed.
fn missing_days(state: &FeedState, listed: impl Iterator<Item = NaiveDate>) -> Vec<NaiveDate> {
    let days: BTreeSet<NaiveDate> = state.files.values().map(|f| f.day).chain(listed).collect();
    let (Some(first), Some(last)) = (days.first().copied(), days.last().copied()) else { return Vec::new() };
    first.iter_days().take_while(|d| *d <= last).filter(|d| !days.contains(d)).collect()
}

async fn commit(ctx: &SyncContext, stream: &str, files: Vec<LandedFile>, state: &FeedState) -> Result<()> {
    let value = serde_json::to_value(state).map_err(|e| Error::Internal(e.to_string()))?;
    ctx.run.commit(SOURCE, stream, files, Some(value)).await
}

/// Lands files of one stream, numbering parts across the run.
struct Lander<'a> {
    ctx: &'a SyncContext,
    feed: &'a Feed,
    summary: StreamSummary,
    errors: Vec<String>,
    part: u32,
    quarantined: u64,
}

impl Lander<'_> {
    /// Lands one downloaded file: its parts, rows landed and rows quarantined. Nothing is
    /// committed here.
    async fn land_file(
        &mut self,
        delivery: &Delivery<'_>,
        path: &std::path::Path,
    ) -> Result<(Vec<LandedFile>, u64, u64)> {
        let stream = self.feed.stream;
        let fail = |message: String| Error::Source {
            source_name: SOURCE.into(),
            stream: stream.into(),
            message: format!("file {}: {message}", delivery.file),
            cause: None,
        };
        let mut reader =
            csv::ReaderBuilder::new().flexible(true).from_path(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let headers: Vec<String> =
            reader.headers().map_err(|e| fail(format!("no header row: {e}")))?.iter().map(feed::header_key).collect();
        let absent: Vec<&str> =
            self.feed.required_columns.iter().copied().filter(|c| !headers.iter().any(|h| h == c)).collect();
        if !absent.is_empty() {
            return Err(fail(format!(
                "the header has no column(s) {}; nothing of this file was landed",
                absent.join(", ")
            )));
        }
        let contract = crate::contract::raw(SOURCE, stream)?;
        let mut builder = BatchBuilder::new(contract, &self.ctx.run_id, self.ctx.landed_at);
        let (mut files, mut rows, mut quarantined) = (Vec::new(), 0u64, 0u64);
        let mut unknown: BTreeMap<String, u64> = BTreeMap::new();
        for (i, result) in reader.records().enumerate() {
            let row_number = i as u64 + 1;
            let cells = match result {
                Ok(cells) if cells.len() == headers.len() => cells,
                Ok(cells) => {
                    let why = format!("the row has {} fields, the header {}", cells.len(), headers.len());
                    let body = Value::Array(cells.iter().map(|c| Value::String(c.to_string())).collect());
                    self.quarantine(delivery, row_number, "<row>", &why, body).await?;
                    quarantined += 1;
                    continue;
                }
                Err(e) => {
                    self.quarantine(delivery, row_number, "<row>", &format!("unreadable CSV row: {e}"), Value::Null)
                        .await?;
                    quarantined += 1;
                    continue;
                }
            };
            let (record, event_type) = feed::record(self.feed, delivery, row_number, &headers, &cells);
            if let Err(bad) = builder.push(&record, None) {
                self.quarantine(delivery, row_number, &bad.field, &bad.message, record).await?;
                quarantined += 1;
                continue;
            }
            rows += 1;
            if let Some((t, false)) = event_type {
                *unknown.entry(feed::loggable_type(&t).to_string()).or_default() += 1;
            }
            if builder.len() >= self.ctx.batch_rows {
                files.push(self.flush(&mut builder).await?);
            }
        }
        if !builder.is_empty() {
            files.push(self.flush(&mut builder).await?);
        }
        if !unknown.is_empty() {
            let types: Vec<String> = unknown.iter().map(|(t, n)| format!("{t} ({n})")).collect();
            tracing::warn!(source = SOURCE, stream, file = delivery.file, types = %types.join(", "), "Unknown event types, kept as given.");
        }
        tracing::info!(source = SOURCE, stream, file = delivery.file, rows, quarantined, "Feed file landed.");
        self.summary.records += rows;
        Ok((files, rows, quarantined))
    }

    async fn flush(&mut self, builder: &mut BatchBuilder) -> Result<LandedFile> {
        let batch = builder.finish();
        let rel =
            layout::raw_file(SOURCE, self.feed.stream, self.ctx.landed_at.date_naive(), &self.ctx.run_id, self.part);
        self.part += 1;
        let file = write_file(&self.ctx.storage, &rel, &batch).await?;
        self.summary.files += 1;
        self.summary.bytes += file.bytes;
        Ok(file)
    }

    /// Keeps a bad row with its file, row number and field; logs only where it is.
    async fn quarantine(
        &mut self,
        d: &Delivery<'_>,
        row_number: u64,
        field: &str,
        error: &str,
        body: Value,
    ) -> Result<()> {
        let stream = self.feed.stream;
        tracing::warn!(source = SOURCE, stream, file = d.file, row_number, field, "Row quarantined.");
        let n = u32::try_from(self.quarantined).unwrap_or(u32::MAX);
        self.quarantined += 1;
        let entry = serde_json::json!({
            "source": SOURCE, "stream": stream, "run_id": self.ctx.run_id, "file": d.file,
            "file_sha256": d.sha256, "row_number": row_number, "field": field, "error": error,
            "body": body, "quarantined_at": Utc::now().to_rfc3339(),
        });
        let bytes = serde_json::to_vec_pretty(&entry).map_err(|e| Error::Internal(e.to_string()))?;
        self.ctx.storage.put(&layout::quarantine(&self.ctx.run_id, SOURCE, stream, n), bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn landed(day: &str) -> LandedFeedFile {
        LandedFeedFile {
            day: day.parse().unwrap(),
            size: 1,
            sha256: "x".into(),
            mtime: None,
            rows: 1,
            quarantined_rows: 0,
            run_id: "r".into(),
            landed_at: Utc::now(),
            deliveries: 1,
        }
    }

    #[test]
    fn gaps_between_known_days_are_missing_and_purged_landed_days_are_not() {
        let mut state = FeedState::default();
        state.files.insert("a".into(), landed("2026-09-01"));
        state.files.insert("b".into(), landed("2026-09-02"));
        let listed = ["2026-09-04", "2026-09-06"].map(|d| d.parse::<NaiveDate>().unwrap());
        let missing = missing_days(&state, listed.into_iter());
        assert_eq!(missing, ["2026-09-03", "2026-09-05"].map(|d| d.parse::<NaiveDate>().unwrap()));
        assert!(missing_days(&FeedState::default(), std::iter::empty()).is_empty());
    }
}
