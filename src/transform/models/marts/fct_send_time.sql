-- Send-time performance (models.md 4.12): as-of date x segment x channel x recipient-local hour
-- of week, over the 90 local days ending on the as-of date, campaign messages only (a flow's send
-- time is its trigger's, which says nothing about preferred hours).
--
-- * As-of dates: every local month end from the first message event's month to the last data day
--   (the latest event_date in fct_message_events, or cfg_settings as_of when earlier), plus that
--   last day itself. The window is [as_of_date - 89, as_of_date]; window_is_complete tells
--   whether it starts on or after the first data day.
-- * A delivery is a campaign event of type delivered (Klaviyo Received Email / Received SMS),
--   placed in the hour of week of its own local_hour_of_week (recipient-local time).
-- * Segment: the recipient's rfm_tier in fct_rfm_snapshot at the last month end before the
--   delivery's date (the tier the brand could target when it sent), 'prospect' when the person has
--   no row there (no qualifying order yet) or is unresolved.
-- * Outcomes of a delivery, counted when they happen on or before the as-of date: a non-bot click
--   on the same campaign and channel by the same recipient within 24 h (unique per delivery); a
--   non-machine open likewise (email); an unsubscribe on the channel within 24 h whose latest
--   preceding delivery on that channel (any flow or campaign, within 24 h) is this one (the
--   fallback rule of int_message_period_metrics: Klaviyo's unsubscribes name no message); a
--   qualifying order of the person within 24 h of one of the delivery's clicks.
-- * Posterior (kappa = 200): prior mean mu = the segment x channel click rate over all hours of
--   the as-of window; Beta(clicks + kappa mu, deliveries - clicks + kappa (1 - mu)).
with settings as (
    select max(case when key = 'as_of' then cast(trim(value) as date) end) as as_of
    from cfg_settings
),

bounds as (
    select
        min(e.event_date) as first_day,
        case
            when max(s.as_of) is not null and max(s.as_of) < max(e.event_date) then max(s.as_of)
            else max(e.event_date)
        end as last_day
    from settings as s
    cross join fct_message_events as e
    where e.event_date is not null
),

month_starts as (
    select unnest(generate_series(
        cast(date_trunc('month', first_day) as date), cast(date_trunc('month', last_day) as date), interval '1 month'
    )) as month_start
    from bounds
    where last_day is not null
),

as_of_dates as (
    select distinct as_of_date
    from (
        select cast(m.month_start + interval '1 month' - interval '1 day' as date) as as_of_date
        from month_starts as m
        cross join bounds as b
        where cast(m.month_start + interval '1 month' - interval '1 day' as date) < b.last_day
        union all
        select last_day as as_of_date from bounds where last_day is not null
    )
),

-- Each local day in the window of each as-of date: an equality join puts deliveries in windows.
window_days as (
    select as_of_date, unnest(generate_series(
        cast(as_of_date - interval '89 days' as date), as_of_date, interval '1 day'
    )) as day
    from as_of_dates
),

campaign_events as (
    select
        event_key,
        platform,
        channel,
        event_type,
        campaign_id,
        person_key,
        coalesce(person_key, 'profile|' || platform || '|' || platform_profile_id) as recipient_key,
        occurred_at,
        event_date,
        local_hour_of_week
    from fct_message_events
    where message_kind = 'campaign'
      and event_date is not null
      and (
          event_type = 'delivered'
          or (event_type = 'clicked' and not coalesce(is_bot_click, false))
          or (event_type = 'opened' and not coalesce(is_machine_open, false))
      )
),

deliveries as (
    select event_key as delivery_key, channel, campaign_id, person_key, recipient_key, occurred_at, event_date,
           local_hour_of_week as hour_of_week
    from campaign_events
    where event_type = 'delivered' and local_hour_of_week is not null and recipient_key is not null
),

segmented as (
    select d.*, coalesce(s.rfm_tier, 'prospect') as segment_key
    from fct_rfm_snapshot as s
    right join deliveries as d
        on s.person_key = d.person_key
        and s.snapshot_date = cast(date_trunc('month', d.event_date) - interval '1 day' as date)
),

-- Responses (clicks, opens) joined to the delivery they answer.
responses as (
    select d.delivery_key, d.person_key, r.event_type, r.occurred_at, r.event_date
    from campaign_events as r
    join deliveries as d
        on d.recipient_key = r.recipient_key
        and d.channel = r.channel
        and d.campaign_id = r.campaign_id
        and r.occurred_at >= d.occurred_at
        and r.occurred_at <= d.occurred_at + interval '24 hours'
    where r.event_type in ('clicked', 'opened')
),

delivery_responses as (
    select
        delivery_key,
        min(case when event_type = 'clicked' then event_date end) as click_date,
        min(case when event_type = 'opened' then event_date end) as open_date
    from responses
    group by delivery_key
),

unsubscribes as (
    select event_key, channel, coalesce(person_key, 'profile|' || platform || '|' || platform_profile_id) as recipient_key,
           occurred_at, event_date
    from fct_message_events
    where event_type = 'unsubscribed' and event_date is not null
),

all_deliveries as (
    select event_key, channel, message_kind,
           coalesce(person_key, 'profile|' || platform || '|' || platform_profile_id) as recipient_key, occurred_at
    from fct_message_events
    where event_type = 'delivered'
),

unsubscribe_last_delivery as (
    select
        u.event_date,
        d.event_key as delivery_key,
        d.message_kind,
        row_number() over (partition by u.event_key order by d.occurred_at desc, d.event_key) as delivery_rank
    from unsubscribes as u
    join all_deliveries as d
        on d.recipient_key = u.recipient_key
        and d.channel = u.channel
        and d.occurred_at <= u.occurred_at
        and d.occurred_at >= u.occurred_at - interval '24 hours'
),

delivery_unsubscribes as (
    select delivery_key, min(event_date) as unsubscribe_date
    from unsubscribe_last_delivery
    where delivery_rank = 1 and message_kind = 'campaign'
    group by delivery_key
),

click_orders as (
    select distinct r.delivery_key, o.order_key, o.order_date
    from fct_orders as o
    join responses as r
        on r.person_key = o.person_key
        and o.order_at >= r.occurred_at
        and o.order_at <= r.occurred_at + interval '24 hours'
    where o.is_qualifying and r.event_type = 'clicked' and o.order_date is not null
),

in_window as (
    select
        w.as_of_date,
        s.segment_key,
        s.channel,
        s.hour_of_week,
        s.delivery_key,
        s.recipient_key,
        r.click_date is not null and r.click_date <= w.as_of_date as clicked,
        r.open_date is not null and r.open_date <= w.as_of_date as opened,
        u.unsubscribe_date is not null and u.unsubscribe_date <= w.as_of_date as unsubscribed
    from window_days as w
    join segmented as s on s.event_date = w.day
    left join delivery_responses as r on r.delivery_key = s.delivery_key
    left join delivery_unsubscribes as u on u.delivery_key = s.delivery_key
),

cells as (
    select
        as_of_date,
        segment_key,
        channel,
        hour_of_week,
        count(*) as deliveries,
        count(distinct recipient_key) as recipients,
        sum(case when clicked then 1 else 0 end) as unique_clicks,
        sum(case when opened then 1 else 0 end) as opens,
        sum(case when unsubscribed then 1 else 0 end) as unsubscribes
    from in_window
    group by as_of_date, segment_key, channel, hour_of_week
),

cell_orders as (
    select w.as_of_date, w.segment_key, w.channel, w.hour_of_week, count(distinct o.order_key) as orders_24h
    from click_orders as o
    join in_window as w on w.delivery_key = o.delivery_key
    where o.order_date <= w.as_of_date and w.clicked
    group by w.as_of_date, w.segment_key, w.channel, w.hour_of_week
),

priors as (
    select
        as_of_date,
        segment_key,
        channel,
        cast(sum(unique_clicks) as double) / cast(sum(deliveries) as double) as prior_click_rate
    from cells
    group by as_of_date, segment_key, channel
),

posteriors as (
    select
        c.*,
        coalesce(o.orders_24h, 0) as orders_24h,
        p.prior_click_rate,
        cast(c.unique_clicks as double) + 200.0 * p.prior_click_rate as posterior_alpha,
        cast(c.deliveries - c.unique_clicks as double) + 200.0 * (1.0 - p.prior_click_rate) as posterior_beta
    from cells as c
    join priors as p on p.as_of_date = c.as_of_date and p.segment_key = c.segment_key and p.channel = c.channel
    left join cell_orders as o
        on o.as_of_date = c.as_of_date
        and o.segment_key = c.segment_key
        and o.channel = c.channel
        and o.hour_of_week = c.hour_of_week
)

select
    p.as_of_date,
    cast(p.as_of_date - interval '89 days' as date) as window_start_date,
    cast(p.as_of_date - interval '89 days' as date) >= b.first_day as window_is_complete,
    p.segment_key,
    p.channel,
    p.hour_of_week,
    cast(p.deliveries as bigint) as deliveries,
    cast(p.recipients as bigint) as recipients,
    cast(p.unique_clicks as bigint) as unique_clicks,
    cast(p.unique_clicks as double) / cast(p.deliveries as double) as click_rate,
    case when p.channel = 'email' then cast(p.opens as double) / cast(p.deliveries as double) end
        as open_rate_non_machine,
    cast(p.orders_24h as bigint) as orders_24h,
    cast(p.unsubscribes as bigint) as unsubscribes,
    cast(p.unsubscribes as double) / cast(p.deliveries as double) as unsub_rate,
    p.prior_click_rate,
    p.posterior_alpha,
    p.posterior_beta,
    p.posterior_alpha / (p.posterior_alpha + p.posterior_beta) as posterior_click_rate,
    beta_quantile(0.05, p.posterior_alpha, p.posterior_beta) as posterior_ci_low,
    beta_quantile(0.95, p.posterior_alpha, p.posterior_beta) as posterior_ci_high,
    p.deliveries >= 300 as sample_ok,
    '1.0.0' as model_version
from bounds as b
cross join posteriors as p
order by p.as_of_date, p.segment_key, p.channel, p.hour_of_week
