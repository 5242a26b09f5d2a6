//! The dashboard's HTML: inline CSS and SVG, escaped text, no scripts or external assets.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::manifest::RunManifest;

pub struct Inputs<'a> {
    pub job: &'a str,
    pub month: &'a str,
    /// (month, metric name, events)
    pub monthly: &'a [(String, String, i64)],
    /// (email consent, sms consent, profiles)
    pub consent: &'a [(String, String, i64)],
    pub runs: &'a [RunManifest],
    /// This month's rows of `fct_anomalies`, oldest first.
    pub anomalies: &'a [Anomaly],
    /// The reporting currency (ISO code), for revenue figures.
    pub currency: &'a str,
}

/// One breach of `fct_anomalies`, with its flow's name.
#[derive(Debug, Clone)]
pub struct Anomaly {
    pub date: String,
    pub metric: String,
    pub flow_name: Option<String>,
    pub platform: Option<String>,
    pub channel: Option<String>,
    pub observed: f64,
    pub expected: Option<f64>,
    pub robust_z: Option<f64>,
    pub severity: String,
    pub rule: String,
    pub episode_start: String,
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1d2733}\
h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #dde3ea}\
table{border-collapse:collapse;width:100%}th,td{padding:.3rem .6rem;border-bottom:1px solid #eef1f4;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#66707a}.bad{color:#b3261e}\
svg text{font:11px system-ui,sans-serif;fill:#445}";

pub fn render(i: &Inputs<'_>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Lifecycle Performance Dashboard — {job} — {month}</title>\
         <style>{STYLE}</style></head><body><h1>Lifecycle Performance Dashboard</h1>\
         <p class=\"muted\">Job <b>{job}</b> · month <b>{month}</b> · generated {now} UTC</p>",
        job = esc(i.job),
        month = esc(i.month),
        now = chrono::Utc::now().format("%Y-%m-%d %H:%M")
    );

    h.push_str("<h2>Message and site activity this month</h2>");
    let this_month: Vec<_> = i.monthly.iter().filter(|r| r.0 == i.month).collect();
    if this_month.is_empty() {
        h.push_str("<p class=\"muted\">No events landed for this month.</p>");
    } else {
        h.push_str("<table><tr><th>Metric</th><th>Events</th></tr>");
        for (_, metric, n) in this_month {
            let _ = write!(h, "<tr><td>{}</td><td class=\"n\">{}</td></tr>", esc(metric), thousands(*n));
        }
        h.push_str("</table>");
    }

    h.push_str(&anomaly_table(i.anomalies, i.currency));

    h.push_str("<h2>Events per month</h2>");
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for (m, _, n) in i.monthly {
        *totals.entry(m.as_str()).or_default() += n;
    }
    h.push_str(&bar_chart(&totals));

    h.push_str("<h2>Consent of profiles now</h2><table><tr><th>Email</th><th>SMS</th><th>Profiles</th></tr>");
    for (e, s, n) in i.consent {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>", esc(e), esc(s), thousands(*n));
    }
    h.push_str("</table>");

    h.push_str("<h2>Recent runs</h2><table><tr><th>Run</th><th>Command</th><th>Status</th><th>Records landed</th><th>Error</th></tr>");
    for r in i.runs.iter().rev().take(10) {
        let records: u64 = r.streams.values().map(|s| s.records).sum();
        let class = if r.status == "succeeded" { "" } else { " class=\"bad\"" };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td{class}>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&r.run_id),
            esc(&r.command),
            esc(&r.status),
            thousands(records as i64),
            esc(r.error.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>");
    h.push_str(
        "<p class=\"muted\">Flow contribution (modeled lift beside last-click), retention, RFM movement, \
         and the flow audit are added to this page as their marts are built.</p></body></html>",
    );
    h
}

/// What a metric of `fct_anomalies` is, for a reader.
fn metric_label(metric: &str) -> &str {
    match metric {
        "unsubscribes" => "Unsubscribes",
        "unsub_rate" => "Unsubscribe rate",
        "spam_complaints" => "Spam complaints",
        "bounces" => "Bounces",
        "flow_sends" => "Flow sends",
        "coverage_ratio" => "Share of entrants messaged",
        "flow_click_to_order_rate" => "Click-to-order rate",
        "shop_orders" => "Shop orders",
        "shop_net_revenue" => "Shop net revenue",
        "checkout_conversion" => "Checkout conversion",
        other => other,
    }
}

fn metric_value(metric: &str, v: f64, currency: &str) -> String {
    match metric {
        "unsub_rate" | "coverage_ratio" | "flow_click_to_order_rate" | "checkout_conversion" => {
            format!("{:.2} %", v * 100.0)
        }
        "shop_net_revenue" => format!("{} {}", esc(currency), thousands(v.round() as i64)),
        _ => thousands(v.round() as i64),
    }
}

fn anomaly_table(rows: &[Anomaly], currency: &str) -> String {
    let mut h = String::from("<h2>Anomalies this month</h2>");
    if rows.is_empty() {
        h.push_str(
            "<p class=\"muted\">No monitored series broke from its recent pattern this month (robust z-score \
             against the 28 days before, with weekday seasonality; series below their volume gates are not scored).</p>",
        );
        return h;
    }
    h.push_str(
        "<p class=\"muted\">Days on which a monitored series broke from the 28 days before it (robust z-score with \
         weekday seasonality, |z| ≥ 3.5; a flow that sends nothing two days running is flagged by rule).</p>\
         <table><tr><th>Date</th><th>Series</th><th>Where</th><th>Observed</th><th>Expected</th><th>z</th>\
         <th>Severity</th><th>Since</th></tr>",
    );
    for a in rows {
        let place = match (&a.flow_name, &a.platform, &a.channel) {
            (Some(f), _, _) => format!("flow {}", esc(f)),
            (None, Some(p), Some(c)) => format!("{} {}", esc(p), esc(c)),
            (None, Some(p), None) => esc(p),
            _ => String::new(),
        };
        let severity = if a.rule == "flow_suppressed" { "critical (no sends)".to_string() } else { a.severity.clone() };
        let class = if matches!(a.severity.as_str(), "high" | "critical") { " class=\"bad\"" } else { "" };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{place}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td{class}>{}</td><td>{}</td></tr>",
            esc(&a.date),
            esc(metric_label(&a.metric)),
            metric_value(&a.metric, a.observed, currency),
            a.expected.map(|e| metric_value(&a.metric, e, currency)).unwrap_or_default(),
            a.robust_z.map(|z| format!("{z:+.1}")).unwrap_or_default(),
            esc(&severity),
            esc(&a.episode_start),
        );
    }
    h.push_str("</table>");
    h
}

fn bar_chart(totals: &BTreeMap<&str, i64>) -> String {
    if totals.is_empty() {
        return "<p class=\"muted\">No events yet.</p>".into();
    }
    let (w, h, pad) = (900.0_f64, 180.0_f64, 24.0_f64);
    let max = totals.values().copied().max().unwrap_or(1).max(1) as f64;
    let step = (w - pad) / totals.len() as f64;
    let mut svg =
        format!("<svg viewBox=\"0 0 {w} {}\" width=\"100%\" role=\"img\" aria-label=\"Events per month\">", h + 30.0);
    for (k, (month, n)) in totals.iter().enumerate() {
        let bh = (*n as f64 / max) * (h - pad);
        let x = pad + k as f64 * step;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#3b6ea5\"><title>{}: {}</title></rect>",
            h - bh,
            (step * 0.8).max(1.0),
            esc(month),
            thousands(*n)
        );
        if k % 3 == 0 {
            let _ = write!(svg, "<text x=\"{x:.1}\" y=\"{}\">{}</text>", h + 16.0, esc(month));
        }
    }
    svg.push_str("</svg>");
    svg
}

fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_formats() {
        assert_eq!(esc("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-12), "-12");
        let page = render(&Inputs {
            job: "j<b>",
            month: "2026-01",
            monthly: &[("2026-01".into(), "Opened Email".into(), 1200)],
            consent: &[],
            runs: &[],
            anomalies: &[Anomaly {
                date: "2026-01-13".into(),
                metric: "flow_sends".into(),
                flow_name: Some("Abandoned <Cart>".into()),
                platform: Some("klaviyo".into()),
                channel: None,
                observed: 0.0,
                expected: Some(41.2),
                robust_z: Some(-6.4),
                severity: "critical".into(),
                rule: "flow_suppressed".into(),
                episode_start: "2026-01-12".into(),
            }],
            currency: "USD",
        });
        assert!(page.contains("flow Abandoned &lt;Cart&gt;") && page.contains("critical (no sends)"));
        assert!(page.contains("<td class=\"n\">-6.4</td>") && page.contains("<td class=\"n\">41</td>"));
        assert!(page.contains("j&lt;b&gt;") && page.contains("1,200") && page.contains("<svg"));
        assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"));
    }
}
