//! A run's page (`/jobs/{id}/runs/{run}`, `/jobs/runs/{run}` for a run of
//! no job; a task run's id shows its job run with that task selected): its
//! facts, its task graph and timeline and the selected task's output, all
//! in one live region that `/dag` serves again every two seconds until the
//! run ends; Cancel, Repair and Run now.

use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use tarn_core::ApiError;
use tarn_jobs::runs::{RepairKind, ResultState};
use tarn_jobs::{RepairRequest, RunOrTask, RunRecord};
use tarn_store::User;
use tarn_ui::components::{action, badge, duration, facts, live, time};
use tarn_ui::layout::Section;

use super::job::{run_length, urlencode};
use super::task::{failures, gantt, graph, task_detail};
use super::{check_run, run_path};
use crate::AppState;
use crate::error::ApiFailure;
use crate::ui::{Action, PageResult, Viewer, done};

/// `/jobs/{id}/runs/{run}` or `/jobs/runs/{run}`.
#[derive(Debug, Deserialize)]
pub(super) struct RunPath {
    id: Option<i64>,
    run: i64,
}

/// The task whose output the page shows.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Selected {
    task: Option<String>,
}

/// A run as its page shows it: the job run (a task run's or iteration's
/// job run, its task then selected), checked as `runs/get` checks it.
struct Shown {
    run: RunRecord,
    selected: Option<String>,
    can_manage: bool,
}

fn not_found(run_id: i64) -> ApiFailure {
    ApiError::not_found(format!("Run {run_id} does not exist.")).into()
}

fn load(s: &AppState, user: &User, path: &RunPath, selected: Option<String>) -> Result<Shown, ApiFailure> {
    let mut row = s.store.get_job_run(path.run)?.ok_or_else(|| not_found(path.run))?;
    let mut from_task = None;
    while row.task_key.is_some() {
        from_task = row.task_key.clone();
        let parent = row.parent_run_id.ok_or_else(|| not_found(path.run))?;
        row = s.store.get_job_run(parent)?.ok_or_else(|| not_found(path.run))?;
    }
    if row.job_id != path.id {
        return Err(not_found(path.run));
    }
    check_run(s, user, &row, "CAN_VIEW")?;
    let can_manage = check_run(s, user, &row, "CAN_MANAGE_RUN").is_ok();
    let RunOrTask::Run(run) = s.runs.get(row.run_id, false)? else { return Err(not_found(path.run)) };
    let selected = selected.filter(|k| !k.is_empty()).or(from_task);
    Ok(Shown { run, selected, can_manage })
}

pub(super) async fn page(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(path): Path<RunPath>,
    Query(selected): Query<Selected>,
) -> PageResult {
    let shown = load(&s, &viewer.user, &path, selected.task)?;
    let run = &shown.run;
    let title = format!("{} · run {}", run.run_name, run.row.run_id);
    let mut crumbs = vec![("Workflows", "/jobs".to_string())];
    if let Some(job_id) = run.row.job_id {
        crumbs.push((run.run_name.as_str(), format!("/jobs/{job_id}")));
    }
    crumbs.push(("Run", run_path(run.row.job_id, run.row.run_id)));
    let crumbs: Vec<(&str, &str)> = crumbs.iter().map(|(l, h)| (*l, h.as_str())).collect();
    let body = html! {
        (region(&s, &shown))
    };
    Ok(viewer.page(&title, Section::Workflows, &crumbs, body))
}

/// The live region alone, for htmx to swap in.
pub(super) async fn fragment(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(path): Path<RunPath>,
    Query(selected): Query<Selected>,
) -> PageResult {
    let shown = load(&s, &viewer.user, &path, selected.task)?;
    Ok(Html(region(&s, &shown).into_string()))
}

