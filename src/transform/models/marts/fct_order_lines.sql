-- One row per line item of a Shopify order (test orders dropped in staging): quantities, money
-- in the reporting currency and the unit cost used for COGS (models.md 4.3). fct_orders sums
-- these lines.
--
-- Money: shop money converted with the order's fx_rate (int_order_context), line by line, so the
-- order sums are exact sums of the lines. Voided orders carry 0 in every money column; gift-card
-- lines carry 0 revenue and no COGS (a gift card is a liability, not a sale); tax-inclusive
-- prices are taken net of their tax lines.
-- Returns: refund line subtotals of refunds whose local date is within refund_restatement_days of
-- the order date (models.md 1.4); later refunds only reach fct_refunds.
-- Unit cost (models.md 4.3): the line's inventory item (through its variant) and its
-- int_unit_cost_history period valid at the order's business time (unit_cost_snapshot); an order
-- placed before the item's first snapshot takes the earliest known cost
-- (unit_cost_current_backfill); without any cost, COGS = the product type's default COGS % of the
-- line's net revenue from cfg_cost_assumptions (assumed_pct).
with orders as (
    select * from int_order_context
),

lines as (
    select * from stg_shopify__order_lines
),

-- Refunds inside the restatement horizon, per line; restocked units (returned or cancelled
-- before fulfilment) take their cost back out of COGS, units refunded without a return do not.
refunded as (
    select
        r.order_line_id,
        sum(r.quantity) as refunded_quantity,
        sum(case when r.restock_type in ('return', 'cancel', 'legacy_restock') then r.quantity else 0 end)
            as restocked_quantity,
        sum(r.subtotal_amount) as returns_amount
    from stg_shopify__refund_lines as r
    join orders as o on o.order_id = r.order_id
    where coalesce(local_date(r.refunded_at, o.reporting_tz) - o.order_date <= o.refund_restatement_days, true)
    group by r.order_line_id
),

variant_items as (
    select variant_id, min(inventory_item_id) as inventory_item_id
    from stg_shopify__variants
    where inventory_item_id is not null
    group by variant_id
),

-- Variants gone from the catalogue still have their item's snapshots.
history_items as (
    select variant_id, min(inventory_item_id) as inventory_item_id
    from int_unit_cost_history
    where variant_id is not null
    group by variant_id
),

products as (
    select product_id, product_type from stg_shopify__products
),

assumptions as (
    select lower(trim(key)) as key, cast(trim(value) as decimal(18, 8)) as pct
    from cfg_cost_assumptions
    where value is not null
        and (lower(trim(key)) = 'default_cogs_pct' or lower(trim(key)) like 'default_cogs_pct:%')
),

line_base as (
    select
        l.order_line_id,
        l.order_id,
        l.line_position,
        l.product_id,
        l.variant_id,
        coalesce(vi.inventory_item_id, hi.inventory_item_id) as inventory_item_id,
        l.sku,
        l.line_name,
        p.product_type,
        l.quantity,
        l.unit_price_amount,
        l.gross_amount,
        l.line_discount_amount,
        coalesce(rf.refunded_quantity, 0) as refunded_quantity,
        least(coalesce(rf.restocked_quantity, 0), l.quantity) as restocked_quantity,
        coalesce(rf.returns_amount, cast(0 as decimal(18, 4))) as returns_amount,
        o.order_key,
        o.shop_id,
        o.order_at,
        o.order_date,
        o.order_month,
        o.is_voided,
        o.shop_currency,
        o.reporting_currency,
        o.fx_rate,
        cast(o.fx_rate as decimal(18, 8)) as fx,
        l.is_gift_card,
        l.prices_include_tax,
        l.tax_amount,
        -- Tax-inclusive prices: price, discount and refund subtotal each lose the line's tax share
        -- tax / (gross - discount), so the net is gross - discount - tax (no VAT in revenue).
        cast(o.fx_rate as decimal(18, 8)) * case
            when l.prices_include_tax and l.gross_amount - l.line_discount_amount > 0
                then cast(1 - l.tax_amount / (l.gross_amount - l.line_discount_amount) as decimal(18, 8))
            else cast(1 as decimal(18, 8))
        end as fx_net_of_tax
    from lines as l
    join orders as o on o.order_id = l.order_id
    left join refunded as rf on rf.order_line_id = l.order_line_id
    left join variant_items as vi on vi.variant_id = l.variant_id
    left join history_items as hi on hi.variant_id = l.variant_id
    left join products as p on p.product_id = l.product_id
),

