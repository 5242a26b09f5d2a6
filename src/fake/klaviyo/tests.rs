//! End-to-end tests over real HTTP against a tiny hand-written store.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value, json};

use super::{KlaviyoFakeConfig, KlaviyoLimits, serve};
use crate::fake::FakeServer;
use crate::fake::rate_limit::Limit;
use crate::simulate::model::{
    ConsentState, FlowTruth, SimCampaign, SimEvent, SimFlow, SimFlowMessage, SimMetric, SimProfile, SimShop, SimTotals,
    SimTruth,
};
use crate::simulate::store::{Entity, SimStore, StoreWriter};

const KEY: &str = "pk_test_key";
const PLACED: &str = "PlcOrd";
const RECEIVED: &str = "RcvEml";

fn at(d: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, d, h, m, s).unwrap()
}

/// Three days of events (1-3 March 2026, UTC), seven a day, several sharing a second so page
/// boundaries fall inside same-second runs; one event after the shop's last day.
fn events() -> Vec<SimEvent> {
    let mut out = Vec::new();
    for d in 1..=3 {
        for i in 0..7u32 {
            let placed = i % 3 == 0;
            // Events 1-3 of a day share one second.
            let t = if (1..=3).contains(&i) { at(d, 12, 0, 0) } else { at(d, i, 10, 0) };
            out.push(SimEvent {
                event_id: format!("ev{d}{i}"),
                metric_id: if placed { PLACED } else { RECEIVED }.into(),
                profile_id: format!("prof{}", i % 4),
                datetime: t,
                value_minor: placed.then_some(1234),
                flow_id: (!placed).then(|| "FLW001".to_string()),
                message_id: (!placed).then(|| "MSG001".to_string()),
                campaign_id: None,
                order_id: placed.then_some(1000 + u64::from(d * 10 + i)),
                attributed_flow_id: placed.then(|| "FLW001".to_string()),
                attributed_message_id: placed.then(|| "MSG001".to_string()),
                extra: Map::from_iter([("Campaign Name".to_string(), json!("Welcome ✨"))]),
            });
        }
    }
    out.push(SimEvent {
        event_id: "evfuture".into(),
        metric_id: RECEIVED.into(),
        profile_id: "prof0".into(),
        datetime: Utc.with_ymd_and_hms(2026, 3, 9, 0, 0, 0).unwrap(),
        value_minor: None,
        flow_id: None,
        message_id: Some("CMPMSG".into()),
        campaign_id: Some("CMP001".into()),
        order_id: None,
        attributed_flow_id: None,
        attributed_message_id: None,
        extra: Map::new(),
    });
    out.sort_by(|a, b| (a.datetime, &a.event_id).cmp(&(b.datetime, &b.event_id)));
    out
}

fn profiles() -> Vec<SimProfile> {
    (0..25)
        .map(|i| SimProfile {
            profile_id: format!("prof{i}"),
            email: Some(format!("p{i}@example.com")),
            phone: (i % 2 == 0).then(|| format!("+1555000{i:04}")),
            external_id: Some(format!("{}", 5000 + i)),
            first_name: "Ada".into(),
            last_name: format!("L{i}"),
            created_at: at(1, 0, 0, 0) - chrono::Duration::days(i64::from(i)),
            updated_at: at(1 + i % 3, i % 24, i, 0),
            timezone: Some("America/New_York".into()),
            country: Some("US".into()),
            holdout_bucket: (i * 7 % 100) as u8,
            email_consent: [ConsentState::Subscribed, ConsentState::Unsubscribed, ConsentState::NeverSubscribed]
                [(i % 3) as usize],
            email_consent_at: Some(at(1, 0, 0, 0)),
            sms_consent: ConsentState::NeverSubscribed,
            sms_consent_at: None,
            email_suppression: (i == 4).then(|| "HARD_BOUNCE".to_string()),
        })
        .collect()
}

fn flow_message(flow: &str, n: u32, channel: &str, delay_hours: u32) -> SimFlowMessage {
    SimFlowMessage {
        message_id: format!("MSG00{n}"),
        action_id: format!("8000000{n}"),
        flow_id: flow.into(),
        channel: channel.into(),
        name: format!("Step {n}"),
        subject: (channel == "email").then(|| format!("Subject {n}")),
        delay_hours,
        created_at: at(1, 0, 0, 0),
        updated_at: at(2, 0, 0, 0),
    }
}

/// FLW001 is an abandoned-checkout flow with a 10 % holdout and three messages.
fn flows() -> Vec<SimFlow> {
    (0..3)
        .map(|i| SimFlow {
            flow_id: format!("FLW00{i}"),
            name: format!("Flow {i}"),
            flow_type: if i == 1 { "abandoned_checkout" } else { "welcome" }.into(),
            status: "live".into(),
            archived: i == 2,
            trigger_type: if i == 1 { "Metric" } else { "Added to List" }.into(),
            trigger_metric: (i == 1).then(|| "Placed Order".to_string()),
            created_at: at(1, 0, 0, 0),
            updated_at: at(1 + i, 0, 0, 0),
            messages: if i == 1 {
                vec![
                    flow_message("FLW001", 1, "email", 0),
                    flow_message("FLW001", 2, "sms", 24),
                    flow_message("FLW001", 3, "email", 72),
                ]
            } else {
                Vec::new()
            },
        })
        .collect()
}

fn flow_truth(flow_id: &str, holdout_pct: u8) -> FlowTruth {
    FlowTruth {
        flow_id: flow_id.into(),
        flow_type: "abandoned_checkout".into(),
        purchase_lift: 0.3,
        outcome_window_days: 7,
        holdout_pct,
        entries: 0,
        treated_entries: 0,
        incremental_orders: 0,
        incremental_revenue_minor: 0,
        incremental_revenue_by_month: Default::default(),
        incremental_revenue_by_entry_month: Default::default(),
        entry_delay_hours: 0,
        exit_on_order: false,
    }
}

fn campaign(id: &str, channel: &str, send_at: DateTime<Utc>, deleted: bool) -> SimCampaign {
    SimCampaign {
        campaign_id: id.into(),
        message_id: format!("{id}-MSG"),
        name: format!("{} Spring Sale", send_at.format("%Y-%m-%d")),
        channel: channel.into(),
        send_at,
        created_at: send_at - chrono::Duration::days(2),
        updated_at: send_at + chrono::Duration::minutes(30),
        deleted,
    }
}

/// Email, SMS, archived (older than 18 months), deleted, scheduled and not-yet-created ones.
fn campaigns() -> Vec<SimCampaign> {
    vec![
        campaign("CMPE1", "email", at(2, 15, 0, 0), false),
        campaign("CMPE2", "email", Utc.with_ymd_and_hms(2024, 6, 1, 15, 0, 0).unwrap(), false),
        campaign("CMPS1", "sms", at(1, 17, 0, 0), false),
        campaign("CMPDEL", "email", at(1, 15, 0, 0), true),
        campaign("CMPSCH", "email", at(5, 15, 0, 0), false),
        campaign("CMPFUT", "email", at(8, 15, 0, 0), false),
    ]
}

fn write_store(dir: &std::path::Path) -> SimStore {
    let mut w = StoreWriter::create(dir).unwrap();
    w.write_shop(&SimShop {
        shop_id: 1,
        name: "Test Brand".into(),
        myshopify_domain: "test-brand.myshopify.com".into(),
        iana_timezone: "America/New_York".into(),
        currency: "USD".into(),
        country: "US".into(),
        start_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2026, 3, 3).unwrap(),
    })
    .unwrap();
    let metric = |id: &str, name: &str, integration: Option<&str>| SimMetric {
        metric_id: id.into(),
        name: name.into(),
        integration: integration.map(str::to_string),
        created_at: at(1, 0, 0, 0),
        updated_at: at(1, 0, 0, 0),
    };
    w.write_all(
        Entity::Metrics,
        &[
            metric(PLACED, "Placed Order", Some("Shopify")),
            metric(RECEIVED, "Received Email", Some("Klaviyo")),
            metric("Custom", "Custom Thing", None),
        ],
    )
    .unwrap();
    w.write_all(Entity::Flows, &flows()).unwrap();
    w.write_all(Entity::Campaigns, &campaigns()).unwrap();
    for e in events() {
        w.append(Entity::Events, e.datetime, &e).unwrap();
    }
    for p in profiles() {
        w.append(Entity::Profiles, p.updated_at, &p).unwrap();
    }
    w.finish_daily::<SimEvent, _>(Entity::Events, |e| (e.datetime, e.event_id.clone())).unwrap();
    w.finish_daily::<SimProfile, _>(Entity::Profiles, |p| (p.updated_at, p.profile_id.clone())).unwrap();
    w.write_truth(&SimTruth {
        seed: 1,
        scale: 1,
        totals: SimTotals::default(),
        flows: vec![flow_truth("FLW001", 10), flow_truth("FLW000", 0)],
        incidents: Vec::new(),
    })
    .unwrap();
    SimStore::open(dir).unwrap()
}

