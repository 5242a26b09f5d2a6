//! Records to Arrow, checked against the stream's raw contract.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder,
    ListBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use super::project::PathTree;
use crate::contract::{ColumnType, Contract, RAW_COLUMN};

/// Why one record could not be typed: names the record and the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("record {}: field {field}: {message}", record_id.as_deref().unwrap_or("<no id>"))]
pub struct RecordError {
    pub record_id: Option<String>,
    pub field: String,
    pub message: String,
}

/// One typed cell, held until every column of a record converted (a record is all or nothing).
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Str(String),
    I64(i64),
    F64(f64),
    Bool(bool),
    Date(i32),
    Micros(i64),
    Dec(i128),
    List(Vec<String>),
}

enum ColumnBuilder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Int32(Int32Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Date32(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Decimal(Decimal128Builder),
    List(ListBuilder<StringBuilder>),
}

impl ColumnBuilder {
    fn new(t: ColumnType) -> Self {
        match t {
            ColumnType::Utf8 => Self::Utf8(StringBuilder::new()),
            ColumnType::Int64 => Self::Int64(Int64Builder::new()),
            ColumnType::Int32 => Self::Int32(Int32Builder::new()),
            ColumnType::Float64 => Self::Float64(Float64Builder::new()),
            ColumnType::Boolean => Self::Boolean(BooleanBuilder::new()),
            ColumnType::Date32 => Self::Date32(Date32Builder::new()),
            ColumnType::Timestamp => Self::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            ColumnType::Decimal => {
                Self::Decimal(Decimal128Builder::new().with_precision_and_scale(18, 4).expect("18,4 is valid"))
            }
            ColumnType::ListUtf8 => Self::List(ListBuilder::new(StringBuilder::new())),
        }
    }

    fn append(&mut self, cell: Cell) {
        match (self, cell) {
            (Self::Utf8(b), Cell::Str(s)) => b.append_value(s),
            (Self::Utf8(b), _) => b.append_null(),
            (Self::Int64(b), Cell::I64(v)) => b.append_value(v),
            (Self::Int64(b), _) => b.append_null(),
            (Self::Int32(b), Cell::I64(v)) => b.append_value(v as i32),
            (Self::Int32(b), _) => b.append_null(),
            (Self::Float64(b), Cell::F64(v)) => b.append_value(v),
            (Self::Float64(b), _) => b.append_null(),
            (Self::Boolean(b), Cell::Bool(v)) => b.append_value(v),
            (Self::Boolean(b), _) => b.append_null(),
            (Self::Date32(b), Cell::Date(v)) => b.append_value(v),
            (Self::Date32(b), _) => b.append_null(),
            (Self::Timestamp(b), Cell::Micros(v)) => b.append_value(v),
            (Self::Timestamp(b), _) => b.append_null(),
            (Self::Decimal(b), Cell::Dec(v)) => b.append_value(v),
            (Self::Decimal(b), _) => b.append_null(),
            (Self::List(b), Cell::List(items)) => {
                for i in items {
                    b.values().append_value(i);
                }
                b.append(true);
            }
            (Self::List(b), _) => b.append(false),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Date32(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::List(b) => Arc::new(b.finish()),
        }
    }
}

/// Builds landed record batches for one stream.
pub struct BatchBuilder {
    contract: Contract,
    run_id: String,
    landed_at_micros: i64,
    /// Index of the column holding the record id, for error messages.
    id_column: Option<usize>,
    tree: PathTree,
    scratch: Vec<Option<Value>>,
    columns: Vec<ColumnBuilder>,
    raw: StringBuilder,
    run_ids: StringBuilder,
    landed: TimestampMicrosecondBuilder,
    rows: usize,
}

impl BatchBuilder {
    pub fn new(contract: Contract, run_id: &str, landed_at: DateTime<Utc>) -> Self {
        let columns = contract.columns.iter().map(|c| ColumnBuilder::new(c.column_type)).collect();
        let id_column = contract.primary_key.first().and_then(|k| contract.columns.iter().position(|c| &c.name == k));
        let tree =
            PathTree::new(contract.columns.iter().enumerate().filter_map(|(i, c)| c.path.as_deref().map(|p| (i, p))));
        Self {
            id_column,
            tree,
            scratch: Vec::new(),
            contract,
            run_id: run_id.to_string(),
            landed_at_micros: landed_at.timestamp_micros(),
            columns,
            raw: StringBuilder::new(),
            run_ids: StringBuilder::new(),
            landed: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            rows: 0,
        }
    }

    /// A record's id as the contract reads it (for naming a record that cannot be typed).
    pub fn record_id(&self, record: &Value) -> Option<String> {
        let path = self.contract.columns[self.id_column?].path.as_deref()?;
        match record.pointer(path)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// Rows buffered since the last [`BatchBuilder::finish`].
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Types one parsed record (read under `parent_id`, for child streams) and appends it; on
    /// error nothing is appended.
    pub fn push(&mut self, record: &Value, parent_id: Option<&str>) -> Result<(), RecordError> {
        let values: Vec<Option<&Value>> =
            self.contract.columns.iter().map(|c| c.path.as_deref().and_then(|p| record.pointer(p))).collect();
        self.append(&values, &record.to_string(), parent_id)
    }

    /// Types one record given as its JSON text (the landing hot path: only the contract's
    /// columns are parsed, and the text itself becomes `_raw`); on error nothing is appended.
    pub fn push_raw(&mut self, raw: &str, parent_id: Option<&str>) -> Result<(), RecordError> {
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        out.resize(self.contract.columns.len(), None);
        let result = match self.tree.read(raw, &mut out) {
            Ok(()) => {
                let values: Vec<Option<&Value>> = out.iter().map(Option::as_ref).collect();
                self.append(&values, raw, parent_id)
            }
            Err(e) => {
                Err(RecordError { record_id: None, field: RAW_COLUMN.to_string(), message: format!("not JSON: {e}") })
            }
        };
        self.scratch = out;
        result
    }

    fn append(&mut self, values: &[Option<&Value>], raw: &str, parent_id: Option<&str>) -> Result<(), RecordError> {
        let mut cells = Vec::with_capacity(self.contract.columns.len());
        let parent = parent_id.map(|p| Value::String(p.to_string())).unwrap_or(Value::Null);
        let record_id = || {
            self.id_column.and_then(|i| values[i]).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        for (i, col) in self.contract.columns.iter().enumerate() {
            let value = if col.parent_id { &parent } else { values[i].unwrap_or(&Value::Null) };
            let fail = |message: String| RecordError { record_id: record_id(), field: col.name.clone(), message };
            let latest = self.landed_at_micros.saturating_add(MAX_AHEAD_MICROS);
            let cell = convert(value, col.column_type, latest).map_err(fail)?;
            if cell == Cell::Null && !col.nullable {
                let at = col.path.as_deref().unwrap_or("the parent id");
                return Err(fail(format!("required field is missing (expected at {at})")));
            }
            if let (Some(allowed), Cell::Str(s)) = (&col.accepted_values, &cell)
                && !allowed.iter().any(|a| a == s)
            {
                return Err(fail(format!("value {s:?} is not one of {}", allowed.join(", "))));
            }
            cells.push(cell);
        }
        for (builder, cell) in self.columns.iter_mut().zip(cells) {
            builder.append(cell);
        }
        self.raw.append_value(raw);
        self.run_ids.append_value(&self.run_id);
        self.landed.append_value(self.landed_at_micros);
        self.rows += 1;
        Ok(())
    }

    /// Takes the buffered rows as one batch in the landed schema.
    pub fn finish(&mut self) -> RecordBatch {
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(self.run_ids.finish()), Arc::new(self.landed.finish())];
        arrays.extend(self.columns.iter_mut().map(ColumnBuilder::finish));
        arrays.push(Arc::new(self.raw.finish()));
        self.rows = 0;
        RecordBatch::try_new(self.contract.landed_schema(), arrays).expect("builders follow the landed schema")
    }
}

/// How far after landing a timestamp may lie (scheduled sends are days or weeks ahead). Later
/// ones (sentinels like 9999-12-31 included) or any before 1970 are vendor bugs: the
/// transform's calendars run to the latest date they see, so one such value would have every
/// mart span decades (DECISIONS D42).
const MAX_AHEAD_MICROS: i64 = 366 * 86_400 * 1_000_000;

/// Types one value; timestamps must lie in `0..=latest` (microseconds since 1970).
fn convert(v: &Value, t: ColumnType, latest: i64) -> Result<Cell, String> {
    if v.is_null() {
        return Ok(Cell::Null);
    }
    let wrong = |what: &str| format!("expected {what}, got {}", describe(v));
    Ok(match t {
        ColumnType::Utf8 => match v {
            Value::String(s) => Cell::Str(s.clone()),
            Value::Number(n) => Cell::Str(n.to_string()),
            Value::Bool(b) => Cell::Str(b.to_string()),
            other => Cell::Str(other.to_string()),
        },
        ColumnType::Int64 | ColumnType::Int32 => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| wrong("an integer"))?;
            if t == ColumnType::Int32 && i32::try_from(n).is_err() {
                return Err(format!("integer {n} does not fit 32 bits"));
            }
            Cell::I64(n)
        }
        ColumnType::Float64 => match v {
            Value::Number(n) => Cell::F64(n.as_f64().ok_or_else(|| wrong("a number"))?),
            Value::String(s) => Cell::F64(s.trim().parse::<f64>().map_err(|_| wrong("a number"))?),
            _ => return Err(wrong("a number")),
        },
        ColumnType::Boolean => match v {
            Value::Bool(b) => Cell::Bool(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Cell::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Cell::Bool(false),
            _ => return Err(wrong("a boolean")),
        },
        ColumnType::Date32 => {
            let s = v.as_str().ok_or_else(|| wrong("a date string"))?;
            let d = NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                .map_err(|_| wrong("a YYYY-MM-DD date"))?;
            Cell::Date((d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32)
        }
        ColumnType::Timestamp => {
            let t = parse_timestamp(v).ok_or_else(|| wrong("an ISO-8601 timestamp or epoch seconds"))?;
            if !(0..=latest).contains(&t) {
                let until = DateTime::from_timestamp_micros(latest).map(|d| d.date_naive().to_string());
                return Err(format!(
                    "{} is outside 1970-01-01 ..= {} (a year after landing; DECISIONS D42)",
                    describe(v),
                    until.unwrap_or_default()
                ));
            }
            Cell::Micros(t)
        }
        ColumnType::Decimal => Cell::Dec(parse_decimal(v).ok_or_else(|| wrong("a decimal amount"))?),
        ColumnType::ListUtf8 => match v {
            Value::Array(items) => Cell::List(
                items.iter().map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string())).collect(),
            ),
            _ => return Err(wrong("a list")),
        },
    })
}

fn describe(v: &Value) -> String {
    let s = v.to_string();
    // Values can be huge or personal: show the type and a short prefix only.
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if s.chars().count() > 24 {
        format!("{kind} {}…", s.chars().take(24).collect::<String>())
    } else {
        format!("{kind} {s}")
    }
}

/// ISO-8601 with offset (converted to UTC), naive ISO (taken as UTC, as Postscript sends), or
/// integer epoch seconds (Klaviyo's `timestamp`).
pub fn parse_timestamp(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().and_then(|s| s.checked_mul(1_000_000)),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.with_timezone(&Utc).timestamp_micros());
            }
            for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
                if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
                    return Some(t.and_utc().timestamp_micros());
                }
            }
            None
        }
        _ => None,
    }
}

