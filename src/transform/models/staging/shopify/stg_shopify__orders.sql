-- One row per Shopify order, its latest landed copy (highest updatedAt); test orders are dropped
-- here (models.md 1.4). Amounts are shop money. Attribution columns come from the journey's last
-- visit (the session that placed the order, what REST's landing_site/referring_site report); the
-- first visit's UTMs are kept apart for acquisition. Local dates use the shop's timezone. The
-- fields the raw contract does not type (taxesIncluded, shipping lines, refunded shipping, tips)
-- are read from the kept copy's _raw.
with source as (
    select * from raw_shopify__orders
),

ranked as (
    select
        *,
        row_number() over (partition by id order by updated_at desc, _landed_at desc, _run_id desc) as copy_rank
    from source
),

latest as (
    select * from ranked where copy_rank = 1 and coalesce(test, false) = false
),

shop as (
    select iana_timezone
    from (
        select iana_timezone, row_number() over (order by _landed_at desc, _run_id desc) as shop_rank
        from raw_shopify__shop
    )
    where shop_rank = 1
),

-- Shipping after shipping discounts: the shipping lines' discounted prices (NULL when the copy
-- has no shipping lines selected; fct_orders then falls back to totalShippingPriceSet).
shipping as (
    select id, cast(sum(json_get_decimal(line['value'], '/discountedPriceSet/shopMoney/amount')) as decimal(18, 4))
        as discounted_shipping_amount
    from (select id, unnest(json_array_items(_raw, '/shippingLines')) as line from latest)
    group by id
),

final as (
    select
        o.legacy_resource_id as order_id,
        o.id as order_gid,
        o.name as order_name,
        cast(split_part(o.customer_id, '/', 5) as bigint) as customer_id,
        case when o.email is null or trim(o.email) = '' then null
             else encode(sha256(lower(trim(o.email))), 'hex') end as email_sha256,
        case when o.phone is null or trim(o.phone) = '' then null
             else encode(sha256(trim(o.phone)), 'hex') end as phone_sha256,
        o.created_at,
        o.processed_at,
        o.updated_at,
        coalesce(o.processed_at, o.created_at) as order_at,
        s.iana_timezone as shop_timezone,
        local_date(coalesce(o.processed_at, o.created_at), s.iana_timezone) as order_local_date,
        o.cancelled_at,
        lower(o.cancel_reason) as cancel_reason,
        lower(o.display_financial_status) as financial_status,
        o.source_name,
        o.tags,
        o.discount_codes,
        case when array_length(o.discount_codes) > 0 then array_to_string(o.discount_codes, ', ') end
            as discount_codes_joined,
        o.currency_code as shop_currency,
        o.subtotal_amount,
        o.total_discounts_amount,
        o.total_shipping_amount as shipping_amount,
        o.total_tax_amount as tax_amount,
        o.total_price_amount as total_amount,
        o.current_total_price_amount as current_total_amount,
        coalesce(o.total_refunded_amount, cast(0 as decimal(18, 4))) as total_refunded_amount,
        coalesce(json_get(o._raw, '/taxesIncluded') = 'true', false) as taxes_included,
        shipping.discounted_shipping_amount,
        coalesce(json_get_decimal(o._raw, '/totalRefundedShippingSet/shopMoney/amount'), cast(0 as decimal(18, 4)))
            as refunded_shipping_amount,
        coalesce(json_get_decimal(o._raw, '/totalTipReceivedSet/shopMoney/amount'), cast(0 as decimal(18, 4)))
            as tip_amount,
        o.presentment_currency_code as presentment_currency,
        o.total_price_presentment_amount as presentment_total_amount,
        o.journey_ready,
        o.last_visit_landing_page as landing_page,
        o.last_visit_referrer_url as referrer_url,
        o.last_visit_utm_source as utm_source,
        o.last_visit_utm_medium as utm_medium,
        o.last_visit_utm_campaign as utm_campaign,
        o.first_visit_utm_source,
        o.first_visit_utm_medium,
        o.first_visit_utm_campaign,
        o._landed_at
    from latest as o
    left join shop as s on true
    left join shipping on shipping.id = o.id
)

select * from final
