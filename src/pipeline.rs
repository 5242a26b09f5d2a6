//! The commands that touch a job's storage: `sync`, `transform`, `run`. Each takes the job's
//! lock, gets a run id, and writes a run manifest whatever happens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::config::{Job, Secrets, StreamOptions};
use crate::error::{Error, Result};
use crate::extract::{StreamJob, SyncContext, sync_stream};
use crate::lock::RunLock;
use crate::manifest::{RunManifest, RunWriter, StreamSummary, new_run_id};
use crate::sources::{klaviyo, postscript, shopify};
use crate::storage::Storage;
use crate::stream::StreamSpec;
use crate::transform::incremental::Mode;

/// What `sync` reads.
#[derive(Debug, Clone, Default)]
pub struct SyncSelection {
    pub source: Option<String>,
    pub stream: Option<String>,
    pub full_refresh: bool,
    /// Read sources only up to this instant instead of the run's start (replays, and tests
    /// whose fake servers run on a simulated clock). Watermarks never pass it.
    pub until: Option<chrono::DateTime<Utc>>,
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: String,
    pub streams: BTreeMap<String, StreamSummary>,
    pub models: BTreeMap<String, u64>,
    pub model_metrics: BTreeMap<String, crate::manifest::ModelMetrics>,
    pub report: Option<String>,
}

/// Which steps a run performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    Sync,
    Transform,
    All,
}

/// Runs `steps` for a job under its lock. `report_month` applies to [`Steps::All`].
pub async fn execute(
    job: &Job,
    secrets: &Secrets,
    steps: Steps,
    selection: &SyncSelection,
    report_month: Option<&str>,
) -> Result<Outcome> {
    let storage = Storage::open(&job.file.storage, secrets)?;
    let run_id = new_run_id();
    let started_at = Utc::now();
    let span = tracing::info_span!("run", job = job.name(), run_id = %run_id);
    let _enter = span.enter();
    let lock =
        RunLock::acquire(&storage, job.name(), &run_id, Duration::from_secs(job.file.run.lock_ttl_seconds)).await?;
    let writer = Arc::new(RunWriter::new(&storage, &run_id));
    let mut outcome = Outcome {
        run_id: run_id.clone(),
        streams: BTreeMap::new(),
        models: BTreeMap::new(),
        model_metrics: BTreeMap::new(),
        report: None,
    };
    let result = steps_inner(job, secrets, steps, selection, report_month, &storage, &writer, &mut outcome).await;

    let (status, exit_code, error) = match &result {
        Ok(()) => ("succeeded", 0, None),
        Err(e) => ("failed", e.exit_code(), Some(crate::error::Chain(e).to_string())),
    };
    let manifest = RunManifest {
        run_id: run_id.clone(),
        job: job.name().to_string(),
        command: format!("{steps:?}").to_lowercase(),
        started_at,
        finished_at: Utc::now(),
        status: status.into(),
        exit_code,
        streams: outcome.streams.clone(),
        models: outcome.models.clone(),
        model_metrics: outcome.model_metrics.clone(),
        error,
    };
    writer.finish(&manifest).await?;
    if let Some(url) = &job.file.run.pushgateway_url {
        // Monitoring must not fail a run whose data is written: a push that fails is logged.
        match crate::metrics::push(url, &manifest).await {
            Ok(()) => tracing::info!(run_id = %run_id, "Metrics pushed to the Pushgateway."),
            Err(e) => tracing::warn!(run_id = %run_id, error = %e, "Metrics push failed."),
        }
    }
    lock.release().await?;
    result.map(|()| outcome)
}

