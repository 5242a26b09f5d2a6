//! The lift model against a known answer (issue 6): simulated brands whose flows have a controlled
//! causal effect, holdout and consent confounding run the whole pipeline (simulator → fake
//! Klaviyo and Shopify over HTTP → sync → transform), and `fct_flow_contribution` is compared
//! with the simulator's truth: the incremental revenue each flow really caused.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use common::*;
use lifecycle_etl::config::Job;
use lifecycle_etl::fake::shopify::{DEFAULT_ACCESS_TOKEN, ShopifyFakeConfig};
use lifecycle_etl::pipeline::Steps;
use lifecycle_etl::simulate::model::SimTruth;
use lifecycle_etl::simulate::store::SimStore;
use lifecycle_etl::simulate::{Causal, SimConfig, generate};
use lifecycle_etl::storage::Storage;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Generates `cfg`, serves it from both fakes, syncs and transforms; returns the truth and the
/// storage (the folder lives as long as the returned guard).
async fn run_brand(cfg: &SimConfig) -> (SimTruth, Storage, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let truth = generate(cfg, &dir.path().join("sim")).unwrap();
    let store = SimStore::open(&dir.path().join("sim")).unwrap();
    let klaviyo = lifecycle_etl::fake::klaviyo::serve(store.clone(), fake_config()).await.unwrap();
    let (shopify, control) = lifecycle_etl::fake::shopify::serve(store, ShopifyFakeConfig::default()).await.unwrap();
    let job = job(dir.path(), &klaviyo.base_url(), &shopify.base_url(), cfg.start_date);
    let secrets = secrets().with(SHOPIFY_TOKEN_ENV, DEFAULT_ACCESS_TOKEN);
    let storage = Storage::open(&job.file.storage, &secrets).unwrap();
    run_ok(&job, &secrets, Steps::All, control.clock().now()).await;
    (truth, storage, dir)
}

fn job(dir: &Path, klaviyo_url: &str, shopify_url: &str, start: NaiveDate) -> Job {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let text = format!(
        "[job]\nname = \"liftbrand\"\nreporting_timezone = \"America/New_York\"\nreporting_currency = \"USD\"\n\
         [storage]\nurl = \"file://{data}\"\n[run]\nlock_ttl_seconds = 30\nbatch_rows = 20000\n\
         [sources.klaviyo]\nbase_url = \"{klaviyo_url}\"\napi_key_env = \"{API_KEY_ENV}\"\nstart_date = \"{start}\"\n\
         {TEST_RATE_LIMITS}\
         [sources.shopify]\nbase_url = \"{shopify_url}\"\naccess_token_env = \"{SHOPIFY_TOKEN_ENV}\"\n\
         start_date = \"{start}\"\n[sources.shopify.bulk]\nthreshold_days = 2\npoll_interval_ms = 20\n\
         timeout_seconds = 60\nmin_window_minutes = 60\n",
        data = data.display()
    );
    let path = dir.join("liftbrand.toml");
    std::fs::write(&path, text).unwrap();
    Job::load(&path).unwrap()
}

/// One `all`-channel month of a flow.
#[derive(Debug)]
struct Month {
    month: String,
    grade: String,
    reason: String,
    incremental: Option<f64>,
    low: Option<f64>,
    high: Option<f64>,
    last_click: f64,
    mature: bool,
}

async fn months(storage: &Storage, flow_type: &str) -> (String, Vec<Month>) {
    let sql = format!(
        "select flow_id, cast(period_start as varchar), evidence_grade, coalesce(lift_reason, ''), \
         cast(incremental_revenue as double), cast(incremental_revenue_ci_low as double), \
         cast(incremental_revenue_ci_high as double), cast(last_click_revenue as double), is_mature \
         from fct_flow_contribution where channel = 'all' and period_grain = 'month' and flow_type = '{flow_type}' \
         order by period_start"
    );
    let rows = rows(storage, &sql).await;
    assert!(!rows.is_empty(), "no rows for {flow_type}");
    let num = |s: &str| (s != "NULL").then(|| s.parse::<f64>().unwrap());
    let flow_id = rows[0][0].clone();
    let months = rows
        .into_iter()
        .map(|r| Month {
            month: r[1][..7].to_string(),
            grade: r[2].clone(),
            reason: r[3].clone(),
            incremental: num(&r[4]),
            low: num(&r[5]),
            high: num(&r[6]),
            last_click: num(&r[7]).unwrap_or(0.0),
            mature: r[8] == "true",
        })
        .collect();
    (flow_id, months)
}

