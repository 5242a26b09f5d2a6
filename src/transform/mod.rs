//! The transform stage: SQL models on DataFusion, layer by layer, over what landing committed.
//!
//! Raw streams are registered as `raw_<source>__<stream>` from the files run commits name
//! (never by listing folders, so a crashed run's files stay invisible). Each model's output is
//! written to a new version folder, checked against its contract in `schemas/`, and only then
//! made current by one atomic PUT of its `_current.json` pointer: readers never see a
//! half-written or contract-breaking table.

pub mod incremental;
pub mod model;
pub mod partitioned;
pub mod publish;
pub mod rust;
pub mod udf;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::contract;
use crate::error::{Error, Result};
use crate::manifest;
use crate::storage::Storage;

pub use model::{Model, all_models};

/// The URL DataFusion knows the job's object store by.
pub const STORE_URL: &str = "lce://store";

/// A DataFusion session over the job's storage, memory unbounded.
pub fn session(storage: &Storage) -> Result<SessionContext> {
    session_with_memory(storage, None)
}

/// The settings every session of this crate runs with (models, readers and the report).
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new();
    let optimizer = &mut config.options_mut().optimizer;
    // Every join's build side is written in the SQL (the smaller input on the left): DataFusion's
    // statistics-driven swap misjudges sizes after a join and would build from the events (D30).
    optimizer.join_reordering = false;
    // Join dynamic filters gave wrong answers here, now and then, under load: a left join of
    // aggregates over a self-join returned a different count in 9 of 100 runs of the same query
    // on the same files, and none with this off (D36).
    optimizer.enable_join_dynamic_filter_pushdown = false;
    config
}

/// A DataFusion session over the job's storage. With `memory_mib`, its sorts, aggregates and
/// joins share a pool of that size: past it sorts and most aggregates spill to temporary files
/// (under `TMPDIR`) instead of growing, and an operator that cannot spill (a hash join's table,
/// some aggregates) fails the model with "Resources exhausted". Without, memory is unbounded.
/// (Rust models and Parquet writers hold their own memory outside the pool.)
pub fn session_with_memory(storage: &Storage, memory_mib: Option<u64>) -> Result<SessionContext> {
    let mut builder = RuntimeEnvBuilder::new();
    if let Some(mib) = memory_mib {
        builder = builder.with_memory_pool(Arc::new(FairSpillPool::new((mib * 1024 * 1024) as usize)));
    }
    let runtime = builder.build_arc().map_err(|e| Error::Internal(format!("DataFusion runtime: {e}")))?;
    let ctx = SessionContext::new_with_config_rt(session_config(), runtime);
    udf::register(&ctx);
    let url = url::Url::parse(STORE_URL).map_err(|e| Error::Internal(e.to_string()))?;
    ctx.runtime_env().register_object_store(&url, storage.object_store());
    Ok(ctx)
}

/// Registers a set of Parquet objects (job-relative paths) as one table, or an empty table of
/// `schema` when there are none.
pub async fn register_files(
    ctx: &SessionContext,
    storage: &Storage,
    table: &str,
    files: &[String],
    schema: arrow::datatypes::SchemaRef,
) -> Result<()> {
    let df_err =
        |e: datafusion::error::DataFusionError| Error::Transform { model: table.to_string(), message: e.to_string() };
    if files.is_empty() {
        let empty = MemTable::try_new(schema, vec![vec![]]).map_err(df_err)?;
        ctx.register_table(table, Arc::new(empty)).map_err(df_err)?;
        return Ok(());
    }
    let urls = files
        .iter()
        .map(|f| ListingTableUrl::parse(format!("{STORE_URL}/{}", storage.path(f))))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(df_err)?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema);
    let listing = ListingTable::try_new(config).map_err(df_err)?;
    ctx.register_table(table, Arc::new(listing)).map_err(df_err)?;
    Ok(())
}

