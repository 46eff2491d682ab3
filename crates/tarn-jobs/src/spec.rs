//! A job's settings as Databricks checks them at create, reset and update:
//! unique task keys, one task type each, known dependencies without a
//! cycle, `run_if` and condition operators from their sets, compute that
//! exists, and dynamic value references that name something. The settings
//! are stored as sent; this module only reads them.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::error::{JobsError, Result, invalid};
use crate::references::{self, Scope};
use crate::runs::dag::{self, Node};
use crate::settings::{ForEachTask, JobSettings, PipelineTask, TaskSettings};
use crate::tasks::dbt::DbtSpec;

/// Task types tarn runs.
const TASK_TYPES: &[&str] = &[
    "notebook_task",
    "spark_python_task",
    "python_wheel_task",
    "sql_task",
    "condition_task",
    "run_job_task",
    "for_each_task",
    "pipeline_task",
    "dbt_task",
];
/// Task types Databricks has and tarn does not run (yet).
const LATER_TASK_TYPES: &[&str] = &[
    "spark_jar_task",
    "spark_submit_task",
    "dbt_cloud_task",
    "dashboard_task",
    "power_bi_task",
    "alert_task",
    "clean_rooms_notebook_task",
    "gen_ai_compute_task",
];
pub const RUN_IFS: &[&str] =
    &["ALL_SUCCESS", "AT_LEAST_ONE_SUCCESS", "NONE_FAILED", "ALL_DONE", "AT_LEAST_ONE_FAILED", "ALL_FAILED"];
pub const CONDITION_OPS: &[&str] =
    &["EQUAL_TO", "NOT_EQUAL", "GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL"];
const MAX_TASKS: usize = 1000;

/// What the job defines, for checking each task against it.
struct Defined<'a> {
    job_clusters: HashSet<&'a str>,
    environments: HashSet<&'a str>,
    cluster_exists: &'a dyn Fn(&str) -> bool,
    warehouse_exists: &'a dyn Fn(&str) -> bool,
    has_git_source: bool,
}

fn keys_unique<'a>(keys: impl Iterator<Item = &'a str>, what: &str) -> Result<HashSet<&'a str>> {
    let mut seen = HashSet::new();
    for key in keys {
        if key.is_empty() {
            return Err(invalid(format!("Every {what} needs a non-empty key")));
        }
        if !seen.insert(key) {
            return Err(invalid(format!("Duplicate {what} key '{key}'")));
        }
    }
    Ok(seen)
}

fn non_negative(value: Option<i64>, what: &str) -> Result<()> {
    match value {
        Some(v) if v < 0 => Err(invalid(format!("{what} must not be negative, got {v}"))),
        _ => Ok(()),
    }
}

/// Checks settings read with [`JobSettings::parse`]; `cluster_exists`
/// answers whether an `existing_cluster_id` names a cluster. Any
/// `warehouse_id` is taken; [`validate_with`] checks them too.
pub fn validate(parsed: &JobSettings, cluster_exists: &dyn Fn(&str) -> bool) -> Result<()> {
    validate_with(parsed, cluster_exists, &|_| true)
}

