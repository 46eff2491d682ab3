//! Resource types tarn deploys, and the top-level `run_as` and
//! `permissions` carried into each resource.
//!
//! Left in each resource's value for the deployer: `permissions:` as the
//! Permissions API's ACL items (`{"permission_level", "user_name" |
//! "group_name" | "service_principal_name"}`; bundle YAML's `level` is
//! renamed), `grants:` as written (`[{"principal", "privileges": [...]}]`).

use super::Diagnostic;
use super::yaml::{Kind, Node, error};

/// Resource types tarn deploys.
pub const SUPPORTED: [&str; 11] = [
    "jobs",
    "pipelines",
    "experiments",
    "models",
    "registered_models",
    "model_serving_endpoints",
    "quality_monitors",
    "schemas",
    "volumes",
    "secret_scopes",
    "clusters",
];

/// Types the CLI knows that tarn does not deploy.
const KNOWN_ELSEWHERE: [&str; 16] = [
    "apps",
    "dashboards",
    "catalogs",
    "job_runs",
    "secrets",
    "alerts",
    "sql_warehouses",
    "instance_pools",
    "database_instances",
    "database_catalogs",
    "synced_database_tables",
    "vector_search_endpoints",
    "vector_search_indexes",
    "postgres_projects",
    "postgres_branches",
    "postgres_endpoints",
];

pub fn check_types(tree: &Node) -> Result<(), Vec<Diagnostic>> {
    let Some(resources) = tree.get("resources") else { return Ok(()) };
    let mut errors = Vec::new();
    for (kind, group) in resources.entries() {
        let path = format!("resources.{kind}");
        if KNOWN_ELSEWHERE.contains(&kind.as_str()) {
            errors.push(error(
                format!("resource type {kind} is not supported by tarn"),
                Some(group.loc.clone()),
                &path,
            ));
        } else if !SUPPORTED.contains(&kind.as_str()) {
            errors.push(error(format!("unknown resource type: {kind}"), Some(group.loc.clone()), &path));
        } else if !group.is_map() && !group.is_null() {
            errors.push(error(format!("resources.{kind} must be a map of resources"), Some(group.loc.clone()), &path));
        } else {
            for (key, body) in group.entries() {
                if !body.is_map() {
                    let summary = format!("resource {kind}.{key} must be a map");
                    errors.push(error(summary, Some(body.loc.clone()), &format!("{path}.{key}")));
                }
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// The top-level `permissions` (levels `CAN_MANAGE`, `CAN_VIEW`,
/// `CAN_RUN`, each for one principal) and `run_as` (one principal).
pub fn check_principals(tree: &Node) -> Result<(), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    for (i, entry) in tree.get("permissions").map(Node::items).unwrap_or_default().iter().enumerate() {
        let path = format!("permissions[{i}]");
        let level = entry.get("level").and_then(Node::as_str).unwrap_or_default();
        if !["CAN_MANAGE", "CAN_VIEW", "CAN_RUN"].contains(&level) {
            let summary = format!("permission level {level:?} is not one of CAN_MANAGE, CAN_VIEW, CAN_RUN");
            errors.push(error(summary, Some(entry.loc.clone()), &format!("{path}.level")));
        }
        if principals(entry) != 1 {
            let summary = "a permission names exactly one of user_name, group_name, service_principal_name";
            errors.push(error(summary, Some(entry.loc.clone()), &path));
        }
    }
    if let Some(run_as) = tree.get("run_as").filter(|r| principals(r) != 1) {
        let summary = "run_as names exactly one of user_name, service_principal_name";
        errors.push(error(summary, Some(run_as.loc.clone()), "run_as"));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn principals(entry: &Node) -> usize {
    ["user_name", "group_name", "service_principal_name"].iter().filter(|k| entry.get(k).is_some()).count()
}

/// Permission levels of the top-level `permissions:` as each resource
/// type names them; a level a type lacks is not applied to it.
fn level_for(kind: &str, level: &str) -> Option<&'static str> {
    match (kind, level) {
        ("secret_scopes", "CAN_MANAGE") => Some("MANAGE"),
        ("secret_scopes", "CAN_VIEW" | "CAN_RUN") => Some("READ"),
        (_, "CAN_MANAGE") => Some("CAN_MANAGE"),
        ("jobs" | "pipelines" | "model_serving_endpoints", "CAN_VIEW") => Some("CAN_VIEW"),
        ("experiments" | "models", "CAN_VIEW") => Some("CAN_READ"),
        ("jobs", "CAN_RUN") => Some("CAN_MANAGE_RUN"),
        ("pipelines", "CAN_RUN") => Some("CAN_RUN"),
        ("model_serving_endpoints", "CAN_RUN") => Some("CAN_QUERY"),
        ("clusters", "CAN_RUN") => Some("CAN_RESTART"),
        _ => None,
    }
}

/// Renames `level` to `permission_level` (the ACL item's name).
pub fn acl_item(entry: &Node) -> Node {
    let mut item = entry.clone();
    if let Some(level) = item.remove("level") {
        item.set("permission_level", level);
    }
    item
}

/// The resource types the top-level `permissions` reach.
const TAKE_TOP_LEVEL_PERMISSIONS: &[&str] =
    &["jobs", "pipelines", "experiments", "models", "model_serving_endpoints", "clusters", "secret_scopes"];

/// `run_as` onto jobs and pipelines that set none; the top-level
/// `permissions` appended to every job's, pipeline's, experiment's,
/// model's, serving endpoint's, cluster's and secret scope's.
pub fn apply_run_as_and_permissions(tree: &mut Node) {
    let run_as = tree.get("run_as").filter(|r| r.is_map()).cloned();
    let top: Vec<Node> = tree.get("permissions").map(|p| p.items().to_vec()).unwrap_or_default();
    let Some(resources) = tree.get_mut("resources") else { return };
    for (kind, group) in resources.entries_mut() {
        for (_, body) in group.entries_mut() {
            if let (Some(run_as), "jobs" | "pipelines") = (&run_as, kind.as_str())
                && body.get("run_as").is_none()
            {
                body.set("run_as", run_as.clone());
            }
            if let Some(list) = body.get_mut("permissions") {
                for entry in list.items_mut() {
                    *entry = acl_item(entry);
                }
            }
            if !TAKE_TOP_LEVEL_PERMISSIONS.contains(&kind.as_str()) {
                continue;
            }
            let extra: Vec<Node> = top.iter().filter_map(|entry| mapped(kind, entry)).collect();
            if extra.is_empty() {
                continue;
            }
            let loc = body.loc.clone();
            let list = match body.get_mut("permissions") {
                Some(list) => list,
                None => {
                    body.set("permissions", Node::new(Kind::Seq(Vec::new()), loc));
                    match body.get_mut("permissions") {
                        Some(list) => list,
                        None => continue,
                    }
                }
            };
            if let Kind::Seq(items) = &mut list.kind {
                items.extend(extra);
            }
        }
    }
}

fn mapped(kind: &str, entry: &Node) -> Option<Node> {
    let level = entry.get("level")?.as_str()?;
    let mapped = level_for(kind, level)?;
    let mut item = acl_item(entry);
    item.set("permission_level", Node::string(mapped, &entry.loc));
    Some(item)
}
