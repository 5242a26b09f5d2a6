//! Orders, customers and products: each window is read by paged queries when it is narrow (the
//! nightly increment) and by a bulk operation when it is wide (first reads and backfills).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{GRAPHQL, Shopify, queries};
use crate::config::ShopifyBulkConfig;
use crate::error::{Error, Result};
use crate::extract::{RecordSink, WindowReader, http_error};

/// The resources read through [`ShopifyReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Orders,
    Customers,
    Products,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[Kind::Orders, Kind::Customers, Kind::Products];

    /// The stream's name, which is also its top-level connection's.
    pub fn stream(self) -> &'static str {
        match self {
            Kind::Orders => "orders",
            Kind::Customers => "customers",
            Kind::Products => "products",
        }
    }

    /// Records per paged request, sized to stay well under the 1000-point single-query cap.
    fn first(self) -> u32 {
        match self {
            Kind::Orders => 3,
            Kind::Customers => 150,
            Kind::Products => 8,
        }
    }

    fn page_query(self) -> String {
        match self {
            Kind::Orders => queries::orders_page(queries::OrderPageShape::DEFAULT),
            Kind::Customers => queries::customers_page(),
            Kind::Products => queries::products_page(),
        }
    }

    pub(super) fn bulk_query(self, search: &str) -> String {
        match self {
            Kind::Orders => queries::orders_bulk(search),
            Kind::Customers => queries::customers_bulk(search),
            Kind::Products => queries::products_bulk(search),
        }
    }

    /// Nested connections of a record, as (path of the list holding their parents, field):
    /// a folded bulk record and a paged one both carry every one of them, empty or not.
    pub(super) fn connections(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Kind::Orders => &[
                ("", "lineItems"),
                ("", "discountApplications"),
                ("", "shippingLines"),
                ("refunds", "refundLineItems"),
                ("refunds", "transactions"),
            ],
            Kind::Customers => &[],
            Kind::Products => &[("", "variants")],
        }
    }
}

/// Reads one resource's windows.
pub struct ShopifyReader {
    shopify: Arc<Shopify>,
    kind: Kind,
    threshold: Duration,
}

impl ShopifyReader {
    pub fn new(shopify: Arc<Shopify>, kind: Kind, bulk: &ShopifyBulkConfig) -> Self {
        Self { shopify, kind, threshold: Duration::days(i64::from(bulk.threshold_days)) }
    }

