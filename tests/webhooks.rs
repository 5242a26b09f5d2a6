//! The webhook receiver over real HTTP on 127.0.0.1 and the nightly compaction behind it:
//! every genuine delivery lands exactly once, forged, malformed and oversized ones land nothing,
//! a receiver killed with SIGKILL loses nothing it acknowledged, re-runs are idempotent, and
//! the metrics count what happened.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::rows;
use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::fake::webhook_sender::{self, Credentials, Delivery, EventKey, Kind, SenderConfig};
use lifecycle_etl::pipeline::{self, Steps, SyncSelection};
use lifecycle_etl::storage::Storage;
use lifecycle_etl::webhooks::metrics::read_counter;
use lifecycle_etl::webhooks::{Platform, event, server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY_ENV: &str = "TEST_ATTENTIVE_WEBHOOK_SIGNING_KEY";
const TOKEN_ENV: &str = "TEST_POSTSCRIPT_WEBHOOK_TOKEN";
const KEY: &str = "attentive-signing-key-for-tests";
const TOKEN: &str = "postscript-shared-token-for-tests";
const MAX_BODY: usize = 64 * 1024;

fn creds() -> Credentials {
    Credentials { attentive_signing_key: KEY.into(), postscript_token: TOKEN.into() }
}

fn secrets() -> Secrets {
    Secrets::default().with(KEY_ENV, KEY).with(TOKEN_ENV, TOKEN)
}

/// A job with only `[webhooks]`, storing under `dir/data`; compaction takes everything at once.
fn job(dir: &Path) -> (Job, PathBuf) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let text = format!(
        r#"[job]
name = "webhooktest"
reporting_timezone = "America/New_York"
reporting_currency = "USD"
[storage]
url = "file://{}"
[webhooks]
listen = "127.0.0.1:0"
max_body_bytes = {MAX_BODY}
settle_seconds = 0
[webhooks.attentive]
signing_key_env = "{KEY_ENV}"
[webhooks.postscript]
token_env = "{TOKEN_ENV}"
"#,
        data.display()
    );
    let path = dir.join("webhooktest.toml");
    std::fs::write(&path, text).unwrap();
    (Job::load(&path).unwrap(), path)
}

/// Runs the nightly sync (the compaction, since the job has no pull sources).
async fn compact(job: &Job) -> pipeline::Outcome {
    pipeline::execute(job, &secrets(), Steps::Sync, &SyncSelection::default(), None).await.unwrap()
}

fn records(out: &pipeline::Outcome, p: Platform) -> u64 {
    let s = &out.streams[&format!("{}.webhook_events", p.name())];
    assert_eq!(s.status, "ok", "{p}: {:?}", s.error);
    s.records
}

/// Every landed row of a platform as the sender's event key.
async fn landed(storage: &Storage, p: Platform) -> Vec<EventKey> {
    let sql = format!(
        "select event_type, subscriber_id, cast(event_time as bigint), message_id from raw_{}__webhook_events",
        p.name()
    );
    let text = |s: &String| (s != "NULL").then(|| s.clone());
    rows(storage, &sql)
        .await
        .into_iter()
        .map(|r| EventKey {
            platform: p,
            event_type: r[0].clone(),
            subscriber_id: text(&r[1]),
            event_time_micros: r[2].parse().unwrap(),
            message_id: text(&r[3]),
        })
        .collect()
}

fn of(truth: &BTreeSet<EventKey>, p: Platform) -> BTreeSet<EventKey> {
    truth.iter().filter(|k| k.platform == p).cloned().collect()
}

/// Stored delivery objects of a platform (file names only).
fn objects(dir: &Path, p: Platform) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "json") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("data/webhooks").join(p.name()), &mut out);
    out
}

