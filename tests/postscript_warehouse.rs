//! Postscript's warehouse-push tables (apis.md 4.4 B) unloaded as Parquet and CSV under a
//! prefix, landed by a warehouse-only job over real storage: the local filesystem and the
//! S3-compatible moto server on loopback. Every row lands once, a re-run lands nothing, a file
//! rewritten in place lands again, a file without a required column is quarantined (naming the
//! field) and never enters state, a row that does not parse is quarantined alone.

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use common::{Moto, rows, run_binary, scalar};
use lifecycle_etl::config::{Job, Secrets, StorageConfig};
use lifecycle_etl::pipeline::{Outcome, Steps, SyncSelection, execute};
use lifecycle_etl::storage::Storage;
use serde_json::Value;

const S3_KEY_ENV: &str = "TEST_WH_S3_KEY_ID";
const S3_SECRET_ENV: &str = "TEST_WH_S3_SECRET";

fn secrets() -> Secrets {
    Secrets::default().with(S3_KEY_ENV, "test").with(S3_SECRET_ENV, "testtest")
}

/// Micros of a naive UTC `YYYY-MM-DD HH:MM:SS.ffffff`.
fn ts(text: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap().and_utc().timestamp_micros()
}

fn utf8(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn times(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(v.iter().map(|t| t.map(ts)).collect::<Vec<_>>()))
}

fn ints(v: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}

fn bools(v: &[Option<bool>]) -> ArrayRef {
    Arc::new(BooleanArray::from(v.to_vec()))
}

/// A Parquet file as the unload writes it: Utf8, Int64, Boolean, Timestamp(Microsecond, None).
fn parquet(columns: Vec<(&str, ArrayRef)>) -> Vec<u8> {
    let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    assert!(
        fields.iter().all(|f| !matches!(f.data_type(), DataType::Timestamp(u, Some(_)) if *u == TimeUnit::Microsecond))
    );
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|c| c.1).collect()).unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

fn messages_v1() -> Vec<u8> {
    parquet(vec![
        ("message_id", utf8(&[Some("m1"), Some("m2"), Some("m3")])),
        ("direction", utf8(&[Some("outbound"), Some("outbound"), Some("inbound")])),
        ("subscriber_id", utf8(&[Some("s1"), Some("s2"), Some("s1")])),
        (
            "created_at",
            times(&[Some("2025-11-03 10:00:00.123456"), Some("2025-11-03 11:00:00"), Some("2025-11-03 12:30:00")]),
        ),
        (
            "_updated_at",
            times(&[Some("2025-11-04 00:00:00"), Some("2025-11-04 00:00:00"), Some("2025-11-04 00:00:00")]),
        ),
    ])
}

/// The same file rewritten in place: m3 dropped, m4 and m5 added.
fn messages_v2() -> Vec<u8> {
    parquet(vec![
        ("message_id", utf8(&[Some("m1"), Some("m2"), Some("m4"), Some("m5")])),
        ("direction", utf8(&[Some("outbound"), Some("outbound"), Some("outbound"), Some("outbound")])),
        ("subscriber_id", utf8(&[Some("s1"), Some("s2"), Some("s2"), Some("s1")])),
        (
            "created_at",
            times(&[
                Some("2025-11-03 10:00:00.123456"),
                Some("2025-11-03 11:00:00"),
                Some("2025-11-05 09:00:00"),
                Some("2025-11-05 09:01:00"),
            ]),
        ),
        ("_updated_at", times(&[Some("2025-11-06 00:00:00"); 4])),
    ])
}

const MESSAGES_CSV: &str = "message_id,direction,subscriber_id,created_at,_updated_at\n\
                            m6,outbound,s2,2025-11-07 08:00:00.000001,2025-11-07 09:00:00.000000\n";

const DIM_CSV: &str = "MESSAGE_ID,postscript_message_id,direction,message_service,failed,failed_at,text,media_url,type,type_name,_updated_at\n\
m1,psm_1,outbound,SMS,false,,\"Hi, \"\"Ann\"\"\nnew drop\",,campaign,November Drop,2025-11-04 00:00:00.000000\n\
m2,psm_2,outbound,MMS,true,2025-11-03 11:00:05.5,,https://cdn.example/i.png,automation,,2025-11-04 00:00:00.000000\n";