struct Harness {
    _dir: tempfile::TempDir,
    server: FakeServer,
    client: reqwest::Client,
}

async fn start(cfg: KlaviyoFakeConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = write_store(dir.path());
    let server = serve(store, KlaviyoFakeConfig { api_key: KEY.into(), ..cfg }).await.unwrap();
    Harness { _dir: dir, server, client: reqwest::Client::new() }
}

async fn default_harness() -> Harness {
    start(KlaviyoFakeConfig { rate_limits: false, ..KlaviyoFakeConfig::default() }).await
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

impl Harness {
    fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.server.base_url())
    }

    async fn get_with(&self, url: &str, key: Option<&str>, revision: Option<&str>) -> Reply {
        let mut req = self.client.get(url).header("accept", "application/vnd.api+json");
        if let Some(k) = key {
            req = req.header("Authorization", format!("Klaviyo-API-Key {k}"));
        }
        if let Some(r) = revision {
            req = req.header("revision", r);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        Reply { status, headers, text }
    }

    async fn get(&self, url: &str) -> Reply {
        self.get_with(url, Some(KEY), Some("2026-10-15")).await
    }

    async fn get_rev(&self, path: &str, revision: &str) -> Reply {
        self.get_with(&self.url(path), Some(KEY), Some(revision)).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        let resp = self
            .client
            .post(self.url(path))
            .header("Authorization", format!("Klaviyo-API-Key {KEY}"))
            .header("revision", "2026-10-15")
            .header("content-type", "application/vnd.api+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        Reply { status, headers, text }
    }

    /// Follows `links.next` to the end, returning every page's `data` ids.
    async fn all_ids(&self, first: &str) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut url = Some(self.url(first));
        while let Some(u) = url {
            let r = self.get(&u).await;
            assert_eq!(r.status, 200, "{}", r.text);
            let body = r.json();
            pages
                .push(body["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect());
            url = body["links"]["next"].as_str().map(str::to_string);
            assert!(pages.len() < 100, "pagination does not end");
        }
        pages
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn served_events() -> Vec<String> {
    events().into_iter().filter(|e| e.event_id != "evfuture").map(|e| e.event_id).collect()
}

#[tokio::test]
async fn events_paginate_every_record_once_in_order() {
    let h = default_harness().await;
    let pages = h.all_ids("/api/events?sort=datetime&page[size]=5").await;
    assert_eq!(pages.len(), 5, "21 events at 5 a page");
    assert!(pages[..4].iter().all(|p| p.len() == 5));
    assert_eq!(pages.concat(), served_events());

    let desc = h.all_ids("/api/events/?sort=-datetime&page[size]=4").await.concat();
    let mut expected = served_events();
    expected.reverse();
    assert_eq!(desc, expected);

    // Links are absolute, carry the request's filter/sort/size, and prev leads back.
    let p1 = h.get(&h.url("/api/events?sort=datetime&page[size]=5")).await.json();
    assert!(p1["links"]["prev"].is_null());
    let next = p1["links"]["next"].as_str().unwrap();
    assert!(
        next.starts_with(&h.server.base_url()) && next.contains("page%5Bsize%5D=5") && next.contains("sort=datetime")
    );
    let p2 = h.get(next).await.json();
    let back = h.get(p2["links"]["prev"].as_str().unwrap()).await.json();
    assert_eq!(back["data"], p1["data"]);
    h.server.shutdown().await;
}

#[tokio::test]
async fn events_render_klaviyo_shapes() {
    let h = default_harness().await;
    let r = h.get(&h.url("/api/events?page[size]=3&include=metric,attributions")).await;
    assert_eq!(r.headers["content-type"], "application/vnd.api+json");
    let body = r.json();
    let e = &body["data"][0];
    assert_eq!(e["id"], "ev10");
    assert_eq!(e["attributes"]["datetime"], "2026-03-01T00:10:00+00:00");
    assert_eq!(e["attributes"]["timestamp"], at(1, 0, 10, 0).timestamp());
    let props = &e["attributes"]["event_properties"];
    assert_eq!(props["$event_id"], "1010");
    assert!(props["$value"] == json!(12.34) || props["$value"] == json!("12.34"));
    assert_eq!(props["$attribution"]["$attributed_flow"], "FLW001");
    assert_eq!(props["Campaign Name"], "Welcome ✨");
    assert_eq!(e["relationships"]["metric"]["data"], json!({"type": "metric", "id": PLACED}));
    assert_eq!(e["relationships"]["profile"]["data"]["id"], "prof0");
    let msg = &body["data"][1]["attributes"]["event_properties"];
    assert_eq!(msg["$flow"], "FLW001");
    assert_eq!(msg["$message"], "MSG001");
    // Two metrics among three events: included is de-duplicated by (type, id).
    let included = body["included"].as_array().unwrap();
    let metrics: Vec<_> = included.iter().filter(|i| i["type"] == "metric").collect();
    assert_eq!(metrics.len(), 2);
    assert_eq!(included.iter().filter(|i| i["type"] == "attribution").count(), 1);
    h.server.shutdown().await;
}

#[tokio::test]
async fn event_filters_select_the_window_and_metric() {
    let h = default_harness().await;
    let day2 = served_events().into_iter().filter(|id| id.starts_with("ev2")).collect::<Vec<_>>();
    let comma =
        enc("greater-or-equal(datetime,2026-03-02T00:00:00+00:00),less-than(datetime,2026-03-03T00:00:00+00:00)");
    assert_eq!(h.all_ids(&format!("/api/events?filter={comma}&page[size]=2")).await.concat(), day2);
    let and = enc("and(greater-or-equal(datetime,2026-03-02T00:00:00Z),less-than(datetime,2026-03-03T00:00:00Z))");
    assert_eq!(h.all_ids(&format!("/api/events?filter={and}")).await.concat(), day2);
    // Exclusive lower and inclusive upper bounds, the upper one on a same-second run.
    let gt = enc("greater-than(datetime,2026-03-02T00:10:00+00:00),less-or-equal(datetime,2026-03-02T12:00:00+00:00)");
    let ids = h.all_ids(&format!("/api/events?filter={gt}&page[size]=4")).await.concat();
    assert_eq!(ids, vec!["ev24", "ev25", "ev26", "ev21", "ev22", "ev23"]);
    let metric = enc(&format!("equals(metric_id,\"{PLACED}\")"));
    let placed = h.all_ids(&format!("/api/events?filter={metric}")).await.concat();
    assert_eq!(placed.len(), 9);
    assert!(placed.iter().all(|id| id.ends_with('0') || id.ends_with('3') || id.ends_with('6')));
    h.server.shutdown().await;
}

#[tokio::test]
async fn future_events_appear_only_when_enabled() {
    let h = default_harness().await;
    let all = h.all_ids("/api/events?page[size]=1000").await.concat();
    assert!(!all.contains(&"evfuture".to_string()));
    h.server.clock().set_future_records(true);
    let all = h.all_ids("/api/events?page[size]=1000").await.concat();
    assert_eq!(all.last().unwrap(), "evfuture");
    // Moving the clock back hides days that have not happened yet.
    h.server.clock().set_future_records(false);
    h.server.clock().set(at(2, 0, 0, 0));
    assert_eq!(h.all_ids("/api/events?page[size]=1000").await.concat().len(), 7);
    h.server.shutdown().await;
}

#[tokio::test]
async fn auth_and_revision_errors_are_json_api() {
    let h = default_harness().await;
    let url = h.url("/api/metrics");
    for key in [None, Some("pk_wrong")] {
        let r = h.get_with(&url, key, Some("2026-10-15")).await;
        assert_eq!(r.status, 401);
        let err = &r.json()["errors"][0];
        assert_eq!(err["code"], "not_authenticated");
        assert_eq!(err["status"], 401);
        assert!(err["id"].is_string() && err["title"].is_string() && err["detail"].is_string());
    }
    for rev in [None, Some("2024-10-15"), Some("garbage")] {
        let r = h.get_with(&url, Some(KEY), rev).await;
        assert_eq!(r.status, 400, "{rev:?}");
        assert_eq!(r.json()["errors"][0]["code"], "invalid");
    }
    assert_eq!(h.get_with(&url, Some(KEY), Some("2025-10-15")).await.status, 200);
    assert_eq!(h.get_with(&url, Some(KEY), Some("2026-07-15.pre")).await.status, 200);
    // The log keeps the scheme but never the key.
    let log = h.server.requests();
    assert!(log.iter().all(|r| !format!("{:?}", r.headers).contains(KEY)));
    assert_eq!(log[1].header("authorization"), Some("Klaviyo-API-Key <redacted>"));
    h.server.shutdown().await;
}

#[tokio::test]
async fn bad_filters_and_sorts_are_400() {
    let h = default_harness().await;
    let cases = [
        ("/api/events", "greater-or-equal(datetime,\"2026-03-02T00:00:00+00:00\")", "filter"),
        ("/api/events", "greater-or-equal(datetime,'2026-03-02')", "filter"),
        ("/api/events", "contains(metric_id,\"x\")", "filter"),
        ("/api/events", "equals(flow_id,\"x\")", "filter"),
        ("/api/events", "greater-or-equal(datetime,", "filter"),
        ("/api/profiles", "greater-or-equal(updated,2026-03-02T00:00:00Z)", "filter"),
        ("/api/profiles", "less-or-equal(created,2026-03-02T00:00:00Z)", "filter"),
        ("/api/flows", "equals(archived,\"yes\")", "filter"),
    ];
    for (path, f, param) in cases {
        let r = h.get(&h.url(&format!("{path}?filter={}", enc(f)))).await;
        assert_eq!(r.status, 400, "{f}: {}", r.text);
        let err = &r.json()["errors"][0];
        assert_eq!(err["code"], "invalid");
        assert_eq!(err["source"]["parameter"], param, "{f}");
    }
    let r = h.get(&h.url("/api/events?sort=uuid")).await;
    assert_eq!((r.status, r.json()["errors"][0]["source"]["parameter"].clone()), (400, json!("sort")));
    assert_eq!(h.get(&h.url("/api/events?include=lists")).await.status, 400);
    assert_eq!(h.get(&h.url("/api/nope")).await.status, 404);
    h.server.shutdown().await;
}

#[tokio::test]
async fn page_size_maxima_are_enforced() {
    let h = default_harness().await;
    for (path, max) in [("/api/events", 1000), ("/api/profiles", 100), ("/api/flows", 50)] {
        assert_eq!(h.get(&h.url(&format!("{path}?page[size]={max}"))).await.status, 200, "{path}");
        let r = h.get(&h.url(&format!("{path}?page[size]={}", max + 1))).await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.json()["errors"][0]["source"]["parameter"], "page[size]");
    }
    assert_eq!(h.get(&h.url("/api/profiles?page[size]=0")).await.status, 400);
    // Before 2026-01-15 events had no page[size] and served 200 a page.
    let old = h.get_with(&h.url("/api/events?page[size]=10"), Some(KEY), Some("2025-10-15")).await;
    assert_eq!(old.status, 400);
    let old = h.get_with(&h.url("/api/events"), Some(KEY), Some("2025-10-15")).await;
    assert_eq!(old.json()["data"].as_array().unwrap().len(), 21);
    h.server.shutdown().await;
}

#[tokio::test]
async fn stale_and_foreign_cursors_are_400() {
    let h = start(KlaviyoFakeConfig {
        rate_limits: false,
        cursor_ttl: Duration::from_millis(300),
        ..KlaviyoFakeConfig::default()
    })
    .await;
    let p1 = h.get(&h.url("/api/events?page[size]=5")).await.json();
    let next = p1["links"]["next"].as_str().unwrap().to_string();
    assert_eq!(h.get(&next).await.status, 200);
    let cursor = next.split("page%5Bcursor%5D=").nth(1).unwrap().to_string();
    // A cursor from one endpoint is no good on another.
    assert_eq!(h.get(&h.url(&format!("/api/profiles?page[cursor]={cursor}"))).await.status, 400);
    assert_eq!(h.get(&h.url("/api/events?page[cursor]=bm90LWEtY3Vyc29y")).await.status, 400);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = h.get(&next).await;
    assert_eq!(r.status, 400);
    let err = &r.json()["errors"][0];
    assert_eq!(err["source"]["parameter"], "page[cursor]");
    assert!(err["detail"].as_str().unwrap().contains("expired"));
    h.server.shutdown().await;
}

#[tokio::test]
async fn rate_limits_throttle_with_retry_after() {
    let h = start(KlaviyoFakeConfig {
        limits: Some(KlaviyoLimits::uniform(Limit::new(2, 100))),
        ..KlaviyoFakeConfig::default()
    })
    .await;
    let url = h.url("/api/metrics");
    let first = h.get(&url).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["ratelimit-limit"], "100");
    assert_eq!(first.headers["ratelimit-remaining"], "99");
    assert!(first.headers.contains_key("ratelimit-reset"));
    assert_eq!(h.get(&url).await.status, 200);
    let third = h.get(&url).await;
    assert_eq!(third.status, 429);
    assert_eq!(third.headers["retry-after"], "1");
    assert!(!third.headers.contains_key("ratelimit-limit"));
    assert_eq!(third.json()["errors"][0]["code"], "throttled");
    // Buckets are per endpoint.
    assert_eq!(h.get(&h.url("/api/flows")).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(h.get(&url).await.status, 200);

    let steady = start(KlaviyoFakeConfig {
        limits: Some(KlaviyoLimits::uniform(Limit::new(10, 2))),
        ..KlaviyoFakeConfig::default()
    })
    .await;
    let url = steady.url("/api/accounts");
    steady.get(&url).await;
    steady.get(&url).await;
    let r = steady.get(&url).await;
    assert_eq!(r.status, 429);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((55..=60).contains(&wait), "steady window Retry-After {wait}");
    h.server.shutdown().await;
    steady.server.shutdown().await;
}

#[tokio::test]
async fn injected_faults_fire_once_each() {
    let h = default_harness().await;
    let url = h.url("/api/metrics");
    h.server.faults().throttle_next(2, 7);
    for _ in 0..2 {
        let r = h.get(&url).await;
        assert_eq!((r.status, r.headers["retry-after"].to_str().unwrap()), (429, "7"));
        assert_eq!(r.json()["errors"][0]["code"], "throttled");
    }
    assert_eq!(h.get(&url).await.status, 200);

    h.server.faults().fail_next(1, 503);
    h.server.faults().fail_next(1, 524);
    let r = h.get(&url).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["errors"][0]["status"], 503);
    let r = h.get(&url).await;
    assert_eq!(r.status, 524);
    assert!(r.text.contains("<html>"));
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));

    // Targeted: only /api/events is hit, and its 2nd successful page is garbage.
    h.server.faults().on("/api/events").malform_nth(2);
    assert_eq!(h.get(&url).await.status, 200);
    let p1 = h.get(&h.url("/api/events?page[size]=5")).await.json();
    let p2 = h.get(p1["links"]["next"].as_str().unwrap()).await;
    assert_eq!(p2.status, 200);
    assert!(serde_json::from_str::<Value>(&p2.text).is_err());
    assert_eq!(h.server.faults().pending(), 0);

    h.server.faults().truncate_next(1);
    let resp = h
        .client
        .get(&url)
        .header("Authorization", format!("Klaviyo-API-Key {KEY}"))
        .header("revision", "2026-10-15")
        .send()
        .await;
    let failed = match resp {
        Ok(r) => r.bytes().await.is_err(),
        Err(_) => true,
    };
    assert!(failed, "a truncated body must fail to read");

    h.server.faults().set_latency(Some(Duration::from_millis(150)));
    let t = std::time::Instant::now();
    assert_eq!(h.get(&url).await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(150));
    h.server.faults().clear();

    let log = h.server.requests();
    assert_eq!(log.iter().filter(|r| r.injected == Some("status")).count(), 4);
    assert!(log.iter().any(|r| r.injected == Some("malform")));
    assert_eq!(h.server.request_count("/api/events"), 2);
    assert_eq!(h.server.request_counts()["/api/metrics"], log.len() - 2);
    h.server.shutdown().await;
}

