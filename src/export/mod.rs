//! `lifecycle-etl export`: the published marts out of Parquet, for tools that cannot read it.
//!
//! Metabase and Looker need a SQL connection, and finance pulls spreadsheets, so the marts are
//! either loaded into PostgreSQL ([`postgres`]) or written as one CSV per mart ([`csv`]). Both read
//! the same thing readers of the object store see: the current version of each mart, named by its
//! `_current.json` pointer, typed by its contract in `schemas/`. Restricted tables (plain emails and
//! phones) are left out unless asked for by name of the flag, so a BI database never receives
//! personal data by accident.

pub mod csv;
pub mod postgres;

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{Date32Type, Decimal128Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use datafusion::prelude::SessionContext;

use crate::config::{Job, Secrets};
use crate::contract::{self, ColumnType, Contract};
use crate::error::{Error, Result};
use crate::storage::Storage;
use crate::transform::{self, publish};

/// The `export` subcommand's arguments: exactly one target.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["postgres", "postgres_env", "csv"])))]
pub struct ExportArgs {
    #[arg(long, env = "LIFECYCLE_JOB")]
    pub job: PathBuf,
    /// PostgreSQL URL (`postgres://user:password@host:port/db?sslmode=disable`). Prefer
    /// `--postgres-env`: a URL on the command line stays in shell history and `ps`.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Name of the environment variable holding the PostgreSQL URL.
    #[arg(long, value_name = "VAR")]
    pub postgres_env: Option<String>,
    /// PostgreSQL schema the tables are loaded into (created when missing).
    #[arg(long, value_name = "NAME", default_value = "marts")]
    pub schema: String,
    /// Write one CSV per mart into this folder instead.
    #[arg(long, value_name = "DIR")]
    pub csv: Option<PathBuf>,
    /// Also export the restricted tables (plain emails and phones: personal data).
    #[arg(long)]
    pub include_restricted_personal_data: bool,
}

/// What exporting one table did.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    pub table: String,
    pub rows: u64,
}

/// Runs the subcommand; returns the lines to print.
pub async fn command(job: &Job, secrets: &Secrets, args: &ExportArgs) -> Result<Vec<String>> {
    let storage = Storage::open(&job.file.storage, secrets)?;
    let tables = tables(args.include_restricted_personal_data)?;
    let done = if let Some(dir) = &args.csv {
        csv::export(&storage, &tables, dir).await?
    } else {
        let url = match (&args.postgres, &args.postgres_env) {
            (Some(url), _) => url.clone(),
            (None, Some(var)) => secrets.get("--postgres-env", var)?,
            (None, None) => return Err(Error::config("export needs --postgres, --postgres-env or --csv")),
        };
        postgres::export(&storage, &tables, &url, &args.schema).await?
    };
    Ok(done.iter().map(|e| format!("  {:<34} {:>10} rows", e.table, e.rows)).collect())
}

/// The contracts of the tables an export writes: every model of layer `marts`, and the
/// `restricted` ones only when asked.
pub fn tables(include_restricted: bool) -> Result<Vec<Contract>> {
    let mut out = Vec::new();
    for m in transform::all_models()? {
        if m.layer == "marts" || (include_restricted && m.layer == "restricted") {
            out.push(contract::model(&m.layer, &m.name)?);
        }
    }
    Ok(out)
}

/// A session with the current version of each of `tables` registered under its name (an empty
/// table when it was never built).
pub async fn session(storage: &Storage, tables: &[Contract]) -> Result<SessionContext> {
    let ctx = transform::session(storage)?;
    for c in tables {
        let files = publish::current(storage, &c.layer, &c.name).await?.map(|p| p.files).unwrap_or_default();
        transform::register_files(&ctx, storage, &c.name, &files, c.arrow_schema()).await?;
    }
    Ok(ctx)
}

