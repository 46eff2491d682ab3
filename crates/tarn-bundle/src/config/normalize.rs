//! Scalars YAML typed as numbers or booleans where the REST API takes
//! strings (`tags: {cost_center: 1234}`, `client: 1`,
//! `spark_conf: {spark.speculation: true}`), turned into strings as the
//! CLI's schema-driven normalization does, for the fields bundles
//! commonly write that way.

use super::yaml::{Kind, Node};

/// Maps whose values are strings.
const STRING_MAPS: [&str; 8] = [
    "tags",
    "custom_tags",
    "spark_conf",
    "spark_env_vars",
    "base_parameters",
    "named_parameters",
    "configuration",
    "parameters",
];

/// Lists whose items are strings.
const STRING_LISTS: [&str; 3] = ["parameters", "dependencies", "ssh_public_keys"];

/// Fields that are strings wherever they appear in a resource.
const STRING_FIELDS: [&str; 6] =
    ["client", "environment_version", "spark_version", "python_version", "default", "value"];

pub fn resources(tree: &mut Node) {
    let Some(resources) = tree.get_mut("resources") else { return };
    for (_, group) in resources.entries_mut() {
        for (_, body) in group.entries_mut() {
            walk(body);
        }
    }
}

fn walk(node: &mut Node) {
    match &mut node.kind {
        Kind::Map(entries) => {
            for (key, value) in entries.iter_mut() {
                let key = key.as_str();
                if STRING_FIELDS.contains(&key) {
                    stringify(value);
                } else if STRING_MAPS.contains(&key) && value.is_map() {
                    value.entries_mut().iter_mut().for_each(|(_, v)| stringify(v));
                } else if STRING_LISTS.contains(&key) {
                    value.items_mut().iter_mut().for_each(stringify);
                }
                walk(value);
            }
        }
        Kind::Seq(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}

fn stringify(node: &mut Node) {
    if matches!(node.kind, Kind::Int(_) | Kind::Float(_) | Kind::Bool(_))
        && let Some(text) = node.scalar_text()
    {
        node.kind = Kind::Str(text);
    }
}
