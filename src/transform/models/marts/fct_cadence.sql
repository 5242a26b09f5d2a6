-- Weekly cadence (models.md 4.13): week x segment x channel x frequency bucket of the
-- profile-weeks of int_cadence_histogram (persons reachable on the channel when the week starts;
-- see there). Buckets: 0, 1, 2, 3, 4-5, 6-9, 10+ marketing messages delivered in the week.
-- pressure_index divides a bucket's unsubscribes per profile-week by bucket 1's in the same week,
-- segment and channel (NULL when bucket 1 has no profile-week or no unsubscribe).
with bucketed as (
    select
        week_start,
        segment_key,
        channel,
        case
            when messages_in_week <= 3 then arrow_cast(cast(messages_in_week as varchar), 'Utf8')
            when messages_in_week <= 5 then '4-5'
            when messages_in_week <= 9 then '6-9'
            else '10+'
        end as frequency_bucket,
        case
            when messages_in_week <= 3 then messages_in_week
            when messages_in_week <= 5 then 4
            when messages_in_week <= 9 then 6
            else 10
        end as bucket_min_messages,
        profile_weeks,
        messages,
        unsubscribes,
        spam_complaints,
        clicked_profile_weeks,
        net_revenue,
        last_click_revenue
    from int_cadence_histogram
),

cells as (
    select
        week_start,
        segment_key,
        channel,
        frequency_bucket,
        min(bucket_min_messages) as bucket_min_messages,
        sum(profile_weeks) as profile_weeks,
        sum(messages) as messages,
        sum(unsubscribes) as unsubscribes,
        sum(spam_complaints) as spam_complaints,
        sum(clicked_profile_weeks) as clicked_profile_weeks,
        sum(net_revenue) as net_revenue,
        sum(last_click_revenue) as last_click_revenue
    from bucketed
    group by week_start, segment_key, channel, frequency_bucket
),

rated as (
    select
        c.*,
        cast(c.unsubscribes as double) / cast(c.profile_weeks as double) as unsub_rate_per_profile_week,
        max(case when c.frequency_bucket = '1' then cast(c.unsubscribes as double) / cast(c.profile_weeks as double) end)
            over (partition by c.week_start, c.segment_key, c.channel) as bucket_1_unsub_rate
    from cells as c
)

select
    week_start,
    cast(week_start + interval '6 days' as date) as week_end,
    segment_key,
    channel,
    frequency_bucket,
    cast(bucket_min_messages as int) as bucket_min_messages,
    cast(profile_weeks as bigint) as profile_weeks,
    cast(messages as bigint) as messages,
    cast(messages as double) / cast(profile_weeks as double) as avg_messages_per_profile,
    cast(unsubscribes as bigint) as unsubscribes,
    unsub_rate_per_profile_week,
    case when messages > 0 then cast(unsubscribes as double) / cast(messages as double) end as unsub_rate_per_message,
    case when channel = 'email' and messages > 0 then cast(spam_complaints as double) / cast(messages as double) end
        as spam_complaint_rate_per_message,
    cast(spam_complaints as bigint) as spam_complaints,
    cast(clicked_profile_weeks as double) / cast(profile_weeks as double) as click_rate_per_profile_week,
    cast(net_revenue as decimal(18, 4)) as net_revenue,
    cast(round(cast(net_revenue as decimal(38, 10)) / profile_weeks, 4) as decimal(18, 4)) as revenue_per_profile_week,
    cast(last_click_revenue as decimal(18, 4)) as last_click_revenue,
    cast(round(cast(last_click_revenue as decimal(38, 10)) / profile_weeks, 4) as decimal(18, 4))
        as last_click_revenue_per_profile_week,
    case when bucket_1_unsub_rate > 0 then unsub_rate_per_profile_week / bucket_1_unsub_rate end as pressure_index,
    '1.0.0' as model_version
from rated
order by week_start, segment_key, channel, bucket_min_messages
