-- One row per Shopify product variant, as listed by the latest landed copy of its product (a
-- variant deleted since is gone; order lines keep its id). Read from _raw (variants.nodes).
with source as (
    select id, legacy_resource_id, updated_at, _landed_at, _run_id, _raw from raw_shopify__products
),

ranked as (
    select
        *,
        row_number() over (partition by id order by updated_at desc, _landed_at desc, _run_id desc) as copy_rank
    from source
),

variants as (
    select
        legacy_resource_id as product_id,
        _landed_at,
        unnest(json_array_items(_raw, '/variants')) as item
    from ranked
    where copy_rank = 1
),

final as (
    select
        coalesce(
            json_get_int(item['value'], '/legacyResourceId'),
            cast(split_part(json_get(item['value'], '/id'), '/', 5) as bigint)
        ) as variant_id,
        json_get(item['value'], '/id') as variant_gid,
        product_id,
        item['position'] as variant_position,
        json_get(item['value'], '/title') as variant_title,
        json_get(item['value'], '/sku') as sku,
        json_get_decimal(item['value'], '/price') as price_amount,
        cast(split_part(json_get(item['value'], '/inventoryItem/id'), '/', 5) as bigint) as inventory_item_id,
        json_get_timestamp(item['value'], '/createdAt') as created_at,
        json_get_timestamp(item['value'], '/updatedAt') as updated_at,
        _landed_at
    from variants
)

select * from final