cost_candidates as (
    select
        b.order_line_id,
        h.unit_cost_amount,
        h.valid_from,
        case when h.valid_from <= b.order_at then 'unit_cost_snapshot' else 'unit_cost_current_backfill' end
            as unit_cost_source,
        row_number() over (
            partition by b.order_line_id
            order by
                case when h.valid_from <= b.order_at then 0 else 1 end,
                case when h.valid_from <= b.order_at then h.valid_from end desc nulls last,
                h.valid_from
        ) as cost_rank
    from line_base as b
    join int_unit_cost_history as h on h.inventory_item_id = b.inventory_item_id
),

costs as (
    select order_line_id, unit_cost_amount, valid_from, unit_cost_source
    from cost_candidates
    where cost_rank = 1
),

converted as (
    select
        b.*,
        c.unit_cost_source as snapshot_source,
        c.valid_from as unit_cost_valid_from,
        cast(c.unit_cost_amount * b.fx as decimal(18, 4)) as unit_cost,
        coalesce(tp.pct, dp.pct) as assumed_pct,
        cast(b.unit_price_amount * b.fx as decimal(18, 4)) as unit_price,
        case when b.is_voided or b.is_gift_card then cast(0 as decimal(18, 4))
             else cast(b.gross_amount * cast(b.fx_net_of_tax as decimal(18, 8)) as decimal(18, 4)) end as gross_sales,
        case when b.is_voided or b.is_gift_card then cast(0 as decimal(18, 4))
             else cast(b.line_discount_amount * cast(b.fx_net_of_tax as decimal(18, 8)) as decimal(18, 4)) end
            as discounts,
        case when b.is_voided or b.is_gift_card then cast(0 as decimal(18, 4))
             else cast(b.returns_amount * cast(b.fx_net_of_tax as decimal(18, 8)) as decimal(18, 4)) end as returns,
        case when b.is_voided or b.is_gift_card then cast(0 as bigint) else b.quantity - b.restocked_quantity end
            as cogs_quantity,
        case when b.is_voided then cast(0 as decimal(18, 4))
             else cast(b.tax_amount * b.fx as decimal(18, 4)) end as tax
    from line_base as b
    left join costs as c on c.order_line_id = b.order_line_id
    left join assumptions as tp on tp.key = concat('default_cogs_pct:', lower(trim(b.product_type)))
    left join assumptions as dp on dp.key = 'default_cogs_pct'
),

netted as (
    select
        *,
        cast(gross_sales - discounts - returns as decimal(18, 4)) as net_revenue
    from converted
),

costed as (
    select
        *,
        coalesce(snapshot_source, 'assumed_pct') as unit_cost_source,
        case
            when snapshot_source is not null then cast(cogs_quantity * unit_cost as decimal(18, 4))
            else cast(net_revenue * assumed_pct as decimal(18, 4))
        end as cogs
    from netted
),

final as (
    select
        arrow_cast(md5(concat('shopify|', shop_id, '|', arrow_cast(order_line_id, 'Utf8'))), 'Utf8') as order_line_key,
        order_key,
        shop_id,
        arrow_cast(order_id, 'Utf8') as order_id,
        arrow_cast(order_line_id, 'Utf8') as order_line_id,
        line_position,
        arrow_cast(product_id, 'Utf8') as product_id,
        arrow_cast(variant_id, 'Utf8') as variant_id,
        arrow_cast(inventory_item_id, 'Utf8') as inventory_item_id,
        sku,
        line_name,
        product_type,
        order_at,
        order_date,
        order_month,
        is_voided,
        quantity,
        refunded_quantity,
        restocked_quantity,
        cogs_quantity,
        shop_currency,
        reporting_currency,
        fx_rate,
        unit_price,
        gross_sales,
        discounts,
        returns,
        net_revenue,
        case when snapshot_source is not null then unit_cost end as unit_cost,
        unit_cost_source,
        unit_cost_valid_from,
        case when snapshot_source is null then cast(assumed_pct as double) end as assumed_cogs_pct,
        cogs,
        cast(net_revenue - cogs as decimal(18, 4)) as gross_margin,
        is_gift_card,
        prices_include_tax,
        tax,
        '1.0.0' as model_version
    from costed
)

select * from final
order by order_id, line_position, order_line_id
