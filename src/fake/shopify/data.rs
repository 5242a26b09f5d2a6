//! The simulated shop held in memory, and what of it exists at the fake's "now".
//!
//! The store keeps orders and customers as of the brand's last day. A request sees them as
//! of the fake clock instead: records created later do not exist, refunds and cancellations
//! dated later have not happened, and `updatedAt` and the financial status are recomputed from
//! what remains. Refunds added through the control handle and deleted orders are an overlay
//! on top, so a test can change the shop between two runs of a client.
//!
//! Only the compact simulated records are kept (a few hundred bytes an order); JSON is
//! rendered per page, so memory stays proportional to the store, not to its rendering.

use std::collections::{HashMap, HashSet};
use std::io;

use chrono::{DateTime, Duration, Utc};

use crate::simulate::model::{SimCustomer, SimOrder, SimProduct, SimRefund, SimShop};
use crate::simulate::store::{Entity, SimStore};

/// Everything loaded at start, immutable afterwards.
pub struct Dataset {
    pub shop: SimShop,
    /// Sorted by id.
    pub orders: Vec<SimOrder>,
    pub order_idx: HashMap<u64, usize>,
    /// Sorted by id.
    pub customers: Vec<SimCustomer>,
    pub customer_idx: HashMap<u64, usize>,
    /// Order positions per customer, by creation.
    pub customer_orders: HashMap<u64, Vec<usize>>,
    pub products: Vec<SimProduct>,
    pub product_idx: HashMap<u64, usize>,
    /// Variant id → (product, variant) positions.
    pub variant_idx: HashMap<u64, (usize, usize)>,
    /// Inventory item id → (product, variant) positions.
    pub item_idx: HashMap<u64, (usize, usize)>,
}

impl Dataset {
    pub fn load(store: &SimStore) -> io::Result<Self> {
        let shop = store.shop()?;
        let mut orders: Vec<SimOrder> = store.read_all(Entity::Orders)?;
        orders.sort_by_key(|o| o.order_id);
        orders.dedup_by_key(|o| o.order_id);
        let mut customers: Vec<SimCustomer> = store.read_all(Entity::Customers)?;
        customers.sort_by_key(|c| c.customer_id);
        customers.dedup_by_key(|c| c.customer_id);
        let mut products: Vec<SimProduct> = store.read_all(Entity::Products)?;
        products.sort_by_key(|p| p.product_id);
        let order_idx = orders.iter().enumerate().map(|(i, o)| (o.order_id, i)).collect();
        let customer_idx = customers.iter().enumerate().map(|(i, c)| (c.customer_id, i)).collect();
        let mut customer_orders: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, o) in orders.iter().enumerate() {
            if let Some(c) = o.customer_id {
                customer_orders.entry(c).or_default().push(i);
            }
        }
        for list in customer_orders.values_mut() {
            list.sort_by_key(|&i| (orders[i].created_at, orders[i].order_id));
        }
        let product_idx = products.iter().enumerate().map(|(i, p)| (p.product_id, i)).collect();
        let mut variant_idx = HashMap::new();
        let mut item_idx = HashMap::new();
        for (pi, p) in products.iter().enumerate() {
            for (vi, v) in p.variants.iter().enumerate() {
                variant_idx.insert(v.variant_id, (pi, vi));
                item_idx.insert(v.inventory_item_id, (pi, vi));
            }
        }
        Ok(Self {
            shop,
            orders,
            order_idx,
            customers,
            customer_idx,
            customer_orders,
            products,
            product_idx,
            variant_idx,
            item_idx,
        })
    }
}

/// Changes made through the control handle after start.
#[derive(Debug, Default)]
pub struct Overlay {
    pub refunds: HashMap<u64, Vec<SimRefund>>,
    pub deleted: HashSet<u64>,
}

/// What a request can see: the data at `now`, through the overlay and the token's scopes.
pub struct View<'a> {
    pub data: &'a Dataset,
    pub overlay: &'a Overlay,
    pub now: DateTime<Utc>,
    /// Records dated after this do not exist (`None` when the clock serves future records).
    pub horizon: Option<DateTime<Utc>>,
    /// Without `read_all_orders`, only orders created in the last 60 days are visible.
    pub all_orders: bool,
}

/// An order as of the view's now.
pub struct OrderAsOf<'a> {
    pub o: &'a SimOrder,
    /// Stored and added refunds that already happened, oldest first.
    pub refunds: Vec<&'a SimRefund>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// `PAID`, `PARTIALLY_REFUNDED`, `REFUNDED`, `VOIDED`, `PENDING`.
    pub financial_status: &'static str,
    pub refunded_minor: i64,
}

impl OrderAsOf<'_> {
    /// Units of a line refunded so far.
    pub fn refunded_qty(&self, line_id: u64) -> u32 {
        self.refunds.iter().flat_map(|r| &r.lines).filter(|l| l.line_id == line_id).map(|l| l.quantity).sum()
    }

    /// What the order adds to its customer's `amountSpent`.
    pub fn spent(&self) -> i64 {
        if self.o.test || self.financial_status == "VOIDED" { 0 } else { self.o.total_minor - self.refunded_minor }
    }
}

