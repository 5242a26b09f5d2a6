//! `docs/marts.md`: the column-by-column reference of the marts, generated from `schemas/` so it
//! cannot drift from the contracts the transform enforces. The contribution tables come first
//! because finance reads them.

use crate::bi::{table_dir, tables};
use crate::contract::{ColumnType, Contract};
use crate::error::Result;

/// The whole Markdown document.
pub fn generate() -> Result<String> {
    let marts = tables(false)?;
    let mut s = String::from(
        "# The marts, column by column\n\n\
         Generated from `schemas/marts/` by `lifecycle-etl marts-doc` (do not edit; `cargo test --test bi_generated`\n\
         fails when this file is stale, `LCE_REGENERATE=1` rewrites it). Types: `Timestamp` is microseconds in UTC,\n\
         `Decimal` is `Decimal128(18,4)` money in the reporting currency, `Date32` a calendar date. Paths are\n\
         relative to the job's storage URL; a reader finds the current version in `<path>/_current.json`\n\
         (`lifecycle-etl ddl` writes the SQL that points at it). The restricted table `dim_customer_contact`\n\
         (plain emails and phones) is not listed here.\n\n",
    );
    for c in &marts {
        s.push_str(&format!("- [{}](#{})\n", c.name, c.name));
    }
    for c in &marts {
        s.push('\n');
        s.push_str(&table(c));
    }
    Ok(s)
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn type_name(t: ColumnType) -> &'static str {
    match t {
        ColumnType::Utf8 => "Utf8",
        ColumnType::Int64 => "Int64",
        ColumnType::Int32 => "Int32",
        ColumnType::Float64 => "Float64",
        ColumnType::Boolean => "Boolean",
        ColumnType::Date32 => "Date32",
        ColumnType::Timestamp => "Timestamp",
        ColumnType::Decimal => "Decimal(18,4)",
        ColumnType::ListUtf8 => "List<Utf8>",
    }
}

fn table(c: &Contract) -> String {
    let dir = table_dir(c);
    let layout = match &c.partition_by {
        Some(p) => format!("Hive-partitioned by `{p}`: `{dir}/{p}=<value>/part-<sha>.parquet`"),
        None => format!("not partitioned: one file per version, `{dir}/version=<run_id>/part-00000.parquet`"),
    };
    let mut s = format!(
        "## {}\n\n{}\n\n- Primary key: {}\n- Storage: {layout}\n\n| column | type | nullable | accepted values | description |\n|---|---|---|---|---|\n",
        c.name,
        cell(&c.grain),
        c.primary_key.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
    );
    for col in &c.columns {
        let accepted =
            col.accepted_values.as_ref().map(|v| v.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", "));
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            col.name,
            type_name(col.column_type),
            if col.nullable { "yes" } else { "no" },
            accepted.unwrap_or_default(),
            cell(&col.description)
        ));
    }
    s
}
