//! Bulk operations (apis.md 2.5): one exported JSONL file per window instead of thousands of
//! cost-limited pages.
//!
//! A window's operation is started, polled until it finishes, and its file downloaded and read
//! line by line. Children of nested connections arrive as their own lines after their parent,
//! carrying `__parentId`; they are folded back under the parent so a bulk-read record has the
//! shape of a paged one. An operation that fails or overruns its timeout is cancelled and its
//! window split in two; a window that cannot be split further lands the partial data Shopify
//! offers and fails, so the watermark stays before it.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::reader::{Kind, search};
use super::{GRAPHQL, SOURCE, queries};
use crate::config::ShopifyBulkConfig;
use crate::error::{Error, Result};
use crate::extract::{RecordSink, http_error};
use crate::http::HttpEngine;

/// How far a download has read, kept across its retries.
struct Read {
    folder: Folder,
    /// Lines already folded (a retry skips them).
    lines: usize,
    /// Lines quarantined.
    bad: usize,
    /// Set from the first line that is not UTF-8 on: records landed after it are checked for
    /// the U+FFFD its bytes became (the record holding them may be folded lines later).
    lossy: bool,
}

/// How an operation ended.
#[derive(Debug)]
enum Finished {
    /// `url` is `None` when the query matched nothing.
    Completed {
        url: Option<String>,
        objects: u64,
    },
    Failed {
        code: String,
        partial_url: Option<String>,
    },
}

/// Runs bulk operations for one store, at most the API version's number at a time.
pub struct BulkRunner {
    engine: HttpEngine,
    url: String,
    /// Downloads go to a storage host, not the store: no access token on them.
    download: reqwest::Client,
    permits: Semaphore,
    cfg: ShopifyBulkConfig,
}

/// Concurrent bulk query operations per shop: five from API 2026-01, one before.
pub fn concurrency_for(version: &str) -> usize {
    if version >= "2026-01" || version == "unstable" { 5 } else { 1 }
}

fn source_error(stream: &str, message: String) -> Error {
    Error::Source { source_name: SOURCE.into(), stream: stream.into(), message, cause: None }
}