#[tokio::test]
async fn profiles_page_by_updated_with_subscriptions() {
    let h = default_harness().await;
    let mut expected = profiles();
    expected.sort_by(|a, b| (a.updated_at, &a.profile_id).cmp(&(b.updated_at, &b.profile_id)));
    let ids: Vec<String> = expected.iter().map(|p| p.profile_id.clone()).collect();
    let pages = h.all_ids("/api/profiles?sort=updated&page[size]=7").await;
    assert_eq!(pages.len(), 4);
    assert_eq!(pages.concat(), ids);
    // Default sort is by id; created sorts ascending and descending.
    let mut by_id = ids.clone();
    by_id.sort();
    assert_eq!(h.all_ids("/api/profiles").await.concat(), by_id);
    let by_created = h.all_ids("/api/profiles?sort=-created&page[size]=100").await.concat();
    assert_eq!(by_created.first().unwrap(), "prof0");

    let f = enc("greater-than(updated,2026-03-02T00:00:00+00:00),less-than(updated,2026-03-03T00:00:00+00:00)");
    let window = h.all_ids(&format!("/api/profiles?filter={f}&sort=updated&page[size]=3")).await.concat();
    let want: Vec<String> = expected
        .iter()
        .filter(|p| p.updated_at > at(2, 0, 0, 0) && p.updated_at < at(3, 0, 0, 0))
        .map(|p| p.profile_id.clone())
        .collect();
    assert_eq!(window, want);

    let body = h
        .get(&h.url(&format!(
            "/api/profiles?filter={}&additional-fields[profile]=subscriptions",
            enc("equals(id,\"prof4\")")
        )))
        .await
        .json();
    let p = &body["data"][0]["attributes"];
    assert_eq!(p["email"], "p4@example.com");
    let email = &p["subscriptions"]["email"]["marketing"];
    assert_eq!(email["consent"], "UNSUBSCRIBED");
    assert_eq!(email["suppression"][0]["reason"], "HARD_BOUNCE");
    assert_eq!(email["can_receive_email_marketing"], false);
    assert_eq!(p["subscriptions"]["sms"]["marketing"]["consent"], "NEVER_SUBSCRIBED");
    let plain = h.get(&h.url("/api/profiles?page[size]=1")).await.json();
    assert!(plain["data"][0]["attributes"].get("subscriptions").is_none());
    h.server.shutdown().await;
}

