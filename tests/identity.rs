//! Identity resolution end to end: hand-built Shopify and Klaviyo records landed through the real
//! landing code, then the simulated brand served by both fakes (models.md 1.3).

mod common;

use common::*;
use lifecycle_etl::config::{Secrets, StorageConfig};
use lifecycle_etl::pipeline::Steps;
use lifecycle_etl::storage::Storage;
use serde_json::{Value, json};

fn customer(n: u64, email: Option<&str>, created: &str) -> Value {
    json!({"id": format!("gid://shopify/Customer/{n}"), "legacyResourceId": n.to_string(),
           "createdAt": created, "updatedAt": created, "state": "ENABLED", "tags": [],
           "defaultEmailAddress": email.map(|e| json!({"emailAddress": e}))})
}

fn order(n: u64, customer: Option<u64>, email: Option<&str>, created: &str) -> Value {
    let money = |a: &str| json!({"shopMoney": {"amount": a, "currencyCode": "USD"}});
    json!({"id": format!("gid://shopify/Order/{n}"), "legacyResourceId": n.to_string(), "name": format!("#{n}"),
           "createdAt": created, "updatedAt": created, "processedAt": created, "test": false,
           "sourceName": "web", "tags": [], "email": email, "phone": null, "currencyCode": "USD",
           "presentmentCurrencyCode": "USD", "displayFinancialStatus": "PAID", "discountCodes": [],
           "customer": customer.map(|c| json!({"id": format!("gid://shopify/Customer/{c}")})),
           "subtotalPriceSet": money("10.00"), "totalDiscountsSet": money("0.00"),
           "totalShippingPriceSet": money("0.00"), "totalTaxSet": money("0.00"), "totalPriceSet": money("10.00"),
           "currentTotalPriceSet": money("10.00"), "totalRefundedSet": money("0.00"),
           "discountApplications": {"nodes": []}, "lineItems": {"nodes": []}})
}

fn profile(
    id: &str,
    email: Option<&str>,
    phone: Option<&str>,
    external: Option<&str>,
    created: &str,
    updated: &str,
) -> Value {
    json!({"type": "profile", "id": id, "attributes": {"email": email, "phone_number": phone, "external_id": external,
           "created": created, "updated": updated}})
}

fn shop() -> Value {
    json!({"id": "gid://shopify/Shop/777", "name": "Test Brand", "myshopifyDomain": "test-brand.myshopify.com",
           "ianaTimezone": "America/New_York", "timezoneOffset": "-0500", "currencyCode": "USD"})
}

const IDENTITY: &str = "select person_key, identifier_type, identifier_value, cast(first_seen_at as varchar), \
                        cast(last_seen_at as varchar), cast(is_blocked as varchar) from int_person_identifier";
const HISTORY: &str = "select old_person_key, new_person_key, cast(changed_at as varchar) from int_person_key_history";

/// The person key of one identifier (`value` already in normal form, or an email to hash).
async fn key(storage: &Storage, kind: &str, value_sql: &str) -> String {
    let sql = format!(
        "select person_key from int_person_identifier where identifier_type = '{kind}' and identifier_value = {value_sql}"
    );
    let r = rows(storage, &sql).await;
    assert_eq!(r.len(), 1, "{kind} {value_sql}: {r:?}");
    r[0][0].clone()
}

/// Runs every model. A failure of a model built after identity (marts that other work has in
/// flight) is reported but does not fail these tests: the identity models are published first.
async fn transform(storage: &Storage, run_id: &str) {
    if let Err(e) = lifecycle_etl::transform::run(storage, &[], run_id).await {
        panic!("transform {run_id}: {}", lifecycle_etl::error::Chain(&e));
    }
}

