//! `fct_anomalies` (models.md 4.14): the days on which a monitored daily series of
//! `int_anomaly_series` broke from its recent pattern, for the monthly readout.
//!
//! Each evaluated day `d` is scored against the 28 days before it: `level` = their median; a
//! weekday's factor = the median of its four values / `level` (additive offsets, weekday median −
//! `level`, when `level` is 0 or a quarter of the baseline days are zero); expected = `level` ×
//! factor; `robust_z = (y − expected − median residual) / scale` with `scale = max(1.4826 × MAD,
//! floor, 0.01 × level)`, the floor being √expected for counts, the binomial standard error
//! √(e(1 − e)/n) of the day's denominator for rates, and expected / √(orders a day) for revenue
//! (the order count's Poisson noise at the average order value); for counts and rates `e` is at
//! least the baseline's mean or pooled rate, so a sparse series' near-zero expectation does not
//! make one event a breach. Where the day's expected count is under 30, a breach must also hold on
//! Anscombe's variance-stabilised Poisson score `2(√(k + 3/8) − √(λ + 3/8))`: the normal floor
//! understates a small count's tail (three unsubscribes where one is usual happen every few
//! weeks), and the spec's volume gates alone let such series through on a large delivery day. A
//! day breaches when the
//! signed score in the series' direction reaches the threshold (3.5); severity low < 5 ≤ high < 8
//! ≤ critical. Shop orders and revenue also report rises, as `info`.
//!
//! Series with too little volume to tell noise from news are not scored (the gates of 4.14;
//! `cfg_settings` keys below). The rule `flow_suppressed` (critical) fires when a flow whose
//! baseline median reaches the send gate sends nothing two days running, whatever the score.
//!
//! Choices where the spec is silent: every day with a full 28-day baseline is evaluated (a full
//! rebuild; the table is small), up to the day before the latest series date (the latest day is
//! taken as partial); `detected_at` is the start of the day after `detection_date` in UTC, the
//! earliest a nightly run could have seen it, so reruns are byte-identical; `trigger_mismatch`
//! is not raised (the coverage ratio here is covered treated entries / treated entries, which
//! cannot exceed 1) and `flow_paused` needs a status history the flows API does not keep.
//!
//! Settings (`cfg_settings`): `anomaly_z_threshold` (3.5), `anomaly_min_expected_unsubscribes`
//! (20), `anomaly_min_deliveries` (200), `anomaly_min_expected_complaints` (10, spam complaints
//! and bounces), `anomaly_min_flow_sends` (20), `anomaly_min_treated_entries` (50),
//! `anomaly_min_clicks` (200), `anomaly_min_checkouts` (200).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::error::Result;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::future::BoxFuture;
use md5::{Digest, Md5};

use super::columns::{days, float, int, opt_str, query, settings, text};

pub const MODEL_VERSION: &str = "1.0.0";

/// Baseline length in days.
pub const BASELINE_DAYS: usize = 28;
/// 1.4826 × MAD estimates a standard deviation under normality.
const MAD_SCALE: f64 = 1.4826;

/// How a series' values behave, which sets its scale floor and whether missing days are zeros.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Event counts: a day without a row is 0; floor √expected.
    Count,
    /// A share of a denominator: a day without a row has no value; floor √(e(1 − e)/n).
    Rate,
    /// Money: a day without a row is 0; no floor beyond 1 % of the level.
    Amount,
}

/// Which change counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Direction {
    Up,
    Down,
    /// Falls breach; rises are reported as `info`.
    DownAndUpInfo,
}

/// What must hold before a day is scored.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Gate {
    Expected(f64),
    Denominator(f64),
    BaselineMedian(f64),
    None,
}

/// One monitored metric of models.md 4.14.
struct Metric {
    name: &'static str,
    kind: Kind,
    direction: Direction,
    gate: Gate,
}

