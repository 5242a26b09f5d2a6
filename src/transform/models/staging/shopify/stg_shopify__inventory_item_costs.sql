-- One row per Shopify inventory item per landed day (UTC date of landing): the cost snapshot of
-- that day, from the last copy landed that day. unitCost is the current cost only, so this is
-- the observation history int_unit_cost_history builds its SCD-2 from (models.md 4.3); a day
-- with no copy landed has no row and the previous cost holds.
with source as (
    select *, cast(_landed_at as date) as snapshot_date from raw_shopify__inventory_items
),

ranked as (
    select
        *,
        row_number() over (
            partition by id, snapshot_date order by _landed_at desc, updated_at desc, _run_id desc
        ) as copy_rank
    from source
),

final as (
    select
        legacy_resource_id as inventory_item_id,
        snapshot_date,
        _landed_at as snapshot_at,
        cast(split_part(variant_id, '/', 5) as bigint) as variant_id,
        cast(split_part(product_id, '/', 5) as bigint) as product_id,
        sku,
        tracked,
        unit_cost_amount,
        unit_cost_currency,
        updated_at as item_updated_at
    from ranked
    where copy_rank = 1
)

select * from final
