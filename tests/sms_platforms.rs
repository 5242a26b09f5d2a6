//! The simulated brand's SMS program through every path that carries it, into the marts: the
//! brand texts through Attentive until 2025-10-31 and Postscript after (src/simulate/
//! sms_program.rs). Attentive's feeds come from a real SFTP server on 127.0.0.1, Postscript's
//! warehouse-push tables from Parquet files under a prefix; Klaviyo and Shopify from their fakes.
//! The marts must hold exactly the program's sends, clicks, opt-ins and opt-outs, each on the
//! person of the Shopify customer who received it, and the journeys' modeled lift must find the
//! program's true effect, zero, beside the revenue the platforms report. About 5 minutes in
//! debug (10 with other builds loading both cores): a scale-4 brand, the smallest whose
//! journeys meet the lift model's minimum of controls.

mod common;

use chrono::NaiveDate;
use lifecycle_etl::config::Job;
use lifecycle_etl::fake::attentive::{brand as attentive_brand, sftp as fake_sftp};
use lifecycle_etl::fake::postscript::warehouse::{self, WarehouseFormat};
use lifecycle_etl::fake::shopify::{DEFAULT_ACCESS_TOKEN, ShopifyFakeConfig};
use lifecycle_etl::pipeline::Steps;
use lifecycle_etl::simulate::sms_program::{self, SmsPlatform};
use lifecycle_etl::simulate::store::SimStore;
use lifecycle_etl::simulate::{Causal, SimConfig, generate};
use lifecycle_etl::storage::Storage;

use common::*;

