//! A run's metrics: per stream (records, bytes, requests, retries, throttles, duration) and per
//! model in the run manifest, and pushed to a Pushgateway when one is configured; a Pushgateway
//! that fails does not fail the run.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use lifecycle_etl::fake::Limit;
use lifecycle_etl::fake::klaviyo::{KlaviyoFakeConfig, KlaviyoLimits, serve};
use lifecycle_etl::manifest::RunManifest;
use lifecycle_etl::pipeline::{self, Steps, SyncSelection};

use common::*;

type Pushed = Arc<Mutex<Vec<(String, String)>>>;

/// A Pushgateway stand-in on 127.0.0.1: records each PUT's path and body, answers `status`.
async fn pushgateway(status: StatusCode) -> (String, Pushed) {
    let pushed: Pushed = Arc::default();
    let app = Router::new()
        .route(
            "/{*path}",
            put(
                |State((pushed, status)): State<(Pushed, StatusCode)>, uri: axum::http::Uri, body: String| async move {
                    pushed.lock().unwrap().push((uri.path().to_string(), body));
                    status
                },
            ),
        )
        .with_state((pushed.clone(), status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, pushed)
}

fn sample(body: &str, name: &str, stream: &str) -> f64 {
    let prefix = format!("{name}{{lce_job=\"testbrand\",source=\"klaviyo\",stream=\"{stream}\",status=\"ok\"}} ");
    let line = body.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{body}"));
    line[prefix.len()..].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_metrics_reach_the_manifest_and_the_pushgateway() {
    // Profiles throttled hard: the client paces at the published rate, the fake allows 3/s.
    let limits = KlaviyoLimits::uniform(Limit::new(3, 600));
    let klaviyo = serve(brand().0.clone(), KlaviyoFakeConfig { limits: Some(limits), ..fake_config() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut job, _) = local_job(dir.path(), &klaviyo.base_url());
    let (url, pushed) = pushgateway(StatusCode::OK).await;
    job.file.run.pushgateway_url = Some(url);
    let selection = SyncSelection { stream: Some("profiles".into()), ..Default::default() };
    let out = pipeline::execute(&job, &secrets(), Steps::Sync, &selection, None).await.unwrap();
    let s = &out.streams["klaviyo.profiles"];
    assert_eq!(s.status, "ok");
    assert!(s.records > 0 && s.requests >= s.pages && s.pages > 1, "{s:?}");
    assert!(s.throttles > 0 && s.retries >= s.throttles, "the fake's 3/s must throttle: {s:?}");
    assert!(s.duration_ms > 0);

    // The manifest in storage carries the same figures.
    let storage = lifecycle_etl::storage::Storage::open(&job.file.storage, &secrets()).unwrap();
    let manifests = lifecycle_etl::manifest::run_manifests(&storage).await.unwrap();
    let manifest: &RunManifest = manifests.iter().find(|m| m.run_id == out.run_id).expect("the run's manifest");
    assert_eq!(&manifest.streams["klaviyo.profiles"], s);

    // One push, under the job's group, with the stream's figures.
    let pushed_ref = pushed.clone();
    let pushed = pushed.lock().unwrap().clone();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].0, "/metrics/job/lifecycle_etl/lce_job/testbrand");
    let body = &pushed[0].1;
    assert_eq!(sample(body, "lifecycle_etl_stream_records", "profiles"), s.records as f64);
    assert_eq!(sample(body, "lifecycle_etl_stream_requests", "profiles"), s.requests as f64);
    assert_eq!(sample(body, "lifecycle_etl_stream_throttles", "profiles"), s.throttles as f64);
    assert!(body.contains("lifecycle_etl_run_success{lce_job=\"testbrand\"} 1"), "{body}");

    // A transform of what landed: each model's rows, bytes and build time, in both places.
    let out = pipeline::execute(&job, &secrets(), Steps::Transform, &SyncSelection::default(), None).await.unwrap();
    let m = &out.model_metrics["stg_klaviyo__profiles"];
    assert!(m.rows == s.records && m.bytes > 0 && m.partitions == 1, "{m:?}");
    let manifests = lifecycle_etl::manifest::run_manifests(&storage).await.unwrap();
    let manifest = manifests.iter().find(|x| x.run_id == out.run_id).expect("the transform's manifest");
    assert_eq!(&manifest.model_metrics["stg_klaviyo__profiles"], m);
    let body = pushed_last(&pushed_ref);
    let line =
        format!("lifecycle_etl_model_bytes{{lce_job=\"testbrand\",model=\"stg_klaviyo__profiles\"}} {}", m.bytes);
    assert!(body.lines().any(|l| l == line), "{line}");
}

fn pushed_last(pushed: &Pushed) -> String {
    pushed.lock().unwrap().last().expect("a push").1.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pushgateway_does_not_fail_the_run() {
    let klaviyo = fake_klaviyo().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut job, _) = local_job(dir.path(), &klaviyo.base_url());
    let (url, pushed) = pushgateway(StatusCode::INTERNAL_SERVER_ERROR).await;
    job.file.run.pushgateway_url = Some(url);
    let selection = SyncSelection { stream: Some("metrics".into()), ..Default::default() };
    let out = pipeline::execute(&job, &secrets(), Steps::Sync, &selection, None).await.unwrap();
    assert_eq!(out.streams["klaviyo.metrics"].status, "ok");
    assert_eq!(pushed.lock().unwrap().len(), 1, "the push was tried");
}
