-- One row per flow message, channel and account-local send day, from the Reporting API's daily
-- flow series; the last 14 days are restated every run, so the copy landed last wins.
with source as (
    select * from raw_klaviyo__flow_series_report
),

ranked as (
    select
        *,
        row_number() over (
            partition by flow_message_id, send_channel, date_text order by _landed_at desc, _run_id desc
        ) as copy_rank
    from source
),

final as (
    select
        flow_id,
        flow_message_id,
        case send_channel when 'push-notification' then 'push' else send_channel end as channel,
        cast(substr(date_text, 1, 10) as date) as send_date,
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
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
