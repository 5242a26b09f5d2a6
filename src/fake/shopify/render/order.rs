//! Orders in Shopify's shape: lines, discount applications, refunds, transactions and the
//! customer journey.
//!
//! Mapping choices:
//! - discount applications come from `discount_codes`/`offer_type`: codes on web and app
//!   orders are `DiscountCodeApplication`s, except every fifth `BFCM…` order (by id) which
//!   Shopify Scripts applied (`ScriptDiscountApplication`); draft orders carry a
//!   `ManualDiscountApplication`, POS orders an `AutomaticDiscountApplication`. Percentages
//!   come from the code, a free gift is a fixed amount equal to the gift line's discount, so
//!   line `totalDiscountSet`s sum to the order's `totalDiscountsSet`;
//! - one line in 37 (by line id) points at a variant deleted since: `variant` is null;
//! - `customerJourneySummary` exists for `web` orders only (null for POS, draft and app
//!   orders); within an hour of processing it is `ready: false` without visits, later both
//!   visits carry the simulated landing page, referrer and UTM parameters;
//! - each paid order has a `SALE` transaction, each refund a `REFUND` one (parent: the sale);
//!   a cancelled order without refunds was only authorised and then voided.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use super::{Bags, Renderer, gid, marker, money_v2, ts, ts_opt};
use crate::fake::shopify::data::OrderAsOf;
use crate::simulate::model::{ConsentState, SimOrderLine, SimRefund};

/// One transaction to render: ids are derived from the order (sale, authorisation, void) or
/// the refund, so they are stable across requests.
struct Txn {
    id: u64,
    kind: &'static str,
    at: DateTime<Utc>,
    minor: i64,
}

fn refund_txn(r: &SimRefund) -> Txn {
    Txn { id: r.refund_id * 8 + 2, kind: "REFUND", at: r.created_at, minor: r.amount_minor }
}

/// Whether a line's variant has been deleted since the order (deterministic, one in 37).
fn variant_deleted(line_id: u64) -> bool {
    line_id % 37 == 5
}

fn percent_of_code(code: &str) -> Option<f64> {
    let digits: String = code.chars().rev().take_while(char::is_ascii_digit).collect();
    let digits: String = digits.chars().rev().collect();
    digits.parse::<f64>().ok().filter(|p| *p > 0.0 && *p <= 100.0)
}

