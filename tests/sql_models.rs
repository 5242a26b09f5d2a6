//! SQL models tested as text files: `tests/sql/<case>.txt` gives a model's input tables and the
//! rows it must return, as `|`-separated text a reviewer can read in a diff.
//!
//! ```text
//! -- model: fct_rfm_transitions
//! -- Free text: what the case shows.
//! == input fct_rfm_snapshot
//! person_key | snapshot_date | rfm_tier | tier_rank
//! a          | 2024-01-31    | New      | 4
//! == expected
//! period_grain | from_snapshot_date | ...
//! month        | 2024-01-31         | ...
//! ```
//!
//! An input names a model, a raw stream (`raw_<source>__<stream>`), a seed or `prev_<model>`; its
//! columns are typed by that table's contract (seeds are text), columns left out are NULL, `NULL`
//! is NULL, and every table the case does not give is empty (seeds: the shipped defaults). The
//! expected rows are compared sorted. `LCE_BLESS=1 cargo test --test sql_models` rewrites every
//! expected block from what the models return now: review the diff before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use lifecycle_etl::contract::{self, Contract};
use lifecycle_etl::transform::model::{Body, Model};

struct Case {
    model: String,
    inputs: Vec<(String, Vec<String>)>,
    expected: Vec<String>,
}

fn parse(text: &str) -> Case {
    let mut case = Case { model: String::new(), inputs: Vec::new(), expected: Vec::new() };
    let mut section: Option<Option<String>> = None;
    for line in text.lines() {
        if let Some(table) = line.strip_prefix("== input ") {
            case.inputs.push((table.trim().to_string(), Vec::new()));
            section = Some(Some(table.trim().to_string()));
        } else if line.trim() == "== expected" {
            section = Some(None);
        } else {
            match &section {
                None => {
                    if let Some(m) = line.strip_prefix("-- model:") {
                        case.model = m.trim().to_string();
                    }
                }
                Some(Some(_)) if !line.trim().is_empty() => case.inputs.last_mut().unwrap().1.push(line.to_string()),
                Some(None) if !line.trim().is_empty() => case.expected.push(line.to_string()),
                _ => {}
            }
        }
    }
    assert!(!case.model.is_empty(), "no `-- model:` line");
    case
}

fn cells(line: &str) -> Vec<String> {
    line.split('|').map(|c| c.trim().to_string()).collect()
}

/// Every table a model may read, with its schema: raw streams, models and their `prev_` copies.
fn known_tables() -> BTreeMap<String, SchemaRef> {
    let mut out = BTreeMap::new();
    for (_, c) in contract::all().unwrap() {
        if c.layer == "raw" {
            out.insert(format!("raw_{}__{}", c.source.clone().unwrap(), c.name), c.landed_schema());
        } else {
            out.insert(c.name.clone(), c.arrow_schema());
            out.insert(format!("prev_{}", c.name), c.arrow_schema());
        }
    }
    out
}

fn seed_schema(header: &[String]) -> SchemaRef {
    Arc::new(Schema::new(header.iter().map(|h| Field::new(h, DataType::Utf8, true)).collect::<Vec<_>>()))
}

