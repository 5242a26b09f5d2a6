//! The nightly compaction: stored deliveries → raw Parquet of `<platform>.webhook_events`.
//!
//! Each run lists the platform's objects after its watermark (the last object key compacted,
//! kept in the stream state) and up to the run's start less `settle_seconds` (a write still in
//! flight may finish after later keys are visible; the next run takes it). Every object is read
//! into one row ([`super::event`]), deduplicated on its key (type, subscriber, event time,
//! message id) within the run and against the rows committed in the last
//! [`DEDUP_LOOKBACK_DAYS`] landed days (all of them on `--full-refresh`), landed through the
//! landing code and committed part by part with the watermark of the last object it covers.
//!
//! The state is read back from the stream's last *commit*, not from `_state/`: the commit holds
//! the files and the watermark in one object, so a run killed between the commit and the state
//! file neither loses nor repeats anything. An object that cannot be read is quarantined
//! (reported with platform, key and field; the object stays where it is) and the watermark
//! moves past it so it does not block the others.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::event::{self, WebhookEvent};
use super::objects::{self, ObjectName};
use super::{Platform, STREAM};
use crate::error::{Error, Result};
use crate::extract::SyncContext;
use crate::landing::{BatchBuilder, write_file};
use crate::manifest::{LandedFile, StreamSummary};
use crate::storage::{Storage, layout};

/// Copies of an event landed this many days back are still seen as duplicates.
pub const DEDUP_LOOKBACK_DAYS: i64 = 7;
/// Objects read at once.
const READ_CONCURRENCY: usize = 16;

/// The stream state, saved with each commit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CompactionState {
    /// Every object up to this key (inclusive) is compacted, quarantined or a duplicate.
    pub compacted_through: Option<String>,
    pub run_id: String,
}

/// What one platform's compaction did, beyond the stream summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub summary: StreamSummary,
    pub duplicates: u64,
    /// Rows whose type is not in the documented lists, by type.
    pub unknown_types: BTreeMap<String, u64>,
    /// `(object key, field, message)` of each quarantined object.
    pub quarantined: Vec<(String, String, String)>,
}

/// Compacts every configured platform the sync's `--source` / `--stream` select.
pub async fn run_selected(
    cfg: &crate::config::WebhooksConfig,
    ctx: &SyncContext,
    selection: &crate::pipeline::SyncSelection,
) -> (BTreeMap<String, StreamSummary>, Vec<Error>) {
    let platforms: Vec<Platform> = super::configured(cfg)
        .into_iter()
        .filter(|p| selection.source.as_deref().is_none_or(|s| s == p.name()))
        .filter(|_| selection.stream.as_deref().is_none_or(|s| s == STREAM))
        .collect();
    let settle = Duration::seconds(i64::try_from(cfg.settle_seconds).unwrap_or(i64::MAX / 1_000_000));
    run(&platforms, ctx, settle).await
}

/// Compacts each platform in turn; a platform that fails does not stop the other.
pub async fn run(
    platforms: &[Platform],
    ctx: &SyncContext,
    settle: Duration,
) -> (BTreeMap<String, StreamSummary>, Vec<Error>) {
    let mut summaries = BTreeMap::new();
    let mut failures = Vec::new();
    for &p in platforms {
        let name = format!("{}.{STREAM}", p.name());
        match compact(p, ctx, settle).await {
            Ok(r) => {
                tracing::info!(
                    source = p.name(),
                    stream = STREAM,
                    records = r.summary.records,
                    objects = r.summary.pages,
                    duplicates = r.duplicates,
                    quarantined = r.quarantined.len(),
                    "Stream finished."
                );
                summaries.insert(name, r.summary);
            }
            Err(e) => {
                let summary = StreamSummary {
                    status: "failed".into(),
                    error: Some(crate::error::Chain(&e).to_string()),
                    ..Default::default()
                };
                summaries.insert(name, summary);
                failures.push(e);
            }
        }
    }
    (summaries, failures)
}

fn source_error(p: Platform, message: String) -> Error {
    Error::Source { source_name: p.name().into(), stream: STREAM.into(), message, cause: None }
}

/// The state of the stream's last commit that carried one.
async fn last_state(storage: &Storage, p: Platform) -> Result<Option<CompactionState>> {
    let commits = crate::manifest::all_commits(storage).await?;
    let Some(value) =
        commits.into_iter().rev().filter(|c| c.source == p.name() && c.stream == STREAM).find_map(|c| c.state)
    else {
        return Ok(None);
    };
    serde_json::from_value(value).map(Some).map_err(|e| source_error(p, format!("unreadable compaction state: {e}")))
}

