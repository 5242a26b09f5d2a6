//! The order marts (`fct_order_lines`, `fct_orders`, `fct_refunds`, with `int_order_context` and
//! `int_unit_cost_history`): a hand-built shop with known answers, landed through the real
//! landing code, checked cell by cell; then the simulated brand through the fake Shopify,
//! checked against the simulator's truth, and a rerun that must give byte-identical Parquet.

mod common;

use common::*;
use lifecycle_etl::config::{Job, Secrets, StorageConfig};
use lifecycle_etl::fake::shopify::{DEFAULT_ACCESS_TOKEN, ShopifyFakeConfig, serve};
use lifecycle_etl::pipeline::Steps;
use lifecycle_etl::seeds::Seed;
use lifecycle_etl::simulate::model::{SimOrder, SimProduct};
use lifecycle_etl::simulate::store::Entity;
use lifecycle_etl::storage::Storage;
use serde_json::{Value, json};

const MARTS: [(&str, &str); 5] = [
    ("intermediate", "int_order_context"),
    ("intermediate", "int_unit_cost_history"),
    ("marts", "fct_order_lines"),
    ("marts", "fct_orders"),
    ("marts", "fct_refunds"),
];

/// The whole transform step; rows per model.
async fn transform(storage: &Storage, seeds: &[Seed], run_id: &str) -> std::collections::BTreeMap<String, u64> {
    lifecycle_etl::transform::run(storage, seeds, run_id)
        .await
        .unwrap_or_else(|e| panic!("transform {run_id}: {}", lifecycle_etl::error::Chain(&e)))
}

// ---------------------------------------------------------------------------------------------
// Hand-built shop
// ---------------------------------------------------------------------------------------------

fn money(amount: &str) -> Value {
    json!({"shopMoney": {"amount": amount, "currencyCode": "USD"}})
}

fn both(amount: &str) -> Value {
    json!({"shopMoney": {"amount": amount, "currencyCode": "USD"},
           "presentmentMoney": {"amount": amount, "currencyCode": "USD"}})
}

fn connection(nodes: Vec<Value>) -> Value {
    json!({"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": nodes})
}

/// A line item: `variant` None is a variant deleted since the order.
fn line(id: u64, product: u64, variant: Option<u64>, qty: i64, price: &str, discount: &str, total: &str) -> Value {
    json!({"__typename": "LineItem", "id": format!("gid://shopify/LineItem/{id}"), "name": format!("Item {id}"),
           "sku": format!("SKU-{id}"), "quantity": qty, "currentQuantity": qty,
           "product": {"id": format!("gid://shopify/Product/{product}")},
           "variant": variant.map(|v| json!({"id": format!("gid://shopify/ProductVariant/{v}")})),
           "originalUnitPriceSet": money(price), "totalDiscountSet": money(discount),
           "discountedTotalSet": money(total)})
}

fn refund(id: u64, at: &str, total: &str, line_id: u64, qty: i64, restock: &str, subtotal: &str) -> Value {
    json!({"id": format!("gid://shopify/Refund/{id}"), "createdAt": at, "note": null, "totalRefundedSet": money(total),
           "refundLineItems": connection(vec![json!({"__typename": "RefundLineItem",
               "id": format!("gid://shopify/RefundLineItem/{}", id + 100), "quantity": qty, "restockType": restock,
               "lineItem": {"id": format!("gid://shopify/LineItem/{line_id}")}, "subtotalSet": money(subtotal)})]),
           "transactions": connection(vec![])})
}

/// An order; amounts are shop money (USD), `customer` None is a guest checkout.
#[derive(Clone, Copy)]
struct O<'a> {
    n: u64,
    customer: Option<u64>,
    processed: &'a str,
    status: &'a str,
    source: &'a str,
    shipping: &'a str,
    tax: &'a str,
    codes: &'a [&'a str],
}

