//! Writes one table file as Parquet or CSV from typed rows, so the table builders stay
//! format-free and both formats carry exactly the same values.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;

use super::WarehouseFormat;

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    /// Naive UTC, microseconds.
    Ts,
    I64,
    Bool,
}

/// One column of a table: name, type, nullability.
pub type Column = (&'static str, Kind, bool);

/// One cell; `None` is NULL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Val {
    S(Option<String>),
    T(Option<DateTime<Utc>>),
    I(Option<i64>),
    B(Option<bool>),
}

impl Val {
    pub fn s(v: impl Into<String>) -> Self {
        Val::S(Some(v.into()))
    }
}

/// The Arrow schema of `columns`.
pub fn schema(columns: &[Column]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|(name, kind, nullable)| {
                let t = match kind {
                    Kind::Str => DataType::Utf8,
                    Kind::Ts => DataType::Timestamp(TimeUnit::Microsecond, None),
                    Kind::I64 => DataType::Int64,
                    Kind::Bool => DataType::Boolean,
                };
                Field::new(*name, t, *nullable)
            })
            .collect::<Vec<_>>(),
    )
}

/// Writes `rows` (each in `columns` order) to `path`.
pub fn write(path: &Path, columns: &[Column], rows: &[Vec<Val>], format: WarehouseFormat) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match format {
        WarehouseFormat::Parquet => write_parquet(path, columns, rows),
        WarehouseFormat::Csv => write_csv(path, columns, rows),
    }
}

fn write_parquet(path: &Path, columns: &[Column], rows: &[Vec<Val>]) -> io::Result<()> {
    let schema = Arc::new(schema(columns));
    let arrays: Vec<ArrayRef> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, kind, _))| {
            let cells = rows.iter().map(|r| &r[i]);
            match kind {
                Kind::Str => Arc::new(
                    cells.map(|c| if let Val::S(v) = c { v.clone() } else { wrong(name) }).collect::<StringArray>(),
                ) as ArrayRef,
                Kind::Ts => Arc::new(
                    cells
                        .map(|c| if let Val::T(v) = c { v.map(|t| t.timestamp_micros()) } else { wrong(name) })
                        .collect::<TimestampMicrosecondArray>(),
                ),
                Kind::I64 => {
                    Arc::new(cells.map(|c| if let Val::I(v) = c { *v } else { wrong(name) }).collect::<Int64Array>())
                }
                Kind::Bool => {
                    Arc::new(cells.map(|c| if let Val::B(v) = c { *v } else { wrong(name) }).collect::<BooleanArray>())
                }
            }
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(io::Error::other)?;
    let mut writer = ArrowWriter::try_new(File::create(path)?, schema, None).map_err(io::Error::other)?;
    writer.write(&batch).map_err(io::Error::other)?;
    writer.close().map_err(io::Error::other)?;
    Ok(())
}

fn wrong<T>(column: &str) -> T {
    panic!("column {column}: a cell of another type")
}

/// RFC 4180 CSV with a header; NULL is an empty cell, timestamps `YYYY-MM-DD HH:MM:SS.ffffff`.
fn write_csv(path: &Path, columns: &[Column], rows: &[Vec<Val>]) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(BufWriter::new(File::create(path)?));
    w.write_record(columns.iter().map(|c| c.0))?;
    for row in rows {
        w.write_record(row.iter().map(|v| match v {
            Val::S(v) => v.clone().unwrap_or_default(),
            Val::T(v) => v.map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()).unwrap_or_default(),
            Val::I(v) => v.map(|i| i.to_string()).unwrap_or_default(),
            Val::B(v) => v.map(|b| b.to_string()).unwrap_or_default(),
        }))?;
    }
    w.into_inner().map_err(|e| io::Error::other(e.to_string()))?.flush()
}
