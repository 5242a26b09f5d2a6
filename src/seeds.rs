//! Seeds: the CSV tables people maintain (models.md 4.1), beside the job file in
//! `jobs/<job>/seeds/`. A file the job does not have falls back to the shipped default
//! (`jobs/defaults/seeds/`, embedded in the binary). Every column is loaded as text; models
//! cast what they use.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use include_dir::{Dir, include_dir};

use crate::config::Job;
use crate::error::{Error, Result};

static DEFAULTS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/jobs/defaults/seeds");

/// Every seed and the columns it must have.
pub const SEEDS: &[(&str, &[&str])] = &[
    ("cfg_settings", &["key", "value"]),
    ("cfg_cost_assumptions", &["key", "value"]),
    ("dim_fx_rate", &["rate_date", "from_currency", "to_currency", "rate"]),
    (
        "dim_flow_type",
        &[
            "flow_type",
            "display_name",
            "is_required",
            "expected_channels",
            "outcome_window_days",
            "intent_triggered",
            "default_delay_hours",
            "template_names",
        ],
    ),
    ("map_flow_type_override", &["platform", "flow_id", "flow_type"]),
    ("cfg_flow_holdouts", &["flow_key", "start_date", "end_date", "holdout_pct", "assignment"]),
    ("dim_channel_cost", &["platform", "channel", "country", "unit", "unit_cost", "valid_from", "valid_to"]),
    (
        "map_acquisition_channel",
        &[
            "priority",
            "utm_source_pattern",
            "utm_medium_pattern",
            "referrer_domain_pattern",
            "source_name",
            "channel_group",
        ],
    ),
    ("map_event_type", &["platform", "raw_event_name", "channel", "event_type"]),
    // The operating record's two tables (crate::operating_record): written by the job's
    // `operating_record` file when it has one, else a CSV seed like the others.
    ("cfg_interventions", crate::operating_record::INTERVENTION_COLUMNS),
    ("cfg_hypotheses", crate::operating_record::HYPOTHESIS_COLUMNS),
];

/// A loaded seed.
#[derive(Debug, Clone)]
pub struct Seed {
    pub name: &'static str,
    /// Where it came from: the job's file, or `default`.
    pub origin: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Loads and checks every seed of a job. The job file's reporting timezone and currency reach
/// SQL as `reporting_tz` / `reporting_currency` rows of `cfg_settings`, unless the seed sets them.
pub fn load(job: &Job) -> Result<Vec<Seed>> {
    let mut seeds: Vec<Seed> =
        SEEDS.iter().map(|(name, required)| load_one(job, name, required)).collect::<Result<_>>()?;
    if let Some(record) = &job.operating_record {
        for (name, columns, rows) in [
            ("cfg_interventions", crate::operating_record::INTERVENTION_COLUMNS, record.intervention_rows()),
            ("cfg_hypotheses", crate::operating_record::HYPOTHESIS_COLUMNS, record.hypothesis_rows()),
        ] {
            let seed = seeds.iter_mut().find(|s| s.name == name).expect("listed in SEEDS");
            if !seed.origin.starts_with("default") {
                return Err(Error::config(format!(
                    "seed {} and operating record {} both give {name}: keep one",
                    seed.origin, record.origin
                )));
            }
            *seed = Seed {
                name: seed.name,
                origin: record.origin.clone(),
                header: columns.iter().map(|c| c.to_string()).collect(),
                rows,
            };
        }
    }
    if let Some(settings) = seeds.iter_mut().find(|s| s.name == "cfg_settings") {
        let col = |name: &str| settings.header.iter().position(|h| h == name);
        let (Some(k), Some(v)) = (col("key"), col("value")) else { return Ok(seeds) };
        for (key, value) in [
            ("reporting_tz", job.file.job.reporting_timezone.clone()),
            ("reporting_currency", job.file.job.reporting_currency.clone()),
        ] {
            if !settings.rows.iter().any(|r| r.get(k).map(String::as_str) == Some(key)) {
                let mut row = vec![String::new(); settings.header.len()];
                row[k] = key.to_string();
                row[v] = value;
                settings.rows.push(row);
            }
        }
    }
    Ok(seeds)
}

fn load_one(job: &Job, name: &'static str, required: &[&str]) -> Result<Seed> {
    let file = format!("{name}.csv");
    match job.seeds_dir.as_ref().map(|d| d.join(&file)).filter(|p| p.is_file()) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::io(format!("cannot read seed {}", path.display()), e))?;
            parse(name, path.display().to_string(), &text, required)
        }
        None => shipped(name, required),
    }
}

/// The shipped default of a seed (`jobs/defaults/seeds/<name>.csv`).
fn shipped(name: &'static str, required: &[&str]) -> Result<Seed> {
    let file = format!("{name}.csv");
    let text = DEFAULTS
        .get_file(&file)
        .and_then(|f| f.contents_utf8())
        .ok_or_else(|| Error::Internal(format!("no shipped default for seed {name}")))?;
    parse(name, format!("default {file}"), text, required)
}

