//! Shopify staging end to end without HTTP: hand-written GraphQL records in exactly the shape
//! `src/sources/shopify/queries.rs` selects are landed through the real landing code (typed
//! against the raw contracts, written as Parquet, committed under `_runs/`), the transform runs
//! every model, and the Shopify staging tables are checked row by row.

mod common;

use common::{land, rows};
use lifecycle_etl::config::{Secrets, StorageConfig};
use lifecycle_etl::storage::Storage;
use serde_json::{Value, json};

fn money(amount: &str) -> Value {
    json!({"shopMoney": {"amount": amount, "currencyCode": "USD"}})
}

fn both(shop: &str, presentment: &str, currency: &str) -> Value {
    json!({"shopMoney": {"amount": shop, "currencyCode": "USD"},
           "presentmentMoney": {"amount": presentment, "currencyCode": currency}})
}

fn visit(source: &str, medium: &str, campaign: &str, landing: &str) -> Value {
    json!({"landingPage": landing, "referrerUrl": "https://example.com/", "source": source, "sourceType": null,
           "utmParameters": {"source": source, "medium": medium, "campaign": campaign, "content": null, "term": null}})
}

/// A paged connection (`pageInfo` + `nodes`), or the bulk-folded one (`nodes` only).
fn connection(nodes: Vec<Value>, paged: bool) -> Value {
    if paged {
        json!({"pageInfo": {"hasNextPage": false, "endCursor": null}, "nodes": nodes})
    } else {
        json!({"nodes": nodes})
    }
}

#[allow(clippy::too_many_arguments)]
fn line(
    id: u64,
    sku: &str,
    qty: i64,
    current: i64,
    price: &str,
    discount: &str,
    total: &str,
    variant: Option<u64>,
) -> Value {
    json!({"__typename": "LineItem", "id": format!("gid://shopify/LineItem/{id}"), "name": format!("Item {sku}"),
           "sku": sku, "quantity": qty, "currentQuantity": current,
           "product": {"id": "gid://shopify/Product/300"},
           "variant": variant.map(|v| json!({"id": format!("gid://shopify/ProductVariant/{v}")})),
           "originalUnitPriceSet": money(price), "totalDiscountSet": money(discount),
           "discountedTotalSet": money(total)})
}

#[allow(clippy::too_many_arguments)]
fn order(
    n: u64,
    updated: &str,
    processed: &str,
    status: &str,
    lines: Vec<Value>,
    discounts: Vec<Value>,
    refunds: Vec<Value>,
    paged: bool,
) -> Value {
    json!({
        "id": format!("gid://shopify/Order/{n}"), "legacyResourceId": n.to_string(), "name": format!("#{}", n % 10000),
        "createdAt": processed, "updatedAt": updated, "processedAt": processed,
        "cancelledAt": null, "cancelReason": null, "test": false, "sourceName": "web", "tags": [],
        "email": " Ann@Example.com ", "phone": null, "currencyCode": "USD", "presentmentCurrencyCode": "USD",
        "displayFinancialStatus": status, "discountCodes": [],
        "customer": {"id": "gid://shopify/Customer/7001"},
        "subtotalPriceSet": both("30.00", "30.00", "USD"), "totalDiscountsSet": money("0.00"),
        "totalShippingPriceSet": money("0.00"), "totalTaxSet": money("0.00"),
        "totalPriceSet": both("30.00", "30.00", "USD"), "currentTotalPriceSet": money("30.00"),
        "totalRefundedSet": money("0.00"),
        "customerJourneySummary": {"ready": true, "firstVisit": visit("google", "cpc", "brand", "/"),
                                   "lastVisit": visit("klaviyo", "email", "welcome", "/products/a?utm_source=klaviyo")},
        "discountApplications": connection(discounts, paged),
        "lineItems": connection(lines, paged),
        "refunds": refunds,
    })
}

