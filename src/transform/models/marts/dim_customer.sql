-- One row per person (models.md 4.2) with at least one landed order or a Klaviyo profile: the
-- acquisition order (the person's first qualifying order, fct_orders.is_first_order), its cohort,
-- channel and offer, lifetime order counts and revenue, left-censoring (models.md 1.5) and the
-- current consent. Emails and phones appear only as SHA-256 hashes.
with settings as (
    select
        max(case when key = 'reporting_tz' then trim(value) end) as reporting_tz,
        coalesce(max(case when key = 'never_subscribed_email_is_reachable' then lower(trim(value)) end), 'false')
            = 'true' as never_subscribed_email_is_reachable
    from cfg_settings
),

context as (
    select max(reporting_tz) as reporting_tz from int_order_context
),

identifiers as (
    select person_key, identifier_type, identifier_value, first_seen_at, last_seen_at
    from int_person_identifier
),

orders as (
    select * from fct_orders where person_key is not null
),

-- The persons of the grain: an order, or a Klaviyo profile.
persons as (
    select distinct person_key from orders
    union
    select distinct person_key from identifiers where identifier_type = 'klaviyo_profile_id'
),

-- models.md 1.5: the local date of the earliest order landed.
data_window as (
    select min(order_date) as data_start_date from fct_orders
),

order_stats as (
    select
        person_key,
        count(*) as landed_orders,
        min(order_at) as first_landed_order_at,
        min(order_date) as first_landed_order_date,
        sum(case when is_qualifying then 1 else 0 end) as lifetime_orders,
        cast(sum(case when is_qualifying then net_revenue else cast(0 as decimal(18, 4)) end) as decimal(18, 4))
            as lifetime_net_revenue,
        cast(sum(case when is_qualifying then gross_margin else cast(0 as decimal(18, 4)) end) as decimal(18, 4))
            as lifetime_gross_margin,
        max(case when is_qualifying then order_at end) as last_order_at,
        max(case when is_qualifying then order_date end) as last_order_date
    from orders
    group by person_key
),

first_orders as (
    select * from orders where is_first_order
),

second_orders as (
    select person_key, order_at, order_date from orders where customer_order_seq = 2
),

-- Hashes of the email / phone most recently used on an order, else the identifier seen last.
order_email as (
    select person_key, email_sha256
    from (
        select
            o.person_key,
            s.email_sha256,
            row_number() over (partition by o.person_key order by o.order_at desc, o.order_id desc) as rn
        from orders as o
        join stg_shopify__orders as s on cast(s.order_id as varchar) = o.order_id
        where s.email_sha256 is not null
    )
    where rn = 1
),

order_phone as (
    select person_key, phone_sha256
    from (
        select
            o.person_key,
            s.phone_sha256,
            row_number() over (partition by o.person_key order by o.order_at desc, o.order_id desc) as rn
        from orders as o
        join stg_shopify__orders as s on cast(s.order_id as varchar) = o.order_id
        where s.phone_sha256 is not null
    )
    where rn = 1
),

latest_identifier as (
    select person_key, identifier_type, identifier_value
    from (
        select
            person_key,
            identifier_type,
            identifier_value,
            row_number() over (
                partition by person_key, identifier_type order by last_seen_at desc, identifier_value
            ) as rn
        from identifiers
        where identifier_type in ('email_sha256', 'phone_sha256')
    )
    where rn = 1
),

-- Platform ids, sorted.
customer_ids as (
    select
        person_key,
        array_agg(split_part(identifier_value, ':', 2) order by split_part(identifier_value, ':', 2))
            as shopify_customer_ids
    from identifiers
    where identifier_type = 'shopify_customer_id'
    group by person_key
),

profile_ids as (
    select person_key, array_agg(identifier_value order by identifier_value) as klaviyo_profile_ids
    from identifiers
    where identifier_type = 'klaviyo_profile_id'
    group by person_key
),

-- Orders we hold per Shopify customer id (left-censoring input).
held as (
    select shopify_customer_id, count(*) as held_orders
    from fct_orders
    where shopify_customer_id is not null
    group by shopify_customer_id
),

-- The person's Shopify customer records: lifetime counters, creation, country.
customers as (
    select
        i.person_key,
        c.customer_id,
        c.created_at,
        c.updated_at,
        c.number_of_orders,
        c.country_code,
        coalesce(h.held_orders, 0) as held_orders
    from identifiers as i
    join stg_shopify__customers as c on split_part(i.identifier_value, ':', 2) = cast(c.customer_id as varchar)
    left join held as h on h.shopify_customer_id = cast(c.customer_id as varchar)
    where i.identifier_type = 'shopify_customer_id'
),

customer_stats as (
    select
        person_key,
        bool_or(number_of_orders > held_orders) as counter_exceeds_held,
        min(created_at) as first_customer_created_at
    from customers
    group by person_key
),

customer_country as (
    select person_key, country_code
    from (
        select
            person_key,
            country_code,
            row_number() over (partition by person_key order by updated_at desc, customer_id desc) as rn
        from customers
        where country_code is not null
    )
    where rn = 1
),

profile_tz as (
    select person_key, timezone
    from (
        select
            i.person_key,
            p.timezone,
            row_number() over (partition by i.person_key order by p.updated_at desc, p.profile_id) as rn
        from identifiers as i
        join stg_klaviyo__profiles as p on p.profile_id = i.identifier_value
        where i.identifier_type = 'klaviyo_profile_id' and p.timezone is not null and trim(p.timezone) <> ''
    )
    where rn = 1
),

-- Current consent per channel: the most recent change among the person's subjects wins.
consent_now as (
    select person_key, channel, status
    from (
        select
            i.person_key,
            h.channel,
            h.status,
            row_number() over (
                partition by i.person_key, h.channel
                order by h.valid_from desc, h.platform, h.identifier_value
            ) as rn
        from int_consent_history as h
        join identifiers as i on i.identifier_type = h.identifier_type and i.identifier_value = h.identifier_value
        where h.is_current
    )
    where rn = 1
),

-- Acquisition inputs of the first order (models.md 4.2): the journey's first visit UTM, the UTM
-- parameters of landing_site, the referrer's domain, source_name.
acquisition_inputs as (
    select
        f.person_key,
        nullif(lower(trim(s.first_visit_utm_source)), '') as fv_source,
        nullif(lower(trim(s.first_visit_utm_medium)), '') as fv_medium,
        s.first_visit_utm_campaign as fv_campaign,
        coalesce(
            nullif(lower(trim(regexp_replace(
                regexp_match(f.landing_site, '[?&]utm_source=([^&#]*)')[1], '\+', ' ', 'g'))), ''),
            nullif(lower(trim(f.utm_source)), '')
        ) as ls_source,
        coalesce(
            nullif(lower(trim(regexp_replace(
                regexp_match(f.landing_site, '[?&]utm_medium=([^&#]*)')[1], '\+', ' ', 'g'))), ''),
            nullif(lower(trim(f.utm_medium)), '')
        ) as ls_medium,
        coalesce(regexp_match(f.landing_site, '[?&]utm_campaign=([^&#]*)')[1], f.utm_campaign) as ls_campaign,
        regexp_replace(
            lower(regexp_match(f.referring_site, '^[A-Za-z][A-Za-z0-9+.-]*://([^/:?#]+)')[1]), '^www\.', ''
        ) as referrer_domain,
        nullif(lower(trim(f.source_name)), '') as source_name
    from first_orders as f
    left join stg_shopify__orders as s on cast(s.order_id as varchar) = f.order_id
),

acquisition_utm as (
    select
        person_key,
        case
            when fv_source is not null or fv_medium is not null then 'journey_first_visit'
            when ls_source is not null or ls_medium is not null then 'landing_site_utm'
        end as utm_basis,
        case when fv_source is not null or fv_medium is not null then fv_source else ls_source end as utm_source,
        case when fv_source is not null or fv_medium is not null then fv_medium else ls_medium end as utm_medium,
        case when fv_source is not null or fv_medium is not null then fv_campaign else ls_campaign end
            as utm_campaign,
        referrer_domain,
        source_name
    from acquisition_inputs
),

rules as (
    select
        cast(trim(priority) as int) as priority,
        lower(trim(coalesce(utm_source_pattern, ''))) as utm_source_pattern,
        lower(trim(coalesce(utm_medium_pattern, ''))) as utm_medium_pattern,
        lower(trim(coalesce(referrer_domain_pattern, ''))) as referrer_domain_pattern,
        lower(trim(coalesce(source_name, ''))) as source_name,
        trim(channel_group) as channel_group
    from map_acquisition_channel
),

-- Step (1)/(2): rules on UTM values only ('|'-separated alternatives, exact match).
utm_match as (
    select person_key, channel_group
    from (
        select
            a.person_key,
            r.channel_group,
            row_number() over (partition by a.person_key order by r.priority, r.channel_group) as rn
        from acquisition_utm as a
        join rules as r
            on r.referrer_domain_pattern = '' and r.source_name = ''
            and (r.utm_source_pattern <> '' or r.utm_medium_pattern <> '')
            and (r.utm_source_pattern = '' or array_has(string_to_array(r.utm_source_pattern, '|'), a.utm_source))
            and (r.utm_medium_pattern = '' or array_has(string_to_array(r.utm_medium_pattern, '|'), a.utm_medium))
        where a.utm_basis is not null
    )
    where rn = 1
),

referrer_patterns as (
    select priority, channel_group, unnest(string_to_array(referrer_domain_pattern, '|')) as pattern
    from rules
    where referrer_domain_pattern <> '' and utm_source_pattern = '' and utm_medium_pattern = '' and source_name = ''
),

-- Step (3): the referrer's domain contains a pattern at a label boundary ('google.' matches
-- www.google.com and google.co.uk).
referrer_match as (
    select person_key, channel_group
    from (
        select
            a.person_key,
            r.channel_group,
            row_number() over (partition by a.person_key order by r.priority, r.channel_group) as rn
        from acquisition_utm as a
        join referrer_patterns as r on strpos(concat('.', a.referrer_domain), concat('.', r.pattern)) > 0
        where a.referrer_domain is not null and r.pattern <> ''
    )
    where rn = 1
),