/// The truth of a flow: incremental revenue (currency units) by entry month.
fn truth_by_month(truth: &SimTruth, flow_id: &str) -> BTreeMap<String, f64> {
    let f = truth.flows.iter().find(|f| f.flow_id == flow_id).expect("flow in truth");
    f.incremental_revenue_by_entry_month.iter().map(|(m, v)| (m.clone(), *v as f64 / 100.0)).collect()
}

/// Prints the per-flow table the closing note quotes and returns (true, modeled, low, high, last
/// click) summed over the mature graded months.
fn report(name: &str, truth: &BTreeMap<String, f64>, months: &[Month]) -> (f64, f64, f64, f64, f64) {
    println!("{name}: month | true | modeled [95% CI] | last-click | grade");
    let (mut t, mut m, mut lo, mut hi, mut lc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for mo in months {
        let tv = truth.get(&mo.month).copied().unwrap_or(0.0);
        println!(
            "  {} | {:>9.0} | {:>9} [{:>9}, {:>9}] | {:>9.0} | {} {}",
            mo.month,
            tv,
            mo.incremental.map_or("NULL".into(), |v| format!("{v:.0}")),
            mo.low.map_or("NULL".into(), |v| format!("{v:.0}")),
            mo.high.map_or("NULL".into(), |v| format!("{v:.0}")),
            mo.last_click,
            mo.grade,
            mo.reason
        );
        if mo.mature && let (Some(v), Some(l), Some(h)) = (mo.incremental, mo.low, mo.high) {
            t += tv;
            m += v;
            lo += l;
            hi += h;
            lc += mo.last_click;
        }
    }
    println!("  total (mature, estimated months): true {t:.0}, modeled {m:.0}, last-click {lc:.0}");
    (t, m, lo, hi, lc)
}

/// Brand A: random holdouts of 50 % on four flows with large known effects, one of them zero;
/// no consent confounding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holdout_flows_recover_the_true_incremental_revenue() {
    let cfg = SimConfig {
        seed: 101,
        scale: 3,
        start_date: date(2025, 1, 1),
        end_date: date(2026, 2, 28),
        causal: Causal {
            consent_confounding: 1.0,
            background_confounding: 1.0,
            flow_lift: vec![
                ("abandoned_checkout".into(), 4.0),
                ("post_purchase_first".into(), 3.0),
                ("welcome".into(), 3.0),
                ("browse_abandonment".into(), 0.0),
            ],
            flow_holdout_pct: vec![
                ("abandoned_checkout".into(), 50),
                ("post_purchase_first".into(), 50),
                ("welcome".into(), 50),
                ("browse_abandonment".into(), 50),
            ],
            base_multiplier: 1.0,
        },
    };
    let (truth, storage, _dir) = run_brand(&cfg).await;

    let mut inside = 0;
    let mut graded = 0;
    for flow_type in ["abandoned_checkout", "post_purchase_first"] {
        let (flow_id, months) = months(&storage, flow_type).await;
        let by_month = truth_by_month(&truth, &flow_id);
        let (t, m, _, _, _) = report(flow_type, &by_month, &months);
        let a: Vec<&Month> = months.iter().filter(|m| m.grade == "A" && m.mature).collect();
        assert!(a.len() >= 8, "{flow_type}: only {} grade-A mature months", a.len());
        assert!(t > 0.0 && (m - t).abs() <= 0.15 * t, "{flow_type}: modeled {m:.0} vs true {t:.0}");
        for mo in a {
            let tv = by_month.get(&mo.month).copied().unwrap_or(0.0);
            graded += 1;
            inside += usize::from(mo.low.unwrap() <= tv && tv <= mo.high.unwrap());
        }
    }
    assert!(inside * 10 >= graded * 9, "true value inside the interval in {inside} of {graded} flow-months");

    // The zero-effect flow: its intervals hold zero, though last-click credits it a lot.
    let (flow_id, months) = months(&storage, "browse_abandonment").await;
    let by_month = truth_by_month(&truth, &flow_id);
    let (t, m, _, _, lc) = report("browse_abandonment", &by_month, &months);
    assert_eq!(t, 0.0);
    let estimated: Vec<&Month> = months.iter().filter(|m| m.mature && m.low.is_some()).collect();
    let zero_inside = estimated.iter().filter(|m| m.low.unwrap() <= 0.0 && 0.0 <= m.high.unwrap()).count();
    assert!(estimated.len() >= 8, "zero-effect flow: {} estimated months", estimated.len());
    assert!(zero_inside * 10 >= estimated.len() * 9, "zero inside {zero_inside} of {} intervals", estimated.len());
    assert!(lc > 1000.0 && lc > 3.0 * m.abs(), "zero-effect flow: last-click {lc:.0} beside modeled {m:.0}");
}
