//! Reading query results column by column for the Rust models: every reader casts first, so a
//! model does not care whether a seed column arrives as text or a landed column as a view type.

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type, TimeUnit};
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

/// Runs `sql` and returns its batches.
pub async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}

/// Runs `sql` and hands its batches to `each` one at a time, so a large result is never held
/// whole (a sort in the plan spills within the session's memory pool instead).
pub async fn for_each_batch(
    ctx: &SessionContext,
    sql: &str,
    mut each: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    use futures::StreamExt;
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        each(&batch?)?;
    }
    Ok(())
}

/// Column `i` as text.
pub fn text(b: &RecordBatch, i: usize) -> Result<StringArray> {
    Ok(arrow::compute::cast(b.column(i), &DataType::Utf8)?.as_string::<i32>().clone())
}

/// Row `r` of a text column, `None` when NULL.
pub fn opt_str(a: &StringArray, r: usize) -> Option<String> {
    a.is_valid(r).then(|| a.value(r).to_string())
}

/// Column `i` as 64-bit integers (NULL stays NULL).
pub fn int(b: &RecordBatch, i: usize) -> Result<arrow::array::Int64Array> {
    Ok(arrow::compute::cast(b.column(i), &DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

/// Column `i` as floats.
pub fn float(b: &RecordBatch, i: usize) -> Result<arrow::array::Float64Array> {
    Ok(arrow::compute::cast(b.column(i), &DataType::Float64)?.as_primitive::<Float64Type>().clone())
}

/// Column `i` (a timestamp) as microseconds since the epoch, UTC.
pub fn micros(b: &RecordBatch, i: usize) -> Result<arrow::array::Int64Array> {
    let ts = arrow::compute::cast(b.column(i), &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))?;
    int_of(&ts)
}

fn int_of(a: &arrow::array::ArrayRef) -> Result<arrow::array::Int64Array> {
    Ok(arrow::compute::cast(a, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

/// Column `i` (a date) as days since the epoch.
pub fn days(b: &RecordBatch, i: usize) -> Result<arrow::array::Int32Array> {
    let d = arrow::compute::cast(b.column(i), &DataType::Date32)?;
    Ok(arrow::compute::cast(&d, &DataType::Int32)?.as_primitive::<arrow::datatypes::Int32Type>().clone())
}

/// Column `i` as `Decimal(18,4)` units (money × 10⁴).
pub fn money(b: &RecordBatch, i: usize) -> Result<arrow::array::PrimitiveArray<Decimal128Type>> {
    Ok(arrow::compute::cast(b.column(i), &DataType::Decimal128(18, 4))?.as_primitive::<Decimal128Type>().clone())
}

/// Column `i` as booleans.
pub fn boolean(b: &RecordBatch, i: usize) -> Result<arrow::array::BooleanArray> {
    Ok(arrow::compute::cast(b.column(i), &DataType::Boolean)?.as_boolean().clone())
}

/// `cfg_settings` as key → value.
pub async fn settings(ctx: &SessionContext) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for b in query(ctx, "select key, value from cfg_settings").await? {
        let (k, v) = (text(&b, 0)?, text(&b, 1)?);
        for r in 0..b.num_rows() {
            if k.is_valid(r) && v.is_valid(r) {
                out.insert(k.value(r).trim().to_string(), v.value(r).trim().to_string());
            }
        }
    }
    Ok(out)
}
