//! `/jobs/{id}`: a job's settings in short (tasks and their graph,
//! schedule, clusters, parameters), Run now, the grid of its recent runs by
//! task (Airflow's: one column per run, newest on the right, one row per
//! task) and the table of those runs, a page at a time.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;
use tarn_core::time::now_ms;
use tarn_jobs::RunNow;
use tarn_store::{JobRow, JobRunRow};
use tarn_ui::components::{Pager, action, badge, duration, empty, facts, time};
use tarn_ui::dag::{Graph, Node};
use tarn_ui::layout::Section;

use super::{can_run, check_job, run_path, schedule, square, state_word};
use crate::AppState;
use crate::error::ApiFailure;
pub(super) use crate::ui::encode as urlencode;
use crate::ui::{Action, PageResult, Paging, Viewer, done};

/// Runs per page of the grid (`runs/list`'s own bound).
const MAX_RUNS: u64 = 25;

/// A job run with its task runs (every attempt, oldest first).
struct GridRun {
    row: JobRunRow,
    tasks: Vec<JobRunRow>,
}

pub(super) async fn page(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(paging): Query<Paging>,
) -> PageResult {
    check_job(&s, &viewer.user, id, "CAN_VIEW")?;
    let job = s.jobs.get(id)?;
    let limit = paging.limit().min(MAX_RUNS);
    let mut rows = s.store.job_runs_of_job(id, paging.offset as usize, limit as usize + 1)?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let runs = rows
        .into_iter()
        .map(|row| Ok(GridRun { tasks: s.store.child_job_runs(row.run_id)?, row }))
        .collect::<Result<Vec<_>, ApiFailure>>()?;
    let base = format!("/jobs/{id}");
    let pager = Pager { base: &base, offset: paging.offset, limit, shown: runs.len() as u64, has_more, total: None };
    let name = job.settings.get("name").and_then(Value::as_str).unwrap_or("Untitled").to_string();
    let body = html! {
        div.toolbar {
            @if can_run(&s, &viewer.user, Some(id)) { (action(&format!("{base}/run-now"), "Run now", None)) }
        }
        (summary(&job))
        h2 { "Runs by task" }
        @if runs.is_empty() { (empty("No runs yet.")) } @else { (grid(id, &job, &runs)) }
        h2 { "Runs" }
        @if !runs.is_empty() { (table(&runs)) }
        (pager.render())
    };
    Ok(viewer.page(&name, Section::Workflows, &[("Workflows", "/jobs"), (&name, &base)], body))
}

/// Run now, as `jobs/run-now` with no parameters: then the run's page.
pub(super) async fn run_now(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(id): Path<i64>,
) -> Result<Response, ApiFailure> {
    check_job(&s, &viewer.user, id, "CAN_MANAGE_RUN")?;
    let run_id = s.runs.run_now(id, &viewer.user.user_name, RunNow::default())?;
    Ok(done(Some(&run_path(Some(id), run_id))))
}

fn tasks(settings: &Value) -> &[Value] {
    settings.get("tasks").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn key(task: &Value) -> &str {
    task.get("task_key").and_then(Value::as_str).unwrap_or_default()
}

/// A task's kind: the `*_task` field it has.
fn kind(task: &Value) -> String {
    let fields = task.as_object().into_iter().flat_map(|m| m.keys());
    fields.filter(|k| k.ends_with("_task")).map(|k| k.trim_end_matches("_task").to_string()).next().unwrap_or_default()
}

/// Where a task runs: a job cluster, a cluster, an environment, or serverless.
fn compute(task: &Value) -> Markup {
    let text = |f: &str| task.get(f).and_then(Value::as_str);
    html! {
        @if let Some(cluster) = text("existing_cluster_id") {
            a href={ "/compute/clusters/" (cluster) } { (cluster) }
        } @else if let Some(key) = text("job_cluster_key") {
            "job cluster " code { (key) }
        } @else if task.get("new_cluster").is_some() {
            "new cluster"
        } @else if let Some(key) = text("environment_key") {
            "serverless, environment " code { (key) }
        } @else {
            "serverless"
        }
    }
}

fn depends_on(task: &Value) -> Vec<&str> {
    let deps = task.get("depends_on").and_then(Value::as_array).into_iter().flatten();
    deps.filter_map(|d| d.get("task_key").and_then(Value::as_str)).collect()
}

/// The job's tasks as a graph, no states.
pub(super) fn task_graph(settings: &Value) -> Graph {
    let mut graph = Graph::default();
    for task in tasks(settings) {
        let key = key(task);
        graph.nodes.push(Node { id: key.into(), label: key.into(), detail: kind(task), ..Node::default() });
        graph.edges.extend(depends_on(task).into_iter().map(|d| (d.to_string(), key.to_string())));
    }
    graph
}

fn summary(job: &JobRow) -> Markup {
    let settings = &job.settings;
    let parameters = settings.get("parameters").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let clusters = settings.get("job_clusters").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let field = |v: &Value, p: &str| v.pointer(p).map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string));
    html! {
        (facts(&[
            ("Job ID", html! { (job.job_id) }),
            ("Created by", html! { (job.creator_user_name) }),
            ("Runs as", html! { (job.run_as_user_name) }),
            ("Created", time(job.created_time)),
            ("Schedule", schedule(settings).unwrap_or_else(|| html! { span.dim { "Manual" } })),
            ("Max concurrent runs", html! { (field(settings, "/max_concurrent_runs").unwrap_or_else(|| "1".into())) }),
        ]))
        h2 { "Tasks" }
        div.scroll { (task_graph(settings).svg()) }
        table.list.tasks {
            thead { tr { th { "Task" } th { "Type" } th { "Depends on" } th { "Compute" } } }
            tbody { @for task in tasks(settings) {
                tr data-task=(key(task)) {
                    td { (key(task)) } td { (kind(task)) } td { (depends_on(task).join(", ")) } td { (compute(task)) }
                }
            } }
        }
        @if !clusters.is_empty() {
            h2 { "Job clusters" }
            table.list { thead { tr { th { "Key" } th { "Spark version" } th { "Node type" } th { "Workers" } } }
                tbody { @for c in clusters { tr {
                    td { (field(c, "/job_cluster_key").unwrap_or_default()) }
                    td { (field(c, "/new_cluster/spark_version").unwrap_or_default()) }
                    td { (field(c, "/new_cluster/node_type_id").unwrap_or_default()) }
                    td { (field(c, "/new_cluster/num_workers").unwrap_or_else(|| "0".into())) }
                } } }
            }
        }
        @if !parameters.is_empty() {
            h2 { "Parameters" }
            table.list { thead { tr { th { "Name" } th { "Default" } } }
                tbody { @for p in parameters { tr {
                    td { (field(p, "/name").unwrap_or_default()) } td { code { (field(p, "/default").unwrap_or_default()) } }
                } } }
            }
        }
    }
}

