//! The CLV marts (`fct_clv_customer`, `fct_clv`, `fct_repeat_purchase`) over the simulated brand
//! served by the fake Shopify: one row per person with a qualifying order, historical figures equal
//! to sums over `fct_orders`, predictive columns finite or NULL with a reason, Kaplan–Meier
//! probabilities monotone and equal to `lifecycle_etl::clv::repeat_purchase_metrics` run directly
//! on the (person, date) pairs read back from `fct_orders`, and a rerun that is byte-identical.

mod common;

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use common::*;
use lifecycle_etl::config::Secrets;
use lifecycle_etl::fake::shopify::{DEFAULT_ACCESS_TOKEN, ShopifyFakeConfig, serve};
use lifecycle_etl::pipeline::{Steps, SyncSelection, execute};
use lifecycle_etl::storage::Storage;

const TABLES: [&str; 3] = ["fct_clv", "fct_clv_customer", "fct_repeat_purchase"];

/// Qualifying orders with their person, on or before the fit date (the data cut-off).
const PERSON_ORDERS: &str = "from fct_orders o join int_order_person p on p.order_id = cast(o.order_id as bigint) \
     where o.is_qualifying and p.person_key is not null and o.order_date is not null \
     and o.order_date <= (select max(fit_date) from fct_clv_customer)";

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn opt(s: &str) -> Option<f64> {
    (s != "NULL").then(|| s.parse().unwrap())
}

