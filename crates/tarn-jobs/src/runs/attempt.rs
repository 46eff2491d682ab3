//! One task attempt: its references resolved, its compute found (job
//! clusters created once per run), its work run with the task's timeout,
//! and what it ended with recorded (state, output, logs, task values).
//! Condition tasks are decided here; a `run_job_task` triggers and awaits
//! another job's run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tarn_core::time::now_ms;
use tarn_store::JobRunRow;
use tokio::sync::OnceCell;

use super::state::{LifeCycle, ResultState, RunState};
use super::{Bindings, Runs, Trigger, for_each};
use crate::error::Result;
use crate::tasks::{Attempt, Ending, Outcome, TaskCompute};

/// Task values: each at most this many bytes of JSON.
const VALUE_LIMIT: usize = 48 * 1024;
/// Logs kept for `runs/get-output`.
pub(super) const LOG_LIMIT: usize = 5 * 1024 * 1024;

#[derive(Clone)]
pub(super) struct Start {
    pub runs: Runs,
    pub run: Arc<JobRunRow>,
    pub row: JobRunRow,
    pub task: Value,
    pub bindings: Bindings,
    pub upstream: Map<String, Value>,
    pub clusters: Arc<JobClusters>,
}

pub(super) struct Finished {
    pub key: String,
    pub task_run_id: i64,
    pub end: AttemptEnd,
}

pub(super) enum AttemptEnd {
    Ran(Outcome),
    TimedOut(u64),
    Condition(bool),
    /// Succeeded without output of its own (a for-each task).
    Done,
    RunJob {
        run_id: i64,
        result: Option<ResultState>,
    },
    /// It could not start: a reference with no value, compute that failed.
    Unresolved(String),
}

/// A job cluster's id once it runs, or why it did not start.
type ClusterCell = Arc<OnceCell<std::result::Result<String, String>>>;

/// The run's job clusters, created when a task first needs one.
#[derive(Default)]
pub(super) struct JobClusters {
    cells: Mutex<HashMap<String, ClusterCell>>,
    created: Mutex<Vec<String>>,
}

impl JobClusters {
    pub fn created(&self) -> Vec<String> {
        self.created.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, cluster_id: &str) {
        self.created.lock().unwrap_or_else(|p| p.into_inner()).push(cluster_id.to_string());
    }

    async fn shared(&self, runs: &Runs, run: &JobRunRow, key: &str) -> std::result::Result<String, String> {
        let cell = self.cells.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_string()).or_default().clone();
        let spec = run
            .doc
            .pointer("/settings/job_clusters")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c.get("job_cluster_key").and_then(Value::as_str) == Some(key)))
            .and_then(|c| c.get("new_cluster"))
            .cloned()
            .unwrap_or(Value::Null);
        let init = async {
            let engines = runs.engines();
            let cluster_id = engines.create_job_cluster(&spec, run.run_id, key, &run.creator_user_name)?;
            self.record(&cluster_id);
            engines.ensure_running(&cluster_id, &run.creator_user_name).await.map(|()| cluster_id)
        };
        cell.get_or_init(|| init).await.clone()
    }
}

pub(super) async fn run(start: Start) -> Finished {
    let key = start.row.task_key.clone().unwrap_or_default();
    let task_run_id = start.row.run_id;
    let resolved = match start.task.get("for_each_task") {
        Some(_) => for_each::resolve_outer(&start),
        None => start.bindings.resolve(&start.task),
    };
    let end = match resolved {
        Ok(task) => execute(&start, task).await,
        Err(e) => AttemptEnd::Unresolved(e),
    };
    Finished { key, task_run_id, end }
}

