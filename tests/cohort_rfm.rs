//! The cohort and RFM marts (`fct_cohort_retention`, `dim_rfm_cutpoints`, `fct_rfm_snapshot`,
//! `fct_rfm_transitions`, `fct_segment_matrix`, with their helpers `int_cohort_person_orders` and
//! `int_rfm_person_snapshots`): the simulated brand through the fake Shopify against the
//! simulator's truth; exact percentile cut points on a hand-built base; the golden numbers of
//! models.md 6.9 on CDNOW, with the models' SQL run over CDNOW orders.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{Field, Schema};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use common::*;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::fake::shopify::{DEFAULT_ACCESS_TOKEN, ShopifyFakeConfig, serve};
use lifecycle_etl::pipeline::Steps;
use lifecycle_etl::simulate::model::{SimCustomer, SimOrder};
use lifecycle_etl::simulate::store::Entity;
use lifecycle_etl::storage::Storage;
use lifecycle_etl::transform::model::Body;

// ---------------------------------------------------------------------------------------------
// Running the models' SQL over hand-fed tables
// ---------------------------------------------------------------------------------------------

/// The SQL text of a model.
fn model_sql(name: &str) -> String {
    let m = lifecycle_etl::transform::all_models().unwrap().into_iter().find(|m| m.name == name).unwrap();
    match m.body {
        Body::Sql(sql) => sql,
        Body::Rust(_) => panic!("{name} is not SQL"),
    }
}

fn register(ctx: &SessionContext, name: &str, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
    ctx.register_table(name, Arc::new(table)).unwrap();
}

/// Runs a model's SQL in `ctx` and registers its output under the model's name.
async fn build(ctx: &SessionContext, name: &str) {
    let batches = ctx.sql(&model_sql(name)).await.unwrap().collect().await.unwrap();
    let schema = batches.first().map(|b| b.schema()).unwrap();
    let table = MemTable::try_new(schema, vec![batches]).unwrap();
    ctx.register_table(name, Arc::new(table)).unwrap();
}

fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
}

