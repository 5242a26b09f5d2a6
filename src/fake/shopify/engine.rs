//! One GraphQL request end to end: compile, price, throttle, resolve the root fields, refund.
//!
//! Root fields are the only code that knows the shop: top-level connections list the as-of
//! records matching the search string in keyset order, `node`/`order`/... look one record up
//! by gid, and the two bulk mutations drive [`super::bulk`]. Everything below the root is the
//! generic projection of [`super::exec`].

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::ShopifyFakeConfig;
use super::bulk::{self, BulkOp, BulkOps, Status, Urls};
use super::cost::{self, Bucket, CostEntry, MAX_QUERY_COST, MUTATION_COST};
use super::data::{CustomerAsOf, Dataset, OrderAsOf, Overlay, View};
use super::exec::{self, Exec, Out, Window};
use super::plan::{self, GqlError, Mode, OpKind, Operation, Sel};
use super::render::{Renderer, parse_gid};
use super::schema::Schema;
use super::search::{self, KeyVal, Keys, Root, RootCursor, Term, ts_secs};
use crate::fake::FakeClock;
use crate::fake::cursor::{self, CursorError};
use crate::simulate::model::SimProduct;

/// Everything the routes and the control handle share.
pub struct Shared {
    pub cfg: ShopifyFakeConfig,
    pub clock: FakeClock,
    pub data: Dataset,
    pub urls: Urls,
    pub state: Mutex<State>,
}

/// What changes while the fake runs.
pub struct State {
    pub overlay: Overlay,
    pub bucket: Bucket,
    pub throttle_next: u32,
    /// Minted client-credentials tokens and their wall-clock expiry.
    pub tokens: HashMap<String, Instant>,
    pub bulk: BulkOps,
    pub cost_log: Vec<CostEntry>,
    pub next_refund_id: u64,
}

/// A decoded GraphQL request body.
pub struct GqlRequest {
    pub query: String,
    pub variables: Map<String, Value>,
    pub operation_name: Option<String>,
}

/// What the route sends back.
pub struct GqlResponse {
    pub status: u16,
    pub body: Out,
    /// `Retry-After` seconds, on a 429 throttle.
    pub retry_after: Option<u64>,
}

fn errors_body(errors: &[GqlError], extensions: Option<Value>) -> Out {
    let mut fields =
        vec![("errors".to_string(), Out::Val(Value::Array(errors.iter().map(GqlError::to_json).collect())))];
    if let Some(e) = extensions {
        fields.push(("extensions".into(), Out::Val(e)));
    }
    Out::Obj(fields)
}

/// A record's position in a listing: its sort value, then its id.
type SortKey = (KeyVal, u64);