/// The records of the first run (landed 2026-03-03) and the second (2026-03-06).
fn first_run() -> Vec<(&'static str, Vec<Value>)> {
    // Multi-currency order: EUR presentment, a 10 % code and a fixed automatic discount, a line
    // whose variant was deleted; processed at 03:30 UTC = 22:30 on Feb 28 in New York.
    let mut multi = order(
        5551000000001,
        "2026-03-01T03:31:00Z",
        "2026-03-01T03:30:00Z",
        "PAID",
        vec![
            line(11, "A-1", 2, 2, "20.00", "6.00", "34.00", Some(401)),
            line(12, "B-1", 1, 1, "15.00", "4.50", "10.50", None),
        ],
        vec![
            json!({"__typename": "DiscountCodeApplication", "allocationMethod": "ACROSS", "targetType": "LINE_ITEM",
                   "targetSelection": "ALL", "value": {"__typename": "PricingPercentageValue", "percentage": 10.0},
                   "code": "WELCOME10"}),
            json!({"__typename": "AutomaticDiscountApplication", "allocationMethod": "ACROSS", "targetType": "LINE_ITEM",
                   "targetSelection": "ALL", "value": {"__typename": "MoneyV2", "amount": "5.0", "currencyCode": "EUR"},
                   "title": "Spring sale"}),
        ],
        vec![],
        true,
    );
    multi["presentmentCurrencyCode"] = json!("EUR");
    multi["discountCodes"] = json!(["WELCOME10"]);
    multi["subtotalPriceSet"] = both("44.50", "41.18", "EUR");
    multi["totalDiscountsSet"] = money("10.50");
    multi["totalShippingPriceSet"] = money("5.00");
    multi["totalTaxSet"] = money("3.56");
    multi["totalPriceSet"] = both("53.06", "49.10", "EUR");
    multi["currentTotalPriceSet"] = money("53.06");

    // First copy of an order that is refunded later.
    let refunded_old = order(
        5551000000002,
        "2026-03-02T10:00:00Z",
        "2026-03-02T09:59:00Z",
        "PAID",
        vec![line(21, "C-1", 3, 3, "10.00", "0.00", "30.00", Some(402))],
        vec![],
        vec![],
        true,
    );

    // Cancelled and voided, folded from a bulk read (no pageInfo).
    let mut cancelled = order(
        5551000000003,
        "2026-03-02T12:00:00Z",
        "2026-03-02T11:00:00Z",
        "VOIDED",
        vec![line(31, "A-1", 1, 0, "20.00", "0.00", "20.00", Some(401))],
        vec![],
        vec![],
        false,
    );
    cancelled["cancelledAt"] = json!("2026-03-02T12:00:00Z");
    cancelled["cancelReason"] = json!("CUSTOMER");

    let mut test_order = order(
        5551000000004,
        "2026-03-02T13:00:00Z",
        "2026-03-02T13:00:00Z",
        "PAID",
        vec![line(41, "A-1", 1, 1, "20.00", "0.00", "20.00", Some(401))],
        vec![],
        vec![],
        true,
    );
    test_order["test"] = json!(true);

    // Point of sale: no journey, a guest without email.
    let mut pos = order(
        5551000000005,
        "2026-03-02T15:00:00Z",
        "2026-03-02T15:00:00Z",
        "PAID",
        vec![line(51, "C-1", 1, 1, "10.00", "0.00", "10.00", Some(402))],
        vec![],
        vec![],
        true,
    );
    pos["sourceName"] = json!("pos");
    pos["customerJourneySummary"] = Value::Null;
    pos["customer"] = Value::Null;
    pos["email"] = Value::Null;

    let customer_old = json!({
        "id": "gid://shopify/Customer/7001", "legacyResourceId": "7001", "createdAt": "2025-12-01T00:00:00Z",
        "updatedAt": "2026-03-01T03:31:00Z", "firstName": "Ann", "lastName": "Lee", "state": "ENABLED", "tags": [],
        "numberOfOrders": "1", "amountSpent": {"amount": "53.06", "currencyCode": "USD"},
        "defaultEmailAddress": {"emailAddress": "ann@example.com", "marketingState": "SUBSCRIBED",
                                "marketingOptInLevel": "SINGLE_OPT_IN", "marketingUpdatedAt": "2025-12-01T00:00:00Z"},
        "defaultPhoneNumber": {"phoneNumber": "+15555550100", "smsMarketingConsent": {
            "marketingState": "NOT_SUBSCRIBED", "marketingOptInLevel": "UNKNOWN", "consentUpdatedAt": null,
            "consentCollectedFrom": "OTHER"}},
        "defaultAddress": {"countryCodeV2": "US", "provinceCode": "NY"},
    });
    let no_phone = json!({
        "id": "gid://shopify/Customer/7002", "legacyResourceId": "7002", "createdAt": "2026-01-05T00:00:00Z",
        "updatedAt": "2026-01-05T00:00:00Z", "firstName": null, "lastName": null, "state": "DISABLED", "tags": ["vip"],
        "numberOfOrders": "0", "amountSpent": {"amount": "0.0", "currencyCode": "USD"},
        "defaultEmailAddress": {"emailAddress": "bo@example.com", "marketingState": "NOT_SUBSCRIBED",
                                "marketingOptInLevel": null, "marketingUpdatedAt": null},
        "defaultPhoneNumber": null, "defaultAddress": null,
    });

    let product = json!({
        "id": "gid://shopify/Product/300", "legacyResourceId": "300", "title": "Tee", "handle": "tee",
        "productType": "Apparel", "vendor": "Us", "status": "ACTIVE", "tags": [],
        "createdAt": "2025-01-01T00:00:00Z", "updatedAt": "2026-02-01T00:00:00Z",
        "variants": connection(vec![
            json!({"__typename": "ProductVariant", "id": "gid://shopify/ProductVariant/401", "legacyResourceId": "401",
                   "title": "S", "sku": "A-1", "price": "20.00", "createdAt": "2025-01-01T00:00:00Z",
                   "updatedAt": "2026-02-01T00:00:00Z", "inventoryItem": {"id": "gid://shopify/InventoryItem/501"}}),
            json!({"__typename": "ProductVariant", "id": "gid://shopify/ProductVariant/402", "legacyResourceId": "402",
                   "title": "M", "sku": "C-1", "price": "10.00", "createdAt": "2025-01-01T00:00:00Z",
                   "updatedAt": "2026-02-01T00:00:00Z", "inventoryItem": {"id": "gid://shopify/InventoryItem/502"}}),
        ], true),
    });

    vec![
        ("shop", vec![shop()]),
        ("orders", vec![multi, refunded_old, cancelled, test_order, pos]),
        ("customers", vec![customer_old, no_phone]),
        ("products", vec![product]),
        (
            "inventory_items",
            vec![item(501, Some("8.00"), "2026-02-01T00:00:00Z"), item(502, None, "2026-02-01T00:00:00Z")],
        ),
    ]
}

