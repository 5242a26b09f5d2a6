-- One row per Klaviyo event id: re-reads of the trailing window land copies, the last landed wins.
-- The message properties fct_message_events needs are read from `_raw` here, once, and only for
-- the metrics that carry them (opens, clicks, bounces, SMS sends), so no later model has to join
-- the events back to their raw JSON.
with property_metrics as (
    select m.metric_id
    from stg_klaviyo__metrics as m
    join map_event_type as t on t.platform = 'klaviyo' and t.raw_event_name = m.metric_name
    where t.event_type in ('opened', 'clicked', 'bounced') or (t.event_type = 'sent' and t.channel = 'sms')
),

source as (
    -- The tiny side first: DataFusion builds a join's hash table from its left input when it has
    -- no statistics to choose by.
    select
        r.id,
        r.datetime,
        r.metric_id,
        r.profile_id,
        r.value,
        r.flow_id,
        r.message_id,
        r.event_id_property,
        r.attributed_flow_id,
        r.attributed_message_id,
        r.variation_id,
        r._landed_at,
        r._run_id,
        case when pm.metric_id is not null
            then json_get(r._raw, '/attributes/event_properties/$machine_open') end as machine_open,
        case when pm.metric_id is not null
            then json_get(r._raw, '/attributes/event_properties/Bot Click') end as bot_click,
        case when pm.metric_id is not null
            then json_get(r._raw, '/attributes/event_properties/URL') end as url,
        case when pm.metric_id is not null
            then json_get(r._raw, '/attributes/event_properties/Segment Count') end as segment_count,
        case when pm.metric_id is not null
            then json_get(r._raw, '/attributes/event_properties/Bounce Type') end as bounce_type
    from property_metrics as pm
    right join raw_klaviyo__events as r on r.metric_id = pm.metric_id
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
        machine_open,
        bot_click,
        url,
        segment_count,
        bounce_type,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
