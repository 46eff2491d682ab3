//! The pipelines pages: `/pipelines` (the pipelines the viewer may see),
//! `/pipelines/{id}` and `/pipelines/{id}/updates/{update}` (an update's
//! dataset graph, flows, expectations and event log, live while it runs;
//! see [`update`]), `/pipelines/{id}/updates` (the update history), and
//! the Start, Full refresh and Stop actions, checked as
//! `/api/2.0/pipelines/{id}/updates` and `/stop` check them.

mod flows;
mod update;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use tarn_pipelines::StartUpdate;
use tarn_store::UpdateRow;
use tarn_ui::components::{Pager, badge, duration, empty, time};
use tarn_ui::layout::Section;

use super::{Action, PageResult, Paging, Viewer};
use super::{encode, segment as seg};
use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::{require, visible};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/pipelines", get(list))
        .route("/pipelines/{id}", get(update::latest))
        .route("/pipelines/{id}/updates", get(updates))
        .route("/pipelines/{id}/updates/{update_id}", get(update::chosen))
        .route("/pipelines/{id}/updates/{update_id}/flows", get(update::flows_region))
        .route("/pipelines/{id}/updates/{update_id}/events", get(update::events_region))
        .route("/pipelines/{id}/start", post(start))
        .route("/pipelines/{id}/full-refresh", post(full_refresh))
        .route("/pipelines/{id}/stop", post(stop))
}

fn update_href(pipeline_id: &str, update_id: &str) -> String {
    format!("/pipelines/{}/updates/{}", seg(pipeline_id), seg(update_id))
}

#[derive(Debug, serde::Deserialize)]
struct ListQuery {
    #[serde(default)]
    name: String,
}

/// The pipelines the viewer holds a level on, as `GET /api/2.0/pipelines`
/// filters them (within the page).
async fn list(
    State(s): State<AppState>,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
    Query(paging): Query<Paging>,
) -> PageResult {
    let limit = paging.limit();
    let name = q.name.trim();
    let like = (!name.is_empty()).then(|| format!("%{name}%"));
    let mut views = s.pipelines.list(like.as_deref(), paging.offset as usize, limit as usize + 1)?;
    let has_more = views.len() > limit as usize;
    views.truncate(limit as usize);
    let page_size = views.len() as u64;
    let mut shown = Vec::new();
    for view in views {
        if visible(&s, &viewer.user, "pipelines", &view.row.pipeline_id)? {
            shown.push(view);
        }
    }
    let base = if name.is_empty() { "/pipelines".to_string() } else { format!("/pipelines?name={}", encode(name)) };
    let pager = Pager { base: &base, offset: paging.offset, limit, shown: page_size, has_more, total: None };
    let body = html! {
        form.toolbar method="get" action="/pipelines" {
            input type="search" name="name" value=(name) placeholder="Filter by name";
            button type="submit" { "Filter" }
        }
        @if shown.is_empty() {
            (empty("No pipelines."))
        } @else {
            table.list.pipelines {
                thead { tr { th { "Name" } th { "State" } th { "Latest update" } th { "Creator" } } }
                tbody {
                    @for view in &shown {
                        tr data-pipeline=(view.row.pipeline_id) {
                            td { a href={ "/pipelines/" (seg(&view.row.pipeline_id)) } { (view.row.name) } }
                            td { (badge(view.state)) }
                            td {
                                @match view.latest_updates.first() {
                                    Some(u) => {
                                        a href=(update_href(&u.pipeline_id, &u.update_id)) { (badge(&u.state)) }
                                        " " (time(u.creation_time))
                                    }
                                    None => span.dim { "none" },
                                }
                            }
                            td { (view.row.creator_user_name) }
                        }
                    }
                }
            }
        }
        (pager.render())
    };
    Ok(viewer.page("Pipelines", Section::Pipelines, &[("Pipelines", "/pipelines")], body))
}

/// The update history, newest first.
async fn updates(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> PageResult {
    require(&s, &viewer.user, "pipelines", &id, "CAN_VIEW")?;
    let row = s.pipelines.row(&id)?;
    let limit = paging.limit();
    let mut rows = s.pipelines.list_updates(&id, paging.offset as usize, limit as usize + 1)?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let base = format!("/pipelines/{}/updates", seg(&id));
    let pager = Pager { base: &base, offset: paging.offset, limit, shown: rows.len() as u64, has_more, total: None };
    let body = html! {
        (history(&rows))
        (pager.render())
    };
    let pipeline_href = format!("/pipelines/{}", seg(&id));
    let crumbs = [("Pipelines", "/pipelines"), (row.name.as_str(), pipeline_href.as_str()), ("Updates", base.as_str())];
    Ok(viewer.page(&format!("{} · updates", row.name), Section::Pipelines, &crumbs, body))
}

/// A table of updates: state, cause, full refresh, start, duration.
fn history(rows: &[UpdateRow]) -> Markup {
    if rows.is_empty() {
        return empty("No updates yet.");
    }
    html! {
        table.list.updates {
            thead { tr { th { "Update" } th { "State" } th { "Cause" } th { "Full refresh" } th { "Started" } th { "Duration" } } }
            tbody {
                @for u in rows {
                    tr data-update=(u.update_id) {
                        td { a href=(update_href(&u.pipeline_id, &u.update_id)) { (u.update_id.get(..8).unwrap_or(&u.update_id)) } }
                        td { (badge(&u.state)) }
                        td { (u.cause) }
                        td { @if u.request["full_refresh"].as_bool() == Some(true) { "yes" } @else { "no" } }
                        td { (time(u.creation_time)) }
                        td.num {
                            @match u.end_time {
                                Some(end) => (duration(end - u.creation_time)),
                                None => span.dim { "–" },
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Starts an update as `POST /api/2.0/pipelines/{id}/updates` does (CAN_RUN)
/// and goes to its page.
async fn begin(s: &AppState, viewer: &Viewer, id: &str, full_refresh: bool) -> Result<Response, ApiFailure> {
    require(s, &viewer.user, "pipelines", id, "CAN_RUN")?;
    let request = StartUpdate {
        cause: "USER_ACTION".into(),
        full_refresh,
        refresh_selection: Vec::new(),
        full_refresh_selection: Vec::new(),
        validate_only: false,
    };
    let update_id = s.pipelines.start_update(id, request)?;
    Ok(super::done(Some(&update_href(id, &update_id))))
}

async fn start(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    begin(&s, &viewer, &id, false).await
}

async fn full_refresh(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    begin(&s, &viewer, &id, true).await
}

/// Stops the running update as `POST /api/2.0/pipelines/{id}/stop` does.
async fn stop(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    require(&s, &viewer.user, "pipelines", &id, "CAN_RUN")?;
    s.pipelines.stop(&id)?;
    Ok(super::done(None))
}
