-- One row per Klaviyo event id: re-reads of the trailing window land copies, the last landed wins.
with source as (
    select * from raw_klaviyo__events
),

ranked as (
    select
        *,
        row_number() over (partition by id order by _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        id as event_id,
        datetime as occurred_at,
        metric_id,
        profile_id,
        value as value_amount,
        flow_id,
        message_id,
        event_id_property as source_event_id,
        attributed_flow_id,
        attributed_message_id,
        variation_id,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