const SFTP_PASSWORD_ENV: &str = "TEST_ATTENTIVE_SFTP_PASSWORD";
const ATTENTIVE_KEY_ENV: &str = "TEST_ATTENTIVE_KEY";
const DOMAIN: &str = "simbrand.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sms_programs_on_attentive_and_postscript_land_in_the_marts_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    // LCE_BRAND_KEEP=<dir> keeps the brand's folder to query it afterwards.
    let dir = match std::env::var("LCE_BRAND_KEEP") {
        Ok(keep) => {
            let keep = std::path::Path::new(&keep).join("sms");
            let _ = std::fs::remove_dir_all(&keep);
            keep
        }
        Err(_) => tmp.path().to_path_buf(),
    };
    // Nothing the brand sends causes an order (every Klaviyo flow's lift is 0, and the SMS program
    // causes none by construction), and consent is unrelated to purchase intent: the true
    // incremental revenue of every SMS journey is 0, whatever the platforms report.
    let zero = ["welcome", "abandoned_checkout", "abandoned_cart", "browse_abandonment", "post_purchase_first"]
        .into_iter()
        .chain(["post_purchase_repeat", "cross_sell", "replenishment", "winback", "back_in_stock", "price_drop"]);
    let cfg = SimConfig {
        seed: 23,
        scale: 4,
        start_date: date(2025, 3, 1),
        end_date: date(2025, 12, 31),
        causal: Causal {
            consent_confounding: 1.0,
            background_confounding: 1.0,
            consent_selection: 0.0,
            flow_lift: zero.map(|t| (t.to_string(), 0.0)).collect(),
            base_multiplier: 2.0,
            incidents: Vec::new(),
            ..Default::default()
        },
    };
    generate(&cfg, &dir.as_path().join("sim")).unwrap();
    let store = SimStore::open(dir.as_path().join("sim")).unwrap();

    // Attentive: feed files of the program on the SFTP server.
    let attentive =
        sms_program::generate(&store, SmsPlatform::Attentive, &sms_program::attentive_subscribers(&store).unwrap())
            .unwrap();
    let a = attentive.truth();
    assert!(a.sends > 50 && a.clicks > 0 && a.opt_outs > 0 && a.opt_ins > 0, "{a:?}");
    let outbound = dir.as_path().join("sftp").join("outbound");
    std::fs::create_dir_all(&outbound).unwrap();
    for f in attentive_brand::feed_files(&attentive, DOMAIN, date(2025, 10, 1)) {
        f.write(&outbound).unwrap();
    }
    let sftp = fake_sftp::serve(dir.as_path().join("sftp"), Default::default()).await.unwrap();

    // Postscript: the warehouse push's tables under a prefix.
    let postscript =
        sms_program::generate(&store, SmsPlatform::Postscript, &warehouse::postscript_subscribers(&store).unwrap())
            .unwrap();
    let p = postscript.truth();
    let wh = warehouse::write(&postscript, &dir.as_path().join("warehouse"), WarehouseFormat::Parquet).unwrap();
    assert!(p.sends > 50 && p.clicks > 0 && p.opt_outs > 0 && wh.failed_sends > 0, "{p:?}");

    let klaviyo = lifecycle_etl::fake::klaviyo::serve(store.clone(), fake_config()).await.unwrap();
    let (shopify, control) =
        lifecycle_etl::fake::shopify::serve(store.clone(), ShopifyFakeConfig::default()).await.unwrap();
    let job =
        job(dir.as_path(), &klaviyo.base_url(), &shopify.base_url(), sftp.port, &sftp.host_key_line(), cfg.start_date);
    let secrets = secrets()
        .with(SHOPIFY_TOKEN_ENV, DEFAULT_ACCESS_TOKEN)
        .with(SFTP_PASSWORD_ENV, fake_sftp::DEFAULT_PASSWORD)
        .with(ATTENTIVE_KEY_ENV, "unused");
    let storage = Storage::open(&job.file.storage, &secrets).unwrap();
    run_ok(&job, &secrets, Steps::All, control.clock().now()).await;

    // Every event of each program, by canonical type.
    let counts = |platform: &str| {
        format!(
            "select event_type, cast(count(*) as bigint) from fct_message_events where platform = '{platform}' \
             group by event_type order by event_type"
        )
    };
    let expect = |pairs: &[(&str, u64)]| -> Vec<Vec<String>> {
        let mut v: Vec<Vec<String>> =
            pairs.iter().filter(|p| p.1 > 0).map(|(t, n)| vec![t.to_string(), n.to_string()]).collect();
        v.sort();
        v
    };
    assert_eq!(
        rows(&storage, &counts("attentive")).await,
        expect(&[("sent", a.sends), ("clicked", a.clicks), ("subscribed", a.opt_ins), ("unsubscribed", a.opt_outs)]),
        "Attentive events in fct_message_events"
    );
    // Postscript's push has sends (failed ones too), failures and clicks; its opt-ins and
    // opt-outs come by webhook (none in this test) and, dated, in the pushed subscribers.
    assert_eq!(
        rows(&storage, &counts("postscript")).await,
        expect(&[("sent", wh.outbound_sends), ("failed", wh.failed_sends), ("clicked", wh.clicks)]),
        "Postscript events in fct_message_events"
    );
    assert_eq!(p.sends, wh.outbound_sends);

    // Sends are costed: Postscript's SMS by the segments of their bodies, MMS sends counted.
    assert_eq!(
        scalar(
            &storage,
            "select cast(sum(sms_segments) as bigint) from fct_message_events \
             where platform = 'postscript' and is_send and channel = 'sms'"
        )
        .await,
        wh.sms_segments as i64
    );
    assert!(wh.sms_segments > wh.outbound_sends - wh.mms_sends, "some bodies take two segments");
    assert_eq!(
        rows(
            &storage,
            "select channel, cost_basis, cast(count(*) as bigint) from fct_message_events \
             where platform = 'postscript' and is_send group by channel, cost_basis order by channel"
        )
        .await,
        vec![
            vec!["mms".to_string(), "assumed_one_segment".to_string(), wh.mms_sends.to_string()],
            vec!["sms".to_string(), "computed_segments".to_string(), (wh.outbound_sends - wh.mms_sends).to_string()],
        ]
    );

    // Each event sits on the person of the Shopify customer who got it.
    let customers: std::collections::BTreeMap<String, u64> = attentive
        .subscribers
        .iter()
        .chain(&postscript.subscribers)
        .map(|s| (s.subscriber_id.clone(), s.customer_id))
        .collect();
    let persons: std::collections::BTreeMap<String, String> = rows(
        &storage,
        "select identifier_value, person_key from int_person_identifier where identifier_type = 'shopify_customer_id'",
    )
    .await
    .into_iter()
    .map(|r| (r[0].rsplit(':').next().unwrap().to_string(), r[1].clone()))
    .collect();
    let placed = rows(
        &storage,
        "select distinct platform_profile_id, coalesce(person_key, 'NONE') from fct_message_events \
         where platform in ('attentive', 'postscript')",
    )
    .await;
    assert!(!placed.is_empty());
    for r in &placed {
        let customer = customers[&r[0]];
        assert_eq!(persons.get(&customer.to_string()), Some(&r[1]), "subscriber {} (customer {customer})", r[0]);
    }

    // Consent: who is opted out now, per platform.
    for (platform, program) in [("attentive", &attentive), ("postscript", &postscript)] {
        let out = program.subscribers.iter().filter(|s| s.opted_out_at.is_some()).count();
        let sql = format!(
            "select cast(count(*) as bigint) from int_consent_history where platform = '{platform}' \
             and channel = 'sms' and is_current and status = 'unsubscribed'"
        );
        assert_eq!(scalar(&storage, &sql).await, out as i64, "{platform} opted-out subscribers");
    }

    // The platforms' own attribution, as they report it (Postscript's after its corrections).
    let reported = |sql: &str| {
        let sql = sql.to_string();
        let storage = &storage;
        async move { scalar(storage, &sql).await }
    };
    assert_eq!(
        reported("select cast(sum(revenue) * 100 as bigint) from stg_attentive__conversions").await,
        a.conversion_revenue_minor
    );
    assert_eq!(
        reported("select cast(sum(revenue) * 100 as bigint) from stg_postscript__attribution").await,
        wh.attribution_amount_cents
    );

    // Journeys and automations are flows: in the inventory by name and type, Attentive's no
    // longer live after the migration, Postscript's live.
    let flows = rows(
        &storage,
        "select platform, flow_id, flow_type, status from dim_flows where platform <> 'klaviyo' order by 1, 2",
    )
    .await;
    let mut expected = Vec::new();
    for (platform, program, status) in [("attentive", &attentive, "unknown"), ("postscript", &postscript, "live")] {
        for j in program.journeys.iter().filter(|j| program.messages.iter().any(|m| m.source_id == j.journey_id)) {
            let flow_type = if j.name.starts_with("Welcome") { "welcome" } else { "post_purchase_first" };
            expected.push(vec![platform.into(), j.name.clone(), flow_type.into(), status.into()]);
        }
    }
    expected.sort();
    assert_eq!(flows, expected);

    // Flow contribution: their platform-reported revenue beside last click.
    let journeys: i64 = a.revenue_by_journey.iter().filter(|(k, _)| k.as_str() != "campaigns").map(|(_, v)| v).sum();
    assert!(journeys > 0);
    assert_eq!(
        scalar(
            &storage,
            "select cast(sum(platform_reported_revenue) * 100 as bigint) from fct_flow_contribution \
             where platform = 'attentive' and channel = 'all' and period_grain = 'month'"
        )
        .await,
        journeys
    );
    assert_eq!(
        scalar(
            &storage,
            "select cast(sum(platform_reported_revenue) * 100 as bigint) from int_message_period_metrics \
             where platform = 'postscript' and channel = 'all' and period_grain = 'month'"
        )
        .await,
        wh.attribution_amount_cents
    );
    // Modeled lift of the journeys and automations (D43). Their arms are the platform's consent:
    // the platform texted the T entrants of its post-purchase journey and none of the C ones.
    for r in rows(
        &storage,
        "select f.platform, e.arm, cast(count(*) as bigint), cast(count(e.first_message_delivered_at) as bigint) \
         from int_flow_entries e join int_flows f using (flow_key) where f.platform <> 'klaviyo' \
         and e.flow_type = 'post_purchase_first' and e.flow_live and e.arm is not null group by 1, 2 order by 1, 2",
    )
    .await
    {
        let (n, texted): (i64, i64) = (r[2].parse().unwrap(), r[3].parse().unwrap());
        println!("{} post-purchase {}: {n} entries, {texted} texted by the journey", r[0], r[1]);
        match r[1].as_str() {
            "T" => assert!(n >= 50 && texted * 100 >= n * 95, "{r:?}: T entrants not texted"),
            _ => assert!(n >= 200 && texted * 100 <= n * 2, "{r:?}: C entrants texted"),
        }
    }
    // The known answer: the program caused nothing, so the modeled months' intervals hold 0
    // while the platforms report revenue. Welcome journeys text every opt-in: no control, no estimate.
    let months = rows(
        &storage,
        "select platform, cast(period_start as varchar), evidence_grade, \
         cast(incremental_revenue as double), cast(incremental_revenue_ci_low as double), \
         cast(incremental_revenue_ci_high as double) from fct_flow_contribution where platform <> 'klaviyo' \
         and flow_type = 'post_purchase_first' and channel = 'all' and period_grain = 'month' \
         and incremental_revenue is not null order by 1, 2",
    )
    .await;
    let with_zero = months
        .iter()
        .inspect(|m| println!("{}", m.join(" | ")))
        .filter(|m| m[4].parse::<f64>().unwrap() <= 0.0 && 0.0 <= m[5].parse::<f64>().unwrap())
        .count();
    assert!(months.len() >= 5 && months.iter().any(|m| m[0] == "postscript"), "{months:?}");
    assert!(months.iter().all(|m| m[2] == "B" || m[2] == "C"), "natural controls grade B or C: {months:?}");
    assert!(with_zero * 10 >= months.len() * 9, "0 inside {with_zero} of {} intervals", months.len());
    assert_eq!(
        rows(
            &storage,
            "select distinct lift_reason, cast(count(incremental_revenue) as bigint), \
             cast(sum(platform_reported_revenue) > 1000 as varchar) from fct_flow_contribution \
             where platform <> 'klaviyo' and flow_type = 'welcome' and channel = 'all' and period_grain = 'month' \
             and entries_t > 0 group by lift_reason"
        )
        .await,
        vec![vec!["no_control_signal".to_string(), "0".to_string(), "true".to_string()]]
    );
}

