//! Prints DataFusion's EXPLAIN ANALYZE of one model over a job's published tables, to find where a
//! slow model spends its time: `cargo run --release --example explain_model -- <job.toml> <model>`.

use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::storage::Storage;
use lifecycle_etl::transform::model::Body;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, job, model] = args.as_slice() else {
        eprintln!("usage: explain_model <job.toml> <model>");
        std::process::exit(2);
    };
    let job = Job::load(std::path::Path::new(job)).expect("job file");
    let storage = Storage::open(&job.file.storage, &Secrets::default()).expect("storage");
    let ctx = lifecycle_etl::transform::published_session(&storage).await.expect("session");
    lifecycle_etl::seeds::register(&ctx, &lifecycle_etl::seeds::load(&job).expect("seeds")).expect("seeds");
    let models = lifecycle_etl::transform::all_models().expect("models");
    let m = models.iter().find(|m| &m.name == model).expect("no such model");
    let Body::Sql(sql) = &m.body else { panic!("{model} is a Rust model") };
    let started = std::time::Instant::now();
    let batches = ctx.sql(&format!("explain analyze {sql}")).await.expect("plan").collect().await.expect("run");
    println!("{}", arrow::util::pretty::pretty_format_batches(&batches).expect("format"));
    println!("elapsed {:.1} s", started.elapsed().as_secs_f64());
}
