//! Inline SVG charts: lines, heatmaps, and bars with interval whiskers.
//!
//! Hand-written rather than a plotting crate: the page must stay one script-free file whose text
//! the browser lays out (plotters' SVG backend measures labels through a font backend that pulls
//! system font libraries), and every mark carries a `<title>` so a reader can hover for the exact
//! figure. Every drawn data element has the class `mark`, which the browser test counts.

use std::fmt::Write;

use super::format::esc;

/// Series colours, picked to stay distinguishable for common colour-vision deficiencies.
pub const PALETTE: [&str; 8] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

const W: f64 = 760.0;

/// One line of a line chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Axis labelling for a line chart.
pub struct Axes<'a> {
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Categorical x ticks (position, text); numeric ticks when empty.
    pub x_ticks: Vec<(f64, String)>,
    pub y_fmt: &'a dyn Fn(f64) -> String,
    pub x_fmt: &'a dyn Fn(f64) -> String,
    /// Forces 0 into the y range.
    pub y_from_zero: bool,
}

/// A multi-series line chart with a legend on the right.
pub fn line_chart(aria: &str, series: &[Series], axes: &Axes<'_>) -> String {
    let points: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.iter().copied()).collect();
    if points.is_empty() {
        return empty(aria);
    }
    let (left, right, top, bottom, h) = (64.0, 170.0, 12.0, 44.0, 300.0);
    let (x0, x1) = bounds(points.iter().map(|p| p.0), false);
    let (y0, y1) = bounds(points.iter().map(|p| p.1), axes.y_from_zero);
    let y_ticks = nice_ticks(y0, y1, 5);
    let (y0, y1) = (y_ticks[0].min(y0), y_ticks[y_ticks.len() - 1].max(y1));
    let sx = |x: f64| left + (x - x0) / (x1 - x0).max(f64::EPSILON) * (W - left - right);
    let sy = |y: f64| top + (1.0 - (y - y0) / (y1 - y0).max(f64::EPSILON)) * (h - top - bottom);
    let mut s = open(aria, h);
    for t in &y_ticks {
        let y = sy(*t);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - right,
            left - 6.0,
            y + 4.0,
            esc(&(axes.y_fmt)(*t)),
        );
    }
    let x_ticks: Vec<(f64, String)> = if axes.x_ticks.is_empty() {
        nice_ticks(x0, x1, 8).into_iter().filter(|t| *t >= x0 && *t <= x1).map(|t| (t, (axes.x_fmt)(t))).collect()
    } else {
        axes.x_ticks.iter().filter(|(t, _)| *t >= x0 && *t <= x1).cloned().collect()
    };
    for (x, label) in &x_ticks {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            sx(*x),
            h - bottom + 16.0,
            esc(label)
        );
    }
    axis_labels(&mut s, axes.x_label, axes.y_label, left, h, bottom);
    for (k, series) in series.iter().enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let path: Vec<String> = series.points.iter().map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y))).collect();
        // A single point has no line to draw: its circle alone marks it.
        if path.len() > 1 {
            let _ = write!(
                s,
                "<polyline class=\"mark\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
                path.join(" "),
                esc(&series.name)
            );
        }
        for (x, y) in &series.points {
            let _ = write!(
                s,
                "<circle class=\"mark\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"><title>{}: {} = {}, {} = {}</title></circle>",
                sx(*x),
                sy(*y),
                esc(&series.name),
                esc(axes.x_label),
                esc(&x_tick_text(&x_ticks, *x, axes.x_fmt)),
                esc(axes.y_label),
                esc(&(axes.y_fmt)(*y))
            );
        }
        let ly = top + 6.0 + k as f64 * 17.0;
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"3\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            W - right + 14.0,
            ly,
            W - right + 30.0,
            ly + 5.0,
            esc(&series.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// A heatmap: rows × columns of optional values, coloured from white to `colour` over
/// [min, max]; empty cells are hatched grey. Cell text is drawn when `cell_text` is set.
pub struct Heatmap<'a> {
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub values: Vec<Vec<Option<f64>>>,
    pub fmt: &'a dyn Fn(f64) -> String,
    pub cell_text: bool,
    /// Column labels drawn only every `col_label_every` columns.
    pub col_label_every: usize,
    pub x_label: &'a str,
    pub y_label: &'a str,
}

