-- One row per Shopify order (test orders already dropped in staging): what every order mart
-- shares, so fct_order_lines, fct_orders and fct_refunds agree on it. Keys (models.md 1.6), the
-- reporting calendar (1.1), the shop -> reporting currency rate of the order's local date (1.2)
-- and the per-order settings of the qualifying rule (1.4) and the refund horizon (1.4, 5).
--
-- reporting_tz / reporting_currency: the `reporting_tz` / `reporting_currency` rows of cfg_settings
-- (the seed's own, else the job file's, added when seeds load); the latest shop record's timezone
-- and currency when neither exists (models.md 1.1, 1.2). Without any the dates stay NULL.
with settings as (
    select
        max(case when key = 'reporting_tz' then trim(value) end) as reporting_tz,
        max(case when key = 'reporting_currency' then upper(trim(value)) end) as reporting_currency,
        max(case when key = 'refund_restatement_days' then cast(trim(value) as bigint) end)
            as refund_restatement_days,
        max(case when key = 'excluded_source_names' then lower(value) end) as excluded_source_names,
        max(case when key = 'subscription_order_tags' then lower(value) end) as subscription_order_tags
    from cfg_settings
),

shop as (
    select shop_id, iana_timezone, shop_currency
    from (
        select
            shop_id,
            iana_timezone,
            shop_currency,
            row_number() over (order by _landed_at desc, shop_id) as shop_rank
        from stg_shopify__shop
    )
    where shop_rank = 1
),

excluded_sources as (
    select distinct trim(name) as source_name
    from (
        select unnest(string_to_array(coalesce(excluded_source_names, ''), '|')) as name from settings
    )
    where trim(name) <> ''
),

subscription_tags as (
    select distinct trim(tag) as tag
    from (
        select unnest(string_to_array(coalesce(subscription_order_tags, ''), '|')) as tag from settings
    )
    where trim(tag) <> ''
),

order_tags as (
    select distinct order_id, lower(trim(tag)) as tag
    from (select order_id, unnest(tags) as tag from stg_shopify__orders)
),

subscription_orders as (
    select distinct t.order_id
    from order_tags as t
    join subscription_tags as s on s.tag = t.tag
),

orders as (
    select
        o.order_id,
        o.order_at,
        o.source_name,
        o.financial_status,
        o.cancelled_at,
        s.shop_id,
        coalesce(st.reporting_tz, s.iana_timezone) as reporting_tz,
        case
            when st.reporting_tz is not null then 'cfg_settings'
            when s.iana_timezone is not null then 'shop'
        end as reporting_tz_source,
        upper(coalesce(o.shop_currency, s.shop_currency)) as shop_currency,
        coalesce(st.reporting_currency, upper(s.shop_currency), upper(o.shop_currency)) as reporting_currency,
        coalesce(st.refund_restatement_days, 120) as refund_restatement_days
    from settings as st
    cross join stg_shopify__orders as o
    left join shop as s on true
),

dated as (
    select
        *,
        local_date(order_at, reporting_tz) as order_date
    from orders
),

-- dim_fx_rate holds from -> to rates; the inverse of a listed pair is used when only the other
-- direction is listed (a direct rate of the same day wins).
rates as (
    select
        cast(rate_date as date) as rate_date,
        upper(trim(from_currency)) as from_currency,
        upper(trim(to_currency)) as to_currency,
        cast(rate as double) as rate,
        0 as is_inverse
    from dim_fx_rate
    where rate is not null
    union all
    select
        cast(rate_date as date) as rate_date,
        upper(trim(to_currency)) as from_currency,
        upper(trim(from_currency)) as to_currency,
        1.0 / cast(rate as double) as rate,
        1 as is_inverse
    from dim_fx_rate
    where cast(rate as double) > 0
),

needed as (
    select distinct order_date, shop_currency, reporting_currency
    from dated
    where shop_currency <> reporting_currency and order_date is not null
),

matched as (
    select order_date, shop_currency, reporting_currency, rate_date, rate
    from (
        select
            n.order_date,
            n.shop_currency,
            n.reporting_currency,
            r.rate_date,
            r.rate,
            row_number() over (
                partition by n.order_date, n.shop_currency, n.reporting_currency
                order by r.rate_date desc, r.is_inverse, r.rate
            ) as rate_rank
        from needed as n
        join rates as r
            on r.from_currency = n.shop_currency
            and r.to_currency = n.reporting_currency
            and r.rate_date <= n.order_date
    )
    where rate_rank = 1
),

final as (
    select
        d.order_id,
        arrow_cast(
            md5(concat('shopify|', arrow_cast(d.shop_id, 'Utf8'), '|', arrow_cast(d.order_id, 'Utf8'))), 'Utf8'
        ) as order_key,
        arrow_cast(d.shop_id, 'Utf8') as shop_id,
        d.order_at,
        d.reporting_tz,
        d.reporting_tz_source,
        d.order_date,
        cast(date_trunc('month', d.order_date) as date) as order_month,
        d.shop_currency,
        d.reporting_currency,
        case when d.shop_currency = d.reporting_currency then 1.0 else m.rate end as fx_rate,
        m.rate_date as fx_rate_date,
        coalesce(d.order_date - m.rate_date > 7, false) as fx_rate_is_stale,
        d.cancelled_at is not null as is_cancelled,
        coalesce(d.financial_status = 'voided', false) as is_voided,
        e.source_name is not null
            or coalesce(
                d.source_name = 'shopify_draft_order'
                and d.financial_status not in ('paid', 'partially_refunded', 'refunded'),
                false
            ) as is_excluded_source,
        coalesce(lower(d.source_name) like 'subscription_contract%', false)
            or so.order_id is not null as is_subscription_order,
        d.refund_restatement_days
    from dated as d
    left join matched as m
        on m.order_date = d.order_date
        and m.shop_currency = d.shop_currency
        and m.reporting_currency = d.reporting_currency
    left join excluded_sources as e on e.source_name = lower(d.source_name)
    left join subscription_orders as so on so.order_id = d.order_id
)

select * from final
order by order_id
