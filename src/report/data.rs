//! What the dashboard reads: one query per section over the published marts, returned as
//! plain rows the page renders. Every query reads only published tables, so the report can be
//! re-run alone after any transform.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};

/// A query's result with every column readable as text or as a number.
pub struct Rows {
    text: Vec<ArrayRef>,
    num: Vec<Option<ArrayRef>>,
    len: usize,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Column `c` of row `r` as text; `None` for NULL.
    pub fn text(&self, r: usize, c: usize) -> Option<String> {
        let a = self.text[c].as_string::<i32>();
        a.is_valid(r).then(|| a.value(r).to_string())
    }

    /// Column `c` of row `r` as text, `""` for NULL.
    pub fn str(&self, r: usize, c: usize) -> String {
        self.text(r, c).unwrap_or_default()
    }

    /// Column `c` of row `r` as a number; `None` for NULL or a column that is not numeric.
    pub fn num(&self, r: usize, c: usize) -> Option<f64> {
        let a = self.num[c].as_ref()?.as_primitive::<Float64Type>();
        a.is_valid(r).then(|| a.value(r)).filter(|v| v.is_finite())
    }

    /// Column `c` of row `r` as a number, 0 for NULL.
    pub fn f(&self, r: usize, c: usize) -> f64 {
        self.num(r, c).unwrap_or(0.0)
    }
}

/// Runs `sql`; a table that was never published reads as empty, so a section of a job without
/// that source shows "no data" instead of failing the report.
pub async fn fetch(ctx: &SessionContext, sql: &str) -> Result<Rows> {
    let fail =
        |e: datafusion::error::DataFusionError| Error::Transform { model: "report".into(), message: e.to_string() };
    let df = ctx.sql(sql).await.map_err(fail)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches: Vec<RecordBatch> = df.collect().await.map_err(fail)?;
    let batch = concat_batches(&schema, &batches).map_err(|e| Error::Internal(e.to_string()))?;
    let mut text = Vec::new();
    let mut num = Vec::new();
    for col in batch.columns() {
        text.push(cast(col, &DataType::Utf8).map_err(|e| Error::Internal(e.to_string()))?);
        let numeric = col.data_type().is_numeric() || matches!(col.data_type(), DataType::Boolean);
        num.push(if numeric { cast(col, &DataType::Float64).ok() } else { None });
    }
    Ok(Rows { text, num, len: batch.num_rows() })
}

/// Quotes a value for SQL text.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The month's first and last day, `YYYY-MM-DD`.
pub fn month_bounds(month: &str) -> (String, String) {
    let first = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").expect("month validated");
    let last = first.checked_add_months(chrono::Months::new(1)).expect("in range").pred_opt().expect("in range");
    (first.to_string(), last.to_string())
}

pub const CONTRIBUTION: &str = "\
select flow_name, flow_type, channel, sends, channel_cost, last_click_revenue, incremental_revenue, \
       incremental_revenue_ci_low, incremental_revenue_ci_high, evidence_grade, lift_method, \
       incremental_contribution_margin, incremental_contribution_margin_ci_low, \
       incremental_contribution_margin_ci_high, incrementality_ratio, is_mature, lift_reason, rolled_up_to, \
       platform_reported_revenue \
from ( \
  select *, max(case when channel = 'all' then coalesce(last_click_revenue, 0) end) over (partition by flow_key) as flow_rank \
  from fct_flow_contribution \
  where period_grain = 'month' and period_start = cast({first} as date)) \
where channel = 'all' or sends > 0 \
order by flow_rank desc, flow_name, case when channel = 'all' then 0 else 1 end, channel";

pub const RETENTION: &str = "\
select cast(cohort_month as varchar) as cohort, month_number, retention_pct, cumulative_revenue_per_customer, cohort_size \
from fct_cohort_retention \
where cut_type = 'all' and is_complete_month and activity_month <= cast({last} as date) \
  and cohort_month > cast({first} as date) - interval '12 months' and cohort_month <= cast({first} as date) \
order by cohort_month, month_number";

pub const CLV: &str = "\
select segment_type, segment_value, customers, avg_purchase_value, purchase_frequency, churn_rate_annual, \
       avg_lifespan_years, historical_clv, pred_clv_12m_mean, cast(data_cutoff as varchar) as cutoff \
from fct_clv \
where as_of_month = coalesce((select max(as_of_month) from fct_clv where as_of_month <= cast({last} as date)), \
                             (select min(as_of_month) from fct_clv)) \
order by segment_type, segment_value";

pub const TRANSITIONS: &str = "\
select from_tier, to_tier, customers, share_of_from, cast(from_snapshot_date as varchar) as from_text, \
       cast(to_snapshot_date as varchar) as to_text \
from fct_rfm_transitions \
where period_grain = 'month' \
  and to_snapshot_date = (select max(to_snapshot_date) from fct_rfm_transitions \
                          where period_grain = 'month' and to_snapshot_date <= cast({last} as date))";

