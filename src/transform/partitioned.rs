//! Writing a mart as Hive partitions of its period column (models.md 1.6).
//!
//! The model's rows arrive sorted by the partition column (then the primary key, so the bytes of
//! a partition depend only on its rows). Each partition becomes one Parquet object named by the
//! SHA-256 of its bytes, `<dir>/<column>=<value>/part-<hash>.parquet`: a partition whose content
//! did not change keeps its object and is not written again, a changed one gets a new object. The
//! set of partitions only changes when the `_current.json` pointer is swapped, so whole
//! partitions are replaced atomically for pointer readers; objects the new version no longer
//! names are deleted when the run ends.

use std::collections::HashSet;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::landing::parquet::writer_properties;
use crate::storage::Storage;

/// Hive's name for the partition of NULL values.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// What writing a partitioned model produced.
#[derive(Debug, Default)]
pub struct Written {
    /// Every partition's object, in partition order.
    pub files: Vec<String>,
    /// Objects written by this run (partitions whose content changed or is new).
    pub changed: Vec<String>,
    pub rows: u64,
}

struct Open {
    value: Option<String>,
    writer: ArrowWriter<Vec<u8>>,
    rows: u64,
}

/// Writes `stream` (sorted by `column`) as one object per partition under `dir`; objects named
/// in `existing` are not rewritten.
pub async fn write(
    storage: &Storage,
    model: &str,
    dir: &str,
    column: &str,
    schema: SchemaRef,
    mut stream: SendableRecordBatchStream,
    existing: &HashSet<String>,
) -> Result<Written> {
    let fail = |message: String| Error::Transform { model: model.to_string(), message };
    let index = schema.index_of(column).map_err(|e| fail(format!("partition column: {e}")))?;
    let mut out = Written::default();
    let mut seen: HashSet<Option<String>> = HashSet::new();
    let mut open: Option<Open> = None;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| fail(e.to_string()))?;
        let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec()).map_err(|e| fail(e.to_string()))?;
        let values = cast(batch.column(index), &DataType::Utf8).map_err(|e| fail(e.to_string()))?;
        let values = values.as_any().downcast_ref::<StringArray>().expect("cast to Utf8 gives a StringArray");
        let value_at = |i: usize| values.is_valid(i).then(|| values.value(i).to_string());
        let mut start = 0;
        while start < batch.num_rows() {
            let value = value_at(start);
            let mut end = start + 1;
            while end < batch.num_rows() && value_at(end) == value {
                end += 1;
            }
            if open.as_ref().is_none_or(|o| o.value != value) {
                if let Some(done) = open.take() {
                    finish(storage, dir, column, done, existing, &mut out).await.map_err(|e| fail(e.to_string()))?;
                }
                if !seen.insert(value.clone()) {
                    return Err(fail(format!("rows of partition {column}={value:?} arrived out of order")));
                }
                let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(writer_properties()))
                    .map_err(|e| fail(e.to_string()))?;
                open = Some(Open { value, writer, rows: 0 });
            }
            let part = open.as_mut().expect("opened above");
            part.writer.write(&batch.slice(start, end - start)).map_err(|e| fail(e.to_string()))?;
            part.rows += (end - start) as u64;
            start = end;
        }
    }
    if let Some(done) = open.take() {
        finish(storage, dir, column, done, existing, &mut out).await.map_err(|e| fail(e.to_string()))?;
    }
    Ok(out)
}

async fn finish(
    storage: &Storage,
    dir: &str,
    column: &str,
    part: Open,
    existing: &HashSet<String>,
    out: &mut Written,
) -> Result<()> {
    let bytes = part.writer.into_inner().map_err(|e| Error::Internal(e.to_string()))?;
    let hash = hex::encode(&Sha256::digest(&bytes)[..12]);
    let value = part.value.as_deref().unwrap_or(NULL_PARTITION);
    let path = format!("{dir}/{column}={value}/part-{hash}.parquet");
    if !existing.contains(&path) {
        storage.put(&path, bytes).await?;
        out.changed.push(path.clone());
    }
    out.rows += part.rows;
    out.files.push(path);
    Ok(())
}
