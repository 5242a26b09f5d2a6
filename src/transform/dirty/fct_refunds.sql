-- Dirty refund months of fct_refunds: the months of every refund (new or previous) of an order in
-- the orders dirty set's changed orders, by the same watermark.
with watermark as (
    select max(updated_at) - interval '1 hour' as w from prev_fct_orders
),
changed as (
    select o.order_id
    from stg_shopify__orders as o
    left join prev_fct_orders as p on p.order_id = cast(o.order_id as varchar)
    cross join watermark
    where p.order_id is null or o.updated_at > watermark.w
    union
    select cast(p.order_id as bigint) from prev_fct_orders as p
    left join stg_shopify__orders as o on cast(o.order_id as varchar) = p.order_id
    where o.order_id is null
)
select r.refund_month from prev_fct_refunds as r where cast(r.order_id as bigint) in (select order_id from changed)
union
select cast(date_trunc('month', local_date(s.refunded_at, c.reporting_tz)) as date)
from stg_shopify__refunds as s
join int_order_context as c on c.order_id = s.order_id
where s.order_id in (select order_id from changed)