pub const SEGMENTS: &str = "\
select rfm_tier, first_order_offer_type, sum(customers) as customers, sum(net_revenue_l365d) as revenue, \
       cast(max(snapshot_date) as varchar) as snapshot \
from fct_segment_matrix \
where cohort_grain = 'year' \
  and snapshot_date = (select max(snapshot_date) from fct_segment_matrix where snapshot_date <= cast({last} as date)) \
group by rfm_tier, first_order_offer_type";

pub const AS_OF: &str = "\
select cast(max(d) as varchar) as as_of_text from ( \
  select max(order_date) as d from fct_orders union all select max(event_date) from fct_message_events)";

/// The flow audit at the month's end; the audit is a nightly snapshot of the flows as they are,
/// so a month before the first audit reads the earliest one (its date is shown).
pub const AUDIT: &str = "\
select coalesce(flow_name, '') as flow_name, flow_type, coalesce(status, '') as status, calibration_status, \
       array_to_string(channels, ', ') as channels, branching_depth, first_message_delay_hours, \
       days_since_content_update, ab_tests_total, holdout_active, sends_l30d, evidence_grade, \
       array_to_string(calibration_reasons, ', ') as reasons, array_to_string(recommendations, ', ') as recommendations, \
       default_signal_count, cast(audit_date as varchar) as audit_date_text \
from fct_flow_audit \
where audit_date = coalesce((select max(audit_date) from fct_flow_audit where audit_date <= cast({last} as date)), \
                            (select min(audit_date) from fct_flow_audit)) \
order by case calibration_status when 'missing' then 0 when 'running_on_defaults' then 1 when 'stale' then 2 \
         when 'needs_review' then 3 when 'calibrated' then 4 else 5 end, coalesce(sends_l30d, 0) desc, flow_name";

/// Campaign email engagement by local hour of week, all segments pooled, at the latest as-of
/// date in the month.
pub const SEND_TIME: &str = "\
select hour_of_week, sum(deliveries) as deliveries, sum(unique_clicks) as clicks, cast(max(as_of_date) as varchar) as as_of_text \
from fct_send_time \
where channel = 'email' \
  and as_of_date = (select max(as_of_date) from fct_send_time where as_of_date <= cast({last} as date)) \
group by hour_of_week order by hour_of_week";

pub const SEND_TIME_ADVICE: &str = "\
select segment_key, channel, deliveries, current_hour_of_week, recommended_hour_of_week, recommended_weekday, \
       recommended_local_hour, prob_better, expected_relative_uplift, reason \
from fct_send_time_recommendation \
where as_of_date = (select max(as_of_date) from fct_send_time_recommendation where as_of_date <= cast({last} as date)) \
order by channel, deliveries desc";

/// Unsubscribes per profile-week by weekly message count over the 13 weeks to the month's end,
/// per segment (email).
pub const CADENCE: &str = "\
select segment_key, frequency_bucket, bucket_min_messages, sum(profile_weeks) as profile_weeks, \
       sum(unsubscribes) as unsubscribes, sum(net_revenue) as revenue \
from fct_cadence \
where channel = 'email' and week_end <= cast({last} as date) and week_start > cast({last} as date) - interval '91 days' \
group by segment_key, frequency_bucket, bucket_min_messages order by segment_key, bucket_min_messages";

pub const CADENCE_ADVICE: &str = "\
select segment_key, channel, current_median_cadence, recommended_max_cadence, binding_constraint, \
       profile_weeks_behind, cast(as_of_date as varchar) as as_of_text \
from fct_cadence_recommendation \
where as_of_date = (select max(as_of_date) from fct_cadence_recommendation where as_of_date <= cast({last} as date)) \
order by channel, profile_weeks_behind desc";

/// Every recorded intervention up to the month's end, newest first.
pub const INTERVENTIONS: &str = "\
select intervention_id, coalesce(flow_name, flow) as flow_label, cast(changed_on as varchar) as changed_on_text, change, hypothesis, \
       expected_effect, entries_before, entries_after, rpe_before, rpe_after, did_rpe, did_rpe_ci_low, did_rpe_ci_high, \
       incremental_revenue_after, incremental_revenue_after_ci_low, incremental_revenue_after_ci_high, verdict, \
       cast(readable_from as varchar) as readable_from_text \
from fct_intervention_readout \
where changed_on <= cast({last} as date) \
order by changed_on desc, intervention_id";

pub const HYPOTHESES: &str = "\
select queue_rank, coalesce(flow_name, flow) as flow_label, hypothesis, expected_effect, status \
from fct_hypothesis_queue where queue_rank is not null order by queue_rank";

/// Fills `{first}` and `{last}` with the month's bounds.
pub fn for_month(sql: &str, month: &str) -> String {
    let (first, last) = month_bounds(month);
    sql.replace("{first}", &lit(&first)).replace("{last}", &lit(&last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_bounds_and_quoting() {
        assert_eq!(month_bounds("2026-02"), ("2026-02-01".into(), "2026-02-28".into()));
        assert_eq!(month_bounds("2024-12"), ("2024-12-01".into(), "2024-12-31".into()));
        assert_eq!(lit("it's"), "'it''s'");
        assert!(for_month(CONTRIBUTION, "2026-03").contains("cast('2026-03-01' as date)"));
    }
}