/// The settings of the model, from `cfg_settings` with the spec's defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub threshold: f64,
    pub min_expected_unsubscribes: f64,
    pub min_deliveries: f64,
    pub min_expected_complaints: f64,
    pub min_flow_sends: f64,
    pub min_treated_entries: f64,
    pub min_clicks: f64,
    pub min_checkouts: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            threshold: 3.5,
            min_expected_unsubscribes: 20.0,
            min_deliveries: 200.0,
            min_expected_complaints: 10.0,
            min_flow_sends: 20.0,
            min_treated_entries: 50.0,
            min_clicks: 200.0,
            min_checkouts: 200.0,
        }
    }
}

impl Settings {
    fn from_map(map: &BTreeMap<String, String>) -> Self {
        let d = Self::default();
        let get = |key: &str, default: f64| map.get(key).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(default);
        Self {
            threshold: get("anomaly_z_threshold", d.threshold),
            min_expected_unsubscribes: get("anomaly_min_expected_unsubscribes", d.min_expected_unsubscribes),
            min_deliveries: get("anomaly_min_deliveries", d.min_deliveries),
            min_expected_complaints: get("anomaly_min_expected_complaints", d.min_expected_complaints),
            min_flow_sends: get("anomaly_min_flow_sends", d.min_flow_sends),
            min_treated_entries: get("anomaly_min_treated_entries", d.min_treated_entries),
            min_clicks: get("anomaly_min_clicks", d.min_clicks),
            min_checkouts: get("anomaly_min_checkouts", d.min_checkouts),
        }
    }

    fn metric(&self, name: &str) -> Option<Metric> {
        use Direction::*;
        use Kind::*;
        let (kind, direction, gate) = match name {
            "unsubscribes" => (Count, Up, Gate::Expected(self.min_expected_unsubscribes)),
            "unsub_rate" => (Rate, Up, Gate::Denominator(self.min_deliveries)),
            "spam_complaints" | "bounces" => (Count, Up, Gate::Expected(self.min_expected_complaints)),
            "flow_sends" => (Count, Down, Gate::BaselineMedian(self.min_flow_sends)),
            "coverage_ratio" => (Rate, Down, Gate::Denominator(self.min_treated_entries)),
            "flow_click_to_order_rate" => (Rate, Down, Gate::Denominator(self.min_clicks)),
            "shop_orders" => (Count, DownAndUpInfo, Gate::None),
            "shop_net_revenue" => (Amount, DownAndUpInfo, Gate::None),
            "checkout_conversion" => (Rate, Down, Gate::Denominator(self.min_checkouts)),
            _ => return None,
        };
        let name = METRIC_NAMES.iter().find(|n| **n == name)?;
        Some(Metric { name, kind, direction, gate })
    }
}

const METRIC_NAMES: [&str; 10] = [
    "unsubscribes",
    "unsub_rate",
    "spam_complaints",
    "bounces",
    "flow_sends",
    "coverage_ratio",
    "flow_click_to_order_rate",
    "shop_orders",
    "shop_net_revenue",
    "checkout_conversion",
];

/// The score of one day against its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub level: f64,
    pub expected: f64,
    /// Observed − expected.
    pub residual: f64,
    pub median_residual: f64,
    pub mad: f64,
    pub scale: f64,
    pub robust_z: f64,
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

