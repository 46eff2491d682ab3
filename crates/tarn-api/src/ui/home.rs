//! The home page: what is running now (clusters up, job runs and pipeline
//! updates in flight, serving endpoints), recent failures, and today's
//! estimated cost from the usage records. Each list is bounded; each item
//! links to its page.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use maud::{Markup, html};
use tarn_compute::ClusterFilter;
use tarn_compute::cluster::ClusterState;
use tarn_core::time::now_ms;
use tarn_store::{RunSummary, UpdateSummary, User};
use tarn_ui::components::{badge, empty, time};
use tarn_ui::layout::Section;

use super::costs::usage::{self, DAY_MS, Totals, day_start, hours, money};
use super::{PageResult, Viewer};
use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::{job, permissions, visible};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

/// Items per list.
const LIMIT: usize = 20;
/// How far back failures are shown.
const FAILURE_DAYS: i64 = 7;
/// The newest job runs searched for failures.
const FAILURE_WINDOW: i64 = 5000;
const PIPELINE_FINAL: [&str; 3] = ["COMPLETED", "FAILED", "CANCELED"];
const RUN_FAILURES: [&str; 3] = ["FAILED", "TIMEDOUT", "INTERNAL_ERROR"];

async fn home(State(s): State<AppState>, viewer: Viewer) -> PageResult {
    let user = &viewer.user;
    let clusters = clusters_up(&s, user)?;
    let active_runs = runs_shown(&s, user, s.store.active_job_run_summaries(LIMIT * 5)?)?;
    let since = now_ms() - FAILURE_DAYS * DAY_MS;
    let failed_runs =
        runs_shown(&s, user, s.store.job_run_summaries_with_result(since, FAILURE_WINDOW, &RUN_FAILURES, LIMIT * 5)?)?;
    let updates =
        updates_shown(&s, user, s.store.pipeline_update_summaries(&PIPELINE_FINAL, &["FAILED"], since, LIMIT * 5)?)?;
    let (active_updates, failed_updates): (Vec<_>, Vec<_>) =
        updates.into_iter().partition(|u| !PIPELINE_FINAL.contains(&u.state.as_str()));
    let endpoints = endpoints(&s, user)?;
    let mut today = Totals::default();
    usage::each_visible(&s, user, day_start(now_ms()), None, |r| today.add(r))?;
    let body = html! {
        div.cards {
            (card(&clusters.len().to_string(), "clusters up", "/compute"))
            (card(&active_runs.len().to_string(), "job runs in flight", "/jobs"))
            (card(&active_updates.len().to_string(), "pipeline updates in flight", "/pipelines"))
            (card(&endpoints.len().to_string(), "serving endpoints", "/ml/endpoints"))
            (card(&money(today.cost), "estimated cost today", "/costs"))
        }
        p.dim.today { "Today (UTC): " (hours(today.core_hours())) " core-hours over " (today.attempts) " task runs." }
        h2 { "Running now" }
        (cluster_list(&clusters))
        (run_list("Job runs in flight", &active_runs, "No job runs in flight."))
        (update_list("Pipeline updates in flight", &active_updates, "No pipeline updates in flight."))
        (endpoint_list(&endpoints))
        h2 { "Recent failures" }
        p.dim { "The last " (FAILURE_DAYS) " days." }
        (run_list("Failed job runs", &failed_runs, "No failed job runs."))
        (update_list("Failed pipeline updates", &failed_updates, "No failed pipeline updates."))
    };
    Ok(viewer.page("Home", Section::Home, &[], body))
}

fn card(figure: &str, caption: &str, href: &str) -> Markup {
    html! { a.card href=(href) { div.figure { (figure) } div.caption { (caption) } } }
}

/// The viewer's clusters in any state but TERMINATED: (id, name, state).
fn clusters_up(s: &AppState, user: &User) -> Result<Vec<(String, String, &'static str)>, ApiFailure> {
    let states = ClusterState::ALL.into_iter().filter(|st| *st != ClusterState::Terminated).collect();
    let mut out = Vec::new();
    for c in s.clusters.list(&ClusterFilter { states, descending: true, ..Default::default() })? {
        if user.admin || visible(s, user, "clusters", &c.row.cluster_id)? {
            out.push((c.row.cluster_id.clone(), c.spec.name().to_string(), c.state.as_str()));
        }
    }
    Ok(out)
}

