//! Parsing and validation: a GraphQL document becomes a checked selection plan.
//!
//! Validation happens before anything runs, with graphql-ruby's messages and codes (Shopify
//! runs graphql-ruby), because a client must see `undefinedField` for a version it does not
//! pin correctly rather than silently missing data. Variables are substituted while compiling,
//! so the plan carries plain JSON arguments and page-size rules can be checked up front.

use std::collections::{HashMap, HashSet};

use graphql_parser::Pos;
use graphql_parser::query::{
    Definition, Document, FragmentDefinition, OperationDefinition, Selection, SelectionSet, Type, TypeCondition,
    Value as GValue,
};
use serde_json::{Map, Value, json};

use super::schema::{Kind, Schema, Ty};

/// The largest page any connection serves.
pub const MAX_PAGE: i64 = 250;

/// One entry of a response's `errors`.
#[derive(Debug, Clone, PartialEq)]
pub struct GqlError {
    pub message: String,
    pub locations: Vec<Pos>,
    pub path: Vec<Value>,
    pub extensions: Option<Value>,
}

impl GqlError {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), locations: Vec::new(), path: Vec::new(), extensions: None }
    }

    pub fn at(mut self, pos: Pos) -> Self {
        self.locations.push(pos);
        self
    }

    pub fn path(mut self, path: Vec<Value>) -> Self {
        self.path = path;
        self
    }

    pub fn ext(mut self, extensions: Value) -> Self {
        self.extensions = Some(extensions);
        self
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("message".into(), Value::from(self.message.clone()));
        if !self.locations.is_empty() {
            let locs = self.locations.iter().map(|p| json!({"line": p.line, "column": p.column})).collect();
            m.insert("locations".into(), Value::Array(locs));
        }
        if !self.path.is_empty() {
            m.insert("path".into(), Value::Array(self.path.clone()));
        }
        if let Some(e) = &self.extensions {
            m.insert("extensions".into(), e.clone());
        }
        Value::Object(m)
    }
}

/// Paged requests need `first`/`last` on every connection; bulk inner queries page nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Paged,
    Bulk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Query,
    Mutation,
}

/// One selected field of the plan.
#[derive(Debug, Clone)]
pub struct Sel {
    /// Response key: the alias, else the name.
    pub key: String,
    pub name: String,
    pub args: Map<String, Value>,
    /// Fragment type conditions this field sits under; all must hold for the runtime type.
    pub conds: Vec<String>,
    pub ty: Ty,
    pub sub: Vec<Sel>,
    pub pos: Pos,
}

impl Sel {
    pub fn arg_i64(&self, name: &str) -> Option<i64> {
        self.args.get(name).and_then(Value::as_i64)
    }

    pub fn arg_str(&self, name: &str) -> Option<&str> {
        self.args.get(name).and_then(Value::as_str)
    }

    pub fn arg_bool(&self, name: &str) -> Option<bool> {
        self.args.get(name).and_then(Value::as_bool)
    }
}

/// A compiled, validated operation.
#[derive(Debug, Clone)]
pub struct Operation {
    pub kind: OpKind,
    pub name: Option<String>,
    pub sels: Vec<Sel>,
}

impl Operation {
    pub fn root_type(&self) -> &'static str {
        match self.kind {
            OpKind::Query => "QueryRoot",
            OpKind::Mutation => "Mutation",
        }
    }
}

