-- Channels per messaging platform (issue 7's intake inventory, with dim_flows and dim_audiences):
-- one row per platform x channel the account has flows, campaigns or sends on. No account record
-- is landed (the connectors read one account per job), so the platform stands for its account.
-- Sends are int_message_period_metrics' monthly rows (channel 'all' left out, it repeats them).
with flow_channels as (
    select f.platform, c.channel, f.status
    from dim_flows as f
    cross join (select 'email' as channel union all select 'sms' union all select 'push' union all select 'whatsapp') as c
    where array_has(f.channels, c.channel)
),

flows as (
    select
        platform,
        channel,
        count(*) as flows,
        sum(case when status = 'live' then 1 else 0 end) as live_flows
    from flow_channels
    group by 1, 2
),

campaigns as (
    select 'klaviyo' as platform, m.channel, count(distinct m.campaign_id) as campaigns
    from stg_klaviyo__campaign_messages as m
    where m.channel is not null
    group by 1, 2
),

sends as (
    select
        platform,
        channel,
        sum(case when message_kind = 'flow' then sends else 0 end) as flow_sends,
        sum(case when message_kind = 'campaign' then sends else 0 end) as campaign_sends,
        min(period_start) as first_send_month,
        max(period_start) as last_send_month
    from int_message_period_metrics
    where period_grain = 'month' and channel <> 'all' and sends > 0
    group by 1, 2
),

keys as (
    select platform, channel from flows
    union
    select platform, channel from campaigns
    union
    select platform, channel from sends
),

final as (
    select
        k.platform,
        k.channel,
        coalesce(f.flows, 0) as flows,
        coalesce(f.live_flows, 0) as live_flows,
        coalesce(c.campaigns, 0) as campaigns,
        coalesce(s.flow_sends, 0) as flow_sends,
        coalesce(s.campaign_sends, 0) as campaign_sends,
        s.first_send_month,
        s.last_send_month,
        '1.0.0' as model_version
    from keys as k
    left join flows as f on k.platform = f.platform and k.channel = f.channel
    left join campaigns as c on k.platform = c.platform and k.channel = c.channel
    left join sends as s on k.platform = s.platform and k.channel = s.channel
)

select * from final