#[allow(clippy::too_many_arguments)]
async fn steps_inner(
    job: &Job,
    secrets: &Secrets,
    steps: Steps,
    selection: &SyncSelection,
    report_month: Option<&str>,
    storage: &Storage,
    writer: &Arc<RunWriter>,
    outcome: &mut Outcome,
) -> Result<()> {
    let seeds = crate::seeds::load(job)?;
    let mut sync_error = None;
    if matches!(steps, Steps::Sync | Steps::All) {
        let ctx = SyncContext {
            storage: storage.clone(),
            run: writer.clone(),
            run_id: outcome.run_id.clone(),
            run_started: selection.until.unwrap_or_else(Utc::now),
            landed_at: Utc::now(),
            batch_rows: job.file.run.batch_rows,
            full_refresh: selection.full_refresh,
        };
        let (streams, mut failures) = sync_sources(job, secrets, &ctx, selection).await?;
        outcome.streams = streams;
        if let Some(cfg) = &job.file.webhooks {
            let (streams, fails) = crate::webhooks::compact::run_selected(cfg, &ctx, selection).await;
            outcome.streams.extend(streams);
            failures.extend(fails);
        }
        if !failures.is_empty() {
            sync_error = Some(failures);
        }
    }
    if matches!(steps, Steps::Transform | Steps::All) {
        // A full refresh re-reads the sources from their start dates and rebuilds every partition.
        let mode = if selection.full_refresh { Mode::Full } else { Mode::Incremental };
        let built =
            crate::transform::run_with(storage, &seeds, &outcome.run_id, mode, job.file.run.transform_memory_mib)
                .await?;
        outcome.model_metrics = built
            .iter()
            .map(|(name, b)| {
                let m = crate::manifest::ModelMetrics {
                    rows: b.rows,
                    bytes: b.bytes,
                    partitions: b.files as u64,
                    partitions_written: b.written as u64,
                    incremental: b.incremental,
                    duration_ms: b.duration_ms,
                };
                (name.clone(), m)
            })
            .collect();
        outcome.models = built.into_iter().map(|(name, b)| (name, b.rows)).collect();
    }
    if steps == Steps::All {
        let path = crate::report::write(job, storage, report_month, None).await?;
        outcome.report = Some(path);
    }
    match sync_error {
        // Configuration errors keep their kind (exit 2 either way, but the message says what to fix).
        Some(mut errs) if errs.len() == 1 => Err(errs.remove(0)),
        Some(errs) => Err(Error::PartialFailure {
            summary: failure_summary(&outcome.streams, &errs),
            failures: errs.iter().map(|e| crate::error::Chain(e).to_string()).collect(),
        }),
        None => Ok(()),
    }
}

/// One line saying which sources failed (with their streams that did not land) and which
/// landed, ahead of the failures themselves.
fn failure_summary(streams: &BTreeMap<String, StreamSummary>, failures: &[Error]) -> String {
    let mut by_source: BTreeMap<&str, (Vec<&str>, usize)> = BTreeMap::new();
    for (name, s) in streams {
        let (source, stream) = name.split_once('.').unwrap_or((name.as_str(), ""));
        let entry = by_source.entry(source).or_default();
        entry.1 += 1;
        if s.status != "ok" {
            entry.0.push(stream);
        }
    }
    // A source can fail before it has streams (Shopify's store unreachable).
    for e in failures {
        if let Error::Source { source_name, stream, .. } = e {
            let entry = by_source.entry(source_name).or_default();
            if !entry.0.contains(&stream.as_str()) {
                entry.0.push(stream);
                entry.1 += 1;
            }
        }
    }
    let failed: Vec<String> = by_source
        .iter()
        .filter(|(_, (bad, _))| !bad.is_empty())
        .map(|(source, (bad, all))| {
            format!("source {source} failed ({} of {all} streams: {})", bad.len(), bad.join(", "))
        })
        .collect();
    let landed: Vec<&str> = by_source.iter().filter(|(_, (bad, _))| bad.is_empty()).map(|(s, _)| *s).collect();
    let mut line = if failed.is_empty() { format!("{} failure(s)", failures.len()) } else { failed.join("; ") };
    if !landed.is_empty() {
        line.push_str(&format!("; landed: {}", landed.join(", ")));
    }
    line
}