-- Step (4): source_name rules.
source_match as (
    select person_key, channel_group
    from (
        select
            a.person_key,
            r.channel_group,
            row_number() over (partition by a.person_key order by r.priority, r.channel_group) as rn
        from acquisition_utm as a
        join rules as r
            on r.source_name <> '' and r.utm_source_pattern = '' and r.utm_medium_pattern = ''
            and r.referrer_domain_pattern = ''
            and array_has(string_to_array(r.source_name, '|'), a.source_name)
    )
    where rn = 1
),

acquisition as (
    select
        a.person_key,
        a.utm_source,
        a.utm_medium,
        a.utm_campaign,
        case
            when a.utm_basis is not null and (a.utm_medium in ('email', 'sms') or u.channel_group is not null)
                then a.utm_basis
            when rm.channel_group is not null then 'referring_site'
            when sm.channel_group is not null then 'source_name'
            else 'none'
        end as acquisition_source_basis,
        case
            when a.utm_basis is not null and a.utm_medium in ('email', 'sms') then a.utm_medium
            when a.utm_basis is not null and u.channel_group is not null then u.channel_group
            when rm.channel_group is not null then rm.channel_group
            when sm.channel_group is not null then sm.channel_group
            else 'unknown'
        end as acquisition_channel_group
    from acquisition_utm as a
    left join utm_match as u on u.person_key = a.person_key
    left join referrer_match as rm on rm.person_key = a.person_key
    left join source_match as sm on sm.person_key = a.person_key
),

