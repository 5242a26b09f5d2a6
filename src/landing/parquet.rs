//! Parquet files in object storage: the writer settings, named.

use arrow::array::RecordBatch;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{Error, Result};
use crate::manifest::LandedFile;
use crate::storage::Storage;

/// zstd level 3 for modeled tables: the library's default trade-off.
pub const ZSTD_LEVEL: i32 = 3;
/// zstd level 1 for landed raw files: most of their bytes are the `_raw` JSON text, which level 1
/// still shrinks several-fold at about twice level 3's speed, and landing is the hot path.
pub const RAW_ZSTD_LEVEL: i32 = 1;
/// Rows per row group; a landed part is one batch, so usually one row group.
pub const MAX_ROW_GROUP_ROWS: usize = 128 * 1024;

/// The writer properties every file of this job uses.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).expect("valid zstd level")))
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_created_by(format!("lifecycle-etl {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The properties of landed raw files: `_raw` holds one distinct JSON document per row, so a
/// dictionary (built, then abandoned) and min/max statistics over it are pure cost.
pub fn raw_writer_properties() -> WriterProperties {
    let raw = ColumnPath::from(crate::contract::RAW_COLUMN);
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(RAW_ZSTD_LEVEL).expect("valid zstd level")))
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_column_dictionary_enabled(raw.clone(), false)
        .set_column_statistics_enabled(raw, EnabledStatistics::None)
        .set_created_by(format!("lifecycle-etl {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Writes a landed raw `batch` as one Parquet object at the job-relative path `rel`.
pub async fn write_file(storage: &Storage, rel: &str, batch: &RecordBatch) -> Result<LandedFile> {
    let writer = storage.writer(rel);
    let mut w = AsyncArrowWriter::try_new(writer, batch.schema(), Some(raw_writer_properties()))
        .map_err(|e| Error::Internal(format!("parquet writer for {rel}: {e}")))?;
    let fail = |e: parquet::errors::ParquetError| Error::Io {
        context: format!("cannot write {rel}"),
        cause: std::io::Error::other(e),
    };
    w.write(batch).await.map_err(fail)?;
    // `finish` (not `close`) keeps the writer, whose byte count is final only now.
    w.finish().await.map_err(fail)?;
    let bytes = w.bytes_written() as u64;
    Ok(LandedFile { path: rel.to_string(), rows: batch.num_rows() as u64, bytes })
}
