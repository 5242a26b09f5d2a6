//! The dashboard's HTML: two views (CRM lead, CFO) in one file, switched by URL fragment with
//! CSS alone (`#crm`, `#cfo`), inline CSS and SVG, escaped text, no scripts or external assets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::data::Rows;
use super::format::{esc, money, money_short, pct, thousands, trim};
use super::svg::{self, Axes, Heatmap, IntervalRow, Series};
use crate::manifest::RunManifest;

/// Everything the page shows; each `Rows` is the result of the matching query in `data`.
pub struct Dashboard<'a> {
    pub job: &'a str,
    pub month: &'a str,
    /// The latest day with data (orders or message events), `YYYY-MM-DD`.
    pub as_of: &'a str,
    pub currency: &'a str,
    pub contribution: &'a Rows,
    pub retention: &'a Rows,
    pub clv: &'a Rows,
    pub transitions: &'a Rows,
    pub segments: &'a Rows,
    pub audit: &'a Rows,
    pub send_time: &'a Rows,
    pub send_time_advice: &'a Rows,
    pub cadence: &'a Rows,
    pub cadence_advice: &'a Rows,
    pub interventions: &'a Rows,
    pub hypotheses: &'a Rows,
    pub anomalies: &'a [Anomaly],
    pub runs: &'a [RunManifest],
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

