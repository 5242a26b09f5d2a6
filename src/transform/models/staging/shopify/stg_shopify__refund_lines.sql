-- One row per refund line item (refund x position) of the latest landed copy of each Shopify
-- order (test orders dropped); read from _raw (refunds[].refundLineItems.nodes). Amounts are shop
-- money.
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

refunds as (
    select
        legacy_resource_id as order_id,
        _landed_at,
        unnest(json_array_items(_raw, '/refunds')) as refund
    from latest
),

refund_lines as (
    select
        order_id,
        _landed_at,
        cast(split_part(json_get(refund['value'], '/id'), '/', 5) as bigint) as refund_id,
        json_get_timestamp(refund['value'], '/createdAt') as refunded_at,
        unnest(json_array_items(refund['value'], '/refundLineItems')) as item
    from refunds
),

final as (
    select
        refund_id,
        item['position'] as refund_line_position,
        cast(split_part(json_get(item['value'], '/id'), '/', 5) as bigint) as refund_line_id,
        order_id,
        cast(split_part(json_get(item['value'], '/lineItem/id'), '/', 5) as bigint) as order_line_id,
        refunded_at,
        json_get_int(item['value'], '/quantity') as quantity,
        lower(json_get(item['value'], '/restockType')) as restock_type,
        coalesce(json_get_decimal(item['value'], '/subtotalSet/shopMoney/amount'), cast(0 as decimal(18, 4)))
            as subtotal_amount,
        _landed_at
    from refund_lines
)

select * from final
