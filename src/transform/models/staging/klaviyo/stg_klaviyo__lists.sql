-- One row per Klaviyo list, latest landed copy (profile_count as of that sync).
with source as (
    select * from raw_klaviyo__lists
),

ranked as (
    select
        *,
        row_number() over (partition by id order by _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        id as list_id,
        name as list_name,
        opt_in_process,
        profile_count,
        created as created_at,
        updated as updated_at,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
