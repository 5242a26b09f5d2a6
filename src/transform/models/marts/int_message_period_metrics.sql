-- Message metrics per messaging subject (a flow or a campaign), channel and period: the message
-- columns of models.md 4.6 (fct_flow_contribution) and of its campaign twin, read from
-- fct_message_events, plus the platform-reported revenue of Klaviyo's flow series and campaign
-- values reports, Attentive's Conversions feed and Postscript's pushed attribution (those two by
-- the local date of the order: they report conversions, not sends).
--
-- * Subject: flow events (message_kind flow, or transactional with a flow id: transactional flows
--   stay in, consumers filter them by flow type) -> subject_key flow_key = md5(platform|flow_id);
--   campaign events -> md5(platform|campaign_id). Other events (unknown, no id) have no subject.
-- * Unsubscribes, spam complaints and bounces without a subject are attributed to the last
--   delivered message (delivered, or the send record for platforms without deliveries) of the same
--   channel to the same recipient in the 24 h up to the event (both ends inclusive; ties: latest,
--   then lowest event_key). When there is none, or that message has no subject itself, the event
--   counts for no subject (it appears in no row).
-- * Recipient = person_key, else 'profile|<platform>|<platform_profile_id>'.
-- * Every event and report row counts in its channel's row and in the subject's channel 'all' row
--   (distinct counts recomputed there, not summed), for the month and the ISO week (Monday) of its
--   event_date; events without an event_date (no reporting timezone) are left out.
with events as (
    select
        e.event_key,
        e.platform,
        e.channel,
        e.event_type,
        e.occurred_at,
        e.event_date,
        e.is_send,
        e.is_bot_click,
        e.sms_segments,
        e.message_cost,
        coalesce(e.person_key, 'profile|' || e.platform || '|' || e.platform_profile_id) as recipient_key,
        case
            when e.message_kind in ('flow', 'transactional') and e.flow_id is not null then 'flow'
            when e.message_kind = 'campaign' and e.campaign_id is not null then 'campaign'
        end as message_kind,
        case
            when e.message_kind in ('flow', 'transactional') and e.flow_id is not null
                then coalesce(e.flow_key, arrow_cast(md5(e.platform || '|' || e.flow_id), 'Utf8'))
            when e.message_kind = 'campaign' and e.campaign_id is not null
                then arrow_cast(md5(e.platform || '|' || e.campaign_id), 'Utf8')
        end as subject_key,
        case
            when e.message_kind in ('flow', 'transactional') and e.flow_id is not null then e.flow_id
            when e.message_kind = 'campaign' and e.campaign_id is not null then e.campaign_id
        end as subject_id
    from fct_message_events as e
),

-- Fallback attribution of negative events that carry no flow or campaign ---------------------

orphans as (
    select event_key, channel, recipient_key, occurred_at
    from events
    where subject_key is null
      and event_type in ('unsubscribed', 'spam_complaint', 'bounced')
      and recipient_key is not null
),

deliveries as (
    select event_key, platform, channel, recipient_key, occurred_at, message_kind, subject_key, subject_id
    from events
    where (event_type = 'delivered' or is_send) and recipient_key is not null
),

last_delivery as (
    select
        o.event_key,
        d.platform,
        d.message_kind,
        d.subject_key,
        d.subject_id,
        row_number() over (partition by o.event_key order by d.occurred_at desc, d.event_key) as delivery_rank
    from orphans as o
    join deliveries as d
        on d.recipient_key = o.recipient_key
        and d.channel = o.channel
        and d.occurred_at <= o.occurred_at
        and d.occurred_at >= o.occurred_at - interval '24 hours'
),

