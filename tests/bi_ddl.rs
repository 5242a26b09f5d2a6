//! The BI DDL and LookML against real marts: the demo brand (seed 42, scale 1) runs the whole
//! pipeline once, then
//! - DuckDB (the `duckdb` Python package, `$LCE_PYTHON`, which scripts/test.sh installs) applies
//!   `ddl --dialect duckdb --include-restricted`: every mart's (and the restricted table's) view reads, has the rows DataFusion reads and the
//!   contract's type for every column;
//! - the `lkml` package parses the generated LookML, and every view names every contract column;
//! - the other dialects have one CREATE per mart and only their own type names; the Postgres DDL
//!   also runs against `$LCE_POSTGRES_URL`, else against a PostgreSQL server started here.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use lifecycle_etl::bi::types::{Dialect, sql_type};
use lifecycle_etl::bi::{ddl, lookml, tables};
use lifecycle_etl::contract::Contract;
use serde_json::Value;

fn python() -> String {
    std::env::var("LCE_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs a helper script of tests/bi/ and parses its JSON output.
fn run_script(script: &str, arg: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bi").join(script);
    let out = Command::new(python())
        .arg(&script)
        .arg(arg)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} ({e}); scripts/test.sh sets LCE_PYTHON", python()));
    assert!(
        out.status.success(),
        "{} failed (scripts/test.sh installs duckdb and lkml into LCE_PYTHON's venv):\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mart_reads_in_duckdb_with_contract_types_and_lookml_parses() {
    let started = std::time::Instant::now();
    let cfg = lifecycle_etl::demo::sim_config(42, 1);
    let (_truth, storage, dir) = common::run_brand(&cfg).await;
    println!("pipeline: {:?}", started.elapsed());
    // DuckDB over the local storage folder, the restricted table included (`--include-restricted`).
    let with_restricted = tables(true).unwrap();
    assert!(with_restricted.iter().any(|c| c.layer == "restricted"));
    let located = ddl::locate(&storage, with_restricted.clone()).await.unwrap();
    let sql = ddl::render(Dialect::Duckdb, "marts", &located);
    let sql_file = dir.path().join("marts.duckdb.sql");
    std::fs::write(&sql_file, &sql).unwrap();
    let read = run_script("read_marts.py", &sql_file);
    for c in &with_restricted {
        let view = &read[&c.name];
        assert!(view.is_object(), "no DuckDB view {}", c.name);
        let datafusion = common::scalar(&storage, &format!("select count(*) from {}", c.name)).await;
        assert_eq!(view["rows"].as_i64().unwrap(), datafusion, "{}: DuckDB rows vs DataFusion", c.name);
        let got: Vec<(String, String)> = view["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t[0].as_str().unwrap().to_string(), t[1].as_str().unwrap().to_string()))
            .collect();
        let want: Vec<(String, String)> = c
            .columns
            .iter()
            .map(|col| (col.name.clone(), sql_type(Dialect::Duckdb, col.column_type).to_string()))
            .collect();
        assert_eq!(got, want, "{}: DuckDB column types vs the contract", c.name);
        assert_eq!(view["comments"].as_u64().unwrap() as usize, c.columns.len(), "{}: column comments", c.name);
    }
    let marts = tables(false).unwrap();
    let nonempty = marts.iter().filter(|c| read[&c.name]["rows"].as_i64().unwrap() > 0).count();
    assert!(nonempty * 2 > marts.len(), "most marts should have rows: {nonempty} of {}", marts.len());

    // LookML.
    let looker = dir.path().join("looker");
    std::fs::create_dir_all(&looker).unwrap();
    for (name, text) in lookml::generate(lookml::DEFAULT_SCHEMA, lookml::DEFAULT_CONNECTION).unwrap() {
        std::fs::write(looker.join(name), text).unwrap();
    }
    let parsed = run_script("parse_lookml.py", &looker);
    for c in &marts {
        let fields: Vec<&str> = parsed["views"][&c.name]
            .as_array()
            .unwrap_or_else(|| panic!("no LookML view {}", c.name))
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        for col in &c.columns {
            assert!(fields.contains(&col.name.as_str()), "view {} lacks {}", c.name, col.name);
        }
    }
    let joins = &parsed["explores"]["fct_flow_contribution"];
    assert!(joins.as_array().unwrap().iter().any(|j| j == "dim_flows"), "{joins}");
    for measure in ["total_incremental_revenue", "total_incremental_revenue_ci_low", "total_channel_cost"] {
        assert!(parsed["views"]["fct_flow_contribution"].as_array().unwrap().iter().any(|f| f == measure), "{measure}");
    }
    println!("total: {:?}", started.elapsed());
}

/// Every word a column type is spelled with in `dialect`.
fn type_names(dialect: Dialect) -> Vec<&'static str> {
    use lifecycle_etl::contract::ColumnType::*;
    [Utf8, Int64, Int32, Float64, Boolean, Date32, Timestamp, Decimal, ListUtf8]
        .into_iter()
        .map(|t| sql_type(dialect, t))
        .collect()
}

/// The (column, type) lines of each CREATE statement of `sql`, by table name.
fn column_types(sql: &str, create: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for stmt in sql.split(create).skip(1) {
        let name = stmt.split([' ', '(']).next().unwrap().rsplit('.').next().unwrap();
        let name = name.trim_matches(|c| c == '"' || c == '`').to_string();
        let body = stmt.split_once("(\n").unwrap().1;
        let body = body.split("\n)").next().unwrap();
        let lines = body.lines().filter(|l| !l.trim_start().starts_with("PRIMARY KEY")).map(|l| l.trim().to_string());
        out.insert(name, lines.collect());
    }
    out
}

fn fake_located(marts: &[Contract]) -> Vec<ddl::Located> {
    marts
        .iter()
        .map(|c| {
            let folder = format!("s3://bucket/prefix/marts/{}", c.name);
            let files = vec![format!("{folder}/version=r1/part-00000.parquet")];
            ddl::Located { contract: c.clone(), folder, files }
        })
        .collect()
}

#[test]
fn other_dialects_have_one_statement_per_mart_with_their_types() {
    let marts = tables(false).unwrap();
    let located = fake_located(&marts);
    for (dialect, create) in [
        (Dialect::Trino, "CREATE TABLE "),
        (Dialect::Athena, "CREATE EXTERNAL TABLE "),
        (Dialect::Bigquery, "CREATE OR REPLACE EXTERNAL TABLE "),
        (Dialect::Postgres, "CREATE TABLE IF NOT EXISTS "),
    ] {
        let sql = ddl::render(dialect, "marts", &located);
        let tables = column_types(&sql, create);
        assert_eq!(tables.len(), marts.len(), "{dialect:?}: one statement per mart");
        let names = type_names(dialect);
        for c in &marts {
            let lines = &tables[&c.name];
            // Partition columns move to PARTITIONED BY / WITH PARTITION COLUMNS in Athena and BigQuery.
            let moved = matches!(dialect, Dialect::Athena | Dialect::Bigquery) && c.partition_by.is_some();
            assert_eq!(lines.len(), c.columns.len() - moved as usize, "{dialect:?} {}: {lines:?}", c.name);
            for line in lines {
                let ty = line.split_once(' ').unwrap().1;
                assert!(names.iter().any(|n| ty.starts_with(n)), "{dialect:?} {}: {line}", c.name);
            }
        }
    }
}

#[test]
fn postgres_ddl_runs_against_a_real_server() {
    // A server given by URL, else one started here (skipped locally without PostgreSQL, a
    // failure under CI=true).
    let server = match std::env::var("LCE_POSTGRES_URL") {
        Ok(_) => None,
        Err(_) => match common::pg::Pg::start_or_skip() {
            Some(pg) => Some(pg),
            None => return,
        },
    };
    let url = match &server {
        Some(pg) => pg.url(),
        None => std::env::var("LCE_POSTGRES_URL").unwrap(),
    };
    // psql from the server's own bin folder when there is one (Debian keeps it beside initdb).
    let psql = common::pg::pg_bin().map(|b| b.join("psql")).filter(|p| p.exists()).unwrap_or_else(|| "psql".into());
    let schema = format!("lce_ddl_test_{}", std::process::id());
    let marts = tables(true).unwrap();
    let mut sql = ddl::render(Dialect::Postgres, &schema, &ddl::unlocated(marts.clone()));
    // Twice: the DDL is re-run after every transform.
    sql = format!(
        "BEGIN;\n{sql}{sql}SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}';\nROLLBACK;\n"
    );
    let out = Command::new(psql)
        .args([url.as_str(), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(sql.as_bytes())?;
            child.wait_with_output()
        })
        .expect("psql runs (Debian's postgresql-client)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let count: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(count, marts.len());
}