impl<'a> View<'a> {
    pub fn exists(&self, t: DateTime<Utc>) -> bool {
        self.horizon.is_none_or(|h| t <= h)
    }

    pub fn order_by_id(&self, id: u64) -> Option<OrderAsOf<'a>> {
        self.data.order_idx.get(&id).and_then(|&i| self.order(&self.data.orders[i]))
    }

    pub fn order(&self, o: &'a SimOrder) -> Option<OrderAsOf<'a>> {
        if self.overlay.deleted.contains(&o.order_id) || !self.exists(o.created_at) {
            return None;
        }
        if !self.all_orders && o.created_at < self.now - Duration::days(60) {
            return None;
        }
        Some(self.order_unchecked(o))
    }

    /// The as-of state of an order, whether or not the token may see it.
    pub fn order_unchecked(&self, o: &'a SimOrder) -> OrderAsOf<'a> {
        let added = self.overlay.refunds.get(&o.order_id).map(Vec::as_slice).unwrap_or_default();
        let mut refunds: Vec<&SimRefund> =
            o.refunds.iter().chain(added.iter()).filter(|r| self.exists(r.created_at)).collect();
        refunds.sort_by_key(|r| (r.created_at, r.refund_id));
        let cancelled_at = o.cancelled_at.filter(|c| self.exists(*c));
        // The stored stamp also reflects fulfilment, which the store does not date; it holds
        // whenever it is already in the past, otherwise the latest visible change does.
        let stored_visible = self.exists(o.updated_at);
        let mut updated_at = if stored_visible {
            o.updated_at
        } else {
            o.refunds
                .iter()
                .map(|r| r.created_at)
                .chain(cancelled_at)
                .filter(|t| self.exists(*t))
                .fold(o.created_at, DateTime::max)
        };
        for r in added.iter().filter(|r| self.exists(r.created_at)) {
            updated_at = updated_at.max(r.created_at);
        }
        let refunded_minor: i64 = refunds.iter().map(|r| r.amount_minor).sum();
        let financial_status = if cancelled_at.is_some() && refunds.is_empty() {
            "VOIDED"
        } else if o.financial_status == "pending" {
            "PENDING"
        } else if refunded_minor >= o.total_minor && refunded_minor > 0 {
            "REFUNDED"
        } else if refunded_minor > 0 {
            "PARTIALLY_REFUNDED"
        } else {
            "PAID"
        };
        OrderAsOf { o, refunds, cancelled_at, updated_at, financial_status, refunded_minor }
    }

    pub fn customer_by_id(&self, id: u64) -> Option<CustomerAsOf<'a>> {
        self.data.customer_idx.get(&id).and_then(|&i| self.customer(&self.data.customers[i]))
    }

    pub fn customer(&self, c: &'a SimCustomer) -> Option<CustomerAsOf<'a>> {
        if !self.exists(c.created_at) {
            return None;
        }
        let end = View { overlay: &EMPTY_OVERLAY, horizon: None, all_orders: true, ..*self };
        let mut orders_count = i64::from(c.orders_count);
        let mut spent = c.amount_spent_minor;
        let mut last_order = None;
        let mut updated_at = if self.exists(c.updated_at) {
            c.updated_at
        } else {
            [c.email_consent_updated_at, c.sms_consent_updated_at]
                .into_iter()
                .flatten()
                .filter(|t| self.exists(*t))
                .fold(c.created_at, DateTime::max)
        };
        for &i in self.data.customer_orders.get(&c.customer_id).into_iter().flatten() {
            let o = &self.data.orders[i];
            let at_end = end.order_unchecked(o);
            if !self.exists(o.created_at) || self.overlay.deleted.contains(&o.order_id) {
                orders_count -= 1;
                spent -= at_end.spent();
                continue;
            }
            let now = self.order_unchecked(o);
            spent += now.spent() - at_end.spent();
            if !self.exists(c.updated_at) {
                updated_at = updated_at.max(now.updated_at);
            }
            last_order = Some(o.order_id);
        }
        Some(CustomerAsOf {
            c,
            updated_at,
            orders_count: orders_count.max(0) as u64,
            spent_minor: spent.max(0),
            last_order,
        })
    }

    pub fn product(&self, p: &'a SimProduct) -> Option<&'a SimProduct> {
        self.exists(p.created_at).then_some(p)
    }

    /// A product's `updatedAt` as of now (its creation while the stored stamp is ahead).
    pub fn product_updated(&self, p: &SimProduct) -> DateTime<Utc> {
        if self.exists(p.updated_at) { p.updated_at } else { p.created_at }
    }
}

static EMPTY_OVERLAY: std::sync::LazyLock<Overlay> = std::sync::LazyLock::new(Overlay::default);

/// A customer as of the view's now: counters move back with orders not yet placed.
pub struct CustomerAsOf<'a> {
    pub c: &'a SimCustomer,
    pub updated_at: DateTime<Utc>,
    pub orders_count: u64,
    pub spent_minor: i64,
    pub last_order: Option<u64>,
}