fn settings(ctx: &SessionContext) {
    register(
        ctx,
        "cfg_settings",
        vec![
            ("key", Arc::new(StringArray::from(vec!["reporting_tz", "rfm_lookback_days"])) as ArrayRef),
            ("value", Arc::new(StringArray::from(vec!["America/New_York", "730"])) as ArrayRef),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Exact percentiles on a hand-built base
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cutpoints_are_exact_continuous_percentiles() {
    let ctx = SessionContext::new_with_config(lifecycle_etl::transform::session_config());
    // Snapshot A: recency 1..=6 and monetary 10, 20, 30, 40, 50, 1000.01 (n = 6: h = p * 5 / 100,
    // so p20 = x1, p40 = x2, p60 = x3, p80 = x4; a float rank 0.6 * 5 = 3.0000000000000004 must not
    // interpolate). Snapshot B: recency 0, 7, 10, 300, 1000 and one unscored person; n = 5: h = 0.8,
    // 1.6, 2.4, 3.2. Ties: three equal monetary values in B.
    let snap_a = days(NaiveDate::from_ymd_opt(2026, 8, 31).unwrap());
    let snap_b = days(NaiveDate::from_ymd_opt(2026, 9, 30).unwrap());
    let rows: Vec<(i32, bool, i32, i128)> = vec![
        (snap_a, true, 1, 100_000),
        (snap_a, true, 6, 200_000),
        (snap_a, true, 3, 300_000),
        (snap_a, true, 2, 10_000_100),
        (snap_a, true, 5, 400_000),
        (snap_a, true, 4, 500_000),
        (snap_b, true, 0, 150_000),
        (snap_b, true, 7, 150_000),
        (snap_b, true, 10, 150_000),
        (snap_b, true, 300, 5_000),
        (snap_b, true, 1000, 999_999),
        (snap_b, false, 800, 0),
    ];
    register(
        &ctx,
        "int_rfm_person_snapshots",
        vec![
            ("snapshot_date", Arc::new(Date32Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())) as ArrayRef),
            ("is_scored", Arc::new(BooleanArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>()))),
            ("recency_days", Arc::new(Int32Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>()))),
            (
                "monetary",
                Arc::new(
                    Decimal128Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())
                        .with_precision_and_scale(18, 4)
                        .unwrap(),
                ),
            ),
        ],
    );
    build(&ctx, "dim_rfm_cutpoints").await;
    let got = query(
        &ctx,
        "select cast(snapshot_date as varchar), dimension, p20, p40, p60, p80, scored_base_size \
         from dim_rfm_cutpoints order by 1, 2",
    )
    .await;
    let want: Vec<Vec<String>> = [
        "2026-08-31 monetary 20.0 30.0 40.0 50.0 6",
        "2026-08-31 recency 2.0 3.0 4.0 5.0 6",
        // monetary sorted 0.5, 15, 15, 15, 99.9999: 0.5 + 14.5 * 0.8; 15; 15; 15 + 84.9999 * 0.2
        "2026-09-30 monetary 12.1 15.0 15.0 31.99998 5",
        // recency sorted 0, 7, 10, 300, 1000: 5.6; 7 + 3 * 0.6; 10 + 290 * 0.4; 300 + 700 * 0.2
        "2026-09-30 recency 5.6 8.8 126.0 440.0 5",
    ]
    .iter()
    .map(|r| r.split_whitespace().map(str::to_string).collect())
    .collect();
    let close = |a: &str, b: &str| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() < 1e-9,
        _ => a == b,
    };
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(g.iter().zip(w).all(|(a, b)| close(a, b)), "got {g:?}, want {w:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Simulated brand through the fake Shopify
// ---------------------------------------------------------------------------------------------

/// The marts these tests cover and what they read (the rerun check compares their files).
const MARTS: [&str; 9] = [
    "fct_order_lines",
    "fct_orders",
    "int_cohort_person_orders",
    "int_rfm_person_snapshots",
    "dim_rfm_cutpoints",
    "fct_cohort_retention",
    "fct_rfm_snapshot",
    "fct_rfm_transitions",
    "fct_segment_matrix",
];

/// The whole transform step with the job's seeds.
async fn transform_all(job: &Job, storage: &Storage, run_id: &str) {
    let seeds = lifecycle_etl::seeds::load(job).unwrap();
    if let Err(e) = lifecycle_etl::transform::run(storage, &seeds, run_id).await {
        panic!("transform {run_id}: {}", lifecycle_etl::error::Chain(&e));
    }
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap()
}

/// Cohort sizes per acquisition month from the simulator: the first qualifying order of each
/// person, in New York time. A person is a Shopify customer; a guest order (no customer id) joins
/// the customer with its email (lower-case, trimmed), else is a person of its own by email, else by
/// phone, else belongs to no one (int_order_person, models.md 1.3). Left-censored customers
/// (models.md 1.5: lifetime counter above the orders served, or first order within 7 days of the
/// data start and created before it) are excluded. Also the data's last local date.
struct SimTruth {
    cohorts: BTreeMap<NaiveDate, i64>,
    guest_persons: i64,
    data_end: NaiveDate,
}

fn sim_truth() -> SimTruth {
    let store = &brand().0;
    let orders: Vec<SimOrder> = store.read_all(Entity::Orders).unwrap();
    let customers: Vec<SimCustomer> = store.read_all(Entity::Customers).unwrap();
    let kept: Vec<&SimOrder> = orders.iter().filter(|o| !o.test).collect();
    let data_start = kept.iter().map(|o| ny_date(o.processed_at)).min().unwrap();
    let data_end = kept.iter().map(|o| ny_date(o.processed_at)).max().unwrap();
    let norm = |e: &Option<String>| e.as_ref().map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty());
    let mut served: BTreeMap<u64, u32> = BTreeMap::new();
    let mut customer_by_email: BTreeMap<String, u64> = BTreeMap::new();
    for c in &customers {
        if let Some(e) = norm(&c.email) {
            customer_by_email.entry(e).or_insert(c.customer_id);
        }
    }
    for o in &orders {
        if let Some(c) = o.customer_id {
            *served.entry(c).or_default() += 1;
            if let Some(e) = norm(&o.email) {
                customer_by_email.entry(e).or_insert(c);
            }
        }
    }
    let person = |o: &SimOrder| -> Option<(Option<u64>, String)> {
        if let Some(c) = o.customer_id {
            return Some((Some(c), format!("c{c}")));
        }
        if let Some(e) = norm(&o.email) {
            return Some(match customer_by_email.get(&e) {
                Some(c) => (Some(*c), format!("c{c}")),
                None => (None, format!("e{e}")),
            });
        }
        o.phone.as_ref().filter(|p| !p.trim().is_empty()).map(|p| (None, format!("p{}", p.trim())))
    };
    let mut first_landed: BTreeMap<String, NaiveDate> = BTreeMap::new();
    let mut first_qualifying: BTreeMap<String, (DateTime<Utc>, u64, Option<u64>)> = BTreeMap::new();
    for o in &kept {
        let Some((customer, key)) = person(o) else { continue };
        let d = ny_date(o.processed_at);
        first_landed.entry(key.clone()).and_modify(|x| *x = (*x).min(d)).or_insert(d);
        if sim_order_qualifies(o) {
            let v = (o.processed_at, o.order_id, customer);
            first_qualifying.entry(key).and_modify(|x| *x = (*x).min(v)).or_insert(v);
        }
    }
    let by_id: BTreeMap<u64, &SimCustomer> = customers.iter().map(|c| (c.customer_id, c)).collect();
    let (mut cohorts, mut guest_persons) = (BTreeMap::new(), 0);
    for (key, (at, _, customer)) in &first_qualifying {
        let censored = customer.is_some_and(|c| {
            let cust = by_id[&c];
            cust.orders_count > served.get(&c).copied().unwrap_or(0)
                || ((first_landed[key] - data_start).num_days() < 7 && ny_date(cust.created_at) < data_start)
        });
        if customer.is_none() {
            guest_persons += 1;
        }
        if !censored {
            *cohorts.entry(month_start(ny_date(*at))).or_default() += 1;
        }
    }
    SimTruth { cohorts, guest_persons, data_end }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_brand_cohorts_and_rfm() {
    let (server, control) = serve(brand().0.clone(), ShopifyFakeConfig::default()).await.expect("fake Shopify starts");
    let dir = tempfile::tempdir().unwrap();
    let job = shopify_token_job(dir.path(), "cohorttest", &server.base_url());
    let secrets = Secrets::default().with(SHOPIFY_TOKEN_ENV, DEFAULT_ACCESS_TOKEN);
    let storage = Storage::open(&job.file.storage, &secrets).unwrap();
    run_ok(&job, &secrets, Steps::Sync, control.clock().now()).await;
    transform_all(&job, &storage, "20261101T070000Z-cohort01").await;
    let truth = sim_truth();

    // Cohort sizes per acquisition month against the simulator.
    let got: BTreeMap<NaiveDate, i64> = rows(
        &storage,
        "select cast(cohort_month as varchar), cohort_size from fct_cohort_retention \
         where cut_type = 'all' and month_number = 0 order by 1",
    )
    .await
    .into_iter()
    .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
    .collect();
    assert_eq!(got, truth.cohorts, "cohort sizes per acquisition month");
    assert!(truth.cohorts.values().sum::<i64>() > 100, "{:?}", truth.cohorts);
    assert!(truth.guest_persons > 0, "the brand has guest-only persons");
    assert_eq!(
        scalar(
            &storage,
            "select count(distinct o.person_key) from int_cohort_person_orders o \
             where not exists (select 1 from int_order_person p join stg_shopify__orders s on s.order_id = p.order_id \
             where p.person_key = o.person_key and s.customer_id is not null)"
        )
        .await,
        truth.guest_persons,
        "guest-only persons (resolved by email or phone)"
    );

    // Month 0 retains everyone; every cut partitions the cohort.
    assert_eq!(
        scalar(&storage, "select count(*) from fct_cohort_retention where month_number = 0 and retention_pct <> 1.0")
            .await,
        0
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from (select cohort_month, cut_type, sum(cohort_size) n from fct_cohort_retention \
             where month_number = 0 group by 1, 2) a join fct_cohort_retention b on b.cohort_month = a.cohort_month \
             and b.cut_type = 'all' and b.month_number = 0 where a.n <> b.cohort_size"
        )
        .await,
        0,
        "channel and offer cuts sum to the cohort"
    );
    // Right-censoring: no cell after the data end's month, and each cohort runs to it.
    let end_month = month_start(truth.data_end);
    assert_eq!(
        scalar(
            &storage,
            &format!("select count(*) from fct_cohort_retention where activity_month > date '{end_month}'")
        )
        .await,
        0,
        "no cohort month after the data end"
    );
    let cohorts = truth.cohorts.len() as i64;
    assert_eq!(
        scalar(
            &storage,
            &format!(
                "select count(*) from fct_cohort_retention where cut_type = 'all' and activity_month = date '{end_month}'"
            )
        )
        .await,
        cohorts,
        "every cohort is emitted up to the data end's month"
    );
    // Cumulative revenue: month 0's is the month's, and never decreases.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_cohort_retention a join fct_cohort_retention b on a.cohort_month = b.cohort_month \
             and a.cut_type = b.cut_type and a.cut_value = b.cut_value and b.month_number = a.month_number + 1 \
             where b.cumulative_net_revenue <> a.cumulative_net_revenue + b.net_revenue"
        )
        .await,
        0
    );

    // RFM: each snapshot's tiers cover every person with a qualifying order on or before it
    // (scored or Lapsed), and the scored ones are exactly the persons with an order in the window.
    let snapshots =
        rows(&storage, "select distinct cast(snapshot_date as varchar) from fct_rfm_snapshot order by 1").await;
    // The brand starts 2026-08-01: month ends from August to the data end.
    let want_snapshots: Vec<String> = {
        let mut out = Vec::new();
        let mut m = NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
        while m <= truth.data_end {
            let end = (m + chrono::Months::new(1)) - chrono::Duration::days(1);
            if end <= truth.data_end {
                out.push(end.to_string());
            }
            m = m + chrono::Months::new(1);
        }
        out
    };
    assert_eq!(snapshots.iter().map(|r| r[0].clone()).collect::<Vec<_>>(), want_snapshots, "month-end snapshots");
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from ( \
               select s.snapshot_date, count(distinct o.person_key) n \
               from (select distinct snapshot_date from fct_rfm_snapshot) s \
               join int_cohort_person_orders o on o.order_date <= s.snapshot_date group by 1) a \
             full join (select snapshot_date, count(*) n from fct_rfm_snapshot group by 1) b \
               on a.snapshot_date = b.snapshot_date \
             where a.n is distinct from b.n"
        )
        .await,
        0,
        "every person with a qualifying order is in each later snapshot, once"
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from ( \
               select s.snapshot_date, count(distinct o.person_key) n \
               from (select distinct snapshot_date from fct_rfm_snapshot) s \
               join int_cohort_person_orders o on o.order_date <= s.snapshot_date \
                 and o.order_date > s.snapshot_date - interval '730 days' group by 1) a \
             full join (select snapshot_date, count(*) n from fct_rfm_snapshot where rfm_tier <> 'Lapsed' group by 1) b \
               on a.snapshot_date = b.snapshot_date \
             where a.n is distinct from b.n"
        )
        .await,
        0,
        "the scored base is the persons with a qualifying order in the lookback window"
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_rfm_snapshot where rfm_tier <> 'Lapsed' and (r_score is null or f_score is null \
             or m_score is null or r_score not between 1 and 5 or m_score not between 1 and 5 \
             or f_score not between 1 and 5 or rfm_code <> concat(r_score, f_score, m_score))"
        )
        .await,
        0
    );
    // Cut points monotone, one pair of rows per snapshot, base size matching the snapshot.
    assert_eq!(
        scalar(&storage, "select count(*) from dim_rfm_cutpoints where not (p20 <= p40 and p40 <= p60 and p60 <= p80)")
            .await,
        0,
        "cut points are monotone"
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from dim_rfm_cutpoints c join (select snapshot_date, count(*) n from fct_rfm_snapshot \
             where rfm_tier <> 'Lapsed' group by 1) s on s.snapshot_date = c.snapshot_date \
             where c.scored_base_size <> s.n"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(&storage, "select count(*) from dim_rfm_cutpoints").await,
        2 * snapshots.len() as i64,
        "recency and monetary per snapshot"
    );
    // Scores follow the cut points (ties: R to the better bucket, M to the lower one).
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_rfm_snapshot s \
             join dim_rfm_cutpoints r on r.snapshot_date = s.snapshot_date and r.dimension = 'recency' \
             join dim_rfm_cutpoints m on m.snapshot_date = s.snapshot_date and m.dimension = 'monetary' \
             where s.rfm_tier <> 'Lapsed' and ( \
               s.r_score <> 5 - (case when r.p20 < s.recency_days then 1 else 0 end) \
                 - (case when r.p40 < s.recency_days then 1 else 0 end) \
                 - (case when r.p60 < s.recency_days then 1 else 0 end) \
                 - (case when r.p80 < s.recency_days then 1 else 0 end) \
               or s.m_score <> 1 + (case when m.p20 < cast(s.monetary as double) then 1 else 0 end) \
                 + (case when m.p40 < cast(s.monetary as double) then 1 else 0 end) \
                 + (case when m.p60 < cast(s.monetary as double) then 1 else 0 end) \
                 + (case when m.p80 < cast(s.monetary as double) then 1 else 0 end))"
        )
        .await,
        0
    );

    // Transitions: each pair's cells sum to the persons of the to-snapshot; the persons present
    // in both snapshots are the cells not from not_yet_customer; rows are normalised.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from (select from_snapshot_date f, to_snapshot_date t, \
               sum(case when from_tier <> 'not_yet_customer' then customers else 0 end) both_n, sum(customers) n \
               from fct_rfm_transitions where period_grain = 'month' group by 1, 2) x \
             left join (select a.snapshot_date f, b.snapshot_date t, count(*) n from fct_rfm_snapshot a \
               join fct_rfm_snapshot b on a.person_key = b.person_key and b.snapshot_date > a.snapshot_date \
               group by 1, 2) y on x.f = y.f and x.t = y.t \
             left join (select snapshot_date, count(*) n from fct_rfm_snapshot group by 1) z on z.snapshot_date = x.t \
             where (x.both_n is distinct from y.n) or x.n <> z.n"
        )
        .await,
        0,
        "transition rows sum to the persons in both snapshots"
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(distinct from_snapshot_date) from fct_rfm_transitions where period_grain = 'month'"
        )
        .await,
        snapshots.len() as i64 - 1
    );
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from (select period_grain, from_snapshot_date, from_tier, sum(share_of_from) s \
             from fct_rfm_transitions group by 1, 2, 3) where abs(s - 1.0) > 1e-9"
        )
        .await,
        0
    );
    // The segment matrix partitions each snapshot at every cohort grain.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from (select snapshot_date, cohort_grain, sum(customers) n from fct_segment_matrix \
             group by 1, 2) a join (select snapshot_date, count(*) n from fct_rfm_snapshot group by 1) b \
             on a.snapshot_date = b.snapshot_date where a.n <> b.n"
        )
        .await,
        0
    );
    assert_eq!(scalar(&storage, "select count(distinct cohort_grain) from fct_segment_matrix").await, 3);

    // A rerun on the same raw data writes byte-identical tables.
    let first = current_bytes(&storage).await;
    transform_all(&job, &storage, "20261101T080000Z-cohort02").await;
    assert_eq!(current_bytes(&storage).await, first, "reruns are byte-identical");
}

