//! One task attempt: its references resolved, its compute found, its work
//! run with the task's timeout. Condition tasks are decided here; a
//! `run_job_task` triggers and awaits another job's run; a `pipeline_task`
//! starts and awaits an update of its pipeline; a for-each task hands its
//! iterations to `for_each` with [`execute_boxed`] to run each.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::compute::{Place, compute};
use super::state::ResultState;
use super::task_run::{AttemptEnd, Finished, Start, end_children, mark_running, update_doc};
use super::{Runs, Trigger, for_each, pipeline_task};
use crate::settings::{ConditionTask, JobSettings, RunJobTask, TaskSettings};
use crate::tasks::{Attempt, BoxFuture, Outcome, TaskCompute, WorkerNotes};

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

/// Tasks whose code runs in a context's worker, which the attempt records
/// before it sends the worker any code.
const WORKER_TASKS: &[&str] = &["notebook_task", "spark_python_task", "python_wheel_task", "dbt_task"];

/// What an attempt an earlier driver started and left running ended with:
/// the run a `run_job_task` awaits is awaited again; a task whose worker
/// outlived that driver gives the worker's result (the runner's
/// `take_over`); a worker task that had no worker yet never ran its code
/// and runs now, as the same attempt; anything else cannot be resumed and
/// fails, so its retries (if any) run it again as a new attempt.
pub(super) async fn take_over(start: Start) -> Finished {
    let key = start.row.task_key.clone().unwrap_or_default();
    let task_run_id = start.row.run_id;
    let doc = &start.row.doc;
    let worker_task = WORKER_TASKS.iter().any(|t| start.task.get(*t).is_some());
    let end = if let Some(run_id) = doc.pointer("/run_job_output/run_id").and_then(Value::as_i64) {
        await_child(&start.runs, run_id).await
    } else if let Some(worker) = doc.get("worker") {
        AttemptEnd::Ran(start.runs.runner().take_over(worker).await)
    } else if worker_task {
        return run(start).await;
    } else {
        let message = "tarn stopped while this iteration ran; it was not resumed".to_string();
        if let Err(e) = end_children(&start.runs, task_run_id, &super::RunEvent::Abandoned { message }) {
            tracing::warn!(task_run_id, error = %e, "ending a for-each task's iterations");
        }
        AttemptEnd::Ran(Outcome::failed(
            "tarn stopped while this attempt was running and it cannot be resumed; it ended here",
        ))
    };
    Finished { key, task_run_id, end }
}

/// [`execute`] as a boxed future, for the for-each iterations (boxed:
/// a for-each task's `execute` awaits its iterations' `execute`).
pub(super) fn execute_boxed(start: &Start, task: Value) -> BoxFuture<'_, AttemptEnd> {
    Box::pin(execute(start, task))
}

pub(super) async fn execute(start: &Start, task: Value) -> AttemptEnd {
    // The attempt's resolved task, read once; its JSON stays in `typed.raw`.
    let typed = match TaskSettings::from_value(task) {
        Ok(typed) => typed,
        Err(e) => return AttemptEnd::Unresolved(e.to_string()),
    };
    let special = typed.for_each_task.is_some()
        || typed.condition_task.is_some()
        || typed.run_job_task.is_some()
        || typed.pipeline_task.is_some();
    if special && let Err(e) = mark_running(start, &typed.raw, None) {
        return AttemptEnd::Unresolved(format!("tarn could not record the task's start: {e}"));
    }
    if let Some(each) = &typed.for_each_task {
        return for_each::run(start, each, execute_boxed).await;
    }
    if let Some(condition) = &typed.condition_task {
        return match evaluate(condition) {
            Ok(outcome) => AttemptEnd::Condition(outcome),
            Err(e) => AttemptEnd::Ran(Outcome::failed(e)),
        };
    }
    if let Some(spec) = &typed.run_job_task {
        return run_job(start, spec).await;
    }
    if let Some(spec) = &typed.pipeline_task {
        return within(typed.timeout(), pipeline_task::run(start, spec)).await;
    }
    // The task stays PENDING until a slot is free and its compute runs.
    let Ok(_permit) = start.runs.slots().acquire_owned().await else {
        return AttemptEnd::Unresolved("tarn is stopping".into());
    };
    let place = Place { runs: &start.runs, run: &start.run, settings: &start.settings, clusters: &start.clusters };
    let compute = match compute(place, &typed).await {
        Ok(c) => c,
        Err(e) => return AttemptEnd::Unresolved(e),
    };
    let cluster = match &compute {
        TaskCompute::Cluster(id) => Some(id.as_str()),
        TaskCompute::Serverless => None,
    };
    if let Err(e) = mark_running(start, &typed.raw, cluster) {
        return AttemptEnd::Unresolved(format!("tarn could not record the task's start: {e}"));
    }
    let (widgets, dependencies, timeout) =
        (widgets(start, &typed), dependencies(&start.settings, &typed), typed.timeout());
    let attempt = Attempt {
        task_run_id: start.row.run_id,
        widgets,
        task: with_overrides(start, typed.raw),
        compute,
        upstream_values: start.upstream.clone(),
        dependencies,
        user: super::run_as(&start.run).to_string(),
        git: start.git.clone(),
        notes: worker_notes(&start.runs, start.row.run_id),
    };
    let work = start.runs.runner().run(attempt);
    within(timeout, async { AttemptEnd::Ran(work.await) }).await
}

