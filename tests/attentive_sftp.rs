//! The Attentive source against a real SFTP server on 127.0.0.1 (the in-process fake) holding
//! generated feed files, and `check --connect` against the fake REST API.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{NaiveDate, TimeZone, Utc};
use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::error::Error;
use lifecycle_etl::fake::attentive::feeds::{self, FeedFile, FeedGenConfig, FeedKind};
use lifecycle_etl::fake::attentive::sftp::{self as fake_sftp, FakeSftpServer, SftpFakeConfig};
use lifecycle_etl::pipeline::{Outcome, Steps, SyncSelection, execute};
use lifecycle_etl::storage::Storage;

const DOMAIN: &str = "acme.com";
const API_KEY_ENV: &str = "TEST_ATTENTIVE_API_KEY";
const API_KEY: &str = "att_test_key_123";
const PASSWORD_ENV: &str = "TEST_ATTENTIVE_SFTP_PASSWORD";
const PRIVATE_KEY_ENV: &str = "TEST_ATTENTIVE_SFTP_KEY";

fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 10, 30).unwrap()
}

/// A test's folders, fake server and job.
struct Setup {
    _dir: tempfile::TempDir,
    outbound: PathBuf,
    server: FakeSftpServer,
    job: Job,
    secrets: Secrets,
}

/// Writes `files` into the served folder, starts the server and writes a job pinning `host_key`
/// (the server's own when `None`), logging in with `credential`.
async fn setup(files: &[FeedFile], sftp: SftpFakeConfig, host_key: Option<String>, credential: Credential) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let outbound = dir.path().join("sftp").join("outbound");
    std::fs::create_dir_all(&outbound).unwrap();
    for f in files {
        f.write(&outbound).unwrap();
    }
    // Something else in the folder that no pattern matches.
    std::fs::write(outbound.join("README.txt"), "not a feed").unwrap();
    let server = fake_sftp::serve(dir.path().join("sftp"), sftp).await.unwrap();
    let host_key = host_key.unwrap_or_else(|| server.host_key_line());
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (credential_key, secrets) = match credential {
        Credential::Password(p) => {
            (format!("password_env = \"{PASSWORD_ENV}\""), Secrets::default().with(PASSWORD_ENV, p))
        }
        Credential::Key(k) => {
            (format!("private_key_env = \"{PRIVATE_KEY_ENV}\""), Secrets::default().with(PRIVATE_KEY_ENV, k))
        }
    };
    let text = format!(
        r#"[job]
name = "attentive-test"
reporting_timezone = "UTC"
reporting_currency = "USD"
[storage]
url = "file://{data}"
[run]
lock_ttl_seconds = 5
batch_rows = 500
[sources.attentive]
base_url = "http://127.0.0.1:9"
api_key_env = "{API_KEY_ENV}"
start_date = "2026-09-01"
[sources.attentive.sftp]
host = "127.0.0.1"
port = {port}
username = "brand"
{credential_key}
host_key = "{host_key}"
directory = "/outbound"
domain = "{DOMAIN}"
"#,
        data = data.display(),
        port = server.port,
    );
    let path = dir.path().join("attentive-test.toml");
    std::fs::write(&path, text).unwrap();
    let job = Job::load(&path).unwrap();
    Setup { _dir: dir, outbound, server, job, secrets: secrets.with(API_KEY_ENV, API_KEY) }
}

enum Credential {
    Password(String),
    Key(String),
}

fn password() -> Credential {
    Credential::Password(fake_sftp::DEFAULT_PASSWORD.into())
}

