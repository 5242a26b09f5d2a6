-- Dirty to-snapshot dates of fct_rfm_transitions: every dirty snapshot (see rfm.sql) and, since a
-- pair also changes when its from-snapshot does, the next snapshot after each dirty one and the
-- next quarter-end snapshot after it.
with changed as (
    (select * from int_rfm_person_snapshots except select * from prev_int_rfm_person_snapshots)
    union all
    (select * from prev_int_rfm_person_snapshots except select * from int_rfm_person_snapshots)
),
dirty as (
    select distinct snapshot_date from changed
),
snaps as (
    select distinct snapshot_date from int_rfm_person_snapshots
)
select snapshot_date from dirty
union
select min(s.snapshot_date) from dirty as d join snaps as s on s.snapshot_date > d.snapshot_date
group by d.snapshot_date
union
select min(s.snapshot_date) from dirty as d join snaps as s on s.snapshot_date > d.snapshot_date
where date_part('month', s.snapshot_date) in (3, 6, 9, 12)
group by d.snapshot_date