fn attribution() -> Vec<u8> {
    parquet(vec![
        ("attribution_id", utf8(&[Some("a1"), Some("a2")])),
        ("message_id", utf8(&[Some("m1"), Some("m2")])),
        ("order_id", utf8(&[Some("5001"), Some("5002")])),
        ("amount_in_cents", ints(&[Some(4999), Some(12000)])),
        ("action_type", utf8(&[Some("click"), Some("view")])),
        ("coupon_used", bools(&[Some(false), Some(true)])),
        ("shop_id", utf8(&[Some("shop_1"), Some("shop_1")])),
        ("subscriber_id", utf8(&[Some("s1"), Some("s2")])),
        ("customer_id", ints(&[Some(701), None])),
        ("minutes_from_action", ints(&[Some(12), Some(600)])),
        ("order_created_at", times(&[Some("2025-11-03 10:12:00"), Some("2025-11-03 21:00:00")])),
        ("_updated_at", times(&[Some("2025-11-04 00:00:00"), Some("2025-11-04 00:00:00")])),
        ("extra_note", utf8(&[Some("kept in _raw"), None])),
    ])
}

/// A late correction of a1 (refund-adjusted amount).
const ATTRIBUTION_CORRECTION_CSV: &str = "attribution_id,message_id,order_id,amount_in_cents,action_type,coupon_used,shop_id,subscriber_id,customer_id,minutes_from_action,order_created_at,_updated_at\n\
a1,m1,5001,2500,click,false,shop_1,s1,701,12,2025-11-03 10:12:00.000000,2025-11-09 00:00:00.000000\n";

/// Two clicks, the second with a timestamp that does not parse.
const CLICKS_CSV: &str = "click_id,message_id,subscriber_id,clicked_at,url,_updated_at\n\
c1,m1,s1,2025-11-03 10:05:00.000000,https://shop.example/p?a=1,2025-11-04 00:00:00.000000\n\
c2,m2,s2,yesterday,https://shop.example/q,2025-11-04 00:00:00.000000\n";

fn subscribers() -> Vec<u8> {
    parquet(vec![
        ("subscriber_id", utf8(&[Some("s1"), Some("s2")])),
        ("phone_number", utf8(&[Some("+15555550101"), Some("+15555550102")])),
        ("email", utf8(&[Some("ann@example.com"), None])),
        ("shopify_customer_id", ints(&[Some(701), None])),
        ("created_at", times(&[Some("2025-10-01 00:00:00"), Some("2025-10-02 00:00:00")])),
        ("opted_out_at", times(&[None, Some("2025-11-08 00:00:00")])),
        ("_updated_at", times(&[Some("2025-11-04 00:00:00"), Some("2025-11-08 00:00:00")])),
    ])
}

/// No `created_at` column: the file is quarantined whole.
const SUBSCRIBERS_BAD_CSV: &str = "subscriber_id,phone_number,email,shopify_customer_id,opted_out_at,_updated_at\n\
s3,+15555550103,,,,2025-11-08 00:00:00.000000\n";

const SUBSCRIBERS_FIXED_CSV: &str = "subscriber_id,phone_number,email,shopify_customer_id,created_at,opted_out_at,_updated_at\n\
s3,+15555550103,,,2025-11-07 00:00:00.000000,,2025-11-08 00:00:00.000000\n";

/// A warehouse-only job (no API key): the warehouse part validates and runs alone.
fn job(storage_url: &str, storage_extra: &str, warehouse_url: &str, warehouse_extra: &str) -> Job {
    let text = job_text(storage_url, storage_extra, warehouse_url, warehouse_extra);
    Job::parse(&text, std::path::Path::new("pswh.toml")).unwrap()
}