pub fn heatmap(aria: &str, m: &Heatmap<'_>) -> String {
    if m.values.iter().flatten().all(Option::is_none) {
        return empty(aria);
    }
    let (left, top) = (120.0, 8.0);
    let cell_w = ((W - left - 10.0) / m.cols.len().max(1) as f64).min(90.0);
    let every = m.col_label_every.max(1);
    // Labels wider than their columns are slanted so they do not run into each other.
    let slant = m.cols.iter().any(|c| c.chars().count() as f64 * 6.2 > cell_w * every as f64);
    let bottom = if slant { 90.0 } else { 44.0 };
    let cell_h = if m.cell_text { 28.0 } else { 22.0 };
    let h = top + cell_h * m.rows.len() as f64 + bottom;
    let vals: Vec<f64> = m.values.iter().flatten().flatten().copied().collect();
    let (lo, hi) =
        (vals.iter().copied().fold(f64::INFINITY, f64::min), vals.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    let mut s = open(aria, h);
    for (r, row) in m.rows.iter().enumerate() {
        let y = top + r as f64 * cell_h;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + cell_h / 2.0 + 4.0,
            esc(row)
        );
        for (c, col) in m.cols.iter().enumerate() {
            let x = left + c as f64 * cell_w;
            let v = m.values.get(r).and_then(|vs| vs.get(c)).copied().flatten();
            let (fill, label) = match v {
                Some(v) => {
                    let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                    (shade(t), (m.fmt)(v))
                }
                None => ("#f1f3f5".to_string(), "no data".to_string()),
            };
            let _ = write!(
                s,
                "<rect class=\"mark\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\" stroke=\"#fff\"><title>{} · {}: {}</title></rect>",
                cell_w,
                cell_h,
                esc(row),
                esc(col),
                esc(&label)
            );
            if m.cell_text && v.is_some() {
                let dark = v.map(|v| hi > lo && (v - lo) / (hi - lo) > 0.45).unwrap_or(false);
                let _ = write!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{}\">{}</text>",
                    x + cell_w / 2.0,
                    y + cell_h / 2.0 + 4.0,
                    if dark { "#fff" } else { "#223" },
                    esc(&label)
                );
            }
        }
    }
    for (c, col) in m.cols.iter().enumerate().filter(|(c, _)| c % every == 0) {
        let (x, y) = (left + (c as f64 + 0.5) * cell_w, top + cell_h * m.rows.len() as f64 + 14.0);
        if slant {
            let _ = write!(
                s,
                "<text transform=\"translate({x:.1} {y:.1}) rotate(-35)\" text-anchor=\"end\">{}</text>",
                esc(col)
            );
        } else {
            let _ = write!(s, "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"middle\">{}</text>", esc(col));
        }
    }
    // Under slanted labels the axis title goes to the bottom edge.
    axis_labels(&mut s, m.x_label, m.y_label, left, h, if slant { 46.0 } else { bottom });
    s.push_str("</svg>");
    s
}

