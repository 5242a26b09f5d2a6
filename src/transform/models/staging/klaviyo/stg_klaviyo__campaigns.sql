-- One row per Klaviyo campaign still in the account (email and SMS, archived included), latest landed copy.
with source as (
    select * from raw_klaviyo__campaigns
),

ranked as (
    select
        *,
        row_number() over (partition by id order by updated_at desc, _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        id as campaign_id,
        name as campaign_name,
        status as campaign_status,
        archived as is_archived,
        created_at,
        scheduled_at,
        send_time as sent_at,
        updated_at,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
