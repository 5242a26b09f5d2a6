//! Dirty sets (models.md 5): a nightly run on new data recomputes only the dirty partitions of the
//! incremental marts, and ends with exactly the marts a full rebuild writes.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use common::*;
use lifecycle_etl::pipeline::Steps;
use lifecycle_etl::storage::Storage;
use lifecycle_etl::transform::incremental::{DIRTY_QUERIES, Mode};
use lifecycle_etl::transform::publish::Built;

async fn transform(storage: &Storage, run_id: &str, mode: Mode) -> BTreeMap<String, Built> {
    match lifecycle_etl::transform::run_with(storage, &[], run_id, mode, None).await {
        Ok(built) => built,
        Err(e) => panic!("transform {run_id}: {}", lifecycle_etl::error::Chain(&e)),
    }
}

/// Every mart's current objects.
async fn marts(storage: &Storage) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for m in lifecycle_etl::transform::all_models().unwrap().into_iter().filter(|m| m.layer == "marts") {
        let current = lifecycle_etl::transform::publish::current(storage, &m.layer, &m.name).await.unwrap();
        out.push((m.name, current.map(|c| c.files).unwrap_or_default()));
    }
    out
}

async fn bytes(storage: &Storage, marts: &[(String, Vec<String>)]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (model, files) in marts {
        for f in files {
            out.push((model.clone(), storage.get(f).await.unwrap().unwrap().to_vec()));
        }
    }
    out
}

fn files_of<'a>(all: &'a [(String, Vec<String>)], model: &str) -> &'a [String] {
    &all.iter().find(|(m, _)| m == model).unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nightly_run_rewrites_dirty_partitions_and_equals_a_full_rebuild() {
    let BothFakes { klaviyo, shopify, control, job, secrets, storage, dir: _dir } = both_fakes().await;
    let end = control.clock().now();

    // Night 1 lands everything up to ten days before the end; night 2 the rest.
    run_ok(&job, &secrets, Steps::Sync, end - Duration::days(10)).await;
    let built = transform(&storage, "20991229T000000Z-nightone", Mode::Incremental).await;
    assert!(built.values().all(|b| !b.incremental), "a first run has no previous version to keep");
    let night1 = marts(&storage).await;
    run_ok(&job, &secrets, Steps::Sync, end).await;
    let built = transform(&storage, "20991230T000000Z-nighttwo", Mode::Incremental).await;
    let night2 = marts(&storage).await;
    for (model, b) in &built {
        let dirty = DIRTY_QUERIES.iter().any(|(m, _)| m == model);
        assert_eq!(b.incremental, dirty, "{model}: recomputed by dirty set {}", b.incremental);
    }
    // fct_message_events recomputed only the dirty dates: about the last 10 + 8 of ~90.
    let events = &built["fct_message_events"];
    assert!(events.written < events.files / 2, "{} of {} event dates rewritten", events.written, events.files);

    // The dirty marts rewrote some partitions; events and orders kept older ones (in this
    // three-month brand the lines and refunds of every month move: new cost snapshots reach
    // old lines through the cost backfill, refunds land on old orders).
    for (model, _) in DIRTY_QUERIES {
        let before: BTreeSet<&String> = files_of(&night1, model).iter().collect();
        let after: BTreeSet<&String> = files_of(&night2, model).iter().collect();
        let kept = before.intersection(&after).count();
        if ["fct_message_events", "fct_orders"].contains(model) {
            assert!(kept > 0, "{model}: night 2 kept no partition of night 1: {before:?} -> {after:?}");
        }
        assert!(after.difference(&before).count() > 0, "{model}: night 2 changed no partition");
    }
    assert!(
        files_of(&night2, "fct_message_events").len() > 30,
        "a partition per event date: {}",
        files_of(&night2, "fct_message_events").len()
    );

    // A full rebuild on the same raw data writes the same bytes (and, partitions being named by
    // their bytes, the same partition objects).
    let night2_bytes = bytes(&storage, &night2).await;
    transform(&storage, "20991231T000000Z-fullfull", Mode::Full).await;
    let full = marts(&storage).await;
    for ((model, inc), (_, full)) in night2.iter().zip(&full) {
        if full.iter().any(|f| f.contains('=') && !f.contains("/version=")) {
            assert_eq!(inc, full, "{model}: the incremental run's partitions differ from a full rebuild");
        }
    }
    assert!(night2_bytes == bytes(&storage, &full).await, "the incremental run's bytes differ from a full rebuild");
    klaviyo.shutdown().await;
    shopify.shutdown().await;
}