/// [`validate`], with `warehouse_exists` answering whether a task's
/// `warehouse_id` names a SQL warehouse.
pub fn validate_with(
    parsed: &JobSettings,
    cluster_exists: &dyn Fn(&str) -> bool,
    warehouse_exists: &dyn Fn(&str) -> bool,
) -> Result<()> {
    if let Some(n) = parsed.max_concurrent_runs.filter(|n| !(0..=1000).contains(n)) {
        return Err(invalid(format!("max_concurrent_runs must be between 0 and 1000, got {n}")));
    }
    non_negative(parsed.timeout_seconds, "timeout_seconds")?;
    tarn_core::run_as::named(&parsed.raw).map_err(invalid)?;
    if parsed.tasks.len() > MAX_TASKS {
        return Err(invalid(format!("A job has at most {MAX_TASKS} tasks, got {}", parsed.tasks.len())));
    }
    let defined = Defined {
        job_clusters: keys_unique(parsed.job_clusters.iter().map(|c| c.job_cluster_key.as_str()), "job cluster")?,
        environments: keys_unique(parsed.environments.iter().map(|e| e.environment_key.as_str()), "environment")?,
        cluster_exists,
        warehouse_exists,
        has_git_source: parsed.raw.get("git_source").is_some_and(|g| !g.is_null()),
    };
    let parameters = keys_unique(parsed.parameters.iter().map(|p| p.name.as_str()), "job parameter")?;
    let tasks = &parsed.tasks;
    let keys = keys_unique(tasks.iter().map(|t| t.task_key.as_str()), "task")?;
    let by_key: HashMap<&str, &TaskSettings> = tasks.iter().map(|t| (t.task_key.as_str(), t)).collect();
    let nodes: Vec<Node> = tasks.iter().map(Node::of).collect();
    let upstream_by_key = dag::upstream(&nodes);
    let none = HashSet::new();
    for task in tasks {
        check_task(task, &defined)?;
        check_dependencies(task, &by_key)?;
        let upstream = upstream_by_key.get(&task.task_key).unwrap_or(&none);
        let scope = Scope { tasks: &keys, upstream, parameters: &parameters, in_for_each: false };
        check_references(&task.raw, &scope, task)?;
    }
    check_acyclic(tasks)?;
    crate::schedule::check(&parsed.raw)
}

fn check_task(task: &TaskSettings, defined: &Defined<'_>) -> Result<()> {
    let raw = &task.raw;
    let key = &task.task_key;
    if key.len() > 100 || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(invalid(format!("Invalid task_key '{key}': use at most 100 letters, digits, '_' and '-'")));
    }
    let types: Vec<&str> = TASK_TYPES
        .iter()
        .chain(LATER_TASK_TYPES)
        .copied()
        .filter(|t| raw.get(t).is_some_and(|v| !v.is_null()))
        .collect();
    match types.as_slice() {
        [] => return Err(invalid(format!("Task {key} has no task type (one of {})", TASK_TYPES.join(", ")))),
        [one] if LATER_TASK_TYPES.contains(one) => {
            return Err(JobsError::NotImplemented(format!("Task {key}: {one} is not implemented by tarn yet")));
        }
        ["sql_task"] if raw.pointer("/sql_task/dashboard").is_some() => {
            return Err(JobsError::NotImplemented(format!(
                "Task {key}: tarn runs sql_task with a file, a query or an alert; dashboards are not implemented"
            )));
        }
        ["sql_task"] if ["file", "query", "alert"].iter().all(|k| raw["sql_task"].get(k).is_none()) => {
            return Err(invalid(format!("Task {key}: sql_task needs one of file, query, alert")));
        }
        [_] => {}
        many => return Err(invalid(format!("Task {key} has more than one task type: {}", many.join(", ")))),
    }
    let compute = [task.existing_cluster_id.is_some(), task.job_cluster_key.is_some(), task.new_cluster.is_some()];
    if compute.iter().filter(|c| **c).count() > 1 {
        return Err(invalid(format!(
            "Task {key} names more than one of existing_cluster_id, job_cluster_key and new_cluster"
        )));
    }
    if let Some(id) = &task.existing_cluster_id
        && !(defined.cluster_exists)(id)
    {
        return Err(invalid(format!("Task {key}: cluster {id} does not exist")));
    }
    if let Some(cluster) = task.job_cluster_key.as_deref().filter(|c| !defined.job_clusters.contains(c)) {
        return Err(invalid(format!("Task {key}: job_cluster_key '{cluster}' is not among the job's job_clusters")));
    }
    if let Some(env) = task.environment_key.as_deref().filter(|e| !defined.environments.contains(e)) {
        return Err(invalid(format!("Task {key}: environment_key '{env}' is not among the job's environments")));
    }
    if let Some(run_if) = task.run_if.as_deref().filter(|r| !RUN_IFS.contains(r)) {
        return Err(invalid(format!("Task {key}: run_if '{run_if}' is not one of {}", RUN_IFS.join(", "))));
    }
    if let Some(n) = task.max_retries.filter(|n| *n < -1) {
        return Err(invalid(format!("Task {key}: max_retries must be -1 (always) or more, got {n}")));
    }
    non_negative(task.min_retry_interval_millis, &format!("Task {key}: min_retry_interval_millis"))?;
    non_negative(task.timeout_seconds, &format!("Task {key}: timeout_seconds"))?;
    if let Some(condition) = &task.condition_task {
        match condition.op.as_deref() {
            Some(op) if CONDITION_OPS.contains(&op) => {}
            other => {
                return Err(invalid(format!(
                    "Task {key}: condition_task op {other:?} is not one of {}",
                    CONDITION_OPS.join(", ")
                )));
            }
        }
        if condition.left.is_none() || condition.right.is_none() {
            return Err(invalid(format!("Task {key}: condition_task needs left and right")));
        }
    }
    if let Some(each) = &task.for_each_task {
        check_for_each(key, each, defined)?;
    }
    if let Some(pipeline) = &task.pipeline_task {
        check_pipeline(key, pipeline, &raw["pipeline_task"])?;
    }
    if let Some(dbt) = raw.get("dbt_task").filter(|v| !v.is_null()) {
        check_dbt(key, dbt, defined)?;
    }
    Ok(())
}

