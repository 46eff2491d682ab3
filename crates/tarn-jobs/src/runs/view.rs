//! Runs as the Jobs API shows them (`runs/get`, `runs/list`,
//! `runs/get-output`), field names as `databricks-sdk` reads them.

use std::collections::HashMap;
use std::io::Read;

use serde_json::{Map, Value, json};
use tarn_store::JobRunRow;

use super::Runs;
use super::state::{LifeCycle, ResultState, RunState};
use super::task_run::LOG_LIMIT;
use crate::error::{Result, invalid};

pub(super) fn state_of(row: &JobRunRow) -> RunState {
    RunState {
        life_cycle: LifeCycle::parse(&row.life_cycle_state).unwrap_or(LifeCycle::InternalError),
        result: row.result_state.as_deref().and_then(ResultState::parse),
        message: row.state_message.clone(),
        code: row.termination_code.clone(),
    }
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

impl Runs {
    fn page_url(&self, run_id: i64) -> String {
        format!("{}/#job/runs/{run_id}", self.config().workspace_url)
    }

    /// A job run with its task runs (every attempt, oldest first).
    pub fn get(&self, run_id: i64, include_resolved_values: bool) -> Result<Value> {
        let row = self.run_row(run_id)?;
        if row.task_key.is_some() {
            let mut task = self.view_task_alone(&row, include_resolved_values);
            let iterations = self.store().child_job_runs(run_id)?;
            if !iterations.is_empty() {
                task["iterations"] =
                    iterations.iter().map(|i| self.view_task(i, None, include_resolved_values)).collect();
            }
            return Ok(task);
        }
        self.view_run(&row, true, include_resolved_values)
    }

    pub(super) fn view_run(&self, row: &JobRunRow, with_tasks: bool, resolved: bool) -> Result<Value> {
        let state = state_of(row);
        let doc = &row.doc;
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
            ("run_name", doc.get("run_name").cloned().unwrap_or(json!("Untitled"))),
            ("run_type", json!(row.run_type)),
            ("trigger", doc.get("trigger").cloned().unwrap_or(json!("ONE_TIME"))),
            ("format", json!("MULTI_TASK")),
            ("state", state.state_json()),
            ("status", state.status_json()),
            ("run_page_url", json!(self.page_url(row.run_id))),
            ("has_more", json!(false)),
        ] {
            out.insert(k.into(), v);
        }
        times(row, &mut out);
        out.insert("job_parameters".into(), job_parameters(doc));
        if let Some(Value::Object(o)) =
            doc.get("overriding_parameters").filter(|o| o.as_object().is_some_and(|m| !m.is_empty()))
        {
            out.insert("overriding_parameters".into(), Value::Object(o.clone()));
        }
        for field in ["job_clusters", "description"] {
            if let Some(v) = doc.pointer(&format!("/settings/{field}")) {
                out.insert(field.into(), v.clone());
            }
        }
        let tasks = self.store().child_job_runs(row.run_id)?;
        out.insert("tarn_usage".into(), total_usage(&tasks));
        if with_tasks {
            let settings = settings_by_key(row);
            let view = |t: &JobRunRow| {
                let own = t.task_key.as_deref().and_then(|k| settings.get(k)).copied();
                self.view_task(t, own, resolved)
            };
            out.insert("tasks".into(), tasks.iter().map(view).collect());
        }
        if doc.get("repairs").and_then(Value::as_array).is_some_and(|r| !r.is_empty()) {
            out.insert("repair_history".into(), repair_history(row, &tasks));
        }
        Ok(Value::Object(out))
    }

    /// A task run; `settings` are its task's as the job run started with
    /// them (an iteration of a for-each task has none of its own).
    pub(super) fn view_task(&self, row: &JobRunRow, settings: Option<&Value>, resolved: bool) -> Value {
        let state = state_of(row);
        let mut out = settings.and_then(Value::as_object).cloned().unwrap_or_default();
        out.entry("task_key").or_insert_with(|| json!(row.task_key.as_deref().unwrap_or_default()));
        for drop in [
            "max_retries",
            "min_retry_interval_millis",
            "retry_on_timeout",
            "email_notifications",
            "webhook_notifications",
            "notification_settings",
        ] {
            out.remove(drop);
        }
        if let Some(condition) = row.doc.pointer("/output/condition_task") {
            out.insert("condition_task".into(), condition.clone());
        }
        for (k, v) in [
            ("run_id", json!(row.run_id)),
            ("attempt_number", json!(row.attempt_number)),
            ("state", state.state_json()),
            ("status", state.status_json()),
            ("run_page_url", json!(self.page_url(row.run_id))),
        ] {
            out.insert(k.into(), v);
        }
        times(row, &mut out);
        if let Some(cluster) = row.doc.get("cluster_instance") {
            out.insert("cluster_instance".into(), cluster.clone());
        }
        if let Some(usage) = row.doc.get("usage") {
            out.insert("tarn_usage".into(), usage.clone());
        }
        if let (Some(stats), Some(Value::Object(each))) = (row.doc.get("for_each_stats"), out.get_mut("for_each_task"))
        {
            each.insert("stats".into(), stats.clone());
        }
        if resolved && let Some(task) = row.doc.get("task") {
            out.insert("resolved_values".into(), resolved_values(task));
        }
        Value::Object(out)
    }

    /// A task run on its own, its settings read from its job run.
    fn view_task_alone(&self, row: &JobRunRow, resolved: bool) -> Value {
        let parent = row.parent_run_id.and_then(|p| self.store().get_job_run(p).ok().flatten());
        let settings = parent.as_ref().map(settings_by_key).unwrap_or_default();
        let own = row.task_key.as_deref().and_then(|k| settings.get(k)).copied();
        self.view_task(row, own, resolved)
    }

    /// `runs/get-output` of a task run (or of a job run with one task).
    pub fn get_output(&self, run_id: i64) -> Result<Value> {
        let mut row = self.run_row(run_id)?;
        if row.task_key.is_none() {
            let mut tasks = self.store().child_job_runs(run_id)?;
            let keys: std::collections::HashSet<_> = tasks.iter().filter_map(|t| t.task_key.clone()).collect();
            if keys.len() != 1 {
                return Err(invalid(
                    "Retrieving the output of runs with multiple tasks is not supported. \
                     Please retrieve the output of each individual task run instead.",
                ));
            }
            row = tasks.pop().ok_or_else(|| invalid("The run has no task runs"))?;
        }
        let mut out = Map::new();
        out.insert("metadata".into(), self.view_task_alone(&row, false));
        if let Some(Value::Object(output)) = row.doc.get("output") {
            for (k, v) in output.iter().filter(|(k, _)| k.as_str() != "condition_task") {
                out.insert(k.clone(), v.clone());
            }
        }
        if let Some(child) = row.doc.get("run_job_output") {
            out.insert("run_job_output".into(), child.clone());
        }
        let (logs, truncated) = read_logs(&self.log_path(row.run_id));
        if !logs.is_empty() {
            out.insert("logs".into(), json!(logs));
            out.insert("logs_truncated".into(), json!(truncated));
        }
        Ok(Value::Object(out))
    }
}

