//! The Shopify source against the fake Shopify over real HTTP: a first run through bulk
//! operations and a nightly run through paged queries land the simulated truth; a refund added
//! to a months-old order after the first run appears after the next; throttles, 5xx and a
//! failed bulk operation lose nothing; the client-credentials grant mints the token.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::*;
use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::fake::FakeServer;
use lifecycle_etl::fake::shopify::{
    DEFAULT_ACCESS_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, ShopifyControl, ShopifyFakeConfig, serve,
};
use lifecycle_etl::pipeline::{Outcome, Steps, SyncSelection, execute};
use lifecycle_etl::simulate::model::{SimCustomer, SimOrder, SimRefundLine};
use lifecycle_etl::simulate::store::Entity;
use lifecycle_etl::storage::Storage;

const CLIENT_ID_ENV: &str = "TEST_SHOPIFY_CLIENT_ID";
const CLIENT_SECRET_ENV: &str = "TEST_SHOPIFY_CLIENT_SECRET";

async fn fake(cfg: ShopifyFakeConfig) -> (FakeServer, ShopifyControl) {
    serve(brand().0.clone(), cfg).await.expect("fake Shopify starts")
}

fn job(dir: &std::path::Path, base_url: &str, credentials: &str) -> Job {
    shopify_job(dir, "shoptest", base_url, credentials, 20)
}

fn token_job(dir: &std::path::Path, base_url: &str) -> Job {
    shopify_token_job(dir, "shoptest", base_url)
}

fn shop_secrets() -> Secrets {
    Secrets::default()
        .with(SHOPIFY_TOKEN_ENV, DEFAULT_ACCESS_TOKEN)
        .with(CLIENT_ID_ENV, DEFAULT_CLIENT_ID)
        .with(CLIENT_SECRET_ENV, DEFAULT_CLIENT_SECRET)
}

async fn run_until(job: &Job, until: DateTime<Utc>) -> Outcome {
    run_ok(job, &shop_secrets(), Steps::All, until).await
}

/// What staging must equal: non-test orders, their lines and refunds, in minor units.
struct Expected {
    orders: i64,
    lines: i64,
    total_minor: i64,
    refunds: i64,
    refunded_minor: i64,
    customers: i64,
}

fn expected() -> Expected {
    let store = &brand().0;
    let orders: Vec<SimOrder> = store.read_all(Entity::Orders).unwrap();
    let customers: Vec<SimCustomer> = store.read_all(Entity::Customers).unwrap();
    let kept: Vec<&SimOrder> = orders.iter().filter(|o| !o.test).collect();
    Expected {
        orders: kept.len() as i64,
        lines: kept.iter().map(|o| o.lines.len() as i64).sum(),
        total_minor: kept.iter().map(|o| o.total_minor).sum(),
        refunds: kept.iter().map(|o| o.refunds.len() as i64).sum(),
        refunded_minor: kept.iter().flat_map(|o| &o.refunds).map(|r| r.amount_minor).sum(),
        customers: customers.len() as i64,
    }
}