/// Object keys after `after` and received no later than `cutoff`, in key (arrival) order.
async fn pending_objects(
    storage: &Storage,
    p: Platform,
    after: Option<&str>,
    cutoff: DateTime<Utc>,
) -> Result<Vec<(String, ObjectName)>> {
    let first_day = after.and_then(|k| objects::parse_key(p, k)).map(|n| n.received_at.date_naive());
    let prefixes: Vec<String> = match first_day {
        None => vec![objects::platform_prefix(p)],
        Some(d) => d.iter_days().take_while(|d| *d <= cutoff.date_naive()).map(|d| objects::day_prefix(p, d)).collect(),
    };
    let mut out = Vec::new();
    for prefix in prefixes {
        for meta in storage.list(&prefix).await? {
            let key = storage.relative(&meta.location);
            if after.is_some_and(|a| key.as_str() <= a) {
                continue;
            }
            match objects::parse_key(p, &key) {
                Some(name) if name.received_at <= cutoff => out.push((key, name)),
                Some(_) => {}
                None => {
                    tracing::warn!(source = p.name(), stream = STREAM, key = %key, "Not a delivery object; ignored.")
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The dedup keys of rows already committed within the lookback (or all of them).
async fn committed_keys(storage: &Storage, p: Platform, since: Option<NaiveDate>) -> Result<HashSet<String>> {
    use arrow::array::AsArray;
    let mut keys = HashSet::new();
    for file in crate::manifest::visible_files(storage, p.name(), STREAM).await? {
        let landed =
            file.path.split('/').find_map(|s| s.strip_prefix("landed_date=")).and_then(|d| d.parse::<NaiveDate>().ok());
        if since.is_some_and(|s| landed.is_some_and(|d| d < s)) {
            continue;
        }
        let bytes = storage
            .get(&file.path)
            .await?
            .ok_or_else(|| source_error(p, format!("committed file {} is missing from storage", file.path)))?;
        let fail = |e: &dyn std::fmt::Display| source_error(p, format!("cannot read {}: {e}", file.path));
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| fail(&e))?;
        let idx = builder.schema().index_of("dedup_key").map_err(|e| fail(&e))?;
        let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), [idx]);
        for batch in builder.with_projection(mask).build().map_err(|e| fail(&e))? {
            let batch = batch.map_err(|e| fail(&e))?;
            keys.extend(batch.column(0).as_string::<i32>().iter().flatten().map(str::to_string));
        }
    }
    Ok(keys)
}

/// The row landed for a delivery: derived fields under `webhook`, the body verbatim under
/// `payload` (it is JSON already; it is not re-serialised).
fn envelope(p: Platform, key: &str, name: &ObjectName, body: &str, e: &WebhookEvent) -> String {
    let webhook = serde_json::json!({
        "platform": p.name(),
        "object_key": key,
        "received_at": name.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "body_sha256": name.body_sha256,
        "dedup_key": e.dedup_key(p),
        "event_type": e.event_type,
        "event_type_normalized": e.event_type_normalized,
        "event_time": e.event_time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "subscriber_id": e.subscriber_id,
        "phone": e.phone,
        "email": e.email,
        "message_id": e.message_id,
        "message_id_decoded": e.message_id_decoded,
    });
    format!("{{\"webhook\":{webhook},\"payload\":{}}}", body.trim())
}

/// Compacts one platform's pending objects.
pub async fn compact(p: Platform, ctx: &SyncContext, settle: Duration) -> Result<Report> {
    let storage = &ctx.storage;
    let state = if ctx.full_refresh { None } else { last_state(storage, p).await? };
    let after = state.as_ref().and_then(|s| s.compacted_through.clone());
    let cutoff = ctx.run_started - settle;
    let pending = pending_objects(storage, p, after.as_deref(), cutoff).await?;
    let since = (!ctx.full_refresh).then(|| (ctx.run_started - Duration::days(DEDUP_LOOKBACK_DAYS)).date_naive());
    let mut seen = committed_keys(storage, p, since).await?;

    let contract = crate::contract::raw(p.name(), STREAM)?;
    let mut builder = BatchBuilder::new(contract, &ctx.run_id, ctx.landed_at);
    let mut report = Report::default();
    let mut part = 0u32;
    let mut through: Option<String> = None;
    let mut bodies = futures::stream::iter(pending.into_iter().map(|(key, name)| async move {
        let body = storage.get(&key).await;
        (key, name, body)
    }))
    .buffered(READ_CONCURRENCY);
    while let Some((key, name, body)) = bodies.next().await {
        report.summary.pages += 1;
        let body = body?.ok_or_else(|| source_error(p, format!("object {key} vanished while compacting")))?;
        match land_one(p, &key, &name, &body, &mut seen, &mut builder) {
            Ok(Landed::Row { known_type: false, event_type }) => {
                *report.unknown_types.entry(event_type).or_default() += 1
            }
            Ok(Landed::Row { .. }) => {}
            Ok(Landed::Duplicate) => report.duplicates += 1,
            Err((field, message)) => {
                quarantine(ctx, p, &key, &field, &message).await?;
                report.quarantined.push((key.clone(), field, message));
            }
        }
        through = Some(key);
        if builder.len() >= ctx.batch_rows {
            let file = write_part(ctx, p, &mut builder, &mut part).await?;
            commit(ctx, p, file, &through, &mut report).await?;
        }
    }
    let file = write_part(ctx, p, &mut builder, &mut part).await?;
    if file.is_some() || through.is_some() {
        commit(ctx, p, file, &through, &mut report).await?;
    }
    if !report.unknown_types.is_empty() {
        let types: Vec<String> = report.unknown_types.iter().map(|(t, n)| format!("{t} ({n})")).collect();
        tracing::warn!(source = p.name(), stream = STREAM, "Unknown event types kept as data: {}.", types.join(", "));
    }
    if !report.quarantined.is_empty() {
        report.summary.error = Some(format!(
            "{} object(s) quarantined under _quarantine/{}/{}/{STREAM}/ (left in place under {})",
            report.quarantined.len(),
            ctx.run_id,
            p.name(),
            objects::platform_prefix(p)
        ));
    }
    report.summary.quarantined_pages = report.quarantined.len() as u64;
    report.summary.status = "ok".into();
    Ok(report)
}

enum Landed {
    Row { known_type: bool, event_type: String },
    Duplicate,
}

/// Reads one object into the batch; `Err((field, message))` when it cannot be read.
fn land_one(
    p: Platform,
    key: &str,
    name: &ObjectName,
    body: &[u8],
    seen: &mut HashSet<String>,
    builder: &mut BatchBuilder,
) -> std::result::Result<Landed, (String, String)> {
    let text = std::str::from_utf8(body).map_err(|e| ("_raw".to_string(), format!("not UTF-8: {e}")))?;
    let e = event::parse(p, body).map_err(|e| (e.field, e.message))?;
    let dedup = e.dedup_key(p);
    if seen.contains(&dedup) {
        return Ok(Landed::Duplicate);
    }
    builder.push_raw(&envelope(p, key, name, text, &e), None).map_err(|r| (r.field, r.message))?;
    seen.insert(dedup);
    Ok(Landed::Row { known_type: e.known_type, event_type: e.event_type })
}

async fn write_part(
    ctx: &SyncContext,
    p: Platform,
    builder: &mut BatchBuilder,
    part: &mut u32,
) -> Result<Option<LandedFile>> {
    if builder.is_empty() {
        return Ok(None);
    }
    let batch = builder.finish();
    let rel = layout::raw_file(p.name(), STREAM, ctx.landed_at.date_naive(), &ctx.run_id, *part);
    *part += 1;
    write_file(&ctx.storage, &rel, &batch).await.map(Some)
}

/// Makes a part visible with the watermark of the last object it covers.
async fn commit(
    ctx: &SyncContext,
    p: Platform,
    file: Option<LandedFile>,
    through: &Option<String>,
    report: &mut Report,
) -> Result<()> {
    let state = CompactionState { compacted_through: through.clone(), run_id: ctx.run_id.clone() };
    let value = serde_json::to_value(&state).map_err(|e| Error::Internal(e.to_string()))?;
    let files: Vec<LandedFile> = file.into_iter().collect();
    for f in &files {
        report.summary.records += f.rows;
        report.summary.files += 1;
        report.summary.bytes += f.bytes;
    }
    ctx.run.commit(p.name(), STREAM, files, Some(value)).await
}

/// Records why an object was not landed; the object itself stays in place.
async fn quarantine(ctx: &SyncContext, p: Platform, key: &str, field: &str, message: &str) -> Result<()> {
    tracing::warn!(source = p.name(), stream = STREAM, key = %key, field, "Delivery quarantined: {message}.");
    let n = ctx.storage.list(&format!("_quarantine/{}/{}/{STREAM}", ctx.run_id, p.name())).await?.len() as u32;
    let entry = serde_json::json!({
        "source": p.name(), "stream": STREAM, "run_id": ctx.run_id, "object_key": key,
        "field": field, "error": message, "quarantined_at": Utc::now().to_rfc3339(),
    });
    let bytes = serde_json::to_vec_pretty(&entry).map_err(|e| Error::Internal(e.to_string()))?;
    ctx.storage.put(&layout::quarantine(&ctx.run_id, p.name(), STREAM, n), bytes).await
}
