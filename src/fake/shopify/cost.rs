//! Calculated query cost and the leaky bucket it is charged to (apis.md 2.3).
//!
//! Rules (requested cost, before running; see [`super::exec::requested_cost`]):
//! - scalars and enums cost 0, every object field 1 plus its selection;
//! - a connection costs 2 plus `first` (or `last`) × the cost of one node (1 plus the node
//!   selection, `edges { node }` and `nodes` counted once); `pageInfo`, `edges` and `cursor`
//!   are covered by the 2;
//! - a plain list of objects (`refunds`, `transactions`, `taxLines`, ...) costs `first` × the
//!   cost of one element when it takes `first` and it is given, otherwise one element's cost
//!   (Shopify cannot know the length in advance);
//! - on an interface or union the most expensive possible type counts;
//! - each mutation field costs 10, whatever it selects.
//!
//! The actual cost applies the same rules to what was returned (returned nodes and list
//! elements instead of `first`, null objects free). The requested cost must fit what the
//! bucket holds; it is charged up front and the difference to the actual cost refunded. A
//! single query may not request more than [`MAX_QUERY_COST`].

use std::time::Instant;

use serde_json::{Value, json};

pub const MAX_QUERY_COST: u64 = 1000;
pub const MUTATION_COST: u64 = 10;
pub const DOCS: &str = "https://shopify.dev/api/usage/rate-limits";

/// The bucket's state as reported in `throttleStatus`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleStatus {
    pub maximum_available: f64,
    pub currently_available: f64,
    pub restore_rate: f64,
}

impl ThrottleStatus {
    pub fn to_json(self) -> Value {
        json!({
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": self.currently_available.floor(),
            "restoreRate": self.restore_rate,
        })
    }
}

/// `extensions.cost` of a response; `actual` is `None` when the query did not run.
pub fn cost_json(requested: u64, actual: Option<u64>, status: ThrottleStatus) -> Value {
    json!({
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": status.to_json(),
    })
}

/// A leaky bucket of points refilled continuously by wall time.
#[derive(Debug, Clone)]
pub struct Bucket {
    max: f64,
    restore: f64,
    available: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(max: f64, restore: f64) -> Self {
        Self { max, restore, available: max, last: Instant::now() }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let secs = now.duration_since(self.last).as_secs_f64();
        self.available = (self.available + secs * self.restore).min(self.max);
        self.last = now;
    }

    pub fn status(&mut self) -> ThrottleStatus {
        self.refill();
        ThrottleStatus { maximum_available: self.max, currently_available: self.available, restore_rate: self.restore }
    }

    /// Takes `points` if the bucket holds them; otherwise leaves it untouched.
    pub fn try_take(&mut self, points: u64) -> Result<(), ThrottleStatus> {
        self.refill();
        if points as f64 > self.available {
            return Err(self.status());
        }
        self.available -= points as f64;
        Ok(())
    }

    /// Gives back what was charged but not used.
    pub fn give_back(&mut self, points: u64) {
        self.refill();
        self.available = (self.available + points as f64).min(self.max);
    }

    /// New size and rate; the bucket starts full.
    pub fn set(&mut self, max: f64, restore: f64) {
        *self = Bucket::new(max, restore);
    }

    pub fn drain(&mut self) {
        self.refill();
        self.available = 0.0;
    }

    /// Seconds until `points` are available.
    pub fn wait_secs(&mut self, points: u64) -> f64 {
        self.refill();
        if self.restore <= 0.0 {
            return f64::INFINITY;
        }
        ((points as f64 - self.available) / self.restore).max(0.0)
    }
}

/// One GraphQL request as the cost model saw it, for test assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct CostEntry {
    pub operation: Option<String>,
    pub requested: u64,
    /// `None` when the query was refused (throttled or over the single-query limit).
    pub actual: Option<u64>,
    pub throttled: bool,
    pub max_cost_exceeded: bool,
    /// Points left in the bucket after the request.
    pub currently_available: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_charges_refunds_and_refills() {
        let mut b = Bucket::new(100.0, 1000.0);
        b.try_take(80).unwrap();
        assert!(b.status().currently_available < 25.0);
        b.give_back(70);
        assert!(b.status().currently_available >= 90.0);
        b.set(10.0, 0.0);
        assert!(b.try_take(11).is_err());
        b.try_take(10).unwrap();
        assert!(b.try_take(1).is_err());
        assert!(b.wait_secs(1).is_infinite());
    }
}
