-- Send-time recommendation per as-of date x segment x channel (models.md 4.12), from the cells of
-- fct_send_time.
--
-- h0 (current habit) = the hour of week with the most deliveries (ties: the earlier hour);
-- h* = the hour with the highest posterior click rate among cells with sample_ok (ties: more
-- deliveries, then the earlier hour). h* is recommended when it differs from h0,
-- P(rate(h*) > rate(h0)) >= 0.90 and the relative uplift of the posterior means is >= 5 %;
-- P uses the normal approximation of both Beta posteriors:
-- Phi((m* - m0) / sqrt(v* + v0)), m = a / (a + b), v = a b / ((a + b)^2 (a + b + 1)).
-- Otherwise h0 stays, with reason insufficient_evidence (current_is_best when h* = h0).
with cells as (
    select
        as_of_date,
        segment_key,
        channel,
        hour_of_week,
        deliveries,
        sample_ok,
        posterior_click_rate,
        posterior_alpha * posterior_beta
            / ((posterior_alpha + posterior_beta) * (posterior_alpha + posterior_beta)
               * (posterior_alpha + posterior_beta + 1.0)) as posterior_variance
    from fct_send_time
),

ranked as (
    select
        c.*,
        row_number() over (
            partition by as_of_date, segment_key, channel order by deliveries desc, hour_of_week
        ) as habit_rank,
        case when sample_ok then row_number() over (
            partition by as_of_date, segment_key, channel
            order by case when sample_ok then 0 else 1 end, posterior_click_rate desc, deliveries desc, hour_of_week
        ) end as best_rank
    from cells as c
),

totals as (
    select
        as_of_date,
        segment_key,
        channel,
        sum(deliveries) as deliveries,
        sum(case when sample_ok then 1 else 0 end) as hours_sample_ok
    from cells
    group by as_of_date, segment_key, channel
),

compared as (
    select
        t.as_of_date,
        t.segment_key,
        t.channel,
        t.deliveries,
        t.hours_sample_ok,
        h0.hour_of_week as current_hour_of_week,
        h0.deliveries as current_deliveries,
        h0.posterior_click_rate as current_posterior_click_rate,
        hb.hour_of_week as best_hour_of_week,
        hb.deliveries as best_deliveries,
        hb.posterior_click_rate as best_posterior_click_rate,
        case
            when hb.hour_of_week is not null and hb.hour_of_week <> h0.hour_of_week
                then normal_cdf(
                    (hb.posterior_click_rate - h0.posterior_click_rate)
                    / sqrt(hb.posterior_variance + h0.posterior_variance)
                )
        end as prob_better,
        case
            when hb.hour_of_week is not null and h0.posterior_click_rate > 0
                then hb.posterior_click_rate / h0.posterior_click_rate - 1.0
        end as expected_relative_uplift
    from totals as t
    join ranked as h0
        on h0.as_of_date = t.as_of_date and h0.segment_key = t.segment_key and h0.channel = t.channel
        and h0.habit_rank = 1
    left join ranked as hb
        on hb.as_of_date = t.as_of_date and hb.segment_key = t.segment_key and hb.channel = t.channel
        and hb.best_rank = 1
),

decided as (
    select
        c.*,
        c.best_hour_of_week is not null
            and c.best_hour_of_week <> c.current_hour_of_week
            and c.prob_better >= 0.90
            and c.expected_relative_uplift >= 0.05 as switch_hour
    from compared as c
)

select
    as_of_date,
    segment_key,
    channel,
    cast(deliveries as bigint) as deliveries,
    cast(hours_sample_ok as bigint) as hours_sample_ok,
    current_hour_of_week,
    current_posterior_click_rate,
    best_hour_of_week,
    best_posterior_click_rate,
    case when switch_hour then best_hour_of_week else current_hour_of_week end as recommended_hour_of_week,
    cast(case when switch_hour then best_hour_of_week else current_hour_of_week end % 24 as int)
        as recommended_local_hour,
    case cast(case when switch_hour then best_hour_of_week else current_hour_of_week end / 24 as int)
        when 0 then 'Monday'
        when 1 then 'Tuesday'
        when 2 then 'Wednesday'
        when 3 then 'Thursday'
        when 4 then 'Friday'
        when 5 then 'Saturday'
        else 'Sunday'
    end as recommended_weekday,
    cast(case when switch_hour then best_deliveries else current_deliveries end as bigint)
        as deliveries_behind_recommendation,
    cast(current_deliveries as bigint) as deliveries_behind_current,
    prob_better,
    expected_relative_uplift,
    case
        when switch_hour then 'better_hour'
        when best_hour_of_week = current_hour_of_week then 'current_is_best'
        else 'insufficient_evidence'
    end as reason,
    '1.0.0' as model_version
from decided
order by as_of_date, segment_key, channel