fn job(dir: &std::path::Path, klaviyo: &str, shopify: &str, sftp_port: u16, host_key: &str, start: NaiveDate) -> Job {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let text = format!(
        "[job]\nname = \"smsbrand\"\nreporting_timezone = \"America/New_York\"\nreporting_currency = \"USD\"\n\
         [storage]\nurl = \"file://{data}\"\n[run]\nlock_ttl_seconds = 30\nbatch_rows = 20000\n\
         [sources.klaviyo]\nbase_url = \"{klaviyo}\"\napi_key_env = \"{API_KEY_ENV}\"\nstart_date = \"{start}\"\n\
         {TEST_RATE_LIMITS}\
         [sources.shopify]\nbase_url = \"{shopify}\"\naccess_token_env = \"{SHOPIFY_TOKEN_ENV}\"\n\
         start_date = \"{start}\"\n[sources.shopify.bulk]\nthreshold_days = 2\npoll_interval_ms = 20\n\
         timeout_seconds = 60\nmin_window_minutes = 60\n\
         [sources.attentive]\nbase_url = \"http://127.0.0.1:9\"\napi_key_env = \"{ATTENTIVE_KEY_ENV}\"\n\
         start_date = \"{start}\"\n[sources.attentive.sftp]\nhost = \"127.0.0.1\"\nport = {sftp_port}\n\
         username = \"{user}\"\npassword_env = \"{SFTP_PASSWORD_ENV}\"\nhost_key = \"{host_key}\"\n\
         directory = \"/outbound\"\ndomain = \"{DOMAIN}\"\n\
         [sources.postscript]\n[sources.postscript.warehouse]\nurl = \"file://{warehouse}\"\n",
        data = data.display(),
        user = fake_sftp::SftpFakeConfig::default().username,
        warehouse = dir.join("warehouse").display(),
    );
    let path = dir.join("smsbrand.toml");
    std::fs::write(&path, text).unwrap();
    Job::load(&path).unwrap()
}
