//! The Lifecycle Performance Dashboard: one self-contained HTML file (inline CSS and SVG, no
//! network at view time) per month, read from what the transform published.
//!
//! This release shows what the foundation lands: run health, message activity by metric and
//! month, and consent. The modeled views (flow contribution, retention, RFM, audit) join it as
//! their marts are built.

mod html;

use std::path::Path;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
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
    for (layer, name) in
        [("staging", "stg_klaviyo__events"), ("staging", "stg_klaviyo__metrics"), ("staging", "stg_klaviyo__profiles")]
    {
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
    let runs = manifest::run_manifests(storage).await?;
    let page = html::render(&html::Inputs {
        job: job.name(),
        month: &month,
        monthly: &rows,
        consent: &consent_rows,
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

async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    let fail =
        |e: datafusion::error::DataFusionError| Error::Transform { model: "report".into(), message: e.to_string() };
    let batches = ctx.sql(sql).await.map_err(fail)?.collect().await.map_err(fail)?;
    Ok(batches.into_iter().filter(|b| b.num_rows() > 0).collect())
}
