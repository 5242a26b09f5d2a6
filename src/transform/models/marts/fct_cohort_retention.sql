-- Acquisition cohort month x months since acquisition x cut (models.md 4.7): persons from
-- int_cohort_person_orders (left-censored persons excluded), "active" = purchasing (qualifying
-- orders). Right-censoring: a cohort's cells run from month 0 to the month of data_end_date (the
-- local date of the latest landed order); later months are not emitted, never zeros. Cells
-- between are emitted even without activity (a real zero).
with data_end as (
    select max(order_date) as data_end_date from fct_orders
),

orders as (
    select * from int_cohort_person_orders where not is_left_censored
),

persons as (
    select person_key, acquisition_cohort_month, acquisition_channel_group, first_order_offer_type
    from orders
    where person_order_seq = 1
),

person_cuts as (
    select person_key, acquisition_cohort_month as cohort_month, 'all' as cut_type, 'all' as cut_value
    from persons
    union all
    select person_key, acquisition_cohort_month, 'acquisition_channel_group', acquisition_channel_group
    from persons
    union all
    select person_key, acquisition_cohort_month, 'first_order_offer_type', first_order_offer_type
    from persons
),

cohorts as (
    select
        pc.cohort_month,
        pc.cut_type,
        pc.cut_value,
        count(*) as cohort_size,
        max(cast(
            (date_part('year', d.data_end_date) - date_part('year', pc.cohort_month)) * 12
            + date_part('month', d.data_end_date) - date_part('month', pc.cohort_month)
        as int)) as last_month_number
    from data_end d
    cross join person_cuts pc
    group by pc.cohort_month, pc.cut_type, pc.cut_value
),

month_numbers as (
    select cast(k as int) as month_number from (select unnest(range(0, 1200)) as k)
),

cells as (
    select
        c.cohort_month,
        n.month_number,
        c.cut_type,
        c.cut_value,
        make_date(
            cast(date_part('year', c.cohort_month) as int)
                + (cast(date_part('month', c.cohort_month) as int) - 1 + n.month_number) / 12,
            (cast(date_part('month', c.cohort_month) as int) - 1 + n.month_number) % 12 + 1,
            1
        ) as activity_month,
        c.cohort_size
    from cohorts c
    join month_numbers n on n.month_number <= c.last_month_number
),

person_months as (
    select
        pc.cohort_month,
        pc.cut_type,
        pc.cut_value,
        pc.person_key,
        cast(
            (date_part('year', o.order_month) - date_part('year', pc.cohort_month)) * 12
            + date_part('month', o.order_month) - date_part('month', pc.cohort_month)
        as int) as month_number,
        count(*) as orders,
        sum(o.net_revenue) as net_revenue,
        sum(o.gross_margin) as gross_margin
    from person_cuts pc
    join orders o on o.person_key = pc.person_key
    group by 1, 2, 3, 4, 5
),

activity as (
    select
        cohort_month,
        cut_type,
        cut_value,
        month_number,
        count(*) as active_customers,
        sum(case when orders >= 2 then 1 else 0 end) as repeat_customers,
        sum(orders) as orders,
        sum(net_revenue) as net_revenue,
        sum(gross_margin) as gross_margin
    from person_months
    group by 1, 2, 3, 4
),

joined as (
    select
        c.cohort_month,
        c.month_number,
        c.cut_type,
        c.cut_value,
        c.activity_month,
        c.cohort_size,
        coalesce(a.active_customers, 0) as active_customers,
        a.repeat_customers,
        coalesce(a.orders, 0) as orders,
        cast(coalesce(a.net_revenue, 0) as decimal(18, 4)) as net_revenue,
        cast(coalesce(a.gross_margin, 0) as decimal(18, 4)) as gross_margin
    from cells c
    left join activity a
        on a.cohort_month = c.cohort_month
        and a.cut_type = c.cut_type
        and a.cut_value = c.cut_value
        and a.month_number = c.month_number
),

cumulative as (
    select
        *,
        sum(net_revenue) over (
            partition by cohort_month, cut_type, cut_value order by month_number
            rows between unbounded preceding and current row
        ) as cumulative_net_revenue,
        sum(gross_margin) over (
            partition by cohort_month, cut_type, cut_value order by month_number
            rows between unbounded preceding and current row
        ) as cumulative_gross_margin
    from joined
)

select
    c.cohort_month,
    c.month_number,
    c.cut_type,
    c.cut_value,
    c.activity_month,
    cast(c.cohort_size as bigint) as cohort_size,
    cast(c.active_customers as bigint) as active_customers,
    cast(c.active_customers as double) / cast(c.cohort_size as double) as retention_pct,
    case when c.month_number = 0 then cast(coalesce(c.repeat_customers, 0) as bigint) end as repeat_customers_m0,
    cast(c.orders as bigint) as orders,
    c.net_revenue,
    c.gross_margin,
    cast(c.cumulative_net_revenue as decimal(18, 4)) as cumulative_net_revenue,
    cast(round(cast(c.cumulative_net_revenue as decimal(38, 10)) / c.cohort_size, 4) as decimal(18, 4))
        as cumulative_revenue_per_customer,
    cast(round(cast(c.cumulative_gross_margin as decimal(38, 10)) / c.cohort_size, 4) as decimal(18, 4))
        as cumulative_margin_per_customer,
    (c.activity_month + interval '1 month' - interval '1 day') <= d.data_end_date as is_complete_month,
    '1.0.0' as model_version
from data_end d
cross join cumulative c
order by c.cohort_month, c.cut_type, c.cut_value, c.month_number