/// One row of an interval chart: a reference bar (last-click) beside an estimate with its
/// interval.
pub struct IntervalRow {
    pub label: String,
    pub reference: f64,
    pub estimate: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

/// Horizontal paired bars per row: grey for the reference, blue for the estimate, with a whisker
/// from `low` to `high`. The axis includes zero, so negative estimates point left.
pub fn interval_bars(aria: &str, rows: &[IntervalRow], names: (&str, &str), fmt: &dyn Fn(f64) -> String) -> String {
    if rows.is_empty() {
        return empty(aria);
    }
    let (left, right, top, bottom) = (190.0, 20.0, 26.0, 40.0);
    let band = 34.0;
    let h = top + band * rows.len() as f64 + bottom;
    let values = rows.iter().flat_map(|r| [Some(r.reference), r.estimate, r.low, r.high]).flatten();
    let (v0, v1) = bounds(values, true);
    let ticks = nice_ticks(v0, v1, 6);
    let (v0, v1) = (ticks[0].min(v0), ticks[ticks.len() - 1].max(v1));
    let sx = |v: f64| left + (v - v0) / (v1 - v0).max(f64::EPSILON) * (W - left - right);
    let mut s = open(aria, h);
    for t in &ticks {
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{:.1}\" class=\"{}\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            h - bottom,
            if *t == 0.0 { "zero" } else { "grid" },
            h - bottom + 16.0,
            esc(&fmt(*t)),
            x = sx(*t)
        );
    }
    let _ = write!(
        s,
        "<rect x=\"{left}\" y=\"6\" width=\"12\" height=\"10\" fill=\"#b8c0c8\"/><text x=\"{:.1}\" y=\"15\">{}</text>\
         <rect x=\"{:.1}\" y=\"6\" width=\"12\" height=\"10\" fill=\"#1f77b4\"/><text x=\"{:.1}\" y=\"15\">{} (line: 95 % interval)</text>",
        left + 16.0,
        esc(names.0),
        left + 160.0,
        left + 176.0,
        esc(names.1)
    );
    for (k, r) in rows.iter().enumerate() {
        let y = top + k as f64 * band;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + band / 2.0 + 4.0,
            esc(&r.label)
        );
        let bar = |s: &mut String, v: f64, y: f64, fill: &str, what: &str| {
            let (a, b) = (sx(0.0_f64.max(v0)).min(sx(v)), sx(0.0_f64.max(v0)).max(sx(v)));
            let _ = write!(
                s,
                "<rect class=\"mark\" x=\"{a:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"11\" fill=\"{fill}\"><title>{}: {what} {}</title></rect>",
                (b - a).max(1.0),
                esc(&r.label),
                esc(&fmt(v))
            );
        };
        bar(&mut s, r.reference, y + 4.0, "#b8c0c8", names.0);
        if let Some(e) = r.estimate {
            bar(&mut s, e, y + 17.0, "#1f77b4", names.1);
        }
        if let (Some(lo), Some(hi)) = (r.low, r.high) {
            let yy = y + 22.5;
            let _ = write!(
                s,
                "<g class=\"mark\" stroke=\"#0b3c66\"><title>{}: 95 % interval {} to {}</title>\
                 <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
                 <line x1=\"{a:.1}\" x2=\"{a:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/><line x1=\"{b:.1}\" x2=\"{b:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/></g>",
                esc(&r.label),
                esc(&fmt(lo)),
                esc(&fmt(hi)),
                sx(lo),
                sx(hi),
                yy - 5.0,
                yy + 5.0,
                yy - 5.0,
                yy + 5.0,
                a = sx(lo),
                b = sx(hi)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Vertical bars, one per label.
pub fn column_chart(aria: &str, bars: &[(String, f64)], y_label: &str, fmt: &dyn Fn(f64) -> String) -> String {
    if bars.is_empty() {
        return empty(aria);
    }
    let (left, right, top, bottom, h) = (64.0, 10.0, 12.0, 56.0, 210.0);
    let (v0, v1) = bounds(bars.iter().map(|b| b.1), true);
    let ticks = nice_ticks(v0, v1, 5);
    let (v0, v1) = (ticks[0].min(v0), ticks[ticks.len() - 1].max(v1));
    let sy = |v: f64| top + (1.0 - (v - v0) / (v1 - v0).max(f64::EPSILON)) * (h - top - bottom);
    let step = (W - left - right) / bars.len() as f64;
    let mut s = open(aria, h);
    for t in &ticks {
        let y = sy(*t);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - right,
            left - 6.0,
            y + 4.0,
            esc(&fmt(*t)),
        );
    }
    let bar_w = (step * 0.7).min(70.0);
    for (k, (label, v)) in bars.iter().enumerate() {
        let x = left + k as f64 * step + (step - bar_w) / 2.0;
        let (a, b) = (sy(0.0_f64.max(v0)).min(sy(*v)), sy(0.0_f64.max(v0)).max(sy(*v)));
        let _ = write!(
            s,
            "<rect class=\"mark\" x=\"{x:.1}\" y=\"{a:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bar_w,
            (b - a).max(1.0),
            PALETTE[0],
            esc(label),
            esc(&fmt(*v)),
            x + bar_w / 2.0,
            h - bottom + 16.0,
            esc(label)
        );
    }
    axis_labels(&mut s, "", y_label, left, h, bottom);
    s.push_str("</svg>");
    s
}

fn open(aria: &str, h: f64) -> String {
    format!("<svg class=\"chart\" viewBox=\"0 0 {W} {h:.0}\" width=\"100%\" role=\"img\" aria-label=\"{}\">", esc(aria))
}

fn empty(aria: &str) -> String {
    format!("<p class=\"muted\">No data for this chart yet ({}).</p>", esc(aria))
}

fn axis_labels(s: &mut String, x_label: &str, y_label: &str, left: f64, h: f64, bottom: f64) {
    if !x_label.is_empty() {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" class=\"axis\">{}</text>",
            (left + W) / 2.0,
            h - bottom + 34.0,
            esc(x_label)
        );
    }
    if !y_label.is_empty() {
        let _ = write!(
            s,
            "<text transform=\"translate(12 {:.1}) rotate(-90)\" text-anchor=\"middle\" class=\"axis\">{}</text>",
            (h - bottom) / 2.0,
            esc(y_label)
        );
    }
}

fn x_tick_text(ticks: &[(f64, String)], x: f64, fmt: &dyn Fn(f64) -> String) -> String {
    ticks.iter().find(|(t, _)| (t - x).abs() < 1e-9).map(|(_, l)| l.clone()).unwrap_or_else(|| fmt(x))
}

/// White to a saturated blue, for t in [0, 1].
fn shade(t: f64) -> String {
    let t = t.clamp(0.0, 1.0);
    let mix = |from: u8, to: u8| (f64::from(from) + (f64::from(to) - f64::from(from)) * t).round() as u8;
    format!("#{:02x}{:02x}{:02x}", mix(0xf4, 0x08), mix(0xf8, 0x45), mix(0xfb, 0x94))
}

fn bounds(values: impl Iterator<Item = f64>, with_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = if with_zero { (0.0, 0.0) } else { (f64::INFINITY, f64::NEG_INFINITY) };
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON { (lo - 1.0, hi + 1.0) } else { (lo, hi) }
}

/// Round-number ticks (steps of 1, 2 or 5 × 10^k) covering [lo, hi] in about `n` steps.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let raw = (hi - lo).max(f64::EPSILON) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).floor() * step;
    let mut ticks = Vec::new();
    let mut k = 0.0;
    loop {
        let t = first + k * step;
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        if t >= hi - step * 1e-9 && ticks.len() >= 2 {
            return ticks;
        }
        k += 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(nice_ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(nice_ticks(0.0, 0.93, 5), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(nice_ticks(-130.0, 870.0, 5), vec![-200.0, 0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        let t = nice_ticks(3.0, 3.0 + 1e-12, 5);
        assert!(t.len() >= 2);
    }

    #[test]
    fn charts_draw_a_mark_per_datum() {
        let fmt = |v: f64| format!("{v:.0}");
        let axes =
            Axes { x_label: "month", y_label: "share", x_ticks: vec![], y_fmt: &fmt, x_fmt: &fmt, y_from_zero: true };
        let lines = line_chart(
            "retention",
            &[
                Series { name: "2026-01".into(), points: vec![(0.0, 1.0), (1.0, 0.3)] },
                Series { name: "a<b".into(), points: vec![(0.0, 1.0)] },
            ],
            &axes,
        );
        assert_eq!(
            lines.matches("class=\"mark\"").count(),
            1 + 3,
            "one polyline (a single point has none) and three points"
        );
        assert!(lines.contains("a&lt;b") && !lines.contains("a<b"));
        let m = heatmap(
            "send time",
            &Heatmap {
                rows: vec!["Mon".into(), "Tue".into()],
                cols: vec!["0".into(), "1".into(), "2".into()],
                values: vec![vec![Some(1.0), None, Some(3.0)], vec![Some(2.0), Some(2.0), None]],
                fmt: &fmt,
                cell_text: true,
                col_label_every: 1,
                x_label: "hour",
                y_label: "",
            },
        );
        assert_eq!(m.matches("class=\"mark\"").count(), 6);
        assert!(m.contains("fill=\"#f4f8fb\"") && m.contains("fill=\"#084594\""), "min and max take the scale's ends");
        let bars = interval_bars(
            "contribution",
            &[
                IntervalRow {
                    label: "welcome".into(),
                    reference: 100.0,
                    estimate: Some(-20.0),
                    low: Some(-50.0),
                    high: Some(10.0),
                },
                IntervalRow { label: "browse".into(), reference: 50.0, estimate: None, low: None, high: None },
            ],
            ("last-click", "incremental"),
            &fmt,
        );
        assert_eq!(bars.matches("class=\"mark\"").count(), 3 + 1, "three bars and one whisker");
        assert!(bars.contains("class=\"zero\""), "the zero line is drawn");
        assert!(line_chart("x", &[], &axes).contains("No data"));
    }
}
