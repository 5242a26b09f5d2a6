//! The BI subcommands, flattened into the top-level command line so `src/cli.rs` and
//! `src/main.rs` each carry a one-line hook.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::bi::types::Dialect;
use crate::bi::{ddl, docs, lookml, tables};
use crate::config::{Job, Secrets};
use crate::error::{Error, Result};
use crate::storage::Storage;

#[derive(Debug, Subcommand)]
pub enum BiCommand {
    /// Print the CREATE statements (views, external tables, Postgres tables) for every mart,
    /// generated from schemas/; re-run after each transform (unpartitioned marts move each run).
    Ddl {
        #[arg(long, env = "LIFECYCLE_JOB")]
        job: PathBuf,
        #[arg(long, value_enum)]
        dialect: Dialect,
        /// Schema (Athena: database, BigQuery: dataset) the tables are created in.
        #[arg(long, default_value = "marts")]
        schema: String,
        /// Also the restricted tables (plain emails and phones): personal data, left out by default.
        #[arg(long)]
        include_restricted: bool,
    },
    /// Write one LookML view per mart and a model with the explores into a folder.
    Lookml {
        #[arg(long, default_value = "deploy/looker")]
        out: PathBuf,
        /// Schema of the tables Looker's connection reads (`ddl --schema`).
        #[arg(long, default_value = lookml::DEFAULT_SCHEMA)]
        schema: String,
        /// Looker connection name in the model file.
        #[arg(long, default_value = lookml::DEFAULT_CONNECTION)]
        connection: String,
    },
    /// Write the column-by-column reference of the marts (Markdown).
    MartsDoc {
        #[arg(long, default_value = "docs/marts.md")]
        out: PathBuf,
    },
}

/// Runs one BI subcommand.
pub async fn run(cmd: BiCommand, secrets: &Secrets) -> Result<()> {
    match cmd {
        BiCommand::Ddl { job, dialect, schema, include_restricted } => {
            let tables = tables(include_restricted)?;
            let located = if dialect == Dialect::Postgres {
                ddl::unlocated(tables)
            } else {
                let job = Job::load(&job)?;
                let storage = Storage::open(&job.file.storage, secrets)?;
                ddl::locate(&storage, tables).await?
            };
            print!("{}", ddl::render(dialect, &schema, &located));
        }
        BiCommand::Lookml { out, schema, connection } => {
            for (name, text) in lookml::generate(&schema, &connection)? {
                write(&out.join(name), &text)?;
            }
            println!("lookml: {}", out.display());
        }
        BiCommand::MartsDoc { out } => {
            write(&out, &docs::generate()?)?;
            println!("marts reference: {}", out.display());
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    std::fs::write(path, text).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}
