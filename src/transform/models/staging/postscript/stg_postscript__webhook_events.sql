-- One row per Postscript webhook event (the compaction already removed repeated deliveries):
-- opt-ins, opt-outs, incoming messages and collected emails, the only dated consent changes
-- Postscript gives (its API has the current state only). Email and phone leave staging hashed.
select
    dedup_key as event_id,
    event_type_normalized as raw_event_name,
    event_time as occurred_at,
    shop_id,
    subscriber_id,
    case when email is null or trim(email) = '' then null
         else encode(sha256(lower(trim(email))), 'hex') end as email_sha256,
    case when phone is null or trim(phone) = '' then null
         else encode(sha256(trim(phone)), 'hex') end as phone_sha256,
    case when regexp_like(trim(shopify_customer_id), '^[0-9]+$') then trim(shopify_customer_id) end
        as shopify_customer_id,
    message_id as incoming_message_id,
    coalesce(is_opt_out, false) as is_opt_out,
    _landed_at
from raw_postscript__webhook_events
