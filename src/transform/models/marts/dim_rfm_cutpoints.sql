-- RFM cut points per snapshot (models.md 4.8): continuous percentiles 20/40/60/80 (linear
-- interpolation, the percentile_cont definition) of recency_days and monetary over each
-- snapshot's scored base, policy per_snapshot. Exact by ranking: for n sorted values x_0..x_{n-1}
-- and percentile p (in %), h = p(n-1)/100, lo = floor(h): x_lo + (x_lo+1 - x_lo)(h - lo), with lo
-- and the fraction from integer arithmetic. Not DataFusion's percentile_cont: it returns an
-- integer column's percentile as an integer (140.2 -> 140), derives the rank from a float product
-- and truncates the weight to 6 decimals.
with base as (
    select snapshot_date, 'recency' as dimension, cast(recency_days as double) as v
    from int_rfm_person_snapshots
    where is_scored
    union all
    select snapshot_date, 'monetary' as dimension, cast(monetary as double) as v
    from int_rfm_person_snapshots
    where is_scored
),

sorted as (
    select snapshot_date, dimension, array_agg(v order by v) as xs, count(*) as n
    from base
    group by snapshot_date, dimension
),

positions as (
    select
        s.snapshot_date,
        s.dimension,
        s.xs,
        s.n,
        p.p,
        (p.p * (s.n - 1)) / 100 as lo,
        (p.p * (s.n - 1)) % 100 as rem
    from sorted s
    cross join (select cast(column1 as bigint) as p from (values (20), (40), (60), (80))) p
),

-- Arrays are 1-based: x_lo is element lo + 1.
cuts as (
    select
        snapshot_date,
        dimension,
        n,
        p,
        case
            when rem = 0 then array_element(xs, lo + 1)
            else array_element(xs, lo + 1)
                + (array_element(xs, lo + 2) - array_element(xs, lo + 1)) * (cast(rem as double) / 100.0)
        end as cut
    from positions
)

select
    snapshot_date,
    dimension,
    max(case when p = 20 then cut end) as p20,
    max(case when p = 40 then cut end) as p40,
    max(case when p = 60 then cut end) as p60,
    max(case when p = 80 then cut end) as p80,
    cast(max(n) as bigint) as scored_base_size,
    'per_snapshot' as cutpoint_policy,
    '1.0.0' as model_version
from cuts
group by snapshot_date, dimension
order by snapshot_date, dimension
