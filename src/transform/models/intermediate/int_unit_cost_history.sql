-- One row per Shopify inventory item per period of constant unit cost (SCD-2, models.md 4.3),
-- built from the daily snapshots of stg_shopify__inventory_item_costs. Shopify only exposes the
-- current cost, so a period starts at the first snapshot that saw the cost and ends where the
-- next different cost was first seen. Snapshots without a cost (never entered, or removed) are
-- skipped: the last known cost holds across them.
with observations as (
    select
        inventory_item_id,
        snapshot_at,
        unit_cost_amount,
        upper(unit_cost_currency) as unit_cost_currency
    from stg_shopify__inventory_item_costs
    where unit_cost_amount is not null
),

flagged as (
    select
        *,
        case
            when lag(unit_cost_amount) over (partition by inventory_item_id order by snapshot_at) = unit_cost_amount
                and coalesce(lag(unit_cost_currency) over (partition by inventory_item_id order by snapshot_at), '')
                    = coalesce(unit_cost_currency, '')
                then 0
            else 1
        end as starts_period
    from observations
),

numbered as (
    select
        *,
        sum(starts_period) over (
            partition by inventory_item_id order by snapshot_at rows between unbounded preceding and current row
        ) as period_number
    from flagged
),

periods as (
    select
        inventory_item_id,
        period_number,
        min(snapshot_at) as valid_from,
        max(snapshot_at) as last_observed_at,
        count(*) as observations,
        max(unit_cost_amount) as unit_cost_amount,
        max(unit_cost_currency) as unit_cost_currency
    from numbered
    group by inventory_item_id, period_number
),

-- The item's variant, product and SKU as of its latest snapshot.
items as (
    select inventory_item_id, variant_id, product_id, sku
    from (
        select
            inventory_item_id,
            variant_id,
            product_id,
            sku,
            row_number() over (partition by inventory_item_id order by snapshot_at desc) as item_rank
        from stg_shopify__inventory_item_costs
    )
    where item_rank = 1
),

final as (
    select
        p.inventory_item_id,
        p.valid_from,
        lead(p.valid_from) over (partition by p.inventory_item_id order by p.valid_from) as valid_to,
        i.variant_id,
        i.product_id,
        i.sku,
        cast(p.unit_cost_amount as decimal(18, 4)) as unit_cost_amount,
        p.unit_cost_currency,
        p.last_observed_at,
        p.observations,
        p.period_number
    from periods as p
    left join items as i on i.inventory_item_id = p.inventory_item_id
)

select
    inventory_item_id,
    valid_from,
    valid_to,
    valid_to is null as is_latest,
    variant_id,
    product_id,
    sku,
    unit_cost_amount,
    unit_cost_currency,
    last_observed_at,
    observations,
    period_number
from final
order by inventory_item_id, valid_from
