//! Runs as the Jobs API shows them (`runs/get`, `runs/list`,
//! `runs/get-output`), field names as `databricks-sdk` reads them, built
//! from `tarn_jobs`' run records. [`render_run`] is also what a generic
//! webhook is posted (`tarn serve` gives it to the `Notifier`).

use serde_json::{Map, Value, json};
use tarn_jobs::runs::{LifeCycle, ParameterValue, RepairEntry, RepairKind, RunState, Usage};
use tarn_jobs::{OutputRecord, RunOrTask, RunRecord, TaskRunRecord};
use tarn_store::JobRunRow;

/// A run, or a task run shown on its own, as `runs/get` answers it.
pub fn render_run(record: &RunOrTask) -> Value {
    match record {
        RunOrTask::Run(run) => job_run(run),
        RunOrTask::Task(task) => task_run(task),
    }
}

/// The newer `status` object: the life cycle's v2 name, why it waits in
/// a queue, how it terminated.
fn status(state: &RunState) -> Value {
    let mut status = json!({"state": state.life_cycle.v2()});
    if state.life_cycle == LifeCycle::Queued {
        status["queue_details"] = json!({"code": "ACTIVE_RUNS_LIMIT_REACHED", "message": state.message});
    }
    if let Some(termination) = state.termination() {
        status["termination_details"] =
            json!({"code": termination.code, "type": termination.kind, "message": state.message});
    }
    status
}

/// Start, end and durations (milliseconds) of a run or task run.
fn times(row: &JobRunRow, out: &mut Map<String, Value>) {
    let end = row.end_time.unwrap_or(0);
    let execution = match (row.execution_start, row.end_time) {
        (Some(s), Some(e)) => e - s,
        _ => 0,
    };
    let queue = row.execution_start.map(|s| s - row.start_time).unwrap_or(0);
    out.insert("start_time".into(), json!(row.start_time));
    out.insert("end_time".into(), json!(end));
    out.insert("setup_duration".into(), json!(0));
    out.insert("execution_duration".into(), json!(execution));
    out.insert("cleanup_duration".into(), json!(0));
    out.insert("queue_duration".into(), json!(queue.max(0)));
    if end > 0 {
        out.insert("run_duration".into(), json!(end - row.start_time));
    }
}

/// A job run; its `tasks` when the record has them.
pub(super) fn job_run(run: &RunRecord) -> Value {
    let row = &run.row;
    let mut out = Map::new();
    if let Some(job_id) = row.job_id {
        out.insert("job_id".into(), json!(job_id));
    }
    for (k, v) in [
        ("run_id", json!(row.run_id)),
        ("number_in_job", json!(row.run_id)),
        ("original_attempt_run_id", json!(row.run_id)),
        ("attempt_number", json!(0)),
        ("creator_user_name", json!(row.creator_user_name)),
        ("run_as_user_name", json!(tarn_jobs::runs::run_as(row))),
        ("run_name", json!(run.run_name)),
        ("run_type", json!(row.run_type)),
        ("trigger", json!(run.trigger)),
        ("format", json!("MULTI_TASK")),
        ("state", run.state.state_json()),
        ("status", status(&run.state)),
        ("run_page_url", json!(run.page_url)),
        ("has_more", json!(false)),
        ("job_parameters", run.job_parameters.iter().map(parameter).collect()),
        ("tarn_usage", usage(&run.usage)),
    ] {
        out.insert(k.into(), v);
    }
    times(row, &mut out);
    let settings =
        [("job_clusters", &run.job_clusters), ("description", &run.description), ("git_source", &run.git_source)];
    for (field, value) in settings.into_iter().filter_map(|(f, v)| Some((f, v.clone()?))) {
        out.insert(field.into(), value);
    }
    if let Some(overriding) = &run.overriding_parameters {
        out.insert("overriding_parameters".into(), Value::Object(overriding.clone()));
    }
    if let Some(tasks) = &run.tasks {
        out.insert("tasks".into(), tasks.iter().map(task_run).collect());
    }
    if let Some(history) = &run.repair_history {
        out.insert("repair_history".into(), history.iter().map(repair).collect());
    }
    Value::Object(out)
}