pub(super) async fn execute(start: &Start, task: Value) -> AttemptEnd {
    let (each, condition, job) = (task.get("for_each_task"), task.get("condition_task"), task.get("run_job_task"));
    if (each.is_some() || condition.is_some() || job.is_some())
        && let Err(e) = mark_running(start, &task, None)
    {
        return AttemptEnd::Unresolved(format!("tarn could not record the task's start: {e}"));
    }
    if let Some(each) = each {
        return for_each::run(start, each).await;
    }
    if let Some(condition) = condition {
        return match evaluate(condition) {
            Ok(outcome) => AttemptEnd::Condition(outcome),
            Err(e) => AttemptEnd::Ran(Outcome::failed(e)),
        };
    }
    if let Some(spec) = job {
        return run_job(start, spec).await;
    }
    // The task stays PENDING until a slot is free and its compute runs.
    let Ok(_permit) = start.runs.slots().acquire_owned().await else {
        return AttemptEnd::Unresolved("tarn is stopping".into());
    };
    let compute = match compute(start, &task).await {
        Ok(c) => c,
        Err(e) => return AttemptEnd::Unresolved(e),
    };
    let cluster = match &compute {
        TaskCompute::Cluster(id) => Some(id.as_str()),
        TaskCompute::Serverless => None,
    };
    if let Err(e) = mark_running(start, &task, cluster) {
        return AttemptEnd::Unresolved(format!("tarn could not record the task's start: {e}"));
    }
    let attempt = Attempt {
        task_run_id: start.row.run_id,
        widgets: widgets(start, &task),
        task: with_overrides(start, task.clone()),
        compute,
        upstream_values: start.upstream.clone(),
        dependencies: dependencies(&start.run, &task),
        user: start.run.creator_user_name.clone(),
    };
    let timeout = task.get("timeout_seconds").and_then(Value::as_u64).filter(|t| *t > 0);
    let work = start.runs.engines().run(attempt);
    match timeout {
        Some(seconds) => match tokio::time::timeout(Duration::from_secs(seconds), work).await {
            Ok(outcome) => AttemptEnd::Ran(outcome),
            Err(_) => AttemptEnd::TimedOut(seconds),
        },
        None => AttemptEnd::Ran(work.await),
    }
}

/// RUNNING, with the resolved task and the cluster it runs on. The row is
/// the attempt's own (the driver wrote it PENDING), so it is not re-read.
fn mark_running(start: &Start, task: &Value, cluster_id: Option<&str>) -> Result<()> {
    let mut row = start.row.clone();
    row.execution_start = Some(now_ms());
    row.doc["task"] = task.clone();
    if let Some(id) = cluster_id {
        row.doc["cluster_instance"] = json!({"cluster_id": id});
    }
    row.life_cycle_state = LifeCycle::Running.as_str().into();
    row.state_message = String::new();
    start.runs.store().update_job_run(&row)?;
    Ok(())
}

pub(super) fn update_doc(runs: &Runs, run_id: i64, change: impl FnOnce(&mut Value)) -> Result<()> {
    let mut row = runs.run_row(run_id)?;
    change(&mut row.doc);
    runs.store().update_job_run(&row)?;
    Ok(())
}

/// Where the task runs: its cluster, the run's job cluster, a cluster of
/// its own, or serverless compute.
async fn compute(start: &Start, task: &Value) -> std::result::Result<TaskCompute, String> {
    if task.get("sql_task").is_some() {
        return Ok(TaskCompute::Serverless);
    }
    if let Some(id) = task.get("existing_cluster_id").and_then(Value::as_str) {
        return Ok(TaskCompute::Cluster(id.to_string()));
    }
    if let Some(key) = task.get("job_cluster_key").and_then(Value::as_str) {
        return start.clusters.shared(&start.runs, &start.run, key).await.map(TaskCompute::Cluster);
    }
    if let Some(spec) = task.get("new_cluster") {
        let key = start.row.task_key.clone().unwrap_or_default();
        let engines = start.runs.engines();
        let id = engines.create_job_cluster(spec, start.run.run_id, &key, &start.run.creator_user_name)?;
        start.clusters.record(&id);
        engines.ensure_running(&id, &start.run.creator_user_name).await?;
        return Ok(TaskCompute::Cluster(id));
    }
    Ok(TaskCompute::Serverless)
}

