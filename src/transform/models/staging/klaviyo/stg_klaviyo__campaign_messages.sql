-- One row per Klaviyo campaign message, latest landed copy.
with source as (
    select * from raw_klaviyo__campaign_messages
),

ranked as (
    select
        *,
        row_number() over (partition by id order by updated_at desc, _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        id as campaign_message_id,
        campaign_id,
        channel,
        label as message_label,
        created_at,
        updated_at as content_updated_at,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
