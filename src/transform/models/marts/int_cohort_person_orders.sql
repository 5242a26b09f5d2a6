-- Helper of the cohort and RFM marts: one row per qualifying order (models.md 1.4) of an
-- identified person (int_order_person), with the person's sequence and the person-level
-- acquisition attributes of models.md 4.2 (first qualifying order, cohort month, acquisition
-- channel group, first-order offer type) and left-censoring (models.md 1.5).
-- A mart-layer helper because it reads fct_orders (an intermediate model builds before the marts).
-- Persons are derived here rather than read from dim_customer.
with settings as (
    select max(case when key = 'reporting_tz' then value end) as reporting_tz from cfg_settings
),

orders as (
    select
        o.order_key,
        cast(o.order_id as bigint) as order_id,
        p.person_key,
        o.order_at,
        o.order_date,
        o.order_month,
        o.net_revenue,
        o.gross_margin,
        o.offer_type,
        o.is_qualifying
    from fct_orders o
    join int_order_person p on p.order_id = cast(o.order_id as bigint)
    -- Without a reporting timezone fct_orders has no local dates: nothing can be bucketed.
    where p.person_key is not null and o.order_date is not null
),

qualifying as (
    select
        *,
        cast(row_number() over (partition by person_key order by order_at, order_id) as int) as person_order_seq
    from orders
    where is_qualifying
),

-- Left-censoring inputs (models.md 1.5): the data window's first local date, each landed
-- customer's lifetime counter against the orders held for it (test orders included: Shopify's
-- counter counts them), and its creation date.
data_window as (
    select min(order_date) as data_start_date from fct_orders
),

held as (
    select cast(split_part(customer_id, '/', 5) as bigint) as customer_id, count(distinct id) as held_orders
    from raw_shopify__orders
    where customer_id is not null
    group by 1
),

customers as (
    select
        c.customer_id,
        c.number_of_orders,
        local_date(c.created_at, s.reporting_tz) as created_date,
        coalesce(h.held_orders, 0) as held_orders
    from settings s
    cross join stg_shopify__customers c
    left join held h on h.customer_id = c.customer_id
),

person_customers as (
    select distinct p.person_key, so.customer_id
    from int_order_person p
    join stg_shopify__orders so on so.order_id = p.order_id
    where p.person_key is not null and so.customer_id is not null
),

person_censoring as (
    select
        pc.person_key,
        max(case when c.number_of_orders > c.held_orders then 1 else 0 end) = 1 as counter_exceeds_held,
        min(c.created_date) as first_customer_created_date
    from person_customers pc
    join customers c on c.customer_id = pc.customer_id
    group by pc.person_key
),

person_first_landed as (
    select person_key, min(order_date) as first_landed_date from orders group by person_key
),

censoring as (
    select
        f.person_key,
        coalesce(pc.counter_exceeds_held, false)
            or coalesce(
                f.first_landed_date < w.data_start_date + interval '7 days'
                and pc.first_customer_created_date < w.data_start_date,
                false
            ) as is_left_censored
    from data_window w
    cross join person_first_landed f
    left join person_censoring pc on pc.person_key = f.person_key
),

-- Acquisition channel group of the first qualifying order (models.md 4.2): the journey's
-- first-visit UTMs, else the last visit's, the referrer's domain and source_name, matched against
-- map_acquisition_channel rules in priority order (an empty pattern matches anything; UTM
-- patterns are anchored '|'-alternatives, lower-case; referrer patterns match the domain's start).
first_orders as (
    select q.*, so.source_name,
        lower(coalesce(so.first_visit_utm_source, so.utm_source)) as acq_utm_source,
        lower(coalesce(so.first_visit_utm_medium, so.utm_medium)) as acq_utm_medium,
        lower(regexp_replace(so.referrer_url, '^[A-Za-z]+://(www\.)?([^/:?#]+).*$', '\2')) as acq_referrer_domain
    from qualifying q
    join stg_shopify__orders so on so.order_id = q.order_id
    where q.person_order_seq = 1
),

rules as (
    select
        cast(priority as int) as priority,
        nullif(trim(lower(utm_source_pattern)), '') as utm_source_pattern,
        nullif(trim(lower(utm_medium_pattern)), '') as utm_medium_pattern,
        nullif(trim(lower(referrer_domain_pattern)), '') as referrer_domain_pattern,
        nullif(trim(source_name), '') as source_name,
        channel_group
    from map_acquisition_channel
),

channel_matches as (
    select
        f.person_key,
        r.channel_group,
        row_number() over (partition by f.person_key order by r.priority, r.channel_group) as match_rank
    from rules r
    cross join first_orders f
    where (r.utm_source_pattern is null or regexp_like(f.acq_utm_source, '^(' || r.utm_source_pattern || ')$'))
      and (r.utm_medium_pattern is null or regexp_like(f.acq_utm_medium, '^(' || r.utm_medium_pattern || ')$'))
      and (r.referrer_domain_pattern is null
           or regexp_like(f.acq_referrer_domain, '^(' || r.referrer_domain_pattern || ')'))
      and (r.source_name is null or f.source_name = r.source_name)
),

persons as (
    select
        f.person_key,
        f.order_key as first_order_key,
        f.order_date as acquisition_date,
        c.is_left_censored,
        case when not c.is_left_censored then f.order_month end as acquisition_cohort_month,
        coalesce(m.channel_group, 'unknown') as acquisition_channel_group,
        f.offer_type as first_order_offer_type
    from first_orders f
    join censoring c on c.person_key = f.person_key
    left join channel_matches m on m.person_key = f.person_key and m.match_rank = 1
)

select
    q.order_key,
    q.order_id,
    q.person_key,
    q.person_order_seq,
    q.order_at,
    q.order_date,
    q.order_month,
    q.net_revenue,
    q.gross_margin,
    q.offer_type,
    p.first_order_key,
    p.acquisition_date,
    p.acquisition_cohort_month,
    p.acquisition_channel_group,
    p.first_order_offer_type,
    p.is_left_censored
from qualifying q
join persons p on p.person_key = q.person_key
order by q.person_key, q.person_order_seq
