-- The last-click and platform-style winners of every qualifying order (models.md 3.7), one row
-- per qualifying order (fct_orders.is_qualifying) of an identified person (fct_orders.person_key).
--
-- * Last click: the latest non-bot click of the person's flow or campaign messages (any platform,
--   email or SMS/MMS) strictly before order_at and no older than the channel's window
--   (cfg_settings attribution_window_email_hours, default 120; attribution_window_sms_hours,
--   default 24, also for MMS; a touch exactly the window before counts). One winner per order
--   across platforms; ties on the timestamp: lowest event_key.
-- * Platform style: the same rule where touches are non-bot clicks, email opens not flagged
--   is_machine_open, and SMS/MMS deliveries when cfg_settings platform_style_sms_deliveries_count
--   is 'true' (default 'true').
-- * Subjects as in int_message_period_metrics: md5(platform|flow_id) (flow_key) for flows,
--   md5(platform|campaign_id) for campaigns. Transactional, unknown and push events never count.
with settings as (
    select
        coalesce(
            max(case when key = 'attribution_window_email_hours' then cast(nullif(trim(value), '') as double) end),
            120.0
        ) as email_hours,
        coalesce(
            max(case when key = 'attribution_window_sms_hours' then cast(nullif(trim(value), '') as double) end),
            24.0
        ) as sms_hours,
        coalesce(
            max(case when key = 'platform_style_sms_deliveries_count' then lower(trim(value)) end),
            'true'
        ) = 'true' as sms_deliveries_count
    from cfg_settings
),

orders as (
    select
        order_key,
        person_key,
        order_at,
        arrow_cast(order_at, 'Int64') as order_us,
        order_date,
        net_revenue,
        gross_margin,
        contribution_margin
    from fct_orders
    where is_qualifying and person_key is not null
),

events as (
    -- Only the event types a touch can be, of flows and campaigns, of identified persons.
    select
        event_key,
        person_key,
        platform,
        channel,
        event_type,
        occurred_at,
        is_bot_click,
        is_machine_open,
        message_kind,
        case
            when message_kind = 'flow' and flow_id is not null
                then coalesce(flow_key, arrow_cast(md5(platform || '|' || flow_id), 'Utf8'))
            when message_kind = 'campaign' and campaign_id is not null
                then arrow_cast(md5(platform || '|' || campaign_id), 'Utf8')
        end as subject_key
    from fct_message_events
    where person_key is not null
      and message_kind in ('flow', 'campaign')
      and event_type in ('clicked', 'opened', 'delivered')
      and channel in ('email', 'sms', 'mms')
),

flagged as (
    select
        e.event_key,
        e.person_key,
        e.platform,
        e.channel,
        e.message_kind,
        e.subject_key,
        e.occurred_at as touch_at,
        arrow_cast(e.occurred_at, 'Int64') as touch_us,
        arrow_cast(e.occurred_at, 'Int64')
            + cast((case when e.channel = 'email' then s.email_hours else s.sms_hours end) * 3600000000.0 as bigint)
            as expires_us,
        e.event_type = 'clicked' and not coalesce(e.is_bot_click, false) as is_click,
        (e.event_type = 'clicked' and not coalesce(e.is_bot_click, false))
            or (e.event_type = 'opened' and e.channel = 'email' and not coalesce(e.is_machine_open, false))
            or (e.event_type = 'delivered' and e.channel in ('sms', 'mms') and s.sms_deliveries_count)
            as is_platform_touch
    -- The one-row side first: DataFusion collects a cross join's left input.
    from settings as s
    cross join events as e
    where e.subject_key is not null
),

touches as (
    select * from flagged where is_click or is_platform_touch
),

candidates as (
    select
        o.order_key,
        t.event_key,
        t.touch_at,
        t.message_kind,
        t.subject_key,
        t.platform,
        t.channel,
        t.is_click,
        t.is_platform_touch
    from orders as o
    join touches as t
        on t.person_key = o.person_key
        and t.touch_us < o.order_us
        and o.order_us <= t.expires_us
),

last_click as (
    select
        order_key, message_kind, subject_key, platform, channel, touch_at,
        row_number() over (partition by order_key order by touch_at desc, event_key) as touch_rank
    from candidates
    where is_click
),

platform_style as (
    select
        order_key, message_kind, subject_key, platform, channel, touch_at,
        row_number() over (partition by order_key order by touch_at desc, event_key) as touch_rank
    from candidates
    where is_platform_touch
)

select
    o.order_key,
    o.person_key,
    o.order_at,
    o.order_date,
    o.net_revenue,
    o.gross_margin,
    o.contribution_margin,
    lc.message_kind as lc_message_kind,
    lc.subject_key as lc_subject_key,
    lc.platform as lc_platform,
    lc.channel as lc_channel,
    lc.touch_at as lc_touch_at,
    ps.message_kind as ps_message_kind,
    ps.subject_key as ps_subject_key,
    ps.platform as ps_platform,
    ps.channel as ps_channel,
    ps.touch_at as ps_touch_at
from orders as o
left join last_click as lc on lc.order_key = o.order_key and lc.touch_rank = 1
left join platform_style as ps on ps.order_key = o.order_key and ps.touch_rank = 1
order by o.order_key
