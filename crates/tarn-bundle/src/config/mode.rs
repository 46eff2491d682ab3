//! `mode:` and `presets:`. Development mode fills in presets (a
//! `[dev <short name>] ` prefix, a `dev` tag, paused triggers, up to 4
//! concurrent runs, development pipelines) and turns the deploy lock off;
//! production mode refuses what would let two copies or a dev setting
//! reach production. Presets apply in any mode.

use std::path::Path;

use super::interpolate::Context;
use super::targets::Target;
use super::yaml::{Kind, Node, error};
use super::{Diagnostic, Location, Mode, Severity};

pub struct Modes {
    pub lock_enabled: bool,
}

/// The presets in effect after the mode filled in its defaults.
#[derive(Default)]
struct Presets {
    name_prefix: Option<String>,
    tags: Vec<(String, String)>,
    trigger_pause_status: Option<String>,
    jobs_max_concurrent_runs: Option<i64>,
    pipelines_development: Option<bool>,
}

pub fn apply(
    tree: &mut Node,
    target: &Target,
    context: &Context,
    root: &Path,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Modes, Vec<Diagnostic>> {
    let mode = target.mode.as_ref().map(|(m, _)| *m);
    let mut errors = Vec::new();
    override_compute(tree, target, mode, &mut errors);
    let presets = presets(tree, mode, context);
    if mode == Some(Mode::Development) {
        let root_path = &context.workspace.root_path;
        if !root_path.contains(&context.user.user_name) && !root_path.contains(&context.user.short_name) {
            let loc = tree.get("workspace").and_then(|w| w.get("root_path")).map(|n| n.loc.clone());
            let summary = "root_path must start with '~/' or contain the current username to ensure uniqueness when using 'mode: development'";
            errors.push(error(summary, loc, "workspace.root_path"));
        }
    }
    if let Some(resources) = tree.get_mut("resources") {
        apply_presets(resources, &presets);
    }
    if let Some((Mode::Production, at)) = &target.mode {
        production(tree, context, root, at, &mut errors, warnings);
    }
    let lock = tree
        .get("bundle")
        .and_then(|b| b.get("deployment"))
        .and_then(|d| d.get("lock"))
        .and_then(|l| l.get("enabled"))
        .and_then(Node::as_bool);
    let lock_enabled = lock.unwrap_or(mode != Some(Mode::Development));
    if errors.is_empty() { Ok(Modes { lock_enabled }) } else { Err(errors) }
}

/// `cluster_id`/`compute_id`: every job task runs on that cluster.
fn override_compute(tree: &mut Node, target: &Target, mode: Option<Mode>, errors: &mut Vec<Diagnostic>) {
    let Some(id) = &target.compute_id else { return };
    if mode == Some(Mode::Production) {
        let summary = "overriding compute for a target that uses 'mode: production' is not allowed (consider using 'mode: development')";
        errors.push(error(summary, Some(id.loc.clone()), &format!("targets.{}.compute_id", target.name)));
        return;
    }
    let Some(jobs) = tree.get_mut("resources").and_then(|r| r.get_mut("jobs")) else { return };
    for (_, job) in jobs.entries_mut() {
        for task in job.get_mut("tasks").map(Node::items_mut).unwrap_or_default() {
            for key in ["new_cluster", "job_cluster_key", "environment_key"] {
                task.remove(key);
            }
            task.set("existing_cluster_id", id.clone());
        }
    }
}

fn presets(tree: &Node, mode: Option<Mode>, context: &Context) -> Presets {
    let node = tree.get("presets");
    let get = |key: &str| node.and_then(|p| p.get(key));
    let mut presets = Presets {
        name_prefix: get("name_prefix").and_then(Node::scalar_text),
        tags: get("tags")
            .map(|t| t.entries().iter().filter_map(|(k, v)| Some((k.clone(), v.scalar_text()?))).collect())
            .unwrap_or_default(),
        trigger_pause_status: get("trigger_pause_status").and_then(Node::scalar_text),
        jobs_max_concurrent_runs: get("jobs_max_concurrent_runs").and_then(|n| match n.kind {
            Kind::Int(i) => Some(i),
            _ => n.scalar_text()?.parse().ok(),
        }),
        pipelines_development: get("pipelines_development").and_then(Node::as_bool),
    };
    if mode == Some(Mode::Development) {
        let short = &context.user.short_name;
        presets.name_prefix.get_or_insert_with(|| format!("[dev {short}] "));
        if !presets.tags.iter().any(|(k, _)| k == "dev") {
            presets.tags.push(("dev".to_string(), short.clone()));
        }
        presets.trigger_pause_status.get_or_insert_with(|| "PAUSED".to_string());
        presets.jobs_max_concurrent_runs.get_or_insert(4);
        presets.pipelines_development.get_or_insert(true);
    }
    presets
}

fn apply_presets(resources: &mut Node, presets: &Presets) {
    let prefix = presets.name_prefix.clone().unwrap_or_default();
    let uc_prefix = normalize_prefix(&prefix);
    for (kind, group) in resources.entries_mut() {
        for (key, body) in group.entries_mut() {
            match kind.as_str() {
                "jobs" => {
                    prefix_name(body, "name", &prefix, key);
                    map_tags(body, "tags", &presets.tags);
                    job_presets(body, presets);
                }
                "pipelines" => {
                    prefix_name(body, "name", &prefix, key);
                    map_tags(body, "tags", &presets.tags);
                    if presets.pipelines_development == Some(true) {
                        let loc = body.loc.clone();
                        body.set("development", Node::new(Kind::Bool(true), loc));
                    }
                }
                "clusters" => {
                    prefix_name(body, "cluster_name", &prefix, key);
                    map_tags(body, "custom_tags", &presets.tags);
                }
                "experiments" => {
                    prefix_experiment(body, &prefix);
                    list_tags(body, &presets.tags);
                }
                "models" => {
                    prefix_name(body, "name", &prefix, key);
                    list_tags(body, &presets.tags);
                }
                "model_serving_endpoints" => {
                    prefix_name(body, "name", &uc_prefix, key);
                    list_tags(body, &presets.tags);
                }
                "registered_models" | "schemas" | "volumes" => prefix_name(body, "name", &uc_prefix, key),
                "quality_monitors" => pause(body, "schedule", presets),
                _ => {}
            }
        }
    }
}

fn job_presets(job: &mut Node, presets: &Presets) {
    if let Some(runs) = presets.jobs_max_concurrent_runs
        && job.get("max_concurrent_runs").is_none()
    {
        let loc = job.loc.clone();
        job.set("max_concurrent_runs", Node::new(Kind::Int(runs), loc));
    }
    for key in ["schedule", "trigger", "continuous"] {
        pause(job, key, presets);
    }
}

/// The trigger preset on a schedule, trigger or continuous block that
/// does not set its own `pause_status`.
fn pause(body: &mut Node, key: &str, presets: &Presets) {
    let Some(status) = &presets.trigger_pause_status else { return };
    if let Some(block) = body.get_mut(key).filter(|b| b.is_map())
        && block.get("pause_status").is_none()
    {
        let loc = block.loc.clone();
        block.set("pause_status", Node::string(status, &loc));
    }
}

fn prefix_name(body: &mut Node, field: &str, prefix: &str, key: &str) {
    if prefix.is_empty() {
        return;
    }
    let loc = body.loc.clone();
    let name = body.get(field).and_then(Node::scalar_text).unwrap_or_else(|| key.to_string());
    let at = body.get(field).map_or(loc, |n| n.loc.clone());
    body.set(field, Node::string(format!("{prefix}{name}"), &at));
}

/// An experiment's name is a workspace path: the prefix goes on its last part.
fn prefix_experiment(body: &mut Node, prefix: &str) {
    let Some(node) = body.get_mut("name") else { return };
    let Some(name) = node.as_str().map(str::to_string) else { return };
    let named = match name.rsplit_once('/') {
        Some((dir, last)) => format!("{dir}/{prefix}{last}"),
        None => format!("{prefix}{name}"),
    };
    node.kind = Kind::Str(named);
}

fn map_tags(body: &mut Node, field: &str, tags: &[(String, String)]) {
    if tags.is_empty() {
        return;
    }
    let Some(map) = body.entry_map(field) else { return };
    let loc = map.loc.clone();
    for (key, value) in tags {
        if map.get(key).is_none() {
            map.set(key, Node::string(value, &loc));
        }
    }
}

/// Tags as `[{key, value}]` (experiments, models, serving endpoints).
fn list_tags(body: &mut Node, tags: &[(String, String)]) {
    if tags.is_empty() {
        return;
    }
    let loc = body.loc.clone();
    if body.get("tags").is_none() {
        body.set("tags", Node::new(Kind::Seq(Vec::new()), loc.clone()));
    }
    let Some(Node { kind: Kind::Seq(items), .. }) = body.get_mut("tags") else { return };
    for (key, value) in tags {
        if !items.iter().any(|t| t.get("key").and_then(Node::as_str) == Some(key)) {
            let mut tag = Node::new(Kind::Map(Vec::new()), loc.clone());
            tag.set("key", Node::string(key, &loc));
            tag.set("value", Node::string(value, &loc));
            items.push(tag);
        }
    }
}

/// `[dev alice] ` as `dev_alice_`: Unity Catalog and serving endpoint
/// names allow only letters, digits, `_` (and `-`).
pub fn normalize_prefix(prefix: &str) -> String {
    let mut out = String::new();
    for c in prefix.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' };
        if !(c == '_' && (out.is_empty() || out.ends_with('_'))) {
            out.push(c);
        }
    }
    if !out.is_empty() && !out.ends_with('_') {
        out.push('_');
    }
    out
}

