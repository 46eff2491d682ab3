//! A task run's record: the attempt a driver starts ([`Start`]), how it
//! ended ([`AttemptEnd`]), and what is written for it: its row when it is
//! created, its start, and its end with output, logs, task values and
//! usage. State changes go through `Runs::apply`.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tarn_core::time::now_ms;
use tarn_store::JobRunRow;

use super::compute::JobClusters;
use super::document::OverridingParameters;
use super::state::{Event, LifeCycle, ResultState, RunState};
use super::{Bindings, Runs, TaskFacts};
use crate::error::Result;
use crate::settings::JobSettings;
use crate::tasks::{Ending, Outcome, UpdateEnd};

/// Task values: each at most this many bytes of JSON.
const VALUE_LIMIT: usize = 48 * 1024;
/// Logs kept for `runs/get-output`.
pub(super) const LOG_LIMIT: usize = 5 * 1024 * 1024;

/// One attempt as the driver hands it over.
#[derive(Clone)]
pub(super) struct Start {
    pub runs: Runs,
    pub run: Arc<JobRunRow>,
    pub settings: Arc<JobSettings>,
    pub overriding: OverridingParameters,
    pub row: JobRunRow,
    pub task: Value,
    pub bindings: Bindings,
    pub upstream: Map<String, Value>,
    pub clusters: Arc<JobClusters>,
    pub git: Option<crate::git::GitCheckout>,
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
    /// A pipeline task's update ended.
    Pipeline {
        update_id: String,
        end: UpdateEnd,
        logs: String,
    },
    /// It could not start: a reference with no value, compute that failed.
    Unresolved(String),
}

/// A new row for a task attempt of `run`, not yet stored.
pub(super) fn task_row(
    run: &JobRunRow,
    key: &str,
    attempt: i64,
    repair_id: Option<i64>,
    life_cycle: LifeCycle,
    message: &str,
) -> JobRunRow {
    JobRunRow {
        run_id: 0,
        job_id: run.job_id,
        parent_run_id: Some(run.run_id),
        task_key: Some(key.to_string()),
        attempt_number: attempt,
        run_type: "TASK_RUN".into(),
        life_cycle_state: life_cycle.as_str().into(),
        result_state: None,
        state_message: message.into(),
        termination_code: None,
        creator_user_name: run.creator_user_name.clone(),
        idempotency_token: None,
        start_time: now_ms(),
        execution_start: None,
        end_time: None,
        doc: json!({"repair_id": repair_id}),
    }
}

/// What a finished task tells the tasks after it.
pub(super) fn facts_of(row: &JobRunRow) -> TaskFacts {
    TaskFacts {
        run_id: row.run_id,
        result_state: row.result_state.clone().unwrap_or_default(),
        error_code: row.termination_code.clone().unwrap_or_default(),
        execution_count: row.attempt_number + 1,
        notebook_path: row
            .doc
            .pointer("/task/notebook_task/notebook_path")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        values: row.doc.get("values").and_then(Value::as_object).cloned().unwrap_or_default(),
    }
}

/// RUNNING, with the resolved task and the cluster it runs on. The row is
/// the attempt's own (the driver wrote it PENDING), so it is not re-read.
pub(super) fn mark_running(start: &Start, task: &Value, cluster_id: Option<&str>) -> Result<()> {
    let mut row = start.row.clone();
    row.doc["task"] = task.clone();
    if let Some(id) = cluster_id {
        row.doc["cluster_instance"] = json!({"cluster_id": id});
    }
    // A taken-over attempt that had not reached its code is RUNNING already.
    if row.life_cycle_state == super::LifeCycle::Running.as_str() {
        start.runs.store().update_job_run_doc(row.run_id, &row.doc)?;
        return Ok(());
    }
    start.runs.apply(row, Event::Started)?;
    Ok(())
}

/// Ends a task run's unfinished children (a for-each task's iterations)
/// with `event`, as the task itself ends.
pub(super) fn end_children(runs: &Runs, task_run_id: i64, event: &Event) -> Result<()> {
    for child in runs.store().child_job_runs(task_run_id)? {
        if !super::LifeCycle::parse(&child.life_cycle_state).is_some_and(super::LifeCycle::is_final) {
            runs.apply(child, event.clone())?;
        }
    }
    Ok(())
}

/// Changes a run's or task run's document (not its state) while it runs.
pub(crate) fn update_doc(runs: &Runs, run_id: i64, change: impl FnOnce(&mut Value)) -> Result<()> {
    let mut row = runs.run_row(run_id)?;
    change(&mut row.doc);
    runs.store().update_job_run_doc(run_id, &row.doc)?;
    Ok(())
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
        AttemptEnd::Pipeline { update_id, end, logs } => {
            write_logs(runs, row.run_id, logs);
            let (result, message) = super::pipeline_task::ending(update_id, end);
            row.doc["output"] = match end {
                UpdateEnd::Failed(_) => json!({"error": message}),
                _ => json!({}),
            };
            (RunState::ended(result, message), None)
        }
        AttemptEnd::Unresolved(message) => {
            row.doc["output"] = json!({"error": message});
            (RunState::ended(ResultState::Failed, message.clone()), None)
        }
    };
    let result = state.result.unwrap_or(ResultState::Failed);
    let row = runs.apply(row, Event::ended(result, state.message.clone()))?;
    Ok((row, state, outcome))
}

/// What the attempt printed, kept for `runs/get-output`.
fn write_logs(runs: &Runs, run_id: i64, logs: &str) {
    if let Err(e) = runs.write_task_log(run_id, logs) {
        tracing::warn!(run_id, error = %e, "writing a task's logs");
    }
}

fn keep_outcome(runs: &Runs, row: &mut JobRunRow, outcome: &Outcome) -> RunState {
    write_logs(runs, row.run_id, &outcome.logs);
    if let Some(usage) = outcome.cluster_id.as_deref().and_then(|id| usage(runs, row, id)) {
        row.doc["usage"] = usage;
    }
    let mut output = json!({});
    if let Some(result) = &outcome.notebook_result {
        output["notebook_output"] = json!({"result": result, "truncated": false});
    }
    for (field, value) in &outcome.output {
        output[field] = value.clone();
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
    let cores = runs.runner().cluster_cores(cluster_id)?;
    let start = row.execution_start?;
    let end = now_ms();
    let core_seconds = f64::from(cores) * (end - start).max(0) as f64 / 1000.0;
    let rate = runs.config().cost_per_core_hour;
    let product = if row.doc.pointer("/task/sql_task").is_some() { "SQL" } else { "JOBS" };
    Some(json!({
        "cluster_id": cluster_id,
        "product": product,
        "cores": cores,
        "start_time": start,
        "end_time": end,
        "core_seconds": core_seconds,
        "estimated_cost": core_seconds / 3600.0 * rate,
    }))
}