/// Notebook widgets: the task's base parameters, run-now's notebook_params
/// over them, the job's parameters over both (as Databricks pushes them down).
fn widgets(start: &Start, task: &Value) -> Map<String, Value> {
    let mut widgets = Map::new();
    let overrides = start.run.doc.pointer("/overriding_parameters/notebook_params");
    for source in [task.pointer("/notebook_task/base_parameters"), overrides] {
        if let Some(Value::Object(map)) = source {
            widgets.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    widgets.extend(start.bindings.parameters.iter().map(|(k, v)| (k.clone(), v.clone())));
    widgets
}

/// The task's environment's dependencies (serverless), PyPI libraries and wheels.
fn dependencies(run: &JobRunRow, task: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(key) = task.get("environment_key").and_then(Value::as_str) {
        let environments = run.doc.pointer("/settings/environments").and_then(Value::as_array);
        let spec = environments
            .and_then(|es| es.iter().find(|e| e.get("environment_key").and_then(Value::as_str) == Some(key)));
        let listed = spec.and_then(|e| e.pointer("/spec/dependencies")).and_then(Value::as_array);
        out.extend(listed.into_iter().flatten().filter_map(Value::as_str).map(str::to_string));
    }
    let libraries = task.get("libraries").and_then(Value::as_array).into_iter().flatten();
    let packages = libraries.filter_map(|l| l.pointer("/pypi/package").or_else(|| l.get("whl")));
    out.extend(packages.filter_map(Value::as_str).map(str::to_string));
    out
}

/// run-now's `python_params` replace a Python task's parameters.
fn with_overrides(start: &Start, mut task: Value) -> Value {
    if let Some(params) = start.run.doc.pointer("/overriding_parameters/python_params")
        && let Some(spec) = task.get_mut("spark_python_task")
    {
        spec["parameters"] = params.clone();
    }
    task
}

/// EQUAL_TO and NOT_EQUAL compare strings; the ordering operators numbers.
pub(super) fn evaluate(condition: &Value) -> std::result::Result<bool, String> {
    let text = |f: &str| condition.get(f).and_then(Value::as_str).unwrap_or_default().to_string();
    let (op, left, right) = (text("op"), text("left"), text("right"));
    let number = |s: &str| {
        s.trim().parse::<f64>().map_err(|_| format!("The condition {op} compares numbers; '{s}' is not a number"))
    };
    Ok(match op.as_str() {
        "EQUAL_TO" => left == right,
        "NOT_EQUAL" => left != right,
        "GREATER_THAN" => number(&left)? > number(&right)?,
        "GREATER_THAN_OR_EQUAL" => number(&left)? >= number(&right)?,
        "LESS_THAN" => number(&left)? < number(&right)?,
        "LESS_THAN_OR_EQUAL" => number(&left)? <= number(&right)?,
        other => return Err(format!("Unknown condition operator '{other}'")),
    })
}

/// Cancels a triggered run if the task awaiting it is dropped.
struct ChildRun<'a> {
    runs: &'a Runs,
    run_id: i64,
    done: bool,
}

impl Drop for ChildRun<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.runs.cancel(self.run_id, "the parent run");
        }
    }
}

async fn run_job(start: &Start, spec: &Value) -> AttemptEnd {
    let Some(job_id) = spec.get("job_id").and_then(Value::as_i64) else {
        return AttemptEnd::Unresolved("run_job_task needs a job_id".into());
    };
    let runs = &start.runs;
    let triggered = runs.jobs().get(job_id).and_then(|job| {
        let parameters = super::effective_parameters(&job.settings, spec.get("job_parameters"))?;
        runs.trigger(Trigger {
            job_id: Some(job_id),
            run_name: job.settings.get("name").and_then(Value::as_str).unwrap_or("Untitled").to_string(),
            settings: job.settings,
            job_parameters: parameters,
            run_type: "WORKFLOW_RUN",
            trigger: "RUN_JOB_TASK",
            user: start.run.creator_user_name.clone(),
            parent_task_run_id: Some(start.row.run_id),
            ..Trigger::default()
        })
    });
    let run_id = match triggered {
        Ok(id) => id,
        Err(e) => return AttemptEnd::Unresolved(format!("The job {job_id} could not be run: {e}")),
    };
    let _ = update_doc(runs, start.row.run_id, |doc| doc["run_job_output"] = json!({"run_id": run_id}));
    let mut child = ChildRun { runs, run_id, done: false };
    runs.wait(run_id).await;
    child.done = true;
    let result = runs.run_row(run_id).ok().and_then(|r| r.result_state).and_then(|r| ResultState::parse(&r));
    AttemptEnd::RunJob { run_id, result }
}