/// One input block as a batch of `schema` (columns it leaves out are NULL).
fn batch(table: &str, schema: &SchemaRef, lines: &[String]) -> RecordBatch {
    let header = cells(&lines[0]);
    let rows: Vec<Vec<String>> = lines[1..].iter().map(|l| cells(l)).collect();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            r.len(),
            header.len(),
            "input {table}, row {}: {} cells for {} columns",
            i + 1,
            r.len(),
            header.len()
        );
    }
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match header.iter().position(|h| h == f.name()) {
            None => new_null_array(f.data_type(), rows.len()),
            Some(i) => {
                let text: StringArray = rows.iter().map(|r| (r[i] != "NULL").then_some(r[i].as_str())).collect();
                cast(&text, f.data_type()).unwrap_or_else(|e| panic!("input {table}, column {}: {e}", f.name()))
            }
        })
        .collect();
    for h in &header {
        assert!(schema.field_with_name(h).is_ok(), "input {table}: no column {h} in its contract");
    }
    // Nullability is the contract's business (checked on outputs), not the fixture's.
    let loose = Arc::new(Schema::new(
        schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(loose, columns).unwrap()
}

fn register(ctx: &SessionContext, name: &str, batch: RecordBatch) {
    let _ = ctx.deregister_table(name);
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
    ctx.register_table(name, Arc::new(table)).unwrap();
}

fn format(batches: &[RecordBatch], schema: &Schema) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let f: Vec<_> = b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
        for r in 0..b.num_rows() {
            rows.push(f.iter().map(|f| f.value(r).to_string()).collect::<Vec<_>>());
        }
    }
    rows.sort();
    let header: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut widths: Vec<usize> = header.iter().map(String::len).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|r| {
            let padded: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            padded.join(" | ").trim_end().to_string()
        })
        .collect()
}

async fn run(case: &Case, models: &[Model], tables: &BTreeMap<String, SchemaRef>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let cfg: lifecycle_etl::config::StorageConfig =
        toml::from_str(&format!("url = \"file://{}\"", dir.path().display())).unwrap();
    let storage = lifecycle_etl::storage::Storage::open(&cfg, &Default::default()).unwrap();
    let ctx = lifecycle_etl::transform::session(&storage).unwrap();
    for (name, schema) in tables {
        register(&ctx, name, RecordBatch::new_empty(schema.clone()));
    }
    lifecycle_etl::seeds::register(&ctx, &[]).unwrap();
    let seeds: Vec<&str> = lifecycle_etl::seeds::SEEDS.iter().map(|(n, _)| *n).collect();
    for (table, lines) in &case.inputs {
        assert!(!lines.is_empty(), "input {table} has no header line");
        let schema = if seeds.contains(&table.as_str()) {
            seed_schema(&cells(&lines[0]))
        } else {
            tables.get(table).unwrap_or_else(|| panic!("input {table}: no such model, raw stream or seed")).clone()
        };
        register(&ctx, table, batch(table, &schema, lines));
    }
    let model = models.iter().find(|m| m.name == case.model).unwrap_or_else(|| panic!("no model {}", case.model));
    let df = match &model.body {
        Body::Sql(sql) => ctx.sql(sql).await,
        Body::Rust(build) => build(&ctx).await,
    }
    .unwrap_or_else(|e| panic!("model {}: {e}", case.model));
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.unwrap_or_else(|e| panic!("model {}: {e}", case.model));
    let contract: Contract = contract::model(&model.layer, &model.name).unwrap();
    assert_eq!(schema.fields().len(), contract.columns.len(), "{}: columns against its contract", case.model);
    format(&batches, &schema)
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_models_return_the_rows_their_text_fixtures_expect() {
    let bless = std::env::var("LCE_BLESS").is_ok_and(|v| v == "1");
    let models = lifecycle_etl::transform::all_models().unwrap();
    let tables = known_tables();
    let files = case_files();
    assert!(files.len() >= 4, "the text fixtures are there: {files:?}");
    let mut failures = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let case = parse(&text);
        let got = run(&case, &models, &tables).await;
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if bless {
            let keep = text.split("\n== expected").next().unwrap();
            std::fs::write(&path, format!("{keep}\n== expected\n{}\n", got.join("\n"))).unwrap();
            continue;
        }
        let want: Vec<String> = {
            let mut rows: Vec<Vec<String>> = case.expected.iter().map(|l| cells(l)).collect();
            if rows.len() > 1 {
                rows[1..].sort();
            }
            rows.into_iter().map(|r| r.join("|")).collect()
        };
        let got_cells: Vec<String> = got.iter().map(|l| cells(l).join("|")).collect();
        if want != got_cells {
            failures.push(format!(
                "{name} ({}):\n  expected:\n    {}\n  got:\n    {}",
                case.model,
                case.expected.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ (LCE_BLESS=1 rewrites them):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
