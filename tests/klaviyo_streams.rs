//! Every Klaviyo stream from the fake, checked against the simulated truth, and a second run
//! after more simulated days landing only the new and re-read records.

mod common;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use lifecycle_etl::fake::klaviyo::{KlaviyoFakeConfig, serve};
use lifecycle_etl::pipeline::{Steps, SyncSelection, execute};
use lifecycle_etl::simulate::model::{SimCampaign, SimEvent, SimFlow, SimMetric};
use lifecycle_etl::simulate::store::Entity;
use lifecycle_etl::storage::Storage;

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_matches_the_simulated_truth() {
    let (store, truth) = brand();
    let fake = fake_klaviyo().await;
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = local_job(dir.path(), &fake.base_url());
    let out = execute(&job, &secrets(), Steps::All, &SyncSelection::default(), None).await.unwrap();
    for (stream, s) in &out.streams {
        assert_eq!(s.status, "ok", "{stream}: {:?}", s.error);
    }
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    assert_complete(&storage, truth).await;

    // Events: per metric, and the revenue sum to the cent.
    let metrics: Vec<SimMetric> = store.read_all(Entity::Metrics).unwrap();
    for m in &metrics {
        let expected = truth.totals.events_by_metric.get(&m.name).copied().unwrap_or(0);
        let sql = format!(
            "select count(*) from stg_klaviyo__events e join stg_klaviyo__metrics m on e.metric_id = m.metric_id \
             where m.metric_name = '{}'",
            m.name.replace('\'', "''")
        );
        assert_eq!(scalar(&storage, &sql).await as u64, expected, "events of metric {}", m.name);
    }
    let events: Vec<SimEvent> = store.read_all(Entity::Events).unwrap();
    let placed = metrics.iter().find(|m| m.name == "Placed Order").unwrap();
    let revenue_minor: i64 =
        events.iter().filter(|e| e.metric_id == placed.metric_id).filter_map(|e| e.value_minor).sum();
    let sql = format!(
        "select cast(sum(value_amount) * 100 as bigint) from stg_klaviyo__events where metric_id = '{}'",
        placed.metric_id
    );
    assert_eq!(scalar(&storage, &sql).await, revenue_minor, "Placed Order $value sum");
    let attributed =
        events.iter().filter(|e| e.metric_id == placed.metric_id && e.attributed_flow_id.is_some()).count();
    let sql = "select count(*) from stg_klaviyo__events where attributed_flow_id is not null";
    assert_eq!(scalar(&storage, sql).await as usize, attributed, "platform-attributed orders");

    // Flows with their actions and messages; campaigns with their messages; lists, segments.
    let flows: Vec<SimFlow> = store.read_all(Entity::Flows).unwrap();
    assert_eq!(scalar(&storage, "select count(*) from stg_klaviyo__flows").await as usize, flows.len());
    let messages: usize = flows.iter().map(|f| f.messages.len()).sum();
    assert_eq!(scalar(&storage, "select count(*) from stg_klaviyo__flow_messages").await as usize, messages);
    let sends = "select count(*) from stg_klaviyo__flow_actions where action_type like 'send-%'";
    assert_eq!(scalar(&storage, sends).await as usize, messages, "one send action per message");
    let orphans = "select count(*) from stg_klaviyo__flow_actions a left join stg_klaviyo__flows f on a.flow_id = f.flow_id \
                   where f.flow_id is null";
    assert_eq!(scalar(&storage, orphans).await, 0);
    let campaigns: Vec<SimCampaign> = store.read_all(Entity::Campaigns).unwrap();
    let live = campaigns.iter().filter(|c| !c.deleted).count();
    assert_eq!(scalar(&storage, "select count(*) from stg_klaviyo__campaigns").await as usize, live);
    assert_eq!(scalar(&storage, "select count(*) from stg_klaviyo__campaign_messages").await as usize, live);
    assert!(scalar(&storage, "select count(*) from stg_klaviyo__lists").await > 0);
    assert!(scalar(&storage, "select count(*) from stg_klaviyo__segments").await > 0);

    // Platform-reported conversions: present, and never more than the attributed orders.
    let reported =
        scalar(&storage, "select cast(coalesce(sum(conversions), 0) as bigint) from stg_klaviyo__flow_series_report")
            .await;
    assert!(reported > 0, "the flow series report has conversions");
    assert!(reported as usize <= attributed, "{reported} reported vs {attributed} attributed");
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_run_lands_only_new_and_trailing_records() {
    let (store, truth) = brand();
    let first_now = at(2026, 10, 20, 0);
    let cfg = KlaviyoFakeConfig { now: Some(first_now), ..fake_config() };
    let fake = serve(store.clone(), cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = local_job(dir.path(), &fake.base_url());
    let only_events = |until| SyncSelection { stream: Some("events".into()), until: Some(until), ..Default::default() };

    let events: Vec<SimEvent> = store.read_all(Entity::Events).unwrap();
    let first = execute(&job, &secrets(), Steps::Sync, &only_events(first_now), None).await.unwrap();
    let before = events.iter().filter(|e| e.datetime < first_now).count() as u64;
    assert_eq!(first.streams["klaviyo.events"].records, before);

    // Eleven more simulated days: only they and the 7-day trailing window are read.
    let second_now = at(2026, 11, 1, 4);
    fake.clock().set(second_now);
    let second = execute(&job, &secrets(), Steps::All, &only_events(second_now), None).await.unwrap();
    let reread_from = first_now - chrono::Duration::days(7);
    let expected = events.iter().filter(|e| e.datetime >= reread_from && e.datetime < second_now).count() as u64;
    assert_eq!(second.streams["klaviyo.events"].records, expected);
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    let all = events.iter().filter(|e| e.datetime < second_now).count() as i64;
    assert_eq!(scalar(&storage, "select count(distinct id) from raw_klaviyo__events").await, all);
    assert_eq!(
        scalar(&storage, "select count(*) from stg_klaviyo__events").await,
        all,
        "staging deduplicates the re-read"
    );
    assert!(all as u64 <= truth.totals.events);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_report_quota_fails_that_stream_alone_and_it_resumes_next_night() {
    let (store, truth) = brand();
    let night = at(2026, 11, 1, 4);
    // Four report requests are needed (two 60-day flow-series windows, two 90-day campaign windows).
    let cfg = KlaviyoFakeConfig { now: Some(night), report_daily_quota: 3, ..fake_config() };
    let fake = serve(store.clone(), cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = local_job(dir.path(), &fake.base_url());
    let at_night = |until| SyncSelection { until: Some(until), ..Default::default() };

    let err = execute(&job, &secrets(), Steps::Sync, &at_night(night), None).await.unwrap_err();
    let text = lifecycle_etl::error::Chain(&err).to_string();
    assert!(text.contains("daily quota is spent") && text.contains("_report"), "{text}");
    assert_eq!(err.exit_code(), 2);
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    let events: Vec<SimEvent> = store.read_all(Entity::Events).unwrap();
    let visible = events.iter().filter(|e| e.datetime < night).count() as i64;
    assert_eq!(
        scalar(&storage, "select count(distinct id) from raw_klaviyo__events").await,
        visible,
        "other streams land"
    );
    assert_eq!(
        scalar(&storage, "select count(distinct id) from raw_klaviyo__profiles").await as u64,
        truth.totals.profiles
    );

    // The next night the quota is back: the stopped stream continues from its last window.
    // (Mid-morning of the next account-local day: 2026-11-01 is also the end of daylight time.)
    let next = night + chrono::Duration::hours(30);
    fake.clock().set(next);
    let out = execute(&job, &secrets(), Steps::All, &at_night(next), None).await.unwrap();
    assert_eq!(out.streams["klaviyo.flow_series_report"].status, "ok");
    assert_eq!(out.streams["klaviyo.campaign_values_report"].status, "ok");
    let days = scalar(&storage, "select count(distinct send_date) from stg_klaviyo__flow_series_report").await;
    assert!(days >= 80, "daily series from Aug 1 on: {days} days");
    fake.shutdown().await;
}