/// RFM tiers best first, as fct_rfm_snapshot ranks them.
const TIERS: [&str; 12] = [
    "Champion",
    "Loyal",
    "Potential Loyalist",
    "New",
    "Promising",
    "Needs Attention",
    "About to Sleep",
    "Cannot Lose",
    "At Risk",
    "Hibernating",
    "Lost",
    "Lapsed",
];

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2733;background:#fafbfc}\
main{max-width:80rem;margin:0 auto;padding:1rem 2rem 3rem}header{background:#1d2733;color:#fff;padding:1rem 2rem}\
header h1{font-size:1.4rem;margin:0}header p{margin:.2rem 0 0;color:#c9d1d9}\
nav{display:flex;gap:.5rem;margin-top:.8rem}nav a{color:#fff;text-decoration:none;padding:.35rem .9rem;border:1px solid #5b6b7c;border-radius:4px}\
nav a:hover{background:#34475a}\
h2{font-size:1.15rem;margin:2.2rem 0 .3rem;border-bottom:1px solid #dde3ea;padding-bottom:.2rem}\
.what{color:#4f5b66;margin:.2rem 0 .7rem;max-width:60rem}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{padding:.3rem .6rem;border-bottom:1px solid #eef1f4;text-align:left;vertical-align:top}\
th{font-weight:600;color:#3a4652;background:#f3f5f7}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.muted{color:#66707a}.bad{color:#b3261e;font-weight:600}.good{color:#1b7f3b}\
.grade{display:inline-block;min-width:1.4em;text-align:center;border-radius:3px;font-weight:700;color:#fff}\
.gA{background:#1b7f3b}.gB{background:#5b8f29}.gC{background:#b7791f}.gD{background:#8a939c}\
svg.chart{background:#fff;border:1px solid #eef1f4;margin:.3rem 0}svg text{font:11px system-ui,sans-serif;fill:#445}\
svg text.axis{fill:#222;font-weight:600}svg line.grid{stroke:#e6e9ed}svg line.zero{stroke:#445;stroke-width:1.2}\
section.view{display:none}section.view:target{display:block}\
main:not(:has(section.view:target)) #crm{display:block}\
.wide{overflow-x:auto}table.small td,table.small th{font-size:12.5px}table.small td:first-child{min-width:10rem}td.why{min-width:16rem}\
dl.grades{display:grid;grid-template-columns:auto 1fr;gap:.2rem .8rem}dl.grades dd{margin:0}";

pub fn render(d: &Dashboard<'_>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Lifecycle Performance Dashboard — {job} — {month}</title><style>{STYLE}</style></head><body>\
         <header><h1>Lifecycle Performance Dashboard · {month}</h1>\
         <p>Job <b>{job}</b> · data as of <b>{as_of}</b> · currency {cur} · generated {now} UTC</p>\
         <nav><a href=\"#crm\">CRM lead view</a><a href=\"#cfo\">CFO view</a></nav></header><main>",
        job = esc(d.job),
        month = esc(d.month),
        as_of = esc(d.as_of),
        cur = esc(d.currency),
        now = chrono::Utc::now().format("%Y-%m-%d %H:%M")
    );

    h.push_str("<section class=\"view\" id=\"crm\"><h2 class=\"view-title\">CRM lead view</h2>");
    h.push_str(&audit(d.audit));
    h.push_str(&anomaly_table(d.anomalies, d.currency, d.as_of));
    h.push_str(&send_time(d.send_time, d.send_time_advice));
    h.push_str(&cadence(d.cadence, d.cadence_advice));
    h.push_str(&transitions(d.transitions));
    h.push_str(&segments(d.segments, d.currency));
    h.push_str(&interventions(d.interventions, d.hypotheses, d.currency));
    h.push_str(&runs(d.runs));
    h.push_str("</section>");

    h.push_str("<section class=\"view\" id=\"cfo\"><h2 class=\"view-title\">CFO view</h2>");
    h.push_str(&contribution(d.contribution, d.currency, d.month, d.as_of));
    h.push_str(&retention(d.retention, d.currency, d.as_of));
    h.push_str(&clv(d.clv, d.currency));
    h.push_str("</section></main></body></html>");
    h
}

fn grade(g: &str) -> String {
    match g {
        "A" | "B" | "C" | "D" => format!("<span class=\"grade g{g}\" title=\"evidence grade {g}\">{g}</span>"),
        _ => "<span class=\"muted\">–</span>".into(),
    }
}

fn contribution(rows: &Rows, currency: &str, month: &str, as_of: &str) -> String {
    let mut h = String::from("<h2>Revenue contribution by flow: modeled incremental beside last-click</h2>");
    let _ = write!(
        h,
        "<p class=\"what\">For {}: what each flow <i>caused</i> (modeled incremental revenue: revenue of the \
         people the flow could reach minus what comparable people it could not reach bought, with a 95 % \
         interval) beside the revenue last-click attribution credits it with. The gap between the grey and \
         blue bars is revenue the platform report credits to the flow that would have come anyway. Data as of {}.</p>",
        esc(month),
        esc(as_of)
    );
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No flow contribution rows for this month.</p>");
        return h;
    }
    let fmt = |v: f64| money_short(v, currency);
    let mut bars = Vec::new();
    for r in (0..rows.len()).filter(|r| rows.str(*r, 2) == "all") {
        bars.push(IntervalRow {
            label: rows.str(r, 0),
            reference: rows.f(r, 5),
            estimate: rows.num(r, 6),
            low: rows.num(r, 7),
            high: rows.num(r, 8),
        });
    }
    h.push_str(&svg::interval_bars(
        &format!("Last-click and modeled incremental revenue by flow, {month}"),
        &bars,
        ("last-click revenue", "modeled incremental revenue"),
        &fmt,
    ));
    if bars.iter().all(|b| b.estimate.is_none()) {
        h.push_str(
            "<p class=\"bad\">No flow has enough evidence this month for a modeled estimate: each lacks a control \
             group large enough (grade D), so only last-click is shown. Add a random holdout to the flows that \
             matter most; see the flow audit's recommendations.</p>",
        );
    }
    h.push_str(
        "<div class=\"wide\"><table class=\"small\"><tr><th>Flow</th><th>Channel</th><th class=\"n\">Sends</th><th class=\"n\">Channel cost</th>\
         <th class=\"n\">Last-click revenue</th><th class=\"n\">Incremental revenue (95 %)</th><th>Grade</th>\
         <th class=\"n\">Incremental contribution margin (95 %)</th><th class=\"n\">Incremental ÷ last-click</th></tr>",
    );
    let m = |v: Option<f64>| v.map(|v| money(v, currency)).unwrap_or_else(|| "–".into());
    for r in 0..rows.len() {
        let mature = rows.num(r, 15).unwrap_or(0.0) > 0.5;
        let estimate = match rows.num(r, 6) {
            Some(v) => format!(
                "{} <span class=\"muted\">({} to {})</span>",
                money(v, currency),
                m(rows.num(r, 7)),
                m(rows.num(r, 8))
            ),
            None => format!(
                "<span class=\"muted\">{}</span>",
                esc(&reason(rows.text(r, 16).as_deref(), rows.text(r, 17).as_deref()))
            ),
        };
        let margin = match rows.num(r, 11) {
            Some(v) => format!(
                "{} <span class=\"muted\">({} to {})</span>",
                money(v, currency),
                m(rows.num(r, 12)),
                m(rows.num(r, 13))
            ),
            None => "–".into(),
        };
        let _ = write!(
            h,
            "<tr><td>{}{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{estimate}</td><td>{}</td><td class=\"n\">{margin}</td><td class=\"n\">{}</td></tr>",
            esc(&rows.str(r, 0)),
            if mature {
                ""
            } else {
                " <span class=\"muted\" title=\"the outcome window has not closed yet\">(window open)</span>"
            },
            esc(&rows.str(r, 2)),
            thousands(rows.f(r, 3) as i64),
            m(rows.num(r, 4)),
            m(rows.num(r, 5)),
            grade(&rows.str(r, 9)),
            rows.num(r, 14).map(|v| pct(v, 0)).unwrap_or_else(|| "–".into()),
        );
    }
    h.push_str("</table></div>");
    h.push_str(
        "<h2>Evidence grades</h2><dl class=\"grades\">\
         <dt><span class=\"grade gA\">A</span></dt><dd>A random holdout: people kept from the flow at random. The interval is a bootstrap over people; trust it as a measurement.</dd>\
         <dt><span class=\"grade gB\">B</span></dt><dd>A natural control (people the flow could not reach, e.g. without consent) that passes the placebo check: comparable before entry.</dd>\
         <dt><span class=\"grade gC\">C</span></dt><dd>A fallback: a model baseline (BG/NBD expectation) or a difference-in-differences around a launch or stop. Direction is reliable, size less so.</dd>\
         <dt><span class=\"grade gD\">D</span></dt><dd>Too little evidence: the estimate is withheld or rolled up to the quarter. Add a holdout to measure this flow.</dd>\
         </dl><p class=\"what\">Contribution margin is incremental net revenue less COGS from cost history, discounts and refunds, less the flow's channel cost (email and SMS per-message prices).</p>",
    );
    h
}

fn reason(lift_reason: Option<&str>, rolled_up: Option<&str>) -> String {
    match (lift_reason, rolled_up) {
        (_, Some(to)) => format!("rolled up to {to}"),
        (Some(r), _) => r.replace('_', " "),
        _ => "not estimated".into(),
    }
}

fn retention(rows: &Rows, currency: &str, as_of: &str) -> String {
    let mut h = String::from("<h2>Retention by acquisition cohort</h2>");
    let _ = write!(
        h,
        "<p class=\"what\">Share of each monthly acquisition cohort (customers by month of their first qualifying \
         order) who ordered again in each month after acquisition; the last twelve cohorts, complete months \
         only. Data as of {}.</p>",
        esc(as_of)
    );
    let mut retention: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut revenue: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut sizes: BTreeMap<String, f64> = BTreeMap::new();
    for r in 0..rows.len() {
        let cohort = rows.str(r, 0).get(..7).unwrap_or_default().to_string();
        let month = rows.f(r, 1);
        if month >= 1.0
            && let Some(p) = rows.num(r, 2)
        {
            retention.entry(cohort.clone()).or_default().push((month, p));
        }
        if let Some(v) = rows.num(r, 3) {
            revenue.entry(cohort.clone()).or_default().push((month, v));
        }
        sizes.insert(cohort, rows.f(r, 4));
    }
    let name = |c: &str| format!("{c} (n={})", thousands(sizes.get(c).copied().unwrap_or(0.0) as i64));
    let series = |m: BTreeMap<String, Vec<(f64, f64)>>| -> Vec<Series> {
        m.into_iter().rev().take(8).map(|(c, points)| Series { name: name(&c), points }).collect()
    };
    let pct_fmt = |v: f64| pct(v, 0);
    let month_fmt = |v: f64| trim(v);
    h.push_str(&svg::line_chart(
        "Retention curve by acquisition cohort",
        &series(retention),
        &Axes {
            x_label: "months since first order",
            y_label: "share ordering that month",
            x_ticks: vec![],
            y_fmt: &pct_fmt,
            x_fmt: &month_fmt,
            y_from_zero: true,
        },
    ));
    h.push_str("<h2>Cumulative net revenue per customer</h2>");
    h.push_str("<p class=\"what\">Net revenue (after discounts and refunds) per customer of the cohort, summed from the first order to each month after it: how quickly a cohort pays back its acquisition cost.</p>");
    let money_fmt = |v: f64| money_short(v, currency);
    h.push_str(&svg::line_chart(
        "Cumulative net revenue per customer by acquisition cohort",
        &series(revenue),
        &Axes {
            x_label: "months since first order",
            y_label: "net revenue per customer",
            x_ticks: vec![],
            y_fmt: &money_fmt,
            x_fmt: &month_fmt,
            y_from_zero: true,
        },
    ));
    h
}

fn clv(rows: &Rows, currency: &str) -> String {
    let mut h = String::from("<h2>Customer lifetime value by segment</h2>");
    let cutoff = (0..rows.len()).find_map(|r| rows.text(r, 9)).unwrap_or_default();
    let _ = write!(
        h,
        "<p class=\"what\">Historical CLV (average purchase value × yearly frequency × expected lifespan from yearly \
         churn) and the predicted 12-month value (BG/NBD × Gamma-Gamma), per segment, with data to {}.</p>",
        esc(&cutoff)
    );
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No CLV figures yet.</p>");
        return h;
    }
    let bars: Vec<(String, f64)> = (0..rows.len())
        .filter(|r| rows.str(*r, 0) == "first_order_offer_type")
        .filter_map(|r| rows.num(r, 7).map(|v| (rows.str(r, 1).replace('_', " "), v)))
        .collect();
    let fmt = |v: f64| money_short(v, currency);
    h.push_str(&svg::column_chart(
        "Historical CLV by first-order offer type",
        &bars,
        "historical CLV per customer",
        &fmt,
    ));
    h.push_str(
        "<table><tr><th>Segment</th><th class=\"n\">Customers</th><th class=\"n\">Avg purchase value</th>\
         <th class=\"n\">Orders per year</th><th class=\"n\">Yearly churn</th><th class=\"n\">Lifespan (years)</th>\
         <th class=\"n\">Historical CLV</th><th class=\"n\">Predicted 12-month value</th></tr>",
    );
    for r in 0..rows.len() {
        let segment = match rows.str(r, 0).as_str() {
            "all" => "All customers".to_string(),
            t => format!("{}: {}", t.replace('_', " "), rows.str(r, 1).replace('_', " ")),
        };
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map(f).unwrap_or_else(|| "–".into());
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&segment),
            thousands(rows.f(r, 2) as i64),
            opt(rows.num(r, 3), &|v| money(v, currency)),
            opt(rows.num(r, 4), &|v| format!("{v:.2}")),
            opt(rows.num(r, 5), &|v| pct(v, 0)),
            opt(rows.num(r, 6), &|v| format!("{v:.1}")),
            opt(rows.num(r, 7), &|v| money(v, currency)),
            opt(rows.num(r, 8), &|v| money(v, currency)),
        );
    }
    h.push_str("</table>");
    h
}

const STATUS_LABELS: [(&str, &str); 6] = [
    ("missing", "missing"),
    ("running_on_defaults", "running on defaults"),
    ("stale", "stale content"),
    ("needs_review", "needs review"),
    ("calibrated", "calibrated"),
    ("paused", "paused / not live"),
];

fn audit(rows: &Rows) -> String {
    let mut h = String::from("<h2>Flow audit</h2>");
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No flow audit yet.</p>");
        return h;
    }
    let _ = write!(
        h,
        "<p class=\"what\">Every flow against the canonical lifecycle set as of {}: <b>calibrated</b> (tested or \
         measured recently, content under six months old, at most one default signal), <b>running on defaults</b> \
         (three or more template signals: template name, never edited, template delay, no branching, no A/B \
         test), <b>stale</b> (content untouched for over a year), <b>needs review</b>, or <b>missing</b> (a \
         required flow type with no live flow on the channel).</p>",
        esc(&rows.str(0, 15))
    );
    let counts: Vec<(String, f64)> = STATUS_LABELS
        .iter()
        .map(|(status, label)| {
            (label.to_string(), (0..rows.len()).filter(|r| rows.str(*r, 3) == *status).count() as f64)
        })
        .collect();
    let fmt = |v: f64| trim(v);
    h.push_str(&svg::column_chart("Flows by calibration status", &counts, "flows", &fmt));
    h.push_str(
        "<div class=\"wide\"><table class=\"small\"><tr><th>Flow</th><th>Type</th><th>Status</th><th>Channels</th>\
         <th class=\"n\">Depth</th><th class=\"n\">First delay</th><th class=\"n\">Content age</th>\
         <th class=\"n\">Sends 30 d</th><th>Grade</th><th>Why, and what to do next</th></tr>",
    );
    for r in 0..rows.len() {
        let status = rows.str(r, 3);
        let label = STATUS_LABELS.iter().find(|(s, _)| *s == status).map(|(_, l)| *l).unwrap_or(status.as_str());
        let class = match status.as_str() {
            "missing" | "running_on_defaults" | "stale" => " class=\"bad\"",
            "calibrated" => " class=\"good\"",
            _ => "",
        };
        let name = if status == "missing" {
            format!("<i>no {} flow</i>", esc(&rows.str(r, 1).replace('_', " ")))
        } else {
            esc(&rows.str(r, 0))
        };
        let opt = |c: usize, f: &dyn Fn(f64) -> String| rows.num(r, c).map(f).unwrap_or_else(|| "–".into());
        let _ = write!(
            h,
            "<tr><td>{name}{}</td><td>{}</td><td{class} style=\"white-space:nowrap\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"why\">{}{}</td></tr>",
            if rows.str(r, 2).is_empty() || rows.str(r, 2) == "live" {
                String::new()
            } else {
                format!(" <span class=\"muted\">({})</span>", esc(&rows.str(r, 2)))
            },
            esc(&rows.str(r, 1).replace('_', " ")),
            esc(label),
            esc(&rows.str(r, 4)),
            opt(5, &trim),
            opt(6, &|v| format!("{} h", trim(v))),
            opt(7, &|v| format!("{} d", v as i64)),
            opt(10, &|v| thousands(v as i64)),
            grade(&rows.str(r, 11)),
            esc(&rows.str(r, 12).replace('_', " ")),
            match rows.str(r, 13) {
                next if next.is_empty() => String::new(),
                next => format!("<br><b>→ {}</b>", esc(&next.replace('_', " "))),
            },
        );
    }
    h.push_str("</table></div>");
    h
}

const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

fn hour_of_week(h: f64) -> String {
    let h = h as usize;
    format!("{} {:02}:00", &WEEKDAYS[(h / 24) % 7][..3], h % 24)
}

fn send_time(rows: &Rows, advice: &Rows) -> String {
    let mut h = String::from("<h2>Send time</h2>");
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No campaign email deliveries in the send-time window.</p>");
        return h;
    }
    let _ = write!(
        h,
        "<p class=\"what\">Campaign email click rate by the recipient's local day and hour, all segments together, \
         over the 90 days to {}. Empty cells had no sends. Flow sends are left out: their timing follows the \
         trigger, not a choice. Hours carry the content sent in them, so a good hour is evidence, not proof.</p>",
        esc(&rows.str(0, 3))
    );
    let mut values = vec![vec![None; 24]; 7];
    for r in 0..rows.len() {
        let how = rows.f(r, 0) as usize;
        let deliveries = rows.f(r, 1);
        if how < 168 && deliveries > 0.0 {
            values[how / 24][how % 24] = Some(rows.f(r, 2) / deliveries);
        }
    }
    let fmt = |v: f64| pct(v, 1);
    h.push_str(&svg::heatmap(
        "Campaign email click rate by local hour of week",
        &Heatmap {
            rows: WEEKDAYS.iter().map(|d| d.to_string()).collect(),
            cols: (0..24).map(|h| format!("{h:02}")).collect(),
            values,
            fmt: &fmt,
            cell_text: false,
            col_label_every: 2,
            x_label: "recipient's local hour",
            y_label: "",
        },
    ));
    if !advice.is_empty() {
        h.push_str(
            "<table class=\"small\"><tr><th>Segment</th><th>Channel</th><th class=\"n\">Deliveries</th><th>Now</th>\
             <th>Recommended</th><th class=\"n\">P(better)</th><th class=\"n\">Uplift</th><th>Why</th></tr>",
        );
        for r in 0..advice.len() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                esc(&advice.str(r, 0)),
                esc(&advice.str(r, 1)),
                thousands(advice.f(r, 2) as i64),
                hour_of_week(advice.f(r, 3)),
                hour_of_week(advice.f(r, 4)),
                advice.num(r, 7).map(|v| pct(v, 0)).unwrap_or_else(|| "–".into()),
                advice.num(r, 8).map(|v| pct(v, 0)).unwrap_or_else(|| "–".into()),
                esc(&advice.str(r, 9).replace('_', " ")),
            );
        }
        h.push_str("</table>");
    }
    h
}

const BUCKETS: [&str; 7] = ["0", "1", "2", "3", "4-5", "6-9", "10+"];

fn cadence(rows: &Rows, advice: &Rows) -> String {
    let mut h = String::from("<h2>Cadence and unsubscribe pressure</h2>");
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No profile-weeks in the cadence window.</p>");
        return h;
    }
    h.push_str(
        "<p class=\"what\">Email unsubscribes per subscriber-week by how many marketing emails the subscriber got \
         that week, per segment, over the 13 weeks to the month's end (the five largest segments; points under \
         50 subscriber-weeks are left out). A curve that climbs steeply marks where more sends start costing \
         subscribers. Engaged people trigger more flows, so high buckets are enriched with them: read this as \
         pressure, not as a causal dose-response.</p>",
    );
    let mut by_segment: BTreeMap<String, (f64, Vec<(f64, f64)>)> = BTreeMap::new();
    for r in 0..rows.len() {
        let weeks = rows.f(r, 3);
        let bucket = BUCKETS.iter().position(|b| *b == rows.str(r, 1)).unwrap_or(0) as f64;
        let entry = by_segment.entry(rows.str(r, 0)).or_default();
        entry.0 += weeks;
        if weeks >= 50.0 {
            entry.1.push((bucket, rows.f(r, 4) / weeks));
        }
    }
    let mut segments: Vec<(f64, Series)> = by_segment
        .into_iter()
        .filter(|s| s.1.1.len() >= 2)
        .map(|(name, (weeks, points))| (weeks, Series { name, points }))
        .collect();
    segments.sort_by(|a, b| b.0.total_cmp(&a.0));
    let series: Vec<Series> = segments.into_iter().take(5).map(|(_, s)| s).collect();
    let fmt = |v: f64| pct(v, 2);
    h.push_str(&svg::line_chart(
        "Unsubscribes per subscriber-week by weekly email count",
        &series,
        &Axes {
            x_label: "marketing emails received in the week",
            y_label: "unsubscribes per subscriber-week",
            x_ticks: BUCKETS.iter().enumerate().map(|(i, b)| (i as f64, b.to_string())).collect(),
            y_fmt: &fmt,
            x_fmt: &trim,
            y_from_zero: true,
        },
    ));
    if !advice.is_empty() {
        let _ = write!(
            h,
            "<table class=\"small\"><tr><th>Segment</th><th>Channel</th><th class=\"n\">Median per week now</th>\
             <th>Recommended weekly cap</th><th>What binds</th><th class=\"n\">Subscriber-weeks</th></tr>"
        );
        for r in 0..advice.len() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(&advice.str(r, 0)),
                esc(&advice.str(r, 1)),
                trim(advice.f(r, 2)),
                esc(&advice.str(r, 3)),
                esc(&advice.str(r, 4).replace('_', " ")),
                thousands(advice.f(r, 5) as i64),
            );
        }
        h.push_str("</table>");
        let _ = write!(
            h,
            "<p class=\"muted\">The cap is a heuristic as of {}: the largest weekly count whose spam complaints stay \
             under 0.1 % per message, whose unsubscribe pressure stays within twice that of one email a week, and \
             whose extra revenue outweighs the subscribers it costs. A randomized cadence test gives the causal answer.</p>",
            esc(&advice.str(0, 6))
        );
    }
    h
}

