//! `dim_customer` (models.md 4.2) over the simulated brand served by the fake Shopify and the fake
//! Klaviyo: acquisition cohorts and first-order offer types against the simulator's truth, the
//! contract's invariants, and a rerun that gives identical rows.

mod common;

use lifecycle_etl::demo::verify::verify;

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use common::*;
use lifecycle_etl::config::Job;
use lifecycle_etl::pipeline::Steps;
use lifecycle_etl::simulate::model::{SimCustomer, SimOrder};
use lifecycle_etl::simulate::store::Entity;
use lifecycle_etl::storage::Storage;

/// The simulator's truth with the Shopify customer id as the person (guest orders left out):
/// cohort sizes by acquisition month (left-censored customers, models.md 1.5, have none) and
/// first-order offer types, in fct_orders' vocabulary.
#[derive(Debug, Default)]
struct Truth {
    cohorts: BTreeMap<String, i64>,
    offers: BTreeMap<String, i64>,
    channels: BTreeMap<String, i64>,
    customers_with_order: i64,
    left_censored: i64,
}

fn truth() -> Truth {
    let store = &brand().0;
    let orders: Vec<SimOrder> = store.read_all(Entity::Orders).unwrap();
    let customers: Vec<SimCustomer> = store.read_all(Entity::Customers).unwrap();
    let orders: Vec<&SimOrder> = orders.iter().filter(|o| !o.test).collect();
    let data_start = orders.iter().map(|o| ny_date(o.processed_at)).min().unwrap();
    let mut by_customer: HashMap<u64, Vec<&SimOrder>> = HashMap::new();
    for o in &orders {
        if let Some(c) = o.customer_id {
            by_customer.entry(c).or_default().push(o);
        }
    }
    let mut t = Truth::default();
    for c in &customers {
        let Some(mine) = by_customer.get_mut(&c.customer_id) else { continue };
        mine.sort_by_key(|o| (o.processed_at, o.order_id));
        let first_landed = ny_date(mine[0].processed_at);
        let censored = c.orders_count as usize > mine.len()
            || ((first_landed - data_start).num_days() <= 7 && ny_date(c.created_at) < data_start);
        t.left_censored += i64::from(censored);
        let Some(first) = mine.iter().find(|o| sim_order_qualifies(o)) else { continue };
        t.customers_with_order += 1;
        let offer = if first.discount_codes.is_empty() { "full_price" } else { "discount_code" };
        *t.offers.entry(offer.to_string()).or_default() += 1;
        *t.channels.entry(channel(first).to_string()).or_default() += 1;
        if !censored {
            let d = ny_date(first.processed_at);
            let month = NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap();
            *t.cohorts.entry(month.to_string()).or_default() += 1;
        }
    }
    t
}

/// The channel group the shipped map_acquisition_channel seed gives a simulated order: UTM rules
/// (email / sms media first, models.md 4.2), then the referrer's domain; the simulator's other
/// channels (referral blogs, influencer UTM without a matching rule, direct) fall to unknown or
/// to the referrer. Only web orders carry a customer journey (landing page, referrer, UTM) in
/// Shopify and in the fake; app, draft and POS orders have none and source_name rules for them.
fn channel(o: &SimOrder) -> &'static str {
    if o.source_name != "web" {
        return if o.source_name == "pos" { "retail" } else { "unknown" };
    }
    let host = o.referring_site.as_deref().map(|r| r.split('/').nth(2).unwrap_or("").to_string()).unwrap_or_default();
    match (o.utm_source.as_deref(), o.utm_medium.as_deref()) {
        (_, Some("email")) => "email",
        (_, Some("sms")) => "sms",
        (Some("google" | "bing"), Some("cpc" | "ppc" | "paid")) => "paid_search",
        (Some("facebook" | "instagram" | "meta" | "tiktok"), Some("paid" | "cpc" | "paid_social")) => "paid_social",
        _ if host.contains("google.") => "organic_search",
        _ if host.contains("facebook.") || host.contains("instagram.") => "organic_social",
        _ => "unknown",
    }
}

fn counts(rows: Vec<Vec<String>>) -> BTreeMap<String, i64> {
    rows.into_iter().map(|r| (r[0].clone(), r[1].parse().unwrap())).collect()
}

/// The whole transform step with the job's seeds.
async fn transform(storage: &Storage, job: &Job, run_id: &str) {
    let seeds = lifecycle_etl::seeds::load(job).unwrap();
    if let Err(e) = lifecycle_etl::transform::run(storage, &seeds, run_id).await {
        panic!("transform {run_id}: {}", lifecycle_etl::error::Chain(&e));
    }
}

