-- One row per Shopify order (test orders dropped in staging), models.md 4.3: revenue, margin,
-- offer and the qualifying-order rule (models.md 1.4), in the reporting currency. Line amounts
-- are sums over fct_order_lines (built just before: marts build alphabetically). The person comes
-- from identity resolution (int_order_person, models.md 1.3); orders are sequenced per person.
with orders as (
    select * from stg_shopify__orders
),

persons as (
    select order_id, person_key from int_order_person
),

context as (
    select * from int_order_context
),

line_totals as (
    select
        order_key,
        sum(gross_sales) as gross_sales,
        sum(discounts) as discounts,
        sum(returns) as returns,
        sum(net_revenue) as net_revenue,
        sum(cogs) as cogs,
        sum(case when unit_cost_source = 'assumed_pct' then net_revenue else cast(0 as decimal(18, 4)) end)
            as assumed_cost_net_revenue,
        sum(quantity) as units,
        count(*) as line_count,
        min(unit_cost_source) as first_cost_source,
        max(unit_cost_source) as last_cost_source
    from fct_order_lines
    group by order_key
),

-- The order as placed, before voiding zeroes it: decides is_zero_value and the offer type.
placed as (
    select
        order_id,
        sum(gross_amount) as placed_gross,
        sum(gross_amount) - sum(line_discount_amount) as placed_net
    from stg_shopify__order_lines
    group by order_id
),

refunds as (
    select
        order_id,
        count(*) as refund_count,
        min(refunded_at) as first_refund_at,
        max(refunded_at) as last_refund_at
    from stg_shopify__refunds
    group by order_id
),

applications as (
    select
        order_id,
        max(case when application_type = 'discount_code' then 1 else 0 end) = 1 as has_code_application,
        max(case when application_type in ('automatic', 'script', 'manual') then 1 else 0 end) = 1
            as has_codeless_application
    from stg_shopify__discount_applications
    group by order_id
),

-- The sub-type of the order's code: its first code application, else its first application.
offer_subtypes as (
    select order_id, offer_subtype
    from (
        select
            order_id,
            case
                when target_type = 'shipping_line' then 'free_shipping'
                else value_type
            end as offer_subtype,
            row_number() over (
                partition by order_id
                order by case when application_type = 'discount_code' then 0 else 1 end, application_index
            ) as application_rank
        from stg_shopify__discount_applications
    )
    where application_rank = 1
),

cost_assumptions as (
    select
        max(case when lower(trim(key)) = 'shipping_cost_per_order' then cast(trim(value) as decimal(18, 8)) end)
            as shipping_cost_per_order,
        max(case when lower(trim(key)) = 'payment_fee_pct' then cast(trim(value) as decimal(18, 8)) end)
            as payment_fee_pct,
        max(case when lower(trim(key)) = 'payment_fee_fixed' then cast(trim(value) as decimal(18, 8)) end)
            as payment_fee_fixed
    from cfg_cost_assumptions
    where lower(trim(key)) in ('shipping_cost_per_order', 'payment_fee_pct', 'payment_fee_fixed')
),

