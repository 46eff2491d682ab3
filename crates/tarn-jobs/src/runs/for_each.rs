//! `for_each_task`: the nested task runs once per element of `inputs` (a
//! JSON array), `concurrency` at a time, each iteration a task run of its
//! own under the for-each task run (`{{input}}` is its element), retried as
//! the nested task's settings say. The for-each task succeeds when every
//! iteration did.

use std::sync::Arc;

use serde_json::{Value, json};
use tarn_store::JobRunRow;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::state::{LifeCycle, ResultState};
use super::task_run::{AttemptEnd, Start, record, task_row, update_doc};
use crate::settings::{ForEachTask, TaskSettings};
use crate::tasks::BoxFuture;

/// Runs one attempt of a task (`attempt::execute`), passed in so that this
/// module, which the attempt runs, does not call back into it by name.
pub(super) type Execute = for<'a> fn(&'a Start, Value) -> BoxFuture<'a, AttemptEnd>;

/// The task settings with the nested task left unresolved (its `{{input}}`
/// has a value only per iteration).
pub(super) fn resolve_outer(start: &Start) -> Result<Value, String> {
    let mut outer = start.task.clone();
    let nested = outer.pointer_mut("/for_each_task/task").map(Value::take);
    let mut resolved = start.bindings.resolve(&outer)?;
    if let (Some(nested), Some(each)) = (nested, resolved.get_mut("for_each_task")) {
        each["task"] = nested;
    }
    Ok(resolved)
}

/// Runs every iteration, `concurrency` at a time; boxed and `Send`, as the
/// attempt that awaits it runs inside a spawned task.
pub(super) fn run<'a>(start: &'a Start, each: &'a ForEachTask, execute: Execute) -> BoxFuture<'a, AttemptEnd> {
    Box::pin(run_all(start, each, execute))
}

async fn run_all(start: &Start, each: &ForEachTask, execute: Execute) -> AttemptEnd {
    let inputs = each.inputs.as_deref().unwrap_or_default();
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(inputs) else {
        return AttemptEnd::Unresolved(format!("for_each_task inputs must be a JSON array, got '{inputs}'"));
    };
    let nested = each.task.clone().unwrap_or(Value::Null);
    let concurrency = each.concurrency.unwrap_or(1).clamp(1, 100) as usize;
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut iterations = JoinSet::new();
    for (index, input) in items.iter().enumerate() {
        let iteration = iteration_start(start, &nested, input.clone());
        let gate = gate.clone();
        iterations.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (index, run_iteration(iteration, execute).await)
        });
    }
    let total = items.len();
    let mut failed = 0;
    while let Some(joined) = iterations.join_next().await {
        if !matches!(joined, Ok((_, true))) {
            failed += 1;
        }
    }
    let stats = json!({"task_run_stats": {
        "total_iterations": total, "completed_iterations": total, "succeeded_iterations": total - failed,
        "failed_iterations": failed, "active_iterations": 0, "scheduled_iterations": total,
    }});
    let _ = update_doc(&start.runs, start.row.run_id, |doc| doc["for_each_stats"] = stats);
    match failed {
        0 => AttemptEnd::Done,
        n => AttemptEnd::Unresolved(format!("{n} of {total} iterations failed")),
    }
}

fn iteration_start(start: &Start, nested: &Value, input: Value) -> Start {
    let mut bindings = start.bindings.clone();
    bindings.input = Some(input);
    let key = nested.get("task_key").and_then(Value::as_str).unwrap_or("iteration");
    // The iteration's parent is the for-each task run.
    let parent = JobRunRow { run_id: start.row.run_id, ..(*start.run).clone() };
    let row = task_row(&parent, key, 0, None, LifeCycle::Pending, "");
    Start { row, task: nested.clone(), bindings, ..start.clone() }
}

/// Runs one iteration with its retries; true when it ends in success.
async fn run_iteration(mut start: Start, execute: Execute) -> bool {
    let nested = TaskSettings::parse(&start.task).unwrap_or_default();
    loop {
        let Ok(run_id) = start.runs.store().insert_job_run(&start.row) else { return false };
        start.row.run_id = run_id;
        start.bindings.task_run_id = run_id;
        start.bindings.attempt = start.row.attempt_number;
        let end = match start.bindings.resolve(&start.task) {
            Ok(task) => execute(&start, task).await,
            Err(e) => AttemptEnd::Unresolved(e),
        };
        let Ok(row) = start.runs.run_row(run_id) else { return false };
        let recorded = record(&start.runs, row, &end);
        let result = recorded.ok().and_then(|(_, state, _)| state.result);
        if result == Some(ResultState::Success) {
            return true;
        }
        if !nested.may_retry(start.row.attempt_number, 0) {
            return false;
        }
        start.row.attempt_number += 1;
    }
}