/// Pipeline options tarn's updates do not take.
const LATER_PIPELINE_OPTIONS: &[&str] = &["parameters", "refresh_flow_selection", "reset_checkpoint_selection"];

/// A pipeline task names its pipeline and refreshes as `start_update` allows.
/// Whether the pipeline exists is known when the task runs (as on Databricks).
fn check_pipeline(key: &str, pipeline: &PipelineTask, raw: &Value) -> Result<()> {
    if pipeline.pipeline_id.as_deref().is_none_or(|id| id.trim().is_empty()) {
        return Err(invalid(format!("Task {key}: pipeline_task needs a pipeline_id")));
    }
    if pipeline.full_refresh && !pipeline.full_refresh_selection.is_empty() {
        return Err(invalid(format!(
            "Task {key}: pipeline_task cannot have both full_refresh and full_refresh_selection"
        )));
    }
    let empty = |v: &Value| {
        v.is_null() || v.as_object().is_some_and(|o| o.is_empty()) || v.as_array().is_some_and(Vec::is_empty)
    };
    if let Some(option) = LATER_PIPELINE_OPTIONS.iter().find(|o| raw.get(**o).is_some_and(|v| !empty(v))) {
        return Err(JobsError::NotImplemented(format!(
            "Task {key}: pipeline_task's {option} is not implemented by tarn yet"
        )));
    }
    Ok(())
}

/// A dbt task's commands and directories as `tasks::dbt` reads them, and
/// its warehouse, which must exist when the job is stored (as on Databricks).
fn check_dbt(key: &str, raw: &Value, defined: &Defined<'_>) -> Result<()> {
    let dbt = DbtSpec::parse(raw, defined.has_git_source).map_err(|e| invalid(format!("Task {key}: {e}")))?;
    match dbt.warehouse_id {
        Some(id) if !(defined.warehouse_exists)(&id) => {
            Err(invalid(format!("Task {key}: dbt_task.warehouse_id '{id}' does not name a SQL warehouse")))
        }
        _ => Ok(()),
    }
}

fn check_for_each(key: &str, each: &ForEachTask, defined: &Defined<'_>) -> Result<()> {
    if each.inputs.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(format!("Task {key}: for_each_task needs inputs")));
    }
    if let Some(n) = each.concurrency.filter(|n| !(1..=100).contains(n)) {
        return Err(invalid(format!("Task {key}: for_each_task concurrency must be between 1 and 100, got {n}")));
    }
    let raw = each.task.as_ref().ok_or_else(|| invalid(format!("Task {key}: for_each_task needs a task")))?;
    let nested = TaskSettings::parse(raw)?;
    if nested.for_each_task.is_some() {
        return Err(invalid(format!("Task {key}: a for_each_task cannot nest another")));
    }
    check_task(&nested, defined)
}

fn check_dependencies(task: &TaskSettings, by_key: &HashMap<&str, &TaskSettings>) -> Result<()> {
    let key = &task.task_key;
    for dep in &task.depends_on {
        let Some(upstream) = by_key.get(dep.task_key.as_str()) else {
            return Err(invalid(format!("Task {key} depends on '{}', which is not a task of this job", dep.task_key)));
        };
        if dep.task_key == *key {
            return Err(invalid(format!("Task {key} depends on itself")));
        }
        match (&dep.outcome, upstream.condition_task.is_some()) {
            (None, _) => {}
            (Some(o), true) if o == "true" || o == "false" => {}
            (Some(o), true) => {
                return Err(invalid(format!(
                    "Task {key}: outcome '{o}' of {} must be 'true' or 'false'",
                    dep.task_key
                )));
            }
            (Some(_), false) => {
                return Err(invalid(format!(
                    "Task {key}: an outcome applies only to a condition_task, and {} is not one",
                    dep.task_key
                )));
            }
        }
    }
    Ok(())
}