/// Send time and cadence (models.md 4.12, 4.13) on a simulated brand with its Klaviyo data: the
/// Shopify-only brand above has no message events. Reachability is recomputed here from the
/// consent intervals' instants (the model works on local dates), deliveries from the events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_brand_send_time_and_cadence() {
    use chrono::TimeZone;
    let cfg = lifecycle_etl::simulate::SimConfig {
        seed: 11,
        scale: 2,
        start_date: date(2026, 3, 1),
        end_date: date(2026, 10, 31),
        causal: Default::default(),
    };
    let (_truth, storage, _dir) = run_brand(&cfg).await;
    let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();

    // Every campaign delivery of a window sits in exactly one cell of its as-of date.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from (select as_of_date, sum(deliveries) n from fct_send_time group by 1) t \
             full join (select a.as_of_date, count(*) n from (select distinct as_of_date from fct_send_time) a \
             join fct_message_events e on e.event_date between a.as_of_date - interval '89 days' and a.as_of_date \
             where e.message_kind = 'campaign' and e.event_type = 'delivered' and e.local_hour_of_week is not null \
             group by 1) m on m.as_of_date = t.as_of_date where t.n is distinct from m.n"
        )
        .await,
        0,
        "fct_send_time deliveries per as-of date against the campaign deliveries of its window"
    );
    let as_of: Vec<String> =
        rows(&storage, "select distinct cast(as_of_date as varchar) from fct_send_time order by 1").await.concat();
    assert!(as_of.len() >= 8, "month ends March..September plus the last data day: {as_of:?}");
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_send_time where unique_clicks > deliveries or recipients > deliveries \
             or posterior_ci_low > posterior_click_rate or posterior_click_rate > posterior_ci_high \
             or sample_ok <> (deliveries >= 300) or hour_of_week not between 0 and 167 \
             or abs(posterior_click_rate - (unique_clicks + 200 * prior_click_rate) / (deliveries + 200)) > 1e-12"
        )
        .await,
        0,
        "cell invariants"
    );
    assert!(scalar(&storage, "select count(*) from fct_send_time where sample_ok").await > 0);
    // One recommendation per as-of date, segment and channel, inside the week, by the rule.
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from (select distinct as_of_date, segment_key, channel from fct_send_time) c \
             full join fct_send_time_recommendation r on r.as_of_date = c.as_of_date \
             and r.segment_key = c.segment_key and r.channel = c.channel \
             where r.as_of_date is null or c.as_of_date is null \
             or r.recommended_hour_of_week not between 0 and 167 \
             or r.recommended_local_hour <> r.recommended_hour_of_week % 24 \
             or (r.reason = 'better_hour') <> (r.recommended_hour_of_week <> r.current_hour_of_week) \
             or (r.reason = 'better_hour' and (r.prob_better < 0.9 or r.expected_relative_uplift < 0.05))"
        )
        .await,
        0,
        "recommendations"
    );
    let last = as_of.last().unwrap().clone();
    let recs = rows(
        &storage,
        &format!(
            "select segment_key, channel, current_hour_of_week, recommended_hour_of_week, reason, \
             cast(deliveries as varchar) as n, cast(round(prob_better, 3) as varchar) as p from fct_send_time_recommendation \
             where as_of_date = date '{last}' order by channel, deliveries desc"
        ),
    )
    .await;
    println!("send time as of {last}: segment, channel, h0, recommended, reason, deliveries, P");
    for r in &recs {
        println!("  {}", r.join(" | "));
    }
    assert!(!recs.is_empty());

    // Cadence: profile-weeks per week and channel are the persons subscribed (Klaviyo consent)
    // at the week's Monday 00:00 New York time and not suppressed on email before it.
    let weeks: Vec<NaiveDate> =
        rows(&storage, "select distinct cast(week_start as varchar) from fct_cadence order by 1")
            .await
            .concat()
            .iter()
            .map(|d| d.parse().unwrap())
            .collect();
    assert!(weeks.len() >= 30, "{} weeks", weeks.len());
    let intervals = rows(
        &storage,
        "select i.person_key, c.channel, to_unixtime(c.valid_from), coalesce(to_unixtime(c.valid_to), 9e15), \
         coalesce(to_unixtime(s.at), 9e15) from int_consent_history c join int_person_identifier i \
         on i.identifier_type = c.identifier_type and i.identifier_value = c.identifier_value \
         left join (select platform_profile_id, min(occurred_at) at from fct_message_events \
         where channel = 'email' and (event_type = 'spam_complaint' or (event_type = 'bounced' and bounce_type <> 'soft')) \
         group by 1) s on s.platform_profile_id = c.identifier_value \
         where c.platform = 'klaviyo' and c.identifier_type = 'klaviyo_profile_id' and c.status = 'subscribed'",
    )
    .await;
    let monday =
        |w: NaiveDate| ny.from_local_datetime(&w.and_hms_opt(0, 0, 0).unwrap()).earliest().unwrap().timestamp();
    let mut reachable: BTreeSet<(String, String, NaiveDate)> = BTreeSet::new();
    for r in &intervals {
        let (from, to, suppressed): (f64, f64, f64) =
            (r[2].parse().unwrap(), r[3].parse().unwrap(), r[4].parse().unwrap());
        for &w in &weeks {
            let t = monday(w) as f64;
            if from < t && t < to && (r[1] != "email" || suppressed >= t) {
                reachable.insert((r[0].clone(), r[1].clone(), w));
            }
        }
    }
    let mut expected: BTreeMap<(NaiveDate, String), i64> = BTreeMap::new();
    for (_, ch, w) in &reachable {
        *expected.entry((*w, ch.clone())).or_default() += 1;
    }
    let got: BTreeMap<(NaiveDate, String), i64> = rows(
        &storage,
        "select cast(week_start as varchar), channel, sum(profile_weeks) from fct_cadence group by 1, 2",
    )
    .await
    .into_iter()
    .map(|r| ((r[0].parse().unwrap(), r[1].clone()), r[2].parse().unwrap()))
    .collect();
    assert_eq!(got, expected, "profile-weeks per week and channel against the reachable persons");
    // Messages of the profile-weeks: delivered flow and campaign messages to reachable persons.
    let mut expected_messages: BTreeMap<(NaiveDate, String), i64> = BTreeMap::new();
    for r in rows(
        &storage,
        "select person_key, channel, cast(date_trunc('week', event_date) as date), count(*) from fct_message_events \
         where event_type = 'delivered' and message_kind in ('flow', 'campaign') and person_key is not null group by 1, 2, 3",
    )
    .await
    {
        let w: NaiveDate = r[2].parse().unwrap();
        if reachable.contains(&(r[0].clone(), r[1].clone(), w)) {
            *expected_messages.entry((w, r[1].clone())).or_default() += r[3].parse::<i64>().unwrap();
        }
    }
    let got_messages: BTreeMap<(NaiveDate, String), i64> =
        rows(&storage, "select cast(week_start as varchar), channel, sum(messages) from fct_cadence group by 1, 2")
            .await
            .into_iter()
            .map(|r| ((r[0].parse().unwrap(), r[1].clone()), r[2].parse().unwrap()))
            .filter(|(_, n): &(_, i64)| *n > 0)
            .collect();
    assert_eq!(got_messages, expected_messages, "messages per week and channel");
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_cadence where (frequency_bucket = '1' and pressure_index is not null \
             and abs(pressure_index - 1) > 1e-12) or avg_messages_per_profile < bucket_min_messages"
        )
        .await,
        0,
        "bucket 1's pressure is 1; averages inside their bucket"
    );
    let caps = rows(
        &storage,
        "select cast(as_of_date as varchar), segment_key, channel, cast(current_median_cadence as varchar), \
         recommended_max_cadence, binding_constraint, cast(profile_weeks_behind as varchar) as n \
         from fct_cadence_recommendation where as_of_date = (select max(as_of_date) from fct_cadence_recommendation) \
         order by channel, profile_weeks_behind desc",
    )
    .await;
    println!("cadence: as-of, segment, channel, median, max cadence, binding, profile-weeks");
    for r in &caps {
        println!("  {}", r.join(" | "));
    }
    assert_eq!(
        scalar(
            &storage,
            "select count(*) from fct_cadence_recommendation r left join (select r2.as_of_date, r2.segment_key, \
             r2.channel, sum(c.profile_weeks) n from fct_cadence_recommendation r2 join fct_cadence c \
             on c.segment_key = r2.segment_key and c.channel = r2.channel and c.week_end <= r2.as_of_date \
             and c.week_start > r2.as_of_date - interval '97 days' group by 1, 2, 3) t on t.as_of_date = r.as_of_date \
             and t.segment_key = r.segment_key and t.channel = r.channel \
             where (r.binding_constraint = 'none') <> (r.recommended_max_cadence = '10+') \
             or t.n is distinct from r.profile_weeks_behind"
        )
        .await,
        0,
        "cadence recommendations: the walk's end and the profile-weeks behind them"
    );
}

