-- RFM-tier movement between the last two monthly snapshots: customers moving from each tier to
-- each tier, and their net revenue in between.
select
    t.from_tier,
    t.to_tier,
    t.direction,
    t.customers,
    t.share_of_from,
    t.net_revenue_between
from marts.fct_rfm_transitions as t
where t.period_grain = 'month'
  and t.to_snapshot_date = (select max(to_snapshot_date) from marts.fct_rfm_transitions where period_grain = 'month')
order by t.from_tier, t.to_tier
