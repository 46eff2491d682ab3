//! Choosing the target and merging its overrides over the top level.

use super::merge;
use super::yaml::{Kind, Node, error};
use super::{Diagnostic, Location, Mode};

/// Keys a target may set.
const TARGET_KEYS: [&str; 14] = [
    "default",
    "mode",
    "presets",
    "workspace",
    "variables",
    "resources",
    "run_as",
    "permissions",
    "sync",
    "artifacts",
    "cluster_id",
    "compute_id",
    "git",
    "bundle",
];

/// The chosen target, and what of it the later steps read.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub mode: Option<(Mode, Location)>,
    /// `cluster_id`/`compute_id` of the target (or of `bundle:`).
    pub compute_id: Option<Node>,
    /// The target's `variables:` (values, or maps with `default`/`lookup`).
    pub variables: Option<Node>,
}

/// Takes `targets:` out of the tree, picks one and merges it in.
pub fn apply(mut tree: Node, requested: Option<&str>) -> Result<(Node, Target), Vec<Diagnostic>> {
    let targets = tree.remove("targets").or_else(|| tree.remove("environments"));
    let mut target = Target { name: "default".to_string(), mode: None, compute_id: None, variables: None };
    if let Some(targets) = targets.filter(|t| !t.entries().is_empty()) {
        let (name, body) = select(targets, requested)?;
        target.name = name;
        merge_target(&mut tree, &mut target, body)?;
    } else if let Some(name) = requested.filter(|n| *n != "default") {
        return Err(vec![error(format!("{name}: no such target. Available targets: default"), None, "targets")]);
    }
    for key in ["compute_id", "cluster_id"] {
        if let Some(id) = tree.get_mut("bundle").and_then(|b| b.remove(key)) {
            target.compute_id.get_or_insert(id);
        }
    }
    if let Some(resources) = tree.get_mut("resources") {
        merge::keyed_lists(resources);
    }
    Ok((tree, target))
}

fn select(targets: Node, requested: Option<&str>) -> Result<(String, Node), Vec<Diagnostic>> {
    let names: Vec<String> = targets.entries().iter().map(|(k, _)| k.clone()).collect();
    let listing = names.join(", ");
    let name = match requested {
        Some(name) => name.to_string(),
        None => {
            let defaults: Vec<&String> = targets
                .entries()
                .iter()
                .filter(|(_, t)| t.get("default").and_then(Node::as_bool) == Some(true))
                .map(|(k, _)| k)
                .collect();
            match (defaults.as_slice(), names.as_slice()) {
                ([one], _) => (*one).clone(),
                ([], [only]) => only.clone(),
                ([], _) => {
                    let summary = format!("please specify target (-t). Available targets: {listing}");
                    return Err(vec![error(summary, Some(targets.loc.clone()), "targets")]);
                }
                (_, _) => {
                    let summary = format!("multiple targets are marked as default: {}", join(&defaults));
                    return Err(vec![error(summary, Some(targets.loc.clone()), "targets")]);
                }
            }
        }
    };
    let loc = targets.loc.clone();
    let Kind::Map(entries) = targets.kind else {
        return Err(vec![error("targets must be a map", Some(loc), "targets")]);
    };
    match entries.into_iter().find(|(k, _)| *k == name) {
        Some((_, body)) => Ok((name, body)),
        None => {
            let summary = format!("{name}: no such target. Available targets: {listing}");
            Err(vec![error(summary, Some(loc), "targets")])
        }
    }
}

fn join(names: &[&String]) -> String {
    names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
}

fn merge_target(tree: &mut Node, target: &mut Target, body: Node) -> Result<(), Vec<Diagnostic>> {
    let prefix = format!("targets.{}", target.name);
    let Kind::Map(entries) = body.kind else {
        if body.is_null() {
            return Ok(());
        }
        return Err(vec![error("a target must be a map", Some(body.loc), &prefix)]);
    };
    let mut errors = Vec::new();
    for (key, value) in entries {
        let path = format!("{prefix}.{key}");
        match key.as_str() {
            "default" => {}
            "mode" => match value.as_str() {
                Some("development") => target.mode = Some((Mode::Development, value.loc)),
                Some("production") => target.mode = Some((Mode::Production, value.loc)),
                _ => errors.push(error("mode must be one of: development, production", Some(value.loc), &path)),
            },
            "variables" => target.variables = Some(value),
            "cluster_id" | "compute_id" => target.compute_id = Some(value),
            "git" => {
                if let Some(bundle) = tree.entry_map("bundle") {
                    let mut git = Node::new(Kind::Map(Vec::new()), value.loc.clone());
                    git.set("git", value);
                    merge::overlay(bundle, git);
                }
            }
            _ if TARGET_KEYS.contains(&key.as_str()) => match tree.get_mut(&key) {
                Some(existing) => merge::overlay(existing, value),
                None => tree.set(&key, value),
            },
            _ => errors.push(error(format!("unknown field: {key}"), Some(value.loc), &path)),
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}
