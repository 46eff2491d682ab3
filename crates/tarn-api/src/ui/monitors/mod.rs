//! The quality monitors pages: `/monitors` (the monitors on tables the
//! viewer may read), `/monitors/{table}` (the monitor's definition, a
//! column's profile and drift over time charted from its output tables,
//! its refresh history and a link to the drift report) and the Refresh
//! action. A monitor is seen with SELECT on its table and refreshed by
//! the table's owner or a holder of MANAGE, as on Databricks.

mod charts;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::Value;
use tarn_catalog::Action as Grant;
use tarn_store::RefreshRow;
use tarn_ui::components::{Pager, action, badge, duration, empty, facts, live, shorten, time};
use tarn_ui::layout::Section;

use super::catalog::table_href;
use super::segment as seg;
use super::{Action, PageError, PageResult, Paging, Viewer};
use crate::AppState;
use crate::error::ApiFailure;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/monitors", get(list))
        .route("/monitors/{table}", get(monitor))
        .route("/monitors/{table}/refreshes", get(refreshes_region))
        .route("/monitors/{table}/refresh", post(refresh))
}

/// How often the refresh history reloads while a refresh is under way.
const LIVE_SECONDS: u32 = 3;

/// Refuses unless the viewer may `grant` on the monitored table, as the API checks it.
fn authorize(s: &AppState, viewer: &Viewer, table: &str, grant: Grant) -> Result<(), ApiFailure> {
    crate::routes::monitors::authorize(s, &viewer.user, table, grant)
}

/// `MONITOR_STATUS_ACTIVE` as `ACTIVE`.
fn status(info: &Value) -> &str {
    let status = info["status"].as_str().unwrap_or("UNKNOWN");
    status.strip_prefix("MONITOR_STATUS_").unwrap_or(status)
}

/// Snapshot, time series or inference log, with the granularities.
fn monitor_type(info: &Value) -> String {
    let listed = |key: &str| {
        let g = info[key]["granularities"].as_array().into_iter().flatten().filter_map(Value::as_str);
        g.collect::<Vec<_>>().join(", ")
    };
    if info.get("snapshot").is_some_and(|v| !v.is_null()) {
        "Snapshot".into()
    } else if info.get("inference_log").is_some_and(|v| !v.is_null()) {
        let problem = info["inference_log"]["problem_type"].as_str().unwrap_or_default();
        let problem = problem.trim_start_matches("PROBLEM_TYPE_").to_lowercase();
        format!("Inference log · {problem} · {}", listed("inference_log"))
    } else {
        format!("Time series · {}", listed("time_series"))
    }
}