async fn get_text(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Sends a request by hand and returns the status line's code: headers, then `body` (only the
/// headers, announcing a body ten times the limit, when `body` is empty), chunked when `chunked`.
/// The body is written while the answer is read: a receiver that refuses early stops reading,
/// and the writes that fail then are expected.
async fn raw_post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    chunked: bool,
) -> u16 {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if chunked {
        head.push_str("transfer-encoding: chunked\r\n\r\n");
    } else {
        head.push_str(&format!("content-length: {}\r\n\r\n", if body.is_empty() { 10 * MAX_BODY } else { body.len() }));
    }
    let mut wire = head.into_bytes();
    if chunked {
        for c in body.chunks(8 * 1024) {
            wire.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            wire.extend_from_slice(c);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
    } else {
        wire.extend_from_slice(body);
    }
    let writer = tokio::spawn(async move {
        for piece in wire.chunks(4 * 1024) {
            if wr.write_all(piece).await.is_err() {
                return;
            }
        }
        // Keep the write half open until the answer is read (dropping it would half-close).
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await.expect("an answer").unwrap();
    writer.abort();
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status line in {line:?}"))
}

/// A job in a new folder, its storage, and a receiver serving it in this process.
async fn start_receiver() -> (tempfile::TempDir, Job, Storage, server::Running) {
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = job(dir.path());
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    let receiver = server::start(&job, &secrets(), None).await.unwrap();
    (dir, job, storage, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn genuine_deliveries_land_once_and_rejected_ones_land_nothing() {
    let (dir, job, storage, receiver) = start_receiver().await;
    let base = receiver.base_url();
    assert_eq!(get_text(&format!("{base}/healthz")).await.0, 200);

    let plan = webhook_sender::generate(&SenderConfig { events: 300, ..Default::default() }, &creds());
    let truth = plan.truth();
    let statuses = webhook_sender::deliver_all(&base, &plan.deliveries, 8).await;
    for (d, s) in plan.deliveries.iter().zip(&statuses) {
        assert_eq!(s.as_ref().ok(), Some(&d.kind.expected_status()), "{:?} {}", d.kind, d.platform);
    }

    // Oversized bodies: declared by content-length (refused before the body is sent at all), and
    // chunked without a length (refused while reading). Both correctly signed.
    let big = serde_json::to_vec(&serde_json::json!({"event": "shop.test", "pad": "x".repeat(2 * MAX_BODY)})).unwrap();
    let ps_headers = webhook_sender::signed_headers(Platform::Postscript, &creds(), &big);
    assert_eq!(raw_post(receiver.addr, Platform::Postscript.path(), &ps_headers, b"", false).await, 413);
    assert_eq!(raw_post(receiver.addr, Platform::Postscript.path(), &ps_headers, &big, true).await, 413);
    let at_headers = webhook_sender::signed_headers(Platform::Attentive, &creds(), &big);
    assert_eq!(raw_post(receiver.addr, Platform::Attentive.path(), &at_headers, &big, true).await, 413);
    // A body just under the limit is read whole (and refused here only for not being JSON).
    let small = vec![b'x'; MAX_BODY - 1];
    let h = webhook_sender::signed_headers(Platform::Attentive, &creds(), &small);
    assert_eq!(raw_post(receiver.addr, Platform::Attentive.path(), &h, &small, true).await, 400);

    // Storage holds only genuine events (forged, malformed and oversized bodies wrote nothing).
    let (_, metrics) = get_text(&format!("{base}/metrics")).await;
    for p in Platform::ALL {
        let sent = |k: Kind| plan.deliveries.iter().filter(|d| d.platform == p && d.kind == k).count() as u64;
        let counter = |name: &str, labels: String| read_counter(&metrics, name, &labels).unwrap();
        let accepted = counter("webhook_deliveries_accepted_total", format!("platform=\"{p}\""));
        assert_eq!(accepted, sent(Kind::Genuine) + sent(Kind::Duplicate), "{p} accepted");
        let rejected = |reason: &str| {
            counter("webhook_deliveries_rejected_total", format!("platform=\"{p}\",reason=\"{reason}\""))
        };
        assert_eq!(rejected("unauthorized"), sent(Kind::BadSignature) + sent(Kind::MissingSignature), "{p}");
        let too_large = if p == Platform::Postscript { 2 } else { 1 };
        assert_eq!(rejected("too_large"), too_large, "{p}");
        assert_eq!(rejected("malformed"), sent(Kind::Malformed) + u64::from(p == Platform::Attentive), "{p}");
        assert_eq!(rejected("storage_error"), 0);
        let stored = objects(dir.path(), p);
        let already = counter("webhook_deliveries_already_stored_total", format!("platform=\"{p}\""));
        assert_eq!(stored.len() as u64, accepted - already, "{p}: one object per stored delivery");
        let bytes: u64 = stored.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
        assert_eq!(counter("webhook_bytes_written_total", format!("platform=\"{p}\"")), bytes, "{p} bytes");
        for f in &stored {
            let e = event::parse(p, &std::fs::read(f).unwrap()).unwrap();
            assert!(
                truth.iter().any(|k| k.platform == p && k.event_time_micros == e.event_time.timestamp_micros()),
                "{} is not a genuine event",
                f.display()
            );
        }
    }

    // Compaction: each distinct genuine event once, duplicates collapsed.
    let out = compact(&job).await;
    for p in Platform::ALL {
        let want = of(&truth, p);
        assert_eq!(records(&out, p), want.len() as u64, "{p} rows landed");
        let got = landed(&storage, p).await;
        assert_eq!(got.len(), want.len(), "{p}: no duplicate rows");
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want, "{p}: the sender's events, exactly");
    }
    // Renamed events kept as sent and normalized; unknown types kept.
    let normalized = rows(
        &storage,
        "select event_type, event_type_normalized, count(*) from (select event_type, event_type_normalized from raw_attentive__webhook_events \
         union all select event_type, event_type_normalized from raw_postscript__webhook_events) group by 1, 2 order by 1",
    )
    .await;
    let map: BTreeMap<String, String> = normalized.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(map["phone.unsubscribed"], "sms.unsubscribed");
    assert_eq!(map["sms.unsubscribed"], "sms.unsubscribed");
    assert_eq!(map["shop.shop.email_collected"], "shop.email_collected");
    assert_eq!(map["shop.email_collected"], "shop.email_collected");
    assert_eq!(map["sms.delivery_receipt"], "sms.delivery_receipt");
    // Encoded click ids are kept as given and decoded beside.
    let clicks = rows(
        &storage,
        "select count(*) filter (where message_id <> message_id_decoded), \
         count(*) filter (where message_id_decoded !~ '^[0-9]+$') \
         from raw_attentive__webhook_events where event_type like '%link_click'",
    )
    .await;
    assert!(clicks[0][0].parse::<u64>().unwrap() > 0, "some click ids come encoded");
    assert_eq!(clicks[0][1], "0", "every click id decodes to the numeric message id");
    let sample =
        rows(&storage, "select phone, email, received_at, object_key from raw_attentive__webhook_events").await;
    assert!(
        sample.iter().any(|r| r[0] == "NULL") && sample.iter().any(|r| r[1] == "NULL"),
        "optional fields may be absent"
    );
    assert!(sample.iter().all(|r| r[2] != "NULL" && r[3].starts_with("webhooks/attentive/date=")));

    // A re-run lands nothing; platform retries after the compaction land nothing either.
    let again = compact(&job).await;
    let retries: Vec<Delivery> = plan.deliveries.iter().filter(|d| d.kind == Kind::Genuine).take(50).cloned().collect();
    let statuses = webhook_sender::deliver_all(&base, &retries, 4).await;
    assert!(statuses.iter().all(|s| s.as_ref().ok() == Some(&200)));
    let after_retries = compact(&job).await;
    let read: u64 = after_retries.streams.values().map(|s| s.pages).sum();
    assert_eq!(read, retries.len() as u64, "the retried copies were read, and dropped as duplicates");
    for p in Platform::ALL {
        assert_eq!(records(&again, p), 0, "{p}: re-run");
        assert_eq!(records(&after_retries, p), 0, "{p}: retried deliveries");
        assert_eq!(landed(&storage, p).await.len(), of(&truth, p).len(), "{p} rows after re-runs");
    }
    receiver.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_payloads_are_quarantined_without_blocking_the_rest() {
    let (dir, job, storage, receiver) = start_receiver().await;
    let client = reqwest::Client::new();
    let bodies: [&[u8]; 3] = [
        br#"{"type": "sms.sent", "subscriber": {"external_id": 1}}"#,
        br#"{"type": "sms.sent", "timestamp": 1763600000000, "subscriber": {"external_id": 1}, "message": {"id": "5"}}"#,
        br#"{"type": "sms.sent", "timestamp": 1763600000000, "subscriber": {"external_id": 1}, "message": {"id": "5"}} "#,
    ];
    for body in bodies {
        let d = Delivery {
            platform: Platform::Attentive,
            kind: Kind::Genuine,
            headers: webhook_sender::signed_headers(Platform::Attentive, &creds(), body),
            body: body.to_vec(),
            event: None,
        };
        assert_eq!(webhook_sender::deliver(&client, &receiver.base_url(), &d).await.unwrap(), 200);
    }
    let out = compact(&job).await;
    let s = &out.streams["attentive.webhook_events"];
    assert_eq!((s.records, s.quarantined_pages, s.pages), (1, 1, 3), "{s:?}");
    let quarantined: Vec<serde_json::Value> = storage
        .list(&format!("_quarantine/{}/attentive/webhook_events", out.run_id))
        .await
        .unwrap()
        .iter()
        .map(|m| {
            serde_json::from_slice(&std::fs::read(dir.path().join("data").join(m.location.as_ref())).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0]["field"], "timestamp");
    assert_eq!(quarantined[0]["source"], "attentive");
    let key = quarantined[0]["object_key"].as_str().unwrap();
    assert!(dir.path().join("data").join(key).is_file(), "the object stays in place");
    // The watermark moved past it: the next run neither lands nor reports anything again.
    let again = compact(&job).await;
    assert_eq!(again.streams["attentive.webhook_events"].pages, 0);
    assert_eq!(again.streams["attentive.webhook_events"].quarantined_pages, 0);
    assert_eq!(rows(&storage, "select count(*) from raw_attentive__webhook_events").await[0][0], "1");
    receiver.shutdown().await.unwrap();
}

/// The real binary, serving; returns the child and the base URL it printed. Its log goes to a
/// file beside the job, shown when it fails to start.
fn spawn_receiver(job_path: &Path) -> (std::process::Child, String) {
    let log_path = job_path.with_extension(format!("{}.log", std::time::UNIX_EPOCH.elapsed().unwrap().as_nanos()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lifecycle-etl"))
        .args(["serve-webhooks", "--job", &job_path.display().to_string()])
        .env(KEY_ENV, KEY)
        .env(TOKEN_ENV, TOKEN)
        .env("LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let Some(url) = line.trim().strip_prefix("listening on ") else {
        let status = child.wait().unwrap();
        panic!("the receiver did not start ({status}): {}", std::fs::read_to_string(&log_path).unwrap_or_default());
    };
    (child, url.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_killed_mid_write_loses_nothing_it_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (job, job_path) = job(dir.path());
    let storage = Storage::open(&job.file.storage, &secrets()).unwrap();
    let cfg = SenderConfig {
        seed: 11,
        events: 700,
        bad_signatures: 0,
        missing_signatures: 0,
        malformed: 0,
        ..Default::default()
    };
    let plan = webhook_sender::generate(&cfg, &creds());
    let truth = plan.truth();

    let (mut child, url) = spawn_receiver(&job_path);
    let sending = {
        let deliveries = plan.deliveries.clone();
        let url = url.clone();
        tokio::spawn(async move { webhook_sender::deliver_all(&url, &deliveries, 16).await })
    };
    // Kill -9 once a third of the deliveries are stored, with 16 requests in flight.
    let third = plan.deliveries.len() / 3;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while Platform::ALL.iter().map(|p| objects(dir.path(), *p).len()).sum::<usize>() < third {
        assert!(std::time::Instant::now() < deadline, "the receiver stores nothing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let statuses = sending.await.unwrap();
    let acknowledged: BTreeSet<EventKey> = plan
        .deliveries
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| s.as_ref().ok() == Some(&200))
        .filter_map(|(d, _)| d.event.clone())
        .collect();
    let failed: Vec<Delivery> = plan
        .deliveries
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| s.as_ref().ok() != Some(&200))
        .map(|(d, _)| d.clone())
        .collect();
    assert!(
        !acknowledged.is_empty() && !failed.is_empty(),
        "killed part-way: {} acknowledged, {} not",
        acknowledged.len(),
        failed.len()
    );

    // What was acknowledged before the kill is already complete in storage.
    let first = compact(&job).await;
    let mut after_kill = BTreeSet::new();
    for p in Platform::ALL {
        assert_eq!(first.streams[&format!("{p}.webhook_events")].quarantined_pages, 0, "no torn objects");
        after_kill.extend(landed(&storage, p).await);
    }
    let lost: Vec<_> = acknowledged.difference(&after_kill).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

    // Restart, the platform retries what was not acknowledged, and everything is there once.
    let (mut child, url) = spawn_receiver(&job_path);
    let retried = webhook_sender::deliver_all(&url, &failed, 8).await;
    assert!(retried.iter().all(|s| s.as_ref().ok() == Some(&200)), "{retried:?}");
    let _ = compact(&job).await;
    for p in Platform::ALL {
        let got = landed(&storage, p).await;
        assert_eq!(got.len(), of(&truth, p).len(), "{p}: each event once");
        assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), of(&truth, p), "{p}");
    }
    // SIGTERM stops it cleanly.
    let term = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_webhooks_section_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (job, path) = job(dir.path());
    let w = job.file.webhooks.as_ref().unwrap();
    assert_eq!((w.max_body_bytes, w.settle_seconds), (MAX_BODY, 0));
    let text = std::fs::read_to_string(&path).unwrap();
    let defaults =
        Job::parse(&text.replace("listen = \"127.0.0.1:0\"\n", "").replace("settle_seconds = 0\n", ""), &path).unwrap();
    let w = defaults.file.webhooks.unwrap();
    assert_eq!((w.listen.as_str(), w.settle_seconds), ("0.0.0.0:8088", 300));
    let bad = Job::parse(&text.replace("127.0.0.1:0", "localhost"), &path).unwrap_err().to_string();
    assert!(bad.contains("webhooks.listen"), "{bad}");
    let secret_in_file = Job::parse(&text.replace(KEY_ENV, "s3cr3t-value!"), &path).unwrap_err().to_string();
    assert!(
        secret_in_file.contains("webhooks.attentive.signing_key_env") && !secret_in_file.contains("s3cr3t"),
        "{secret_in_file}"
    );
    let typo = Job::parse(&text.replace("token_env", "tokn_env"), &path).unwrap_err().to_string();
    assert!(typo.contains("tokn_env"), "{typo}");
}