joined as (
    select
        c.order_key,
        c.shop_id,
        o.order_id,
        o.order_name,
        o.customer_id,
        pe.person_key,
        o.created_at,
        o.processed_at,
        o.cancelled_at,
        o.updated_at,
        o.order_at,
        c.order_date,
        c.order_month,
        c.shop_currency,
        c.reporting_currency,
        c.fx_rate,
        c.fx_rate_is_stale,
        c.is_cancelled,
        c.is_voided,
        c.is_excluded_source,
        c.is_subscription_order,
        o.financial_status,
        o.source_name,
        o.landing_page,
        o.referrer_url,
        o.utm_source,
        o.utm_medium,
        o.utm_campaign,
        o.discount_codes,
        cast(coalesce(lt.gross_sales, 0) as decimal(18, 4)) as gross_sales,
        cast(coalesce(lt.discounts, 0) as decimal(18, 4)) as discounts,
        cast(coalesce(lt.returns, 0) as decimal(18, 4)) as returns,
        cast(coalesce(lt.net_revenue, 0) as decimal(18, 4)) as net_revenue,
        cast(coalesce(lt.cogs, 0) as decimal(18, 4)) as cogs,
        cast(coalesce(lt.assumed_cost_net_revenue, 0) as decimal(18, 4)) as assumed_cost_net_revenue,
        case
            when lt.first_cost_source is null then null
            when lt.first_cost_source = lt.last_cost_source then lt.first_cost_source
            else 'mixed'
        end as cogs_source,
        -- Shipping lines after shipping discounts (else the order's shipping total), less shipping
        -- refunded so far.
        case when c.is_voided then cast(0 as decimal(18, 4))
             else cast(
                 (coalesce(o.discounted_shipping_amount, o.shipping_amount, 0) - o.refunded_shipping_amount)
                 * cast(c.fx_rate as decimal(18, 8)) as decimal(18, 4))
        end as shipping_revenue,
        case when c.is_voided then cast(0 as decimal(18, 4))
             else cast(coalesce(o.tax_amount, 0) * cast(c.fx_rate as decimal(18, 8)) as decimal(18, 4))
        end as taxes,
        case when c.is_voided then cast(0 as decimal(18, 4))
             else cast(o.tip_amount * cast(c.fx_rate as decimal(18, 8)) as decimal(18, 4))
        end as tips,
        coalesce(lt.units, 0) as units,
        cast(coalesce(lt.line_count, 0) as int) as line_count,
        coalesce(p.placed_gross, 0) as placed_gross,
        coalesce(p.placed_net, 0) as placed_net,
        coalesce(r.refund_count, 0) as refund_count,
        r.first_refund_at,
        r.last_refund_at,
        coalesce(a.has_code_application, false) as has_code_application,
        coalesce(a.has_codeless_application, false) as has_codeless_application,
        s.offer_subtype,
        ca.shipping_cost_per_order,
        ca.payment_fee_pct,
        ca.payment_fee_fixed
    from cost_assumptions as ca
    cross join orders as o
    join context as c on c.order_id = o.order_id
    left join persons as pe on pe.order_id = o.order_id
    left join line_totals as lt on lt.order_key = c.order_key
    left join placed as p on p.order_id = o.order_id
    left join refunds as r on r.order_id = o.order_id
    left join applications as a on a.order_id = o.order_id
    left join offer_subtypes as s on s.order_id = o.order_id
),

flagged as (
    select
        *,
        placed_net <= 0 as is_zero_value,
        returns > 0 and returns >= gross_sales - discounts - cast(0.01 as decimal(18, 4)) as is_fully_refunded,
        case
            when is_subscription_order then 'subscription'
            when placed_gross > 0 and placed_net <= 0 then 'free_or_sample'
            when has_code_application or coalesce(array_length(discount_codes), 0) > 0 then 'discount_code'
            when has_codeless_application then 'automatic_discount'
            else 'full_price'
        end as offer_type,
        case
            when is_voided then cast(0 as decimal(18, 4))
            when is_cancelled or lower(coalesce(source_name, '')) = 'pos' then cast(0 as decimal(18, 4))
            else cast(shipping_cost_per_order as decimal(18, 4))
        end as shipping_cost_est
    from joined
),

qualified as (
    select
        *,
        case
            when is_cancelled then 'cancelled'
            when is_voided then 'voided'
            when is_excluded_source then 'excluded_source'
            when is_zero_value then 'zero_value'
            when is_fully_refunded or net_revenue <= 0 then 'fully_refunded'
        end as non_qualifying_reason,
        case
            when is_voided or financial_status = 'expired' then cast(0 as decimal(18, 4))
            else cast(
                payment_fee_pct * (net_revenue + shipping_revenue + taxes) + payment_fee_fixed as decimal(18, 4)
            )
        end as payment_fee_est
    from flagged
),

-- Order sequence per person among qualifying orders (models.md 4.3); unidentifiable orders
-- (person_key NULL) are not sequenced.
sequenced as (
    select
        order_key,
        row_number() over (partition by person_key order by order_at, order_id) as customer_order_seq,
        order_date - lag(order_date) over (partition by person_key order by order_at, order_id)
            as days_since_prev_order
    from qualified
    where non_qualifying_reason is null and person_key is not null
),

final as (
    select
        q.order_key,
        q.shop_id,
        arrow_cast(q.order_id, 'Utf8') as order_id,
        q.order_name,
        q.person_key,
        arrow_cast(q.customer_id, 'Utf8') as shopify_customer_id,
        q.customer_id is null as is_guest,
        q.created_at,
        q.processed_at,
        q.cancelled_at,
        q.updated_at,
        q.order_at,
        q.order_date,
        q.order_month,
        q.shop_currency,
        q.reporting_currency,
        q.fx_rate,
        q.fx_rate_is_stale,
        q.financial_status,
        q.gross_sales,
        q.discounts,
        q.returns,
        q.net_revenue,
        q.shipping_revenue,
        q.taxes,
        q.tips,
        q.cogs,
        q.cogs_source,
        q.assumed_cost_net_revenue,
        cast(q.net_revenue - q.cogs as decimal(18, 4)) as gross_margin,
        q.shipping_cost_est,
        q.payment_fee_est,
        cast(q.net_revenue - q.cogs + q.shipping_revenue - q.shipping_cost_est - q.payment_fee_est as decimal(18, 4))
            as contribution_margin,
        q.units,
        q.line_count,
        q.discount_codes,
        q.offer_type,
        case when q.offer_type = 'discount_code' then q.offer_subtype end as offer_subtype,
        q.is_subscription_order,
        q.source_name = 'shopify_draft_order' as is_draft_order,
        q.source_name,
        q.landing_page as landing_site,
        q.referrer_url as referring_site,
        q.utm_source,
        q.utm_medium,
        q.utm_campaign,
        q.non_qualifying_reason is null as is_qualifying,
        q.non_qualifying_reason,
        q.is_zero_value,
        q.is_fully_refunded,
        q.refund_count,
        q.first_refund_at,
        q.last_refund_at,
        cast(s.customer_order_seq as int) as customer_order_seq,
        case
            when q.non_qualifying_reason is not null then false
            when q.person_key is null then null
            else s.customer_order_seq = 1
        end as is_first_order,
        cast(s.days_since_prev_order as int) as days_since_prev_order,
        '1.1.0' as model_version
    from qualified as q
    left join sequenced as s on s.order_key = q.order_key
)

select * from final
order by order_at, order_id
