-- One row per Postscript message (the warehouse push's fct_messages with its dim_messages row):
-- outbound sends and inbound replies. Both tables are re-unloaded with corrections, so each key
-- keeps its latest `_updated_at`, then its latest landing. Segments are computed from the body
-- (Postscript's push carries the text, not the billed count; models.md 4.4). Automations are
-- Postscript's flows: `flow_id` is the automation's name (`type_name`), the only name the push
-- gives it.
with messages as (
    select *
    from (
        select
            *,
            row_number() over (partition by message_id order by _updated_at desc, _landed_at desc, row_number desc)
                as copy_rank
        from raw_postscript__warehouse_fct_messages
    )
    where copy_rank = 1
),

details as (
    select *
    from (
        select
            *,
            row_number() over (partition by message_id order by _updated_at desc, _landed_at desc, row_number desc)
                as copy_rank
        from raw_postscript__warehouse_dim_messages
    )
    where copy_rank = 1
)

select
    m.message_id,
    d.postscript_message_id,
    lower(trim(coalesce(m.direction, d.direction))) as direction,
    m.subscriber_id,
    m.created_at,
    case upper(trim(d.message_service)) when 'MMS' then 'mms' else 'sms' end as channel,
    coalesce(d.failed, false) as failed,
    d.failed_at,
    case when d.text is not null then sms_segments(d.text) end as computed_segments,
    d.media_url is not null and trim(d.media_url) <> '' as has_media,
    lower(trim(d.type)) as message_type,
    case
        when lower(trim(d.type)) = 'automation' then 'flow'
        when lower(trim(d.type)) = 'campaign' then 'campaign'
        when lower(trim(d.type)) = 'inbound' or lower(trim(coalesce(m.direction, d.direction))) = 'inbound' then null
        else 'unknown'
    end as message_kind,
    case when lower(trim(d.type)) = 'automation' then nullif(trim(d.type_name), '') end as flow_id,
    case when lower(trim(d.type)) = 'campaign' then nullif(trim(d.type_name), '') end as campaign_name,
    greatest(m._updated_at, coalesce(d._updated_at, m._updated_at)) as _updated_at,
    m._landed_at
from details as d
right join messages as m on d.message_id = m.message_id
