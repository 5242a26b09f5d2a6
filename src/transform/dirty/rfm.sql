-- Dirty snapshot dates of the RFM marts (models.md 5: "new month end; restatements within the
-- refund horizon"): the snapshot dates where any row of the per-person base
-- int_rfm_person_snapshots (rebuilt in full every run) differs from the previous version's, in
-- either direction. Cut points, tiers and the segment matrix of a snapshot depend only on that
-- snapshot's base.
with changed as (
    (select * from int_rfm_person_snapshots except select * from prev_int_rfm_person_snapshots)
    union all
    (select * from prev_int_rfm_person_snapshots except select * from int_rfm_person_snapshots)
)
select distinct snapshot_date from changed