#[tokio::test]
async fn flows_metrics_and_accounts() {
    let h = default_harness().await;
    assert_eq!(h.all_ids("/api/flows").await.concat(), vec!["FLW000", "FLW001"]);
    let archived = h.all_ids(&format!("/api/flows?filter={}", enc("equals(archived,true)"))).await.concat();
    assert_eq!(archived, vec!["FLW002"]);
    let f = enc("greater-or-equal(updated,2026-03-02T00:00:00Z)");
    assert_eq!(h.all_ids(&format!("/api/flows?filter={f}&sort=-updated")).await.concat(), vec!["FLW001"]);

    let metrics = h.get(&h.url("/api/metrics")).await.json();
    let data = metrics["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert!(metrics["links"]["next"].is_null());
    let custom = data.iter().find(|m| m["id"] == "Custom").unwrap();
    assert!(custom["attributes"]["integration"].is_null());
    let placed = data.iter().find(|m| m["id"] == PLACED).unwrap();
    assert_eq!(placed["attributes"]["integration"]["name"], "Shopify");
    let shopify = h.all_ids(&format!("/api/metrics?filter={}", enc("equals(integration.name,\"Shopify\")"))).await;
    assert_eq!(shopify.concat(), vec![PLACED]);

    let acct = h.get(&h.url("/api/accounts")).await.json();
    assert_eq!(acct["data"][0]["type"], "account");
    assert_eq!(acct["data"][0]["attributes"]["timezone"], "America/New_York");
    assert_eq!(acct["data"][0]["attributes"]["preferred_currency"], "USD");
    h.server.shutdown().await;
}

#[tokio::test]
async fn sparse_fieldsets_trim_attributes() {
    let h = default_harness().await;
    let body = h.get(&h.url("/api/events?page[size]=1&fields[event]=datetime,uuid")).await.json();
    let attrs = body["data"][0]["attributes"].as_object().unwrap();
    assert_eq!(attrs.keys().collect::<Vec<_>>(), vec!["datetime", "uuid"]);
    h.server.shutdown().await;
}

// ---------------------------------------------------------------- flow graph

fn ids_of(body: &Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn flow_actions_graph_for_a_holdout_flow() {
    let h = default_harness().await;
    let pages = h.all_ids("/api/flows/FLW001/flow-actions?page[size]=3").await;
    assert_eq!(pages.len(), 3);
    let ids = pages.concat();
    // Holdout split, send 1, delay 24 h, order split, send 2, delay 48 h, send 3.
    assert_eq!(ids.len(), 7);
    assert_eq!([&ids[1], &ids[4], &ids[6]], ["80000001", "80000002", "80000003"]);
    let body = h.get(&h.url("/api/flows/FLW001/flow-actions")).await.json();
    let actions = body["data"].as_array().unwrap();
    let types: Vec<&str> = actions.iter().map(|a| a["attributes"]["definition"]["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["conditional-split", "send-email", "time-delay", "conditional-split", "send-sms", "time-delay", "send-email"]
    );
    let split = &actions[0];
    assert_eq!(split["type"], "flow-action");
    assert_eq!(split["relationships"]["flow"]["data"], json!({"type": "flow", "id": "FLW001"}));
    let def = &split["attributes"]["definition"];
    assert_eq!(def["id"], split["id"]);
    assert!(def["links"]["next_if_true"].is_null(), "the held-out branch ends");
    assert_eq!(def["links"]["next_if_false"], ids[1].as_str());
    let cond = &def["data"]["profile_filter"]["condition_groups"][0]["conditions"][0];
    assert_eq!(cond["property"], "properties['holdout_bucket']");
    assert_eq!(cond["filter"]["operator"], "less-than");
    assert_eq!(cond["filter"]["value"], 10);
    let attrs = split["attributes"].as_object().unwrap();
    assert_eq!(attrs.keys().collect::<Vec<_>>(), ["created", "definition", "updated"]);
    let email = &actions[1]["attributes"]["definition"];
    assert_eq!(email["links"]["next"], ids[2].as_str());
    let msg = &email["data"]["message"];
    assert_eq!((msg["id"].as_str(), msg["subject_line"].as_str()), (Some("MSG001"), Some("Subject 1")));
    assert_eq!((msg["smart_sending_enabled"].as_bool(), msg["transactional"].as_bool()), (Some(true), Some(false)));
    assert_eq!(email["data"]["status"], "live");
    let delay = &actions[5]["attributes"]["definition"]["data"];
    assert_eq!((delay["unit"].as_str(), delay["value"].as_u64()), (Some("hours"), Some(48)));
    assert!(actions[4]["attributes"]["definition"]["data"]["message"]["body"].as_str().unwrap().contains("Step 2"));
    assert!(actions[6]["attributes"]["definition"]["links"]["next"].is_null());
    // Ids are stable across servers.
    let again = default_harness().await;
    assert_eq!(again.all_ids("/api/flows/FLW001/flow-actions").await.concat(), ids);

    // The old shape, and the definition on the flow itself.
    let old = h.get_rev("/api/flows/FLW001/flow-actions", "2025-07-15").await.json();
    let old_types: Vec<&str> =
        old["data"].as_array().unwrap().iter().map(|a| a["attributes"]["action_type"].as_str().unwrap()).collect();
    assert_eq!(
        old_types,
        ["BOOLEAN_BRANCH", "SEND_EMAIL", "TIME_DELAY", "BOOLEAN_BRANCH", "SEND_SMS", "TIME_DELAY", "SEND_EMAIL"]
    );
    let a = &old["data"][1]["attributes"];
    assert!(a.get("definition").is_none());
    assert_eq!(a["send_options"]["use_smart_sending"], true);
    assert_eq!(a["status"], "live");
    for key in ["created", "updated", "settings", "tracking_options", "render_options", "badge_options"] {
        assert!(a.get(key).is_some(), "{key}");
    }
    let flow = h.get(&h.url("/api/flows/FLW001?additional-fields[flow]=definition")).await.json();
    assert_eq!(flow["data"]["id"], "FLW001");
    let def = &flow["data"]["attributes"]["definition"];
    assert_eq!(def["entry_action_id"], ids[0].as_str());
    assert_eq!(def["actions"].as_array().unwrap().len(), 7);
    assert_eq!(def["triggers"][0], json!({"type": "metric", "id": PLACED, "trigger_filter": null}));
    let plain = h.get(&h.url("/api/flows/FLW000")).await.json();
    assert!(plain["data"]["attributes"].get("definition").is_none());
    assert_eq!(h.all_ids("/api/flows/FLW000/flow-actions").await.concat(), Vec::<String>::new());
    let missing = h.get(&h.url("/api/flows/NOPE/flow-actions")).await;
    assert_eq!((missing.status, missing.json()["errors"][0]["code"].clone()), (404, json!("not_found")));
    assert_eq!(h.get(&h.url("/api/flows/FLW001/flow-actions?page[size]=51")).await.status, 400);
    h.server.shutdown().await;
}

#[tokio::test]
async fn flow_messages_of_send_actions_by_revision() {
    let h = default_harness().await;
    let body = h.get(&h.url("/api/flow-actions/80000001/flow-messages")).await.json();
    let m = &body["data"][0];
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!((m["type"].as_str(), m["id"].as_str()), (Some("flow-message"), Some("MSG001")));
    assert_eq!(m["attributes"]["channel"], "email");
    let content = &m["attributes"]["definition"]["content"];
    assert_eq!(m["attributes"]["definition"]["channel"], "email");
    assert_eq!(content["subject"], "Subject 1");
    assert_eq!(content["from_email"], "hello@test-brand.myshopify.com");
    assert_eq!(content["from_label"], "Test Brand");
    assert_eq!(m["relationships"]["flow-action"]["data"], json!({"type": "flow-action", "id": "80000001"}));
    // `channel` is absent on 2025-10-15 and the old shape has it flat.
    let r = h.get_rev("/api/flow-messages/MSG002", "2025-10-15").await.json();
    assert!(r["data"]["attributes"].get("channel").is_none());
    assert!(r["data"]["attributes"]["definition"]["content"]["body"].as_str().unwrap().contains("Reply STOP"));
    let old = h.get_rev("/api/flow-actions/80000003/flow-messages", "2025-07-15").await.json();
    let a = &old["data"][0]["attributes"];
    assert_eq!((a["name"].as_str(), a["channel"].as_str()), (Some("Step 3"), Some("email")));
    assert_eq!(a["content"]["subject"], "Subject 3");
    // A split has no messages; unknown ids are 404.
    let first = h.all_ids("/api/flows/FLW001/flow-actions").await.concat()[0].clone();
    assert_eq!(h.all_ids(&format!("/api/flow-actions/{first}/flow-messages")).await.concat(), Vec::<String>::new());
    let one = h.get(&h.url(&format!("/api/flow-actions/{first}"))).await.json();
    assert_eq!(one["data"]["attributes"]["definition"]["type"], "conditional-split");
    for path in ["/api/flow-actions/999/flow-messages", "/api/flow-actions/999", "/api/flow-messages/NOPE"] {
        let r = h.get(&h.url(path)).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["errors"][0]["code"], "not_found");
    }
    h.server.shutdown().await;
}

// ---------------------------------------------------------------- campaigns

#[tokio::test]
async fn campaigns_need_a_channel_filter_and_hide_archived() {
    let h = default_harness().await;
    for q in
        ["/api/campaigns", &format!("/api/campaigns?filter={}", enc("greater-than(updated_at,2026-01-01T00:00:00Z)"))]
    {
        let r = h.get(&h.url(q)).await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.json()["errors"][0]["source"]["parameter"], "filter");
    }
    let email = enc("equals(messages.channel,'email')");
    // Deleted and not-yet-created campaigns are not served; the 2024 one is archived.
    assert_eq!(h.all_ids(&format!("/api/campaigns?filter={email}")).await.concat(), ["CMPE1", "CMPSCH"]);
    let sms = enc("equals(messages.channel,'sms')");
    assert_eq!(h.all_ids(&format!("/api/campaigns?filter={sms}")).await.concat(), ["CMPS1"]);
    let archived = enc("and(equals(messages.channel,'email'),equals(archived,true))");
    assert_eq!(h.all_ids(&format!("/api/campaigns?filter={archived}")).await.concat(), ["CMPE2"]);
    let recent = enc(
        "and(equals(messages.channel,'email'),greater-or-equal(updated_at,2026-03-02T00:00:00Z),less-than(updated_at,2026-03-04T00:00:00Z))",
    );
    assert_eq!(h.all_ids(&format!("/api/campaigns?filter={recent}&sort=-updated_at")).await.concat(), ["CMPE1"]);

    let body = h.get(&h.url(&format!("/api/campaigns?filter={email}&sort=created_at"))).await.json();
    let c = &body["data"][0];
    assert_eq!(c["type"], "campaign");
    let a = &c["attributes"];
    assert_eq!((a["name"].as_str(), a["status"].as_str()), (Some("2026-03-02 Spring Sale"), Some("Sent")));
    assert_eq!(a["archived"], false);
    assert_eq!(a["send_strategy"]["method"], "static");
    assert_eq!(a["send_strategy"]["datetime"], "2026-03-02T15:00:00+00:00");
    assert_eq!(a["send_time"], "2026-03-02T15:00:00+00:00");
    assert_eq!(a["audiences"]["included"].as_array().unwrap().len(), 1);
    assert!(a["send_options"]["use_smart_sending"].is_boolean());
    assert_eq!(a["tracking_options"]["is_tracking_opens"], true);
    for key in ["created_at", "scheduled_at", "updated_at"] {
        assert!(a[key].is_string(), "{key}");
    }
    assert_eq!(body["data"][1]["attributes"]["status"], "Scheduled");
    assert_eq!(c["relationships"]["campaign-messages"]["data"][0]["id"], "CMPE1-MSG");
    assert_eq!(h.get(&h.url(&format!("/api/campaigns?filter={email}&page[size]=101"))).await.status, 400);
    assert_eq!(
        h.get(&h.url(&format!("/api/campaigns?filter={}", enc("equals(messages.channel,'fax')")))).await.status,
        400
    );
    h.server.shutdown().await;
}

#[tokio::test]
async fn campaign_messages_one_per_campaign() {
    let h = default_harness().await;
    let body = h.get(&h.url("/api/campaigns/CMPE1/campaign-messages")).await.json();
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let m = &body["data"][0];
    assert_eq!((m["type"].as_str(), m["id"].as_str()), (Some("campaign-message"), Some("CMPE1-MSG")));
    let def = &m["attributes"]["definition"];
    assert_eq!((def["channel"].as_str(), def["label"].as_str()), (Some("email"), Some("2026-03-02 Spring Sale")));
    assert_eq!(def["content"]["subject"], "Spring Sale");
    assert_eq!(m["attributes"]["send_times"], json!([{"datetime": "2026-03-02T15:00:00+00:00", "is_local": false}]));
    assert_eq!(m["relationships"]["campaign"]["data"], json!({"type": "campaign", "id": "CMPE1"}));
    let sms = h.get(&h.url("/api/campaign-messages/CMPS1-MSG")).await.json();
    assert!(sms["data"]["attributes"]["definition"]["content"]["body"].is_string());
    assert_eq!(h.get(&h.url("/api/campaigns/CMPS1")).await.json()["data"]["attributes"]["status"], "Sent");
    for path in
        ["/api/campaigns/CMPDEL/campaign-messages", "/api/campaign-messages/CMPDEL-MSG", "/api/campaigns/CMPFUT"]
    {
        assert_eq!(h.get(&h.url(path)).await.status, 404, "{path}");
    }
    h.server.shutdown().await;
}

// ---------------------------------------------------------------- lists and segments

#[tokio::test]
async fn lists_and_segments_page_by_ten_with_profile_counts() {
    let h = default_harness().await;
    let lists = h.all_ids("/api/lists").await;
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].len(), 6);
    assert_eq!(h.all_ids("/api/lists?page[size]=4").await.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2]);
    assert_eq!(h.get(&h.url("/api/lists?page[size]=11")).await.status, 400);
    let body = h.get(&h.url("/api/lists?additional-fields[list]=profile_count&sort=name")).await.json();
    let by_name = |body: &Value, name: &str| {
        body["data"].as_array().unwrap().iter().find(|l| l["attributes"]["name"] == name).unwrap().clone()
    };
    let newsletter = by_name(&body, "Newsletter");
    let subscribed = profiles().iter().filter(|p| p.email_consent == ConsentState::Subscribed).count();
    assert_eq!(newsletter["attributes"]["profile_count"], subscribed as u64);
    assert_eq!(newsletter["attributes"]["opt_in_process"], "double_opt_in");
    assert_eq!(by_name(&body, "SMS Subscribers")["attributes"]["profile_count"], 0);
    assert_eq!(newsletter["type"], "list");
    let plain = h.get(&h.url("/api/lists")).await.json();
    assert!(plain["data"][0]["attributes"].get("profile_count").is_none());

    let segs = h.get(&h.url("/api/segments?additional-fields[segment]=profile_count")).await.json();
    let holdout = by_name(&segs, "Holdout test group");
    let held = profiles().iter().filter(|p| p.holdout_bucket < 10).count();
    assert_eq!(holdout["attributes"]["profile_count"], held as u64);
    let a = &holdout["attributes"];
    assert!(a["definition"]["condition_groups"].is_array());
    assert_eq!((a["is_active"].as_bool(), a["is_processing"].as_bool()), (Some(true), Some(false)));
    assert!(a["is_starred"].is_boolean());
    let cut =
        h.get(&h.url(&format!("/api/segments?filter={}", enc("greater-than(updated,2025-09-01T00:00:00Z)")))).await;
    let n = cut.json()["data"].as_array().unwrap().len();
    assert!(n > 0 && n < 6, "{n}");
    let bad = h.get(&h.url(&format!("/api/lists?filter={}", enc("less-than(updated,2026-01-01T00:00:00Z)")))).await;
    assert_eq!((bad.status, bad.json()["errors"][0]["source"]["parameter"].clone()), (400, json!("filter")));
    h.server.shutdown().await;
}

