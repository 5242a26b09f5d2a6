//! The same landing and locking against a real S3-compatible server (moto) on loopback.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use lifecycle_etl::lock::RunLock;
use lifecycle_etl::pipeline::{Steps, SyncSelection, execute};
use lifecycle_etl::storage::Storage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_lands_to_s3_and_reads_back() {
    let moto = Moto::start("lce-test").await;
    let (_, truth) = brand();
    let fake = fake_klaviyo().await;
    let (job, secrets) = s3_job(&moto.endpoint, &fake.base_url(), "testbrand", "");
    let out = execute(&job, &secrets, Steps::All, &SyncSelection::default(), None).await.unwrap();
    assert_eq!(out.streams["klaviyo.events"].records, truth.totals.events);
    let storage = Storage::open(&job.file.storage, &secrets).unwrap();
    assert_complete(&storage, truth).await;
    let keys: Vec<String> = storage.list("").await.unwrap().iter().map(|m| m.location.to_string()).collect();
    assert!(keys.iter().all(|k| k.starts_with("brands/testbrand/")), "everything under the prefix");
    assert!(keys.iter().any(|k| k.contains("/raw/klaviyo/events/landed_date=")), "hive-style raw partitions");
    assert!(keys.iter().any(|k| k.ends_with("manifest.json")));
    assert!(!keys.iter().any(|k| k.contains("_locks/")), "the lock is released");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_of_sixteen_concurrent_runs_gets_the_lock() {
    let moto = Moto::start("lce-test").await;
    let (job, secrets) = s3_job(&moto.endpoint, "http://127.0.0.1:9", "testbrand", "");
    let storage = Arc::new(Storage::open(&job.file.storage, &secrets).unwrap());
    let attempts = (0..16).map(|i| {
        let storage = storage.clone();
        tokio::spawn(
            async move { RunLock::acquire(&storage, "race", &format!("run-{i}"), Duration::from_secs(60)).await },
        )
    });
    let results: Vec<_> = futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "{:?}", results.iter().map(|r| r.as_ref().err().map(|e| e.to_string())).collect::<Vec<_>>());
    for r in &results {
        if let Err(e) = r {
            assert!(e.to_string().contains("is locked by run run-"), "{e}");
        }
    }
}