/// Registers every raw stream that has a contract, from its committed files.
pub async fn register_raw(ctx: &SessionContext, storage: &Storage) -> Result<()> {
    let commits = manifest::all_commits(storage).await?;
    for (path, c) in contract::all()? {
        if c.layer != "raw" {
            continue;
        }
        let source =
            c.source.clone().ok_or_else(|| Error::config(format!("schemas/{path}: raw contracts need `source`")))?;
        let files: Vec<String> = commits
            .iter()
            .filter(|m| m.source == source && m.stream == c.name)
            .flat_map(|m| m.files.iter().map(|f| f.path.clone()))
            .collect();
        register_files(ctx, storage, &format!("raw_{source}__{}", c.name), &files, c.landed_schema()).await?;
    }
    Ok(())
}

/// A session with the committed raw streams and the current version of every model under its
/// name: what readers (the report, the demo's check) query.
pub async fn published_session(storage: &Storage) -> Result<SessionContext> {
    let ctx = session(storage)?;
    register_raw(&ctx, storage).await?;
    register_current(&ctx, storage, "").await?;
    Ok(ctx)
}

/// Registers the current version of every model as `<prefix><model>`. A run registers them as
/// `prev_<model>` before it rebuilds anything: models that carry state from run to run (identity
/// keys and their history) and the dirty-set queries compare against them.
async fn register_current(ctx: &SessionContext, storage: &Storage, prefix: &str) -> Result<()> {
    for m in all_models()? {
        let c = contract::model(&m.layer, &m.name)?;
        let files = publish::current(storage, &m.layer, &m.name).await?.map(|c| c.files).unwrap_or_default();
        register_files(ctx, storage, &format!("{prefix}{}", m.name), &files, c.arrow_schema()).await?;
    }
    Ok(())
}

/// Runs every model, layer by layer, incrementally; returns rows per model.
pub async fn run(storage: &Storage, seeds: &[crate::seeds::Seed], run_id: &str) -> Result<BTreeMap<String, u64>> {
    let built = run_with(storage, seeds, run_id, incremental::Mode::Incremental, None).await?;
    Ok(built.into_iter().map(|(name, b)| (name, b.rows)).collect())
}

/// Runs every model, layer by layer, in `mode`, within a DataFusion memory pool of `memory_mib`
/// when given (see [`session_with_memory`]);
/// returns what each build did.
pub async fn run_with(
    storage: &Storage,
    seeds: &[crate::seeds::Seed],
    run_id: &str,
    mode: incremental::Mode,
    memory_mib: Option<u64>,
) -> Result<BTreeMap<String, publish::Built>> {
    let ctx = session_with_memory(storage, memory_mib)?;
    register_raw(&ctx, storage).await?;
    crate::seeds::register(&ctx, seeds)?;
    register_current(&ctx, storage, "prev_").await?;
    let mut rows = BTreeMap::new();
    let mut obsolete = Vec::new();
    for model in all_models()? {
        let contract = contract::model(&model.layer, &model.name)?;
        let started = std::time::Instant::now();
        let fingerprint = incremental::fingerprint(&model, seeds);
        let mut built = publish::build(&ctx, storage, &model, &contract, run_id, mode, &fingerprint).await?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        built.duration_ms = elapsed_ms;
        tracing::info!(
            model = %model.name,
            layer = %model.layer,
            rows = built.rows,
            partitions = built.files,
            partitions_written = built.written,
            incremental = built.incremental,
            elapsed_ms,
            "Model built."
        );
        obsolete.extend(built.obsolete.iter().cloned());
        rows.insert(model.name.clone(), built);
    }
    for file in obsolete {
        storage.delete(&file).await?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_keep_written_join_order_and_no_join_dynamic_filters() {
        let config = session_config();
        let optimizer = &config.options().optimizer;
        assert!(!optimizer.join_reordering);
        assert!(!optimizer.enable_join_dynamic_filter_pushdown);
    }
}