/// The bytes of each covered mart's current Parquet files.
async fn current_bytes(storage: &Storage) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for name in &MARTS[2..] {
        let current = lifecycle_etl::transform::publish::current(storage, "marts", name).await.unwrap().unwrap();
        for f in current.files {
            out.push((name.to_string(), storage.get(&f).await.unwrap().unwrap().to_vec()));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// CDNOW golden numbers (models.md 6.9)
// ---------------------------------------------------------------------------------------------

/// CDNOW_master.txt as models.md 6.9 prepares it: value-0 lines dropped, one order per
/// customer-day (values summed). Returns (customer, date, value in ten-thousandths).
fn cdnow_orders() -> Vec<(u32, NaiveDate, i128)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cdnow/CDNOW_master.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let mut by_day: BTreeMap<(u32, NaiveDate), i128> = BTreeMap::new();
    for line in text.lines().filter(|l| l.trim().starts_with(|c: char| c.is_ascii_digit())) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let customer: u32 = f[0].parse().unwrap();
        let date = NaiveDate::parse_from_str(f[1], "%Y%m%d").unwrap();
        let cents: i128 = (f[3].parse::<f64>().unwrap() * 100.0).round() as i128;
        if cents == 0 {
            continue;
        }
        *by_day.entry((customer, date)).or_default() += cents * 100;
    }
    by_day.into_iter().map(|((c, d), v)| (c, d, v)).collect()
}

