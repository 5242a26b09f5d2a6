//! Writing a mart as Hive partitions of its period column (models.md 1.6).
//!
//! The model's rows arrive sorted by the partition column; each partition's rows are sorted by the
//! primary key here, before they are encoded, so the bytes of a partition depend only on its rows
//! (DataFusion 55 can drop sort keys it wrongly takes for constants, e.g. after a cross join with a
//! one-row side, so the key order is not left to the query plan). Each partition becomes one Parquet
//! object named by the
//! SHA-256 of its bytes, `<dir>/<column>=<value>/part-<hash>.parquet`: a partition whose content
//! did not change keeps its object and is not written again, a changed one gets a new object. The
//! set of partitions only changes when the `_current.json` pointer is swapped, so whole
//! partitions are replaced atomically for pointer readers; objects the new version no longer
//! names are deleted when the run ends.

use std::collections::HashSet;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::compute::{SortColumn, SortOptions, cast, concat_batches, lexsort_to_indices, take_record_batch};
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
    batches: Vec<RecordBatch>,
    rows: u64,
}

/// Writes `stream` (sorted by `column`) as one object per partition under `dir`, each sorted by
/// the columns `key` (ascending, NULLs first); objects named in `existing` are not rewritten.
#[allow(clippy::too_many_arguments)]
pub async fn write(
    storage: &Storage,
    model: &str,
    dir: &str,
    column: &str,
    key: &[String],
    schema: SchemaRef,
    mut stream: SendableRecordBatchStream,
    existing: &HashSet<String>,
) -> Result<Written> {
    let fail = |message: String| Error::Transform { model: model.to_string(), message };
    let index = schema.index_of(column).map_err(|e| fail(format!("partition column: {e}")))?;
    let key = key
        .iter()
        .map(|k| schema.index_of(k).map_err(|e| fail(format!("primary key: {e}"))))
        .collect::<Result<Vec<_>>>()?;
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
                    finish(storage, dir, column, &key, &schema, done, existing, &mut out)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                }
                if !seen.insert(value.clone()) {
                    return Err(fail(format!("rows of partition {column}={value:?} arrived out of order")));
                }
                open = Some(Open { value, batches: Vec::new(), rows: 0 });
            }
            let part = open.as_mut().expect("opened above");
            part.batches.push(batch.slice(start, end - start));
            part.rows += (end - start) as u64;
            start = end;
        }
    }
    if let Some(done) = open.take() {
        finish(storage, dir, column, &key, &schema, done, existing, &mut out).await.map_err(|e| fail(e.to_string()))?;
    }
    Ok(out)
}

/// `batches` as one batch sorted by the columns at `key` (ascending, NULLs first).
pub fn sort_by_key(schema: &SchemaRef, batches: &[RecordBatch], key: &[usize]) -> arrow::error::Result<RecordBatch> {
    let batch = concat_batches(schema, batches)?;
    if key.is_empty() || batch.num_rows() < 2 {
        return Ok(batch);
    }
    let options = Some(SortOptions { descending: false, nulls_first: true });
    let columns: Vec<SortColumn> =
        key.iter().map(|&i| SortColumn { values: batch.column(i).clone(), options }).collect();
    take_record_batch(&batch, &lexsort_to_indices(&columns, None)?)
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    storage: &Storage,
    dir: &str,
    column: &str,
    key: &[usize],
    schema: &SchemaRef,
    part: Open,
    existing: &HashSet<String>,
    out: &mut Written,
) -> Result<()> {
    let sorted = sort_by_key(schema, &part.batches, key).map_err(|e| Error::Internal(e.to_string()))?;
    drop(part.batches);
    let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(writer_properties()))
        .map_err(|e| Error::Internal(e.to_string()))?;
    writer.write(&sorted).map_err(|e| Error::Internal(e.to_string()))?;
    let bytes = writer.into_inner().map_err(|e| Error::Internal(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn sort_by_key_orders_across_batches_with_nulls_first() {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true), Field::new("b", DataType::Int64, false)]));
        let batch = |a: Vec<Option<&str>>, b: Vec<i64>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(a)), Arc::new(Int64Array::from(b))])
                .unwrap()
        };
        let batches = [batch(vec![Some("y"), None], vec![2, 9]), batch(vec![Some("x"), Some("y")], vec![5, 1])];
        let sorted = sort_by_key(&schema, &batches, &[0, 1]).unwrap();
        let a = sorted.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let b = sorted.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        let rows: Vec<(Option<&str>, i64)> = (0..4).map(|i| (a.is_valid(i).then(|| a.value(i)), b.value(i))).collect();
        assert_eq!(rows, vec![(None, 9), (Some("x"), 5), (Some("y"), 1), (Some("y"), 2)]);
    }
}
