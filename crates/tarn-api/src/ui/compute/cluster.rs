//! A cluster's page: its facts, the start / restart / terminate actions
//! (checked and done as the clusters API does them), its events, the tail of
//! its engine log and its usage per day.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use tarn_compute::cluster::{ClusterState, TerminationReason};
use tarn_compute::{Cluster, EventsRequest};
use tarn_core::time::now_ms;
use tarn_ui::components::{Pager, action, badge, empty, facts, shorten, time};
use tarn_ui::layout::Section;

use super::super::costs::usage::{self, DAY_MS, by, date, day_start, hours, money};
use super::super::{Action, PageResult, Paging, Viewer, done};
use super::{running_since, size, uptime};
use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::require;

/// Lines of the engine log shown.
const LOG_LINES: usize = 200;
const USAGE_DAYS: i64 = 30;

pub(super) async fn page(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Query(paging): Query<Paging>,
) -> PageResult {
    require(&s, &viewer.user, "clusters", &id, "CAN_ATTACH_TO")?;
    let c = s.clusters.get(&id)?;
    let since = running_since(&s, &c)?;
    let body = html! {
        div.toolbar { (buttons(&c)) }
        (about(&c, since))
        (events(&s, &id, &paging)?)
        (usage_per_day(&s, &viewer, &id)?)
        (engine_log(&s, &id)?)
    };
    let path = format!("/compute/clusters/{id}");
    Ok(viewer.page(c.spec.name(), Section::Compute, &[("Compute", "/compute"), (c.spec.name(), &path)], body))
}

/// The actions the cluster's state allows, as the API's state machine does.
fn buttons(c: &Cluster) -> Markup {
    let url = |op: &str| format!("/compute/clusters/{}/{op}", c.row.cluster_id);
    html! {
        @if c.state == ClusterState::Terminated { (action(&url("start"), "Start", None)) }
        @if c.state == ClusterState::Running { (action(&url("restart"), "Restart", Some("Restart the cluster's engine?"))) }
        @if !matches!(c.state, ClusterState::Terminated | ClusterState::Terminating) {
            (action(&url("terminate"), "Terminate", Some("Terminate this cluster?")))
        }
    }
}

fn about(c: &Cluster, since: Option<i64>) -> Markup {
    let tags = c.spec.custom_tags.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
    let autotermination = match c.spec.autotermination() {
        0 => "never".to_string(),
        m => format!("after {m} minutes of inactivity"),
    };
    let dash = || html! { span.dim { "–" } };
    let mut rows = vec![("Cluster id", html! { code { (c.row.cluster_id) } }), ("State", badge(c.state.as_str()))];
    if !c.row.state_message.is_empty() {
        rows.push(("State message", html! { (c.row.state_message) }));
    }
    rows.extend([
        ("Size", html! { (size(c)) }),
        ("Spark version", html! { (c.spec.spark_version) }),
        ("Autotermination", html! { (autotermination) }),
        ("Tags", html! { @if tags.is_empty() { span.dim { "none" } } @else { (tags) } }),
        ("Creator", html! { (c.row.creator) }),
        ("Created", time(c.row.start_time)),
        ("Uptime", uptime(since)),
        ("Last activity", c.row.last_activity_time.map_or_else(dash, time)),
    ]);
    if let Some(at) = c.row.terminated_time {
        rows.push(("Terminated", time(at)));
    }
    if let Some(reason) = &c.row.termination_reason {
        let code = reason.get("code").and_then(|v| v.as_str()).unwrap_or("");
        rows.push(("Termination reason", html! { (code) }));
    }
    facts(&rows)
}

fn events(s: &AppState, id: &str, paging: &Paging) -> Result<Markup, ApiFailure> {
    let request = EventsRequest {
        cluster_id: id.to_string(),
        order: Some("DESC".into()),
        limit: Some(paging.limit() as i64),
        offset: Some(i64::try_from(paging.offset).unwrap_or(i64::MAX)),
        ..Default::default()
    };
    let page = s.clusters.events(&request)?;
    let pager = Pager {
        base: &format!("/compute/clusters/{id}"),
        offset: paging.offset,
        limit: paging.limit(),
        shown: page.events.len() as u64,
        has_more: page.next_offset.is_some(),
        total: Some(page.total_count as u64),
    };
    Ok(html! {
        h2 { "Events" }
        @if page.events.is_empty() { (empty("No events.")) } @else {
            table.list.events {
                thead { tr { th { "Time" } th { "Type" } th { "Details" } } }
                tbody {
                    @for e in &page.events {
                        tr { td { (time(e.timestamp)) } td.kind { (e.kind) } td { code { (shorten(&e.details.to_string(), 200)) } } }
                    }
                }
            }
            (pager.render())
        }
    })
}

fn usage_per_day(s: &AppState, viewer: &Viewer, id: &str) -> Result<Markup, ApiFailure> {
    let since = day_start(now_ms()) - (USAGE_DAYS - 1) * DAY_MS;
    let records = usage::visible_records(s, &viewer.user, since, Some(id))?;
    let days = by(&records, |r| Some(day_start(r.start_time)));
    Ok(html! {
        h2 { "Usage" }
        p.dim { "Job task runs on this cluster in the last " (USAGE_DAYS) " days, from their usage records." }
        @if days.is_empty() { (empty("No usage recorded.")) } @else {
            table.list.usage {
                thead { tr { th { "Day" } th.num { "Core-hours" } th.num { "Cost" } th.num { "Task runs" } } }
                tbody {
                    @for (day, t) in days.iter().rev() {
                        tr { td { (date(*day)) } td.num { (hours(t.core_hours())) } td.num { (money(t.cost)) } td.num { (t.attempts) } }
                    }
                }
            }
        }
    })
}

fn engine_log(s: &AppState, id: &str) -> Result<Markup, ApiFailure> {
    let tail = s.clusters.engine_log_tail(id, LOG_LINES)?;
    Ok(html! {
        h2 { "Engine log" }
        @match tail {
            Some(text) if !text.is_empty() => {
                p.dim { "The last " (LOG_LINES) " lines of the engine's log." }
                pre.engine-log { (text) }
            }
            _ => (empty("The engine has written no log yet.")),
        }
    })
}

pub(super) async fn start(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    require(&s, &viewer.user, "clusters", &id, "CAN_RESTART")?;
    s.clusters.start(&id, &viewer.user.user_name)?;
    Ok(done(None))
}

pub(super) async fn restart(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    require(&s, &viewer.user, "clusters", &id, "CAN_RESTART")?;
    s.clusters.restart(&id, &viewer.user.user_name)?;
    Ok(done(None))
}

pub(super) async fn terminate(
    State(s): State<AppState>,
    viewer: Viewer,
    _: Action,
    Path(id): Path<String>,
) -> Result<Response, ApiFailure> {
    require(&s, &viewer.user, "clusters", &id, "CAN_RESTART")?;
    s.clusters.terminate(&id, TerminationReason::user_request(&viewer.user.user_name))?;
    Ok(done(None))
}
