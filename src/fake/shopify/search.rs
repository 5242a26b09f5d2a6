//! Shopify's search syntax (the `query:` argument) and keyset paging of top-level connections.
//!
//! Supported terms: `updated_at`, `created_at` (and `processed_at` on orders) compared with
//! `:`, `:>`, `:>=`, `:<`, `:<=` against a quoted or bare timestamp (RFC 3339, or a date read
//! as UTC midnight), and `id` with the same comparators; `inventoryItems` also accepts the
//! camel-case `updatedAt`/`createdAt` spellings. Terms are joined by whitespace or `AND`.
//! Anything else — unknown fields, `OR`, negations, free text — is ignored, as Shopify ignores
//! search terms it cannot apply; a client relying on them silently gets everything.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The top-level connections that take a search query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Orders,
    Customers,
    Products,
    ProductVariants,
    InventoryItems,
}

impl Root {
    pub fn from_field(name: &str) -> Option<Root> {
        Some(match name {
            "orders" => Root::Orders,
            "customers" => Root::Customers,
            "products" => Root::Products,
            "productVariants" => Root::ProductVariants,
            "inventoryItems" => Root::InventoryItems,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Root::Orders => "orders",
            Root::Customers => "customers",
            Root::Products => "products",
            Root::ProductVariants => "productVariants",
            Root::InventoryItems => "inventoryItems",
        }
    }

    pub fn node_type(self) -> &'static str {
        match self {
            Root::Orders => "Order",
            Root::Customers => "Customer",
            Root::Products => "Product",
            Root::ProductVariants => "ProductVariant",
            Root::InventoryItems => "InventoryItem",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Id,
    CreatedAt,
    UpdatedAt,
    ProcessedAt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    pub field: Field,
    pub cmp: Cmp,
    /// Seconds since the epoch for times, the number for ids.
    pub value: i64,
}

/// The values a record is searched and sorted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub id: u64,
    pub created: i64,
    pub updated: i64,
    pub processed: Option<i64>,
    pub title: Option<String>,
    pub sku: Option<String>,
}

impl Term {
    pub fn matches(&self, k: &Keys) -> bool {
        let v = match self.field {
            Field::Id => k.id as i64,
            Field::CreatedAt => k.created,
            Field::UpdatedAt => k.updated,
            Field::ProcessedAt => match k.processed {
                Some(p) => p,
                None => return true,
            },
        };
        match self.cmp {
            Cmp::Eq => v == self.value,
            Cmp::Gt => v > self.value,
            Cmp::Ge => v >= self.value,
            Cmp::Lt => v < self.value,
            Cmp::Le => v <= self.value,
        }
    }
}

fn parse_time(raw: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc).timestamp());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc().timestamp());
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp())
}

/// Splits on whitespace outside quotes.
fn tokens(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for ch in q.chars() {
        match quote {
            Some(qc) if ch == qc => {
                quote = None;
                cur.push(ch);
            }
            Some(_) => cur.push(ch),
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                cur.push(ch);
            }
            None if ch.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(ch),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The terms of a search string this fake can apply to `root`.
pub fn parse(q: &str, root: Root) -> Vec<Term> {
    let mut out = Vec::new();
    for tok in tokens(q) {
        if tok.eq_ignore_ascii_case("AND") || tok.eq_ignore_ascii_case("OR") || tok.starts_with('-') {
            continue;
        }
        let Some((name, rest)) = tok.split_once(':') else {
            continue;
        };
        let field = match (name, root) {
            ("id", _) => Field::Id,
            ("created_at", _) => Field::CreatedAt,
            ("updated_at", _) => Field::UpdatedAt,
            ("processed_at", Root::Orders) => Field::ProcessedAt,
            ("createdAt", Root::InventoryItems) => Field::CreatedAt,
            ("updatedAt", Root::InventoryItems) => Field::UpdatedAt,
            _ => continue,
        };
        let (cmp, raw) = if let Some(r) = rest.strip_prefix(">=") {
            (Cmp::Ge, r)
        } else if let Some(r) = rest.strip_prefix("<=") {
            (Cmp::Le, r)
        } else if let Some(r) = rest.strip_prefix('>') {
            (Cmp::Gt, r)
        } else if let Some(r) = rest.strip_prefix('<') {
            (Cmp::Lt, r)
        } else {
            (Cmp::Eq, rest)
        };
        let raw = raw.trim_matches(|c| c == '\'' || c == '"');
        let value = match field {
            Field::Id => raw.rsplit('/').next().and_then(|n| n.parse::<i64>().ok()),
            _ => parse_time(raw),
        };
        if let Some(value) = value {
            out.push(Term { field, cmp, value });
        }
    }
    out
}

/// A sort key value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyVal {
    Int(i64),
    Str(String),
}

pub fn sort_value(k: &Keys, sort_key: &str) -> KeyVal {
    match sort_key {
        "CREATED_AT" => KeyVal::Int(k.created),
        "UPDATED_AT" => KeyVal::Int(k.updated),
        "PROCESSED_AT" => KeyVal::Int(k.processed.unwrap_or(k.created)),
        "TITLE" => KeyVal::Str(k.title.clone().unwrap_or_default()),
        "SKU" => KeyVal::Str(k.sku.clone().unwrap_or_default()),
        _ => KeyVal::Int(k.id as i64),
    }
}

/// What a top-level cursor holds: the listing it belongs to and the last item's sort key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCursor {
    pub r: String,
    pub s: String,
    pub rev: bool,
    pub k: KeyVal,
    pub id: u64,
}

pub fn ts_secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(updated: &str) -> Keys {
        let t = DateTime::parse_from_rfc3339(updated).unwrap().timestamp();
        Keys { id: 7, created: t - 100, updated: t, processed: None, title: None, sku: None }
    }

    #[test]
    fn window_terms_and_ignored_ones() {
        let q = "updated_at:>='2026-11-20T00:00:00Z' AND updated_at:<'2026-11-21T00:00:00Z' status:any";
        let terms = parse(q, Root::Orders);
        assert_eq!(terms.len(), 2);
        assert!(terms.iter().all(|t| t.matches(&keys("2026-11-20T00:00:00Z"))));
        assert!(!terms.iter().all(|t| t.matches(&keys("2026-11-21T00:00:00Z"))));
        assert!(!terms.iter().all(|t| t.matches(&keys("2026-11-19T23:59:59Z"))));
        // camelCase only on inventory items; elsewhere it is an unknown term and ignored.
        assert_eq!(parse("updatedAt:>2026-11-20", Root::InventoryItems).len(), 1);
        assert!(parse("updatedAt:>2026-11-20", Root::Orders).is_empty());
        assert_eq!(
            parse("created_at:<=\"2026-11-20T10:00:00+02:00\"", Root::Customers)[0].value,
            DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z").unwrap().timestamp()
        );
        assert_eq!(parse("id:>1000", Root::Products)[0], Term { field: Field::Id, cmp: Cmp::Gt, value: 1000 });
    }
}
