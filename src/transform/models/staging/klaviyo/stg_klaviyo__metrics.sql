-- One row per Klaviyo metric: the copy landed last wins (metrics are pulled in full every run).
with source as (
    select * from raw_klaviyo__metrics
),

ranked as (
    select
        *,
        row_number() over (partition by id order by _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        id as metric_id,
        name as metric_name,
        integration_name,
        created as created_at,
        updated as updated_at,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