fn order(o: O, lines: Vec<Value>, discounts: Vec<Value>, refunds: Vec<Value>) -> Value {
    json!({
        "id": format!("gid://shopify/Order/{}", o.n), "legacyResourceId": o.n.to_string(),
        "name": format!("#{}", o.n % 10000), "createdAt": o.processed, "updatedAt": o.processed,
        "processedAt": o.processed, "cancelledAt": null, "cancelReason": null, "test": false,
        "sourceName": o.source, "tags": [], "email": "ann@example.com", "phone": null, "currencyCode": "USD",
        "presentmentCurrencyCode": "USD", "displayFinancialStatus": o.status, "discountCodes": o.codes,
        "customer": o.customer.map(|c| json!({"id": format!("gid://shopify/Customer/{c}")})),
        "subtotalPriceSet": both("0.00"), "totalDiscountsSet": money("0.00"),
        "totalShippingPriceSet": money(o.shipping), "totalTaxSet": money(o.tax),
        "totalPriceSet": both("0.00"), "currentTotalPriceSet": money("0.00"), "totalRefundedSet": money("0.00"),
        "customerJourneySummary": null,
        "discountApplications": connection(discounts),
        "lineItems": connection(lines),
        "refunds": refunds,
    })
}

fn code_application(code: &str, percentage: f64) -> Value {
    json!({"__typename": "DiscountCodeApplication", "allocationMethod": "ACROSS", "targetType": "LINE_ITEM",
           "targetSelection": "ALL", "value": {"__typename": "PricingPercentageValue", "percentage": percentage},
           "code": code})
}

/// Seven orders, customers 7001 and 7002 and a guest:
/// A discounted (10 % code), a costed line and a Tea line without cost;
/// B placed before the first cost snapshot, refunded three times: a returned unit, a unit
///   refunded without restock, and a returned unit 123 days later (past the 120-day horizon);
/// C cancelled and voided; D a guest with an uncosted variant and a deleted variant;
/// E after the cost changed, with an automatic discount; F 100 % discounted; G point of sale.
fn orders() -> Vec<Value> {
    let base = O {
        n: 0,
        customer: Some(7001),
        processed: "",
        status: "PAID",
        source: "web",
        shipping: "0.00",
        tax: "0.00",
        codes: &[],
    };
    let a = order(
        O {
            n: 5552000000001,
            processed: "2026-03-04T15:00:00Z",
            shipping: "5.00",
            tax: "2.00",
            codes: &["WELCOME10"],
            ..base
        },
        vec![
            line(101, 300, Some(401), 2, "20.00", "4.00", "36.00"),
            line(102, 310, Some(411), 1, "15.00", "1.50", "13.50"),
        ],
        vec![code_application("WELCOME10", 10.0)],
        vec![],
    );
    let mut b = order(
        O { n: 5552000000002, processed: "2026-03-01T03:30:00Z", status: "PARTIALLY_REFUNDED", tax: "3.90", ..base },
        vec![line(201, 300, Some(401), 3, "20.00", "0.00", "60.00")],
        vec![],
        vec![
            refund(9001, "2026-03-05T04:00:00Z", "21.30", 201, 1, "RETURN", "20.00"),
            refund(9002, "2026-03-06T15:00:00Z", "20.00", 201, 1, "NO_RESTOCK", "20.00"),
            refund(9003, "2026-07-01T16:00:00Z", "20.00", 201, 1, "RETURN", "20.00"),
        ],
    );
    b["updatedAt"] = json!("2026-07-01T16:00:00Z");
    let mut c = order(
        O {
            n: 5552000000003,
            processed: "2026-03-02T11:00:00Z",
            status: "VOIDED",
            shipping: "5.00",
            tax: "1.30",
            ..base
        },
        vec![line(301, 300, Some(401), 1, "20.00", "0.00", "20.00")],
        vec![],
        vec![],
    );
    c["cancelledAt"] = json!("2026-03-02T12:00:00Z");
    c["cancelReason"] = json!("CUSTOMER");
    let d = order(
        O { n: 5552000000004, customer: None, processed: "2026-03-04T16:00:00Z", shipping: "5.00", ..base },
        vec![line(401, 300, Some(402), 1, "10.00", "0.00", "10.00"), line(402, 300, None, 1, "12.00", "0.00", "12.00")],
        vec![],
        vec![],
    );
    let e = order(
        O { n: 5552000000005, processed: "2026-07-02T12:00:00Z", ..base },
        vec![line(501, 300, Some(401), 1, "20.00", "2.00", "18.00")],
        vec![json!({"__typename": "AutomaticDiscountApplication", "allocationMethod": "ACROSS",
                    "targetType": "LINE_ITEM", "targetSelection": "ALL",
                    "value": {"__typename": "MoneyV2", "amount": "2.0", "currencyCode": "USD"}, "title": "Summer"})],
        vec![],
    );
    let f = order(
        O { n: 5552000000006, customer: Some(7002), processed: "2026-03-05T12:00:00Z", codes: &["SEED100"], ..base },
        vec![line(601, 300, Some(402), 1, "10.00", "10.00", "0.00")],
        vec![code_application("SEED100", 100.0)],
        vec![],
    );
    let g = order(
        O { n: 5552000000007, customer: Some(7002), processed: "2026-03-05T13:00:00Z", source: "pos", ..base },
        vec![line(701, 310, Some(411), 2, "15.00", "0.00", "30.00")],
        vec![],
        vec![],
    );
    vec![a, b, c, d, e, f, g]
}

