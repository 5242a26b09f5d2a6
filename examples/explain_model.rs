//! Prints DataFusion's EXPLAIN ANALYZE of one model over a job's published tables, to find where a
//! slow model spends its time: `cargo run --release --example explain_model -- <job.toml> <model>`.
//!
//! With `--joins` instead of a model name, it runs every SQL model and lists the hash joins that
//! built their table from the larger input (more build rows than probe rows): at scale those hold
//! the large side in memory, outside any spilling.

use lifecycle_etl::config::{Job, Secrets};
use lifecycle_etl::storage::Storage;
use lifecycle_etl::transform::model::Body;

/// `name=<count>` in a metrics list, with DataFusion's K/M suffixes.
fn metric(line: &str, name: &str) -> Option<f64> {
    let at = line.find(&format!(" {name}="))? + name.len() + 2;
    let text: String = line[at..].chars().take_while(|c| !matches!(c, ',' | ']')).collect();
    let (number, scale) = match text.trim().split_once(' ') {
        Some((n, "K")) => (n.to_string(), 1e3),
        Some((n, "M")) => (n.to_string(), 1e6),
        Some((n, "B")) => (n.to_string(), 1e9),
        _ => (text.trim().to_string(), 1.0),
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, job, model] = args.as_slice() else {
        eprintln!("usage: explain_model <job.toml> <model|--joins>");
        std::process::exit(2);
    };
    let job = Job::load(std::path::Path::new(job)).expect("job file");
    let storage = Storage::open(&job.file.storage, &Secrets::default()).expect("storage");
    let ctx = lifecycle_etl::transform::published_session(&storage).await.expect("session");
    lifecycle_etl::seeds::register(&ctx, &lifecycle_etl::seeds::load(&job).expect("seeds")).expect("seeds");
    let models = lifecycle_etl::transform::all_models().expect("models");
    if model == "--joins" {
        for m in &models {
            let Body::Sql(sql) = &m.body else { continue };
            let batches = ctx.sql(&format!("explain analyze {sql}")).await.expect("plan").collect().await.expect("run");
            let text = arrow::util::pretty::pretty_format_batches(&batches).expect("format").to_string();
            for line in text.lines().filter(|l| l.contains("HashJoinExec")) {
                let (Some(build), Some(probe)) = (metric(line, "build_input_rows"), metric(line, "input_rows")) else {
                    continue;
                };
                if build > probe && build > 10_000.0 {
                    let join = line.trim_start_matches(|c: char| c == '|' || c.is_whitespace());
                    let head: String = join.chars().take(160).collect();
                    println!("{:<40} build {build:>12.0} probe {probe:>12.0}  {head}", m.name);
                }
            }
        }
        return;
    }
    let m = models.iter().find(|m| &m.name == model).expect("no such model");
    let Body::Sql(sql) = &m.body else { panic!("{model} is a Rust model") };
    let started = std::time::Instant::now();
    let batches = ctx.sql(&format!("explain analyze {sql}")).await.expect("plan").collect().await.expect("run");
    println!("{}", arrow::util::pretty::pretty_format_batches(&batches).expect("format"));
    println!("elapsed {:.1} s", started.elapsed().as_secs_f64());
}