/// What `mode: production` refuses (errors at the offending key, or at
/// the `mode:` line when a key is missing) and warns about.
fn production(
    tree: &Node,
    context: &Context,
    root: &Path,
    at: &Location,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) {
    let pipelines = tree.get("resources").and_then(|r| r.get("pipelines"));
    for (key, pipeline) in pipelines.map(Node::entries).unwrap_or_default() {
        if let Some(dev) = pipeline.get("development").filter(|d| d.as_bool() == Some(true)) {
            let summary = "target with 'mode: production' cannot include a pipeline with 'development: true'";
            errors.push(error(summary, Some(dev.loc.clone()), &format!("resources.pipelines.{key}.development")));
        }
    }
    if let Some(expected) = tree.get("bundle").and_then(|b| b.get("git")).and_then(|g| g.get("branch")) {
        let want = expected.scalar_text().unwrap_or_default();
        if let Some(actual) = super::sync::git_branch(root).filter(|actual| *actual != want) {
            let summary = format!(
                "not on the right Git branch:\n  expected according to configuration: {want}\n  actual: {actual}"
            );
            errors.push(error(summary, Some(expected.loc.clone()), "bundle.git.branch"));
        }
    }
    let run_as_sp = tree.get("run_as").and_then(|r| r.get("service_principal_name")).is_some();
    if !context.root_path_set && !run_as_sp {
        let summary = format!(
            "target with 'mode: production' must set 'workspace.root_path' to make sure only one copy is deployed. A common practice is to use a username or principal name in this path, i.e. root_path: /Workspace/Users/{}/.bundle/${{bundle.name}}/${{bundle.target}}",
            context.user.user_name
        );
        errors.push(error(summary, Some(at.clone()), "workspace.root_path"));
    }
    if tree.get("permissions").is_none_or(|p| p.items().is_empty()) && !run_as_sp {
        warnings.push(Diagnostic {
            severity: Severity::Warning,
            summary: "target with 'mode: production' should set 'permissions' (or run_as a service principal) so that others can manage what it deploys".to_string(),
            location: Some(at.clone()),
            path: "permissions".to_string(),
        });
    }
}