/// Scores `observed` on a day of weekday `weekday` (0–6) against `baseline`: the 28 values
/// before it, oldest first, the first on weekday `first_weekday`. `floor` is the kind's floor
/// for the day's expected value (see the module docs); `None` when the scale is 0.
pub fn score(
    baseline: &[f64],
    first_weekday: usize,
    weekday: usize,
    observed: f64,
    floor: impl Fn(f64) -> f64,
) -> Option<Score> {
    let level = median(&mut baseline.to_vec());
    let zeros = baseline.iter().filter(|v| **v == 0.0).count();
    let additive = level == 0.0 || zeros * 4 >= baseline.len();
    let weekday_of = |i: usize| (first_weekday + i) % 7;
    let mut adjust = [0.0; 7];
    for (w, slot) in adjust.iter_mut().enumerate() {
        let mut values: Vec<f64> =
            baseline.iter().enumerate().filter(|(i, _)| weekday_of(*i) == w).map(|(_, v)| *v).collect();
        let m = median(&mut values);
        *slot = if m.is_nan() {
            if additive { 0.0 } else { 1.0 }
        } else if additive {
            m - level
        } else {
            m / level
        };
    }
    let expect = |w: usize| if additive { level + adjust[w] } else { level * adjust[w] };
    let mut residuals: Vec<f64> = baseline.iter().enumerate().map(|(i, v)| v - expect(weekday_of(i))).collect();
    let median_residual = median(&mut residuals);
    let mut deviations: Vec<f64> = residuals.iter().map(|r| (r - median_residual).abs()).collect();
    let mad = median(&mut deviations);
    let expected = expect(weekday);
    let scale = (MAD_SCALE * mad).max(floor(expected)).max(0.01 * level.abs());
    if scale.is_nan() || scale <= 0.0 {
        return None;
    }
    let residual = observed - expected;
    Some(Score {
        level,
        expected,
        residual,
        median_residual,
        mad,
        scale,
        robust_z: (residual - median_residual) / scale,
    })
}

/// `low` 3.5–5, `high` 5–8, `critical` ≥ 8 (in units of the default threshold's scale).
pub fn severity(z: f64) -> &'static str {
    let z = z.abs();
    if z >= 8.0 {
        "critical"
    } else if z >= 5.0 {
        "high"
    } else {
        "low"
    }
}

/// One series of `int_anomaly_series`: values by day (days since the epoch).
struct Series {
    key: String,
    metric: String,
    platform: String,
    channel: String,
    flow_key: String,
    days: BTreeMap<i32, (f64, Option<i64>)>,
}

/// One breach.
#[derive(Debug, Clone)]
struct Row {
    day: i32,
    series: usize,
    observed: f64,
    score: Option<Score>,
    direction: &'static str,
    severity: &'static str,
    rule: &'static str,
    volume: Option<i64>,
}

/// Builds `fct_anomalies` from `int_anomaly_series` and `cfg_settings`.
pub fn build_anomalies(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(async move {
        let settings = Settings::from_map(&settings(ctx).await?);
        let mut series: BTreeMap<String, Series> = BTreeMap::new();
        let sql = "select series_key, metric, platform, channel, flow_key, series_date, observed, denominator \
                   from int_anomaly_series order by series_key, series_date";
        for b in query(ctx, sql).await? {
            let (key, metric, platform, channel, flow) =
                (text(&b, 0)?, text(&b, 1)?, text(&b, 2)?, text(&b, 3)?, text(&b, 4)?);
            let (date, observed, denominator) = (days(&b, 5)?, float(&b, 6)?, int(&b, 7)?);
            for r in 0..b.num_rows() {
                if !observed.is_valid(r) || !date.is_valid(r) {
                    continue;
                }
                let s = series.entry(key.value(r).to_string()).or_insert_with(|| Series {
                    key: key.value(r).to_string(),
                    metric: metric.value(r).to_string(),
                    platform: opt_str(&platform, r).unwrap_or_default(),
                    channel: opt_str(&channel, r).unwrap_or_default(),
                    flow_key: opt_str(&flow, r).unwrap_or_default(),
                    days: BTreeMap::new(),
                });
                s.days
                    .insert(date.value(r), (observed.value(r), denominator.is_valid(r).then(|| denominator.value(r))));
            }
        }
        let series: Vec<Series> = series.into_values().collect();
        let last = series.iter().filter_map(|s| s.days.keys().next_back().copied()).max();
        let mut rows = Vec::new();
        if let Some(last) = last {
            for (i, s) in series.iter().enumerate() {
                if let Some(metric) = settings.metric(&s.metric) {
                    detect(i, s, &metric, last - 1, &settings, &mut rows);
                }
            }
        }
        ctx.read_batch(batch(&series, &rows)?)
    })
}