impl Renderer<'_, '_> {
    pub fn order(&self, v: &OrderAsOf) -> Value {
        let o = v.o;
        let bags = Bags { shop: &self.view.data.shop.currency, presentment: &o.presentment_currency };
        let tax_rate = if o.subtotal_minor > 0 { o.tax_minor as f64 / o.subtotal_minor as f64 } else { 0.0 };
        let tax_rate = (tax_rate * 1000.0).round() / 1000.0;
        let cancelled = v.cancelled_at.is_some();
        let apps = self.discount_applications(v);
        let lines: Vec<Value> = o.lines.iter().map(|l| self.line_item(v, l, tax_rate, &apps, bags)).collect();
        let refunded_lines: i64 = v.refunds.iter().flat_map(|r| &r.lines).map(|l| l.subtotal_minor).sum();
        let refunded_tax: i64 = v
            .refunds
            .iter()
            .flat_map(|r| &r.lines)
            .map(|l| (l.subtotal_minor as f64 * tax_rate).round() as i64)
            .sum::<i64>()
            .min(o.tax_minor);
        let current_subtotal = if cancelled { 0 } else { (o.subtotal_minor - refunded_lines).max(0) };
        let current_tax = if cancelled { 0 } else { (o.tax_minor - refunded_tax).max(0) };
        let current_total = if cancelled { 0 } else { (o.total_minor - v.refunded_minor).max(0) };
        let voided = v.financial_status == "VOIDED";
        let received = if voided || v.financial_status == "PENDING" { 0 } else { o.total_minor };
        let transactions = self.order_transactions(v, bags);
        let refunds: Vec<Value> =
            v.refunds.iter().map(|r| self.refund(v, r, &lines, tax_rate, bags, transactions.first())).collect();
        let shipping_lines = if o.source_name == "pos" {
            Vec::new()
        } else {
            let free_code = o.offer_type == "free_shipping";
            let original = if free_code { 695 } else { o.shipping_minor };
            vec![json!({
                "__typename": "ShippingLine",
                "id": gid("ShippingLine", o.order_id),
                "title": if o.shipping_minor == 0 { "Free Shipping" } else { "Standard" },
                "code": if o.shipping_minor == 0 { "FREE" } else { "STANDARD" },
                "source": "shopify",
                "isRemoved": false,
                "originalPriceSet": bags.bag(original),
                "discountedPriceSet": bags.bag(o.shipping_minor),
                "currentDiscountedPriceSet": bags.bag(if cancelled { 0 } else { o.shipping_minor }),
            })]
        };
        let tax_lines = if o.tax_minor > 0 { vec![self.tax_line(tax_rate, o.tax_minor, bags)] } else { Vec::new() };
        let number: i64 = o.name.trim_start_matches('#').parse().unwrap_or(0);
        let fulfilled = !cancelled && o.processed_at + Duration::days(3) <= self.view.now;
        let customer = o.customer_id.map_or(Value::Null, |c| marker("Customer", gid("Customer", c)));
        let cart_discount = if o.offer_type == "percent_off" { o.total_discount_minor } else { 0 };
        let head = json!({
            "__typename": "Order",
            "id": gid("Order", o.order_id),
            "legacyResourceId": o.order_id.to_string(),
            "name": o.name,
            "number": number,
            "confirmationNumber": confirmation_number(o.order_id),
            "createdAt": ts(o.created_at),
            "updatedAt": ts(v.updated_at),
            "processedAt": ts(o.processed_at),
            "cancelledAt": ts_opt(v.cancelled_at),
            "cancelReason": if cancelled { Value::from("CUSTOMER") } else { Value::Null },
            "closed": fulfilled || cancelled,
            "closedAt": if cancelled { ts_opt(v.cancelled_at) } else { Value::Null },
            "confirmed": true,
            "test": o.test,
            "tags": if o.test { json!(["test"]) } else { json!([]) },
            "note": Value::Null,
            "sourceName": o.source_name,
            "sourceIdentifier": Value::Null,
            "email": o.email,
            "phone": o.phone,
            "customerAcceptsMarketing": o.customer_id.and_then(|c| self.view.customer_by_id(c))
                .is_some_and(|c| c.c.email_marketing_consent == ConsentState::Subscribed),
            "customerLocale": "en",
            "statusPageUrl": format!("https://{}/{}/orders/{}/authenticate", self.shop().myshopify_domain,
                self.shop().shop_id, confirmation_number(o.order_id).to_lowercase()),
            "currencyCode": self.currency(),
            "presentmentCurrencyCode": o.presentment_currency,
            "displayFinancialStatus": v.financial_status,
            "displayFulfillmentStatus": if fulfilled { "FULFILLED" } else { "UNFULFILLED" },
            "fullyPaid": received > 0,
            "unpaid": received == 0,
            "taxesIncluded": false,
            "taxExempt": false,
            "discountCodes": o.discount_codes,
            "discountCode": o.discount_codes.first(),
            "customer": customer,
        });
        let money = json!({
            "subtotalPriceSet": bags.bag(o.subtotal_minor),
            "currentSubtotalPriceSet": bags.bag(current_subtotal),
            "totalDiscountsSet": bags.bag(o.total_discount_minor),
            "currentTotalDiscountsSet": bags.bag(if cancelled { 0 } else { o.total_discount_minor }),
            "cartDiscountAmountSet": bags.bag(cart_discount),
            "totalShippingPriceSet": bags.bag(o.shipping_minor),
            "currentShippingPriceSet": bags.bag(if cancelled { 0 } else { o.shipping_minor }),
            "totalTaxSet": bags.bag(o.tax_minor),
            "currentTotalTaxSet": bags.bag(current_tax),
            "totalPriceSet": bags.bag(o.total_minor),
            "originalTotalPriceSet": bags.bag(o.total_minor),
            "currentTotalPriceSet": bags.bag(current_total),
            "totalRefundedSet": bags.bag(v.refunded_minor),
            "totalRefundedShippingSet": bags.bag(0),
            "totalReceivedSet": bags.bag(received),
            "netPaymentSet": bags.bag(received - v.refunded_minor),
            "totalOutstandingSet": bags.bag(0),
            "totalTipReceivedSet": bags.bag(0),
        });
        let nested = json!({
            "customerJourneySummary": self.journey(v),
            "discountApplications": apps,
            "lineItems": lines,
            "shippingLines": shipping_lines,
            "taxLines": tax_lines,
            "refunds": refunds,
            "transactions": transactions,
        });
        merge(merge(head, money), nested)
    }

    fn tax_line(&self, rate: f64, minor: i64, bags: Bags) -> Value {
        let title = if (rate - 0.13).abs() < 0.005 { "HST" } else { "State Tax" };
        json!({
            "__typename": "TaxLine",
            "title": title,
            "rate": rate,
            "ratePercentage": (rate * 1000.0).round() / 10.0,
            "priceSet": bags.bag(minor),
        })
    }

