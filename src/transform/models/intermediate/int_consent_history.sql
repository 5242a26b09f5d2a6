-- Marketing consent over time, per platform subject (Klaviyo profile, Shopify customer) and
-- channel (models.md 4.4, "Consent history"): one row per interval during which the status held.
--
-- Keyed by the platform identifier in int_person_identifier's normal form (identifier_type,
-- identifier_value) plus the subject's hashed email and phone, not by person_key: this model
-- builds before int_person_identifier (models build by name within a layer), so consumers join
-- person_key on (identifier_type, identifier_value) themselves.
--
-- Inputs:
--   * Klaviyo subscribe/unsubscribe events: metrics whose map_event_type row (platform klaviyo)
--     has event_type subscribed / unsubscribed; the seed's channel is the consent channel.
--   * Klaviyo profile snapshot: email_consent / sms_consent with their *_consent_at; the only
--     source for changes before the event window. NULL timestamps (never subscribed) fall back to
--     the profile's created_at, then updated_at.
--   * Shopify customer snapshot: email / SMS marketing state with its update timestamp (Shopify
--     keeps no history; NULL SMS state = no phone, no row).
--   * Attentive events (feed and webhooks, stg_attentive__events) mapped to subscribed /
--     unsubscribed by map_event_type; transactional opt-ins and opt-outs are not marketing
--     consent and stay out.
--   * Postscript: the webhooks' opt-ins and opt-outs (dated), the warehouse push's subscription
--     and opt-out times (dated), and the API's current promotional can_send as a snapshot
--     (subscribed from created_at, unsubscribed from updated_at: the API keeps no history).
--
-- Changes of one subject and channel are ordered by time; at the same instant a snapshot ranks
-- after an event (the snapshot is the state after every change), then by source id. A change
-- that repeats the status in force is absorbed into the running interval, so consecutive rows
-- always differ in status and the latest row (valid_to NULL) is the snapshot's current state
-- whenever the snapshot is the newest change.
with status_map as (
    select 'subscribed' as raw_status, 'subscribed' as status
    union all select 'unsubscribed', 'unsubscribed'
    union all select 'never_subscribed', 'never_subscribed'
    union all select 'not_subscribed', 'never_subscribed'
    union all select 'pending', 'pending'
    union all select 'invalid', 'invalid'
    union all select 'redacted', 'redacted'
),

shop as (
    select shop_id
    from (
        select shop_id, row_number() over (order by _landed_at desc, shop_id) as shop_rank
        from stg_shopify__shop
    )
    where shop_rank = 1
),

consent_metrics as (
    select m.metric_id, m.metric_name, t.channel, t.event_type
    from stg_klaviyo__metrics as m
    join map_event_type as t
        on t.platform = 'klaviyo' and t.raw_event_name = m.metric_name
    where t.event_type in ('subscribed', 'unsubscribed')
),

klaviyo_events as (
    select
        'klaviyo' as platform,
        'klaviyo_profile_id' as identifier_type,
        e.profile_id as identifier_value,
        cm.channel,
        cm.event_type as raw_status,
        e.occurred_at as changed_at,
        'klaviyo_event' as change_source,
        e.event_id as change_source_id,
        cm.metric_name as change_detail,
        0 as source_rank
    -- The few consent metrics are the join's build side; the events stream past them.
    from consent_metrics as cm
    join stg_klaviyo__events as e on cm.metric_id = e.metric_id
    where e.profile_id is not null
),

klaviyo_profiles as (
    select
        'klaviyo' as platform,
        'klaviyo_profile_id' as identifier_type,
        profile_id as identifier_value,
        'email' as channel,
        email_consent as raw_status,
        coalesce(email_consent_at, created_at, updated_at) as changed_at,
        'klaviyo_profile' as change_source,
        profile_id as change_source_id,
        arrow_cast(null, 'Utf8') as change_detail,
        1 as source_rank
    from stg_klaviyo__profiles
    where email_consent is not null
    union all
    select
        'klaviyo' as platform,
        'klaviyo_profile_id' as identifier_type,
        profile_id as identifier_value,
        'sms' as channel,
        sms_consent as raw_status,
        coalesce(sms_consent_at, created_at, updated_at) as changed_at,
        'klaviyo_profile' as change_source,
        profile_id as change_source_id,
        arrow_cast(null, 'Utf8') as change_detail,
        1 as source_rank
    from stg_klaviyo__profiles
    where sms_consent is not null
),

shopify_customers as (
    select
        'shopify' as platform,
        'shopify_customer_id' as identifier_type,
        coalesce(arrow_cast(s.shop_id, 'Utf8'), '') || ':' || arrow_cast(c.customer_id, 'Utf8') as identifier_value,
        'email' as channel,
        c.email_consent as raw_status,
        coalesce(c.email_consent_at, c.created_at, c.updated_at) as changed_at,
        'shopify_customer' as change_source,
        arrow_cast(c.customer_id, 'Utf8') as change_source_id,
        c.email_consent_opt_in_level as change_detail,
        1 as source_rank
    from stg_shopify__customers as c
    left join shop as s on true
    where c.email_consent is not null
    union all
    select
        'shopify' as platform,
        'shopify_customer_id' as identifier_type,
        coalesce(arrow_cast(s.shop_id, 'Utf8'), '') || ':' || arrow_cast(c.customer_id, 'Utf8') as identifier_value,
        'sms' as channel,
        c.sms_consent as raw_status,
        coalesce(c.sms_consent_at, c.created_at, c.updated_at) as changed_at,
        'shopify_customer' as change_source,
        arrow_cast(c.customer_id, 'Utf8') as change_source_id,
        c.sms_consent_opt_in_level as change_detail,
        1 as source_rank
    from stg_shopify__customers as c
    left join shop as s on true
    where c.sms_consent is not null
),

