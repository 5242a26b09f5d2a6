-- One row per Attentive event, from the two paths that carry events (apis.md 3.3):
--   * the nightly General Events feed (SFTP), the record for every day it covers. Of a file
--     name delivered more than once only its latest landing counts (the re-delivery supersedes
--     the earlier rows, schemas/raw/attentive/general_events.yml);
--   * signed webhooks, for the time after the feed's last covered day: they arrive the same day
--     and fill the gap until the next file lands. Before that instant the feed wins, since the
--     two paths name and time the same event differently (MESSAGE_RECEIPT at receipt vs
--     sms.sent at send) and could not be matched row to row.
-- Attentive gives no event id: `event_id` is md5 of path, type, subscriber, time and message,
-- and a row repeated within one path (the same event in two files) is kept once.
-- Journeys are Attentive's flows. The feed and the webhooks name the message, not its journey:
-- a journey message (message_type AUTOMATED) is named "<journey> - Message <n>" in Attentive's
-- interface, so `journey_name` is the name before the last " - Message"/" - Step" suffix, and
-- the journey is the flow (`flow_id` = the journey name). Campaign messages carry no journey.
with feed_latest as (
    select source_file, max(_landed_at) as landed_at
    from raw_attentive__general_events
    group by source_file
),

feed as (
    select
        'sftp_feed' as event_path,
        g.event_type_normalized as raw_event_name,
        case upper(trim(g.channel)) when 'TEXT' then 'sms' when 'EMAIL' then 'email' end as channel,
        g.subscriber_id,
        g.phone,
        g.email,
        g.client_user_id,
        g.timestamp as occurred_at,
        g.message_id,
        g.message_name,
        upper(trim(g.message_type)) as message_type,
        g.link_url,
        upper(trim(g.subscription_type)) as subscription_type,
        g.join_source,
        g.source_file as source_ref,
        g._landed_at
    from feed_latest as l
    join raw_attentive__general_events as g
        on g.source_file = l.source_file and g._landed_at = l.landed_at
),

feed_end as (
    select cast(max(file_date) as timestamp) + interval '1 day' as covered_until
    from raw_attentive__general_events
),

hooks as (
    select
        'webhook' as event_path,
        w.event_type_normalized as raw_event_name,
        case when w.event_type_normalized like 'sms.%' then 'sms'
             when w.event_type_normalized like 'email.%' then 'email' end as channel,
        w.subscriber_id,
        w.phone,
        w.email,
        arrow_cast(null, 'Utf8') as client_user_id,
        w.event_time as occurred_at,
        w.message_id_decoded as message_id,
        w.message_name,
        upper(trim(w.message_type)) as message_type,
        w.link_url,
        upper(trim(w.subscription_type)) as subscription_type,
        arrow_cast(null, 'Utf8') as join_source,
        w.object_key as source_ref,
        w._landed_at
    from feed_end as f
    cross join raw_attentive__webhook_events as w
    where f.covered_until is null or w.event_time >= f.covered_until
),

unioned as (
    select * from feed
    union all
    select * from hooks
),

keyed as (
    select
        arrow_cast(md5(
            event_path || '|' || raw_event_name || '|' || coalesce(subscriber_id, '') || '|'
            || arrow_cast(arrow_cast(occurred_at, 'Int64'), 'Utf8') || '|' || coalesce(message_id, '')
        ), 'Utf8') as event_id,
        *
    from unioned
),

ranked as (
    select *, row_number() over (partition by event_id order by _landed_at desc, source_ref desc) as copy_rank
    from keyed
),

named as (
    select
        *,
        case when message_type = 'AUTOMATED' and message_name is not null
            then nullif(trim(regexp_replace(message_name, '\s+-\s+(Message|Step)\s+[0-9]+\s*$', '', 'i')), '')
        end as journey_name
    from ranked
    where copy_rank = 1
)

select
    event_id,
    event_path,
    raw_event_name,
    channel,
    subscriber_id,
    case when email is null or trim(email) = '' then null
         else encode(sha256(lower(trim(email))), 'hex') end as email_sha256,
    case when phone is null or trim(phone) = '' then null
         else encode(sha256(trim(phone)), 'hex') end as phone_sha256,
    case when regexp_like(trim(client_user_id), '^[0-9]+$') then trim(client_user_id) end as shopify_customer_id,
    occurred_at,
    message_id,
    message_name,
    message_type,
    case
        when message_id is null then null
        when message_type = 'AUTOMATED' then 'flow'
        when message_type in ('AUTOMATED_TRANSACTIONAL', 'AUTO_RESPONSE', 'CONFIRM_OPT_IN', 'CUSTOMER_SERVICE',
                              'FUZZY_OPT_OUT', 'HELP') then 'transactional'
        when message_type is null then 'unknown'
        else 'campaign'
    end as message_kind,
    journey_name as flow_id,
    case when message_type = 'AUTOMATED' then null else message_name end as campaign_name,
    link_url,
    subscription_type,
    join_source,
    _landed_at
from named
