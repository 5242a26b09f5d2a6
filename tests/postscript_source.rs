//! The Postscript source against its fake over real HTTP (apis.md 4, 6.4): every listed
//! subscriber lands exactly once in staging even while pages shift under the reader, partner
//! auth, the 15/s limit's 429s, and the keywords.

mod common;

use std::collections::BTreeSet;

use common::*;
use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::fake::FakeServer;
use lifecycle_etl::fake::postscript::{DEFAULT_API_KEY, DEFAULT_PARTNER_KEY, PostscriptFakeConfig, serve, subscribers};
use lifecycle_etl::pipeline::Steps;
use lifecycle_etl::storage::Storage;

const KEY_ENV: &str = "TEST_POSTSCRIPT_KEY";
const PARTNER_ENV: &str = "TEST_POSTSCRIPT_PARTNER";

fn job(dir: &std::path::Path, base_url: &str, partner: bool) -> Job {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let partner_line = if partner { format!("partner_key_env = \"{PARTNER_ENV}\"\n") } else { String::new() };
    let text = format!(
        "[job]\nname = \"pstest\"\nreporting_timezone = \"America/New_York\"\nreporting_currency = \"USD\"\n\
         [storage]\nurl = \"file://{}\"\n[run]\nlock_ttl_seconds = 3\nbatch_rows = 2000\n\
         [sources.postscript]\nbase_url = \"{base_url}\"\napi_key_env = \"{KEY_ENV}\"\n{partner_line}\
         start_date = \"2026-08-01\"\n",
        data.display()
    );
    let path = dir.join("pstest.toml");
    std::fs::write(&path, text).unwrap();
    Job::load(&path).unwrap()
}

fn secrets() -> Secrets {
    Secrets::default().with(KEY_ENV, DEFAULT_API_KEY).with(PARTNER_ENV, DEFAULT_PARTNER_KEY)
}

/// The ids the fake lists: every non-pending subscriber.
fn listed_ids() -> BTreeSet<String> {
    subscribers(&brand().0).unwrap().into_iter().filter(|s| !s.pending).map(|s| s.id).collect()
}

async fn sync_and_stage(job: &Job, fake: &FakeServer) -> Storage {
    run_ok(job, &secrets(), Steps::Sync, fake.clock().now()).await;
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    let seeds = lifecycle_etl::seeds::load(job).unwrap();
    lifecycle_etl::transform::run(&storage, &seeds, &lifecycle_etl::manifest::new_run_id()).await.unwrap();
    storage
}

