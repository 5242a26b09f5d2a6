-- One row per Postscript keyword, as of the latest run that listed it.
with ranked as (
    select
        *,
        row_number() over (partition by id order by _landed_at desc, _run_id desc) as copy_rank
    from raw_postscript__keywords
)

select
    id as keyword_id,
    keyword,
    triggered_count,
    created_at,
    updated_at,
    _landed_at
from ranked
where copy_rank = 1
