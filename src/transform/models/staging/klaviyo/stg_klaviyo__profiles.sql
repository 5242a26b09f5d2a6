-- One row per Klaviyo profile, its latest landed version. Email and phone leave staging only as
-- SHA-256 of their normal form (models.md 1.3); the plain values stay in raw.
with source as (
    select * from raw_klaviyo__profiles
),

ranked as (
    select
        *,
        row_number() over (partition by id order by updated desc, _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        id as profile_id,
        case when email is null or trim(email) = '' then null
             else encode(sha256(lower(trim(email))), 'hex') end as email_sha256,
        case when phone_number is null or trim(phone_number) = '' then null
             else encode(sha256(trim(phone_number)), 'hex') end as phone_sha256,
        external_id,
        created as created_at,
        updated as updated_at,
        timezone,
        lower(email_marketing_consent) as email_consent,
        email_marketing_consent_at as email_consent_at,
        lower(sms_marketing_consent) as sms_consent,
        sms_marketing_consent_at as sms_consent_at,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