/// Scores every day of `s` that has a full baseline, up to `end`, into `rows`.
fn detect(index: usize, s: &Series, metric: &Metric, end: i32, settings: &Settings, rows: &mut Vec<Row>) {
    let Some(&first) = s.days.keys().next() else { return };
    // Days since the epoch: 1970-01-01 was a Thursday; weekday 0 = Monday.
    let weekday = |day: i32| (day + 3).rem_euclid(7) as usize;
    let value = |day: i32| -> Option<(f64, Option<i64>)> {
        match s.days.get(&day) {
            Some(v) => Some(*v),
            None if metric.kind != Kind::Rate => Some((0.0, None)),
            None => None,
        }
    };
    let window = BASELINE_DAYS as i32;
    for day in first + window..=end {
        let Some((observed, denominator)) = value(day) else { continue };
        let baseline: Vec<f64> = (day - window..day).filter_map(|d| value(d).map(|v| v.0)).collect();
        // A rate series needs most of its baseline; counts are complete by construction.
        if baseline.len() < BASELINE_DAYS * 3 / 4 {
            continue;
        }
        let first_weekday = weekday(day - window);
        // The floors use the baseline's own average where the day's expectation can be ~0 (a
        // sparse series' additive level): one unsubscribe on a quiet day is not news.
        let days_with: Vec<(f64, i64)> =
            (day - window..day).filter_map(|d| value(d).and_then(|(v, n)| n.map(|n| (v, n)))).collect();
        let mean_value = baseline.iter().sum::<f64>() / baseline.len() as f64;
        let total_den: i64 = days_with.iter().map(|(_, n)| n).sum();
        let pooled_rate = if total_den > 0 {
            days_with.iter().map(|(v, n)| v * *n as f64).sum::<f64>() / total_den as f64
        } else {
            0.0
        };
        let mean_den = if days_with.is_empty() { 0.0 } else { total_den as f64 / days_with.len() as f64 };
        let floor = |expected: f64| match metric.kind {
            Kind::Count => expected.max(mean_value).max(0.0).sqrt(),
            Kind::Rate => {
                let e = expected.max(pooled_rate).clamp(0.0, 1.0);
                denominator.filter(|n| *n > 0).map_or(0.0, |n| (e * (1.0 - e) / n as f64).sqrt())
            }
            // Revenue moves with the order count: its Poisson noise, carried at the average
            // order value, is expected / sqrt(orders a day).
            Kind::Amount => {
                if mean_den > 0.0 {
                    expected.abs() / mean_den.sqrt()
                } else {
                    0.0
                }
            }
        };
        let Some(sc) = score(&baseline, first_weekday, weekday(day), observed, floor) else { continue };
        let gated = match metric.gate {
            Gate::Expected(min) => sc.expected >= min,
            Gate::Denominator(min) => denominator.is_some_and(|n| n as f64 >= min),
            Gate::BaselineMedian(min) => sc.level >= min,
            Gate::None => true,
        };
        if !gated {
            continue;
        }
        // Small counts: the normal floor understates a Poisson tail (three unsubscribes where one
        // is usual is common), so a breach must also hold on the variance-stabilised score.
        let counts = match metric.kind {
            Kind::Count => Some((observed, sc.expected.max(mean_value))),
            Kind::Rate => denominator.map(|n| (observed * n as f64, sc.expected.max(pooled_rate) * n as f64)),
            Kind::Amount => None,
        };
        let small_count_z = counts.filter(|(_, lambda)| *lambda < SMALL_COUNT).map(|(k, l)| anscombe_z(k, l));
        let confirmed =
            |z: f64| small_count_z.is_none_or(|a| a.signum() == z.signum() && a.abs() >= settings.threshold);
        let volume = denominator.or((metric.kind == Kind::Count).then_some(observed as i64));
        let suppressed = metric.name == "flow_sends" && observed == 0.0 && value(day - 1).is_some_and(|v| v.0 == 0.0);
        let z = sc.robust_z;
        let (direction, severity, rule) = if suppressed {
            ("down", "critical", "flow_suppressed")
        } else {
            match metric.direction {
                Direction::Up if z >= settings.threshold && confirmed(z) => ("up", severity(z), "robust_z"),
                Direction::Down | Direction::DownAndUpInfo if -z >= settings.threshold && confirmed(z) => {
                    ("down", severity(z), "robust_z")
                }
                Direction::DownAndUpInfo if z >= settings.threshold && confirmed(z) => ("up", "info", "robust_z"),
                _ => continue,
            }
        };
        rows.push(Row { day, series: index, observed, score: Some(sc), direction, severity, rule, volume });
    }
}

