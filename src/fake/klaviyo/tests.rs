//! End-to-end tests over real HTTP against a tiny hand-written store.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value, json};

use super::{KlaviyoFakeConfig, KlaviyoLimits, serve};
use crate::fake::FakeServer;
use crate::fake::rate_limit::Limit;
use crate::simulate::model::{ConsentState, SimEvent, SimFlow, SimMetric, SimProfile, SimShop, SimTotals, SimTruth};
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

fn flows() -> Vec<SimFlow> {
    (0..3)
        .map(|i| SimFlow {
            flow_id: format!("FLW00{i}"),
            name: format!("Flow {i}"),
            flow_type: "welcome".into(),
            status: "live".into(),
            archived: i == 2,
            trigger_type: "Added to List".into(),
            trigger_metric: None,
            created_at: at(1, 0, 0, 0),
            updated_at: at(1 + i, 0, 0, 0),
            messages: Vec::new(),
        })
        .collect()
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
    for e in events() {
        w.append(Entity::Events, e.datetime, &e).unwrap();
    }
    for p in profiles() {
        w.append(Entity::Profiles, p.updated_at, &p).unwrap();
    }
    w.finish_daily::<SimEvent, _>(Entity::Events, |e| (e.datetime, e.event_id.clone())).unwrap();
    w.finish_daily::<SimProfile, _>(Entity::Profiles, |p| (p.updated_at, p.profile_id.clone())).unwrap();
    w.write_truth(&SimTruth { seed: 1, scale: 1, totals: SimTotals::default(), flows: Vec::new() }).unwrap();
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