/// Writes how the attempt ended; answers the row as written, its state and
/// a condition's outcome.
pub(super) fn record(runs: &Runs, mut row: JobRunRow, end: &AttemptEnd) -> Result<(JobRunRow, RunState, Option<bool>)> {
    let (state, outcome) = match end {
        AttemptEnd::Ran(outcome) => (keep_outcome(runs, &mut row, outcome), None),
        AttemptEnd::TimedOut(seconds) => {
            let message = format!("The task timed out after {seconds} seconds (its timeout_seconds)");
            row.doc["output"] = json!({"error": message});
            (RunState::ended(ResultState::TimedOut, message), None)
        }
        AttemptEnd::Done => (RunState::ended(ResultState::Success, ""), None),
        AttemptEnd::Condition(outcome) => {
            let mut condition = row.doc.pointer("/task/condition_task").cloned().unwrap_or(json!({}));
            condition["outcome"] = json!(outcome.to_string());
            row.doc["output"] = json!({"condition_task": condition});
            (RunState::ended(ResultState::Success, ""), Some(*outcome))
        }
        AttemptEnd::RunJob { run_id, result } => match result {
            Some(r) if r.is_success() => (RunState::ended(ResultState::Success, ""), None),
            other => {
                let ended = other.map(ResultState::as_str).unwrap_or("without a result");
                let message = format!("The triggered run {run_id} ended {ended}");
                row.doc["output"] = json!({"error": message});
                (RunState::ended(ResultState::Failed, message), None)
            }
        },
        AttemptEnd::Unresolved(message) => {
            row.doc["output"] = json!({"error": message});
            (RunState::ended(ResultState::Failed, message.clone()), None)
        }
    };
    let row = runs.write_state(row, &state)?;
    Ok((row, state, outcome))
}

fn keep_outcome(runs: &Runs, row: &mut JobRunRow, outcome: &Outcome) -> RunState {
    let path = runs.log_path(row.run_id);
    let written =
        path.parent().map(std::fs::create_dir_all).transpose().and_then(|_| std::fs::write(&path, &outcome.logs));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "writing a task's logs");
    }
    if let Some(usage) = outcome.cluster_id.as_deref().and_then(|id| usage(runs, row, id)) {
        row.doc["usage"] = usage;
    }
    let mut output = json!({});
    if let Some(result) = &outcome.notebook_result {
        output["notebook_output"] = json!({"result": result, "truncated": false});
    }
    let oversized: Vec<&String> =
        outcome.values.iter().filter(|(_, v)| v.to_string().len() > VALUE_LIMIT).map(|(k, _)| k).collect();
    row.doc["values"] = Value::Object(outcome.values.clone());
    match (&outcome.ending, oversized.first()) {
        (Ending::Success, None) => {
            row.doc["output"] = output;
            RunState::ended(ResultState::Success, "")
        }
        (Ending::Success, Some(key)) => {
            let message = format!("The task value '{key}' is larger than 48 KiB as JSON");
            output["error"] = json!(message);
            row.doc["output"] = output;
            RunState::ended(ResultState::Failed, message)
        }
        (Ending::Failed { error, trace }, _) => {
            output["error"] = json!(error);
            if let Some(trace) = trace {
                output["error_trace"] = json!(trace);
            }
            row.doc["output"] = output;
            RunState::ended(ResultState::Failed, error.clone())
        }
    }
}

/// The compute an attempt used: its cluster's cores times the seconds it
/// ran, and what that is estimated to cost at the configured rate. A SQL
/// task's cluster is the warehouse's, billed as the SQL product.
fn usage(runs: &Runs, row: &JobRunRow, cluster_id: &str) -> Option<Value> {
    let cluster = runs.engines().clusters.get(cluster_id).ok()?;
    let start = row.execution_start?;
    let end = now_ms();
    let core_seconds = f64::from(cluster.cores) * (end - start).max(0) as f64 / 1000.0;
    let rate = runs.config().cost_per_core_hour;
    let product = if row.doc.pointer("/task/sql_task").is_some() { "SQL" } else { "JOBS" };
    Some(json!({
        "cluster_id": cluster_id,
        "product": product,
        "cores": cluster.cores,
        "start_time": start,
        "end_time": end,
        "core_seconds": core_seconds,
        "estimated_cost": core_seconds / 3600.0 * rate,
    }))
}

#[cfg(test)]
mod tests {
    use super::evaluate;
    use serde_json::json;

    #[test]
    fn conditions_compare_strings_for_equality_and_numbers_for_order() {
        let c = |op: &str, l: &str, r: &str| evaluate(&json!({"op": op, "left": l, "right": r}));
        assert_eq!(c("EQUAL_TO", "12", "12"), Ok(true));
        assert_eq!(c("EQUAL_TO", "12.0", "12"), Ok(false), "equality is on strings");
        assert_eq!(c("NOT_EQUAL", "a", "b"), Ok(true));
        assert_eq!(c("GREATER_THAN", "0.93", "0.8"), Ok(true));
        assert_eq!(c("GREATER_THAN", "10", "9"), Ok(true), "ordering is on numbers");
        assert_eq!(c("LESS_THAN_OR_EQUAL", "2", "2"), Ok(true));
        assert!(c("LESS_THAN", "abc", "1").unwrap_err().contains("'abc' is not a number"));
    }
}
