//! Projection: rendered JSON records pushed through a compiled plan, with the cost tally.
//!
//! Records are rendered as whole JSON trees (every field, nested connections held as plain
//! arrays, cross-record links as `{"__ref": true, "__typename", "id"}` markers) and the plan
//! picks, aliases, pages and orders what the client asked for. Keeping resolution this dumb is
//! what lets one executor serve paged queries, `node(id:)` polls and bulk JSONL alike.

use std::cell::Cell;
use std::time::Duration;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};

use super::plan::{GqlError, Sel};
use super::schema::{Schema, Ty};
use crate::fake::cursor::{self, CursorError};

/// Response JSON that keeps fields in selection order (`serde_json` here sorts object keys).
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Val(Value),
    List(Vec<Out>),
    Obj(Vec<(String, Out)>),
}

impl Out {
    pub fn null() -> Out {
        Out::Val(Value::Null)
    }
}

impl From<Value> for Out {
    fn from(v: Value) -> Self {
        Out::Val(v)
    }
}

impl Serialize for Out {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Val(v) => v.serialize(s),
            Out::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Out::Obj(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// Groups `sels` applicable to an object of type `concrete` by response key, first-seen order.
pub fn collect<'s>(schema: &Schema, sels: &[&'s Sel], concrete: &str) -> Vec<(&'s str, Vec<&'s Sel>)> {
    let mut out: Vec<(&'s str, Vec<&'s Sel>)> = Vec::new();
    for s in sels {
        if !s.conds.iter().all(|c| schema.applies(c, concrete)) {
            continue;
        }
        match out.iter_mut().find(|(k, _)| *k == s.key) {
            Some((_, g)) => g.push(s),
            None => out.push((s.key.as_str(), vec![s])),
        }
    }
    out
}

/// The merged sub-selections of a group of same-key fields.
pub fn subs<'s>(group: &[&'s Sel]) -> Vec<&'s Sel> {
    group.iter().flat_map(|s| s.sub.iter()).collect()
}

pub fn refs(sels: &[Sel]) -> Vec<&Sel> {
    sels.iter().collect()
}

