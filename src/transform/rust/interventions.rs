//! `fct_intervention_readout`: per intervention of the operating record (`cfg_interventions`,
//! [`crate::operating_record`]), did the flow's revenue per entry move after the change, beyond
//! what moved everywhere else? The difference-in-differences of models.md 3.4 F1, with the same
//! windows and arithmetic as `fct_flow_contribution`'s F1 ([`crate::lift::did`]):
//!
//! * **Windows**: 28 days on each side of `changed_on`, a 3-day buffer dropped around it: before
//!   `[c − 31, c − 4]`, after `[c + 3, c + 30]` (entry dates, local).
//! * **The flow**: its arm-`T` entries (`int_flow_entries`: reachable, not held out; the population
//!   the change reaches) with closed outcome windows; entries the trigger rule rebuilt while the
//!   flow was off count too, so a launch recorded as an intervention reads like F1.
//! * **Baseline**: the live arm-`T` entries of every other revenue flow of another type (as F1)
//!   that has no intervention of its own between the start of the before window and the end of
//!   the after window (F1's comparison is an *unchanged* flow).
//! * **Estimate**: `did_rpe = (RPE_f,after − RPE_f,before) − (RPE_g,after − RPE_g,before)`;
//!   analytic interval from the four groups' sample variances; the headline interval is the
//!   weekly-block Poisson bootstrap over (person, ISO week) blocks (B from
//!   `cfg_settings.lift_bootstrap_replicates`, default 2,000; seed
//!   `md5(intervention_id|flow_key|did|changed_on|model_version)`), analytic when B is 0 or the
//!   bootstrap has too few replicates. `incremental_revenue_after` = `did_rpe` × the after
//!   window's entries.
//! * **Verdict**, first that applies: `unknown_flow` / `ambiguous_flow` (the record's `flow`
//!   matches no flow, or several, by id then by name); `window_open` (the data end before the
//!   after window's last day, or an after-window entry's outcome window still open);
//!   `insufficient_data` (a group under 20 entries, `crate::lift::did::MIN_GROUP_ENTRIES`);
//!   `improved` (headline interval above 0); `worsened` (below 0); else `no_detectable_change`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array};
use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{Field, Schema};
use chrono::{Datelike, NaiveDate};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{DataFrame, SessionContext};
use futures::future::BoxFuture;

use super::columns::{boolean, days, float, int, opt_str, query, settings, text};
use crate::lift::bootstrap::{REPLICATES, seed_for};
use crate::lift::did::{BlockEntry, block_bootstrap_interval, difference_in_differences, group_arms};
use crate::lift::estimator::Z_95;

/// Version of this implementation (models.md 1.6).
pub const MODEL_VERSION: &str = "1.0.0";
/// Days on each side of the change, and the buffer dropped around it (models.md 3.4 F1).
pub const WINDOW_DAYS: i64 = 28;
pub const BUFFER_DAYS: i64 = 3;

/// One entry as the readout uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Obs {
    pub person: String,
    pub date: NaiveDate,
    /// Net revenue in the outcome window.
    pub y: f64,
    /// The outcome window has closed.
    pub closed: bool,
}

/// The before and after windows of a change on `c`, inclusive.
pub fn windows(c: NaiveDate) -> ((NaiveDate, NaiveDate), (NaiveDate, NaiveDate)) {
    let d = chrono::Duration::days;
    (
        (c - d(BUFFER_DAYS + WINDOW_DAYS), c - d(BUFFER_DAYS + 1)),
        (c + d(BUFFER_DAYS), c + d(BUFFER_DAYS + WINDOW_DAYS - 1)),
    )
}

/// The figures of one intervention.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readout {
    pub entries: [i64; 4],
    /// Revenue per entry of the flow before, after, the baseline before, after.
    pub rpe: [Option<f64>; 4],
    pub did: Option<f64>,
    pub analytic: Option<(f64, f64)>,
    pub bootstrap: Option<(f64, f64)>,
    pub verdict: &'static str,
}

impl Readout {
    /// The headline interval: the bootstrap's when there is one.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.bootstrap.or(self.analytic)
    }
}

