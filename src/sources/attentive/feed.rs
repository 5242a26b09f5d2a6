//! One feed CSV row into the JSON record landing types: the row keyed by (normalised) header,
//! plus which delivery it came from and, for General Events, the normalised event type.
//!
//! The exact column lists are not public (apis.md 3.3), so nothing here depends on a column's
//! position: headers are matched by name, unknown columns ride along in `_raw`, and missing
//! optional columns are NULL.

use chrono::NaiveDate;
use serde_json::{Map, Value};

/// One feed: its stream and the header columns a file must have to be read at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feed {
    pub stream: &'static str,
    pub required_columns: &'static [&'static str],
    /// General Events carry an event `type` to normalise.
    pub has_event_type: bool,
}

pub const GENERAL_EVENTS: Feed =
    Feed { stream: "general_events", required_columns: &["timestamp", "type"], has_event_type: true };
pub const CONVERSIONS: Feed =
    Feed { stream: "conversions", required_columns: &["timestamp", "order_id"], has_event_type: false };

/// Event types the General Events feed documents (apis.md 3.3), current names.
const KNOWN_TYPES: &[&str] = &[
    "SUBSCRIPTION_OPT_IN_COMPLETED",
    "SUBSCRIPTION_OPTED_OUT",
    "IMPRESSION",
    "CLICK",
    "EMAIL_SAVE",
    "MESSAGE_RECEIPT",
    "MESSAGE_LINK_CLICK",
    "CUSTOM_ATTRIBUTES",
];

/// The current name of an event type, and whether it is a known one. Older files say `JOIN`
/// and `OPT_OUT`; unknown types are kept as given (trimmed, upper case) for the caller to count.
pub fn normalize_event_type(raw: &str) -> (String, bool) {
    let t = raw.trim().to_ascii_uppercase();
    match t.as_str() {
        "JOIN" => ("SUBSCRIPTION_OPT_IN_COMPLETED".into(), true),
        "OPT_OUT" => ("SUBSCRIPTION_OPTED_OUT".into(), true),
        known if KNOWN_TYPES.contains(&known) => (t, true),
        _ => (t, false),
    }
}

/// A type as it may appear in a log line: vendor enums only, never free text (a shifted
/// column could put a phone number here).
pub fn loggable_type(t: &str) -> &str {
    let enum_like = !t.is_empty()
        && t.len() <= 64
        && t.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if enum_like { t } else { "<not an enum name>" }
}

/// A header cell as a record key: trimmed, lower case, spaces and dashes as `_`.
pub fn header_key(h: &str) -> String {
    h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase().replace([' ', '-'], "_")
}

/// Which delivered file a row came from.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    pub file: &'a str,
    pub sha256: &'a str,
    pub day: NaiveDate,
}

/// The record landed for one data row (`row_number` 1 is the first line after the header).
/// Blank cells are NULL: CSV cannot tell an empty string from a missing value. Also returns
/// the normalised event type and whether it is a known one (General Events rows with a type).
pub fn record(
    feed: &Feed,
    delivery: &Delivery<'_>,
    row_number: u64,
    headers: &[String],
    cells: &csv::StringRecord,
) -> (Value, Option<(String, bool)>) {
    let mut row = Map::new();
    for (key, cell) in headers.iter().zip(cells.iter()) {
        let v = if cell.trim().is_empty() { Value::Null } else { Value::String(cell.to_string()) };
        row.insert(key.clone(), v);
    }
    let mut out = Map::new();
    out.insert("source_file".into(), delivery.file.into());
    out.insert("file_sha256".into(), delivery.sha256.into());
    out.insert("file_date".into(), delivery.day.to_string().into());
    out.insert("row_number".into(), row_number.into());
    let mut normalized = None;
    if feed.has_event_type {
        normalized = row.get("type").and_then(Value::as_str).map(normalize_event_type);
        let value = normalized.as_ref().map_or(Value::Null, |n| Value::String(n.0.clone()));
        out.insert("event_type_normalized".into(), value);
    }
    out.insert("row".into(), Value::Object(row));
    (Value::Object(out), normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_map_to_current_ones_and_unknown_types_are_kept() {
        assert_eq!(normalize_event_type("JOIN"), ("SUBSCRIPTION_OPT_IN_COMPLETED".into(), true));
        assert_eq!(normalize_event_type(" opt_out "), ("SUBSCRIPTION_OPTED_OUT".into(), true));
        assert_eq!(normalize_event_type("MESSAGE_RECEIPT"), ("MESSAGE_RECEIPT".into(), true));
        assert_eq!(normalize_event_type("PUSH_OPEN"), ("PUSH_OPEN".into(), false));
        assert_eq!(loggable_type("PUSH_OPEN"), "PUSH_OPEN");
        assert_eq!(loggable_type("+15551234567"), "<not an enum name>");
    }

    #[test]
    fn a_row_becomes_a_record_with_blank_cells_null() {
        let headers: Vec<String> = ["Timestamp", "Type", "Join Source"].iter().map(|h| header_key(h)).collect();
        assert_eq!(headers, ["timestamp", "type", "join_source"]);
        let cells = csv::StringRecord::from(vec!["2026-10-01T10:00:00Z", "JOIN", " "]);
        let d = Delivery { file: "f.csv", sha256: "ab", day: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap() };
        let (v, known) = record(&GENERAL_EVENTS, &d, 3, &headers, &cells);
        assert_eq!(known, Some(("SUBSCRIPTION_OPT_IN_COMPLETED".to_string(), true)));
        assert_eq!(v["row"]["join_source"], Value::Null);
        assert_eq!(v["row"]["type"], "JOIN");
        assert_eq!(v["event_type_normalized"], "SUBSCRIPTION_OPT_IN_COMPLETED");
        assert_eq!(v["row_number"], 3);
        assert_eq!(v["file_date"], "2026-10-01");
    }
}