attentive_events as (
    select
        'attentive' as platform,
        'attentive_subscriber_id' as identifier_type,
        e.subscriber_id as identifier_value,
        coalesce(e.channel, t.channel) as channel,
        t.event_type as raw_status,
        e.occurred_at as changed_at,
        'attentive_event' as change_source,
        e.event_id as change_source_id,
        e.raw_event_name as change_detail,
        0 as source_rank
    from map_event_type as t
    join stg_attentive__events as e on t.platform = 'attentive' and t.raw_event_name = e.raw_event_name
    where t.event_type in ('subscribed', 'unsubscribed')
        and e.subscriber_id is not null
        and coalesce(e.subscription_type, 'MARKETING') = 'MARKETING'
),

postscript_changes as (
    select
        'postscript' as platform,
        'postscript_subscriber_id' as identifier_type,
        w.subscriber_id as identifier_value,
        t.channel,
        t.event_type as raw_status,
        w.occurred_at as changed_at,
        'postscript_webhook' as change_source,
        w.event_id as change_source_id,
        w.raw_event_name as change_detail,
        0 as source_rank
    from map_event_type as t
    join stg_postscript__webhook_events as w on t.platform = 'postscript' and t.raw_event_name = w.raw_event_name
    where t.event_type in ('subscribed', 'unsubscribed') and w.subscriber_id is not null
    union all
    select
        'postscript', 'postscript_subscriber_id', subscriber_id, 'sms', 'subscribed', created_at,
        'postscript_warehouse', subscriber_id || ':in', arrow_cast(null, 'Utf8'), 0
    from stg_postscript__warehouse_subscribers
    union all
    select
        'postscript', 'postscript_subscriber_id', subscriber_id, 'sms', 'unsubscribed', opted_out_at,
        'postscript_warehouse', subscriber_id || ':out', arrow_cast(null, 'Utf8'), 0
    from stg_postscript__warehouse_subscribers
    where opted_out_at is not null
    union all
    select
        'postscript', 'postscript_subscriber_id', subscriber_id, 'sms', sms_consent,
        case when sms_consent = 'subscribed' then coalesce(created_at, updated_at) else updated_at end,
        'postscript_subscriber', subscriber_id as change_source_id, arrow_cast(null, 'Utf8'), 1
    from stg_postscript__subscribers
),

changes as (
    select * from klaviyo_events
    union all
    select * from klaviyo_profiles
    union all
    select * from shopify_customers
    union all
    select * from attentive_events
    union all
    select * from postscript_changes
),

ordered as (
    select
        c.*,
        sm.status,
        lag(sm.status) over (
            partition by c.platform, c.identifier_value, c.channel
            order by c.changed_at, c.source_rank, c.change_source_id
        ) as previous_status
    from status_map as sm
    join changes as c on sm.raw_status = c.raw_status
    where c.changed_at is not null
),

intervals as (
    select
        *,
        lead(changed_at) over (
            partition by platform, identifier_value, channel
            order by changed_at, source_rank, change_source_id
        ) as next_change_at,
        row_number() over (
            partition by platform, identifier_value, channel
            order by changed_at, source_rank, change_source_id
        ) as interval_seq
    from ordered
    where previous_status is null or previous_status <> status
),

subjects as (
    select 'klaviyo' as platform, profile_id as identifier_value, email_sha256, phone_sha256
    from stg_klaviyo__profiles
    union all
    select
        'shopify',
        coalesce(arrow_cast(s.shop_id, 'Utf8'), '') || ':' || arrow_cast(c.customer_id, 'Utf8'),
        c.email_sha256,
        c.phone_sha256
    from stg_shopify__customers as c
    left join shop as s on true
    union all
    select 'attentive', subscriber_id, max(email_sha256), max(phone_sha256)
    from stg_attentive__events
    where subscriber_id is not null
    group by subscriber_id
    union all
    select 'postscript', subscriber_id, max(email_sha256), max(phone_sha256)
    from (
        select subscriber_id, email_sha256, phone_sha256 from stg_postscript__subscribers
        union all
        select subscriber_id, email_sha256, phone_sha256 from stg_postscript__warehouse_subscribers
    )
    group by subscriber_id
),

final as (
    select
        arrow_cast(
            md5(
                i.platform || '|' || i.identifier_value || '|' || i.channel || '|' || i.change_source || '|'
                || i.change_source_id
            ),
            'Utf8'
        ) as consent_key,
        i.platform,
        i.identifier_type,
        i.identifier_value,
        sj.email_sha256,
        sj.phone_sha256,
        i.channel,
        i.status,
        i.raw_status,
        i.changed_at as valid_from,
        i.next_change_at as valid_to,
        i.next_change_at is null as is_current,
        cast(i.interval_seq as int) as interval_seq,
        i.change_source,
        i.change_source_id,
        i.change_detail
    from subjects as sj
    right join intervals as i on sj.platform = i.platform and sj.identifier_value = i.identifier_value
)

select * from final
order by platform, identifier_value, channel, interval_seq
