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
use crate::sources::klaviyo;
use crate::storage::Storage;

/// What `sync` reads.
#[derive(Debug, Clone, Default)]
pub struct SyncSelection {
    pub source: Option<String>,
    pub stream: Option<String>,
    pub full_refresh: bool,
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: String,
    pub streams: BTreeMap<String, StreamSummary>,
    pub models: BTreeMap<String, u64>,
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
    let mut outcome =
        Outcome { run_id: run_id.clone(), streams: BTreeMap::new(), models: BTreeMap::new(), report: None };
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
        error,
    };
    writer.finish(&manifest).await?;
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
            run_started: Utc::now(),
            batch_rows: job.file.run.batch_rows,
            full_refresh: selection.full_refresh,
        };
        let (streams, failures) = sync_sources(job, secrets, &ctx, selection).await?;
        outcome.streams = streams;
        if !failures.is_empty() {
            sync_error = Some(failures);
        }
    }
    if matches!(steps, Steps::Transform | Steps::All) {
        outcome.models = crate::transform::run(storage, &seeds, &outcome.run_id).await?;
    }
    if steps == Steps::All {
        let path = crate::report::write(job, storage, report_month, None).await?;
        outcome.report = Some(path);
    }
    match sync_error {
        // Configuration errors keep their kind (exit 2 either way, but the message says what to fix).
        Some(mut errs) if errs.len() == 1 => Err(errs.remove(0)),
        Some(errs) => Err(Error::PartialFailure(errs.iter().map(|e| crate::error::Chain(e).to_string()).collect())),
        None => Ok(()),
    }
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
        let engine = klaviyo::engine(cfg, secrets)?;
        let specs: Vec<_> = klaviyo::STREAMS
            .iter()
            .filter(|s| selection.stream.as_deref().is_none_or(|n| n == s.name))
            .filter(|s| cfg.streams.get(s.name).is_none_or(StreamOptions::is_enabled))
            .collect();
        if let Some(stream) = &selection.stream
            && specs.is_empty()
        {
            return Err(Error::config(format!("--stream {stream}: source klaviyo has no such enabled stream")));
        }
        let runs = specs.iter().map(|spec| {
            let job = StreamJob {
                source: klaviyo::SOURCE,
                base_url: &cfg.base_url,
                spec,
                options: cfg.streams.get(spec.name).cloned().unwrap_or_default(),
                start_date: cfg.start_date,
            };
            sync_stream(ctx, &engine, job)
        });
        for (spec, (summary, error)) in specs.iter().zip(futures::future::join_all(runs).await) {
            tracing::info!(source = klaviyo::SOURCE, stream = spec.name, records = summary.records, pages = summary.pages, status = %summary.status, "Stream finished.");
            summaries.insert(format!("{}.{}", klaviyo::SOURCE, spec.name), summary);
            if let Some(e) = error {
                failures.push(e);
            }
        }
        let c = engine.counters();
        tracing::info!(
            source = klaviyo::SOURCE,
            requests = c.requests,
            retries = c.retries,
            throttles = c.throttles,
            "Source finished."
        );
    }
    if job.file.sources.shopify.is_some() && wanted("shopify") {
        failures.push(Error::Source {
            source_name: "shopify".into(),
            stream: "*".into(),
            message: "the Shopify source is not available in this build yet; remove [sources.shopify] or run with --source klaviyo".into(),
            cause: None,
        });
    }
    Ok((summaries, failures))
}
