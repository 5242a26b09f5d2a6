-- One row per message-level event from any messaging platform (models.md 4.4): sends,
-- deliveries, opens, clicks, bounces, drops, failures, spam complaints, subscribes and
-- unsubscribes, with the canonical event type of the map_event_type seed.
--
-- Structure: one CTE per platform (`klaviyo_events`, later `attentive_events`,
-- `postscript_events`) producing the common column list, then `unified` unions them and every
-- platform-independent step (settings, recipient timezone, local hour of week, person_key,
-- message cost) runs once over the union. A new platform adds its CTE and one `union all` line.
--
-- Klaviyo specifics: events whose metric name has no map_event_type row (Placed Order, Viewed
-- Product...) are not message events and stay out. `$message` is the flow-message id on flow
-- events and the campaign id on campaign events (Klaviyo's convention); a non-flow event without
-- `$message` (deleted campaign, consent events) is `unknown`. The event properties staging does
-- not carry yet ($machine_open, Bot Click, URL, Segment Count, Bounce Type) are read from the kept raw copy's
-- `_raw`, only for the opens, clicks and SMS sends that use them.
with settings as (
    select
        max(case when key = 'reporting_tz' then trim(value) end) as reporting_tz
    from cfg_settings
),

shop as (
    select iana_timezone
    from (
        select iana_timezone, row_number() over (order by _landed_at desc, shop_id) as shop_rank
        from stg_shopify__shop
    )
    where shop_rank = 1
),

reporting as (
    select coalesce(st.reporting_tz, s.iana_timezone) as reporting_tz
    from settings as st
    left join shop as s on true
),

-- Klaviyo ------------------------------------------------------------------------------------

klaviyo_metric_map as (
    select m.metric_id, m.metric_name, t.channel, t.event_type
    from stg_klaviyo__metrics as m
    join map_event_type as t
        on t.platform = 'klaviyo' and t.raw_event_name = m.metric_name
),

klaviyo_props as (
    -- The raw copy staging kept (same ranking), for the properties staging does not type.
    select
        id as event_id,
        json_get(_raw, '/attributes/event_properties/$machine_open') as machine_open,
        json_get(_raw, '/attributes/event_properties/Bot Click') as bot_click,
        json_get(_raw, '/attributes/event_properties/URL') as url,
        json_get(_raw, '/attributes/event_properties/Segment Count') as segment_count,
        json_get(_raw, '/attributes/event_properties/Bounce Type') as bounce_type
    from (
        select
            r.id,
            r._raw,
            row_number() over (partition by r.id order by r._landed_at desc, r._run_id desc) as copy_rank
        from raw_klaviyo__events as r
        join klaviyo_metric_map as mm on mm.metric_id = r.metric_id
        where mm.event_type in ('opened', 'clicked', 'bounced') or (mm.event_type = 'sent' and mm.channel = 'sms')
    )
    where copy_rank = 1
),

klaviyo_campaign_messages as (
    -- The campaign's message on a channel, when the campaign has exactly one there.
    select campaign_id, channel, min(campaign_message_id) as campaign_message_id
    from stg_klaviyo__campaign_messages
    group by campaign_id, channel
    having count(*) = 1
),

klaviyo_events as (
    select
        'klaviyo' as platform,
        e.event_id as source_event_id,
        mm.channel,
        mm.event_type,
        mm.metric_name as raw_event_name,
        e.occurred_at,
        e.profile_id as platform_profile_id,
        'klaviyo_profile_id' as profile_identifier_type,
        p.email_sha256,
        p.phone_sha256,
        p.timezone as profile_timezone,
        case
            when e.flow_id is not null then 'flow'
            when e.message_id is not null then 'campaign'
            else 'unknown'
        end as message_kind,
        e.flow_id,
        case when e.flow_id is not null then e.message_id end as flow_message_id,
        case when e.flow_id is null then e.message_id end as campaign_id,
        case when e.flow_id is null then cm.campaign_message_id end as campaign_message_id,
        e.variation_id,
        -- Klaviyo has no Sent Email metric: Received Email is the per-recipient send record.
        mm.event_type = 'sent' or (mm.channel = 'email' and mm.event_type = 'delivered') as is_send,
        case when mm.event_type = 'opened' then coalesce(lower(pr.machine_open) = 'true', false) end
            as is_machine_open,
        case when mm.event_type = 'clicked' then coalesce(lower(pr.bot_click) = 'true', false) end
            as is_bot_click,
        -- Only a hard bounce suppresses the address; an untyped bounce is taken as hard.
        case when mm.event_type = 'bounced' then coalesce(lower(pr.bounce_type), 'unknown') end as bounce_type,
        case when mm.event_type = 'clicked' then nullif(split_part(split_part(pr.url, '#', 1), '?', 1), '') end
            as click_url,
        case when mm.event_type = 'sent' and mm.channel = 'sms' then cast(pr.segment_count as int) end
            as reported_sms_segments,
        case when mm.event_type = 'unsubscribed' then 'channel_marketing' end as unsubscribe_scope
    from stg_klaviyo__events as e
    join klaviyo_metric_map as mm on mm.metric_id = e.metric_id
    left join stg_klaviyo__profiles as p on p.profile_id = e.profile_id
    left join klaviyo_props as pr on pr.event_id = e.event_id
    left join klaviyo_campaign_messages as cm
        on e.flow_id is null and cm.campaign_id = e.message_id and cm.channel = mm.channel
),

-- Attentive and Postscript plug in here with the same columns.

unified as (
    select * from klaviyo_events
),

-- Platform-independent steps -----------------------------------------------------------------

with_tz as (
    select
        u.*,
        r.reporting_tz,
        case when u.profile_timezone is not null and trim(u.profile_timezone) <> '' then 'profile'
             when r.reporting_tz is not null then 'reporting_tz'
        end as tz_source,
        case when u.profile_timezone is not null and trim(u.profile_timezone) <> '' then trim(u.profile_timezone)
             else r.reporting_tz
        end as recipient_tz
    -- The one-row side first: DataFusion collects a cross join's left input and emits a batch per
    -- collected row, so the events must stream on the right.
    from reporting as r
    cross join unified as u
),

identity as (
    select identifier_type, identifier_value, person_key, is_blocked
    from int_person_identifier
),

channel_cost as (
    select
        platform,
        channel,
        country,
        unit,
        cast(unit_cost as decimal(18, 4)) as unit_cost,
        cast(valid_from as date) as valid_from,
        cast(nullif(trim(valid_to), '') as date) as valid_to
    from dim_channel_cost
),

costed as (
    -- One cost row per send: recipient country is not known for message events, so the '*'
    -- row of (platform, channel) wins, else the lowest country (the seed lists US only for SMS).
    select source_event_id, platform, unit, unit_cost
    from (
        select
            w.source_event_id,
            w.platform,
            c.unit,
            c.unit_cost,
            row_number() over (
                partition by w.platform, w.source_event_id
                order by case when c.country = '*' then 0 else 1 end, c.country, c.valid_from desc
            ) as cost_rank
        from with_tz as w
        join channel_cost as c
            on c.platform = w.platform
            and c.channel = w.channel
            and c.valid_from <= cast(w.occurred_at as date)
            and (c.valid_to is null or cast(w.occurred_at as date) < c.valid_to)
        where w.is_send
    )
    where cost_rank = 1
),

final as (
    select
        arrow_cast(md5(w.platform || '|' || w.source_event_id), 'Utf8') as event_key,
        w.platform,
        w.source_event_id,
        w.channel,
        w.event_type,
        w.raw_event_name,
        w.occurred_at,
        local_date(w.occurred_at, w.reporting_tz) as event_date,
        local_hour_of_week(w.occurred_at, w.recipient_tz) as local_hour_of_week,
        w.recipient_tz,
        w.tz_source,
        coalesce(ip.person_key, ie.person_key, iph.person_key) as person_key,
        w.platform_profile_id,
        w.message_kind,
        case when w.flow_id is not null then arrow_cast(md5(w.platform || '|' || w.flow_id), 'Utf8') end as flow_key,
        w.flow_id,
        w.flow_message_id,
        w.campaign_id,
        w.campaign_message_id,
        w.variation_id,
        w.is_send,
        w.is_machine_open,
        w.is_bot_click,
        w.bounce_type,
        w.click_url,
        case when w.is_send and w.channel in ('sms', 'mms') then cast(coalesce(w.reported_sms_segments, 1) as int) end
            as sms_segments,
        case
            when not w.is_send or c.unit_cost is null then cast(null as decimal(18, 4))
            when c.unit = 'sms_segment' then cast(c.unit_cost * coalesce(w.reported_sms_segments, 1) as decimal(18, 4))
            else cast(c.unit_cost as decimal(18, 4))
        end as message_cost,
        case
            when not w.is_send then arrow_cast(null, 'Utf8')
            when w.channel in ('sms', 'mms') and w.reported_sms_segments is not null then 'platform_reported'
            when w.channel in ('sms', 'mms') then 'assumed_one_segment'
            else 'per_send_allocation'
        end as cost_basis,
        w.unsubscribe_scope,
        '1.0.0' as model_version
    from with_tz as w
    left join identity as ip
        on ip.identifier_type = w.profile_identifier_type and ip.identifier_value = w.platform_profile_id
    left join identity as ie on ie.identifier_type = 'email_sha256' and ie.identifier_value = w.email_sha256
        and not ie.is_blocked
    left join identity as iph on iph.identifier_type = 'phone_sha256' and iph.identifier_value = w.phone_sha256
        and not iph.is_blocked
    left join costed as c on c.platform = w.platform and c.source_event_id = w.source_event_id
)

select * from final
order by occurred_at, platform, source_event_id
