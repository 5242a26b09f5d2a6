-- One row per Shopify product, its latest landed copy (highest updatedAt); variants are in
-- stg_shopify__variants.
with source as (
    select * from raw_shopify__products
),

ranked as (
    select
        *,
        row_number() over (partition by id order by updated_at desc, _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        legacy_resource_id as product_id,
        id as product_gid,
        title as product_title,
        handle,
        product_type,
        vendor,
        lower(status) as product_status,
        tags,
        created_at,
        updated_at,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