fn interventions(rows: &Rows, queue: &Rows, currency: &str) -> String {
    let mut h = String::from("<h2>Interventions and what they did</h2>");
    h.push_str(
        "<p class=\"what\">Changes the CRM lead recorded in the job's operating record, each read as the change in the \
         flow's revenue per entrant over the 4 weeks after against the 4 weeks before, less the same change across \
         the other live flows (difference-in-differences, grade C: it assumes the flow would have moved like the \
         others). At small entry counts a 95 % interval excludes 0 about one time in twenty by chance.</p>",
    );
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No interventions recorded up to this month (job key <code>operating_record</code>).</p>");
    } else {
        h.push_str(
            "<div class=\"wide\"><table class=\"small\"><tr><th>Flow</th><th>Changed on</th><th>Change, and the hypothesis</th>\
             <th>Verdict</th><th class=\"n\">Effect per entrant (95 %)</th><th class=\"n\">Revenue added after (95 %)</th>\
             <th class=\"n\">Entrants before / after</th><th class=\"n\">Revenue per entrant before → after</th></tr>",
        );
        let m = |v: Option<f64>| v.map(|v| money(v, currency)).unwrap_or_else(|| "–".into());
        let cents = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into());
        for r in 0..rows.len() {
            let verdict = rows.str(r, 16);
            let class = match verdict.as_str() {
                "improved" => " class=\"good\"",
                "worsened" => " class=\"bad\"",
                _ => "",
            };
            let verdict_text = match (verdict.as_str(), rows.text(r, 17)) {
                ("window_open", Some(from)) => format!("window open (readable from {from})"),
                (v, _) => v.replace('_', " "),
            };
            let effect = match rows.num(r, 10) {
                Some(v) => format!(
                    "{} <span class=\"muted\">({} to {})</span>",
                    cents(Some(v)),
                    cents(rows.num(r, 11)),
                    cents(rows.num(r, 12))
                ),
                None => "–".into(),
            };
            let added = match rows.num(r, 13) {
                Some(v) => format!(
                    "{} <span class=\"muted\">({} to {})</span>",
                    money(v, currency),
                    m(rows.num(r, 14)),
                    m(rows.num(r, 15))
                ),
                None => "–".into(),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td style=\"white-space:nowrap\">{}</td><td class=\"why\">{}<br><span class=\"muted\">{} Expected: {}</span></td>\
                 <td{class}>{}</td><td class=\"n\">{effect}</td><td class=\"n\">{added}</td><td class=\"n\">{} / {}</td><td class=\"n\">{} → {}</td></tr>",
                esc(&rows.str(r, 1)),
                esc(&rows.str(r, 2)),
                esc(&rows.str(r, 3)),
                esc(&rows.str(r, 4)),
                esc(&rows.str(r, 5)),
                esc(&verdict_text),
                thousands(rows.f(r, 6) as i64),
                thousands(rows.f(r, 7) as i64),
                cents(rows.num(r, 8)),
                cents(rows.num(r, 9)),
            );
        }
        h.push_str("</table></div>");
    }
    h.push_str("<h2>Queued hypotheses</h2>");
    if queue.is_empty() {
        h.push_str("<p class=\"muted\">No hypotheses queued in the operating record.</p>");
        return h;
    }
    h.push_str("<table class=\"small\"><tr><th class=\"n\">Next</th><th>Flow</th><th>Hypothesis</th><th>Expected effect</th></tr>");
    for r in 0..queue.len() {
        let _ = write!(
            h,
            "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"why\">{}</td><td>{}</td></tr>",
            trim(queue.f(r, 0)),
            esc(&queue.text(r, 1).unwrap_or_else(|| "any flow".into())),
            esc(&queue.str(r, 2)),
            esc(&queue.str(r, 3)),
        );
    }
    h.push_str("</table>");
    h
}

