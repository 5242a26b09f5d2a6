-- One row per Klaviyo flow (archived included), latest landed copy.
with source as (
    select * from raw_klaviyo__flows
),

ranked as (
    select
        *,
        row_number() over (partition by id order by updated desc, _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        id as flow_id,
        name as flow_name,
        status as flow_status,
        archived as is_archived,
        trigger_type,
        created as created_at,
        updated as updated_at,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
