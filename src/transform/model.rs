//! One SQL file is one model: its name is the file's, its layer the folder's. A few models are
//! Rust functions instead ([`RUST_MODELS`]), where SQL is awkward (identity resolution's union-find,
//! model fitting); they read their inputs through the same session and obey the same contracts.

use include_dir::{Dir, include_dir};

use crate::error::{Error, Result};

static MODELS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/src/transform/models");

/// Layers in build order; a model reads only from layers before its own (and raw). `restricted`
/// holds the only tables with plain personal data, in their own folder.
pub const LAYERS: [&str; 4] = ["staging", "intermediate", "marts", "restricted"];

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
    /// Models of the same layer it reads, which must build first.
    pub deps: Vec<String>,
}

/// The Rust models: `(layer, name, build, models of the same layer it reads)`.
pub const RUST_MODELS: &[(&str, &str, RustBuild, &[&str])] = &[
    ("intermediate", "int_person_identifier", super::rust::identity::build_person_identifier, &[]),
    (
        "intermediate",
        "int_person_key_history",
        super::rust::identity::build_person_key_history,
        &["int_person_identifier"],
    ),
    ("intermediate", "int_flows", super::rust::flows::build_flows, &[]),
    ("intermediate", "int_flow_structure", super::rust::flow_structure::build_flow_structure, &[]),
    (
        "marts",
        "int_flow_entries",
        super::rust::entries::build_flow_entries,
        &[
            "int_flows",
            "fct_orders",
            "int_order_person",
            "dim_customer",
            "fct_rfm_snapshot",
            "int_consent_history",
            "fct_message_events",
        ],
    ),
    (
        "marts",
        "fct_flow_contribution",
        super::rust::contribution::build_flow_contribution,
        &["int_flows", "int_flow_entries", "int_message_period_metrics", "int_order_last_click", "fct_orders"],
    ),
    ("marts", "fct_clv_customer", super::rust::clv_marts::build_clv_customer, &["fct_orders"]),
    ("marts", "fct_clv", super::rust::clv_marts::build_clv, &["fct_orders"]),
    ("marts", "fct_repeat_purchase", super::rust::clv_marts::build_repeat_purchase, &["fct_orders"]),
    ("marts", "fct_anomalies", super::rust::anomalies::build_anomalies, &["int_anomaly_series"]),
    (
        "marts",
        "fct_intervention_readout",
        super::rust::interventions::build_intervention_readout,
        &["int_flows", "int_flow_entries"],
    ),
];

/// Every embedded model in build order: layer by layer (staging, intermediate, marts), and within
/// a layer after the models it reads (a SQL model reads a model its text names), by name otherwise.
pub fn all_models() -> Result<Vec<Model>> {
    let mut out = Vec::new();
    collect(&MODELS, &mut out)?;
    for (layer, name, build, deps) in RUST_MODELS {
        if out.iter().any(|m| m.name == *name) {
            return Err(Error::Internal(format!("model {name} is both SQL and Rust")));
        }
        let deps = deps.iter().map(|d| d.to_string()).collect();
        out.push(Model { name: name.to_string(), layer: layer.to_string(), body: Body::Rust(*build), deps });
    }
    let same_layer: Vec<(String, String)> = out.iter().map(|m| (m.name.clone(), m.layer.clone())).collect();
    for m in &mut out {
        if let Body::Sql(sql) = &m.body {
            let code = without_comments_and_strings(sql);
            let words: std::collections::BTreeSet<&str> =
                code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).collect();
            m.deps = same_layer
                .iter()
                .filter(|(name, layer)| *layer == m.layer && *name != m.name && words.contains(name.as_str()))
                .map(|(name, _)| name.clone())
                .collect();
        }
    }
    build_order(out)
}

/// SQL text without `--` and `/* */` comments or `'...'` literals: a model named in a comment
/// or a string is not read.
fn without_comments_and_strings(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                out.push('\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
                out.push(' ');
            }
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                }
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

/// Orders models by layer, then topologically within a layer (ties by name); a cycle is an error
/// naming its models.
fn build_order(models: Vec<Model>) -> Result<Vec<Model>> {
    let mut out = Vec::with_capacity(models.len());
    for layer in LAYERS {
        let mut pending: std::collections::BTreeMap<String, Model> =
            models.iter().filter(|m| m.layer == layer).map(|m| (m.name.clone(), m.clone())).collect();
        while !pending.is_empty() {
            let ready =
                pending.values().find(|m| m.deps.iter().all(|d| !pending.contains_key(d))).map(|m| m.name.clone());
            let Some(name) = ready else {
                let names: Vec<&str> = pending.keys().map(String::as_str).collect();
                return Err(Error::config(format!("models {} read each other in a cycle", names.join(", "))));
            };
            out.extend(pending.remove(&name));
        }
    }
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
        out.push(Model { name, layer, body: Body::Sql(sql), deps: Vec::new() });
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
    fn models_build_after_the_models_they_read() {
        let order: Vec<String> = all_models().unwrap().into_iter().map(|m| m.name).collect();
        let at = |n: &str| order.iter().position(|m| m == n).unwrap_or_else(|| panic!("no model {n}"));
        assert!(at("fct_order_lines") < at("fct_orders"));
        assert!(at("int_person_identifier") < at("int_person_key_history"));
        assert!(at("stg_shopify__orders") < at("int_order_context"));
        let m = |name: &str, deps: &[&str]| Model {
            name: name.into(),
            layer: "marts".into(),
            body: Body::Sql(String::new()),
            deps: deps.iter().map(|d| d.to_string()).collect(),
        };
        let order: Vec<String> = build_order(vec![m("a", &["c"]), m("b", &[]), m("c", &["b"])])
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(order, ["b", "c", "a"]);
        assert_eq!(
            without_comments_and_strings("select a -- fct_x\nfrom b /* fct_y */ where c = 'fct_z'"),
            "select a \nfrom b   where c =  "
        );
        let err = build_order(vec![m("x", &["y"]), m("y", &["x"])]).unwrap_err().to_string();
        assert!(err.contains("x, y") && err.contains("cycle"), "{err}");
    }

    #[test]
    fn every_model_has_a_contract() {
        for m in all_models().unwrap() {
            let c = crate::contract::model(&m.layer, &m.name).unwrap_or_else(|e| panic!("{}: {e}", m.name));
            assert_eq!(c.name, m.name);
        }
    }
}
