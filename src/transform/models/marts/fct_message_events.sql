-- One row per message-level event from any messaging platform (models.md 4.4): sends,
-- deliveries, opens, clicks, bounces, drops, failures, spam complaints, subscribes and
-- unsubscribes, with the canonical event type of the map_event_type seed.
--
-- Structure: one CTE per platform (`klaviyo_events`, `attentive_events`, `postscript_events`)
-- producing the common column list, then `unified` unions them and every platform-independent
-- step (settings, recipient timezone, local hour of week, person_key, message cost) runs once
-- over the union. A new platform adds its CTE, one `union all` line and its days in event_days.
--
-- Attentive (stg_attentive__events: the SFTP feed, webhooks after it): journeys are flows and a
-- campaign message's id is its campaign; the feed's MESSAGE_RECEIPT is the send (the feed has no
-- separate send row). Postscript (warehouse push and webhooks): each outbound message is a send,
-- a failed one also a `failed` event at failed_at, clicks come from fct_clicks, opt-ins and
-- opt-outs from the webhooks; automations are flows. Neither platform flags machine opens or bot
-- clicks (false), nor reports SMS segments: Postscript's are computed from the body
-- (`computed_segments`), Attentive's assumed to be one.
--
-- Klaviyo specifics: events whose metric name has no map_event_type row (Placed Order, Viewed
-- Product...) are not message events and stay out. `$message` is the flow-message id on flow
-- events and the campaign id on campaign events (Klaviyo's convention); a non-flow event without
-- `$message` (deleted campaign, consent events) is `unknown`. The message properties
-- ($machine_open, Bot Click, URL, Segment Count, Bounce Type) come from staging.
--
-- Scale: joins are written with the small table on the left (profiles, identity, campaign
-- messages, the day-by-day cost table): the session keeps the written join order, so that side
-- is the hash table and the events stream through (DECISIONS D30).
with reporting as (
    select max(reporting_tz) as reporting_tz from int_reporting_timezone
),

-- Klaviyo ------------------------------------------------------------------------------------

klaviyo_metric_map as (
    select m.metric_id, m.metric_name, t.channel, t.event_type
    from stg_klaviyo__metrics as m
    join map_event_type as t
        on t.platform = 'klaviyo' and t.raw_event_name = m.metric_name
),

klaviyo_campaign_messages as (
    select campaign_id, channel, min(campaign_message_id) as campaign_message_id
    from stg_klaviyo__campaign_messages
    group by campaign_id, channel
    having count(*) = 1
),

klaviyo_mapped as (
    select e.*, mm.channel, mm.event_type, mm.metric_name
    from klaviyo_metric_map as mm
    join stg_klaviyo__events as e on e.metric_id = mm.metric_id
),

klaviyo_profiled as (
    select e.*, p.email_sha256, p.phone_sha256, p.timezone as profile_timezone
    from stg_klaviyo__profiles as p
    right join klaviyo_mapped as e on p.profile_id = e.profile_id
),

klaviyo_events as (
    select
        'klaviyo' as platform,
        e.event_id as source_event_id,
        e.channel,
        e.event_type,
        e.metric_name as raw_event_name,
        e.occurred_at,
        e.profile_id as platform_profile_id,
        'klaviyo_profile_id' as profile_identifier_type,
        e.email_sha256,
        e.phone_sha256,
        e.profile_timezone,
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
        e.event_type = 'sent' or (e.channel = 'email' and e.event_type = 'delivered') as is_send,
        case when e.event_type = 'opened' then coalesce(lower(e.machine_open) = 'true', false) end
            as is_machine_open,
        case when e.event_type = 'clicked' then coalesce(lower(e.bot_click) = 'true', false) end
            as is_bot_click,
        case when e.event_type = 'bounced' then coalesce(lower(e.bounce_type), 'unknown') end as bounce_type,
        case when e.event_type = 'clicked' then nullif(split_part(split_part(e.url, '#', 1), '?', 1), '') end
            as click_url,
        case when e.event_type = 'sent' and e.channel = 'sms' then cast(e.segment_count as int) end
            as reported_sms_segments,
        cast(null as int) as computed_sms_segments,
        case when e.event_type = 'unsubscribed' then 'channel_marketing' end as unsubscribe_scope
    from klaviyo_campaign_messages as cm
    right join klaviyo_profiled as e
        on e.flow_id is null and cm.campaign_id = e.message_id and cm.channel = e.channel
),

-- Attentive -----------------------------------------------------------------------------------

attentive_events as (
    select
        'attentive' as platform,
        e.event_id as source_event_id,
        coalesce(e.channel, t.channel) as channel,
        t.event_type,
        e.raw_event_name,
        e.occurred_at,
        e.subscriber_id as platform_profile_id,
        'attentive_subscriber_id' as profile_identifier_type,
        e.email_sha256,
        e.phone_sha256,
        arrow_cast(null, 'Utf8') as profile_timezone,
        coalesce(e.message_kind, 'unknown') as message_kind,
        case when e.message_kind = 'flow' then e.flow_id end as flow_id,
        case when e.message_kind = 'flow' then e.message_id end as flow_message_id,
        case when e.message_kind = 'campaign' then e.message_id end as campaign_id,
        case when e.message_kind = 'campaign' then e.message_id end as campaign_message_id,
        arrow_cast(null, 'Utf8') as variation_id,
        t.event_type = 'sent' as is_send,
        case when t.event_type = 'opened' then false end as is_machine_open,
        case when t.event_type = 'clicked' then false end as is_bot_click,
        arrow_cast(null, 'Utf8') as bounce_type,
        case when t.event_type = 'clicked' then nullif(split_part(split_part(e.link_url, '#', 1), '?', 1), '') end
            as click_url,
        cast(null as int) as reported_sms_segments,
        cast(null as int) as computed_sms_segments,
        case when t.event_type = 'unsubscribed' then 'channel_marketing' end as unsubscribe_scope
    from map_event_type as t
    join stg_attentive__events as e on t.platform = 'attentive' and t.raw_event_name = e.raw_event_name
),

-- Postscript ----------------------------------------------------------------------------------

postscript_subscribers as (
    select subscriber_id, email_sha256, phone_sha256 from stg_postscript__warehouse_subscribers
),

postscript_raw as (
    select
        'message:' || m.message_id as source_event_id,
        'outbound_message' as raw_event_name,
        m.channel,
        m.created_at as occurred_at,
        m.subscriber_id,
        m.message_kind,
        m.flow_id,
        m.message_id,
        m.campaign_name,
        arrow_cast(null, 'Utf8') as url,
        case when m.channel = 'sms' then m.computed_segments end as computed_segments
    from stg_postscript__messages as m
    where m.direction = 'outbound'
    union all
    select
        'failed:' || m.message_id, 'failed_message', m.channel, coalesce(m.failed_at, m.created_at), m.subscriber_id,
        m.message_kind, m.flow_id, m.message_id, m.campaign_name, arrow_cast(null, 'Utf8'), cast(null as int)
    from stg_postscript__messages as m
    where m.direction = 'outbound' and m.failed
    union all
    select
        'click:' || c.click_id, 'link_click', coalesce(m.channel, 'sms'), c.clicked_at, c.subscriber_id,
        coalesce(m.message_kind, 'unknown'), m.flow_id, c.message_id, m.campaign_name, c.url, cast(null as int)
    from stg_postscript__messages as m
    right join stg_postscript__clicks as c on m.message_id = c.message_id
    union all
    select
        'webhook:' || w.event_id, w.raw_event_name, 'sms', w.occurred_at, w.subscriber_id,
        'unknown', arrow_cast(null, 'Utf8'), arrow_cast(null, 'Utf8'), arrow_cast(null, 'Utf8'), arrow_cast(null, 'Utf8'),
        cast(null as int)
    from stg_postscript__webhook_events as w
),

postscript_events as (
    select
        'postscript' as platform,
        e.source_event_id,
        e.channel,
        t.event_type,
        e.raw_event_name,
        e.occurred_at,
        e.subscriber_id as platform_profile_id,
        'postscript_subscriber_id' as profile_identifier_type,
        s.email_sha256,
        s.phone_sha256,
        arrow_cast(null, 'Utf8') as profile_timezone,
        e.message_kind,
        case when e.message_kind = 'flow' then e.flow_id end as flow_id,
        case when e.message_kind = 'flow' then e.message_id end as flow_message_id,
        case when e.message_kind = 'campaign' then coalesce(e.campaign_name, e.message_id) end as campaign_id,
        case when e.message_kind = 'campaign' then e.message_id end as campaign_message_id,
        arrow_cast(null, 'Utf8') as variation_id,
        t.event_type = 'sent' as is_send,
        cast(null as boolean) as is_machine_open,
        case when t.event_type = 'clicked' then false end as is_bot_click,
        arrow_cast(null, 'Utf8') as bounce_type,
        case when t.event_type = 'clicked' then nullif(split_part(split_part(e.url, '#', 1), '?', 1), '') end
            as click_url,
        cast(null as int) as reported_sms_segments,
        e.computed_segments as computed_sms_segments,
        case when t.event_type = 'unsubscribed' then 'channel_marketing' end as unsubscribe_scope
    from map_event_type as t
    join postscript_raw as e on t.platform = 'postscript' and t.raw_event_name = e.raw_event_name
    left join postscript_subscribers as s on s.subscriber_id = e.subscriber_id
),

unified as (
    select * from klaviyo_events
    union all
    select * from attentive_events
    union all
    select * from postscript_events
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

-- Every UTC day that has events (a superset: staging rows of any type).
event_days as (
    select distinct cost_date
    from (
        select cast(occurred_at as date) as cost_date from stg_klaviyo__events
        union all
        select cast(occurred_at as date) from stg_attentive__events
        union all
        select cast(created_at as date) from stg_postscript__messages
    )
),

-- The cost row that applies to a send of (platform, channel) on a day: the all-countries row
-- before any country's, then the latest valid_from.
cost_by_day as (
    select platform, channel, cost_date, unit, unit_cost
    from (
        select
            c.platform,
            c.channel,
            d.cost_date,
            c.unit,
            c.unit_cost,
            row_number() over (
                partition by c.platform, c.channel, d.cost_date
                order by case when c.country = '*' then 0 else 1 end, c.country, c.valid_from desc
            ) as cost_rank
        from channel_cost as c
        join event_days as d
            on c.valid_from <= d.cost_date
            and (c.valid_to is null or d.cost_date < c.valid_to)
    )
    where cost_rank = 1
),

by_profile as (
    select w.*, ip.person_key as profile_person_key
    from identity as ip
    right join with_tz as w
        on ip.identifier_type = w.profile_identifier_type and ip.identifier_value = w.platform_profile_id
),

by_email as (
    select w.*, ie.person_key as email_person_key
    from identity as ie
    right join by_profile as w
        on ie.identifier_type = 'email_sha256' and ie.identifier_value = w.email_sha256 and not ie.is_blocked
),

by_phone as (
    select w.*, iph.person_key as phone_person_key
    from identity as iph
    right join by_email as w
        on iph.identifier_type = 'phone_sha256' and iph.identifier_value = w.phone_sha256 and not iph.is_blocked
),

costed as (
    select w.*, c.unit, c.unit_cost
    from cost_by_day as c
    right join by_phone as w
        on w.is_send
        and c.platform = w.platform
        and c.channel = w.channel
        and c.cost_date = cast(w.occurred_at as date)
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
        coalesce(w.profile_person_key, w.email_person_key, w.phone_person_key) as person_key,
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
        case when w.is_send and w.channel in ('sms', 'mms')
            then cast(coalesce(w.reported_sms_segments, w.computed_sms_segments, 1) as int) end
            as sms_segments,
        case
            when not w.is_send or w.unit_cost is null then cast(null as decimal(18, 4))
            when w.unit = 'sms_segment'
                then cast(w.unit_cost * coalesce(w.reported_sms_segments, w.computed_sms_segments, 1) as decimal(18, 4))
            else cast(w.unit_cost as decimal(18, 4))
        end as message_cost,
        case
            when not w.is_send then arrow_cast(null, 'Utf8')
            when w.channel in ('sms', 'mms') and w.reported_sms_segments is not null then 'platform_reported'
            when w.channel in ('sms', 'mms') and w.computed_sms_segments is not null then 'computed_segments'
            when w.channel in ('sms', 'mms') then 'assumed_one_segment'
            else 'per_send_allocation'
        end as cost_basis,
        w.unsubscribe_scope,
        '1.0.0' as model_version
    from costed as w
)

-- No ORDER BY: the writer sorts by partition and primary key.
select * from final