fn email(e: &str) -> String {
    format!("encode(sha256('{e}'), 'hex')")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_built_records_resolve_with_guard_rails_and_key_history() {
    let dir = tempfile::tempdir().unwrap();
    let cfg: StorageConfig = toml::from_str(&format!("url = \"file://{}\"", dir.path().display())).unwrap();
    let storage = Storage::open(&cfg, &Secrets::default()).unwrap();

    let mut customers = vec![
        customer(1001, Some("Ann@mail.test "), "2026-01-05T00:00:00Z"),
        customer(3001, Some("bob@mail.test"), "2026-02-01T00:00:00Z"),
        customer(4001, Some("noreply@brand.test"), "2026-02-01T00:00:00Z"),
        customer(4002, Some("noreply@brand.test"), "2026-02-02T00:00:00Z"),
    ];
    // One email on 21 customers: more than 20, so it merges nothing.
    customers.extend((0..21).map(|n| customer(2000 + n, Some("family@mail.test"), "2026-01-10T00:00:00Z")));
    let orders = vec![
        order(5001, None, Some(" ANN@mail.test"), "2026-02-03T00:00:00Z"),
        order(5002, None, None, "2026-02-04T00:00:00Z"),
    ];
    land_source(
        &storage,
        "shopify",
        "20260303T060000Z-aaaaaaaa",
        "2026-03-03T06:00:00Z",
        vec![("shop", vec![shop()]), ("customers", customers), ("orders", orders)],
    )
    .await;
    land_source(
        &storage,
        "klaviyo",
        "20260303T060000Z-aaaaaaab",
        "2026-03-03T06:00:00Z",
        vec![(
            "profiles",
            vec![
                profile("P1", Some("ann@mail.test"), None, None, "2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z"),
                profile("P2", None, Some("+12125550100"), None, "2026-02-10T00:00:00Z", "2026-02-10T00:00:00Z"),
            ],
        )],
    )
    .await;
    transform(&storage, "20260303T070000Z-cccccccc").await;
    // 25 customers, 4 emails, P1, P2 and P2's phone; the guest order 5002 adds nothing.
    assert_eq!(scalar(&storage, "select count(*) from int_person_identifier").await, 25 + 4 + 3);
    assert_eq!(scalar(&storage, "select count(*) from int_person_key_history").await, 0);

    // A customer, its Klaviyo profile and an order with only the email: one person, keyed by the
    // oldest identifier (the profile, created first; its email ties with it and sorts first).
    let ann = key(&storage, "email_sha256", &email("ann@mail.test")).await;
    assert_eq!(key(&storage, "shopify_customer_id", "'777:1001'").await, ann);
    assert_eq!(key(&storage, "klaviyo_profile_id", "'P1'").await, ann);
    let expected = rows(&storage, &format!("select md5('email_sha256|' || {})", email("ann@mail.test"))).await;
    assert_eq!(ann, expected[0][0]);
    let first_seen = rows(
        &storage,
        &format!(
            "select cast(first_seen_at as varchar) from int_person_identifier where identifier_value = {}",
            email("ann@mail.test")
        ),
    )
    .await;
    assert_eq!(first_seen[0][0], "2025-12-01T00:00:00Z");

    // The shared email and the role address are blocked and merge nothing.
    let blocked =
        rows(&storage, "select identifier_type, count(*) from int_person_identifier where is_blocked group by 1").await;
    assert_eq!(blocked, vec![vec!["email_sha256".to_string(), "2".to_string()]]);
    let family_persons = scalar(
        &storage,
        "select count(distinct person_key) from int_person_identifier \
         where identifier_value like '777:20%' or identifier_value like '777:40%'",
    )
    .await;
    assert_eq!(family_persons, 23);

    // Bob and profile P2 are two persons until P2 gets Bob's email.
    let bob = key(&storage, "shopify_customer_id", "'777:3001'").await;
    let p2 = key(&storage, "klaviyo_profile_id", "'P2'").await;
    assert_ne!(bob, p2);
    let first = rows(&storage, &format!("{IDENTITY} order by 2, 3")).await;

    // A rerun on the same data: identical rows.
    transform(&storage, "20260303T080000Z-dddddddd").await;
    assert_eq!(rows(&storage, &format!("{IDENTITY} order by 2, 3")).await, first);

    land_source(
        &storage,
        "klaviyo",
        "20260304T060000Z-eeeeeeee",
        "2026-03-04T06:00:00Z",
        vec![(
            "profiles",
            vec![profile(
                "P2",
                Some("bob@mail.test"),
                Some("+12125550100"),
                None,
                "2026-02-10T00:00:00Z",
                "2026-03-01T00:00:00Z",
            )],
        )],
    )
    .await;
    transform(&storage, "20260304T070000Z-ffffffff").await;
    assert_eq!(key(&storage, "klaviyo_profile_id", "'P2'").await, bob, "the older key wins");
    assert_eq!(key(&storage, "phone_sha256", &format!("encode(sha256('{}'), 'hex')", "+12125550100")).await, bob);
    let history = rows(&storage, HISTORY).await;
    assert_eq!(history, vec![vec![p2.clone(), bob.clone(), "2026-03-01T00:00:00Z".to_string()]]);

    // Another run: the history is carried, nothing new moves.
    let after = rows(&storage, &format!("{IDENTITY} order by 2, 3")).await;
    transform(&storage, "20260304T080000Z-gggggggg").await;
    assert_eq!(rows(&storage, HISTORY).await, history);
    assert_eq!(rows(&storage, &format!("{IDENTITY} order by 2, 3")).await, after);

    // Plain emails and phones live only in the restricted dimension, one row per person, the
    // latest value seen; blocked addresses are attached to nobody.
    let contact = |p: &str| {
        format!("select email, email_source, phone, phone_source from dim_customer_contact where person_key = '{p}'")
    };
    assert_eq!(
        rows(&storage, &contact(&bob)).await,
        vec![vec!["bob@mail.test", "klaviyo_profile", "+12125550100", "klaviyo_profile"]]
    );
    assert_eq!(rows(&storage, &contact(&ann)).await, vec![vec!["ann@mail.test", "shopify_order", "NULL", "NULL"]]);
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from dim_customer_contact where email like 'noreply%' or email like 'family%'"
        )
        .await,
        0
    );
    for (path, c) in lifecycle_etl::contract::all().unwrap() {
        if c.layer == "raw" || c.layer == "restricted" {
            continue;
        }
        for col in c.columns.iter().filter(|col| col.column_type == lifecycle_etl::contract::ColumnType::Utf8) {
            let sql = format!(
                "select count(*) from {} where \"{}\" like '%@mail.test%' or \"{}\" like '%2125550100%'",
                c.name, col.name, col.name
            );
            assert_eq!(scalar(&storage, &sql).await, 0, "{path}: column {} holds a plain email or phone", col.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_brand_resolves_customers_and_profiles() {
    let BothFakes { klaviyo: _klaviyo, shopify: _shopify, control, job, secrets, storage, dir: _dir } =
        both_fakes().await;
    run_ok(&job, &secrets, Steps::Sync, control.clock().now()).await;
    transform(&storage, "20991230T000000Z-firstaaa").await;

    // Every Shopify customer resolves; every profile with an external id lands on its customer.
    let customers = scalar(&storage, "select count(*) from stg_shopify__customers").await;
    assert!(customers > 0);
    let resolved = scalar(
        &storage,
        "select count(*) from stg_shopify__customers c join stg_shopify__shop s on true \
         join int_person_identifier i on i.identifier_type = 'shopify_customer_id' \
         and i.identifier_value = cast(s.shop_id as varchar) || ':' || cast(c.customer_id as varchar)",
    )
    .await;
    assert_eq!(resolved, customers);
    let linked = scalar(&storage, "select count(*) from stg_klaviyo__profiles where external_id is not null").await;
    assert!(linked > 0);
    let same = scalar(
        &storage,
        "select count(*) from stg_klaviyo__profiles p join stg_shopify__shop s on true \
         join int_person_identifier k on k.identifier_type = 'klaviyo_profile_id' and k.identifier_value = p.profile_id \
         join int_person_identifier c on c.identifier_type = 'shopify_customer_id' \
         and c.identifier_value = cast(s.shop_id as varchar) || ':' || p.external_id \
         where k.person_key = c.person_key",
    )
    .await;
    assert_eq!(same, linked, "profiles with an external id share their customer's person");
    let persons = scalar(&storage, "select count(distinct person_key) from int_person_identifier").await;
    let unlinked = scalar(&storage, "select count(*) from stg_klaviyo__profiles where external_id is null").await;
    // Guest orders (no customer id) with an email or phone nobody else has are persons too.
    let guests = scalar(
        &storage,
        "select count(*) from stg_shopify__orders where customer_id is null \
         and (email_sha256 is not null or phone_sha256 is not null)",
    )
    .await;
    assert!(
        persons <= customers + unlinked + guests,
        "{persons} persons > {customers} customers + {unlinked} profiles + {guests} guest orders"
    );
    let blocked = scalar(&storage, "select count(*) from int_person_identifier where is_blocked").await;
    assert_eq!(blocked, 0, "the simulated brand has no role addresses or shared emails");

    // Every order with an identifier has a person, and an order's person is its customer's.
    let unresolved = "select count(*) from int_order_person p join stg_shopify__orders o using (order_id) \
                      where p.person_key is null and (o.customer_id is not null or o.email_sha256 is not null)";
    assert_eq!(scalar(&storage, unresolved).await, 0, "orders with an identifier resolve");
    let mismatched = "select count(*) from int_order_person p join stg_shopify__orders o using (order_id) \
                      join int_person_identifier i on i.identifier_type = 'shopify_customer_id' \
                      and i.identifier_value like concat('%:', cast(o.customer_id as varchar)) \
                      where p.person_key <> i.person_key";
    assert_eq!(scalar(&storage, mismatched).await, 0, "an order's person is its customer's");

    // A rerun on the same raw data gives identical rows and no key history.
    let first = rows(&storage, &format!("{IDENTITY} order by 2, 3")).await;
    transform(&storage, "20991231T000000Z-rerunaaa").await;
    assert_eq!(rows(&storage, &format!("{IDENTITY} order by 2, 3")).await, first);
    assert_eq!(scalar(&storage, "select count(*) from int_person_key_history").await, 0);
}
