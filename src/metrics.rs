//! A run's metrics for Prometheus: rows, bytes, requests, retries, throttles and duration per
//! stream and model, plus the run's own outcome, rendered in the text exposition format and
//! pushed to a Pushgateway when `[run] pushgateway_url` is set (a batch job ends before any
//! scrape could find it). The same figures are always in the run manifest.
//!
//! Written by hand rather than with a metrics crate: a run pushes one snapshot of a few dozen
//! gauges once, at its end, and the format is a line per sample; a registry, collectors and
//! their dependencies would add more than they save.

use std::fmt::Write as _;

use crate::manifest::RunManifest;

/// The Pushgateway grouping key's `job` label: every lifecycle-etl job file pushes under it,
/// told apart by the `lce_job` label so one job's push never replaces another's.
pub const PUSH_JOB: &str = "lifecycle_etl";

/// Label values escaped as the exposition format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn header(&mut self, name: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} gauge");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", label(v))).collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
    }
}

/// The manifest as Prometheus text: one family per figure, one sample per stream or model.
pub fn render(m: &RunManifest) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    let job = m.job.as_str();
    let seconds = (m.finished_at - m.started_at).num_milliseconds() as f64 / 1000.0;
    f.header("lifecycle_etl_run_duration_seconds", "Wall time of the run.");
    f.sample("lifecycle_etl_run_duration_seconds", &[("lce_job", job)], seconds);
    f.header("lifecycle_etl_run_success", "1 when the run succeeded, else 0.");
    f.sample("lifecycle_etl_run_success", &[("lce_job", job)], f64::from(u8::from(m.status == "succeeded")));
    f.header("lifecycle_etl_run_exit_code", "The run's exit code.");
    f.sample("lifecycle_etl_run_exit_code", &[("lce_job", job)], f64::from(m.exit_code));
    f.header("lifecycle_etl_run_finished_timestamp_seconds", "When the run ended (Unix time).");
    f.sample("lifecycle_etl_run_finished_timestamp_seconds", &[("lce_job", job)], m.finished_at.timestamp() as f64);

    type StreamFigure = fn(&crate::manifest::StreamSummary) -> f64;
    let stream_figures: [(&str, &str, StreamFigure); 9] = [
        ("records", "Records landed.", |s| s.records as f64),
        ("bytes", "Bytes of Parquet landed.", |s| s.bytes as f64),
        ("files", "Parquet files landed.", |s| s.files as f64),
        ("pages", "Pages or files read.", |s| s.pages as f64),
        ("quarantined_pages", "Pages, files or rows quarantined.", |s| s.quarantined_pages as f64),
        ("requests", "HTTP requests made.", |s| s.requests as f64),
        ("retries", "HTTP requests retried.", |s| s.retries as f64),
        ("throttles", "Throttled answers (429 and the platforms' own).", |s| s.throttles as f64),
        ("duration_seconds", "Wall time of the stream's sync.", |s| s.duration_ms as f64 / 1000.0),
    ];
    for (figure, help, value) in stream_figures {
        let name = format!("lifecycle_etl_stream_{figure}");
        f.header(&name, help);
        for (key, s) in &m.streams {
            let (source, stream) = key.split_once('.').unwrap_or(("", key));
            f.sample(
                &name,
                &[("lce_job", job), ("source", source), ("stream", stream), ("status", &s.status)],
                value(s),
            );
        }
    }
    type ModelFigure = fn(&crate::manifest::ModelMetrics) -> f64;
    let model_figures: [(&str, &str, ModelFigure); 4] = [
        ("rows", "Rows of the model's new version.", |x| x.rows as f64),
        ("bytes", "Bytes of the model's new version.", |x| x.bytes as f64),
        ("partitions_written", "Partitions the run wrote.", |x| x.partitions_written as f64),
        ("duration_seconds", "Wall time of the model's build.", |x| x.duration_ms as f64 / 1000.0),
    ];
    for (figure, help, value) in model_figures {
        let name = format!("lifecycle_etl_model_{figure}");
        f.header(&name, help);
        for (model, x) in &m.model_metrics {
            f.sample(&name, &[("lce_job", job), ("model", model)], value(x));
        }
    }
    out
}

/// Replaces the job's group on the Pushgateway at `base` with the manifest's metrics. The URL
/// may carry credentials: errors and logs name its host only.
pub async fn push(base: &str, m: &RunManifest) -> Result<(), String> {
    let parsed = url::Url::parse(base).map_err(|_| "run.pushgateway_url is not a URL".to_string())?;
    let host = parsed.host_str().unwrap_or("?").to_string();
    let path = format!(
        "{}/metrics/job/{PUSH_JOB}/lce_job/{}",
        base.trim_end_matches('/'),
        url::form_urlencoded::byte_serialize(m.job.as_bytes()).collect::<String>()
    );
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let resp = client
        .put(path)
        .header(reqwest::header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(render(m))
        .send()
        .await
        .map_err(|e| format!("Pushgateway at {host}: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("Pushgateway at {host} answered {}", resp.status()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ModelMetrics, StreamSummary};

    #[test]
    fn the_text_format_has_a_sample_per_stream_and_model_with_escaped_labels() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut m = RunManifest {
            run_id: "r".into(),
            job: "acme \"eu\"".into(),
            command: "all".into(),
            started_at: t,
            finished_at: t + chrono::Duration::milliseconds(2500),
            status: "succeeded".into(),
            exit_code: 0,
            streams: Default::default(),
            models: Default::default(),
            model_metrics: Default::default(),
            error: None,
        };
        m.streams.insert(
            "klaviyo.events".into(),
            StreamSummary {
                records: 42,
                requests: 7,
                retries: 2,
                throttles: 1,
                duration_ms: 1500,
                status: "ok".into(),
                ..Default::default()
            },
        );
        m.model_metrics.insert("fct_orders".into(), ModelMetrics { rows: 9, duration_ms: 250, ..Default::default() });
        let text = render(&m);
        let job = "lce_job=\"acme \\\"eu\\\"\"";
        for line in [
            format!("lifecycle_etl_run_duration_seconds{{{job}}} 2.5"),
            format!("lifecycle_etl_run_success{{{job}}} 1"),
            format!("lifecycle_etl_stream_records{{{job},source=\"klaviyo\",stream=\"events\",status=\"ok\"}} 42"),
            format!("lifecycle_etl_stream_throttles{{{job},source=\"klaviyo\",stream=\"events\",status=\"ok\"}} 1"),
            format!(
                "lifecycle_etl_stream_duration_seconds{{{job},source=\"klaviyo\",stream=\"events\",status=\"ok\"}} 1.5"
            ),
            format!("lifecycle_etl_model_rows{{{job},model=\"fct_orders\"}} 9"),
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert_eq!(text.matches("# TYPE").count(), 4 + 9 + 4);
    }
}
