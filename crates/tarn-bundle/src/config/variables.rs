//! `variables:`: each declared variable's value for the chosen target,
//! from (highest first) `--var`, `BUNDLE_VAR_<name>`, the target's
//! `variables:`, the declaration's `default` or `lookup`.

use std::collections::BTreeMap;

use super::targets::Target;
use super::yaml::{Kind, Node, error};
use super::{Diagnostic, LoadOptions, Location, Lookup};

/// Object kinds a `lookup:` may name.
const LOOKUP_KINDS: [&str; 11] = [
    "cluster",
    "warehouse",
    "job",
    "pipeline",
    "cluster_policy",
    "instance_pool",
    "service_principal",
    "metastore",
    "alert",
    "query",
    "dashboard",
];

#[derive(Debug, Clone)]
pub struct Variable {
    /// The value, not yet interpolated (a default may name other variables).
    pub value: Node,
    pub description: Option<String>,
    pub complex: bool,
    /// Where the variable is declared.
    pub declared: Location,
}

pub fn resolve(
    tree: &Node,
    target: &Target,
    options: &LoadOptions,
    lookup: &dyn Lookup,
) -> Result<BTreeMap<String, Variable>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let declared = tree.get("variables");
    let declarations = declared.map(Node::entries).unwrap_or_default();
    let is_declared = |name: &str| declarations.iter().any(|(k, _)| k == name);
    if let Some(values) = &target.variables {
        for (name, value) in values.entries().iter().filter(|(n, _)| !is_declared(n)) {
            let path = format!("targets.{}.variables.{name}", target.name);
            errors.push(error(
                format!("variable {name} is not defined but is assigned a value"),
                Some(value.loc.clone()),
                &path,
            ));
        }
    }
    for (name, _) in options.vars.iter().filter(|(n, _)| !is_declared(n)) {
        errors.push(error(
            format!("variable {name} is not defined but is assigned a value (--var)"),
            None,
            "variables",
        ));
    }
    let mut vars = BTreeMap::new();
    for (name, decl) in declarations {
        match one(name, decl, target, options, lookup) {
            Ok(var) => {
                vars.insert(name.clone(), var);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() { Ok(vars) } else { Err(errors) }
}

fn one(
    name: &str,
    decl: &Node,
    target: &Target,
    options: &LoadOptions,
    lookup: &dyn Lookup,
) -> Result<Variable, Diagnostic> {
    let path = format!("variables.{name}");
    // `variables: {x: value}` is shorthand for `{x: {default: value}}`.
    let shorthand = !decl.is_map();
    let complex = decl.get("type").and_then(Node::as_str) == Some("complex");
    let description = decl.get("description").and_then(Node::as_str).map(str::to_string);
    let from_cli = options.vars.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let from_env = std::env::var(format!("BUNDLE_VAR_{name}")).ok();
    let outside = Location { file: "(command line)".into(), line: 0, column: 0 };
    let value = if let Some(text) = from_cli.or(from_env) {
        if complex {
            let summary = format!(
                "setting variable {name} of type complex from the command line or environment is not supported"
            );
            return Err(error(summary, Some(decl.loc.clone()), &path));
        }
        Some(Node::string(text, &outside))
    } else if let Some(set) = target.variables.as_ref().and_then(|t| t.get(name)) {
        Some(from_declaration(set, complex, name, lookup, &path)?.unwrap_or_else(|| set.clone()))
    } else if shorthand {
        Some(decl.clone())
    } else {
        from_declaration(decl, complex, name, lookup, &path)?
    };
    let Some(value) = value else {
        let summary = format!(
            "no value assigned to required variable {name}. Variables are usually assigned in databricks.yml, and they can be overridden using \"--var\", e.g. \"--var {name}=value\", or with the BUNDLE_VAR_{name} environment variable"
        );
        return Err(error(summary, Some(decl.loc.clone()), &path));
    };
    if !complex && matches!(value.kind, Kind::Map(_) | Kind::Seq(_)) {
        let summary = format!("variable {name} has a map or list value: declare it with type: complex");
        return Err(error(summary, Some(value.loc.clone()), &path));
    }
    Ok(Variable { value, description, complex, declared: decl.loc.clone() })
}

/// The value a declaration (`default:` or `lookup:`) gives; `None` when
/// it has neither. A map that is neither (a complex value) is not one.
fn from_declaration(
    decl: &Node,
    complex: bool,
    name: &str,
    lookup: &dyn Lookup,
    path: &str,
) -> Result<Option<Node>, Diagnostic> {
    if !decl.is_map() {
        return Ok(None);
    }
    let declaration_keys = ["default", "lookup", "description", "type"];
    if complex && decl.entries().iter().any(|(k, _)| !declaration_keys.contains(&k.as_str())) {
        return Ok(None);
    }
    if let Some(default) = decl.get("default") {
        return Ok(Some(default.clone()));
    }
    let Some(spec) = decl.get("lookup") else { return Ok(None) };
    let lookup_path = format!("{path}.lookup");
    let [(kind, target)] = spec.entries() else {
        return Err(error(
            format!("lookup of variable {name} must name exactly one object kind"),
            Some(spec.loc.clone()),
            &lookup_path,
        ));
    };
    if !LOOKUP_KINDS.contains(&kind.as_str()) {
        let summary = format!("unknown lookup kind {kind}; expected one of: {}", LOOKUP_KINDS.join(", "));
        return Err(error(summary, Some(spec.loc.clone()), &lookup_path));
    }
    let object = target.scalar_text().unwrap_or_default();
    match lookup.resolve(kind, &object) {
        Ok(id) => Ok(Some(Node::string(id, &target.loc))),
        Err(e) => {
            let summary = format!("failed to resolve {kind}: {object}, err: {e}");
            Err(error(summary, Some(target.loc.clone()), &format!("{lookup_path}.{kind}")))
        }
    }
}
