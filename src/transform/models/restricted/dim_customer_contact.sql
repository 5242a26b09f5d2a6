-- The only table with plain emails and phones (models.md 1.3, issue 5): one row per person with a
-- usable address, each taken from the latest source record that carries it (orders by business
-- time, Shopify customers and Klaviyo profiles by their last update). Everything else in the
-- project joins on the hashes; grant this folder to the people who must contact customers.
with ids as (
    select identifier_type, identifier_value, person_key
    from int_person_identifier
    where not is_blocked
),
seen as (
    select email, phone, coalesce(processed_at, created_at) as seen_at, 'shopify_order' as source
    from raw_shopify__orders
    union all
    select email, phone, updated_at, 'shopify_customer' from raw_shopify__customers
    union all
    select email, phone_number, updated, 'klaviyo_profile' from raw_klaviyo__profiles
),
emails as (
    select lower(trim(email)) as email, encode(sha256(lower(trim(email))), 'hex') as email_sha256, seen_at, source
    from seen
    where email is not null and trim(email) <> ''
),
phones as (
    select trim(phone) as phone, encode(sha256(trim(phone)), 'hex') as phone_sha256, seen_at, source
    from seen
    where phone is not null and trim(phone) <> ''
),
person_email as (
    select person_key, email, email_sha256, source as email_source, seen_at as email_seen_at
    from (
        select i.person_key, e.*,
            row_number() over (partition by i.person_key order by e.seen_at desc, e.source, e.email) as rn
        from emails e
        join ids i on i.identifier_type = 'email_sha256' and i.identifier_value = e.email_sha256
    )
    where rn = 1
),
person_phone as (
    select person_key, phone, phone_sha256, source as phone_source, seen_at as phone_seen_at
    from (
        select i.person_key, p.*,
            row_number() over (partition by i.person_key order by p.seen_at desc, p.source, p.phone) as rn
        from phones p
        join ids i on i.identifier_type = 'phone_sha256' and i.identifier_value = p.phone_sha256
    )
    where rn = 1
)
select
    coalesce(e.person_key, p.person_key) as person_key,
    e.email,
    e.email_sha256,
    e.email_source,
    e.email_seen_at,
    p.phone,
    p.phone_sha256,
    p.phone_source,
    p.phone_seen_at
from person_email e
full outer join person_phone p on p.person_key = e.person_key
order by 1