// ---------------------------------------------------------------- reporting

const OPENED: &str = "OpnEml";
const CLICKED: &str = "ClkEml";
const BOUNCED: &str = "BncEml";
const UNSUB: &str = "UnsEml";
const SENT_SMS: &str = "SntSms";
const RECEIVED_SMS: &str = "RcvSms";
const CLICKED_SMS: &str = "ClkSms";

/// Hand-placed sends, engagement and attributed orders around a 2-4 March (New York) window.
fn report_events() -> Vec<SimEvent> {
    let ev = |n: usize, metric: &str, profile: &str, t: DateTime<Utc>, msg: Option<&str>| SimEvent {
        event_id: format!("r{n:03}"),
        metric_id: metric.into(),
        profile_id: profile.into(),
        datetime: t,
        value_minor: None,
        flow_id: msg.filter(|m| m.starts_with("MSG")).map(|_| "FLW001".to_string()),
        message_id: msg.map(str::to_string),
        campaign_id: msg.filter(|m| m.starts_with("CMP")).map(|m| m.trim_end_matches("-MSG").to_string()),
        order_id: None,
        attributed_flow_id: None,
        attributed_message_id: None,
        extra: Map::new(),
    };
    let order = |n: usize, profile: &str, t: DateTime<Utc>, msg: &str, value: i64| SimEvent {
        value_minor: Some(value),
        order_id: Some(n as u64),
        attributed_flow_id: msg.starts_with("MSG").then(|| "FLW001".to_string()),
        attributed_message_id: Some(msg.to_string()),
        ..ev(n, PLACED, profile, t, None)
    };
    let mut bot = ev(7, CLICKED, "p1", at(2, 15, 41, 0), Some("MSG001"));
    bot.extra.insert("Bot Click".into(), json!(true));
    let mut unsub = ev(8, UNSUB, "p1", at(2, 15, 45, 0), None);
    unsub.extra.insert("Method".into(), json!("Unsubscribe Link"));
    let mut out = vec![
        // p1: sent, opened, clicked on 2 March; bought on the 3rd.
        ev(1, RECEIVED, "p1", at(2, 15, 0, 0), Some("MSG001")),
        ev(2, OPENED, "p1", at(2, 15, 30, 0), Some("MSG001")),
        ev(3, CLICKED, "p1", at(2, 15, 40, 0), Some("MSG001")),
        bot,
        unsub,
        order(9, "p1", at(3, 12, 0, 0), "MSG001", 5000),
        // p2: sent at 21:00 on 2 March New York time (3 March UTC); bought after the window.
        ev(10, RECEIVED, "p2", at(3, 2, 0, 0), Some("MSG001")),
        order(11, "p2", at(6, 10, 0, 0), "MSG001", 2500),
        // p3: sent before the window: its order does not count.
        ev(12, RECEIVED, "p3", at(1, 20, 0, 0), Some("MSG001")),
        order(13, "p3", at(2, 12, 0, 0), "MSG001", 9999),
        // p4: two sends on 4 March, one order.
        ev(14, RECEIVED, "p4", at(4, 14, 0, 0), Some("MSG001")),
        ev(15, RECEIVED, "p4", at(4, 16, 0, 0), Some("MSG001")),
        order(16, "p4", at(4, 18, 0, 0), "MSG001", 1000),
        // p5: SMS on 3 March.
        ev(17, SENT_SMS, "p5", at(3, 17, 0, 0), Some("MSG002")),
        ev(18, RECEIVED_SMS, "p5", at(3, 17, 0, 5), Some("MSG002")),
        ev(19, CLICKED_SMS, "p5", at(3, 17, 10, 0), Some("MSG002")),
        order(20, "p5", at(3, 18, 0, 0), "MSG002", 3000),
        // p6: an attributed order without any send is not a conversion.
        order(21, "p6", at(3, 9, 0, 0), "MSG001", 700),
        // p7: bounced.
        ev(22, BOUNCED, "p7", at(2, 16, 0, 0), Some("MSG001")),
        // Campaign sends: one live campaign, one deleted (no message id).
        ev(23, RECEIVED, "p1", at(3, 15, 0, 0), Some("CMPE1-MSG")),
        order(24, "p1", at(3, 16, 0, 0), "CMPE1-MSG", 4200),
        ev(25, RECEIVED, "p2", at(3, 15, 0, 0), None),
    ];
    out.last_mut().unwrap().campaign_id = Some("CMPDEL".into());
    out.sort_by(|a, b| (a.datetime, &a.event_id).cmp(&(b.datetime, &b.event_id)));
    out
}

