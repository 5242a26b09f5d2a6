-- Revenue contribution per flow, last month: modeled incremental revenue with its 95 % interval
-- beside last-click and platform-reported revenue, so the gap is visible (the CFO view's headline).
-- One row per flow (channel 'all', month grain); flows without an estimate show their lift_reason.
select
    f.platform,
    f.flow_name,
    f.flow_type,
    f.period_start,
    f.incremental_revenue,
    f.incremental_revenue_ci_low,
    f.incremental_revenue_ci_high,
    f.last_click_revenue,
    f.platform_reported_revenue,
    f.evidence_grade,
    f.lift_reason
from marts.fct_flow_contribution as f
where f.channel = 'all'
  and f.period_grain = 'month'
  and f.period_start = (select max(period_start) from marts.fct_flow_contribution where period_grain = 'month')
order by f.last_click_revenue desc nulls last, f.flow_name
