-- One row per Klaviyo flow message (one per send action), latest landed copy.
with source as (
    select * from raw_klaviyo__flow_messages
),

ranked as (
    select
        *,
        row_number() over (partition by id order by updated desc, _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        id as flow_message_id,
        flow_action_id,
        channel,
        created as created_at,
        updated as content_updated_at,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
