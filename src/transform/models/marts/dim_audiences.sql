-- Lists and segments with their sizes (issue 7's intake inventory, beside dim_flows): one row per
-- audience per platform. profile_count is the platform's own count at the latest sync (Klaviyo
-- serves it with additional-fields[list|segment]=profile_count); profile_count_as_of is when that
-- copy was landed. Type-1, rebuilt in full each run.
with lists as (
    select
        'klaviyo' as platform,
        'list' as audience_type,
        list_id as audience_id,
        list_name as audience_name,
        profile_count,
        _landed_at as profile_count_as_of,
        opt_in_process,
        cast(null as boolean) as is_active,
        created_at,
        updated_at
    from stg_klaviyo__lists
),

segments as (
    select
        'klaviyo' as platform,
        'segment' as audience_type,
        segment_id as audience_id,
        segment_name as audience_name,
        profile_count,
        _landed_at as profile_count_as_of,
        arrow_cast(null, 'Utf8') as opt_in_process,
        is_active,
        created_at,
        updated_at
    from stg_klaviyo__segments
),

final as (
    select
        arrow_cast(md5(concat_ws('|', platform, audience_type, audience_id)), 'Utf8') as audience_key,
        *,
        '1.0.0' as model_version
    from (select * from lists union all select * from segments)
)

select * from final
