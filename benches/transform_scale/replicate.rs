//! A large brand from a landed small one: every person-level raw record copied `k` times with
//! fresh ids, so one landing through the fakes (which cannot hold a million-customer brand in
//! memory) becomes a brand `k` times the size in exactly the shape the real sync lands.
//!
//! What makes a copy distinct, in every string column and inside `_raw` alike (so typed columns
//! and the JSON the staging models read stay consistent):
//! - numeric ids of twelve or more digits standing alone or at the end of a gid (customers,
//!   orders, line items, refunds, transactions; `$event_id` and `external_id` point at them)
//!   get the copy number appended (as text, and in typed `legacy_resource_id` columns as
//!   `id * 100 + k`); the catalog's product, variant and inventory ids are left
//!   alone, since every copy buys from the one catalog;
//! - Klaviyo profile ids (26-character ULIDs) get the copy number appended; campaign, list and
//!   segment ULIDs are left alone like the catalog's ids;
//! - Klaviyo event ids (each row's own `id`) get it appended wherever the row names itself;
//! - emails get `.r<k>` before the `@`, phones `+1…` a `+8<k>` prefix (only hashed downstream).
//!
//! Flows, campaigns, metrics, lists, the catalog and the reports stay as landed: a brand with
//! more customers runs the same program. Copies keep their timestamps, so day-level volumes scale
//! by `k` and every model's row count scales with it where it counts people, orders or events,
//! which the benchmark prints as a check.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, StringBuilder};
use arrow::datatypes::Int64Type;
use lifecycle_etl::manifest::{Commit, LandedFile};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use regex::Regex;

/// Streams whose records belong to a person, so copies multiply the brand.
pub const PERSON_STREAMS: [(&str, &str); 4] =
    [("klaviyo", "events"), ("klaviyo", "profiles"), ("shopify", "customers"), ("shopify", "orders")];

struct Rewriter {
    /// Ids every copy keeps (see [`shared_ids`]).
    shared: HashSet<String>,
    number: Regex,
    ulid: Regex,
    email: Regex,
    phone: Regex,
}

