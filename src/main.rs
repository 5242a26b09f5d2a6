//! `lifecycle-etl`: parse the command line, set up logging, run, map the error to an exit code.

use std::process::ExitCode;

use clap::Parser;
use lifecycle_etl::cli::{Cli, Command};
use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::error::{Chain, Result};
use lifecycle_etl::pipeline::{self, Steps, SyncSelection};
use lifecycle_etl::{check, demo, logging, report, storage::Storage};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_logs = logging::init(cli.log_format);
    lifecycle_etl::progress::init(cli.no_progress);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line per failure: a JSON object for the log pipeline, or plain text for people.
            if json_logs {
                tracing::error!(exit_code = e.exit_code(), "{}", Chain(&e));
            } else {
                eprintln!("error: {}", Chain(&e));
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let secrets = Secrets::default();
    match cli.command {
        Command::Run { job, month } => {
            let job = Job::load(&job)?;
            let out =
                pipeline::execute(&job, &secrets, Steps::All, &SyncSelection::default(), month.as_deref()).await?;
            print_outcome(&out);
        }
        Command::Sync { job, source, stream, full_refresh, until } => {
            let job = Job::load(&job)?;
            let selection = SyncSelection { source, stream, full_refresh, until };
            let out = pipeline::execute(&job, &secrets, Steps::Sync, &selection, None).await?;
            print_outcome(&out);
        }
        Command::Transform { job, full_refresh } => {
            let job = Job::load(&job)?;
            let selection = SyncSelection { full_refresh, ..Default::default() };
            let out = pipeline::execute(&job, &secrets, Steps::Transform, &selection, None).await?;
            print_outcome(&out);
        }
        Command::Report { job, month, out } => {
            let job = Job::load(&job)?;
            let storage = Storage::open(&job.file.storage, &secrets)?;
            let location = report::write(&job, &storage, month.as_deref(), out.as_deref()).await?;
            println!("dashboard: {location}");
        }
        Command::Demo { dir, seed, scale } => {
            let result = demo::run(&dir, seed, scale).await?;
            print_outcome(&result.outcome);
            println!("checked against the simulator's truth (marts = simulator):");
            for f in &result.checked {
                println!("  {:<34} {:>14}", f.name, f.marts);
            }
            println!("storage (raw, staging, marts, reports): {}", result.storage_dir.display());
        }
        Command::ServeWebhooks { job } => {
            let job = Job::load(&job)?;
            lifecycle_etl::webhooks::server::serve(&job, &secrets).await?;
        }
        Command::Export(args) => {
            let job = Job::load(&args.job)?;
            for line in lifecycle_etl::export::command(&job, &secrets, &args).await? {
                println!("{line}");
            }
        }
        Command::Check { job, connect } => {
            let job = Job::load(&job)?;
            for line in check::run(&job, &secrets, connect).await? {
                println!("{line}");
            }
        }
        Command::Bi(cmd) => lifecycle_etl::bi::cli::run(cmd, &secrets).await?,
    }
    Ok(())
}

fn print_outcome(out: &pipeline::Outcome) {
    println!("run {}", out.run_id);
    for (stream, s) in &out.streams {
        println!("  {stream:<22} {:>10} records {:>6} pages  {}", s.records, s.pages, s.status);
    }
    for (model, rows) in &out.models {
        println!("  {model:<22} {rows:>10} rows");
    }
    if let Some(r) = &out.report {
        println!("dashboard: {r}");
    }
}
