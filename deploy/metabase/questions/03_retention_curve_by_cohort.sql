-- Retention curve by acquisition cohort: share of each month's new customers active N months
-- later, complete months only (all customers, no segment cut).
select
    r.cohort_month,
    r.month_number,
    r.cohort_size,
    r.active_customers,
    r.retention_pct,
    r.cumulative_revenue_per_customer
from marts.fct_cohort_retention as r
where r.cut_type = 'all' and r.is_complete_month
order by r.cohort_month, r.month_number
