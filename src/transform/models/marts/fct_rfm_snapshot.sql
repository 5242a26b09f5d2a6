-- One row per person x month-end snapshot (models.md 4.8). Scored base: persons with a
-- qualifying order in the lookback window; R and M quintiles from dim_rfm_cutpoints
-- (R = 5 - #{r_i < recency_days}: ties go to the better bucket; M = 1 + #{m_i < monetary}: ties go
-- to the lower bucket); F fixed: 1, 2, 3, 4-5 -> 4, >= 6 -> 5; FM = floor((F + M + 1) / 2); tier
-- from the R x FM grid. Persons with qualifying orders but none in the window are Lapsed with
-- NULL scores.
with cut as (
    select
        snapshot_date,
        max(case when dimension = 'recency' then p20 end) as r1,
        max(case when dimension = 'recency' then p40 end) as r2,
        max(case when dimension = 'recency' then p60 end) as r3,
        max(case when dimension = 'recency' then p80 end) as r4,
        max(case when dimension = 'monetary' then p20 end) as m1,
        max(case when dimension = 'monetary' then p40 end) as m2,
        max(case when dimension = 'monetary' then p60 end) as m3,
        max(case when dimension = 'monetary' then p80 end) as m4
    from dim_rfm_cutpoints
    group by snapshot_date
),

scores as (
    select
        b.*,
        case when b.is_scored then
            5 - (case when c.r1 < cast(b.recency_days as double) then 1 else 0 end)
              - (case when c.r2 < cast(b.recency_days as double) then 1 else 0 end)
              - (case when c.r3 < cast(b.recency_days as double) then 1 else 0 end)
              - (case when c.r4 < cast(b.recency_days as double) then 1 else 0 end)
        end as r_score,
        case when b.is_scored then
            case when b.frequency >= 6 then 5 when b.frequency >= 4 then 4 else b.frequency end
        end as f_score,
        case when b.is_scored then
            1 + (case when c.m1 < cast(b.monetary as double) then 1 else 0 end)
              + (case when c.m2 < cast(b.monetary as double) then 1 else 0 end)
              + (case when c.m3 < cast(b.monetary as double) then 1 else 0 end)
              + (case when c.m4 < cast(b.monetary as double) then 1 else 0 end)
        end as m_score
    from cut c
    right join int_rfm_person_snapshots b on c.snapshot_date = b.snapshot_date
),

tiers as (
    select
        *,
        (f_score + m_score + 1) / 2 as fm_score
    from scores
),

named as (
    select
        *,
        case
            when not is_scored then 'Lapsed'
            when r_score = 5 and fm_score = 1 then 'New'
            when r_score = 5 and fm_score in (2, 3) then 'Potential Loyalist'
            when r_score = 5 then 'Champion'
            when r_score = 4 and fm_score = 1 then 'Promising'
            when r_score = 4 and fm_score in (2, 3) then 'Potential Loyalist'
            when r_score = 4 and fm_score = 4 then 'Loyal'
            when r_score = 4 then 'Champion'
            when r_score = 3 and fm_score in (1, 2) then 'About to Sleep'
            when r_score = 3 and fm_score = 3 then 'Needs Attention'
            when r_score = 3 then 'Loyal'
            when r_score = 2 and fm_score in (1, 2) then 'Hibernating'
            when r_score = 2 and fm_score in (3, 4) then 'At Risk'
            when r_score = 2 then 'Cannot Lose'
            when fm_score in (1, 2) then 'Lost'
            when fm_score = 3 then 'At Risk'
            else 'Cannot Lose'
        end as rfm_tier
    from tiers
)

select
    snapshot_date,
    person_key,
    recency_days,
    frequency,
    monetary,
    cast(r_score as int) as r_score,
    cast(f_score as int) as f_score,
    cast(m_score as int) as m_score,
    cast(fm_score as int) as fm_score,
    case when is_scored then
        arrow_cast(concat(r_score, f_score, m_score), 'Utf8')
    end as rfm_code,
    rfm_tier,
    cast(case rfm_tier
        when 'Champion' then 1
        when 'Loyal' then 2
        when 'Potential Loyalist' then 3
        when 'New' then 4
        when 'Promising' then 5
        when 'Needs Attention' then 6
        when 'About to Sleep' then 7
        when 'Cannot Lose' then 8
        when 'At Risk' then 9
        when 'Hibernating' then 10
        when 'Lost' then 11
        else 12
    end as int) as tier_rank,
    acquisition_cohort_month,
    acquisition_channel_group,
    first_order_offer_type,
    is_left_censored,
    'per_snapshot' as cutpoint_policy,
    '1.0.0' as model_version
from named
order by snapshot_date, person_key