/// Reads one change on `change` out of the flow's entries and the baseline's (both already
/// restricted to the right arms; entries outside the windows are ignored). `data_end` is the last
/// date the data covers.
pub fn read_out(
    change: NaiveDate,
    flow: &[Obs],
    baseline: &[Obs],
    data_end: NaiveDate,
    replicates: usize,
    seed: u64,
    threads: usize,
) -> Readout {
    let (before, after) = windows(change);
    let inside = |o: &Obs, w: (NaiveDate, NaiveDate)| o.date >= w.0 && o.date <= w.1;
    let mut block_of: HashMap<(&str, i32, u32), u32> = HashMap::new();
    let mut groups = Vec::new();
    let mut open = false;
    for (offset, side) in [(0, flow), (2, baseline)] {
        for o in side {
            let group = if inside(o, before) {
                offset
            } else if inside(o, after) {
                offset + 1
            } else {
                continue;
            };
            if !o.closed {
                open |= group == 1;
                continue;
            }
            let week = o.date.iso_week();
            let next = block_of.len() as u32;
            let block = *block_of.entry((o.person.as_str(), week.year(), week.week())).or_insert(next);
            groups.push(BlockEntry { group, block, y: o.y });
        }
    }
    // `group_arms` and the DiD take (f_on, f_off, g_on, g_off): after is "on" here.
    let arms = group_arms(&groups);
    let mut r = Readout {
        entries: std::array::from_fn(|g| arms[g].n as i64),
        rpe: std::array::from_fn(|g| (arms[g].n > 0.0).then(|| arms[g].mean())),
        ..Readout::default()
    };
    if open || data_end < after.1 {
        r.verdict = "window_open";
        return r;
    }
    let Some((did, se)) = difference_in_differences(&arms[1], &arms[0], &arms[3], &arms[2]) else {
        r.verdict = "insufficient_data";
        return r;
    };
    r.did = Some(did);
    r.analytic = Some((did - Z_95 * se, did + Z_95 * se));
    if replicates > 0 {
        // The bootstrap's groups in its own order: 0 flow on (after), 1 flow off (before), ...
        let swapped: Vec<BlockEntry> =
            groups.iter().map(|e| BlockEntry { group: [1, 0, 3, 2][e.group], ..*e }).collect();
        r.bootstrap = block_bootstrap_interval(&swapped, block_of.len(), replicates, seed, threads);
    }
    let (lo, hi) = r.interval().expect("analytic set");
    r.verdict = if lo > 0.0 {
        "improved"
    } else if hi < 0.0 {
        "worsened"
    } else {
        "no_detectable_change"
    };
    r
}

#[derive(Debug, Clone)]
struct Flow {
    key: String,
    platform: String,
    id: String,
    name: Option<String>,
    flow_type: String,
    window: Option<i64>,
    revenue_flow: bool,
}

#[derive(Debug, Clone)]
struct Intervention {
    id: String,
    platform: String,
    flow: String,
    changed_on: NaiveDate,
    text: [Option<String>; 4],
}

const FLOWS_SQL: &str = "\
select flow_key, platform, flow_id, flow_name, flow_type, window_days, is_revenue_flow
from int_flows where flow_type <> 'transactional' order by flow_key";

const INTERVENTIONS_SQL: &str = "\
select intervention_id, coalesce(platform, 'klaviyo'), flow, changed_on, change, hypothesis, expected_effect, owner
from cfg_interventions order by intervention_id";

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")
}

fn to_days(d: NaiveDate) -> i32 {
    (d - epoch()).num_days() as i32
}

fn exec(msg: String) -> DataFusionError {
    DataFusionError::Execution(msg)
}