async fn current_bytes(storage: &Storage) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for name in TABLES {
        let current = lifecycle_etl::transform::publish::current(storage, "marts", name).await.unwrap().unwrap();
        for f in current.files {
            out.push((name.to_string(), storage.get(&f).await.unwrap().unwrap().to_vec()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clv_marts_over_the_simulated_brand() {
    let (server, control) = serve(brand().0.clone(), ShopifyFakeConfig::default()).await.expect("fake Shopify starts");
    let dir = tempfile::tempdir().unwrap();
    let job = shopify_token_job(dir.path(), "clvtest", &server.base_url());
    let secrets = Secrets::default().with(SHOPIFY_TOKEN_ENV, DEFAULT_ACCESS_TOKEN);
    let storage = Storage::open(&job.file.storage, &secrets).unwrap();
    let out = run_ok(&job, &secrets, Steps::All, control.clock().now()).await;

    // fct_clv_customer: one row per person with a qualifying order (up to the cut-off), one fit date.
    let customers = scalar(&storage, "select count(*) from fct_clv_customer").await;
    assert!(customers > 50, "a brand with customers: {customers}");
    assert_eq!(scalar(&storage, "select count(distinct fit_date) from fct_clv_customer").await, 1);
    assert_eq!(
        scalar(&storage, &format!("select count(distinct p.person_key) {PERSON_ORDERS}")).await,
        customers,
        "one row per person with a qualifying order"
    );
    assert_eq!(scalar(&storage, "select count(distinct person_key) from fct_clv_customer").await, customers);

    // Historical figures equal sums over fct_orders.
    let mismatches = scalar(
        &storage,
        &format!(
            "select count(*) from fct_clv_customer c join (select p.person_key, count(*) n, sum(o.net_revenue) net, \
             sum(o.gross_margin) gm, min(o.order_date) first_d, max(o.order_date) last_d, \
             count(distinct o.order_date) days {PERSON_ORDERS} group by p.person_key) h on h.person_key = c.person_key \
             where h.n <> c.qualifying_orders or h.net <> c.net_revenue or h.gm <> c.gross_margin \
             or h.first_d <> c.first_order_date or h.last_d <> c.last_order_date or h.days - 1 <> c.frequency"
        ),
    )
    .await;
    assert_eq!(mismatches, 0, "order count, revenue, margin, dates and frequency equal fct_orders");
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_clv_customer where recency_weeks < 0 or recency_weeks > t_weeks \
             or (frequency = 0 and (recency_weeks <> 0 or monetary_value <> 0)) or (frequency > 0 and monetary_value <= 0)"
        )
        .await,
        0,
        "summary columns consistent"
    );

    // Predictive columns: finite where the fit succeeded, else NULL with a reason.
    let status = rows(&storage, "select prediction_status, count(*) from fct_clv_customer group by 1 order by 1").await;
    println!("prediction_status: {status:?}");
    let fit =
        rows(&storage, "select model_params, holdout_mape, prediction_note from fct_clv where segment_type = 'all'")
            .await;
    println!("fit: {fit:?}");
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_clv_customer where prediction_status = 'predicted' and not ( \
             p_alive between 0 and 1 and exp_purchases_90d >= 0 and exp_purchases_365d >= exp_purchases_90d \
             and exp_avg_spend > 0 and pred_clv_12m >= 0 and pred_clv_12m_margin is not null \
             and not isnan(p_alive) and not isnan(exp_purchases_365d) and not isnan(pred_clv_12m) \
             and pred_clv_12m < 1e12 and exp_purchases_365d < 1e6 and prediction_note is null)"
        )
        .await,
        0,
        "predicted rows have finite values in range"
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_clv_customer where prediction_status <> 'predicted' and \
             (prediction_note is null or pred_clv_12m is not null)"
        )
        .await,
        0,
        "rows without a prediction say why"
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_clv_customer where prediction_status = 'no_purchase_model' and \
             (p_alive is not null or exp_purchases_90d is not null)"
        )
        .await,
        0
    );

    // fct_clv: the `all` row covers every person; cohort quarters partition them.
    assert_eq!(
        scalar(&storage, "select customers from fct_clv where segment_type = 'all'").await,
        customers,
        "fct_clv all = persons"
    );
    for seg in ["cohort_quarter", "first_order_offer_type"] {
        assert_eq!(
            scalar(
                &storage,
                &format!("select cast(sum(customers) as bigint) from fct_clv where segment_type = '{seg}'")
            )
            .await,
            customers,
            "{seg} partitions the persons"
        );
    }
    assert_eq!(
        scalar(
            &storage,
            &format!(
                "select count(*) from fct_clv f, (select count(*) n, sum(o.net_revenue) net {PERSON_ORDERS} \
                 and o.order_date >= (select min(period_start) from fct_clv)) h \
                 where f.segment_type = 'all' and (f.orders_p <> h.n or f.net_revenue_p <> h.net)"
            )
        )
        .await,
        0,
        "fct_clv all orders and revenue in P equal fct_orders"
    );

    // fct_repeat_purchase: KM probabilities in [0, 1], monotone in the horizon.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_repeat_purchase where not (0 <= km_p2_30d and km_p2_30d <= km_p2_60d \
             and km_p2_60d <= km_p2_90d and km_p2_90d <= km_p2_180d and km_p2_180d <= km_p2_365d and km_p2_365d <= 1)"
        )
        .await,
        0,
        "KM probabilities monotone and in [0, 1]"
    );
    // … and equal to the clv module run directly on the (person, date) pairs of fct_orders.
    let pairs =
        rows(&storage, &format!("select p.person_key, cast(o.order_date as varchar) as d {PERSON_ORDERS}")).await;
    let mart = rows(
        &storage,
        "select cast(cohort_month as varchar) as m, cast(data_cutoff as varchar) as c, customers, second_purchasers, km_p2_30d, \
         km_p2_60d, km_p2_90d, km_p2_180d, km_p2_365d, km_median_days_to_second, median_days_to_second_observed, \
         mean_days_between_orders, repeat_rate_90d, repeat_rate_365d from fct_repeat_purchase \
         where cut_type = 'all' order by m",
    )
    .await;
    assert!(!mart.is_empty());
    let cutoff = date(&mart[0][1]);
    let mut first: BTreeMap<&str, NaiveDate> = BTreeMap::new();
    for p in &pairs {
        let d = date(&p[1]);
        first.entry(&p[0]).and_modify(|f| *f = (*f).min(d)).or_insert(d);
    }
    let mut cohorts: BTreeMap<NaiveDate, (Vec<String>, Vec<NaiveDate>)> = BTreeMap::new();
    for p in &pairs {
        let f = first[p[0].as_str()];
        let c = cohorts.entry(f.with_day(1).unwrap()).or_default();
        c.0.push(p[0].clone());
        c.1.push(date(&p[1]));
    }
    assert_eq!(cohorts.len(), mart.len(), "one `all` row per cohort month");
    for ((month, (people, dates)), row) in cohorts.iter().zip(&mart) {
        let m = lifecycle_etl::clv::repeat_purchase_metrics(people, dates, cutoff).unwrap();
        assert_eq!(date(&row[0]), *month);
        assert_eq!(row[2].parse::<usize>().unwrap(), m.customers, "{month}");
        assert_eq!(row[3].parse::<usize>().unwrap(), m.second_purchasers, "{month}");
        let expected = [
            Some(m.km_p2_30d),
            Some(m.km_p2_60d),
            Some(m.km_p2_90d),
            Some(m.km_p2_180d),
            Some(m.km_p2_365d),
            m.km_median_days_to_second,
            m.median_days_to_second_observed,
            m.mean_days_between_orders,
            m.repeat_rate_90d,
            m.repeat_rate_365d,
        ];
        for (i, e) in expected.into_iter().enumerate() {
            assert_eq!(opt(&row[4 + i]), e, "{month}: column {}", 4 + i);
        }
    }
    println!("fct_repeat_purchase all: {mart:?}");

    // A rerun of the transform on the same raw data writes byte-identical Parquet.
    let before = current_bytes(&storage).await;
    let rerun = execute(&job, &secrets, Steps::Transform, &SyncSelection::default(), None).await.unwrap();
    assert_ne!(rerun.run_id, out.run_id);
    let after = current_bytes(&storage).await;
    assert_eq!(before.len(), after.len());
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert!(a == b, "{name}: the rerun's Parquet differs");
    }
    server.shutdown().await;
}
