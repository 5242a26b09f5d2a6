-- One row per order Attentive credits to a message (the Conversions feed): the platform's own
-- attribution, kept beside our last click and modeled lift so the gap is visible. Of a file name
-- delivered more than once only its latest landing counts; an order credited in two files
-- (a later file re-stating it) keeps the row of the latest file day, then the latest landing.
with latest as (
    select source_file, max(_landed_at) as landed_at
    from raw_attentive__conversions
    group by source_file
),

rows as (
    select c.*
    from latest as l
    join raw_attentive__conversions as c
        on c.source_file = l.source_file and c._landed_at = l.landed_at
),

ranked as (
    select
        *,
        row_number() over (partition by trim(order_id) order by file_date desc, _landed_at desc, row_number desc)
            as copy_rank
    from rows
),

named as (
    select
        *,
        upper(trim(message_type)) as message_type_upper
    from ranked
    where copy_rank = 1
)

select
    trim(order_id) as order_id,
    timestamp as converted_at,
    subscriber_id,
    case when email is null or trim(email) = '' then null
         else encode(sha256(lower(trim(email))), 'hex') end as email_sha256,
    case when phone is null or trim(phone) = '' then null
         else encode(sha256(trim(phone)), 'hex') end as phone_sha256,
    case when regexp_like(trim(client_user_id), '^[0-9]+$') then trim(client_user_id) end as shopify_customer_id,
    cast(revenue as decimal(18, 4)) as revenue,
    upper(trim(currency)) as currency,
    case upper(trim(channel)) when 'TEXT' then 'sms' when 'EMAIL' then 'email' end as channel,
    message_id,
    message_name,
    message_type_upper as message_type,
    case when message_type_upper = 'AUTOMATED' and message_name is not null
        then nullif(trim(regexp_replace(message_name, '\s+-\s+(Message|Step)\s+[0-9]+\s*$', '', 'i')), '')
    end as flow_id,
    upper(trim(attribution_type)) as attribution_type,
    attribution_window_days,
    source_file,
    _landed_at
from named