fn tier_order(tiers: &BTreeSet<String>) -> Vec<String> {
    let mut out: Vec<String> = TIERS.iter().filter(|t| tiers.contains(**t)).map(|t| t.to_string()).collect();
    out.extend(tiers.iter().filter(|t| !TIERS.contains(&t.as_str())).cloned());
    out
}

fn transitions(rows: &Rows) -> String {
    let mut h = String::from("<h2>RFM tier movement</h2>");
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No month-to-month tier movement yet (two month-end snapshots are needed).</p>");
        return h;
    }
    let (from, to) = (rows.str(0, 4), rows.str(0, 5));
    let _ = write!(
        h,
        "<p class=\"what\">Where the customers of each RFM tier on {} were on {}: each row sums to 100 %. \
         Movement up the list is customers warming; down is cooling.</p>",
        esc(&from),
        esc(&to)
    );
    let tiers: BTreeSet<String> = (0..rows.len()).flat_map(|r| [rows.str(r, 0), rows.str(r, 1)]).collect();
    let order = tier_order(&tiers);
    let mut cells: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for r in 0..rows.len() {
        cells.insert((rows.str(r, 0), rows.str(r, 1)), (rows.f(r, 3), rows.f(r, 2)));
    }
    let values =
        order.iter().map(|f| order.iter().map(|t| cells.get(&(f.clone(), t.clone())).map(|c| c.0)).collect()).collect();
    let fmt = |v: f64| pct(v, 0);
    h.push_str(&svg::heatmap(
        &format!("RFM tier transitions from {from} to {to}"),
        &Heatmap {
            rows: order.iter().map(|t| t.replace('_', " ")).collect(),
            cols: order.iter().map(|t| t.replace('_', " ")).collect(),
            values,
            fmt: &fmt,
            cell_text: true,
            col_label_every: 1,
            x_label: &format!("tier on {to}"),
            y_label: "",
        },
    ));
    h
}

