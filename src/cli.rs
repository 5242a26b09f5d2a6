//! The command line (clap derive). `check` never calls an API unless `--connect` is given.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "lifecycle-etl", version, about = "Nightly ETL behind the Lifecycle Performance Dashboard.")]
pub struct Cli {
    /// Log format; `auto` is readable text on a terminal and JSON lines otherwise (Kubernetes).
    #[arg(long, value_enum, default_value_t = LogFormat::Auto, env = "LOG_FORMAT", global = true)]
    pub log_format: LogFormat,
    /// Hide progress bars even on a terminal.
    #[arg(long, global = true)]
    pub no_progress: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sync every configured source, then transform, then report (the CronJob entrypoint).
    Run {
        #[arg(long, env = "LIFECYCLE_JOB")]
        job: PathBuf,
        /// Month of the report, YYYY-MM; default: the latest month with data.
        #[arg(long)]
        month: Option<String>,
    },
    /// Land raw data from the sources.
    Sync {
        #[arg(long, env = "LIFECYCLE_JOB")]
        job: PathBuf,
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        stream: Option<String>,
        /// Forget saved state and read from each stream's start date.
        #[arg(long)]
        full_refresh: bool,
        /// Read only up to this instant (RFC 3339), e.g. to replay a past night.
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Rebuild staging and marts from what landing committed (marts with a dirty set: only their
    /// dirty partitions).
    Transform {
        #[arg(long, env = "LIFECYCLE_JOB")]
        job: PathBuf,
        /// Recompute every partition of every mart.
        #[arg(long)]
        full_refresh: bool,
    },
    /// Write the month's dashboard.
    Report {
        #[arg(long, env = "LIFECYCLE_JOB")]
        job: PathBuf,
        #[arg(long)]
        month: Option<String>,
        /// Also write the HTML file here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Simulated brand → fake APIs on 127.0.0.1 → the same code path as `run`, into a local folder.
    Demo {
        #[arg(long, default_value = "lifecycle-demo")]
        dir: PathBuf,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Population multiplier: 1 is a small brand, 1000 about two million customers.
        #[arg(long, default_value_t = 1)]
        scale: u32,
    },
    /// Receive Attentive and Postscript webhooks into the job's storage until SIGTERM (a
    /// Deployment, not a CronJob); the nightly sync compacts what it stored.
    ServeWebhooks {
        #[arg(long, env = "LIFECYCLE_JOB")]
        job: PathBuf,
    },
    /// Load the published marts into PostgreSQL (for Metabase), or write one CSV per mart.
    Export(crate::export::ExportArgs),
    /// Validate the job file, the contracts, the seeds and that every credential variable is set.
    Check {
        #[arg(long, env = "LIFECYCLE_JOB")]
        job: PathBuf,
        /// Also call each source's identity endpoint.
        #[arg(long)]
        connect: bool,
    },
    /// BI wiring generated from schemas/: `ddl`, `lookml`, `marts-doc` (src/bi).
    #[command(flatten)]
    Bi(crate::bi::cli::BiCommand),
}
