//! Logging: JSON lines when stderr is not a terminal (Kubernetes), readable lines when it is.
//!
//! Never log secrets or personal data: credentials live in sensitive headers, records are
//! named by id, and error bodies are cut short.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber; `RUST_LOG` overrides the default `info` level. Returns
/// whether logs are JSON lines.
pub fn init(format: LogFormat) -> bool {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if json {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.compact().try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
    json
}