-- The person's tier in the latest month-end snapshot (persons never scored: NULL).
rfm_current as (
    select r.person_key, r.rfm_tier, r.snapshot_date
    from (select max(snapshot_date) as snapshot_date from fct_rfm_snapshot) as l
    join fct_rfm_snapshot as r on l.snapshot_date = r.snapshot_date
),

joined as (
    select
        p.person_key,
        ci.shopify_customer_ids,
        coalesce(oe.email_sha256, le.identifier_value) as email_sha256,
        coalesce(op.phone_sha256, lp.identifier_value) as phone_sha256,
        coalesce(os.lifetime_orders, 0) > 0 as has_order,
        f.order_key as first_order_key,
        f.order_at as acquisition_at,
        f.order_date as acquisition_date,
        f.order_month as acquisition_month,
        ac.acquisition_channel_group,
        ac.utm_source as acquisition_source,
        ac.utm_medium as acquisition_medium,
        ac.utm_campaign as acquisition_campaign,
        ac.acquisition_source_basis,
        f.offer_type as first_order_offer_type,
        f.offer_subtype as first_order_offer_subtype,
        f.discount_codes as first_order_discount_codes,
        case when f.gross_sales > 0 then cast(f.discounts as double) / cast(f.gross_sales as double) end
            as first_order_discount_pct,
        f.net_revenue as first_order_net_revenue,
        f.is_subscription_order as first_order_is_subscription,
        coalesce(os.landed_orders, 0) as landed_orders,
        os.first_landed_order_at,
        coalesce(os.lifetime_orders, 0) as lifetime_orders,
        coalesce(os.lifetime_net_revenue, cast(0 as decimal(18, 4))) as lifetime_net_revenue,
        coalesce(os.lifetime_gross_margin, cast(0 as decimal(18, 4))) as lifetime_gross_margin,
        os.last_order_at,
        os.last_order_date,
        so.order_at as second_order_at,
        so.order_date - f.order_date as days_to_second_order,
        dw.data_start_date,
        coalesce(cs.counter_exceeds_held, false)
            or coalesce(
                os.first_landed_order_date - dw.data_start_date <= 7
                and local_date(cs.first_customer_created_at, coalesce(st.reporting_tz, cx.reporting_tz))
                    < dw.data_start_date,
                false
            ) as is_left_censored,
        ce.status as email_consent_status,
        cm.status as sms_consent_status,
        coalesce(ce.status = 'subscribed' or (ce.status = 'never_subscribed' and st.never_subscribed_email_is_reachable), false)
            as email_reachable_now,
        coalesce(cm.status = 'subscribed', false) as sms_reachable_now,
        pi.klaviyo_profile_ids,
        cc.country_code,
        coalesce(tz.timezone, st.reporting_tz, cx.reporting_tz) as tz_name,
        case
            when tz.timezone is not null then 'klaviyo_profile'
            when coalesce(st.reporting_tz, cx.reporting_tz) is not null then 'reporting_tz'
        end as tz_source,
        rc.rfm_tier as rfm_tier_current,
        rc.snapshot_date as rfm_snapshot_date
    from settings as st
    cross join context as cx
    cross join data_window as dw
    cross join persons as p
    left join rfm_current as rc on rc.person_key = p.person_key
    left join order_stats as os on os.person_key = p.person_key
    left join first_orders as f on f.person_key = p.person_key
    left join second_orders as so on so.person_key = p.person_key
    left join acquisition as ac on ac.person_key = p.person_key
    left join customer_ids as ci on ci.person_key = p.person_key
    left join profile_ids as pi on pi.person_key = p.person_key
    left join order_email as oe on oe.person_key = p.person_key
    left join order_phone as op on op.person_key = p.person_key
    left join latest_identifier as le on le.person_key = p.person_key and le.identifier_type = 'email_sha256'
    left join latest_identifier as lp on lp.person_key = p.person_key and lp.identifier_type = 'phone_sha256'
    left join customer_stats as cs on cs.person_key = p.person_key
    left join customer_country as cc on cc.person_key = p.person_key
    left join profile_tz as tz on tz.person_key = p.person_key
    left join consent_now as ce on ce.person_key = p.person_key and ce.channel = 'email'
    left join consent_now as cm on cm.person_key = p.person_key and cm.channel = 'sms'
),

