//! The task side of a run's page: the graph of its tasks (each in the state
//! of its latest attempt), the timeline of every attempt (retries and
//! repairs included), the tasks that failed, and the selected task's
//! output as `runs/get-output` gives it.

use maud::{Markup, html};
use serde_json::Value;
use tarn_core::time::now_ms;
use tarn_jobs::runs::{LifeCycle, ResultState};
use tarn_jobs::{RunRecord, TaskRunRecord};
use tarn_ui::components::{badge, duration, empty, facts, shorten, tabs, time};
use tarn_ui::dag::{Graph, Node};
use tarn_ui::gantt::{self, Bar};

use super::job::{task_graph, urlencode};
use super::run_path;
use crate::AppState;

/// How much of a task's log and error trace the page shows.
const SHOWN_CHARS: usize = 64 * 1024;

fn attempts(run: &RunRecord) -> &[TaskRunRecord] {
    run.tasks.as_deref().unwrap_or_default()
}

/// The latest attempt of task `key` (attempts are oldest first).
fn latest<'a>(run: &'a RunRecord, key: &str) -> Option<&'a TaskRunRecord> {
    attempts(run).iter().rfind(|t| t.row.task_key.as_deref() == Some(key))
}

/// The run's task keys: its settings' order, then any attempt's key not in
/// them.
fn keys(run: &RunRecord) -> Vec<String> {
    let settings = run.row.doc.get("settings").cloned().unwrap_or(Value::Null);
    let mut keys: Vec<String> = task_graph(&settings).nodes.into_iter().map(|n| n.id).collect();
    for key in attempts(run).iter().filter_map(|t| t.row.task_key.as_ref()) {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// When an attempt started to run: its execution start, or its creation
/// while it waits for compute; `None` while it waits on upstream tasks.
fn started(task: &TaskRunRecord) -> Option<i64> {
    let waiting = matches!(task.state.life_cycle, LifeCycle::Pending | LifeCycle::Queued | LifeCycle::Running);
    task.row.execution_start.or(waiting.then_some(task.row.start_time))
}

/// A node's second line: iterations of a for-each task, a condition's
/// outcome, else how long the attempt ran; the attempt count past one.
fn detail(task: &TaskRunRecord, count: usize) -> String {
    let stat = |name: &str| task.for_each_stats.as_ref().and_then(|s| s.pointer(&format!("/task_run_stats/{name}")));
    let text = if let (Some(ok), Some(total)) = (stat("succeeded_iterations"), stat("total_iterations")) {
        format!("{ok}/{total} iterations")
    } else if let Some(outcome) = task.condition.as_ref().and_then(|c| c.get("outcome")).and_then(Value::as_str) {
        format!("{} · {outcome}", task.state.name())
    } else if let Some(start) = started(task) {
        format!("{} · {}", task.state.name(), duration(task.row.end_time.unwrap_or_else(now_ms) - start))
    } else {
        task.state.name().to_string()
    };
    match count {
        0 | 1 => text,
        n => format!("{text} · {n} attempts"),
    }
}

/// The run's tasks, each node in its latest attempt's state, linked to
/// select it.
pub(super) fn graph(run: &RunRecord, base: &str) -> Graph {
    let settings = run.row.doc.get("settings").cloned().unwrap_or(Value::Null);
    let mut graph = task_graph(&settings);
    for key in keys(run).into_iter().skip(graph.nodes.len()) {
        graph.nodes.push(Node { id: key.clone(), label: key, ..Node::default() });
    }
    for node in &mut graph.nodes {
        let count = attempts(run).iter().filter(|t| t.row.task_key.as_deref() == Some(node.id.as_str())).count();
        if let Some(task) = latest(run, &node.id) {
            node.state = task.state.name().to_string();
            node.detail = detail(task, count);
        }
        node.href = Some(format!("{base}?task={}", urlencode(&node.id)));
    }
    graph
}

/// One bar per attempt that started: later attempts of a task numbered,
/// repairs marked.
pub(super) fn gantt(run: &RunRecord) -> Markup {
    let mut seen: Vec<&str> = Vec::new();
    let bars: Vec<Bar> = attempts(run)
        .iter()
        .filter_map(|t| Some((t, started(t)?)))
        .map(|(t, start)| {
            let key = t.row.task_key.as_deref().unwrap_or_default();
            seen.push(key);
            let n = seen.iter().filter(|k| **k == key).count();
            let mut label = if n > 1 { format!("{key} · attempt {n}") } else { key.to_string() };
            if t.row.doc.get("repair_id").and_then(Value::as_i64).is_some() {
                label.push_str(" (repair)");
            }
            Bar { label, start_ms: start, end_ms: t.row.end_time, state: t.state.name().into() }
        })
        .collect();
    gantt::svg(&bars, now_ms())
}

/// Whether an attempt failed on its own (not because an upstream did).
fn failed(task: &TaskRunRecord) -> bool {
    task.state.result.is_some_and(|r| r.is_failure() && r != ResultState::UpstreamFailed)
}

/// The tasks whose latest attempt failed, with why.
pub(super) fn failures(run: &RunRecord, base: &str) -> Markup {
    let failed: Vec<&TaskRunRecord> = keys(run).iter().filter_map(|k| latest(run, k)).filter(|t| failed(t)).collect();
    html! {
        @if !failed.is_empty() {
            div.failures role="alert" {
                @for t in failed {
                    @let key = t.row.task_key.as_deref().unwrap_or_default();
                    p.error data-task=(key) {
                        a href={ (base) "?task=" (urlencode(key)) } { (key) } " " (badge(t.state.name())) " "
                        (shorten(&t.state.message, 400))
                    }
                }
            }
        }
    }
}

/// The selected task (else the first that failed): tabs of every task,
/// then its latest attempt's facts and output.
pub(super) fn task_detail(s: &AppState, run: &RunRecord, selected: Option<&str>, base: &str) -> Markup {
    let keys = keys(run);
    let first_failed = keys.iter().find(|k| latest(run, k).is_some_and(failed)).map(String::as_str);
    let selected = selected.or(first_failed);
    let links: Vec<(String, String, bool)> = keys
        .iter()
        .map(|k| (k.clone(), format!("{base}?task={}", urlencode(k)), Some(k.as_str()) == selected))
        .collect();
    let items: Vec<(&str, &str, bool)> = links.iter().map(|(l, h, a)| (l.as_str(), h.as_str(), *a)).collect();
    html! {
        h2 { "Task output" }
        (tabs(&items))
        @match selected.and_then(|k| latest(run, k)) {
            Some(task) => (output(s, task)),
            None if selected.is_some() => (empty("This task has not started.")),
            None => (empty("Select a task to see its output.")),
        }
    }
}

fn output(s: &AppState, task: &TaskRunRecord) -> Markup {
    let row = &task.row;
    let out = s.runs.get_output(row.run_id).ok();
    let field = |name: &str| out.as_ref().and_then(|o| o.output.get(name)).and_then(Value::as_str).map(str::to_string);
    let result = out.as_ref().and_then(|o| o.output.get("notebook_output")).and_then(|n| n.get("result"));
    let values = row.doc.get("values").and_then(Value::as_object).filter(|v| !v.is_empty());
    let child = out.as_ref().and_then(|o| o.run_job_output.as_ref()).and_then(|c| c.get("run_id")?.as_i64());
    let child_job = task.settings.as_ref().and_then(|t| t.pointer("/run_job_task/job_id")).and_then(Value::as_i64);
    html! {
        section.task-output data-task=[row.task_key.as_deref()] data-run=(row.run_id) {
            (facts(&[
                ("State", badge(task.state.name())),
                ("Attempt", html! { (row.attempt_number + 1) " · task run " (row.run_id) }),
                ("Started", started(task).map_or_else(|| html! { span.dim { "–" } }, time)),
                ("Duration", html! { @if let Some(start) = started(task) { (duration(row.end_time.unwrap_or_else(now_ms) - start)) } }),
                ("Message", html! { (task.state.message) }),
            ]))
            @if let Some(child) = child { p { "Started run " a href=(run_path(child_job, child)) { (child) } } }
            @if let Some(result) = result { h3 { "Result" } pre.result { (result.as_str().map_or_else(|| result.to_string(), str::to_string)) } }
            @if let Some(error) = field("error") { h3 { "Error" } pre.error-text { (shorten(&error, SHOWN_CHARS)) } }
            @if let Some(trace) = field("error_trace") { h3 { "Error trace" } pre.trace { (shorten(&trace, SHOWN_CHARS)) } }
            @if let Some(values) = values {
                h3 { "Task values" }
                table.list.task-values { tbody { @for (k, v) in values { tr { td { code { (k) } } td { code { (v.to_string()) } } } } } }
            }
            @if let Some(logs) = out.as_ref().map(|o| &o.logs).filter(|l| !l.text.is_empty()) {
                h3 { "Logs" @if logs.truncated { " " span.dim { "(truncated)" } } }
                pre.logs { (shorten(&logs.text, SHOWN_CHARS)) }
            }
        }
    }
}
