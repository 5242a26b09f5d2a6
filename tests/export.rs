//! `export`: the marts of a simulated brand loaded into a real PostgreSQL server (started here from
//! Debian's package, in a temporary folder) and written as CSV files.
//!
//! Without PostgreSQL the test skips with a printed reason, except under `CI=true`, where it fails:
//! scripts/test.sh installs the package.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use lifecycle_etl::contract::{ColumnType, Contract};
use lifecycle_etl::export;
use lifecycle_etl::simulate::SimConfig;

use common::pg::{PASSWORD, Pg};
const URL_ENV: &str = "LCE_TEST_EXPORT_PG_URL";

/// The PostgreSQL spelling (`format_type`) each contract type must arrive as.
fn expected_pg_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Utf8 => "text",
        ColumnType::Int32 => "integer",
        ColumnType::Int64 => "bigint",
        ColumnType::Float64 => "double precision",
        ColumnType::Boolean => "boolean",
        ColumnType::Date32 => "date",
        ColumnType::Timestamp => "timestamp with time zone",
        ColumnType::Decimal => "numeric(18,4)",
        ColumnType::ListUtf8 => "text[]",
    }
}

/// A decimal's text in units of 0.0001 (both engines print exact decimals; `NULL` is None).
fn units(text: &str) -> Option<i128> {
    if text == "NULL" || text.is_empty() {
        return None;
    }
    let (neg, digits) = text.strip_prefix('-').map_or((false, text), |d| (true, d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(frac.len() <= 4, "more than 4 places: {text}");
    let v = format!("{int}{frac:0<4}").parse::<i128>().unwrap();
    Some(if neg { -v } else { v })
}

async fn pg_count(client: &tokio_postgres::Client, table: &str) -> i64 {
    client.query_one(&format!("select count(*) from marts.{table}"), &[]).await.unwrap().get(0)
}

async fn pg_oid(client: &tokio_postgres::Client, table: &str) -> u32 {
    client.query_one(&format!("select 'marts.{table}'::regclass::oid"), &[]).await.unwrap().get(0)
}

async fn pg_text(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

async fn df_count(ctx: &datafusion::prelude::SessionContext, table: &str) -> i64 {
    common::query(ctx, &format!("select count(*) from {table}")).await[0][0].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marts_load_into_postgres_and_csv() {
    let Some(pg) = Pg::start_or_skip() else { return };
    let started = std::time::Instant::now();
    let cfg = SimConfig {
        seed: 7,
        scale: 1,
        start_date: common::date(2026, 8, 1),
        end_date: common::date(2026, 10, 31),
        causal: Default::default(),
    };
    let (_truth, storage, dir) = common::run_brand(&cfg).await;
    println!("pipeline: {:?}", started.elapsed());
    let tables = export::tables(false).unwrap();
    let ctx = export::session(&storage, &tables).await.unwrap();
    let client = pg.client().await;

    // First load, through the library.
    let t = std::time::Instant::now();
    let done = export::postgres::export(&storage, &tables, &pg.url(), "marts").await.unwrap();
    println!("first export: {:?}", t.elapsed());
    assert_eq!(done.len(), tables.len());
    let mut counts = BTreeMap::new();
    for table in &tables {
        let n = df_count(&ctx, &table.name).await;
        assert_eq!(pg_count(&client, &table.name).await, n, "{}: PostgreSQL rows = Parquet rows", table.name);
        assert_columns(&client, table).await;
        counts.insert(table.name.clone(), n);
    }
    assert!(counts["fct_orders"] > 0 && counts["fct_flow_contribution"] > 0, "{counts:?}");
    assert_sums(&client, &ctx, &tables).await;

    // The Metabase questions (deploy/metabase/questions) run on the export and answer something.
    let questions = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/metabase/questions");
    let mut files: Vec<_> = std::fs::read_dir(&questions).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        let sql = std::fs::read_to_string(&file).unwrap();
        let rows = client.query(sql.as_str(), &[]).await.unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        // The small test brand is below the anomaly detector's volume gates: no anomaly to list.
        let expect_rows = !file.to_string_lossy().contains("anomalies") || counts["fct_anomalies"] > 0;
        assert_eq!(!rows.is_empty(), expect_rows, "{} rows on the test brand", file.display());
    }
    assert_eq!(
        pg_text(&client, "select obj_description('marts.fct_orders'::regclass, 'pg_class')").await.as_deref(),
        Some(lifecycle_etl::contract::model("marts", "fct_orders").unwrap().grain.as_str()),
        "the contract's grain is the table comment"
    );
    assert_eq!(
        pg_text(&client, "select to_regclass('marts.dim_customer_contact')::text").await,
        None,
        "personal data only with the flag"
    );
    let oids_before = oids(&client, &tables).await;

    // Second load, through the binary with the URL from a variable: swaps every table, same rows.
    let job = dir.path().join("simbrand.toml").display().to_string();
    let args = ["export", "--job", &job, "--postgres-env", URL_ENV, "--schema", "marts"];
    let t = std::time::Instant::now();
    let out = common::run_binary(args.iter().map(|s| s.to_string()).collect(), vec![(URL_ENV.into(), pg.url())]).await;
    println!("second export (binary): {:?}", t.elapsed());
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD), "the password reached the output:\n{stderr}");
    assert!(stderr.contains("lce@127.0.0.1"), "the log names the server without the password:\n{stderr}");
    for table in &tables {
        assert_eq!(pg_count(&client, &table.name).await, counts[&table.name], "{} after the swap", table.name);
        assert_ne!(pg_oid(&client, &table.name).await, oids_before[&table.name], "{} was swapped", table.name);
    }
    assert_no_load_tables(&client).await;

    // A failing load leaves the previous table: an object in the load table's way, and a
    // reader's view that the swap's DROP would break.
    let oids_before = oids(&client, &tables).await;
    client
        .batch_execute(
            "create view marts.fct_refunds__load as select 1 as x;\
             create view public.orders_by_day as select order_date, count(*) from marts.fct_orders group by 1;",
        )
        .await
        .unwrap();
    let err = export::postgres::export(&storage, &tables, &pg.url(), "marts").await.unwrap_err().to_string();
    assert!(err.contains("export failed for 2 table(s)"), "{err}");
    assert!(err.contains("marts.fct_refunds:") && err.contains("marts.fct_orders:"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
    for table in &tables {
        let kept = pg_oid(&client, &table.name).await == oids_before[&table.name];
        assert_eq!(kept, ["fct_orders", "fct_refunds"].contains(&table.name.as_str()), "{}", table.name);
        assert_eq!(pg_count(&client, &table.name).await, counts[&table.name], "{} intact", table.name);
    }
    client.batch_execute("drop view marts.fct_refunds__load; drop view public.orders_by_day;").await.unwrap();
    assert_no_load_tables(&client).await;

    // The restricted table, on request only.
    let restricted: Vec<Contract> =
        export::tables(true).unwrap().into_iter().filter(|c| c.layer == "restricted").collect();
    let done = export::postgres::export(&storage, &restricted, &pg.url(), "marts").await.unwrap();
    let rctx = export::session(&storage, &restricted).await.unwrap();
    assert_eq!(pg_count(&client, "dim_customer_contact").await, df_count(&rctx, "dim_customer_contact").await);
    assert_eq!(done.len(), 1);

    // CSV.
    let csv_dir = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let done = export::csv::export(&storage, &tables, csv_dir.path()).await.unwrap();
    println!("csv export: {:?}", t.elapsed());
    assert_eq!(done.len(), tables.len());
    for table in &tables {
        let (header, rows) = read_csv(&csv_dir.path().join(format!("{}.csv", table.name)));
        assert_eq!(header, table.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(), "{}", table.name);
        assert_eq!(rows.len() as i64, counts[&table.name], "{}: CSV rows", table.name);
    }
    let leftovers: Vec<_> = std::fs::read_dir(csv_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.ends_with(".csv") || n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let (header, rows) = read_csv(&csv_dir.path().join("fct_orders.csv"));
    let col = header.iter().position(|h| h == "net_revenue").unwrap();
    let from_csv: i128 = rows.iter().map(|r| units(&r[col]).unwrap()).sum();
    let df = common::query(&ctx, "select cast(sum(net_revenue) as varchar) from fct_orders").await;
    assert_eq!(Some(from_csv), units(&df[0][0]), "net_revenue round-trips through the CSV");
    assert!(rows.iter().all(|r| r[col].split_once('.').is_some_and(|(_, f)| f.len() == 4)), "decimals as written");
    println!("total: {:?}", started.elapsed());
}

async fn oids(client: &tokio_postgres::Client, tables: &[Contract]) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for t in tables {
        out.insert(t.name.clone(), pg_oid(client, &t.name).await);
    }
    out
}

/// Column names, order, types and NOT NULL as the contract says; the primary key in place.
async fn assert_columns(client: &tokio_postgres::Client, table: &Contract) {
    let rows = client
        .query(
            "select attname::text, format_type(atttypid, atttypmod), attnotnull from pg_attribute \
             where attrelid = $1::text::regclass and attnum > 0 and not attisdropped order by attnum",
            &[&format!("marts.{}", table.name)],
        )
        .await
        .unwrap();
    let got: Vec<(String, String, bool)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let key = |c: &str| table.primary_key.iter().any(|k| k == c);
    let want: Vec<(String, String, bool)> = table
        .columns
        .iter()
        .map(|c| (c.name.clone(), expected_pg_type(c.column_type).to_string(), !c.nullable || key(&c.name)))
        .collect();
    assert_eq!(got, want, "{}: columns", table.name);
    let pk: Option<String> = client
        .query_opt(
            "select conname::text from pg_constraint where conrelid = $1::text::regclass and contype = 'p'",
            &[&format!("marts.{}", table.name)],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    let want_pk = (!table.primary_key.is_empty()).then(|| format!("{}_pkey", table.name));
    assert_eq!(pk, want_pk, "{}: primary key", table.name);
}

/// Every money (Decimal) column's sum in PostgreSQL equals DataFusion's over the Parquet, exactly,
/// in every mart. The small brand's three months leave most lift estimates short of evidence
/// (`incremental_revenue` NULL throughout), so only a few sums are required to be non-zero.
async fn assert_sums(client: &tokio_postgres::Client, ctx: &datafusion::prelude::SessionContext, tables: &[Contract]) {
    let required = [
        ("fct_orders", "net_revenue"),
        ("fct_orders", "gross_margin"),
        ("fct_flow_contribution", "last_click_revenue"),
    ];
    let mut compared = 0;
    for table in tables {
        for column in table.columns.iter().filter(|c| c.column_type == ColumnType::Decimal).map(|c| c.name.as_str()) {
            let pg = pg_text(client, &format!("select sum({column})::text from marts.{}", table.name)).await;
            let df = common::query(ctx, &format!("select cast(sum({column}) as varchar) from {}", table.name)).await;
            let (pg, df) = (pg.as_deref().and_then(units), units(&df[0][0]));
            assert_eq!(pg, df, "{}.{column}: PostgreSQL sum = DataFusion sum", table.name);
            if required.contains(&(table.name.as_str(), column)) {
                assert!(df.is_some_and(|v| v != 0), "{}.{column}: a sum to compare", table.name);
                compared += 1;
            }
        }
    }
    assert_eq!(compared, required.len());
}

async fn assert_no_load_tables(client: &tokio_postgres::Client) {
    let left: Vec<String> = client
        .query("select relname::text from pg_class where relname like '%\\_\\_load%'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(left.is_empty(), "load tables left: {left:?}");
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::ReaderBuilder::new().from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect();
    (header, rows)
}
