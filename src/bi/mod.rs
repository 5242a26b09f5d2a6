//! BI wiring generated from `schemas/`: SQL DDL for the engines analysts query the marts with
//! ([`ddl`]), LookML ([`lookml`]) and the column reference finance reads ([`docs`]).
//!
//! Everything here is derived from the contracts, so a column added to a mart reaches every BI
//! surface by regenerating, and the committed copies (`deploy/looker/`, `docs/marts.md`) are
//! checked against a fresh generation by the tests.

pub mod cli;
pub mod ddl;
pub mod docs;
pub mod lookml;
pub mod types;

use crate::contract::{self, Contract};
use crate::error::Result;

/// Marts finance reads first: documentation and DDL list them before the rest.
const FIRST: [&str; 2] = ["fct_flow_contribution", "fct_campaign_contribution"];

/// The tables BI tools see: every contract of layer `marts`, plus the `restricted` ones (plain
/// emails and phones) only when asked, because a BI connection should not reach personal data by
/// default. The contribution tables come first, the rest by name.
pub fn tables(include_restricted: bool) -> Result<Vec<Contract>> {
    let mut out: Vec<Contract> = contract::all()?
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| c.layer == "marts" || (include_restricted && c.layer == "restricted"))
        .collect();
    out.sort_by(|a, b| rank(&a.name).cmp(&rank(&b.name)).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

fn rank(name: &str) -> usize {
    FIRST.iter().position(|f| *f == name).unwrap_or(FIRST.len())
}

/// The storage folder of a table, relative to the job's storage root (`marts/<table>`,
/// `restricted/<table>`).
pub fn table_dir(c: &Contract) -> String {
    crate::transform::publish::model_dir(&c.layer, &c.name)
}

/// `text` as a single-quoted SQL string literal.
pub fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
