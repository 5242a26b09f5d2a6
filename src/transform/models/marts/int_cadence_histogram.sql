-- Profile-weeks by exact weekly message count (models.md 4.13's unit of observation), summed per
-- week x segment x channel x messages_in_week: fct_cadence groups these rows into frequency
-- buckets, fct_cadence_recommendation reads the exact counts for the median cadence.
--
-- * Weeks: ISO weeks (Monday) in the reporting timezone, complete inside the message data: from
--   the first Monday on or after the first event_date of fct_message_events to the last week whose
--   Sunday is on or before the last data day (the latest event_date, or cfg_settings as_of).
-- * Profile-week: a person (int_person_identifier of the Klaviyo profile) reachable on the channel
--   when the week starts: a Klaviyo subscribed interval of int_consent_history (never_subscribed
--   too for email when cfg_settings never_subscribed_email_is_reachable is true) that began before
--   the Monday and had not ended by then, and for email no hard (or unknown) bounce or spam
--   complaint of that profile before the week. Leaving during the week (an unsubscribe, a
--   complaint) is the outcome measured, so it does not remove the week; joining during the week
--   does not add it (the person was not reachable for the whole week). Persons with several
--   profiles or intervals count once per week and channel.
-- * The person-week rows come from each interval's own weeks (bounded to the data's weeks), never
--   from persons x weeks.
-- * Per profile-week: marketing messages delivered (flow and campaign delivered events;
--   transactional and unknown excluded), whether the person unsubscribed on the channel, spam
--   complaints, whether they clicked (non-bot) anything on the channel, net revenue of their
--   qualifying orders in the week (all orders, not attributed) and of those whose last click
--   (int_order_last_click) was on the channel.
-- * Segment: rfm_tier at the last month end before the week's Monday, 'prospect' without one.
with settings as (
    select
        max(case when key = 'as_of' then cast(trim(value) as date) end) as as_of,
        coalesce(max(case when key = 'never_subscribed_email_is_reachable' then lower(trim(value)) end), 'false')
            = 'true' as never_subscribed_email_is_reachable
    from cfg_settings
),

reporting as (
    select max(reporting_tz) as reporting_tz from int_order_context
),

bounds as (
    select
        cast(date_trunc('week', min(e.event_date) + interval '6 days') as date) as first_week,
        cast(date_trunc('week', (
            case
                when max(s.as_of) is not null and max(s.as_of) < max(e.event_date) then max(s.as_of)
                else max(e.event_date)
            end
        ) + interval '1 day') - interval '7 days' as date) as last_week
    from settings as s
    cross join fct_message_events as e
    where e.event_date is not null
),

suppressions as (
    select platform_profile_id, min(event_date) as suppressed_date
    from fct_message_events
    where platform = 'klaviyo' and channel = 'email' and platform_profile_id is not null and event_date is not null
      and (event_type = 'spam_complaint' or (event_type = 'bounced' and coalesce(bounce_type, 'unknown') <> 'soft'))
    group by platform_profile_id
),

intervals as (
    select
        i.person_key,
        c.channel,
        local_date(c.valid_from, r.reporting_tz) as from_date,
        case
            when c.channel = 'email' and sp.suppressed_date is not null
                and (c.valid_to is null or sp.suppressed_date < local_date(c.valid_to, r.reporting_tz))
                then sp.suppressed_date
            else local_date(c.valid_to, r.reporting_tz)
        end as to_date
    from settings as st
    cross join reporting as r
    cross join int_consent_history as c
    join int_person_identifier as i
        on i.identifier_type = c.identifier_type and i.identifier_value = c.identifier_value
    left join suppressions as sp on sp.platform_profile_id = c.identifier_value
    where c.platform = 'klaviyo'
      and c.identifier_type = 'klaviyo_profile_id'
      and (c.status = 'subscribed'
           or (c.channel = 'email' and c.status = 'never_subscribed' and st.never_subscribed_email_is_reachable))
),

