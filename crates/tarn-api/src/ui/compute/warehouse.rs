//! The SQL warehouse: its row on `/compute` and its page
//! (`/sql/warehouses/{id}`) with start and stop, checked as the SQL
//! warehouses API checks them. tarn keeps no statement history across a
//! restart and no list of statements, so the page shows none.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::{Markup, html};
use tarn_core::time::now_ms;
use tarn_sql::warehouse::{WarehouseState, WarehouseStatus};
use tarn_store::User;
use tarn_ui::components::{action, badge, empty, facts};
use tarn_ui::layout::Section;

use super::super::costs::usage::{self, DAY_MS, Totals, day_start, hours, money};
use super::super::{Action, PageResult, Viewer, done};
use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::{require, visible};

const USAGE_DAYS: i64 = 30;

/// The warehouse's row on `/compute`, when the viewer may see it.
pub(super) fn listed(s: &AppState, user: &User) -> Result<Markup, ApiFailure> {
    let warehouse = s.statements.warehouse();
    if !visible(s, user, "warehouses", warehouse.id())? {
        return Ok(empty("No SQL warehouses."));
    }
    let w = warehouse.status(warehouse.id())?;
    Ok(html! {
        table.list.warehouses {
            thead { tr { th { "Name" } th { "State" } th { "Size" } th { "Auto stop" } th { "Creator" } } }
            tbody {
                tr data-warehouse=(w.id) {
                    td { a href={ "/sql/warehouses/" (w.id) } { (w.name) } }
                    td { (badge(w.state.as_str())) }
                    td { (size(s, &w)) }
                    td { (auto_stop(&w)) }
                    td { (w.creator.as_deref().unwrap_or("")) }
                }
            }
        }
    })
}

/// One local engine; its cores when it has a cluster.
fn size(s: &AppState, w: &WarehouseStatus) -> String {
    let cores = w.cluster_id.as_deref().and_then(|id| s.clusters.get(id).ok()).map(|c| c.cores);
    match cores {
        Some(cores) => format!("1 cluster · {cores} cores"),
        None => "1 cluster".to_string(),
    }
}

fn auto_stop(w: &WarehouseStatus) -> String {
    match w.auto_stop_mins {
        0 => "never".to_string(),
        m => format!("{m} min"),
    }
}

pub(super) async fn page(State(s): State<AppState>, viewer: Viewer, Path(id): Path<String>) -> PageResult {
    require(&s, &viewer.user, "warehouses", &id, "CAN_VIEW")?;
    let w = s.statements.warehouse().status(&id)?;
    let url = |op: &str| format!("/sql/warehouses/{}/{op}", w.id);
    let stopped = matches!(w.state, WarehouseState::Stopped);
    let body = html! {
        div.toolbar {
            @if stopped { (action(&url("start"), "Start", None)) }
            @else { (action(&url("stop"), "Stop", Some("Stop the SQL warehouse?"))) }
            a href="/sql/editor" { "SQL editor" }
        }
        (facts(&[
            ("Id", html! { code { (w.id) } }),
            ("State", badge(w.state.as_str())),
            ("Size", html! { (size(&s, &w)) }),
            ("Auto stop", html! { (auto_stop(&w)) }),
            ("Creator", html! { (w.creator.as_deref().unwrap_or("")) }),
            ("Health", html! { @match &w.failure { Some(why) => span.error { (why) }, None => "healthy" } }),
        ]))
        (usage(&s, &viewer, &w)?)
    };
    let path = format!("/sql/warehouses/{id}");
    Ok(viewer.page(&w.name, Section::Compute, &[("Compute", "/compute"), (&w.name, &path)], body))
}

/// SQL tasks' usage records on the warehouse's cluster.
fn usage(s: &AppState, viewer: &Viewer, w: &WarehouseStatus) -> Result<Markup, ApiFailure> {
    let Some(cluster_id) = w.cluster_id.as_deref() else { return Ok(html! {}) };
    let since = day_start(now_ms()) - (USAGE_DAYS - 1) * DAY_MS;
    let totals = Totals::of(&usage::visible_records(s, &viewer.user, since, Some(cluster_id))?);
    Ok(html! {
        h2 { "Usage" }
        p { "Job SQL tasks in the last " (USAGE_DAYS) " days: " (hours(totals.core_hours())) " core-hours, estimated cost "
            (money(totals.cost)) " over " (totals.attempts) " task runs." }
    })
}

pub(super) async fn start(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    require(&s, &viewer.user, "warehouses", &id, "CAN_USE")?;
    s.statements.warehouse().start(&id, &viewer.user.user_name)?;
    Ok(done(None))
}

pub(super) async fn stop(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    require(&s, &viewer.user, "warehouses", &id, "CAN_MANAGE")?;
    s.statements.warehouse().stop(&id, &viewer.user.user_name)?;
    Ok(done(None))
}
