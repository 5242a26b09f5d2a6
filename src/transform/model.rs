//! One SQL file is one model: its name is the file's, its layer the folder's. A few models are
//! Rust functions instead ([`RUST_MODELS`]), where SQL is awkward (identity resolution's union-find,
//! model fitting); they read their inputs through the same session and obey the same contracts.

use include_dir::{Dir, include_dir};

use crate::error::{Error, Result};

static MODELS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/transform/models");

/// Layers in build order; a model reads only from layers before its own (and raw).
pub const LAYERS: [&str; 3] = ["staging", "intermediate", "marts"];

/// Builds a Rust model: reads what it needs from the session, returns its output as a frame.
pub type RustBuild =
    for<'a> fn(
        &'a datafusion::prelude::SessionContext,
    ) -> futures::future::BoxFuture<'a, datafusion::error::Result<datafusion::prelude::DataFrame>>;

/// What a model is made of.
#[derive(Clone)]
pub enum Body {
    Sql(String),
    Rust(RustBuild),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Sql(sql) => write!(f, "Sql({} bytes)", sql.len()),
            Body::Rust(_) => write!(f, "Rust"),
        }
    }
}

/// A model.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub layer: String,
    pub body: Body,
}

/// The Rust models: `(layer, name, build)`. They build in name order with the SQL models of
/// their layer.
pub const RUST_MODELS: &[(&str, &str, RustBuild)] = &[
    ("intermediate", "int_person_identifier", super::rust::identity::build_person_identifier),
    ("intermediate", "int_person_key_history", super::rust::identity::build_person_key_history),
];

/// Every embedded model, staging first, by name within a layer.
pub fn all_models() -> Result<Vec<Model>> {
    let mut out = Vec::new();
    collect(&MODELS, &mut out)?;
    for (layer, name, build) in RUST_MODELS {
        if out.iter().any(|m| m.name == *name) {
            return Err(Error::Internal(format!("model {name} is both SQL and Rust")));
        }
        out.push(Model { name: name.to_string(), layer: layer.to_string(), body: Body::Rust(*build) });
    }
    out.sort_by_key(|m| (LAYERS.iter().position(|l| *l == m.layer).unwrap_or(LAYERS.len()), m.name.clone()));
    Ok(out)
}

fn collect(dir: &Dir<'_>, out: &mut Vec<Model>) -> Result<()> {
    for file in dir.files() {
        let path = file.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let layer = path.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or_default().to_string();
        if !LAYERS.contains(&layer.as_str()) {
            return Err(Error::config(format!("model {} is not under one of {}", path.display(), LAYERS.join(", "))));
        }
        let sql = file
            .contents_utf8()
            .ok_or_else(|| Error::config(format!("model {} is not UTF-8", path.display())))?
            .to_string();
        out.push(Model { name, layer, body: Body::Sql(sql) });
    }
    for sub in dir.dirs() {
        collect(sub, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_has_a_contract() {
        for m in all_models().unwrap() {
            let c = crate::contract::model(&m.layer, &m.name).unwrap_or_else(|e| panic!("{}: {e}", m.name));
            assert_eq!(c.name, m.name);
        }
    }
}