/// A session with CDNOW as int_cohort_person_orders (one person per customer, no left-censoring,
/// every order qualifying) and fct_orders' dates (the data end 1998-06-30).
fn cdnow_session() -> SessionContext {
    let orders = cdnow_orders();
    // Each customer's first order (index, date): orders are sorted by customer, then date.
    let mut first: BTreeMap<u32, (usize, NaiveDate)> = BTreeMap::new();
    for (i, (c, d, _)) in orders.iter().enumerate() {
        first.entry(*c).or_insert((i, *d));
    }
    let n = orders.len();
    let keys: Vec<String> = (0..n).map(|i| format!("o{i}")).collect();
    let first_keys: Vec<String> = orders.iter().map(|(c, _, _)| format!("o{}", first[c].0)).collect();
    let persons: Vec<String> = orders.iter().map(|(c, _, _)| format!("c{c}")).collect();
    let seq: Vec<i32> = orders.iter().enumerate().map(|(i, (c, _, _))| (i - first[c].0) as i32 + 1).collect();
    let dates: Vec<i32> = orders.iter().map(|(_, d, _)| days(*d)).collect();
    let months: Vec<i32> = orders.iter().map(|(_, d, _)| days(month_start(*d))).collect();
    let values: Vec<i128> = orders.iter().map(|(_, _, v)| *v).collect();
    let acq: Vec<i32> = orders.iter().map(|(c, _, _)| days(first[c].1)).collect();
    let cohort: Vec<i32> = orders.iter().map(|(c, _, _)| days(month_start(first[c].1))).collect();
    let dec = |v: Vec<i128>| Arc::new(Decimal128Array::from(v).with_precision_and_scale(18, 4).unwrap()) as ArrayRef;
    let text = |v: Vec<&str>| Arc::new(StringArray::from(v)) as ArrayRef;
    let ctx = SessionContext::new_with_config(lifecycle_etl::transform::session_config());
    settings(&ctx);
    register(
        &ctx,
        "int_cohort_person_orders",
        vec![
            ("order_key", Arc::new(StringArray::from(keys)) as ArrayRef),
            ("order_id", Arc::new(Int64Array::from_iter_values(0..n as i64))),
            ("person_key", Arc::new(StringArray::from(persons))),
            ("person_order_seq", Arc::new(Int32Array::from(seq))),
            ("order_date", Arc::new(Date32Array::from(dates.clone()))),
            ("order_month", Arc::new(Date32Array::from(months))),
            ("net_revenue", dec(values.clone())),
            ("gross_margin", dec(values)),
            ("offer_type", text(vec!["full_price"; n])),
            ("first_order_key", Arc::new(StringArray::from(first_keys))),
            ("acquisition_date", Arc::new(Date32Array::from(acq))),
            ("acquisition_cohort_month", Arc::new(Date32Array::from(cohort))),
            ("acquisition_channel_group", text(vec!["unknown"; n])),
            ("first_order_offer_type", text(vec!["full_price"; n])),
            ("is_left_censored", Arc::new(BooleanArray::from(vec![false; n]))),
        ],
    );
    register(&ctx, "fct_orders", vec![("order_date", Arc::new(Date32Array::from(dates)) as ArrayRef)]);
    ctx
}