fn shop() -> Value {
    json!({"id": "gid://shopify/Shop/777", "name": "Test Brand", "myshopifyDomain": "test-brand.myshopify.com",
           "ianaTimezone": "America/New_York", "timezoneOffset": "-0500", "currencyCode": "USD"})
}

fn products() -> Vec<Value> {
    let variant = |v: u64, item: u64| {
        json!({"__typename": "ProductVariant", "id": format!("gid://shopify/ProductVariant/{v}"),
               "legacyResourceId": v.to_string(), "title": "Default", "sku": format!("V-{v}"), "price": "20.00",
               "createdAt": "2025-01-01T00:00:00Z", "updatedAt": "2026-02-01T00:00:00Z",
               "inventoryItem": {"id": format!("gid://shopify/InventoryItem/{item}")}})
    };
    let product = |p: u64, ty: &str, variants: Vec<Value>| {
        json!({"id": format!("gid://shopify/Product/{p}"), "legacyResourceId": p.to_string(), "title": ty,
               "handle": ty.to_lowercase(), "productType": ty, "vendor": "Us", "status": "ACTIVE", "tags": [],
               "createdAt": "2025-01-01T00:00:00Z", "updatedAt": "2026-02-01T00:00:00Z",
               "variants": connection(variants)})
    };
    vec![
        product(300, "Apparel", vec![variant(401, 501), variant(402, 502)]),
        product(310, "Tea", vec![variant(411, 511)]),
    ]
}

/// The inventory items of one day: item 501 costs `cost`, 502 and 511 never had a cost.
fn items(cost: &str) -> Vec<Value> {
    [(501, 401, Some(cost)), (502, 402, None), (511, 411, None)]
        .into_iter()
        .map(|(n, v, c): (u64, u64, Option<&str>)| {
            json!({"id": format!("gid://shopify/InventoryItem/{n}"), "legacyResourceId": n.to_string(),
                   "sku": format!("V-{v}"), "tracked": true, "createdAt": "2025-01-01T00:00:00Z",
                   "updatedAt": "2026-02-01T00:00:00Z",
                   "unitCost": c.map(|c| json!({"amount": c, "currencyCode": "USD"})),
                   "variant": {"id": format!("gid://shopify/ProductVariant/{v}"),
                               "product": {"id": "gid://shopify/Product/300"}}})
        })
        .collect()
}

/// Expected rows, one string a row, cells separated by spaces (no cell contains one).
fn table(rows: &[&str]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.split_whitespace().map(str::to_string).collect()).collect()
}

