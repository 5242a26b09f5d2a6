-- One row per Postscript subscriber, its latest landed version (highest updated_at; the
-- reader's page overlap lands some versions twice). Email and phone leave staging only as
-- SHA-256 of their normal form, as for Klaviyo and Shopify (models.md 1.3).
with ranked as (
    select
        *,
        row_number() over (partition by id order by updated_at desc, _landed_at desc, _run_id desc) as copy_rank
    from raw_postscript__subscribers
)

select
    id as subscriber_id,
    ps_id,
    case when email is null or trim(email) = '' then null
         else encode(sha256(lower(trim(email))), 'hex') end as email_sha256,
    case when phone_number is null or trim(phone_number) = '' then null
         else encode(sha256(trim(phone_number)), 'hex') end as phone_sha256,
    arrow_cast(shopify_customer_id, 'Utf8') as shopify_customer_id,
    created_at,
    updated_at,
    case when promotional_can_send then 'subscribed' else 'unsubscribed' end as sms_consent,
    transactional_can_send,
    coalesce(array_has(tags, 'vip'), false) as is_tagged_vip,
    _landed_at
from ranked
where copy_rank = 1
