//! Runs one SQL query over a job's published tables (raw, staging, marts and seeds) and prints
//! the result, for looking at a run's output while developing:
//! `cargo run --example sql -- <job.toml> "select ..."`.

use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::storage::Storage;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, job, sql] = args.as_slice() else {
        eprintln!("usage: sql <job.toml> <query>");
        std::process::exit(2);
    };
    let job = Job::load(std::path::Path::new(job)).expect("job file");
    let storage = Storage::open(&job.file.storage, &Secrets::default()).expect("storage");
    let ctx = lifecycle_etl::transform::published_session(&storage).await.expect("session");
    lifecycle_etl::seeds::register(&ctx, &lifecycle_etl::seeds::load(&job).expect("seeds")).expect("seeds");
    let batches = ctx.sql(sql).await.expect("plan").collect().await.expect("run");
    println!("{}", arrow::util::pretty::pretty_format_batches(&batches).expect("format"));
}
