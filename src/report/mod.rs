//! The Lifecycle Performance Dashboard: one self-contained HTML file (inline CSS and SVG, no
//! network at view time) per month, read from what the transform published.
//!
//! This release shows what the foundation lands: run health, message activity by metric and
//! month, and consent. The modeled views (flow contribution, retention, RFM, audit) join it as
//! their marts are built.

mod html;

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type};
use datafusion::prelude::SessionContext;

use crate::config::Job;
use crate::error::{Error, Result};
use crate::manifest;
use crate::storage::Storage;
use crate::transform::{self, publish};

/// Writes the dashboard for `month` (`YYYY-MM`; default: the latest month with events) to
/// `reports/<month>/dashboard.html` in storage, and to `out` when given. Returns where it went.
pub async fn write(job: &Job, storage: &Storage, month: Option<&str>, out: Option<&Path>) -> Result<String> {
    if let Some(m) = month
        && chrono::NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").is_err()
    {
        return Err(Error::config(format!("--month {m}: expected YYYY-MM")));
    }
    let ctx = transform::session(storage)?;
    for (layer, name) in [
        ("staging", "stg_klaviyo__events"),
        ("staging", "stg_klaviyo__metrics"),
        ("staging", "stg_klaviyo__profiles"),
        ("intermediate", "int_flows"),
        ("marts", "fct_anomalies"),
    ] {
        let contract = crate::contract::model(layer, name)?;
        let files = publish::current(storage, layer, name).await?.map(|c| c.files).unwrap_or_default();
        transform::register_files(&ctx, storage, name, &files, contract.arrow_schema()).await?;
    }
    let tz = job.file.job.reporting_timezone.replace('\'', "");
    let monthly = query(
        &ctx,
        &format!(
            "select to_char(arrow_cast(e.occurred_at, 'Timestamp(Microsecond, Some(\"{tz}\"))'), '%Y-%m') as month, \
                    m.metric_name, count(*) as events \
             from stg_klaviyo__events e join stg_klaviyo__metrics m on e.metric_id = m.metric_id \
             group by 1, 2 order by 1, 2"
        ),
    )
    .await?;
    let mut rows: Vec<(String, String, i64)> = Vec::new();
    for b in &monthly {
        let (months, names, counts) =
            (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>(), b.column(2).as_primitive::<Int64Type>());
        for i in 0..b.num_rows() {
            rows.push((months.value(i).to_string(), names.value(i).to_string(), counts.value(i)));
        }
    }
    let month = month
        .map(str::to_string)
        .or_else(|| rows.iter().map(|r| r.0.clone()).max())
        .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m").to_string());
    let consent = query(
        &ctx,
        "select coalesce(email_consent, 'unknown') as email, coalesce(sms_consent, 'unknown') as sms, count(*) as profiles \
         from stg_klaviyo__profiles group by 1, 2 order by 3 desc",
    )
    .await?;
    let mut consent_rows = Vec::new();
    for b in &consent {
        for i in 0..b.num_rows() {
            consent_rows.push((
                b.column(0).as_string::<i32>().value(i).to_string(),
                b.column(1).as_string::<i32>().value(i).to_string(),
                b.column(2).as_primitive::<Int64Type>().value(i),
            ));
        }
    }
    let anomalies = anomalies(&ctx, &month).await?;
    let runs = manifest::run_manifests(storage).await?;
    let page = html::render(&html::Inputs {
        job: job.name(),
        month: &month,
        monthly: &rows,
        consent: &consent_rows,
        runs: &runs,
        anomalies: &anomalies,
        currency: &job.file.job.reporting_currency,
    });

    let rel = format!("reports/{month}/dashboard.html");
    storage.put(&rel, page.clone().into_bytes()).await?;
    let mut location = format!("{}/{rel}", storage.url().trim_end_matches('/'));
    if let Some(out) = out {
        std::fs::write(out, &page).map_err(|e| Error::io(format!("cannot write {}", out.display()), e))?;
        location = out.display().to_string();
    }
    Ok(location)
}

/// The month's rows of `fct_anomalies` with their flow's name, oldest first.
async fn anomalies(ctx: &SessionContext, month: &str) -> Result<Vec<html::Anomaly>> {
    let month = month.replace('\'', "");
    let sql = format!(
        "select arrow_cast(cast(a.detection_date as varchar), 'Utf8') as day, arrow_cast(a.metric, 'Utf8') as metric, \
                arrow_cast(f.flow_name, 'Utf8') as flow_name, arrow_cast(a.platform, 'Utf8') as platform, \
                arrow_cast(a.channel, 'Utf8') as channel, a.observed, a.expected, a.robust_z, \
                arrow_cast(a.severity, 'Utf8') as severity, arrow_cast(a.rule, 'Utf8') as rule, \
                arrow_cast(cast(a.episode_start_date as varchar), 'Utf8') as episode_start, a.series_key \
         from int_flows as f right join fct_anomalies as a on f.flow_key = a.flow_key \
         where to_char(a.detection_date, '%Y-%m') = '{month}' \
         order by day, metric, a.series_key"
    );
    let mut out = Vec::new();
    for b in query(ctx, &sql).await? {
        let text = |i: usize| b.column(i).as_string::<i32>().clone();
        let float = |i: usize| b.column(i).as_primitive::<Float64Type>().clone();
        let (date, metric, flow, platform, channel) = (text(0), text(1), text(2), text(3), text(4));
        let (observed, expected, z) = (float(5), float(6), float(7));
        let (severity, rule, start) = (text(8), text(9), text(10));
        let opt = |a: &arrow::array::StringArray, r: usize| a.is_valid(r).then(|| a.value(r).to_string());
        for r in 0..b.num_rows() {
            out.push(html::Anomaly {
                date: date.value(r).to_string(),
                metric: metric.value(r).to_string(),
                flow_name: opt(&flow, r),
                platform: opt(&platform, r),
                channel: opt(&channel, r),
                observed: observed.value(r),
                expected: expected.is_valid(r).then(|| expected.value(r)),
                robust_z: z.is_valid(r).then(|| z.value(r)),
                severity: severity.value(r).to_string(),
                rule: rule.value(r).to_string(),
                episode_start: start.value(r).to_string(),
            });
        }
    }
    Ok(out)
}

async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let fail =
        |e: datafusion::error::DataFusionError| Error::Transform { model: "report".into(), message: e.to_string() };
    let batches = ctx.sql(sql).await.map_err(fail)?.collect().await.map_err(fail)?;
    Ok(batches.into_iter().filter(|b| b.num_rows() > 0).collect())
}
