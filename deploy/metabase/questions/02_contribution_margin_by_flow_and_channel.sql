-- Contribution margin by flow and channel per month: incremental contribution margin (after
-- COGS, discounts and refunds, before messaging cost) less the channel's message cost.
select
    f.period_start,
    f.platform,
    f.flow_name,
    f.channel,
    f.sends,
    f.channel_cost,
    f.incremental_contribution_margin,
    f.incremental_contribution_margin - coalesce(f.channel_cost, 0) as contribution_after_messaging,
    f.evidence_grade
from marts.fct_flow_contribution as f
where f.period_grain = 'month' and f.channel <> 'all'
order by f.period_start desc, f.platform, f.flow_name, f.channel
