//! Model serving's pages: the endpoints at `/ml/endpoints` and one at
//! `/ml/endpoints/{name}` (its config, traffic split, state, and the
//! traffic its inference table logged), with the one action the API
//! offers a person on a page: deleting it (CAN_MANAGE). Who sees an
//! endpoint is decided as `routes/serving.rs` decides it: any level to
//! list it, CAN_VIEW to open it.

mod endpoint;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use maud::{Markup, html};
use tarn_serving::{EndpointConfig, EndpointView, EntityState};
use tarn_ui::components::{Pager, badge, empty, state_class, time};
use tarn_ui::layout::Section;

use super::models::version_url;
use super::segment;
use super::{PageResult, Paging, Viewer};
use crate::AppState;
use crate::routes::permissions::visible;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/ml/endpoints", get(list))
        .route("/ml/endpoints/{name}", get(endpoint::page))
        .route("/ml/endpoints/{name}/live", get(endpoint::live_part))
        .route("/ml/endpoints/{name}/delete", post(endpoint::delete))
}

pub(super) fn endpoint_url(name: &str) -> String {
    format!("/ml/endpoints/{}", segment(name))
}

/// READY or NOT_READY, as the API's `state.ready`.
fn ready(view: &EndpointView) -> Markup {
    badge(if view.ready { "READY" } else { "NOT_READY" })
}

/// The config update state in its colour.
fn config_update(state: &str) -> Markup {
    let class = match state {
        "IN_PROGRESS" => "busy",
        "UPDATE_FAILED" => "bad",
        _ => "muted",
    };
    html! { span class={ "badge " (class) } data-state=(state) { (state) } }
}

/// A served entity's deployment state, as `state.deployment` says it.
fn deployment(state: Option<&EntityState>) -> Markup {
    let (word, class) = match state {
        Some(EntityState::Ready) => ("DEPLOYMENT_READY", state_class("READY")),
        Some(EntityState::Failed(_)) => ("DEPLOYMENT_FAILED", state_class("FAILED")),
        Some(EntityState::Aborted) => ("DEPLOYMENT_ABORTED", state_class("CANCELED")),
        Some(EntityState::Creating) | None => ("DEPLOYMENT_CREATING", state_class("PENDING")),
    };
    html! { span class={ "badge " (class) } data-state=(word) { (word) } }
}

/// The served entities of the live config, as links to their model versions.
fn served(view: &EndpointView) -> Markup {
    let config = view.row.config.as_ref().or(view.row.pending_config.as_ref());
    let Some(config) = config.and_then(|c| EndpointConfig::parse(c).ok()) else {
        return html! { span.dim { "–" } };
    };
    html! {
        @for e in &config.served_entities {
            div.served {
                a href=(version_url(&e.entity_name, &e.entity_version)) { (e.entity_name) " v" (e.entity_version) }
            }
        }
    }
}

/// The endpoints the viewer holds a level on, by name, paged.
async fn list(viewer: Viewer, State(s): State<AppState>, Query(paging): Query<Paging>) -> PageResult {
    let limit = paging.limit();
    let mut shown = Vec::new();
    for view in s.serving.list()? {
        if visible(&s, &viewer.user, "serving-endpoints", &view.row.name)? {
            shown.push(view);
        }
    }
    let total = shown.len() as u64;
    let page: Vec<&EndpointView> =
        shown.iter().skip(usize::try_from(paging.offset).unwrap_or(usize::MAX)).take(limit as usize).collect();
    let pager = Pager {
        base: "/ml/endpoints",
        offset: paging.offset,
        limit,
        shown: page.len() as u64,
        has_more: paging.offset + (page.len() as u64) < total,
        total: Some(total),
    };
    let body = html! {
        @if page.is_empty() { (empty("No serving endpoints.")) } @else {
            table.list.endpoints {
                thead { tr { th { "Name" } th { "State" } th { "Config update" } th { "Served entities" } th { "Creator" } th { "Last modified" } } }
                tbody {
                    @for view in &page {
                        tr data-endpoint=(view.row.name) {
                            td { a href=(endpoint_url(&view.row.name)) { (view.row.name) } }
                            td { (ready(view)) }
                            td { (config_update(&view.row.config_update)) }
                            td { (served(view)) }
                            td { (view.row.creator) }
                            td { (time(view.row.last_updated_timestamp)) }
                        }
                    }
                }
            }
            (pager.render())
        }
    };
    Ok(viewer.page("Serving endpoints", Section::Serving, &[], body))
}
