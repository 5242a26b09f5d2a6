//! Bulk query operations: validation of the inner query, the status machine, and the JSONL
//! result files behind signed, expiring URLs.
//!
//! A job's output is computed when it is created (a snapshot at the fake's now, like the real
//! export that reads a consistent view) and written to a temporary file; its status then
//! advances one step per poll (`node(id:)` or `currentBulkOperation`): CREATED → RUNNING
//! (`objectCount` growing) for `bulk_poll_steps` polls → COMPLETED, or FAILED when a failure
//! was queued, or CANCELING → CANCELED after a cancel, and EXPIRED once the URL has lapsed.
//! Progress by polls rather than by time keeps tests deterministic and fast.
//!
//! JSONL rules (`groupObjects` false and true are written alike, which satisfies both): one
//! line per root node without its nested connections; after each root line, the nodes of
//! each nested connection in selection order, each line ending with `"__parentId"` = the gid
//! of the nearest enclosing record that has an `id` (a refund inside the `refunds` list, else
//! the order), each child followed by its own children. Pagination arguments are ignored:
//! every node is written.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::exec::Out;
use super::plan::{OpKind, Operation, Sel};
use super::render::{gid, ts};
use super::schema::Ty;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Canceling,
    Canceled,
    Completed,
    Failed,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "CREATED",
            Status::Running => "RUNNING",
            Status::Canceling => "CANCELING",
            Status::Canceled => "CANCELED",
            Status::Completed => "COMPLETED",
            Status::Failed => "FAILED",
            Status::Expired => "EXPIRED",
        }
    }

    /// Still occupying one of the shop's concurrent bulk slots.
    pub fn in_progress(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Canceling)
    }
}

/// A result file, deleted with the last handle to it.
#[derive(Debug)]
pub struct BulkFile {
    pub path: PathBuf,
    pub size: u64,
    pub objects: u64,
    pub roots: u64,
}

impl Drop for BulkFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What a queued failure does to the next job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub error_code: String,
    pub partial: bool,
}

#[derive(Debug)]
pub struct BulkOp {
    pub id: u64,
    pub status: Status,
    pub error_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub query: String,
    pub version: String,
    pub object_count: u64,
    pub root_object_count: u64,
    pub file: Option<Arc<BulkFile>>,
    pub partial: Option<Arc<BulkFile>>,
    /// Wall-clock instant after which the download URLs answer 403.
    pub url_expires: Option<Instant>,
    /// Expiry as shown in the URL (seconds since the epoch).
    pub url_expires_unix: u64,
    pub polls: u32,
    pub steps: u32,
    pub fail: Option<Failure>,
    pub stall: bool,
}

/// A public snapshot of a job, for test assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperationInfo {
    pub id: String,
    pub status: String,
    pub error_code: Option<String>,
    pub query: String,
    pub api_version: String,
    pub object_count: u64,
    pub root_object_count: u64,
    pub polls: u32,
}

impl BulkOp {
    pub fn gid(&self) -> String {
        gid("BulkOperation", self.id)
    }

    pub fn info(&self) -> BulkOperationInfo {
        BulkOperationInfo {
            id: self.gid(),
            status: self.status.as_str().into(),
            error_code: self.error_code.clone(),
            query: self.query.clone(),
            api_version: self.version.clone(),
            object_count: self.object_count,
            root_object_count: self.root_object_count,
            polls: self.polls,
        }
    }

    fn total(&self) -> u64 {
        self.file.as_ref().map_or(0, |f| f.objects)
    }