/// The seeds of a job whose `cfg_cost_assumptions` gives Tea its own COGS %.
fn hand_built_seeds(dir: &std::path::Path) -> Vec<Seed> {
    let seeds = dir.join("marts/seeds");
    std::fs::create_dir_all(&seeds).unwrap();
    std::fs::write(
        seeds.join("cfg_cost_assumptions.csv"),
        "key,value\ndefault_cogs_pct,0.35\ndefault_cogs_pct:tea,0.20\nshipping_cost_per_order,6.50\n\
         payment_fee_pct,0.029\npayment_fee_fixed,0.30\n",
    )
    .unwrap();
    let path = dir.join("marts.toml");
    std::fs::write(
        &path,
        format!(
            "[job]\nname='marts'\nreporting_timezone='America/New_York'\nreporting_currency='USD'\n\
             [storage]\nurl='file://{}'\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    lifecycle_etl::seeds::load(&Job::load(&path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_built_orders_have_known_answers() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = hand_built_seeds(dir.path());
    let cfg: StorageConfig =
        toml::from_str(&format!("url = \"file://{}\"", dir.path().join("data").display())).unwrap();
    let storage = Storage::open(&cfg, &Secrets::default()).unwrap();
    // Day 1: the catalogue and the first cost snapshot (item 501 at 8.00). Day 2: the cost
    // moved to 8.50. Day 3: the same cost again, and the orders.
    land(
        &storage,
        "20260303T060000Z-aaaaaaaa",
        "2026-03-03T06:00:00Z",
        vec![("shop", vec![shop()]), ("products", products()), ("inventory_items", items("8.00"))],
    )
    .await;
    land(&storage, "20260702T060000Z-bbbbbbbb", "2026-07-02T06:00:00Z", vec![("inventory_items", items("8.50"))]).await;
    land(
        &storage,
        "20260703T060000Z-cccccccc",
        "2026-07-03T06:00:00Z",
        vec![("shop", vec![shop()]), ("orders", orders()), ("inventory_items", items("8.50"))],
    )
    .await;
    let built = transform(&storage, &seeds, "20260703T070000Z-dddddddd").await;
    for (model, n) in [
        ("int_order_context", 7),
        ("int_unit_cost_history", 2),
        ("fct_order_lines", 9),
        ("fct_orders", 7),
        ("fct_refunds", 4),
    ] {
        assert_eq!(built.get(model), Some(&n), "{model}: {built:?}");
    }

    // The cost history: one period per cost of item 501; items without a cost have none.
    assert_eq!(
        rows(
            &storage,
            "select inventory_item_id, valid_from, valid_to, is_latest, variant_id, unit_cost_amount, observations \
             from int_unit_cost_history order by valid_from"
        )
        .await,
        table(&[
            "501 2026-03-03T06:00:00Z 2026-07-02T06:00:00Z false 401 8.0000 1",
            "501 2026-07-02T06:00:00Z NULL                 true  401 8.5000 2",
        ])
    );

    // Lines: a snapshot cost valid at the order (101: 8.00; 501: 8.50, after the change), the
    // earliest cost for an order before the first snapshot (201, 301), the product type's or
    // the global default % of net revenue without a cost (102, 701: Tea 20 %; 401, 402 with its
    // variant deleted, 601: 35 %). 201 had two units refunded inside the horizon, one of them
    // restocked; 301 is voided.
    assert_eq!(
        rows(
            &storage,
            "select order_line_id, quantity, refunded_quantity, restocked_quantity, cogs_quantity, gross_sales, \
             discounts, returns, net_revenue, fx_rate, order_date from fct_order_lines order by order_line_id"
        )
        .await,
        table(&[
            "101 2 0 0 2 40.0000  4.0000  0.0000 36.0000 1.0 2026-03-04",
            "102 1 0 0 1 15.0000  1.5000  0.0000 13.5000 1.0 2026-03-04",
            "201 3 2 1 2 60.0000  0.0000 40.0000 20.0000 1.0 2026-02-28",
            "301 1 0 0 0  0.0000  0.0000  0.0000  0.0000 1.0 2026-03-02",
            "401 1 0 0 1 10.0000  0.0000  0.0000 10.0000 1.0 2026-03-04",
            "402 1 0 0 1 12.0000  0.0000  0.0000 12.0000 1.0 2026-03-04",
            "501 1 0 0 1 20.0000  2.0000  0.0000 18.0000 1.0 2026-07-02",
            "601 1 0 0 1 10.0000 10.0000  0.0000  0.0000 1.0 2026-03-05",
            "701 2 0 0 2 30.0000  0.0000  0.0000 30.0000 1.0 2026-03-05",
        ])
    );
    assert_eq!(
        rows(
            &storage,
            "select order_line_id, unit_cost, unit_cost_source, unit_cost_valid_from, assumed_cogs_pct, cogs, \
             gross_margin from fct_order_lines order by order_line_id"
        )
        .await,
        table(&[
            "101 8.0000 unit_cost_snapshot         2026-03-03T06:00:00Z NULL 16.0000 20.0000",
            "102 NULL   assumed_pct                NULL                 0.2   2.7000 10.8000",
            "201 8.0000 unit_cost_current_backfill 2026-03-03T06:00:00Z NULL 16.0000  4.0000",
            "301 8.0000 unit_cost_current_backfill 2026-03-03T06:00:00Z NULL  0.0000  0.0000",
            "401 NULL   assumed_pct                NULL                 0.35  3.5000  6.5000",
            "402 NULL   assumed_pct                NULL                 0.35  4.2000  7.8000",
            "501 8.5000 unit_cost_snapshot         2026-07-02T06:00:00Z NULL  8.5000  9.5000",
            "601 NULL   assumed_pct                NULL                 0.35  0.0000  0.0000",
            "701 NULL   assumed_pct                NULL                 0.2   6.0000 24.0000",
        ])
    );

    // Orders (labelled by the last digit of their id): money and margin. Payment fee = 2.9 % x
    // (net + shipping + taxes) + 0.30; shipping cost 6.50 unless cancelled or point of sale;
    // the voided order C carries 0 everywhere.
    assert_eq!(
        rows(
            &storage,
            "select right(order_id, 1), gross_sales, discounts, returns, net_revenue, shipping_revenue, taxes, cogs, \
             gross_margin, shipping_cost_est, payment_fee_est, contribution_margin from fct_orders order by order_id"
        )
        .await,
        table(&[
            "1 55.0000  5.5000  0.0000 49.5000 5.0000 2.0000 18.7000 30.8000 6.5000 1.9385 27.3615",
            "2 60.0000  0.0000 40.0000 20.0000 0.0000 3.9000 16.0000  4.0000 6.5000 0.9931 -3.4931",
            "3  0.0000  0.0000  0.0000  0.0000 0.0000 0.0000  0.0000  0.0000 0.0000 0.0000  0.0000",
            "4 22.0000  0.0000  0.0000 22.0000 5.0000 0.0000  7.7000 14.3000 6.5000 1.0830 11.7170",
            "5 20.0000  2.0000  0.0000 18.0000 0.0000 0.0000  8.5000  9.5000 6.5000 0.8220  2.1780",
            "6 10.0000 10.0000  0.0000  0.0000 0.0000 0.0000  0.0000  0.0000 6.5000 0.3000 -6.8000",
            "7 30.0000  0.0000  0.0000 30.0000 0.0000 0.0000  6.0000 24.0000 0.0000 1.1700 22.8300",
        ])
    );
    // Cost source, offer and counts.
    assert_eq!(
        rows(
            &storage,
            "select right(order_id, 1), cogs_source, assumed_cost_net_revenue, units, line_count, offer_type, \
             offer_subtype, refund_count, is_guest from fct_orders order by order_id"
        )
        .await,
        table(&[
            "1 mixed                      13.5000 3 2 discount_code      percentage 0 false",
            "2 unit_cost_current_backfill  0.0000 3 1 full_price         NULL       3 false",
            "3 unit_cost_current_backfill  0.0000 1 1 full_price         NULL       0 false",
            "4 assumed_pct                22.0000 2 2 full_price         NULL       0 true",
            "5 unit_cost_snapshot          0.0000 1 1 automatic_discount NULL       0 false",
            "6 assumed_pct                 0.0000 1 1 free_or_sample     NULL       0 false",
            "7 assumed_pct                30.0000 2 1 full_price         NULL       0 false",
        ])
    );
    // The qualifying rule and the sequence per person: every order carries ann@example.com, so
    // 7001, 7002 and the guest are one person (models.md 1.3). B (Feb 28 in New York) is its first
    // qualifying order, A its second 4 days later, the guest order D its third the same day, E its
    // fourth 120 days after D; 7002's orders F and G do not qualify.
    assert_eq!(
        rows(
            &storage,
            "select right(order_id, 1), order_date, order_month, is_qualifying, non_qualifying_reason, is_zero_value, \
             is_fully_refunded, customer_order_seq, is_first_order, days_since_prev_order \
             from fct_orders order by order_id"
        )
        .await,
        table(&[
            "1 2026-03-04 2026-03-01 true  NULL            false false 2    false 4",
            "2 2026-02-28 2026-02-01 true  NULL            false false 1    true  NULL",
            "3 2026-03-02 2026-03-01 false cancelled       false false NULL false NULL",
            "4 2026-03-04 2026-03-01 true  NULL            false false 3    false 0",
            "5 2026-07-02 2026-07-01 true  NULL            false false 4    false 120",
            "6 2026-03-05 2026-03-01 false zero_value      true  false NULL false NULL",
            "7 2026-03-05 2026-03-01 false excluded_source false false NULL false NULL",
        ])
    );
    assert_eq!(
        rows(
            &storage,
            "select count(*), count(distinct order_key), min(shop_id), min(reporting_currency), min(fx_rate), \
             bool_or(fx_rate_is_stale), min(model_version), count(distinct person_key), \
             max(person_key) = md5(concat('email_sha256|', encode(sha256('ann@example.com'), 'hex'))) from fct_orders"
        )
        .await,
        table(&["7 7 777 USD 1.0 false 1.1.0 1 true"])
    );
    assert_eq!(
        rows(
            &storage,
            "select count(*) from fct_orders where order_key = md5('shopify|777|5552000000001') \
             and discount_codes = make_array('WELCOME10')"
        )
        .await,
        table(&["1"]),
        "the key is md5 of platform, shop and order; codes are kept"
    );

    // Refunds by refund date: the line rows, the refunded tax as a non-line row, and the refund
    // 123 days after the order, outside the restatement horizon.
    assert_eq!(
        rows(
            &storage,
            "select refund_row_type, refund_id, order_line_id, refund_date, days_since_order, \
             is_within_restatement_horizon, quantity, restock_type, is_restocked, returns, other_refunded, \
             refunded_amount, order_line_key = md5('shopify|777|201') from fct_refunds \
             order by refunded_at, refund_row_type"
        )
        .await,
        table(&[
            "line     9001 201  2026-03-04   4 true  1 return     true  20.0000 0.0000 20.0000 true",
            "non_line 9001 NULL 2026-03-04   4 true  0 NULL       false  0.0000 1.3000  1.3000 NULL",
            "line     9002 201  2026-03-06   6 true  1 no_restock false 20.0000 0.0000 20.0000 true",
            "line     9003 201  2026-07-01 123 false 1 return     true  20.0000 0.0000 20.0000 true",
        ])
    );
    // Inside the horizon, fct_refunds' line returns are fct_orders' returns.
    assert_eq!(
        rows(
            &storage,
            "select (select sum(returns) from fct_refunds where is_within_restatement_horizon), \
             (select sum(returns) from fct_orders)"
        )
        .await,
        table(&["40.0000 40.0000"])
    );

    // A reporting timezone and currency set in cfg_settings override the shop's: Paris dates,
    // euros at the inverse of the shipped EUR -> USD rate of 2026-01-01 (stale by March).
    let mut overridden = seeds.clone();
    let settings = overridden.iter_mut().find(|s| s.name == "cfg_settings").unwrap();
    // (The job file's own pair arrives as the same keys: replace them.)
    settings.rows.retain(|r| r[0] != "reporting_tz" && r[0] != "reporting_currency");
    settings.rows.push(vec!["reporting_tz".into(), "Europe/Paris".into()]);
    settings.rows.push(vec!["reporting_currency".into(), "EUR".into()]);
    transform(&storage, &overridden, "20260703T080000Z-eeeeeeee").await;
    assert_eq!(
        rows(
            &storage,
            "select right(order_id, 1), order_date, reporting_currency, fx_rate, fx_rate_is_stale, gross_sales, \
             discounts, returns, net_revenue from fct_orders where order_id in ('5552000000001', '5552000000002') \
             order by order_id"
        )
        .await,
        table(&[
            "1 2026-03-04 EUR 0.8547008547008548 true 47.0085 4.7009  0.0000 42.3076",
            "2 2026-03-01 EUR 0.8547008547008548 true 51.2821 0.0000 34.1880 17.0941",
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// Simulated brand through the fake Shopify
// ---------------------------------------------------------------------------------------------

/// What the marts must equal, from the simulator's records, with the qualifying rule exactly as
/// fct_orders applies it. Money in cents; COGS in ten-thousandths (assumed % of net revenue).
#[derive(Debug, Default, PartialEq)]
struct Truth {
    orders: i64,
    qualifying: i64,
    net_cents: i64,
    qualifying_net_cents: i64,
    returns_cents: i64,
    cogs_e4: i64,
    lines: i64,
    refunds: i64,
}

fn truth() -> Truth {
    let store = &brand().0;
    let orders: Vec<SimOrder> = store.read_all(Entity::Orders).unwrap();
    let products: Vec<SimProduct> = store.read_all(Entity::Products).unwrap();
    let cost =
        |variant: u64| products.iter().flat_map(|p| &p.variants).find(|v| v.variant_id == variant)?.unit_cost_minor;
    let mut t = Truth::default();
    for o in orders.iter().filter(|o| !o.test) {
        t.orders += 1;
        t.lines += o.lines.len() as i64;
        t.refunds += o.refunds.len() as i64;
        let voided = o.financial_status == "voided";
        let order_date = ny_date(o.processed_at);
        // Refunds within the 120-day restatement horizon (local dates) restate the order.
        let kept: Vec<_> =
            o.refunds.iter().filter(|r| (ny_date(r.created_at) - order_date).num_days() <= 120).collect();
        let (mut gross, mut discounts, mut returns) = (0i64, 0i64, 0i64);
        for l in &o.lines {
            let line_gross = l.price_minor * i64::from(l.quantity);
            let refunded = kept.iter().flat_map(|r| &r.lines).filter(|rl| rl.line_id == l.line_id);
            let line_returns: i64 = refunded.clone().map(|rl| rl.subtotal_minor).sum();
            // Every simulated refund line is restocked (RETURN, or CANCEL at cancellation).
            let restocked: i64 = refunded.map(|rl| i64::from(rl.quantity)).sum();
            let (g, d, r) = if voided { (0, 0, 0) } else { (line_gross, l.discount_minor, line_returns) };
            gross += g;
            discounts += d;
            returns += r;
            // The fake serves one line in 37 (by id) with its variant deleted: no cost is known.
            let unit_cost = if l.line_id % 37 == 5 { None } else { cost(l.variant_id) };
            t.cogs_e4 += match unit_cost {
                Some(c) if !voided => (i64::from(l.quantity) - restocked.min(i64::from(l.quantity))) * c * 100,
                Some(_) => 0,
                None => (g - d - r) * 35,
            };
        }
        // Net revenue and the qualifying rule are the library's truth (the demo checks with it);
        // returns and COGS are worked out here, line by line.
        let (net, qualifying) = lifecycle_etl::simulate::truth::order_net(o, chrono_tz::America::New_York);
        assert_eq!(net, gross - discounts - returns, "order {}", o.order_id);
        t.net_cents += net;
        t.returns_cents += returns;
        if qualifying {
            t.qualifying += 1;
            t.qualifying_net_cents += net;
        }
    }
    t
}

/// The bytes of each mart's current Parquet files.
async fn current_bytes(storage: &Storage) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (layer, name) in MARTS {
        let current = lifecycle_etl::transform::publish::current(storage, layer, name).await.unwrap().unwrap();
        for f in current.files {
            out.push((name.to_string(), storage.get(&f).await.unwrap().unwrap().to_vec()));
        }
    }
    out
}

/// Each mart's current objects (intermediate models are one file a version).
async fn current_files(storage: &Storage) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (layer, name) in MARTS.iter().filter(|(layer, _)| *layer == "marts") {
        let current = lifecycle_etl::transform::publish::current(storage, layer, name).await.unwrap().unwrap();
        out.push((name.to_string(), current.files));
    }
    out
}

/// Rows in one Parquet object, from its footer.
async fn parquet_rows(storage: &Storage, rel: &str) -> i64 {
    let bytes = storage.get(rel).await.unwrap().unwrap();
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes).unwrap();
    parquet::file::reader::FileReader::metadata(&reader).file_metadata().num_rows()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_brand_matches_the_simulator_and_reruns_byte_identical() {
    let (server, control) = serve(brand().0.clone(), ShopifyFakeConfig::default()).await.expect("fake Shopify starts");
    let dir = tempfile::tempdir().unwrap();
    let job = shopify_token_job(dir.path(), "martstest", &server.base_url());
    let secrets = Secrets::default().with(SHOPIFY_TOKEN_ENV, DEFAULT_ACCESS_TOKEN);
    let storage = Storage::open(&job.file.storage, &secrets).unwrap();
    run_ok(&job, &secrets, Steps::Sync, control.clock().now()).await;
    let seeds = lifecycle_etl::seeds::load(&job).unwrap();
    transform(&storage, &seeds, "20991230T000000Z-firstaaa").await;

    let t = truth();
    let got = Truth {
        orders: scalar(&storage, "select count(*) from fct_orders").await,
        qualifying: scalar(&storage, "select count(*) from fct_orders where is_qualifying").await,
        net_cents: scalar(&storage, "select cast(sum(net_revenue) * 100 as bigint) from fct_orders").await,
        qualifying_net_cents: scalar(
            &storage,
            "select cast(sum(net_revenue) * 100 as bigint) from fct_orders where is_qualifying",
        )
        .await,
        returns_cents: scalar(&storage, "select cast(sum(returns) * 100 as bigint) from fct_orders").await,
        cogs_e4: scalar(&storage, "select cast(sum(cogs) * 10000 as bigint) from fct_orders").await,
        lines: scalar(&storage, "select count(*) from fct_order_lines").await,
        refunds: scalar(&storage, "select count(distinct refund_id) from fct_refunds").await,
    };
    assert_eq!(got, t, "fct_orders against the simulator's truth");
    assert!(t.qualifying > 100 && t.qualifying < t.orders, "a brand with some non-qualifying orders: {t:?}");

    // Internal consistency: orders sum their lines, sequences are gap-free per person.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_orders o join (select order_key, sum(net_revenue) n, sum(cogs) c \
             from fct_order_lines group by order_key) l on l.order_key = o.order_key \
             where l.n <> o.net_revenue or l.c <> o.cogs"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from (select person_key, min(customer_order_seq) lo, max(customer_order_seq) hi, \
             count(*) n, count(distinct customer_order_seq) d from fct_orders \
             where is_qualifying and person_key is not null group by 1) where lo <> 1 or hi <> n or d <> n"
        )
        .await,
        0,
        "customer_order_seq is 1..n without gaps or repeats per person"
    );
    // Exactly one first order per person with a qualifying order, none for the others.
    let persons_qualifying =
        scalar(&storage, "select count(distinct person_key) from fct_orders where is_qualifying").await;
    assert!(persons_qualifying > 100, "{persons_qualifying} persons with a qualifying order");
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from (select person_key, sum(case when is_first_order then 1 else 0 end) f, \
             bool_or(is_qualifying) q from fct_orders where person_key is not null group by 1) \
             where (q and f <> 1) or (not q and f <> 0)"
        )
        .await,
        0,
        "one first order per person with a qualifying order"
    );
    assert_eq!(scalar(&storage, "select count(*) from fct_orders where is_first_order").await, persons_qualifying);
    // Every order with a customer id or an email has a person; orders without one are not sequenced.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_orders o join stg_shopify__orders s on cast(s.order_id as varchar) = o.order_id \
             where o.person_key is null and (s.customer_id is not null or s.email_sha256 is not null)"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_orders where person_key is null \
             and (customer_order_seq is not null or is_first_order is not null and is_qualifying)"
        )
        .await,
        0
    );
    // Per person, each order's gap is the local-date difference to the previous qualifying order.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_orders a join fct_orders b on a.person_key = b.person_key \
             and b.customer_order_seq = a.customer_order_seq - 1 \
             where a.days_since_prev_order is distinct from cast(a.order_date - b.order_date as int)"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_orders where is_first_order and (customer_order_seq <> 1 or not is_qualifying)"
        )
        .await,
        0
    );

    // A rerun of the transform on the same raw data writes byte-identical Parquet.
    let before = current_bytes(&storage).await;
    let files_before = current_files(&storage).await;
    transform(&storage, &seeds, "20991231T000000Z-rerunaaa").await;
    let after = current_bytes(&storage).await;
    assert_eq!(before.len(), after.len());
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert!(a == b, "{name}: the rerun's Parquet differs");
    }
    // Marts are Hive partitions of their period column, named by content: the rerun kept every
    // partition object (wrote none), and each object holds only its partition's rows.
    assert_eq!(current_files(&storage).await, files_before, "the rerun replaced no partition");
    let orders = &files_before.iter().find(|(n, _)| n == "fct_orders").unwrap().1;
    assert!(orders.len() >= 3, "fct_orders has one object per order month: {orders:?}");
    for f in orders {
        let month = f.strip_prefix("marts/fct_orders/order_month=").and_then(|r| r.split('/').next()).unwrap();
        let partition_rows =
            scalar(&storage, &format!("select count(*) from fct_orders where order_month = date '{month}'")).await;
        let file_rows = parquet_rows(&storage, f).await;
        assert_eq!(partition_rows, file_rows, "{f} holds exactly the rows of order_month {month}");
    }
    server.shutdown().await;
}
