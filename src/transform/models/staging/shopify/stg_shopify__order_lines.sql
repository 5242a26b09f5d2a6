-- One row per line item of the latest landed copy of each Shopify order (test orders dropped, as
-- in stg_shopify__orders). Lines are read from the order's _raw (lineItems.nodes); amounts are
-- shop money. tax_amount sums the line's tax lines; prices_include_tax is the order's
-- taxesIncluded (prices, discounts and refund subtotals then contain that tax).
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

lines as (
    select
        legacy_resource_id as order_id,
        coalesce(json_get(_raw, '/taxesIncluded') = 'true', false) as prices_include_tax,
        _landed_at,
        unnest(json_array_items(_raw, '/lineItems')) as item
    from latest
),

keyed as (
    select *, json_get(item['value'], '/id') as line_gid from lines
),

line_taxes as (
    select line_gid, cast(sum(json_get_decimal(tax['value'], '/priceSet/shopMoney/amount')) as decimal(18, 4))
        as tax_amount
    from (select line_gid, unnest(json_array_items(item['value'], '/taxLines')) as tax from keyed)
    group by line_gid
),

final as (
    select
        cast(split_part(json_get(item['value'], '/id'), '/', 5) as bigint) as order_line_id,
        order_id,
        item['position'] as line_position,
        cast(split_part(json_get(item['value'], '/product/id'), '/', 5) as bigint) as product_id,
        cast(split_part(json_get(item['value'], '/variant/id'), '/', 5) as bigint) as variant_id,
        json_get(item['value'], '/sku') as sku,
        json_get(item['value'], '/name') as line_name,
        json_get_int(item['value'], '/quantity') as quantity,
        json_get_int(item['value'], '/currentQuantity') as current_quantity,
        json_get_decimal(item['value'], '/originalUnitPriceSet/shopMoney/amount') as unit_price_amount,
        cast(
            json_get_decimal(item['value'], '/originalUnitPriceSet/shopMoney/amount')
            * json_get_int(item['value'], '/quantity') as decimal(18, 4)
        ) as gross_amount,
        coalesce(json_get_decimal(item['value'], '/totalDiscountSet/shopMoney/amount'), cast(0 as decimal(18, 4)))
            as line_discount_amount,
        json_get_decimal(item['value'], '/discountedTotalSet/shopMoney/amount') as discounted_total_amount,
        coalesce(json_get(item['value'], '/isGiftCard') = 'true', false) as is_gift_card,
        coalesce(t.tax_amount, cast(0 as decimal(18, 4))) as tax_amount,
        prices_include_tax,
        _landed_at
    -- The narrow side on the left: DataFusion builds its hash table from the left input when it
    -- has no statistics to choose by, and the lines carry their JSON.
    from line_taxes as t
    right join keyed as k on t.line_gid = k.line_gid
)

select * from final
