//! End-to-end tests over real HTTP against a small simulated brand (seed 7, 2026-08-01 to
//! 2026-10-31), generated once per test binary, driven with the client's own documents from
//! `crate::sources::shopify::queries`.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};

use super::{DEFAULT_ACCESS_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, ShopifyControl, ShopifyFakeConfig, serve};
use crate::fake::FakeServer;
use crate::simulate::model::{SimCustomer, SimOrder, SimProduct, SimRefundLine};
use crate::simulate::store::{Entity, SimStore};
use crate::simulate::{SimConfig, generate};
use crate::sources::shopify::queries::{self, OrderPageShape};

const VERSION: &str = "2026-10";

const BRAND_PREFIX: &str = "shopify-fake-brand-";

/// The brand, generated once per test binary. Statics are never dropped, so the folder
/// outlives the run: entity folders the Shopify fake does not read are removed to keep it
/// small, and folders earlier runs left behind (older than an hour) are cleared here.
fn store() -> SimStore {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        remove_stale_brands();
        let dir = tempfile::Builder::new().prefix(BRAND_PREFIX).tempdir().unwrap();
        let cfg = SimConfig {
            seed: 7,
            scale: 1,
            start_date: NaiveDate::from_ymd_opt(2026, 8, 1).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            causal: Default::default(),
        };
        generate(&cfg, dir.path()).unwrap();
        for unused in ["events", "profiles", "consent_changes"] {
            let _ = std::fs::remove_dir_all(dir.path().join(unused));
        }
        dir
    });
    SimStore::open(dir.path()).unwrap()
}

fn remove_stale_brands() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let stale =
            e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|a| a.as_secs() > 3600));
        if stale && e.file_name().to_string_lossy().starts_with(BRAND_PREFIX) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn store_orders() -> Vec<SimOrder> {
    let mut v: Vec<SimOrder> = store().read_all(Entity::Orders).unwrap();
    v.sort_by_key(|o| o.order_id);
    v
}

fn store_customers() -> Vec<SimCustomer> {
    store().read_all(Entity::Customers).unwrap()
}

fn store_products() -> Vec<SimProduct> {
    store().read_all(Entity::Products).unwrap()
}

/// The default fake's now: the end of 2026-10-31 in New York.
fn end_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 4, 0, 0).unwrap()
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// "41.03" → 4103.
fn minor(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("amount {v}"));
    let (whole, frac) = s.split_once('.').unwrap();
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    sign * (whole.trim_start_matches('-').parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap())
}

fn shop_amount(bag: &Value) -> i64 {
    minor(&bag["shopMoney"]["amount"])
}

