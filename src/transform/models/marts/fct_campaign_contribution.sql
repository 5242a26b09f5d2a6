-- One row per campaign x channel (and 'all') x period (month, ISO week): what a campaign sent and
-- what last-click, platform-style and platform-reported attribution credit it, in the layout of
-- fct_flow_contribution (models.md 4.6). No lift columns: campaigns have no holdout here.
-- Message metrics are by event date, last-click revenue by order date, as for flows.
with metrics as (
    select *
    from int_message_period_metrics
    where message_kind = 'campaign'
),

touches as (
    select lc_subject_key as subject_key, lc_channel as channel, order_date, net_revenue, gross_margin,
           true as is_last_click
    from int_order_last_click
    where lc_message_kind = 'campaign'
    union all
    select ps_subject_key, ps_channel, order_date, net_revenue, gross_margin, false
    from int_order_last_click
    where ps_message_kind = 'campaign'
),

touch_scopes as (
    select subject_key, channel, order_date, net_revenue, gross_margin, is_last_click from touches
    union all
    select subject_key, 'all', order_date, net_revenue, gross_margin, is_last_click from touches
),

grains as (
    select 'month' as period_grain
    union all
    select 'week'
),

credited as (
    select
        t.subject_key,
        t.channel,
        g.period_grain,
        case
            when g.period_grain = 'month' then cast(date_trunc('month', t.order_date) as date)
            else cast(date_trunc('week', t.order_date) as date)
        end as period_start,
        count(case when t.is_last_click then 1 end) as last_click_orders,
        cast(coalesce(sum(case when t.is_last_click then t.net_revenue end), 0) as decimal(18, 4))
            as last_click_revenue,
        cast(coalesce(sum(case when t.is_last_click then t.gross_margin end), 0) as decimal(18, 4))
            as last_click_gross_margin,
        cast(coalesce(sum(case when not t.is_last_click then t.net_revenue end), 0) as decimal(18, 4))
            as platform_style_revenue
    -- The two-row side first: DataFusion collects a cross join's left input.
    from grains as g
    cross join touch_scopes as t
    group by 1, 2, 3, 4
),

keys as (
    select subject_key, channel, period_grain, period_start from metrics
    union
    select subject_key, channel, period_grain, period_start from credited
),

campaign_ids as (
    select distinct subject_key, platform, subject_id from int_message_period_metrics where message_kind = 'campaign'
),

final as (
    select
        k.subject_key as campaign_key,
        coalesce(m.platform, ci.platform) as platform,
        coalesce(m.subject_id, ci.subject_id) as campaign_id,
        c.campaign_name,
        k.channel,
        k.period_grain,
        k.period_start,
        case
            when k.period_grain = 'month' then cast(k.period_start + interval '1 month' - interval '1 day' as date)
            else cast(k.period_start + interval '6 days' as date)
        end as period_end,
        coalesce(m.sends, 0) as sends,
        coalesce(m.delivered, 0) as delivered,
        coalesce(m.recipients, 0) as recipients,
        coalesce(m.unique_clickers, 0) as unique_clickers,
        coalesce(m.clicks, 0) as clicks,
        coalesce(m.unsubscribes, 0) as unsubscribes,
        coalesce(m.spam_complaints, 0) as spam_complaints,
        coalesce(m.bounces, 0) as bounces,
        m.click_rate,
        m.unsubscribe_rate,
        coalesce(m.sms_segments, 0) as sms_segments,
        m.channel_cost,
        coalesce(cr.last_click_orders, 0) as last_click_orders,
        coalesce(cr.last_click_revenue, cast(0 as decimal(18, 4))) as last_click_revenue,
        coalesce(cr.last_click_gross_margin, cast(0 as decimal(18, 4))) as last_click_gross_margin,
        coalesce(cr.platform_style_revenue, cast(0 as decimal(18, 4))) as platform_style_revenue,
        m.platform_reported_revenue,
        '1.0.0' as model_version
    from keys as k
    left join metrics as m
        on m.subject_key = k.subject_key and m.channel = k.channel and m.period_grain = k.period_grain
        and m.period_start = k.period_start
    left join credited as cr
        on cr.subject_key = k.subject_key and cr.channel = k.channel and cr.period_grain = k.period_grain
        and cr.period_start = k.period_start
    left join campaign_ids as ci on ci.subject_key = k.subject_key
    left join stg_klaviyo__campaigns as c
        on coalesce(m.platform, ci.platform) = 'klaviyo' and c.campaign_id = coalesce(m.subject_id, ci.subject_id)
)

select * from final
order by campaign_key, channel, period_grain, period_start
