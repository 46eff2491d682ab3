//! The resolved tree as a [`Bundle`]: resources with their locations,
//! top-level `run_as` and `permissions`, and the whole configuration as
//! JSON (`validate --output json`, `metadata.json`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::interpolate::Context;
use super::targets::Target;
use super::yaml::Node;
use super::{Artifact, Bundle, Diagnostic, Mode, Resource, resources, sync};

pub struct Parts {
    pub root: PathBuf,
    pub tree: Node,
    pub target: Target,
    pub context: Context,
    pub lock_enabled: bool,
    pub sync_files: Vec<PathBuf>,
    pub artifacts: BTreeMap<String, Artifact>,
    pub warnings: Vec<Diagnostic>,
}

pub fn bundle(parts: Parts) -> Bundle {
    let Parts { root, tree, target, context, lock_enabled, sync_files, artifacts, warnings } = parts;
    let mode = target.mode.as_ref().map(|(m, _)| *m);
    let mut by_type: BTreeMap<String, BTreeMap<String, Resource>> = BTreeMap::new();
    for (kind, group) in tree.get("resources").map(Node::entries).unwrap_or_default() {
        let entries = by_type.entry(kind.clone()).or_default();
        for (key, body) in group.entries() {
            entries.insert(key.clone(), Resource { value: body.to_json(), location: body.loc.clone() });
        }
    }
    let permissions = tree
        .get("permissions")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .map(|p| resources::acl_item(p).to_json())
        .collect();
    let run_as = tree.get("run_as").filter(|r| r.is_map()).map(Node::to_json);
    let config = config_json(&root, &tree, &context, mode);
    let w = &context.workspace;
    Bundle {
        name: context.name.clone(),
        target: target.name,
        mode,
        root_path: w.root_path.clone(),
        file_path: w.file_path.clone(),
        artifact_path: w.artifact_path.clone(),
        state_path: w.state_path.clone(),
        root,
        resources: by_type,
        permissions,
        run_as,
        artifacts,
        sync_files,
        config,
        warnings,
        lock_enabled,
    }
}

fn config_json(root: &std::path::Path, tree: &Node, context: &Context, mode: Option<Mode>) -> Value {
    let mut config = match tree.to_json() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut variables = Map::new();
    for (name, var) in &context.vars {
        let mut entry = Map::new();
        entry.insert("value".into(), var.value.to_json());
        if let Some(description) = &var.description {
            entry.insert("description".into(), json!(description));
        }
        if var.complex {
            entry.insert("type".into(), json!("complex"));
        }
        variables.insert(name.clone(), Value::Object(entry));
    }
    if !variables.is_empty() {
        config.insert("variables".into(), Value::Object(variables));
    }
    if let Some(Value::Object(bundle)) = config.get_mut("bundle") {
        if let Some(mode) = mode {
            let name = if mode == Mode::Development { "development" } else { "production" };
            bundle.insert("mode".into(), json!(name));
        }
        let git_info = sync::git_info(root);
        if !git_info.is_empty() {
            let git = bundle.entry("git").or_insert_with(|| json!({}));
            if let Value::Object(git) = git {
                for (key, value) in git_info {
                    git.entry(key).or_insert_with(|| json!(value));
                }
                if let Some(actual) = git.get("actual_branch").cloned() {
                    git.entry("branch").or_insert(actual);
                }
            }
        }
    }
    Value::Object(config)
}