fn segments(rows: &Rows, currency: &str) -> String {
    let mut h = String::from("<h2>Segments: RFM tier × first-order offer</h2>");
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No segment matrix yet.</p>");
        return h;
    }
    let _ = write!(
        h,
        "<p class=\"what\">Customers at the month-end snapshot of {} by RFM tier and the offer that won them \
         (all acquisition cohorts); hover a cell for its last-12-month net revenue. Cells under 30 customers are \
         too small to act on.</p>",
        esc(&rows.str(0, 4))
    );
    let tiers: BTreeSet<String> = (0..rows.len()).map(|r| rows.str(r, 0)).collect();
    let offers: Vec<String> = (0..rows.len()).map(|r| rows.str(r, 1)).collect::<BTreeSet<_>>().into_iter().collect();
    let order = tier_order(&tiers);
    let mut cells: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for r in 0..rows.len() {
        cells.insert((rows.str(r, 0), rows.str(r, 1)), (rows.f(r, 2), rows.f(r, 3)));
    }
    let values = order
        .iter()
        .map(|t| offers.iter().map(|o| cells.get(&(t.clone(), o.clone())).map(|c| c.0)).collect())
        .collect();
    let fmt = |v: f64| thousands(v as i64);
    h.push_str(&svg::heatmap(
        "Customers by RFM tier and first-order offer type",
        &Heatmap {
            rows: order.clone(),
            cols: offers.iter().map(|o| o.replace('_', " ")).collect(),
            values,
            fmt: &fmt,
            cell_text: true,
            col_label_every: 1,
            x_label: "first-order offer type",
            y_label: "",
        },
    ));
    let total: f64 = cells.values().map(|c| c.1).sum();
    let _ = write!(
        h,
        "<p class=\"muted\">Net revenue of these customers over the last 12 months: {}.</p>",
        money(total, currency)
    );
    h
}

