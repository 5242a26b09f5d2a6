//! A run killed between writing data and committing it: the next run neither loses nor
//! duplicates records. The process aborts at a failpoint (no unwinding, no cleanup, the lock
//! left behind), and the next run takes the lock over after its lease.

mod common;

use std::path::Path;

use common::*;
use lifecycle_etl::storage::Storage;

async fn run_sync(job_path: &Path, failpoint: Option<&str>) -> std::process::Output {
    let mut env = vec![(API_KEY_ENV.to_string(), API_KEY.to_string())];
    if let Some(f) = failpoint {
        env.push(("LIFECYCLE_ETL_FAILPOINT".into(), f.into()));
    }
    run_binary(vec!["run".into(), "--job".into(), job_path.display().to_string()], env).await
}

fn parquet_files(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += parquet_files(&p);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_lose_and_duplicate_nothing() {
    let (_, truth) = brand();
    let fake = fake_klaviyo().await;
    let dir = tempfile::tempdir().unwrap();
    let (job, job_path) = local_job(dir.path(), &fake.base_url());
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();

    // Killed part-way through the events windows, then again early in the next run.
    for failpoint in ["before_commit:20", "before_commit:2"] {
        let out = run_sync(&job_path, Some(failpoint)).await;
        assert!(!out.status.success(), "the failpoint kills the run");
        assert!(String::from_utf8_lossy(&out.stderr).contains("failpoint"), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(dir.path().join("data/_locks/testbrand").read_dir().unwrap().next().is_some(), "lock left behind");
        // Files written for the commit that never happened exist but are invisible.
        let on_disk = parquet_files(&dir.path().join("data/raw"));
        let committed: usize =
            lifecycle_etl::manifest::all_commits(&storage).await.unwrap().iter().map(|c| c.files.len()).sum();
        assert!(on_disk > committed, "orphans exist: {on_disk} on disk, {committed} committed");
        // The lease (3 s) must run out before the next run may take over.
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }

    let out = run_sync(&job_path, None).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("took over the lock"));
    assert_complete(&storage, truth).await;
    fake.shutdown().await;
}