/// The runs the viewer may see, as the runs API decides it, at most [`LIMIT`].
fn runs_shown(s: &AppState, user: &User, runs: Vec<RunSummary>) -> Result<Vec<RunSummary>, ApiFailure> {
    let mut out = Vec::new();
    for run in runs {
        let may = user.admin
            || match run.job_id {
                Some(id) => match job(s, id) {
                    Ok(object) => permissions(s).allows(user, &object, "CAN_VIEW")?,
                    Err(_) => false,
                },
                None => run.creator_user_name == user.user_name,
            };
        if may {
            out.push(run);
        }
        if out.len() == LIMIT {
            break;
        }
    }
    Ok(out)
}

fn updates_shown(s: &AppState, user: &User, updates: Vec<UpdateSummary>) -> Result<Vec<UpdateSummary>, ApiFailure> {
    let mut out = Vec::new();
    for u in updates {
        if user.admin || visible(s, user, "pipelines", &u.pipeline_id)? {
            out.push(u);
        }
    }
    Ok(out)
}

/// (name, state) of the endpoints the viewer may see.
fn endpoints(s: &AppState, user: &User) -> Result<Vec<(String, &'static str)>, ApiFailure> {
    let mut out = Vec::new();
    for e in s.serving.list()? {
        if user.admin || visible(s, user, "serving-endpoints", &e.row.name)? {
            out.push((e.row.name.clone(), if e.ready { "READY" } else { "NOT_READY" }));
        }
    }
    Ok(out)
}

fn cluster_list(clusters: &[(String, String, &'static str)]) -> Markup {
    html! {
        h3 { "Clusters" }
        @if clusters.is_empty() { (empty("No clusters up.")) } @else {
            table.list.clusters-up {
                tbody {
                    @for (id, name, state) in clusters.iter().take(LIMIT) {
                        tr data-cluster=(id) { td { a href={ "/compute/clusters/" (id) } { (name) } } td { (badge(state)) } }
                    }
                }
            }
        }
    }
}

fn run_href(run: &RunSummary) -> String {
    match run.job_id {
        Some(job) => format!("/jobs/{job}/runs/{}", run.run_id),
        None => format!("/jobs/runs/{}", run.run_id),
    }
}

fn run_list(title: &str, runs: &[RunSummary], none: &str) -> Markup {
    html! {
        h3 { (title) }
        @if runs.is_empty() { (empty(none)) } @else {
            table.list.runs {
                thead { tr { th { "Run" } th { "State" } th { "Started" } th { "Message" } } }
                tbody {
                    @for run in runs {
                        tr data-run=(run.run_id) {
                            td { a href=(run_href(run)) { (run.run_name.as_deref().unwrap_or("Untitled")) " #" (run.run_id) } }
                            td { (badge(run.result_state.as_deref().unwrap_or(&run.life_cycle_state))) }
                            td { (time(run.start_time)) }
                            td.dim { (run.state_message) }
                        }
                    }
                }
            }
        }
    }
}

fn update_list(title: &str, updates: &[UpdateSummary], none: &str) -> Markup {
    html! {
        h3 { (title) }
        @if updates.is_empty() { (empty(none)) } @else {
            table.list.updates {
                thead { tr { th { "Pipeline" } th { "State" } th { "Started" } th { "Message" } } }
                tbody {
                    @for u in updates.iter().take(LIMIT) {
                        tr data-update=(u.update_id) {
                            td { a href={ "/pipelines/" (u.pipeline_id) "/updates/" (u.update_id) } {
                                (u.pipeline_name.as_deref().unwrap_or(&u.pipeline_id)) } }
                            td { (badge(&u.state)) }
                            td { (time(u.creation_time)) }
                            td.dim { (u.message.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

fn endpoint_list(endpoints: &[(String, &'static str)]) -> Markup {
    html! {
        h3 { "Serving endpoints" }
        @if endpoints.is_empty() { (empty("No serving endpoints.")) } @else {
            table.list.endpoints {
                tbody {
                    @for (name, state) in endpoints.iter().take(LIMIT) {
                        tr { td { a href={ "/ml/endpoints/" (name) } { (name) } } td { (badge(state)) } }
                    }
                }
            }
        }
    }
}
