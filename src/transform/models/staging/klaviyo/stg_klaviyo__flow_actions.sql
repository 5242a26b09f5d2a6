-- One row per Klaviyo flow action, latest landed copy (its full definition stays in raw _raw).
with source as (
    select * from raw_klaviyo__flow_actions
),

ranked as (
    select
        *,
        row_number() over (partition by id order by updated desc, _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        id as flow_action_id,
        flow_id,
        action_type,
        status as action_status,
        created as created_at,
        updated as updated_at,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