fn write_report_store(dir: &std::path::Path) -> SimStore {
    write_store(dir);
    std::fs::remove_dir_all(dir.join("events")).unwrap();
    let metric = |id: &str, name: &str| SimMetric {
        metric_id: id.into(),
        name: name.into(),
        integration: Some("Klaviyo".into()),
        created_at: at(1, 0, 0, 0),
        updated_at: at(1, 0, 0, 0),
    };
    let mut metrics: Vec<SimMetric> = SimStore::open(dir).unwrap().read_all(Entity::Metrics).unwrap();
    metrics.extend([
        metric(OPENED, "Opened Email"),
        metric(CLICKED, "Clicked Email"),
        metric(BOUNCED, "Bounced Email"),
        metric(UNSUB, "Unsubscribed"),
        metric(SENT_SMS, "Sent SMS"),
        metric(RECEIVED_SMS, "Received SMS"),
        metric(CLICKED_SMS, "Clicked SMS"),
    ]);
    let mut w = ReopenedWriter::new(dir);
    w.metrics(&metrics);
    w.events(&report_events());
    SimStore::open(dir).unwrap()
}

/// Rewrites parts of a finished store (the writer's `create` would empty it).
struct ReopenedWriter<'a> {
    dir: &'a std::path::Path,
}

impl<'a> ReopenedWriter<'a> {
    fn new(dir: &'a std::path::Path) -> Self {
        Self { dir }
    }

