//! Simulated records rendered into Shopify's GraphQL object shapes, as whole JSON trees.
//!
//! Every object carries its `__typename` (so fragments on interfaces and unions resolve) and
//! every field the schema table lists; nested connections are plain arrays the executor pages.
//! Links to other records (`customer`, `product`, `variant`, `inventoryItem`, `lastOrder`) are
//! markers the executor expands only when more than the id is selected.
//!
//! Mapping choices (shop money is always the truth; presentment amounts are derived):
//! - money is a decimal string with two places (`"41.03"`), ids are gids, `legacyResourceId`
//!   a string;
//! - orders whose simulated presentment currency differs from the shop's carry presentment
//!   amounts converted at a fixed rate per currency ([`presentment_rate`]);
//! - orders, with their lines, discounts, refunds and transactions, are in [`order`].

use chrono::{DateTime, Duration, Offset, TimeZone, Utc};
use serde_json::{Value, json};

use super::data::{CustomerAsOf, View};
use super::exec::Refs;
use crate::simulate::model::{ConsentState, SimProduct, SimShop, SimVariant};

mod order;

pub fn gid(ty: &str, id: u64) -> String {
    format!("gid://shopify/{ty}/{id}")
}

/// The type and numeric id of a gid.
pub fn parse_gid(gid: &str) -> Option<(&str, u64)> {
    let rest = gid.strip_prefix("gid://shopify/")?;
    let (ty, id) = rest.split_once('/')?;
    let id = id.split('?').next()?;
    Some((ty, id.parse().ok()?))
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn ts_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| Value::from(ts(t)))
}

/// Minor units as Shopify's decimal string with two places.
pub fn amount(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{}.{:02}", m / 100, m % 100)
}

/// Presentment units per shop unit for the currencies the simulated shoppers pay in.
pub fn presentment_rate(currency: &str) -> f64 {
    match currency {
        "CAD" => 1.37,
        "EUR" => 0.92,
        "GBP" => 0.79,
        _ => 1.0,
    }
}

pub fn money_v2(minor: i64, currency: &str) -> Value {
    json!({"__typename": "MoneyV2", "amount": amount(minor), "currencyCode": currency})
}

/// A reference marker to another record.
pub fn marker(ty: &str, gid: String) -> Value {
    json!({"__ref": true, "__typename": ty, "id": gid})
}

/// A `MoneyBag` in the shop's and an order's presentment currency.
#[derive(Clone, Copy)]
struct Bags<'a> {
    shop: &'a str,
    presentment: &'a str,
}

impl Bags<'_> {
    fn bag(&self, minor: i64) -> Value {
        let rate = if self.presentment == self.shop { 1.0 } else { presentment_rate(self.presentment) };
        let p = (minor as f64 * rate).round() as i64;
        json!({
            "__typename": "MoneyBag",
            "shopMoney": money_v2(minor, self.shop),
            "presentmentMoney": money_v2(p, self.presentment),
        })
    }
}

/// Renders records for one view.
pub struct Renderer<'a, 'v> {
    pub view: &'v View<'a>,
}

impl Refs for Renderer<'_, '_> {
    fn deref(&self, typename: &str, id: &str) -> Value {
        let Some((_, n)) = parse_gid(id) else {
            return Value::Null;
        };
        match typename {
            "Order" => self.view.order_by_id(n).map_or(Value::Null, |o| self.order(&o)),
            "Customer" => self.view.customer_by_id(n).map_or(Value::Null, |c| self.customer(&c)),
            "Product" => self.product_by_id(n),
            "ProductVariant" => self.variant_by_id(n),
            "InventoryItem" => self.inventory_item_by_id(n),
            _ => Value::Null,
        }
    }
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

fn country_name(code: &str) -> &'static str {
    match code {
        "US" => "United States",
        "CA" => "Canada",
        "GB" => "United Kingdom",
        "DE" => "Germany",
        "AU" => "Australia",
        "FR" => "France",
        _ => "Other",
    }
}