final as (
    select
        person_key,
        shopify_customer_ids,
        email_sha256,
        phone_sha256,
        has_order,
        first_order_key,
        acquisition_at,
        acquisition_date,
        case when not is_left_censored then acquisition_month end as acquisition_cohort_month,
        case
            when not is_left_censored and acquisition_date is not null then concat(
                cast(extract(year from acquisition_date) as int), '-Q',
                cast(extract(quarter from acquisition_date) as int)
            )
        end as acquisition_cohort_quarter,
        acquisition_channel_group,
        acquisition_source,
        acquisition_medium,
        acquisition_campaign,
        acquisition_source_basis,
        first_order_offer_type,
        first_order_offer_subtype,
        first_order_discount_codes,
        first_order_discount_pct,
        first_order_net_revenue,
        first_order_is_subscription,
        landed_orders,
        first_landed_order_at,
        lifetime_orders,
        lifetime_net_revenue,
        lifetime_gross_margin,
        last_order_at,
        last_order_date,
        second_order_at,
        cast(days_to_second_order as int) as days_to_second_order,
        data_start_date,
        is_left_censored,
        email_consent_status,
        sms_consent_status,
        email_reachable_now,
        sms_reachable_now,
        klaviyo_profile_ids,
        country_code,
        tz_name,
        tz_source,
        rfm_tier_current,
        rfm_snapshot_date,
        '1.0.0' as model_version
    from joined
)

select * from final
order by person_key
