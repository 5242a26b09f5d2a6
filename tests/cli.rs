//! The binary's contract: exit codes and messages for configuration problems.

mod common;

use common::*;

#[tokio::test]
async fn check_names_the_missing_credential_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = local_job(dir.path(), "http://127.0.0.1:9");
    let out = run_binary(vec!["check".into(), "--job".into(), path.display().to_string()], vec![]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(API_KEY_ENV) && err.contains("sources.klaviyo.api_key_env"), "{err}");

    let ok = run_binary(
        vec!["check".into(), "--job".into(), path.display().to_string()],
        vec![(API_KEY_ENV.into(), API_KEY.into())],
    )
    .await;
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(stdout.contains("contracts:") && stdout.contains("seeds:"), "{stdout}");
    assert!(!stdout.contains(API_KEY), "secrets never print");
}

#[tokio::test]
async fn unknown_key_names_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = job_toml("file:///tmp/x", "http://127.0.0.1:9", "", 60).replace("[run]", "[run]\nbatch_size = 10");
    std::fs::write(&path, text).unwrap();
    let out = run_binary(vec!["check".into(), "--job".into(), path.display().to_string()], vec![]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("batch_size") && err.contains("unknown field"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_exits_2_naming_the_lock_holder() {
    let dir = tempfile::tempdir().unwrap();
    let (job, path) = local_job(dir.path(), "http://127.0.0.1:9");
    let storage = lifecycle_etl::storage::Storage::open(&job.file.storage, &secrets()).unwrap();
    let lock = lifecycle_etl::lock::RunLock::acquire(
        &storage,
        "testbrand",
        "holder-run-1",
        std::time::Duration::from_secs(60),
    )
    .await
    .unwrap();
    let out = run_binary(
        vec!["sync".into(), "--job".into(), path.display().to_string()],
        vec![(API_KEY_ENV.into(), API_KEY.into())],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holder-run-1") && err.contains("locked"), "{err}");
    lock.release().await.unwrap();
}