fn runs(runs: &[RunManifest]) -> String {
    let mut h = String::from(
        "<h2>Recent runs</h2><p class=\"what\">The job's last runs: a failed stream keeps its previous data and is retried the next night.</p>\
         <table><tr><th>Run</th><th>Command</th><th>Status</th><th class=\"n\">Records landed</th><th>Error</th></tr>",
    );
    for r in runs.iter().rev().take(10) {
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
        "unsub_rate" | "coverage_ratio" | "flow_click_to_order_rate" | "checkout_conversion" => pct(v, 2),
        "shop_net_revenue" => money(v, currency),
        _ => thousands(v.round() as i64),
    }
}

fn anomaly_table(rows: &[Anomaly], currency: &str, as_of: &str) -> String {
    let mut h = String::from("<h2>Anomalies this month</h2>");
    let _ = write!(
        h,
        "<p class=\"what\">Days on which a monitored series broke from the 28 days before it (robust z-score with \
         weekday seasonality, |z| ≥ 3.5; a flow that sends nothing two days running is flagged by rule). \
         Series below their volume gates are not scored. Data as of {}.</p>",
        esc(as_of)
    );
    if rows.is_empty() {
        h.push_str("<p class=\"muted\">No monitored series broke from its recent pattern this month.</p>");
        return h;
    }
    h.push_str(
        "<table><tr><th>Date</th><th>Series</th><th>Where</th><th class=\"n\">Observed</th><th class=\"n\">Expected</th>\
         <th class=\"n\">z</th><th>Severity</th><th>Episode since</th></tr>",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomalies_are_escaped_and_formatted() {
        let page = anomaly_table(
            &[Anomaly {
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
            "USD",
            "2026-01-31",
        );
        assert!(page.contains("flow Abandoned &lt;Cart&gt;") && page.contains("critical (no sends)"));
        assert!(page.contains("<td class=\"n\">-6.4</td>") && page.contains("<td class=\"n\">41</td>"));
    }

    #[test]
    fn tiers_keep_the_rfm_order() {
        let tiers: BTreeSet<String> = ["Lost", "Champion", "Other", "New"].iter().map(|s| s.to_string()).collect();
        assert_eq!(tier_order(&tiers), vec!["Champion", "New", "Lost", "Other"]);
    }
}
