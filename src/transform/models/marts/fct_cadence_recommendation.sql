-- Weekly cadence cap per as-of date x segment x channel (models.md 4.13), a heuristic over the
-- 13 complete weeks ending on or before the as-of date (fewer at the start of the data).
--
-- * As-of dates: every local month end from the end of the first complete week of
--   int_cadence_histogram to the end of its last one, plus that last week's Sunday.
-- * Buckets are pooled over the window. Walking up from bucket 1 (0, 1, 2, 3, 4-5, 6-9, 10+), a
--   bucket b passes when: both b and the bucket below have >= cadence_min_profile_weeks
--   profile-weeks (cfg_settings, default 100; else insufficient_data); email spam complaints per
--   message < cadence_max_spam_rate (default 0.001; else spam); pressure_index(b) = unsubscribes
--   per profile-week of b / those of bucket 1 <= cadence_max_pressure_index (default 2.0; not
--   evaluated while bucket 1 has no unsubscribe; else pressure); and the marginal net revenue per
--   profile-week from the bucket below exceeds the marginal unsubscribes per profile-week times
--   subscriber_value (else marginal_value). The recommended maximum is the bucket below the first
--   that fails, whose reason is the binding constraint; 'none' when every bucket up to 10+ passes.
-- * subscriber_value: cfg_settings cadence_subscriber_value when set (reporting currency), else
--   the median 12-month net revenue (int_rfm_person_snapshots.net_revenue_l365d) of the
--   segment's persons at the latest snapshot on or before the as-of date, times 0.2 (the
--   channel's incrementality ratio is not joined); 0 for prospect.
with settings as (
    select
        coalesce(max(case when key = 'cadence_min_profile_weeks' then cast(trim(value) as bigint) end), 100)
            as min_profile_weeks,
        coalesce(max(case when key = 'cadence_max_spam_rate' then cast(trim(value) as double) end), 0.001)
            as max_spam_rate,
        coalesce(max(case when key = 'cadence_max_pressure_index' then cast(trim(value) as double) end), 2.0)
            as max_pressure_index,
        max(case when key = 'cadence_subscriber_value' then cast(trim(value) as double) end) as subscriber_value
    from cfg_settings
),

bounds as (
    select min(week_start) as first_week, max(week_start) as last_week from int_cadence_histogram
),

month_starts as (
    select unnest(generate_series(
        cast(date_trunc('month', first_week + interval '6 days') as date),
        cast(date_trunc('month', last_week + interval '6 days') as date),
        interval '1 month'
    )) as month_start
    from bounds
    where first_week is not null
),

as_of_dates as (
    select distinct as_of_date
    from (
        select cast(m.month_start + interval '1 month' - interval '1 day' as date) as as_of_date
        from bounds as b
        cross join month_starts as m
        where cast(m.month_start + interval '1 month' - interval '1 day' as date) >= cast(b.first_week + interval '6 days' as date)
          and cast(m.month_start + interval '1 month' - interval '1 day' as date) < cast(b.last_week + interval '6 days' as date)
        union all
        select cast(last_week + interval '6 days' as date) as as_of_date from bounds where last_week is not null
    )
),

-- The weeks of each as-of date's window: the 13 Mondays up to the last complete week.
window_weeks as (
    select as_of_date, unnest(generate_series(
        cast(date_trunc('week', as_of_date + interval '1 day') - interval '91 days' as date),
        cast(date_trunc('week', as_of_date + interval '1 day') - interval '7 days' as date),
        interval '7 days'
    )) as week_start
    from as_of_dates
),

histogram as (
    select w.as_of_date, h.*
    from window_weeks as w
    join int_cadence_histogram as h on h.week_start = w.week_start
),

windows as (
    select
        as_of_date,
        segment_key,
        channel,
        min(week_start) as window_start_date,
        count(distinct week_start) as weeks_in_window,
        sum(profile_weeks) as profile_weeks
    from histogram
    group by as_of_date, segment_key, channel
),

medians as (
    select as_of_date, segment_key, channel, min(messages_in_week) as current_median_cadence
    from (
        select
            as_of_date,
            segment_key,
            channel,
            messages_in_week,
            sum(profile_weeks) over (
                partition by as_of_date, segment_key, channel order by messages_in_week
                rows between unbounded preceding and current row
            ) as cumulative,
            sum(profile_weeks) over (partition by as_of_date, segment_key, channel) as total
        from (
            select as_of_date, segment_key, channel, messages_in_week, sum(profile_weeks) as profile_weeks
            from histogram
            group by as_of_date, segment_key, channel, messages_in_week
        )
    )
    where 2 * cumulative >= total
    group by as_of_date, segment_key, channel
),

buckets as (
    select * from (values
        ('0', 0, arrow_cast(null, 'Utf8'), 0),
        ('1', 1, '0', 1),
        ('2', 2, '1', 2),
        ('3', 3, '2', 3),
        ('4-5', 4, '3', 5),
        ('6-9', 5, '4-5', 9),
        ('10+', 6, '6-9', cast(null as int))
    ) as b(frequency_bucket, bucket_rank, previous_bucket, max_messages)
),

pooled as (
    select
        w.as_of_date,
        c.segment_key,
        c.channel,
        c.frequency_bucket,
        sum(c.profile_weeks) as profile_weeks,
        sum(c.messages) as messages,
        sum(c.unsubscribes) as unsubscribes,
        sum(c.spam_complaints) as spam_complaints,
        sum(cast(c.net_revenue as double)) as net_revenue
    from window_weeks as w
    join fct_cadence as c on c.week_start = w.week_start
    group by w.as_of_date, c.segment_key, c.channel, c.frequency_bucket
),

