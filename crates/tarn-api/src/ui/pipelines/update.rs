//! A pipeline's page at one of its updates (the latest by default): the
//! pipeline's facts and actions, the update's dataset graph with its flows
//! and expectations, the recent updates, and the update's event log. The
//! graph and the event log are live regions while the update runs.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use maud::{Markup, html};
use tarn_pipelines::PipelineView;
use tarn_pipelines::updates::state::UpdateState;
use tarn_store::{PipelineEventRow, UpdateRow};
use tarn_ui::components::{Pager, action, badge, duration, empty, facts, live, shorten, time};
use tarn_ui::layout::Section;

use super::{flows, history, seg, update_href};
use crate::AppState;
use crate::routes::permissions::require;
use crate::ui::{PageError, PageResult, Paging, Viewer};

/// How often live regions reload while the update runs, in seconds.
const LIVE_SECONDS: u32 = 2;
/// The recent updates the page lists (all of them on the history page).
const RECENT_UPDATES: usize = 10;
/// The flow events of an update read to draw its flows: every one of a
/// triggered update, the first definitions and latest progress of a long
/// continuous one.
const FLOW_EVENTS: usize = 2000;

fn running(update: &UpdateRow) -> bool {
    UpdateState::parse(&update.state).is_some_and(|s| !s.is_final())
}