    fn discount_applications(&self, v: &OrderAsOf) -> Vec<Value> {
        let o = v.o;
        o.discount_codes
            .iter()
            .enumerate()
            .map(|(index, code)| {
                let gross: i64 = o.lines.iter().map(|l| l.price_minor * i64::from(l.quantity)).sum();
                let (value, target_type, selection, method) = match o.offer_type.as_str() {
                    "free_shipping" => (
                        json!({"__typename": "PricingPercentageValue", "percentage": 100.0}),
                        "SHIPPING_LINE",
                        "ALL",
                        "EACH",
                    ),
                    "gift" => (money_v2(o.total_discount_minor, self.currency()), "LINE_ITEM", "ENTITLED", "EACH"),
                    _ => {
                        let pct = percent_of_code(code).unwrap_or_else(|| {
                            if gross > 0 { (o.total_discount_minor as f64 * 100.0 / gross as f64).round() } else { 0.0 }
                        });
                        (
                            json!({"__typename": "PricingPercentageValue", "percentage": pct}),
                            "LINE_ITEM",
                            "ALL",
                            "ACROSS",
                        )
                    }
                };
                let mut app = Map::new();
                let typename = match o.source_name.as_str() {
                    "shopify_draft_order" => {
                        app.insert("title".into(), Value::from(code.as_str()));
                        app.insert("description".into(), Value::from(format!("Manual discount {code}")));
                        "ManualDiscountApplication"
                    }
                    "pos" => {
                        app.insert("title".into(), Value::from(code.as_str()));
                        "AutomaticDiscountApplication"
                    }
                    _ if code.starts_with("BFCM") && o.order_id.is_multiple_of(5) => {
                        app.insert("title".into(), Value::from(code.as_str()));
                        "ScriptDiscountApplication"
                    }
                    _ => {
                        app.insert("code".into(), Value::from(code.as_str()));
                        "DiscountCodeApplication"
                    }
                };
                app.insert("__typename".into(), Value::from(typename));
                app.insert("index".into(), Value::from(index));
                app.insert("allocationMethod".into(), Value::from(method));
                app.insert("targetSelection".into(), Value::from(selection));
                app.insert("targetType".into(), Value::from(target_type));
                app.insert("value".into(), value);
                Value::Object(app)
            })
            .collect()
    }

    fn line_item(&self, v: &OrderAsOf, l: &SimOrderLine, tax_rate: f64, apps: &[Value], bags: Bags) -> Value {
        let data = self.view.data;
        let found =
            data.variant_idx.get(&l.variant_id).map(|&(p, vi)| (&data.products[p], &data.products[p].variants[vi]));
        let (title, variant_title) = match found {
            Some((p, var)) => (p.title.clone(), var.title.clone()),
            None => (l.sku.clone(), String::new()),
        };
        let name = if variant_title.is_empty() || variant_title == "Default Title" {
            title.clone()
        } else {
            format!("{title} - {variant_title}")
        };
        let gross = l.price_minor * i64::from(l.quantity);
        let net = gross - l.discount_minor;
        let qty = i64::from(l.quantity.max(1));
        let current = if v.cancelled_at.is_some() { 0 } else { l.quantity.saturating_sub(v.refunded_qty(l.line_id)) };
        let allocations: Vec<Value> = if l.discount_minor > 0 {
            apps.iter()
                .filter(|a| a["targetType"] == "LINE_ITEM")
                .take(1)
                .map(|a| json!({"__typename": "DiscountAllocation", "allocatedAmountSet": bags.bag(l.discount_minor), "discountApplication": a}))
                .collect()
        } else {
            Vec::new()
        };
        let tax = (net as f64 * tax_rate).round() as i64;
        let variant = if variant_deleted(l.line_id) {
            Value::Null
        } else {
            marker("ProductVariant", gid("ProductVariant", l.variant_id))
        };
        json!({
            "__typename": "LineItem",
            "id": gid("LineItem", l.line_id),
            "name": name,
            "title": title,
            "variantTitle": if variant_title.is_empty() { Value::Null } else { Value::from(variant_title) },
            "sku": l.sku,
            "vendor": self.shop().name,
            "quantity": l.quantity,
            "currentQuantity": current,
            "refundableQuantity": current,
            "unfulfilledQuantity": 0,
            "nonFulfillableQuantity": 0,
            "taxable": true,
            "isGiftCard": false,
            "requiresShipping": true,
            "product": marker("Product", gid("Product", l.product_id)),
            "variant": variant,
            "originalUnitPriceSet": bags.bag(l.price_minor),
            "discountedUnitPriceSet": bags.bag(net / qty),
            "discountedUnitPriceAfterAllDiscountsSet": bags.bag(net / qty),
            "originalTotalSet": bags.bag(gross),
            "discountedTotalSet": bags.bag(net),
            "totalDiscountSet": bags.bag(l.discount_minor),
            "customAttributes": [],
            "discountAllocations": allocations,
            "taxLines": if tax > 0 { vec![self.tax_line(tax_rate, tax, bags)] } else { Vec::new() },
        })
    }