    /// One poll's worth of progress.
    pub fn advance(&mut self, now: DateTime<Utc>, url_ttl: Duration) {
        match self.status {
            Status::Created | Status::Running => {
                self.polls += 1;
                let total = self.total();
                if self.stall {
                    self.status = Status::Running;
                    let step = (total / 20).max(1);
                    self.object_count = (u64::from(self.polls) * step).min(total.saturating_sub(1));
                    return;
                }
                if self.polls <= self.steps {
                    self.status = Status::Running;
                    self.object_count = total * u64::from(self.polls) / u64::from(self.steps + 1);
                    return;
                }
                self.completed_at = Some(now);
                match self.fail.clone() {
                    Some(f) => {
                        self.status = Status::Failed;
                        self.error_code = Some(f.error_code);
                        self.object_count = self.partial.as_ref().map_or(total / 2, |p| p.objects);
                        self.root_object_count = self.partial.as_ref().map_or(0, |p| p.roots);
                        if !f.partial {
                            self.partial = None;
                        }
                        self.file = None;
                    }
                    None => {
                        self.status = Status::Completed;
                        self.object_count = total;
                        self.root_object_count = self.file.as_ref().map_or(0, |f| f.roots);
                        self.partial = None;
                    }
                }
                self.url_expires = Some(Instant::now() + url_ttl);
                self.url_expires_unix = SystemTime::now()
                    .checked_add(url_ttl)
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(u64::MAX, |d| d.as_secs());
            }
            Status::Canceling => {
                self.status = Status::Canceled;
                self.completed_at = Some(now);
                self.file = None;
                self.partial = None;
            }
            Status::Completed if self.url_expired() => self.status = Status::Expired,
            _ => {}
        }
    }

    pub fn url_expired(&self) -> bool {
        self.url_expires.is_some_and(|e| Instant::now() >= e)
    }

    pub fn to_json(&self, urls: &Urls) -> Value {
        let done = matches!(self.status, Status::Completed | Status::Failed | Status::Expired);
        let url = match (&self.file, self.status) {
            (Some(_), Status::Completed | Status::Expired) => Value::from(urls.url(self, "result")),
            _ => Value::Null,
        };
        let partial = match (&self.partial, self.status) {
            (Some(_), Status::Failed) => Value::from(urls.url(self, "partial")),
            _ => Value::Null,
        };
        let file_size = match self.status {
            Status::Completed | Status::Expired => self.file.as_ref().map(|f| f.size.to_string()),
            Status::Failed => self.partial.as_ref().map(|f| f.size.to_string()),
            _ => None,
        };
        json!({
            "__typename": "BulkOperation",
            "id": self.gid(),
            "status": self.status.as_str(),
            "errorCode": self.error_code,
            "createdAt": ts(self.created_at),
            "completedAt": self.completed_at.map(ts),
            "objectCount": self.object_count.to_string(),
            "rootObjectCount": if done { self.root_object_count } else { 0 }.to_string(),
            "fileSize": file_size,
            "url": url,
            "partialDataUrl": partial,
            "query": self.query,
            "type": "QUERY",
        })
    }
}

/// Signs download URLs so only the ones the fake handed out work.
#[derive(Debug, Clone)]
pub struct Urls {
    pub base: String,
    pub key: String,
}

impl Urls {
    pub fn path(op: u64, kind: &str) -> String {
        format!("/bulk-results/{op}/{kind}.jsonl")
    }

    pub fn signature(&self, path: &str, expires: u64) -> String {
        hex::encode(Sha256::digest(format!("{}\n{path}\n{expires}", self.key)))
    }

    pub fn url(&self, op: &BulkOp, kind: &str) -> String {
        let path = Self::path(op.id, kind);
        let sig = self.signature(&path, op.url_expires_unix);
        format!("{}{path}?Expires={}&Signature={sig}", self.base, op.url_expires_unix)
    }
}

/// Every job of the shop and what tests queued for the next one.
#[derive(Debug)]
pub struct BulkOps {
    pub ops: Vec<BulkOp>,
    next_id: u64,
    pub fail_next: Option<Failure>,
    pub stall_next: bool,
    dir: PathBuf,
    files: u64,
}

