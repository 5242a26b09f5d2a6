//! `json_get*` and `json_array_items`: reading JSON text in SQL (see the module table in
//! [`super`]).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Builder, Int64Builder, ListBuilder, StringBuilder, StructBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use serde_json::Value;

use super::{arrays, output};
use crate::landing::arrow::{parse_decimal, parse_timestamp};
use crate::landing::project::PathTree;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Text,
    Int,
    Decimal,
    Timestamp,
    Items,
}

/// One `json_*(json, pointer)` function.
#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonFn {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

impl JsonFn {
    fn new(name: &'static str, kind: Kind) -> Self {
        Self { name, kind, signature: Signature::any(2, Volatility::Immutable) }
    }
}

/// The element type of `json_array_items`: 0-based position and the element's JSON text.
pub fn item_fields() -> Fields {
    Fields::from(vec![Field::new("position", DataType::Int64, false), Field::new("value", DataType::Utf8, false)])
}

fn items_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Struct(item_fields()), true)))
}

/// Every JSON function.
pub fn all() -> Vec<ScalarUDF> {
    [
        ("json_get", Kind::Text),
        ("json_get_int", Kind::Int),
        ("json_get_decimal", Kind::Decimal),
        ("json_get_timestamp", Kind::Timestamp),
        ("json_array_items", Kind::Items),
    ]
    .into_iter()
    .map(|(name, kind)| ScalarUDF::new_from_impl(JsonFn::new(name, kind)))
    .collect()
}

/// A value shown in an error: its JSON type and a short prefix (values can be personal).
fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 24 { format!("{}…", s.chars().take(24).collect::<String>()) } else { s }
}

/// The elements of an array, or of a GraphQL connection (`nodes`, or `edges[].node`).
fn elements(v: &Value) -> Option<Vec<&Value>> {
    match v {
        Value::Array(items) => Some(items.iter().collect()),
        Value::Object(map) => {
            if let Some(Value::Array(nodes)) = map.get("nodes") {
                Some(nodes.iter().collect())
            } else if let Some(Value::Array(edges)) = map.get("edges") {
                Some(edges.iter().filter_map(|e| e.get("node")).collect())
            } else {
                None
            }
        }
        _ => None,
    }
}

enum Out {
    Text(StringBuilder),
    Int(Int64Builder),
    Decimal(Decimal128Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Items(ListBuilder<StructBuilder>),
}

impl Out {
    fn new(kind: Kind) -> Result<Self> {
        Ok(match kind {
            Kind::Text => Out::Text(StringBuilder::new()),
            Kind::Int => Out::Int(Int64Builder::new()),
            Kind::Decimal => Out::Decimal(Decimal128Builder::new().with_precision_and_scale(18, 4)?),
            Kind::Timestamp => Out::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            Kind::Items => {
                let fields = item_fields();
                let values = StructBuilder::from_fields(fields.clone(), 0);
                let item = Field::new("item", DataType::Struct(fields), true);
                Out::Items(ListBuilder::new(values).with_field(Arc::new(item)))
            }
        })
    }

    fn null(&mut self) {
        match self {
            Out::Text(b) => b.append_null(),
            Out::Int(b) => b.append_null(),
            Out::Decimal(b) => b.append_null(),
            Out::Timestamp(b) => b.append_null(),
            Out::Items(b) => b.append(false),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Out::Text(b) => Arc::new(b.finish()),
            Out::Int(b) => Arc::new(b.finish()),
            Out::Decimal(b) => Arc::new(b.finish()),
            Out::Timestamp(b) => Arc::new(b.finish()),
            Out::Items(b) => Arc::new(b.finish()),
        }
    }

