//! `int_flow_structure`: one row per messaging flow with what its action graph says about its
//! build (models.md 4.11): send actions per channel, split nodes, the branching depth, the
//! delays, Smart Sending. The flow audit (`fct_flow_audit`) reads it; graph walking stays out of
//! SQL.
//!
//! * **Graph** (`depth_method = graph`): the latest copy of every action of the flow (revision
//!   ≥ 2025-10-15 shape, `attributes.definition` with `links`). Successors are every action id
//!   a `links` entry names (`next`, `next_if_true`, `next_if_false`, and any other key or
//!   list a newer split type carries). Entries are the actions no link points to.
//! * **Split nodes** (`split_count`): actions whose type names a split (`conditional-split`,
//!   `trigger-split`, `ab-test`, `random-sample`, multi-branch splits) or that link to two or
//!   more successors.
//! * **Branching depth**: the largest number of *branching* splits — splits with at least two
//!   branches that continue — on any path from an entry to a leaf. A split whose other branch
//!   ends (an exit such as "placed order since starting this flow", or a random holdout) filters
//!   the flow's audience but does not personalise it, so it counts in `split_count` and
//!   `exit_split_count` but not in the depth (deviation from models.md 4.11, which counts every
//!   split node: with it every abandonment flow carrying the usual exit split would be
//!   "branched").
//! * **Delays**: `first_message_delay_hours` is the shortest total of time delays from an entry to
//!   a send action; `longest_path_delay_hours` the largest total on any path.
//! * **Old shape** (revision ≤ 2025-07-15, `action_type` and no links, `depth_method = approx`):
//!   the split count stands in for the depth, delays are summed, and the first message delay is
//!   unknown (NULL). A flow without landed actions gets `depth_method = unavailable` and NULL
//!   structure.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::error::Result;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::future::BoxFuture;
use serde_json::Value;

use super::columns::{micros, opt_str, query, text};
use super::flows::flow_key;

/// Version of this implementation (models.md 1.6).
pub const MODEL_VERSION: &str = "1.0.0";

const FLOWS_SQL: &str = "select flow_id from stg_klaviyo__flows order by flow_id";

const ACTIONS_SQL: &str = "\
select flow_id, id, _raw, updated from (
    select flow_id, id, _raw, updated,
           row_number() over (partition by id order by updated desc, _landed_at desc, _run_id desc) as copy_rank
    from raw_klaviyo__flow_actions
) where copy_rank = 1 order by flow_id, id";

/// What the graph of one flow says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Structure {
    /// `graph`, `approx` or `unavailable`.
    pub depth_method: &'static str,
    pub message_count: i32,
    pub email_message_count: i32,
    pub sms_message_count: i32,
    pub split_count: i32,
    pub exit_split_count: i32,
    pub branching_depth: i32,
    pub first_message_delay_hours: Option<f64>,
    pub longest_path_delay_hours: f64,
    /// Share of send actions with Smart Sending on; `None` without send actions.
    pub smart_sending_share: Option<f64>,
}

fn hours(value: Option<f64>, unit: Option<&str>) -> f64 {
    let v = value.unwrap_or(0.0);
    match unit.unwrap_or("hours") {
        "days" => v * 24.0,
        "minutes" => v / 60.0,
        "weeks" => v * 168.0,
        _ => v,
    }
}

fn is_split_type(t: &str) -> bool {
    t.contains("split") || t.contains("branch") || t == "ab-test" || t == "random-sample"
}