/// The node selections of a connection selection (`nodes { … }` and `edges { node { … } }`).
pub fn node_sels<'s>(schema: &Schema, conn_sels: &[&'s Sel], node_ty: &str) -> Vec<&'s Sel> {
    let conn = format!("{node_ty}Connection");
    let edge = format!("{node_ty}Edge");
    let mut out = Vec::new();
    for (_, group) in collect(schema, conn_sels, &conn) {
        match group[0].name.as_str() {
            "nodes" => out.extend(subs(&group)),
            "edges" => {
                let edge_sels = subs(&group);
                for (_, eg) in collect(schema, &edge_sels, &edge) {
                    if eg[0].name == "node" {
                        out.extend(subs(&eg));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Requested cost of a selection on a value of type `ty`: the most expensive of its possible
/// concrete types (see the module docs of `cost` for the rules).
pub fn requested_cost(schema: &Schema, sels: &[&Sel], ty: &str) -> u64 {
    schema.possible(ty).iter().map(|c| requested_cost_concrete(schema, sels, c)).max().unwrap_or(0)
}

fn requested_cost_concrete(schema: &Schema, sels: &[&Sel], concrete: &str) -> u64 {
    let mut total = 0;
    for (_, group) in collect(schema, sels, concrete) {
        let f = group[0];
        let sub = subs(&group);
        total += match f.ty {
            Ty::Scalar(_) | Ty::ScalarList(_) => 0,
            Ty::Object(t) => 1 + requested_cost(schema, &sub, t),
            Ty::List(t) => {
                let n = f.arg_i64("first").unwrap_or(1).max(0) as u64;
                n * (1 + requested_cost(schema, &sub, t))
            }
            Ty::Connection(t) => {
                let n = f.arg_i64("first").or(f.arg_i64("last")).unwrap_or(0).max(0) as u64;
                let nodes = node_sels(schema, &sub, t);
                2 + n * (1 + requested_cost(schema, &nodes, t))
            }
        };
    }
    total
}

/// Renders records a marker points at (`{"__ref": true, "__typename": T, "id": gid}`).
pub trait Refs {
    fn deref(&self, typename: &str, id: &str) -> Value;
}

/// One page of a connection: positions into the full list, and its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub lo: usize,
    pub hi: usize,
    pub has_prev: bool,
    pub has_next: bool,
}

/// The page `[lo, hi)` of `len` items given where `after`/`before` cursors fall (`after_at`:
/// index of the first item after the cursor; `before_at`: index of the first item not before it).
pub fn window(
    len: usize,
    after_at: Option<usize>,
    before_at: Option<usize>,
    first: Option<i64>,
    last: Option<i64>,
) -> Window {
    let lo0 = after_at.unwrap_or(0).min(len);
    let hi0 = before_at.unwrap_or(len).clamp(lo0, len);
    let (mut lo, mut hi) = (lo0, hi0);
    if let Some(n) = first {
        hi = hi.min(lo + n.max(0) as usize);
    }
    if let Some(n) = last {
        lo = lo.max(hi.saturating_sub(n.max(0) as usize));
    }
    Window {
        lo,
        hi,
        has_prev: lo > lo0 || (last.is_none() && lo > 0),
        has_next: hi < hi0 || (first.is_none() && hi < len),
    }
}

/// What a nested-connection cursor holds: the field and the index of the item.
#[derive(Serialize, Deserialize)]
struct NestedPos {
    f: String,
    i: usize,
}

pub fn invalid_cursor(cursor: &str, stale: bool) -> GqlError {
    let message = if stale {
        format!("Cursor {cursor:?} has expired; request the first page again.")
    } else {
        "Invalid cursor for current pagination sort.".to_string()
    };
    GqlError::new(message).ext(json!({"code": "BAD_REQUEST"}))
}

/// Projects rendered records through a plan, tallying the actual cost as it goes.
pub struct Exec<'a> {
    pub schema: &'static Schema,
    pub refs: &'a dyn Refs,
    /// Bulk mode: nested connections and lists are served whole, pagination ignored.
    pub bulk: bool,
    pub cursor_ttl: Duration,
    actual: Cell<u64>,
    counting: Cell<bool>,
}

impl<'a> Exec<'a> {
    pub fn new(refs: &'a dyn Refs, bulk: bool, cursor_ttl: Duration) -> Self {
        Self { schema: Schema::get(), refs, bulk, cursor_ttl, actual: Cell::new(0), counting: Cell::new(true) }
    }

    pub fn actual_cost(&self) -> u64 {
        self.actual.get()
    }

    pub fn charge(&self, points: u64) {
        if self.counting.get() {
            self.actual.set(self.actual.get() + points);
        }
    }

    /// Replaces a reference marker by the full record unless the selection only asks for
    /// what the marker already holds.
    fn resolve<'v>(&self, sels: &[&Sel], val: &'v Value) -> std::borrow::Cow<'v, Value> {
        let Some(obj) = val.as_object() else {
            return std::borrow::Cow::Borrowed(val);
        };
        if obj.get("__ref") != Some(&Value::Bool(true)) {
            return std::borrow::Cow::Borrowed(val);
        }
        let ty = obj.get("__typename").and_then(Value::as_str).unwrap_or_default();
        let id = obj.get("id").and_then(Value::as_str).unwrap_or_default();
        let needs_more = collect(self.schema, sels, ty)
            .iter()
            .any(|(_, g)| g[0].name != "__typename" && !obj.contains_key(g[0].name.as_str()));
        if needs_more { std::borrow::Cow::Owned(self.refs.deref(ty, id)) } else { std::borrow::Cow::Borrowed(val) }
    }

    pub fn object(&self, sels: &[&Sel], val: &Value, static_ty: &str, path: &mut Vec<Value>) -> Result<Out, GqlError> {
        if val.is_null() {
            return Ok(Out::null());
        }
        let val = self.resolve(sels, val);
        if val.is_null() {
            return Ok(Out::null());
        }
        let concrete = val.get("__typename").and_then(Value::as_str).unwrap_or(static_ty).to_string();
        let mut out = Vec::new();
        for (key, group) in collect(self.schema, sels, &concrete) {
            let f = group[0];
            if f.name == "__typename" {
                out.push((key.to_string(), Out::Val(Value::from(concrete.as_str()))));
                continue;
            }
            let raw = val.get(f.name.as_str()).unwrap_or(&Value::Null);
            path.push(Value::from(key));
            let v = self.field(f, &subs(&group), raw, path)?;
            path.pop();
            out.push((key.to_string(), v));
        }
        Ok(Out::Obj(out))
    }

    fn field(&self, f: &Sel, sub: &[&Sel], raw: &Value, path: &mut Vec<Value>) -> Result<Out, GqlError> {
        match f.ty {
            Ty::Scalar(_) | Ty::ScalarList(_) => Ok(Out::Val(raw.clone())),
            Ty::Object(t) => {
                if raw.is_null() {
                    return Ok(Out::null());
                }
                self.charge(1);
                self.object(sub, raw, t, path)
            }
            Ty::List(t) => {
                let Some(items) = raw.as_array() else {
                    return Ok(Out::Val(raw.clone()));
                };
                let n = match f.arg_i64("first") {
                    Some(n) if !self.bulk => (n.max(0) as usize).min(items.len()),
                    _ => items.len(),
                };
                let mut out = Vec::with_capacity(n);
                for (i, item) in items.iter().take(n).enumerate() {
                    self.charge(1);
                    path.push(Value::from(i));
                    out.push(self.object(sub, item, t, path)?);
                    path.pop();
                }
                Ok(Out::List(out))
            }
            Ty::Connection(t) => {
                let empty = Vec::new();
                let items = raw.as_array().unwrap_or(&empty);
                let w = if self.bulk {
                    Window { lo: 0, hi: items.len(), has_prev: false, has_next: false }
                } else {
                    self.nested_window(f, items.len(), path)?
                };
                let page: Vec<(String, &Value)> =
                    (w.lo..w.hi).map(|i| (cursor::encode(&NestedPos { f: f.name.clone(), i }), &items[i])).collect();
                self.charge(2);
                self.connection(sub, t, &page, &w, path)
            }
        }
    }

    fn nested_window(&self, f: &Sel, len: usize, path: &[Value]) -> Result<Window, GqlError> {
        let decode = |arg: &str| -> Result<Option<usize>, GqlError> {
            let Some(c) = f.arg_str(arg) else {
                return Ok(None);
            };
            match cursor::decode::<NestedPos>(c, self.cursor_ttl) {
                Ok(p) if p.f == f.name => Ok(Some(p.i)),
                Ok(_) | Err(CursorError::Invalid) => Err(invalid_cursor(c, false).at(f.pos).path(path.to_vec())),
                Err(CursorError::Stale) => Err(invalid_cursor(c, true).at(f.pos).path(path.to_vec())),
            }
        };
        let after = decode("after")?.map(|i| i + 1);
        let before = decode("before")?;
        Ok(window(len, after, before, f.arg_i64("first"), f.arg_i64("last")))
    }

    /// Projects a connection selection over one page of nodes.
    pub fn connection(
        &self,
        sels: &[&Sel],
        node_ty: &str,
        page: &[(String, &Value)],
        w: &Window,
        path: &mut Vec<Value>,
    ) -> Result<Out, GqlError> {
        let conn_ty = format!("{node_ty}Connection");
        let edge_ty = format!("{node_ty}Edge");
        let mut out = Vec::new();
        // Nodes are charged once even when both `edges` and `nodes` list them.
        let mut charged = false;
        for (key, group) in collect(self.schema, sels, &conn_ty) {
            path.push(Value::from(key));
            let sub = subs(&group);
            let v = match group[0].name.as_str() {
                "__typename" => Out::Val(Value::from(conn_ty.as_str())),
                "pageInfo" => {
                    let info = json!({
                        "__typename": "PageInfo",
                        "hasNextPage": w.has_next,
                        "hasPreviousPage": w.has_prev,
                        "startCursor": page.first().map(|p| p.0.clone()),
                        "endCursor": page.last().map(|p| p.0.clone()),
                    });
                    self.object(&sub, &info, "PageInfo", path)?
                }
                name @ ("edges" | "nodes") => {
                    let was = self.counting.get();
                    if charged {
                        self.counting.set(false);
                    }
                    charged = true;
                    let mut items = Vec::with_capacity(page.len());
                    for (i, (cursor, node)) in page.iter().enumerate() {
                        path.push(Value::from(i));
                        self.charge(1);
                        let item = if name == "nodes" {
                            self.object(&sub, node, node_ty, path)?
                        } else {
                            self.edge(&sub, &edge_ty, node_ty, cursor, node, path)?
                        };
                        items.push(item);
                        path.pop();
                    }
                    self.counting.set(was);
                    Out::List(items)
                }
                _ => Out::null(),
            };
            path.pop();
            out.push((key.to_string(), v));
        }
        Ok(Out::Obj(out))
    }

    fn edge(
        &self,
        sels: &[&Sel],
        edge_ty: &str,
        node_ty: &str,
        cursor: &str,
        node: &Value,
        path: &mut Vec<Value>,
    ) -> Result<Out, GqlError> {
        let mut out = Vec::new();
        for (key, group) in collect(self.schema, sels, edge_ty) {
            let v = match group[0].name.as_str() {
                "__typename" => Out::Val(Value::from(edge_ty)),
                "cursor" => Out::Val(Value::from(cursor)),
                "node" => {
                    path.push(Value::from(key));
                    let v = self.object(&subs(&group), node, node_ty, path)?;
                    path.pop();
                    v
                }
                _ => Out::null(),
            };
            out.push((key.to_string(), v));
        }
        Ok(Out::Obj(out))
    }

    /// Bulk form of [`Exec::object`]: nested connections are cut out of the object and their
    /// nodes appended to `children`, each carrying `__parentId` = the id of the nearest
    /// enclosing record that has one, each followed by its own children.
    pub fn bulk_object(
        &self,
        sels: &[&Sel],
        val: &Value,
        static_ty: &str,
        parent_id: &str,
        children: &mut Vec<Out>,
    ) -> Out {
        if val.is_null() {
            return Out::null();
        }
        let val = self.resolve(sels, val);
        if val.is_null() {
            return Out::null();
        }
        let concrete = val.get("__typename").and_then(Value::as_str).unwrap_or(static_ty).to_string();
        let own_id = val.get("id").and_then(Value::as_str).unwrap_or(parent_id).to_string();
        let mut out = Vec::new();
        for (key, group) in collect(self.schema, sels, &concrete) {
            let f = group[0];
            if f.name == "__typename" {
                out.push((key.to_string(), Out::Val(Value::from(concrete.as_str()))));
                continue;
            }
            let raw = val.get(f.name.as_str()).unwrap_or(&Value::Null);
            let sub = subs(&group);
            let v = match f.ty {
                Ty::Scalar(_) | Ty::ScalarList(_) => Out::Val(raw.clone()),
                Ty::Object(t) => self.bulk_object(&sub, raw, t, &own_id, children),
                Ty::List(t) => match raw.as_array() {
                    Some(items) => {
                        Out::List(items.iter().map(|i| self.bulk_object(&sub, i, t, &own_id, children)).collect())
                    }
                    None => Out::Val(raw.clone()),
                },
                Ty::Connection(t) => {
                    let nodes = node_sels(self.schema, &sub, t);
                    for node in raw.as_array().into_iter().flatten() {
                        let mut grand = Vec::new();
                        let mut line = self.bulk_object(&nodes, node, t, &own_id, &mut grand);
                        if let Out::Obj(fields) = &mut line {
                            fields.push(("__parentId".into(), Out::Val(Value::from(own_id.as_str()))));
                        }
                        children.push(line);
                        children.extend(grand);
                    }
                    continue;
                }
            };
            out.push((key.to_string(), v));
        }
        Out::Obj(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::shopify::plan::{GqlError, Mode, Operation, prepare};
    use serde_json::json;

    struct NoRefs;
    impl Refs for NoRefs {
        fn deref(&self, _: &str, _: &str) -> Value {
            Value::Null
        }
    }

    fn prep(q: &str, vars: Value) -> Result<Operation, Vec<GqlError>> {
        prepare(q, None, vars.as_object().unwrap(), "2026-10", Mode::Paged)
    }

    #[test]
    fn window_math() {
        assert_eq!(window(10, None, None, Some(3), None), Window { lo: 0, hi: 3, has_prev: false, has_next: true });
        assert_eq!(window(10, Some(8), None, Some(3), None), Window { lo: 8, hi: 10, has_prev: true, has_next: false });
        assert_eq!(window(10, None, Some(5), None, Some(2)), Window { lo: 3, hi: 5, has_prev: true, has_next: true });
        assert_eq!(window(0, None, None, Some(3), None), Window { lo: 0, hi: 0, has_prev: false, has_next: false });
    }

    #[test]
    fn projection_merges_fragments_and_aliases() {
        let op = prep(
            "query { node(id: \"x\") { __typename ...F ... on BulkOperation { s: status id } } } \
             fragment F on BulkOperation { id url }",
            json!({}),
        )
        .unwrap();
        let val = json!({"__typename": "BulkOperation", "id": "gid://shopify/BulkOperation/1", "status": "RUNNING", "url": null});
        let exec = Exec::new(&NoRefs, false, Duration::from_secs(60));
        let node = &op.sels[0];
        let out = exec.object(&refs(&node.sub), &val, "Node", &mut Vec::new()).unwrap();
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"__typename":"BulkOperation","id":"gid://shopify/BulkOperation/1","url":null,"s":"RUNNING"}"#
        );
        // A fragment on another type contributes nothing.
        let val = json!({"__typename": "Order", "id": "gid://shopify/Order/1"});
        let out = exec.object(&refs(&node.sub), &val, "Node", &mut Vec::new()).unwrap();
        assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"__typename":"Order"}"#);
    }

    #[test]
    fn requested_cost_multiplies_connections() {
        let op = prep(
            "{ orders(first: 10) { nodes { id customer { id } lineItems(first: 5) { nodes { id } } } } }",
            json!({}),
        )
        .unwrap();
        // 2 + 10 × (1 + customer 1 + (2 + 5 × 1))
        assert_eq!(requested_cost(Schema::get(), &refs(&op.sels), "QueryRoot"), 2 + 10 * (1 + 1 + 7));
    }
}