fn f(s: &str) -> f64 {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdnow_golden_numbers() {
    let ctx = cdnow_session();
    for m in [
        "fct_cohort_retention",
        "int_rfm_person_snapshots",
        "dim_rfm_cutpoints",
        "fct_rfm_snapshot",
        "fct_rfm_transitions",
    ] {
        build(&ctx, m).await;
    }

    // Cohort sizes.
    let sizes: BTreeMap<String, i64> = query(
        &ctx,
        "select cast(cohort_month as varchar), cohort_size from fct_cohort_retention \
         where cut_type = 'all' and month_number = 0",
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap()))
    .collect();
    assert_eq!(sizes["1997-01-01"], 7814);
    assert_eq!(sizes["1997-02-01"], 8455);
    assert_eq!(sizes["1997-03-01"], 7231);
    assert_eq!(sizes["1997-11-01"], 2);
    assert_eq!(sizes.values().sum::<i64>(), 23502);

    // Retention and cumulative revenue per customer, and the last emitted month numbers.
    let cells: BTreeMap<(String, i32), (f64, f64)> = query(
        &ctx,
        "select cast(cohort_month as varchar), month_number, retention_pct, \
         cast(cumulative_revenue_per_customer as double) from fct_cohort_retention where cut_type = 'all'",
    )
    .await
    .into_iter()
    .map(|r| ((r[0].clone(), r[1].parse().unwrap()), (f(&r[2]), f(&r[3]))))
    .collect();
    let retention = [
        ("1997-01-01", [14.78, 12.34, 10.37, 9.21, 6.76, 6.03]),
        ("1997-02-01", [15.51, 11.59, 9.26, 7.40, 6.72, 6.48]),
        ("1997-03-01", [14.27, 10.40, 10.45, 7.76, 9.36, 6.32]),
    ];
    for (cohort, pcts) in retention {
        for (k, want) in [1, 2, 3, 6, 12, 15].into_iter().zip(pcts) {
            let got = cells[&(cohort.to_string(), k)].0 * 100.0;
            assert!((got - want).abs() < 0.005 + 1e-9, "{cohort} k={k}: {got} vs {want}");
        }
    }
    let cumulative = [
        ("1997-01-01", [38.27, 46.06, 52.55, 66.63, 92.64]),
        ("1997-02-01", [37.70, 45.10, 50.93, 65.13, 87.90]),
        ("1997-03-01", [38.71, 46.02, 50.82, 64.72, 87.21]),
    ];
    for (cohort, values) in cumulative {
        for (k, want) in [0, 1, 2, 5, 11].into_iter().zip(values) {
            let got = cells[&(cohort.to_string(), k)].1;
            assert!((got - want).abs() < 0.005 + 1e-9, "{cohort} k={k}: {got} vs {want}");
        }
    }
    let last: BTreeMap<String, i32> = cells.keys().fold(BTreeMap::new(), |mut m, (c, k)| {
        let e = m.entry(c.clone()).or_insert(*k);
        *e = (*e).max(*k);
        m
    });
    assert_eq!(
        [last["1997-01-01"], last["1997-02-01"], last["1997-03-01"], last["1997-11-01"]],
        [17, 16, 15, 7],
        "right-censoring"
    );

    // RFM cut points and tiers at 1997-12-31 and 1998-06-30.
    let cut = |rows: &[Vec<String>], dim: &str| -> Vec<f64> {
        let r = rows.iter().find(|r| r[0] == dim).unwrap();
        r[1..5].iter().map(|v| f(v)).collect()
    };
    for (snap, recency, monetary) in [
        ("1997-12-31", [110.0, 283.0, 308.0, 332.0], [15.36, 29.67, 53.12, 111.39]),
        ("1998-06-30", [140.2, 430.0, 484.0, 512.0], [15.36, 31.54, 60.05, 134.29]),
    ] {
        let rows = query(
            &ctx,
            &format!("select dimension, p20, p40, p60, p80 from dim_rfm_cutpoints where snapshot_date = date '{snap}'"),
        )
        .await;
        for (got, want) in cut(&rows, "recency").iter().zip(recency) {
            assert!((got - want).abs() < 1e-9, "{snap} recency {got} vs {want}");
        }
        for (got, want) in cut(&rows, "monetary").iter().zip(monetary) {
            assert!((got - want).abs() < 0.005 + 1e-9, "{snap} monetary {got} vs {want}");
        }
    }
    let tiers = |snap: &'static str| {
        let ctx = &ctx;
        async move {
            query(
                ctx,
                &format!(
                    "select rfm_tier, count(*) from fct_rfm_snapshot where snapshot_date = date '{snap}' \
                     and rfm_tier <> 'Lapsed' group by 1"
                ),
            )
            .await
            .into_iter()
            .map(|r| (r[0].clone(), r[1].parse::<i64>().unwrap()))
            .collect::<BTreeMap<String, i64>>()
        }
    };
    let want = |pairs: &[(&str, i64)]| pairs.iter().map(|(t, n)| (t.to_string(), *n)).collect::<BTreeMap<_, _>>();
    assert_eq!(
        tiers("1997-12-31").await,
        want(&[
            ("Champion", 4464),
            ("Lost", 3870),
            ("About to Sleep", 3711),
            ("Hibernating", 3592),
            ("Potential Loyalist", 3357),
            ("At Risk", 1687),
            ("Loyal", 1618),
            ("Needs Attention", 951),
            ("Promising", 181),
            ("Cannot Lose", 70),
            ("New", 1),
        ])
    );
    assert_eq!(
        tiers("1998-06-30").await,
        want(&[
            ("Champion", 5068),
            ("Hibernating", 4063),
            ("Lost", 3866),
            ("About to Sleep", 3279),
            ("Potential Loyalist", 2759),
            ("Loyal", 1940),
            ("At Risk", 1416),
            ("Needs Attention", 1058),
            ("Cannot Lose", 52),
            ("Promising", 1),
        ])
    );

    // Transitions 1997-12-31 -> 1998-06-30 (quarter-end snapshots two quarters apart: built here
    // from the two snapshots directly, as the golden numbers are).
    let moves: BTreeMap<(String, String), i64> = query(
        &ctx,
        "select a.rfm_tier, b.rfm_tier, count(*) from fct_rfm_snapshot a join fct_rfm_snapshot b \
         on a.person_key = b.person_key where a.snapshot_date = date '1997-12-31' \
         and b.snapshot_date = date '1998-06-30' group by 1, 2",
    )
    .await
    .into_iter()
    .map(|r| ((r[0].clone(), r[1].clone()), r[2].parse().unwrap()))
    .collect();
    for (from, to, n) in [
        ("Champion", "Champion", 3555),
        ("Champion", "Loyal", 837),
        ("Champion", "Potential Loyalist", 72),
        ("Loyal", "Champion", 477),
        ("Loyal", "Loyal", 963),
        ("Potential Loyalist", "Champion", 671),
        ("Potential Loyalist", "Potential Loyalist", 1828),
        ("Potential Loyalist", "Needs Attention", 448),
        ("Potential Loyalist", "About to Sleep", 317),
        ("About to Sleep", "Hibernating", 713),
        ("Lost", "Lost", 3597),
        ("Hibernating", "Hibernating", 3192),
    ] {
        assert_eq!(moves.get(&(from.to_string(), to.to_string())), Some(&n), "{from} -> {to}");
    }
    // The model's quarter pairs: each from-row sums to the from-snapshot's tier count.
    let unmatched: BTreeSet<Vec<String>> = query(
        &ctx,
        "select t.from_snapshot_date, t.from_tier from (select from_snapshot_date, to_snapshot_date, from_tier, \
         sum(customers) n from fct_rfm_transitions where period_grain = 'quarter' and from_tier <> 'not_yet_customer' \
         group by 1, 2, 3) t join (select snapshot_date, rfm_tier, count(*) n from fct_rfm_snapshot group by 1, 2) s \
         on s.snapshot_date = t.from_snapshot_date and s.rfm_tier = t.from_tier where s.n <> t.n",
    )
    .await
    .into_iter()
    .collect();
    assert!(unmatched.is_empty(), "{unmatched:?}");
}
