//! `/jobs`: the jobs the viewer may see, a page at a time, each with its
//! schedule, creator, its last runs as squares and a Run now button.

use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use tarn_store::JobRow;
use tarn_ui::components::{Pager, action, empty, time};
use tarn_ui::layout::Section;

use super::{can_run, can_view, run_path, schedule, square, state_word};
use crate::AppState;
use crate::ui::{PageResult, Paging, Viewer};

/// How many of a job's last runs the list shows.
const LAST_RUNS: usize = 5;

#[derive(Debug, Deserialize)]
pub(super) struct Filter {
    #[serde(default)]
    name: String,
}

pub(super) async fn page(
    State(s): State<AppState>,
    viewer: Viewer,
    Query(filter): Query<Filter>,
    Query(paging): Query<Paging>,
) -> PageResult {
    let limit = paging.limit().min(100);
    let name = filter.name.trim();
    let listed = s.jobs.list(Some(name), paging.offset as usize, Some(limit as i64))?;
    let mut rows = Vec::new();
    for job in &listed.jobs {
        if can_view(&s, &viewer.user, job.job_id)? {
            rows.push(row(&s, &viewer, job)?);
        }
    }
    let base = match name.is_empty() {
        true => "/jobs".to_string(),
        false => format!("/jobs?name={}", crate::ui::encode(name)),
    };
    let pager = Pager {
        base: &base,
        offset: paging.offset,
        limit,
        shown: listed.jobs.len() as u64,
        has_more: listed.has_more,
        total: None,
    };
    let body = html! {
        form.toolbar method="get" action="/jobs" {
            input type="search" name="name" value=(name) placeholder="Job name";
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            (empty(if name.is_empty() { "No jobs yet." } else { "No job has that name." }))
        } @else {
            table.list.jobs {
                thead { tr { th { "Name" } th { "Schedule / trigger" } th { "Created by" } th { "Created" } th { "Recent runs" } th {} } }
                tbody { @for r in &rows { (r) } }
            }
        }
        (pager.render())
    };
    Ok(viewer.page("Jobs", Section::Workflows, &[("Workflows", "/jobs")], body))
}

/// One job: its last runs are read newest first and shown oldest first,
/// the newest on the right as Databricks does.
fn row(s: &AppState, viewer: &Viewer, job: &JobRow) -> Result<Markup, crate::error::ApiFailure> {
    let mut runs = s.store.job_runs_of_job(job.job_id, 0, LAST_RUNS)?;
    runs.reverse();
    let name = job.settings.get("name").and_then(Value::as_str).unwrap_or("Untitled");
    let href = format!("/jobs/{}", job.job_id);
    Ok(html! {
        tr data-job=(job.job_id) {
            td { a href=(href) { (name) } br; span.dim { "ID " (job.job_id) } }
            td { @match schedule(&job.settings) { Some(m) => (m), None => span.dim { "Manual" } } }
            td { (job.creator_user_name) }
            td { (time(job.created_time)) }
            td.runs {
                table.grid.last-runs { tr {
                    @for r in &runs {
                        td.cell { (square(&run_path(r.job_id, r.run_id), state_word(r), &format!("Run {}", r.run_id))) }
                    }
                } }
            }
            td { @if can_run(s, &viewer.user, Some(job.job_id)) { (action(&format!("{href}/run-now"), "Run now", None)) } }
        }
    })
}