fn second_run(first: &[(&'static str, Vec<Value>)]) -> Vec<(&'static str, Vec<Value>)> {
    let stale = first.iter().find(|(s, _)| *s == "orders").unwrap().1[1].clone();
    // The newer copy: a refund of one of the three units, returned to stock, bumped updatedAt.
    let mut refunded = stale.clone();
    refunded["updatedAt"] = json!("2026-03-05T12:00:00Z");
    refunded["displayFinancialStatus"] = json!("PARTIALLY_REFUNDED");
    refunded["totalRefundedSet"] = money("10.00");
    refunded["currentTotalPriceSet"] = money("20.00");
    refunded["lineItems"]["nodes"][0]["currentQuantity"] = json!(2);
    refunded["refunds"] = json!([{
        "id": "gid://shopify/Refund/9001", "createdAt": "2026-03-05T04:00:00Z", "note": "too big",
        "totalRefundedSet": money("10.00"),
        "refundLineItems": connection(vec![json!({"__typename": "RefundLineItem", "id": "gid://shopify/RefundLineItem/9101",
            "quantity": 1, "restockType": "RETURN", "lineItem": {"id": "gid://shopify/LineItem/21"},
            "subtotalSet": money("10.00")})], true),
        "transactions": connection(vec![json!({"__typename": "OrderTransaction", "id": "gid://shopify/OrderTransaction/9201",
            "kind": "REFUND", "status": "SUCCESS", "gateway": "shopify_payments", "processedAt": "2026-03-05T04:00:00Z",
            "amountSet": money("10.00")})], true),
    }]);

    let mut customer_new = first.iter().find(|(s, _)| *s == "customers").unwrap().1[0].clone();
    customer_new["updatedAt"] = json!("2026-03-02T10:00:00Z");
    customer_new["numberOfOrders"] = json!("2");
    customer_new["amountSpent"] = json!({"amount": "83.06", "currencyCode": "USD"});
    customer_new["defaultPhoneNumber"]["smsMarketingConsent"] = json!({"marketingState": "SUBSCRIBED",
        "marketingOptInLevel": "SINGLE_OPT_IN", "consentUpdatedAt": "2026-03-02T09:00:00Z", "consentCollectedFrom": "SHOPIFY"});

    vec![
        ("shop", vec![shop()]),
        // The refunded copy, and a stale re-read of the first copy (an overlap window) after it.
        ("orders", vec![refunded, stale]),
        ("customers", vec![customer_new]),
        ("products", vec![]),
        (
            "inventory_items",
            vec![item(501, Some("8.50"), "2026-03-05T00:00:00Z"), item(502, None, "2026-02-01T00:00:00Z")],
        ),
    ]
}

fn shop() -> Value {
    json!({"id": "gid://shopify/Shop/777", "name": "Test Brand", "myshopifyDomain": "test-brand.myshopify.com",
           "ianaTimezone": "America/New_York", "timezoneOffset": "-0500", "currencyCode": "USD"})
}

fn item(n: u64, cost: Option<&str>, updated: &str) -> Value {
    json!({"id": format!("gid://shopify/InventoryItem/{n}"), "legacyResourceId": n.to_string(),
           "sku": if n == 501 { "A-1" } else { "C-1" }, "tracked": true, "createdAt": "2025-01-01T00:00:00Z",
           "updatedAt": updated, "unitCost": cost.map(|c| json!({"amount": c, "currencyCode": "USD"})),
           "variant": {"id": format!("gid://shopify/ProductVariant/{}", n - 100), "product": {"id": "gid://shopify/Product/300"}}})
}

fn table(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shopify_records_land_and_stage() {
    let dir = tempfile::tempdir().unwrap();
    let cfg: StorageConfig = toml::from_str(&format!("url = \"file://{}\"", dir.path().display())).unwrap();
    let storage = Storage::open(&cfg, &Secrets::default()).unwrap();
    let first = first_run();
    let second = second_run(&first);
    land(&storage, "20260303T060000Z-aaaaaaaa", "2026-03-03T06:00:00Z", first).await;
    land(&storage, "20260306T060000Z-bbbbbbbb", "2026-03-06T06:00:00Z", second).await;

    let built = lifecycle_etl::transform::run(&storage, &[], "20260306T070000Z-cccccccc").await.unwrap();
    for (model, n) in [
        ("stg_shopify__orders", 4),
        ("stg_shopify__order_lines", 5),
        ("stg_shopify__refunds", 1),
        ("stg_shopify__refund_lines", 1),
        ("stg_shopify__discount_applications", 2),
        ("stg_shopify__customers", 2),
        ("stg_shopify__products", 1),
        ("stg_shopify__variants", 2),
        ("stg_shopify__inventory_item_costs", 4),
        ("stg_shopify__shop", 1),
    ] {
        assert_eq!(built.get(model), Some(&n), "{model}: {built:?}");
    }

    // Orders: the test order is gone, the newest copy of the refunded one won, amounts are shop
    // money, the local date is New York's.
    assert_eq!(
        rows(
            &storage,
            "select order_id, customer_id, financial_status, cancelled_at is not null, source_name, \
             subtotal_amount, total_discounts_amount, shipping_amount, tax_amount, total_amount, current_total_amount, \
             total_refunded_amount, presentment_currency, presentment_total_amount, discount_codes_joined, \
             utm_source, utm_medium, utm_campaign, first_visit_utm_source, shop_timezone, order_local_date, updated_at \
             from stg_shopify__orders order by order_id"
        )
        .await,
        table(&[
            &[
                "5551000000001",
                "7001",
                "paid",
                "false",
                "web",
                "44.5000",
                "10.5000",
                "5.0000",
                "3.5600",
                "53.0600",
                "53.0600",
                "0.0000",
                "EUR",
                "49.1000",
                "WELCOME10",
                "klaviyo",
                "email",
                "welcome",
                "google",
                "America/New_York",
                "2026-02-28",
                "2026-03-01T03:31:00Z",
            ],
            &[
                "5551000000002",
                "7001",
                "partially_refunded",
                "false",
                "web",
                "30.0000",
                "0.0000",
                "0.0000",
                "0.0000",
                "30.0000",
                "20.0000",
                "10.0000",
                "USD",
                "30.0000",
                "NULL",
                "klaviyo",
                "email",
                "welcome",
                "google",
                "America/New_York",
                "2026-03-02",
                "2026-03-05T12:00:00Z",
            ],
            &[
                "5551000000003",
                "7001",
                "voided",
                "true",
                "web",
                "30.0000",
                "0.0000",
                "0.0000",
                "0.0000",
                "30.0000",
                "30.0000",
                "0.0000",
                "USD",
                "30.0000",
                "NULL",
                "klaviyo",
                "email",
                "welcome",
                "google",
                "America/New_York",
                "2026-03-02",
                "2026-03-02T12:00:00Z",
            ],
            &[
                "5551000000005",
                "NULL",
                "paid",
                "false",
                "pos",
                "30.0000",
                "0.0000",
                "0.0000",
                "0.0000",
                "30.0000",
                "30.0000",
                "0.0000",
                "USD",
                "30.0000",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "America/New_York",
                "2026-03-02",
                "2026-03-02T15:00:00Z",
            ],
        ])
    );
    let hashed = rows(&storage, "select email_sha256 from stg_shopify__orders where order_id = 5551000000001").await;
    assert_eq!(hashed[0][0].len(), 64, "hashed, never plain");
    assert_eq!(
        rows(
            &storage,
            "select count(*) from stg_shopify__orders where email_sha256 = encode(sha256('ann@example.com'), 'hex')"
        )
        .await,
        table(&[&["3"]]),
        "the hash is of lower(trim(email)), like Klaviyo profiles"
    );

    // Lines: one row per line of the kept copy; the deleted variant stays as NULL.
    assert_eq!(
        rows(
            &storage,
            "select order_line_id, order_id, line_position, product_id, variant_id, sku, quantity, current_quantity, \
             unit_price_amount, gross_amount, line_discount_amount, discounted_total_amount \
             from stg_shopify__order_lines order by order_line_id"
        )
        .await,
        table(&[
            &["11", "5551000000001", "0", "300", "401", "A-1", "2", "2", "20.0000", "40.0000", "6.0000", "34.0000"],
            &["12", "5551000000001", "1", "300", "NULL", "B-1", "1", "1", "15.0000", "15.0000", "4.5000", "10.5000"],
            &["21", "5551000000002", "0", "300", "402", "C-1", "3", "2", "10.0000", "30.0000", "0.0000", "30.0000"],
            &["31", "5551000000003", "0", "300", "401", "A-1", "1", "0", "20.0000", "20.0000", "0.0000", "20.0000"],
            &["51", "5551000000005", "0", "300", "402", "C-1", "1", "1", "10.0000", "10.0000", "0.0000", "10.0000"],
        ])
    );

    // Refunds: the newer copy's refund, its line, New York local date (04:00 UTC = 23:00 on Mar 4).
    assert_eq!(
        rows(&storage, "select refund_id, order_id, refunded_at, refund_local_date, total_refunded_amount from stg_shopify__refunds")
            .await,
        table(&[&["9001", "5551000000002", "2026-03-05T04:00:00Z", "2026-03-04", "10.0000"]])
    );
    assert_eq!(
        rows(
            &storage,
            "select refund_id, refund_line_position, refund_line_id, order_id, order_line_id, quantity, restock_type, \
             subtotal_amount from stg_shopify__refund_lines"
        )
        .await,
        table(&[&["9001", "0", "9101", "5551000000002", "21", "1", "return", "10.0000"]])
    );

    // Net of the refunded order: gross 30 - returns 10.
    assert_eq!(
        rows(
            &storage,
            "select o.order_id, sum(l.gross_amount) - sum(l.line_discount_amount) \
             - coalesce(max(r.returns), cast(0 as decimal(18,4))) \
             from stg_shopify__orders o join stg_shopify__order_lines l on l.order_id = o.order_id \
             left join (select order_id, sum(subtotal_amount) as returns from stg_shopify__refund_lines group by order_id) r \
               on r.order_id = o.order_id \
             where o.order_id in (5551000000001, 5551000000002) group by o.order_id order by o.order_id"
        )
        .await,
        table(&[&["5551000000001", "44.5000"], &["5551000000002", "20.0000"]])
    );

    // Discount applications: a percentage code and a fixed automatic discount.
    assert_eq!(
        rows(
            &storage,
            "select order_id, application_index, application_type, discount_code, title, discount_label, \
             allocation_method, target_type, target_selection, value_type, value_amount, value_currency, value_percentage \
             from stg_shopify__discount_applications order by order_id, application_index"
        )
        .await,
        table(&[
            &[
                "5551000000001", "0", "discount_code", "WELCOME10", "NULL", "WELCOME10", "across", "line_item", "all",
                "percentage", "NULL", "NULL", "10.0",
            ],
            &[
                "5551000000001", "1", "automatic", "NULL", "Spring sale", "Spring sale", "across", "line_item", "all",
                "fixed_amount", "5.0000", "EUR", "NULL",
            ],
        ])
    );

    // Customers: latest copy, consent for both channels, no phone → no SMS consent.
    assert_eq!(
        rows(
            &storage,
            "select customer_id, email_sha256 is not null, phone_sha256 is not null, account_state, number_of_orders, \
             amount_spent_amount, email_consent, email_consent_opt_in_level, email_consent_at, sms_consent, \
             sms_consent_opt_in_level, sms_consent_at, sms_consent_collected_from, country_code \
             from stg_shopify__customers order by customer_id"
        )
        .await,
        table(&[
            &[
                "7001",
                "true",
                "true",
                "enabled",
                "2",
                "83.0600",
                "subscribed",
                "single_opt_in",
                "2025-12-01T00:00:00Z",
                "subscribed",
                "single_opt_in",
                "2026-03-02T09:00:00Z",
                "shopify",
                "US",
            ],
            &[
                "7002",
                "true",
                "false",
                "disabled",
                "0",
                "0.0000",
                "not_subscribed",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
                "NULL",
            ],
        ])
    );

    // Catalogue and cost history: one cost row per item per landed day; a missing cost stays NULL.
    assert_eq!(
        rows(&storage, "select product_id, product_title, product_type, product_status from stg_shopify__products")
            .await,
        table(&[&["300", "Tee", "Apparel", "active"]])
    );
    assert_eq!(
        rows(
            &storage,
            "select variant_id, product_id, variant_position, sku, price_amount, inventory_item_id \
             from stg_shopify__variants order by variant_id"
        )
        .await,
        table(&[&["401", "300", "0", "A-1", "20.0000", "501"], &["402", "300", "1", "C-1", "10.0000", "502"]])
    );
    assert_eq!(
        rows(
            &storage,
            "select inventory_item_id, snapshot_date, variant_id, product_id, unit_cost_amount \
             from stg_shopify__inventory_item_costs order by inventory_item_id, snapshot_date"
        )
        .await,
        table(&[
            &["501", "2026-03-03", "401", "300", "8.0000"],
            &["501", "2026-03-06", "401", "300", "8.5000"],
            &["502", "2026-03-03", "402", "300", "NULL"],
            &["502", "2026-03-06", "402", "300", "NULL"],
        ])
    );
    assert_eq!(
        rows(&storage, "select shop_id, shop_name, iana_timezone, shop_currency from stg_shopify__shop").await,
        table(&[&["777", "Test Brand", "America/New_York", "USD"]])
    );

    // The transform is repeatable over the same raw data.
    let again = lifecycle_etl::transform::run(&storage, &[], "20260306T080000Z-dddddddd").await.unwrap();
    assert_eq!(again, built);
}

/// A deployment without Shopify data (or before its first sync) still builds every model: the
/// Shopify staging tables are empty, not errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_builds_without_shopify_data() {
    let dir = tempfile::tempdir().unwrap();
    let cfg: StorageConfig = toml::from_str(&format!("url = \"file://{}\"", dir.path().display())).unwrap();
    let storage = Storage::open(&cfg, &Secrets::default()).unwrap();
    let built = lifecycle_etl::transform::run(&storage, &[], "20260306T070000Z-eeeeeeee").await.unwrap();
    let shopify: Vec<_> = built.iter().filter(|(m, _)| m.starts_with("stg_shopify__")).collect();
    assert_eq!(shopify.len(), 10, "{built:?}");
    assert!(shopify.iter().all(|(_, n)| **n == 0), "{shopify:?}");

    // Orders before the shop record: dates stay NULL rather than silently falling back to UTC.
    let mut records = first_run();
    records.retain(|(s, _)| *s == "orders");
    land(&storage, "20260303T060000Z-ffffffff", "2026-03-03T06:00:00Z", records).await;
    lifecycle_etl::transform::run(&storage, &[], "20260306T080000Z-ffffffff").await.unwrap();
    assert_eq!(
        rows(&storage, "select count(*), count(shop_timezone), count(order_local_date) from stg_shopify__orders").await,
        table(&[&["4", "0", "0"]])
    );
}
