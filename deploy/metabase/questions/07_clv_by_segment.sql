-- CLTV figures by segment for the latest month: purchase value, frequency, lifespan, churn and
-- historical and predicted 12-month value.
select
    c.segment_type,
    c.segment_value,
    c.customers,
    c.avg_purchase_value,
    c.purchase_frequency,
    c.avg_lifespan_years,
    c.churn_rate_annual,
    c.historical_clv,
    c.pred_clv_12m_mean
from marts.fct_clv as c
where c.as_of_month = (select max(as_of_month) from marts.fct_clv)
order by c.segment_type, c.segment_value