/// The settings of a job run's tasks, by task key: read once per view, as
/// a run of many tasks would otherwise search them for each.
fn settings_by_key(run: &JobRunRow) -> HashMap<&str, &Value> {
    let tasks = run.doc.pointer("/settings/tasks").and_then(Value::as_array).into_iter().flatten();
    tasks.filter_map(|t| Some((t.get("task_key")?.as_str()?, t))).collect()
}

/// A run's compute over its task attempts (tarn's own field: the SDK
/// passes it over; `system.billing.usage` has the rows).
fn total_usage(tasks: &[JobRunRow]) -> Value {
    let sum = |field: &str| -> f64 {
        tasks.iter().filter_map(|t| t.doc.pointer(&format!("/usage/{field}")).and_then(Value::as_f64)).sum()
    };
    json!({"core_seconds": sum("core_seconds"), "estimated_cost": sum("estimated_cost")})
}

fn read_logs(path: &std::path::Path) -> (String, bool) {
    let Ok(file) = std::fs::File::open(path) else { return (String::new(), false) };
    let mut bytes = Vec::new();
    let read = file.take(LOG_LIMIT as u64 + 1).read_to_end(&mut bytes);
    if read.is_err() {
        return (String::new(), false);
    }
    let truncated = bytes.len() > LOG_LIMIT;
    bytes.truncate(LOG_LIMIT);
    (String::from_utf8_lossy(&bytes).into_owned(), truncated)
}

fn job_parameters(doc: &Value) -> Value {
    let defaults: Map<String, Value> = doc
        .pointer("/settings/parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("name")?.as_str()?.to_string(), p.get("default").cloned().unwrap_or(json!("")))))
        .collect();
    let values = doc.get("job_parameters").and_then(Value::as_object).cloned().unwrap_or_default();
    values
        .iter()
        .map(|(name, value)| json!({"name": name, "default": defaults.get(name).cloned().unwrap_or(json!("")), "value": value}))
        .collect()
}

fn resolved_values(task: &Value) -> Value {
    let mut out = Map::new();
    let pick = |pointer: &str| task.pointer(pointer).cloned();
    let entries = [
        ("notebook_task", "base_parameters", pick("/notebook_task/base_parameters")),
        ("spark_python_task", "parameters", pick("/spark_python_task/parameters")),
        ("python_wheel_task", "parameters", pick("/python_wheel_task/parameters")),
        ("sql_task", "parameters", pick("/sql_task/parameters")),
        ("run_job_task", "job_parameters", pick("/run_job_task/job_parameters")),
        ("condition_task", "left", pick("/condition_task/left")),
        ("condition_task", "right", pick("/condition_task/right")),
    ];
    for (kind, field, value) in entries {
        if let Some(value) = value {
            let entry = out.entry(kind.to_string()).or_insert_with(|| json!({}));
            entry[field] = value;
        }
    }
    Value::Object(out)
}

fn repair_history(row: &JobRunRow, tasks: &[JobRunRow]) -> Value {
    let ids_of = |repair: Option<i64>| -> Vec<i64> {
        tasks.iter().filter(|t| t.doc.get("repair_id").and_then(Value::as_i64) == repair).map(|t| t.run_id).collect()
    };
    let original = row.doc.get("original").cloned().unwrap_or(json!({}));
    let mut history = vec![json!({
        "type": "ORIGINAL",
        "id": row.run_id,
        "start_time": row.start_time,
        "end_time": original.get("end_time").cloned().unwrap_or(json!(0)),
        "state": original.get("state").cloned().unwrap_or(json!({})),
        "task_run_ids": ids_of(None),
    })];
    for repair in row.doc.get("repairs").and_then(Value::as_array).into_iter().flatten() {
        let id = repair.get("id").and_then(Value::as_i64);
        history.push(json!({
            "type": "REPAIR",
            "id": id,
            "start_time": repair.get("start_time").cloned().unwrap_or(json!(0)),
            "end_time": repair.get("end_time").cloned().unwrap_or(json!(0)),
            "state": repair.get("state").cloned().unwrap_or(json!({})),
            "task_run_ids": ids_of(id),
        }));
    }
    Value::Array(history)
}
