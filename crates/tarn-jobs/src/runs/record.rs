//! Job runs as they are shown, typed: a job run with its task runs
//! ([`RunRecord`]), a task run ([`TaskRunRecord`]), a task run's output
//! ([`OutputRecord`]), and the facts read from their rows and documents
//! (total usage, job parameters with their defaults, repair history, logs
//! up to [`LOG_LIMIT`]). `Runs::get`, `get_output` and `list` answer them;
//! the Jobs API's JSON is built from them in tarn-api, and notifications
//! get it through the renderer `tarn serve` gives the `Notifier`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use serde_json::{Map, Value};
use tarn_store::JobRunRow;

use super::state::RunState;
use super::task_run::LOG_LIMIT;

/// A job run; `tasks` are its task runs (every attempt, oldest first) when
/// they were asked for.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub row: JobRunRow,
    pub state: RunState,
    pub page_url: String,
    /// `Untitled` when the run has none.
    pub run_name: String,
    /// What started it: ONE_TIME, PERIODIC, FILE_ARRIVAL, RUN_JOB_TASK...
    pub trigger: String,
    pub job_parameters: Vec<ParameterValue>,
    /// run-now's `notebook_params`, `python_params`... when any were sent.
    pub overriding_parameters: Option<Map<String, Value>>,
    /// The settings' `job_clusters` and `description`, as sent.
    pub job_clusters: Option<Value>,
    pub description: Option<Value>,
    /// The job's `git_source` with the commit the run used (`git_snapshot`).
    pub git_source: Option<Value>,
    /// The compute of all its task attempts.
    pub usage: Usage,
    pub tasks: Option<Vec<TaskRunRecord>>,
    /// The original run and each repair, once it was repaired.
    pub repair_history: Option<Vec<RepairEntry>>,
}

/// A task run (an attempt of a task, or an iteration of a for-each task).
#[derive(Debug, Clone)]
pub struct TaskRunRecord {
    pub row: JobRunRow,
    pub state: RunState,
    pub page_url: String,
    /// Its task's settings as the job run started with them (an iteration
    /// of a for-each task has none of its own).
    pub settings: Option<Value>,
    /// A condition task's evaluation.
    pub condition: Option<Value>,
    pub cluster_instance: Option<Value>,
    /// This attempt's compute (core seconds, estimated cost).
    pub usage: Option<Value>,
    /// A for-each task's iteration counts.
    pub for_each_stats: Option<Value>,
    /// The task as it ran, its references resolved (when asked for).
    pub resolved_task: Option<Value>,
    /// A for-each task run's iterations, when it is shown on its own.
    pub iterations: Vec<TaskRunRecord>,
}

/// What `runs/get-output` shows of a task run.
#[derive(Debug, Clone)]
pub struct OutputRecord {
    pub task: TaskRunRecord,
    /// The task's output as its runner left it (`notebook_output`,
    /// `error`, `condition_task`...).
    pub output: Map<String, Value>,
    /// The run a `run_job_task` started.
    pub run_job_output: Option<Value>,
    pub logs: Logs,
}

/// A run, or a task run shown on its own.
#[derive(Debug, Clone)]
pub enum RunOrTask {
    Run(RunRecord),
    Task(TaskRunRecord),
}

impl RunOrTask {
    pub fn row(&self) -> &JobRunRow {
        match self {
            RunOrTask::Run(run) => &run.row,
            RunOrTask::Task(task) => &task.row,
        }
    }
}

/// A job parameter of a run: its value and the job's default.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterValue {
    pub name: String,
    pub default: Value,
    pub value: Value,
}

/// Compute over a run's task attempts (tarn's own field: the SDK passes it
/// over; `system.billing.usage` has the rows).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub core_seconds: f64,
    pub estimated_cost: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairKind {
    Original,
    Repair,
}

/// The original run or one of its repairs: when, how it ended, and the
/// task runs it made.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairEntry {
    pub kind: RepairKind,
    pub id: Option<i64>,
    pub start_time: i64,
    pub end_time: i64,
    /// The `state` object it ended with, as stored.
    pub state: Value,
    pub task_run_ids: Vec<i64>,
}

/// What a task attempt printed, at most [`LOG_LIMIT`] bytes of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Logs {
    pub text: String,
    pub truncated: bool,
}

/// The settings of a job run's tasks, by task key: read once per run, as a
/// run of many tasks would otherwise search them for each.
pub(super) fn settings_by_key(run: &JobRunRow) -> HashMap<&str, &Value> {
    let tasks = run.doc.pointer("/settings/tasks").and_then(Value::as_array).into_iter().flatten();
    tasks.filter_map(|t| Some((t.get("task_key")?.as_str()?, t))).collect()
}

pub(super) fn total_usage(tasks: &[JobRunRow]) -> Usage {
    let sum = |field: &str| -> f64 {
        tasks.iter().filter_map(|t| t.doc.pointer(&format!("/usage/{field}")).and_then(Value::as_f64)).sum()
    };
    Usage { core_seconds: sum("core_seconds"), estimated_cost: sum("estimated_cost") }
}

