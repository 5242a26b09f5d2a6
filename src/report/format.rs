//! Numbers and text for people: thousands separators, currency, percentages, HTML escaping.

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A currency amount rounded to whole units: `$12,345`, `-€80`, `CHF 1,200`.
pub fn money(v: f64, currency: &str) -> String {
    let whole = thousands(v.abs().round() as i64);
    let sign = if v.round() < 0.0 { "-" } else { "" };
    match symbol(currency) {
        Some(s) => format!("{sign}{s}{whole}"),
        None => format!("{sign}{} {whole}", esc(currency)),
    }
}

/// A short amount for axis ticks: `$1.2k`, `$3.4M`.
pub fn money_short(v: f64, currency: &str) -> String {
    let prefix = symbol(currency).map(str::to_string).unwrap_or_else(|| format!("{} ", esc(currency)));
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    let body = if a >= 1e6 {
        format!("{}M", trim(a / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(a / 1e3))
    } else {
        format!("{}", a.round() as i64)
    };
    format!("{sign}{prefix}{body}")
}

/// A share as a percentage with `digits` decimals: `0.1234` → `12.3 %`.
pub fn pct(v: f64, digits: usize) -> String {
    format!("{:.*} %", digits, v * 100.0)
}

/// A plain number with at most one decimal, trailing zero dropped: `2.0` → `2`, `2.25` → `2.3`.
pub fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

fn symbol(currency: &str) -> Option<&'static str> {
    match currency.to_ascii_uppercase().as_str() {
        "USD" | "CAD" | "AUD" | "NZD" => Some("$"),
        "EUR" => Some("€"),
        "GBP" => Some("£"),
        "JPY" => Some("¥"),
        _ => None,
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_for_people() {
        assert_eq!(esc("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-12), "-12");
        assert_eq!(money(12345.6, "USD"), "$12,346");
        assert_eq!(money(-80.2, "EUR"), "-€80");
        assert_eq!(money(1200.0, "CHF"), "CHF 1,200");
        assert_eq!(money_short(1234.0, "USD"), "$1.2k");
        assert_eq!(money_short(-3_400_000.0, "GBP"), "-£3.4M");
        assert_eq!(pct(0.1234, 1), "12.3 %");
        assert_eq!(trim(2.0), "2");
    }
}