    fn gateway(&self, source: &str) -> (&'static str, &'static str) {
        match source {
            "pos" => ("cash", "Cash"),
            "shopify_draft_order" => ("manual", "Manual"),
            _ => ("shopify_payments", "Shopify Payments"),
        }
    }

    fn transaction(&self, o: &OrderAsOf, t: Txn, bags: Bags, parent: Option<&Value>) -> Value {
        let Txn { id, kind, at, minor } = t;
        let (gateway, formatted) = self.gateway(&o.o.source_name);
        let parent = parent.map_or(Value::Null, |p| {
            json!({"__typename": "OrderTransaction", "id": p["id"], "kind": p["kind"], "status": p["status"],
                   "gateway": p["gateway"], "formattedGateway": p["formattedGateway"], "processedAt": p["processedAt"],
                   "createdAt": p["createdAt"], "test": p["test"], "errorCode": null, "authorizationCode": p["authorizationCode"],
                   "amountSet": p["amountSet"], "parentTransaction": null})
        });
        json!({
            "__typename": "OrderTransaction",
            "id": gid("OrderTransaction", id),
            "kind": kind,
            "status": "SUCCESS",
            "gateway": gateway,
            "formattedGateway": formatted,
            "processedAt": ts(at),
            "createdAt": ts(at),
            "test": o.o.test,
            "errorCode": null,
            "authorizationCode": if kind == "SALE" || kind == "AUTHORIZATION" {
                Value::from(format!("{:06}", o.o.order_id % 1_000_000))
            } else { Value::Null },
            "amountSet": bags.bag(minor),
            "parentTransaction": parent,
        })
    }

    fn order_transactions(&self, v: &OrderAsOf, bags: Bags) -> Vec<Value> {
        let o = v.o;
        if v.financial_status == "PENDING" {
            return Vec::new();
        }
        if v.financial_status == "VOIDED" {
            let auth = self.transaction(
                v,
                Txn { id: o.order_id * 8 + 1, kind: "AUTHORIZATION", at: o.processed_at, minor: o.total_minor },
                bags,
                None,
            );
            let at = v.cancelled_at.unwrap_or(o.processed_at);
            let void = self.transaction(
                v,
                Txn { id: o.order_id * 8 + 3, kind: "VOID", at, minor: o.total_minor },
                bags,
                Some(&auth),
            );
            return vec![auth, void];
        }
        let sale = self.transaction(
            v,
            Txn { id: o.order_id * 8 + 1, kind: "SALE", at: o.processed_at, minor: o.total_minor },
            bags,
            None,
        );
        let mut out = vec![sale.clone()];
        for r in &v.refunds {
            out.push(self.transaction(v, refund_txn(r), bags, Some(&sale)));
        }
        out
    }

    fn refund(
        &self,
        v: &OrderAsOf,
        r: &SimRefund,
        lines: &[Value],
        tax_rate: f64,
        bags: Bags,
        sale: Option<&Value>,
    ) -> Value {
        let at_cancel = v.cancelled_at == Some(r.created_at);
        let items: Vec<Value> = r
            .lines
            .iter()
            .enumerate()
            .map(|(k, rl)| {
                let line =
                    lines.iter().find(|l| l["id"] == gid("LineItem", rl.line_id)).cloned().unwrap_or(Value::Null);
                let unit = rl.subtotal_minor / i64::from(rl.quantity.max(1));
                json!({
                    "__typename": "RefundLineItem",
                    "id": gid("RefundLineItem", r.refund_id * 16 + k as u64),
                    "quantity": rl.quantity,
                    "restockType": if at_cancel { "CANCEL" } else { "RETURN" },
                    "restocked": true,
                    "lineItem": line,
                    "priceSet": bags.bag(unit),
                    "subtotalSet": bags.bag(rl.subtotal_minor),
                    "totalTaxSet": bags.bag((rl.subtotal_minor as f64 * tax_rate).round() as i64),
                })
            })
            .collect();
        let parent = sale.filter(|s| s["kind"] == "SALE");
        let txn = self.transaction(v, refund_txn(r), bags, parent);
        json!({
            "__typename": "Refund",
            "id": gid("Refund", r.refund_id),
            "legacyResourceId": r.refund_id.to_string(),
            "createdAt": ts(r.created_at),
            "updatedAt": ts(r.created_at),
            "note": if at_cancel { Value::from("Order cancelled") } else { Value::Null },
            "totalRefundedSet": bags.bag(r.amount_minor),
            "refundLineItems": items,
            "transactions": if v.financial_status == "VOIDED" { Vec::new() } else { vec![txn] },
        })
    }