attributed as (
    select
        case when e.subject_key is not null then e.message_kind else f.message_kind end as message_kind,
        case when e.subject_key is not null then e.subject_key else f.subject_key end as subject_key,
        case when e.subject_key is not null then e.platform else f.platform end as platform,
        case when e.subject_key is not null then e.subject_id else f.subject_id end as subject_id,
        e.channel,
        e.event_date as period_date,
        e.recipient_key,
        e.is_send,
        -- Attentive's feed records SMS at receipt and Postscript sends carry no delivery event:
        -- for them the send is the delivery.
        e.event_type = 'delivered' or (e.is_send and e.platform in ('attentive', 'postscript')) as is_delivered,
        e.event_type = 'clicked' and not coalesce(e.is_bot_click, false) as is_click,
        e.event_type,
        e.sms_segments,
        e.message_cost,
        cast(null as decimal(18, 4)) as reported_revenue
    from events as e
    left join last_delivery as f on f.event_key = e.event_key and f.delivery_rank = 1
    -- Only the events a metric counts (opens are most of the volume and count nowhere).
    where e.event_date is not null
      and (e.is_send or e.event_type in ('delivered', 'clicked', 'unsubscribed', 'spam_complaint', 'bounced'))
      and (e.subject_key is not null or f.subject_key is not null)
),

-- Platform-reported revenue (Klaviyo) ------------------------------------------------------------

reporting as (
    select max(reporting_tz) as reporting_tz from int_reporting_timezone
),

flow_reports as (
    -- send_date is Klaviyo's account-local day, taken as the reporting timezone's day.
    select
        'flow' as message_kind,
        arrow_cast(md5('klaviyo|' || flow_id), 'Utf8') as subject_key,
        'klaviyo' as platform,
        flow_id as subject_id,
        channel,
        send_date as period_date,
        conversion_value_amount as reported_revenue
    from stg_klaviyo__flow_series_report
),

campaign_first_sends as (
    select campaign_id, min(event_date) as first_send_date
    from fct_message_events
    where platform = 'klaviyo' and message_kind = 'campaign' and is_send and campaign_id is not null
    group by campaign_id
),

campaign_sent_dates as (
    select c.campaign_id, local_date(c.sent_at, r.reporting_tz) as sent_date
    from reporting as r
    cross join stg_klaviyo__campaigns as c
),

campaign_reports as (
    -- A campaign's reported totals belong to the period of its first send event, else of its
    -- sent_at (local date).
    select
        'campaign' as message_kind,
        arrow_cast(md5('klaviyo|' || v.campaign_id), 'Utf8') as subject_key,
        'klaviyo' as platform,
        v.campaign_id as subject_id,
        v.channel,
        coalesce(fs.first_send_date, sd.sent_date) as period_date,
        v.conversion_value_amount as reported_revenue
    from stg_klaviyo__campaign_values_report as v
    left join campaign_first_sends as fs on fs.campaign_id = v.campaign_id
    left join campaign_sent_dates as sd on sd.campaign_id = v.campaign_id
),

-- Attentive and Postscript: their own attribution, under the subject the events give the same
-- message (journey or automation by name; an Attentive campaign message by its id, a Postscript
-- campaign by its name).
attentive_reports as (
    select
        case when c.flow_id is not null then 'flow' else 'campaign' end as message_kind,
        arrow_cast(md5('attentive|' || coalesce(c.flow_id, c.message_id)), 'Utf8') as subject_key,
        'attentive' as platform,
        coalesce(c.flow_id, c.message_id) as subject_id,
        coalesce(c.channel, 'sms') as channel,
        local_date(c.converted_at, r.reporting_tz) as period_date,
        c.revenue as reported_revenue
    from reporting as r
    cross join stg_attentive__conversions as c
    where c.flow_id is not null
        or (c.message_id is not null and c.message_type is not null
            and c.message_type not in ('AUTOMATED', 'AUTOMATED_TRANSACTIONAL', 'AUTO_RESPONSE', 'CONFIRM_OPT_IN',
                                       'CUSTOMER_SERVICE', 'FUZZY_OPT_OUT', 'HELP'))
),

