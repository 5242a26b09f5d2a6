-- Tier movement between snapshots (models.md 4.9): month pairs are consecutive month-end
-- snapshots, quarter pairs consecutive quarter-end snapshots. Every person of the to-snapshot is
-- counted once; a person absent from the from-snapshot (first qualifying order in between) comes
-- from not_yet_customer. A person of the from-snapshot is always in the to-snapshot (Lapsed is a
-- state). Snapshots are rebuilt from current identities, so merged persons are already counted
-- once under their surviving key.
with snaps as (
    select distinct snapshot_date from fct_rfm_snapshot
),

pairs as (
    select period_grain, from_snapshot_date, to_snapshot_date
    from (
        select
            'month' as period_grain,
            snapshot_date as from_snapshot_date,
            lead(snapshot_date) over (order by snapshot_date) as to_snapshot_date
        from snaps
        union all
        select
            'quarter' as period_grain,
            snapshot_date as from_snapshot_date,
            lead(snapshot_date) over (order by snapshot_date) as to_snapshot_date
        from snaps
        where date_part('month', snapshot_date) in (3, 6, 9, 12)
    )
    where to_snapshot_date is not null
),

moves as (
    select
        p.period_grain,
        p.from_snapshot_date,
        p.to_snapshot_date,
        t.person_key,
        coalesce(f.rfm_tier, 'not_yet_customer') as from_tier,
        f.tier_rank as from_rank,
        t.rfm_tier as to_tier,
        t.tier_rank as to_rank
    from pairs p
    join fct_rfm_snapshot t on t.snapshot_date = p.to_snapshot_date
    left join fct_rfm_snapshot f on f.snapshot_date = p.from_snapshot_date and f.person_key = t.person_key
),

revenue as (
    select
        m.period_grain,
        m.from_snapshot_date,
        m.to_snapshot_date,
        m.person_key,
        sum(o.net_revenue) as net_revenue
    from int_cohort_person_orders o
    join moves m
        on o.person_key = m.person_key
        and o.order_date > m.from_snapshot_date
        and o.order_date <= m.to_snapshot_date
    group by 1, 2, 3, 4
),

cells as (
    select
        m.period_grain,
        m.from_snapshot_date,
        m.to_snapshot_date,
        m.from_tier,
        m.to_tier,
        max(m.from_rank) as from_rank,
        max(m.to_rank) as to_rank,
        count(*) as customers,
        sum(coalesce(r.net_revenue, 0)) as net_revenue_between
    from revenue r
    right join moves m
        on r.period_grain = m.period_grain
        and r.from_snapshot_date = m.from_snapshot_date
        and r.to_snapshot_date = m.to_snapshot_date
        and r.person_key = m.person_key
    group by 1, 2, 3, 4, 5
)

select
    period_grain,
    from_snapshot_date,
    to_snapshot_date,
    from_tier,
    to_tier,
    cast(customers as bigint) as customers,
    cast(customers as double)
        / cast(sum(customers) over (partition by period_grain, from_snapshot_date, to_snapshot_date, from_tier) as double)
        as share_of_from,
    case
        when from_rank is null then 'up'
        when to_rank < from_rank then 'up'
        when to_rank = from_rank then 'same'
        else 'down'
    end as direction,
    cast(net_revenue_between as decimal(18, 4)) as net_revenue_between,
    '1.0.0' as model_version
from cells
order by period_grain, from_snapshot_date, to_snapshot_date, from_tier, to_tier
