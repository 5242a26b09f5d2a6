//! One SQL file is one model: its name is the file's, its layer the folder's.

use include_dir::{Dir, include_dir};

use crate::error::{Error, Result};

static MODELS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/transform/models");

/// Layers in build order; a model reads only from layers before its own (and raw).
pub const LAYERS: [&str; 3] = ["staging", "intermediate", "marts"];

/// A SQL model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub name: String,
    pub layer: String,
    pub sql: String,
}

/// Every embedded model, staging first, by name within a layer.
pub fn all_models() -> Result<Vec<Model>> {
    let mut out = Vec::new();
    collect(&MODELS, &mut out)?;
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
        out.push(Model { name, layer, sql });
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
