//! Building one model: execute, write a new version (marts: changed Hive partitions only), check
//! the contract, then switch the `_current.json` pointer (one atomic PUT).

use arrow::array::RecordBatch;
use std::collections::HashSet;

use datafusion::prelude::{SessionContext, ident, lit};
use datafusion::scalar::ScalarValue;
use futures::StreamExt;
use parquet::arrow::AsyncArrowWriter;
use serde::{Deserialize, Serialize};

use super::incremental::{self, Mode};
use super::model::{Body, Model};
use super::{partitioned, register_files};
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::landing::parquet::writer_properties;
use crate::storage::Storage;

/// Which version of a model is current.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Current {
    pub model: String,
    pub version: String,
    pub files: Vec<String>,
    pub rows: u64,
    /// [`super::incremental::fingerprint`] of what computed it; a different one forces a full
    /// rebuild.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// Job-relative folder of a model's layer (`staging/<model>`, `marts/<table>`...).
pub fn model_dir(layer: &str, name: &str) -> String {
    match layer {
        "marts" => crate::storage::layout::mart(name),
        "staging" => crate::storage::layout::staging_model(name),
        other => format!("{other}/{name}"),
    }
}

/// Reads a model's current pointer.
pub async fn current(storage: &Storage, layer: &str, name: &str) -> Result<Option<Current>> {
    let key = format!("{}/_current.json", model_dir(layer, name));
    match storage.get(&key).await? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::Internal(format!("{key}: {e}"))),
    }
}

/// What building one model did.
#[derive(Debug, Default)]
pub struct Built {
    pub rows: u64,
    /// Partitions written (all of them for an unpartitioned model: its one file).
    pub written: usize,
    /// Partitions (files) the new version has.
    pub files: usize,
    /// Only the dirty partitions were recomputed.
    pub incremental: bool,
    /// Wall time of the build (set by the caller that timed it).
    pub duration_ms: u64,
    /// Bytes of the new version's objects (one listing of the model's folder).
    pub bytes: u64,
    /// Objects of the previous version the new one no longer names: deleted when the run ends,
    /// so `prev_<model>` stays readable until then.
    pub obsolete: Vec<String>,
}

/// Builds `model`, registers it under its name, and makes it current.
pub async fn build(
    ctx: &SessionContext,
    storage: &Storage,
    model: &Model,
    contract: &Contract,
    run_id: &str,
    mode: Mode,
    fingerprint: &str,
) -> Result<Built> {
    let fail = |message: String| Error::Transform { model: model.name.clone(), message };
    let df = match &model.body {
        Body::Sql(sql) => ctx.sql(sql).await,
        Body::Rust(build) => build(ctx).await,
    }
    .map_err(|e| fail(e.to_string()))?;
    let expected = contract.arrow_schema();
    check_schema(&model.name, df.schema().as_arrow(), &expected)?;

    let dir = model_dir(&model.layer, &model.name);
    let previous = current(storage, &model.layer, &model.name).await?;
    let partition_by = contract.partition_by.as_deref().filter(|_| model.layer == "marts");
    // The previous version's partitions that a dirty set lets this run keep.
    let dirty = match (mode, partition_by, incremental::dirty_query(&model.name), &previous) {
        (Mode::Incremental, Some(_), Some(sql), Some(prev)) if prev.fingerprint.as_deref() == Some(fingerprint) => {
            Some(incremental::dirty_values(ctx, sql).await.map_err(|e| fail(format!("dirty set: {e}")))?)
        }
        _ => None,
    };
    let (files, written) = match partition_by {
        Some(column) => {
            let mut df = df;
            let mut kept = Vec::new();
            if let (Some(dirty), Some(prev)) = (&dirty, &previous) {
                let field = expected.field_with_name(column).map_err(|e| fail(e.to_string()))?;
                df = df.filter(in_partitions(column, field.data_type(), dirty)?).map_err(|e| fail(e.to_string()))?;
                kept = prev
                    .files
                    .iter()
                    .filter(|f| incremental::partition_of(f, column).is_some_and(|v| !dirty.contains(&v)))
                    .cloned()
                    .collect();
            }
            // The writer sorts each partition by the primary key: a partition's bytes depend only
            // on its rows.
            let sorted = df.sort(vec![ident(column).sort(true, true)]).map_err(|e| fail(e.to_string()))?;
            let stream = sorted.execute_stream().await.map_err(|e| fail(e.to_string()))?;
            let existing: HashSet<String> =
                previous.as_ref().map(|p| p.files.iter().cloned().collect()).unwrap_or_default();
            let out = partitioned::write(
                storage,
                &model.name,
                &dir,
                column,
                &contract.primary_key,
                expected.clone(),
                stream,
                &existing,
            )
            .await?;
            let mut files = kept;
            files.extend(out.files);
            files.sort();
            (files, out.changed.len())
        }
        None => {
            let rel = format!("{dir}/version={run_id}/part-00000.parquet");
            // Only marts promise the same bytes for the same rows; staging streams unsorted.
            let key: &[String] = if model.layer == "marts" { &contract.primary_key } else { &[] };
            write_one(storage, &rel, df, expected.clone(), key).await.map_err(|e| fail(e.to_string()))?;
            (vec![rel], 1)
        }
    };
    register_files(ctx, storage, &model.name, &files, expected).await?;
    check_contract(ctx, &model.name, contract).await?;
    let rows = count_rows(ctx, &model.name).await.map_err(|e| fail(e.to_string()))?;

    let pointer = Current {
        model: model.name.clone(),
        version: run_id.to_string(),
        files,
        rows,
        fingerprint: Some(fingerprint.to_string()),
    };
    let body = serde_json::to_vec_pretty(&pointer).map_err(|e| Error::Internal(e.to_string()))?;
    storage.put(&format!("{dir}/_current.json"), body).await?;
    let keep: HashSet<&String> = pointer.files.iter().collect();
    let bytes = storage
        .list(&dir)
        .await?
        .iter()
        .filter(|m| keep.contains(&storage.relative(&m.location)))
        .map(|m| m.size)
        .sum();
    let obsolete = previous.map(|p| p.files.into_iter().filter(|f| !keep.contains(f)).collect()).unwrap_or_default();
    Ok(Built {
        rows,
        written,
        files: pointer.files.len(),
        incremental: dirty.is_some(),
        duration_ms: 0,
        bytes,
        obsolete,
    })
}

