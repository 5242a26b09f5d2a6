//! End to end on the local filesystem: sync from the fake Klaviyo over real HTTP, transform,
//! report; re-runs, bad pages, credentials.

mod common;

use common::*;
use lifecycle_etl::error::Error;
use lifecycle_etl::pipeline::{Steps, SyncSelection, execute};
use lifecycle_etl::storage::Storage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_lands_every_record_once_and_reruns_are_idempotent() {
    let (_, truth) = brand();
    let fake = fake_klaviyo().await;
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = local_job(dir.path(), &fake.base_url());
    let out = execute(&job, &secrets(), Steps::All, &SyncSelection::default(), None).await.unwrap();
    assert_eq!(out.streams["klaviyo.events"].records, truth.totals.events, "first run reads each event once");
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    assert_complete(&storage, truth).await;
    let report = out.report.expect("run writes the dashboard");
    assert!(report.ends_with("dashboard.html"));

    // Same day, same raw data: the trailing re-read lands copies, staging stays exact.
    let again = execute(&job, &secrets(), Steps::All, &SyncSelection::default(), None).await.unwrap();
    assert!(again.streams["klaviyo.events"].records < truth.totals.events / 2, "only the trailing window is re-read");
    assert_complete(&storage, truth).await;
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_page_is_quarantined_and_other_streams_land() {
    let (_, truth) = brand();
    let fake = fake_klaviyo().await;
    fake.faults().on("/api/events").malform_nth(3);
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = local_job(dir.path(), &fake.base_url());
    let err = execute(&job, &secrets(), Steps::Sync, &SyncSelection::default(), None).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("klaviyo") && msg.contains("events") && msg.contains("malformed page"), "{msg}");
    assert_eq!(err.exit_code(), 2);

    let quarantine: Vec<_> = walk(&dir.path().join("data/_quarantine"));
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    let entry: serde_json::Value = serde_json::from_slice(&std::fs::read(&quarantine[0]).unwrap()).unwrap();
    assert_eq!(entry["source"], "klaviyo");
    assert_eq!(entry["stream"], "events");
    assert!(entry["page_url"].as_str().unwrap().contains("/api/events"));
    assert!(!entry["error"].as_str().unwrap().is_empty());

    // The other streams landed in full despite the failure.
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    let profiles = scalar(&storage, "select count(distinct id) from raw_klaviyo__profiles").await as u64;
    assert_eq!(profiles, truth.totals.profiles);

    // The next run starts from before the bad page: nothing lost, staging deduplicates.
    execute(&job, &secrets(), Steps::All, &SyncSelection::default(), None).await.unwrap();
    assert_complete(&storage, truth).await;
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_server_errors_resets_and_odd_pages_lose_nothing() {
    let (_, truth) = brand();
    let fake = fake_klaviyo().await;
    fake.faults().on("/api/events").throttle_next(3, 1);
    fake.faults().on("/api/profiles").fail_next(2, 503);
    fake.faults().on("/api/metrics").fail_next(1, 524);
    fake.faults().on("/api/flows").reset_next(2);
    fake.faults().on("/api/segments").truncate_next(1);
    fake.faults().on("/api/events").empty_page_next(2);
    fake.faults().on("/api/profiles").duplicate_across_pages(1);
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = local_job(dir.path(), &fake.base_url());
    execute(&job, &secrets(), Steps::All, &SyncSelection::default(), None).await.unwrap();
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    assert_complete(&storage, truth).await;
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3);
    assert!(statuses.iter().filter(|s| **s >= 500).count() >= 3);
    let injected: Vec<_> = fake.requests().iter().filter_map(|r| r.injected).collect();
    for kind in ["reset", "truncate", "empty_page", "duplicate"] {
        assert!(injected.contains(&kind), "{kind} was injected: {injected:?}");
    }
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_fails_fast_as_configuration_naming_the_source() {
    let fake = fake_klaviyo().await;
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = local_job(dir.path(), &fake.base_url());
    let wrong = lifecycle_etl::config::Secrets::default().with(API_KEY_ENV, "pk_wrong");
    let err = execute(&job, &wrong, Steps::Sync, &SyncSelection::default(), None).await.unwrap_err();
    let text = lifecycle_etl::error::Chain(&err).to_string();
    assert!(text.contains("klaviyo") && text.contains("401"), "{text}");
    assert!(!text.contains("pk_wrong"), "the key must never be printed: {text}");
    assert!(matches!(err, Error::Config { .. } | Error::PartialFailure { .. }), "{err:?}");
    // Only the requests already in flight when the first 401 came back (up to 24 event windows
    // and the first page of each of the 8 other streams of the first wave), none of them
    // retried; without the stop, the 31 event windows and every other page would each knock.
    let requests = fake.requests();
    assert!(requests.len() <= 24 + 8, "a 401 stops the source: {} requests", requests.len());
    let mut paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    paths.sort_unstable();
    paths.dedup();
    assert_eq!(paths.len(), requests.len(), "a 401 is never retried");
    assert!(requests.iter().all(|r| r.status == 401));
    // Nothing was committed, so no state advanced.
    assert!(!dir.path().join("data/_state").exists());
    fake.shutdown().await;
}