impl BulkRunner {
    pub fn new(engine: HttpEngine, url: String, version: &str, cfg: ShopifyBulkConfig) -> Result<Self> {
        let download = reqwest::Client::builder()
            .connect_timeout(crate::http::client::CONNECT_TIMEOUT)
            .gzip(true)
            .build()
            .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { engine, url, download, permits: Semaphore::new(concurrency_for(version)), cfg })
    }

    async fn graphql(&self, stream: &str, query: &str, variables: Value) -> Result<Value> {
        let body = json!({ "query": query, "variables": variables });
        self.engine
            .fetch_json(&self.url, Some(&body), GRAPHQL)
            .await
            .and_then(|p| p.json())
            .map_err(|e| http_error(SOURCE, stream, e))
    }

    /// Reads `[from, to)` of `kind`, splitting the window when an operation fails.
    pub async fn read_window(
        &self,
        kind: Kind,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        sink: &mut RecordSink<'_, '_>,
    ) -> Result<()> {
        let stream = kind.stream();
        let min_window = chrono::Duration::minutes(i64::from(self.cfg.min_window_minutes.max(1)));
        // Earlier halves first, so a failure leaves the least unread behind it.
        let mut pending = vec![(from, to)];
        while let Some((a, b)) = pending.pop() {
            let query = kind.bulk_query(&search(a, b).unwrap_or_default());
            match self.run(stream, &query, sink).await? {
                Finished::Completed { url: None, .. } => {}
                Finished::Completed { url: Some(url), objects } => {
                    tracing::info!(source = SOURCE, stream, objects, "Bulk operation completed.");
                    self.download_into(kind, &url, sink).await?;
                }
                Finished::Failed { code, .. } if code == "ACCESS_DENIED" => {
                    return Err(Error::config(format!(
                        "source {SOURCE}, stream {stream}: bulk operation denied (ACCESS_DENIED): the app lacks a \
                         scope or protected customer data approval"
                    )));
                }
                Finished::Failed { code, partial_url } => {
                    let lower = a.unwrap_or_else(|| Utc.with_ymd_and_hms(2006, 1, 1, 0, 0, 0).unwrap());
                    let upper = b.unwrap_or_else(Utc::now);
                    if upper - lower >= min_window * 2 {
                        let mid = lower + (upper - lower) / 2;
                        tracing::warn!(source = SOURCE, stream, code = %code, from = %lower, to = %upper, "Bulk operation failed; splitting its window in two.");
                        pending.push((Some(mid), b));
                        pending.push((a, Some(mid)));
                        continue;
                    }
                    let landed = match partial_url {
                        Some(url) => {
                            self.download_into(kind, &url, sink).await?;
                            "its partial data was landed; "
                        }
                        None => "",
                    };
                    return Err(source_error(
                        stream,
                        format!(
                            "bulk operation failed ({code}) on the window {lower} .. {upper}, which is too narrow to \
                             split; {landed}the watermark stays before it"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Starts one operation and waits for it; cancels it past the timeout.
    async fn run(&self, stream: &str, query: &str, sink: &RecordSink<'_, '_>) -> Result<Finished> {
        let _permit = self.permits.acquire().await.map_err(|e| Error::Internal(e.to_string()))?;
        let poll = Duration::from_millis(self.cfg.poll_interval_ms.max(10));
        let timeout = Duration::from_secs(self.cfg.timeout_seconds);
        let started = Instant::now();
        let id = loop {
            let doc = self.graphql(stream, queries::BULK_RUN, json!({ "query": query })).await?;
            sink.count_request();
            let result = doc.pointer("/data/bulkOperationRunQuery").cloned().unwrap_or(Value::Null);
            let errors = result.get("userErrors").and_then(Value::as_array).cloned().unwrap_or_default();
            if let Some(id) = result.pointer("/bulkOperation/id").and_then(Value::as_str).filter(|_| errors.is_empty())
            {
                break id.to_string();
            }
            let busy = errors.iter().any(|e| e.get("code").and_then(Value::as_str) == Some("OPERATION_IN_PROGRESS"));
            // Another client of this app holds the store's bulk slots: wait for one to free.
            if busy && started.elapsed() < timeout {
                tokio::time::sleep(poll).await;
                continue;
            }
            let why = errors.iter().filter_map(|e| e.get("message").and_then(Value::as_str)).collect::<Vec<_>>();
            return Err(source_error(stream, format!("bulk operation refused: {}", why.join("; "))));
        };
        loop {
            tokio::time::sleep(poll).await;
            let doc = self.graphql(stream, queries::BULK_POLL, json!({ "id": id })).await?;
            sink.count_request();
            let op = doc.pointer("/data/node").cloned().unwrap_or(Value::Null);
            let text = |k: &str| op.get(k).and_then(Value::as_str).map(str::to_string);
            match text("status").as_deref() {
                Some("COMPLETED") => {
                    let objects = op.get("objectCount").and_then(|v| match v {
                        Value::String(s) => s.parse().ok(),
                        other => other.as_u64(),
                    });
                    return Ok(Finished::Completed { url: text("url"), objects: objects.unwrap_or(0) });
                }
                Some(status @ ("FAILED" | "CANCELED" | "EXPIRED")) => {
                    let code = text("errorCode").unwrap_or_else(|| status.to_string());
                    return Ok(Finished::Failed { code, partial_url: text("partialDataUrl") });
                }
                Some(_) if started.elapsed() > timeout => {
                    tracing::warn!(source = SOURCE, stream, operation = %id, "Bulk operation overran its timeout; cancelling it.");
                    self.graphql(stream, queries::BULK_CANCEL, json!({ "id": id })).await?;
                    sink.count_request();
                    let partial = self.wait_cancelled(stream, &id, poll, sink).await?;
                    return Ok(Finished::Failed { code: "TIMEOUT".into(), partial_url: partial });
                }
                Some(_) => {}
                None => return Err(source_error(stream, format!("bulk operation {id} has no status: {op}"))),
            }
        }
    }

    /// Polls a cancelled operation until it stops, for its partial data URL.
    async fn wait_cancelled(
        &self,
        stream: &str,
        id: &str,
        poll: Duration,
        sink: &RecordSink<'_, '_>,
    ) -> Result<Option<String>> {
        for _ in 0..30 {
            let doc = self.graphql(stream, queries::BULK_POLL, json!({ "id": id })).await?;
            sink.count_request();
            let op = doc.pointer("/data/node").cloned().unwrap_or(Value::Null);
            if matches!(op.get("status").and_then(Value::as_str), Some("CANCELED" | "FAILED" | "COMPLETED" | "EXPIRED"))
            {
                return Ok(op.get("partialDataUrl").and_then(Value::as_str).map(str::to_string));
            }
            tokio::time::sleep(poll).await;
        }
        Ok(None)
    }

    /// Streams the JSONL file, folding children into their parents and landing each record
    /// once its last child has been read. A download that fails or breaks off is retried like
    /// any request; the retry skips the lines already read, so nothing lands twice.
    async fn download_into(&self, kind: Kind, url: &str, sink: &mut RecordSink<'_, '_>) -> Result<()> {
        use backon::BackoffBuilder;
        let stream = kind.stream();
        let mut read = Read { folder: Folder::new(kind), lines: 0, bad: 0, lossy: false };
        let mut backoff = crate::http::retry::backoff(self.engine.retry_config()).build();
        loop {
            match self.download_once(url, &mut read, sink).await? {
                None => break,
                Some(why) => {
                    let Some(wait) = backoff.next() else { return Err(source_error(stream, why)) };
                    tracing::warn!(source = SOURCE, stream, error = %why, wait_ms = wait.as_millis() as u64, "Retrying the bulk result download.");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        if let Some(record) = read.folder.finish() {
            self.land(kind, record, url, read.lossy, sink).await?;
        }
        if read.bad > 0 {
            return Err(source_error(
                stream,
                format!("{} bulk line(s) could not be read and were quarantined", read.bad),
            ));
        }
        Ok(())
    }

    /// One attempt at the download, from the first line `read` has not seen; `Some(why)` when
    /// it failed in a way a retry may fix.
    async fn download_once(&self, url: &str, read: &mut Read, sink: &mut RecordSink<'_, '_>) -> Result<Option<String>> {
        let stream = read.folder.kind.stream();
        let mut resp = match self.download.get(url).send().await {
            Ok(resp) => resp,
            Err(e) => return Ok(Some(format!("bulk result download failed: {e}"))),
        };
        sink.count_request();
        let status = resp.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Ok(Some(format!("bulk result download answered HTTP {status}")));
        }
        if !status.is_success() {
            return Err(source_error(
                stream,
                format!("bulk result download answered HTTP {status} (an expired URL answers 403)"),
            ));
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut line_no = 0usize;
        loop {
            let chunk = match resp.chunk().await {
                Ok(chunk) => chunk,
                Err(e) => return Ok(Some(format!("bulk result download broke: {e}"))),
            };
            let end = chunk.is_none();
            if let Some(chunk) = &chunk {
                buf.extend_from_slice(chunk);
            }
            let mut start = 0;
            while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n').map(|p| p + start) {
                line_no += 1;
                if line_no > read.lines {
                    read.bad +=
                        self.fold_line(&mut read.folder, &buf[start..pos], url, line_no, &mut read.lossy, sink).await?;
                    read.lines = line_no;
                }
                start = pos + 1;
            }
            buf.drain(..start);
            if end {
                if !buf.iter().all(u8::is_ascii_whitespace) && line_no + 1 > read.lines {
                    line_no += 1;
                    let rest = std::mem::take(&mut buf);
                    read.bad += self.fold_line(&mut read.folder, &rest, url, line_no, &mut read.lossy, sink).await?;
                    read.lines = line_no;
                }
                return Ok(None);
            }
        }
    }

    /// Folds one line; returns 1 when it was quarantined.
    async fn fold_line(
        &self,
        folder: &mut Folder,
        line: &[u8],
        url: &str,
        line_no: usize,
        lossy: &mut bool,
        sink: &mut RecordSink<'_, '_>,
    ) -> Result<usize> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(0);
        }
        let origin = format!("{url}#line={line_no}");
        let decoded = crate::extract::decode_lossy(line);
        let landing_lossy = *lossy;
        *lossy |= decoded.is_some();
        let parsed = serde_json::from_slice::<Value>(decoded.as_deref().unwrap_or(line))
            .map_err(|e| e.to_string())
            .and_then(|v| folder.line(v));
        match parsed {
            // The record completed by this line ended before it: this line's bytes are not in it.
            Ok(Some(done)) => self.land(folder.kind, done, &origin, landing_lossy, sink).await.map(|()| 0),
            Ok(None) => Ok(0),
            Err(why) => {
                sink.quarantine_body(&origin, &why, String::from_utf8_lossy(line).into_owned()).await?;
                Ok(1)
            }
        }
    }
}

impl BulkRunner {
    /// Lands a folded record, first reading what a bulk query cannot: an order's refund lines
    /// and transactions (connections inside the `refunds` list).
    async fn land(
        &self,
        kind: Kind,
        mut record: Value,
        origin: &str,
        lossy: bool,
        sink: &mut RecordSink<'_, '_>,
    ) -> Result<()> {
        let refunded = record.get("refunds").and_then(Value::as_array).is_some_and(|r| !r.is_empty());
        if kind == Kind::Orders && refunded {
            let id = record.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let doc = self.graphql(kind.stream(), queries::ORDER_REFUNDS, json!({ "id": id })).await?;
            sink.count_request();
            let read = doc.pointer("/data/order/refunds").and_then(Value::as_array).cloned().unwrap_or_default();
            if let Some(refunds) = record.get_mut("refunds").and_then(Value::as_array_mut) {
                for refund in refunds.iter_mut() {
                    let rid = refund.get("id").cloned();
                    if let (Some(full), Some(obj)) =
                        (read.iter().find(|r| r.get("id") == rid.as_ref()), refund.as_object_mut())
                    {
                        for field in ["refundLineItems", "transactions"] {
                            if let Some(v) = full.get(field) {
                                obj.insert(field.to_string(), v.clone());
                            }
                        }
                    }
                }
            }
        }
        if lossy { sink.push_lossy(record, origin).await } else { sink.push(record, origin).await }
    }
}

/// Reassembles `__parentId` children under the record being read.
pub struct Folder {
    kind: Kind,
    current: Option<Value>,
}

impl Folder {
    pub fn new(kind: Kind) -> Self {
        Self { kind, current: None }
    }

    /// Takes one JSONL object; returns the previous record when this one starts a new record.
    pub fn line(&mut self, mut line: Value) -> std::result::Result<Option<Value>, String> {
        let Some(obj) = line.as_object_mut() else { return Err("a bulk line is not a JSON object".into()) };
        let Some(parent) = obj.remove("__parentId") else {
            let mut record = line;
            self.prepare(&mut record);
            return Ok(self.current.replace(record));
        };
        let parent = parent.as_str().ok_or("__parentId is not a string")?.to_string();
        let typename = obj.get("__typename").and_then(Value::as_str).unwrap_or_default().to_string();
        let field = connection_of(&typename).ok_or_else(|| format!("unexpected child type {typename:?}"))?;
        let current = self.current.as_mut().ok_or_else(|| format!("child of {parent} before any parent line"))?;
        let holder = find_by_id(current, &parent)
            .ok_or_else(|| format!("child of {parent}, which is not the record being read"))?;
        let nodes = holder
            .as_object_mut()
            .ok_or("parent is not an object")?
            .entry(field)
            .or_insert_with(|| json!({ "nodes": [] }))
            .as_object_mut()
            .ok_or("connection is not an object")?
            .entry("nodes")
            .or_insert_with(|| json!([]));
        nodes.as_array_mut().ok_or("nodes is not a list")?.push(line);
        Ok(None)
    }

    /// The record being read, at the end of the file.
    pub fn finish(&mut self) -> Option<Value> {
        self.current.take()
    }

    /// Gives a record every nested connection, empty, as a paged read would.
    fn prepare(&self, record: &mut Value) {
        for (parents, field) in self.kind.connections() {
            let holders: Vec<&mut Value> = if parents.is_empty() {
                vec![record]
            } else {
                match record.get_mut(*parents).and_then(Value::as_array_mut) {
                    Some(list) => list.iter_mut().collect(),
                    None => Vec::new(),
                }
            };
            for holder in holders {
                if let Some(obj) = holder.as_object_mut() {
                    let conn = obj.entry(*field).or_insert_with(|| Value::Object(Map::new()));
                    if let Some(conn) = conn.as_object_mut() {
                        conn.remove("edges");
                        conn.entry("nodes").or_insert_with(|| json!([]));
                    }
                }
            }
        }
    }
}

/// Which connection a child line belongs to, by its `__typename`.
fn connection_of(typename: &str) -> Option<&'static str> {
    Some(match typename {
        "LineItem" => "lineItems",
        "DiscountCodeApplication"
        | "AutomaticDiscountApplication"
        | "ManualDiscountApplication"
        | "ScriptDiscountApplication" => "discountApplications",
        "ShippingLine" => "shippingLines",
        "RefundLineItem" => "refundLineItems",
        "OrderTransaction" => "transactions",
        "ProductVariant" => "variants",
        _ => return None,
    })
}

/// The object with this `id`: the record itself or one in a list directly under it (refunds).
fn find_by_id<'v>(record: &'v mut Value, id: &str) -> Option<&'v mut Value> {
    if record.get("id").and_then(Value::as_str) == Some(id) {
        return Some(record);
    }
    record
        .as_object_mut()?
        .values_mut()
        .filter_map(Value::as_array_mut)
        .flatten()
        .find(|v| v.get("id").and_then(Value::as_str) == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_children_under_order_and_refund() {
        let mut f = Folder::new(Kind::Orders);
        let lines = [
            json!({"id": "gid://shopify/Order/1", "refunds": [{"id": "gid://shopify/Refund/9"}]}),
            json!({"__typename": "LineItem", "id": "gid://shopify/LineItem/11", "__parentId": "gid://shopify/Order/1"}),
            json!({"__typename": "ManualDiscountApplication", "title": "x", "__parentId": "gid://shopify/Order/1"}),
            json!({"__typename": "RefundLineItem", "id": "gid://shopify/RefundLineItem/5", "__parentId": "gid://shopify/Refund/9"}),
            json!({"id": "gid://shopify/Order/2", "refunds": []}),
        ];
        let mut done = Vec::new();
        for l in lines {
            done.extend(f.line(l).unwrap());
        }
        done.extend(f.finish());
        assert_eq!(done.len(), 2);
        let first = &done[0];
        assert_eq!(first.pointer("/lineItems/nodes/0/id").unwrap(), "gid://shopify/LineItem/11");
        assert!(first.pointer("/lineItems/nodes/0/__parentId").is_none());
        assert_eq!(first.pointer("/discountApplications/nodes/0/title").unwrap(), "x");
        assert_eq!(first.pointer("/refunds/0/refundLineItems/nodes/0/id").unwrap(), "gid://shopify/RefundLineItem/5");
        assert_eq!(first.pointer("/refunds/0/transactions/nodes").unwrap(), &json!([]));
        assert_eq!(done[1].pointer("/lineItems/nodes").unwrap(), &json!([]));
    }

    #[test]
    fn orphans_and_unknown_children_are_errors() {
        let mut f = Folder::new(Kind::Orders);
        assert!(f.line(json!({"__typename": "LineItem", "__parentId": "gid://shopify/Order/1"})).is_err());
        f.line(json!({"id": "gid://shopify/Order/1"})).unwrap();
        assert!(f.line(json!({"__typename": "LineItem", "__parentId": "gid://shopify/Order/2"})).is_err());
        assert!(f.line(json!({"__typename": "Mystery", "__parentId": "gid://shopify/Order/1"})).is_err());
        assert!(f.line(json!([1, 2])).is_err());
    }

    #[test]
    fn bulk_concurrency_by_version() {
        assert_eq!(concurrency_for("2026-10"), 5);
        assert_eq!(concurrency_for("2025-10"), 1);
    }
}