/// `column` in the dirty set (NULL included when the set has it).
fn in_partitions(
    column: &str,
    data_type: &arrow::datatypes::DataType,
    dirty: &std::collections::BTreeSet<Option<String>>,
) -> Result<datafusion::prelude::Expr> {
    let values = dirty
        .iter()
        .flatten()
        .map(|v| ScalarValue::try_from_string(v.clone(), data_type).map(lit))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(format!("partition value of {column}: {e}")))?;
    let mut expr = if values.is_empty() { lit(false) } else { ident(column).in_list(values, false) };
    if dirty.contains(&None) {
        expr = expr.or(ident(column).is_null());
    }
    Ok(expr)
}

async fn count_rows(ctx: &SessionContext, table: &str) -> datafusion::error::Result<u64> {
    Ok(count(ctx, format!("select count(*) from {}", quote(table))).await? as u64)
}

/// The single count a `select count(*) ...` returns.
async fn count(ctx: &SessionContext, sql: String) -> datafusion::error::Result<i64> {
    let batches = ctx.sql(&sql).await?.collect().await?;
    Ok(batches
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().map(|a| a.value(0)))
        .unwrap_or(0))
}

async fn write_one(
    storage: &Storage,
    rel: &str,
    df: datafusion::dataframe::DataFrame,
    schema: arrow::datatypes::SchemaRef,
    key: &[String],
) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut stream = df.execute_stream().await?;
    let writer = storage.writer(rel);
    let mut w = AsyncArrowWriter::try_new(writer, schema.clone(), Some(writer_properties()))?;
    if key.is_empty() {
        while let Some(batch) = stream.next().await {
            w.write(&RecordBatch::try_new(schema.clone(), batch?.columns().to_vec())?).await?;
        }
        w.close().await?;
        return Ok(());
    }
    let mut batches = Vec::new();
    while let Some(batch) = stream.next().await {
        // Same types as the contract (checked before); rebinding applies its names and nullability.
        batches.push(RecordBatch::try_new(schema.clone(), batch?.columns().to_vec())?);
    }
    // Sorted by the primary key here rather than in the plan (see `partitioned`): the same rows
    // always make the same bytes.
    let key = key.iter().map(|k| schema.index_of(k)).collect::<std::result::Result<Vec<_>, _>>()?;
    let sorted = partitioned::sort_by_key(&schema, &batches, &key)?;
    drop(batches);
    w.write(&sorted).await?;
    w.close().await?;
    Ok(())
}

fn check_schema(model: &str, got: &arrow::datatypes::Schema, expected: &arrow::datatypes::Schema) -> Result<()> {
    let got_names: Vec<&str> = got.fields().iter().map(|f| f.name().as_str()).collect();
    let want_names: Vec<&str> = expected.fields().iter().map(|f| f.name().as_str()).collect();
    if got_names != want_names {
        return Err(Error::Contract(format!(
            "table {model}: columns are [{}], the contract says [{}]",
            got_names.join(", "),
            want_names.join(", ")
        )));
    }
    for (g, w) in got.fields().iter().zip(expected.fields()) {
        if g.data_type() != w.data_type() {
            return Err(Error::Contract(format!(
                "table {model}, column {}: type {} breaks the contract's {} (rule: type)",
                g.name(),
                g.data_type(),
                w.data_type()
            )));
        }
    }
    Ok(())
}

/// Not-null, primary-key uniqueness and accepted values, evaluated in SQL over the new version.
pub async fn check_contract(ctx: &SessionContext, table: &str, contract: &Contract) -> Result<()> {
    let count = |sql: String| count(ctx, sql);
    let fail =
        |e: datafusion::error::DataFusionError| Error::Transform { model: table.to_string(), message: e.to_string() };
    for c in &contract.columns {
        let col = quote(&c.name);
        if !c.nullable {
            let n = count(format!("select count(*) from {table} where {col} is null")).await.map_err(fail)?;
            if n > 0 {
                return Err(Error::Contract(format!(
                    "table {table}, column {}: {n} NULL value(s) (rule: not_null)",
                    c.name
                )));
            }
        }
        if let Some(allowed) = &c.accepted_values {
            let list = allowed.iter().map(|v| format!("'{}'", v.replace('\'', "''"))).collect::<Vec<_>>().join(", ");
            let n = count(format!("select count(*) from {table} where {col} is not null and {col} not in ({list})"))
                .await
                .map_err(fail)?;
            if n > 0 {
                return Err(Error::Contract(format!(
                    "table {table}, column {}: {n} value(s) outside [{}] (rule: accepted_values)",
                    c.name,
                    allowed.join(", ")
                )));
            }
        }
    }
    if !contract.primary_key.is_empty() {
        let key = contract.primary_key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
        let n = count(format!("select count(*) from (select {key} from {table} group by {key} having count(*) > 1)"))
            .await
            .map_err(fail)?;
        if n > 0 {
            return Err(Error::Contract(format!(
                "table {table}, column(s) {}: {n} duplicated key(s) (rule: unique primary key)",
                contract.primary_key.join(", ")
            )));
        }
    }
    Ok(())
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}
