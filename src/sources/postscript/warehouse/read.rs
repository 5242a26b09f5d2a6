//! One unloaded table file, CSV or Parquet, read row by row into JSON cells keyed by column
//! name (trimmed, lower case: Snowflake unloads upper-case names), so both formats land through
//! the same contract. Types are not checked here: landing types each cell against the raw
//! contract and names the field that does not parse.

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::DateTime;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde_json::{Map, Value};

use crate::config::WarehouseFormat;

/// How one file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Csv,
}

impl FileFormat {
    /// The format of an object named `name` (its last path segment) under `configured`; `None`
    /// for objects that are not table data: markers and hidden files (`_SUCCESS`, `.keep`) and,
    /// under `auto`, anything not ending in `.parquet` or `.csv`.
    pub fn of(name: &str, configured: WarehouseFormat) -> Option<Self> {
        if name.is_empty() || name.starts_with(['_', '.']) {
            return None;
        }
        let lower = name.to_ascii_lowercase();
        match configured {
            WarehouseFormat::Parquet => Some(Self::Parquet),
            WarehouseFormat::Csv => Some(Self::Csv),
            WarehouseFormat::Auto if lower.ends_with(".parquet") => Some(Self::Parquet),
            WarehouseFormat::Auto if lower.ends_with(".csv") => Some(Self::Csv),
            WarehouseFormat::Auto => None,
        }
    }
}

/// A column name as a record key: trimmed, lower case (a UTF-8 BOM dropped).
pub fn column_key(name: &str) -> String {
    name.trim().trim_start_matches('\u{feff}').to_ascii_lowercase()
}

/// One data row: its cells by column, or why the row itself could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Cells(Map<String, Value>),
    Unreadable { why: String, body: Value },
}

/// Reads a file's rows in order; `row_number` 1 is the first data row.
pub enum RowReader {
    Csv {
        reader: csv::Reader<File>,
        columns: Vec<String>,
        row_number: u64,
    },
    Parquet {
        reader: ParquetRecordBatchReader,
        columns: Vec<String>,
        pending: VecDeque<Map<String, Value>>,
        row_number: u64,
    },
}

impl RowReader {
    /// Opens `path`; an error says why the file as a whole cannot be read.
    pub fn open(path: &Path, format: FileFormat) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open the downloaded copy: {e}"))?;
        match format {
            FileFormat::Csv => {
                // RFC 4180: comma, double-quote quoting, quotes doubled inside a quoted field.
                let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
                let columns = reader
                    .headers()
                    .map_err(|e| format!("not a CSV file with a header row: {e}"))?
                    .iter()
                    .map(column_key)
                    .collect();
                Ok(Self::Csv { reader, columns, row_number: 0 })
            }
            FileFormat::Parquet => {
                let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| format!("not a readable Parquet file: {e}"))?;
                let columns = builder.schema().fields().iter().map(|f| column_key(f.name())).collect();
                let reader = builder.with_batch_size(4096).build().map_err(|e| format!("cannot read Parquet: {e}"))?;
                Ok(Self::Parquet { reader, columns, pending: VecDeque::new(), row_number: 0 })
            }
        }
    }

    /// The file's columns as record keys, in file order.
    pub fn columns(&self) -> &[String] {
        match self {
            Self::Csv { columns, .. } | Self::Parquet { columns, .. } => columns,
        }
    }

    /// The next row with its number; `Err` when the rest of the file cannot be read.
    pub fn next_row(&mut self) -> Option<Result<(u64, Row), String>> {
        match self {
            Self::Csv { reader, columns, row_number } => {
                let mut record = csv::StringRecord::new();
                let read = reader.read_record(&mut record);
                *row_number += 1;
                let n = *row_number;
                match read {
                    Ok(false) => None,
                    Ok(true) if record.len() != columns.len() => {
                        let why = format!("the row has {} fields, the header {}", record.len(), columns.len());
                        let body = Value::Array(record.iter().map(|c| Value::String(c.to_string())).collect());
                        Some(Ok((n, Row::Unreadable { why, body })))
                    }
                    Ok(true) => {
                        let cells = columns
                            .iter()
                            .zip(record.iter())
                            .map(|(k, c)| {
                                // Empty cell = NULL (the unload contract; CSV has no other NULL).
                                (k.clone(), if c.is_empty() { Value::Null } else { Value::String(c.to_string()) })
                            })
                            .collect();
                        Some(Ok((n, Row::Cells(cells))))
                    }
                    // A bad UTF-8 or quoting error is the row's; an I/O error ends the file.
                    Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => Some(Err(format!("cannot read: {e}"))),
                    Err(e) => {
                        Some(Ok((n, Row::Unreadable { why: format!("unreadable CSV row: {e}"), body: Value::Null })))
                    }
                }
            }
            Self::Parquet { reader, columns, pending, row_number } => {
                while pending.is_empty() {
                    match reader.next()? {
                        Ok(batch) => match batch_rows(&batch, columns) {
                            Ok(rows) => pending.extend(rows),
                            Err(e) => return Some(Err(e)),
                        },
                        Err(e) => return Some(Err(format!("cannot read Parquet: {e}"))),
                    }
                }
                *row_number += 1;
                pending.pop_front().map(|cells| Ok((*row_number, Row::Cells(cells))))
            }
        }
    }
}

