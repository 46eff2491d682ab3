//! Merging configuration trees: an included file into `databricks.yml`
//! (a value set in two files is an error naming both), a target's
//! overrides over the top level (maps merge key by key, lists append,
//! scalars are replaced), and the lists Databricks merges by a key
//! (job tasks by `task_key`, ...), as the CLI's merge does.

use super::Diagnostic;
use super::yaml::{Kind, Node, error};

/// Merges an included file's tree into `dst`. A resource, or any scalar,
/// defined in both with different values is an error with both places.
pub fn include(dst: &mut Node, src: Node, path: &str, errors: &mut Vec<Diagnostic>) {
    let Kind::Map(entries) = src.kind else { return };
    for (key, value) in entries {
        let sub = join(path, &key);
        match dst.get_mut(&key) {
            None => dst.set(&key, value),
            Some(existing) => {
                // A resource (resources.<type>.<key>) belongs to exactly one file.
                let is_resource = sub.starts_with("resources.") && sub.matches('.').count() == 2;
                if !is_resource && existing.is_map() && value.is_map() {
                    include(existing, value, &sub, errors);
                } else if is_resource || existing.to_json() != value.to_json() {
                    let first = &existing.loc;
                    let summary = format!(
                        "{sub} is defined in both {}:{}:{} and {}:{}:{}",
                        first.file.display(),
                        first.line,
                        first.column,
                        value.loc.file.display(),
                        value.loc.line,
                        value.loc.column
                    );
                    errors.push(error(summary, Some(value.loc.clone()), &sub));
                }
            }
        }
    }
}

/// A target's value over the top-level one: maps merge key by key, lists
/// append, anything else is replaced.
pub fn overlay(dst: &mut Node, src: Node) {
    match (&mut dst.kind, src.kind) {
        (Kind::Map(_), Kind::Map(entries)) => {
            for (key, value) in entries {
                match dst.get_mut(&key) {
                    Some(existing) => overlay(existing, value),
                    None => dst.set(&key, value),
                }
            }
        }
        (Kind::Seq(items), Kind::Seq(more)) => items.extend(more),
        (_, kind) => {
            dst.kind = kind;
            dst.loc = src.loc;
        }
    }
}

/// Collapses list items that share a key (the later merged over the
/// first), after a target's lists were appended to the top level's.
pub fn by_key(list: &mut Node, key: &str, default: Option<&str>) {
    let Kind::Seq(items) = &mut list.kind else { return };
    let mut merged: Vec<Node> = Vec::new();
    for item in std::mem::take(items) {
        let id = item_key(&item, key, default);
        let found =
            id.as_ref().and_then(|id| merged.iter_mut().find(|m| item_key(m, key, default).as_ref() == Some(id)));
        match found {
            Some(first) => overlay(first, item),
            None => merged.push(item),
        }
    }
    *items = merged;
}

fn item_key(item: &Node, key: &str, default: Option<&str>) -> Option<String> {
    match item.get(key) {
        Some(node) => node.scalar_text(),
        None => default.map(str::to_string),
    }
}

/// The keyed lists of every job and pipeline.
pub fn keyed_lists(resources: &mut Node) {
    if let Some(jobs) = resources.get_mut("jobs") {
        for (_, job) in jobs.entries_mut() {
            for (list, key) in [
                ("tasks", "task_key"),
                ("job_clusters", "job_cluster_key"),
                ("parameters", "name"),
                ("environments", "environment_key"),
            ] {
                if let Some(items) = job.get_mut(list) {
                    by_key(items, key, None);
                }
            }
        }
    }
    if let Some(pipelines) = resources.get_mut("pipelines") {
        for (_, pipeline) in pipelines.entries_mut() {
            if let Some(clusters) = pipeline.get_mut("clusters") {
                by_key(clusters, "label", Some("default"));
            }
        }
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}