/// Every action id `links` names (any key, strings or lists of strings), in key order.
fn successors(def: &Value) -> Vec<String> {
    fn collect(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            Value::Object(o) => o.values().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(l) = def.get("links") {
        collect(l, &mut out);
    }
    out
}

/// One action reduced to what the walk needs.
#[derive(Debug, Clone)]
struct Node {
    kind: String,
    delay: f64,
    next: Vec<String>,
}

/// Per node: (most branching splits on a path from it, shortest delay to a send, longest delay).
type Memo = BTreeMap<String, (i32, Option<f64>, f64)>;

fn visit(
    id: &str,
    nodes: &BTreeMap<String, Node>,
    memo: &mut Memo,
    on_path: &mut BTreeSet<String>,
) -> (i32, Option<f64>, f64) {
    if let Some(m) = memo.get(id) {
        return *m;
    }
    let Some(n) = nodes.get(id) else { return (0, None, 0.0) };
    // A link back into the current path (not expected in a flow) ends the path there.
    if !on_path.insert(id.to_string()) {
        return (0, None, 0.0);
    }
    let live: Vec<&String> = n.next.iter().filter(|s| nodes.contains_key(*s)).collect();
    let (mut depth, mut first, mut longest) = (0, None::<f64>, 0.0_f64);
    for s in &live {
        let (d, f, l) = visit(s, nodes, memo, on_path);
        depth = depth.max(d);
        first = match (first, f) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        longest = longest.max(l);
    }
    on_path.remove(id);
    let branching = (is_split_type(&n.kind) || n.next.len() >= 2) && live.len() >= 2;
    let here = if n.kind.starts_with("send-") { Some(n.delay) } else { first.map(|f| f + n.delay) };
    let out = (depth + i32::from(branching), here, longest + n.delay);
    memo.insert(id.to_string(), out);
    out
}

/// Reads the structure of one flow from its actions (`id → attributes`); see the module docs.
pub fn structure(actions: &BTreeMap<String, Value>) -> Structure {
    if actions.is_empty() {
        return Structure { depth_method: "unavailable", ..Structure::default() };
    }
    let graph = actions.values().any(|a| a.get("definition").is_some_and(|d| d.get("type").is_some()));
    let mut s = Structure { depth_method: if graph { "graph" } else { "approx" }, ..Structure::default() };
    let mut nodes = BTreeMap::new();
    let (mut sends, mut smart) = (0, 0);
    for (id, attrs) in actions {
        let (kind, delay, next, smart_on) = if graph {
            let def = attrs.get("definition").cloned().unwrap_or(Value::Null);
            let kind = def.get("type").and_then(Value::as_str).unwrap_or("").to_string();
            let data = def.get("data").cloned().unwrap_or(Value::Null);
            let delay = if kind == "time-delay" {
                hours(data.get("value").and_then(Value::as_f64), data.get("unit").and_then(Value::as_str))
            } else {
                0.0
            };
            let smart_on = data.pointer("/message/smart_sending_enabled").and_then(Value::as_bool) == Some(true);
            (kind, delay, successors(&def), smart_on)
        } else {
            let kind = match attrs.get("action_type").and_then(Value::as_str).unwrap_or("") {
                "SEND_EMAIL" => "send-email",
                "SEND_SMS" => "send-sms",
                "TIME_DELAY" => "time-delay",
                "BOOLEAN_BRANCH" | "TRIGGER_BRANCH" => "conditional-split",
                "AB_TEST" | "RANDOM_SAMPLE" => "ab-test",
                other => other,
            }
            .to_string();
            let delay = if kind == "time-delay" {
                hours(
                    attrs.pointer("/settings/delay_value").and_then(Value::as_f64),
                    attrs.pointer("/settings/delay_unit").and_then(Value::as_str),
                )
            } else {
                0.0
            };
            let smart_on = attrs.pointer("/send_options/use_smart_sending").and_then(Value::as_bool) == Some(true);
            (kind, delay, Vec::new(), smart_on)
        };
        match kind.as_str() {
            "send-email" => s.email_message_count += 1,
            "send-sms" => s.sms_message_count += 1,
            _ => {}
        }
        if kind.starts_with("send-") && kind != "send-webhook" && kind != "send-internal-alert" {
            s.message_count += 1;
            sends += 1;
            smart += i32::from(smart_on);
        }
        if is_split_type(&kind) || next.len() >= 2 {
            s.split_count += 1;
        }
        nodes.insert(id.clone(), Node { kind, delay, next });
    }
    s.smart_sending_share = (sends > 0).then(|| f64::from(smart) / f64::from(sends));
    if !graph {
        s.branching_depth = s.split_count;
        s.longest_path_delay_hours = nodes.values().map(|n| n.delay).sum();
        return s;
    }
    for n in nodes.values() {
        let live = n.next.iter().filter(|x| nodes.contains_key(*x)).count();
        if (is_split_type(&n.kind) || n.next.len() >= 2) && live < 2 {
            s.exit_split_count += 1;
        }
    }
    let targets: BTreeSet<&String> = nodes.values().flat_map(|n| n.next.iter()).collect();
    let mut entries: Vec<&String> = nodes.keys().filter(|id| !targets.contains(id)).collect();
    if entries.is_empty() {
        // Every action is linked to (a cycle): start anywhere rather than report nothing.
        entries = nodes.keys().take(1).collect();
    }
    let mut memo = Memo::new();
    let mut first: Option<f64> = None;
    for e in entries {
        let (d, f, l) = visit(e, &nodes, &mut memo, &mut BTreeSet::new());
        s.branching_depth = s.branching_depth.max(d);
        s.longest_path_delay_hours = s.longest_path_delay_hours.max(l);
        first = match (first, f) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    s.first_message_delay_hours = first;
    s
}

/// One output row.
struct Row {
    flow_key: String,
    flow_id: String,
    s: Structure,
    structure_updated_at: Option<i64>,
}

/// Builds `int_flow_structure`.
pub fn build_flow_structure(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(async move {
        let mut actions: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        let mut updated: BTreeMap<String, i64> = BTreeMap::new();
        for b in query(ctx, ACTIONS_SQL).await? {
            let (f, id, raw, up) = (text(&b, 0)?, text(&b, 1)?, text(&b, 2)?, micros(&b, 3)?);
            for r in 0..b.num_rows() {
                let (Some(f), Some(id)) = (opt_str(&f, r), opt_str(&id, r)) else { continue };
                let doc: Value = opt_str(&raw, r).and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
                let attrs = doc.get("attributes").cloned().unwrap_or(Value::Null);
                if up.is_valid(r) {
                    let u = updated.entry(f.clone()).or_insert(i64::MIN);
                    *u = (*u).max(up.value(r));
                }
                actions.entry(f).or_default().insert(id, attrs);
            }
        }
        let mut rows = Vec::new();
        for b in query(ctx, FLOWS_SQL).await? {
            let id = text(&b, 0)?;
            for r in 0..b.num_rows() {
                let Some(flow_id) = opt_str(&id, r) else { continue };
                let s = structure(actions.get(&flow_id).unwrap_or(&BTreeMap::new()));
                rows.push(Row {
                    flow_key: flow_key("klaviyo", &flow_id),
                    structure_updated_at: updated.get(&flow_id).copied(),
                    flow_id,
                    s,
                });
            }
        }
        ctx.read_batch(batch(&rows)?)
    })
}

fn batch(rows: &[Row]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("flow_key", DataType::Utf8, false),
        Field::new("platform", DataType::Utf8, false),
        Field::new("flow_id", DataType::Utf8, false),
        Field::new("depth_method", DataType::Utf8, false),
        Field::new("message_count", DataType::Int32, true),
        Field::new("email_message_count", DataType::Int32, true),
        Field::new("sms_message_count", DataType::Int32, true),
        Field::new("split_count", DataType::Int32, true),
        Field::new("exit_split_count", DataType::Int32, true),
        Field::new("branching_depth", DataType::Int32, true),
        Field::new("first_message_delay_hours", DataType::Float64, true),
        Field::new("longest_path_delay_hours", DataType::Float64, true),
        Field::new("smart_sending_share", DataType::Float64, true),
        Field::new("structure_updated_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("model_version", DataType::Utf8, false),
    ]));
    let known = |r: &Row| r.s.depth_method != "unavailable";
    let s =
        |f: &dyn Fn(&Row) -> String| Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef;
    let i = |f: &dyn Fn(&Structure) -> i32| {
        Arc::new(Int32Array::from(rows.iter().map(|r| known(r).then(|| f(&r.s))).collect::<Vec<_>>())) as ArrayRef
    };
    let x = |f: &dyn Fn(&Structure) -> Option<f64>| {
        Arc::new(Float64Array::from(rows.iter().map(|r| if known(r) { f(&r.s) } else { None }).collect::<Vec<_>>()))
            as ArrayRef
    };
    let columns: Vec<ArrayRef> = vec![
        s(&|r| r.flow_key.clone()),
        s(&|_| "klaviyo".into()),
        s(&|r| r.flow_id.clone()),
        s(&|r| r.s.depth_method.to_string()),
        i(&|s| s.message_count),
        i(&|s| s.email_message_count),
        i(&|s| s.sms_message_count),
        i(&|s| s.split_count),
        i(&|s| s.exit_split_count),
        i(&|s| s.branching_depth),
        x(&|s| s.first_message_delay_hours),
        x(&|s| Some(s.longest_path_delay_hours)),
        x(&|s| s.smart_sending_share),
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|r| r.structure_updated_at).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        s(&|_| MODEL_VERSION.into()),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(kind: &str, links: Value, data: Value) -> Value {
        json!({"created": "2025-01-01T00:00:00+00:00", "definition": {"type": kind, "links": links, "data": data}})
    }

    fn delay(next: &str, h: f64) -> Value {
        def("time-delay", json!({"next": next}), json!({"unit": "hours", "value": h}))
    }

    fn send(kind: &str, next: Option<&str>, smart: bool) -> Value {
        def(kind, json!({"next": next}), json!({"message": {"smart_sending_enabled": smart}}))
    }

    fn split(t: Option<&str>, f: Option<&str>) -> Value {
        def("conditional-split", json!({"next_if_true": t, "next_if_false": f}), json!({}))
    }

    fn graph(items: Vec<(&str, Value)>) -> BTreeMap<String, Value> {
        items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// A linear flow with an exit split: no branching, depth 0; one split node, an exit.
    #[test]
    fn an_exit_split_is_a_split_but_not_a_branch() {
        let g = graph(vec![
            ("a", delay("b", 4.0)),
            ("b", send("send-email", Some("c"), true)),
            ("c", delay("d", 20.0)),
            ("d", split(None, Some("e"))),
            ("e", send("send-sms", None, false)),
        ]);
        let s = structure(&g);
        assert_eq!(s.depth_method, "graph");
        assert_eq!((s.message_count, s.email_message_count, s.sms_message_count), (2, 1, 1));
        assert_eq!((s.split_count, s.exit_split_count, s.branching_depth), (1, 1, 0));
        assert_eq!(s.first_message_delay_hours, Some(4.0));
        assert_eq!(s.longest_path_delay_hours, 24.0);
        assert_eq!(s.smart_sending_share, Some(0.5));
    }

    /// Two splits nested on one path, one split on the other: depth 2 (the deeper path),
    /// three split nodes; the longest delay is on the branch with a 72 h wait.
    ///
    /// ```text
    /// s1 ─true─▶ s2 ─true─▶ m1
    ///  │          └false─▶ d72 ─▶ m2
    ///  └false─▶ m3 ─▶ s3 ─true─▶ m4
    ///                  └false─▶ m5
    /// ```
    #[test]
    fn depth_is_the_most_branching_splits_on_one_path() {
        let g = graph(vec![
            ("s1", split(Some("s2"), Some("m3"))),
            ("s2", split(Some("m1"), Some("d72"))),
            ("m1", send("send-email", None, true)),
            ("d72", delay("m2", 72.0)),
            ("m2", send("send-email", None, true)),
            ("m3", send("send-sms", Some("s3"), true)),
            ("s3", split(Some("m4"), Some("m5"))),
            ("m4", send("send-email", None, true)),
            ("m5", send("send-email", None, true)),
        ]);
        let s = structure(&g);
        assert_eq!((s.split_count, s.exit_split_count, s.branching_depth), (3, 0, 2));
        assert_eq!(s.first_message_delay_hours, Some(0.0));
        assert_eq!(s.longest_path_delay_hours, 72.0);
        assert_eq!(s.message_count, 5);
    }

    /// Paths that meet again (a DAG) are counted once per path, and a stray cycle ends the walk.
    #[test]
    fn joined_paths_and_cycles_do_not_loop() {
        let g = graph(vec![
            ("s1", split(Some("d1"), Some("d2"))),
            ("d1", delay("m", 2.0)),
            ("d2", delay("m", 5.0)),
            ("m", send("send-email", Some("s2"), false)),
            ("s2", split(Some("x"), Some("y"))),
            ("x", send("send-email", None, false)),
            ("y", send("send-email", Some("s2"), false)),
        ]);
        let s = structure(&g);
        assert_eq!(s.branching_depth, 2);
        assert_eq!(s.first_message_delay_hours, Some(2.0));
        assert_eq!(s.longest_path_delay_hours, 5.0);
    }

    #[test]
    fn old_shapes_and_missing_actions_fall_back() {
        let old = graph(vec![
            ("a", json!({"action_type": "TIME_DELAY", "settings": {"delay_unit": "days", "delay_value": 2}})),
            ("b", json!({"action_type": "BOOLEAN_BRANCH", "settings": {}})),
            ("c", json!({"action_type": "SEND_EMAIL", "send_options": {"use_smart_sending": true}})),
        ]);
        let s = structure(&old);
        assert_eq!((s.depth_method, s.split_count, s.branching_depth), ("approx", 1, 1));
        assert_eq!((s.longest_path_delay_hours, s.first_message_delay_hours), (48.0, None));
        assert_eq!(s.smart_sending_share, Some(1.0));
        assert_eq!(structure(&BTreeMap::new()).depth_method, "unavailable");
    }
}