grid as (
    select
        k.as_of_date,
        k.segment_key,
        k.channel,
        b.frequency_bucket,
        b.bucket_rank,
        b.previous_bucket,
        b.max_messages,
        coalesce(p.profile_weeks, 0) as profile_weeks,
        coalesce(p.messages, 0) as messages,
        coalesce(p.unsubscribes, 0) as unsubscribes,
        coalesce(p.spam_complaints, 0) as spam_complaints,
        case when p.profile_weeks > 0 then cast(p.unsubscribes as double) / cast(p.profile_weeks as double) end
            as unsub_rate,
        case when p.profile_weeks > 0 then p.net_revenue / cast(p.profile_weeks as double) end as revenue_rate
    from buckets as b
    cross join windows as k
    left join pooled as p
        on p.as_of_date = k.as_of_date and p.segment_key = k.segment_key and p.channel = k.channel
        and p.frequency_bucket = b.frequency_bucket
),

latest_snapshots as (
    select a.as_of_date, max(s.snapshot_date) as snapshot_date
    from as_of_dates as a
    join (select distinct snapshot_date from fct_rfm_snapshot) as s on s.snapshot_date <= a.as_of_date
    group by a.as_of_date
),

segment_values as (
    select l.as_of_date, s.rfm_tier as segment_key, median(cast(b.net_revenue_l365d as double)) as median_revenue_12m
    from latest_snapshots as l
    join fct_rfm_snapshot as s on s.snapshot_date = l.snapshot_date
    join int_rfm_person_snapshots as b on b.snapshot_date = s.snapshot_date and b.person_key = s.person_key
    group by l.as_of_date, s.rfm_tier
),

valued as (
    select
        k.as_of_date,
        k.segment_key,
        k.channel,
        case
            when st.subscriber_value is not null then st.subscriber_value
            when k.segment_key = 'prospect' then 0.0
            else coalesce(v.median_revenue_12m, 0.0) * 0.2
        end as subscriber_value,
        case
            when st.subscriber_value is not null then 'config'
            else 'segment_median_12m_revenue_x_0.2'
        end as subscriber_value_source
    from settings as st
    cross join windows as k
    left join segment_values as v on v.as_of_date = k.as_of_date and v.segment_key = k.segment_key
),

checked as (
    select
        g.as_of_date,
        g.segment_key,
        g.channel,
        g.frequency_bucket,
        g.bucket_rank,
        case
            when g.profile_weeks < st.min_profile_weeks or prev.profile_weeks < st.min_profile_weeks
                then 'insufficient_data'
            when g.channel = 'email' and g.messages > 0
                and cast(g.spam_complaints as double) / cast(g.messages as double) >= st.max_spam_rate
                then 'spam'
            when one.unsub_rate > 0 and g.unsub_rate / one.unsub_rate > st.max_pressure_index then 'pressure'
            when g.revenue_rate - prev.revenue_rate <= (g.unsub_rate - prev.unsub_rate) * v.subscriber_value
                then 'marginal_value'
        end as failure
    from settings as st
    cross join grid as g
    join grid as prev
        on prev.as_of_date = g.as_of_date and prev.segment_key = g.segment_key and prev.channel = g.channel
        and prev.frequency_bucket = g.previous_bucket
    join grid as one
        on one.as_of_date = g.as_of_date and one.segment_key = g.segment_key and one.channel = g.channel
        and one.frequency_bucket = '1'
    join valued as v on v.as_of_date = g.as_of_date and v.segment_key = g.segment_key and v.channel = g.channel
),

first_failure as (
    select as_of_date, segment_key, channel, bucket_rank, frequency_bucket, failure
    from (
        select
            c.*,
            row_number() over (partition by as_of_date, segment_key, channel order by bucket_rank) as failure_rank
        from checked as c
        where failure is not null
    )
    where failure_rank = 1
),

decided as (
    select
        k.*,
        f.frequency_bucket as binding_bucket,
        coalesce(f.failure, 'none') as binding_constraint,
        coalesce(f.bucket_rank - 1, 6) as recommended_rank
    from windows as k
    left join first_failure as f
        on f.as_of_date = k.as_of_date and f.segment_key = k.segment_key and f.channel = k.channel
)

select
    d.as_of_date,
    d.segment_key,
    d.channel,
    d.window_start_date,
    cast(d.weeks_in_window as int) as weeks_in_window,
    cast(m.current_median_cadence as double) as current_median_cadence,
    b.frequency_bucket as recommended_max_cadence,
    cast(b.max_messages as int) as recommended_max_messages_per_week,
    d.binding_constraint,
    d.binding_bucket,
    cast(d.profile_weeks as bigint) as profile_weeks_behind,
    cast(coalesce(above.profile_weeks, 0) as bigint) as profile_weeks_above_recommended,
    v.subscriber_value,
    v.subscriber_value_source,
    '1.0.0' as model_version
from decided as d
join buckets as b on b.bucket_rank = d.recommended_rank
join medians as m on m.as_of_date = d.as_of_date and m.segment_key = d.segment_key and m.channel = d.channel
join valued as v on v.as_of_date = d.as_of_date and v.segment_key = d.segment_key and v.channel = d.channel
left join (
    select g.as_of_date, g.segment_key, g.channel, x.recommended_rank, sum(g.profile_weeks) as profile_weeks
    from grid as g
    join decided as x on x.as_of_date = g.as_of_date and x.segment_key = g.segment_key and x.channel = g.channel
    where g.bucket_rank > x.recommended_rank
    group by g.as_of_date, g.segment_key, g.channel, x.recommended_rank
) as above
    on above.as_of_date = d.as_of_date and above.segment_key = d.segment_key and above.channel = d.channel
order by d.as_of_date, d.segment_key, d.channel