/// Parses `text`, picks the operation and compiles it against the schema at `version`.
pub fn prepare(
    text: &str,
    operation_name: Option<&str>,
    variables: &Map<String, Value>,
    version: &str,
    mode: Mode,
) -> Result<Operation, Vec<GqlError>> {
    let doc: Document<'static, String> = match graphql_parser::parse_query::<String>(text) {
        Ok(d) => d.into_static(),
        Err(e) => return Err(vec![parse_error(&e.to_string())]),
    };
    let mut fragments = HashMap::new();
    let mut ops = Vec::new();
    for def in &doc.definitions {
        match def {
            Definition::Fragment(f) => {
                fragments.insert(f.name.clone(), f);
            }
            Definition::Operation(op) => ops.push(op),
        }
    }
    let op_name = |op: &OperationDefinition<'static, String>| match op {
        OperationDefinition::Query(q) => q.name.clone(),
        OperationDefinition::Mutation(m) => m.name.clone(),
        OperationDefinition::Subscription(s) => s.name.clone(),
        OperationDefinition::SelectionSet(_) => None,
    };
    let op = match operation_name {
        Some(wanted) => match ops.iter().find(|op| op_name(op).as_deref() == Some(wanted)) {
            Some(op) => *op,
            None => return Err(vec![GqlError::new(format!("No operation named \"{wanted}\""))]),
        },
        None if ops.len() == 1 => ops[0],
        None if ops.is_empty() => return Err(vec![GqlError::new("No operations in query document")]),
        None => return Err(vec![GqlError::new("An operation name is required")]),
    };
    let (kind, name, var_defs, set, head) = match op {
        OperationDefinition::SelectionSet(set) => (OpKind::Query, None, &[][..], set, "query".to_string()),
        OperationDefinition::Query(q) => {
            let head = q.name.as_ref().map_or("query".to_string(), |n| format!("query {n}"));
            (OpKind::Query, q.name.clone(), &q.variable_definitions[..], &q.selection_set, head)
        }
        OperationDefinition::Mutation(m) => {
            let head = m.name.as_ref().map_or("mutation".to_string(), |n| format!("mutation {n}"));
            (OpKind::Mutation, m.name.clone(), &m.variable_definitions[..], &m.selection_set, head)
        }
        OperationDefinition::Subscription(s) => {
            return Err(vec![GqlError::new("Subscriptions are not supported by the Admin API").at(s.position)]);
        }
    };
    let mut c = Compiler {
        schema: Schema::get(),
        version,
        mode,
        fragments,
        vars: Map::new(),
        declared: HashSet::new(),
        op_label: name.clone().unwrap_or_else(|| "anonymous".into()),
        errors: Vec::new(),
        used: HashSet::new(),
    };
    for vd in var_defs {
        c.declared.insert(vd.name.clone());
        let given = variables.get(&vd.name).cloned();
        let value = match given {
            Some(v) => v,
            None => match &vd.default_value {
                Some(d) => c.literal(d, vd.position),
                None => Value::Null,
            },
        };
        if let Some(problem) = check_variable(&vd.var_type, &value) {
            c.errors.push(
                GqlError::new(format!("Variable ${} of type {} was provided invalid value", vd.name, vd.var_type))
                    .at(vd.position)
                    .ext(json!({"value": value, "problems": [{"path": [], "explanation": problem}]})),
            );
        }
        c.vars.insert(vd.name.clone(), value);
    }
    let root = match kind {
        OpKind::Query => "QueryRoot",
        OpKind::Mutation => "Mutation",
    };
    let mut path = vec![head];
    let sels = c.compile_set(root, set, &[], &mut path, &mut Vec::new());
    for (fname, f) in &c.fragments {
        if !c.used.contains(fname) {
            c.errors.push(
                GqlError::new(format!("Fragment {fname} was defined, but not used"))
                    .at(f.position)
                    .path(vec![Value::from(format!("fragment {fname}"))])
                    .ext(json!({"code": "useAndDefineFragment", "fragmentName": fname})),
            );
        }
    }
    if c.errors.is_empty() { Ok(Operation { kind, name, sels }) } else { Err(c.errors) }
}

fn parse_error(raw: &str) -> GqlError {
    // graphql_parser reports "query parse error: Parse error at 1:20\nUnexpected ..."; keep
    // the position when it is there, as Shopify's parser errors carry locations.
    let mut e = GqlError::new(raw.trim_start_matches("query parse error: ").replace('\n', " ").trim().to_string());
    if let Some(rest) = raw.split("Parse error at ").nth(1) {
        let pos: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == ':').collect();
        if let Some((l, c)) = pos.split_once(':')
            && let (Ok(line), Ok(column)) = (l.parse(), c.parse())
        {
            e = e.at(Pos { line, column });
        }
    }
    e.ext(json!({"code": "parseError"}))
}

/// Why a variable value does not fit its declared type, if it does not.
fn check_variable(ty: &Type<'static, String>, v: &Value) -> Option<String> {
    match ty {
        Type::NonNullType(inner) => {
            if v.is_null() {
                Some("Expected value to not be null".into())
            } else {
                check_variable(inner, v)
            }
        }
        Type::ListType(inner) => match v {
            Value::Null => None,
            Value::Array(items) => items.iter().find_map(|i| check_variable(inner, i)),
            other => check_variable(inner, other),
        },
        Type::NamedType(name) => {
            let ok = match (name.as_str(), v) {
                (_, Value::Null) => true,
                ("Int", Value::Number(n)) => n.is_i64(),
                ("Float", Value::Number(_)) => true,
                ("Boolean", Value::Bool(_)) => true,
                ("String" | "ID" | "DateTime" | "URL", Value::String(_)) => true,
                ("ID", Value::Number(n)) => n.is_i64(),
                ("Int" | "Float" | "Boolean" | "String" | "ID" | "DateTime" | "URL", _) => false,
                _ => true,
            };
            (!ok).then(|| format!("Could not coerce value {v} to {name}"))
        }
    }
}