/// `/pipelines/{id}`: the page at the latest update.
pub(super) async fn latest(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> PageResult {
    require(&s, &viewer.user, "pipelines", &id, "CAN_VIEW")?;
    let view = s.pipelines.get(&id)?;
    let update = view.latest_updates.first().cloned();
    page(&s, &viewer, &view, update.as_ref(), paging)
}

/// `/pipelines/{id}/updates/{update_id}`: the page at a chosen update.
pub(super) async fn chosen(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((id, update_id)): Path<(String, String)>,
    Query(paging): Query<Paging>,
) -> PageResult {
    require(&s, &viewer.user, "pipelines", &id, "CAN_VIEW")?;
    let view = s.pipelines.get(&id)?;
    let update = s.pipelines.get_update(&id, &update_id)?;
    page(&s, &viewer, &view, Some(&update), paging)
}

fn page(s: &AppState, viewer: &Viewer, view: &PipelineView, update: Option<&UpdateRow>, paging: Paging) -> PageResult {
    let id = &view.row.pipeline_id;
    let recent = s.pipelines.list_updates(id, 0, RECENT_UPDATES + 1)?;
    let body = html! {
        (pipeline_facts(view))
        @match update {
            Some(u) => {
                h2 { "Update " (short_id(&u.update_id)) }
                (flows_live(s, viewer, u)?)
                h2 { "Event log" }
                (events_live(s, u, paging)?)
            }
            None => {
                (toolbar(view, may_run(s, viewer, id)))
                (empty("This pipeline has not run yet: Start runs its first update."))
            }
        }
        h2 { "Recent updates" }
        (history(&recent[..recent.len().min(RECENT_UPDATES)]))
        @if recent.len() > RECENT_UPDATES {
            p { a href={ "/pipelines/" (seg(id)) "/updates" } { "All updates ›" } }
        }
    };
    let pipeline_href = format!("/pipelines/{}", seg(id));
    let update_link = update.map(|u| (short_id(&u.update_id).to_string(), update_href(id, &u.update_id)));
    let mut crumbs = vec![("Pipelines", "/pipelines"), (view.row.name.as_str(), pipeline_href.as_str())];
    if let Some((label, href)) = &update_link {
        crumbs.push((label.as_str(), href.as_str()));
    }
    Ok(viewer.page(&view.row.name, Section::Pipelines, &crumbs, body))
}

fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn may_run(s: &AppState, viewer: &Viewer, id: &str) -> bool {
    require(s, &viewer.user, "pipelines", id, "CAN_RUN").is_ok()
}

/// The pipeline's state and the actions the viewer may take on it.
fn toolbar(view: &PipelineView, may_run: bool) -> Markup {
    let id = seg(&view.row.pipeline_id);
    let active = view.state == "RUNNING" || view.state == "STOPPING";
    html! {
        div.toolbar {
            (badge(view.state))
            @if may_run {
                @if active {
                    (action(&format!("/pipelines/{id}/stop"), "Stop", Some("Stop the running update?")))
                } @else {
                    (action(&format!("/pipelines/{id}/start"), "Start", None))
                    (action(
                        &format!("/pipelines/{id}/full-refresh"),
                        "Full refresh",
                        Some("Recompute every table from scratch? Streaming tables are emptied and read their sources again."),
                    ))
                }
            }
        }
    }
}

fn pipeline_facts(view: &PipelineView) -> Markup {
    let spec = &view.row.spec;
    let target = [spec["catalog"].as_str(), spec["schema"].as_str().or(spec["target"].as_str())];
    let target: Vec<&str> = target.into_iter().flatten().collect();
    let mode = match (spec["continuous"].as_bool() == Some(true), spec["development"].as_bool() == Some(true)) {
        (true, _) => "Continuous",
        (false, true) => "Triggered · development",
        (false, false) => "Triggered",
    };
    facts(&[
        ("Pipeline ID", html! { code { (view.row.pipeline_id) } }),
        ("Health", badge(view.health)),
        ("Creator", html! { (view.row.creator_user_name) }),
        ("Run as", html! { (view.run_as) }),
        ("Target", html! { (target.join(".")) }),
        ("Mode", html! { (mode) }),
    ])
}

/// The actions, the update's facts, graph, flows and expectations,
/// reloaded while it runs.
fn flows_live(s: &AppState, viewer: &Viewer, update: &UpdateRow) -> Result<Markup, PageError> {
    let url = format!("{}/flows", update_href(&update.pipeline_id, &update.update_id));
    Ok(live("update-flows", &url, LIVE_SECONDS, running(update), flows_content(s, viewer, update)?))
}

fn flows_content(s: &AppState, viewer: &Viewer, update: &UpdateRow) -> Result<Markup, PageError> {
    let view = s.pipelines.get(&update.pipeline_id)?;
    let id = &update.update_id;
    let definitions = s.store.list_update_events(id, &["flow_definition"], true, 0, FLOW_EVENTS)?;
    let mut progress = s.store.list_update_events(id, &["flow_progress"], false, 0, FLOW_EVENTS)?;
    progress.reverse();
    let flows = flows::flows(&definitions, &progress);
    Ok(html! {
        (toolbar(&view, may_run(s, viewer, &update.pipeline_id)))
        (facts(&[
            ("State", badge(&update.state)),
            ("Cause", html! { (update.cause) }),
            ("Full refresh", html! { @if update.request["full_refresh"].as_bool() == Some(true) { "yes" } @else { "no" } }),
            ("Started", time(update.creation_time)),
            ("Duration", match update.end_time { Some(end) => html! { (duration(end - update.creation_time)) }, None => html! { span.dim { "–" } } }),
        ]))
        @if let Some(message) = &update.message {
            p.dim.message { (message) }
        }
        (flows::render(&flows))
    })
}

/// The update's events, newest first, reloaded while it runs (on the first page).
fn events_live(s: &AppState, update: &UpdateRow, paging: Paging) -> Result<Markup, PageError> {
    let base = format!("{}/events", update_href(&update.pipeline_id, &update.update_id));
    let url = format!("{base}?offset={}&limit={}", paging.offset, paging.limit());
    let live_now = running(update) && paging.offset == 0;
    Ok(live("update-events", &url, LIVE_SECONDS, live_now, events_content(s, update, paging)?))
}

fn events_content(s: &AppState, update: &UpdateRow, paging: Paging) -> Result<Markup, PageError> {
    let limit = paging.limit();
    let mut events =
        s.store.list_update_events(&update.update_id, &[], false, paging.offset as usize, limit as usize + 1)?;
    let has_more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let base = update_href(&update.pipeline_id, &update.update_id);
    let pager = Pager { base: &base, offset: paging.offset, limit, shown: events.len() as u64, has_more, total: None };
    Ok(html! {
        @if events.is_empty() {
            (empty("No events."))
        } @else {
            table.list.events {
                thead { tr { th { "Time" } th { "Level" } th { "Event type" } th { "Flow" } th { "Message" } } }
                tbody { @for e in &events { (event_row(e)) } }
            }
        }
        (pager.render())
    })
}

fn event_row(e: &PipelineEventRow) -> Markup {
    html! {
        tr data-event-type=(e.event_type) data-level=(e.level) {
            td { (time(e.timestamp)) }
            td { (badge(&e.level)) }
            td { code { (e.event_type) } }
            td { (e.origin["flow_name"].as_str().unwrap_or_default()) }
            td.message title=(e.message) { (shorten(&e.message, 300)) }
        }
    }
}

/// The live region of the flows alone (htmx reloads it).
pub(super) async fn flows_region(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((id, update_id)): Path<(String, String)>,
) -> Result<Html<String>, PageError> {
    require(&s, &viewer.user, "pipelines", &id, "CAN_VIEW")?;
    let update = s.pipelines.get_update(&id, &update_id)?;
    Ok(Html(flows_live(&s, &viewer, &update)?.into_string()))
}

/// The live region of the event log alone.
pub(super) async fn events_region(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((id, update_id)): Path<(String, String)>,
    Query(paging): Query<Paging>,
) -> Result<Html<String>, PageError> {
    require(&s, &viewer.user, "pipelines", &id, "CAN_VIEW")?;
    let update = s.pipelines.get_update(&id, &update_id)?;
    Ok(Html(events_live(&s, &update, paging)?.into_string()))
}
