-- The daily series fct_anomalies monitors (models.md 4.14): one row per series and local date
-- with data. A series is (metric, platform, channel, flow_key); shop-level and platform-level
-- series carry '' where a dimension does not apply, so the key never holds NULL.
--
-- Counts (unsubscribes, spam_complaints, bounces, flow_sends, shop_orders) have no denominator:
-- days without a row are zero days, filled in by fct_anomalies. Rates carry their denominator
-- (deliveries, treated entries, clicks, checkouts started): a day without one has no value.
-- shop_net_revenue is qualifying orders' net revenue in the reporting currency, with the day's
-- order count as its denominator (fct_anomalies scales revenue's noise floor by it).
--
-- Left out: per-flow unsubscribes (Klaviyo's unsubscribe events do not name the flow that
-- prompted them) and status changes (flow_paused needs a status history the flows API does not
-- keep; int_flows holds the latest status only).
-- The reporting timezone comes from int_reporting_timezone, not int_order_context, which has no
-- row when a job lands no orders (a Klaviyo-only job still has checkouts started to date).
with reporting as (
    select max(reporting_tz) as reporting_tz from int_reporting_timezone
),

live_flows as (
    select flow_key, platform
    from int_flows
    where flow_status = 'live' and not is_archived
),

platform_daily as (
    select
        event_date,
        platform,
        channel,
        sum(case when is_send then 1 else 0 end) as deliveries,
        sum(case when event_type = 'unsubscribed' then 1 else 0 end) as unsubscribes,
        sum(case when event_type = 'spam_complaint' then 1 else 0 end) as spam_complaints,
        sum(case when event_type = 'bounced' then 1 else 0 end) as bounces
    from fct_message_events
    where event_date is not null and message_kind <> 'transactional'
    group by 1, 2, 3
),

flow_daily as (
    select
        e.event_date,
        e.platform,
        e.flow_key,
        sum(case when e.is_send then 1 else 0 end) as sends,
        sum(case when e.event_type = 'clicked' and not coalesce(e.is_bot_click, false) then 1 else 0 end) as clicks
    from live_flows as f
    join fct_message_events as e on f.flow_key = e.flow_key
    where e.event_date is not null
    group by 1, 2, 3
),

flow_orders as (
    select o.order_date, o.lc_subject_key as flow_key, count(*) as orders
    from int_order_last_click as o
    where o.lc_message_kind = 'flow' and o.order_date is not null
    group by 1, 2
),

coverage as (
    select
        e.entry_date,
        f.platform,
        e.flow_key,
        count(*) as treated,
        sum(case when e.first_message_delivered_at is not null then 1 else 0 end) as covered
    from live_flows as f
    join int_flow_entries as e on f.flow_key = e.flow_key
    where e.arm = 'T' and e.flow_live
    group by 1, 2, 3
),

shop_daily as (
    select order_date, count(*) as orders, sum(net_revenue) as net_revenue
    from fct_orders
    where is_qualifying and order_date is not null
    group by 1
),

checkouts as (
    select local_date(e.occurred_at, r.reporting_tz) as checkout_date, count(*) as checkouts
    from stg_klaviyo__metrics as m
    join stg_klaviyo__events as e on m.metric_id = e.metric_id
    cross join reporting as r
    where m.metric_name = 'Started Checkout' and r.reporting_tz is not null
    group by 1
),

series as (
    select 'unsubscribes' as metric, platform, channel, '' as flow_key, event_date as series_date,
           cast(unsubscribes as double) as observed, cast(null as bigint) as denominator
    from platform_daily
    union all
    select 'unsub_rate', platform, channel, '', event_date,
           cast(unsubscribes as double) / deliveries, cast(deliveries as bigint)
    from platform_daily
    where deliveries > 0
    union all
    select 'spam_complaints', platform, channel, '', event_date, cast(spam_complaints as double), cast(null as bigint)
    from platform_daily
    where channel = 'email'
    union all
    select 'bounces', platform, channel, '', event_date, cast(bounces as double), cast(null as bigint)
    from platform_daily
    where channel = 'email'
    union all
    select 'flow_sends', platform, '', flow_key, event_date, cast(sends as double), cast(null as bigint)
    from flow_daily
    union all
    select 'flow_click_to_order_rate', d.platform, '', d.flow_key, d.event_date,
           cast(coalesce(o.orders, 0) as double) / d.clicks, cast(d.clicks as bigint)
    from flow_orders as o
    right join flow_daily as d on o.flow_key = d.flow_key and o.order_date = d.event_date
    where d.clicks > 0
    union all
    select 'coverage_ratio', platform, '', flow_key, entry_date,
           cast(covered as double) / treated, cast(treated as bigint)
    from coverage
    union all
    select 'shop_orders', 'shopify', '', '', order_date, cast(orders as double), cast(null as bigint)
    from shop_daily
    union all
    select 'shop_net_revenue', 'shopify', '', '', order_date, cast(net_revenue as double), cast(orders as bigint)
    from shop_daily
    union all
    select 'checkout_conversion', 'shopify', '', '', c.checkout_date,
           cast(coalesce(s.orders, 0) as double) / c.checkouts, cast(c.checkouts as bigint)
    from shop_daily as s
    right join checkouts as c on s.order_date = c.checkout_date
    where c.checkouts > 0
)

select
    arrow_cast(md5(metric || '|' || platform || '|' || channel || '|' || flow_key), 'Utf8') as series_key,
    metric,
    platform,
    channel,
    flow_key,
    series_date,
    observed,
    denominator
from series
order by series_key, series_date
