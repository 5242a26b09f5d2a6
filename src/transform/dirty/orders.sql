-- Dirty order months of fct_orders and fct_order_lines (models.md 5): orders updated past the
-- previous version's watermark (less an hour of overlap), new and deleted orders, every order of
-- the persons those orders belong to (their customer_order_seq can move), orders of persons whose
-- key moved, and orders with a line whose inventory item's cost history changed (the cost
-- backfill reaches back in time; lines of orders not in the previous version are changed orders).
with watermark as (
    select max(updated_at) - interval '1 hour' as w from prev_fct_orders
),
changed as (
    select c.order_id, c.order_month
    from int_order_context as c
    join stg_shopify__orders as o on o.order_id = c.order_id
    left join prev_fct_orders as p on p.order_id = cast(c.order_id as varchar)
    cross join watermark
    where p.order_id is null or o.updated_at > watermark.w
    union all
    select cast(p.order_id as bigint), p.order_month
    from prev_fct_orders as p
    left join int_order_context as c on cast(c.order_id as varchar) = p.order_id
    where c.order_id is null
),
changed_persons as (
    select op.person_key from changed as ch join int_order_person as op on op.order_id = ch.order_id
    where op.person_key is not null
    union
    select p.person_key from changed as ch join prev_fct_orders as p on p.order_id = cast(ch.order_id as varchar)
    where p.person_key is not null
    union
    select old_person_key from int_person_key_history
    where old_person_key not in (select old_person_key from prev_int_person_key_history)
    union
    select new_person_key from int_person_key_history
    where old_person_key not in (select old_person_key from prev_int_person_key_history)
),
cost_items as (
    select inventory_item_id from (
        select inventory_item_id, valid_from, unit_cost_amount from int_unit_cost_history
        except
        select inventory_item_id, valid_from, unit_cost_amount from prev_int_unit_cost_history
    )
    union
    select inventory_item_id from (
        select inventory_item_id, valid_from, unit_cost_amount from prev_int_unit_cost_history
        except
        select inventory_item_id, valid_from, unit_cost_amount from int_unit_cost_history
    )
)
select order_month from changed
union
select c.order_month from int_order_person as op
join changed_persons as cp on cp.person_key = op.person_key
join int_order_context as c on c.order_id = op.order_id
union
select p.order_month from prev_fct_orders as p join changed_persons as cp on cp.person_key = p.person_key
union
select l.order_month from prev_fct_order_lines as l
where l.inventory_item_id in (select cast(inventory_item_id as varchar) from cost_items)
