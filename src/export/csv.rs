//! `export --csv DIR`: one RFC 4180 file per mart for finance's spreadsheets.
//!
//! Each file is written beside its final name and renamed over it once complete and synced, so a
//! spreadsheet refreshing from the folder reads either yesterday's file or today's, never half of
//! one. NULL is an empty field; lists are JSON arrays (a spreadsheet cell holds one value).

use std::io::Write;
use std::path::Path;

use futures::StreamExt;

use super::{Cell, Exported, cell, contract_columns};
use crate::contract::Contract;
use crate::error::{Error, Result};
use crate::storage::Storage;

/// Writes `<dir>/<table>.csv` for each table; returns the rows written.
pub async fn export(storage: &Storage, tables: &[Contract], dir: &Path) -> Result<Vec<Exported>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let ctx = super::session(storage, tables).await?;
    let mut done = Vec::new();
    for table in tables {
        let started = std::time::Instant::now();
        let path = dir.join(format!("{}.csv", table.name));
        let tmp = dir.join(format!(".{}.csv.tmp-{}", table.name, std::process::id()));
        let result = write_table(&ctx, table, &tmp).await;
        let rows = match result.and_then(|rows| {
            std::fs::rename(&tmp, &path).map_err(|e| Error::io(format!("cannot rename onto {}", path.display()), e))?;
            Ok(rows)
        }) {
            Ok(rows) => rows,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        tracing::info!(table = %table.name, rows, elapsed_ms = started.elapsed().as_millis() as u64, "CSV written.");
        done.push(Exported { table: table.name.clone(), rows });
    }
    Ok(done)
}

async fn write_table(ctx: &datafusion::prelude::SessionContext, table: &Contract, tmp: &Path) -> Result<u64> {
    let df_err = |e: datafusion::error::DataFusionError| Error::Transform {
        model: table.name.clone(),
        message: format!("reading for the CSV export: {e}"),
    };
    let io_err = |e: std::io::Error| Error::io(format!("table {}: cannot write {}", table.name, tmp.display()), e);
    let csv_err = |e: ::csv::Error| Error::Internal(format!("table {}: CSV writer: {e}", table.name));
    let file = std::fs::File::create(tmp).map_err(io_err)?;
    let mut w = ::csv::WriterBuilder::new().terminator(::csv::Terminator::CRLF).from_writer(file);
    w.write_record(table.columns.iter().map(|c| c.name.as_str())).map_err(csv_err)?;
    let mut stream = ctx.table(&table.name).await.map_err(df_err)?.execute_stream().await.map_err(df_err)?;
    let mut rows = 0u64;
    let mut record: Vec<String> = Vec::with_capacity(table.columns.len());
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(df_err)?;
        let columns = contract_columns(table, &batch)?;
        for row in 0..batch.num_rows() {
            record.clear();
            for (spec, array) in table.columns.iter().zip(&columns) {
                let value = cell(array.as_ref(), spec.column_type, row).map_err(|m| {
                    Error::Contract(format!("table {}, column {}, row {}: {m}", table.name, spec.name, rows + 1))
                })?;
                record.push(match value {
                    Cell::Null => String::new(),
                    Cell::Text(t) => t,
                    Cell::List(items) => serde_json::to_string(&items).map_err(|e| Error::Internal(e.to_string()))?,
                });
            }
            w.write_record(&record).map_err(csv_err)?;
            rows += 1;
        }
    }
    let file = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    let mut file = file;
    file.flush().map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    Ok(rows)
}
