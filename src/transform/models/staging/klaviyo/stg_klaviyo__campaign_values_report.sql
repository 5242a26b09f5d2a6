-- One row per campaign message and channel: the latest landed campaign values report that
-- covered its send date (values accrue for days after a send; the freshest report wins).
with source as (
    select * from raw_klaviyo__campaign_values_report
),

ranked as (
    select
        *,
        row_number() over (
            partition by campaign_message_id, send_channel order by _landed_at desc, timeframe_end desc, _run_id desc
        ) as copy_rank
    from source
),

final as (
    select
        campaign_id,
        campaign_message_id,
        case send_channel when 'push-notification' then 'push' else send_channel end as channel,
        recipients,
        delivered,
        opens_unique,
        clicks_unique,
        unsubscribes,
        bounced,
        spam_complaints,
        conversions,
        conversion_uniques,
        conversion_value as conversion_value_amount,
        timeframe_start as reported_from,
        timeframe_end as reported_to,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