struct Compiler<'d> {
    schema: &'static Schema,
    version: &'d str,
    mode: Mode,
    fragments: HashMap<String, &'d FragmentDefinition<'static, String>>,
    vars: Map<String, Value>,
    declared: HashSet<String>,
    op_label: String,
    errors: Vec<GqlError>,
    used: HashSet<String>,
}

fn path_json(path: &[String]) -> Vec<Value> {
    path.iter().map(|p| Value::from(p.as_str())).collect()
}

impl Compiler<'_> {
    fn literal(&mut self, v: &GValue<'static, String>, pos: Pos) -> Value {
        match v {
            GValue::Variable(name) => {
                if !self.declared.contains(name) {
                    self.errors.push(
                        GqlError::new(format!("Variable ${name} is used by {} but not declared", self.op_label))
                            .at(pos)
                            .ext(json!({"code": "variableNotDefined", "variableName": name})),
                    );
                }
                self.vars.get(name).cloned().unwrap_or(Value::Null)
            }
            GValue::Int(n) => n.as_i64().map(Value::from).unwrap_or(Value::Null),
            GValue::Float(f) => json!(f),
            GValue::String(s) => Value::from(s.as_str()),
            GValue::Boolean(b) => Value::from(*b),
            GValue::Null => Value::Null,
            GValue::Enum(e) => Value::from(e.as_str()),
            GValue::List(items) => Value::Array(items.iter().map(|i| self.literal(i, pos)).collect()),
            GValue::Object(fields) => {
                Value::Object(fields.iter().map(|(k, v)| (k.clone(), self.literal(v, pos))).collect())
            }
        }
    }

    fn error(&mut self, e: GqlError) {
        self.errors.push(e);
    }

    fn compile_set(
        &mut self,
        parent: &str,
        set: &SelectionSet<'static, String>,
        conds: &[String],
        path: &mut Vec<String>,
        visiting: &mut Vec<String>,
    ) -> Vec<Sel> {
        let mut out = Vec::new();
        for item in &set.items {
            match item {
                Selection::Field(f) => {
                    if let Some(sel) = self.compile_field(parent, f, conds, path, visiting) {
                        out.push(sel);
                    }
                }
                Selection::InlineFragment(frag) => {
                    let cond = match &frag.type_condition {
                        Some(TypeCondition::On(t)) => t.clone(),
                        None => parent.to_string(),
                    };
                    path.push(match &frag.type_condition {
                        Some(_) => format!("... on {cond}"),
                        None => "...".to_string(),
                    });
                    if self.fragment_applies(parent, &cond, frag.position, path) {
                        let mut inner = conds.to_vec();
                        inner.push(cond.clone());
                        out.extend(self.compile_set(&cond, &frag.selection_set, &inner, path, visiting));
                    }
                    path.pop();
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.fragment_name.clone();
                    self.used.insert(name.clone());
                    let Some(def) = self.fragments.get(&name).copied() else {
                        let p = path_json(path);
                        self.error(
                            GqlError::new(format!("Fragment {name} was used, but not defined"))
                                .at(spread.position)
                                .path(p)
                                .ext(json!({"code": "useAndDefineFragment", "fragmentName": name})),
                        );
                        continue;
                    };
                    if visiting.contains(&name) {
                        self.error(
                            GqlError::new(format!("Fragment {name} contains an infinite loop"))
                                .at(spread.position)
                                .ext(json!({"code": "infiniteLoop", "fragmentName": name})),
                        );
                        continue;
                    }
                    let TypeCondition::On(cond) = &def.type_condition;
                    path.push(format!("... {name}"));
                    if self.fragment_applies(parent, cond, spread.position, path) {
                        let mut inner = conds.to_vec();
                        inner.push(cond.clone());
                        visiting.push(name.clone());
                        out.extend(self.compile_set(cond, &def.selection_set, &inner, path, visiting));
                        visiting.pop();
                    }
                    path.pop();
                }
            }
        }
        out
    }

    fn fragment_applies(&mut self, parent: &str, cond: &str, pos: Pos, path: &[String]) -> bool {
        if self.schema.ty(cond).is_none() {
            self.error(
                GqlError::new(format!("No such type {cond}, so it can't be a fragment condition"))
                    .at(pos)
                    .path(path_json(path))
                    .ext(json!({"code": "undefinedType", "typeName": cond})),
            );
            return false;
        }
        let parents = self.schema.possible(parent);
        if !self.schema.possible(cond).iter().any(|t| parents.contains(t)) {
            self.error(
                GqlError::new(format!("Fragment on {cond} can't be spread inside {parent}"))
                    .at(pos)
                    .path(path_json(path))
                    .ext(json!({"code": "cannotSpreadFragment", "typeName": cond, "parentName": parent})),
            );
            return false;
        }
        true
    }

    fn compile_field(
        &mut self,
        parent: &str,
        f: &graphql_parser::query::Field<'static, String>,
        conds: &[String],
        path: &mut Vec<String>,
        visiting: &mut Vec<String>,
    ) -> Option<Sel> {
        let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
        path.push(key.clone());
        let result = self.compile_field_inner(parent, f, key, conds, path, visiting);
        path.pop();
        result
    }

    fn compile_field_inner(
        &mut self,
        parent: &str,
        f: &graphql_parser::query::Field<'static, String>,
        key: String,
        conds: &[String],
        path: &mut Vec<String>,
        visiting: &mut Vec<String>,
    ) -> Option<Sel> {
        let name = f.name.clone();
        if name == "__typename" {
            return Some(Sel {
                key,
                name,
                args: Map::new(),
                conds: conds.to_vec(),
                ty: Ty::Scalar("String"),
                sub: Vec::new(),
                pos: f.position,
            });
        }
        let def = self
            .schema
            .ty(parent)
            .filter(|t| !matches!(t.kind, Kind::Union(_)))
            .and_then(|t| t.field(&name))
            .filter(|d| d.available(self.version))
            .cloned();
        let Some(def) = def else {
            self.error(
                GqlError::new(format!("Field '{name}' doesn't exist on type '{parent}'"))
                    .at(f.position)
                    .path(path_json(path))
                    .ext(json!({"code": "undefinedField", "typeName": parent, "fieldName": name})),
            );
            return None;
        };
        let mut args = Map::new();
        for (an, av) in &f.arguments {
            if !def.args.contains(&an.as_str()) {
                self.error(
                    GqlError::new(format!("Field '{name}' doesn't accept argument '{an}'"))
                        .at(f.position)
                        .path(path_json(path))
                        .ext(json!({"code": "argumentNotAccepted", "name": name, "typeName": "Field", "argumentName": an})),
                );
                continue;
            }
            let v = self.literal(av, f.position);
            args.insert(an.clone(), v);
        }
        if let (Some((enum_name, keys)), Some(v)) = (def.sort_keys, args.get("sortKey"))
            && !v.as_str().is_some_and(|k| keys.contains(&k))
        {
            let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            self.error(
                GqlError::new(format!(
                    "Argument 'sortKey' on Field '{name}' has an invalid value ({shown}). Expected type '{enum_name}'."
                ))
                .at(f.position)
                .path(path_json(path))
                .ext(json!({"code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": "sortKey"})),
            );
        }
        for a in ["first", "last"] {
            if let Some(v) = args.get(a).filter(|v| !v.is_null()) {
                match v.as_i64() {
                    Some(n) if (0..=MAX_PAGE).contains(&n) => {}
                    Some(n) if n > MAX_PAGE && self.mode == Mode::Paged => self.error(
                        GqlError::new(format!(
                            "Requested `{a}: {n}` on field '{name}' exceeds the maximum page size of {MAX_PAGE}."
                        ))
                        .at(f.position)
                        .path(response_path(path))
                        .ext(json!({"code": "BAD_REQUEST"})),
                    ),
                    Some(n) if n < 0 => self.error(
                        GqlError::new(format!("`{a}` on field '{name}' must be a non-negative integer, got {n}."))
                            .at(f.position)
                            .path(response_path(path))
                            .ext(json!({"code": "BAD_REQUEST"})),
                    ),
                    Some(_) => {}
                    None => self.error(
                        GqlError::new(format!(
                            "Argument '{a}' on Field '{name}' has an invalid value ({v}). Expected type 'Int'."
                        ))
                        .at(f.position)
                        .path(path_json(path))
                        .ext(json!({"code": "argumentLiteralsIncompatible", "typeName": "Field", "argumentName": a})),
                    ),
                }
            }
        }
        if matches!(def.ty, Ty::Connection(_))
            && self.mode == Mode::Paged
            && args.get("first").is_none_or(Value::is_null)
            && args.get("last").is_none_or(Value::is_null)
        {
            self.error(GqlError::new("you must provide one of first or last").at(f.position).path(response_path(path)));
        }
        let sub = match def.ty.target() {
            Some(target) => {
                if f.selection_set.items.is_empty() {
                    self.error(
                        GqlError::new(format!(
                            "Field must have selections (field '{name}' returns {} but has no selections. Did you mean '{name} {{ ... }}'?)",
                            target
                        ))
                        .at(f.position)
                        .path(path_json(path))
                        .ext(json!({"code": "selectionMismatch", "nodeName": format!("field '{name}'"), "typeName": target})),
                    );
                    Vec::new()
                } else {
                    self.compile_set(&target, &f.selection_set, &[], path, visiting)
                }
            }
            None => {
                if !f.selection_set.items.is_empty() {
                    self.error(
                        GqlError::new(format!(
                            "Selections can't be made on scalars (field '{name}' returns {} but has selections [{}])",
                            def.ty.display(),
                            selection_names(&f.selection_set).join(", ")
                        ))
                        .at(f.position)
                        .path(path_json(path))
                        .ext(json!({"code": "selectionMismatch", "nodeName": format!("field '{name}'"), "typeName": def.ty.display()})),
                    );
                }
                Vec::new()
            }
        };
        Some(Sel { key, name, args, conds: conds.to_vec(), ty: def.ty, sub, pos: f.position })
    }
}

