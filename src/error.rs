//! The top-level error: what went wrong, whose fault it is, and the exit code it maps to.
//!
//! Exit codes are a contract with the CronJob's `podFailurePolicy`: 1 means the data broke a
//! contract (re-running will not help), 2 means configuration or an operational failure.

use std::fmt;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the run does next, decided where an error is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Wait and try again (throttles, 5xx, connection errors).
    Retry,
    /// Record it, quarantine what is affected, and carry on with the rest.
    Skip,
    /// Give up on the stream (or the run, for configuration errors).
    Fail,
}

/// Every failure that reaches `main`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The job file, a seed or a credential is wrong; fix the configuration.
    #[error("configuration error: {message}")]
    Config {
        message: String,
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Output data broke its contract in `schemas/`.
    #[error("contract violation: {0}")]
    Contract(String),
    /// A source failed (after retries), naming source and stream.
    #[error("source {source_name}, stream {stream}: {message}")]
    Source {
        source_name: String,
        stream: String,
        message: String,
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Object storage failed.
    #[error("storage: {context}")]
    Storage {
        context: String,
        #[source]
        cause: object_store::Error,
    },
    /// Another run of the job holds the lock.
    #[error(
        "job {job} is locked by run {holder_run_id} (host {holder_host}, since {acquired_at}, lease until {expires_at}); \
         wait for it to finish or for the lease to expire"
    )]
    LockHeld { job: String, holder_run_id: String, holder_host: String, acquired_at: String, expires_at: String },
    /// Some streams failed while the others landed: which sources failed and which landed,
    /// then each failure.
    #[error("{summary}: {}", .failures.join("; "))]
    PartialFailure { summary: String, failures: Vec<String> },
    /// The transform engine failed.
    #[error("transform, model {model}: {message}")]
    Transform { model: String, message: String },
    /// I/O outside object storage (local files, sockets).
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        cause: std::io::Error,
    },
    /// `export`: tables that did not load (each named, with why); the others did.
    #[error("export failed for {} table(s): {}", .0.len(), .0.join("; "))]
    Export(Vec<String>),
    /// A bug in lifecycle-etl.
    #[error("internal error (likely a bug in lifecycle-etl; please file an issue): {0}")]
    Internal(String),
}

impl Error {
    /// A configuration error without an underlying cause.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config { message: message.into(), cause: None }
    }

    /// A configuration error keeping its cause.
    pub fn config_with(message: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Config { message: message.into(), cause: Some(Box::new(cause)) }
    }

    /// Storage error with context.
    pub fn storage(context: impl Into<String>, cause: object_store::Error) -> Self {
        Error::Storage { context: context.into(), cause }
    }

    /// Local I/O error with context.
    pub fn io(context: impl Into<String>, cause: std::io::Error) -> Self {
        Error::Io { context: context.into(), cause }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Contract(_) => 1,
            _ => 2,
        }
    }
}

/// Prints an error with its whole cause chain, one cause a line.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, "\n  caused by: {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}
