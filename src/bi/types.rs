//! Contract column types in each SQL dialect. Chosen so every engine reads the Parquet the
//! transform writes without casts (platform.md section 4): microsecond UTC timestamps,
//! `Decimal128(18,4)` money, `List<Utf8>` arrays.

use clap::ValueEnum;

use crate::contract::ColumnType;

/// A SQL engine the DDL is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dialect {
    /// Views over `read_parquet(...)` (also Metabase's community DuckDB driver).
    Duckdb,
    /// External tables of the Hive connector.
    Trino,
    /// Hive-DDL external tables over S3.
    Athena,
    /// External tables over Cloud Storage.
    Bigquery,
    /// Plain tables: the target `export --postgres` loads.
    Postgres,
}

/// `t` spelled in `dialect`.
pub fn sql_type(dialect: Dialect, t: ColumnType) -> &'static str {
    use ColumnType::*;
    match dialect {
        Dialect::Duckdb => match t {
            Utf8 => "VARCHAR",
            Int64 => "BIGINT",
            Int32 => "INTEGER",
            Float64 => "DOUBLE",
            Boolean => "BOOLEAN",
            Date32 => "DATE",
            Timestamp => "TIMESTAMP WITH TIME ZONE",
            Decimal => "DECIMAL(18,4)",
            ListUtf8 => "VARCHAR[]",
        },
        // The Hive connector has no zoned timestamp column type: Parquet's UTC instants read as
        // `timestamp` in UTC (precision per `hive.timestamp-precision`).
        Dialect::Trino => match t {
            Utf8 => "varchar",
            Int64 => "bigint",
            Int32 => "integer",
            Float64 => "double",
            Boolean => "boolean",
            Date32 => "date",
            Timestamp => "timestamp",
            Decimal => "decimal(18,4)",
            ListUtf8 => "array(varchar)",
        },
        Dialect::Athena => match t {
            Utf8 => "string",
            Int64 => "bigint",
            Int32 => "int",
            Float64 => "double",
            Boolean => "boolean",
            Date32 => "date",
            Timestamp => "timestamp",
            Decimal => "decimal(18,4)",
            ListUtf8 => "array<string>",
        },
        Dialect::Bigquery => match t {
            Utf8 => "STRING",
            Int64 | Int32 => "INT64",
            Float64 => "FLOAT64",
            Boolean => "BOOL",
            Date32 => "DATE",
            Timestamp => "TIMESTAMP",
            Decimal => "NUMERIC(18, 4)",
            ListUtf8 => "ARRAY<STRING>",
        },
        Dialect::Postgres => match t {
            Utf8 => "text",
            Int64 => "bigint",
            Int32 => "integer",
            Float64 => "double precision",
            Boolean => "boolean",
            Date32 => "date",
            Timestamp => "timestamptz",
            Decimal => "numeric(18,4)",
            ListUtf8 => "text[]",
        },
    }
}