const ALL_ROWS: &str = "select * from dim_customer order by person_key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_brand_cohorts_and_offers_match_the_simulator() {
    let BothFakes { klaviyo, shopify, control, job, secrets, storage, dir: _dir } = both_fakes().await;
    run_ok(&job, &secrets, Steps::Sync, control.clock().now()).await;
    transform(&storage, &job, "20991230T000000Z-firstaaa").await;
    let t = truth();
    assert!(t.customers_with_order > 100 && t.left_censored > 0, "{t:?}");

    // Grain: one row per person with an order or a Klaviyo profile.
    let persons = scalar(
        &storage,
        "select count(*) from (select person_key from fct_orders where person_key is not null \
         union select person_key from int_person_identifier where identifier_type = 'klaviyo_profile_id')",
    )
    .await;
    assert_eq!(scalar(&storage, "select count(*) from dim_customer").await, persons);
    assert_eq!(scalar(&storage, "select count(distinct person_key) from dim_customer").await, persons);
    // Prospects (a profile, no order) exist and carry no order columns.
    assert!(scalar(&storage, "select count(*) from dim_customer where landed_orders = 0").await > 0);
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from dim_customer where not has_order and (first_order_key is not null \
             or acquisition_cohort_month is not null or lifetime_orders <> 0 or first_order_offer_type is not null)"
        )
        .await,
        0
    );
    // The acquisition order is fct_orders' first order; lifetime figures are its qualifying sums.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from dim_customer d left join fct_orders o on o.order_key = d.first_order_key \
             where d.has_order and (o.is_first_order is not true or o.person_key <> d.person_key \
             or o.order_at <> d.acquisition_at)"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from dim_customer d join (select person_key, count(*) n, sum(net_revenue) r \
             from fct_orders where is_qualifying group by 1) o using (person_key) \
             where o.n <> d.lifetime_orders or o.r <> d.lifetime_net_revenue"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from dim_customer where (lifetime_orders >= 2) <> (second_order_at is not null) \
             or days_to_second_order < 0 or (has_order and acquisition_channel_group is null)"
        )
        .await,
        0
    );
    // Hashes only: 64 hex digits, never an address or a number.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from dim_customer where (email_sha256 is not null and \
             not regexp_like(email_sha256, '^[0-9a-f]{64}$')) or (phone_sha256 is not null and \
             not regexp_like(phone_sha256, '^[0-9a-f]{64}$'))"
        )
        .await,
        0
    );

    // Cohort sizes by acquisition month, persons with a Shopify customer id: the simulator's
    // customers' first qualifying orders, left-censored customers excluded.
    let cohorts = counts(
        rows(
            &storage,
            "select cast(acquisition_cohort_month as varchar), count(*) from dim_customer \
             where acquisition_cohort_month is not null and shopify_customer_ids is not null group by 1 order by 1",
        )
        .await,
    );
    assert_eq!(cohorts, t.cohorts, "cohort sizes by acquisition month");
    // Persons without a customer id are guest checkouts resolved by email or phone: the truth
    // (customer id as the person) leaves them out.
    let guest_cohorts = scalar(
        &storage,
        "select count(*) from dim_customer where acquisition_cohort_month is not null and shopify_customer_ids is null",
    )
    .await;
    let guest_first =
        scalar(&storage, "select count(distinct person_key) from fct_orders where is_first_order and is_guest").await;
    assert!(guest_cohorts <= guest_first, "{guest_cohorts} guest cohort members > {guest_first} guest first orders");
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from dim_customer where is_left_censored and shopify_customer_ids is not null"
        )
        .await,
        t.left_censored,
        "left-censored customers"
    );

    // First-order offer types of the customers: the simulator's codes on their first qualifying
    // order (every simulated offer but none is a code: percent_off, free_shipping, gift).
    let offers = counts(
        rows(
            &storage,
            "select first_order_offer_type, count(*) from dim_customer \
             where has_order and shopify_customer_ids is not null group by 1 order by 1",
        )
        .await,
    );
    assert_eq!(offers, t.offers, "first-order offer types");
    // Acquisition channel groups of the customers, from their first qualifying order's UTM and
    // referrer as the simulator drew them.
    let channels = counts(
        rows(
            &storage,
            "select acquisition_channel_group, count(*) from dim_customer \
             where has_order and shopify_customer_ids is not null group by 1 order by 1",
        )
        .await,
    );
    assert_eq!(channels, t.channels, "acquisition channel groups");
    let total: i64 = offers.values().sum();
    assert_eq!(total, t.customers_with_order);

    // The current RFM tier is the latest snapshot's; everyone in that snapshot has one.
    let latest =
        "(select * from fct_rfm_snapshot where snapshot_date = (select max(snapshot_date) from fct_rfm_snapshot))";
    let in_latest = scalar(&storage, &format!("select count(*) from {latest}")).await;
    assert!(in_latest > 100, "{in_latest} persons in the latest snapshot");
    assert_eq!(
        scalar(&storage, "select count(*) from dim_customer where rfm_tier_current is not null").await,
        in_latest
    );
    assert_eq!(
        scalar(
            &storage,
            &format!(
                "select count(*) from dim_customer d join {latest} r on r.person_key = d.person_key \
                 where d.rfm_tier_current <> r.rfm_tier or d.rfm_snapshot_date <> r.snapshot_date"
            )
        )
        .await,
        0
    );

    // A rerun on the same raw data gives identical rows.
    let first = rows(&storage, ALL_ROWS).await;
    transform(&storage, &job, "20991231T000000Z-rerunaaa").await;
    assert_eq!(rows(&storage, ALL_ROWS).await, first, "the rerun's rows differ");

    // The demo's own check agrees on this brand, figure by figure, and notices a lost partition.
    let figures = verify(&storage, &brand().0, chrono_tz::America::New_York, Default::default()).await.unwrap();
    assert!(figures.len() > 6 && figures.iter().all(|f| f.marts == f.simulator), "{figures:?}");
    let orders = figures.iter().find(|f| f.name == "fct_orders rows").unwrap();
    assert!(orders.marts > 100, "{orders:?}");
    let mut pointer =
        lifecycle_etl::transform::publish::current(&storage, "marts", "fct_orders").await.unwrap().unwrap();
    assert!(pointer.files.len() > 1);
    pointer.files.pop();
    storage.put("marts/fct_orders/_current.json", serde_json::to_vec(&pointer).unwrap()).await.unwrap();
    let err =
        verify(&storage, &brand().0, chrono_tz::America::New_York, Default::default()).await.unwrap_err().to_string();
    assert!(err.contains("fct_orders rows") && err.contains("simulator"), "{err}");
    klaviyo.shutdown().await;
    shopify.shutdown().await;
}