/// The columns of one batch, cast to the contract's types (DataFusion may hand strings back as
/// views), in contract order.
pub fn contract_columns(table: &Contract, batch: &arrow::array::RecordBatch) -> Result<Vec<ArrayRef>> {
    table
        .columns
        .iter()
        .map(|c| {
            let fail = |m: String| Error::Internal(format!("table {}, column {}: {m}", table.name, c.name));
            let array = batch.column_by_name(&c.name).ok_or_else(|| fail("missing from the data".into()))?;
            let want = c.column_type.arrow();
            if array.data_type() == &want {
                Ok(Arc::clone(array))
            } else {
                arrow::compute::cast(array, &want).map_err(|e| fail(e.to_string()))
            }
        })
        .collect()
}

/// One value, as both targets spell it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    /// Dates `YYYY-MM-DD`, timestamps RFC 3339 in UTC (`Z`), decimals with their 4 places.
    Text(String),
    List(Vec<Option<String>>),
}

/// The value at `row` of `array` (already of `ty`'s Arrow type, see [`contract_columns`]).
pub fn cell(array: &dyn Array, ty: ColumnType, row: usize) -> std::result::Result<Cell, String> {
    if array.is_null(row) {
        return Ok(Cell::Null);
    }
    let text = match ty {
        ColumnType::Utf8 => array.as_string::<i32>().value(row).to_string(),
        ColumnType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        ColumnType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        ColumnType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            // Spelled the way PostgreSQL and spreadsheets both read.
            match v {
                v if v.is_nan() => "NaN".into(),
                f64::INFINITY => "Infinity".into(),
                f64::NEG_INFINITY => "-Infinity".into(),
                v => v.to_string(),
            }
        }
        ColumnType::Boolean => array.as_boolean().value(row).to_string(),
        ColumnType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row);
            chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                .ok_or_else(|| format!("date {days} days from 1970-01-01 is out of range"))?
                .format("%Y-%m-%d")
                .to_string()
        }
        ColumnType::Timestamp => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            chrono::DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| format!("timestamp {micros} µs is out of range"))?
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        }
        ColumnType::Decimal => array.as_primitive::<Decimal128Type>().value_as_string(row),
        ColumnType::ListUtf8 => {
            let items = array.as_list::<i32>().value(row);
            let items = items.as_string::<i32>();
            return Ok(Cell::List(items.iter().map(|v| v.map(str::to_string)).collect()));
        }
    };
    Ok(Cell::Text(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Decimal128Array, ListBuilder, StringBuilder, TimestampMicrosecondArray};

    #[test]
    fn cells_keep_decimals_as_written_and_timestamps_in_utc() {
        let d = Decimal128Array::from(vec![Some(1_234_500), None]).with_precision_and_scale(18, 4).unwrap();
        assert_eq!(cell(&d, ColumnType::Decimal, 0).unwrap(), Cell::Text("123.4500".into()));
        assert_eq!(cell(&d, ColumnType::Decimal, 1).unwrap(), Cell::Null);
        let t = TimestampMicrosecondArray::from(vec![1_790_000_000_123_456]).with_timezone("UTC");
        assert_eq!(cell(&t, ColumnType::Timestamp, 0).unwrap(), Cell::Text("2026-09-21T14:13:20.123456Z".into()));
        let mut l = ListBuilder::new(StringBuilder::new());
        l.values().append_value("a");
        l.values().append_null();
        l.append(true);
        let l = l.finish();
        assert_eq!(cell(&l, ColumnType::ListUtf8, 0).unwrap(), Cell::List(vec![Some("a".into()), None]));
    }

    #[test]
    fn restricted_tables_only_on_request() {
        let names = |b| tables(b).unwrap().into_iter().map(|c| c.name).collect::<Vec<_>>();
        assert!(names(false).contains(&"fct_orders".to_string()));
        assert!(!names(false).contains(&"dim_customer_contact".to_string()));
        assert!(names(true).contains(&"dim_customer_contact".to_string()));
        assert!(!names(true).iter().any(|n| n.starts_with("stg_")));
    }
}