/// The run's job parameters, each with the default its job defines (an
/// empty string when none).
pub(super) fn job_parameters(doc: &Value) -> Vec<ParameterValue> {
    let empty = || Value::String(String::new());
    let defaults: HashMap<&str, Value> = doc
        .pointer("/settings/parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("name")?.as_str()?, p.get("default").cloned().unwrap_or_else(empty))))
        .collect();
    let values = doc.get("job_parameters").and_then(Value::as_object).into_iter().flatten();
    values
        .map(|(name, value)| ParameterValue {
            name: name.clone(),
            default: defaults.get(name.as_str()).cloned().unwrap_or_else(empty),
            value: value.clone(),
        })
        .collect()
}

/// The original run and each repair, with the task runs each made; `None`
/// for a run never repaired.
pub(super) fn repair_history(row: &JobRunRow, tasks: &[JobRunRow]) -> Option<Vec<RepairEntry>> {
    let repairs = row.doc.get("repairs").and_then(Value::as_array).filter(|r| !r.is_empty())?;
    let ids_of = |repair: Option<i64>| -> Vec<i64> {
        tasks.iter().filter(|t| t.doc.get("repair_id").and_then(Value::as_i64) == repair).map(|t| t.run_id).collect()
    };
    let time = |entry: &Value, field: &str| entry.get(field).and_then(Value::as_i64).unwrap_or(0);
    let state = |entry: &Value| entry.get("state").cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let original = row.doc.get("original").cloned().unwrap_or(Value::Null);
    let mut history = vec![RepairEntry {
        kind: RepairKind::Original,
        id: Some(row.run_id),
        start_time: row.start_time,
        end_time: time(&original, "end_time"),
        state: state(&original),
        task_run_ids: ids_of(None),
    }];
    for repair in repairs {
        let id = repair.get("id").and_then(Value::as_i64);
        history.push(RepairEntry {
            kind: RepairKind::Repair,
            id,
            start_time: time(repair, "start_time"),
            end_time: time(repair, "end_time"),
            state: state(repair),
            task_run_ids: ids_of(id),
        });
    }
    Some(history)
}

/// A task attempt's log, at most [`LOG_LIMIT`] bytes; empty when there is
/// none or it cannot be read.
pub(super) fn read_logs(path: &Path) -> Logs {
    let Ok(file) = std::fs::File::open(path) else { return Logs::default() };
    let mut bytes = Vec::new();
    if file.take(LOG_LIMIT as u64 + 1).read_to_end(&mut bytes).is_err() {
        return Logs::default();
    }
    logs(&bytes)
}

/// The logs a client gets of `bytes`: at most [`LOG_LIMIT`] of them.
pub(super) fn logs(bytes: &[u8]) -> Logs {
    let truncated = bytes.len() > LOG_LIMIT;
    let kept = &bytes[..bytes.len().min(LOG_LIMIT)];
    Logs { text: String::from_utf8_lossy(kept).into_owned(), truncated }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(run_id: i64, doc: Value) -> JobRunRow {
        JobRunRow {
            run_id,
            job_id: Some(1),
            parent_run_id: None,
            task_key: None,
            attempt_number: 0,
            run_type: "JOB_RUN".into(),
            life_cycle_state: "TERMINATED".into(),
            result_state: Some("SUCCESS".into()),
            state_message: String::new(),
            termination_code: None,
            creator_user_name: "ann".into(),
            idempotency_token: None,
            start_time: 10,
            execution_start: None,
            end_time: Some(20),
            doc,
        }
    }

    #[test]
    fn usage_parameters_and_repairs_read_from_rows() {
        let tasks = [
            row(2, json!({"usage": {"core_seconds": 1.5, "estimated_cost": 0.25}})),
            row(3, json!({"repair_id": 9, "usage": {"core_seconds": 2.0}})),
        ];
        assert_eq!(total_usage(&tasks), Usage { core_seconds: 3.5, estimated_cost: 0.25 });
        let doc = json!({"settings": {"parameters": [{"name": "a", "default": "x"}, {"name": "b"}]},
                         "job_parameters": {"a": "y", "b": "z"},
                         "original": {"end_time": 15, "state": {"result_state": "FAILED"}},
                         "repairs": [{"id": 9, "start_time": 16}]});
        let defaults: Vec<(String, Value)> = job_parameters(&doc).into_iter().map(|p| (p.name, p.default)).collect();
        assert_eq!(defaults, vec![("a".into(), json!("x")), ("b".into(), json!(""))]);
        let run = row(1, doc);
        let history = repair_history(&run, &tasks).unwrap();
        assert_eq!(
            history.iter().map(|e| (e.kind, e.id, e.end_time)).collect::<Vec<_>>(),
            vec![(RepairKind::Original, Some(1), 15), (RepairKind::Repair, Some(9), 0)]
        );
        assert_eq!((history[0].task_run_ids.clone(), history[1].task_run_ids.clone()), (vec![2], vec![3]));
        assert_eq!(history[1].state, json!({}));
        assert!(repair_history(&row(4, json!({"repairs": []})), &tasks).is_none());
    }

    #[test]
    fn logs_stop_at_the_limit() {
        let path = std::env::temp_dir().join(format!("tarn-logs-{}.log", uuid::Uuid::new_v4()));
        assert_eq!(read_logs(&path), Logs::default());
        std::fs::write(&path, vec![b'x'; LOG_LIMIT + 10]).unwrap();
        let logs = read_logs(&path);
        assert!(logs.truncated && logs.text.len() == LOG_LIMIT);
        std::fs::write(&path, "short").unwrap();
        assert_eq!(read_logs(&path), Logs { text: "short".into(), truncated: false });
        let _ = std::fs::remove_file(&path);
    }
}
