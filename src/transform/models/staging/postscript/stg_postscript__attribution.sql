-- One row per order credit in Postscript's warehouse push (fct_attribution): Postscript's own
-- attribution, kept beside our last click and modeled lift. Credits are corrected after the
-- order (refunds, late matches): each attribution_id keeps its latest `_updated_at`.
select
    attribution_id,
    message_id,
    trim(order_id) as order_id,
    cast(cast(amount_in_cents as decimal(20, 0)) / 100 as decimal(18, 4)) as revenue,
    lower(trim(action_type)) as action_type,
    coalesce(coupon_used, false) as coupon_used,
    shop_id,
    subscriber_id,
    arrow_cast(customer_id, 'Utf8') as shopify_customer_id,
    minutes_from_action,
    order_created_at,
    _updated_at,
    _landed_at
from (
    select
        *,
        row_number() over (partition by attribution_id order by _updated_at desc, _landed_at desc, row_number desc)
            as copy_rank
    from raw_postscript__warehouse_fct_attribution
)
where copy_rank = 1