/// The monitors, by table name; only those on tables the viewer may read
/// (filtered within the page).
async fn list(State(s): State<AppState>, viewer: Viewer, Query(paging): Query<Paging>) -> PageResult {
    let limit = paging.limit();
    let mut rows = s.store.list_monitors_page(paging.offset as usize, limit as usize + 1)?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let page_size = rows.len() as u64;
    let mut shown = Vec::new();
    for row in rows {
        if authorize(&s, &viewer, &row.table_name, Grant::Select).is_ok() {
            let last = s.store.list_refreshes(&row.table_name, 1)?.into_iter().next();
            shown.push((row, last));
        }
    }
    let pager = Pager { base: "/monitors", offset: paging.offset, limit, shown: page_size, has_more, total: None };
    let body = html! {
        @if shown.is_empty() {
            (empty("No quality monitors."))
        } @else {
            table.list.monitors {
                thead { tr { th { "Table" } th { "Type" } th { "Status" } th { "Last refresh" } } }
                tbody {
                    @for (row, last) in &shown {
                        tr data-table=(row.table_name) {
                            td { a href={ "/monitors/" (seg(&row.table_name)) } { (row.table_name) } }
                            td { (monitor_type(&row.info)) }
                            td { (badge(status(&row.info))) }
                            td {
                                @match last {
                                    Some(r) => { (badge(&r.state)) " " (time(r.start_time_ms)) }
                                    None => span.dim { "never" },
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager.render())
    };
    Ok(viewer.page("Quality monitors", Section::Monitors, &[("Monitors", "/monitors")], body))
}

#[derive(Debug, serde::Deserialize)]
struct MonitorQuery {
    column: Option<String>,
}

/// One monitor: its definition, a column's charts, its refreshes.
async fn monitor(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(table): Path<String>,
    Query(q): Query<MonitorQuery>,
    Query(paging): Query<Paging>,
) -> PageResult {
    authorize(&s, &viewer, &table, Grant::Select)?;
    let info = s.monitors.get(&table)?;
    let column = q.column.as_deref().filter(|c| !c.is_empty());
    let may_refresh = authorize(&s, &viewer, &table, Grant::Manage).is_ok();
    let charted = match s.monitors.column_history(&table, column).await {
        Ok(h) => charts::render(&table, &h),
        Err(_) if s.store.list_refreshes(&table, 1)?.is_empty() => {
            empty("No refresh yet: a refresh writes the metrics charted here.")
        }
        Err(e) => tarn_ui::components::error(&ApiFailure::from(e).for_client().2),
    };
    let body = html! {
        (toolbar(&table, &info, may_refresh))
        (definition(&table, &info))
        h2 { "Profile and drift over time" }
        (charted)
        h2 { "Refresh history" }
        (refreshes_live(&s, &table, paging)?)
    };
    let href = format!("/monitors/{}", seg(&table));
    let crumbs = [("Monitors", "/monitors"), (table.as_str(), href.as_str())];
    Ok(viewer.page(&table, Section::Monitors, &crumbs, body))
}

fn toolbar(table: &str, info: &Value, may_refresh: bool) -> Markup {
    let report = format!("/api/2.1/unity-catalog/tables/{}/monitor/report", seg(table));
    html! {
        div.toolbar {
            (badge(status(info)))
            @if may_refresh {
                (action(&format!("/monitors/{}/refresh", seg(table)), "Refresh", None))
            }
            a.report href=(report) target="_blank" rel="noopener" { "Drift report ↗" }
        }
    }
}

fn definition(table: &str, info: &Value) -> Markup {
    let text = |key: &str| info[key].as_str().unwrap_or_default().to_string();
    let linked = |name: String| match name.is_empty() {
        true => html! { span.dim { "–" } },
        false => html! { a href=(table_href(&name)) { (name) } },
    };
    let mut rows = vec![
        ("Table", linked(table.to_string())),
        ("Type", html! { (monitor_type(info)) }),
        ("Baseline", linked(text("baseline_table_name"))),
        ("Profile metrics", linked(text("profile_metrics_table_name"))),
        ("Drift metrics", linked(text("drift_metrics_table_name"))),
    ];
    if let Some(failure) = info["latest_monitor_failure_msg"].as_str() {
        rows.push(("Last failure", html! { span.error { (failure) } }));
    }
    facts(&rows)
}

/// The refresh history, reloaded while a refresh is pending or running.
fn refreshes_live(s: &AppState, table: &str, paging: Paging) -> Result<Markup, PageError> {
    let limit = paging.limit();
    let mut rows = s.store.list_refreshes_page(table, paging.offset as usize, limit as usize + 1)?;
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let active = rows.iter().any(|r| matches!(r.state.as_str(), "PENDING" | "RUNNING"));
    let base = format!("/monitors/{}", seg(table));
    let url = format!("{base}/refreshes?offset={}&limit={limit}", paging.offset);
    let pager = Pager { base: &base, offset: paging.offset, limit, shown: rows.len() as u64, has_more, total: None };
    let content = html! {
        @if rows.is_empty() { (empty("No refreshes.")) } @else { (refresh_table(&rows)) }
        (pager.render())
    };
    Ok(live("monitor-refreshes", &url, LIVE_SECONDS, active, content))
}

fn refresh_table(rows: &[RefreshRow]) -> Markup {
    html! {
        table.list.refreshes {
            thead { tr { th { "Refresh" } th { "State" } th { "Trigger" } th { "Started" } th { "Duration" } th { "Message" } } }
            tbody {
                @for r in rows {
                    tr data-refresh=(r.refresh_id) {
                        td.num { (r.refresh_id) }
                        td { (badge(&r.state)) }
                        td { (r.trigger) }
                        td { (time(r.start_time_ms)) }
                        td.num {
                            @match r.end_time_ms {
                                Some(end) => (duration(end - r.start_time_ms)),
                                None => span.dim { "–" },
                            }
                        }
                        td.message { (shorten(r.message.as_deref().unwrap_or_default(), 200)) }
                    }
                }
            }
        }
    }
}

async fn refreshes_region(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(table): Path<String>,
    Query(paging): Query<Paging>,
) -> Result<Html<String>, PageError> {
    authorize(&s, &viewer, &table, Grant::Select)?;
    s.monitors.get(&table)?;
    Ok(Html(refreshes_live(&s, &table, paging)?.into_string()))
}

/// Queues a refresh as `POST …/monitor/refreshes` does.
async fn refresh(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(table): Path<String>,
) -> Result<Response, ApiFailure> {
    authorize(&s, &viewer, &table, Grant::Manage)?;
    s.monitors.run_refresh(&table, "MANUAL")?;
    Ok(super::done(None))
}