fn job_text(storage_url: &str, storage_extra: &str, warehouse_url: &str, warehouse_extra: &str) -> String {
    format!(
        "[job]\nname = \"pswh\"\nreporting_timezone = \"America/New_York\"\nreporting_currency = \"USD\"\n\
         [storage]\nurl = \"{storage_url}\"\n{storage_extra}\n[run]\nlock_ttl_seconds = 3\nbatch_rows = 2\n\
         [sources.postscript.warehouse]\nurl = \"{warehouse_url}\"\n{warehouse_extra}\n"
    )
}

async fn sync(job: &Job) -> Result<Outcome, String> {
    execute(job, &secrets(), Steps::Sync, &SyncSelection::default(), None).await.map_err(|e| e.to_string())
}

/// Rows of a raw stream, and how many distinct (file version, row) keys they have.
async fn landed(storage: &Storage, table: &str) -> (i64, i64) {
    let t = format!("raw_postscript__warehouse_{table}");
    let all = scalar(storage, &format!("select count(*) from {t}")).await;
    let keys = scalar(
        storage,
        &format!("select count(*) from (select distinct source_file, file_sha256, row_number from {t})"),
    )
    .await;
    (all, keys)
}

async fn state(storage: &Storage, table: &str) -> Value {
    let bytes = storage.get(&format!("_state/postscript/warehouse_{table}.json")).await.unwrap().unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn quarantine_entries(storage: &Storage) -> Vec<Value> {
    let mut out = Vec::new();
    for meta in storage.list("_quarantine").await.unwrap() {
        let bytes = storage.get(&storage.relative(&meta.location)).await.unwrap().unwrap();
        out.push(serde_json::from_slice(&bytes).unwrap());
    }
    out
}

/// The whole story over one job storage and one warehouse prefix.
async fn scenario(job: &Job, wh: &Storage) {
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    wh.put("fct_messages/data_202511_0_0.parquet", messages_v1()).await.unwrap();
    wh.put("fct_messages/data_202511_0_1.csv", MESSAGES_CSV).await.unwrap();
    wh.put("fct_messages/_SUCCESS", "").await.unwrap();
    wh.put("dim_messages/data_202511_0_0.csv", DIM_CSV).await.unwrap();
    wh.put("fct_attribution/data_202511_0_0.parquet", attribution()).await.unwrap();
    wh.put("fct_attribution/data_corrections_0_0.csv", ATTRIBUTION_CORRECTION_CSV).await.unwrap();
    wh.put("fct_clicks/data_202511_0_0.csv", CLICKS_CSV).await.unwrap();
    wh.put("subscribers/data_202511_0_0.parquet", subscribers()).await.unwrap();
    wh.put("subscribers/data_202511_1_0.csv", SUBSCRIBERS_BAD_CSV).await.unwrap();

    // Run 1: everything lands but the malformed file and the bad row; the run fails naming them.
    let err = sync(job).await.unwrap_err();
    for part in ["warehouse_subscribers", "subscribers/data_202511_1_0.csv", "created_at", "warehouse_fct_clicks"] {
        assert!(err.contains(part), "{part}: {err}");
    }
    let expected =
        [("fct_messages", 4), ("dim_messages", 2), ("fct_attribution", 3), ("fct_clicks", 1), ("subscribers", 2)];
    for (table, n) in expected {
        assert_eq!(landed(&storage, table).await, (n, n), "{table}: every row once");
    }
    let q = quarantine_entries(&storage).await;
    let file_entry =
        q.iter().find(|e| e["stream"] == "warehouse_subscribers").expect("the malformed file is quarantined");
    assert_eq!(
        (file_entry["file"].as_str(), file_entry["field"].as_str()),
        (Some("subscribers/data_202511_1_0.csv"), Some("created_at"))
    );
    assert!(file_entry["error"].as_str().unwrap().contains("no column(s) created_at"), "{file_entry}");
    let row_entry = q.iter().find(|e| e["stream"] == "warehouse_fct_clicks").expect("the bad row is quarantined");
    assert_eq!((row_entry["row_number"].as_u64(), row_entry["field"].as_str()), (Some(2), Some("clicked_at")));
    assert_eq!(row_entry["source"], "postscript");
    assert_eq!(q.len(), 2, "{q:?}");
    // State names what was written, and only that.
    let subs = state(&storage, "subscribers").await;
    let names: Vec<&String> = subs["files"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["subscribers/data_202511_0_0.parquet"], "the quarantined file is not remembered");
    let clicks = state(&storage, "fct_clicks").await;
    let c = &clicks["files"]["fct_clicks/data_202511_0_0.csv"];
    assert_eq!((c["rows"].as_u64(), c["quarantined_rows"].as_u64()), (Some(1), Some(1)));
    let msgs = state(&storage, "fct_messages").await;
    assert_eq!(msgs["files"].as_object().unwrap().len(), 2, "the marker file is not a table file");

    // Types, quoting, NULLs, the extra column and the correction.
    let dim = rows(&storage, "select message_id, text, media_url, failed, failed_at, type_name from raw_postscript__warehouse_dim_messages order by message_id").await;
    assert_eq!(dim[0], ["m1", "Hi, \"Ann\"\nnew drop", "NULL", "false", "NULL", "November Drop"]);
    assert_eq!(dim[1][1..5], ["NULL", "https://cdn.example/i.png", "true", "2025-11-03T11:00:05.500Z"]);
    let created =
        rows(&storage, "select created_at from raw_postscript__warehouse_fct_messages where message_id = 'm1'").await;
    assert_eq!(created, [["2025-11-03T10:00:00.123456Z"]], "Parquet timestamps are naive UTC");
    let latest = rows(
        &storage,
        "select amount_in_cents, source_file from raw_postscript__warehouse_fct_attribution \
         where attribution_id = 'a1' order by _updated_at desc limit 1",
    )
    .await;
    assert_eq!(latest, [["2500", "fct_attribution/data_corrections_0_0.csv"]], "the correction is the latest a1");
    let extra = scalar(&storage, "select count(*) from raw_postscript__warehouse_fct_attribution where _raw like '%\"extra_note\":\"kept in _raw\"%'").await;
    assert_eq!(extra, 1, "extra columns stay in _raw");
    let nulls = scalar(&storage, "select count(*) from raw_postscript__warehouse_subscribers where email is null and shopify_customer_id is null and opted_out_at is not null").await;
    assert_eq!(nulls, 1);

    // Run 2: nothing new lands; the malformed file is still reported.
    let err = sync(job).await.unwrap_err();
    assert!(err.contains("subscribers/data_202511_1_0.csv") && !err.contains("warehouse_fct_clicks"), "{err}");
    for (table, n) in expected {
        assert_eq!(landed(&storage, table).await, (n, n), "{table}: a re-run lands nothing");
    }

    // Run 3: a rewrite in place lands again as a new version; the fixed file lands; a vanished
    // file is only reported.
    wh.put("fct_messages/data_202511_0_0.parquet", messages_v2()).await.unwrap();
    wh.put("subscribers/data_202511_1_0.csv", SUBSCRIBERS_FIXED_CSV).await.unwrap();
    wh.delete("dim_messages/data_202511_0_0.csv").await.unwrap();
    let out = sync(job).await.unwrap();
    let records = |o: &Outcome, t: &str| o.streams[&format!("postscript.warehouse_{t}")].records;
    assert_eq!(
        [
            records(&out, "fct_messages"),
            records(&out, "subscribers"),
            records(&out, "dim_messages"),
            records(&out, "fct_clicks")
        ],
        [4, 1, 0, 0]
    );
    assert_eq!(landed(&storage, "fct_messages").await, (8, 8));
    assert_eq!(landed(&storage, "subscribers").await, (3, 3));
    assert_eq!(landed(&storage, "dim_messages").await, (2, 2), "a vanished file's rows stay");
    let versions = scalar(&storage, "select count(distinct file_sha256) from raw_postscript__warehouse_fct_messages where source_file = 'fct_messages/data_202511_0_0.parquet'").await;
    assert_eq!(versions, 2, "the rewrite is told apart by its hash");
    let msgs = state(&storage, "fct_messages").await;
    assert_eq!(msgs["files"]["fct_messages/data_202511_0_0.parquet"]["versions"], 2);
    assert_eq!(state(&storage, "dim_messages").await["files"]["dim_messages/data_202511_0_0.csv"]["gone"], true);

    // Run 4: nothing changed, nothing lands, and the run succeeds.
    let out = sync(job).await.unwrap();
    for (stream, s) in &out.streams {
        assert_eq!((s.status.as_str(), s.records), ("ok", 0), "{stream}");
    }
    assert_eq!(out.streams.len(), 5, "{:?}", out.streams.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouse_tables_land_from_the_local_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let exports = format!("file://{}", dir.path().join("exports/postscript").display());
    let wh_cfg = StorageConfig {
        url: exports.clone(),
        endpoint: None,
        region: None,
        allow_http: false,
        path_style: false,
        access_key_id_env: None,
        secret_access_key_env: None,
        request_timeout_seconds: None,
        multipart_part_bytes: None,
    };
    let wh = Storage::open(&wh_cfg, &secrets()).unwrap();
    scenario(&job(&data, "", &exports, "format = \"auto\""), &wh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouse_tables_land_from_s3() {
    let moto = Moto::start("lce-wh").await;
    let s3 = format!(
        "endpoint = \"{}\"\nregion = \"us-east-1\"\nallow_http = true\npath_style = true\n\
         access_key_id_env = \"{S3_KEY_ENV}\"\nsecret_access_key_env = \"{S3_SECRET_ENV}\"",
        moto.endpoint
    );
    let job = job("s3://lce-wh/brands/pswh", &s3, "s3://lce-wh/exports/postscript", &s3);
    let wh_cfg = job.file.sources.postscript.as_ref().unwrap().warehouse.as_ref().unwrap().store_config();
    let wh = Storage::open(&wh_cfg, &secrets()).unwrap();
    scenario(&job, &wh).await;
}

#[tokio::test]
async fn a_missing_local_prefix_fails_the_streams_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let missing = format!("file://{}", dir.path().join("nowhere").display());
    let job = job(&data, "", &missing, "tables = [\"fct_clicks\"]");
    let err = sync(&job).await.unwrap_err();
    assert!(err.contains("sources.postscript.warehouse.url") && err.contains("nowhere"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_between_files_lands_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("file://{}", dir.path().join("data").display());
    let exports = format!("file://{}", dir.path().join("exports").display());
    let text = job_text(&data, "", &exports, "tables = [\"fct_messages\", \"fct_attribution\"]");
    let job_path = dir.path().join("pswh.toml");
    std::fs::write(&job_path, &text).unwrap();
    let job = Job::load(&job_path).unwrap();
    let wh_cfg = job.file.sources.postscript.as_ref().unwrap().warehouse.as_ref().unwrap().store_config();
    let wh = Storage::open(&wh_cfg, &secrets()).unwrap();
    wh.put("fct_messages/data_202511_0_0.parquet", messages_v1()).await.unwrap();
    wh.put("fct_messages/data_202511_0_1.csv", MESSAGES_CSV).await.unwrap();
    wh.put("fct_attribution/data_202511_0_0.parquet", attribution()).await.unwrap();
    wh.put("fct_attribution/data_corrections_0_0.csv", ATTRIBUTION_CORRECTION_CSV).await.unwrap();
    let sync = |failpoint: Option<&str>| {
        let env = failpoint.map(|f| ("LIFECYCLE_ETL_FAILPOINT".to_string(), f.to_string())).into_iter().collect();
        run_binary(vec!["sync".into(), "--job".into(), job_path.display().to_string()], env)
    };
    // Killed before committing the third file: two files are committed, the third written only.
    let out = sync(Some("before_commit:3")).await;
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("failpoint"));
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    assert_eq!(landed(&storage, "fct_messages").await, (4, 4));
    let attribution_state = storage.get("_state/postscript/warehouse_fct_attribution.json").await.unwrap();
    assert!(attribution_state.is_none(), "nothing of the killed stream is remembered");
    tokio::time::sleep(std::time::Duration::from_secs(4)).await; // the lock's lease runs out
    let out = sync(None).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(landed(&storage, "fct_messages").await, (4, 4), "committed files are not landed again");
    assert_eq!(landed(&storage, "fct_attribution").await, (3, 3), "the killed file lands once");
}
