//! The program's rules, on a hand-built brand (fast) with many subscribers and orders.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};

use super::*;
use crate::simulate::model::{SimOrder, SimShop};

fn shop(start: NaiveDate, end: NaiveDate) -> SimShop {
    SimShop {
        shop_id: 60_000_000_007,
        name: "Fernhill Botanics".into(),
        myshopify_domain: "fernhill-botanics.myshopify.com".into(),
        iana_timezone: "America/New_York".into(),
        currency: "USD".into(),
        country: "US".into(),
        start_date: start,
        end_date: end,
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn order(id: u64, customer: u64, created_at: DateTime<Utc>, total: i64) -> SimOrder {
    SimOrder {
        order_id: id,
        name: format!("#{id}"),
        customer_id: Some(customer),
        email: None,
        phone: None,
        created_at,
        processed_at: created_at,
        updated_at: created_at,
        cancelled_at: None,
        financial_status: "paid".into(),
        test: false,
        source_name: "web".into(),
        currency: "USD".into(),
        presentment_currency: "USD".into(),
        discount_codes: if id.is_multiple_of(3) { vec!["SMS10".into()] } else { vec![] },
        offer_type: "none".into(),
        subtotal_minor: total,
        total_discount_minor: 0,
        shipping_minor: 0,
        tax_minor: 0,
        total_minor: total,
        landing_site: None,
        referring_site: None,
        utm_source: None,
        utm_medium: None,
        utm_campaign: None,
        lines: vec![],
        refunds: vec![],
    }
}

/// 600 subscribers, half opted in before the window; each customer orders every ~9 days.
fn fixture() -> (SimShop, Vec<SimOrder>, Vec<String>, Vec<SmsSubscriberInput>) {
    let shop = shop(date(2025, 9, 1), date(2026, 1, 31));
    let mut subs = Vec::new();
    let mut orders = Vec::new();
    let base = at(2025, 8, 1, 0);
    for c in 1..=600u64 {
        let opted_in_at =
            base + Duration::minutes((c * 389 % 200_000) as i64 + if c.is_multiple_of(2) { 0 } else { 60 * 24 * 30 });
        subs.push(SmsSubscriberInput {
            subscriber_id: format!("s_{c:06}"),
            customer_id: c,
            phone: format!("+1555{c:07}"),
            email: Some(format!("c{c}@example.com")),
            shopify_customer_id: Some(c),
            opted_in_at,
        });
        let mut t = at(2025, 9, 1, 3) + Duration::minutes((c * 7_919 % 10_000) as i64);
        let mut k = 0;
        while t < at(2026, 2, 1, 0) {
            let mut o = order(c * 1_000 + k, c, t, 2_000 + (c * 37 + k) as i64 % 9_000);
            o.test = k == 3 && c.is_multiple_of(50);
            if k == 4 && c.is_multiple_of(40) {
                o.cancelled_at = Some(t + Duration::hours(1));
            }
            orders.push(o);
            t += Duration::minutes(60 * 24 * 9 + (c * 131 % 900) as i64);
            k += 1;
        }
    }
    (shop, orders, vec!["daily-glow-serum".into(), "calm-night-cream".into()], subs)
}

fn program(platform: SmsPlatform) -> (SmsProgram, Vec<SimOrder>, Vec<SmsSubscriberInput>) {
    let (shop, orders, slugs, subs) = fixture();
    let p = build(&ProgramInput {
        seed: 7,
        platform,
        shop: &shop,
        orders: &orders,
        product_slugs: &slugs,
        subscribers: &subs,
    });
    (p, orders, subs)
}

#[test]
fn windows_split_at_the_migration() {
    let s = shop(date(2025, 9, 1), date(2026, 1, 31));
    assert_eq!(SmsPlatform::Attentive.window(&s), (at(2025, 9, 1, 0), at(2025, 11, 1, 0)));
    assert_eq!(SmsPlatform::Postscript.window(&s), (at(2025, 11, 1, 0), at(2026, 2, 1, 0)));
    let late = shop(date(2026, 8, 1), date(2026, 10, 31));
    let (a, b) = SmsPlatform::Attentive.window(&late);
    assert_eq!(a, b, "an Attentive window before the shop's days is empty");
    assert_eq!(SmsPlatform::Postscript.window(&late), (at(2026, 8, 1, 0), at(2026, 11, 1, 0)));
}

#[test]
fn deterministic() {
    assert_eq!(program(SmsPlatform::Postscript).0, program(SmsPlatform::Postscript).0);
}

#[test]
fn sends_only_while_subscribed_and_inside_the_window() {
    for platform in [SmsPlatform::Attentive, SmsPlatform::Postscript] {
        let (p, _, subs) = program(platform);
        let (start, end) = p.window;
        assert!(p.messages.len() > 1_000, "{platform:?}: {}", p.messages.len());
        assert!(!p.opt_outs.is_empty() && !p.clicks.is_empty() && !p.conversions.is_empty());
        let state: HashMap<&str, &SmsSubscriberState> =
            p.subscribers.iter().map(|s| (s.subscriber_id.as_str(), s)).collect();
        let input: HashMap<&str, &SmsSubscriberInput> = subs.iter().map(|s| (s.subscriber_id.as_str(), s)).collect();
        for m in &p.messages {
            assert!(m.sent_at >= start && m.sent_at < end);
            assert!(m.sent_at >= input[m.subscriber_id.as_str()].opted_in_at, "send before opt-in");
            if let Some(out) = state[m.subscriber_id.as_str()].opted_out_at {
                assert!(m.sent_at < out, "send after opt-out");
            }
            assert_eq!(segments(&m.body).1, m.segments);
        }
        for o in &p.opt_outs {
            let send = p.message(o.send_id.as_deref().unwrap()).unwrap();
            let gap = o.at - send.sent_at;
            assert!(gap >= Duration::minutes(1) && gap <= Duration::minutes(60));
        }
        let ids: std::collections::HashSet<&str> = p.messages.iter().map(|m| m.send_id.as_str()).collect();
        assert_eq!(ids.len(), p.messages.len(), "send ids are unique");
        // Opt-ins: exactly the subscribers who joined inside the window.
        let joined = subs.iter().filter(|s| s.opted_in_at >= start && s.opted_in_at < end).count();
        assert_eq!(p.opt_ins.len(), joined);
        // Rates near their targets.
        let rate = |n: usize| n as f64 / p.messages.len() as f64;
        assert!((0.09..0.15).contains(&rate(p.clicks.len())), "click rate {}", rate(p.clicks.len()));
        assert!((0.008..0.025).contains(&rate(p.opt_outs.len())), "opt-out rate {}", rate(p.opt_outs.len()));
        let failed = p.messages.iter().filter(|m| m.failed).count();
        assert_eq!(failed > 0, platform == SmsPlatform::Postscript);
    }
}

#[test]
fn journeys_and_campaigns_follow_their_triggers() {
    let (p, orders, _) = program(SmsPlatform::Postscript);
    // Campaigns: Nov 6 2025, Dec 4 2025, Jan 1 2026 (first Thursdays) at 17:00 UTC.
    let sends: Vec<_> = p.campaigns.iter().map(|c| c.send_at).collect();
    assert_eq!(sends, vec![at(2025, 11, 6, 17), at(2025, 12, 4, 17), at(2026, 1, 1, 17)]);
    for m in p.messages.iter().filter(|m| m.source_name == "Post-Purchase Thank You") {
        // A post-purchase send 2 h after one of its customer's real orders (or nudged a second).
        let matched = orders.iter().any(|o| {
            o.customer_id == Some(m.customer_id) && !o.test && o.cancelled_at.is_none() && {
                let d = m.sent_at - o.created_at;
                d >= Duration::hours(2) && d <= Duration::hours(2) + Duration::seconds(5)
            }
        });
        assert!(matched, "{}", m.send_id);
    }
    let truth = p.truth();
    assert_eq!(truth.sends, p.messages.len() as u64);
    assert_eq!(truth.sends_by_journey.values().sum::<u64>(), truth.sends);
    assert_eq!(truth.incremental_revenue_minor, 0);
    assert!(truth.sends_by_journey["Welcome Series"] > 0 && truth.sends_by_journey["campaigns"] > 0);
    assert_eq!(truth.click_conversions + truth.view_conversions, truth.conversions);
}

#[test]
fn clicks_follow_sends_and_conversions_stay_in_their_windows() {
    let (p, orders, _) = program(SmsPlatform::Attentive);
    let by_id: HashMap<u64, &SimOrder> = orders.iter().map(|o| (o.order_id, o)).collect();
    for c in &p.clicks {
        let m = p.message(&c.send_id).unwrap();
        let gap = c.clicked_at - m.sent_at;
        assert!(gap >= Duration::minutes(5) && gap <= Duration::minutes(180));
        assert!(c.url.contains("utm_source=attentive&utm_medium=sms&utm_campaign="));
        assert!(c.url.ends_with(&m.source_slug));
    }
    let mut revenue = 0;
    for c in &p.conversions {
        let o = by_id[&c.order_id];
        assert!(!o.test && o.cancelled_at.is_none());
        assert_eq!(c.revenue_minor, o.total_minor);
        revenue += o.total_minor;
        let gap = c.order_created_at - c.action_at;
        assert!(gap > Duration::zero());
        match c.attribution {
            SmsAttribution::Click => assert!(gap <= Duration::days(5)),
            SmsAttribution::View => {
                assert!(gap <= Duration::days(1));
                // No click in the 5 days before took precedence.
                assert!(!p.clicks.iter().any(|k| k.customer_id == c.customer_id
                    && k.clicked_at < c.order_created_at
                    && k.clicked_at >= c.order_created_at - Duration::days(5)));
            }
        }
        let m = p.message(&c.send_id).unwrap();
        assert_eq!(m.template_id, c.template_id);
    }
    assert_eq!(p.truth().conversion_revenue_minor, revenue);
    assert!(p.conversions.iter().any(|c| c.attribution == SmsAttribution::View));
    assert!(p.conversions.iter().any(|c| c.attribution == SmsAttribution::Click));
}