fn check_references(raw: &Value, scope: &Scope<'_>, task: &TaskSettings) -> Result<()> {
    let mut found = Vec::new();
    // The nested task of a for_each has `{{input}}`; the rest does not.
    let nested = raw.get("for_each_task").and_then(|f| f.get("task"));
    for (name, value) in raw.as_object().into_iter().flatten() {
        if name != "for_each_task" {
            references::find(value, &mut found);
        }
    }
    if let Some(each) = raw.get("for_each_task") {
        references::find(each.get("inputs").unwrap_or(&Value::Null), &mut found);
    }
    let in_task = |e: JobsError| match e {
        JobsError::InvalidParameter(m) => invalid(format!("Task {}: {m}", task.task_key)),
        other => other,
    };
    for reference in &found {
        references::check(reference, scope).map_err(in_task)?;
    }
    if let Some(nested) = nested {
        let mut inner = Vec::new();
        references::find(nested, &mut inner);
        let scope = Scope { in_for_each: true, ..*scope };
        for reference in &inner {
            references::check(reference, &scope).map_err(in_task)?;
        }
    }
    Ok(())
}

/// Refuses a cycle in `depends_on`, naming it (`a -> b -> a`).
fn check_acyclic(tasks: &[TaskSettings]) -> Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unseen,
        OnPath,
        Done,
    }
    let index: HashMap<&str, usize> = tasks.iter().enumerate().map(|(i, t)| (t.task_key.as_str(), i)).collect();
    let edges: Vec<Vec<usize>> = tasks
        .iter()
        .map(|t| t.depends_on.iter().filter_map(|d| index.get(d.task_key.as_str()).copied()).collect())
        .collect();
    let mut marks = vec![Mark::Unseen; tasks.len()];
    for start in 0..tasks.len() {
        if marks[start] != Mark::Unseen {
            continue;
        }
        // Iterative DFS: (node, next edge to follow).
        let mut path: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            if let Some(&up) = edges[node].get(*next) {
                *next += 1;
                match marks[up] {
                    Mark::Unseen => {
                        marks[up] = Mark::OnPath;
                        path.push((up, 0));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|(n, _)| *n == up).unwrap_or(0);
                        let mut cycle: Vec<&str> =
                            path[from..].iter().map(|(n, _)| tasks[*n].task_key.as_str()).collect();
                        cycle.push(&tasks[up].task_key);
                        return Err(invalid(format!(
                            "The job's task dependencies have a cycle: {}",
                            cycle.join(" -> ")
                        )));
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                path.pop();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(settings: Value) -> Result<()> {
        validate(&JobSettings::from_value(settings)?, &|id| id == "0101-000000-abcdefgh")
    }

    fn message(settings: Value) -> String {
        match check(settings) {
            Err(JobsError::InvalidParameter(m)) => m,
            other => panic!("expected INVALID_PARAMETER_VALUE, got {other:?}"),
        }
    }

    fn task(key: &str, deps: &[&str]) -> Value {
        let depends_on: Vec<Value> = deps.iter().map(|d| json!({"task_key": d})).collect();
        json!({"task_key": key, "depends_on": depends_on, "notebook_task": {"notebook_path": "/n"}})
    }

    #[test]
    fn a_valid_dag_with_a_condition_branch_passes() {
        let settings = json!({
            "name": "ml",
            "parameters": [{"name": "threshold", "default": "0.8"}],
            "job_clusters": [{"job_cluster_key": "main", "new_cluster": {"num_workers": 1}}],
            "tasks": [
                task("prep", &[]),
                {"task_key": "train", "depends_on": [{"task_key": "prep"}], "job_cluster_key": "main",
                 "spark_python_task": {"python_file": "/Workspace/t.py", "parameters": ["{{job.parameters.threshold}}"]}},
                {"task_key": "gate", "depends_on": [{"task_key": "train"}],
                 "condition_task": {"op": "GREATER_THAN", "left": "{{tasks.train.values.acc}}", "right": "{{job.parameters.threshold}}"}},
                {"task_key": "register", "depends_on": [{"task_key": "gate", "outcome": "true"}], "run_if": "ALL_SUCCESS",
                 "existing_cluster_id": "0101-000000-abcdefgh", "notebook_task": {"notebook_path": "/r"}},
            ]
        });
        check(settings).unwrap();
    }

    #[test]
    fn bad_settings_are_refused_naming_the_problem() {
        assert!(
            message(json!({"tasks": [task("a", &["c"]), task("b", &["a"]), task("c", &["b"])]}))
                .contains("cycle: a -> c -> b -> a")
        );
        assert!(message(json!({"tasks": [task("a", &["ghost"])]})).contains("'ghost'"));
        assert!(message(json!({"tasks": [task("a", &[]), task("a", &[])]})).contains("Duplicate task key 'a'"));
        assert!(message(json!({"tasks": [{"task_key": "", "notebook_task": {}}]})).contains("non-empty key"));
        let unknown_cluster = json!({"tasks": [{"task_key": "a", "existing_cluster_id": "nope", "notebook_task": {}}]});
        assert!(message(unknown_cluster).contains("cluster nope does not exist"));
        let unknown_value = json!({"tasks": [task("a", &[]), {"task_key": "b", "depends_on": [{"task_key": "a"}],
            "notebook_task": {"notebook_path": "/n", "base_parameters": {"x": "{{tasks.zzz.values.acc}}"}}}]});
        assert!(message(unknown_value).contains("no task 'zzz'"));
        assert!(message(json!({"tasks": [{"task_key": "a"}]})).contains("no task type"));
        let outcome = json!({"tasks": [task("a", &[]), {"task_key": "b", "depends_on": [{"task_key": "a", "outcome": "true"}],
            "notebook_task": {}}]});
        assert!(message(outcome).contains("only to a condition_task"));
        assert!(
            message(json!({"tasks": [{"task_key": "a", "run_if": "SOMETIMES", "notebook_task": {}}]}))
                .contains("run_if")
        );
        let jar = check(json!({"tasks": [{"task_key": "j", "spark_jar_task": {"main_class_name": "M"}}]}));
        assert!(matches!(jar, Err(JobsError::NotImplemented(_))));
    }

    #[test]
    fn pipeline_tasks_name_their_pipeline() {
        let pipeline = |spec: Value| json!({"tasks": [{"task_key": "p", "pipeline_task": spec}]});
        check(pipeline(json!({"pipeline_id": "1234", "full_refresh": true}))).unwrap();
        assert!(message(pipeline(json!({"full_refresh": true}))).contains("needs a pipeline_id"));
        assert!(message(pipeline(json!({"pipeline_id": "1234", "full_refresh": "yes"}))).contains("Invalid task"));
        let both = pipeline(json!({"pipeline_id": "1", "full_refresh": true, "full_refresh_selection": ["t"]}));
        assert!(message(both).contains("both full_refresh and full_refresh_selection"));
        let later = check(pipeline(json!({"pipeline_id": "1", "parameters": {"a": "b"}})));
        assert!(matches!(later, Err(JobsError::NotImplemented(m)) if m.contains("parameters")));
        check(pipeline(json!({"pipeline_id": "1", "parameters": {}}))).unwrap();
    }

    #[test]
    fn for_each_tasks_have_their_input() {
        let each = |value: &str| {
            json!({"tasks": [{"task_key": "loop", "for_each_task": {"inputs": "[1,2]", "concurrency": 2,
                "task": {"task_key": "inner", "notebook_task": {"notebook_path": "/n", "base_parameters": {"v": value}}}}}]})
        };
        check(each("{{input}}")).unwrap();
        assert!(message(each("{{job.parameters.none}}")).contains("no parameter 'none'"));
        let outside = json!({"tasks": [{"task_key": "a", "notebook_task": {"base_parameters": {"v": "{{input}}"}}}]});
        assert!(message(outside).contains("{{input}}"));
    }
}
