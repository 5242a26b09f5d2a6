-- One row per Shopify refund line item, plus one row per refund for the part of it that is not
-- a line subtotal (refunded tax, shipping, adjustments): the finance view by refund date
-- (models.md 4.3). Amounts use the order date's rate (models.md 1.2: refunds applied back to an
-- order keep its rate), so the horizon-restating rows reconcile with fct_orders.returns.
with context as (
    select * from int_order_context
),

refund_lines as (
    select * from stg_shopify__refund_lines
),

refunds as (
    select * from stg_shopify__refunds
),

line_sums as (
    select refund_id, sum(subtotal_amount) as lines_amount
    from refund_lines
    group by refund_id
),

line_rows as (
    select
        'line' as refund_row_type,
        refund_id,
        refund_line_position,
        refund_line_id,
        order_id,
        order_line_id,
        refunded_at,
        quantity,
        restock_type,
        subtotal_amount as returns_amount,
        cast(0 as decimal(18, 4)) as other_amount
    from refund_lines
),

non_line_rows as (
    select
        'non_line' as refund_row_type,
        r.refund_id,
        cast(null as bigint) as refund_line_position,
        cast(null as bigint) as refund_line_id,
        r.order_id,
        cast(null as bigint) as order_line_id,
        r.refunded_at,
        cast(0 as bigint) as quantity,
        arrow_cast(null, 'Utf8') as restock_type,
        cast(0 as decimal(18, 4)) as returns_amount,
        cast(r.total_refunded_amount - coalesce(s.lines_amount, 0) as decimal(18, 4)) as other_amount
    from refunds as r
    left join line_sums as s on s.refund_id = r.refund_id
    where r.total_refunded_amount - coalesce(s.lines_amount, 0) <> 0 or s.refund_id is null
),

all_rows as (
    select * from line_rows
    union all
    select * from non_line_rows
),

dated as (
    select
        a.*,
        c.order_key,
        c.shop_id,
        c.order_at,
        c.order_date,
        c.shop_currency,
        c.reporting_currency,
        c.fx_rate,
        cast(c.fx_rate as decimal(18, 8)) as fx,
        c.refund_restatement_days,
        local_date(a.refunded_at, c.reporting_tz) as refund_date
    from all_rows as a
    join context as c on c.order_id = a.order_id
),

final as (
    select
        arrow_cast(
            md5(concat(
                'shopify|', shop_id, '|', arrow_cast(refund_id, 'Utf8'), '|',
                coalesce(arrow_cast(refund_line_position, 'Utf8'), 'non_line')
            )),
            'Utf8'
        ) as refund_line_key,
        arrow_cast(md5(concat('shopify|', shop_id, '|', arrow_cast(refund_id, 'Utf8'))), 'Utf8') as refund_key,
        refund_row_type,
        shop_id,
        arrow_cast(refund_id, 'Utf8') as refund_id,
        arrow_cast(refund_line_id, 'Utf8') as refund_line_id,
        refund_line_position,
        order_key,
        arrow_cast(order_id, 'Utf8') as order_id,
        case
            when order_line_id is not null
                then arrow_cast(md5(concat('shopify|', shop_id, '|', arrow_cast(order_line_id, 'Utf8'))), 'Utf8')
        end as order_line_key,
        arrow_cast(order_line_id, 'Utf8') as order_line_id,
        refunded_at,
        refund_date,
        cast(date_trunc('month', refund_date) as date) as refund_month,
        order_at,
        order_date,
        cast(refund_date - order_date as int) as days_since_order,
        coalesce(refund_date - order_date <= refund_restatement_days, true) as is_within_restatement_horizon,
        quantity,
        restock_type,
        coalesce(restock_type in ('return', 'cancel', 'legacy_restock'), false) as is_restocked,
        shop_currency,
        reporting_currency,
        fx_rate,
        cast(returns_amount * fx as decimal(18, 4)) as returns,
        cast(other_amount * fx as decimal(18, 4)) as other_refunded,
        cast(returns_amount * fx as decimal(18, 4)) + cast(other_amount * fx as decimal(18, 4)) as refunded_amount,
        '1.0.0' as model_version
    from dated
)

select
    refund_line_key,
    refund_key,
    refund_row_type,
    shop_id,
    refund_id,
    refund_line_id,
    refund_line_position,
    order_key,
    order_id,
    order_line_key,
    order_line_id,
    refunded_at,
    refund_date,
    refund_month,
    order_at,
    order_date,
    days_since_order,
    is_within_restatement_horizon,
    quantity,
    restock_type,
    is_restocked,
    shop_currency,
    reporting_currency,
    fx_rate,
    returns,
    other_refunded,
    cast(refunded_amount as decimal(18, 4)) as refunded_amount,
    model_version
from final
order by refunded_at, refund_id, refund_row_type, refund_line_position
