//! The operating record: a TOML file beside the job (`[job] operating_record`, relative to the
//! job file) where the CRM lead writes down what was changed in which flow and why, and queues the
//! hypotheses to test next. It reaches the transform as two seed tables, `cfg_interventions` and
//! `cfg_hypotheses` (text columns, as every seed), so `fct_intervention_readout` and
//! `fct_hypothesis_queue` read it like any other configuration.
//!
//! ```toml
//! [[intervention]]
//! id = "ac-2026-04-subject"
//! flow = "Abandoned Checkout"          # the flow's name as written on the platform, or its id
//! platform = "klaviyo"                 # default klaviyo
//! changed_on = "2026-04-14"            # local date the change went live (a TOML date works too)
//! change = "First email: subject line names the product left behind"
//! hypothesis = "A concrete subject brings more checkouts back"
//! expected_effect = "+10 % revenue per entry"
//! owner = "CRM lead"                   # optional
//!
//! [[hypothesis]]
//! id = "H-winback-sms"
//! flow = "Win-Back"                    # optional
//! hypothesis = "An SMS on day 3 of win-back brings lapsed buyers back sooner"
//! expected_effect = "+5 % revenue per entry"
//! priority = 1                         # optional; 1 is tested first
//! status = "queued"                    # queued | running | done (default queued)
//! ```

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Columns of the `cfg_interventions` seed.
pub const INTERVENTION_COLUMNS: &[&str] =
    &["intervention_id", "platform", "flow", "changed_on", "change", "hypothesis", "expected_effect", "owner"];
/// Columns of the `cfg_hypotheses` seed.
pub const HYPOTHESIS_COLUMNS: &[&str] =
    &["hypothesis_id", "platform", "flow", "hypothesis", "expected_effect", "priority", "status"];
/// Accepted hypothesis statuses.
pub const STATUSES: &[&str] = &["queued", "running", "done"];
const PLATFORMS: &[&str] = &["klaviyo", "attentive", "postscript"];

/// One recorded change.
#[derive(Debug, Clone, PartialEq)]
pub struct Intervention {
    pub id: String,
    pub platform: String,
    pub flow: String,
    pub changed_on: NaiveDate,
    pub change: String,
    pub hypothesis: String,
    pub expected_effect: String,
    pub owner: Option<String>,
}

/// One hypothesis in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    pub id: String,
    pub platform: String,
    pub flow: Option<String>,
    pub hypothesis: String,
    pub expected_effect: String,
    pub priority: Option<u32>,
    pub status: String,
}

