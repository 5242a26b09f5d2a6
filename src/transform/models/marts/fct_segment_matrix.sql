-- Snapshot x acquisition cohort x first-order offer type x RFM tier (models.md 4.10), at three
-- cohort grains: month ('YYYY-MM'), quarter ('YYYY-Qn'), year ('YYYY'); left-censored persons
-- have no cohort and sit under cohort_value 'left_censored'. Trailing and lifetime figures are
-- as of the snapshot (int_rfm_person_snapshots).
with persons as (
    select
        s.snapshot_date,
        s.person_key,
        s.rfm_tier,
        s.first_order_offer_type,
        s.acquisition_cohort_month,
        b.is_scored,
        b.orders_l90d,
        b.net_revenue_l90d,
        b.orders_l365d,
        b.net_revenue_l365d,
        b.gross_margin_l365d,
        b.lifetime_orders,
        b.lifetime_net_revenue
    from fct_rfm_snapshot s
    join int_rfm_person_snapshots b on b.snapshot_date = s.snapshot_date and b.person_key = s.person_key
),

grains as (
    select
        p.*,
        'month' as cohort_grain,
        coalesce(to_char(p.acquisition_cohort_month, '%Y-%m'), 'left_censored') as cohort_value
    from persons p
    union all
    select
        p.*,
        'quarter' as cohort_grain,
        arrow_cast(coalesce(
            concat(
                to_char(p.acquisition_cohort_month, '%Y'), '-Q',
                cast((date_part('month', p.acquisition_cohort_month) + 2) / 3 as int)
            ),
            'left_censored'
        ), 'Utf8') as cohort_value
    from persons p
    union all
    select
        p.*,
        'year' as cohort_grain,
        coalesce(to_char(p.acquisition_cohort_month, '%Y'), 'left_censored') as cohort_value
    from persons p
),

base as (
    select snapshot_date, count(*) as scored_base from persons where is_scored group by snapshot_date
),

cells as (
    select
        snapshot_date,
        cohort_grain,
        cohort_value,
        first_order_offer_type,
        rfm_tier,
        count(*) as customers,
        sum(case when orders_l90d > 0 then 1 else 0 end) as active_l90d,
        sum(orders_l365d) as orders_l365d,
        sum(net_revenue_l90d) as net_revenue_l90d,
        sum(net_revenue_l365d) as net_revenue_l365d,
        sum(gross_margin_l365d) as gross_margin_l365d,
        sum(lifetime_net_revenue) as lifetime_net_revenue,
        sum(case when lifetime_orders >= 2 then 1 else 0 end) as repeaters
    from grains
    group by 1, 2, 3, 4, 5
)

select
    c.snapshot_date,
    c.cohort_grain,
    c.cohort_value,
    c.first_order_offer_type,
    c.rfm_tier,
    cast(c.customers as bigint) as customers,
    case when b.scored_base > 0 then cast(c.customers as double) / cast(b.scored_base as double) end
        as share_of_base,
    cast(c.active_l90d as bigint) as active_l90d,
    cast(c.orders_l365d as bigint) as orders_l365d,
    cast(c.net_revenue_l90d as decimal(18, 4)) as net_revenue_l90d,
    cast(c.net_revenue_l365d as decimal(18, 4)) as net_revenue_l365d,
    cast(c.gross_margin_l365d as decimal(18, 4)) as gross_margin_l365d,
    cast(round(cast(c.lifetime_net_revenue as decimal(38, 10)) / c.customers, 4) as decimal(18, 4))
        as avg_lifetime_net_revenue,
    cast(c.repeaters as double) / cast(c.customers as double) as repeat_rate,
    c.customers >= 30 as min_cell_size_ok,
    '1.0.0' as model_version
from cells c
left join base b on b.snapshot_date = c.snapshot_date
order by c.snapshot_date, c.cohort_grain, c.cohort_value, c.first_order_offer_type, c.rfm_tier
