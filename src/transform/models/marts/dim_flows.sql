-- The flow inventory (issue 7's intake, the baseline of the flow audit, models.md 4.11): one row
-- per messaging flow per platform, archived and draft flows included, with its trigger, status,
-- channels, message counts and dates. Type-1: current values, rebuilt in full each run.
--
-- Status is the platform's normalised to live / manual / draft / archived (archived wins: an
-- archived flow keeps its last status on Klaviyo). Message counts come from the action graph
-- (int_flow_structure); content_updated_at is the latest change to any of the flow's messages
-- (A/B variations included), the content-recency signal.
with content as (
    select
        a.flow_id,
        max(m.content_updated_at) as content_updated_at,
        count(*) as flow_messages
    from stg_klaviyo__flow_messages as m
    join stg_klaviyo__flow_actions as a on m.flow_action_id = a.flow_action_id
    group by a.flow_id
),

final as (
    select
        f.flow_key,
        f.platform,
        f.flow_id,
        f.flow_name,
        case
            when f.is_archived then 'archived'
            when f.flow_status in ('live', 'manual', 'draft') then f.flow_status
            else 'unknown'
        end as status,
        f.trigger_type as platform_trigger_type,
        case f.trigger_type
            when 'Added to List' then 'list'
            when 'Added to Segment' then 'segment'
            when 'Metric' then 'metric'
            when 'Date Based' then 'date_property'
            when 'Price Drop' then 'price_drop'
            when 'Low Inventory' then 'low_inventory'
            else 'unknown'
        end as trigger_type,
        f.flow_type,
        case f.flow_type_source
            when 'override' then 'override'
            when 'trigger' then 'trigger_rule'
            when 'name' then 'name_rule'
            else 'unmapped'
        end as flow_type_method,
        case when f.channels = '' then null else string_to_array(f.channels, '|') end as channels,
        s.message_count,
        s.email_message_count,
        s.sms_message_count,
        coalesce(c.flow_messages, 0) as flow_messages,
        s.depth_method,
        fl.created_at,
        fl.updated_at,
        s.structure_updated_at,
        c.content_updated_at,
        f.live_from as first_message_at,
        '1.0.0' as model_version
    from int_flows as f
    left join stg_klaviyo__flows as fl on f.flow_id = fl.flow_id and f.platform = 'klaviyo'
    left join int_flow_structure as s on f.flow_key = s.flow_key
    left join content as c on f.flow_id = c.flow_id and f.platform = 'klaviyo'
)

select * from final
