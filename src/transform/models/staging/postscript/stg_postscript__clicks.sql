-- One row per link click of Postscript's warehouse push (fct_clicks), its latest version.
select click_id, message_id, subscriber_id, clicked_at, url, _updated_at, _landed_at
from (
    select
        *,
        row_number() over (partition by click_id order by _updated_at desc, _landed_at desc, row_number desc) as copy_rank
    from raw_postscript__warehouse_fct_clicks
)
where copy_rank = 1
