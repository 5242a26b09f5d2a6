//! Klaviyo's `filter` query language: `op(field,value)`, `and(...)`, top-level comma lists.
//!
//! Parsing keeps quoted and bare values apart because Klaviyo does: datetimes must be bare
//! (a quoted datetime is an "invalid filter"), strings must be quoted. Each endpoint then
//! checks the conditions against the (field, operator) pairs its spec allows.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// A filter operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equals,
    Any,
    Contains,
    GreaterThan,
    GreaterOrEqual,
    LessThan,
    LessOrEqual,
    Has,
    Other,
}

impl Op {
    fn parse(name: &str) -> Op {
        match name {
            "equals" => Op::Equals,
            "any" => Op::Any,
            "contains" => Op::Contains,
            "greater-than" => Op::GreaterThan,
            "greater-or-equal" => Op::GreaterOrEqual,
            "less-than" => Op::LessThan,
            "less-or-equal" => Op::LessOrEqual,
            "has" => Op::Has,
            _ => Op::Other,
        }
    }
}

/// A filter value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Single- or double-quoted.
    Quoted(String),
    /// Unquoted: datetimes, numbers, booleans, `null`.
    Bare(String),
    List(Vec<Value>),
}

/// One `op(field,value)` condition; all conditions of a filter are ANDed.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub op: Op,
    pub op_name: String,
    pub field: String,
    pub value: Value,
}

/// Parses a whole `filter` parameter into its ANDed conditions.
pub fn parse(text: &str) -> Result<Vec<Condition>, String> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let mut out = Vec::new();
    loop {
        p.expr(&mut out)?;
        p.ws();
        if p.i == p.s.len() {
            return Ok(out);
        }
        p.expect(b',')?;
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at position {}", c as char, self.i))
        }
    }

    fn ident(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'$') {
                self.i += 1;
            } else {
                break;
            }
        }
        if start == self.i {
            return Err(format!("expected a name at position {start}"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn expr(&mut self, out: &mut Vec<Condition>) -> Result<(), String> {
        let name = self.ident()?;
        self.expect(b'(')?;
        if name == "and" {
            loop {
                self.expr(out)?;
                self.ws();
                match self.peek() {
                    Some(b',') => self.i += 1,
                    Some(b')') => {
                        self.i += 1;
                        return Ok(());
                    }
                    _ => return Err(format!("expected ',' or ')' at position {}", self.i)),
                }
            }
        }
        if matches!(name.as_str(), "or" | "not") {
            return Err(format!("'{name}' is not supported"));
        }
        let field = self.ident()?;
        let value = if Op::parse(&name) == Op::Has {
            Value::Bare(String::new())
        } else {
            self.expect(b',')?;
            self.value()?
        };
        self.expect(b')')?;
        out.push(Condition { op: Op::parse(&name), op_name: name, field, value });
        Ok(())
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => {
                self.i += 1;
                let start = self.i;
                while self.peek().is_some_and(|c| c != q) {
                    self.i += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.expect(q)?;
                Ok(Value::Quoted(text))
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Value::List(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::List(items));
                        }
                        _ => return Err(format!("expected ',' or ']' at position {}", self.i)),
                    }
                }
            }
            _ => {
                let start = self.i;
                while self.peek().is_some_and(|c| !matches!(c, b',' | b')' | b']')) {
                    self.i += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).trim().to_string();
                if text.is_empty() {
                    return Err(format!("expected a value at position {start}"));
                }
                Ok(Value::Bare(text))
            }
        }
    }
}