postscript_reports as (
    select
        m.message_kind,
        arrow_cast(md5('postscript|' || coalesce(m.flow_id, m.campaign_name, m.message_id)), 'Utf8') as subject_key,
        'postscript' as platform,
        coalesce(m.flow_id, m.campaign_name, m.message_id) as subject_id,
        m.channel,
        local_date(a.order_created_at, r.reporting_tz) as period_date,
        a.revenue as reported_revenue
    from reporting as r
    cross join stg_postscript__messages as m
    join stg_postscript__attribution as a on a.message_id = m.message_id
    where (m.message_kind = 'flow' and m.flow_id is not null) or m.message_kind = 'campaign'
),

reports as (
    select * from flow_reports
    union all
    select * from campaign_reports
    union all
    select * from attentive_reports
    union all
    select * from postscript_reports
),

facts as (
    select * from attributed
    union all
    select
        message_kind,
        subject_key,
        platform,
        subject_id,
        channel,
        period_date,
        cast(null as varchar) as recipient_key,
        cast(null as boolean) as is_send,
        cast(null as boolean) as is_delivered,
        cast(null as boolean) as is_click,
        cast(null as varchar) as event_type,
        cast(null as int) as sms_segments,
        cast(null as decimal(18, 4)) as message_cost,
        cast(reported_revenue as decimal(18, 4)) as reported_revenue
    from reports
    where period_date is not null
),

-- Every fact in its channel and in 'all', by month and by ISO week --------------------------------

exploded as (
    select
        f.message_kind,
        f.subject_key,
        f.platform,
        f.subject_id,
        case when g.is_all then 'all' else f.channel end as channel,
        g.period_grain,
        case
            when g.period_grain = 'month' then cast(date_trunc('month', f.period_date) as date)
            else cast(date_trunc('week', f.period_date) as date)
        end as period_start,
        f.recipient_key,
        f.is_send,
        f.is_delivered,
        f.is_click,
        f.event_type,
        f.sms_segments,
        f.message_cost,
        f.reported_revenue
    -- The small side first: DataFusion collects a cross join's left input.
    from (values ('month', false), ('month', true), ('week', false), ('week', true)) as g(period_grain, is_all)
    cross join facts as f
),

metrics as (
    select
        message_kind,
        subject_key,
        platform,
        subject_id,
        channel,
        period_grain,
        period_start,
        count(case when is_send then 1 end) as sends,
        count(case when is_delivered then 1 end) as delivered,
        count(distinct case when is_delivered then recipient_key end) as recipients,
        count(distinct case when is_click then recipient_key end) as unique_clickers,
        count(case when is_click then 1 end) as clicks,
        count(case when event_type = 'unsubscribed' then 1 end) as unsubscribes,
        count(case when event_type = 'spam_complaint' then 1 end) as spam_complaints,
        count(case when event_type = 'bounced' then 1 end) as bounces,
        cast(coalesce(sum(case when is_send then sms_segments end), 0) as bigint) as sms_segments,
        cast(sum(case when is_send then message_cost end) as decimal(18, 4)) as channel_cost,
        cast(sum(reported_revenue) as decimal(18, 4)) as platform_reported_revenue
    from exploded
    group by message_kind, subject_key, platform, subject_id, channel, period_grain, period_start
)

select
    message_kind,
    subject_key,
    platform,
    subject_id,
    channel,
    period_grain,
    period_start,
    case
        when period_grain = 'month' then cast(period_start + interval '1 month' - interval '1 day' as date)
        else cast(period_start + interval '6 days' as date)
    end as period_end,
    sends,
    delivered,
    recipients,
    unique_clickers,
    clicks,
    unsubscribes,
    spam_complaints,
    bounces,
    case when delivered > 0 then cast(unsubscribes as double) / cast(delivered as double) end as unsubscribe_rate,
    case when recipients > 0 then cast(unique_clickers as double) / cast(recipients as double) end as click_rate,
    sms_segments,
    channel_cost,
    platform_reported_revenue
from metrics
order by message_kind, subject_key, channel, period_grain, period_start
