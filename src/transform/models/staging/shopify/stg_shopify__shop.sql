-- One row per Shopify shop, its latest landed copy (the shop is pulled every run).
with source as (
    select * from raw_shopify__shop
),

ranked as (
    select
        *,
        row_number() over (partition by id order by _landed_at desc, _run_id desc) as copy_rank
    from source
),

final as (
    select
        cast(split_part(id, '/', 5) as bigint) as shop_id,
        id as shop_gid,
        name as shop_name,
        myshopify_domain,
        iana_timezone,
        timezone_offset,
        currency_code as shop_currency,
        _landed_at
    from ranked
    where copy_rank = 1
)

select * from final
