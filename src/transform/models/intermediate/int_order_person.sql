-- The person behind each order (models.md 1.3): the order's Shopify customer id, else its email
-- hash, else its phone hash, looked up in int_person_identifier; blocked identifiers never match.
-- Orders with none of them stay unresolved (person_key NULL): they are revenue, not a customer.
with shop as (
    select cast(max(shop_id) as varchar) as shop_id from stg_shopify__shop
),
ids as (
    select identifier_type, identifier_value, person_key
    from int_person_identifier
    where not is_blocked
),
orders as (
    select
        o.order_id,
        case when o.customer_id is not null then coalesce(s.shop_id, '') || ':' || cast(o.customer_id as varchar) end
            as customer_value,
        o.email_sha256,
        o.phone_sha256
    from shop s
    cross join stg_shopify__orders o
)
select
    o.order_id,
    coalesce(c.person_key, e.person_key, p.person_key) as person_key,
    case
        when c.person_key is not null then 'shopify_customer_id'
        when e.person_key is not null then 'email_sha256'
        when p.person_key is not null then 'phone_sha256'
    end as resolved_by
from orders o
left join ids c on c.identifier_type = 'shopify_customer_id' and c.identifier_value = o.customer_value
left join ids e on e.identifier_type = 'email_sha256' and e.identifier_value = o.email_sha256
left join ids p on p.identifier_type = 'phone_sha256' and p.identifier_value = o.phone_sha256
order by o.order_id