/// Parses a decimal string or JSON number into `Decimal128(18,4)` units without going
/// through floating point (money must be exact).
pub fn parse_decimal(v: &Value) -> Option<i128> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if text.contains(['e', 'E']) {
        // JSON numbers may arrive in exponent form; they were floats at the source already.
        let f = text.parse::<f64>().ok().filter(|f| f.is_finite())?;
        return parse_decimal(&Value::String(format!("{f:.6}")));
    }
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let mut frac4: String = frac.chars().take(4).collect();
    while frac4.len() < 4 {
        frac4.push('0');
    }
    let whole: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    // Round half away from zero on the fifth decimal.
    let round_up = frac.chars().nth(4).is_some_and(|c| c >= '5');
    let mut units = whole.checked_mul(10_000)?.checked_add(frac4.parse::<i128>().ok()?)?;
    if round_up {
        units += 1;
    }
    if units >= 10i128.pow(18) {
        return None;
    }
    Some(if neg { -units } else { units })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Decimal128Type, TimestampMicrosecondType};
    use serde_json::json;

    use super::*;

    fn builder() -> BatchBuilder {
        let c = crate::contract::raw("klaviyo", "events").unwrap();
        BatchBuilder::new(c, "run-1", Utc::now())
    }

    fn event(id: &str, datetime: Value, value: Value) -> Value {
        json!({"type": "event", "id": id,
            "attributes": {"datetime": datetime, "event_properties": {"$value": value, "Campaign Name": "Hi"}},
            "relationships": {"metric": {"data": {"type": "metric", "id": "M1"}}, "profile": {"data": {"type": "profile", "id": "P1"}}}})
    }

    #[test]
    fn types_columns_and_keeps_the_raw_record() {
        let mut b = builder();
        b.push(&event("e1", json!("2026-01-02T03:04:05+02:00"), json!("12.50")), None).unwrap();
        b.push(&event("e2", json!("2026-01-02T01:00:00+00:00"), json!(7)), None).unwrap();
        let batch = b.finish();
        assert_eq!(batch.num_rows(), 2);
        let ts = batch.column_by_name("datetime").unwrap().as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(0), DateTime::parse_from_rfc3339("2026-01-02T01:04:05Z").unwrap().timestamp_micros());
        let v = batch.column_by_name("value").unwrap().as_primitive::<Decimal128Type>();
        assert_eq!((v.value(0), v.value(1)), (125_000, 70_000));
        let raw = batch.column_by_name("_raw").unwrap().as_string::<i32>();
        assert!(raw.value(0).contains("Campaign Name"));
        assert!(batch.column_by_name("flow_id").unwrap().is_null(0));
    }

    #[test]
    fn bad_field_names_record_and_field_and_appends_nothing() {
        let mut b = builder();
        let err = b.push(&event("e9", json!("not a time"), json!(1)), None).unwrap_err();
        assert_eq!(err.record_id.as_deref(), Some("e9"));
        assert_eq!(err.field, "datetime");
        assert!(err.to_string().contains("record e9: field datetime"), "{err}");
        assert_eq!(b.len(), 0);
        let mut missing = event("e10", json!("2026-01-01T00:00:00Z"), json!(1));
        missing["relationships"]["metric"] = json!(null);
        let err = b.push(&missing, None).unwrap_err();
        assert_eq!(err.field, "metric_id");
        assert!(err.message.contains("required"));
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal(&json!("19.99")), Some(199_900));
        assert_eq!(parse_decimal(&json!("-0.5")), Some(-5_000));
        assert_eq!(parse_decimal(&json!(3)), Some(30_000));
        assert_eq!(parse_decimal(&json!("1.00005")), Some(10_001));
        assert_eq!(parse_decimal(&json!("abc")), None);
        assert_eq!(parse_decimal(&json!("")), None);
        assert_eq!(parse_decimal(&json!(1.5e3)), Some(15_000_000));
    }

    #[test]
    fn timestamps_accept_offsets_naive_and_epoch() {
        assert_eq!(parse_timestamp(&json!(1)), Some(1_000_000));
        assert_eq!(parse_timestamp(&json!("1970-01-01T00:00:01")), Some(1_000_000));
        assert_eq!(parse_timestamp(&json!("1970-01-01T01:00:01+01:00")), Some(1_000_000));
        assert_eq!(parse_timestamp(&json!(true)), None);
    }

    #[test]
    fn timestamps_before_1970_or_a_year_after_landing_are_refused() {
        let landed = DateTime::parse_from_rfc3339("2026-12-01T06:00:00Z").unwrap().to_utc();
        let mut b = BatchBuilder::new(crate::contract::raw("klaviyo", "events").unwrap(), "run-1", landed);
        b.push(&event("e1", json!("2027-12-01T06:00:00Z"), json!(1)), None).unwrap();
        b.push(&event("e2", json!(0), json!(1)), None).unwrap();
        let outside = [
            ("e3", json!("1969-12-31T23:59:59Z")),
            ("e4", json!((landed.timestamp() + 367 * 86_400))),
            ("e5", json!(-1)),
            ("e6", json!("9999-12-31T23:59:59Z")),
        ];
        for (id, t) in outside {
            let err = b.push(&event(id, t, json!(1)), None).unwrap_err();
            assert_eq!((err.record_id.as_deref(), err.field.as_str()), (Some(id), "datetime"));
            assert!(err.message.contains("outside 1970-01-01"), "{err}");
        }
        assert_eq!(b.len(), 2);
    }
}
