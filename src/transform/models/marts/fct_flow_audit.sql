-- The flow audit (models.md 4.11, issue 7): one row per audit date x flow of dim_flows, plus one
-- 'missing' row per required lifecycle type x expected channel that no live flow covers.
--
-- audit_date is the job's as-of (cfg_settings as_of), else the last day of the data: the earlier
-- of the latest order date and the latest message event date (as int_flow_entries' cut-off), so
-- a re-run on the same raw data gives the same audit. Windows "l30d" are the 30 local days ending
-- on audit_date.
--
-- Default signals (models.md 4.11, each 1): the name equals a template name of dim_flow_type
-- (template_names, case and spacing ignored); content never edited (latest message change less
-- than a day after the flow's creation); the first message waits exactly the template's delay
-- (dim_flow_type.default_delay_hours: the seed carries the template's first delay only, not every
-- delay); no branching (branching_depth = 0) for a type where personalisation is expected; no A/B
-- test (no send action with more than one message). Unknown inputs never count as a signal.
--
-- Status precedence for a flow: not live -> paused (status says manual, draft or archived);
-- trigger mismatch or an unmapped type -> needs_review; >= 3 signals -> running_on_defaults;
-- content older than 365 days -> stale; the calibrated rule; else needs_review.
with settings as (
    select
        max(case when key = 'as_of' then trim(value) end) as as_of,
        max(case when key = 'reporting_tz' then trim(value) end) as reporting_tz
    from cfg_settings
),

audit_day as (
    select
        coalesce(
            cast(s.as_of as date),
            least((select max(order_date) from fct_orders), (select max(event_date) from fct_message_events))
        ) as audit_date,
        coalesce(s.reporting_tz, (select max(reporting_tz) from int_order_context), 'UTC') as reporting_tz
    from settings as s
),

-- No data day (nothing landed yet, or events without a known timezone): no audit rather than rows
-- without a date.
audit as (
    select * from audit_day where audit_date is not null
),

types as (
    select
        trim(flow_type) as flow_type,
        lower(trim(is_required)) = 'true' as is_required,
        trim(expected_channels) as expected_channels,
        cast(nullif(trim(default_delay_hours), '') as double) as template_delay_hours,
        lower(trim(coalesce(template_names, ''))) as template_names
    from dim_flow_type
),

-- A/B tests: send actions with more than one message (variation); the latest variation's
-- creation dates the test.
ab as (
    select
        a.flow_id,
        count(*) as ab_tests_total,
        sum(case when local_date(x.last_variation_at, d.reporting_tz) > d.audit_date - interval '180 days' then 1 else 0 end)
            as ab_tests_last_180d
    from (
        select flow_action_id, max(created_at) as last_variation_at
        from stg_klaviyo__flow_messages
        group by flow_action_id
        having count(*) > 1
    ) as x
    join stg_klaviyo__flow_actions as a on x.flow_action_id = a.flow_action_id
    cross join audit as d
    group by a.flow_id
),

activity as (
    select
        e.flow_key,
        sum(case when e.is_send then 1 else 0 end) as sends_l30d,
        count(distinct case when e.event_type = 'delivered' then coalesce(e.person_key, e.platform_profile_id) end)
            as recipients_l30d
    from fct_message_events as e
    cross join audit as d
    where e.flow_key is not null and e.event_date > d.audit_date - interval '30 days' and e.event_date <= d.audit_date
    group by e.flow_key
),

-- Recipients of the last 30 days against the flow's entries: a recipient the trigger rule never
-- entered (no treated entry of the flow at or before the delivery) is one the platform reaches
-- and the rule misses.
recipients as (
    select distinct e.flow_key, e.person_key, e.occurred_at
    from fct_message_events as e
    cross join audit as d
    where e.event_type = 'delivered' and e.person_key is not null and e.flow_key is not null
        and e.event_date > d.audit_date - interval '30 days' and e.event_date <= d.audit_date
),

first_entry as (
    select flow_key, person_key, min(entry_at) as first_entry_at
    from int_flow_entries
    where arm = 'T'
    group by flow_key, person_key
),

-- Order-triggered flows: the platform triggers on any placed order and counts every placed order,
-- the entry rules only qualifying ones (models.md 1.4: no $0, cancelled, voided, excluded-source or
-- fully refunded orders). A recipient is explained by an order before the delivery, within the
-- flow's longest path plus a day (30 days when the path is unknown), that the rule could not enter:
-- a non-qualifying order, or, for a repeat-purchase flow, an order after a non-qualifying one (the
-- platform's repeat order, the rule's first). Winback and replenishment count days from the latest
-- placed order, so there the order must be the last one before the delivery.
orders_in_sequence as (
    select
        person_key,
        order_at,
        is_qualifying,
        lead(order_at) over (partition by person_key order by order_at, order_key) as next_order_at
    from fct_orders
    where person_key is not null
),

first_non_qualifying as (
    select person_key, min(order_at) as first_non_qualifying_at
    from fct_orders
    where not coalesce(is_qualifying, true)
    group by person_key
),

non_qualifying_triggers as (
    select distinct r.flow_key, r.person_key, r.occurred_at
    from recipients as r
    join dim_flows as f on r.flow_key = f.flow_key
    left join int_flow_structure as s on r.flow_key = s.flow_key
    join orders_in_sequence as o on o.person_key = r.person_key
    left join first_non_qualifying as n on n.person_key = o.person_key
    where f.flow_type in ('post_purchase_first', 'post_purchase_repeat', 'cross_sell', 'winback', 'replenishment')
        and o.order_at <= r.occurred_at
        and to_unixtime(r.occurred_at) - to_unixtime(o.order_at)
            <= coalesce(s.longest_path_delay_hours + 24.0, 720.0) * 3600.0
        and (
            not coalesce(o.is_qualifying, true)
            or (f.flow_type = 'post_purchase_repeat' and n.first_non_qualifying_at < o.order_at)
        )
        and (
            f.flow_type not in ('winback', 'replenishment')
            or o.next_order_at is null
            or o.next_order_at > r.occurred_at
        )
),

matching as (
    select
        r.flow_key,
        count(distinct r.person_key) as recipients,
        count(distinct case when fe.first_entry_at <= r.occurred_at or nq.person_key is not null then r.person_key end)
            as matched
    from recipients as r
    join (select distinct flow_key from int_flow_entries) as has_entries on r.flow_key = has_entries.flow_key
    left join first_entry as fe on r.flow_key = fe.flow_key and r.person_key = fe.person_key
    left join non_qualifying_triggers as nq
        on r.flow_key = nq.flow_key and r.person_key = nq.person_key and r.occurred_at = nq.occurred_at
    group by r.flow_key
),

coverage as (
    select
        n.flow_key,
        count(distinct n.person_key) as treated,
        count(distinct case when n.first_message_delivered_at is not null then n.person_key end) as reached
    from int_flow_entries as n
    cross join audit as d
    where n.arm = 'T' and n.entry_date > d.audit_date - interval '30 days' and n.entry_date <= d.audit_date
    group by n.flow_key
),

last_click as (
    select o.lc_subject_key as flow_key, cast(sum(o.net_revenue) as decimal(18, 4)) as last_click_revenue_l30d
    from int_order_last_click as o
    cross join audit as d
    where o.lc_message_kind = 'flow' and o.order_date > d.audit_date - interval '30 days'
        and o.order_date <= d.audit_date
    group by o.lc_subject_key
),

-- The latest mature month of the flow as a whole whose month ended in the last 90 days.
lift as (
    select flow_key, period_start, incremental_revenue, incremental_revenue_ci_low, incremental_revenue_ci_high,
           evidence_grade
    from (
        select
            c.*,
            row_number() over (partition by c.flow_key order by c.period_start desc) as recency
        from fct_flow_contribution as c
        cross join audit as d
        where c.channel = 'all' and c.period_grain = 'month' and c.is_mature
            and c.period_end > d.audit_date - interval '90 days'
    )
    where recency = 1
),

holdouts as (
    select
        i.flow_key,
        i.holdout_pct is not null
            and coalesce(i.holdout_start_date <= d.audit_date, true)
            and coalesce(i.holdout_end_date >= d.audit_date, true) as holdout_active,
        i.is_revenue_flow
    from int_flows as i
    cross join audit as d
),

flows as (
    select
        d.audit_date,
        f.flow_key as audit_key,
        f.flow_key,
        f.platform,
        f.flow_id,
        f.flow_name,
        f.status,
        f.flow_type,
        f.flow_type_method,
        f.channels,
        f.trigger_type,
        f.platform_trigger_type,
        f.message_count,
        f.email_message_count,
        f.sms_message_count,
        s.split_count,
        s.branching_depth,
        s.depth_method,
        s.first_message_delay_hours,
        s.longest_path_delay_hours,
        s.smart_sending_share,
        f.created_at,
        f.structure_updated_at,
        f.content_updated_at,
        cast(d.audit_date - local_date(f.content_updated_at, d.reporting_tz) as int) as days_since_content_update,
        coalesce(ab.ab_tests_total, 0) as ab_tests_total,
        coalesce(ab.ab_tests_last_180d, 0) as ab_tests_last_180d,
        coalesce(h.holdout_active, false) as holdout_active,
        coalesce(h.is_revenue_flow, false) as is_revenue_flow,
        coalesce(a.sends_l30d, 0) as sends_l30d,
        coalesce(a.recipients_l30d, 0) as recipients_l30d,
        cast(cv.reached as double) / nullif(cv.treated, 0) as coverage_ratio_l30d,
        cast(m.recipients as double) / nullif(m.matched, 0) as recipient_match_ratio_l30d,
        lc.last_click_revenue_l30d,
        l.period_start as lift_period_start,
        l.incremental_revenue as incremental_revenue_l90d,
        l.incremental_revenue_ci_low as ci_low,
        l.incremental_revenue_ci_high as ci_high,
        l.evidence_grade,
        -- Default signals (NULL inputs count 0).
        case when t.template_names <> ''
            and array_has(string_to_array(t.template_names, '|'), lower(trim(f.flow_name))) then 1 else 0 end
            as sig_template_name,
        case when f.content_updated_at < f.created_at + interval '1 day' then 1 else 0 end as sig_never_edited,
        case when s.first_message_delay_hours = t.template_delay_hours then 1 else 0 end as sig_template_delay,
        case when s.branching_depth = 0 and f.flow_type in (
            'abandoned_checkout', 'abandoned_cart', 'browse_abandonment', 'post_purchase_first',
            'post_purchase_repeat', 'winback'
        ) then 1 else 0 end as sig_no_branching,
        case when s.depth_method in ('graph', 'approx') and coalesce(ab.ab_tests_total, 0) = 0 then 1 else 0 end
            as sig_no_ab_test
    from dim_flows as f
    cross join audit as d
    left join int_flow_structure as s on f.flow_key = s.flow_key
    left join types as t on f.flow_type = t.flow_type
    left join ab on f.flow_id = ab.flow_id and f.platform = 'klaviyo'
    left join holdouts as h on f.flow_key = h.flow_key
    left join activity as a on f.flow_key = a.flow_key
    left join coverage as cv on f.flow_key = cv.flow_key
    left join matching as m on f.flow_key = m.flow_key
    left join last_click as lc on f.flow_key = lc.flow_key
    left join lift as l on f.flow_key = l.flow_key
),

flagged as (
    select
        *,
        sig_template_name + sig_never_edited + sig_template_delay + sig_no_branching + sig_no_ab_test
            as default_signal_count,
        coalesce(recipient_match_ratio_l30d > 1.05, false) as trigger_mismatch,
        (ab_tests_last_180d > 0 or coalesce(evidence_grade in ('A', 'B'), false)) as has_recent_evidence,
        is_revenue_flow and not holdout_active and coalesce(evidence_grade not in ('A', 'B'), true) as needs_holdout
    from flows
),

classified as (
    select
        *,
        case
            when status <> 'live' then 'paused'
            when trigger_mismatch or flow_type_method = 'unmapped' then 'needs_review'
            when default_signal_count >= 3 then 'running_on_defaults'
            when days_since_content_update > 365 then 'stale'
            when has_recent_evidence and days_since_content_update <= 180 and default_signal_count <= 1
                then 'calibrated'
            else 'needs_review'
        end as calibration_status,
        concat_ws(
            ';',
            case when status <> 'live' then concat('status_', status) end,
            case when status = 'live' and flow_type_method = 'unmapped' then 'unmapped_flow_type' end,
            case when status = 'live' and trigger_mismatch then 'trigger_mismatch' end,
            case when status = 'live' and sig_template_name = 1 then 'template_name' end,
            case when status = 'live' and sig_never_edited = 1 then 'content_never_edited' end,
            case when status = 'live' and sig_template_delay = 1 then 'template_delays' end,
            case when status = 'live' and sig_no_branching = 1 then 'no_branching' end,
            case when status = 'live' and sig_no_ab_test = 1 then 'no_ab_test' end,
            case when status = 'live' and days_since_content_update > 365 then 'stale_content' end,
            case when status = 'live' and days_since_content_update > 180 and days_since_content_update <= 365
                then 'content_older_than_180d' end,
            case when status = 'live' and not has_recent_evidence then 'no_recent_ab_test_or_lift_evidence' end,
            case when status = 'live' and needs_holdout then 'needs_holdout' end,
            case when status = 'live' and sends_l30d = 0 then 'no_sends_l30d' end
        ) as reasons_text,
        concat_ws(
            ';',
            case when status = 'live' and needs_holdout then 'add_holdout' end,
            case when status = 'live' and sig_no_branching = 1 then 'add_split' end,
            case when status = 'live' and (days_since_content_update > 180 or sig_never_edited = 1)
                then 'refresh_content' end,
            case when status = 'live' and ab_tests_last_180d = 0 and flow_type <> 'transactional'
                then 'run_ab_test' end,
            case when status = 'live' and trigger_mismatch then 'fix_trigger_mismatch' end,
            case when status = 'live' and flow_type_method = 'unmapped' then 'add_flow_type_override' end
        ) as recommendations_text
    from flagged
),

-- Required type x expected channel without a live flow of that type sending on that channel.
expected as (
    select t.flow_type, c.channel
    from types as t
    cross join (select 'email' as channel union all select 'sms') as c
    where t.is_required and array_has(string_to_array(t.expected_channels, '|'), c.channel)
),

missing as (
    select
        d.audit_date,
        arrow_cast(md5(concat('missing|', x.flow_type, '|', x.channel)), 'Utf8') as audit_key,
        x.flow_type,
        x.channel
    from expected as x
    cross join audit as d
    where not exists (
        select 1 from dim_flows as f
        where f.status = 'live' and f.flow_type = x.flow_type and array_has(f.channels, x.channel)
    )
),

final as (
    select
        audit_date,
        audit_key,
        flow_key,
        platform,
        flow_id,
        flow_name,
        status,
        flow_type,
        flow_type_method,
        channels,
        trigger_type,
        platform_trigger_type,
        arrow_cast(null, 'Utf8') as trigger_detail,
        arrow_cast(null, 'Utf8') as trigger_filters,
        arrow_cast(null, 'Utf8') as profile_filters,
        message_count,
        email_message_count,
        sms_message_count,
        split_count,
        branching_depth,
        depth_method,
        first_message_delay_hours,
        longest_path_delay_hours,
        smart_sending_share,
        created_at,
        structure_updated_at,
        content_updated_at,
        days_since_content_update,
        cast(ab_tests_total as int) as ab_tests_total,
        cast(ab_tests_last_180d as int) as ab_tests_last_180d,
        holdout_active,
        sends_l30d,
        recipients_l30d,
        coverage_ratio_l30d,
        recipient_match_ratio_l30d,
        last_click_revenue_l30d,
        lift_period_start,
        incremental_revenue_l90d,
        ci_low,
        ci_high,
        evidence_grade,
        cast(default_signal_count as int) as default_signal_count,
        calibration_status,
        case when reasons_text = '' then null else string_to_array(reasons_text, ';') end as calibration_reasons,
        case when recommendations_text = '' then null else string_to_array(recommendations_text, ';') end
            as recommendations,
        '1.0.0' as model_version
    from classified
    union all
    select
        audit_date,
        audit_key,
        arrow_cast(null, 'Utf8') as flow_key,
        arrow_cast(null, 'Utf8') as platform,
        arrow_cast(null, 'Utf8') as flow_id,
        arrow_cast(null, 'Utf8') as flow_name,
        arrow_cast(null, 'Utf8') as status,
        flow_type,
        arrow_cast(null, 'Utf8') as flow_type_method,
        make_array(channel) as channels,
        arrow_cast(null, 'Utf8') as trigger_type,
        arrow_cast(null, 'Utf8') as platform_trigger_type,
        arrow_cast(null, 'Utf8') as trigger_detail,
        arrow_cast(null, 'Utf8') as trigger_filters,
        arrow_cast(null, 'Utf8') as profile_filters,
        cast(null as int) as message_count,
        cast(null as int) as email_message_count,
        cast(null as int) as sms_message_count,
        cast(null as int) as split_count,
        cast(null as int) as branching_depth,
        arrow_cast(null, 'Utf8') as depth_method,
        cast(null as double) as first_message_delay_hours,
        cast(null as double) as longest_path_delay_hours,
        cast(null as double) as smart_sending_share,
        arrow_cast(null, 'Timestamp(Microsecond, Some("UTC"))') as created_at,
        arrow_cast(null, 'Timestamp(Microsecond, Some("UTC"))') as structure_updated_at,
        arrow_cast(null, 'Timestamp(Microsecond, Some("UTC"))') as content_updated_at,
        cast(null as int) as days_since_content_update,
        cast(null as int) as ab_tests_total,
        cast(null as int) as ab_tests_last_180d,
        cast(null as boolean) as holdout_active,
        cast(null as bigint) as sends_l30d,
        cast(null as bigint) as recipients_l30d,
        cast(null as double) as coverage_ratio_l30d,
        cast(null as double) as recipient_match_ratio_l30d,
        cast(null as decimal(18, 4)) as last_click_revenue_l30d,
        cast(null as date) as lift_period_start,
        cast(null as decimal(18, 4)) as incremental_revenue_l90d,
        cast(null as decimal(18, 4)) as ci_low,
        cast(null as decimal(18, 4)) as ci_high,
        arrow_cast(null, 'Utf8') as evidence_grade,
        cast(null as int) as default_signal_count,
        'missing' as calibration_status,
        make_array('missing_required_type') as calibration_reasons,
        make_array('build_missing_flow') as recommendations,
        '1.0.0' as model_version
    from missing
)

select * from final
