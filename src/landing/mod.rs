//! Landing: source records → Arrow → Parquet (zstd) under `raw/<source>/<stream>/`.
//!
//! [`arrow::BatchBuilder`] types the contract columns of each record and keeps the whole record
//! as JSON text in `_raw`, so nothing the API sent is lost; [`parquet::write_file`] writes one
//! file part to object storage. Files are invisible until [`crate::manifest`] commits them.

pub mod arrow;
pub mod page;
pub mod parquet;
pub mod project;

pub use self::arrow::{BatchBuilder, RecordError};
pub use self::page::JsonApiPage;
pub use self::parquet::write_file;
