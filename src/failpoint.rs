//! Failpoints: deterministic crash points for the crash-recovery tests.
//!
//! `LIFECYCLE_ETL_FAILPOINT=<name>:<n>` aborts the process (no unwinding, no cleanup, like a
//! SIGKILL from the kubelet) the n-th time the named point is reached. Unset, a point costs one
//! environment lookup per call, made only at commit boundaries.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The points that exist. `before_commit` is reached before each commit that carries files.
pub const BEFORE_COMMIT: &str = "before_commit";

static HITS: Mutex<Vec<(String, AtomicU64)>> = Mutex::new(Vec::new());

/// Marks a crash point.
pub fn hit(name: &str) {
    let Ok(spec) = std::env::var("LIFECYCLE_ETL_FAILPOINT") else { return };
    let Some((point, n)) = spec.split_once(':') else { return };
    if point != name {
        return;
    }
    let Ok(n) = n.parse::<u64>() else { return };
    let mut hits = HITS.lock().expect("failpoint lock");
    let count = match hits.iter().find(|(p, _)| p == name) {
        Some((_, c)) => c.fetch_add(1, Ordering::SeqCst) + 1,
        None => {
            hits.push((name.to_string(), AtomicU64::new(1)));
            1
        }
    };
    if count == n {
        eprintln!("failpoint {name}:{n} reached; aborting");
        std::process::abort();
    }
}