/// The task keys of the grid's rows: the job's tasks now, then any a
/// listed run had that the job no longer has.
fn grid_keys(job: &JobRow, runs: &[GridRun]) -> Vec<String> {
    let mut keys: Vec<String> = tasks(&job.settings).iter().map(|t| key(t).to_string()).collect();
    for task in runs.iter().flat_map(|r| &r.tasks) {
        if let Some(k) = &task.task_key
            && !keys.contains(k)
        {
            keys.push(k.clone());
        }
    }
    keys
}

/// Runs as columns (oldest left, newest right), tasks as rows; a cell is
/// the state of the task's latest attempt in that run.
fn grid(job_id: i64, job: &JobRow, runs: &[GridRun]) -> Markup {
    let keys = grid_keys(job, runs);
    let columns: Vec<&GridRun> = runs.iter().rev().collect();
    html! {
        div.scroll { table.grid.runs-grid {
            thead { tr {
                th {}
                @for run in &columns {
                    @let (id, state) = (run.row.run_id, state_word(&run.row));
                    th.cell data-run=(id) { (square(&run_path(Some(job_id), id), state, &format!("Run {id} · {state}"))) }
                }
            } }
            tbody { @for key in &keys {
                tr data-task=(key) {
                    th { (key) }
                    @for run in &columns { (cell(job_id, run, key)) }
                }
            } }
        } }
    }
}

/// The state of task `key`'s latest attempt in `run`, linked to it.
fn cell(job_id: i64, run: &GridRun, key: &str) -> Markup {
    let id = run.row.run_id;
    let latest = run.tasks.iter().rfind(|t| t.task_key.as_deref() == Some(key));
    html! {
        td.cell data-run=(id) data-task=(key) {
            @match latest {
                Some(t) => {
                    @let href = format!("{}?task={}", run_path(Some(job_id), id), urlencode(key));
                    (square(&href, state_word(t), &format!("{key} · run {id} · {}", state_word(t))))
                }
                None => span.sq {},
            }
        }
    }
}

/// A run's length: to its end, or so far while it goes.
pub(super) fn run_length(row: &JobRunRow) -> i64 {
    row.end_time.filter(|e| *e > 0).unwrap_or_else(now_ms) - row.start_time
}

fn table(runs: &[GridRun]) -> Markup {
    let trigger = |row: &JobRunRow| row.doc.get("trigger").and_then(Value::as_str).unwrap_or("ONE_TIME").to_string();
    html! {
        table.list.runs {
            thead { tr { th { "Run" } th { "Start" } th { "Duration" } th { "Trigger" } th { "Launched by" } th { "State" } } }
            tbody { @for run in runs {
                @let row = &run.row;
                tr data-run=(row.run_id) {
                    td { a href=(run_path(row.job_id, row.run_id)) { (row.run_id) } }
                    td { (time(row.start_time)) }
                    td.num { (duration(run_length(row))) }
                    td { (trigger(row)) }
                    td { (row.creator_user_name) }
                    td { (badge(state_word(row))) }
                }
            } }
        }
    }
}