impl Drop for BulkOps {
    fn drop(&mut self) {
        self.ops.clear();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl BulkOps {
    pub fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("shopify-fake-bulk-{}-{}", std::process::id(), uuid::Uuid::new_v4()));
        Self { ops: Vec::new(), next_id: 4_460_000_000_001, fail_next: None, stall_next: false, dir, files: 0 }
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut BulkOp> {
        self.ops.iter_mut().find(|o| o.id == id)
    }

    pub fn in_progress(&self) -> Vec<&BulkOp> {
        self.ops.iter().filter(|o| o.status.in_progress()).collect()
    }

    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A fresh file path in the fake's temporary folder.
    pub fn file_path(&mut self) -> io::Result<PathBuf> {
        fs::create_dir_all(&self.dir)?;
        self.files += 1;
        Ok(self.dir.join(format!("{}.jsonl", self.files)))
    }
}

/// Writes JSONL lines, remembering where each root object starts.
pub struct JsonlWriter {
    w: BufWriter<File>,
    path: PathBuf,
    bytes: u64,
    objects: u64,
    root_starts: Vec<(u64, u64)>,
}

impl JsonlWriter {
    pub fn create(path: PathBuf) -> io::Result<Self> {
        Ok(Self { w: BufWriter::new(File::create(&path)?), path, bytes: 0, objects: 0, root_starts: Vec::new() })
    }

    fn line(&mut self, out: &Out) -> io::Result<()> {
        let mut buf = serde_json::to_vec(out)?;
        buf.push(b'\n');
        self.w.write_all(&buf)?;
        self.bytes += buf.len() as u64;
        self.objects += 1;
        Ok(())
    }

    /// A root object and its descendants.
    pub fn root(&mut self, line: &Out, children: &[Out]) -> io::Result<()> {
        self.root_starts.push((self.bytes, self.objects));
        self.line(line)?;
        for c in children {
            self.line(c)?;
        }
        Ok(())
    }