/// Writes the attempt's worker on its task run, for a tarn that takes over.
fn worker_notes(runs: &Runs, task_run_id: i64) -> WorkerNotes {
    let runs = runs.clone();
    WorkerNotes::new(move |worker| {
        let worker = worker.clone();
        if let Err(e) = update_doc(&runs, task_run_id, |doc| doc["worker"] = worker) {
            tracing::warn!(task_run_id, error = %e, "recording a task's worker");
        }
    })
}

/// `work` under the task's timeout; past it, the work is dropped (stopped).
async fn within(limit: Option<Duration>, work: impl Future<Output = AttemptEnd>) -> AttemptEnd {
    match limit {
        Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or(AttemptEnd::TimedOut(limit.as_secs())),
        None => work.await,
    }
}

/// Notebook widgets: the task's base parameters, run-now's notebook_params
/// over them, the job's parameters over both (as Databricks pushes them down).
fn widgets(start: &Start, task: &TaskSettings) -> Map<String, Value> {
    let mut widgets = Map::new();
    let base = task.notebook_task.as_ref().map(|n| &n.base_parameters);
    for source in [base, start.overriding.notebook_params.as_ref()].into_iter().flatten() {
        widgets.extend(source.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    widgets.extend(start.bindings.parameters.iter().map(|(k, v)| (k.clone(), v.clone())));
    widgets
}

/// The task's environment's dependencies (serverless), PyPI libraries and wheels.
fn dependencies(settings: &JobSettings, task: &TaskSettings) -> Vec<String> {
    let environment = task.environment_key.as_deref().and_then(|key| settings.environment(key));
    let mut out: Vec<String> = environment.map(|e| e.spec.dependencies.clone()).unwrap_or_default();
    for library in &task.libraries {
        out.extend(library.pypi.as_ref().map(|p| p.package.clone()).or_else(|| library.whl.clone()));
    }
    out
}

/// run-now's `python_params` replace a Python task's parameters, its
/// `dbt_commands` a dbt task's commands (checked when the task runs).
fn with_overrides(start: &Start, mut task: Value) -> Value {
    if let Some(params) = &start.overriding.python_params
        && let Some(spec) = task.get_mut("spark_python_task")
    {
        spec["parameters"] = params.clone();
    }
    if let Some(commands) = &start.overriding.dbt_commands
        && let Some(spec) = task.get_mut("dbt_task")
    {
        spec["commands"] = commands.clone();
    }
    task
}

/// EQUAL_TO and NOT_EQUAL compare strings; the ordering operators numbers.
pub(super) fn evaluate(condition: &ConditionTask) -> std::result::Result<bool, String> {
    let text = |f: &Option<String>| f.clone().unwrap_or_default();
    let (op, left, right) = (text(&condition.op), text(&condition.left), text(&condition.right));
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

async fn run_job(start: &Start, spec: &RunJobTask) -> AttemptEnd {
    let Some(job_id) = spec.job_id else {
        return AttemptEnd::Unresolved("run_job_task needs a job_id".into());
    };
    let runs = &start.runs;
    let triggered = runs.jobs().get(job_id).and_then(|job| {
        let settings = JobSettings::from_value(job.settings.clone())?;
        let parameters = super::effective_parameters(&settings, spec.job_parameters.as_ref())?;
        let trigger = Trigger {
            run_as: super::job_run_as(&job, &settings),
            job_id: Some(job_id),
            run_name: settings.name().to_string(),
            settings,
            job_parameters: parameters,
            run_type: "WORKFLOW_RUN",
            trigger: "RUN_JOB_TASK",
            user: super::run_as(&start.run).to_string(),
            parent_task_run_id: Some(start.row.run_id),
            ..Trigger::default()
        };
        runs.trigger(trigger)
    });
    let run_id = match triggered {
        Ok(id) => id,
        Err(e) => return AttemptEnd::Unresolved(format!("The job {job_id} could not be run: {e}")),
    };
    let _ = update_doc(runs, start.row.run_id, |doc| doc["run_job_output"] = json!({"run_id": run_id}));
    await_child(runs, run_id).await
}

/// Waits for the run a `run_job_task` triggered; dropped, it cancels it.
async fn await_child(runs: &Runs, run_id: i64) -> AttemptEnd {
    let mut child = ChildRun { runs, run_id, done: false };
    runs.wait(run_id).await;
    child.done = true;
    let result = runs.run_row(run_id).ok().and_then(|r| r.result_state).and_then(|r| ResultState::parse(&r));
    AttemptEnd::RunJob { run_id, result }
}

#[cfg(test)]
mod tests {
    use super::evaluate;
    use crate::settings::ConditionTask;

    #[test]
    fn conditions_compare_strings_for_equality_and_numbers_for_order() {
        let c = |op: &str, l: &str, r: &str| {
            let text = |s: &str| Some(s.to_string());
            evaluate(&ConditionTask { op: text(op), left: text(l), right: text(r) })
        };
        assert_eq!(c("EQUAL_TO", "12", "12"), Ok(true));
        assert_eq!(c("EQUAL_TO", "12.0", "12"), Ok(false), "equality is on strings");
        assert_eq!(c("NOT_EQUAL", "a", "b"), Ok(true));
        assert_eq!(c("GREATER_THAN", "0.93", "0.8"), Ok(true));
        assert_eq!(c("GREATER_THAN", "10", "9"), Ok(true), "ordering is on numbers");
        assert_eq!(c("LESS_THAN_OR_EQUAL", "2", "2"), Ok(true));
        assert!(c("LESS_THAN", "abc", "1").unwrap_err().contains("'abc' is not a number"));
    }
}