struct Harness {
    server: FakeServer,
    ctl: ShopifyControl,
    client: reqwest::Client,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Realistic defaults except a bucket that refills instantly, so paging tests are not slowed
/// by throttling (the throttling tests resize it).
fn cfg() -> ShopifyFakeConfig {
    ShopifyFakeConfig { restore_rate: 1e9, ..ShopifyFakeConfig::default() }
}

async fn start(cfg: ShopifyFakeConfig) -> Harness {
    let (server, ctl) = serve(store(), cfg).await.unwrap();
    Harness { server, ctl, client: reqwest::Client::new() }
}

impl Harness {
    async fn post_raw(&self, version: &str, token: Option<&str>, body: &Value) -> Reply {
        let mut req = self.client.post(self.ctl.graphql_url(version)).json(body);
        if let Some(t) = token {
            req = req.header("X-Shopify-Access-Token", t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Reply { status, headers, body: resp.text().await.unwrap() }
    }

    async fn gql_v(&self, version: &str, query: &str, variables: Value) -> Reply {
        self.post_raw(version, Some(DEFAULT_ACCESS_TOKEN), &json!({"query": query, "variables": variables})).await
    }

    /// A successful response's `data`; panics on errors.
    async fn data(&self, query: &str, variables: Value) -> Value {
        let r = self.gql_v(VERSION, query, variables).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        assert!(v.get("errors").is_none(), "{}", r.body);
        v["data"].clone()
    }

    /// Every node of a paged top-level connection, following `endCursor`.
    async fn paginate(&self, query: &str, root: &str, first: u32, search: Option<&str>) -> Vec<Value> {
        let mut after: Option<String> = None;
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let data = self.data(query, json!({"first": first, "after": after, "query": search})).await;
            let conn = &data[root];
            out.extend(conn["nodes"].as_array().unwrap().iter().cloned());
            if !conn["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                return out;
            }
            after = Some(conn["pageInfo"]["endCursor"].as_str().unwrap().to_string());
        }
        panic!("pagination did not end");
    }

    async fn download(&self, url: &str) -> (u16, String) {
        let resp = self.client.get(url).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// Starts a bulk job and polls it to a terminal status.
    async fn bulk(&self, version: &str, inner: &str) -> Value {
        let r = self.gql_v(version, queries::BULK_RUN, json!({"query": inner})).await.json();
        let payload = &r["data"]["bulkOperationRunQuery"];
        assert_eq!(payload["userErrors"], json!([]), "{r}");
        assert_eq!(payload["bulkOperation"]["status"], "CREATED");
        let id = payload["bulkOperation"]["id"].as_str().unwrap().to_string();
        self.poll_until_done(version, &id).await
    }

    async fn poll_until_done(&self, version: &str, id: &str) -> Value {
        let mut seen = Vec::new();
        for _ in 0..20 {
            let r = self.gql_v(version, queries::BULK_POLL, json!({"id": id})).await.json();
            let node = r["data"]["node"].clone();
            let status = node["status"].as_str().unwrap().to_string();
            seen.push(status.clone());
            if !["CREATED", "RUNNING", "CANCELING"].contains(&status.as_str()) {
                assert!(seen.contains(&"RUNNING".to_string()) || status == "CANCELED", "{seen:?}");
                return node;
            }
        }
        panic!("bulk job never finished: {seen:?}");
    }
}

fn jsonl(body: &str) -> Vec<Value> {
    body.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// Folds bulk JSONL back into records shaped like the paged ones: children go under their
/// parent (found by `__parentId`, possibly a refund inside an order) into the connection
/// their `__typename` belongs to, as a plain node list.
fn reassemble(lines: Vec<Value>) -> Vec<Value> {
    let conn_of = |ty: &str| match ty {
        "LineItem" => "lineItems",
        "ShippingLine" => "shippingLines",
        "RefundLineItem" => "refundLineItems",
        "OrderTransaction" => "transactions",
        "ProductVariant" => "variants",
        t if t.ends_with("Application") => "discountApplications",
        t => panic!("unexpected child type {t}"),
    };
    let mut roots: Vec<Value> = Vec::new();
    for mut line in lines {
        let Some(parent) = line.as_object_mut().unwrap().remove("__parentId") else {
            roots.push(line);
            continue;
        };
        let parent = parent.as_str().unwrap().to_string();
        let conn = conn_of(line["__typename"].as_str().unwrap());
        let root = roots.last_mut().expect("children follow their root");
        let target = if root["id"] == parent.as_str() {
            root
        } else {
            root["refunds"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|r| r["id"] == parent.as_str())
                .unwrap_or_else(|| panic!("parent {parent} not found"))
        };
        let list = target.as_object_mut().unwrap().entry(conn).or_insert_with(|| json!([]));
        list.as_array_mut().unwrap().push(line);
    }
    roots
}

/// A paged record with every connection replaced by its node list (and connections a bulk
/// line would not have carried, because they were empty, present as empty lists).
fn flatten_paged(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            if let Some(nodes) = m.get("nodes").filter(|_| m.contains_key("pageInfo")) {
                return flatten_paged(nodes);
            }
            Value::Object(m.iter().map(|(k, v)| (k.clone(), flatten_paged(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(flatten_paged).collect()),
        other => other.clone(),
    }
}

/// Empty child lists removed, so a bulk record (which has no key for a connection without
/// nodes) compares equal.
fn drop_empty_lists(v: &mut Value, keys: &[&str]) {
    match v {
        Value::Object(m) => {
            m.retain(|k, v| !(keys.contains(&k.as_str()) && v.as_array().is_some_and(Vec::is_empty)));
            for v in m.values_mut() {
                drop_empty_lists(v, keys);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| drop_empty_lists(i, keys)),
        _ => {}
    }
}

const CHILD_CONNECTIONS: &[&str] =
    &["lineItems", "shippingLines", "discountApplications", "refundLineItems", "transactions", "variants"];

#[tokio::test]
async fn auth_is_required_and_versions_fall_forward() {
    let h = start(cfg()).await;
    let body = json!({"query": queries::SHOP});
    for token in [None, Some("shpat_wrong")] {
        let r = h.post_raw(VERSION, token, &body).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
        );
        assert_eq!(r.header("x-shopify-api-version"), Some(VERSION));
    }
    let r = h.post_raw("2026-07", Some(DEFAULT_ACCESS_TOKEN), &body).await;
    assert_eq!((r.status, r.header("x-shopify-api-version")), (200, Some("2026-07")));
    // A retired version and the release candidate fall forward to the oldest supported one.
    for asked in ["2024-01", "2027-01"] {
        let r = h.post_raw(asked, Some(DEFAULT_ACCESS_TOKEN), &body).await;
        assert_eq!((r.status, r.header("x-shopify-api-version")), (200, Some("2025-04")), "{asked}");
    }
    // The served version decides the schema: 2025-04 has no smsMarketingConsent on phones.
    let r = h.gql_v("2024-01", &queries::customers_page(), json!({"first": 1})).await.json();
    assert_eq!(r["errors"][0]["extensions"]["code"], "undefinedField", "{r}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn client_credentials_tokens_expire() {
    let h = start(ShopifyFakeConfig { token_ttl: Duration::from_millis(400), ..cfg() }).await;
    let form = [
        ("client_id", DEFAULT_CLIENT_ID),
        ("client_secret", DEFAULT_CLIENT_SECRET),
        ("grant_type", "client_credentials"),
    ];
    let resp = h.client.post(h.ctl.token_url()).form(&form).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let minted: Value = resp.json().await.unwrap();
    let token = minted["access_token"].as_str().unwrap().to_string();
    assert!(token.starts_with("shpat_"));
    assert!(minted["scope"].as_str().unwrap().contains("read_all_orders"));
    assert_eq!(minted["expires_in"], 0, "400 ms rounds down to 0 s, minus one, saturating");
    let body = json!({"query": queries::SHOP});
    assert_eq!(h.post_raw(VERSION, Some(&token), &body).await.status, 200);
    // JSON bodies are accepted too; wrong secrets and grants are refused.
    let json_body = json!({"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET, "grant_type": "client_credentials"});
    let resp = h.client.post(h.ctl.token_url()).json(&json_body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let second = resp.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    let bad = [("client_id", DEFAULT_CLIENT_ID), ("client_secret", "nope"), ("grant_type", "client_credentials")];
    let resp = h.client.post(h.ctl.token_url()).form(&bad).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "invalid_client");
    let bad = [("client_id", DEFAULT_CLIENT_ID), ("client_secret", DEFAULT_CLIENT_SECRET), ("grant_type", "password")];
    let resp = h.client.post(h.ctl.token_url()).form(&bad).send().await.unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    // Mid-run expiry: the same token is refused once its lifetime is over.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(h.post_raw(VERSION, Some(&token), &body).await.status, 401);
    let ttl_cfg = ShopifyFakeConfig::default();
    assert_eq!(ttl_cfg.token_ttl.as_secs() - 1, 86399);
    // expire_tokens ends minted tokens early; the permanent token is unaffected.
    let _ = second;
    h.ctl.expire_tokens();
    assert_eq!(h.post_raw(VERSION, Some(DEFAULT_ACCESS_TOKEN), &body).await.status, 200);
    h.server.shutdown().await;
}

#[tokio::test]
async fn shop_query_reports_timezone_currency_and_scopes() {
    let h = start(cfg()).await;
    let d = h.data(queries::SHOP, json!({})).await;
    assert_eq!(d["shop"]["currencyCode"], "USD");
    assert_eq!(d["shop"]["ianaTimezone"], "America/New_York");
    assert_eq!(d["shop"]["timezoneOffset"], "-0400");
    assert_eq!(d["shop"]["myshopifyDomain"], "fernhill-botanics.myshopify.com");
    let scopes: Vec<&str> = d["currentAppInstallation"]["accessScopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["handle"].as_str().unwrap())
        .collect();
    assert!(scopes.contains(&"read_all_orders"), "{scopes:?}");
    h.server.shutdown().await;
}

fn order_shape() -> OrderPageShape {
    OrderPageShape::DEFAULT
}

/// The client's page sizes: an order costs 280 points with the default shape, a customer 6, a
/// product with 50 variants 103, an inventory item 4 (so `inventoryItems(first: 250)` would be
/// over the 1000-point cap, at 1002).
const ORDERS_FIRST: u32 = 3;
const CUSTOMERS_FIRST: u32 = 150;
const PRODUCTS_FIRST: u32 = 8;
const INVENTORY_FIRST: u32 = 200;

#[tokio::test]
async fn paged_orders_match_the_store() {
    let h = start(cfg()).await;
    let orders = h.paginate(&queries::orders_page(order_shape()), "orders", ORDERS_FIRST, None).await;
    let truth = store_orders();
    assert_eq!(orders.len(), truth.len());
    let by_id: HashMap<String, &SimOrder> =
        truth.iter().map(|o| (format!("gid://shopify/Order/{}", o.order_id), o)).collect();
    // Sorted by UPDATED_AT then id, every record once.
    let keys: Vec<(String, String)> =
        orders.iter().map(|o| (o["updatedAt"].as_str().unwrap().into(), o["id"].as_str().unwrap().into())).collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| (a.0.as_str(), by_id[&a.1].order_id).cmp(&(b.0.as_str(), by_id[&b.1].order_id)));
    assert_eq!(keys, sorted);
    let (mut lines, mut refunds, mut refunded, mut total, mut net_api) = (0usize, 0usize, 0i64, 0i64, 0i64);
    let mut multi_currency = 0;
    let mut journeys = (0, 0);
    let mut deleted_variants = 0;
    for o in &orders {
        let s = by_id[o["id"].as_str().unwrap()];
        assert_eq!(o["legacyResourceId"], s.order_id.to_string());
        assert_eq!(o["updatedAt"], ts(s.updated_at));
        assert_eq!(o["createdAt"], ts(s.created_at));
        assert_eq!(o["displayFinancialStatus"], s.financial_status.to_uppercase());
        assert_eq!(o["sourceName"], s.source_name);
        assert_eq!(shop_amount(&o["totalPriceSet"]), s.total_minor);
        assert_eq!(shop_amount(&o["subtotalPriceSet"]), s.subtotal_minor);
        assert_eq!(shop_amount(&o["totalDiscountsSet"]), s.total_discount_minor);
        assert_eq!(o["discountCodes"], json!(s.discount_codes));
        let li = o["lineItems"]["nodes"].as_array().unwrap();
        assert_eq!(li.len(), s.lines.len());
        assert!(!o["lineItems"]["pageInfo"]["hasNextPage"].as_bool().unwrap());
        let line_discounts: i64 = li.iter().map(|l| shop_amount(&l["totalDiscountSet"])).sum();
        assert_eq!(line_discounts, s.total_discount_minor, "line discounts add up to the order's");
        deleted_variants += li.iter().filter(|l| l["variant"].is_null()).count();
        assert!(li.iter().all(|l| l["__typename"] == "LineItem"));
        let apps = o["discountApplications"]["nodes"].as_array().unwrap();
        assert_eq!(apps.len(), s.discount_codes.len());
        lines += li.len();
        refunds += o["refunds"].as_array().unwrap().len();
        assert_eq!(o["refunds"].as_array().unwrap().len(), s.refunds.len());
        let refund_sum: i64 =
            o["refunds"].as_array().unwrap().iter().map(|r| shop_amount(&r["totalRefundedSet"])).sum();
        assert_eq!(shop_amount(&o["totalRefundedSet"]), refund_sum);
        for r in o["refunds"].as_array().unwrap() {
            let txns = r["transactions"]["nodes"].as_array().unwrap();
            if s.financial_status != "voided" {
                assert_eq!(txns.len(), 1);
                assert_eq!(txns[0]["kind"], "REFUND");
                assert_eq!(shop_amount(&txns[0]["amountSet"]), shop_amount(&r["totalRefundedSet"]));
            }
        }
        refunded += refund_sum;
        total += shop_amount(&o["totalPriceSet"]);
        if o["cancelledAt"].is_null() {
            let refunded_lines: i64 = o["refunds"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r["refundLineItems"]["nodes"].as_array().unwrap().clone())
                .map(|l| shop_amount(&l["subtotalSet"]))
                .sum();
            net_api += shop_amount(&o["subtotalPriceSet"]) - refunded_lines;
        }
        if o["presentmentCurrencyCode"] != "USD" {
            multi_currency += 1;
            assert_eq!(o["presentmentCurrencyCode"], s.presentment_currency);
            assert_eq!(o["totalPriceSet"]["presentmentMoney"]["currencyCode"], s.presentment_currency);
            assert_ne!(o["totalPriceSet"]["presentmentMoney"]["amount"], o["totalPriceSet"]["shopMoney"]["amount"]);
        }
        match (s.source_name.as_str(), &o["customerJourneySummary"]) {
            ("web", j) => {
                assert_eq!(j["ready"], true);
                assert!(j["firstVisit"]["landingPage"].as_str().unwrap().ends_with(s.landing_site.as_deref().unwrap()));
                assert_eq!(j["lastVisit"]["referrerUrl"], json!(s.referring_site));
                assert_eq!(j["lastVisit"]["utmParameters"]["campaign"], json!(s.utm_campaign));
                journeys.0 += 1;
            }
            (_, j) => {
                assert!(j.is_null(), "{} has no journey", s.source_name);
                journeys.1 += 1;
            }
        }
    }
    assert_eq!(lines, truth.iter().map(|o| o.lines.len()).sum::<usize>());
    assert_eq!(refunds, truth.iter().map(|o| o.refunds.len()).sum::<usize>());
    assert_eq!(refunded, truth.iter().flat_map(|o| &o.refunds).map(|r| r.amount_minor).sum::<i64>());
    assert_eq!(total, truth.iter().map(|o| o.total_minor).sum::<i64>());
    let net_truth: i64 = truth
        .iter()
        .filter(|o| o.cancelled_at.is_none())
        .map(|o| o.subtotal_minor - o.refunds.iter().flat_map(|r| &r.lines).map(|l| l.subtotal_minor).sum::<i64>())
        .sum();
    assert_eq!(net_api, net_truth);
    assert!(multi_currency > 0 && journeys.0 > 0 && journeys.1 > 0, "{multi_currency} {journeys:?}");
    assert!(deleted_variants > 0, "some lines point at deleted variants");
    h.server.shutdown().await;
}

#[tokio::test]
async fn paged_customers_products_and_inventory_match_the_store() {
    let h = start(cfg()).await;
    let customers = h.paginate(&queries::customers_page(), "customers", CUSTOMERS_FIRST, None).await;
    let truth = store_customers();
    assert_eq!(customers.len(), truth.len());
    let by_id: HashMap<String, &SimCustomer> =
        truth.iter().map(|c| (format!("gid://shopify/Customer/{}", c.customer_id), c)).collect();
    for c in &customers {
        let s = by_id[c["id"].as_str().unwrap()];
        assert_eq!(c["numberOfOrders"], s.orders_count.to_string());
        assert_eq!(minor(&c["amountSpent"]["amount"]), s.amount_spent_minor);
        assert_eq!(c["updatedAt"], ts(s.updated_at));
        let state = match s.email_marketing_consent {
            crate::simulate::model::ConsentState::Subscribed => "SUBSCRIBED",
            crate::simulate::model::ConsentState::Unsubscribed => "UNSUBSCRIBED",
            crate::simulate::model::ConsentState::NeverSubscribed => "NOT_SUBSCRIBED",
        };
        match &s.email {
            Some(e) => {
                assert_eq!(c["defaultEmailAddress"]["emailAddress"], e.as_str());
                assert_eq!(c["defaultEmailAddress"]["marketingState"], state);
            }
            None => assert!(c["defaultEmailAddress"].is_null()),
        }
        if s.phone.is_some() {
            assert!(c["defaultPhoneNumber"]["smsMarketingConsent"]["marketingState"].is_string());
        }
    }
    let products = h.paginate(&queries::products_page(), "products", PRODUCTS_FIRST, None).await;
    let truth = store_products();
    assert_eq!(products.len(), truth.len());
    let variants: usize = products.iter().map(|p| p["variants"]["nodes"].as_array().unwrap().len()).sum();
    assert_eq!(variants, truth.iter().map(|p| p.variants.len()).sum::<usize>());
    let items = h.paginate(&queries::inventory_items_page(), "inventoryItems", INVENTORY_FIRST, None).await;
    assert_eq!(items.len(), variants);
    let costs: HashMap<String, Option<i64>> = truth
        .iter()
        .flat_map(|p| &p.variants)
        .map(|v| (format!("gid://shopify/InventoryItem/{}", v.inventory_item_id), v.unit_cost_minor))
        .collect();
    for i in &items {
        let expected = costs[i["id"].as_str().unwrap()];
        match expected {
            Some(c) => assert_eq!(minor(&i["unitCost"]["amount"]), c),
            None => assert!(i["unitCost"].is_null()),
        }
        assert!(i["variant"]["product"]["id"].as_str().unwrap().starts_with("gid://shopify/Product/"));
    }
    assert!(costs.values().any(Option::is_none), "the catalogue has variants without cost");
    h.server.shutdown().await;
}

#[tokio::test]
async fn updated_window_selects_exactly_the_window() {
    let h = start(cfg()).await;
    let from = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(2026, 10, 8, 0, 0, 0).unwrap();
    let search = queries::updated_window(from, Some(to));
    let got = h.paginate("query($first: Int!, $after: String, $query: String) { orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) { pageInfo { hasNextPage endCursor } nodes { id updatedAt } } }", "orders", 7, Some(&search)).await;
    let mut got: Vec<String> = got.iter().map(|o| o["id"].as_str().unwrap().to_string()).collect();
    let mut want: Vec<String> = store_orders()
        .iter()
        .filter(|o| o.updated_at >= from && o.updated_at < to)
        .map(|o| format!("gid://shopify/Order/{}", o.order_id))
        .collect();
    got.sort();
    want.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    // Customers filter the same way; the open-ended form has no upper bound.
    let search = queries::updated_window(from, None);
    let got = h.paginate(&queries::customers_page(), "customers", 50, Some(&search)).await;
    assert_eq!(got.len(), store_customers().iter().filter(|c| c.updated_at >= from).count());
    // Inventory items also accept the camelCase form; orders ignore it (unknown term).
    let d = h
        .data("{ inventoryItems(first: 50, query: \"updatedAt:>'2030-01-01T00:00:00Z'\") { nodes { id } } }", json!({}))
        .await;
    assert_eq!(d["inventoryItems"]["nodes"], json!([]));
    let d = h
        .data("{ orders(first: 250, query: \"updatedAt:>'2030-01-01T00:00:00Z'\") { nodes { id } } }", json!({}))
        .await;
    assert_eq!(d["orders"]["nodes"].as_array().unwrap().len(), store_orders().len());
    // Reverse ordering by CREATED_AT, stable by id.
    let d = h.data("{ orders(first: 5, sortKey: CREATED_AT, reverse: true) { nodes { createdAt } } }", json!({})).await;
    let created: Vec<&str> =
        d["orders"]["nodes"].as_array().unwrap().iter().map(|n| n["createdAt"].as_str().unwrap()).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn page_size_and_cursor_errors() {
    let h = start(cfg()).await;
    let r = h.gql_v(VERSION, "{ orders(first: 251) { nodes { id } } }", json!({})).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("250"), "{v}");
    assert_eq!(v["errors"][0]["path"], json!(["orders"]));
    assert!(v.get("data").is_none());
    let v = h.gql_v(VERSION, "{ orders { nodes { id } } }", json!({})).await.json();
    assert_eq!(v["errors"][0]["message"], "you must provide one of first or last");
    // Nested connections need a page size too.
    let v = h.gql_v(VERSION, "{ orders(first: 1) { nodes { lineItems { nodes { id } } } } }", json!({})).await.json();
    assert_eq!(v["errors"][0]["message"], "you must provide one of first or last");
    let q = "query($after: String) { orders(first: 2, after: $after, sortKey: UPDATED_AT) { pageInfo { endCursor } nodes { id } } }";
    let v = h.gql_v(VERSION, q, json!({"after": "garbage"})).await.json();
    assert_eq!(v["errors"][0]["message"], "Invalid cursor for current pagination sort.");
    assert!(v["data"].is_null());
    assert!(v["extensions"]["cost"].is_object());
    // A cursor minted under another sort key is refused.
    let d = h.data("{ orders(first: 2, sortKey: CREATED_AT) { pageInfo { endCursor } } }", json!({})).await;
    let cursor = d["orders"]["pageInfo"]["endCursor"].as_str().unwrap();
    let v = h.gql_v(VERSION, q, json!({"after": cursor})).await.json();
    assert_eq!(v["errors"][0]["message"], "Invalid cursor for current pagination sort.");
    // Backwards paging with last/before mirrors forwards paging.
    let d = h.data("{ orders(first: 6) { edges { cursor node { id } } } }", json!({})).await;
    let edges = d["orders"]["edges"].as_array().unwrap();
    let before = edges[5]["cursor"].as_str().unwrap();
    let q = "query($before: String) { orders(last: 2, before: $before) { pageInfo { hasNextPage hasPreviousPage } nodes { id } } }";
    let d = h.data(q, json!({"before": before})).await;
    assert_eq!(d["orders"]["nodes"], json!([edges[3]["node"], edges[4]["node"]]));
    assert_eq!(d["orders"]["pageInfo"], json!({"hasNextPage": true, "hasPreviousPage": true}));
    h.server.shutdown().await;
}

#[tokio::test]
async fn unknown_fields_are_validation_errors_by_version() {
    let h = start(cfg()).await;
    let q = "query Orders { orders(first: 1) { nodes { id landingPageUrl } } }";
    let r = h.gql_v(VERSION, q, json!({})).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        v["errors"][0],
        json!({
            "message": "Field 'landingPageUrl' doesn't exist on type 'Order'",
            "locations": [{"line": 1, "column": 46}],
            "path": ["query Orders", "orders", "nodes", "landingPageUrl"],
            "extensions": {"code": "undefinedField", "typeName": "Order", "fieldName": "landingPageUrl"},
        })
    );
    assert!(v.get("data").is_none());
    // Nothing was charged for an invalid document.
    assert!(h.ctl.requests_cost().is_empty());
    // smsMarketingConsent on the phone only from 2026-10; the deprecated email still served.
    let q = "{ customers(first: 3) { nodes { email defaultPhoneNumber { smsMarketingConsent { marketingState } } } } }";
    let v = h.gql_v("2026-07", q, json!({})).await.json();
    assert_eq!(v["errors"][0]["message"], "Field 'smsMarketingConsent' doesn't exist on type 'CustomerPhoneNumber'");
    assert!(h.gql_v("2026-10", q, json!({})).await.json().get("errors").is_none());
    let v = h.gql_v("2026-07", "{ customers(first: 3) { nodes { email phone } } }", json!({})).await.json();
    assert!(v["data"]["customers"]["nodes"][0]["email"].is_string(), "{v}");
    // Scalars take no selection, objects need one, unknown arguments are refused.
    let v = h.gql_v(VERSION, "{ shop { name { x } plan } }", json!({})).await.json();
    let codes: Vec<&str> =
        v["errors"].as_array().unwrap().iter().map(|e| e["extensions"]["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["selectionMismatch", "selectionMismatch"]);
    let v = h.gql_v(VERSION, "{ orders(first: 1, since: 3) { nodes { id } } }", json!({})).await.json();
    assert_eq!(v["errors"][0]["extensions"]["code"], "argumentNotAccepted");
    let v = h.gql_v(VERSION, "{ orders(first: 1 { nodes { id } } }", json!({})).await.json();
    assert!(v["errors"][0]["message"].is_string());
    h.server.shutdown().await;
}

#[tokio::test]
async fn fragments_aliases_and_typenames() {
    let h = start(cfg()).await;
    let truth = store_orders();
    let with_code = truth.iter().find(|o| o.source_name == "web" && o.offer_type == "percent_off").unwrap();
    let q = "query One($id: ID!) {
        o: order(id: $id) {
            __typename
            ...Ids
            money: totalPriceSet { shopMoney { amount } }
            discountApplications(first: 5) {
                edges { cursor node {
                    __typename
                    ... on DiscountCodeApplication { code }
                    ... on AutomaticDiscountApplication { title }
                    value { __typename ... on PricingPercentageValue { percentage } ... on MoneyV2 { amount } }
                } }
            }
        }
        missing: order(id: \"gid://shopify/Order/1\") { id }
    }
    fragment Ids on Order { id legacyResourceId name }";
    let d = h.data(q, json!({"id": format!("gid://shopify/Order/{}", with_code.order_id)})).await;
    let o = &d["o"];
    assert_eq!(o["__typename"], "Order");
    assert_eq!(o["legacyResourceId"], with_code.order_id.to_string());
    assert_eq!(o["name"], with_code.name);
    assert_eq!(shop_amount(&json!({"shopMoney": o["money"]["shopMoney"]})), with_code.total_minor);
    let node = &o["discountApplications"]["edges"][0]["node"];
    assert_eq!(node["__typename"], "DiscountCodeApplication");
    assert_eq!(node["code"], with_code.discount_codes[0]);
    assert_eq!(node["value"]["__typename"], "PricingPercentageValue");
    assert!(node["value"]["percentage"].as_f64().unwrap() > 0.0);
    assert!(node.get("title").is_none());
    assert!(d["missing"].is_null());
    // Field order follows the selection, not the alphabet.
    let r = h.gql_v(VERSION, "{ shop { name id currencyCode } }", json!({})).await;
    let name_at = r.body.find("\"name\"").unwrap();
    assert!(
        name_at < r.body.find("\"id\"").unwrap()
            && r.body.find("\"id\"").unwrap() < r.body.find("currencyCode").unwrap()
    );
    // node(id:) resolves records too, and the four discount application types all occur.
    let mut seen = std::collections::BTreeSet::new();
    let orders = h.paginate("query($first: Int!, $after: String, $query: String) { orders(first: $first, after: $after, query: $query) { pageInfo { hasNextPage endCursor } nodes { discountApplications(first: 3) { nodes { __typename } } } } }", "orders", 100, None).await;
    for o in &orders {
        for a in o["discountApplications"]["nodes"].as_array().unwrap() {
            seen.insert(a["__typename"].as_str().unwrap().to_string());
        }
    }
    assert!(seen.contains("DiscountCodeApplication"), "{seen:?}");
    let d = h
        .data(
            "query($id: ID!) { node(id: $id) { id ... on Order { name } } }",
            json!({"id": format!("gid://shopify/Order/{}", with_code.order_id)}),
        )
        .await;
    assert_eq!(d["node"]["name"], with_code.name);
    h.server.shutdown().await;
}

#[tokio::test]
async fn nested_connections_page_and_the_line_item_follow_up() {
    let h = start(cfg()).await;
    let truth = store_orders();
    let multi = truth.iter().find(|o| o.lines.len() >= 3).unwrap();
    let id = format!("gid://shopify/Order/{}", multi.order_id);
    // Page a nested connection one line at a time.
    let q = "query($id: ID!, $after: String) { order(id: $id) { lineItems(first: 1, after: $after) { pageInfo { hasNextPage endCursor } nodes { id } } } }";
    let mut after: Option<String> = None;
    let mut ids = Vec::new();
    loop {
        let d = h.data(q, json!({"id": id, "after": after})).await;
        let c = &d["order"]["lineItems"];
        ids.extend(c["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()));
        if !c["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = c["pageInfo"]["endCursor"].as_str().map(str::to_string);
    }
    let want: Vec<String> = multi.lines.iter().map(|l| format!("gid://shopify/LineItem/{}", l.line_id)).collect();
    assert_eq!(ids, want);
    // The client's follow-up document asks for 60 lines at 15 points each: under the cap.
    let v = h.gql_v(VERSION, &queries::order_line_items(), json!({"id": id})).await.json();
    assert_eq!(v["extensions"]["cost"]["requestedQueryCost"], 903, "{v}");
    let d = h.data(&queries::order_line_items(), json!({"id": id, "after": null})).await;
    let nodes = d["order"]["lineItems"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), multi.lines.len());
    assert!(nodes.iter().all(|n| n["__typename"] == "LineItem"));
    assert_eq!(d["order"]["lineItems"]["pageInfo"]["hasNextPage"], false);
    h.server.shutdown().await;
}

#[tokio::test]
async fn cost_extension_refunds_the_difference() {
    let h = start(ShopifyFakeConfig { restore_rate: 0.001, ..cfg() }).await;
    let r = h.gql_v(VERSION, &queries::orders_page(order_shape()), json!({"first": ORDERS_FIRST})).await;
    let v = r.json();
    let cost = &v["extensions"]["cost"];
    let requested = cost["requestedQueryCost"].as_u64().unwrap();
    let actual = cost["actualQueryCost"].as_u64().unwrap();
    assert!(requested <= 1000 && requested > 800, "default order page costs {requested}");
    assert!(actual < requested, "{actual} < {requested}");
    assert_eq!(cost["throttleStatus"]["maximumAvailable"], 2000.0);
    assert_eq!(cost["throttleStatus"]["restoreRate"], 0.001);
    let available = cost["throttleStatus"]["currentlyAvailable"].as_f64().unwrap();
    assert!((available - (2000 - actual) as f64).abs() <= 1.0, "{available} vs {actual}");
    let log = h.ctl.requests_cost();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].operation.as_deref(), log[0].requested, log[0].actual),
        (Some("Orders"), requested, Some(actual))
    );
    // Every response carries the cost, mutations cost 10.
    let v = h.gql_v(VERSION, queries::BULK_CANCEL, json!({"id": "gid://shopify/BulkOperation/1"})).await.json();
    assert_eq!(v["extensions"]["cost"]["requestedQueryCost"], 10);
    assert_eq!(v["data"]["bulkOperationCancel"]["userErrors"][0]["message"], "Bulk operation does not exist");
    h.server.shutdown().await;
}

#[tokio::test]
async fn drained_bucket_throttles_with_200_or_429() {
    let h = start(cfg()).await;
    h.ctl.set_bucket(50.0, 1.0);
    let page = queries::orders_page(order_shape());
    let r = h.gql_v(VERSION, &page, json!({"first": ORDERS_FIRST})).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(
        v["errors"],
        json!([{"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}])
    );
    assert!(v.get("data").is_none());
    assert!(v["extensions"]["cost"]["actualQueryCost"].is_null());
    assert_eq!(v["extensions"]["cost"]["throttleStatus"]["maximumAvailable"], 50.0);
    // A cheap query still fits.
    let v = h.gql_v(VERSION, "{ shop { id } }", json!({})).await.json();
    assert_eq!(v["extensions"]["cost"]["requestedQueryCost"], 1);
    assert!(v["data"]["shop"]["id"].is_string());
    // Forced throttles, whatever the bucket holds.
    h.ctl.set_bucket(2000.0, 1e9);
    h.ctl.throttle_next(2);
    for _ in 0..2 {
        assert_eq!(
            h.gql_v(VERSION, "{ shop { id } }", json!({})).await.json()["errors"][0]["extensions"]["code"],
            "THROTTLED"
        );
    }
    assert!(h.gql_v(VERSION, "{ shop { id } }", json!({})).await.json().get("errors").is_none());
    assert_eq!(h.ctl.requests_cost().iter().filter(|c| c.throttled).count(), 3);
    h.server.shutdown().await;

    let h = start(ShopifyFakeConfig { throttle_status_429: true, restore_rate: 10.0, ..cfg() }).await;
    h.ctl.drain_bucket();
    let r = h.gql_v(VERSION, &page, json!({"first": ORDERS_FIRST})).await;
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((80..=90).contains(&wait), "842 points at 10 a second: {wait}");
    assert_eq!(r.json()["errors"][0]["extensions"]["code"], "THROTTLED");
    h.server.shutdown().await;
}

#[tokio::test]
async fn single_query_cost_cap() {
    let h = start(cfg()).await;
    let r = h.gql_v(VERSION, &queries::orders_page(order_shape()), json!({"first": 10})).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let requested = v["extensions"]["cost"]["requestedQueryCost"].as_u64().unwrap();
    assert!(requested > 1000);
    assert_eq!(
        v["errors"][0]["message"],
        format!("Query cost is {requested}, which exceeds the single query max cost limit (1000).")
    );
    assert_eq!(v["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED");
    assert!(h.ctl.requests_cost()[0].max_cost_exceeded);
    h.server.shutdown().await;
}

#[tokio::test]
async fn bulk_orders_equal_the_paged_orders() {
    let h = start(cfg()).await;
    let start_of_data = Utc.with_ymd_and_hms(2026, 8, 1, 0, 0, 0).unwrap();
    let search = queries::updated_window(start_of_data, None);
    let node = h.bulk(VERSION, &queries::orders_bulk(&search)).await;
    assert_eq!(node["status"], "COMPLETED");
    assert!(node["errorCode"].is_null() && node["partialDataUrl"].is_null());
    let (status, body) = h.download(node["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(node["fileSize"], body.len().to_string());
    let lines = jsonl(&body);
    assert_eq!(node["objectCount"], lines.len().to_string());
    let truth = store_orders();
    assert_eq!(node["rootObjectCount"], truth.len().to_string());
    // Refund children point at the refund, other children at the order.
    let refund_ids: Vec<String> =
        truth.iter().flat_map(|o| &o.refunds).map(|r| format!("gid://shopify/Refund/{}", r.refund_id)).collect();
    assert!(!refund_ids.is_empty());
    for l in &lines {
        match l["__typename"].as_str() {
            Some("RefundLineItem" | "OrderTransaction") => {
                panic!("refund children are not in an orders bulk file: {l}")
            }
            Some(_) => assert!(l["__parentId"].as_str().unwrap().starts_with("gid://shopify/Order/")),
            None => assert!(l.get("__parentId").is_none()),
        }
    }
    let line_keys: Vec<&str> = body.lines().nth(1).unwrap().split("\"__parentId\"").collect();
    assert_eq!(line_keys.len(), 2, "__parentId closes a child line");
    let bulk = reassemble(lines);
    let paged = h.paginate(&queries::orders_page(order_shape()), "orders", ORDERS_FIRST, Some(&search)).await;
    assert_eq!(bulk.len(), paged.len());
    let paged: BTreeMap<String, Value> = paged
        .iter()
        .map(|o| {
            let mut v = flatten_paged(o);
            drop_empty_lists(&mut v, CHILD_CONNECTIONS);
            (o["id"].as_str().unwrap().to_string(), v)
        })
        .collect();
    // Bulk queries cannot nest connections in the refunds list: the client reads refund lines
    // and transactions with a follow-up query, so they are compared without them.
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(refunds) = v.get_mut("refunds").and_then(Value::as_array_mut) {
            for r in refunds.iter_mut().filter_map(Value::as_object_mut) {
                r.remove("refundLineItems");
                r.remove("transactions");
            }
        }
        v
    };
    for b in &bulk {
        let mut b = strip(b);
        drop_empty_lists(&mut b, CHILD_CONNECTIONS);
        assert_eq!(&b, &strip(&paged[b["id"].as_str().unwrap()]));
    }
    let ops = h.ctl.bulk_operations();
    assert_eq!(ops.len(), 1);
    assert_eq!((ops[0].status.as_str(), ops[0].polls), ("COMPLETED", 3));
    h.server.shutdown().await;
}

#[tokio::test]
async fn bulk_customers_products_and_inventory() {
    let h = start(cfg()).await;
    let all = queries::updated_window(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap(), None);
    for (inner, page, root, first, n) in [
        (
            queries::customers_bulk(&all),
            queries::customers_page(),
            "customers",
            CUSTOMERS_FIRST,
            store_customers().len(),
        ),
        (queries::products_bulk(&all), queries::products_page(), "products", PRODUCTS_FIRST, store_products().len()),
        (queries::inventory_items_bulk(&all), queries::inventory_items_page(), "inventoryItems", INVENTORY_FIRST, 0),
    ] {
        let node = h.bulk(VERSION, &inner).await;
        let (_, body) = h.download(node["url"].as_str().unwrap()).await;
        let bulk = reassemble(jsonl(&body));
        let paged = h.paginate(&page, root, first, Some(&all)).await;
        if n > 0 {
            assert_eq!(bulk.len(), n, "{root}");
        }
        assert_eq!(bulk.len(), paged.len(), "{root}");
        let paged: BTreeMap<String, Value> =
            paged.iter().map(|o| (o["id"].as_str().unwrap().to_string(), flatten_paged(o))).collect();
        for b in &bulk {
            assert_eq!(b, &paged[b["id"].as_str().unwrap()], "{root}");
        }
    }
    h.server.shutdown().await;
}

#[tokio::test]
async fn bulk_validation_and_concurrency_by_version() {
    let h = start(cfg()).await;
    let run = |q: &str, version: &'static str| {
        let q = q.to_string();
        let h = &h;
        async move {
            h.gql_v(version, queries::BULK_RUN, json!({"query": q})).await.json()["data"]["bulkOperationRunQuery"]
                .clone()
        }
    };
    for (inner, message) in [
        ("{ shop { id name } }", "Bulk queries must contain at least one connection."),
        (
            "{ products { edges { node { id variants { edges { node { id product { id variants { edges { node { id } } } } } } } } } } }",
            "Bulk queries cannot contain connections with a nesting depth greater than 2.",
        ),
        (
            "{ orders { edges { node { id bogus } } } }",
            "Invalid bulk query: Field 'bogus' doesn't exist on type 'Order'",
        ),
        (
            "mutation { bulkOperationCancel(id: \"x\") { userErrors { message } } }",
            "Invalid operation type. Only `query` operations are supported.",
        ),
    ] {
        let p = run(inner, VERSION).await;
        assert!(p["bulkOperation"].is_null());
        assert_eq!(p["userErrors"][0]["code"], "INVALID", "{inner}");
        assert_eq!(p["userErrors"][0]["field"], json!(["query"]));
        assert_eq!(p["userErrors"][0]["message"], message, "{inner}");
    }
    let six = "{ orders { edges { node { id a: lineItems { edges { node { id } } } b: lineItems { edges { node { id } } } \
               c: lineItems { edges { node { id } } } d: lineItems { edges { node { id } } } e: lineItems { edges { node { id } } } } } } }";
    assert_eq!(
        run(six, VERSION).await["userErrors"][0]["message"],
        "Bulk queries cannot contain more than 5 connections."
    );
    // Before 2026-01 one query job at a time per shop.
    h.ctl.stall_next_bulk();
    let inner = "{ products { edges { node { id } } } }";
    let first = run(inner, "2025-10").await;
    let first_id = first["bulkOperation"]["id"].as_str().unwrap().to_string();
    let second = run(inner, "2025-10").await;
    assert!(second["bulkOperation"].is_null());
    assert_eq!(second["userErrors"][0]["code"], "OPERATION_IN_PROGRESS");
    assert_eq!(
        second["userErrors"][0]["message"],
        format!("A bulk query operation for this app and shop is already in progress: {first_id}.")
    );
    // From 2026-01 up to five run at once.
    for _ in 0..4 {
        assert!(run(inner, "2026-01").await["bulkOperation"]["id"].is_string());
    }
    assert_eq!(run(inner, "2026-01").await["userErrors"][0]["code"], "OPERATION_IN_PROGRESS");
    // The stalled job keeps running with a growing objectCount until cancelled.
    let mut counts = Vec::new();
    for _ in 0..3 {
        let n = h.gql_v("2025-10", queries::BULK_POLL, json!({"id": first_id})).await.json()["data"]["node"].clone();
        assert_eq!(n["status"], "RUNNING");
        counts.push(n["objectCount"].as_str().unwrap().parse::<u64>().unwrap());
    }
    assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
    let c = h.gql_v("2025-10", queries::BULK_CANCEL, json!({"id": first_id})).await.json();
    assert_eq!(c["data"]["bulkOperationCancel"]["bulkOperation"]["status"], "CANCELING");
    let n = h.poll_until_done("2025-10", &first_id).await;
    assert_eq!(n["status"], "CANCELED");
    assert!(n["url"].is_null());
    let c = h.gql_v("2025-10", queries::BULK_CANCEL, json!({"id": first_id})).await.json();
    assert_eq!(
        c["data"]["bulkOperationCancel"]["userErrors"][0]["message"],
        "A bulk operation cannot be canceled when it is canceled"
    );
    // currentBulkOperation polls the latest job too.
    let v = h.data("{ currentBulkOperation(type: QUERY) { id status } }", json!({})).await;
    assert!(v["currentBulkOperation"]["id"].is_string());
    h.server.shutdown().await;
}

#[tokio::test]
async fn strict_bulk_refuses_connections_inside_lists() {
    let h = start(ShopifyFakeConfig { bulk_strict: true, ..cfg() }).await;
    let inner = "{ orders { edges { node { id refunds { id refundLineItems { edges { node { id } } } } } } } }";
    let v = h.gql_v(VERSION, queries::BULK_RUN, json!({"query": inner})).await.json();
    let errors = v["data"]["bulkOperationRunQuery"]["userErrors"].as_array().unwrap().clone();
    assert!(
        errors.iter().any(|e| e["message"]
            == "Queries that contain a connection field within a list field are not currently supported."),
        "{errors:?}"
    );
    // The client's own bulk documents pass the strict rules.
    let all = queries::updated_window(Utc.with_ymd_and_hms(2026, 8, 1, 0, 0, 0).unwrap(), None);
    for inner in [queries::orders_bulk(&all), queries::customers_bulk(&all), queries::products_bulk(&all)] {
        let v = h.gql_v(VERSION, queries::BULK_RUN, json!({"query": inner})).await.json();
        let errors = &v["data"]["bulkOperationRunQuery"]["userErrors"];
        assert_eq!(errors, &json!([]), "{v}");
    }
    h.server.shutdown().await;
}

#[tokio::test]
async fn bulk_failures_partial_data_and_expiring_urls() {
    let h = start(ShopifyFakeConfig { bulk_url_ttl: Duration::from_millis(500), ..cfg() }).await;
    let inner =
        queries::customers_bulk(&queries::updated_window(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap(), None));
    h.ctl.fail_next_bulk("TIMEOUT", true);
    let node = h.bulk(VERSION, &inner).await;
    assert_eq!(node["status"], "FAILED");
    assert_eq!(node["errorCode"], "TIMEOUT");
    assert!(node["url"].is_null());
    let (status, body) = h.download(node["partialDataUrl"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let lines = jsonl(&body);
    assert_eq!(lines.len(), store_customers().len() / 2);
    assert_eq!(node["objectCount"], lines.len().to_string());
    h.ctl.fail_next_bulk("ACCESS_DENIED", false);
    let node = h.bulk(VERSION, &inner).await;
    assert_eq!((node["status"].as_str(), node["errorCode"].as_str()), (Some("FAILED"), Some("ACCESS_DENIED")));
    assert!(node["partialDataUrl"].is_null());
    // A completed job's URL works, a tampered one never does, and both end with 403.
    let node = h.bulk(VERSION, &inner).await;
    let url = node["url"].as_str().unwrap().to_string();
    assert_eq!(h.download(&url).await.0, 200);
    let (status, body) = h.download(&url.replace("Signature=", "Signature=00")).await;
    assert_eq!(status, 403);
    assert!(body.contains("SignatureDoesNotMatch"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = h.download(&url).await;
    assert_eq!(status, 403);
    assert!(body.contains("ExpiredToken"));
    let id = node["id"].as_str().unwrap();
    let n = h.gql_v(VERSION, queries::BULK_POLL, json!({"id": id})).await.json();
    assert_eq!(n["data"]["node"]["status"], "EXPIRED");
    h.server.shutdown().await;
}

#[tokio::test]
async fn added_refund_moves_an_old_order_into_the_new_window() {
    let h = start(cfg()).await;
    let now = end_now();
    let window = queries::updated_window(now - chrono::Duration::days(1), Some(now));
    let q = "query($first: Int!, $after: String, $query: String) { orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) { pageInfo { hasNextPage endCursor } nodes { id updatedAt displayFinancialStatus totalRefundedSet { shopMoney { amount } } refunds { id createdAt } } } }";
    let before = h.paginate(q, "orders", 50, Some(&window)).await;
    let truth = store_orders();
    let old = truth
        .iter()
        .filter(|o| o.refunds.is_empty() && o.cancelled_at.is_none() && o.financial_status == "paid")
        .min_by_key(|o| o.created_at)
        .unwrap();
    let gid = format!("gid://shopify/Order/{}", old.order_id);
    assert!(!before.iter().any(|o| o["id"] == gid.as_str()));
    let at = now - chrono::Duration::hours(2);
    let line = &old.lines[0];
    let refund_id = h
        .ctl
        .add_refund(
            old.order_id,
            at,
            500,
            vec![SimRefundLine { line_id: line.line_id, quantity: 1, subtotal_minor: 470 }],
        )
        .unwrap();
    let after = h.paginate(q, "orders", 50, Some(&window)).await;
    let moved = after.iter().find(|o| o["id"] == gid.as_str()).expect("the refunded order is in the new window");
    assert_eq!(moved["updatedAt"], ts(at));
    assert_eq!(moved["displayFinancialStatus"], "PARTIALLY_REFUNDED");
    assert_eq!(minor(&moved["totalRefundedSet"]["shopMoney"]["amount"]), 500);
    assert_eq!(moved["refunds"][0]["id"], format!("gid://shopify/Refund/{refund_id}"));
    assert_eq!(after.len(), before.len() + 1);
    // Deleted orders disappear from listings and lookups.
    assert!(h.ctl.delete_order(old.order_id));
    let after = h.paginate(q, "orders", 50, Some(&window)).await;
    assert_eq!(after.len(), before.len());
    let d = h.data("query($id: ID!) { order(id: $id) { id } }", json!({"id": gid})).await;
    assert!(d["order"].is_null());
    assert!(h.ctl.add_refund(1, at, 1, Vec::new()).is_none());
    h.server.shutdown().await;
}

#[tokio::test]
async fn without_read_all_orders_only_sixty_days_are_visible() {
    let scopes = vec!["read_orders".to_string(), "read_customers".into(), "read_products".into()];
    let h = start(ShopifyFakeConfig { scopes, ..cfg() }).await;
    let q = "query($first: Int!, $after: String, $query: String) { orders(first: $first, after: $after, query: $query) { pageInfo { hasNextPage endCursor } nodes { id createdAt } } }";
    let got = h.paginate(q, "orders", 250, None).await;
    let cutoff = end_now() - chrono::Duration::days(60);
    let truth = store_orders();
    let want = truth.iter().filter(|o| o.created_at >= cutoff).count();
    assert!(want < truth.len() && want > 0);
    assert_eq!(got.len(), want);
    let old = truth.iter().find(|o| o.created_at < cutoff).unwrap();
    let d = h
        .data(
            "query($id: ID!) { order(id: $id) { id } }",
            json!({"id": format!("gid://shopify/Order/{}", old.order_id)}),
        )
        .await;
    assert!(d["order"].is_null());
    let d = h.data(queries::SHOP, json!({})).await;
    assert!(!d["currentAppInstallation"]["accessScopes"].to_string().contains("read_all_orders"));
    h.server.shutdown().await;
}

#[tokio::test]
async fn as_of_view_hides_later_refunds_and_orders() {
    let truth = store_orders();
    let refunded = truth
        .iter()
        .filter(|o| o.cancelled_at.is_none() && o.refunds.len() == 1)
        .max_by_key(|o| o.refunds[0].created_at - o.created_at)
        .unwrap();
    let refund_at = refunded.refunds[0].created_at;
    let now = refund_at - chrono::Duration::minutes(1);
    let h = start(ShopifyFakeConfig { now: Some(now), ..cfg() }).await;
    let gid = format!("gid://shopify/Order/{}", refunded.order_id);
    let q = "query($id: ID!) { order(id: $id) { updatedAt displayFinancialStatus refunds { id } totalRefundedSet { shopMoney { amount } } currentTotalPriceSet { shopMoney { amount } } lineItems(first: 5) { nodes { quantity currentQuantity } } } }";
    let d = h.data(q, json!({"id": gid})).await;
    let o = &d["order"];
    assert_eq!(o["refunds"], json!([]));
    assert_eq!(o["displayFinancialStatus"], "PAID");
    assert_eq!(minor(&o["totalRefundedSet"]["shopMoney"]["amount"]), 0);
    assert_eq!(minor(&o["currentTotalPriceSet"]["shopMoney"]["amount"]), refunded.total_minor);
    assert!(o["updatedAt"].as_str().unwrap() < ts(refund_at).as_str());
    for l in o["lineItems"]["nodes"].as_array().unwrap() {
        assert_eq!(l["quantity"], l["currentQuantity"]);
    }
    let listed = h
        .paginate("query($first: Int!, $after: String, $query: String) { orders(first: $first, after: $after, query: $query) { pageInfo { hasNextPage endCursor } nodes { id } } }", "orders", 250, None)
        .await;
    assert_eq!(listed.len(), truth.iter().filter(|o| o.created_at <= now).count());
    // Moving the clock past the refund makes it happen.
    h.server.clock().set(end_now());
    let d = h.data(q, json!({"id": gid})).await;
    assert_eq!(d["order"]["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(d["order"]["updatedAt"], ts(refunded.updated_at));
    assert_eq!(d["order"]["displayFinancialStatus"], refunded.financial_status.to_uppercase());
    h.server.shutdown().await;
}

#[tokio::test]
async fn injected_faults_use_shopify_bodies() {
    let h = start(cfg()).await;
    h.server.faults().fail_next(1, 500);
    let r = h.gql_v(VERSION, queries::SHOP, json!({})).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["errors"][0]["extensions"]["code"], "INTERNAL_SERVER_ERROR");
    h.server.faults().fail_next(1, 503);
    let r = h.gql_v(VERSION, queries::SHOP, json!({})).await;
    assert_eq!(r.status, 503);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    h.server.faults().throttle_next(1, 2);
    let r = h.gql_v(VERSION, queries::SHOP, json!({})).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("2")));
    assert_eq!(r.json()["errors"][0]["extensions"]["code"], "THROTTLED");
    assert_eq!(h.gql_v(VERSION, queries::SHOP, json!({})).await.status, 200);
    h.server.shutdown().await;
}

#[tokio::test]
async fn client_documents_cost_where_the_page_sizes_say() {
    let h = start(cfg()).await;
    let requested = |r: &Reply| r.json()["extensions"]["cost"]["requestedQueryCost"].as_u64().unwrap();
    let cases = [
        (queries::orders_page(order_shape()), ORDERS_FIRST, 2 + 3 * 280),
        (queries::customers_page(), CUSTOMERS_FIRST, 2 + 150 * 6),
        (queries::products_page(), PRODUCTS_FIRST, 2 + 8 * 103),
        (queries::inventory_items_page(), INVENTORY_FIRST, 2 + 200 * 4),
    ];
    for (doc, first, cost) in &cases {
        let r = h.gql_v(VERSION, doc, json!({"first": first})).await;
        assert!(r.json().get("errors").is_none(), "{}", r.body);
        assert_eq!(requested(&r), *cost as u64);
        // A bigger page (within the 250 maximum) is over the single-query cap.
        let r = h.gql_v(VERSION, doc, json!({"first": (first * 2).min(250)})).await;
        assert_eq!(r.json()["errors"][0]["extensions"]["code"], "MAX_COST_EXCEEDED", "{}", r.body);
    }
    let r = h.gql_v(VERSION, queries::SHOP, json!({})).await;
    assert_eq!(requested(&r), 3, "shop 1 + installation 1 + one access scope 1");
    let r = h.gql_v(VERSION, queries::BULK_POLL, json!({"id": "gid://shopify/BulkOperation/9"})).await;
    assert_eq!(requested(&r), 1);
    assert_eq!(r.json()["extensions"]["cost"]["actualQueryCost"], 0, "a null node costs nothing");
    h.server.shutdown().await;
}

#[tokio::test]
async fn journey_is_not_ready_within_the_first_hour() {
    let web = store_orders().into_iter().find(|o| o.source_name == "web" && o.created_at == o.processed_at).unwrap();
    let h = start(ShopifyFakeConfig { now: Some(web.processed_at + chrono::Duration::minutes(30)), ..cfg() }).await;
    let q =
        "query($id: ID!) { order(id: $id) { customerJourneySummary { ready firstVisit { id } lastVisit { id } } } }";
    let d = h.data(q, json!({"id": format!("gid://shopify/Order/{}", web.order_id)})).await;
    assert_eq!(d["order"]["customerJourneySummary"], json!({"ready": false, "firstVisit": null, "lastVisit": null}));
    h.server.clock().advance(chrono::Duration::hours(1));
    let d = h.data(q, json!({"id": format!("gid://shopify/Order/{}", web.order_id)})).await;
    assert_eq!(d["order"]["customerJourneySummary"]["ready"], true);
    assert!(d["order"]["customerJourneySummary"]["lastVisit"]["id"].is_string());
    h.server.shutdown().await;
}