async fn assert_staging_matches(storage: &Storage, e: &Expected) {
    assert_eq!(scalar(storage, "select count(*) from stg_shopify__orders").await, e.orders, "orders");
    assert_eq!(scalar(storage, "select count(*) from stg_shopify__order_lines").await, e.lines, "order lines");
    assert_eq!(
        scalar(storage, "select cast(sum(total_amount) * 100 as bigint) from stg_shopify__orders").await,
        e.total_minor,
        "order totals"
    );
    assert_eq!(scalar(storage, "select count(*) from stg_shopify__refunds").await, e.refunds, "refunds");
    assert_eq!(
        scalar(
            storage,
            "select cast(coalesce(sum(total_refunded_amount), 0) * 100 as bigint) from stg_shopify__refunds"
        )
        .await,
        e.refunded_minor,
        "refunded amounts"
    );
    assert_eq!(scalar(storage, "select count(*) from stg_shopify__customers").await, e.customers, "customers");
    assert!(scalar(storage, "select count(*) from stg_shopify__refund_lines").await >= e.refunds, "refund lines");
    assert!(scalar(storage, "select count(*) from stg_shopify__variants").await > 0, "variants");
    assert!(scalar(storage, "select count(*) from stg_shopify__inventory_item_costs").await > 0, "cost snapshot");
    assert_eq!(scalar(storage, "select count(*) from stg_shopify__shop").await, 1, "shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_backfill_then_paged_nightly_with_a_late_refund() {
    // Strict: the fake refuses bulk queries real Shopify refuses (connections inside lists).
    let (server, control) = fake(ShopifyFakeConfig { bulk_strict: true, ..ShopifyFakeConfig::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let job = token_job(dir.path(), &server.base_url());
    let storage = Storage::open(&job.file.storage, &shop_secrets()).unwrap();
    let now = control.clock().now();

    // First run: every window is wider than two days, so every read is a bulk operation.
    run_until(&job, now).await;
    let ops = control.bulk_operations();
    assert!(ops.iter().any(|o| o.query.contains("orders")), "orders came through bulk operations");
    assert!(ops.iter().all(|o| o.status == "COMPLETED"), "{ops:?}");
    let e = expected();
    assert_staging_matches(&storage, &e).await;
    let costs = control.requests_cost();
    assert!(costs.iter().all(|c| c.requested <= 1000), "every query under the single-query cap");

    // A refund on the oldest order, an hour after the first run; the nightly run a day later
    // reads one narrow window: paged queries, no bulk operation.
    let store = &brand().0;
    let orders: Vec<SimOrder> = store.read_all(Entity::Orders).unwrap();
    let old = orders
        .iter()
        .filter(|o| !o.test && o.cancelled_at.is_none() && o.refunds.is_empty())
        .min_by_key(|o| o.created_at)
        .unwrap();
    assert!(now - old.created_at > Duration::days(60), "the order is months old");
    let line = &old.lines[0];
    let amount = line.price_minor - line.discount_minor / i64::from(line.quantity.max(1));
    let refund_at = now + Duration::hours(1);
    control
        .add_refund(
            old.order_id,
            refund_at,
            amount,
            vec![SimRefundLine { line_id: line.line_id, quantity: 1, subtotal_minor: amount }],
        )
        .unwrap();
    let later = now + Duration::days(1);
    control.clock().set(later);
    let bulk_before = control.bulk_operations().len();
    run_until(&job, later).await;
    assert_eq!(control.bulk_operations().len(), bulk_before, "the nightly increment is paged");
    let sql = format!(
        "select cast(total_refunded_amount * 100 as bigint) from stg_shopify__orders where order_id = {}",
        old.order_id
    );
    assert_eq!(scalar(&storage, &sql).await, amount, "the late refund reached the old order");
    assert_eq!(scalar(&storage, "select count(*) from stg_shopify__refunds").await, e.refunds + 1);
    assert_eq!(scalar(&storage, "select count(*) from stg_shopify__orders").await, e.orders, "no duplicate orders");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttles_server_errors_and_a_failed_bulk_operation_lose_nothing() {
    let cfg = ShopifyFakeConfig {
        bucket_max: 1000.0,
        restore_rate: 500.0,
        bulk_strict: true,
        ..ShopifyFakeConfig::default()
    };
    let (server, control) = fake(cfg).await;
    control.throttle_next(3);
    control.fail_next_bulk("INTERNAL_SERVER_ERROR", true);
    server.faults().fail_next(2, 503);
    let dir = tempfile::tempdir().unwrap();
    let job = token_job(dir.path(), &server.base_url());
    let storage = Storage::open(&job.file.storage, &shop_secrets()).unwrap();
    run_until(&job, control.clock().now()).await;
    assert_staging_matches(&storage, &expected()).await;
    let ops = control.bulk_operations();
    assert!(ops.iter().any(|o| o.status == "FAILED"), "one operation failed and its window was split: {ops:?}");
    assert!(control.requests_cost().iter().filter(|c| c.throttled).count() >= 3, "throttles were answered");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_mint_the_token_and_a_bad_secret_is_a_configuration_error() {
    let (server, control) = fake(ShopifyFakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let pair = format!("client_id_env = \"{CLIENT_ID_ENV}\"\nclient_secret_env = \"{CLIENT_SECRET_ENV}\"");
    let job = job(dir.path(), &server.base_url(), &pair);
    let selection =
        SyncSelection { until: Some(control.clock().now()), stream: Some("shop".into()), ..Default::default() };
    let out = execute(&job, &shop_secrets(), Steps::Sync, &selection, None).await.unwrap();
    assert_eq!(out.streams["shopify.shop"].records, 1);
    assert!(server.requests().iter().any(|r| r.path_only() == "/admin/oauth/access_token"));

    let wrong = shop_secrets().with(CLIENT_SECRET_ENV, "shpss_wrong");
    let err = execute(&job, &wrong, Steps::Sync, &selection, None).await.unwrap_err();
    let text = lifecycle_etl::error::Chain(&err).to_string();
    assert!(text.contains("client-credentials grant was refused"), "{text}");
    assert!(!text.contains("shpss_wrong"), "the secret is never echoed");
    assert_eq!(err.exit_code(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_bulk_operation_is_cancelled_and_its_window_split() {
    let (server, control) = fake(ShopifyFakeConfig { bulk_strict: true, ..ShopifyFakeConfig::default() }).await;
    control.stall_next_bulk();
    let dir = tempfile::tempdir().unwrap();
    let job = shopify_job(
        dir.path(),
        "shoptest",
        &server.base_url(),
        &format!("access_token_env = \"{SHOPIFY_TOKEN_ENV}\""),
        1,
    );
    let storage = Storage::open(&job.file.storage, &shop_secrets()).unwrap();
    run_until(&job, control.clock().now()).await;
    assert_staging_matches(&storage, &expected()).await;
    let ops = control.bulk_operations();
    assert!(ops.iter().any(|o| o.status == "CANCELED"), "the stuck operation was cancelled: {ops:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_read_all_orders_is_warned_about() {
    let scopes = vec!["read_orders".to_string(), "read_customers".to_string(), "read_products".to_string()];
    let (server, control) = fake(ShopifyFakeConfig { scopes, ..ShopifyFakeConfig::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let job = token_job(dir.path(), &server.base_url());
    let lines = lifecycle_etl::check::run(&job, &shop_secrets(), true).await.unwrap();
    let text = lines.join("\n");
    assert!(text.contains("no read_all_orders"), "{text}");
    let _ = control;
    server.shutdown().await;
}
