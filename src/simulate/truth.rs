//! What the marts must say about a simulated brand, computed from the simulator's own records
//! (not from anything the connectors landed): order revenue by models.md 1.4 and 4.3, and
//! acquisition cohort sizes with the Shopify customer as the person. The demo checks its marts
//! against these; the tests check theirs.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;

use super::model::{SimCustomer, SimOrder};
use super::store::{Entity, SimStore};

/// Refunds later than this many local days after the order do not restate it (cfg_settings
/// refund_restatement_days, shipped default).
pub const RESTATEMENT_DAYS: i64 = 120;

/// The simulator's figures for the marts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MartTruth {
    /// Non-test orders (fct_orders rows).
    pub orders: i64,
    /// Of which qualifying (models.md 1.4).
    pub qualifying: i64,
    /// Net revenue of every order, minor units (fct_orders.net_revenue summed).
    pub net_minor: i64,
    /// Net revenue of the qualifying orders, minor units.
    pub qualifying_net_minor: i64,
    /// Persons acquired per local month (`YYYY-MM-01`): customers whose first qualifying order
    /// falls in it, left-censored customers (models.md 1.5) excluded.
    pub cohorts: BTreeMap<String, i64>,
}

fn local(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// Net revenue of an order in minor units and whether it qualifies (models.md 1.4 and 4.3 as
/// fct_orders applies them; the simulator has no tax-inclusive prices, gift cards or B2B orders).
pub fn order_net(o: &SimOrder, tz: Tz) -> (i64, bool) {
    let voided = o.financial_status == "voided";
    let order_date = local(o.processed_at, tz);
    let kept: Vec<_> =
        o.refunds.iter().filter(|r| (local(r.created_at, tz) - order_date).num_days() <= RESTATEMENT_DAYS).collect();
    let (mut gross, mut discounts, mut returns) = (0i64, 0i64, 0i64);
    if !voided {
        for l in &o.lines {
            gross += l.price_minor * i64::from(l.quantity);
            discounts += l.discount_minor;
            returns += kept
                .iter()
                .flat_map(|r| &r.lines)
                .filter(|rl| rl.line_id == l.line_id)
                .map(|rl| rl.subtotal_minor)
                .sum::<i64>();
        }
    }
    let net = gross - discounts - returns;
    let placed_net: i64 = o.lines.iter().map(|l| l.price_minor * i64::from(l.quantity) - l.discount_minor).sum();
    let fully_refunded = returns > 0 && returns >= gross - discounts - 1;
    let draft_unpaid = o.source_name == "shopify_draft_order"
        && !["paid", "partially_refunded", "refunded"].contains(&o.financial_status.as_str());
    let qualifies = o.cancelled_at.is_none()
        && !voided
        && o.source_name != "pos"
        && !draft_unpaid
        && placed_net > 0
        && !fully_refunded
        && net > 0;
    (net, qualifies)
}

/// The figures of `store`'s brand, local dates in `tz` (the job's reporting timezone).
pub fn mart_truth(store: &SimStore, tz: Tz) -> std::io::Result<MartTruth> {
    let orders: Vec<SimOrder> = store.read_all(Entity::Orders)?;
    let customers: Vec<SimCustomer> = store.read_all(Entity::Customers)?;
    let orders: Vec<&SimOrder> = orders.iter().filter(|o| !o.test).collect();
    let mut t = MartTruth::default();
    let mut by_customer: HashMap<u64, Vec<&SimOrder>> = HashMap::new();
    for o in &orders {
        let (net, qualifies) = order_net(o, tz);
        t.orders += 1;
        t.net_minor += net;
        if qualifies {
            t.qualifying += 1;
            t.qualifying_net_minor += net;
        }
        if let Some(c) = o.customer_id {
            by_customer.entry(c).or_default().push(o);
        }
    }
    let Some(data_start) = orders.iter().map(|o| local(o.processed_at, tz)).min() else { return Ok(t) };
    for c in &customers {
        let Some(mine) = by_customer.get_mut(&c.customer_id) else { continue };
        mine.sort_by_key(|o| (o.processed_at, o.order_id));
        let first_landed = local(mine[0].processed_at, tz);
        let censored = c.orders_count as usize > mine.len()
            || ((first_landed - data_start).num_days() <= 7 && local(c.created_at, tz) < data_start);
        let Some(first) = mine.iter().find(|o| order_net(o, tz).1) else { continue };
        if !censored {
            let d = local(first.processed_at, tz);
            let month = NaiveDate::from_ymd_opt(d.year(), d.month(), 1).expect("first of a month");
            *t.cohorts.entry(month.to_string()).or_default() += 1;
        }
    }
    Ok(t)
}