/// A parsed, validated operating record.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatingRecord {
    /// Where it came from (names the file in errors and in `check`).
    pub origin: String,
    pub interventions: Vec<Intervention>,
    pub hypotheses: Vec<Hypothesis>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    intervention: Vec<toml::Value>,
    #[serde(default)]
    hypothesis: Vec<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntervention {
    id: String,
    flow: String,
    #[serde(default)]
    platform: Option<String>,
    changed_on: toml::Value,
    change: String,
    hypothesis: String,
    expected_effect: String,
    #[serde(default)]
    owner: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHypothesis {
    id: String,
    #[serde(default)]
    flow: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    hypothesis: String,
    expected_effect: String,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    status: Option<String>,
}

impl OperatingRecord {
    /// Parses and validates the record's text; `origin` names the file in every error, which also
    /// names the entry (`intervention 2 (id "...")`) and the field.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let fail = |msg: String| Error::config(format!("operating record {origin}: {msg}"));
        let shape: FileShape = toml::from_str(text).map_err(|e| fail(e.to_string().trim_end().to_string()))?;
        let entry_name = |kind: &str, i: usize, v: &toml::Value| match v.get("id").and_then(|id| id.as_str()) {
            Some(id) => format!("{kind} {} (id {id:?})", i + 1),
            None => format!("{kind} {}", i + 1),
        };
        let field = |entry: &str, key: &str, why: &str| fail(format!("{entry}: field `{key}`: {why}"));
        let nonempty = |entry: &str, key: &str, v: &str| {
            if v.trim().is_empty() { Err(field(entry, key, "must not be empty")) } else { Ok(v.trim().to_string()) }
        };
        let platform = |entry: &str, p: Option<String>| {
            let p = p.map(|p| p.trim().to_string()).unwrap_or_else(|| "klaviyo".into());
            if PLATFORMS.contains(&p.as_str()) {
                Ok(p)
            } else {
                Err(field(entry, "platform", &format!("expected one of {}, got {p:?}", PLATFORMS.join(", "))))
            }
        };
        let mut interventions = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, value) in shape.intervention.iter().enumerate() {
            let entry = entry_name("intervention", i, value);
            let raw = RawIntervention::deserialize(value.clone())
                .map_err(|e| fail(format!("{entry}: {}", e.to_string().trim_end())))?;
            let id = nonempty(&entry, "id", &raw.id)?;
            if !ids.insert(id.clone()) {
                return Err(field(&entry, "id", "another intervention has the same id"));
            }
            let changed_on = match &raw.changed_on {
                toml::Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok(),
                toml::Value::Datetime(d) => match (d.date, d.time) {
                    (Some(date), None) => {
                        NaiveDate::from_ymd_opt(i32::from(date.year), u32::from(date.month), u32::from(date.day))
                    }
                    _ => None,
                },
                _ => None,
            }
            .ok_or_else(|| {
                field(&entry, "changed_on", &format!("expected a date YYYY-MM-DD, got {}", raw.changed_on))
            })?;
            interventions.push(Intervention {
                platform: platform(&entry, raw.platform)?,
                flow: nonempty(&entry, "flow", &raw.flow)?,
                changed_on,
                change: nonempty(&entry, "change", &raw.change)?,
                hypothesis: nonempty(&entry, "hypothesis", &raw.hypothesis)?,
                expected_effect: nonempty(&entry, "expected_effect", &raw.expected_effect)?,
                owner: raw.owner.map(|o| o.trim().to_string()).filter(|o| !o.is_empty()),
                id,
            });
        }
        let mut hypotheses = Vec::new();
        let mut ids = BTreeSet::new();
        for (i, value) in shape.hypothesis.iter().enumerate() {
            let entry = entry_name("hypothesis", i, value);
            let raw = RawHypothesis::deserialize(value.clone())
                .map_err(|e| fail(format!("{entry}: {}", e.to_string().trim_end())))?;
            let id = nonempty(&entry, "id", &raw.id)?;
            if !ids.insert(id.clone()) {
                return Err(field(&entry, "id", "another hypothesis has the same id"));
            }
            let priority = match raw.priority {
                None => None,
                Some(p) if (1..=i64::from(u32::MAX)).contains(&p) => Some(p as u32),
                Some(p) => return Err(field(&entry, "priority", &format!("expected a positive integer, got {p}"))),
            };
            let status = raw.status.map(|s| s.trim().to_string()).unwrap_or_else(|| "queued".into());
            if !STATUSES.contains(&status.as_str()) {
                return Err(field(
                    &entry,
                    "status",
                    &format!("expected one of {}, got {status:?}", STATUSES.join(", ")),
                ));
            }
            hypotheses.push(Hypothesis {
                platform: platform(&entry, raw.platform)?,
                flow: raw.flow.map(|f| f.trim().to_string()).filter(|f| !f.is_empty()),
                hypothesis: nonempty(&entry, "hypothesis", &raw.hypothesis)?,
                expected_effect: nonempty(&entry, "expected_effect", &raw.expected_effect)?,
                priority,
                status,
                id,
            });
        }
        Ok(Self { origin: origin.to_string(), interventions, hypotheses })
    }

    /// Reads and parses a record file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config_with(format!("cannot read operating record {}", path.display()), e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The `cfg_interventions` rows, in [`INTERVENTION_COLUMNS`] order.
    pub fn intervention_rows(&self) -> Vec<Vec<String>> {
        self.interventions
            .iter()
            .map(|i| {
                vec![
                    i.id.clone(),
                    i.platform.clone(),
                    i.flow.clone(),
                    i.changed_on.to_string(),
                    i.change.clone(),
                    i.hypothesis.clone(),
                    i.expected_effect.clone(),
                    i.owner.clone().unwrap_or_default(),
                ]
            })
            .collect()
    }

    /// The `cfg_hypotheses` rows, in [`HYPOTHESIS_COLUMNS`] order.
    pub fn hypothesis_rows(&self) -> Vec<Vec<String>> {
        self.hypotheses
            .iter()
            .map(|h| {
                vec![
                    h.id.clone(),
                    h.platform.clone(),
                    h.flow.clone().unwrap_or_default(),
                    h.hypothesis.clone(),
                    h.expected_effect.clone(),
                    h.priority.map(|p| p.to_string()).unwrap_or_default(),
                    h.status.clone(),
                ]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[intervention]]
id = "ac-subject"
flow = "Abandoned Checkout"
changed_on = 2026-04-14
change = "Subject names the product"
hypothesis = "Concrete subjects recover more checkouts"
expected_effect = "+10 % revenue per entry"

[[intervention]]
id = "browse-delay"
flow = "Browse Abandonment"
platform = "klaviyo"
changed_on = "2026-06-02"
change = "First email after 1 h instead of 3 h"
hypothesis = "Sooner is better for browsers"
expected_effect = "+5 % revenue per entry"
owner = "CRM lead"

[[hypothesis]]
id = "H1"
flow = "Win-Back"
hypothesis = "An SMS on day 3"
expected_effect = "+5 %"
priority = 1
"#;

    #[test]
    fn a_record_parses_into_seed_rows() {
        let r = OperatingRecord::parse(GOOD, "jobs/acme-operating-record.toml").unwrap();
        assert_eq!(r.interventions.len(), 2);
        assert_eq!(r.interventions[0].changed_on, NaiveDate::from_ymd_opt(2026, 4, 14).unwrap());
        assert_eq!(r.interventions[1].changed_on, NaiveDate::from_ymd_opt(2026, 6, 2).unwrap());
        assert_eq!(r.intervention_rows()[0][1], "klaviyo");
        assert_eq!(r.intervention_rows()[0].len(), INTERVENTION_COLUMNS.len());
        assert_eq!(
            r.hypothesis_rows(),
            vec![vec!["H1", "klaviyo", "Win-Back", "An SMS on day 3", "+5 %", "1", "queued"]]
        );
    }

    #[test]
    fn the_demo_record_parses_and_the_demo_job_names_it() {
        let job = crate::demo::demo_job(&std::env::temp_dir(), "http://127.0.0.1:1", "http://127.0.0.1:2").unwrap();
        assert_eq!(job.file.job.operating_record.as_deref(), Some("demo-operating-record.toml"));
        let record = job.operating_record.unwrap();
        assert_eq!((record.interventions.len(), record.hypotheses.len()), (2, 3));
        assert!(record.hypotheses.iter().all(|h| h.status == "queued"));
    }

    #[test]
    fn a_bad_record_names_the_file_the_entry_and_the_field() {
        let err = |text: &str| OperatingRecord::parse(text, "jobs/acme-operating-record.toml").unwrap_err().to_string();
        let bad_date = err(&GOOD.replace("\"2026-06-02\"", "\"2026-13-02\""));
        for part in ["jobs/acme-operating-record.toml", "intervention 2", "browse-delay", "`changed_on`", "2026-13-02"]
        {
            assert!(bad_date.contains(part), "{part}: {bad_date}");
        }
        let missing = err(&GOOD.replace("expected_effect = \"+10 % revenue per entry\"\n", ""));
        assert!(
            missing.contains("intervention 1 (id \"ac-subject\")") && missing.contains("expected_effect"),
            "{missing}"
        );
        let unknown = err(&GOOD.replace("priority = 1", "priorty = 1"));
        assert!(unknown.contains("hypothesis 1") && unknown.contains("priorty"), "{unknown}");
        let status = err(&GOOD.replace("priority = 1", "status = \"someday\""));
        assert!(status.contains("`status`") && status.contains("queued, running, done"), "{status}");
        let dup = err(&GOOD.replace("browse-delay", "ac-subject"));
        assert!(dup.contains("intervention 2") && dup.contains("same id"), "{dup}");
        let section = err(&format!("{GOOD}\n[[interventions]]\nid = \"x\"\n"));
        assert!(section.contains("interventions"), "{section}");
    }
}