/// Task settings the run view leaves out.
const NOT_SHOWN: &[&str] = &[
    "max_retries",
    "min_retry_interval_millis",
    "retry_on_timeout",
    "email_notifications",
    "webhook_notifications",
    "notification_settings",
];

/// A task run: its task's settings (less retries and notifications) with
/// its state, times and what it ran on; its iterations if it has them.
pub(super) fn task_run(task: &TaskRunRecord) -> Value {
    let row = &task.row;
    let mut out = task.settings.as_ref().and_then(Value::as_object).cloned().unwrap_or_default();
    out.entry("task_key").or_insert_with(|| json!(row.task_key.as_deref().unwrap_or_default()));
    for field in NOT_SHOWN {
        out.remove(*field);
    }
    if let Some(condition) = &task.condition {
        out.insert("condition_task".into(), condition.clone());
    }
    for (k, v) in [
        ("run_id", json!(row.run_id)),
        ("attempt_number", json!(row.attempt_number)),
        ("state", task.state.state_json()),
        ("status", status(&task.state)),
        ("run_page_url", json!(task.page_url)),
    ] {
        out.insert(k.into(), v);
    }
    times(row, &mut out);
    if let Some(cluster) = &task.cluster_instance {
        out.insert("cluster_instance".into(), cluster.clone());
    }
    if let Some(usage) = &task.usage {
        out.insert("tarn_usage".into(), usage.clone());
    }
    if let (Some(stats), Some(Value::Object(each))) = (&task.for_each_stats, out.get_mut("for_each_task")) {
        each.insert("stats".into(), stats.clone());
    }
    if let Some(resolved) = &task.resolved_task {
        out.insert("resolved_values".into(), resolved_values(resolved));
    }
    if !task.iterations.is_empty() {
        out.insert("iterations".into(), task.iterations.iter().map(task_run).collect());
    }
    Value::Object(out)
}

/// `runs/get-output`: the task run as `metadata`, its output's fields (a
/// condition's evaluation is in the metadata), the run a `run_job_task`
/// started, and its logs.
pub(super) fn output(record: &OutputRecord) -> Value {
    let mut out = Map::new();
    out.insert("metadata".into(), task_run(&record.task));
    for (k, v) in record.output.iter().filter(|(k, _)| k.as_str() != "condition_task") {
        out.insert(k.clone(), v.clone());
    }
    if let Some(child) = &record.run_job_output {
        out.insert("run_job_output".into(), child.clone());
    }
    if !record.logs.text.is_empty() {
        out.insert("logs".into(), json!(record.logs.text));
        out.insert("logs_truncated".into(), json!(record.logs.truncated));
    }
    Value::Object(out)
}

fn parameter(p: &ParameterValue) -> Value {
    json!({"name": p.name, "default": p.default, "value": p.value})
}

/// tarn's own field: the SDK passes it over.
fn usage(u: &Usage) -> Value {
    json!({"core_seconds": u.core_seconds, "estimated_cost": u.estimated_cost})
}

fn repair(entry: &RepairEntry) -> Value {
    let kind = match entry.kind {
        RepairKind::Original => "ORIGINAL",
        RepairKind::Repair => "REPAIR",
    };
    json!({
        "type": kind,
        "id": entry.id,
        "start_time": entry.start_time,
        "end_time": entry.end_time,
        "state": entry.state,
        "task_run_ids": entry.task_run_ids,
    })
}

/// The parameters a task ran with, by task type, references resolved.
fn resolved_values(task: &Value) -> Value {
    let mut out = Map::new();
    let entries = [
        ("notebook_task", "base_parameters"),
        ("spark_python_task", "parameters"),
        ("python_wheel_task", "parameters"),
        ("sql_task", "parameters"),
        ("run_job_task", "job_parameters"),
        ("condition_task", "left"),
        ("condition_task", "right"),
    ];
    for (kind, field) in entries {
        if let Some(value) = task.pointer(&format!("/{kind}/{field}")) {
            let entry = out.entry(kind.to_string()).or_insert_with(|| json!({}));
            entry[field] = value.clone();
        }
    }
    Value::Object(out)
}
