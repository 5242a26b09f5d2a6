-- Dirty cohorts of fct_cohort_retention (models.md 5: cohorts of persons with new or changed
-- orders or changed acquisition): the cohort months of int_cohort_person_orders rows that differ
-- from the previous version's, in either direction. Every cohort is dirty when the data end
-- moves to another month or onto a month end: right-censoring and is_complete_month of every
-- cohort's latest cells depend on it.
with changed as (
    (select * from int_cohort_person_orders except select * from prev_int_cohort_person_orders)
    union all
    (select * from prev_int_cohort_person_orders except select * from int_cohort_person_orders)
),
ends as (
    select
        (select max(order_date) from fct_orders) as new_end,
        (select max(order_date) from prev_fct_orders) as old_end
),
moved as (
    select (new_end is distinct from old_end)
        and (
            (date_trunc('month', new_end) is distinct from date_trunc('month', old_end))
            or (date_part('month', new_end + interval '1 day') <> date_part('month', new_end))
        ) as all_cohorts
    from ends
)
select distinct acquisition_cohort_month from changed
union
select distinct acquisition_cohort_month from int_cohort_person_orders, moved where moved.all_cohorts
union
select distinct cohort_month from prev_fct_cohort_retention, moved where moved.all_cohorts
