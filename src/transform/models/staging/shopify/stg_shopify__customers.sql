-- One row per Shopify customer, its latest landed copy (highest updatedAt). Email and phone leave
-- staging only as SHA-256 of their normal form, as stg_klaviyo__profiles does (models.md 1.3);
-- the plain values stay in raw.
with source as (
    select * from raw_shopify__customers
),

ranked as (
    select
        *,
        row_number() over (partition by id order by updated_at desc, _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        legacy_resource_id as customer_id,
        id as customer_gid,
        case when email is null or trim(email) = '' then null
             else encode(sha256(lower(trim(email))), 'hex') end as email_sha256,
        case when phone is null or trim(phone) = '' then null
             else encode(sha256(trim(phone)), 'hex') end as phone_sha256,
        created_at,
        updated_at,
        lower(state) as account_state,
        tags,
        number_of_orders,
        amount_spent_amount,
        amount_spent_currency,
        lower(email_marketing_state) as email_consent,
        lower(email_marketing_opt_in_level) as email_consent_opt_in_level,
        email_marketing_updated_at as email_consent_at,
        lower(sms_marketing_state) as sms_consent,
        lower(sms_marketing_opt_in_level) as sms_consent_opt_in_level,
        sms_consent_updated_at as sms_consent_at,
        lower(sms_consent_collected_from) as sms_consent_collected_from,
        country_code,
        province_code,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