/// A listed record before rendering.
enum Record<'a> {
    Order(OrderAsOf<'a>),
    Customer(CustomerAsOf<'a>),
    Product(&'a SimProduct),
    Variant(&'a SimProduct, usize),
    InventoryItem(&'a SimProduct, usize),
}

impl Shared {
    pub fn new(cfg: ShopifyFakeConfig, clock: FakeClock, data: Dataset, urls: Urls) -> Self {
        let state = State {
            overlay: Overlay::default(),
            bucket: Bucket::new(cfg.bucket_max, cfg.restore_rate),
            throttle_next: 0,
            tokens: HashMap::new(),
            bulk: BulkOps::new(),
            cost_log: Vec::new(),
            next_refund_id: 990_000_000_000_000,
        };
        Self { cfg, clock, data, urls, state: Mutex::new(state) }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("shopify fake state lock poisoned")
    }

    /// The scopes a token grants, or `None` for an unknown or expired token.
    pub fn authorize(&self, token: Option<&str>) -> Option<Vec<String>> {
        let token = token?;
        if token == self.cfg.access_token {
            return Some(self.cfg.scopes.clone());
        }
        let st = self.lock();
        st.tokens.get(token).filter(|exp| Instant::now() < **exp).map(|_| self.cfg.scopes.clone())
    }

    pub fn handle(&self, version: &str, scopes: &[String], req: GqlRequest) -> GqlResponse {
        let op = match plan::prepare(&req.query, req.operation_name.as_deref(), &req.variables, version, Mode::Paged) {
            Ok(op) => op,
            Err(errors) => return GqlResponse { status: 200, body: errors_body(&errors, None), retry_after: None },
        };
        let requested = match op.kind {
            OpKind::Mutation => MUTATION_COST * op.sels.iter().filter(|s| s.name != "__typename").count() as u64,
            OpKind::Query => exec::requested_cost(Schema::get(), &exec::refs(&op.sels), "QueryRoot"),
        };
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut entry = CostEntry {
            operation: op.name.clone(),
            requested,
            actual: None,
            throttled: false,
            max_cost_exceeded: false,
            currently_available: 0.0,
        };
        if self.cfg.cost_limits && requested > MAX_QUERY_COST {
            let status = st.bucket.status();
            entry.max_cost_exceeded = true;
            entry.currently_available = status.currently_available;
            st.cost_log.push(entry);
            let err = GqlError::new(format!(
                "Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."
            ))
            .ext(json!({"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST, "documentation": cost::DOCS}));
            let ext = json!({"cost": cost::cost_json(requested, None, status)});
            return GqlResponse { status: 200, body: errors_body(&[err], Some(ext)), retry_after: None };
        }
        let forced = st.throttle_next > 0;
        if forced {
            st.throttle_next -= 1;
        }
        let refused = if forced {
            true
        } else if self.cfg.cost_limits {
            st.bucket.try_take(requested).is_err()
        } else {
            false
        };
        if refused {
            let status = st.bucket.status();
            entry.throttled = true;
            entry.currently_available = status.currently_available;
            st.cost_log.push(entry);
            let wait = st.bucket.wait_secs(requested);
            let err = GqlError::new("Throttled").ext(json!({"code": "THROTTLED", "documentation": cost::DOCS}));
            let ext = json!({"cost": cost::cost_json(requested, None, status)});
            let (code, retry) = if self.cfg.throttle_status_429 {
                (429, Some(if wait.is_finite() { wait.ceil().max(1.0) as u64 } else { 60 }))
            } else {
                (200, None)
            };
            return GqlResponse { status: code, body: errors_body(&[err], Some(ext)), retry_after: retry };
        }
        let (data, errors, actual) = self.execute(st, &op, version, scopes);
        if self.cfg.cost_limits {
            st.bucket.give_back(requested.saturating_sub(actual));
        }
        let status = st.bucket.status();
        entry.actual = Some(actual);
        entry.currently_available = status.currently_available;
        st.cost_log.push(entry);
        let mut fields = Vec::new();
        if !errors.is_empty() {
            fields.push(("errors".to_string(), Out::Val(Value::Array(errors.iter().map(GqlError::to_json).collect()))));
        }
        fields.push(("data".into(), if errors.is_empty() { data } else { Out::null() }));
        fields.push(("extensions".into(), Out::Val(json!({"cost": cost::cost_json(requested, Some(actual), status)}))));
        GqlResponse { status: 200, body: Out::Obj(fields), retry_after: None }
    }

    /// Resolves the root fields; returns the data, runtime errors and the actual cost.
    fn execute(&self, st: &mut State, op: &Operation, version: &str, scopes: &[String]) -> (Out, Vec<GqlError>, u64) {
        let State { overlay, bulk: bulk_ops, .. } = st;
        let view = View {
            data: &self.data,
            overlay,
            now: self.clock.now(),
            horizon: self.clock.horizon(),
            all_orders: scopes.iter().any(|s| s == "read_all_orders"),
        };
        let renderer = Renderer { view: &view };
        let exec = Exec::new(&renderer, false, self.cfg.cursor_ttl);
        let schema = Schema::get();
        let root_ty = op.root_type();
        let mut out = Vec::new();
        let mut errors = Vec::new();
        for (key, group) in exec::collect(schema, &exec::refs(&op.sels), root_ty) {
            let f = group[0];
            let sub = exec::subs(&group);
            let mut path = vec![Value::from(key)];
            let result: Result<Out, GqlError> = match f.name.as_str() {
                "__typename" => Ok(Out::Val(Value::from(root_ty))),
                "shop" => {
                    exec.charge(1);
                    exec.object(&sub, &renderer.shop_json(), "Shop", &mut path)
                }
                "currentAppInstallation" => {
                    exec.charge(1);
                    exec.object(&sub, &renderer.app_installation(scopes), "AppInstallation", &mut path)
                }
                "order" | "customer" | "product" | "productVariant" | "inventoryItem" | "node" => {
                    let val = self.lookup(&renderer, bulk_ops, f);
                    if !val.is_null() {
                        exec.charge(1);
                    }
                    let ty = f.ty.target().unwrap_or_default();
                    exec.object(&sub, &val, &ty, &mut path)
                }
                "currentBulkOperation" => {
                    let now = self.clock.now();
                    let val = match bulk_ops.ops.last_mut() {
                        Some(op) => {
                            op.advance(now, self.cfg.bulk_url_ttl);
                            op.to_json(&self.urls)
                        }
                        None => Value::Null,
                    };
                    if !val.is_null() {
                        exec.charge(1);
                    }
                    exec.object(&sub, &val, "BulkOperation", &mut path)
                }
                "bulkOperationRunQuery" => {
                    let payload = self.run_bulk(&view, bulk_ops, version, f);
                    exec.object(&sub, &payload, "BulkOperationRunQueryPayload", &mut path)
                }
                "bulkOperationCancel" => {
                    let payload = self.cancel_bulk(bulk_ops, f);
                    exec.object(&sub, &payload, "BulkOperationCancelPayload", &mut path)
                }
                name => match Root::from_field(name) {
                    Some(root) => self.list(&view, &renderer, &exec, root, f, &sub, &mut path),
                    None => Ok(Out::null()),
                },
            };
            match result {
                Ok(v) => out.push((key.to_string(), v)),
                Err(e) => {
                    errors.push(e);
                    out.push((key.to_string(), Out::null()));
                }
            }
        }
        let mut actual = exec.actual_cost();
        if op.kind == OpKind::Mutation {
            // Mutations cost their flat price whatever the payload selection returned.
            actual = MUTATION_COST * out.len() as u64;
        }
        (Out::Obj(out), errors, actual)
    }

    /// `order(id:)`, `node(id:)` and friends: the record a gid names, if visible.
    fn lookup(&self, r: &Renderer, bulk_ops: &mut BulkOps, f: &Sel) -> Value {
        let Some((ty, id)) = f.arg_str("id").and_then(parse_gid) else {
            return Value::Null;
        };
        let wanted = match f.name.as_str() {
            "order" => "Order",
            "customer" => "Customer",
            "product" => "Product",
            "productVariant" => "ProductVariant",
            "inventoryItem" => "InventoryItem",
            _ => ty,
        };
        if ty != wanted {
            return Value::Null;
        }
        match ty {
            "Order" => r.view.order_by_id(id).map_or(Value::Null, |o| r.order(&o)),
            "Customer" => r.view.customer_by_id(id).map_or(Value::Null, |c| r.customer(&c)),
            "Product" => r.product_by_id(id),
            "ProductVariant" => r.variant_by_id(id),
            "InventoryItem" => r.inventory_item_by_id(id),
            "BulkOperation" => match bulk_ops.get_mut(id) {
                Some(op) => {
                    op.advance(self.clock.now(), self.cfg.bulk_url_ttl);
                    op.to_json(&self.urls)
                }
                None => Value::Null,
            },
            _ => Value::Null,
        }
    }

    /// The as-of records of a top-level connection matching `terms`, unsorted.
    fn rows<'a>(&self, view: &View<'a>, root: Root, terms: &[Term]) -> Vec<(Keys, Record<'a>)> {
        let data = view.data;
        let keep = |k: &Keys| terms.iter().all(|t| t.matches(k));
        let mut out = Vec::new();
        match root {
            Root::Orders => {
                for o in &data.orders {
                    if let Some(v) = view.order(o) {
                        let k = Keys {
                            id: o.order_id,
                            created: ts_secs(o.created_at),
                            updated: ts_secs(v.updated_at),
                            processed: Some(ts_secs(o.processed_at)),
                            title: Some(o.name.clone()),
                            sku: None,
                        };
                        if keep(&k) {
                            out.push((k, Record::Order(v)));
                        }
                    }
                }
            }
            Root::Customers => {
                for c in &data.customers {
                    if let Some(v) = view.customer(c) {
                        let k = Keys {
                            id: c.customer_id,
                            created: ts_secs(c.created_at),
                            updated: ts_secs(v.updated_at),
                            processed: None,
                            title: Some(format!("{} {}", c.first_name, c.last_name)),
                            sku: None,
                        };
                        if keep(&k) {
                            out.push((k, Record::Customer(v)));
                        }
                    }
                }
            }
            Root::Products | Root::ProductVariants | Root::InventoryItems => {
                for p in data.products.iter().filter_map(|p| view.product(p)) {
                    let created = ts_secs(p.created_at);
                    let updated = ts_secs(view.product_updated(p));
                    if root == Root::Products {
                        let k = Keys {
                            id: p.product_id,
                            created,
                            updated,
                            processed: None,
                            title: Some(p.title.clone()),
                            sku: None,
                        };
                        if keep(&k) {
                            out.push((k, Record::Product(p)));
                        }
                        continue;
                    }
                    for (i, v) in p.variants.iter().enumerate() {
                        let id = if root == Root::ProductVariants { v.variant_id } else { v.inventory_item_id };
                        let k = Keys {
                            id,
                            created,
                            updated,
                            processed: None,
                            title: Some(v.title.clone()),
                            sku: Some(v.sku.clone()),
                        };
                        if keep(&k) {
                            out.push((
                                k,
                                if root == Root::ProductVariants {
                                    Record::Variant(p, i)
                                } else {
                                    Record::InventoryItem(p, i)
                                },
                            ));
                        }
                    }
                }
            }
        }
        out
    }

    fn render(r: &Renderer, item: &Record) -> Value {
        match item {
            Record::Order(o) => r.order(o),
            Record::Customer(c) => r.customer(c),
            Record::Product(p) => r.product(p),
            Record::Variant(p, i) => r.variant(p, &p.variants[*i], *i),
            Record::InventoryItem(p, i) => r.inventory_item(p, &p.variants[*i]),
        }
    }

    /// Rows of a top-level connection in the order its arguments ask for, with sort keys.
    fn sorted_rows<'a>(&self, view: &View<'a>, root: Root, f: &Sel) -> (Vec<(SortKey, Record<'a>)>, String, bool) {
        let terms = search::parse(f.arg_str("query").unwrap_or_default(), root);
        let sort = f.arg_str("sortKey").unwrap_or("ID").to_string();
        let rev = f.arg_bool("reverse").unwrap_or(false);
        let mut rows: Vec<(SortKey, Record<'a>)> = self
            .rows(view, root, &terms)
            .into_iter()
            .map(|(k, item)| ((search::sort_value(&k, &sort), k.id), item))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        if rev {
            rows.reverse();
        }
        (rows, sort, rev)
    }

    #[allow(clippy::too_many_arguments)]
    fn list(
        &self,
        view: &View,
        renderer: &Renderer,
        exec: &Exec,
        root: Root,
        f: &Sel,
        sub: &[&Sel],
        path: &mut Vec<Value>,
    ) -> Result<Out, GqlError> {
        let (rows, sort, rev) = self.sorted_rows(view, root, f);
        let eff = |a: &(KeyVal, u64), b: &(KeyVal, u64)| if rev { b.cmp(a) } else { a.cmp(b) };
        let decode = |arg: &str| -> Result<Option<(KeyVal, u64)>, GqlError> {
            let Some(c) = f.arg_str(arg) else {
                return Ok(None);
            };
            match cursor::decode::<RootCursor>(c, self.cfg.cursor_ttl) {
                Ok(p) if p.r == root.name() && p.s == sort && p.rev == rev => Ok(Some((p.k, p.id))),
                Ok(_) | Err(CursorError::Invalid) => Err(exec::invalid_cursor(c, false).at(f.pos).path(path.clone())),
                Err(CursorError::Stale) => Err(exec::invalid_cursor(c, true).at(f.pos).path(path.clone())),
            }
        };
        let after = decode("after")?.map(|c| rows.partition_point(|r| eff(&r.0, &c) != Ordering::Greater));
        let before = decode("before")?.map(|c| rows.partition_point(|r| eff(&r.0, &c) == Ordering::Less));
        let w: Window = exec::window(rows.len(), after, before, f.arg_i64("first"), f.arg_i64("last"));
        let rendered: Vec<(String, Value)> = rows[w.lo..w.hi]
            .iter()
            .map(|(k, item)| {
                let c = RootCursor { r: root.name().into(), s: sort.clone(), rev, k: k.0.clone(), id: k.1 };
                (cursor::encode(&c), Self::render(renderer, item))
            })
            .collect();
        let page: Vec<(String, &Value)> = rendered.iter().map(|(c, v)| (c.clone(), v)).collect();
        exec.charge(2);
        exec.connection(sub, root.node_type(), &page, &w, path)
    }

    fn user_error(field: Option<&[&str]>, message: &str, code: Option<&str>) -> Value {
        let mut e = json!({"__typename": "BulkOperationUserError", "field": field, "message": message});
        if let Some(code) = code {
            e["code"] = Value::from(code);
        } else {
            e["__typename"] = Value::from("UserError");
        }
        e
    }

    fn run_bulk(&self, view: &View, ops: &mut BulkOps, version: &str, f: &Sel) -> Value {
        let query = f.arg_str("query").unwrap_or_default().to_string();
        let refuse = |errors: Vec<Value>| json!({"__typename": "BulkOperationRunQueryPayload", "bulkOperation": null, "userErrors": errors});
        let inner = match plan::prepare(&query, None, &Map::new(), version, Mode::Bulk) {
            Ok(op) => op,
            Err(errs) => {
                let errors = errs
                    .iter()
                    .map(|e| {
                        Self::user_error(
                            Some(&["query"]),
                            &format!("Invalid bulk query: {}", e.message),
                            Some("INVALID"),
                        )
                    })
                    .collect();
                return refuse(errors);
            }
        };
        let problems = bulk::validate(&inner, self.cfg.bulk_strict);
        if !problems.is_empty() {
            return refuse(problems.iter().map(|m| Self::user_error(Some(&["query"]), m, Some("INVALID"))).collect());
        }
        let limit = if version >= "2026-01" { 5 } else { 1 };
        let running = ops.in_progress();
        if running.len() >= limit {
            let message = if limit == 1 {
                format!("A bulk query operation for this app and shop is already in progress: {}.", running[0].gid())
            } else {
                format!("A maximum of {limit} bulk query operations can run at the same time for this app and shop.")
            };
            return refuse(vec![Self::user_error(None, &message, Some("OPERATION_IN_PROGRESS"))]);
        }
        match self.write_bulk(view, ops, &inner, &query, version) {
            Ok(op) => {
                let json = op.to_json(&self.urls);
                ops.ops.push(op);
                json!({"__typename": "BulkOperationRunQueryPayload", "bulkOperation": json, "userErrors": []})
            }
            Err(e) => {
                refuse(vec![Self::user_error(Some(&["query"]), &format!("Internal error: {e}"), Some("INVALID"))])
            }
        }
    }

    fn write_bulk(
        &self,
        view: &View,
        ops: &mut BulkOps,
        inner: &Operation,
        query: &str,
        version: &str,
    ) -> std::io::Result<BulkOp> {
        let root_sel = &inner.sels[0];
        let root = Root::from_field(&root_sel.name)
            .ok_or_else(|| std::io::Error::other(format!("{} cannot be exported", root_sel.name)))?;
        let renderer = Renderer { view };
        let exec = Exec::new(&renderer, true, self.cfg.cursor_ttl);
        let node_sels = exec::node_sels(Schema::get(), &exec::refs(&root_sel.sub), root.node_type());
        let (rows, _, _) = self.sorted_rows(view, root, root_sel);
        let mut writer = bulk::JsonlWriter::create(ops.file_path()?)?;
        for (_, item) in &rows {
            let value = Self::render(&renderer, item);
            let mut children = Vec::new();
            let line = exec.bulk_object(&node_sels, &value, root.node_type(), "", &mut children);
            writer.root(&line, &children)?;
        }
        let fail = ops.fail_next.take();
        let stall = std::mem::take(&mut ops.stall_next);
        let partial_path = match &fail {
            Some(f) if f.partial => Some(ops.file_path()?),
            _ => None,
        };
        let (file, partial) = writer.finish(partial_path)?;
        Ok(BulkOp {
            id: ops.next_id(),
            status: Status::Created,
            error_code: None,
            created_at: self.clock.now(),
            completed_at: None,
            query: query.to_string(),
            version: version.to_string(),
            object_count: 0,
            root_object_count: 0,
            file: Some(Arc::new(file)),
            partial: partial.map(Arc::new),
            url_expires: None,
            url_expires_unix: 0,
            polls: 0,
            steps: self.cfg.bulk_poll_steps,
            fail,
            stall,
        })
    }

    fn cancel_bulk(&self, ops: &mut BulkOps, f: &Sel) -> Value {
        let op = f
            .arg_str("id")
            .and_then(parse_gid)
            .filter(|(t, _)| *t == "BulkOperation")
            .and_then(|(_, id)| ops.get_mut(id));
        let Some(op) = op else {
            return json!({
                "__typename": "BulkOperationCancelPayload",
                "bulkOperation": null,
                "userErrors": [Self::user_error(Some(&["id"]), "Bulk operation does not exist", None)],
            });
        };
        let mut errors = Vec::new();
        match op.status {
            Status::Created | Status::Running => op.status = Status::Canceling,
            Status::Canceling => {}
            s => errors.push(Self::user_error(
                Some(&["id"]),
                &format!("A bulk operation cannot be canceled when it is {}", s.as_str().to_lowercase()),
                None,
            )),
        }
        json!({"__typename": "BulkOperationCancelPayload", "bulkOperation": op.to_json(&self.urls), "userErrors": errors})
    }
}