/// Syncs every selected stream; a failing stream fails alone and the others still land.
async fn sync_sources(
    job: &Job,
    secrets: &Secrets,
    ctx: &SyncContext,
    selection: &SyncSelection,
) -> Result<(BTreeMap<String, StreamSummary>, Vec<Error>)> {
    let mut summaries = BTreeMap::new();
    let mut failures = Vec::new();
    let wanted = |source: &str| selection.source.as_deref().is_none_or(|s| s == source);
    if let Some(name) = &selection.source
        && !crate::sources::ALL_SOURCES.contains(&name.as_str())
    {
        return Err(Error::config(format!(
            "--source {name}: expected one of {}",
            crate::sources::ALL_SOURCES.join(", ")
        )));
    }

    if let Some(cfg) = job.file.sources.klaviyo.as_ref().filter(|_| wanted(klaviyo::SOURCE)) {
        let engine = klaviyo::engine(cfg, secrets)?.with_retry(job.file.run.retry);
        let specs = select_streams(klaviyo::SOURCE, klaviyo::STREAMS, &cfg.streams, selection.stream.as_deref())?;
        let streams = StreamsToSync::plain(klaviyo::SOURCE, &cfg.base_url, cfg.start_date, &cfg.streams);
        sync_plain_source(ctx, &engine, &streams, &specs, &mut summaries, &mut failures).await;
    }
    if let Some(cfg) = job.file.sources.shopify.as_ref().filter(|_| wanted(shopify::SOURCE)) {
        let specs = select_streams(shopify::SOURCE, shopify::STREAMS, &cfg.streams, selection.stream.as_deref())?;
        match shopify::connect(cfg, secrets, &job.file.run.retry).await {
            Ok(store) => {
                let store = Arc::new(store);
                let streams = StreamsToSync {
                    source: shopify::SOURCE,
                    base_url: &store.api_root,
                    start_date: cfg.start_date,
                    options: &cfg.streams,
                    readers: store.window_readers(cfg),
                };
                let (summ, fails) = sync_streams(ctx, &store.engine, &streams, &specs).await;
                summaries.extend(summ);
                failures.extend(fails);
                let c = store.engine.counters();
                let cost = store.gate.totals();
                tracing::info!(
                    source = shopify::SOURCE,
                    requests = c.requests,
                    retries = c.retries,
                    throttles = c.throttles,
                    requested_points = cost.requested,
                    actual_points = cost.actual,
                    "Source finished."
                );
            }
            // Configuration errors (a bad token) stop the run; a store that cannot be reached
            // fails this source alone.
            Err(e @ Error::Config { .. }) => return Err(e),
            Err(e) => failures.push(e),
        }
    }
    if let Some(cfg) = job.file.sources.postscript.as_ref().filter(|_| wanted(postscript::SOURCE)) {
        // Two parts, each optional: the API streams (with a key) and the warehouse tables.
        let only = selection.stream.as_deref();
        let warehouse_stream = only.is_some_and(postscript::warehouse::is_stream);
        if let (Some(_), Some(start_date)) = (&cfg.api_key_env, cfg.start_date)
            && !warehouse_stream
        {
            let engine = postscript::engine(cfg, secrets)?.with_retry(job.file.run.retry);
            let specs = select_streams(postscript::SOURCE, postscript::STREAMS, &cfg.streams, only)?;
            let streams = StreamsToSync::plain(postscript::SOURCE, &cfg.base_url, start_date, &cfg.streams);
            sync_plain_source(ctx, &engine, &streams, &specs, &mut summaries, &mut failures).await;
        } else if only.is_some() && !warehouse_stream {
            return Err(Error::config(format!(
                "--stream {}: source {} reads no API streams without sources.postscript.api_key_env",
                only.unwrap_or_default(),
                postscript::SOURCE
            )));
        }
        match &cfg.warehouse {
            Some(w) if only.is_none() || warehouse_stream => {
                let (summ, fails) = postscript::warehouse::sync(w, secrets, ctx, only).await?;
                summaries.extend(summ);
                failures.extend(fails);
            }
            None if warehouse_stream => {
                return Err(Error::config(format!(
                    "--stream {}: the job has no [sources.postscript.warehouse]",
                    only.unwrap_or_default()
                )));
            }
            _ => {}
        }
    }
    if let Some(cfg) = job.file.sources.attentive.as_ref().filter(|_| wanted(crate::sources::attentive::SOURCE)) {
        let (summ, fails) = crate::sources::attentive::sync(cfg, secrets, ctx, selection.stream.as_deref()).await?;
        summaries.extend(summ);
        failures.extend(fails);
    }
    Ok((summaries, failures))
}

/// One source's streams and their options.
struct StreamsToSync<'a> {
    source: &'static str,
    base_url: &'a str,
    start_date: chrono::NaiveDate,
    options: &'a BTreeMap<String, StreamOptions>,
    /// Streams that read their windows themselves (Shopify's paged-or-bulk readers).
    readers: BTreeMap<&'static str, Arc<dyn crate::extract::WindowReader>>,
}

impl<'a> StreamsToSync<'a> {
    /// A source whose streams are all read page by page.
    fn plain(
        source: &'static str,
        base_url: &'a str,
        start_date: chrono::NaiveDate,
        options: &'a BTreeMap<String, StreamOptions>,
    ) -> Self {
        Self { source, base_url, start_date, options, readers: BTreeMap::new() }
    }
}