    /// First reads, and fixed windows wider than the threshold. An open window after a first
    /// read holds only what changed since the watermark (which stays at the newest record seen,
    /// however long ago), so its span says nothing about its size: it is paged.
    fn use_bulk(&self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> bool {
        match (from, to) {
            (None, _) => true,
            (Some(from), Some(to)) => to - from > self.threshold,
            (Some(_), None) => false,
        }
    }

    async fn read_paged(&self, search: Option<String>, sink: &mut RecordSink<'_, '_>) -> Result<()> {
        let url = self.shopify.graphql_url();
        let stream = self.kind.stream();
        let query = self.kind.page_query();
        let mut after: Option<String> = None;
        loop {
            let body = json!({
                "query": query,
                "variables": { "first": self.kind.first(), "after": after, "query": search },
            });
            let page = self
                .shopify
                .engine
                .fetch_json(&url, Some(&body), GRAPHQL)
                .await
                .map_err(|e| http_error(super::SOURCE, stream, e))?;
            sink.count_request();
            let decoded = crate::extract::decode_lossy(&page.bytes);
            let lossy = decoded.is_some();
            let parsed = match decoded {
                Some(text) => serde_json::from_slice::<Value>(&text).map_err(|e| page.malformed(e.to_string())),
                None => page.json(),
            };
            let mut doc = match parsed {
                Ok(doc) => doc,
                Err(e) => {
                    sink.quarantine_body(&page.url, &e.to_string(), String::from_utf8_lossy(&page.bytes).into())
                        .await?;
                    return Err(Error::Source {
                        source_name: super::SOURCE.into(),
                        stream: stream.into(),
                        message: format!("malformed page {} quarantined: {e}", page.url),
                        cause: None,
                    });
                }
            };
            let mut connection =
                doc.pointer_mut(&format!("/data/{}", self.kind.stream())).map(Value::take).unwrap_or(Value::Null);
            let Some(nodes) = connection.get_mut("nodes").map(Value::take).and_then(|n| match n {
                Value::Array(nodes) => Some(nodes),
                _ => None,
            }) else {
                let text = String::from_utf8_lossy(&page.bytes).into_owned();
                sink.quarantine_body(&page.url, "no nodes in the connection", text).await?;
                return Err(Error::Source {
                    source_name: super::SOURCE.into(),
                    stream: stream.into(),
                    message: format!("page without data.{}.nodes quarantined", self.kind.stream()),
                    cause: None,
                });
            };
            for mut node in nodes {
                self.complete(&mut node, sink).await?;
                if lossy {
                    sink.push_lossy(node, &page.url).await?;
                } else {
                    sink.push(node, &page.url).await?;
                }
            }
            let info = connection.get("pageInfo");
            let more = info.and_then(|i| i.get("hasNextPage")).and_then(Value::as_bool).unwrap_or(false);
            after = info.and_then(|i| i.get("endCursor")).and_then(Value::as_str).map(str::to_string);
            if !more || after.is_none() {
                return Ok(());
            }
        }
    }

    /// Fetches the rest of nested connections that did not fit the page: an order's line items
    /// (more than the page's 10). Other nested lists are far below their page sizes in practice;
    /// when one is not, the record is landed as read and a warning names it.
    async fn complete(&self, node: &mut Value, sink: &RecordSink<'_, '_>) -> Result<()> {
        let id = node.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
        let truncated = |v: &Value, field: &str| {
            v.pointer(&format!("/{field}/pageInfo/hasNextPage")).and_then(Value::as_bool).unwrap_or(false)
        };
        if self.kind == Kind::Orders && truncated(node, "lineItems") {
            let mut after = node.pointer("/lineItems/pageInfo/endCursor").cloned().unwrap_or(Value::Null);
            let url = self.shopify.graphql_url();
            loop {
                let body = json!({ "query": queries::order_line_items(), "variables": { "id": id, "after": after } });
                let doc = self
                    .shopify
                    .engine
                    .fetch_json(&url, Some(&body), GRAPHQL)
                    .await
                    .and_then(|p| p.json())
                    .map_err(|e| http_error(super::SOURCE, self.kind.stream(), e))?;
                sink.count_request();
                let more =
                    doc.pointer("/data/order/lineItems/nodes").and_then(Value::as_array).cloned().unwrap_or_default();
                if let Some(lines) = node.pointer_mut("/lineItems/nodes").and_then(Value::as_array_mut) {
                    lines.extend(more);
                }
                let info = doc.pointer("/data/order/lineItems/pageInfo").cloned().unwrap_or(Value::Null);
                if let Some(slot) = node.pointer_mut("/lineItems/pageInfo") {
                    *slot = info.clone();
                }
                if !info.get("hasNextPage").and_then(Value::as_bool).unwrap_or(false) {
                    break;
                }
                after = info.get("endCursor").cloned().unwrap_or(Value::Null);
            }
        }
        for (parents, field) in self.kind.connections() {
            let holders: Vec<&Value> = if parents.is_empty() {
                vec![&*node]
            } else {
                node.get(*parents).and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default()
            };
            if holders.iter().any(|h| truncated(h, field)) {
                tracing::warn!(
                    source = super::SOURCE,
                    stream = self.kind.stream(),
                    record_id = %id,
                    field,
                    "A nested list is longer than one page and was landed truncated; the next bulk read (a \
                     --full-refresh, or a window wider than bulk.threshold_days) reads it whole."
                );
            }
        }
        Ok(())
    }
}

impl WindowReader for ShopifyReader {
    fn wants(&self, _: Option<DateTime<Utc>>, _: Option<DateTime<Utc>>) -> bool {
        true
    }

    fn read<'a>(
        &'a self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        sink: &'a mut RecordSink<'_, '_>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if self.use_bulk(from, to) {
                self.shopify.bulk.read_window(self.kind, from, to, sink).await
            } else {
                self.read_paged(search(from, to), sink).await
            }
        })
    }
}

/// The `query:` search string of a window.
pub(super) fn search(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<String> {
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    match (from, to) {
        (Some(from), to) => Some(queries::updated_window(from, to)),
        (None, Some(to)) => Some(format!("updated_at:<'{}'", fmt(to))),
        (None, None) => None,
    }
}
