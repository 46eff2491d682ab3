//! The compute pages: the clusters and the SQL warehouse (`/compute`), a
//! cluster (`/compute/clusters/{id}`) with its start, restart and terminate
//! actions, and the warehouse (`/sql/warehouses/{id}`) with start and stop.

mod cluster;
mod warehouse;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use maud::{Markup, html};
use tarn_compute::cluster::ClusterState;
use tarn_compute::{Cluster, ClusterFilter, EventsRequest};
use tarn_core::time::now_ms;
use tarn_ui::components::{Pager, badge, duration, empty};
use tarn_ui::layout::Section;

use super::{PageResult, Paging, Viewer};
use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::visible;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/compute", get(list))
        .route("/compute/clusters/{id}", get(cluster::page))
        .route("/compute/clusters/{id}/start", post(cluster::start))
        .route("/compute/clusters/{id}/restart", post(cluster::restart))
        .route("/compute/clusters/{id}/terminate", post(cluster::terminate))
        .route("/sql/warehouses/{id}", get(warehouse::page))
        .route("/sql/warehouses/{id}/start", post(warehouse::start))
        .route("/sql/warehouses/{id}/stop", post(warehouse::stop))
}

/// Workers (or the autoscale range) and the node type.
pub(super) fn size(c: &Cluster) -> String {
    let workers = match &c.spec.autoscale {
        Some(a) => format!("autoscale {}–{} workers", a.min_workers, a.max_workers),
        None => match c.spec.target_workers() {
            0 => "single node".to_string(),
            1 => "1 worker".to_string(),
            n => format!("{n} workers"),
        },
    };
    format!("{workers} · {} · {} cores", c.node_type_id, c.cores)
}

/// When the cluster's engine last came up (its latest RUNNING event), while
/// it is RUNNING.
pub(super) fn running_since(s: &AppState, c: &Cluster) -> Result<Option<i64>, ApiFailure> {
    if c.state != ClusterState::Running {
        return Ok(None);
    }
    let request = EventsRequest {
        cluster_id: c.row.cluster_id.clone(),
        order: Some("DESC".into()),
        event_types: vec!["RUNNING".into()],
        limit: Some(1),
        ..Default::default()
    };
    Ok(s.clusters.events(&request)?.events.first().map(|e| e.timestamp))
}

fn uptime(since: Option<i64>) -> Markup {
    match since {
        Some(t) => html! { span title="since the engine last came up" { (duration(now_ms() - t)) } },
        None => html! { span.dim { "–" } },
    }
}

async fn list(State(s): State<AppState>, viewer: Viewer, Query(paging): Query<Paging>) -> PageResult {
    // Newest first, as the clusters API lists them; only those the viewer holds a level on.
    let filter = ClusterFilter { descending: true, ..Default::default() };
    let mut clusters = Vec::new();
    for c in s.clusters.list(&filter)? {
        // An admin holds every level: no lookup per cluster.
        if viewer.user.admin || visible(&s, &viewer.user, "clusters", &c.row.cluster_id)? {
            clusters.push(c);
        }
    }
    let (offset, limit) = (usize::try_from(paging.offset).unwrap_or(usize::MAX), paging.limit() as usize);
    let total = clusters.len();
    let shown: Vec<&Cluster> = clusters.iter().skip(offset).take(limit).collect();
    let mut rows = Vec::new();
    for c in &shown {
        rows.push(cluster_row(c, running_since(&s, c)?));
    }
    let pager = Pager {
        base: "/compute",
        offset: paging.offset,
        limit: limit as u64,
        shown: shown.len() as u64,
        has_more: offset.saturating_add(shown.len()) < total,
        total: Some(total as u64),
    };
    let body = html! {
        h2 { "Clusters" }
        @if rows.is_empty() { (empty("No clusters.")) } @else {
            table.list.clusters {
                thead { tr { th { "Name" } th { "State" } th { "Size" } th { "Runtime" } th { "Uptime" } th { "Creator" } } }
                tbody { @for row in &rows { (row) } }
            }
            (pager.render())
        }
        h2 { "SQL warehouses" }
        (warehouse::listed(&s, &viewer.user)?)
    };
    Ok(viewer.page("Compute", Section::Compute, &[("Compute", "/compute")], body))
}

fn cluster_row(c: &Cluster, since: Option<i64>) -> Markup {
    html! {
        tr data-cluster=(c.row.cluster_id) {
            td { a href={ "/compute/clusters/" (c.row.cluster_id) } { (c.spec.name()) } }
            td { (badge(c.state.as_str())) }
            td { (size(c)) }
            td { (c.spec.spark_version) }
            td { (uptime(since)) }
            td { (c.row.creator) }
        }
    }
}
