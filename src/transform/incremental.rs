//! Dirty sets (models.md 5): which partitions of a mart a nightly run must recompute.
//!
//! A mart listed in [`DIRTY_QUERIES`] is rebuilt only for the partition values its dirty query
//! returns, evaluated over the new upstream models and the previous version (`prev_<model>`); the
//! partitions outside the set keep their objects. Everything else is recomputed in full, and
//! still writes only the partitions whose bytes changed. A run falls back to a full rebuild of a
//! mart when it has no previous version, or when the previous version was computed from other
//! seeds or other SQL (the fingerprint differs): dirty sets only track new source data.

use std::collections::BTreeSet;

use arrow::array::{Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use include_dir::{Dir, include_dir};
use sha2::{Digest, Sha256};

use super::model::{Body, Model};
use crate::seeds::Seed;

static DIRTY: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/transform/dirty");

/// Marts maintained by dirty partitions, and the file (under `src/transform/dirty/`) of the query
/// listing them; the orders marts share one.
pub const DIRTY_QUERIES: &[(&str, &str)] = &[
    ("fct_message_events", "fct_message_events.sql"),
    ("fct_orders", "orders.sql"),
    ("fct_order_lines", "orders.sql"),
    ("fct_refunds", "fct_refunds.sql"),
    ("fct_cohort_retention", "fct_cohort_retention.sql"),
    ("dim_rfm_cutpoints", "rfm.sql"),
    ("fct_rfm_snapshot", "rfm.sql"),
    ("fct_segment_matrix", "rfm.sql"),
    ("fct_rfm_transitions", "fct_rfm_transitions.sql"),
];

/// How much of the marts a transform recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Dirty partitions of the marts that have a dirty query; everything else in full.
    #[default]
    Incremental,
    /// Every partition of every model.
    Full,
}

/// The dirty query of `model`, if it has one.
pub fn dirty_query(model: &str) -> Option<&'static str> {
    let (_, file) = DIRTY_QUERIES.iter().find(|(m, _)| *m == model)?;
    DIRTY.get_file(file).and_then(|f| f.contents_utf8())
}

/// What a model's output depends on besides source data: its SQL (or the crate version for a Rust
/// model), its dirty query, the seeds and the package version.
pub fn fingerprint(model: &Model, seeds: &[Seed]) -> String {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    match &model.body {
        Body::Sql(sql) => h.update(sql),
        Body::Rust(_) => h.update(format!("rust:{}", model.name)),
    }
    h.update(dirty_query(&model.name).unwrap_or_default());
    for seed in seeds {
        h.update(seed.name);
        for row in std::iter::once(&seed.header).chain(&seed.rows) {
            for cell in row {
                h.update(cell);
                h.update([0x1f]);
            }
            h.update([0x1e]);
        }
    }
    hex::encode(&h.finalize()[..12])
}

/// Runs a dirty query: the partition values it returns, as text (`None` for NULL).
pub async fn dirty_values(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<BTreeSet<Option<String>>> {
    let mut out = BTreeSet::new();
    for batch in ctx.sql(sql).await?.collect().await? {
        let text = cast(batch.column(0), &DataType::Utf8)?;
        let text = text.as_any().downcast_ref::<StringArray>().expect("cast to Utf8 gives a StringArray");
        for i in 0..text.len() {
            out.insert(text.is_valid(i).then(|| text.value(i).to_string()));
        }
    }
    Ok(out)
}

/// The partition value an object path names (`.../<column>=<value>/part-...`).
pub fn partition_of(path: &str, column: &str) -> Option<Option<String>> {
    let marker = format!("/{column}=");
    let start = path.find(&marker)? + marker.len();
    let value = path[start..].split('/').next()?;
    Some((value != super::partitioned::NULL_PARTITION).then(|| value.to_string()))
}
