//! The committed generated files are current: `deploy/looker/` (LookML) and `docs/marts.md` equal
//! a fresh generation from `schemas/`. `LCE_REGENERATE=1 cargo test --test bi_generated` rewrites
//! them (as `lifecycle-etl lookml` and `lifecycle-etl marts-doc` do).

use std::path::{Path, PathBuf};

use lifecycle_etl::bi::{docs, lookml};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn regenerate() -> bool {
    std::env::var("LCE_REGENERATE").is_ok_and(|v| v == "1")
}

/// Compares (or with LCE_REGENERATE=1 writes) one file; returns a complaint when stale.
fn check(path: &Path, want: &str) -> Option<String> {
    if regenerate() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, want).unwrap();
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(got) if got == want => None,
        Ok(_) => Some(format!("{} is stale", path.display())),
        Err(_) => Some(format!("{} is missing", path.display())),
    }
}

const HOW: &str = "regenerate with `LCE_REGENERATE=1 cargo test --test bi_generated` and commit";

#[test]
fn committed_lookml_is_current() {
    let dir = root().join("deploy/looker");
    let files = lookml::generate(lookml::DEFAULT_SCHEMA, lookml::DEFAULT_CONNECTION).unwrap();
    let mut stale: Vec<String> = files.iter().filter_map(|(name, text)| check(&dir.join(name), text)).collect();
    // A view of a mart that no longer exists.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".lkml") && !files.iter().any(|(n, _)| *n == name) {
            if regenerate() {
                std::fs::remove_file(dir.join(&name)).unwrap();
            } else {
                stale.push(format!("deploy/looker/{name} is not generated any more"));
            }
        }
    }
    assert!(stale.is_empty(), "{}; {HOW}", stale.join("; "));
}

#[test]
fn committed_marts_reference_is_current() {
    let stale = check(&root().join("docs/marts.md"), &docs::generate().unwrap());
    assert!(stale.is_none(), "{}; {HOW}", stale.unwrap());
}