fn marketing_state(state: ConsentState) -> &'static str {
    match state {
        ConsentState::Subscribed => "SUBSCRIBED",
        ConsentState::Unsubscribed => "UNSUBSCRIBED",
        ConsentState::NeverSubscribed => "NOT_SUBSCRIBED",
    }
}

impl<'a> Renderer<'a, '_> {
    fn shop(&self) -> &SimShop {
        &self.view.data.shop
    }

    fn currency(&self) -> &str {
        &self.view.data.shop.currency
    }

    pub fn shop_json(&self) -> Value {
        let s = self.shop();
        let tz: chrono_tz::Tz = s.iana_timezone.parse().unwrap_or(chrono_tz::UTC);
        let local = tz.from_utc_datetime(&self.view.now.naive_utc());
        let offset_secs = local.offset().fix().local_minus_utc();
        let minutes = offset_secs / 60;
        let sign = if minutes < 0 { '-' } else { '+' };
        let offset = format!("{sign}{:02}{:02}", minutes.abs() / 60, minutes.abs() % 60);
        let created = s.start_date.and_hms_opt(12, 0, 0).expect("noon exists").and_utc() - Duration::days(700);
        json!({
            "__typename": "Shop",
            "id": gid("Shop", s.shop_id),
            "name": s.name,
            "email": format!("owner@{}", s.myshopify_domain),
            "contactEmail": format!("hello@{}", s.myshopify_domain),
            "myshopifyDomain": s.myshopify_domain,
            "ianaTimezone": s.iana_timezone,
            "timezoneOffset": offset,
            "timezoneOffsetMinutes": minutes,
            "timezoneAbbreviation": local.format("%Z").to_string(),
            "currencyCode": s.currency,
            "enabledPresentmentCurrencies": [s.currency.as_str(), "CAD", "EUR", "GBP"],
            "createdAt": ts(created),
            "plan": {"__typename": "ShopPlan", "displayName": "Shopify", "partnerDevelopment": false, "shopifyPlus": false},
        })
    }

    pub fn app_installation(&self, scopes: &[String]) -> Value {
        let scopes: Vec<Value> = scopes
            .iter()
            .map(|h| json!({"__typename": "AccessScope", "handle": h, "description": format!("Access scope {h}")}))
            .collect();
        json!({
            "__typename": "AppInstallation",
            "id": gid("AppInstallation", self.shop().shop_id % 1_000_000 + 900_000_000),
            "accessScopes": scopes,
        })
    }

    /// A consent state as of now: a change dated later has not happened yet (an unsubscribe
    /// then still reads subscribed, anything else not subscribed).
    fn consent(&self, state: ConsentState, at: Option<DateTime<Utc>>) -> (&'static str, Value, Value) {
        match at {
            Some(t) if !self.view.exists(t) => {
                let before = if state == ConsentState::Unsubscribed { "SUBSCRIBED" } else { "NOT_SUBSCRIBED" };
                (before, Value::Null, Value::Null)
            }
            _ => {
                let level =
                    if state == ConsentState::NeverSubscribed { Value::Null } else { Value::from("SINGLE_OPT_IN") };
                (marketing_state(state), level, ts_opt(at))
            }
        }
    }

    pub fn customer(&self, v: &CustomerAsOf) -> Value {
        let c = v.c;
        let cur = self.currency();
        let collected = if c.customer_id.is_multiple_of(4) { "OTHER" } else { "SHOPIFY" };
        let (email_state, email_level, email_at) = self.consent(c.email_marketing_consent, c.email_consent_updated_at);
        let (sms_state, sms_level, sms_at) = self.consent(c.sms_marketing_consent, c.sms_consent_updated_at);
        let default_email = c.email.as_ref().map_or(Value::Null, |e| {
            json!({
                "__typename": "CustomerEmailAddress",
                "emailAddress": e,
                "marketingState": email_state,
                "marketingOptInLevel": email_level,
                "marketingUpdatedAt": email_at,
                "openTrackingLevel": "OPTED_IN",
                "sourceLocation": null,
                "validFormat": true,
            })
        });
        let sms_consent = json!({
            "__typename": "SmsMarketingConsent",
            "marketingState": sms_state,
            "marketingOptInLevel": sms_level,
            "consentUpdatedAt": sms_at,
            "consentCollectedFrom": collected,
        });
        let default_phone = c.phone.as_ref().map_or(Value::Null, |p| {
            json!({
                "__typename": "CustomerPhoneNumber",
                "phoneNumber": p,
                "marketingState": sms_state,
                "marketingOptInLevel": sms_level,
                "marketingUpdatedAt": sms_at,
                "marketingCollectedFrom": collected,
                "smsMarketingConsent": sms_consent,
            })
        });
        let address = json!({
            "__typename": "MailingAddress",
            "id": gid("MailingAddress", c.customer_id * 10 + 1),
            "firstName": c.first_name,
            "lastName": c.last_name,
            "name": format!("{} {}", c.first_name, c.last_name),
            "company": null,
            "address1": format!("{} Fern Street", 10 + c.customer_id % 890),
            "address2": null,
            "city": "Springfield",
            "province": c.province,
            "provinceCode": c.province,
            "country": country_name(&c.country),
            "countryCodeV2": c.country,
            "zip": format!("{:05}", c.customer_id % 100_000),
            "phone": c.phone,
        });
        json!({
            "__typename": "Customer",
            "id": gid("Customer", c.customer_id),
            "legacyResourceId": c.customer_id.to_string(),
            "createdAt": ts(c.created_at),
            "updatedAt": ts(v.updated_at),
            "firstName": c.first_name,
            "lastName": c.last_name,
            "displayName": format!("{} {}", c.first_name, c.last_name),
            "email": c.email,
            "phone": c.phone,
            "state": if c.customer_id.is_multiple_of(3) && c.email.is_some() { "ENABLED" } else { "DISABLED" },
            "verifiedEmail": c.email.is_some(),
            "taxExempt": false,
            "tags": c.tags,
            "note": null,
            "locale": "en",
            "numberOfOrders": v.orders_count.to_string(),
            "amountSpent": money_v2(v.spent_minor, cur),
            "lastOrder": v.last_order.map_or(Value::Null, |id| marker("Order", gid("Order", id))),
            "defaultAddress": address,
            "addresses": [address],
            "defaultEmailAddress": default_email,
            "defaultPhoneNumber": default_phone,
            "emailMarketingConsent": c.email.as_ref().map(|_| json!({
                "__typename": "CustomerEmailMarketingConsentState",
                "marketingState": email_state,
                "marketingOptInLevel": email_level,
                "consentUpdatedAt": email_at,
            })),
            "smsMarketingConsent": c.phone.as_ref().map(|_| json!({
                "__typename": "CustomerSmsMarketingConsentState",
                "marketingState": sms_state,
                "marketingOptInLevel": sms_level,
                "consentUpdatedAt": sms_at,
                "consentCollectedFrom": collected,
            })),
            "dataSaleOptOut": false,
            "canDelete": v.orders_count == 0,
        })
    }

    pub fn product_by_id(&self, id: u64) -> Value {
        let data = self.view.data;
        data.product_idx
            .get(&id)
            .and_then(|&i| self.view.product(&data.products[i]))
            .map_or(Value::Null, |p| self.product(p))
    }

    pub fn variant_by_id(&self, id: u64) -> Value {
        let data = self.view.data;
        match data.variant_idx.get(&id) {
            Some(&(p, v)) if self.view.product(&data.products[p]).is_some() => {
                self.variant(&data.products[p], &data.products[p].variants[v], v)
            }
            _ => Value::Null,
        }
    }

    pub fn inventory_item_by_id(&self, id: u64) -> Value {
        let data = self.view.data;
        match data.item_idx.get(&id) {
            Some(&(p, v)) if self.view.product(&data.products[p]).is_some() => {
                self.inventory_item(&data.products[p], &data.products[p].variants[v])
            }
            _ => Value::Null,
        }
    }

    pub fn product(&self, p: &SimProduct) -> Value {
        let draft = p.product_type == "Gift";
        let mut tags = vec![p.product_type.to_lowercase()];
        if p.is_consumable {
            tags.push("consumable".into());
        }
        let variants: Vec<Value> = p.variants.iter().enumerate().map(|(i, v)| self.variant(p, v, i)).collect();
        let total: i64 = variants.iter().filter_map(|v| v["inventoryQuantity"].as_i64()).sum();
        let option_name =
            if p.variants.len() == 1 && p.variants[0].title == "Default Title" { "Title" } else { "Size" };
        json!({
            "__typename": "Product",
            "id": gid("Product", p.product_id),
            "legacyResourceId": p.product_id.to_string(),
            "title": p.title,
            "handle": slug(&p.title),
            "productType": p.product_type,
            "vendor": self.shop().name,
            "status": if draft { "DRAFT" } else { "ACTIVE" },
            "tags": tags,
            "description": format!("{} by {}.", p.title, self.shop().name),
            "createdAt": ts(p.created_at),
            "updatedAt": ts(self.view.product_updated(p)),
            "publishedAt": if draft { Value::Null } else { Value::from(ts(p.created_at)) },
            "totalInventory": total,
            "variants": variants,
            "options": [{
                "__typename": "ProductOption",
                "id": gid("ProductOption", p.product_id * 10 + 1),
                "name": option_name,
                "values": p.variants.iter().map(|v| v.title.clone()).collect::<Vec<_>>(),
            }],
        })
    }

    pub fn variant(&self, p: &SimProduct, v: &SimVariant, position: usize) -> Value {
        let option_name = if v.title == "Default Title" { "Title" } else { "Size" };
        json!({
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", v.variant_id),
            "legacyResourceId": v.variant_id.to_string(),
            "title": v.title,
            "displayName": format!("{} - {}", p.title, v.title),
            "sku": v.sku,
            "barcode": null,
            "price": amount(v.price_minor),
            "compareAtPrice": null,
            "inventoryQuantity": 20 + (v.variant_id % 180) as i64,
            "position": position + 1,
            "taxable": true,
            "createdAt": ts(p.created_at),
            "updatedAt": ts(self.view.product_updated(p)),
            "product": marker("Product", gid("Product", p.product_id)),
            "inventoryItem": marker("InventoryItem", gid("InventoryItem", v.inventory_item_id)),
            "selectedOptions": [{"__typename": "SelectedOption", "name": option_name, "value": v.title}],
        })
    }

    pub fn inventory_item(&self, p: &SimProduct, v: &SimVariant) -> Value {
        json!({
            "__typename": "InventoryItem",
            "id": gid("InventoryItem", v.inventory_item_id),
            "legacyResourceId": v.inventory_item_id.to_string(),
            "sku": v.sku,
            "tracked": true,
            "requiresShipping": true,
            "createdAt": ts(p.created_at),
            "updatedAt": ts(self.view.product_updated(p)),
            "unitCost": v.unit_cost_minor.map_or(Value::Null, |c| money_v2(c, self.currency())),
            "countryCodeOfOrigin": null,
            "harmonizedSystemCode": null,
            "variant": marker("ProductVariant", gid("ProductVariant", v.variant_id)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_gids() {
        assert_eq!(amount(4103), "41.03");
        assert_eq!(amount(5), "0.05");
        assert_eq!(amount(0), "0.00");
        assert_eq!(amount(-250), "-2.50");
        assert_eq!(parse_gid("gid://shopify/Order/123"), Some(("Order", 123)));
        assert_eq!(parse_gid("gid://shopify/Order/x"), None);
        assert_eq!(slug("Daily Glow Serum"), "daily-glow-serum");
    }
}
