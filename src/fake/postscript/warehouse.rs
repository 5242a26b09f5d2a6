//! A stand-in for Postscript's Data Warehouse Push (apis.md 4.4 B, 6.4): the simulated brand's
//! [`SmsProgram`] on Postscript written as the tables Postscript pushes, one folder per table
//! under a root folder, so the reader can be tested against local files (or the same files
//! uploaded to S3) without a Snowflake account.
//!
//! Layout (a contract with the reader):
//!
//! ```text
//! {root}/{table}/data_{YYYYMM}_0_0.{parquet|csv}     one file per month of the rows' _updated_at
//! {root}/fct_attribution/data_corrections_0_0.{ext}  late corrections: attribution rows again,
//!                                                     a changed amount_in_cents, a later _updated_at
//! ```
//!
//! Tables: `fct_messages`, `dim_messages`, `fct_attribution`, `fct_clicks`, `subscribers` (columns
//! in [`tables`]). A table without rows still gets one empty file (for the window's first month),
//! so every folder exists. Parquet: Arrow types as listed, timestamps `Timestamp(µs, None)`
//! holding naive UTC. CSV: header row, RFC 4180 quoting, NULL as an empty cell, timestamps
//! `YYYY-MM-DD HH:MM:SS.ffffff` (naive UTC), booleans `true`/`false`.
//!
//! The reader must keep the latest `_updated_at` per key: [`WarehouseTruth`] counts distinct keys
//! and sums corrected amounts.

mod files;
mod tables;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};

use files::Val;
pub use files::{Column, Kind};
use tables::Row;

use crate::simulate::sms_program::{SmsProgram, SmsSubscriberInput};
use crate::simulate::store::SimStore;

/// File format of the push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarehouseFormat {
    Parquet,
    Csv,
}

impl WarehouseFormat {
    pub fn extension(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
        }
    }
}

/// The tables in the order they are written, with their columns.
pub const TABLES: &[(&str, &[Column])] = &[
    ("fct_messages", tables::FCT_MESSAGES),
    ("dim_messages", tables::DIM_MESSAGES),
    ("fct_attribution", tables::FCT_ATTRIBUTION),
    ("fct_clicks", tables::FCT_CLICKS),
    ("subscribers", tables::SUBSCRIBERS),
];

/// What the push holds, after corrections (latest `_updated_at` per key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarehouseTruth {
    /// Distinct keys per table.
    pub rows: BTreeMap<String, u64>,
    /// Rows written per table, corrections included.
    pub rows_written: BTreeMap<String, u64>,
    /// Every file written, relative to the root with `/` separators.
    pub files: Vec<String>,
    /// Outbound sends, failed ones included.
    pub outbound_sends: u64,
    pub inbound_messages: u64,
    pub failed_sends: u64,
    pub mms_sends: u64,
    /// Segments of the outbound SMS (not MMS) sends, as carriers bill their bodies.
    pub sms_segments: u64,
    pub clicks: u64,
    pub attributions: u64,
    /// Attribution rows repeated in the corrections file.
    pub corrections: u64,
    /// Sum of `amount_in_cents` with each row's latest version.
    pub attribution_amount_cents: i64,
    /// The same as first pushed (the program's platform-reported revenue).
    pub attribution_amount_cents_uncorrected: i64,
}

/// Postscript's subscribers as the program's input: the fake API's subscribers
/// ([`super::subscribers`], same selection rules) without the pending ones.
pub fn postscript_subscribers(store: &SimStore) -> io::Result<Vec<SmsSubscriberInput>> {
    Ok(super::subscribers(store)?
        .into_iter()
        .filter(|s| !s.pending)
        .map(|s| SmsSubscriberInput {
            subscriber_id: s.id,
            customer_id: s.customer_id,
            phone: s.phone,
            email: s.email,
            shopify_customer_id: s.shopify_customer_id,
            opted_in_at: s.created_at,
        })
        .collect())
}

/// Writes the program's tables under `root` (created if missing) and returns their truth.
pub fn write(program: &SmsProgram, root: &Path, format: WarehouseFormat) -> io::Result<WarehouseTruth> {
    let msgs = tables::messages(program);
    let (attribution, corrections) = tables::fct_attribution(program);
    let mut truth = WarehouseTruth {
        outbound_sends: msgs.iter().filter(|m| !m.inbound).count() as u64,
        inbound_messages: msgs.iter().filter(|m| m.inbound).count() as u64,
        failed_sends: program.messages.iter().filter(|m| m.failed).count() as u64,
        mms_sends: msgs.iter().filter(|m| tables::is_mms(m)).count() as u64,
        sms_segments: msgs
            .iter()
            .filter(|m| !m.inbound && !tables::is_mms(m))
            .map(|m| u64::from(crate::simulate::sms_program::segments(&m.text).1))
            .sum(),
        clicks: program.clicks.len() as u64,
        attributions: attribution.len() as u64,
        corrections: corrections.len() as u64,
        attribution_amount_cents_uncorrected: program.conversions.iter().map(|c| c.revenue_minor).sum(),
        ..Default::default()
    };
    truth.attribution_amount_cents = latest_amounts(&attribution, &corrections);
    let first_month = program.window.0;
    let mut by_table: Vec<(&str, Vec<Row>)> = vec![
        ("fct_messages", tables::fct_messages(&msgs)),
        ("dim_messages", tables::dim_messages(&msgs)),
        ("fct_attribution", attribution),
        ("fct_clicks", tables::fct_clicks(program)),
        ("subscribers", tables::subscribers(program)),
    ];
    for (table, rows) in &mut by_table {
        let columns = TABLES.iter().find(|t| t.0 == *table).expect("listed table").1;
        let distinct: std::collections::HashSet<&Val> = rows.iter().map(|r| &r.cells[0]).collect();
        truth.rows.insert(table.to_string(), distinct.len() as u64);
        truth.rows_written.insert(table.to_string(), rows.len() as u64);
        rows.sort_by_key(|r| r.at);
        let mut months: BTreeMap<String, Vec<Vec<Val>>> = BTreeMap::new();
        for r in rows.drain(..) {
            months.entry(month(r.at)).or_default().push(r.cells);
        }
        if months.is_empty() {
            months.insert(month(first_month), Vec::new());
        }
        for (m, cells) in months {
            let name = format!("{table}/data_{m}_0_0.{}", format.extension());
            files::write(&root.join(&name), columns, &cells, format)?;
            truth.files.push(name);
        }
    }
    let name = format!("fct_attribution/data_corrections_0_0.{}", format.extension());
    let cells: Vec<Vec<Val>> = corrections.into_iter().map(|r| r.cells).collect();
    *truth.rows_written.get_mut("fct_attribution").expect("written above") += cells.len() as u64;
    files::write(&root.join(&name), tables::FCT_ATTRIBUTION, &cells, format)?;
    truth.files.push(name);
    Ok(truth)
}

fn month(at: DateTime<Utc>) -> String {
    at.format("%Y%m").to_string()
}

/// Sum of `amount_in_cents` (column 3) over the latest version of each attribution id.
fn latest_amounts(first: &[Row], corrections: &[Row]) -> i64 {
    let mut latest: BTreeMap<String, (DateTime<Utc>, i64)> = BTreeMap::new();
    for r in first.iter().chain(corrections) {
        let (Val::S(Some(id)), Val::I(Some(amount))) = (&r.cells[0], &r.cells[3]) else { continue };
        let e = latest.entry(id.clone()).or_insert((r.at, *amount));
        if r.at >= e.0 {
            *e = (r.at, *amount);
        }
    }
    latest.values().map(|v| v.1).sum()
}
