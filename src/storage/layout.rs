//! The storage layout, fixed: every path a run reads or writes is built here.
//!
//! ```text
//! raw/<source>/<stream>/landed_date=YYYY-MM-DD/<run_id>-<part>.parquet
//! staging/<model>/...            marts/<table>/<period>=.../...
//! _state/<source>/<stream>.json  _runs/<run_id>/commits/<seq>.json  _runs/<run_id>/manifest.json
//! _quarantine/<run_id>/<source>/<stream>/<n>.json                   _locks/<job>/<generation>.json
//! ```

use chrono::NaiveDate;

pub fn raw_stream(source: &str, stream: &str) -> String {
    format!("raw/{source}/{stream}")
}

pub fn raw_file(source: &str, stream: &str, landed: NaiveDate, run_id: &str, part: u32) -> String {
    format!("raw/{source}/{stream}/landed_date={landed}/{run_id}-{part:05}.parquet")
}

pub fn staging_model(model: &str) -> String {
    format!("staging/{model}")
}

pub fn mart(table: &str) -> String {
    format!("marts/{table}")
}

pub fn state(source: &str, stream: &str) -> String {
    format!("_state/{source}/{stream}.json")
}

pub const RUNS: &str = "_runs";

pub fn run_dir(run_id: &str) -> String {
    format!("{RUNS}/{run_id}")
}

pub fn run_commit(run_id: &str, seq: u32) -> String {
    format!("{RUNS}/{run_id}/commits/{seq:06}.json")
}

pub fn run_manifest(run_id: &str) -> String {
    format!("{RUNS}/{run_id}/manifest.json")
}

pub fn quarantine(run_id: &str, source: &str, stream: &str, n: u32) -> String {
    format!("_quarantine/{run_id}/{source}/{stream}/{n:05}.json")
}

pub fn lock_dir(job: &str) -> String {
    format!("_locks/{job}")
}

pub fn lock_generation(job: &str, generation: u64) -> String {
    format!("_locks/{job}/{generation:012}.json")
}