/// Builds `fct_intervention_readout`.
pub fn build_intervention_readout(ctx: &SessionContext) -> BoxFuture<'_, Result<DataFrame>> {
    Box::pin(async move {
        let settings = settings(ctx).await?;
        let replicates = match settings.get("lift_bootstrap_replicates") {
            Some(v) => v.parse().map_err(|_| exec(format!("cfg_settings lift_bootstrap_replicates: {v:?}")))?,
            None => REPLICATES,
        };
        let mut interventions = Vec::new();
        for b in query(ctx, INTERVENTIONS_SQL).await? {
            let t: Vec<StringArray> = (0..8).map(|i| text(&b, i)).collect::<Result<_>>()?;
            for r in 0..b.num_rows() {
                let id =
                    opt_str(&t[0], r).ok_or_else(|| exec("cfg_interventions: a row without intervention_id".into()))?;
                let field = |i: usize, name: &str| {
                    opt_str(&t[i], r).ok_or_else(|| exec(format!("cfg_interventions {id:?}: {name} is empty")))
                };
                let date = field(3, "changed_on")?;
                let changed_on = NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                    .map_err(|_| exec(format!("cfg_interventions {id:?}: changed_on {date:?} is not YYYY-MM-DD")))?;
                interventions.push(Intervention {
                    platform: field(1, "platform")?,
                    flow: field(2, "flow")?,
                    changed_on,
                    text: [opt_str(&t[4], r), opt_str(&t[5], r), opt_str(&t[6], r), opt_str(&t[7], r)],
                    id,
                });
            }
        }
        let mut flows = Vec::new();
        for b in query(ctx, FLOWS_SQL).await? {
            let t: Vec<StringArray> = (0..5).map(|i| text(&b, i)).collect::<Result<_>>()?;
            let (w, rev) = (int(&b, 5)?, boolean(&b, 6)?);
            for r in 0..b.num_rows() {
                flows.push(Flow {
                    key: t[0].value(r).into(),
                    platform: t[1].value(r).into(),
                    id: t[2].value(r).into(),
                    name: opt_str(&t[3], r),
                    flow_type: t[4].value(r).into(),
                    window: arrow::array::Array::is_valid(&w, r).then(|| w.value(r)),
                    revenue_flow: rev.value(r),
                });
            }
        }
        // Only the entries inside some intervention's windows are read.
        let mut entries: BTreeMap<String, Vec<(Obs, bool)>> = BTreeMap::new();
        let mut data_end = None;
        if !interventions.is_empty() {
            let ranges: Vec<String> = interventions
                .iter()
                .map(|i| {
                    let (b, a) = windows(i.changed_on);
                    format!("(entry_date between date '{}' and date '{}')", b.0, a.1)
                })
                .collect();
            let sql = format!(
                "select flow_key, person_key, entry_date, window_closed, y_revenue, flow_live \
                 from int_flow_entries where arm = 'T' and ({}) order by flow_key, entry_at, person_key, entry_key",
                ranges.join(" or ")
            );
            for b in query(ctx, &sql).await? {
                let (key, person, date) = (text(&b, 0)?, text(&b, 1)?, days(&b, 2)?);
                let (closed, y, live) = (boolean(&b, 3)?, float(&b, 4)?, boolean(&b, 5)?);
                for r in 0..b.num_rows() {
                    let obs = Obs {
                        person: person.value(r).into(),
                        date: epoch() + chrono::Duration::days(i64::from(date.value(r))),
                        y: y.value(r),
                        closed: closed.value(r),
                    };
                    entries.entry(key.value(r).to_string()).or_default().push((obs, live.value(r)));
                }
            }
            let b = query(ctx, "select max(entry_date) from int_flow_entries").await?;
            data_end = b.first().filter(|b| b.num_rows() > 0).and_then(|b| {
                let d = days(b, 0).ok()?;
                arrow::array::Array::is_valid(&d, 0).then(|| epoch() + chrono::Duration::days(i64::from(d.value(0))))
            });
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut rows = Vec::new();
        for i in &interventions {
            let matches: Vec<&Flow> = {
                let on = |f: &&Flow| f.platform == i.platform;
                let by_id: Vec<&Flow> = flows.iter().filter(on).filter(|f| f.id == i.flow).collect();
                if by_id.is_empty() {
                    flows.iter().filter(on).filter(|f| f.name.as_deref() == Some(i.flow.as_str())).collect()
                } else {
                    by_id
                }
            };
            let flow = match matches.as_slice() {
                [f] => *f,
                [] => {
                    rows.push(Row { verdict: "unknown_flow", ..Row::new(i) });
                    continue;
                }
                _ => {
                    rows.push(Row { verdict: "ambiguous_flow", ..Row::new(i) });
                    continue;
                }
            };
            let (before, after) = windows(i.changed_on);
            let changed_too = |g: &Flow| {
                interventions.iter().any(|o| {
                    o.id != i.id
                        && o.platform == g.platform
                        && (o.flow == g.id || Some(&o.flow) == g.name.as_ref())
                        && o.changed_on >= before.0
                        && o.changed_on <= after.1
                })
            };
            let none = Vec::new();
            let own: Vec<Obs> = entries
                .get(&flow.key)
                .unwrap_or(&none)
                .iter()
                .filter(|(o, _)| o.date >= before.0 && o.date <= after.1)
                .map(|(o, _)| o.clone())
                .collect();
            let comparison: Vec<&Flow> = flows
                .iter()
                .filter(|g| g.key != flow.key && g.flow_type != flow.flow_type && g.revenue_flow && !changed_too(g))
                .collect();
            let mut baseline = Vec::new();
            let mut used = 0;
            for g in &comparison {
                let live: Vec<Obs> = entries
                    .get(&g.key)
                    .unwrap_or(&none)
                    .iter()
                    .filter(|(o, live)| *live && o.date >= before.0 && o.date <= after.1)
                    .map(|(o, _)| o.clone())
                    .collect();
                used += i32::from(!live.is_empty());
                baseline.extend(live);
            }
            let seed = seed_for(&format!("{}|{}|did", i.id, flow.key), &i.changed_on.to_string(), MODEL_VERSION);
            let readout =
                read_out(i.changed_on, &own, &baseline, data_end.unwrap_or(NaiveDate::MIN), replicates, seed, threads);
            rows.push(Row {
                flow: Some(flow.clone()),
                readable_from: flow.window.map(|w| after.1 + chrono::Duration::days(w + 1)),
                baseline_flows: used,
                verdict: readout.verdict,
                readout,
                ..Row::new(i)
            });
        }
        ctx.read_batch(batch(&rows, replicates)?)
    })
}