/// Runs a sync as if at midnight UTC after `last_day`.
async fn sync(s: &Setup) -> lifecycle_etl::error::Result<Outcome> {
    let until = Utc.from_utc_datetime(&(last_day() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap());
    let selection = SyncSelection { until: Some(until), ..Default::default() };
    execute(&s.job, &s.secrets, Steps::Sync, &selection, None).await
}

fn storage(s: &Setup) -> Storage {
    Storage::open(&s.job.file.storage, &s.secrets).unwrap()
}

/// Every cell of a query over the committed raw tables, as text.
async fn query(s: &Setup, sql: &str) -> Vec<Vec<String>> {
    common::rows(&storage(s), sql).await
}

async fn column(s: &Setup, sql: &str) -> Vec<String> {
    let mut v: Vec<String> = query(s, sql).await.into_iter().map(|mut r| r.remove(0)).collect();
    v.sort();
    v
}

const EVENT_KEYS: &str = r#"select concat(to_char("timestamp", '%Y-%m-%dT%H:%M:%S'), '|', "type", '|', subscriber_id)
    from raw_attentive__general_events"#;

/// The truth's keys per stream, sorted.
fn truth(files: &[&FeedFile], kind: FeedKind) -> Vec<String> {
    let mut keys: Vec<String> = files.iter().filter(|f| f.kind == kind).flat_map(|f| f.keys.clone()).collect();
    keys.sort();
    keys
}

fn statuses(out: &Outcome) -> BTreeMap<String, String> {
    out.streams.iter().map(|(k, v)| (k.clone(), v.status.clone())).collect()
}

fn records(out: &Outcome, stream: &str) -> u64 {
    out.streams[&format!("attentive.{stream}")].records
}

#[tokio::test]
async fn every_row_lands_once_and_reruns_and_purges_land_nothing_new() {
    let cfg = FeedGenConfig::month(11, DOMAIN, last_day());
    let files = feeds::generate(&cfg);
    let s = setup(&files, SftpFakeConfig::default(), None, password()).await;

    let out = sync(&s).await.unwrap();
    assert!(statuses(&out).values().all(|st| st == "ok"), "{:?}", out.streams);
    let all: Vec<&FeedFile> = files.iter().collect();
    let events = truth(&all, FeedKind::GeneralEvents);
    let orders = truth(&all, FeedKind::Conversions);
    assert!(events.len() > 2_500, "{}", events.len());
    assert_eq!(records(&out, "general_events"), events.len() as u64);
    assert_eq!(records(&out, "conversions"), orders.len() as u64);
    assert_eq!(column(&s, EVENT_KEYS).await, events, "event keys");
    assert_eq!(column(&s, "select order_id from raw_attentive__conversions").await, orders, "order ids");
    let cents: i64 = files.iter().map(|f| f.revenue_cents).sum();
    let revenue = query(&s, "select cast(sum(revenue) * 100 as bigint) from raw_attentive__conversions").await;
    assert_eq!(revenue[0][0], cents.to_string(), "revenue is exact");
    assert_eq!(s.server.stats().opened.len(), files.len(), "each file downloaded once");

    // Legacy names are normalised, current ones kept, unknown ones kept as given.
    let by_type = query(
        &s,
        r#"select "type", event_type_normalized, count(*) from raw_attentive__general_events group by 1, 2 order by 1"#,
    )
    .await;
    let pairs: BTreeMap<String, String> = by_type.iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    assert_eq!(pairs["JOIN"], "SUBSCRIPTION_OPT_IN_COMPLETED");
    assert_eq!(pairs["OPT_OUT"], "SUBSCRIPTION_OPTED_OUT");
    assert_eq!(pairs["SUBSCRIPTION_OPT_IN_COMPLETED"], "SUBSCRIPTION_OPT_IN_COMPLETED");
    assert_eq!(pairs["PUSH_RECEIPT"], "PUSH_RECEIPT");
    // Blank enum cells are NULL, never empty strings; legacy title-case headers were read.
    let blanks = query(
        &s,
        "select count(*) filter (where join_source = '' or subscription_type = '' or message_type = ''),
                count(*) filter (where join_source is null), count(*) filter (where join_source is not null),
                count(*) filter (where file_date < date '2026-10-10' and subscriber_id is null)
         from raw_attentive__general_events",
    )
    .await;
    assert_eq!(blanks[0][0], "0");
    assert_ne!(blanks[0][1], "0");
    assert_ne!(blanks[0][2], "0");
    assert_eq!(blanks[0][3], "0", "legacy headers map to the same columns");

    // A second run downloads and lands nothing.
    let again = sync(&s).await.unwrap();
    assert_eq!(records(&again, "general_events") + records(&again, "conversions"), 0);
    assert_eq!(s.server.stats().opened.len(), files.len(), "unchanged files are not downloaded again");
    // A file touched with the same content is downloaded, recognised by its hash, not landed.
    let touched = &files[4];
    std::fs::File::options()
        .write(true)
        .open(s.outbound.join(&touched.name))
        .unwrap()
        .set_modified(touched.delivered + std::time::Duration::from_secs(3600))
        .unwrap();
    let third = sync(&s).await.unwrap();
    assert_eq!(records(&third, "general_events") + records(&third, "conversions"), 0);
    assert_eq!(s.server.stats().opened.len(), files.len() + 1);
    // Upstream purges files after 30 days: purged days were landed, so nothing is missing.
    let now = files.last().unwrap().delivered + std::time::Duration::from_secs(20 * 86_400);
    assert!(feeds::purge(&s.outbound, now, 30).unwrap() > 20);
    let fourth = sync(&s).await.unwrap();
    assert!(statuses(&fourth).values().all(|st| st == "ok"), "{:?}", fourth.streams);
    assert_eq!(column(&s, EVENT_KEYS).await, events, "still exactly once");
}

#[tokio::test]
async fn a_redelivered_file_lands_again_and_supersedes_the_earlier_rows() {
    let cfg = FeedGenConfig::month(12, DOMAIN, last_day());
    let files = feeds::generate(&cfg);
    let s = setup(&files, SftpFakeConfig::default(), None, password()).await;
    sync(&s).await.unwrap();

    let day = last_day() - chrono::Days::new(3);
    let first = files.iter().find(|f| f.kind == FeedKind::Conversions && f.day == day).unwrap();
    let redelivered = feeds::redeliver(&cfg, FeedKind::Conversions, day, 1);
    assert_eq!(redelivered.name, first.name);
    redelivered.write(&s.outbound).unwrap();
    let out = sync(&s).await.unwrap();
    assert_eq!(records(&out, "conversions"), redelivered.keys.len() as u64);
    assert_eq!(records(&out, "general_events"), 0);

    let name = &first.name;
    let deliveries = query(
        &s,
        &format!("select count(distinct file_sha256) from raw_attentive__conversions where source_file = '{name}'"),
    )
    .await;
    assert_eq!(deliveries[0][0], "2", "both deliveries are kept in raw");
    // The contract's rule: per source_file, the rows of its latest landing win.
    let latest = column(
        &s,
        "select order_id from raw_attentive__conversions c
         where _landed_at = (select max(_landed_at) from raw_attentive__conversions d where d.source_file = c.source_file)",
    )
    .await;
    let mut expected: Vec<String> = files
        .iter()
        .filter(|f| f.kind == FeedKind::Conversions && f.name != *name)
        .flat_map(|f| f.keys.clone())
        .chain(redelivered.keys.clone())
        .collect();
    expected.sort();
    assert_eq!(latest, expected);
    assert!(latest.iter().all(|k| !first.keys.contains(k)), "the first delivery is superseded");
}

#[tokio::test]
async fn a_missing_day_and_a_bad_row_are_reported_and_everything_else_lands() {
    let mut cfg = FeedGenConfig::month(13, DOMAIN, last_day());
    let missing = last_day() - chrono::Days::new(6);
    let bad_day = last_day() - chrono::Days::new(10);
    cfg.missing_days = vec![missing];
    cfg.bad_row_days = vec![bad_day];
    let files = feeds::generate(&cfg);
    let s = setup(&files, SftpFakeConfig::default(), None, password()).await;

    let err = sync(&s).await.unwrap_err().to_string();
    for part in [
        missing.to_string().as_str(),
        "{domain}_attentive_email_SMS_{YYYYMMDD}.csv",
        "{domain}_attentive_conversions_{YYYYMMDD}.csv",
        "1 row(s) quarantined",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    assert!(!err.contains("@example.com") && !err.contains("+1555"), "no personal data in errors: {err}");
    let all: Vec<&FeedFile> = files.iter().collect();
    assert_eq!(column(&s, EVENT_KEYS).await, truth(&all, FeedKind::GeneralEvents));
    assert_eq!(column(&s, "select order_id from raw_attentive__conversions").await, truth(&all, FeedKind::Conversions));

    // The bad row is kept with its file, row number and field.
    let q = storage(&s).list("_quarantine").await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    let entry: serde_json::Value =
        serde_json::from_slice(&storage(&s).get(&storage(&s).relative(&q[0].location)).await.unwrap().unwrap())
            .unwrap();
    assert_eq!(entry["file"], feeds::general_events_name(DOMAIN, bad_day));
    assert_eq!(entry["row_number"], 3);
    assert_eq!(entry["field"], "timestamp");

    // The late drop arrives: it lands and nothing is missing any more.
    let mut complete = cfg.clone();
    complete.missing_days.clear();
    let late: Vec<FeedFile> = feeds::generate(&complete).into_iter().filter(|f| f.day == missing).collect();
    assert_eq!(late.len(), 2);
    for f in &late {
        f.write(&s.outbound).unwrap();
    }
    let out = sync(&s).await.unwrap();
    assert!(statuses(&out).values().all(|st| st == "ok"), "{:?}", out.streams);
    let late_refs: Vec<&FeedFile> = late.iter().collect();
    assert_eq!(records(&out, "general_events"), truth(&late_refs, FeedKind::GeneralEvents).len() as u64);
    assert_eq!(records(&out, "conversions"), truth(&late_refs, FeedKind::Conversions).len() as u64);
}

#[tokio::test]
async fn a_wrong_host_key_fails_before_anything_is_read() {
    let files = feeds::generate(&FeedGenConfig::month(14, DOMAIN, last_day()));
    let impostor = fake_sftp::ed25519_key([99; 32]).public_key().to_openssh().unwrap();
    let s = setup(&files, SftpFakeConfig::default(), Some(impostor.clone()), password()).await;
    let err = sync(&s).await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    let text = err.to_string();
    let pinned = lifecycle_etl::sources::attentive::hostkey::PinnedHostKey::parse(&impostor).unwrap().fingerprint();
    let presented = lifecycle_etl::sources::attentive::hostkey::fingerprint(&s.server.host_key);
    for part in [format!("127.0.0.1:{}", s.server.port), pinned, presented, "nothing was read".into()] {
        assert!(text.contains(&part), "{part}: {text}");
    }
    let stats = s.server.stats();
    assert_eq!((stats.logins, stats.failed_logins, stats.dir_listings), (0, 0, 0), "{stats:?}");
    assert!(stats.opened.is_empty());
    assert!(storage(&s).list("raw").await.unwrap().is_empty(), "nothing landed");
}

#[tokio::test]
async fn a_wrong_password_fails_clearly_and_key_logins_work() {
    let files = feeds::generate(&FeedGenConfig::month(15, DOMAIN, last_day()));
    let s = setup(&files, SftpFakeConfig::default(), None, Credential::Password("wrong-secret-pw".into())).await;
    let err = sync(&s).await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    let text = err.to_string();
    for part in ["refused the login of user brand by password", "sources.attentive.sftp.password_env"] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert!(!text.contains("wrong-secret-pw"), "the password is never shown: {text}");
    assert!(s.server.stats().failed_logins >= 1);
    assert!(s.server.stats().opened.is_empty());

    // The same server for a client key; the job pins the host by fingerprint this time.
    let client = fake_sftp::ed25519_key([42; 32]);
    let pem = client.to_openssh(russh::keys::ssh_key::LineEnding::LF).unwrap().to_string();
    let sftp =
        SftpFakeConfig { password: None, authorized_key: Some(client.public_key().clone()), ..Default::default() };
    let fingerprint =
        lifecycle_etl::sources::attentive::hostkey::fingerprint(fake_sftp::ed25519_key([7; 32]).public_key());
    let s = setup(&files, sftp, Some(fingerprint), Credential::Key(pem)).await;
    let out = sync(&s).await.unwrap();
    let all: Vec<&FeedFile> = files.iter().collect();
    assert_eq!(records(&out, "conversions"), truth(&all, FeedKind::Conversions).len() as u64);
    assert_eq!(s.server.stats().logins, 1);
}

#[tokio::test]
async fn check_connect_calls_v1_me_and_fails_on_a_wrong_key() {
    let rest = lifecycle_etl::fake::attentive::rest::serve(API_KEY, "Acme").await.unwrap();
    let s = setup(&[], SftpFakeConfig::default(), None, password()).await;
    let mut job = s.job.clone();
    job.file.sources.attentive.as_mut().unwrap().base_url = rest.base_url();
    let lines = lifecycle_etl::check::run(&job, &s.secrets, true).await.unwrap();
    assert!(lines.iter().any(|l| l == "source attentive: connected (GET /v1/me, company Acme)"), "{lines:?}");
    let seen = rest.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/me");
    assert_eq!(seen[0].header("authorization"), Some("Bearer <redacted>"));

    let wrong = s.secrets.clone().with(API_KEY_ENV, "att_wrong_key");
    let err = lifecycle_etl::check::run(&job, &wrong, true).await.unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("check the API key") && text.contains("401") && text.contains("Invalid access token"),
        "{text}"
    );
    assert!(!text.contains("att_wrong_key"), "{text}");
    // Without --connect nothing is called.
    lifecycle_etl::check::run(&job, &s.secrets, false).await.unwrap();
    assert_eq!(rest.requests().len(), 2);
    rest.shutdown().await;
}
