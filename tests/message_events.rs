//! fct_message_events and int_consent_history over the simulated brand served by the fake
//! Klaviyo: event counts per canonical type and channel against the simulator's truth, flow
//! attribution of sends, and consent intervals ending in each profile's current consent.

mod common;

use std::collections::BTreeMap;

use common::*;
use lifecycle_etl::storage::Storage;

/// The shipped map_event_type seed: (platform, raw_event_name) -> (channel, event_type).
fn event_type_map() -> BTreeMap<(String, String), (String, String)> {
    let text = include_str!("../jobs/defaults/seeds/map_event_type.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap().trim(), "platform,raw_event_name,channel,event_type");
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.trim().split(',').collect();
            assert_eq!(f.len(), 4, "{l}");
            ((f[0].into(), f[1].into()), (f[2].into(), f[3].into()))
        })
        .collect()
}

/// (first column, count) pairs of a grouped query.
async fn counts(storage: &Storage, sql: &str) -> BTreeMap<String, u64> {
    rows(storage, sql).await.into_iter().map(|r| (r[0].clone(), r[1].parse().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_events_and_consent_history_match_the_simulated_brand() {
    let (_, truth) = brand();
    let (_dir, _job, storage) = run_klaviyo_brand().await;

    // Expected counts: the simulator's events per metric, mapped through the seed.
    let map = event_type_map();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_type_channel: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0;
    for (metric, n) in &truth.totals.events_by_metric {
        if let Some((channel, event_type)) = map.get(&("klaviyo".to_string(), metric.clone())) {
            *by_type.entry(event_type.clone()).or_default() += n;
            *by_type_channel.entry(format!("{event_type}/{channel}")).or_default() += n;
            total += n;
        }
    }
    assert!(total > 0 && by_type.contains_key("delivered") && by_type.contains_key("sent"), "{by_type:?}");

    let fct = "fct_message_events";
    assert_eq!(scalar(&storage, &format!("select count(*) from {fct}")).await as u64, total, "message events");
    let got = counts(&storage, &format!("select event_type, count(*) from {fct} group by event_type")).await;
    assert_eq!(got, by_type, "events per canonical type");
    let got = counts(
        &storage,
        &format!("select event_type || '/' || channel, count(*) from {fct} group by event_type, channel"),
    )
    .await;
    assert_eq!(got, by_type_channel, "events per canonical type and channel");
    // The channel split follows the metric mapping row by row, not just in total.
    let seed_rows: Vec<String> = map
        .iter()
        .filter(|((p, _), _)| p == "klaviyo")
        .map(|((_, n), (c, t))| format!("('{}', '{c}', '{t}')", n.replace('\'', "''")))
        .collect();
    let mismatched = format!(
        "select count(*) from {fct} f join (values {}) as m(raw_event_name, channel, event_type) \
         on m.raw_event_name = f.raw_event_name where m.channel <> f.channel or m.event_type <> f.event_type",
        seed_rows.join(", ")
    );
    assert_eq!(scalar(&storage, &mismatched).await, 0, "channel and type follow map_event_type");

    // Sends: flow sends name flows that exist, with flow_key = md5('klaviyo|' || flow_id).
    let flow_sends =
        scalar(&storage, &format!("select count(*) from {fct} where is_send and flow_id is not null")).await;
    assert!(flow_sends > 0, "some sends come from flows");
    let orphans = format!(
        "select count(*) from {fct} f left join stg_klaviyo__flows fl on fl.flow_id = f.flow_id \
         where f.flow_id is not null and fl.flow_id is null"
    );
    assert_eq!(scalar(&storage, &orphans).await, 0, "flow ids exist in stg_klaviyo__flows");
    let bad_kind = format!(
        "select count(*) from {fct} where (flow_id is not null) <> (message_kind = 'flow') \
         or (flow_id is not null and flow_key <> md5('klaviyo|' || flow_id)) \
         or (flow_id is null and flow_key is not null)"
    );
    assert_eq!(scalar(&storage, &bad_kind).await, 0, "flow_key and message_kind");
    let unknown_messages = format!(
        "select count(*) from {fct} f left join stg_klaviyo__flow_messages m on m.flow_message_id = f.flow_message_id \
         where f.flow_message_id is not null and m.flow_message_id is null"
    );
    assert_eq!(scalar(&storage, &unknown_messages).await, 0, "flow message ids exist");
    // Cost on sends only; SMS sends carry segments.
    let cost = format!(
        "select count(*) from {fct} where (message_cost is not null) <> is_send \
         or (is_send and channel = 'sms' and (sms_segments is null or sms_segments < 1))"
    );
    assert_eq!(scalar(&storage, &cost).await, 0, "cost and segments on sends only");
    let hours = format!(
        "select count(*) from {fct} where local_hour_of_week is null or local_hour_of_week not between 0 and 167"
    );
    assert_eq!(scalar(&storage, &hours).await, 0, "local hour of week in 0..167");
    let dates = format!("select count(*) from {fct} where event_date is null");
    assert_eq!(scalar(&storage, &dates).await, 0, "event dates in the reporting timezone");

    // Properties read from the raw record: machine opens, click URLs without query, SMS segments.
    let props = rows(
        &storage,
        &format!(
            "select sum(case when is_machine_open then 1 else 0 end), \
             sum(case when event_type = 'clicked' and (click_url is null or click_url like '%?%') then 1 else 0 end), \
             sum(case when cost_basis = 'platform_reported' then 1 else 0 end), \
             sum(case when is_send and channel = 'sms' then 1 else 0 end), \
             cast(sum(message_cost) as varchar) from {fct}"
        ),
    )
    .await;
    eprintln!("machine opens, bad click urls, reported segments, sms sends, cost: {:?}", props[0]);
    assert_ne!(props[0][0], "0", "machine opens are flagged");
    assert_eq!(props[0][1], "0", "click URLs present and stripped");
    assert_eq!(props[0][2], props[0][3], "SMS sends carry the platform's segment count");

    // Recipient-local hour of week, recomputed with the tz database.
    let slots =
        rows(&storage, &format!("select occurred_at, recipient_tz, local_hour_of_week, tz_source from {fct}")).await;
    for r in &slots {
        use chrono::{Datelike, Timelike};
        let at: chrono::DateTime<chrono::Utc> = r[0].parse().unwrap();
        let tz: chrono_tz::Tz = r[1].parse().unwrap();
        let local = at.with_timezone(&tz);
        let expected = local.weekday().num_days_from_monday() * 24 + local.hour();
        assert_eq!(r[2], expected.to_string(), "local hour of week of {r:?}");
    }
    let by_source = counts(&storage, &format!("select tz_source, count(*) from {fct} group by tz_source")).await;
    eprintln!("recipient timezone sources: {by_source:?}");

    let with_person = scalar(&storage, &format!("select count(*) from {fct} where person_key is not null")).await;
    let with_profile =
        scalar(&storage, &format!("select count(*) from {fct} where platform_profile_id is not null")).await;
    eprintln!("person_key resolved on {with_person} of {total} events ({with_profile} with a profile id)");

    // Consent history: per profile and channel, intervals chain in order and alternate status.
    let ch = "int_consent_history";
    assert!(scalar(&storage, &format!("select count(*) from {ch} where change_source = 'klaviyo_event'")).await > 0);
    let broken_chain = format!(
        "select count(*) from {ch} a join {ch} b on a.platform = b.platform \
         and a.identifier_value = b.identifier_value and a.channel = b.channel and b.interval_seq = a.interval_seq + 1 \
         where a.valid_to is null or a.valid_to <> b.valid_from or a.valid_from > b.valid_from or a.status = b.status"
    );
    assert_eq!(scalar(&storage, &broken_chain).await, 0, "intervals chain in time order");
    let current = format!(
        "select count(*) from (select platform, identifier_value, channel, count(*) as n, \
         sum(case when is_current then 1 else 0 end) as cur, max(interval_seq) as last \
         from {ch} group by platform, identifier_value, channel) where cur <> 1 or n <> last"
    );
    assert_eq!(scalar(&storage, &current).await, 0, "one current interval, sequence 1..n");
    let not_last = format!("select count(*) from {ch} where is_current <> (valid_to is null)");
    assert_eq!(scalar(&storage, &not_last).await, 0);
    // The latest state is the profile's current consent in staging, for every profile.
    for channel in ["email", "sms"] {
        let sql = format!(
            "select count(*) from stg_klaviyo__profiles p left join {ch} h on h.platform = 'klaviyo' \
             and h.identifier_value = p.profile_id and h.channel = '{channel}' and h.is_current \
             where p.{channel}_consent is not null and (h.status is null or h.status <> p.{channel}_consent)"
        );
        assert_eq!(scalar(&storage, &sql).await, 0, "current {channel} consent equals the profile's");
    }
    // Every consent event of the simulator opens an interval or repeats the status in force.
    let changes = scalar(&storage, &format!("select count(*) from {ch} where platform = 'klaviyo'")).await as u64;
    let consent_events: u64 = ["subscribed", "unsubscribed"].iter().filter_map(|t| by_type.get(*t)).sum();
    assert!(changes >= 1 && changes <= consent_events + 2 * truth.totals.profiles, "{changes} intervals");
    assert!(consent_events <= truth.totals.consent_changes, "{consent_events} > {}", truth.totals.consent_changes);
}