-- First week: the Monday after the interval's first day; last week: the Monday on or before the
-- day it ended (the person was reachable when that week began).
interval_weeks as (
    select
        v.person_key,
        v.channel,
        greatest(cast(date_trunc('week', v.from_date) + interval '7 days' as date), b.first_week) as week_from,
        least(coalesce(cast(date_trunc('week', v.to_date) as date), b.last_week), b.last_week) as week_to
    from bounds as b
    cross join intervals as v
    where v.from_date is not null
),

profile_weeks as (
    select distinct person_key, channel, week_start
    from (
        select person_key, channel, unnest(generate_series(week_from, week_to, interval '7 days')) as week_start
        from interval_weeks
        where week_from <= week_to
    )
),

events as (
    select
        person_key,
        channel,
        cast(date_trunc('week', event_date) as date) as week_start,
        sum(case when event_type = 'delivered' and message_kind in ('flow', 'campaign') then 1 else 0 end) as messages,
        max(case when event_type = 'unsubscribed' then 1 else 0 end) as unsubscribed,
        sum(case when event_type = 'spam_complaint' then 1 else 0 end) as spam_complaints,
        max(case when event_type = 'clicked' and not coalesce(is_bot_click, false) then 1 else 0 end) as clicked
    from fct_message_events
    where person_key is not null
      and event_date is not null
      and event_type in ('delivered', 'unsubscribed', 'spam_complaint', 'clicked')
    group by 1, 2, 3
),

orders as (
    select person_key, cast(date_trunc('week', order_date) as date) as week_start, sum(net_revenue) as net_revenue
    from fct_orders
    where is_qualifying and person_key is not null and order_date is not null
    group by 1, 2
),

last_click_orders as (
    select person_key, lc_channel as channel, cast(date_trunc('week', order_date) as date) as week_start,
           sum(net_revenue) as net_revenue
    from int_order_last_click
    where lc_channel is not null and order_date is not null
    group by 1, 2, 3
),

person_weeks as (
    select
        w.week_start,
        w.channel,
        w.person_key,
        coalesce(e.messages, 0) as messages_in_week,
        coalesce(e.unsubscribed, 0) as unsubscribed,
        coalesce(e.spam_complaints, 0) as spam_complaints,
        coalesce(e.clicked, 0) as clicked
    from events as e
    right join profile_weeks as w
        on e.person_key = w.person_key and e.channel = w.channel and e.week_start = w.week_start
),

with_money as (
    select
        p.*,
        coalesce(o.net_revenue, 0) as net_revenue,
        coalesce(l.net_revenue, 0) as last_click_revenue
    from orders as o
    right join person_weeks as p on o.person_key = p.person_key and o.week_start = p.week_start
    left join last_click_orders as l
        on l.person_key = p.person_key and l.channel = p.channel and l.week_start = p.week_start
),

segmented as (
    select m.*, coalesce(s.rfm_tier, 'prospect') as segment_key
    from fct_rfm_snapshot as s
    right join with_money as m
        on s.person_key = m.person_key
        and s.snapshot_date = cast(date_trunc('month', m.week_start) - interval '1 day' as date)
)

select
    week_start,
    segment_key,
    channel,
    cast(messages_in_week as int) as messages_in_week,
    count(*) as profile_weeks,
    cast(sum(messages_in_week) as bigint) as messages,
    cast(sum(unsubscribed) as bigint) as unsubscribes,
    cast(sum(spam_complaints) as bigint) as spam_complaints,
    cast(sum(clicked) as bigint) as clicked_profile_weeks,
    cast(sum(net_revenue) as decimal(18, 4)) as net_revenue,
    cast(sum(last_click_revenue) as decimal(18, 4)) as last_click_revenue
from segmented
group by week_start, segment_key, channel, messages_in_week
order by week_start, segment_key, channel, messages_in_week