struct Row {
    intervention: Intervention,
    flow: Option<Flow>,
    readable_from: Option<NaiveDate>,
    baseline_flows: i32,
    readout: Readout,
    verdict: &'static str,
}

impl Row {
    fn new(i: &Intervention) -> Self {
        Row {
            intervention: i.clone(),
            flow: None,
            readable_from: None,
            baseline_flows: 0,
            readout: Readout::default(),
            verdict: "",
        }
    }
}

fn batch(rows: &[Row], replicates: usize) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    let mut push = |name: &str, nullable: bool, a: ArrayRef| {
        fields.push(Field::new(name, a.data_type().clone(), nullable));
        arrays.push(a);
    };
    let text = |f: &dyn Fn(&Row) -> Option<String>| Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()));
    let date = |f: &dyn Fn(&Row) -> Option<NaiveDate>| {
        Arc::new(Date32Array::from(rows.iter().map(|r| f(r).map(to_days)).collect::<Vec<_>>()))
    };
    let float = |f: &dyn Fn(&Row) -> Option<f64>| Arc::new(Float64Array::from(rows.iter().map(f).collect::<Vec<_>>()));
    let money = |f: &dyn Fn(&Row) -> Option<f64>| -> Result<ArrayRef> {
        let a = Decimal128Array::from(rows.iter().map(|r| f(r).map(|x| (x * 1e4).round() as i128)).collect::<Vec<_>>());
        Ok(Arc::new(a.with_precision_and_scale(18, 4)?))
    };
    let windows_of = |r: &Row| windows(r.intervention.changed_on);
    push("intervention_id", false, text(&|r| Some(r.intervention.id.clone())));
    push("platform", false, text(&|r| Some(r.intervention.platform.clone())));
    push("flow", false, text(&|r| Some(r.intervention.flow.clone())));
    push("flow_key", true, text(&|r| r.flow.as_ref().map(|f| f.key.clone())));
    push("flow_id", true, text(&|r| r.flow.as_ref().map(|f| f.id.clone())));
    push("flow_name", true, text(&|r| r.flow.as_ref().and_then(|f| f.name.clone())));
    push("flow_type", true, text(&|r| r.flow.as_ref().map(|f| f.flow_type.clone())));
    push("changed_on", false, date(&|r| Some(r.intervention.changed_on)));
    for (k, name) in ["change", "hypothesis", "expected_effect", "owner"].iter().enumerate() {
        push(name, k == 3, text(&|r| r.intervention.text[k].clone()));
    }
    push("before_start", false, date(&|r| Some(windows_of(r).0.0)));
    push("before_end", false, date(&|r| Some(windows_of(r).0.1)));
    push("after_start", false, date(&|r| Some(windows_of(r).1.0)));
    push("after_end", false, date(&|r| Some(windows_of(r).1.1)));
    push("readable_from", true, date(&|r| r.readable_from));
    let counts = |g: usize| Arc::new(Int64Array::from(rows.iter().map(|r| r.readout.entries[g]).collect::<Vec<_>>()));
    push("entries_before", false, counts(0));
    push("entries_after", false, counts(1));
    push("rpe_before", true, float(&|r| r.readout.rpe[0]));
    push("rpe_after", true, float(&|r| r.readout.rpe[1]));
    push(
        "baseline_flows",
        false,
        Arc::new(Int32Array::from(rows.iter().map(|r| r.baseline_flows).collect::<Vec<_>>())),
    );
    push("baseline_entries_before", false, counts(2));
    push("baseline_entries_after", false, counts(3));
    push("baseline_rpe_before", true, float(&|r| r.readout.rpe[2]));
    push("baseline_rpe_after", true, float(&|r| r.readout.rpe[3]));
    push("did_rpe", true, float(&|r| r.readout.did));
    push("did_rpe_ci_low", true, float(&|r| r.readout.interval().map(|i| i.0)));
    push("did_rpe_ci_high", true, float(&|r| r.readout.interval().map(|i| i.1)));
    push("did_rpe_ci_low_analytic", true, float(&|r| r.readout.analytic.map(|i| i.0)));
    push("did_rpe_ci_high_analytic", true, float(&|r| r.readout.analytic.map(|i| i.1)));
    push("did_pct", true, float(&|r| r.readout.did.zip(r.readout.rpe[0]).and_then(|(d, b)| (b != 0.0).then(|| d / b))));
    let n_after = |r: &Row| r.readout.entries[1] as f64;
    push("incremental_revenue_after", true, money(&|r| r.readout.did.map(|d| d * n_after(r)))?);
    push("incremental_revenue_after_ci_low", true, money(&|r| r.readout.interval().map(|i| i.0 * n_after(r)))?);
    push("incremental_revenue_after_ci_high", true, money(&|r| r.readout.interval().map(|i| i.1 * n_after(r)))?);
    push(
        "ci_method",
        true,
        text(&|r| {
            r.readout.did.map(|_| {
                if r.readout.bootstrap.is_some() {
                    format!("weekly_block_bootstrap_{replicates}")
                } else {
                    "analytic".to_string()
                }
            })
        }),
    );
    push("verdict", false, text(&|r| Some(r.verdict.to_string())));
    push("model_version", false, text(&|_| Some(MODEL_VERSION.to_string())));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// `n` entries on `date` by distinct persons (`tag` keeps groups apart), the first `buyers`
    /// of them spending 50.
    fn group(tag: &str, date: &str, n: usize, buyers: usize) -> Vec<Obs> {
        (0..n)
            .map(|k| Obs {
                person: format!("{tag}{k}"),
                date: d(date),
                y: if k < buyers { 50.0 } else { 0.0 },
                closed: true,
            })
            .collect()
    }

    #[test]
    fn windows_drop_a_three_day_buffer_around_the_change() {
        let (before, after) = windows(d("2026-04-14"));
        assert_eq!(before, (d("2026-03-14"), d("2026-04-10")));
        assert_eq!(after, (d("2026-04-17"), d("2026-05-14")));
        assert_eq!((before.1 - before.0).num_days() + 1, 28);
        assert_eq!((after.1 - after.0).num_days() + 1, 28);
    }

    #[test]
    fn the_readout_by_hand() {
        // Change on 2026-04-14. The flow: before 20 entries, 4 buyers of 50 (RPE 10.00); after
        // 25 entries, 10 buyers (RPE 20.00). Baseline: before 40 entries, 8 buyers (10.00); after
        // 40, 10 buyers (12.50). DiD = (20 − 10) − (12.5 − 10) = 7.50 per entry; times 25 entries
        // after = 187.50. Sample variances (Σy² − (Σy)²/n)/(n − 1) over n: 8,000/19/20 = 21.0526,
        // 15,000/24/25 = 25.0000, 16,000/39/40 = 10.2564, 18,750/39/40 = 12.0192; sum 68.3283,
        // s.e. 8.26609, 95 % interval 7.5 ± 1.959964 × 8.26609 = [−8.7012, 23.7012]: contains 0.
        let mut flow = group("f", "2026-04-01", 20, 4);
        flow.extend(group("f", "2026-04-20", 25, 10));
        // Inside the buffer (2026-04-11..16) and outside both windows: ignored.
        flow.extend(group("x", "2026-04-12", 30, 30));
        flow.extend(group("y", "2026-05-15", 30, 30));
        let mut baseline = group("g", "2026-03-20", 40, 8);
        baseline.extend(group("g", "2026-05-01", 40, 10));
        let r = read_out(d("2026-04-14"), &flow, &baseline, d("2026-10-30"), 0, 1, 1);
        assert_eq!(r.entries, [20, 25, 40, 40]);
        assert_eq!(r.rpe, [Some(10.0), Some(20.0), Some(10.0), Some(12.5)]);
        assert!((r.did.unwrap() - 7.5).abs() < 1e-12);
        let (lo, hi) = r.analytic.unwrap();
        assert!((lo + 8.7012).abs() < 1e-3 && (hi - 23.7012).abs() < 1e-3, "[{lo}, {hi}]");
        assert_eq!((r.bootstrap, r.verdict), (None, "no_detectable_change"));

        // 20 buyers of 25 after (RPE 40.00): DiD 27.50; the after group's variance term becomes
        // 10,000/24/25 = 16.6667, s.e. 7.7456, interval [12.32, 42.68]: improved. Half the
        // flow's entrants buying before (RPE 25.00) and none after: DiD −27.50, s.e. 7.4277,
        // interval [−42.06, −12.94]: worsened.
        let mut better = group("f", "2026-04-01", 20, 4);
        better.extend(group("f", "2026-04-20", 25, 20));
        let r = read_out(d("2026-04-14"), &better, &baseline, d("2026-10-30"), 0, 1, 1);
        assert!((r.did.unwrap() - 27.5).abs() < 1e-12);
        assert_eq!(r.verdict, "improved");
        let mut worse = group("f", "2026-04-01", 20, 10);
        worse.extend(group("f", "2026-04-20", 25, 0));
        assert_eq!(read_out(d("2026-04-14"), &worse, &baseline, d("2026-10-30"), 0, 1, 1).verdict, "worsened");

        // So few entries that most bootstrap replicates leave a group under 20 (weighted): no
        // bootstrap interval, the analytic one is the headline.
        let r = read_out(d("2026-04-14"), &flow, &baseline, d("2026-10-30"), 2000, 7, 2);
        assert_eq!((r.bootstrap, r.interval()), (None, r.analytic));
        // Five times the entries at the same rates: the same DiD, the analytic half-width over
        // sqrt(5); the weekly-block bootstrap is the headline, near the analytic interval.
        let mut flow5 = group("f", "2026-04-01", 100, 20);
        flow5.extend(group("f", "2026-04-20", 125, 50));
        let mut baseline5 = group("g", "2026-03-20", 200, 40);
        baseline5.extend(group("g", "2026-05-01", 200, 50));
        let r = read_out(d("2026-04-14"), &flow5, &baseline5, d("2026-10-30"), 2000, 7, 2);
        let (lo, hi) = r.analytic.unwrap();
        assert!((r.did.unwrap() - 7.5).abs() < 1e-12 && (hi - lo) < 2.0 * 16.21 / 5f64.sqrt() * 1.01);
        let (b_lo, b_hi) = r.bootstrap.unwrap();
        assert!(b_lo < 7.5 && 7.5 < b_hi && r.interval() == r.bootstrap, "[{b_lo}, {b_hi}]");
        assert!(((b_hi - b_lo) - (hi - lo)).abs() < 0.15 * (hi - lo), "bootstrap [{b_lo}, {b_hi}] vs [{lo}, {hi}]");
    }

    #[test]
    fn open_windows_and_thin_groups_give_no_estimate() {
        let mut flow = group("f", "2026-04-01", 20, 4);
        flow.extend(group("f", "2026-04-20", 25, 10));
        let mut baseline = group("g", "2026-03-20", 40, 8);
        baseline.extend(group("g", "2026-05-01", 40, 10));
        // The data ends before the after window does.
        let r = read_out(d("2026-04-14"), &flow, &baseline, d("2026-05-13"), 0, 1, 1);
        assert_eq!((r.verdict, r.did), ("window_open", None));
        // An after-window entry whose outcome window is still open.
        let mut pending = flow.clone();
        pending[30].closed = false;
        let r = read_out(d("2026-04-14"), &pending, &baseline, d("2026-10-30"), 0, 1, 1);
        assert_eq!((r.verdict, r.entries[1]), ("window_open", 24));
        // 19 entries before: under the 20 each group needs.
        let r = read_out(d("2026-04-14"), &flow[1..], &baseline, d("2026-10-30"), 0, 1, 1);
        assert_eq!((r.verdict, r.did, r.entries[0]), ("insufficient_data", None, 19));
    }
}
