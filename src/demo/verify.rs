//! The demo checks its own marts against the simulator's truth ([`crate::simulate::truth`]):
//! order counts and net revenue of `fct_orders`, and acquisition cohort sizes of `dim_customer`
//! (persons with a Shopify customer id, as the simulator counts them); and the SMS program's
//! sends, clicks and opt-outs on Attentive and Postscript as `fct_message_events` holds them.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use chrono_tz::Tz;

use crate::error::{Error, Result};
use crate::simulate::store::SimStore;
use crate::simulate::truth::{MartTruth, mart_truth};
use crate::storage::Storage;

/// One figure, from the marts and from the simulator.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub name: String,
    pub marts: i64,
    pub simulator: i64,
}

/// Which of the brand's SMS platforms the job read (their events are checked only then).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmsSources {
    pub attentive: bool,
    pub postscript: bool,
}

/// Compares the published marts with the simulator; returns every figure, or a contract error
/// (exit 1) naming the first that differs.
pub async fn verify(storage: &Storage, store: &SimStore, tz: Tz, sms: SmsSources) -> Result<Vec<Figure>> {
    let truth = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || mart_truth(&store, tz))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::io("cannot read the simulated brand", e))?
    };
    let got = from_marts(storage).await?;
    let mut figures = figures(&got, &truth);
    if sms.attentive || sms.postscript {
        figures.extend(sms_figures(storage, store).await?.into_iter().filter(|f| {
            (sms.attentive && f.name.starts_with("attentive")) || (sms.postscript && f.name.starts_with("postscript"))
        }));
    }
    if let Some(f) = figures.iter().find(|f| f.marts != f.simulator) {
        return Err(Error::Contract(format!(
            "demo: {} is {} in the marts but {} in the simulator's truth",
            f.name, f.marts, f.simulator
        )));
    }
    Ok(figures)
}

fn figures(got: &MartTruth, want: &MartTruth) -> Vec<Figure> {
    let f = |name: &str, marts: i64, simulator: i64| Figure { name: name.to_string(), marts, simulator };
    let mut out = vec![
        f("fct_orders rows", got.orders, want.orders),
        f("qualifying orders", got.qualifying, want.qualifying),
        f("net revenue (cents)", got.net_minor, want.net_minor),
        f("qualifying net revenue (cents)", got.qualifying_net_minor, want.qualifying_net_minor),
        f("cohort months", got.cohorts.len() as i64, want.cohorts.len() as i64),
    ];
    let months: std::collections::BTreeSet<&String> = got.cohorts.keys().chain(want.cohorts.keys()).collect();
    for m in months {
        let n = |c: &BTreeMap<String, i64>| c.get(m).copied().unwrap_or(0);
        out.push(f(&format!("cohort {} size", &m[..7]), n(&got.cohorts), n(&want.cohorts)));
    }
    out
}

/// The SMS program's events, per platform and canonical type, beside the program's truth.
async fn sms_figures(storage: &Storage, store: &SimStore) -> Result<Vec<Figure>> {
    use crate::simulate::sms_program::{self, SmsPlatform};
    let want = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<Vec<(&'static str, &'static str, u64)>> {
            let a =
                sms_program::generate(&store, SmsPlatform::Attentive, &sms_program::attentive_subscribers(&store)?)?
                    .truth();
            let p = sms_program::generate(
                &store,
                SmsPlatform::Postscript,
                &crate::fake::postscript::warehouse::postscript_subscribers(&store)?,
            )?
            .truth();
            Ok(vec![
                ("attentive", "sent", a.sends),
                ("attentive", "clicked", a.clicks),
                ("attentive", "subscribed", a.opt_ins),
                ("attentive", "unsubscribed", a.opt_outs),
                ("postscript", "sent", p.sends),
                ("postscript", "failed", p.failed_sends),
                ("postscript", "clicked", p.clicks),
            ])
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::io("cannot read the simulated brand", e))?
    };
    let ctx = crate::transform::published_session(storage).await?;
    let fail =
        |e: datafusion::error::DataFusionError| Error::Transform { model: "demo check".into(), message: e.to_string() };
    let batches = ctx
        .sql(
            "select platform, event_type, count(*) from fct_message_events              where platform in ('attentive', 'postscript') group by platform, event_type",
        )
        .await
        .map_err(fail)?
        .collect()
        .await
        .map_err(fail)?;
    let mut got: BTreeMap<(String, String), i64> = BTreeMap::new();
    for b in batches {
        let (p, t) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
        let n = b.column(2).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            got.insert((p.value(i).to_string(), t.value(i).to_string()), n.value(i));
        }
    }
    Ok(want
        .into_iter()
        .map(|(platform, kind, n)| Figure {
            name: format!("{platform} {kind} events"),
            marts: got.get(&(platform.to_string(), kind.to_string())).copied().unwrap_or(0),
            simulator: n as i64,
        })
        .collect())
}

async fn from_marts(storage: &Storage) -> Result<MartTruth> {
    let ctx = crate::transform::published_session(storage).await?;
    let query = |sql: &'static str| {
        let ctx = ctx.clone();
        async move {
            let batches = ctx.sql(sql).await?.collect().await?;
            let mut rows: Vec<(Option<String>, i64)> = Vec::new();
            for b in batches {
                let keys = (b.num_columns() == 2)
                    .then(|| arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8));
                let values = b.column(b.num_columns() - 1).as_primitive::<Int64Type>().clone();
                for i in 0..b.num_rows() {
                    let key = match &keys {
                        Some(Ok(k)) => Some(k.as_string::<i32>().value(i).to_string()),
                        _ => None,
                    };
                    rows.push((key, if values.is_null(i) { 0 } else { values.value(i) }));
                }
            }
            Ok::<_, datafusion::error::DataFusionError>(rows)
        }
    };
    let fail =
        |e: datafusion::error::DataFusionError| Error::Transform { model: "demo check".into(), message: e.to_string() };
    let one = |rows: Vec<(Option<String>, i64)>| rows.first().map(|r| r.1).unwrap_or(0);
    Ok(MartTruth {
        orders: one(query("select count(*) from fct_orders").await.map_err(fail)?),
        qualifying: one(query("select count(*) from fct_orders where is_qualifying").await.map_err(fail)?),
        net_minor: one(query("select cast(sum(net_revenue) * 100 as bigint) from fct_orders").await.map_err(fail)?),
        qualifying_net_minor: one(query(
            "select cast(sum(net_revenue) * 100 as bigint) from fct_orders where is_qualifying",
        )
        .await
        .map_err(fail)?),
        cohorts: query(
            "select acquisition_cohort_month, count(*) from dim_customer \
             where acquisition_cohort_month is not null and shopify_customer_ids is not null group by 1",
        )
        .await
        .map_err(fail)?
        .into_iter()
        .filter_map(|(k, n)| k.map(|k| (k, n)))
        .collect(),
    })
}