/// Syncs a source that needs nothing but its engine, and logs what the engine spent.
async fn sync_plain_source(
    ctx: &SyncContext,
    engine: &crate::http::HttpEngine,
    streams: &StreamsToSync<'_>,
    specs: &[&'static StreamSpec],
    summaries: &mut BTreeMap<String, StreamSummary>,
    failures: &mut Vec<Error>,
) {
    let (summ, fails) = sync_streams(ctx, engine, streams, specs).await;
    summaries.extend(summ);
    failures.extend(fails);
    let c = engine.counters();
    tracing::info!(
        source = streams.source,
        requests = c.requests,
        retries = c.retries,
        throttles = c.throttles,
        "Source finished."
    );
}

/// The enabled streams of a source, or the one asked for plus the parents it is read under.
fn select_streams(
    source: &str,
    all: &'static [StreamSpec],
    options: &BTreeMap<String, StreamOptions>,
    only: Option<&str>,
) -> Result<Vec<&'static StreamSpec>> {
    let enabled = |s: &StreamSpec| options.get(s.name).is_none_or(StreamOptions::is_enabled);
    let Some(name) = only else { return Ok(all.iter().filter(|s| enabled(s)).collect()) };
    let mut wanted = vec![
        all.iter()
            .find(|s| s.name == name && enabled(s))
            .ok_or_else(|| Error::config(format!("--stream {name}: source {source} has no such enabled stream")))?,
    ];
    while let Some(parent) = wanted.last().and_then(|s| s.parent) {
        let p = all
            .iter()
            .find(|s| s.name == parent.stream)
            .ok_or_else(|| Error::Internal(format!("no stream {}", parent.stream)))?;
        wanted.push(p);
    }
    wanted.reverse();
    Ok(wanted)
}

/// Syncs a source's streams concurrently; a child starts as soon as its parent has finished
/// (flow messages need not wait for the events backfill). A child whose parent failed is not
/// read: its parent ids would be incomplete.
async fn sync_streams(
    ctx: &SyncContext,
    engine: &crate::http::HttpEngine,
    streams: &StreamsToSync<'_>,
    specs: &[&'static StreamSpec],
) -> (BTreeMap<String, StreamSummary>, Vec<Error>) {
    use futures::stream::{FuturesUnordered, StreamExt};

    let mut summaries = BTreeMap::new();
    let mut failures = Vec::new();
    let mut ids: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut pending: Vec<&'static StreamSpec> = specs.to_vec();
    let mut running = FuturesUnordered::new();
    let start = |spec: &'static StreamSpec, parent_ids: Vec<String>| {
        let children =
            specs.iter().filter_map(|c| c.parent.filter(|p| p.stream == spec.name).map(|p| (c.name, p))).collect();
        let job = StreamJob {
            source: streams.source,
            base_url: streams.base_url,
            spec,
            options: streams.options.get(spec.name).cloned().unwrap_or_default(),
            start_date: streams.start_date,
            parent_ids,
            children,
            window_reader: streams.readers.get(spec.name).cloned(),
        };
        async move {
            let started = std::time::Instant::now();
            let mut result = crate::http::client::for_stream(spec.name, sync_stream(ctx, engine, job)).await;
            let c = engine.stream_counters(spec.name);
            let s = &mut result.summary;
            (s.requests, s.retries, s.throttles) = (c.requests, c.retries, c.throttles);
            s.duration_ms = started.elapsed().as_millis() as u64;
            (spec, result)
        }
    };
    pending.retain(|spec| {
        if spec.parent.is_none() {
            running.push(start(spec, Vec::new()));
            return false;
        }
        true
    });
    while let Some((spec, result)) = running.next().await {
        let s = &result.summary;
        tracing::info!(source = streams.source, stream = spec.name, records = s.records, pages = s.pages, status = %s.status, "Stream finished.");
        summaries.insert(format!("{}.{}", streams.source, spec.name), result.summary);
        ids.extend(result.ids);
        let failed = result.error.is_some();
        failures.extend(result.error);
        let mut skipped = vec![spec.name].into_iter().filter(|_| failed).collect::<Vec<_>>();
        // Children of this stream start now, or are skipped (with their own children) if it failed.
        while let Some(parent) = skipped.pop() {
            pending.retain(|c| {
                if c.parent.is_some_and(|p| p.stream == parent) {
                    let summary = StreamSummary {
                        status: "skipped".into(),
                        error: Some(format!("parent stream {parent} failed")),
                        ..Default::default()
                    };
                    summaries.insert(format!("{}.{}", streams.source, c.name), summary);
                    skipped.push(c.name);
                    return false;
                }
                true
            });
        }
        if !failed {
            pending.retain(|c| {
                if c.parent.is_some_and(|p| p.stream == spec.name) {
                    running.push(start(c, ids.get(c.name).cloned().unwrap_or_default()));
                    return false;
                }
                true
            });
        }
    }
    if !pending.is_empty() {
        let names: Vec<&str> = pending.iter().map(|s| s.name).collect();
        failures.push(Error::Internal(format!("streams {names:?} wait for parents that never ran")));
    }
    (summaries, failures)
}
