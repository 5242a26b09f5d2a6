//! Writes both formats for a generated brand and reads them back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use chrono::NaiveDate;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;
use crate::simulate::sms_program::{self, SmsPlatform};
use crate::simulate::{SimConfig, generate};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Rows of one table's files: (is a correction file, key, `_updated_at` text, row as text).
fn read_table(root: &Path, table: &str, format: WarehouseFormat) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(root.join(table)).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let columns = TABLES.iter().find(|t| t.0 == table).unwrap().1;
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with("data_") && name.ends_with(&format!("_0_0.{}", format.extension())), "{name}");
        match format {
            WarehouseFormat::Csv => {
                let mut r = csv::Reader::from_path(&path).unwrap();
                let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
                assert_eq!(header, columns.iter().map(|c| c.0).collect::<Vec<_>>());
                for rec in r.records() {
                    out.push((name.clone(), rec.unwrap().iter().map(String::from).collect()));
                }
            }
            WarehouseFormat::Parquet => {
                let reader =
                    ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap().build().unwrap();
                for batch in reader {
                    let batch: RecordBatch = batch.unwrap();
                    assert_eq!(batch.schema().as_ref(), &files::schema(columns), "{name}");
                    for i in 0..batch.num_rows() {
                        let row = columns
                            .iter()
                            .enumerate()
                            .map(|(c, (_, kind, _))| {
                                let a = batch.column(c);
                                if a.is_null(i) {
                                    return String::new();
                                }
                                match kind {
                                    Kind::Str => a.as_string::<i32>().value(i).to_string(),
                                    Kind::I64 => a.as_primitive::<Int64Type>().value(i).to_string(),
                                    Kind::Bool => a.as_boolean().value(i).to_string(),
                                    Kind::Ts => a.as_primitive::<TimestampMicrosecondType>().value(i).to_string(),
                                }
                            })
                            .collect();
                        out.push((name.clone(), row));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn both_formats_hold_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let cfg = SimConfig {
        seed: 5,
        scale: 1,
        start_date: date(2025, 3, 1),
        end_date: date(2025, 12, 31),
        causal: Default::default(),
    };
    generate(&cfg, &sim).unwrap();
    let store = SimStore::open(&sim).unwrap();
    let subs = postscript_subscribers(&store).unwrap();
    assert!(subs.iter().all(|s| !s.subscriber_id.is_empty()));
    let program = sms_program::generate(&store, SmsPlatform::Postscript, &subs).unwrap();
    let pt = program.truth();
    assert!(pt.sends > 300 && pt.conversions > 0, "{pt:?}");

    let mut truths = Vec::new();
    for format in [WarehouseFormat::Parquet, WarehouseFormat::Csv] {
        let root = dir.path().join(format.extension());
        let truth = write(&program, &root, format).unwrap();
        assert_eq!(truth.outbound_sends, pt.sends);
        assert_eq!(truth.failed_sends, pt.failed_sends);
        assert_eq!(truth.clicks, pt.clicks);
        assert_eq!(truth.attributions, pt.conversions);
        assert_eq!(truth.attribution_amount_cents_uncorrected, pt.conversion_revenue_minor);
        assert!(truth.corrections >= 1 && truth.attribution_amount_cents < pt.conversion_revenue_minor);
        assert!(truth.inbound_messages > 0 && truth.mms_sends > 0);
        assert!(truth.files.contains(&format!("fct_attribution/data_corrections_0_0.{}", format.extension())));
        assert!(truth.files.contains(&format!("fct_messages/data_202511_0_0.{}", format.extension())));

        for (table, columns) in TABLES {
            let rows = read_table(&root, table, format);
            assert_eq!(rows.len() as u64, truth.rows_written[*table], "{table}");
            let keys: HashSet<&String> = rows.iter().map(|r| &r.1[0]).collect();
            assert_eq!(keys.len() as u64, truth.rows[*table], "{table}");
            assert_eq!(rows[0].1.len(), columns.len());
        }
        // Corrected amounts: the latest `_updated_at` per attribution id.
        let mut latest: HashMap<String, (String, i64)> = HashMap::new();
        for (_, r) in read_table(&root, "fct_attribution", format) {
            let updated = if format == WarehouseFormat::Csv {
                r[11].clone()
            } else {
                format!("{:020}", r[11].parse::<i64>().unwrap())
            };
            let e = latest.entry(r[0].clone()).or_insert((updated.clone(), r[3].parse().unwrap()));
            if updated >= e.0 {
                *e = (updated, r[3].parse().unwrap());
            }
        }
        assert_eq!(latest.values().map(|v| v.1).sum::<i64>(), truth.attribution_amount_cents);
        // Outbound, failed and MMS counts from the rows themselves.
        let dim = read_table(&root, "dim_messages", format);
        let count = |f: &dyn Fn(&Vec<String>) -> bool| dim.iter().filter(|r| f(&r.1)).count() as u64;
        assert_eq!(count(&|r| r[2] == "outbound"), pt.sends);
        assert_eq!(count(&|r| r[4] == "true"), pt.failed_sends);
        assert_eq!(count(&|r| r[4] == "true" && r[5].is_empty()), 0);
        assert_eq!(count(&|r| r[3] == "MMS"), truth.mms_sends);
        assert_eq!(count(&|r| r[3] == "MMS" && r[7].is_empty()), 0);
        assert_eq!(count(&|r| r[8] == "inbound" && !r[9].is_empty()), 0);
        truths.push(truth);
    }
    // CSV conventions.
    let csv_rows = std::fs::read_to_string(
        dir.path()
            .join("csv/subscribers")
            .join(&truths[1].files.iter().find(|f| f.starts_with("subscribers/")).unwrap()["subscribers/".len()..]),
    )
    .unwrap();
    let ts = regex::Regex::new(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}").unwrap();
    assert!(ts.is_match(&csv_rows));
    let mut a = truths[0].clone();
    let mut b = truths[1].clone();
    a.files.clear();
    b.files.clear();
    assert_eq!(a, b, "both formats hold the same data");
    let by_ext: BTreeMap<_, _> = truths[0].files.iter().map(|f| (f.replace(".parquet", ""), ())).collect();
    assert_eq!(by_ext.len(), truths[1].files.len());
}
