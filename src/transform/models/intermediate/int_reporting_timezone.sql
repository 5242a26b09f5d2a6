-- The reporting timezone (models.md 1.1) for models that place events on local days without an
-- order to read it from (a Klaviyo-only job lands no orders, so int_order_context has no row): the
-- `reporting_tz` row of cfg_settings, else the latest shop record's timezone. Always one row;
-- reporting_tz is NULL when neither is known.
with settings as (
    select max(case when key = 'reporting_tz' then trim(value) end) as reporting_tz
    from cfg_settings
),

shop as (
    select iana_timezone
    from (
        select iana_timezone, row_number() over (order by _landed_at desc, shop_id) as shop_rank
        from stg_shopify__shop
    )
    where shop_rank = 1
)

select
    coalesce(st.reporting_tz, s.iana_timezone) as reporting_tz,
    case
        when st.reporting_tz is not null then 'cfg_settings'
        when s.iana_timezone is not null then 'shop'
    end as reporting_tz_source
from settings as st
left join shop as s on true
