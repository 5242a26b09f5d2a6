-- One row per discount application of the latest landed copy of each Shopify order (test orders
-- dropped), in Shopify's order: the position is the application's index, which line discount
-- allocations refer to. Read from _raw (discountApplications.nodes).
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

applications as (
    select
        legacy_resource_id as order_id,
        _landed_at,
        unnest(json_array_items(_raw, '/discountApplications')) as item
    from latest
),

fields as (
    select
        order_id,
        item['position'] as application_index,
        json_get(item['value'], '/__typename') as typename,
        json_get(item['value'], '/code') as discount_code,
        json_get(item['value'], '/title') as title,
        lower(json_get(item['value'], '/allocationMethod')) as allocation_method,
        lower(json_get(item['value'], '/targetType')) as target_type,
        lower(json_get(item['value'], '/targetSelection')) as target_selection,
        json_get(item['value'], '/value/__typename') as value_typename,
        json_get_decimal(item['value'], '/value/amount') as value_amount,
        json_get(item['value'], '/value/currencyCode') as value_currency,
        cast(json_get(item['value'], '/value/percentage') as double) as value_percentage,
        _landed_at
    from applications
),

final as (
    select
        order_id,
        application_index,
        case typename
            when 'DiscountCodeApplication' then 'discount_code'
            when 'AutomaticDiscountApplication' then 'automatic'
            when 'ManualDiscountApplication' then 'manual'
            when 'ScriptDiscountApplication' then 'script'
            else case when discount_code is not null then 'discount_code' end
        end as application_type,
        discount_code,
        title,
        coalesce(discount_code, title) as discount_label,
        allocation_method,
        target_type,
        target_selection,
        case
            when value_typename = 'PricingPercentageValue' or value_percentage is not null then 'percentage'
            when value_typename = 'MoneyV2' or value_amount is not null then 'fixed_amount'
        end as value_type,
        value_amount,
        value_currency,
        value_percentage,
        _landed_at
    from fields
)

select * from final