/// Expected counts below this are checked on the variance-stabilised score as well.
const SMALL_COUNT: f64 = 30.0;

/// Anscombe's variance-stabilised Poisson score of `k` events where `lambda` are expected:
/// `2(√(k + 3/8) − √(λ + 3/8))`, close to a standard normal even for small `lambda`.
pub fn anscombe_z(k: f64, lambda: f64) -> f64 {
    2.0 * ((k.max(0.0) + 0.375).sqrt() - (lambda.max(0.0) + 0.375).sqrt())
}

fn md5_hex(text: &str) -> String {
    format!("{:x}", Md5::digest(text.as_bytes()))
}

/// The output columns, sorted by detection date and series key.
fn batch(series: &[Series], rows: &[Row]) -> Result<RecordBatch> {
    let mut rows: Vec<&Row> = rows.iter().collect();
    rows.sort_by(|a, b| (a.day, &series[a.series].key).cmp(&(b.day, &series[b.series].key)));
    // Episodes: consecutive breaching days of one series.
    let mut starts: BTreeMap<(usize, i32), i32> = BTreeMap::new();
    let mut by_series: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
    for r in &rows {
        by_series.entry(r.series).or_default().push(r.day);
    }
    for (s, days) in by_series {
        let mut start = i32::MIN;
        let mut previous = i32::MIN;
        for d in days {
            if previous == i32::MIN || d != previous + 1 {
                start = d;
            }
            starts.insert((s, d), start);
            previous = d;
        }
    }
    let text_or_null = |v: &str| (!v.is_empty()).then(|| v.to_string());
    let score = |r: &Row, f: fn(&Score) -> f64| r.score.as_ref().map(f);
    let episode_start: Vec<i32> = rows.iter().map(|r| starts[&(r.series, r.day)]).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(rows.iter().map(|r| r.day).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| series[r.series].key.clone()).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| series[r.series].metric.clone()).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| text_or_null(&series[r.series].platform)).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| text_or_null(&series[r.series].channel)).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| text_or_null(&series[r.series].flow_key)).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|r| r.observed).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|r| score(r, |s| s.expected)).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|r| score(r, |s| s.residual)).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|r| score(r, |s| s.scale)).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(rows.iter().map(|r| score(r, |s| s.robust_z)).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.direction).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.severity).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.rule).collect::<Vec<_>>())),
        Arc::new(Date32Array::from(rows.iter().map(|r| r.day - BASELINE_DAYS as i32).collect::<Vec<_>>())),
        Arc::new(Date32Array::from(rows.iter().map(|r| r.day - 1).collect::<Vec<_>>())),
        Arc::new(Int64Array::from(rows.iter().map(|r| r.volume).collect::<Vec<_>>())),
        Arc::new(StringArray::from(
            rows.iter()
                .zip(&episode_start)
                .map(|(r, s)| md5_hex(&format!("{}|{s}", series[r.series].key)))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Date32Array::from(episode_start.clone())),
        Arc::new(
            TimestampMicrosecondArray::from(
                rows.iter().map(|r| i64::from(r.day + 1) * 86_400_000_000).collect::<Vec<_>>(),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec![MODEL_VERSION; rows.len()])),
    ];
    let fields = vec![
        Field::new("detection_date", DataType::Date32, false),
        Field::new("series_key", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("platform", DataType::Utf8, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("flow_key", DataType::Utf8, true),
        Field::new("observed", DataType::Float64, false),
        Field::new("expected", DataType::Float64, true),
        Field::new("residual", DataType::Float64, true),
        Field::new("scale", DataType::Float64, true),
        Field::new("robust_z", DataType::Float64, true),
        Field::new("direction", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("rule", DataType::Utf8, false),
        Field::new("baseline_start", DataType::Date32, false),
        Field::new("baseline_end", DataType::Date32, false),
        Field::new("volume", DataType::Int64, true),
        Field::new("episode_id", DataType::Utf8, false),
        Field::new("episode_start_date", DataType::Date32, false),
        Field::new("detected_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("model_version", DataType::Utf8, false),
    ];
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// models.md 4.14's worked example.
    #[test]
    fn the_worked_example_scores_5_81_with_the_poisson_floor() {
        let baseline = [
            100.0, 112.0, 91.0, 130.0, 104.0, 95.0, 88.0, 108.0, 101.0, 97.0, 117.0, 93.0, 106.0, 90.0, 94.0, 109.0,
            99.0, 126.0, 111.0, 98.0, 84.0, 103.0, 96.0, 104.0, 121.0, 99.0, 100.0, 93.0,
        ];
        let s = score(&baseline, 0, 0, 160.0, |e: f64| e.sqrt()).unwrap();
        assert_eq!(s.level, 100.0);
        assert!((s.expected - 101.5).abs() < 1e-9, "{s:?}");
        assert_eq!(s.median_residual, 0.0);
        assert_eq!(s.mad, 4.0);
        assert!((s.residual - 58.5).abs() < 1e-9);
        assert!((s.scale - 101.5f64.sqrt()).abs() < 1e-9, "the Poisson floor binds: {s:?}");
        assert!((s.robust_z - 5.81).abs() < 0.005, "{s:?}");
        assert_eq!(severity(s.robust_z), "high");
        let no_floor = score(&baseline, 0, 0, 160.0, |_| 0.0).unwrap();
        assert!((no_floor.robust_z - 9.86).abs() < 0.01, "{no_floor:?}");
        assert_eq!(severity(no_floor.robust_z), "critical");
    }

    /// The weekday factors of the worked example (weekday 0 first).
    #[test]
    fn weekday_factors_follow_the_baseline_medians() {
        let baseline = [
            100.0, 112.0, 91.0, 130.0, 104.0, 95.0, 88.0, 108.0, 101.0, 97.0, 117.0, 93.0, 106.0, 90.0, 94.0, 109.0,
            99.0, 126.0, 111.0, 98.0, 84.0, 103.0, 96.0, 104.0, 121.0, 99.0, 100.0, 93.0,
        ];
        let factors = [1.015, 1.05, 0.98, 1.235, 1.015, 0.99, 0.89];
        for (w, f) in factors.iter().enumerate() {
            let s = score(&baseline, 0, w, 100.0, |_| 0.0).unwrap();
            assert!((s.expected - 100.0 * f).abs() < 1e-9, "weekday {w}: {s:?}");
        }
        // Starting the baseline on another weekday shifts which values each weekday owns.
        let s = score(&baseline, 3, 3, 100.0, |_| 0.0).unwrap();
        assert!((s.expected - 101.5).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn a_sparse_series_uses_additive_offsets_and_a_flat_one_has_no_scale() {
        let mut baseline = vec![0.0; 28];
        for i in (0..28).step_by(3) {
            baseline[i] = 2.0;
        }
        let s = score(&baseline, 0, 0, 9.0, |e: f64| e.max(0.0).sqrt()).unwrap();
        assert_eq!(s.level, 0.0);
        assert!(s.expected >= 0.0 && s.robust_z > 3.5, "{s:?}");
        assert!(score(&[0.0; 28], 0, 0, 0.0, |e: f64| e.max(0.0).sqrt()).is_none());
    }

    #[test]
    fn small_counts_need_the_stabilised_score_too() {
        assert!((anscombe_z(25.0, 2.0) - 6.99).abs() < 0.01);
        assert!(anscombe_z(3.0, 1.14).abs() < 1.3, "three where one is usual is not news");
        assert!(anscombe_z(0.0, 25.0) < -8.0, "a silent day where 25 are usual is");
        // An email series that usually sees about one unsubscribe in 300 deliveries: a day with
        // three in 286 scores above 3.5 on the rate's normal floor but is not raised.
        let mut values: Vec<(i32, f64, Option<i64>)> =
            (0..40).map(|d| (d, if d % 3 == 0 { 1.0 / 290.0 } else { 0.0 }, Some(290))).collect();
        values.push((40, 3.0 / 286.0, Some(286)));
        values.push((41, 25.0 / 500.0, Some(500)));
        let mut s = series("unsub_rate", &values);
        s.channel = "email".into();
        let settings = Settings::default();
        let mut rows = Vec::new();
        detect(0, &s, &settings.metric("unsub_rate").unwrap(), 41, &settings, &mut rows);
        let days: Vec<i32> = rows.iter().map(|r| r.day).collect();
        assert_eq!(days, vec![41], "{rows:?}");
    }

    #[test]
    fn severity_bands() {
        assert_eq!(severity(3.6), "low");
        assert_eq!(severity(-5.0), "high");
        assert_eq!(severity(8.0), "critical");
    }

    fn series(metric: &str, values: &[(i32, f64, Option<i64>)]) -> Series {
        Series {
            key: "k".into(),
            metric: metric.into(),
            platform: "klaviyo".into(),
            channel: String::new(),
            flow_key: "f".into(),
            days: values.iter().map(|(d, v, n)| (*d, (*v, *n))).collect(),
        }
    }

    /// A flow that sends about 40 a day goes silent for three days: the first day scores, the
    /// second and third are the suppression rule; no other day breaches.
    #[test]
    fn a_silent_flow_is_found_on_its_first_day_and_then_by_the_rule() {
        let values: Vec<(i32, f64, Option<i64>)> = (0..60)
            .map(|d| (d, if (40..43).contains(&d) { 0.0 } else { 40.0 + f64::from((d * 7) % 5) }, None))
            .collect();
        let values: Vec<_> = values.into_iter().filter(|v| v.1 > 0.0).collect();
        let s = series("flow_sends", &values);
        let settings = Settings::default();
        let mut rows = Vec::new();
        detect(0, &s, &settings.metric("flow_sends").unwrap(), 58, &settings, &mut rows);
        let found: Vec<(i32, &str)> = rows.iter().map(|r| (r.day, r.rule)).collect();
        assert_eq!(found, vec![(40, "robust_z"), (41, "flow_suppressed"), (42, "flow_suppressed")]);
        assert!(rows.iter().all(|r| r.direction == "down"));
        let batch = batch(&[s], &rows).unwrap();
        let episode = batch.column(18).as_any().downcast_ref::<Date32Array>().unwrap();
        assert!(episode.iter().all(|d| d == Some(40)), "one episode from day 40");
    }

    #[test]
    fn small_series_are_gated() {
        // 10 sends a day is below the 20 a day gate: even a silent week raises nothing.
        let values: Vec<_> = (0..60).filter(|d| !(40..47).contains(d)).map(|d| (d, 10.0, None)).collect();
        let s = series("flow_sends", &values);
        let settings = Settings::default();
        let mut rows = Vec::new();
        detect(0, &s, &settings.metric("flow_sends").unwrap(), 58, &settings, &mut rows);
        assert!(rows.is_empty(), "{rows:?}");
    }
}