fn region(s: &AppState, shown: &Shown) -> Markup {
    let run = &shown.run;
    let base = run_path(run.row.job_id, run.row.run_id);
    let url = match &shown.selected {
        Some(key) => format!("{base}/dag?task={}", urlencode(key)),
        None => format!("{base}/dag"),
    };
    let active = !run.state.life_cycle.is_final();
    let content = html! {
        (toolbar(shown, &base, active))
        (run_facts(run))
        (failures(run, &base))
        h2 { "Tasks" }
        div.scroll { (graph(run, &base).svg()) }
        h2 { "Timeline" }
        div.scroll { (gantt(run)) }
        (task_detail(s, run, shown.selected.as_deref(), &base))
    };
    live("run-live", &url, 2, active, content)
}

fn toolbar(shown: &Shown, base: &str, active: bool) -> Markup {
    let run = &shown.run;
    let failed = run.state.result.is_some_and(|r| r != ResultState::Success);
    html! {
        div.toolbar {
            span.run-state { (badge(run.state.name())) }
            @if shown.can_manage && active {
                (action(&format!("{base}/cancel"), "Cancel", Some("Cancel this run?")))
            }
            @if shown.can_manage && !active && failed {
                (action(&format!("{base}/repair"), "Repair", None))
            }
            @if let (true, Some(job_id)) = (shown.can_manage, run.row.job_id) {
                (action(&format!("/jobs/{job_id}/run-now"), "Run now", None))
            }
        }
    }
}

fn parameters(run: &RunRecord) -> Markup {
    let plain = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    html! {
        @for p in &run.job_parameters { code { (p.name) "=" (plain(&p.value)) } " " }
        @for (name, value) in run.overriding_parameters.iter().flatten() { code { (name) ": " (value.to_string()) } " " }
        @if run.job_parameters.is_empty() && run.overriding_parameters.is_none() { span.dim { "none" } }
    }
}

fn run_facts(run: &RunRecord) -> Markup {
    let row = &run.row;
    let result = run.state.result.map_or_else(|| html! { span.dim { "–" } }, |r| badge(r.as_str()));
    let mut rows = vec![
        ("State", badge(run.state.life_cycle.as_str())),
        ("Result", result),
        ("Trigger", html! { (run.trigger) " · " (row.run_type) }),
        ("Started", time(row.start_time)),
        ("Duration", html! { (duration(run_length(row))) }),
        ("Parameters", parameters(run)),
        ("Launched by", html! { (row.creator_user_name) }),
        ("Runs as", html! { (tarn_jobs::runs::run_as(row)) }),
    ];
    if let Some(job_id) = row.job_id {
        rows.insert(0, ("Job", html! { a href={ "/jobs/" (job_id) } { (run.run_name) " (" (job_id) ")" } }));
    }
    if !run.state.message.is_empty() {
        rows.push(("Message", html! { (run.state.message) }));
    }
    if let Some(history) = &run.repair_history {
        let repairs = history.iter().filter(|e| e.kind == RepairKind::Repair).count();
        rows.push(("Repairs", html! { (repairs) }));
    }
    facts(&rows)
}

pub(super) async fn cancel(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(path): Path<RunPath>,
) -> Result<Response, ApiFailure> {
    let row = s.store.get_job_run(path.run)?.filter(|r| r.job_id == path.id).ok_or_else(|| not_found(path.run))?;
    check_run(&s, &viewer.user, &row, "CAN_MANAGE_RUN")?;
    s.runs.cancel(row.run_id, &viewer.user.user_name)?;
    Ok(done(None))
}

/// Re-runs the failed tasks, as `runs/repair` with `rerun_all_failed_tasks`
/// after the run's latest repair.
pub(super) async fn repair(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(path): Path<RunPath>,
) -> Result<Response, ApiFailure> {
    let row = s.store.get_job_run(path.run)?.filter(|r| r.job_id == path.id).ok_or_else(|| not_found(path.run))?;
    check_run(&s, &viewer.user, &row, "CAN_MANAGE_RUN")?;
    let RunOrTask::Run(run) = s.runs.get(row.run_id, false)? else { return Err(not_found(path.run)) };
    let latest_repair_id =
        run.repair_history.iter().flatten().rfind(|e| e.kind == RepairKind::Repair).and_then(|e| e.id);
    let request = RepairRequest { rerun_all_failed_tasks: true, latest_repair_id, ..RepairRequest::default() };
    s.runs.repair(row.run_id, &request)?;
    Ok(done(None))
}
