-- Helper of the RFM marts (models.md 4.8): one row per month-end snapshot x person with a
-- qualifying order on or before it, with the RFM inputs over the lookback window
-- (snapshot_date - rfm_lookback_days, snapshot_date] and the trailing and lifetime sums the
-- segment matrix needs. Snapshots are the local month ends from the month of the first qualifying
-- order to the last month end on or before data_end_date (the local date of the latest landed
-- order): deterministic, no wall clock; the current, unfinished month has no snapshot.
with settings as (
    select coalesce(max(case when key = 'rfm_lookback_days' then cast(value as int) end), 730) as lookback_days
    from cfg_settings
),

data_end as (
    select max(order_date) as data_end_date from fct_orders
),

orders as (
    select person_key, order_date, arrow_cast(order_date, 'Int32') as order_day, net_revenue, gross_margin
    from int_cohort_person_orders
),

persons as (
    select
        person_key,
        acquisition_date,
        acquisition_cohort_month,
        acquisition_channel_group,
        first_order_offer_type,
        is_left_censored
    from int_cohort_person_orders
    where person_order_seq = 1
),

month_numbers as (
    select cast(k as int) as month_number from (select unnest(range(0, 1200)) as k)
),

snapshots as (
    select snapshot_date
    from (
        select
            make_date(
                cast(date_part('year', f.first_month) as int)
                    + (cast(date_part('month', f.first_month) as int) + n.month_number) / 12,
                (cast(date_part('month', f.first_month) as int) + n.month_number) % 12 + 1,
                1
            ) - interval '1 day' as snapshot_date
        from (select min(date_trunc('month', acquisition_date)) as first_month from persons) f
        cross join month_numbers n
    )
    cross join data_end d
    where snapshot_date <= d.data_end_date
),

measures as (
    select
        s.snapshot_date,
        o.person_key,
        max(o.order_date) as last_order_date,
        sum(case when o.order_day > s.snapshot_day - st.lookback_days then 1 else 0 end) as frequency,
        sum(case when o.order_day > s.snapshot_day - st.lookback_days then o.net_revenue else 0 end) as monetary,
        sum(case when o.order_day > s.snapshot_day - 90 then 1 else 0 end) as orders_l90d,
        sum(case when o.order_day > s.snapshot_day - 90 then o.net_revenue else 0 end) as net_revenue_l90d,
        sum(case when o.order_day > s.snapshot_day - 365 then 1 else 0 end) as orders_l365d,
        sum(case when o.order_day > s.snapshot_day - 365 then o.net_revenue else 0 end) as net_revenue_l365d,
        sum(case when o.order_day > s.snapshot_day - 365 then o.gross_margin else 0 end) as gross_margin_l365d,
        count(*) as lifetime_orders,
        sum(o.net_revenue) as lifetime_net_revenue
    from (select snapshot_date, arrow_cast(snapshot_date, 'Int32') as snapshot_day from snapshots) s
    cross join settings st
    join orders o on o.order_day <= s.snapshot_day
    group by s.snapshot_date, o.person_key
)

select
    m.snapshot_date,
    m.person_key,
    m.frequency > 0 as is_scored,
    cast(arrow_cast(m.snapshot_date, 'Int32') - arrow_cast(m.last_order_date, 'Int32') as int) as recency_days,
    cast(m.frequency as int) as frequency,
    cast(m.monetary as decimal(18, 4)) as monetary,
    m.last_order_date,
    cast(m.orders_l90d as bigint) as orders_l90d,
    cast(m.net_revenue_l90d as decimal(18, 4)) as net_revenue_l90d,
    cast(m.orders_l365d as bigint) as orders_l365d,
    cast(m.net_revenue_l365d as decimal(18, 4)) as net_revenue_l365d,
    cast(m.gross_margin_l365d as decimal(18, 4)) as gross_margin_l365d,
    cast(m.lifetime_orders as bigint) as lifetime_orders,
    cast(m.lifetime_net_revenue as decimal(18, 4)) as lifetime_net_revenue,
    ps.acquisition_cohort_month,
    ps.acquisition_channel_group,
    ps.first_order_offer_type,
    ps.is_left_censored
-- Persons (one row each) are the join's build side; the person-month measures stream.
from persons ps
join measures m on ps.person_key = m.person_key
order by m.snapshot_date, m.person_key