    /// Appends the value found at the pointer (`None` when absent).
    fn push(&mut self, name: &str, pointer: &str, found: Option<&Value>) -> Result<()> {
        let Some(v) = found.filter(|v| !v.is_null()) else {
            // An absent array is an empty one: nothing to unnest.
            if let Out::Items(b) = self {
                b.append(true);
            } else {
                self.null();
            }
            return Ok(());
        };
        let wrong = |what: &str| exec_err!("{name}: the value at {pointer} is not {what}: {}", describe(v));
        match self {
            Out::Text(b) => match v {
                Value::String(s) => b.append_value(s),
                other => b.append_value(other.to_string()),
            },
            Out::Int(b) => {
                let n = match v {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                match n {
                    Some(n) => b.append_value(n),
                    None => return wrong("an integer"),
                }
            }
            Out::Decimal(b) => match parse_decimal(v) {
                Some(d) => b.append_value(d),
                None => return wrong("a decimal amount"),
            },
            Out::Timestamp(b) => match parse_timestamp(v) {
                Some(t) => b.append_value(t),
                None => return wrong("a timestamp"),
            },
            Out::Items(b) => {
                let Some(items) = elements(v) else { return wrong("an array or a connection") };
                for (i, item) in items.into_iter().enumerate() {
                    let s = b.values();
                    s.field_builder::<Int64Builder>(0).expect("position is Int64").append_value(i as i64);
                    s.field_builder::<StringBuilder>(1).expect("value is Utf8").append_value(item.to_string());
                    s.append(true);
                }
                b.append(true);
            }
        }
        Ok(())
    }
}

impl ScalarUDFImpl for JsonFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        for t in arg_types {
            if !matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null) {
                return exec_err!("{}(json, pointer) takes two strings, got {t}", self.name);
            }
        }
        Ok(match self.kind {
            Kind::Text => DataType::Utf8,
            Kind::Int => DataType::Int64,
            Kind::Decimal => DataType::Decimal128(18, 4),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Items => items_type(),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (input, scalar) = arrays(&args.args, args.number_rows)?;
        let [json, pointer] = input.as_slice() else {
            return exec_err!("{}(json, pointer) takes two arguments", self.name);
        };
        let json = arrow::compute::cast(json, &DataType::Utf8)?;
        let pointer = arrow::compute::cast(pointer, &DataType::Utf8)?;
        let (json, pointer) = (json.as_string::<i32>(), pointer.as_string::<i32>());
        let mut out = Out::new(self.kind)?;
        // The pointer is nearly always one literal: its one-path tree reads each document in one
        // pass that materialises only the value pointed at (a whole `Value` per row cost most of
        // the time of the staging models that read several properties).
        let mut tree: Option<(String, PathTree)> = None;
        let mut slot = [None];
        for row in 0..json.len() {
            if json.is_null(row) || pointer.is_null(row) {
                out.null();
                continue;
            }
            let p = pointer.value(row);
            if !p.is_empty() && !p.starts_with('/') {
                return exec_err!("{}: {p:?} is not a JSON pointer", self.name);
            }
            if p.is_empty() {
                let value: Value = match serde_json::from_str(json.value(row)) {
                    Ok(v) => v,
                    Err(e) => return exec_err!("{}: not JSON: {e}", self.name),
                };
                out.push(self.name, p, Some(&value))?;
                continue;
            }
            if tree.as_ref().is_none_or(|(q, _)| q != p) {
                tree = Some((p.to_string(), PathTree::new([(0, p)])));
            }
            let (_, paths) = tree.as_ref().expect("set above");
            slot[0] = None;
            if let Err(e) = paths.read(json.value(row), &mut slot) {
                return exec_err!("{}: not JSON: {e}", self.name);
            }
            out.push(self.name, p, slot[0].as_ref())?;
        }
        output(out.finish(), scalar)
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Decimal128Array, Int64Array, RecordBatch, StringArray};
    use datafusion::prelude::SessionContext;

    use super::*;

    async fn query(sql: &str) -> Result<Vec<RecordBatch>> {
        let ctx = SessionContext::new();
        crate::transform::udf::register(&ctx);
        let doc = r#"{"id":"gid://shopify/Order/1","n":"42","m":{"shopMoney":{"amount":"12.345","currencyCode":"USD"}},
            "t":"2026-03-01T10:00:00Z","lines":{"pageInfo":{"hasNextPage":false},"nodes":[{"id":"a","q":1},{"id":"b","q":2}]},
            "edged":{"edges":[{"node":{"id":"x"}}]},"plain":[1,"two",null],"nothing":null,"bad":"abc"}"#;
        let batch = RecordBatch::try_from_iter(vec![
            ("doc", Arc::new(StringArray::from(vec![Some(doc), None])) as ArrayRef),
            ("k", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
        ])?;
        ctx.register_batch("t", batch)?;
        ctx.sql(sql).await?.collect().await
    }

    #[tokio::test]
    async fn reads_scalars_at_pointers() {
        let b = query(
            "select json_get(doc, '/id'), json_get_int(doc, '/n'), json_get_decimal(doc, '/m/shopMoney/amount'), \
             json_get_timestamp(doc, '/t'), json_get(doc, '/missing'), json_get(doc, '/m/shopMoney'), \
             json_get(doc, '/nothing') from t order by k",
        )
        .await
        .unwrap();
        let b = &b[0];
        let s = b.column(0).as_string::<i32>();
        assert_eq!((s.value(0), s.is_null(1)), ("gid://shopify/Order/1", true));
        assert_eq!(b.column(1).as_any().downcast_ref::<Int64Array>().unwrap().value(0), 42);
        let d = b.column(2).as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!((d.value(0), d.precision(), d.scale()), (123_450, 18, 4));
        assert_eq!(
            b.column(3).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            "timestamps come back in the contract type"
        );
        assert!(b.column(4).is_null(0), "an absent pointer is NULL");
        assert_eq!(b.column(5).as_string::<i32>().value(0), r#"{"amount":"12.345","currencyCode":"USD"}"#);
        assert!(b.column(6).is_null(0), "JSON null is NULL");
    }

    #[tokio::test]
    async fn pointers_index_arrays_and_unescape_keys_as_rfc_6901_says() {
        let doc = r#"'{"a":[{"b":1},{"b":"x","c":[true]}],"c/d~e":7}'"#;
        let b = query(&format!(
            "select json_get({doc}, '/a/1/b'), json_get({doc}, '/a/1/c/0'), json_get({doc}, '/c~1d~0e'), \
             json_get({doc}, '/a/2/b'), json_get({doc}, '')"
        ))
        .await
        .unwrap();
        let text = |i: usize| b[0].column(i).as_string::<i32>().iter().next().flatten().map(str::to_string);
        assert_eq!(text(0).as_deref(), Some("x"));
        assert_eq!(text(1).as_deref(), Some("true"));
        assert_eq!(text(2).as_deref(), Some("7"));
        assert_eq!(text(3), None, "past the end of an array is NULL");
        assert_eq!(text(4).as_deref(), Some(r#"{"a":[{"b":1},{"b":"x","c":[true]}],"c/d~e":7}"#));
    }

    #[tokio::test]
    async fn unnests_arrays_and_connections_with_positions() {
        let b = query(
            "select it['position'] as pos, json_get(it['value'], '/id') as id from \
             (select unnest(json_array_items(doc, '/lines')) as it from t) order by pos",
        )
        .await
        .unwrap();
        let rows: Vec<(i64, String)> = b
            .iter()
            .flat_map(|b| {
                let p = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().clone();
                let s = b.column(1).as_string::<i32>().clone();
                (0..b.num_rows()).map(move |i| (p.value(i), s.value(i).to_string()))
            })
            .collect();
        assert_eq!(rows, vec![(0, "a".to_string()), (1, "b".to_string())]);
        for (pointer, n) in [("/edged", 1), ("/plain", 3), ("/nothing", 0), ("/missing", 0)] {
            let b = query(&format!("select count(*) from (select unnest(json_array_items(doc, '{pointer}')) from t)"))
                .await
                .unwrap();
            assert_eq!(b[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), n, "{pointer}");
        }
    }

    #[tokio::test]
    async fn wrong_types_fail_naming_the_pointer() {
        let err = query("select json_get_decimal(doc, '/bad') from t").await.unwrap_err().to_string();
        assert!(err.contains("json_get_decimal") && err.contains("/bad"), "{err}");
        let err = query("select json_array_items(doc, '/id') from t").await.unwrap_err().to_string();
        assert!(err.contains("/id"), "{err}");
        let err = query("select json_get('{not json', '/a')").await.unwrap_err().to_string();
        assert!(err.contains("not JSON"), "{err}");
        // Constant arguments fold to a constant.
        let b = query("select json_get('{\"a\":[1]}', '/a/0')").await.unwrap();
        assert_eq!(b[0].column(0).as_string::<i32>().value(0), "1");
    }
}
