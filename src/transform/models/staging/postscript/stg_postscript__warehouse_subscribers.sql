-- One row per subscriber of Postscript's warehouse push, its latest version: the dated opt-out
-- the API does not give (the API has the current state only). Email and phone leave hashed.
select
    subscriber_id,
    case when email is null or trim(email) = '' then null
         else encode(sha256(lower(trim(email))), 'hex') end as email_sha256,
    case when phone_number is null or trim(phone_number) = '' then null
         else encode(sha256(trim(phone_number)), 'hex') end as phone_sha256,
    arrow_cast(shopify_customer_id, 'Utf8') as shopify_customer_id,
    created_at,
    opted_out_at,
    _updated_at,
    _landed_at
from (
    select
        *,
        row_number() over (partition by subscriber_id order by _updated_at desc, _landed_at desc, row_number desc)
            as copy_rank
    from raw_postscript__warehouse_subscribers
)
where copy_rank = 1