/// A Parquet batch as rows of JSON cells.
fn batch_rows(batch: &RecordBatch, columns: &[String]) -> Result<Vec<Map<String, Value>>, String> {
    let values: Vec<Vec<Value>> = batch
        .columns()
        .iter()
        .zip(columns)
        .map(|(a, name)| column_values(a).map_err(|e| format!("column {name}: {e}")))
        .collect::<Result<_, _>>()?;
    Ok((0..batch.num_rows())
        .map(|i| columns.iter().zip(&values).map(|(k, v)| (k.clone(), v[i].clone())).collect())
        .collect())
}

/// One Arrow column as JSON cells: integers as numbers, booleans as booleans, timestamps as
/// naive UTC text with microseconds (the CSV form), strings as text, anything else as its
/// display text. Nothing is narrowed silently: a value that does not fit is an error.
fn column_values(array: &ArrayRef) -> Result<Vec<Value>, String> {
    use DataType::*;
    let strict = CastOptions { safe: false, ..Default::default() };
    let cast = |to: &DataType| cast_with_options(array, to, &strict).map_err(|e| e.to_string());
    let n = array.len();
    let out = match array.data_type() {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => {
            let a = cast(&Int64)?;
            let a = a.as_primitive::<Int64Type>();
            (0..n).map(|i| if a.is_null(i) { Value::Null } else { Value::from(a.value(i)) }).collect()
        }
        Float16 | Float32 | Float64 => {
            let a = cast(&Float64)?;
            let a = a.as_primitive::<Float64Type>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        serde_json::Number::from_f64(a.value(i))
                            .map_or_else(|| Value::String(a.value(i).to_string()), Value::Number)
                    }
                })
                .collect()
        }
        Boolean => {
            let a = array.as_boolean();
            (0..n).map(|i| if a.is_null(i) { Value::Null } else { Value::Bool(a.value(i)) }).collect()
        }
        Timestamp(_, tz) => {
            // Epoch-based either way: naive values are UTC wall time, zoned ones UTC instants.
            let a = cast(&Timestamp(TimeUnit::Microsecond, tz.clone()))?;
            let a = a.as_primitive::<TimestampMicrosecondType>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        return Ok(Value::Null);
                    }
                    let t = DateTime::from_timestamp_micros(a.value(i))
                        .ok_or_else(|| format!("timestamp {} is out of range", a.value(i)))?;
                    Ok(Value::String(t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string()))
                })
                .collect::<Result<_, String>>()?
        }
        Utf8 | LargeUtf8 | Utf8View | Dictionary(_, _) => {
            let a = cast(&Utf8)?;
            let a = a.as_string::<i32>();
            (0..n).map(|i| if a.is_null(i) { Value::Null } else { Value::String(a.value(i).to_string()) }).collect()
        }
        _ => {
            let f = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).map_err(|e| e.to_string())?;
            (0..n).map(|i| if array.is_null(i) { Value::Null } else { Value::String(f.value(i).to_string()) }).collect()
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BooleanArray, Int32Array, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{Field, Schema};
    use serde_json::json;

    use super::*;

    #[test]
    fn formats_by_extension_and_markers_are_ignored() {
        assert_eq!(FileFormat::of("data_0_0.parquet", WarehouseFormat::Auto), Some(FileFormat::Parquet));
        assert_eq!(FileFormat::of("DATA.CSV", WarehouseFormat::Auto), Some(FileFormat::Csv));
        assert_eq!(FileFormat::of("data.csv.gz", WarehouseFormat::Auto), None);
        assert_eq!(FileFormat::of("_SUCCESS", WarehouseFormat::Parquet), None);
        assert_eq!(FileFormat::of("data_0_0_0", WarehouseFormat::Parquet), Some(FileFormat::Parquet));
    }

    #[test]
    fn csv_quoting_and_empty_cells() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "MESSAGE_ID,text,failed\nm1,\"Hi, \"\"you\"\"\nthere\",true\nm2,,false\nm3\n").unwrap();
        let mut r = RowReader::open(&path, FileFormat::Csv).unwrap();
        assert_eq!(r.columns(), ["message_id", "text", "failed"]);
        let Some(Ok((1, Row::Cells(c)))) = r.next_row() else { panic!() };
        assert_eq!(c["text"], "Hi, \"you\"\nthere");
        let Some(Ok((2, Row::Cells(c)))) = r.next_row() else { panic!() };
        assert_eq!(c["text"], Value::Null);
        assert!(matches!(r.next_row(), Some(Ok((3, Row::Unreadable { .. })))));
        assert!(r.next_row().is_none());
    }

    #[test]
    fn parquet_cells_take_the_csv_forms() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int32, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![Some(7), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(TimestampNanosecondArray::from(vec![Some(1_500_000_001_000), None])),
                Arc::new(StringArray::from(vec![Some("x"), None])),
            ],
        )
        .unwrap();
        let rows = batch_rows(&batch, &["n".into(), "b".into(), "t".into(), "s".into()]).unwrap();
        assert_eq!(
            Value::Object(rows[0].clone()),
            json!({"n": 7, "b": true, "t": "1970-01-01 00:25:00.000001", "s": "x"})
        );
        assert!(rows[1].values().all(Value::is_null));
    }
}