/// A bare ISO-8601 datetime. A naive value is taken as UTC (Klaviyo's reading); a space where
/// the offset's `+` belongs is what an unencoded `+` becomes in a query string, so it is
/// accepted rather than punishing a client for the server's own decoding.
pub fn datetime(v: &Value) -> Result<DateTime<Utc>, String> {
    let text = match v {
        Value::Bare(t) => t.as_str(),
        Value::Quoted(t) => return Err(format!("datetime values must not be quoted: '{t}'")),
        Value::List(_) => return Err("expected a datetime, got a list".into()),
    };
    let fixed = match text.rfind(' ') {
        Some(pos) if pos > 10 => format!("{}+{}", &text[..pos], &text[pos + 1..]),
        _ => text.to_string(),
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(&fixed) {
        return Ok(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(&fixed, fmt) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(&fixed, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!("'{text}' is not a valid datetime"))
}

/// A quoted string value.
pub fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::Quoted(t) => Ok(t.clone()),
        _ => Err("expected a quoted string".into()),
    }
}

/// A bare `true`/`false`.
pub fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bare(t) if t == "true" => Ok(true),
        Value::Bare(t) if t == "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// A half-open or closed time window assembled from comparison conditions on one field.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    /// Lower bound and whether it is inclusive.
    pub lower: Option<(DateTime<Utc>, bool)>,
    pub upper: Option<(DateTime<Utc>, bool)>,
}

impl Window {
    /// Narrows the window by one comparison; repeated bounds intersect.
    pub fn add(&mut self, op: Op, at: DateTime<Utc>) {
        match op {
            Op::GreaterThan | Op::GreaterOrEqual => {
                let b = (at, op == Op::GreaterOrEqual);
                self.lower = Some(match self.lower {
                    Some(cur) if (cur.0, !cur.1) > (b.0, !b.1) => cur,
                    _ => b,
                });
            }
            Op::LessThan | Op::LessOrEqual => {
                let b = (at, op == Op::LessOrEqual);
                self.upper = Some(match self.upper {
                    Some(cur) if (cur.0, cur.1) < (b.0, b.1) => cur,
                    _ => b,
                });
            }
            _ => {}
        }
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let above = match self.lower {
            Some((b, true)) => t >= b,
            Some((b, false)) => t > b,
            None => true,
        };
        let below = match self.upper {
            Some((b, true)) => t <= b,
            Some((b, false)) => t < b,
            None => true,
        };
        above && below
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_and_comma_lists() {
        let a =
            parse("and(greater-or-equal(datetime,2024-01-01T00:00:00+00:00),equals(metric_id,\"AbC123\"))").unwrap();
        let b = parse("greater-or-equal(datetime,2024-01-01T00:00:00+00:00), equals(metric_id,'AbC123')").unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].op, Op::GreaterOrEqual);
        assert_eq!(a[1].value, Value::Quoted("AbC123".into()));
        assert_eq!(
            parse("any(id,[\"a\",\"b\"])").unwrap()[0].value,
            Value::List(vec![Value::Quoted("a".into()), Value::Quoted("b".into())])
        );
        assert!(parse("equals(metric_id,").is_err());
        assert!(parse("or(equals(a,'x'),equals(a,'y'))").is_err());
    }

    #[test]
    fn datetimes_must_be_bare() {
        let c = parse("greater-than(updated,\"2024-01-01T00:00:00Z\")").unwrap();
        assert!(datetime(&c[0].value).is_err());
        let c = parse("greater-than(updated,2024-01-01T05:00:00 00:00)").unwrap();
        assert_eq!(datetime(&c[0].value).unwrap().to_rfc3339(), "2024-01-01T05:00:00+00:00");
        let c = parse("greater-than(updated,2024-01-01T05:00:00-02:00)").unwrap();
        assert_eq!(datetime(&c[0].value).unwrap().to_rfc3339(), "2024-01-01T07:00:00+00:00");
    }

    #[test]
    fn window_intersects_bounds() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let mut w = Window::default();
        w.add(Op::GreaterOrEqual, t("2024-01-01T00:00:00Z"));
        w.add(Op::GreaterThan, t("2024-01-01T00:00:00Z"));
        w.add(Op::LessThan, t("2024-01-02T00:00:00Z"));
        assert!(!w.contains(t("2024-01-01T00:00:00Z")));
        assert!(w.contains(t("2024-01-01T00:00:01Z")));
        assert!(!w.contains(t("2024-01-02T00:00:00Z")));
    }
}
