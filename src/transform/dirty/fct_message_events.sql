-- Dirty partitions of fct_message_events (models.md 5): every event date from seven days before
-- the latest event on (late events and the 7-day re-pull), plus the dates of events the previous
-- version does not have. event_date is the reporting-timezone date, within a day of the UTC date,
-- so a new event dirties its UTC date and both neighbours. Beyond the spec's rule, the dates of
-- events whose person's key moved since the previous version (identity merges) are dirty too,
-- so person_key never goes stale.
--
-- Attentive and Postscript events have no ids of their own and their sources restate rows (a
-- re-delivered feed file, the feed superseding webhooks, warehouse corrections): their dirty
-- dates are those of new keys, of keys the previous version has that staging no longer does,
-- and of every row of the latest landing (a correction keeps its key but changes the row).
with latest as (
    select max(event_date) as last_date from prev_fct_message_events
),
sms_platform_rows as (
    select 'attentive' as platform, event_id as source_event_id, occurred_at,
           _landed_at = max(_landed_at) over () as is_latest_landing
    from stg_attentive__events
    union all
    select 'postscript', 'message:' || message_id, created_at, _landed_at = max(_landed_at) over ()
    from stg_postscript__messages where direction = 'outbound'
    union all
    select 'postscript', 'failed:' || message_id, coalesce(failed_at, created_at), _landed_at = max(_landed_at) over ()
    from stg_postscript__messages where direction = 'outbound' and failed
    union all
    select 'postscript', 'click:' || click_id, clicked_at, _landed_at = max(_landed_at) over ()
    from stg_postscript__clicks
    union all
    select 'postscript', 'webhook:' || event_id, occurred_at, _landed_at = max(_landed_at) over ()
    from stg_postscript__webhook_events
),
new_events as (
    select cast(e.occurred_at as date) as utc_date
    from stg_klaviyo__events as e
    left join prev_fct_message_events as p
        on p.event_key = arrow_cast(md5('klaviyo|' || e.event_id), 'Utf8')
    where p.event_key is null
    union all
    select cast(r.occurred_at as date)
    from sms_platform_rows as r
    left join prev_fct_message_events as p
        on p.event_key = arrow_cast(md5(r.platform || '|' || r.source_event_id), 'Utf8')
    where p.event_key is null or r.is_latest_landing
),
removed_events as (
    select p.event_date
    from sms_platform_rows as r
    right join prev_fct_message_events as p
        on p.platform = r.platform and p.source_event_id = r.source_event_id
    where p.platform in ('attentive', 'postscript') and r.source_event_id is null
),
candidates as (
    select utc_date + d.shift as event_date
    from new_events
    cross join (values (-1), (0), (1)) as d(shift)
    union all
    select event_date from prev_fct_message_events, latest where event_date >= last_date - 7
    union all
    select event_date from removed_events
    union all
    select p.event_date from prev_fct_message_events as p
    join int_person_key_history as h on h.old_person_key = p.person_key
    union all
    -- the week before the latest date, also when that week has no event yet
    select cast(utc_date + d.shift as date) from (select max(cast(occurred_at as date)) as utc_date from stg_klaviyo__events)
    cross join (values (-8), (-7), (-6), (-5), (-4), (-3), (-2), (-1), (0), (1)) as d(shift)
)
select distinct event_date from candidates where event_date is not null