impl Rewriter {
    fn new(shared: HashSet<String>) -> Self {
        Self {
            shared,
            number: Regex::new(r#"(^|["/])(\d{12,})(["/]|$)"#).unwrap(),
            ulid: Regex::new(r#"(^|["/])([0-9A-HJKMNP-TV-Z]{26})(["/]|$)"#).unwrap(),
            email: Regex::new(r"([A-Za-z0-9._%+-])@([A-Za-z0-9-]+\.)").unwrap(),
            phone: Regex::new(r"\+1(\d{10})").unwrap(),
        }
    }

    /// A typed numeric id (`legacy_resource_id`) of copy `k`, as [`Self::rewrite`] renames it
    /// in text.
    fn rewrite_int(&self, v: i64, k: u32) -> i64 {
        if v < 100_000_000_000 || self.shared.contains(&v.to_string()) { v } else { v * 100 + k as i64 }
    }

    /// One string of copy `k`; `own_id` is an event row's id, renamed wherever it appears.
    fn rewrite(&self, s: &str, k: u32, own_id: Option<&str>) -> String {
        let tag = format!("{k:02}");
        let s = self.number.replace_all(s, |c: &regex::Captures| {
            let n = &c[2];
            let n = if self.shared.contains(n) { n.to_string() } else { format!("{n}{tag}") };
            format!("{}{n}{}", &c[1], &c[3])
        });
        let s = self.ulid.replace_all(&s, |c: &regex::Captures| {
            let id = &c[2];
            let id = if self.shared.contains(id) { id.to_string() } else { format!("{id}{tag}") };
            format!("{}{id}{}", &c[1], &c[3])
        });
        let s = self.email.replace_all(&s, |c: &regex::Captures| format!("{}.r{tag}@{}", &c[1], &c[2]));
        let s = self.phone.replace_all(&s, |c: &regex::Captures| format!("+8{tag}1{}", &c[1]));
        match own_id {
            Some(id) if !id.is_empty() => s.replace(id, &format!("{id}{tag}")),
            _ => s.into_owned(),
        }
    }
}

fn read_file(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    reader.map(|b| b.unwrap()).collect()
}

fn commits(data: &Path) -> Vec<Commit> {
    let mut out = Vec::new();
    let mut runs: Vec<PathBuf> = std::fs::read_dir(data.join("_runs")).unwrap().map(|e| e.unwrap().path()).collect();
    runs.sort();
    for run in runs {
        let Ok(entries) = std::fs::read_dir(run.join("commits")) else { continue };
        let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            out.push(serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap());
        }
    }
    out
}

/// The ids every copy shares: the numeric ids and ULIDs of the streams that are not about one
/// person (the catalog's products and variants, Klaviyo's campaigns, lists and segments).
fn shared_ids(data: &Path, commits: &[Commit]) -> HashSet<String> {
    let digits = Regex::new(r"\d{12,}|[0-9A-HJKMNP-TV-Z]{26}").unwrap();
    let mut ids = HashSet::new();
    for c in commits.iter().filter(|c| !PERSON_STREAMS.contains(&(c.source.as_str(), c.stream.as_str()))) {
        for f in &c.files {
            for batch in read_file(&data.join(&f.path)) {
                for col in batch.columns() {
                    let Some(strings) = col.as_any().downcast_ref::<StringArray>() else { continue };
                    for s in strings.iter().flatten() {
                        ids.extend(digits.find_iter(s).map(|m| m.as_str().to_string()));
                    }
                }
            }
        }
    }
    ids
}

fn copy_batch(rw: &Rewriter, batch: &RecordBatch, k: u32, own_ids: bool) -> RecordBatch {
    let ids = own_ids
        .then(|| batch.column_by_name("id").and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned()))
        .flatten();
    let schema = batch.schema();
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(col, field)| {
            if let Some(ints) = col.as_any().downcast_ref::<Int64Array>() {
                return Arc::new(ints.unary::<_, Int64Type>(|v| rw.rewrite_int(v, k))) as ArrayRef;
            }
            let Some(strings) = col.as_any().downcast_ref::<StringArray>() else { return col.clone() };
            if field.name() == "_run_id" {
                return col.clone();
            }
            let mut out = StringBuilder::with_capacity(strings.len(), strings.value_data().len() + strings.len() * 8);
            for (i, v) in strings.iter().enumerate() {
                let own = ids.as_ref().and_then(|a| a.is_valid(i).then(|| a.value(i)));
                out.append_option(v.map(|s| rw.rewrite(s, k, own)));
            }
            Arc::new(out.finish()) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Copies the person streams of the landing under `base` into `dest` `copies` times in all
/// (the original counts as the first), committed as one extra run. Returns rows landed per
/// stream (`source.stream`), originals included.
pub fn replicate(base: &Path, dest: &Path, copies: u32, threads: usize) -> std::collections::BTreeMap<String, u64> {
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest).unwrap();
    // The original landing, hard-linked (nothing rewrites a landed file).
    let status = std::process::Command::new("cp")
        .arg("-al")
        .arg(base.join("raw"))
        .arg(base.join("_runs"))
        .arg(dest)
        .status()
        .unwrap();
    assert!(status.success(), "cp -al failed");
    self_check();
    let all = commits(base);
    let rw = Rewriter::new(shared_ids(base, &all));
    let run_id = format!("{}-replica", lifecycle_etl::manifest::new_run_id());
    let person: Vec<(&Commit, &LandedFile)> = all
        .iter()
        .filter(|c| PERSON_STREAMS.contains(&(c.source.as_str(), c.stream.as_str())))
        .flat_map(|c| c.files.iter().map(move |f| (c, f)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let landed = std::sync::Mutex::new(Vec::<(String, String, LandedFile)>::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((c, f)) = person.get(i) else { break };
                    let batches = read_file(&base.join(&f.path));
                    let events = c.stream == "events";
                    for k in 1..copies {
                        let rel = f.path.replace(&c.run_id, &format!("{run_id}-{k:02}"));
                        let path = dest.join(&rel);
                        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                        let file = std::fs::File::create(&path).unwrap();
                        let schema = batches.first().map(|b| b.schema());
                        let Some(schema) = schema else { continue };
                        let props = lifecycle_etl::landing::parquet::raw_writer_properties();
                        let mut w = ArrowWriter::try_new(file, schema, Some(props)).unwrap();
                        let mut rows = 0;
                        for b in &batches {
                            let copy = copy_batch(&rw, b, k, events);
                            rows += copy.num_rows() as u64;
                            w.write(&copy).unwrap();
                        }
                        w.close().unwrap();
                        let bytes = std::fs::metadata(&path).unwrap().len();
                        let file = LandedFile { path: rel, rows, bytes };
                        landed.lock().unwrap().push((c.source.clone(), c.stream.clone(), file));
                    }
                }
            });
        }
    });
    let mut landed = landed.into_inner().unwrap();
    landed.sort_by(|a, b| (&a.0, &a.1, &a.2.path).cmp(&(&b.0, &b.1, &b.2.path)));
    let commits_dir = dest.join("_runs").join(&run_id).join("commits");
    std::fs::create_dir_all(&commits_dir).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for c in &all {
        *counts.entry(format!("{}.{}", c.source, c.stream)).or_insert(0) += c.files.iter().map(|f| f.rows).sum::<u64>();
    }
    for (seq, (source, stream)) in PERSON_STREAMS.iter().enumerate() {
        let files: Vec<LandedFile> =
            landed.iter().filter(|(so, st, _)| so == source && st == stream).map(|(_, _, f)| f.clone()).collect();
        *counts.entry(format!("{source}.{stream}")).or_insert(0) += files.iter().map(|f| f.rows).sum::<u64>();
        let commit = Commit {
            run_id: run_id.clone(),
            source: source.to_string(),
            stream: stream.to_string(),
            committed_at: chrono::Utc::now(),
            files,
            state: None,
        };
        let body = serde_json::to_vec_pretty(&commit).unwrap();
        std::fs::write(commits_dir.join(format!("{:06}.json", seq + 1)), body).unwrap();
    }
    counts
}