    /// The complete file, and a copy of its first half (by root objects) for a failure's
    /// partial data.
    pub fn finish(mut self, partial_path: Option<PathBuf>) -> io::Result<(BulkFile, Option<BulkFile>)> {
        self.w.flush()?;
        drop(self.w);
        let roots = self.root_starts.len() as u64;
        let partial = match partial_path {
            Some(p) => {
                let half = self.root_starts.len() / 2;
                let (bytes, objects) = self.root_starts.get(half).copied().unwrap_or((self.bytes, self.objects));
                copy_prefix(&self.path, &p, bytes)?;
                Some(BulkFile { path: p, size: bytes, objects, roots: half as u64 })
            }
            None => None,
        };
        Ok((BulkFile { path: self.path, size: self.bytes, objects: self.objects, roots }, partial))
    }
}

fn copy_prefix(from: &Path, to: &Path, bytes: u64) -> io::Result<()> {
    let mut src = File::open(from)?.take(bytes);
    let mut dst = File::create(to)?;
    io::copy(&mut src, &mut dst)?;
    dst.flush()
}

/// Why an inner bulk query is refused (`userErrors` with code `INVALID`), per Shopify's
/// validator. `strict` adds the rules Shopify enforces that the project's own queries are
/// known to break: no connection inside a plain list (`refunds { refundLineItems }`), nested
/// connections read through `edges { node }` only, and their parent node selecting `id`.
pub fn validate(op: &Operation, strict: bool) -> Vec<String> {
    if op.kind != OpKind::Query {
        return vec!["Invalid operation type. Only `query` operations are supported.".into()];
    }
    let mut errors = Vec::new();
    if op.sels.iter().any(|s| s.name == "node") {
        errors.push("Bulk queries cannot contain a top level `node` field.".to_string());
    }
    let mut a = Analysis::default();
    walk(&op.sels, 0, false, true, &mut a);
    if a.max_depth > 2 {
        errors.push("Bulk queries cannot contain connections with a nesting depth greater than 2.".into());
    }
    if a.connections > 5 {
        errors.push("Bulk queries cannot contain more than 5 connections.".into());
    }
    if strict {
        if !a.nodes_fields.is_empty() {
            errors.push(format!(
                "All connection fields in a bulk query must select their contents using 'edges' > 'node', e.g: '{} {{ edges {{ node {{'. Selecting via 'nodes' is not supported. Invalid connection fields: '{}'.",
                a.nodes_fields[0],
                a.nodes_fields.join("', '")
            ));
        }
        if !a.without_parent_id.is_empty() {
            errors.push(format!(
                "The parent 'node' field for a nested connection must select the 'id' field without an alias and must be of 'ID' return type. Connection fields without 'id': {}.",
                a.without_parent_id.join(", ")
            ));
        }
        if a.in_list {
            errors.push(
                "Queries that contain a connection field within a list field are not currently supported.".into(),
            );
        }
    }
    if a.connections == 0 && errors.len() <= usize::from(op.sels.iter().any(|s| s.name == "node")) {
        errors.push("Bulk queries must contain at least one connection.".into());
    }
    if errors.is_empty() && op.sels.len() > 1 {
        errors.push("Bulk queries must contain exactly one top-level field.".into());
    }
    if errors.is_empty() && !matches!(op.sels[0].ty, Ty::Connection(_)) {
        errors.push("The top-level field of a bulk query must be a connection.".into());
    }
    errors
}

#[derive(Default)]
struct Analysis {
    connections: usize,
    max_depth: usize,
    in_list: bool,
    nodes_fields: Vec<String>,
    without_parent_id: Vec<String>,
}

fn selects_id(sels: &[&Sel]) -> bool {
    sels.iter().any(|s| s.name == "id" && s.key == "id")
}

fn walk(sels: &[Sel], depth: usize, in_list: bool, parent_has_id: bool, a: &mut Analysis) {
    for s in sels {
        match s.ty {
            Ty::Connection(_) => {
                a.connections += 1;
                a.max_depth = a.max_depth.max(depth + 1);
                a.in_list |= in_list;
                if depth >= 1 && !parent_has_id {
                    a.without_parent_id.push(s.name.clone());
                }
                let mut node_sels: Vec<&Sel> = Vec::new();
                for c in &s.sub {
                    match c.name.as_str() {
                        "nodes" => {
                            a.nodes_fields.push(s.name.clone());
                            node_sels.extend(c.sub.iter());
                        }
                        "edges" => {
                            for e in c.sub.iter().filter(|e| e.name == "node") {
                                node_sels.extend(e.sub.iter());
                            }
                        }
                        _ => {}
                    }
                }
                let has_id = selects_id(&node_sels);
                let owned: Vec<Sel> = node_sels.into_iter().cloned().collect();
                walk(&owned, depth + 1, false, has_id, a);
            }
            Ty::List(_) => {
                let subs: Vec<&Sel> = s.sub.iter().collect();
                walk(&s.sub, depth, true, selects_id(&subs), a);
            }
            Ty::Object(_) => walk(&s.sub, depth, in_list, parent_has_id, a),
            Ty::Scalar(_) | Ty::ScalarList(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::shopify::plan::{Mode, prepare};

    fn errors(q: &str, strict: bool) -> Vec<String> {
        let op = prepare(q, None, &serde_json::Map::new(), "2026-10", Mode::Bulk).unwrap();
        validate(&op, strict)
    }

    #[test]
    fn inner_query_rules() {
        assert!(errors("{ orders { edges { node { id lineItems { edges { node { id } } } } } } }", true).is_empty());
        assert_eq!(errors("{ shop { id } }", false), vec!["Bulk queries must contain at least one connection."]);
        let deep = "{ products { edges { node { id variants { edges { node { id product { id variants { edges { node { id } } } } } } } } } } }";
        assert!(errors(deep, false)[0].contains("nesting depth greater than 2"));
        let six = "{ orders { edges { node { id a: lineItems { edges { node { id } } } b: lineItems { edges { node { id } } } \
                   c: lineItems { edges { node { id } } } d: lineItems { edges { node { id } } } e: lineItems { edges { node { id } } } } } } }";
        assert!(errors(six, false).iter().any(|e| e.contains("more than 5 connections")));
        let in_list = "{ orders { edges { node { id refunds { id refundLineItems { edges { node { id } } } } } } } }";
        assert!(errors(in_list, false).is_empty());
        assert!(errors(in_list, true).iter().any(|e| e.contains("within a list field")));
    }
}