async fn staged_ids(storage: &Storage) -> BTreeSet<String> {
    rows(storage, "select subscriber_id from stg_postscript__subscribers")
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_land_once_while_pages_shift() {
    // Small pages, and after the third page the 4 earliest subscribers are updated: each moves
    // to the end of the listing, and every later row slides back into pages already read.
    let cfg = PostscriptFakeConfig { page_size: 5, touch_after_pages: Some((3, 4)), ..Default::default() };
    let fake = serve(brand().0.clone(), cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), &fake.base_url(), false);
    let storage = sync_and_stage(&job, &fake).await;

    let truth = listed_ids();
    assert!(truth.len() > 25, "the brand has several pages of subscribers: {}", truth.len());
    assert!(truth.iter().any(|id| !id.starts_with("s_")), "legacy unprefixed ids are served");
    assert_eq!(staged_ids(&storage).await, truth, "every listed subscriber, once");
    // The touched subscribers' latest versions carry the fake's now.
    let now = fake.clock().now().format("%Y-%m-%dT%H:%M:%S").to_string();
    assert_eq!(
        scalar(
            &storage,
            &format!("select count(*) from stg_postscript__subscribers where updated_at = timestamp '{now}'")
        )
        .await,
        4
    );
    // Every list request asked for the ascending sort; the reader restarted its filter rather
    // than only counting pages.
    let lists: Vec<_> = fake.requests().into_iter().filter(|r| r.path_only() == "/api/v2/subscribers").collect();
    assert!(lists.iter().all(|r| r.path.contains("sort=updated_at__asc")), "{lists:?}");
    assert!(lists.iter().filter(|r| r.path.contains("updated_at__gte=")).count() >= lists.len() - 1);
    // Consent and keywords.
    let subscribed = subscribers(&brand().0).unwrap().into_iter().filter(|s| !s.pending && s.promotional).count();
    assert_eq!(
        scalar(&storage, "select count(*) from stg_postscript__subscribers where sms_consent = 'subscribed'").await,
        subscribed as i64
    );
    assert_eq!(scalar(&storage, "select count(*) from stg_postscript__keywords").await, 5);
    // No plain phone or email leaves raw.
    assert_eq!(
        scalar(&storage, "select count(*) from stg_postscript__subscribers where length(phone_sha256) <> 64").await,
        0
    );

    // A second night re-reads only the overlap and changes nothing in staging.
    let before = rows(&storage, "select * from stg_postscript__subscribers order by subscriber_id").await;
    fake.clear_requests();
    let storage = sync_and_stage(&job, &fake).await;
    let second = fake.request_count("/api/v2/subscribers");
    assert!(second <= 2, "the watermark holds: {second} list requests on the second night");
    let after = rows(&storage, "select * from stg_postscript__subscribers order by subscriber_id").await;
    // Everything but `_landed_at` (the overlap's copies are newer landings of the same versions).
    let strip = |rows: Vec<Vec<String>>| {
        rows.into_iter()
            .map(|mut r| {
                r.truncate(10);
                r
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(before), strip(after));
    fake.shutdown().await;
}

/// Naive page numbers over the same shifting listing skip rows: the reason for the restart.
#[tokio::test]
async fn the_fake_shifts_pages_under_a_page_number_reader() {
    let cfg = PostscriptFakeConfig { page_size: 5, touch_after_pages: Some((2, 3)), ..Default::default() };
    let fake = serve(brand().0.clone(), cfg).await.unwrap();
    let client = reqwest::Client::new();
    let mut seen = BTreeSet::new();
    let mut page = 1;
    loop {
        let body: serde_json::Value = client
            .get(format!("{}/api/v2/subscribers?sort=updated_at__asc&page={page}", fake.base_url()))
            .bearer_auth(DEFAULT_API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for s in body["subscribers"].as_array().unwrap() {
            seen.insert(s["id"].as_str().unwrap().to_string());
        }
        if body["page_info"]["page"] == body["page_info"]["total_pages"] {
            break;
        }
        page += 1;
    }
    let missed = listed_ids().difference(&seen).count();
    assert!(missed > 0, "page numbers alone miss rows that slid back a page");
    // Validation errors and auth failures in Postscript's shapes.
    let bad = client
        .get(format!("{}/api/v2/subscribers?updated_at__gte=yesterday", fake.base_url()))
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(body["errors"][0]["ctx"]["param"], "updated_at__gte", "{body}");
    let denied = client.get(format!("{}/api/v2/me", fake.base_url())).bearer_auth("sk_other").send().await.unwrap();
    assert_eq!(denied.status(), 403);
    let pending = subscribers(&brand().0).unwrap().into_iter().find(|s| s.pending);
    if let Some(p) = pending {
        let r = client
            .get(format!("{}/api/v2/subscribers/{}", fake.base_url(), p.id))
            .bearer_auth(DEFAULT_API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "pending subscribers cannot be fetched");
    }
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_auth_and_throttling() {
    // Five requests a second: the 15/s pacer runs into 429s, which carry no Retry-After.
    let cfg = PostscriptFakeConfig { page_size: 3, per_second: 5, ..Default::default() };
    let fake = serve(brand().0.clone(), cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), &fake.base_url(), true);
    let storage = sync_and_stage(&job, &fake).await;
    assert_eq!(staged_ids(&storage).await, listed_ids());
    let requests = fake.requests();
    assert!(requests.iter().any(|r| r.status == 429), "the limit was reached");
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer <redacted>")
                && r.header("x-postscript-shop-token").is_some()),
        "partner key as bearer, shop key in its header"
    );

    // A wrong shop key is a 403 that names the source and stops nothing else.
    let bad = Secrets::default().with(KEY_ENV, "sk_wrong").with(PARTNER_ENV, DEFAULT_PARTNER_KEY);
    let selection = lifecycle_etl::pipeline::SyncSelection::default();
    let out = lifecycle_etl::pipeline::execute(&job, &bad, Steps::Sync, &selection, None).await;
    let text = match out {
        Ok(o) => format!("{:?}", o.streams),
        Err(e) => e.to_string(),
    };
    assert!(text.contains("postscript") && text.contains("403"), "{text}");
    assert!(!text.contains("sk_wrong"), "the key stays out of errors");
    fake.shutdown().await;
}

/// `check --connect` reads the shop and compares the receiver's webhook token with Postscript's,
/// never printing either; the fake also serves a send by id and the webhook endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_connect_names_the_shop_and_verifies_the_webhook_token() {
    use lifecycle_etl::fake::postscript::DEFAULT_WEBHOOK_TOKEN;
    let fake = serve(brand().0.clone(), PostscriptFakeConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let plain = job(dir.path(), &fake.base_url(), false);
    let text = std::fs::read_to_string(&plain.path).unwrap()
        + "[webhooks]\nlisten = \"127.0.0.1:0\"\n[webhooks.postscript]\ntoken_env = \"TEST_PS_WEBHOOK_TOKEN\"\n";
    std::fs::write(&plain.path, text).unwrap();
    let job = Job::load(&plain.path).unwrap();

    let good = secrets().with("TEST_PS_WEBHOOK_TOKEN", DEFAULT_WEBHOOK_TOKEN);
    let lines = lifecycle_etl::check::run(&job, &good, true).await.unwrap();
    let shop = brand().0.shop().unwrap().name;
    assert!(lines.iter().any(|l| l.contains("source postscript: connected") && l.contains(&shop)), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("token matches")), "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains(DEFAULT_WEBHOOK_TOKEN)));

    let wrong = secrets().with("TEST_PS_WEBHOOK_TOKEN", "not-the-token");
    let err = lifecycle_etl::check::run(&job, &wrong, true).await.unwrap_err().to_string();
    assert!(err.contains("webhooks.postscript.token_env") && err.contains("401"), "{err}");
    assert!(!err.contains("not-the-token") && !err.contains(DEFAULT_WEBHOOK_TOKEN), "{err}");

    // A send by id (the program's), the webhook enum and registration rules.
    let client = reqwest::Client::new();
    let auth = format!("Bearer {DEFAULT_API_KEY}");
    let get = |path: String| client.get(format!("{}{path}", fake.base_url())).header("authorization", &auth).send();
    let subscribers = lifecycle_etl::fake::postscript::warehouse::postscript_subscribers(&brand().0).unwrap();
    let program = lifecycle_etl::simulate::sms_program::generate(
        &brand().0,
        lifecycle_etl::simulate::sms_program::SmsPlatform::Postscript,
        &subscribers,
    )
    .unwrap();
    let m = &program.messages[0];
    let sent: serde_json::Value =
        get(format!("/api/v2/sent_messages/{}", m.send_id)).await.unwrap().json().await.unwrap();
    assert_eq!(
        (sent["body"].as_str(), sent["credits_used"].as_u64()),
        (Some(m.body.as_str()), Some(u64::from(m.segments)))
    );
    assert_eq!(get("/api/v2/sent_messages/msg_nope".into()).await.unwrap().status(), 404);
    assert_eq!(get("/api/v2/webhooks/example?event=shop.bogus".into()).await.unwrap().status(), 400);
    let post = |body: serde_json::Value| {
        client.post(format!("{}/api/v2/webhooks", fake.base_url())).header("authorization", &auth).json(&body).send()
    };
    let plain_http = serde_json::json!({"callback_url": "http://x.example/h", "event": "shop.subscriber.opt_in"});
    assert_eq!(post(plain_http).await.unwrap().status(), 400, "HTTPS only");
    let ok = serde_json::json!({"callback_url": "https://x.example/h", "event": "shop.shop.email_collected"});
    assert_eq!(post(ok).await.unwrap().status(), 201);
    let listed: serde_json::Value = get("/api/v2/webhooks".into()).await.unwrap().json().await.unwrap();
    assert_eq!(listed["webhooks"].as_array().map(Vec::len), Some(1));
    fake.shutdown().await;
}
