//! Data contracts: the YAML files under `schemas/`, loaded into Arrow schemas and column tests.
//!
//! One format serves raw streams (`schemas/raw/<source>/<stream>.yml`, whose columns carry the
//! JSON pointer they are read from) and models (`schemas/<layer>/<model>.yml`). The files are
//! embedded in the binary so a container needs nothing mounted.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

static SCHEMAS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/schemas");

/// A column type, spelled as in models.md section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ColumnType {
    Utf8,
    Int64,
    Int32,
    Float64,
    Boolean,
    Date32,
    /// `Timestamp(Microsecond, "UTC")`: Spark rejects nanoseconds.
    Timestamp,
    /// `Decimal128(18,4)`: money in reporting currency.
    Decimal,
    #[serde(rename = "List<Utf8>")]
    ListUtf8,
}

impl ColumnType {
    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Int32 => DataType::Int32,
            ColumnType::Float64 => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Date32 => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnType::Decimal => DataType::Decimal128(18, 4),
            ColumnType::ListUtf8 => DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        }
    }
}

/// One column of a contract.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    #[serde(default = "yes")]
    pub nullable: bool,
    /// Raw contracts only: JSON pointer into the source record (`/attributes/datetime`).
    #[serde(default)]
    pub path: Option<String>,
    /// Raw contracts of child streams: the id of the parent record the child was read under
    /// (APIs do not always repeat it inside the child).
    #[serde(default)]
    pub parent_id: bool,
    pub description: String,
    /// The only values allowed (NULL aside).
    #[serde(default)]
    pub accepted_values: Option<Vec<String>>,
}

fn yes() -> bool {
    true
}

/// A table's contract.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub name: String,
    /// `raw`, `staging`, `intermediate` or `marts`.
    pub layer: String,
    #[serde(default)]
    pub source: Option<String>,
    /// One sentence: what one row is.
    pub grain: String,
    pub primary_key: Vec<String>,
    #[serde(default)]
    pub partition_by: Option<String>,
    pub columns: Vec<ColumnSpec>,
}

/// Columns landing adds in front of every raw stream's contract columns, and after them.
pub const LANDING_PREFIX: [&str; 2] = ["_run_id", "_landed_at"];
/// The full source record as JSON text.
pub const RAW_COLUMN: &str = "_raw";

impl Contract {
    /// The Arrow schema of the contract columns alone.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns.iter().map(|c| Field::new(&c.name, c.column_type.arrow(), c.nullable)).collect::<Vec<_>>(),
        ))
    }

    /// The schema of a landed raw file: load metadata, contract columns, `_raw`.
    pub fn landed_schema(&self) -> SchemaRef {
        let mut fields = vec![
            Field::new("_run_id", DataType::Utf8, false),
            Field::new("_landed_at", ColumnType::Timestamp.arrow(), false),
        ];
        fields.extend(self.columns.iter().map(|c| Field::new(&c.name, c.column_type.arrow(), c.nullable)));
        fields.push(Field::new(RAW_COLUMN, DataType::Utf8, false));
        Arc::new(Schema::new(fields))
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn validate(&self, file: &str) -> std::result::Result<(), String> {
        if self.grain.trim().is_empty() {
            return Err(format!("{file}: `grain` is empty"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.columns {
            if !seen.insert(&c.name) {
                return Err(format!("{file}: column {} is listed twice", c.name));
            }
            if c.description.trim().is_empty() {
                return Err(format!("{file}: column {} has no description", c.name));
            }
            if self.layer == "raw" && c.path.is_none() != c.parent_id {
                return Err(format!(
                    "{file}: raw column {} needs either a `path` (JSON pointer) or `parent_id: true`",
                    c.name
                ));
            }
            if let Some(p) = &c.path
                && !p.starts_with('/')
            {
                return Err(format!("{file}: column {}: path {p:?} is not a JSON pointer", c.name));
            }
        }
        for k in &self.primary_key {
            match self.column(k) {
                None => return Err(format!("{file}: primary key column {k} is not a column")),
                Some(c) if c.nullable => {
                    return Err(format!("{file}: primary key column {k} must be `nullable: false`"));
                }
                _ => {}
            }
        }
        if let Some(p) = &self.partition_by
            && self.column(p).is_none()
        {
            return Err(format!("{file}: partition column {p} is not a column"));
        }
        Ok(())
    }
}

/// Every contract shipped in the binary, validated.
pub fn all() -> Result<Vec<(String, Contract)>> {
    let mut out = Vec::new();
    collect(&SCHEMAS, &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn collect(dir: &Dir<'_>, out: &mut Vec<(String, Contract)>) -> Result<()> {
    for file in dir.files() {
        let path = file.path().to_string_lossy().to_string();
        if !path.ends_with(".yml") {
            continue;
        }
        let text = file.contents_utf8().ok_or_else(|| Error::config(format!("schemas/{path} is not UTF-8")))?;
        let contract: Contract =
            serde_yaml::from_str(text).map_err(|e| Error::config(format!("schemas/{path}: {e}")))?;
        contract.validate(&format!("schemas/{path}")).map_err(Error::config)?;
        out.push((path, contract));
    }
    for sub in dir.dirs() {
        collect(sub, out)?;
    }
    Ok(())
}

/// The raw contract of a stream (`schemas/raw/<source>/<stream>.yml`).
pub fn raw(source: &str, stream: &str) -> Result<Contract> {
    load(&format!("raw/{source}/{stream}.yml"))
}

/// A model's contract (`schemas/<layer>/<model>.yml`).
pub fn model(layer: &str, name: &str) -> Result<Contract> {
    load(&format!("{layer}/{name}.yml"))
}

fn load(rel: &str) -> Result<Contract> {
    let file = SCHEMAS.get_file(rel).ok_or_else(|| Error::config(format!("no contract schemas/{rel}")))?;
    let text = file.contents_utf8().ok_or_else(|| Error::config(format!("schemas/{rel} is not UTF-8")))?;
    let c: Contract = serde_yaml::from_str(text).map_err(|e| Error::config(format!("schemas/{rel}: {e}")))?;
    c.validate(&format!("schemas/{rel}")).map_err(Error::config)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_contract_is_valid() {
        let all = all().unwrap();
        assert!(
            all.iter().any(|(p, _)| p == "raw/klaviyo/events.yml"),
            "{:?}",
            all.iter().map(|a| &a.0).collect::<Vec<_>>()
        );
    }

    #[test]
    fn primary_keys_must_be_required_columns() {
        let c = Contract {
            name: "t".into(),
            layer: "staging".into(),
            source: None,
            grain: "one row per t".into(),
            primary_key: vec!["id".into()],
            partition_by: None,
            columns: vec![ColumnSpec {
                name: "id".into(),
                column_type: ColumnType::Utf8,
                nullable: true,
                path: None,
                parent_id: false,
                description: "id".into(),
                accepted_values: None,
            }],
        };
        assert!(c.validate("t.yml").unwrap_err().contains("nullable: false"));
    }
}