/// The renaming rules on one sample of each id kind; run before every replication (a bench has
/// no test harness).
fn self_check() {
    let rw = Rewriter::new(["8100000000000".to_string(), "01JC0000000000000000CAMPGN".to_string()].into());
    let raw = r##"{"id":"gid://shopify/Order/5556320000128","customer":{"id":"gid://shopify/Customer/7000880000002"},"product":{"id":"gid://shopify/Product/8100000000000"},"email":"lily.garcia.880000002@example.net","phone":"+12018080002","name":"#56320001129","ts":1730449367,"profile":"01JBKCWDJRY9ZFCGVBB4TGT009","campaign":"01JC0000000000000000CAMPGN","self":"http://h/api/events/93vr3MOR1K7/"}"##;
    let out = rw.rewrite(raw, 7, Some("93vr3MOR1K7"));
    for want in [
        "Order/555632000012807\"",
        "Customer/700088000000207\"",
        "Product/8100000000000\"",
        "lily.garcia.880000002.r07@example.net",
        "\"+80712018080002\"",
        "\"#56320001129\"",
        "1730449367,",
        "\"01JBKCWDJRY9ZFCGVBB4TGT00907\"",
        "\"01JC0000000000000000CAMPGN\"",
        "/events/93vr3MOR1K707/",
    ] {
        assert!(out.contains(want), "{want} not in {out}");
    }
    assert_eq!(rw.rewrite("5556320000128", 3, None), "555632000012803");
    assert_eq!(rw.rewrite_int(5556320000128, 3), 555632000012803);
    assert_eq!(rw.rewrite_int(8100000000000, 3), 8100000000000);
    assert_eq!(rw.rewrite_int(42, 3), 42);
}