    fn metrics(&mut self, metrics: &[SimMetric]) {
        let lines: Vec<String> = metrics.iter().map(|m| serde_json::to_string(m).unwrap()).collect();
        std::fs::write(self.dir.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
    }

    fn events(&mut self, events: &[SimEvent]) {
        let events_dir = self.dir.join("events");
        std::fs::create_dir_all(&events_dir).unwrap();
        let mut days: std::collections::BTreeMap<NaiveDate, Vec<String>> = Default::default();
        for e in events {
            days.entry(e.datetime.date_naive()).or_default().push(serde_json::to_string(e).unwrap());
        }
        for (d, lines) in days {
            std::fs::write(events_dir.join(format!("{d}.jsonl")), lines.join("\n") + "\n").unwrap();
        }
    }
}

async fn report_harness(cfg: KlaviyoFakeConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = write_report_store(dir.path());
    let now = Utc.with_ymd_and_hms(2026, 3, 11, 4, 0, 0).unwrap(); // midnight in New York (EDT)
    let server = serve(store, KlaviyoFakeConfig { api_key: KEY.into(), now: Some(now), ..cfg }).await.unwrap();
    Harness { _dir: dir, server, client: reqwest::Client::new() }
}

fn series_body(statistics: &[&str], timeframe: Value, interval: &str) -> Value {
    json!({"data": {"type": "flow-series-report", "attributes": {
        "statistics": statistics,
        "timeframe": timeframe,
        "interval": interval,
        "conversion_metric_id": PLACED,
        "group_by": ["flow_id", "flow_message_id", "send_channel"],
    }}})
}

fn window() -> Value {
    json!({"start": "2026-03-02T00:00:00", "end": "2026-03-05T00:00:00"})
}

/// Conversions and value (minor units) per message computed straight from the events: each
/// attributed order goes to the latest send of its message to that profile, and counts when
/// that send falls in [start, end) and the order within 5 days after `end`.
fn expected_conversions(start: DateTime<Utc>, end: DateTime<Utc>) -> std::collections::BTreeMap<String, (u64, i64)> {
    let events = report_events();
    let sends = [RECEIVED, BOUNCED, SENT_SMS];
    let mut out: std::collections::BTreeMap<String, (u64, i64)> = Default::default();
    for o in events.iter().filter(|e| e.metric_id == PLACED) {
        let Some(m) = &o.attributed_message_id else { continue };
        let send = events
            .iter()
            .filter(|s| {
                sends.contains(&s.metric_id.as_str())
                    && s.profile_id == o.profile_id
                    && s.message_id.as_ref() == Some(m)
                    && s.datetime <= o.datetime
                    && s.datetime >= start
            })
            .map(|s| s.datetime)
            .max();
        if let Some(t) = send
            && t < end
            && o.datetime <= end + chrono::Duration::days(5)
        {
            let e = out.entry(m.clone()).or_default();
            e.0 += 1;
            e.1 += o.value_minor.unwrap_or(0);
        }
    }
    out
}

#[tokio::test]
async fn flow_series_report_by_send_date() {
    let h = report_harness(KlaviyoFakeConfig { rate_limits: false, ..KlaviyoFakeConfig::default() }).await;
    let stats = [
        "recipients",
        "delivered",
        "bounced",
        "opens",
        "opens_unique",
        "clicks",
        "clicks_unique",
        "unsubscribes",
        "conversions",
        "conversion_uniques",
        "conversion_value",
        "revenue_per_recipient",
        "open_rate",
        "message_segment_count_sum",
    ];
    let r = h.post("/api/flow-series-reports", &series_body(&stats, window(), "daily")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/vnd.api+json");
    let body = r.json();
    assert_eq!(body["data"]["type"], "flow-series-report");
    assert!(body["links"]["next"].is_null());
    let attrs = &body["data"]["attributes"];
    assert_eq!(
        attrs["date_times"],
        json!(["2026-03-02T00:00:00-05:00", "2026-03-03T00:00:00-05:00", "2026-03-04T00:00:00-05:00"])
    );
    let results = attrs["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let email = &results[0];
    assert_eq!(email["groupings"], json!({"flow_id": "FLW001", "flow_message_id": "MSG001", "send_channel": "email"}));
    let s = &email["statistics"];
    assert_eq!(s["recipients"], json!([3, 0, 1]));
    assert_eq!(s["delivered"], json!([2, 0, 2]));
    assert_eq!(s["bounced"], json!([1, 0, 0]));
    assert_eq!(s["opens"], json!([1, 0, 0]));
    assert_eq!(s["clicks"], json!([1, 0, 0]), "bot clicks are not counted");
    assert_eq!(s["unsubscribes"], json!([1, 0, 0]));
    assert_eq!(s["conversions"], json!([2, 0, 1]));
    assert_eq!(s["conversion_value"], json!([75.0, 0.0, 10.0]));
    assert_eq!(s["revenue_per_recipient"], json!([25.0, 0.0, 10.0]));
    assert_eq!(s["open_rate"], json!([0.5, 0.0, 0.0]));
    let sms = &results[1];
    assert_eq!(sms["groupings"]["send_channel"], "sms");
    assert_eq!(sms["statistics"]["delivered"], json!([0, 1, 0]));
    assert_eq!(sms["statistics"]["clicks_unique"], json!([0, 1, 0]));
    assert_eq!(sms["statistics"]["message_segment_count_sum"], json!([0, 1, 0]));

    // Totals equal a direct computation from the store's events.
    let (start, end) =
        (Utc.with_ymd_and_hms(2026, 3, 2, 5, 0, 0).unwrap(), Utc.with_ymd_and_hms(2026, 3, 5, 5, 0, 0).unwrap());
    let want = expected_conversions(start, end);
    for res in results {
        let msg = res["groupings"]["flow_message_id"].as_str().unwrap();
        let sum_u = |k: &str| res["statistics"][k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>();
        let value: f64 =
            res["statistics"]["conversion_value"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum();
        let (n, minor) = want.get(msg).copied().unwrap_or_default();
        assert_eq!(sum_u("conversions"), n, "{msg}");
        assert!((value - minor as f64 / 100.0).abs() < 1e-9, "{msg}: {value} vs {minor}");
    }

    // Values reports: scalars, no date_times; campaigns skip deleted ones.
    let mut values = series_body(&["conversions", "conversion_value", "recipients"], window(), "daily");
    values["data"]["type"] = json!("campaign-values-report");
    values["data"]["attributes"].as_object_mut().unwrap().remove("interval");
    values["data"]["attributes"]["group_by"] = json!(["campaign_id", "campaign_message_id"]);
    let r = h.post("/api/campaign-values-reports", &values).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    assert!(body["data"]["attributes"].get("date_times").is_none());
    let results = body["data"]["attributes"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["groupings"], json!({"campaign_id": "CMPE1", "campaign_message_id": "CMPE1-MSG"}));
    assert_eq!(results[0]["statistics"], json!({"conversions": 1, "conversion_value": 42.0, "recipients": 1}));

    // A filter narrows the groupings.
    let mut filtered = series_body(&["delivered"], window(), "weekly");
    filtered["data"]["attributes"]["filter"] = json!("equals(send_channel,\"sms\")");
    let body = h.post("/api/flow-series-reports/", &filtered).await.json();
    assert_eq!(body["data"]["attributes"]["results"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"]["attributes"]["date_times"].as_array().unwrap().len(), 1);
    h.server.shutdown().await;
}

#[tokio::test]
async fn report_bodies_are_validated() {
    let h = report_harness(KlaviyoFakeConfig { rate_limits: false, ..KlaviyoFakeConfig::default() }).await;
    let long = json!({"start": "2025-01-01T00:00:00", "end": "2026-01-02T00:00:00"});
    let sixty_one = json!({"start": "2026-01-01T00:00:00", "end": "2026-03-03T00:00:00"});
    let mut cases = vec![
        (series_body(&["recipients", "revenue"], window(), "daily"), "/data/attributes/statistics"),
        (series_body(&["recipients"], long, "monthly"), "/data/attributes/timeframe"),
        (series_body(&["recipients"], sixty_one.clone(), "daily"), "/data/attributes/interval"),
        (series_body(&["recipients"], window(), "yearly"), "/data/attributes/interval"),
        (series_body(&["recipients"], json!({"key": "last_decade"}), "daily"), "/data/attributes/timeframe/key"),
        (series_body(&["recipients"], json!({"start": "2026-03-02"}), "daily"), "/data/attributes/timeframe"),
    ];
    let mut no_msg = series_body(&["recipients"], window(), "daily");
    no_msg["data"]["attributes"]["group_by"] = json!(["flow_id", "send_channel"]);
    cases.push((no_msg, "/data/attributes/group_by"));
    let mut metric = series_body(&["recipients"], window(), "daily");
    metric["data"]["attributes"]["conversion_metric_id"] = json!("NoSuch");
    cases.push((metric, "/data/attributes/conversion_metric_id"));
    let mut missing = series_body(&["recipients"], window(), "daily");
    missing["data"]["attributes"].as_object_mut().unwrap().remove("conversion_metric_id");
    cases.push((missing, "/data/attributes/conversion_metric_id"));
    let mut wrong_type = series_body(&["recipients"], window(), "daily");
    wrong_type["data"]["type"] = json!("flow-values-report");
    cases.push((wrong_type, "/data/type"));
    for (body, pointer) in cases {
        let r = h.post("/api/flow-series-reports", &body).await;
        assert_eq!(r.status, 400, "{pointer}: {}", r.text);
        let err = &r.json()["errors"][0];
        assert_eq!((err["code"].as_str(), err["source"]["pointer"].as_str()), (Some("invalid"), Some(pointer)));
    }
    // Weekly allows the 61 days, and a relative key works.
    assert_eq!(
        h.post("/api/flow-series-reports", &series_body(&["recipients"], sixty_one, "weekly")).await.status,
        200
    );
    let r = h
        .post("/api/flow-series-reports", &series_body(&["recipients"], json!({"key": "last_30_days"}), "daily"))
        .await;
    assert_eq!(r.json()["data"]["attributes"]["date_times"].as_array().unwrap().len(), 30);
    h.server.shutdown().await;
}

#[tokio::test]
async fn report_daily_quota_and_per_minute_limit() {
    let h = report_harness(KlaviyoFakeConfig {
        limits: Some(KlaviyoLimits::uniform(Limit::new(100, 1000))),
        report_daily_quota: 2,
        ..KlaviyoFakeConfig::default()
    })
    .await;
    let body = series_body(&["recipients"], window(), "daily");
    assert_eq!(h.post("/api/flow-series-reports", &body).await.status, 200);
    let mut values = body.clone();
    values["data"]["type"] = json!("flow-values-report");
    values["data"]["attributes"].as_object_mut().unwrap().remove("interval");
    assert_eq!(h.post("/api/flow-values-reports", &values).await.status, 200);
    // The quota is shared by every report endpoint and waits until the account's midnight.
    for path in ["/api/flow-series-reports", "/api/campaign-values-reports"] {
        let r = h.post(path, &body).await;
        assert_eq!(r.status, 429, "{path}");
        let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert_eq!(wait, 24 * 3600, "now is midnight in New York");
        assert_eq!(r.json()["errors"][0]["code"], "throttled");
    }
    assert_eq!(h.get(&h.url("/api/metrics")).await.status, 200, "other endpoints are unaffected");
    h.server.clock().advance(chrono::Duration::hours(20));
    let r = h.post("/api/flow-series-reports", &body).await;
    assert_eq!(r.headers["retry-after"], "14400");
    h.server.clock().advance(chrono::Duration::hours(4));
    assert_eq!(h.post("/api/flow-series-reports", &body).await.status, 200, "a new day, a new quota");

    // The published 1/s and 2/min limits.
    let real = report_harness(KlaviyoFakeConfig::default()).await;
    assert_eq!(real.post("/api/flow-series-reports", &body).await.status, 200);
    let r = real.post("/api/flow-series-reports", &body).await;
    assert_eq!((r.status, r.headers["retry-after"].to_str().unwrap()), (429, "1"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(real.post("/api/flow-series-reports", &body).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = real.post("/api/flow-series-reports", &body).await;
    assert_eq!(r.status, 429);
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((50..=60).contains(&wait), "steady window Retry-After {wait}");
    h.server.shutdown().await;
    real.server.shutdown().await;
}

// ---------------------------------------------------------------- new faults

#[tokio::test]
async fn reset_empty_page_and_duplicate_faults() {
    let h = default_harness().await;
    let url = h.url("/api/metrics");
    let send = |u: String| {
        h.client
            .get(u)
            .header("Authorization", format!("Klaviyo-API-Key {KEY}"))
            .header("revision", "2026-10-15")
            .send()
    };
    h.server.faults().reset_next(1);
    assert!(send(url.clone()).await.is_err(), "a reset connection gives no response");
    assert_eq!(h.get(&url).await.status, 200);
    // A truncated body still delivers the head first.
    h.server.faults().truncate_next(1);
    let resp = send(url.clone()).await.expect("the head arrives before the body breaks");
    assert_eq!(resp.status(), 200);
    assert!(resp.bytes().await.is_err());

    // An empty page with a next link loses nothing.
    h.server.faults().on("/api/events").empty_page_next(1);
    let p1 = h.get(&h.url("/api/events?page[size]=5")).await.json();
    assert_eq!(p1["data"], json!([]));
    assert!(p1["links"]["next"].is_string());
    let pages = h.all_ids("/api/events?page[size]=5").await;
    assert_eq!(pages.concat(), served_events());
    let mut followed = ids_of(&h.get(p1["links"]["next"].as_str().unwrap()).await.json());
    assert_eq!(followed.len(), 5);
    followed.truncate(1);
    assert_eq!(followed, ["ev10"]);

    // The last record of a page comes again first on the next one.
    h.server.faults().on("/api/events").duplicate_across_pages(1);
    let pages = h.all_ids("/api/events?page[size]=5").await;
    assert_eq!(pages[0].last(), pages[1].first());
    assert_eq!(pages[1].len(), 6);
    let mut seen = pages.concat();
    seen.dedup();
    assert_eq!(seen, served_events());
    assert_eq!(h.server.faults().pending(), 0);
    let log = h.server.requests();
    for name in ["reset", "truncate", "empty_page", "duplicate"] {
        assert_eq!(log.iter().filter(|r| r.injected == Some(name)).count(), 1, "{name}");
    }
    h.server.shutdown().await;
}
