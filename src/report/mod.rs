//! The Lifecycle Performance Dashboard: one self-contained HTML file (inline CSS and SVG, no
//! script, no network at view time) per month, read only from what the transform published.
//! Two views share the file: the CRM lead's (flow audit, anomalies, send time, cadence, RFM
//! movement, segments, interventions and queued hypotheses, run health) and the CFO's (flow
//! contribution beside last-click with intervals, retention, CLV).

mod data;
mod format;
mod html;
mod svg;

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Float64Type;
use datafusion::prelude::SessionContext;

pub use format::esc;

use crate::config::Job;
use crate::error::{Error, Result};
use crate::manifest;
use crate::storage::Storage;
use crate::transform;

/// Writes the dashboard for `month` (`YYYY-MM`; default: the month of the latest data) to
/// `reports/<month>/dashboard.html` in storage, and to `out` when given. Returns where it went.
pub async fn write(job: &Job, storage: &Storage, month: Option<&str>, out: Option<&Path>) -> Result<String> {
    if let Some(m) = month
        && chrono::NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").is_err()
    {
        return Err(Error::config(format!("--month {m}: expected YYYY-MM")));
    }
    let ctx = transform::published_session(storage).await?;
    let as_of = data::fetch(&ctx, data::AS_OF).await?;
    let as_of = (!as_of.is_empty()).then(|| as_of.text(0, 0)).flatten().unwrap_or_else(|| "no data yet".into());
    let month = month
        .map(str::to_string)
        .or_else(|| as_of.get(..7).filter(|m| m.len() == 7 && m.as_bytes()[4] == b'-').map(str::to_string))
        .unwrap_or_else(|| chrono::Utc::now().format("%Y-%m").to_string());
    let q = |sql: &str| data::for_month(sql, &month);
    let contribution = data::fetch(&ctx, &q(data::CONTRIBUTION)).await?;
    let retention = data::fetch(&ctx, &q(data::RETENTION)).await?;
    let clv = data::fetch(&ctx, &q(data::CLV)).await?;
    let transitions = data::fetch(&ctx, &q(data::TRANSITIONS)).await?;
    let segments = data::fetch(&ctx, &q(data::SEGMENTS)).await?;
    let audit = data::fetch(&ctx, &q(data::AUDIT)).await?;
    let send_time = data::fetch(&ctx, &q(data::SEND_TIME)).await?;
    let send_time_advice = data::fetch(&ctx, &q(data::SEND_TIME_ADVICE)).await?;
    let cadence = data::fetch(&ctx, &q(data::CADENCE)).await?;
    let cadence_advice = data::fetch(&ctx, &q(data::CADENCE_ADVICE)).await?;
    let interventions = data::fetch(&ctx, &q(data::INTERVENTIONS)).await?;
    let hypotheses = data::fetch(&ctx, data::HYPOTHESES).await?;
    let anomalies = anomalies(&ctx, &month).await?;
    let runs = manifest::run_manifests(storage).await?;
    let page = html::render(&html::Dashboard {
        job: job.name(),
        month: &month,
        as_of: &as_of,
        currency: &job.file.job.reporting_currency,
        contribution: &contribution,
        retention: &retention,
        clv: &clv,
        transitions: &transitions,
        segments: &segments,
        audit: &audit,
        send_time: &send_time,
        send_time_advice: &send_time_advice,
        cadence: &cadence,
        cadence_advice: &cadence_advice,
        interventions: &interventions,
        hypotheses: &hypotheses,
        anomalies: &anomalies,
        runs: &runs,
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

#[cfg(test)]
mod tests {
    /// Every section's query plans and runs on a job with nothing published yet (each mart an
    /// empty table of its contract's schema), and the page says so instead of failing.
    #[tokio::test]
    async fn every_query_runs_before_anything_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let job = crate::demo::demo_job(dir.path(), "http://127.0.0.1:9", "http://127.0.0.1:9").unwrap();
        let storage = crate::storage::Storage::open(&job.file.storage, &crate::config::Secrets::default()).unwrap();
        let out = dir.path().join("dashboard.html");
        super::write(&job, &storage, Some("2026-08"), Some(&out)).await.unwrap();
        let page = std::fs::read_to_string(&out).unwrap();
        assert!(page.contains("data as of <b>no data yet</b>"), "{page}");
        assert!(page.contains("No flow audit yet") && page.contains("No interventions recorded"));
    }
}