    fn journey(&self, v: &OrderAsOf) -> Value {
        let o = v.o;
        if o.source_name != "web" {
            return Value::Null;
        }
        if self.view.now - o.processed_at < Duration::hours(1) {
            return json!({
                "__typename": "CustomerJourneySummary",
                "ready": false,
                "customerOrderIndex": null,
                "daysToConversion": null,
                "momentsCount": null,
                "firstVisit": null,
                "lastVisit": null,
            });
        }
        let moments = 1 + (o.order_id / 7 % 3) as i64;
        let index = o
            .customer_id
            .and_then(|c| self.view.data.customer_orders.get(&c))
            .and_then(|list| list.iter().position(|&i| self.view.data.orders[i].order_id == o.order_id))
            .unwrap_or(0);
        let first_at = o.processed_at - Duration::days(moments - 1) - Duration::minutes(17);
        let last_at = o.processed_at - Duration::minutes(6);
        json!({
            "__typename": "CustomerJourneySummary",
            "ready": true,
            "customerOrderIndex": index,
            "daysToConversion": moments - 1,
            "momentsCount": {"__typename": "Count", "count": moments, "precision": "EXACT"},
            "firstVisit": self.visit(v, o.order_id * 2, first_at),
            "lastVisit": self.visit(v, o.order_id * 2 + 1, last_at),
        })
    }

    fn visit(&self, v: &OrderAsOf, id: u64, at: DateTime<Utc>) -> Value {
        let o = v.o;
        let landing = format!("https://{}{}", self.shop().myshopify_domain, o.landing_site.as_deref().unwrap_or("/"));
        let referrer_host = o
            .referring_site
            .as_deref()
            .and_then(|r| url::Url::parse(r).ok())
            .and_then(|u| u.host_str().map(str::to_string));
        let source = o.utm_source.clone().or(referrer_host).unwrap_or_else(|| "direct".into());
        let source_type = match (o.utm_medium.as_deref(), o.referring_site.as_deref()) {
            (Some("email" | "sms"), _) => {
                Value::from(if o.utm_medium.as_deref() == Some("sms") { "SMS" } else { "EMAIL" })
            }
            (Some("cpc"), _) => Value::from("SEARCH"),
            (Some("paid_social" | "influencer"), _) => Value::from("SOCIAL"),
            (None, Some(r)) if r.contains("google") => Value::from("SEO"),
            (None, Some(_)) => Value::from("LINK"),
            _ => Value::Null,
        };
        let utm = o.utm_source.as_ref().map_or(Value::Null, |s| {
            json!({
                "__typename": "UTMParameters",
                "source": s,
                "medium": o.utm_medium,
                "campaign": o.utm_campaign,
                "content": null,
                "term": null,
            })
        });
        json!({
            "__typename": "CustomerVisit",
            "id": gid("CustomerVisit", id),
            "occurredAt": ts(at),
            "landingPage": landing,
            "landingPageHtml": format!("<a href=\"{landing}\">{}</a>", o.landing_site.as_deref().unwrap_or("/")),
            "referrerUrl": o.referring_site,
            "referralCode": null,
            "referralInfoHtml": null,
            "source": source,
            "sourceType": source_type,
            "sourceDescription": format!("Arrived from {source}"),
            "utmParameters": utm,
        })
    }
}

/// `a` with the fields of `b` added (`json!` cannot build an order in one go: macro recursion).
fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// Shopify's nine-character confirmation code, derived from the id.
fn confirmation_number(order_id: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut n = order_id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..9)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_confirmation_numbers() {
        assert_eq!(percent_of_code("WELCOME15"), Some(15.0));
        assert_eq!(percent_of_code("FREESHIP"), None);
        assert_eq!(confirmation_number(5), confirmation_number(5));
        assert_eq!(confirmation_number(5).len(), 9);
    }
}