fn parse(name: &'static str, origin: String, text: &str, required: &[&str]) -> Result<Seed> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Error::config_with(format!("seed {origin}: unreadable header"), e))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    for col in required {
        if !header.iter().any(|h| h == col) {
            return Err(Error::config(format!(
                "seed {origin}: column `{col}` is missing; expected columns {}",
                required.join(", ")
            )));
        }
    }
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| Error::config_with(format!("seed {origin}: row {}", i + 2), e))?;
        rows.push(rec.iter().map(|v| v.trim().to_string()).collect());
    }
    Ok(Seed { name, origin, header, rows })
}

/// Registers every seed as a table of text columns; a seed `seeds` lacks is registered from its
/// shipped default, so every model can read every seed (tests pass `&[]`).
pub fn register(ctx: &SessionContext, seeds: &[Seed]) -> Result<()> {
    let mut all = seeds.to_vec();
    for &(name, required) in SEEDS {
        if !all.iter().any(|s| s.name == name) {
            all.push(shipped(name, required)?);
        }
    }
    for seed in &all {
        let fields: Vec<Field> = seed.header.iter().map(|h| Field::new(h, DataType::Utf8, true)).collect();
        let schema = Arc::new(Schema::new(fields));
        let columns: Vec<ArrayRef> = (0..seed.header.len())
            .map(|i| {
                let values = seed.rows.iter().map(|r| r.get(i).filter(|v| !v.is_empty()).map(String::as_str));
                Arc::new(values.collect::<StringArray>()) as ArrayRef
            })
            .collect();
        let fail = |e: String| Error::Transform { model: seed.name.to_string(), message: e };
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| fail(e.to_string()))?;
        let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| fail(e.to_string()))?;
        ctx.register_table(seed.name, Arc::new(table)).map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn defaults_cover_every_seed_and_a_job_file_overrides_one() {
        let dir = tempfile::tempdir().unwrap();
        let seeds = dir.path().join("acme/seeds");
        std::fs::create_dir_all(&seeds).unwrap();
        std::fs::write(seeds.join("cfg_settings.csv"), "key,value\nreporting_tz,Europe/Paris\n").unwrap();
        let job_path = dir.path().join("acme.toml");
        std::fs::write(
            &job_path,
            "[job]\nname='acme'\nreporting_timezone='UTC'\nreporting_currency='USD'\n[storage]\nurl='file:///tmp/acme'\n",
        )
        .unwrap();
        let job = Job::load(&job_path).unwrap();
        let loaded = load(&job).unwrap();
        assert_eq!(loaded.len(), SEEDS.len());
        let settings = loaded.iter().find(|s| s.name == "cfg_settings").unwrap();
        assert!(settings.origin.ends_with("cfg_settings.csv") && !settings.origin.starts_with("default"));
        // The seed's own reporting_tz wins over the job file's; the currency comes from the job.
        let row = |k: &str, v: &str| vec![k.to_string(), v.to_string()];
        assert_eq!(settings.rows, vec![row("reporting_tz", "Europe/Paris"), row("reporting_currency", "USD")]);

        // The operating record, when the job has one, gives cfg_interventions and cfg_hypotheses.
        let mut with_record = job.clone();
        let text = "[[hypothesis]]\nid = \"H1\"\nhypothesis = \"h\"\nexpected_effect = \"e\"\n";
        with_record.operating_record =
            Some(crate::operating_record::OperatingRecord::parse(text, "acme-operating-record.toml").unwrap());
        let loaded = load(&with_record).unwrap();
        let queue = loaded.iter().find(|s| s.name == "cfg_hypotheses").unwrap();
        assert_eq!(queue.origin, "acme-operating-record.toml");
        assert_eq!(queue.rows, vec![vec!["H1", "klaviyo", "", "h", "e", "", "queued"]]);
        assert!(loaded.iter().any(|s| s.name == "cfg_interventions" && s.rows.is_empty()));
        std::fs::write(
            seeds.join("cfg_hypotheses.csv"),
            "hypothesis_id,platform,flow,hypothesis,expected_effect,priority,status\n",
        )
        .unwrap();
        let err = load(&with_record).unwrap_err().to_string();
        assert!(err.contains("cfg_hypotheses.csv") && err.contains("acme-operating-record.toml"), "{err}");
        std::fs::remove_file(seeds.join("cfg_hypotheses.csv")).unwrap();

        std::fs::write(seeds.join("dim_fx_rate.csv"), "rate_date,rate\n").unwrap();
        let err = load(&job).unwrap_err().to_string();
        assert!(err.contains("dim_fx_rate.csv") && err.contains("from_currency"), "{err}");
    }
}
