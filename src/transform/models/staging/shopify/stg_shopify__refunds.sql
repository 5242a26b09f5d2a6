-- One row per refund of the latest landed copy of each Shopify order (test orders dropped).
-- Refunds are read from the order's _raw (refunds[]); amounts are shop money; the local date uses
-- the shop's timezone (refunds are created days after the order, in the shop's calendar).
with source as (
    select id, legacy_resource_id, test, updated_at, _landed_at, _run_id, _raw from raw_shopify__orders
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

refunds as (
    select
        legacy_resource_id as order_id,
        _landed_at,
        unnest(json_array_items(_raw, '/refunds')) as item
    from latest
),

final as (
    select
        cast(split_part(json_get(r.item['value'], '/id'), '/', 5) as bigint) as refund_id,
        r.order_id,
        json_get_timestamp(r.item['value'], '/createdAt') as refunded_at,
        local_date(json_get_timestamp(r.item['value'], '/createdAt'), s.iana_timezone) as refund_local_date,
        coalesce(json_get_decimal(r.item['value'], '/totalRefundedSet/shopMoney/amount'), cast(0 as decimal(18, 4)))
            as total_refunded_amount,
        r._landed_at
    from refunds as r
    left join shop as s on true
)

select * from final