fn selection_names(set: &SelectionSet<'static, String>) -> Vec<String> {
    set.items
        .iter()
        .map(|i| match i {
            Selection::Field(f) => f.name.clone(),
            Selection::InlineFragment(_) => "...".into(),
            Selection::FragmentSpread(s) => format!("...{}", s.fragment_name),
        })
        .collect()
}

/// The response path of a static error raised while executing (no operation label, no
/// fragment segments), as Shopify reports runtime argument errors.
fn response_path(path: &[String]) -> Vec<Value> {
    path.iter().skip(1).filter(|p| !p.starts_with("...")).map(|p| Value::from(p.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prep(q: &str, vars: Value) -> Result<Operation, Vec<GqlError>> {
        prepare(q, None, vars.as_object().unwrap(), "2026-10", Mode::Paged)
    }

    #[test]
    fn validation_errors_carry_codes_and_paths() {
        let errs = prep("query Q { orders(first: 2) { nodes { id bogus } } }", json!({})).unwrap_err();
        assert_eq!(errs.len(), 1);
        let e = errs[0].to_json();
        assert_eq!(e["message"], "Field 'bogus' doesn't exist on type 'Order'");
        assert_eq!(e["path"], json!(["query Q", "orders", "nodes", "bogus"]));
        assert_eq!(e["extensions"]["code"], "undefinedField");
        let errs = prep("{ orders { nodes { id } } }", json!({})).unwrap_err();
        assert_eq!(errs[0].message, "you must provide one of first or last");
        let errs = prep("{ shop { id { x } currencyCode } customer(id: \"x\") }", json!({})).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        let errs = prep("query Q($first: Int!) { orders(first: $first) { nodes { id } } }", json!({})).unwrap_err();
        assert!(errs[0].message.contains("Variable $first of type Int! was provided invalid value"));
        let errs = prep("{ orders(first: 1, sortKey: FOO) { nodes { id } } }", json!({})).unwrap_err();
        assert!(errs[0].message.contains("Expected type 'OrderSortKeys'"), "{errs:?}");
        let errs = prep("{ shop { id } } fragment F on Shop { id }", json!({})).unwrap_err();
        assert_eq!(errs[0].message, "Fragment F was defined, but not used");
    }

    #[test]
    fn version_gates_fields() {
        let q = "{ customers(first: 1) { nodes { defaultPhoneNumber { smsMarketingConsent { marketingState } } } } }";
        assert!(prepare(q, None, &Map::new(), "2026-10", Mode::Paged).is_ok());
        let errs = prepare(q, None, &Map::new(), "2026-07", Mode::Paged).unwrap_err();
        assert_eq!(errs[0].message, "Field 'smsMarketingConsent' doesn't exist on type 'CustomerPhoneNumber'");
    }
}
